"""The integer grid of a quantizer: one frozen type whose bounds come from C.

:class:`GridKind` mirrors the C enum ``qsim_grid_kind`` (kernels/include/qsim/analyzers.h; the
values are read from the binding, not written here) and :class:`Grid` holds a bitwidth, a kind
and the bounds ``qsim_grid_bounds`` gives for them; Python never recomputes them, nor the zero
point of a range (:meth:`Grid.zero_point` calls the C rule ``qsim_zero_points_f32``).

Example::

    >>> g = Grid.of(8, GridKind.STRICT_SYMMETRIC)
    >>> g.qmin, g.qmax, g.kind.name
    (-127, 127, 'STRICT_SYMMETRIC')
    >>> Grid.from_flags(4, symmetric=False)
    Grid(bitwidth=4, kind=<GridKind.ASYMMETRIC: 3>, qmin=0, qmax=15)
    >>> g.name, g.symmetric
    ('strict_symmetric', True)
"""

import enum
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import _io
from .pointwise_qdq import pointwise_applies

__all__ = ["Grid", "GridKind"]

GridKind = enum.IntEnum("GridKind", {name.upper(): value for name, value in _io.GRID_KINDS.items()})
GridKind.__doc__ = "The C enum qsim_grid_kind (values from the binding)."


@dataclass(frozen=True)
class Grid:
    """A bitwidth, a grid kind and its integer range ``[qmin, qmax]`` (from C)."""

    bitwidth: int
    kind: GridKind
    qmin: int
    qmax: int

    @property
    def name(self) -> str:
        """The kind in lower case (``"symmetric"``, ``"asymmetric"``, ...), as summaries print it."""
        return self.kind.name.lower()

    @property
    def symmetric(self) -> bool:
        """Every kind but ASYMMETRIC (AIMET's ``is_symmetric``)."""
        return self.kind is not GridKind.ASYMMETRIC

    def zero_point(self, min: Tensor, scale: Tensor) -> Tensor:
        """The zero point (ONNX sign; float, min's shape and dtype) of a quantizer on this grid
        that holds `min` with `scale` = ``(max - min) / (qmax - qmin)``: the C rule
        ``qsim_zero_points_f32`` (kernels/include/qsim/analyzers.h) through the op
        ``torch.ops.qsim.zero_point``, computed in fp32. Asymmetric:
        ``clamp(qmin - round(min / scale), qmin, qmax)`` (round: ties to even; its gradient
        reaches `min` and `scale` through a straight-through round); unsigned symmetric:
        ``2^(b-1)`` where ``min < 0``, else 0; symmetric and strict symmetric: 0 (no gradient).

        Example::

            >>> lo = torch.tensor([-1.0, 0.5, -3.0])
            >>> Grid.of(8, GridKind.ASYMMETRIC).zero_point(lo, torch.tensor([0.01, 0.01, 0.01]))
            tensor([100.,   0., 255.])
            >>> Grid.of(8, GridKind.UNSIGNED_SYMMETRIC).zero_point(lo, torch.ones(3))
            tensor([128.,   0., 128.])
        """
        if pointwise_applies(min, scale):  # compiled, no gradient: fused by inductor
            return self._zero_point_pointwise(min, scale)
        return torch.ops.qsim.zero_point(min, scale, self.bitwidth, int(self.kind))

    def _zero_point_pointwise(self, min: Tensor, scale: Tensor) -> Tensor:
        """:meth:`zero_point` as pointwise torch operations, the C rule's (kernels/grid/
        zero_point.h) in the same float32 order, for the compiled calls of
        :mod:`~torchqsim.quantization.pointwise_qdq`."""
        lo = min.float()
        if self.kind is GridKind.ASYMMETRIC:
            zp = torch.clamp(self.qmin - torch.round(lo / scale.float()), self.qmin, self.qmax)
        elif self.kind is GridKind.UNSIGNED_SYMMETRIC:
            zp = torch.where(lo < 0, float((self.qmax + 1) // 2), 0.0)
        else:
            zp = torch.zeros_like(lo)
        return zp.to(min.dtype)

    @classmethod
    def of(cls, bitwidth: int, kind: GridKind) -> "Grid":
        """The grid of `kind` at `bitwidth` (2..16), bounds from ``qsim_grid_bounds``.

        Raises:
            ValueError: a bitwidth outside 2..16 (or not an integer).
        """
        if isinstance(bitwidth, bool) or not isinstance(bitwidth, int):
            raise ValueError(f"bitwidth must be an integer from 2 to 16, got {bitwidth!r}")
        qmin, qmax = _io.grid_bounds(int(kind), bitwidth)
        return cls(bitwidth, GridKind(kind), qmin, qmax)

    @classmethod
    def from_flags(cls, bitwidth: int, symmetric: bool, strict: bool = False,
                   unsigned: bool = False) -> "Grid":
        """The grid of a quantizer's flags (AIMET's is_symmetric, strict_symmetric,
        unsigned_symmetric).

        Raises:
            ValueError: `strict` or `unsigned` without `symmetric`, or both.
        """
        if strict and unsigned:
            raise ValueError("strict and unsigned symmetric grids exclude each other")
        if not symmetric and (strict or unsigned):
            raise ValueError("strict=True and unsigned=True need symmetric=True")
        kind = (GridKind.ASYMMETRIC if not symmetric else GridKind.STRICT_SYMMETRIC if strict
                else GridKind.UNSIGNED_SYMMETRIC if unsigned else GridKind.SYMMETRIC)
        return cls.of(bitwidth, kind)
