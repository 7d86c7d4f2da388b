"""The parity models and their data, plain torch: imported by the AIMET oracle (in the side
venv) and by the parity tests (main env), so both sides build the same weights and batches.

Every functional op sits in the top-level ``forward`` so that prepared module names follow
AIMET's model preparer (``module_<fx node name>``) on both sides.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class CnnResidual(nn.Module):
    """Conv+BN+ReLU, Conv+BN, a residual add, ReLU, global pooling, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        z = self.bn2(self.conv2(y))
        return self.fc(self.flatten(self.pool(self.relu2(z + y))))


class TransformerBlock(nn.Module):
    """Single-head attention (matmul, scale by a constant, softmax), LayerNorm, GELU MLP and two
    residual adds."""

    def __init__(self, d=16):
        super().__init__()
        self.d = d
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.gelu = nn.GELU()
        self.fc2 = nn.Linear(2 * d, d)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        att = self.softmax(torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d))
        x = x + self.proj(torch.matmul(att, v))
        return x + self.fc2(self.gelu(self.fc1(self.ln2(x))))


class MlpMulCat(nn.Module):
    """Linear, ReLU6, an elementwise product of two branches, a concat, Linear."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 16)
        self.act = nn.ReLU6()
        self.fc2 = nn.Linear(12, 16)
        self.sig = nn.Sigmoid()
        self.fc3 = nn.Linear(32, 4)

    def forward(self, x):
        a = self.act(self.fc1(x))
        b = self.sig(self.fc2(x))
        return self.fc3(torch.cat([a * b, a], dim=-1))


class EmbedGroupNorm(nn.Module):
    """Embedding, a transpose, GroupNorm, Tanh, 1-d conv."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.norm = nn.GroupNorm(2, 8)
        self.tanh = nn.Tanh()
        self.conv = nn.Conv1d(8, 4, 1)

    def forward(self, ids):
        x = self.embed(ids).transpose(1, 2)
        return self.conv(self.tanh(self.norm(x)))


class PoolDropFlatten(nn.Module):
    """Conv, ReLU, MaxPool, Dropout, AvgPool, Flatten, Linear: data-preserving ops in a chain."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.1)
        self.avgpool = nn.AvgPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(6 * 2 * 2, 3)

    def forward(self, x):
        x = self.drop(self.maxpool(self.relu(self.conv(x))))
        return self.fc(self.flatten(self.avgpool(x)))


class SoftmaxHead(nn.Module):
    """A Softmax over two logits (the eNPU configs fix its output range to [0, 1])."""

    def __init__(self):
        super().__init__()
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        return self.softmax(x)


MODELS = {
    "cnn": (CnnResidual, lambda g: torch.randn(2, 3, 8, 8, generator=g)),
    "transformer": (TransformerBlock, lambda g: torch.randn(2, 6, 16, generator=g)),
    "mlp": (MlpMulCat, lambda g: torch.randn(4, 12, generator=g)),
    "embed": (EmbedGroupNorm, lambda g: torch.randint(0, 50, (2, 7), generator=g)),
    "pool": (PoolDropFlatten, lambda g: torch.randn(2, 3, 10, 10, generator=g)),
    "softmax": (SoftmaxHead, lambda g: torch.randn(16, 2, generator=g) * 2),
}


def build(name: str) -> nn.Module:
    """The model `name` in eval mode, with seeded weights and BatchNorm statistics."""
    torch.manual_seed(0)
    model = MODELS[name][0]()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


def batches(name: str) -> list:
    """Three calibration batches, then a test batch. The second is 4x wider, so that a
    histogram analyzer must widen its range after the first batch."""
    g = torch.Generator().manual_seed(1)
    make = MODELS[name][1]
    out = [make(g) for _ in range(4)]
    if out[1].is_floating_point():
        out[1] = out[1] * 4
    return out


def slot_records(named_qmodules, quantizer_record) -> dict:
    """``"<module>.<input|output|param>.<key>"`` -> ``quantizer_record(quantizer)`` for every
    slot of every ``(name, quantized module)`` (both tools' quantized modules hold
    ``input_quantizers``, ``output_quantizers`` and ``param_quantizers``)."""
    out = {}
    for name, m in named_qmodules:
        for i, q in enumerate(m.input_quantizers):
            out[f"{name}.input.{i}"] = quantizer_record(q)
        for i, q in enumerate(m.output_quantizers):
            out[f"{name}.output.{i}"] = quantizer_record(q)
        for k, q in m.param_quantizers.items():
            out[f"{name}.param.{k}"] = quantizer_record(q)
    return out
