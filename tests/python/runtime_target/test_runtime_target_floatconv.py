"""onnxruntime's float Conv and Gemm in the target mode (runtime_target/floatconv.py,
kernels/include/qsim/ortconv.h).

Oracle: onnxruntime itself (CPU, default optimizations) on one-node Conv and Gemm graphs whose
weight and bias are graph inputs (as after a DequantizeLinear: no prepacking, no NCHWc layout),
random data from a fixed seed, bit for bit; torch's conv2d / linear differ on most outputs
(asserted, so that the shapes exercise the summation order). Shapes: the SmallResNet's
(tests/python/runtime_target/test_runtime_target.py), K above MLAS's K block (128, or up to
1024 when N is small), strides, padding, groups, 1x1 (MLAS's direct GEMM), without bias, one
image on one thread, depthwise and one-channel Convs (MLAS's M = 1 kernel: chunks of 4, 2, 1
rows, K slices); Convs with one output position (MLAS's N = 1 case: its M = 1 kernel with the
operands exchanged, over the whole K); a Gemm on one row (MLAS's M = 1 kernel: N from 1 to 10 covers its groups
of 4, 2 and 1 outputs, K not a multiple of 8). The CNN end to end: test_runtime_target.py
(W8A16).
"""

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from torchqsim.runtime_target import floatconv

pytestmark = pytest.mark.skipif(not floatconv.has_kernels(), reason="torchqsim._C predates "
                                "qsim::ort_conv2d (rebuild)")


def _onnxruntime(node, feeds: dict, threads: int = 0) -> torch.Tensor:
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, v.shape) for n, v in feeds.items()]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph([node], "g", inputs, [output]),
                              opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {n: v.numpy() for n, v in feeds.items()})[0])


CONVS = [  # (batch, in, size, out, kernel, stride, pad, groups, bias, threads)
    (2, 3, 16, 8, 3, 1, 1, 1, True, 0),     # the ResNet's stem: K = 27
    (2, 8, 16, 16, 3, 2, 1, 1, True, 0),    # its downsampling: K = 72, stride 2
    (2, 16, 8, 16, 3, 1, 1, 1, True, 0),    # its blocks: K = 144 > 128
    (2, 64, 12, 32, 3, 1, 1, 1, False, 0),  # K = 576: three blocks of 256, no bias
    (1, 64, 12, 32, 3, 1, 1, 1, True, 1),   # one image, one thread
    (2, 32, 8, 32, 1, 1, 0, 1, True, 0),    # 1x1: MLAS's direct GEMM
    (2, 300, 6, 8, 1, 1, 0, 1, True, 0),    # 1x1, K = 300
    (2, 16, 8, 32, 3, 1, 1, 2, True, 0),    # two groups
    (1, 200, 5, 4, 3, 1, 1, 1, True, 1),    # K = 1800, N = 25: blocks of 1024
    (2, 8, 10, 8, 3, 1, 1, 8, True, 0),     # depthwise: MLAS's M = 1 kernel, K = 9
    (2, 8, 10, 8, 3, 2, 1, 8, False, 0),    # depthwise, stride 2
    (1, 4, 7, 4, 5, 1, 2, 4, True, 1),      # depthwise 5x5: K = 25, chunks of 4 then 1
    (2, 30, 6, 1, 1, 1, 0, 1, True, 0),     # 1x1 to one channel: M = 1, K = 30 unsliced
    (2, 40, 8, 1, 3, 1, 1, 1, True, 0),     # one channel, K = 360: two slices of 256
    (2, 320, 1, 64, 1, 1, 0, 1, True, 0),   # one output position (N = 1): M = 1 kernel swapped
    (2, 16, 3, 24, 3, 1, 0, 1, True, 0),    # 3x3 on 3x3, no padding: N = 1, K = 144
    (1, 160, 3, 12, 3, 1, 0, 1, False, 1),  # N = 1, K = 1440: not sliced
    (2, 16, 1, 30, 1, 1, 0, 2, True, 0),    # N = 1, two groups of 15 outputs (4, 4, 4, 2, 1)
]


@pytest.mark.parametrize("batch,cin,size,cout,k,stride,pad,groups,bias,threads", CONVS)
def test_conv_equals_onnxruntime(batch, cin, size, cout, k, stride, pad, groups, bias, threads):
    g = torch.Generator().manual_seed(cin * 1000 + cout)
    x = torch.randn(batch, cin, size, size, generator=g)
    w = torch.randn(cout, cin // groups, k, k, generator=g)
    b = torch.randn(cout, generator=g) if bias else None
    feeds = {"x": x, "w": w, **({"b": b} if bias else {})}
    node = helper.make_node("Conv", list(feeds), ["y"], strides=[stride] * 2, pads=[pad] * 4,
                            group=groups)
    expected = _onnxruntime(node, feeds, threads)
    got = floatconv.conv(x, w, b, (stride, stride), (pad, pad), (1, 1), groups)
    assert torch.equal(got, expected)
    torch_conv = F.conv2d(x, w, b, stride, pad, 1, groups)
    assert cin // groups * k * k <= 32 or not torch.equal(torch_conv, expected)


def test_conv1d_is_promoted_to_2d_as_onnxruntime_does():
    g = torch.Generator().manual_seed(3)
    x, w, b = torch.randn(2, 40, 30, generator=g), torch.randn(16, 40, 5, generator=g), None
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[2], pads=[2, 2])
    expected = _onnxruntime(node, {"x": x, "w": w})
    assert torch.equal(floatconv.conv(x, w, b, (2,), (2,), (1,), 1), expected)


_GEMM_SHAPES = [(2, 16, 10, True), (8, 300, 20, True), (8, 300, 200, True), (3, 1000, 5, True),
                (8, 300, 20, False), (5, 64, 1, True), (64, 512, 64, True), (1, 64, 10, True),
                (1, 70, 7, True), (1, 300, 9, False), (1, 5, 1, True), (1, 16, 6, True)]


def _gemm_case(m, k, n, bias):
    """(x, w, b, onnxruntime's Gemm of them) for one shape, with its own seed."""
    g = torch.Generator().manual_seed(m * 1000 + k + n)
    x, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
    b = torch.randn(n, generator=g) if bias else None
    feeds = {"x": x, "w": w, **({"b": b} if bias else {})}
    return x, w, b, _onnxruntime(helper.make_node("Gemm", list(feeds), ["y"], transB=1), feeds)


@pytest.mark.parametrize("m,k,n,bias", _GEMM_SHAPES)
def test_gemm_equals_onnxruntime(m, k, n, bias):
    x, w, b, expected = _gemm_case(m, k, n, bias)
    assert torch.equal(floatconv.gemm(x, w, b), expected)


def test_torch_linear_differs_from_onnxruntime_on_these_shapes():
    """The emulation is needed: torch's F.linear sums in another order than onnxruntime's Gemm
    on most of these shapes (which ones depends on the CPU's BLAS kernels: on an AVX-512 Xeon two
    of the twelve happen to agree, on AVX2 EPYCs none)."""
    cases = [(shape, _gemm_case(*shape)) for shape in _GEMM_SHAPES]
    differ = [shape for shape, (x, w, b, expected) in cases
              if not torch.equal(F.linear(x, w, b), expected)]
    assert len(differ) >= len(_GEMM_SHAPES) // 2, differ


def test_bad_arguments_name_the_argument():
    with pytest.raises(RuntimeError, match="ort_gemm: bias must have shape"):
        floatconv.gemm(torch.ones(2, 3), torch.ones(4, 3), torch.ones(3))
    with pytest.raises(RuntimeError, match="ort_conv2d: x .* do not match"):
        floatconv.conv(torch.ones(1, 3, 4, 4), torch.ones(2, 2, 1, 1), None, (1, 1), (0, 0),
                       (1, 1), 1)
    with pytest.raises(RuntimeError, match="ort_gemm: x must be float32"):
        floatconv.gemm(torch.ones(2, 3, dtype=torch.float64), torch.ones(4, 3), None)


def test_opcheck():
    g = torch.Generator().manual_seed(4)
    x, w = torch.randn(3, 20, generator=g), torch.randn(5, 20, generator=g)
    torch.library.opcheck(torch.ops.qsim.ort_gemm, (x, w, torch.randn(5, generator=g)))
    torch.library.opcheck(torch.ops.qsim.ort_gemm, (x, w, None))
    image, kernel = torch.randn(2, 4, 7, 6, generator=g), torch.randn(6, 2, 3, 2, generator=g)
    torch.library.opcheck(torch.ops.qsim.ort_conv2d,
                          (image, kernel, torch.randn(6, generator=g), [2, 1], [1, 0], [1, 2], 2))
