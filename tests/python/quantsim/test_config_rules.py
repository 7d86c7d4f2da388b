"""Config application (torchqsim.quantsim.config_rules through QuantizationSimModel): one test per
section and per precedence rule, and the layouts of AIMET's own config files."""

import pytest
import torch
from torch import nn

from torchqsim.quantization.grid import GridKind
from torchqsim.quantization.param_quantizer import is_frozen
from torchqsim.quantsim import QuantizationSimModel
from aimet_configs import aimet_config
from config_helpers import ACT_ON, config, precision



class ConvReluFc(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 4 * 4, 5)
        self.sig = nn.Sigmoid()

    def forward(self, x):
        return self.sig(self.fc(torch.flatten(self.relu(self.conv(x)), 1)))


X = torch.randn(2, 3, 6, 6)


def sim_of(model, cfg):
    return QuantizationSimModel(model, X, quant_scheme="tf", config_file=cfg)


def on(slot):
    return slot is not None


def test_defaults_enable_outputs_and_weights_only(tmp_path):
    sim = sim_of(ConvReluFc(), config(tmp_path, ACT_ON))
    m = sim.model
    assert [on(q) for q in (m.conv.output_quantizers[0], m.relu.output_quantizers[0],
                            m.fc.output_quantizers[0])] == [True, True, True]
    assert not on(m.conv.input_quantizers[0]) and not on(m.fc.input_quantizers[0])
    assert m.conv.param_quantizers["weight"].symmetric
    assert not m.conv.output_quantizers[0].symmetric     # activations asymmetric by default
    assert m.conv.param_quantizers["bias"] is None       # bias off unless re-enabled


def test_defaults_is_symmetric_and_strict_and_unsigned(tmp_path):
    d = dict(ACT_ON, ops={"is_output_quantized": True, "is_symmetric": True},
             strict_symmetric=True)
    sim = sim_of(ConvReluFc(), config(tmp_path, d))
    assert sim.model.relu.output_quantizers[0].grid.kind is GridKind.STRICT_SYMMETRIC
    assert sim.model.conv.param_quantizers["weight"].grid.kind is GridKind.STRICT_SYMMETRIC
    d = dict(ACT_ON, unsigned_symmetric=True)
    sim = sim_of(ConvReluFc(), config(tmp_path, d))
    assert sim.model.conv.param_quantizers["weight"].grid.kind is GridKind.UNSIGNED_SYMMETRIC
    assert sim.model.relu.output_quantizers[0].grid.kind is GridKind.ASYMMETRIC  # not symmetric: unaffected


def test_params_section_overrides_defaults(tmp_path):
    sim = sim_of(ConvReluFc(), config(tmp_path, ACT_ON, params={
        "bias": {"is_quantized": True}, "weight": {"is_symmetric": False}}))
    assert on(sim.model.conv.param_quantizers["bias"])
    assert not sim.model.fc.param_quantizers["weight"].symmetric


def test_op_type_output_false_also_disables_consumer_inputs(tmp_path):
    d = dict(ACT_ON, ops={"is_output_quantized": True, "is_input_quantized": True})
    sim = sim_of(ConvReluFc(), config(tmp_path, d, op_type={"Relu": {"is_output_quantized":
                                                                      False}}))
    assert sim.model.relu.output_quantizers[0] is None
    assert sim.model.fc.input_quantizers[0] is None          # consumer of relu (via flatten)
    assert on(sim.model.relu.input_quantizers[0])            # other inputs keep the default


def test_op_type_params_apply_to_that_op_only(tmp_path):
    sim = sim_of(ConvReluFc(), config(tmp_path, ACT_ON, params={"weight": {"is_symmetric": True}},
                                      op_type={"Gemm": {"params": {"weight": {
                                          "is_quantized": False}}}}))
    assert sim.model.fc.param_quantizers["weight"] is None
    assert on(sim.model.conv.param_quantizers["weight"])


def test_op_type_is_symmetric_covers_the_neighbourhood(tmp_path):
    sim = sim_of(ConvReluFc(), config(tmp_path, ACT_ON, op_type={"Relu": {"is_symmetric": True}}))
    assert sim.model.relu.output_quantizers[0].symmetric
    assert sim.model.conv.output_quantizers[0].symmetric     # producer of relu's input
    assert not sim.model.fc.output_quantizers[0].symmetric


def test_encoding_constraints_fix_and_freeze_the_output(tmp_path):
    sim = sim_of(ConvReluFc(), config(tmp_path, ACT_ON, op_type={
        "Sigmoid": {"encoding_constraints": {"min": 0.0, "max": 1.0}}}))
    q = sim.model.sig.output_quantizers[0]
    assert is_frozen(q) and not q.min.requires_grad
    sim.compute_encodings(lambda m, _: m(X * 100), None)
    assert float(q.min) == 0.0 and float(q.max) == 1.0


def test_per_channel_default_and_op_type_override(tmp_path):
    d = dict(ACT_ON, per_channel_quantization=True)
    sim = sim_of(ConvReluFc(), config(tmp_path, d, op_type={"Gemm": {
        "per_channel_quantization": False}}))
    assert sim.model.conv.param_quantizers["weight"].shape == (4, 1, 1, 1)
    assert sim.model.fc.param_quantizers["weight"].shape == ()


def test_per_channel_conv_transpose_uses_axis_1(tmp_path):
    model = nn.Sequential(nn.ConvTranspose2d(3, 6, 3), nn.Sigmoid())
    sim = sim_of(model, config(tmp_path, dict(ACT_ON, per_channel_quantization=True)))
    q = sim.model.get_submodule("0").param_quantizers["weight"]
    assert q.shape == (1, 6, 1, 1)
    sim.compute_encodings(lambda m, _: m(X), None)
    w = sim.model.get_submodule("0").weight
    assert torch.allclose(q.get_encoding().max.flatten(),
                          w.detach().abs().amax(dim=(0, 2, 3)), rtol=1e-2)


def test_supergroup_removes_quantizers_between_fused_ops(tmp_path):
    sim = sim_of(ConvReluFc(), config(tmp_path, ACT_ON, supergroups=[
        {"op_list": ["Conv", "Relu"]}]))
    assert sim.model.conv.output_quantizers[0] is None
    assert sim.model.relu.input_quantizers[0] is None
    assert on(sim.model.relu.output_quantizers[0])


class Branch(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.relu = nn.Conv2d(3, 3, 1), nn.ReLU()

    def forward(self, x):
        y = self.conv(x)
        return self.relu(y) + y


def test_supergroup_does_not_fuse_a_branch(tmp_path):
    sim = sim_of(Branch(), config(tmp_path, ACT_ON, supergroups=[{"op_list": ["Conv", "Relu"]}]))
    assert on(sim.model.conv.output_quantizers[0])


class ConvBnRelu(nn.Module):
    def __init__(self, relu=True):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
        self.relu = nn.ReLU() if relu else nn.Identity()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


def test_supergroup_passes_over_foldable_batchnorm(tmp_path):
    sim = sim_of(ConvBnRelu().eval(), config(tmp_path, ACT_ON, supergroups=[
        {"op_list": ["Conv", "Relu"]}]))
    m = sim.model
    between = [m.conv.output_quantizers[0], m.bn.input_quantizers[0], m.bn.output_quantizers[0],
               m.relu.input_quantizers[0]]
    assert between == [None] * 4
    assert all(q is None for q in m.bn.param_quantizers.values())
    assert on(m.relu.output_quantizers[0])


def test_foldable_batchnorm_takes_the_conv_output_quantizer(tmp_path):
    sim = sim_of(ConvBnRelu(relu=False).eval(), config(tmp_path, ACT_ON))
    assert sim.model.conv.output_quantizers[0] is None
    assert on(sim.model.bn.output_quantizers[0])


def test_supergroup_never_matches_a_foldable_batchnorm_by_its_own_type(tmp_path):
    """AIMET ignores foldable BatchNorms while matching: ["Conv", "BatchNormalization"] does not
    fuse them, so the BN output keeps the conv's output quantizer (the eNPU files' case)."""
    sim = sim_of(ConvBnRelu(relu=False).eval(), config(tmp_path, ACT_ON, supergroups=[
        {"op_list": ["Conv", "BatchNormalization"]}]))
    assert sim.model.conv.output_quantizers[0] is None
    assert on(sim.model.bn.output_quantizers[0])


def test_model_input_section(tmp_path):
    sim = sim_of(ConvReluFc(), config(tmp_path, ACT_ON))
    assert sim.model.conv.input_quantizers[0] is None
    sim = sim_of(ConvReluFc(), config(tmp_path, ACT_ON, model_input={"is_input_quantized": True}))
    assert on(sim.model.conv.input_quantizers[0])
    assert sim.model.fc.input_quantizers[0] is None


def test_model_output_overrides_op_type(tmp_path):
    cfg = config(tmp_path, ACT_ON, op_type={"Sigmoid": {"is_output_quantized": False}},
                 model_output={"is_output_quantized": True})
    assert on(sim_of(ConvReluFc(), cfg).model.sig.output_quantizers[0])


def test_conflicting_rules_in_one_section_raise(tmp_path):
    cfg = config(tmp_path, ACT_ON, op_type={"Conv": {"is_output_quantized": False},
                                            "Relu": {"is_input_quantized": True}})
    with pytest.raises(ValueError, match="conflicting settings in op_type"):
        sim_of(ConvReluFc(), cfg)


def test_supported_kernels_mismatch_warns(tmp_path):
    d = dict(ACT_ON, supported_kernels=[{"activation": {"bitwidth": 16, "dtype": "int"},
                                         "param": {"bitwidth": 8, "dtype": "int"}}],
             hw_version="V73")
    with pytest.warns(UserWarning, match="not among its supported_kernels"):
        sim = sim_of(ConvReluFc(), config(tmp_path, d))
    assert sim.hw_version == "V73"


class Cnn(nn.Module):
    """Conv-BN-ReLU, Conv-ReLU6, residual Add-ReLU, pooling, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), \
            nn.ReLU()
        self.conv2, self.relu6 = nn.Conv2d(8, 8, 3, padding=1), nn.ReLU6()
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        z = self.relu2(self.relu6(self.conv2(y)) + y)
        return self.fc(torch.flatten(self.pool(z), 1))


def aimet_sim(name):
    path = aimet_config(name)
    return QuantizationSimModel(Cnn().eval(), torch.randn(2, 3, 8, 8), quant_scheme="tf",
                                config_file=str(path))


def layout(sim):
    return {name for name, _ in sim.quantizers()}


def test_aimet_default_config_layout():
    names = layout(aimet_sim("default_config.json"))
    assert {"conv1.input_quantizers.0", "conv1.param_quantizers.weight",
            "relu1.output_quantizers.0",
            "conv2.param_quantizers.weight", "relu2.output_quantizers.0",
            "fc.param_quantizers.weight", "fc.output_quantizers.0"} <= names
    assert "conv2.output_quantizers.0" not in names        # Conv + Clip supergroup
    assert "relu6.input_quantizers.0" not in names
    assert "add.output_quantizers.0" not in names          # Add + Relu supergroup
    assert not any(n.endswith("bias") for n in names)


def test_aimet_default_config_fused_conv_bn_relu():
    names = layout(aimet_sim("default_config.json"))
    assert not {"conv1.output_quantizers.0", "bn1.output_quantizers.0",
                "bn1.param_quantizers.weight", "relu1.input_quantizers.0"} & names


def test_aimet_per_channel_config_layout():
    sim = aimet_sim("default_config_per_channel.json")
    # 2.42: per-tensor by default, per-channel for Conv, ConvTranspose, Gemm, MatMul, PRelu
    assert sim.model.conv1.param_quantizers["weight"].shape == (8, 1, 1, 1)
    assert sim.model.fc.param_quantizers["weight"].shape == (10, 1)   # Gemm: per-channel
    assert "relu1.output_quantizers.0" in layout(sim)


def test_aimet_htp_v75_config_layout():
    sim = aimet_sim("htp_quantsim_config_v75.json")
    names = layout(sim)
    assert sim.hw_version == "V75"
    assert sim.model.conv2.param_quantizers["weight"].shape == (8, 1, 1, 1)
    assert sim.model.fc.param_quantizers["weight"].shape == (10, 1)   # Gemm: per-channel in 2.42
    assert {"conv1.input_quantizers.0", "relu1.output_quantizers.0",
            "relu2.output_quantizers.0", "fc.output_quantizers.0"} <= names
    assert not {"conv1.output_quantizers.0", "conv2.output_quantizers.0",
                "add.output_quantizers.0"} & names


class Pools(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.pool, self.drop = nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Dropout()
        self.flat, self.fc, self.ln = nn.Flatten(), nn.Linear(16, 4), nn.LayerNorm(4)

    def forward(self, x):
        return self.ln(self.fc(self.flat(self.drop(self.pool(self.conv(x))))) / 2.0)


def test_data_preserving_ops_outputs_are_off_unless_listed(tmp_path):
    m = sim_of(Pools(), config(tmp_path, ACT_ON)).model
    assert [m.pool.output_quantizers[0], m.drop.output_quantizers[0],
            m.flat.output_quantizers[0]] == [None, None, None]
    assert m.conv.output_quantizers[0] is not None
    m = sim_of(Pools(), config(tmp_path, ACT_ON, op_type={
        "MaxPool": {"is_output_quantized": True}})).model
    assert m.pool.output_quantizers[0] is not None   # the config's setting wins


def test_division_by_a_constant_scalar_gets_no_output_quantizer(tmp_path):
    """fc's output is quantized, so fc / 2.0 stays on a grid: AIMET places nothing after it."""
    m = sim_of(Pools(), config(tmp_path, ACT_ON)).model
    div = next(q for q in m.modules() if type(q).__name__ == "QuantizedDivide")
    assert m.fc.output_quantizers[0] is not None
    assert div.output_quantizers[0] is None
    m = sim_of(Pools(), config(tmp_path, ACT_ON, op_type={
        "Conv": {"is_output_quantized": False}, "Gemm": {"is_output_quantized": False}})).model
    div = next(q for q in m.modules() if type(q).__name__ == "QuantizedDivide")
    assert div.output_quantizers[0] is not None  # nothing quantizes its input


@pytest.mark.parametrize("bits,symmetric", [(8, False), (16, True)])
def test_layer_norm_weight_is_symmetric_only_at_16_bits(tmp_path, bits, symmetric):
    m = QuantizationSimModel(Pools(), X, quant_scheme="tf", default_param_bw=bits,
                             config_file=config(tmp_path, ACT_ON)).model
    assert precision(m.ln.param_quantizers["weight"]) == (bits, symmetric)
    assert m.fc.param_quantizers["weight"].symmetric      # other weights keep the config's


def test_fixed_symmetric_range_uses_a_symmetric_grid_of_the_given_width(tmp_path):
    """AIMET: a constraint [-m, m] makes the grid symmetric with scale 2m / 255 (not m / 127)."""
    m = sim_of(ConvReluFc(), config(tmp_path, ACT_ON, op_type={
        "Sigmoid": {"encoding_constraints": {"min": -1.0, "max": 1.0}}})).model
    q = m.sig.output_quantizers[0]
    assert q.symmetric and is_frozen(q)
    assert torch.equal(q.get_scale(), torch.tensor(2.0) / 255)
    assert float(q.get_encoding().min) == -128 * float(q.get_scale())


def test_min_only_constraint_fixes_min_and_calibrates_max(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))  # not the module X:
    # its values depend on what the test modules collected before this one drew
    sim = QuantizationSimModel(ConvReluFc(), x, quant_scheme="tf_enhanced", config_file=config(
        tmp_path, ACT_ON, op_type={"Relu": {"encoding_constraints": {"min": -0.5}}}))
    sim.compute_encodings(lambda m, _: m(x), None)
    q = sim.model.relu.output_quantizers[0]
    with torch.no_grad():
        top = float(torch.relu(sim.model.conv(x)).max())
    enc = q.get_encoding()
    assert not is_frozen(q)
    assert float(enc.min) == pytest.approx(-0.5, abs=float(enc.scale))
    assert float(enc.max) == pytest.approx(top, abs=float(enc.scale))   # min/max ("tf") max
