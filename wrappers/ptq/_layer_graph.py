"""The layer graph the PTQ tools work on: a torch.fx trace of a float model, with shapes.

`LayerGraph.trace(model, dummy_input)` traces `model` with ``torch.fx.symbolic_trace`` (torch.nn
modules are leaves) and runs the trace once on `dummy_input` (in eval mode, without gradients)
to record every node's output shape. The graph's modules are the model's own objects, so
editing a module's parameters through the graph edits the model. Helpers answer the questions
the tools ask: which module a node calls, whether a node's output has exactly one consumer, and
whether a module is called once.

Also the small helpers every tool shares: `batches` (the inputs of a data loader's batches),
`run_batches`, `execution_order` and `module_names`.
"""

from collections import Counter

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .._forward import eval_mode, run_model, split_dummy_input

__all__ = ["LayerGraph", "TraceError", "batches", "capture_layer", "execution_order",
           "module_names", "run_batches"]


class TraceError(RuntimeError):
    """torch.fx could not trace the model (dynamic control flow, unsupported Python)."""


class LayerGraph:
    """A traced float model with output shapes (see the module docstring).

    Attributes:
        model: the traced model (its submodules are the graph's modules).
        nodes: the fx nodes in execution order.

    Example::

        >>> g = LayerGraph.trace(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), torch.randn(2, 4))
        >>> [g.module_name(n) for n in g.nodes if g.module(n) is not None]
        ['0', '1']
    """

    def __init__(self, model: nn.Module, gm: fx.GraphModule):
        self.model = model
        self.gm = gm
        self.nodes = list(gm.graph.nodes)
        self._calls = Counter(n.target for n in self.nodes if n.op == "call_module")

    @classmethod
    def trace(cls, model: nn.Module, dummy_input, who: str = "trace") -> "LayerGraph":
        """Traces `model` and records output shapes by running it on `dummy_input`.

        Args:
            model: a float ``nn.Module``.
            dummy_input: a tensor, or a tuple or list of positional inputs.
            who: the calling function's name, for error messages.

        Raises:
            TraceError: fx cannot trace `model` (the message carries fx's error).
            TypeError: `model` is no module, or `dummy_input` is a dict (keyword inputs).
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"{who}: model must be an nn.Module, got {type(model).__name__}")
        args, kwargs = split_dummy_input(dummy_input)
        if kwargs:
            raise TypeError(f"{who}: dummy_input must be a tensor or a tuple of positional "
                            f"inputs; a dict of keyword inputs ({sorted(kwargs)}) is not "
                            f"supported here")
        try:
            gm = fx.symbolic_trace(model)
        except Exception as e:  # fx raises many types; all mean "not traceable"
            raise TraceError(f"{who}: torch.fx cannot trace {type(model).__name__}: "
                             f"{type(e).__name__}: {e}") from e
        with eval_mode(gm), torch.no_grad():  # the shape pass must not update BN statistics
            ShapeProp(gm).propagate(*args)
        return cls(model, gm)

    def module(self, node: fx.Node) -> nn.Module | None:
        """The module a ``call_module`` node calls, else None."""
        return self.gm.get_submodule(node.target) if node.op == "call_module" else None

    @staticmethod
    def module_name(node: fx.Node) -> str:
        """The module path of a ``call_module`` node."""
        return str(node.target)

    def called_once(self, node: fx.Node) -> bool:
        """Whether the module `node` calls is called by no other node (so editing it is local)."""
        return node.op == "call_module" and self._calls[node.target] == 1

    @staticmethod
    def sole_user(node: fx.Node) -> fx.Node | None:
        """The only node consuming `node`'s output (used once, as the first argument), or None."""
        users = list(node.users)
        if len(users) != 1:
            return None
        user = users[0]
        uses = list(user.args) + list(user.kwargs.values())
        if not uses or uses[0] is not node or sum(a is node for a in uses) != 1:
            return None
        return user

    @staticmethod
    def shape(node: fx.Node) -> torch.Size | None:
        """The output shape recorded for `node` (None for non-tensor outputs)."""
        meta = node.meta.get("tensor_meta")
        return getattr(meta, "shape", None)


def batches(data_loader, num_batches: int | None, who: str):
    """The model inputs of the first `num_batches` batches of `data_loader`.

    A batch is a tensor (the input), or a tuple/list whose first element is the input (AIMET's
    convention: ``(inputs, labels)``).

    Raises:
        ValueError: `num_batches` is not a positive integer, or the loader yields no batch.
        TypeError: a batch is neither a tensor nor a tuple/list starting with one.
    """
    if num_batches is not None and (not isinstance(num_batches, int) or num_batches < 1):
        raise ValueError(f"{who}: num_batches must be a positive integer, got {num_batches!r}")
    count = 0
    for batch in data_loader:
        if num_batches is not None and count == num_batches:
            break
        if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
            batch = batch[0]
        if not isinstance(batch, torch.Tensor):
            raise TypeError(f"{who}: data_loader batch {count} is a {type(batch).__name__}; "
                            f"expected a tensor or a tuple/list whose first element is the input")
        count += 1
        yield batch
    if count == 0:
        raise ValueError(f"{who}: data_loader yielded no batch")


def run_batches(model: nn.Module, data_loader, num_batches: int | None, who: str) -> None:
    """Runs `model` without gradients on the inputs of the first `num_batches` batches of
    `data_loader` (see :func:`batches`).

    Example::

        >>> seen = []
        >>> run_batches(lambda x: seen.append(x.shape[0]), [torch.ones(2, 1)] * 3, 2, "f")
        >>> seen
        [2, 2]
    """
    with torch.no_grad():
        for x in batches(data_loader, num_batches, who):
            run_model(model, x)


def capture_layer(model: nn.Module, layer: nn.Module, data_loader, num_batches, who: str,
                  output: bool):
    """Inputs (or outputs) of `layer` when `model` runs the first `num_batches` batches (all for
    None), concatenated along the batch axis, and the length of the first batch's.

    Example::

        >>> m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> x, n = capture_layer(m, m[1], [torch.ones(4, 2)] * 2, None, "f", output=False)
        >>> tuple(x.shape), n
        ((8, 3), 4)
    """
    seen = []
    hook = layer.register_forward_hook(
        lambda m, args, out: seen.append((out if output else args[0]).detach()))
    try:
        run_batches(model, data_loader, num_batches, who)
    finally:
        hook.remove()
    return torch.cat(seen), seen[0].shape[0]


def execution_order(model: nn.Module, inputs, layers: dict) -> list[str]:
    """The names of `layers` (``{name: submodule}``) in the order of their first call when
    `model` runs on `inputs` (layers not called are left out).

    Example::

        >>> m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> execution_order(m, torch.randn(1, 2), {"b": m[1], "a": m[0]})
        ['a', 'b']
    """
    order = []
    hooks = [m.register_forward_pre_hook(lambda m, _, n=name: order.append(n) if n not in order
                                         else None) for name, m in layers.items()]
    try:
        with torch.no_grad():
            run_model(model, inputs)
    finally:
        for h in hooks:
            h.remove()
    return order


def module_names(model: nn.Module, items, arg: str, who: str) -> set[str]:
    """The module paths in `model` of `items` (module paths or module objects).

    Raises:
        ValueError: an item names no submodule, or is a module not inside `model`.

    Example::

        >>> m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> sorted(module_names(m, ["1", m[0]], "modules_to_ignore", "f"))
        ['0', '1']
    """
    paths = {id(mod): name for name, mod in model.named_modules()}
    names = set()
    for item in items:
        if isinstance(item, str):
            try:
                model.get_submodule(item)
            except AttributeError:
                raise ValueError(f"{who}: {arg} names {item!r}, which is not a submodule of "
                                 f"the model") from None
            names.add(item)
        elif isinstance(item, nn.Module) and id(item) in paths:
            names.add(paths[id(item)])
        else:
            raise ValueError(f"{who}: {arg} holds {type(item).__name__} {item!r:.60}, which is "
                             f"neither a module path nor a module of the model")
    return names
