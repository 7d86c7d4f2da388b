/*
 * ortfloat__avx512.c: the loops of qsim_ort_layer_norm, qsim_ort_softmax, qsim_ort_gelu and
 * qsim_ort_activation (runtime/ortfloat_loop.h; qsim_ort_matmul runs x86/ortconv__avx512.c)
 * compiled with AVX-512 and FMA, so that fmaf is the vfmadd instruction and the element loops
 * vectorize (qsim/ortfloat.h). The same values as the portable variant: every operation is the
 * same fp32 operation.
 */
#include "runtime/ortfloat_loop.h"

void qsim_ort_layer_norm_avx512(const float * x, const float * gamma, const float * beta,
                                float eps, float * out, size_t d, size_t r0, size_t r1);
void qsim_ort_softmax_avx512(const float * x, float * out, size_t d, size_t r0, size_t r1);
void qsim_ort_gelu_avx512(const float * x, float * out, size_t begin, size_t end);
void qsim_ort_activation_avx512(const float * x, float * out, size_t begin, size_t end, int kind);

void qsim_ort_layer_norm_avx512(const float * x, const float * gamma, const float * beta,
                                float eps, float * out, size_t d, size_t r0, size_t r1) {
    qsim_ortf_layer_norm_rows(x, gamma, beta, eps, out, d, r0, r1);
}

void qsim_ort_softmax_avx512(const float * x, float * out, size_t d, size_t r0, size_t r1) {
    qsim_ortf_softmax_rows(x, out, d, r0, r1);
}

void qsim_ort_gelu_avx512(const float * x, float * out, size_t begin, size_t end) {
    qsim_ortf_gelu_loop(x, out, begin, end);
}

void qsim_ort_activation_avx512(const float * x, float * out, size_t begin, size_t end, int kind) {
    qsim_ortf_activation_loop(x, out, begin, end, kind);
}
