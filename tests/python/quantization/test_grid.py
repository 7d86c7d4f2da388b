"""The Grid type (wrappers/quantization/grid.py): kinds mirror the C enum, bounds come from C, and
the zero point of a held range is the C rule (``Grid.zero_point``, the op ``qsim::zero_point``).

Oracles: the C header's enum, known answers, and the rule written in torch ops as the quantizer
computed it before (values and straight-through gradients, bit for bit).
"""

import os
import re

import pytest
import torch

from asserts import assert_same
from torchqsim import functional as F
from torchqsim.quantization.grid import Grid, GridKind

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "..", "kernels", "include", "qsim",
                      "analyzers.h")


def test_kinds_mirror_the_c_enum():
    text = open(HEADER).read()
    enum = dict(re.findall(r"QSIM_GRID_(\w+)\s*=\s*(\d+)", text))
    assert {k.name: k.value for k in GridKind} == {name: int(v) for name, v in enum.items()}


@pytest.mark.parametrize("bitwidth, kind, bounds", [
    (8, GridKind.SYMMETRIC, (-128, 127)),
    (8, GridKind.STRICT_SYMMETRIC, (-127, 127)),
    (8, GridKind.UNSIGNED_SYMMETRIC, (0, 255)),
    (4, GridKind.ASYMMETRIC, (0, 15)),
    (2, GridKind.SYMMETRIC, (-2, 1)),
    (16, GridKind.ASYMMETRIC, (0, 65535)),
])
def test_known_bounds(bitwidth, kind, bounds):
    g = Grid.of(bitwidth, kind)
    assert (g.qmin, g.qmax) == bounds
    assert g.name == kind.name.lower() and g.symmetric == (kind != GridKind.ASYMMETRIC)
    if kind != GridKind.UNSIGNED_SYMMETRIC:
        assert F.grid_range(bitwidth, signed=kind != GridKind.ASYMMETRIC,
                            strict=kind == GridKind.STRICT_SYMMETRIC) == bounds


def test_grid_is_frozen_and_checked():
    g = Grid.from_flags(8, symmetric=True, strict=True)
    assert g.kind is GridKind.STRICT_SYMMETRIC
    with pytest.raises(AttributeError):
        g.qmin = 0
    for bad in (1, 17, 8.0, True):
        with pytest.raises(ValueError, match="bitwidth must be an integer from 2 to 16"):
            Grid.of(bad, GridKind.SYMMETRIC)
    with pytest.raises(ValueError, match="exclude each other"):
        Grid.from_flags(8, True, strict=True, unsigned=True)
    with pytest.raises(ValueError, match="need symmetric=True"):
        Grid.from_flags(8, False, strict=True)


# ---- the zero point of a held range: Grid.zero_point = the C rule qsim_zero_points_f32 ---------

def _reference_zero_point(grid: Grid, lo, scale, learned: bool):
    """The rule in torch ops, as QuantizeDequantize computed it in Python before the C rule: the
    oracle of values and (with `learned`, a straight-through round) of gradients."""
    if grid.kind is GridKind.ASYMMETRIC:
        x = lo / scale
        rounded = x + (torch.round(x) - x).detach() if learned else torch.round(x)
        return torch.clamp(grid.qmin - rounded, grid.qmin, grid.qmax)
    if grid.kind is GridKind.UNSIGNED_SYMMETRIC:
        return torch.where(lo.detach() < 0, float(grid.qmax + 1) / 2, 0.0)
    return torch.zeros_like(lo.detach())


def _held(grid: Grid, n: int, seed: int):
    """Held (min, scale) pairs: random ranges, tiny ones, exact rounding ties (unit scales), far
    and non-finite values, and zero scales (a quantizer without an encoding)."""
    g = torch.Generator().manual_seed(seed)
    lo = torch.cat([torch.randn(n, generator=g) * 4, -torch.rand(n, generator=g) * 1e-3])
    width = torch.rand(2 * n, generator=g) * 10 + 1e-6
    special = torch.tensor([[-2.5, 1.0], [-3.5, 1.0], [0.5, 1.0], [-0.0, 1.0], [0.0, 1.0],
                            [-1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [-1e30, 1e28],
                            [float("-inf"), 1.0], [float("nan"), 1.0], [-1.0, float("inf")]])
    return (torch.cat([lo, special[:, 0]]),
            torch.cat([width / (grid.qmax - grid.qmin), special[:, 1]]))


@pytest.mark.parametrize("kind", list(GridKind))
@pytest.mark.parametrize("bitwidth", [2, 4, 8, 16])
def test_zero_point_is_the_former_python_rule_bit_for_bit(kind, bitwidth):
    grid = Grid.of(bitwidth, kind)
    lo, scale = _held(grid, 2000, bitwidth)
    assert_same(grid.zero_point(lo, scale), _reference_zero_point(grid, lo, scale, False))


def test_zero_point_known_answers():
    lo = torch.tensor([-1.0, 0.5, -3.0, -2.5, -3.5])
    scale = torch.tensor([0.01, 0.01, 0.01, 1.0, 1.0])
    assert Grid.of(8, GridKind.ASYMMETRIC).zero_point(lo, scale).tolist() == [100, 0, 255, 2, 4]
    assert Grid.of(4, GridKind.UNSIGNED_SYMMETRIC).zero_point(lo, scale).tolist() == [8, 0, 8, 8, 8]
    assert Grid.of(8, GridKind.STRICT_SYMMETRIC).zero_point(lo, scale).tolist() == [0] * 5


@pytest.mark.parametrize("shape", [(), (7,), (3, 5)])
def test_zero_point_gradients_are_the_straight_through_ones_bit_for_bit(shape):
    grid = Grid.of(8, GridKind.ASYMMETRIC)
    g = torch.Generator().manual_seed(5)
    lo0 = torch.randn(shape, generator=g) * 3
    scale0 = (torch.rand(shape, generator=g) * 4 + 0.01) / 255
    if shape == (3, 5):  # clamped from both sides: zero gradient there
        lo0[0, 0], lo0[0, 1] = 2.0, -1e4
    upstream = torch.randn(shape, generator=g)
    grads = []
    for fn in (lambda a, s: grid.zero_point(a, s),
               lambda a, s: _reference_zero_point(grid, a, s, True)):
        lo, scale = lo0.clone().requires_grad_(), scale0.clone().requires_grad_()
        zp = fn(lo, scale)
        assert zp.requires_grad
        (zp * upstream).sum().backward()
        grads.append((zp.detach(), lo.grad, scale.grad))
    for what, got, want in zip(("zero point", "min grad", "scale grad"), *grads):
        assert_same(got, want, what)
    if shape == (3, 5):
        assert grads[0][1][0, 0] == 0 and grads[0][1][0, 1] == 0 and grads[0][1].abs().sum() > 0


@pytest.mark.parametrize("kind", [GridKind.SYMMETRIC, GridKind.STRICT_SYMMETRIC,
                                  GridKind.UNSIGNED_SYMMETRIC])
def test_symmetric_zero_points_get_no_gradient(kind):
    lo = torch.tensor([-1.0, 2.0], requires_grad=True)
    zp = Grid.of(8, kind).zero_point(lo, torch.ones(2, requires_grad=True))
    assert not zp.requires_grad and zp.grad_fn is None


def test_zero_point_other_dtypes_compute_in_fp32():
    grid = Grid.of(8, GridKind.ASYMMETRIC)
    lo, scale = torch.tensor([-1.0, -0.37]), torch.tensor([0.01, 0.003])
    want = grid.zero_point(lo, scale)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        got = grid.zero_point(lo.to(dtype), scale.to(dtype))
        assert got.dtype == dtype
        assert_same(got, grid.zero_point(lo.to(dtype).float(), scale.to(dtype).float()).to(dtype))
    assert want.tolist() == [100.0, 123.0]


def test_zero_point_bad_arguments():
    ok = torch.zeros(3)
    op = torch.ops.qsim.zero_point
    with pytest.raises(ValueError, match="zero_point: grid must be a qsim_grid_kind value"):
        op(ok, ok, 8, 9)
    with pytest.raises(ValueError, match="zero_point: bitwidth must be from 2 to 16, got 17"):
        op(ok, ok, 17, int(GridKind.ASYMMETRIC))
    with pytest.raises(ValueError, match=r"zero_point: scale shape \[2\] must equal min shape"):
        op(ok, torch.ones(2), 8, int(GridKind.ASYMMETRIC))
    with pytest.raises(TypeError, match="zero_point: min and scale must be floating tensors"):
        op(ok, torch.ones(3, dtype=torch.int32), 8, int(GridKind.ASYMMETRIC))
    with pytest.raises(ValueError, match="zero_point: min, scale must be on the same device"):
        op(ok, torch.ones(3, device="meta"), 8, int(GridKind.ASYMMETRIC))
