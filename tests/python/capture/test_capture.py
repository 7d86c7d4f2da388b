"""Capture (prepare_model with a dummy input, torchqsim/capture.py): what fx could not trace,
the errors it gives, and that it changes nothing. Oracle: the eager model itself."""

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchqsim import PrepareError, QuantizationSimModel, prepare_model
from torchqsim.capture import ShapeGuardError


@dataclasses.dataclass
class Out:
    logits: torch.Tensor
    hidden: tuple


class Awkward(nn.Module):
    """Everything fx rejects: **kwargs, shape control flow, item assignment, a buffer made in
    forward, a module called in a loop, tied weights, a dataclass output."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.block = nn.Linear(8, 8)
        self.head = nn.Linear(8, 20, bias=False)
        self.head.weight = self.embed.weight  # tied

    def forward(self, ids, **kwargs):
        h = self.embed(ids)
        steps = kwargs.get("steps", 1)
        for _ in range(steps):
            h = F.gelu(self.block(h)) + h
        mask = torch.zeros(h.shape[:2])
        mask[:, : h.shape[1] // 2] = 1.0  # item assignment with a traced size
        if h.shape[-1] % 2 == 0:
            h = h * mask.unsqueeze(-1)
        return Out(self.head(h), (h,))


def _ids(length=6):
    return torch.randint(0, 20, (2, length), generator=torch.Generator().manual_seed(0))


def test_awkward_model_captures_and_equals_eager_on_other_lengths():
    model = Awkward().eval()
    gm = prepare_model(model, dummy_input={"ids": _ids(), "steps": 2})
    assert sum(isinstance(m, nn.Linear) for m in gm.modules()) >= 2
    for length in (6, 9):
        ids = _ids(length)
        expected, got = model(ids, steps=2), gm(ids, 2)
        assert isinstance(got, Out)
        assert torch.equal(got.logits, expected.logits)
        assert torch.equal(got.hidden[0], expected.hidden[0])


def test_sim_of_awkward_model_quantizes_the_tied_weight_and_every_op():
    model = Awkward().eval()
    sim = QuantizationSimModel(model, {"ids": _ids(), "steps": 2}, default_output_bw=16,
                               default_param_bw=16)
    assert sim.unquantized_weights == []
    assert dict(sim.graph.unquantized_ops) == {}
    assert "module_block_1" in dict(sim.model.named_modules())  # the loop's second call: own module


def test_capture_leaves_model_and_dummy_input_unchanged():
    model = nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2)).train()
    x = torch.randn(3, 4)
    x_before, state = x.clone(), copy.deepcopy(model.state_dict())
    prepare_model(model, dummy_input=x)
    assert torch.equal(x, x_before)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.training



class Inner(nn.Module):
    def forward(self, x):
        raise ValueError("inner forward refuses")


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.stage = nn.Sequential(nn.Identity(), Inner())

    def forward(self, x):
        return self.stage(x)


def test_prepare_error_names_the_module_and_the_source_line():
    with pytest.raises(PrepareError) as info:
        prepare_model(Outer(), dummy_input=torch.ones(2))
    message = str(info.value)
    assert "'stage.1'" in message and "(Inner)" in message
    assert "test_capture.py\", line" in message and "raise ValueError" in message
    assert "modules_to_exclude=[model.stage.1]" in message


def test_a_branch_on_a_size_is_guarded():
    class Branch(nn.Module):
        def forward(self, x):
            return x * 2 if x.shape[-1] > 3 else x - 1

    gm = prepare_model(Branch(), dummy_input=torch.ones(2, 5))
    assert torch.equal(gm(torch.ones(1, 7)), torch.full((1, 7), 2.0))
    with pytest.raises(ShapeGuardError, match=r"test_capture.py:\d+"):
        gm(torch.ones(1, 2))


def test_attention_mask_additions_stay_float_with_the_reason():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Linear(4, 4)

        def forward(self, x):
            scores = self.q(x) @ x.transpose(-1, -2)
            n = x.shape[1]
            mask = torch.full((n, n), torch.finfo(x.dtype).min).triu(1)
            return torch.softmax(scores + mask, -1)

    sim = QuantizationSimModel(Masked(), torch.randn(1, 3, 4))
    (reason,) = sim.graph.unquantized_ops.values()
    assert "mask" in reason
    assert "mask" in str(sim)


def test_divisions_are_named_as_aimets_fx_preparer_names_them():
    """`x / y` reaches capture as Tensor.div; it is named ``truediv`` as torch.fx names
    operator.truediv (AIMET's ``module_truediv``), ``torch.div`` stays ``div`` and a rounding
    division stays a function. Oracle: the names fx itself gives the same code."""

    class M(nn.Module):
        def forward(self, x, y):
            a = x / y
            b = torch.div(a, 3.0)
            c = 2.0 / b
            return c + torch.div(x, 2.0, rounding_mode="floor") + x.div(y)

    x, y = torch.randn(2, 3), torch.rand(2, 3) + 1.0
    traced = prepare_model(M())
    captured = prepare_model(M(), dummy_input=(x, y))
    fx_names = [n for n, _ in traced.named_children()]
    assert fx_names == ["module_truediv", "module_div", "module_truediv_1", "module_add",
                        "module_div_2", "module_add_1"]
    # an explicit x.div(y) is the one place capture cannot tell: it is a truediv there
    assert [n for n, _ in captured.named_children()] == fx_names[:4] + ["module_truediv_2",
                                                                        "module_add_1"]
    assert torch.equal(captured(x, y), M()(x, y))
