/*
 * requant_loop.h (internal): the one loop of qsim_requantize (qsim/requant.h), included by the
 * portable variant (runtime/requant.c) and the AVX2 one (x86/requant__avx2.c), where rintf is
 * vroundps and the inner loops vectorize: along `inner` for per-channel multipliers of a
 * channels-first layout, along the channels when `inner` is 1 (a Linear's last dim).
 */
#ifndef QSIM_REQUANT_LOOP_H
#define QSIM_REQUANT_LOOP_H

#include <math.h>

#include "qsim/requant.h"

static inline float qsim_requant_one(float acc, float m, float lo, float hi, float y_scale) {
    const float k = rintf(acc * m);
    return (k < lo ? lo : (k > hi ? hi : k)) * y_scale;
}

static inline void qsim_requant_loop(const float * acc, float * out, size_t outer_begin,
                                     size_t outer_end, const qsim_requant_params * p) {
    const size_t channels = p->channels, inner = p->inner;
    const float  lo = p->lo, hi = p->hi, ys = p->y_scale;
    const float * m = p->multiplier;
    for (size_t o = outer_begin; o < outer_end; o++) {
        const size_t base = o * channels * inner;
        if (inner == 1 && channels > 1) {
            for (size_t c = 0; c < channels; c++) {
                out[base + c] = qsim_requant_one(acc[base + c], m[c], lo, hi, ys);
            }
            continue;
        }
        for (size_t c = 0; c < channels; c++) {
            const float   mc = m[channels > 1 ? c : 0];
            const size_t  at = base + c * inner;
            for (size_t j = 0; j < inner; j++) {
                out[at + j] = qsim_requant_one(acc[at + j], mc, lo, hi, ys);
            }
        }
    }
}

#endif /* QSIM_REQUANT_LOOP_H */
