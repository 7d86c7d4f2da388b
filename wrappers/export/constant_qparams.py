"""Quantizer scales and zero points held as constants while the QDQ graph is exported."""

import contextlib

import torch
from torch import nn

from ..quantization.quantizer import QuantizeDequantize


@contextlib.contextmanager
def constant_qparams(module: nn.Module):
    """Within the block, every :class:`QuantizeDequantize` of `module` uses the scale and zero
    point computed once on entry, so that a traced forward (ONNX export) holds them as constants
    instead of recomputing them from min/max node by node: a smaller graph, exported faster, with
    the values eager computes (bit for bit). Nothing may change an encoding inside the block.

    The quantizers' own tensors, which a forward with constant scales does not read (``min``,
    ``max``, the ``initialized`` flag, the encoding analyzer's statistics and histograms), are
    detached inside the block, so that ``torch.export`` does not lift them as graph inputs (an
    LLM's analyzers hold thousands: the exporter's decomposition pass grew with their count).
    Inside the block the quantizers therefore only run traced (exported or compiled) forwards.

    Example::

        >>> q = QuantizeDequantize((), 8, symmetric=False)
        >>> q.set_range(0.0, 2.55)
        >>> x = torch.tensor([0.004, 1.0, 9.0])
        >>> with constant_qparams(q), torch.no_grad():
        ...     program = torch.export.export(q, (x,), strict=False)
        ...     print(sorted(program.state_dict))
        []
        >>> program.module()(x)
        tensor([0.0000, 1.0000, 2.5500])
    """
    quantizers = [m for m in module.modules()
                  if isinstance(m, QuantizeDequantize) and m.is_initialized()]
    detached = []
    try:
        with torch.no_grad():
            for q in quantizers:
                q._constant_qparams = q._scale_zero_point()
        for q in quantizers:
            detached.append((q, q._parameters, q._buffers, q._modules))
            q._parameters, q._buffers, q._modules = {}, {}, {}
        yield
    finally:
        for q, parameters, buffers, modules in detached:
            q._parameters, q._buffers, q._modules = parameters, buffers, modules
        for q in quantizers:
            q.__dict__.pop("_constant_qparams", None)
