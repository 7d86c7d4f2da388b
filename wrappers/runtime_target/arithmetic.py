"""onnxruntime's integer arithmetic of fused QDQ groups, in torch (docs/runtime_target.md §2).

Every function takes and returns float tensors holding exact integers or fp32 values, computed
so that each rounding step is the one onnxruntime's CPU kernels perform:

- :func:`grid_integers`: ``q - zero_point`` of a quantize-dequantized tensor (exact);
- :func:`quantized_bias`: the int32 bias onnxruntime's weight/bias quantization pass computes,
  ``Round(bias / (input_scale * weight_scale))`` in fp32, ties to even;
- :func:`integer_accumulate`: an exact integer accumulation (conv or matmul) of grid integers
  and the bias, rounded to fp32 once, with fp32 kernels (:func:`exact_product`: the weights
  split into 4-bit halves when a partial sum could exceed 2**24; fp64 only beyond that);
- :func:`requantize`: the requantization of MLAS's QLinearConv / QGemm output processor:
  ``fp32(acc) * fp32(fp32(x_scale * w_scale) / y_scale)``, clamped, rounded half to even;
- :func:`qlinear_add`: MLAS's QLinearAdd (x86 SSE2 or AVX2+FMA kernel);
  :func:`qlinear_add_dequantized`: the AVX2+FMA one on same-shape dequantized tensors in one C
  pass (``qsim::qlinear_add_dq``);
- :func:`qlinear_mul`: MLAS's QLinearMul (x86 SSE2 kernel, any broadcast);
- :func:`qlinear_softmax`: onnxruntime's QLinearSoftmax (lookup table, fp32 sum);
- :func:`saturated_matmul`: the accumulation of MLAS's AVX2 u8 x s8 kernels, whose
  ``vpmaddubsw`` adds two products in int16 with saturation;
- :func:`matmul_nbits`: MatMulNBits with 8-bit weights and int8 compute (the C kernel
  ``qsim::matmulnbits_q8``), the W8A16 Linears.

Example::

    >>> import torch
    >>> acc = torch.tensor([[3.0, -40.0]])
    >>> requantize(acc, torch.tensor(0.25), -128, 127)
    tensor([[  1., -10.]])
"""

import math

import torch
from torch import Tensor

__all__ = ["grid_integers", "quantized_bias", "integer_accumulate", "exact_product",
           "exact_matmul", "requantize", "qlinear_add", "qlinear_add_dequantized", "qlinear_mul", "softmax_table",
           "qlinear_softmax", "fma_f32", "uses_fma", "uses_avx512", "saturates_u8s8",
           "saturated_matmul", "matmul_nbits"]

_EXACT_F32 = float(2 ** 24)


def grid_integers(x: Tensor, scale: Tensor) -> Tensor:
    """``q - zero_point`` of ``x = (q - zero_point) * scale`` (a DequantizeLinear output):
    ``rint(x / scale)`` recovers it exactly (the relative error of the two fp32 roundings is
    below 2**-22, far below half a step for grids of up to 16 bits)."""
    return torch.div(x, scale).round_()


def quantized_bias(bias: Tensor, x_scale: Tensor, w_scale: Tensor) -> Tensor:
    """The int32 bias (as exact floats) of a fused Conv/Gemm: ``bias_scale = fp32(x_scale *
    w_scale)`` (per output channel when `w_scale` is), ``Round(fp32(bias / bias_scale))``
    ties to even (onnxruntime's Mul, Div, Round, Cast subgraph, constant-folded)."""
    return torch.round(bias / (x_scale * w_scale))


def integer_accumulate(op, x: Tensor, w: Tensor, bias: Tensor | None, channel_dim: int) -> Tensor:
    """``op(x, w) + bias`` exactly, for grid integers `x`, `w` and an integer `bias`, returned in
    fp32 as MLAS converts its int32 accumulator.

    `op` is a bilinear torch function (``F.conv2d`` with its arguments bound, ``F.linear``);
    `bias` holds one value per output channel, on dim `channel_dim` of the result
    (:func:`exact_product`).

    Example::

        >>> import torch.nn.functional as F
        >>> x, w = torch.full((1, 600), 255.0), torch.full((2, 600), 127.0)
        >>> integer_accumulate(F.linear, x, w, torch.tensor([1.0, -1.0]), -1)  # 19431001 > 2**24
        tensor([[19431000., 19431000.]])
    """
    if bias is None:
        return exact_product(op, x, w, _output_sums)
    return exact_product(op, x, w, _output_sums, bias.abs().max(),
                         lambda acc: acc.add_(_on_channels(bias.to(acc.dtype), acc, channel_dim)))


def _output_sums(w: Tensor) -> Tensor:
    """Per output channel (dim 0), the sum of ``|w|`` over the rest."""
    return w.abs().flatten(1).sum(1) if w.dim() > 1 else w.abs()


def exact_product(op, x: Tensor, w: Tensor, sums, bias_bound=0, add_bias=None) -> Tensor:
    """``fp32(op(x, w) + bias)`` of grid integers: the exact integer, rounded to fp32 once (as
    MLAS converts its int32 accumulator).

    `sums`: per output, the sum of ``|w|`` over the reduction; `add_bias` adds the integer bias
    in place (bounded by `bias_bound`), or None. Whatever order the fp32 kernel adds the products
    in, each partial sum lies between minus the sum of the negative products and the sum of the
    positive ones (:func:`_partial_bound`); when that bound is below ``2**24`` every partial sum
    is an exact integer: one fp32 product, then the bias (one rounding). Else, with ``w = 16 * hi
    + lo`` (``lo`` in ``[0, 15]``), when both halves are exact in fp32 (the bias with ``lo``):
    ``16 * op(x, hi) + (op(x, lo) + bias)``, whose one fp32 addition rounds the exact sum once;
    else in fp64 (exact below 2**53)."""
    low, high = torch.aminmax(x)  # one pass, no |x| temporary
    up, down = high.clamp(min=0), (-low).clamp(min=0)
    add_bias = add_bias or (lambda acc: acc)
    if _partial_bound(up, down, w, sums) < _EXACT_F32:
        return add_bias(op(x, w))
    hi = torch.floor(w / 16)
    lo = w - 16 * hi
    if _partial_bound(up, down, hi, sums) < _EXACT_F32 and \
            torch.maximum(up, down) * sums(lo).max() + bias_bound < _EXACT_F32:
        return op(x, hi).mul_(16).add_(add_bias(op(x, lo)))
    return add_bias(op(x.double(), w.double())).float()


def _partial_bound(up: Tensor, down: Tensor, w: Tensor, sums) -> Tensor:
    """The largest magnitude a partial sum of ``x * w`` products can reach over the outputs, for
    ``x`` in ``[-down, up]``: per output, the positive products add up to at most ``up * P +
    down * N`` and the negative ones to at most ``down * P + up * N`` (``P``, ``N``: the sums of
    the positive and of the negated negative weights)."""
    pos, neg = sums(w.clamp(min=0)), sums(w.clamp(max=0))
    return torch.maximum(up * pos + down * neg, down * pos + up * neg).max()


def exact_matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` of grid integers, exact (:func:`exact_product`), returned in fp32 as MLAS
    converts its int32 accumulator."""
    return exact_product(torch.matmul, a, b, lambda t: t.abs().sum(-2))


def _on_channels(bias: Tensor, acc: Tensor, channel_dim: int) -> Tensor:
    shape = [1] * acc.dim()
    shape[channel_dim] = -1
    return bias.reshape(shape)


def requantize(acc: Tensor, multiplier: Tensor, lo: int, hi: int) -> Tensor:
    """``rint(clamp(fp32(acc) * multiplier, lo, hi))`` (MLAS's requantization: fp32 product,
    clamp to ``[qmin - zp, qmax - zp]``, round half to even), without the zero point."""
    return torch.mul(acc.float(), multiplier).clamp_(lo, hi).round_()


def fma_f32(a: Tensor, b: Tensor, c) -> Tensor:
    """fp32 fused multiply-add ``fp32(a * b + c)`` with one rounding: the product of two fp32
    values is exact in fp64, and the sum of the small integers and ratios MLAS adds is exact in
    fp64 too (at most 53 significant bits), so one rounding to fp32 remains. `b` broadcasts into
    `a`'s shape (a 0-d ratio, a per-row scale); `c` is a float or a tensor that broadcasts with
    `a` (the result takes the broadcast shape); one fp64 buffer, updated in place when `c` adds
    no dimensions.

    Example::

        >>> fma_f32(torch.tensor([3.0]), torch.tensor(0.1), torch.tensor(1.0))
        tensor([1.3000])
    """
    t = a.to(torch.float64, copy=True).mul_(b.double())
    if isinstance(c, Tensor):
        c = c.double() if c.dim() == 0 else c
        if torch.broadcast_shapes(t.shape, c.shape) != t.shape:
            return (t + c).float()
    return t.add_(c).float()


def uses_fma() -> bool:
    """Whether MLAS picks its AVX2 (FMA) kernels on this CPU (torch's own CPU capability
    detection: AVX2 or AVX512)."""
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def uses_avx512() -> bool:
    """Whether MLAS picks its AVX-512 kernels (QLinearSoftmax) on this CPU (torch's detection)."""
    return torch.backends.cpu.get_cpu_capability() == "AVX512"


def qlinear_add(qa: Tensor, qb: Tensor, a: tuple, b: tuple, c: tuple, type_range: tuple,
                fma: bool, scalar_b: bool = False) -> Tensor:
    """MLAS's QLinearAdd (``qladd.cpp``, ``qladd_avx2.cpp``) of two quantized tensors (any
    broadcast), as stored integers.

    With ``ra = fp32(a_scale / c_scale)``, ``rb`` likewise: the AVX2 kernel (compiled with FMA
    contraction) computes ``fixed = fp32(zc - fma(ra, za, fp32(rb * zb)))`` and
    ``fma(qa, ra, fma(qb, rb, fixed))``; with a scalar B it first folds B into the constant,
    ``fixed' = fma(qb, rb, fixed)``, then ``fma(qa, ra, fixed')``: the same values. The SSE2 kernel rounds each
    product and sum: ``fixed = zc - (ra * za + rb * zb)``, ``(fixed + qa * ra) + qb * rb``, or
    ``(fixed + qb * rb) + qa * ra`` with a scalar B. onnxruntime's broadcast loop passes an
    operand as the scalar B per span when it is broadcast along the innermost dimension, and
    swaps A and B when A is that operand (the caller swaps them too).

    Args:
        qa, qb: the stored integers (``q``, zero point included) of A and B (broadcastable).
        a, b, c: ``(scale, zero_point)`` of A, B and the output C (fp32 scale tensors, ints).
        type_range: ``(lowest, highest)`` of the output's integer type (saturation).
        fma: the AVX2 kernel instead of SSE2's.
        scalar_b: B is a scalar per span of A (broadcast along A's innermost dimension).

    Returns:
        The stored integers of C (``q``, zero point included).

    Example::

        >>> s = (torch.tensor(0.1), 3)
        >>> qlinear_add(torch.tensor([[5.0, 9.0]]), torch.tensor([[4.0]]), s, s, s, (0, 255),
        ...             True, scalar_b=True)
        tensor([[ 6., 10.]])
    """
    if fma:
        ra, rb, fixed = _qlinear_add_constant(a, b, c)
        r = fma_f32(qa, ra, fma_f32(qb, rb, fixed))  # fixed' of a scalar B: the inner fma
    else:
        ra, rb = a[0] / c[0], b[0] / c[0]
        fixed = float(c[1]) - (ra * a[1] + rb * b[1])
        r = (fixed + qb * rb) + qa * ra if scalar_b else (fixed + qa * ra) + qb * rb
    return torch.clamp(torch.round(r), *type_range)


def _qlinear_add_constant(a: tuple, b: tuple, c: tuple) -> tuple:
    """``(ra, rb, fixed)`` of MLAS's AVX2 QLinearAdd kernel for ``(scale, zero_point)`` pairs
    `a`, `b`, `c`: ``ra = fp32(a_scale / c_scale)``, ``rb`` likewise, and its FMA-contracted
    constant ``fixed = fp32(zc - fma(ra, za, fp32(rb * zb)))`` (fp32 tensors)."""
    ra, rb = a[0] / c[0], b[0] / c[0]
    return ra, rb, float(c[1]) - fma_f32(ra, torch.tensor(float(a[1])), rb * b[1])


def qlinear_add_dequantized(a: Tensor, b: Tensor, pa: tuple, pb: tuple, pc: tuple,
                            type_range: tuple) -> Tensor:
    """:func:`qlinear_add` with the AVX2 + FMA kernel on same-shape tensors, from the inputs'
    dequantized values `a`, `b` to the output's, ``(k - zc) * c_scale``, in one pass of the C
    kernel ``qsim::qlinear_add_dq`` (kernels/include/qsim/qladd.h): ``qa = rint(a / a_scale) +
    za``, ``k = clamp(rint(fma(qa, ra, fma(qb, rb, fixed))), *type_range)``.

    Example::

        >>> s = (torch.tensor(0.1), 3)
        >>> qlinear_add_dequantized(torch.tensor([0.5]), torch.tensor([0.2]), s, s, s, (0, 255))
        tensor([0.7000])
    """
    ra, rb, fixed = _qlinear_add_constant(pa, pb, pc)
    params = [float(pa[0]), float(pa[1]), float(pb[0]), float(pb[1]), float(ra), float(rb),
              float(fixed), float(type_range[0]), float(type_range[1]), float(pc[1]),
              float(pc[0])]
    return torch.ops.qsim.qlinear_add_dq(a, b, params)


def qlinear_mul(ia: Tensor, ib: Tensor, ratio: Tensor, zc: int, type_range: tuple) -> Tensor:
    """MLAS's QLinearMul (``qlmul.cpp``, the SSE2 kernel x86 builds use) as stored integers:
    the exact int32 product of the grid integers, converted to fp32, times
    ``ratio = fp32(fp32(a_scale * b_scale) / c_scale)``, plus ``float(zc)`` (two fp32
    roundings, no FMA), rounded half to even and saturated to the output type. A broadcast
    operand gives the same values (onnxruntime calls the kernel per span, swapping A and B when
    A is the scalar: the product and ratio are symmetric).

    Args:
        ia, ib: grid integers ``q - zero_point`` of A and B (broadcastable).
        ratio: the fp32 ratio above.
        zc: the output's zero point.
        type_range: ``(lowest, highest)`` of the output's integer type.

    Example::

        >>> qlinear_mul(torch.tensor([3.0]), torch.tensor([5.0]), torch.tensor(0.1), 128, (0, 255))
        tensor([130.])
    """
    return torch.clamp(torch.round(ia * ib * ratio + float(zc)), *type_range)


def softmax_table(x_scale: float, length: int) -> Tensor:
    """onnxruntime's QLinearSoftmax lookup table (``qlinear_softmax.cc``) for uint8 inputs of
    scale `x_scale` and `length` values per softmax: ``fp32(exp((i - 255 + shift) * x_scale))``
    in double, ``shift = max(0, log(FLT_MAX / length) - 5) / x_scale`` (the sum of `length`
    values stays finite)."""
    shift = max(0.0, math.log(float(torch.finfo(torch.float32).max / torch.tensor(
        float(length)))) - 5) / x_scale
    return torch.tensor([math.exp((i - 255 + shift) * x_scale) for i in range(256)],
                        dtype=torch.float32)


def qlinear_softmax(q: Tensor, table: Tensor, y_scale: Tensor, zy: int, avx512: bool) -> Tensor:
    """onnxruntime's QLinearSoftmax over the last dim of `q` (stored uint8 integers), as MLAS's
    x86 kernels compute it (``qsoftmax_kernel_avx2.cpp``, ``_avx512.cpp``): the table shifted so
    that the row's largest input reads entry 255; the fp32 sum of the row's entries in the
    kernel's order (:func:`_softmax_sum`); ``scale = fp32(fp32(1 / sum) * floor(fp32(1 /
    y_scale)))``; then ``rint(entry * scale + zy)`` (one FMA on AVX-512, a product and a sum
    on AVX2), at most 255.

    Example::

        >>> q = torch.tensor([[0.0, 255.0]])
        >>> qlinear_softmax(q, softmax_table(0.05, 2), torch.tensor(1 / 256), 0, True)
        tensor([[  0., 255.]])
    """
    entries = table[(q + (255 - q.amax(-1, keepdim=True))).long()]
    inverse = torch.ones_like(y_scale) / _softmax_sum(entries, avx512)
    scale = (inverse * torch.floor(torch.ones_like(y_scale) / y_scale)).unsqueeze(-1)
    zero = torch.tensor(float(zy))
    r = fma_f32(entries, scale, zero) if avx512 else entries * scale + zero
    return torch.clamp(torch.round(r), max=255)


def _softmax_sum(entries: Tensor, avx512: bool) -> Tensor:
    """The fp32 row sums of MLAS's softmax kernels: AVX-512 adds 32-value chunks into 16 lanes
    (two 16-value halves in turn), folds the lanes as ``(((l0..3 + l4..7) + (l8..11 +
    l12..15))`` then within 4 lanes ``(a + b) + (c + d)``, then adds the tail values in order;
    AVX2 adds 16-value chunks into 8 lanes, sums the tail from 0 and then adds lanes 0..7."""
    width = 16 if avx512 else 8
    step = 2 * width
    body = entries.shape[-1] - entries.shape[-1] % step
    lanes = entries.new_zeros(*entries.shape[:-1], width)
    for start in range(0, body, width):
        lanes = lanes + entries[..., start:start + width]
    tail = entries[..., body:]
    if avx512:
        half = (lanes[..., 0:4] + lanes[..., 4:8]) + (lanes[..., 8:12] + lanes[..., 12:16])
        total = (half[..., 0] + half[..., 1]) + (half[..., 2] + half[..., 3])
        for j in range(tail.shape[-1]):
            total = total + tail[..., j]
        return total
    total = torch.zeros_like(entries[..., 0])
    for j in range(tail.shape[-1]):
        total = total + tail[..., j]
    for j in range(width):
        total = total + lanes[..., j]
    return total


def saturates_u8s8() -> bool:
    """Whether MLAS's u8 x s8 kernels on this CPU add pairs of products in int16 with saturation
    (``vpmaddubsw``: the AVX2 and AVX512BW kernels of x86 CPUs without VNNI; the VNNI kernels
    accumulate in int32). Read from the Linux CPU flags; False when they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx2" in flags and not {"avx512_vnni", "avx_vnni"} & set(flags)


def saturated_matmul(cols: Tensor, w: Tensor) -> Tensor:
    """``cols @ w.T`` as MLAS's AVX2/AVX512BW u8 x s8 kernels compute it: each pair of adjacent
    products ``(2p, 2p + 1)`` of the reduction dimension is added in int16 with saturation
    (``vpmaddubsw``), the pair sums in int32 (the C kernel ``qsim::u8s8_pair_saturated_matmul``,
    kernels/include/qsim/satmm.h). Only weight pairs of the same sign with ``255 * (|w0| + |w1|)
    > 32767`` can saturate, which is why 7-bit weights never do.

    Args:
        cols: ``(R, K)`` stored activation integers (uint8 values, zero point included), in
            MLAS's reduction order, as floats.
        w: ``(N, K)`` int8 weight integers, same order, as floats.

    Returns:
        ``(R, N)`` int32 (exact: the sums stay below 2**31).

    Example::

        >>> a, w = torch.tensor([[255.0, 255.0, 1.0]]), torch.tensor([[127.0, 127.0, 3.0]])
        >>> saturated_matmul(a, w)
        tensor([[32770]], dtype=torch.int32)
    """
    if not hasattr(torch.ops.qsim, "u8s8_pair_saturated_matmul"):
        raise RuntimeError("saturated_matmul: torchqsim._C predates the op "
                           "qsim::u8s8_pair_saturated_matmul; rebuild it (pip install "
                           "--no-build-isolation -e .)")
    a = cols.to(torch.uint8).contiguous()
    return torch.ops.qsim.u8s8_pair_saturated_matmul(a, w.to(torch.int8).contiguous())


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
    y = torch.ops.qsim.matmulnbits_q8(x.reshape(-1, k).float(), b, scale, zp, bias)
    return y.reshape(*x.shape[:-1], n)
