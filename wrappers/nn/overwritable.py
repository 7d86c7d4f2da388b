"""Whether a module's fresh result may be quantized in place (no-grad forwards): the tensor
owns its memory, or is a view of a tensor nothing else holds."""

import sys

import torch
from torch import Tensor


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
