"""AIMET encodings 2.1.0 as text: the float and block-format entries that 2.1.0 adds to 2.0.0.

2.1.0 (AIMET's encoding spec) keeps 2.0.0's layout (``{"version", "producer", "encodings":
[entry, ...]}``, entries in ONNX ``QuantizeLinear`` terms) and lets an entry's ``output_dtype``
be a float type. The integer entries are read and written by the C codec as 2.0.0
(:mod:`torchqsim.encodings`); this module adds the float entries to that text and takes them out
again. A raw float entry (as in the file, docs/formats.md §4) is one of:

- a minifloat: ``{"name", "output_dtype": "float8e4m3fn" | "float8e5m2" | "float4e2m1",
  "y_scale": 1.0}``;
- an MX weight: the element ``output_dtype`` and its E8M0 block scales as fp32 powers of two,
  nested like a 2.0.0 per-block ``y_scale``, with ``axis`` and ``block_size`` 32 (MXINT8 is a
  plain 2.0.0 per-block int8 entry);
- an NVFP4 weight: ``output_dtype`` ``float4e2m1`` whose ``y_scale`` is itself an encoding,
  ``{"x": E4M3 block scales (nested), "x_scale": d, "input_dtype": "float8e4m3fn"}``, with
  ``axis`` and ``block_size`` 16.

In the encodings dict of :mod:`torchqsim.encodings` a float entry (in ``"encodings"``, as 2.x
records no roles) reads::

    {"dtype": "float", "bitwidth": 8 | 4, "format": "fp8_e4m3" | "fp8_e5m2" | "fp4_e2m1" |
     "mxfp8_e4m3" | "mxfp8_e5m2" | "mxfp4" | "nvfp4",
     "scale": 1.0 (minifloat) or the nested block scales (MX; NVFP4's E4M3 ``x``),
     "tensor_scale": NVFP4's d, else None, "axis": int or None, "block_size": int or None}

Example::

    >>> text = write_text({"encodings": {"w": {"dtype": "float", "bitwidth": 4,
    ...     "format": "mxfp4", "scale": [[1.0, 0.5]], "axis": 1, "block_size": 32}}})
    >>> read_text(text)["encodings"]["w"]["format"]
    'mxfp4'
"""

import json
import math

from . import _io
from . import encodings_lpbq as _lpbq

__all__ = ["VERSION", "dict_entry", "is_v21_error", "raw_entry", "read_text", "read_v21",
           "write_text", "write_v21"]

VERSION = "2.1.0"

#: (output_dtype, blocked, meta y_scale) -> format name and its bit count.
_FORMATS = {("float8e4m3fn", False, False): ("fp8_e4m3", 8),
            ("float8e5m2", False, False): ("fp8_e5m2", 8),
            ("float4e2m1", False, False): ("fp4_e2m1", 4),
            ("float8e4m3fn", True, False): ("mxfp8_e4m3", 8),
            ("float8e5m2", True, False): ("mxfp8_e5m2", 8),
            ("float4e2m1", True, False): ("mxfp4", 4),
            ("float4e2m1", True, True): ("nvfp4", 4)}
_DTYPES = {fmt: key[0] for key, (fmt, _) in _FORMATS.items()}
_BLOCK_SIZES = {"mxfp8_e4m3": 32, "mxfp8_e5m2": 32, "mxfp4": 32, "nvfp4": 16}
_FLOAT_DTYPES = frozenset(_DTYPES.values())


def _fail(where: str, why: str):
    raise _io.EncodingsError(f"{where}: {why}")


def is_v21_error(e: Exception) -> bool:
    """Whether an error of the C reader is its refusal of version 2.1.0 (which this module
    reads)."""
    return getattr(e, "path", None) == "$.version" and f"'{VERSION}'" in str(e)


def _split_lpbq(data: dict) -> tuple[dict, dict]:
    """`data` without its LPBQ entries, and those as raw entries (name -> entry)."""
    rest, lpbq = dict(data), {}
    for section in ("activation_encodings", "param_encodings", "encodings"):
        entries = data.get(section) or {}
        if any(isinstance(e, dict) and e.get("layout") == "lpbq" for e in entries.values()):
            rest[section] = {}
            for name, entry in entries.items():
                if isinstance(entry, dict) and entry.get("layout") == "lpbq":
                    lpbq[name] = _lpbq.raw_entry(entry, f"{section}[{name!r}]")
                else:
                    rest[section][name] = entry
    return rest, lpbq


def write_v21(data: dict, float_entries: dict) -> str:
    """The text of a 2.1.0 file: `data`'s integer entries as 2.0.0 writes them (its float
    entries left out), then `float_entries` (name -> raw entry without ``name``) and `data`'s
    LPBQ entries, one entry per line, in the given order.

    Raises:
        EncodingsError: as :func:`torchqsim.encodings.write_encodings` for 2.0.0, or naming a
            malformed LPBQ entry.
    """
    data, lpbq = _split_lpbq(data)
    doc = json.loads(_io.write_encodings(data, "2.0.0"))
    doc["version"] = VERSION
    doc["encodings"] += [{"name": name, **e} for name, e in {**float_entries, **lpbq}.items()]
    lines = [json.dumps(e, allow_nan=False) for e in doc["encodings"]]
    sep = ",\n        "
    entries = f"[\n        {sep.join(lines)}\n    ]" if lines else "[]"
    top = [f"    {json.dumps(k)}: " + (entries if k == "encodings" else json.dumps(v))
           for k, v in doc.items()]
    return "{\n" + ",\n".join(top) + "\n}\n"


def _check_scales(v, where: str, zero_ok: bool = False) -> None:
    """Nested lists of finite numbers > 0 (NVFP4's E4M3 block scales may be 0: zero_ok)."""
    if isinstance(v, list):
        for i, item in enumerate(v):
            _check_scales(item, f"{where}[{i}]", zero_ok)
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or v < 0 or (v == 0 and not zero_ok):
        _fail(where, f"expected a finite number > 0, got {v!r}")


def _check_float_entry(e: dict, where: str) -> None:
    keys = {"name", "output_dtype", "y_scale", "axis", "block_size"}
    unknown = sorted(set(e) - keys)
    if unknown:
        _fail(f"{where}.{unknown[0]}", f"unknown key; expected {', '.join(sorted(keys))}")
    if not isinstance(e.get("name"), str):
        _fail(f"{where}.name", f"expected a string, got {e.get('name')!r}")
    y = e.get("y_scale")
    if isinstance(y, dict):
        if e["output_dtype"] != "float4e2m1" or set(y) != {"x", "x_scale", "input_dtype"}:
            _fail(f"{where}.y_scale", "a meta encoding needs output_dtype float4e2m1 and keys "
                  "x, x_scale, input_dtype")
        if y["input_dtype"] != "float8e4m3fn":
            _fail(f"{where}.y_scale.input_dtype", f"expected 'float8e4m3fn', got "
                  f"{y['input_dtype']!r}")
        _check_scales(y["x"], f"{where}.y_scale.x", zero_ok=True)
        _check_scales(y["x_scale"], f"{where}.y_scale.x_scale")
    else:
        _check_scales(y, f"{where}.y_scale")
    for key in ("axis", "block_size"):
        if key in e and (isinstance(e[key], bool) or not isinstance(e[key], int)):
            _fail(f"{where}.{key}", f"expected an integer, got {e[key]!r}")


def _is_float(e) -> bool:
    return isinstance(e, dict) and (e.get("output_dtype") in _FLOAT_DTYPES
                                    or isinstance(e.get("y_scale"), dict))


def _is_extra(e) -> bool:
    """Whether a raw entry is one this module reads (float, block format or LPBQ), not 2.0.0's
    C reader."""
    return _is_float(e) or _lpbq.is_lpbq(e)


def read_v21(text: str):
    """Reads a 2.1.0 file: ``(data, float_entries)``, `data` as
    :func:`torchqsim.encodings.read_encodings` gives for the integer entries (its ``version``
    "2.1.0"), `float_entries` name -> raw entry as written (without ``name``).

    Raises:
        EncodingsError: not JSON, another version, or a float entry that breaks the layout above
            (the message names the entry, e.g. ``encodings[2].y_scale.x[0][1]``).
    """
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise _io.EncodingsError(f"not JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        got = doc.get("version") if isinstance(doc, dict) else doc
        _fail("version", f"expected '{VERSION}', got {got!r}")
    entries = doc.get("encodings")
    if not isinstance(entries, list):
        _fail("encodings", "expected a list of entries")
    floats = {}
    for i, e in enumerate(entries):
        if _lpbq.is_lpbq(e):
            _lpbq.check_raw(e, f"encodings[{i}]")
        elif _is_float(e):
            _check_float_entry(e, f"encodings[{i}]")
        if _is_extra(e):
            floats[e["name"]] = {k: v for k, v in e.items() if k != "name"}
    doc = dict(doc, version="2.0.0", encodings=[e for e in entries if not _is_extra(e)])
    data = _io.read_encodings(json.dumps(doc))
    data["version"] = VERSION
    return data, floats


def dict_entry(raw: dict, where: str) -> dict:
    """The encodings-dict form (module docstring) of a checked raw float entry.

    Raises:
        EncodingsError: naming `where`, for a minifloat whose ``y_scale`` is not 1.0 or a block
            entry whose ``block_size`` is not its format's.
    """
    if _lpbq.is_lpbq(raw):
        return _lpbq.dict_entry(raw, where)
    y = raw["y_scale"]
    blocked = "block_size" in raw
    fmt, bits = _FORMATS[(raw["output_dtype"], blocked, isinstance(y, dict))]
    if blocked and raw["block_size"] != _BLOCK_SIZES[fmt]:
        _fail(f"{where}.block_size", f"{fmt} blocks hold {_BLOCK_SIZES[fmt]} elements, got "
              f"{raw['block_size']}")
    if blocked and "axis" not in raw:
        _fail(f"{where}.axis", "a block entry needs its block axis")
    if not blocked and (y != 1.0 or "axis" in raw):
        _fail(f"{where}.y_scale", f"a {raw['output_dtype']} entry without blocks is a plain "
              f"cast: y_scale 1.0 and no axis, got {y!r}")
    return {"dtype": "float", "bitwidth": bits, "format": fmt,
            "scale": y["x"] if isinstance(y, dict) else y,
            "tensor_scale": y["x_scale"] if isinstance(y, dict) else None,
            "axis": raw.get("axis"), "block_size": raw.get("block_size")}


def raw_entry(entry: dict, where: str) -> dict:
    """The raw 2.1.0 entry (without ``name``) of an encodings-dict float entry with a format.

    Raises:
        EncodingsError: naming `where`, for a format 2.1.0 cannot name or a malformed field.
    """
    fmt = entry.get("format")
    if fmt not in _DTYPES:
        _fail(f"{where}.format", f"2.1.0 names {', '.join(_DTYPES)}; got {fmt!r}")
    y = entry.get("scale", 1.0)
    if fmt == "nvfp4":
        y = {"x": y, "x_scale": entry.get("tensor_scale"), "input_dtype": "float8e4m3fn"}
    raw = {"output_dtype": _DTYPES[fmt], "y_scale": y}
    if fmt in _BLOCK_SIZES:
        raw.update(axis=entry.get("axis"), block_size=entry.get("block_size"))
    _check_float_entry(dict(raw, name=""), where)
    dict_entry(raw, where)
    return raw


def read_text(text: str) -> dict:
    """The encodings dict of a 2.1.0 file's text, float entries in the dict form.

    Raises:
        EncodingsError: as :func:`read_v21`, or :func:`dict_entry` (naming ``encodings[i]``).
    """
    data, floats = read_v21(text)
    index = {e.get("name"): i for i, e in enumerate(json.loads(text)["encodings"])
             if isinstance(e, dict)}
    for name, raw in floats.items():
        data["encodings"][name] = dict_entry(raw, f"encodings[{index[name]}]")
    return data


def write_text(data: dict) -> str:
    """The text of a 2.1.0 file holding `data` (an encodings dict): float entries with a format
    as 2.1.0 entries, the others as 2.0.0 writes them (float entries without a format, fp16 and
    bf16, left out as 2.0.0 does).

    Raises:
        EncodingsError: naming the entry (``encodings['w'].format``, ...).
    """
    ints, floats = {}, {}
    for section in ("activation_encodings", "param_encodings", "encodings"):
        for name, entry in (data.get(section) or {}).items():
            if isinstance(entry, dict) and "format" in entry:
                floats[name] = raw_entry(entry, f"{section}[{name!r}]")
            else:
                ints.setdefault(section, {})[name] = entry
    rest = {k: v for k, v in data.items() if k not in ints and k not in
            ("activation_encodings", "param_encodings", "encodings")}
    return write_v21({**rest, **ints}, floats)
