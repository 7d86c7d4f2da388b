"""benchmarks/timing.py's page-fault counts (``time_row(..., faults=)``) and docstring examples.

Oracle: a call that maps fresh anonymous memory and writes one byte per 4 KiB page faults in at
least that many pages; a call that touches nothing new faults in none.
"""

import doctest
import importlib.util
import mmap
from pathlib import Path

PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "timing.py"
_spec = importlib.util.spec_from_file_location("timing", PATH)
timing = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(timing)

PAGES = 1024


def _touch_fresh_pages():
    m = mmap.mmap(-1, PAGES * mmap.PAGESIZE)
    for i in range(PAGES):
        m[i * mmap.PAGESIZE] = 1
    m.close()


def test_faults_count_the_pages_a_call_touches_first():
    faults = {}
    ms = timing.time_row({"fresh": _touch_fresh_pages, "none": lambda: None}, warmup=1,
                         repeats=5, faults=faults)
    assert sorted(ms) == ["fresh", "none"] and ms["fresh"] > 0
    assert PAGES <= faults["fresh"] < 2 * PAGES, faults
    assert faults["none"] == 0, faults


def test_without_the_dict_nothing_is_counted_back():
    assert sorted(timing.time_row({"a": lambda: None}, warmup=0, repeats=1)) == ["a"]


def test_docstring_examples():
    result = doctest.testmod(timing)
    assert result.attempted > 0 and result.failed == 0
