/*
 * qdq__avx512.c: the qdq run kernels with AVX-512 (F, BW, VL, DQ), 16 floats per step.
 *
 * Bit-exact with qdq_ref.c: each element goes through the same fp32 operations in the same order
 * (division by scale, round half to even, comparison clamp), or for the qdq of a grid with an
 * integer zero point their shifted form (qsim_grid_shiftable: the same bits in five vector
 * operations instead of seven), and the reductions add element i to
 * double lane i % 8 as qsim_combine_lanes expects. The last n % 16 elements use masked loads and
 * stores, which never touch memory outside the run. Long aligned runs (QSIM_STREAM_MIN) not
 * written in place are written with non-temporal stores, the same values.
 */
#include <string.h>

#include "x86/qdq_v16.h"

/* The fp16 conversion rounds to nearest even, keeps fp16 subnormals and overflows to Inf like
 * qsim_round_f16; NaN lanes keep x because the conversion drops the low 13 payload bits. */
static inline __m512 qsim_v16_cast_f16(__m512 x, const qsim_v16_grid * g) {
    (void) g;
    const __m512 r =
        _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, x);
}

/* qsim_round_bf16 on integer lanes: add 0x7fff plus the lowest kept bit, then truncate. */
static inline __m512 qsim_v16_cast_bf16(__m512 x, const qsim_v16_grid * g) {
    (void) g;
    const __m512i   u   = _mm512_castps_si512(x);
    const __m512i   odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i   up  = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd);
    const __m512i   r   = _mm512_and_si512(up, _mm512_set1_epi32((int) 0xffff0000u));
    const __m512i   a   = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(a, _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_blend_ps(nan, _mm512_castsi512_ps(r), x);
}


/* y = op(x) over a run; g is NULL for the casts. */
QSIM_ALWAYS_INLINE void qsim_v16_map(size_t n, const float * x, float * y,
                                     const qsim_v16_grid * g, qsim_v16_op op) {
    size_t i = 0;
    if (qsim_v16_stream(n, y, x, x)) {
        for (; i + 16 <= n; i += 16) {  /* one whole cache line a step */
            QSIM_PREFETCH(x + i);
            _mm512_stream_ps(y + i, op(_mm512_loadu_ps(x + i), g));
        }
        _mm_sfence();
    }
    for (; i + 16 <= n; i += 16) {
        QSIM_PREFETCH(x + i);
        _mm512_storeu_ps(y + i, op(_mm512_loadu_ps(x + i), g));
    }
    if (i < n) {
        const __mmask16 k = qsim_v16_first(n - i);
        _mm512_mask_storeu_ps(y + i, k, op(_mm512_maskz_loadu_ps(k, x + i), g));
    }
}

/* Adds 16 terms of consecutive elements (the first at a multiple of 8) to the 8 double lanes:
 * the first eight, then the second eight, so every lane adds its elements in order. */
static inline __m512d qsim_v16_accumulate(__m512d acc, __m512 terms) {
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(terms)));
    return _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_extractf32x8_ps(terms, 1)));
}

static inline double qsim_v16_combine(__m512d acc) {
    double l[QSIM_REDUCE_LANES];
    _mm512_storeu_pd(l, acc);
    return qsim_combine_lanes(l);
}

/* dx over a run and, when sums is not NULL, the two reductions; op gives the per-element terms. */
QSIM_ALWAYS_INLINE void qsim_v16_backward(size_t n, const float * x, const float * dy,
                                          float * dx, qsim_grid g, double * sums,
                                          qsim_v16_bwd_op op) {
    const qsim_v16_grid v  = qsim_v16_grid_of(g);
    __m512d             as = _mm512_setzero_pd(), az = _mm512_setzero_pd();
    const int           nt = qsim_v16_stream(n, dx, x, dy);
    size_t              i  = 0;
    for (; i + 16 <= n; i += 16) {
        QSIM_PREFETCH(x + i);
        QSIM_PREFETCH(dy + i);
        const qsim_v16_grads r = op(_mm512_loadu_ps(x + i), _mm512_loadu_ps(dy + i), &v);
        if (nt) {
            _mm512_stream_ps(dx + i, r.dx);
        } else {
            _mm512_storeu_ps(dx + i, r.dx);
        }
        if (sums) {
            as = qsim_v16_accumulate(as, r.ds);
            az = qsim_v16_accumulate(az, r.dzp);
        }
    }
    if (nt) {
        _mm_sfence();
    }
    if (i < n) {
        const __mmask16 k = qsim_v16_first(n - i);
        const qsim_v16_grads r =
            op(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, dy + i), &v);
        _mm512_mask_storeu_ps(dx + i, k, r.dx);
        if (sums) {
            /* lanes past the run add +0.0, which leaves every lane sum as it was */
            as = qsim_v16_accumulate(as, _mm512_maskz_mov_ps(k, r.ds));
            az = qsim_v16_accumulate(az, _mm512_maskz_mov_ps(k, r.dzp));
        }
    }
    if (sums) {
        sums[0] += qsim_v16_combine(as);
        sums[1] += qsim_v16_combine(az);
    }
}

void qsim_qdq_f32_avx512(size_t n, const float * x, float * y, qsim_grid g) {
    const qsim_v16_grid v = qsim_v16_grid_of(g);
    switch (qsim_v16_form_of(g)) {
    case QSIM_V16_BY_RECIPROCAL:
        qsim_v16_map(n, x, y, &v, qsim_v16_qdq_by_reciprocal);
        break;
    case QSIM_V16_SHIFTED:
        qsim_v16_map(n, x, y, &v, qsim_v16_qdq_shifted);
        break;
    default:
        qsim_v16_map(n, x, y, &v, qsim_v16_qdq);
    }
}

/* qdq with clamped bits over a run in `form` (a constant where inlined): 16 values a step, their
 * bits two bytes (little-endian: the first byte holds the first 8 lanes); the last n % 16 values
 * masked, their bits in the bytes they reach (the bits past n 0, as in qsim_qdq_mask_run). */
QSIM_ALWAYS_INLINE void qsim_v16_qdq_mask(size_t n, const float * x, float * y, uint8_t * clamped,
                                          const qsim_v16_grid * g, float gate,
                                          qsim_v16_form form) {
    const __m512 t = _mm512_set1_ps(gate);
    __mmask16    bits;
    size_t       i = 0;
    for (; i + 16 <= n; i += 16) {
        QSIM_PREFETCH(x + i);
        _mm512_storeu_ps(y + i, qsim_v16_qdq_clamped(_mm512_loadu_ps(x + i), g, t, form, &bits));
        const uint16_t w = (uint16_t) bits;
        memcpy(clamped + i / 8, &w, sizeof w);
    }
    if (i < n) {
        const __mmask16 k = qsim_v16_first(n - i);
        const __m512    r = qsim_v16_qdq_clamped(_mm512_maskz_loadu_ps(k, x + i), g, t, form, &bits);
        _mm512_mask_storeu_ps(y + i, k, r);
        const uint16_t w = (uint16_t) (bits & k);
        memcpy(clamped + i / 8, &w, (n - i + 7) / 8);
    }
}

void qsim_qdq_mask_f32_avx512(size_t n, const float * x, float * y, uint8_t * clamped,
                              qsim_grid g, float gate) {
    const qsim_v16_grid v = qsim_v16_grid_of(g);
    switch (qsim_v16_form_of(g)) {
    case QSIM_V16_BY_RECIPROCAL:
        qsim_v16_qdq_mask(n, x, y, clamped, &v, gate, QSIM_V16_BY_RECIPROCAL);
        break;
    case QSIM_V16_SHIFTED:
        qsim_v16_qdq_mask(n, x, y, clamped, &v, gate, QSIM_V16_SHIFTED);
        break;
    default:
        qsim_v16_qdq_mask(n, x, y, clamped, &v, gate, QSIM_V16_PLAIN);
    }
}

/* dx = dy where a lane's bit is clear, else +0: the bits loaded as a lane mask. */
void qsim_qdq_mask_backward_f32_avx512(size_t n, const uint8_t * clamped, const float * dy,
                                       float * dx) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint16_t w;
        memcpy(&w, clamped + i / 8, sizeof w);
        _mm512_storeu_ps(dx + i, _mm512_maskz_loadu_ps((__mmask16) ~w, dy + i));
    }
    if (i < n) {
        const __mmask16 k = qsim_v16_first(n - i);
        uint16_t        w = 0;
        memcpy(&w, clamped + i / 8, (n - i + 7) / 8);
        _mm512_mask_storeu_ps(dx + i, k, _mm512_maskz_loadu_ps(k & (__mmask16) ~w, dy + i));
    }
}

void qsim_quantize_f32_avx512(size_t n, const float * x, float * y, qsim_grid g) {
    const qsim_v16_grid v = qsim_v16_grid_of(g);
    qsim_v16_map(n, x, y, &v, qsim_v16_quantize);
}

void qsim_dequantize_f32_avx512(size_t n, const float * x, float * y, qsim_grid g) {
    const qsim_v16_grid v = qsim_v16_grid_of(g);
    qsim_v16_map(n, x, y, &v, qsim_v16_dequantize);
}

void qsim_qdq_backward_f32_avx512(size_t n, const float * x, const float * dy, float * dx,
                                  qsim_grid g, double * sums) {
    const qsim_v16_form form = sums ? QSIM_V16_PLAIN : qsim_v16_form_of(g);
    if (form == QSIM_V16_BY_RECIPROCAL) {
        qsim_v16_backward(n, x, dy, dx, g, NULL, qsim_v16_ste_by_reciprocal);
    } else if (form == QSIM_V16_SHIFTED) {
        qsim_v16_backward(n, x, dy, dx, g, NULL, qsim_v16_ste_shifted);
    } else {
        qsim_v16_backward(n, x, dy, dx, g, sums, qsim_v16_qdq_grads);
    }
}

void qsim_quantize_backward_f32_avx512(size_t n, const float * x, const float * dy, float * dx,
                                       qsim_grid g, double * sums) {
    qsim_v16_backward(n, x, dy, dx, g, sums, qsim_v16_quantize_grads);
}

void qsim_dequantize_backward_f32_avx512(size_t n, const float * x, const float * dy, float * dx,
                                         qsim_grid g, double * sums) {
    qsim_v16_backward(n, x, dy, dx, g, sums, qsim_v16_dequantize_grads);
}

void qsim_cast_f16_f32_avx512(size_t n, const float * x, float * y) {
    qsim_v16_map(n, x, y, NULL, qsim_v16_cast_f16);
}

void qsim_cast_bf16_f32_avx512(size_t n, const float * x, float * y) {
    qsim_v16_map(n, x, y, NULL, qsim_v16_cast_bf16);
}
