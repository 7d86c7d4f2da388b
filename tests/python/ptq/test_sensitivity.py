"""`QuantAnalyzer.analyze` writes its files (JSON, CSV, PNG, HTML): the PNGs are valid images
(Pillow decodes them), the HTML links only files that exist, and the per-layer weight-only SQNR
of the first layer matches a direct computation with the sim's own weight encoding."""

import csv
import json
import re

import torch
from PIL import Image

import torchqsim.functional as F
from ptq_task import accuracy
from torchqsim.ptq import QuantAnalyzer
from torchqsim.ptq.sensitivity import sqnr_db


def test_sensitivity_analysis_writes_tables_plots_and_report(trained_mlp, tmp_path):
    fp, train, test = trained_mlp
    x = test[0][:64]
    qa = QuantAnalyzer(fp, x, lambda m: m(train[0][:512]), lambda m: accuracy(m, test))
    res = qa.analyze(quant_scheme="tf", default_param_bw=4, results_dir=str(tmp_path / "out"),
                     config_file="default", progress=False)  # per-tensor weights
    out = tmp_path / "out"
    files = sorted(p.name for p in out.iterdir())
    assert files == res["files"]
    for name in ("sensitivity.json", "per_layer.csv", "encodings_min_max.csv", "index.html",
                 "per_layer_accuracy.png", "per_layer_sqnr.png", "activation_ranges.png",
                 "hist_0.png", "hist_2.png", "hist_4.png"):
        assert name in files, name
    for name in files:
        if name.endswith(".png"):
            with Image.open(out / name) as img:
                img.verify()
                assert img.format == "PNG" and img.size[0] > 100 and img.size[1] > 100
    assert json.loads((out / "sensitivity.json").read_text()) == res
    rows = list(csv.DictReader((out / "per_layer.csv").open()))
    assert [r["layer"] for r in rows] == ["0", "1", "2", "3", "4"]
    page = (out / "index.html").read_text()
    links = set(re.findall(r'(?:href|src)="([^"]+)"', page))
    assert links and links <= set(files), links - set(files)
    assert res["model"]["fp32"]["score"] == accuracy(fp, test)
    assert res["model"]["fp32"]["sqnr_db"] is None                     # no noise at all
    assert res["model"]["quantized"]["sqnr_db"] < res["model"]["activations_only"]["sqnr_db"]
    # Oracle for "only this layer, weights only": quantize layer 0's weight by hand with the
    # weight encoding the analysis recorded (per-tensor signed 4-bit, zero point 0).
    enc = next(e for e in res["encodings"] if e["module"] == "0" and e["slot"] == "param weight")
    scale = torch.tensor(enc["max"] / 7)
    w = fp[0].weight
    with torch.no_grad():
        wq = F.quantize_dequantize(w, scale, 0, -8, 7)
        y = torch.nn.functional.linear(x, wq, fp[0].bias)
        expected = sqnr_db(fp(x), fp[1:](y))
    got = res["layers"]["0"]["weights_only"]["sqnr_db"]
    assert abs(got - expected) < 1e-3 * abs(expected), (got, expected)
