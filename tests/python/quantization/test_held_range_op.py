"""``qsim::held_range`` (C: ``qsim_held_range_f32``): the range aimet-torch holds after min/max
calibration on an asymmetric grid, against its float32 torch expressions
(``encoding_analyzer.aimet_held_range``, the code the analyzer ran before) bit for bit, signed
zeros, infinities, NaN and the ``n * eps`` widening of narrow ranges included; the first
encoding without data; the analyzer's quantizer range through it; errors naming the argument.
"""

import pytest
import torch
from torch.library import opcheck

from torchqsim.quantization import GridKind, MinMaxEncodingAnalyzer, QuantizeDequantize
from torchqsim.quantization.encoding_analyzer import aimet_held_range
from torchqsim.quantization.grid import Grid

_BIG = torch.finfo(torch.float32).max
_EPS = torch.finfo(torch.float32).eps


def _stats(seed, n=4000):
    """(min, max) statistics: random spans over many magnitudes, and the edge cases."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.exp2(torch.randint(-40, 40, (n,), generator=g).float())
    lo = -torch.rand(n, generator=g) * scale
    hi = torch.rand(n, generator=g) * scale
    lo[::7] = hi[::7] * 0.999999                      # narrow, positive
    hi[1::11] = lo[1::11] + _EPS * 3                   # narrow, straddling nothing
    special = torch.tensor([0.0, -0.0, _BIG, -_BIG, float("inf"), -float("inf"), 1e-45, -1e-45,
                            _EPS, 255 * _EPS, float("nan")])
    pairs = torch.cartesian_prod(special, special)
    return torch.cat([lo, pairs[:, 0]]), torch.cat([hi, pairs[:, 1]])


def _bits_equal(got, want, what):
    nan = want.isnan()
    assert torch.equal(got.isnan(), nan), what
    g, w = got[~nan].view(torch.int32), want[~nan].view(torch.int32)
    bad = (g != w).nonzero().flatten()
    assert bad.numel() == 0, f"{what}: first difference at {int(bad[0])}: " \
                             f"{got[~nan][bad[0]].item()!r} != {want[~nan][bad[0]].item()!r}"


@pytest.mark.parametrize("steps", [1, 15, 255, 65535])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_held_range_is_aimets_expressions_bit_for_bit(steps, seed):
    lo, hi = _stats(seed)
    got_lo, got_hi, _ = torch.ops.qsim.held_range(lo, hi, steps)
    want_lo, want_hi = aimet_held_range(lo, hi, steps)
    _bits_equal(got_lo, want_lo, "lo")
    _bits_equal(got_hi, want_hi, "hi")


@pytest.mark.parametrize("fixed_min", [0.0, -0.0, -1.5, 2.0, -3e38])
def test_a_fixed_min_replaces_the_observed_one(fixed_min):
    lo, hi = _stats(2, n=500)
    got_lo, got_hi, _ = torch.ops.qsim.held_range(lo, hi, 255, fixed_min)
    want_lo, want_hi = aimet_held_range(torch.full_like(lo, fixed_min), hi, 255)
    _bits_equal(got_lo, want_lo, "lo")
    _bits_equal(got_hi, want_hi, "hi")


def test_known_answers_and_the_first_encoding_without_data():
    lo, hi, unseen = torch.ops.qsim.held_range(torch.tensor([0.5, -1.0, 0.0, float("inf")]),
                                              torch.tensor([2.0, -0.5, 0.0, -float("inf")]), 255)
    assert lo[:3].tolist() == [0.0, -1.0, 0.0] and hi[:3].tolist() == [2.0, 0.0, 255 * _EPS]
    assert int(unseen) == 3                           # min > max: never saw a finite value
    assert int(torch.ops.qsim.held_range(lo[:3], hi[:3], 255)[2]) == -1
    nan_seen = torch.ops.qsim.held_range(torch.tensor([1.0, float("nan")]), torch.ones(2), 255)[2]
    assert int(nan_seen) == 1


@pytest.mark.parametrize("shape", [(), (6, 1)])
def test_the_quantizer_range_is_the_held_range(shape):
    a = MinMaxEncodingAnalyzer(shape)
    x = torch.randn(6, 40) * torch.linspace(1e-9, 3.0, 6)[:, None]
    a.update_stats(x)
    grid = Grid.of(8, GridKind.ASYMMETRIC)
    got = a.quantizer_range(grid)
    want = aimet_held_range(a.min, a.max, 255)
    for g, w in zip(got, want):
        assert g.shape == shape and torch.equal(g.view(torch.int32), w.reshape(shape).view(torch.int32))
    assert all(torch.equal(g, w) for g, w in zip(a.held_range(grid), got))


def test_no_data_is_still_named_after_the_encoding():
    q = QuantizeDequantize((3, 1), 8, symmetric=False)
    with pytest.raises(RuntimeError, match=r"saw no data \(encoding 0 of 3\)"):
        with q.compute_encodings():
            pass
    a = MinMaxEncodingAnalyzer((2, 1))
    a.update_stats(torch.tensor([[1.0, 2.0], [float("nan"), float("inf")]]))
    with pytest.raises(RuntimeError, match=r"only non-finite values \(encoding 1 of 2\)"):
        a.quantizer_range(Grid.of(8, GridKind.ASYMMETRIC))


@pytest.mark.parametrize("call, error, match", [
    (lambda: torch.ops.qsim.held_range(torch.zeros(2), torch.ones(2), 0), ValueError, "steps"),
    (lambda: torch.ops.qsim.held_range(torch.zeros(2).double(), torch.ones(2), 255), TypeError,
     "min and max must be float32"),
    (lambda: torch.ops.qsim.held_range(torch.zeros(2), torch.ones(3), 255), ValueError, "max shape"),
    (lambda: torch.ops.qsim.held_range(torch.zeros(2), torch.ones(2), 255, -1e39), ValueError,
     "fixed_min must be a finite float32"),
    (lambda: MinMaxEncodingAnalyzer(fixed_min=float("nan")), ValueError,
     "fixed_min must be a finite float32"),
])
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("fixed_min", [None, -0.25])
def test_opcheck(fixed_min):
    opcheck(torch.ops.qsim.held_range.default, (-torch.rand(5), torch.rand(5), 255, fixed_min))
