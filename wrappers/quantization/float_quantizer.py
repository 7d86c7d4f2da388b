"""`FloatQuantizeDequantize`: 16-bit floating-point simulation (fp16 or bf16) as a quantizer.

The forward rounds to the 16-bit format (ties to even) and back, in C
(``torchqsim.functional.float_quantize_dequantize``); the backward is the identity. It needs
no calibration, so it is always initialized and ``compute_encodings()`` does nothing
(aimet-torch v2's fp16/bf16 fast path, docs/aimet.md §2.6).

Example::

    >>> import torch
    >>> q = FloatQuantizeDequantize(torch.float16)
    >>> q(torch.tensor([1.0 + 2**-11, 1.0 + 2**-10, 70000.0]))
    tensor([1.0000, 1.0010,    inf])
"""

import contextlib

import torch
from torch import Tensor, nn

from .. import functional as F

__all__ = ["FloatQuantizeDequantize"]

_FORMATS = {torch.float16: (5, 10), torch.bfloat16: (8, 7)}


class FloatQuantizeDequantize(nn.Module):
    """Simulates a 16-bit float format on float32, float16 or bfloat16 tensors.

    Args:
        dtype: ``torch.float16`` or ``torch.bfloat16``.

    Raises:
        ValueError: another dtype.

    Example::

        >>> q = FloatQuantizeDequantize(torch.bfloat16)
        >>> q.bitwidth, q.exponent_bits, q.mantissa_bits, q.is_initialized()
        (16, 8, 7, True)
        >>> q(torch.tensor([1.0 + 2**-8]))
        tensor([1.])
    """

    def __init__(self, dtype: torch.dtype = torch.float16):
        super().__init__()
        if dtype not in _FORMATS:
            raise ValueError(f"FloatQuantizeDequantize: dtype must be torch.float16 or "
                             f"torch.bfloat16, got {dtype}")
        self.dtype = dtype
        self.exponent_bits, self.mantissa_bits = _FORMATS[dtype]

    @property
    def bitwidth(self) -> int:
        """16: exponent bits + mantissa bits + the sign bit."""
        return self.exponent_bits + self.mantissa_bits + 1

    def is_initialized(self) -> bool:
        """Always True: the format needs no encoding."""
        return True

    @contextlib.contextmanager
    def compute_encodings(self):
        """No-op context (nothing to calibrate); the forward quantizes inside it too."""
        yield self

    def forward(self, x: Tensor) -> Tensor:
        """`x` rounded to ``dtype`` and back (gradient: identity)."""
        return F.float_quantize_dequantize(x, self.dtype)

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}"
