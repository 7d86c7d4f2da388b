"""Marker nodes that find, in an exported ONNX graph, the tensor each quantizer applies to.

For the FP32 graph, every enabled quantizer slot is replaced (for the duration of the export) by a
:class:`QuantizerMarker`, an identity that the dynamo exporter records as one node of the custom
domain ``torchqsim.export`` (``Marker`` with an ``index`` attribute) through
``torch.onnx.ops.symbolic``. Each parameter a quantizer applies to is replaced by its
quantize-dequantized value, so the graph holds the weights the runtime will see under the
parameter's own name. After the export, :func:`splice_markers` removes the markers, wiring
their consumers to the marker's input, and returns for each index the name of that input: the
ONNX tensor (or initializer) the quantizer applies to. Markers are not ``Identity`` nodes, which
the exporter's optimizer would remove or merge.

Example::

    >>> import torch
    >>> from torchqsim.nn import QuantizedLinear
    >>> from torchqsim.quantization import QuantizeDequantize
    >>> from torchqsim.export.quantizer_slots import quantizer_slots
    >>> model = QuantizedLinear(4, 2)
    >>> model.output_quantizers[0] = QuantizeDequantize((), 8, symmetric=False)
    >>> model.output_quantizers[0].set_range(-1.0, 1.0)
    >>> with markers_in_place(model, quantizer_slots(model)):
    ...     program = torch.onnx.export(model, (torch.randn(3, 4),), dynamo=True, verbose=False)
    >>> splice_markers(program.model_proto)
    {0: 'linear'}
"""

import contextlib

import torch
from onnx import ModelProto
from torch import nn

__all__ = ["MARKER_DOMAIN", "QuantizerMarker", "markers_in_place", "splice_markers"]

MARKER_DOMAIN = "torchqsim.export"


class QuantizerMarker(nn.Module):
    """Identity that is exported as a ``torchqsim.export.Marker`` node carrying ``index``.

    Outside ``torch.onnx.export`` it returns its input unchanged.

    Example::

        >>> QuantizerMarker(3)(torch.ones(2)), QuantizerMarker(3).index
        (tensor([1., 1.]), 3)
    """

    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def forward(self, x):
        if not torch.onnx.is_in_onnx_export():
            return x
        return torch.onnx.ops.symbolic(f"{MARKER_DOMAIN}::Marker", (x,), {"index": self.index},
                                       dtype=x.dtype, shape=x.shape, version=1)


@contextlib.contextmanager
def markers_in_place(model: nn.Module, slots: list):
    """Within the block, slot ``i`` of ``slots`` holds ``QuantizerMarker(i)`` and each quantized
    parameter its quantize-dequantized value (a new ``nn.Parameter`` under the same name).

    Everything is put back on leaving the block, also when it raises.
    """
    modules = dict(model.named_modules())
    markers = [QuantizerMarker(i) for i in range(len(slots))]
    saved_params = []
    try:
        with torch.no_grad():
            for slot in slots:
                if slot.kind == "param":
                    module = modules[slot.module_name]
                    param = module._parameters[slot.key]
                    saved_params.append((module, slot.key, param))
                    value = slot.quantizer(param).detach()
                    if value.untyped_storage().data_ptr() == param.untyped_storage().data_ptr():
                        value = value.clone()  # never export through the model's own storage
                    module._parameters[slot.key] = nn.Parameter(value, requires_grad=False)
        for slot, marker in zip(slots, markers):
            slot.set(modules[slot.module_name], marker)
        yield
    finally:
        for slot in slots:
            slot.set(modules[slot.module_name], slot.quantizer)
        for module, name, param in saved_params:
            module._parameters[name] = param


def splice_markers(model: ModelProto) -> dict:
    """Removes the marker nodes from ``model`` (in place) and returns ``{index: tensor name}``.

    A marker's consumers (and a graph output it produced) are rewired to the marker's input; a
    chain of markers resolves to the tensor before the first one.

    Raises:
        ValueError: two markers carry the same index (the model was not marked by
            :func:`markers_in_place`).
    """
    graph = model.graph
    alias, found = {}, {}
    kept = []
    for node in graph.node:
        if node.domain != MARKER_DOMAIN:
            kept.append(node)
            continue
        index = next(a.i for a in node.attribute if a.name == "index")
        if index in found:
            raise ValueError(f"marker index {index} appears twice in the graph")
        source = alias.get(node.input[0], node.input[0])
        alias[node.output[0]] = source
        found[index] = source
    del graph.node[:]
    graph.node.extend(kept)
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = alias.get(name, name)
    for output in graph.output:
        output.name = alias.get(output.name, output.name)
    infos = [v for v in graph.value_info if v.name not in alias]
    del graph.value_info[:]
    graph.value_info.extend(infos)
    imports = [o for o in model.opset_import if o.domain != MARKER_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(imports)
    return found
