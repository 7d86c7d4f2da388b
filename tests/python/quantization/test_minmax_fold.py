"""`torch.ops.qsim.minmax_fold`: `minmax` folded into running statistics in place.

Oracle: a fresh `minmax` of each batch folded into the statistics with torch ops (what the
analyzers did before the op existed), bit for bit (float32 as int32 bits, so that the sign of a
zero counts), and torch reductions over the finite values of all batches together.
"""

import math

import pytest
import torch
from torch.library import opcheck

import torchqsim  # noqa: F401  (registers the ops)

ops = torch.ops.qsim


def _stats(shape):
    return (torch.full(shape, math.inf), torch.full(shape, -math.inf),
            torch.zeros(shape, dtype=torch.int64))


def _torch_fold(stats, x, axis):
    lo, hi, bad = ops.minmax(x, axis)
    torch.minimum(stats[0], lo, out=stats[0])
    torch.maximum(stats[1], hi, out=stats[1])
    stats[2].add_(bad)


def _bits(t):
    return t.view(torch.int32) if t.dtype == torch.float32 else t


def _batches(seed, shape, dtype):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(4):
        x = torch.randn(shape, generator=gen) * (i + 1)
        flat = x.view(-1)
        picks = torch.randint(0, flat.numel(), (6,), generator=gen)
        flat[picks[0]], flat[picks[1]], flat[picks[2]] = math.nan, math.inf, -math.inf
        flat[picks[3]], flat[picks[4]] = -0.0, 0.0
        out.append(x.to(dtype))
    return out


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape,axis", [((7,), None), ((3, 1000), None), ((300_001,), None),
                                         ((4, 33, 5), 1), ((6, 17), 0), ((5, 40_000), -1),
                                         ((2, 70_000, 3), 1)])
def test_fold_equals_minmax_then_torch_fold(shape, axis, dtype, threads):
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        batches = _batches(sum(shape), shape, dtype)
        sh = () if axis is None else (shape[axis],)
        ours, ref = _stats(sh), _stats(sh)
        for x in batches:
            ops.minmax_fold(x, *ours, axis)
            _torch_fold(ref, x, axis)
            for name, a, b in zip(("min", "max", "nonfinite"), ours, ref):
                diff = (_bits(a) != _bits(b)).flatten().nonzero()
                assert diff.numel() == 0, \
                    f"{name}[{int(diff[0])}]: {a.flatten()[diff[0]]} vs {b.flatten()[diff[0]]}"
    finally:
        torch.set_num_threads(prev)
    whole = torch.cat([x.float().movedim(axis or 0, 0).reshape(sh[0] if sh else 1, -1)
                       for x in batches], dim=1)
    fin = torch.isfinite(whole)
    assert torch.equal(ours[0].reshape(-1), torch.where(fin, whole, math.inf).amin(1))
    assert torch.equal(ours[1].reshape(-1), torch.where(fin, whole, -math.inf).amax(1))
    assert torch.equal(ours[2].reshape(-1), (~fin).sum(1))


def test_known_answer_and_zeros_fold_to_plus_zero():
    stats = _stats(())
    ops.minmax_fold(torch.tensor([-0.0, 2.0, math.nan]), *stats)
    ops.minmax_fold(torch.tensor([-0.0, -0.0]), *stats)
    assert [float(stats[0]), float(stats[1]), int(stats[2])] == [0.0, 2.0, 1]
    assert math.copysign(1.0, float(stats[0])) == 1.0
    ops.minmax_fold(torch.tensor([-5.0, 7.5]), *stats)
    assert [float(stats[0]), float(stats[1]), int(stats[2])] == [-5.0, 7.5, 1]


def test_a_channel_without_finite_values_keeps_its_start():
    stats = _stats((2,))
    ops.minmax_fold(torch.tensor([[1.0, math.nan], [3.0, math.inf]]), *stats, 1)
    assert stats[0].tolist() == [1.0, math.inf] and stats[1].tolist() == [3.0, -math.inf]
    assert stats[2].tolist() == [0, 2]


@pytest.mark.parametrize("bad,error,message", [
    (lambda s: (s[0].double(), s[1], s[2]), TypeError, "min must be Float"),
    (lambda s: (s[0], s[1], s[2].int()), TypeError, "nonfinite must be Long"),
    (lambda s: (s[0], torch.full((4,), -math.inf), s[2]), ValueError, "max must have shape [3]"),
    (lambda s: (torch.full((3, 2), math.inf)[:, 0], s[1], s[2]), ValueError,
     "min must be contiguous"),
])
def test_bad_statistics_are_named(bad, error, message):
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
        ops.minmax_fold(torch.ones(3, 5), *bad(_stats((3,))), 0)


def test_bad_data_is_named():
    with pytest.raises(TypeError, match="minmax_fold: x must be float32"):
        ops.minmax_fold(torch.ones(3, dtype=torch.int32), *_stats(()))
    with pytest.raises(IndexError, match="minmax_fold: axis 2 is out of range"):
        ops.minmax_fold(torch.ones(3, 4), *_stats((3,)), 2)


@pytest.mark.parametrize("shape,axis", [((5, 6), None), ((5, 6), 1), ((2, 3, 4), 0)])
def test_opcheck(shape, axis):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    sh = () if axis is None else (shape[axis],)
    result = opcheck(ops.minmax_fold, (x, *_stats(sh), axis))  # raises on a failed check
    assert set(result.values()) == {"SUCCESS"}, result
