"""QAT training-step time of a QuantizationSimModel against the same FP32 model, and the time of
compute_encodings over 32 batches (not a test; issue 4's target: QAT step <= 1.5x FP32).

Models: a small CNN (Conv-BN-ReLU blocks, residual add, pooling, Linear) and a small transformer
block (attention by matmul + softmax, LayerNorm, GELU MLP), with batch sizes chosen so that an
FP32 training step takes roughly 50 ms on one core. Each step is forward + MSE loss + backward +
SGD step. Schemes: ``tf`` (STE; weight encodings recomputed every step), ``tf_enhanced`` (the
same with the SQNR search for the weights) and ``range_learning_tf_init`` (learnable min/max).

Usage::

    python benchmarks/bench_qat.py [--steps 20] [--threads 1] [--no-compile]

Prints one line per (model, scheme): FP32 ms/step, sim ms/step (the two timed alternately, step
by step, so machine load hits both alike), their ratio, and
compute_encodings seconds for 32 batches; and, for range learning, the step of
``torch.compile(sim.model)`` against the eager FP32 step (compile time excluded by the warm-up).
"""

import argparse
import math
import os
import sys
import time
import warnings

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python", "quantsim"))
from test_sim import Block, Cnn  # noqa: E402  (the test models)

from torchqsim.quantsim import QuantizationSimModel  # noqa: E402

import timing  # noqa: E402


def _models():
    torch.manual_seed(0)
    yield "cnn", Cnn(), torch.randn(96, 3, 32, 32)
    yield "transformer", Block(d=128, heads=4), torch.randn(32, 64, 128)


def _stepper(model: nn.Module, x: torch.Tensor):
    """One SGD training step of `model` on `x` (forward + MSE loss + backward + step)."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    target = torch.zeros_like(model(x)).detach()
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(x), target).backward()
        opt.step()

    return step


def _step_times(a: nn.Module, b: nn.Module, x: torch.Tensor, steps: int) -> tuple[float, float]:
    """Median seconds of one training step of `a` and of `b`, timed alternately (after 2 warm-up
    steps each) so that both see the same machine load."""
    ms = timing.time_row({"a": _stepper(a, x), "b": _stepper(b, x)}, warmup=2, repeats=steps)
    return ms["a"] / 1e3, ms["b"] / 1e3


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row (20)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the torch.compile(sim.model) rows (compiling takes ~1 min)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    print(f"threads={args.threads} steps={args.steps}")
    print(f"{'model':12} {'scheme':33} {'fp32 ms':>8} {'sim ms':>8} {'ratio':>6} "
          f"{'calib 32 s':>10}")
    for name, model, x in _models():
        for scheme in ("tf", "tf_enhanced", "range_learning_tf_init"):
            sim = QuantizationSimModel(model, x, quant_scheme=scheme)
            batches = [x[: max(1, x.shape[0] // 4)]] * 32
            t0 = time.perf_counter()
            sim.compute_encodings(lambda m, data: [m(b) for b in data], batches)
            calib = time.perf_counter() - t0
            fp32, step = _step_times(model, sim.model, x, args.steps)
            print(f"{name:12} {scheme:33} {fp32 * 1e3:8.1f} {step * 1e3:8.1f} "
                  f"{step / fp32:6.2f} {calib:10.2f}")
            assert math.isfinite(fp32)
            if scheme == "range_learning_tf_init" and not args.no_compile:
                fp32, step = _step_times(model, torch.compile(sim.model), x, args.steps)
                print(f"{name:12} {scheme + ' compiled':33} {fp32 * 1e3:8.1f} {step * 1e3:8.1f} "
                      f"{step / fp32:6.2f} {'-':>10}")

if __name__ == "__main__":
    main()
