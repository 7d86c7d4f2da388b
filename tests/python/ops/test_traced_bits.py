"""The straight-through ``quantize_dequantize`` of compiled graphs keeps x's bits, not x
(``qsim::quantize_dequantize_bits`` and ``quantize_dequantize_bits_backward``, qdq_autograd.cpp),
and so does the in-place ``quantize_dequantize_`` traced with a gradient (its backward in place:
``quantize_dequantize_bits_backward_``, qdq_inplace.cpp).

Oracles: the eager op (values and gradients bit for bit, the eager node being tested against the
formula elsewhere), torch's fake quantization and its straight-through mask for the ops alone,
``torch.library.opcheck``, and torch's profiler for which ops a compiled graph runs.
"""

import pytest
import torch
from torch.library import opcheck

import torchqsim  # noqa: F401  (registers the ops)
from asserts import assert_same
from ops_run import no_compile_caches, qsim_ops
from qdq_cases import with_specials

ops = torch.ops.qsim
SCALE, ZP = torch.tensor(0.05), torch.tensor(3, dtype=torch.int32)
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _data(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return with_specials(torch.randn(shape, generator=g) * 4).to(dtype)


def _step(x, w):
    """A product after the quantizer, so that the incoming gradient is not all ones."""
    return (ops.quantize_dequantize(x * 2.0, SCALE, ZP, -128, 127) * w).nansum()


def _compiled_matches_eager(step, x, w):
    """Checks ``step(x, w)`` compiled against eager (the loss and x's gradient, bit for bit);
    returns the qsim ops the compiled step and its backward run."""
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    want_y = step(a, w)
    (want,) = torch.autograd.grad(want_y, a)
    compiled = torch.compile(step, fullgraph=True)
    got_y = compiled(b, w)
    (got,) = torch.autograd.grad(got_y, b)
    assert_same(got_y, want_y, "loss")
    assert_same(got, want, "dx")
    return set(qsim_ops(lambda: torch.autograd.grad(compiled(b, w), b)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "4-D"])
@no_compile_caches
def test_compiled_straight_through_matches_eager(dtype, layout):
    torch._dynamo.reset()
    x = _data((24, 37), dtype)
    x = {"contiguous": x, "transposed": x.t().contiguous().t(), "4-D": x.view(2, 3, 4, 37)}[layout]
    ran = _compiled_matches_eager(_step, x, _data(x.shape, dtype, seed=1))
    if layout == "contiguous":  # the graph keeps the bits
        assert {"qsim::quantize_dequantize_bits", "qsim::quantize_dequantize_bits_backward"} <= ran
        assert "qsim::quantize_dequantize_backward_data" not in ran, ran
    else:  # x * 2.0 of a transposed x, or a 4-D x (inductor may lay it out channels-last):
        assert "qsim::quantize_dequantize_bits" not in ran, ran  # x's node, as before


@no_compile_caches
def test_range_learning_and_per_channel_keep_x():
    torch._dynamo.reset()
    x = _data((8, 16)).requires_grad_()
    scale = torch.full((8,), 0.05)
    zp = torch.zeros(8, dtype=torch.int32)

    def per_channel(t):
        return ops.quantize_dequantize(t, scale, zp, -128, 127, 0).sum()

    def learned(t, s):
        return ops.quantize_dequantize(t, s, ZP.float(), -128, 127).sum()

    s = torch.tensor(0.05, requires_grad=True)
    for fn, args in ((per_channel, (x,)), (learned, (x, s))):
        compiled = torch.compile(fn, fullgraph=True)
        want = torch.autograd.grad(fn(*args), args)
        got = torch.autograd.grad(compiled(*args), args)
        for g, w in zip(got, want):
            assert_same(g, w, fn.__name__)
        assert "qsim::quantize_dequantize_bits" not in qsim_ops(
            lambda: torch.autograd.grad(compiled(*args), args))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", [1, 7, 8, 9, 1000, 70001])
def test_the_ops_give_the_values_and_the_straight_through_mask(dtype, n):
    x = _data((n,), dtype)
    y, bits = ops.quantize_dequantize_bits(x, SCALE, ZP, -128, 127)
    assert bits.dtype == torch.uint8 and bits.shape == ((n + 7) // 8,)
    assert_same(y, ops.quantize_dequantize(x, SCALE, ZP, -128, 127), "y")
    dy = _data((n,), dtype, seed=2)
    dx = ops.quantize_dequantize_bits_backward(dy, bits)
    assert_same(dx, ops.quantize_dequantize_backward_data(dy, x, SCALE, ZP, -128, 127, None, None),
                "dx")
    assert_same(dy, _data((n,), dtype, seed=2), "grad (an input) is not written")
    # a transposed gradient is read in its layout; dx is contiguous
    if n == 1000:
        g2 = dy.view(40, 25).t().contiguous().t()
        dx2 = ops.quantize_dequantize_bits_backward(g2, bits.clone())
        assert dx2.is_contiguous()
        assert_same(dx2.flatten(), dx, "dx of a transposed gradient")


def _step_in_place(x, w):
    """_step with the in-place op on a copy, as a compiled quantizer runs it."""
    y = (x * 2.0).clone()
    ops.quantize_dequantize_(y, SCALE, ZP, -128, 127)
    return (y * w).nansum()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(24, 37), (2, 3, 4, 37)])
@no_compile_caches
def test_compiled_in_place_straight_through_matches_eager(dtype, shape):
    torch._dynamo.reset()
    ran = _compiled_matches_eager(_step_in_place, _data(shape, dtype), _data(shape, dtype, seed=1))
    assert ran == {"qsim::quantize_dequantize_clamped_",
                   "qsim::quantize_dequantize_bits_backward_"}, ran


@no_compile_caches
def test_traced_in_place_straight_through_of_a_transposed_x_matches_eager():
    # the traced node computes a non-contiguous x in a contiguous copy (bits in element order)
    torch._dynamo.reset()

    def transposed(x, w):
        y = (x * 2.0).clone(memory_format=torch.preserve_format)
        ops.quantize_dequantize_(y, SCALE, ZP, -128, 127)
        return (y * w).nansum()

    x = _data((16, 40)).t()  # x * 2.0 keeps its layout
    w = _data((40, 16), seed=1)
    a, b = x.clone(memory_format=torch.preserve_format).requires_grad_(), \
        x.clone(memory_format=torch.preserve_format).requires_grad_()
    assert not a.is_contiguous()
    (want,) = torch.autograd.grad(transposed(a, w), a)  # eager: bits in memory order
    (got,) = torch.autograd.grad(torch.compile(transposed, fullgraph=True)(b, w), b)
    assert_same(got, want, "dx")
    assert_same(want, torch.autograd.grad(_step(a, w), a)[0], "dx of the out-of-place op")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", [1, 7, 8, 9, 1000, 70001])
def test_the_in_place_backward_op_writes_the_out_of_place_ops_gradient(dtype, n):
    x = _data((n,), dtype)
    _, bits = ops.quantize_dequantize_bits(x, SCALE, ZP, -128, 127)
    dy = _data((n,), dtype, seed=2)
    want = ops.quantize_dequantize_bits_backward(dy, bits)
    assert ops.quantize_dequantize_bits_backward_(dy, bits) is None
    assert_same(dy, want, "grad written in place")


def test_opcheck():
    x = _data((6, 50))
    opcheck(ops.quantize_dequantize_bits, (x, SCALE, ZP, -128, 127))
    _, bits = ops.quantize_dequantize_bits(x, SCALE, ZP, -128, 127)
    opcheck(ops.quantize_dequantize_bits_backward, (_data((6, 50), seed=3), bits))
    opcheck(ops.quantize_dequantize_bits_backward_, (_data((6, 50), seed=3), bits))


def test_bad_inputs_are_refused_by_name():
    x = _data((6, 50))
    with pytest.raises(ValueError, match="quantize_dequantize_bits: x must be contiguous"):
        ops.quantize_dequantize_bits(x.t(), SCALE, ZP, -128, 127)
    with pytest.raises(ValueError, match="per tensor only"):
        ops.quantize_dequantize_bits(x, torch.full((6,), 0.05), ZP, -128, 127)
    _, bits = ops.quantize_dequantize_bits(x, SCALE, ZP, -128, 127)
    with pytest.raises(ValueError, match="bits must be the contiguous uint8 CPU tensor of 38"):
        ops.quantize_dequantize_bits_backward(torch.randn(6, 50), bits[:-1])
    with pytest.raises(TypeError, match="grad must be float32, float16 or bfloat16"):
        ops.quantize_dequantize_bits_backward(torch.ones(6, 50, dtype=torch.int32), bits)
    with pytest.raises(ValueError, match="bits_backward_: grad must be contiguous"):
        ops.quantize_dequantize_bits_backward_(torch.randn(50, 6).t(), bits)
    with pytest.raises(ValueError, match="bits_backward_: bits must be the contiguous uint8 CPU"):
        ops.quantize_dequantize_bits_backward_(torch.randn(6, 50), bits[:-1])


def test_the_backward_op_is_not_differentiable():
    x = _data((5, 40))
    _, bits = ops.quantize_dequantize_bits(x, SCALE, ZP, -128, 127)
    dy = _data((5, 40), seed=1).requires_grad_()
    dx = ops.quantize_dequantize_bits_backward(dy, bits)
    with pytest.raises(RuntimeError,
                       match="quantize_dequantize_bits_backward is not differentiable"):
        dx.sum().backward()
