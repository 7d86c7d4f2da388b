"""LPBQ and blockwise integer weights in a QuantizationSimModel: calibration against a pure-torch
reference of AIMET's formula, selection by set_precision, AIMET's helpers and the config file,
export (2.1.0 / 2.0.0 encodings, blocked QDQ ONNX run in onnxruntime) and load_encodings back
bit for bit, and the errors."""

import json

import pytest
import torch
from torch import nn

from torchqsim.quantization import QuantizeDequantize
from torchqsim.quantsim import QuantizationSimModel
from torchqsim.quantsim.blockwise import (set_blockwise_quantization_for_weights,
                                          set_grouped_blockwise_quantization_for_weights)
from torchqsim.quantsim.config_file import ConfigError, load_config, preset_path


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(32, 8)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def _sim(**kw):
    torch.manual_seed(0)
    model = _Net().eval()
    kw.setdefault("quant_scheme", "min_max")
    return QuantizationSimModel(model, torch.randn(2, 64), default_param_bw=4, **kw)


def _calibrate(sim):
    g = torch.Generator().manual_seed(1)
    data = [torch.randn(16, 64, generator=g) for _ in range(2)]
    sim.compute_encodings(lambda m: [m(x) for x in data])
    return data


def _weight_q(sim, name="fc1"):
    return sim.model.get_submodule(name).param_quantizers["weight"]


def _lpbq_reference(w, lo, hi, bitwidth, decompressed, block):
    """AIMET's LPBQ in plain torch: block scales from the calibrated block ranges, the channel
    scale max/2^(dbw-bw), integer scales rounded and clamped to 1..2^(dbw-bw), then the
    symmetric blockwise fake-quant."""
    qmin, qmax = -2 ** (bitwidth - 1), 2 ** (bitwidth - 1) - 1
    n = 2.0 ** (decompressed - bitwidth)
    raw = (hi - lo) / (qmax - qmin)
    channel = raw.amax(dim=1, keepdim=True) / n
    ints = torch.clamp(torch.round(raw / channel), 1, n)
    scale = (ints * channel).repeat_interleave(block, dim=1)
    return torch.clamp(torch.round(w / scale), qmin, qmax) * scale, ints, channel


def test_lpbq_weights_match_the_pure_torch_formula():
    sim = _sim()
    sim.set_precision("fc1", param={"weight": 4}, block_size=16, decompressed_bw=8)
    _calibrate(sim)
    q, w = _weight_q(sim), sim.model.fc1.weight.detach()
    plain = QuantizeDequantize((32, 4), 4, symmetric=True)   # per-block min/max of w
    with plain.compute_encodings():
        plain(w)
    assert torch.equal(q.min, plain.min) and torch.equal(q.max, plain.max)
    expected, ints, channel = _lpbq_reference(w, plain.min.detach(), plain.max.detach(), 4, 8, 16)
    assert torch.equal(q.per_block_int_scale, ints) and torch.equal(q.per_channel_scale, channel)
    assert ints.max() == 16 and ints.min() >= 1
    with torch.no_grad():
        assert torch.equal(q(w), expected)


def test_blockwise_int_weights_match_per_block_fake_quant():
    sim = _sim()
    set_blockwise_quantization_for_weights(sim, nn.Linear, 4, True, 8)
    _calibrate(sim)
    q, w = _weight_q(sim, "fc2"), sim.model.fc2.weight.detach()
    assert q.shape == (8, 4) and q.block_size == (1, 8)
    scale = q.get_scale().detach().repeat_interleave(8, dim=1)
    with torch.no_grad():
        assert torch.equal(q(w), torch.clamp(torch.round(w / scale), -8, 7) * scale)


def test_grouped_helper_and_config_file_select_lpbq(tmp_path):
    doc = json.loads(preset_path("default").read_text())
    doc["op_type"]["Gemm"] = dict(doc["op_type"].get("Gemm", {}), params={
        "weight": {"is_quantized": True, "is_symmetric": True, "block_size": 16,
                   "decompressed_bw": 8}})
    path = tmp_path / "lpbq.json"
    path.write_text(json.dumps(doc))
    assert load_config(str(path)).op_type["Gemm"].params["weight"].decompressed_bw == 8
    from_config = _sim(config_file=str(path))
    by_helper = _sim(config_file="default")
    set_grouped_blockwise_quantization_for_weights(by_helper, nn.Linear, 4, True, 8, 16)
    for sim in (from_config, by_helper):
        assert [type(_weight_q(sim, n)).__name__ for n in ("fc1", "fc2")] == \
            ["LpbqQuantizeDequantize"] * 2
        _calibrate(sim)
    assert torch.equal(_weight_q(from_config).per_block_int_scale,
                       _weight_q(by_helper).per_block_int_scale)


@pytest.mark.parametrize("version,kw", [("2.1.0", {"decompressed_bw": 8}), ("2.0.0", {})])
def test_export_runs_in_onnxruntime_and_loads_back_bit_for_bit(tmp_path, ort_run, version, kw):
    sim = _sim()
    sim.set_precision(nn.Linear, block_size=16 if kw else 8, **kw)
    data = _calibrate(sim)
    paths = sim.export(tmp_path, "m", torch.randn(16, 64), encoding_version=version)
    with torch.no_grad():
        expected = sim.model(data[0])
    (got,) = ort_run(paths["qdq_onnx"], data[0])
    assert torch.equal(got, expected)
    entry = next(e for e in json.loads(open(paths["encodings"]).read())["encodings"]
                 if e["name"] == "fc1.weight")
    assert ("per_block_int_scale" in entry) == bool(kw) and entry["block_size"] == \
        (16 if kw else 8)
    for source in (paths["encodings"], sim.quantizer_encodings_dict()):
        fresh = _sim()     # per-channel weights: the file re-creates the blockwise quantizers
        fresh.load_encodings(source)
        for name in ("fc1", "fc2"):
            a, b = _weight_q(sim, name), _weight_q(fresh, name)
            assert type(a) is type(b) and torch.equal(a.get_scale(), b.get_scale())
        with torch.no_grad():
            assert torch.equal(fresh.model(data[0]), expected)


def test_lpbq_needs_2_1_0_to_export(tmp_path):
    sim = _sim()
    sim.set_precision("fc1", block_size=16, decompressed_bw=8)
    _calibrate(sim)
    with pytest.raises(Exception, match="fc1.weight"):
        sim.export(tmp_path, "m", torch.randn(2, 64), encoding_version="1.0.0")


@pytest.mark.parametrize("kw,match", [
    ({"block_size": 5}, r"module 'fc1'.*block_size 5 does not divide the 64 input channels"),
    ({"block_size": 0}, r"module 'fc1'.*block_size must be a positive integer"),
    ({"block_size": 16, "decompressed_bw": 4}, r"decompressed_bw=4: must be an integer above"),
    ({"block_size": 16, "decompressed_bw": 17}, r"decompressed_bw=17"),
    ({"decompressed_bw": 8}, r"module 'fc1': decompressed_bw \(LPBQ\) needs block_size"),
    ({"block_size": 16, "decompressed_bw": 8, "symmetric": False}, r"LPBQ needs a symmetric"),
])
def test_bad_block_settings_name_the_module(kw, match):
    with pytest.raises(ValueError, match=match):
        _sim().set_precision("fc1", **kw)


def test_block_settings_on_a_module_without_weights():
    with pytest.raises(ValueError, match="module 'act' has no weight parameter"):
        _sim().set_precision("act", block_size=16, decompressed_bw=8)
    with pytest.raises(ValueError, match="block_grouping=4"):
        set_grouped_blockwise_quantization_for_weights(_sim(), "fc1", 4, True, 8, 16, 4)


@pytest.mark.parametrize("weight,match", [
    ({"block_sise": 16}, r"unknown key 'block_sise' at \$\.op_type\.Gemm\.params\.weight"),
    ({"block_size": 0}, r"op_type\.Gemm\.params\.weight\.block_size"),
    ({"block_size": 16, "decompressed_bw": 1}, r"params\.weight\.decompressed_bw"),
    ({"decompressed_bw": 8}, r"needs block_size.* at \$\.op_type\.Gemm\.params\.weight "),
])
def test_config_errors_name_the_json_path(tmp_path, weight, match):
    doc = json.loads(preset_path("default").read_text())
    doc["op_type"]["Gemm"] = {"params": {"weight": weight}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=match):
        load_config(str(path))


def test_config_block_size_not_dividing_names_the_module(tmp_path):
    doc = json.loads(preset_path("default").read_text())
    doc["params"]["weight"] = {"block_size": 24}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="module 'fc1'.*block_size 24 does not divide"):
        _sim(config_file=str(path))
