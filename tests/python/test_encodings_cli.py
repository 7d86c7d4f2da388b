"""torchqsim.encodings as a command line (`python -m torchqsim.encodings`): help, convert, summary,
and a bad file.

Oracles: the library's own reader and writer on the same files (tested against Python's json in
tests/python/test_encodings.py), the hand-written example files in tests/data/encodings/, and
AIMET's summary of those files written out by hand.
"""

import subprocess
import sys
from pathlib import Path

from torchqsim import encodings as enc

DATA = Path(__file__).resolve().parents[1] / "data" / "encodings"
FILES = {"0.6.1": DATA / "v0_6_1.encodings", "1.0.0": DATA / "v1_0_0.encodings",
         "2.0.0": DATA / "v2_0_0.encodings"}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "torchqsim.encodings", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_cli_help_convert_summary(tmp_path):
    r = _cli("--help")
    assert r.returncode == 0 and "convert" in r.stdout and "summary" in r.stdout, r.stderr
    out = tmp_path / "v1.encodings"
    r = _cli("convert", FILES["0.6.1"], out, "--version", "1.0.0")
    assert r.returncode == 0, r.stderr
    assert out.read_text() == enc.write_encodings(enc.read_encodings(FILES["0.6.1"]), "1.0.0")
    r = _cli("summary", FILES["2.0.0"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"{FILES['2.0.0']}: version 2.0.0, producer aimet-torch 2.4.0"
    assert lines[1] == "5 entries: 0 activations, 0 params, 5 without a role; 0 excluded layers"
    assert lines[2].split() == ["role", "name", "type", "layout", "scale", "offset"]
    rows = {line.split()[1]: line.split()[2:] for line in lines[3:]}
    assert rows["input"] == ["uint8", "asym", "per_tensor", "0.0185", "-114"]
    assert rows["deconv.weight"] == ["int8", "asym", "per_channel[2,", "axis", "1]", "0.25..0.5",
                                     "-128..-125"]
    assert rows["fc.weight"][:3] == ["int4", "sym", "per_block[4,"]


def test_cli_bad_file_and_params_from_onnx(tmp_path):
    bad = tmp_path / "bad.encodings"
    bad.write_text('{"version": "9.9.9"}')
    r = _cli("summary", bad)
    assert r.returncode == 1
    assert r.stderr == (f"error: {bad}: unsupported encodings version '9.9.9' at $.version "
                        "(line 1, column 13); supported: 0.6.1, 1.0.0, 2.0.0\n")
    import onnx
    from onnx import TensorProto, helper

    inits = [helper.make_tensor(n, TensorProto.FLOAT, [1], [0.0])
             for n in ("conv1.weight", "deconv.weight", "fc.weight", "conv1.bias")]
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["y"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], inits)
    model_path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), model_path)
    out = tmp_path / "v1.encodings"
    r = _cli("convert", FILES["2.0.0"], out, "--version", "1.0.0", "--params-from", model_path)
    assert r.returncode == 0, r.stderr
    back = enc.read_encodings(out)
    assert list(back["activation_encodings"]) == ["input"]
    assert list(back["param_encodings"]) == ["conv1.weight", "deconv.weight", "fc.weight", "conv1.bias"]
