/*
 * stats_common.h (internal): scalar pieces shared by the reference statistics kernels and the
 * tails of ISA variants, so that every variant treats each element the same way.
 */
#ifndef QSIM_STATS_COMMON_H
#define QSIM_STATS_COMMON_H

#include <float.h>
#include <math.h>
#include <string.h>

#include "qsim/stats.h"

/* qsim_nonfinite and qsim_bin_index also compile for the GPU (kernels/cuda/stats.cu includes this
 * header), so the CUDA statistics skip and bin each value exactly as the C kernels do. The bin
 * index is a subtraction then a multiplication: nothing an FMA could fuse, on either side. */
#if defined(__CUDACC__)
#define QSIM_STATS_HD __host__ __device__
#else
#define QSIM_STATS_HD
#endif

/* Elements per block of the run kernels: the unit of their fast checks. */
#define QSIM_STATS_BLOCK 256

/* 1 for NaN and +-Inf, else 0; integer arithmetic, so loops of it vectorize. */
static inline QSIM_STATS_HD int32_t qsim_nonfinite(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return (u & 0x7f800000u) == 0x7f800000u;
}

/* v clamped to the finite fp32 range (+-Inf become +-FLT_MAX; NaN stays NaN). */
static inline double qsim_clamp_finite_d(double v) {
    const double big = (double) FLT_MAX;
    return v < -big ? -big : (v > big ? big : v);
}

/* The bin of a finite value (qsim_bins documents the rule), written as a clamp of t to
 * [0, count - 1] followed by truncation, which is the same thing. */
static inline QSIM_STATS_HD int32_t qsim_bin_index(float v, qsim_bins b) {
    float t = (v - b.lo) * b.scale;
    t = t > 0.0f ? t : 0.0f;
    t = t < (float) (b.count - 1) ? t : (float) (b.count - 1);
    return (int32_t) t;
}

/* Folds the finite values of x[0, n) into *lo and *hi, one by one. */
static inline void qsim_fold_minmax(size_t n, const float * x, float * lo, float * hi) {
    float l = *lo, h = *hi;
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        if (!qsim_nonfinite(v)) {
            l = v < l ? v : l;
            h = v > h ? v : h;
        }
    }
    *lo = l;
    *hi = h;
}

/* Adds a block of bin indices idx[0, len) of x[0, len) to counts. `nonfinite` is how many values
 * of the block are not finite: when 0 every value is counted without a test, else non-finite
 * values (whose index is meaningless) are skipped. */
static inline void qsim_count_bins(size_t len, const int32_t * idx, const float * x,
                                   int64_t nonfinite, int64_t * counts) {
    if (nonfinite == 0) {
        for (size_t j = 0; j < len; j++) {
            counts[idx[j]]++;
        }
    } else {
        for (size_t j = 0; j < len; j++) {
            counts[idx[j]] += !qsim_nonfinite(x[j]);
        }
    }
}

/* The scalar tail of a vectorised histogram update: counts the finite values of x[0, n) into
 * their bins and folds them into *lo and *hi. Returns how many values were not finite. */
static inline int64_t qsim_histogram_tail(size_t n, const float * x, qsim_bins b,
                                          int64_t * counts, float * lo, float * hi) {
    int64_t bad = 0;
    float   l = *lo, h = *hi;
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        if (qsim_nonfinite(v)) {
            bad++;
        } else {
            counts[qsim_bin_index(v, b)]++;
            l = v < l ? v : l;
            h = v > h ? v : h;
        }
    }
    *lo = l;
    *hi = h;
    return bad;
}

#endif /* QSIM_STATS_COMMON_H */
