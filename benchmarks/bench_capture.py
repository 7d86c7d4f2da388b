"""Capture, sim construction and export times on zoo models, as ratios to baselines timed in
the same run (not a test; issue 12's targets: sim build <= 2x (one FP32 forward + capture),
export <= 3x ``torch.onnx.export`` of the FP32 model).

Per model (tiny random-init configs of tests/python/zoo/):

- ``forward``: one FP32 forward, eval mode, no grad (median of 3);
- ``capture``: ``prepare_model(model, dummy_input=...)`` (capture, rewrites, the reproduction
  check), median of ``ROUNDS`` (5), alternated with the sim builds;
- ``sim``: ``QuantizationSimModel(model, dummy_input)`` (copy, prepare, config, quantizers),
  median of ``ROUNDS``;
- ``build ratio`` = sim / (forward + capture);
- ``export``: ``sim.export`` (five files, two ONNX graphs from one capture) against
  ``fp32 export``: ``torch.onnx.export(model, dynamo=True)`` of the FP32 model;
- ``export ratio`` = export / fp32 export.

Usage::

    python benchmarks/bench_capture.py [--models resnet,bert,llama,lstm] [--out FILE.json]
"""

import argparse
import inspect
import os
import statistics
import sys
import tempfile
import time
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python", "zoo"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from timing import text_table, write_json  # noqa: E402

DEFAULT_MODELS = "resnet,mobilenetv2,bert,llama,t5,lstm,unet,transformer_encoder"
ROUNDS = 5


def _builders():
    import plain_models
    import zoo_models
    return {**zoo_models.HF, **plain_models.PLAIN}


def _seconds(fn, repeats=1):
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _row(name, build):
    from torchqsim import QuantizationSimModel, prepare_model
    from torchqsim._forward import run_model, split_dummy_input
    model, dummy = build()
    if isinstance(dummy, dict) and "use_cache" in inspect.signature(model.forward).parameters:
        dummy = {**dummy, "use_cache": False}  # torch.onnx.export cannot return a cache object
    with torch.no_grad():
        forward = _seconds(lambda: run_model(model, dummy), repeats=3)
    captures, sim_samples, sims = [], [], []
    for _ in range(ROUNDS):  # alternated, so that load swings hit both
        captures.append(_seconds(lambda: prepare_model(model, dummy_input=dummy)))
        sim_samples.append(_seconds(lambda: sims.append(QuantizationSimModel(model, dummy))))
    capture, sim_s = statistics.median(captures), statistics.median(sim_samples)
    sim = sims[0]
    sim.compute_encodings(lambda m: run_model(m, dummy))
    args, kwargs = split_dummy_input(dummy)
    with tempfile.TemporaryDirectory() as d:
        fp32 = _seconds(lambda: torch.onnx.export(model, args, os.path.join(d, "fp32.onnx"),
                                                  kwargs=kwargs, dynamo=True, verbose=False))
        export = _seconds(lambda: sim.export(d, "m", dummy))
    return {"model": name, "forward_s": forward, "capture_s": capture, "sim_s": sim_s,
            "build_ratio": sim_s / (forward + capture), "export_s": export,
            "fp32_export_s": fp32, "export_ratio": export / fp32}


def _warm_up():
    """One untimed ``torch.onnx.export`` and one untimed capture: the exporter's one-time set-up
    (the ONNX function libraries) and the capture's first-call costs (lazy imports) would
    otherwise be charged to the first model's FP32 export and capture."""
    from torchqsim import prepare_model
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    prepare_model(model, dummy_input=torch.randn(1, 2))
    with tempfile.TemporaryDirectory() as d:
        torch.onnx.export(model, (torch.randn(1, 2),), os.path.join(d, "warm.onnx"),
                          dynamo=True, verbose=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    builders = _builders()
    warnings.simplefilter("ignore")
    _warm_up()
    rows = [_row(n, builders[n]) for n in args.models.split(",")]
    head = ["model", "forward ms", "capture ms", "sim ms", "build ratio", "export s",
            "fp32 export s", "export ratio"]
    print(text_table(head, [[r["model"], f"{r['forward_s'] * 1e3:.1f}",
                             f"{r['capture_s'] * 1e3:.0f}", f"{r['sim_s'] * 1e3:.0f}",
                             f"{r['build_ratio']:.2f}", f"{r['export_s']:.1f}",
                             f"{r['fp32_export_s']:.1f}", f"{r['export_ratio']:.2f}"]
                            for r in rows]))
    if args.out:
        import pathlib
        write_json(pathlib.Path(args.out), {"rows": rows})


if __name__ == "__main__":
    main()
