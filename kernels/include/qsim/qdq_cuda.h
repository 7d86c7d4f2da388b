/*
 * qsim/qdq_cuda.h: CUDA launchers of the qdq kernels (kernels/cuda/qdq.cu), callable from C.
 *
 * Same numerics, layouts and qparams as qsim/qdq.h, on device memory:
 *  - forward (qdq, quantize, dequantize), the STE backward and the fp16/bf16 fake casts are bit
 *    for bit the CPU reference (IEEE division, never a reciprocal multiply; rint ties to even; the
 *    comparison clamp), except that a NaN computed by arithmetic is the GPU's canonical NaN
 *    rather than the input's payload (the fake casts pass NaN through unchanged);
 *  - the range-learning backward writes the same dx bit for bit, and each group's gradient sums
 *    the same float terms in double, in a fixed order that depends only on the layout (so a
 *    result is reproducible run to run), but not the CPU's order: see
 *    qsim_cuda_backward_reduce_f32 for the tolerance.
 *
 * Every launcher takes: the layout and qparams (host structs; their scale and zero_point
 * pointers point to device memory, fp32, as many entries as the layout indexes), raw fp32 device
 * pointers, n = qsim_layout_numel(l) elements, and a cudaStream_t passed as `void *` (NULL: the
 * default stream). Every pointer is borrowed: the caller keeps the memory alive until the enqueued
 * work has run. It only enqueues work: nothing is synchronised, nothing allocated, nothing
 * validated beyond n (the binding checks arguments first, as for the CPU). Only the layouts of
 * qsim_layout_per_tensor / _per_channel / _blockwise are supported.
 *
 * Returns 0 on success, otherwise a cudaError_t value (cudaGetErrorString describes it):
 * cudaErrorInvalidValue when n does not match the layout, else the launch error.
 */
#ifndef QSIM_QDQ_CUDA_H
#define QSIM_QDQ_CUDA_H

#include <stdint.h>

#include "qsim/qdq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = op(x) for all n elements. x and y are the same array or do not overlap. */
int qsim_cuda_forward_f32(qsim_op op, const qsim_layout * l, const qsim_qparams * p,
                          const float * x, float * y, int64_t n, void * stream);

/* STE backward of op for x: dx = d op / dx * dy (the dx of qsim_backward_f32). dx may be dy. */
int qsim_cuda_backward_f32(qsim_op op, const qsim_layout * l, const qsim_qparams * p,
                           const float * x, const float * dy, float * dx, int64_t n,
                           void * stream);

/* qsim_cuda_forward_f32 and qsim_cuda_backward_f32 on fp16/bf16 data (`kind`, bit patterns):
 * each element is widened to fp32 exactly, computed as the f32 launchers compute it and rounded
 * back to `kind` once, as qsim_forward_h16 / qsim_backward_h16 do on the CPU (bit for bit the
 * same, NaN becoming the same quiet NaN); no fp32 copy of the data is made. */
int qsim_cuda_forward_h16(qsim_op op, qsim_half_kind kind, const qsim_layout * l,
                          const qsim_qparams * p, const uint16_t * x, uint16_t * y, int64_t n,
                          void * stream);
int qsim_cuda_backward_h16(qsim_op op, qsim_half_kind kind, const qsim_layout * l,
                           const qsim_qparams * p, const uint16_t * x, const uint16_t * dy,
                           uint16_t * dx, int64_t n, void * stream);

/* Doubles of workspace that qsim_cuda_backward_reduce_f32 needs for layout l (may be 0). */
int64_t qsim_cuda_reduce_workspace(const qsim_layout * l);

/* Backward with the range-learning gradients (formulas of qsim_backward_reduce_f32): writes dx
 * for every element, and the gradient of qparam entry g to dscale[g] and dzero_point[g] (one
 * entry for per-tensor). `workspace` holds qsim_cuda_reduce_workspace(l) doubles.
 *
 * Order: the elements of each group (the elements sharing one qparam entry) are cut into chunks
 * of 2048 in ascending flat order; one warp sums a chunk (each lane its elements in order, then a
 * fixed shuffle tree) into the workspace; then one warp per group (one block when the group has
 * more than 32 chunks) sums the chunk partials the same way, and the double is rounded to float
 * once. The order depends only on the layout. The CPU sums the same float terms in double in
 * another fixed order, so with n_g elements per group and A = sum of |term| over the group,
 *     |cuda - cpu| <= 2^-23 * max(|cuda|, |cpu|) + n_g * 2^-52 * A
 * (one float rounding each, plus twice the (n_g - 1) * 2^-53 * A bound of a double summation);
 * in practice the two agree to the last float bit almost always. NaN or Inf terms give NaN or Inf
 * in both. */
int qsim_cuda_backward_reduce_f32(qsim_op op, const qsim_layout * l, const qsim_qparams * p,
                                  const float * x, const float * dy, float * dx,
                                  double * workspace, float * dscale, float * dzero_point,
                                  int64_t n, void * stream);

/* Element-wise fake casts: y = fp32(fp16(x)) and y = fp32(bf16(x)), ties to even. */
int qsim_cuda_cast_f16_f32(const float * x, float * y, int64_t n, void * stream);
int qsim_cuda_cast_bf16_f32(const float * x, float * y, int64_t n, void * stream);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_QDQ_CUDA_H */
