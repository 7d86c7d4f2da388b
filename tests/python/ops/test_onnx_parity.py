"""Bit-exact parity of `torchqsim.functional` with ONNX QuantizeLinear / DequantizeLinear.

onnxruntime (CPU, graph optimizations off, opset 21) is the oracle: docs/design.md promises that
``quantize_dequantize`` is QuantizeLinear followed by DequantizeLinear bit for bit, so an
exported QDQ graph reproduces the simulation exactly. Every zero-point type of opset 21
(int8, uint8, int16, uint16, int4, uint4) is checked per-tensor (zero point at the low end, the
high end and inside the grid), per-axis (first, middle and last axis) and blocked (first and last
axis), on data holding exact .5 ties, values far outside the grid, +-Inf and NaN.

ONNX leaves NaN -> integer undefined, so at NaN inputs onnxruntime is no oracle; there the
simulation must keep NaN (docs/design.md) and every other element must match bit for bit.
4-bit tensors cannot cross the numpy boundary of onnxruntime, so the graphs Cast them to and from
8-bit carriers (exact for every 4-bit value).
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

import torchqsim.functional as F

OPSET = 21
SHAPE = (6, 10, 612)  # 36720 elements: more than one thread task, odd vector tails per channel

# name: (ONNX zero-point type, 8-bit carrier type or None, numpy dtype of the graph's integers,
#        the type's range (qmin, qmax))
TYPES = {
    "int8": (TensorProto.INT8, None, np.int8, (-128, 127)),
    "uint8": (TensorProto.UINT8, None, np.uint8, (0, 255)),
    "int16": (TensorProto.INT16, None, np.int16, (-32768, 32767)),
    "uint16": (TensorProto.UINT16, None, np.uint16, (0, 65535)),
    "int4": (TensorProto.INT4, TensorProto.INT8, np.int8, (-8, 7)),
    "uint4": (TensorProto.UINT4, TensorProto.UINT8, np.uint8, (0, 15)),
}

# name: (axis, block_size, per-tensor zero-point position or None)
LAYOUTS = {
    "tensor-zp-low": (None, None, "low"),
    "tensor-zp-mid": (None, None, "mid"),
    "tensor-zp-high": (None, None, "high"),
    "axis0": (0, None, None),
    "axis1": (1, None, None),
    "axis-1": (-1, None, None),
    "block-axis0": (0, 2, None),
    "block-axis-1": (-1, 4, None),
}


def _qparam_shape(axis, block_size):
    """Shape of scale and zero point: the same convention in ONNX opset 21 and torchqsim."""
    if axis is None:
        return ()
    if block_size is None:
        return (SHAPE[axis],)
    shape = list(SHAPE)
    shape[axis] //= block_size
    return tuple(shape)


def _broadcast(param, axis, block_size):
    """Expand a scale or zero-point array to SHAPE (the value each element of x uses)."""
    if axis is None:
        return np.broadcast_to(param, SHAPE)
    if block_size is None:
        view = [1] * len(SHAPE)
        view[axis] = SHAPE[axis]
        return np.broadcast_to(param.reshape(view), SHAPE)
    return np.repeat(param, block_size, axis=axis)


def _qparams(rng, type_name, layout):
    """Random positive fp32 scales and integer zero points spread over the whole grid."""
    axis, block_size, zp_position = LAYOUTS[layout]
    qmin, qmax = TYPES[type_name][3]
    shape = _qparam_shape(axis, block_size)
    scale = np.asarray(np.exp(rng.uniform(np.log(1e-3), np.log(4.0), size=shape)), np.float32)
    if zp_position is not None:
        mid = (qmin + qmax + 1) // 2 + 1  # one above the centre: not 0 on signed grids
        zp = {"low": qmin, "mid": mid, "high": qmax}[zp_position]
        zero_point = np.array(zp, dtype=np.int32)
    else:
        zero_point = rng.integers(qmin, qmax, size=shape, endpoint=True).astype(np.int32)
        zero_point.flat[0], zero_point.flat[-1] = qmin, qmax
    return scale, zero_point


def _data(rng, scale_full, zp_full, qmin, qmax):
    """x with exact .5 ties, in-grid noise, values far outside the grid, +-Inf and a few NaN.

    A tie x = (k + 0.5) * scale is kept only where fp32 x / scale is exactly k + 0.5, so ties to
    even decide the result in both implementations.
    """
    kind = rng.integers(0, 4, size=SHAPE)  # 0: tie, 1 and 2: noise, 3: far outside the grid
    lo, hi = qmin - zp_full, qmax - zp_full  # grid in units of scale, relative to the zero point
    half = (rng.integers(lo - 2, hi + 2, endpoint=True) + np.float32(0.5)).astype(np.float32)
    tie = half * scale_full
    tie_exact = (tie / scale_full) == half
    noise = (rng.uniform(lo - 3, hi + 3) * scale_full).astype(np.float32)
    far = (rng.choice([-1.0, 1.0], size=SHAPE) * (hi - lo + 1) * scale_full
           * 10.0 ** rng.uniform(1, 30, size=SHAPE)).astype(np.float32)
    x = np.where(kind == 0, np.where(tie_exact, tie, noise), noise)
    x = np.where(kind == 3, far, x).astype(np.float32)
    flat = x.reshape(-1)
    specials = rng.choice(flat.size, size=30, replace=False)
    flat[specials[:10]], flat[specials[10:20]], flat[specials[20:]] = np.inf, -np.inf, np.nan
    return x


def _case(type_name, layout):
    seed = sorted(TYPES).index(type_name) * 100 + sorted(LAYOUTS).index(layout)
    rng = np.random.default_rng(seed)
    axis, block_size, _ = LAYOUTS[layout]
    qmin, qmax = TYPES[type_name][3]
    scale, zero_point = _qparams(rng, type_name, layout)
    scale_full = _broadcast(scale, axis, block_size)
    zp_full = _broadcast(zero_point, axis, block_size)
    x = _data(rng, scale_full, zp_full, qmin, qmax)
    t = x / scale_full
    finite = np.isfinite(t)
    ties = np.sum(np.abs(t[finite] - np.trunc(t[finite])) == 0.5)
    assert ties > x.size // 8, f"only {ties} exact ties generated"
    assert np.sum(finite & (np.rint(t) + zp_full > qmax)) > 100, "too few values above the grid"
    assert np.sum(finite & (np.rint(t) + zp_full < qmin)) > 100, "too few values below the grid"
    return x, scale, zero_point, qmin, qmax, axis, block_size


def _model(type_name, scale, zero_point, axis, block_size, with_quantize, with_dequantize):
    """A checked opset-21 graph: Q, DQ or Q->DQ with scale and zero point as initializers."""
    zp_type, carrier, _, _ = TYPES[type_name]
    attrs = {} if axis is None else {"axis": axis}
    if block_size is not None:
        attrs["block_size"] = block_size
    inits = [helper.make_tensor("scale", TensorProto.FLOAT, scale.shape, scale.reshape(-1)),
             helper.make_tensor("zero_point", zp_type, zero_point.shape,
                                zero_point.reshape(-1).tolist())]
    nodes = []
    if with_quantize:
        in_type, name = TensorProto.FLOAT, "x"
        nodes.append(helper.make_node("QuantizeLinear", ["x", "scale", "zero_point"], ["q"], **attrs))
    elif carrier:
        in_type, name = carrier, "q_in"
        nodes.append(helper.make_node("Cast", ["q_in"], ["q"], to=zp_type))
    else:
        in_type, name = zp_type, "q"
    if with_dequantize:
        nodes.append(helper.make_node("DequantizeLinear", ["q", "scale", "zero_point"], ["y"],
                                      **attrs))
        out_type, out = TensorProto.FLOAT, "y"
    elif carrier:
        nodes.append(helper.make_node("Cast", ["q"], ["q_out"], to=carrier))
        out_type, out = carrier, "q_out"
    else:
        out_type, out = zp_type, "q"
    graph = helper.make_graph(nodes, "parity", [helper.make_tensor_value_info(name, in_type, SHAPE)],
                              [helper.make_tensor_value_info(out, out_type, SHAPE)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model


def _run(model, feed):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: feed})
    return out


def _ours(fn, data, scale, zero_point, *args):
    out = fn(torch.from_numpy(data), torch.from_numpy(scale), torch.from_numpy(zero_point), *args)
    return out.numpy()


def _mismatch_report(bad, x, ours, ref):
    idx = np.argwhere(bad)[:8]
    rows = [f"  at {tuple(int(v) for v in i)}: x={x[tuple(i)]!r} ours={ours[tuple(i)]!r} "
            f"onnxruntime={ref[tuple(i)]!r}" for i in idx]
    return f"{int(bad.sum())} of {bad.size} elements differ:\n" + "\n".join(rows)


def _assert_bits_equal(ours, ref, x):
    """fp32 results equal as int32 bit patterns, NaN inputs included (both clamp NaN to qmin:
    docs/design.md "Decisions")."""
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    bad = ours.view(np.int32) != ref.view(np.int32)
    assert not bad.any(), _mismatch_report(bad, x, ours, ref)


def _ours_and_onnx(fn, type_name, layout, dequantize):
    """`fn` on the case's input and the QuantizeLinear (+ DequantizeLinear) graph on it in
    onnxruntime; the input holds 10 NaNs (they quantize to qmin in both)."""
    x, scale, zero_point, qmin, qmax, axis, block_size = _case(type_name, layout)
    ref = _run(_model(type_name, scale, zero_point, axis, block_size, True, dequantize), x)
    ours = _ours(fn, x, scale, zero_point, qmin, qmax, axis, block_size)
    assert np.isnan(x).sum() == 10
    return x, ours, ref


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("type_name", TYPES)
def test_quantize_dequantize_matches_q_dq_graph(type_name, layout):
    x, ours, ref = _ours_and_onnx(F.quantize_dequantize, type_name, layout, dequantize=True)
    _assert_bits_equal(ours, ref, x)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("type_name", TYPES)
def test_quantize_matches_quantize_linear(type_name, layout):
    x, ours, ref = _ours_and_onnx(F.quantize, type_name, layout, dequantize=False)
    # Grid integers compare as values (an fp32 -0.0 is the integer 0).
    bad = ours != ref.astype(np.float32)
    assert not bad.any(), _mismatch_report(bad, x, ours, ref)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("type_name", TYPES)
def test_dequantize_matches_dequantize_linear(type_name, layout):
    _, scale, zero_point, qmin, qmax, axis, block_size = _case(type_name, layout)
    rng = np.random.default_rng(qmax - qmin)
    q = rng.integers(qmin, qmax, size=SHAPE, endpoint=True)
    q.flat[:2] = qmin, qmax
    q = q.astype(TYPES[type_name][2])
    ref = _run(_model(type_name, scale, zero_point, axis, block_size, False, True), q)
    q_float = q.astype(np.float32)
    ours = _ours(F.dequantize, q_float, scale, zero_point, axis, block_size)
    _assert_bits_equal(ours, ref, q_float)
