"""Quantized activations: ReLU, ReLU6, GELU, SiLU, Sigmoid, Tanh, Softmax, Hardswish,
LeakyReLU (the torch forward between an input and an output quantizer) and PReLU (also a
weight quantizer).

Example::

    >>> import torch
    >>> from torch import nn
    >>> QuantizedGELU.from_module(nn.GELU(approximate="tanh"))(torch.zeros(2))
    tensor([0., 0.])
"""

import torch.nn.functional as F
from torch import Tensor, nn

from .base import QuantizationMixin

__all__ = ["QuantizedReLU", "QuantizedReLU6", "QuantizedGELU", "QuantizedSiLU",
           "QuantizedSigmoid", "QuantizedTanh", "QuantizedSoftmax", "QuantizedHardswish",
           "QuantizedLeakyReLU", "QuantizedPReLU"]

QuantizedReLU = QuantizationMixin.wrap(nn.ReLU, ("Relu",), __name__)
QuantizedReLU6 = QuantizationMixin.wrap(nn.ReLU6, ("Clip",), __name__)
QuantizedGELU = QuantizationMixin.wrap(nn.GELU, ("GELU", "Gelu"), __name__)
QuantizedSiLU = QuantizationMixin.wrap(nn.SiLU, None, __name__)
QuantizedSigmoid = QuantizationMixin.wrap(nn.Sigmoid, ("Sigmoid",), __name__)
QuantizedTanh = QuantizationMixin.wrap(nn.Tanh, ("Tanh",), __name__)
QuantizedSoftmax = QuantizationMixin.wrap(nn.Softmax, ("Softmax",), __name__)
QuantizedHardswish = QuantizationMixin.wrap(nn.Hardswish, ("HardSwish",), __name__)
QuantizedLeakyReLU = QuantizationMixin.wrap(nn.LeakyReLU, ("LeakyRelu",), __name__)


@QuantizationMixin.implements(nn.PReLU, onnx_types=("PRelu",))
class QuantizedPReLU(QuantizationMixin, nn.PReLU):
    """Quantized ``nn.PReLU``: ``F.prelu`` on the quantized slope.

    Example::

        >>> QuantizedPReLU(init=0.5)(torch.tensor([-2.0, 2.0])).detach()
        tensor([-1.,  2.])
    """

    def quantized_forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.quantized_param("weight"))
