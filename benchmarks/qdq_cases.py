"""Timed callables for the quantize-dequantize benchmark: torchqsim and its baselines.

A case is a granularity (``per_tensor``, or ``per_channel`` on axis 1 of an NCHW tensor) and a
mode:

- ``forward``: inference, no autograd graph;
- ``ste``: forward + backward, gradient for x only (scale and zero point fixed);
- ``range``: forward + backward with range learning, gradients for x, a float scale and a float
  zero point.

:func:`make_case` returns ``{name: callable}``; each callable runs one timed iteration. Baselines
that do not apply to a mode are absent. Buffers are allocated once per case and reused: the
input, the upstream gradient, and the outputs of ``copy``, of the forward ``composite`` and of our
forward (``quantize_dequantize(..., out=buf)``), so that page faults of fresh 64 MiB allocations
do not dominate. ``ours_alloc`` is our forward allocating its output, as torch's fake-quant ops
(which have no ``out=``) and every forward + backward row do; ``ours_in_place`` writes it into its
own input (``out=`` the input, as the sim's activation quantizers do with a fresh op output),
one pass over one buffer, to compare with ``copy``'s two buffers.

Example::

    >>> fns = make_case("per_tensor", "forward", (1, 64, 8, 8))
    >>> sorted(fns)
    ['composite', 'copy', 'ours', 'ours_alloc', 'ours_in_place', 'torch_fq']
"""

import torch

import torchqsim.functional as F

QMIN, QMAX = -128, 127
CHANNELS_AXIS = 1
BASELINES = ("torch_fq", "torch_fq_learnable", "composite", "ours_alloc", "ours_in_place", "copy")


def _qparams(granularity, x, learn):
    """8-bit scale from max|x| and a non-zero zero point (float when learned, else int32).

    Per-tensor parameters have shape [1], which every API here accepts.
    """
    gen = torch.Generator().manual_seed(1)
    if granularity == "per_tensor":
        scale = (x.abs().amax() / QMAX).reshape(1)
        zero_point = torch.tensor([5], dtype=torch.int32)
    else:
        dims = [d for d in range(x.dim()) if d != CHANNELS_AXIS]
        scale = x.abs().amax(dim=dims) / QMAX
        zero_point = torch.randint(-10, 11, scale.shape, generator=gen, dtype=torch.int32)
    if learn:
        return scale.clone().requires_grad_(), zero_point.float().requires_grad_()
    return scale, zero_point


def _bcast(p, x, granularity):
    """A per-channel parameter as a view that broadcasts over x; per-tensor unchanged."""
    if granularity == "per_tensor":
        return p
    shape = [1] * x.dim()
    shape[CHANNELS_AXIS] = -1
    return p.reshape(shape)


def composite_ste(x, scale, zero_point, granularity):
    """The formula in plain torch ops, differentiable with a straight-through rint.

    ``rint(t)`` is written ``t + (rint(t) - t).detach()`` so gradients pass it as identity, the
    clamp masks them, and scale and zero point get the LSQ-style gradients of autograd.
    """
    s, zp = _bcast(scale, x, granularity), _bcast(zero_point, x, granularity)
    t = x / s
    t = t + (torch.round(t) - t).detach()
    return (torch.clamp(t + zp, QMIN, QMAX) - zp) * s


def composite_into(out, x, scale, zero_point, granularity):
    """The formula in plain torch ops, computed in place in the preallocated `out`."""
    s, zp = _bcast(scale, x, granularity), _bcast(zero_point, x, granularity)
    torch.div(x, s, out=out)
    return out.round_().add_(zp).clamp_(QMIN, QMAX).sub_(zp).mul_(s)


def _torch_fq(x, scale, zero_point, granularity):
    if granularity == "per_tensor":
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, QMIN, QMAX)
    return torch.fake_quantize_per_channel_affine(x, scale, zero_point, CHANNELS_AXIS, QMIN, QMAX)


def _torch_fq_learnable(x, scale, zero_point, granularity):
    if granularity == "per_tensor":
        return torch._fake_quantize_learnable_per_tensor_affine(x, scale, zero_point, QMIN, QMAX)
    return torch._fake_quantize_learnable_per_channel_affine(x, scale, zero_point, CHANNELS_AXIS,
                                                             QMIN, QMAX)


def _ours(x, scale, zero_point, granularity):
    axis = None if granularity == "per_tensor" else CHANNELS_AXIS
    return F.quantize_dequantize(x, scale, zero_point, QMIN, QMAX, axis)


def _ours_into(out, x, scale, zero_point, granularity):
    axis = None if granularity == "per_tensor" else CHANNELS_AXIS
    return F.quantize_dequantize(x, scale, zero_point, QMIN, QMAX, axis, out=out)


def _with_backward(fn, x, scale, zero_point, granularity, dy, inputs):
    def step():
        return torch.autograd.grad(fn(x, scale, zero_point, granularity), inputs, dy)
    return step


def make_case(granularity, mode, shape):
    """Build the timed callables of one benchmark row.

    Args:
        granularity: ``"per_tensor"`` or ``"per_channel"`` (axis 1).
        mode: ``"forward"``, ``"ste"`` or ``"range"``.
        shape: shape of the fp32 input, channels at axis 1.

    Returns:
        ``{"ours": fn, <baseline>: fn, ...}``; each fn runs one iteration.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen)
    learn = mode == "range"
    scale, zero_point = _qparams(granularity, x, learn)
    out, ours_out, copy_out = torch.empty_like(x), torch.empty_like(x), torch.empty_like(x)
    fns = {"copy": torch.no_grad()(lambda: copy_out.copy_(x))}
    if mode == "forward":
        def no_grad(fn, *args):
            return torch.no_grad()(lambda: fn(*args, x, scale, zero_point, granularity))
        own = x.clone()  # quantized in place every call (grid values cost what any value does)
        fns.update(ours=no_grad(_ours_into, ours_out), ours_alloc=no_grad(_ours),
                   ours_in_place=torch.no_grad()(
                       lambda: _ours_into(own, own, scale, zero_point, granularity)),
                   torch_fq=no_grad(_torch_fq), composite=no_grad(composite_into, out))
        return fns
    x.requires_grad_()
    dy = torch.randn(shape, generator=gen)
    inputs = [x, scale, zero_point] if learn else [x]
    names = {"ours": _ours, "composite": composite_ste,
             ("torch_fq_learnable" if learn else "torch_fq"):
                 _torch_fq_learnable if learn else _torch_fq}
    for name, fn in names.items():
        fns[name] = _with_backward(fn, x, scale, zero_point, granularity, dy, inputs)
    return fns


def check_forward(granularity, shape):
    """Raise if ours (into a buffer, or in place) and the composite disagree (they compute the
    one formula bit for bit).

    Guards the timings against measuring a broken kernel; cheap next to the timing itself.
    """
    fns = make_case(granularity, "forward", shape)
    composite = fns["composite"]()
    for name in ("ours", "ours_in_place"):  # (the first in-place call reads the input's values)
        ours = fns[name]()
        bad = (ours != composite).nonzero()
        if bad.numel():
            i = tuple(bad[0].tolist())
            raise AssertionError(f"{granularity}: {name} {ours[i].item()} != composite "
                                 f"{composite[i].item()} at {i} ({bad.shape[0]} mismatches)")
