"""The last-axis rows of benchmarks/run.py: per-channel fake-quant along the last axis of an
[N, C] tensor (an activation, or a Linear weight stored transposed) against the same values
along axis 0 of its [C, N] transpose, and against torch's per-channel fake-quant on the same
last-axis tensor, in the same run.

Every method allocates its outputs (fresh, as modules and autograd run them): ``forward`` is one
call without autograd; ``ste`` adds the backward for x; ``range`` the backward for x, a float
scale and a float zero point (torch: ``_fake_quantize_learnable_per_channel_affine``). The
figures are ``last/axis0`` = last-axis ms / axis-0 ms (issues 14 and 17: <= 1.2) and
``torch/last`` = torch ms / our last-axis ms (> 1: ours faster).

Example::

    >>> rows = run([4096], [1], warmup=0, repeats=1, channels=(64,))
    >>> sorted(r["case"] for r in rows)
    ['last_axis/forward', 'last_axis/range', 'last_axis/ste']
"""

import torch

import torchqsim.functional as F

QMIN, QMAX = -128, 127
CHANNELS = (64, 1024)
MODES = ("forward", "ste", "range")


def _qparams(x_last, learn):
    """Per-channel scale from max|x| and a non-zero zero point (float when learned)."""
    gen = torch.Generator().manual_seed(1)
    scale = x_last.abs().amax(dim=0) / QMAX
    zero_point = torch.randint(-10, 11, scale.shape, generator=gen, dtype=torch.int32)
    if learn:
        return scale.clone().requires_grad_(), zero_point.float().requires_grad_()
    return scale, zero_point


def _ours(axis):
    return lambda x, s, zp: F.quantize_dequantize(x, s, zp, QMIN, QMAX, axis)


def _torch(learn):
    if learn:
        return lambda x, s, zp: torch._fake_quantize_learnable_per_channel_affine(
            x, s, zp, x.dim() - 1, QMIN, QMAX)
    return lambda x, s, zp: torch.fake_quantize_per_channel_affine(x, s, zp, x.dim() - 1,
                                                                   QMIN, QMAX)


def make_case(mode, size, channels):
    """``{"last": fn, "axis0": fn, "torch": fn, "clone": fn}`` for one row; fn runs one iteration.

    ``last`` quantizes x of shape [size/channels, channels] along axis -1, ``axis0`` the same
    values as a contiguous [channels, size/channels] tensor along axis 0, ``torch`` is torch's
    op on the last-axis tensor, ``clone`` is ``x.clone()`` (the fresh-output floor).
    """
    gen = torch.Generator().manual_seed(0)
    x_last = torch.randn(size // channels, channels, generator=gen)
    x_first = x_last.t().contiguous()
    learn = mode == "range"
    scale, zero_point = _qparams(x_last, learn)
    fns = {"last": (_ours(-1), x_last), "axis0": (_ours(0), x_first),
           "torch": (_torch(learn), x_last)}
    out = {"clone": torch.no_grad()(lambda: x_last.clone())}
    for name, (fn, x) in fns.items():
        if mode == "forward":
            out[name] = torch.no_grad()(lambda fn=fn, x=x: fn(x, scale, zero_point))
            continue
        x = x.detach().requires_grad_()
        dy = torch.randn(x.shape, generator=gen)
        inputs = [x, scale, zero_point] if learn else [x]
        out[name] = lambda fn=fn, x=x, dy=dy, inputs=inputs: torch.autograd.grad(
            fn(x, scale, zero_point), inputs, dy)
    return out


def check(size, channels):
    """Raise unless the last-axis forward equals the axis-0 forward transposed, bit for bit."""
    fns = make_case("forward", size, channels)
    last, first = fns["last"](), fns["axis0"]()
    if not torch.equal(last, first.t()):
        raise AssertionError(f"last axis differs from axis 0 at {size} elements, {channels} ch")


def run(sizes, threads, warmup, repeats, channels=CHANNELS):
    """One row per (mode, size, channels, threads) with the two ratios; see the module doc."""
    import timing
    rows = []
    for size in sizes:
        for ch in channels:
            check(size, ch)
            for n_threads in threads:
                torch.set_num_threads(n_threads)
                for mode in MODES:
                    ms = timing.time_row(make_case(mode, size, ch), warmup, repeats)
                    rows.append({"case": f"last_axis/{mode}", "mode": mode, "size": size,
                                 "channels": ch, "threads": n_threads, "ms": ms,
                                 "last_over_axis0": ms["last"] / ms["axis0"],
                                 "torch_over_last": ms["torch"] / ms["last"],
                                 "last_over_clone": ms["last"] / ms["clone"]})
    return rows


def check_targets(rows, fmt_size):
    """The last-axis targets with the rows that miss them (reported, never asserted)."""
    def label(r):
        return f"{r['mode']} {fmt_size(r['size'])} C{r['channels']} t{r['threads']}"
    return [
        {"target": "last axis <= 1.2x axis 0 (fresh outputs)",
         "missed": [f"{label(r)}: {r['last_over_axis0']:.2f}" for r in rows
                    if r["last_over_axis0"] > 1.2]},
        {"target": "last axis faster than torch per-channel fake-quant",
         "missed": [f"{label(r)}: {r['torch_over_last']:.2f}" for r in rows
                    if r["torch_over_last"] <= 1.0]},
    ]


def print_rows(rows, fmt_size):
    """Prints the rows as a table (see the module doc for the columns)."""
    import timing
    print("\nper-channel along the last axis of [N, C] vs axis 0 of [C, N] and vs torch, all "
          "outputs fresh (last/axis0 = ms ratio, <= 1.2 wanted; torch/last > 1: ours faster):")
    print(timing.text_table(
        ["case", "size", "C", "thr", "last ms", "last/axis0", "torch/last", "last/clone"],
        [[r["case"], fmt_size(r["size"]), str(r["channels"]), str(r["threads"]),
          f"{r['ms']['last']:.3f}", f"{r['last_over_axis0']:.2f}", f"{r['torch_over_last']:.2f}",
          f"{r['last_over_clone']:.2f}"] for r in rows]))
