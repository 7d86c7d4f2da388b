#include "stats/stats_variants.h"
#include "runtime/variants_dispatch.h"

#define QSIM_STATS_VARIANT(isa) \
    { #isa, qsim_##isa##_supported, qsim_minmax_f32_##isa, qsim_histogram_f32_##isa },
static const qsim_stats_kernels qsim_stats_table[] = {
#include "stats/stats_variants.inc"
};
#undef QSIM_STATS_VARIANT

QSIM_DEFINE_VARIANT_DISPATCH(qsim_stats_kernels, qsim_stats_table, qsim_stats_variants,
                             qsim_stats_best)
