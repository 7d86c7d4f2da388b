"""Fake (meta) registrations for the calibration ops of bindings/stats_cpu.cpp.

The ops are not differentiable (statistics and encodings), so they have no autograd formula;
callers pass detached data. Shapes and dtypes:

- ``minmax(x, axis=None) -> (min, max, nonfinite)``: float32, float32, int64, of shape ``[]``
  (per-tensor) or ``[x.shape[axis]]``; channels without a finite value get ``min=+inf, max=-inf``.
- ``minmax_fold(x, min!, max!, nonfinite!, axis=None) -> ()``: ``minmax`` folded into running
  statistics of that shape in place (min/max fold, counts add; CPU): one call per batch.
- ``histogram(x, range, bins, axis=None) -> (counts, min, max, nonfinite)``: int64
  ``[..., bins]`` of the finite values binned over ``range`` (float64 ``[..., 2]`` holding
  ``lo, hi``; ``hi <= lo`` means no range yet: no counts), and in the same pass what ``minmax``
  returns. Values outside the range land in the end bins: a caller whose min/max fall outside
  grows the range and bins again.
- ``histogram_grow(counts, range, min, max) -> (counts, range)``: the histogram re-binned onto a
  range that also covers ``[min, max]`` (whole old bins, no count lost).
- ``encodings_<analyzer>(..., bitwidth, grid, ...) -> (scale, zero_point, min, max)``: float32,
  int32, float32, float32 of the channel shape.
- ``tfe_histogram(x, lo, hi) -> counts``, ``tfe_first`` / ``tfe_merge(x, lo, hi, counts!,
  edges!, ranges!, limits(!)) -> done`` and ``tfe_search(counts, edges, ranges, steps,
  symmetric, offsets, lanes) -> (min, max)``: aimet-torch's tf_enhanced analyzer
  (bindings/aimet_tfe_cpu.cpp): float32 ``[R, 512]`` histograms of the rows of ``x``
  ``[R, n]``; the first batch, or a later one merged, into the histogram state in place (bool
  ``[R]``: the rows the kernel took); float32 ``[R]`` ranges of each histogram's best
  candidate.
"""

import torch

__all__ = []

_DATA = (torch.float32, torch.float16, torch.bfloat16)


def _channel_shape(x, axis):
    torch._check(x.dtype in _DATA, lambda: f"x must be float32, float16 or bfloat16, got {x.dtype}")
    if axis is None:
        return ()
    torch._check(-x.dim() <= axis < x.dim(),
                 lambda: f"axis {axis} is out of range for x with {x.dim()} dimensions")
    return (x.shape[axis],)


def _check_range(range_, shape):
    torch._check(range_.dtype == torch.float64, lambda: f"range must be float64, got {range_.dtype}")
    torch._check(tuple(range_.shape) == (*shape, 2),
                 lambda: f"range must have shape {(*shape, 2)}, got {tuple(range_.shape)}")


@torch.library.register_fake("qsim::minmax")
def _minmax_fake(x, axis=None):
    shape = _channel_shape(x, axis)
    return (x.new_empty(shape, dtype=torch.float32), x.new_empty(shape, dtype=torch.float32),
            x.new_empty(shape, dtype=torch.int64))


@torch.library.register_fake("qsim::minmax_fold")
def _minmax_fold_fake(x, min, max, nonfinite, axis=None):
    shape = _channel_shape(x, axis)
    for name, t in (("min", min), ("max", max), ("nonfinite", nonfinite)):
        torch._check(tuple(t.shape) == tuple(shape),
                     lambda: f"minmax_fold: {name} must have shape {list(shape)}, got {list(t.shape)}")


@torch.library.register_fake("qsim::histogram")
def _histogram_fake(x, range, bins, axis=None):
    shape = _channel_shape(x, axis)
    _check_range(range, shape)
    torch._check(1 <= bins <= 1 << 24, lambda: f"bins must be from 1 to 2^24, got {bins}")
    return (x.new_empty((*shape, bins), dtype=torch.int64), *_minmax_fake(x, axis))


def _new(t, dtype=None):
    """A new contiguous tensor of `t`'s shape, as the CPU kernels return, whatever `t`'s strides."""
    return torch.empty_like(t, dtype=dtype, memory_format=torch.contiguous_format)


@torch.library.register_fake("qsim::histogram_grow")
def _histogram_grow_fake(counts, range, min, max):
    torch._check(counts.dtype == torch.int64, lambda: f"counts must be int64, got {counts.dtype}")
    _check_range(range, min.shape)
    return _new(counts), _new(range)


def _encodings_fake(min, max):
    torch._check(min.dtype == torch.float32 and max.dtype == torch.float32,
                 lambda: f"min and max must be float32, got {min.dtype} and {max.dtype}")
    torch._check(min.shape == max.shape, lambda: f"min shape {min.shape} != max shape {max.shape}")
    return _new(min), _new(min, torch.int32), _new(min), _new(min)


@torch.library.register_fake("qsim::encodings_min_max")
def _encodings_min_max_fake(min, max, bitwidth, grid):
    return _encodings_fake(min, max)


@torch.library.register_fake("qsim::encodings_tf_enhanced")
def _encodings_tf_enhanced_fake(counts, range, min, max, bitwidth, grid, gamma=3.0,
                                asym_delta_candidates=17, sym_delta_candidates=101,
                                offset_candidates=21):
    return _encodings_fake(min, max)


@torch.library.register_fake("qsim::encodings_percentile")
def _encodings_percentile_fake(counts, range, min, max, bitwidth, grid, percentile):
    return _encodings_fake(min, max)


@torch.library.register_fake("qsim::encodings_mse")
def _encodings_mse_fake(counts, range, min, max, bitwidth, grid, num_candidates=100):
    return _encodings_fake(min, max)


@torch.library.register_fake("qsim::tfe_histogram")
def _tfe_histogram_fake(x, lo, hi):
    torch._check(x.dim() == 2, lambda: f"x must be 2-D, got {x.dim()} dimensions")
    return x.new_empty((x.shape[0], 512), dtype=torch.float32)


@torch.library.register_fake("qsim::tfe_search")
def _tfe_search_fake(counts, edges, ranges, steps, symmetric, offsets, lanes):
    return counts.new_empty(counts.shape[:1]), counts.new_empty(counts.shape[:1])


@torch.library.register_fake("qsim::tfe_merge")
def _tfe_merge_fake(x, lo, hi, counts, edges, ranges, limits):
    return x.new_empty(x.shape[:1], dtype=torch.bool)


@torch.library.register_fake("qsim::tfe_batch")
def _tfe_batch_fake(x, axis, min, max, nonfinite, counts, edges, ranges, limits, batches):
    rows = _channel_shape(x, axis)[0] if axis is not None else 1
    return (x.new_empty((rows,), dtype=torch.bool), x.new_empty((rows,), dtype=torch.float32),
            x.new_empty((rows,), dtype=torch.float32), x.new_empty((), dtype=torch.int64))


@torch.library.register_fake("qsim::tfe_first")
def _tfe_first_fake(x, lo, hi, counts, edges, ranges, limits):
    return x.new_empty(x.shape[:1], dtype=torch.bool)
