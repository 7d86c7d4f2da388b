"""Pure-torch reference of the qdq numerics of docs/design.md §2: the oracle of the qsim op tests.

Forward, in fp32 whatever the input dtype (half inputs are computed in fp32 and the result is
cast back to their dtype, as the ops promise)::

    q = clamp(round(x / scale) + zero_point, qmin, qmax)   # torch.round: ties to even
    y = (q - zero_point) * scale                           # division, never x * (1 / scale)

Gradients: the straight-through forms `ste_*` use ``ste_round(t) = t + (round(t) - t).detach()``
(round forward, identity backward), so plain autograd of them gives the range-learning
gradients of kernels/include/qsim/qdq.h (LSQ / aimet-torch v2, docs/aimet.md §3.2); call
them in float64 for an accurate oracle. `frozen_surrogate` is the smooth function whose true
derivative at one point is that STE gradient, for finite differences and gradcheck.

Granularity, as in `torchqsim.functional`: ``axis=None`` per-tensor (one value);
``axis=a`` per-channel (1-D of length ``x.shape[a]``); ``axis=a, block_size=b`` blockwise (ONNX
blocked layout: x's shape with ``x.shape[a] // b`` at `a`).

Example::

    >>> x = torch.tensor([0.25, 0.75, -9.0])
    >>> quantize_dequantize(x, torch.tensor(0.5), torch.tensor(0), -4, 3)  # t = [0.5, 1.5, -18]
    tensor([ 0.,  1., -2.])
"""

import torch
from torch import Tensor

__all__ = ["expand_qparam", "reduce_to_qparam", "quantize", "dequantize", "quantize_dequantize",
           "ste_round", "ste_quantize", "ste_dequantize", "ste_quantize_dequantize",
           "frozen_surrogate"]


def expand_qparam(p: Tensor, shape, axis=None, block_size=None) -> Tensor:
    """Broadcast a per-tensor, per-channel or blockwise qparam against a tensor of `shape`.

    Differentiable, so gradients of an expanded qparam flow back to `p`.

    Example::

        >>> expand_qparam(torch.tensor([[1., 2.]]), (1, 4), axis=1, block_size=2)
        tensor([[1., 1., 2., 2.]])
    """
    if axis is None:
        return p.reshape(())
    axis %= len(shape)
    if block_size is None:
        view = [1] * len(shape)
        view[axis] = shape[axis]
        return p.reshape(view)
    return p.repeat_interleave(block_size, dim=axis)


def reduce_to_qparam(t: Tensor, qparam_shape, axis=None, block_size=None) -> Tensor:
    """Sum a tensor over the elements that share each qparam (the adjoint of `expand_qparam`).

    Example::

        >>> reduce_to_qparam(torch.arange(8.).reshape(2, 4), (2, 2), axis=1, block_size=2)
        tensor([[ 1.,  5.],
                [ 9., 13.]])
    """
    if axis is None:
        return t.sum().reshape(qparam_shape)
    axis %= t.dim()
    if block_size is None:
        return t.sum([d for d in range(t.dim()) if d != axis])
    blocks = (*t.shape[:axis], t.shape[axis] // block_size, block_size, *t.shape[axis + 1:])
    return t.reshape(blocks).sum(axis + 1)


def grid_clamp(x: Tensor, pos: Tensor, qmin: int, qmax: int) -> Tensor:
    """``clamp(pos, qmin, qmax)`` where x is a number, ``qmin`` where x is NaN (onnxruntime's
    QuantizeLinear, docs/design.md "Decisions")."""
    return torch.where(torch.isnan(x), torch.full_like(pos, qmin), torch.clamp(pos, qmin, qmax))


def _fp32_qparams(x, scale, zero_point, axis, block_size):
    return (expand_qparam(scale.float(), x.shape, axis, block_size),
            expand_qparam(zero_point.float(), x.shape, axis, block_size))


def quantize(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int, axis=None,
             block_size=None) -> Tensor:
    """``clamp(round(x / scale) + zero_point, qmin, qmax)`` in fp32, returned in x's dtype.

    NaN goes to qmin (as onnxruntime's QuantizeLinear); +-Inf saturate to qmin / qmax.
    """
    s, z = _fp32_qparams(x, scale, zero_point, axis, block_size)
    return grid_clamp(x.float(), torch.round(x.float() / s) + z, qmin, qmax).to(x.dtype)


def dequantize(q: Tensor, scale: Tensor, zero_point: Tensor, axis=None, block_size=None) -> Tensor:
    """``(q - zero_point) * scale`` in fp32, returned in q's dtype."""
    s, z = _fp32_qparams(q, scale, zero_point, axis, block_size)
    return ((q.float() - z) * s).to(q.dtype)


def quantize_dequantize(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int,
                        axis=None, block_size=None) -> Tensor:
    """Quantize then dequantize, all in fp32, cast to x's dtype once at the end."""
    s, z = _fp32_qparams(x, scale, zero_point, axis, block_size)
    q = grid_clamp(x.float(), torch.round(x.float() / s) + z, qmin, qmax)
    return ((q - z) * s).to(x.dtype)


def ste_round(t: Tensor) -> Tensor:
    """Round half to even forward, identity backward (straight-through estimator)."""
    return t + (torch.round(t) - t).detach()


def ste_quantize(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int, axis=None,
                 block_size=None) -> Tensor:
    """`quantize` in x's dtype with `ste_round`: autograd gives dx = dy*m/s, ds = -dy*m*t/s,
    dzp = dy*m (m: not clamped, t = x/s).

    torch.clamp passes the gradient where qmin <= value <= qmax, the kernels' mask exactly.
    """
    s = expand_qparam(scale, x.shape, axis, block_size)
    z = expand_qparam(zero_point, x.shape, axis, block_size)
    nan = torch.isnan(x)  # NaN goes to qmin; x is replaced first so that no NaN reaches autograd
    safe = torch.where(nan, torch.zeros_like(x), x)
    return grid_clamp(x, torch.clamp(ste_round(safe / s) + z, qmin, qmax), qmin, qmax)


def ste_dequantize(q: Tensor, scale: Tensor, zero_point: Tensor, axis=None,
                   block_size=None) -> Tensor:
    """`dequantize` in q's dtype: autograd gives dq = dy*s, ds = dy*(q - zp), dzp = -dy*s."""
    s = expand_qparam(scale, q.shape, axis, block_size)
    z = expand_qparam(zero_point, q.shape, axis, block_size)
    return (q - z) * s


def ste_quantize_dequantize(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int,
                            axis=None, block_size=None) -> Tensor:
    """`quantize_dequantize` in x's dtype with `ste_round`: autograd gives dx = dy*m,
    ds = dy*(qz - t*m), dzp = -dy*s*(1 - m), qz = clamp(round(t), qmin - zp, qmax - zp)."""
    q = ste_quantize(x, scale, zero_point, qmin, qmax, axis, block_size)
    return ste_dequantize(q, scale, zero_point, axis, block_size)


def frozen_surrogate(op: str, x: Tensor, scale: Tensor, zero_point: Tensor, qmin=None, qmax=None,
                     axis=None, block_size=None):
    """A smooth function whose derivative at (x, scale, zero_point) is the STE gradient of `op`.

    The rounding residual ``round(t) - t`` and the clamp mask are frozen at that point: inside
    the grid the position is ``x / s + residual + zp``, outside it is the constant grid end it
    was clamped to. It equals the op at the point, and it is smooth around it, so central finite
    differences and `torch.autograd.gradcheck` apply. Dequantize is smooth already.

    Args:
        op: "quantize_dequantize", "quantize" or "dequantize".
        x, scale, zero_point: the evaluation point (any floating dtype; float64 for checks).
        qmin, qmax: the grid (unused by dequantize).
        axis, block_size: the granularity.

    Returns:
        ``f(x, scale, zero_point) -> Tensor``.

    Example::

        >>> f = frozen_surrogate("quantize", torch.tensor([0.7, 9.]), torch.tensor(1.),
        ...                      torch.tensor(0.), -4, 3)
        >>> f(torch.tensor([0.8, 9.]), torch.tensor(1.), torch.tensor(0.))
        tensor([1.1000, 3.0000])
    """
    if op == "dequantize":
        return lambda q, s, z: ste_dequantize(q, s, z, axis, block_size)
    with torch.no_grad():
        s0 = expand_qparam(scale, x.shape, axis, block_size)
        z0 = expand_qparam(zero_point, x.shape, axis, block_size)
        t0 = x / s0
        residual = torch.round(t0) - t0
        pos = torch.round(t0) + z0
        inside = (pos >= qmin) & (pos <= qmax)
        edge = grid_clamp(x, pos, qmin, qmax)

    def f(x, scale, zero_point):
        s = expand_qparam(scale, x.shape, axis, block_size)
        z = expand_qparam(zero_point, x.shape, axis, block_size)
        q = torch.where(inside, x / s + residual + z, edge)
        return q if op == "quantize" else (q - z) * s

    return f
