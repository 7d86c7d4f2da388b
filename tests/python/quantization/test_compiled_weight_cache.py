"""The compiled weight cache: ``qsim::cached_quantize_dequantize_`` (bindings/weight_cache.cpp) and
:meth:`ParamQuantizeDequantize._compiled_result`, which keep a weight's fake-quantized copy
between ``torch.compile`` eval forwards.

Oracles: ``qsim::quantize_dequantize`` on the same arguments (the op), the eager quantizer with
nothing cached (the module), bit for bit after every kind of change. Whether a call computed is
seen by poisoning ``out`` with NaN first (a call that keeps its result leaves the NaN there) and
by torch's profiler (the op's nested ``quantize_dequantize_out`` call).
"""

import copy

import pytest
import torch
from torch import nn
from torch.library import opcheck
from torch.profiler import profile

from asserts import assert_same
from ops_run import no_compile_caches
from torchqsim import QuantizationSimModel
from torchqsim.quantization.param_quantizer import ParamQuantizeDequantize

_OP = torch.ops.qsim.cached_quantize_dequantize_.default


def _args(seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(16, 33, generator=g) * 2).to(dtype)
    scale = torch.rand(16, generator=g) / 20 + 0.01
    zp = torch.zeros(16)
    return x, scale, zp


def _expected(x, scale, zp, qmin=-128, qmax=127, axis=0):
    return torch.ops.qsim.quantize_dequantize(x, scale, zp, qmin, qmax, axis)


def _call(out, x, scale, zp, qmin=-128, qmax=127, axis=0):
    """Poisons `out`, calls the op; returns whether it computed (else `out` kept the NaN)."""
    out.fill_(float("nan"))
    _OP(out, x, scale, zp, qmin, qmax, axis, None)
    computed = not out.isnan().all()
    if computed:
        assert_same(out, _expected(x, scale, zp, qmin, qmax, axis), "cached op's result")
    return computed


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_op_computes_once_then_only_when_an_input_changes(dtype):
    x, scale, zp = _args(dtype=dtype)
    out = torch.empty_like(x)
    assert _call(out, x, scale, zp), "first call"
    assert not _call(out, x, scale, zp), "same x, scale and zero point: kept"
    assert not _call(out, x.detach(), scale.clone(), zp.clone()), "equal qparams, alias of x: kept"
    x.mul_(1.5)  # the version counter moves
    assert _call(out, x, scale, zp), "x written in place"
    assert _call(out, x.clone(), scale, zp), "another x of the same values"
    assert _call(out, x, scale * 1.25, zp), "another scale"
    assert _call(out, x, scale, zp + 1), "another zero point"
    assert _call(out, x, scale, zp, qmin=-8, qmax=7), "another grid"
    assert _call(out, x, scale[:1].expand(33).contiguous(), torch.zeros(33), axis=1), "axis"
    assert not _call(out, x, scale[:1].expand(33).contiguous(), torch.zeros(33), axis=1)
    other = torch.empty_like(x)
    assert _call(other, x, scale, zp), "another out"
    assert _call(out, x, scale, zp), "out after another out's call"


def test_op_tells_views_of_one_storage_apart():
    x, scale, zp = _args()
    base = torch.cat([x, x * 3])
    out = torch.empty_like(x)
    assert _call(out, base[:16], scale, zp)
    assert _call(out, base[16:], scale, zp), "another offset in the same storage"
    assert _call(out, base[:16].t().contiguous().t(), scale, zp), "another layout"
    wide = torch.empty(32, 33)
    assert _call(wide[:16], base[:16], scale, zp)
    assert _call(wide[16:], base[:16], scale, zp), "another out in the same storage"
    assert not _call(wide[16:], base[:16], scale, zp)


def test_op_checks_its_arguments_as_quantize_dequantize_out():
    x, scale, zp = _args()
    with pytest.raises(ValueError, match="out shape"):
        _OP(torch.empty(3, 3), x, scale, zp, -128, 127, 0, None)
    with pytest.raises(ValueError, match="scale must be finite"):
        _OP(torch.empty_like(x), x, -scale, zp, -128, 127, 0, None)


def test_opcheck_cached_quantize_dequantize():
    x, scale, zp = _args()
    opcheck(torch.ops.qsim.cached_quantize_dequantize_, (torch.empty_like(x), x, scale, zp, -128,
                                                         127, 0, None))


class _Net(nn.Module):
    """Two linears, per-channel 4-bit and per-tensor 8-bit weight quantizers (no activations:
    every op in the graph is the weights')."""

    def __init__(self, dtype=torch.float32):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.a, self.b = nn.Linear(33, 16).to(dtype), nn.Linear(16, 5).to(dtype)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.qa = ParamQuantizeDequantize((16, 1), 4, symmetric=True).eval()
        self.qb = ParamQuantizeDequantize((), 8, symmetric=False).eval()
        self.qa.set_range(-self.a.weight.abs().amax(1, keepdim=True).float() * 0.8,
                          self.a.weight.abs().amax(1, keepdim=True).float() * 0.8)
        self.qb.set_range(-1.5, 2.0)
        self.qa.requires_grad_(False)
        self.qb.requires_grad_(False)

    def forward(self, x):
        x = nn.functional.linear(x, self.qa(self.a.weight), self.a.bias)
        return nn.functional.linear(torch.relu(x), self.qb(self.b.weight), self.b.bias)


def _eager(net, x):
    """`net(x)` computed by a copy that caches nothing."""
    clone = copy.deepcopy(net)
    for q in (clone.qa, clone.qb):
        q.clear_cache()
    with torch.no_grad():
        return clone(x)


def _quantized_weights(compiled, x):
    """The number of weights the compiled forward `compiled(x)` quantized."""
    with profile() as prof, torch.no_grad():
        compiled(x)
    return sum(e.count for e in prof.key_averages() if e.key == "qsim::quantize_dequantize_out")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@no_compile_caches
def test_compiled_eval_quantizes_weights_once_and_follows_every_change(dtype):
    torch._dynamo.reset()
    net, x = _Net(dtype), torch.randn(4, 33).to(dtype)
    compiled = torch.compile(net, fullgraph=True)
    with torch.no_grad():
        assert_same(compiled(x), _eager(net, x), "first forward")
        assert_same(compiled(x), _eager(net, x), "second forward (recompiled with the outputs)")
    assert net.qa._compiled_output.shape == net.a.weight.shape
    assert _quantized_weights(compiled, x) == 0, "weights unchanged: nothing quantized"
    changes = {
        "weight written in place": lambda: net.a.weight.mul_(1.1),
        "load_state_dict": lambda: net.b.load_state_dict({"weight": net.b.weight * 0.5,
                                                          "bias": net.b.bias}),
        "set_range": lambda: net.qb.set_range(-1.0, 1.0),
        "min/max through .data": lambda: [t.data.mul_(0.5) for t in (net.qa.min, net.qa.max)],
    }
    for what, change in changes.items():
        with torch.no_grad():
            change()
            assert_same(compiled(x), _eager(net, x), what)
        assert _quantized_weights(compiled, x) == 0, f"{what}: quantized once"
    net.qa.clear_cache()
    assert "_compiled_output" not in net.qa.__dict__
    with torch.no_grad():
        assert_same(compiled(x), _eager(net, x), "after clear_cache")
    net.train()
    assert "_compiled_output" not in net.qa.__dict__, "training drops the kept weight"
    net.eval()
    with torch.no_grad():
        compiled(x)
        assert_same(compiled(x), _eager(net, x), "back in eval")
    assert _quantized_weights(compiled, x) == 0


@no_compile_caches
def test_compiled_forwards_that_cannot_keep_the_weight_keep_nothing():
    torch._dynamo.reset()
    net, x = _Net(), torch.randn(4, 33)
    net.qb.cache_eval_output = False          # the sim's weight_cache=False
    assert net.qa.fold(net.a.weight)          # a folded weight needs no copy
    compiled = torch.compile(net, fullgraph=True)
    with torch.no_grad():
        assert_same(compiled(x), _eager(net, x), "folded / uncached")
    assert "_compiled_output" not in net.qa.__dict__ and "_compiled_output" not in net.qb.__dict__
    net.qb.cache_eval_output = True           # the weights require grad: computed every call
    assert_same(compiled(x).detach(), _eager(net, x), "with grad")
    assert "_compiled_output" not in net.qb.__dict__


@no_compile_caches
def test_compiled_sim_keeps_its_weights_across_an_optimizer_step():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(24, 48), nn.ReLU(), nn.Linear(48, 8))
    x = torch.randn(16, 24)
    sim = QuantizationSimModel(model, dummy_input=x)
    sim.compute_encodings(lambda m, _: m(x), None)
    compiled = torch.compile(sim.model.eval())
    with torch.no_grad():
        compiled(x)
        assert_same(compiled(x), sim.model(x), "compiled sim against the eager sim")
    kept = [m for m in sim.model.modules() if "_compiled_output" in m.__dict__]
    assert len(kept) == 2 and all(isinstance(m, ParamQuantizeDequantize) for m in kept)
    assert _quantized_weights(compiled, x) == 0
    sim.model.train()
    opt = torch.optim.SGD(sim.model.parameters(), lr=0.1)
    sim.model(x).square().mean().backward()
    opt.step()
    sim.model.eval()
    with torch.no_grad():
        assert_same(compiled(x), sim.model(x), "after a training step")
        assert_same(compiled(x), sim.model(x), "kept")
