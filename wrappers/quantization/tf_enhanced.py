"""AIMET 2.42's "tf_enhanced" analyzer, reproduced: :class:`TfEnhancedEncodingAnalyzer`.

aimet-torch 2.42 keeps the histogram of its v1 tf-enhanced analyzer, which differs from
torchqsim's growing, no-drop histogram (:class:`SqnrEncodingAnalyzer`, still available as the
``"growing"`` histogram, docs/aimet.md §4):

- 512 bins per encoding, float counts, first range = the first batch's finite min/max;
- the range may later grow to at most ``3x`` the first range (1.5x on each side); values beyond
  it are counted in the end bins (they are clipped);
- when the range grows, old counts move proportionally to the new bins (a bin that straddles
  two new bins is split by the overlap, rounded), and the batch is binned with ``torch.histc``
  on the new range;
- candidates: asymmetric grids try 17 scales ``d * k / 16`` (``d``: the observed range over
  ``num_steps``) x 21 offsets plus the observed offset, clamped to the histogram's range;
  symmetric grids try 101 scales ``2 * absmax / num_steps * k / 100`` with offset
  ``-num_steps // 2``; the cost of a candidate sums, over the bin centres, the squared
  quantization error (times 3 where clipped) weighted by the counts.

aimet-torch runs all of this as float32 torch operations. Here C kernels (qsim/aimet_tfe.h:
``qsim::tfe_histogram``, ``tfe_merge``, ``tfe_search``) compute the same float32 operations in
the same order, each candidate's cost summed in the order of torch's vectorized sum (its lane
count found at run time by :func:`_sum_lanes`), so they equal the torch ops bit for bit
(tests/python/quantization/test_tf_enhanced_kernels.py); the torch ops below remain for what the
kernels refuse (ranges torch.histc widens or rejects, a sum order not reproduced, non-CPU
buffers). The encodings equal aimet-torch's within float rounding (tests/aimet_parity/ checks it
against aimet-torch itself). The result goes through the same min/max -> grid step as "tf"
(``torch.ops.qsim.encodings_min_max``).

Example::

    >>> a = TfEnhancedEncodingAnalyzer()
    >>> a.update_stats(torch.linspace(-1.0, 1.0, 1000))
    >>> a.update_stats(torch.tensor([10.0]))        # beyond 3x the first range: clipped to 4
    >>> float(a.hist_range[..., 1])
    4.0
    >>> float(a.counts[0, -1])                        # counted in the last bin
    1.0
"""

import functools

import numpy as np
import torch
from torch import Tensor

from .. import _eager
from ._tracing import plain_eager
from .encoding_analyzer import EncodingAnalyzer
from .grid import Grid

__all__ = ["TfEnhancedEncodingAnalyzer"]

_BINS = 512
_GROWTH = 3.0
_ASYM_DELTAS, _SYM_DELTAS, _OFFSETS, _GAMMA = 17, 101, 21, 3.0
_CHUNK = 4  # histograms searched at once (AIMET: 64); each row's cost is computed alike
# The op overloads themselves: resolving torch.ops.qsim.<name> costs microseconds per call.
_MINMAX, _BATCH, _SEARCH = (torch.ops.qsim.minmax.default, torch.ops.qsim.tfe_batch.default,
                            torch.ops.qsim.tfe_search.default)


def _minimum_scale(num_steps: int) -> float:
    return min(float(np.finfo(np.float32).eps), 0.01 / num_steps)


def _edges(lo: Tensor, hi: Tensor) -> Tensor:
    """513 bin edges over [lo, hi] (widened by 0.5 each side when lo == hi), as torch.histc."""
    lo, hi = torch.where(lo == hi, lo - 0.5, lo).float(), torch.where(lo == hi, hi + 0.5, hi).float()
    return torch.arange(0, _BINS + 1, device=lo.device) * ((hi - lo) / _BINS) + lo


def _histc(x: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """torch.histc of `x` on [lo, hi] (0-dim), values below/above counted in the end bins: the C
    kernel (torch.histc's bin rule, bit for bit), or torch.histc itself for a range that it widens
    (lo == hi) or rejects (not finite)."""
    if bool((lo < hi) & lo.isfinite() & hi.isfinite()):
        return torch.ops.qsim.tfe_histogram(x.float().reshape(1, -1), lo.reshape(1), hi.reshape(1))[0]
    h = torch.histc(x.float(), bins=_BINS, min=lo, max=hi)
    h[0] += torch.sum(x < lo)
    h[-1] += torch.sum(x > hi)
    return h


def _histc_rows(x: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """:func:`_histc` of each row of `x` on its own [lo, hi] (`lo`, `hi`: one per row), all rows
    in one call of the C kernel but those whose range torch.histc widens or rejects."""
    x = x.float()
    odd = ~((lo < hi) & lo.isfinite() & hi.isfinite())
    if not bool(odd.any()):
        return torch.ops.qsim.tfe_histogram(x, lo, hi)
    h = torch.zeros(x.shape[0], _BINS)
    h[~odd] = torch.ops.qsim.tfe_histogram(x[~odd], lo[~odd], hi[~odd])
    for r in odd.nonzero().flatten().tolist():
        h[r] = _histc(x[r], lo[r], hi[r])
    return h


def _rows(view: Tensor, axis: int | None) -> Tensor:
    """The float32 rows ``[R, n]`` of a statistics view: one per encoding."""
    rows = view.reshape(1, -1) if axis is None else view.movedim(axis, 0).reshape(view.shape[axis], -1)
    return rows.float()


def _bin_of(width: Tensor, lo: Tensor, x: Tensor) -> Tensor:
    return torch.minimum(((x - lo) / width).to(torch.int32), torch.full(x.shape, _BINS - 1))


def _moved(counts: Tensor, edges: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """`counts` (bins `edges`) moved onto 512 bins over [lo, hi], straddling bins split."""
    width = (hi - lo) / _BINS
    start = edges[:-1]
    first = _bin_of(width, lo, start)
    part = torch.minimum(torch.round(((lo + width * (first + 1) - start) /
                                      (edges[1] - edges[0])) * counts), counts)
    out = torch.zeros(_BINS).index_add_(0, first, part)
    split = (part < counts).nonzero().flatten()
    return out.index_add_(0, _bin_of(width, lo, start + width)[split], (counts - part)[split])


class TfEnhancedEncodingAnalyzer(EncodingAnalyzer):
    """AIMET 2.42's tf_enhanced (see the module docstring).

    Args:
        shape: encoding shape (per-tensor or per-channel; see :class:`EncodingAnalyzer`).
    """

    def __init__(self, shape=()):
        super().__init__(shape)
        n = max(1, self.min.numel())
        self._register_stats(counts=torch.zeros(n, _BINS), edges=torch.zeros(n, _BINS + 1),
                             hist_range=torch.zeros(n, 2), limits=torch.zeros(n, 2),
                             batches=torch.zeros((), dtype=torch.int64))

    # As AIMET's reset drops its histograms, reset_stats leaves these buffers: with ``batches`` 0
    # the next batch writes every row of them (a first batch). This saves a pass over 4 KiB per
    # encoding each calibration.
    _KEPT_ON_RESET = ("counts", "edges", "hist_range", "limits")

    def stats(self) -> dict[str, Tensor]:
        """:meth:`EncodingAnalyzer.stats`; the histogram buffers are zeroed first when no batch
        was seen since the last reset (:meth:`reset_stats` leaves them).

        Example::

            >>> a = TfEnhancedEncodingAnalyzer()
            >>> a.update_stats(torch.arange(4.0))
            >>> a.reset_stats()
            >>> int(a.batches), float(a.stats()["counts"].sum())
            (0, 0.0)
        """
        stats = super().stats()
        if int(stats["batches"]) == 0:
            for name in self._KEPT_ON_RESET:
                stats[name].zero_()
        return stats

    def _update(self, view: Tensor, axis: int | None) -> None:
        stats = self._buffers  # (not nn.Module.__getattr__, a microsecond per read)
        if stats["counts"].is_cpu and view.is_cpu:
            # One op: min/max, their fold, the C kernels (bit for bit the torch ops below), the
            # batch counted; the rows it refuses go to the torch ops (which may raise), and the
            # batch counts once they took them.
            batch = _eager.tfe_batch if plain_eager() else _BATCH  # plain eager: direct entry
            done, lows, highs, refused = batch(
                view, axis, stats["min"], stats["max"], stats["nonfinite"], stats["counts"],
                stats["edges"], stats["hist_range"], stats["limits"], stats["batches"])
            if int(refused):
                self._by_torch(_rows(view, axis), lows, highs, done, int(stats["batches"]) == 0)
                stats["batches"].add_(1)
            return
        lows, highs, bad = _MINMAX(view, axis)   # each row's finite min and max
        self._fold(lows, highs, bad)
        rows = _rows(view, axis)
        self._by_torch(rows, lows.reshape(-1), highs.reshape(-1),
                       torch.zeros(rows.shape[0], dtype=torch.bool), int(stats["batches"]) == 0)
        stats["batches"].add_(1)  # in place: no nn.Module.__setattr__

    def _by_torch(self, rows: Tensor, lows: Tensor, highs: Tensor, done: Tensor,
                  first: bool) -> None:
        """The batch's rows that the C kernels did not take (`done` False) as torch ops: on the
        first batch every row (:meth:`_first`), else each such row (:meth:`_merge`)."""
        if first:
            self._first(rows, lows, highs)
            return
        for i in (~done).nonzero().flatten().tolist():
            self._merge(i, rows[i], lows[i], highs[i])

    def _first(self, rows: Tensor, lo: Tensor, hi: Tensor) -> None:
        """The first batch as torch ops (all rows at once; for what ``qsim::tfe_first`` refuses:
        rows without a finite value, point ranges too large to widen): each row's histogram over
        its own finite range [lo, hi]."""
        edges = _edges(lo[:, None], hi[:, None])
        self.counts.copy_(_histc_rows(rows, edges[:, 0], edges[:, -1]))
        self.edges.copy_(edges)
        self.hist_range[:, 0], self.hist_range[:, 1] = lo, hi
        width = edges[:, -1] - edges[:, 0]
        self.limits[:, 0] = edges[:, 0] - width * _GROWTH / 2
        self.limits[:, 1] = edges[:, -1] + width * _GROWTH / 2

    def _merge(self, i: int, x: Tensor, lo: Tensor, hi: Tensor) -> None:
        """Row `i`'s merge as torch ops, for the rows that ``qsim::tfe_merge`` refuses (a grown
        range that torch.histc widens or rejects)."""
        edges, counts = self.edges[i], self.counts[i]
        new_lo = lo.clamp(self.limits[i, 0], edges[0])
        new_hi = hi.clamp(edges[-1], self.limits[i, 1])
        if not (new_lo == self.hist_range[i, 0] and new_hi == self.hist_range[i, 1]):
            counts = _moved(counts, edges, new_lo, new_hi)
        self.counts[i] = _histc(x, new_lo, new_hi) + counts
        self.edges[i] = _edges(new_lo, new_hi)
        self.hist_range[i, 0], self.hist_range[i, 1] = new_lo, new_hi

    def _encodings(self, grid):
        lo, hi = self._search_range(grid)
        return torch.ops.qsim.encodings_min_max(lo.reshape(self.min.shape), hi.reshape(self.max.shape),
                                                grid.bitwidth, int(grid.kind))

    def quantizer_range(self, grid: Grid) -> tuple[Tensor, Tensor]:
        """:meth:`EncodingAnalyzer.quantizer_range`: the best candidate's range, which the
        quantizer holds (the encoding itself, unused, is not computed)."""
        self._check_usable(grid, "quantizer_range")
        return self._search_range(grid)

    def _search_range(self, grid: Grid) -> tuple[Tensor, Tensor]:
        """The best candidate's (min, max) of each histogram, of the encoding shape, kept as
        the held range of `grid` (:meth:`held_range`)."""
        stats = self._buffers  # (not nn.Module.__getattr__, a microsecond per read)
        counts, edges, ranges = stats["counts"], stats["edges"], stats["hist_range"]
        steps, symmetric = grid.qmax - grid.qmin, grid.symmetric
        lanes = _sum_lanes() if counts.is_cpu else None
        if lanes is not None:   # the C search, torch's sums bit for bit
            lo, hi = _SEARCH(counts, edges, ranges, steps, symmetric, _offsets(steps), lanes)
        else:
            lo, hi = _search_chunks(counts, edges, ranges, steps, symmetric)
        held = lo.reshape(self.shape), hi.reshape(self.shape)
        self.__dict__["_held"] = (grid, *held)  # (a plain attribute: no nn.Module.__setattr__)
        return held

    def held_range(self, grid: Grid) -> tuple[Tensor, Tensor] | None:
        """The (min, max) an aimet-torch 2.42 quantizer holds for the last encoding computed
        (the best candidate's ``offset * delta`` and ``+ num_steps * delta``, not snapped to the
        grid): a quantizer holding it derives AIMET's scale bit for bit (docs/aimet.md §2.3).
        None before any encoding on this grid was computed."""
        held = getattr(self, "_held", None)
        return held[1:] if held is not None and held[0] == grid else None

    def extra_repr(self) -> str:
        return f"shape={self.shape}, num_bins={_BINS}, growth_limit={_GROWTH}"


@functools.cache
def _sum_lanes() -> int | None:
    """The float32 lanes L of torch's sum of a contiguous row of 512 on this machine, found by
    trying: the sum equals, bit for bit, term i accumulated into lane i % L of accumulator
    (i // L) % 4 in ascending i, then the four accumulators lane by lane, then the lanes in order
    (qsim/aimet_tfe.h). None when neither L = 16 nor L = 8 reproduces it: the search then runs
    as torch operations (:func:`_search_chunks`).

    Example::

        >>> _sum_lanes() in (8, 16, None)
        True
    """
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, _BINS, generator=g) * torch.exp2(
        torch.randint(-24, 25, (64, _BINS), generator=g).float())
    want = torch.sum(x, dim=-1)
    for lanes in (16, 8):
        blocks = x.reshape(64, -1, 4, lanes)
        acc = blocks[:, 0].clone()
        for b in range(1, blocks.shape[1]):
            acc += blocks[:, b]
        per_lane = ((acc[:, 0] + acc[:, 1]) + acc[:, 2]) + acc[:, 3]
        total = torch.zeros(64)
        for lane in range(lanes):
            total += per_lane[:, lane]
        if torch.equal(total, want):
            return lanes
    return None


@functools.cache
def _offsets(steps: int) -> Tensor:
    """AIMET's asymmetric offset candidates for a grid of `steps` steps (float32)."""
    n_off = min(steps + 2, _OFFSETS)
    step = steps / (n_off - 2)
    return torch.round(torch.arange(-steps, step, step, dtype=torch.float32))


def _search_chunks(counts, edges, ranges, steps: int, symmetric: bool) -> tuple[Tensor, Tensor]:
    """:func:`_search` of `_CHUNK` rows at a time (the torch-op search)."""
    lows, highs = [], []
    for c in range(0, counts.shape[0], _CHUNK):
        lo, hi = _search(counts[c:c + _CHUNK], edges[c:c + _CHUNK], ranges[c:c + _CHUNK],
                         steps, symmetric)
        lows.append(lo)
        highs.append(hi)
    return torch.cat(lows), torch.cat(highs)


def _search(counts, edges, ranges, steps: int, symmetric: bool) -> tuple[Tensor, Tensor]:
    """(min, max) of the best candidate of each histogram row."""
    lo = torch.minimum(ranges[:, 0], torch.zeros_like(ranges[:, 0]))
    hi = torch.maximum(ranges[:, 1], torch.zeros_like(ranges[:, 1]))
    hi = torch.maximum(hi, lo + _minimum_scale(steps) * steps)
    deltas, offsets = (_symmetric_candidates if symmetric else _asymmetric_candidates)(lo, hi, steps)
    cost = _cost(counts, edges, deltas, offsets, steps)
    best = torch.min(cost.flatten(start_dim=1), dim=1)[1][:, None]
    delta = torch.gather(deltas.flatten(start_dim=1), 1, best)
    offset = offsets if offsets.numel() == 1 else torch.gather(offsets.flatten(start_dim=1), 1, best)
    low = offset * delta
    return low.flatten(), (low + steps * delta).flatten()


def _symmetric_candidates(lo, hi, steps):
    top = 2 * torch.max(hi, -lo).float() / steps
    k = torch.arange(1, 1 + _SYM_DELTAS, dtype=torch.float32)
    deltas = torch.max(top[:, None] * k[None, :] / (_SYM_DELTAS - 1),
                       torch.tensor([_minimum_scale(steps)]))
    return deltas[:, :, None], torch.full((1,), (-steps) // 2, dtype=torch.float32)[:, None, None]


def _asymmetric_candidates(lo, hi, steps):
    top = (hi - lo).float() / steps
    seen_offset = torch.round(lo / top)
    seen_lo = top * seen_offset
    seen_hi = seen_lo + top * steps
    k = torch.arange(1, 1 + _ASYM_DELTAS, dtype=torch.float32)
    deltas = top[:, None] * k[None, :] / (_ASYM_DELTAS - 1)
    offsets = torch.concat((_offsets(steps)[None, :].expand(lo.shape[0], -1), seen_offset[:, None]),
                           dim=1)
    # clamp each candidate's range to the observed one, then back to (delta, offset)
    cand_lo = torch.max(seen_lo[:, None, None], deltas[:, :, None] * offsets[:, None, :])
    cand_hi = torch.min(seen_hi[:, None, None],
                        deltas[:, :, None] * offsets[:, None, :] + deltas[:, :, None] * steps)
    deltas = torch.max((cand_hi - cand_lo) / steps, torch.tensor([_minimum_scale(steps)]))
    return deltas, torch.round(cand_lo / deltas)


def _cost(counts, edges, deltas, offsets, steps):
    """Per candidate: sum over bin centres of |qdq(c) - c|^2 * count, clipped errors x gamma."""
    width = edges[:, 1] - edges[:, 0]
    centres = (edges[:, 0] + width / 2)[:, None] + width[:, None] * torch.arange(
        0, edges.shape[1] - 1, dtype=deltas.dtype)[None, :]
    off, dl = offsets[:, :, :, None], deltas[:, :, :, None]
    q = centres[:, None, None, :].div(dl).sub_(off).round_()
    gamma = torch.where(torch.logical_or(q < 0, q > steps), _GAMMA, 1.0)
    err = q.clamp_(0, steps).add_(off).mul_(dl).sub_(centres[:, None, None, :]).pow_(2.0)
    return torch.sum(err.mul_(counts[:, None, None, :]).mul_(gamma), dim=-1)
