"""`ParamQuantizeDequantize`: a weight quantizer that computes its encoding from the weight it
quantizes on first use, and the freeze flag shared by every quantizer of a sim.

An uninitialized :class:`ParamQuantizeDequantize` computes its encoding from its input (with its
own analyzer) on first use in any mode, as aimet-torch v2 does, unless it is frozen
(:func:`freeze`). After that its encoding changes only when something sets it: calibration,
``compute_param_encodings``, ``load_encodings`` or the optimizer (range learning). In QAT with a
post-training scheme (docs/aimet.md §7 "QAT modes") weight encodings therefore stay as calibrated
during training, as in aimet-torch 2.42; call ``sim.compute_param_encodings()`` to re-encode the
trained weights.

Example::

    >>> import torch
    >>> q = ParamQuantizeDequantize((), 8, symmetric=True).requires_grad_(False)
    >>> w = torch.tensor([-1.0, 0.5])
    >>> q(w)                        # computes its encoding from w first
    tensor([-1.0000,  0.5000])
    >>> _ = q.train()(w * 2)        # training mode: the encoding stays
    >>> float(q.max) < 1.0
    True
"""

import sys
import threading

import torch
from torch import Tensor, nn

from .._holders import SOLE_REFS, SOLE_STORAGE_USES, whole_storage_uses
from ._tracing import compiled
from .pointwise_qdq import pointwise_applies
from .quantizer import QuantizeDequantize, plain_eager

__all__ = ["ParamQuantizeDequantize", "freeze", "is_frozen"]

# The analyzer's statistics are state shared by every forward of the quantizer: first-use
# computations are serialised (one process-wide lock: a lock attribute would make modules
# impossible to deepcopy), so first forwards of one sim from several threads are safe (README,
# "Threads").
_RECOMPUTE_LOCK = threading.Lock()
_CACHED_QDQ = torch.ops.qsim.cached_quantize_dequantize_.default


def freeze(quantizer: nn.Module, frozen: bool = True) -> None:
    """Freezes (or unfreezes) a quantizer's encoding: no calibration or recomputation overwrites
    it and its min/max get no gradient (AIMET ``allow_overwrite(False)`` +
    ``requires_grad_(False)``). Unfreezing keeps min/max without gradient.

    Example::

        >>> q = QuantizeDequantize((), 8, symmetric=False)
        >>> freeze(q); is_frozen(q), q.min.requires_grad
        (True, False)
    """
    quantizer._allow_overwrite = not frozen
    if frozen:
        for p in quantizer.parameters(recurse=False):
            p.requires_grad_(False)


def is_frozen(quantizer: nn.Module) -> bool:
    """Whether :func:`freeze` froze the quantizer.

    Example::

        >>> is_frozen(QuantizeDequantize((), 8, symmetric=False))
        False
    """
    return not quantizer.__dict__.get("_allow_overwrite", True)  # (no __getattr__ fallback)


class ParamQuantizeDequantize(QuantizeDequantize):
    """A :class:`~torchqsim.quantization.QuantizeDequantize` for a parameter, whose encoding is
    computed from the parameter on first use (see the module docstring).

    Same arguments as ``QuantizeDequantize``.

    Example::

        >>> q = ParamQuantizeDequantize((2, 1), 4, symmetric=True)    # per output channel
        >>> w = torch.tensor([[1.0, -0.5], [0.1, 0.2]])
        >>> q.eval()(w).detach()
        tensor([[ 1.0000, -0.5714],
                [ 0.1143,  0.2000]])
    """

    #: Keep the eval-mode result (see :meth:`forward`); False computes it on every call, so that
    #: no second copy of the weight is held (``QuantizationSimModel``'s ``weight_cache``).
    cache_eval_output = True
    quantizes_stored_tensors = True  # a parameter: read rounded to its dtype in compiled graphs

    def _needs_encoding(self) -> bool:
        if self._calibrating or is_frozen(self):
            return False
        # compiled: no check of the buffer (a graph break); use before calibration fails in the op
        return not torch.compiler.is_compiling() and not self.is_initialized()

    # Compiled, the computation runs eagerly between graphs (the analyzers branch on data).
    @torch.compiler.disable
    def recompute(self, x: Tensor) -> None:
        """Sets the encoding to the analyzer's encoding of `x` alone."""
        with _RECOMPUTE_LOCK:
            self.encoding_analyzer.reset_stats()
            self.encoding_analyzer.update_stats(x)
            self._set_from_analyzer()

    def forward(self, x: Tensor) -> Tensor:
        """Quantize-dequantize the parameter `x`, computing the encoding first when it has none
        (see the module docstring).

        In eval mode, when no gradient is needed (no grad mode, or neither `x` nor min/max
        requires grad), the result is computed once and reused until `x` or the encoding
        changes: another tensor, another storage, or an in-place write (tracked by the
        tensors' version counters, which optimizer steps, ``copy_``, ``load_state_dict`` and
        ``set_range`` all bump). Writes through ``.data`` bypass version counters: after one,
        call :meth:`clear_cache` (or switch to training mode and back). The cached result is a
        second copy of the weight: :attr:`cache_eval_output` False turns the cache off. A new
        result is written into the previous one's memory when nothing else holds it (no Python
        reference, view or autograd node), as after each ``compute_encodings``: no allocation
        and no page faults for a copy of every weight. Under ``torch.compile`` the same holds
        for CPU weights of the op's dtypes (:meth:`_compiled_result`).
        """
        params = self._parameters  # (not self.min: nn.Module.__getattr__ costs a microsecond)
        if not plain_eager():
            return self._compiled_result(x) if self._compiled_cache_applies(x) else \
                self.forward_into(x, None)
        if self.training or self._calibrating or \
                torch.is_grad_enabled() and (x.requires_grad or params["min"].requires_grad or
                                             params["max"].requires_grad):
            return self.forward_into(x, None)
        if self.is_folded(x):
            return x
        if not self.cache_eval_output:
            return self.forward_into(x, None)
        cached = self.__dict__.get("_output_cache")
        if not self._still(cached, x):
            out = _overwritable_result(cached, x)
            cached = self._output_cache = self._record(x, self.forward_into(x, out))
        return cached[4]

    def _compiled_cache_applies(self, x: Tensor) -> bool:
        """Whether ``torch.compile`` traces an eval call that may keep its result (see
        :meth:`_compiled_result`): no gradient, the cache on, not folded, the C op's data."""
        return compiled() and not self.training and not self._calibrating and \
            self.cache_eval_output and "_folded" not in self.__dict__ and \
            not self.reciprocal_rounding and x.is_cpu and pointwise_applies(x, self.min, self.max)

    def _compiled_result(self, x: Tensor) -> Tensor:
        """The eval result in a ``torch.compile`` graph, kept between forwards as in eager mode:
        ``qsim::cached_quantize_dequantize_`` writes it into a tensor the quantizer holds
        (``_compiled_output``) only when `x`, the scale or zero point changed since the last
        call (bindings/weight_cache.cpp). The tensor is made while the first graph is traced
        (dynamo replays that assignment after the graph; the next call compiles once more, now
        with the tensor as an input); :meth:`clear_cache`, :meth:`fold` and a change of mode
        drop it, and a false :attr:`cache_eval_output` keeps graphs from making it."""
        out = getattr(self, "_compiled_output", None)
        if out is None or out.shape != x.shape or out.dtype != x.dtype or \
                out.stride() != x.stride():
            out = self._compiled_output = torch.empty_like(x)
        _CACHED_QDQ(out, x, *self._checked_qparams(x.shape))
        return out

    def _record(self, x: Tensor, y: Tensor) -> tuple:
        """What :meth:`_still` checks: `x`, the encoding tensors and their versions, with `y`."""
        lo, hi = self._parameters["min"], self._parameters["max"]
        return x, lo, hi, self._key(x, lo, hi), y

    def _key(self, x: Tensor, lo: Tensor, hi: Tensor) -> tuple:
        # (the grid holds qmin and qmax; torch.Size compares as a tuple)
        return (x._version, x.data_ptr(), x.dtype, x.device, x.shape, x.stride(),
                lo._version, hi._version, lo.data_ptr(), hi.data_ptr(), self.grid, self.shape)

    def _still(self, record, x: Tensor) -> bool:
        """Whether neither `x` nor the encoding changed since :meth:`_record` made `record`."""
        if record is None or record[0] is not x:
            return False
        lo, hi = self._parameters["min"], self._parameters["max"]
        return record[1] is lo and record[2] is hi and record[3] == self._key(x, lo, hi)

    def fold(self, param: Tensor) -> bool:
        """Writes the quantized `param` into `param` itself, so that inference computes nothing
        for it and holds no second copy (AIMET's ``fold_param_quantizers``): until `param` or
        the encoding changes (tracked as the eval cache of :meth:`forward`), a no-grad eval call
        returns `param` as it is; after a change it quantizes as usual. The results are those
        of the unfolded quantizer bit for bit, since the quantized values are checked to be a
        fixed point of the quantizer (integer grids are, at any bitwidth and dtype); where they
        are not (a subclass that is not idempotent), nothing is written and False is returned.
        The floating-point values of `param` are lost: it now holds its quantized values.

        Example::

            >>> q = ParamQuantizeDequantize((), 8, symmetric=True).requires_grad_(False).eval()
            >>> w = nn.Parameter(torch.tensor([1.0, -0.3]), requires_grad=False)
            >>> q.fold(w), w.data, q(w) is w
            (True, tensor([ 1.0000, -0.2992]), True)
        """
        with torch.no_grad():
            y = self.forward_into(param, None)
            if not torch.equal(self._quantize(y, None), y):
                return False
            param.copy_(y)
        self._folded = self._record(param, None)
        self.__dict__.pop("_compiled_output", None)
        return True

    def is_folded(self, x: Tensor) -> bool:
        """Whether `x` is the parameter :meth:`fold` wrote, unchanged, under the same encoding."""
        return "_folded" in self.__dict__ and self._still(self._folded, x)

    def forward_into(self, x: Tensor, out: Tensor | None) -> Tensor:
        """:meth:`forward` without the eval cache, into `out` when given (a tensor of `x`'s
        shape and dtype; no autograd, as :meth:`forward_into_input`); computes the encoding first
        when the quantizer has none."""
        if self._needs_encoding():
            self.recompute(x)
        return self._quantize(x, out)

    def clear_cache(self) -> None:
        """Forget the cached eval-mode result (see :meth:`forward`) and any :meth:`fold`.

        Example::

            >>> q = ParamQuantizeDequantize((), 8, symmetric=True).requires_grad_(False).eval()
            >>> w = torch.tensor([1.0, -0.3])
            >>> _ = q(w); w.data[0] = 0.5    # a write no version counter sees: q(w) is stale
            >>> q.clear_cache(); q(w)
            tensor([ 0.5039, -0.2992])
        """
        for kept in ("_output_cache", "_compiled_output", "_folded"):
            self.__dict__.pop(kept, None)

    def train(self, mode: bool = True):
        """``nn.Module.train``; a change of mode drops the eval cache (see :meth:`forward`),
        which a call that keeps the mode (``eval()`` in eval mode, as ``compute_encodings``
        makes it) leaves for the next result to reuse."""
        if bool(mode) != self.training:
            self.__dict__.pop("_output_cache", None)
            self.__dict__.pop("_compiled_output", None)
        return super().train(mode)


def _overwritable_result(record, x: Tensor) -> Tensor | None:
    """The result kept in `record` (:meth:`ParamQuantizeDequantize._record`) when the result
    for `x` may be written into it: laid out as `x` (contiguous, same shape, dtype and device),
    the whole of its storage, and held by the record alone (no other Python reference, no other
    tensor or view on its storage, no autograd node that saved it); else None."""
    y = None if record is None else record[4]
    if y is None or not (y.shape == x.shape and y.dtype == x.dtype and y.device == x.device and
                         y.is_contiguous() and x.is_contiguous() and y.storage_offset() == 0):
        return None
    # Python references: the record, `y` and getrefcount's argument (a tensor that C++ also
    # holds, as an autograd node that saved it, gets one more from torch)
    if sys.getrefcount(y) > SOLE_REFS + 1:
        return None
    return y if whole_storage_uses(y) == SOLE_STORAGE_USES else None
