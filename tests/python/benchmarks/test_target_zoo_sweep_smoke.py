"""Smoke test of benchmarks/target_zoo_sweep.py: one zoo sim (HF ResNet, W8A8, default config,
which the target mode predicts exactly: onnxruntime is the oracle inside the script) prints one
line with every tensor bit-equal, and an unknown model is refused by name."""

import re
import subprocess
import sys
from pathlib import Path

SWEEP = Path(__file__).resolve().parents[3] / "benchmarks" / "target_zoo_sweep.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SWEEP), *args], capture_output=True, text=True,
                          timeout=600)


def test_one_sim_prints_its_comparison_line():
    proc = _run("--models", "resnet", "--bitwidths", "8", "--configs", "default")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = re.findall(r"^resnet\s+W8A8\s+default\s+tensors\s+(\d+)\s+not-equal\s+(\d+)\s+"
                       r"max-steps ([\d.]+) outputs \[([\d., ]+)\] first (\S+)$", proc.stdout, re.M)
    assert len(lines) == 1, proc.stdout
    tensors, off, steps, outputs, first = lines[0]
    assert int(tensors) >= 10 and int(off) == 0 and float(steps) == 0.0 and first == "None"
    assert [float(o) for o in outputs.split(",")] == [1.0, 1.0]


def test_unknown_model_is_refused_by_name():
    proc = _run("--models", "resnet,bogus")
    assert proc.returncode == 2 and "bogus" in proc.stderr, proc.stderr
