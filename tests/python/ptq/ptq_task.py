"""The small task of the PTQ tests: synthetic 5-class data, a classifier's accuracy on it and the
outputs of its Linear layers."""

import torch
from torch import nn


def task(n: int, seed: int):
    """Five classes: the argmax of a fixed random two-layer teacher of 16 correlated features
    (with whitened inputs nearest rounding would already minimise a layer's output error)."""
    g = torch.Generator().manual_seed(1234)
    mix = torch.randn(16, 16, generator=g) / 4 + torch.eye(16)
    t1, t2 = torch.randn(16, 32, generator=g) / 2, torch.randn(32, 5, generator=g)
    x = torch.randn(n, 16, generator=torch.Generator().manual_seed(seed)) @ mix
    return x, (torch.tanh(x @ t1) @ t2).argmax(dim=1)


def accuracy(model, data) -> float:
    """Top-1 accuracy of `model` on ``(inputs, labels)``."""
    with torch.no_grad():
        return (model(data[0]).argmax(dim=1) == data[1]).float().mean().item()


def linear_outputs(model, x):
    """``{name: output}`` of every Linear of `model` on `x` (no autograd)."""
    seen = {}
    hooks = [m.register_forward_hook(lambda m, a, out, n=n: seen.__setitem__(n, out))
             for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen
