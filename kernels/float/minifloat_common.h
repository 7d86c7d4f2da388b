/*
 * minifloat_common.h (internal): the scalar rounding of qsim/minifloat.h, shared by the reference
 * kernels and the tails of the ISA variants so that every variant computes each element the same
 * way. Rounding works on the magnitude's fp32 bits:
 *  - on the format's normal grid, integer round-half-to-even of the bits at `shift` (a carry into
 *    the exponent field is the correct next binade);
 *  - below 2^emin (the subnormal grid, a fixed step 2^(emin - m)), fp32 addition of
 *    2^(emin - m + 23): the sum's ulp is that step, so the addition rounds ties to even there,
 *    and subtracting it back is exact;
 * then the overflow rule and the sign (none on a zero of an FNUZ format).
 */
#ifndef QSIM_MINIFLOAT_COMMON_H
#define QSIM_MINIFLOAT_COMMON_H

#include "qdq/qdq_common.h"
#include "qsim/minifloat.h"

#define QSIM_F32_ABS  0x7fffffffu
#define QSIM_F32_SIGN 0x80000000u
#define QSIM_F32_INF  0x7f800000u

/* The fp32 bits kept by the normal-grid rounding. */
static inline uint32_t qsim_mf_keep(const qsim_minifloat * m) {
    return ~((1u << m->shift) - 1u);
}

static inline float qsim_mf_round(float f, const qsim_minifloat * m) {
    const uint32_t u = qsim_f32_bits(f);
    const uint32_t a = u & QSIM_F32_ABS;
    if (a > QSIM_F32_INF) {
        return f;
    }
    uint32_t r;
    if (a < m->sub_limit) {
        r = qsim_f32_bits((qsim_bits_f32(a) + m->sub_magic) - m->sub_magic);
    } else {
        r = (a + m->round_bias + (((a >> m->shift) ^ m->odd_flip) & m->odd_mask)) & qsim_mf_keep(m);
    }
    r = r > m->max_bits ? m->over_bits : r;
    const uint32_t sign = (r == 0 && m->unsigned_zero) ? 0u : (u & QSIM_F32_SIGN);
    return qsim_bits_f32(sign | r);
}

/* 2^e for e in [-149, 127], exactly. */
static inline float qsim_pow2f(int e) {
    return e >= -126 ? qsim_bits_f32((uint32_t) (e + 127) << 23) : qsim_bits_f32(1u << (e + 149));
}

/* MX: the exponent k of the block scale S = 2^k for a finite block maximum (amax_bits <=
 * 0x7f7fffff); k is in [-133, 127]. */
static inline int qsim_block_mx_exponent(uint32_t amax_bits, const qsim_block_format * b) {
    int e = (int) (amax_bits >> 23) - 127 - b->emax;
    e     = e < -127 ? -127 : e;
    return b->kind == QSIM_BLOCK_MX_INT8 ? e - 6 : e;
}

/* qsim_block_scale, inline: the ISA variants call it once per block in their vector loops, where
 * a call would spill every vector register. */
static inline float qsim_block_scale_of(uint32_t amax_bits, const qsim_block_format * b) {
    if (amax_bits > 0x7f7fffffu) {
        return NAN;  /* a NaN or an Inf in the block */
    }
    if (b->kind == QSIM_BLOCK_NVFP4) {
        const float q = qsim_mf_round(qsim_bits_f32(amax_bits) / b->elem_max / b->tensor_scale,
                                      &b->scale_fmt);
        return q * b->tensor_scale;
    }
    return qsim_pow2f(qsim_block_mx_exponent(amax_bits, b));
}

/* One element of a block format with block scale s (qsim_block_scale). */
static inline float qsim_block_element(float x, float s, const qsim_block_format * b) {
    if (b->kind == QSIM_BLOCK_MX_INT8) {
        /* + 0.0f: an int8 has no -0 (IEEE -0 + 0 = +0) */
        return (qsim_clampf(rintf(x / s), -128.0f, 127.0f) + 0.0f) * s;
    }
    if (s == 0.0f) {
        return x * 0.0f;
    }
    return qsim_mf_round(x / s, &b->elem) * s;
}

#endif /* QSIM_MINIFLOAT_COMMON_H */
