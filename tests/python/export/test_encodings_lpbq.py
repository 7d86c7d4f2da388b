"""LPBQ entries in encodings 2.1.0 files (wrappers/encodings_lpbq.py through
torchqsim.encodings): written and read back unchanged, the scales they hold reproduce
torchqsim.functional.lpbq_quantize_dequantize, malformed entries are refused naming the entry
and the field. Oracles: the entry written by hand from AIMET's layout (docs/formats.md §6),
the functional op."""

import json

import pytest
import torch

import torchqsim.functional as F
from torchqsim.encodings import EncodingsError, convert, read_encodings, write_encodings

_ENTRY = {"dtype": "int", "bitwidth": 4, "layout": "lpbq",
          "per_block_int_scale": [[4, 16, 4, 1], [16, 1, 2, 8]],
          "per_channel_scale": [[0.025], [0.1]], "axis": 1, "block_size": 16}


def _data():
    return {"version": "2.1.0", "encodings": {"fc.weight": _ENTRY}}


def test_written_as_aimet_lays_it_out_and_read_back(tmp_path):
    path = tmp_path / "m.encodings"
    path.write_text(write_encodings(_data(), "2.1.0"))
    doc = json.loads(path.read_text())
    assert doc["encodings"] == [{"name": "fc.weight", "output_dtype": "int4",
                                 "per_block_int_scale": [[4, 16, 4, 1], [16, 1, 2, 8]],
                                 "per_channel_float_scale": [[0.025], [0.1]], "axis": 1,
                                 "block_size": 16}]
    assert read_encodings(str(path))["encodings"]["fc.weight"] == _ENTRY
    out = tmp_path / "again.encodings"
    convert(str(path), str(out), version="2.1.0")
    assert out.read_text() == path.read_text()


def test_scales_of_the_entry_reproduce_the_functional_op(tmp_path):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2, 64, generator=g)
    s = w.abs().unflatten(1, (4, 16)).amax(2) / 7
    ints, ch = F.lpbq_scales(s, 4, 8, axis=1)
    entry = dict(_ENTRY, per_block_int_scale=ints.int().tolist(), per_channel_scale=ch.tolist())
    path = tmp_path / "w.encodings"
    path.write_text(write_encodings({"version": "2.1.0", "encodings": {"w": entry}}, "2.1.0"))
    got = read_encodings(str(path))["encodings"]["w"]
    qmin, qmax = F.grid_range(got["bitwidth"])
    y = F.lpbq_quantize_dequantize(w, torch.tensor(got["per_block_int_scale"]).float(),
                                   torch.tensor(got["per_channel_scale"]), qmin, qmax,
                                   got["axis"], got["block_size"])
    assert torch.equal(y, F.lpbq_quantize_dequantize(w, ints, ch, qmin, qmax, 1, 16))


@pytest.mark.parametrize("patch,where", [
    (lambda e: e["per_block_int_scale"][1].__setitem__(2, 2.5),
     r"encodings\[0\]\.per_block_int_scale\[1\]\[2\]: expected an integer >= 1"),
    (lambda e: e["per_block_int_scale"][0].__setitem__(0, 0),
     r"encodings\[0\]\.per_block_int_scale\[0\]\[0\]: expected an integer >= 1"),
    (lambda e: e["per_channel_float_scale"][0].__setitem__(0, -1.0),
     r"encodings\[0\]\.per_channel_float_scale\[0\]\[0\]: expected a finite number > 0"),
    (lambda e: e.update(per_channel_float_scale=[[0.1, 0.2], [0.1, 0.2]]),
     r"encodings\[0\]\.per_channel_float_scale: shape \[2, 2\] does not match"),
    (lambda e: e.update(output_dtype="uint4"), r"encodings\[0\]\.output_dtype: an LPBQ entry"),
    (lambda e: e.pop("axis"), r"encodings\[0\]\.axis: missing"),
    (lambda e: e.update(block_size=0), r"encodings\[0\]\.block_size: expected an integer >= 1"),
    (lambda e: e.update(y_scale=1.0), r"encodings\[0\]\.y_scale: unknown key"),
])
def test_malformed_entries_name_the_entry_and_field(tmp_path, patch, where):
    path = tmp_path / "m.encodings"
    path.write_text(write_encodings(_data(), "2.1.0"))
    doc = json.loads(path.read_text())
    patch(doc["encodings"][0])
    path.write_text(json.dumps(doc))
    with pytest.raises(EncodingsError, match=where):
        read_encodings(str(path))


def test_writing_a_malformed_dict_entry_names_it():
    data = {"version": "2.1.0", "encodings": {"w": dict(_ENTRY, per_channel_scale=[[0.0], [1.0]])}}
    with pytest.raises(EncodingsError, match=r"encodings\['w'\]\.per_channel_float_scale\[0\]\[0\]"):
        write_encodings(data, "2.1.0")


@pytest.mark.parametrize("version", ["2.0.0", "1.0.0", "0.6.1"])
def test_other_versions_refuse_lpbq_naming_the_entry(version):
    with pytest.raises(EncodingsError, match=r"encodings\['fc\.weight'\]: unknown key "
                                             r"'per_block_int_scale'"):
        write_encodings(_data(), version)
