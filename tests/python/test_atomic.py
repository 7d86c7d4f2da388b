"""Sets of files written all-or-nothing (wrappers/_atomic.py): injected failures and kill -9 at
random points never leave a mix of old and new files, nor staging directories, once recovered."""

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from torchqsim import _atomic
from torchqsim._atomic import recover, write_files

NAMES = [f"model{i}.bin" for i in range(5)]


def _set(generation: int, size: int = 64) -> dict:
    return {name: f"{generation}:{name}:".encode() + bytes(size) for name in NAMES}


def _generations(d) -> set:
    """The generations of the files of the set in `d` (one element: a consistent set)."""
    return {open(os.path.join(d, n), "rb").read().split(b":")[0] for n in NAMES}


def _staging(d) -> list:
    return [e for e in os.listdir(d) if e.startswith(".torchqsim-")]


def test_a_failed_rename_puts_the_old_set_back(tmp_path, monkeypatch):
    write_files(tmp_path, _set(1))
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(errno.EIO, "injected rename failure")
        real(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", flaky)
    with pytest.raises(OSError, match="injected"):
        write_files(tmp_path, _set(2))
    monkeypatch.setattr(_atomic.os, "replace", real)
    assert _generations(tmp_path) == {b"1"}
    assert _staging(tmp_path) == []


def test_a_failed_rename_removes_files_that_did_not_exist(tmp_path, monkeypatch):
    real = os.replace

    def fail_last(src, dst):
        if dst.endswith(NAMES[-1]):
            raise OSError(errno.EIO, "injected rename failure")
        real(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", fail_last)
    with pytest.raises(OSError):
        write_files(tmp_path, _set(1))
    assert sorted(os.listdir(tmp_path)) == []


def test_a_full_disk_names_the_file_and_leaves_the_old_set(tmp_path, monkeypatch):
    write_files(tmp_path, _set(1))

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_atomic.os, "fsync", full)
    with pytest.raises(OSError, match=r"cannot write 'model0.bin' \(\d+ bytes\): No space left"):
        write_files(tmp_path, _set(2))
    monkeypatch.undo()
    assert _generations(tmp_path) == {b"1"}
    assert _staging(tmp_path) == []


def test_a_target_taken_by_a_directory_writes_nothing(tmp_path):
    write_files(tmp_path, _set(1))
    os.unlink(tmp_path / NAMES[2])
    os.mkdir(tmp_path / NAMES[2])
    with pytest.raises(IsADirectoryError, match="model2.bin"):
        write_files(tmp_path, _set(2))
    assert {open(tmp_path / n, "rb").read()[:1] for n in NAMES if n != NAMES[2]} == {b"1"}
    assert _staging(tmp_path) == []


@pytest.mark.parametrize("name", ["", "..", ".", "a/b", ".torchqsim-x"])
def test_names_that_are_not_plain_files_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="plain file name"):
        write_files(tmp_path, {name: b""})


_CHILD = textwrap.dedent("""
    import importlib.util, os, sys
    spec = importlib.util.spec_from_file_location("_atomic", sys.argv[5])  # without torch: fast
    _atomic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_atomic)
    d, gen, crash_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    names = [f"model{i}.bin" for i in range(5)]
    real, count = os.replace, [0]
    def replace(src, dst):  # dies (as kill -9 would) after crash_after renames of the set
        if not dst.endswith("COMMIT") and count[0] == crash_after:
            os.kill(os.getpid(), 9)
        count[0] += 1
        real(src, dst)
    if crash_after >= 0:
        _atomic.os.replace = replace
    while True:
        _atomic.write_files(d, {n: f"{gen}:{n}:".encode() + bytes(int(sys.argv[4])) for n in names})
        gen += 1
""")


def _child(d, gen, crash_after, size):
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(d), str(gen), str(crash_after),
                             str(size), _atomic.__file__], stderr=subprocess.PIPE)


@pytest.mark.parametrize("crash_after", range(len(NAMES)))
def test_killed_between_renames_is_completed_by_the_next_writer(tmp_path, crash_after):
    write_files(tmp_path, _set(1))
    child = _child(tmp_path, 2, crash_after, 64)
    assert child.wait(timeout=60) == -signal.SIGKILL, child.stderr.read().decode()
    assert _staging(tmp_path), "the killed writer left its staging directory"
    recover(tmp_path)
    assert _generations(tmp_path) == {b"2"}  # committed before the renames: rolled forward
    assert _staging(tmp_path) == []


def test_kill_9_at_random_points_never_leaves_a_mixed_set(tmp_path):
    """8 kills at random times of a writer rewriting a 5-file set (1 MB each) in a loop; after each
    kill the next write_files recovers: one generation, no staging directory."""
    rng = random.Random(14)
    write_files(tmp_path, _set(0))
    gen = 1
    for _ in range(8):
        child = _child(tmp_path, gen, -1, 1 << 20)
        time.sleep(rng.uniform(0.05, 0.6))
        child.kill()
        child.wait(timeout=60)
        recover(tmp_path)
        assert len(_generations(tmp_path)) == 1
        assert _staging(tmp_path) == []
        gen += 1000
    write_files(tmp_path, _set(gen))
    assert _generations(tmp_path) == {str(gen).encode()}


@pytest.mark.parametrize("record", ["COMMIT", "COMMIT.tmp"])
@pytest.mark.parametrize("content", [b"", b'{"files": ["model0.b', b"[1, 2]"])
def test_a_commit_record_cut_short_commits_nothing(tmp_path, record, content):
    """A writer killed while writing its commit record (an empty or truncated record under its
    final name, as an older version left it, or under its temporary name) committed nothing:
    recover discards the staged set and the targets stay as they were."""
    write_files(tmp_path, _set(1))
    staging = tmp_path / ".torchqsim-killed"
    staging.mkdir()
    for name, content_of_set in _set(2).items():
        (staging / name).write_bytes(content_of_set)
    (staging / record).write_bytes(content)
    recover(tmp_path)
    assert _generations(tmp_path) == {b"1"}
    assert _staging(tmp_path) == []
