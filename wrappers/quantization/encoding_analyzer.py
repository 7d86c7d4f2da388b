"""Encoding analyzers: calibration statistics and the encodings computed from them.

An analyzer collects statistics of the tensors it sees (`update_stats`) and turns them into an
encoding for a grid (`compute_encodings`); `reset_stats` starts over. The statistics and the
searches are C kernels (``torch.ops.qsim``); the statistics live in tensors (non-persistent
buffers: they follow ``.to()`` but stay out of ``state_dict``), so they can be saved with
:meth:`EncodingAnalyzer.stats` or summed across processes.

Analyzers (aimet-torch v2 names, docs/aimet.md §4):

- :class:`MinMaxEncodingAnalyzer` ("tf"): running min/max.
- :class:`SqnrEncodingAnalyzer` ("tf_enhanced"): SQNR search over a histogram,
  cost ``gamma * clipping noise + rounding noise``.
- :class:`PercentileEncodingAnalyzer`: the ``(100 - p)`` and ``p`` percentiles of a histogram.
- :class:`MseEncodingAnalyzer`: the (scale, zero point) with the least histogram-weighted MSE.

Histograms have ``num_bins`` bins (2048 by default) and grow by whole bins when a batch widens the
range, so no count is lost. Non-finite values are skipped and counted.

Example::

    >>> analyzer = SqnrEncodingAnalyzer(shape=())
    >>> analyzer.update_stats(torch.linspace(-1.0, 3.0, 1001))
    >>> enc = analyzer.compute_encodings(bitwidth=8, symmetric=False)
    >>> int(enc.zero_point), round(float(enc.scale), 5)   # min/max would give 4/255 = 0.01569
    (64, 0.01567)
"""

import math

import torch
from torch import Tensor

from .analyzer_base import Encoding, EncodingAnalyzer
from .grid import Grid, GridKind

__all__ = ["Encoding", "EncodingAnalyzer", "MinMaxEncodingAnalyzer", "SqnrEncodingAnalyzer",
           "PercentileEncodingAnalyzer", "MseEncodingAnalyzer", "aimet_held_range"]

_MAX_BINS = 1 << 24
_HELD_RANGE = torch.ops.qsim.held_range.default


class MinMaxEncodingAnalyzer(EncodingAnalyzer):
    """The "tf" scheme: the encoding of the running min/max.

    Args:
        shape: encoding shape (see :class:`EncodingAnalyzer`).
        fixed_min: when given, the encoding's min is this value instead of the observed one
            (AIMET's min-only ``encoding_constraints``: min fixed, max calibrated); a finite
            float32 value, else ValueError.

    Example::

        >>> a = MinMaxEncodingAnalyzer(shape=(2, 1))
        >>> a.update_stats(torch.tensor([[-1.0, 3.0], [0.5, 2.0]]))
        >>> a.compute_encodings(8, symmetric=True).scale.flatten()
        tensor([0.0236, 0.0157])
        >>> b = MinMaxEncodingAnalyzer(fixed_min=0.0)
        >>> b.update_stats(torch.tensor([-1.0, 2.55]))
        >>> float(b.compute_encodings(8, symmetric=False).min)
        0.0
    """

    def __init__(self, shape=(), fixed_min: float | None = None):
        super().__init__(shape)
        if fixed_min is not None and not abs(float(fixed_min)) <= torch.finfo(torch.float32).max:
            raise ValueError(f"fixed_min must be a finite float32 value, got {fixed_min!r}")
        self.fixed_min = None if fixed_min is None else float(fixed_min)

    def _encodings(self, grid):
        return torch.ops.qsim.encodings_min_max(self._lo(), self.max, grid.bitwidth, int(grid.kind))

    def _lo(self) -> Tensor:
        return self.min if self.fixed_min is None else torch.full_like(self.min, self.fixed_min)

    def quantizer_range(self, grid: Grid) -> tuple[Tensor, Tensor]:
        """:meth:`EncodingAnalyzer.quantizer_range`; on an asymmetric grid the held range alone
        (it does not depend on the encoding, which is then not computed)."""
        if grid.kind is not GridKind.ASYMMETRIC:
            return super().quantizer_range(grid)
        if self.min.device.type == "cpu":  # one op: the held range and the seen check
            lo, hi, unseen = _HELD_RANGE(self.min, self.max, grid.qmax - grid.qmin, self.fixed_min)
            if int(unseen) >= 0:
                self._check_seen()
            return lo.reshape(self.shape), hi.reshape(self.shape)
        self._check_seen()
        return self.held_range(grid)

    @torch.no_grad()
    def held_range(self, grid: Grid) -> tuple[Tensor, Tensor] | None:
        """The (min, max) an aimet-torch 2.42 quantizer holds for this encoding on an asymmetric
        grid: the observed range widened to zero (and by ``n * eps`` when narrower than ``n``
        steps of ``eps``), not snapped to the grid, in float32 as AIMET computes it. A quantizer
        holding it derives AIMET's scale ``(max - min) / n`` bit for bit (docs/aimet.md §2.3).
        None for symmetric grids, whose held range is the grid's. On the CPU the C rule
        ``qsim::held_range`` (bit for bit :func:`aimet_held_range`)."""
        if grid.kind is not GridKind.ASYMMETRIC:
            return None
        if self.min.device.type == "cpu":
            lo, hi, _ = _HELD_RANGE(self.min, self.max, grid.qmax - grid.qmin, self.fixed_min)
        else:
            lo, hi = aimet_held_range(self._lo(), self.max, grid.qmax - grid.qmin)
        return lo.reshape(self.shape), hi.reshape(self.shape)


def aimet_held_range(lo: Tensor, hi: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """aimet-torch 2.42's held range of the observed [lo, hi] on an asymmetric grid of `steps`
    steps, as its float32 torch expressions (:meth:`MinMaxEncodingAnalyzer.held_range`).

    Example::

        >>> [float(t) for t in aimet_held_range(torch.tensor(0.5), torch.tensor(2.0), 255)]
        [0.0, 2.0]
    """
    eps, big = torch.finfo(torch.float32).eps, torch.finfo(torch.float32).max
    lo = torch.clamp(lo, min=-big, max=0.0)
    hi = torch.clamp(hi, min=0.0, max=big)
    hi = hi + steps * (eps * ((hi - lo) / steps < eps))
    return lo, torch.clamp(hi, max=big)


class _HistogramAnalyzer(EncodingAnalyzer):
    """An analyzer that also keeps a growing histogram of `num_bins` bins per encoding."""

    def __init__(self, shape=(), num_bins: int = 2048):
        super().__init__(shape)
        if isinstance(num_bins, bool) or not isinstance(num_bins, int) or \
                not 1 <= num_bins <= _MAX_BINS:
            raise ValueError(f"num_bins must be an integer from 1 to {_MAX_BINS}, got {num_bins!r}")
        self.num_bins = num_bins
        self.register_buffer("counts", torch.zeros((*self._stat_shape, num_bins), dtype=torch.int64),
                             persistent=False)
        self.register_buffer("range", torch.zeros((*self._stat_shape, 2), dtype=torch.float64),
                             persistent=False)

    def _update(self, view, axis):
        # One pass when every histogram has a range that covers the batch. Otherwise the ranges
        # grow to the batch's min/max (from that pass, else from a min/max pass when there is no
        # range yet), the old counts are re-binned, and the batch is binned again.
        lo, hi = self.range[..., 0], self.range[..., 1]
        if bool((hi > lo).all()):
            counts, bmin, bmax, bad = torch.ops.qsim.histogram(view, self.range, self.num_bins, axis)
            self._fold(bmin, bmax, bad)
            if bool(((bmin >= lo) & (bmax <= hi) | (bmin > bmax)).all()):
                self.counts.add_(counts)
                return
        else:
            super()._update(view, axis)
        counts, range_ = torch.ops.qsim.histogram_grow(self.counts, self.range, self.min, self.max)
        self.counts.copy_(counts.add_(torch.ops.qsim.histogram(view, range_, self.num_bins, axis)[0]))
        self.range.copy_(range_)

    def extra_repr(self):
        return f"shape={self.shape}, num_bins={self.num_bins}"


class SqnrEncodingAnalyzer(_HistogramAnalyzer):
    """The "tf_enhanced" scheme: the SQNR-optimal candidate over a histogram.

    Candidates (AIMET's set): asymmetric grids try ``asymmetric_delta_candidates`` scales
    ``d * k / 16`` (d: the min/max scale) times ``offset_candidates`` offsets, each clamped to
    the observed range, plus the min/max encoding; symmetric grids try
    ``symmetric_delta_candidates`` scales ``d * k / 100``. The cost of a candidate is
    ``gamma * clipping noise + rounding noise`` over the histogram's bin centres, so the result
    is never worse than min/max on that cost.

    Args:
        shape: encoding shape (see :class:`EncodingAnalyzer`).
        num_bins: histogram bins, 1 to 2^24 (default 2048).
        asymmetric_delta_candidates: >= 2 (17).
        symmetric_delta_candidates: >= 2 (101).
        offset_candidates: >= 3 (21).
        gamma: weight of clipping noise, finite and >= 0 (3.0).

    Example::

        >>> a = SqnrEncodingAnalyzer()
        >>> x = torch.cat([torch.linspace(-1, 1, 100000), torch.tensor([60.0])])
        >>> a.update_stats(x)
        >>> float(a.compute_encodings(8, symmetric=False).max) < 60.0   # the outlier is clipped
        True
    """

    def __init__(self, shape=(), num_bins: int = 2048, *, asymmetric_delta_candidates: int = 17,
                 symmetric_delta_candidates: int = 101, offset_candidates: int = 21,
                 gamma: float = 3.0):
        super().__init__(shape, num_bins)
        for name, value, least in (("asymmetric_delta_candidates", asymmetric_delta_candidates, 2),
                                   ("symmetric_delta_candidates", symmetric_delta_candidates, 2),
                                   ("offset_candidates", offset_candidates, 3)):
            if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= 4096:
                raise ValueError(f"{name} must be an integer from {least} to 4096, got {value!r}")
        if not (math.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"gamma must be finite and >= 0, got {gamma!r}")
        self.asymmetric_delta_candidates = asymmetric_delta_candidates
        self.symmetric_delta_candidates = symmetric_delta_candidates
        self.offset_candidates = offset_candidates
        self.gamma = float(gamma)

    def _encodings(self, grid):
        return torch.ops.qsim.encodings_tf_enhanced(
            self.counts, self.range, self.min, self.max, grid.bitwidth, int(grid.kind), self.gamma,
            self.asymmetric_delta_candidates, self.symmetric_delta_candidates,
            self.offset_candidates)

    def extra_repr(self):
        return f"{super().extra_repr()}, gamma={self.gamma}"


def _check_percentile(percentile) -> float:
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or \
            not 50 <= percentile <= 100:
        raise ValueError(f"percentile must be a number in [50, 100], got {percentile!r}")
    return float(percentile)


class PercentileEncodingAnalyzer(_HistogramAnalyzer):
    """Percentile clipping: the encoding of the ``100 - p`` and ``p`` percentiles.

    Percentiles come from the histogram's CDF, linear within a bin, clamped to the observed
    range; ``p = 100`` is the observed min/max.

    Args:
        shape: encoding shape (see :class:`EncodingAnalyzer`).
        num_bins: histogram bins, 1 to 2^24 (default 2048).
        percentile: p in [50, 100] (default 100).

    Example::

        >>> a = PercentileEncodingAnalyzer(percentile=99.0)
        >>> a.update_stats(torch.arange(1000.0))
        >>> round(float(a.compute_encodings(8, symmetric=False).max), 1)
        989.2
    """

    def __init__(self, shape=(), num_bins: int = 2048, percentile: float = 100.0):
        super().__init__(shape, num_bins)
        self.percentile = _check_percentile(percentile)

    def set_percentile(self, percentile: float) -> None:
        """Sets p (in [50, 100]) for later :meth:`compute_encodings` calls."""
        self.percentile = _check_percentile(percentile)

    def _encodings(self, grid):
        return torch.ops.qsim.encodings_percentile(self.counts, self.range, self.min, self.max,
                                                   grid.bitwidth, int(grid.kind), self.percentile)

    def extra_repr(self):
        return f"{super().extra_repr()}, percentile={self.percentile}"


class MseEncodingAnalyzer(_HistogramAnalyzer):
    """MSE search: the (scale, zero point) with the least histogram-weighted squared error.

    Scales ``d * k / num_candidates`` for ``k = 1..num_candidates`` (d: the min/max scale);
    symmetric grids keep their zero point, asymmetric grids try every zero point (at most 256,
    evenly spaced, on grids wider than 8 bits).

    Args:
        shape: encoding shape (see :class:`EncodingAnalyzer`).
        num_bins: histogram bins, 1 to 2^24 (default 2048).
        num_candidates: scales tried, 1 to 65536 (default 100).

    Example::

        >>> a = MseEncodingAnalyzer()
        >>> a.update_stats(torch.randn(10000, generator=torch.Generator().manual_seed(0)))
        >>> float(a.compute_encodings(4, symmetric=True).max) < 3.0  # clips the tails
        True
    """

    def __init__(self, shape=(), num_bins: int = 2048, num_candidates: int = 100):
        super().__init__(shape, num_bins)
        if isinstance(num_candidates, bool) or not isinstance(num_candidates, int) or \
                not 1 <= num_candidates <= 65536:
            raise ValueError(f"num_candidates must be an integer from 1 to 65536, "
                             f"got {num_candidates!r}")
        self.num_candidates = num_candidates

    def _encodings(self, grid):
        return torch.ops.qsim.encodings_mse(self.counts, self.range, self.min, self.max,
                                            grid.bitwidth, int(grid.kind), self.num_candidates)
