"""``torchqsim._eager``: the direct entries of the in-place qdq op and the calibration statistics
ops for plain eager calls (bindings/eager_module.cpp), and the wrappers' no-grad call built on
them (``torchqsim.quantization.eager_qparams.eval_into_input``).

Oracles: ``torch.ops.qsim.quantize_dequantize_`` on a copy of the same input (values, version
counter, straight-through gradient, errors), bit for bit; what the profiler and a dispatch mode
record; the quantizer's own ``forward`` for ``eval_into_input``.
"""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

import torchqsim  # noqa: F401  (registers the ops)
from asserts import assert_same
from qdq_cases import BAD_IN_PLACE_ARGUMENTS, grid_data, with_specials
from torchqsim import _eager
from torchqsim.quantization import MinMaxEncodingAnalyzer, QuantizeDequantize
from torchqsim.quantization.tf_enhanced import TfEnhancedEncodingAnalyzer
from torchqsim.quantization.eager_qparams import eval_into_input

ops = torch.ops.qsim
SCALE, ZP = torch.tensor(0.05), torch.tensor(3, dtype=torch.int32)


def _data(shape, dtype, seed=0):
    x = grid_data(torch.Generator().manual_seed(seed), shape, SCALE, ZP, -128, 127)
    return (with_specials(x) if x.numel() >= 100 else x).to(dtype)


@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", [(0,), (7,), (4, 6, 33), (5, 4099)])
def test_values_and_version_equal_the_op(shape, dtype, relu):
    zp = torch.tensor(-128, dtype=torch.int32) if relu else ZP
    x = _data(shape, dtype)
    mine, want = x.clone(), x.clone()
    assert _eager.quantize_dequantize_(mine, SCALE, zp, -128, 127, relu) is None
    ops.quantize_dequantize_(want, SCALE, zp, -128, 127, relu)
    assert_same(mine, want)
    assert mine._version == want._version == 1, "one in-place write each"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_the_straight_through_gradient_equals_the_op(dtype):
    x = _data((6, 70), dtype)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = a * 1.0, b * 1.0
    _eager.quantize_dequantize_(ya, SCALE, ZP, -128, 127)
    ops.quantize_dequantize_(yb, SCALE, ZP, -128, 127)
    assert ya.grad_fn.name() == yb.grad_fn.name(), "the op's autograd node records the call"
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    ya.backward(dy.clone())
    yb.backward(dy.clone())
    assert_same(ya.detach(), yb.detach())
    assert_same(a.grad, b.grad, "dx")


@pytest.mark.parametrize(**BAD_IN_PLACE_ARGUMENTS)
def test_bad_arguments_raise_the_ops_errors(make, error, words):
    with pytest.raises(error, match=words):
        _eager.quantize_dequantize_(*make(), -128, 127)


def test_a_non_tensor_argument_is_refused_by_name():
    with pytest.raises(TypeError, match="quantize_dequantize_"):
        _eager.quantize_dequantize_([1.0, 2.0], SCALE, ZP, -128, 127)


def test_an_inference_tensor_is_written_only_in_inference_mode():
    with torch.inference_mode():
        x = _data((40,), torch.float32)
        want = x.clone()
        _eager.quantize_dequantize_(x, SCALE, ZP, -128, 127)
        ops.quantize_dequantize_(want, SCALE, ZP, -128, 127)
    assert_same(x, want)
    with pytest.raises(RuntimeError, match="[Ii]nference"):
        _eager.quantize_dequantize_(x, SCALE, ZP, -128, 127)


def test_the_profiler_and_dispatch_modes_see_the_op():
    x = _data((64,), torch.float32)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _eager.quantize_dequantize_(x, SCALE, ZP, -128, 127)
    assert "qsim::quantize_dequantize_" in {e.key for e in prof.key_averages()}

    class Seen(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    with Seen() as seen:
        _eager.quantize_dequantize_(x, SCALE, ZP, -128, 127)
    assert seen.names == ["qsim.quantize_dequantize_.default"]


_FOLD = ("min", "max", "nonfinite")


def _same(a, b, what):
    """assert_same for floats; dtype and values for integer and bool tensors."""
    if a.is_floating_point():
        assert_same(a, b, what)
    else:
        assert a.dtype == b.dtype and torch.equal(a, b), f"{what}: {a} != {b}"


_TFE = ("min", "max", "nonfinite", "counts", "edges", "hist_range", "limits", "batches")


@pytest.mark.parametrize("shape", [(), (5, 1)], ids=["per-tensor", "per-channel"])
def test_the_statistics_entries_equal_the_ops(shape):
    # minmax_fold and tfe_batch (two batches: its first, then its merge) on copies of an
    # analyzer's statistics, every result and buffer compared
    g = torch.Generator().manual_seed(3)
    batches = [with_specials(torch.randn(6, 5, 40, generator=g) * s) for s in (1.0, 3.0)]
    fold = MinMaxEncodingAnalyzer(shape)
    tfe = TfEnhancedEncodingAnalyzer(shape)
    fold.reset_stats(), tfe.reset_stats()
    stats = {"fold": [[fold._buffers[n].clone() for n in _FOLD] for _ in range(2)],
             "tfe": [[tfe._buffers[n].clone() for n in _TFE] for _ in range(2)]}
    for x in batches:
        view, axis = fold._view(x)
        _eager.minmax_fold(view, *stats["fold"][0], axis)
        ops.minmax_fold(view, *stats["fold"][1], axis)
        mine = _eager.tfe_batch(view, axis, *stats["tfe"][0])
        want = ops.tfe_batch(view, axis, *stats["tfe"][1])
        for i, (a, b) in enumerate(zip(mine, want)):
            _same(a, b, f"tfe_batch result {i}")
    for kind, names in (("fold", _FOLD), ("tfe", _TFE)):
        for name, a, b in zip(names, *stats[kind]):
            _same(a, b, f"{kind} statistics {name}")
    assert int(stats["tfe"][0][-1]) == 2, "both batches counted"


def test_the_statistics_entries_raise_the_ops_errors():
    stats = [torch.zeros(()), torch.zeros(()), torch.zeros((), dtype=torch.int64)]
    with pytest.raises(ValueError, match="minmax_fold: min must have shape"):
        _eager.minmax_fold(torch.ones(4, 3), torch.zeros(3), *stats[1:], None)
    with pytest.raises(ValueError, match="minmax_fold: min must have shape"):
        ops.minmax_fold(torch.ones(4, 3), torch.zeros(3), *stats[1:], None)
    tfe = TfEnhancedEncodingAnalyzer(())
    tfe.reset_stats()
    errors = []
    for batch in (_eager.tfe_batch, ops.tfe_batch):
        with pytest.raises(TypeError, match="tfe_batch: x must be float32") as caught:
            batch(torch.ones(4, 3).int(), None, *[tfe._buffers[n] for n in _TFE])
        errors.append(str(caught.value).splitlines()[0])
    assert errors[0] == errors[1]


def _quantizer(shape=(), reciprocal=False):
    q = QuantizeDequantize(shape, 8, symmetric=False)
    q.set_range(torch.full(shape, -1.5), torch.full(shape, 2.0))
    q.reciprocal_rounding = reciprocal
    return q


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape, reciprocal", [((), False), ((), True), ((5,), False)],
                         ids=["per-tensor", "reciprocal", "per-channel"])
def test_eval_into_input_is_the_forward_in_x(shape, reciprocal, dtype):
    q = _quantizer(shape, reciprocal)
    x = (torch.randn(3, 5, generator=torch.Generator().manual_seed(2)) * 2).to(dtype)
    with torch.no_grad():
        want = q(x)
        assert eval_into_input(q, x) is x
    assert_same(x, want)


def test_eval_into_input_takes_the_direct_entry_for_per_tensor_data(monkeypatch):
    calls = []
    entry = _eager.quantize_dequantize_
    monkeypatch.setattr(_eager, "quantize_dequantize_", lambda *a: calls.append(a) or entry(*a))
    with torch.no_grad():
        eval_into_input(_quantizer(), torch.randn(8))
        eval_into_input(_quantizer((8,)), torch.randn(2, 8))
    assert len(calls) == 1, "per tensor through the entry, per channel through forward_into_input"
