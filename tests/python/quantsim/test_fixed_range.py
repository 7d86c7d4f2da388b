"""Fixed output ranges (``encoding_constraints``) on symmetric slots, as the eNPU config files
give Softmax and Sigmoid ``[0, 1]``: by default the grid holds the range; with
``aimet_fixed_range_clipping`` it is aimet-torch 2.42's grid, which ends at 127/255
(wrappers/quantsim/construction.py; docs/aimet.md §2.7; AIMET itself:
tests/aimet_parity/test_encodings_files.py)."""

import pytest
import torch
from torch import nn

from torchqsim.quantization.param_quantizer import is_frozen
from torchqsim.quantsim import QuantizationSimModel
from config_helpers import config

SYMMETRIC_OPS = {"ops": {"is_output_quantized": True, "is_symmetric": True},
                 "params": {"is_quantized": True, "is_symmetric": True}}
X = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
PROBE = torch.tensor([0.0, 0.1, 0.3, 0.4977, 0.5, 0.7, 0.99, 1.0])


class FcSigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)
        self.sig = nn.Sigmoid()

    def forward(self, x):
        return self.sig(self.fc(x))


def _sigmoid_quantizer(tmp_path, lo, hi, defaults=SYMMETRIC_OPS, **kwargs):
    cfg = config(tmp_path, defaults, op_type={
        "Sigmoid": {"encoding_constraints": {"min": lo, "max": hi}}})
    sim = QuantizationSimModel(FcSigmoid(), X, quant_scheme="tf", config_file=cfg, **kwargs)
    return sim.model.sig.output_quantizers[0]


def test_fixed_range_on_a_symmetric_slot_holds_the_range_by_default(tmp_path):
    """[0, 1] on a symmetric slot: the unsigned grid [0, 255] / 255, so 0.7 reads 178/255."""
    q = _sigmoid_quantizer(tmp_path, 0.0, 1.0)
    assert is_frozen(q) and q.symmetric
    enc = q.get_encoding()
    assert (float(enc.min), float(enc.max)) == (0.0, 1.0)
    assert torch.equal(enc.scale, torch.tensor(1.0) / 255)
    with torch.no_grad():
        got = q(PROBE)
    # no value of [0, 1] clips (reference: x / scale rounded half to even, as ONNX)
    assert torch.equal(got, torch.clamp(torch.round(PROBE / enc.scale), 0, 255) * enc.scale)
    assert float(got[5]) == pytest.approx(178 / 255)


def test_aimet_fixed_range_clipping_reproduces_aimets_grid(tmp_path):
    """The option: scale 1/255 at zero point 0 of the signed grid, [-128, 127] / 255, so every
    value above 127/255 (0.7 included) reads 0.498."""
    q = _sigmoid_quantizer(tmp_path, 0.0, 1.0, aimet_fixed_range_clipping=True)
    enc = q.get_encoding()
    assert torch.equal(enc.scale, torch.tensor(1.0) / 255) and int(enc.zero_point) == 0
    assert float(enc.min) == pytest.approx(-128 / 255) and float(enc.max) == pytest.approx(127 / 255)
    with torch.no_grad():
        got = q(PROBE)
    assert torch.equal(got, torch.clamp(torch.round(PROBE / enc.scale), -128, 127) * enc.scale)
    assert float(got[5]) == pytest.approx(127 / 255)


def test_fixed_range_with_negative_min_takes_the_smallest_signed_grid_holding_it(tmp_path):
    """[-0.5, 1] on a symmetric slot: scale max(1 / 127, 0.5 / 128) = 1 / 127."""
    q = _sigmoid_quantizer(tmp_path, -0.5, 1.0)
    enc = q.get_encoding()
    assert torch.equal(enc.scale, torch.tensor(1.0) / 127) and int(enc.zero_point) == 0
    assert float(enc.max) == pytest.approx(1.0) and float(enc.min) <= -0.5


@pytest.mark.parametrize("clipping", [False, True])
def test_the_option_changes_neither_asymmetric_slots_nor_symmetric_ranges(tmp_path, clipping):
    """[0, 1] on an asymmetric slot is the range itself, and [-1, 1] AIMET's 2/255 grid, either
    way."""
    asym = {"ops": {"is_output_quantized": True},
            "params": {"is_quantized": True, "is_symmetric": True}}
    q = _sigmoid_quantizer(tmp_path, 0.0, 1.0, asym, aimet_fixed_range_clipping=clipping)
    assert not q.symmetric and (float(q.get_encoding().min), float(q.get_encoding().max)) == (0, 1)
    q = _sigmoid_quantizer(tmp_path, -1.0, 1.0, aimet_fixed_range_clipping=clipping)
    assert q.symmetric and torch.equal(q.get_scale(), torch.tensor(2.0) / 255)


def test_aimet_fixed_range_clipping_must_be_a_bool():
    with pytest.raises(TypeError, match="aimet_fixed_range_clipping"):
        QuantizationSimModel(FcSigmoid(), X, aimet_fixed_range_clipping="yes")
