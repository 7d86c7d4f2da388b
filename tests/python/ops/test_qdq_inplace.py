"""``qsim::quantize_dequantize_``: qdq written into x itself (fp32, fp16, bf16), differentiable in
x by the straight-through estimator from one bit a value it keeps instead of x
(bindings/qdq_inplace.cpp).

Oracles: the out-of-place op ``quantize_dequantize`` with the backward that recomputes the mask
from x (``qdq_cases.x_based_qdq``) on a copy of the same input, bit for bit (values with NaN,
+-Inf, -0 and both clamp ends, in the three dtypes; gradients in x's layout, in a permuted one,
expanded, and held elsewhere); with ``relu=True``,
torch's ``relu`` then the out-of-place op, composed by autograd; ``torch.library.opcheck``;
errors that name the argument.
"""

import pytest
import torch
from torch.library import opcheck
from torch.profiler import ProfilerActivity, profile

import torchqsim  # noqa: F401  (registers the ops)
from asserts import assert_same
from qdq_cases import BAD_IN_PLACE_ARGUMENTS, grid_data, with_specials, x_based_qdq

ops = torch.ops.qsim
SCALE, ZP = torch.tensor(0.05), torch.tensor(3, dtype=torch.int32)


def _data(shape, seed=0):
    """Grid data (both clamp ends), with the special values where there is room for them."""
    g = torch.Generator().manual_seed(seed)
    x = grid_data(g, shape, SCALE, ZP, -128, 127)
    return with_specials(x) if x.numel() >= 100 else x


def _pair(x):
    """(a leaf copy of x, it times 1 through the in-place op, another leaf copy, it times 1
    through the out-of-place op)."""
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    y = a * 1.0
    ops.quantize_dequantize_(y, SCALE, ZP, -128, 127)
    return a, y, b, x_based_qdq(b * 1.0, SCALE, ZP, -128, 127)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (4, 6, 33), (3, 1000), (5, 4099)])
def test_values_and_gradient_equal_the_out_of_place_op(shape, dtype):
    a, y, b, want = _pair(_data(shape).to(dtype))
    assert_same(y.detach(), want.detach())
    dy = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    dy.view(-1)[::5] = -0.0
    y.backward(dy.clone())
    want.backward(dy.clone())
    assert_same(a.grad, b.grad, "dx")


def test_writes_into_x_and_keeps_no_copy_of_it():
    x = _data((64, 50)).requires_grad_()
    t = x * 1.0
    saved = []
    before = t.grad_fn
    with torch.autograd.graph.saved_tensors_hooks(lambda s: saved.append(s) or s, lambda s: s):
        ops.quantize_dequantize_(t, SCALE, ZP, -128, 127)
    assert t.grad_fn is not before and "QdqInPlaceFunction" in t.grad_fn.name()
    assert saved == [], "the node saved a tensor (the bits are its own)"


@pytest.mark.parametrize("grad_kind", ["permuted", "expanded", "held"])
def test_gradients_in_other_layouts_or_held_elsewhere(grad_kind):
    shape = (4, 6, 40)
    a, y, b, want = _pair(_data(shape, seed=2))
    g = torch.Generator().manual_seed(3)
    if grad_kind == "permuted":   # the gradient of a permuted view comes back permuted
        (y.permute(2, 0, 1) * torch.randn(40, 4, 6, generator=g)).sum().backward()
        (want.permute(2, 0, 1) * torch.randn(40, 4, 6, generator=torch.Generator().manual_seed(3))).sum().backward()
    elif grad_kind == "expanded":  # sum's gradient: an expanded tensor of ones
        y.sum().backward()
        want.sum().backward()
    else:                          # the incoming gradient also reaches another branch
        dy = torch.randn(shape, generator=g)
        (y + y.detach()).backward(dy)
        (want + want.detach()).backward(dy)
    assert_same(a.grad, b.grad, "dx")


def _allocations_in_backward(y, dy):
    """Tensors allocated (aten::empty / empty_strided calls) inside the op's autograd node during
    `y.backward(dy)`."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        y.backward(dy)
    nodes = [e for e in prof.events() if e.name.startswith("torch::autograd::CppNode")]
    assert len(nodes) == 1

    def allocations(e):
        return sum((c.name in ("aten::empty", "aten::empty_strided")) + allocations(c)
                   for c in e.cpu_children)
    return allocations(nodes[0])


def test_the_backward_writes_into_a_gradient_nothing_else_holds():
    x, w = _data((8, 300)).requires_grad_(), torch.randn(8, 300)

    def quantized():
        y = x * 1.0
        ops.quantize_dequantize_(y, SCALE, ZP, -128, 127)
        return y

    assert _allocations_in_backward(quantized().mul(w), torch.ones(8, 300)) == 0  # dy from mul
    held = torch.ones(8, 300)                                 # dy held by the caller
    assert _allocations_in_backward(quantized(), held) == 1
    assert_same(held, torch.ones(8, 300), "the caller's gradient")


def test_double_backward_raises_instead_of_returning_zeros():
    a, y, b, want = _pair(_data((6, 50)))
    w = torch.randn(6, 50, generator=torch.Generator().manual_seed(5)).requires_grad_()
    (g,) = torch.autograd.grad((y * w).sum(), a, create_graph=True)   # dy = w: on the graph
    (g_want,) = torch.autograd.grad((want * w).sum(), b, create_graph=True)
    assert_same(g.detach(), g_want.detach(), "first-order gradient with create_graph=True")
    assert g.requires_grad
    with pytest.raises(RuntimeError, match="quantize_dequantize_'s gradient is not differentiable"):
        torch.autograd.grad(g.sum(), w)


def test_permuted_x_keeps_its_layout():
    x = _data((6, 5, 8)).permute(2, 0, 1)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    y = a * 1.0
    assert not y.is_contiguous()
    ops.quantize_dequantize_(y, SCALE, ZP, -128, 127)
    want = x_based_qdq(b * 1.0, SCALE, ZP, -128, 127)
    assert_same(y.detach(), want.detach())
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(4))
    y.backward(dy)
    want.backward(dy)
    assert_same(a.grad, b.grad, "dx")


def test_without_grad_it_is_quantize_dequantize_out():
    x = _data((3, 70))
    want = ops.quantize_dequantize(x, SCALE, ZP, -128, 127)
    version = x._version
    ops.quantize_dequantize_(x, SCALE, ZP, -128, 127)
    assert_same(x, want)
    assert x._version > version


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(requires_grad):
    x = _data((4, 6, 20))
    x = (x.requires_grad_() * 1.0) if requires_grad else x
    opcheck(ops.quantize_dequantize_, (x, SCALE, ZP, -128, 127))


@pytest.mark.parametrize("shape", [(0,), (5,), (4, 6, 21)])
def test_clamped_bits_are_the_clamped_elements(shape):
    x = _data(shape)
    want = ops.quantize_dequantize_backward_data(torch.ones(shape), x, SCALE, ZP, -128, 127,
                                                 None, None) == 0
    y = x.clone()
    bits = ops.quantize_dequantize_clamped_(y, SCALE, ZP, -128, 127)
    assert bits.dtype == torch.uint8 and bits.shape == ((x.numel() + 7) // 8,)
    flags = (bits[torch.arange(x.numel()) // 8] >> (torch.arange(x.numel()) % 8)) & 1
    assert torch.equal(flags.bool(), want.reshape(-1))
    assert_same(y, ops.quantize_dequantize(x, SCALE, ZP, -128, 127))
    opcheck(ops.quantize_dequantize_clamped_, (x.clone(), SCALE, ZP, -128, 127))


# A grid that starts at 0 (zero point == qmin): qdq(x) == qdq(relu(x))
FLOOR_ZP = torch.tensor(-128, dtype=torch.int32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", [(1,), (7,), (4, 6, 33), (5, 4099)])
def test_relu_is_relu_then_the_out_of_place_op(shape, dtype):
    x = _data(shape).to(dtype)
    x.view(-1)[:4] = torch.tensor([0.0, -0.0, -1e-30, 1e-30]).to(dtype)[:x.numel()]
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    y = a * 1.0
    ops.quantize_dequantize_(y, SCALE, FLOOR_ZP, -128, 127, relu=True)
    want = x_based_qdq(torch.relu(b * 1.0), SCALE, FLOOR_ZP, -128, 127)
    assert_same(y.detach(), want.detach())
    dy = torch.randn(shape, generator=torch.Generator().manual_seed(3)).to(dtype)
    y.backward(dy.clone())
    want.backward(dy.clone())
    assert_same(a.grad, b.grad, "dx")
    assert (a.grad == 0).sum() > (ops.quantize_dequantize_backward_data(
        dy, x, SCALE, FLOOR_ZP, -128, 127, None, None) == 0).sum()  # ReLU's zeros count


def test_relu_opcheck_and_a_grid_that_does_not_start_at_zero():
    x = _data((4, 6, 20)).requires_grad_() * 1.0
    opcheck(ops.quantize_dequantize_, (x, SCALE, FLOOR_ZP, -128, 127, True))
    opcheck(ops.quantize_dequantize_clamped_, (x.detach().clone(), SCALE, FLOOR_ZP, -128, 127, True))
    with pytest.raises(ValueError, match="relu=True needs a grid that starts at 0"):
        ops.quantize_dequantize_(x.detach().clone(), SCALE, ZP, -128, 127, relu=True)


@pytest.mark.parametrize(**BAD_IN_PLACE_ARGUMENTS)
def test_bad_arguments_are_named(make, error, words):
    with pytest.raises(error, match=words):
        ops.quantize_dequantize_(*make(), -128, 127)


def test_a_scale_that_requires_grad_is_refused():
    x = torch.ones(4, requires_grad=True) * 1.0
    with pytest.raises(ValueError, match="scale and zero_point must not require grad"):
        ops.quantize_dequantize_(x, SCALE.clone().requires_grad_(), ZP, -128, 127)
