"""fp16 and bf16 data in the CPU ops: computed as fp32 and rounded once to the data's dtype, read
and written in that dtype (issue 15 item 2: no fp32 copy of the tensor).

Oracles: the pure-torch formula of the qdq ops on the data cast to fp32, rounded to the dtype
(``torch.round`` rounds half to even, as ``rint``); the same op on the fp32 cast (forward,
straight-through and range-learning backward, statistics); torch's profiler for the absence
of any aten copy or dtype conversion of the data's size inside an op (range learning included).
"""

import pytest
import torch

import torchqsim  # noqa: F401  (registers the ops)

from asserts import assert_same, big_copies
from qdq_cases import grid_data, make_qparams
from reference import expand_qparam

ops = torch.ops.qsim
QMIN, QMAX = 0, 255
HALF = [torch.bfloat16, torch.float16]
# Several 4096-element chunks of the kernels' buffer, with chunk edges inside rows and blocks.
LAYOUTS = {"per-tensor": ((3, 70, 61), None, None), "axis0": ((37, 700), 0, None),
           "last-axis": ((300, 45), 1, None), "block-last": ((96, 128), 1, 32),
           "block-middle": ((4, 64, 50), 1, 16)}


def _case(layout, dtype, seed=0):
    shape, axis, block = LAYOUTS[layout]
    g = torch.Generator().manual_seed(seed)
    scale, zp = make_qparams(g, shape, axis, block, QMIN, QMAX, torch.float32)
    x = grid_data(g, shape, scale, zp, QMIN, QMAX, axis, block).to(dtype)
    x.view(-1)[:3] = torch.tensor([float("inf"), float("-inf"), 0.0])
    return x, scale, zp, torch.randn(shape, generator=g).to(dtype), axis, block


def _formula(x, scale, zp, axis, block):
    """Pure-torch qdq of x in fp32, rounded to x's dtype."""
    s = expand_qparam(scale, x.shape, axis, block)
    z = expand_qparam(zp.float(), x.shape, axis, block)
    q = torch.clamp(torch.round(x.float() / s) + z, QMIN, QMAX)
    return ((q - z) * s).to(x.dtype)


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_forward_is_the_fp32_formula_rounded_once(layout, dtype):
    x, scale, zp, _, axis, block = _case(layout, dtype)
    y = ops.quantize_dequantize(x, scale, zp, QMIN, QMAX, axis, block)
    assert y.dtype == dtype
    assert_same(y, _formula(x, scale, zp, axis, block), "qdq")
    assert_same(y, ops.quantize_dequantize(x.float(), scale, zp, QMIN, QMAX, axis, block).to(dtype))
    q = ops.quantize(x, scale, zp, QMIN, QMAX, axis, block)
    assert q.dtype == dtype
    assert_same(q, ops.quantize(x.float(), scale, zp, QMIN, QMAX, axis, block).to(dtype), "quantize")
    assert_same(ops.dequantize(q, scale, zp, axis, block),
                ops.dequantize(q.float(), scale, zp, axis, block).to(dtype), "dequantize")
    out = torch.empty_like(x).transpose(0, -1).contiguous().transpose(0, -1)  # other strides
    ops.quantize_dequantize_out(x, scale, zp, QMIN, QMAX, axis, block, out)
    assert_same(out, y, "out=")
    inplace = x.clone()
    ops.quantize_dequantize_out(inplace, scale, zp, QMIN, QMAX, axis, block, inplace)
    assert_same(inplace, y, "in place")


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_backward_equals_the_fp32_path(layout, dtype):
    x, scale, zp, dy, axis, block = _case(layout, dtype, seed=1)
    grid = (QMIN, QMAX, axis, block)
    for learn in (False, True):
        got = ops.quantize_dequantize_backward(dy, x, scale, zp, *grid, learn)
        want = ops.quantize_dequantize_backward(dy.float(), x.float(), scale, zp, *grid, learn)
        assert got[0].dtype == dtype
        assert_same(got[0], want[0].to(dtype), f"dx (range learning {learn})")
        if learn:
            assert_same(got[1], want[1], "dscale")
            assert_same(got[2], want[2], "dzero_point")
    xg = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(ops.quantize_dequantize(xg, scale, zp, *grid), xg, dy)
    assert grad.dtype == dtype
    assert_same(grad, ops.quantize_dequantize_backward(dy, x, scale, zp, *grid, False)[0], "autograd")


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("axis", [None, 0, 1, 2])
def test_statistics_equal_those_of_the_fp32_cast(axis, dtype):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(5, 3000, 3, generator=g) * 4).to(dtype)  # channels longer than a chunk too
    x.view(-1)[[7, 900, 14000]] = torch.tensor([float("nan"), float("inf"), -1e4]).to(dtype)
    shape = () if axis is None else (x.shape[axis],)
    rng = torch.tensor([-6.0, 5.0], dtype=torch.float64).expand(*shape, 2).contiguous()
    for op, args in (("minmax", (axis,)), ("histogram", (rng, 128, axis))):
        for a, b in zip(getattr(ops, op)(x, *args), getattr(ops, op)(x.float(), *args)):
            if a.is_floating_point():
                assert_same(a, b, f"{op} axis {axis}")
            else:
                assert a.dtype == b.dtype and torch.equal(a, b), f"{op} axis {axis} counts"


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_no_fp32_copy_of_the_data(layout, dtype):
    x, scale, zp, dy, axis, block = _case(layout, dtype, seed=2)
    grid = (QMIN, QMAX, axis, block)
    calls = {"forward": lambda: ops.quantize_dequantize(x, scale, zp, *grid),
             "out=": lambda: ops.quantize_dequantize_out(x, scale, zp, *grid, torch.empty_like(x)),
             "STE backward": lambda: ops.quantize_dequantize_backward(dy, x, scale, zp, *grid, False),
             "range-learning backward":
                 lambda: ops.quantize_dequantize_backward(dy, x, scale, zp, *grid, True),
             "minmax": lambda: ops.minmax(x, axis),
             "histogram": lambda: ops.histogram(x, torch.tensor([-1.0, 1.0], dtype=torch.float64),
                                                64, None)}
    if axis is None:  # the in-place ops (per tensor only), eval and training forms
        target = x.clone()
        calls["in place"] = lambda: ops.quantize_dequantize_(target, scale, zp, QMIN, QMAX)
        calls["in place, clamped bits"] = lambda: ops.quantize_dequantize_clamped_(
            target, scale, zp, QMIN, QMAX)
    for name, fn in calls.items():
        assert big_copies(fn, x.numel()) == [], f"{layout} {name} copied the data"
    # the detector sees conversions
    assert big_copies(lambda: ops.quantize_dequantize_backward(dy.float(), x, scale, zp, *grid,
                                                               True), x.numel())
