"""prepare_model(..., dummy_input=...): forward code that takes len() of or unpacks shape tuples
(HuggingFace style) traces, stays shape-generic, and tracing changes neither the model nor the
dummy input."""

import copy

import pytest
import torch
from torch import nn

from torchqsim import PrepareError, prepare_model


class _Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        x = nn.functional.batch_norm(x, self.bn.running_mean, self.bn.running_var, training=True)
        h = self.fc(self.bn(x))
        assert len(h.shape) == 2
        return h.view(*h.shape[:-1], 2, 2).softmax(-1)


def test_shape_unpacking_needs_and_uses_the_dummy_input():
    model = _Heads().train()
    with pytest.raises(PrepareError, match="dummy_input=..."):
        prepare_model(model)
    x = torch.randn(3, 4)
    x_before = x.clone()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    gm = prepare_model(model, dummy_input=x)
    assert torch.equal(x, x_before)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    model.eval()
    gm.eval()
    for batch in (3, 7):  # sizes stay symbolic: other batch sizes run
        y = torch.randn(batch, 4)
        reference = copy.deepcopy(model)  # F.batch_norm(training=True) updates the buffers
        assert torch.equal(gm(y), reference(y))
    assert any(isinstance(m, nn.Softmax) for m in gm.modules())


def test_dummy_input_must_match_forward():
    with pytest.raises(TypeError, match="dummy_input"):
        prepare_model(_Heads(), dummy_input=(torch.randn(2, 4), torch.randn(2, 4)))
