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
    """``F.linear(q_in(x), q_w(weight), q_b(bias))`` then the output quantizer; ``weight`` is
    laid out ``(out_features, in_features)``.

    Example::

        >>> q = QuantizedLinear(4, 3, bias=False)
        >>> list(q.param_quantizers)
        ['weight']
    """

    is_weight_layer = True

    @classmethod
    def output_channel_dim(cls, ndim: int) -> int:
        """The last dim: ``out_features``."""
        return ndim - 1

    def quantized_forward(self, x: Tensor) -> Tensor:
        return self.forward_with_weight(x, self.quantized_param("weight", for_op=True))

    def forward_with_weight(self, x: Tensor, weight: Tensor) -> Tensor:
        """``F.linear`` with `weight` in place of the module's (and the quantized bias), e.g.
        AdaRound's soft-rounded weight."""
        return F.linear(x, weight, self.quantized_param("bias"))
