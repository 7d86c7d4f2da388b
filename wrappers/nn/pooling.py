"""Quantized pooling: ``nn.MaxPool1d/2d``, ``nn.AvgPool1d/2d``, ``nn.AdaptiveAvgPool1d/2d``
(the torch forward between an input and an output quantizer; max-pool indices, being integers,
pass through).

Example::

    >>> import torch
    >>> from torch import nn
    >>> QuantizedMaxPool2d.from_module(nn.MaxPool2d(2))(torch.randn(1, 1, 4, 4)).shape
    torch.Size([1, 1, 2, 2])
"""

from torch import nn

from .base import QuantizationMixin

__all__ = ["QuantizedMaxPool1d", "QuantizedMaxPool2d", "QuantizedAvgPool1d", "QuantizedAvgPool2d",
           "QuantizedAdaptiveAvgPool1d", "QuantizedAdaptiveAvgPool2d"]

QuantizedMaxPool1d = QuantizationMixin.wrap(nn.MaxPool1d, ("MaxPool",), __name__)
QuantizedMaxPool2d = QuantizationMixin.wrap(nn.MaxPool2d, ("MaxPool",), __name__)
QuantizedAvgPool1d = QuantizationMixin.wrap(nn.AvgPool1d, ("AveragePool",), __name__)
QuantizedAvgPool2d = QuantizationMixin.wrap(nn.AvgPool2d, ("AveragePool",), __name__)
QuantizedAdaptiveAvgPool1d = QuantizationMixin.wrap(
    nn.AdaptiveAvgPool1d, ("GlobalAveragePool", "AveragePool"), __name__)
QuantizedAdaptiveAvgPool2d = QuantizationMixin.wrap(
    nn.AdaptiveAvgPool2d, ("GlobalAveragePool", "AveragePool"), __name__)
