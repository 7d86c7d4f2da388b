/*
 * requant.h: MLAS's requantization of an fp32 accumulator (QLinearConv / QGemm / QLinearMatMul
 * output processor) straight to the output's dequantized values, in one pass (docs/runtime_target.md
 * §2; torchqsim's onnxruntime target mode):
 *
 *   out = clamp(rint(acc * multiplier[c]), lo, hi) * y_scale
 *
 * (an fp32 product, clamped to [qmin - zp, qmax - zp], rounded half to even, then the output grid)
 * with one multiplier per channel c or one for all. The tensor is `outer` x `channels` x `inner`
 * (row-major): channel c of element (o, c, j) is at (o * channels + c) * inner + j.
 *
 * Example: acc = {10, -7}, one multiplier 0.25, lo = -128, hi = 127, y_scale = 0.5:
 * rint(2.5) = 2 and rint(-1.75) = -2, so out = {1, -1}.
 */
#ifndef QSIM_REQUANT_H
#define QSIM_REQUANT_H

#include <stddef.h>

/* The scalars of one requantization; `multiplier` holds `channels` values (1: shared). */
typedef struct qsim_requant_params {
    const float * multiplier;
    size_t        outer, channels, inner;
    float         lo, hi, y_scale;
} qsim_requant_params;

/* Rows [outer_begin, outer_end) of out from acc (may be the same buffer): the fastest variant
 * this CPU runs (AVX2 on x86-64, else the portable loop; both give the same values). */
void qsim_requantize(const float * acc, float * out, size_t outer_begin, size_t outer_end,
                     const qsim_requant_params * p);

/* The portable loop (the reference the tests compare the AVX2 variant with). */
void qsim_requantize_ref(const float * acc, float * out, size_t outer_begin, size_t outer_end,
                         const qsim_requant_params * p);

#endif /* QSIM_REQUANT_H */
