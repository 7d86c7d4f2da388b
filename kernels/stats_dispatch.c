#include "stats_variants.h"

#define QSIM_STATS_VARIANT(isa) \
    { #isa, qsim_##isa##_supported, qsim_minmax_f32_##isa, qsim_histogram_f32_##isa },
static const qsim_stats_kernels qsim_stats_table[] = {
#include "stats_variants.inc"
};
#undef QSIM_STATS_VARIANT

const qsim_stats_kernels * qsim_stats_variants(size_t * count) {
    *count = sizeof qsim_stats_table / sizeof qsim_stats_table[0];
    return qsim_stats_table;
}

const qsim_stats_kernels * qsim_stats_best(void) {
    static const qsim_stats_kernels * _Atomic best;
    const qsim_stats_kernels * b = best;
    if (!b) {
        size_t n;
        const qsim_stats_kernels * v = qsim_stats_variants(&n);
        for (b = &v[0]; n-- > 0;) {
            if (v[n].supported()) {
                b = &v[n];
                break;
            }
        }
        best = b;
    }
    return b;
}
