"""ONNX translation of the float-format ops (``torch.ops.qsim.minifloat_quantize_dequantize`` and
``block_float_quantize_dequantize``) for the dynamo exporter, standard domain only.

- minifloats whose format is an ONNX float8 type (float8e4m3fn, float8e5m2, float8e4m3fnuz,
  float8e5m2fnuz) become ``DequantizeLinear(QuantizeLinear(x, scale, zp, saturate))`` with a zero
  point of 0 of that type (per-tensor, per-axis or blocked like the op); onnxruntime reproduces
  the simulation bit for bit with ``saturate=1`` (tests/python/export/test_float_formats_onnx.py
  states its two non-saturating deviations);
- other minifloats (no ONNX type; FP4 needs opset 23, beyond the exporter's opset 21) and the
  block-scaled formats (their E8M0 / E4M3 scales are computed from the data, which needs a
  decomposition the exporter does not emit yet) raise a ValueError naming the format, so an export
  never silently drops a quantizer. docs/formats.md lists what exports.
"""

from onnx import TensorProto
from onnxscript import opset21 as op

__all__ = ["FLOAT8_TYPES", "block_float_quantize_dequantize", "minifloat_quantize_dequantize"]

FLOAT8_TYPES = {
    (4, 3, "fn"): TensorProto.FLOAT8E4M3FN,
    (5, 2, "ieee"): TensorProto.FLOAT8E5M2,
    (4, 3, "fnuz"): TensorProto.FLOAT8E4M3FNUZ,
    (5, 2, "fnuz"): TensorProto.FLOAT8E5M2FNUZ,
}
"""(exponent_bits, mantissa_bits, kind) -> the ONNX float8 type of that format."""


def minifloat_quantize_dequantize(x, scale, exponent_bits: int, mantissa_bits: int, kind: str,
                                  saturate: bool, axis=None, block_size=None):
    """``qsim::minifloat_quantize_dequantize`` as a float8 QuantizeLinear -> DequantizeLinear."""
    onnx_type = FLOAT8_TYPES.get((exponent_bits, mantissa_bits, kind))
    if onnx_type is None:
        raise ValueError(f"minifloat_quantize_dequantize: e{exponent_bits}m{mantissa_bits} "
                         f"({kind}) has no ONNX float8 type; only float8e4m3fn, float8e5m2 and "
                         f"the fnuz variants export (docs/formats.md)")
    attributes = {} if axis is None else {"axis": axis}
    if block_size is not None:
        attributes["block_size"] = block_size
    zero_point = op.Cast(op.Sub(scale, scale), to=onnx_type)  # zeros shaped like scale
    q = op.QuantizeLinear(x, scale, zero_point, saturate=int(saturate), **attributes)
    return op.DequantizeLinear(q, scale, zero_point, **attributes)


def block_float_quantize_dequantize(x, fmt: str, axis: int = -1, tensor_scale=None):
    """``qsim::block_float_quantize_dequantize``: not exported yet (see the module docstring)."""
    raise ValueError(f"block_float_quantize_dequantize: the block format {fmt!r} has no ONNX "
                     f"export yet (its shared scales are computed from the data); "
                     f"docs/formats.md")
