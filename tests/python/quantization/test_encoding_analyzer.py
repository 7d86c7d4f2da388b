"""Encoding analyzers of `torchqsim.quantization`.

Oracles: hand-computed encodings (arithmetic in the comments), a pure-torch implementation of
the documented SQNR cost (qsim/analyzers.h), the quantization MSE measured with
`torchqsim.functional.quantize_dequantize`, and per-channel results against per-tensor runs.
"""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import torchqsim.functional as F
import torchqsim.quantization as Q
from torchqsim.quantization import (MinMaxEncodingAnalyzer, MseEncodingAnalyzer,
                                    PercentileEncodingAnalyzer, SqnrEncodingAnalyzer)

ANALYZERS = {
    "min_max": lambda shape=(): MinMaxEncodingAnalyzer(shape),
    "tf_enhanced": lambda shape=(): SqnrEncodingAnalyzer(shape),
    "percentile": lambda shape=(): PercentileEncodingAnalyzer(shape, percentile=99.0),
    "mse": lambda shape=(): MseEncodingAnalyzer(shape),
}
GRIDS = [dict(symmetric=False), dict(symmetric=True), dict(symmetric=True, strict=True),
         dict(symmetric=True, unsigned=True)]


def _bounds(bitwidth, grid):
    g = Q.Grid.from_flags(bitwidth, **grid)
    return g.qmin, g.qmax


def _calibrated(analyzer, *batches):
    for x in batches:
        analyzer.update_stats(x)
    return analyzer


def _qmse(x, enc, bitwidth, grid):
    qmin, qmax = _bounds(bitwidth, grid)
    return ((F.quantize_dequantize(x, enc.scale, enc.zero_point, qmin, qmax) - x) ** 2).mean().item()


# ---- known answers -------------------------------------------------------------------------------

def test_min_max_known_answers_every_grid():
    x = torch.tensor([-1.0, 0.25, 3.0])
    a = _calibrated(MinMaxEncodingAnalyzer(), x)
    # asymmetric: scale 4/255, zp = -rint(-1 / (4/255)) = -rint(-63.75) = 64
    e = a.compute_encodings(8, symmetric=False)
    assert int(e.zero_point) == 64 and math.isclose(float(e.scale), 4 / 255, rel_tol=2.5e-7)
    # signed: max(3/127, 1/128) = 3/127 -> [-128, 127] * 3/127 = [-3.0236, 3]
    e = a.compute_encodings(8, symmetric=True)
    assert int(e.zero_point) == 0 and math.isclose(float(e.max), 3.0, rel_tol=2.5e-7)
    assert math.isclose(float(e.min), -128 * 3 / 127, rel_tol=2.5e-7)
    # strict: 3/127 -> [-3, 3];  unsigned symmetric with a negative value: zp 128, 3/127
    e = a.compute_encodings(8, symmetric=True, strict=True)
    assert math.isclose(float(e.min), -3.0, rel_tol=2.5e-7)
    e = a.compute_encodings(8, symmetric=True, unsigned=True)
    assert int(e.zero_point) == 128 and math.isclose(float(e.scale), 3 / 127, rel_tol=2.5e-7)
    # unsigned symmetric on non-negative data (0.5, 2): zp 0, scale 2/255, 4 bits: 2/15
    b = _calibrated(MinMaxEncodingAnalyzer(), torch.tensor([0.5, 2.0]))
    e = b.compute_encodings(4, symmetric=True, unsigned=True)
    assert int(e.zero_point) == 0 and math.isclose(float(e.scale), 2 / 15, rel_tol=2.5e-7)


def test_min_max_per_channel_known_answer():
    # Channels (rows) [-1, 3] and [0.5, 2] symmetric 8-bit: 3/127 and max(2/127, 0) = 2/127.
    a = _calibrated(MinMaxEncodingAnalyzer((2, 1)), torch.tensor([[-1.0, 3.0], [0.5, 2.0]]))
    e = a.compute_encodings(8, symmetric=True)
    assert e.scale.shape == (2, 1)
    torch.testing.assert_close(e.scale.flatten(), torch.tensor([3 / 127, 2 / 127]), rtol=2.5e-7, atol=0)


# Four values' worth of histogram: 4 bins over [-4, 4] hold -4 (1), -1 (10), 1 (10), 4 (1), so
# the bin centres -3, -1, 1, 3 carry counts 1, 10, 10, 1.
HIST_DATA = torch.tensor([-4.0] + [-1.0] * 10 + [1.0] * 10 + [4.0])


@pytest.mark.parametrize("gamma, scale", [(3.0, 4.0), (0.5, 2.0)])
def test_sqnr_known_answer(gamma, scale):
    # Strict 2-bit grid {-s, 0, s}, min/max scale 4, 3 symmetric candidates 2, 4, 6:
    #   s = 4: -3 -> -4, -1 -> 0, 1 -> 0, 3 -> 4: rounding 1 + 10 + 10 + 1 = 22
    #   s = 2: -3 and 3 clip to -2, 2 (clip noise 1 + 1), +-1 -> 0 (20): 2 * gamma + 20
    #   s = 6: every value rounds to 0: 9 + 1 + 1 + 9 (x10 for +-1) = 38
    # gamma 3: 26 > 22 -> s = 4;  gamma 0.5: 21 < 22 -> s = 2.
    a = _calibrated(SqnrEncodingAnalyzer(num_bins=4, symmetric_delta_candidates=3, gamma=gamma), HIST_DATA)
    e = a.compute_encodings(2, symmetric=True, strict=True)
    assert float(e.scale) == scale and float(e.max) == scale and float(e.min) == -scale


def test_percentile_known_answer():
    # -5..5 (11 values) in 10 bins of width 1: counts 1 x 9 then 2 (5 joins the last bin).
    # p = 90: targets 11 * 0.1 = 1.1 -> bin 1 at 0.1 of its count: -5 + 1.1 = -3.9;
    #          11 * 0.9 = 9.9 -> bin 9 (cum 9, count 2) at 0.45: -5 + 9.45 = 4.45.
    # Signed 8-bit: scale max(4.45/127, 3.9/128) = 4.45/127.
    a = _calibrated(PercentileEncodingAnalyzer(num_bins=10, percentile=90), torch.arange(-5.0, 6.0))
    e = a.compute_encodings(8, symmetric=True)
    assert math.isclose(float(e.scale), 4.45 / 127, rel_tol=1e-6)
    a.set_percentile(100)  # the observed range: 5/127
    assert math.isclose(float(a.compute_encodings(8, symmetric=True).scale), 5 / 127, rel_tol=2.5e-7)


def test_mse_known_answer():
    # Strict 2-bit, 4 scales d*k/4 = 1, 2, 3, 4 (d = 4), squared error with centres -3, -1, 1, 3:
    #   s = 1: +-3 clip to +-1 (4 + 4), +-1 exact: 8 <- least;  s = 2: 22;  s = 3: 20;  s = 4: 22.
    a = _calibrated(MseEncodingAnalyzer(num_bins=4, num_candidates=4), HIST_DATA)
    e = a.compute_encodings(2, symmetric=True, strict=True)
    assert float(e.scale) == 1.0 and float(e.min) == -1.0 and float(e.max) == 1.0


@pytest.mark.parametrize("name", ANALYZERS)
def test_degenerate_inputs(name):
    # constant -> 2.5 representable (asymmetric scale 2.5/255); zeros -> the minimum scale
    # 2^-23; one element -3 -> signed scale 3/128 with min exactly -3; +-Inf skipped.
    make = ANALYZERS[name]
    e = _calibrated(make(), torch.full((50,), 2.5)).compute_encodings(8, symmetric=False)
    assert math.isclose(float(e.scale), 2.5 / 255, rel_tol=1e-6) and int(e.zero_point) == 0
    e = _calibrated(make(), torch.zeros(10)).compute_encodings(8, symmetric=True)
    assert math.isclose(float(e.scale), 2.0 ** -23, rel_tol=1e-6)
    e = _calibrated(make(), torch.tensor([-3.0])).compute_encodings(8, symmetric=True)
    assert math.isclose(float(e.min), -3.0, rel_tol=1e-6)
    a = _calibrated(make(), torch.tensor([1.0, math.inf, -math.inf, 2.0]))
    assert int(a.nonfinite) == 2 and float(a.min) == 1.0 and float(a.max) == 2.0


# ---- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ANALYZERS)
def test_no_data_all_nan_and_empty_tensors_are_clear_errors(name):
    a = ANALYZERS[name]()
    with pytest.raises(RuntimeError, match="saw no data"):
        a.compute_encodings(8, symmetric=True)
    a.update_stats(torch.full((4,), math.nan))
    with pytest.raises(RuntimeError, match="saw only non-finite values.*4 NaN/Inf"):
        a.compute_encodings(8, symmetric=True)
    with pytest.raises(ValueError, match="empty tensor"):
        a.update_stats(torch.empty(0, 3))
    with pytest.raises(TypeError, match="floating tensor"):
        a.update_stats(torch.ones(3, dtype=torch.int32))
    per_channel = ANALYZERS[name]((3, 1))
    per_channel.update_stats(torch.tensor([[1.0], [math.nan], [math.inf]]))
    with pytest.raises(RuntimeError, match=r"only non-finite values \(encoding 1 of 3\): 1 NaN/Inf"):
        per_channel.compute_encodings(8, symmetric=False)


def test_bad_options_are_clear_errors():
    for p in (49.9, 100.5, -1, "99"):
        with pytest.raises(ValueError, match=r"percentile must be a number in \[50, 100\]"):
            PercentileEncodingAnalyzer(percentile=p)
    with pytest.raises(ValueError, match=r"percentile must be a number in \[50, 100\]"):
        PercentileEncodingAnalyzer().set_percentile(120)
    for cls in (SqnrEncodingAnalyzer, PercentileEncodingAnalyzer, MseEncodingAnalyzer):
        with pytest.raises(ValueError, match="num_bins must be an integer from 1"):
            cls(num_bins=0)
    with pytest.raises(ValueError, match="gamma must be finite"):
        SqnrEncodingAnalyzer(gamma=math.inf)
    with pytest.raises(ValueError, match="offset_candidates must be an integer from 3"):
        SqnrEncodingAnalyzer(offset_candidates=2)
    with pytest.raises(ValueError, match="num_candidates"):
        MseEncodingAnalyzer(num_candidates=0)
    a = _calibrated(MinMaxEncodingAnalyzer(), torch.ones(3))
    with pytest.raises(ValueError, match="bitwidth must be an integer from 2 to 16"):
        a.compute_encodings(1, symmetric=True)
    with pytest.raises(ValueError, match="need symmetric=True"):
        a.compute_encodings(8, symmetric=False, strict=True)
    with pytest.raises(ValueError, match="does not divide"):
        MinMaxEncodingAnalyzer((3,)).update_stats(torch.ones(4))


def test_batches_inside_the_range_take_one_pass_and_match_two_passes():
    # After the first batch the range covers later, narrower batches: the histogram op's own
    # min/max serve, and the statistics equal those of separate min/max and histogram passes.
    g = torch.Generator().manual_seed(3)
    batches = [torch.randn(5000, generator=g) * s for s in (3.0, 1.0, 2.0, 4.0)]
    a = _calibrated(SqnrEncodingAnalyzer(num_bins=64), *batches)
    counts, rng = torch.zeros(64, dtype=torch.int64), torch.zeros(2, dtype=torch.float64)
    lo, hi = torch.tensor(math.inf), torch.tensor(-math.inf)
    for x in batches:
        blo, bhi, _ = torch.ops.qsim.minmax(x)
        lo, hi = torch.minimum(lo, blo), torch.maximum(hi, bhi)
        counts, rng = torch.ops.qsim.histogram_grow(counts, rng, lo, hi)
        counts = counts + torch.ops.qsim.histogram(x, rng, 64)[0]
    assert torch.equal(a.counts, counts) and torch.equal(a.range, rng)
    assert a.min == lo and a.max == hi and int(a.counts.sum()) == 20000


def test_reset_and_stats():
    a = _calibrated(SqnrEncodingAnalyzer(num_bins=16), torch.randn(100, generator=torch.Generator().manual_seed(0)))
    stats = a.stats()
    assert set(stats) == {"min", "max", "nonfinite", "counts", "range"}
    assert int(stats["counts"].sum()) == 100
    a.reset_stats()
    assert int(a.counts.sum()) == 0 and float(a.min) == math.inf and float(a.range[1]) == 0.0
    with pytest.raises(RuntimeError, match="saw no data"):
        a.compute_encodings(8, symmetric=True)


# ---- per-channel and blocks ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ANALYZERS)
def test_per_channel_equals_per_tensor_on_each_channel(name):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 3, 4, 4, generator=g) * torch.tensor([0.1, 1.0, 5.0, 0.01, 2.0]).view(5, 1, 1, 1)
    per_channel = _calibrated(ANALYZERS[name]((5, 1, 1, 1)), w).compute_encodings(4, symmetric=True)
    for c in range(5):
        one = _calibrated(ANALYZERS[name](), w[c]).compute_encodings(4, symmetric=True)
        for field, got, want in zip(one._fields, per_channel, one):
            assert torch.equal(got[c].flatten(), want.flatten()), f"{name} channel {c} {field}"


def test_blocks_equal_per_tensor_on_each_block():
    # shape (2, 3) over a (4, 6) input: blocks of 2 x 2.
    x = torch.arange(24.0).reshape(4, 6) - 11
    e = _calibrated(MinMaxEncodingAnalyzer((2, 3)), x).compute_encodings(8, symmetric=False)
    for i in range(2):
        for j in range(3):
            one = _calibrated(MinMaxEncodingAnalyzer(), x[2 * i:2 * i + 2, 2 * j:2 * j + 2])
            assert torch.equal(e.scale[i, j], one.compute_encodings(8, symmetric=False).scale), (i, j)


# ---- properties ----------------------------------------------------------------------------------

@st.composite
def _data(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    n = draw(st.integers(1, 3000))
    spread = 10.0 ** draw(st.integers(-6, 6))
    shift = draw(st.floats(-3, 3)) * spread
    x = torch.randn(n, generator=g) * spread + shift
    if draw(st.booleans()):
        x = torch.round(x / spread * 4) * spread / 4  # ties and repeated values
    return x


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=_data(), name=st.sampled_from(sorted(ANALYZERS)), grid=st.sampled_from(GRIDS),
       bitwidth=st.integers(2, 16))
def test_encodings_contain_zero_with_positive_finite_scale(x, name, grid, bitwidth):
    e = _calibrated(ANALYZERS[name](), x).compute_encodings(bitwidth, **grid)
    qmin, qmax = _bounds(bitwidth, grid)
    assert math.isfinite(float(e.scale)) and float(e.scale) > 0
    assert qmin <= int(e.zero_point) <= qmax
    assert float(e.min) <= 0.0 <= float(e.max)
    assert float(F.quantize_dequantize(torch.zeros(1), e.scale, e.zero_point, qmin, qmax)) == 0.0


def _sqnr_cost(analyzer, enc, bitwidth, grid, gamma):
    """The documented cost (qsim/analyzers.h) in pure torch, float64: every bin's count at its
    centre m, position rint(m * (1 / scale)) + zp, clipped ones weighted by gamma."""
    counts, (lo, hi) = analyzer.counts.double(), analyzer.range.tolist()
    bins = counts.numel()
    m = lo + (torch.arange(bins, dtype=torch.float64) + 0.5) * ((hi - lo) / bins)
    s, zp = float(enc.scale), float(enc.zero_point)
    qmin, qmax = _bounds(bitwidth, grid)
    pos = torch.round(m * (1.0 / s)) + zp
    clipped = (pos < qmin) | (pos > qmax)
    err = counts * ((pos.clamp(qmin, qmax) - zp) * s - m) ** 2
    return float((err * torch.where(clipped, gamma, 1.0)).sum())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=_data(), grid=st.sampled_from(GRIDS), bitwidth=st.integers(2, 12),
       gamma=st.sampled_from([0.0, 1.0, 3.0, 10.0]))
def test_sqnr_never_costs_more_than_min_max(x, grid, bitwidth, gamma):
    a = _calibrated(SqnrEncodingAnalyzer(num_bins=512, gamma=gamma), x)
    tf = a.compute_encodings(bitwidth, **grid)
    mm = _calibrated(MinMaxEncodingAnalyzer(), x).compute_encodings(bitwidth, **grid)
    tf_cost, mm_cost = _sqnr_cost(a, tf, bitwidth, grid, gamma), _sqnr_cost(a, mm, bitwidth, grid, gamma)
    assert tf_cost <= mm_cost * (1 + 1e-9) + 1e-300, f"tf_enhanced {tf_cost} > min_max {mm_cost}"


def _heavy_tailed(seed, kind, scale, outlier):
    """2^20 Laplace or Student-t(3) samples and one outlier at `outlier` scales."""
    g = torch.Generator().manual_seed(seed)
    n = 1 << 20
    if kind == "laplace":  # the difference of two exponentials
        x = torch.empty(n).exponential_(generator=g) - torch.empty(n).exponential_(generator=g)
    else:
        z = torch.randn(4, n, generator=g)
        x = z[0] / torch.sqrt((z[1:] ** 2).sum(0) / 3)
    x[int(torch.randint(0, n, (1,), generator=g))] = outlier
    assert bool(torch.isfinite(x).all())
    return x * scale


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(["laplace", "student_t"]),
       scale=st.sampled_from([1e-3, 1.0, 1e3]), outlier=st.floats(100, 300) | st.floats(-300, -100))
def test_heavy_tails_tf_enhanced_and_percentile_beat_min_max(seed, kind, scale, outlier):
    # Heavy-tailed bulk plus one far outlier: min/max spends the grid on the outlier; clipping it
    # lowers the quantization MSE at 8 and at 4 bits.
    x = _heavy_tailed(seed, kind, scale, outlier)
    analyzers = {"min_max": MinMaxEncodingAnalyzer(), "tf_enhanced": SqnrEncodingAnalyzer(),
                 "percentile": PercentileEncodingAnalyzer(percentile=99.999)}
    for a in analyzers.values():
        a.update_stats(x)
    for bitwidth in (8, 4):
        for grid in (dict(symmetric=False), dict(symmetric=True)):
            err = {k: _qmse(x, a.compute_encodings(bitwidth, **grid), bitwidth, grid)
                   for k, a in analyzers.items()}
            for k in ("tf_enhanced", "percentile"):
                assert err[k] < err["min_max"], f"{k} {bitwidth}-bit {grid}: {err[k]} vs {err['min_max']}"
