"""bf16 and fp16 models in an in-place sim (issue 15 items 1 and 2): a tiny Llama
(``transformers.LlamaConfig``) at W8A16, W4A16 and W16A16.

Oracles: the model's own parameter storages (in place: no copy, no conversion); the pure-torch
qdq formula on each quantizer's input cast to fp32, rounded to the model dtype (every quantizer of
the model, caught by forward hooks); the same quantizer on the fp32 cast of its input (the fp32
path); the sim of the fp32 cast of the model (weight encodings); a quantizer without cache (the
eval weight cache); torch's profiler (no fp32 copy of a weight anywhere in calibration or
evaluation); the FP model (W16A16 error).
"""

import copy

import pytest
import torch

from asserts import assert_same, big_copies
from reference import expand_qparam
from torchqsim.quantization.quantizer import QuantizeDequantize
from torchqsim.quantsim import QuantizationSimModel

HALF = [torch.bfloat16, torch.float16]
BITS = {"W8A16": (8, 16), "W4A16": (4, 16), "W16A16": (16, 16)}
VOCAB, HIDDEN = 64, 32


def _llama(dtype):
    import transformers
    cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                   intermediate_size=64, max_position_embeddings=64)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # norm weights spread around 1, as after training
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape))
    return model.to(dtype)


def _batch(shape=(2, 8)):
    return {"input_ids": torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(1))}


def _sim(model, bits, **kwargs):
    w, a = BITS[bits]
    batch = _batch()
    sim = QuantizationSimModel(model, batch, quant_scheme="tf", default_param_bw=w,
                               default_output_bw=a, config_file="per_channel", in_place=True,
                               **kwargs)
    sim.compute_encodings(lambda m: m(**batch))
    return sim


def _quantizers(sim):
    return [(n, m) for n, m in sim.model.named_modules() if isinstance(m, QuantizeDequantize)]


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_in_place_sim_shares_every_weight_and_converts_nothing(dtype):
    model = _llama(dtype)
    storages = {id(p): (p.data_ptr(), p.dtype) for p in model.parameters()}
    with torch.no_grad():
        before = model(**_batch()).logits
    sim = _sim(model, "W8A16")
    own = {id(p) for _, q in _quantizers(sim) for p in q.parameters()}
    for name, p in sim.model.named_parameters():
        if id(p) in own:
            assert p.dtype == torch.float32, f"{name}: encodings are fp32"
        else:
            assert storages.get(id(p)) == (p.data_ptr(), dtype), f"{name}: not the model's own"
    assert {id(p) for p in model.parameters()} <= {id(p) for p in sim.model.parameters()}
    with torch.no_grad():
        assert_same(model(**_batch()).logits, before, "the FP model is left as it was")


def _capture(sim):
    """(quantizer name, quantizer, input, output) of every quantizer call of one forward (a
    quantizer with hooks is always called, never bypassed by an in-place write)."""
    calls, handles = [], []
    for name, q in _quantizers(sim):
        handles.append(q.register_forward_hook(
            lambda m, args, out, n=name: calls.append((n, m, args[0].detach().clone(),
                                                       out.detach().clone()))))
    try:
        sim.model(**_batch())
    finally:
        for h in handles:
            h.remove()
    return calls


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_every_quantizer_keeps_the_dtype_and_computes_the_fp32_formula(dtype, bits):
    sim = _sim(_llama(dtype), bits)
    sim.model.eval()
    calls = _capture(sim)
    assert len(calls) >= len(_quantizers(sim)) > 20
    in_dtype = 0
    for name, q, x, y in calls:
        # the sim converts nothing: each quantizer returns its input's dtype (the model's, or
        # fp32 where the model itself computes in fp32: HF's RMSNorm statistics, softmax)
        assert y.dtype == x.dtype in (dtype, torch.float32), f"{name}: {x.dtype} in, {y.dtype} out"
        assert x.dtype == dtype or ".param_quantizers." not in name, f"{name}: weight {x.dtype}"
        in_dtype += x.dtype == dtype
        with torch.no_grad():
            scale, zp, _, _, axis, block = q._qparams(tuple(x.shape))
            assert scale.dtype == torch.float32, f"{name}: scale {scale.dtype}"
            s = expand_qparam(scale, x.shape, axis, block)
            z = expand_qparam(zp, x.shape, axis, block)
            want = ((torch.clamp(torch.round(x.float() / s) + z, q.qmin, q.qmax) - z) * s).to(x.dtype)
            assert_same(y, want, f"{name} (formula)")
            assert_same(y, q(x.float()).to(x.dtype), f"{name} (fp32 path)")
    assert in_dtype > len(calls) // 2


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_weight_encodings_equal_those_of_the_fp32_model(dtype):
    model = _llama(dtype)
    as_fp32 = copy.deepcopy(model).float()  # the same values: the cast is exact
    half, full = dict(_quantizers(_sim(model, "W4A16"))), dict(_quantizers(_sim(as_fp32, "W4A16")))
    names = [n for n in half if ".param_quantizers." in n]
    assert len(names) >= 14 and set(names) <= set(full)
    for name in names:
        assert_same(half[name].min, full[name].min, f"{name} min")
        assert_same(half[name].max, full[name].max, f"{name} max")


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_w16a16_stays_close_to_the_fp_model(dtype):
    model = _llama(dtype)
    with torch.no_grad():
        fp = model(**_batch()).logits.float()
        sim = _sim(model, "W16A16")
        got = sim.model(**_batch()).logits
    assert got.dtype == dtype
    error = float((got.float() - fp).norm() / fp.norm())
    assert error < 2e-2, f"W16A16 relative error {error:.2e}"


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_cached_eval_weights_are_bit_identical_and_follow_weight_changes(dtype):
    sim = _sim(_llama(dtype), "W4A16", weight_cache=True)
    sim.model.eval()
    module = sim.model.get_submodule("model.layers.0.mlp.up_proj")
    q, w = module.param_quantizers["weight"], module.weight
    with torch.no_grad():
        first = q(w)
        assert q(w) is first, "eval-mode weight quantization is cached"
        fresh = copy.deepcopy(q)
        fresh.cache_eval_output = False
        assert_same(first, fresh(w), "cached result")
        w.mul_(0.5)
        assert_same(q(w), fresh(w), "after a weight change")
        q.set_range(-0.01, 0.01)
        fresh.set_range(-0.01, 0.01)
        assert_same(q(w), fresh(w), "after an encoding change")
        assert q(w).dtype == dtype


def test_in_place_sims_hold_no_cached_weights_unless_asked_and_compute_the_same():
    model = _llama(torch.bfloat16)
    batch = _batch()
    plain, cached = _sim(model, "W4A16"), _sim(copy.deepcopy(model), "W4A16", weight_cache=True)
    weight_quantizers = [q for n, q in _quantizers(plain) if ".param_quantizers." in n]
    assert weight_quantizers and not any(q.cache_eval_output for q in weight_quantizers)
    with torch.no_grad():
        got = [plain.model.eval()(**batch).logits for _ in range(2)]
        want = cached.model.eval()(**batch).logits
        assert_same(got[0], want, "uncached")
        assert_same(got[1], cached.model(**batch).logits, "cached, second call")
    assert not any("_output_cache" in q.__dict__ for q in weight_quantizers)
    with pytest.raises(TypeError, match="weight_cache"):
        _sim(model, "W4A16", weight_cache="yes")


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_no_copy_of_any_weight_in_calibration_or_evaluation(dtype):
    model = _llama(dtype)
    smallest = min(p.numel() for p in model.parameters() if p.dim() == 2)
    batch = _batch((1, 4))
    assert batch["input_ids"].numel() * max(VOCAB, 64) < smallest  # every activation is smaller
    sim = QuantizationSimModel(model, batch, quant_scheme="tf", default_param_bw=4,
                               default_output_bw=16, config_file="per_channel", in_place=True)

    def calibrate_and_evaluate():
        sim.compute_encodings(lambda m: m(**batch))
        with torch.no_grad():
            sim.model.eval()(**batch)

    assert big_copies(calibrate_and_evaluate, smallest) == []


@pytest.mark.parametrize("per_row", [False, True], ids=["per-tensor", "per-row"])
def test_embedding_without_cache_quantizes_only_the_looked_up_rows(per_row):
    from torch.profiler import ProfilerActivity, profile

    import torchqsim.nn as qnn
    from torchqsim.quantization.param_quantizer import ParamQuantizeDequantize
    torch.manual_seed(0)
    emb = qnn.QuantizedEmbedding.from_module(torch.nn.Embedding(50, 8).to(torch.bfloat16)).eval()
    w = emb.weight.detach().float()
    q = ParamQuantizeDequantize((50, 1) if per_row else (), 4, symmetric=False)
    q.set_range(w.amin(1, keepdim=True), w.amax(1, keepdim=True)) if per_row else \
        q.set_range(w.min(), w.max())
    q.cache_eval_output = False
    emb.param_quantizers["weight"] = q.requires_grad_(False).eval()
    idx = torch.tensor([[3, 49, 3], [0, 7, 21]])
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        got = emb(idx)
    with torch.no_grad():
        want = torch.nn.functional.embedding(idx, q(emb.weight))
    assert_same(got, want, "rows quantized after the lookup")
    shapes = [e.input_shapes[0] for e in prof.events() if e.name == "qsim::quantize_dequantize"]
    assert shapes == [[6, 8]] if per_row else shapes == [[2, 3, 8]], shapes
