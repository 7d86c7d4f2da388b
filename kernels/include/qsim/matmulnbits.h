/*
 * matmulnbits.h: onnxruntime's MatMulNBits with 8-bit weights, block size 32 and int8 compute
 * (accuracy_level 4), as MLAS computes it on x86-64 CPUs with AVX-512 VNNI (docs/runtime_target.md
 * §2; torchqsim's onnxruntime target mode runs W8A16 Linears through it). onnxruntime rewrites an
 * 8-bit weight DequantizeLinear -> MatMul (+ Add of a bias) into this kernel.
 *
 * Per row of A and block of 32 along k (MLAS's QuantizeARow_CompInt8): amax = max |a|,
 * sa = fp32(amax / 127), qa = rint(a * fp32(127 / amax)) (0 when amax is 0), and the block sum
 * ablk = fp32(sa * sum qa). B holds stored uint8 weights with a zero point zp and a scale sb per
 * (column, block). Per output (row, column):
 *   - the integer products qa . B (zero point NOT subtracted) go into float lanes: each group of
 *     4 blocks into 16 lanes (lane sums of 8 products, blocks in the lane pattern 0,0,2,2, 0,0,2,2,
 *     1,1,3,3, 1,1,3,3), lane = fma(float(dot), fp32(sa * sb), lane); the 16 lanes fold to 8
 *     (l + l + 8); each remaining block adds its 8 lanes of 4 products the same way;
 *   - the 8 lanes are summed as ((l0 + l1) + l2) + l3 + (((l4 + l5) + l6) + l7) for the columns
 *     in groups of 4 (MLAS's FoldAccumulators), or ((l0 + l4) + (l2 + l6)) + ((l1 + l5) +
 *     (l3 + l7)) for the last n % 4 columns (hsum_float_8); then + bias;
 *   - plus the zero-point correction, an fp32 FMA chain over the blocks from 0 of
 *     ablk * fp32(-sb * zp) (MLAS's float GEMM of the block sums), added once at the end.
 * Every step is one fp32 operation (fmaf: one rounding), so the result is bit for bit MLAS's.
 *
 * Example: one row a = {1, 0, ..., 0} (k = 32), B = {129, 128, ..., 128}, zp = 128, sb = 0.5:
 * sa = 1/127, qa = {127, 0, ...}, dot = 127 * 129, lane 0 = fp32(16383 * fp32(0.5 / 127)),
 * the correction -fp32(1/127 * 127) * 64 cancels the zero point: out = 0.5 (up to fp32 rounding).
 */
#ifndef QSIM_MATMULNBITS_H
#define QSIM_MATMULNBITS_H

#include <stddef.h>
#include <stdint.h>

#include "qsim/status.h"

/* The block length along k of this kernel (onnxruntime's QDQ fusion writes block_size = 32). */
#define QSIM_MATMULNBITS_BLOCK ((size_t)32)

/* Rows [row_begin, row_end) of out (rows x n, row-major fp32):
 *   a:     rows x k fp32, row-major;
 *   b:     n x k stored uint8 weights, row-major (column j of the product is row j of b);
 *   scale: n x blocks fp32 and zp: n x blocks uint8 (blocks = ceil(k / 32)), per column and block;
 *   bias:  n fp32, or NULL.
 * Returns QSIM_INVALID_ARGUMENT for k = 0 or a NULL pointer, QSIM_OUT_OF_MEMORY when the per-row
 * workspace cannot be allocated, else QSIM_SUCCESS. */
qsim_status qsim_matmulnbits_q8(const float * a, const uint8_t * b, const float * scale,
                                const uint8_t * zp, const float * bias, float * out, size_t n,
                                size_t k, size_t row_begin, size_t row_end);

#endif /* QSIM_MATMULNBITS_H */
