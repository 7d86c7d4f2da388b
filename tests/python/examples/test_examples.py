"""The examples' workflows in reduced mode: the quickstart (digits CNN, FP32 -> W16A16 -> W8A16 ->
W8A8 -> W4A8 + QAT, export, onnxruntime check), the tensor-level quickstart_qdq error table, and
the transformer example's quantization path on a tiny randomly initialised BERT."""

import os
import sys

import pytest
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples"))


def test_quickstart_reduced_workflow(tmp_path):
    quickstart = pytest.importorskip("quickstart", reason="examples/quickstart.py needs "
                                     "scikit-learn (requirements.txt)")
    result = quickstart.run_workflow(quickstart.QUICK, str(tmp_path))
    acc = {row.precision: row.accuracy for row in result.rows}
    assert [row.precision for row in result.rows] == ["FP32", "W16A16", "W8A16", "W8A8",
                                                      "W4A8 PTQ", "W4A8 QAT"]
    assert acc["FP32"] > 90.0, acc  # the CNN learned the task
    assert abs(acc["W16A16"] - acc["FP32"]) <= 0.5, acc
    assert acc["FP32"] - acc["W8A8"] <= 2.0, acc
    assert acc["FP32"] - acc["W4A8 QAT"] <= 5.0, acc
    assert result.agreement >= 99.0
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p)
                                                  for p in result.exported.values())
    sizes = {row.precision: row.size_bytes for row in result.rows}
    assert sizes["W4A8 QAT"] < sizes["W8A8"] < sizes["W16A16"] < sizes["FP32"]


def test_model_size_counts_quantized_bitwidths():
    quickstart = pytest.importorskip("quickstart", reason="needs scikit-learn")
    from torchqsim.quantsim import QuantizationSimModel

    model = nn.Sequential(nn.Linear(4, 3))  # 12 weights, 3 biases
    sim = QuantizationSimModel(model, torch.randn(2, 4), default_param_bw=4,
                               config_file="per_channel")  # per_channel: bias unquantized
    assert quickstart.model_size_bytes(model) == 15 * 4
    assert quickstart.model_size_bytes(sim.model) == (12 * 4 + 3 * 32) // 8


def _tiny_encoder():
    transformers = pytest.importorskip("transformers", reason="transformers is not installed "
                                       "(pip install -r requirements.txt)")
    from transformer_minilm import SentenceEncoder

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64,
                                     max_position_embeddings=64, attn_implementation="eager")
    bert = transformers.BertModel(config, add_pooling_layer=False)
    return SentenceEncoder(bert).eval(), config


def test_transformer_every_linear_matmul_softmax_is_quantized():
    encoder, config = _tiny_encoder()
    from transformer_minilm import bucket_by_length, embed, quantize_encoder
    from torchqsim.nn import QuantizedLinear
    from torchqsim.nn.functional_modules import MatMul

    gen = torch.Generator().manual_seed(1)
    ids = [torch.randint(1, 120, (n,), generator=gen).tolist() for n in (5, 5, 9, 12, 12, 12)]
    batches = bucket_by_length(ids, 4)
    sim = quantize_encoder(encoder, batches, param_bw=8, output_bw=16)

    layers = config.num_hidden_layers
    modules = dict(sim.named_qmodules())
    linears = [m for m in modules.values() if isinstance(m, QuantizedLinear)]
    matmuls = [m for m in modules.values() if isinstance(m, MatMul)]
    softmaxes = [m for m in modules.values() if isinstance(m, nn.Softmax)]
    n_linear = sum(isinstance(m, nn.Linear) for m in encoder.modules())
    assert (len(linears), len(matmuls), len(softmaxes)) == (n_linear, 2 * layers, layers)
    for m in linears:
        weight_quantizer = m.param_quantizers["weight"]
        assert weight_quantizer is not None and weight_quantizer.bitwidth == 8
    for m in linears + matmuls + softmaxes:
        q = m.output_quantizers[0]
        assert q is not None and q.is_initialized() and q.bitwidth == 16
    assert set(sim.graph.unquantized_ops) <= {"zeros_like"}, sim.graph.unquantized_ops

    # the sim runs on lengths it was not traced with and stays close to FP32 at W8A16
    reference = embed(encoder, batches, "fp32")
    cosine = nn.functional.cosine_similarity(embed(sim.model, batches, "sim"), reference)
    assert cosine.min() > 0.99, cosine
    assert not torch.equal(embed(sim.model, batches, "sim"), reference)  # it does quantize


def test_quickstart_qdq_table():
    """examples/quickstart_qdq.py (issue 2's tensor-level example): its fake quantization is
    round-to-nearest-even on ``max|w| / qmax`` scales, and its error table orders as theory says."""
    import quickstart_qdq

    w = torch.randn(8, 32) * torch.logspace(-2, 0, 8).unsqueeze(1)
    for bits in (4, 8, 16):
        qmax = 2 ** (bits - 1) - 1
        for granularity, scale in (("per-tensor", w.abs().max() / qmax),
                                   ("per-channel", w.abs().amax(dim=1, keepdim=True) / qmax)):
            expected = torch.round(w / scale).clamp(-qmax - 1, qmax) * scale
            got = quickstart_qdq.fake_quantize(w, bits, granularity)
            assert torch.allclose(got, expected, rtol=0, atol=1e-6 * float(scale.max())), \
                (bits, granularity)

    rows = {(r[0], r[1]): r[2:] for r in quickstart_qdq.error_table(steps=50)}
    assert len(rows) == 6
    for g in quickstart_qdq.GRANULARITIES:  # about 6 dB per bit
        sqnr = {p: rows[p, g][1] for p in ("W4", "W8", "W16")}
        assert sqnr["W16"] - sqnr["W8"] > 40 and sqnr["W8"] - sqnr["W4"] > 20, (g, sqnr)
        assert rows["W16", g][3] < rows["W8", g][3] < rows["W4", g][3], g  # output MSE
    for p in quickstart_qdq.PRECISIONS:  # rows of very different magnitudes: per-channel wins
        assert rows[p, "per-channel"][1] > rows[p, "per-tensor"][1] + 5, p
