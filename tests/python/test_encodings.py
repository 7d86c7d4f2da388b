"""torchqsim.encodings: AIMET encodings files through the C reader and writer.

Oracles: Python's json module reading the same files, with AIMET's offset convention applied here
(docs/aimet.md §2.1 and 6: offset = -zero_point on the unsigned grid; a 2.0.0 intN zero point
z is offset -z - 2^(N-1)); float32 rounding by numpy; the hand-written example files in
tests/data/encodings/; for error locations, the offset of the offending text turned into
line:column here.
"""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torchqsim import encodings as enc
from torchqsim.encodings import EncodingsError

DATA = Path(__file__).resolve().parents[1] / "data" / "encodings"
FILES = {"0.6.1": DATA / "v0_6_1.encodings", "1.0.0": DATA / "v1_0_0.encodings",
         "2.0.0": DATA / "v2_0_0.encodings"}
VERSIONS = list(FILES)


def f32(values):
    """The float32 values of a list of numbers, as Python floats."""
    return [float(np.float32(v)) for v in values]


# --- oracle: the files read with json, AIMET's conventions applied here -------------------------

def _oracle(version, raw):
    """{name: (scale, offset, bitwidth, is_symmetric)} of the int entries of a file's JSON."""
    out = {}
    if version == "0.6.1":
        for section in ("activation_encodings", "param_encodings"):
            for name, channels in raw[section].items():
                if channels[0]["dtype"] == "int":
                    out[name] = (f32(c["scale"] for c in channels), [c["offset"] for c in channels],
                                 channels[0]["bitwidth"], channels[0]["is_symmetric"] == "True")
    elif version == "1.0.0":
        for section in ("activation_encodings", "param_encodings"):
            for e in raw[section]:
                if e["dtype"] == "INT":
                    out[e["name"]] = (f32(e["scale"]), e["offset"], e["bw"], e["is_sym"])
    else:
        for e in raw["encodings"]:
            signed = not e["output_dtype"].startswith("u")
            bits = int(e["output_dtype"].lstrip("uint"))
            scale = np.ravel(e["y_scale"]).tolist()
            zp = np.ravel(e.get("y_zero_point", [0] * len(scale))).tolist()
            shift = 2 ** (bits - 1) if signed else 0
            out[e["name"]] = (f32(scale), [-z - shift for z in zp], bits,
                              signed and all(z == 0 for z in zp))
    return out


def _int_entries(data):
    return {name: (e["scale"], e["offset"], e["bitwidth"], e["is_symmetric"])
            for section in ("activation_encodings", "param_encodings", "encodings")
            for name, e in data[section].items() if e["dtype"] == "int"}


@pytest.mark.parametrize("version", VERSIONS)
def test_read_matches_json_oracle(version):
    data = enc.read_encodings(FILES[version])
    raw = json.loads(FILES[version].read_text())
    assert data["version"] == version
    assert _int_entries(data) == _oracle(version, raw)


@pytest.mark.parametrize("version", VERSIONS)
def test_each_version_rewrites_byte_for_byte(version, tmp_path):
    text = FILES[version].read_text()
    data = enc.read_encodings(text)
    assert enc.write_encodings(data, version) == text
    enc.save_encodings(data, tmp_path / "out.encodings", version)
    assert (tmp_path / "out.encodings").read_text() == text
    assert os.listdir(tmp_path) == ["out.encodings"]  # no temporary left behind


def test_read_sources_path_text_bytes():
    path = FILES["1.0.0"]
    want = enc.read_encodings(path)
    assert enc.read_encodings(str(path)) == want
    assert enc.read_encodings(path.read_text()) == want
    assert enc.read_encodings(path.read_bytes()) == want
    assert enc.read_encodings("\n  " + path.read_text()) == want


# --- conversion ---------------------------------------------------------------------------------

def _model():
    """A dict every version can hold: roles, axes, no blocks, no float entries."""
    return {
        "activation_encodings": {
            "input": {"bitwidth": 8, "is_symmetric": False, "scale": [0.0185], "offset": [-114]},
            "act16": {"bitwidth": 16, "is_symmetric": False, "scale": [1.5e-05], "offset": [-40000]},
        },
        "param_encodings": {
            "conv.weight": {"bitwidth": 4, "is_symmetric": True, "scale": [0.1, 0.2, 0.3],
                            "offset": [-8, -8, -8], "axis": 0},
            "deconv.weight": {"bitwidth": 8, "is_symmetric": True, "scale": [1 / 3, 2 / 3],
                              "offset": [-128, -128], "axis": 1},
        },
    }


@pytest.mark.parametrize("source", VERSIONS)
@pytest.mark.parametrize("target", VERSIONS)
def test_conversion_preserves_scale_offset_bitwidth(source, target, tmp_path):
    src = tmp_path / f"in_{source}.encodings"
    enc.save_encodings(_model(), src, source)
    out = tmp_path / f"out_{target}.encodings"
    enc.convert(src, out, target, default_axis=0, param_names=["conv.weight", "deconv.weight"])
    got = _int_entries(enc.read_encodings(out))
    want = {name: (f32(e["scale"]), e["offset"], e["bitwidth"], e["is_symmetric"])
            for section in ("activation_encodings", "param_encodings")
            for name, e in _model()[section].items()}
    assert got == want
    # The converted file says the same thing to json (the independent reader).
    assert _oracle(target, json.loads(out.read_text())) == want


def test_convert_v2_zero_points_follow_aimet_offsets(tmp_path):
    enc.save_encodings(_model(), tmp_path / "m.encodings", "2.0.0")
    raw = {e["name"]: e for e in json.loads((tmp_path / "m.encodings").read_text())["encodings"]}
    # Asymmetric 8-bit: uint8 with zero point -offset = 114.
    assert raw["input"]["output_dtype"] == "uint8" and raw["input"]["y_zero_point"] == 114
    # Symmetric: signed, zero point -offset - 2^(bw-1) = 0, so omitted (as AIMET does).
    assert raw["conv.weight"]["output_dtype"] == "int4" and "y_zero_point" not in raw["conv.weight"]
    assert raw["conv.weight"]["axis"] == 0 and raw["deconv.weight"]["axis"] == 1
    assert raw["act16"]["y_zero_point"] == 40000


def test_convert_needs_roles_from_2_0_0_and_axes_for_2_0_0(tmp_path):
    with pytest.raises(EncodingsError, match=r"5 entries have no role .* pass param_names"):
        enc.convert(FILES["2.0.0"], tmp_path / "x", "1.0.0")
    with pytest.raises(EncodingsError, match=r"per-channel entries \('conv1.weight', \.\.\.\) have "
                                             r"no channel axis \(1.0.0 does not record it\)"):
        enc.convert(FILES["1.0.0"], tmp_path / "x", "2.0.0")
    # 1.0.0 flattens blocks: 2.0.0 cannot be written even with an axis for the channels.
    with pytest.raises(EncodingsError, match=r"cannot write param 'fc.weight' as 2.0.0: 2.0.0 needs "
                                             r"the block axis and the scale tensor's shape"):
        enc.convert(FILES["1.0.0"], tmp_path / "x", "2.0.0", default_axis=0)
    assert not (tmp_path / "x").exists()
    data = enc.convert(FILES["2.0.0"], tmp_path / "y", "1.0.0",
                       param_names={"conv1.weight", "deconv.weight", "fc.weight", "conv1.bias"})
    assert list(data["activation_encodings"]) == ["input"]
    back = enc.read_encodings(tmp_path / "y")
    assert list(back["param_encodings"]) == ["conv1.weight", "deconv.weight", "fc.weight", "conv1.bias"]
    assert back["param_encodings"]["deconv.weight"]["offset"] == [-128, -125]


def test_v2_drops_float_entries_like_aimet():
    data = enc.read_encodings(FILES["1.0.0"])
    assert data["activation_encodings"]["fc_out"] == {"dtype": "float", "bitwidth": 16}
    del data["param_encodings"]["fc.weight"]  # blocks without a shape cannot go to 2.0.0
    data["param_encodings"]["conv1.weight"]["axis"] = 0
    back = enc.read_encodings(enc.write_encodings(data, "2.0.0"))
    assert "fc_out" not in back["encodings"] and "input" in back["encodings"]


# --- the C reader reads what Python wrote ------------------------------------------------------

def _aimet_files(rng):
    """The same encodings in each version's layout as plain Python data (as AIMET builds them),
    with random float32 scales; json.dump writes them the way AIMET does."""
    scales = rng.uniform(1e-6, 10.0, size=5).astype(np.float32).tolist()  # float32 values
    offsets = [-int(v) for v in rng.integers(0, 256, size=5)]
    v0 = {"version": "0.6.1", "excluded_layers": [],
          "activation_encodings": {"x": [{"bitwidth": 8, "dtype": "int", "is_symmetric": "False",
                                          "min": scales[0] * offsets[0],
                                          "max": scales[0] * (offsets[0] + 255),
                                          "offset": offsets[0], "scale": scales[0]}]},
          "param_encodings": {"w": [{"bitwidth": 8, "dtype": "int", "is_symmetric": "True",
                                     "min": -128 * s, "max": 127 * s, "offset": -128, "scale": s}
                                    for s in scales[1:]]}}
    v1 = {"version": "1.0.0",
          "activation_encodings": [{"name": "x", "dtype": "INT", "enc_type": "PER_TENSOR", "bw": 8,
                                    "is_sym": False, "scale": scales[:1], "offset": offsets[:1]}],
          "param_encodings": [{"name": "w", "dtype": "INT", "enc_type": "PER_CHANNEL", "bw": 8,
                               "is_sym": True, "scale": scales[1:], "offset": [-128] * 4}]}
    v2 = {"version": "2.0.0",
          "encodings": [{"name": "x", "output_dtype": "uint8", "y_scale": scales[0],
                         "y_zero_point": -offsets[0]},
                        {"name": "w", "output_dtype": "int8", "y_scale": scales[1:], "axis": 0}]}
    return {"0.6.1": v0, "1.0.0": v1, "2.0.0": v2}, scales, offsets


def test_c_reader_reads_what_python_json_wrote(tmp_path):
    files, scales, offsets = _aimet_files(np.random.default_rng(1234))
    for version, data in files.items():
        path = tmp_path / f"{version}.encodings"
        with open(path, "w") as f:
            json.dump(data, f, sort_keys=True, indent=4)  # AIMET's layout
        got = _int_entries(enc.read_encodings(path))
        assert got["x"] == ([scales[0]], [offsets[0]], 8, False), version
        assert got["w"] == (scales[1:], [-128] * 4, 8, True), version


# Random int entries (hypothesis, derandomized): every version reads back what it wrote.
_finite_f32 = st.floats(min_value=float(np.finfo(np.float32).tiny),
                        max_value=float(np.finfo(np.float32).max), width=32)


@st.composite
def _entries(draw):
    n = draw(st.integers(1, 6))
    bits = draw(st.integers(2, 16))
    scale = draw(st.lists(_finite_f32, min_size=n, max_size=n))
    offset = draw(st.lists(st.integers(-(2 ** bits - 1), 0), min_size=n, max_size=n))
    sym = draw(st.booleans())
    layout = "per_channel" if n > 1 else "per_tensor"
    return {"bitwidth": bits, "is_symmetric": sym, "scale": scale, "offset": offset,
            "layout": layout, "axis": 0 if n > 1 else None}


def _derived_bound_overflows(e):
    """Whether 0.6.1's min = scale * offset or max = scale * (offset + 2^bw - 1) rounds to
    infinity in float32 (from 2^128 - 2^103 up)."""
    limit = 2.0 ** 128 - 2.0 ** 103
    return any(abs(float(np.float32(s)) * k) >= limit for s, o in zip(e["scale"], e["offset"])
               for k in (o, o + 2 ** e["bitwidth"] - 1))


@settings(derandomize=True, max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=12),
                      _entries(), min_size=1, max_size=4))
def test_random_entries_round_trip_in_every_version(params):
    data = {"param_encodings": params}
    for version in VERSIONS:
        if version == "0.6.1" and any(_derived_bound_overflows(e) for e in params.values()):
            with pytest.raises(EncodingsError, match="derived from scale and offset must fit in "
                                                     "float32"):
                enc.write_encodings(data, version)
            continue
        back = _int_entries(enc.read_encodings(enc.write_encodings(data, version)))
        want = {name: (f32(e["scale"]), e["offset"], e["bitwidth"],
                       # 2.0.0 has no flag: symmetric reads as signed with zero points 0, and
                       # a signed grid is what 0.6.1/1.0.0 imply for symmetric
                       e["is_symmetric"] if version != "2.0.0" else
                       e["is_symmetric"] and all(o == -2 ** (e["bitwidth"] - 1) for o in e["offset"]))
                for name, e in params.items()}
        assert back == want, version


# --- errors -------------------------------------------------------------------------------------

def _where(text, needle):
    at = text.index(needle)
    return text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1


def _v1(params):
    return ('{\n"version": "1.0.0", "activation_encodings": [],\n"param_encodings": ['
            + params + "]\n}\n")


BAD_FILES = [
    pytest.param('{"version": "0.5.0", "encodings": []}',
                 "unsupported encodings version '0.5.0' at $.version (line {L}, column {C}); "
                 "supported: 0.6.1, 1.0.0, 2.0.0", "$.version", '"0.5.0"', id="wrong-version"),
    pytest.param(_v1('{"name": "w", "dtype": "INT", "enc_type": "PER_TENSOR", "bw": 8, '
                     '"is_sym": true, "offset": [-128]}'),
                 "missing required key 'scale' at $.param_encodings[0] (line {L}, column {C})",
                 "$.param_encodings[0]", '{"name"', id="missing-field"),
    pytest.param(_v1('{"name": "w", "dtype": "INT", "enc_type": "PER_CHANNEL", "bw": 8, '
                     '"is_sym": true, "scale": [0.5, 0.25], "offset": [-128]}'),
                 "offset has 1 values, scale has 2 at $.param_encodings[0].offset (line {L}, "
                 "column {C})", "$.param_encodings[0].offset", "[-128]", id="wrong-length"),
    pytest.param(_v1('{"name": "w", "dtype": "INT", "enc_type": "PER_TENSOR", "bw": "8", '
                     '"is_sym": true, "scale": [1], "offset": [-128]}'),
                 'wrong type at $.param_encodings[0].bw (line {L}, column {C}): expected an '
                 'integer, got the string "8"', "$.param_encodings[0].bw", '"8"', id="wrong-type"),
    pytest.param(_v1('{"name": "w", "dtype": "INT", "enc_type": "PER_TENSOR", "bw": 8, '
                     '"is_sym": true, "scale": [0], "offset": [-128]}'),
                 "invalid scale at $.param_encodings[0].scale[0] (line {L}, column {C}): must be "
                 "> 0, got 0", "$.param_encodings[0].scale[0]", "0]", id="zero-scale"),
    pytest.param('{"version": "2.0.0", "encodings": [{"name": "x", "output_dtype": "uint8", '
                 '"y_scale": 1, "y_zero_point": -3}]}',
                 "invalid y_zero_point at $.encodings[0].y_zero_point (line {L}, column {C}): "
                 "must be an integer in [0, 255] for uint8, got -3", "$.encodings[0].y_zero_point",
                 "-3", id="zero-point-off-grid"),
]


@pytest.mark.parametrize("text,message,path,needle", BAD_FILES)
def test_bad_files_give_documented_errors(text, message, path, needle):
    line, column = _where(text, needle)
    with pytest.raises(EncodingsError) as info:
        enc.read_encodings(text)
    e = info.value
    assert isinstance(e, ValueError)
    assert str(e) == message.format(L=line, C=column)
    assert (e.path, e.line, e.column) == (path, line, column)


def test_nan_from_python_json_is_a_syntax_error(tmp_path):
    # json.dump writes NaN as the bare token NaN, which JSON (and so the reader) rejects.
    path = tmp_path / "nan.encodings"
    path.write_text(json.dumps({"version": "2.0.0", "encodings": [
        {"name": "x", "output_dtype": "uint8", "y_scale": math.nan}]}))
    text = path.read_text()
    line, column = _where(text, "NaN")
    with pytest.raises(EncodingsError) as info:
        enc.read_encodings(path)
    assert str(info.value) == (f"{path}: invalid JSON at line {line}, column {column}: expected a "
                               "value, found 'N'")
    assert (info.value.path, info.value.line, info.value.column) == (None, line, column)


def test_writer_refuses_nan_and_inf_naming_the_entry(tmp_path):
    data = _model()
    data["param_encodings"]["conv.weight"]["scale"][2] = math.nan
    with pytest.raises(EncodingsError, match=r"^cannot write param 'conv.weight' as 1.0.0: "
                                             r"scale\[2\] must be a finite number, got nan$"):
        enc.write_encodings(data, "1.0.0")
    target = tmp_path / "kept.encodings"
    target.write_text("old")
    with pytest.raises(EncodingsError):
        enc.save_encodings(data, target, "1.0.0")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["kept.encodings"]
    data = _model()
    data["activation_encodings"]["input"]["min"] = [-math.inf]
    data["activation_encodings"]["input"]["max"] = [1.0]
    with pytest.raises(EncodingsError, match=r"min\[0\] must be a finite number, got -inf"):
        enc.write_encodings(data, "0.6.1")


def test_save_into_missing_directory_leaves_nothing(tmp_path):
    with pytest.raises(OSError, match="No such file or directory"):
        enc.save_encodings(_model(), tmp_path / "missing" / "m.encodings", "1.0.0")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("change,path,message", [
    (lambda d: d["param_encodings"]["conv.weight"].update(scale="0.1"),
     "param_encodings['conv.weight'].scale", "expected a list, got <class 'str'>"),
    (lambda d: d["param_encodings"]["conv.weight"].update(bitwdith=8),
     "param_encodings['conv.weight']", "unknown key 'bitwdith'"),
    (lambda d: d["param_encodings"]["conv.weight"].update(offset=[-8, -8.5, -8]),
     "param_encodings['conv.weight'].offset[1]", "expected an integer, got -8.5"),
    (lambda d: d["activation_encodings"]["input"].update(is_symmetric="False"),
     "activation_encodings['input'].is_symmetric", "expected True or False, got 'False'"),
    (lambda d: d["activation_encodings"]["input"].update(scale=[1e39]),
     "activation_encodings['input'].scale[0]", "does not fit in float32: 1e+39"),
    (lambda d: d["activation_encodings"].update({"a\x00b": d["activation_encodings"]["input"]}),
     "activation_encodings['a\\x00b']", "a NUL character cannot be written: 'a\\x00b'"),
])
def test_malformed_dicts_name_the_key(change, path, message):
    data = _model()
    change(data)
    with pytest.raises(EncodingsError) as info:
        enc.write_encodings(data, "1.0.0")
    assert str(info.value) == f"{path}: {message}"
    assert (info.value.path, info.value.line) == (path, None)
