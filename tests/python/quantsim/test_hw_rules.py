"""AIMET's per-hardware rules (torchqsim.quantsim.hw_rules through QuantizationSimModel):
embedding and GroupNorm parameters, MatMul second inputs, per hw_version."""

import pytest
import torch
from torch import nn

from torchqsim.quantsim import QuantizationSimModel
from config_helpers import ACT_ON, config, precision


class HwRules(nn.Module):
    """Embedding -> GroupNorm -> two Linears -> ``a @ b^T`` (a MatMul of two activations)."""

    def __init__(self):
        super().__init__()
        self.emb, self.gn = nn.Embedding(10, 8), nn.GroupNorm(2, 8)
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, ids):
        g = self.gn(self.emb(ids).transpose(1, 2)).transpose(1, 2)
        return self.fc1(g) @ self.fc2(g).transpose(1, 2)


IDS = torch.randint(0, 10, (2, 5))


def hw_sim(tmp_path, hw_version, output_bw=16):
    """16-bit asymmetric activations, 8-bit symmetric weights (biases on), under `hw_version`."""
    cfg = config(tmp_path, dict(ACT_ON, hw_version=hw_version),
                 params={"bias": {"is_quantized": True}})
    return QuantizationSimModel(HwRules(), IDS, quant_scheme="tf", default_output_bw=output_bw,
                                default_param_bw=8, config_file=cfg)


def test_hw_version_embedding_and_groupnorm_params_take_the_output_precision(tmp_path):
    m = hw_sim(tmp_path, "V73").model
    assert m.emb.output_quantizers[0] is None  # Gather is data-preserving: AIMET leaves it off
    assert precision(m.emb.param_quantizers["weight"]) == (16, False)  # its slot's precision
    assert precision(m.gn.param_quantizers["weight"]) == (16, False)
    assert precision(m.gn.param_quantizers["bias"]) == (16, False)
    assert precision(m.fc1.param_quantizers["weight"]) == (8, True)   # other ops unaffected
    m = hw_sim(tmp_path, "V69").model                                 # rule is V73+ only
    assert precision(m.emb.param_quantizers["weight"]) == (8, True)
    assert precision(m.gn.param_quantizers["weight"]) == (8, True)


def test_hw_version_v69_matmul_second_input_is_8bit_symmetric(tmp_path):
    sim = hw_sim(tmp_path, "V69")
    m = sim.model
    assert m.module_matmul.input_quantizers[0] is None and m.module_matmul.input_quantizers[1] is None
    assert precision(m.fc2.output_quantizers[0]) == (8, True)    # quantizes matmul input 1
    assert precision(m.fc1.output_quantizers[0]) == (16, False)  # input 0 unchanged
    sim.compute_encodings(lambda model, _: model(IDS), None)
    assert torch.isfinite(m(IDS)).all()


def test_hw_version_v73_matmul_16bit_second_input_is_symmetric(tmp_path):
    m = hw_sim(tmp_path, "V75").model
    assert precision(m.fc2.output_quantizers[0]) == (16, True)
    assert precision(m.fc1.output_quantizers[0]) == (16, False)
    m = hw_sim(tmp_path, "V75", output_bw=8).model             # 8-bit second input: no change
    assert precision(m.fc2.output_quantizers[0]) == (8, False)
    assert precision(m.fc1.output_quantizers[0]) == (8, False)


def test_hw_version_v73_matmul_16bit_second_input_makes_the_first_16bit():
    from torchqsim.graph import ModuleGraph
    from torchqsim.prepare import prepare_model
    from torchqsim.quantsim.config_rules import apply_config
    from torchqsim.quantsim.construction import quantize_modules
    from torchqsim.quantsim.hw_rules import apply_exception_rules
    from torchqsim.quantsim.config_file import load_config
    gm = quantize_modules(prepare_model(HwRules(), dummy_input=IDS))
    graph = ModuleGraph.from_graph_module(gm)
    specs = apply_config(graph, load_config("default"), output_bw=8, param_bw=8, data_type="int")
    specs["fc2"].outputs[0].bitwidth = 16        # as after set_precision(fc2, activation=16)
    apply_exception_rules(graph, specs, "V79")
    assert (specs["fc1"].outputs[0].bitwidth, specs["fc1"].outputs[0].symmetric) == (16, False)
    assert specs["fc2"].outputs[0].symmetric
    specs["module_matmul"].inputs[0].enabled = True     # an enabled input slot is the one changed
    specs["module_matmul"].inputs[0].bitwidth = 8
    apply_exception_rules(graph, specs, "V79")
    assert specs["module_matmul"].inputs[0].bitwidth == 16


@pytest.mark.parametrize("hw_version", ["default"])
def test_hw_version_default_changes_nothing(tmp_path, hw_version):
    sim = hw_sim(tmp_path, hw_version)
    assert sim.hw_version == hw_version
    found = {name: precision(q) for name, q in sim.quantizers()}
    assert {"emb.param_quantizers.weight", "gn.param_quantizers.weight",
            "fc2.output_quantizers.0", "fc1.output_quantizers.0"} <= set(found)
    assert all(p == ((8, True) if ".param_quantizers." in name else (16, False))
               for name, p in found.items())


class MatMulOfInputs(nn.Module):
    def forward(self, x, y):
        return x @ y


def test_hw_version_matmul_without_a_quantizer_up_its_inputs_warns(tmp_path):
    xy = (torch.randn(2, 3), torch.randn(3, 4))
    with pytest.warns(UserWarning, match="MatMul 'module_matmul' could not be found"):
        sim = QuantizationSimModel(MatMulOfInputs(), xy, quant_scheme="tf",
                                   config_file=config(tmp_path, dict(ACT_ON, hw_version="V69")))
    assert sim.model.module_matmul.input_quantizers[1] is None


# --- AIMET 2.42's placement rules -----------------------------------------------------------------

@pytest.mark.parametrize("version", ["V73", "V81", "V85", "V99"])
def test_hw_versions_after_v69_get_the_v73_rules(tmp_path, version):
    """AIMET tests only for V66/V68/V69: any other version gets the V73-and-later rules."""
    m = hw_sim(tmp_path, version).model
    assert precision(m.gn.param_quantizers["weight"]) == (16, False)
