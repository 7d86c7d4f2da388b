"""Blockwise and LPBQ weight encodings in and out of a sim (``load_encodings``,
``quantizer_encodings_dict``).

Files keep a blockwise weight encoding as one entry for the whole tensor, not one per channel,
so the sim's internal channel lists (``_torch.encodings``) carry it as a single dict holding
the whole encoding::

    {"bitwidth": 4, "dtype": "int", "is_symmetric": "True", "block_size": 32, "axis": 1,
     "scale": nested, "offset": nested}                                  # blockwise integer
    {"bitwidth": 4, "dtype": "int", "is_symmetric": "True", "block_size": 32, "axis": 1,
     "decompressed_bw": 8, "per_block_int_scale": nested, "per_channel_scale": nested}   # LPBQ

nested in the quantizer's encoding shape (the weight's shape with the blocked axis counted in
blocks and ones over kernel taps). ``{prefix}.encodings`` files hold AIMET's 2.0.0 per-block
entries and 2.1.0 LPBQ entries (:mod:`torchqsim.encodings_lpbq`); :func:`block_channels`
converts their dict form. An LPBQ entry of a file does not record ``decompressed_bw``: it is
``bitwidth + ceil(log2(largest integer scale))`` (AIMET's calibration always reaches
``2^(decompressed_bw - bitwidth)``).

Example::

    >>> block_channels({"dtype": "int", "bitwidth": 4, "layout": "lpbq", "axis": 1,
    ...                 "block_size": 2, "per_block_int_scale": [[16, 3]],
    ...                 "per_channel_scale": [[0.5]]}, "e")[0]["decompressed_bw"]
    8
"""

import dataclasses
import math

import torch

from ..encoding_codec import aimet_bool_text, aimet_offset
from ..quantization.lpbq_quantizer import LpbqQuantizeDequantize
from .construction import make_quantizer

__all__ = ["block_channels", "is_block_channels", "plan_block_entry", "quantizer_block_entries"]


def is_block_channels(entries) -> bool:
    """Whether a channel list is the one-dict form of a blockwise encoding."""
    return isinstance(entries, list) and len(entries) == 1 and isinstance(entries[0], dict) \
        and "block_size" in entries[0]


def _nested(values, shape) -> list:
    return torch.tensor(values, dtype=torch.float64).reshape(shape).tolist()


def block_channels(entry: dict, where: str) -> list:
    """The one-dict channel list of an encodings-dict ``per_block`` or ``lpbq`` entry."""
    common = {"bitwidth": entry["bitwidth"], "dtype": "int", "block_size": entry["block_size"],
              "axis": entry["axis"]}
    if entry["layout"] == "lpbq":
        top = max(v for v in torch.tensor(entry["per_block_int_scale"]).flatten().tolist())
        return [dict(common, is_symmetric="True",
                     decompressed_bw=entry["bitwidth"] + max(1, math.ceil(math.log2(top))),
                     per_block_int_scale=entry["per_block_int_scale"],
                     per_channel_scale=entry["per_channel_scale"])]
    shape = entry.get("scale_shape") or [len(entry["scale"])]
    return [dict(common, is_symmetric=aimet_bool_text(entry.get("is_symmetric", True)),
                 scale=_nested(entry["scale"], shape),
                 offset=torch.tensor(entry["offset"]).reshape(shape).tolist())]


def quantizer_block_entries(q) -> list:
    """The one-dict channel list of a blockwise (or LPBQ) weight quantizer."""
    axis = q.block_axis
    common = {"bitwidth": q.bitwidth, "dtype": "int", "is_symmetric": aimet_bool_text(q.symmetric),
              "axis": axis, "block_size": q.block_size[axis]}
    if isinstance(q, LpbqQuantizeDequantize):
        return [dict(common, decompressed_bw=q.decompressed_bw,
                     per_block_int_scale=q.per_block_int_scale.to(torch.int64).tolist(),
                     per_channel_scale=q.per_channel_scale.tolist())]
    enc = q.get_encoding()
    offsets = [aimet_offset(q.qmin, z) for z in enc.zero_point.flatten().tolist()]
    return [dict(common, scale=enc.scale.tolist(),
                 offset=torch.tensor(offsets).reshape(q.shape).tolist())]


def _bool(v, where: str) -> bool:
    if v in (True, "True"):
        return True
    if v in (False, "False"):
        return False
    raise ValueError(f"{where}.is_symmetric: expected True or False, got {v!r}")


def _int(v, where: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{where}: expected an integer >= {lo}, got {v!r}")
    return v


def plan_block_entry(sim, key, slot, entry: dict, where: str):
    """(slot, new spec, module name, kind, key, quantizer) for a blockwise entry of weight slot
    `key` (:func:`torchqsim.quantsim.torch_encodings.load_encodings` applies it).

    Raises:
        ValueError: naming `where` and the field: not a weight, a block size or axis that does
            not fit the weight, scales that do not match its blocks.
    """
    name, kind, k = key
    if kind != "param":
        raise ValueError(f"{where}: a blockwise entry belongs to a weight, not to the {kind} "
                         f"{k!r} of {name!r}")
    module = sim.model.get_submodule(name)
    lpbq = "per_block_int_scale" in entry
    new = dataclasses.replace(
        slot, dtype="int", bitwidth=_int(entry.get("bitwidth"), f"{where}.bitwidth", 2),
        symmetric=_bool(entry.get("is_symmetric"), where), strict=False, unsigned=False,
        block_size=_int(entry.get("block_size"), f"{where}.block_size", 1), channel_axis=None,
        decompressed_bw=_int(entry.get("decompressed_bw"), f"{where}.decompressed_bw", 2)
        if lpbq else None)
    try:
        q = make_quantizer(sim, module, kind, k, new)
        if entry.get("axis") != q.block_axis:
            raise ValueError(f"axis {entry.get('axis')!r} is not the weight's block axis "
                             f"{q.block_axis}")
        if lpbq:
            q.set_lpbq(entry["per_block_int_scale"], entry["per_channel_scale"])
        else:
            _set_blocks(q, entry)
    except (ValueError, TypeError, RuntimeError) as e:
        raise ValueError(f"{where}: {e}") from None
    return slot, new, name, kind, k, q


def _set_blocks(q, entry: dict) -> None:
    """Sets a blockwise quantizer's encoding from the entry's scales and offsets exactly."""
    from .torch_encodings import entry_range

    scale = torch.tensor(entry["scale"], dtype=torch.float32)
    offset = torch.tensor(entry["offset"], dtype=torch.float32)
    if scale.numel() != math.prod(q.shape) or offset.numel() != scale.numel():
        raise ValueError(f"{scale.numel()} scales and {offset.numel()} offsets for encoding "
                         f"shape {q.shape}")
    flat = {"scale": scale.flatten().tolist(), "offset": offset.flatten().tolist(),
            "min": None, "max": None}
    lo, hi = entry_range(flat, q.qmin, q.qmax)
    with torch.no_grad():
        q._set(lo.reshape(q.shape), hi.reshape(q.shape))
