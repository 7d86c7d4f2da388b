"""Getting the graph: torch.fx's symbolic trace, or capture by running the model on a dummy
input; the leaves where either stops; the check that the captured graph reproduces the model."""

import inspect
import math
from typing import Callable, Optional

import torch
import torch.utils._pytree as pytree
from torch import fx, nn

from .._forward import eval_mode, run_model, split_dummy_input
from ..capture import CaptureError, capture, cloned, no_fast_paths, preserved
from .errors import PrepareError, _capture_error, _prepare_error
from .rules import _quantized_class


class _Tracer(fx.Tracer):
    """torch.fx's symbolic tracer (``prepare_model`` without a dummy input): stops at modules
    with a quantized wrapper and at excluded modules; remembers the module where it failed."""

    def __init__(self, is_leaf: Callable[[nn.Module], bool]):
        super().__init__()
        self._is_leaf = is_leaf
        self.failed_module: Optional[tuple[str, type]] = None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return self._is_leaf(m)

    def call_module(self, m, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_module is None:  # the innermost module is the first to see it
                self.failed_module = (self.path_of_module(m), type(m))
            raise


def _check_excludes(modules_to_exclude, module_classes_to_exclude) -> tuple[list, tuple]:
    modules = list(modules_to_exclude or [])
    for i, m in enumerate(modules):
        if not isinstance(m, nn.Module):
            raise TypeError(f"prepare_model: modules_to_exclude[{i}] must be an nn.Module "
                            f"instance (e.g. model.block), got {type(m).__name__}")
    classes = tuple(module_classes_to_exclude or ())
    for i, c in enumerate(classes):
        if not (isinstance(c, type) and issubclass(c, nn.Module)):
            raise TypeError(f"prepare_model: module_classes_to_exclude[{i}] must be an "
                            f"nn.Module subclass, got {c!r}")
    return modules, classes


def _is_leaf(modules: list, classes: tuple) -> Callable[[nn.Module], bool]:
    excluded = {id(m) for m in modules}
    return lambda m: (id(m) in excluded or isinstance(m, classes)
                      or _quantized_class(type(m)) is not None)


def _symbolic_trace(model: nn.Module, is_leaf, concrete_args) -> fx.GraphModule:
    tracer = _Tracer(is_leaf)
    try:
        graph = tracer.trace(model, concrete_args)
    except Exception as exc:
        raise _prepare_error(model, tracer, exc) from exc
    return fx.GraphModule(tracer.root, graph, type(model).__name__)  # takes model.training


def _captured(model: nn.Module, is_leaf, dummy_input, concrete_args,
              caches: bool = False) -> fx.GraphModule:
    if concrete_args:
        args, kwargs = split_dummy_input(dummy_input)
        dummy_input = {**inspect.signature(model.forward).bind_partial(*args).arguments,
                       **kwargs, **concrete_args}
    try:
        with preserved(model):
            return capture(model, cloned(dummy_input), is_leaf, caches)
    except CaptureError as exc:
        raise _capture_error(model, exc) from exc.error


#: How far the prepared graph may be from the capture, in units of the model's own distance from
#: it when run again (where the model does not reproduce itself bit for bit).
_RERUN_SPREAD = 4.0


def _distance(a, b) -> float:
    """The largest |a - b| over the elements where tensors a and b differ (NaN agrees with NaN):
    0 for the same bits, or for two non-tensors of one type (their values are not compared);
    inf for a different type, shape or dtype, a differing non-floating element, or NaN against a
    number."""
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return 0.0 if type(a) is type(b) else math.inf
    if a.shape != b.shape or a.dtype != b.dtype:
        return math.inf
    if torch.equal(a, b):
        return 0.0
    floating = a.is_floating_point()
    agree = (a == b) | (a.isnan() & b.isnan()) if floating else a == b
    if bool(agree.all()):
        return 0.0
    if not floating or bool((a.isnan() != b.isnan()).any()):
        return math.inf
    return float((a.double() - b.double()).abs()[~agree].max())  # (inf against a number: inf)


def _outputs(module: nn.Module, dummy_input, model: nn.Module) -> list:
    """The output leaves of `module` on a copy of `dummy_input`, run as capture runs the model
    (eval mode, no grad, no fast paths), `model`'s buffers put back afterwards."""
    with preserved(model), eval_mode(module), torch.no_grad(), no_fast_paths():
        return pytree.tree_leaves(run_model(module, cloned(dummy_input)))


def _check_reproduces(model: nn.Module, gm: fx.GraphModule, dummy_input,
                      model_input=None) -> None:
    """The prepared graph must give, on the dummy input, the captured output: bit for bit, or,
    given the model's own `model_input` (the same values) and where the model run again on it
    does not reproduce its own capture (kernels whose rounding changes from call to call, with
    thread scheduling or memory placement), within `_RERUN_SPREAD` times the model's own distance
    from it, output by output."""
    expected = pytree.tree_leaves(gm.capture_output)
    del gm.capture_output
    got = _outputs(gm, dummy_input, model)
    off = [_distance(a, b) for a, b in zip(expected, got)]
    if len(expected) == len(got) and not any(off):
        return
    again = [] if model_input is None or len(expected) != len(got) else \
        _outputs(model, model_input, model)
    spread = [_distance(a, b) for a, b in zip(expected, again)]
    if len(again) == len(expected) and all(d <= _RERUN_SPREAD * s for d, s in zip(off, spread)):
        return
    i = next((i for i, d in enumerate(off) if d), min(len(expected), len(got)))
    raise PrepareError(
        f"prepare_model: the captured graph of {type(model).__name__} does not "
        f"reproduce its output {i} on dummy_input. A computation escaped capture: a "
        f"tensor changed in place through an alias, or values computed outside torch "
        f"(numpy, Python floats from .item()) that depend on the input. Exclude the "
        f"module that does it (modules_to_exclude=[...]).")
