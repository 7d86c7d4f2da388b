"""torchqsim.nn.facts: module facts on the quantized classes (`is_weight_layer`,
`param_channel_axis`, `output_channel_dim`, `folds_following_batch_norm`, `mac_count`,
`forward_with_weight`) against a hand-written oracle table, one row per module family; and
`quantized_class_of` for float modules.

Oracles: the table below (written from the torch weight layouts and AIMET's rules, not from the
code), hand-counted multiply-accumulates, and the torch functions for `forward_with_weight`.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchqsim.nn as qnn
from torchqsim.nn.base import QuantizationMixin, quantized_class_of
from torchqsim.nn.functional_modules import Add, MatMul

# id -> (float module, one input, {param: output-channel axis}, weight layer, folds a following
# BatchNorm, multiply-accumulates of one call on that input (None: not a weight layer)).
# MACs by hand: Conv: outputs x (C_in / groups x kernel); ConvTranspose: inputs x
# (C_out / groups x kernel); Linear: outputs x in_features.
ORACLE = {
    "conv1d": (lambda: nn.Conv1d(2, 4, 3), (1, 2, 8), {"weight": 0, "bias": 0},
               True, True, 4 * 6 * (2 * 3)),
    "conv2d": (lambda: nn.Conv2d(3, 8, 3), (1, 3, 5, 5), {"weight": 0, "bias": 0},
               True, True, 8 * 3 * 3 * (3 * 9)),
    "conv2d_grouped": (lambda: nn.Conv2d(4, 6, 1, groups=2, bias=False), (2, 4, 3, 3),
                       {"weight": 0}, True, True, 2 * 6 * 9 * (2 * 1)),
    "conv3d": (lambda: nn.Conv3d(2, 4, 2), (1, 2, 3, 3, 3), {"weight": 0, "bias": 0},
               True, True, 4 * 8 * (2 * 8)),
    "conv_transpose1d": (lambda: nn.ConvTranspose1d(2, 4, 3, stride=2), (1, 2, 4),
                         {"weight": 1, "bias": 0}, True, True, 2 * 4 * (4 * 3)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(2, 4, 3, stride=2), (1, 2, 4, 4),
                         {"weight": 1, "bias": 0}, True, True, 2 * 16 * (4 * 9)),
    "conv_transpose2d_grouped": (lambda: nn.ConvTranspose2d(4, 6, 2, groups=2), (1, 4, 3, 3),
                                 {"weight": 1, "bias": 0}, True, True, 4 * 9 * (3 * 4)),
    "conv_transpose2d_depthwise": (lambda: nn.ConvTranspose2d(4, 4, 3, groups=4), (1, 4, 3, 3),
                                   {"weight": 1, "bias": 0}, True, False, 4 * 9 * (1 * 9)),
    "conv_transpose3d": (lambda: nn.ConvTranspose3d(2, 4, 2, stride=2), (1, 2, 2, 2, 2),
                         {"weight": 1, "bias": 0}, True, True, 2 * 8 * (4 * 8)),
    "linear": (lambda: nn.Linear(4, 3), (2, 5, 4), {"weight": 0, "bias": 0},
               True, True, 2 * 5 * 3 * 4),
    "embedding": (lambda: nn.Embedding(10, 4), None, {"weight": 0}, False, False, None),
    "batch_norm2d": (lambda: nn.BatchNorm2d(3), (2, 3, 4, 4), {"weight": 0, "bias": 0},
                     False, False, None),
    "layer_norm": (lambda: nn.LayerNorm(4), (2, 4), {"weight": 0, "bias": 0},
                   False, False, None),
    "group_norm": (lambda: nn.GroupNorm(2, 4), (2, 4, 3), {"weight": 0, "bias": 0},
                   False, False, None),
    "prelu": (lambda: nn.PReLU(3), (2, 3, 4), {"weight": 0}, False, False, None),
    "multihead_attention": (lambda: nn.MultiheadAttention(4, 2), None,
                            {"in_proj_weight": 0, "in_proj_bias": 0}, False, False, None),
    "relu": (lambda: nn.ReLU(), (2, 3), {}, False, False, None),
    "max_pool2d": (lambda: nn.MaxPool2d(2), (1, 2, 4, 4), {}, False, False, None),
    "add": (lambda: Add(), None, {}, False, False, None),
    "matmul": (lambda: MatMul(), None, {}, False, False, None),
}


def _quantized(module: nn.Module) -> QuantizationMixin:
    return qnn.to_quantized(module, "m")


@pytest.mark.parametrize("case", sorted(ORACLE))
def test_facts_match_the_oracle_table(case):
    make, shape, axes, weight_layer, folds, macs = ORACLE[case]
    q = _quantized(make())
    assert {n: q.param_channel_axis(n) for n in q.param_quantizers} == axes
    assert type(q).is_weight_layer is weight_layer
    assert q.folds_following_batch_norm() is folds
    if shape is not None:
        x = torch.randn(*shape)
        with torch.no_grad():
            y = q(x)
        assert q.mac_count(x, y) == macs
        if weight_layer:   # the output dim that holds the channels: sized out_channels
            out_channels = q.out_features if isinstance(q, nn.Linear) else q.out_channels
            assert y.shape[q.output_channel_dim(y.dim())] == out_channels


@pytest.mark.parametrize("case", sorted(ORACLE))
def test_float_modules_are_described_by_their_quantized_class(case):
    make = ORACLE[case][0]
    module = make()
    assert quantized_class_of(module) is type(_quantized(make()))
    assert quantized_class_of(_quantized(module)) is type(_quantized(module))


def test_subclasses_take_the_facts_of_their_nearest_registered_class():
    class MyDeconv(nn.ConvTranspose2d):
        pass

    assert quantized_class_of(MyDeconv(2, 2, 1)) is qnn.QuantizedConvTranspose2d
    assert quantized_class_of(MyDeconv(2, 2, 1)).param_channel_axis("weight") == 1
    unknown = quantized_class_of(nn.Bilinear(2, 2, 2))  # no quantized class registered
    assert unknown is QuantizationMixin and not unknown.is_weight_layer
    assert unknown.param_channel_axis("weight") == 0


def test_every_weight_layer_class_is_in_the_table():
    """A new family with a channel-mixing weight must get a row above."""
    tabled = {type(_quantized(make())) for make, *_ in ORACLE.values()}
    weight_layers = {c for c in QuantizationMixin._registry.values() if c.is_weight_layer}
    assert weight_layers <= tabled, sorted(c.__name__ for c in weight_layers - tabled)


FORWARD_WITH_WEIGHT = {
    "conv2d_reflect": (lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"),
                       (1, 2, 5, 5),
                       lambda m, x, w: F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w,
                                                m.bias)),
    "conv1d_grouped": (lambda: nn.Conv1d(4, 2, 3, groups=2, stride=2), (1, 4, 9),
                       lambda m, x, w: F.conv1d(x, w, m.bias, stride=2, groups=2)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1),
                         (1, 2, 4, 4),
                         lambda m, x, w: F.conv_transpose2d(x, w, m.bias, stride=2,
                                                            output_padding=1)),
    "linear": (lambda: nn.Linear(4, 3), (2, 4), lambda m, x, w: F.linear(x, w, m.bias)),
}


@pytest.mark.parametrize("case", sorted(FORWARD_WITH_WEIGHT))
def test_forward_with_weight_is_the_torch_function_with_that_weight(case):
    make, shape, torch_fn = FORWARD_WITH_WEIGHT[case]
    module = make()
    q = _quantized(module)
    x, w = torch.randn(*shape), torch.randn_like(module.weight)
    torch.testing.assert_close(q.forward_with_weight(x, w), torch_fn(module, x, w),
                               rtol=0, atol=0)
    torch.testing.assert_close(q.forward_with_weight(x, module.weight), module(x), rtol=0, atol=0)
