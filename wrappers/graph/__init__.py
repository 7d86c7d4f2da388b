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

from .module_graph import ModuleGraph
from .nodes import CONSTANT, MODEL_INPUT, UNQUANTIZED_OP, OpNode, Producer
from .tensors import is_data_movement, node_args, reads_metadata, tensor_nodes

__all__ = ["ModuleGraph", "OpNode", "Producer", "MODEL_INPUT", "CONSTANT", "UNQUANTIZED_OP",
           "tensor_nodes", "is_data_movement", "node_args", "reads_metadata"]
