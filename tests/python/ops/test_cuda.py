"""CUDA twins of the qsim op tests: the CUDA kernels against the CPU kernels, which are the oracle
(they are checked against the pure-torch reference, onnxruntime and the C reference elsewhere).
The calibration statistics have their own file, test_cuda_stats.py.

- forward (quantize_dequantize, quantize, dequantize; per-tensor, per-channel, blockwise; fp32,
  fp16 and bf16 data), the STE backward and the fp16/bf16 fake casts equal the CPU results bit
  for bit (a NaN matches any NaN: GPU arithmetic returns a canonical NaN);
- the range-learning gradients of scale and zero_point are within the bound that
  kernels/include/qsim/qdq_cuda.h states, ``2^-23 * max(|cuda|, |cpu|) + n_g * 2^-52 * A`` (n_g
  elements per qparam entry, A the sum of the magnitudes of their terms), and reproducible run to
  run; their dx equals the CPU's bit for bit.

Everything that runs a kernel needs a GPU and a CUDA build of torch and is skipped otherwise.
The statistics kernels' CUDA tests are in tests/python/ops/test_cuda_stats.py.
`test_check_cuda_script` runs anywhere: it compiles the CUDA sources with nvcc
(scripts/check_cuda.sh) and is skipped only when nvcc is absent. The benchmark smoke tests cover
both machines.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import torchqsim  # noqa: F401  (registers the qsim ops)
from asserts import assert_same, assert_within
from qdq_cases import LAYOUTS, grid_data, make_qparams, qparam_shape, with_specials
from reference import expand_qparam, reduce_to_qparam

ROOT = Path(__file__).resolve().parents[3]
HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU and a CUDA build of torch")

QMIN, QMAX = -128, 127
OPS = ("quantize_dequantize", "quantize", "dequantize")
DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# (shape, axis, block_size): the shared small layouts, then tensors that span many blocks of the
# element-wise kernels and several 2048-element reduction chunks per group, including channels
# on the last axis (group elements strided) and blocks along the first axis.
CASES = [((4, 6, 20), *layout) for layout in LAYOUTS.values()] + [
    ((8, 64, 33, 17), None, None),
    ((8, 64, 33, 17), 1, None),
    ((8, 64, 33, 17), 0, None),
    ((8, 64, 33, 17), -1, None),
    ((8, 64, 33, 17), 1, 16),
    ((8, 64, 33, 17), 0, 4),
    ((5000, 12), -1, None),
    ((5000, 12), 0, 2500),
    ((5000, 12), -1, 4),
]


def case_id(case):
    shape, axis, block = case
    return "x".join(map(str, shape)) + f"-axis{axis}-block{block}"


def make_inputs(case, op, seed, edge_cases=True):
    """(x, scale, zero_point) on the CPU: data on and off the grid, and with `edge_cases` exact
    rounding ties, NaN, +-Inf, signed zeros and subnormals. Dequantize gets grid integers.
    Without edge cases every grid position is 0.1 away from a tie, so fp32 and float64 round
    alike (the tolerance bounds of the reductions are computed in float64)."""
    shape, axis, block = case
    gen = torch.Generator().manual_seed(seed)
    scale, zp = make_qparams(gen, shape, axis, block, QMIN, QMAX)
    if op == "dequantize":
        x = torch.randint(QMIN, QMAX + 1, shape, generator=gen).float()
    else:
        x = grid_data(gen, shape, scale, zp, QMIN, QMAX, axis, block)
    if not edge_cases:
        return x, scale, zp
    ties = (torch.randint(-140, 140, shape, generator=gen) + 0.5) * \
        expand_qparam(scale, shape, axis, block)
    x = torch.where(torch.rand(shape, generator=gen) < 0.25, ties, x)
    return with_specials(x), scale, zp


def grid_args(op, case):
    """The op's arguments after (x, scale, zero_point)."""
    _, axis, block = case
    return (axis, block) if op == "dequantize" else (QMIN, QMAX, axis, block)


def on_cuda(*tensors):
    return tuple(t.cuda() for t in tensors)


def abs_term_sums(op, x, dy, scale, zp, case):
    """Per qparam entry, the sum A of |term| of the scale and zero-point gradients (float64, the
    formulas of kernels/include/qsim/qdq.h)."""
    shape, axis, block = case
    s = expand_qparam(scale.double(), shape, axis, block)
    z = expand_qparam(zp.double(), shape, axis, block)
    xd, g = x.double(), dy.double()
    if op == "dequantize":
        ts, tz = g * (xd - z), g * s
    else:
        t = xd / s
        pos = torch.round(t) + z
        m = (pos >= QMIN) & (pos <= QMAX)
        if op == "quantize":
            ts, tz = torch.where(m, g / s * t, 0.0), torch.where(m, g, 0.0)
        else:
            qz = torch.where(pos.isnan(), QMIN, pos.clamp(QMIN, QMAX)) - z  # NaN clamps to qmin
            ts, tz = g * torch.where(m, qz - t, qz), torch.where(m, 0.0, g * s)
    pshape = qparam_shape(shape, axis, block)
    return (reduce_to_qparam(ts.abs(), pshape, axis, block),
            reduce_to_qparam(tz.abs(), pshape, axis, block))


def reduction_bound(got, want, abs_sum, group_size):
    """The tolerance of qsim_cuda_backward_reduce_f32 (qsim/qdq_cuda.h)."""
    return (2.0 ** -23 * torch.maximum(got.double().abs(), want.double().abs())
            + group_size * 2.0 ** -52 * abs_sum)


# ---- forward -------------------------------------------------------------------------------

def forward_both(op, case, x, scale, zp):
    """torch.ops.qsim.<op> on CUDA (brought back to the CPU) and on the CPU."""
    fn = getattr(torch.ops.qsim, op)
    got = fn(*on_cuda(x, scale, zp), *grid_args(op, case))
    assert got.device.type == "cuda"
    return got.cpu(), fn(x, scale, zp, *grid_args(op, case))


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_forward_matches_cpu_bit_for_bit(case, op, dtype):
    x, scale, zp = make_inputs(case, op, seed=1)
    got, want = forward_both(op, case, x.to(dtype), scale, zp)
    assert_same(got, want, f"{op} {case_id(case)} {dtype}")


@needs_cuda
@pytest.mark.parametrize("op", OPS)
def test_forward_float_zero_point_and_scale_dtypes(op):
    case = ((8, 64, 33, 17), 1, None)
    x, scale, zp = make_inputs(case, op, seed=2)
    got, want = forward_both(op, case, x, scale.double(), zp.float())
    assert_same(got, want, op)


@needs_cuda
@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16), ids=str)
def test_fake_cast_matches_cpu_bit_for_bit(dtype):
    gen = torch.Generator().manual_seed(3)
    bits = torch.randint(-2 ** 31, 2 ** 31, (1 << 20,), generator=gen, dtype=torch.int64)
    x = bits.to(torch.int32).view(torch.float32)
    edges = torch.tensor([0.0, -0.0, math.inf, -math.inf, math.nan, 65504.0, 65519.99, 65520.0,
                          -65520.0, 2.98e-8, 5.96e-8, 1e-45, 3.4028235e38, -3.4028235e38])
    x = torch.cat([edges, x])
    want = torch.ops.qsim.float_quantize_dequantize(x, dtype)
    got = torch.ops.qsim.float_quantize_dequantize(x.cuda(), dtype)
    assert_same(got.cpu(), want, f"cast {dtype}")
    for data_dtype in (torch.float16, torch.bfloat16):  # half data comes back in its dtype
        xh = x[torch.isfinite(x)][:4096].to(data_dtype)
        assert_same(torch.ops.qsim.float_quantize_dequantize(xh.cuda(), dtype).cpu(),
                    torch.ops.qsim.float_quantize_dequantize(xh, dtype), f"{data_dtype} data")


# ---- backward ------------------------------------------------------------------------------

def backward_both(op, case, x, scale, zp, dy, qparam_grads):
    fn = getattr(torch.ops.qsim, f"{op}_backward")
    want = fn(dy, x, scale, zp, *grid_args(op, case), qparam_grads)
    got = fn(*on_cuda(dy, x, scale, zp), *grid_args(op, case), qparam_grads)
    return [g.cpu() for g in got], want


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_ste_backward_matches_cpu_bit_for_bit(case, op, dtype):
    x, scale, zp = make_inputs(case, op, seed=4)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    got, want = backward_both(op, case, x.to(dtype), scale, zp, dy, qparam_grads=False)
    for name, g, w in zip(("dx", "dscale", "dzero_point"), got, want):
        assert_same(g, w, f"{op} {case_id(case)} {name}")


@needs_cuda
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_range_learning_backward_within_stated_tolerance(case, op):
    x, scale, zp = make_inputs(case, op, seed=6, edge_cases=False)
    zp = zp.float()  # a learned zero point
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    (dx, ds, dz), (want_dx, want_ds, want_dz) = backward_both(op, case, x, scale, zp, dy, True)
    assert_same(dx, want_dx, f"{op} {case_id(case)} dx")
    abs_s, abs_z = abs_term_sums(op, x, dy, scale, zp, case)
    n_g = x.numel() // scale.numel()
    assert_within(ds, want_ds, reduction_bound(ds, want_ds, abs_s, n_g), f"{op} dscale")
    assert_within(dz, want_dz, reduction_bound(dz, want_dz, abs_z, n_g), f"{op} dzero_point")


@needs_cuda
@pytest.mark.parametrize("case", CASES[-6:], ids=case_id)
def test_range_learning_backward_is_reproducible(case):
    x, scale, zp = on_cuda(*make_inputs(case, "quantize_dequantize", seed=8, edge_cases=False))
    dy = torch.randn(x.shape, device="cuda")
    runs = [torch.ops.qsim.quantize_dequantize_backward(dy, x, scale, zp.float(),
                                                        *grid_args("quantize_dequantize", case),
                                                        True) for _ in range(3)]
    for run in runs[1:]:
        for name, g, w in zip(("dx", "dscale", "dzero_point"), run, runs[0]):
            assert_same(g.cpu(), w.cpu(), f"{case_id(case)} {name} between runs")


@needs_cuda
def test_range_learning_backward_with_specials():
    """NaN, +-Inf and extreme data: NaN quantizes to qmin (docs/design.md, NaN decision), so no
    gradient is NaN on either device, and every group stays within the stated bound."""
    case = ((8, 64, 33, 17), 1, None)
    x, scale, zp = make_inputs(case, "quantize_dequantize", seed=9, edge_cases=False)
    x, zp = with_specials(x), zp.float()
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(10))
    (dx, ds, dz), (want_dx, want_ds, want_dz) = backward_both("quantize_dequantize", case, x,
                                                              scale, zp, dy, True)
    assert_same(dx, want_dx, "dx")
    abs_s, abs_z = abs_term_sums("quantize_dequantize", x, dy, scale, zp, case)
    n_g = x.numel() // scale.numel()
    assert x.isnan().any() and not want_ds.isnan().any(), "NaN data must clamp to qmin on the CPU"
    for name, got, want, abs_sum in (("dscale", ds, want_ds, abs_s),
                                     ("dzero_point", dz, want_dz, abs_z)):
        assert torch.equal(got.isnan(), want.isnan()), f"{name}: NaN in other groups"
        ok = ~want.isnan()
        assert_within(got[ok], want[ok], reduction_bound(got[ok], want[ok], abs_sum[ok], n_g), name)


@needs_cuda
def test_autograd_on_cuda_matches_cpu():
    """torchqsim.functional on CUDA tensors: the autograd formula reaches the CUDA backward."""
    case = ((8, 64, 33, 17), 1, None)
    x, scale, zp = make_inputs(case, "quantize_dequantize", seed=11, edge_cases=False)
    zp = zp.float()
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(12))
    results = {}
    for device in ("cpu", "cuda"):
        xd, sd, zd = (t.detach().to(device).requires_grad_() for t in (x, scale, zp))
        y = torchqsim.functional.quantize_dequantize(xd, sd, zd, QMIN, QMAX, axis=1)
        y.backward(dy.to(device))
        results[device] = [t.cpu() for t in (y.detach(), xd.grad, sd.grad, zd.grad)]
    (y, dx, ds, dz), (want_y, want_dx, want_ds, want_dz) = results["cuda"], results["cpu"]
    assert_same(y, want_y, "y")
    assert_same(dx, want_dx, "x.grad")
    abs_s, abs_z = abs_term_sums("quantize_dequantize", x, dy, scale, zp, case)
    n_g = x.numel() // scale.numel()
    assert_within(ds, want_ds, reduction_bound(ds, want_ds, abs_s, n_g), "scale.grad")
    assert_within(dz, want_dz, reduction_bound(dz, want_dz, abs_z, n_g), "zero_point.grad")


# ---- arguments -----------------------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16), ids=str)
def test_half_data_makes_no_fp32_copy_on_cuda(dtype):
    # issue 19: fp16/bf16 data is read and written in its dtype; an fp32 round trip would
    # allocate two fp32 tensors (the widened input and the fp32 output): 4x the output's bytes
    x = torch.randn(1 << 22, device="cuda").to(dtype)
    scale, zero_point = torch.tensor(0.02, device="cuda"), torch.tensor(3, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    y = torch.ops.qsim.quantize_dequantize(x, scale, zero_point, QMIN, QMAX)
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - before
    assert y.dtype == dtype
    assert extra <= x.nbytes + (1 << 20), f"{extra} bytes allocated for a {x.nbytes}-byte output"


@needs_cuda
def test_qparams_on_another_device_are_rejected():
    x = torch.randn(4, 6, device="cuda")
    with pytest.raises(ValueError, match=r"same device \(CUDA\)"):
        torch.ops.qsim.quantize_dequantize(x, torch.tensor(0.1), torch.tensor(0), QMIN, QMAX)


@needs_cuda
def test_bad_scale_on_cuda_is_reported_with_its_index():
    x = torch.randn(4, 6, device="cuda")
    scale = torch.tensor([0.1, 0.2, -0.3, 0.1, 0.1, 0.1], device="cuda")
    with pytest.raises(ValueError, match=r"scale\.flatten\(\)\[2\] = -0\.3"):
        torch.ops.qsim.quantize(x, scale, torch.zeros(6, device="cuda"), QMIN, QMAX, axis=1)


@needs_cuda
def test_grad_on_another_device_is_rejected():
    x = torch.randn(4, 6, device="cuda")
    with pytest.raises(ValueError, match="grad must be on the input's device"):
        torch.ops.qsim.quantize_dequantize_backward(torch.randn(4, 6), x,
                                                    torch.tensor(0.1, device="cuda"),
                                                    torch.tensor(0, device="cuda"), QMIN, QMAX,
                                                    None, None, True)


@needs_cuda
def test_empty_tensors():
    x = torch.empty(0, 3, device="cuda")
    scale, zp = torch.full((3,), 0.1, device="cuda"), torch.zeros(3, device="cuda")
    assert torch.ops.qsim.quantize_dequantize(x, scale, zp, QMIN, QMAX, 1).shape == (0, 3)
    dx, ds, dz = torch.ops.qsim.quantize_dequantize_backward(x, x, scale, zp, QMIN, QMAX, 1,
                                                             None, True)
    assert dx.shape == (0, 3)
    assert_same(ds.cpu(), torch.zeros(3), "dscale")
    assert_same(dz.cpu(), torch.zeros(3), "dzero_point")


# ---- build and benchmark -------------------------------------------------------------------

def test_check_cuda_script():
    """scripts/check_cuda.sh compiles every kernels/cuda/*.cu (and syntax-checks the CUDA
    bindings) with nvcc; runs without a GPU, skipped only without nvcc. Under scripts/test.sh,
    which has just run the script and stopped had it failed, its printed lines are read from
    QSIM_CUDA_CHECK_SUMMARY instead of compiling everything a second time."""
    summary = os.environ.get("QSIM_CUDA_CHECK_SUMMARY")
    if summary:
        proc = subprocess.CompletedProcess([], 0, Path(summary).read_text(), "")
    else:
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "check_cuda.sh")],
                              capture_output=True, text=True, timeout=900,
                              env={**os.environ, "PYTHON": sys.executable})
    out = proc.stdout + proc.stderr
    if "nvcc not found: skipped" in proc.stdout:
        pytest.skip("nvcc not found (scripts/check_cuda.sh skipped the CUDA compile check)")
    assert proc.returncode == 0, out
    sources = sorted(ROOT.glob("kernels/cuda/*.cu"))
    assert sources, "no kernels/cuda/*.cu to check"
    for src in sources + sorted(ROOT.glob("bindings/*_cuda.cpp")):
        line = f"ok    {src.relative_to(ROOT)}"
        assert line in proc.stdout.splitlines(), f"missing {line!r} in:\n{out}"


BENCH = ROOT / "benchmarks" / "bench_cuda.py"
GPU_MODEL_BENCH = ROOT / "benchmarks" / "bench_gpu_model.py"


@pytest.mark.skipif(HAS_CUDA, reason="checks the message of a machine without CUDA")
@pytest.mark.parametrize("script", [BENCH, GPU_MODEL_BENCH], ids=lambda p: p.name)
def test_gpu_benchmarks_without_gpu_say_so(script):
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "needs a CUDA GPU" in proc.stdout


@needs_cuda
def test_bench_cuda_runs(tmp_path):
    out = tmp_path / "cuda.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--size", "1M", "--repeats", "3",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert {r["case"] for r in rows} >= {"per_tensor/forward", "per_channel/forward"}
    for r in rows:
        assert r["case"] in proc.stdout, f"{r['case']} missing from the printed table"
        assert math.isfinite(r["ours_ms"]) and r["ours_ms"] > 0, r
        assert math.isfinite(r["copy_ms"]) and r["copy_ms"] > 0, r
        moved = r["bytes_per_element"] * r["size"]
        assert r["ours_GBps"] == pytest.approx(moved / r["ours_ms"] / 1e6), r
        assert r["ratio_to_copy"] == pytest.approx(r["ours_GBps"] / r["copy_GBps"]), r
        if r["case"].endswith("/forward"):  # same bytes as the copy
            assert r["ratio_to_copy"] == pytest.approx(r["copy_ms"] / r["ours_ms"]), r
        if "forward" in r["case"]:
            assert r["torch_over_ours"] == pytest.approx(r["torch_ms"] / r["op_ms"]), r


@needs_cuda
def test_bench_gpu_model_runs(tmp_path):
    out = tmp_path / "gpu_model.json"
    proc = subprocess.run([sys.executable, str(GPU_MODEL_BENCH), "--repeats", "2", "--warmup", "1",
                           "--cnn-batch", "4", "--bert-batch", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert {(r["model"], r["row"]) for r in rows} == {
        (m, row) for m in ("resnet", "bert") for row in ("eval_fwd", "qat_tf", "qat_range_learning")}
    for r in rows:
        assert r["ratio"] == pytest.approx(r["ours_ms"] / r["base_ms"]), r
