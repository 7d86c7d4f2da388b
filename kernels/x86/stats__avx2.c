/*
 * stats__avx2.c: the statistics run kernels with AVX2, 8 floats per step.
 *
 * Same results as stats_ref.c: min and max are exact operations, so lane-wise running minima
 * (minmax: four independent folds) combined at the end give the reference's value (signed zeros
 * are normalised to +0 by both); a non-finite value is replaced by the running value of its lane,
 * so it never wins; bins use the same fp32 operations as qsim_bin_index (subtract, multiply, clamp
 * by comparison, truncate).
 * Counting stays scalar (AVX2 has no conflict-free scatter-add). Tails use the scalar helpers.
 */
#include <immintrin.h>

#include "stats/stats_common.h"
#include "stats/stats_variants.h"

/* Vector iterations between flushes of the 32-bit per-lane non-finite counters. */
#define QSIM_V8_FLUSH (1u << 24)

typedef struct qsim_v8_fold {
    __m256  lo, hi;
    __m256i bad; /* per lane: minus the number of non-finite values since the last flush */
} qsim_v8_fold;

/* All-ones in the lanes of x that are NaN or +-Inf. */
static inline __m256i qsim_v8_nonfinite(__m256 x) {
    const __m256i e = _mm256_set1_epi32(0x7f800000);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(x), e), e);
}

/* Folds 8 values: min_ps(v, lo) is `v < lo ? v : lo`, as the scalar fold. */
static inline void qsim_v8_fold_step(qsim_v8_fold * f, __m256 v, __m256i nonfinite) {
    const __m256 skip = _mm256_castsi256_ps(nonfinite);
    f->lo  = _mm256_min_ps(_mm256_blendv_ps(v, f->lo, skip), f->lo);
    f->hi  = _mm256_max_ps(_mm256_blendv_ps(v, f->hi, skip), f->hi);
    f->bad = _mm256_add_epi32(f->bad, nonfinite);
}

static inline int64_t qsim_v8_flush(qsim_v8_fold * f) {
    int32_t b[8];
    _mm256_storeu_si256((__m256i *) b, f->bad);
    f->bad = _mm256_setzero_si256();
    int64_t total = 0;
    for (int k = 0; k < 8; k++) {
        total -= b[k];
    }
    return total;
}

/* Combines the lanes into *lo and *hi (a lane that saw nothing holds the start values). */
static inline void qsim_v8_fold_end(const qsim_v8_fold * f, float * lo, float * hi) {
    float l[8], h[8];
    _mm256_storeu_ps(l, f->lo);
    _mm256_storeu_ps(h, f->hi);
    for (int k = 0; k < 8; k++) {
        *lo = l[k] < *lo ? l[k] : *lo;
        *hi = h[k] > *hi ? h[k] : *hi;
    }
}

/* Scalar tail: folds x[0, n) into *lo, *hi and returns its non-finite count. */
static inline int64_t qsim_v8_tail(size_t n, const float * x, float * lo, float * hi) {
    int64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        bad += qsim_nonfinite(x[i]);
    }
    qsim_fold_minmax(n, x, lo, hi);
    return bad;
}

/* Four folds, 32 values a step: a min/max chain's latency is not the loop's bound. */
int64_t qsim_minmax_f32_avx2(size_t n, const float * x, float * min, float * max) {
    const qsim_v8_fold start = { _mm256_set1_ps(*min), _mm256_set1_ps(*max),
                                 _mm256_setzero_si256() };
    qsim_v8_fold       f[4]  = { start, start, start, start };
    int64_t            bad   = 0;
    size_t             i = 0, steps = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 4; k++) {
            const __m256 v = _mm256_loadu_ps(x + i + 8 * k);
            qsim_v8_fold_step(&f[k], v, qsim_v8_nonfinite(v));
        }
        if (++steps == QSIM_V8_FLUSH) {
            for (int k = 0; k < 4; k++) {
                bad += qsim_v8_flush(&f[k]);
            }
            steps = 0;
        }
    }
    for (; i + 8 <= n; i += 8) {  /* fewer than 4 steps: f[0]'s counters cannot overflow */
        const __m256 v = _mm256_loadu_ps(x + i);
        qsim_v8_fold_step(&f[0], v, qsim_v8_nonfinite(v));
    }
    for (int k = 0; k < 4; k++) {  /* exact: any order gives the same values (zeros aside) */
        bad += qsim_v8_flush(&f[k]);
        f[0].lo = _mm256_min_ps(f[k].lo, f[0].lo);
        f[0].hi = _mm256_max_ps(f[k].hi, f[0].hi);
    }
    float lo = *min, hi = *max;
    qsim_v8_fold_end(&f[0], &lo, &hi);
    bad += qsim_v8_tail(n - i, x + i, &lo, &hi);
    *min = lo + 0.0f; /* as the reference: a zero result is +0 */
    *max = hi + 0.0f;
    return bad;
}

int64_t qsim_histogram_f32_avx2(size_t n, const float * x, qsim_bins b, int64_t * counts,
                                float * min, float * max) {
    int32_t       idx[QSIM_STATS_BLOCK];
    const __m256  lo0 = _mm256_set1_ps(b.lo), scale = _mm256_set1_ps(b.scale);
    const __m256  zero = _mm256_setzero_ps(), last = _mm256_set1_ps((float) (b.count - 1));
    qsim_v8_fold  f   = { _mm256_set1_ps(*min), _mm256_set1_ps(*max), _mm256_setzero_si256() };
    int64_t       bad = 0;
    size_t        i   = 0;
    for (; i + QSIM_STATS_BLOCK <= n; i += QSIM_STATS_BLOCK) {
        for (size_t j = 0; j < QSIM_STATS_BLOCK; j += 8) {
            const __m256 v = _mm256_loadu_ps(x + i + j);
            qsim_v8_fold_step(&f, v, qsim_v8_nonfinite(v));
            /* qsim_bin_index: max_ps(t, 0) is `t > 0 ? t : 0`, min_ps(t, last) `t < last ? t : last` */
            const __m256 t = _mm256_mul_ps(_mm256_sub_ps(v, lo0), scale);
            _mm256_storeu_si256((__m256i *) (idx + j),
                                _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(t, zero), last)));
        }
        const int64_t block_bad = qsim_v8_flush(&f);
        qsim_count_bins(QSIM_STATS_BLOCK, idx, x + i, block_bad, counts);
        bad += block_bad;
    }
    float lo = *min, hi = *max;
    qsim_v8_fold_end(&f, &lo, &hi);
    bad += qsim_histogram_tail(n - i, x + i, b, counts, &lo, &hi);
    *min = lo + 0.0f;
    *max = hi + 0.0f;
    return bad;
}
