"""The graph rewrites of preparation: reused modules duplicated, functionals converted to
modules, parameters used by functions read through a ``Parameter`` module."""

import copy

import torch
from torch import fx, nn

from ..graph import node_args, reads_metadata, tensor_nodes
from .rule_table import _conversion
from .rules import Cast, _Call, _functional_modules


def _free_name(gm: nn.Module, base: str) -> str:
    name, n = base, 0
    while hasattr(gm, name):
        n += 1
        name = f"{base}_{n}"
    return name


def _duplicate_reused_modules(gm: fx.GraphModule) -> None:
    """Gives every call after the first of a module its own copy, named ``module_<fx node>``
    (e.g. ``module_relu_1``, as AIMET's model preparer names it).

    The copies share the original's parameters and buffers (tied, as in the original model),
    so training updates one set of weights while each call has its own quantizers.
    """
    seen = set()
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        if node.target not in seen:
            seen.add(node.target)
            continue
        original = gm.get_submodule(node.target)
        memo = {id(t): t for t in (*original.parameters(), *original.buffers())}
        name = _free_name(gm, "module_" + node.name)
        gm.add_module(name, copy.deepcopy(original, memo))
        node.target = name


def _input_dependent(gm: fx.GraphModule, tensors: set) -> set:
    """The nodes whose floating values depend on the model's inputs' values. The rest (masks
    and position tables made from shapes, integer and boolean tensors, functions of parameters)
    are constants: exported graphs fold them, so they stay functions and get no quantizer."""
    dependent: set = set()
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "call_module"):
            dependent.add(node)
        elif node in tensors and node.meta.get("dtype", torch.float32).is_floating_point \
                and any(a in dependent for a in node_args(node)):
            dependent.add(node)
    return dependent


def _convert_functionals(gm: fx.GraphModule, model: nn.Module,
                         traced_training: bool) -> None:
    tensors = tensor_nodes(gm)
    dependent = _input_dependent(gm, tensors)
    for node in list(gm.graph.nodes):
        if node not in dependent or node.meta.get("kv_cache"):
            continue  # a KV cache append stays torch.cat: its inputs are quantized already
        built = _conversion(node, _Call({}, tensors, gm, traced_training))
        if built is None:
            continue
        module, args, kwargs = built
        name = _free_name(gm, "module_" + node.name)  # AIMET's model preparer: module_add, ...
        gm.add_module(name, module.train(model.training))
        with gm.graph.inserting_before(node):
            args = tuple(_cast(gm, a, tensors) if isinstance(a, Cast) else a for a in args)
            new = gm.graph.call_module(name, args, kwargs)
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        tensors.add(new)
    for node in list(gm.graph.nodes):
        # parameters absorbed into nn.LayerNorm / nn.Linear: their get_attr nodes are unused now
        if node.op == "get_attr" and not node.users:
            gm.graph.erase_node(node)
            _drop_attribute(gm, model, node.target)


def _cast(gm: fx.GraphModule, cast: Cast, tensors: set) -> fx.Node:
    """The ``cast.node.to(cast.dtype)`` node a rule asked for (inserted at the graph's
    insertion point)."""
    node = gm.graph.call_method("to", (cast.node, cast.dtype))
    node.meta = {**cast.node.meta, "dtype": cast.dtype}
    tensors.add(node)
    return node


def _wrap_parameters(gm: fx.GraphModule) -> None:
    """Every parameter still read by a ``get_attr`` node (used by a function, not by its module)
    is read through a :class:`~torchqsim.nn.functional_modules.Parameter` module instead, so
    that it gets a parameter quantizer. A parameter read only for its metadata
    (``weight.shape[0]``, ``weight.dtype``) is not: its values never reach the output."""
    for node in list(gm.graph.nodes):
        if node.op != "get_attr" or not node.users or all(map(reads_metadata, node.users)):
            continue
        owner, _, field = node.target.rpartition(".")
        param = gm.get_submodule(owner)._parameters.get(field)
        if param is None or any(_is_inplace_user(u, node) for u in node.users):
            continue
        name = _free_name(gm, node.target.replace(".", "_"))
        gm.add_module(name, _functional_modules().Parameter(param))
        with gm.graph.inserting_before(node):
            new = gm.graph.call_module(name, (), {})
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)


def _is_inplace_user(user: fx.Node, node: fx.Node) -> bool:
    """`user` writes into `node`'s value (``param.add_(...)``, ``param[i] = ...``)."""
    name = user.target if user.op == "call_method" else getattr(user.target, "__name__", "")
    return bool(user.args) and user.args[0] is node and isinstance(name, str) and (
        (name.endswith("_") and not name.endswith("__")) or name == "setitem")


def _drop_attribute(gm: fx.GraphModule, model: nn.Module, target: str) -> None:
    """Removes `target` from `gm` if no node uses it and it is not held by one of `model`'s
    modules (GraphModule puts a traced-through module's attributes in a new holder module)."""
    prefix, _, field = target.rpartition(".")
    owner = gm.get_submodule(prefix)
    if any(n.op == "get_attr" and n.target == target for n in gm.graph.nodes):
        return
    if owner is gm or owner is not model.get_submodule(prefix):
        delattr(owner, field)
