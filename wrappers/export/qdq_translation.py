"""ONNX translation of the ``torch.ops.qsim`` fake-quantization ops (opset 21, standard domain).

The dynamo exporter (``torch.onnx.export(..., dynamo=True)``) calls these functions through its
``custom_translation_table`` (:data:`QDQ_TRANSLATION_TABLE`), so an exported model holds
QuantizeLinear / DequantizeLinear pairs that onnxruntime runs without any contrib domain:

- ``qsim::quantize_dequantize`` -> ``DequantizeLinear(QuantizeLinear(x))``, per-tensor, per-axis
  (``axis``) or blocked (``axis`` + ``block_size``), zero point cast to the grid's ONNX type;
- ``qsim::quantize`` -> ``Cast(QuantizeLinear(x), FLOAT)`` (grid integers in x's float type, as
  the op returns them); ``qsim::dequantize`` -> ``DequantizeLinear(Cast(q, T))``;
- ``qsim::float_quantize_dequantize`` -> ``Cast(Cast(x, FLOAT16 | BFLOAT16), FLOAT)``;
- ``qsim::minifloat_quantize_dequantize`` (float8 formats) and
  ``qsim::block_float_quantize_dequantize``: :mod:`.float_translation`;
- ``qsim::zero_point`` (a quantizer's zero point from its min/max): :mod:`.grid_translation`.

The grid ``[qmin, qmax]`` is stored in the smallest ONNX type that holds it (:func:`grid_type`):
int4/uint4, int8/uint8 or int16/uint16, signed when ``qmin < 0``. QuantizeLinear saturates to
the range of its type, not of the grid, so a grid narrower than its type (strict symmetric
``[-127, 127]`` in int8, or a 3-, 5-, ... bit grid) would let values just outside the grid through
(-128 instead of -127). Calibration cannot rule that out: data seen after calibration may lie
anywhere. Those grids therefore get a float clamp in front of QuantizeLinear to the grid's
real-valued ends ``lo = (qmin - zp) * scale`` and ``hi = (qmax - zp) * scale`` (computed by a
DequantizeLinear of the grid ends, so in exactly the fp32 arithmetic the simulation uses):
``Clip`` per-tensor, ``Max``/``Min`` against tensors of x's shape per-axis and blocked. This is
exact: ``rint(hi / scale) = qmax - zp`` for every grid of up to 16 bits (the fp32 error of
``hi / scale`` is below ``|qmax - zp| * 2**-23 < 0.01``), and x / scale is monotonic in x, so
clamping x first gives the same integer as clamping the integer afterwards.

Example::

    >>> import torch, torchqsim
    >>> from torchqsim.export import QDQ_TRANSLATION_TABLE
    >>> class Fq(torch.nn.Module):
    ...     def forward(self, x):
    ...         return torchqsim.functional.quantize_dequantize(x, 0.1, 0, -8, 7)
    >>> program = torch.onnx.export(Fq(), (torch.randn(3),), dynamo=True, opset_version=21,
    ...                             verbose=False,
    ...                             custom_translation_table=QDQ_TRANSLATION_TABLE)
    >>> [n.op_type for n in program.model_proto.graph.node if "Linear" in n.op_type]
    ['QuantizeLinear', 'DequantizeLinear']
"""

from typing import Optional

import torch
from onnx import TensorProto
from onnxscript import opset21 as op

from .float_translation import block_float_quantize_dequantize, minifloat_quantize_dequantize
from .grid_translation import zero_point

__all__ = ["OPSET", "QDQ_TRANSLATION_TABLE", "grid_type"]

OPSET = 21
"""The ONNX opset of every exported graph: the first with int4/int16 and blocked Q/DQ."""

# (ONNX type, lowest value, highest value), smallest first within each signedness.
_GRID_TYPES = {
    True: ((TensorProto.INT4, -8, 7), (TensorProto.INT8, -128, 127),
           (TensorProto.INT16, -32768, 32767)),
    False: ((TensorProto.UINT4, 0, 15), (TensorProto.UINT8, 0, 255),
            (TensorProto.UINT16, 0, 65535)),
}

_FLOAT_TYPES = (TensorProto.FLOAT16, TensorProto.BFLOAT16)


def grid_type(qmin: int, qmax: int) -> tuple[int, bool]:
    """The ONNX zero-point type that stores the grid ``[qmin, qmax]``, and whether it is exact.

    Args:
        qmin: lowest grid integer.
        qmax: highest grid integer.

    Returns:
        ``(onnx.TensorProto data type, exact)``: the smallest of int4, int8, int16 (``qmin < 0``)
        or uint4, uint8, uint16 holding the grid; ``exact`` is False when the type's range is
        wider than the grid (QuantizeLinear would saturate to the type's ends).

    Raises:
        ValueError: no 4-, 8- or 16-bit type holds the grid.

    Example::

        >>> from onnx import TensorProto
        >>> grid_type(-128, 127) == (TensorProto.INT8, True)
        True
        >>> grid_type(-127, 127) == (TensorProto.INT8, False)   # strict symmetric
        True
    """
    for onnx_type, lo, hi in _GRID_TYPES[qmin < 0]:
        if lo <= qmin and qmax <= hi:
            return onnx_type, (lo, hi) == (qmin, qmax)
    raise ValueError(f"grid [{qmin}, {qmax}] fits no ONNX QuantizeLinear type "
                     f"(int4/int8/int16 or uint4/uint8/uint16)")


def _qdq_attributes(axis, block_size) -> dict:
    attributes = {} if axis is None else {"axis": axis}
    if block_size is not None:
        attributes["block_size"] = block_size
    return attributes


def _grid_value(value: int, onnx_type: int, like=None):
    """The grid integer ``value`` as a constant of ``onnx_type``: a scalar, or of ``like``'s
    shape."""
    constant = op.Cast(op.Constant(value_int=value), to=onnx_type)
    return constant if like is None else op.Expand(constant, op.Shape(like))


def _clamp_to_grid(x, scale, zero_point, qmin, qmax, onnx_type, attributes):
    """x clamped to the real-valued ends of the grid (see the module docstring)."""
    like = None if "axis" not in attributes else x
    lo = op.DequantizeLinear(_grid_value(qmin, onnx_type, like), scale, zero_point, **attributes)
    hi = op.DequantizeLinear(_grid_value(qmax, onnx_type, like), scale, zero_point, **attributes)
    if like is None:
        return op.Clip(x, lo, hi)
    return op.Min(op.Max(x, lo), hi)


def _quantize_linear(x, scale, zero_point, qmin, qmax, axis, block_size):
    """QuantizeLinear of x on the grid [qmin, qmax]: (integers, zero point, attributes)."""
    onnx_type, exact = grid_type(qmin, qmax)
    zp = op.Cast(zero_point, to=onnx_type)
    attributes = _qdq_attributes(axis, block_size)
    if not exact:
        x = _clamp_to_grid(x, scale, zp, qmin, qmax, onnx_type, attributes)
    return op.QuantizeLinear(x, scale, zp, **attributes), zp, attributes


def quantize_dequantize(x, scale, zero_point, qmin: int, qmax: int, axis: Optional[int] = None,
                        block_size: Optional[int] = None):
    """``qsim::quantize_dequantize`` as QuantizeLinear -> DequantizeLinear."""
    q, zp, attributes = _quantize_linear(x, scale, zero_point, qmin, qmax, axis, block_size)
    return op.DequantizeLinear(q, scale, zp, **attributes)


def quantize(x, scale, zero_point, qmin: int, qmax: int, axis: Optional[int] = None,
             block_size: Optional[int] = None):
    """``qsim::quantize`` as QuantizeLinear, the integers cast back to x's float type."""
    q, _, _ = _quantize_linear(x, scale, zero_point, qmin, qmax, axis, block_size)
    return op.CastLike(q, x)


def dequantize(q, scale, zero_point, axis: Optional[int] = None,
               block_size: Optional[int] = None):
    """``qsim::dequantize`` as DequantizeLinear of the float-held integers cast to int32.

    The op takes no grid, so the integers travel as int32, which DequantizeLinear-21 accepts.
    """
    attributes = _qdq_attributes(axis, block_size)
    integers = op.Cast(q, to=TensorProto.INT32)
    return op.CastLike(op.DequantizeLinear(integers, scale, op.Cast(zero_point, to=TensorProto.INT32),
                                           **attributes), q)


def float_quantize_dequantize(x, dtype: int):
    """``qsim::float_quantize_dequantize`` as a Cast to FLOAT16 / BFLOAT16 and back (the
    exporter passes the torch dtype as its ONNX data type)."""
    if int(dtype) not in _FLOAT_TYPES:
        raise ValueError(f"float_quantize_dequantize: dtype must be torch.float16 or "
                         f"torch.bfloat16, got {dtype}")
    return op.CastLike(op.Cast(x, to=int(dtype)), x)


QDQ_TRANSLATION_TABLE = {
    torch.ops.qsim.minifloat_quantize_dequantize.default: minifloat_quantize_dequantize,
    torch.ops.qsim.block_float_quantize_dequantize.default: block_float_quantize_dequantize,
    torch.ops.qsim.quantize_dequantize.default: quantize_dequantize,
    torch.ops.qsim.quantize.default: quantize,
    torch.ops.qsim.dequantize.default: dequantize,
    torch.ops.qsim.float_quantize_dequantize.default: float_quantize_dequantize,
    torch.ops.qsim.zero_point.default: zero_point,
}
"""``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True, opset_version=21)``."""
