"""Whether a module's fresh result may be quantized in place: the tensor owns its memory, or is a
view of a tensor nothing else holds (:func:`overwritable`); in a training forward also that its
quantizer trains by the straight-through estimator (:func:`straight_through_in_place`)."""

import sys

import torch
from torch import Tensor
from torch.nn.modules import module as _module

from ..quantization.quantizer import IN_PLACE_DTYPES


def _sole_refs() -> int:
    """``sys.getrefcount`` of an object held by one local variable only (interpreter-specific)."""
    probe = object()
    return sys.getrefcount(probe)


def _storage_uses(t: Tensor) -> int:
    """Tensors (and storage objects) holding `t`'s storage, counted by torch."""
    storage = t.untyped_storage()
    return torch._C._storage_Use_Count(storage._cdata)


SOLE_REFS = _sole_refs()
_SOLE_STORAGE_USES = _storage_uses(torch.empty(1))


def _base_holders(view: Tensor) -> tuple[int, int]:
    """(Python references, C++ uses) of the base of `view` (a dense tensor, never a subclass)."""
    base = view._base
    return sys.getrefcount(base), base._use_count()


def _view_of_temporary() -> tuple[int, int]:
    """:func:`_base_holders` of a view whose base only the view holds (interpreter-specific)."""
    view = torch.empty(2).view(1, 2)
    return _base_holders(view)


_TEMPORARY_BASE = _view_of_temporary()


def overwritable(t) -> bool:
    """Whether a module's result `t`, referenced only by the caller's local variable (checked by
    the caller with ``sys.getrefcount``, in a no-grad plain eager call), may be overwritten: a
    dense tensor covering all of its storage, and either the only tensor on that storage, or a
    view of a tensor that nothing else references (``F.linear`` on a 3-D input returns a view of
    its 2-D result), so that no input, parameter, buffer or other tensor shares its memory (an op
    returning its input, or a view of it, shares the input's storage; a module keeping its result
    holds another reference).
    """
    if not (type(t) is Tensor and t.device.type in ("cpu", "cuda") and
            t.dtype in (torch.float32, torch.float16, torch.bfloat16) and
            t.storage_offset() == 0 and
            (t.is_contiguous() or torch._debug_has_internal_overlap(t) == 0) and
            t.untyped_storage().nbytes() == t.numel() * t.element_size()):
        return False
    if t._base is None:
        return _storage_uses(t) == _SOLE_STORAGE_USES
    return type(t._base) is Tensor and _storage_uses(t) == _SOLE_STORAGE_USES + 1 and \
        _base_holders(t) == _TEMPORARY_BASE


def hookless(m) -> bool:
    """Whether calling module `m` runs no hooks (its own or global ones), as the condition of
    ``nn.Module``'s own fast path: only then may a wrapper compute ``m(t)`` without calling `m`."""
    return not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or
                m._backward_pre_hooks or _module._global_forward_hooks or
                _module._global_forward_pre_hooks or _module._global_backward_hooks or
                _module._global_backward_pre_hooks)


def straight_through_in_place(q, t) -> bool:
    """Whether quantizer `q` may quantize a module's result `t` in place in a grad-mode forward,
    through ``torch.ops.qsim.quantize_dequantize_`` (which keeps one bit a value for the backward
    instead of `t`; same values and gradients as ``q(t)``): `q` is per tensor with a held range
    (not calibrating, min/max not learned, no constant qparams) and `t` is a float32, float16 or
    bfloat16 CPU tensor that autograd produced. The caller checks :func:`overwritable` and the
    references to `t`.
    """
    params = q._parameters
    lo, hi = params.get("min"), params.get("max")
    return not q._calibrating and lo is not None and hi is not None and lo.numel() == 1 and \
        not (lo.requires_grad or hi.requires_grad) and q.block_size is None and \
        "_constant_qparams" not in q.__dict__ and type(t) is Tensor and \
        t.dtype in IN_PLACE_DTYPES and t.device.type == "cpu" and t.grad_fn is not None
