"""Quantized activations: ReLU, ReLU6, GELU, SiLU, Sigmoid, Tanh, Softmax, Hardswish,
LeakyReLU (the torch forward between an input and an output quantizer) and PReLU (also a
weight quantizer).

Example::

    >>> import torch
    >>> from torch import nn
    >>> QuantizedGELU.from_module(nn.GELU(approximate="tanh"))(torch.zeros(2))
    tensor([0., 0.])
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..quantization.eager_qparams import eval_into_input
from ..quantization.quantizer import QuantizeDequantize, plain_eager
from .base import QuantizationMixin
from .overwritable import argument_overwritable, hookless, straight_through_in_place, \
    straight_through_into

__all__ = ["QuantizedReLU", "QuantizedReLU6", "QuantizedGELU", "QuantizedSiLU",
           "QuantizedSigmoid", "QuantizedTanh", "QuantizedSoftmax", "QuantizedHardswish",
           "QuantizedLeakyReLU", "QuantizedPReLU"]

QuantizedReLU6 = QuantizationMixin.wrap(nn.ReLU6, ("Clip",), __name__)
QuantizedGELU = QuantizationMixin.wrap(nn.GELU, ("GELU", "Gelu"), __name__)
QuantizedSiLU = QuantizationMixin.wrap(nn.SiLU, None, __name__)
QuantizedSigmoid = QuantizationMixin.wrap(nn.Sigmoid, ("Sigmoid",), __name__)
QuantizedTanh = QuantizationMixin.wrap(nn.Tanh, ("Tanh",), __name__)
QuantizedSoftmax = QuantizationMixin.wrap(nn.Softmax, ("Softmax",), __name__)
QuantizedHardswish = QuantizationMixin.wrap(nn.Hardswish, ("HardSwish",), __name__)
QuantizedLeakyReLU = QuantizationMixin.wrap(nn.LeakyReLU, ("LeakyRelu",), __name__)


@QuantizationMixin.implements(nn.ReLU, onnx_types=("Relu",))
class QuantizedReLU(QuantizationMixin, nn.ReLU):
    """Quantized ``nn.ReLU``: ``relu`` between an input and an output quantizer slot.

    When only the output slot quantizes and its grid starts at exactly 0
    (:meth:`~torchqsim.quantization.QuantizeDequantize.floors_at_zero`), the quantizer alone
    computes the output: the same bits, one pass over the tensor fewer (as onnxruntime drops a
    Relu before such a QuantizeLinear). Without autograd (calibrated evaluation) it writes into
    the input when the caller passed a temporary
    (:func:`~torchqsim.nn.overwritable.argument_overwritable`), else into a new tensor
    (``inplace=True`` modules then keep the ReLU: their caller may read the input afterwards). In
    training with a straight-through quantizer it writes into such a temporary input, keeping one
    bit a value for the gradient of ReLU and the quantizer together
    (``qsim::quantize_dequantize_`` with ``relu=True``): bit for bit the values and gradients of
    ``relu`` then the quantizer, without ReLU's pass, its result, or the result autograd keeps.

    Example::

        >>> m = QuantizedReLU()
        >>> m.output_quantizers[0] = QuantizeDequantize((), 8, symmetric=False)
        >>> m.output_quantizers[0].set_range(0.0, 2.55)
        >>> with torch.no_grad():
        ...     m(torch.tensor([-1.0, 0.5, 3.0]))
        tensor([0.0000, 0.5000, 2.5500])
    """

    def forward(self, x):
        q = self._modules["output_quantizers"]._modules.get("0")
        if q is not None and type(q).forward is QuantizeDequantize.forward and hookless(q) and \
                not q._calibrating and self._modules["input_quantizers"]._modules.get("0") is None \
                and plain_eager() and isinstance(x, Tensor) and q.is_initialized() and \
                q.floors_at_zero(x.shape):
            if not torch.is_grad_enabled():
                if argument_overwritable(self, x):
                    return eval_into_input(q, x)
                if not self.inplace:
                    return q(x)
            elif straight_through_in_place(q, x) and argument_overwritable(self, x):
                y = straight_through_into(q, x, relu=True)
                if y is not None:
                    return y
        return super().forward(x)


@QuantizationMixin.implements(nn.PReLU, onnx_types=("PRelu",))
class QuantizedPReLU(QuantizationMixin, nn.PReLU):
    """Quantized ``nn.PReLU``: ``F.prelu`` on the quantized slope.

    Example::

        >>> QuantizedPReLU(init=0.5)(torch.tensor([-2.0, 2.0])).detach()
        tensor([-1.,  2.])
    """

    def quantized_forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.quantized_param("weight"))
