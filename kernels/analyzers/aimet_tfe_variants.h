/*
 * aimet_tfe_variants.h (internal): the ISA variants of the tf_enhanced loops (qsim/aimet_tfe.h):
 * the row the cost reads, the table of variants, and the entry points taking a variant (for the
 * tests, tests/kernels/analyzers/test_aimet_tfe.cpp). The loops themselves are in
 * analyzers/aimet_tfe_kernels.h.
 */
#ifndef QSIM_AIMET_TFE_VARIANTS_H
#define QSIM_AIMET_TFE_VARIANTS_H

#include <stddef.h>
#include <stdint.h>

#include "qsim/aimet_tfe.h"

/* One histogram as the cost reads it: counts h, bin centres c, the bins [first, end) that the
 * cost sums (whole blocks of 4 * lanes; the others hold zero counts and add exact zeros), and
 * the outermost bins with a count, lo and hi (the search's cheapest bound; lo -1: none). */
typedef struct qsim_tfe_row {
    const float * h;
    float         c[QSIM_TFE_BINS];
    float         steps;
    int           lanes, first, end, lo, hi;
} qsim_tfe_row;

/* One ISA's loops. cost: the cost of candidate (d, o) summed in torch's order (qsim/aimet_tfe.h),
 * or, once a partial sum shows it, any value no better than `bound` (`later`: the candidate comes
 * after the one that holds `bound`, so a tie loses too). heads: head[j], the larger of candidate
 * (d[j], o[j])'s terms of two bins (c0, h0) and (c1, h1), j < n. count: slot counts of x[0, n)
 * over [lo, hi] added to c[QSIM_TFE_SLOTS] (the bins, then below, above, NaN). */
typedef struct qsim_tfe_kernels {
    const char * name;
    int (*supported)(void);
    float (*cost)(const qsim_tfe_row * r, float d, float o, float bound, int later);
    void (*heads)(int n, float c0, float h0, float c1, float h1, float steps, const float * d,
                  const float * o, float * head);
    void (*count)(size_t n, const float * x, float lo, float hi, int64_t * c);
} qsim_tfe_kernels;

/* Every compiled variant, reference first (count in *n), and the best this CPU runs. */
const qsim_tfe_kernels * qsim_tfe_variants(size_t * n);
const qsim_tfe_kernels * qsim_tfe_best(void);

/* qsim_tfe_histogram, qsim_tfe_count and qsim_tfe_search with the given variant. */
qsim_status qsim_tfe_histogram_k(const qsim_tfe_kernels * k, size_t n, const float * x, float lo,
                                 float hi, float * counts);
qsim_status qsim_tfe_count_k(const qsim_tfe_kernels * k, size_t n, const float * x, float lo,
                             float hi, int64_t * slots);
qsim_status qsim_tfe_search_k(const qsim_tfe_kernels * k, const qsim_tfe_params * p,
                              const float * counts, const float * edges, float range_min,
                              float range_max, float * lo, float * hi);

#define QSIM_TFE_VARIANT(isa)                                                                   \
    int   qsim_##isa##_supported(void);                                                         \
    float qsim_tfe_cost_##isa(const qsim_tfe_row * r, float d, float o, float bound, int later);  \
    void  qsim_tfe_heads_##isa(int n, float c0, float h0, float c1, float h1, float steps,        \
                               const float * d, const float * o, float * head);                  \
    void  qsim_tfe_count_##isa(size_t n, const float * x, float lo, float hi, int64_t * c);
#include "analyzers/aimet_tfe_variants.inc"
#undef QSIM_TFE_VARIANT

#endif /* QSIM_AIMET_TFE_VARIANTS_H */
