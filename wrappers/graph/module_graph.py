"""`ModuleGraph`: the module-level dataflow graph of a prepared model (package docstring)."""

from typing import Callable

from torch import fx

from .nodes import MODEL_INPUT, UNQUANTIZED_OP, OpNode, Producer
from .sources import _SourceFinder, _output_count
from .tensors import is_data_movement, node_args, tensor_nodes


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
        ops = {node: OpNode(node.target, gm.get_submodule(node.target), node)
               for node in gm.graph.nodes if node.op == "call_module"}
        source = _SourceFinder(gm, ops, tensors)
        model_inputs = _link_inputs(gm, ops, source, tensors)
        _mark_model_outputs(gm, source)
        return cls(list(ops.values()), model_inputs, _unquantized_ops(gm, source, tensors))

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


def _slot_arguments(op: OpNode) -> tuple:
    """The arguments of an op's call, one per input slot: its positional arguments, or what its
    module's ``slot_arguments`` makes of the call (a recurrent layer's ``(h0, c0)``)."""
    arrange = getattr(type(op.module), "slot_arguments", None)
    return op.node.args if arrange is None else arrange(op.node.args, op.node.kwargs)


def _link_inputs(gm: fx.GraphModule, ops: dict[fx.Node, OpNode], source: _SourceFinder,
                 tensors: set[fx.Node]) -> dict[str, list[tuple[OpNode, int]]]:
    """Fills every op's inputs and its producers' consumers; returns model input -> readers."""
    model_inputs: dict[str, list[tuple[OpNode, int]]] = {
        n.name: [] for n in gm.graph.nodes if n.op == "placeholder"}
    for op in ops.values():
        op.consumers = [[] for _ in range(_output_count(op, gm))]
        op.is_model_output = [False] * len(op.consumers)
    for op in ops.values():
        for index, arg in enumerate(_slot_arguments(op)):
            found = source.find(arg)
            op.inputs.append(found)
            op.tensor_inputs.append(isinstance(arg, fx.Node) and arg in tensors)
            if isinstance(found, Producer):
                found.op.consumers[found.output_index].append((op, index))
            elif found == MODEL_INPUT:
                model_inputs[source.placeholder(arg).name].append((op, index))
    return model_inputs


def _mark_model_outputs(gm: fx.GraphModule, source: _SourceFinder) -> None:
    for node in gm.graph.nodes:
        if node.op == "output":
            for value in node_args(node):
                found = source.find(value)
                if isinstance(found, Producer):
                    found.op.is_model_output[found.output_index] = True


def _unquantized_ops(gm: fx.GraphModule, source: _SourceFinder,
                     tensors: set[fx.Node]) -> dict[str, str]:
    """fx node name -> reason, for the compute functions whose values reach no quantizer."""
    return {n.name: n.meta.get("unquantized_reason", f"{_op_name(n)} has no quantized module")
            for n in gm.graph.nodes
            if n.op in ("call_function", "call_method") and n in tensors
            and not is_data_movement(n) and source.find(n) == UNQUANTIZED_OP}
