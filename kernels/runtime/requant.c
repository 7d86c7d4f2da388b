/*
 * requant.c: the portable requantization loop (qsim/requant.h) and the run-time choice of the
 * AVX2 variant (kernels/x86/requant__avx2.c).
 */
#include "qsim/requant.h"

#include "qdq/qdq_variants.h"
#include "runtime/requant_loop.h"

#if defined(__x86_64__)
void qsim_requantize_avx2(const float * acc, float * out, size_t outer_begin, size_t outer_end,
                          const qsim_requant_params * p);
#endif

void qsim_requantize_ref(const float * acc, float * out, size_t outer_begin, size_t outer_end,
                         const qsim_requant_params * p) {
    qsim_requant_loop(acc, out, outer_begin, outer_end, p);
}

void qsim_requantize(const float * acc, float * out, size_t outer_begin, size_t outer_end,
                     const qsim_requant_params * p) {
#if defined(__x86_64__)
    if (qsim_avx2_supported()) {
        qsim_requantize_avx2(acc, out, outer_begin, outer_end, p);
        return;
    }
#endif
    qsim_requant_loop(acc, out, outer_begin, outer_end, p);
}
