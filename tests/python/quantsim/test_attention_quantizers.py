"""attention_quantizers / set_attention_precision (wrappers/quantsim/attention.py) on the zoo's
Llama and Qwen2 (HF eager attention, grouped-query: 4 query heads on 2 kv heads).

Oracles: forward hooks on the sim: the key (value) op's output, repeated over the query heads
(``repeat_kv``), is exactly the scores (values) matmul's second operand; after
``set_attention_precision`` those operands lie on the 8-bit grid of that quantizer while the
other activations keep 16 bits.
"""

import os
import sys
import warnings

import pytest
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "zoo"))

import zoo_models  # noqa: E402
from torchqsim import QuantizationSimModel  # noqa: E402
from torchqsim.quantsim.attention import (attention_quantizers,  # noqa: E402
                                          set_attention_precision)


def _sim(name, bw=8):
    model, dummy = zoo_models.HF[name]()
    dummy = dict(dummy, use_cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model, dummy, quant_scheme="tf", default_output_bw=bw,
                                   default_param_bw=bw, config_file="default")
    return sim, dummy


def _operands(sim, dummy, names):
    """{module name: (its output, its positional inputs)} from one forward of the sim."""
    seen, hooks = {}, []
    for name in names:
        module = sim.model.get_submodule(name)
        hooks.append(module.register_forward_hook(
            lambda m, args, out, name=name: seen.__setitem__(name, (out, args))))
    try:
        with torch.no_grad():
            sim.model(**dummy)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _heads(x, heads):
    """``(B, S, H*D)`` or ``(B, H, S, D)`` to ``(B, H, S, D)`` with the kv heads repeated."""
    if x.dim() == 3:
        b, s, _ = x.shape
        x = x.view(b, s, -1, 8).transpose(1, 2)
    return x.repeat_interleave(heads // x.shape[1], dim=1)


@pytest.mark.parametrize("name", ["llama", "qwen2"])
def test_found_operands_are_the_cached_keys_and_values(name):
    sim, dummy = _sim(name)
    sim.compute_encodings(lambda m, _: m(**dummy), None)
    found = attention_quantizers(sim)
    assert len(found) == 2  # two layers
    for a in found:
        seen = _operands(sim, dummy, [a.key, a.value, a.scores, a.probs, *_values_matmul(sim, a)])
        key, (_, k_t) = seen[a.key][0], seen[a.scores][1]
        assert torch.equal(_heads(key, k_t.shape[1]).transpose(-1, -2), k_t), a
        (v_out, _), (_, v) = seen[a.value], seen[_values_matmul(sim, a)[0]][1]
        assert torch.equal(_heads(v_out, v.shape[1]), v), a
        assert type(sim.model.get_submodule(a.probs)).__name__ == "QuantizedSoftmax"


def _values_matmul(sim, a):
    return [op.name for op in sim.graph.ops
            if any(getattr(s, "op", None) is sim.graph.op(a.value) for s in op.inputs[1:2])
            and type(op.module).__name__ in ("QuantizedMatMul", "QuantizedBmm")]


def test_eight_bit_kv_in_a_w16a16_sim():
    sim, dummy = _sim("llama", bw=16)
    found = set_attention_precision(sim, key=8, value=8)
    sim.compute_encodings(lambda m, _: m(**dummy), None)
    for a in found:
        for role, bw in (("key", 8), ("value", 8), ("scores", 16), ("probs", 16)):
            q = sim.model.get_submodule(getattr(a, role)).output_quantizers[0]
            assert q.bitwidth == bw, (a, role)
        seen = _operands(sim, dummy, [a.scores])
        k_t = seen[a.scores][1][1]
        q = sim.model.get_submodule(a.key).output_quantizers[0]
        steps = k_t / q.get_scale()
        assert (steps - steps.round()).abs().max() < 1e-3  # on the grid (x / scale is inexact)
        assert steps.round().unique().numel() <= 256
    q_proj = sim.model.get_submodule("model.layers.0.self_attn.q_proj").output_quantizers[0]
    assert q_proj.bitwidth == 16


def test_a_bf16_model_has_its_attentions_and_eight_bit_kv():
    model, dummy = zoo_models.HF["llama"]()
    dummy = dict(dummy, use_cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model.to(torch.bfloat16), dummy, quant_scheme="tf",
                                   default_output_bw=16, default_param_bw=16,
                                   config_file="default")
    found = set_attention_precision(sim, key=8, value=8)
    assert len(found) == 2  # HF computes the probabilities in fp32: softmax(x.to(fp32))
    sim.compute_encodings(lambda m, _: m(**dummy), None)
    for a in found:
        assert type(sim.model.get_submodule(a.probs)).__name__ == "QuantizedSoftmax"
        seen = _operands(sim, dummy, [a.scores, a.probs])
        k_t, probs = seen[a.scores][1][1], seen[a.probs][0]
        assert k_t.dtype == torch.bfloat16 and probs.dtype == torch.float32
        q = sim.model.get_submodule(a.key).output_quantizers[0]
        assert q.bitwidth == 8
        with torch.no_grad():   # bf16 keys on the 8-bit grid: rounded grid points, q's fixed points
            assert torch.equal(q(k_t), k_t)
        assert (k_t.float() / q.get_scale()).round().unique().numel() <= 256
        p = sim.model.get_submodule(a.probs).output_quantizers[0]
        pos = probs / p.get_scale() + p.get_zero_point()
        assert (pos - pos.round()).abs().max() < 1e-3  # the probabilities are quantized


def test_no_attention_is_an_error():
    x = torch.randn(2, 4)
    sim = QuantizationSimModel(nn.Sequential(nn.Linear(4, 4), nn.Softmax(-1)), x)
    assert attention_quantizers(sim) == []
    with pytest.raises(ValueError, match="no attention written as matmul -> softmax -> matmul"):
        set_attention_precision(sim, key=8)
