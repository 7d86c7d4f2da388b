"""`BlockFloatQuantizeDequantize`: the OCP MX v1.0 and NVFP4 block-scaled formats as a quantizer.

MX formats compute their shared scales from the data itself (one E8M0 scale per 32 elements along
`axis`), so they need no calibration. NVFP4 has in addition an fp32 tensor scale: within
``compute_encodings()`` the quantizer records the largest magnitude it sees (a running maximum
over the calibration batches) and afterwards uses the tensor scale of that statistic
(:func:`torchqsim.float_formats.nvfp4_tensor_scale`); before calibration it derives it from each
input.

Example::

    >>> import torch
    >>> q = BlockFloatQuantizeDequantize("mxfp4")
    >>> q(torch.arange(1.0, 33.0))[[0, 3, 19]]
    tensor([ 0.,  4., 16.])
    >>> nv = BlockFloatQuantizeDequantize("nvfp4")
    >>> with nv.compute_encodings():
    ...     _ = nv(torch.full((16,), 2688.0))
    >>> nv.tensor_scale
    tensor(1.)
"""

import contextlib

import torch
from torch import Tensor, nn

from .. import functional as F
from ..float_formats import BLOCK_FORMATS, format_bits, nvfp4_tensor_scale

__all__ = ["BlockFloatQuantizeDequantize"]


class BlockFloatQuantizeDequantize(nn.Module):
    """Simulates a block-scaled format (``"mxfp8_e4m3"``, ..., ``"mxfp4"``, ``"mxint8"``,
    ``"nvfp4"``) along `axis`.

    Args:
        fmt: a name of :data:`torchqsim.float_formats.BLOCK_FORMATS`.
        axis: the blocked axis (for weights AIMET blocks the input-channel axis, 1).

    Raises:
        ValueError: an unknown format.
    """

    def __init__(self, fmt: str, axis: int = -1):
        super().__init__()
        if fmt not in BLOCK_FORMATS:
            raise ValueError(f"BlockFloatQuantizeDequantize: unknown format {fmt!r}; expected "
                             f"one of {', '.join(BLOCK_FORMATS)}")
        self.format_name, self.axis = fmt, axis
        self.block_size = BLOCK_FORMATS[fmt][1]
        self.register_buffer("amax", torch.zeros(()) if fmt == "nvfp4" else None)
        self._calibrated, self._observing = False, False

    @property
    def bitwidth(self) -> int:
        """Bits per element (the shared scales come on top)."""
        return format_bits(self.format_name)

    @property
    def tensor_scale(self) -> Tensor | None:
        """NVFP4's calibrated fp32 tensor scale (None for MX or before calibration)."""
        if self.format_name != "nvfp4" or not self._calibrated:
            return None
        return nvfp4_tensor_scale(self.amax)

    def is_initialized(self) -> bool:
        """True: MX needs no encoding; NVFP4 falls back to a per-input tensor scale."""
        return True

    @contextlib.contextmanager
    def compute_encodings(self):
        """NVFP4: records the running largest magnitude of the inputs; MX: nothing to do."""
        if self.format_name == "nvfp4":
            self.amax.zero_()
        self._observing = True
        try:
            yield self
        finally:
            self._observing = False
            self._calibrated = self._calibrated or self.format_name == "nvfp4"

    def forward(self, x: Tensor) -> Tensor:
        """`x` in the block format and back (gradient: straight-through)."""
        if self._observing and self.format_name == "nvfp4" and x.numel():
            with torch.no_grad():
                self.amax.copy_(torch.maximum(self.amax, x.detach().abs().amax().float()))
        return F.block_float_quantize_dequantize(x, self.format_name, self.axis,
                                                 self.tensor_scale)

    def extra_repr(self) -> str:
        return f"format={self.format_name}, axis={self.axis}"
