/*
 * qsim/minifloat_cuda.h: CUDA launchers of the minifloat and block-format kernels
 * (kernels/cuda/minifloat.cu), callable from C. Same numerics as qsim/minifloat.h, bit for bit
 * (IEEE division and products, never a reciprocal or an FMA), except that a NaN computed by
 * arithmetic is the GPU's canonical NaN rather than an input's payload.
 *
 * Pointers x, y and scale are fp32 device memory (x and y the same array or disjoint); the format
 * structs and the layout are host structs passed by value to the kernel. Every pointer is
 * borrowed until the enqueued work has run; nothing is synchronised, allocated or validated beyond
 * the counts. `stream` is a cudaStream_t as `void *` (NULL: the default stream). Returns 0 or a
 * cudaError_t value (cudaErrorInvalidValue when n does not match the layout).
 */
#ifndef QSIM_MINIFLOAT_CUDA_H
#define QSIM_MINIFLOAT_CUDA_H

#include <stdint.h>

#include "qsim/minifloat.h"
#include "qsim/qdq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* qsim_minifloat_forward_f32 over all n = qsim_layout_numel(l) elements. */
int qsim_cuda_minifloat_f32(const qsim_minifloat * m, const qsim_layout * l, const float * scale,
                            const float * x, float * y, int64_t n, void * stream);

/* qsim_block_forward_f32 over all `rows` rows of a contiguous [rows, row_len] array. */
int qsim_cuda_block_float_f32(const qsim_block_format * b, int64_t rows, int64_t row_len,
                              const float * x, float * y, void * stream);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_MINIFLOAT_CUDA_H */
