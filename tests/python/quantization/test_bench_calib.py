"""Smoke test of benchmarks/bench_calib.py: a quick run writes every row with sane numbers.

It checks that the harness works, never how fast anything is (targets are not tests).
"""

import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_calib.py"
CASES = {"minmax": "torch.aminmax", "histogram": "torch.histc", "histogram_update": "torch.histc",
         **{f"tf_enhanced/{layout}/{grid}": None for layout in ("per_tensor", "per_channel_512")
            for grid in ("asymmetric", "symmetric")}}


def test_quick_run_writes_every_row(tmp_path):
    out = tmp_path / "calib.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--size", "64K", "--threads", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert sorted(r["case"] for r in rows) == sorted(CASES)
    for r in rows:
        assert r["case"] in proc.stdout, f"{r['case']} missing from the printed table"
        assert math.isfinite(r["ours_ms"]) and r["ours_ms"] > 0, r
        baseline = CASES[r["case"]]
        assert list(r["baseline_ms"]) == ([baseline] if baseline else []), r
        if baseline:
            assert math.isclose(r["ratio"][baseline], r["baseline_ms"][baseline] / r["ours_ms"]), r
    assert "target >= 5.0x" in proc.stdout and "target < 1.0 ms" in proc.stdout
