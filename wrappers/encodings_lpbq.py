"""LPBQ weight entries of AIMET encodings 2.0.0/2.1.0 as text (read and written by
:mod:`torchqsim.encodings_v21` next to the float entries).

AIMET's low-power blockwise quantization (:func:`torchqsim.functional.lpbq_scales`) stores a
weight's block scales as integers times one float scale per channel. The raw entry (AIMET's
encoding spec, 2.0.0 layout; docs/formats.md §6)::

    {"name", "output_dtype": "int4" (or "int<b>", the elements' signed grid),
     "per_block_int_scale": nested integers >= 1 (the weight's shape, blocked axis in blocks),
     "per_channel_float_scale": nested floats > 0 (the same, size 1 on the blocked axis),
     "axis": the blocked axis, "block_size": elements per block}

Zero points are 0 (LPBQ is symmetric). In the encodings dict of :mod:`torchqsim.encodings` the
entry reads ``{"dtype": "int", "bitwidth": b, "layout": "lpbq", "per_block_int_scale",
"per_channel_scale", "axis", "block_size"}``; a block's scale is ``per_block_int_scale *
per_channel_scale`` (fp32), which :func:`torchqsim.functional.lpbq_quantize_dequantize` applies.

Example::

    >>> raw = raw_entry({"dtype": "int", "bitwidth": 4, "layout": "lpbq",
    ...                  "per_block_int_scale": [[16, 3]], "per_channel_scale": [[0.5]],
    ...                  "axis": 1, "block_size": 32}, "e")
    >>> raw["output_dtype"], dict_entry(raw, "e")["per_block_int_scale"]
    ('int4', [[16, 3]])
"""

import math
import re

from . import _io

__all__ = ["dict_entry", "is_lpbq", "raw_entry"]

_KEYS = {"name", "output_dtype", "per_block_int_scale", "per_channel_float_scale", "axis",
         "block_size"}


def _fail(where: str, why: str):
    raise _io.EncodingsError(f"{where}: {why}")


def is_lpbq(e) -> bool:
    """Whether a raw entry is an LPBQ entry (it has ``per_block_int_scale``)."""
    return isinstance(e, dict) and "per_block_int_scale" in e


def _check_nested(v, where: str, integer: bool) -> list:
    """The shape of nested lists of numbers: integers >= 1 (`integer`) or finite floats > 0."""
    if isinstance(v, list):
        if not v:
            _fail(where, "expected a non-empty list")
        shapes = [_check_nested(item, f"{where}[{i}]", integer) for i, item in enumerate(v)]
        if any(s != shapes[0] for s in shapes):
            _fail(where, "rows of different lengths")
        return [len(v)] + shapes[0]
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v > 0
    if integer and not (ok and float(v).is_integer() and v >= 1):
        _fail(where, f"expected an integer >= 1, got {v!r}")
    if not ok:
        _fail(where, f"expected a finite number > 0, got {v!r}")
    return []


def check_raw(e: dict, where: str) -> None:
    """Checks a raw LPBQ entry (module docstring); EncodingsError naming `where` and the field."""
    unknown = sorted(set(e) - _KEYS)
    if unknown:
        _fail(f"{where}.{unknown[0]}", f"unknown key in an LPBQ entry; expected "
              f"{', '.join(sorted(_KEYS))}")
    for key in sorted(_KEYS - set(e)):
        _fail(f"{where}.{key}", "missing in an LPBQ entry")
    if not isinstance(e["name"], str):
        _fail(f"{where}.name", f"expected a string, got {e['name']!r}")
    dtype = e["output_dtype"]
    if not isinstance(dtype, str) or not re.fullmatch(r"int([2-9]|1[0-6])", dtype):
        _fail(f"{where}.output_dtype", f"an LPBQ entry has a signed integer type int2..int16, "
              f"got {dtype!r}")
    for key in ("axis", "block_size"):
        if isinstance(e[key], bool) or not isinstance(e[key], int) or e[key] < (key == "block_size"):
            _fail(f"{where}.{key}", f"expected an integer >= {int(key == 'block_size')}, got "
                  f"{e[key]!r}")
    ints = _check_nested(e["per_block_int_scale"], f"{where}.per_block_int_scale", True)
    chans = _check_nested(e["per_channel_float_scale"], f"{where}.per_channel_float_scale", False)
    axis = e["axis"]
    if axis >= len(ints) or len(chans) != len(ints) or chans[axis] != 1 or \
            any(c != n for d, (c, n) in enumerate(zip(chans, ints)) if d != axis):
        _fail(f"{where}.per_channel_float_scale", f"shape {chans} does not match "
              f"per_block_int_scale {ints} with size 1 on axis {axis}")


def dict_entry(raw: dict, where: str) -> dict:
    """The encodings-dict form of a raw LPBQ entry (checked here)."""
    check_raw(dict(raw, name=raw.get("name", "")), where)
    return {"dtype": "int", "bitwidth": int(raw["output_dtype"][3:]), "layout": "lpbq",
            "per_block_int_scale": raw["per_block_int_scale"],
            "per_channel_scale": raw["per_channel_float_scale"], "axis": raw["axis"],
            "block_size": raw["block_size"]}


def raw_entry(entry: dict, where: str) -> dict:
    """The raw entry (without ``name``) of an encodings-dict LPBQ entry; EncodingsError naming
    `where` and the field when it is malformed."""
    bits = entry.get("bitwidth")
    raw = {"output_dtype": f"int{bits}",
           "per_block_int_scale": entry.get("per_block_int_scale"),
           "per_channel_float_scale": entry.get("per_channel_scale"),
           "axis": entry.get("axis"), "block_size": entry.get("block_size")}
    check_raw(dict(raw, name=""), where)
    return raw
