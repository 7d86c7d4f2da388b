"""QuantizationSimModel: construction, calibration, accuracy at W16A16 / W8A8 / FP16, mixed
precision, exclusion, encodings and state_dict round trips, QAT (STE and range learning)."""

import copy
import io
import math
import re

import pytest
import torch
from torch import nn

from torchqsim.quantization import QuantizeDequantize
from torchqsim.quantization.float_quantizer import FloatQuantizeDequantize
from torchqsim.quantization.scheme import QuantScheme
from torchqsim.quantsim import QuantizationSimModel


class Cnn(nn.Module):
    """Conv-BN-ReLU blocks, a residual add, pooling, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        z = torch.relu(self.bn2(self.conv2(y)) + y)
        return self.fc(torch.flatten(self.gap(self.pool(z)), 1))


class Block(nn.Module):
    """A transformer block: attention by matmul + softmax, LayerNorm, GELU MLP."""

    def __init__(self, d=32, heads=4):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x))))


def cnn():
    torch.manual_seed(0)
    model = Cnn()
    with torch.no_grad():  # non-trivial BN statistics
        model.train()(torch.randn(64, 3, 12, 12))
    return model.eval(), torch.randn(8, 3, 12, 12)


def block():
    torch.manual_seed(0)
    return Block().eval(), torch.randn(4, 6, 32)


MODELS = {"cnn": cnn, "block": block}


def calibrated(make, **kw):
    model, x = make()
    sim = QuantizationSimModel(model, x, **kw)
    sim.compute_encodings(lambda m, data: [m(b) for b in data], [x, x * 0.5])
    return model, x, sim


def sqnr_db(ref, y):
    return float(10 * torch.log10(ref.pow(2).mean() / (ref - y).pow(2).mean()))


@pytest.mark.parametrize("name", MODELS)
def test_w16a16_matches_fp32(name):
    model, x, sim = calibrated(MODELS[name], quant_scheme="tf", default_output_bw=16,
                               default_param_bw=16)
    with torch.no_grad():
        ref, y = model(x), sim.model(x)
    assert float((y - ref).norm() / ref.norm()) < 1e-3


# SQNR of the W8A8 output against FP32: 8-bit grids give ~40 dB per tensor; errors accumulate
# over the ~10 quantized tensors of each model, so 25 dB is a loose but meaningful bound.
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("scheme", ["tf", "tf_enhanced"])
def test_w8a8_sqnr(name, scheme):
    model, x, sim = calibrated(MODELS[name], quant_scheme=scheme)
    with torch.no_grad():
        ref, y = model(x), sim.model(x)
    assert sqnr_db(ref, y) > 25.0
    assert not torch.equal(ref, y)                        # quantization does happen


def test_fp16_simulation_equals_fp16_rounding_of_each_quantized_tensor():
    model, x = block()
    sim = QuantizationSimModel(model, x, default_output_bw=16, default_param_bw=16,
                               default_data_type="float")
    quantizers = dict(sim.quantizers())
    assert quantizers and all(isinstance(q, FloatQuantizeDequantize) for q in quantizers.values())
    sim.compute_encodings(lambda m, _: m(x), None)
    with torch.no_grad():
        ref, y = model(x), sim.model(x)
    assert 0 < float((y - ref).abs().max()) < 1e-2


def test_supergroup_conv_relu_has_no_quantizer_in_between():
    model, x = cnn()
    sim = QuantizationSimModel(model, x, quant_scheme="tf")
    m = sim.model
    relu = m.get_submodule(next(op.name for op in sim.graph.ops
                                if op.inputs and getattr(op.inputs[0], "op", None) is not None
                                and op.inputs[0].op.name == "bn1"))
    assert m.conv1.output_quantizers[0] is None and m.bn1.output_quantizers[0] is None
    assert relu.input_quantizers[0] is None and relu.output_quantizers[0] is not None


def test_disabled_quantizers_pass_data_through_exactly():
    model, x = cnn()
    sim = QuantizationSimModel(model, x)
    sim.exclude_layers_from_quantization([name for name, _ in sim.named_qmodules()])
    assert not list(sim.quantizers())
    with torch.no_grad():
        assert torch.equal(sim.model(x), model(x))
    assert sim.quantizer_encodings_dict()["excluded_layers"]


def test_constructor_validates_arguments():
    model, x = cnn()
    with pytest.raises(ValueError, match="valid: .*tf_enhanced"):
        QuantizationSimModel(model, x, quant_scheme="nope")
    with pytest.raises(ValueError, match="default_param_bw=1"):
        QuantizationSimModel(model, x, default_param_bw=1)
    with pytest.raises(ValueError, match="default_output_bw=17"):
        QuantizationSimModel(model, x, default_output_bw=17)
    with pytest.raises(ValueError, match="only 16"):
        QuantizationSimModel(model, x, default_output_bw=8, default_data_type="float")
    with pytest.raises(ValueError, match="default_data_type"):
        QuantizationSimModel(model, x, default_data_type="fp")
    with pytest.raises(FileNotFoundError, match="presets"):
        QuantizationSimModel(model, x, config_file="no_such_preset")
    sim = QuantizationSimModel(model, x)
    with pytest.raises(RuntimeError, match="already holds quantizers"):
        QuantizationSimModel(sim.model, x)


def test_original_model_untouched_and_in_place_shares_parameters():
    model, x = cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sim = QuantizationSimModel(model, x)
    assert sim.model.conv1.weight is not model.conv1.weight
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert type(model.conv1) is nn.Conv2d
    shared = QuantizationSimModel(model, x, in_place=True)
    assert shared.model.conv1.weight is model.conv1.weight


def test_compute_encodings_reports_quantizers_that_saw_no_data():
    model, x = cnn()
    sim = QuantizationSimModel(model, x)
    with pytest.raises(RuntimeError, match=r"fc\.output_quantizers\.0: module 'fc' was not "
                                           r"called by forward_pass_callback"):
        sim.compute_encodings(lambda m: None)
    assert sim.model.fc.param_quantizers["weight"].is_initialized()  # from the weight itself


def test_compute_encodings_restores_mode_and_params_need_no_callback():
    model, x = cnn()
    sim = QuantizationSimModel(model, x)
    sim.model.train()
    modes = []
    sim.compute_encodings(lambda m, _: (modes.append((m.training, torch.is_grad_enabled())),
                                        m(x)), None)
    assert modes == [(False, False)] and sim.model.training
    assert all(q.is_initialized() for _, q in sim.quantizers())
    # each module gets its own mode back: a module the user put in eval mode stays there
    frozen_bn = next(m for m in sim.model.modules() if isinstance(m, nn.BatchNorm2d)).eval()
    sim.compute_encodings(lambda m, _: m(x), None)
    assert sim.model.training and not frozen_bn.training


def test_set_precision_by_type_name_and_param():
    model, x = block()
    sim = QuantizationSimModel(model, x)
    sim.set_precision(nn.Linear, activation=16, param={"weight": 4})
    sim.set_precision("ln1", param="fp16")
    assert sim.model.fc1.output_quantizers[0].bitwidth == 16
    assert sim.model.fc1.param_quantizers["weight"].bitwidth == 4
    assert isinstance(sim.model.ln1.param_quantizers["weight"], FloatQuantizeDequantize)
    sim.set_precision(model.fc2, activation="int8")       # a module of the original model
    assert sim.model.fc2.output_quantizers[0].bitwidth == 8
    with pytest.raises(ValueError, match="has no parameter"):
        sim.set_precision(nn.Linear, param={"gamma": 8})
    with pytest.raises(ValueError, match="2..16"):
        sim.set_precision(nn.Linear, activation=32)
    sim.compute_encodings(lambda m, _: m(x), None)
    assert "int4" in sim.summary() and "float16" in str(sim)


def _outputs(sim, x):
    with torch.no_grad():
        return sim.model(x)


def test_load_encodings_round_trip_bit_for_bit(tmp_path):
    model, x, sim = calibrated(cnn, quant_scheme="tf_enhanced", config_file="per_channel")
    path = sim.save_encodings_to_json(tmp_path, "cnn")
    other = QuantizationSimModel(model, x, quant_scheme="tf", config_file="per_channel")
    other.load_encodings(path)
    assert torch.equal(_outputs(sim, x), _outputs(other, x))
    assert other.quantizer_encodings_dict() == sim.quantizer_encodings_dict() | {
        "quantizer_args": other.quantizer_encodings_dict()["quantizer_args"]}


def test_load_encodings_freeze_strict_partial():
    model, x, sim = calibrated(cnn, quant_scheme="tf")
    enc = sim.quantizer_encodings_dict()
    other = QuantizationSimModel(model, x, quant_scheme="tf")
    other.load_encodings(enc, freeze=True)
    other.compute_encodings(lambda m, _: m(x * 10), None)   # frozen: not overwritten
    assert torch.equal(_outputs(sim, x), _outputs(other, x))
    with pytest.raises(RuntimeError, match="no quantized module 'nope'"):
        other.load_encodings({"activation_encodings": {"nope": {"output": {"0": {}}}}})
    other.load_encodings({"param_encodings": {"nope.weight": [{"bitwidth": 8}]}}, strict=False)
    only_fc = {"param_encodings": {"fc.weight": enc["param_encodings"]["fc.weight"]}}
    other.load_encodings(only_fc, partial=False)
    assert [n for n, _ in other.quantizers()] == ["fc.param_quantizers.weight"]
    with pytest.raises(ValueError, match=r"param_encodings\['fc.weight'\]: scale\[0\] must be > 0"):
        other.load_encodings({"param_encodings": {"fc.weight": [
            {"bitwidth": 8, "dtype": "int", "is_symmetric": "True", "scale": -1.0,
             "offset": -128}]}})



def test_load_encodings_malformed_sections_name_their_json_path():
    model, x = cnn()
    sim = QuantizationSimModel(model, x)
    for bad, where in (({"activation_encodings": [1]}, "activation_encodings:"),
                       ({"activation_encodings": {"fc": [1]}}, "activation_encodings['fc']:"),
                       ({"activation_encodings": {"fc": {"output": [1]}}},
                        "activation_encodings['fc']['output']:")):
        with pytest.raises(ValueError, match=re.escape(where) + " expected a JSON object"):
            sim.load_encodings(bad)
    with pytest.raises(TypeError, match="encodings must be a dict or a path"):
        sim.load_encodings([1])

def test_load_encodings_from_scale_offset_and_changed_bitwidth():
    model, x = cnn()
    sim = QuantizationSimModel(model, x, quant_scheme="tf")
    sim.load_encodings({"activation_encodings": {"fc": {"output": {"0": {
        "bitwidth": 4, "dtype": "int", "is_symmetric": "False", "scale": 0.5, "offset": -3}}}}},
        partial=True)
    q = sim.model.fc.output_quantizers[0]
    assert q.bitwidth == 4
    enc = q.get_encoding()
    assert float(enc.scale) == 0.5 and int(enc.zero_point) == 3
    assert float(enc.min) == -1.5 and float(enc.max) == 6.0


def test_state_dict_round_trip_bit_for_bit():
    model, x, sim = calibrated(block, quant_scheme="tf_enhanced")
    buffer = io.BytesIO()
    torch.save(sim.model.state_dict(), buffer)
    other = QuantizationSimModel(model, x, quant_scheme="tf_enhanced")
    other.model.load_state_dict(torch.load(io.BytesIO(buffer.getvalue())))
    assert torch.equal(_outputs(sim, x), _outputs(other, x))


def _regression(seed=0):
    """A small MLP pre-trained in FP32 on a regression task (QAT starts from a trained model)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 1))
    x = torch.randn(256, 8)
    y = torch.sin(x[:, :1] * 2) + x[:, 1:2] * x[:, 2:3]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return model.eval(), x, y


def _train(sim, x, y, steps=50, lr=1e-3):
    opt = torch.optim.Adam(sim.model.parameters(), lr=lr)
    sim.model.train()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(sim.model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_qat_post_training_scheme_lowers_loss_w4a8():
    model, x, y = _regression()
    sim = QuantizationSimModel(model, x, quant_scheme="tf", default_param_bw=4,
                               default_output_bw=8, config_file="default")  # per-tensor weights
    sim.compute_encodings(lambda m, _: m(x), None)
    act = sim.model.get_submodule("1").output_quantizers[0]
    act_range = (act.min.clone(), act.max.clone())
    assert not act.min.requires_grad
    w_q = sim.model.get_submodule("0").param_quantizers["weight"]
    w_range = (w_q.min.clone(), w_q.max.clone())
    losses = _train(sim, x, y)
    assert losses[-1] < 0.5 * losses[0]
    assert torch.equal(act.min, act_range[0]) and torch.equal(act.max, act_range[1])
    w = sim.model.get_submodule("0").weight
    assert w.grad is not None and float(w.grad.abs().sum()) > 0
    # weight encodings stay as calibrated during training (aimet-torch 2.42) ...
    assert torch.equal(w_q.min, w_range[0]) and torch.equal(w_q.max, w_range[1])
    sim.compute_param_encodings()               # ... until re-encoded from the trained weights
    # 4-bit symmetric min-max (aimet.md 2.3): scale = max(max / 7, -min / 8), max = 7 * scale
    expected = 7 * max(float(w.detach().max()) / 7, -float(w.detach().min()) / 8)
    assert math.isclose(float(w_q.max), expected, rel_tol=1e-5)


@pytest.mark.parametrize("scheme", ["range_learning_tf_init", "range_learning_tf_enhanced_init"])
def test_qat_range_learning_learns_min_max(scheme):
    model, x, y = _regression()
    sim = QuantizationSimModel(model, x, quant_scheme=scheme, default_param_bw=4)
    assert QuantScheme.parse(scheme).is_range_learning
    sim.compute_encodings(lambda m, _: m(x), None)
    act = sim.model.get_submodule("1").output_quantizers[0]
    before = act.max.detach().clone()
    assert act.max.requires_grad
    losses = _train(sim, x, y, steps=100)  # tf_enhanced's unsnapped init falls slower at first
    assert losses[-1] < 0.8 * losses[0]
    assert not torch.equal(act.max.detach(), before)
    assert sim.model.get_submodule("0").weight.grad.abs().sum() > 0


def test_summary_lists_every_enabled_quantizer():
    model, x, sim = calibrated(cnn, quant_scheme="tf", config_file="per_channel")
    text = sim.summary()
    assert text == str(sim)
    assert len(text.splitlines()) == 2 + len(list(sim.quantizers()))
    assert "conv1" in text and "symmetric" in text and "16 (axis 0)" in text


def test_quantizers_are_quantize_dequantize_modules_named_by_path():
    model, x = cnn()
    sim = QuantizationSimModel(model, x)
    names = dict(sim.quantizers())
    assert isinstance(names["conv1.param_quantizers.weight"], QuantizeDequantize)
    assert sim.model.get_submodule("conv1.param_quantizers.weight") is \
        names["conv1.param_quantizers.weight"]


def test_compute_param_encodings_gives_each_weight_its_encoding_and_a_shared_quantizer_the_last():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.Linear(6, 6))
    sim = QuantizationSimModel(model, torch.randn(2, 4), config_file="per_channel")
    layers = [sim.model.get_submodule(n) for n in ("0", "2", "3")]
    layers[2].param_quantizers["weight"] = layers[1].param_quantizers["weight"]  # shared
    with torch.no_grad():
        layers[2].weight.copy_(torch.randn(6, 6) * 5)  # a wider range than layer 2's weight
    sim.compute_param_encodings()
    for layer, weight_of in zip(layers, (layers[0], layers[2], layers[2])):
        q = layer.param_quantizers["weight"]
        alone = copy.deepcopy(q)  # (its analyzer: the sim's default scheme, tf_enhanced)
        with alone.compute_encodings(process_group=False):
            alone(weight_of.weight.detach())
        assert torch.equal(q.min, alone.min) and torch.equal(q.max, alone.max)
