"""Quantized shape-changing modules: ``nn.Flatten`` and ``nn.Upsample`` (the torch forward
between an input and an output quantizer).

Example::

    >>> import torch
    >>> from torch import nn
    >>> QuantizedUpsample.from_module(nn.Upsample(scale_factor=2))(torch.ones(1, 1, 2)).shape
    torch.Size([1, 1, 4])
"""

from torch import nn

from .base import QuantizationMixin

__all__ = ["QuantizedFlatten", "QuantizedUpsample"]

QuantizedFlatten = QuantizationMixin.wrap(nn.Flatten, ("Flatten",), __name__)
QuantizedUpsample = QuantizationMixin.wrap(nn.Upsample, ("Upsample", "Resize"), __name__)
