"""In-place sims quantize each Linear/Conv weight into a per-thread buffer that the op consumes
(torchqsim.nn.scratch). Oracle: the same module with the buffer turned off
(SCRATCH_MAX_BYTES = 0), which allocates every quantized weight; results must match bit for bit,
and the buffer must never be visible outside the op."""

import threading

import pytest
import torch
from torch import nn

import torchqsim.nn as qnn
import torchqsim.nn.scratch as scratch
from asserts import assert_same
from torchqsim.quantization.param_quantizer import ParamQuantizeDequantize


@pytest.fixture(autouse=True)
def small_weights_too(monkeypatch):
    """The buffer for the small weights of these tests as well (in use it starts at 256 KiB)."""
    monkeypatch.setattr(scratch, "SCRATCH_MIN_BYTES", 0)


def _weight_quantizer(w, shape):
    q = ParamQuantizeDequantize(shape, 4, symmetric=True)
    q.set_range(-w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True).reshape(shape),
                w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True).reshape(shape))
    q.cache_eval_output = False                # as in an in-place sim
    return q.eval()


def _modules(dtype):
    torch.manual_seed(0)
    lin, conv = nn.Linear(16, 8).to(dtype), nn.Conv2d(3, 4, 3).to(dtype)
    qlin = qnn.QuantizedLinear.from_module(lin).eval()
    qlin.param_quantizers["weight"] = _weight_quantizer(lin.weight.detach().float(), (8, 1))
    qconv = qnn.QuantizedConv2d.from_module(conv).eval()
    qconv.param_quantizers["weight"] = _weight_quantizer(conv.weight.detach().float(), (4, 1, 1, 1))
    return [(qlin, torch.randn(5, 16).to(dtype)), (qconv, torch.randn(2, 3, 8, 8).to(dtype))]


def _unbuffered(module, x, monkeypatch):
    with monkeypatch.context() as m, torch.no_grad():
        m.setattr(scratch, "SCRATCH_MAX_BYTES", 0)
        return module(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_buffered_weights_give_the_allocated_result_bit_for_bit(dtype, monkeypatch):
    for module, x in _modules(dtype):
        with torch.no_grad():
            first, second = module(x), module(x)
        want = _unbuffered(module, x, monkeypatch)
        assert_same(first, want)
        assert_same(second, want)


def test_the_buffer_is_reused_and_never_returned_by_the_quantizer_itself():
    (qlin, x), (qconv, y) = _modules(torch.float32)
    q = qlin.param_quantizers["weight"]
    with torch.no_grad():
        a = scratch.quantized_weight_for_op(q, qlin.weight)
        b = scratch.quantized_weight_for_op(qconv.param_quantizers["weight"], qconv.weight)
        assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
        assert not torch.equal(a, q(qlin.weight))  # b overwrote it: consume before the next
        big = torch.randn(64, 64)              # a larger weight: the buffer grows
        c = scratch.quantized_weight_for_op(q, big)
        assert_same(c, q(big))
        assert_same(scratch.quantized_weight_for_op(q, qlin.weight), q(qlin.weight))
        own = q(qlin.weight)                   # a plain call allocates its result
        assert own.untyped_storage().data_ptr() != a.untyped_storage().data_ptr()
        assert_same(own, q(qlin.weight))


def test_the_buffer_is_not_used_with_grad_hooks_a_cache_or_another_thread(monkeypatch):
    (qlin, x), _ = _modules(torch.float32)
    q = qlin.param_quantizers["weight"]
    w = qlin.weight
    assert scratch.quantized_weight_for_op(q, w) is None          # grad mode on
    with torch.no_grad():
        seen = []
        handle = q.register_forward_hook(lambda m, i, o: seen.append(o))
        assert scratch.quantized_weight_for_op(q, w) is None
        qlin(x)
        assert len(seen) == 1, "the hook sees the weight quantizer's call"
        handle.remove()
        q.cache_eval_output = True
        assert scratch.quantized_weight_for_op(q, w) is None
        q.cache_eval_output = False
        monkeypatch.setattr(scratch, "SCRATCH_MIN_BYTES", w.numel() * w.element_size() + 1)
        assert scratch.quantized_weight_for_op(q, w) is None      # smaller than the minimum
        monkeypatch.setattr(scratch, "SCRATCH_MIN_BYTES", 0)
        here = scratch.quantized_weight_for_op(q, w).untyped_storage().data_ptr()
        there = []

        def other_thread():
            with torch.no_grad():              # grad mode is per thread
                there.append(scratch.quantized_weight_for_op(q, w).untyped_storage().data_ptr())
        t = threading.Thread(target=other_thread)
        t.start(), t.join()
        assert there[0] != here, "each thread has its own buffer"


def test_an_in_place_sim_evaluates_as_without_the_buffer(monkeypatch):
    from torchqsim.quantsim import QuantizationSimModel
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 4)).to(torch.bfloat16).eval()
    x = torch.randn(6, 12).to(torch.bfloat16)
    sim = QuantizationSimModel(model, x, quant_scheme="tf", config_file="per_channel",
                               default_param_bw=4, default_output_bw=8, in_place=True)
    sim.compute_encodings(lambda m: m(x))
    sim.model.eval()
    with torch.no_grad():
        got = sim.model(x)
    assert_same(got, _unbuffered(sim.model, x, monkeypatch))


def test_a_folded_weight_is_returned_as_it_is_and_a_changed_one_quantized_again():
    (qlin, x), _ = _modules(torch.float32)
    q, w = qlin.param_quantizers["weight"], qlin.weight
    with torch.no_grad():
        want = q(w.clone())
        assert q.fold(w)
        assert scratch.quantized_weight_for_op(q, w) is w, "folded: nothing to compute"
        q.train()
        assert scratch.quantized_weight_for_op(q, w) is not w, "training: quantized as q(w)"
        q.eval()
        assert_same(w, want)
        w.add_(0.01)                           # a changed weight is no longer the folded one
        got = scratch.quantized_weight_for_op(q, w)
        assert got is not w
        assert_same(got, q(w))
