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

import json
import math
import os
import warnings

import torch
from torch import Tensor, nn

from .._atomic import write_files
from ..quantization.param_quantizer import freeze
from ..quantization.quantizer import QuantizeDequantize
from .arguments import check_bitwidth
from .construction import make_quantizer, set_slot

__all__ = ["encodings_dict", "load_encodings", "quantizer_entries", "save_encodings"]


def quantizer_entries(q: nn.Module) -> list[dict]:
    """AIMET 0.6.1 entries of a quantizer (one per channel)."""
    if not isinstance(q, QuantizeDequantize):
        return [{"bitwidth": int(q.bitwidth), "dtype": "float"}]
    enc = q.get_encoding()
    sym = "True" if q.symmetric else "False"
    return [{"bitwidth": q.bitwidth, "dtype": "int", "is_symmetric": sym,
             "max": float(hi), "min": float(lo), "offset": int(q.qmin - zp), "scale": float(s)}
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
    defaults = sim._config["defaults"]
    return {
        "version": "0.6.1",
        "activation_encodings": act,
        "param_encodings": params,
        "excluded_layers": list(sim._excluded),
        "quantizer_args": {
            "activation_bitwidth": sim.default_output_bw, "dtype": sim.default_data_type,
            "is_symmetric": bool(defaults["params"].get("is_symmetric", False)),
            "param_bitwidth": sim.default_param_bw,
            "per_channel_quantization": bool(defaults.get("per_channel_quantization")),
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


def load_encodings(sim, encodings, strict: bool, partial: bool, frozen: bool) -> None:
    """``QuantizationSimModel.load_encodings`` (arguments and errors documented there); its
    warnings point at the caller of that method."""
    if not isinstance(encodings, (dict, str, os.PathLike)):
        raise TypeError(f"load_encodings: encodings must be a dict or a path, got "
                        f"{type(encodings).__name__}")
    if not isinstance(encodings, dict):
        with open(os.fspath(encodings)) as f:
            encodings = _mapping(json.load(f), "the encodings file")
    loaded: set = set()
    problems = []
    for key, entries, where in _entries(encodings):
        problem = _load_entry(sim, key, entries, where, frozen)
        problems += [problem] if problem else []
        loaded.add(key)
    if problems and strict:
        raise RuntimeError("load_encodings: " + "; ".join(problems))
    for p in problems:
        warnings.warn(f"load_encodings: skipped {p}", stacklevel=3)
    if not partial:
        for name, spec in sim._specs.items():
            for kind, key, slot in spec.slots():
                if slot.enabled and (name, kind, key) not in loaded:
                    slot.enabled = False
                    set_slot(sim, name, kind, key, None)


def _load_entry(sim, key, entries: list, where: str, frozen: bool) -> str | None:
    """Loads one slot's entries; returns why it cannot (None when loaded)."""
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
    entries = [_check_entry(e, f"{where}[{i}]" if kind == "param" else where)
               for i, e in enumerate(entries)]
    first = entries[0]
    module = sim.model.get_submodule(name)
    if first["dtype"] == "float":
        slot.dtype, slot.bitwidth = "float", check_bitwidth(f"{where}.bitwidth",
                                                              first["bitwidth"], "float")
        set_slot(sim, name, kind, k, make_quantizer(sim, module, kind, k, slot))
        return None
    slot.dtype, slot.bitwidth = "int", check_bitwidth(f"{where}.bitwidth",
                                                      first["bitwidth"], "int")
    if slot.symmetric != first["is_symmetric"]:
        slot.symmetric, slot.strict, slot.unsigned = first["is_symmetric"], False, False
    if kind == "param":
        param = getattr(module, k)
        axis = module.param_channel_axis(k)
        if len(entries) > 1 and (param.dim() <= axis or param.shape[axis] != len(entries)):
            raise ValueError(f"{where}: {len(entries)} per-channel entries do not match "
                             f"parameter shape {tuple(param.shape)}")
        slot.channel_axis = axis if len(entries) > 1 else None
    q = make_quantizer(sim, module, kind, k, slot)
    lo, hi = _entry_range(entries, q.qmin, q.qmax, where)
    with torch.no_grad():
        q._set(lo, hi)
    if frozen:
        freeze(q)
    set_slot(sim, name, kind, k, q)
    return None
def _mapping(value, where: str) -> dict:
    """`value` when it is a JSON object, {} for null; else a ValueError naming `where`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"load_encodings: {where}: expected a JSON object, got "
                         f"{type(value).__name__}")
    return value


def _bool(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("True", "False"):
        return value == "True"
    raise ValueError(f"{where}: expected true/false or 'True'/'False', got {value!r}")


def _check_entry(entry, where: str) -> dict:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an encoding object, got {type(entry).__name__}")
    dtype = entry.get("dtype", "int")
    if dtype not in ("int", "float"):
        raise ValueError(f"{where}.dtype: expected 'int' or 'float', got {dtype!r}")
    if "bitwidth" not in entry:
        raise ValueError(f"{where}: missing 'bitwidth'")
    out = {"dtype": dtype, "bitwidth": entry["bitwidth"]}
    if dtype == "float":
        return out
    for key in ("scale", "offset"):
        if key not in entry and not ("min" in entry and "max" in entry):
            raise ValueError(f"{where}: missing {key!r} (or min/max)")
    out["is_symmetric"] = _bool(entry.get("is_symmetric", False), f"{where}.is_symmetric")
    for key in ("scale", "offset", "min", "max"):
        if key in entry:
            if isinstance(entry[key], bool) or not isinstance(entry[key], (int, float)) or \
                    not math.isfinite(entry[key]):
                raise ValueError(f"{where}.{key}: expected a finite number, got {entry[key]!r}")
            out[key] = entry[key]
    if "scale" in out and out["scale"] <= 0:
        raise ValueError(f"{where}.scale: must be > 0, got {out['scale']!r}")
    return out


def _entry_range(entries: list[dict], qmin: int, qmax: int, where: str) -> tuple[Tensor, Tensor]:
    """Per-channel (min, max) of entries: their min/max when given, else from scale/offset."""
    lo, hi = [], []
    for i, e in enumerate(entries):
        if "min" in e and "max" in e:
            lo.append(e["min"])
            hi.append(e["max"])
            continue
        off = int(e["offset"])
        if not -(qmax - qmin) <= off <= 0:
            raise ValueError(f"{where}[{i}].offset: {off} is outside the grid of "
                             f"{qmax - qmin + 1} levels")
        s = torch.tensor(e["scale"], dtype=torch.float32)
        lo.append(float(s * off))
        hi.append(float(s * (off + qmax - qmin)))
    return (torch.tensor(lo, dtype=torch.float32), torch.tensor(hi, dtype=torch.float32))
