"""No-grad forwards quantize a wrapper's fresh output in place, and only when that is safe.

Oracles: the same wrapper run with grad mode on (with its learned range, never in place), `ref_qdq` (the
pure-torch formula), the inputs / parameters / kept tensors compared with copies taken before
the call, and torch's profiler for which qsim op ran (``quantize_dequantize_`` = in place).
"""

import pytest
import torch
from torch import nn

import torchqsim.nn as qnn
from asserts import assert_same
from ops_run import qsim_ops
from wrapper_reference import narrow_quantizer, ref_qdq


IN_PLACE = "qsim::quantize_dequantize_"  # per-tensor fp32 in place (quantize_dequantize_out else)


def _with_output_quantizer(wrapper, x):
    with torch.no_grad():
        y = wrapper(x)
    wrapper.output_quantizers[0] = narrow_quantizer(y)
    return wrapper


def test_fresh_output_is_quantized_in_place_bit_for_bit():
    torch.manual_seed(0)
    linear = nn.Linear(16, 8)
    x = torch.randn(4, 16)
    q = _with_output_quantizer(qnn.QuantizedLinear.from_module(linear), x)
    expected = ref_qdq(q.output_quantizers[0], linear(x)).detach()
    with torch.no_grad():
        # the first call also computes the encoding's zero point (qsim::zero_point), then cached
        assert qsim_ops(lambda: q(x)) == ["qsim::zero_point", IN_PLACE]
        assert qsim_ops(lambda: q(x)) == [IN_PLACE]
        y = q(x)
    assert_same(y, expected)
    assert_same(q(x).detach(), expected)  # grad mode, learned range: a new tensor, same bits
    assert "qsim::quantize_dequantize" in qsim_ops(lambda: q(x))


class ViewOfTemporary(nn.Module):
    def forward(self, x):
        return (x * 2).t()          # a non-contiguous view of a tensor nothing else holds


class ViewOfKeptTensor(nn.Module):
    def forward(self, x):
        self.kept = x * 2
        return self.kept.reshape(-1)


class ViewBesideKeptView(nn.Module):
    def forward(self, x):
        y = x * 2
        self.kept = y[0]
        return y.reshape(-1)


@pytest.mark.parametrize("make, x", [
    (lambda: qnn.QuantizedLinear.from_module(nn.Linear(16, 8)), torch.randn(3, 4, 16)),
    (lambda: qnn.QuantizationMixin.wrap(ViewOfTemporary, module_name=__name__)(), torch.randn(3, 5))],
    ids=["linear_3d_bias", "view_of_temporary"])
def test_a_view_of_a_tensor_nothing_else_holds_is_quantized_in_place(make, x):
    torch.manual_seed(2)
    q = _with_output_quantizer(make(), x)
    expected = q(x).detach()                          # grad mode, learned range: a new tensor
    with torch.no_grad():
        q(x)                                          # caches the encoding's zero point
        assert qsim_ops(lambda: q(x)) == [IN_PLACE]
        y = q(x)
    assert y._base is not None
    assert_same(y, expected)


class ReturnsInput(nn.Module):
    def forward(self, x):
        return x


class ReturnsView(nn.Module):
    def forward(self, x):
        return x.reshape(-1)


class ReturnsSlice(nn.Module):
    def forward(self, x):
        return (x * 2)[1:]


class KeepsOutput(nn.Module):
    def forward(self, x):
        self.kept = x * 2
        return self.kept


class KeepsView(nn.Module):
    def forward(self, x):
        y = x * 2
        self.kept = y[0]
        return y


class ReturnsWeight(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 5))

    def forward(self, x):
        return self.weight


class ReturnsBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("table", torch.randn(3, 5))

    def forward(self, x):
        return self.table


class Expanded(nn.Module):
    def forward(self, x):
        return (x[0] * 2).expand(3, 5)


for _cls in (ReturnsInput, ReturnsView, ReturnsSlice, KeepsOutput, KeepsView, ReturnsWeight,
             ReturnsBuffer, Expanded, ViewOfKeptTensor, ViewBesideKeptView):
    qnn.QuantizationMixin.wrap(_cls, module_name=__name__)


ALIASING = [lambda: nn.ReLU(inplace=True), lambda: nn.Dropout(0.5).eval(), nn.Flatten,
            ReturnsInput, ReturnsView, ReturnsSlice, KeepsOutput, KeepsView, ReturnsWeight,
            ReturnsBuffer, Expanded, ViewOfKeptTensor, ViewBesideKeptView]


@pytest.mark.parametrize("make", ALIASING, ids=lambda m: getattr(m, "__name__", "lambda"))
def test_outputs_sharing_memory_or_still_referenced_are_not_overwritten(make):
    torch.manual_seed(1)
    module = make()
    wrapper = qnn.to_quantized(module, "m")
    x = torch.randn(3, 5)
    wrapper = _with_output_quantizer(wrapper, x.clone())
    state = {k: v.clone() for k, v in wrapper.state_dict().items() if v.is_floating_point()}
    x_before = x.clone()
    expected = wrapper(x.clone()).detach()           # grad mode, learned range: not in place
    kept = getattr(wrapper, "kept", None)
    kept_before = None if kept is None else kept.clone()
    with torch.no_grad():
        assert IN_PLACE not in qsim_ops(lambda: wrapper(x))
        y = wrapper(x)
    assert_same(y, expected)
    if not isinstance(wrapper, qnn.QuantizedReLU):   # ReLU(inplace=True) writes x by design
        assert_same(x, x_before, "input")
    for k, v in state.items():
        assert_same(wrapper.state_dict()[k], v, k)
    if kept_before is not None:
        assert_same(wrapper.kept, kept_before.detach(), "kept tensor")


def test_custom_output_quantizer_and_tuple_outputs_use_the_ordinary_path():
    class Twice(nn.Module):
        def forward(self, x):
            return x * 2

    calls = []

    class Recording(nn.Module):
        def forward(self, x):
            calls.append(x)
            return x + 1

    wrapper = qnn.QuantizationMixin.wrap(Twice, module_name=__name__)()
    wrapper.output_quantizers[0] = Recording()
    with torch.no_grad():
        y = wrapper(torch.ones(2))
    assert_same(y, torch.full((2,), 3.0)) and assert_same(calls[0], torch.full((2,), 2.0))


def test_no_in_place_write_under_tracing():
    linear = nn.Linear(4, 2)
    q = _with_output_quantizer(qnn.QuantizedLinear.from_module(linear), torch.randn(3, 4))
    with torch.no_grad():
        traced = torch.jit.trace(q, torch.randn(3, 4), check_trace=False)
    ops = str(traced.inlined_graph)
    assert "qsim::quantize_dequantize(" in ops and "quantize_dequantize_(" not in ops


@pytest.mark.parametrize("how", ["forward hook", "compiled"])
def test_an_output_quantizer_with_hooks_or_compiled_is_called(how):
    linear = nn.Linear(4, 2)
    x = torch.randn(3, 4)
    q = _with_output_quantizer(qnn.QuantizedLinear.from_module(linear), x)
    expected = ref_qdq(q.output_quantizers[0], linear(x)).detach()
    seen = []
    if how == "forward hook":
        q.output_quantizers[0].register_forward_hook(lambda m, args, y: seen.append(y) or y + 1)
        expected = expected + 1
    else:
        def backend(gm, inputs):
            seen.append(gm)
            return gm.forward
        q.output_quantizers[0].compile(backend=backend)
    with torch.no_grad():
        y = q(x)
    assert seen, f"the quantizer's {how} did not run"
    assert_same(y, expected)
