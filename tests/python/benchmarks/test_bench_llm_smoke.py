"""Smoke test of benchmarks/bench_llm.py: a quick run on a tiny model writes every row with sane
numbers (rows, positive times and sizes, ratios consistent with them). It never checks how fast
or how small anything is: targets do not belong in tests."""

import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_llm.py"


def test_quick_run_writes_every_row(tmp_path):
    out = tmp_path / "llm.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--dtypes", "bf16",
                           "--layers", "1", "--hidden", "64", "--seq", "16", "--vocab", "256",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())["rows"]
    names = [r["row"] for r in rows]
    assert {"eval_fwd", "eval_fwd_cached", "decode_eager", "decode_compiled",
            "decode_compiled_uncached", "eval_fwd_folded", "qat_step", "peak_rss", "model_rss",
            "qat_rss"} <= set(names), names
    for r in rows:
        assert r["dtype"] == "bf16" and r["row"] in proc.stdout, r
        if "ours_ms" in r:
            assert math.isfinite(r["ours_ms"]) and r["ours_ms"] > 0 and r["base_ms"] > 0, r
            assert math.isclose(r["ratio"], r["ours_ms"] / r["base_ms"]), r
        elif r["row"] == "qat_rss":  # a tiny model's steps may fit in memory already mapped
            assert r["ours_mib"] >= 0 and r["base_mib"] >= 0, r
        elif "ours_mib" in r:
            assert r["ours_mib"] > 0 and r["base_mib"] > 0, r
        else:
            assert r["row"] == "seq_mse" and r["s_per_layer"] > 0, r
