"""Minifloat rounding as a graph of standard ONNX ops, for the formats that have no ONNX type
(FP6 e3m2/e2m3, any custom ``(exponent_bits, mantissa_bits, kind)``), exactly as
kernels/include/qsim/minifloat.h defines it.

For ``t`` in fp32 (NaN kept as it is), with ``bias = 2^(e-1) - 1`` (``2^(e-1)`` for fnuz) and
the smallest normal exponent ``emin = 1 - bias``:

- ``k = max(floor(log2 |t|), emin)``, ``floor(log2)`` exact (:func:`floor_log2`);
- the quantum is ``q = 2^(k - m)`` (exact: a power of two, subnormal ones included) and the
  rounded magnitude ``r = Round(|t| / q) * q``; ``|t| / q`` is exact and ONNX ``Round`` rounds
  half to even, so this is IEEE rounding with an unbounded exponent and exact subnormals;
- overflow (``r > max`` or ``|t|`` infinite) becomes ``max`` when saturating (and always for
  ``finite`` formats), ``Inf`` for ``ieee``, NaN for ``fn``/``fnuz``;
- the sign of ``t`` is put back by a product with -1 or 1 (``-0`` included, found as
  ``1 / t < 0``; onnxruntime's ``Neg`` of 0 is +0); fnuz formats have no -0 (a zero becomes
  +0).

onnxruntime 1.32 runs this bit-exactly with the simulation over every fp16 value and random fp32
patterns (tests/python/export/test_float_export_onnx.py).
"""

import math

from onnxscript import opset21 as op

from ..float_formats import float_max

__all__ = ["broadcast_scale", "floor_log2", "pow2", "round_minifloat"]

_LN2 = 0.6931471805599453
_FLT_MAX = 3.4028234663852886e38


def _const(v: float):
    return op.Constant(value_float=float(v))


def pow2(k):
    """``2^k`` for an fp32 tensor of integers ``k`` (exact for k in [-149, 127])."""
    return op.Pow(_const(2.0), k)


def floor_log2(a):
    """``floor(log2 a)`` exactly: ``Floor(Log(a) / ln 2)`` corrected by one step either way against
    exact powers of two; ``-inf`` for ``a == 0``, ``inf`` for ``a == inf``."""
    k = op.Floor(op.Div(op.Log(a), _const(_LN2)))
    p = pow2(k)
    k = op.Sub(k, op.CastLike(op.Greater(p, a), k))
    return op.Add(k, op.CastLike(op.LessOrEqual(op.Mul(p, _const(2.0)), a), k))


def _overflow_value(exponent_bits, mantissa_bits, kind, saturate) -> float:
    if saturate or kind == "finite":
        return min(float_max(exponent_bits, mantissa_bits, kind), _FLT_MAX)
    return math.inf if kind == "ieee" else math.nan


def round_minifloat(t, exponent_bits: int, mantissa_bits: int, kind: str, saturate: bool):
    """``R(t)``: the fp32 tensor ``t`` rounded to the minifloat (see the module docstring)."""
    bias = 2 ** (exponent_bits - 1) - 1 + (kind == "fnuz")
    largest = min(float_max(exponent_bits, mantissa_bits, kind), _FLT_MAX)
    a = op.Abs(t)
    k = op.Max(floor_log2(a), _const(1 - bias))
    q = pow2(op.Sub(k, _const(mantissa_bits)))
    r = op.Mul(op.Round(op.Div(a, q)), q)
    over = op.Or(op.Greater(r, _const(largest)), op.IsInf(a))
    r = op.Where(over, _const(_overflow_value(exponent_bits, mantissa_bits, kind, saturate)), r)
    negative = op.Or(op.Less(t, _const(0.0)), op.Less(op.Reciprocal(t), _const(0.0)))
    y = op.Mul(r, op.Where(negative, _const(-1.0), _const(1.0)))  # onnxruntime's Neg(0) is +0
    if kind == "fnuz":
        y = op.Where(op.Equal(y, _const(0.0)), _const(0.0), y)
    return op.Where(op.IsNaN(t), t, y)


def broadcast_scale(scale, shape, axis, block_size):
    """``scale`` made broadcastable against a tensor of static ``shape``, as the op lays it out:
    per-tensor (``axis`` None or a scalar scale), per-channel along ``axis``, or one scale per
    ``block_size`` consecutive elements along ``axis`` (repeated)."""
    if axis is None:
        return scale
    rank = len(shape)
    axis %= rank
    if block_size is None:
        return op.Reshape(scale, op.Constant(value_ints=[-1 if d == axis else 1
                                                         for d in range(rank)]))
    blocks = int(shape[axis]) // block_size  # the op checks that block_size divides the axis
    outer = [int(d) for d in shape[:axis]]
    inner = [int(d) for d in shape[axis + 1:]]
    s = op.Unsqueeze(scale, op.Constant(value_ints=[axis + 1]))
    s = op.Expand(s, op.Constant(value_ints=outer + [blocks, block_size] + inner))
    return op.Reshape(s, op.Constant(value_ints=outer + [blocks * block_size] + inner))
