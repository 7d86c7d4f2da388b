"""Fake (meta) registrations of the onnxruntime target mode's ops (bindings/satmm_cpu.cpp,
bindings/matmulnbits_cpu.cpp, bindings/qladd_cpu.cpp, bindings/requant_cpu.cpp,
bindings/ortfloat_cpu.cpp, bindings/ortconv_cpu.cpp).

``u8s8_pair_saturated_matmul(a, w) -> out``: ``a`` (R, K) uint8, ``w`` (N, K) int8, ``out`` (R, N)
int32, ``out[r, j] = sum_p clamp(a[r, 2p] * w[j, 2p] + a[r, 2p + 1] * w[j, 2p + 1], -32768, 32767)``
(MLAS's vpmaddubsw arithmetic; an odd K pairs the last element with a zero). Not differentiable.

``matmulnbits_q8(a, b, scale, zp, bias) -> out``: onnxruntime's MatMulNBits (8-bit weights, block
size 32, int8 compute) as MLAS computes it on AVX-512 VNNI (kernels/include/qsim/matmulnbits.h):
``a`` (R, K) float32, ``b`` (N, K) stored uint8 weights, ``scale`` (N, ceil(K / 32)) float32,
``zp`` likewise uint8, ``bias`` (N,) float32 or None; ``out`` (R, N) float32.

``qlinear_add_dq(a, b, params) -> out``: onnxruntime's QLinearAdd of two same-shape float32
dequantized tensors as MLAS's AVX2 + FMA kernel computes it, returning the output's dequantized
values (kernels/include/qsim/qladd.h); ``params``: a_scale, a_zero, b_scale, b_zero, ra, rb,
fixed, lo, hi, c_zero, c_scale.

``requantize_dq(acc, multiplier, channel_dim, lo, hi, y_scale) -> out``: MLAS's requantization
of an fp32 accumulator to the output's dequantized values, ``clamp(rint(acc * multiplier), lo,
hi) * y_scale`` (kernels/include/qsim/requant.h), the multiplier shared or one per index of
``channel_dim``.

``ort_layer_norm(x, gamma, beta, eps)``, ``ort_softmax(x)``, ``ort_gelu(x)``,
``ort_activation(x, kind)``: onnxruntime's CPU float LayerNormalization and Softmax over the rows
of a 2-D float32 ``x``, its exact Gelu and its Sigmoid (kind 0), SiLU (1: Sigmoid then Mul) or
Tanh (2) of each element, bit for bit (kernels/include/qsim/ortfloat.h); same shape out.
``ort_reduce_mean(x)``: onnxruntime's ReduceMean of each row of a 2-D float32 ``x`` (R, n) -> (R,)
(Eigen's 4-float packet order, the rows taken as one 16-byte aligned buffer).
``ort_matmul(a, b)``: MLAS's SGEMM arithmetic of a float MatMul, ``a`` (B, M, K) times ``b`` (B,
K, N), M and N >= 2 (an fma chain over K per output within MLAS's K stride).

``ort_gemm(x, w, bias)``, ``ort_conv2d(x, w, bias, stride, padding, dilation, groups)``:
onnxruntime's CPU float Gemm (``x @ w.T + bias``, x (M, K), w (N, K)) and 2-D Conv (zeros
padding) in MLAS's fp32 summation order (kernels/include/qsim/ortconv.h), bit for bit.

Example::

    >>> import torch, torchqsim
    >>> a = torch.tensor([[255, 255]], dtype=torch.uint8)
    >>> w = torch.tensor([[127, 127]], dtype=torch.int8)
    >>> torch.ops.qsim.u8s8_pair_saturated_matmul(a, w)
    tensor([[32767]], dtype=torch.int32)
    >>> a = torch.zeros(1, 32); a[0, 0] = 1.0
    >>> b = torch.full((1, 32), 128, dtype=torch.uint8); b[0, 0] = 129
    >>> torch.ops.qsim.matmulnbits_q8(a, b, torch.tensor([[0.5]]),
    ...                               torch.tensor([[128]], dtype=torch.uint8), None)
    tensor([[0.5000]])
    >>> torch.ops.qsim.qlinear_add_dq(torch.tensor([0.5]), torch.tensor([0.2]),
    ...                               [0.1, 3, 0.1, 3, 1, 1, -3, 0, 255, 3, 0.1])
    tensor([0.7000])
    >>> torch.ops.qsim.requantize_dq(torch.tensor([10.0, -7.0]), torch.tensor([0.25]), 0,
    ...                              -128, 127, 0.5)
    tensor([ 1., -1.])
    >>> torch.ops.qsim.ort_softmax(torch.zeros(1, 2))
    tensor([[0.5000, 0.5000]])
"""

import torch

__all__ = []


def _u8s8_pair_saturated_matmul_fake(a, w):
    torch._check(a.dim() == 2 and w.dim() == 2, lambda: "a and w must be 2-D")
    torch._check(a.dtype == torch.uint8 and w.dtype == torch.int8,
                 lambda: f"a must be uint8 and w int8, got {a.dtype} and {w.dtype}")
    torch._check(a.shape[1] == w.shape[1], lambda: "a and w must have the same number of columns")
    return a.new_empty((a.shape[0], w.shape[0]), dtype=torch.int32)


def _matmulnbits_q8_fake(a, b, scale, zp, bias):
    torch._check(a.dim() == 2 and b.dim() == 2, lambda: "a and b must be 2-D")
    torch._check(a.shape[1] == b.shape[1], lambda: "a and b must have the same number of columns")
    return a.new_empty((a.shape[0], b.shape[0]))


def _qlinear_add_dq_fake(a, b, params):
    torch._check(a.shape == b.shape, lambda: "a and b must have the same shape")
    return torch.empty_like(a)


def _requantize_dq_fake(acc, multiplier, channel_dim, lo, hi, y_scale):
    return torch.empty_like(acc)


def _ort_matmul_fake(a, b):
    torch._check(a.dim() == 3 and b.dim() == 3, lambda: "a and b must be 3-D")
    return a.new_empty((a.shape[0], a.shape[1], b.shape[2]))


def _ort_reduce_mean_fake(x):
    torch._check(x.dim() == 2, lambda: f"ort_reduce_mean: x must be 2-D, got {tuple(x.shape)}")
    return x.new_empty((x.shape[0],))


def _same_shape_fake(x, *args):
    return torch.empty_like(x)


# A torchqsim._C built before this op (a stale binary next to newer sources) still imports; the
# target mode's saturating path then says to rebuild (runtime_target/arithmetic.py).
if hasattr(torch.ops.qsim, "u8s8_pair_saturated_matmul"):
    torch.library.register_fake("qsim::u8s8_pair_saturated_matmul")(
        _u8s8_pair_saturated_matmul_fake)
if hasattr(torch.ops.qsim, "matmulnbits_q8"):
    torch.library.register_fake("qsim::matmulnbits_q8")(_matmulnbits_q8_fake)
if hasattr(torch.ops.qsim, "qlinear_add_dq"):
    torch.library.register_fake("qsim::qlinear_add_dq")(_qlinear_add_dq_fake)
if hasattr(torch.ops.qsim, "requantize_dq"):
    torch.library.register_fake("qsim::requantize_dq")(_requantize_dq_fake)
def _ort_gemm_fake(x, w, bias):
    torch._check(x.dim() == 2 and w.dim() == 2, lambda: "x and w must be 2-D")
    return x.new_empty((x.shape[0], w.shape[0]))


def _ort_conv2d_fake(x, w, bias, stride, padding, dilation, groups):
    size = [(x.shape[2 + i] + 2 * padding[i] - dilation[i] * (w.shape[2 + i] - 1) - 1)
            // stride[i] + 1 for i in (0, 1)]
    return x.new_empty((x.shape[0], w.shape[0], *size))


if hasattr(torch.ops.qsim, "ort_gemm"):
    torch.library.register_fake("qsim::ort_gemm")(_ort_gemm_fake)
    torch.library.register_fake("qsim::ort_conv2d")(_ort_conv2d_fake)
for _name in ("ort_layer_norm", "ort_softmax", "ort_gelu", "ort_activation"):
    if hasattr(torch.ops.qsim, _name):
        torch.library.register_fake(f"qsim::{_name}")(_same_shape_fake)
if hasattr(torch.ops.qsim, "ort_matmul"):
    torch.library.register_fake("qsim::ort_matmul")(_ort_matmul_fake)
if hasattr(torch.ops.qsim, "ort_reduce_mean"):
    torch.library.register_fake("qsim::ort_reduce_mean")(_ort_reduce_mean_fake)
