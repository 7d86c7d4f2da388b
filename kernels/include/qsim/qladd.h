/*
 * qladd.h: onnxruntime's QLinearAdd as MLAS's x86 AVX2 kernel computes it (compiled with FMA
 * contraction), from the two inputs' dequantized values to the output's dequantized values, for
 * same-shape operands (docs/runtime_target.md §2; torchqsim's onnxruntime target mode):
 *
 *   qa = rint(a / a_scale) + a_zero,  qb = rint(b / b_scale) + b_zero   (stored integers)
 *   k  = clamp(rint(fma(qa, ra, fma(qb, rb, fixed))), lo, hi)          (ra = fp32(a_scale / c_scale),
 *   out = (k - c_zero) * c_scale                                         rb likewise)
 *
 * with `fixed` MLAS's constant fp32(c_zero - fma(ra, a_zero, fp32(rb * b_zero))) and [lo, hi]
 * the output type's range. Every operation is one fp32 operation (fma: one rounding), in one
 * pass without temporaries.
 *
 * Example: a = 0.5, a_scale = 0.1, a_zero = 3 (qa = 8); b = 0.2, b_scale = 0.1, b_zero = 3
 * (qb = 5); c_scale = 0.1, c_zero = 3: ra = rb = 1, fixed = 3 - (3 + 3) = -3, k = 8 + 5 - 3 = 10,
 * out = (10 - 3) * 0.1 = 0.7.
 */
#ifndef QSIM_QLADD_H
#define QSIM_QLADD_H

#include <stddef.h>

/* The scalars of one QLinearAdd (fp32 values; the zero points and range as exact floats). */
typedef struct qsim_qladd_params {
    float a_scale, a_zero, b_scale, b_zero; /* the inputs' grids */
    float ra, rb, fixed;                    /* MLAS's ratios and constant */
    float lo, hi, c_zero, c_scale;          /* the output's range and grid */
} qsim_qladd_params;

/* out[i] for i in [begin, end) from a[i], b[i]: the fastest variant this CPU runs (AVX2 + FMA on
 * x86-64, else the portable loop; both give the same values). */
void qsim_qlinear_add(const float * a, const float * b, float * out, size_t begin, size_t end,
                      const qsim_qladd_params * p);

/* The portable loop (fmaf; the reference the tests compare the AVX2 variant with). */
void qsim_qlinear_add_ref(const float * a, const float * b, float * out, size_t begin,
                          size_t end, const qsim_qladd_params * p);

#endif /* QSIM_QLADD_H */
