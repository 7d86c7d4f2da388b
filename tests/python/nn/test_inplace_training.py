"""Training forwards quantize a wrapper's fresh output in place when its quantizer is a per-tensor
straight-through one on fp32 / fp16 / bf16 data (``qsim::quantize_dequantize_``, which keeps one
bit a value for the backward instead of the output), and only when that is safe.

Oracles: `ref_qdq` (the pure-torch formula) with the straight-through gradient applied to the
torch module's own output, bit for bit, values and every gradient; the same wrapper with the
in-place path switched off; torch's profiler for which qsim op ran; autograd's saved-tensor hooks
for what the graph keeps.
"""

import pytest
import torch
from torch import nn

import torchqsim.nn as qnn
from asserts import assert_same
from ops_run import qsim_ops
from wrapper_reference import narrow_quantizer, ref_qdq

INPLACE = "qsim::quantize_dequantize_"


def _frozen_output_quantizer(wrapper, x, shape=()):
    with torch.no_grad():
        y = wrapper(x)
    q = narrow_quantizer(y, shape)
    q.requires_grad_(False)          # a held range: straight-through training (QuantScheme tf)
    wrapper.output_quantizers[0] = q
    return wrapper


def _step(module, x, dy):
    """(output, dx, parameter gradients) of one forward and backward of `module`."""
    module.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    y = module(x)
    y.backward(dy)
    return y.detach(), x.grad, [p.grad for p in module.parameters() if p.requires_grad]


def ste_ref(q, t):
    """`ref_qdq`'s values, with the kernels' straight-through gradient: dy where not clamped and
    +0 where clamped (the kernels select; ref_qdq's product gives -0 for a negative dy)."""
    probe = t.detach().requires_grad_()
    kept = torch.autograd.grad(ref_qdq(q, probe).sum(), probe)[0].bool()
    return ref_qdq(q, t.detach()) + (torch.where(kept, t, t.detach()) - t.detach())


class Reference(nn.Module):
    """The torch module's output through `ste_ref`: what the wrapper must compute."""

    def __init__(self, torch_module, quantizer):
        super().__init__()
        self.torch_module, self.quantizer = torch_module, quantizer

    def forward(self, x):
        return ste_ref(self.quantizer, self.torch_module(x))


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Linear(16, 8), (5, 16)),
    (lambda: nn.Linear(16, 8), (3, 5, 16)),             # F.linear's 3-D view of its result
    (lambda: nn.Linear(16, 8, bias=False), (3, 5, 16)),
    (lambda: nn.Conv2d(3, 4, 3), (2, 3, 9, 9)),
    (nn.GELU, (6, 40)),
    (lambda: nn.Linear(16, 8).bfloat16(), (3, 5, 16)),
    (lambda: nn.Linear(16, 8).half(), (5, 16)),
], ids=["linear_2d", "linear_3d", "linear_3d_no_bias", "conv", "gelu", "linear_bf16", "linear_fp16"])
def test_straight_through_training_is_in_place_and_bit_exact(make, shape):
    torch.manual_seed(0)
    module = make()
    x = (torch.randn(shape) * 3).to(next(module.parameters(), torch.ones(1)).dtype)
    wrapper = _frozen_output_quantizer(qnn.to_quantized(module, "m"), x)
    dy = torch.randn(module(x).shape).to(x.dtype)
    assert INPLACE in qsim_ops(lambda: wrapper(x.clone().requires_grad_()))
    got = _step(wrapper, x, dy)
    want = _step(Reference(module, wrapper.output_quantizers[0]), x, dy)
    assert_same(got[0], want[0], "output")
    assert_same(got[1], want[1], "dx")
    for g, w in zip(got[2], want[2]):
        assert_same(g, w, "parameter gradient")
    enc = wrapper.output_quantizers[0].get_encoding()
    with torch.no_grad():
        pre = module(x)
    assert (pre < enc.min).any() and (pre > enc.max).any()  # both clamp ends are reached


def test_the_graph_keeps_no_copy_of_the_output():
    torch.manual_seed(1)
    wrapper = _frozen_output_quantizer(qnn.to_quantized(nn.Linear(16, 32), "m"), torch.randn(8, 16))
    saved = []

    def pack(t):
        saved.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        wrapper(torch.randn(8, 16, requires_grad=True))
    assert (8, 32) not in saved, f"an output-sized tensor was saved: {saved}"
    saved.clear()
    wrapper.output_quantizers[0].requires_grad_(True)  # range learning: its op keeps x
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        wrapper(torch.randn(8, 16, requires_grad=True))
    assert (8, 32) in saved  # the hooks see an output-sized tensor kept (this test can fail)


class SavesItsResult(nn.Module):
    def forward(self, x):
        return torch.softmax(x * 2, -1)   # softmax's backward reads its result


class ReturnsInput(nn.Module):
    def forward(self, x):
        return x


class KeepsOutput(nn.Module):
    def forward(self, x):
        self.kept = x * 2
        return self.kept


for _cls in (SavesItsResult, ReturnsInput, KeepsOutput):
    qnn.QuantizationMixin.wrap(_cls, module_name=__name__)


@pytest.mark.parametrize("case", ["saved_by_autograd", "returns_input", "kept", "learned_range",
                                  "per_channel", "hooked"])
def test_unsafe_or_unsupported_outputs_take_the_out_of_place_path(case):
    torch.manual_seed(2)
    module = {"saved_by_autograd": SavesItsResult, "returns_input": ReturnsInput,
              "kept": KeepsOutput}.get(case, lambda: nn.Linear(6, 6))()
    x = torch.randn(4, 6)
    wrapper = _frozen_output_quantizer(qnn.to_quantized(module, "m"), x,
                                       (6,) if case == "per_channel" else ())
    if case == "learned_range":
        wrapper.output_quantizers[0].requires_grad_(True)
    seen = []
    if case == "hooked":
        wrapper.output_quantizers[0].register_forward_hook(lambda m, args, out: seen.append(out))
    dy = torch.randn(4, 6)
    xi = x.clone().requires_grad_()
    assert INPLACE not in qsim_ops(lambda: wrapper(xi))
    got = _step(wrapper, x, dy)
    want = _step(Reference(module, wrapper.output_quantizers[0]), x, dy)
    assert_same(got[0], want[0], "output")
    assert_same(got[1], want[1], "dx")
    assert len(seen) == (2 if case == "hooked" else 0)  # the hook saw every call
