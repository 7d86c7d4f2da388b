"""The qdq backward writes dx into the incoming gradient when autograd hands over the only
reference to it (bindings/qdq_autograd.cpp, op ``qsim::quantize_dequantize_backward_``).

Oracles: the out-of-place backward op (``quantize_dequantize_backward``) on the same arguments,
bit for bit (dx, dscale, dzero_point), on every layout and data dtype with special values; the
same training chains with the gradient kept alive by a hook (which forces the out-of-place
path), bit for bit; torch's profiler for which backward op ran. Eager float32 straight-through
calls per tensor keep one bit a value instead of x (bindings/qdq_bits.h): their backward is that
node's, into the gradient the same way.
"""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import torchqsim  # noqa: F401  (registers the ops)
from asserts import assert_same
from qdq_cases import LAYOUTS, SHAPE, grid_data, make_qparams, with_specials

ops = torch.ops.qsim
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _args(layout, dtype, zp_dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    axis, block = LAYOUTS[layout]
    scale, zp = make_qparams(g, SHAPE, axis, block, -8, 7, zp_dtype)
    x = with_specials(grid_data(g, SHAPE, scale, zp, -8, 7, axis, block)).to(dtype)
    return x, scale, zp, axis, block, torch.randn(SHAPE, generator=g).to(dtype)


@pytest.mark.parametrize("transposed", [False, True], ids=["dense", "transposed-grad"])
@pytest.mark.parametrize("zp_dtype,qparam_grads", [(torch.int32, False), (torch.float32, True)],
                         ids=["ste", "range-learning"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_into_grad_equals_the_out_of_place_backward(layout, dtype, zp_dtype, qparam_grads,
                                                    transposed):
    x, scale, zp, axis, block, dy = _args(layout, dtype, zp_dtype)
    want = ops.quantize_dequantize_backward(dy, x, scale, zp, -8, 7, axis, block, qparam_grads)
    grad = dy.transpose(0, 2).contiguous().transpose(0, 2) if transposed else dy.clone()
    ds, dzp = ops.quantize_dequantize_backward_(grad, x, scale, zp, -8, 7, axis, block,
                                                qparam_grads)
    assert_same(grad, want[0], "dx (written into grad)")
    assert_same(ds, want[1], "dscale")
    assert_same(dzp, want[2], "dzero_point")


@pytest.mark.parametrize("grad,error,match", [
    (torch.zeros(4, 6, 20, dtype=torch.float16), TypeError, "grad dtype"),
    (torch.zeros(4, 6, 21), ValueError, "grad shape"),
    (torch.zeros(1, 1, 20).expand(4, 6, 20), ValueError, "grad has elements that share"),
])
def test_bad_grad_is_refused_by_name(grad, error, match):
    x, scale, zp, axis, block, _ = _args("per-tensor", torch.float32, torch.int32)
    with pytest.raises(error, match=match):
        ops.quantize_dequantize_backward_(grad, x, scale, zp, -8, 7, axis, block, False)


BITS_NODE = "QdqBitsFunction"  # the node that keeps bits (its backward runs no op)


def _backward_ops(fn):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    names = {e.name for e in prof.events()}
    return sorted({n for n in names if n.startswith("qsim::quantize_dequantize_b")} |
                  ({BITS_NODE} if any(BITS_NODE in n for n in names) else set()))


def _train_step(layout, learn, keep_grad):
    """x -> linear -> gelu -> qdq -> linear -> loss; returns the leaves' gradients and the
    backward ops that ran. `keep_grad` holds the qdq output's gradient in a hook."""
    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(20, 20), torch.nn.Linear(20, 3)
    x = torch.randn(4, 6, 20, requires_grad=True)
    axis, block = LAYOUTS[layout]
    scale, zp = make_qparams(torch.Generator().manual_seed(1), SHAPE, axis, block, -128, 127,
                             torch.float32 if learn else torch.int32)
    scale = (scale * 4).requires_grad_(learn)
    zp = zp.requires_grad_(learn)
    kept = []

    def step():
        y = torch.ops.qsim.quantize_dequantize(torch.nn.functional.gelu(lin1(x)), scale, zp,
                                               -128, 127, axis, block)
        if keep_grad:
            y.register_hook(kept.append)
        lin2(y).square().sum().backward()

    ran = _backward_ops(step)
    leaves = [x, lin1.weight, lin1.bias] + ([scale, zp] if learn else [])
    return [t.grad for t in leaves], ran


@pytest.mark.parametrize("learn", [False, True], ids=["ste", "range-learning"])
@pytest.mark.parametrize("layout", ["per-tensor", "axis-1", "block-axis-1"])
def test_training_gradients_are_the_same_in_place(layout, learn):
    into, ran_into = _train_step(layout, learn, keep_grad=False)
    kept, ran_kept = _train_step(layout, learn, keep_grad=True)
    if layout == "per-tensor" and not learn:
        assert ran_into == ran_kept == [BITS_NODE]
    else:
        assert ran_into == ["qsim::quantize_dequantize_backward_"]
        # out of place: the data gradient alone without qparam gradients
        assert ran_kept == ["qsim::quantize_dequantize_backward" + ("" if learn else "_data")]
    for a, b in zip(into, kept):
        assert_same(a, b, "gradient")


def test_a_gradient_the_caller_holds_is_left_alone():
    x, scale, zp, axis, block, dy = _args("axis0", torch.float32, torch.int32)
    x.requires_grad_()
    before = dy.clone()
    y = ops.quantize_dequantize(x, scale, zp, -8, 7, axis, block)
    assert _backward_ops(lambda: torch.autograd.grad(y, x, dy)) == \
        ["qsim::quantize_dequantize_backward_data"]
    assert_same(dy, before, "the caller's gradient")


@pytest.mark.parametrize("layout, ran", [("per-tensor", BITS_NODE),
                                         ("axis0", "qsim::quantize_dequantize_backward_data")])
def test_create_graph_keeps_the_gradient(layout, ran):
    x, scale, zp, axis, block, _ = _args(layout, torch.float32, torch.int32)
    x.requires_grad_()
    got = []

    def twice():
        y = ops.quantize_dequantize(x, scale, zp, -8, 7, axis, block)
        dy = 2 * y  # on the graph: not the backward's to overwrite
        before = dy.detach().clone()
        got.append((torch.autograd.grad(y, x, dy, create_graph=True)[0], before, dy))

    assert _backward_ops(twice) == [ran]
    dx, before, dy = got[0]
    assert_same(dy.detach(), before, "the gradient on the graph")
    assert_same(dx.detach(), ops.quantize_dequantize_backward_data(
        before, x.detach(), scale, zp, -8, 7, axis, block), "dx")
