"""Encoding propagation (torchqsim/quantsim/propagation.py, AIMET 2.42's shared quantizers): which
slots share a quantizer, that calibration covers every tensor the shared quantizer sees, and that
loading, set_precision and exclusion keep or break the sharing as documented. Oracles: the
tensors the modules produce during calibration (forward hooks) and hand-built expectations."""

import json

import pytest
import torch
from torch import nn

from torchqsim.quantsim import QuantizationSimModel

ACT_ON = {"ops": {"is_output_quantized": "True"},
          "params": {"is_quantized": "True", "is_symmetric": "True"}}


def config(tmp_path, defaults=ACT_ON, **sections):
    cfg = {"defaults": dict(defaults), "params": {}, "op_type": {}, "supergroups": [],
           "model_input": {}, "model_output": {}}
    cfg.update(sections)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return str(path)


class Cat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.fc = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(torch.cat([self.a(x), self.b(x) * x], -1))


class LinearRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.relu, self.head = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)
        self.tail = nn.Linear(4, 2)

    def forward(self, x):
        h = self.fc(x)
        return self.head(self.relu(h)) + self.tail(h)


def _x():
    return torch.randn(16, 4, generator=torch.Generator().manual_seed(0))


def _calibrated(model, cfg, seen=()):
    """The tf sim of `model`, calibrated on _x(); `seen` names modules whose outputs during
    calibration are returned too."""
    x = _x()
    sim = QuantizationSimModel(model, x, quant_scheme="tf", config_file=cfg)
    outs = {n: [] for n in seen}
    hooks = [sim.model.get_submodule(n).register_forward_hook(
        lambda m, a, o, n=n: outs[n].append(o.detach().clone())) for n in seen]
    sim.compute_encodings(lambda m, _: m(x), None)
    for h in hooks:
        h.remove()
    return sim, outs


def test_concat_shares_its_output_quantizer_with_every_input_producer(tmp_path):
    sim, outs = _calibrated(Cat(), config(tmp_path), seen=("a", "module_mul", "module_cat"))
    m = sim.model
    shared = m.module_cat.output_quantizers[0]
    assert m.a.output_quantizers[0] is shared and m.module_mul.output_quantizers[0] is shared
    assert m.b.output_quantizers[0] is not shared  # b feeds the Mul, not the Concat
    seen = torch.cat([t.flatten() for ts in outs.values() for t in ts])
    assert torch.equal(shared.min.detach(), torch.clamp(seen.min(), max=0))
    assert torch.equal(shared.max.detach(), torch.clamp(seen.max(), min=0))
    # one quantizer, counted once among the sim's quantizers that calibration walks
    assert len({id(q) for _, q in sim.quantizers()}) == len(list(sim.quantizers())) - 2


def test_relu_shares_its_output_quantizer_with_its_producer(tmp_path):
    sim, _ = _calibrated(LinearRelu(), config(tmp_path))
    m = sim.model
    assert m.fc.output_quantizers[0] is m.relu.output_quantizers[0]


def test_relu_on_a_model_input_takes_its_output_quantizer_as_input_quantizer(tmp_path):
    sim, _ = _calibrated(nn.Sequential(nn.ReLU(), nn.Linear(4, 2)), config(tmp_path))
    relu = sim.model.get_submodule("0")
    assert relu.input_quantizers[0] is relu.output_quantizers[0] is not None


def test_a_frozen_quantizer_is_not_shared_with_a_tensor_two_ops_read(tmp_path):
    cfg = config(tmp_path, op_type={"Relu": {"encoding_constraints": {"min": 0.0, "max": 4.0}}})
    sim, _ = _calibrated(LinearRelu(), cfg)   # fc's output feeds the ReLU and `tail`
    assert sim.model.fc.output_quantizers[0] is not sim.model.relu.output_quantizers[0]
    sim, _ = _calibrated(LinearRelu(), config(tmp_path))   # not frozen: shared all the same
    assert sim.model.fc.output_quantizers[0] is sim.model.relu.output_quantizers[0]


@pytest.mark.parametrize("hw_version, shared", [(None, False), ("V73", True)])
def test_upsample_shares_only_under_a_hw_version(tmp_path, hw_version, shared):
    defaults = dict(ACT_ON, **({"hw_version": hw_version} if hw_version else {}))
    model = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Upsample(scale_factor=2))
    x = torch.randn(1, 2, 4, 4)
    sim = QuantizationSimModel(model, x, quant_scheme="tf", config_file=config(tmp_path, defaults))
    conv, up = sim.model.get_submodule("0"), sim.model.get_submodule("1")
    assert (conv.output_quantizers[0] is up.output_quantizers[0]) is shared


def test_loading_encodings_keeps_the_sharing_and_the_outputs(tmp_path):
    sim, _ = _calibrated(Cat(), config(tmp_path))
    path = sim.save_encodings_to_json(tmp_path, "cat")
    other = QuantizationSimModel(Cat(), _x(), quant_scheme="tf", config_file=config(tmp_path))
    other.model.load_state_dict(sim.model.state_dict())
    other.load_encodings(path)
    m = other.model
    assert m.a.output_quantizers[0] is m.module_cat.output_quantizers[0]
    with torch.no_grad():
        assert torch.equal(other.model(_x()), sim.model(_x()))


def test_set_precision_and_exclusion_give_a_module_its_own_quantizer(tmp_path):
    sim, _ = _calibrated(Cat(), config(tmp_path))
    sim.set_precision("a", activation=16)
    m = sim.model
    assert m.a.output_quantizers[0] is not m.module_cat.output_quantizers[0]
    assert m.a.output_quantizers[0].bitwidth == 16 and m.module_cat.output_quantizers[0].bitwidth == 8
    sim.exclude_layers_from_quantization("module_mul")
    assert m.module_mul.output_quantizers[0] is None and m.module_cat.output_quantizers[0] is not None
