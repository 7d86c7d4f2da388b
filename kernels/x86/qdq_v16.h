/*
 * qdq_v16.h (internal, included only by the kernels/x86 files for AVX-512): the 16-float vector forms of the
 * qdq element operations of qdq_common.h, shared by the run kernels (qdq__avx512.c) and the
 * per-column-grid row kernels (qdq_rows__avx512.c). Each performs the fp32 operations of the scalar
 * form in the same order, so results are bit-identical. A grid's fields may hold one value in every
 * lane (a run) or one value per lane (a row of columns).
 */
#ifndef QSIM_QDQ_V16_H
#define QSIM_QDQ_V16_H

#include <immintrin.h>
#include <stdint.h>

#include "qdq/qdq_common.h"
#include "qdq/qdq_variants.h"

/* lo_z, hi_z: qmin - zp and qmax - zp, the bounds of qsim_v16_qdq_shifted; recip: 1 / scale
 * rounded, edge and narrow: the half-integer test of qsim_v16_qdq_by_reciprocal
 * (qsim_near_half_edge); set by qsim_v16_grid_of, meaningful where qsim_grid_shiftable, or
 * qsim_grid_reciprocal, holds. */
typedef struct qsim_v16_grid {
    __m512 scale, zero_point, qmin, qmax, lo_z, hi_z, recip, edge;
    int    narrow;
} qsim_v16_grid;

/* dx and the terms of the scale and zero-point sums for 16 elements. */
typedef struct qsim_v16_grads {
    __m512 dx, ds, dzp;
} qsim_v16_grads;

typedef __m512 (*qsim_v16_op)(__m512 x, const qsim_v16_grid * g);
typedef qsim_v16_grads (*qsim_v16_bwd_op)(__m512 x, __m512 dy, const qsim_v16_grid * g);

static inline qsim_v16_grid qsim_v16_grid_of(qsim_grid g) {
    const qsim_v16_grid v = { _mm512_set1_ps(g.scale), _mm512_set1_ps(g.zero_point),
                              _mm512_set1_ps(g.qmin), _mm512_set1_ps(g.qmax),
                              _mm512_set1_ps(g.qmin - g.zero_point),
                              _mm512_set1_ps(g.qmax - g.zero_point),
                              _mm512_set1_ps(1.0f / g.scale),
                              _mm512_set1_ps(qsim_near_half_edge(g)),
                              qsim_near_half_edge(g) > 0.0f };
    return v;
}

/* The first n (< 16) lanes. */
static inline __mmask16 qsim_v16_first(size_t n) {
    return (__mmask16) ((1u << n) - 1u);
}

static inline __m512 qsim_v16_neg(__m512 v) {
    return _mm512_xor_ps(v, _mm512_set1_ps(-0.0f));
}

static inline __m512 qsim_v16_rint(__m512 t) {
    return _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* rint(c) of a finite c, with c - rint(c) in *frac: vreduceps gives that part exactly, and c less
 * it is rint(c) exactly, in one instruction fewer than rint and the subtraction. For c in
 * (-0.5, -0.0) the result is +0.0 where rint gives -0.0: callers only compare it, or scale it by
 * an fmadd with +0.0, which makes both +0.0. */
static inline __m512 qsim_v16_rint_frac(__m512 c, __m512 * frac) {
    *frac = _mm512_reduce_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_sub_ps(c, *frac);
}

/* qsim_clampf: max(a, b) is a > b ? a : b, so max(v, qmin) is qmin for NaN (and for v == qmin). */
static inline __m512 qsim_v16_clamp(__m512 v, const qsim_v16_grid * g) {
    return _mm512_min_ps(_mm512_max_ps(v, g->qmin), g->qmax);
}

/* qsim_in_grid: ordered comparisons, false for NaN. */
static inline __mmask16 qsim_v16_in_grid(__m512 pos, const qsim_v16_grid * g) {
    return _mm512_cmp_ps_mask(pos, g->qmin, _CMP_GE_OQ) &
           _mm512_cmp_ps_mask(pos, g->qmax, _CMP_LE_OQ);
}

static inline __m512 qsim_v16_quantize(__m512 x, const qsim_v16_grid * g) {
    const __m512 t = _mm512_div_ps(x, g->scale);
    return qsim_v16_clamp(_mm512_add_ps(qsim_v16_rint(t), g->zero_point), g);
}

static inline __m512 qsim_v16_dequantize(__m512 q, const qsim_v16_grid * g) {
    return _mm512_mul_ps(_mm512_sub_ps(q, g->zero_point), g->scale);
}

static inline __m512 qsim_v16_qdq(__m512 x, const qsim_v16_grid * g) {
    return qsim_v16_dequantize(qsim_v16_quantize(x, g), g);
}

/* qsim_v16_qdq where qsim_grid_shiftable(g) holds (qdq_common.h): the same bits. */
static inline __m512 qsim_v16_qdq_shifted(__m512 x, const qsim_v16_grid * g) {
    const __m512 t = _mm512_div_ps(x, g->scale);
    const __m512 c = _mm512_min_ps(_mm512_max_ps(t, g->lo_z), g->hi_z);
    return _mm512_fmadd_ps(qsim_v16_rint(c), g->scale, _mm512_setzero_ps());
}

/* qsim_grid_reciprocal's bound for these kernels: every grid of 16 bits or fewer (a 16-bit grid
 * took 0.14 ns a value against the division's 0.20, measured 2026-12-06). */
#define QSIM_V16_RECIPROCAL_BOUND 0x1p16f

/* The lanes of c, clamped t = x * recip, with frac = c - rint(c), that may lie near a
 * half-integer (qsim_grid_reciprocal's test, against g's edge on a narrow grid): any of them sends
 * the caller's vector to the division. */
static inline __mmask16 qsim_v16_near_half(__m512 c, __m512 frac, const qsim_v16_grid * g) {
    const __m512 f = _mm512_abs_ps(frac);
    if (g->narrow) {
        return _mm512_cmp_ps_mask(f, g->edge, _CMP_GE_OQ);
    }
    const __m512 edge =
        _mm512_fnmadd_ps(_mm512_abs_ps(c), _mm512_set1_ps(QSIM_NEAR_HALF), _mm512_set1_ps(0.5f));
    return _mm512_cmp_ps_mask(f, edge, _CMP_GE_OQ);
}

/* qsim_v16_qdq_shifted where qsim_grid_reciprocal(g) holds, its bits without its division
 * unless a lane needs it: t = x * recip clamped to [lo_z, hi_z], rounded and scaled. */
static inline __m512 qsim_v16_qdq_by_reciprocal(__m512 x, const qsim_v16_grid * g) {
    const __m512 c = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, g->recip), g->lo_z), g->hi_z);
    __m512       frac;
    const __m512 n = qsim_v16_rint_frac(c, &frac);
    if (qsim_v16_near_half(c, frac, g)) {
        return qsim_v16_qdq_shifted(x, g);
    }
    return _mm512_fmadd_ps(n, g->scale, _mm512_setzero_ps());
}

static inline qsim_v16_grads qsim_v16_qdq_grads(__m512 x, __m512 dy, const qsim_v16_grid * g) {
    const __m512    t   = _mm512_div_ps(x, g->scale);
    const __m512    pos = _mm512_add_ps(qsim_v16_rint(t), g->zero_point);
    const __mmask16 m   = qsim_v16_in_grid(pos, g);
    const __m512    qz  = _mm512_sub_ps(qsim_v16_clamp(pos, g), g->zero_point);
    const qsim_v16_grads r = {
        _mm512_maskz_mov_ps(m, dy),
        _mm512_mul_ps(dy, _mm512_mask_sub_ps(qz, m, qz, t)),
        _mm512_maskz_mul_ps((__mmask16) ~m, qsim_v16_neg(dy), g->scale),
    };
    return r;
}

/* The ways to compute a grid's qdq, and its straight-through mask, with the same bits: by
 * reciprocal (qsim_division_free() and qsim_grid_reciprocal with QSIM_V16_RECIPROCAL_BOUND),
 * qsim_grid_shiftable, any grid. A kernel picks one per run (qsim_v16_form_of) and passes it as a
 * constant to inlined code. */
typedef enum qsim_v16_form {
    QSIM_V16_BY_RECIPROCAL,
    QSIM_V16_SHIFTED,
    QSIM_V16_PLAIN
} qsim_v16_form;

static inline qsim_v16_form qsim_v16_form_of(qsim_grid g) {
    if (qsim_division_free() && qsim_grid_reciprocal(g, QSIM_V16_RECIPROCAL_BOUND)) {
        return QSIM_V16_BY_RECIPROCAL;
    }
    return qsim_grid_shiftable(g) ? QSIM_V16_SHIFTED : QSIM_V16_PLAIN;
}

/* rint(t), t = x / scale clamped to [lo_z - 1, hi_z + 1] (NaN t: lo_z - 1), on a
 * qsim_grid_shiftable grid in `form` (QSIM_V16_SHIFTED, or QSIM_V16_BY_RECIPROCAL: t = x * recip
 * unless a lane lies near a half-integer; a constant where inlined): the grid position less the
 * zero point where it lies on the grid, and one step past the end it leaves by, so that the
 * half-integer test also covers lo_z - 0.5 and hi_z + 0.5, where the straight-through mask and the
 * clamped bits change. */
QSIM_ALWAYS_INLINE __m512 qsim_v16_past_grid_rint(__m512 x, const qsim_v16_grid * g,
                                                  qsim_v16_form form) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 lo  = _mm512_sub_ps(g->lo_z, one);
    const __m512 hi  = _mm512_add_ps(g->hi_z, one);
    if (form == QSIM_V16_BY_RECIPROCAL) {
        const __m512 c = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, g->recip), lo), hi);
        __m512       frac;
        const __m512 n = qsim_v16_rint_frac(c, &frac);
        if (!qsim_v16_near_half(c, frac, g)) {
            return n;
        }
    }
    return qsim_v16_rint(_mm512_min_ps(_mm512_max_ps(_mm512_div_ps(x, g->scale), lo), hi));
}

/* Whether each of 16 values lies on the grid after rounding (the straight-through mask of
 * qsim_v16_qdq_grads), computed in `form` (a constant where inlined). */
QSIM_ALWAYS_INLINE __mmask16 qsim_v16_on_grid(__m512 x, const qsim_v16_grid * g,
                                              qsim_v16_form form) {
    if (form == QSIM_V16_PLAIN) {
        const __m512 t = _mm512_div_ps(x, g->scale);
        return qsim_v16_in_grid(_mm512_add_ps(qsim_v16_rint(t), g->zero_point), g);
    }
    const __m512 n = qsim_v16_past_grid_rint(x, g, form);
    return _mm512_cmp_ps_mask(n, g->lo_z, _CMP_GE_OQ) & _mm512_cmp_ps_mask(n, g->hi_z, _CMP_LE_OQ);
}

/* qdq of 16 values in `form` (a constant where inlined), and in *bits their clamped bits
 * (qsim_run_mask_fn), bit j for lane j: where the clamp to the grid moved the position (NaN
 * positions too, as qsim_in_grid's complement) or x is not above gate. */
QSIM_ALWAYS_INLINE __m512 qsim_v16_qdq_clamped(__m512 x, const qsim_v16_grid * g, __m512 gate,
                                               qsim_v16_form form, __mmask16 * bits) {
    const __mmask16 low = _mm512_cmp_ps_mask(x, gate, _CMP_NGT_UQ);
    if (form == QSIM_V16_PLAIN) {
        const __m512 pos = _mm512_add_ps(qsim_v16_rint(_mm512_div_ps(x, g->scale)), g->zero_point);
        const __m512 c   = qsim_v16_clamp(pos, g);
        *bits            = _mm512_cmp_ps_mask(pos, c, _CMP_NEQ_UQ) | low;
        return qsim_v16_dequantize(c, g);
    }
    const __m512 n = qsim_v16_past_grid_rint(x, g, form);
    const __m512 q = _mm512_min_ps(_mm512_max_ps(n, g->lo_z), g->hi_z);
    *bits          = _mm512_cmp_ps_mask(n, q, _CMP_NEQ_UQ) | low;
    return _mm512_fmadd_ps(q, g->scale, _mm512_setzero_ps());
}

/* dx of qsim_v16_qdq_grads alone (the scale and zero-point terms left at zero), for callers that
 * do not sum them, on a qsim_grid_shiftable grid. */
static inline qsim_v16_grads qsim_v16_ste_shifted(__m512 x, __m512 dy, const qsim_v16_grid * g) {
    const __mmask16      m = qsim_v16_on_grid(x, g, QSIM_V16_SHIFTED);
    const qsim_v16_grads r = { _mm512_maskz_mov_ps(m, dy), _mm512_setzero_ps(),
                               _mm512_setzero_ps() };
    return r;
}

/* qsim_v16_ste_shifted where qsim_grid_reciprocal(g) holds, without its division unless a lane
 * needs it. */
static inline qsim_v16_grads qsim_v16_ste_by_reciprocal(__m512 x, __m512 dy,
                                                        const qsim_v16_grid * g) {
    const __mmask16      m = qsim_v16_on_grid(x, g, QSIM_V16_BY_RECIPROCAL);
    const qsim_v16_grads r = { _mm512_maskz_mov_ps(m, dy), _mm512_setzero_ps(),
                               _mm512_setzero_ps() };
    return r;
}

static inline qsim_v16_grads qsim_v16_quantize_grads(__m512 x, __m512 dy, const qsim_v16_grid * g) {
    const __m512    t  = _mm512_div_ps(x, g->scale);
    const __mmask16 m  = qsim_v16_in_grid(_mm512_add_ps(qsim_v16_rint(t), g->zero_point), g);
    const __m512    d  = _mm512_maskz_mov_ps(m, dy);
    const __m512    ds = _mm512_div_ps(d, g->scale);
    const qsim_v16_grads r = { ds, _mm512_maskz_mul_ps(m, qsim_v16_neg(ds), t), d };
    return r;
}

static inline qsim_v16_grads qsim_v16_dequantize_grads(__m512 x, __m512 dy,
                                                       const qsim_v16_grid * g) {
    const qsim_v16_grads r = {
        _mm512_mul_ps(dy, g->scale),
        _mm512_mul_ps(dy, _mm512_sub_ps(x, g->zero_point)),
        _mm512_mul_ps(qsim_v16_neg(dy), g->scale),
    };
    return r;
}

/* Whether a run of n outputs at y, computed from inputs a and b (the same pointer for one
 * input), is written with non-temporal stores: a long run (QSIM_STREAM_MIN), aligned, and not in
 * place. An input overwritten in place is in the cache as it is written, and the next op reads it
 * from there; non-temporal stores would send it to memory. */
static inline int qsim_v16_stream(size_t n, const float * y, const float * a, const float * b) {
    return n >= QSIM_STREAM_MIN && ((uintptr_t) y & 63) == 0 && y != a && y != b;
}

#endif /* QSIM_QDQ_V16_H */
