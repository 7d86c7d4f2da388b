"""A ReLU whose output quantizer's grid starts at 0 writes into its input when nothing else can
read that input: the caller passed a temporary, or a captured graph's value that dies with the
call (`torchqsim.nn.overwritable.argument_overwritable`). In training with a straight-through
quantizer it keeps one bit a value for the gradient of ReLU and the quantizer together
(``qsim::quantize_dequantize_`` with ``relu=True``).

Oracles: ``nn.ReLU`` then the quantizer through `ste_ref` (the pure-torch formula with the
kernels' straight-through gradient), bit for bit, values and every gradient; the same model with
the path switched off; torch's profiler for which ops ran; the caller's tensor after the call.
"""

import copy

import pytest
import torch
from torch import nn

import torchqsim.nn.activation as activation
from asserts import assert_same
from ops_run import qsim_ops
from test_inplace_training import INPLACE, ste_ref
from test_relu_floor import _edge_values, _relu
from torchqsim.nn.overwritable import argument_overwritable, mark_dying_inputs
from torchqsim.quantsim import QuantizationSimModel


class LinearReLU(nn.Module):
    """A linear layer whose result goes to the ReLU as a temporary (or held, with `keep`)."""

    def __init__(self, relu, keep=False):
        super().__init__()
        self.lin, self.relu, self.keep = nn.Linear(16, 24), relu, keep

    def forward(self, x):
        if self.keep:
            h = self.lin(x)
            return self.relu(h) + h  # h is read again after the ReLU
        return self.relu(self.lin(x))


def _step(model, x, dy):
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    y = model(x)
    y.backward(dy)
    return [y.detach(), x.grad] + [p.grad for p in model.parameters() if p.requires_grad]


def _grad_ops(model, x):
    return qsim_ops(lambda: model(x.clone().requires_grad_()))


@pytest.mark.parametrize("dtype, shape, inplace", [
    (torch.float32, (40, 16), False), (torch.float32, (3, 5, 16), False),
    (torch.float32, (40, 16), True), (torch.bfloat16, (3, 5, 16), False),
    (torch.float16, (40, 16), False)], ids=["fp32", "linear_3d", "inplace_module", "bf16", "fp16"])
def test_training_writes_into_a_temporary_input_bit_exact(dtype, shape, inplace):
    torch.manual_seed(0)
    relu = _relu(0.0, 1.0, inplace=inplace)
    relu.output_quantizers[0].requires_grad_(False)  # held range: straight-through
    model = LinearReLU(relu).to(dtype)
    ref = LinearReLU(nn.ReLU()).to(dtype)
    ref.lin = model.lin
    x = (torch.randn(shape) * 2).to(dtype)
    dy = torch.randn(shape[:-1] + (24,)).to(dtype)
    q = relu.output_quantizers[0]
    reference = nn.Sequential(ref, _Through(q))
    ops = _grad_ops(model, x)
    assert INPLACE in ops and "aten::relu" not in ops and "aten::relu_" not in ops
    got, want = _step(model, x, dy), _step(reference, x, dy)
    for what, g, w in zip(["output", "dx", "weight grad", "bias grad"], got, want):
        assert_same(g, w, what)
    pre = model.lin(x).detach()
    assert (pre < 0).any() and (pre > q.get_encoding().max).any()  # ReLU's zeros and the clamp


class _Through(nn.Module):
    def __init__(self, q):
        super().__init__()
        self.q = q

    def forward(self, t):
        return ste_ref(self.q, t)


def test_a_held_input_is_left_alone():
    torch.manual_seed(1)
    relu = _relu(0.0, 1.0)
    relu.output_quantizers[0].requires_grad_(False)
    model, x = LinearReLU(relu, keep=True), torch.randn(8, 16)
    ref = LinearReLU(nn.ReLU(), keep=True)
    ref.lin = model.lin
    reference = _KeepRef(ref, relu.output_quantizers[0])
    assert INPLACE not in _grad_ops(model, x)
    dy = torch.randn(8, 24)
    for what, g, w in zip(["output", "dx", "weight grad", "bias grad"], _step(model, x, dy),
                          _step(reference, x, dy)):
        assert_same(g, w, what)
    want = reference(x).detach()
    with torch.no_grad():
        assert_same(model(x), want)  # without autograd too


class _KeepRef(nn.Module):
    def __init__(self, ref, q):
        super().__init__()
        self.ref, self.q = ref, q

    def forward(self, x):
        h = self.ref.lin(x)
        return ste_ref(self.q, torch.relu(h)) + h


def test_no_grad_writes_into_a_temporary_and_not_into_a_held_tensor():
    m, x = _relu(0.0, 3.0), _edge_values()
    with torch.no_grad():
        want = m.output_quantizers[0](torch.relu(x))
        t = x.clone()
        assert INPLACE not in qsim_ops(lambda: m(t))
        assert_same(t, x)  # the caller's tensor is untouched
        assert INPLACE in qsim_ops(lambda: m(x.clone()))
        assert_same(m(x.clone()), want)


def test_calls_that_do_not_come_through_module_call_are_refused():
    m = _relu(0.0, 3.0)
    assert not argument_overwritable(m, torch.ones(3))  # not from a module's forward
    with torch.no_grad():
        assert INPLACE not in qsim_ops(lambda: m.forward(torch.ones(3)))
    m.register_forward_hook(lambda *a: None)
    with torch.no_grad():
        assert INPLACE not in qsim_ops(lambda: m(torch.ones(3)))


class Net(nn.Module):
    """conv-bn-relu where bn's result dies at the ReLU, and a ReLU whose input is read again."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.relu = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(8, 8, 1), nn.ReLU()

    def forward(self, x):
        y = self.relu(self.bn(self.conv(x)))
        z = self.conv2(y)
        return self.relu2(z) - z


def _calibrated_sim():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 12, 12)
    sim = QuantizationSimModel(Net(), x, quant_scheme="tf", config_file="per_channel")
    sim.compute_encodings(lambda m, _: m(x), None)
    sim.model.train()
    return sim, x


def _in_place_relu_calls(model, x):
    """How many in-place qdq calls wrote into a ReLU's input (the op with relu=True)."""
    calls = []
    original = activation.straight_through_into
    activation.straight_through_into = lambda q, t, relu=False: calls.append(relu) or \
        original(q, t, relu)
    try:
        model(x.clone().requires_grad_()).sum().backward()
    finally:
        activation.straight_through_into = original
    return len(calls)


def test_a_captured_graph_lets_a_dying_value_be_overwritten_and_nothing_else():
    sim, x = _calibrated_sim()
    relu, relu2 = sim.model.relu, sim.model.relu2
    assert relu.output_quantizers[0].floors_at_zero((1,)) and relu2.output_quantizers[0] is not None
    assert _in_place_relu_calls(sim.model, x) == 1  # relu; relu2's input z is read again
    dy = torch.randn(sim.model(x).shape)
    got = _step(sim.model, x, dy)
    original = activation.argument_overwritable
    activation.argument_overwritable = lambda m, t: False
    try:
        want = _step(sim.model, x, dy)
    finally:
        activation.argument_overwritable = original
    for g, w in zip(got, want):
        assert_same(g, w)
    # a copy of the graph (recompiled, new modules) gets no leave from the original's marks
    assert _in_place_relu_calls(copy.deepcopy(sim.model), x) == 0


class SharedReLU(nn.Module):
    """One ReLU module called twice: on a value that dies there, and on one read again (in this
    order, or the other with `living_first`)."""

    def __init__(self, relu, living_first=False):
        super().__init__()
        self.lin, self.relu, self.living_first = nn.Linear(16, 16), relu, living_first

    def forward(self, x):
        if self.living_first:
            h = self.lin(x)
            return self.relu(self.lin(self.relu(h) + h))
        a = self.relu(self.lin(x))
        h = self.lin(a)
        return self.relu(h) + h

    def reference(self, x):
        """The forward with the ReLU and its quantizer as separate ops (nothing overwritten)."""
        q = self.relu.output_quantizers[0]
        if self.living_first:
            h = self.lin(x)
            return q(torch.relu(self.lin(q(torch.relu(h)) + h)))
        h = self.lin(q(torch.relu(self.lin(x))))
        return q(torch.relu(h)) + h


class _LeafReLU(torch.fx.Tracer):
    def is_leaf_module(self, m, name):
        return isinstance(m, activation.QuantizedReLU) or super().is_leaf_module(m, name)


@pytest.mark.parametrize("living_first", [False, True])
def test_a_module_called_where_its_input_lives_on_gets_no_leave(living_first):
    relu = _relu(0.0, 1.0)
    model = SharedReLU(relu, living_first)
    gm = torch.fx.GraphModule(model, _LeafReLU().trace(model))
    assert [n.target for n in gm.graph.nodes if n.op == "call_module"].count("relu") == 2
    mark_dying_inputs(gm)
    x = torch.randn(8, 16)
    with torch.no_grad():
        want = model.reference(x)
        assert INPLACE not in qsim_ops(lambda: gm(x))
        assert_same(gm(x), want)
