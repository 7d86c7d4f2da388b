/*
 * qdq_v8.h (internal, included only by the kernels/x86 files for AVX2): the 8-float vector forms of the
 * qdq element operations of qdq_common.h, shared by the run kernels (qdq__avx2.c) and the
 * per-column-grid row kernels (qdq_rows__avx2.c). Each performs the fp32 operations of the scalar
 * form in the same order, so results are bit-identical. A grid's fields may hold one value in every
 * lane (a run) or one value per lane (a row of columns).
 */
#ifndef QSIM_QDQ_V8_H
#define QSIM_QDQ_V8_H

#include <immintrin.h>
#include <stdint.h>

#include "qdq/qdq_common.h"
#include "qdq/qdq_variants.h"

/* lo_z, hi_z: qmin - zp and qmax - zp; recip: 1 / scale rounded; the fields of
 * qsim_v8_qdq_by_reciprocal (set by qsim_v8_grid_of; meaningful where qsim_grid_reciprocal
 * holds). */
typedef struct qsim_v8_grid {
    __m256 scale, zero_point, qmin, qmax, lo_z, hi_z, recip;
} qsim_v8_grid;

/* dx and the terms of the scale and zero-point sums for 8 elements. */
typedef struct qsim_v8_grads {
    __m256 dx, ds, dzp;
} qsim_v8_grads;

typedef __m256 (*qsim_v8_op)(__m256 x, const qsim_v8_grid * g);
typedef qsim_v8_grads (*qsim_v8_bwd_op)(__m256 x, __m256 dy, const qsim_v8_grid * g);

static inline qsim_v8_grid qsim_v8_grid_of(qsim_grid g) {
    const qsim_v8_grid v = { _mm256_set1_ps(g.scale), _mm256_set1_ps(g.zero_point),
                             _mm256_set1_ps(g.qmin), _mm256_set1_ps(g.qmax),
                             _mm256_set1_ps(g.qmin - g.zero_point),
                             _mm256_set1_ps(g.qmax - g.zero_point),
                             _mm256_set1_ps(1.0f / g.scale) };
    return v;
}

/* All-ones in the first n (< 8) lanes. */
static inline __m256i qsim_v8_first(size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int) n),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256 qsim_v8_neg(__m256 v) {
    return _mm256_xor_ps(v, _mm256_set1_ps(-0.0f));
}

static inline __m256 qsim_v8_rint(__m256 t) {
    return _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* qsim_clampf: max(a, b) is a > b ? a : b, so max(v, qmin) is qmin for NaN (and for v == qmin). */
static inline __m256 qsim_v8_clamp(__m256 v, const qsim_v8_grid * g) {
    return _mm256_min_ps(_mm256_max_ps(v, g->qmin), g->qmax);
}

/* qsim_in_grid: ordered comparisons, false for NaN. */
static inline __m256 qsim_v8_in_grid(__m256 pos, const qsim_v8_grid * g) {
    return _mm256_and_ps(_mm256_cmp_ps(pos, g->qmin, _CMP_GE_OQ),
                         _mm256_cmp_ps(pos, g->qmax, _CMP_LE_OQ));
}

static inline __m256 qsim_v8_quantize(__m256 x, const qsim_v8_grid * g) {
    return qsim_v8_clamp(_mm256_add_ps(qsim_v8_rint(_mm256_div_ps(x, g->scale)), g->zero_point), g);
}

static inline __m256 qsim_v8_dequantize(__m256 q, const qsim_v8_grid * g) {
    return _mm256_mul_ps(_mm256_sub_ps(q, g->zero_point), g->scale);
}

static inline __m256 qsim_v8_qdq(__m256 x, const qsim_v8_grid * g) {
    return qsim_v8_dequantize(qsim_v8_quantize(x, g), g);
}

static inline __m256 qsim_v8_abs(__m256 v) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

/* qsim_grid_reciprocal's bound for these kernels: 8 lanes take the division less often than 16
 * but gain less without it (measured on a 16-bit grid, 2026-12-06: 0.23 ns a value against the
 * division's 0.21; 8-bit grids 0.18 against 0.21). */
#define QSIM_V8_RECIPROCAL_BOUND 0x1p12f

/* Whether the AVX2 kernels take g's division-free form: qsim_division_free() and
 * qsim_grid_reciprocal with QSIM_V8_RECIPROCAL_BOUND. */
static inline int qsim_v8_by_reciprocal(qsim_grid g) {
    return qsim_division_free() && qsim_grid_reciprocal(g, QSIM_V8_RECIPROCAL_BOUND);
}

/* Whether a lane of c, clamped t = x * recip, with n = rint(c), may lie near a half-integer
 * (qsim_grid_reciprocal's test): then the caller takes the division for the whole vector. */
static inline int qsim_v8_near_half(__m256 c, __m256 n) {
    const __m256 f = qsim_v8_abs(_mm256_sub_ps(c, n));
    const __m256 edge =
        _mm256_fnmadd_ps(qsim_v8_abs(c), _mm256_set1_ps(QSIM_NEAR_HALF), _mm256_set1_ps(0.5f));
    return _mm256_movemask_ps(_mm256_cmp_ps(f, edge, _CMP_GE_OQ));
}

/* qsim_v8_qdq where qsim_grid_reciprocal(g) holds, its bits without its division unless a lane
 * needs it: t = x * recip clamped to [lo_z, hi_z], rounded and scaled as qsim_grid_shiftable
 * allows. */
static inline __m256 qsim_v8_qdq_by_reciprocal(__m256 x, const qsim_v8_grid * g) {
    const __m256 c = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(x, g->recip), g->lo_z), g->hi_z);
    const __m256 n = qsim_v8_rint(c);
    if (qsim_v8_near_half(c, n)) {
        return qsim_v8_qdq(x, g);
    }
    return _mm256_fmadd_ps(n, g->scale, _mm256_setzero_ps());
}

static inline qsim_v8_grads qsim_v8_qdq_grads(__m256 x, __m256 dy, const qsim_v8_grid * g) {
    const __m256 t   = _mm256_div_ps(x, g->scale);
    const __m256 pos = _mm256_add_ps(qsim_v8_rint(t), g->zero_point);
    const __m256 m   = qsim_v8_in_grid(pos, g);
    const __m256 qz  = _mm256_sub_ps(qsim_v8_clamp(pos, g), g->zero_point);
    const qsim_v8_grads r = {
        _mm256_and_ps(m, dy),
        _mm256_mul_ps(dy, _mm256_blendv_ps(qz, _mm256_sub_ps(qz, t), m)),
        _mm256_andnot_ps(m, _mm256_mul_ps(qsim_v8_neg(dy), g->scale)),
    };
    return r;
}

/* x * recip clamped to [lo_z - 1, hi_z + 1] (NaN: lo_z - 1): the grid positions less the zero
 * point, and one step past each end, for the division-free straight-through mask and clamped
 * bits below. */
static inline __m256 qsim_v8_scaled_past_grid(__m256 x, const qsim_v8_grid * g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(x, g->recip), _mm256_sub_ps(g->lo_z, one)),
                         _mm256_add_ps(g->hi_z, one));
}

/* dx of qsim_v8_qdq_grads alone (the scale and zero-point terms left at zero), for callers that
 * do not sum them, where qsim_grid_reciprocal(g) holds, without its division unless a lane needs
 * it: t = x * recip clamped to [lo_z - 1, hi_z + 1], so that the test covers the half-integers
 * where the mask changes, lo_z - 0.5 and hi_z + 0.5 (NaN t: lo_z - 1, off the grid); rint(t) on
 * the grid is rint(t) + zp in [qmin, qmax], as qsim_grid_shiftable allows. */
static inline qsim_v8_grads qsim_v8_ste_by_reciprocal(__m256 x, __m256 dy, const qsim_v8_grid * g) {
    const __m256 c = qsim_v8_scaled_past_grid(x, g);
    const __m256 n = qsim_v8_rint(c);
    if (qsim_v8_near_half(c, n)) {
        return qsim_v8_qdq_grads(x, dy, g);
    }
    const __m256 m = _mm256_and_ps(_mm256_cmp_ps(n, g->lo_z, _CMP_GE_OQ),
                                   _mm256_cmp_ps(n, g->hi_z, _CMP_LE_OQ));
    const qsim_v8_grads r = { _mm256_and_ps(m, dy), _mm256_setzero_ps(), _mm256_setzero_ps() };
    return r;
}

/* qdq of 8 values and their clamped bits (qsim_run_mask_fn), bit j for lane j. */
typedef struct qsim_v8_clamped {
    __m256 y;
    int    bits;
} qsim_v8_clamped;

/* qdq of x with its bits: lanes where the clamp moved the grid position, which NaN positions
 * (unordered) are too, as qsim_in_grid's complement, or x is not above gate. */
static inline qsim_v8_clamped qsim_v8_qdq_clamped(__m256 x, const qsim_v8_grid * g, __m256 gate) {
    const __m256          pos = _mm256_add_ps(qsim_v8_rint(_mm256_div_ps(x, g->scale)), g->zero_point);
    const __m256          c   = qsim_v8_clamp(pos, g);
    const qsim_v8_clamped r   = {
        qsim_v8_dequantize(c, g),
        _mm256_movemask_ps(_mm256_or_ps(_mm256_cmp_ps(pos, c, _CMP_NEQ_UQ),
                                        _mm256_cmp_ps(x, gate, _CMP_NGT_UQ))),
    };
    return r;
}

/* qsim_v8_qdq_clamped where qsim_v8_by_reciprocal(g) holds, without its division unless a lane
 * needs it: t = x * recip clamped to [lo_z - 1, hi_z + 1], so that the test also covers the
 * half-integers where the bit changes, lo_z - 0.5 and hi_z + 0.5; n = rint of it clamped to
 * [lo_z, hi_z] is the grid position as qsim_grid_shiftable allows, and the bit is set where
 * that clamp moved n (NaN t: n = lo_z - 1). */
static inline qsim_v8_clamped qsim_v8_qdq_clamped_by_reciprocal(__m256 x, const qsim_v8_grid * g,
                                                                __m256 gate) {
    const __m256 c = qsim_v8_scaled_past_grid(x, g);
    const __m256 n = qsim_v8_rint(c);
    if (qsim_v8_near_half(c, n)) {
        return qsim_v8_qdq_clamped(x, g, gate);
    }
    const __m256          q = _mm256_min_ps(_mm256_max_ps(n, g->lo_z), g->hi_z);
    const qsim_v8_clamped r = {
        _mm256_fmadd_ps(q, g->scale, _mm256_setzero_ps()),
        _mm256_movemask_ps(_mm256_or_ps(_mm256_cmp_ps(n, q, _CMP_NEQ_UQ),
                                        _mm256_cmp_ps(x, gate, _CMP_NGT_UQ))),
    };
    return r;
}

typedef qsim_v8_clamped (*qsim_v8_clamped_fn)(__m256 x, const qsim_v8_grid * g, __m256 gate);

static inline qsim_v8_grads qsim_v8_quantize_grads(__m256 x, __m256 dy, const qsim_v8_grid * g) {
    const __m256 t  = _mm256_div_ps(x, g->scale);
    const __m256 m  = qsim_v8_in_grid(_mm256_add_ps(qsim_v8_rint(t), g->zero_point), g);
    const __m256 d  = _mm256_and_ps(m, dy);
    const __m256 ds = _mm256_div_ps(d, g->scale);
    const qsim_v8_grads r = { ds, _mm256_and_ps(m, _mm256_mul_ps(qsim_v8_neg(ds), t)), d };
    return r;
}

static inline qsim_v8_grads qsim_v8_dequantize_grads(__m256 x, __m256 dy, const qsim_v8_grid * g) {
    const qsim_v8_grads r = {
        _mm256_mul_ps(dy, g->scale),
        _mm256_mul_ps(dy, _mm256_sub_ps(x, g->zero_point)),
        _mm256_mul_ps(qsim_v8_neg(dy), g->scale),
    };
    return r;
}

/* Whether a run of n outputs at y, computed from inputs a and b (the same pointer for one
 * input), is written with non-temporal stores: a long run (QSIM_STREAM_MIN), aligned, and not in
 * place. An input overwritten in place is in the cache as it is written, and the next op reads it
 * from there; non-temporal stores would send it to memory. */
static inline int qsim_v8_stream(size_t n, const float * y, const float * a, const float * b) {
    return n >= QSIM_STREAM_MIN && ((uintptr_t) y & 31) == 0 && y != a && y != b;
}

#endif /* QSIM_QDQ_V8_H */
