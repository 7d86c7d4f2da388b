/*
 * minifloat_cuda_math.h (internal, C++): the per-element arithmetic of the CUDA minifloat and
 * block-format kernels (minifloat.cu), written once for the device and the host.
 *
 * Each function is the C reference of kernels/float/minifloat_common.h operation for operation,
 * with the IEEE round-to-nearest intrinsics of qdq_cuda_math.h for every float operation (never a
 * reciprocal multiply, never an FMA); the rest is integer arithmetic on the bits. On the host the
 * same functions use plain operators (tests/kernels/test_minifloat_cuda_math.cpp checks them
 * against the C reference without a GPU).
 */
#ifndef QSIM_MINIFLOAT_CUDA_MATH_H
#define QSIM_MINIFLOAT_CUDA_MATH_H

#include "cuda/qdq_cuda_math.h"
#include "qsim/minifloat.h"

namespace qsim_cuda {

/* qsim_mf_round. */
QSIM_HD float mf_round(float f, const qsim_minifloat & m) {
    const uint32_t u = f32_bits(f);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) {
        return f;
    }
    uint32_t r;
    if (a < m.sub_limit) {
        r = f32_bits(sub_rn(add_rn(bits_f32(a), m.sub_magic), m.sub_magic));
    } else {
        const uint32_t keep = ~((1u << m.shift) - 1u);
        r = (a + m.round_bias + (((a >> m.shift) ^ m.odd_flip) & m.odd_mask)) & keep;
    }
    r = r > m.max_bits ? m.over_bits : r;
    const uint32_t sign = (r == 0 && m.unsigned_zero) ? 0u : (u & 0x80000000u);
    return bits_f32(sign | r);
}

/* R(x / s) * s. */
QSIM_HD float mf_scaled(float x, float s, const qsim_minifloat & m) {
    return mul_rn(mf_round(div_rn(x, s), m), s);
}

/* 2^e for e in [-149, 127]. */
QSIM_HD float pow2f(int e) {
    return e >= -126 ? bits_f32(static_cast<uint32_t>(e + 127) << 23) : bits_f32(1u << (e + 149));
}

/* qsim_block_scale. */
QSIM_HD float block_scale(uint32_t amax_bits, const qsim_block_format & b) {
    if (amax_bits > 0x7f7fffffu) {
        return bits_f32(0x7fc00000u);
    }
    if (b.kind == QSIM_BLOCK_NVFP4) {
        const float t = div_rn(div_rn(bits_f32(amax_bits), b.elem_max), b.tensor_scale);
        return mul_rn(mf_round(t, b.scale_fmt), b.tensor_scale);
    }
    int e = static_cast<int>(amax_bits >> 23) - 127 - b.emax;
    e     = e < -127 ? -127 : e;
    return pow2f(b.kind == QSIM_BLOCK_MX_INT8 ? e - 6 : e);
}

/* qsim_block_element. */
QSIM_HD float block_element(float x, float s, const qsim_block_format & b) {
    if (b.kind == QSIM_BLOCK_MX_INT8) {
        return mul_rn(add_rn(clampf(rintf(div_rn(x, s)), -128.0f, 127.0f), 0.0f), s);
    }
    if (s == 0.0f) {
        return mul_rn(x, 0.0f);
    }
    return mf_scaled(x, s, b.elem);
}

}  // namespace qsim_cuda

#endif /* QSIM_MINIFLOAT_CUDA_MATH_H */
