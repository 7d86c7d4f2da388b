"""The export command line (``python -m torchqsim.export``): convert, summary, check.

Example::

    >>> main(["check", "model.onnx", "model.encodings"])  # doctest: +SKIP
    0
"""

import argparse
import os
import sys
from typing import Optional

from .. import encodings as enc_io
from . import onnx_graph

__all__ = ["main", "missing_names"]

_DELEGATED = ("convert", "summary")


def missing_names(onnx_path, encodings_path) -> list:
    """The names in the encodings file that are no tensor or initializer of the ONNX model, in
    file order (params must be initializers).

    Raises:
        torchqsim.encodings.EncodingsError: the encodings file is invalid.
        OSError: a file cannot be read.

    Example::

        >>> missing_names("model.onnx", "model.encodings")  # doctest: +SKIP
        []
    """
    import onnx  # only this subcommand needs it

    model = onnx.load(os.fspath(onnx_path), load_external_data=False)
    return onnx_graph.names_missing_from(model, enc_io.read_encodings(encodings_path))


def main(argv: Optional[list] = None) -> int:
    """Runs the command line; returns the exit status (0 success, 1 error or missing names)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        return enc_io.main(argv)
    parser = argparse.ArgumentParser(
        prog="python -m torchqsim.export",
        description="Tools for the files sim.export writes: convert encodings files between "
                    f"versions ({', '.join(enc_io.SUPPORTED_VERSIONS)}), summarise them, and "
                    "check them against the ONNX model.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("convert", help="rewrite an encodings file in another version (see "
                                   "'convert --help')")
    sub.add_parser("summary", help="print a summary of an encodings file")
    check = sub.add_parser("check", help="verify that every name in an encodings file exists "
                                         "in the ONNX model")
    check.add_argument("onnx", help="the ONNX model ({prefix}.onnx)")
    check.add_argument("encodings", help="the encodings file ({prefix}.encodings)")
    args = parser.parse_args(argv)
    try:
        missing = missing_names(args.onnx, args.encodings)
    except (enc_io.EncodingsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # onnx raises DecodeError and others for a broken model file
        print(f"error: {args.onnx}: not a readable ONNX model: {e}", file=sys.stderr)
        return 1
    if missing:
        print(f"{args.encodings}: {len(missing)} names are not in {args.onnx}: "
              + ", ".join(missing), file=sys.stderr)
        return 1
    print(f"{args.encodings}: every name is in {args.onnx}")
    return 0
