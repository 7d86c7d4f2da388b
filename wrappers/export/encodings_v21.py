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

This module builds the entries from the quantizers; the text is written and read by
:mod:`torchqsim.encodings_v21` (``write_v21`` / ``read_v21``, re-exported here), which
:func:`torchqsim.encodings.read_encodings` and ``convert`` use for 2.1.0 files.

Example::

    >>> import torch
    >>> from torchqsim.quantization import FloatQuantizeDequantize
    >>> float_entry(FloatQuantizeDequantize(torch.float8_e4m3fn), None)
    {'output_dtype': 'float8e4m3fn', 'y_scale': 1.0}
"""

import math

import torch

from ..encodings_v21 import VERSION, read_v21, write_v21
from ..float_formats import nvfp4_tensor_scale
from ..quantization.block_float_quantizer import BlockFloatQuantizeDequantize
from ..quantization.float_quantizer import FloatQuantizeDequantize

__all__ = ["VERSION", "block_scales", "check_loaded", "float_entries", "float_entry",
           "mxint8_entry", "read_v21", "sim_channels", "write_v21"]

#: format -> 2.1.0 output_dtype, for the formats 2.1.0 can name.
_MINIFLOAT_DTYPES = {"fp8_e4m3": "float8e4m3fn", "fp8_e5m2": "float8e5m2",
                     "fp4_e2m1": "float4e2m1"}
_BLOCK_DTYPES = {"mxfp8_e4m3": "float8e4m3fn", "mxfp8_e5m2": "float8e5m2",
                 "mxfp4": "float4e2m1", "mxint8": "int8", "nvfp4": "float4e2m1"}
#: MX element formats -> exponent of their largest power of two (OCP MX v1.0 §6.3).
_MX_EMAX = {"mxfp8_e4m3": 8, "mxfp8_e5m2": 15, "mxfp4": 2, "mxint8": 0}


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


def _nvfp4_amax(d: float, where: str) -> float:
    """The fp32 amax whose tensor scale ``amax / 2688`` (``nvfp4_tensor_scale``) is `d` bit for
    bit (a 2.1.0 ``x_scale``); ValueError naming `where` when no fp32 amax gives it."""
    target = torch.tensor(d, dtype=torch.float32)
    amax = target * (448.0 * 6.0)
    for _ in range(4):
        got = nvfp4_tensor_scale(amax)
        if torch.equal(got, target):
            return float(amax)
        amax = torch.nextafter(amax, amax * 2 if got < target else amax / 2)
    raise ValueError(f"{where}.y_scale.x_scale: {d!r} is no NVFP4 tensor scale amax / 2688 of an "
                     f"fp32 amax")


def sim_channels(entry: dict, where: str) -> list:
    """The ``_torch.encodings`` channel list that ``sim.load_encodings`` builds a quantizer from,
    for a 2.1.0 float entry in the encodings-dict form (:mod:`torchqsim.encodings_v21`): the
    format, and for NVFP4 the ``amax`` whose tensor scale is the entry's ``x_scale`` bit for bit.

    Raises:
        ValueError: naming `where`, an ``x_scale`` no fp32 amax gives.

    Example::

        >>> sim_channels({"dtype": "float", "bitwidth": 8, "format": "fp8_e4m3", "scale": 1.0,
        ...               "tensor_scale": None, "axis": None, "block_size": None}, "e")
        [{'bitwidth': 8, 'dtype': 'float', 'format': 'fp8_e4m3'}]
    """
    out = {"bitwidth": entry["bitwidth"], "dtype": "float", "format": entry["format"]}
    if entry["format"] == "nvfp4":
        out["amax"] = _nvfp4_amax(entry["tensor_scale"], where)
    return [out]


def check_loaded(q, w: torch.Tensor, entry: dict, where: str) -> None:
    """Checks that the block quantizer `q` loaded from a 2.1.0 weight entry reproduces the file:
    its block axis is the entry's and the block scales it computes from the weight `w` are the
    entry's (the simulation derives them from the weight, so a file written for other weights
    cannot load).

    Raises:
        ValueError: naming `where` and the first differing scale.
    """
    axis = q.axis % w.dim()
    if entry["axis"] != axis:
        raise ValueError(f"{where}.axis: the sim blocks axis {axis} of this weight, the file "
                         f"axis {entry['axis']}")
    scales, d = block_scales(q, w)
    if d != entry["tensor_scale"]:
        raise ValueError(f"{where}.y_scale.x_scale: {entry['tensor_scale']!r}, the sim's {d!r}")
    want = torch.tensor(entry["scale"], dtype=torch.float32)
    if want.shape != scales.shape or not torch.equal(want, scales):
        bad = (want != scales).nonzero()[0].tolist() if want.shape == scales.shape else []
        raise ValueError(f"{where}.y_scale{''.join(f'[{i}]' for i in bad)}: the block scales "
                         f"differ from those of the weight in the sim (shape "
                         f"{tuple(want.shape)}, the sim's {tuple(scales.shape)})")


def _mx_power(s) -> bool:
    """Whether `s` is an MXINT8 element step 2^k / 64 with k in [-127, 127]."""
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not s > 0 or math.isinf(s):
        return False
    mantissa, e = math.frexp(s * 64)
    return mantissa == 0.5 and -127 <= e - 1 <= 127


def mxint8_entry(entry: dict, shape) -> dict | None:
    """The encodings-dict float form (:mod:`torchqsim.encodings_v21`) of an MXINT8 weight entry
    as 2.1.0 writes it, a 2.0.0 per-block int8 entry (module docstring), for a weight of `shape`:
    signed 8-bit, symmetric (offset -128), blocks of 32, every scale ``2^k / 64`` with k in
    [-127, 127] and as many as the weight has blocks (nested as :func:`block_scales` gives them);
    None for any other entry (a plain per-block integer entry).

    Example::

        >>> e = {"dtype": "int", "bitwidth": 8, "layout": "per_block", "is_symmetric": True,
        ...      "scale": [1 / 64, 2 / 64], "offset": [-128, -128], "axis": 1, "block_size": 32}
        >>> mxint8_entry(e, (2, 20))["scale"]
        [[0.015625], [0.03125]]
    """
    if entry.get("dtype") != "int" or entry.get("layout") != "per_block" or \
            entry.get("bitwidth") != 8 or entry.get("block_size") != 32 or \
            not all(o == -128 for o in entry.get("offset", ())):
        return None
    axis, scales = entry.get("axis"), entry.get("scale", [])
    if not isinstance(axis, int) or not 0 <= axis < len(shape):
        return None
    blocked = [-(-n // 32) if d == axis else n for d, n in enumerate(shape)]
    if len(scales) != math.prod(blocked) or not all(_mx_power(s) for s in scales):
        return None
    nested = torch.tensor(scales, dtype=torch.float32).reshape(blocked).tolist()
    return {"dtype": "float", "bitwidth": 8, "format": "mxint8", "scale": nested,
            "tensor_scale": None, "axis": axis, "block_size": 32}
