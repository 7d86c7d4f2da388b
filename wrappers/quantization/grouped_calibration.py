"""The start and the end of calibration for many quantizers at once, bit for bit what each
quantizer's own ``_start_calibration`` / ``_finish_calibration`` does.

A sim calibrates about a hundred quantizers at a time, and each one's reset and encoding were
a handful of small torch ops (tens of microseconds in all, most of it per-op overhead). Here:

- :func:`start_calibrations` resets every analyzer's statistics (on the CPU) with three grouped
  fills;
- :func:`finish_calibrations` computes the ranges of quantizers that share an analyzer kind and
  a grid with one op over their statistics laid end to end (every encoding of these analyzers
  depends on its own statistics alone), and writes them back with grouped copies. tf_enhanced
  quantizers are grouped when they hold one histogram (per tensor): copying the histograms of
  a per-channel weight costs more than the ops it saves.

Quantizers these rules do not cover (other analyzers or quantizer classes, devices other than
the CPU, a statistic that saw no finite value) take their own methods, so errors and results
are theirs.

Example::

    >>> qs = [QuantizeDequantize((), 8, symmetric=False) for _ in range(3)]
    >>> start_calibrations(qs)
    >>> for i, q in enumerate(qs):
    ...     _ = q(torch.tensor([-1.0, float(i + 1)]))
    >>> finish_calibrations(qs)
    []
    >>> [round(float(q.max.detach()), 4) for q in qs]
    [1.0, 2.0, 3.0]
"""

import math

import torch

from .analyzer_base import EncodingAnalyzer
from .encoding_analyzer import _HELD_RANGE, MinMaxEncodingAnalyzer
from .grid import GridKind
from .quantizer import QuantizeDequantize
from . import tf_enhanced as tfe

__all__ = ["start_calibrations", "stop_calibrations", "finish_calibrations", "split_ranges",
           "set_ranges"]

_TRUE = torch.tensor(True)
_INF, _NEG_INF = torch.tensor(math.inf), torch.tensor(-math.inf)
_ENCODINGS = torch.ops.qsim.encodings_min_max.default


def start_calibrations(quantizers) -> None:
    """``q._start_calibration()`` for each quantizer of `quantizers`.

    Raises:
        RuntimeError: a quantizer is already computing encodings (none is started then).
    """
    for q in quantizers:
        if q._calibrating:
            q._start_calibration()  # its own error
    inf, neg_inf, zero = [], [], []
    for q in quantizers:
        analyzer = q._modules["encoding_analyzer"]
        lo = analyzer._buffers.get("min")
        if type(q)._start_calibration is not QuantizeDequantize._start_calibration or \
                type(analyzer).reset_stats is not EncodingAnalyzer.reset_stats or \
                lo is None or lo.device.type != "cpu":
            q._start_calibration()
            continue
        for name, buf in analyzer._buffers.items():
            if buf is not None and name not in analyzer._KEPT_ON_RESET:
                (inf if name == "min" else neg_inf if name == "max" else zero).append(buf)
        q.__dict__["_calibrating"] = True  # (a plain attribute: no nn.Module.__setattr__)
    with torch.no_grad():
        for bufs, value in ((inf, _INF), (neg_inf, _NEG_INF)):
            if bufs:  # (the foreach ops refuse empty lists)
                torch._foreach_copy_(bufs, [value] * len(bufs))
        if zero:
            torch._foreach_zero_(zero)


def stop_calibrations(quantizers) -> None:
    """Each quantizer of `quantizers` stops observing (its forward quantizes again)."""
    for q in quantizers:
        q.__dict__["_calibrating"] = False  # (a plain attribute: no nn.Module.__setattr__)


def finish_calibrations(quantizers) -> list:
    """``q._finish_calibration()`` for each quantizer of `quantizers`; the RuntimeErrors of
    those that computed no encoding are returned as ``[(quantizer, error)]`` in their order
    instead of raised (the others get their encodings all the same)."""
    groups, failed = {}, []
    for q in quantizers:
        key = _group(q)
        if key is None:
            _finish_one(q, failed)
        else:
            groups.setdefault(key, []).append(q)
    for key, members in groups.items():
        analyzers = [q._modules["encoding_analyzer"] for q in members]
        ranges = _RANGES[key[0]](key, analyzers)
        if ranges is None:  # some statistic saw no finite value: each with its own error
            for q in members:
                _finish_one(q, failed)
            continue
        _store(members, analyzers, key, *ranges)
    order = {id(q): i for i, q in enumerate(quantizers)}
    return sorted(failed, key=lambda f: order[id(f[0])])


def _finish_one(q, failed: list) -> None:
    try:
        q._finish_calibration()
    except RuntimeError as e:
        failed.append((q, e))


def _group(q) -> tuple | None:
    """The key of the quantizers whose ranges one op computes with `q`'s, or None."""
    cls, analyzer = type(q), q._modules["encoding_analyzer"]
    if cls._finish_calibration is not QuantizeDequantize._finish_calibration or \
            cls._set_from_analyzer is not QuantizeDequantize._set_from_analyzer or \
            cls._set is not QuantizeDequantize._set or \
            q._parameters["min"].device.type != "cpu" or analyzer.min.device.type != "cpu":
        return None
    grid = q.grid
    if type(analyzer) is MinMaxEncodingAnalyzer:
        if grid.kind is GridKind.ASYMMETRIC:
            return ("held", grid, analyzer.fixed_min)
        return ("encoding", grid, analyzer.fixed_min)
    if type(analyzer) is tfe.TfEnhancedEncodingAnalyzer and analyzer.min.numel() == 1 and \
            tfe._sum_lanes() is not None:  # (many rows: their search outweighs a copy of them)
        return ("search", grid)
    return None


def _flat(analyzers, name: str):
    return torch.cat([a._buffers[name].reshape(-1) for a in analyzers])


def _held(key, analyzers):
    """MinMaxEncodingAnalyzer.quantizer_range on an asymmetric grid (the held range)."""
    _, grid, fixed_min = key
    lo, hi, unseen = _HELD_RANGE(_flat(analyzers, "min"), _flat(analyzers, "max"),
                                 grid.qmax - grid.qmin, fixed_min)
    return None if int(unseen) >= 0 else (lo, hi)


def _encoding(key, analyzers):
    """MinMaxEncodingAnalyzer.quantizer_range on a symmetric grid (the encoding's min/max)."""
    _, grid, fixed_min = key
    lo, hi = _flat(analyzers, "min"), _flat(analyzers, "max")
    if not bool((lo <= hi).all()):
        return None
    lo = lo if fixed_min is None else torch.full_like(lo, fixed_min)
    _, _, enc_min, enc_max = _ENCODINGS(lo, hi, grid.bitwidth, int(grid.kind))
    return enc_min, enc_max


def _search(key, analyzers):
    """TfEnhancedEncodingAnalyzer.quantizer_range: the best candidates of all histograms."""
    grid = key[1]
    if not bool((_flat(analyzers, "min") <= _flat(analyzers, "max")).all()):
        return None
    rows = [torch.cat([a._buffers[n] for a in analyzers])
            for n in ("counts", "edges", "hist_range")]
    steps = grid.qmax - grid.qmin
    return tfe._SEARCH(*rows, steps, grid.symmetric, tfe._offsets(steps), tfe._sum_lanes())


_RANGES = {"held": _held, "encoding": _encoding, "search": _search}


def _store(members, analyzers, key, lo, hi) -> None:
    """Each quantizer's slice of `lo` / `hi` as its min / max; a tf_enhanced analyzer also keeps
    it as its held range."""
    los, his = split_ranges(members, lo, hi)
    if key[0] == "search":
        for a, low, high in zip(analyzers, los, his):
            a.__dict__["_held"] = (key[1], low.reshape(a.shape), high.reshape(a.shape))
    set_ranges(members, los, his)
    stop_calibrations(members)


def split_ranges(quantizers, lo, hi) -> tuple:
    """`lo` and `hi` (the encodings of `quantizers` laid end to end) cut into each quantizer's
    shape: ``([min per quantizer], [max per quantizer])``, views of `lo` and `hi`."""
    if all(q.shape == () for q in quantizers):
        return lo.unbind(), hi.unbind()
    sizes = [q._parameters["min"].numel() for q in quantizers]
    return ([t.view(q.shape) for t, q in zip(lo.split(sizes), quantizers)],
            [t.view(q.shape) for t, q in zip(hi.split(sizes), quantizers)])


def set_ranges(quantizers, los, his) -> None:
    """``q._set(lo, hi)`` for each quantizer (of a class that keeps QuantizeDequantize._set) and
    its `los` / `his` entry, in three grouped copies."""
    with torch.no_grad():
        torch._foreach_copy_([q._parameters["min"] for q in quantizers], list(los))
        torch._foreach_copy_([q._parameters["max"] for q in quantizers], list(his))
        torch._foreach_copy_([q._buffers["initialized"] for q in quantizers],
                             [_TRUE] * len(quantizers))
