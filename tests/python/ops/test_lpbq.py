"""LPBQ (AIMET's low-power blockwise quantization) in torchqsim.functional: ``lpbq_scales`` and
``lpbq_quantize_dequantize``.

Oracles: hand-computed known answers; a pure-torch reference of the formula
(docs/formats.md: per_channel = max(block scales) / 2^(db - b), ints = clamp(rint(s / per_channel),
1, 2^(db - b)), y = clamp(rint(x / (ints * per_channel)), qmin, qmax) * ints * per_channel);
plain blockwise quantize_dequantize with the product scales.
"""

import pytest
import torch

import torchqsim.functional as F


def _reference(x, ints, per_channel, qmin, qmax, axis, block):
    s = (ints * per_channel).repeat_interleave(block, dim=axis)
    return torch.clamp(torch.round(x / s), qmin, qmax) * s


def test_scales_known_answers():
    # 4 -> 8 bits: n = 16; channel 0: max 0.4 -> 0.025; 0.1 / 0.025 = 4, 0.0875 / 0.025 = 3.5
    # -> 4 (ties to even), 0.001 -> 0.04 -> 0 -> clamped to 1; channel 1: max 1.6 -> 0.1: 0.05 -> 0.5 -> 0 (even) -> 1,
    # 0.25 -> 2.5 -> 2, 0.8 -> 8
    s = torch.tensor([[0.1, 0.4, 0.0875, 0.001], [1.6, 0.05, 0.25, 0.8]])
    ints, ch = F.lpbq_scales(s, 4, 8, axis=1)
    assert torch.equal(ints, torch.tensor([[4.0, 16.0, 4.0, 1.0], [16.0, 1.0, 2.0, 8.0]]))
    assert torch.equal(ch, torch.tensor([[0.4 / 16], [1.6 / 16]]))
    # 4 -> 6 bits: n = 4; along axis 0
    ints, ch = F.lpbq_scales(torch.tensor([[1.0], [0.5], [0.3]]), 4, 6, axis=0)
    assert torch.equal(ints, torch.tensor([[4.0], [2.0], [1.0]])) and ch.item() == 0.25


@pytest.mark.parametrize("axis,shape", [(1, (6, 64)), (0, (48, 5))])
def test_qdq_equals_the_reference_formula(axis, shape):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=g) * torch.rand(shape, generator=g) * 4
    block = 16
    blocks = list(shape)
    blocks[axis] //= block
    amax = x.abs().unflatten(axis, (blocks[axis], block)).amax(axis + 1)
    s = torch.clamp(amax, min=1e-6) / 7
    ints, ch = F.lpbq_scales(s, 4, 8, axis=axis)
    qmin, qmax = F.grid_range(4)
    got = F.lpbq_quantize_dequantize(x, ints, ch, qmin, qmax, axis=axis, block_size=block)
    assert torch.equal(got, _reference(x, ints, ch, qmin, qmax, axis, block))
    # the elements are on each block's grid: y = k * scale, k an integer in [qmin, qmax]
    scale = (ints * ch).repeat_interleave(block, dim=axis)
    k = torch.round(got / scale)
    assert torch.equal(k * scale, got) and k.min() >= qmin and k.max() <= qmax
    # a coarser grid than the plain per-block scales would give (ints round the scales)
    plain = F.quantize_dequantize(x, s, torch.zeros(s.shape, dtype=torch.int32), qmin, qmax,
                                  axis, block)
    assert not torch.equal(got, plain)


def test_gradient_is_straight_through():
    x = torch.tensor([[0.3, -0.7, 2.0, 30.0]], requires_grad=True)
    y = F.lpbq_quantize_dequantize(x, torch.tensor([[1.0, 16.0]]), torch.tensor([[0.1]]), -8, 7,
                                   axis=1, block_size=2)
    y.sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0, 1.0, 0.0]]  # 30 / 1.6 > 7: clamped


@pytest.mark.parametrize("kwargs,match", [
    (dict(bitwidth=1), "bitwidth must be an integer from 2 to 16"),
    (dict(decompressed_bitwidth=17), "decompressed_bitwidth must be an integer"),
    (dict(decompressed_bitwidth=4), r"decompressed_bitwidth \(4\) must be above bitwidth \(4\)"),
    (dict(block_scale=torch.tensor([[0.1, 0.0]])), "block_scale must hold finite values > 0"),
    (dict(block_scale=torch.tensor([[0.1, float("nan")]])), "finite values > 0"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    args = dict(block_scale=torch.tensor([[0.1, 0.2]]), bitwidth=4, decompressed_bitwidth=8,
                axis=1)
    with pytest.raises(ValueError, match=match):
        F.lpbq_scales(**dict(args, **kwargs))
