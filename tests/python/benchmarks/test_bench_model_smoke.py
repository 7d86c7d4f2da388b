"""Smoke test of benchmarks/bench_model.py: a quick run writes every row with sane numbers.

It checks that the harness works (rows, positive times, ratios consistent with the times, the
outputs label), never how fast anything is: timing targets do not belong in tests.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_model.py"
MODEL_ROWS = ["eval_fwd", "calib_tf", "calib_tf_enhanced", "qat_tf", "qat_range_learning_tf_init"]
QDQ_ROWS = {"qdq_fwd": "fresh", "qdq_fwd_reused": "reused", "qdq_ste": "fresh"}


@pytest.mark.parametrize("model", ["bert", "llama"])
def test_quick_run_writes_every_row(tmp_path, model):
    out = tmp_path / "model.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--no-compile", "--threads", "1",
                           "--models", model, "--batches", "1", "--clock", "cpu", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["meta"]["clock"] == "cpu" and result["meta"]["cpp_wrapper"] is False
    rows = result["rows"]
    got = sorted((r["model"], r["row"]) for r in rows)
    assert got == sorted([("-", r) for r in QDQ_ROWS] + [(model, r) for r in MODEL_ROWS]), got
    for r in rows:
        assert r["row"] in proc.stdout, f"{r['row']} missing from the printed lines"
        assert r["outputs"] == QDQ_ROWS.get(r["row"], "fresh"), r
        assert math.isfinite(r["ours_ms"]) and r["ours_ms"] > 0 and r["base_ms"] > 0, r
        assert math.isclose(r["ratio"], r["ours_ms"] / r["base_ms"]), r
        assert r["ours_faults"] >= 0 and r["base_faults"] >= 0, r
        assert f"page faults ours {r['ours_faults']:g} base {r['base_faults']:g}" in proc.stdout
        if r["row"] == "qdq_ste":
            assert math.isclose(r["torch_speedup"], r["torch_fq_ms"] / r["ours_ms"]), r


def test_unknown_model_is_refused_by_name():
    proc = subprocess.run([sys.executable, str(BENCH), "--models", "bert,gpt"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "--models: unknown gpt" in proc.stderr, proc.stderr


def test_cpu_clock_needs_one_thread():
    proc = subprocess.run([sys.executable, str(BENCH), "--clock", "cpu", "--threads", "1,2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "--clock cpu counts the calling thread only" in proc.stderr


def test_cpp_wrapper_needs_the_compiled_rows():
    proc = subprocess.run([sys.executable, str(BENCH), "--cpp-wrapper", "--no-compile"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "--cpp-wrapper applies to the compiled rows" in proc.stderr


def test_processes_report_the_median_of_fresh_runs(tmp_path):
    out = tmp_path / "model.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--no-compile", "--threads", "1",
                           "--models", "bert", "--batches", "1", "--processes", "3",
                           "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["meta"]["processes"] == 3 and len(result["meta"]["load_average"]) == 3
    assert len(result["rows"]) == len(QDQ_ROWS) + len(MODEL_ROWS)
    for r in result["rows"]:
        assert len(r["ratios"]) == 3 and r["ratio"] == sorted(r["ratios"])[1], r
        assert "ratios over 3 processes" in proc.stdout
