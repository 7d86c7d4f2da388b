"""Which parameters of a quantized model no quantizer covers (AIMET leaves none by accident).

A parameter is *quantized* when a quantized module owns it and that module's
``param_quantizers`` has a slot for it (the slot may hold ``None`` because the quantsim config
disables it, e.g. biases: that is the user's choice, not a gap). A parameter whose owner has no
quantized class, or that the model uses outside its owner (a functional call preparation could
not turn into a module), runs in floating point whatever the config says: that is what
:func:`unquantized_parameters` lists, and what ``QuantizationSimModel`` warns about.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.nn import QuantizedLinear
    >>> model = nn.Sequential(QuantizedLinear(2, 2), nn.Module())
    >>> model[1].scale = nn.Parameter(torch.ones(2))   # used by forward outside any module
    >>> unquantized_parameters(model)
    ['1.scale']
"""

from torch import fx, nn

from .graph import reads_metadata
from .nn import QuantizationMixin

__all__ = ["unquantized_parameters"]


def unquantized_parameters(model: nn.Module) -> list[str]:
    """Names of `model`'s parameters that no quantizer slot covers (see the module docstring).

    A tied parameter (one tensor under several names) counts as covered when any of its owners
    covers it. In a ``GraphModule``, a parameter read by a ``get_attr`` node (used by a
    function, not by its module) is not covered, unless that node only feeds reads of its
    shape, dtype or device (its values never reach an output).
    """
    covered, names = set(), {}
    quantizer_params = {id(p) for m in model.modules() if isinstance(m, QuantizationMixin)
                        for slots in (m.input_quantizers, m.output_quantizers, m.param_quantizers)
                        for p in slots.parameters()}
    for module_name, module in model.named_modules(remove_duplicate=False):
        for name, param in module.named_parameters(recurse=False):
            if id(param) in quantizer_params:  # an encoding's range, not a weight
                continue
            names.setdefault(id(param), f"{module_name}.{name}" if module_name else name)
            if isinstance(module, QuantizationMixin) and name in module.param_quantizers:
                covered.add(id(param))
    if isinstance(model, fx.GraphModule):
        for node in model.graph.nodes:
            if node.op == "get_attr" and not all(map(reads_metadata, node.users)):
                owner, _, field = node.target.rpartition(".")
                param = model.get_submodule(owner)._parameters.get(field)
                if param is not None:
                    covered.discard(id(param))
    return [n for i, n in names.items() if i not in covered]
