"""onnxruntime's ReduceMean in the target mode (docs/runtime_target.md §2): what
``AdaptiveAvgPool1d/2d(1)`` and ``torch.mean`` over trailing dims export as.

Oracle: onnxruntime itself. One ReduceMean node (opset 18) on random rows of every length from 1
to 70 and a few long ones, 1 to 8 rows (each row's packets start at a different offset from a
16-byte boundary), 1-D to 5-D inputs, keepdims on and off, the axes input omitted (all axes),
1 and 4 onnxruntime threads; every output bit for bit. torch's mean differs on the same data
(asserted: the comparisons can fail). Then sims at W8A16 and W8A8 whose pools and means run in
target mode bit for bit as onnxruntime runs the exported graph (``sim.compare_with_runtime``),
where the reference mode is not. The C kernel's hand-computed cases:
tests/kernels/runtime/test_ort_reduce_mean.cpp.
"""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from torchqsim import QuantizationSimModel
from torchqsim.runtime_target import reduction

pytestmark = pytest.mark.skipif(not hasattr(torch.ops.qsim, "ort_reduce_mean"),
                                reason="needs a torchqsim._C built with qsim::ort_reduce_mean")


def _onnxruntime(x: np.ndarray, axes, keepdims: int, threads: int = 1, perm=None) -> np.ndarray:
    """One ReduceMean node (`axes` None: the axes input omitted, all axes reduced), after a
    Transpose by `perm` if given, at onnxruntime's default optimization level."""
    inits = [] if axes is None else [numpy_helper.from_array(np.array(axes, np.int64), "axes")]
    nodes = [] if perm is None else [helper.make_node("Transpose", ["x"], ["t"], perm=perm)]
    nodes.append(helper.make_node("ReduceMean", ["x" if perm is None else "t"] +
                                  ([] if axes is None else ["axes"]), ["y"], keepdims=keepdims))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _values(rng, shape) -> np.ndarray:
    """Values of one magnitude (1e-2 to 1e3) with an offset, so that sums round."""
    scale = 10.0 ** rng.uniform(-2, 3)
    return ((rng.random(shape) - 0.3) * scale).astype(np.float32)


def _bits(a) -> np.ndarray:
    return np.asarray(a, np.float32).view(np.int32)


@pytest.mark.parametrize("threads", [1, 4])
def test_rows_equal_onnxruntime_bit_for_bit(threads):
    rng = np.random.default_rng(0)
    torch_differs = 0
    lengths = list(range(1, 71)) + [255, 1031, 4099]
    for n in lengths:
        for rows in (1, 2, 3, 5, 8):
            x = _values(rng, (rows, n))
            expected = _onnxruntime(x, [1], 0, threads)
            got = torch.ops.qsim.ort_reduce_mean(torch.from_numpy(x))
            assert np.array_equal(_bits(got), _bits(expected)), f"n={n}, rows={rows}"
            torch_differs += int(not np.array_equal(_bits(torch.from_numpy(x).mean(1)),
                                                    _bits(expected)))
    assert torch_differs > len(lengths)  # measured: about half of the cases


_CASES = [((37,), 0), ((5, 11), None), ((4, 6, 5), -1), ((2, 17, 300), 2), ((2, 7, 33), (1, 2)),
          ((3, 16, 7, 7), (2, 3)), ((2, 8, 5, 9), (-1, -2)), ((2, 3, 3, 5, 6), (2, 3, 4)),
          ((1, 64, 1, 49), (2, 3)),                     # KR: rows of the trailing dims
          ((6, 5), 0), ((1, 49, 64), 1), ((7, 1, 3), 0), ((3000, 8), 0)]  # RK: rows in order


@pytest.mark.parametrize("shape,dim", _CASES)
@pytest.mark.parametrize("keepdim", [False, True])
def test_means_equal_onnxruntime_bit_for_bit(shape, dim, keepdim):
    """reduction.mean as torch.mean: 1-D to 5-D, (B, T, C) over C as RMSNorm decompositions
    reduce, all dims (dim None: ReduceMean without axes), leading and middle dims."""
    x = _values(np.random.default_rng(len(shape) * 100 + shape[-1]), shape)
    axes = None if dim is None else [dim] if isinstance(dim, int) else list(dim)
    expected = _onnxruntime(x, axes, int(keepdim), threads=4)
    got = reduction.mean(torch.from_numpy(x), dim, keepdim)
    reference = torch.from_numpy(x).mean(tuple(range(x.ndim)) if dim is None else dim, keepdim)
    assert got.shape == reference.shape == expected.shape
    assert np.array_equal(_bits(got), _bits(expected))


def test_other_means_are_left_to_the_reference():
    x = torch.randn(2, 3, 4)
    assert reduction.mean(x, 1, True) is None           # KRK: its loop depends on the threads
    assert reduction.mean(x, (0, 2), True) is None      # RKR: onnxruntime's general loop
    assert reduction.mean(x, (2, 2), False) is None     # a repeated dim: torch raises
    assert reduction.mean(x, 3, False) is None          # out of range: torch raises
    assert reduction.mean(x, (), False) is None


def test_op_rejects_bad_input_naming_the_argument():
    with pytest.raises(RuntimeError, match="ort_reduce_mean: x must be float32"):
        torch.ops.qsim.ort_reduce_mean(torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="ort_reduce_mean: x must be 2-D"):
        torch.ops.qsim.ort_reduce_mean(torch.zeros(3))
    with pytest.raises(RuntimeError, match="ort_reduce_mean: x must be 2-D with columns"):
        torch.ops.qsim.ort_reduce_mean(torch.zeros(3, 0))


def test_opcheck():
    torch.library.opcheck(torch.ops.qsim.ort_reduce_mean, (torch.randn(6, 49),))
    torch.library.opcheck(torch.ops.qsim.ort_reduce_mean, (torch.randn(3, 1),))
    torch.library.opcheck(torch.ops.qsim.ort_reduce_mean, (torch.randn(8, 6)[:, 1:],))


class _Means(nn.Module):
    """A pool to 1x1, a 1-D pool to 1 and means over the trailing dims of one 4-D input."""

    def __init__(self):
        super().__init__()
        self.pool, self.pool1d = nn.AdaptiveAvgPool2d(1), nn.AdaptiveAvgPool1d(1)

    def forward(self, x):
        return self.pool(x), self.pool1d(x.flatten(2)), x.mean((2, 3)), x.mean(-1, keepdim=True)


class _TokenMeans(nn.Module):
    """Swin's pooler (a 1-D pool of the transposed tokens) and a mean over the tokens, of the
    model input (the pool's own DequantizeLinear after the Transpose) and of a LayerNorm's
    output (its DequantizeLinear before the Transpose)."""

    def __init__(self):
        super().__init__()
        self.norm, self.pool1d, self.pool1d_2 = nn.LayerNorm(256), nn.AdaptiveAvgPool1d(1), \
            nn.AdaptiveAvgPool1d(1)

    def forward(self, x):
        h = self.norm(x)
        return self.pool1d(x.transpose(1, 2)), x.mean(1), self.pool1d_2(h.transpose(1, 2)), \
            h.mean(1)


class _Cnn(nn.Module):
    """Conv, ReLU, a pool to 1x1, Linear: the classifier end of a ResNet. The Conv's bias of
    about 10 keeps the pooled values in a narrow range far from 0, so that their fp32 spacing is
    a sizeable part of a 16-bit step."""

    def __init__(self):
        super().__init__()
        self.conv, self.relu = nn.Conv2d(3, 32, 3, padding=1), nn.ReLU()
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(32, 10)
        with torch.no_grad():
            self.conv.bias.add_(10.0)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def _reports(model, x, bits: int) -> tuple:
    """compare_with_runtime's reports of a calibrated sim of `model` at W8A`bits`: reference
    mode, then target mode."""
    sim = QuantizationSimModel(model.eval(), x, quant_scheme="tf", default_output_bw=bits,
                               default_param_bw=8)
    sim.compute_encodings(lambda m: m(x))
    sim.model.eval()
    with torch.no_grad():
        reference = sim.compare_with_runtime(x, verbose=False)
        sim.set_target("onnxruntime")
        return reference, sim.compare_with_runtime(x, verbose=False)


@pytest.mark.parametrize("hw", [(7, 7), (5, 9)])
def test_pools_and_means_of_a_quantized_input_match_onnxruntime(hw):
    """Only the ReduceMeans compute anything here: with an offset of 50 the means' fp32
    spacing is a large part of the output's 16-bit step, so the reference mode's means are a
    step off on many values (on every output), the target mode's are onnxruntime's."""
    torch.manual_seed(0)
    x = torch.randn(8, 32, *hw) + 50
    reference, target = _reports(_Means(), x, 16)
    assert all(t.bit_equal == 1.0 for t in target.tensors)
    assert target.outputs == [1.0] * 4
    assert max(reference.outputs) < 1.0


def test_means_over_tokens_match_onnxruntime():
    """One image of (tokens, channels): onnxruntime keeps each Transpose on the quantized
    integers, so the pools reduce rows of the transposed tensor (KR) and the means the token
    axis of the untransposed one (RK: rows added in order)."""
    torch.manual_seed(2)
    x = torch.randn(1, 49, 256) + 50
    reference, target = _reports(_TokenMeans(), x, 16)
    assert all(t.bit_equal == 1.0 for t in target.tensors)
    assert target.outputs == [1.0] * 4
    assert min(reference.outputs) < 1.0


@pytest.mark.parametrize("bits", [16, 8])
def test_cnn_ending_in_a_pool_matches_onnxruntime_on_every_tensor(bits):
    """W8A16: float Conv and Gemm, the pool's ReduceMean between; the reference mode's pool is
    a 16-bit step off on some values. W8A8: QLinearConv and QGemm, the ReduceMean stays float
    (no QDQ fusion takes it)."""
    torch.manual_seed(1)
    x = torch.randn(8, 3, 7, 7)
    reference, target = _reports(_Cnn(), x, bits)
    assert len(target.tensors) >= 4 and target.first_divergent is None
    assert target.outputs == [1.0]
    pooled = [t.bit_equal for t in reference.tensors if t.name.startswith("pool.")]
    assert pooled and (pooled[0] < 1.0 or bits == 8)
