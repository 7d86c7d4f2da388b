"""``sim.model.generate(...)``: transformers' generation loop on the sim, with a KV cache
(issue 15 item 5; docs/capture.md, "KV caches and generate()").

``sim.model`` is the graph captured on the sim's dummy input: one call signature, one branch of
the model's Python. Generation calls the model with other inputs: the prompt with an empty
cache (prefill), then one token with a filled cache (decode), and the masking code of
transformers branches on those. So each *kind* of call (which arguments are given, literal
flags such as ``use_cache``, the cache's class and layer classes and which layers are filled,
whether one token is fed) gets its own graph, captured from the floating-point model on the
first such call, with the cache as a graph input and output (``((keys, values, ...), ...)``,
:mod:`torchqsim.capture.caches`: ``DynamicCache`` and ``StaticCache``, full-attention and
sliding-window layers). Its modules are then replaced, one for one in execution order, by the
modules of ``sim.model`` — the same quantizers, so calibration, encodings, ``set_precision``
and QAT are one set for every graph. The ops that differ between the graphs (mask building,
the cache updates) carry no quantizer.

The cache update is ``torch.cat`` (dynamic layers) or ``index_copy_`` (static layers) of the
new keys (values), which are the outputs of the key-after-RoPE (``v_proj``) quantizer, and
slicing or rolling of what is cached (sliding windows): the cache holds exactly what was
quantized, and nothing re-quantizes it at later steps. A static layer's graph writes into the
caller's cache in place; when one of its shape guards fails after such a write (another
branch of a sliding window), the cache is restored from a copy before the next graph runs.

Encoder-decoder models (T5, Whisper): generate's encoder call runs a graph captured from the
encoder under the model's module tree (:class:`_EncoderOf`), the decoder calls take an
``EncoderDecoderCache``; their graphs call a part of sim.model's modules, paired by module
name and in order (:func:`_aligned`), so the cross-attention keys and values are quantized
once, by the projections' quantizers, when the cache is filled. A sim moved to another dtype
after it was built is refused (its graphs hold the dtypes of its capture; build the sim from
the model in that dtype). After a device move the graphs are captured again on the new device.

Example::

    >>> sim = QuantizationSimModel(llama, {"input_ids": ids, "use_cache": False})  # doctest: +SKIP
    >>> sim.compute_encodings(lambda m, _: m(input_ids=ids), None)  # doctest: +SKIP
    >>> sim.model.generate(ids, max_new_tokens=8, do_sample=False)  # doctest: +SKIP
"""

import copy
import functools
import inspect
import operator
from typing import Optional

import torch
import torch.utils._pytree as pytree
from torch import fx, nn

from ..capture import ShapeGuardError
from ..capture.traced_int import shape_guard
from ..capture.caches import SUPPORTED, cache_kind, cache_tree, fill_cache, is_cache
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
    if getattr(source.config, "is_encoder_decoder", False):  # the encoder runs on the sim too
        encoder = source.get_encoder()
        dispatch = _Dispatch(sim_model, source, _EncoderOf(source, encoder))
        dispatch.forward = functools.wraps(encoder.forward)(dispatch)
        host.get_encoder = lambda *args, **kwargs: dispatch

    @functools.wraps(host.generate)
    def generate(self, *args, **kwargs):
        return host.generate(*args, **kwargs)
    type(sim_model).generate = generate
    return sim_model


class _Dispatch:
    """The forward of the generation host: picks (or captures) the graph for this kind of call,
    runs it with caches as tuples, and writes the returned tuples into the cache object."""

    def __init__(self, sim_model: fx.GraphModule, source: nn.Module,
                 captured: Optional[nn.Module] = None):
        self.sim_model, self.source = sim_model, source
        self.captured = source if captured is None else captured  # what the graphs run
        self.partial = getattr(getattr(source, "config", None), "is_encoder_decoder", False)
        self.signature = inspect.signature(self.captured.forward)
        self.graphs: dict = {}  # kind of call -> graphs captured for it
        shared = {id(t) for t in (*sim_model.parameters(), *sim_model.buffers())}
        self.probe = next((t for t in (*source.parameters(), *source.buffers())
                           if id(t) in shared and t.is_floating_point()), None)
        self.placed = _placement(self.probe)

    def _follow_moves(self) -> None:
        """After ``sim.model.to(device)``: the source follows (the tensors it shares with
        sim.model have moved; its own, such as rotary tables, have not) and the graphs captured
        on the old device are dropped. A dtype move is refused: the graphs, sim.model's own too,
        hold the dtypes of the model they were captured from."""
        placed = _placement(self.probe)
        if placed == self.placed:
            return
        if placed[1] != self.placed[1]:
            raise GenerationError(
                f"generate: sim.model was moved from {self.placed[1]} to {placed[1]} after it "
                f"was built; its graphs hold the dtypes of the model they were captured from "
                f"(sim.model's own forward fails too). Build the sim from the model in "
                f"{placed[1]} instead")
        self.source.to(placed[0])
        self.graphs.clear()
        self.placed = placed

    def __call__(self, *args, **kwargs):
        self._follow_moves()
        inputs = dict(self.signature.bind(*args, **kwargs).arguments)
        for name, param in self.signature.parameters.items():
            if param.kind is inspect.Parameter.VAR_KEYWORD:  # **kwargs spread out
                inputs.update(inputs.pop(name, {}))
        caches = {k: v for k, v in inputs.items() if is_cache(v)}
        trees = {k: cache_tree(v) for k, v in caches.items()}  # refuses unsupported caches
        graph_inputs = {k: trees.get(k, v) for k, v in inputs.items()}
        kind = _kind({k: cache_kind(caches[k]) if k in caches else v for k, v in inputs.items()})
        found = self.graphs.setdefault(kind, [])
        for gm in found:
            saved = _saved(trees) if gm.meta.get("writes_before_guard") else None
            try:
                return self._finish(gm(**graph_inputs), caches)
            except ShapeGuardError:  # another branch: the cache as it was, for the next graph
                _restore(trees, saved)
        gm = self._capture(inputs)
        found.append(gm)
        return self._finish(gm(**graph_inputs), caches)

    def _capture(self, inputs: dict) -> fx.GraphModule:
        with torch.no_grad():
            gm = prepare_captured(self.captured, inputs, caches=True)
        gm = _sharing_modules(self.sim_model, gm, self.partial)
        gm.meta["writes_before_guard"] = _writes_before_guard(gm)
        return gm

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


def _placement(tensor) -> tuple:
    return () if tensor is None else (tensor.device, tensor.dtype)


def _kind(inputs: dict) -> tuple:
    """What decides a graph: the given arguments, literal values, the caches' kinds
    (:func:`~torchqsim.capture.caches.cache_kind`), and whether one token is fed
    (transformers' masks branch on it)."""
    return tuple((name, _value_kind(name, value)) for name, value in sorted(inputs.items()))


def _value_kind(name: str, value):
    if isinstance(value, torch.Tensor):
        return "tensor", value.dim() >= 2 and value.shape[-1] == 1
    if isinstance(value, tuple):  # a cache_kind
        return value
    if isinstance(value, dict):  # masks per layer type
        return tuple((key, _value_kind(name, item)) for key, item in sorted(value.items()))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"generate on a sim: argument {name!r} of type {type(value).__name__} is "
                    f"not supported (tensors, dicts of them, caches and literals are)")


def _writes_before_guard(gm: fx.GraphModule) -> bool:
    """Whether a shape guard of `gm` runs after an op that writes into a tensor in place (a
    static cache layer's update): a call that fails that guard has changed the cache."""
    written = False
    for node in gm.graph.nodes:
        written = written or _writes_in_place(node)
        if written and node.target is shape_guard:
            return True
    return False


def _saved(trees: dict):
    """Copies of the tensors of the cache trees, for :func:`_restore`."""
    return [t.clone() for t in pytree.tree_leaves(trees) if isinstance(t, torch.Tensor)]


def _restore(trees: dict, saved) -> None:
    if saved is not None:
        tensors = [t for t in pytree.tree_leaves(trees) if isinstance(t, torch.Tensor)]
        for tensor, copy_ in zip(tensors, saved):
            tensor.copy_(copy_)


def _writes_in_place(node: fx.Node) -> bool:
    name = node.target if isinstance(node.target, str) else ""
    return node.target is operator.setitem or (
        node.op == "call_method" and name.endswith("_") and not name.startswith("_"))


class _EncoderOf(nn.Module):
    """The encoder of an encoder-decoder `model`, run under the model's module tree (shared,
    not copied): a graph captured from it names modules and parameters as sim.model does."""

    def __init__(self, model: nn.Module, encoder: nn.Module):
        super().__init__()
        self._modules, self._parameters, self._buffers = \
            model._modules, model._parameters, model._buffers
        object.__setattr__(self, "encoder_", encoder)

    def forward(self, **kwargs):
        return self.encoder_(**kwargs)


def _sharing_modules(sim_model: fx.GraphModule, gm: fx.GraphModule,
                     partial: bool = False) -> fx.GraphModule:
    """`gm` with each module call retargeted to the module of `sim_model` called at the same
    position (same class and settings, checked), so that both run the same quantizers. With
    `partial` (encoder-decoder models), `gm` may call a part of sim.model's modules in order
    (:func:`_aligned`)."""
    ours = [n for n in sim_model.graph.nodes if n.op == "call_module"]
    theirs = [n for n in gm.graph.nodes if n.op == "call_module"]
    if len(ours) != len(theirs) and not partial:
        raise GenerationError(f"generate: the graph captured for this call has {len(theirs)} "
                              f"module calls, sim.model has {len(ours)}; build the sim with a "
                              f"dummy input of the same form (e.g. use_cache=False)")
    attrs = {n.target: _attr(gm, n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    for mine, node in _aligned(ours, theirs) if partial else zip(ours, theirs):
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


def _aligned(ours: list, theirs: list) -> list:
    """Pairs each module call of `theirs` with one of `ours`, in order: a call of one of the
    model's modules (not a ``module_...`` made from a function) with the call of that name,
    the others in order between them, past the model's modules `theirs` does not call (the
    encoder's while decoding; the cross-attention key and value projections, whose outputs a
    decode step reads from the cache)."""
    index = {n.target: i for i, n in enumerate(ours)}
    pairs, j = [], 0
    for node in theirs:
        if not node.target.startswith("module_"):
            j = index.get(node.target, -1)
        else:
            while j < len(ours) and not ours[j].target.startswith("module_"):
                j += 1
        if not 0 <= j < len(ours) or (pairs and j <= index[pairs[-1][0].target]):
            raise GenerationError(f"generate: module call {node.target!r} of the graph "
                                  f"captured for this call has no match in sim.model's order")
        pairs.append((ours[j], node))
        j += 1
    return pairs


def _attr(gm: fx.GraphModule, target: str):
    owner, _, name = target.rpartition(".")
    return getattr(gm.get_submodule(owner) if owner else gm, name)
