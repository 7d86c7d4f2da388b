"""Gradients of the differentiable qdq ops: straight-through for the data, range learning
(LSQ / aimet-torch v2, kernels/include/qsim/qdq.h) for scale and zero_point.

Oracles, all in float64:
(a) autograd of the straight-through reference (`reference.ste_*`, built on ``ste_round``);
(b) central finite differences of `reference.frozen_surrogate`, the smooth function (rounding
    residual and clamp mask frozen at the evaluation point) whose true derivative there is the
    STE gradient; `torch.autograd.gradcheck` validates that surrogate and its agreement with (a).

Our kernels compute each term in fp32 and reduce in double, so they are compared within a
rounding bound derived below (`_bounds`), not a loose relative tolerance. The data sits at least
0.1 away from every rounding tie (`grid_data`), so fp32 and float64 round alike and the clamp
masks agree.
"""

import pytest
import torch

import reference as ref
import torchqsim.functional as F
from asserts import assert_same, assert_within
from qdq_cases import LAYOUTS, SHAPE, grid_data, make_qparams

QMIN, QMAX = -8, 7  # 4-bit: many elements clamp at both ends
U = 2.0**-24  # fp32 unit roundoff
LAYOUT_NAMES = ("per-tensor", "axis0", "axis-1", "block-axis1", "block-axis-1")

OPS = {  # name: (our op, straight-through reference); both take (x, s, z, *grid, axis, block)
    "quantize_dequantize": (F.quantize_dequantize, ref.ste_quantize_dequantize),
    "quantize": (F.quantize, ref.ste_quantize),
    "dequantize": (F.dequantize, ref.ste_dequantize),
}


def _grid(op):
    return () if op == "dequantize" else (QMIN, QMAX)


def _point(op, layout, seed=0, shape=SHAPE):
    """fp32 (x, scale, zero_point, dy) with a floating zero point; x holds grid integers for
    dequantize."""
    g = torch.Generator().manual_seed(seed)
    axis, block = LAYOUTS[layout]
    scale, zp = make_qparams(g, shape, axis, block, QMIN, QMAX, torch.float32)
    x = grid_data(g, shape, scale, zp, QMIN, QMAX, axis, block)
    if op == "dequantize":
        x = ref.quantize(x, scale, zp, QMIN, QMAX, axis, block)
    return x, scale, zp, torch.randn(shape, generator=g)


def _grads(fn, op, layout, x, s, z, dy):
    """(dx, dscale, dzero_point) of sum(fn(x, s, z) * dy) by autograd, in the inputs' dtype."""
    axis, block = LAYOUTS[layout]
    leaves = [t.detach().clone().requires_grad_() for t in (x, s, z)]
    y = fn(*leaves, *_grid(op), axis, block)
    return torch.autograd.grad(y, leaves, dy.to(y.dtype))


def _bounds(op, layout, x, s, z, dy):
    """Worst-case |ours - exact| of (dx, dscale, dzero_point).

    Each per-element fp32 term takes at most three roundings (t = x / s, a subtraction, the
    product with dy), each within U of the term's magnitude |dy|*(|qz| + |t|) etc. below (the
    subtraction qz - t may cancel, so its magnitude counts both parts). The double accumulation
    adds about n * 2^-53 relative, and the final cast to fp32 at most U * |sum| <= U * sum(mag):
    4U * sum(mag) to first order; 5U also covers the second-order terms.
    """
    axis, block = LAYOUTS[layout]
    x, s, z, dy = (t.double() for t in (x, s, z, dy))
    se = ref.expand_qparam(s, x.shape, axis, block)
    ze = ref.expand_qparam(z, x.shape, axis, block)
    t = x / se
    qz = torch.clamp(torch.round(t), QMIN - ze, QMAX - ze)
    a = dy.abs()
    mags = {"quantize_dequantize": (a, a * (qz.abs() + t.abs()), a * se),
            "quantize": (a / se, a * t.abs() / se, a),
            "dequantize": (a * se, a * (x.abs() + ze.abs()), a * se)}[op]
    dx, ds, dz = mags
    return (5 * U * dx, 5 * U * ref.reduce_to_qparam(ds, s.shape, axis, block),
            5 * U * ref.reduce_to_qparam(dz, s.shape, axis, block))


CASES = [(op, layout) for op in OPS for layout in LAYOUT_NAMES]


@pytest.mark.parametrize("op,layout", CASES)
def test_gradients_reach_x_scale_and_zero_point(op, layout):
    x, s, z, dy = _point(op, layout)
    dx, ds, dz = _grads(OPS[op][0], op, layout, x, s, z, dy)
    for name, got, like in (("x", dx, x), ("scale", ds, s), ("zero_point", dz, z)):
        assert got.shape == like.shape and got.dtype == like.dtype, name
        assert got.isfinite().all() and (got != 0).any(), f"no gradient reaches {name}"
    # Without qparam gradients the kernels take the STE-only path: the same dx, bit for bit.
    axis, block = LAYOUTS[layout]
    xg = x.clone().requires_grad_()
    y = OPS[op][0](xg, s, z.int(), *_grid(op), axis, block)
    (dx_only,) = torch.autograd.grad(y, xg, dy)
    assert_same(dx_only, dx, "dx without qparam gradients")
    if op == "quantize_dequantize":  # docs/design.md: dx = dy * mask, mask = "not clamped"
        pos = torch.round(x / ref.expand_qparam(s, x.shape, axis, block)) + \
            ref.expand_qparam(z, x.shape, axis, block)
        assert_same(dx, torch.where((pos >= QMIN) & (pos <= QMAX), dy, 0.0), "dx = dy * mask")


@pytest.mark.parametrize("op,layout", CASES)
def test_gradients_match_autograd_of_float64_ste_reference(op, layout):
    x, s, z, dy = _point(op, layout, seed=1)
    ours = _grads(OPS[op][0], op, layout, x, s, z, dy)
    exact = _grads(OPS[op][1], op, layout, x.double(), s.double(), z.double(), dy.double())
    for name, got, want, bound in zip(("dx", "dscale", "dzero_point"), ours, exact,
                                      _bounds(op, layout, x, s, z, dy)):
        assert_within(got, want, bound, name)


def _loss(f, x, s, z, dy):
    return (f(x, s, z) * dy).sum()


def _central_differences(f, x, s, z, dy, v):
    """float64 central differences of sum(f * dy): along direction v for x, per entry for s and z.

    Steps: the surrogate is affine in x and z (any step is exact up to rounding) and, in s,
    affine or a 1/s term whose third derivative makes the error (h/s)^2 = 1e-8 relative with
    h = 1e-4 * s; float64 rounding adds ~1e-12 relative.
    """
    dx = (_loss(f, x + 1e-3 * v, s, z, dy) - _loss(f, x - 1e-3 * v, s, z, dy)) / 2e-3
    ds, dz = torch.empty_like(s), torch.empty_like(z)
    for i in range(s.numel()):
        h = 1e-4 * s.view(-1)[i].item()
        e = torch.zeros_like(s).view(-1).index_fill_(0, torch.tensor(i), 1.0).view(s.shape)
        ds.view(-1)[i] = (_loss(f, x, s + h * e, z, dy) - _loss(f, x, s - h * e, z, dy)) / (2 * h)
        dz.view(-1)[i] = (_loss(f, x, s, z + 1e-3 * e, dy)
                          - _loss(f, x, s, z - 1e-3 * e, dy)) / 2e-3
    return dx, ds, dz


@pytest.mark.parametrize("op,layout", CASES)
def test_gradients_match_finite_differences_of_frozen_surrogate(op, layout):
    x, s, z, dy = _point(op, layout, seed=2)
    axis, block = LAYOUTS[layout]
    dx, ds, dz = _grads(OPS[op][0], op, layout, x, s, z, dy)
    x64, s64, z64, dy64 = (t.double() for t in (x, s, z, dy))
    f = ref.frozen_surrogate(op, x64, s64, z64, QMIN, QMAX, axis, block)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    fd_x, fd_s, fd_z = _central_differences(f, x64, s64, z64, dy64, v)
    bx, bs, bz = _bounds(op, layout, x, s, z, dy)
    # our fp32 rounding bound plus the finite-difference error (<= 1e-8 of the same magnitudes,
    # which the bounds hold as 5U * mag, so 1e-8 * mag = bound * 1e-8 / (5U) ~ 0.034 * bound)
    slack = 1 + 1e-8 / (5 * U)
    assert_within((dx.double() * v).sum(), fd_x, (bx * v.abs()).sum() * slack, "dx . v")
    assert_within(ds, fd_s, bs * slack, "dscale")
    assert_within(dz, fd_z, bz * slack, "dzero_point")


SMALL = (2, 6, 4)  # gradcheck builds full Jacobians: keep it small (every layout still divides)


@pytest.mark.parametrize("op,layout", CASES)
def test_surrogate_is_smooth_and_has_the_ste_gradient(op, layout):
    x, s, z, dy = (t.double() for t in _point(op, layout, seed=4, shape=SMALL))
    axis, block = LAYOUTS[layout]
    f = ref.frozen_surrogate(op, x, s, z, QMIN, QMAX, axis, block)
    leaves = [t.clone().requires_grad_() for t in (x, s, z)]
    assert torch.autograd.gradcheck(f, leaves)
    # at the evaluation point it is the op, and its gradient is the straight-through one
    ste = OPS[op][1]
    torch.testing.assert_close(f(x, s, z), ste(x, s, z, *_grid(op), axis, block), rtol=1e-14,
                               atol=1e-14)
    surrogate_as_op = lambda x, s, z, *grid_and_layout: f(x, s, z)  # noqa: E731
    for got, want in zip(_grads(surrogate_as_op, op, layout, x, s, z, dy),
                         _grads(ste, op, layout, x, s, z, dy)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("axis,block", [(None, None), (1, None), (-1, 64)],
                         ids=["per-tensor", "per-channel", "blockwise"])
def test_gradients_do_not_depend_on_thread_count(op, axis, block, restore_threads):
    # 2^20 elements: 32 per-tensor reduction tiles, 256 channels, 16384 blocks, all split over
    # threads. The reductions combine in a fixed order, so the sums are bit-identical.
    shape = (16, 256, 256)
    g = torch.Generator().manual_seed(5)
    s, z = make_qparams(g, shape, axis, block, QMIN, QMAX, torch.float32)
    x = grid_data(g, shape, s, z, QMIN, QMAX, axis, block)
    dy = torch.randn(shape, generator=g)
    fn = OPS[op][0]
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        leaves = [t.clone().requires_grad_() for t in (x, s, z)]
        y = fn(*leaves, *_grid(op), axis, block)
        results.append(torch.autograd.grad(y, leaves, dy))
    for name, one, two in zip(("dx", "dscale", "dzero_point"), *results):
        assert_same(two, one, f"{name} with 2 threads vs 1")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_inputs_get_gradients_in_their_dtype(dtype):
    # computed in fp32 from the half values, cast back once: the fp32 gradients of x.float()
    x, s, z, dy = _point("quantize_dequantize", "axis-1", seed=6)
    xh, dyh = x.to(dtype), dy.to(dtype)
    half = _grads(F.quantize_dequantize, "quantize_dequantize", "axis-1", xh, s, z, dyh)
    full = _grads(F.quantize_dequantize, "quantize_dequantize", "axis-1", xh.float(), s, z,
                  dyh.float())
    assert [g.dtype for g in half] == [dtype, torch.float32, torch.float32]
    for name, h, f in zip(("dx", "dscale", "dzero_point"), half, full):
        assert_same(h, f.to(h.dtype), name)


@pytest.mark.parametrize("op", OPS)
def test_double_backward_raises_instead_of_returning_zeros(op):
    x, s, z, dy = _point(op, "axis0")
    leaves = [t.clone().requires_grad_() for t in (x, s, z)]
    y = OPS[op][0](*leaves, *_grid(op), *LAYOUTS["axis0"])
    grads = torch.autograd.grad(y, leaves, dy, create_graph=True)
    assert all(g.requires_grad for g in grads), "the first gradients must stay on the graph"
    for g in grads:
        with pytest.raises(RuntimeError, match=f"qsim.{op}_backward is not differentiable"):
            torch.autograd.grad(g.sum(), leaves, retain_graph=True)
    # first-order gradients with create_graph=True are still the usual ones
    for got, want in zip(grads, _grads(OPS[op][0], op, "axis0", x, s, z, dy)):
        assert_same(got.detach(), want, f"{op} gradient with create_graph=True")
