"""Calibration and QAT under ``torch.distributed``: statistics merged across ranks.

Calibration under data parallelism: every rank runs its own shard of the calibration data through
its own copy of the model; when calibration ends (``compute_encodings``), :func:`sync_statistics`
merges the analyzers' statistics across the ranks, so every rank computes the same encodings, those
of the union of the shards. It runs automatically when ``torch.distributed`` is initialized (or a
``process_group`` is given); ``process_group=False`` calibrates each rank on its own data.

How statistics merge (for all the analyzers of a model together: a size check, then one
collective per step below, whatever the number of quantizers):

1. ``all_reduce(MIN)`` of running minima, of minus the maxima, and of the histograms' range edges
   (low edge, minus high edge), in float64 (exact for the float32 minima and maxima).
2. Each rank re-bins its histogram onto the common range, the union of the ranks' ranges, with the
   rule of the C histogram growth (``qsim_histogram_move``): every old bin's count moves whole to
   the new bin holding the old bin's centre, exact when the new bins are whole multiples of the
   old ones on the same grid (as after ``torch.ops.qsim.histogram_grow``), so no count is lost.
3. ``all_reduce(SUM)`` of the int64 histogram counts and of the non-finite counters.

Bit-for-bit equality with one process calibrating on the union of the shards:

- :class:`~torchqsim.quantization.MinMaxEncodingAnalyzer`: always (min and max are exact).
- Histogram analyzers (SQNR / tf_enhanced, percentile, MSE): when the ranks' histogram ranges
  are aligned to the merged one (the same range, or a range it grows from by whole bins) and the
  single process's final histogram range equals the merged one. That holds whenever every rank's
  first batch already spans the union's min/max, e.g. for weight (parameter) quantizers, which see
  the same weights on every rank. Otherwise a count can land one (merged) bin away from where the
  single process bins its values, so the encodings differ slightly; every rank still gets the same
  encodings.

QAT: a quantizer's ``min``/``max`` are ``nn.Parameter``\\ s, so ``DistributedDataParallel``
all-reduces their gradients like the weights' and the ranks stay in sync. The analyzers' statistics
are buffers, which DDP would broadcast from rank 0 at every forward (overwriting the other ranks'
statistics when calibrating through the DDP module, and moving whole histograms every training
step): call :func:`ignore_statistics_in_ddp` on the model before wrapping it.

Every rank must make the same calls in the same order (collectives); a rank that fails inside the
calibration block leaves the others waiting for it, as with any collective.

Example (2 processes on one machine; with NCCL on GPUs the same code runs unchanged)::

    import torch.distributed as dist
    import torch.multiprocessing as mp
    from torchqsim.distributed import ignore_statistics_in_ddp
    from torchqsim.quantization import compute_encodings

    def worker(rank, world_size):
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29500",
                                rank=rank, world_size=world_size)
        model = build_model_with_quantizers()
        with compute_encodings(model):             # statistics all-reduced on exit
            for x in calibration_batches[rank::world_size]:
                model(x)
        ignore_statistics_in_ddp(model)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        ...                                        # QAT: train `ddp` as usual
        dist.destroy_process_group()

    mp.spawn(worker, args=(2,), nprocs=2)
"""

from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .quantization.tf_enhanced import TfEnhancedEncodingAnalyzer

__all__ = ["sync_statistics", "ignore_statistics_in_ddp", "resolve_process_group"]


def resolve_process_group(process_group=None):
    """The process group statistics are merged over, or None for no merging.

    Args:
        process_group: None: the default group when ``torch.distributed`` is initialized with
            more than one rank, else no merging. False: no merging. A ``ProcessGroup``: that group.

    Raises:
        TypeError: `process_group` is something else (True, a string, ...).

    Example::

        >>> resolve_process_group(False) is None
        True
    """
    if process_group is False:
        return None
    if process_group is None:
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return None
        return dist.group.WORLD
    if not (dist.is_available() and isinstance(process_group, dist.ProcessGroup)):
        raise TypeError(f"process_group must be None, False or a torch.distributed.ProcessGroup, "
                        f"got {process_group!r}")
    return process_group


def _rebin(counts: Tensor, range_: Tensor, target: Tensor) -> Tensor:
    """`counts` over `range_` (``[..., 2]`` float64) re-binned onto `target`, channel by channel,
    by the rule of ``qsim_histogram_move``: each old bin's count moves whole to the new bin holding
    the old bin's centre (end bins take what falls outside), with integer arithmetic where the new
    bins are whole multiples of the old ones on the same grid. Channels without a range (``hi <=
    lo``) in either give zeros."""
    bins = counts.shape[-1]
    lo, hi = range_[..., :1], range_[..., 1:]
    tlo, thi = target[..., :1], target[..., 1:]
    valid = (hi > lo) & (thi > tlo)
    old_w = torch.where(valid, (hi - lo) / bins, 1.0)
    factor = torch.where(valid, (thi - tlo) / bins, 1.0) / old_w
    shift = torch.where(valid, lo - tlo, 0.0) / old_w
    fr, sr = factor.round(), shift.round()
    aligned = (fr >= 1) & ((factor - fr).abs() <= 1e-9 * fr) & ((shift - sr).abs() <= 1e-2)
    i = torch.arange(bins, dtype=torch.float64, device=counts.device)
    t = torch.where(aligned, torch.floor((i + sr) / fr), torch.floor((i + 0.5 + shift) / factor))
    index = t.clamp(0, bins - 1).to(torch.int64).expand(counts.shape)
    out = torch.zeros_like(counts).scatter_add_(-1, index, counts)
    return torch.where(valid, out, torch.zeros_like(out))


@torch.no_grad()
def sync_statistics(analyzers: Iterable[nn.Module], process_group=None) -> None:
    """Merges the statistics of `analyzers` across the ranks of `process_group`, in place.

    Afterwards every rank holds the same statistics: the running min/max, non-finite counts and
    histograms of all the ranks' data (histograms on the union of the ranks' ranges; see the
    module docstring for when this equals single-process calibration bit for bit). Call it once per
    calibration, on every rank, with the analyzers in the same order: the counts are summed, so a
    second call would count every rank's data again. ``compute_encodings`` calls it for you.

    Args:
        analyzers: :class:`~torchqsim.quantization.EncodingAnalyzer` modules, the same list (order,
            types, shapes, bins) on every rank.
        process_group: see :func:`resolve_process_group`; with no group this does nothing.

    Raises:
        ValueError: the ranks' analyzers do not match (different statistics sizes).

    Example::

        >>> from torchqsim.quantization import SqnrEncodingAnalyzer
        >>> a = SqnrEncodingAnalyzer()
        >>> a.update_stats(torch.randn(100))    # this rank's shard
        >>> sync_statistics([a])                # a no-op unless torch.distributed is initialized
    """
    group = resolve_process_group(process_group)
    if group is None:  # (before the statistics are gathered: most calls)
        return
    analyzers = list(analyzers)
    stats = [a.stats() for a in analyzers]
    if not stats:
        return
    capped = [type(a).__name__ for a in analyzers if isinstance(a, TfEnhancedEncodingAnalyzer)]
    if capped:
        raise ValueError(f"sync_statistics: {capped[0]} (AIMET's capped tf_enhanced histogram) "
                         f"cannot be merged across ranks; calibrate with "
                         f"QuantizationSimModel(..., tf_enhanced_histogram='growing')")
    device = stats[0]["min"].device
    sign = torch.tensor([1.0, -1.0], dtype=torch.float64, device=device)
    # 1. minima, minus maxima and range edges (no range yet: +inf, +inf): one MIN, in float64
    bounds = []
    for s in stats:
        bounds += [s["min"].double().flatten(), -s["max"].double().flatten()]
        if "range" in s:
            unset = (s["range"][..., 1:] <= s["range"][..., :1])
            bounds.append(torch.where(unset, torch.inf, s["range"] * sign).flatten())
    bounds = torch.cat(bounds)
    totals = sum(s["nonfinite"].numel() + (s["counts"].numel() if "counts" in s else 0)
                 for s in stats)
    _check_same_sizes(bounds.numel(), totals, group, device)
    dist.all_reduce(bounds, dist.ReduceOp.MIN, group=group)
    # 2. re-bin onto the common range; 3. non-finite counts and histogram counts: one SUM
    at, counts = 0, []
    for s in stats:
        n = s["min"].numel()
        s["min"].copy_(bounds[at:at + n].view_as(s["min"]))
        s["max"].copy_(-bounds[at + n:at + 2 * n].view_as(s["max"]))
        at += 2 * n
        counts.append(s["nonfinite"].flatten())
        if "range" in s:
            edges = bounds[at:at + 2 * n].view_as(s["range"]) * sign
            at += 2 * n
            target = torch.where(edges[..., 1:] > edges[..., :1], edges, 0.0)
            s["counts"].copy_(_rebin(s["counts"], s["range"], target))
            s["range"].copy_(target)
            counts.append(s["counts"].flatten())
    counts = torch.cat(counts)
    dist.all_reduce(counts, dist.ReduceOp.SUM, group=group)
    at = 0
    for s in stats:
        for name in ("nonfinite", "counts"):
            if name in s:
                n = s[name].numel()
                s[name].copy_(counts[at:at + n].view_as(s[name]))
                at += n


def _check_same_sizes(bounds: int, counts: int, group, device) -> None:
    """Raises the same ValueError on every rank when the ranks' statistics differ in size (a
    collective on tensors of different sizes would fail unclearly or hang)."""
    sizes = torch.tensor([bounds, -bounds, counts, -counts], dtype=torch.int64, device=device)
    dist.all_reduce(sizes, dist.ReduceOp.MIN, group=group)
    if int(sizes[0]) != -int(sizes[1]) or int(sizes[2]) != -int(sizes[3]):
        raise ValueError(f"sync_statistics: the ranks' analyzers differ (this rank has {bounds} "
                         f"min/max/range values and {counts} counts; across ranks from "
                         f"{int(sizes[0])} to {-int(sizes[1])} and from {int(sizes[2])} to "
                         f"{-int(sizes[3])}): every rank must calibrate the same model")


def ignore_statistics_in_ddp(module: nn.Module) -> nn.Module:
    """Marks the analyzers' statistics buffers of `module` for ``DistributedDataParallel`` to
    leave alone (no broadcast from rank 0 at construction or at each forward).

    Call it before wrapping `module` in DDP. The quantizers' ``min``/``max`` parameters and
    ``initialized`` buffers stay synchronised by DDP as usual. Other names already marked (by
    ``DistributedDataParallel._set_params_and_buffers_to_ignore_for_model``) are kept.

    Returns:
        `module`.

    Example::

        >>> from torchqsim.quantization import QuantizeDequantize
        >>> model = nn.Sequential(nn.Linear(4, 4), QuantizeDequantize((), 8, symmetric=False))
        >>> sorted(ignore_statistics_in_ddp(model)._ddp_params_and_buffers_to_ignore)[:2]
        ['1.encoding_analyzer.max', '1.encoding_analyzer.min']
    """
    from .quantization import EncodingAnalyzer  # here: quantization imports this module

    names = set(getattr(module, "_ddp_params_and_buffers_to_ignore", ()))
    for prefix, m in module.named_modules():
        if isinstance(m, EncodingAnalyzer):
            names.update(f"{prefix}.{n}" if prefix else n
                         for n, _ in m.named_buffers(recurse=False))
    nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
        module, sorted(names))
    return module
