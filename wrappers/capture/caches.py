"""HuggingFace transformers KV caches in captured graphs (issue 15 item 5, docs/capture.md).

A transformers cache is a Python object, not a pytree: a captured graph cannot take or return
one. With ``capture(..., caches=True)`` a cache given as an input is the graph input
``((keys_0, values_0, ...), (keys_1, values_1, ...), ...)``: one tuple per layer of the layer's
state (``_LAYER_STATE``: keys and values, plus the lengths a static or sliding-window layer
keeps; None where an empty layer has none yet), and a cache in the output is returned in that
form; :func:`fill_cache` writes such a tuple back into the cache object. A length that is a
Python int (sliding-window layers) is traced while capturing (:func:`trace_cache_ints`): the
graph computes the window's offsets from the input, and a branch on it is a shape guard.
Static layers write into their tensors in place (``index_copy_``, ``copy_``), which the graph
records; the capture runs on copies of them (:func:`with_cache_copies`).

The ``torch.cat`` that appends new keys or values to a cache (``DynamicLayer.update``, also
behind the slicing of sliding-window layers) is marked ``node.meta["kv_cache"]`` in every
capture: it stays a function (no quantizer of its own), and the module graph looks through it
to the op whose output is appended, so the cache holds exactly that op's quantized output.
Static layers copy the new keys and values in (``index_copy_``): no op of theirs has a
quantizer either.

Supported: ``DynamicCache`` and ``StaticCache`` (exact classes) with full-attention and
sliding-window layers, and ``EncoderDecoderCache`` of two of them (its tree is the pair of
theirs; which cross-attention layers are filled, ``is_updated``, is part of its kind)
(:data:`SUPPORTED`); other classes (``QuantizedCache``, subclasses, offloading, indexed or
linear-attention layers) are refused by :func:`cache_tree` with their class named.

Example::

    >>> from transformers import DynamicCache  # doctest: +SKIP
    >>> cache = DynamicCache()  # doctest: +SKIP
    >>> _ = cache.update(torch.ones(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), 0)  # doctest: +SKIP
    >>> [tuple(t.shape) for t in cache_tree(cache)[0]]  # doctest: +SKIP
    [(1, 2, 3, 4), (1, 2, 3, 4)]
"""

import copy
import operator
import sys

import torch
import torch.utils._pytree as pytree
from torch import fx

from .traced_int import _Ref, _TracedInt

__all__ = ["SUPPORTED", "cache_kind", "cache_tree", "fill_cache", "is_cache",
           "trace_cache_ints", "with_cache_trees", "with_cache_copies"]


def _cache_utils():
    return sys.modules.get("transformers.cache_utils")


def is_cache(value) -> bool:
    """Whether `value` is a transformers ``Cache`` (False when transformers is not loaded).

    Example::

        >>> is_cache(torch.ones(1))
        False
    """
    utils = _cache_utils()
    return utils is not None and isinstance(value, utils.Cache)


#: Cache classes a sim's graphs take, and per layer class the attributes that are the layer's
#: state, in the order of the layer's tuple in the graph input and output.
_CACHES = ("DynamicCache", "StaticCache")
_LAYER_STATE = {
    "DynamicLayer": ("keys", "values"),
    "DynamicSlidingWindowLayer": ("keys", "values", "cumulative_length"),
    "StaticLayer": ("keys", "values", "cumulative_length"),
    "StaticSlidingWindowLayer": ("keys", "values", "cumulative_length", "cumulative_length_int"),
}
_IN_PLACE = ("StaticLayer", "StaticSlidingWindowLayer")  # update their tensors in place
SUPPORTED = (f"{' and '.join(_CACHES)} with layers {', '.join(_LAYER_STATE)} (full-attention "
             f"and sliding-window, no offloading), and EncoderDecoderCache of two of them")


def _parts(cache):
    """The self- and cross-attention caches of an ``EncoderDecoderCache``; None for others."""
    if type(cache) is not getattr(_cache_utils(), "EncoderDecoderCache", None):
        return None
    return cache.self_attention_cache, cache.cross_attention_cache


def _state(layer) -> tuple:
    """The state attributes of `layer` (exact classes only: a subclass may hold more)."""
    utils = _cache_utils()
    for name, attributes in _LAYER_STATE.items():
        if type(layer) is getattr(utils, name):
            return attributes
    raise TypeError(f"past_key_values: cache layer {type(layer).__name__} is not supported by "
                    f"a sim's graphs; supported: {SUPPORTED}")


def _check_supported(cache) -> None:
    if _parts(cache) is not None:
        for part in _parts(cache):
            _check_supported(part)
        return
    utils = _cache_utils()
    kind = type(cache).__name__
    if not any(type(cache) is getattr(utils, name) for name in _CACHES):
        raise TypeError(f"past_key_values: {kind} is not supported by a sim's graphs; "
                        f"supported: {SUPPORTED}")
    if getattr(cache, "offloading", False):
        raise TypeError(f"past_key_values: a {kind} with offloading is not supported")
    for layer in cache.layers:
        _state(layer)


def cache_kind(cache) -> tuple:
    """What of `cache` decides a graph beyond its tensors: its class and, per layer, the layer
    class, whether the layer is filled, and its sizes (a static buffer's length, a sliding
    window's), which the graph holds as numbers.

    Example::

        >>> from transformers import DynamicCache  # doctest: +SKIP
        >>> cache_kind(DynamicCache())  # doctest: +SKIP
        ('DynamicCache', ())
    """
    _check_supported(cache)
    if _parts(cache) is not None:  # and which cross-attention layers hold the encoder's K/V
        return (type(cache).__name__, *map(cache_kind, _parts(cache)),
                tuple(sorted(cache.is_updated.items())))
    return type(cache).__name__, tuple(
        (type(layer).__name__, bool(layer.is_initialized), getattr(layer, "max_cache_len", None),
         getattr(layer, "sliding_window", None)) for layer in cache.layers)


def cache_tree(cache) -> tuple:
    """One tuple per layer of the layer's state (``_LAYER_STATE``: keys, values, and the
    lengths of the static and sliding-window layers; None where an empty layer has none).

    Raises:
        TypeError: another cache class or layer class (named in the message).

    Example: see the module docstring.
    """
    _check_supported(cache)
    if _parts(cache) is not None:
        return tuple(map(cache_tree, _parts(cache)))
    return tuple(tuple(getattr(layer, name, None) for name in _state(layer))
                 for layer in cache.layers)


def fill_cache(cache, tree: tuple) -> None:
    """Makes the layers of `cache` hold the state of `tree` (as :func:`cache_tree` gives it),
    adding the layers a cache made without a config adds as they are first updated.

    Example: see the module docstring.
    """
    _check_supported(cache)
    if _parts(cache) is not None:
        for part, part_tree in zip(_parts(cache), tree):
            fill_cache(part, part_tree)
        cache.is_updated = {i: bool(layer.is_initialized)
                            for i, layer in enumerate(cache.cross_attention_cache.layers)}
        return
    while len(cache.layers) < len(tree) and cache.layer_class_to_replicate is not None:
        cache.layers.append(cache.layer_class_to_replicate())  # a cache made without config
    if len(tree) != len(cache.layers):
        raise ValueError(f"past_key_values: the graph returned {len(tree)} layers, the "
                         f"{type(cache).__name__} has {len(cache.layers)}")
    for layer, state in zip(cache.layers, tree):
        if not layer.is_initialized:
            layer.lazy_initialization(state[0], state[1])
        for name, value in zip(_state(layer), state):
            setattr(layer, name, value)


def trace_cache_ints(cache, ref, item) -> None:
    """Makes the int state of `cache`'s layers (sliding-window lengths) ints that remember
    their place in the graph input (`ref`: the input's node; `item(ref, i)` makes the node of
    item i): the graph computes with them, and a branch on them is a shape guard.

    Example: see the module docstring.
    """
    if _parts(cache) is not None:
        for i, part in enumerate(_parts(cache)):
            trace_cache_ints(part, _Ref(make=item(ref, i)), item)
        return
    for i, layer in enumerate(cache.layers):
        layer_ref = _Ref(make=item(ref, i))
        for j, name in enumerate(_state(layer)):
            value = getattr(layer, name, None)
            if type(value) is int:
                setattr(layer, name, _TracedInt(value, _Ref(make=_int_item(item, layer_ref, j))))


def _int_item(item, ref, key):
    def make():
        node = item(ref, key)()
        node.meta["int"] = True  # no tensor (torchqsim.graph.tensors.tensor_nodes)
        return node
    return make


def with_cache_trees(value):
    """`value` (a pytree of inputs or outputs) with every cache replaced by its
    :func:`cache_tree`.

    Example: see the module docstring.
    """
    return pytree.tree_map(lambda v: cache_tree(v) if is_cache(v) else v, value)


def with_cache_copies(value):
    """`value` with every cache replaced by a copy whose layers are new objects holding the
    same tensors (copies of them for the static layers, which update them in place): a forward
    that updates the copy leaves the original alone.

    Example: see the module docstring.
    """
    def copied(cache):
        _check_supported(cache)
        twin = copy.copy(cache)
        if _parts(cache) is not None:  # the forward marks is_updated on the copy
            twin.self_attention_cache, twin.cross_attention_cache = map(copied, _parts(cache))
            twin.is_updated = dict(cache.is_updated)
            return twin
        twin.layers = [copy.copy(layer) for layer in cache.layers]
        for layer in twin.layers:
            for name in _state(layer) if type(layer).__name__ in _IN_PLACE else ():
                value = getattr(layer, name, None)
                if isinstance(value, torch.Tensor):
                    setattr(layer, name, value.clone())
        return twin
    return pytree.tree_map(lambda v: copied(v) if is_cache(v) else v, value)


def mark_cache_updates(refs, value) -> None:
    """Marks ``node.meta["kv_cache"]`` on the ``torch.cat`` nodes that appended the tensors held
    by the caches in `value` (`refs`: the recorder's tensor -> ``_Ref`` map), looking back
    through the slicing and in-place copies of the sliding-window and static layers.

    Example: see the module docstring.
    """
    for cache in pytree.tree_leaves(value):
        if not is_cache(cache):
            continue
        for layer in [layer for part in _parts(cache) or (cache,)
                      for layer in getattr(part, "layers", ())]:
            for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
                ref = refs.get(tensor) if isinstance(tensor, torch.Tensor) else None
                _mark_appends(ref.node if ref is not None else None)


_MOVES = (operator.getitem, "copy_", "index_copy_", "roll")  # the cache layers' own ops


def _mark_appends(node) -> None:
    while isinstance(node, fx.Node) and node.target in _MOVES:
        node = node.args[-1] if node.target in ("copy_", "index_copy_") else node.args[0]
    if isinstance(node, fx.Node) and node.target is torch.cat:
        node.meta["kv_cache"] = True
