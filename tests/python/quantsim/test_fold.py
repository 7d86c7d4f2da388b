"""``sim.fold_param_quantizers()`` (AIMET's name): every calibrated weight holds its quantized
values, and its quantizer returns it as it is until the weight or the encoding changes.

Oracles: the unfolded sim's outputs (bit for bit), the pure-torch qdq formula of the original
weights, torch's profiler (no qdq op runs on a folded weight), the encodings dict, and a sim
that is not folded for the behaviour after a change.
"""

import pytest
import torch
from torch import nn

from asserts import assert_same
from reference import expand_qparam
from test_sim_dtypes import _batch, _llama, _sim
from torchqsim.quantization.lpbq_quantizer import LpbqQuantizeDequantize
from torchqsim.quantization.param_quantizer import ParamQuantizeDequantize
from torchqsim.quantsim import QuantizationSimModel

DTYPES = [torch.float32, torch.bfloat16]


def _formula(w, q):
    """qdq of `w` on q's grid, in fp32, rounded to w's dtype."""
    scale, zp, qmin, qmax, axis, block = q._qparams(w.shape)
    s = expand_qparam(scale, w.shape, axis, block)
    z = expand_qparam(zp.float(), w.shape, axis, block)
    return ((torch.clamp(torch.round(w.float() / s) + z, qmin, qmax) - z) * s).to(w.dtype)


def _qdq_calls(model, batch):
    from torch.profiler import ProfilerActivity, profile
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(**batch)
    return sum(e.name.startswith("qsim::quantize_dequantize") for e in prof.events())


def _weights(sim):
    return {f"{n}.{p}": (m, p, q) for n, m in sim.named_qmodules()
            for p, q in m.param_quantizers.items() if q is not None}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_folded_sim_computes_the_same_without_quantizing_weights(dtype):
    sim, batch = _sim(_llama(dtype), "W8A16"), _batch()
    sim.model.eval()
    with torch.no_grad():
        before = sim.model(**batch).logits
    calls = _qdq_calls(sim.model, batch)
    weights = _weights(sim)
    originals = {name: getattr(m, p).detach().clone() for name, (m, p, _) in weights.items()}
    encodings = sim.quantizer_encodings_dict()
    folded = sim.fold_param_quantizers()
    assert sorted(folded) == sorted(weights), "every weight folds at 8 bits"
    for name, (m, p, q) in weights.items():
        w = getattr(m, p)
        assert_same(w.detach(), _formula(originals[name], q), f"{name} holds its quantized values")
        with torch.no_grad():
            assert q(w) is w, name
    sim.model.train()
    sim.model.eval()  # switching modes keeps the fold
    with torch.no_grad():
        assert_same(sim.model(**batch).logits, before, "folded sim")
        assert_same(sim.model(**batch).logits, before, "folded sim, second call")
    assert _qdq_calls(sim.model, batch) == calls - len(folded)
    assert sim.quantizer_encodings_dict() == encodings


@pytest.mark.parametrize("bits", ["W4A16", "W16A16"])
def test_half_weights_are_fixed_points_at_any_bitwidth(bits):
    sim, batch = _sim(_llama(torch.bfloat16), bits), _batch()
    sim.model.eval()
    with torch.no_grad():
        before = sim.model(**batch).logits
        assert sorted(sim.fold_param_quantizers()) == sorted(_weights(sim))
        assert_same(sim.model(**batch).logits, before, f"folded {bits} sim")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_lpbq_weights_fold_bit_for_bit(dtype):
    model, batch = _llama(dtype), _batch()
    sim = _sim(model, "W8A16")
    linears = [m for n, m in sim.model.named_modules() if isinstance(m, nn.Linear) and "proj" in n]
    sim.set_precision(linears, param={"weight": 4}, block_size=16, decompressed_bw=8)
    assert sum(isinstance(q, LpbqQuantizeDequantize) for _, _, q in _weights(sim).values()) == 14
    sim.compute_encodings(lambda m: m(**batch))
    sim.model.eval()
    with torch.no_grad():
        before = sim.model(**batch).logits
        assert sorted(sim.fold_param_quantizers()) == sorted(_weights(sim))
        assert_same(sim.model(**batch).logits, before, "folded LPBQ sim")


class _RoundsUp(ParamQuantizeDequantize):
    """A quantizer that is not idempotent: it adds half a step before rounding."""

    def _quantize(self, x, out):
        return super()._quantize(x + self.get_scale() / 2, out)


def test_non_idempotent_quantizers_and_tied_weights_are_left_alone():
    q = _RoundsUp((), 8, symmetric=True).eval()
    w = nn.Parameter(torch.linspace(-1.0, 1.0, 11), requires_grad=False)
    original = w.detach().clone()
    assert not q.fold(w)
    assert_same(w.detach(), original, "weight of a quantizer that does not fold")
    assert not q.is_folded(w)

    tied = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    tied[2].weight = tied[0].weight
    x = torch.randn(3, 4)
    sim = QuantizationSimModel(tied, x, quant_scheme="tf")
    sim.compute_encodings(lambda m, _: m(x), None)
    weight = sim.model.get_submodule("0").weight.detach().clone()
    with torch.no_grad():
        before = sim.model.eval()(x)
        assert sim.fold_param_quantizers() == [], "a tied weight has two users"
        assert_same(sim.model(x), before, "sim with a tied weight")
    assert_same(sim.model.get_submodule("0").weight.detach(), weight, "tied weight unchanged")


def test_a_changed_weight_or_encoding_is_quantized_again():
    sim, batch = _sim(_llama(torch.float32), "W4A16"), _batch()
    sim.model.eval()
    sim.fold_param_quantizers()
    module = sim.model.get_submodule("model.layers.0.mlp.up_proj")
    q, w = module.param_quantizers["weight"], module.weight
    with torch.no_grad():
        assert q(w) is w
        w.mul_(1.7)  # an optimizer step or a load
        assert not q.is_folded(w)
        assert_same(q(w), _formula(w, q), "after a weight change")
        q.fold(w)
        assert q(w) is w
        q.set_range(-0.01, 0.01)
        assert_same(q(w), _formula(w, q), "after an encoding change")
        q.fold(w)
        q.clear_cache()
        assert not q.is_folded(w)


def test_folding_an_uncalibrated_sim_names_the_quantizer():
    x = torch.randn(2, 4)
    sim = QuantizationSimModel(nn.Sequential(nn.Linear(4, 4)), x, quant_scheme="tf")
    with pytest.raises(RuntimeError, match=r"0\.param_quantizers\.weight.*compute_encodings"):
        sim.fold_param_quantizers()
