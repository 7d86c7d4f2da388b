"""`QuantizedMultiheadAttention` against ``nn.MultiheadAttention``.

Oracles: torch's module (all slots None: bit for bit, autograd enabled so torch runs its
documented slow path), and torch's own ``F.multi_head_attention_forward`` (through
``torch.func.functional_call``) on pure-torch quantize-dequantized inputs and parameters.
"""

import copy

import pytest
import torch
from torch import nn

import torchqsim.nn as qnn
from asserts import assert_same
from wrapper_reference import narrow_quantizer, ref_qdq

E, HEADS, L, S, N = 8, 2, 4, 5, 3


def _gen():
    return torch.Generator().manual_seed(0)


def _mha(**kwargs):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(E, HEADS, **kwargs)
    with torch.no_grad():  # nonzero biases, so their quantizers matter
        for name, p in mha.named_parameters():
            if "bias" in name:
                p.copy_(torch.randn(p.shape, generator=_gen()) * 0.1)
    return mha


def _inputs(batch_first, self_attention, kdim=E, batched=True):
    g = _gen()
    shape = (lambda n, d: (N, n, d) if batch_first else (n, N, d)) if batched else \
        (lambda n, d: (n, d))
    query = torch.randn(shape(L, E), generator=g)
    if self_attention:
        return query, query, query
    return query, torch.randn(shape(S, kdim), generator=g), torch.randn(shape(S, kdim), generator=g)


def _masks(kind, src, batched=True):
    g = _gen()
    key_padding = torch.rand((N, src) if batched else (src,), generator=g) < 0.3
    key_padding[..., 0] = False  # no fully masked row
    float_mask = torch.randn(L, src, generator=g)
    bool_3d = torch.rand(N * HEADS, L, src, generator=g) < 0.3
    bool_3d[..., 0] = False
    return {"none": {}, "key_padding": {"key_padding_mask": key_padding},
            "float_2d": {"attn_mask": float_mask},
            "bool_3d_and_key_padding": {"attn_mask": bool_3d, "key_padding_mask": key_padding},
            }[kind]


def _same_outputs(got, expected):
    assert_same(got[0], expected[0], "attn_output")
    if expected[1] is None:
        assert got[1] is None
    else:
        assert_same(got[1], expected[1], "attn_weights")


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("masks", ["none", "key_padding", "float_2d", "bool_3d_and_key_padding"])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("self_attention", [True, False])
def test_disabled_quantizers_give_torch_output_exactly(batch_first, masks, need_weights,
                                                       self_attention):
    mha = _mha(batch_first=batch_first)
    wrapper = qnn.to_quantized(mha, "attn")
    q, k, v = _inputs(batch_first, self_attention)
    kwargs = dict(_masks(masks, L if self_attention else S), need_weights=need_weights)
    _same_outputs(wrapper(q, k, v, **kwargs), mha(q, k, v, **kwargs))


@pytest.mark.parametrize("config", ["kdim_vdim", "bias_kv_zero_attn", "unbatched", "causal",
                                    "per_head_weights"])
def test_disabled_quantizers_give_torch_output_exactly_for_other_configurations(config):
    kdim = 6 if config == "kdim_vdim" else E
    mha = _mha(kdim=kdim, vdim=kdim, add_bias_kv=config == "bias_kv_zero_attn",
               add_zero_attn=config == "bias_kv_zero_attn")
    wrapper = qnn.to_quantized(mha, "attn")
    q, k, v = _inputs(False, config == "causal", kdim, batched=config != "unbatched")
    kwargs = {"key_padding_mask": _masks("key_padding", S, config != "unbatched")[
        "key_padding_mask"]} if config in ("unbatched", "bias_kv_zero_attn") else {}
    if config == "causal":
        kwargs = {"attn_mask": nn.Transformer.generate_square_subsequent_mask(L),
                  "is_causal": True}
    if config == "per_head_weights":
        kwargs = {"average_attn_weights": False}
    for need_weights in (True, False):
        _same_outputs(wrapper(q, k, v, need_weights=need_weights, **kwargs),
                      mha(q, k, v, need_weights=need_weights, **kwargs))


def _quantize_inputs_and_weights(wrapper, mha, q, k, v):
    for i, x in enumerate((q, k, v)):
        wrapper.input_quantizers[i] = narrow_quantizer(x)
    for name, p in mha.named_parameters(recurse=False):
        wrapper.param_quantizers[name] = narrow_quantizer(p, (p.shape[0], 1) if p.dim() == 2
                                                          else ())
    wrapper.out_proj.param_quantizers["weight"] = narrow_quantizer(mha.out_proj.weight)
    wrapper.out_proj.param_quantizers["bias"] = narrow_quantizer(mha.out_proj.bias)


def _reference(mha, wrapper, args, kwargs):
    """torch's forward on reference-qdq'd inputs and parameters; outputs reference-qdq'd."""
    params = {n: ref_qdq(wrapper.param_quantizers[n], p)
              for n, p in mha.named_parameters(recurse=False)}
    params.update({f"out_proj.{n}": ref_qdq(wrapper.out_proj.param_quantizers[n], p)
                   for n, p in mha.out_proj.named_parameters()})
    args = tuple(ref_qdq(qz, a) for qz, a in zip(wrapper.input_quantizers, args))
    out, weights = torch.func.functional_call(mha, params, args, kwargs)
    return ref_qdq(wrapper.output_quantizers[0], out), ref_qdq(wrapper.output_quantizers[1],
                                                               weights)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
def test_quantized_inputs_weights_and_outputs_match_torch_on_qdq_values(need_weights,
                                                                        batch_first):
    mha = _mha(batch_first=batch_first)
    ref_mha = copy.deepcopy(mha)
    wrapper = qnn.to_quantized(mha, "attn")
    q, k, v = _inputs(batch_first, self_attention=False)
    kwargs = dict(_masks("float_2d", S), need_weights=need_weights)
    fp = mha(q, k, v, **kwargs)
    _quantize_inputs_and_weights(wrapper, mha, q, k, v)
    wrapper.output_quantizers[0] = narrow_quantizer(fp[0])
    if need_weights:
        wrapper.output_quantizers[1] = narrow_quantizer(fp[1])
    got = wrapper(q, k, v, **kwargs)
    expected = _reference(ref_mha, wrapper, (q, k, v), kwargs)
    _same_outputs(got, expected)
    assert not torch.equal(got[0], fp[0])

    cotangent = torch.randn(got[0].shape, generator=_gen())
    (got[0] * cotangent).sum().backward()
    (expected[0] * cotangent).sum().backward()
    for (name, p), (_, p_ref) in zip(mha.named_parameters(), ref_mha.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert_same(p.grad + 0.0, p_ref.grad + 0.0, f"grad of {name}")


def test_softmax_output_quantizer_quantizes_the_attention_probabilities():
    mha = _mha()
    wrapper = qnn.to_quantized(mha, "attn")
    q, k, v = _inputs(False, self_attention=False)
    _, fp_weights = mha(q, k, v, average_attn_weights=False)
    wrapper.intermediate_quantizers["probs"] = narrow_quantizer(fp_weights)
    _, weights = wrapper(q, k, v, average_attn_weights=False)
    assert_same(weights, ref_qdq(wrapper.intermediate_quantizers["probs"], fp_weights),
                "attn_weights")


def test_unfused_path_equals_torchs_need_weights_path_and_every_internal_slot_acts():
    mha = _mha(batch_first=True)
    wrapper = qnn.to_quantized(mha, "attn")
    q, k, v = _inputs(True, self_attention=True)
    kwargs = _masks("key_padding", L)
    for name in ("scores", "probs"):  # identity quantizers force the explicit bmm/softmax path
        wrapper.intermediate_quantizers[name] = nn.Identity()
    expected = mha(q, k, v, **kwargs)
    assert_same(wrapper(q, k, v, need_weights=False, **kwargs)[0], expected[0], "unfused")
    context = narrow_quantizer(torch.randn(64))
    for slot in ("q", "k", "v", "scores", "probs", "context"):
        wrapper.intermediate_quantizers.update({n: None for n in wrapper.INTERMEDIATES})
        wrapper.out_proj.input_quantizers[0] = None
        if slot == "context":
            wrapper.out_proj.input_quantizers[0] = context
        else:
            wrapper.intermediate_quantizers[slot] = narrow_quantizer(torch.randn(64), bitwidth=4)
        assert not torch.equal(wrapper(q, k, v, **kwargs)[0], expected[0]), slot
