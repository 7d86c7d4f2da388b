"""HuggingFace transformers KV caches in captured graphs (issue 15 item 5, docs/capture.md).

A ``DynamicCache`` is a Python object, not a pytree: a captured graph cannot take or return one.
With ``capture(..., caches=True)`` a cache given as an input is the graph input
``((keys_0, values_0), (keys_1, values_1), ...)`` (one pair per layer; ``()`` for an empty
cache) and a cache in the output is returned in that form; :func:`fill_cache` writes such a
tuple back into a cache object. The ``torch.cat`` that appends new keys or values to a cache
(``DynamicLayer.update``) is marked ``node.meta["kv_cache"]`` in every capture: it stays a
function (no quantizer of its own), and the module graph looks through it to the op whose
output is appended, so the cache holds exactly that op's quantized output.

Only ``DynamicCache`` with full-attention ``DynamicLayer`` layers is supported; other cache
classes (``StaticCache``, ``QuantizedCache``, sliding-window layers, offloading) are refused by
:func:`cache_tree` with their class named.

Example::

    >>> from transformers import DynamicCache  # doctest: +SKIP
    >>> cache = DynamicCache()  # doctest: +SKIP
    >>> _ = cache.update(torch.ones(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), 0)  # doctest: +SKIP
    >>> [tuple(t.shape) for t in cache_tree(cache)[0]]  # doctest: +SKIP
    [(1, 2, 3, 4), (1, 2, 3, 4)]
"""

import copy
import sys

import torch
import torch.utils._pytree as pytree
from torch import fx

__all__ = ["cache_tree", "fill_cache", "is_cache", "with_cache_trees", "with_cache_copies"]


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


def _check_supported(cache) -> None:
    utils = _cache_utils()
    kind = type(cache).__name__
    if type(cache) is not utils.DynamicCache:
        raise TypeError(f"past_key_values: {kind} is not supported by a sim's graphs; use "
                        f"transformers' DynamicCache (the default of generate())")
    if getattr(cache, "offloading", False):
        raise TypeError("past_key_values: a DynamicCache with offloading is not supported")
    for i, layer in enumerate(cache.layers):
        if type(layer) is not utils.DynamicLayer:
            raise TypeError(f"past_key_values: layer {i} is a {type(layer).__name__}; only "
                            f"DynamicLayer (full attention) is supported")


def cache_tree(cache) -> tuple:
    """``((keys, values), ...)`` per layer of a ``DynamicCache``, ``()`` when it is empty.

    Raises:
        TypeError: another cache class or layer class (named in the message).
        ValueError: some layers are filled and others are not.

    Example: see the module docstring.
    """
    _check_supported(cache)
    filled = [layer.is_initialized for layer in cache.layers]
    if not any(filled):
        return ()
    if not all(filled):
        raise ValueError(f"past_key_values: layers {[i for i, f in enumerate(filled) if not f]} "
                         f"of the DynamicCache are empty and the others are not")
    return tuple((layer.keys, layer.values) for layer in cache.layers)


def fill_cache(cache, tree: tuple) -> None:
    """Makes the layers of `cache` (a ``DynamicCache``) hold the tensors of `tree`.

    Example: see the module docstring.
    """
    _check_supported(cache)
    if len(tree) != len(cache.layers):
        raise ValueError(f"past_key_values: the graph returned {len(tree)} layers, the "
                         f"DynamicCache has {len(cache.layers)}")
    for layer, (keys, values) in zip(cache.layers, tree):
        if not layer.is_initialized:
            layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys, values


def with_cache_trees(value):
    """`value` (a pytree of inputs or outputs) with every cache replaced by its
    :func:`cache_tree`.

    Example: see the module docstring.
    """
    return pytree.tree_map(lambda v: cache_tree(v) if is_cache(v) else v, value)


def with_cache_copies(value):
    """`value` with every ``DynamicCache`` replaced by a copy whose layers are new objects
    holding the same tensors: a forward that updates the copy leaves the original alone.

    Example: see the module docstring.
    """
    def copied(cache):
        _check_supported(cache)
        twin = copy.copy(cache)
        twin.layers = [copy.copy(layer) for layer in cache.layers]
        return twin
    return pytree.tree_map(lambda v: copied(v) if is_cache(v) else v, value)


def mark_cache_updates(refs, value) -> None:
    """Marks ``node.meta["kv_cache"]`` on the ``torch.cat`` nodes that produced the tensors held
    by the caches in `value` (`refs`: the recorder's tensor -> ``_Ref`` map).

    Example: see the module docstring.
    """
    for cache in pytree.tree_leaves(value):
        if not is_cache(cache):
            continue
        for layer in getattr(cache, "layers", ()):
            for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
                ref = refs.get(tensor) if isinstance(tensor, torch.Tensor) else None
                node = ref.node if ref is not None else None
                if isinstance(node, fx.Node) and node.target is torch.cat:
                    node.meta["kv_cache"] = True
