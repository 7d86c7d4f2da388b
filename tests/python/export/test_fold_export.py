"""Export of a sim after ``fold_param_quantizers``: the same encodings file as the unfolded sim,
and a QDQ graph that onnxruntime (optimizations off) runs to the sim's outputs bit for bit."""

import copy
import json
import os

import torch
from torch import nn

from asserts import assert_same
from torchqsim.quantsim import QuantizationSimModel


def _sim(model, x):
    sim = QuantizationSimModel(model, x, quant_scheme="tf", config_file="per_channel")
    sim.compute_encodings(lambda m, _: m(x), None)
    sim.model.eval()
    return sim


def test_folded_export_keeps_encodings_and_runtime_exactness(tmp_path, ort_run):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    x = torch.randn(2, 3, 8, 8)
    plain, folded = _sim(copy.deepcopy(model), x), _sim(copy.deepcopy(model), x)
    assert sorted(folded.fold_param_quantizers()) == ["0.weight", "3.weight"]
    files = {}
    for name, sim in (("plain", plain), ("folded", folded)):
        os.makedirs(tmp_path / name)
        files[name] = sim.export(str(tmp_path / name), "m", x)
    with open(files["plain"]["encodings"]) as a, open(files["folded"]["encodings"]) as b:
        assert json.load(a) == json.load(b)
    with torch.no_grad():
        want = folded.model(x)
        assert_same(want, plain.model(x), "folded sim")
    (got,) = ort_run(files["folded"]["qdq_onnx"], x)
    assert_same(got, want, "onnxruntime on the folded sim's QDQ graph")
