"""Scale and zero point of any accepted dtype and layout: the qdq ops convert CPU qparams to fp32
themselves (bindings/qdq_args.cpp, ``contiguous_fp32``), and must give what they give for the
qparams converted by torch's ``.float()``.

Oracle: the same op on ``scale.float()`` and ``zero_point.float()``, bit for bit (a double scale
that fp32 cannot hold, large integer zero points, the unsigned and float8 dtypes that take the
``.to()`` path, a strided per-channel scale); errors name the element as before.
"""

import pytest
import torch

import torchqsim  # noqa: F401  (registers the ops)
from asserts import assert_same

ops = torch.ops.qsim
ZP_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16,
             torch.uint32, torch.float8_e4m3fn, torch.float16, torch.bfloat16, torch.float64,
             torch.float32)
SCALE_DTYPES = (torch.float16, torch.bfloat16, torch.float64, torch.float32)
QMIN, QMAX = 0, 255


def _x(shape=(7, 5, 9)):
    g = torch.Generator().manual_seed(0)
    return torch.randn(shape, generator=g) * 3


def _qparams(scale_dtype, zp_dtype, channels=None):
    """Scales fp32 cannot hold exactly in double, zero points up to 120 (every dtype holds them)."""
    n = 1 if channels is None else channels
    scale = (torch.arange(1, n + 1, dtype=torch.float64) * 0.0123456789012345).to(scale_dtype)
    zp = (torch.arange(n) * 7 + 99).clamp(max=120).to(zp_dtype)
    return (scale[0], zp[0]) if channels is None else (scale, zp)


@pytest.mark.parametrize("zp_dtype", ZP_DTYPES, ids=str)
@pytest.mark.parametrize("scale_dtype", SCALE_DTYPES, ids=str)
def test_per_tensor_ops_take_qparams_of_any_dtype(scale_dtype, zp_dtype):
    x = _x()
    scale, zp = _qparams(scale_dtype, zp_dtype)
    want = ops.quantize_dequantize(x, scale.float(), zp.float(), QMIN, QMAX)
    assert_same(ops.quantize_dequantize(x, scale, zp, QMIN, QMAX), want, "out of place")
    y = x.clone()
    ops.quantize_dequantize_(y, scale, zp, QMIN, QMAX)
    assert_same(y, want, "in place")
    q = ops.quantize(x, scale, zp, QMIN, QMAX)
    assert_same(q, ops.quantize(x, scale.float(), zp.float(), QMIN, QMAX), "quantize")
    assert_same(ops.dequantize(q, scale, zp), ops.dequantize(q, scale.float(), zp.float()),
                "dequantize")


@pytest.mark.parametrize("zp_dtype", (torch.int32, torch.int64, torch.uint8, torch.float64), ids=str)
@pytest.mark.parametrize("scale_dtype", (torch.float64, torch.bfloat16), ids=str)
def test_per_channel_and_backward_take_qparams_of_any_dtype(scale_dtype, zp_dtype):
    x = _x()
    scale, zp = _qparams(scale_dtype, zp_dtype, channels=5)
    want = ops.quantize_dequantize(x, scale.float(), zp.float(), QMIN, QMAX, 1)
    assert_same(ops.quantize_dequantize(x, scale, zp, QMIN, QMAX, 1), want, "per channel")
    dy = torch.randn_like(x)
    got = ops.quantize_dequantize_backward(dy, x, scale, zp, QMIN, QMAX, 1, None, True)
    ref = ops.quantize_dequantize_backward(dy, x, scale.float(), zp.float(), QMIN, QMAX, 1, None,
                                           True)
    for name, g, r in zip(("dx", "dscale", "dzero_point"), got, ref):  # in the qparams' dtypes
        assert_same(g, r.to(g.dtype), name)


def test_strided_per_channel_qparams_equal_contiguous_ones():
    x = _x()
    wide_s, wide_z = _qparams(torch.float64, torch.int64, channels=10)
    scale, zp = wide_s[::2], wide_z[::2]
    assert not scale.is_contiguous() and not zp.is_contiguous()
    want = ops.quantize_dequantize(x, scale.contiguous().float(), zp.contiguous().float(), QMIN,
                                   QMAX, 1)
    assert_same(ops.quantize_dequantize(x, scale, zp, QMIN, QMAX, 1), want, "strided")


@pytest.mark.parametrize("dtype", (torch.float64, torch.float16), ids=str)
def test_bad_values_of_other_dtypes_are_named_by_index(dtype):
    scale = torch.tensor([0.1, 0.2, -1.0, 0.4, 0.5], dtype=dtype)
    zp = torch.zeros(5, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"scale\.flatten\(\)\[2\] = -1"):
        ops.quantize_dequantize(_x(), scale, zp, QMIN, QMAX, 1)
    zp[3] = 300
    with pytest.raises(ValueError, match=r"zero_point\.flatten\(\)\[3\] = 300"):
        ops.quantize_dequantize(_x(), scale.abs(), zp, QMIN, QMAX, 1)
    with pytest.raises(ValueError, match=r"zero_point\.flatten\(\)\[0\] = 256"):
        ops.quantize_dequantize_(_x(), torch.tensor(0.1, dtype=dtype),
                                 torch.tensor(256, dtype=torch.int16), QMIN, QMAX)
