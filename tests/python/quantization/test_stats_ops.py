"""The calibration ops (`torch.ops.qsim.minmax`, `histogram`, `histogram_grow`, `encodings_*`).

Oracles: torch reductions over the finite values, the documented binning rule written with torch
ops (the same fp32 operations, so counts must match exactly), hand-computed encodings, and
`torch.library.opcheck` for schemas and fake implementations.
"""

import math

import pytest
import torch
from torch.library import opcheck

import torchqsim  # noqa: F401  (registers the ops)
from torchqsim.quantization.grid import Grid, GridKind

ops = torch.ops.qsim
# The ops take a grid as its C enum value (GridKind, the kind of a torchqsim Grid).
SYM, STRICT, UNSIGNED, ASYM = (int(k) for k in (GridKind.SYMMETRIC, GridKind.STRICT_SYMMETRIC,
                                                GridKind.UNSIGNED_SYMMETRIC, GridKind.ASYMMETRIC))
GRIDS = list(GridKind)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _finite_minmax(x, axis):
    """Reference min/max/non-finite count over the finite values, per channel of `axis`."""
    if axis is None:
        x = x.reshape(1, -1)
    else:
        x = x.movedim(axis, 0).reshape(x.shape[axis], -1)
    fin = torch.isfinite(x)
    lo = torch.where(fin, x, math.inf).amin(dim=1)
    hi = torch.where(fin, x, -math.inf).amax(dim=1)
    bad = (~fin).sum(dim=1)
    return (lo, hi, bad) if axis is not None else (lo[0], hi[0], bad[0])


def _reference_histogram(x, lo, hi, bins):
    """The documented rule: t = (v - lo) * (bins / (hi - lo)) in fp32, clamp to [0, bins-1],
    truncate; non-finite values skipped."""
    x = x.float().flatten()
    x = x[torch.isfinite(x)]
    lo32 = torch.tensor(lo, dtype=torch.float64).clamp(-3.4028234663852886e38, 3.4028234663852886e38).float()
    scale = torch.tensor(bins / (hi - lo), dtype=torch.float64).float()
    t = ((x - lo32) * scale).clamp(0, bins - 1)
    return torch.bincount(t.to(torch.int64), minlength=bins)


def _fresh(bins, channels=None):
    shape = () if channels is None else (channels,)
    return torch.zeros((*shape, bins), dtype=torch.int64), torch.zeros((*shape, 2), dtype=torch.float64)


def _histogram_of(batches, bins, axis=None):
    """Running (counts, range, min, max) after the batches, as the analyzers keep them."""
    channels = None if axis is None else batches[0].shape[axis]
    counts, rng = _fresh(bins, channels)
    lo = hi = None
    for x in batches:
        blo, bhi, _ = ops.minmax(x, axis)
        lo = blo if lo is None else torch.minimum(lo, blo)
        hi = bhi if hi is None else torch.maximum(hi, bhi)
        counts, rng = ops.histogram_grow(counts, rng, lo, hi)
        counts = counts + ops.histogram(x, rng, bins, axis)[0]
    return counts, rng, lo, hi


# ---- minmax -----------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_minmax_matches_torch_on_finite_values(axis):
    x = torch.randn(5, 7, 300, generator=_gen(0))
    x[1, 2, 3], x[4, 6, 299], x[0, 0, 0] = math.nan, math.inf, -math.inf
    lo, hi, bad = ops.minmax(x, axis)
    elo, ehi, ebad = _finite_minmax(x, axis)
    torch.testing.assert_close(lo, elo, rtol=0, atol=0)
    torch.testing.assert_close(hi, ehi, rtol=0, atol=0)
    torch.testing.assert_close(bad, ebad, rtol=0, atol=0)
    assert lo.dtype == torch.float32 and bad.dtype == torch.int64


def test_minmax_known_answer_and_empty_channels():
    # Channel 0 holds {3, -1, NaN}: min -1, max 3, one skipped; channel 1 {Inf, -Inf, Inf}: no
    # finite value, so min stays +inf and max -inf, three skipped.
    x = torch.tensor([[3.0, math.inf], [-1.0, -math.inf], [math.nan, math.inf]])
    lo, hi, bad = ops.minmax(x, 1)
    assert lo.tolist() == [-1.0, math.inf]
    assert hi.tolist() == [3.0, -math.inf]
    assert bad.tolist() == [1, 3]


def test_minmax_half_types_and_large_tensor_threads():
    x = torch.randn(3_000_000, generator=_gen(1))
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        lo, hi, _ = ops.minmax(x.to(dtype))
        assert lo == x.to(dtype).float().min() and hi == x.to(dtype).float().max(), dtype


# ---- histogram --------------------------------------------------------------------------------

def test_histogram_without_a_range_counts_nothing_but_folds_min_max():
    counts, lo, hi, bad = ops.histogram(torch.tensor([2.0, -3.0, math.inf]), torch.zeros(2, dtype=torch.float64), 8)
    assert int(counts.sum()) == 0 and (lo.item(), hi.item(), bad.item()) == (-3.0, 2.0, 1)


def test_histogram_known_answer():
    # [0, 4) in 4 bins: 0, 0.5, -1 -> bin 0; 1 -> 1; 2.9 -> 2; 3.99, 4, 5 -> 3; NaN skipped.
    # The same pass gives min -1, max 5 and one non-finite value.
    x = torch.tensor([0.0, 0.5, 1.0, 2.9, 3.99, 4.0, -1.0, 5.0, math.nan])
    counts, lo, hi, bad = ops.histogram(x, torch.tensor([0.0, 4.0], dtype=torch.float64), 4)
    assert counts.tolist() == [3, 1, 1, 3]
    assert (lo.item(), hi.item(), bad.item()) == (-1.0, 5.0, 1)


@pytest.mark.parametrize("bins", [1, 7, 2048])
def test_histogram_matches_the_documented_rule(bins):
    x = torch.randn(200_003, generator=_gen(2)) * 3
    x[::1000] = math.nan
    lo, hi = -7.25, 9.5
    counts, *stats = ops.histogram(x, torch.tensor([lo, hi], dtype=torch.float64), bins)
    expect = _reference_histogram(x, lo, hi, bins)
    for got, want in zip(stats, _finite_minmax(x, None)):
        assert torch.equal(got, want), f"{got} vs {want}"
    diff = (counts - expect).nonzero()
    assert diff.numel() == 0, f"bin {diff[0].item()}: {counts[diff[0]].item()} vs {expect[diff[0]].item()}"


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_histogram_per_channel_matches_per_channel_slices(axis):
    x = torch.randn(6, 5, 40, generator=_gen(3))
    channels = x.shape[axis]
    rng = torch.stack([torch.tensor([-1.0 - c, 2.0 + c], dtype=torch.float64) for c in range(channels)])
    rng[1] = 0  # no range yet: channel skipped
    counts, *stats = ops.histogram(x, rng, 16, axis)
    for got, want in zip(stats, _finite_minmax(x, axis)):  # channel 1 too: min/max only
        assert torch.equal(got, want), f"{got} vs {want}"
    for c in range(channels):
        expect = torch.zeros(16, dtype=torch.int64) if c == 1 else \
            _reference_histogram(x.select(axis, c), rng[c, 0].item(), rng[c, 1].item(), 16)
        assert torch.equal(counts[c], expect), f"channel {c}: {counts[c]} vs {expect}"


def test_histogram_grow_known_answer():
    # [0, 4) in 4 bins (w = 1) growing to cover [-1, 5]: 1 bin each side, span 6 -> new bins 2
    # wide, slack 2 shared 1:1 -> [-2, 6). Old bins 0..3 go to new bins 1, 1, 2, 2.
    counts = torch.tensor([1, 2, 3, 4])
    rng = torch.tensor([0.0, 4.0], dtype=torch.float64)
    new_counts, new_rng = ops.histogram_grow(counts, rng, torch.tensor(-1.0), torch.tensor(5.0))
    assert new_rng.tolist() == [-2.0, 6.0]
    assert new_counts.tolist() == [0, 3, 7, 0]
    # Already covered: unchanged.
    same, same_rng = ops.histogram_grow(counts, rng, torch.tensor(0.5), torch.tensor(3.0))
    assert torch.equal(same, counts) and torch.equal(same_rng, rng)


def test_merge_of_batches_keeps_mass_and_equals_direct_binning_at_the_new_edges():
    # x.5 values never sit on an edge: A -> [0, 8) (w = 1); B grows it to [-5, 27) (w = 4), and
    # the merged histogram equals binning A and B together at those edges.
    a = torch.tensor([0.0, 8.0] + [i + 0.5 for i in range(8)])
    b = torch.tensor([-3.5, 20.5, 1.5, 9.5, 9.5])
    counts, rng, _, _ = _histogram_of([a, b], 8)
    assert rng.tolist() == [-5.0, 27.0]
    assert torch.equal(counts, _reference_histogram(torch.cat([a, b]), -5.0, 27.0, 8))
    assert int(counts.sum()) == a.numel() + b.numel()


def test_merge_random_batches_within_one_bin_width():
    # Laplace batches of growing spread: A then B then ... has the mass of the union, and every
    # quantile of the merged histogram is within one bin width of the exact one.
    g = _gen(4)
    batches = [torch.distributions.Laplace(0.2 * i, 1.0 + i).sample((20000,)) for i in range(5)]
    batches[2][17] = math.nan
    bins = 256
    counts, rng, lo, hi = _histogram_of(batches, bins)
    data = torch.cat(batches)
    data = data[torch.isfinite(data)].sort().values
    assert int(counts.sum()) == data.numel()
    w = (rng[1] - rng[0]).item() / bins
    cum = counts.cumsum(0)
    for q in (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999):
        k = int(q * data.numel())
        exact = data[k].item()
        j = int(torch.searchsorted(cum, k + 1))  # bin holding the (k+1)-th value
        left = rng[0].item() + j * w
        assert left - w <= exact <= left + 2 * w, f"quantile {q}: bin [{left}, {left + w}) vs {exact}"
    assert lo == data[0] and hi == data[-1]
    del g


def test_merge_per_channel_mass():
    x1 = torch.randn(3, 100, generator=_gen(5))
    x2 = torch.randn(3, 100, generator=_gen(6)) * torch.tensor([[1.0], [10.0], [0.1]])
    counts, _, _, _ = _histogram_of([x1, x2], 64, axis=0)
    assert counts.sum(dim=1).tolist() == [200, 200, 200]


# ---- encodings --------------------------------------------------------------------------------

def test_encodings_min_max_known_answers():
    lo, hi = torch.tensor([-1.0, -1.0, 0.5, -1.0]), torch.tensor([3.0, 3.0, 3.0, 3.0])
    # asymmetric (-1, 3), 8 bits: scale 4/255, zp = -rint(-63.75) = 64.
    s, zp, emin, emax = ops.encodings_min_max(lo[:1], hi[:1], 8, ASYM)
    assert zp.tolist() == [64] and math.isclose(s.item(), 4 / 255, rel_tol=2e-7)
    # signed symmetric: scale max(3/127, 1/128) = 3/127, range [-128, 127] * scale.
    s, zp, emin, emax = ops.encodings_min_max(lo, hi, 8, SYM)
    assert zp.tolist() == [0, 0, 0, 0]
    assert math.isclose(s[0].item(), 3 / 127, rel_tol=2e-7)
    assert math.isclose(emax[0].item(), 3.0, rel_tol=2e-7)
    # strict (-1, 3): [-3, 3]; unsigned symmetric (0.5, 3): zp 0, scale 3/255; with negatives zp 128.
    s, zp, emin, emax = ops.encodings_min_max(lo, hi, 8, STRICT)
    assert math.isclose(emin[0].item(), -3.0, rel_tol=2e-7)
    s, zp, emin, emax = ops.encodings_min_max(lo, hi, 8, UNSIGNED)
    assert zp.tolist() == [128, 128, 0, 128]
    assert math.isclose(s[2].item(), 3 / 255, rel_tol=2e-7)


@pytest.mark.parametrize("grid", GRIDS)
def test_encodings_round_trip_through_min_max_in_fp32(grid):
    # scale == (max - min) / (qmax - qmin) and zp == qmin - rint(min / scale), both in fp32.
    g = _gen(7)
    lo = -torch.rand(1000, generator=g) * 10 ** torch.randint(-6, 6, (1000,), generator=g)
    hi = torch.rand(1000, generator=g) * 10 ** torch.randint(-6, 6, (1000,), generator=g)
    for bw in (4, 8, 16):
        s, zp, emin, emax = ops.encodings_min_max(lo, hi, bw, int(grid))
        qmin = 0 if grid in (GridKind.ASYMMETRIC, GridKind.UNSIGNED_SYMMETRIC) else \
            -(2 ** (bw - 1)) + (grid == GridKind.STRICT_SYMMETRIC)
        qmax = 2 ** bw - 1 if qmin == 0 else 2 ** (bw - 1) - 1
        assert (qmin, qmax) == (Grid.of(bw, grid).qmin, Grid.of(bw, grid).qmax)
        derived = (emax - emin) / (qmax - qmin)
        bad = (derived != s).nonzero()
        assert bad.numel() == 0, f"bw {bw} index {bad[0].item()}: {derived[bad[0]]} vs {s[bad[0]]}"
        assert torch.equal(qmin - torch.round(emin / s), zp.float())


def _hist_args():
    x = torch.randn(4, 300, generator=_gen(8))
    counts, rng, lo, hi = _histogram_of([x], 64, axis=0)
    return counts, rng, lo, hi


def test_encoding_ops_per_channel_equal_per_tensor_calls():
    counts, rng, lo, hi = _hist_args()
    for name, extra in (("tf_enhanced", ()), ("percentile", (99.0,)), ("mse", ())):
        op = getattr(ops, f"encodings_{name}")
        per_channel = op(counts, rng, lo, hi, 8, ASYM, *extra)
        for c in range(4):
            one = op(counts[c], rng[c], lo[c], hi[c], 8, ASYM, *extra)
            for got, want in zip(per_channel, one):
                assert torch.equal(got[c], want), f"{name} channel {c}"


def test_encoding_ops_report_bad_arguments_clearly():
    counts, rng, lo, hi = _hist_args()
    with pytest.raises(ValueError, match=r"percentile must be in \[50, 100\], got 49"):
        ops.encodings_percentile(counts, rng, lo, hi, 8, ASYM, 49.0)
    for bad in (-1, 4):
        with pytest.raises(ValueError, match=f"grid must be a qsim_grid_kind value .* from 0 to 3, got {bad}"):
            ops.encodings_min_max(lo, hi, 8, bad)
    with pytest.raises(ValueError, match="bitwidth must be from 2 to 16, got 17"):
        ops.encodings_min_max(lo, hi, 17, SYM)
    with pytest.raises(ValueError, match="gamma must be finite"):
        ops.encodings_tf_enhanced(counts, rng, lo, hi, 8, SYM, -1.0)
    with pytest.raises(ValueError, match="bins must be from 1"):
        ops.histogram(torch.ones(3), torch.tensor([0.0, 1.0], dtype=torch.float64), 0)
    with pytest.raises(ValueError, match=r"range must have shape \[4, 2\]"):
        ops.histogram(torch.ones(4, 3), torch.zeros(2, dtype=torch.float64), 8, 0)
    empty_lo, empty_hi = lo.clone(), hi.clone()
    empty_lo[2], empty_hi[2] = math.inf, -math.inf
    with pytest.raises(ValueError, match="channel 2 saw no finite value"):
        ops.encodings_mse(counts, rng, empty_lo, empty_hi, 8, SYM)
    no_counts = counts.clone()
    no_counts[1] = 0
    with pytest.raises(ValueError, match="histogram of channel 1 is empty"):
        ops.encodings_tf_enhanced(no_counts, rng, lo, hi, 8, SYM)


# ---- opcheck -----------------------------------------------------------------------------------

def _opcheck_cases():
    x = torch.randn(4, 6, 5, generator=_gen(9))
    counts, rng, lo, hi = _histogram_of([x], 32, axis=1)
    tcounts, trng, tlo, thi = _histogram_of([x], 32)
    return [
        ("minmax", (x,), {}),
        ("minmax", (x, 1), {}),
        ("histogram", (x, trng, 32), {}),
        ("histogram", (x, rng, 32, 1), {}),
        ("histogram_grow", (counts, rng, lo - 1, hi + 1), {}),
        # column-major counts and range: the results are contiguous whatever the inputs' strides
        ("histogram_grow", (counts.t().contiguous().t(), rng.t().contiguous().t(), lo - 1, hi + 1),
         {}),
        ("encodings_min_max", (lo[::2], hi[::2], 8, ASYM), {}),
        ("encodings_min_max", (lo, hi, 8, ASYM), {}),
        ("encodings_tf_enhanced", (counts, rng, lo, hi, 4, SYM), {}),
        ("encodings_tf_enhanced", (tcounts, trng, tlo, thi, 8, ASYM, 2.0, 9, 11, 5), {}),
        ("encodings_percentile", (counts, rng, lo, hi, 8, STRICT, 99.5), {}),
        ("encodings_mse", (tcounts, trng, tlo, thi, 6, UNSIGNED), {}),
    ]


@pytest.mark.parametrize("case", _opcheck_cases(), ids=lambda c: c[0])
def test_opcheck(case):
    name, args, kwargs = case
    opcheck(getattr(ops, name).default, args, kwargs)
