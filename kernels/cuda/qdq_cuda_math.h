/*
 * qdq_cuda_math.h (internal, C++): the per-element arithmetic and the index maps of the CUDA qdq
 * kernels (qdq.cu), written once for the device and the host.
 *
 * Every element is computed exactly as kernels/qdq/qdq_common.h and kernels/qdq/qdq_ref.c compute it on
 * the CPU, operation for operation. On the device each float operation is an explicit IEEE
 * round-to-nearest intrinsic (__fdiv_rn, __fadd_rn, ...): never a reciprocal multiply, never
 * contracted into an FMA, whatever the nvcc flags. On the host the same functions use plain
 * operators, so tests/kernels/qdq/test_qdq_cuda_math.cpp checks this file against the C reference
 * kernels on machines without a GPU (g++ compiles it; QSIM_HD is then plain `inline`).
 *
 * Index maps: flat element -> qparam index (QparamIndex, as qsim_layout defines it in qsim/qdq.h),
 * and reduction group -> its elements in ascending flat order (GroupMap, the groups of
 * qsim_backward_reduce_f32, except that a per-tensor layout is one group). Both come in two
 * widths: Index = uint32_t divides by multiply-high (tensors below 2^31 elements), Index = int64_t
 * divides plainly (larger tensors).
 */
#ifndef QSIM_QDQ_CUDA_MATH_H
#define QSIM_QDQ_CUDA_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "qsim/qdq.h"

#if defined(__CUDACC__)
#define QSIM_HD __host__ __device__ __forceinline__
#else
#define QSIM_HD inline
#endif

namespace qsim_cuda {

/* ---- IEEE round-to-nearest arithmetic ------------------------------------------------------ */

QSIM_HD float div_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}

QSIM_HD float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

QSIM_HD float sub_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}

QSIM_HD float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

QSIM_HD double add_rn(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}

/* The bits of `from` as a To of the same size (a register move on the device too). */
template <typename To, typename From>
QSIM_HD To bit_cast(From from) {
    static_assert(sizeof(To) == sizeof(From), "bit_cast between types of one size");
    To to;
    memcpy(&to, &from, sizeof to);
    return to;
}

QSIM_HD uint32_t f32_bits(float f) {
    return bit_cast<uint32_t>(f);
}

QSIM_HD float bits_f32(uint32_t u) {
    return bit_cast<float>(u);
}

/* ---- elements (qdq_common.h, qdq_ref.c) ----------------------------------------------------- */

/* Clamp as qsim_clampf: NaN goes to lo (qmin), as in onnxruntime's QuantizeLinear. */
QSIM_HD float clampf(float v, float lo, float hi) {
    return v > lo ? (v < hi ? v : hi) : lo;
}

/* rint(x / s) + zp, before clamping (rintf: ties to even on host and device). */
QSIM_HD float grid_pos(float x, qsim_grid g) {
    return add_rn(rintf(div_rn(x, g.scale)), g.zero_point);
}

/* Not clamped: the position is on the grid (false for NaN). */
QSIM_HD bool in_grid(float pos, qsim_grid g) {
    return pos >= g.qmin && pos <= g.qmax;
}

/* The grid of qparam entry `idx` (on the device through the read-only cache: the qparams never
 * change during a kernel, so these loads may move past the kernel's stores). */
template <typename Index>
QSIM_HD qsim_grid grid_at(const qsim_qparams & p, Index idx) {
#ifdef __CUDA_ARCH__
    return qsim_grid{ __ldg(p.scale + idx), __ldg(p.zero_point + idx), p.qmin, p.qmax };
#else
    return qsim_grid{ p.scale[idx], p.zero_point[idx], p.qmin, p.qmax };
#endif
}

/* Forward of one element: qsim_{qdq,quantize,dequantize}_f32_ref. */
template <qsim_op Op>
QSIM_HD float forward(float x, qsim_grid g) {
    if (Op == QSIM_OP_DEQUANTIZE) {
        return mul_rn(sub_rn(x, g.zero_point), g.scale);
    }
    const float q = clampf(grid_pos(x, g), g.qmin, g.qmax);
    return Op == QSIM_OP_QUANTIZE ? q : mul_rn(sub_rn(q, g.zero_point), g.scale);
}

/* Backward of one element: dx, and the element's terms of the scale and zero-point gradients
 * (the float each _ref backward kernel adds to its double lanes). */
struct Grad {
    float dx, ds, dz;
};

template <qsim_op Op>
QSIM_HD Grad backward(float x, float dy, qsim_grid g) {
    if (Op == QSIM_OP_DEQUANTIZE) {
        return { mul_rn(dy, g.scale), mul_rn(dy, sub_rn(x, g.zero_point)), mul_rn(-dy, g.scale) };
    }
    const float t   = div_rn(x, g.scale);
    const float pos = add_rn(rintf(t), g.zero_point);
    const bool  m   = in_grid(pos, g);
    if (Op == QSIM_OP_QUANTIZE) {
        const float d  = m ? dy : 0.0f;
        const float dx = div_rn(d, g.scale);
        return { dx, m ? mul_rn(-dx, t) : 0.0f, d };
    }
    const float qz = sub_rn(clampf(pos, g.qmin, g.qmax), g.zero_point);
    return { m ? dy : 0.0f, mul_rn(dy, m ? sub_rn(qz, t) : qz), m ? 0.0f : mul_rn(-dy, g.scale) };
}

/* fp32 -> fp16 -> fp32 with ties to even, overflow to Inf, subnormals kept (qsim_round_f16). */
QSIM_HD float round_f16(float f) {
    const uint32_t u    = f32_bits(f);
    const uint32_t sign = u & 0x80000000u;
    const uint32_t a    = u & 0x7fffffffu;
    if (a >= 0x7f800000u) {
        return f;
    }
    if (a >= 0x477ff000u) {
        return bits_f32(sign | 0x7f800000u);
    }
    if (a < 0x38800000u) {
        const float r = sub_rn(add_rn(bits_f32(a), 0.5f), 0.5f);
        return bits_f32(sign | f32_bits(r));
    }
    const uint32_t odd = (a >> 13) & 1u;
    return bits_f32(sign | ((a + 0x0fffu + odd) & ~0x1fffu));
}

/* fp32 -> bf16 -> fp32 with ties to even; NaN stays NaN (qsim_round_bf16). */
QSIM_HD float round_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return f;
    }
    const uint32_t odd = (u >> 16) & 1u;
    return bits_f32((u + 0x7fffu + odd) & 0xffff0000u);
}

/* ---- 16-bit floating data: the bits of qsim_widen_h16_ref / qsim_narrow_h16_ref ------------- */

/* fp16 or bf16 bits to fp32, exactly (a fp16 NaN becomes sign | 0x7F800000 | payload << 13). */
QSIM_HD float widen_h16(qsim_half_kind kind, uint16_t h) {
    if (kind == QSIM_HALF_BF16) {
        return bits_f32(static_cast<uint32_t>(h) << 16);
    }
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1fu) {
        return bits_f32(sign | 0x7f800000u | m << 13);
    }
    if (e == 0) {
        return bits_f32(sign | f32_bits(mul_rn(static_cast<float>(m), 0x1p-24f)));
    }
    return bits_f32(sign | (e + 112u) << 23 | m << 13);
}

/* fp32 to fp16 or bf16 bits, ties to even, overflow to Inf; NaN becomes 0x7FC0 (bf16) or
 * sign | 0x7E00 (fp16). */
QSIM_HD uint16_t narrow_h16(qsim_half_kind kind, float f) {
    const uint32_t u   = f32_bits(f);
    const bool     nan = (u & 0x7fffffffu) > 0x7f800000u;
    if (kind == QSIM_HALF_BF16) {
        return nan ? 0x7fc0u : static_cast<uint16_t>(f32_bits(round_bf16(f)) >> 16);
    }
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t r    = f32_bits(round_f16(f)) & 0x7fffffffu;
    if (nan || r >= 0x7f800000u) {
        return static_cast<uint16_t>(sign | (nan ? 0x7e00u : 0x7c00u));
    }
    if (r < 0x38800000u) {  /* a subnormal: r * 2^24 is its integer significand, exactly */
        return static_cast<uint16_t>(sign | static_cast<uint32_t>(mul_rn(bits_f32(r), 0x1p24f)));
    }
    return static_cast<uint16_t>(sign | ((r >> 23) - 112u) << 10 | ((r >> 13) & 0x3ffu));
}

/* ---- division by run-time constants ---------------------------------------------------------- */

template <typename Index>
struct Divider;

/* n / d for n < 2^31 and 1 <= d < 2^31 with one multiply-high: s = ceil(log2 d),
 * m = floor(2^32 * (2^s - d) / d) + 1, n / d = (mulhi(n, m) + n) >> s (the 33-bit multiplier
 * 2^32 + m rounds 2^(32+s) / d up by less than 2^s / d, exact for every n < 2^32; n < 2^31 keeps
 * the sum within 32 bits). */
template <>
struct Divider<uint32_t> {
    uint32_t d, m, s;

    static Divider make(uint32_t divisor) {
        uint32_t shift = 0;
        while ((uint64_t{ 1 } << shift) < divisor) {
            shift++;
        }
        const uint64_t num = (uint64_t{ 1 } << 32) * ((uint64_t{ 1 } << shift) - divisor);
        return { divisor, static_cast<uint32_t>(num / divisor + 1), shift };
    }

    QSIM_HD uint32_t div(uint32_t n) const {
#ifdef __CUDA_ARCH__
        const uint32_t hi = __umulhi(n, m);
#else
        const uint32_t hi = static_cast<uint32_t>((uint64_t{ n } * m) >> 32);
#endif
        return (hi + n) >> s;
    }
};

template <>
struct Divider<int64_t> {
    int64_t d;

    static Divider make(int64_t divisor) {
        return { divisor };
    }

    QSIM_HD int64_t div(int64_t n) const {
        return n / d;
    }
};

/* ---- index maps ---------------------------------------------------------------------------- */

inline bool is_per_tensor(const qsim_layout & l) {
    return l.stride_outer == 0 && l.stride_block == 0 && l.stride_inner == 0;
}

/* Per-tensor: every element uses qparam 0. */
template <typename Index>
struct PerTensorIndex {
    QSIM_HD Index operator()(Index) const {
        return 0;
    }
};

/* Flat element f = (o * channels + c) * inner + i -> o*stride_outer + (c/block)*stride_block +
 * i*stride_inner. The layout must cover at least one element. */
template <typename Index>
struct QparamIndex {
    Divider<Index> inner, channels, block;
    Index          stride_outer, stride_block, stride_inner;

    static QparamIndex make(const qsim_layout & l) {
        return { Divider<Index>::make(static_cast<Index>(l.inner)),
                 Divider<Index>::make(static_cast<Index>(l.channels)),
                 Divider<Index>::make(static_cast<Index>(l.block)),
                 static_cast<Index>(l.stride_outer), static_cast<Index>(l.stride_block),
                 static_cast<Index>(l.stride_inner) };
    }

    QSIM_HD Index operator()(Index f) const {
        const Index r = inner.div(f), i = f - r * inner.d;
        const Index o = channels.div(r), c = r - o * channels.d;
        return o * stride_outer + block.div(c) * stride_block + i * stride_inner;
    }
};

/* The reduction groups of a layout: one per qparam entry (per-tensor: one), each holding `size`
 * elements. Group g = (os * nb + cb) * ni + is (nb = channels / block; ni = inner when the
 * qparams vary along inner, else 1) holds, in ascending flat order, the elements
 * (os + ol, cb * block + cl, is + il) for ol < outer' (outer when the qparams do not vary along
 * outer, else 1), cl < block, il < len (inner when the qparams do not vary along inner, else 1):
 * local index j = (ol * block + cl) * len + il. Its qparam index is g. */
inline void group_shape(const qsim_layout & l, int64_t * groups, int64_t * size) {
    if (is_per_tensor(l)) {
        *groups = 1;
        *size   = l.outer * l.channels * l.inner;
        return;
    }
    const int64_t ni = l.stride_inner ? l.inner : 1;
    *groups = (l.stride_outer ? l.outer : 1) * (l.channels / l.block) * ni;
    *size   = (l.stride_outer ? 1 : l.outer) * l.block * (l.stride_inner ? 1 : l.inner);
}

template <typename Index>
struct GroupMap {
    Divider<Index> ni, nb, len, block;
    Index          channels, inner;

    /* The layout must cover at least one element. */
    static GroupMap make(const qsim_layout & l) {
        const int64_t has_inner = l.stride_inner != 0;
        return { Divider<Index>::make(static_cast<Index>(has_inner ? l.inner : 1)),
                 Divider<Index>::make(static_cast<Index>(l.channels / l.block)),
                 Divider<Index>::make(static_cast<Index>(has_inner ? 1 : l.inner)),
                 Divider<Index>::make(static_cast<Index>(l.block)),
                 static_cast<Index>(l.channels), static_cast<Index>(l.inner) };
    }

    /* Flat index of group g's first element, (os, cb * block, is). */
    QSIM_HD Index start(Index g) const {
        const Index gi = ni.div(g), is = g - gi * ni.d;
        const Index os = nb.div(gi), cb = gi - os * nb.d;
        return (os * channels + cb * block.d) * inner + is;
    }

    /* Flat index of local element j of the group whose first element is `first`. */
    QSIM_HD Index flat(Index first, Index j) const {
        const Index r = len.div(j), il = j - r * len.d;
        const Index ol = block.div(r), cl = r - ol * block.d;
        return first + (ol * channels + cl) * inner + il;
    }
};

}  // namespace qsim_cuda

#endif /* QSIM_QDQ_CUDA_MATH_H */
