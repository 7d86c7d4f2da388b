"""``sim.model.generate(...)`` with transformers' ``StaticCache`` and sliding-window caches
(wrappers/capture/caches.py, wrappers/quantsim/generation.py), on the zoo's Llama and Qwen2, a
Mistral whose 6-token sliding window slides while a 5-token prompt grows by 5 tokens, and a
sim built from a bfloat16 Llama.

Oracles:
- greedy generation with the cache (``cache_implementation="static"``, a ``StaticCache`` the
  caller passes, a ``DynamicCache`` made without a config, and the dynamic sliding-window
  cache transformers picks for Mistral) equals
  generation without a cache on the same sim (every step recomputes the whole sequence):
  same tokens and bit-equal logits, also across the step where a static sliding window
  becomes full and generation switches to another graph;
- with every quantizer removed, the sim generates exactly what the float model generates with
  the same cache;
- every filled cache entry is on its K (after RoPE) or V quantizer's grid, while the float
  model's entries are not (the check can fail); entries written at one step are bit for bit
  the same in a longer generation (by position, for sliding windows);
- a graph that fails a shape guard after writing into a static cache leaves the cache as it
  was (a toy that writes, then branches): the next graph gives the float model's output and
  cache (fails without the restore: the length would count the failed call's tokens);
- a sim moved to another dtype after it was built, another cache class and offloading are
  refused with the class named.
"""

import warnings

import pytest
import torch
from transformers import DynamicCache, StaticCache
from transformers.cache_utils import MtpCache

from generate_helpers import GREEDY, assert_same_generation, kv_quantizers, on_grid, sim, unquantized
from torchqsim import QuantizationSimModel
from torchqsim.quantsim.generation import GenerationError


def _generate(generate, config, prompt, mask, cache, **kwargs):
    """`generate` with the cache `cache` names: None (transformers' default), "static"
    (``cache_implementation``) or "passed" (a ``StaticCache`` given by the caller)."""
    if cache == "passed":
        kwargs["past_key_values"] = StaticCache(config=config, max_cache_len=16)
    elif cache is not None:
        kwargs["cache_implementation"] = cache
    return generate(prompt, attention_mask=mask, **dict(GREEDY, **kwargs))


def _same_as_full_recompute(sim_, config, prompt, mask, cache, **kwargs):
    """The cached generation, after checking it against generation without a cache."""
    out = _generate(sim_.model.generate, config, prompt, mask, cache, **kwargs)
    full = sim_.model.generate(prompt, attention_mask=mask, use_cache=False,
                               **dict(GREEDY, **kwargs))
    assert torch.equal(out.sequences, full.sequences)
    assert out.sequences.shape[1] == prompt.shape[1] + len(full.logits)
    for step, (a, b) in enumerate(zip(out.logits, full.logits)):
        assert torch.equal(a, b), (step, (a - b).abs().max())
    return out


def _held(layer):
    """(position of the first entry held, keys held, values held) of a filled cache layer, in
    the order of their positions (static layers keep them at the front of their buffers)."""
    seen = {"StaticLayer": lambda: int(layer.cumulative_length),
            "StaticSlidingWindowLayer": lambda: layer.cumulative_length_int,
            "DynamicSlidingWindowLayer": lambda: layer.cumulative_length}[type(layer).__name__]()
    n = min(seen, layer.keys.shape[-2])
    return seen - n, layer.keys[..., :n, :], layer.values[..., :n, :]


@pytest.mark.parametrize("cache", ["static", "passed"])
@pytest.mark.parametrize("name", ["llama", "qwen2"])
def test_static_cache_generation_equals_full_recompute(name, cache):
    sim_, model, prompt, mask = sim(name, 8, None)
    out = _generate(sim_.model.generate, model.config, prompt, mask, cache)
    full = sim_.model.generate(prompt, attention_mask=mask, use_cache=False, **GREEDY)
    assert type(out.past_key_values) is StaticCache
    assert [type(layer).__name__ for layer in out.past_key_values.layers] == ["StaticLayer"] * 2
    assert torch.equal(out.sequences, full.sequences)
    for step, (a, b) in enumerate(zip(out.logits, full.logits)):
        assert torch.equal(a, b), (step, (a - b).abs().max())


def test_a_dynamic_cache_made_without_config_gets_its_layers():
    sim_, _, prompt, mask = sim("llama", 8, None)
    cache = DynamicCache()  # no layers until the first update
    out = sim_.model.generate(prompt, attention_mask=mask, past_key_values=cache, **GREEDY)
    full = sim_.model.generate(prompt, attention_mask=mask, use_cache=False, **GREEDY)
    assert out.past_key_values is cache and len(cache.layers) == 2
    assert torch.equal(out.sequences, full.sequences)
    for a, b in zip(out.logits, full.logits):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bw, kv_bw", [(8, None), (16, 8)])
def test_static_cache_entries_are_on_the_kv_grids_and_do_not_drift(bw, kv_bw):
    sim_, model, prompt, mask = sim("llama", bw, kv_bw)
    quantizers = kv_quantizers(sim_)
    out = _generate(sim_.model.generate, model.config, prompt, mask, "static")
    layers = out.past_key_values.layers
    for layer, (kq, vq) in zip(layers, quantizers):
        start, keys, values = _held(layer)
        assert start == 0 and keys.shape[-2] == prompt.shape[1] + 3  # the last token is not fed
        assert _on_grid_pair(keys, values, kq, vq)
        assert keys.unique().numel() > 16  # not a degenerate cache
        assert not layer.keys[..., keys.shape[-2]:, :].any()  # the rest is still unused
    shorter = _generate(sim_.model.generate, model.config, prompt, mask, "static",
                        max_new_tokens=2).past_key_values.layers
    for old, new in zip(shorter, layers):
        _, keys, values = _held(old)
        length = keys.shape[-2]
        assert torch.equal(keys, new.keys[..., :length, :])
        assert torch.equal(values, new.values[..., :length, :])
    fp = _generate(model.generate, model.config, prompt, mask, "static").past_key_values.layers
    assert not all(_on_grid_pair(*_held(layer)[1:], kq, vq)
                   for layer, (kq, vq) in zip(fp, quantizers))


def _on_grid_pair(keys, values, kq, vq):
    return on_grid(keys, kq) and on_grid(values, vq)


@pytest.mark.parametrize("cache, layer_class", [(None, "DynamicSlidingWindowLayer"),
                                                ("static", "StaticSlidingWindowLayer")])
def test_sliding_window_generation(cache, layer_class):
    sim_, model, prompt, mask = sim("mistral_sliding", 8, None)
    runs = {new: _same_as_full_recompute(sim_, model.config, prompt, mask, cache,
                                         max_new_tokens=new) for new in (3, 5)}
    layers = runs[5].past_key_values.layers
    assert [type(layer).__name__ for layer in layers] == [layer_class] * 2
    for layer, (kq, vq), old in zip(layers, kv_quantizers(sim_), runs[3].past_key_values.layers):
        start, keys, values = _held(layer)
        assert start > 0 and keys.shape[-2] < prompt.shape[1] + 4  # the window has slid
        assert _on_grid_pair(keys, values, kq, vq)
        old_start, old_keys, old_values = _held(old)
        shared = old_start + old_keys.shape[-2] - start  # positions held by both runs
        assert shared >= 2
        assert torch.equal(old_keys[..., -shared:, :], keys[..., :shared, :])
        assert torch.equal(old_values[..., -shared:, :], values[..., :shared, :])


@pytest.mark.parametrize("name, cache", [("llama", "static"), ("mistral_sliding", None),
                                         ("mistral_sliding", "static")])
def test_without_quantizers_the_sim_generates_as_the_float_model(name, cache):
    sim_, model, prompt, mask = sim.__wrapped__(name)  # a sim of its own: it is changed
    ours = _generate(unquantized(sim_).model.generate, model.config, prompt, mask, cache,
                     max_new_tokens=5)
    theirs = _generate(model.generate, model.config, prompt, mask, cache, max_new_tokens=5)
    assert_same_generation(ours, theirs)


@pytest.mark.parametrize("cache", [None, "static"])
def test_a_sim_of_a_bfloat16_model_generates(cache):
    sim_, model, prompt, mask = sim("llama", 8, None, torch.bfloat16)
    out = _same_as_full_recompute(sim_, model.config, prompt, mask, cache)
    # softmax(dtype=float32) on bf16 scores stays a function, so attention_quantizers finds no
    # attention here: the values are checked on v_proj's output grid, by name
    for i, layer in enumerate(out.past_key_values.layers):
        vq = sim_.model.get_submodule(f"model.layers.{i}.self_attn.v_proj").output_quantizers[0]
        values = _held(layer)[2] if cache else layer.values
        assert values.dtype == torch.bfloat16 and on_grid(values, vq)
        assert values.unique().numel() > 16


def test_a_dtype_move_after_building_is_refused():
    sim_, _, prompt, mask = sim.__wrapped__("llama")
    sim_.model.to(torch.bfloat16)
    with pytest.raises(RuntimeError):  # why: sim.model's own graph holds float32 casts
        sim_.model(input_ids=prompt, use_cache=False)
    with pytest.raises(GenerationError, match="moved from torch.float32 to torch.bfloat16"):
        sim_.model.generate(prompt, attention_mask=mask, **GREEDY)


def test_unsupported_caches_are_named():
    sim_, _, prompt, mask = sim("llama", 8, None)
    for cache, message in ((MtpCache(), "MtpCache is not supported .* supported: DynamicCache "
                                        "and StaticCache"),
                           (DynamicCache(offloading=True), "DynamicCache with offloading")):
        with pytest.raises(TypeError, match=message):
            sim_.model.generate(prompt, attention_mask=mask, past_key_values=cache, **GREEDY)


class _WritesThenBranches(torch.nn.Module):
    """Writes its keys into a static cache, then branches on the query length: a graph that
    fails this shape guard has already written into the cache."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)

    def forward(self, x, past_key_values=None):
        keys = self.proj(x).unsqueeze(1)
        if past_key_values is not None:
            keys, _ = past_key_values.update(keys, keys, 0)
        return {"y": keys * 2 if x.shape[1] > 1 else keys * 3,
                "past_key_values": past_key_values}


def test_a_cache_written_before_a_failed_guard_is_restored():
    from transformers import LlamaConfig
    from torchqsim.quantsim.generation import _Dispatch
    torch.manual_seed(0)
    model, x = _WritesThenBranches().eval(), torch.randn(1, 6, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim_ = QuantizationSimModel(model, {"x": x[:, :3]}, config_file="default")
    sim_.exclude_layers_from_quantization([n for n, _ in sim_.named_qmodules()])
    dispatch = _Dispatch(sim_.model, model)
    config = LlamaConfig(num_hidden_layers=1, num_attention_heads=1, num_key_value_heads=1,
                         hidden_size=4, head_dim=4)
    ours, theirs = (StaticCache(config=config, max_cache_len=8) for _ in range(2))
    for chunk in (x[:, :3], x[:, 3:4], x[:, 4:6]):  # the third takes the other branch
        got, expected = dispatch(chunk, past_key_values=ours), model(chunk, theirs)
        assert torch.equal(got["y"], expected["y"])
    assert [len(found) for found in dispatch.graphs.values()] == [1, 2]
    assert int(ours.layers[0].cumulative_length) == 6
    assert torch.equal(ours.layers[0].keys, theirs.layers[0].keys)
