"""Quantized weights that live only for one op: written into a per-thread buffer.

An in-place sim (``QuantizationSimModel(..., in_place=True)``) keeps no quantized copy of its
weights: every no-grad forward fake-quantizes each weight again into a new tensor that the op
consumes at once. Freshly allocated, such outputs cost page faults and, through glibc's dynamic
mmap threshold, fragment the heap (peak RSS grows). :func:`quantized_weight_for_op` writes them
into one buffer per thread and dtype instead, for wrappers whose op consumes the weight before
returning and keeps no reference to it (``QuantizedLinear``, ``QuantizedConv*d``).

Example::

    >>> import torch
    >>> from torchqsim.quantization.param_quantizer import ParamQuantizeDequantize
    >>> q = ParamQuantizeDequantize((), 8, symmetric=True).eval()
    >>> q.cache_eval_output = False
    >>> w = torch.linspace(-1.0, 1.0, 1 << 16)        # 256 KiB: through the buffer
    >>> with torch.no_grad():
    ...     y = quantized_weight_for_op(q, w)
    >>> torch.equal(y, q(w)), y.untyped_storage().data_ptr() != w.untyped_storage().data_ptr()
    (True, True)
"""

import threading

import torch
from torch import Tensor
from torch.nn.modules import module as _module

from ..quantization.param_quantizer import ParamQuantizeDequantize
from ..quantization.quantizer import plain_eager

__all__ = ["SCRATCH_MAX_BYTES", "quantized_weight_for_op"]

#: Weights from SCRATCH_MIN_BYTES to SCRATCH_MAX_BYTES go through the buffer. Smaller ones are
#: allocated per call (cheap, from the heap's free lists); larger ones too, since glibc always
#: serves those with mmap (its dynamic threshold stops at 32 MiB) and returns them.
SCRATCH_MIN_BYTES = 256 << 10
SCRATCH_MAX_BYTES = 32 << 20

_LOCAL = threading.local()


def _scratch(like: Tensor) -> Tensor:
    """This thread's buffer for `like`'s dtype, viewed as a contiguous tensor of its shape (the
    views are kept: a forward asks for the same few shapes every time)."""
    views = _LOCAL.__dict__.setdefault("views", {})
    view = views.get((like.dtype, like.shape))
    if view is None:
        buffers = _LOCAL.__dict__.setdefault("buffers", {})
        buf = buffers.get(like.dtype)
        if buf is None or buf.numel() < like.numel():
            buf = buffers[like.dtype] = torch.empty(like.numel(), dtype=like.dtype)
            for key in [k for k in views if k[0] == like.dtype]:
                del views[key]  # views of the smaller buffer: it is freed once they go
        view = views[(like.dtype, like.shape)] = buf[:like.numel()].view(like.shape)
    return view


def _hooked(q) -> bool:
    return bool(q._forward_hooks or q._forward_pre_hooks or _module._global_forward_hooks or
                _module._global_forward_pre_hooks)


def quantized_weight_for_op(q, weight: Tensor) -> Tensor | None:
    """``q(weight)`` written into this thread's buffer, or `weight` itself where `q` folded it,
    or None where neither applies.

    It applies to a :class:`ParamQuantizeDequantize` without an eval cache
    (``cache_eval_output`` False) and without hooks, in a no-grad plain eager call. A weight that
    :meth:`~ParamQuantizeDequantize.fold` wrote, unchanged, is returned as it is in eval mode, as
    ``q(weight)`` returns it (without a second look at its record). Otherwise a contiguous CPU
    weight of :data:`SCRATCH_MIN_BYTES` to :data:`SCRATCH_MAX_BYTES` is quantized into the
    buffer: bit for bit ``q(weight)``, but overwritten by the next weight this thread quantizes,
    so the caller must consume it at once and keep no reference to it.
    """
    if not (isinstance(q, ParamQuantizeDequantize) and
            type(q).forward is ParamQuantizeDequantize.forward and not q.cache_eval_output and
            not torch.is_grad_enabled() and plain_eager() and not _hooked(q)):
        return None
    if not q.training and not q._calibrating and q.is_folded(weight):
        return weight
    if not (weight.device.type == "cpu" and weight.is_contiguous() and
            SCRATCH_MIN_BYTES <= weight.numel() * weight.element_size() <= SCRATCH_MAX_BYTES):
        return None
    return q.forward_into(weight, _scratch(weight))
