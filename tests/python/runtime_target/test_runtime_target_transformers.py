"""The onnxruntime target mode on transformers (docs/runtime_target.md): HF BERT and Llama.

Oracle: onnxruntime itself, default optimizations, on the exported ``_qdq.onnx``. The models are
the zoo's BERT and Llama (tests/python/zoo/zoo_models.py) at hidden size 64 and 32 tokens, so
that every fused kernel sees enough values for a rounding difference to show. At W8A8
onnxruntime runs QGemm / QLinearMatMul (Linears), QLinearMatMul (attention), QLinearAdd
(residuals, RoPE) and QLinearMul (RMSNorm, RoPE, SwiGLU); the target mode replicates each of
them (the test checks it fuses exactly the modules onnxruntime fuses) and equals onnxruntime bit
for bit. At W8A16 onnxruntime fuses no activation kernel but rewrites each 8-bit weight
DequantizeLinear -> MatMul into MatMulNBits with int8 compute, and runs LayerNorm, Softmax and
GELU as float kernels; the target mode replicates all of them (every quantized tensor and both
outputs bit-equal). The
reference semantics differ from onnxruntime on every output; the small attention model at the end isolates
QLinearMatMul of two activations and QLinearMul.
"""

import collections
import os
import sys
import tempfile
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from ort_optimized import needs_cpu, run_optimized
from torchqsim import QuantizationSimModel
from torchqsim._forward import run_model

pytest.importorskip("transformers")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "zoo"))
import zoo_models  # noqa: E402

_CONFIG = dict(vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=128, max_position_embeddings=64)
_FUSED = ("QGemm", "QLinearMatMul", "QLinearAdd", "QLinearMul")


def _model(name: str):
    """The model, its Linears re-initialized as torch does (uniform): HF's normal(0, 0.02)
    init puts few weights in the tails of the 8-bit grid, where MLAS's int16 pair saturation
    and the integer rounding show; trained weights have such tails."""
    if name == "bert":
        model = zoo_models._hf("BertConfig", "BertModel", **_CONFIG)
    else:
        model = zoo_models._hf("LlamaConfig", "LlamaForCausalLM", **_CONFIG,
                               num_key_value_heads=2, head_dim=16)
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.reset_parameters()
    return model


def _sim(name: str, config: str, output_bw: int):
    inputs = {"input_ids": zoo_models._ids(2, 32, 128)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(_model(name), inputs, quant_scheme="tf", default_param_bw=8,
                                   default_output_bw=output_bw, config_file=config)
    sim.compute_encodings(lambda m: run_model(m, inputs))
    sim.model.eval()
    return sim, inputs


def _onnxruntime(sim, inputs):
    """Outputs of the exported model in onnxruntime (default options), and, per fused
    kernel, the quantizer slot of its output scale (the module it replaces)."""
    outputs, nodes = run_optimized(sim, inputs)
    fused = {n.input[7 if n.op_type == "QGemm" else 6].split(".output_quantizers")[0]
             for n in nodes if n.op_type in _FUSED}
    types = collections.Counter(n.op_type for n in nodes)
    return outputs, fused, types


def _outputs(sim, inputs):
    with torch.no_grad():
        out = run_model(sim.model, inputs)
    values = out.values() if isinstance(out, dict) else out
    return [v for v in values if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize("name,config", [("bert", "default"), ("llama", "per_channel")])
def test_w8a8_target_mode_equals_onnxruntime_default_bit_for_bit(name, config):
    sim, inputs = _sim(name, config, 8)
    reference = _outputs(sim, inputs)
    fused = sim.set_target("onnxruntime")
    expected, ort_fused, types = _onnxruntime(sim, inputs)
    assert set(fused) == ort_fused  # the same modules run fused integer kernels
    kinds = {"bert": {"QGemm", "QLinearMatMul", "QLinearAdd"},
             "llama": {"QLinearMatMul", "QLinearAdd", "QLinearMul"}}[name]
    assert all(types[k] > 0 for k in kinds)
    got = _outputs(sim, inputs)
    assert len(got) == len(expected) >= 1
    for g, e in zip(got, expected):
        assert torch.equal(g, e)
    assert not any(torch.equal(r, e) for r, e in zip(reference, expected))  # the reference is not


def test_w8a8_llama_every_quantized_tensor_is_bit_equal():
    sim, inputs = _sim("llama", "default", 8)
    sim.set_target("onnxruntime")
    report = sim.compare_with_runtime(inputs, verbose=False)
    assert report.first_divergent is None and report.outputs == [1.0]
    assert len(report.tensors) > 60 and all(t.bit_equal == 1.0 for t in report.tensors)


class _Attention(nn.Module):
    """Two Linears, their attention-style product, its softmax and elementwise products (same
    shape and broadcast): QLinearMatMul of two activations, QLinearSoftmax and QLinearMul, on
    enough values (16k per output) that the reference semantics' rounding differs from
    onnxruntime's kernels."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 64)

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        scores = torch.matmul(a, b.transpose(1, 2))
        return scores, torch.softmax(scores[..., :49], -1), a * b, a * b[:, :1]


def test_qlinearmatmul_softmax_and_mul_are_exact_where_the_reference_is_not():
    torch.manual_seed(0)
    x = torch.randn(8, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(_Attention().eval(), x, quant_scheme="tf")
    sim.compute_encodings(lambda m: m(x))
    with torch.no_grad():
        reference = sim.model(x)
    assert sim.set_target("onnxruntime") == ["a", "b", "module_matmul", "module_softmax",
                                             "module_mul", "module_mul_1"]
    with torch.no_grad():
        got = sim.model(x)
    with tempfile.TemporaryDirectory() as d:
        session = ort.InferenceSession(sim.export(d, "m", x)["qdq_onnx"],
                                       providers=["CPUExecutionProvider"])
        expected = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    for r, g, e in zip(reference, got, expected):
        e = torch.from_numpy(np.array(e))
        assert torch.equal(g, e) and not torch.equal(r, e)


@needs_cpu("avx512_vnni", "MatMulNBits")
@pytest.mark.parametrize("config", ["default", "per_channel"])
def test_w8a16_every_quantized_tensor_and_output_is_bit_equal(config):
    """16-bit activations: onnxruntime rewrites each encoder Linear (3-D input, 8-bit weight)
    into MatMulNBits with int8 compute and runs LayerNorm, Softmax and GELU as its float kernels
    (the pooler, a 2-D Gemm, and the attention MatMuls in float too); the target mode
    replicates the MatMulNBits and the float kernels (test_runtime_target_matmulnbits.py,
    test_runtime_target_floatops.py): every quantized tensor and both outputs bit-equal, where
    the reference is 117-130 steps of the 16-bit grid off (before the float kernels: 1-2 steps
    from the first LayerNorm on)."""
    sim, inputs = _sim("bert", config, 16)
    reference = _outputs(sim, inputs)
    fused = sim.set_target("onnxruntime")
    expected, ort_fused, types = _onnxruntime(sim, inputs)
    assert ort_fused == set() and types["MatMulNBits"] == 12 == len(fused)
    assert types["LayerNormalization"] == 5 and types["Softmax"] == 2 and types["Gelu"] == 2
    assert all(".layer." in name and "LayerNorm" not in name for name in fused)
    report = sim.compare_with_runtime(inputs, verbose=False)
    assert len(report.tensors) > 30 and all(t.bit_equal == 1.0 for t in report.tensors)
    assert report.first_divergent is None
    got = _outputs(sim, inputs)
    assert all(torch.equal(g, e) for g, e in zip(got, expected))
    scale = sim.model.get_submodule("encoder.layer.1.output.LayerNorm").output_quantizers[0]
    ref_steps = ((reference[0] - expected[0]).abs().max() / scale.get_scale()).item()
    assert ref_steps > 30  # measured: the reference 117 / 130 steps off


@needs_cpu("avx512_vnni", "MatMulNBits")
def test_w8a16_llama_every_quantized_tensor_is_bit_equal():
    """16-bit activations on the Llama: MatMulNBits for its 15 Linears, onnxruntime's float
    Softmax and SiLU (Sigmoid then Mul: MLAS's logistic) replicated; RMSNorm's float Pow,
    ReduceMean, Sqrt, Reciprocal and Mul and RoPE's float ops match torch's here. Every quantized
    tensor and the logits bit-equal, where the reference differs (without the SiLU kernel,
    measured: SiLU 1 step on 0.06 %, 3 steps downstream)."""
    sim, inputs = _sim("llama", "default", 16)
    reference = _outputs(sim, inputs)
    fused = sim.set_target("onnxruntime")
    expected, _, types = _onnxruntime(sim, inputs)
    assert types["MatMulNBits"] == 15 == len(fused) and types["Sigmoid"] == 2
    report = sim.compare_with_runtime(inputs, verbose=False)
    assert len(report.tensors) > 70 and report.first_divergent is None
    assert torch.equal(_outputs(sim, inputs)[0], expected[0])
    assert not torch.equal(reference[0], expected[0])


@pytest.mark.parametrize("config", [
    pytest.param("default", marks=needs_cpu("avx512_vnni", "MatMulNBits")), "per_channel"])
def test_w8a16_gpt2_addmm_and_tied_lm_head_equal_onnxruntime(config):
    """The zoo's GPT-2 at 16-bit activations: onnxruntime rewrites its Conv1D ``addmm``s (2-D
    MatMul + Add) into MatMulNBits, and its tied lm_head only with per-channel weights (its
    weight reaches the MatMul through a Transpose; per-tensor it stays a float MatMul); LayerNorm,
    Softmax, ``gelu_new``'s Tanh and the attention MatMuls run as float kernels. The target mode
    replicates all of it: every quantized tensor and the logits bit-equal, where the reference
    differs (before: the ``addmm``s 250-356 steps off, the lm_head 182, the attention MatMuls
    1 step)."""
    torch.manual_seed(1)
    model, inputs = zoo_models.gpt2()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model.eval(), inputs, quant_scheme="tf", default_param_bw=8,
                                   default_output_bw=16, config_file=config)
    sim.compute_encodings(lambda m: run_model(m, inputs))
    sim.model.eval()
    reference = _outputs(sim, inputs)
    fused = sim.set_target("onnxruntime")
    expected, _, types = _onnxruntime(sim, inputs)
    assert types["MatMulNBits"] == len(fused) == (9 if config == "per_channel" else 8)
    assert types["Tanh"] == 2 and ("lm_head" in fused) == (config == "per_channel")
    report = sim.compare_with_runtime(inputs, verbose=False)
    assert len(report.tensors) > 30 and report.first_divergent is None
    assert torch.equal(_outputs(sim, inputs)[0], expected[0])
    assert not torch.equal(reference[0], expected[0])


def test_w8a8_whisper_every_quantized_tensor_is_bit_equal():
    """The zoo's Whisper: its attention scales the scores by 1.0, which onnxruntime removes
    (NoopElimination), so its Softmaxes run as QLinearSoftmax; the target mode follows."""
    import checks
    model, inputs = zoo_models.whisper()
    sim = checks.calibrated_sim(model, inputs, 8)
    sim.model.eval()
    fused = sim.set_target("onnxruntime")
    assert {"module_softmax", "module_softmax_2"} <= set(fused)
    report = sim.compare_with_runtime(inputs, verbose=False)
    assert report.first_divergent is None and report.outputs == [1.0, 1.0]
    assert len(report.tensors) > 40 and all(t.bit_equal == 1.0 for t in report.tensors)


@pytest.mark.parametrize("name,output_bw,config", [
    ("gemma", 8, "default"), ("swin", 8, "default"),
    pytest.param("gemma", 16, "default", marks=needs_cpu("avx512_vnni", "MatMulNBits")),
    ("phi3", 16, "per_channel"), ("resnet", 16, "default"), ("mobilenetv2", 16, "per_channel")])
def test_zoo_every_quantized_tensor_is_bit_equal(name, output_bw, config):
    """Zoo models whose onnxruntime graphs needed a rule or kernel of their own, every quantized
    tensor bit-equal (docs/runtime_target.md §3): at W8A8, Gemma (its RMSNorm ends in
    ``type_as``, a cast onnxruntime's QLinearMatMul fusion sees through; were 66 tensors off, up
    to 16 steps) and Swin (window padding between its norm's DequantizeLinear and q/k/v, which
    onnxruntime runs as float Gemms; were 24 off, up to 3 steps); at W8A16, Gemma's tanh GELU,
    Phi-3's SiLU of a chunk, the HF ResNet's unfolded BatchNorms (were up to 3 steps off) and
    ReduceMean pooler, MobileNetV2's 1x1 Conv on a 1x1 map."""
    model, inputs = getattr(zoo_models, name)()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model, inputs, quant_scheme="tf", default_param_bw=8,
                                   default_output_bw=output_bw, config_file=config)
    sim.compute_encodings(lambda m: run_model(m, inputs))
    sim.model.eval()
    sim.set_target("onnxruntime")
    report = sim.compare_with_runtime(inputs, verbose=False)
    assert report.first_divergent is None and all(o == 1.0 for o in report.outputs)
    assert len(report.tensors) >= 10 and all(t.bit_equal == 1.0 for t in report.tensors)
