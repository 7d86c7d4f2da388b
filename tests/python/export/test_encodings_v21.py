"""Encodings 2.1.0 (wrappers/export/encodings_v21.py): float and block-format entries.

Oracles: block scales computed by hand from OCP MX v1.0 §6.3 and the NVFP4 rule
(docs/formats.md §2); the simulation itself (the written scales, applied by the minifloat op with
a blocked scale, give the quantizer's output bit for bit); the round trip (write, read, same
values; writing what was read gives the same bytes); the schema of every entry.
"""

import json

import pytest
import torch

import torchqsim.functional as F
from asserts import assert_same
from test_float_export_onnx import _conv_sim as _sim
from torchqsim.encodings import EncodingsError, read_encodings
from torchqsim.export import export_sim
from torchqsim.export.encodings_v21 import block_scales, float_entry, read_v21, write_v21
from torchqsim.quantization import BlockFloatQuantizeDequantize, FloatQuantizeDequantize

_ELEMENT_DTYPES = {"mxfp8_e4m3": torch.float8_e4m3fn, "mxfp8_e5m2": torch.float8_e5m2,
                   "mxfp4": torch.float4_e2m1fn_x2}


def _row(*block_amaxes, block=32):
    """One row: block i is [amax_i, amax_i / 4, 0, ...] (its largest magnitude amax_i)."""
    blocks = [torch.tensor([a, -a / 4] + [0.0] * (block - 2)) for a in block_amaxes]
    return torch.cat(blocks)[None]


@pytest.mark.parametrize("fmt,expected", [
    # 2^max(floor(log2 A) - emax, -127); A = 5, 4, 3.99, 0: floor(log2 A) = 2, 2, 1, (zero block)
    ("mxfp4", [1.0, 1.0, 0.5, 2.0 ** -127]),          # emax 2
    ("mxfp8_e4m3", [2.0 ** -6, 2.0 ** -6, 2.0 ** -7, 2.0 ** -127]),   # emax 8
    ("mxfp8_e5m2", [2.0 ** -13, 2.0 ** -13, 2.0 ** -14, 2.0 ** -127]),  # emax 15
    ("mxint8", [4 / 64, 4 / 64, 2 / 64, 2.0 ** -133]),  # emax 0, element step S / 64
])
def test_mx_block_scales_known_answers(fmt, expected):
    scales, d = block_scales(BlockFloatQuantizeDequantize(fmt), _row(5.0, 4.0, 3.99, 0.0))
    assert d is None
    assert scales.tolist() == [expected]


def test_mx_short_last_block_uses_its_own_elements():
    w = torch.cat([_row(5.0), torch.tensor([[0.3] * 8])], 1)  # 40 = 32 + a block of 8
    scales, _ = block_scales(BlockFloatQuantizeDequantize("mxfp4"), w)
    assert scales.tolist() == [[1.0, 2.0 ** -4]]  # floor(log2 0.3) = -2; -2 - 2 = -4


def test_nvfp4_block_scales_known_answers():
    # tensor amax 2688 -> d = 2688 / (448 * 6) = 1; x = E4M3(A / 6 / d): 448, E4M3(3.3) = 3.25
    # (step 0.25 in [2, 4)), E4M3(0.1) = 0.1015625 (13 * 2^-7), and 0 for a zero block
    w = _row(2688.0, 19.8, 0.6, 0.0, block=16)
    entry = float_entry(BlockFloatQuantizeDequantize("nvfp4"), w)
    assert entry == {"output_dtype": "float4e2m1", "axis": 1, "block_size": 16,
                     "y_scale": {"x": [[448.0, 3.25, 0.1015625, 0.0]], "x_scale": 1.0,
                                 "input_dtype": "float8e4m3fn"}}


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp4", "nvfp4"])
def test_written_scales_reproduce_the_simulation(fmt):
    torch.manual_seed(1)
    w = torch.randn(6, 64, 3, 3) * torch.logspace(-3, 3, 6)[:, None, None, None]
    q = BlockFloatQuantizeDequantize(fmt, axis=1)
    entry = float_entry(q, w)
    y = entry["y_scale"]
    scale = torch.tensor(y) if fmt != "nvfp4" else torch.tensor(y["x"]) * y["x_scale"]
    dtype = _ELEMENT_DTYPES.get(fmt, torch.float4_e2m1fn_x2)
    got = F.float_quantize_dequantize(w, dtype, scale=scale.clamp(min=2.0 ** -149),
                                      axis=entry["axis"], block_size=entry["block_size"])
    zero = (scale == 0).repeat_interleave(entry["block_size"], entry["axis"])
    assert (fmt == "nvfp4") == bool(zero.any())  # NVFP4: the 1e-3 rows underflow E4M3
    assert_same(torch.where(zero, w * 0, got), q(w), fmt)  # a zero block scale zeroes the block


def test_minifloat_entries_and_formats_2_1_0_cannot_name():
    assert float_entry(FloatQuantizeDequantize("fp8_e5m2"), None) == \
        {"output_dtype": "float8e5m2", "y_scale": 1.0}
    assert float_entry(FloatQuantizeDequantize("fp4_e2m1"), torch.ones(3))["output_dtype"] == \
        "float4e2m1"
    for q in (FloatQuantizeDequantize(torch.float16), FloatQuantizeDequantize("fp6_e3m2"),
              FloatQuantizeDequantize("fp8_e4m3fnuz"), BlockFloatQuantizeDequantize("mxfp6_e2m3")):
        assert float_entry(q, torch.ones(2, 32)) is None, q
    # block formats on activations: the scales depend on each input
    assert float_entry(BlockFloatQuantizeDequantize("mxfp4"), None) is None


def test_nan_weight_fails_naming_the_reason():
    w = _row(5.0)
    w[0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        float_entry(BlockFloatQuantizeDequantize("mxfp4"), w)


# ---- the file ------------------------------------------------------------------------------

def _check_schema(doc):
    assert list(doc)[:2] == ["version", "producer"] and doc["version"] == "2.1.0"
    for e in doc["encodings"]:
        assert set(e) <= {"name", "output_dtype", "y_scale", "y_zero_point", "axis",
                          "block_size"}, e
        assert e["output_dtype"] in ("int8", "uint8", "int16", "int32", "float8e4m3fn",
                                     "float8e5m2", "float4e2m1"), e
        assert "block_size" not in e or "axis" in e, e
        if e["output_dtype"].startswith("float") and "block_size" not in e:
            assert e["y_scale"] == 1.0, e  # minifloats: no scale


@pytest.mark.parametrize("act,param,dtypes", [
    ("fp8_e4m3", "nvfp4", {"float8e4m3fn", "float4e2m1"}),
    ("int8", "mxfp4", {"uint8", "float4e2m1"}),
    ("fp8_e5m2", "mxfp8_e5m2", {"float8e5m2"}),
])
def test_sim_export_2_1_0_round_trip(tmp_path, act, param, dtypes):
    sim, x = _sim(act, param)
    paths = export_sim(sim, str(tmp_path), "m", x, "2.1.0")
    text = open(paths["encodings"]).read()
    doc = json.loads(text)
    _check_schema(doc)
    assert {e["output_dtype"] for e in doc["encodings"]} >= dtypes
    data, floats = read_v21(text)
    written = {e["name"]: {k: v for k, v in e.items() if k != "name"} for e in doc["encodings"]}
    assert floats == {n: e for n, e in written.items() if e["output_dtype"].startswith("float")}
    # the weights (Conv, Conv, Linear), with the block scales the sim uses
    for name in ("0.weight", "2.weight", "4.weight"):
        conv = sim.model.get_submodule(name[0])
        assert floats[name] == float_entry(conv.param_quantizers["weight"], conv.weight)
    assert write_v21(data, floats) == text
    # the integer entries are those of the 2.0.0 export
    paths2 = export_sim(sim, str(tmp_path), "m2", x, "2.0.0")
    assert data["encodings"] == read_encodings(paths2["encodings"])["encodings"]


def test_mxint8_entries_are_2_0_0_int8_blocks(tmp_path):
    sim, x = _sim("int8", "mxint8")
    paths = export_sim(sim, str(tmp_path), "m", x, "2.1.0")
    data, floats = read_v21(open(paths["encodings"]).read())
    assert floats == {}
    conv = sim.model.get_submodule("2")
    entry = data["encodings"]["2.weight"]
    scales, _ = block_scales(conv.param_quantizers["weight"], conv.weight)
    assert entry["bitwidth"] == 8 and entry["axis"] == 1 and entry["block_size"] == 32
    assert entry["scale"] == scales.reshape(-1).tolist()
    assert set(entry["offset"]) == {-128}


@pytest.mark.parametrize("patch,where", [
    (lambda d: d.update(version="2.2.0"), "version"),
    (lambda d: d["encodings"][0].update(y_scale=[[1.0, -2.0]]),
     r"encodings\[0\].y_scale\[0\]\[1\]"),
    (lambda d: d["encodings"][0]["y_scale"].update(input_dtype="float8e5m2"),
     r"encodings\[0\].y_scale.input_dtype"),
    (lambda d: d["encodings"][0]["y_scale"].update(x_scale=0), r"encodings\[0\].y_scale.x_scale"),
    (lambda d: d["encodings"][0].update(scale=1), r"encodings\[0\].scale: unknown key"),
    (lambda d: d["encodings"][0].update(axis="1"), r"encodings\[0\].axis"),
])
def test_reader_errors_name_the_json_path(patch, where):
    entry = float_entry(BlockFloatQuantizeDequantize("nvfp4"), _row(3.0, block=16))
    doc = json.loads(write_v21({}, {"w": entry}))
    patch(doc)
    with pytest.raises(EncodingsError, match=where):
        read_v21(json.dumps(doc))
