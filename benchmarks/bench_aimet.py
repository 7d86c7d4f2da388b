"""torchqsim against aimet-torch 2.42 (a peer in the same run): compute_encodings (tf,
tf_enhanced) over 8 batches and one QAT step, on the AIMET parity suite's CNN and transformer
block (not a test).

aimet-torch runs in its side venv (scripts/aimet_venv.sh), through benchmarks/aimet_peer.py; both
sides time the same models, data and steps (benchmarks/aimet_peer_common.py), one thread each.
The two sides run in alternating rounds so that machine load drift hits both alike; each figure
is the median over rounds of the per-round medians.

Usage::

    python benchmarks/bench_aimet.py [--venv build/aimet-venv] [--rounds 3] [--repeats 3]
                                     [--steps 10]

Prints per (model, scheme): seconds of compute_encodings and ms of a QAT step for torchqsim and
aimet-torch, and the ratios aimet / torchqsim (> 1: torchqsim is faster).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aimet_peer_common  # noqa: E402
import timing  # noqa: E402

from torchqsim.quantsim import QuantizationSimModel  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def _ours(name: str, scheme: str, repeats: int, steps: int) -> dict:
    def make_sim(model, x):
        return QuantizationSimModel(model, x, quant_scheme=scheme)
    return aimet_peer_common.measure(make_sim, name, repeats, steps)


def _aimet(python: str, name: str, scheme: str, repeats: int, steps: int) -> dict:
    out = subprocess.run([python, os.path.join(HERE, "aimet_peer.py"), name, scheme,
                          str(repeats), str(steps)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"aimet_peer.py failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=os.environ.get("TORCHQSIM_AIMET_VENV",
                                                         os.path.join(HERE, "..", "build",
                                                                      "aimet-venv")))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="calibrations per round")
    parser.add_argument("--steps", type=int, default=10, help="timed QAT steps per round")
    args = parser.parse_args(argv)
    python = os.path.join(args.venv, "bin", "python")
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    lines = []
    for name in ("cnn", "transformer"):
        for scheme in ("tf", "tf_enhanced"):
            rounds = {"ours": [], "aimet": []}
            for _ in range(args.rounds):
                rounds["ours"].append(_ours(name, scheme, args.repeats, args.steps))
                rounds["aimet"].append(_aimet(python, name, scheme, args.repeats, args.steps))
            med = {side: {k: statistics.median(r[k] for r in rs) for k in ("calib_s", "step_ms")}
                   for side, rs in rounds.items()}
            lines.append([name, scheme, f"{med['ours']['calib_s']:.3f}",
                          f"{med['aimet']['calib_s']:.3f}",
                          f"{med['aimet']['calib_s'] / med['ours']['calib_s']:.2f}",
                          f"{med['ours']['step_ms']:.1f}", f"{med['aimet']['step_ms']:.1f}",
                          f"{med['aimet']['step_ms'] / med['ours']['step_ms']:.2f}"])
    print(timing.text_table(["model", "scheme", "calib s (ours)", "calib s (aimet)", "aimet/ours",
                             "QAT ms (ours)", "QAT ms (aimet)", "aimet/ours"], lines,
                            left=(0, 1)))


if __name__ == "__main__":
    main()
