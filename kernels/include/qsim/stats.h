/*
 * qsim/stats.h: calibration statistics of fp32 data (plain C, no torch).
 *
 * Two statistics, both held in caller-owned arrays so that a caller can keep them in tensors,
 * save, load and sum them across processes:
 *
 *  - running min/max of the finite values; non-finite values (NaN, +-Inf) are skipped and
 *    counted;
 *  - a histogram of `bins` equal-width bins over a range [lo, hi) (doubles) with int64 counts.
 *    When data falls outside the range, the range grows by whole old bins and each new bin is
 *    `factor` old bins wide (qsim_histogram_grow), so every old count moves whole into one new
 *    bin (qsim_histogram_move): no count is lost, and the merged histogram is the histogram of
 *    all the data binned at the new edges. The price is a range up to twice the data's span.
 *
 * Two levels, as in qdq.h:
 *  - run kernels (`qsim_stats_kernels`) over one contiguous run. The scalar `_ref` set is the
 *    specification; ISA variants give identical results and are listed in stats_variants.inc.
 *  - channel drivers over channels [begin, end) of a tensor viewed as [outer, channels, inner],
 *    so a caller can spread channels over threads. Per-tensor statistics are one channel
 *    ({1, 1, n}); to spread one channel over threads, call the run kernels on slices and combine.
 *
 * Nothing here allocates. Ownership: every pointer is borrowed for the duration of the call.
 */
#ifndef QSIM_STATS_H
#define QSIM_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "qsim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most bins a histogram may have (bin indices are computed exactly in fp32). */
#define QSIM_MAX_BINS (1 << 24)

/* How a finite value v finds its bin:
 *     t   = (v - lo) * scale                        (fp32)
 *     bin = t < 1 ? 0 : t >= count - 1 ? count - 1 : (int) t
 * so values outside the range land in the end bins. Build one with qsim_bins_of. */
typedef struct qsim_bins {
    float   lo;    /* left edge of bin 0, rounded to fp32 (and clamped to the finite range) */
    float   scale; /* bins per unit: count / (hi - lo), finite and > 0 */
    int32_t count; /* number of bins, 1..QSIM_MAX_BINS */
} qsim_bins;

/* Folds the finite values of x[0, n) into *min and *max (start a fresh fold from +INFINITY and
 * -INFINITY) and returns how many values were not finite. A zero result is +0.0. */
typedef int64_t (*qsim_minmax_fn)(size_t n, const float * x, float * min, float * max);

/* Adds each finite value of x[0, n) to counts[bin] (counts has b.count entries), folds them into
 * *min and *max as qsim_minmax_fn does, and returns how many values were not finite (they are
 * skipped). One pass gives both statistics when the range already covers the data; a caller that
 * finds min/max outside the range grows it and bins again. */
typedef int64_t (*qsim_histogram_fn)(size_t n, const float * x, qsim_bins b, int64_t * counts,
                                     float * min, float * max);

/* One implementation of the statistics run kernels; `supported` says whether this CPU runs it. */
typedef struct qsim_stats_kernels {
    const char *      name; /* "ref", "avx2", ... */
    int               (*supported)(void);
    qsim_minmax_fn    minmax;
    qsim_histogram_fn histogram;
} qsim_stats_kernels;

/* All compiled variants, reference first; *count receives their number. Static: never free. */
const qsim_stats_kernels * qsim_stats_variants(size_t * count);

/* The fastest variant this CPU supports (chosen once, then cached; thread-safe). */
const qsim_stats_kernels * qsim_stats_best(void);

/* The reference run kernels: the specification. */
int64_t qsim_minmax_f32_ref(size_t n, const float * x, float * min, float * max);
int64_t qsim_histogram_f32_ref(size_t n, const float * x, qsim_bins b, int64_t * counts,
                               float * min, float * max);

/* ---- histogram ranges --------------------------------------------------------------------- */

/* The range of one histogram: bin i covers [lo + i*w, lo + (i+1)*w), w = (hi - lo) / bins.
 * hi <= lo marks a histogram that has no range yet (it has seen no finite value). lo and hi are
 * finite (the bindings refuse others). */
typedef struct qsim_hist_range {
    double lo, hi;
} qsim_hist_range;

/* Binning parameters of a histogram with a range (r.hi > r.lo) and `count` bins. */
qsim_bins qsim_bins_of(qsim_hist_range r, int64_t count);

/* The range a histogram of `bins` bins must have to also cover [min, max] (finite values seen so
 * far, e.g. running min/max). Writes *grown:
 *  - `old` itself when it already covers [min, max], or when min > max or either is NaN (no data);
 *  - for a histogram without a range: [min, max], widened symmetrically to at least
 *    max(|min|, |max|) * 2^-20 and 2^-100 so that its bins have a width fp32 can resolve;
 *  - otherwise `old` extended by whole old bins to a width of `factor` * bins old bins, the
 *    smallest integer factor that covers [min, max], the added bins shared between the two sides
 *    in proportion to how far each side had to grow. If the factor would exceed 2^40 (a range
 *    that grows by over 12 decades), the range is [min(lo, min), max(hi, max)] instead.
 * +-Inf min/max count as +-FLT_MAX. Errors: QSIM_INVALID_ARGUMENT for bins outside
 * 1..QSIM_MAX_BINS or a NULL pointer. */
qsim_status qsim_histogram_grow(int64_t bins, qsim_hist_range old, float min, float max,
                                qsim_hist_range * grown);

/* Re-bins counts[bins] over `from` into out[bins] over `to`: each old bin's count goes whole to
 * the new bin holding the old bin's centre (end bins take what falls outside). When `to` came from
 * qsim_histogram_grow(from) with an integer factor this is exact: the new bin holds exactly the
 * old bins it spans. A `from` without a range (hi <= lo) gives all zeros. counts and out must not
 * overlap. */
void qsim_histogram_move(int64_t bins, qsim_hist_range from, const int64_t * counts,
                         qsim_hist_range to, int64_t * out);

/* ---- channel drivers ---------------------------------------------------------------------- */

/* A contiguous tensor viewed around its statistics axis: element (o, c, i) is at
 * x[(o * channels + c) * inner + i]. Per-tensor statistics use {1, 1, numel}. */
typedef struct qsim_channel_view {
    int64_t outer, channels, inner;
} qsim_channel_view;

/* Folds channels [begin, end) of x into min[c], max[c] and adds their non-finite counts to
 * nonfinite[c] (arrays indexed by channel; start a fresh fold from +INF, -INF, 0).
 * k = NULL uses qsim_stats_best(). */
void qsim_minmax_channels_f32(const qsim_stats_kernels * k, const qsim_channel_view * v,
                              const float * x, float * min, float * max, int64_t * nonfinite,
                              int64_t begin, int64_t end);

/* Adds channels [begin, end) of x to their histograms and min/max: channel c bins into
 * counts[c * bins, (c + 1) * bins) over ranges[c] with qsim_bins_of and folds into min[c], max[c],
 * nonfinite[c] as qsim_minmax_channels_f32 does. A channel whose range is unset (hi <= lo) gets
 * min/max only. k = NULL uses qsim_stats_best(). */
void qsim_histogram_channels_f32(const qsim_stats_kernels * k, const qsim_channel_view * v,
                                 const float * x, const qsim_hist_range * ranges, int64_t bins,
                                 int64_t * counts, float * min, float * max, int64_t * nonfinite,
                                 int64_t begin, int64_t end);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_STATS_H */
