/*
 * stats__avx512.c: the statistics run kernels with AVX-512 (F, BW, VL, DQ), 16 floats per step.
 *
 * Same results as stats_ref.c, by the argument of stats__avx2.c: exact lane-wise min and max
 * (zeros normalised to +0 at the end; minmax runs four independent folds, combined at the end),
 * non-finite lanes masked out of the fold, bins by the fp32 operations of qsim_bin_index.
 * Counting stays scalar: a scatter-add would need conflict detection for repeated bins and gains
 * nothing on the usual narrow distributions.
 */
#include <immintrin.h>

#include "stats/stats_common.h"
#include "stats/stats_variants.h"

typedef struct qsim_v16_fold {
    __m512 lo, hi;
} qsim_v16_fold;

/* The lanes of x that are NaN or +-Inf (classes QNaN 0x01, +Inf 0x08, -Inf 0x10, SNaN 0x80). */
static inline __mmask16 qsim_v16_nonfinite(__m512 x) {
    return _mm512_fpclass_ps_mask(x, 0x99);
}

/* Folds the finite lanes of v: min_ps(v, lo) is `v < lo ? v : lo`, as the scalar fold. */
static inline void qsim_v16_fold_step(qsim_v16_fold * f, __m512 v, __mmask16 finite) {
    f->lo = _mm512_mask_min_ps(f->lo, finite, v, f->lo);
    f->hi = _mm512_mask_max_ps(f->hi, finite, v, f->hi);
}

/* Combines the lanes into *lo and *hi (a lane that saw nothing holds the start values). */
static inline void qsim_v16_fold_end(const qsim_v16_fold * f, float * lo, float * hi) {
    float l[16], h[16];
    _mm512_storeu_ps(l, f->lo);
    _mm512_storeu_ps(h, f->hi);
    for (int k = 0; k < 16; k++) {
        *lo = l[k] < *lo ? l[k] : *lo;
        *hi = h[k] > *hi ? h[k] : *hi;
    }
}

/* Folds 16 values into f and returns how many are not finite. */
static inline int64_t qsim_v16_minmax_step(qsim_v16_fold * f, const float * x) {
    const __m512    v  = _mm512_loadu_ps(x);
    const __mmask16 nf = qsim_v16_nonfinite(v);
    qsim_v16_fold_step(f, v, (__mmask16) ~nf);
    return __builtin_popcount((unsigned) nf);
}

/* Four folds, 64 values a step: a min/max chain's latency is not the loop's bound. */
int64_t qsim_minmax_f32_avx512(size_t n, const float * x, float * min, float * max) {
    const qsim_v16_fold start = { _mm512_set1_ps(*min), _mm512_set1_ps(*max) };
    qsim_v16_fold       f[4]  = { start, start, start, start };
    int64_t             bad   = 0;
    size_t              i     = 0;
    for (; i + 64 <= n; i += 64) {
        bad += qsim_v16_minmax_step(&f[0], x + i) + qsim_v16_minmax_step(&f[1], x + i + 16) +
               qsim_v16_minmax_step(&f[2], x + i + 32) + qsim_v16_minmax_step(&f[3], x + i + 48);
    }
    for (; i + 16 <= n; i += 16) {
        bad += qsim_v16_minmax_step(&f[0], x + i);
    }
    for (int k = 1; k < 4; k++) {  /* exact: any order gives the same values (zeros aside) */
        f[0].lo = _mm512_min_ps(f[k].lo, f[0].lo);
        f[0].hi = _mm512_max_ps(f[k].hi, f[0].hi);
    }
    float lo = *min, hi = *max;
    qsim_v16_fold_end(&f[0], &lo, &hi);
    for (; i < n; i++) {
        bad += qsim_nonfinite(x[i]);
    }
    qsim_fold_minmax(n % 16, x + (n - n % 16), &lo, &hi);
    *min = lo + 0.0f; /* as the reference: a zero result is +0 */
    *max = hi + 0.0f;
    return bad;
}

int64_t qsim_histogram_f32_avx512(size_t n, const float * x, qsim_bins b, int64_t * counts,
                                  float * min, float * max) {
    int32_t       idx[QSIM_STATS_BLOCK];
    const __m512  lo0 = _mm512_set1_ps(b.lo), scale = _mm512_set1_ps(b.scale);
    const __m512  zero = _mm512_setzero_ps(), last = _mm512_set1_ps((float) (b.count - 1));
    qsim_v16_fold f   = { _mm512_set1_ps(*min), _mm512_set1_ps(*max) };
    int64_t       bad = 0;
    size_t        i   = 0;
    for (; i + QSIM_STATS_BLOCK <= n; i += QSIM_STATS_BLOCK) {
        int block_bad = 0;
        for (size_t j = 0; j < QSIM_STATS_BLOCK; j += 16) {
            const __m512    v  = _mm512_loadu_ps(x + i + j);
            const __mmask16 nf = qsim_v16_nonfinite(v);
            qsim_v16_fold_step(&f, v, (__mmask16) ~nf);
            block_bad += __builtin_popcount((unsigned) nf);
            /* qsim_bin_index: max_ps(t, 0) is `t > 0 ? t : 0`, min_ps(t, last) `t < last ? t : last` */
            const __m512 t = _mm512_mul_ps(_mm512_sub_ps(v, lo0), scale);
            _mm512_storeu_si512(idx + j,
                                _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(t, zero), last)));
        }
        qsim_count_bins(QSIM_STATS_BLOCK, idx, x + i, block_bad, counts);
        bad += block_bad;
    }
    float lo = *min, hi = *max;
    qsim_v16_fold_end(&f, &lo, &hi);
    bad += qsim_histogram_tail(n - i, x + i, b, counts, &lo, &hi);
    *min = lo + 0.0f;
    *max = hi + 0.0f;
    return bad;
}
