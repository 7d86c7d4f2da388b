/*
 * zero_point.h (internal, C and CUDA): the zero point of a quantizer that holds its encoding as an
 * fp32 range, for one element (qsim_zero_points_f32 in qsim/analyzers.h), written once for
 * grid_encoding.c and the CUDA kernel kernels/cuda/grid.cu. On the device the division is the IEEE
 * round-to-nearest intrinsic whatever the nvcc flags, so both give the same bits.
 */
#ifndef QSIM_ZERO_POINT_H
#define QSIM_ZERO_POINT_H

#include <math.h>
#include <stdint.h>

#include "qsim/analyzers.h"

#if defined(__CUDACC__)
#define QSIM_GRID_HD __host__ __device__
#else
#define QSIM_GRID_HD
#endif

/* `min` / `scale`, rounded to nearest (the fp32 quotient torch computes). */
static inline QSIM_GRID_HD float qsim_grid_div(float min, float scale) {
#ifdef __CUDA_ARCH__
    return __fdiv_rn(min, scale);
#else
    return min / scale;
#endif
}

/* The zero point on grid `grid` [qmin, qmax] of a quantizer holding `min` and
 * `scale` = (max - min) / (qmax - qmin): see qsim_zero_points_f32. The clamp keeps NaN. */
static inline QSIM_GRID_HD float qsim_zero_point_f32(qsim_grid_kind grid, float min, float scale,
                                                     int32_t qmin, int32_t qmax) {
    if (grid == QSIM_GRID_ASYMMETRIC) {
        const float z = (float) qmin - rintf(qsim_grid_div(min, scale));
        return z < (float) qmin ? (float) qmin : z > (float) qmax ? (float) qmax : z;
    }
    return grid == QSIM_GRID_UNSIGNED_SYMMETRIC && min < 0.0f ? (float) ((qmax + 1) / 2) : 0.0f;
}

#endif /* QSIM_ZERO_POINT_H */
