"""Graph capture by running the model: every torch call of one eager forward, recorded as fx.

`capture` runs ``model(dummy_input)`` once, in eval mode and without gradients, with a
``TorchFunctionMode`` active and ``nn.Module.__call__`` patched, and writes what happens into a
``torch.fx.Graph`` (design and alternatives: docs/capture.md):

- a call of a *leaf* module (one that has a quantized wrapper, or an excluded one) becomes a
  ``call_module`` node; nothing inside it is recorded;
- every other torch function, tensor method, operator and tensor property that runs, in any
  other module or in plain Python code, becomes a ``call_function``/``call_method`` node whose
  arguments are the nodes that produced its tensor arguments (tensors are followed by
  identity); parameters and buffers become ``get_attr`` nodes; any other tensor the forward
  uses (a cached mask, a tensor made with numpy) becomes a constant attribute;
- sizes read from tensors (``x.shape``, ``x.size(1)``, ``len(x)``) are ints that remember
  where they came from (:class:`_TracedInt`): arithmetic on them is recorded too, so
  ``x.view(b, n, -1)`` stays valid for other batch sizes and sequence lengths;
- Python control flow (``if``, loops, ``**kwargs``, config flags, dataclass outputs) simply
  runs: the graph holds the branch the dummy input took, as ``torch.export`` does. Where the
  branch compared a traced size, the graph checks that comparison again (:func:`shape_guard`)
  and raises :class:`ShapeGuardError` on an input that would branch otherwise. Branches on
  tensor values (``if mask.any()``) and Python numbers read with ``.item()`` are fixed to the
  dummy input's. The output keeps its structure (a ``ModelOutput`` stays a ``ModelOutput``).

Example::

    >>> import torch
    >>> from torch import nn
    >>> class Branchy(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 4)
    ...     def forward(self, x, **kwargs):
    ...         if x.shape[-1] == 4 and kwargs.get("scale"):  # Python control flow
    ...             x = x * kwargs["scale"]
    ...         return {"y": self.fc(x).view(x.shape[0], 2, -1)}
    >>> gm = capture(Branchy(), {"x": torch.ones(3, 4), "scale": 2.0},
    ...              lambda m: isinstance(m, nn.Linear))
    >>> gm(torch.ones(5, 4), 2.0)["y"].shape   # sizes stay symbolic
    torch.Size([5, 2, 2])
    >>> gm(torch.ones(5, 3), 2.0)       # the branch taken depends on this shape: guarded
    Traceback (most recent call last):
    ...
    torchqsim.capture.ShapeGuardError: this input takes another branch than the dummy input ...
"""

import builtins
import contextlib
import dataclasses
import inspect
import operator
import sys
import warnings
from typing import Any, Callable, Optional

import torch
import torch.utils._pytree as pytree
from torch import fx, nn
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

__all__ = ["capture", "CaptureError", "ShapeGuardError", "shape_guard", "cloned", "preserved",
           "MASK_MAGNITUDE", "no_fast_paths"]

# Simple values that fx writes into generated code as literals.
_LITERALS = (bool, int, float, complex, str, type(None), type(Ellipsis), torch.dtype,
             torch.device, torch.memory_format, torch.layout)
# Reflected operators: recorded as the operator with swapped operands (``1 - x``).
_REFLECTED = {"__radd__": operator.add, "__rsub__": operator.sub, "__rmul__": operator.mul,
              "__rtruediv__": operator.truediv, "__rdiv__": operator.truediv,
              "__rpow__": operator.pow, "__rmatmul__": operator.matmul,
              "__rfloordiv__": operator.floordiv, "__rmod__": operator.mod}
_OPERATORS = {"__getitem__": operator.getitem, "__setitem__": operator.setitem}


class _Ref:
    """Where a value comes from: an fx node, made when first needed by `make`."""

    __slots__ = ("node", "make")

    def __init__(self, node: Optional[fx.Node] = None, make: Optional[Callable] = None):
        self.node, self.make = node, make

    def get(self) -> fx.Node:
        if self.node is None:
            self.node = self.make()
        return self.node


class _TracedInt(int):
    """An int read from a tensor's shape that remembers the graph node giving it.

    It is a plain int for everything Python does with it (comparisons, ``range``, slicing,
    dict keys); arithmetic with other ints gives a new traced int, so that sizes passed to
    torch calls are graph values, not the dummy input's numbers.
    """

    _ref: _Ref

    def __new__(cls, value: int, ref: _Ref):
        obj = super().__new__(cls, value)
        obj._ref = ref
        return obj


def _int_operator(op, reflected: bool = False):
    def method(self, other):
        if not isinstance(other, int) or isinstance(other, bool):
            return op(other, int(self)) if reflected else op(int(self), other)
        a, b = (other, self) if reflected else (self, other)
        graph = self._ref.get().graph
        return _TracedInt(op(int(a), int(b)), _Ref(make=lambda: graph.call_function(
            op, (_int_arg(a), _int_arg(b)))))
    return method


class ShapeGuardError(RuntimeError):
    """A captured graph ran on an input that would have taken another Python branch."""


def shape_guard(value: int, op: str, other, expected: bool, where: str) -> None:
    """Raises :class:`ShapeGuardError` unless ``operator.<op>(value, other) == expected``: the
    graph holds
    the branch that the dummy input took at `where` (a graph node, kept by dead code removal).

    Example::

        >>> shape_guard(8, "gt", 4, True, "model.py:3")
        >>> shape_guard(2, "gt", 4, True, "model.py:3")
        Traceback (most recent call last):
        ...
        torchqsim.capture.ShapeGuardError: ...
    """
    if bool(getattr(operator, op)(value, other)) != expected:
        raise ShapeGuardError(
            f"this input takes another branch than the dummy input the model was captured "
            f"with: {where} compared a size ({value} {op} {other} is "
            f"{not expected}, was {expected}). Capture again with an input of this shape "
            f"(QuantizationSimModel / prepare_model with dummy_input=...).")


def _compare(op):
    def method(self, other):
        if not isinstance(other, int) or isinstance(other, bool):
            return op(int(self), other)
        result = op(int(self), int(other))
        frame = sys._getframe(1)
        where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        self._ref.get().graph.call_function(shape_guard, (
            self._ref.get(), op.__name__, _int_arg(other), result, where))
        return result
    return method


def _int_arg(value):
    return value._ref.get() if isinstance(value, _TracedInt) else int(value)


for _name, _op in (("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("floordiv", operator.floordiv), ("mod", operator.mod)):
    setattr(_TracedInt, f"__{_name}__", _int_operator(_op))
    setattr(_TracedInt, f"__r{_name}__", _int_operator(_op, reflected=True))
for _op in (operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne):
    setattr(_TracedInt, f"__{_op.__name__}__", _compare(_op))
_TracedInt.__hash__ = int.__hash__
_TracedInt.__neg__ = lambda self: _TracedInt(-int(self), _Ref(make=lambda: self._ref.get(
    ).graph.call_function(operator.neg, (self._ref.get(),))))


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
    """What preparation's rules read of a tensor result: ``node.meta["dtype"]``, and
    ``node.meta["mask"]`` when it holds infinities or values beyond :data:`MASK_MAGNITUDE`."""
    if isinstance(value, torch.Tensor):
        node.meta["dtype"] = value.dtype
        if value.is_floating_point() and value.numel():
            node.meta["mask"] = bool(value.detach().abs().amax() >= MASK_MAGNITUDE)


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


class _OutputCodeGen(fx.graph._PyTreeCodeGen):
    """Plain ``forward(self, a, b)`` arguments; the output is rebuilt from its pytree spec
    (a ``ModelOutput`` or dataclass, which fx cannot write as a literal)."""

    def gen_fn_def(self, free_vars, maybe_return_annotation, *, expanded_def=False):
        return fx.graph.CodeGen.gen_fn_def(self, free_vars, maybe_return_annotation,
                                           expanded_def=expanded_def)

    def process_inputs(self, *inputs):
        return list(inputs)


def _bound_inputs(model: nn.Module, args: tuple, kwargs: dict) -> dict[str, Any]:
    """forward's parameter name -> value, ``**kwargs`` spread out, as the dummy input gives."""
    signature = inspect.signature(model.forward)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"prepare_model: dummy_input does not match "
                        f"{type(model).__name__}.forward: {e}") from e
    inputs: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            inputs.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            inputs.update({f"{name}_{i}": v for i, v in enumerate(value)})
        else:
            inputs[name] = value
    return inputs


def _module_call(rec: _Recorder, original):
    """``nn.Module.__call__`` while capturing: leaves are recorded whole, others entered."""

    def call(module: nn.Module, *args, **kwargs):
        if rec.depth:
            return original(module, *args, **kwargs)
        if rec.is_leaf(module):
            rec.depth += 1
            try:
                result = original(module, *args, **kwargs)
            finally:
                rec.depth -= 1
            rec.record_module(module, args, kwargs, result)
            return result
        rec.scope.append(rec.module_names.get(id(module), ""))
        result = original(module, *args, **kwargs)
        rec.scope.pop()  # left as it is when forward raises: the error names the module
        return result
    return call


def _output(recorder: _Recorder, result) -> tuple[Any, Optional[pytree.TreeSpec]]:
    """Writes the output node. Returns the output as the graph gives it (objects that are no
    pytree, such as a ``DynamicCache``, become None: the graph cannot rebuild them, and
    returning the captured one would return stale tensors) and the spec to rebuild the output
    when fx cannot write it."""
    _register_dataclasses(result)
    leaves, spec = pytree.tree_flatten(result)
    dropped = [type(v).__name__ for v in leaves
               if not isinstance(v, (torch.Tensor, *_LITERALS))]
    if dropped:
        warnings.warn(f"capture: the model's output holds objects that are not tensors nor a "
                      f"pytree ({', '.join(sorted(set(dropped)))}): the captured graph returns "
                      f"None in their place (for HF caches: pass use_cache=False)", stacklevel=4)
        leaves = [v if isinstance(v, (torch.Tensor, *_LITERALS)) else None for v in leaves]
        result = pytree.tree_unflatten(leaves, spec)
    values = [recorder.arg(v) for v in leaves]
    plain = all(s.type in (tuple, list, dict) for s in _spec_nodes(spec) if s.num_children) \
        and not (spec.type is dict and any(not isinstance(k, str) for k in spec.context))
    if plain:
        recorder.graph.output(pytree.tree_unflatten(values, spec))
        return result, None
    recorder.graph.output(tuple(values))
    return result, spec


def _register_dataclasses(value) -> None:
    """Makes the (plain) dataclasses in an output pytree nodes, so that their tensors are
    outputs of the graph and the dataclass is rebuilt around them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value) not in pytree.SUPPORTED_NODES:
            pytree.register_dataclass(type(value))
        for f in dataclasses.fields(value):
            _register_dataclasses(getattr(value, f.name))
    elif isinstance(value, (tuple, list)):
        for v in value:
            _register_dataclasses(v)
    elif isinstance(value, dict):
        for v in value.values():
            _register_dataclasses(v)


def _spec_nodes(spec: pytree.TreeSpec):
    yield spec
    for child in spec.children():
        yield from _spec_nodes(child)


def _is_inplace(node: fx.Node) -> bool:
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return node.target in (operator.setitem, shape_guard) or "out" in node.kwargs or (
        isinstance(name, str) and name.endswith("_") and not name.endswith("__"))


def _eliminate_dead_code(graph: fx.Graph) -> None:
    """Drops unused values (shapes read and not used, results thrown away); in-place updates,
    module calls and inputs stay."""
    for node in reversed(list(graph.nodes)):
        if not node.users and node.op in ("call_function", "call_method", "get_attr") \
                and not _is_inplace(node):
            graph.erase_node(node)


def capture(model: nn.Module, dummy_input, is_leaf: Callable[[nn.Module], bool]) \
        -> fx.GraphModule:
    """The fx graph of one eager forward of `model` on `dummy_input` (module docstring).

    Args:
        model: the model; it runs once, in eval mode, without gradients, and is not changed.
        dummy_input: a tensor, a tuple of positional inputs or a dict of keyword inputs.
        is_leaf: whether a module is recorded as one ``call_module`` node.

    Returns:
        A ``GraphModule`` sharing `model`'s modules, parameters and buffers; its ``forward``
        takes the inputs the dummy input gave, by position or name.

    Raises:
        CaptureError: the forward raised while capturing (the message names the module).
    """
    from ._forward import eval_mode, split_dummy_input
    args, kwargs = split_dummy_input(dummy_input)
    inputs = _bound_inputs(model, args, kwargs)
    rec = _Recorder(model, is_leaf)
    for name, value in inputs.items():
        node = rec.graph.placeholder(name)
        rec.register(value, _Ref(node))
        _note_dtype(node, value)
    original = nn.Module.__call__
    nn.Module.__call__ = _module_call(rec, original)
    try:
        with eval_mode(model), torch.no_grad(), no_fast_paths(), _Mode(rec):
            result = original(model, *args, **kwargs)
        result, spec = _output(rec, result)
    except Exception as exc:
        raise CaptureError(rec.scope[-1] if rec.scope else "", exc) from exc
    finally:
        nn.Module.__call__ = original
    _eliminate_dead_code(rec.graph)
    gm = fx.GraphModule(rec.attrs, rec.graph, type(model).__name__)
    if spec is not None:
        gm.graph._codegen = _OutputCodeGen(fx.graph._PyTreeInfo(list(inputs), None, spec))
        gm.recompile()
    gm.capture_output = result
    return gm.train(model.training)


class CaptureError(RuntimeError):
    """The model's forward raised while it was captured; `module` is the innermost module
    that was running (its path, "" for the model itself)."""

    def __init__(self, module: str, exc: BaseException):
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.module, self.error = module, exc


def cloned(dummy_input):
    """`dummy_input` with every tensor copied (a forward that writes into its input then
    leaves the caller's tensors alone)."""
    return pytree.tree_map(lambda v: v.detach().clone() if isinstance(v, torch.Tensor) else v,
                           dummy_input)


@contextlib.contextmanager
def no_fast_paths():
    """torch's fused inference paths of ``nn.MultiheadAttention`` and
    ``nn.TransformerEncoderLayer`` off: capture records their math, op by op, and the check
    of the captured graph compares like with like."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


@contextlib.contextmanager
def preserved(model: nn.Module):
    """Within the block forward may update buffers (running statistics, counters); they are
    put back afterwards."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
