"""Smoke test of the benchmark harness: `benchmarks/run.py --quick` runs and writes every row.

It checks that the harness works (rows, positive times, consistent ratios), never how fast
anything is: timing targets do not belong in tests.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[3] / "benchmarks" / "run.py"
SIZE, THREADS = 4096, (1, 2)
# mode: the baselines timed next to ours (copy_ is the bandwidth floor of every row)
BASELINES = {"forward": {"torch_fq", "composite", "ours_alloc", "ours_in_place", "copy"},
             "ste": {"torch_fq", "composite", "copy"},
             "range": {"torch_fq_learnable", "composite", "copy"}}


def test_quick_run_writes_every_row(tmp_path):
    out = tmp_path / "qdq.json"
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--sizes", str(SIZE), "--threads",
                           ",".join(map(str, THREADS)), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    rows = result["rows"]

    expected = {(f"{g}/{m}", SIZE, t) for g in ("per_tensor", "per_channel") for m in BASELINES
                for t in THREADS}
    got = [(r["case"], r["size"], r["threads"]) for r in rows]
    assert sorted(got) == sorted(expected), f"rows {got}"
    assert "in place/copy" in proc.stdout
    for r in rows:
        where = f"row {r['case']} threads={r['threads']}"
        assert r["case"] in proc.stdout, f"{where} missing from the printed table"
        assert set(r["baseline_ms"]) == BASELINES[r["mode"]], f"{where}: {r['baseline_ms']}"
        times = {"ours": r["ours_ms"], **r["baseline_ms"]}
        for name, ms in times.items():
            assert math.isfinite(ms) and ms > 0, f"{where}: {name} time {ms}"
        for name, ratio in r["ratio"].items():
            assert math.isclose(ratio, r["baseline_ms"][name] / r["ours_ms"]), f"{where}: {name}"
        assert math.isclose(r["copy_ratio"], r["ours_ms"] / r["baseline_ms"]["copy"]), where
        if r["mode"] == "forward":  # the printed in-place column is its time over copy_'s
            in_place = r["baseline_ms"]["ours_in_place"] / r["baseline_ms"]["copy"]
            line = next(ln for ln in proc.stdout.splitlines()
                        if ln.split()[:3] == [r["case"], "4K", str(r["threads"])])
            assert line.split()[-1] == f"{in_place:.2f}", f"{where}: {line}"
    ours = {(r["case"], r["threads"]): r["ours_ms"] for r in rows}
    scaling = {(s["case"], s["threads"]): s["speedup"] for s in result["thread_scaling"]}
    assert set(scaling) == {(c, 2) for c, _ in ours}, f"thread scaling rows {sorted(scaling)}"
    for (case, threads), speedup in scaling.items():
        assert math.isclose(speedup, ours[(case, 1)] / ours[(case, threads)]), case
    assert [t["target"] for t in result["targets"]][-1].startswith("2 threads"), result["targets"]
    assert "targets" in proc.stdout
    frows = result["float_rows"]
    assert sorted((r["case"], r["threads"]) for r in frows) == sorted(
        (f"{c}/forward", t) for c in ("fp8_e4m3", "mxfp4") for t in THREADS), frows
    for r in frows:
        assert set(r["baseline_ms"]) == {"composite", "copy_fresh", "copy_reused"}, r
        assert all(math.isfinite(ms) and ms > 0 for ms in [r["ours_ms"], *r["baseline_ms"].values()])
        assert math.isclose(r["composite_speedup"], r["baseline_ms"]["composite"] / r["ours_ms"])
        assert math.isclose(r["copy_fresh_ratio"], r["ours_ms"] / r["baseline_ms"]["copy_fresh"])
        assert r["case"] in proc.stdout
    arows = result["axis_rows"]
    assert sorted((r["case"], r["channels"], r["threads"]) for r in arows) == sorted(
        (f"last_axis/{m}", c, t) for m in BASELINES for c in (64, 1024) for t in THREADS), arows
    for r in arows:
        assert set(r["ms"]) == {"last", "axis0", "torch", "clone"}, r
        assert all(math.isfinite(ms) and ms > 0 for ms in r["ms"].values()), r
        assert math.isclose(r["last_over_axis0"], r["ms"]["last"] / r["ms"]["axis0"]), r
        assert math.isclose(r["torch_over_last"], r["ms"]["torch"] / r["ms"]["last"]), r
    assert [t["target"] for t in result["axis_targets"]][0].startswith("last axis"), result
    assert "last_axis/range" in proc.stdout
