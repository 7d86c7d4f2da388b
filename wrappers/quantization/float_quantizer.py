"""`FloatQuantizeDequantize`: floating-point simulation (fp16, bf16, FP8, any minifloat) as a
quantizer.

The forward rounds to the format (ties to even, exact subnormals) and back, in C
(``torchqsim.functional.float_quantize_dequantize``); the backward is straight-through (zero
where a saturating format clamped). Like aimet-torch v2's quantizer without an encoding analyzer
it casts without a scale, needs no calibration, is always initialized and
``compute_encodings()`` does nothing (docs/aimet.md). Formats are a torch dtype, a name of
:data:`torchqsim.float_formats.FLOAT_FORMATS` (``"fp8_e4m3"``, ...) or ``exponent_bits`` and
``mantissa_bits`` (IEEE conventions, saturating, AIMET's ``fake_cast_to_ieee_float``).

Example::

    >>> import torch
    >>> q = FloatQuantizeDequantize(torch.float16)
    >>> q(torch.tensor([1.0 + 2**-11, 1.0 + 2**-10, 70000.0]))
    tensor([1.0000, 1.0010,    inf])
    >>> FloatQuantizeDequantize("fp8_e4m3")(torch.tensor([3.3, 500.0]))
    tensor([  3.2500, 448.0000])
"""

import contextlib

import torch
from torch import Tensor, nn

from .. import functional as F
from ..float_formats import FLOAT_FORMATS, KINDS, float_format_of

__all__ = ["FloatQuantizeDequantize"]

_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float8_e4m3fn: "fp8_e4m3",
          torch.float8_e5m2: "fp8_e5m2", torch.float8_e4m3fnuz: "fp8_e4m3fnuz",
          torch.float8_e5m2fnuz: "fp8_e5m2fnuz"}


class FloatQuantizeDequantize(nn.Module):
    """Simulates a float format on float32, float16 or bfloat16 tensors.

    Args:
        dtype: a torch float dtype (``torch.float16``, ``torch.bfloat16``,
            ``torch.float8_e4m3fn``, ...), a format name (``"fp8_e4m3"``, ``"fp4_e2m1"``, ...),
            or None with `exponent_bits` and `mantissa_bits`.
        exponent_bits, mantissa_bits: a custom format (1..8, 0..23), with ``dtype=None``.
        kind: the conventions of a custom format ("ieee", "fn", "fnuz", "finite").
        saturate: overflow clamps to the largest finite value (fp16 and bf16 as dtypes are plain
            casts and overflow to Inf).

    Raises:
        ValueError: an unknown dtype or name, or both or neither of dtype and the bit counts.

    Example::

        >>> q = FloatQuantizeDequantize(torch.bfloat16)
        >>> q.bitwidth, q.exponent_bits, q.mantissa_bits, q.is_initialized()
        (16, 8, 7, True)
        >>> FloatQuantizeDequantize(None, exponent_bits=5, mantissa_bits=2).format_name
        'e5m2'
    """

    def __init__(self, dtype=torch.float16, exponent_bits: int | None = None,
                 mantissa_bits: int | None = None, *, kind: str = "ieee", saturate: bool = True):
        super().__init__()
        self.dtype, self.saturate = None, saturate
        if dtype is None:
            if exponent_bits is None or mantissa_bits is None or kind not in KINDS:
                raise ValueError("FloatQuantizeDequantize: dtype=None needs exponent_bits, "
                                 f"mantissa_bits and a kind in {KINDS}")
            self.exponent_bits, self.mantissa_bits, self.kind = exponent_bits, mantissa_bits, kind
            self.format_name = f"e{exponent_bits}m{mantissa_bits}" + \
                ("" if kind == "ieee" else kind)
        elif exponent_bits is not None or mantissa_bits is not None:
            raise ValueError("FloatQuantizeDequantize: give dtype or exponent_bits and "
                             "mantissa_bits, not both")
        elif isinstance(dtype, str):
            if dtype not in FLOAT_FORMATS:
                raise ValueError(f"FloatQuantizeDequantize: unknown format {dtype!r}; "
                                 f"expected one of {', '.join(FLOAT_FORMATS)}")
            self.exponent_bits, self.mantissa_bits, self.kind = FLOAT_FORMATS[dtype]
            self.format_name = dtype
        else:
            try:
                self.exponent_bits, self.mantissa_bits, self.kind = float_format_of(dtype)
            except ValueError as e:
                raise ValueError(f"FloatQuantizeDequantize: {e}") from None
            self.dtype, self.format_name = dtype, _NAMES.get(dtype, str(dtype))

    @property
    def bitwidth(self) -> int:
        """Exponent bits + mantissa bits + the sign bit."""
        return self.exponent_bits + self.mantissa_bits + 1

    def is_initialized(self) -> bool:
        """Always True: the format needs no encoding."""
        return True

    @contextlib.contextmanager
    def compute_encodings(self):
        """No-op context (nothing to calibrate); the forward quantizes inside it too."""
        yield self

    def forward(self, x: Tensor) -> Tensor:
        """`x` rounded to the format and back (gradient: straight-through)."""
        if self.dtype in (torch.float16, torch.bfloat16):
            return F.float_quantize_dequantize(x, self.dtype)
        return F.float_quantize_dequantize(x, None, exponent_bits=self.exponent_bits,
                                           mantissa_bits=self.mantissa_bits,
                                           saturate=self.saturate, kind=self.kind)

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}" if self.dtype is not None else f"format={self.format_name}"
