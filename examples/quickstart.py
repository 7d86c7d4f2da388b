"""Quickstart: train a small CNN, then walk the precision workflow FP32 -> W16A16 -> W8A16 ->
W8A8 -> W4A8 with torchqsim, export the W8A8 model and check it in onnxruntime.

The steps (each a function below, reused by the tests):

1. train :class:`digits.DigitsCNN` on scikit-learn's bundled 8x8 digits (no download);
2. post-training quantization (PTQ) at each precision (weights W / activations A bits):
   batch-norm folding and cross-layer equalization (``equalize_model``), a
   :class:`~torchqsim.quantsim.QuantizationSimModel` with per-channel weights and
   ``tf_enhanced`` (SQNR-optimal) calibration on 256 training images, then empirical bias
   correction (``correct_bias``) and a re-calibration. W16A16 is the sanity check: it must
   match FP32;
3. quantization-aware training (QAT) of the W4A8 sim: a few epochs of ordinary training of
   ``sim.model`` (straight-through estimator), at a small learning rate;
4. export of the W8A8 sim (``sim.export``: ``{prefix}.onnx``, ``.encodings``, ``_qdq.onnx``,
   ...) and a check that onnxruntime running the QuantizeLinear/DequantizeLinear graph
   predicts what the sim predicts.

It prints one table: precision, test accuracy, drop vs FP32, model size (parameters at their
quantized bitwidth; unquantized ones at 32 bits) and the seconds each step took.

Run it with::

    python examples/quickstart.py            # ~1-2 minutes on 2 cores
    python examples/quickstart.py --quick    # fewer epochs (what CI runs)

Example (the workflow as a function)::

    >>> result = run_workflow(QUICK, out_dir=tempfile.mkdtemp())   # doctest: +SKIP
    >>> [row.precision for row in result.rows]                     # doctest: +SKIP
    ['FP32', 'W16A16', 'W8A16', 'W8A8', 'W4A8 PTQ', 'W4A8 QAT']
"""

import argparse
import copy
import os
import sys
import tempfile
import time
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from digits import (DigitsCNN, DigitsData, accuracy, load_digits_data, predict,  # noqa: E402
                    seed_everything, train)
from torchqsim.ptq import equalize_model  # noqa: E402
from torchqsim.ptq.bias_correction import correct_bias  # noqa: E402
from torchqsim.quantsim import QuantizationSimModel  # noqa: E402

__all__ = ["FULL", "QUICK", "Settings", "Row", "Result", "model_size_bytes", "quantize",
           "run_workflow", "check_qdq_onnx", "format_table", "main"]


class Settings(NamedTuple):
    """Knobs of one run.

    Example::

        >>> QUICK.epochs < FULL.epochs
        True
    """

    epochs: int            # FP32 training
    qat_epochs: int        # W4A8 quantization-aware training
    qat_lr: float = 5e-4
    calibration_images: int = 256
    seed: int = 0


FULL = Settings(epochs=15, qat_epochs=4)
QUICK = Settings(epochs=6, qat_epochs=2)

PRECISIONS = (  # (row name, weight bits, activation bits, bias correction)
    ("W16A16", 16, 16, False),
    ("W8A16", 8, 16, True),
    ("W8A8", 8, 8, True),
    ("W4A8 PTQ", 4, 8, True),
)


class Row(NamedTuple):
    """One line of the table: accuracy in percent, size in bytes, time in seconds."""

    precision: str
    accuracy: float
    size_bytes: int
    seconds: float


class Result(NamedTuple):
    """What :func:`run_workflow` measured.

    ``agreement`` is the share (percent) of test images on which onnxruntime running the
    exported W8A8 QDQ graph predicts the sim's class; ``exported`` maps the export file kinds
    to their paths.
    """

    rows: list
    agreement: float
    exported: dict


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of `model`'s parameters, each at its quantizer's bitwidth (32 if unquantized);
    the quantizers' own parameters (encoding min/max) are not counted.

    Example::

        >>> model_size_bytes(nn.Linear(4, 2))   # 10 parameters * 4 bytes
        40
    """
    bits = {}
    for name, module in model.named_modules():
        for pname, q in getattr(module, "param_quantizers", {}).items():
            if q is not None:
                bits[f"{name}.{pname}" if name else pname] = q.bitwidth
    total_bits = sum(p.numel() * bits.get(n, 32) for n, p in model.named_parameters()
                     if "_quantizers." not in n)  # not the quantizers' own min/max
    return (total_bits + 7) // 8


def _calibration_batches(data: DigitsData, settings: Settings) -> list[Tensor]:
    x = data.x_train[:settings.calibration_images]
    return list(x.split(64))


def quantize(fp32: nn.Module, data: DigitsData, settings: Settings, param_bw: int,
             output_bw: int, bias_correction: bool) -> QuantizationSimModel:
    """PTQ of a copy of `fp32`: BN folding + CLE, tf_enhanced calibration, bias correction.

    Example::

        >>> sim = quantize(model, data, QUICK, param_bw=8, output_bw=8,      # doctest: +SKIP
        ...                bias_correction=True)
        >>> accuracy(sim.model, data.x_test, data.y_test)                    # doctest: +SKIP
        99.16666666666667
    """
    model = copy.deepcopy(fp32).eval()
    dummy = data.x_train[:1]
    equalize_model(model, dummy)  # folds the batch norms, equalizes Conv-ReLU-Conv pairs
    sim = QuantizationSimModel(model, dummy, quant_scheme="tf_enhanced",
                               default_param_bw=param_bw, default_output_bw=output_bw,
                               config_file="per_channel")
    batches = _calibration_batches(data, settings)

    def calibrate(m: nn.Module) -> None:
        for xb in batches:
            m(xb)

    sim.compute_encodings(calibrate)
    if bias_correction:
        correct_bias(model, sim, batches, num_batches=len(batches))
        sim.compute_encodings(calibrate)  # activation ranges of the corrected model
    return sim


def check_qdq_onnx(path: str, sim: QuantizationSimModel, x: Tensor) -> float:
    """Percent of images in `x` on which onnxruntime running the QDQ ONNX at `path` predicts
    the class ``sim.model`` predicts.

    Example::

        >>> check_qdq_onnx(paths["qdq_onnx"], sim, data.x_test)   # doctest: +SKIP
        100.0
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batch = session.get_inputs()[0].shape[0]
    step = batch if isinstance(batch, int) else len(x)
    logits = [session.run(None, {name: xb.numpy()})[0] for xb in x.split(step)]
    ort_pred = torch.from_numpy(np.concatenate(logits).argmax(axis=1))
    return 100.0 * (ort_pred == predict(sim.model, x)).double().mean().item()


def run_workflow(settings: Settings, out_dir: str) -> Result:
    """Runs steps 1-4 of the module docstring; returns the table rows and the export check.

    Args:
        settings: :data:`FULL`, :data:`QUICK` or your own :class:`Settings`.
        out_dir: an existing directory for the exported W8A8 files.
    """
    seed_everything(settings.seed)
    data = load_digits_data(seed=settings.seed)
    rows = []

    start = time.perf_counter()
    fp32 = DigitsCNN()
    train(fp32, data.x_train, data.y_train, settings.epochs, seed=settings.seed,
          desc="FP32 training")
    rows.append(Row("FP32", accuracy(fp32, data.x_test, data.y_test), model_size_bytes(fp32),
                    time.perf_counter() - start))

    sims = {}
    for name, param_bw, output_bw, bias_correction in PRECISIONS:
        start = time.perf_counter()
        sim = quantize(fp32, data, settings, param_bw, output_bw, bias_correction)
        sims[name] = sim
        rows.append(Row(name, accuracy(sim.model, data.x_test, data.y_test),
                        model_size_bytes(sim.model), time.perf_counter() - start))

    start = time.perf_counter()
    qat = sims["W4A8 PTQ"]
    train(qat.model, data.x_train, data.y_train, settings.qat_epochs, lr=settings.qat_lr,
          seed=settings.seed + 1, desc="W4A8 QAT")
    qat.compute_param_encodings()  # eval uses the encodings of the final weights
    rows.append(Row("W4A8 QAT", accuracy(qat.model, data.x_test, data.y_test),
                    model_size_bytes(qat.model), time.perf_counter() - start))

    exported = sims["W8A8"].export(out_dir, "digits_w8a8", data.x_test[:1])
    agreement = check_qdq_onnx(exported["qdq_onnx"], sims["W8A8"], data.x_test)
    return Result(rows, agreement, exported)


def format_table(rows: list) -> str:
    """The results table (first row: the FP32 reference).

    Example::

        >>> print(format_table([Row("FP32", 99.0, 62000, 9.5), Row("W8A8", 98.5, 16000, 2.0)]))
        precision  accuracy  drop vs FP32  size (KiB)  time (s)
        FP32        99.00 %       0.00 pt        60.5       9.5
        W8A8        98.50 %       0.50 pt        15.6       2.0
    """
    reference = rows[0].accuracy
    lines = [f"{'precision':<9}  {'accuracy':>8}  {'drop vs FP32':>12}  {'size (KiB)':>10}  "
             f"{'time (s)':>8}"]
    for r in rows:
        lines.append(f"{r.precision:<9}  {r.accuracy:>6.2f} %  {reference - r.accuracy:>9.2f} pt"
                     f"  {r.size_bytes / 1024:>10.1f}  {r.seconds:>8.1f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (CI)")
    parser.add_argument("--out", default=None,
                        help="directory for the exported W8A8 model (default: a temporary one)")
    args = parser.parse_args(argv)
    out_dir = args.out or tempfile.mkdtemp(prefix="torchqsim_quickstart_")
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    result = run_workflow(QUICK if args.quick else FULL, out_dir)
    print(format_table(result.rows))
    files = ", ".join(sorted(os.path.basename(p) for p in result.exported.values()))
    print(f"\nexported W8A8: {files} in {out_dir}")
    print(f"onnxruntime on the QDQ ONNX agrees with the sim on {result.agreement:.2f} % of the "
          f"{len(load_digits_data().y_test)} test images")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0 if result.agreement >= 99.0 else 1


if __name__ == "__main__":
    sys.exit(main())
