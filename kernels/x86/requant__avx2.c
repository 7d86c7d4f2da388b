/*
 * requant__avx2.c: qsim_requantize's loop (runtime/requant_loop.h) compiled with AVX2, so that
 * rintf is vroundps and the loop vectorizes (qsim/requant.h).
 */
#include "runtime/requant_loop.h"

void qsim_requantize_avx2(const float * acc, float * out, size_t outer_begin, size_t outer_end,
                          const qsim_requant_params * p);

void qsim_requantize_avx2(const float * acc, float * out, size_t outer_begin, size_t outer_end,
                          const qsim_requant_params * p) {
    qsim_requant_loop(acc, out, outer_begin, outer_end, p);
}
