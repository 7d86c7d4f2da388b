"""The whole sim on a CUDA GPU (issue 19): built, calibrated, trained and exported on ``cuda``,
against the same sim on the CPU as the oracle. Skipped without a GPU (CI has none;
scripts/gpu_check.sh runs this file on a GPU machine).

- Weight encodings come from the same weights, so they equal the CPU sim's bit for bit;
  activation encodings come from GPU convolutions and matmuls, so they agree to float rounding
  (TF32 is turned off: with it, cuDNN convolutions round inputs to 10-bit mantissas);
- the sim's output is within a few output-quantizer steps of the CPU sim's (a value near a
  rounding tie may round the other way after a differently ordered float sum);
- a QAT step with range learning gives every weight and range a finite gradient, close to the
  CPU sim's, and training lowers the loss;
- ``sim.export`` from the GPU sim writes the QDQ graph and the encodings: onnxruntime (CPU) on
  that graph is within a few steps of the GPU sim, and the weight entries equal the CPU sim's;
- a bf16 model's in-place sim runs on the GPU in bf16 and agrees with the fp32 sim.
"""

import copy
import json

import pytest
import torch

from asserts import assert_same, assert_within
from export_models import make_model
from torchqsim.export import export_sim
from torchqsim.quantization.param_quantizer import ParamQuantizeDequantize
from torchqsim.quantsim import QuantizationSimModel

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU and a CUDA build of torch")
KINDS = ("cnn_bn", "transformer")


@pytest.fixture(autouse=True)
def no_tf32():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def sims(kind, scheme="tf", config="per_channel"):
    """(cpu sim, cuda sim, cpu input): one model, calibrated on each device."""
    model, x = make_model(kind)
    out = []
    for device in ("cpu", "cuda"):
        xd = x.to(device)
        sim = QuantizationSimModel(copy.deepcopy(model).to(device), xd, quant_scheme=scheme,
                                   config_file=config)
        sim.compute_encodings(lambda m, _: m(xd), None)
        out.append(sim)
    return out[0], out[1], x


def output_step(sim):
    """The scale of the last enabled output quantizer (the sim's output grid step)."""
    scales = [q.get_scale() for n, q in sim.quantizers()
              if not isinstance(q, ParamQuantizeDequantize)]
    return float(scales[-1].max())


@pytest.mark.parametrize("config", ["default", "per_channel"])
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_sim_calibrates_and_runs_like_the_cpu_sim(kind, config):
    cpu, gpu, x = sims(kind, config=config)
    names = [n for n, _ in cpu.quantizers()]
    assert names == [n for n, _ in gpu.quantizers()]
    for (name, qc), (_, qg) in zip(cpu.quantizers(), gpu.quantizers()):
        sc, sg = qc.get_scale(), qg.get_scale().cpu()
        if isinstance(qc, ParamQuantizeDequantize):
            assert_same(sg, sc, f"{name} scale")
            assert_same(qg.get_zero_point().cpu(), qc.get_zero_point(), f"{name} zero point")
        else:
            assert_within(sg, sc, 1e-5 * sc.abs(), f"{name} scale")
    with torch.no_grad():
        want, got = _first(cpu.model(x)), _first(gpu.model(x.cuda())).cpu()
    assert_within(got, want, torch.tensor(3 * output_step(cpu)), f"{kind} output")


@pytest.mark.parametrize("kind", KINDS)
def test_cuda_qat_step_gives_the_cpu_gradients_and_trains(kind):
    cpu, gpu, x = sims(kind, scheme="range_learning_tf_init")
    grads = []
    for sim, xd in ((cpu, x), (gpu, x.cuda())):
        sim.model.train().zero_grad()
        _first(sim.model(xd)).square().mean().backward()
        named = [(n, p) for n, p in sim.model.named_parameters() if p.requires_grad]
        assert all(p.grad is not None and bool(p.grad.isfinite().all()) for _, p in named), \
            [n for n, p in named if p.grad is None or not p.grad.isfinite().all()]
        grads.append({n: p.grad.cpu() for n, p in named})
    assert grads[0].keys() == grads[1].keys()
    for n, want in grads[0].items():
        bound = 1e-3 * want.abs().max() + 1e-6
        assert_within(grads[1][n], want, bound, f"{kind} gradient of {n}")
    opt = torch.optim.SGD(gpu.model.parameters(), lr=0.05)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = _first(gpu.model(x.cuda())).square().mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0], losses


@pytest.mark.parametrize("kind", KINDS)
def test_cuda_sim_exports_a_graph_onnxruntime_agrees_with(kind, tmp_path, ort_run):
    cpu, gpu, x = sims(kind)
    paths = {}
    for name, sim, xd in (("cpu", cpu, x), ("cuda", gpu, x.cuda())):
        (tmp_path / name).mkdir()
        paths[name] = export_sim(sim, str(tmp_path / name), "model", xd, "1.0.0")
    qdq = paths["cuda"]["qdq_onnx"]
    with torch.no_grad():
        want = _first(gpu.model(x.cuda())).cpu()
    got = ort_run(qdq, x)[0]
    assert_within(got, want, torch.tensor(3 * output_step(gpu)), f"{kind} onnxruntime")
    entries = []
    for name in ("cpu", "cuda"):
        with open(paths[name]["encodings"], encoding="utf-8") as f:
            entries.append(json.load(f)["param_encodings"])
    assert entries[0] == entries[1]


def test_bf16_in_place_sim_runs_on_cuda_in_bf16():
    model, x = make_model("transformer")
    ref = QuantizationSimModel(copy.deepcopy(model).cuda(), x.cuda(), quant_scheme="tf",
                               default_output_bw=16, default_param_bw=8)
    ref.compute_encodings(lambda m, _: m(x.cuda()), None)
    xb = x.cuda().bfloat16()
    sim = QuantizationSimModel(copy.deepcopy(model).cuda().bfloat16(), xb, quant_scheme="tf",
                               default_output_bw=16, default_param_bw=8, in_place=True)
    sim.compute_encodings(lambda m, _: m(xb), None)
    with torch.no_grad():
        got, want = _first(sim.model(xb)), _first(ref.model(x.cuda()))
    assert got.dtype == torch.bfloat16
    assert_within(got.float().cpu(), want.cpu(), torch.tensor(0.05), "bf16 sim output")
