"""Calibration's report of quantizers left without data: a slot whose module ran but never fed it a
floating tensor is disabled, with every slot sharing its quantizer; a module the callback missed is
named."""

import warnings

import pytest
import torch
from torch import nn

from torchqsim.quantsim import QuantizationSimModel


class Doubled(nn.Module):
    def forward(self, x):
        return x + x


def _calibrate_with_ints(sim):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim.compute_encodings(lambda m, _: m(torch.tensor([[1, -3, 5]])), None)
    return sorted(str(w.message) for w in caught if "received no floating" in str(w.message))


@pytest.mark.parametrize("model, messages", [
    (Doubled(), ["module_add.input_quantizers.0 received no floating tensor: disabled",
                 "module_add.input_quantizers.1 received no floating tensor: disabled",
                 "module_add.output_quantizers.0 received no floating tensor: disabled"]),
    # QuantizedReLU's input and output share a quantizer
    (nn.Sequential(nn.ReLU()), ["0.input_quantizers.0 received no floating tensor: disabled"]),
])
def test_slots_that_saw_no_float_are_disabled_with_their_sharers(model, messages):
    x = torch.randn(2, 3)
    sim = QuantizationSimModel(model, x)
    assert _calibrate_with_ints(sim) == messages
    for name, module in sim.named_qmodules():
        assert list(module.input_quantizers) == [None] * len(module.input_quantizers), name
        assert list(module.output_quantizers) == [None] * len(module.output_quantizers), name
        spec = sim._specs[name]
        assert not any(s.enabled for s in (*spec.inputs, *spec.outputs)), name
    torch.testing.assert_close(sim.model(x), model(x), rtol=0, atol=0)  # nothing left uncalibrated


def test_compute_encodings_still_names_a_module_the_callback_missed():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    sim = QuantizationSimModel(model, torch.randn(2, 3))
    with pytest.raises(RuntimeError, match=r"1\.\w+_quantizers\.0: module '1' was not called"):
        sim.compute_encodings(lambda m, _: m.get_submodule("0")(torch.randn(2, 3)), None)
