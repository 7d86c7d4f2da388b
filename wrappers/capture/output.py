"""The end of a capture: the graph's output node (its structure kept: ``ModelOutput``,
dataclasses), the code generator that rebuilds it, and dead code removal."""

import dataclasses
import operator
import warnings
from typing import Any, Optional

import torch
import torch.utils._pytree as pytree
from torch import fx

from .caches import mark_cache_updates, with_cache_trees
from .recorder import _LITERALS, _Recorder
from .traced_int import _TracedInt, shape_guard


class _OutputCodeGen(fx.graph._PyTreeCodeGen):
    """Plain ``forward(self, a, b)`` arguments; the output is rebuilt from its pytree spec
    (a ``ModelOutput`` or dataclass, which fx cannot write as a literal)."""

    def gen_fn_def(self, free_vars, maybe_return_annotation, *, expanded_def=False):
        return fx.graph.CodeGen.gen_fn_def(self, free_vars, maybe_return_annotation,
                                           expanded_def=expanded_def)

    def process_inputs(self, *inputs):
        return list(inputs)


def _output(recorder: _Recorder, result, caches: bool = False) \
        -> tuple[Any, Optional[pytree.TreeSpec]]:
    """Writes the output node. Returns the output as the graph gives it (objects that are no
    pytree, such as a ``DynamicCache``, become None: the graph cannot rebuild them, and
    returning the captured one would return stale tensors; with `caches`, a cache becomes its
    tuple of keys and values, :mod:`.caches`) and the spec to rebuild the output when fx
    cannot write it."""
    mark_cache_updates(recorder.refs, result)
    if caches:
        result = with_cache_trees(result)
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
    if any(isinstance(v, _TracedInt) for v in leaves):  # a cache's lengths: plain ints out
        result = pytree.tree_unflatten([int(v) if isinstance(v, _TracedInt) else v
                                        for v in leaves], spec)
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
