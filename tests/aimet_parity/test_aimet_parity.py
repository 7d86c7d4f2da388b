"""torchqsim against aimet-torch 2.42.0 on the same models, data and configs (differential
oracle: AIMET runs in the side venv, aimet_oracle.py).

The product covered (chosen to keep the suite to a few minutes):

- settings and tf encodings: every config file aimet-torch ships (19) and no config (AIMET's
  default) x the 5 models of models.py, W8A8;
- W8A16: the default, per-channel and HTP v81 configs x the 5 models;
- tf_enhanced: the default and per-channel configs x the 5 models, W8A8.

Per quantizer slot, enabled / dtype / bitwidth / symmetric / shape (per-channel) must be AIMET's,
and where they are, scale / offset / min / max must be AIMET's: offsets exactly, the rest to
1 float32 ulp for tf (see TF_REL) and within float rounding for tf_enhanced. Differences that remain are listed, per case and slot, in
known_differences.json: a case fails when its differences are not exactly the listed ones (a new
difference, or a listed one that is gone). Run with ``TORCHQSIM_PARITY_RECORD=1`` to rewrite that
file from the current results.
"""

import json
import math
import os
from pathlib import Path

import pytest
import torch

import ours
from harness import run_oracle

HERE = Path(__file__).resolve().parent
KNOWN_FILE = HERE / "known_differences.json"

# The config files inside aimet_torch/common/quantsim_config/ of aimet-torch 2.42.0.
AIMET_CONFIGS = sorted([
    "default_config.json", "default_config_per_channel.json", "dsp_quantsim_config.json",
    "enpu_quantsim_config_v6.json", "enpu_quantsim_config_v7.json",
    "enpu_quantsim_config_v7_per_channel.json", "htp_quantsim_config_v66.json",
    "htp_quantsim_config_v68.json", "htp_quantsim_config_v69.json",
    "htp_quantsim_config_v69_per_channel_linear.json", "htp_quantsim_config_v73.json",
    "htp_quantsim_config_v73_per_channel_linear.json", "htp_quantsim_config_v75.json",
    "htp_quantsim_config_v75_per_channel_linear.json", "htp_quantsim_config_v79.json",
    "htp_quantsim_config_v79_per_channel_linear.json", "htp_quantsim_config_v81.json",
    "htp_quantsim_config_v81_per_channel_linear.json", "htp_quantsim_config_v85.json"])
MODELS = ["cnn", "transformer", "mlp", "embed", "pool"]
SETTINGS = ("enabled", "dtype", "bitwidth", "symmetric", "shape")
# tf: AIMET keeps the unsnapped min/max and derives the scale from them, torchqsim keeps the
# grid-snapped ones: scale, min and max agree to 1 float32 ulp (2^-23 relative), offsets exactly.
# tf_enhanced: the same search in the same order, within float rounding.
TF_REL, TF_ENHANCED_REL = 2.0 ** -22, 1e-5
NUMBERS = ("scale", "offset", "min", "max")


def _case(model, config, scheme="tf", act_bw=8, param_bw=8):
    stem = config[:-5] if config else "none"
    return {"id": f"{model}-{stem}-{scheme}-w{param_bw}a{act_bw}", "model": model,
            "config": config, "scheme": scheme, "act_bw": act_bw, "param_bw": param_bw}


CASES = ([_case(m, c) for c in AIMET_CONFIGS + [None] for m in MODELS] +
         [_case(m, c, act_bw=16) for c in ("default_config.json", "default_config_per_channel.json",
                                            "htp_quantsim_config_v81.json") for m in MODELS] +
         [_case(m, c, "tf_enhanced") for c in ("default_config.json",
                                               "default_config_per_channel.json") for m in MODELS])


@pytest.fixture(scope="session")
def resolved_cases(aimet_config_dir):
    """CASES with config paths inside the side venv."""
    return {c["id"]: dict(c, config=None if c["config"] is None else
                          str(aimet_config_dir / c["config"])) for c in CASES}


@pytest.fixture(scope="session")
def aimet_results(aimet_python, resolved_cases, tmp_path_factory):
    """AIMET's results for every case (``$TORCHQSIM_AIMET_RESULTS``: reuse that folder of an
    earlier run when it has them, else run the oracle into it)."""
    keep = os.environ.get("TORCHQSIM_AIMET_RESULTS")
    out = Path(keep) if keep else tmp_path_factory.mktemp("aimet")
    if keep and all((out / f"{c}.json").exists() for c in resolved_cases):
        return out
    return run_oracle(aimet_python, list(resolved_cases.values()), out)


_OURS: dict = {}


def _ours(case):
    if case["id"] not in _OURS:
        _OURS[case["id"]] = ours.run_case(case)
    return _OURS[case["id"]]


def _aimet(results: Path, case_id: str):
    err = results / f"{case_id}.error"
    if err.exists():
        raise AssertionError(f"AIMET failed on {case_id}: {err.read_text()}")
    return (json.loads((results / f"{case_id}.json").read_text()),
            torch.load(results / f"{case_id}.pt"))


def _numbers_differ(a: list, b: list, rel: float) -> bool:
    return len(a) != len(b) or any(not math.isclose(x, y, rel_tol=rel, abs_tol=1e-12)
                                   for x, y in zip(a, b))


def _field(rec: dict, key: str) -> list:
    """`key` of a record; "offset" as the integer of the grid's lowest value, round(min / scale):
    the two tools count offsets from different integer ranges (AIMET's symmetric activation
    quantizers are unsigned with offset -128 where torchqsim's are signed with zero point 0;
    both put the grid at [-128, 127] * scale)."""
    if key != "offset":
        return rec[key]
    return [float(round(lo / s)) for lo, s in zip(rec["min"], rec["scale"])]


def differences(theirs: dict, mine: dict, rel: float) -> dict:
    """slot -> sorted list of the fields that differ (``"missing"`` / ``"extra"`` for slots
    only one side has). Numbers are compared only where the settings agree: offsets exactly,
    scale / min / max within relative `rel`."""
    out = {}
    for slot in sorted(set(theirs) | set(mine)):
        if slot not in mine or slot not in theirs:
            out[slot] = ["missing" if slot not in mine else "extra"]
            continue
        a, b = theirs[slot], mine[slot]
        diff = [k for k in SETTINGS if a.get(k) != b.get(k)]
        if not diff and a.get("dtype") == "int":
            diff = [k for k in NUMBERS if (k in a) != (k in b) or
                    (k in a and _numbers_differ(_field(a, k), _field(b, k),
                                                0.0 if k == "offset" else rel))]
        if diff:
            out[slot] = diff
    return out


def _known() -> dict:
    return json.loads(KNOWN_FILE.read_text()) if KNOWN_FILE.exists() else {}


def _record(case_id: str, diff: dict) -> None:
    known = _known()
    if diff:
        known[case_id] = diff
    else:
        known.pop(case_id, None)
    KNOWN_FILE.write_text(json.dumps(dict(sorted(known.items())), indent=1) + "\n")


def test_shipped_config_files(aimet_config_dir):
    """The suite covers every config file the installed aimet-torch ships."""
    assert sorted(p.name for p in aimet_config_dir.glob("*.json")) == AIMET_CONFIGS


@pytest.mark.parametrize("name", AIMET_CONFIGS)
def test_every_shipped_config_parses(aimet_config_dir, name):
    from torchqsim.quantsim.config_file import load_config
    cfg = load_config(aimet_config_dir / name)
    raw = json.loads((aimet_config_dir / name).read_text())
    assert list(cfg.op_type) == list(dict.fromkeys(raw["op_type"]))
    assert [list(g.op_list) for g in cfg.supergroups] == [g["op_list"] for g in raw["supergroups"]]
    assert list(cfg.supergroup_pass_list) == raw.get("supergroup_pass_list", [])


@pytest.mark.parametrize("case_id", [c["id"] for c in CASES])
def test_parity(case_id, resolved_cases, aimet_results):
    """Settings, encodings (and, where those all agree, outputs) equal AIMET's, up to the
    differences listed in known_differences.json for this case."""
    case = resolved_cases[case_id]
    theirs, their_out = _aimet(aimet_results, case_id)
    mine, my_out = _ours(case)
    diff = differences(theirs, mine, TF_REL if case["scheme"] == "tf" else TF_ENHANCED_REL)
    if os.environ.get("TORCHQSIM_PARITY_RECORD") == "1":
        _record(case_id, diff)
    assert diff == _known().get(case_id, {}), (
        f"{case_id}: the differences from AIMET are not the listed ones "
        f"(known_differences.json)")
    if not diff:
        _assert_same_output(my_out, their_out)


def _assert_same_output(mine: torch.Tensor, theirs: torch.Tensor) -> None:
    """Equal within a few float32 ulps of the largest output (the scales agree to an ulp, see
    TF_REL; every quantized value is the same integer)."""
    assert mine.shape == theirs.shape
    tol = float(theirs.abs().max()) * 2.0 ** -21
    assert torch.allclose(mine, theirs, rtol=0, atol=tol), float((mine - theirs).abs().max())


# --- cross-loading: AIMET's _torch.encodings into torchqsim, and torchqsim's into AIMET --------

XLOAD_MODELS = MODELS


@pytest.fixture(scope="session")
def cross_loaded(aimet_python, tmp_path_factory):
    """Per model (no config: both tools' default, tf, W8A8): AIMET's saved encodings and its
    output; our saved encodings and AIMET's output after loading them; and our calibrated
    sim's output."""
    out = tmp_path_factory.mktemp("xload")
    base = [dict(_case(m, None), id=f"xload-{m}", save=True) for m in XLOAD_MODELS]
    run_oracle(aimet_python, base, out / "aimet")
    mine = {}
    (out / "ours").mkdir()
    for case in base:
        sim, data = ours.make_sim(case)
        with torch.no_grad():
            mine[case["model"]] = sim.model(data[3])
        sim.save_encodings_to_json(out / "ours", case["id"])
    back = [dict(c, id=f"{c['id']}-ours", load=str(out / "ours" / f"{c['id']}_torch.encodings"),
                 save=False) for c in base]
    run_oracle(aimet_python, back, out / "aimet")
    return out, mine


@pytest.mark.parametrize("model", XLOAD_MODELS)
def test_aimet_loads_our_torch_encodings(model, cross_loaded):
    """AIMET's sim with our ``_torch.encodings`` loaded computes our sim's output."""
    out, mine = cross_loaded
    _, theirs = _aimet(out / "aimet", f"xload-{model}-ours")
    _assert_same_output(mine[model], theirs)


@pytest.mark.parametrize("model", XLOAD_MODELS)
def test_we_load_aimet_torch_encodings(model, cross_loaded):
    """Our sim with AIMET's saved encodings loaded computes AIMET's output."""
    out, _ = cross_loaded
    _, their_out = _aimet(out / "aimet", f"xload-{model}")
    sim, data = ours.make_sim(_case(model, None), calibrate=False)
    sim.load_encodings(out / "aimet" / "encodings" / f"xload-{model}.json")
    with torch.no_grad():
        _assert_same_output(sim.model(data[3]), their_out)
