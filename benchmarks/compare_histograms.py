"""Accuracy (not speed) of the two tf_enhanced histograms: aimet-torch 2.42's (``"aimet"``: 512
bins fixed by the first batch, later batches clipped to 3x its range) against torchqsim's no-drop
histogram (``"growing"``: 2048 bins that grow with the data), on calibration sets where a later
batch widens the range.

For each data set, both analyzers calibrate on the same batches (8-bit, asymmetric and
symmetric); the row reports each encoding's range and its SQNR (dB) over all the calibration
data (quantize-dequantize with that encoding), and the difference growing - aimet. docs/aimet.md
§4.1 holds a measured table.

Usage::

    python benchmarks/compare_histograms.py               # markdown table on stdout
    python benchmarks/compare_histograms.py --out /tmp/hist.json
"""

import argparse
import json
import math

import torch

from torchqsim import functional as F
from torchqsim.quantization.scheme import QuantScheme

N = 1 << 16


def _batches(name: str, g: torch.Generator) -> list:
    """Three batches of data set `name` (the widening comes in the second or third)."""
    normal = lambda s=1.0: torch.randn(N, generator=g) * s  # noqa: E731
    if name == "normal, 2nd batch 4x":
        return [normal(), normal(4.0), normal()]
    if name == "normal, 3rd batch 10x":
        return [normal(), normal(), normal(10.0)]
    if name == "relu, 2nd batch 4x":
        return [normal().relu(), normal(4.0).relu(), normal().relu()]
    if name == "laplace, outliers in 3rd":
        lap = torch.distributions.Laplace(0.0, 1.0)
        third = lap.sample((N,))
        third[:64] = 40.0 * torch.rand(64, generator=g) - 20.0
        return [lap.sample((N,)), lap.sample((N,)), third]
    if name == "same scale (control)":
        return [normal(), normal(), normal()]
    raise ValueError(name)


DATA_SETS = ["same scale (control)", "normal, 2nd batch 4x", "normal, 3rd batch 10x",
             "relu, 2nd batch 4x", "laplace, outliers in 3rd"]


def _sqnr(x: torch.Tensor, enc, qmin: int, qmax: int) -> float:
    y = F.quantize_dequantize(x, enc.scale, enc.zero_point.float(), qmin, qmax)
    noise = float(((x - y) ** 2).mean())
    return 10 * math.log10(float((x ** 2).mean()) / noise) if noise > 0 else math.inf


def measure(name: str, symmetric: bool) -> dict:
    """Both histograms' encodings of data set `name` and their SQNR over all its data."""
    torch.manual_seed(0)
    batches = _batches(name, torch.Generator().manual_seed(0))
    data = torch.cat(batches)
    qmin, qmax = (-128, 127) if symmetric else (0, 255)
    row = {"data": name, "grid": "symmetric" if symmetric else "asymmetric",
           "observed": [float(data.min()), float(data.max())]}
    for hist in ("aimet", "growing"):
        analyzer = QuantScheme.post_training_tf_enhanced.analyzer((), tf_enhanced_histogram=hist)
        for b in batches:
            analyzer.update_stats(b)
        enc = analyzer.compute_encodings(8, symmetric)
        row[hist] = {"min": float(enc.min), "max": float(enc.max),
                     "sqnr_db": _sqnr(data, enc, qmin, qmax)}
    row["sqnr_gain_db"] = row["growing"]["sqnr_db"] - row["aimet"]["sqnr_db"]
    return row


def markdown(rows: list) -> str:
    lines = ["| data | grid | observed range | aimet range | aimet SQNR dB | growing range | "
             "growing SQNR dB | growing - aimet dB |", "|" + "---|" * 8]
    for r in rows:
        rng = lambda d: f"[{d['min']:.3g}, {d['max']:.3g}]"  # noqa: E731
        lines.append(f"| {r['data']} | {r['grid']} | [{r['observed'][0]:.3g}, "
                     f"{r['observed'][1]:.3g}] | {rng(r['aimet'])} | {r['aimet']['sqnr_db']:.2f} | "
                     f"{rng(r['growing'])} | {r['growing']['sqnr_db']:.2f} | "
                     f"{r['sqnr_gain_db']:+.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = [measure(name, sym) for name in DATA_SETS for sym in (False, True)]
    print(markdown(rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
