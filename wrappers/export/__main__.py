"""Command line: ``python -m torchqsim.export --help``.

Subcommands::

    python -m torchqsim.export convert IN OUT --version 2.0.0 [--default-axis 0]
                                              [--params-from MODEL.onnx]
    python -m torchqsim.export summary FILE
    python -m torchqsim.export check MODEL.onnx FILE.encodings

``convert`` and ``summary`` are those of ``python -m torchqsim.encodings``; ``check`` verifies that
every name in an encodings file is a tensor or initializer of the ONNX model (exit status 1 and
the missing names otherwise).
"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
