/*
 * qdq_common.h (internal): scalar pieces shared by the reference kernels and the tails of the
 * ISA variants, so that every variant computes each element the same way.
 */
#ifndef QSIM_QDQ_COMMON_H
#define QSIM_QDQ_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "qsim/qdq.h"

/* Clamp to the grid as onnxruntime's QuantizeLinear and torch's fake_quantize do: NaN goes to lo
 * (qmin), +-Inf to the ends. Written with comparisons: `v > lo` is false for NaN. */
static inline float qsim_clampf(float v, float lo, float hi) {
    return v > lo ? (v < hi ? v : hi) : lo;
}

/* rint(x / s) + zp, before clamping. */
static inline float qsim_grid_pos(float x, qsim_grid g) {
    return rintf(x / g.scale) + g.zero_point;
}

/* Not clamped: the position is on the grid (false for NaN). */
static inline int qsim_in_grid(float pos, qsim_grid g) {
    return pos >= g.qmin && pos <= g.qmax;
}

/* One element of the forward ops (qsim/qdq.h): the specification of every variant. */
static inline float qsim_quantize1(float x, qsim_grid g) {
    return qsim_clampf(qsim_grid_pos(x, g), g.qmin, g.qmax);
}

static inline float qsim_dequantize1(float q, qsim_grid g) {
    return (q - g.zero_point) * g.scale;
}

static inline float qsim_qdq1(float x, qsim_grid g) {
    return qsim_dequantize1(qsim_quantize1(x, g), g);
}

/* qsim_run_mask_fn on a run, element by element (the reference, vector tails, and variants that
 * leave the loop to the compiler): qsim_qdq1's operations, and the bit of !qsim_in_grid or of
 * x not above gate. */
static inline void qsim_qdq_mask_run(size_t n, const float * x, float * y, uint8_t * clamped,
                                     qsim_grid g, float gate) {
    for (size_t i = 0; i < n; i++) {
        const float pos  = qsim_grid_pos(x[i], g);
        const int   zero = !qsim_in_grid(pos, g) || !(x[i] > gate);
        y[i]             = qsim_dequantize1(qsim_clampf(pos, g.qmin, g.qmax), g);
        clamped[i / 8]   = (uint8_t) ((i % 8 ? clamped[i / 8] : 0) | (zero << (i % 8)));
    }
}

/* qsim_mask_bwd_fn on a run, element by element. */
static inline void qsim_qdq_mask_backward_run(size_t n, const uint8_t * clamped, const float * dy,
                                              float * dx) {
    for (size_t i = 0; i < n; i++) {
        dx[i] = (clamped[i / 8] >> (i % 8)) & 1 ? 0.0f : dy[i];
    }
}

/* qsim_mask_bwd_h16_fn on a run, element by element (+0 is the pattern 0 in both kinds). */
static inline void qsim_qdq_mask_backward_h16_run(size_t n, const uint8_t * clamped,
                                                  const uint16_t * dy, uint16_t * dx) {
    for (size_t i = 0; i < n; i++) {
        dx[i] = (clamped[i / 8] >> (i % 8)) & 1 ? 0 : dy[i];
    }
}

/* Whether g's qdq may be computed shifted by its zero point, as the AVX-512 run kernels do:
 * with an integer zero point and integer bounds of magnitude <= 2^22, qmin - zp and qmax - zp
 * are exact, and
 *   (clamp(rint(x / s) + zp, qmin, qmax) - zp) * s == rint(clamp(x / s, qmin - zp, qmax - zp)) * s
 * bit for bit, with the product taken as fma(n, s, +0) so that n = -0 gives +0 like the left
 * side's c - zp: rint and clamp to integer bounds commute; rint(t) + zp is exact wherever it is
 * not clamped, and rounds beyond the bound it passes where it is; NaN goes to qmin on both
 * sides. Five vector operations instead of seven. */
static inline int qsim_grid_shiftable(qsim_grid g) {
    const float lim = 0x1p22f;
    return rintf(g.zero_point) == g.zero_point && rintf(g.qmin) == g.qmin &&
           rintf(g.qmax) == g.qmax && fabsf(g.zero_point) <= lim && fabsf(g.qmin) <= lim &&
           fabsf(g.qmax) <= lim;
}

/* Whether the vector kernels may take g's shifted qdq (qsim_grid_shiftable) with t = x * r,
 * r = 1 / s rounded, in place of x / s, checking every lane (qsim_v16_qdq_by_reciprocal): r is a
 * normal float within 2^-24 of 1 / s relatively, so t lies within 3 * 2^-24 * |t| (and a little)
 * of the rounded quotient (where x * r underflows, |x / s| < 2^-125 and both round to a zero of
 * x's sign; where it overflows both are clamped alike). Past the bounds qmin - zp and qmax - zp
 * both are clamped, and between them rint of either is the same integer unless t lies within that
 * distance of a half-integer. A lane whose clamped t passes |t - rint(t)| >= 0.5 - QSIM_NEAR_HALF
 * * |t| (the right side rounded once, which moves it by at most 2^-26: less than the margin of
 * 5 * 2^-24 * |t| wherever a half-integer is near, |t| >= 0.5) is recomputed with the division.
 * So the results are the division's bit for bit. `bound` (<= 2^16) caps |qmin - zp| and
 * |qmax - zp|: the share of lanes the test sends to the division grows with |t|, and each such
 * vector costs the division and a mispredicted branch, so a variant sets it where the division
 * alone costs less. */
#define QSIM_NEAR_HALF 0x1p-21f

/* The grids whose every lane is tested against one edge (qsim_near_half_edge): up to
 * QSIM_NARROW_GRID steps from the zero point, where that edge sends about 2^-10 of the lanes to
 * the division, as the per-lane edge sends on such a grid's outer values. */
#define QSIM_NARROW_GRID 0x1p10f

/* The test of qsim_grid_reciprocal with one edge for every lane of a narrow grid: the clamped t
 * of the vector kernels lies within [qmin - zp - 1, qmax - zp + 1], so |t| <= m, the larger
 * bound's magnitude plus 1, and 0.5 - QSIM_NEAR_HALF * m (exact: m is an integer below 2^11)
 * lies at or below every lane's 0.5 - QSIM_NEAR_HALF * |t|: the lanes it sends to the division
 * include every lane the per-lane test sends. 0 (no such edge) for a wider or non-shiftable
 * grid. */
static inline float qsim_near_half_edge(qsim_grid g) {
    const float m = fmaxf(fabsf(g.qmin - g.zero_point), fabsf(g.qmax - g.zero_point)) + 1.0f;
    return qsim_grid_shiftable(g) && m <= QSIM_NARROW_GRID ? 0.5f - QSIM_NEAR_HALF * m : 0.0f;
}

static inline int qsim_grid_reciprocal(qsim_grid g, float bound) {
    return qsim_grid_shiftable(g) && g.scale >= 0x1p-126f && g.scale <= 0x1p126f &&
           fabsf(g.qmin - g.zero_point) <= bound && fabsf(g.qmax - g.zero_point) <= bound;
}

/* dx and the scale and zero-point terms of one element (qsim_backward_reduce_f32's formulas). */
typedef struct qsim_terms {
    float dx, ds, dzp;
} qsim_terms;

static inline qsim_terms qsim_qdq_terms(float x, float dy, qsim_grid g) {
    const float      t   = x / g.scale;
    const float      pos = rintf(t) + g.zero_point;
    const int        m   = qsim_in_grid(pos, g);
    const float      qz  = qsim_clampf(pos, g.qmin, g.qmax) - g.zero_point;
    const qsim_terms r   = { m ? dy : 0.0f, dy * (m ? qz - t : qz), m ? 0.0f : -dy * g.scale };
    return r;
}

static inline qsim_terms qsim_quantize_terms(float x, float dy, qsim_grid g) {
    const float      t = x / g.scale;
    const int        m = qsim_in_grid(rintf(t) + g.zero_point, g);
    const float      d = m ? dy : 0.0f;
    const qsim_terms r = { d / g.scale, m ? -(d / g.scale) * t : 0.0f, d };
    return r;
}

static inline qsim_terms qsim_dequantize_terms(float x, float dy, qsim_grid g) {
    const qsim_terms r = { dy * g.scale, dy * (x - g.zero_point), -dy * g.scale };
    return r;
}

/* The fixed lane order of QSIM_REDUCE_LANES double partial sums. */
static inline double qsim_combine_lanes(const double l[QSIM_REDUCE_LANES]) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

static inline uint32_t qsim_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float qsim_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* fp32 -> fp16 -> fp32 with ties to even, overflow to Inf, subnormals kept. */
static inline float qsim_round_f16(float f) {
    const uint32_t u    = qsim_f32_bits(f);
    const uint32_t sign = u & 0x80000000u;
    const uint32_t a    = u & 0x7fffffffu;
    if (a >= 0x7f800000u) {
        return f;                                       /* Inf and NaN */
    }
    if (a >= 0x477ff000u) {
        return qsim_bits_f32(sign | 0x7f800000u);       /* >= 65520 rounds past 65504 */
    }
    if (a < 0x38800000u) {
        /* below 2^-14 fp16 is subnormal with step 2^-24: adding 0.5 (ulp 2^-24) rounds there */
        const float r = (qsim_bits_f32(a) + 0.5f) - 0.5f;
        return qsim_bits_f32(sign | qsim_f32_bits(r));
    }
    const uint32_t odd = (a >> 13) & 1u;
    return qsim_bits_f32(sign | ((a + 0x0fffu + odd) & ~0x1fffu));
}

/* fp32 -> bf16 -> fp32 with ties to even; NaN stays NaN. */
static inline float qsim_round_bf16(float f) {
    const uint32_t u = qsim_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return f;
    }
    const uint32_t odd = (u >> 16) & 1u;
    return qsim_bits_f32((u + 0x7fffu + odd) & 0xffff0000u);
}

#endif /* QSIM_QDQ_COMMON_H */
