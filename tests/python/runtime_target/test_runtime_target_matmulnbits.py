"""MatMulNBits, the W8A16 Linears of the onnxruntime target mode (docs/runtime_target.md §2).

Oracle: onnxruntime itself. The C kernel ``qsim::matmulnbits_q8`` against onnxruntime's own
``MatMulNBits`` node (8 bits, block size 32, accuracy level 4) on random data, every output bit
for bit; then models whose Linears onnxruntime rewrites into MatMulNBits (3-D inputs, 16-bit
activations), where the target mode equals onnxruntime (default options) and the reference does
not. The kernel reproduces MLAS's AVX-512 VNNI variant: on other CPUs onnxruntime runs other
kernels (other fp32 orders), so the comparisons need this CPU feature.
"""

import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from ort_optimized import needs_cpu, run_optimized
from torchqsim import QuantizationSimModel
from torchqsim.runtime_target import native


pytestmark = needs_cpu("avx512_vnni", "MatMulNBits")


def _onnxruntime_matmulnbits(a, b, scale, zp, bias, threads):
    """onnxruntime's MatMulNBits of `a` (M, K) with `b` (N, K) uint8 and per-block `scale`,
    `zp` (N, blocks); the weights padded to whole blocks as the operator stores them."""
    (m, k), n, blocks = a.shape, b.shape[0], scale.shape[1]
    padded = np.zeros((n, blocks * 32), np.uint8)
    padded[:, :k] = b
    names = ["A", "B", "scales", "zp"] + (["", "bias"] if bias is not None else [])
    node = helper.make_node("MatMulNBits", names, ["Y"], domain="com.microsoft", K=k, N=n,
                            bits=8, block_size=32, accuracy_level=4)
    inits = [numpy_helper.from_array(padded.reshape(n, blocks, 32), "B"),
             numpy_helper.from_array(scale.reshape(-1), "scales"),
             numpy_helper.from_array(zp.reshape(-1), "zp")]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "bias"))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT,
                                                                          [m, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                    helper.make_opsetid("com.microsoft", 1)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"A": a})[0]


@pytest.mark.parametrize("m,k,n,threads", [
    (64, 64, 64, 1), (64, 128, 128, 2), (64, 160, 13, 1),  # groups of 4 blocks, a remainder block
    (63, 96, 7, 4), (1, 128, 6, 1),  # odd rows, n % 4 columns (hsum), one row
    (8, 48, 5, 1), (4, 16, 3, 1), (3, 200, 17, 1),  # k not a multiple of 32
    (16, 3072, 48, 2),  # many blocks
])
@pytest.mark.parametrize("with_bias", [False, True])
def test_kernel_equals_onnxruntime_matmulnbits_bit_for_bit(m, k, n, threads, with_bias):
    rng = np.random.default_rng(m * k + n)
    blocks = -(-k // 32)
    a = (rng.integers(-32768, 32768, (m, k)) * rng.uniform(1e-5, 1e-3)).astype(np.float32)
    a[0, :min(k, 32)] = 0  # an all-zero block (scale 0)
    b = rng.integers(0, 256, (n, k)).astype(np.uint8)
    scale = rng.uniform(1e-3, 2e-2, (n, blocks)).astype(np.float32)
    zp = rng.integers(0, 256, (n, blocks)).astype(np.uint8)
    bias = rng.normal(size=n).astype(np.float32) if with_bias else None
    expected = _onnxruntime_matmulnbits(a, b, scale, zp, bias, threads)
    got = torch.ops.qsim.matmulnbits_q8(torch.from_numpy(a), torch.from_numpy(b),
                                        torch.from_numpy(scale), torch.from_numpy(zp),
                                        None if bias is None else torch.from_numpy(bias))
    assert np.array_equal(got.numpy(), expected)
    exact = a.astype(np.float64) @ ((b.astype(np.float64) - np.repeat(zp, 32, 1)[:, :k]) *
                                    np.repeat(scale, 32, 1)[:, :k]).T
    assert not np.array_equal(got.numpy(), exact.astype(np.float32))  # int8 compute differs


def test_kernel_rejects_bad_operands():
    a, b = torch.zeros(2, 40), torch.zeros(3, 40, dtype=torch.uint8)
    scale, zp = torch.ones(3, 2), torch.zeros(3, 2, dtype=torch.uint8)
    with pytest.raises(RuntimeError, match="scale must have shape"):
        torch.ops.qsim.matmulnbits_q8(a, b, torch.ones(3, 1), zp, None)
    with pytest.raises(RuntimeError, match="b must be Byte"):
        torch.ops.qsim.matmulnbits_q8(a, b.to(torch.int8), scale, zp, None)
    with pytest.raises(RuntimeError, match="bias must have shape"):
        torch.ops.qsim.matmulnbits_q8(a, b, scale, zp, torch.ones(2))
    assert native.matmul_nbits(a.reshape(1, 2, 40), b.float(), torch.tensor(1.0),
                           torch.tensor(0.0), None).shape == (1, 2, 3)


class _Mlp(nn.Module):
    """Two Linears on a 3-D input (exported as MatMul + Add: MatMulNBits in onnxruntime) and a
    2-D Linear (a Gemm: float in onnxruntime)."""

    def __init__(self):
        super().__init__()
        self.up, self.down, self.head = nn.Linear(96, 80), nn.Linear(80, 48), nn.Linear(48, 8)

    def forward(self, x):
        h = self.down(torch.relu(self.up(x)))
        return h, self.head(h[:, 0])


@pytest.mark.parametrize("config", ["default", "per_channel"])
def test_w8a16_linears_equal_onnxruntime_matmulnbits_bit_for_bit(config):
    torch.manual_seed(0)
    x = torch.randn(4, 32, 96)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = QuantizationSimModel(_Mlp().eval(), x, quant_scheme="tf", default_param_bw=8,
                                   default_output_bw=16, config_file=config)
    sim.compute_encodings(lambda m: m(x))
    with torch.no_grad():
        reference = sim.model(x)
    assert sim.set_target("onnxruntime") == ["up", "down"]  # head: 2-D, a float Gemm
    with torch.no_grad():
        got = sim.model(x)
    expected, nodes = run_optimized(sim, x)
    assert [n.op_type for n in nodes].count("MatMulNBits") == 2
    hidden = expected[0]
    assert torch.equal(got[0], hidden) and not torch.equal(reference[0], hidden)
    report = sim.compare_with_runtime(x, verbose=False)
    assert all(t.bit_equal == 1.0 for t in report.tensors if not t.name.startswith("head"))


class _Conv1DMlp(nn.Module):
    """GPT-2's Conv1D twice: ``torch.addmm(bias, x.view(-1, in), weight)`` with an ``(in, out)``
    weight, exported as MatMul + Add: MatMulNBits in onnxruntime although the product is 2-D."""

    def __init__(self):
        super().__init__()
        self.w1, self.b1 = nn.Parameter(torch.randn(96, 80) / 10), nn.Parameter(torch.randn(80))
        self.w2, self.b2 = nn.Parameter(torch.randn(80, 48) / 9), nn.Parameter(torch.randn(48))

    def forward(self, x):
        h = torch.relu(torch.addmm(self.b1, x.view(-1, 96), self.w1))
        return torch.addmm(self.b2, h, self.w2).view(x.shape[0], x.shape[1], 48)


@pytest.mark.parametrize("config", ["default", "per_channel"])
def test_w8a16_addmm_equals_onnxruntime_matmulnbits_bit_for_bit(config):
    torch.manual_seed(0)
    x = torch.randn(4, 32, 96)
    sims = {}
    for bits in (8, 16):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sims[bits] = QuantizationSimModel(_Conv1DMlp().eval(), x, quant_scheme="tf",
                                              default_param_bw=8, default_output_bw=bits,
                                              config_file=config)
        sims[bits].compute_encodings(lambda m: m(x))
    # 8-bit activations: onnxruntime fuses QGemm, not replicated for AddMm (the reference)
    assert sims[8].set_target("onnxruntime") == []
    sim = sims[16]
    with torch.no_grad():
        reference = sim.model(x)
    assert len(sim.set_target("onnxruntime")) == 2
    with torch.no_grad():
        got = sim.model(x)
    expected, nodes = run_optimized(sim, x)
    assert [n.op_type for n in nodes].count("MatMulNBits") == 2
    assert torch.equal(got, expected[0]) and not torch.equal(reference, expected[0])
    report = sim.compare_with_runtime(x, verbose=False)
    assert report.first_divergent is None
