"""The onnxruntime target mode (torchqsim/runtime_target, docs/runtime_target.md).

Oracles: onnxruntime itself (default optimizations for the target mode, optimizations off for
the reference mode) on the exported ``_qdq.onnx``, and exact integer arithmetic (int64) for the
accumulation helpers. The model is a CNN with folded BatchNorms (how CNNs are deployed: each
Conv is then followed by ReLU or a quantizer, the patterns onnxruntime fuses), W8A8.
"""

import warnings

import onnxruntime as ort
import pytest
import torch
from torch import nn

from ort_optimized import run_optimized
from torchqsim import QuantizationSimModel
from torchqsim.ptq.batch_norm_fold import fold_all_batch_norms
from torchqsim.runtime_target import arithmetic as ar
from torchqsim.runtime_target import forwards


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()

    def forward(self, x):
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + x)


class SmallResNet(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU())
        self.blocks = nn.Sequential(Block(2 * c), Block(2 * c))
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(2 * c, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.down(self.stem(x)))), 1))


def _sim(config: str, param_bw: int = 8, output_bw: int = 8, fold: bool = True):
    torch.manual_seed(0)
    model = SmallResNet().eval()
    g = torch.Generator().manual_seed(5)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.copy_(1 + 0.1 * torch.randn(m.num_features, generator=g))
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    if fold:
        fold_all_batch_norms(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model, x, quant_scheme="tf", default_output_bw=output_bw,
                                   default_param_bw=param_bw, config_file=config)
    sim.compute_encodings(lambda m: m(x))
    return sim, x


def _onnxruntime(sim, x, level) -> tuple[torch.Tensor, list[str]]:
    """The exported ``_qdq.onnx`` in onnxruntime at `level`: its output and the node types of
    the graph onnxruntime optimized."""
    outputs, nodes = run_optimized(sim, x, level)
    return outputs[0], [n.op_type for n in nodes]


@pytest.mark.parametrize("config", ["default", "per_channel"])
def test_target_mode_equals_onnxruntime_default_optimizations_bit_for_bit(config):
    sim, x = _sim(config)
    fused = sim.set_target("onnxruntime")
    expected, types = _onnxruntime(sim, x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    assert types.count("QLinearConv") == 6 and "QLinearAdd" in types and "QGemm" in types
    assert len(fused) == 9  # 6 convs, 2 adds, the Linear
    with torch.no_grad():
        got = sim.model(x)
    assert torch.equal(got, expected)
    report = sim.compare_with_runtime(x, verbose=False)
    assert report.first_divergent is None and report.outputs == [1.0]
    assert len(report.tensors) >= 10 and all(t.bit_equal == 1.0 for t in report.tensors)


@pytest.mark.parametrize("fold", [True, False])
@pytest.mark.parametrize("config", ["default", "per_channel"])
def test_w8a16_onnxruntime_fuses_nothing_and_float_kernels_equal_it_bit_for_bit(config, fold):
    """16-bit activations: onnxruntime's CPU EP fuses no QLinear kernel (its selectors refuse
    16-bit types) and runs float Conv/Gemm in MLAS's fp32 summation order, which the target
    mode replicates (runtime_target/floatconv.py). With the BatchNorms kept (`fold` False)
    onnxruntime cannot fold them into Convs whose weights come from a DequantizeLinear: it runs
    the float Conv (its bias kept float: no QuantizeLinear reads its output), then its
    BatchNormalization kernel (x * scale + shift; torch rounds otherwise), which the target mode
    computes too. Every quantized tensor and the output equal onnxruntime's, where the reference
    (torch's order) is a step of the 16-bit grid off."""
    sim, x = _sim(config, output_bw=16, fold=fold)
    assert sim.set_target("onnxruntime") == []
    expected, types = _onnxruntime(sim, x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    assert not any(t.startswith("QLinear") or t == "QGemm" for t in types)
    assert types.count("Conv") == 6 and types.count("Gemm") == 1
    assert types.count("BatchNormalization") == (0 if fold else 5)
    with torch.no_grad():
        got = sim.model(x)
    assert torch.equal(got, expected)
    report = sim.compare_with_runtime(x, verbose=False)
    assert report.first_divergent is None and report.outputs == [1.0]
    assert len(report.tensors) >= 10 and all(t.bit_equal == 1.0 for t in report.tensors)
    sim.set_target("reference")
    assert sim.compare_with_runtime(x, verbose=False).first_divergent is not None


def test_reference_mode_differs_from_default_and_equals_optimizations_off():
    sim, x = _sim("per_channel")
    sim.set_target("onnxruntime")
    sim.set_target("reference")
    with torch.no_grad():
        got = sim.model(x)
    off, _ = _onnxruntime(sim, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert torch.equal(got, off)
    report = sim.compare_with_runtime(x, verbose=False)  # reference vs default optimizations
    assert report.first_divergent is not None  # the fused integer kernels round differently


def test_saturation_simulates_a_cpu_with_or_without_vnni():
    """``saturation=True`` simulates MLAS's int16 pair saturation on any host (here it changes
    the output), ``False`` the exact kernels; the default follows this CPU and matches
    onnxruntime (the test above)."""
    sim, x = _sim("default")
    outputs = {}
    for saturation in (True, False, None):
        sim.set_target("onnxruntime", saturation=saturation)
        with torch.no_grad():
            outputs[saturation] = sim.model(x)
    assert not torch.equal(outputs[True], outputs[False])
    assert torch.equal(outputs[None], outputs[ar.saturates_u8s8()])


def test_export_is_the_same_in_both_targets():
    sim, x = _sim("default")
    reference, _ = _onnxruntime(sim, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    sim.set_target("onnxruntime")
    exported, _ = _onnxruntime(sim, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert torch.equal(reference, exported)


def test_target_mode_refuses_training_and_gradients():
    sim, x = _sim("default")
    with pytest.raises(ValueError, match="target must be one of"):
        sim.set_target("tflite")
    sim.model.train()
    with pytest.raises(ValueError, match="train mode"):
        sim.set_target("onnxruntime")
    sim.model.eval()
    sim.set_target("onnxruntime")
    with pytest.raises(RuntimeError, match="torch.no_grad"):
        sim.model(x)
    sim.model.train()  # modules in train mode compute the reference semantics
    sim.model(x).sum().backward()


def test_requantize_rounds_half_to_even_and_clamps():
    acc = torch.tensor([5.0, 7.0, -5.0, 1000.0, -1000.0])
    got = ar.requantize(acc, torch.tensor(0.5), -128, 127)
    assert got.tolist() == [2.0, 4.0, -2.0, 127.0, -128.0]


def test_integer_accumulate_is_exact_beyond_fp32():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 65536, (3, 600), generator=g)
    w = torch.randint(-128, 128, (4, 600), generator=g)
    bias = torch.randint(-2 ** 20, 2 ** 20, (4,), generator=g)
    exact = x @ w.T + bias  # int64
    got = ar.integer_accumulate(torch.nn.functional.linear, x.float(), w.float(), bias.float(),
                                -1)
    assert torch.equal(got, exact.double().float())  # fp32 of the exact int, as MLAS converts
    x, w = torch.full((3, 600), 255), torch.randint(-128, 128, (4, 600), generator=g)
    w[0] = 127  # 255 * 127 * 600 > 2**24: the 4-bit halves path
    got = ar.integer_accumulate(torch.nn.functional.linear, x.float(), w.float(), bias.float(),
                                -1)
    assert torch.equal(got, (x @ w.T + bias).double().float())
    a, b = torch.randint(0, 256, (2, 3, 300), generator=g), torch.randint(-255, 256, (2, 300, 5))
    b[..., 0] = 255
    assert torch.equal(ar.exact_matmul(a.float(), b.float()), (a @ b).double().float())


def test_saturated_matmul_equals_int16_saturating_pairs():
    g = torch.Generator().manual_seed(0)
    cols = torch.randint(0, 256, (50, 71), generator=g)  # odd K: the last element pairs with 0
    w = torch.randint(-128, 128, (3, 71), generator=g)
    padded_cols, padded_w = torch.cat([cols, 0 * cols[:, :1]], 1), torch.cat([w, 0 * w[:, :1]], 1)
    pairs = (padded_cols[:, None, :] * padded_w[None]).reshape(50, 3, 36, 2).sum(-1)
    saturated = pairs.clamp(-32768, 32767).sum(-1)  # int64: what vpmaddubsw pairs give
    got = ar.saturated_matmul(cols.float(), w.float())
    assert torch.equal(got.long(), saturated) and not torch.equal(got.long(), cols @ w.T)
    with pytest.raises(RuntimeError, match="a must be uint8"):
        torch.ops.qsim.u8s8_pair_saturated_matmul(cols.float(), w.to(torch.int8))
    torch.library.opcheck(torch.ops.qsim.u8s8_pair_saturated_matmul,
                          (cols.to(torch.uint8), w.to(torch.int8)))


def test_saturated_convolution_pairs_kernel_positions_then_channels():
    """The QLinearConv accumulator with pair saturation (forced: this may be a VNNI CPU) against
    loops over output positions: each patch flattened as (kernel row, kernel column, channel),
    as onnxruntime reorders the filter, padded with the stored zero point, odd length 27."""
    g = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    stored = torch.randint(0, 256, (1, 3, 5, 5), generator=g)
    w = torch.randint(-128, 128, (4, 3, 3, 3), generator=g)
    bias, zero = torch.randint(-1000, 1000, (4,), generator=g), 77
    got = forwards._saturated_accumulate(conv, stored.float(), float(zero), w.float(),
                                         bias.float())
    padded = torch.nn.functional.pad(stored, (1, 1, 1, 1), value=zero)
    expected = torch.empty(1, 4, 3, 3, dtype=torch.int64)
    for o in range(4):
        wv = torch.cat([w[o].permute(1, 2, 0).flatten(), torch.zeros(1, dtype=torch.int64)])
        for i in range(3):
            for j in range(3):
                patch = padded[0, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].permute(1, 2, 0).flatten()
                pairs = (torch.cat([patch, torch.zeros(1, dtype=torch.int64)]) * wv).view(14, 2)
                expected[0, o, i, j] = (pairs.sum(1).clamp(-32768, 32767).sum()
                                        - zero * w[o].sum() + bias[o])
    assert torch.equal(got, expected.float())
    assert not torch.equal(got, torch.nn.functional.conv2d(
        stored.float() - zero, w.float(), bias.float(), stride=2, padding=1))  # it saturates


def test_quantized_bias_rounds_in_fp32_like_onnxruntime():
    bias = torch.tensor([0.30000001, -0.25])
    xs, ws = torch.tensor(0.1), torch.tensor([0.2, 0.5])
    expected = torch.round(bias / (xs * ws))  # Mul, Div, Round in fp32
    assert torch.equal(ar.quantized_bias(bias, xs, ws), expected)
    assert expected.tolist() == [15.0, -5.0]


@pytest.mark.parametrize("config", ["per_channel"])  # per-tensor: the CNN above; CI minutes
def test_zoo_convnext_target_mode_matches_onnxruntime_on_every_tensor(config):
    """HF ConvNeXt (tests/python/zoo): QLinearConv, QGemm (Linear on 3-D input, MatMul + Add
    fused into Gemm) and QLinearAdd. (The zoo's ConvNeXt now calibrates so that the reference
    mode matches onnxruntime's default too: the CNN above is the discriminating case.)"""
    pytest.importorskip("transformers")
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "zoo"))
    import checks
    import zoo_models
    model, inputs = zoo_models.convnext()
    sim = checks.calibrated_sim(model, inputs, 8, config_file=config)
    assert len(sim.set_target("onnxruntime")) == 10
    report = sim.compare_with_runtime(inputs, verbose=False)
    assert report.outputs == [1.0, 1.0] and report.first_divergent is None
    assert all(t.bit_equal == 1.0 for t in report.tensors) and len(report.tensors) >= 12
