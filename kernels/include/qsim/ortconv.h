/*
 * ortconv.h: the fp32 products onnxruntime's CPU execution provider runs for a float Conv and
 * Gemm (a Conv or Linear between a DequantizeLinear and a QuantizeLinear that onnxruntime does
 * not fuse: every 16-bit activation), as MLAS computes them on x86-64 (onnxruntime 1.32; the
 * SGEMM kernels of AVX2/FMA3 and AVX-512F accumulate the same way), bit for bit
 * (docs/runtime_target.md §2; torchqsim's onnxruntime target mode).
 *
 * MLAS's SGEMM splits K into blocks of stride_k (qsim_ort_sgemm_stride_k: 128, halved while
 * the half still covers K when N >= K, else doubled while N fits half the N stride, which
 * starts at 128 and stops at 16). In each block an output's accumulator starts at 0 and adds
 * the block's products in K order by fmaf (vfmadd231ps; one rounding each); the first block's
 * accumulator is stored (zero mode), every later one is added to the stored value (one fp32
 * addition). A Gemm with a bias first broadcasts the bias into the output and adds even the
 * first block to it (beta = 1); a Conv runs the SGEMM in zero mode on its im2col columns and
 * adds the bias afterwards (MlasActivation: one fp32 addition per output).
 *
 * Example: a = {1, 2} (m = 1, k = 2), b = {3, 4} (k = 2, n = 1): stride_k(1, 2) = 1024 (n < k:
 * the N stride halves to 16, the K stride doubles thrice), one block, acc = fmaf(2, 4,
 * fmaf(1, 3, 0)) = 11; with accumulate and c = {0.5}: c = 0.5 + 11.
 *
 * A one-row Gemm and a Conv with one output channel per group run MLAS's M = 1 kernels
 * instead (qsim_ort_sgemm_m1_transb, qsim_ort_sgemm_m1); a Conv with one output position and
 * several output channels per group runs MLAS's N = 1 case: qsim_ort_sgemm_m1_transb with the
 * im2col column as a and the group's weight rows as b, over the whole K (measured: no slices). Not matched: a K above the block size
 * when onnxruntime splits N over threads into parts below 64 (the block size then follows each
 * thread's N; the callers use the whole N, as one thread does).
 */
#ifndef QSIM_ORTCONV_H
#define QSIM_ORTCONV_H

#include <stddef.h>

#include "qsim/status.h"

/* MLAS's K block for a product of n output columns and k terms (k > 0). */
size_t qsim_ort_sgemm_stride_k(size_t n, size_t k);

/* Rows [row_begin, row_end) of c (m x n, row-major fp32) = a (m x k) times b (k x n), both
 * row-major fp32, in MLAS's order with K blocks of stride_k; accumulate != 0 adds every block
 * to c's values (a Gemm's broadcast bias), else the first block replaces them.
 * QSIM_INVALID_ARGUMENT for k, n or stride_k = 0, row_end > m or a NULL pointer. */
qsim_status qsim_ort_sgemm(const float * a, const float * b, float * c, size_t m, size_t n,
                           size_t k, size_t stride_k, int accumulate, size_t row_begin,
                           size_t row_end);

/* The portable variant of qsim_ort_sgemm (which dispatches to an AVX-512 one on CPUs that
 * have it; the same values). */
qsim_status qsim_ort_sgemm_ref(const float * a, const float * b, float * c, size_t m, size_t n,
                               size_t k, size_t stride_k, int accumulate, size_t row_begin,
                               size_t row_end);

/* c (n values) = a (k values) times b^T, b (n x k, row-major: a Gemm's transB weight), as
 * MLAS's M = 1 kernel computes a one-row Gemm (its AVX kernel, the one x86-64 runs): per output 8
 * lanes, lane l the sum of the products of the k = l (mod 8), each product rounded then added
 * (no FMA), over the whole K (no blocks); the outputs in groups of 4 while 4 remain, then one of
 * 2, then 1, whose shuffles add the lanes in different orders: group of 4: (((l0 + l1) + l2) +
 * l3) + (((l4 + l5) + l6) + l7); of 2: ((l0 + l2) + (l4 + l6)) + ((l1 + l3) + (l5 + l7)); of 1:
 * ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). Then accumulate != 0 adds c's value (the
 * broadcast bias), else + 0. QSIM_INVALID_ARGUMENT for k = 0 or a NULL pointer. */
qsim_status qsim_ort_sgemm_m1_transb(const float * a, const float * b, float * c, size_t n,
                                     size_t k, int accumulate);

/* c (n values) = a (k values) times b (k x n, row-major: a Conv's im2col columns), as MLAS's
 * M = 1 kernel without transposed B computes it (a Conv with one output channel per group): in
 * each K block of stride_k (the Conv's K slices; stride_k = k for a pointwise Conv, which MLAS
 * does not slice), the rows in chunks of 4 while 4 remain, then one of 2, then 1; per output a
 * chunk's products are rounded and added in order from the first, and the chunk's sum is added
 * to c (the first chunk of the first block to + 0 unless accumulate != 0).
 * QSIM_INVALID_ARGUMENT for k or stride_k = 0 or a NULL pointer. */
qsim_status qsim_ort_sgemm_m1(const float * a, const float * b, float * c, size_t n, size_t k,
                              size_t stride_k, int accumulate);

#endif /* QSIM_ORTCONV_H */
