"""AIMET 0.6.1 encoding entries (the channel lists of ``_torch.encodings`` and of 0.6.1
``.encodings`` files) to and from the entries of the encodings dict (:mod:`torchqsim.encodings`),
checked by the C validation the encodings reader and writer use (``qsim_encoding_check``).

A 0.6.1 entry is a list of channels ``{"bitwidth", "dtype", "is_symmetric", "max", "min",
"offset", "scale"}`` (``"is_symmetric"`` is the string ``"True"`` or ``"False"``; a float entry is
one ``{"bitwidth", "dtype": "float"}``). The dict entry holds the channels' values as lists.

Example::

    >>> entry = channels_to_entry([{"bitwidth": 8, "dtype": "int", "is_symmetric": "True",
    ...     "min": -1.0, "max": 0.9921875, "offset": -128, "scale": 0.0078125}], "w")
    >>> entry["is_symmetric"], entry["offset"], entry["scale"]
    (True, [-128], [0.0078125])
    >>> channels_to_entry([{"bitwidth": 8, "dtype": "int", "is_symmetric": "True",
    ...     "offset": -127.5, "scale": 0.1}], "w")
    Traceback (most recent call last):
    ...
    torchqsim._io.EncodingsError: w[0].offset: expected an integer, got -127.5
"""

import math

from . import _io

__all__ = ["aimet_bool", "aimet_bool_text", "aimet_offset", "channels_to_entry"]

_CHANNEL_KEYS = ("bitwidth", "dtype", "is_symmetric", "max", "min", "offset", "scale")


def aimet_bool(value, where: str) -> bool:
    """AIMET's booleans: ``True``/``False`` or the strings ``"True"``/``"False"`` (0.6.1 and the
    quantsim config write them so)."""
    if isinstance(value, bool):
        return value
    if value in ("True", "False"):
        return value == "True"
    raise _io.EncodingsError(f"{where}: expected true/false or 'True'/'False', got {value!r}")


def aimet_bool_text(value: bool) -> str:
    """``"True"`` or ``"False"``, as 0.6.1 writes booleans."""
    return "True" if value else "False"


def aimet_offset(qmin: int, zero_point: int) -> int:
    """AIMET's ``offset`` of a grid ``[qmin, qmax]`` with ONNX zero point `zero_point`: the grid's
    lowest integer relative to the zero point, ``qmin - zero_point`` (-128 for signed 8-bit
    symmetric, -127 for strict symmetric, ``-zero_point`` on an unsigned grid), as AIMET's
    libpymo writes it (docs/aimet.md §2.2). Both writers of AIMET entries use it
    (``.encodings``: wrappers/export/entries.py; ``_torch.encodings``:
    wrappers/quantsim/torch_encodings.py).

    Example::

        >>> aimet_offset(-128, 0), aimet_offset(-127, 0), aimet_offset(0, 3)
        (-128, -127, -3)
    """
    return int(qmin) - int(zero_point)


def _channel(c, where: str) -> dict:
    if not isinstance(c, dict):
        raise _io.EncodingsError(f"{where}: expected an encoding object, got {type(c).__name__}")
    unknown = sorted(set(c) - set(_CHANNEL_KEYS), key=str)
    if unknown:
        raise _io.EncodingsError(f"{where}: unknown key {unknown[0]!r}; expected "
                                 f"{', '.join(_CHANNEL_KEYS)}")
    if "bitwidth" not in c:
        raise _io.EncodingsError(f"{where}: missing 'bitwidth'")
    return c


def _column(channels: list, key: str, where: str):
    """The values of `key` over the channels, checked to be real numbers (each channel names its
    own index); None when no channel has the key."""
    if all(key not in c for c in channels):
        return None
    values = []
    for i, c in enumerate(channels):
        v = c.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _io.EncodingsError(f"{where}[{i}].{key}: expected a number, got {v!r}")
        if key == "offset" and isinstance(v, float):
            if not (math.isfinite(v) and v.is_integer()):
                raise _io.EncodingsError(f"{where}[{i}].offset: expected an integer, got {v!r}")
            v = int(v)
        values.append(v)
    return values


def channels_to_entry(channels, where: str) -> dict:
    """The encodings-dict entry of a 0.6.1 channel list (one channel: per-tensor), checked.

    Args:
        channels: a list of channel dicts (or one channel dict).
        where: the entry's place, for messages (e.g. ``"param_encodings['fc.weight']"``).

    Raises:
        EncodingsError: naming `where` and the field: not a list of channel objects, unknown or
            missing keys, channels that disagree on dtype, bitwidth or symmetry, or values the
            C validation refuses (scale not finite, not > 0 or beyond float32, min >= max,
            offsets that are not integers on the grid).
    """
    channels = channels if isinstance(channels, list) else [channels]
    if not channels:
        raise _io.EncodingsError(f"{where}: empty list of encodings")
    channels = [_channel(c, f"{where}[{i}]") for i, c in enumerate(channels)]
    heads = [(c.get("dtype", "int"), c["bitwidth"],
              aimet_bool(c.get("is_symmetric", False), f"{where}[{i}].is_symmetric"))
             for i, c in enumerate(channels)]
    for i, head in enumerate(heads):
        if head != heads[0]:
            raise _io.EncodingsError(
                f"{where}[{i}]: dtype, bitwidth and is_symmetric {head} differ from the first "
                f"channel's {heads[0]}: the channels of one tensor share them")
    dtype, bitwidth, symmetric = heads[0]
    if dtype == "float":
        entry = {"dtype": "float", "bitwidth": bitwidth}
    else:
        entry = {"dtype": dtype, "bitwidth": bitwidth, "is_symmetric": symmetric,
                 "scale": _column(channels, "scale", where),
                 "offset": _column(channels, "offset", where),
                 "min": _column(channels, "min", where), "max": _column(channels, "max", where)}
    _io.check_encoding(entry, where)
    return entry
