"""prepare_model's check that the captured graph reproduces the model on the dummy input
(wrappers/prepare/tracing.py ``_check_reproduces``): bit for bit; or, where the model run again
does not reproduce its own capture (kernels whose rounding changes from call to call), as close
as the model's own rerun. A computation that escaped capture still raises.

Oracles: models built so that each case's outcome is known: a leaf whose result moves by a known
step each call, and a buffer written through a numpy alias that capture cannot see.
"""

import pytest
import torch
from torch import nn

from torchqsim import PrepareError, prepare_model


class _Wobble(nn.Module):
    """A leaf (excluded) whose result moves by `step` each call, as a kernel whose rounding
    depends on where its data lies: call k adds k * step."""

    def __init__(self, step: float):
        super().__init__()
        self.step, self.calls = step, 0

    def forward(self, x):
        self.calls += 1
        return x + self.calls * self.step


class _Model(nn.Module):
    """Linear -> wobble; with `alias`, a buffer written through numpy (outside torch) is added."""

    def __init__(self, step: float, alias: bool = False):
        super().__init__()
        self.fc, self.wobble, self.alias = nn.Linear(4, 4), _Wobble(step), alias
        self.register_buffer("b", torch.zeros(4))

    def forward(self, x):
        if self.alias:
            self.b.numpy()[:] += 1.0  # escapes capture: the graph adds the buffer as it is then
        return self.wobble(self.fc(x)) + self.b


def _prepare(model):
    return prepare_model(model, dummy_input=torch.randn(3, 4), modules_to_exclude=[model.wobble])


def test_a_graph_as_close_as_the_models_own_rerun_passes():
    # capture: call 1; graph: call 2 (one step off); the model again: call 3 (two steps off)
    model = _Model(step=1e-6)
    gm = _prepare(model)
    assert model.wobble.calls == 3, "the graph differed: the model ran again"
    assert gm.get_submodule("wobble") is model.wobble  # the graph calls the same leaf


def test_an_escaped_computation_still_raises_when_the_model_reproduces_itself():
    # the numpy write adds 1 during capture and in the model's rerun (its buffer put back between
    # them), never in the graph: off by 1 where the model reproduces itself exactly
    model = _Model(step=0.0, alias=True)
    with pytest.raises(PrepareError, match="does not reproduce its output 0"):
        _prepare(model)
    assert model.wobble.calls == 3, "the model ran again before raising"
    assert torch.equal(model.b, torch.zeros(4)), "its buffer is put back"


def test_an_escape_larger_than_the_models_own_spread_raises():
    # off by 1 (the escape) where the model's own rerun is 2e-6 from its capture
    with pytest.raises(PrepareError, match="does not reproduce its output 0"):
        _prepare(_Model(step=1e-6, alias=True))


def test_an_exact_graph_never_reruns_the_model():
    model = _Model(step=0.0)
    _prepare(model)
    assert model.wobble.calls == 2  # capture and the graph
