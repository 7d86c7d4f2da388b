"""The base of the encoding analyzers: :class:`EncodingAnalyzer` (running min/max statistics
over an encoding shape, and the encoding they give on a grid) and :class:`Encoding`. The analyzers
themselves are in ``encoding_analyzer.py`` (tf_enhanced's in ``tf_enhanced.py``).

Example::

    >>> from torchqsim.quantization import MinMaxEncodingAnalyzer
    >>> issubclass(MinMaxEncodingAnalyzer, EncodingAnalyzer)
    True
"""

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import _eager
from .grid import Grid
from ._layout import stats_view
from ._tracing import plain_eager

__all__ = ["Encoding", "EncodingAnalyzer"]

_COPIED = object()  # an input layout that stats_view copies (blocks), or not seen yet
_SHAPES_KEPT = 8  # input shapes whose layout an analyzer keeps
_MINMAX_FOLD = torch.ops.qsim.minmax_fold.default


class Encoding(NamedTuple):
    """An encoding of the shape given to the analyzer.

    Attributes:
        scale: float32, finite and ``>= 2**-23``.
        zero_point: int32 in ``[qmin, qmax]``, ONNX sign (AIMET offset ``= -zero_point``).
        min: float32, the lowest representable value ``scale * (qmin - zero_point)`` (``<= 0``).
        max: float32, the highest representable value ``scale * (qmax - zero_point)`` (``>= 0``).
    """

    scale: Tensor
    zero_point: Tensor
    min: Tensor
    max: Tensor


class EncodingAnalyzer(nn.Module):
    """Base analyzer: running min/max (and, in subclasses, a histogram) over an encoding shape.

    Args:
        shape: the encoding shape (AIMET v2 convention): ``()`` per-tensor; ``(C, 1, 1, 1)``
            per-channel for a conv weight; a shape whose dimensions divide the input's for
            blocks. Each encoding gets statistics of the input entries it covers.

    Subclasses implement :meth:`_encodings`.
    """

    def __init__(self, shape=()):
        super().__init__()
        shape = tuple(int(s) for s in shape)
        stat_shape = () if math.prod(shape) == 1 else (math.prod(shape),)
        vars(self).update(shape=shape, _stat_shape=stat_shape)  # no nn.Module.__setattr__
        self._register_stats(min=torch.full(stat_shape, math.inf),
                             max=torch.full(stat_shape, -math.inf),
                             nonfinite=torch.zeros(stat_shape, dtype=torch.int64))

    def _register_stats(self, **stats: Tensor) -> None:
        """Registers the class's statistics as non-persistent buffers, straight into the buffer
        dict: ``register_buffer``'s name checks cost more than the tensors (a sim builds an
        analyzer per quantizer). Example: ``TfEnhancedEncodingAnalyzer.__init__``."""
        self._buffers.update(stats)
        self._non_persistent_buffers_set.update(stats)

    # Statistics a reset leaves as they are, because the first batch after it writes them whole
    # (TfEnhancedEncodingAnalyzer's histograms); :meth:`stats` of such a class zeroes them.
    _KEPT_ON_RESET: tuple[str, ...] = ()

    def reset_stats(self) -> None:
        """Forget every statistic (min +inf, max -inf, the rest 0; see ``_KEPT_ON_RESET``)."""
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._KEPT_ON_RESET:
                buf.fill_(math.inf if name == "min" else -math.inf if name == "max" else 0)

    reset = reset_stats

    def stats(self) -> dict[str, Tensor]:
        """The statistics as a dict of tensors (save them, or sum counts across processes)."""
        return {name: buf for name, buf in self.named_buffers(recurse=False)}

    def _view(self, x: Tensor) -> tuple[Tensor, int | None]:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"{type(self).__name__}.update_stats expects a floating tensor, "
                            f"got {type(x).__name__ if not isinstance(x, Tensor) else x.dtype}")
        if x.numel() == 0:
            raise ValueError(f"{type(self).__name__}.update_stats got an empty tensor of shape "
                             f"{tuple(x.shape)}")
        # The layout of an input shape is found once (stats_view checks that the encoding shape
        # fits it); per-tensor and per-channel layouts are x itself, blocks are a copy.
        layouts = self.__dict__.get("_layouts")
        if layouts is None or layouts[0] != self.shape:
            layouts = self._layouts = (self.shape, {})
        axis = layouts[1].get(x.shape, _COPIED)
        if axis is _COPIED:
            view, axis = stats_view(x, self.shape)
            if len(layouts[1]) >= _SHAPES_KEPT:
                layouts[1].clear()
            layouts[1][x.shape] = axis if view is x else _COPIED
        else:
            view = x
        return (view.float() if view.dtype == torch.float64 else view), axis

    def update_stats(self, x: Tensor) -> None:
        """Adds the finite values of `x` to the statistics (non-finite ones are counted).

        Raises:
            TypeError: `x` is not a floating tensor.
            ValueError: `x` is empty, or the encoding shape does not fit its shape.
        """
        if torch.is_grad_enabled():
            with torch.no_grad():
                self._update(*self._view(x))
            return
        self._update(*self._view(x))

    def _update(self, view: Tensor, axis: int | None) -> None:
        stats = self._buffers
        if view.device.type == "cpu":  # one op: the kernel folds into the statistics
            # (plain eager: through its direct entry, without torch.ops' argument boxing)
            fold = _eager.minmax_fold if plain_eager() else _MINMAX_FOLD
            fold(view, stats["min"], stats["max"], stats["nonfinite"], axis)
        else:
            self._fold(*torch.ops.qsim.minmax(view, axis))

    def _fold(self, lo: Tensor, hi: Tensor, bad: Tensor) -> None:
        stats = self._buffers  # (not nn.Module.__getattr__: a microsecond per read)
        torch.minimum(stats["min"], lo, out=stats["min"])
        torch.maximum(stats["max"], hi, out=stats["max"])
        stats["nonfinite"].add_(bad)

    def _check_usable(self, grid: Grid, caller: str) -> None:
        """Raises unless `grid` is a Grid and every encoding saw a finite value (`caller`: the
        method named in the error)."""
        if not isinstance(grid, Grid):
            raise TypeError(f"{type(self).__name__}.{caller}: grid must be a Grid "
                            f"(torchqsim.quantization.grid), got {type(grid).__name__}")
        self._check_seen()

    def _check_seen(self) -> None:
        seen = self.min <= self.max
        if bool(seen.all()):
            return
        c = int((~seen).flatten().nonzero()[0, 0])
        where = f" (encoding {c} of {seen.numel()})" if self._stat_shape else ""
        skipped = int(self.nonfinite.flatten()[c])
        if skipped:
            raise RuntimeError(f"{type(self).__name__} saw only non-finite values{where}: "
                               f"{skipped} NaN/Inf values were skipped")
        raise RuntimeError(f"{type(self).__name__} saw no data{where}: run update_stats "
                           f"(or calibrate under compute_encodings()) first")

    @torch.no_grad()
    def compute_encodings(self, bitwidth: int, symmetric: bool, *, strict: bool = False,
                          unsigned: bool = False) -> Encoding:
        """The encoding of the statistics for a grid.

        Args:
            bitwidth: 2 to 16.
            symmetric: signed symmetric grid (zero point 0), else unsigned asymmetric.
            strict: symmetric grid without its lowest integer ``[-(2^(b-1)-1), 2^(b-1)-1]``.
            unsigned: symmetric on the unsigned grid ``[0, 2^b-1]`` (zero point 0 for
                non-negative data, else ``2^(b-1)``).

        Returns:
            An :class:`Encoding` whose tensors have the analyzer's shape.

        Raises:
            RuntimeError: no finite value was seen (for some encoding).
            ValueError: bad bitwidth or grid options.
        """
        return self.encodings_for(Grid.from_flags(bitwidth, symmetric, strict, unsigned))

    @torch.no_grad()
    def encodings_for(self, grid: Grid) -> Encoding:
        """:meth:`compute_encodings` for a :class:`~torchqsim.quantization.grid.Grid`.

        Raises:
            TypeError: `grid` is not a Grid.
            RuntimeError: no finite value was seen (for some encoding).

        Example::

            >>> from torchqsim.quantization import GridKind, MinMaxEncodingAnalyzer
            >>> a = MinMaxEncodingAnalyzer()
            >>> a.update_stats(torch.tensor([-1.0, 3.0]))
            >>> int(a.encodings_for(Grid.of(8, GridKind.ASYMMETRIC)).zero_point)
            64
        """
        self._check_usable(grid, "encodings_for")
        return Encoding(*(t.reshape(self.shape) for t in self._encodings(grid)))

    def held_range(self, grid: Grid) -> tuple[Tensor, Tensor] | None:
        """The (min, max) an aimet-torch quantizer holds for the last encoding computed on
        `grid`, where it is not the encoding's own (snapped) min/max; None here."""
        return None

    def quantizer_range(self, grid: Grid) -> tuple[Tensor, Tensor]:
        """The (min, max) a quantizer on `grid` holds for the encoding of the statistics:
        :meth:`held_range` after :meth:`encodings_for`, else the encoding's min/max.

        Raises:
            RuntimeError: no finite value was seen (for some encoding).

        Example::

            >>> from torchqsim.quantization import GridKind, MinMaxEncodingAnalyzer
            >>> a = MinMaxEncodingAnalyzer()
            >>> a.update_stats(torch.tensor([-1.0, 3.0]))
            >>> [round(float(t), 4) for t in a.quantizer_range(Grid.of(8, GridKind.SYMMETRIC))]
            [-3.0236, 3.0]
        """
        encoding = self.encodings_for(grid)
        return self.held_range(grid) or (encoding.min, encoding.max)

    def _encodings(self, grid: Grid) -> tuple[Tensor, ...]:
        """(scale, zero_point, min, max) of the statistics on `grid`, from a qsim op that takes
        the grid as ``grid.bitwidth, int(grid.kind)`` (the C enum qsim_grid_kind)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
