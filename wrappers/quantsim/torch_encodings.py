"""The sim's ``_torch.encodings`` file: AIMET 0.6.1 entries keyed by module names, written by
``QuantizationSimModel.quantizer_encodings_dict`` / ``save_encodings_to_json`` and read by
``QuantizationSimModel.load_encodings`` (AIMET 0.6.1 files from aimet-torch read too).

Example::

    >>> from torchqsim.quantization.quantizer import QuantizeDequantize
    >>> q = QuantizeDequantize((), 8, False)
    >>> q.set_range(torch.tensor(-1.28), torch.tensor(1.27))
    >>> entry = quantizer_entries(q)[0]
    >>> entry["dtype"], entry["is_symmetric"], entry["offset"]
    ('int', 'False', -128)
"""

import dataclasses
import json
import math
import os
import warnings

import torch
from torch import Tensor, nn

from .._atomic import write_files
from .._io import EncodingsError
from ..encoding_codec import aimet_bool_text, aimet_offset, channels_to_entry
from ..float_formats import BLOCK_FORMATS, FLOAT_FORMATS, is_format
from ..quantization.param_quantizer import freeze
from ..quantization.quantizer import QuantizeDequantize
from .arguments import check_bitwidth
from .block_encodings import is_block_channels, plan_block_entry, quantizer_block_entries
from .construction import make_quantizer, set_slot
from .onnx_encodings import is_onnx_keyed, onnx_entries
from .propagation import tie_loaded

__all__ = ["encodings_dict", "load_encodings", "quantizer_entries", "save_encodings"]


def quantizer_entries(q: nn.Module) -> list[dict]:
    """AIMET 0.6.1 entries of a quantizer (one per channel). A narrow float format adds its name
    (``"format": "fp8_e4m3"``, ``"mxfp4"``, ...) to AIMET's ``{"bitwidth", "dtype": "float"}``,
    and a calibrated NVFP4 quantizer its largest magnitude (``"amax"``, which gives the tensor
    scale), so that ``load_encodings`` rebuilds the same quantizer."""
    if getattr(q, "block_axis", None) is not None:
        return quantizer_block_entries(q)
    if not isinstance(q, QuantizeDequantize):
        entry = {"bitwidth": int(q.bitwidth), "dtype": "float"}
        if is_format(getattr(q, "format_name", None)):
            entry["format"] = q.format_name
        if getattr(q, "tensor_scale", None) is not None:
            entry["amax"] = float(q.amax)
        return [entry]
    enc = q.get_encoding()
    sym = aimet_bool_text(q.symmetric)
    return [{"bitwidth": q.bitwidth, "dtype": "int", "is_symmetric": sym,
             "max": float(hi), "min": float(lo), "offset": aimet_offset(q.qmin, zp), "scale": float(s)}
            for lo, hi, zp, s in zip(enc.min.flatten().tolist(), enc.max.flatten().tolist(),
                                     enc.zero_point.flatten().tolist(),
                                     enc.scale.flatten().tolist())]


def encodings_dict(sim) -> dict:
    """``QuantizationSimModel.quantizer_encodings_dict`` (the layout is documented there)."""
    act, params = {}, {}
    for name, module in sim.named_qmodules():
        for kind, slots in (("input", module.input_quantizers),
                            ("output", module.output_quantizers)):
            for i, q in enumerate(slots):
                if q is not None and q.is_initialized():
                    act.setdefault(name, {}).setdefault(kind, {})[str(i)] = quantizer_entries(q)[0]
        for pname, q in module.param_quantizers.items():
            if q is not None and q.is_initialized():
                params[f"{name}.{pname}"] = quantizer_entries(q)
    defaults = sim._config.defaults
    return {
        "version": "0.6.1",
        "activation_encodings": act,
        "param_encodings": params,
        "excluded_layers": list(sim._excluded),
        "quantizer_args": {
            "activation_bitwidth": sim.default_output_bw, "dtype": sim.default_data_type,
            "is_symmetric": bool(defaults.params.is_symmetric),
            "param_bitwidth": sim.default_param_bw,
            "per_channel_quantization": defaults.per_channel_quantization,
            "quant_scheme": sim.quant_scheme.aimet_name},
    }


def save_encodings(sim, path, filename_prefix: str) -> str:
    """Writes :func:`encodings_dict` to ``{path}/{filename_prefix}_torch.encodings``
    atomically; returns the file path."""
    name = f"{filename_prefix}_torch.encodings"
    text = json.dumps(encodings_dict(sim), indent=2, sort_keys=True)
    write_files(os.fspath(path), {name: text.encode()})
    return os.path.join(os.fspath(path), name)


def _entries(encodings: dict):
    """``(slot key, [entry, ...], JSON path)`` for every entry of an encodings dict; the key is
    ``(module, kind, index or parameter name)``, None for a non-numeric activation index."""
    acts = _mapping(encodings.get("activation_encodings"), "activation_encodings")
    for mname, kinds in acts.items():
        kinds = _mapping(kinds, f"activation_encodings[{mname!r}]")
        for kind, entries in kinds.items():
            entries = _mapping(entries, f"activation_encodings[{mname!r}][{kind!r}]")
            for idx, entry in entries.items():
                where = f"activation_encodings[{mname!r}][{kind!r}][{idx!r}]"
                yield (mname, kind, int(idx)) if str(idx).isdigit() else None, [entry], where
    for pname, entries in _mapping(encodings.get("param_encodings"), "param_encodings").items():
        mname, _, param = pname.rpartition(".")
        entries = entries if isinstance(entries, list) else [entries]
        yield (mname, "param", param), entries, f"param_encodings[{pname!r}]"


def _read(path) -> dict:
    """The JSON file at `path` as a dict; ValueError naming the file for text that is not JSON
    (deep nesting included) or not an object."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise ValueError(f"load_encodings: {path}: not a JSON encodings file: {why}") from None
    return _mapping(data, f"{path}: the encodings file")


def load_encodings(sim, encodings, strict: bool, partial: bool, frozen: bool,
                   onnx_model=None) -> None:
    """``QuantizationSimModel.load_encodings`` (arguments and errors documented there); its
    warnings point at the caller of that method. All or nothing: every entry is checked and its
    quantizer built first; the sim changes only when all of them are good."""
    if not isinstance(encodings, (dict, str, os.PathLike)):
        raise TypeError(f"load_encodings: encodings must be a dict or a path, got "
                        f"{type(encodings).__name__}")
    source = None if isinstance(encodings, dict) else os.fspath(encodings)
    data = encodings if source is None else _read(source)
    loads, problems, loaded = [], [], set()
    try:
        if is_onnx_keyed(data):
            found, problems = onnx_entries(sim, encodings, source, onnx_model)
        else:
            found = _entries(data)
        for key, entries, where in found:
            outcome = _plan_entry(sim, key, entries, where)
            (problems if isinstance(outcome, str) else loads).append(outcome)
            loaded.add(key)
    except (ValueError, EncodingsError) as e:
        raise ValueError(f"load_encodings: {source + ': ' if source else ''}{e}") from None
    if problems and strict:
        raise RuntimeError("load_encodings: " + "; ".join(problems))
    for p in problems:
        warnings.warn(f"load_encodings: skipped {p}", stacklevel=3)
    for slot, spec, name, kind, k, q in loads:
        vars(slot).update(vars(spec))
        if frozen and isinstance(q, QuantizeDequantize):
            freeze(q)
        set_slot(sim, name, kind, k, q)
    loaded = tie_loaded(sim, [load[2:5] for load in loads]) | loaded
    if not partial:
        for name, spec in sim._specs.items():
            for kind, key, slot in spec.slots():
                if slot.enabled and (name, kind, key) not in loaded:
                    slot.enabled = False
                    set_slot(sim, name, kind, key, None)


def _plan_entry(sim, key, entries, where: str):
    """Checks one slot's entries and builds its quantizer, changing nothing: (slot, new spec,
    module name, kind, key, quantizer), or why the entry names no enabled slot (a str)."""
    if key is None or key[0] not in sim._specs:
        return f"{where}: no quantized module {key[0] if key else '?'!r} in the sim"
    name, kind, k = key
    spec = sim._specs[name]
    slots = spec.params if kind == "param" else \
        {"input": dict(enumerate(spec.inputs)), "output": dict(enumerate(spec.outputs))}.get(kind)
    if slots is None or k not in slots:
        return f"{where}: module {name!r} has no {kind} slot {k!r}"
    slot = slots[k]
    if not slot.enabled:
        return f"{where}: the {kind} quantizer {k!r} of {name!r} is disabled in this sim"
    if is_block_channels(entries):
        return plan_block_entry(sim, key, slot, entries[0], where)
    fmt, amax, entries = _format_keys(entries, where)
    entry = channels_to_entry(entries, where)
    module = sim.model.get_submodule(name)
    dtype = fmt or entry["dtype"]
    new = dataclasses.replace(slot, dtype=dtype, bitwidth=check_bitwidth(
        f"{where}.bitwidth", entry["bitwidth"], dtype))
    if entry["dtype"] == "float":
        q = make_quantizer(sim, module, kind, k, new)
        if amax is not None:
            q.amax.fill_(amax)
            q._calibrated = True
        return slot, new, name, kind, k, q
    if slot.symmetric != entry["is_symmetric"]:
        new.symmetric, new.strict, new.unsigned = entry["is_symmetric"], False, False
    n = len(entry["scale"])
    if kind == "param":
        param = getattr(module, k)
        axis = module.param_channel_axis(k)
        if n > 1 and (param.dim() <= axis or param.shape[axis] != n):
            raise ValueError(f"{where}: {n} per-channel entries do not match parameter shape "
                             f"{tuple(param.shape)}")
        new.channel_axis = axis if n > 1 else None
    q = make_quantizer(sim, module, kind, k, new)
    lo, hi = entry_range(entry, q.qmin, q.qmax)
    with torch.no_grad():
        q._set(lo, hi)
    return slot, new, name, kind, k, q


def _format_keys(entries: list, where: str):
    """``(format name or None, NVFP4 amax or None, entries without those keys)``, checked: the
    format a name of torchqsim.float_formats on a float entry, amax a finite number >= 0 of an
    nvfp4 entry; ValueError naming the field otherwise."""
    first = entries[0] if entries and isinstance(entries[0], dict) else {}
    if "format" not in first and "amax" not in first:
        return None, None, entries
    fmt, amax = first.get("format"), first.get("amax")
    if len(entries) != 1 or first.get("dtype") != "float":
        raise ValueError(f"{where}: 'format' and 'amax' belong to one float entry")
    if not is_format(fmt):
        raise ValueError(f"{where}.format: unknown format {fmt!r}; expected one of "
                         f"{', '.join(list(FLOAT_FORMATS) + list(BLOCK_FORMATS))}")
    if amax is not None and (fmt != "nvfp4" or isinstance(amax, bool) or
                             not isinstance(amax, (int, float)) or
                             not (math.isfinite(amax) and amax >= 0)):
        raise ValueError(f"{where}.amax: a finite number >= 0 of an nvfp4 entry, got {amax!r}")
    rest = {key: v for key, v in first.items() if key not in ("format", "amax")}
    return fmt, amax, [rest]


def _mapping(value, where: str) -> dict:
    """`value` when it is a JSON object, {} for null; else a ValueError naming `where`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"load_encodings: {where}: expected a JSON object, got "
                         f"{type(value).__name__}")
    return value


def entry_range(entry: dict, qmin: int, qmax: int) -> tuple[Tensor, Tensor]:
    """Per-channel (min, max) of a checked entry: its min/max when recorded, else AIMET's
    ``scale * offset`` and ``scale * (offset + qmax - qmin)`` in fp32; max then moved by a few
    ulps where needed so that the quantizer's ``(max - min) / (qmax - qmin)`` is the entry's
    scale bit for bit."""
    s = torch.tensor(entry["scale"], dtype=torch.float32)
    if entry["min"] is not None and entry["max"] is not None:
        lo = torch.tensor(entry["min"], dtype=torch.float32)
        hi = torch.tensor(entry["max"], dtype=torch.float32)
    else:
        off = torch.tensor(entry["offset"], dtype=torch.float32)
        lo, hi = s * off, s * (off + (qmax - qmin))
    for _ in range(8):
        got = (hi - lo) / (qmax - qmin)
        if torch.equal(got, s):
            break
        hi = torch.where(got < s, torch.nextafter(hi, hi + s), torch.where(
            got > s, torch.nextafter(hi, hi - s), hi))
    return lo, hi
