"""The sim on a CUDA GPU against the FP32 model on the same GPU, in the same run (issue 19).

Models: bench_model.py's ResNet-style CNN (``--cnn-batch`` images of 64x64) and BERT-style
encoder (``--bert-batch`` sequences of 128, hidden 256), on ``cuda``, TF32 off. Sim:
``QuantizationSimModel`` W8A8 with the ``per_channel`` config, calibrated on the batch.

Rows per model, ratios of medians of wall-clock times timed interleaved (each call followed by
``torch.cuda.synchronize()``, so host overhead and GPU time both count, as a user's step sees):

- ``eval_fwd``: calibrated sim eval forward / FP32 eval forward (no grad);
- ``qat_tf``: one SGD step (forward, MSE, backward, step) of the sim with fixed ranges / FP32;
- ``qat_range_learning``: the same with learned ranges (target <= 1.15 for the QAT rows).

Without a CUDA GPU the script says so and exits 0.

Usage::

    python benchmarks/bench_gpu_model.py
    python benchmarks/bench_gpu_model.py --repeats 10 --out /tmp/gpu_model.json
"""

import argparse
import copy
import sys
from pathlib import Path

import torch

import timing
from bench_cuda import no_gpu
from bench_model import ResNet, Bert, calibrated_sim, no_grad, stepper

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "gpu_model.json"
TARGET = 1.15


def synced(fn):
    def call():
        fn()
        torch.cuda.synchronize()
    return call


def gpu_models(args):
    torch.manual_seed(0)
    cnn = ResNet()
    with torch.no_grad():
        cnn.train()(torch.randn(16, 3, 64, 64))
    yield "resnet", cnn.eval().cuda(), torch.randn(args.cnn_batch, 3, 64, 64, device="cuda")
    yield "bert", Bert().eval().cuda(), torch.randn(args.bert_batch, 128, 256, device="cuda")


def model_rows(name, model, x, args):
    sim = calibrated_sim(model, x, "tf", [x])
    sim.model.eval()
    cases = {"eval_fwd": {"ours": no_grad(lambda: sim.model(x)), "base": no_grad(lambda: model(x))}}
    for scheme, row in (("tf", "qat_tf"), ("range_learning_tf_init", "qat_range_learning")):
        qsim, fp32 = calibrated_sim(model, x, scheme, [x]), copy.deepcopy(model)
        qsim.model.train(), fp32.train()
        cases[row] = {"ours": stepper(qsim.model, x), "base": stepper(fp32, x)}
    rows = []
    for row, fns in cases.items():
        t = timing.time_row({k: synced(f) for k, f in fns.items()}, args.warmup, args.repeats)
        rows.append({"model": name, "row": row, "ours_ms": t["ours"],
                     "base_ms": t["base"], "ratio": t["ours"] / t["base"],
                     "target": TARGET if row.startswith("qat") else None})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cnn-batch", type=int, default=64)
    parser.add_argument("--bert-batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    args = parser.parse_args(argv)
    if no_gpu("bench_gpu_model"):
        return 0
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.cuda.get_device_name()
    print(f"bench_gpu_model on {device}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    rows = []
    for name, model, x in gpu_models(args):
        for r in model_rows(name, model, x, args):
            verdict = "" if r["target"] is None else \
                f"  target <= {r['target']:.2f} " + ("met" if r["ratio"] <= r["target"] else "MISSED")
            print(f"{r['model']:7} {r['row']:20} ours {r['ours_ms']:8.2f} ms  base "
                  f"{r['base_ms']:8.2f} ms  ratio {r['ratio']:5.2f}{verdict}", flush=True)
            rows.append(r)
    timing.write_json(args.out, {"device": device, "torch": torch.__version__,
                                 "cuda": torch.version.cuda, "repeats": args.repeats,
                                 "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
