"""Which modules ran during calibration: recorded by QuantizationMixin.forward (recorded_calls),
hooks only on the classes that override it; slots that got no floating tensor are disabled, every
slot sharing their quantizer too."""

import warnings

import pytest
import torch
from torch import nn

from torchqsim.nn import QuantizedLinear
from torchqsim.nn.calls import ACTIVE, recorded_calls
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
    # QuantizedReLU overrides forward (a hook sees it); its input and output share a quantizer
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


def test_calibration_hooks_only_the_modules_that_override_forward():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    sim = QuantizationSimModel(model, torch.randn(2, 3))
    linear, relu = (dict(sim.named_qmodules())[n] for n in ("0", "1"))
    seen = []

    def callback(m, _):
        seen.append((len(linear._forward_pre_hooks), len(relu._forward_pre_hooks), len(ACTIVE)))
        m(torch.randn(2, 3))

    sim.compute_encodings(callback, None)
    assert seen == [(0, 1, 1)]  # Linear on nn.Module's fast path, recorded by its forward
    assert not linear._forward_pre_hooks and not relu._forward_pre_hooks and ACTIVE == []


def test_compute_encodings_still_names_a_module_the_callback_missed():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    sim = QuantizationSimModel(model, torch.randn(2, 3))
    with pytest.raises(RuntimeError, match=r"1\.\w+_quantizers\.0: module '1' was not called"):
        sim.compute_encodings(lambda m, _: m.get_submodule("0")(torch.randn(2, 3)), None)


def test_overlapping_blocks_each_get_every_call():
    a, b = QuantizedLinear(2, 2), QuantizedLinear(2, 2)
    x = torch.ones(1, 2)
    with recorded_calls() as outer:
        with recorded_calls() as inner:  # equal (empty) sets: the inner one must leave by identity
            pass
        a(x)
        with recorded_calls() as late:
            b(x)
    assert outer == {a, b} and inner == set() and late == {b} and ACTIVE == []
