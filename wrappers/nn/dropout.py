"""Quantized ``nn.Dropout`` (the torch forward between an input and an output quantizer).

Example::

    >>> import torch
    >>> from torch import nn
    >>> QuantizedDropout.from_module(nn.Dropout(0.5)).eval()(torch.ones(2))
    tensor([1., 1.])
"""

from torch import nn

from .base import QuantizationMixin

__all__ = ["QuantizedDropout"]

QuantizedDropout = QuantizationMixin.wrap(nn.Dropout, ("Dropout",), __name__)
