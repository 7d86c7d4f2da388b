/*
 * qladd__avx2.c: qsim_qlinear_add's loop (runtime/qladd_loop.h) compiled with AVX2 and FMA, so
 * that fmaf is the vfmadd instruction and the loop vectorizes (qsim/qladd.h).
 */
#include "runtime/qladd_loop.h"

void qsim_qlinear_add_avx2(const float * a, const float * b, float * out, size_t begin,
                           size_t end, const qsim_qladd_params * p);

void qsim_qlinear_add_avx2(const float * a, const float * b, float * out, size_t begin,
                           size_t end, const qsim_qladd_params * p) {
    qsim_qladd_loop(a, b, out, begin, end, p);
}
