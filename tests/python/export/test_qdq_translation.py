"""The ONNX translation of the qsim ops (torchqsim.export.QDQ_TRANSLATION_TABLE) against the ops.

Small modules calling ``torchqsim.functional`` are exported with the dynamo exporter and run in
onnxruntime (graph optimizations off); the outputs must equal the simulation bit for bit, for
every grid: the ones an ONNX type holds exactly (int4/uint4/int8/uint8/int16/uint16), strict
symmetric grids and odd bitwidths (a clamp in front of QuantizeLinear), per-tensor, per-axis and
blocked, on data with exact rounding ties, values far outside the grid and +-Inf. (NaN is left
out: ONNX leaves NaN -> integer undefined.)
"""

import math

import onnx
import pytest
import torch
from onnx import TensorProto

import torchqsim.functional as F
from asserts import assert_same
from reference import expand_qparam
from torchqsim.export import QDQ_TRANSLATION_TABLE, grid_type

SHAPE = (4, 6, 16)

# (qmin, qmax): exact ONNX types, strict symmetric, and odd bitwidths.
GRIDS = [(-128, 127), (0, 255), (-32768, 32767), (0, 65535), (-8, 7), (0, 15),
         (-127, 127), (-7, 7), (-32767, 32767), (-4, 3), (0, 31), (-512, 511)]

LAYOUTS = {"per-tensor": (None, None), "axis1": (1, None), "block-axis-1": (-1, 4)}


def _qparams(gen, qmin, qmax, axis, block_size):
    if axis is None:
        shape = ()
    elif block_size is None:
        shape = (SHAPE[axis],)
    else:
        shape = list(SHAPE)
        shape[axis] //= block_size
    scale = torch.exp(torch.empty(shape).uniform_(math.log(0.01), math.log(0.1), generator=gen))
    zero_point = torch.randint(qmin, qmax + 1, shape, generator=gen, dtype=torch.int32)
    return scale, zero_point


def _data(gen, scale, zero_point, qmin, qmax, axis, block_size):
    """Half the elements exact ties (k + 0.5 in units of scale, where fp32 keeps them exact),
    the rest spread over the grid and 3 steps past both ends; +-Inf and far values included."""
    s = expand_qparam(scale, SHAPE, axis, block_size)
    z = expand_qparam(zero_point.float(), SHAPE, axis, block_size)
    k = torch.randint(qmin - 3, qmax + 4, SHAPE, generator=gen).float()
    tie = (k + 0.5 - z) * s
    exact = (tie / s) == (k + 0.5 - z)
    noise = (k + torch.empty(SHAPE).uniform_(-0.45, 0.45, generator=gen) - z) * s
    x = torch.where(exact & (torch.rand(SHAPE, generator=gen) < 0.5), tie, noise)
    flat = x.view(-1)
    flat[:4] = torch.tensor([math.inf, -math.inf, 1e30, -1e30])
    return x, int((exact & (x == tie)).sum())


class _Grids(torch.nn.Module):
    """Returns ``quantize_dequantize`` of x on each grid (qparams as buffers)."""

    def __init__(self, qparams, axis, block_size):
        super().__init__()
        self.grids, self.axis, self.block_size = [g for g, _, _ in qparams], axis, block_size
        for i, (_, scale, zero_point) in enumerate(qparams):
            self.register_buffer(f"scale{i}", scale)
            self.register_buffer(f"zero_point{i}", zero_point)

    def forward(self, *xs):
        return tuple(F.quantize_dequantize(x, getattr(self, f"scale{i}"),
                                           getattr(self, f"zero_point{i}"), qmin, qmax,
                                           self.axis, self.block_size)
                     for i, (x, (qmin, qmax)) in enumerate(zip(xs, self.grids)))


class _Lambda(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _export(module, *inputs):
    program = torch.onnx.export(module.eval(), inputs, dynamo=True, opset_version=21, verbose=False,
                                custom_translation_table=QDQ_TRANSLATION_TABLE)
    proto = program.model_proto
    onnx.checker.check_model(proto, full_check=True)
    return proto


@pytest.mark.parametrize("layout", LAYOUTS)
def test_quantize_dequantize_bit_exact_in_onnxruntime(layout, ort_run):
    axis, block_size = LAYOUTS[layout]
    gen = torch.Generator().manual_seed(sorted(LAYOUTS).index(layout))
    qparams, inputs = [], []
    for qmin, qmax in GRIDS:
        scale, zero_point = _qparams(gen, qmin, qmax, axis, block_size)
        x, ties = _data(gen, scale, zero_point, qmin, qmax, axis, block_size)
        assert ties > x.numel() // 8, f"only {ties} exact ties for grid {(qmin, qmax)}"
        qparams.append(((qmin, qmax), scale, zero_point))
        inputs.append(x)
    module = _Grids(qparams, axis, block_size)
    proto = _export(module, *inputs)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") == len(GRIDS)
    assert {n.domain for n in proto.graph.node} == {""}, "only standard ONNX ops"
    outputs = ort_run(proto, *inputs)
    for (grid, _, _), out, expected in zip(qparams, outputs, module(*inputs)):
        assert_same(out, expected, f"grid {grid}, {layout}")


def test_narrow_grid_needs_the_clamp(ort_run):
    """Without the clamp, strict symmetric data below the grid would reach -128 in int8."""
    x = torch.tensor([-200.0, -127.6, -127.4, 0.5, 127.6, 200.0])
    scale, zero_point = torch.tensor(1.0), torch.tensor(0, dtype=torch.int32)
    strict = F.quantize_dequantize(x, scale, zero_point, -127, 127)
    full = F.quantize_dequantize(x, scale, zero_point, -128, 127)
    assert not torch.equal(strict, full)
    (out,) = ort_run(_export(_Lambda(lambda t: F.quantize_dequantize(t, scale, zero_point,
                                                                       -127, 127)), x), x)
    assert_same(out, strict, "strict symmetric")
    assert out.min() == -127.0


def test_quantize_and_dequantize_ops(ort_run):
    gen = torch.Generator().manual_seed(7)
    scale, zero_point = _qparams(gen, -7, 7, -1, 4)
    x, _ = _data(gen, scale, zero_point, -7, 7, -1, 4)
    quantize = _Lambda(lambda t: F.quantize(t, scale, zero_point, -7, 7, -1, 4))
    (q,) = ort_run(_export(quantize, x), x)
    assert_same(q, quantize(x), "quantize")
    integers = torch.randint(-7, 8, SHAPE, generator=gen).float()
    dequantize = _Lambda(lambda t: F.dequantize(t, scale, zero_point, -1, 4))
    (y,) = ort_run(_export(dequantize, integers), integers)
    assert_same(y, dequantize(integers), "dequantize")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_float_quantize_dequantize_is_a_cast_pair(dtype, ort_run):
    info = torch.finfo(dtype)
    ulp = torch.tensor(1.0, dtype=dtype).nextafter(torch.tensor(2.0, dtype=dtype)).float() - 1
    # Ties between two representable values (to even), values past the max, subnormals, +-Inf.
    base = torch.linspace(-4, 4, 257)
    x = torch.cat([base, base + ulp / 2, base * info.max / 4 * 1.01, base * info.tiny * 0.3,
                   torch.tensor([math.inf, -math.inf, info.max * 1.0001, 65520.0])])
    module = _Lambda(lambda t: F.float_quantize_dequantize(t, dtype))
    proto = _export(module, x)
    assert [n.op_type for n in proto.graph.node] == ["Cast", "Cast"]
    (out,) = ort_run(proto, x)
    assert_same(out, module(x), str(dtype))


def test_grid_type():
    assert grid_type(-128, 127) == (TensorProto.INT8, True)
    assert grid_type(0, 255) == (TensorProto.UINT8, True)
    assert grid_type(-8, 7) == (TensorProto.INT4, True)
    assert grid_type(0, 15) == (TensorProto.UINT4, True)
    assert grid_type(-32768, 32767) == (TensorProto.INT16, True)
    assert grid_type(0, 65535) == (TensorProto.UINT16, True)
    assert grid_type(-127, 127) == (TensorProto.INT8, False)
    assert grid_type(0, 31) == (TensorProto.UINT8, False)
    assert grid_type(-4, 3) == (TensorProto.INT4, False)
    with pytest.raises(ValueError, match=r"grid \[-5, 40000\] fits no ONNX"):
        grid_type(-5, 40000)
