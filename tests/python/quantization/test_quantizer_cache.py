"""Reuse of computed values in eval: a frozen weight's fake-quantized copy and an activation
quantizer's (scale, zero point), each invalidated by any change of what it was computed from.

Oracle: the same call on a fresh quantizer holding the same encoding (nothing cached), which
computes everything again; results must match bit for bit after every kind of change.
"""

import copy

import pytest
import torch
from torch import nn

import torchqsim.nn as qnn
from asserts import assert_same
from torchqsim.quantization import Grid, GridKind, QuantizeDequantize
from torchqsim.quantization.param_quantizer import ParamQuantizeDequantize


def _fresh_result(q, x):
    """`q(x)` computed by a copy of `q` that caches nothing yet."""
    clone = copy.deepcopy(q)
    clone.__dict__.pop("_output_cache", None)
    clone.__dict__.pop("_qparam_cache", None)
    with torch.no_grad():
        return clone(x.detach().clone())


def _weight_quantizer(w, shape=()):
    q = ParamQuantizeDequantize(shape, 4, symmetric=True)
    q.set_range(-float(w.abs().max()), float(w.abs().max()))
    return q.requires_grad_(False).eval()


def _cached(q, w):
    with torch.no_grad():
        first = q(w)
        assert q(w) is first, "eval-mode weight quantization is computed once"
    return first


def test_frozen_weight_is_quantized_once_and_matches_a_fresh_computation():
    w = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    q = _weight_quantizer(w, (8, 1))
    assert_same(_cached(q, w), _fresh_result(q, w))


@pytest.mark.parametrize("change", ["in_place", "optimizer_step", "replace_data", "set_range",
                                    "load_state_dict", "min_in_place", "grid"])
def test_any_change_of_weight_or_encoding_invalidates_the_cache(change):
    lin = nn.Linear(3, 8)
    q = _weight_quantizer(lin.weight.detach())
    w = lin.weight
    stale = _cached(q, w)
    with torch.no_grad():
        if change == "in_place":
            w.mul_(0.5)
        elif change == "replace_data":
            w.data = torch.randn(8, 3)
        elif change == "set_range":
            q.set_range(-0.1, 0.1)
        elif change == "load_state_dict":
            q.load_state_dict({**q.state_dict(), "max": q.max * 0.5})
        elif change == "min_in_place":
            q.min.sub_(1.0)
        elif change == "grid":
            q.grid = Grid.of(2, GridKind.SYMMETRIC)  # qmin, qmax = -2, 1
    if change == "optimizer_step":
        opt = torch.optim.SGD([w], lr=0.5)
        lin(torch.randn(2, 3)).sum().backward()
        opt.step()
    with torch.no_grad():
        now = q(w)
    assert_same(now, _fresh_result(q, w))
    assert not torch.equal(now, stale), "the change should change the result"


def test_a_new_result_is_written_into_the_old_one_when_nothing_holds_it():
    w = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    q = _weight_quantizer(w, (16, 1))
    where = _cached(q, w).data_ptr()            # the caller's reference dies here
    q.set_range(-0.5 * w.abs().amax(1, keepdim=True), 0.5 * w.abs().amax(1, keepdim=True))
    with torch.no_grad():
        now = q(w)
    assert now.data_ptr() == where, "the old result's memory is reused"
    assert_same(now, _fresh_result(q, w))


@pytest.mark.parametrize("holder", ["reference", "view", "autograd", "autograd_itself"])
def test_a_result_still_held_is_never_overwritten(holder):
    torch.manual_seed(2)
    lin = qnn.QuantizedLinear.from_module(nn.Linear(8, 4)).eval().requires_grad_(False)
    q = lin.param_quantizers["weight"] = _weight_quantizer(lin.weight, (4, 1))
    x = torch.randn(3, 8, requires_grad=True)
    with torch.set_grad_enabled(holder.startswith("autograd")):
        y = lin(x)                              # F.linear saves a view of the cached weight
        z = torch.randn(3, 4, requires_grad=True)
        if holder == "autograd_itself":         # mm saves the tensor itself (no second view)
            y = torch.mm(z, q(lin.weight))
    held = q._output_cache[4]
    kept = {"reference": held, "view": held.view(-1)}.get(holder)
    old, where = held.clone(), held.data_ptr()
    del held
    q.set_range(-0.01, 0.01)
    with torch.no_grad():
        now = lin(x)
    assert q._output_cache[4].data_ptr() != where, "a held result gets new memory"
    assert_same(now, torch.nn.functional.linear(x, _fresh_result(q, lin.weight), lin.bias))
    if kept is not None:
        assert_same(kept.view(old.shape), old)
        return
    y.sum().backward()
    if holder == "autograd":
        assert_same(x.grad, torch.ones(3, 4) @ old)
    else:
        assert_same(z.grad, torch.ones(3, 8) @ old.t())


def test_another_tensor_with_the_same_values_is_not_served_from_the_cache():
    w = torch.randn(4, 4)
    q = _weight_quantizer(w)
    _cached(q, w)
    other = w.clone()
    with torch.no_grad():
        assert q(other) is not q(w)


def test_training_mode_and_gradients_bypass_the_cache():
    lin = nn.Linear(3, 4)
    q = _weight_quantizer(lin.weight.detach())
    _cached(q, lin.weight)
    y = q(lin.weight)                           # grad mode, weight requires grad: not cached
    assert y.grad_fn is not None
    y.sum().backward()
    assert lin.weight.grad is not None
    q.eval()
    assert "_output_cache" in q.__dict__, "eval() in eval mode (compute_encodings) keeps it"
    q.train()
    assert "_output_cache" not in q.__dict__, "switching mode drops the cache"
    with torch.no_grad():
        assert q(lin.weight) is not q(lin.weight)


def test_data_writes_need_clear_cache():
    w = torch.randn(6)
    q = _weight_quantizer(w)
    stale = _cached(q, w)
    w.data.mul_(0.25)                           # bypasses the version counter
    with torch.no_grad():
        assert q(w) is stale
        q.clear_cache()
        assert_same(q(w), _fresh_result(q, w))


def test_module_eval_forward_uses_the_cached_weight_bit_for_bit():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    qconv = qnn.QuantizedConv2d.from_module(conv).eval()
    qconv.param_quantizers["weight"] = _weight_quantizer(conv.weight.detach(), (4, 1, 1, 1))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        first, second = qconv(x), qconv(x)
        conv.weight.add_(0.01)
        third = qconv(x)
    expected = torch.nn.functional.conv2d(
        x, _fresh_result(qconv.param_quantizers["weight"], conv.weight), conv.bias)
    assert_same(first, second)
    assert_same(third, expected)


def test_activation_qparams_follow_encoding_changes():
    q = QuantizeDequantize((), 8, symmetric=False)
    q.set_range(-1.0, 1.0)
    x = torch.linspace(-3, 3, 101)
    with torch.no_grad():
        before = q(x)
        q.set_range(-2.0, 2.0)
        after = q(x)
        assert_same(after, _fresh_result(q, x))
        assert not torch.equal(before, after)
        q.max.mul_(0.5)
        assert_same(q(x), _fresh_result(q, x))
    q.max = nn.Parameter(torch.tensor(3.0))     # another tensor, maybe at a reused address
    assert_same(q(x).detach(), _fresh_result(q, x))


def test_learned_encoding_still_gets_gradients():
    q = QuantizeDequantize((), 8, symmetric=False)
    q.set_range(-1.0, 1.0)
    x = torch.linspace(-3, 3, 101)
    with torch.no_grad():
        q(x)                                    # may cache
    q(x).sum().backward()
    assert q.min.grad is not None and q.max.grad is not None and float(q.max.grad.abs()) > 0


def test_a_quantizer_shared_by_two_input_shapes_keeps_both_and_follows_changes():
    q = QuantizeDequantize((), 8, symmetric=False)
    q.set_range(-1.0, 1.0)
    a, b = torch.linspace(-3, 3, 96), torch.linspace(-3, 3, 96).reshape(4, 2, 12)
    with torch.no_grad():
        q(a), q(b)
        assert len(q._qparam_cache[4]) == 2, "one entry per input shape"
        assert_same(q(a), _fresh_result(q, a))
        assert_same(q(b), _fresh_result(q, b))
        q.set_range(-0.5, 2.0)                 # invalidates the entries of both shapes
        assert_same(q(a), _fresh_result(q, a))
        assert_same(q(b), _fresh_result(q, b))
    bad = torch.ones(4, 3)
    per_channel = QuantizeDequantize((4, 1), 8, symmetric=True)
    per_channel.set_range(-torch.ones(4, 1), torch.ones(4, 1))
    with torch.no_grad():
        per_channel(bad)
        with pytest.raises(ValueError, match="does not divide"):
            per_channel(torch.ones(3, 4))      # a new shape is checked, not served


def test_an_encoding_loaded_into_a_fresh_quantizer_is_seen_and_its_absence_raises():
    q = QuantizeDequantize((), 8, symmetric=False)
    x = torch.linspace(-3, 3, 11)
    with torch.no_grad(), pytest.raises(RuntimeError, match="has no encoding"):
        q(x)
    src = QuantizeDequantize((), 8, symmetric=False)
    src.set_range(-1.0, 1.0)
    q.load_state_dict(src.state_dict())        # writes `initialized` in place
    assert q.is_initialized()
    with torch.no_grad():
        assert_same(q(x), _fresh_result(src, x))
    q.initialized.fill_(False)
    assert not q.is_initialized()
    with torch.no_grad(), pytest.raises(RuntimeError, match="has no encoding"):
        q(x)
