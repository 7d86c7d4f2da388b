"""AIMET 2.42's numerics that the parity suite (tests/aimet_parity/) relies on, checked here
against plain-torch oracles: the unsnapped range a quantizer holds (docs/aimet.md §2.3), the
weight re-encoding at the end of calibration (torchqsim/quantsim/weight_snap.py) and the
``aimet_eval_rounding`` option (§2.5)."""

import pytest
import torch
from torch import nn

from torchqsim.quantization.encoding_analyzer import MinMaxEncodingAnalyzer
from torchqsim.quantization.grid import Grid, GridKind
from torchqsim.quantization.quantizer import QuantizeDequantize
from torchqsim.quantization.tf_enhanced import TfEnhancedEncodingAnalyzer
from torchqsim.quantsim import QuantizationSimModel


def test_asymmetric_min_max_holds_the_observed_range_and_derives_aimets_scale():
    x = torch.tensor([-1.3, 0.2, 2.7])
    q = QuantizeDequantize((), 8, symmetric=False, encoding_analyzer=MinMaxEncodingAnalyzer())
    with q.compute_encodings():
        q(x)
    assert float(q.min) == float(x.min()) and float(q.max) == float(x.max())
    scale = (x.max() - x.min()) / 255          # AIMET: (max - min) / num_steps in fp32
    enc = q.get_encoding()
    assert torch.equal(enc.scale, scale)
    zp = torch.clamp(-torch.round(x.min() / scale), 0, 255)
    assert torch.equal(enc.zero_point, zp.to(torch.int32))
    assert torch.equal(enc.min, scale * (0 - zp)) and torch.equal(enc.max, scale * (255 - zp))


def test_tf_enhanced_holds_the_best_candidates_range():
    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    a = TfEnhancedEncodingAnalyzer((4, 1))
    q = QuantizeDequantize((4, 1), 8, symmetric=True, encoding_analyzer=a)
    with q.compute_encodings():
        q(x)
    lo, hi = a.held_range(Grid.of(8, GridKind.SYMMETRIC))
    assert torch.equal(q.min.detach(), lo) and torch.equal(q.max.detach(), hi)
    assert torch.equal(q.get_scale(), (hi - lo) / 255)
    assert a.held_range(Grid.of(4, GridKind.SYMMETRIC)) is None   # computed for 8 bits only


def test_calibration_re_encodes_linear_weights_on_their_grid():
    torch.manual_seed(0)
    model, x = nn.Sequential(nn.Linear(8, 4)), torch.randn(16, 8)
    sim = QuantizationSimModel(model, x, quant_scheme="tf_enhanced", config_file="per_channel")
    sim.compute_encodings(lambda m, _: m(x), None)
    q = sim.model.get_submodule("0").param_quantizers["weight"]
    fresh = QuantizeDequantize((4, 1), 8, symmetric=True,
                               encoding_analyzer=TfEnhancedEncodingAnalyzer((4, 1)))
    with fresh.compute_encodings():
        fresh(model[0].weight.detach())
    scale = fresh.get_scale()                    # the scale the held range gave
    assert torch.equal(q.min.detach(), scale * q.qmin)
    assert torch.equal(q.max.detach(), scale * q.qmax)


def _ties(scale: torch.Tensor) -> torch.Tensor:
    """fp32 values whose x / scale and x * (1 / scale) round to different integers."""
    x = (torch.arange(-2000, 2000, dtype=torch.float32) + 0.5) * scale
    x = torch.cat([x, torch.nextafter(x, x + 1), torch.nextafter(x, x - 1)])
    return x[torch.round(x / scale) != torch.round(x * (1 / scale))]


def test_reciprocal_rounding_is_torch_fake_quantize_and_the_default_divides():
    scale = torch.tensor(0.0019434281857684255)
    x = _ties(scale)
    assert x.numel() > 0
    q = QuantizeDequantize((), 8, symmetric=True)
    q.set_range(scale * -128, scale * 127)
    s = q.get_scale()
    with torch.no_grad():
        divided = q(x)
        q.reciprocal_rounding = True
        reciprocal = q(x)
        with torch.enable_grad():             # with autograd on, AIMET divides too
            assert torch.equal(q(x.requires_grad_()).detach(), divided)
    x = x.detach()
    assert torch.equal(divided, torch.clamp(torch.round(x / s), -128, 127) * s)
    assert torch.equal(reciprocal, torch.fake_quantize_per_tensor_affine(x, float(s), 0, -128, 127))
    assert not torch.equal(divided, reciprocal)


def test_aimet_eval_rounding_reaches_every_quantizer_and_is_checked():
    model, x = nn.Sequential(nn.Linear(4, 4), nn.ReLU()), torch.randn(2, 4)
    sim = QuantizationSimModel(model, x, aimet_eval_rounding=True)
    assert all(q.reciprocal_rounding for _, q in sim.quantizers())
    assert not any(q.reciprocal_rounding for _, q in QuantizationSimModel(model, x).quantizers())
    with pytest.raises(TypeError, match="aimet_eval_rounding"):
        QuantizationSimModel(model, x, aimet_eval_rounding="yes")
