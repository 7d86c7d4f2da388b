"""The module graph of a prepared model: which module produces each input of which module.

`prepare_model` turns a model into a ``torch.fx.GraphModule`` whose quantizable computations
are all module calls. :class:`ModuleGraph` reads that graph and answers the questions the
quantization config asks (reference aimet.md §1.6, §1.8):

- which op, and which of its outputs, feeds input slot ``i`` of an op (or is it a model
  input, or a constant);
- who consumes each output of an op, and is that output a model output;
- which sequential chains of ops match a supergroup ``op_list``.

Data-movement ops (``view``, ``reshape``, ``permute``, ``getitem``, ``split``, ``to`` ...) do not
change values, so the graph looks through them: in ``y = conv(x).flatten(1); fc(y)`` the
producer of ``fc``'s input is ``conv``. Compute functions that preparation could not turn into
modules are listed in :attr:`ModuleGraph.unquantized_ops`.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.prepare import prepare_model
    >>> from torchqsim.graph import ModuleGraph
    >>> gm = prepare_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten()))
    >>> g = ModuleGraph.from_graph_module(gm)
    >>> [op.name for op in g.ops]
    ['0', '1', '2']
    >>> g.ops[1].inputs
    [Producer(op='0', output_index=0)]
    >>> g.ops[0].inputs, g.ops[2].is_model_output
    (['model_input'], [True])
"""

import builtins
import operator
from dataclasses import dataclass, field
from typing import Callable, Union

import torch
import torch.nn.functional as F
from torch import fx, nn

__all__ = ["ModuleGraph", "OpNode", "Producer", "MODEL_INPUT", "CONSTANT", "UNQUANTIZED_OP",
           "tensor_nodes", "is_data_movement"]

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
# Modules known to return a tuple, so that an integer `getitem` on their result picks an output.
_TUPLE_OUTPUT_MODULES = (nn.MultiheadAttention, nn.RNNBase)

#: Values of :attr:`OpNode.inputs` that are not a :class:`Producer`.
MODEL_INPUT = "model_input"
CONSTANT = "constant"
UNQUANTIZED_OP = "unquantized_op"


def _node_args(node: fx.Node) -> list[fx.Node]:
    """Every fx node among `node`'s args and kwargs, nested containers included."""
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


def _gives_non_tensor(node: fx.Node) -> bool:
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
            if from_torch or any(a in tensors for a in _node_args(node)):
                tensors.add(node)
    return tensors


def _attribute(gm: nn.Module, target: str):
    value = gm
    for part in target.split("."):
        value = getattr(value, part)
    return value


@dataclass(eq=False)
class OpNode:
    """One module call of the prepared model.

    Attributes:
        name: the called module's path in the GraphModule (``"layer1.0.conv1"``, ``"module_add_1"``).
        module: the called module.
        node: the fx ``call_module`` node.
        inputs: one entry per positional argument of the call: a :class:`Producer` (an op's
            output), ``"model_input"`` (a model input, possibly through data movement),
            ``"constant"`` (a parameter/buffer, a Python number, a shape, or a tensor made from
            constants only) or ``"unquantized_op"`` (a compute function left as a function).
        tensor_inputs: per positional argument, whether it is a tensor (False for Python
            numbers and shapes: such slots are never quantized).
        consumers: per output, the ``(op, input_index)`` pairs that read it, in execution order.
        is_model_output: per output, whether it is (part of) the model's output.

    Example::

        >>> import torch
        >>> from torch import nn
        >>> from torchqsim.prepare import prepare_model
        >>> g = ModuleGraph.from_graph_module(prepare_model(nn.Sequential(nn.Linear(2, 2))))
        >>> op = g.ops[0]
        >>> op.name, op.inputs, op.tensor_inputs, op.consumers, op.is_model_output
        ('0', ['model_input'], [True], [[]], [True])
    """

    name: str
    module: nn.Module
    node: fx.Node
    inputs: list = field(default_factory=list)
    tensor_inputs: list = field(default_factory=list)
    consumers: list = field(default_factory=list)
    is_model_output: list = field(default_factory=list)

    def __repr__(self) -> str:
        return f"OpNode({self.name!r}, {type(self.module).__name__})"


@dataclass(frozen=True)
class Producer:
    """Output `output_index` of op `op` (an :class:`OpNode`).

    Example::

        >>> from torch import nn
        >>> from torchqsim.prepare import prepare_model
        >>> g = ModuleGraph.from_graph_module(prepare_model(nn.Sequential(nn.ReLU(), nn.Tanh())))
        >>> producer = g.ops[1].inputs[0]
        >>> producer, producer.op is g.ops[0]
        (Producer(op='0', output_index=0), True)
    """

    op: OpNode
    output_index: int

    def __repr__(self) -> str:
        return f"Producer(op={self.op.name!r}, output_index={self.output_index})"


InputSource = Union[Producer, str]


class ModuleGraph:
    """The module-level dataflow graph of a GraphModule (see the module docstring).

    Attributes:
        ops: the module calls in execution order (:class:`OpNode`).
        model_inputs: model input name -> the ``(op, input_index)`` pairs it feeds.
        unquantized_ops: fx node name -> reason, for the nodes that compute on tensors but
            are not module calls (preparation could not convert them; their outputs get no
            quantizer). Iterating gives the names.

    Example::

        >>> import torch
        >>> from torch import nn
        >>> from torchqsim.prepare import prepare_model
        >>> class M(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = nn.Linear(4, 4)
        ...     def forward(self, x):
        ...         return torch.cumsum(self.fc(x), 0) + x
        >>> g = ModuleGraph.from_graph_module(prepare_model(M()))
        >>> [op.name for op in g.ops], g.unquantized_ops
        (['fc', 'module_add'], {'cumsum': 'torch.cumsum has no quantized module'})
        >>> g.op("module_add").inputs, g.model_inputs["x"]
        (['unquantized_op', 'model_input'], [(OpNode('fc', Linear), 0), (OpNode('module_add', Add), 1)])
    """

    def __init__(self, ops: list[OpNode], model_inputs: dict[str, list[tuple[OpNode, int]]],
                 unquantized_ops: dict[str, str]):
        self.ops = ops
        self.model_inputs = model_inputs
        self.unquantized_ops = unquantized_ops
        self._by_name = {op.name: op for op in ops}

    def op(self, name: str) -> OpNode:
        """The op that calls the module at path `name`.

        Raises:
            KeyError: no op calls a module of that name (the message lists the ops).

        Example::

            >>> from torch import nn
            >>> from torchqsim.prepare import prepare_model
            >>> ModuleGraph.from_graph_module(prepare_model(nn.Sequential(nn.ReLU()))).op("0")
            OpNode('0', ReLU)
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"ModuleGraph.op: no op named {name!r}; ops: "
                           f"{sorted(self._by_name)}") from None

    @classmethod
    def from_graph_module(cls, gm: fx.GraphModule) -> "ModuleGraph":
        """Builds the graph of `gm` (usually the result of `prepare_model`).

        A module called more than once gets one op per call, all with the same name; prepare
        the model first so that every call has its own module.

        Example::

            >>> from torch import nn
            >>> from torchqsim.prepare import prepare_model
            >>> g = ModuleGraph.from_graph_module(prepare_model(nn.Sequential(nn.ReLU())))
            >>> len(g.ops)
            1
        """
        if not isinstance(gm, fx.GraphModule):
            raise TypeError(f"ModuleGraph.from_graph_module: gm must be a torch.fx.GraphModule "
                            f"(use torchqsim.prepare_model), got {type(gm).__name__}")
        tensors = tensor_nodes(gm)
        ops: dict[fx.Node, OpNode] = {}
        for node in gm.graph.nodes:
            if node.op == "call_module":
                ops[node] = OpNode(node.target, gm.get_submodule(node.target), node)
        source = _SourceFinder(gm, ops, tensors)

        model_inputs: dict[str, list[tuple[OpNode, int]]] = {
            n.name: [] for n in gm.graph.nodes if n.op == "placeholder"}
        for op in ops.values():
            op.consumers = [[] for _ in range(_output_count(op, gm))]
            op.is_model_output = [False] * len(op.consumers)
        for op in ops.values():
            for index, arg in enumerate(op.node.args):
                found = source.find(arg)
                op.inputs.append(found)
                op.tensor_inputs.append(isinstance(arg, fx.Node) and arg in tensors)
                if isinstance(found, Producer):
                    found.op.consumers[found.output_index].append((op, index))
                elif found == MODEL_INPUT:
                    model_inputs[source.placeholder(arg).name].append((op, index))

        for node in gm.graph.nodes:
            if node.op == "output":
                for value in _node_args(node):
                    found = source.find(value)
                    if isinstance(found, Producer):
                        found.op.is_model_output[found.output_index] = True

        unquantized = {n.name: n.meta.get("unquantized_reason", f"{_op_name(n)} has no "
                                          f"quantized module")
                       for n in gm.graph.nodes
                       if n.op in ("call_function", "call_method") and n in tensors
                       and not is_data_movement(n) and source.find(n) == UNQUANTIZED_OP}
        return cls(list(ops.values()), model_inputs, unquantized)

    def find_chains(self, types_of: Callable[[OpNode], tuple[str, ...]], op_list: list[str],
                    skip: Callable[[OpNode], bool] = lambda op: False) -> list[list[OpNode]]:
        """Sequential chains of ops whose types follow `op_list` (AIMET supergroups, §1.8).

        A chain starts at an op with ``op_list[0]`` in ``types_of(op)`` and follows the one
        consumer of each op's outputs: an op whose outputs feed more than one consumer, or the
        model output, ends the chain (a branch is never fused). Ops for which `skip` is true
        (AIMET: BatchNorms that fold into the conv before them) are passed over while matching,
        never matched themselves (``["Conv", "BatchNormalization"]`` does not match a foldable
        BatchNorm), and appear in the chain where they are, so ``["Conv", "Relu"]`` matches
        ``conv -> bn -> relu`` as ``[conv, bn, relu]``. Every match is returned, in execution
        order of its first op; matches may overlap.

        Args:
            types_of: the op type names of an op (e.g. its ONNX types ``("Gemm", "MatMul")``).
            op_list: the type names to match, in order; at least one.
            skip: ops passed over between matched ops.

        Raises:
            ValueError: empty `op_list`.

        Example::

            >>> from torch import nn
            >>> from torchqsim.prepare import prepare_model
            >>> m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
            >>> g = ModuleGraph.from_graph_module(prepare_model(m))
            >>> onnx = {nn.Conv2d: "Conv", nn.BatchNorm2d: "BatchNormalization", nn.ReLU: "Relu"}
            >>> types = lambda op: (onnx[type(op.module)],)
            >>> is_bn = lambda op: isinstance(op.module, nn.BatchNorm2d)
            >>> g.find_chains(types, ["Conv", "Relu"], skip=is_bn)
            [[OpNode('0', Conv2d), OpNode('1', BatchNorm2d), OpNode('2', ReLU)]]
            >>> g.find_chains(types, ["Conv", "Relu"])
            []
        """
        if not op_list:
            raise ValueError("ModuleGraph.find_chains: op_list must name at least one op type")
        chains = []
        for start in self.ops:
            if op_list[0] not in types_of(start) or skip(start):
                continue
            chain, matched = [start], 1
            while matched < len(op_list):
                nxt = _single_consumer(chain[-1])
                if nxt is None:
                    break
                chain.append(nxt)
                if skip(nxt):  # never matched, even by its own type (AIMET's ignored ops)
                    continue
                if op_list[matched] not in types_of(nxt):
                    break
                matched += 1
            if matched == len(op_list):
                chains.append(chain)
        return chains


def _op_name(node: fx.Node) -> str:
    """``torch.cumsum``, ``Tensor.masked_fill``, ``operator.floordiv``: how the code wrote it."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    module = getattr(node.target, "__module__", None) or "torch"
    module = "torch" if module.startswith("torch._") or module == "torch" else module
    return f"{module}.{getattr(node.target, '__name__', node.target)}"


def _single_consumer(op: OpNode) -> "OpNode | None":
    consumers = [c for per_output in op.consumers for c, _ in per_output]
    if len(consumers) != 1 or any(op.is_model_output):
        return None
    return consumers[0]


def _output_count(op: OpNode, gm: fx.GraphModule) -> int:
    """Outputs of `op`: its wrapper's output quantizer slots, or the tuple items the graph reads."""
    count = len(getattr(op.module, "output_quantizers", None) or [None])
    if _returns_tuple(op):
        for user in op.node.users:
            if user.op == "call_function" and user.target is operator.getitem \
                    and isinstance(user.args[1], int):
                count = max(count, user.args[1] + 1)
    return count


def _returns_tuple(op: OpNode) -> bool:
    quantizers = getattr(op.module, "output_quantizers", None)
    return (quantizers is not None and len(quantizers) > 1) or isinstance(
        op.module, _TUPLE_OUTPUT_MODULES)


class _SourceFinder:
    """Resolves an fx argument to where its value comes from, looking through data movement."""

    def __init__(self, gm: fx.GraphModule, ops: dict[fx.Node, OpNode], tensors: set[fx.Node]):
        self._gm = gm
        self._ops = ops
        self._tensors = tensors
        self._memo: dict[fx.Node, InputSource] = {}

    def find(self, value) -> InputSource:
        if not isinstance(value, fx.Node) or value not in self._tensors or not value.meta.get(
                "dtype", torch.float32).is_floating_point:  # integer and boolean tensors
            return CONSTANT
        if value not in self._memo:
            self._memo[value] = self._find(value)
        return self._memo[value]

    def _find(self, node: fx.Node) -> InputSource:
        if node.op == "placeholder":
            return MODEL_INPUT
        if node.op == "get_attr":
            return CONSTANT
        if node.op == "call_module":
            return Producer(self._ops[node], 0)
        first = node.args[0] if node.args else None
        if node.target is operator.getitem and isinstance(first, fx.Node) \
                and first in self._ops and _returns_tuple(self._ops[first]) \
                and isinstance(node.args[1], int):
            return Producer(self._ops[first], node.args[1])
        if is_data_movement(node):
            return self.find(first)
        inputs = [self.find(a) for a in _node_args(node) if a in self._tensors]
        return CONSTANT if all(s == CONSTANT for s in inputs) else UNQUANTIZED_OP

    def placeholder(self, value: fx.Node) -> fx.Node:
        while value.op != "placeholder":
            value = value.args[0]
        return value
