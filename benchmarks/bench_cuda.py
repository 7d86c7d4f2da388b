"""Time the CUDA qdq kernels against a device-to-device copy, the bandwidth floor of a
memory-bound op (issue 7 asks forward to reach 85 % of copy bandwidth at 64M elements).

Rows: fp32 ``[N, 64, H, W]`` data (``randn``, fixed seed), signed 8-bit grid, scale from max|x|,
non-zero zero point; per-tensor, and per-channel on axis 1:

- ``*/forward``: ``quantize_dequantize``; moves 8 bytes per element (read x, write y);
- ``*/ste``: ``quantize_dequantize_backward`` for x only; 12 bytes (read x and dy, write dx);
- ``*/range``: the same with the scale and zero-point gradients (range learning); 12 bytes.

Two timings of ours per row:

- ``op_ms``: CUDA events around the op call (median of the repeats), what a caller sees. It
  includes the argument checks, which copy scale and zero_point to the host and so synchronise
  once per call;
- ``ours_ms``: the GPU time of the op's kernels alone (torch.profiler, mean per call), without
  that round trip.

Forward rows also time torch's own ``fake_quantize_per_tensor_affine`` /
``fake_quantize_per_channel_affine`` on the same data (``torch_ms``, CUDA events, and
``torch_over_ours`` = its time / our op time), and are repeated on bf16 data
(``*/forward_bf16``: 4 bytes per element, read and written in bf16, against a bf16 copy).

The baseline is ``out.copy_(x)`` on the same tensor (8 bytes per element, preallocated, timed
with CUDA events). Inputs and the upstream gradient are allocated once; our ops allocate their
outputs from torch's caching allocator. Bandwidth = bytes moved / time, and
``ratio_to_copy`` = our kernel bandwidth / copy bandwidth (for forward rows: copy time / our
time). Without a CUDA GPU the script says it needs one and exits 0.

Usage::

    python benchmarks/bench_cuda.py                          # 64M elements
    python benchmarks/bench_cuda.py --size 16M --repeats 50 --out /tmp/cuda.json
"""

import argparse
import statistics
import sys
from pathlib import Path

import torch

import timing
from run import nchw_shape, parse_size  # also imports torchqsim, which registers the qsim ops

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "cuda.json"
QMIN, QMAX = -128, 127
MODES = {"forward": 8, "ste": 12, "range": 12}  # mode: bytes moved per element


def qparams(granularity, x):
    """(scale, int32 zero_point, axis) of a row, on the GPU."""
    if granularity == "per_tensor":
        scale, zero_point, axis = (x.abs().amax() / QMAX).reshape(()), torch.tensor(5), None
    else:
        scale, zero_point, axis = x.abs().amax(dim=(0, 2, 3)) / QMAX, torch.arange(64) % 21 - 10, 1
    return scale.float().cuda(), zero_point.to(torch.int32).cuda(), axis


def make_torch_fn(granularity, x):
    """torch's fake-quantize op on the row's data and qparams."""
    scale, zero_point, axis = qparams(granularity, x)
    if axis is None:
        return lambda: torch.fake_quantize_per_tensor_affine(x, scale, zero_point, QMIN, QMAX)
    return lambda: torch.fake_quantize_per_channel_affine(x, scale, zero_point, axis, QMIN, QMAX)


def make_row_fns(granularity, mode, x, dy):
    """The timed callable of one row: our op on preallocated x (and dy)."""
    scale, zero_point, axis = qparams(granularity, x)
    if mode.startswith("forward"):
        return lambda: torch.ops.qsim.quantize_dequantize(x, scale, zero_point, QMIN, QMAX, axis)
    if mode == "range":
        zero_point = zero_point.float()
    return lambda: torch.ops.qsim.quantize_dequantize_backward(
        dy, x, scale, zero_point, QMIN, QMAX, axis, None, mode == "range")


def event_ms(fn, repeats):
    """Median milliseconds of fn between two CUDA events."""
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def kernel_ms(fn, repeats):
    """Mean milliseconds per call of the GPU kernels fn launches (memcpy and memset left out),
    from torch.profiler; None when the profiler reports no kernels."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(repeats):
            fn()
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA
               and not e.name.startswith(("Memcpy", "Memset"))]
    if not kernels:
        return None
    return sum(e.time_range.elapsed_us() for e in kernels) / repeats / 1e3


def warm_event_ms(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    return event_ms(fn, repeats)


def run(size, warmup, repeats):
    gen = torch.Generator(device="cuda").manual_seed(0)
    shape = nchw_shape(size)
    data = {"fp32": torch.randn(shape, device="cuda", generator=gen)}
    data["bf16"] = data["fp32"].bfloat16()
    dy = torch.randn(shape, device="cuda", generator=gen)
    copy_ms = {}
    for dtype, x in data.items():
        out = torch.empty_like(x)
        copy_ms[dtype] = warm_event_ms(lambda x=x, out=out: out.copy_(x), warmup, repeats)
    rows = []
    modes = [(m, b, "fp32") for m, b in MODES.items()] + [("forward_bf16", 4, "bf16")]
    for granularity in ("per_tensor", "per_channel"):
        for mode, bytes_per, dtype in modes:
            x = data[dtype]
            fn = make_row_fns(granularity, mode, x, dy)
            op = warm_event_ms(fn, warmup, repeats)
            kernel = kernel_ms(fn, repeats)
            ours = op if kernel is None else kernel
            moved = bytes_per * size
            gbps, copy_gbps = moved / ours / 1e6, 2 * x.element_size() * size / copy_ms[dtype] / 1e6
            row = {"case": f"{granularity}/{mode}", "size": size, "shape": list(shape),
                   "bytes_per_element": bytes_per, "ours_ms": ours, "op_ms": op,
                   "ours_timed_by": "profiler" if kernel is not None
                   else "events (the profiler saw no kernels)",
                   "copy_ms": copy_ms[dtype], "ours_GBps": gbps, "op_GBps": moved / op / 1e6,
                   "copy_GBps": copy_gbps, "ratio_to_copy": gbps / copy_gbps}
            if mode.startswith("forward"):
                row["torch_ms"] = warm_event_ms(make_torch_fn(granularity, x), warmup, repeats)
                row["torch_over_ours"] = row["torch_ms"] / op
            rows.append(row)
    return rows


def format_table(rows):
    head = (f"{'case':<26}{'elements':>10}{'kernel ms':>11}{'op ms':>9}{'copy ms':>9}"
            f"{'kernel GB/s':>13}{'op GB/s':>9}{'copy GB/s':>11}{'kernel/copy':>13}"
            f"{'torch/op':>10}")
    lines = [head, "-" * len(head)]
    for r in rows:
        torch_col = f"{r['torch_over_ours']:>10.2f}" if "torch_over_ours" in r else f"{'-':>10}"
        lines.append(f"{r['case']:<26}{r['size']:>10}{r['ours_ms']:>11.3f}{r['op_ms']:>9.3f}"
                     f"{r['copy_ms']:>9.3f}{r['ours_GBps']:>13.0f}{r['op_GBps']:>9.0f}"
                     f"{r['copy_GBps']:>11.0f}{r['ratio_to_copy']:>13.2f}{torch_col}")
    return "\n".join(lines)


def no_gpu(script):
    """True, after saying so, when there is no CUDA GPU (the GPU benchmarks then exit 0)."""
    if torch.cuda.is_available():
        return False
    print(f"{script}: needs a CUDA GPU and a CUDA build of torch "
          f"(torch {torch.__version__}, CUDA {torch.version.cuda}): nothing timed")
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("64M"),
                        help="elements, a multiple of 64 (e.g. 4096, 64K, 64M); default 64M")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    args = parser.parse_args(argv)
    if no_gpu("bench_cuda"):
        return 0
    rows = run(args.size, args.warmup, args.repeats)
    device = torch.cuda.get_device_name()
    print(f"bench_cuda on {device}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    print(format_table(rows))
    timing.write_json(args.out, {"device": device, "torch": torch.__version__,
                                 "cuda": torch.version.cuda, "repeats": args.repeats,
                                 "rows": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
