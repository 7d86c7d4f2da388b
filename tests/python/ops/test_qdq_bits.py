"""``quantize_dequantize``'s eager float32 straight-through calls per tensor keep one bit a value
instead of x (bindings/qdq_bits.h): same values and gradient, and the graph holds no copy of x.

Oracles: the op without autograd for the values and ``quantize_dequantize_backward_data`` (the
mask recomputed from x) for the gradient, through ``qdq_cases.x_based_qdq``, bit for bit (special
values, both clamp ends, dense layouts other than contiguous, gradients permuted, expanded or
held elsewhere); autograd's saved-tensor hooks for what the graph keeps; the grad_fn's name for
which node ran.
"""

import pytest
import torch

import torchqsim  # noqa: F401  (registers the ops)
from asserts import assert_same
from qdq_cases import grid_data, with_specials, x_based_qdq

ops = torch.ops.qsim
SCALE, ZP = torch.tensor(0.05), torch.tensor(3, dtype=torch.int32)
BITS = "QdqBitsFunction"


def _data(shape, seed=0):
    x = grid_data(torch.Generator().manual_seed(seed), shape, SCALE, ZP, -128, 127)
    return with_specials(x) if x.numel() >= 100 else x


@pytest.mark.parametrize("shape, layout", [((1,), None), ((7,), None), ((4, 6, 33), None),
                                           ((5, 4099), None), ((2, 3, 9, 7), "channels_last"),
                                           ((6, 5, 8), "permuted")])
@pytest.mark.parametrize("grad_kind", ["plain", "permuted", "expanded", "held"])
def test_values_and_gradient_equal_the_x_based_backward(shape, layout, grad_kind):
    x = _data(shape)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "permuted":
        x = x.permute(2, 0, 1).contiguous().permute(1, 2, 0)
    a, b = x.clone(memory_format=torch.preserve_format).requires_grad_(), x.clone().requires_grad_()
    y, want = ops.quantize_dequantize(a, SCALE, ZP, -128, 127), x_based_qdq(b, SCALE, ZP, -128, 127)
    assert BITS in y.grad_fn.name()
    assert y.stride() == x.stride()
    assert_same(y.detach(), want.detach())
    dy = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    dy.view(-1)[::5] = -0.0
    if grad_kind == "permuted":
        dy = dy.transpose(0, -1).contiguous().transpose(0, -1)
    for out in (y, want):
        if grad_kind == "expanded":
            out.sum().backward()
        elif grad_kind == "held":
            (out + out.detach()).backward(dy)
        else:
            out.backward(dy.clone())
    assert_same(a.grad, b.grad, "dx")


def test_the_graph_keeps_no_copy_of_x():
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
        y = ops.quantize_dequantize(_data((64, 50)).requires_grad_() * 1.0, SCALE, ZP, -128, 127)
        assert saved == []
        x_based_qdq(_data((64, 50)).requires_grad_() * 1.0, SCALE, ZP, -128, 127)
    assert saved == [(64, 50), (), ()]  # the x-based node keeps x (this test can fail)
    assert BITS in y.grad_fn.name()


@pytest.mark.parametrize("case", ["float16", "per_channel", "learned_scale", "slice", "no_grad"])
def test_other_calls_keep_the_node_that_keeps_x(case):
    x, scale, zp, axis = _data((8, 40)), SCALE, ZP, None
    if case == "float16":
        x = x.half()
    elif case == "per_channel":
        scale, zp, axis = SCALE.repeat(40), ZP.repeat(40), 1
    elif case == "learned_scale":
        scale = SCALE.clone().requires_grad_()
    x = x.clone().requires_grad_(case != "no_grad")
    if case == "slice":  # not dense
        x = x[:, ::2]
    y = ops.quantize_dequantize(x, scale, zp, -128, 127, axis)
    assert y.grad_fn is None if case == "no_grad" else BITS not in y.grad_fn.name()


def test_double_backward_raises_instead_of_returning_zeros():
    a = _data((6, 50)).requires_grad_()
    w = torch.randn(6, 50, generator=torch.Generator().manual_seed(5)).requires_grad_()
    (g,) = torch.autograd.grad((ops.quantize_dequantize(a, SCALE, ZP, -128, 127) * w).sum(), a,
                               create_graph=True)
    b = a.detach().clone().requires_grad_()
    (g_want,) = torch.autograd.grad((x_based_qdq(b, SCALE, ZP, -128, 127) * w).sum(), b)
    assert_same(g.detach(), g_want, "first-order gradient with create_graph=True")
    with pytest.raises(RuntimeError,
                       match=r"qsim\.quantize_dequantize's gradient is not differentiable"):
        torch.autograd.grad(g.sum(), w)


def test_bad_arguments_are_named_as_for_the_op():
    x = _data((4, 10)).requires_grad_()
    with pytest.raises(ValueError, match=r"^quantize_dequantize: scale must be finite and > 0"):
        ops.quantize_dequantize(x, torch.tensor(-0.1), ZP, -128, 127)
    with pytest.raises(ValueError, match=r"^quantize_dequantize: scale must be finite and > 0"):
        ops.quantize_dequantize(x.detach(), torch.tensor(-0.1), ZP, -128, 127)  # the same words
