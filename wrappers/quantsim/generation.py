"""``sim.model.generate(...)``: transformers' generation loop on the sim, with a KV cache
(issue 15 item 5; docs/capture.md, "KV caches and generate()").

``sim.model`` is the graph captured on the sim's dummy input: one call signature, one branch of
the model's Python. Generation calls the model with other inputs: the prompt with an empty
``DynamicCache`` (prefill), then one token with a filled cache (decode), and the masking code
of transformers branches on those. So each *kind* of call (which arguments are given, literal
flags such as ``use_cache``, whether the cache is empty, whether one token is fed) gets its own
graph, captured from the floating-point model on the first such call, with the cache as a graph
input and output (``((keys, values), ...)``, :mod:`torchqsim.capture.caches`). Its modules are
then replaced, one for one in execution order, by the modules of ``sim.model`` — the same
quantizers, so calibration, encodings, ``set_precision`` and QAT are one set for every graph.
The ops that differ between the graphs (mask building, the cache append) carry no quantizer.

The cache append stays ``torch.cat`` of the cached entries and the new keys (values), which
are the outputs of the key-after-RoPE (``v_proj``) quantizer: the cache holds exactly what was
quantized, and nothing re-quantizes it at later steps.

Example::

    >>> sim = QuantizationSimModel(llama, {"input_ids": ids, "use_cache": False})  # doctest: +SKIP
    >>> sim.compute_encodings(lambda m, _: m(input_ids=ids), None)  # doctest: +SKIP
    >>> sim.model.generate(ids, max_new_tokens=8, do_sample=False)  # doctest: +SKIP
"""

import copy
import functools
import inspect

import torch
from torch import fx, nn

from ..capture import ShapeGuardError
from ..capture.caches import cache_tree, fill_cache, is_cache
from ..prepare.pipeline import prepare_captured

__all__ = ["GenerationError", "attach_generate"]


class GenerationError(RuntimeError):
    """A graph captured for generation does not match ``sim.model`` op for op."""


def attach_generate(sim_model: fx.GraphModule, source: nn.Module) -> fx.GraphModule:
    """Gives `sim_model` a ``generate`` method when `source` is a transformers model that can
    generate (``GenerationMixin``): the source's ``generate`` on a shallow copy of it whose
    forward runs the sim's graphs (:class:`_Dispatch`). The method lives on the
    GraphModule's own class: copies of ``sim.model`` do not inherit it. Returns `sim_model`.

    Example: see the module docstring.
    """
    if not (callable(getattr(source, "generate", None))
            and hasattr(source, "prepare_inputs_for_generation")):
        return sim_model
    host = copy.copy(source)  # shares source's modules; forward replaced on the copy only
    host.forward = functools.wraps(source.forward)(_Dispatch(sim_model, source))

    @functools.wraps(host.generate)
    def generate(self, *args, **kwargs):
        return host.generate(*args, **kwargs)
    type(sim_model).generate = generate
    return sim_model


class _Dispatch:
    """The forward of the generation host: picks (or captures) the graph for this kind of call,
    runs it with caches as tuples, and writes the returned tuples into the cache object."""

    def __init__(self, sim_model: fx.GraphModule, source: nn.Module):
        self.sim_model, self.source = sim_model, source
        self.signature = inspect.signature(source.forward)
        self.graphs: dict = {}  # kind of call -> graphs captured for it

    def __call__(self, *args, **kwargs):
        inputs = dict(self.signature.bind(*args, **kwargs).arguments)
        for name, param in self.signature.parameters.items():
            if param.kind is inspect.Parameter.VAR_KEYWORD:  # **kwargs spread out
                inputs.update(inputs.pop(name, {}))
        caches = {k: v for k, v in inputs.items() if is_cache(v)}
        trees = {k: cache_tree(v) for k, v in caches.items()}  # refuses unsupported caches
        graph_inputs = {k: trees.get(k, v) for k, v in inputs.items()}
        kind = _kind(graph_inputs)
        found = self.graphs.setdefault(kind, [])
        for gm in found:
            try:
                return self._finish(gm(**graph_inputs), caches)
            except ShapeGuardError:
                continue
        gm = self._capture(inputs)
        found.append(gm)
        return self._finish(gm(**graph_inputs), caches)

    def _capture(self, inputs: dict) -> fx.GraphModule:
        with torch.no_grad():
            gm = prepare_captured(self.source, inputs, caches=True)
        return _sharing_modules(self.sim_model, gm)

    def _finish(self, output, caches: dict):
        """The graph's output with its cache tuple written into the caller's cache object (a
        new ``DynamicCache`` when the model made its own)."""
        tree = output.get("past_key_values") if hasattr(output, "get") else None
        if isinstance(tree, tuple):
            cache = caches.get("past_key_values")
            if cache is None:
                from transformers import DynamicCache
                cache = DynamicCache(config=self.source.config)
            fill_cache(cache, tree)
            output["past_key_values"] = cache
        return output


def _kind(inputs: dict) -> tuple:
    """What decides a graph: the given arguments, literal values, empty or filled caches, and
    whether one token is fed (transformers' masks branch on it)."""
    kind = []
    for name, value in sorted(inputs.items()):
        if isinstance(value, torch.Tensor):
            kind.append((name, "tensor", value.dim() >= 2 and value.shape[-1] == 1))
        elif isinstance(value, tuple):
            kind.append((name, "cache", len(value) > 0))
        elif value is None or isinstance(value, (bool, int, float, str)):
            kind.append((name, value))
        else:
            raise TypeError(f"generate on a sim: argument {name!r} of type "
                            f"{type(value).__name__} is not supported (tensors, caches and "
                            f"literals are)")
    return tuple(kind)


def _sharing_modules(sim_model: fx.GraphModule, gm: fx.GraphModule) -> fx.GraphModule:
    """`gm` with each module call retargeted to the module of `sim_model` called at the same
    position (same class and settings, checked), so that both run the same quantizers."""
    ours = [n for n in sim_model.graph.nodes if n.op == "call_module"]
    theirs = [n for n in gm.graph.nodes if n.op == "call_module"]
    if len(ours) != len(theirs):
        raise GenerationError(f"generate: the graph captured for this call has {len(theirs)} "
                              f"module calls, sim.model has {len(ours)}; build the sim with a "
                              f"dummy input of the same form (e.g. use_cache=False)")
    attrs = {n.target: _attr(gm, n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    for mine, node in zip(ours, theirs):
        module, captured = sim_model.get_submodule(mine.target), gm.get_submodule(node.target)
        if not (isinstance(module, type(captured))
                and type(captured).extra_repr(module) == captured.extra_repr()):
            raise GenerationError(
                f"generate: module call {node.target!r} ({type(captured).__name__}) of the "
                f"graph captured for this call does not match {mine.target!r} "
                f"({type(module).__name__}) of sim.model")
        node.target = mine.target
        attrs[mine.target] = module
    return fx.GraphModule(attrs, gm.graph, type(sim_model).__name__)


def _attr(gm: fx.GraphModule, target: str):
    owner, _, name = target.rpartition(".")
    return getattr(gm.get_submodule(owner) if owner else gm, name)
