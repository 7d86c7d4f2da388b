"""Checks of `QuantizationSimModel`'s arguments and of the precisions users pass.

Example::

    >>> parse_precision("int4", "activation"), parse_precision("fp16", "param")
    ((4, 'int'), (16, 'float'))
    >>> check_bitwidth("default_param_bw", 1, "int")
    Traceback (most recent call last):
        ...
    ValueError: default_param_bw=1: integer bitwidths must be in 2..16
"""

import torch
from torch import nn

from ..nn.base import QuantizationMixin
from ..quantization.float_quantizer import FloatQuantizeDequantize
from ..quantization.quantizer import QuantizeDequantize
from ..quantization.scheme import QuantScheme

__all__ = ["FLOAT_DTYPES", "check_bitwidth", "check_sim_arguments",
           "parse_precision"]

# Float bitwidth -> the torch dtype that simulates it.
FLOAT_DTYPES = {16: torch.float16}


def _is_quantizer(m: nn.Module) -> bool:
    """Whether `m` is a quantizer (integer or float)."""
    return isinstance(m, (QuantizeDequantize, FloatQuantizeDequantize))


def check_bitwidth(name: str, bw, dtype: str) -> int:
    """`bw` when it is a valid bitwidth for `dtype` ("int": 2..16, "float": 16); else a
    TypeError / ValueError naming `name`."""
    if isinstance(bw, bool) or not isinstance(bw, int):
        raise TypeError(f"{name} must be an int, got {type(bw).__name__}")
    if dtype == "float" and bw not in FLOAT_DTYPES:
        raise ValueError(f"{name}={bw} with data type 'float': only 16 (fp16 simulation) is "
                         f"supported")
    if dtype == "int" and not 2 <= bw <= 16:
        raise ValueError(f"{name}={bw}: integer bitwidths must be in 2..16")
    return bw


def parse_precision(value, what: str) -> tuple[int, str]:
    """``8`` / ``"int8"`` -> (8, "int"); ``"fp16"`` / ``"float16"`` -> (16, "float")."""
    if isinstance(value, str):
        v = value.lower()
        if v in ("fp16", "float16", "float"):
            return 16, "float"
        if v.startswith("int") and v[3:].isdigit():
            return check_bitwidth(what, int(v[3:]), "int"), "int"
        raise ValueError(f"{what}={value!r}: expected an int bitwidth, 'intN' or 'fp16'")
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
