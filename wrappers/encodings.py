"""AIMET encodings files (versions 0.6.1, 1.0.0, 2.0.0, 2.1.0): read, write, convert and summarise.

The work is done by the C reader and writer (``kernels/include/qsim/encodings.h``) through
``torchqsim._io``: files are validated (version, keys, types, lengths, values) with errors that
name the JSON path and line:column, and written deterministically (fixed key order, floats in the
shortest form that reads back to the same float32, NaN/Inf refused) and atomically.

The encodings dict (what :func:`read_encodings` returns and :func:`write_encodings` takes)::

    {
        "version": "1.0.0",              # of the file read (None for a dict built by hand;
                                         # write_encodings takes the version separately)
        "producer": {"package": "aimet-torch", "version": "2.4.0"},   # or None
        "activation_encodings": {name: entry, ...},   # in file order
        "param_encodings": {name: entry, ...},
        "encodings": {name: entry, ...},  # entries whose role the file does not record: a 2.0.0
                                          # file lists activations and params together
        "excluded_layers": ["dropout", ...],
        "quantizer_args": {"activation_bitwidth": 8, "dtype": "int", "is_symmetric": True,
                           "param_bitwidth": 8, "per_channel_quantization": False,
                           "quant_scheme": "post_training_tf_enhanced"},   # or None
    }

An entry is ``{"dtype": "float", "bitwidth": 16}`` for a float cast (2.1.0's float and
block-format entries add ``format``, ``scale``, ``tensor_scale``, ``axis`` and ``block_size``:
:mod:`torchqsim.encodings_v21`), or for an integer grid::

    {
        "dtype": "int",
        "bitwidth": 8,                 # 1..32
        "is_symmetric": True,
        "is_signed": True,             # grid stored as intN or uintN (2.0.0's output_dtype);
                                       # optional when writing: defaults to is_symmetric, which
                                       # 0.6.1 and 1.0.0 imply
        "layout": "per_channel",       # "per_tensor" | "per_channel" | "per_block"; optional when
                                       # writing: per_channel when there are several scales
        "scale": [0.004, 0.002],       # float32 values > 0
        "offset": [-128, -128],        # AIMET sign: offset = -zero_point on the unsigned grid
                                       # [0, 2^bitwidth - 1], an int in [-(2^bitwidth - 1), 0]
        "min": [...], "max": [...],    # or None (only 0.6.1 records them; written derived from
                                       # scale and offset when None)
        "axis": 0,                     # channel (per_channel) or block (per_block) axis, or None
                                       # (0.6.1 and 1.0.0 do not record it; 2.0.0 needs it)
        "block_size": None,            # per_block: the block length along axis
        "scale_shape": None,           # per_block: dims of the scale tensor (2.0.0 needs them)
    }

What each version holds (``qsim/encodings.h`` has the details): 0.6.1 has min/max but no axis
and no blocks; 1.0.0 has blocks but no min/max and no axis; 2.0.0 has axes and scale shapes but
no roles, no symmetric flag (it reads as "signed with zero points 0") and no float entries
(fp16/bf16 entries are left out, as AIMET does); 2.1.0 is 2.0.0 plus float8/float4 and
MX/NVFP4 block entries (fp16/bf16 still left out). A float entry with a format written to 0.6.1
or 1.0.0 keeps only its dtype and bitwidth, and to 2.0.0 is left out. Converting to a version
that lacks something the entries need raises :class:`EncodingsError` naming the entry;
:func:`convert` can supply the missing roles and axes.

Command line::

    python -m torchqsim.encodings convert IN OUT --version 2.1.0 [--default-axis 0]
                                                 [--params-from MODEL.onnx]
    python -m torchqsim.encodings summary FILE

Example:
    >>> from torchqsim import encodings
    >>> text = encodings.write_encodings({"activation_encodings": {"input": {
    ...     "bitwidth": 8, "is_symmetric": False, "scale": [0.5], "offset": [-3]}}}, "2.0.0")
    >>> print(text.splitlines()[3].strip())
    {"name": "input", "output_dtype": "uint8", "y_scale": 0.5, "y_zero_point": 3}
    >>> encodings.read_encodings(text)["encodings"]["input"]["offset"]
    [-3]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Iterable, Optional

from . import _atomic, _io
from . import encodings_v21 as _v21

__all__ = [
    "DEFAULT_VERSION",
    "EncodingsError",
    "SUPPORTED_VERSIONS",
    "convert",
    "main",
    "read_encodings",
    "save_encodings",
    "summary",
    "write_encodings",
]

EncodingsError = _io.EncodingsError
SUPPORTED_VERSIONS: tuple = _io.ENCODINGS_VERSIONS + (_v21.VERSION,)
DEFAULT_VERSION = "1.0.0"

_SECTIONS = ("activation_encodings", "param_encodings", "encodings")


def read_encodings(source: Any) -> dict:
    """Reads an encodings file into the encodings dict (layout in the module docstring).

    Args:
        source: a path (str or os.PathLike), or the JSON text (bytes, or a str whose first
            non-blank character is ``{``).

    Returns:
        The encodings dict.

    Raises:
        EncodingsError: the content is not valid JSON or breaks its version's layout; the message
            names the problem, the JSON path and line:column (also in ``.path``, ``.line`` and
            ``.column``); for a file it starts with the file's path.
        OSError: the file cannot be read.

    Example:
        >>> read_encodings('{"version": "2.0.0", "encodings": []}')["version"]
        '2.0.0'
    """
    try:
        return _io.read_encodings(source)
    except EncodingsError as e:
        if not _v21.is_v21_error(e):
            raise
    if isinstance(source, bytes) or isinstance(source, str) and source.lstrip().startswith("{"):
        return _v21.read_text(source.decode() if isinstance(source, bytes) else source)
    with open(source, encoding="utf-8") as f:
        text = f.read()
    try:
        return _v21.read_text(text)
    except EncodingsError as e:
        raise EncodingsError(f"{os.fspath(source)}: {e}") from None


def _version(data: dict, version: Optional[str]) -> str:
    return version or data.get("version") or DEFAULT_VERSION


def write_encodings(data: dict, version: Optional[str] = None) -> str:
    """The text of an encodings file of ``version`` holding ``data``.

    Args:
        data: the encodings dict; absent sections are empty.
        version: "0.6.1", "1.0.0", "2.0.0" or "2.1.0"; None takes ``data["version"]``, else
            "1.0.0".

    Returns:
        The file's text (deterministic: the same dict gives the same bytes).

    Raises:
        EncodingsError: the dict is malformed (``.path`` names the key, e.g.
            ``"param_encodings['w'].scale[3]"``), holds NaN/Inf or off-grid offsets, or holds what
            the version cannot (per-block entries in 0.6.1, entries without a role before 2.0.0,
            per-channel entries without an axis in 2.0.0).

    Example:
        >>> write_encodings({}, "2.0.0")
        '{\\n    "version": "2.0.0",\\n    "encodings": []\\n}\\n'
    """
    version = _version(data, version)
    if version == _v21.VERSION:
        return _v21.write_text(data)
    return _io.write_encodings(_without_formats(data), version)


def _without_formats(data: dict) -> dict:
    """`data` with its float entries reduced to the dtype and bitwidth 0.6.1 to 2.0.0 record."""
    def plain(e):
        return {"dtype": "float", "bitwidth": e["bitwidth"]} \
            if isinstance(e, dict) and "format" in e else e
    return {k: {n: plain(e) for n, e in v.items()} if k in _SECTIONS and isinstance(v, dict)
            else v for k, v in data.items()}


def save_encodings(data: dict, path: Any, version: Optional[str] = None) -> None:
    """Writes ``data`` to the file at ``path`` atomically.

    The text goes to a temporary file in the same directory, is flushed to disk and renamed over
    ``path``; on any failure the temporary is removed and ``path`` is left as it was.

    Args:
        data: the encodings dict.
        path: where to write (str or os.PathLike).
        version: as in :func:`write_encodings`.

    Raises:
        EncodingsError: as :func:`write_encodings`.
        OSError: the file cannot be written (the message names it and the reason).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "model.encodings")
        >>> save_encodings({"param_encodings": {"w": {"bitwidth": 8, "is_symmetric": True,
        ...     "scale": [0.5], "offset": [-128]}}}, path, "1.0.0")
        >>> read_encodings(path)["param_encodings"]["w"]["scale"]
        [0.5]
    """
    version = _version(data, version)
    if version != _v21.VERSION:
        _io.save_encodings(_without_formats(data), path, version)
        return
    path = os.fspath(path)
    _atomic.write_files(os.path.dirname(path) or ".", {os.path.basename(path):
                                                       _v21.write_text(data).encode()})


def _assign_roles(data: dict, param_names: Iterable[str]) -> None:
    """Moves entries without a role into param_encodings (names in param_names) or
    activation_encodings (the others)."""
    params = set(param_names)
    for name, entry in data["encodings"].items():
        data["param_encodings" if name in params else "activation_encodings"][name] = entry
    data["encodings"] = {}


def convert(path_in: Any, path_out: Any, version: str, *, default_axis: Optional[int] = None,
            param_names: Optional[Iterable[str]] = None) -> dict:
    """Converts the encodings file ``path_in`` to ``version`` at ``path_out`` (saved atomically).

    Scale, offset, bitwidth and the symmetric flag are kept exactly; what the target version
    cannot record is dropped (min/max outside 0.6.1, axes outside 2.0.0, float entries in 2.0.0).

    Args:
        path_in: the file to read (any supported version).
        path_out: the file to write.
        version: the version to write.
        default_axis: the channel axis to record for per-channel entries that have none (a file
            from 0.6.1 or 1.0.0 converted to 2.0.0; AIMET uses 0 for weights, 1 for ConvTranspose).
        param_names: when converting a 2.0.0 file to 0.6.1 or 1.0.0: the names that are params
            (e.g. the ONNX model's initializers); every other entry becomes an activation.

    Returns:
        The encodings dict that was written.

    Raises:
        EncodingsError: ``path_in`` is invalid, or an entry cannot be expressed in ``version``
            (e.g. 2.0.0 entries without param_names, per-channel entries without default_axis).
        OSError: a file cannot be read or written.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> save_encodings({"param_encodings": {"w": {"bitwidth": 8, "is_symmetric": True,
        ...     "scale": [0.5, 0.25], "offset": [-128, -128]}}}, os.path.join(d, "a.encodings"))
        >>> data = convert(os.path.join(d, "a.encodings"), os.path.join(d, "b.encodings"),
        ...                "2.0.0", default_axis=0)
        >>> read_encodings(os.path.join(d, "b.encodings"))["encodings"]["w"]["axis"]
        0
    """
    data = read_encodings(path_in)
    if data["encodings"] and version not in ("2.0.0", _v21.VERSION):
        if param_names is None:
            raise EncodingsError(
                f"{os.fspath(path_in)}: {len(data['encodings'])} entries have no role (2.0.0 does "
                f"not record activation or param); pass param_names (command line: --params-from "
                f"MODEL.onnx) to write {version}")
        _assign_roles(data, param_names)
    no_axis = [(name, entry) for section in _SECTIONS for name, entry in data[section].items()
               if entry.get("layout") == "per_channel" and entry["axis"] is None]
    if no_axis and version in ("2.0.0", _v21.VERSION) and default_axis is None:
        raise EncodingsError(
            f"{os.fspath(path_in)}: {len(no_axis)} per-channel entries ({no_axis[0][0]!r}, ...) "
            f"have no channel axis ({data['version']} does not record it); pass default_axis "
            f"(command line: --default-axis N) to write {version}")
    for _, entry in no_axis:
        entry["axis"] = default_axis
    save_encodings(data, path_out, version)
    return data


def _range(values: list, fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if lo == hi else f"{format(lo, fmt)}..{format(hi, fmt)}"


def _describe(entry: dict) -> tuple:
    """(type, layout, scale, offset) columns of one entry."""
    if entry["dtype"] == "float" and entry.get("block_size"):
        flat = _flatten(entry["scale"])
        return (entry["format"], f"per_block[{len(flat)}, axis {entry['axis']}, block "
                f"{entry['block_size']}]", _range(flat, ".6g"), "-")
    if entry["dtype"] == "float":
        return (entry.get("format") or f"float{entry['bitwidth']}", "-", "-", "-")
    kind = f"{'int' if entry['is_signed'] else 'uint'}{entry['bitwidth']} " + (
        "sym" if entry["is_symmetric"] else "asym")
    layout = entry["layout"]
    if layout != "per_tensor":
        layout += f"[{len(entry['scale'])}"
        layout += f", axis {entry['axis']}" if entry["axis"] is not None else ""
        layout += f", block {entry['block_size']}]" if entry["block_size"] else "]"
    return (kind, layout, _range(entry["scale"], ".6g"), _range(entry["offset"], "d"))


def _flatten(v) -> list:
    return [x for item in v for x in _flatten(item)] if isinstance(v, list) else [v]


def summary(path: Any) -> str:
    """A human-readable summary of the encodings file at ``path``.

    One header line (file, version, producer), one line of counts, then a table with one row per
    entry: role, name, grid type, layout (values, axis, block), scale range and offset range.

    Raises:
        EncodingsError, OSError: as :func:`read_encodings`.

    Example (for tests/data/encodings/v2_0_0.encodings)::

        v2_0_0.encodings: version 2.0.0, producer aimet-torch 2.4.0
        5 entries: 0 activations, 0 params, 5 without a role; 0 excluded layers
        role  name           type        layout                          scale        offset
        -     input          uint8 asym  per_tensor                      0.0185       -114
        -     conv1.weight   int8 sym    per_channel[3, axis 0]          0.002..0.01  -128
        -     fc.weight      int4 sym    per_block[4, axis 1, block 16]  0.0625..0.5  -8
        ...
    """
    data = read_encodings(path)
    producer = data["producer"]
    lines = [f"{os.fspath(path)}: version {data['version']}"
             + (f", producer {producer['package']} {producer['version']}" if producer else "")]
    n = {s: len(data[s]) for s in _SECTIONS}
    lines.append(f"{sum(n.values())} entries: {n['activation_encodings']} activations, "
                 f"{n['param_encodings']} params, {n['encodings']} without a role; "
                 f"{len(data['excluded_layers'])} excluded layers")
    args = data["quantizer_args"]
    if args:
        lines.append("quantizer_args: " + ", ".join(f"{k}={v}" for k, v in args.items()))
    rows = [("role", "name", "type", "layout", "scale", "offset")]
    roles = {"activation_encodings": "activation", "param_encodings": "param", "encodings": "-"}
    for section in _SECTIONS:
        rows += [(roles[section], name, *_describe(e)) for name, e in data[section].items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def _onnx_initializers(path: str) -> list:
    import onnx  # only the --params-from option needs it

    model = onnx.load(path, load_external_data=False)
    return [init.name for init in model.graph.initializer]


def main(argv: Optional[list] = None) -> int:
    """The command line (``python -m torchqsim.encodings --help``). Returns the exit status:
    0, or 1 after printing the error for an invalid or unreadable file."""
    parser = argparse.ArgumentParser(
        prog="python -m torchqsim.encodings",
        description="Convert AIMET encodings files between versions "
                    f"({', '.join(SUPPORTED_VERSIONS)}) and summarise them.")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="rewrite an encodings file in another version",
                          description=convert.__doc__.split("\n\n")[0])
    conv.add_argument("input", help="encodings file to read (any supported version)")
    conv.add_argument("output", help="encodings file to write (atomically)")
    conv.add_argument("--version", default=DEFAULT_VERSION, choices=SUPPORTED_VERSIONS,
                      help=f"version to write (default {DEFAULT_VERSION})")
    conv.add_argument("--default-axis", type=int, default=None,
                      help="channel axis for per-channel entries that record none (needed to "
                           "write 2.0.0 from 0.6.1 or 1.0.0)")
    conv.add_argument("--params-from", metavar="MODEL.onnx", default=None,
                      help="ONNX model whose initializers are the params (needed to write 0.6.1 "
                           "or 1.0.0 from 2.0.0)")
    summ = sub.add_parser("summary", help="print a summary of an encodings file")
    summ.add_argument("input", help="encodings file")
    args = parser.parse_args(argv)
    try:
        if args.command == "convert":
            params = _onnx_initializers(args.params_from) if args.params_from else None
            convert(args.input, args.output, args.version, default_axis=args.default_axis,
                    param_names=params)
        else:
            sys.stdout.write(summary(args.input))
    except (EncodingsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
