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


def _snap_sim():
    """A calibrated sim whose weights sit on three grids, some output scales raising the
    weight scales of their layer (all channels of layer 0, some of layer 3), and a layer
    without an output quantizer."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(8, 6), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 5),
                          nn.Linear(5, 4))
    x = torch.randn(16, 8)
    sim = QuantizationSimModel(model, x, quant_scheme="tf", config_file="per_channel")
    layers = [sim.model.get_submodule(n) for n in ("0", "1", "3", "4")]
    layers[2].param_quantizers["weight"] = QuantizeDequantize((5, 1), 4, symmetric=True)
    layers[3].param_quantizers["weight"] = QuantizeDequantize((4, 1), 8, symmetric=False)
    layers[3].output_quantizers[0] = None
    sim.compute_encodings(lambda m, _: m(x), None)
    for i, layer in enumerate(layers):
        w = layer.param_quantizers["weight"]
        span = torch.logspace(-4, 1, w.min.numel()).reshape(w.shape)
        w.set_range(-span * (1 + i), span)
        for q in (*layer.input_quantizers, *layer.output_quantizers):
            if q is not None:
                q.set_range(-1.0, 1.0)
    layers[0].output_quantizers[0].set_range(-1e7, 1e7)    # floor ~0.1: every channel
    layers[2].output_quantizers[0].set_range(-1.2e5, 1.2e5)  # floor ~1e-3: some channels
    return sim, layers


@pytest.mark.parametrize("default_dtype", [torch.float32, torch.float64])
def test_weight_re_encoding_of_all_layers_at_once_is_each_layers_own_bit_for_bit(default_dtype):
    import torchqsim.quantsim.weight_snap as snap
    sim, layers = _snap_sim()
    weights = [layer.param_quantizers["weight"] for layer in layers]
    before = [(w.min.detach().clone(), w.max.detach().clone()) for w in weights]
    saved = torch.get_default_dtype()
    torch.set_default_dtype(default_dtype)  # (the encodings stay float32 either way)
    try:
        snap.snap_weight_ranges(sim)
    finally:
        torch.set_default_dtype(saved)
    together = [(w.min.detach().clone(), w.max.detach().clone()) for w in weights]
    for w, (lo, hi) in zip(weights, before):
        w.set_range(lo, hi)
    alone = snap._snap_together
    try:
        snap._snap_together = lambda jobs: [snap._snap_one(*job) for job in jobs]
        snap.snap_weight_ranges(sim)
    finally:
        snap._snap_together = alone
    for i, (w, (lo, hi)) in enumerate(zip(weights, together)):
        assert torch.equal(w.min.detach(), lo) and torch.equal(w.max.detach(), hi), f"layer {i}"
        if w.symmetric:  # re-encoded: min = qmin * scale, no longer -(1 + i) * span
            assert not torch.equal(lo, before[i][0]), f"layer {i} was not re-encoded"
    raised = [(t[1] - t[0]) / 15 > (b[1] - b[0]) / 15 * 1.01 for t, b in
              zip(together[2:3], before[2:3])][0]
    assert 0 < int(raised.sum()) < raised.numel()  # the floor raised some channels of layer 3
    scale0 = (together[0][1] - together[0][0]) / 255
    in_q, out_q = layers[0].input_quantizers[0], layers[0].output_quantizers[0]
    floor = (2 ** -23.5 * out_q.get_scale()) / in_q.get_scale()  # AIMET's rule, in float32
    assert torch.equal(scale0, floor.expand_as(scale0))  # every channel of layer 0 at the floor
