"""Time torchqsim quantize_dequantize against PyTorch fake-quant, a composite and a plain copy.

One run covers per-tensor and per-channel (axis 1 of an [N, 64, H, W] fp32 tensor) in three
modes (forward; forward + backward STE; forward + backward with range learning), for each size
and thread count. It prints one table and writes JSON (see benchmarks/README.md for reading it).

Usage::

    python benchmarks/run.py                      # 1M and 16M elements, 1 and 2 threads
    python benchmarks/run.py --quick              # smoke run: 1M only, fewer repeats
    python benchmarks/run.py --sizes 1M,4M --threads 1 --out /tmp/qdq.json
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from qdq_cases import BASELINES, check_forward, make_case

GRANULARITIES = ("per_tensor", "per_channel")
MODES = ("forward", "ste", "range")
CHANNELS = 64
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "qdq.json"
BUFFER_NOTE = ("input, upstream gradient and the outputs of copy_ and of the forward composite "
               "are preallocated once per row and reused; torchqsim and torch fake-quant ops "
               "allocate their outputs (no out= API)")


def parse_size(text):
    """Element count from ``"4096"``, ``"64K"`` or ``"16M"`` (binary multiples).

    Example::

        >>> parse_size("16M"), parse_size("4K"), parse_size("4096")
        (16777216, 4096, 4096)
    """
    units = {"K": 1 << 10, "M": 1 << 20}
    text = text.strip().upper()
    size = int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    if size <= 0 or size % CHANNELS:
        raise argparse.ArgumentTypeError(f"size must be a positive multiple of {CHANNELS}: {text}")
    return size


def nchw_shape(size):
    """An [N, 64, H, W] shape with `size` elements, H and W up to 64.

    Example::

        >>> nchw_shape(1 << 20), nchw_shape(4096)
        ((4, 64, 64, 64), (1, 64, 1, 64))
    """
    rest = size // CHANNELS
    width = math.gcd(rest, 64)
    height = math.gcd(rest // width, 64)
    return (rest // (width * height), CHANNELS, height, width)


def time_row(fns, warmup, repeats):
    """Median milliseconds of each callable, repeats interleaved so load drift hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(s) for name, s in samples.items()}


def run(sizes, threads, warmup, repeats):
    """Measure every (granularity, mode, size, threads) row; returns a list of dicts."""
    rows = []
    for size in sizes:
        shape = nchw_shape(size)
        for granularity in GRANULARITIES:
            check_forward(granularity, shape)
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            for granularity in GRANULARITIES:
                for mode in MODES:
                    ms = time_row(make_case(granularity, mode, shape), warmup, repeats)
                    ours = ms.pop("ours")
                    rows.append({
                        "case": f"{granularity}/{mode}", "granularity": granularity,
                        "mode": mode, "size": size, "shape": list(shape), "threads": n_threads,
                        "ours_ms": ours, "baseline_ms": ms,
                        "ratio": {k: v / ours for k, v in ms.items() if k != "copy"},
                        "copy_ratio": ours / ms["copy"],
                    })
    return rows


def _fmt_size(size):
    for unit, mult in (("M", 1 << 20), ("K", 1 << 10)):
        if size % mult == 0:
            return f"{size // mult}{unit}"
    return str(size)


def format_table(rows):
    """One text table: time of ours, baseline/ours ratios, ours/copy ratio."""
    ratio_cols = [b for b in BASELINES if b != "copy"]
    head = ["case", "size", "thr", "ours ms"] + [f"{b} x" for b in ratio_cols] + ["ours/copy"]
    lines = [[r["case"], _fmt_size(r["size"]), str(r["threads"]), f"{r['ours_ms']:.3f}"]
             + [f"{r['ratio'][b]:.2f}" if b in r["ratio"] else "-" for b in ratio_cols]
             + [f"{r['copy_ratio']:.2f}"] for r in rows]
    widths = [max(len(c) for c in col) for col in zip(head, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([fmt.format(*head), sep] + [fmt.format(*line) for line in lines])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: fewer repeats, 1M elements unless --sizes is given")
    parser.add_argument("--sizes", type=lambda s: [parse_size(v) for v in s.split(",")],
                        help="comma-separated element counts, e.g. 1M,16M (default)")
    parser.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")],
                        default=[1, 2], help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON path ({DEFAULT_OUT})")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([1 << 20] if args.quick else [1 << 20, 16 << 20])
    warmup, repeats = (1, 3) if args.quick else (2, 7)

    torch.manual_seed(0)
    start = time.perf_counter()
    rows = run(sizes, args.threads, warmup, repeats)
    elapsed = time.perf_counter() - start

    print(format_table(rows))
    print(f"\nratios: baseline ms / ours ms (> 1: ours faster); ours/copy: ours ms / out.copy_(x) "
          f"ms.\nmedian of {repeats} after {warmup} warm-up; buffers: {BUFFER_NOTE}.")
    meta = {"torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "sizes": sizes,
            "threads": args.threads, "warmup": warmup, "repeats": repeats, "quick": args.quick,
            "buffers": BUFFER_NOTE, "elapsed_s": elapsed}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out} ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
