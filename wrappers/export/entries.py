"""Encodings-file entries (the dicts of :mod:`torchqsim.encodings`) of quantizer modules.

An integer quantizer (:class:`~torchqsim.quantization.QuantizeDequantize` and subclasses) gives
its scale, offset and min/max in AIMET's conventions: ``offset = -zero_point`` on the unsigned
grid ``[0, 2^bitwidth - 1]``, i.e. ``-(zero_point + 2^(bitwidth-1))`` for a signed grid (a
symmetric 8-bit encoding has offset -128), and ``min``/``max`` are the quantizer's own range
(its ``min``/``max`` parameters), so a file of version 0.6.1 restores the quantizer exactly. The
layout (per-tensor, per-channel with its axis, per-block with axis, block size and scale shape)
follows from the encoding shape and the shape of the tensor it applies to. A strict symmetric
grid ``[-(2^(b-1)-1), 2^(b-1)-1]`` is written as symmetric with offset ``-(2^(b-1)-1)`` (-127 at
8 bits, as AIMET writes it and as ``_torch.encodings`` has it:
:func:`torchqsim.encoding_codec.aimet_offset`) and its min/max (files have no strict flag; a
2.0.0 file gives it zero point 0). A float quantizer
(:class:`~torchqsim.quantization.FloatQuantizeDequantize`) gives ``{"dtype": "float",
"bitwidth": 16}``.

Example::

    >>> import torch
    >>> from torchqsim.quantization import QuantizeDequantize
    >>> q = QuantizeDequantize((), 8, symmetric=True)
    >>> q.set_range(-1.0, 1.0)
    >>> e = encoding_entry(q, (2, 3))
    >>> e["layout"], e["offset"], e["scale"] == [float(q.get_scale())]
    ('per_tensor', [-128], True)
"""

import math

import torch
from torch import nn

from ..quantization import QuantizeDequantize
from ..quantization._layout import aligned_shape, qdq_layout
from ..encoding_codec import aimet_offset
from ..quantization.block_float_quantizer import BlockFloatQuantizeDequantize
from ..quantization.float_quantizer import FloatQuantizeDequantize
from ..quantization.lpbq_quantizer import LpbqQuantizeDequantize

__all__ = ["encoding_entry"]


def _floats(t: torch.Tensor) -> list:
    return [float(v) for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def _int_entry(q: QuantizeDequantize, shape) -> dict:
    if shape is None or None in shape:
        if math.prod(q.shape) != 1:
            raise ValueError(f"the shape of the tensor is unknown ({shape}), so the layout of "
                             f"encoding shape {q.shape} cannot be told")
        shape = ()
    with torch.no_grad():
        scale = q.get_scale().reshape(q.shape)
        zero_point = q.get_zero_point().reshape(q.shape)
    signed = q.qmin < 0
    axis, block_size, _ = qdq_layout(shape, q.shape)
    layout = "per_tensor" if axis is None else "per_channel" if block_size is None else "per_block"
    return {
        "dtype": "int",
        "bitwidth": q.bitwidth,
        "is_symmetric": q.symmetric,
        "is_signed": signed,
        "layout": layout,
        "scale": _floats(scale),
        "offset": [aimet_offset(q.qmin, z) for z in zero_point.reshape(-1).tolist()],
        "min": _floats(q.min),
        "max": _floats(q.max),
        "axis": axis,
        "block_size": block_size,
        "scale_shape": list(aligned_shape(q.shape, shape)) if layout == "per_block" else None,
    }


def _lpbq_entry(q: LpbqQuantizeDequantize, shape) -> dict:
    """The LPBQ dict entry (torchqsim.encodings_lpbq) of an LPBQ weight quantizer: its integer
    and channel scales in the encoding shape (ones over the kernel taps)."""
    axis, block_size, _ = qdq_layout(shape, q.shape)
    return {"dtype": "int", "bitwidth": q.bitwidth, "layout": "lpbq",
            "per_block_int_scale": q.per_block_int_scale.to(torch.int64).tolist(),
            "per_channel_scale": q.per_channel_scale.tolist(), "axis": axis,
            "block_size": block_size}


def encoding_entry(quantizer: nn.Module, shape) -> dict:
    """The encodings-file entry of ``quantizer`` applied to a tensor of ``shape``.

    Args:
        quantizer: an initialized ``QuantizeDequantize`` (or subclass) or a
            ``FloatQuantizeDequantize``.
        shape: the shape of the tensor it quantizes (None or None dimensions: unknown, enough
            for a per-tensor encoding).

    Raises:
        TypeError: another kind of quantizer module.
        ValueError: the encoding shape does not fit ``shape``.

    Example::

        >>> encoding_entry(FloatQuantizeDequantize(torch.float16), (4,))
        {'dtype': 'float', 'bitwidth': 16}
    """
    if isinstance(quantizer, LpbqQuantizeDequantize) and shape is not None:
        return _lpbq_entry(quantizer, tuple(shape))
    if isinstance(quantizer, QuantizeDequantize):
        return _int_entry(quantizer, None if shape is None else tuple(shape))
    if isinstance(quantizer, (FloatQuantizeDequantize, BlockFloatQuantizeDequantize)):
        # block formats: the element bits (their data-derived scales live in the QDQ graph;
        # docs/formats.md)
        return {"dtype": "float", "bitwidth": quantizer.bitwidth}
    raise TypeError(f"cannot export a quantizer of type {type(quantizer).__qualname__}: "
                    f"expected QuantizeDequantize or FloatQuantizeDequantize")
