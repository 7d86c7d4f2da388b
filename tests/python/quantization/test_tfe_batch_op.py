"""``qsim::tfe_batch``: one batch of the AIMET tf_enhanced analyzer in one op
(bindings/aimet_tfe_batch.cpp), against the op sequence the analyzer ran before (the oracle,
written out below): ``qsim::minmax`` of the batch, folded into the running statistics with
``torch.minimum`` / ``torch.maximum`` / ``add_``, ``qsim::tfe_first`` on the first batch and
``qsim::tfe_merge`` on later ones (each tested against torch's histc and merge in
test_tf_enhanced_kernels.py), and the batch count. Every statistic and histogram buffer must be
the same bits after each batch, whatever the layout, dtype, growth, non-finite values and the
rows the kernels refuse (which both leave to the torch ops).
"""

import pytest
import torch
from torch.library import opcheck

from torchqsim.quantization import tf_enhanced as te

_STATE = ("min", "max", "nonfinite", "counts", "edges", "hist_range", "limits", "batches")


def _former_update(a, view, axis):
    """The analyzer's former `_update` (before the fused op), on analyzer `a`."""
    lows, highs, bad = torch.ops.qsim.minmax(view, axis)
    torch.minimum(a.min, lows, out=a.min)
    torch.maximum(a.max, highs, out=a.max)
    a.nonfinite.add_(bad)
    rows = te._rows(view, axis)
    first = int(a.batches) == 0
    op = torch.ops.qsim.tfe_first if first else torch.ops.qsim.tfe_merge
    done = op(rows, lows.reshape(-1), highs.reshape(-1), a.counts, a.edges, a.hist_range, a.limits)
    if not bool(done.all()):
        a._by_torch(rows, lows.reshape(-1), highs.reshape(-1), done, first)
    a.batches.add_(1)


def _batches(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    x.view(-1)[::97] = 30.0                          # outliers
    x.view(-1)[5], x.view(-1)[11] = float("inf"), float("nan")
    out = [x, 0.5 * x, 2.5 * x + 1, 300 * x, -x]     # inside, grown, beyond the limits, mirrored
    return [b.to(dtype) for b in out]


def _assert_same(a, ref, where):
    for name in _STATE:
        got, want = getattr(a, name).reshape(-1), getattr(ref, name).reshape(-1)  # (0-dim too)
        if got.dtype == torch.float32:
            got, want = got.view(torch.int32), want.view(torch.int32)
        bad = (got != want).nonzero()
        assert bad.numel() == 0, f"{where}: {name} differs first at flat index " \
                                 f"{bad[0].item()}: {got[bad[0]]} != {want[bad[0]]}"


@pytest.mark.parametrize("shape, enc, dtype", [
    ((4, 33, 7), (), torch.float32),                 # per tensor
    ((5, 40), (5, 1), torch.float32),                # per channel, axis 0
    ((6, 3, 17), (3, 1), torch.float16),             # per channel, a middle axis, half data
    ((2, 9, 8), (8,), torch.bfloat16),               # per channel, the last axis
    ((300_001,), (), torch.float32),                 # a long row: counted in chunks over threads
])
@pytest.mark.parametrize("threads", [1, 2])  # a long row counted whole (1) or in chunks (2)
def test_the_fused_batch_is_the_former_op_sequence_bit_for_bit(shape, enc, dtype, threads):
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, ref = te.TfEnhancedEncodingAnalyzer(enc), te.TfEnhancedEncodingAnalyzer(enc)
        for k, b in enumerate(_batches(shape, dtype, seed=len(shape))):
            a.update_stats(b)
            _former_update(ref, *ref._view(b))
            _assert_same(a, ref, f"batch {k}")
    finally:
        torch.set_num_threads(prev)


@pytest.mark.parametrize("start", [(-0.0, 0.0), (0.0, -0.0), (float("nan"), float("nan")),
                                   (float("inf"), float("-inf")), (-5.0, 5.0)])
@pytest.mark.parametrize("enc", [(), (3, 1)])
def test_running_statistics_fold_as_torch_minimum_and_maximum(start, enc):
    """Signed zeros, NaN and the empty range as running statistics (a loaded state), folded with
    a batch whose range is +0 (the kernels' zero) or spans it."""
    a, ref = te.TfEnhancedEncodingAnalyzer(enc), te.TfEnhancedEncodingAnalyzer(enc)
    for an in (a, ref):
        an.min.fill_(start[0]), an.max.fill_(start[1])
    for k, b in enumerate([torch.zeros(3, 4), -torch.zeros(3, 4), torch.randn(3, 4)]):
        a.update_stats(b)
        _former_update(ref, *ref._view(b))
        _assert_same(a, ref, f"batch {k}")


def test_rows_the_kernels_refuse_go_to_the_torch_ops_as_before():
    """A channel without finite values on the first batch (tfe_first refuses it: the whole first
    batch goes to the torch ops, which raise as torch.histc does) and a constant row of 1e10 on
    later ones (a point range too large to widen in float32: tfe_merge refuses it)."""
    x = torch.randn(3, 50, generator=torch.Generator().manual_seed(3))
    x[1] = 1e10
    a, ref = te.TfEnhancedEncodingAnalyzer((3, 1)), te.TfEnhancedEncodingAnalyzer((3, 1))
    for k, b in enumerate((x, x, 2 * x, x + 1)):
        a.update_stats(b)
        _former_update(ref, *ref._view(b))
        _assert_same(a, ref, f"batch {k}")
    nan_row = torch.randn(2, 8)
    nan_row[0] = float("nan")
    a = te.TfEnhancedEncodingAnalyzer((2, 1))
    with pytest.raises(RuntimeError):
        a.update_stats(nan_row)
    assert int(a.batches) == 0                        # a batch that raised is not counted


@pytest.mark.parametrize("enc, shape", [((), (4, 33, 7)), ((3, 1), (3, 50))])
def test_a_reset_analyzer_continues_as_a_fresh_one_bit_for_bit(enc, shape):
    """reset_stats leaves the histogram buffers as they were (the first batch writes them whole):
    after it, every buffer must be a fresh analyzer's bits batch by batch, also when the first
    batch's rows go to the torch ops (a constant row of 1e10: a point range too large to widen),
    and stats() must show the histograms zeroed until a batch comes."""
    g = torch.Generator().manual_seed(7)
    before = [300 * torch.randn(shape, generator=g) + 5, torch.randn(shape, generator=g)]
    refused = torch.randn(shape, generator=g)
    refused.view(refused.shape[0], -1)[1] = 1e10
    for after in ([torch.randn(shape, generator=g), 4 * torch.randn(shape, generator=g)],
                  [refused, 0.5 * refused]):
        a = te.TfEnhancedEncodingAnalyzer(enc)
        for b in before:
            a.update_stats(b)
        a.reset_stats()
        assert int(a.batches) == 0 and bool((a.min == float("inf")).all())
        stats = a.stats()
        for name in ("counts", "edges", "hist_range", "limits"):
            assert not bool(stats[name].any()), name
        fresh = te.TfEnhancedEncodingAnalyzer(enc)
        for k, b in enumerate(after):
            a.update_stats(b)
            fresh.update_stats(b)
            _assert_same(a, fresh, f"batch {k} after the reset")
        assert float(a.stats()["counts"].sum()) == float(fresh.counts.sum()) > 0


def test_returns_the_batch_range_and_what_was_refused():
    a = te.TfEnhancedEncodingAnalyzer((2, 1))
    x = torch.tensor([[1.0, -2.0, float("nan")], [4.0, 0.5, 3.0]])
    s = {n: getattr(a, n) for n in _STATE}
    done, lows, highs, refused = torch.ops.qsim.tfe_batch(x, 0, *s.values())
    assert done.tolist() == [True, True] and int(refused) == 0 and int(a.batches) == 1
    assert lows.tolist() == [-2.0, 0.5] and highs.tolist() == [1.0, 4.0]
    assert a.nonfinite.tolist() == [1, 0] and a.min.tolist() == [-2.0, 0.5]


def _state(rows):
    a = te.TfEnhancedEncodingAnalyzer((rows, 1) if rows > 1 else ())
    return [getattr(a, n).clone() for n in _STATE]


@pytest.mark.parametrize("call, error, match", [
    (lambda s: torch.ops.qsim.tfe_batch(torch.randn(3, 4), 0, *s[:7], s[7].float()), ValueError,
     "batches must be a one-element int64"),
    (lambda s: torch.ops.qsim.tfe_batch(torch.randn(4, 4), 0, *s), ValueError,
     "min, max and nonfinite must have the statistics' shape"),
    (lambda s: torch.ops.qsim.tfe_batch(torch.randn(3, 4).double(), 0, *s), TypeError, "float32"),
])
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call(_state(3))


@pytest.mark.parametrize("rows, axis", [(1, None), (3, 0)])
def test_opcheck(rows, axis):
    x = torch.randn(3, 10)
    first = _state(rows)
    opcheck(torch.ops.qsim.tfe_batch.default, (x, axis, *first))
    later = _state(rows)
    torch.ops.qsim.tfe_batch(x, axis, *later)
    opcheck(torch.ops.qsim.tfe_batch.default, (2 * x, axis, *later))
