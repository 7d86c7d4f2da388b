"""Fake (meta) registrations for the `qsim` ops defined in bindings/library.cpp.

Every op has a fake implementation (so `torch.compile(fullgraph=True)`, `torch.export` and the
ONNX exporter can trace it). The differentiable ones have an autograd formula registered in C++
(bindings/qdq_autograd.cpp: no Python runs per call) whose backward is itself a `qsim` op that
recomputes what it needs from the saved input x. Gradients flow to the data, to `scale` and to a
floating `zero_point`:

- `quantize_dequantize`: straight-through for x (zero where clamped), LSQ/AIMET-v2 range-learning
  gradients for scale and zero_point;
- `quantize` and `dequantize`: the matching straight-through forms (docs/aimet.md §3.2);
- `float_quantize_dequantize`: identity gradient (fp16/bf16 fake cast);
- `zero_point` (the C zero-point rule of a quantizer holding min/max, bindings/grid_autograd.cpp):
  the asymmetric zero point ``clamp(qmin - round(min / scale), qmin, qmax)`` differentiated with
  a straight-through round; the symmetric kinds' zero points have no gradient.

Without scale and zero-point gradients (STE training) autograd calls the `*_backward_data` ops,
the data gradient alone (the `*_backward` ops' first output with ``qparam_grads=False``, bit for
bit). The element-wise ops (the forwards, `*_backward_data`, `float_quantize_dequantize`) are
tagged ``torch.Tag.flexible_layout`` (bindings/library.cpp): inside a compiled graph they take the
layout inductor chose for their input (e.g. channels-last convolution outputs) with no copy to the
eager trace's strides and back. The `*_backward` ops reduce the range-learning sums in memory
order, so they keep torch's default: their inputs in the eager trace's stride order, which keeps
those sums (and so every gradient) the bits they are in eager mode for contiguous data.

The `*_backward` and `*_backward_data` ops are not differentiable themselves: differentiating a
gradient of a qsim op (double backward, e.g. ``torch.autograd.grad(..., create_graph=True)``
followed by another ``grad``) raises a RuntimeError rather than returning zeros.
`quantize_dequantize_out` writes into a caller-owned tensor and has no autograd formula either
(`torchqsim.functional` refuses ``out=`` when a gradient would be needed). `quantize_dequantize_`
writes into x itself (fp32, fp16 or bf16) and is differentiable in x (straight-through, from one
bit a value it keeps instead of x; its gradient, like the `*_backward` ops, is not differentiable
again); it refuses a scale or zero point that requires grad. With ``relu=True`` its gradient is
that of ``quantize_dequantize(relu(x))`` (0 also where x is not above 0), whose values it writes:
it requires a grid that starts at 0 (zero point == qmin). `quantize_dequantize_clamped_` is its
forward below autograd (the same write, returning the bits). In a compiled or exported graph a
straight-through `quantize_dequantize` of a contiguous per-tensor CPU x runs as
`quantize_dequantize_bits` (y and x's bits) and `quantize_dequantize_bits_backward`, so that the
graph keeps the bits for the backward instead of x.

Memory layout: outputs shaped like the data have the strides ``torch.empty_like(x)`` gives
(a dense input keeps its layout, e.g. channels-last; the kernels walk it in memory order, so
nothing is copied); gradients of `scale` and `zero_point` are contiguous.
"""

import torch

__all__ = []

_FLOAT_DATA = (torch.float32, torch.float16, torch.bfloat16)


def _like(t, dtype=None):
    """The kernels' output for data `t`: strides as ``torch.empty_like`` (bindings/qdq_args.h)."""
    return torch.empty_like(t, dtype=dtype)


def _like_qparam(t, dtype=None):
    """The kernels' gradient for a qparam `t`: a new contiguous tensor of its shape."""
    return torch.empty_like(t, dtype=dtype, memory_format=torch.contiguous_format)


def _check_data(name, x):
    torch._check(x.dtype in _FLOAT_DATA,
                 lambda: f"{name} must be float32, float16 or bfloat16, got {x.dtype}")


def _check_devices(op, **tensors):
    """All tensors on one device. The dispatcher sends a call with any tensor on the meta device
    to these fake implementations, so a meta `scale` with CPU data would otherwise return
    uninitialised memory; the kernels make the same check (bindings/qdq_args.cpp)."""
    devices = {t.device for t in tensors.values()}
    torch._check_value(len(devices) == 1, lambda: (
        f"{op}: {', '.join(tensors)} must be on the same device, got "
        + ", ".join(f"{name} on {t.device}" for name, t in tensors.items())))


def _elementwise_fake(op: str, name: str, x, scale, zero_point):
    """The fake result of element-wise op `op` on its data argument `name` (`x`): like `x`."""
    _check_data(name, x)
    _check_devices(op, **{name: x}, scale=scale, zero_point=zero_point)
    return _like(x)


@torch.library.register_fake("qsim::quantize_dequantize")
def _qdq_fake(x, scale, zero_point, qmin, qmax, axis=None, block_size=None):
    return _elementwise_fake("quantize_dequantize", "x", x, scale, zero_point)


@torch.library.register_fake("qsim::quantize_dequantize_out")
def _qdq_out_fake(x, scale, zero_point, qmin, qmax, axis, block_size, out):
    _check_data("x", x)
    _check_devices("quantize_dequantize", x=x, scale=scale, zero_point=zero_point, out=out)
    torch._check(out.shape == x.shape,
                 lambda: f"out shape {tuple(out.shape)} must equal the input shape {tuple(x.shape)}")
    torch._check(out.dtype == x.dtype,
                 lambda: f"out dtype {out.dtype} must equal the input dtype {x.dtype}")


@torch.library.register_fake("qsim::cached_quantize_dequantize_")
def _cached_qdq_fake(out, x, scale, zero_point, qmin, qmax, axis, block_size):
    _qdq_out_fake(x, scale, zero_point, qmin, qmax, axis, block_size, out)


@torch.library.register_fake("qsim::quantize_dequantize_")
def _qdq_inplace_fake(x, scale, zero_point, qmin, qmax, relu=False):
    _check_data("x", x)
    _check_devices("quantize_dequantize_", x=x, scale=scale, zero_point=zero_point)


@torch.library.register_fake("qsim::quantize_dequantize_clamped_")
def _qdq_clamped_fake(x, scale, zero_point, qmin, qmax, relu=False):
    _qdq_inplace_fake(x, scale, zero_point, qmin, qmax, relu)
    return x.new_empty(((x.numel() + 7) // 8,), dtype=torch.uint8)


@torch.library.register_fake("qsim::quantize_dequantize_bits")
def _qdq_bits_fake(x, scale, zero_point, qmin, qmax):
    _check_data("x", x)
    _check_devices("quantize_dequantize_bits", x=x, scale=scale, zero_point=zero_point)
    torch._check(x.is_contiguous(), lambda: "quantize_dequantize_bits: x must be contiguous")
    return _like(x), x.new_empty(((x.numel() + 7) // 8,), dtype=torch.uint8)


def _check_bits_backward(name, grad, bits):
    _check_data("grad", grad)
    _check_devices(name, grad=grad, bits=bits)
    torch._check(bits.dtype == torch.uint8 and bits.numel() == (grad.numel() + 7) // 8,
                 lambda: f"{name}: bits must hold (numel + 7) // 8 uint8 of grad's shape")


@torch.library.register_fake("qsim::quantize_dequantize_bits_backward")
def _qdq_bits_backward_fake(grad, bits):
    _check_bits_backward("quantize_dequantize_bits_backward", grad, bits)
    return torch.empty(grad.shape, dtype=grad.dtype, device=grad.device)


@torch.library.register_fake("qsim::quantize_dequantize_bits_backward_")
def _qdq_bits_backward_inplace_fake(grad, bits):
    _check_bits_backward("quantize_dequantize_bits_backward_", grad, bits)
    torch._check(grad.is_contiguous(),
                 lambda: "quantize_dequantize_bits_backward_: grad must be contiguous")


@torch.library.register_fake("qsim::quantize")
def _quantize_fake(x, scale, zero_point, qmin, qmax, axis=None, block_size=None):
    return _elementwise_fake("quantize", "x", x, scale, zero_point)


@torch.library.register_fake("qsim::dequantize")
def _dequantize_fake(q, scale, zero_point, axis=None, block_size=None):
    return _elementwise_fake("dequantize", "q", q, scale, zero_point)


def _data_grad_fake(grad, x, scale, zero_point):
    _check_devices("backward", grad=grad, x=x, scale=scale, zero_point=zero_point)
    return _like(x)


def _grads_fake(grad, x, scale, zero_point):
    zp_dtype = zero_point.dtype if zero_point.is_floating_point() else torch.float32
    return (_data_grad_fake(grad, x, scale, zero_point), _like_qparam(scale),
            _like_qparam(zero_point, zp_dtype))


@torch.library.register_fake("qsim::quantize_dequantize_backward")
def _qdq_backward_fake(grad, x, scale, zero_point, qmin, qmax, axis, block_size, qparam_grads):
    return _grads_fake(grad, x, scale, zero_point)


@torch.library.register_fake("qsim::quantize_dequantize_backward_")
def _qdq_backward_into_fake(grad, x, scale, zero_point, qmin, qmax, axis, block_size,
                            qparam_grads):
    return _grads_fake(grad, x, scale, zero_point)[1:]


@torch.library.register_fake("qsim::quantize_backward")
def _quantize_backward_fake(grad, x, scale, zero_point, qmin, qmax, axis, block_size, qparam_grads):
    return _grads_fake(grad, x, scale, zero_point)


@torch.library.register_fake("qsim::dequantize_backward")
def _dequantize_backward_fake(grad, q, scale, zero_point, axis, block_size, qparam_grads):
    return _grads_fake(grad, q, scale, zero_point)


@torch.library.register_fake("qsim::quantize_dequantize_backward_data")
def _qdq_backward_data_fake(grad, x, scale, zero_point, qmin, qmax, axis, block_size):
    return _data_grad_fake(grad, x, scale, zero_point)


@torch.library.register_fake("qsim::quantize_backward_data")
def _quantize_backward_data_fake(grad, x, scale, zero_point, qmin, qmax, axis, block_size):
    return _data_grad_fake(grad, x, scale, zero_point)


@torch.library.register_fake("qsim::dequantize_backward_data")
def _dequantize_backward_data_fake(grad, q, scale, zero_point, axis, block_size):
    return _data_grad_fake(grad, q, scale, zero_point)


@torch.library.register_fake("qsim::float_quantize_dequantize")
def _float_qdq_fake(x, dtype):
    _check_data("x", x)
    return _like(x)


@torch.library.register_fake("qsim::zero_point")
def _zero_point_fake(min, scale, bitwidth, grid):
    torch._check(min.is_floating_point() and scale.is_floating_point(), lambda: (
        f"zero_point: min and scale must be floating tensors, got {min.dtype} and {scale.dtype}"))
    torch._check_value(min.shape == scale.shape, lambda: (
        f"zero_point: scale shape {tuple(scale.shape)} must equal min shape {tuple(min.shape)}"))
    _check_devices("zero_point", min=min, scale=scale)
    return _like_qparam(min)


def _range_fake(op: str, **pair):
    """Two fp32 tensors of one shape on one device (as bindings/range_learning.cpp checks them):
    two new tensors of that shape."""
    (na, a), (nb, b) = pair.items()
    torch._check_type(a.dtype == torch.float32 and b.dtype == torch.float32, lambda: (
        f"{op}: {na} and {nb} must be float32 tensors, got {a.dtype} and {b.dtype}"))
    torch._check_value(a.shape == b.shape, lambda: (
        f"{op}: {nb} shape {tuple(b.shape)} must equal {na} shape {tuple(a.shape)}"))
    _check_devices(op, **pair)
    return _like_qparam(a), _like_qparam(a)


@torch.library.register_fake("qsim::range_qparams")
def _range_qparams_fake(min, max, bitwidth, grid):
    return _range_fake("range_qparams", min=min, max=max)


@torch.library.register_fake("qsim::range_grads")
def _range_grads_fake(min, max, dscale, dzero_point, bitwidth, grid):
    _range_fake("range_grads", dscale=dscale, dzero_point=dzero_point)
    return _range_fake("range_grads", min=min, max=max)


@torch.library.register_fake("qsim::held_range")
def _held_range_fake(min, max, steps, fixed_min=None):
    torch._check_value(1 <= steps <= 65535, lambda: f"held_range: steps must be from 1 to 65535, "
                                                    f"got {steps}")
    torch._check_value(fixed_min is None or abs(fixed_min) <= torch.finfo(torch.float32).max,
                       lambda: f"held_range: fixed_min must be a finite float32 value, got {fixed_min}")
    lo, hi = _range_fake("held_range", min=min, max=max)
    return lo, hi, min.new_empty((), dtype=torch.int64)


@torch.library.register_fake("qsim::quantize_dequantize_range")
def _qdq_range_fake(x, min, max, bitwidth, grid, axis=None, planned_output=False):
    _range_fake("quantize_dequantize_range", min=min, max=max)
    return _elementwise_fake("quantize_dequantize_range", "x", x, min, max)
