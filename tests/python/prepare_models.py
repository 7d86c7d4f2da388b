"""Small models for the prepare_model and ModuleGraph tests: a CNN with a residual add, a
transformer block written with functionals, and a model that calls its modules twice."""

import math

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return torch.relu(out)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = ResidualBlock(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.pool(self.block(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


class TransformerBlock(nn.Module):
    """Attention with matmul + softmax, LayerNorm (module and functional), GELU, scalar ops."""

    def __init__(self, d=16, heads=2):
        super().__init__()
        self.heads, self.d = heads, d
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2_weight = nn.Parameter(torch.rand(d) + 0.5)
        self.ln2_bias = nn.Parameter(torch.randn(d) * 0.1)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d // self.heads)
        attn = F.softmax(scores, dim=-1)
        h = (attn @ v).transpose(1, 2).reshape(b, t, self.d)
        x = x + self.proj(h)
        y = F.layer_norm(x, (self.d,), self.ln2_weight, self.ln2_bias, 1e-6)
        y = self.fc2(F.gelu(self.fc1(y), approximate="tanh"))
        return x + y * 0.5


class Reused(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(self.act(self.fc(x))))
