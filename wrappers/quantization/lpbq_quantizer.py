"""`LpbqQuantizeDequantize`: AIMET's low-power blockwise quantization (LPBQ) of a weight.

A blockwise weight quantizer (encoding shape with blocks along the weight's input-channel axis,
see :class:`~torchqsim.quantization.QuantizeDequantize`) whose block scales are stored as small
integers times one float scale per output channel, as aimet-torch's
``GroupedBlockQuantizeDequantize`` with ``block_grouping=-1``. Calibration gives every block a
scale ``(max - min) / (qmax - qmin)`` on the signed symmetric grid of `bitwidth`; with ``n =
2^(decompressed_bw - bitwidth)`` each channel then keeps::

    per_channel_scale   = max over the channel's blocks of the block scales / n
    per_block_int_scale = clamp(rint(block scale / per_channel_scale), 1, n)

(:func:`torchqsim.functional.lpbq_scales`), and a block quantizes with ``per_block_int_scale *
per_channel_scale`` (:func:`torchqsim.functional.lpbq_quantize_dequantize`). The two tensors are
buffers (``state_dict``); encodings files store them as they are (AIMET 2.1.0 LPBQ entries) and
:meth:`set_lpbq` restores them bit for bit. The scales are not learnable (range learning leaves
an LPBQ quantizer's encoding as calibrated; the weights still get straight-through gradients).

Example::

    >>> import torch
    >>> q = LpbqQuantizeDequantize((2, 2), 4, decompressed_bw=8, axis=1)   # (2, 8) weight, blocks of 4
    >>> w = torch.tensor([[1.0, -0.5, 0.25, 0.1, 0.01, 0.02, -0.03, 0.04]] * 2)
    >>> _ = q(w)
    >>> q.per_block_int_scale, q.per_channel_scale.flatten()
    (tensor([[16.,  1.],
            [16.,  1.]]), tensor([0.0089, 0.0089]))
"""

import torch
from torch import Tensor

from .. import functional as F
from .encoding_analyzer import EncodingAnalyzer
from .param_quantizer import ParamQuantizeDequantize
from .quantizer import QuantizeDequantize

__all__ = ["LpbqQuantizeDequantize", "check_decompressed_bw"]


def check_decompressed_bw(decompressed_bw, bitwidth: int, where: str) -> int:
    """`decompressed_bw` when it is an integer above `bitwidth` and at most 16; else a
    ValueError naming `where`.

    Example::

        >>> check_decompressed_bw(4, 4, "decompressed_bw")
        Traceback (most recent call last):
            ...
        ValueError: decompressed_bw=4: must be an integer above the bitwidth (4) and at most 16
    """
    if isinstance(decompressed_bw, bool) or not isinstance(decompressed_bw, int) or \
            not bitwidth < decompressed_bw <= 16:
        raise ValueError(f"{where}={decompressed_bw!r}: must be an integer above the bitwidth "
                         f"({bitwidth}) and at most 16")
    return decompressed_bw


class LpbqQuantizeDequantize(ParamQuantizeDequantize):
    """An LPBQ weight quantizer (module docstring); signed symmetric grid.

    Args:
        shape: the blockwise encoding shape, e.g. ``(C_out, C_in // B)`` for a Linear weight
            ``(C_out, C_in)`` with blocks of B, ``(C_out, C_in // B, 1, 1)`` for a Conv2d.
        bitwidth: the elements' bits (e.g. 4).
        decompressed_bw: bits of element times integer scale (e.g. 8), above `bitwidth`, <= 16.
        axis: the blocked dimension of `shape` (the channel scale has size 1 there).
        encoding_analyzer: calibration of the block ranges (min/max of `shape` by default).
        block_size: AIMET v2's per-dimension block sizes (checked against the input), or None.
        name: used in error messages.

    Raises:
        ValueError: bad bitwidths or axis.
    """

    def __init__(self, shape, bitwidth: int, decompressed_bw: int,
                 encoding_analyzer: EncodingAnalyzer | None = None, block_size=None, *,
                 axis: int, name: str | None = None):
        super().__init__(shape, bitwidth, True, encoding_analyzer, block_size, name=name)
        self.decompressed_bw = check_decompressed_bw(decompressed_bw, bitwidth, "decompressed_bw")
        if not -len(self.shape) <= axis < len(self.shape):
            raise ValueError(f"axis {axis} is not a dimension of shape {self.shape}")
        self.axis = self.block_axis = axis % len(self.shape)
        channel = list(self.shape)
        channel[self.axis] = 1
        self.register_buffer("per_block_int_scale", torch.ones(self.shape))
        self.register_buffer("per_channel_scale", torch.zeros(channel))

    def _set(self, min: Tensor, max: Tensor) -> None:
        """Sets the block ranges and compresses their scales (module docstring)."""
        super()._set(min, max)
        raw = ((self.max - self.min) / (self.qmax - self.qmin)).detach()
        ints, channel = F.lpbq_scales(raw.clamp_min(torch.finfo(torch.float32).tiny),
                                      self.bitwidth, self.decompressed_bw, self.axis)
        self.per_block_int_scale.copy_(ints)
        self.per_channel_scale.copy_(channel)

    @torch.no_grad()
    def set_lpbq(self, per_block_int_scale, per_channel_scale) -> None:
        """Sets the encoding from stored LPBQ scales, exactly (an encodings file's entry).

        Raises:
            ValueError: the shapes do not match the quantizer's, or the integers are not in
                ``1 .. 2^(decompressed_bw - bitwidth)``, or a channel scale is not > 0.
        """
        ints = torch.as_tensor(per_block_int_scale, dtype=torch.float32)
        channel = torch.as_tensor(per_channel_scale, dtype=torch.float32)
        n = 2 ** (self.decompressed_bw - self.bitwidth)
        if ints.numel() != self.per_block_int_scale.numel() or \
                channel.numel() != self.per_channel_scale.numel():
            raise ValueError(f"{self._label()}: LPBQ scales of shapes {tuple(ints.shape)} and "
                             f"{tuple(channel.shape)} do not match {self.shape} and "
                             f"{tuple(self.per_channel_scale.shape)}")
        if not bool(((ints >= 1) & (ints <= n) & (ints == ints.round())).all()) or \
                not bool((channel > 0).all() and torch.isfinite(channel).all()):
            raise ValueError(f"{self._label()}: per_block_int_scale must hold integers 1..{n} "
                             f"and per_channel_scale finite values > 0")
        scale = ints.reshape(self.shape) * channel.reshape(self.per_channel_scale.shape)
        QuantizeDequantize._set(self, scale * self.qmin, scale * self.qmax)
        self.per_block_int_scale.copy_(ints.reshape(self.shape))
        self.per_channel_scale.copy_(channel.reshape(self.per_channel_scale.shape))

    def get_scale(self) -> Tensor:
        """The block scales ``per_block_int_scale * per_channel_scale``, of the encoding shape."""
        return self.per_block_int_scale * self.per_channel_scale

    def extra_repr(self) -> str:
        return super().extra_repr() + f", decompressed_bw={self.decompressed_bw}, axis={self.axis}"
