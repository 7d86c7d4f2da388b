"""What every PTQ tool shares: the dummy-input forms it accepts (as the sim: a tensor, a tuple or
list of positional inputs), a clear error for keyword inputs it cannot trace, and the sim's
per-module training flags left as they were."""

import pytest
import torch
from torch import nn

from torchqsim.ptq import choose_mixed_precision, correct_bias, fold_all_batch_norms
from torchqsim.quantsim import QuantizationSimModel


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x, y):
        return self.bn(self.fc(x)) + y


def _trained_bn(model):
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
    return model.eval()


@pytest.mark.parametrize("as_list", [False, True])
def test_fold_takes_positional_inputs_as_tuple_or_list(as_list):
    torch.manual_seed(0)
    model = _trained_bn(TwoInputs())
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    expected = model(x, y)
    pairs = fold_all_batch_norms(model, [x, y] if as_list else (x, y))
    assert pairs == [(model.fc, pairs[0][1])] and isinstance(model.bn, nn.Identity)
    assert torch.allclose(model(x, y), expected, atol=1e-6)


def test_fold_rejects_keyword_dummy_input_by_name():
    model = _trained_bn(TwoInputs())
    with pytest.raises(TypeError, match=r"fold_all_batch_norms: dummy_input .*\['x', 'y'\]"):
        fold_all_batch_norms(model, {"x": torch.randn(3, 4), "y": torch.randn(3, 4)})


def _sim_with_mixed_flags():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(16, 4)
    sim = QuantizationSimModel(model, x)
    sim.compute_encodings(lambda m, _: m(x), None)
    sim.model.train()
    sim.model.get_submodule("1").eval()
    return sim, model, x


def _flags(module):
    return {n: m.training for n, m in module.named_modules()}


def test_mixed_precision_keeps_the_sim_in_training_mode():
    # Uniform flags: sim.compute_encodings, which AMP calls, restores only the root's flag.
    sim, model, x = _sim_with_mixed_flags()
    sim.model.train()
    before = _flags(sim.model)
    choose_mixed_precision(sim, x, ["W8A8", "W16A16"], lambda m: -float(m(x).square().mean()),
                           1.0, lambda m: m(x), progress=False)
    assert _flags(sim.model) == before


def test_bias_correction_keeps_the_sims_training_flags():
    sim, model, x = _sim_with_mixed_flags()
    before = _flags(sim.model)
    correct_bias(model, sim, [x], 1, progress=False)
    assert _flags(sim.model) == before
