"""A compiled QAT step of `QuantizationSimModel.model` with inductor's layout optimization forced
on: the element-wise qdq ops run in the layout inductor chose (channels-last convolution outputs
and weights, no copy to the eager trace's strides and back: bindings/library.cpp), the
range-learning backward keeps the eager trace's strides, and the step computes what the eager
step computes.

Oracles: the eager model, from the same weights and encodings, on the same batch (the output and
the loss bit for bit; every parameter's gradient within float rounding: inductor's own BatchNorm,
GELU and bias-gradient code sums in other orders than eager ATen, with or without quantizers);
the strides inductor asserts for each qdq op's output in the generated code. Models: conv +
BatchNorm + ReLU twice then Linear (4-D activations, per-channel 4-D weights), Linear + GELU +
Linear (3-D activations), two-head self-attention (4-D tensors without convolutions: the in-place
op on a copy) and a residual block (a gradient two branches share; an inductor scheduler error
once came from range learning's planned backward on the conv outputs there), under the STE scheme
(``tf``: encodings fixed, the data gradient alone) and range learning
(``range_learning_tf_init``: min/max learned). Inductor's caches are off.
"""

import copy
import re

import pytest
import torch
from torch import nn
from torch._inductor.utils import run_and_get_code

from asserts import assert_same
from ops_run import no_compile_caches
from torchqsim import QuantizationSimModel
from torchqsim.quantization import QuantizeDequantize


def _conv_bn_relu():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 6 * 6, 5))


def _linear():
    return nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 5))


class _Attention(nn.Module):
    """Two heads of self-attention: 4-D scores and context, no convolution."""

    def __init__(self):
        super().__init__()
        self.qkv, self.out = nn.Linear(16, 48), nn.Linear(16, 5)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, 2, 8).permute(2, 0, 3, 1, 4)
        scores = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        return self.out((scores @ v).transpose(1, 2).reshape(b, t, 16))


class _Residual(nn.Module):
    """A residual block (two conv + BatchNorm, a 1x1 shortcut, the sum's ReLU) and a Linear: a
    gradient that two branches share."""

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                               nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, bias=False),
                               nn.BatchNorm2d(8))
        self.short = nn.Sequential(nn.Conv2d(3, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.relu, self.fc = nn.ReLU(), nn.Linear(8 * 6 * 6, 5)

    def forward(self, x):
        return self.fc(self.relu(self.a(x) + self.short(x)).flatten(1))


MODELS = {"conv_bn_relu": (_conv_bn_relu, (4, 3, 6, 6)), "linear": (_linear, (4, 6, 16)),
          "attention": (_Attention, (4, 6, 16)), "residual": (_Residual, (4, 3, 6, 6))}


def _sim(model_name, quant_scheme):
    make, shape = MODELS[model_name]
    torch.manual_seed(0)
    model = make()
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(shape, generator=g) for _ in range(2)]
    sim = QuantizationSimModel(model, batches[0], quant_scheme=quant_scheme,
                               config_file="per_channel")
    sim.compute_encodings(lambda m: [m(x) for x in batches])
    return sim.model.train(), torch.randn(shape, generator=g)


# an output of a qsim op asserted 4-D channels-last (channel stride 1) in inductor's code
_CHANNELS_LAST = re.compile(r"assert_size_stride\(\w+, \(\d+, (\d+), \d+, \d+\), "
                            r"\(\d+, 1, \d+, \d+\), 'torch\.ops\.qsim\.(\w+)\.default'\)")


def _channels_last_ops(codes):
    """Names of the qsim ops whose output the generated code asserts channels-last."""
    return {op for code in codes for channels, op in _CHANNELS_LAST.findall(code)
            if int(channels) > 1}


def _step(model, fn, x):
    """Output, loss and every parameter's gradient (by name) of one training step."""
    model.zero_grad(set_to_none=True)
    y = fn(x)
    loss = nn.functional.mse_loss(y, torch.zeros_like(y))
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return y.detach(), loss.detach(), grads


# inductor's own use of torch.jit warns; that is torch's business, not ours
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("quant_scheme", ["tf", "range_learning_tf_init"])
@pytest.mark.parametrize("model_name", MODELS)
@no_compile_caches
@torch._inductor.config.patch(force_layout_optimization=True)
def test_compiled_qat_step_is_the_eager_step(model_name, quant_scheme):
    torch._dynamo.reset()
    eager, x = _sim(model_name, quant_scheme)
    compiled_model = copy.deepcopy(eager)
    want = _step(eager, eager, x)
    compiled = torch.compile(compiled_model, fullgraph=True)
    got, codes = run_and_get_code(lambda: _step(compiled_model, compiled, x))
    assert_same(got[0], want[0], "output")
    assert_same(got[1], want[1], "loss")
    assert got[2].keys() == want[2].keys()
    learned = [n for n in want[2] if n.endswith((".min", ".max"))]
    assert bool(learned) == (quant_scheme != "tf"), learned
    # atol: rounding of sums whose terms cancel (a bias before BatchNorm), relative to the step's
    # largest gradient
    atol = 1e-6 * max(float(g.abs().max()) for g in want[2].values())
    for name, grad in want[2].items():
        assert (grad != 0).any(), f"no gradient reaches {name}"
        torch.testing.assert_close(got[2][name], grad, rtol=1e-5, atol=atol,
                                   msg=lambda m: f"gradient of {name}: {m}")
    if model_name == "conv_bn_relu":
        # STE: the data gradient too runs in inductor's layout; range learning's backward
        # (qparam sums in memory order) gets the eager trace's contiguous strides
        ste = quant_scheme == "tf"
        assert _channels_last_ops(codes) == (
            {"quantize_dequantize", "quantize_dequantize_backward_data"} if ste
            else {"quantize_dequantize"})


@pytest.mark.parametrize("model_name, dims", [("conv_bn_relu", 3), ("linear", 4), ("attention", 4),
                                              ("residual", 3)])
def test_the_sim_quantizes_4d_tensors_in_place_when_compiled_unless_it_has_convolutions(
        model_name, dims):
    # inductor may lay out a convolution's 4-D outputs channels-last, which the in-place op
    # cannot take; attention's 4-D tensors keep the traced layout
    sim, _ = _sim(model_name, "tf")
    qs = [m for m in sim.modules() if isinstance(m, QuantizeDequantize)]
    assert qs and {q.compiled_in_place_dims for q in qs} == {dims}
