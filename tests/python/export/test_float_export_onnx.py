"""Export of every float format to standard ONNX (wrappers/export/float_translation.py), against
the simulation:

- formats without an ONNX type (FP6, custom minifloats, MXFP6) are a decomposition in standard
  ops that onnxruntime runs bit-exactly over every fp16 value and random fp32 patterns;
- float4e2m1 (FP4 e2m1, MXFP4, NVFP4) is opset-23 QuantizeLinear/DequantizeLinear, which
  onnxruntime 1.32 cannot run (no CPU kernel: test_float_formats_onnx.py checks that), so these
  graphs are run with onnx's reference evaluator (``onnx.reference.ReferenceEvaluator``);
- block formats along any axis (Transpose around the decomposition) and any length (the last
  block shorter).
"""

import onnx
import pytest
import torch
from torch import nn

import torchqsim.functional as F
from asserts import assert_same
from test_float_formats_onnx import fp32_inputs


def _export(module, x, opset):
    from torchqsim.export import QDQ_TRANSLATION_TABLE
    program = torch.onnx.export(module, (x,), dynamo=True, opset_version=opset, verbose=False,
                                custom_translation_table=QDQ_TRANSLATION_TABLE)
    return program.model_proto


class _Minifloat(nn.Module):
    def __init__(self, scale, **kwargs):
        super().__init__()
        self.scale, self.kwargs = scale, kwargs

    def forward(self, x):
        return F.float_quantize_dequantize(x, None, scale=self.scale, **self.kwargs)


class _Block(nn.Module):
    def __init__(self, fmt, axis=-1, tensor_scale=None):
        super().__init__()
        self.fmt, self.axis, self.tensor_scale = fmt, axis, tensor_scale

    def forward(self, x):
        return F.block_float_quantize_dequantize(x, self.fmt, self.axis, self.tensor_scale)


def _ops(model):
    return {n.op_type for n in model.graph.node}


MINIFLOATS = [  # (exponent_bits, mantissa_bits, kind, saturate, scale): no ONNX type
    (3, 2, "finite", True, 1.0), (3, 2, "finite", True, 0.37),    # OCP FP6
    (2, 3, "finite", True, 1.0), (2, 3, "finite", True, 0.37),
    (3, 4, "ieee", True, 0.37), (3, 4, "ieee", False, 1.0), (4, 3, "ieee", False, 0.37),
    (2, 3, "fn", False, 0.37), (5, 3, "fnuz", False, 1.0), (5, 3, "fnuz", True, 0.37),
    (8, 7, "ieee", False, 1.0), (6, 9, "ieee", True, 0.37), (1, 0, "finite", True, 0.37),
    (8, 2, "ieee", True, 3e-30),
]


@pytest.mark.parametrize("fmt", MINIFLOATS, ids=lambda f: "e{}m{}{}-sat{}-s{}".format(*f))
def test_minifloat_decomposition_matches_in_onnxruntime(ort_run, fmt):
    e, m, kind, saturate, scale = fmt
    x = fp32_inputs()
    module = _Minifloat(torch.tensor(scale), exponent_bits=e, mantissa_bits=m, kind=kind,
                        saturate=saturate)
    model = _export(module, x, 21)
    assert "QuantizeLinear" not in _ops(model) and {n.domain for n in model.graph.node} == {""}
    (got,) = ort_run(model, x)
    assert_same(got, module(x), f"e{e}m{m} {kind} saturate={saturate} scale={scale}")


@pytest.mark.parametrize("block_size", [None, 4])
def test_minifloat_decomposition_per_axis_and_blocked_scales(ort_run, block_size):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 12, 4, generator=g) * 40
    x[0, 1, 2], x[2, 0, 0] = float("inf"), float("nan")
    scale = torch.rand(3, 12 if block_size is None else 3, 4, generator=g) + 0.1
    if block_size is None:
        scale = scale[0, :, 0].contiguous()
    module = _Minifloat(scale, exponent_bits=3, mantissa_bits=2, kind="finite", axis=1,
                        block_size=block_size)
    (got,) = ort_run(_export(module, x, 21), x)
    assert_same(got, module(x), f"block_size={block_size}")


def test_fp4_minifloat_is_float4_qdq_matching_the_reference_evaluator(ref_run):
    """FP4 e2m1 exports as opset-23 QuantizeLinear(float4e2m1); onnx's evaluator agrees with the
    simulation everywhere but NaN inputs, which float4e2m1 cannot hold (the evaluator maps them
    to a zero, the simulation keeps NaN), and an input of exactly -0, which the evaluator casts to
    +0 (values that round to zero from below keep their sign there); docs/formats.md §4."""
    x = fp32_inputs()
    module = _Minifloat(torch.tensor(0.37), exponent_bits=2, mantissa_bits=1, kind="finite")
    model = _export(module, x, 23)
    q = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert len(q) == 1 and model.opset_import[0].version == 23
    (got,) = ref_run(model, x)
    ours = module(x)
    nan = x.isnan()
    minus_zero = (x == 0) & torch.signbit(x)
    same = ~nan & ~minus_zero
    assert_same(got[same], ours[same], "fp4 e2m1")
    assert bool(ours[nan].isnan().all()) and bool((got[nan] == 0).all())
    assert bool(torch.signbit(ours[minus_zero]).all()) and not bool(torch.signbit(got[minus_zero]).any())


def _mx_input(shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * torch.exp2(
        torch.randint(-40, 40, shape, generator=g).float())
    x.view(-1)[:32] = 0.0                                    # an all-zero block (last axis)
    x.view(-1)[100] = float("inf")
    return x


MX_ORT = ["mxfp8_e4m3", "mxfp8_e5m2", "mxint8", "mxfp6_e3m2", "mxfp6_e2m3"]


@pytest.mark.parametrize("axis,shape", [(-1, (4, 96)), (-1, (5, 45)), (1, (6, 40, 3, 3)),
                                        (0, (70, 8))])
@pytest.mark.parametrize("fmt", MX_ORT)
def test_mx_any_axis_and_length_matches_in_onnxruntime(ort_run, fmt, axis, shape):
    x = _mx_input(shape, 11)
    module = _Block(fmt, axis)
    model = _export(module, x, 21)
    (got,) = ort_run(model, x)
    assert_same(got, module(x), f"{fmt} axis {axis} shape {shape}")
    assert ("Transpose" in _ops(model)) == (axis not in (-1, len(shape) - 1))


@pytest.mark.parametrize("axis,shape", [(-1, (4, 96)), (-1, (5, 45)), (1, (6, 40, 3, 3))])
@pytest.mark.parametrize("fmt", ["mxfp4", "nvfp4"])
def test_fp4_block_formats_match_the_reference_evaluator(ref_run, fmt, axis, shape):
    x = _mx_input(shape, 12)
    x.view(-1)[40:56] = torch.randn(16) * 1e-30   # NVFP4: a block scale that rounds to 0
    module = _Block(fmt, axis)
    model = _export(module, x, 23)
    (got,) = ref_run(model, x)
    assert_same(got, module(x), f"{fmt} axis {axis} shape {shape}")


def test_nvfp4_explicit_tensor_scale_matches_the_reference_evaluator(ref_run):
    x = _mx_input((8, 64), 13)
    module = _Block("nvfp4", -1, torch.tensor(0.0123))
    (got,) = ref_run(_export(module, x, 23), x)
    assert_same(got, module(x), "nvfp4 with a tensor scale")


# ---- sim.export -----------------------------------------------------------------------------------

def _conv_sim(act, param):
    from torchqsim.quantsim import QuantizationSimModel
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 40, 3), nn.ReLU(), nn.Conv2d(40, 8, 1), nn.Flatten(),
                          nn.Linear(8 * 4 * 4, 10))
    x = torch.randn(2, 3, 6, 6) * 3
    sim = QuantizationSimModel(model, x, quant_scheme="tf")
    sim.set_precision(nn.Conv2d, activation=act, param=param)
    sim.set_precision(nn.Linear, activation=act, param=param)
    sim.compute_encodings(lambda m: m(x))
    return sim, x


def _sim_graph(sim, x, tmp_path):
    from torchqsim.export import export_sim
    paths = export_sim(sim, str(tmp_path), "m", x)
    return onnx.load(paths["qdq_onnx"])


@pytest.mark.parametrize("act,param", [("fp6_e3m2", "mxfp6_e2m3"), ("fp8_e4m3", "mxint8"),
                                       ("mxfp8_e5m2", "mxfp8_e4m3")])
def test_sim_export_conv_block_formats_match_in_onnxruntime(tmp_path, ort_run, act, param):
    sim, x = _conv_sim(act, param)
    model = _sim_graph(sim, x, tmp_path)
    assert model.opset_import[0].version == 21
    (got,) = ort_run(model, x)
    with torch.no_grad():
        assert_same(got, sim.model(x), f"{act}/{param}")


@pytest.mark.parametrize("act,param", [("fp8_e4m3", "mxfp4"), ("fp4_e2m1", "nvfp4")])
def test_sim_export_fp4_formats_match_the_reference_evaluator(tmp_path, ref_run, act, param):
    sim, x = _conv_sim(act, param)
    model = _sim_graph(sim, x, tmp_path)
    assert model.opset_import[0].version == 23
    onnx.checker.check_model(model, full_check=True)
    (got,) = ref_run(model, x)
    with torch.no_grad():
        assert_same(got, sim.model(x), f"{act}/{param}")
