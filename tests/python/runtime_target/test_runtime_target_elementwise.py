"""The onnxruntime target mode on elementwise kernels with broadcast (docs/runtime_target.md §2).

Oracle: onnxruntime itself (CPU, default optimizations) on the exported ``_qdq.onnx``. The
models are small Linears whose outputs meet in broadcast elementwise ops, on enough values
(32k per output) that a rounding difference between the reference semantics and onnxruntime's
kernels shows.
"""

import json
import warnings

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from ort_optimized import needs_cpu, run_optimized
from torchqsim import QuantizationSimModel
from torchqsim.runtime_target import arithmetic as ar
from torchqsim.runtime_target import native


def _run(model: nn.Module, inputs: tuple, **sim_args):
    """``(sim, reference outputs, target outputs, onnxruntime outputs, optimized node types)``
    of `model` on `inputs` at W8A8 (min-max ranges)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(model.eval(), inputs, quant_scheme="tf", **sim_args)
    sim.compute_encodings(lambda m: m(*inputs))
    with torch.no_grad():
        reference = sim.model(*inputs)
    sim.set_target("onnxruntime")
    with torch.no_grad():
        got = sim.model(*inputs)
    expected, nodes = run_optimized(sim, inputs)
    return sim, reference, got, expected, [n.op_type for n in nodes]


def _grid(low: float, high: float, shape: tuple, dim: int) -> torch.Tensor:
    """256 values from `low` to `high` along `dim` (every level of an 8-bit min-max grid),
    expanded to `shape`."""
    view = [1] * len(shape)
    view[dim] = 256
    return torch.linspace(low, high, 256).reshape(view).expand(shape).contiguous()


class _BroadcastAdds(nn.Module):
    """Adds of quantized inputs of three scales and zero points: same shape (MLAS's
    vector-vector kernel), B of width 1 (a scalar per span: MLAS's scalar-B path), A of width 1
    (onnxruntime swaps A and B), B broadcast over rows (vector-vector spans). Nothing else is
    fused, so the adds alone decide."""

    def forward(self, x, y, z):
        return x + y, x + z, z + x, x + y[:, :1]


def test_qlinearadd_with_broadcast_is_exact_where_the_reference_is_not():
    """Every pair of 8-bit levels meets in the first three adds (65536 per output)."""
    inputs = (_grid(-1.3, 2.1, (1, 256, 256), 2), _grid(-0.7, 0.9, (1, 256, 256), 1),
              _grid(-2.2, 0.4, (1, 256, 1), 1))
    sim, reference, got, expected, types = _run(_BroadcastAdds(), inputs)
    assert types.count("QLinearAdd") == 4
    assert sim.set_target("onnxruntime") == ["module_add", "module_add_1", "module_add_2",
                                             "module_add_3"]
    for g, e in zip(got, expected):
        assert torch.equal(g, e)
    assert not any(torch.equal(r, e) for r, e in zip(reference[1:], expected[1:]))


def _qdq_add_session(scales: tuple, zero_points: tuple, shape_a: list, shape_b: list):
    """onnxruntime (default options) on ``DQ(A), DQ(B) -> Add -> Q``, uint8: a QLinearAdd."""
    from onnx import TensorProto, helper
    init = [helper.make_tensor(f"s{i}", TensorProto.FLOAT, [], [float(s)])
            for i, s in enumerate(scales)]
    init += [helper.make_tensor(f"z{i}", TensorProto.UINT8, [], [z])
             for i, z in enumerate(zero_points)]
    nodes = [helper.make_node("DequantizeLinear", ["A", "s0", "z0"], ["a"]),
             helper.make_node("DequantizeLinear", ["B", "s1", "z1"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["c"]),
             helper.make_node("QuantizeLinear", ["c", "s2", "z2"], ["C"])]
    graph = helper.make_graph(
        nodes, "add", [helper.make_tensor_value_info("A", TensorProto.UINT8, shape_a),
                       helper.make_tensor_value_info("B", TensorProto.UINT8, shape_b)],
        [helper.make_tensor_value_info("C", TensorProto.UINT8, None)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def test_qlinear_add_kernel_equals_onnxruntime_on_every_pair_of_levels():
    """:func:`qlinear_add` against onnxruntime's QLinearAdd on all 65536 pairs of uint8 levels,
    same shape and with a scalar B per span, and the one-pass C kernel
    (:func:`qlinear_add_dequantized`, same shape) likewise. The first scales are a case where the AVX2
    kernel's fused multiply-add in its constant ``zc - (ra * za + rb * zb)`` changes 7 outputs
    (an unfused constant does not match there)."""
    levels = torch.arange(256.0)
    qa, qb = levels.reshape(256, 1).expand(256, 256), levels.reshape(1, 256).expand(256, 256)
    for scales, zps in (((0.04363888, 0.028599493, 0.06553676), (241, 242, 103)),
                        ((0.0123, 0.0456, 0.0311), (0, 128, 77))):
        params = [(torch.tensor(s, dtype=torch.float32), z) for s, z in zip(scales, zps)]
        session_same = _qdq_add_session(scales, zps, [256, 256], [256, 256])
        for b in (qb, qa[:, :1]):
            session = _qdq_add_session(scales, zps, [256, 256], list(b.shape))
            expected = session.run(None, {"A": qa.numpy().astype(np.uint8),
                                          "B": b.numpy().astype(np.uint8)})[0]
            got = ar.qlinear_add(qa, b, *params, (0, 255), ar.uses_fma(),
                                 scalar_b=b.shape[1] == 1)
            assert torch.equal(got, torch.from_numpy(expected.astype(np.float32)))
        if ar.uses_fma():  # the one-pass C kernel (same shapes), on dequantized values
            (sa, za), (sb, zb), (sc, zc) = params
            got = native.qlinear_add_dequantized((qa - za) * sa, (qb - zb) * sb, *params, (0, 255))
            expected = session_same.run(None, {"A": qa.numpy().astype(np.uint8),
                                               "B": qb.numpy().astype(np.uint8)})[0]
            assert torch.equal(got, (torch.from_numpy(expected.astype(np.float32)) - zc) * sc)


class _ScoresTimesOne(nn.Module):
    """Attention scores scaled by 1.0 before the softmax (Whisper), and through ``+ 0`` then
    ``/ 1``: onnxruntime's NoopElimination removes these, so each Softmax reads the scores'
    DequantizeLinear and runs as QLinearSoftmax."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 64)

    def forward(self, x):
        scores = torch.matmul(self.a(x), self.b(x).transpose(1, 2))
        return torch.softmax(scores * 1.0, -1), torch.softmax((0 + scores) / 1, -1)


def test_softmax_behind_a_noop_runs_as_qlinearsoftmax():
    torch.manual_seed(0)
    x = torch.randn(8, 64, 64)
    sim, reference, got, expected, types = _run(_ScoresTimesOne(), (x,))
    assert types.count("QLinearSoftmax") == 2 and "Mul" not in types and "Div" not in types
    assert sim.set_target("onnxruntime") == ["a", "b", "module_matmul", "module_softmax",
                                             "module_softmax_1"]
    for r, g, e in zip(reference, got, expected):
        assert torch.equal(g, e) and not torch.equal(r, e)


class _Int8Mix(nn.Module):
    """Two Linears on a 2-D input (QGemm), their product, its softmax, and their elementwise
    product and sum: every kernel kind, without the data movement onnxruntime 1.32 cannot load
    at int8 (docs/runtime_target.md §3)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(128, 128), nn.Linear(128, 128)

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        scores = torch.matmul(a, b)
        return scores, torch.softmax(scores, -1), a * b, a + b


@needs_cpu("avx512_vnni", "QGemm of int8 x int8")
def test_int8_activations_fuse_only_qgemm_like_onnxruntime(tmp_path):
    """Symmetric (int8) activations: onnxruntime's x86 selectors fuse the Linears (QGemm) but
    leave MatMul, Softmax, Mul and Add in float; the target mode fuses the same modules and
    equals onnxruntime on every output."""
    from torchqsim.quantsim.config_file import preset_path
    config = json.loads(preset_path("default").read_text())
    config["defaults"]["ops"]["is_symmetric"] = True
    (tmp_path / "int8.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    sim, reference, got, expected, types = _run(_Int8Mix(), (torch.randn(128, 128),),
                                                config_file=str(tmp_path / "int8.json"))
    assert sim.model.a.output_quantizers[0].qmin == -128
    assert types.count("QGemm") == 2 and not any(t.startswith("QLinear") for t in types)
    assert sim.set_target("onnxruntime") == ["a", "b"]
    for r, g, e in zip(reference, got, expected):
        assert torch.equal(g, e) and not torch.equal(r, e)
