"""`QuantizeDequantize` and `compute_encodings(module)` of `torchqsim.quantization`.

Oracles: the analyzer's own encoding fed the same data, `torchqsim.functional` (itself checked
against onnxruntime), a pure-torch blockwise reference, the former Python zero-point expression
(range-learning gradients, bit for bit), and hand-computed values.
"""

import math

import pytest
import torch
from torch import nn

import torchqsim.functional as F
from asserts import assert_same
from torchqsim.quantization._layout import qdq_layout
from torchqsim.quantization import (MinMaxEncodingAnalyzer, PercentileEncodingAnalyzer,
                                    QuantizeDequantize, SqnrEncodingAnalyzer, compute_encodings)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _calibrate(q, *batches):
    with q.compute_encodings():
        for x in batches:
            assert q(x) is x  # pass-through while calibrating
    return q


def test_calibration_passes_data_through_then_quantizes_with_the_analyzer_encoding():
    g = _gen(0)
    batches = [torch.randn(64, 32, generator=g) * (i + 1) for i in range(3)]
    q = _calibrate(QuantizeDequantize((), 8, symmetric=False, encoding_analyzer=SqnrEncodingAnalyzer()),
                   *batches)
    # The same data through a fresh analyzer is the oracle for the encoding.
    ref = SqnrEncodingAnalyzer()
    for x in batches:
        ref.update_stats(x)
    enc = ref.compute_encodings(8, symmetric=False)
    got = q.get_encoding()
    assert torch.equal(got.scale, enc.scale) and torch.equal(got.zero_point, enc.zero_point)
    x = torch.randn(1000, generator=g) * 4
    expect = F.quantize_dequantize(x, enc.scale, enc.zero_point, 0, 255)
    assert torch.equal(q(x), expect)


def test_known_answer_asymmetric_forward():
    # Calibrated on [-1, 3]: scale 4/255, zp 64 (-rint(-63.75)); range [-64 s, 191 s].
    # 0.1 -> rint(6.375) = 6 -> 6 s = 0.0941; 5.0 clips to 191 s = 2.9961; -9 clips to -64 s.
    q = _calibrate(QuantizeDequantize((), 8, symmetric=False), torch.tensor([-1.0, 3.0]))
    s = q.get_scale().item()
    assert int(q.get_zero_point()) == 64 and math.isclose(s, 4 / 255, rel_tol=2.5e-7)
    y = q(torch.tensor([0.1, 5.0, -9.0])).tolist()
    assert y == pytest.approx([6 * s, 191 * s, -64 * s], rel=1e-6)


def test_per_channel_weight_quantizer():
    g = _gen(1)
    w = torch.randn(8, 4, 3, 3, generator=g) * torch.linspace(0.01, 3.0, 8).view(8, 1, 1, 1)
    q = _calibrate(QuantizeDequantize((8, 1, 1, 1), 4, symmetric=True), w)
    scale = torch.maximum(w.amax(dim=(1, 2, 3)) / 7, -w.amin(dim=(1, 2, 3)) / 8)  # signed 4-bit
    torch.testing.assert_close(q.get_scale().flatten(), scale, rtol=3e-7, atol=0)
    expect = F.quantize_dequantize(w, q.get_scale().flatten(), torch.zeros(8, dtype=torch.int32), -8, 7, axis=0)
    assert torch.equal(q(w), expect)


def test_blockwise_quantizer_matches_a_torch_reference():
    # shape (4, 2) over a (4, 8) weight: blocks of 4 along the last dimension.
    g = _gen(2)
    w = torch.randn(4, 8, generator=g)
    q = _calibrate(QuantizeDequantize((4, 2), 8, symmetric=True, block_size=(1, 4)), w)
    blocks = w.reshape(4, 2, 4)
    scale = torch.maximum(blocks.amax(-1) / 127, -blocks.amin(-1) / 128)
    torch.testing.assert_close(q.get_scale(), scale, rtol=3e-7, atol=0)
    s = q.get_scale().repeat_interleave(4, dim=1)
    expect = torch.clamp(torch.round(w / s), -128, 127) * s  # ONNX QDQ with zero point 0
    assert torch.equal(q(w), expect)
    with pytest.raises(ValueError, match="block_size"):
        q(torch.randn(4, 16))


def test_conv_weight_blocks_expand_over_kernel_dims():
    # AIMET's example: weight (16, 64, 2, 2), shape (16, 4, 1, 1), blocks (1, 16, 2, 2).
    w = torch.randn(16, 64, 2, 2, generator=_gen(3))
    q = _calibrate(QuantizeDequantize((16, 4, 1, 1), 4, symmetric=True), w)
    ref = MinMaxEncodingAnalyzer((16, 4, 1, 1))
    ref.update_stats(w)
    assert torch.equal(q.get_encoding().scale, ref.compute_encodings(4, symmetric=True).scale)
    s = q.get_scale().repeat_interleave(16, dim=1)  # (16, 64, 1, 1), broadcast over 2 x 2
    assert torch.equal(q(w), torch.clamp(torch.round(w / s), -8, 7) * s)


def test_state_dict_round_trips():
    g = _gen(4)
    x = torch.randn(3, 100, generator=g) * torch.tensor([[1.0], [5.0], [0.1]])
    q = _calibrate(QuantizeDequantize((3, 1), 6, symmetric=False,
                                      encoding_analyzer=PercentileEncodingAnalyzer((3, 1), percentile=99.0)), x)
    state = q.state_dict()
    assert set(state) == {"min", "max", "initialized"}
    fresh = QuantizeDequantize((3, 1), 6, symmetric=False)
    assert not fresh.is_initialized()
    fresh.load_state_dict(state)
    assert fresh.is_initialized()
    assert torch.equal(fresh(x), q(x))
    blank = QuantizeDequantize((3, 1), 6, symmetric=False)
    blank.load_state_dict(QuantizeDequantize((3, 1), 6, symmetric=False).state_dict())
    assert not blank.is_initialized()


def test_no_data_names_the_quantizer():
    q = QuantizeDequantize((), 8, symmetric=True, name="conv1.output")
    with pytest.raises(RuntimeError, match=r"quantizer 'conv1.output': no encoding computed: .*saw no data"):
        with q.compute_encodings():
            pass  # no batch: the quantizer sees no data
    assert not q.is_initialized()
    with pytest.raises(RuntimeError, match=r"'conv1.output' has no encoding"):
        q(torch.ones(2))


def test_all_nan_empty_and_wrong_shapes_are_clear_errors():
    q = QuantizeDequantize((), 8, symmetric=False)
    with pytest.raises(RuntimeError, match="only non-finite values"):
        _calibrate(q, torch.full((5,), math.nan))
    with pytest.raises(ValueError, match="empty tensor"):
        _calibrate(q, torch.empty(0))
    with pytest.raises(ValueError, match="does not divide"):
        _calibrate(QuantizeDequantize((3, 1), 8, symmetric=False), torch.ones(4, 2))
    with pytest.raises(ValueError, match="encoding_analyzer has shape"):
        QuantizeDequantize((3, 1), 8, symmetric=False, encoding_analyzer=MinMaxEncodingAnalyzer())
    with pytest.raises(ValueError, match="bitwidth"):
        QuantizeDequantize((), 17, symmetric=False)


def test_exception_inside_calibration_keeps_the_old_encoding():
    q = _calibrate(QuantizeDequantize((), 8, symmetric=True), torch.tensor([-2.0, 2.0]))
    before = q.get_encoding()
    with pytest.raises(KeyError):
        with q.compute_encodings():
            q(torch.tensor([100.0]))
            raise KeyError("stop")
    assert torch.equal(q.get_encoding().scale, before.scale)
    assert not q._calibrating


def test_set_range_snaps_to_the_grid():
    # signed 8-bit (-1, 2): scale max(2/127, 1/128) = 2/127, range [-256/127, 2].
    q = QuantizeDequantize((), 8, symmetric=True)
    q.set_range(-1.0, 2.0)
    enc = q.get_encoding()
    assert math.isclose(float(enc.scale), 2 / 127, rel_tol=2.5e-7) and int(enc.zero_point) == 0
    assert math.isclose(float(enc.max), 2.0, rel_tol=2.5e-7)


def test_unsigned_and_strict_grids():
    x = torch.tensor([0.0, 1.0, 2.0])
    q = _calibrate(QuantizeDequantize((), 8, symmetric=True, unsigned=True), x)
    assert int(q.get_zero_point()) == 0 and q.qmin == 0 and q.qmax == 255  # 2/255 per step
    q = _calibrate(QuantizeDequantize((), 8, symmetric=True, strict=True), x - 1)
    assert (q.qmin, q.qmax) == (-127, 127) and float(q.get_encoding().min) == -float(q.get_encoding().max)


def test_range_learning_gradients_reach_min_and_max():
    g = _gen(5)
    x = torch.randn(500, generator=g) * 3
    q = _calibrate(QuantizeDequantize((), 4, symmetric=False), torch.tensor([-1.0, 1.0]))
    loss = ((q(x) - x) ** 2).mean()
    loss.backward()
    assert q.min.grad is not None and q.max.grad is not None
    assert float(q.max.grad) < 0 and float(q.min.grad) > 0  # widening the range reduces clipping



@pytest.mark.parametrize("shape", [(), (6, 1), (6, 4)])
def test_forward_without_gradient_equals_the_straight_through_forward(shape):
    # Without a gradient to min/max the zero point is rounded directly, with one through the
    # straight-through round; both forwards and the zero points must agree bit for bit.
    g = _gen(6)
    for trial in range(20):
        x = torch.randn(6, 40, generator=g) * 3
        q = _calibrate(QuantizeDequantize(shape, 8, symmetric=False), x)
        with torch.no_grad():  # off-grid ranges: min / scale is not an integer
            q.min.sub_(torch.rand(shape, generator=g))
            q.max.add_(torch.rand(shape, generator=g))
        learned = q(x), q.get_zero_point()
        assert learned[0].requires_grad and learned[1].requires_grad
        with torch.no_grad():
            assert torch.equal(q(x), learned[0]) and torch.equal(q.get_zero_point(), learned[1])
        q.requires_grad_(False)
        assert torch.equal(q(x), learned[0]) and torch.equal(q.get_zero_point(), learned[1])

def _former_python_forward(q, x):
    """The learned forward as QuantizeDequantize wrote it in Python before the zero point moved
    to C: a scale node for the op, another for the zero point, a straight-through round."""
    axis, block, qshape = qdq_layout(tuple(x.shape), q.shape)
    s = q.get_scale()
    u = q.min / q.get_scale()
    zp = torch.clamp(q.qmin - (u + (torch.round(u) - u).detach()), q.qmin, q.qmax)
    return F.quantize_dequantize(x, s.reshape(qshape), zp.reshape(qshape), q.qmin, q.qmax, axis,
                                 block)


@pytest.mark.parametrize("shape", [(), (6, 1)])
def test_range_learning_gradients_are_the_former_python_ones_bit_for_bit(shape):
    # Oracle: the same expression in torch ops; min/max gradients sum three terms (the zero
    # point's, and the two scale nodes'), in the same order, so they agree to the bit.
    g = _gen(7)
    for trial in range(10):
        x = torch.randn(6, 40, generator=g) * 3
        upstream = torch.randn(6, 40, generator=g)
        q = _calibrate(QuantizeDequantize(shape, 4 + 4 * (trial % 2), symmetric=False), x * 0.7)
        with torch.no_grad():  # off-grid ranges: min / scale is not an integer
            q.min.sub_(torch.rand(shape, generator=g))
            q.max.add_(torch.rand(shape, generator=g))
        results = []
        for forward in (q, lambda t: _former_python_forward(q, t)):
            q.zero_grad()
            xi = x.clone().requires_grad_()
            y = forward(xi)
            (y * upstream).sum().backward()
            results.append((y.detach(), xi.grad, q.min.grad.clone(), q.max.grad.clone()))
        for what, got, want in zip(("y", "x grad", "min grad", "max grad"), *results):
            assert_same(got, want, f"trial {trial}: {what}")


def test_half_precision_input():
    q = _calibrate(QuantizeDequantize((), 8, symmetric=False), torch.tensor([-1.0, 3.0]))
    x = torch.randn(100, generator=_gen(6))
    y16 = q(x.half())
    assert y16.dtype == torch.float16
    assert torch.equal(y16, F.quantize_dequantize(x.half(), q.get_scale(), q.get_zero_point(), 0, 255))


def test_compute_encodings_over_a_module_names_quantizers_without_data():
    model = nn.ModuleDict({
        "used": QuantizeDequantize((), 8, symmetric=False),
        "branch": nn.Sequential(nn.Identity(), QuantizeDequantize((), 8, symmetric=True)),
    })
    with pytest.raises(RuntimeError, match=r"1 of 2 quantizers computed no encoding:\n  branch\.1: .*saw no data"):
        with compute_encodings(model):
            model["used"](torch.tensor([-1.0, 1.0]))
    assert model["used"].is_initialized() and not model["branch"][1].is_initialized()
