"""How an encoding of shape `shape` (AIMET v2 convention) lays over a tensor `x`.

The shape aligns with the trailing dimensions of `x`, and each of its dimensions divides the
matching dimension of `x`: ``x.shape[d] // shape[d]`` consecutive entries share one encoding
(a block). All ones is per-tensor; one dimension equal to its `x` dimension is per-channel.
"""

import math

from torch import Tensor

__all__ = ["aligned_shape", "stats_view", "qdq_layout"]


def aligned_shape(shape, x_shape) -> tuple[int, ...]:
    """`shape` padded with leading ones to ``len(x_shape)``, checked to divide `x_shape`.

    Raises:
        ValueError: `shape` has more dimensions than `x`, or a dimension that does not divide.

    Example::

        >>> aligned_shape((4, 1), (2, 4, 3))
        (1, 4, 1)
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) > len(x_shape):
        raise ValueError(f"encoding shape {shape} has more dimensions than the input {tuple(x_shape)}")
    full = (1,) * (len(x_shape) - len(shape)) + shape
    for d, (s, n) in enumerate(zip(full, x_shape)):
        if s < 1 or n % s:
            raise ValueError(f"encoding shape {shape} does not divide the input shape "
                             f"{tuple(x_shape)} (dimension {d}: {n} is not a multiple of {s})")
    return full


def stats_view(x: Tensor, shape) -> tuple[Tensor, int | None]:
    """`x` arranged so that per-channel statistics over `axis` give one entry per encoding.

    Returns ``(x, None)`` for per-tensor and ``(x, d)`` for per-channel (no copy); other layouts
    (blocks) are copied into ``[prod(shape), block elements]`` with ``axis = 0``. Entry ``c`` of
    the statistics belongs to element ``c`` of the flattened encoding.

    Example::

        >>> v, axis = stats_view(torch.arange(8.).reshape(2, 4), (2, 2))
        >>> v, axis
        (tensor([[0., 1.],
                [2., 3.],
                [4., 5.],
                [6., 7.]]), 0)
    """
    full = aligned_shape(shape, x.shape)
    if math.prod(full) == 1:
        return x, None
    wide = [d for d, s in enumerate(full) if s > 1]
    if len(wide) == 1 and full[wide[0]] == x.shape[wide[0]]:
        return x, wide[0]
    split = [n for s, xs in zip(full, x.shape) for n in (s, xs // s)]
    order = list(range(0, 2 * x.dim(), 2)) + list(range(1, 2 * x.dim(), 2))
    return x.reshape(split).permute(order).reshape(math.prod(full), -1), 0


def qdq_layout(x_shape, shape) -> tuple[int | None, int | None, tuple[int, ...]]:
    """``(axis, block_size, qparam_shape)`` for `torchqsim.functional` over an input of `x_shape`.

    Per-tensor gives ``(None, None, ())``, per-channel ``(d, None, (C,))``, and blocks along one
    dimension ``(d, block, shape)`` where `shape` is `x_shape` with ``x_shape[d] // block`` at
    `d` (the encoding is expanded over the other dimensions it spans).

    Raises:
        ValueError: `shape` does not fit `x_shape`, or it has blocks along two dimensions.

    Example::

        >>> qdq_layout((16, 64, 2, 2), (16, 4, 1, 1))
        (1, 16, (16, 4, 2, 2))
    """
    full = aligned_shape(shape, x_shape)
    if math.prod(full) == 1:
        return None, None, ()
    wide = [d for d, s in enumerate(full) if s > 1]
    if len(wide) == 1 and full[wide[0]] == x_shape[wide[0]]:
        return wide[0], None, (full[wide[0]],)
    blocked = [d for d in wide if full[d] < x_shape[d]]
    if len(blocked) > 1:
        raise ValueError(f"encoding shape {tuple(shape)} makes blocks along dimensions {blocked} "
                         f"of {tuple(x_shape)}; blocks along one dimension only are supported")
    axis = blocked[0] if blocked else next((d for d, s in enumerate(full) if s < x_shape[d]), 0)
    target = tuple(full[d] if d == axis else x_shape[d] for d in range(len(x_shape)))
    return axis, x_shape[axis] // full[axis], target
