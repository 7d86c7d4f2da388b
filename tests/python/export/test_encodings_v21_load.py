"""2.1.0 block-format weight entries back into a sim (wrappers/export/encodings_v21.py:
``sim_channels`` and ``check_loaded``): the entries read by ``torchqsim.encodings`` from the
file ``sim.export(..., "2.1.0")`` wrote, loaded into a fresh int8 sim (the activations from the
exporting sim's ``_torch.encodings``), give bit-identical outputs; a file whose scales the
weights do not give, or whose NVFP4 ``x_scale`` no fp32 amax gives, is refused naming the
entry. Oracle: the exporting sim's own outputs."""

import json

import pytest
import torch
from torch import nn

from asserts import assert_same
from torchqsim.encodings import read_encodings
from torchqsim.export.encodings_v21 import _nvfp4_amax, check_loaded, mxint8_entry, sim_channels
from torchqsim.float_formats import nvfp4_tensor_scale
from torchqsim.quantization import BlockFloatQuantizeDequantize, FloatQuantizeDequantize
from torchqsim.quantsim import QuantizationSimModel


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 40, 3), nn.ReLU(), nn.Flatten(), nn.Linear(40 * 4 * 4, 10))


def _exported(tmp_path, param):
    x = torch.randn(2, 3, 6, 6) * 3
    sim = QuantizationSimModel(_model(), x, quant_scheme="tf")
    sim.set_precision(nn.Conv2d, activation="fp8_e4m3", param=param)
    sim.set_precision(nn.Linear, param=param)
    sim.compute_encodings(lambda m: m(x * 1.5))  # NVFP4: a calibrated amax unlike the weight's
    paths = sim.export(str(tmp_path), "m", x, encoding_version="2.1.0")
    return sim, read_encodings(paths["encodings"])["encodings"], x


def _load(sim, entries, x):
    """A fresh int8 sim with the weight entries of the 2.1.0 file and `sim`'s activations."""
    fresh = QuantizationSimModel(_model(), x, quant_scheme="tf")
    fresh.compute_encodings(lambda m: m(x))
    params = {n: sim_channels(entries[n], f"encodings[{n!r}]") for n in ("0.weight", "3.weight")}
    fresh.load_encodings({"activation_encodings":
                          sim.quantizer_encodings_dict()["activation_encodings"],
                          "param_encodings": params})
    return fresh


@pytest.mark.parametrize("param", ["mxfp4", "nvfp4", "mxfp8_e4m3"])
def test_weights_from_2_1_0_give_identical_outputs(tmp_path, param):
    sim, entries, x = _exported(tmp_path, param)
    fresh = _load(sim, entries, x)
    for name in ("0.weight", "3.weight"):
        module = fresh.model.get_submodule(name[0])
        q = module.param_quantizers["weight"]
        assert q.format_name == param
        check_loaded(q, module.weight, entries[name], f"encodings[{name!r}]")
    with torch.no_grad():
        assert_same(fresh.model(x), sim.model(x), param)


def test_scales_the_weight_does_not_give_are_refused(tmp_path):
    sim, entries, x = _exported(tmp_path, "mxfp4")
    fresh = _load(sim, entries, x)
    module = fresh.model.get_submodule("3")
    entry = dict(entries["3.weight"], scale=[list(r) for r in entries["3.weight"]["scale"]])
    entry["scale"][4][7] *= 2
    with pytest.raises(ValueError, match=r"w\.y_scale\[4\]\[7\]: the block scales differ"):
        check_loaded(module.param_quantizers["weight"], module.weight, entry, "w")
    with pytest.raises(ValueError, match=r"w\.axis: the sim blocks axis 1 of this weight"):
        check_loaded(module.param_quantizers["weight"], module.weight,
                     dict(entries["3.weight"], axis=0), "w")


def test_nvfp4_x_scale_gives_the_tensor_scale_bit_for_bit():
    for d in torch.rand(200) * 10.0 ** torch.randint(-30, 30, (200,)).float():
        amax = torch.tensor(d.item()) * 2688.0
        d = nvfp4_tensor_scale(amax)  # a tensor scale a calibrated quantizer can hold
        got = torch.tensor(_nvfp4_amax(float(d), "e"), dtype=torch.float32)
        assert torch.equal(nvfp4_tensor_scale(got), d), float(d)
    # amax -> amax / 2688 skips fp32 values where amax's ulp is 2^12 d's (d in [4096/2688, 2)):
    # find one
    d = torch.tensor(1.6)
    while any(torch.equal(nvfp4_tensor_scale(a), d) for a in
              (d * 2688.0 + torch.arange(-8, 9) * torch.finfo(torch.float32).eps * 2048)):
        d = torch.nextafter(d, torch.tensor(2.0))
    with pytest.raises(ValueError, match=r"e\.y_scale\.x_scale: .* is no NVFP4 tensor scale"):
        _nvfp4_amax(float(d), "e")


@pytest.mark.parametrize("param", ["fp8_e4m3", "fp8_e5m2", "fp4_e2m1", "mxfp8_e4m3",
                                   "mxfp8_e5m2", "mxfp4", "mxint8", "nvfp4"])
def test_sim_load_encodings_of_the_2_1_0_file_gives_identical_outputs(tmp_path, param):
    sim, entries, x = _exported(tmp_path, param)
    fresh = QuantizationSimModel(_model(), x, quant_scheme="tf")
    fresh.compute_encodings(lambda m: m(x))
    with torch.no_grad():
        before = fresh.model(x)
        fresh.load_encodings(str(tmp_path / "m.encodings"))  # its ONNX model m.onnx beside it
        want, got = sim.model(x), fresh.model(x)
    assert not torch.equal(before, want)
    assert_same(got, want, param)
    formats = [{n: q.format_name for n, q in s.model.named_modules()
                if isinstance(q, (FloatQuantizeDequantize, BlockFloatQuantizeDequantize))}
               for s in (sim, fresh)]
    assert formats[0] == formats[1] and "fp8_e4m3" in formats[0].values()
    assert [formats[1][f"{m}.param_quantizers.weight"] for m in "03"] == [param, param]


def test_sim_load_encodings_refuses_scales_the_weights_do_not_give(tmp_path):
    sim, _, x = _exported(tmp_path, "mxfp4")
    fresh = QuantizationSimModel(_model(), x, quant_scheme="tf")
    with torch.no_grad():
        fresh.model.get_submodule("3").weight.mul_(4)  # other weights: other block scales
    with pytest.raises(ValueError, match=r"m\.encodings: encodings\['3\.weight'\]\.y_scale\[0\]"
                                         r"\[0\]: the block scales differ"):
        fresh.load_encodings(str(tmp_path / "m.encodings"))


def _mxint8_like(**change):
    e = {"dtype": "int", "bitwidth": 8, "layout": "per_block", "is_symmetric": True,
         "scale": [2.0 ** -6, 2.0 ** -133 * 64, 2.0 ** 121, 0.5], "offset": [-128] * 4, "axis": 1,
         "block_size": 32}
    return dict(e, **change)


def test_mxint8_entry_known_answers_and_other_per_block_entries():
    # weight (2, 40): blocks of 32 along axis 1 -> (2, 2) scales
    got = mxint8_entry(_mxint8_like(), (2, 40))
    assert got["format"] == "mxint8" and got["axis"] == 1 and got["block_size"] == 32
    assert got["scale"] == [[2.0 ** -6, 2.0 ** -127], [2.0 ** 121, 0.5]]
    for change in ({"scale": [2.0 ** -6, 3 / 64, 1.0, 1.0]},   # not a power of two
                   {"scale": [2.0 ** -134, 1.0, 1.0, 1.0]},    # 2^-134 = 2^-128 / 64: k < -127
                   {"offset": [-128, -128, -127, -128]},       # asymmetric
                   {"block_size": 16}, {"bitwidth": 4}, {"axis": 2},
                   {"scale": [1.0] * 3, "offset": [-128] * 3}):  # not the weight's block count
        assert mxint8_entry(_mxint8_like(**change), (2, 40)) is None, change


def test_sim_load_encodings_takes_a_per_block_int8_entry_not_mxint8_as_blockwise(tmp_path):
    _, _, x = _exported(tmp_path, "mxint8")
    path = tmp_path / "m.encodings"
    doc = json.loads(path.read_text())
    entry = next(e for e in doc["encodings"] if e["name"] == "3.weight")
    entry["y_scale"][0][0] *= 3  # no longer 2^k / 64: a plain blockwise int8 encoding
    path.write_text(json.dumps(doc))
    fresh = QuantizationSimModel(_model(), x, quant_scheme="tf")
    fresh.load_encodings(str(path))
    q = fresh.model.get_submodule("3").param_quantizers["weight"]
    assert type(q).__name__ == "ParamQuantizeDequantize" and q.bitwidth == 8
    assert q.block_axis == entry["axis"] and q.block_size[q.block_axis] == entry["block_size"]
    assert torch.equal(q.get_scale().detach().reshape(-1),
                       torch.tensor(entry["y_scale"], dtype=torch.float32).reshape(-1))
