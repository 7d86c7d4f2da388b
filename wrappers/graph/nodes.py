"""The nodes of a :class:`~torchqsim.graph.ModuleGraph`: one op per module call
(:class:`OpNode`), an op's output feeding another (:class:`Producer`), and the other input
sources (model input, constant, unquantized op)."""

from dataclasses import dataclass, field
from typing import Union

from torch import fx, nn

#: Values of :attr:`OpNode.inputs` that are not a :class:`Producer`.
MODEL_INPUT = "model_input"
CONSTANT = "constant"
UNQUANTIZED_OP = "unquantized_op"


@dataclass(eq=False)
class OpNode:
    """One module call of the prepared model.

    Attributes:
        name: the called module's path in the GraphModule (``"layer1.0.conv1"``, ``"module_add_1"``).
        module: the called module.
        node: the fx ``call_module`` node.
        inputs: one entry per positional argument of the call (per input slot where the module
            arranges its arguments: a recurrent layer's ``h0``, ``c0``): a :class:`Producer` (an op's
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
        >>> from torchqsim.graph import ModuleGraph
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
        >>> from torchqsim.graph import ModuleGraph
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
