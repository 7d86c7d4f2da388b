"""The AIMET side of the parity suite: runs aimet-torch 2.42 in the side venv and writes what it
did, for the main-env tests to compare (tests/aimet_parity/test_aimet_parity.py).

Usage (side venv's python)::

    python tests/aimet_parity/aimet_oracle.py CASES.json OUT_DIR

CASES.json is a list of cases ``{"id", "model", "config" (a path or null), "scheme" ("tf" or
"tf_enhanced"), "act_bw", "param_bw", "save": bool}``. For each case this builds the model of
`models.py`, prepares it with AIMET's model preparer, builds AIMET's QuantizationSimModel,
calibrates on the model's calibration batches and writes ``OUT_DIR/<id>.json`` (every quantizer
slot: enabled, bitwidth, symmetric, shape, scale, offset, min, max), ``OUT_DIR/<id>.pt`` (the sim's
output on the test batch) and, with ``save``, ``OUT_DIR/encodings/<id>.json`` (AIMET's
``save_encodings_to_json``). Cases with
``"load"``: a path to an encodings file to load into the sim (instead of calibrating);
``"export"``: a list of ``[api, version]`` (api ``"export"``: the legacy ``sim.export``, which
writes 0.6.1 and 1.0.0; ``"onnx"``: ``sim.onnx.export``, 0.6.1 to 2.0.0) to write
``OUT_DIR/exports/<id>/<api>-<version>/<id>.onnx`` and ``.encodings`` after calibrating;
``"try_load"``: paths of files that AIMET's ``sim.load_encodings`` is tried on, each in a fresh
sim, recording ``OUT_DIR/<id>.try_load.json`` (path -> null, or the error's type and message).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torchvision_shim  # noqa: F401  (before aimet_torch imports torchvision)

import torch  # noqa: E402
from aimet_torch.common.defs import QuantScheme  # noqa: E402
from aimet_torch.model_preparer import prepare_model  # noqa: E402
from aimet_torch.quantsim import QuantizationSimModel  # noqa: E402

import models  # noqa: E402

_SCHEMES = {"tf": QuantScheme.post_training_tf,
            "tf_enhanced": QuantScheme.post_training_tf_enhanced}


def _tensor(t):
    return t.detach().flatten().double().tolist()


def quantizer_record(q) -> dict:
    """What the parity tests compare of one quantizer slot (None: disabled)."""
    if q is None:
        return {"enabled": False}
    if not hasattr(q, "get_scale"):  # float quantizer
        return {"enabled": True, "dtype": "float", "bitwidth": int(q.bitwidth)}
    rec = {"enabled": True, "dtype": "int", "bitwidth": int(q.bitwidth),
           "symmetric": bool(q.symmetric), "shape": list(q.shape)}
    if q.is_initialized():
        rec.update(scale=_tensor(q.get_scale()), offset=_tensor(q.get_offset()),
                   min=_tensor(q.get_min()), max=_tensor(q.get_max()))
    return rec


def records(model) -> dict:
    """Every quantized module's slots (models.slot_records)."""
    return models.slot_records(((n, m) for n, m in model.named_modules()
                                if hasattr(m, "param_quantizers") and hasattr(m, "input_quantizers")),
                               quantizer_record)


def make_sim(case: dict):
    data = models.batches(case["model"])
    model = prepare_model(models.build(case["model"]))
    return QuantizationSimModel(model, data[0], quant_scheme=_SCHEMES[case["scheme"]],
                                default_output_bw=case["act_bw"],
                                default_param_bw=case["param_bw"],
                                config_file=case["config"]), data


def try_loads(case: dict, out_dir: str) -> None:
    """Tries AIMET's ``load_encodings`` on each of ``case["try_load"]`` (a fresh sim each)."""
    results = {}
    for path in case["try_load"]:
        sim, _ = make_sim(case)
        try:
            sim.load_encodings(path, strict=True, partial=False)
            results[path] = None
        except Exception as exc:  # what AIMET says is the result
            results[path] = f"{type(exc).__name__}: {exc}"[:400]
    with open(os.path.join(out_dir, f"{case['id']}.try_load.json"), "w") as f:
        json.dump(results, f)


def export_all(sim, case: dict, data, out_dir: str) -> None:
    """``case["export"]``: AIMET's export files in each listed API and version."""
    from aimet_torch.common import quantsim as config

    for api, version in case["export"]:
        d = os.path.join(out_dir, "exports", case["id"], f"{api}-{version}")
        os.makedirs(d, exist_ok=True)
        if api == "export":
            config.encoding_version = version
            sim.export(d, case["id"], data[0])
        else:
            sim.onnx.export((data[0],), os.path.join(d, f"{case['id']}.onnx"),
                            encoding_version=version, dynamo=False)


def run_case(case: dict, out_dir: str) -> None:
    if case.get("try_load"):
        try_loads(case, out_dir)
        return
    sim, data = make_sim(case)
    if case.get("load"):
        sim.load_encodings(case["load"], strict=True, partial=False)
    else:
        def calibrate(m, _):
            for x in data[:3]:
                m(x)
        sim.compute_encodings(calibrate, None)
    with torch.no_grad():
        out = sim.model(data[3]).as_subclass(torch.Tensor)  # not AIMET's DequantizedTensor
        torch.save(out.detach().clone(), os.path.join(out_dir, f"{case['id']}.pt"))
    with open(os.path.join(out_dir, f"{case['id']}.json"), "w") as f:
        json.dump(records(sim.model), f)
    if case.get("save"):  # AIMET 2.42 writes <prefix>.json here
        os.makedirs(os.path.join(out_dir, "encodings"), exist_ok=True)
        sim.save_encodings_to_json(os.path.join(out_dir, "encodings"), case["id"])
    if case.get("export"):
        export_all(sim, case, data, out_dir)


def main(argv) -> int:
    cases_path, out_dir = argv
    with open(cases_path) as f:
        cases = json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    for case in cases:
        try:
            run_case(case, out_dir)
        except Exception as exc:  # recorded for the test to report, per case
            with open(os.path.join(out_dir, f"{case['id']}.error"), "w") as f:
                f.write(f"{type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
