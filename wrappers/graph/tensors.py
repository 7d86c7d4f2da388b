"""Which fx nodes hold tensors, and which only move data (looked through by the module graph)."""

import builtins
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

# Tensor methods and functions that only move, view or retype data. `size`, `dim` and
# `getattr(x, "shape")` give no tensor at all; the rest pass their first argument's values on.
_DATA_MOVEMENT_METHODS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "t", "flatten",
    "unflatten", "contiguous", "split", "split_with_sizes", "chunk", "unbind", "squeeze",
    "unsqueeze", "expand", "expand_as", "repeat", "narrow", "select", "movedim", "swapaxes",
    "to", "type", "type_as", "float", "half", "bfloat16", "double", "clone", "detach",
    "size", "dim", "numel", "__getitem__",
})
_DATA_MOVEMENT_FUNCTIONS = frozenset({
    operator.getitem, builtins.getattr, torch.flatten, torch.reshape, torch.permute,
    torch.transpose, torch.t, torch.squeeze, torch.unsqueeze, torch.split, torch.chunk,
    torch.unbind, torch.narrow, torch.select, torch.movedim, torch.swapaxes, torch.clone,
    torch.detach, operator.setitem,
})
# Results that are not tensors (shapes, counts, dtypes): never quantized, never "producers".
_NON_TENSOR_METHODS = frozenset({"size", "dim", "numel", "item", "tolist", "__len__"})
_NON_TENSOR_ATTRIBUTES = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad"})

# What a tensor's metadata reads: attributes and methods that give its shape, dtype, device or
# layout, never its values (`reads_metadata`).
_METADATA_ATTRIBUTES = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "layout",
                                  "requires_grad"})
_METADATA_METHODS = frozenset({"size", "dim", "numel", "stride", "is_contiguous",
                               "is_floating_point"})


def node_args(node: fx.Node) -> list[fx.Node]:
    """Every fx node among `node`'s args and kwargs, nested containers included.

    Example::

        >>> import torch
        >>> gm = torch.fx.symbolic_trace(lambda x, y: torch.cat([x, y], dim=1))
        >>> [n.name for n in node_args(list(gm.graph.nodes)[2])]
        ['x', 'y']
    """
    found: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), found.append)
    return found


def is_data_movement(node: fx.Node) -> bool:
    """Whether `node` only moves, views or retypes its first argument's data (or reads its shape).

    Example::

        >>> import torch
        >>> gm = torch.fx.symbolic_trace(lambda x: x.view(-1).exp())
        >>> [is_data_movement(n) for n in gm.graph.nodes if n.op == "call_method"]
        [True, False]
    """
    if node.op == "call_method":
        return node.target in _DATA_MOVEMENT_METHODS
    if node.op == "call_function" and node.target is F.pad:  # zeros are on every grid
        return node.kwargs.get("mode", "constant") == "constant" and \
            node.kwargs.get("value", None) in (None, 0) and len(node.args) <= 2
    return node.op == "call_function" and node.target in _DATA_MOVEMENT_FUNCTIONS


def reads_metadata(user: fx.Node) -> bool:
    """Whether `user` reads only a tensor's metadata (shape, dtype, device, ...), not its values:
    ``x.shape``, ``x.dtype``, ``x.size(0)``, ``x.dim()``, ``x.is_contiguous()`` and the like.
    Preparation and :func:`torchqsim.coverage.unquantized_parameters` use it: a parameter whose
    ``get_attr`` node only feeds such reads never reaches an output, so it needs no quantizer.

    Example::

        >>> import torch
        >>> gm = torch.fx.symbolic_trace(lambda x: x.new_zeros(x.shape[0]) + x.sum(dim=x.dim() - 1))
        >>> x = next(n for n in gm.graph.nodes if n.op == "placeholder")
        >>> sorted((n.name, reads_metadata(n)) for n in x.users)
        [('dim', True), ('getattr_1', True), ('new_zeros', False), ('sum_1', False)]
    """
    if user.op == "call_function" and user.target is builtins.getattr:
        return user.args[1] in _METADATA_ATTRIBUTES
    return user.op == "call_method" and user.target in _METADATA_METHODS

def _gives_non_tensor(node: fx.Node) -> bool:
    if node.meta.get("int"):  # an int read from a graph input (capture's cache lengths)
        return True
    if node.op == "call_method":
        return node.target in _NON_TENSOR_METHODS
    if node.op == "call_function" and node.target is builtins.getattr:
        return node.args[1] in _NON_TENSOR_ATTRIBUTES
    return node.op == "call_function" and node.target is builtins.len


def tensor_nodes(gm: fx.GraphModule) -> set[fx.Node]:
    """The nodes of `gm` whose value is a tensor (or a tuple of tensors), found statically.

    fx records no types, so this follows the data: model inputs, module calls and tensor
    attributes are tensors; shapes, sizes and arithmetic on them are not; any other op gives a
    tensor when one of its arguments is a tensor or when it is a ``torch`` function (factories
    such as ``torch.zeros(n)``).

    Example::

        >>> import torch
        >>> gm = torch.fx.symbolic_trace(lambda x: x * (x.size(-1) ** 0.5))
        >>> sorted(n.name for n in tensor_nodes(gm))
        ['mul', 'x']
    """
    tensors: set[fx.Node] = set()
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "call_module"):
            tensors.add(node)
        elif node.op == "get_attr":
            if isinstance(_attribute(gm, node.target), torch.Tensor):
                tensors.add(node)
        elif node.op in ("call_function", "call_method"):
            if _gives_non_tensor(node):
                continue
            from_torch = node.op == "call_function" and getattr(
                node.target, "__module__", None) in ("torch", "torch.functional",
                                                    "torch.nn.functional")
            if from_torch or any(a in tensors for a in node_args(node)):
                tensors.add(node)
    return tensors


def _attribute(gm: nn.Module, target: str):
    value = gm
    for part in target.split("."):
        value = getattr(value, part)
    return value
