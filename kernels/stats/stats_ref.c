#include "stats/stats_common.h"

/* Scans block `x` of `len` values against [lo, hi]: how many are not finite (returned), whether
 * any falls outside (`*outside`), and (when `idx` is not NULL) each value's bin in `b`. Inlined
 * with a NULL `idx`, the bin code disappears. */
static inline int32_t qsim_scan_block(size_t len, const float * x, float lo, float hi,
                                      int32_t * outside, const qsim_bins * b, int32_t * idx) {
    int32_t nonfinite = 0, out = 0;
    for (size_t j = 0; j < len; j++) {
        const float v = x[j];
        nonfinite += qsim_nonfinite(v);
        out += (v < lo) | (v > hi);
        if (idx) {
            idx[j] = qsim_bin_index(v, *b);
        }
    }
    *outside = out;
    return nonfinite;
}

/* Each block is first scanned with comparisons only (vectorizable): how many values are not
 * finite, and whether any falls outside the running [min, max]. Only blocks that do are folded
 * value by value, so after the first few blocks the scan runs at memory speed. */
int64_t qsim_minmax_f32_ref(size_t n, const float * x, float * min, float * max) {
    float   lo = *min, hi = *max;
    int64_t bad = 0;
    for (size_t i = 0; i < n; i += QSIM_STATS_BLOCK) {
        const size_t len = n - i < QSIM_STATS_BLOCK ? n - i : QSIM_STATS_BLOCK;
        int32_t      outside;
        const int32_t nonfinite = qsim_scan_block(len, x + i, lo, hi, &outside, NULL, NULL);
        if (outside) {
            qsim_fold_minmax(len, x + i, &lo, &hi);
        }
        bad += nonfinite;
    }
    *min = lo + 0.0f; /* -0 + 0 = +0: a zero result does not depend on which zero came first */
    *max = hi + 0.0f;
    return bad;
}

/* Bins of a block are computed first (vectorizable) with the min/max scan above, then counted;
 * a block without non-finite values (the usual case) is counted without a test per value. */
int64_t qsim_histogram_f32_ref(size_t n, const float * x, qsim_bins b, int64_t * counts,
                               float * min, float * max) {
    int32_t idx[QSIM_STATS_BLOCK];
    float   lo = *min, hi = *max;
    int64_t bad = 0;
    for (size_t i = 0; i < n; i += QSIM_STATS_BLOCK) {
        const size_t len = n - i < QSIM_STATS_BLOCK ? n - i : QSIM_STATS_BLOCK;
        int32_t      outside;
        const int32_t nonfinite = qsim_scan_block(len, x + i, lo, hi, &outside, &b, idx);
        qsim_count_bins(len, idx, x + i, nonfinite, counts);
        bad += nonfinite;
        if (outside) {
            qsim_fold_minmax(len, x + i, &lo, &hi);
        }
    }
    *min = lo + 0.0f;
    *max = hi + 0.0f;
    return bad;
}
