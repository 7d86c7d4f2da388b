"""ONNX translation of the float-format ops (``torch.ops.qsim.minifloat_quantize_dequantize`` and
``block_float_quantize_dequantize``) for the dynamo exporter, standard domain only.

Minifloats:

- formats with an ONNX type (float8e4m3fn, float8e5m2, float8e4m3fnuz, float8e5m2fnuz and the
  FP4 float4e2m1) become ``DequantizeLinear(QuantizeLinear(x, scale, zp, saturate))`` with a
  zero point of 0 of that type (per-tensor, per-axis or blocked like the op); float4e2m1 needs
  opset 23 (:func:`needs_opset_23`);
- every other format (FP6, custom splits) is the decomposition of :mod:`.minifloat_onnx`:
  ``Mul(R(Div(x, scale)), scale)`` in standard ops.

Block formats (OCP MX v1.0, NVFP4), along any axis: the blocked axis is moved last
(``Transpose``), the rows are padded with zeros to whole blocks (zeros change no block maximum)
and cut into blocks of 32 (16), and each block gets its scale computed in fp32 in the graph
(ONNX has no E8M0 scale input before opset 24):

- MX: ``A = ReduceMax(Abs(block))``, ``S = 2^max(floor(log2 A) - emax, -127)`` (MXINT8:
  ``S / 64``), NaN for a block holding +-Inf; elements ``DequantizeLinear(QuantizeLinear(block,
  S))`` to float8e4m3fn / float8e5m2 / int8 / float4e2m1 (saturating), or the minifloat
  decomposition for the FP6 elements;
- NVFP4: the E4M3 block scale ``S = DequantizeLinear(QuantizeLinear(A / 6, d, float8e4m3fn), d)``
  with the fp32 tensor scale ``d``; elements float4e2m1 Q/DQ with ``S``; an all-zero scale keeps
  ``x * 0``.

docs/formats.md §4 says what runs where (onnxruntime 1.32 has no float4e2m1 kernel; the FP4
graphs are checked with ``onnx.reference.ReferenceEvaluator``).
"""

from onnx import TensorProto
from onnxscript import opset21 as op

from .minifloat_onnx import broadcast_scale, floor_log2, pow2, round_minifloat

__all__ = ["FLOAT4_FORMATS", "FLOAT_TYPES", "block_float_quantize_dequantize",
           "minifloat_quantize_dequantize"]

FLOAT_TYPES = {
    (4, 3, "fn"): TensorProto.FLOAT8E4M3FN,
    (5, 2, "ieee"): TensorProto.FLOAT8E5M2,
    (4, 3, "fnuz"): TensorProto.FLOAT8E4M3FNUZ,
    (5, 2, "fnuz"): TensorProto.FLOAT8E5M2FNUZ,
    (2, 1, "finite"): TensorProto.FLOAT4E2M1,
}
"""(exponent_bits, mantissa_bits, kind) -> the ONNX float type of that format."""

FLOAT4_FORMATS = frozenset({"mxfp4", "nvfp4"})
"""Block formats whose graph holds float4e2m1, which needs opset 23 (as FP4 e2m1 minifloats)."""

# MX block formats -> (element (exponent, mantissa, kind) or None for int8, emax of the element
# format, exponent offset of the integer step: 6 for MXINT8's 2^-6).
_MX = {"mxfp8_e4m3": ((4, 3, "fn"), 8, 0), "mxfp8_e5m2": ((5, 2, "ieee"), 15, 0),
       "mxfp6_e3m2": ((3, 2, "finite"), 4, 0), "mxfp6_e2m3": ((2, 3, "finite"), 2, 0),
       "mxfp4": ((2, 1, "finite"), 2, 0), "mxint8": (None, 0, 6)}


def _const(v: float):
    return op.Constant(value_float=float(v))


def _qdq(x, scale, onnx_type, saturate=True, zero_point=None, **attributes):
    """``DequantizeLinear(QuantizeLinear(x, scale))`` through ``onnx_type`` (zero point 0)."""
    if zero_point is None:
        q = op.QuantizeLinear(x, scale, output_dtype=onnx_type, saturate=int(saturate),
                              **attributes)
        return op.DequantizeLinear(q, scale, **attributes)
    q = op.QuantizeLinear(x, scale, zero_point, saturate=int(saturate), **attributes)
    return op.DequantizeLinear(q, scale, zero_point, **attributes)


def minifloat_quantize_dequantize(x, scale, exponent_bits: int, mantissa_bits: int, kind: str,
                                  saturate: bool, axis=None, block_size=None):
    """``qsim::minifloat_quantize_dequantize``: float8/float4 Q/DQ, or the decomposition."""
    onnx_type = FLOAT_TYPES.get((exponent_bits, mantissa_bits, kind))
    per_tensor = axis is None or len(scale.shape) == 0
    if onnx_type is not None:
        attributes = {} if per_tensor else {"axis": axis}
        if block_size is not None and not per_tensor:
            attributes["block_size"] = block_size
        zero_point = op.Cast(op.Sub(scale, scale), to=onnx_type)  # zeros shaped like scale
        return _qdq(x, scale, onnx_type, saturate or kind == "finite", zero_point, **attributes)
    s = broadcast_scale(op.Cast(scale, to=TensorProto.FLOAT), x.shape,
                        None if per_tensor else axis, block_size)
    t = op.Div(op.Cast(x, to=TensorProto.FLOAT), s)
    y = op.Mul(round_minifloat(t, exponent_bits, mantissa_bits, kind, saturate), s)
    return op.CastLike(y, x)


def _mx_blocks(blocks, fmt: str):
    """MX quantize-dequantize of ``blocks`` ([-1, 32] fp32)."""
    elem, emax, step = _MX[fmt]
    amax = op.ReduceMax(op.Abs(blocks), op.Constant(value_ints=[1]), keepdims=1)
    e = op.Max(op.Sub(floor_log2(amax), _const(emax)), _const(-127.0))
    scale = pow2(op.Sub(e, _const(step)))
    scale = op.Where(op.Or(op.IsNaN(amax), op.IsInf(amax)), _const(float("nan")), scale)
    onnx_type = TensorProto.INT8 if elem is None else FLOAT_TYPES.get(elem)
    if onnx_type is None:  # FP6 elements: no ONNX type
        return op.Mul(round_minifloat(op.Div(blocks, scale), *elem, True), scale)
    return _qdq(blocks, scale, onnx_type, axis=1, block_size=32)


def _nvfp4_blocks(blocks, tensor_scale):
    """NVFP4 quantize-dequantize of ``blocks`` ([-1, 16] fp32) with the fp32 tensor scale."""
    d = op.Cast(tensor_scale, to=TensorProto.FLOAT)
    amax = op.ReduceMax(op.Abs(blocks), op.Constant(value_ints=[1]), keepdims=1)
    scale = _qdq(op.Div(amax, _const(6.0)), d, TensorProto.FLOAT8E4M3FN)
    scale = op.Where(op.Or(op.IsNaN(amax), op.IsInf(amax)), _const(float("nan")), scale)
    zero = op.Equal(scale, _const(0.0))
    safe = op.Where(zero, _const(1.0), scale)
    y = _qdq(blocks, safe, TensorProto.FLOAT4E2M1, axis=1, block_size=16)
    return op.Where(zero, op.Mul(blocks, _const(0.0)), y)


def block_float_quantize_dequantize(x, fmt: str, axis: int = -1, tensor_scale=None):
    """``qsim::block_float_quantize_dequantize`` for every block format along any axis (see the
    module docstring). The blocked dimension must have a static size."""
    rank = len(x.shape)
    axis %= rank
    n = x.shape[axis]
    if not isinstance(n, int):
        raise ValueError(f"block_float_quantize_dequantize: the blocked axis {axis} of {fmt!r} "
                         f"must have a static size for the ONNX export, got {n}")
    block = 16 if fmt == "nvfp4" else 32
    perm = [d for d in range(rank) if d != axis] + [axis]
    xt = op.Cast(x, to=TensorProto.FLOAT)
    if axis != rank - 1:
        xt = op.Transpose(xt, perm=perm)
    pad = -n % block
    rows = op.Reshape(xt, op.Constant(value_ints=[-1, n]))
    if pad:
        rows = op.Pad(rows, op.Constant(value_ints=[0, 0, 0, pad]))
    blocks = op.Reshape(rows, op.Constant(value_ints=[-1, block]))
    y = _nvfp4_blocks(blocks, tensor_scale) if fmt == "nvfp4" else _mx_blocks(blocks, fmt)
    y = op.Reshape(y, op.Constant(value_ints=[-1, n + pad]))
    if pad:
        y = op.Slice(y, op.Constant(value_ints=[0]), op.Constant(value_ints=[n]),
                     op.Constant(value_ints=[1]))
    y = op.Reshape(y, op.Shape(xt))
    if axis != rank - 1:
        y = op.Transpose(y, perm=[perm.index(d) for d in range(rank)])
    return op.CastLike(y, x)
