"""Folding the weight quantizers of a calibrated sim into the weights (AIMET's
``fold_param_quantizers``): each weight is overwritten by its quantized values once, and its
quantizer then returns it as it is (:meth:`ParamQuantizeDequantize.fold`), so that inference
quantizes no weight and holds no second copy: the eval forward of an in-place sim at the cost
of the cached one, with the memory of the uncached one. Results stay bit for bit those of the
unfolded sim, and ``export`` writes the same encodings and graphs. The floating-point weights
are lost (an in-place sim's model holds the quantized ones); training on after folding quantizes
as usual again, from the quantized weights.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.quantsim import QuantizationSimModel
    >>> _ = torch.manual_seed(0)
    >>> sim = QuantizationSimModel(nn.Sequential(nn.Linear(4, 4)), torch.randn(2, 4),
    ...                            quant_scheme="tf")
    >>> sim.compute_encodings(lambda m, _: m(torch.randn(8, 4)), None)
    >>> _ = sim.model.eval(); x = torch.randn(3, 4)
    >>> with torch.no_grad():
    ...     before = sim.model(x)
    ...     folded = sim.fold_param_quantizers()
    ...     print(folded, torch.equal(sim.model(x), before))
    ['0.weight'] True
"""

from collections import Counter

from ..quantization.param_quantizer import ParamQuantizeDequantize

__all__ = ["fold_param_quantizers"]


def _uses(model) -> Counter:
    """How many of the modules and attributes that `model`'s graph reads hold each parameter
    (by id): a module the graph no longer calls (capture keeps the original modules for their
    names) is no user."""
    counts = Counter()
    for node in model.graph.nodes:
        if node.op == "call_module":
            counts.update(id(p) for p in model.get_submodule(node.target).parameters())
        elif node.op == "get_attr":
            counts[id(model.get_parameter(node.target) if _is_param(model, node.target)
                      else None)] += 1
    return counts


def _is_param(model, target: str) -> bool:
    owner, _, name = target.rpartition(".")
    return name in (model.get_submodule(owner) if owner else model)._parameters


def fold_param_quantizers(sim) -> list[str]:
    """Folds every integer weight quantizer of `sim` into its parameter; returns the
    ``module.param`` names folded. A parameter that several modules use (tied weights: another
    user would see the quantized values) or whose quantized values are not a fixed point of its
    quantizer (a subclass that is not idempotent) is left as it is and keeps quantizing on every
    call.

    Raises:
        RuntimeError: a quantizer has no encoding yet (calibrate first) or `sim` is
            calibrating.
    """
    uses = _uses(sim.model)
    folded = []
    for name, module in sim.named_qmodules():
        for param_name, q in module.param_quantizers.items():
            if not isinstance(q, ParamQuantizeDequantize):
                continue
            if q._calibrating or not q.is_initialized():
                raise RuntimeError(f"fold_param_quantizers: {name}.param_quantizers.{param_name} "
                                   f"has no encoding yet: call compute_encodings first")
            param = getattr(module, param_name)
            if uses[id(param)] == 1 and q.fold(param):
                folded.append(f"{name}.{param_name}" if name else param_name)
    return folded
