"""Float and block formats in the sim's ``_torch.encodings`` (wrappers/quantsim/torch_encodings.py):
``export`` then ``load_encodings`` into a fresh int8 sim rebuilds the same quantizers (format, block
axis, NVFP4's calibrated tensor scale) and gives bit-identical outputs; bad format keys are refused
naming the entry. Oracle: the exporting sim's own outputs."""

import json

import pytest
import torch
from torch import nn

from asserts import assert_same
from torchqsim.quantization import BlockFloatQuantizeDequantize, FloatQuantizeDequantize
from torchqsim.quantsim import QuantizationSimModel


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 40, 3), nn.ReLU(), nn.Flatten(), nn.Linear(40 * 4 * 4, 10))


def _sims(act, param):
    x = torch.randn(2, 3, 6, 6) * 3
    model = _model()
    sim = QuantizationSimModel(model, x, quant_scheme="tf")
    sim.set_precision(nn.Conv2d, activation=act, param=param)
    sim.set_precision(nn.Linear, activation=act, param=param)
    sim.compute_encodings(lambda m: m(x * 1.5))  # NVFP4: a calibrated amax unlike x's own
    fresh = QuantizationSimModel(_model(), x, quant_scheme="tf")  # int8 everywhere
    fresh.compute_encodings(lambda m: m(x))
    return sim, fresh, x


def _quantizers(sim):
    return {name: q for name, q in sim.model.named_modules()
            if isinstance(q, (FloatQuantizeDequantize, BlockFloatQuantizeDequantize))}


@pytest.mark.parametrize("act,param", [("fp8_e4m3", "mxfp4"), ("fp8_e5m2", "nvfp4"),
                                       ("fp6_e3m2", "mxfp6_e2m3"), ("fp4_e2m1", "mxint8")])
def test_export_then_load_gives_identical_outputs(tmp_path, act, param):
    sim, fresh, x = _sims(act, param)
    sim.export(str(tmp_path), "m", x)
    with torch.no_grad():
        before = fresh.model(x)
        fresh.load_encodings(str(tmp_path / "m_torch.encodings"))
        want, got = sim.model(x), fresh.model(x)
    assert not torch.equal(before, want)  # the int8 sim differs: the load changed something
    assert_same(got, want, f"{act}/{param}")
    ours, theirs = _quantizers(sim), _quantizers(fresh)
    assert ours.keys() == theirs.keys() and ours
    for name, q in ours.items():
        t = theirs[name]
        assert (type(t), t.format_name, getattr(t, "axis", None)) == \
            (type(q), q.format_name, getattr(q, "axis", None)), name
        if getattr(q, "tensor_scale", None) is not None:
            assert_same(t.tensor_scale, q.tensor_scale, f"{name} tensor scale")


def _entry(sim):
    data = sim.quantizer_encodings_dict()
    return data, data["param_encodings"]["0.weight"][0]


@pytest.mark.parametrize("change,match", [
    ({"format": "mxfp5"}, r"param_encodings\['0.weight'\]\.format: unknown format 'mxfp5'"),
    ({"bitwidth": 8}, r"param_encodings\['0.weight'\]\.bitwidth=8 with format 'mxfp4'"),
    ({"amax": 3.0}, r"param_encodings\['0.weight'\]\.amax: a finite number >= 0 of an nvfp4"),
    ({"format": "fp8_e4m3", "dtype": "int"}, r"'format' and 'amax' belong to one float entry"),
])
def test_bad_format_keys_are_refused_naming_the_entry(change, match):
    sim, fresh, _ = _sims("fp8_e4m3", "mxfp4")
    data, entry = _entry(sim)
    entry.update(change)
    with pytest.raises(ValueError, match=match):
        fresh.load_encodings(json.loads(json.dumps(data)))
