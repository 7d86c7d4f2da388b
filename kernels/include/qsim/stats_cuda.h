/*
 * qsim/stats_cuda.h: launchers of the statistics kernels (kernels/cuda/stats.cu), callable from C.
 *
 * The statistics of qsim/stats.h on device memory, equal to the CPU's bit for bit: min and max of
 * the finite values (a zero result is +0.0), the count of non-finite values (skipped), and
 * histogram counts binned by qsim_bin_index, the C kernels' own function. Every result is an
 * integer count or a min/max, so the order in which threads meet the elements does not matter:
 * counts are added with integer atomics, and min/max with atomics on an ordered integer image of
 * the floats.
 *
 * Every launcher takes a channel view of a contiguous fp32 tensor x (qsim_channel_view; {1, 1, n}
 * per-tensor), device pointers, and a cudaStream_t passed as `void *` (NULL: the default stream).
 * Results fold into what the arrays hold (start a fresh fold from +INF, -INF, 0 and zero counts):
 * min, max and nonfinite have one entry per channel. Pointers are borrowed until the enqueued work
 * has run; nothing is synchronised, allocated or validated (the binding checks arguments first).
 *
 * Returns 0 on success, otherwise a cudaError_t value (cudaGetErrorString describes it).
 */
#ifndef QSIM_STATS_CUDA_H
#define QSIM_STATS_CUDA_H

#include <stdint.h>

#include "qsim/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Folds the finite values of each channel c into min[c] and max[c] and adds its non-finite count
 * to nonfinite[c] (qsim_minmax_channels_f32 over all channels). */
int qsim_cuda_minmax_f32(const qsim_channel_view * v, const float * x, float * min, float * max,
                         int64_t * nonfinite, void * stream);

/* qsim_histogram_channels_f32 over all channels: bins[c] (device memory, one per channel) bins
 * channel c into counts[c * nbins, (c + 1) * nbins), where bins[c] is qsim_bins_of(range[c],
 * nbins), or has count 0 for a channel without a range (min/max only); min, max and nonfinite
 * fold as in qsim_cuda_minmax_f32. nbins in 1..QSIM_MAX_BINS. */
int qsim_cuda_histogram_f32(const qsim_channel_view * v, const float * x, const qsim_bins * bins,
                            int64_t nbins, int64_t * counts, float * min, float * max,
                            int64_t * nonfinite, void * stream);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_STATS_CUDA_H */
