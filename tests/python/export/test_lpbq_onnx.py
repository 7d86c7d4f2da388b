"""LPBQ and plain blockwise integer fake-quantization exported to ONNX (opset 21 blocked
QuantizeLinear/DequantizeLinear: ``block_size`` attribute, scales of x's shape with the blocked
axis counted in blocks), run in onnxruntime and compared bit for bit with torch
(``torchqsim.functional.lpbq_quantize_dequantize`` / ``quantize_dequantize``)."""

import onnx
import pytest
import torch
from torch import nn

import torchqsim.functional as F
from asserts import assert_same
from test_float_export_onnx import _export


class _Lpbq(nn.Module):
    """Blockwise fake-quant of its input with fixed LPBQ scales (integer scales x channel)."""

    def __init__(self, ints, per_channel, bitwidth, axis, block):
        super().__init__()
        self.register_buffer("ints", ints)
        self.register_buffer("per_channel", per_channel)
        self.grid, self.axis, self.block = F.grid_range(bitwidth), axis, block

    def forward(self, x):
        return F.lpbq_quantize_dequantize(x, self.ints, self.per_channel, *self.grid,
                                          axis=self.axis, block_size=self.block)


class _Blockwise(nn.Module):
    def __init__(self, scale, bitwidth, axis, block):
        super().__init__()
        self.register_buffer("scale", scale)
        self.grid, self.axis, self.block = F.grid_range(bitwidth), axis, block

    def forward(self, x):
        zero = torch.zeros(self.scale.shape, dtype=torch.int32)
        return F.quantize_dequantize(x, self.scale, zero, *self.grid, axis=self.axis,
                                     block_size=self.block)


def _data(shape, axis, block, seed=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * torch.rand(shape, generator=g) * 3
    n = x.shape[axis] // block
    s = x.abs().unflatten(axis, (n, block)).amax(axis + 1).clamp(min=1e-4) / 7
    return x, s


def _blocked_dq(model):
    nodes = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    return [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in nodes]


@pytest.mark.parametrize("bitwidth,decompressed", [(4, 8), (8, 12)])
@pytest.mark.parametrize("axis,shape", [(1, (6, 64)), (0, (32, 3))])
def test_lpbq_blocked_qdq_matches_in_onnxruntime(ort_run, bitwidth, decompressed, axis, shape):
    x, s = _data(shape, axis, 16)
    ints, ch = F.lpbq_scales(s, bitwidth, decompressed, axis)
    module = _Lpbq(ints, ch, bitwidth, axis, 16)
    model = _export(module, x, 21)
    assert {"block_size": 16, "axis": axis}.items() <= _blocked_dq(model)[0].items()
    (got,) = ort_run(model, x * 1.1)  # other data than the scales came from: clamping too
    assert_same(got, module(x * 1.1), "lpbq")


@pytest.mark.parametrize("bitwidth", [4, 8])
def test_plain_blockwise_int_matches_in_onnxruntime(ort_run, bitwidth):
    x, s = _data((4, 96), 1, 32)
    module = _Blockwise(s, bitwidth, 1, 32)
    model = _export(module, x, 21)
    assert _blocked_dq(model)[0]["block_size"] == 32
    (got,) = ort_run(model, x)
    assert_same(got, module(x), f"int{bitwidth} blocks")
