"""Shared inputs of the qsim op tests: layouts, qparams and data placed on a grid.

Example::

    >>> g = torch.Generator().manual_seed(0)
    >>> scale, zp = make_qparams(g, SHAPE, *LAYOUTS["axis1"], -128, 127)
    >>> x = grid_data(g, SHAPE, scale, zp, -128, 127, *LAYOUTS["axis1"])
    >>> scale.shape, x.shape
    (torch.Size([6]), torch.Size([4, 6, 20]))
"""

import math

import torch

from reference import expand_qparam

__all__ = ["SHAPE", "LAYOUTS", "SPECIALS", "BAD_IN_PLACE_ARGUMENTS", "qparam_shape",
           "make_qparams", "grid_data", "with_specials", "x_based_qdq"]

SHAPE = (4, 6, 20)

# name: (axis, block_size). Per-channel on the first, a middle and the last axis (negative too),
# blockwise along each axis.
LAYOUTS = {
    "per-tensor": (None, None),
    "axis0": (0, None),
    "axis1": (1, None),
    "axis-1": (-1, None),
    "block-axis0": (0, 2),
    "block-axis1": (1, 3),
    "block-axis-1": (-1, 4),
}

# Values every op must handle: signed zeros, far outside any grid, +-Inf, NaN, an fp32 subnormal.
SPECIALS = (0.0, -0.0, 1e30, -1e30, math.inf, -math.inf, math.nan, 1e-40)

# (x, scale, zero_point) the in-place op refuses (qmin, qmax: -128, 127), the error it raises and
# words of its message; ids name them.
_S, _Z = torch.tensor(0.05), torch.tensor(3, dtype=torch.int32)
BAD_IN_PLACE_ARGUMENTS = dict(argnames="make, error, words", argvalues=[
    (lambda: (torch.ones(4).double(), _S, _Z), TypeError, "x must be float32, float16 or"),
    (lambda: (torch.ones(4, 2)[:, 0], _S, _Z), ValueError, "x must be dense"),
    (lambda: (torch.ones(4, 2), torch.full((2,), 0.1), torch.zeros(2)), ValueError, "per tensor"),
    (lambda: (torch.ones(4), torch.tensor(-0.1), _Z), ValueError, "scale"),
], ids=["double", "slice", "per-channel", "negative-scale"])


def qparam_shape(shape, axis=None, block_size=None):
    """Shape of scale / zero_point: () per-tensor, (C,) per-channel, x's shape with C // block."""
    if axis is None:
        return ()
    if block_size is None:
        return (shape[axis],)
    out = list(shape)
    out[axis] //= block_size
    return tuple(out)


def make_qparams(gen, shape, axis, block_size, qmin, qmax, zp_dtype=torch.int32):
    """Random scales log-uniform in [0.01, 0.1] and integer zero points in [qmin, qmax]."""
    pshape = qparam_shape(shape, axis, block_size)
    scale = torch.exp(torch.empty(pshape).uniform_(math.log(0.01), math.log(0.1), generator=gen))
    zp = torch.randint(qmin, qmax + 1, pshape, generator=gen).to(zp_dtype)
    return scale, zp


def grid_data(gen, shape, scale, zero_point, qmin, qmax, axis=None, block_size=None, margin=3):
    """fp32 data whose grid positions x / scale + zero_point are k + f, with k an integer in
    [qmin - margin, qmax + margin] and |f| <= 0.4: inside the grid, past both ends, and at least
    0.1 away from every rounding tie, so an fp32 and a float64 evaluation round alike."""
    s = expand_qparam(scale.double(), shape, axis, block_size)
    z = expand_qparam(zero_point.double(), shape, axis, block_size)
    k = torch.randint(qmin - margin, qmax + margin + 1, shape, generator=gen).double()
    f = torch.empty(shape, dtype=torch.float64).uniform_(-0.4, 0.4, generator=gen)
    return ((k + f - z) * s).float()


def with_specials(x):
    """A copy of x with SPECIALS written at spread-out flat positions."""
    y = x.clone()
    flat = y.view(-1)
    step = flat.numel() // len(SPECIALS)
    for i, v in enumerate(SPECIALS):
        flat[i * step] = v
    return y


class _XBasedQdq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        ctx.save_for_backward(x, scale, zero_point)
        ctx.grid = (qmin, qmax)
        return torch.ops.qsim.quantize_dequantize(x, scale, zero_point, qmin, qmax)

    @staticmethod
    def backward(ctx, dy):
        x, scale, zero_point = ctx.saved_tensors
        return torch.ops.qsim.quantize_dequantize_backward_data(
            dy, x, scale, zero_point, *ctx.grid, None, None), None, None, None, None


def x_based_qdq(x, scale, zero_point, qmin, qmax):
    """Per-tensor ``quantize_dequantize`` whose backward recomputes the straight-through mask from
    x (the ``*_backward_data`` kernel): the oracle of the nodes that keep one bit a value instead
    of x (bindings/qdq_inplace.cpp), which eager float32 calls of the op itself now take."""
    return _XBasedQdq.apply(x, scale, zero_point, qmin, qmax)
