"""Small models and sims for the export tests (imported by the test files of this folder)."""

import torch
from torch import nn

from torchqsim.quantsim import QuantizationSimModel


class SmallCNN(nn.Module):
    """Conv -> ReLU -> (conv branch + skip) add -> reused functional relu -> pool -> linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x) + x)
        return self.fc(torch.flatten(self.pool(x), 1))


class SmallBnCNN(nn.Module):
    """Conv -> BN -> ReLU -> (conv -> BN branch + skip) add -> ReLU -> pool -> linear: BNs that
    the sim folds and a residual add."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)) + x)
        return self.fc(torch.flatten(self.pool(x), 1))


class SmallTransformer(nn.Module):
    """One attention block written with functional ops, returning two outputs."""

    def __init__(self, dim=16):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp1, self.mlp2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)
        self.scale = dim ** -0.5

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        x = self.norm1(x + self.proj(torch.matmul(attn, v)))
        x = self.norm2(x + self.mlp2(nn.functional.gelu(self.mlp1(x))))
        return x, attn


def make_model(kind: str, seed: int = 0):
    """(model, input) of a kind: "cnn", "cnn_bn" or "transformer", deterministic for a seed."""
    torch.manual_seed(seed)
    if kind == "cnn":
        return SmallCNN().eval(), torch.randn(4, 3, 8, 8)
    if kind == "cnn_bn":
        model = SmallBnCNN()
        with torch.no_grad():  # non-trivial BN statistics
            model.train()(torch.randn(32, 3, 8, 8) * 2 + 0.5)
        return model.eval(), torch.randn(4, 3, 8, 8)
    return SmallTransformer().eval(), torch.randn(2, 6, 16)


def make_sim(kind: str, output_bw=8, param_bw=8, config_file=None, seed=0):
    """A calibrated ("tf") sim of ``make_model(kind, seed)`` and its calibration input."""
    model, x = make_model(kind, seed)
    sim = QuantizationSimModel(model, x, quant_scheme="tf", default_output_bw=output_bw,
                               default_param_bw=param_bw, config_file=config_file)
    sim.compute_encodings(lambda m, _: m(x), None)
    return sim, x


def outputs(model, x) -> list:
    """The model's outputs as a list of tensors (no grad)."""
    with torch.no_grad():
        out = model(x)
    return list(out) if isinstance(out, (tuple, list)) else [out]
