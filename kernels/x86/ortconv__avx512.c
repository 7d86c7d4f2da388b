/*
 * ortconv__avx512.c: the loop of qsim_ort_sgemm (runtime/ortconv_loop.h) compiled with AVX-512
 * and FMA, so that fmaf is the vfmadd instruction and the column loops vectorize
 * (qsim/ortconv.h). The same values as the portable variant: every operation is the same fp32
 * operation.
 */
#include "runtime/ortconv_loop.h"

void qsim_ort_sgemm_avx512(const float * a, const float * b, float * c, size_t n, size_t k,
                           size_t stride_k, int accumulate, size_t r0, size_t r1);

void qsim_ort_sgemm_avx512(const float * a, const float * b, float * c, size_t n, size_t k,
                           size_t stride_k, int accumulate, size_t r0, size_t r1) {
    qsim_ortc_rows(a, b, c, n, k, stride_k, accumulate, r0, r1);
}
