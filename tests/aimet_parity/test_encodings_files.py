"""``{prefix}.encodings`` files (keyed by ONNX tensor names) across torchqsim and aimet-torch
2.42.0, and the eNPU fixed-range option (differential oracle: aimet_oracle.py in the side venv).

Which versions aimet-torch 2.42 writes: its legacy ``sim.export`` writes 0.6.1 and 1.0.0 (it
refuses 2.0.0 and points at ``sim.onnx.export``), ``sim.onnx.export`` writes 0.6.1, 1.0.0 and
2.0.0 (aimet_torch/quantsim/quantsim.py in the side venv: ``QuantizationSimModel.export`` and
``QuantizationSimModelOnnxExporter.export``). What it reads: ``sim.load_encodings`` and
``load_encodings_to_sim`` take only the module-keyed layout of ``_torch.encodings``
(aimet_torch/_base/quantsim.py: ``_load_encodings_impl`` looks activations up by module name and
``"input"``/``"output"``, parameters by ``module.param``); aimet-torch 2.42 has no API that loads
a ``.encodings`` file into a torch sim, in any version. test_aimet_cannot_load_encodings_files
checks that (it fails the day AIMET loads one) on AIMET's own files and on ours; the direction
torchqsim -> AIMET is covered by ``_torch.encodings`` (test_aimet_parity.py) and, for
``.encodings``, by our files holding the same encodings as AIMET's (our loader reads both back
to the output AIMET computes).
"""

import json
from pathlib import Path

import pytest
import torch

import ours
from harness import run_oracle
from test_aimet_parity import _aimet, _assert_same_output, _case

# (AIMET API, encoding version): the legacy sim.export for the versions it writes, the new
# sim.onnx.export for 2.0.0 (and its derived entries: int32 biases, data-movement outputs).
AIMET_EXPORTS = [("export", "0.6.1"), ("export", "1.0.0"), ("onnx", "2.0.0")]
VERSIONS = ["0.6.1", "1.0.0", "2.0.0"]
FILE_MODELS = ["cnn", "transformer", "mlp", "embed", "pool"]
# To keep the suite short, the legacy exports only for two models, 2.0.0 for all.
LEGACY_MODELS = ["cnn", "transformer"]
FILE_CASES = [(m, api, v) for m in FILE_MODELS for api, v in AIMET_EXPORTS
              if api == "onnx" or m in LEGACY_MODELS]
# Our exports (the dynamo exporter takes seconds per file): the CNN in every version, the
# transformer block in 2.0.0.
OUR_EXPORTS = [("cnn", "0.6.1"), ("cnn", "1.0.0"), ("cnn", "2.0.0"), ("transformer", "2.0.0")]
ENPU = "enpu_quantsim_config_v7.json"


def _aimet_file(out: Path, model: str, api: str, version: str) -> Path:
    return out / "aimet" / "exports" / f"files-{model}" / f"{api}-{version}" / f"files-{model}.encodings"


@pytest.fixture(scope="session")
def files(aimet_python, aimet_config_dir, tmp_path_factory):
    """AIMET's calibrated sims (tf, W8A8, no config) and their export files per model; the eNPU
    Softmax case; our export files of the same (calibrated) sims; AIMET trying to load both."""
    out = tmp_path_factory.mktemp("files")
    cases = [dict(_case(m, None), id=f"files-{m}",
                  export=[e for e in AIMET_EXPORTS if e[0] == "onnx" or m in LEGACY_MODELS])
             for m in FILE_MODELS]
    cases.append(dict(_case("softmax", str(aimet_config_dir / ENPU)), id="enpu-softmax"))
    run_oracle(aimet_python, cases, out / "aimet")
    (out / "ours").mkdir()
    for m, v in OUR_EXPORTS:
        sim, data = ours.make_sim(_case(m, None))
        (out / "ours" / v).mkdir(exist_ok=True)
        sim.export(out / "ours" / v, f"ours-{m}", data[0], encoding_version=v)
    aimet_own = [str(_aimet_file(out, "cnn", *e)) for e in AIMET_EXPORTS]
    control = str(_aimet_file(out, "cnn", "export", "0.6.1").with_name("files-cnn_torch.encodings"))
    mine = [str(out / "ours" / v / "ours-cnn.encodings") for v in VERSIONS]
    run_oracle(aimet_python, [dict(_case("cnn", None), id="tries",
                                   try_load=aimet_own + mine + [control])], out / "aimet")
    return out


@pytest.mark.parametrize("model,api,version", FILE_CASES)
def test_we_load_aimet_encodings(model, api, version, files):
    """Our sim (not calibrated) with AIMET's ``.encodings`` loaded (strict, non-partial: every
    entry reaches a slot or is one AIMET derives, every enabled slot gets an entry) computes
    AIMET's output."""
    _, their_out = _aimet(files / "aimet", f"files-{model}")
    sim, data = ours.make_sim(_case(model, None), calibrate=False)
    sim.load_encodings(_aimet_file(files, model, api, version), partial=False)
    with torch.no_grad():
        _assert_same_output(sim.model(data[3]), their_out)


@pytest.mark.parametrize("model,version", OUR_EXPORTS)
def test_our_encodings_files_hold_aimet_encodings(model, version, files):
    """Our ``.encodings`` (each version) of a sim calibrated like AIMET's, loaded into a fresh
    sim, compute AIMET's output: the file holds AIMET's encodings on the right tensors."""
    _, their_out = _aimet(files / "aimet", f"files-{model}")
    sim, data = ours.make_sim(_case(model, None), calibrate=False)
    sim.load_encodings(files / "ours" / version / f"ours-{model}.encodings", partial=False)
    with torch.no_grad():
        _assert_same_output(sim.model(data[3]), their_out)


def test_aimet_cannot_load_encodings_files(files):
    """aimet-torch 2.42's ``load_encodings`` refuses every ``.encodings`` file, its own (each
    version) as ours, with the same error for both in each version, while it loads its
    ``_torch.encodings`` (the control: the attempt itself works)."""
    tries = json.loads((files / "aimet" / "tries.try_load.json").read_text())
    control = [p for p in tries if p.endswith("_torch.encodings")]
    assert len(control) == 1 and tries[control[0]] is None
    whys = [why for p, why in tries.items() if p not in control]
    assert len(whys) == 6 and all(why is not None for why in whys), tries
    theirs, mine = whys[:3], whys[3:]        # per version, in VERSIONS order
    assert [w.split(":")[0] for w in theirs] == [w.split(":")[0] for w in mine], tries


def test_enpu_softmax_aimet_clipping_parity(files, aimet_config_dir):
    """eNPU v7: AIMET's Softmax output grid (fixed range [0, 1] on the signed symmetric grid)
    ends at 127/255, so 0.7 reads 0.498; ours with ``aimet_fixed_range_clipping`` equals it."""
    _, their_out = _aimet(files / "aimet", "enpu-softmax")
    case = _case("softmax", str(aimet_config_dir / ENPU))
    sim, data = ours.make_sim(case, clipping=True)
    with torch.no_grad():
        mine = sim.model(data[3])
        exact = torch.softmax(data[3], -1)
    _assert_same_output(mine, their_out)
    assert float(exact.max()) > 0.7 and float(their_out.max()) <= 127 / 255 + 1e-6


def test_enpu_softmax_range_holds_by_default(aimet_config_dir):
    """eNPU v7 without the option: the Softmax output grid is [0, 1] in steps of 1/255, so every
    output is the nearest multiple of 1/255 of the softmax of the quantized input (known
    answer), 0.7 included."""
    sim, data = ours.make_sim(_case("softmax", str(aimet_config_dir / ENPU)), clipping=False)
    scale = sim.model.softmax.output_quantizers[0].get_encoding().scale
    assert torch.equal(scale, torch.tensor(1.0) / 255)
    with torch.no_grad():
        mine = sim.model(data[3])
        x_q = sim.model.softmax.input_quantizers[0](data[3])
    # rounding x * (1 / scale): the sim rounds as AIMET's no-grad forwards (ours.make_sim)
    ref = torch.clamp(torch.round(torch.softmax(x_q, -1) * (1 / scale)), 0, 255) * scale
    assert torch.allclose(mine, ref, rtol=0, atol=1e-6)
    assert float(mine.max()) > 0.7

