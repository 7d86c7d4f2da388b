"""CUDA twins of the calibration statistics tests: minmax and histogram (per-tensor and
per-channel, with NaN, +-Inf and signed zeros) on CUDA equal the CPU kernels' results exactly:
min, max, the non-finite counts and every histogram count. The CPU kernels are the oracle (checked
against the C reference and pure torch elsewhere). Needs a GPU and a CUDA build of torch; skipped
otherwise. The qdq ops' CUDA tests are in tests/python/ops/test_cuda.py.
"""

import math

import pytest
import torch

import torchqsim  # noqa: F401  (registers the qsim ops)
from asserts import assert_same
from qdq_cases import with_specials

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU and a CUDA build of torch")
DTYPES = (torch.float32, torch.float16, torch.bfloat16)


# (shape, axis): per-tensor across many blocks, channels on the first axis (contiguous rows), in
# the middle and last (strided), and a channel longer than one kernel item.
STATS_CASES = [((8, 64, 33, 17), None), ((8, 64, 33, 17), 0), ((8, 64, 33, 17), 1),
               ((8, 64, 33, 17), -1), ((3, 70000), 0), ((5, 7), None)]


def stats_id(case):
    shape, axis = case
    return "x".join(map(str, shape)) + f"-axis{axis}"


def stats_data(shape, seed):
    """Normal data with NaN, +-Inf, signed zeros and subnormals spread through it."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 3
    return with_specials(x)


def assert_same_stats(got, want, what):
    """Exact equality of (counts?, min, max, nonfinite) tuples: floats bit for bit, ints equal."""
    for i, (g, w) in enumerate(zip(got, want)):
        g = g.cpu()
        if w.is_floating_point():
            assert_same(g, w, f"{what} output {i}")
        else:
            assert g.dtype == w.dtype and torch.equal(g, w), f"{what} output {i}: {g} != {w}"


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", STATS_CASES, ids=stats_id)
def test_minmax_matches_cpu_exactly(case, dtype):
    shape, axis = case
    x = stats_data(shape, seed=20).to(dtype)
    want = torch.ops.qsim.minmax(x, axis)
    assert want[2].sum() > 0, "the data has no non-finite values to count"
    assert_same_stats(torch.ops.qsim.minmax(x.cuda(), axis), want, f"minmax {stats_id(case)}")


@needs_cuda
def test_minmax_zeros_and_all_nonfinite_channels():
    """A channel of -0.0 only gives +0.0 for both, as on the CPU; a channel without a finite
    value keeps +inf / -inf and counts every value."""
    x = torch.tensor([[-0.0, -0.0, -0.0], [math.nan, math.inf, -math.inf], [0.0, -0.0, 1.5]])
    want = torch.ops.qsim.minmax(x, 0)
    assert_same(want[0], torch.tensor([0.0, math.inf, -0.0]) + 0.0, "the CPU oracle")
    assert_same_stats(torch.ops.qsim.minmax(x.cuda(), 0), want, "minmax specials")


def hist_range(lo, hi, channels=None):
    """A [2] (per-tensor) or [C, 2] range: channel c spans [lo, hi] shifted by c / 2."""
    if channels is None:
        return torch.tensor([lo, hi], dtype=torch.float64)
    shift = torch.arange(channels, dtype=torch.float64)[:, None] / 2
    return torch.tensor([lo, hi], dtype=torch.float64) + shift


@needs_cuda
@pytest.mark.parametrize("bins", [1, 7, 512, 10000])  # 10000: counted without shared memory
@pytest.mark.parametrize("case", STATS_CASES, ids=stats_id)
def test_histogram_matches_cpu_exactly(case, bins):
    """The range covers only part of the data, so both end bins collect the values outside."""
    shape, axis = case
    x = stats_data(shape, seed=21)
    channels = None if axis is None else shape[axis]
    rng = hist_range(-2.0, 1.75, channels)
    want = torch.ops.qsim.histogram(x, rng, bins, axis)
    assert want[0].sum() > 0 and want[3].sum() > 0
    got = torch.ops.qsim.histogram(x.cuda(), rng.cuda(), bins, axis)
    assert got[0].device.type == "cuda"
    assert_same_stats(got, want, f"histogram {stats_id(case)} bins={bins}")


@needs_cuda
@pytest.mark.parametrize("axis", [None, 1])
def test_histogram_without_range_gives_minmax_only(axis):
    """A channel with hi <= lo (no range yet) gets min/max and no counts, on both devices."""
    x = stats_data((6, 4, 50), seed=22)
    rng = torch.zeros(2, dtype=torch.float64) if axis is None else hist_range(-1.0, 1.0, 4)
    if axis is not None:
        rng[2] = 0.0  # channel 2 has no range
    want = torch.ops.qsim.histogram(x, rng, 64, axis)
    assert_same_stats(torch.ops.qsim.histogram(x.cuda(), rng.cuda(), 64, axis), want,
                      f"histogram axis={axis}")


@needs_cuda
def test_histogram_bin_edges_match_cpu():
    """Values exactly on and next to bin edges (where the fp32 bin index formula rounds)."""
    edges = torch.linspace(-1.0, 1.0, 129, dtype=torch.float64).float()
    x = torch.cat([edges, edges.nextafter(torch.tensor(math.inf)),
                   edges.nextafter(torch.tensor(-math.inf))])
    rng = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    want = torch.ops.qsim.histogram(x, rng, 128)
    assert_same_stats(torch.ops.qsim.histogram(x.cuda(), rng.cuda(), 128), want, "edges")


@needs_cuda
def test_histogram_range_on_another_device_is_rejected():
    with pytest.raises(ValueError, match="histogram: range must be on x's device"):
        torch.ops.qsim.histogram(torch.randn(10, device="cuda"),
                                 torch.tensor([0.0, 1.0], dtype=torch.float64), 8)
    with pytest.raises(ValueError, match="histogram: range must hold finite numbers"):
        torch.ops.qsim.histogram(torch.randn(10, device="cuda"),
                                 torch.tensor([0.0, math.inf], dtype=torch.float64,
                                              device="cuda"), 8)


@needs_cuda
def test_stats_of_empty_tensors():
    x = torch.empty(0, 3, device="cuda")
    for got, want in ((torch.ops.qsim.minmax(x, 1), torch.ops.qsim.minmax(x.cpu(), 1)),
                      (torch.ops.qsim.histogram(x, hist_range(0.0, 1.0, 3).cuda(), 4, 1),
                       torch.ops.qsim.histogram(x.cpu(), hist_range(0.0, 1.0, 3), 4, 1))):
        assert_same_stats(got, want, "empty")
