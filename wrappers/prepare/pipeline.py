"""`prepare_model`: trace or capture, rewrite, check (package docstring)."""

from typing import Any, Optional

from torch import fx, nn

from ..capture.caches import with_cache_copies, with_cache_trees
from .rewrites import _convert_functionals, _duplicate_reused_modules, _wrap_parameters
from .tracing import _captured, _check_excludes, _check_reproduces, _is_leaf, _symbolic_trace


def prepare_model(model: nn.Module, concrete_args: Optional[dict[str, Any]] = None,
                  modules_to_exclude: Optional[list[nn.Module]] = None,
                  module_classes_to_exclude: Optional[list[type]] = None,
                  dummy_input: Any = None) -> fx.GraphModule:
    """Traces `model` with torch.fx and rewrites it so that QuantSim can quantize every op.

    See the module docstring for what is rewritten. New modules are named after their fx
    nodes (``add``, ``add_1``, ``softmax``, ``truediv``, ``layer_norm``; a reused module's
    second call ``relu_1``) and are attributes of the returned GraphModule; the modules of
    `model` are shared with it, not copied (QuantizationSimModel copies the model first), and
    are not modified. Duplicates of a reused module share its parameters and buffers (AIMET
    deep-copies them instead; sharing keeps tied weights tied during training). Functional
    ``dropout`` becomes ``nn.Dropout`` only when its ``training`` flag was the model's mode
    (``training=self.training``), so it then follows ``train()``/``eval()``. ``x += y`` becomes
    an out-of-place ``Add``.

    Args:
        model: the model to prepare.
        concrete_args: fixed values for some forward arguments (torch.fx ``concrete_args``),
            e.g. ``{"attention_mask": None}``.
        modules_to_exclude: module instances kept as leaves: called, not traced into.
        module_classes_to_exclude: module classes whose instances are kept as leaves.
        dummy_input: optional example input (a tensor, a tuple of positional inputs or a dict
            of keyword inputs). Every traced op is then also evaluated on it, so that forward
            code may take ``len()`` of or unpack shape tuples (``(*x.shape[:-1], -1, d)``, as
            HuggingFace models do). Sizes stay symbolic: the graph runs on other shapes too.

    Returns:
        A ``torch.fx.GraphModule`` whose outputs equal `model`'s exactly.

    Raises:
        PrepareError: torch.fx cannot trace the model (the message names the code and how to
            exclude the submodule).
        TypeError: `model` is not an nn.Module, or a bad exclude entry.

    Example::

        >>> import math, torch
        >>> from torch import nn
        >>> class Attention(nn.Module):
        ...     def forward(self, q, k):
        ...         return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
        >>> gm = prepare_model(Attention())
        >>> [type(m).__name__ for m in gm.children()]
        ['MatMul', 'Divide', 'Softmax']
        >>> q, k = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
        >>> torch.equal(gm(q, k), Attention()(q, k))
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"prepare_model: model must be an nn.Module, got {type(model).__name__}")
    is_leaf = _is_leaf(*_check_excludes(modules_to_exclude, module_classes_to_exclude))
    if dummy_input is None:
        return _rewritten(model, _symbolic_trace(model, is_leaf, concrete_args), None)
    return _rewritten(model, _captured(model, is_leaf, dummy_input, concrete_args), dummy_input,
                      None if concrete_args else dummy_input)


def prepare_captured(model: nn.Module, dummy_input, caches: bool = False) -> fx.GraphModule:
    """:func:`prepare_model` by capture on `dummy_input` (no excludes, no concrete args); with
    `caches`, transformers ``DynamicCache`` inputs and outputs are tuples of keys and values in
    the graph (:mod:`torchqsim.capture.caches`). Used by the sim's ``generate``
    (:mod:`torchqsim.quantsim.generation`).

    Example: see :func:`prepare_model`.
    """
    check_input = with_cache_trees(dummy_input) if caches else dummy_input
    copied = with_cache_copies(dummy_input)  # the forward updates the copies
    gm = _captured(model, _is_leaf([], ()), copied, None, caches)
    return _rewritten(model, gm, check_input)


def _rewritten(model: nn.Module, gm: fx.GraphModule, check_input,
               model_input=None) -> fx.GraphModule:
    """`gm` rewritten (reused modules duplicated, functionals converted, parameters wrapped)
    and, when captured, checked against the capture's output on `check_input` (`model_input`:
    the same input as the model takes it, for a rerun of the model where the graph differs; see
    :func:`~.tracing._check_reproduces`)."""
    _duplicate_reused_modules(gm)
    _convert_functionals(gm, model, traced_training=model.training if check_input is None
                         else False)
    _wrap_parameters(gm)
    gm.graph.lint()
    gm.recompile()
    if check_input is not None:
        _check_reproduces(model, gm, check_input, model_input)
    return gm
