"""The state of one capture (:class:`_Recorder`): the fx graph being written, where each tensor
came from, the attributes of the captured module; and the ``TorchFunctionMode`` that feeds it
every torch call."""

import builtins
import operator
from typing import Any, Callable, Optional

import torch
import torch.utils._pytree as pytree
from torch import fx, nn
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from ..graph.tensors import is_data_movement
from .traced_int import _Ref, _TracedInt

# Simple values that fx writes into generated code as literals.
_LITERALS = (bool, int, float, complex, str, type(None), type(Ellipsis), torch.dtype,
             torch.device, torch.memory_format, torch.layout)
# Reflected operators: recorded as the operator with swapped operands (``1 - x``).
_REFLECTED = {"__radd__": operator.add, "__rsub__": operator.sub, "__rmul__": operator.mul,
              "__rtruediv__": operator.truediv, "__rdiv__": operator.truediv,
              "__rpow__": operator.pow, "__rmatmul__": operator.matmul,
              "__rfloordiv__": operator.floordiv, "__rmod__": operator.mod}
_OPERATORS = {"__getitem__": operator.getitem, "__setitem__": operator.setitem}


def _tensor_method_name(func) -> Optional[str]:
    name = getattr(func, "__name__", None)
    if name and (getattr(torch.Tensor, name, None) is func
                 or getattr(torch._C.TensorBase, name, None) is func):
        return name
    return None


def _property_name(func) -> Optional[str]:
    owner = getattr(func, "__self__", None)
    if getattr(func, "__name__", None) == "__get__" and type(owner).__name__ == \
            "getset_descriptor":
        return owner.__name__
    return None


class _Recorder:
    """The state of one capture: the graph, where each tensor came from, the root's attributes."""

    def __init__(self, model: nn.Module, is_leaf: Callable[[nn.Module], bool]):
        self.graph = fx.Graph()
        self.is_leaf = is_leaf
        self.refs: WeakIdKeyDictionary = WeakIdKeyDictionary()  # tensor -> _Ref
        self.names = {id(t): n for n, t in (*model.named_parameters(), *model.named_buffers())}
        self.module_names = {id(m): n for n, m in model.named_modules() if n}
        self.attrs: dict[str, Any] = {}  # get_attr / call_module target -> object
        self.depth = 0  # > 0 while a leaf module runs: nothing is recorded
        self.scope: list[str] = []  # paths of the modules being run

    # ---- values -> fx arguments

    def arg(self, value):
        if isinstance(value, _TracedInt):
            return value._ref.get()
        if isinstance(value, torch.Tensor):
            return self.tensor(value)
        if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
            return type(value)(self.arg(v) for v in value) if isinstance(value, list) \
                else tuple(self.arg(v) for v in value)
        if isinstance(value, dict) and type(value) is dict:
            return {k: self.arg(v) for k, v in value.items()}
        if isinstance(value, slice):
            return slice(self.arg(value.start), self.arg(value.stop), self.arg(value.step))
        if isinstance(value, _LITERALS):
            return value
        return self.constant(value)

    def tensor(self, t: torch.Tensor) -> fx.Node:
        ref = self.refs.get(t)
        if ref is None:
            name = self.names.get(id(t))
            if name is None:
                return self.constant(t)
            self.attrs[name] = t
            ref = self.refs[t] = _Ref(self.graph.get_attr(name))
        return ref.get()

    def constant(self, value) -> fx.Node:
        name = f"_capture_constant_{len([a for a in self.attrs if a.startswith('_capture_')])}"
        self.attrs[name] = value
        node = self.graph.get_attr(name)
        if isinstance(value, torch.Tensor):
            self.refs[value] = _Ref(node)
        return node

    def register(self, value, ref: _Ref) -> None:
        """Remembers that the tensors in `value` (nested tuples/lists/dicts) come from `ref`."""
        if isinstance(value, torch.Tensor):
            self.refs[value] = ref
        elif isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                self.register(v, _Ref(make=self._item(ref, i)))
        elif isinstance(value, dict):
            for k, v in value.items():
                self.register(v, _Ref(make=self._item(ref, k)))

    def _item(self, ref: _Ref, key):
        return lambda: self.graph.call_function(operator.getitem, (ref.get(), key))

    # ---- recording

    def record_function(self, func, args: tuple, kwargs: dict, result):
        method, prop = _tensor_method_name(func), _property_name(func)
        if prop is not None:
            return self._record_property(prop, args[0], result)
        if method in _REFLECTED:
            kind, target, args = "call_function", _REFLECTED[method], (args[1], args[0])
        elif method in _OPERATORS:
            kind, target = "call_function", _OPERATORS[method]
        elif method == "div" and len(args) == 2 and kwargs in ({}, {"rounding_mode": None}):
            # `x / y` arrives as Tensor.div: recorded as fx traces it (docs/aimet.md §8)
            kind, target, kwargs = "call_function", operator.truediv, {}
        elif method == "__len__":
            kind, target = "call_function", builtins.len
        elif method is not None:
            kind, target = "call_method", method
        else:
            kind, target = "call_function", func
        if isinstance(result, int) and not isinstance(result, bool):
            if method not in ("size", "numel", "__len__"):
                return result
            fx_args, fx_kwargs = self.arg(args), self.arg(kwargs)
            return _TracedInt(result, _Ref(make=lambda: self.graph.create_node(
                kind, target, fx_args, fx_kwargs)))
        if method == "size" and isinstance(result, torch.Size):
            node = _Ref(make=lambda: self.graph.create_node(kind, target, self.arg(args)))
            return self._traced_size(result, node)
        if not _has_tensor(result) and target is not operator.setitem:
            return result  # a bool, float, dtype...: the value the dummy input gave
        node = self.graph.create_node(kind, target, self.arg(args), self.arg(kwargs))
        self.register(result, _Ref(node))
        _note_dtype(node, result)
        return result

    def _record_property(self, name: str, tensor, result):
        if isinstance(result, torch.Size):
            ref = _Ref(make=lambda: self.graph.call_function(builtins.getattr,
                                                             (self.arg(tensor), name)))
            return self._traced_size(result, ref)
        if isinstance(result, torch.Tensor):
            self.register(result, _Ref(self.graph.call_function(
                builtins.getattr, (self.arg(tensor), name))))
        return result

    def _traced_size(self, size: torch.Size, ref: _Ref) -> torch.Size:
        return torch.Size(_TracedInt(v, _Ref(make=self._item(ref, i))) for i, v in enumerate(size))

    def record_module(self, module: nn.Module, args: tuple, kwargs: dict, result) -> None:
        name = self.module_names.get(id(module))
        if name is None:  # a module created in forward or held outside the model
            name = f"_capture_module_{sum(a.startswith('_capture_module_') for a in self.attrs)}"
            self.module_names[id(module)] = name
        self.attrs[name] = module
        node = self.graph.call_module(name, self.arg(args), self.arg(kwargs))
        self.register(result, _Ref(node))
        _note_dtype(node, result)


#: Values beyond this magnitude are masks (``finfo.min`` added to attention scores), not data.
MASK_MAGNITUDE = 1e30


def _note_dtype(node: fx.Node, value) -> None:
    """What preparation's rules read of a tensor result: ``node.meta["dtype"]``,
    ``node.meta["ndim"]``, and ``node.meta["mask"]`` when it holds infinities or values beyond
    :data:`MASK_MAGNITUDE`, or is made with such a value (``torch.where(m, 0, finfo.min)``) or
    moved from a mask: a decode step's causal mask is a mask that happens to hide nothing."""
    if isinstance(value, torch.Tensor):
        node.meta["dtype"], node.meta["ndim"] = value.dtype, value.dim()
        if value.is_floating_point() and value.numel():
            node.meta["mask"] = bool(value.detach().abs().amax() >= MASK_MAGNITUDE) or any(
                isinstance(a, float) and abs(a) >= MASK_MAGNITUDE for a in node.args) or (
                is_data_movement(node) and isinstance(node.args[0], fx.Node)
                and node.args[0].meta.get("mask", False))


def _has_tensor(value) -> bool:
    return any(isinstance(v, torch.Tensor) for v in pytree.tree_leaves(value))


class _Mode(TorchFunctionMode):
    def __init__(self, recorder: _Recorder):
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if self.recorder.depth:
            return result
        return self.recorder.record_function(func, args, kwargs, result)
