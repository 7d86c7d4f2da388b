"""Writing a set of files all together: staged beside the targets, published in one step.

:func:`write_files` writes every file of a set (e.g. the five files of ``sim.export``) into a
staging directory ``.torchqsim-*`` inside the target directory, and publishes the set by writing
a commit record there last (written under a temporary name, then renamed: it exists only whole);
only then are the files renamed over their targets. So at every instant the set is either the
old one or, once the commit record exists, the new one:

- a failure before the commit record (a full disk, a target name taken by a directory, an
  exception) removes the staging directory and leaves the targets as they were;
- a rename that fails after it puts the old files back (they were hard-linked into the staging
  directory first) and raises, so no mixed set remains;
- a process killed at any point leaves its staging directory behind, locked by nobody: the next
  :func:`write_files` into that directory (or :func:`recover`) completes a committed set (rolls
  it forward) or discards an uncommitted one, and removes the staging directory.

A staging directory is held with an exclusive ``flock`` while its writer runs, so a concurrent
writer never touches another's.

Example::

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> write_files(d, {"a.txt": b"1", "b.txt": b"2"})
    >>> sorted(os.listdir(d))
    ['a.txt', 'b.txt']
"""

import fcntl
import json
import os
import shutil
import tempfile

__all__ = ["recover", "write_files"]

_PREFIX = ".torchqsim-"
_COMMIT = "COMMIT"  # the commit record: {"files": [names]}, written last
_OLD = "old"        # hard links to the targets a committed set replaces


def _fsync_dir(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path, content, name: str) -> None:
    """Writes ``content`` (bytes, or a list of byte strings written in order) to ``path``."""
    chunks = content if isinstance(content, list) else [content]
    try:
        with open(path, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        size = sum(len(c) for c in chunks)
        raise OSError(e.errno, f"cannot write {name!r} ({size} bytes): {e.strerror}",
                      os.fspath(path)) from e


def _lock(staging):
    """An exclusive lock on `staging` (its file descriptor), or None when another process holds
    it."""
    fd = os.open(staging, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _committed_names(staging) -> list | None:
    """The file names of the commit record in `staging`, or None when there is none. The record
    is renamed into place whole (:func:`_commit`); an unreadable one (a writer of an older
    version killed while writing it) never committed anything."""
    try:
        with open(os.path.join(staging, _COMMIT), "rb") as f:
            return json.loads(f.read())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _commit(staging, names) -> None:
    """Writes the commit record beside its final name, then renames it into place: it exists
    only whole."""
    _write(os.path.join(staging, _COMMIT + ".tmp"), json.dumps({"files": names}).encode(),
           _COMMIT)
    os.rename(os.path.join(staging, _COMMIT + ".tmp"), os.path.join(staging, _COMMIT))
    _fsync_dir(staging)


def _roll_forward(directory, staging, names) -> None:
    """Completes the committed set in `staging`: the files still there replace their targets."""
    for name in names:
        if os.path.exists(os.path.join(staging, name)):
            os.replace(os.path.join(staging, name), os.path.join(directory, name))
    _fsync_dir(directory)


def recover(directory) -> None:
    """Finishes what killed writers left in ``directory``: a committed set is completed, an
    uncommitted one discarded; their staging directories are removed. Staging directories held
    by a running writer are left alone.

    Args:
        directory: a directory :func:`write_files` wrote into (str or os.PathLike).
    """
    for entry in os.scandir(directory):
        if not (entry.name.startswith(_PREFIX) and entry.is_dir(follow_symlinks=False)):
            continue
        fd = _lock(entry.path)
        if fd is None:
            continue
        try:
            names = _committed_names(entry.path)
            if names is not None:
                _roll_forward(directory, entry.path, names)
            shutil.rmtree(entry.path, ignore_errors=True)
        finally:
            os.close(fd)


def _check_targets(directory, files: dict) -> None:
    for name in files:
        if not name or os.path.basename(name) != name or name in (".", "..") or \
                name.startswith(_PREFIX):
            raise ValueError(f"write_files: {name!r} is not a plain file name")
        target = os.path.join(directory, name)
        if os.path.isdir(target):
            raise IsADirectoryError(f"cannot write {name!r}: {os.fspath(target)!r} is a directory")


def _publish(directory, staging, names) -> None:
    """Renames the staged files over their targets; a failure puts back the old ones."""
    old = os.path.join(staging, _OLD)
    os.mkdir(old)
    for name in names:
        if os.path.isfile(os.path.join(directory, name)):
            os.link(os.path.join(directory, name), os.path.join(old, name))
    done = []
    try:
        for name in names:
            os.replace(os.path.join(staging, name), os.path.join(directory, name))
            done.append(name)
    except BaseException:
        for name in done:
            if os.path.exists(os.path.join(old, name)):
                os.replace(os.path.join(old, name), os.path.join(directory, name))
            else:
                os.unlink(os.path.join(directory, name))
        os.unlink(os.path.join(staging, _COMMIT))
        raise
    _fsync_dir(directory)


def write_files(directory, files: dict) -> None:
    """Writes ``files`` (file name -> bytes) into ``directory`` as one set (module docstring).

    Stale staging directories of killed writers are recovered first (:func:`recover`).

    Args:
        directory: an existing directory (str or os.PathLike).
        files: plain file names (no directory part) and their content (bytes, or a list of
            byte strings written one after the other, so a large file needs no single bytes
            object).

    Raises:
        ValueError: a name is empty, has a directory part, or is reserved (``.torchqsim-*``).
        IsADirectoryError: a target name is taken by a directory (nothing is written).
        OSError: a file cannot be written (the message names it and its size) or renamed; the
            targets are left as they were.
    """
    _check_targets(directory, files)
    recover(directory)
    staging = tempfile.mkdtemp(prefix=_PREFIX, dir=directory)
    fd = _lock(staging)
    try:
        for name, content in files.items():
            _write(os.path.join(staging, name), content, name)
        _commit(staging, list(files))
        _publish(directory, staging, list(files))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(fd)
