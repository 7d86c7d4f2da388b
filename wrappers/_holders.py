"""Who holds a tensor: the counts that the in-place paths check before they overwrite one (a
wrapper's fresh output, :mod:`torchqsim.nn.overwritable`; a parameter quantizer's previous eval
result, :class:`~torchqsim.quantization.param_quantizer.ParamQuantizeDequantize`).

Example::

    >>> import sys, torch
    >>> t = torch.empty(2)
    >>> sys.getrefcount(t) <= SOLE_REFS, storage_uses(t.untyped_storage()) == SOLE_STORAGE_USES
    (True, True)
    >>> whole_storage_uses(t) == SOLE_STORAGE_USES, whole_storage_uses(torch.empty(4)[:2])
    (True, None)
"""

import sys

import torch

__all__ = ["SOLE_REFS", "SOLE_STORAGE_USES", "storage_uses", "whole_storage_uses"]


def _sole_refs() -> int:
    """``sys.getrefcount`` of an object held by one local variable only (interpreter-specific)."""
    probe = object()
    return sys.getrefcount(probe)


def storage_uses(storage) -> int:
    """Tensors and storage objects holding `storage` (a tensor's ``untyped_storage()``, which
    counts itself), counted by torch."""
    return torch._C._storage_Use_Count(storage._cdata)


def whole_storage_uses(t) -> int | None:
    """:func:`storage_uses` of tensor `t`'s storage when `t`'s elements fill all of it (one
    storage object made: each costs ~0.3 us); None when the storage holds more than `t`."""
    storage = t.untyped_storage()
    if storage.nbytes() != t.numel() * t.element_size():
        return None
    return storage_uses(storage)


def _sole_storage_uses() -> int:
    """:func:`storage_uses` of the storage of a tensor nothing else holds."""
    t = torch.empty(1)
    return storage_uses(t.untyped_storage())


SOLE_REFS = _sole_refs()
SOLE_STORAGE_USES = _sole_storage_uses()
