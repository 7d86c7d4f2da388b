"""The C kernels of the AIMET tf_enhanced analyzer (qsim/aimet_tfe.h) against the torch ops they
replace, bit for bit.

Oracles: ``torch.histc`` (plus the end-bin counts AIMET adds) for the histograms, and the torch-op
search (``tf_enhanced._search_chunks``, the code that ran before the kernel and still runs where
the kernel cannot reproduce torch's sums) for the encodings: the C search sums each candidate's
cost in torch's float32 order, so the two must agree exactly, ties included.
"""

import pytest
import torch
from torch.library import opcheck

from torchqsim.quantization import tf_enhanced as te
from torchqsim.quantization.grid import Grid, GridKind

# torch 2.13 on x86 sums float32 rows 8 lanes wide, on AVX-512 CPUs too (its AVX2 sum kernel
# serves them: the 16-lane order does not reproduce torch.sum there).
LANES = {"AVX512": 8, "AVX2": 8}


def test_the_sum_order_is_found_on_this_machine():
    """The lane count the probe finds is the one expected for torch's CPU capability."""
    cap = torch.backends.cpu.get_cpu_capability()
    if cap not in LANES:
        pytest.skip(f"torch's CPU capability here is {cap}: no expectation written for it")
    assert te._sum_lanes() == LANES[cap]


def _data(seed, rows, n):
    g = torch.Generator().manual_seed(seed)
    kind = seed % 4
    x = torch.randn(rows, n, generator=g) * torch.rand(rows, 1, generator=g) * 10
    if kind == 1:
        x = torch.rand(rows, n, generator=g) - 0.2                # one-sided-ish, uniform
    elif kind == 2:
        x = torch.exp(torch.randn(rows, n, generator=g))          # positive, skewed
    elif kind == 3:
        x = torch.round(x * 4) / 4                                # sparse, values on edges
    return x


def test_histogram_op_equals_torch_histc_with_end_bins():
    g = torch.Generator().manual_seed(7)
    for n in (1, 5, 63, 64, 65, 1000, 300_000):
        x = torch.randn(3, n, generator=g)
        x[0, 0] = float("nan")
        x[-1, -1] = float("inf")
        lo = torch.tensor([-1.0, -0.5, -3.0])
        hi = torch.tensor([1.0, 2.0, 0.25])
        got = torch.ops.qsim.tfe_histogram(x, lo, hi)
        for r in range(3):
            want = torch.histc(x[r], bins=512, min=float(lo[r]), max=float(hi[r]))
            want[0] += torch.sum(x[r] < lo[r])
            want[-1] += torch.sum(x[r] > hi[r])
            assert torch.equal(got[r], want), (n, r)


@pytest.mark.parametrize("lo, hi, what", [(1.0, 1.0, "lo < hi"), (0.0, float("inf"), "finite")])
def test_histogram_op_rejects_ranges_torch_histc_would_widen_or_reject(lo, hi, what):
    with pytest.raises(ValueError, match="tfe_histogram: row 0 needs a finite range with lo < hi"):
        torch.ops.qsim.tfe_histogram(torch.ones(1, 4), torch.tensor([lo]), torch.tensor([hi]))


def test_ops_name_the_bad_argument():
    with pytest.raises(ValueError, match="tfe_histogram: x must be a 2-D float32 CPU tensor"):
        torch.ops.qsim.tfe_histogram(torch.ones(4), torch.zeros(1), torch.ones(1))
    with pytest.raises(ValueError, match="tfe_search: lanes must be 8 or 16, got 4"):
        torch.ops.qsim.tfe_search(torch.zeros(1, 512), torch.zeros(1, 513), torch.zeros(1, 2),
                                  255, True, torch.zeros(1), 4)
    with pytest.raises(ValueError, match="tfe_search: counts, edges and ranges must have shapes"):
        torch.ops.qsim.tfe_search(torch.zeros(2, 512), torch.zeros(1, 513), torch.zeros(2, 2),
                                  255, True, torch.zeros(1), 16)


def _analyzer(seed, rows, n, later=()):
    x = _data(seed, rows, n)
    a = te.TfEnhancedEncodingAnalyzer((rows, 1))
    a.update_stats(x)
    for f in later:                                   # merged batches: grown ranges
        a.update_stats(f(x))
    return a


@pytest.mark.skipif(te._sum_lanes() is None, reason="the C search needs torch's sum order")
@pytest.mark.parametrize("bitwidth", [8, 4, 2])
@pytest.mark.parametrize("kind", [GridKind.SYMMETRIC, GridKind.ASYMMETRIC])
def test_c_search_equals_the_torch_op_search(bitwidth, kind, monkeypatch):
    grid = Grid.of(bitwidth, kind)
    steps = grid.qmax - grid.qmin
    for seed in range(12):
        a = _analyzer(seed, 24, (40, 256, 1024)[seed % 3],
                      later=[lambda x: 2.5 * x + 1] if seed % 2 else ())
        got = torch.ops.qsim.tfe_search(a.counts, a.edges, a.hist_range, steps, grid.symmetric,
                                        te._offsets(steps), te._sum_lanes())
        want = te._search_chunks(a.counts, a.edges, a.hist_range, steps, grid.symmetric)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), seed


@pytest.mark.skipif(te._sum_lanes() is None, reason="the C search needs torch's sum order")
def test_c_search_breaks_exact_ties_as_torch_min():
    """All counts in the bin whose centre is 0: every candidate whose grid holds 0 costs exactly
    0 (all symmetric ones, most asymmetric ones), and both searches take the first of them."""
    w = 2.0 / 512
    edges = (torch.arange(513, dtype=torch.float32) * w - 256.5 * w)[None, :].repeat(2, 1)
    counts = torch.zeros(2, 512)
    counts[:, 256] = torch.tensor([5.0, 1e6])
    ranges = torch.tensor([[-1.0, 1.0], [-0.25, 3.0]])
    assert float(edges[0, 256] + w / 2) == 0.0
    for symmetric in (True, False):
        for steps in (255, 3):
            got = torch.ops.qsim.tfe_search(counts, edges, ranges, steps, symmetric,
                                            te._offsets(steps), te._sum_lanes())
            want = te._search_chunks(counts, edges, ranges, steps, symmetric)
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), (symmetric, steps)


def test_analyzer_encodings_equal_with_and_without_the_c_search(monkeypatch):
    a = _analyzer(5, 16, 300, later=[lambda x: 0.5 * x, lambda x: 40 * x])
    for kind in (GridKind.SYMMETRIC, GridKind.ASYMMETRIC):
        grid = Grid.of(8, kind)
        fast = a.encodings_for(grid), a.held_range(grid)
        monkeypatch.setattr(te, "_sum_lanes", lambda: None)
        slow = a.encodings_for(grid), a.held_range(grid)
        monkeypatch.undo()
        for u, v in zip((*fast[0], *fast[1]), (*slow[0], *slow[1])):
            assert torch.equal(u, v), kind


def _torch_histc(x, lo, hi):
    """torch.histc of `x` on [lo, hi] (0-dim), values below / above in the end bins."""
    h = torch.histc(x, bins=512, min=float(lo), max=float(hi))
    h[0] += torch.sum(x < lo)
    h[-1] += torch.sum(x > hi)
    return h


def _torch_update(x, lo, hi, state):
    """Row `x`'s first batch (`state` None) or a later one merged into `state` (counts, edges,
    range, limits) as the analyzer's torch ops do it (``_first`` / ``_merge``), binned by
    torch.histc; returns the new state."""
    if state is None:
        edges = te._edges(lo, hi)
        width = edges[-1] - edges[0]
        limits = torch.stack([edges[0] - width * 3.0 / 2, edges[-1] + width * 3.0 / 2])
        return _torch_histc(x, edges[0], edges[-1]), edges, torch.stack([lo, hi]), limits
    counts, edges, ranges, limits = state
    new_lo, new_hi = lo.clamp(limits[0], edges[0]), hi.clamp(edges[-1], limits[1])
    if not (new_lo == ranges[0] and new_hi == ranges[1]):
        counts = te._moved(counts, edges, new_lo, new_hi)
    return (_torch_histc(x, new_lo, new_hi) + counts, te._edges(new_lo, new_hi),
            torch.stack([new_lo, new_hi]), limits)


def _finite_range(x):
    finite = x.isfinite()
    return (torch.where(finite, x, float("inf")).amin(dim=1),
            torch.where(finite, x, -float("inf")).amax(dim=1))


def _op_batches(batches):
    """tfe_first on the first of `batches` ([R, n] each), tfe_merge on the others; returns the
    state (counts, edges, ranges, limits) and each call's `done`."""
    rows = batches[0].shape[0]
    state = [torch.zeros(rows, 512), torch.zeros(rows, 513), torch.zeros(rows, 2), torch.zeros(rows, 2)]
    done = []
    for k, x in enumerate(batches):
        done.append((torch.ops.qsim.tfe_merge if k else torch.ops.qsim.tfe_first)(x, *_finite_range(x), *state))
    return state, done


@pytest.fixture
def threads():
    """Yields, then restores torch's thread count."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("rows, n", [(1, 300_001), (3, 100_003), (2, 65_536), (6, 70_001)])
def test_first_and_merge_are_the_same_at_any_thread_count(rows, n, threads):
    """Long rows, fewer than the threads (counted in chunks over the threads) or not (a row per
    thread), with outliers, +-inf and NaN, and a row without finite values (refused: untouched):
    the state after a first batch and two merges (grown, then beyond the limits) is torch's at
    1, 2 and 4 threads, bit for bit."""
    g = torch.Generator().manual_seed(rows)
    x = torch.randn(rows, n, generator=g) * torch.rand(rows, 1, generator=g) * 5
    x[:, ::9973] = 40.0                                 # outliers
    x[0, 7], x[0, n - 1], x[-1, 5] = float("inf"), float("nan"), -float("inf")
    if rows > 1:
        x[1] = float("nan")                             # no finite value
    batches = [x, 2.5 * x + 1, 300 * x]
    results = []
    for t in (1, 2, 4):
        torch.set_num_threads(t)
        results.append(_op_batches(batches))
    for r in range(rows):
        if rows > 1 and r == 1:
            for state, done in results:
                assert not any(bool(d[r]) for d in done)
                assert all(float(s[r].abs().sum()) == 0 for s in state)
            continue
        want = None
        for b in batches:
            want = _torch_update(b[r], *[v[r] for v in _finite_range(b)], want)
        for t, (state, done) in zip((1, 2, 4), results):
            assert all(bool(d[r]) for d in done), (t, r)
            for got, w, name in zip(state, want, ("counts", "edges", "ranges", "limits")):
                assert torch.equal(got[r], w), (t, r, name)


def _opcheck_cases():
    x = _data(3, 3, 40)
    lo, hi = x.min(dim=1).values, x.max(dim=1).values
    a = _analyzer(3, 3, 40)
    state = [t.clone() for t in (a.counts, a.edges, a.hist_range, a.limits)]
    return [
        ("tfe_histogram", (x, lo - 1, hi + 1)),
        ("tfe_first", (x, lo, hi, *[t.clone() for t in state])),
        ("tfe_merge", (2 * x, 2 * lo, 2 * hi, *[t.clone() for t in state])),
        ("tfe_search", (a.counts, a.edges, a.hist_range, 255, True, te._offsets(255), 8)),
        ("tfe_search", (a.counts, a.edges, a.hist_range, 15, False, te._offsets(15), 16)),
    ]


@pytest.mark.parametrize("case", _opcheck_cases(), ids=lambda c: c[0])
def test_opcheck(case):
    """Schemas (the in-place state of tfe_first / tfe_merge), fake implementations, dispatch."""
    name, args = case
    opcheck(getattr(torch.ops.qsim, name).default, args)
