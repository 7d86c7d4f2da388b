"""Whether a module's fresh result may be quantized in place: the tensor owns its memory, or is a
view of a tensor nothing else holds (:func:`overwritable`); in a training forward also that its
quantizer trains by the straight-through estimator (:func:`straight_through_in_place`), which
:func:`straight_through_into` then runs. :func:`argument_overwritable` asks the same of a
module's argument that its caller passed as a temporary, or as a variable of a captured graph
that dies with the call (:func:`mark_dying_inputs`)."""

import sys
import weakref

import torch
from torch import Tensor, fx, nn
from torch.nn.modules import module as _module

from .. import _eager
from .._holders import SOLE_STORAGE_USES, whole_storage_uses
from ..quantization.eager_qparams import eager_qparams
from ..quantization.quantizer import IN_PLACE_DTYPES


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
    if not (type(t) is Tensor and (t.is_cpu or t.is_cuda) and t.dtype in IN_PLACE_DTYPES and
            t.storage_offset() == 0 and
            (t.is_contiguous() or torch._debug_has_internal_overlap(t) == 0)):
        return False
    uses = whole_storage_uses(t)
    if uses is None:
        return False
    if t._base is None:
        return uses == SOLE_STORAGE_USES
    return type(t._base) is Tensor and uses == SOLE_STORAGE_USES + 1 and \
        _base_holders(t) == _TEMPORARY_BASE


def hookless(m) -> bool:
    """Whether calling module `m` runs no hooks (its own or global ones) and no compiled call
    (``m.compile()``), as the condition of ``nn.Module``'s own fast path: only then may a wrapper
    compute ``m(t)`` without calling `m`."""
    return m._compiled_call_impl is None and \
        not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or
                m._backward_pre_hooks or _module._global_forward_hooks or
                _module._global_forward_pre_hooks or _module._global_backward_hooks or
                _module._global_backward_pre_hooks)


def _argument_refs(m, x) -> int:
    """``sys.getrefcount(x)`` as :func:`argument_overwritable` takes it (the probe's measure)."""
    return sys.getrefcount(x)


class _ArgumentProbe(nn.Module):
    def forward(self, x):
        return _argument_refs(self, x)


# The frames between a caller and a module's forward on nn.Module's fast path (no hooks).
_CALL_PATH = (_module.Module._call_impl.__code__, _module.Module._wrapped_call_impl.__code__)


def _temporary_argument_refs() -> int:
    """:func:`_argument_refs` of a temporary passed to a module without hooks, the same on every
    call; 0 (nothing is overwritable) if this interpreter calls modules in another way."""
    probe = _ArgumentProbe()
    if not hookless(probe) or nn.Module.__call__.__code__ is not _CALL_PATH[1]:
        return 0
    counts = {probe(torch.empty(1)) for _ in range(16)}
    return counts.pop() if len(counts) == 1 else 0


_TEMPORARY_ARGUMENT = _temporary_argument_refs()
# module -> the forward code of the graph whose one call of it is its input's last use
_DYING_INPUTS: "weakref.WeakKeyDictionary[nn.Module, object]" = weakref.WeakKeyDictionary()


def mark_dying_inputs(gm: fx.GraphModule) -> None:
    """Records the modules that `gm`'s generated forward calls, at every call, with one argument,
    a value of the graph that no other node uses: the forward holds it in a variable that it
    clears right after the call, which :func:`argument_overwritable` then lets the module
    overwrite (from that code only: a recompiled graph, a copy or another caller gets no such
    leave).
    """
    every_call_dying: dict[nn.Module, bool] = {}  # (modules hash by identity)
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        module, arg = gm.get_submodule(node.target), node.args[0] if node.args else None
        last_use = len(node.args) == 1 and not node.kwargs and isinstance(arg, fx.Node) and \
            len(arg.users) == 1 and arg.op in ("call_module", "call_function", "call_method")
        every_call_dying[module] = every_call_dying.get(module, True) and last_use
    code = type(gm).forward.__code__
    for module, dying in every_call_dying.items():
        if dying:
            _DYING_INPUTS[module] = code


def argument_overwritable(m, x) -> bool:
    """Whether argument `x` of module `m`'s forward (the caller of this function) may be
    overwritten: `m` was called through ``nn.Module.__call__`` without hooks, by a caller that
    passed `x` as a temporary (``self.relu(self.bn(y))``, not a variable it may read again: any
    other Python reference to `x` counts) or by a captured graph's forward whose variable holding
    `x` dies with the call (:func:`mark_dying_inputs`), and `x` is :func:`overwritable`.

    Example::

        >>> class Probe(nn.Module):
        ...     def forward(self, x):
        ...         return argument_overwritable(self, x)
        >>> y = torch.ones(3)
        >>> Probe()(y), Probe()(torch.ones(3))
        (False, True)
    """
    frame = sys._getframe(1).f_back
    if frame.f_code is not _CALL_PATH[0] or frame.f_back.f_code is not _CALL_PATH[1]:
        return False
    refs = sys.getrefcount(x)
    if refs > _TEMPORARY_ARGUMENT and (refs > _TEMPORARY_ARGUMENT + 1 or
                                       _DYING_INPUTS.get(m) is not frame.f_back.f_back.f_code):
        return False
    return hookless(m) and overwritable(x)


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


def straight_through_into(q, t: Tensor, relu: bool = False) -> Tensor | None:
    """Quantizes `t` in place by `q` in a plain eager grad-mode forward (the caller checked
    :func:`straight_through_in_place` and :func:`overwritable`; the op through its direct eager
    entry, ``torchqsim._eager``) and returns it; ``F.linear``'s 3-D view of its 2-D result is
    written through that base, then viewed again (an in-place write to a view costs autograd two
    copies of its gradient). None (nothing written) for another view. With `relu` the gradient
    is that of ``q(relu(t))`` (`q`'s grid starts at 0).
    """
    base = t._base
    if base is not None and not (base.is_contiguous() and t.is_contiguous()):
        return None
    target = t if base is None else base
    scale, zero_point, qmin, qmax, *_ = eager_qparams(q, target.shape)
    _eager.quantize_dequantize_(target, scale, zero_point, qmin, qmax, relu)
    return t if base is None else target.view(t.shape)
