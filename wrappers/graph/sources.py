"""Where each input of an op comes from (:class:`_SourceFinder`, looking through data movement)
and how many outputs an op has."""

import operator

import torch
from torch import fx, nn

from .nodes import CONSTANT, MODEL_INPUT, UNQUANTIZED_OP, InputSource, OpNode, Producer
from .tensors import is_data_movement, node_args

# Modules known to return a tuple, so that an integer `getitem` on their result picks an output.
_TUPLE_OUTPUT_MODULES = (nn.MultiheadAttention, nn.RNNBase)


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


def _lstm_state(node: fx.Node, ops: dict) -> "Producer | None":
    """A quantized LSTM's ``h_n`` or ``c_n`` (``getitem(getitem(lstm, 1), k)``): its output
    slot ``1 + k`` (torchqsim/nn/recurrent.py), or None for any other node."""
    inner = node.args[0] if node.target is operator.getitem else None
    if not (isinstance(inner, fx.Node) and inner.target is operator.getitem and
            inner.args[0] in ops and inner.args[1] == 1 and isinstance(node.args[1], int)):
        return None
    op = ops[inner.args[0]]
    quantizers = getattr(op.module, "output_quantizers", ())
    return Producer(op, 1 + node.args[1]) if len(quantizers) == 3 and \
        isinstance(op.module, nn.LSTM) and hasattr(type(op.module), "slot_outputs") else None


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
        state = _lstm_state(node, self._ops)
        if state is not None:
            return state
        if node.target is operator.getitem and isinstance(first, fx.Node) \
                and first in self._ops and _returns_tuple(self._ops[first]) \
                and isinstance(node.args[1], int):
            return Producer(self._ops[first], node.args[1])
        if is_data_movement(node):
            return self.find(first)
        if node.meta.get("kv_cache"):  # a KV cache append: the cache holds what is appended
            return self.find(first[-1])
        inputs = [self.find(a) for a in node_args(node) if a in self._tensors]
        return CONSTANT if all(s == CONSTANT for s in inputs) else UNQUANTIZED_OP

    def placeholder(self, value: fx.Node) -> fx.Node:
        while value.op != "placeholder":
            value = value.args[0]
        return value
