"""The enabled quantizers of a quantized model, each with the tensor it applies to.

A quantized module (:class:`torchqsim.nn.QuantizationMixin`) holds quantizers in three kinds of
slots: ``input_quantizers[i]`` (its i-th tensor input), ``output_quantizers[i]`` (its i-th
output) and ``param_quantizers[name]`` (its parameter ``name``). A slot holding ``None`` is
disabled; every other slot is an enabled quantizer.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.nn import QuantizedLinear
    >>> from torchqsim.quantization import QuantizeDequantize
    >>> model = nn.Sequential(QuantizedLinear(4, 2))
    >>> model[0].output_quantizers[0] = QuantizeDequantize((), 8, symmetric=False)
    >>> [(s.path, s.kind, s.key) for s in quantizer_slots(model)]
    [('0.output_quantizers.0', 'output', 0)]
"""

import json
from dataclasses import dataclass
from typing import Optional

from torch import nn

from ..nn import QuantizationMixin

__all__ = ["SLOTS_METADATA_KEY", "QuantizerSlot", "quantizer_slots", "record_slots",
           "recorded_slots"]

SLOTS_METADATA_KEY = "torchqsim.quantizer_slots"


@dataclass(frozen=True)
class QuantizerSlot:
    """One enabled quantizer slot.

    Attributes:
        module_name: path of the quantized module in the model ("" for the root).
        kind: "input", "output" or "param".
        key: the input / output index (int), or the parameter name (str).
        quantizer: the quantizer module in the slot.
    """

    module_name: str
    kind: str
    key: object
    quantizer: nn.Module

    @property
    def container(self) -> str:
        """The slot container's attribute name: ``input_quantizers``, ``output_quantizers`` or
        ``param_quantizers``."""
        return f"{self.kind}_quantizers"

    @property
    def path(self) -> str:
        """The quantizer's module path, e.g. ``"conv1.param_quantizers.weight"``."""
        return _join(self.module_name, f"{self.container}.{self.key}")

    def set(self, module: nn.Module, quantizer: Optional[nn.Module]) -> None:
        """Puts ``quantizer`` into this slot of ``module`` (the quantized module)."""
        getattr(module, self.container)[self.key] = quantizer


def _join(prefix: str, name) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def quantizer_slots(model: nn.Module) -> list:
    """The enabled quantizer slots of ``model``, modules in ``named_modules`` order, inside a
    module inputs, then parameters, then outputs.

    Example::

        >>> quantizer_slots(nn.Linear(2, 2))
        []
    """
    slots = []
    for name, module in model.named_modules():
        if not isinstance(module, QuantizationMixin):
            continue
        slots += [QuantizerSlot(name, "input", i, q)
                  for i, q in enumerate(module.input_quantizers) if q is not None]
        slots += [QuantizerSlot(name, "param", p, q)
                  for p, q in module.param_quantizers.items() if q is not None]
        slots += [QuantizerSlot(name, "output", i, q)
                  for i, q in enumerate(module.output_quantizers) if q is not None]
    return slots


def record_slots(proto, slots: list, names: dict) -> None:
    """Records in ``proto``'s metadata (key :data:`SLOTS_METADATA_KEY`) the activation tensor of
    each input and output slot the export reached: ``{tensor: [[module, kind, index], ...]}``
    as JSON, `names` being ``{slot index: tensor}``. ``load_encodings`` reads it
    (:func:`recorded_slots`) instead of guessing which module output a tensor is where one ONNX
    op yields several outputs in another order (nn.LSTM's ``h_n`` before its sequence)."""
    table: dict = {}
    for i, slot in enumerate(slots):
        if slot.kind != "param" and i in names:
            table.setdefault(names[i], []).append([slot.module_name, slot.kind, slot.key])
    entry = proto.metadata_props.add()
    entry.key, entry.value = SLOTS_METADATA_KEY, json.dumps(table, sort_keys=True)


def recorded_slots(proto) -> Optional[dict]:
    """``{tensor: [(module, kind, index), ...]}`` recorded by :func:`record_slots` in an ONNX
    ``ModelProto``, or None (a graph another exporter wrote).

    Example::

        >>> import onnx
        >>> proto = onnx.ModelProto()
        >>> record_slots(proto, [QuantizerSlot("fc", "output", 0, nn.Identity())], {0: "y"})
        >>> recorded_slots(proto)
        {'y': [('fc', 'output', 0)]}
    """
    for entry in proto.metadata_props:
        if entry.key == SLOTS_METADATA_KEY:
            return {t: [tuple(s) for s in found] for t, found in json.loads(entry.value).items()}
    return None
