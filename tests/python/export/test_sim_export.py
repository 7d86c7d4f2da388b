"""sim.export (torchqsim.export.export_sim) on real sims of a small CNN and a small transformer.

Oracles: onnxruntime (CPU, graph optimizations off) running the exported graphs, the sim itself,
the C encodings reader, and the ONNX graph's own tensor names. Each export takes seconds (two
dynamo exports), so each sim is exported once per module (``_exported``) and shared by tests.

Bit exactness: the QDQ graph equals ``sim.model`` bit for bit at W8A8 and W4A8 (per-tensor and
per-channel weights), where every float sum of the convolutions and matmuls rounds to the same
8-bit output step in torch and in onnxruntime for these models and inputs (a different float
accumulation order could still move a value across a rounding tie of the output quantizer). At
W16A16 the output step is 256 times finer and the two accumulation orders do show through, so
there the check is "within one output quantization step".
"""

import functools
import json
import math
import os
import tempfile

import onnx
import pytest
import torch

from asserts import assert_same, assert_within
from export_models import make_sim, outputs
from torchqsim import encodings as enc_io
from torchqsim.export import ExportError, export_sim
from torchqsim.export.cli import main as cli_main
from torchqsim.export.onnx_graph import graph_tensor_names
from torchqsim.export.quantizer_slots import quantizer_slots
from torchqsim.quantization import QuantizeDequantize
from torchqsim.quantsim.config_file import preset_names

# name: (model kind, output bw, param bw, config preset, encoding version)
CASES = {
    "cnn-w8a8": ("cnn", 8, 8, "default", "1.0.0"),
    "cnn-w8a8-per-channel": ("cnn", 8, 8, "per_channel", "2.0.0"),
    "cnn-w4a8-per-channel": ("cnn", 8, 4, "per_channel", "1.0.0"),
    "cnn-w16a16": ("cnn", 16, 16, "default", "0.6.1"),
    "transformer-w8a8": ("transformer", 8, 8, "default", "2.0.0"),
}
BIT_EXACT = ["cnn-w8a8", "cnn-w8a8-per-channel", "cnn-w4a8-per-channel", "transformer-w8a8"]


@functools.lru_cache(maxsize=None)
def _exported(case):
    """(sim, input, paths) of a case, exported once per test session."""
    kind, act_bw, param_bw, config, version = CASES[case]
    sim, x = make_sim(kind, act_bw, param_bw, config)
    paths = export_sim(sim, tempfile.mkdtemp(prefix=f"export-{case}-"), "model", x, version)
    return sim, x, paths


@pytest.mark.parametrize("config", [None, *preset_names()])
def test_every_preset_w8a8_bn_cnn_bit_exact_in_onnxruntime(config, ort_run, tmp_path):
    # issue 13 item 5: every preset in configs/ and config_file=None (AIMET's default), on a CNN
    # whose BNs the sim folds, with a residual add
    sim, x = make_sim("cnn_bn", 8, 8, config)
    paths = export_sim(sim, str(tmp_path), "model", x, "2.0.0")
    ops = [n.op_type for n in onnx.load(paths["qdq_onnx"]).graph.node]
    assert ops.count("QuantizeLinear") >= 4 and "Add" in ops, ops
    (got,) = ort_run(paths["qdq_onnx"], x)
    (expected,) = outputs(sim.model, x)
    assert_same(got, expected, f"config {config}")


@pytest.mark.parametrize("case", BIT_EXACT)
def test_qdq_onnx_runs_bit_exact_in_onnxruntime(case, ort_run):
    sim, x, paths = _exported(case)
    model = onnx.load(paths["qdq_onnx"])
    assert "QuantizeLinear" in {n.op_type for n in model.graph.node}
    assert {n.domain for n in model.graph.node} == {""}, "no contrib or custom domain"
    for i, (got, expected) in enumerate(zip(ort_run(model, x), outputs(sim.model, x))):
        assert_same(got, expected, f"{case} output {i}")


def test_qdq_onnx_w16a16_within_one_output_step(ort_run):
    sim, x, paths = _exported("cnn-w16a16")
    (got,) = ort_run(paths["qdq_onnx"], x)
    (expected,) = outputs(sim.model, x)
    step = sim.model.fc.output_quantizers[0].get_scale().detach()
    assert_within(got, expected, step.expand_as(got), "W16A16 output")


def test_per_channel_and_4bit_weights_in_the_qdq_graph():
    sim, _, paths = _exported("cnn-w4a8-per-channel")
    model = onnx.load(paths["qdq_onnx"])
    inits = {init.name: init for init in model.graph.initializer}
    weight_q = {n.input[0]: n for n in model.graph.node if n.op_type == "QuantizeLinear" and
                n.input[0] in ("conv1.weight", "conv2.weight", "fc.weight")}
    assert len(weight_q) == 3
    for name, node in weight_q.items():
        assert inits[node.input[2]].data_type == onnx.TensorProto.INT4, name
        module = sim.model.get_submodule(name.rpartition(".")[0])
        channels = math.prod(module.param_quantizers["weight"].shape)
        expected = [] if channels == 1 else [channels]
        assert list(inits[node.input[1]].dims) == expected, name
    assert list(inits[weight_q["conv1.weight"].input[1]].dims) == [8], "conv1 is per-channel"


@pytest.mark.parametrize("case", ["cnn-w8a8", "transformer-w8a8"])
def test_fp32_onnx_matches_the_model_without_quantizers(case, ort_run):
    sim, x, paths = _exported(case)
    model = onnx.load(paths["onnx"])
    assert not {"QuantizeLinear", "DequantizeLinear"} & {n.op_type for n in model.graph.node}
    plain = torch.load(paths["pth"], weights_only=False)
    got = ort_run(model, x)
    for i, (g, expected) in enumerate(zip(got, outputs(plain, x))):
        assert_within(g, expected, torch.full_like(g, 1e-5), f"{case} .onnx vs .pth, output {i}")
    # The sim with its activation quantizers removed computes the same function.
    slots = [s for s in quantizer_slots(sim.model) if s.kind != "param"]
    modules = dict(sim.model.named_modules())
    try:
        for s in slots:
            s.set(modules[s.module_name], None)
        sim_fp = outputs(sim.model, x)
    finally:
        for s in slots:
            s.set(modules[s.module_name], s.quantizer)
    for i, (g, expected) in enumerate(zip(got, sim_fp)):
        assert_within(g, expected, torch.full_like(g, 1e-5), f"{case} .onnx vs sim, output {i}")


@pytest.mark.parametrize("case", ["cnn-w8a8", "transformer-w8a8"])
def test_encodings_name_every_quantizer_by_an_onnx_tensor(case):
    sim, x, paths = _exported(case)
    model = onnx.load(paths["onnx"])
    known = graph_tensor_names(model)
    initializers = {t.name for t in model.graph.initializer}
    data = enc_io.read_encodings(paths["encodings"])
    names = {**data["activation_encodings"], **data["param_encodings"], **data["encodings"]}
    assert names and set(names) <= known
    slots = quantizer_slots(sim.model)
    params = {f"{s.module_name}.{s.key}" for s in slots if s.kind == "param"}
    assert params <= initializers and params <= set(names)
    # Every activation quantizer has an entry: as many distinct tensors as entries, and each
    # quantizer's scale appears under some name.
    acts = [s for s in slots if s.kind != "param"]
    scales = {tuple(e["scale"]) for n, e in names.items() if n not in params}
    assert len(names) - len(params) <= len(acts)
    for s in acts:
        assert (float(s.quantizer.get_scale()),) in scales, s.path
    assert cli_main(["check", paths["onnx"], paths["encodings"]]) == 0


def test_round_trip_through_load_encodings():
    sim, x, paths = _exported("cnn-w8a8-per-channel")
    fresh, _ = make_sim("cnn", 8, 8, "per_channel", seed=0)
    with torch.no_grad():  # different calibration data: different encodings
        fresh.compute_encodings(lambda m, _: m(x * 3 + 1), None)
    expected = outputs(sim.model, x)
    assert not torch.equal(outputs(fresh.model, x)[0], expected[0])
    fresh.load_encodings(paths["torch_encodings"])
    for got, want in zip(outputs(fresh.model, x), expected):
        assert_same(got, want, "after load_encodings")


@pytest.mark.parametrize("case", ["cnn-w8a8", "cnn-w8a8-per-channel", "cnn-w16a16"])
def test_each_version_reads_and_writes_back_the_same_bytes(case):
    _, _, paths = _exported(case)
    version = CASES[case][4]
    text = open(paths["encodings"]).read()
    data = enc_io.read_encodings(text)  # the C reader
    assert data["version"] == version
    assert enc_io.write_encodings(data, version) == text


def test_versions_agree_on_scales_and_offsets(tmp_path):
    _, _, paths = _exported("cnn-w8a8-per-channel")  # a 2.0.0 file
    onnx_params = [t.name for t in onnx.load(paths["onnx"]).graph.initializer]
    ref = enc_io.read_encodings(paths["encodings"])["encodings"]
    for version in ("0.6.1", "1.0.0"):
        out = tmp_path / f"{version}.encodings"
        enc_io.convert(paths["encodings"], out, version, param_names=onnx_params)
        back = enc_io.read_encodings(out)
        entries = {**back["activation_encodings"], **back["param_encodings"]}
        assert set(entries) == set(ref)
        assert set(back["param_encodings"]) == {"conv1.weight", "conv2.weight", "fc.weight"}
        for name, entry in ref.items():
            assert entries[name]["scale"] == entry["scale"], (version, name)
            assert entries[name]["offset"] == entry["offset"], (version, name)


def test_torch_encodings_hold_every_quantizer():
    sim, _, paths = _exported("cnn-w8a8")
    with open(paths["torch_encodings"]) as f:
        data = json.load(f)
    assert data == json.loads(json.dumps(sim.quantizer_encodings_dict()))


def test_repeated_export_is_byte_identical(tmp_path):
    sim, x, paths = _exported("cnn-w8a8")
    again = export_sim(sim, tmp_path, "model", x, "1.0.0")
    for kind in ("encodings", "torch_encodings", "onnx", "qdq_onnx"):
        with open(paths[kind], "rb") as a, open(again[kind], "rb") as b:
            assert a.read() == b.read(), kind


def test_failed_export_leaves_no_files(tmp_path):
    sim, _, _ = _exported("cnn-w8a8")
    (tmp_path / "model.encodings").write_text("old")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ExportError, match="exporting the FP32 graph to ONNX failed"):
        export_sim(sim, tmp_path, "model", torch.randn(4, 5, 8, 8), "1.0.0")  # 5 channels
    assert sorted(os.listdir(tmp_path)) == before
    assert (tmp_path / "model.encodings").read_text() == "old"


def test_conflicting_encodings_on_one_tensor(tmp_path):
    sim, x, _ = _exported("cnn-w8a8")
    extra = QuantizeDequantize((), 8, symmetric=False)
    extra.set_range(-1.0, 1.0)
    sim.model.conv2.input_quantizers[0] = extra  # the tensor relu's output quantizer quantizes
    try:
        with pytest.raises(ExportError, match=r"both apply to ONNX tensor 'relu'") as info:
            export_sim(sim, tmp_path, "model", x)
        assert "'module_relu.output_quantizers.0'" in str(info.value)
        assert "'conv2.input_quantizers.0'" in str(info.value)
    finally:
        sim.model.conv2.input_quantizers[0] = None
    assert os.listdir(tmp_path) == []


def test_uncalibrated_sim_and_bad_arguments(tmp_path):
    from export_models import make_model
    from torchqsim.quantsim import QuantizationSimModel

    model, x = make_model("cnn")
    sim = QuantizationSimModel(model, x, quant_scheme="tf")
    with pytest.raises(ExportError, match=r"have no encoding: conv1.input_quantizers.0"):
        export_sim(sim, tmp_path, "m", x)
    with pytest.raises(ValueError, match="encoding_version must be one of"):
        export_sim(sim, tmp_path, "m", x, "3.0.0")
    with pytest.raises(ValueError, match="filename_prefix"):
        export_sim(sim, tmp_path, "a/b", x)
    with pytest.raises(NotADirectoryError, match="missing"):
        export_sim(sim, tmp_path / "missing", "m", x)
    assert os.listdir(tmp_path) == []


def test_command_line(tmp_path, capsys):
    _, _, paths = _exported("cnn-w8a8")
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--help"])
    assert exit_info.value.code == 0 and "check" in capsys.readouterr().out
    assert cli_main(["summary", paths["encodings"]]) == 0
    assert "conv1.weight" in capsys.readouterr().out
    out = tmp_path / "v2.encodings"
    assert cli_main(["convert", paths["encodings"], str(out), "--version", "2.0.0"]) == 0
    assert enc_io.read_encodings(out)["version"] == "2.0.0"
    bogus = tmp_path / "bogus.encodings"
    data = enc_io.read_encodings(paths["encodings"])
    data["activation_encodings"]["no_such_tensor"] = data["activation_encodings"]["x"]
    enc_io.save_encodings(data, bogus, "1.0.0")
    assert cli_main(["check", paths["onnx"], str(bogus)]) == 1
    assert "no_such_tensor" in capsys.readouterr().err


def test_load_encodings_strict_rejects_unknown_names():
    sim, _, paths = _exported("cnn-w8a8")
    with open(paths["torch_encodings"]) as f:
        data = json.load(f)
    data["param_encodings"]["no_such_layer.weight"] = data["param_encodings"]["fc.weight"]
    with pytest.raises(RuntimeError, match="no_such_layer"):
        sim.load_encodings(data, strict=True)
