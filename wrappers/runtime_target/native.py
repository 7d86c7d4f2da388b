"""The onnxruntime target mode's one-pass C kernels (bindings/*_cpu.cpp, kernels/runtime/):
the arithmetic of :mod:`.arithmetic` (or beyond it) without torch temporaries.

- :func:`matmul_nbits`: MatMulNBits with 8-bit weights and int8 compute, the W8A16 Linears
  (``qsim::matmulnbits_q8``);
- :func:`qlinear_add_dequantized`: QLinearAdd with MLAS's AVX2 + FMA kernel on same-shape
  dequantized tensors (``qsim::qlinear_add_dq``);
- :func:`requantize_dequantized`: MLAS's requantization times the output scale
  (``qsim::requantize_dq``; torch when the binary predates it);
- :func:`layer_norm`, :func:`softmax`, :func:`gelu`, :func:`activation`, :func:`matmul`:
  onnxruntime's CPU float LayerNormalization, Softmax, Gelu, Sigmoid, SiLU, Tanh and MatMul
  (``qsim::ort_layer_norm``, ``qsim::ort_softmax``, ``qsim::ort_gelu``, ``qsim::ort_activation``,
  ``qsim::ort_matmul``; kernels/include/qsim/ortfloat.h), the float ops between a
  DequantizeLinear and a QuantizeLinear.
"""

import torch
from torch import Tensor

from . import arithmetic as ar

__all__ = ["matmul_nbits", "qlinear_add_dequantized", "requantize_dequantized", "layer_norm",
           "softmax", "gelu", "gelu_tanh", "activation", "matmul", "has_float_kernels"]


def matmul_nbits(x: Tensor, w_int: Tensor, w_scale: Tensor, w_zp: Tensor,
                 bias: Tensor | None) -> Tensor:
    """onnxruntime's MatMulNBits (8-bit weights, block size 32, accuracy level 4: int8 compute)
    of ``x @ w.T`` as MLAS computes it on AVX-512 VNNI (the C kernel ``qsim::matmulnbits_q8``,
    kernels/include/qsim/matmulnbits.h: ``x`` quantized to int8 per row and block of 32, the
    block products scaled and summed in MLAS's fp32 lane order, the zero point corrected by a
    float GEMM of block sums, the bias added before that correction).

    Args:
        x: ``(..., K)`` fp32 activations (a DequantizeLinear's output or float values).
        w_int: ``(N, K)`` weight grid integers ``q - zero_point``, as floats.
        w_scale, w_zp: the weight's fp32 scale and its stored uint8 zero point (a 0-d tensor
            or one per output channel): onnxruntime's rewrite stores an int8 weight shifted by
            128, so its zero point is ``zp + 128``.
        bias: ``(N,)`` fp32 or None.

    Returns:
        ``(..., N)`` fp32.

    Example::

        >>> x = torch.zeros(1, 2, 32); x[..., 0] = 1.0
        >>> w = torch.zeros(1, 32); w[0, 0] = 1.0
        >>> matmul_nbits(x, w, torch.tensor(0.5), torch.tensor(128.0), None)
        tensor([[[0.5000],
                 [0.5000]]])
    """
    if not hasattr(torch.ops.qsim, "matmulnbits_q8"):
        raise RuntimeError("matmul_nbits: torchqsim._C predates the op qsim::matmulnbits_q8; "
                           "rebuild it (pip install --no-build-isolation -e .)")
    n, k = w_int.shape
    blocks = -(-k // 32)
    stored_zp = w_zp.reshape(-1, 1).float().expand(n, 1)
    b = (w_int + stored_zp).to(torch.uint8)
    scale = w_scale.reshape(-1, 1).float().expand(n, blocks).contiguous()
    zp = stored_zp.expand(n, blocks).to(torch.uint8).contiguous()
    cpu = torch.device("cpu")  # a CPU kernel: a sim on another device computes it there
    y = torch.ops.qsim.matmulnbits_q8(x.reshape(-1, k).float().to(cpu), b.to(cpu),
                                      scale.to(cpu), zp.to(cpu),
                                      None if bias is None else bias.float().to(cpu))
    return y.reshape(*x.shape[:-1], n).to(x.device)


def qlinear_add_dequantized(a: Tensor, b: Tensor, pa: tuple, pb: tuple, pc: tuple,
                            type_range: tuple) -> Tensor:
    """:func:`.arithmetic.qlinear_add` with the AVX2 + FMA kernel on same-shape tensors, from the inputs'
    dequantized values `a`, `b` to the output's, ``(k - zc) * c_scale``, in one pass of the C
    kernel ``qsim::qlinear_add_dq`` (kernels/include/qsim/qladd.h): ``qa = rint(a / a_scale) +
    za``, ``k = clamp(rint(fma(qa, ra, fma(qb, rb, fixed))), *type_range)``.

    Example::

        >>> s = (torch.tensor(0.1), 3)
        >>> qlinear_add_dequantized(torch.tensor([0.5]), torch.tensor([0.2]), s, s, s, (0, 255))
        tensor([0.7000])
    """
    ra, rb, fixed = ar.qlinear_add_constant(pa, pb, pc)
    params = [float(pa[0]), float(pa[1]), float(pb[0]), float(pb[1]), float(ra), float(rb),
              float(fixed), float(type_range[0]), float(type_range[1]), float(pc[1]),
              float(pc[0])]
    return torch.ops.qsim.qlinear_add_dq(a, b, params)


def requantize_dequantized(acc: Tensor, multiplier: Tensor, channel_dim: int, lo: int, hi: int,
                           y_scale: Tensor) -> Tensor:
    """``arithmetic.requantize(acc, multiplier, lo, hi) * y_scale`` (the output's dequantized values), with
    `multiplier` one value or one per index of `channel_dim`: one pass of the C kernel
    ``qsim::requantize_dq`` (kernels/include/qsim/requant.h), or torch without it (a binary
    that predates it, or a tensor on another device).

    Example::

        >>> requantize_dequantized(torch.tensor([[10.0, -7.0]]), torch.tensor([0.25, 0.5]), -1,
        ...                        -128, 127, torch.tensor(0.5))
        tensor([[ 1., -2.]])
    """
    multiplier = multiplier.reshape(-1).float()
    if acc.device.type == "cpu" and hasattr(torch.ops.qsim, "requantize_dq"):
        return torch.ops.qsim.requantize_dq(acc.float(), multiplier, channel_dim, lo, hi,
                                            float(y_scale))
    if multiplier.numel() > 1:
        shape = [1] * acc.dim()
        shape[channel_dim] = -1
        multiplier = multiplier.reshape(shape)
    return ar.requantize(acc, multiplier, lo, hi).mul_(y_scale)


def has_float_kernels() -> bool:
    """Whether torchqsim._C has the float kernels (a binary built before them has not)."""
    return hasattr(torch.ops.qsim, "ort_matmul")


def layer_norm(x: Tensor, normalized_shape: tuple, weight: Tensor | None, bias: Tensor | None,
               eps: float) -> Tensor:
    """onnxruntime's LayerNormalization of fp32 CPU `x` over its trailing `normalized_shape`
    (one row of ``prod(normalized_shape)`` values; `weight` None: ones), bit for bit
    (``qsim::ort_layer_norm``: an fp64 mean, the centered variance in MLAS's fp32 lane order).

    Example::

        >>> layer_norm(torch.tensor([[1.0, 3.0]]), (2,), None, None, 0.0)
        tensor([[-1.,  1.]])
    """
    d = 1
    for n in normalized_shape:
        d *= n
    gamma = torch.ones(d) if weight is None else weight.detach().reshape(d).float()
    beta = None if bias is None else bias.detach().reshape(d).float()
    y = torch.ops.qsim.ort_layer_norm(x.reshape(-1, d), gamma, beta, float(eps))
    return y.reshape(x.shape)


def softmax(x: Tensor, dim: int) -> Tensor:
    """onnxruntime's Softmax (opset 13) of fp32 CPU `x` along `dim`, bit for bit
    (``qsim::ort_softmax``: MLAS's exp polynomial, the sum in its 16 AVX-512 lanes).

    Example::

        >>> softmax(torch.zeros(2, 1), 0)
        tensor([[0.5000],
                [0.5000]])
    """
    moved = x.movedim(dim, -1)
    y = torch.ops.qsim.ort_softmax(moved.reshape(-1, moved.shape[-1]))
    return y.reshape(moved.shape).movedim(-1, dim)


def gelu(x: Tensor) -> Tensor:
    """onnxruntime's exact Gelu of fp32 CPU `x`, bit for bit (``qsim::ort_gelu``: MLAS's
    AVX-512F erf polynomial).

    Example::

        >>> gelu(torch.tensor([0.0, 10.0]))
        tensor([ 0., 10.])
    """
    return torch.ops.qsim.ort_gelu(x)


def gelu_tanh(x: Tensor) -> Tensor:
    """onnxruntime's Gelu with ``approximate="tanh"`` of fp32 CPU `x`, bit for bit: ``t = x *
    ((C * x) * x + B)`` (B = fp32(sqrt(2 / pi)), C = fp32(0.044715 * sqrt(2 / pi)), each
    operation rounded to fp32, no FMA), MLAS's tanh of t (:func:`activation`), then ``(0.5 * x) *
    (tanh + 1)``.

    Example::

        >>> gelu_tanh(torch.tensor([0.0, 10.0]))
        tensor([ 0., 10.])
    """
    b = torch.tensor(0.7978845608028654, dtype=torch.float32)
    c = torch.tensor(0.035677408136300125, dtype=torch.float32)
    t = activation(x * ((c * x) * x + b), "tanh")
    return (0.5 * x) * (t + 1.0)


#: The kinds of :func:`activation` (``qsim_ort_activation_kind``, kernels/include/qsim/ortfloat.h).
ACTIVATIONS = {"sigmoid": 0, "silu": 1, "tanh": 2}


def activation(x: Tensor, kind: str) -> Tensor:
    """onnxruntime's ``"sigmoid"`` (MLAS's logistic: a rational polynomial), ``"silu"`` (its
    Sigmoid then Mul, ``x * sigmoid(x)``) or ``"tanh"`` (MLAS's rational tanh) of fp32 CPU `x`,
    bit for bit (``qsim::ort_activation``).

    Example::

        >>> activation(torch.tensor([0.0, 30.0]), "sigmoid")
        tensor([0.5000, 1.0000])
    """
    return torch.ops.qsim.ort_activation(x, ACTIVATIONS[kind])


def _stride_k(n: int) -> int:
    """MLAS's SGEMM K stride for `n` output columns (kernels/include/qsim/ortfloat.h)."""
    stride_n, stride_k = 128, 128
    while stride_n > 16 and stride_n // 2 >= n:
        stride_n, stride_k = stride_n // 2, stride_k * 2
    return stride_k


def matmul(a: Tensor, b: Tensor) -> Tensor | None:
    """onnxruntime's float MatMul of fp32 CPU `a` and `b` (``torch.matmul`` semantics, 2+ dims
    each, batch dims broadcast) as MLAS's SGEMM computes it (``qsim::ort_matmul``: an fma chain
    over K per output), or None where another arithmetic runs: M or N below 2 (MLAS's GEMV
    kernels), or K beyond one K stride (then onnxruntime's thread count changes the order).

    Example::

        >>> matmul(torch.ones(2, 3), torch.ones(3, 2))
        tensor([[3., 3.],
                [3., 3.]])
    """
    if a.dim() < 2 or b.dim() < 2:
        return None
    (m, k), n = a.shape[-2:], b.shape[-1]
    if m < 2 or n < 2 or k > _stride_k(n):
        return None
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a3 = a.expand(*batch, m, k).reshape(-1, m, k)
    b3 = b.expand(*batch, k, n).reshape(-1, k, n)
    return torch.ops.qsim.ort_matmul(a3, b3).reshape(*batch, m, n)
