"""Encodings 2.1.0 through :mod:`torchqsim.encodings` (read_encodings, write_encodings, convert,
summary, the command lines): wrappers/encodings_v21.py.

Oracles: the file ``sim.export(..., "2.1.0")`` wrote (reading then writing gives its bytes), the
block scales the quantizers use (``block_scales``), the 2.0.0 export of the same sim (what a
2.1.0 file converted to 2.0.0 must equal), and hand-broken files whose errors must name the file
and the JSON path.
"""

import json

import pytest
import torch
from torch import nn

from torchqsim.encodings import (EncodingsError, SUPPORTED_VERSIONS, convert, main,
                                 read_encodings, summary, write_encodings)
from torchqsim.export import export_sim
from torchqsim.export.encodings_v21 import block_scales
from torchqsim.export.cli import main as export_main


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(sim, 2.1.0 path, 2.0.0 path): Conv weights MXFP4 with fp8 activations, the Linear
    weight NVFP4 (calibrated), its activations int8."""
    from torchqsim.quantsim import QuantizationSimModel
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 32, 1), nn.Flatten(),
                          nn.Linear(32 * 4 * 4, 10))
    x = torch.randn(2, 3, 6, 6) * 3
    sim = QuantizationSimModel(model, x, quant_scheme="tf")
    sim.set_precision(nn.Conv2d, activation="fp8_e4m3", param="mxfp4")
    sim.set_precision(nn.Linear, param="nvfp4")
    sim.compute_encodings(lambda m: m(x))
    d = tmp_path_factory.mktemp("v21")
    v21 = export_sim(sim, str(d), "m", x, "2.1.0")["encodings"]
    v20 = export_sim(sim, str(d), "m20", x, "2.0.0")["encodings"]
    return sim, v21, v20


def test_read_gives_formats_and_the_scales_the_sim_uses(exported):
    sim, v21, _ = exported
    assert "2.1.0" in SUPPORTED_VERSIONS
    data = read_encodings(v21)
    assert data["version"] == "2.1.0"
    for name, fmt in (("0.weight", "mxfp4"), ("2.weight", "mxfp4"), ("4.weight", "nvfp4")):
        module = sim.model.get_submodule(name[0])
        scales, d = block_scales(module.param_quantizers["weight"], module.weight)
        e = data["encodings"][name]
        assert (e["format"], e["bitwidth"], e["axis"]) == (fmt, 4, 1)
        assert e["block_size"] == (16 if fmt == "nvfp4" else 32)
        assert e["scale"] == scales.tolist() and e["tensor_scale"] == d
    acts = [e for e in data["encodings"].values() if e.get("format") == "fp8_e4m3"]
    assert acts and all(e["scale"] == 1.0 and e["block_size"] is None for e in acts)
    assert any(e["dtype"] == "int" for e in data["encodings"].values())  # the Linear's output


def test_write_and_convert_give_the_file_back(exported, tmp_path):
    _, v21, _ = exported
    text = open(v21).read()
    assert write_encodings(read_encodings(v21)) == text
    assert write_encodings(read_encodings(text.encode()), "2.1.0") == text
    convert(v21, tmp_path / "same.encodings", "2.1.0")
    assert (tmp_path / "same.encodings").read_text() == text


def test_convert_to_older_versions(exported, tmp_path):
    _, v21, v20 = exported
    convert(v21, tmp_path / "a.encodings", "2.0.0")  # float entries left out, as AIMET does
    assert read_encodings(tmp_path / "a.encodings")["encodings"] == \
        read_encodings(v20)["encodings"]
    data = read_encodings(v21)
    convert(v21, tmp_path / "b.encodings", "1.0.0", param_names=["0.weight", "4.weight"])
    old = read_encodings(tmp_path / "b.encodings")
    assert old["param_encodings"]["0.weight"] == {"dtype": "float", "bitwidth": 4}
    assert set(old["activation_encodings"]) == set(data["encodings"]) - {"0.weight", "4.weight"}
    # and back: 1.0.0 names no format, so its float entries are left out of 2.1.0 (as fp16)
    convert(tmp_path / "b.encodings", tmp_path / "c.encodings", "2.1.0")
    back = read_encodings(tmp_path / "c.encodings")["encodings"]
    assert {n for n, e in back.items()} == {n for n, e in data["encodings"].items()
                                            if e["dtype"] == "int"}


def test_command_lines_take_2_1_0(exported, tmp_path, capsys):
    _, v21, _ = exported
    out = tmp_path / "cli.encodings"
    assert main(["convert", v21, str(out), "--version", "2.1.0"]) == 0
    assert out.read_text() == open(v21).read()
    assert export_main(["convert", v21, str(tmp_path / "d.encodings"), "--version", "2.0.0"]) == 0
    assert main(["summary", v21]) == 0
    text = capsys.readouterr().out
    assert "version 2.1.0" in text
    line = next(r for r in text.splitlines() if "4.weight" in r)
    assert "nvfp4" in line and "per_block[" in line and "block 16]" in line
    assert "fp8_e4m3" in summary(v21)


def _broken(v21, tmp_path, patch):
    """A copy of the 2.1.0 file with patch(entries, name -> index) applied."""
    doc = json.loads(open(v21).read())
    index = {e["name"]: i for i, e in enumerate(doc["encodings"])}
    patch(doc["encodings"], index)
    path = tmp_path / "bad.encodings"
    path.write_text(json.dumps(doc))
    return path, index


@pytest.mark.parametrize("name,patch,why", [
    ("0.weight", lambda e: e.update(block_size=16), "block_size: mxfp4 blocks hold 32"),
    ("0.weight", lambda e: e.pop("axis"), "axis: a block entry needs"),
    ("4.weight", lambda e: e["y_scale"].update(x_scale=-1.0), "y_scale.x_scale: expected"),
    ("2.weight", lambda e: e["y_scale"][0].__setitem__(0, "1"), r"y_scale\[0\]\[0\]: expected"),
    ("0.weight", lambda e: e.update(extra=1), "extra: unknown key"),
    ("0.weight", lambda e: e.pop("name"), "name: expected a string"),
])
def test_malformed_entries_name_the_file_and_json_path(exported, tmp_path, name, patch, why):
    _, v21, _ = exported
    path, index = _broken(v21, tmp_path, lambda es, i: patch(es[i[name]]))
    with pytest.raises(EncodingsError, match=why) as e:
        read_encodings(path)
    assert str(e.value).startswith(f"{path}: encodings[{index[name]}].")


def test_minifloat_entry_with_a_scale_is_refused(exported, tmp_path):
    _, v21, _ = exported

    def patch(es, i):
        fp8 = next(e for e in es if e["output_dtype"] == "float8e4m3fn")
        fp8["y_scale"] = 0.5
    path, _ = _broken(v21, tmp_path, patch)
    with pytest.raises(EncodingsError, match=r"y_scale: a float8e4m3fn entry without blocks"):
        read_encodings(path)


def test_writing_a_format_2_1_0_cannot_name_fails_naming_the_entry():
    data = {"encodings": {"w": {"dtype": "float", "bitwidth": 6, "format": "mxfp6_e2m3",
                                "scale": [[1.0]], "axis": 1, "block_size": 32}}}
    with pytest.raises(EncodingsError, match=r"encodings\['w'\].format: 2.1.0 names"):
        write_encodings(data, "2.1.0")
    # the older versions keep the dtype and bitwidth only
    assert read_encodings(write_encodings(
        {"param_encodings": data["encodings"]}, "1.0.0"))["param_encodings"]["w"] == \
        {"dtype": "float", "bitwidth": 6}
