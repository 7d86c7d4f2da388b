/*
 * qladd.c: the portable QLinearAdd loop (qsim/qladd.h) and the run-time choice of the AVX2 +
 * FMA variant (kernels/x86/qladd__avx2.c).
 */
#include "qsim/qladd.h"

#include "qdq/qdq_variants.h"
#include "runtime/qladd_loop.h"

#if defined(__x86_64__)
void qsim_qlinear_add_avx2(const float * a, const float * b, float * out, size_t begin,
                           size_t end, const qsim_qladd_params * p);
#endif

void qsim_qlinear_add_ref(const float * a, const float * b, float * out, size_t begin,
                          size_t end, const qsim_qladd_params * p) {
    qsim_qladd_loop(a, b, out, begin, end, p);
}

void qsim_qlinear_add(const float * a, const float * b, float * out, size_t begin, size_t end,
                      const qsim_qladd_params * p) {
#if defined(__x86_64__)
    if (qsim_avx2_supported()) {
        qsim_qlinear_add_avx2(a, b, out, begin, end, p);
        return;
    }
#endif
    qsim_qladd_loop(a, b, out, begin, end, p);
}
