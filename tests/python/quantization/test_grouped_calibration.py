"""start_calibrations / finish_calibrations against each quantizer's own _start_calibration /
_finish_calibration: the same encodings bit for bit, the same errors, the same state."""

import copy

import pytest
import torch

from asserts import assert_same
from torchqsim.quantization import (MinMaxEncodingAnalyzer, PercentileEncodingAnalyzer,
                                    QuantizeDequantize, TfEnhancedEncodingAnalyzer)
from torchqsim.quantization.grouped_calibration import finish_calibrations, start_calibrations
from torchqsim.quantization.param_quantizer import ParamQuantizeDequantize

SHAPE = (6, 40)  # the data: 6 channels along dim 0


def _quantizers():
    """One of each kind the grouping handles (several of some, so that groups hold several
    quantizers), and kinds it leaves to their own methods."""
    qs = []
    for bits in (8, 4, 8):
        qs.append(QuantizeDequantize((), bits, symmetric=False))
    qs.append(QuantizeDequantize((6, 1), 8, symmetric=False))
    qs.append(QuantizeDequantize((6, 1), 8, symmetric=True))
    qs.append(QuantizeDequantize((), 8, symmetric=True, strict=True))
    qs.append(QuantizeDequantize((), 8, symmetric=True, unsigned=True))
    qs.append(QuantizeDequantize((), 8, symmetric=False,
                                 encoding_analyzer=MinMaxEncodingAnalyzer((), fixed_min=0.0)))
    qs.append(QuantizeDequantize((6, 1), 8, symmetric=True,
                                 encoding_analyzer=MinMaxEncodingAnalyzer((6, 1), fixed_min=0.0)))
    for symmetric in (False, True, False):
        qs.append(QuantizeDequantize((), 8, symmetric=symmetric,
                                     encoding_analyzer=TfEnhancedEncodingAnalyzer(())))
    qs.append(QuantizeDequantize((6, 1), 8, symmetric=True,
                                 encoding_analyzer=TfEnhancedEncodingAnalyzer((6, 1))))
    qs.append(ParamQuantizeDequantize((6, 1), 8, symmetric=True))
    qs.append(QuantizeDequantize((), 8, symmetric=False,
                                 encoding_analyzer=PercentileEncodingAnalyzer((), percentile=99.0)))
    return qs


def _batches(i: int, n: int = 2):
    g = torch.Generator().manual_seed(100 + i)
    out = []
    for _ in range(n):
        x = torch.randn(SHAPE, generator=g) * (i + 1) + (i - 4) * 0.3
        x[0, i % SHAPE[1]] = float("nan") if i % 3 == 0 else x[0, i % SHAPE[1]]
        out.append(x)
    return out


def _calibrate(qs, start, finish, skip=()):
    start(qs)
    for i, q in enumerate(qs):
        for x in _batches(i) if i not in skip else ():
            q(x)
    for q in qs:
        q._calibrating = False
    return finish(qs)


def _one_by_one_start(qs):
    for q in qs:
        q._start_calibration()


def _one_by_one_finish(qs):
    failed = []
    for q in qs:
        try:
            q._finish_calibration()
        except RuntimeError as e:
            failed.append((q, e))
    return failed


def _assert_same_state(grouped, alone):
    for i, (a, b) in enumerate(zip(grouped, alone)):
        assert a.is_initialized() == b.is_initialized(), f"quantizer {i}: initialized"
        assert not a._calibrating and not b._calibrating, f"quantizer {i}: still calibrating"
        if b.is_initialized():
            assert_same(a.min.detach(), b.min.detach(), f"quantizer {i} min")
            assert_same(a.max.detach(), b.max.detach(), f"quantizer {i} max")
        held = b.encoding_analyzer.held_range(b.grid)
        if held is not None:
            for t, u, what in zip(a.encoding_analyzer.held_range(a.grid), held, ("lo", "hi")):
                assert_same(t, u, f"quantizer {i} held {what}")


@pytest.mark.parametrize("rounds", [1, 2])
def test_grouped_calibration_matches_each_quantizer_alone_bit_for_bit(rounds):
    qs = _quantizers()
    grouped, alone = qs, copy.deepcopy(qs)
    for _ in range(rounds):  # a second round starts from calibrated quantizers
        assert _calibrate(grouped, start_calibrations, finish_calibrations) == []
        assert _calibrate(alone, _one_by_one_start, _one_by_one_finish) == []
    _assert_same_state(grouped, alone)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(7))
    for i, (a, b) in enumerate(zip(grouped, alone)):  # the cached qparams see the new encoding
        assert_same(a(x), b(x), f"quantizer {i} output")


def test_quantizers_without_data_fail_with_their_own_errors_in_order():
    qs = _quantizers()
    # a 4-bit and an 8-bit asymmetric one (groups of other quantizers too: the 8-bit one's group
    # comes first), a symmetric per-channel and a tf_enhanced one
    skip = (1, 2, 4, 9)
    grouped, alone = qs, copy.deepcopy(qs)
    failed = _calibrate(grouped, start_calibrations, finish_calibrations, skip)
    want = _calibrate(alone, _one_by_one_start, _one_by_one_finish, skip)
    assert [grouped.index(q) for q, _ in failed] == list(skip)
    assert [str(e) for _, e in failed] == [str(e) for _, e in want]
    assert all("no encoding computed" in str(e) for _, e in failed)
    _assert_same_state(grouped, alone)  # the others of each group got their encodings


def test_only_nan_data_is_named_as_a_quantizer_alone_names_it():
    q, ref = QuantizeDequantize((), 8, symmetric=False), QuantizeDequantize((), 8, symmetric=False)
    others = [QuantizeDequantize((), 8, symmetric=False) for _ in range(2)]
    start_calibrations([q, *others])
    q(torch.full((5,), float("nan")))
    for o in others:
        o(torch.ones(3))
    for t in (q, *others):
        t._calibrating = False
    failed = finish_calibrations([q, *others])
    with pytest.raises(RuntimeError) as want:
        with ref.compute_encodings(process_group=False):
            ref(torch.full((5,), float("nan")))
    assert [(f[0], str(f[1])) for f in failed] == [(q, str(want.value))]
    assert "non-finite" in str(want.value)
    assert all(o.is_initialized() for o in others)


def test_start_refuses_a_quantizer_already_calibrating_and_starts_none():
    qs = [QuantizeDequantize((), 8, symmetric=False) for _ in range(3)]
    qs[2]._start_calibration()
    with pytest.raises(RuntimeError, match="already computing encodings"):
        start_calibrations(qs)
    assert [q._calibrating for q in qs] == [False, False, True]


def test_start_resets_the_statistics_as_reset_stats_does():
    q = QuantizeDequantize((6, 1), 8, symmetric=False,
                           encoding_analyzer=TfEnhancedEncodingAnalyzer((6, 1)))
    with q.compute_encodings(process_group=False):
        q(torch.randn(SHAPE))
    ref = copy.deepcopy(q)
    start_calibrations([q])
    ref._start_calibration()
    for (name, a), (_, b) in zip(q.encoding_analyzer.named_buffers(),
                                 ref.encoding_analyzer.named_buffers()):
        if a.is_floating_point():
            assert_same(a, b, f"buffer {name}")
        else:
            assert torch.equal(a, b), f"buffer {name}: {a} != {b}"
    assert q._calibrating


def test_an_exception_inside_a_module_calibration_stops_every_quantizer_and_keeps_encodings():
    from torch import nn
    from torchqsim.quantization import compute_encodings
    model = nn.Sequential(QuantizeDequantize((), 8, symmetric=False),
                          QuantizeDequantize((), 8, symmetric=True))
    for q in model:
        q.set_range(-1.0, 1.0)
    before = [(q.min.detach().clone(), q.max.detach().clone()) for q in model]
    with pytest.raises(KeyError):
        with compute_encodings(model, process_group=False):
            model(torch.tensor([100.0, -50.0]))
            raise KeyError("stop")
    for q, (lo, hi) in zip(model, before):
        assert not q._calibrating
        assert torch.equal(q.min.detach(), lo) and torch.equal(q.max.detach(), hi)
    with compute_encodings(model, process_group=False):  # and they calibrate again
        model(torch.tensor([3.0, -2.0]))
    assert float(model[0].max.detach()) == 3.0
