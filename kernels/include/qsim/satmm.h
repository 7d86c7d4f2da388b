/*
 * satmm.h: the uint8 x int8 matrix product of MLAS's AVX2/AVX512BW integer kernels, whose
 * vpmaddubsw adds each pair of adjacent products in int16 with saturation before widening
 * (docs/runtime_target.md §2; torchqsim's onnxruntime target mode).
 *
 *   out[r][j] = sum over p of sat16(a[r][2p] * w[j][2p] + a[r][2p + 1] * w[j][2p + 1])
 *
 * with sat16 the clamp to [-32768, 32767] and an odd k padded with a zero. Every sum is exact in
 * int32 (at most 2^31 / 32767 = 65538 pairs: k <= 131072).
 *
 * Example (one row, one output, k = 2): a = {255, 255}, w = {127, 127}: the pair is 64770,
 * saturated to 32767, so out = 32767 (the exact product would be 64770).
 */
#ifndef QSIM_SATMM_H
#define QSIM_SATMM_H

#include <stddef.h>
#include <stdint.h>

/* The largest k qsim_u8s8_satmm accepts (its int32 sums cannot overflow). */
#define QSIM_SATMM_MAX_K ((size_t)131072)

/* Rows [row_begin, row_end) of out (rows x n, row-major) for a (rows x k, row-major uint8) and
 * w (n x k, row-major int8): the fastest variant this CPU runs (AVX2 on x86-64, else the
 * portable loop; both give the same integers). */
void qsim_u8s8_satmm(const uint8_t * a, const int8_t * w, int32_t * out, size_t n, size_t k,
                     size_t row_begin, size_t row_end);

/* The portable loop (the reference the tests compare the AVX2 variant with). */
void qsim_u8s8_satmm_ref(const uint8_t * a, const int8_t * w, int32_t * out, size_t n, size_t k,
                         size_t row_begin, size_t row_end);

#endif /* QSIM_SATMM_H */
