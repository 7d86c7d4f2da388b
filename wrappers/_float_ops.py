"""Fake (meta) and autograd registrations of the float-format ops (bindings/float_formats.h).

- `minifloat_quantize_dequantize`: straight-through gradient for x, zero where a saturating
  format clamped (``|x / scale| > max``), as the integer ops zero it where they clamp; no
  gradient for scale (it is not learned);
- `block_float_quantize_dequantize`: straight-through (identity) gradient for x.

Outputs have the strides of ``torch.empty_like(x)``.
"""

import torch

from .float_formats import float_max

__all__ = []

_FLOAT_DATA = (torch.float32, torch.float16, torch.bfloat16)


def _check_data(op, x):
    torch._check(x.dtype in _FLOAT_DATA,
                 lambda: f"{op}: x must be float32, float16 or bfloat16, got {x.dtype}")


@torch.library.register_fake("qsim::minifloat_quantize_dequantize")
def _minifloat_fake(x, scale, exponent_bits, mantissa_bits, kind, saturate, axis=None,
                    block_size=None):
    _check_data("minifloat_quantize_dequantize", x)
    return torch.empty_like(x)


@torch.library.register_fake("qsim::block_float_quantize_dequantize")
def _block_fake(x, fmt, axis=-1, tensor_scale=None):
    _check_data("block_float_quantize_dequantize", x)
    return torch.empty_like(x)


def _scale_like(scale, x, axis, block_size):
    """`scale` broadcastable against x (per-tensor, per-channel along axis, or blockwise)."""
    if axis is None or scale.dim() == 0:
        return scale
    axis = axis % x.dim()
    if block_size is None:
        return scale.reshape([-1 if d == axis else 1 for d in range(x.dim())])
    return scale.repeat_interleave(block_size, dim=axis)


def _minifloat_setup(ctx, inputs, output):
    x, scale, e, m, kind, saturate, axis, block_size = inputs
    ctx.limit = float_max(e, m, kind) if saturate or kind == "finite" else None
    ctx.layout = (axis, block_size)
    ctx.save_for_backward(x, scale)


def _minifloat_backward(ctx, grad):
    x, scale = ctx.saved_tensors
    dx = grad
    if ctx.limit is not None:
        t = x.float() / _scale_like(scale.float(), x, *ctx.layout)
        dx = torch.where(t.abs() <= ctx.limit, grad, torch.zeros_like(grad))
    return (dx,) + (None,) * 7


torch.library.register_autograd("qsim::minifloat_quantize_dequantize", _minifloat_backward,
                                setup_context=_minifloat_setup)


def _block_backward(ctx, grad):
    return grad, None, None, None


torch.library.register_autograd("qsim::block_float_quantize_dequantize", _block_backward,
                                setup_context=lambda ctx, inputs, output: None)
