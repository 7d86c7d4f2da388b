"""`QuantizeDequantize`: a fake-quantization module that calibrates and holds its encoding.

Like aimet-torch v2's ``QuantizeDequantize``, the encoding is held as ``min``/``max`` parameters
of the encoding shape (learnable for range learning), and the grid parameters follow from them::

    scale      = (max - min) / (qmax - qmin)
    zero_point = clamp(qmin - round(min / scale), qmin, qmax)   # asymmetric (round: STE)
                 0, or 2^(b-1) for unsigned symmetric with min < 0                # symmetric

The zero point is the C rule (``Grid.zero_point``: ``qsim_zero_points_f32``, the op
``torch.ops.qsim.zero_point``); Python does not recompute it.

The forward is ``torchqsim.functional.quantize_dequantize``. Calibration::

    q = QuantizeDequantize((), bitwidth=8, symmetric=False, encoding_analyzer=SqnrEncodingAnalyzer())
    with q.compute_encodings():      # forward observes and passes data through
        for x in batches:
            q(x)
    y = q(x)                         # quantized with the computed encoding

`torchqsim.quantization.compute_encodings(module)` (calibration.py) does the same for every
quantizer inside a module and names the ones that saw no data by their module path."""

import contextlib

import torch
from torch import Tensor, nn

from .. import functional as F
from ..distributed import sync_statistics
from ._layout import aligned_shape, qdq_layout
from ._tracing import plain_eager
from .eager_qparams import eager_qparams
from .encoding_analyzer import Encoding, EncodingAnalyzer, MinMaxEncodingAnalyzer
from .grid import Grid, GridKind
from .pointwise_qdq import OP_DTYPES, out_of_place_qdq, reciprocal_qdq
from .range_learning import range_qdq

_QDQ_OUT = torch.ops.qsim.quantize_dequantize_out.default  # ops F.quantize_dequantize calls
_QDQ_INPLACE, IN_PLACE_DTYPES = torch.ops.qsim.quantize_dequantize_.default, OP_DTYPES  # per tensor

__all__ = ["QuantizeDequantize", "plain_eager"]


class QuantizeDequantize(nn.Module):
    """Fake-quantizes its input on an integer grid with a calibrated (or learned) encoding.

    Args:
        shape: encoding shape, aligned with the input's trailing dimensions: ``()`` per-tensor,
            ``(C, 1, 1, 1)`` per output channel of a conv weight, ``(C, K // B)`` for blocks of
            B along the last dimension of a ``(C, K)`` weight.
        bitwidth: 2 to 16.
        symmetric: signed symmetric grid (zero point 0) when True, unsigned asymmetric when False.
        encoding_analyzer: how calibration chooses the encoding; a
            :class:`~torchqsim.quantization.MinMaxEncodingAnalyzer` of `shape` by default.
        block_size: optional per-dimension block sizes (AIMET v2; ``-1`` = whatever the input
            implies), checked against the input; blocks themselves follow from `shape`.
        strict: strict symmetric grid ``[-(2^(b-1)-1), 2^(b-1)-1]``.
        unsigned: symmetric on the unsigned grid (zero point 0 for non-negative data, else
            ``2^(b-1)``). The grid is held as :attr:`grid` (a frozen
            :class:`~torchqsim.quantization.grid.Grid`, bounds from C).
        name: used in error messages (`compute_encodings(module)` sets it to the module path).

    Raises:
        ValueError: bad bitwidth, grid options, block sizes, or an analyzer of another shape.

    Example::

        >>> q = QuantizeDequantize((), 8, symmetric=False)
        >>> with q.compute_encodings():
        ...     _ = q(torch.tensor([-1.0, 3.0]))
        >>> q(torch.tensor([0.1, 2.0, 5.0])).detach()   # 5.0 clips to the range max
        tensor([0.0941, 1.9922, 2.9961])
    """

    def __init__(self, shape, bitwidth: int, symmetric: bool,
                 encoding_analyzer: EncodingAnalyzer | None = None, block_size=None, *,
                 strict: bool = False, unsigned: bool = False, name: str | None = None):
        super().__init__()
        shape = tuple(int(s) for s in shape)
        blocks = None if block_size is None else tuple(int(b) for b in block_size)
        if blocks is not None and (len(blocks) != len(shape) or
                                   any(b == 0 or b < -1 for b in blocks)):
            raise ValueError(f"block_size {block_size} must give a positive size or -1 for each "
                             f"of the {len(shape)} dimensions of shape {shape}")
        # Plain attributes straight into __dict__: nn.Module.__setattr__ (which looks for
        # parameters, buffers and modules of the name) is a fifth of building a quantizer.
        vars(self).update(shape=shape, grid=Grid.from_flags(bitwidth, symmetric, strict, unsigned),
                          block_size=blocks, name=name, _calibrating=False)
        analyzer = encoding_analyzer if encoding_analyzer is not None else \
            MinMaxEncodingAnalyzer(self.shape)
        if analyzer.shape != self.shape:
            raise ValueError(f"encoding_analyzer has shape {analyzer.shape}, the quantizer "
                             f"{self.shape}")
        self.encoding_analyzer = analyzer
        self.min = nn.Parameter(torch.zeros(self.shape))
        self.max = nn.Parameter(torch.zeros(self.shape))
        self.register_buffer("initialized", torch.tensor(False))

    #: Round ``x * (1 / scale)`` instead of ``x / scale`` in no-grad forwards, as aimet-torch
    #: 2.42's fast path (``torch.fake_quantize_*``) does: see ``QuantizationSimModel``'s
    #: ``aimet_eval_rounding`` (docs/aimet.md §2.5). Off: ONNX QuantizeLinear's ``x / scale``.
    reciprocal_rounding = False

    #: Compiled, a per-tensor x of at most this many dims is quantized in place on a copy in the
    #: traced layout (:func:`~torchqsim.quantization.pointwise_qdq.out_of_place_qdq`), and a range-
    #: learning x into a planned buffer (:mod:`~torchqsim.quantization.range_learning`). 3:
    #: inductor may lay out 4-D conv outputs channels-last; the sim sets 4 without convs.
    compiled_in_place_dims = 3

    #: Compiled without gradients, a float32 x of at most this many values takes fused pointwise
    #: operations, not the op (:func:`~torchqsim.quantization.pointwise_qdq.out_of_place_qdq`).
    compiled_pointwise_max_numel = 4096

    #: Whether x is always a stored tensor (a parameter), never a value a compiled graph's kernel
    #: computes: then a 16-bit x may take fused pointwise operations (``out_of_place_qdq``).
    quantizes_stored_tensors = False

    @property
    def symmetric(self) -> bool:
        return self.grid.symmetric

    @property
    def bitwidth(self) -> int:
        return self.grid.bitwidth

    @property
    def qmin(self) -> int:
        return self.grid.qmin

    @property
    def qmax(self) -> int:
        return self.grid.qmax

    def _label(self) -> str:
        return f"quantizer {self.name!r}" if self.name else \
            f"QuantizeDequantize(shape={self.shape}, bitwidth={self.bitwidth}, grid={self.grid.name})"

    def is_initialized(self) -> bool:
        """Whether the quantizer holds an encoding (calibrated, set or loaded). The flag is read
        from its buffer once per write (every write bumps the buffer's version counter)."""
        flag = self._buffers["initialized"]
        seen = self.__dict__.get("_initialized_seen")
        if seen is None or seen[0] is not flag or seen[1] != flag._version:
            seen = self._initialized_seen = (flag, flag._version, bool(flag))
        return seen[2]

    @torch.no_grad()
    def set_range(self, min, max) -> None:
        """Sets the encoding from a range, snapped to the grid (zero exactly representable).

        Example::

            >>> q = QuantizeDequantize((), 8, symmetric=True)
            >>> q.set_range(-1.0, 2.0)    # scale max(2 / 127, 1 / 128); range [-128, 127] * scale
            >>> q.get_encoding()
            Encoding(scale=tensor(0.0157), zero_point=tensor(0, dtype=torch.int32), min=tensor(-2.0157), max=tensor(2.))
        """
        lo = torch.as_tensor(min, dtype=torch.float32).expand(self.shape).contiguous()
        hi = torch.as_tensor(max, dtype=torch.float32).expand(self.shape).contiguous()
        _, _, emin, emax = torch.ops.qsim.encodings_min_max(lo, hi, self.bitwidth,
                                                          int(self.grid.kind))
        self._set(emin, emax)

    def _set(self, min: Tensor, max: Tensor) -> None:
        params = self._parameters  # (not nn.Module.__getattr__: a microsecond per read)
        params["min"].copy_(min.reshape(self.shape))
        params["max"].copy_(max.reshape(self.shape))
        self._buffers["initialized"].fill_(True)

    def get_scale(self) -> Tensor:
        """``(max - min) / (qmax - qmin)``, of the encoding shape (an IEEE division on every
        device: on CUDA torch divides by a Python number through its reciprocal, one ulp off)."""
        span = self.max - self.min
        if span.is_cuda:
            return span / span.new_tensor(float(self.qmax - self.qmin))
        return span / (self.qmax - self.qmin)

    def get_zero_point(self) -> Tensor:
        """The zero point (ONNX sign; AIMET offset = -zero point), float, of the encoding shape."""
        return self._zero_point()

    def _zero_point(self, scale: Tensor | None = None) -> Tensor:
        """:meth:`get_zero_point` by the C rule (:meth:`Grid.zero_point`), reusing `scale`
        (:meth:`get_scale`) when min/max get no gradient."""
        learned = torch.is_grad_enabled() and (self.min.requires_grad or self.max.requires_grad)
        if scale is None or (learned and self.grid.kind is GridKind.ASYMMETRIC):
            # Learned: a scale node of its own, so that min/max gradients are summed in the same
            # order (bit for bit) as they always were.
            scale = self.get_scale()
        return self.grid.zero_point(self.min, scale)

    def _scale_zero_point(self) -> tuple:
        scale = self.get_scale()
        return scale, self._zero_point(scale)

    def get_encoding(self) -> Encoding:
        """The encoding as :class:`Encoding` (detached; zero point as int32; min/max the grid's
        ends ``scale * (qmin - zp)``, ``scale * (qmax - zp)``, as AIMET's ``get_min``/``get_max``:
        the held min/max need not lie on the grid, see ``MinMaxEncodingAnalyzer.held_range``)."""
        with torch.no_grad():
            scale, zp = self.get_scale(), self.get_zero_point()
            return Encoding(scale, zp.to(torch.int32), scale * (self.qmin - zp),
                            scale * (self.qmax - zp))

    def _check_shape(self, x_shape) -> None:
        full = aligned_shape(self.shape, x_shape)
        if self.block_size is not None:
            blocks = (1,) * (len(full) - len(self.block_size)) + self.block_size
            bad = [d for d, (s, b, n) in enumerate(zip(full, blocks, x_shape))
                   if b != -1 and s * b != n]
            if bad:
                raise ValueError(f"{self._label()}: input shape {tuple(x_shape)} does not match "
                                 f"shape {self.shape} x block_size {self.block_size} "
                                 f"(dimension {bad[0]})")

    def forward(self, x: Tensor) -> Tensor:
        """Quantize-dequantize `x`; under :meth:`compute_encodings`, observe it and return it.

        Raises:
            RuntimeError: the quantizer holds no encoding yet.
            ValueError: the encoding shape does not fit `x`.
        """
        return self._quantize(x, None)

    def forward_into_input(self, x: Tensor) -> Tensor:
        """:meth:`forward` that writes its result into `x` itself (returned): for a caller that
        owns `x` and no longer needs its values (``torchqsim.nn`` wrappers call it on the fresh
        output of their op). Bit for bit the result of :meth:`forward`, and in grad mode its
        straight-through gradient (per tensor: ``qsim::quantize_dequantize_``, one bit a value).

        Raises:
            RuntimeError: grad mode is on, `x` requires grad and is not per tensor (see
                :func:`torchqsim.functional.quantize_dequantize`'s ``out=``), or its range is
                learned (min/max require grad), or as :meth:`forward`.

        Example::

            >>> q = QuantizeDequantize((), 8, symmetric=False)
            >>> q.set_range(0.0, 2.55)
            >>> y = torch.tensor([0.004, 1.0, 9.0])
            >>> with torch.no_grad():
            ...     print(q.forward_into_input(y) is y, y)
            True tensor([0.0000, 1.0000, 2.5500])
        """
        return self._quantize(x, x)

    def _quantize(self, x: Tensor, out: Tensor | None) -> Tensor:
        if self._calibrating:
            analyzer = self._modules["encoding_analyzer"]
            if self.block_size is not None or analyzer.shape != self.shape:
                self._check_shape(x.shape)  # (else the analyzer's own check is this one)
            analyzer.update_stats(x)
            return x
        y = None if out is not None else range_qdq(self, x)
        if y is not None:  # range learning, one autograd node
            return y
        scale, zp, qmin, qmax, axis, block = self._qparams(x.shape)
        if self.reciprocal_rounding and block is None and not torch.is_grad_enabled() and \
                x.dtype == torch.float32 and scale.dim() <= 1:
            y = reciprocal_qdq(x, scale, zp, axis, qmin, qmax)
            return y if out is None else out.copy_(y)
        if out is None:  # (compiled: no op allocating y where it can be, see pointwise_qdq)
            return out_of_place_qdq(x, scale, zp, qmin, qmax, axis, block, self._label,
                                    self.compiled_in_place_dims, self.compiled_pointwise_max_numel,
                                    self.quantizes_stored_tensors)
        if out is x and axis is None and block is None and x.dtype in IN_PLACE_DTYPES and x.is_cpu:
            _QDQ_INPLACE(x, scale, zp, qmin, qmax)  # with grad: straight-through, in place
            return x
        if torch.is_grad_enabled():  # F raises where autograd would need the input
            return F.quantize_dequantize(x, scale, zp, qmin, qmax, axis, block, out=out)
        _QDQ_OUT(x, scale, zp, qmin, qmax, axis, block, out)
        return out

    def _qparams(self, x_shape) -> tuple:
        """``(scale, zero_point, qmin, qmax, axis, block_size)`` of the op for an input of
        `x_shape`, once `x_shape` and the encoding are checked (:meth:`_checked_qparams`); kept
        between plain eager calls (:func:`~torchqsim.quantization.eager_qparams.eager_qparams`).
        """
        if not plain_eager():  # traced: nothing cached (the QDQ export detaches min/max)
            return self._checked_qparams(x_shape)
        return eager_qparams(self, x_shape)

    def floors_at_zero(self, x_shape) -> bool:
        """Whether every encoding's grid starts at exactly 0 (zero point == qmin) for an input of
        `x_shape`: then every value <= 0 (-0.0 and -Inf included) quantizes to +0.0, so a ReLU
        before the quantizer changes no output bit (NaN passes both alike). Computed once per
        encoding, as :meth:`_qparams` (whose zero point it keeps).

        Raises:
            RuntimeError: the quantizer holds no encoding yet.

        Example::

            >>> q = QuantizeDequantize((), 8, symmetric=False)
            >>> q.set_range(0.0, 2.55)
            >>> q.floors_at_zero((4,))
            True
        """
        _, zp, qmin, *_ = self._qparams(tuple(x_shape))
        seen = self.__dict__.get("_floor_seen")
        if seen is None or seen[0] is not zp:
            seen = self._floor_seen = (zp, bool((zp == qmin).all()))
        return seen[1]

    def _checked_qparams(self, x_shape) -> tuple:
        self._check_ready(x_shape)
        return self._compute_qparams(tuple(x_shape))

    def _check_ready(self, x_shape) -> None:
        """Raises unless the quantizer holds an encoding whose shape fits an input of `x_shape`."""
        self._check_shape(x_shape)
        # Under torch.compile the check would break the graph (it reads a buffer); there an
        # uninitialized quantizer fails in the op instead (its scale is 0).
        if not torch.compiler.is_compiling() and not self.is_initialized():
            raise RuntimeError(f"{self._label()} has no encoding: calibrate it under "
                               f"`with quantizer.compute_encodings():`, or call set_range()")

    def _compute_qparams(self, x_shape: tuple) -> tuple:
        axis, block, qshape = qdq_layout(x_shape, self.shape)
        constant = self.__dict__.get("_constant_qparams")
        scale, zp = constant if constant is not None else self._scale_zero_point()
        if block is not None:
            full = _full(self.shape, qshape)
            scale = scale.reshape(full).expand(qshape).contiguous()
            zp = zp.reshape(full).expand(qshape).contiguous()
        elif scale.shape != qshape:  # per-tensor: (), per-channel: (C,)
            scale, zp = scale.reshape(qshape), zp.reshape(qshape)
        return scale, zp, self.qmin, self.qmax, axis, block

    def _start_calibration(self) -> None:
        if self._calibrating:
            raise RuntimeError(f"{self._label()} is already computing encodings")
        self.encoding_analyzer.reset_stats()
        self._calibrating = True

    def _finish_calibration(self) -> None:
        self._calibrating = False
        self._set_from_analyzer()

    def _set_from_analyzer(self) -> None:
        """Sets the encoding to the one the analyzer computes from its statistics."""
        try:
            lo, hi = self.encoding_analyzer.quantizer_range(self.grid)
        except RuntimeError as e:
            raise RuntimeError(f"{self._label()}: no encoding computed: {e}") from e
        with torch.no_grad():
            self._set(lo, hi)

    @contextlib.contextmanager
    def compute_encodings(self, process_group=None):
        """Context manager: calibrate on the batches the forward sees inside it.

        Statistics start empty; the forward observes its input and returns it unchanged. On
        leaving the block normally the analyzer's encoding becomes the quantizer's; if the block
        raises, the encoding is left as it was. Under ``torch.distributed`` the statistics are
        first merged across ranks (:func:`torchqsim.distributed.sync_statistics`), so every rank
        gets the encoding of all the ranks' data.

        Args:
            process_group: None: merge over the default group when ``torch.distributed`` is
                initialized; False: never merge; a ``ProcessGroup``: merge over it.

        Raises:
            RuntimeError: on exit, when the quantizer saw no (finite) data.
        """
        self._start_calibration()
        try:
            yield self
        finally:
            self._calibrating = False
        sync_statistics([self.encoding_analyzer], process_group)
        self._finish_calibration()

    def extra_repr(self) -> str:
        return f"shape={self.shape}, bitwidth={self.bitwidth}, grid={self.grid.name!r}" + \
            (f", block_size={self.block_size}" if self.block_size is not None else "")


def _full(shape, qshape):
    """`shape` aligned to the rank of `qshape` (leading ones)."""
    return (1,) * (len(qshape) - len(shape)) + tuple(shape) if qshape else ()
