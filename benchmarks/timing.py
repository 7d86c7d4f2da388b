"""Timing, size parsing and output helpers shared by the benchmark scripts (standard library only,
so a script can import it before torch, e.g. after setting allocator variables).

Example::

    >>> ms = time_row({"noop": lambda: None}, warmup=1, repeats=3)
    >>> sorted(ms), ms["noop"] >= 0
    (['noop'], True)
"""

import argparse
import json
import os
import resource
import statistics
import time


def parse_size(text, multiple=1):
    """Element count from ``"4096"``, ``"64K"`` or ``"16M"`` (binary multiples).

    Args:
        text: the count, optionally with a ``K`` (1024) or ``M`` (1048576) suffix.
        multiple: the count must be a positive multiple of this.

    Raises:
        argparse.ArgumentTypeError: when the count is not a positive multiple of `multiple`
            (argparse shows it as a usage error of the option).

    Example::

        >>> parse_size("16M"), parse_size("4K"), parse_size("4096", multiple=64)
        (16777216, 4096, 4096)
    """
    units = {"K": 1 << 10, "M": 1 << 20}
    text = text.strip().upper()
    size = int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    if size <= 0 or size % multiple:
        what = f"a positive multiple of {multiple}" if multiple > 1 else "positive"
        raise argparse.ArgumentTypeError(f"size must be {what}: {text}")
    return size


#: ``--clock`` choices of the scripts (:func:`add_clock_argument`): seconds as a float.
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def add_clock_argument(parser):
    """Adds ``--clock`` (a key of :data:`CLOCKS`, ``wall`` by default) to an argparse parser.

    Example::

        >>> p = argparse.ArgumentParser(); add_clock_argument(p)
        >>> p.parse_args(["--clock", "cpu"]).clock
        'cpu'
    """
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: elapsed time; cpu: the calling thread's CPU time (with "
                             "--threads 1 all the work, without the time other processes hold "
                             "the core)")


def check_clock(parser, clock, threads):
    """Refuses ``--clock cpu`` with more than one torch thread anywhere in `threads` (ints): the
    thread clock would miss the other threads' work.

    Example::

        >>> check_clock(argparse.ArgumentParser(), "cpu", [1])   # fine: nothing raised
    """
    if clock == "cpu" and any(t > 1 for t in threads):
        parser.error("--clock cpu counts the calling thread only: use it with --threads 1")


def minor_faults() -> int:
    """Minor page faults of this process so far (every thread): each first touch of a page the
    allocator got fresh from the system (about 0.25 us per 4 KiB page).

    Example::

        >>> minor_faults() >= 0
        True
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_row(fns, warmup, repeats, clock=time.perf_counter, faults=None):
    """Median milliseconds of each callable, repeats interleaved so load drift hits all alike.

    Args:
        fns: ``{name: callable}``; each call is one timed iteration.
        warmup: untimed calls of each callable first.
        repeats: timed calls of each, one of every callable per round.
        clock: seconds as a float: wall time by default; ``time.thread_time`` counts only the
            calling thread's CPU time (all of a one-thread torch run, none of the time other
            processes take the core away).
        faults: a dict to fill with the median minor page faults of a call of each callable
            (:func:`minor_faults`), when given.

    Example::

        >>> counts = {}
        >>> sorted(time_row({"a": lambda: None, "b": lambda: None}, warmup=0, repeats=2,
        ...                 faults=counts))
        ['a', 'b']
        >>> counts
        {'a': 0, 'b': 0}
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in fns}
    paged = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            first = minor_faults()
            start = clock()
            fn()
            samples[name].append((clock() - start) * 1e3)
            paged[name].append(minor_faults() - first)
    if faults is not None:
        faults.update({name: statistics.median_low(p) for name, p in paged.items()})
    return {name: statistics.median(s) for name, s in samples.items()}


def text_table(head, lines, left=(0,)):
    """A text table: the header, a rule, one line per row; columns padded to their widest cell,
    the columns whose index is in `left` aligned left, the others right.

    Example::

        >>> print(text_table(["case", "ms"], [["a", "1.5"], ["bb", "10.0"]]))
        case    ms
        ----  ----
        a      1.5
        bb    10.0
    """
    widths = [max(len(c) for c in col) for col in zip(head, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" if i in left else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), "  ".join("-" * w for w in widths)]
                     + [fmt.format(*line) for line in lines])


def write_json(path, payload):
    """Write `payload` as indented JSON to `path` (a pathlib.Path), creating its folder; atomic: a
    reader never sees half a file.

    Example::

        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "out" / "r.json"
        >>> write_json(path, {"rows": []}); json.loads(path.read_text())
        {'rows': []}
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
