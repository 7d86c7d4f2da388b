"""onnxruntime's float ReduceMean in the target mode (docs/runtime_target.md §2): what
``AdaptiveAvgPool1d/2d(1)`` and ``torch.mean`` export as.

onnxruntime's CPU ReduceMean first simplifies the shape (size-1 dims dropped, adjacent reduced or
kept dims merged) and runs a loop chosen by the pattern left, K for kept and R for reduced runs
of dims, each sum then divided by the count (a true fp32 division):

- ``KR`` (or ``R``): each row's sum as Eigen sums it, in 4-float packets from the row's first
  16-byte boundary (the C kernel ``qsim::ort_reduce_mean``, kernels/include/qsim/ortfloat.h);
- ``RK``: the rows added in order, ``x[0] + x[1] + ...`` per column.

Both are the same for any onnxruntime thread count (measured with 1 to 16). Not replicated (None:
the caller computes the reference): ``KRK``, whose loop depends on the thread count (with at least
max(2, threads) leading indices MLAS's M = 1 SGEMM of ones, which sums the rows in chunks of 4;
else a sequential loop), and the general patterns (``RKR``, ...).

The layout is the logical one (a transposed view counts as its contiguous copy): between a
DequantizeLinear and the ReduceMean onnxruntime keeps a Transpose before the DequantizeLinear,
on the integers (measured), so the ReduceMean reads the transposed tensor. Without a
DequantizeLinear its transpose optimizer moves the Transpose after the ReduceMean instead, which
then reduces the untransposed layout: the target mode runs this only on inputs a
DequantizeLinear feeds (:mod:`.floatops`).

Example::

    >>> mean(torch.tensor([[1e8, 1.0, -1e8, 1.0, 1.0]]), -1, True)  # in order: 0.4
    tensor([[0.6000]])
"""

import math

import torch
from torch import Tensor

__all__ = ["mean"]


def _pattern(x: Tensor, reduced: set) -> tuple[str, list[int]]:
    """onnxruntime's simplified shape: the kinds (``K``, ``R``) of the runs of dims without
    size-1 dims, and each run's size."""
    kinds, sizes = "", []
    for d in range(x.dim()):
        if x.shape[d] == 1:
            continue
        kind = "R" if d in reduced else "K"
        if kinds.endswith(kind):
            sizes[-1] *= x.shape[d]
        else:
            kinds, sizes = kinds + kind, sizes + [x.shape[d]]
    return kinds, sizes


def _sum_rows_in_order(rows: Tensor) -> Tensor:
    """``rows[0] + rows[1] + ...`` over dim 0 of `rows` (R, K), left to right."""
    total = rows[0]
    for r in range(1, rows.shape[0]):
        total = total + rows[r]
    return total


def mean(x: Tensor, dim, keepdim: bool) -> Tensor | None:
    """``torch.mean(x, dim, keepdim)`` of fp32 CPU `x` (`dim`: None for all, an int or a
    sequence) as onnxruntime's ReduceMean computes it on the contiguous `x`, bit for bit; None
    where its loop is not replicated (``KRK`` and general patterns), for dims out of range or
    repeated, or without the kernel.

    Example::

        >>> mean(torch.tensor([[1.0, 2.0], [3.0, 5.0]]), 0, False)  # RK: rows in order
        tensor([2.0000, 3.5000])
    """
    dims = range(x.dim()) if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
    reduced = {d % x.dim() for d in dims if -x.dim() <= d < x.dim()}
    if not hasattr(torch.ops.qsim, "ort_reduce_mean") or not dims or len(reduced) != len(dims):
        return None
    kinds, sizes = _pattern(x, reduced)
    count = math.prod(x.shape[d] for d in reduced)
    if kinds in ("", "K", "R", "KR"):
        y = torch.ops.qsim.ort_reduce_mean(x.reshape(-1, count))
    elif kinds == "RK":
        y = _sum_rows_in_order(x.reshape(sizes)) / count
    else:
        return None
    shape = [1 if d in reduced else x.shape[d] for d in range(x.dim()) if keepdim or
             d not in reduced]
    return y.reshape(shape)
