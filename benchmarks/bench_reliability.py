"""Figures of issue 14 (reliability), as ratios or against their targets; asserts nothing.

- per-channel fake-quant along the last axis vs axis 0, same element count (forward, 1 thread,
  fresh outputs as modules get them; the last axis runs the row kernels of kernels/qdq/qdq_layout.c),
  and axis 0 against ``x.clone()`` (the fresh-output floor);
- seconds to parse 40,000 op types of a quantsim config and 40,000 entries of a 0.6.1 encodings
  file (the readers were quadratic in the number of keys of one object; target < 1 s);
- peak memory of reading an encodings file (``torchqsim.encodings.read_encodings``, measured
  in a fresh process as its peak RSS during the read above its RSS before, Linux's VmHWM after a
  reset) against the file's size (target <= 4x); the dict it returns is included.

Usage::

    python benchmarks/bench_reliability.py            # prints a table, writes JSON
    python benchmarks/bench_reliability.py --quick
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import timing

import torch  # noqa: E402

import torchqsim  # noqa: E402
from torchqsim import _io  # noqa: E402
from torchqsim import functional as F  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "reliability.json"


def last_axis_rows(rows, cols, warmup, repeats):
    """Median ms of per-channel qdq on axis 0 of [cols, rows] and on the last axis of
    [rows, cols] (cols channels either way), each allocating its output, and of ``x.clone()``."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    scale = torch.rand(cols) * 0.05 + 0.01
    zp = torch.randint(-5, 6, (cols,), dtype=torch.int32)
    x_last, x_first = torch.randn(rows, cols), torch.randn(cols, rows)
    return timing.time_row({
        "axis0": lambda: F.quantize_dequantize(x_first, scale, zp, -128, 127, axis=0),
        "last_axis": lambda: F.quantize_dequantize(x_last, scale, zp, -128, 127, axis=1),
        "clone": lambda: x_last.clone(),
    }, warmup, repeats)


def _config_text(n):
    ops = ", ".join(f'"Op{i}": {{"is_output_quantized": "False"}}' for i in range(n))
    return ('{"defaults": {"ops": {}, "params": {}}, "params": {}, "op_type": {' + ops +
            '}, "supergroups": [], "model_input": {}, "model_output": {}}')


def _encodings_text(n, channels=1):
    chan = ('{"bitwidth": 8, "dtype": "int", "is_symmetric": "False", "max": 0.9960938, '
            '"min": -1.0, "offset": -128, "scale": 0.0078125}')
    entries = ", ".join(f'"t{i}": [{", ".join([chan] * channels)}]' for i in range(n))
    return '{"version": "0.6.1", "activation_encodings": {' + entries + '}, "param_encodings": {}}'


def parse_seconds(n):
    """Seconds to parse n op types (config) and n 0.6.1 entries (encodings)."""
    out = {}
    text = _config_text(n)
    start = time.perf_counter()
    _io.parse_config(text)
    out["config_op_types"] = time.perf_counter() - start
    text = _encodings_text(n)
    start = time.perf_counter()
    _io.read_encodings(text)
    out["encodings_entries"] = time.perf_counter() - start
    return out


# Peak RSS during the read above the RSS before it: Linux resets the high-water mark (VmHWM) on
# writing 5 to /proc/self/clear_refs, so the peak of importing torch does not hide the read's.
_PEAK = """
import sys
from torchqsim import _io
def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
_io.read_encodings(sys.argv[1])
print((status("VmHWM") - before) * 1024)
"""


def peak_memory(n, channels):
    """(file bytes, peak RSS growth in bytes) of reading a 0.6.1 file of n entries."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "big.encodings")
        Path(path).write_text(_encodings_text(n, channels))
        grown = int(subprocess.check_output([sys.executable, "-c", _PEAK, path]))
        return os.path.getsize(path), grown


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    warmup, repeats = (1, 3) if args.quick else (2, 9)
    layout = last_axis_rows(1 << 14, 64, warmup, repeats)
    parse = parse_seconds(40000)
    size, peak = peak_memory(20000 if args.quick else 100000, 16)
    lines = [
        ["per-channel last axis / axis 0 (16K x 64 fp32, 1 thread, fresh outputs)",
         f"{layout['last_axis'] / layout['axis0']:.2f}x"],
        ["per-channel axis 0 / x.clone()", f"{layout['axis0'] / layout['clone']:.2f}x"],
        ["parse 40,000 config op types", f"{parse['config_op_types']:.3f} s"],
        ["parse 40,000 0.6.1 encodings entries", f"{parse['encodings_entries']:.3f} s"],
        [f"peak memory reading a {size / 2**20:.1f} MiB encodings file / its size",
         f"{peak / size:.2f}x"],
    ]
    print(timing.text_table(["figure", "value"], lines))
    timing.write_json(args.out, {"torchqsim": torchqsim.__version__, "layout_ms": layout,
                                 "parse_s": parse, "file_bytes": size, "peak_rss_bytes": peak})
    return 0


if __name__ == "__main__":
    sys.exit(main())
