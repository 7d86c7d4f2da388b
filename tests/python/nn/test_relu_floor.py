"""A calibrated ReLU whose output grid starts at 0 skips the ReLU in no-grad forwards, bit for bit.

Oracles: the same quantizer applied to ``torch.relu(x)`` (what the wrapper computed before the
shortcut), compared bit for bit (signed zeros, NaN, +-Inf); `ref_qdq` (the pure-torch formula)
on the finite values; torch's profiler for whether ``aten::relu`` ran.
"""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import torchqsim.nn as qnn
from asserts import assert_same
from wrapper_reference import quantizer, ref_qdq


def _ran_relu(fn) -> bool:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return any(e.name.startswith(("aten::relu", "aten::clamp_min")) for e in prof.events())


def _edge_values() -> torch.Tensor:
    """Random values around the grid's steps plus -0.0, +-Inf, NaN and tiny negatives."""
    g = torch.Generator().manual_seed(0)
    special = torch.tensor([-0.0, 0.0, float("-inf"), float("inf"), float("nan"), -1e-30,
                            -0.005, 0.005, -0.0149, 0.0151, 1e-30])
    return torch.cat([torch.randn(4096, generator=g) * 2, special])


def _relu(lo, hi, shape=(), bitwidth=8, symmetric=False, inplace=False):
    m = qnn.QuantizedReLU(inplace=inplace)
    m.output_quantizers[0] = quantizer(lo, hi, shape, bitwidth, symmetric)
    return m


@pytest.mark.parametrize("bitwidth", [4, 8, 16])
def test_floor_at_zero_skips_relu_bit_for_bit(bitwidth):
    m, x = _relu(0.0, 3.0, bitwidth=bitwidth), _edge_values()
    assert m.output_quantizers[0].floors_at_zero(x.shape)
    with torch.no_grad():
        expected = m.output_quantizers[0](torch.relu(x))
        assert not _ran_relu(lambda: m(x))
        y = m(x)
    assert_same(y, expected)
    finite = x.isfinite()
    assert_same(y[finite], ref_qdq(m.output_quantizers[0], torch.relu(x[finite])).detach())
    assert torch.isnan(x[-7]) and float(x[-11]) == 0.0 and x[-11].signbit()  # input untouched


def test_per_channel_floor_at_zero_skips_relu():
    m = _relu(torch.zeros(3, 1), torch.tensor([[1.0], [2.0], [4.0]]), shape=(3, 1))
    x = _edge_values()[:4104].reshape(3, 1368)
    with torch.no_grad():
        expected = m.output_quantizers[0](torch.relu(x))
        assert not _ran_relu(lambda: m(x))
        assert_same(m(x), expected)


@pytest.mark.parametrize("case", ["negative_min", "one_channel_below", "inplace", "grad",
                                  "input_quantizer", "calibrating"])
def test_relu_runs_where_the_shortcut_would_differ(case):
    lo = torch.tensor([[0.0], [-1.0]]) if case == "one_channel_below" else \
        (-1.0 if case == "negative_min" else 0.0)
    shape = (2, 1) if case == "one_channel_below" else ()
    m, x = _relu(lo, 2.0, shape=shape, inplace=case == "inplace"), torch.randn(2, 64)
    if case == "input_quantizer":
        m.input_quantizers[0] = quantizer(-2.0, 2.0)
    expected = ref_qdq(m.output_quantizers[0], torch.relu(ref_qdq(m.input_quantizers[0], x)))
    if case == "calibrating":
        with m.output_quantizers[0].compute_encodings(), torch.no_grad():
            assert _ran_relu(lambda: m(x.clone()))
        # calibration saw relu's output: its min is 0, not the input's negative min
        assert float(m.output_quantizers[0].get_encoding().min) == 0.0
        return
    held = x.clone()  # an inplace=True ReLU's caller may read its input again
    with torch.set_grad_enabled(case == "grad"):
        assert _ran_relu(lambda: m(held if case == "inplace" else x.clone()))
        assert_same(m(x.clone()).detach(), expected.detach())
