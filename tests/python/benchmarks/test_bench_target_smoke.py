"""Smoke test of benchmarks/bench_target.py: a one-repeat run prints both rows of the model with
the fused-module count and ratios consistent with the printed times (never how fast anything
is), and ``--clock cpu`` refuses more than one thread."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_target.py"


def _run(*args):
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True,
                          timeout=600)


def test_one_repeat_prints_both_rows_with_consistent_ratios():
    proc = _run("--models", "resnet", "--repeats", "1", "--clock", "cpu")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = re.findall(r"^(resnet(?: \(int16 pairs\))?)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)",
                      proc.stdout, re.M)
    assert [r[0] for r in rows] == ["resnet", "resnet (int16 pairs)"], proc.stdout
    for _, fused, ref, target, ratio in rows:
        assert int(fused) > 0 and float(ref) > 0
        # times printed to 0.005 ms, the ratio to 0.005: the bound is that rounding, propagated
        high = (float(target) + 5e-3) / (float(ref) - 5e-3)
        low = (float(target) - 5e-3) / (float(ref) + 5e-3)
        assert low - 5e-3 <= float(ratio) <= high + 5e-3, proc.stdout


def test_cpu_clock_refuses_more_than_one_thread():
    proc = _run("--clock", "cpu", "--threads", "2")
    assert proc.returncode == 2 and "--clock cpu" in proc.stderr, proc.stderr
