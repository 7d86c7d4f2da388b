"""ONNX translation of the float-format ops (``torch.ops.qsim.minifloat_quantize_dequantize`` and
``block_float_quantize_dequantize``) for the dynamo exporter, standard domain only.

- minifloats whose format is an ONNX float8 type (float8e4m3fn, float8e5m2, float8e4m3fnuz,
  float8e5m2fnuz) become ``DequantizeLinear(QuantizeLinear(x, scale, zp, saturate))`` with a zero
  point of 0 of that type (per-tensor, per-axis or blocked like the op); onnxruntime reproduces
  the simulation bit for bit with ``saturate=1`` (tests/python/export/test_float_formats_onnx.py
  states its two non-saturating deviations);
- MXFP8 and MXINT8 along the last axis: the decomposition of
  :func:`block_float_quantize_dequantize` (fp32 E8M0 scales computed in the graph);
- other minifloats and block formats (no ONNX type: FP6; FP4 needs opset 23, beyond the
  exporter's opset 21; NVFP4's E4M3 block scales) raise a ValueError naming the format, so an
  export never silently drops a quantizer. docs/formats.md lists what exports.
"""

from onnx import TensorProto
from onnxscript import opset21 as op

__all__ = ["FLOAT8_TYPES", "MX_EXPORT", "block_float_quantize_dequantize",
           "minifloat_quantize_dequantize"]

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


# Block formats the exporter decomposes: fmt -> (ONNX element type, emax of the element format,
# exponent offset of the integer step: 6 for MXINT8's 2^-6). FP4 and FP6 have no type in opset 21.
MX_EXPORT = {"mxfp8_e4m3": (TensorProto.FLOAT8E4M3FN, 8, 0),
              "mxfp8_e5m2": (TensorProto.FLOAT8E5M2, 15, 0),
              "mxint8": (TensorProto.INT8, 0, 6)}
_LN2 = 0.6931471805599453


def _floor_log2(a):
    """floor(log2 a) exactly: Floor(Log(a) / ln 2) corrected by one step either way with exact
    powers of two (Pow of an integer exponent), -inf for a == 0."""
    k = op.Floor(op.Div(op.Log(a), op.Constant(value_float=_LN2)))
    p = op.Pow(op.Constant(value_float=2.0), k)
    k = op.Sub(k, op.CastLike(op.Greater(p, a), k))
    return op.Add(k, op.CastLike(op.LessOrEqual(op.Mul(p, op.Constant(value_float=2.0)), a), k))


def block_float_quantize_dequantize(x, fmt: str, axis: int = -1, tensor_scale=None):
    """``qsim::block_float_quantize_dequantize`` for MXFP8 and MXINT8 along the last axis, as the
    documented decomposition of docs/formats.md: the E8M0 scale ``2^max(floor(log2 A) - emax,
    -127)`` of each block of 32 computed in fp32 from ``ReduceMax(Abs)`` (ONNX has no E8M0 scale
    input before opset 24), then a blocked QuantizeLinear -> DequantizeLinear (saturating). The
    blocked dimension must be a multiple of 32. Other formats raise (see the module docstring)."""
    rank = len(x.shape) if getattr(x, "shape", None) is not None else None
    if fmt not in MX_EXPORT or (axis != -1 and (rank is None or axis != rank - 1)):
        raise ValueError(f"block_float_quantize_dequantize: the block format {fmt!r} along axis "
                         f"{axis} has no ONNX export (MXFP8 and MXINT8 along the last axis do; "
                         f"FP4/FP6 need opset 23); docs/formats.md")
    onnx_type, emax, step = MX_EXPORT[fmt]
    blocks = op.Reshape(x, op.Constant(value_ints=[-1, 32]))
    amax = op.ReduceMax(op.Abs(blocks), op.Constant(value_ints=[1]), keepdims=1)
    e = op.Max(op.Sub(_floor_log2(amax), op.Constant(value_float=float(emax))),
               op.Constant(value_float=-127.0))
    scale = op.Pow(op.Constant(value_float=2.0), op.Sub(e, op.Constant(value_float=float(step))))
    bad = op.Or(op.IsNaN(amax), op.IsInf(amax))
    scale = op.Where(bad, op.Constant(value_float=float("nan")), scale)
    attributes = {"axis": 1, "block_size": 32}
    q = op.QuantizeLinear(blocks, scale, output_dtype=onnx_type, **attributes)  # zero point 0
    y = op.DequantizeLinear(q, scale, **attributes)
    return op.Reshape(y, op.Shape(x))
