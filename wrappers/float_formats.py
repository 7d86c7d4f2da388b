"""The narrow float formats torchqsim simulates, by name: minifloats and block-scaled formats.

Minifloats (``torchqsim.functional.float_quantize_dequantize``) are described by
``(exponent_bits, mantissa_bits, kind)``; `kind` says how the format spends its special codes
(kernels/include/qsim/minifloat.h):

- ``"ieee"``: the top exponent code is Inf/NaN (fp16, bf16, float8_e5m2; AIMET's convention for
  any ``exponent_bits``/``mantissa_bits``);
- ``"fn"``: finite only, the all-ones code is NaN (float8_e4m3fn, largest 448);
- ``"fnuz"``: finite only, bias ``2^(e-1)``, no negative zero, NaN is the -0 code
  (float8_e4m3fnuz, float8_e5m2fnuz);
- ``"finite"``: every code finite (the OCP MX FP6 and FP4 elements).

Block-scaled formats (``torchqsim.functional.block_float_quantize_dequantize``) are
``BLOCK_FORMATS``: OCP Microscaling v1.0 (E8M0 scale per 32 elements) and NVFP4 (E4M3 scale per 16
elements times an fp32 tensor scale).

Example::

    >>> import torch
    >>> FLOAT_FORMATS["fp8_e4m3"], float_format_of(torch.float8_e5m2)
    ((4, 3, 'fn'), (5, 2, 'ieee'))
    >>> format_bits("fp8_e4m3"), format_bits("mxfp4"), is_format("int8")
    (8, 4, False)
    >>> float_max(4, 3, "fn"), float_max(2, 1, "finite")
    (448.0, 6.0)
    >>> nvfp4_tensor_scale(torch.tensor(2688.0))
    tensor(1.)
"""

import torch
from torch import Tensor

__all__ = ["FLOAT_FORMATS", "BLOCK_FORMATS", "KINDS", "float_format_of", "float_max",
           "format_bits", "is_format", "nvfp4_tensor_scale"]

KINDS = ("ieee", "fn", "fnuz", "finite")

#: Names usable as precisions (``set_precision``, config ``dtype``) -> (exponent, mantissa, kind).
FLOAT_FORMATS = {
    "fp8_e4m3": (4, 3, "fn"),
    "fp8_e5m2": (5, 2, "ieee"),
    "fp8_e4m3fnuz": (4, 3, "fnuz"),
    "fp8_e5m2fnuz": (5, 2, "fnuz"),
    "fp6_e3m2": (3, 2, "finite"),
    "fp6_e2m3": (2, 3, "finite"),
    "fp4_e2m1": (2, 1, "finite"),
}

#: Block-scaled formats -> (element bits, block size); see the module docstring.
BLOCK_FORMATS = {
    "mxfp8_e4m3": (8, 32), "mxfp8_e5m2": (8, 32), "mxfp6_e3m2": (6, 32), "mxfp6_e2m3": (6, 32),
    "mxfp4": (4, 32), "mxint8": (8, 32), "nvfp4": (4, 16),
}

_DTYPES = {
    torch.float8_e4m3fn: (4, 3, "fn"),
    torch.float8_e5m2: (5, 2, "ieee"),
    torch.float8_e4m3fnuz: (4, 3, "fnuz"),
    torch.float8_e5m2fnuz: (5, 2, "fnuz"),
    torch.float16: (5, 10, "ieee"),
    torch.bfloat16: (8, 7, "ieee"),
}
if hasattr(torch, "float4_e2m1fn_x2"):
    _DTYPES[torch.float4_e2m1fn_x2] = (2, 1, "finite")


def is_format(name) -> bool:
    """Whether `name` is one of FLOAT_FORMATS or BLOCK_FORMATS."""
    return isinstance(name, str) and (name in FLOAT_FORMATS or name in BLOCK_FORMATS)


def format_bits(name: str) -> int:
    """Bits per element of a named format (``"fp8_e4m3"`` -> 8, ``"mxfp4"`` -> 4)."""
    if name in FLOAT_FORMATS:
        e, m, _ = FLOAT_FORMATS[name]
        return 1 + e + m
    return BLOCK_FORMATS[name][0]


def float_format_of(dtype: torch.dtype) -> tuple[int, int, str]:
    """``(exponent_bits, mantissa_bits, kind)`` of a torch float dtype.

    Raises:
        ValueError: a dtype that is not a float format torchqsim simulates.
    """
    if dtype not in _DTYPES:
        names = ", ".join(str(d) for d in _DTYPES)
        raise ValueError(f"dtype must be one of {names}; got {dtype}")
    return _DTYPES[dtype]


def float_max(exponent_bits: int, mantissa_bits: int, kind: str = "ieee") -> float:
    """The largest finite value of a minifloat (kernels/include/qsim/minifloat.h conventions)."""
    bias = 2 ** (exponent_bits - 1) - 1 + (kind == "fnuz")
    top = 2**exponent_bits - 1
    if kind == "ieee" or (kind == "fn" and mantissa_bits == 0):  # the top exponent code is taken
        return (2 - 2.0**-mantissa_bits) * 2.0 ** (top - 1 - bias)
    if kind == "fn":  # only the all-ones code is taken
        return (2 - 2.0 ** (1 - mantissa_bits)) * 2.0 ** (top - bias)
    return (2 - 2.0**-mantissa_bits) * 2.0 ** (top - bias)


def nvfp4_tensor_scale(amax: Tensor) -> Tensor:
    """The NVFP4 fp32 tensor scale from a calibrated largest magnitude: ``amax / (448 * 6)``.

    It is the decode scale of the E4M3 block scales (their ``x_scale`` in AIMET encodings 2.1.0),
    chosen so that the largest block of the tensor maps to E4M3's largest value times E2M1's. A
    zero, non-finite or underflowing result becomes 1.
    """
    d = amax.detach().float() / (448.0 * 6.0)
    return torch.where(torch.isfinite(d) & (d > 0), d, torch.ones_like(d))
