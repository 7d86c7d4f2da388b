"""AIMET encodings 2.1.0: the 2.0.0 integer entries plus float and block-format entries.

Version 2.1.0 (AIMET's encoding spec) keeps 2.0.0's layout (``{"version", "producer",
"encodings": [entry, ...]}``, entries in ONNX ``QuantizeLinear`` terms) and lets an entry's
``output_dtype`` be a float type. torchqsim writes (docs/formats.md §4):

- a minifloat quantizer (:class:`~torchqsim.quantization.FloatQuantizeDequantize`, no scale):
  ``{"name", "output_dtype": "float8e4m3fn" | "float8e5m2" | "float4e2m1", "y_scale": 1.0}``;
- an MX weight (:class:`~torchqsim.quantization.BlockFloatQuantizeDequantize`): the element type
  (``float8e4m3fn``, ``float8e5m2``, ``float4e2m1``; MXINT8: ``int8`` with its scale ``2^k / 64``)
  and its E8M0 block scales as their fp32 powers of two, nested like a 2.0.0 per-block
  ``y_scale`` (the weight's shape with the block axis divided into blocks), ``axis`` and
  ``block_size`` 32;
- an NVFP4 weight: ``output_dtype`` ``float4e2m1`` whose ``y_scale`` is itself an encoding,
  ``{"x": E4M3 block scales (nested), "x_scale": d, "input_dtype": "float8e4m3fn"}`` (the block
  scale is ``x * x_scale``), ``axis`` and ``block_size`` 16.

Left out (as 2.0.0 leaves out fp16/bf16): fp16/bf16 casts; formats with no ``output_dtype`` in
2.1.0 (FP6 e3m2/e2m3 and MXFP6, the fnuz float8 types); block-format activations, whose block
scales depend on each input, so a file cannot hold them.

Integer entries are written and read by the C codec as 2.0.0 (:mod:`torchqsim.encodings`); this
module adds the float entries to that text and takes them out again when reading.

Example::

    >>> import torch
    >>> from torchqsim.quantization import FloatQuantizeDequantize
    >>> float_entry(FloatQuantizeDequantize(torch.float8_e4m3fn), None)
    {'output_dtype': 'float8e4m3fn', 'y_scale': 1.0}
"""

import json
import math

import torch

from .. import encodings as enc_io
from ..float_formats import FLOAT_FORMATS, nvfp4_tensor_scale
from ..quantization.block_float_quantizer import BlockFloatQuantizeDequantize
from ..quantization.float_quantizer import FloatQuantizeDequantize

__all__ = ["VERSION", "block_scales", "float_entries", "float_entry", "read_v21", "write_v21"]

VERSION = "2.1.0"

#: format -> 2.1.0 output_dtype, for the formats 2.1.0 can name.
_MINIFLOAT_DTYPES = {"fp8_e4m3": "float8e4m3fn", "fp8_e5m2": "float8e5m2",
                     "fp4_e2m1": "float4e2m1"}
_BLOCK_DTYPES = {"mxfp8_e4m3": "float8e4m3fn", "mxfp8_e5m2": "float8e5m2",
                 "mxfp4": "float4e2m1", "mxint8": "int8", "nvfp4": "float4e2m1"}
#: MX element formats -> exponent of their largest power of two (OCP MX v1.0 §6.3).
_MX_EMAX = {"mxfp8_e4m3": 8, "mxfp8_e5m2": 15, "mxfp4": 2, "mxint8": 0}
_FLOAT_DTYPES = frozenset(_MINIFLOAT_DTYPES.values())


def _blocks(w: torch.Tensor, axis: int, block: int) -> torch.Tensor:
    """|w| as [..., n_blocks, block] along `axis` (moved last; the last block zero-padded)."""
    a = w.detach().float().abs().movedim(axis, -1)
    pad = -a.shape[-1] % block
    return torch.nn.functional.pad(a, (0, pad)).unflatten(-1, (-1, block))


def block_scales(q: BlockFloatQuantizeDequantize, w: torch.Tensor):
    """The block scales `q` uses on the weight `w`: ``(scales, None)`` for MX (fp32 powers of
    two; MXINT8's divided by 64), ``(e4m3_codes_as_fp32, d)`` for NVFP4 (block scale =
    ``x * d``); scales shaped as `w` with the block axis counted in blocks.

    Raises:
        ValueError: a block holding NaN or Inf (its E8M0 scale is NaN: no file can hold it).
    """
    axis = q.axis % w.dim()
    amax = _blocks(w, axis, q.block_size).amax(-1)
    if not bool(torch.isfinite(amax).all()):
        raise ValueError("the weight holds NaN or Inf: its block scale is NaN")
    if q.format_name == "nvfp4":
        d = q.tensor_scale if q.tensor_scale is not None else nvfp4_tensor_scale(amax.max())
        d = d.float()
        x = (amax / 6 / d).to(torch.float8_e4m3fn).float()
        return x.movedim(-1, axis), float(d)
    exponent = torch.frexp(amax).exponent - 1  # floor(log2 A), exact (A = m 2^e, m in [.5, 1))
    k = torch.where(amax > 0, exponent - _MX_EMAX[q.format_name], -127).clamp(min=-127)
    scale = torch.exp2(k.float())
    if q.format_name == "mxint8":
        scale = scale / 64
    return scale.movedim(-1, axis), None


def float_entry(q, w):
    """The 2.1.0 entry (without ``name``) of a float or block quantizer applied to `w` (the
    parameter, or None for an activation), or None when 2.1.0 has no form for it (module
    docstring)."""
    if isinstance(q, FloatQuantizeDequantize):
        dtype = _MINIFLOAT_DTYPES.get(q.format_name)
        return None if dtype is None else {"output_dtype": dtype, "y_scale": 1.0}
    if not isinstance(q, BlockFloatQuantizeDequantize) or w is None:
        return None
    dtype = _BLOCK_DTYPES.get(q.format_name)
    if dtype is None:
        return None
    scales, d = block_scales(q, w)
    y_scale = scales.tolist() if d is None else {"x": scales.tolist(), "x_scale": d,
                                                  "input_dtype": "float8e4m3fn"}
    return {"output_dtype": dtype, "y_scale": y_scale, "axis": q.axis % w.dim(),
            "block_size": q.block_size}


def float_entries(model, slots, names: dict) -> dict:
    """ONNX name -> 2.1.0 float entry of the slots (:mod:`.quantizer_slots`) the export reached
    (``names``: slot index -> ONNX tensor name) that 2.1.0 can express.

    Raises:
        ValueError: naming the quantizer, a weight whose block scale is NaN.
    """
    out = {}
    for i, slot in enumerate(slots):
        if i not in names:
            continue
        w = getattr(model.get_submodule(slot.module_name), slot.key) if slot.kind == "param" \
            else None
        try:
            entry = float_entry(slot.quantizer, w)
        except ValueError as e:
            raise ValueError(f"quantizer {slot.path!r}: {e}") from e
        if entry is not None:
            out[names[i]] = entry
    return out


def write_v21(data: dict, float_entries: dict) -> str:
    """The text of a 2.1.0 file: `data`'s integer entries as 2.0.0 writes them (its float
    entries left out), then `float_entries` (name -> entry of :func:`float_entry`), one entry per
    line, in the given order.

    Raises:
        EncodingsError: as :func:`torchqsim.encodings.write_encodings` for 2.0.0.
    """
    doc = json.loads(enc_io.write_encodings(data, "2.0.0"))
    doc["version"] = VERSION
    doc["encodings"] += [{"name": name, **e} for name, e in float_entries.items()]
    lines = [json.dumps(e, allow_nan=False) for e in doc["encodings"]]
    sep = ",\n        "
    entries = f"[\n        {sep.join(lines)}\n    ]" if lines else "[]"
    top = [f"    {json.dumps(k)}: " + (entries if k == "encodings" else json.dumps(v))
           for k, v in doc.items()]
    return "{\n" + ",\n".join(top) + "\n}\n"


def _fail(where: str, why: str):
    raise enc_io.EncodingsError(f"{where}: {why}")


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


def read_v21(text: str):
    """Reads a 2.1.0 file: ``(data, float_entries)``, `data` as
    :func:`torchqsim.encodings.read_encodings` gives for the integer entries (its ``version``
    "2.1.0"), `float_entries` name -> entry as written (MXINT8 block entries among them).

    Raises:
        EncodingsError: not JSON, another version, or a float entry that breaks the layout above
            (the message names the entry, e.g. ``encodings[2].y_scale.x[0][1]``).
    """
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise enc_io.EncodingsError(f"not JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        got = doc.get("version") if isinstance(doc, dict) else doc
        _fail("version", f"expected '{VERSION}', got {got!r}")
    entries = doc.get("encodings")
    if not isinstance(entries, list):
        _fail("encodings", "expected a list of entries")
    floats = {}
    for i, e in enumerate(entries):
        if _is_float(e):
            _check_float_entry(e, f"encodings[{i}]")
            floats[e["name"]] = {k: v for k, v in e.items() if k != "name"}
    doc = dict(doc, version="2.0.0", encodings=[e for e in entries if not _is_float(e)])
    data = enc_io.read_encodings(json.dumps(doc))
    data["version"] = VERSION
    return data, floats
