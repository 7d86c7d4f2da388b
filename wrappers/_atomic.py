"""Writing a set of files all together: temporaries first, renames last.

Example::

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> write_files(d, {"a.txt": b"1", "b.txt": b"2"})
    >>> sorted(os.listdir(d))
    ['a.txt', 'b.txt']
"""

import os
import shutil
import tempfile

__all__ = ["write_files"]


def write_files(directory, files: dict) -> None:
    """Writes ``files`` (file name -> bytes) into ``directory`` so that a failure leaves nothing.

    Every file is first written and flushed to disk (fsync) in a new temporary directory inside
    ``directory`` (so the renames stay on one file system); then each is renamed over its target
    with ``os.replace`` and the temporary directory is removed. Any failure before the renames
    (e.g. a full disk) removes the temporaries and leaves ``directory`` as it was; the renames
    themselves are atomic per file.

    Args:
        directory: an existing directory (str or os.PathLike).
        files: plain file names (no directory part) and their content.

    Raises:
        ValueError: a name is empty or has a directory part.
        OSError: a file cannot be written (the message names it).
    """
    for name in files:
        if not name or os.path.basename(name) != name or name in (".", ".."):
            raise ValueError(f"write_files: {name!r} is not a plain file name")
    staging = tempfile.mkdtemp(prefix=".torchqsim-", dir=directory)
    try:
        for name, content in files.items():
            with open(os.path.join(staging, name), "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        for name in files:
            os.replace(os.path.join(staging, name), os.path.join(directory, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
