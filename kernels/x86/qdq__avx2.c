/*
 * qdq__avx2.c: the qdq run kernels with AVX2, FMA and F16C, 8 floats per step.
 *
 * Bit-exact with qdq_ref.c: each element goes through the same fp32 operations in the same order
 * (division by scale, round half to even, comparison clamp), and the reductions add element i to
 * double lane i % 8 as qsim_combine_lanes expects. The last n % 8 elements use masked loads and
 * stores, which never touch memory outside the run. Long aligned runs (QSIM_STREAM_MIN) not
 * written in place are written with non-temporal stores, the same values.
 */
#include "x86/qdq_v8.h"

/* F16C rounds to nearest even, keeps fp16 subnormals and overflows to Inf like qsim_round_f16;
 * NaN lanes take x back because the conversion drops the low 13 payload bits. */
static inline __m256 qsim_v8_cast_f16(__m256 x, const qsim_v8_grid * g) {
    (void) g;
    const __m256 r =
        _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* qsim_round_bf16 on integer lanes: add 0x7fff plus the lowest kept bit, then truncate. */
static inline __m256 qsim_v8_cast_bf16(__m256 x, const qsim_v8_grid * g) {
    (void) g;
    const __m256i u   = _mm256_castps_si256(x);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i up  = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), odd);
    const __m256i r   = _mm256_and_si256(up, _mm256_set1_epi32((int) 0xffff0000u));
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                           _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_ps(_mm256_castsi256_ps(r), x, _mm256_castsi256_ps(nan));
}


/* y = op(x) over a run; g is NULL for the casts. */
QSIM_ALWAYS_INLINE void qsim_v8_map(size_t n, const float * x, float * y,
                                    const qsim_v8_grid * g, qsim_v8_op op) {
    size_t i = 0;
    if (qsim_v8_stream(n, y, x, x)) {
        for (; i + 32 <= n; i += 32) {  /* whole cache lines, each written by one step */
            QSIM_PREFETCH(x + i);
            QSIM_PREFETCH(x + i + 16);
            const __m256 y0 = op(_mm256_loadu_ps(x + i), g);
            const __m256 y1 = op(_mm256_loadu_ps(x + i + 8), g);
            const __m256 y2 = op(_mm256_loadu_ps(x + i + 16), g);
            const __m256 y3 = op(_mm256_loadu_ps(x + i + 24), g);
            _mm256_stream_ps(y + i, y0);
            _mm256_stream_ps(y + i + 8, y1);
            _mm256_stream_ps(y + i + 16, y2);
            _mm256_stream_ps(y + i + 24, y3);
        }
        _mm_sfence();
    }
    for (; i + 8 <= n; i += 8) {
        QSIM_PREFETCH(x + i);
        _mm256_storeu_ps(y + i, op(_mm256_loadu_ps(x + i), g));
    }
    if (i < n) {
        const __m256i k = qsim_v8_first(n - i);
        _mm256_maskstore_ps(y + i, k, op(_mm256_maskload_ps(x + i, k), g));
    }
}

/* Adds 8 terms of consecutive elements (the first at a multiple of 8) to the double lanes:
 * acc[0] holds lanes 0-3 and acc[1] lanes 4-7. */
static inline void qsim_v8_accumulate(__m256d acc[2], __m256 terms) {
    acc[0] = _mm256_add_pd(acc[0], _mm256_cvtps_pd(_mm256_castps256_ps128(terms)));
    acc[1] = _mm256_add_pd(acc[1], _mm256_cvtps_pd(_mm256_extractf128_ps(terms, 1)));
}

static inline double qsim_v8_combine(const __m256d acc[2]) {
    double l[QSIM_REDUCE_LANES];
    _mm256_storeu_pd(l, acc[0]);
    _mm256_storeu_pd(l + 4, acc[1]);
    return qsim_combine_lanes(l);
}

/* dx over a run and, when sums is not NULL, the two reductions; op gives the per-element terms. */
QSIM_ALWAYS_INLINE void qsim_v8_backward(size_t n, const float * x, const float * dy,
                                         float * dx, qsim_grid g, double * sums,
                                         qsim_v8_bwd_op op) {
    const qsim_v8_grid v     = qsim_v8_grid_of(g);
    __m256d            as[2] = { _mm256_setzero_pd(), _mm256_setzero_pd() };
    __m256d            az[2] = { _mm256_setzero_pd(), _mm256_setzero_pd() };
    const int          nt    = qsim_v8_stream(n, dx, x, dy);
    size_t             i     = 0;
    for (; i + 8 <= n; i += 8) {
        QSIM_PREFETCH(x + i);
        QSIM_PREFETCH(dy + i);
        const qsim_v8_grads r = op(_mm256_loadu_ps(x + i), _mm256_loadu_ps(dy + i), &v);
        if (nt) {
            _mm256_stream_ps(dx + i, r.dx);
        } else {
            _mm256_storeu_ps(dx + i, r.dx);
        }
        if (sums) {
            qsim_v8_accumulate(as, r.ds);
            qsim_v8_accumulate(az, r.dzp);
        }
    }
    if (nt) {
        _mm_sfence();
    }
    if (i < n) {
        const __m256i k = qsim_v8_first(n - i);
        const qsim_v8_grads r = op(_mm256_maskload_ps(x + i, k), _mm256_maskload_ps(dy + i, k), &v);
        _mm256_maskstore_ps(dx + i, k, r.dx);
        if (sums) {
            /* lanes past the run add +0.0, which leaves every lane sum as it was */
            qsim_v8_accumulate(as, _mm256_and_ps(r.ds, _mm256_castsi256_ps(k)));
            qsim_v8_accumulate(az, _mm256_and_ps(r.dzp, _mm256_castsi256_ps(k)));
        }
    }
    if (sums) {
        sums[0] += qsim_v8_combine(as);
        sums[1] += qsim_v8_combine(az);
    }
}

void qsim_qdq_f32_avx2(size_t n, const float * x, float * y, qsim_grid g) {
    const qsim_v8_grid v = qsim_v8_grid_of(g);
    if (qsim_v8_by_reciprocal(g)) {
        qsim_v8_map(n, x, y, &v, qsim_v8_qdq_by_reciprocal);
    } else {
        qsim_v8_map(n, x, y, &v, qsim_v8_qdq);
    }
}

/* qsim_v8_clamped_fn `step` on the 8 floats at x, its qdq stored into y (after the load: y may
 * alias x); returns their bits. */
QSIM_ALWAYS_INLINE uint8_t qsim_v8_mask_at(const float * x, float * y, const qsim_v8_grid * g,
                                           __m256 gate, qsim_v8_clamped_fn step) {
    const qsim_v8_clamped r = step(_mm256_loadu_ps(x), g, gate);
    _mm256_storeu_ps(y, r.y);
    return (uint8_t) r.bits;
}

QSIM_ALWAYS_INLINE void qsim_v8_qdq_mask(size_t n, const float * x, float * y, uint8_t * clamped,
                                         qsim_grid g, float gate, qsim_v8_clamped_fn step) {
    const qsim_v8_grid v = qsim_v8_grid_of(g);
    const __m256       t = _mm256_set1_ps(gate);
    size_t             i = 0;
    for (; i + 32 <= n; i += 32) {  /* four steps, their bytes stored as one word */
        QSIM_PREFETCH(x + i);
        QSIM_PREFETCH(x + i + 16);
        const uint32_t w = (uint32_t) qsim_v8_mask_at(x + i, y + i, &v, t, step) |
                           (uint32_t) qsim_v8_mask_at(x + i + 8, y + i + 8, &v, t, step) << 8 |
                           (uint32_t) qsim_v8_mask_at(x + i + 16, y + i + 16, &v, t, step) << 16 |
                           (uint32_t) qsim_v8_mask_at(x + i + 24, y + i + 24, &v, t, step) << 24;
        memcpy(clamped + i / 8, &w, sizeof w);  /* little-endian: byte k holds step k */
    }
    for (; i + 8 <= n; i += 8) {
        clamped[i / 8] = qsim_v8_mask_at(x + i, y + i, &v, t, step);
    }
    qsim_qdq_mask_run(n - i, x + i, y + i, clamped + i / 8, g, gate);
}

void qsim_qdq_mask_f32_avx2(size_t n, const float * x, float * y, uint8_t * clamped,
                            qsim_grid g, float gate) {
    if (qsim_v8_by_reciprocal(g)) {
        qsim_v8_qdq_mask(n, x, y, clamped, g, gate, qsim_v8_qdq_clamped_by_reciprocal);
    } else {
        qsim_v8_qdq_mask(n, x, y, clamped, g, gate, qsim_v8_qdq_clamped);
    }
}

void qsim_qdq_mask_backward_f32_avx2(size_t n, const uint8_t * clamped, const float * dy,
                                     float * dx) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    size_t        i   = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i c    = _mm256_and_si256(_mm256_set1_epi32(clamped[i / 8]), bit);
        const __m256  keep = _mm256_castsi256_ps(_mm256_cmpeq_epi32(c, _mm256_setzero_si256()));
        _mm256_storeu_ps(dx + i, _mm256_and_ps(keep, _mm256_loadu_ps(dy + i)));
    }
    qsim_qdq_mask_backward_run(n - i, clamped + i / 8, dy + i, dx + i);
}

void qsim_quantize_f32_avx2(size_t n, const float * x, float * y, qsim_grid g) {
    const qsim_v8_grid v = qsim_v8_grid_of(g);
    qsim_v8_map(n, x, y, &v, qsim_v8_quantize);
}

void qsim_dequantize_f32_avx2(size_t n, const float * x, float * y, qsim_grid g) {
    const qsim_v8_grid v = qsim_v8_grid_of(g);
    qsim_v8_map(n, x, y, &v, qsim_v8_dequantize);
}

void qsim_qdq_backward_f32_avx2(size_t n, const float * x, const float * dy, float * dx,
                                qsim_grid g, double * sums) {
    if (!sums && qsim_v8_by_reciprocal(g)) {
        qsim_v8_backward(n, x, dy, dx, g, NULL, qsim_v8_ste_by_reciprocal);
    } else {
        qsim_v8_backward(n, x, dy, dx, g, sums, qsim_v8_qdq_grads);
    }
}

void qsim_quantize_backward_f32_avx2(size_t n, const float * x, const float * dy, float * dx,
                                     qsim_grid g, double * sums) {
    qsim_v8_backward(n, x, dy, dx, g, sums, qsim_v8_quantize_grads);
}

void qsim_dequantize_backward_f32_avx2(size_t n, const float * x, const float * dy, float * dx,
                                       qsim_grid g, double * sums) {
    qsim_v8_backward(n, x, dy, dx, g, sums, qsim_v8_dequantize_grads);
}

void qsim_cast_f16_f32_avx2(size_t n, const float * x, float * y) {
    qsim_v8_map(n, x, y, NULL, qsim_v8_cast_f16);
}

void qsim_cast_bf16_f32_avx2(size_t n, const float * x, float * y) {
    qsim_v8_map(n, x, y, NULL, qsim_v8_cast_bf16);
}
