"""Shared by the generate tests (test_generate*.py): tiny calibrated sims of the zoo's decoders
with a prompt and a left-padded mask, the KV quantizers of a sim, the check that a tensor is on a
quantizer's grid, a sim with its quantizers removed and the comparison of two generations.

Example::

    >>> sim_, model, prompt, mask = sim("llama")  # doctest: +SKIP
    >>> sim_.model.generate(prompt, attention_mask=mask, **GREEDY)  # doctest: +SKIP
"""

import functools
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "zoo"))

import zoo_models  # noqa: E402
from torchqsim import QuantizationSimModel  # noqa: E402
from torchqsim.functional import quantize_dequantize  # noqa: E402
from torchqsim.quantsim.attention import (attention_quantizers,  # noqa: E402
                                          set_attention_precision)

GREEDY = dict(max_new_tokens=4, do_sample=False, output_logits=True,
              return_dict_in_generate=True, pad_token_id=0)
#: The zoo's decoders, and a Mistral whose 6-token window slides while a 5-token prompt grows.
BUILDERS = dict(zoo_models.HF, mistral_sliding=lambda: zoo_models.mistral(sliding_window=6))


@functools.lru_cache(maxsize=None)
def sim(name, bw=8, kv_bw=None, dtype=torch.float32):
    """A calibrated sim of the model `name` in `dtype` (shared by the tests that do not change
    it; ``sim.__wrapped__`` builds a new one), its float model, a prompt and a left-padded
    attention mask."""
    model, dummy = BUILDERS[name]()
    model.to(dtype)
    ids = dummy["input_ids"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = QuantizationSimModel(model, dict(dummy, use_cache=False), quant_scheme="tf",
                                     default_output_bw=bw, default_param_bw=bw,
                                     config_file="default")
    if kv_bw is not None:
        set_attention_precision(built, key=kv_bw, value=kv_bw)
    built.compute_encodings(lambda m, _: m(input_ids=ids, use_cache=False), None)
    mask = torch.ones_like(ids[:, :5])
    mask[0, :2] = 0  # left padding in the first sequence
    return built, model, ids[:, :5], mask


def on_grid(x, q):
    """Whether `x` is a fixed point of quantizer `q`'s quantize-dequantize."""
    return torch.equal(quantize_dequantize(x, q.get_scale(), q.get_zero_point(), q.qmin,
                                           q.qmax), x)


def kv_quantizers(sim_):
    """(key quantizer, value quantizer) per attention layer of `sim_`."""
    return [(sim_.model.get_submodule(a.key).output_quantizers[0],
             sim_.model.get_submodule(a.value).output_quantizers[0])
            for a in attention_quantizers(sim_)]


def unquantized(sim_):
    """`sim_` with every quantizer removed (in place: give it a sim of its own)."""
    sim_.exclude_layers_from_quantization([n for n, _ in sim_.named_qmodules()])
    assert not list(sim_.quantizers())
    return sim_


def assert_same_generation(ours, theirs):
    """Two ``generate`` results (``return_dict_in_generate``) with equal tokens and logits."""
    assert torch.equal(ours.sequences, theirs.sequences)
    for a, b in zip(ours.logits, theirs.logits):
        assert torch.equal(a, b)
