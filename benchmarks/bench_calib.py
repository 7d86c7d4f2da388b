"""Time the calibration layer: statistics updates against PyTorch, and the tf_enhanced search.

Rows (fp32 normal data, median of the repeats, interleaved with their baselines):

- ``minmax``: ``torch.ops.qsim.minmax`` vs ``torch.aminmax``;
- ``histogram``: one 2048-bin ``torch.ops.qsim.histogram`` pass (counts and min/max) over a
  range that covers the data vs ``torch.histc(x, 2048)`` (which also finds min/max itself);
- ``histogram_update``: a whole ``SqnrEncodingAnalyzer.update_stats`` on a batch its range
  covers (the steady state: one pass, then the merge) vs ``torch.histc(x, 2048)``;
- ``tf_enhanced``: one ``encodings_tf_enhanced`` search (8-bit, asymmetric and symmetric) over
  2048-bin histograms, per-tensor and for 512 channels (no baseline: targets only).

Targets (ISSUE 3): histogram update >= 5x torch.histc; per-tensor tf_enhanced search < 1 ms.

Usage::

    python benchmarks/bench_calib.py                   # 16M elements, 1 and 2 threads
    python benchmarks/bench_calib.py --quick           # smoke run: 1M elements, fewer repeats
    python benchmarks/bench_calib.py --size 4M --threads 1 --out /tmp/calib.json
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

from torchqsim.quantization import GridKind, SqnrEncodingAnalyzer

import timing

BINS = 2048
CHANNELS = 512
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "calib.json"
TARGETS = {"histogram_update": ("torch.histc ms / ours ms", 5.0),
           "tf_enhanced/per_tensor/asymmetric": ("ms", 1.0),
           "tf_enhanced/per_tensor/symmetric": ("ms", 1.0)}


def histogram_state(x, axis=None):
    """(counts, range, min, max) of `x` as an analyzer holds them after one batch."""
    lo, hi, _ = torch.ops.qsim.minmax(x, axis)
    shape = () if axis is None else (x.shape[axis],)
    counts, rng = torch.ops.qsim.histogram_grow(torch.zeros((*shape, BINS), dtype=torch.int64),
                                                torch.zeros((*shape, 2), dtype=torch.float64), lo, hi)
    return counts + torch.ops.qsim.histogram(x, rng, BINS, axis)[0], rng, lo, hi


def stats_rows(x, warmup, repeats):
    """minmax, histogram and histogram_update rows for data `x`."""
    _, rng, _, _ = histogram_state(x)
    analyzer = SqnrEncodingAnalyzer(num_bins=BINS)
    analyzer.update_stats(x)  # steady state: later batches within the range
    cases = {
        "minmax": {"ours": lambda: torch.ops.qsim.minmax(x), "torch.aminmax": lambda: torch.aminmax(x)},
        "histogram": {"ours": lambda: torch.ops.qsim.histogram(x, rng, BINS),
                      "torch.histc": lambda: torch.histc(x, BINS)},
        "histogram_update": {"ours": lambda: analyzer.update_stats(x),
                             "torch.histc": lambda: torch.histc(x, BINS)},
    }
    rows = []
    for case, fns in cases.items():
        ms = timing.time_row(fns, warmup, repeats)
        ours = ms.pop("ours")
        rows.append({"case": case, "ours_ms": ours, "baseline_ms": ms,
                     "ratio": {k: v / ours for k, v in ms.items()}})
    return rows


def search_rows(x, warmup, repeats):
    """tf_enhanced search rows: per-tensor over `x`, and 512 channels of a weight-like tensor."""
    per_tensor = histogram_state(x)
    weight = x[: CHANNELS * 4096].reshape(CHANNELS, -1) if x.numel() >= CHANNELS * 4096 else \
        torch.randn(CHANNELS, 4096)
    per_channel = histogram_state(weight, 0)
    rows = []
    for layout, state in (("per_tensor", per_tensor), (f"per_channel_{CHANNELS}", per_channel)):
        for grid in (GridKind.ASYMMETRIC, GridKind.SYMMETRIC):
            ms = timing.time_row(
                {"ours": lambda: torch.ops.qsim.encodings_tf_enhanced(*state, 8, int(grid))},
                warmup, repeats)
            rows.append({"case": f"tf_enhanced/{layout}/{grid.name.lower()}", "ours_ms": ms["ours"],
                         "baseline_ms": {}, "ratio": {}})
    return rows


def check(x):
    """The histogram update keeps every element: a guard that we time working code."""
    analyzer = SqnrEncodingAnalyzer(num_bins=BINS)
    analyzer.update_stats(x)
    analyzer.update_stats(x * 2)
    assert int(analyzer.counts.sum()) == 2 * x.numel(), "histogram update lost counts"


def format_table(rows):
    """One text table: ours ms and baseline ms / ours ms ratios."""
    head = ["case", "thr", "ours ms", "baseline", "base ms", "ratio"]
    lines = []
    for r in rows:
        base = next(iter(r["baseline_ms"]), "-")
        lines.append([r["case"], str(r["threads"]), f"{r['ours_ms']:.3f}", base,
                      f"{r['baseline_ms'][base]:.3f}" if base != "-" else "-",
                      f"{r['ratio'][base]:.2f}x" if base != "-" else "-"])
    return timing.text_table(head, lines, left=(0, 3))


def targets(rows):
    """Lines saying whether each target is met, per thread count."""
    out = []
    for r in rows:
        if r["case"] not in TARGETS:
            continue
        unit, goal = TARGETS[r["case"]]
        if unit == "ms":
            value, met = r["ours_ms"], r["ours_ms"] < goal
            out.append(f"{r['case']} ({r['threads']} thr): {value:.3f} ms, target < {goal} ms: "
                       f"{'met' if met else 'NOT met'}")
        else:
            value = r["ratio"]["torch.histc"]
            out.append(f"{r['case']} ({r['threads']} thr): {value:.2f}x torch.histc, target >= "
                       f"{goal}x: {'met' if value >= goal else 'NOT met'}")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1M elements, fewer repeats")
    parser.add_argument("--size", type=timing.parse_size,
                        help="elements (default 16M; 1M with --quick)")
    parser.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")],
                        default=[1, 2], help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON path ({DEFAULT_OUT})")
    args = parser.parse_args(argv)
    size = args.size or (1 << 20 if args.quick else 16 << 20)
    warmup, repeats = (1, 3) if args.quick else (2, 9)

    x = torch.randn(size, generator=torch.Generator().manual_seed(0))
    check(x)
    start = time.perf_counter()
    rows = []
    for n_threads in args.threads:
        torch.set_num_threads(n_threads)
        for row in stats_rows(x, warmup, repeats) + search_rows(x, warmup, repeats):
            rows.append({**row, "threads": n_threads, "size": size})
    elapsed = time.perf_counter() - start

    print(format_table(rows))
    print("\n" + "\n".join(targets(rows)))
    print(f"\n{size} fp32 normal values, {BINS} bins; median of {repeats} after {warmup} warm-up.")
    meta = {"torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "size": size,
            "threads": args.threads, "warmup": warmup, "repeats": repeats, "bins": BINS,
            "channels": CHANNELS, "quick": args.quick, "elapsed_s": elapsed}
    timing.write_json(args.out, {"meta": meta, "rows": rows})
    print(f"wrote {args.out} ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
