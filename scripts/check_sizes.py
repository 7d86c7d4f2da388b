"""Lists the tracked source files over a line limit and the functions over a length limit.

The project keeps files under ~400 lines and functions under ~60 (docs/design.md). This lists
what is over, so that each entry is either split or explained in its docstring. Python
functions are measured with `ast`, without their docstring (examples in docstrings are
mandatory); C, C++ and CUDA functions from their signature to the closing brace at column 0.
Exits 0: it reports, it does not judge.

Example::

    $ python scripts/check_sizes.py                # files > 400 lines, functions > 60
    $ python scripts/check_sizes.py --file-lines 300 --function-lines 40 wrappers
"""

import argparse
import ast
import re
import subprocess
import sys

SOURCE = (".py", ".c", ".h", ".cpp", ".cu", ".cuh")
_C_SIGNATURE = re.compile(r"^[A-Za-z_][\w\s\*,:<>&]*\b(\w+)\s*\(")


def python_functions(text: str):
    """(name, first line, code lines without the docstring) of every function in `text`."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], "value", None), ast.Constant) and isinstance(
                    body[0].value.value, str):
                length -= body[0].end_lineno - body[0].lineno + 1
            yield node.name, node.lineno, length


def c_functions(text: str):
    """(name, first line, lines) of every function defined at file scope in C-like `text`:
    a signature starting at column 0 whose body opens with ``{`` and closes with a ``}`` at
    column 0."""
    lines = text.split("\n")
    start = name = None
    opened = False
    for i, line in enumerate(lines, 1):
        match = _C_SIGNATURE.match(line)
        if start is None and match and not line.startswith(("typedef", "struct", "enum",
                                                             "static const", "const")) \
                and "=" not in line.split("(")[0] and not line.rstrip().endswith(";"):
            start, name, opened = i, match.group(1), "{" in line
        elif start is not None and line.startswith("}"):
            yield name, start, i - start + 1
            start = None
        elif start is not None and not opened:
            opened = "{" in line
            if not opened and line.rstrip().endswith(";"):  # a declaration over several lines
                start = None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["."], help="folders or files (git ls-files)")
    parser.add_argument("--file-lines", type=int, default=400)
    parser.add_argument("--function-lines", type=int, default=60)
    args = parser.parse_args(argv)
    files = subprocess.run(["git", "ls-files", *args.paths], capture_output=True, text=True,
                           check=True).stdout.split()
    long_files, long_functions = [], []
    for path in sorted(f for f in files if f.endswith(SOURCE)):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        count = text.count("\n")
        if count > args.file_lines:
            long_files.append(f"{count:5d}  {path}")
        found = python_functions(text) if path.endswith(".py") else c_functions(text)
        long_functions += [f"{n:5d}  {path}:{line}  {name}" for name, line, n in found
                           if n > args.function_lines]
    print(f"source files over {args.file_lines} lines: {len(long_files)}")
    print("\n".join(long_files))
    print(f"functions over {args.function_lines} lines (Python: without docstring): "
          f"{len(long_functions)}")
    print("\n".join(long_functions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
