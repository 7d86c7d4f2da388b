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

    Example::

        >>> q = QuantizeDequantize((), 8, symmetric=False)
        >>> q.set_range(0.0, 2.55)
        >>> with constant_qparams(q), torch.no_grad():
        ...     print(q(torch.tensor([0.004, 1.0, 9.0])))
        tensor([0.0000, 1.0000, 2.5500])
    """
    quantizers = [m for m in module.modules()
                  if isinstance(m, QuantizeDequantize) and m.is_initialized()]
    try:
        with torch.no_grad():
            for q in quantizers:
                q._constant_qparams = q._scale_zero_point()
        yield
    finally:
        for q in quantizers:
            q.__dict__.pop("_constant_qparams", None)
