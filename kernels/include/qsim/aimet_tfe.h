/*
 * qsim/aimet_tfe.h: the kernels of aimet-torch 2.42's "tf_enhanced" analyzer, which torchqsim
 * reproduces (wrappers/quantization/tf_enhanced.py documents the algorithm; plain C, no torch).
 *
 * aimet-torch runs that analyzer as float32 torch operations, so these kernels compute every
 * value with the same float32 operations in the same order, and the results are torch's bit for
 * bit (tests/python/quantization/test_tf_enhanced_kernels.py checks them against the torch ops):
 *
 * - qsim_tfe_histogram: torch.histc(x, 512, lo, hi): bin (int)((x - lo) * 512 / (hi - lo)) in
 *   float32, truncated, a value equal to hi in the last bin; then values below lo are added to
 *   bin 0 and values above hi to bin 511 (AIMET's clipping); NaN is counted nowhere. Counts are
 *   exact integers, equal to torch's while each bin holds fewer than 2^24 values.
 * - qsim_tfe_search: AIMET's candidates (17 scales x (offsets + the observed one) asymmetric,
 *   101 scales symmetric) and the cost of each: over the 512 bin centres c with counts h,
 *   q = rint(c / d - o), e = ((clamp(q, 0, steps) + o) * d - c)^2 * h, times 3 where q was
 *   outside [0, steps]. The 512 terms are summed as torch sums a contiguous float32 row: L lanes
 *   (torch's vector width, `lanes`) of four accumulators, term i going to accumulator
 *   (i / L) % 4, lane i % L, each accumulated in ascending i; then the four accumulators lane by
 *   lane, then the lanes in order. The cheapest candidate wins, the first one on ties (a NaN
 *   cost wins as torch.min's does). A candidate stops being summed once its partial sum, a lower
 *   bound of its cost since every term is >= 0, shows it cannot win.
 *
 * Example (one symmetric 8-bit search, torch with AVX-512: 16 lanes):
 *
 *     float lo, hi;
 *     qsim_tfe_params p = { 255, 1, 16, 0, NULL };
 *     qsim_tfe_search(&p, counts, edges, range_min, range_max, &lo, &hi);
 *
 * Ownership: every pointer is borrowed for the duration of the call; nothing allocates.
 */
#ifndef QSIM_AIMET_TFE_H
#define QSIM_AIMET_TFE_H

#include <stddef.h>
#include <stdint.h>

#include "qsim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QSIM_TFE_BINS        512
#define QSIM_TFE_MAX_OFFSETS 21 /* AIMET's offsets (without the observed one), at most */
#define QSIM_TFE_SLOTS       (QSIM_TFE_BINS + 3) /* count slots: the bins, below, above, NaN */

/* torch.histc of x[0, n) over [lo, hi] into counts[0, 512) (overwritten), values beyond the
 * range in the end bins. QSIM_INVALID_ARGUMENT unless lo < hi, both finite (torch.histc widens
 * or rejects such ranges: the caller handles them). qsim_tfe_count, then the slots as counts. */
qsim_status qsim_tfe_histogram(size_t n, const float * x, float lo, float hi, float * counts);

/* Adds the slot counts of x[0, n) over [lo, hi] to slots[QSIM_TFE_SLOTS] (not cleared first):
 * the value's bin (torch.histc's rule), or below lo, above hi, NaN. Slots are exact integers,
 * so the slots of the parts of x summed are the slots of x: a long row may be counted in chunks
 * (on several threads, each into its own slots), then summed. Same ranges refused as
 * qsim_tfe_histogram (slots untouched). */
qsim_status qsim_tfe_count(size_t n, const float * x, float lo, float hi, int64_t * slots);

/* One histogram as the analyzer keeps it: counts[512], edges[513] (uniform bins), range[2] (the
 * range it was last built on; the edges are that range, widened by 0.5 each side when it is a
 * point), limits[2] (how far the range may grow). */
typedef struct qsim_tfe_hist {
    float *       counts;
    float *       edges;
    float *       range;
    const float * limits;
} qsim_tfe_hist;

/* AIMET's first batch x[0, n) whose finite values span [lo, hi]: edges over [lo, hi] (widened
 * to [lo - 0.5, hi + 0.5] when lo == hi), edge i = i * ((e_hi - e_lo) / 512) + e_lo; counts as
 * qsim_tfe_histogram on [edges[0], edges[512]]; range = [lo, hi]; limits = the edges' ends moved
 * out by 1.5 times their width. QSIM_INVALID_ARGUMENT (h untouched) when the edges are not finite
 * with edges[0] < edges[512] (no finite value, or a point range too large to widen). */
qsim_status qsim_tfe_first(const qsim_tfe_hist * h, float * limits, size_t n, const float * x,
                           float lo, float hi);

/* AIMET's merge of a later batch x[0, n) whose finite values span [lo, hi] (lo > hi: none):
 * the range grows to [clamp(lo, limits[0], edges[0]), clamp(hi, edges[512], limits[1])]; when
 * it changed, each old bin's count moves to the new bin holding its start, the part beyond that
 * bin's end (rint of the overlap fraction times the count) to the next; the batch is binned as
 * qsim_tfe_histogram on the new range and added; edges are the new range's, edge i
 * = i * ((hi - lo) / 512) + lo. All in float32, in wrappers/quantization/tf_enhanced.py's order.
 * QSIM_INVALID_ARGUMENT (h untouched) when the new range is not finite with lo < hi (torch.histc
 * would widen or reject it: the caller merges that row itself). */
qsim_status qsim_tfe_merge(const qsim_tfe_hist * h, size_t n, const float * x, float lo, float hi);

/* qsim_tfe_first and qsim_tfe_merge in three steps, for a caller that counts the batch itself
 * (bindings/aimet_tfe_cpu.cpp counts a long row in chunks over threads):
 *
 * 1. qsim_tfe_first_range / qsim_tfe_merge_range: the range bin[2] the batch is binned on (the
 *    first batch's edges' ends; a later batch's grown range); QSIM_INVALID_ARGUMENT where
 *    qsim_tfe_first / qsim_tfe_merge refuse the row. They read h, write only bin.
 * 2. qsim_tfe_count of the batch over [bin[0], bin[1]] into zeroed slots (in parts, summed).
 * 3. qsim_tfe_first_counted / qsim_tfe_merge_counted with the batch's [lo, hi] and its slots:
 *    h (and limits) updated as qsim_tfe_first / qsim_tfe_merge do, bit for bit. They recompute
 *    the range of step 1 (same refusals, h untouched), and trust that the slots were counted on
 *    it.
 *
 * Example (a later batch counted in two parts):
 *
 *     float   bin[2];
 *     int64_t slots[QSIM_TFE_SLOTS] = { 0 };
 *     if (qsim_tfe_merge_range(&h, lo, hi, bin) == QSIM_SUCCESS) {
 *         qsim_tfe_count(m, x, bin[0], bin[1], slots);
 *         qsim_tfe_count(n - m, x + m, bin[0], bin[1], slots);
 *         qsim_tfe_merge_counted(&h, lo, hi, slots);
 *     }
 */
qsim_status qsim_tfe_first_range(float lo, float hi, float * bin);
qsim_status qsim_tfe_merge_range(const qsim_tfe_hist * h, float lo, float hi, float * bin);
qsim_status qsim_tfe_first_counted(const qsim_tfe_hist * h, float * limits, float lo, float hi,
                                   const int64_t * slots);
qsim_status qsim_tfe_merge_counted(const qsim_tfe_hist * h, float lo, float hi,
                                   const int64_t * slots);

/* One search's settings. */
typedef struct qsim_tfe_params {
    int32_t       steps;     /* qmax - qmin of the grid, >= 1 */
    int           symmetric; /* nonzero: 101 scales at offset floor(-steps / 2) */
    int           lanes;     /* float32 lanes of torch's sum: 8 or 16 */
    int32_t       n_offsets; /* asymmetric: AIMET's offsets (1..QSIM_TFE_MAX_OFFSETS) */
    const float * offsets;   /* asymmetric: rint(arange(-steps, step, step)) in float32 */
} qsim_tfe_params;

/* The best candidate's range (*lo = o * d, *hi = *lo + steps * d) for the histogram counts[512]
 * with bin edges edges[0], edges[1], ... (only the first two are read: the bins are uniform)
 * of the observed range [range_min, range_max]. QSIM_INVALID_ARGUMENT for bad params. */
qsim_status qsim_tfe_search(const qsim_tfe_params * p, const float * counts, const float * edges,
                            float range_min, float range_max, float * lo, float * hi);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_AIMET_TFE_H */
