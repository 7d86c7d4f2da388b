"""Memory behaviour of the qdq ops: no copies of dense layouts, strides kept, the ``out=`` variant,
and results that do not depend on the thread count.

Oracles: the op itself on a contiguous copy (only the layout in memory changes, so forward values
and data gradients must match bit for bit; qparam gradients are sums taken in memory order and
agree within a rounding bound); torch's profiler for which aten copies run inside an op (a sliced
input, which must be copied, shows that the detector sees them).
"""

import pytest
import torch

import torchqsim.functional as F
from asserts import assert_same, assert_within, big_copies
from qdq_cases import grid_data, make_qparams

ops = torch.ops.qsim
QMIN, QMAX = -128, 127
SHAPE = (2, 16, 9, 12)  # N, C, H, W


def _case(axis, block=None, seed=0, shape=SHAPE):
    g = torch.Generator().manual_seed(seed)
    scale, zp = make_qparams(g, shape, axis, block, QMIN, QMAX, torch.float32)
    x = grid_data(g, shape, scale, zp, QMIN, QMAX, axis, block)
    return x, scale, zp, torch.randn(shape, generator=g)


def _channels_last(t):
    return t.contiguous(memory_format=torch.channels_last)


# NCHW activations on axis 1, weights on axis 0, channels-last activations on axis 1, and the
# per-tensor and blockwise layouts of each: none copies the data or its gradient.
NO_COPY = {
    "nchw-axis1": (lambda t: t, 1, None),
    "weight-axis0": (lambda t: t, 0, None),
    "channels_last-axis1": (_channels_last, 1, None),
    "channels_last-per-tensor": (_channels_last, None, None),
    "channels_last-block-axis3": (_channels_last, 3, 4),
}


@pytest.mark.parametrize("case", NO_COPY)
def test_dense_layouts_are_not_copied(case):
    make, axis, block = NO_COPY[case]
    x, scale, zp, dy = _case(axis, block)
    x, dy = make(x), make(dy)
    n = x.numel()
    grid = (QMIN, QMAX, axis, block)
    out = torch.empty_like(x)
    calls = {
        "forward": lambda: ops.quantize_dequantize(x, scale, zp, *grid),
        "out=": lambda: ops.quantize_dequantize_out(x, scale, zp, *grid, out),
        "STE backward": lambda: ops.quantize_dequantize_backward(dy, x, scale, zp, *grid, False),
        "range backward": lambda: ops.quantize_dequantize_backward(dy, x, scale, zp, *grid, True),
    }
    for name, fn in calls.items():
        assert big_copies(fn, n) == [], f"{case} {name} copied the data"
    # the detector works: a sliced input is not dense and must be copied
    sliced = x[..., ::2]
    assert big_copies(lambda: ops.quantize_dequantize(sliced, torch.tensor(0.1), torch.tensor(0),
                                                       QMIN, QMAX),
                       sliced.numel())


@pytest.mark.parametrize("axis,block", [(None, None), (1, None), (3, 4), (2, 3)],
                         ids=["per-tensor", "axis1", "block-axis3", "block-axis2"])
def test_channels_last_matches_contiguous_and_keeps_its_layout(axis, block):
    x, scale, zp, dy = _case(axis, block, seed=1)
    xl, dyl = _channels_last(x), _channels_last(dy)
    y = F.quantize_dequantize(xl, scale, zp, QMIN, QMAX, axis, block)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_same(y, F.quantize_dequantize(x, scale, zp, QMIN, QMAX, axis, block), "forward")
    got = ops.quantize_dequantize_backward(dyl, xl, scale, zp, QMIN, QMAX, axis, block, True)
    want = ops.quantize_dequantize_backward(dy, x, scale, zp, QMIN, QMAX, axis, block, True)
    assert got[0].is_contiguous(memory_format=torch.channels_last)
    assert_same(got[0], want[0], "dx")
    # the sums run in another order: each of the n terms per qparam may round differently, so
    # allow n fp32 roundings of the largest partial sum (the sum of |terms|, bounded by
    # sum |dy| * (|qz| + |t|) <= sum |dy| * 2 * (qmax - qmin))
    n = x.numel() // scale.numel()
    bound = n * 2.0**-24 * dy.abs().sum() * 2 * (QMAX - QMIN) / scale.numel()
    for name, a, b in (("dscale", got[1], want[1]), ("dzero_point", got[2], want[2])):
        assert a.shape == b.shape and a.is_contiguous(), name
        assert_within(a, b, torch.full_like(b, bound.item()), name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
@pytest.mark.parametrize("axis,block", [(None, None), (1, None), (0, 2)],
                         ids=["per-tensor", "axis1", "block-axis0"])
def test_out_matches_the_functional_result(axis, block, dtype):
    x, scale, zp, _ = _case(axis, block, seed=2)
    x = x.to(dtype)
    want = F.quantize_dequantize(x, scale, zp, QMIN, QMAX, axis, block)
    for out in (torch.empty_like(x), torch.full_like(x, float("nan")).transpose(0, 3).contiguous()
                .transpose(0, 3), _channels_last(torch.zeros_like(x)), torch.empty_like(x)[:, :]):
        got = F.quantize_dequantize(x, scale, zp, QMIN, QMAX, axis, block, out=out)
        assert got is out
        assert_same(out, want, f"out with strides {out.stride()}")
    inplace = x.clone()
    assert F.quantize_dequantize(inplace, scale, zp, QMIN, QMAX, axis, block, out=inplace) is inplace
    assert_same(inplace, want, "in place")


def test_out_refuses_bad_buffers_and_autograd():
    x, scale, zp, _ = _case(1)
    args = (x, scale, zp, QMIN, QMAX, 1)
    with pytest.raises(ValueError, match="out shape"):
        F.quantize_dequantize(*args, out=torch.empty(3))
    with pytest.raises(TypeError, match="out dtype"):
        F.quantize_dequantize(*args, out=torch.empty_like(x, dtype=torch.float16))
    buf = torch.empty(x.numel() + 1)
    with pytest.raises(ValueError, match="out overlaps x"):
        F.quantize_dequantize(buf[:-1].view(x.shape), scale, zp, QMIN, QMAX, 1,
                              out=buf[1:].view(x.shape))
    with pytest.raises(ValueError, match="share memory"):
        F.quantize_dequantize(x[:1], scale, zp, QMIN, QMAX, 1,
                              out=torch.empty(1, 16, 9, 1).expand(1, 16, 9, 12))
    s = torch.full((16 * 9 * 12,), 0.5)
    with pytest.raises(ValueError, match="out overlaps scale"):
        F.quantize_dequantize(x[:1], s[:16], zp, QMIN, QMAX, 1, out=s.view(1, 16, 9, 12))
    with pytest.raises(RuntimeError, match="out= does not support automatic differentiation"):
        F.quantize_dequantize(x, scale.requires_grad_(), zp, QMIN, QMAX, 1, out=torch.empty_like(x))
    with torch.no_grad():  # no gradient needed: fine
        F.quantize_dequantize(x, scale, zp, QMIN, QMAX, 1, out=torch.empty_like(x))


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("make", [lambda t: t, _channels_last], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("axis", [None, 1], ids=["per-tensor", "axis1"])
def test_results_do_not_depend_on_thread_count(axis, make, restore_threads):
    # 2^20 elements: far above one task's grain, so 2 threads split the work
    shape = (8, 32, 64, 64)
    x, scale, zp, dy = (make(t) if t.dim() == 4 else t for t in _case(axis, shape=shape, seed=3))
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        out = torch.empty_like(x)
        F.quantize_dequantize(x, scale, zp, QMIN, QMAX, axis, out=out)
        results.append((F.quantize_dequantize(x, scale, zp, QMIN, QMAX, axis), out,
                        *ops.quantize_dequantize_backward(dy, x, scale, zp, QMIN, QMAX, axis,
                                                          None, True)))
    for name, one, two in zip(("y", "out", "dx", "dscale", "dzero_point"), *results):
        assert_same(two, one, f"{name} with 2 threads vs 1")
