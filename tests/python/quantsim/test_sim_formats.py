"""The float and block formats in `QuantizationSimModel`: `set_precision` values, the quantizers
they create, calibration of NVFP4's tensor scale and `print(sim)`
(`choose_mixed_precision` candidates: tests/python/ptq/test_mixed_precision_formats.py). Oracle: the functional ops composed by hand around torch's own layer."""

import pytest
import torch
from torch import nn

import torchqsim.functional as F
from asserts import assert_same
from torchqsim.float_formats import nvfp4_tensor_scale
from torchqsim.quantization import BlockFloatQuantizeDequantize, FloatQuantizeDequantize
from torchqsim.quantsim import QuantizationSimModel


def _sim(act, param):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 48))
    x = torch.randn(16, 64) * 3
    sim = QuantizationSimModel(model, x, quant_scheme="tf")
    sim.set_precision(nn.Linear, activation=act, param=param)
    sim.compute_encodings(lambda m: m(x))
    return sim, model, x


@pytest.mark.parametrize("act,param", [("fp8_e4m3", "mxfp4"), ("fp8_e5m2", "nvfp4"),
                                       ("fp8_e4m3", "mxfp8_e4m3"), ("fp6_e3m2", "mxint8")])
def test_sim_output_is_the_composition_of_the_formats(act, param):
    sim, model, x = _sim(act, param)
    m = sim.model.get_submodule("0")
    qin, qout, qw = m.input_quantizers[0], m.output_quantizers[0], m.param_quantizers["weight"]
    assert isinstance(qin, FloatQuantizeDequantize) and qin.format_name == act
    assert isinstance(qout, FloatQuantizeDequantize) and qout.format_name == act
    assert isinstance(qw, BlockFloatQuantizeDequantize) and qw.format_name == param
    assert qw.axis == 1 and qw.bitwidth == {"mxfp4": 4, "nvfp4": 4, "mxfp8_e4m3": 8, "mxint8": 8}[param]
    w = model[0].weight.detach()
    scale = nvfp4_tensor_scale(w.abs().amax()) if param == "nvfp4" else None
    if param == "nvfp4":  # calibrated from the weight's statistics
        assert_same(qw.tensor_scale, scale, "nvfp4 tensor scale")
    wq = F.block_float_quantize_dequantize(w, param, axis=1, tensor_scale=scale)
    cast = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}.get(act)
    def fq(t):
        if cast is not None:
            return F.float_quantize_dequantize(t, cast)
        return F.float_quantize_dequantize(t, None, exponent_bits=3, mantissa_bits=2, kind="finite")
    expected = fq(torch.nn.functional.linear(fq(x), wq, model[0].bias.detach()))
    with torch.no_grad():
        assert_same(sim.model(x), expected, f"{act}/{param}")
    text = str(sim)
    assert act in text and param in text and "blocks of" in text


def test_nvfp4_activation_tensor_scale_is_calibrated():
    sim, _, x = _sim("nvfp4", 8)
    q = sim.model.get_submodule("0").input_quantizers[0]
    assert_same(q.tensor_scale, nvfp4_tensor_scale(x.abs().amax()), "calibrated from the batch")


def test_set_precision_rejects_unknown_formats():
    torch.manual_seed(0)
    sim = QuantizationSimModel(nn.Sequential(nn.Linear(4, 4)), torch.randn(2, 4))
    with pytest.raises(ValueError, match="format name"):
        sim.set_precision(nn.Linear, activation="fp7_e9m9")
