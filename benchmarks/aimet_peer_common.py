"""What bench_aimet.py times, for either simulator: imported by bench_aimet.py (torchqsim, main
environment) and by aimet_peer.py (aimet-torch, in the side venv), so both run the same models,
data and measurements. Plain torch and the standard library only.
"""

import os
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "aimet_parity"))
from models import CnnResidual, TransformerBlock  # noqa: E402  (the parity suite's models)

CALIB_BATCHES = 8


def model_and_data(name: str) -> tuple[nn.Module, list]:
    """(model, batches): the calibration batches, then the training batch."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if name == "cnn":
        return CnnResidual().eval(), [torch.randn(32, 3, 32, 32, generator=g)
                                      for _ in range(CALIB_BATCHES + 1)]
    return TransformerBlock(d=64).eval(), [torch.randn(16, 64, 64, generator=g)
                                           for _ in range(CALIB_BATCHES + 1)]


def measure(make_sim, name: str, repeats: int, steps: int) -> dict:
    """Median seconds of compute_encodings over CALIB_BATCHES batches (a fresh sim each repeat)
    and median milliseconds of one QAT step (forward, MSE loss, backward, SGD step) of
    `make_sim(model, dummy_input)`."""
    model, data = model_and_data(name)
    calib = []
    for _ in range(repeats):
        sim = make_sim(model, data[0])
        start = time.perf_counter()
        sim.compute_encodings(lambda m, _: [m(x) for x in data[:CALIB_BATCHES]], None)
        calib.append(time.perf_counter() - start)
    qat = sim.model.train()
    opt = torch.optim.SGD([p for p in qat.parameters() if p.requires_grad], lr=1e-4)
    x = data[-1]
    target = torch.zeros_like(qat(x)).detach()
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(qat(x), target).backward()
        opt.step()
        if i >= 2:  # two warm-up steps
            times.append((time.perf_counter() - start) * 1e3)
    return {"calib_s": statistics.median(calib), "step_ms": statistics.median(times)}
