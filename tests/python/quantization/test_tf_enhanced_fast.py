"""The AIMET tf_enhanced analyzer's batched paths (the C histogram kernel for all rows at once,
the torch-op search in chunks) equal the row-by-row formulas bit for bit.

Oracles (plain torch, written out here as torchqsim ran them before they were batched): the
first batch's histogram of each row by ``torch.histc`` on the row's own finite range, the end
bins taking what lies outside it; the candidate cost ``where(clipped, err * 3, err)`` summed
over the bin centres; and the search of all rows at once (AIMET's 64) against one row at a time.
"""

import pytest
import torch

from torchqsim.quantization import tf_enhanced as te
from torchqsim.quantization.grid import Grid, GridKind


def _rows_first(rows):
    """Each row's first-batch (histogram, edges, growth limits), one torch.histc call per row."""
    out = []
    for x in rows:
        finite = x.isfinite()
        lo = torch.where(finite, x, float("inf")).min()
        hi = torch.where(finite, x, -float("inf")).max()
        edges = te._edges(lo, hi)
        h = torch.histc(x, bins=te._BINS, min=edges[0], max=edges[-1])
        h[0] += torch.sum(x < edges[0])
        h[-1] += torch.sum(x > edges[-1])
        width = edges[-1] - edges[0]
        limits = torch.stack([edges[0] - width * 3.0 / 2, edges[-1] + width * 3.0 / 2])
        out.append((h, edges, limits))
    return [torch.stack(t) for t in zip(*out)]


def _cases(seed, count, max_rows=24):
    gen = torch.Generator().manual_seed(seed)
    for i in range(count):
        rows, n = int(torch.randint(1, max_rows, (1,), generator=gen)), int(torch.randint(1, 200, (1,), generator=gen))
        x = torch.randn(rows, n, generator=gen) * 10.0 ** float(torch.randint(-3, 4, (1,), generator=gen))
        if i % 3 == 0:
            x = torch.round(x * 8) / 8          # many values exactly on bin edges
        if i % 4 == 0:
            x[0] = 0.75                          # a constant row: torch.histc widens its range
        if i % 5 == 0 and n > 2:
            x[-1, 0], x[-1, 1] = float("inf"), float("nan")   # skipped, or in the end bin
        yield x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_first_batch_histograms_equal_torch_histc_row_by_row(seed):
    for x in _cases(seed, 40):
        a = te.TfEnhancedEncodingAnalyzer((x.shape[0], 1))
        a.update_stats(x)
        counts, edges, limits = _rows_first(x)
        assert torch.equal(a.counts, counts) and torch.equal(a.edges, edges)
        assert torch.equal(a.limits, limits)


def test_a_row_without_finite_values_is_torch_histcs_error():
    a = te.TfEnhancedEncodingAnalyzer((2, 1))
    with pytest.raises(RuntimeError, match="not finite"):
        a.update_stats(torch.tensor([[1.0, 2.0], [float("nan"), float("inf")]]))


def _cost_reference(counts, edges, deltas, offsets, steps):
    width = edges[:, 1] - edges[:, 0]
    centres = (edges[:, 0] + width / 2)[:, None] + width[:, None] * torch.arange(
        0, edges.shape[1] - 1, dtype=deltas.dtype)[None, :]
    off, dl = offsets[:, :, :, None], deltas[:, :, :, None]
    q = centres[:, None, None, :].div(dl).sub(off).round()
    clipped = torch.logical_or(q < 0, q > steps)
    err = torch.abs(q.clamp_(0, steps).add_(off).mul_(dl).sub_(centres[:, None, None, :]))
    err = err.pow_(2.0).mul_(counts[:, None, None, :])
    return torch.sum(torch.where(clipped, err * te._GAMMA, err), dim=-1)


@pytest.mark.parametrize("symmetric", [True, False])
def test_candidate_cost_equals_the_reference_formula(symmetric):
    for x in _cases(2, 6, max_rows=4):
        a = te.TfEnhancedEncodingAnalyzer((x.shape[0], 1))
        a.update_stats(x.nan_to_num(0.0, 0.0, 0.0))
        a.update_stats(3 * x.nan_to_num(0.0, 0.0, 0.0))   # a grown, merged histogram
        for steps in (255, 15):
            r = a.hist_range
            lo, hi = torch.minimum(r[:, 0], torch.zeros(())), torch.maximum(r[:, 1], torch.zeros(()))
            hi = torch.maximum(hi, lo + te._minimum_scale(steps) * steps)
            make = te._symmetric_candidates if symmetric else te._asymmetric_candidates
            deltas, offsets = make(lo, hi, steps)
            assert torch.equal(te._cost(a.counts, a.edges, deltas, offsets, steps),
                               _cost_reference(a.counts, a.edges, deltas, offsets, steps))


@pytest.mark.parametrize("kind", [GridKind.SYMMETRIC, GridKind.ASYMMETRIC])
def test_search_chunk_size_does_not_change_the_encoding(kind, monkeypatch):
    monkeypatch.setattr(te, "_sum_lanes", lambda: None)   # the torch-op search
    x = torch.randn(10, 300, generator=torch.Generator().manual_seed(3)) * \
        torch.linspace(0.01, 5.0, 10)[:, None]
    a = te.TfEnhancedEncodingAnalyzer((10, 1))
    a.update_stats(x)
    results = []
    for chunk in (1, te._CHUNK, 64):
        monkeypatch.setattr(te, "_CHUNK", chunk)
        results.append((a.encodings_for(Grid.of(8, kind)), a.held_range(Grid.of(8, kind))))
    for enc, held in results[1:]:
        assert all(torch.equal(u, v) for u, v in zip(enc, results[0][0]))
        assert all(torch.equal(u, v) for u, v in zip(held, results[0][1]))


def _merge_reference(a, rows):
    """A later batch merged row by row as AIMET does: the range grows within the limits, the old
    counts move, and torch.histc bins the batch with everything outside in the end bins."""
    for i, x in enumerate(rows):
        finite = x.isfinite()
        lo = torch.where(finite, x, float("inf")).min()
        hi = torch.where(finite, x, -float("inf")).max()
        edges, counts = a.edges[i], a.counts[i]
        new_lo = lo.clamp(a.limits[i, 0], edges[0])
        new_hi = hi.clamp(edges[-1], a.limits[i, 1])
        if not (new_lo == a.hist_range[i, 0] and new_hi == a.hist_range[i, 1]):
            counts = te._moved(counts, edges, new_lo, new_hi)
        h = torch.histc(x, bins=te._BINS, min=new_lo, max=new_hi)
        h[0] += torch.sum(x < new_lo)
        h[-1] += torch.sum(x > new_hi)
        a.counts[i] = h + counts
        a.edges[i] = te._edges(new_lo, new_hi)
        a.hist_range[i, 0], a.hist_range[i, 1] = new_lo, new_hi


def test_later_batches_merge_as_row_by_row():
    for x in _cases(4, 12, max_rows=6):
        x = x.nan_to_num(0.0, 0.0, 0.0)
        a = te.TfEnhancedEncodingAnalyzer((x.shape[0], 1))
        ref = te.TfEnhancedEncodingAnalyzer((x.shape[0], 1))
        a.update_stats(x)
        ref.update_stats(x)
        later = [0.5 * x, 2.5 * x + 1, 40 * x, x.clone()]
        later[3][:, 0] = float("-inf")
        for y in later:                          # inside, grown, clipped at the limits, -inf
            a.update_stats(y)
            _merge_reference(ref, y)
            for name in ("counts", "edges", "hist_range"):
                assert torch.equal(getattr(a, name), getattr(ref, name)), name


def test_rows_the_c_merge_refuses_merge_as_torch_ops():
    """A constant row of 1e10: its widened range is still a point in float32 (1e10 +- 0.5), which
    torch.histc widens itself; the C kernels leave such rows to the torch ops."""
    x = torch.randn(3, 50, generator=torch.Generator().manual_seed(9))
    x[1] = 1e10
    a = te.TfEnhancedEncodingAnalyzer((3, 1))
    ref = te.TfEnhancedEncodingAnalyzer((3, 1))
    a.update_stats(x)
    ref.update_stats(x)
    counts, edges, _ = _rows_first(x)
    assert torch.equal(a.counts, counts) and torch.equal(a.edges, edges)
    for y in (x, 2 * x):
        a.update_stats(y)
        _merge_reference(ref, y)
        for name in ("counts", "edges", "hist_range"):
            assert torch.equal(getattr(a, name), getattr(ref, name)), name
