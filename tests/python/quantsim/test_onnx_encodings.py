"""``sim.load_encodings`` of ``{prefix}.encodings`` files keyed by ONNX tensor names
(wrappers/quantsim/onnx_encodings.py): our own export read back, and the errors for entries that
name no usable slot. Against aimet-torch's files: tests/aimet_parity/test_encodings_files.py."""

import json
import warnings

import onnx
import pytest
import torch

from torchqsim.quantsim import QuantizationSimModel
from torchqsim.quantsim.onnx_encodings import is_onnx_keyed, node_module, tensor_slots
from test_torch_encodings import _Net   # conv, relu, flatten, fc


X = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))


def _sim(calibrate=True):
    torch.manual_seed(0)
    sim = QuantizationSimModel(_Net().eval(), X, quant_scheme="tf", config_file="default")
    if calibrate:
        sim.compute_encodings(lambda m: m(X))
    return sim


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(sim, its output, the paths of its 2.0.0 export)."""
    sim = _sim()
    with torch.no_grad():
        y = sim.model(X)
    paths = sim.export(tmp_path_factory.mktemp("onnx_enc"), "net", X, encoding_version="2.0.0")
    return sim, y, paths


def test_node_module_reads_names_and_scopes():
    names = {"conv", "layer1.0.conv1", "fc"}
    assert node_module("conv", names) == "conv"
    assert node_module("fc#1.end", names) == "fc"
    assert node_module("/layer1/layer1.0/conv1/Conv", names) == "layer1.0.conv1"
    assert node_module("/conv/marked_module/Constant", names) == "conv"
    assert node_module("node_conv2d", names, ": Root/conv: QuantizedConv2d/conv2d: aten") == "conv"
    assert node_module("/Shape", names) is None and node_module("node_x", names) is None


def test_our_encodings_file_loads_back_to_the_same_output(exported):
    sim, y, paths = exported
    fresh = _sim(calibrate=False)
    fresh.load_encodings(paths["encodings"], partial=False)     # finds net.onnx beside it
    with torch.no_grad():
        assert torch.equal(fresh.model(X), y)


def _file(paths) -> dict:
    return json.loads(open(paths["encodings"]).read())


def _disabled_tensor(sim, paths) -> tuple:
    """A tensor of the ONNX graph whose quantizer slots are all disabled, and those slots."""
    slots, _ = tensor_slots(onnx.load(paths["onnx"]).graph, sim._specs)
    for t, keys in slots.items():
        specs = [sim._specs[m] for m, _, _ in keys]
        if not any((s.inputs if kind == "input" else s.outputs)[i].enabled
                   for s, (_, kind, i) in zip(specs, keys)):
            return t, keys
    raise AssertionError("the test model has no disabled activation slot")


def test_entry_for_a_disabled_slot_names_tensor_module_and_slot(exported):
    sim, _, paths = exported
    tensor, keys = _disabled_tensor(sim, paths)
    data = _file(paths)
    data["encodings"].append({"name": tensor, "output_dtype": "uint8", "y_scale": 0.37,
                              "y_zero_point": 3})
    m, kind, i = keys[0]
    with pytest.raises(RuntimeError, match=rf"tensor '{tensor}' is the .*{kind} {i} of '{m}'.*"
                                           r"disabled in this sim"):
        _sim(calibrate=False).load_encodings(data, onnx_model=paths["onnx"])
    fresh = _sim(calibrate=False)
    with pytest.warns(UserWarning, match=f"skipped .*'{tensor}'"):
        fresh.load_encodings(data, strict=False, onnx_model=paths["onnx"])
    with torch.no_grad():
        assert torch.equal(fresh.model(X), exported[1])            # the rest loaded


def test_unknown_tensor_and_missing_model_are_named(exported, tmp_path):
    _, _, paths = exported
    data = _file(paths)
    data["encodings"].append({"name": "no_such_tensor", "output_dtype": "uint8", "y_scale": 0.5})
    with pytest.raises(RuntimeError, match="no tensor 'no_such_tensor' in the ONNX model"):
        _sim(calibrate=False).load_encodings(data, onnx_model=paths["onnx"])
    with pytest.raises(ValueError, match="pass onnx_model="):
        _sim(calibrate=False).load_encodings(_file(paths))
    lone = tmp_path / "lone.encodings"
    lone.write_text(json.dumps(_file(paths)))
    with pytest.raises(ValueError, match=r"lone\.onnx \(its ONNX model\) does not exist"):
        _sim(calibrate=False).load_encodings(lone)


def test_malformed_entry_is_refused_naming_it_and_nothing_changes(exported):
    sim, y, paths = exported
    data = _file(paths)
    data["encodings"][0]["y_scale"] = -1.0 if not isinstance(
        data["encodings"][0]["y_scale"], list) else [-1.0] * len(data["encodings"][0]["y_scale"])
    fresh = _sim()
    with pytest.raises(Exception, match=r"encodings\[0\]"):
        fresh.load_encodings(data, onnx_model=paths["onnx"])
    with torch.no_grad():
        assert torch.equal(fresh.model(X), y)


def test_entries_aimet_derives_are_skipped(exported):
    """An int32 bias encoding and a repeat of an input's encoding on a data-movement output load
    (strictly) as if absent."""
    sim, y, paths = exported
    data = _file(paths)
    graph = onnx.load(paths["onnx"]).graph
    bias = next(t.name for t in graph.initializer if t.name.endswith(".bias"))
    data["encodings"].append({"name": bias, "output_dtype": "int32", "y_scale": 1e-6})
    by_name = {e["name"]: e for e in data["encodings"]}
    # a node whose data input has an entry and whose output has none (no enabled slot: the
    # export writes one entry per enabled slot): the Reshape (flatten) after the ReLU
    node = next(n for n in graph.node if n.op_type == "Reshape")
    assert node.input[0] in by_name and node.output[0] not in by_name
    data["encodings"].append(dict(by_name[node.input[0]], name=node.output[0]))
    fresh = _sim(calibrate=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh.load_encodings(data, partial=False, onnx_model=paths["onnx"])
    with torch.no_grad():
        assert torch.equal(fresh.model(X), y)


def test_layout_is_told_by_structure_not_version():
    """aimet-torch writes its export's version (1.0.0 included) into ``_torch.encodings`` too:
    the module-keyed layout is read as such in any version."""
    entry = {"bitwidth": 8, "dtype": "int", "is_symmetric": "False", "scale": 0.5, "offset": -3}
    assert not is_onnx_keyed({"version": "1.0.0",
                              "activation_encodings": {"fc": {"output": {"0": entry}}}})
    assert is_onnx_keyed({"version": "0.6.1", "activation_encodings": {"t.1": [entry]}})
    assert is_onnx_keyed({"version": "1.0.0", "activation_encodings": [], "param_encodings": []})
    assert is_onnx_keyed({"version": "2.0.0", "encodings": []})
