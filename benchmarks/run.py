"""Time torchqsim quantize_dequantize against PyTorch fake-quant, a composite and a plain copy.

One run covers per-tensor and per-channel (axis 1 of an [N, 64, H, W] fp32 tensor) in three
modes (forward; forward + backward STE; forward + backward with range learning), for each size
and thread count, then the float formats (fp8 e4m3fn and MXFP4 forward, benchmarks/float_cases.py)
and per-channel along the last axis against axis 0 and torch (benchmarks/axis_cases.py). It prints one table and writes JSON (see benchmarks/README.md for reading it).

Usage::

    python benchmarks/run.py                      # 1M and 16M elements, 1 and 2 threads
    python benchmarks/run.py --quick              # smoke run: 1M only, fewer repeats
    python benchmarks/run.py --sizes 1M,4M --threads 1 --out /tmp/qdq.json
"""

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import timing

# Large tensors from torch's CPU allocator on transparent huge pages (read once, at torch's first
# allocation): a fresh 64 MiB output then costs 32 page faults instead of 16384, which on a VM
# otherwise take longer than the kernels. It applies to every method alike; set it to 0 to
# measure with 4 KiB pages.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import torch  # noqa: E402  (after the allocator setting)

import axis_cases  # noqa: E402
import float_cases  # noqa: E402
from qdq_cases import BASELINES, check_forward, make_case  # noqa: E402

GRANULARITIES = ("per_tensor", "per_channel")
MODES = ("forward", "ste", "range")
CHANNELS = 64
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "qdq.json"
BUFFER_NOTE = ("input, upstream gradient and the outputs of copy_, of the forward composite and "
               "of our forward (quantize_dequantize(..., out=buf)) are preallocated once per row "
               "and reused; ours_alloc is our forward allocating its output, like torch's "
               "fake-quant ops (no out= API); ours_in_place writes it into its own input "
               "(one buffer read and written, as the sim's activation quantizers); "
               "forward+backward rows allocate outputs and "
               "gradients in every method alike (autograd), from huge pages when "
               "THP_MEM_ALLOC_ENABLE=1 (the default here)")


def parse_size(text):
    """Element count from ``"4096"``, ``"64K"`` or ``"16M"`` (binary multiples), a multiple of 64.

    Example::

        >>> parse_size("16M"), parse_size("4K"), parse_size("4096")
        (16777216, 4096, 4096)
    """
    return timing.parse_size(text, multiple=CHANNELS)


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
                    ms = timing.time_row(make_case(granularity, mode, shape), warmup, repeats)
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
    """One text table: time of ours, baseline/ours ratios, ours/copy and in place/copy ratios."""
    ratio_cols = [b for b in BASELINES if b != "copy"]
    head = ["case", "size", "thr", "ours ms"] + [f"{b} x" for b in ratio_cols] + \
        ["ours/copy", "in place/copy"]
    lines = [[r["case"], _fmt_size(r["size"]), str(r["threads"]), f"{r['ours_ms']:.3f}"]
             + [f"{r['ratio'][b]:.2f}" if b in r["ratio"] else "-" for b in ratio_cols]
             + [f"{r['copy_ratio']:.2f}", _in_place_copy(r)] for r in rows]
    return timing.text_table(head, lines)


def _in_place_copy(row):
    """ours_in_place ms / copy ms of a forward row, as text ("-" for other rows)."""
    ms = row["baseline_ms"]
    return f"{ms['ours_in_place'] / ms['copy']:.2f}" if "ours_in_place" in ms else "-"


def thread_scaling(rows):
    """ours ms at the lowest thread count / ours ms at each higher one, per (case, size); and the
    same for ``copy_`` (``copy_speedup``), the memory-bandwidth ceiling of the scaling.

    Example::

        >>> thread_scaling([{"case": "a", "size": 4, "threads": 1, "ours_ms": 2.0,
        ...                  "baseline_ms": {"copy": 1.0}},
        ...                 {"case": "a", "size": 4, "threads": 2, "ours_ms": 1.0,
        ...                  "baseline_ms": {"copy": 0.8}}])
        [{'case': 'a', 'size': 4, 'threads': 2, 'speedup': 2.0, 'copy_speedup': 1.25}]
    """
    base = {}
    for r in sorted(rows, key=lambda r: r["threads"]):
        base.setdefault((r["case"], r["size"]), r)
    return [{"case": r["case"], "size": r["size"], "threads": r["threads"],
             "speedup": base[(r["case"], r["size"])]["ours_ms"] / r["ours_ms"],
             "copy_speedup": (base[(r["case"], r["size"])]["baseline_ms"]["copy"]
                              / r["baseline_ms"]["copy"])}
            for r in rows if r is not base[(r["case"], r["size"])]]


# The CPU targets of issue 7, as (what, row filter, value of a row, comparison, bound).
TARGETS = (
    ("forward time <= 1.25 x copy_", lambda r: r["mode"] == "forward",
     lambda r: r["copy_ratio"], "<=", 1.25),
    (">= 15x torch fake_quantize_*", lambda r: r["mode"] == "forward",
     lambda r: r["ratio"]["torch_fq"], ">=", 15.0),
    (">= 3x the torch composite", lambda r: r["mode"] == "forward",
     lambda r: r["ratio"]["composite"], ">=", 3.0),
    ("range learning >= 15x torch learnable", lambda r: r["mode"] == "range",
     lambda r: r["ratio"]["torch_fq_learnable"], ">=", 15.0),
)


def check_targets(rows, scaling):
    """Each target with the rows that miss it (reported, never asserted)."""
    out = []
    for what, keep, value, cmp, bound in TARGETS:
        missed = [f"{r['case']} {_fmt_size(r['size'])} t{r['threads']}: {value(r):.2f}"
                  for r in rows if keep(r)
                  and not (value(r) <= bound if cmp == "<=" else value(r) >= bound)]
        out.append({"target": what, "missed": missed})
    missed = [f"{s['case']} t{s['threads']}: {s['speedup']:.2f} (copy_ {s['copy_speedup']:.2f})"
              for s in scaling
              if s["size"] >= 16 << 20 and s["speedup"] < 1.7]
    out.append({"target": "2 threads >= 1.7x one thread at 16M", "missed": missed})
    return out


def print_targets(title, targets):
    """Prints each target as met, or MISSED with the rows that miss it."""
    print(title)
    for t in targets:
        print(f"  {'met   ' if not t['missed'] else 'MISSED'} {t['target']}"
              + (f": {'; '.join(t['missed'])}" if t["missed"] else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: fewer repeats, 1M elements unless --sizes is given")
    parser.add_argument("--sizes", type=lambda s: [parse_size(v) for v in s.split(",")],
                        help="comma-separated element counts, e.g. 1M,16M (default)")
    parser.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")],
                        default=[1, 2], help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON path ({DEFAULT_OUT})")
    parser.add_argument("--only", choices=("qdq", "float", "axis"),
                        help="only the integer qdq rows, the float-format rows or the axis rows")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([1 << 20] if args.quick else [1 << 20, 16 << 20])
    warmup, repeats = (1, 3) if args.quick else (2, 7)

    torch.manual_seed(0)
    start = time.perf_counter()
    rows = [] if args.only in ("float", "axis") else run(sizes, args.threads, warmup, repeats)
    float_rows = [] if args.only in ("qdq", "axis") else float_cases.run(sizes, args.threads,
                                                                         warmup, repeats)
    axis_rows = [] if args.only in ("qdq", "float") else axis_cases.run(sizes, args.threads,
                                                                        warmup, repeats)
    elapsed = time.perf_counter() - start

    scaling = thread_scaling(rows)
    targets = check_targets(rows, scaling)
    print(format_table(rows))
    print(f"\nratios: baseline ms / ours ms (> 1: ours faster); ours/copy: ours ms / out.copy_(x) "
          f"ms.\nmedian of {repeats} after {warmup} warm-up; buffers: {BUFFER_NOTE}.")
    if scaling:
        print("\nthread scaling (ms at the fewest threads / ms; ours, and copy_ in the same rows, "
              "the memory-bandwidth ceiling): " + ", ".join(
                  f"{s['case']} {_fmt_size(s['size'])} t{s['threads']} {s['speedup']:.2f} "
                  f"(copy_ {s['copy_speedup']:.2f})" for s in scaling))
    print_targets("\ntargets (issue 7, reported only):", targets)
    print("\nfloat formats, forward (ours allocates its output, as the composite and copy_fresh "
          "= x.clone() do; copy_reused = buf.copy_(x)):")
    print(timing.text_table(
        ["case", "size", "thr", "ours ms", "composite x", "ours/copy_fresh", "ours/copy_reused"],
        [[r["case"], _fmt_size(r["size"]), str(r["threads"]), f"{r['ours_ms']:.3f}",
          f"{r['composite_speedup']:.2f}", f"{r['copy_fresh_ratio']:.2f}",
          f"{r['copy_reused_ratio']:.2f}"] for r in float_rows]))
    float_targets = float_cases.check_targets(float_rows, _fmt_size)
    print_targets("targets (issue 16, reported only):", float_targets)
    axis_cases.print_rows(axis_rows, _fmt_size)
    axis_targets = axis_cases.check_targets(axis_rows, _fmt_size)
    print_targets("targets (issues 14 and 17, reported only):", axis_targets)
    meta = {"torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "sizes": sizes,
            "threads": args.threads, "warmup": warmup, "repeats": repeats, "quick": args.quick,
            "buffers": BUFFER_NOTE, "elapsed_s": elapsed,
            "THP_MEM_ALLOC_ENABLE": os.environ["THP_MEM_ALLOC_ENABLE"],
            "load_average": os.getloadavg()}
    timing.write_json(args.out, {"meta": meta, "rows": rows, "thread_scaling": scaling,
                                 "targets": targets, "float_rows": float_rows,
                                 "float_targets": float_targets, "axis_rows": axis_rows,
                                 "axis_targets": axis_targets})
    print(f"wrote {args.out} ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
