"""Cost of the onnxruntime target mode (issue 20): target-mode eval forward / reference-mode eval
forward of the same calibrated sim, timed interleaved in one run (target <= 2x).

Models: ``bench_model.py``'s ResNet (BatchNorms folded first, as CNNs are deployed, so its convs
fuse into QLinearConv) and BERT-style encoder (its Linears fuse into QGemm; attention matmuls
and softmax stay on the reference semantics). W8A8, ``per_channel`` config, min-max ranges.
Two target rows per model: this CPU's arithmetic, and ``(int16 pairs)``: the target mode with
MLAS's int16 pair saturation forced on (``set_target(..., saturation=True)``: what an x86 CPU
without VNNI computes, the costlier emulation). All rows produce fresh outputs. Also prints how
many modules compute fused kernels.

Usage::

    python benchmarks/bench_target.py                  # both models, 1 thread
    python benchmarks/bench_target.py --models resnet --repeats 5
"""

import argparse
import copy
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import timing  # noqa: E402
from bench_model import models  # noqa: E402

from torchqsim.ptq.batch_norm_fold import fold_all_batch_norms  # noqa: E402
from torchqsim.quantsim import QuantizationSimModel  # noqa: E402

TARGET = 2.0


def _sim(model, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model, x, quant_scheme="tf", config_file="per_channel")
    sim.compute_encodings(lambda m: m(x))
    sim.model.eval()
    return sim


def rows(names, repeats, clock):
    for name, model, x in models(names):
        model = copy.deepcopy(model)
        if any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
            fold_all_batch_norms(model, x)
        reference, target, saturating = _sim(model, x), _sim(model, x), _sim(model, x)
        fused = target.set_target("onnxruntime")
        saturating.set_target("onnxruntime", saturation=True)

        def run(sim):
            def call():
                with torch.no_grad():
                    sim.model(x)
            return call

        ms = timing.time_row({"target": run(target), "saturating": run(saturating),
                              "reference": run(reference)}, 2, repeats,
                             timing.CLOCKS[clock])
        for label, key in ((name, "target"), (f"{name} (int16 pairs)", "saturating")):
            ratio = ms[key] / ms["reference"]
            yield [label, str(len(fused)), f"{ms['reference']:.2f}", f"{ms[key]:.2f}",
                   f"{ratio:.2f}", "ok" if ratio <= TARGET else "MISS"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet", "bert"])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    timing.add_clock_argument(parser)
    args = parser.parse_args()
    timing.check_clock(parser, args.clock, [args.threads])
    torch.set_num_threads(args.threads)
    head = ["model", "fused", "reference ms", "target ms", "target/reference", f"<= {TARGET}"]
    print(timing.text_table(head, list(rows(args.models, args.repeats, args.clock))))


if __name__ == "__main__":
    main()
