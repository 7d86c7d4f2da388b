"""Quantized ``nn.Linear``.

Example::

    >>> import torch
    >>> from torch import nn
    >>> q = QuantizedLinear.from_module(nn.Linear(4, 3))
    >>> q(torch.randn(2, 4)).shape
    torch.Size([2, 3])
"""

import torch.nn.functional as F
from torch import Tensor, nn

from .base import QuantizationMixin

__all__ = ["QuantizedLinear"]


@QuantizationMixin.implements(nn.Linear, onnx_types=("Gemm", "MatMul"))
class QuantizedLinear(QuantizationMixin, nn.Linear):
    """``F.linear(q_in(x), q_w(weight), q_b(bias))`` then the output quantizer.

    Example::

        >>> q = QuantizedLinear(4, 3, bias=False)
        >>> list(q.param_quantizers)
        ['weight']
    """

    def quantized_forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.quantized_param("weight"), self.quantized_param("bias"))
