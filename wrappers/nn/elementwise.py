"""Quantized classes of the functional-op modules of ``functional_modules.py``: one input
quantizer slot per tensor operand (scalar operands are never quantized), one output slot.

``ScaledDotProductAttention`` is one fused op: its query, key and value inputs and its output
are quantized, not its internals (use ``MatMul`` + ``Softmax`` modules for that).

Example::

    >>> import torch
    >>> q = QuantizedAdd()
    >>> len(q.input_quantizers), q(torch.ones(2), 1.0)
    (2, tensor([2., 2.]))
"""

import torch

from . import functional_modules as fm
from .base import QuantizationMixin

__all__ = ["QuantizedParameter", "QuantizedAddMm", "QuantizedAdd", "QuantizedSubtract", "QuantizedMultiply", "QuantizedDivide",
           "QuantizedPow", "QuantizedMatMul", "QuantizedBmm", "QuantizedConcat", "QuantizedExp",
           "QuantizedSqrt", "QuantizedRsqrt", "QuantizedMean", "QuantizedInterpolate",
           "QuantizedScaledDotProductAttention"]

QuantizedAdd = QuantizationMixin.wrap(fm.Add, ("Add",), __name__)
QuantizedSubtract = QuantizationMixin.wrap(fm.Subtract, ("Sub",), __name__)
QuantizedMultiply = QuantizationMixin.wrap(fm.Multiply, ("Mul",), __name__)
QuantizedDivide = QuantizationMixin.wrap(fm.Divide, ("Div",), __name__)
QuantizedPow = QuantizationMixin.wrap(fm.Pow, ("Pow",), __name__)
QuantizedMatMul = QuantizationMixin.wrap(fm.MatMul, ("MatMul",), __name__)
QuantizedBmm = QuantizationMixin.wrap(fm.Bmm, ("MatMul",), __name__)
QuantizedConcat = QuantizationMixin.wrap(fm.Concat, ("Concat",), __name__)
QuantizedExp = QuantizationMixin.wrap(fm.Exp, ("Exp",), __name__)
QuantizedSqrt = QuantizationMixin.wrap(fm.Sqrt, ("Sqrt",), __name__)
QuantizedRsqrt = QuantizationMixin.wrap(fm.Rsqrt, None, __name__)
QuantizedMean = QuantizationMixin.wrap(fm.Mean, ("ReduceMean", "Mean"), __name__)
QuantizedInterpolate = QuantizationMixin.wrap(fm.Interpolate, ("Resize", "Upsample"), __name__)
QuantizedScaledDotProductAttention = QuantizationMixin.wrap(fm.ScaledDotProductAttention, None,
                                                            __name__)



@QuantizationMixin.implements(fm.AddMm, onnx_types=("Gemm",))
class QuantizedAddMm(QuantizationMixin, fm.AddMm):
    """``torch.addmm`` on the quantized weight and bias (the config quantizes the weight, per
    output channel on axis 1 when per-channel)."""

    @classmethod
    def param_channel_axis(cls, name: str) -> int:
        """1 for ``weight`` (laid out ``(in, out)``), else 0."""
        return 1 if name == "weight" else 0

    def quantized_forward(self, x):
        return torch.addmm(self.quantized_param("bias"), x, self.quantized_param("weight"))



@QuantizationMixin.implements(fm.Parameter, onnx_types=("Constant",))
class QuantizedParameter(QuantizationMixin, fm.Parameter):
    """The parameter through its parameter quantizer; no output quantizer (it is a weight).

    Example::

        >>> import torch
        >>> QuantizedParameter(torch.nn.Parameter(torch.ones(2)))()
        Parameter containing:
        tensor([1., 1.], requires_grad=True)
    """

    num_outputs = 0

    def quantized_forward(self):
        return self.quantized_param("weight")
