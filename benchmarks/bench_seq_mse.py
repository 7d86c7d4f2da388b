"""SeqMSE time per layer (issue 15's benchmark row), as a ratio to the FP forward of the same
calibration data in the same run.

The model is a stack of Llama-shaped decoder blocks made of Linear layers only (q, k, v, o
projections ``hidden x hidden``, gate/up ``hidden -> intermediate``, down back; a gated MLP and
residuals, no attention softmax): SeqMSE's cost is its per-layer search over the layers'
weights and cached inputs, which the shapes and token count fix. For per-channel W4 and LPBQ W4
(blocks of 64, decompressed 8 bits) it times ``apply_seq_mse`` with 20 candidates on a fresh sim
and reports milliseconds per layer and the ratio of one layer's search to one FP forward of the
model over the calibration batches. The sims use min/max weight encodings (AIMET's LLM recipes),
computed before the timing starts.

Run::

    python benchmarks/bench_seq_mse.py                 # hidden 512, 4 blocks, 4 x 128 tokens
    python benchmarks/bench_seq_mse.py --quick         # hidden 128, 1 block (smoke run)
"""

import argparse
import time

import torch
from torch import nn

from torchqsim.ptq import apply_seq_mse
from torchqsim.quantsim import QuantizationSimModel


class _Block(nn.Module):
    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(hidden, hidden, bias=False) for _ in range(4))
        self.gate = nn.Linear(hidden, intermediate, bias=False)
        self.up = nn.Linear(hidden, intermediate, bias=False)
        self.down = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x):
        x = x + self.o(self.v(x) * torch.sigmoid(self.q(x) * self.k(x)))
        return x + self.down(nn.functional.silu(self.gate(x)) * self.up(x))


def _model(hidden: int, blocks: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*(_Block(hidden, hidden * 3) for _ in range(blocks))).eval()


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--tokens", type=int, default=128, help="tokens per batch row")
    p.add_argument("--batches", type=int, default=4, help="calibration batches of 1 row")
    p.add_argument("--candidates", type=int, default=20)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        a.hidden, a.blocks, a.batches = 128, 1, 2
    data = [torch.randn(1, a.tokens, a.hidden) for _ in range(a.batches)]
    model = _model(a.hidden, a.blocks)
    with torch.no_grad():
        fp = min(_seconds(lambda: [model(x) for x in data]) for _ in range(3))
    layers = 7 * a.blocks
    print(f"{layers} Linear layers, hidden {a.hidden}, {a.batches} x {a.tokens} tokens, "
          f"{a.candidates} candidates; FP forward of the data: {fp * 1e3:.3f} ms")
    for label, kw in (("per-channel W4", {}), ("LPBQ W4 (block 64, 8-bit)",
                                                {"block_size": min(64, a.hidden),
                                                 "decompressed_bw": 8})):
        sim = QuantizationSimModel(_model(a.hidden, a.blocks), data[0], default_param_bw=4,
                                   default_output_bw=16, quant_scheme="min_max")
        if kw:
            sim.set_precision(nn.Linear, **kw)
        sim.compute_param_encodings()   # not timed: the weights' initial encodings
        t = _seconds(lambda: apply_seq_mse(sim, data, num_candidates=a.candidates,
                                           progress=False))
        print(f"{label}: SeqMSE {t / layers * 1e3:.3f} ms per layer = "
              f"{t / layers / fp:.2f}x the FP forward of the calibration data")


if __name__ == "__main__":
    main()
