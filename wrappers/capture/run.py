"""`capture`: one eager forward of the model run under the recorder, with
``nn.Module.__call__`` patched so that leaf modules are recorded whole."""

import inspect
from typing import Any, Callable

import torch
from torch import fx, nn

from .._forward import eval_mode, split_dummy_input
from .caches import cache_tree, is_cache, trace_cache_ints
from .context import no_fast_paths
from .output import _OutputCodeGen, _eliminate_dead_code, _output
from .recorder import _Mode, _Recorder, _note_dtype
from .traced_int import _Ref


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


def _register_masks(rec: _Recorder, value, ref: _Ref) -> None:
    """Registers generate's attention mask (a tensor, or a dict of them per layer type) with
    ``node.meta["mask"]`` on the nodes of its floating tensors: additive masks, also at a
    decode step where they hide nothing."""
    if isinstance(value, dict):
        for key, item in value.items():
            _register_masks(rec, item, _Ref(make=rec._item(ref, key)))
    elif isinstance(value, torch.Tensor) and value.is_floating_point():
        def make():
            node = ref.get()
            node.meta["mask"] = True
            return node
        rec.register(value, _Ref(make=make))
    else:
        rec.register(value, ref)


def capture(model: nn.Module, dummy_input, is_leaf: Callable[[nn.Module], bool],
            caches: bool = False) -> fx.GraphModule:
    """The fx graph of one eager forward of `model` on `dummy_input` (module docstring).

    Args:
        model: the model; it runs once, in eval mode, without gradients, and is not changed.
        dummy_input: a tensor, a tuple of positional inputs or a dict of keyword inputs.
        is_leaf: whether a module is recorded as one ``call_module`` node.
        caches: a transformers cache in the inputs is the graph input ``((keys, values, ...),
            ...)`` (one tuple of state per layer, :mod:`.caches`), and one in the output is
            returned in that form; else an output cache is None. A floating
            ``attention_mask`` (or dict of them) is then an additive mask even where it
            hides nothing.

    Returns:
        A ``GraphModule`` sharing `model`'s modules, parameters and buffers; its ``forward``
        takes the inputs the dummy input gave, by position or name.

    Raises:
        CaptureError: the forward raised while capturing (the message names the module).
    """
    args, kwargs = split_dummy_input(dummy_input)
    inputs = _bound_inputs(model, args, kwargs)
    rec = _Recorder(model, is_leaf)
    for name, value in inputs.items():
        node = rec.graph.placeholder(name)
        ref = _Ref(node)
        if caches and is_cache(value):
            rec.register(cache_tree(value), ref)
            trace_cache_ints(value, ref, rec._item)
        elif caches and name == "attention_mask":
            _register_masks(rec, value, ref)
        else:
            rec.register(value, ref)
        _note_dtype(node, value)
    original = nn.Module.__call__
    nn.Module.__call__ = _module_call(rec, original)
    try:
        with eval_mode(model), torch.no_grad(), no_fast_paths(), _Mode(rec):
            result = original(model, *args, **kwargs)
        result, spec = _output(rec, result, caches)
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


CaptureError.__module__ = "torchqsim.capture"  # its public path, shown in tracebacks
