/*
 * stats_variants.h (internal): prototypes of every variant listed in stats_variants.inc, that is
 * qsim_<isa>_supported() and the run kernels qsim_minmax_f32_<isa>, qsim_histogram_f32_<isa>.
 */
#ifndef QSIM_STATS_VARIANTS_H
#define QSIM_STATS_VARIANTS_H

#include "qsim/stats.h"

#define QSIM_STATS_VARIANT(isa)                                                                  \
    int     qsim_##isa##_supported(void);                                                        \
    int64_t qsim_minmax_f32_##isa(size_t n, const float * x, float * min, float * max);          \
    int64_t qsim_histogram_f32_##isa(size_t n, const float * x, qsim_bins b, int64_t * counts,     \
                                     float * min, float * max);
#include "stats/stats_variants.inc"
#undef QSIM_STATS_VARIANT

#endif /* QSIM_STATS_VARIANTS_H */
