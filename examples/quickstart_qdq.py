"""Quickstart: fake-quantize a tensor and a small model's weights with torchqsim.

The script fake-quantizes (quantize to an integer grid and back, in fp32) a random tensor and the
weights of a small MLP trained for a few hundred steps on a synthetic regression task. It uses
8-, 4- and 16-bit symmetric signed grids, per-tensor and per-channel (axis 0, one scale per row
or output channel), with ``scale = max|w| / qmax`` and a zero point of 0, then prints one table:

- tensor max|err| and SQNR: the random tensor (rows of very different magnitudes);
- weights SQNR: all Linear weights of the model together;
- output MSE: mean squared difference between the quantized-weight model and the FP32 model on
  held-out inputs.

Run it with::

    python examples/quickstart_qdq.py

Example of the core call (one scale per row of ``w``)::

    >>> import torch, torchqsim as tq
    >>> w = torch.tensor([[0.3, -1.75], [0.0625, 0.875]])
    >>> qmin, qmax = tq.functional.grid_range(4)            # (-8, 7)
    >>> scale = w.abs().amax(dim=1) / qmax                  # [0.25, 0.125]
    >>> tq.functional.quantize_dequantize(w, scale, torch.zeros(2, dtype=torch.int32),
    ...                                   qmin, qmax, axis=0)  # 0.0625 / 0.125 = 0.5 -> 0 (even)
    tensor([[ 0.2500, -1.7500],
            [ 0.0000,  0.8750]])
"""

import copy

import torch
from torch import nn

import torchqsim as tq

PRECISIONS = {"W8": 8, "W4": 4, "W16": 16}
GRANULARITIES = ("per-tensor", "per-channel")


def fake_quantize(w, bits, granularity):
    """Symmetric signed fake quantization of `w` with ``scale = max|w| / qmax``."""
    qmin, qmax = tq.functional.grid_range(bits)
    if granularity == "per-tensor":
        scale, axis = w.abs().amax() / qmax, None
    else:
        scale, axis = w.abs().amax(dim=tuple(range(1, w.dim()))) / qmax, 0
    scale = scale.clamp_min(torch.finfo(torch.float32).tiny)  # an all-zero row keeps scale > 0
    zero_point = torch.zeros(scale.shape, dtype=torch.int32)
    return tq.functional.quantize_dequantize(w, scale, zero_point, qmin, qmax, axis)


def sqnr_db(x, xq):
    """Signal-to-quantization-noise ratio ``10 log10(sum x^2 / sum (x - xq)^2)`` in dB."""
    return 10 * torch.log10(x.square().sum() / (x - xq).square().sum()).item()


def train_mlp(gen, steps=300):
    """A 16-64-64-1 MLP fitted to y = sin(x @ a) + 0.1 * |x @ b| on Gaussian inputs."""
    a, b = torch.randn(16, 1, generator=gen), torch.randn(16, 1, generator=gen)
    model = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(),
                          nn.Linear(64, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        x = torch.randn(256, 16, generator=gen)
        loss = nn.functional.mse_loss(model(x), torch.sin(x @ a) + 0.1 * (x @ b).abs())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def quantized_copy(model, bits, granularity):
    """A deep copy of `model` whose Linear weights are fake-quantized (biases stay fp32)."""
    qmodel = copy.deepcopy(model)
    with torch.no_grad():
        for m in qmodel.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(fake_quantize(m.weight, bits, granularity))
    return qmodel


HEAD = ("precision", "granularity", "tensor max|err|", "tensor SQNR dB", "weights SQNR dB",
        "output MSE vs FP32")


def error_table(steps=300):
    """One row per precision and granularity, the columns of :data:`HEAD` (numbers as floats)."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    # Rows spanning three decades of magnitude: per-channel scales pay off.
    tensor = torch.randn(64, 256, generator=gen) * torch.logspace(-3, 0, 64).unsqueeze(1)
    model = train_mlp(gen, steps)
    x_test = torch.randn(4096, 16, generator=gen)
    rows = []
    with torch.no_grad():
        ref_out = model(x_test)
        weights = torch.cat([m.weight.flatten() for m in model.modules()
                             if isinstance(m, nn.Linear)])
        for name, bits in PRECISIONS.items():
            for granularity in GRANULARITIES:
                tq_tensor = fake_quantize(tensor, bits, granularity)
                qmodel = quantized_copy(model, bits, granularity)
                q_weights = torch.cat([m.weight.flatten() for m in qmodel.modules()
                                       if isinstance(m, nn.Linear)])
                rows.append((name, granularity, (tensor - tq_tensor).abs().max().item(),
                             sqnr_db(tensor, tq_tensor), sqnr_db(weights, q_weights),
                             nn.functional.mse_loss(qmodel(x_test), ref_out).item()))
    return rows


def main():
    print("  ".join(HEAD))
    for name, granularity, max_err, tensor_sqnr, weights_sqnr, mse in error_table():
        cells = (name, granularity, f"{max_err:.3e}", f"{tensor_sqnr:.1f}", f"{weights_sqnr:.1f}",
                 f"{mse:.3e}")
        print("  ".join(f"{c:>{len(h)}}" for c, h in zip(cells, HEAD)))


if __name__ == "__main__":
    main()
