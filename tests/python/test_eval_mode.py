"""`eval_mode` (wrappers/_forward.py) against `model.eval()`: the same flags inside, each
module's own flag back afterwards, and a module with its own ``train()`` called as
``model.eval()`` calls it (once per call model.eval() makes, with False)."""

import copy

import pytest
import torch
from torch import nn

from torchqsim._forward import eval_mode
from torchqsim.quantization.param_quantizer import ParamQuantizeDequantize


class Counting(nn.Module):
    """Records every ``train(mode)`` call made on it."""

    def __init__(self, *children):
        super().__init__()
        self.kids = nn.ModuleList(children)
        self.calls = []

    def train(self, mode=True):
        self.calls.append(mode)
        return super().train(mode)


def tree():
    inner = Counting(nn.Linear(2, 2), nn.Dropout())
    return nn.Sequential(nn.Dropout(), nn.Sequential(inner, nn.ReLU()),
                         Counting(nn.BatchNorm1d(2)), nn.Identity())


@pytest.mark.parametrize("start", ["train", "eval", "mixed"])
def test_flags_and_calls_match_model_eval(start):
    model = tree()
    if start == "eval":
        model.eval()
    if start == "mixed":
        model[1].eval()
        model[2].kids[0].eval()
    for m in model.modules():
        if isinstance(m, Counting):
            m.calls.clear()
    reference = copy.deepcopy(model)
    before = [m.training for m in model.modules()]
    reference.eval()
    with eval_mode(model):
        inside = [m.training for m in model.modules()]
        calls = [m.calls[:] for m in model.modules() if isinstance(m, Counting)]
    assert inside == [m.training for m in reference.modules()] == [False] * len(inside)
    assert calls == [m.calls for m in reference.modules() if isinstance(m, Counting)]
    assert calls == [[False], [False]]  # the outer Counting's train recursed into nothing else
    assert [m.training for m in model.modules()] == before


def test_flags_come_back_when_the_block_raises():
    model = tree()
    model[2].eval()
    before = [m.training for m in model.modules()]
    with pytest.raises(KeyError):
        with eval_mode(model):
            raise KeyError("x")
    assert [m.training for m in model.modules()] == before


def test_a_parameter_quantizer_drops_its_eval_cache_when_its_mode_changes():
    q = ParamQuantizeDequantize((), 8, symmetric=True).requires_grad_(False).eval()
    w = torch.tensor([1.0, -0.3])
    with torch.no_grad():
        q(w)
    assert "_output_cache" in q.__dict__
    with eval_mode(nn.Sequential(q)):  # already in eval mode: kept (its memory is reused)
        assert "_output_cache" in q.__dict__ and not q.training
    # A training model after compute_encodings: eval_mode set its flag back, the cache stayed
    object.__setattr__(q, "training", True)
    with eval_mode(nn.Sequential(q)):
        assert "_output_cache" not in q.__dict__ and not q.training
    assert q.training


def test_a_module_reached_twice_gets_its_own_flag_back():
    shared, counted = nn.Dropout(), Counting(nn.Dropout())
    model = nn.Sequential(shared, nn.Sequential(shared, counted), counted).train()
    with eval_mode(model):
        assert not shared.training and not counted.training and not counted.kids[0].training
    assert all(m.training for m in model.modules())


class Refusing(nn.Module):
    def train(self, mode=True):
        if not mode:
            raise RuntimeError("no")
        return super().train(mode)


def test_flags_come_back_when_a_train_call_raises():
    model = nn.Sequential(nn.Dropout(), Refusing(), nn.Dropout()).train()
    with pytest.raises(RuntimeError, match="no"):
        with eval_mode(model):
            pass
    assert [m.training for m in model.modules()] == [True] * 4
