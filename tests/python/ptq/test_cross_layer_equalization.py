"""`equalize_model`: FP32 outputs preserved, channel-range imbalance reduced, and W8A8
per-tensor error lowered on a model built with unbalanced channel ranges.

Imbalance metric (what CLE optimises, DFQ eq. 8): for an equalized pair (L1, L2), the channel
ranges ``r_c = max |w|`` of L1's output channels and of L2's input channels;
``imbalance = mean over both layers of max_c r_c / mean_c r_c`` (1 when every channel uses the
full per-tensor grid). The W8A8 oracle is built here from torchqsim.functional: per-tensor
symmetric min/max weights and per-tensor asymmetric min/max activations after every layer and
activation, calibrated on the same data.
"""

import copy

import torch
from torch import nn

import torchqsim.functional as F
from torchqsim.ptq import equalize_model
from torchqsim.ptq._channels import channel_ranges


def _bn(n, g, mean, var_scale, beta):
    bn = nn.BatchNorm2d(n)
    bn.running_mean.copy_(mean)
    bn.running_var.copy_(var_scale)
    bn.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.1)
    bn.bias.data.copy_(beta)
    return bn.eval()


def _mobilenet_block(g, x):
    """conv3x3-BN-ReLU6 -> depthwise3x3-BN-ReLU -> conv1x1 -> Linear pair, with BN statistics
    chosen so every BN output stays above beta - 3|gamma| on `x` (high-bias absorption is then
    exact, see module docstring of cross_layer_equalization)."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
                          nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 6, 1), nn.Flatten(), nn.Linear(6 * 36, 10), nn.ReLU(),
                          nn.Linear(10, 4)).eval()
    with torch.no_grad():
        for i in (1, 4):
            h = model[:i](x)   # the BN input; its running stats: actual mean, 9x actual var
            mean, var = h.mean(dim=(0, 2, 3)), h.var(dim=(0, 2, 3))
            model[i] = _bn(8, g, mean, 9 * var, torch.rand(8, generator=g) * 3 + 2)
    return model


def _unbalanced(g):
    """Three convs and a linear whose inner channels have ranges spread over 3 decades, with the
    next layer compensating (same function as a balanced model)."""
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 8, 1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)).eval()
    with torch.no_grad():
        for l1, l2 in ((0, 2), (2, 4)):
            s = 10 ** (torch.rand(16, generator=g) * 3 - 1.5)
            model[l1].weight.mul_(s.view(-1, 1, 1, 1))
            model[l1].bias.mul_(s)
            model[l2].weight.div_(s.view(1, -1, 1, 1))
    return model


def _imbalance(model, pairs):
    vals = []
    for l1, l2 in pairs:
        for r in (channel_ranges(model.get_submodule(l1), "out"),
                  channel_ranges(model.get_submodule(l2), "in")):
            vals.append(float(r.max() / r.mean()))
    return sum(vals) / len(vals)


def _w8a8(model, x):
    """Output of `model` on `x` with 8-bit per-tensor weights and activations (see docstring)."""
    model = copy.deepcopy(model)
    lo, hi = F.grid_range(8)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                scale = torch.maximum(m.weight.max() / hi, m.weight.min() / lo)
                m.weight.copy_(F.quantize_dequantize(m.weight, scale, 0, lo, hi))
    ranges = {}

    def observe(mod, _, out):
        ranges[mod] = (min(0.0, out.min().item()), max(0.0, out.max().item()))

    def quantize(mod, _, out):
        mn, mx = ranges[mod]
        scale = torch.tensor(max(mx - mn, 1e-8) / 255)
        zp = torch.clamp(torch.round(-mn / scale), 0, 255).to(torch.int32)
        return F.quantize_dequantize(out, scale, zp, 0, 255)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(observe) for m in leaves]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    for m in leaves:
        m.register_forward_hook(quantize)
    with torch.no_grad():
        return model(x)


def test_cle_preserves_fp32_and_equalizes_with_depthwise_and_high_bias_absorption():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x = torch.rand(8, 3, 6, 6, generator=g)
    model = _mobilenet_block(g, x)
    with torch.no_grad():
        ref = model(x)
        dw_before = model[:5](x)   # depthwise pre-activation (BN output)
    pairs = equalize_model(model, x)
    assert pairs == [("0", "3"), ("3", "6"), ("8", "10")]
    assert isinstance(model[2], nn.ReLU) and not isinstance(model[2], nn.ReLU6)
    assert isinstance(model[1], nn.Identity) and isinstance(model[4], nn.Identity)
    with torch.no_grad():
        got = model(x)
        dw_after = model[:5](x)
    err = (got - ref).abs().max().item()
    assert err <= 1e-4 * max(1.0, ref.abs().max().item()), err
    # High-bias absorption subtracted h_c = beta_c - 3|gamma_c| > 0 (scaled) from the depthwise
    # pre-activation: it stays >= 0 on x (exactness) and its min/max ratio per channel drops
    # (scaling cancels in the ratio).
    def ratio(t):
        return t.amin(dim=(0, 2, 3)) / t.amax(dim=(0, 2, 3))
    assert dw_after.min().item() >= -1e-5
    assert bool((ratio(dw_after) < ratio(dw_before) - 0.05).all()), \
        (ratio(dw_before), ratio(dw_after))


def test_cle_reduces_range_imbalance_and_w8a8_per_tensor_error():
    g = torch.Generator().manual_seed(1)
    model = _unbalanced(g)
    x = torch.rand(16, 3, 8, 8, generator=g)
    with torch.no_grad():
        ref = model(x)
    err_before = (_w8a8(model, x) - ref).square().mean().item()
    pairs_expected = [("0", "2"), ("2", "4")]
    before = _imbalance(model, pairs_expected)
    pairs = equalize_model(model, x)
    assert pairs == pairs_expected
    after = _imbalance(model, pairs)
    with torch.no_grad():
        assert (model(x) - ref).abs().max().item() <= 1e-4 * max(1.0, ref.abs().max().item())
    err_after = (_w8a8(model, x) - ref).square().mean().item()
    assert after < 0.5 * before, (before, after)
    assert err_after < 0.5 * err_before, (err_before, err_after)
