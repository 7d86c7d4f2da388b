"""`FloatQuantizeDequantize`: fp16/bf16 simulation as a quantizer module.

Oracle: torch's own round-to-nearest-even casts (``x.to(dtype).to(float32)``).
"""

import pytest
import torch

from torchqsim.quantization import FloatQuantizeDequantize


@pytest.mark.parametrize("dtype,exponent,mantissa", [(torch.float16, 5, 10),
                                                     (torch.bfloat16, 8, 7)])
def test_forward_is_the_cast_round_trip_and_needs_no_calibration(dtype, exponent, mantissa):
    q = FloatQuantizeDequantize(dtype)
    assert (q.bitwidth, q.exponent_bits, q.mantissa_bits) == (16, exponent, mantissa)
    assert q.is_initialized() and list(q.parameters()) == []
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 100
    x = torch.cat([x, torch.tensor([70000.0, -1e-8, 1.0 + 2**-11, float("nan")])])
    with q.compute_encodings():
        inside = q(x)
    expected = x.to(dtype).to(torch.float32)
    assert torch.equal(q(x).nan_to_num(), expected.nan_to_num())
    assert torch.equal(inside.nan_to_num(), expected.nan_to_num())
    assert not torch.equal(q(x).nan_to_num(), x.nan_to_num())


def test_gradient_is_the_identity():
    x = torch.randn(10, requires_grad=True)
    FloatQuantizeDequantize()(x).mul(torch.arange(10.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(10.0))


def test_other_dtypes_are_rejected():
    # float8 / float4 dtypes and format names are accepted since issue 16
    with pytest.raises(ValueError, match="FloatQuantizeDequantize: dtype must be one of "
                                         "torch.float8_e4m3fn.*; got torch.float32"):
        FloatQuantizeDequantize(torch.float32)
    with pytest.raises(ValueError, match="unknown format 'fp9'"):
        FloatQuantizeDequantize("fp9")
    with pytest.raises(ValueError, match="not both"):
        FloatQuantizeDequantize(torch.float16, exponent_bits=4, mantissa_bits=3)
