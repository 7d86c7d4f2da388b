"""The straight-through ``quantize_dequantize`` of compiled graphs keeps x's bits, not x
(``qsim::quantize_dequantize_bits`` and ``quantize_dequantize_bits_backward``, qdq_autograd.cpp).

Oracles: the eager op (values and gradients bit for bit, the eager node being tested against the
formula elsewhere), torch's fake quantization and its straight-through mask for the ops alone,
``torch.library.opcheck``, and torch's profiler for which ops a compiled graph runs.
"""

import pytest
import torch
from torch.library import opcheck
from torch.profiler import ProfilerActivity, profile

import torchqsim  # noqa: F401  (registers the ops)
from asserts import assert_same
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


def _qsim_ops(fn):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events() if e.name.startswith("qsim::")}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "4-D"])
def test_compiled_straight_through_matches_eager(dtype, layout):
    torch._dynamo.reset()
    x = _data((24, 37), dtype)
    x = {"contiguous": x, "transposed": x.t().contiguous().t(), "4-D": x.view(2, 3, 4, 37)}[layout]
    w = _data(x.shape, dtype, seed=1)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    want_y = _step(a, w)
    (want,) = torch.autograd.grad(want_y, a)
    compiled = torch.compile(_step, fullgraph=True)
    got_y = compiled(b, w)
    (got,) = torch.autograd.grad(got_y, b)
    assert_same(got_y, want_y, "loss")
    assert_same(got, want, "dx")
    ran = _qsim_ops(lambda: torch.autograd.grad(compiled(b, w), b))
    if layout == "contiguous":  # the graph keeps the bits
        assert {"qsim::quantize_dequantize_bits", "qsim::quantize_dequantize_bits_backward"} <= ran
        assert "qsim::quantize_dequantize_backward_data" not in ran, ran
    else:  # x * 2.0 of a transposed x, or a 4-D x (inductor may lay it out channels-last):
        assert "qsim::quantize_dequantize_bits" not in ran, ran  # x's node, as before


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
        assert "qsim::quantize_dequantize_bits" not in _qsim_ops(
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


def test_opcheck():
    x = _data((6, 50))
    opcheck(ops.quantize_dequantize_bits, (x, SCALE, ZP, -128, 127))
    _, bits = ops.quantize_dequantize_bits(x, SCALE, ZP, -128, 127)
    opcheck(ops.quantize_dequantize_bits_backward, (_data((6, 50), seed=3), bits))


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


def test_the_backward_op_is_not_differentiable():
    x = _data((5, 40))
    _, bits = ops.quantize_dequantize_bits(x, SCALE, ZP, -128, 127)
    dy = _data((5, 40), seed=1).requires_grad_()
    dx = ops.quantize_dequantize_bits_backward(dy, bits)
    with pytest.raises(RuntimeError,
                       match="quantize_dequantize_bits_backward is not differentiable"):
        dx.sum().backward()
