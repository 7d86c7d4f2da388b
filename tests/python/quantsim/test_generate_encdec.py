"""``sim.model.generate(...)`` on encoder-decoder models, the zoo's T5 and Whisper
(wrappers/quantsim/generation.py: the encoder runs through a graph sharing sim.model's modules, the decoder with
an ``EncoderDecoderCache``, wrappers/capture/caches.py).

Oracles:
- greedy generation with the cache equals generation without it on the same sim (every step
  runs the decoder over the whole sequence and recomputes the cross-attention keys and
  values): same tokens and bit-equal logits, with a left-padded batch;
- the first step's logits equal ``sim.model``'s (the calibrated graph, encoder included) on
  the prompt and the start token: the encoder ran quantized;
- every self-attention entry is on its ``k``/``v`` output quantizer's grid, every
  cross-attention entry on the grid of ``EncDecAttention.k``/``.v``, while the float model's
  cross-attention entries are not (the check can fail); the cross-attention entries, written
  once from the encoder's output, are bit for bit the same after 2 and after 4 steps;
- with every quantizer removed, the sim generates exactly what the float model generates;
- Whisper (audio features into the encoder): cached generation equals full recomputation,
  logits bit for bit, and its cross-attention entries are on ``encoder_attn``'s K/V grids.
"""

import functools
import warnings

import pytest
import torch

from generate_helpers import GREEDY, assert_same_generation, on_grid, unquantized, zoo_models
from torchqsim import QuantizationSimModel


@functools.lru_cache(maxsize=None)
def _t5():
    """A calibrated 8-bit sim of the zoo's T5, its float model, a prompt and a left-padded
    mask."""
    model, dummy = zoo_models.t5()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model, dict(dummy, use_cache=False), quant_scheme="tf",
                                   config_file="default")
    sim.compute_encodings(lambda m, _: m(**dummy, use_cache=False), None)
    mask = torch.ones_like(dummy["input_ids"])
    mask[0, :2] = 0
    return sim, model, dummy["input_ids"], mask


def _quantizers(sim, layer, attention):
    return [sim.model.get_submodule(f"decoder.block.{layer}.{attention}.{name}")
            .output_quantizers[0] for name in ("k", "v")]


def test_cached_generation_equals_full_recompute():
    sim, _, prompt, mask = _t5()
    cached = sim.model.generate(prompt, attention_mask=mask, **GREEDY)
    full = sim.model.generate(prompt, attention_mask=mask, use_cache=False, **GREEDY)
    assert type(cached.past_key_values).__name__ == "EncoderDecoderCache"
    assert torch.equal(cached.sequences, full.sequences)
    for step, (a, b) in enumerate(zip(cached.logits, full.logits)):
        assert torch.equal(a, b), (step, (a - b).abs().max())
    one = sim.model.generate(prompt, **dict(GREEDY, max_new_tokens=1))
    with torch.no_grad():
        first = sim.model(input_ids=prompt, decoder_input_ids=torch.zeros_like(prompt[:, :1]),
                          use_cache=False).logits[:, -1]
    assert torch.equal(one.logits[0], first)


def test_cache_entries_are_on_their_grids_and_cross_attention_is_written_once():
    sim, model, prompt, mask = _t5()
    runs = [sim.model.generate(prompt, attention_mask=mask, **dict(GREEDY, max_new_tokens=n))
            .past_key_values for n in (2, 4)]
    for i in range(2):
        for part, attention in (("self_attention_cache", "layer.0.SelfAttention"),
                                ("cross_attention_cache", "layer.1.EncDecAttention")):
            layer = getattr(runs[1], part).layers[i]
            kq, vq = _quantizers(sim, i, attention)
            assert on_grid(layer.keys, kq) and on_grid(layer.values, vq)
            assert layer.keys.unique().numel() > 16
        short, long = (run.cross_attention_cache.layers[i] for run in runs)
        assert long.keys.shape[-2] == prompt.shape[1]  # the encoder's length: written once
        assert torch.equal(short.keys, long.keys) and torch.equal(short.values, long.values)
    fp = model.generate(prompt, attention_mask=mask, **GREEDY).past_key_values
    assert not all(on_grid(fp.cross_attention_cache.layers[i].keys,
                           _quantizers(sim, i, "layer.1.EncDecAttention")[0]) for i in range(2))


def test_without_quantizers_the_sim_generates_as_the_float_model():
    sim, model, prompt, mask = _t5.__wrapped__()
    ours = unquantized(sim).model.generate(prompt, attention_mask=mask, **GREEDY)
    assert_same_generation(ours, model.generate(prompt, attention_mask=mask, **GREEDY))


def test_whisper_generates_with_its_cache():
    model, dummy = zoo_models.whisper("WhisperForConditionalGeneration")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model, dict(dummy, use_cache=False), quant_scheme="tf",
                                   config_file="default")
        sim.compute_encodings(lambda m, _: m(**dummy, use_cache=False), None)
        kwargs = dict(GREEDY, max_new_tokens=3)
        cached = sim.model.generate(dummy["input_features"], **kwargs)
        full = sim.model.generate(dummy["input_features"], use_cache=False, **kwargs)
    assert torch.equal(cached.sequences, full.sequences)
    for a, b in zip(cached.logits, full.logits):
        assert torch.equal(a, b)
    layer = cached.past_key_values.cross_attention_cache.layers[0]
    kq, vq = (sim.model.get_submodule(f"model.decoder.layers.0.encoder_attn.{name}_proj")
              .output_quantizers[0] for name in ("k", "v"))
    assert on_grid(layer.keys, kq) and on_grid(layer.values, vq)
    assert layer.keys.unique().numel() > 16
