"""How exactly the onnxruntime target mode predicts onnxruntime on the whole test zoo (issue 20):
for every model of ``tests/python/zoo/zoo_models.py`` at W8A8 and W8A16 (8-bit weights), with
the ``default`` and ``per_channel`` configs, a min-max calibrated sim in target mode is compared
with onnxruntime (default optimizations) on its exported ``_qdq.onnx`` by
``sim.compare_with_runtime``. One line per sim: the quantized tensors compared, how many are not
bit-equal, the largest difference in steps of their grids, the fraction of bit-equal values per
model output, and the first divergent quantizer. Not a test (about 15 minutes for the zoo on
one thread); the figures are quoted in docs/runtime_target.md §3.

Usage::

    python benchmarks/target_zoo_sweep.py                      # every zoo model
    python benchmarks/target_zoo_sweep.py --models resnet,t5 --bitwidths 16
"""

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python" / "zoo"))

import zoo_models  # noqa: E402

from torchqsim._forward import run_model  # noqa: E402
from torchqsim.quantsim import QuantizationSimModel  # noqa: E402

MODELS = ("bert", "distilbert", "roberta", "gpt2", "llama", "qwen2", "mistral", "gemma", "phi3",
          "t5", "vit", "swin", "convnext", "resnet", "mobilenetv2", "whisper", "clip_text",
          "clip_vision")


def sweep_line(name: str, config: str, output_bw: int) -> str:
    """The comparison line of zoo model `name` with `config` at W8A`output_bw`."""
    model, x = getattr(zoo_models, name)()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model, x, quant_scheme="tf", default_output_bw=output_bw,
                                   default_param_bw=8, config_file=config)
        sim.compute_encodings(lambda m: run_model(m, x))
        sim.model.eval()
        sim.set_target("onnxruntime")
        report = sim.compare_with_runtime(x, verbose=False)
    worst = max((t.max_steps for t in report.tensors), default=0.0)
    off = sum(t.bit_equal < 1 for t in report.tensors)
    outputs = [round(o, 4) for o in report.outputs]
    return (f"{name:12} W8A{output_bw:<2} {config:11} tensors {len(report.tensors):3} "
            f"not-equal {off:3} max-steps {worst:.3f} outputs {outputs} "
            f"first {report.first_divergent}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated zoo builders (default: all)")
    parser.add_argument("--bitwidths", default="8,16", help="activation bit widths (8,16)")
    parser.add_argument("--configs", default="default,per_channel")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models.split(",") if m not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {unknown}; choose from {', '.join(MODELS)}")
    torch.set_num_threads(1)
    for name in args.models.split(","):
        for config in args.configs.split(","):
            for bw in (int(b) for b in args.bitwidths.split(",")):
                print(sweep_line(name, config, bw), flush=True)


if __name__ == "__main__":
    main()
