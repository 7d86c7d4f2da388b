/*
 * qsim/grid_cuda.h: the CUDA launcher of the zero-point kernel (kernels/cuda/grid.cu), callable
 * from C.
 *
 * qsim_zero_points_f32 (qsim/analyzers.h) on device memory, bit for bit the CPU's (one element
 * function, kernels/grid/zero_point.h, compiled for both), except that a NaN computed by the
 * division is the GPU's canonical NaN. The grid bounds come from the caller (qsim_grid_bounds).
 * min, scale and zp are device pointers of n fp32 entries (scale is read only for
 * QSIM_GRID_ASYMMETRIC), borrowed until the enqueued work has run; `stream` is a cudaStream_t
 * passed as `void *` (NULL: the default stream). Nothing is synchronised, allocated or validated
 * (the binding checks arguments first).
 *
 * Returns 0 on success, otherwise a cudaError_t value (cudaGetErrorString describes it).
 */
#ifndef QSIM_GRID_CUDA_H
#define QSIM_GRID_CUDA_H

#include <stdint.h>

#include "qsim/analyzers.h"

#ifdef __cplusplus
extern "C" {
#endif

int qsim_cuda_zero_points_f32(qsim_grid_kind grid, int32_t qmin, int32_t qmax, const float * min,
                              const float * scale, float * zp, int64_t n, void * stream);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_GRID_CUDA_H */
