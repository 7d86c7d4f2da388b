"""Exporting a model that lives on a GPU: the export runs on the host.

``torch.onnx.export`` traces the model; the marker nodes that name each quantizer's tensor
(:mod:`.markers`) come from ``torch.onnx.ops.symbolic``, whose traced (fake) result is a CPU
tensor whatever its input's device. On a CUDA model the trace then fails and the exporter
silently falls back to a capture without the markers (the encodings lose every entry). The ONNX
graph does not depend on the device, so the export moves the model's tensors to the host for its
duration and puts each back on its own device afterwards (parameters and buffers keep their
identity: optimizers and references stay valid).

Example::

    >>> import torch
    >>> model = torch.nn.Linear(2, 2)
    >>> with on_host(model):
    ...     model.weight.device.type
    'cpu'
"""

import contextlib

import torch
from torch import nn
from torch.utils import _pytree as pytree

__all__ = ["on_host", "input_on_host"]


@contextlib.contextmanager
def on_host(model: nn.Module):
    """Within the block every parameter and buffer of `model` is on the CPU (``tensor.data``
    moved, the tensor objects kept); on leaving, each goes back to the device it was on, also
    when the block raises. A model already on the CPU is left as it is."""
    moved = [(t, t.device) for t in (*model.parameters(), *model.buffers())
             if t.device.type != "cpu"]
    try:
        with torch.no_grad():
            for t, _ in moved:
                t.data = t.data.cpu()
        yield model
    finally:
        with torch.no_grad():
            for t, device in moved:
                t.data = t.data.to(device)


def input_on_host(dummy_input):
    """`dummy_input` (a tensor, tuple or dict of them, nested) with every tensor on the CPU.

    Example::

        >>> input_on_host({"x": torch.ones(1)})["x"].device.type
        'cpu'
    """
    return pytree.tree_map(lambda v: v.cpu() if isinstance(v, torch.Tensor) else v, dummy_input)
