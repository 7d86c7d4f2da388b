"""Smoke test of benchmarks/bench_seq_mse.py: a quick run prints both rows with positive times
and ratios consistent with them (never how fast anything is)."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_seq_mse.py"


def test_quick_run_prints_both_rows():
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--candidates", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fp = float(re.search(r"FP forward of the data: ([\d.]+) ms", proc.stdout).group(1))
    rows = re.findall(r"^(.*): SeqMSE ([\d.]+) ms per layer = ([\d.]+)x", proc.stdout, re.M)
    assert [r[0] for r in rows] == ["per-channel W4", "LPBQ W4 (block 64, 8-bit)"], proc.stdout
    for _, ms, ratio in rows:
        assert float(ms) > 0 and fp > 0
        # printed to 0.005 (ratio) and 0.0005 ms (times): the bound is that rounding, propagated
        high, low = (float(ms) + 5e-4) / (fp - 5e-4), (float(ms) - 5e-4) / (fp + 5e-4)
        assert low - 5e-3 <= float(ratio) <= high + 5e-3, proc.stdout
