"""`fold_all_batch_norms`: eval outputs are preserved (oracle: the unfolded model itself) and
exactly the foldable BNs are folded."""

import pytest
import torch
from torch import nn

from torchqsim.ptq import fold_all_batch_norms


def _randomize_bns(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.1)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))
    return model.eval()


class _Functional(nn.Module):
    """Conv -> BN -> F.relu, conv without bias, traced through a functional call."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


CASES = {
    "conv_bn": (lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)),
                (2, 3, 9, 9), [("0", "1")]),
    "conv_bn_relu": (lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                                           nn.Conv2d(8, 4, 3, padding=1), nn.BatchNorm2d(4),
                                           nn.ReLU()), (2, 3, 9, 9), [("0", "1"), ("3", "4")]),
    "conv_nobias_bn_functional_relu": (_Functional, (2, 3, 7, 7), [("conv", "bn")]),
    "linear_bn": (lambda: nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                        nn.Linear(16, 3)), (5, 10), [("0", "1")]),
    "depthwise": (lambda: nn.Sequential(nn.Conv2d(4, 8, 1), nn.BatchNorm2d(8), nn.ReLU6(),
                                        nn.Conv2d(8, 8, 3, padding=1, groups=8),
                                        nn.BatchNorm2d(8)), (2, 4, 6, 6), [("0", "1"), ("3", "4")]),
    "conv_transpose_bn": (lambda: nn.Sequential(nn.ConvTranspose2d(4, 6, 3, stride=2),
                                                nn.BatchNorm2d(6)), (2, 4, 5, 5), [("0", "1")]),
    "grouped_conv_transpose_bn": (lambda: nn.Sequential(
        nn.ConvTranspose2d(4, 6, 2, stride=2, groups=2, bias=False), nn.BatchNorm2d(6)),
        (2, 4, 5, 5), [("0", "1")]),
    "bn_then_unpadded_conv": (lambda: nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 5, 3,
                                                                                groups=1)),
                              (2, 3, 8, 8), [("1", "0")]),
    "bn_then_linear": (lambda: nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 2, bias=False)),
                       (4, 6), [("1", "0")]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fold_preserves_eval_outputs(case):
    build, shape, expected_pairs = CASES[case]
    torch.manual_seed(0)
    model = _randomize_bns(build(), seed=1)
    x = torch.randn(shape)
    with torch.no_grad():
        ref = model(x)
    names = {m: n for n, m in model.named_modules()}
    pairs = fold_all_batch_norms(model, x)
    assert [(names[layer], names[bn]) for layer, bn in pairs] == expected_pairs
    for _, bn_name in expected_pairs:
        assert isinstance(model.get_submodule(bn_name), nn.Identity)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    with torch.no_grad():
        got = model(x)
    err = (got - ref).abs().max().item()
    assert err <= 1e-5 * max(1.0, ref.abs().max().item()), f"{case}: max error {err}"


def test_unfoldable_bns_are_left_alone():
    # BN before a padded conv (padding sees the shift), BN whose producer output has another
    # consumer, and BatchNorm1d over [N, C, L] after a Linear (normalises another axis).
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn0 = nn.BatchNorm2d(3)
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(4)
            self.lin = nn.Linear(5, 5)
            self.bn2 = nn.BatchNorm1d(4)

        def forward(self, x):
            y = self.conv(self.bn0(x))
            z = self.bn1(y) + y
            return self.bn2(self.lin(z.flatten(2)[..., :5]))

    model = _randomize_bns(Branchy(), seed=2)
    x = torch.randn(2, 3, 5, 5)
    ref = model(x)
    assert fold_all_batch_norms(model, x) == []
    assert torch.equal(model(x), ref)
