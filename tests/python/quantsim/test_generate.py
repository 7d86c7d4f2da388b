"""``sim.model.generate(...)`` with transformers' DynamicCache (wrappers/quantsim/generation.py)
on the zoo's Llama and Qwen2 (eager attention, 4 query heads on 2 kv heads, 2 layers).

Oracles:
- greedy generation with the KV cache equals generation without it (every step recomputes the
  whole sequence through the sim): same tokens and bit-equal logits (sampling with one seed:
  the same tokens). Measured bit-equal here;
  the float model itself differs by ~1e-7 between the two (summation order over other shapes),
  which the sim's quantizers absorb on these models; a platform where they did not would show
  one-grid-step differences, not cache errors;
- the first step's logits equal ``sim.model``'s (the calibrated graph) on the prompt;
- every cache entry after generation is on its quantizer's grid: ``quantize_dequantize`` with
  the key (after RoPE) or value quantizer's scale and zero point returns it bit for bit, while
  the float model's entries are not on that grid (the check can fail); with 8-bit KV and
  16-bit other activations (``set_attention_precision``) too;
- entries written at earlier steps are unchanged at later steps (no drift);
- with every quantizer removed, the sim generates exactly what the float model generates;
- a captured graph whose modules differ from sim.model's (Qwen2's biased projections against
  Llama's) is refused, both named (other cache classes: test_generate_caches.py);
- calibration through ``generate`` initializes every quantizer, and the cache still changes
  nothing.
"""

import warnings

import pytest
import torch

from generate_helpers import GREEDY as _GREEDY, assert_same_generation, \
    kv_quantizers as _kv_quantizers, on_grid as _on_grid, sim as _sim, unquantized, zoo_models
from torchqsim import QuantizationSimModel


@pytest.mark.parametrize("name", ["llama", "qwen2"])
def test_cached_generation_equals_full_recompute(name):
    sim, _, prompt, mask = _sim(name, 8, None)
    cached = sim.model.generate(prompt, attention_mask=mask, use_cache=True, **_GREEDY)
    full = sim.model.generate(prompt, attention_mask=mask, use_cache=False, **_GREEDY)
    assert torch.equal(cached.sequences, full.sequences)
    assert cached.sequences.shape[1] == prompt.shape[1] + 4
    for step, (a, b) in enumerate(zip(cached.logits, full.logits)):
        assert torch.equal(a, b), (step, (a - b).abs().max())
    sampled = []
    for use_cache in (True, False):  # sampling: the same draws from the same logits
        torch.manual_seed(3)
        sampled.append(sim.model.generate(prompt, attention_mask=mask, use_cache=use_cache,
                                          do_sample=True, top_k=0, max_new_tokens=6,
                                          pad_token_id=0))
    assert torch.equal(*sampled)
    one = sim.model.generate(prompt, attention_mask=torch.ones_like(prompt),
                             **dict(_GREEDY, max_new_tokens=1))  # no padding
    with torch.no_grad():
        first = sim.model(input_ids=prompt, use_cache=False).logits[:, -1]  # as calibrated
    assert torch.equal(one.logits[0], first)


@pytest.mark.parametrize("bw, kv_bw", [(8, None), (16, 8)])
def test_cache_entries_are_on_the_kv_grids_and_do_not_drift(bw, kv_bw):
    sim, model, prompt, mask = _sim("llama", bw, kv_bw)
    quantizers = _kv_quantizers(sim)
    assert [(k.bitwidth, v.bitwidth) for k, v in quantizers] == [(kv_bw or bw,) * 2] * 2
    out = sim.model.generate(prompt, attention_mask=mask, **_GREEDY)
    layers = out.past_key_values.layers
    assert len(layers) == len(quantizers) == 2
    for layer, (kq, vq) in zip(layers, quantizers):
        assert layer.keys.shape[-2] == prompt.shape[1] + 3  # the last token is not fed back
        assert _on_grid(layer.keys, kq) and _on_grid(layer.values, vq)
        assert layer.keys.unique().numel() > 16  # not a degenerate cache
    shorter = sim.model.generate(prompt, attention_mask=mask, **dict(_GREEDY, max_new_tokens=2))
    for old, new in zip(shorter.past_key_values.layers, layers):
        length = old.keys.shape[-2]
        assert torch.equal(old.keys, new.keys[..., :length, :])
        assert torch.equal(old.values, new.values[..., :length, :])
    fp = model.generate(prompt, attention_mask=mask, **_GREEDY).past_key_values.layers
    assert not all(_on_grid(layer.keys, kq) for layer, (kq, _) in zip(fp, quantizers))


@pytest.mark.parametrize("name", ["llama", "qwen2"])
def test_without_quantizers_the_sim_generates_as_the_float_model(name):
    sim, model, prompt, mask = _sim.__wrapped__(name)  # a sim of its own: it is changed
    ours = unquantized(sim).model.generate(prompt, attention_mask=mask, **_GREEDY)
    assert_same_generation(ours, model.generate(prompt, attention_mask=mask, **_GREEDY))


def test_a_graph_that_does_not_match_the_sim_is_refused():
    from transformers import DynamicCache
    from torchqsim.prepare.pipeline import prepare_captured
    from torchqsim.quantsim.generation import GenerationError, _sharing_modules
    sim, _, prompt, _ = _sim("llama", 8, None)
    qwen2, _ = zoo_models.qwen2()  # the same layers, but q/k/v projections with biases
    gm = prepare_captured(qwen2, {"input_ids": prompt, "past_key_values": DynamicCache(),
                                  "use_cache": True}, caches=True)
    with pytest.raises(GenerationError, match=r"'model.layers.0.self_attn.q_proj' \(Linear\) "
                       r".* does not match 'model.layers.0.self_attn.q_proj'"):
        _sharing_modules(sim.model, gm)


def test_calibration_through_generate():
    model, dummy = zoo_models.llama()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model, dict(dummy, use_cache=False), quant_scheme="tf",
                                   config_file="default")
    prompt = dummy["input_ids"][:, :5]
    kwargs = dict(attention_mask=torch.ones_like(prompt), max_new_tokens=3, do_sample=False,
                  pad_token_id=0)
    sim.compute_encodings(lambda m, _: m.generate(prompt, **kwargs), None)
    assert all(q.is_initialized() for _, q in sim.quantizers())
    cached = sim.model.generate(prompt, **kwargs)
    assert torch.equal(cached, sim.model.generate(prompt, use_cache=False, **kwargs))
