"""Checks of `QuantizationSimModel`'s arguments and of the precisions users pass.

Example::

    >>> parse_precision("int4", "activation"), parse_precision("fp16", "param")
    ((4, 'int'), (16, 'float'))
    >>> parse_precision("fp8_e4m3", "activation"), parse_precision("mxfp4", "param")
    ((8, 'fp8_e4m3'), (4, 'mxfp4'))
    >>> check_bitwidth("default_param_bw", 1, "int")
    Traceback (most recent call last):
        ...
    ValueError: default_param_bw=1: integer bitwidths must be in 2..16
"""

import torch
from torch import nn

from ..nn.base import QuantizationMixin
from ..quantization.block_float_quantizer import BlockFloatQuantizeDequantize
from ..quantization.float_quantizer import FloatQuantizeDequantize
from ..quantization.quantizer import QuantizeDequantize
from ..quantization.scheme import QuantScheme
from ..float_formats import BLOCK_FORMATS, FLOAT_FORMATS, format_bits, is_format

__all__ = ["FLOAT_DTYPES", "check_bitwidth", "check_sim_arguments",
           "parse_precision"]

# Float bitwidth -> the torch dtype that simulates it.
FLOAT_DTYPES = {16: torch.float16}


def _is_quantizer(m: nn.Module) -> bool:
    """Whether `m` is a quantizer (integer, float or block float)."""
    return isinstance(m, (QuantizeDequantize, FloatQuantizeDequantize,
                          BlockFloatQuantizeDequantize))


def check_bitwidth(name: str, bw, dtype: str) -> int:
    """`bw` when it is a valid bitwidth for `dtype` ("int": 2..16, "float": 16, a format name of
    torchqsim.float_formats: its element bits); else a TypeError / ValueError naming `name`."""
    if isinstance(bw, bool) or not isinstance(bw, int):
        raise TypeError(f"{name} must be an int, got {type(bw).__name__}")
    if is_format(dtype) and bw != format_bits(dtype):
        raise ValueError(f"{name}={bw} with format {dtype!r}: the format has "
                         f"{format_bits(dtype)} bits")
    if dtype == "float" and bw not in FLOAT_DTYPES:
        raise ValueError(f"{name}={bw} with data type 'float': only 16 (fp16 simulation) is "
                         f"supported")
    if dtype == "int" and not 2 <= bw <= 16:
        raise ValueError(f"{name}={bw}: integer bitwidths must be in 2..16")
    return bw


def parse_precision(value, what: str) -> tuple[int, str]:
    """``8`` / ``"int8"`` -> (8, "int"); ``"fp16"`` / ``"float16"`` -> (16, "float"); a format
    name (``"fp8_e4m3"``, ``"mxfp4"``, ... of torchqsim.float_formats) -> (its bits, the name)."""
    if isinstance(value, str):
        v = value.lower()
        if v in ("fp16", "float16", "float"):
            return 16, "float"
        if is_format(v):
            return format_bits(v), v
        if v.startswith("int") and v[3:].isdigit():
            return check_bitwidth(what, int(v[3:]), "int"), "int"
        raise ValueError(f"{what}={value!r}: expected an int bitwidth, 'intN', 'fp16' or a "
                         f"format name ({', '.join((*FLOAT_FORMATS, *BLOCK_FORMATS))})")
    return check_bitwidth(what, value, "int"), "int"


def check_sim_arguments(model, quant_scheme, output_bw, param_bw, data_type) -> QuantScheme:
    """Checks `QuantizationSimModel`'s arguments, in its order (each error names its argument);
    returns the parsed `quant_scheme`.

    Raises:
        TypeError / ValueError: a bad argument.
        RuntimeError: `model` already holds quantizers or quantized modules.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    scheme = QuantScheme.parse(quant_scheme)
    if data_type not in ("int", "float"):
        raise ValueError(f"default_data_type must be 'int' or 'float', got {data_type!r}")
    check_bitwidth("default_output_bw", output_bw, data_type)
    check_bitwidth("default_param_bw", param_bw, data_type)
    held = [n or type(model).__name__ for n, m in model.named_modules()
            if _is_quantizer(m) or isinstance(m, QuantizationMixin)]
    if held:
        raise RuntimeError(f"model already holds quantizers or quantized modules "
                           f"({', '.join(held[:5])}{', ...' if len(held) > 5 else ''}): "
                           f"pass the floating-point model")
    return scheme
