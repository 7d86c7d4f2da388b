"""`prepare_model`: make every quantizable computation of a model a module call (torch.fx).

QuantSim puts quantizers on modules, so a ``torch.nn.functional`` call or a tensor operator in
``forward`` would go unquantized (AIMET model_preparer, reference aimet.md §5.4). Preparation
traces the model with ``torch.fx`` and rewrites the graph:

- functionals and tensor methods become modules: ``torch.nn`` modules where one exists
  (``F.relu`` -> ``nn.ReLU``, ``F.gelu(x, approximate=)`` -> ``nn.GELU``, ``softmax`` ->
  ``nn.Softmax(dim)``, ``F.layer_norm``/``F.linear`` on parameters -> ``nn.LayerNorm``/
  ``nn.Linear`` holding those same parameters, ...), else the float modules of
  :mod:`torchqsim.nn.functional_modules` (``x + y`` -> ``Add``, ``x * 0.5`` -> ``Multiply``
  with 0.5 as its second argument, ``@`` -> ``MatMul``, ``torch.cat`` -> ``Concat``, ...);
  a call is converted only when the module it becomes has a quantized wrapper;
- a module called more than once is duplicated, so each call gets its own quantizers;
- the trace stops at modules that have a quantized wrapper and at excluded modules (leaves).

The prepared model computes exactly what the original computes (``torch.equal`` outputs).

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.prepare import prepare_model
    >>> class Block(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 4)
    ...     def forward(self, x):
    ...         return torch.relu(self.fc(x)) + x
    >>> gm = prepare_model(Block())
    >>> [(name, type(m).__name__) for name, m in gm.named_children()]
    [('fc', 'Linear'), ('module_relu', 'ReLU'), ('module_add', 'Add')]
"""

from .errors import PrepareError
from .pipeline import prepare_model

__all__ = ["prepare_model", "PrepareError"]
