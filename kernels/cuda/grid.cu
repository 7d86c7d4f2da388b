// CUDA kernel of the held-range zero points: the launcher of qsim/grid_cuda.h. Each thread
// computes elements with the C kernels' own qsim_zero_point_f32 (grid/zero_point.h, compiled
// for the device too), so the result equals qsim_zero_points_f32 on the CPU bit for bit.
#include <cuda_runtime.h>

#include "grid/zero_point.h"
#include "qsim/grid_cuda.h"

namespace {

constexpr int     kThreads   = 256;
constexpr int64_t kMaxBlocks = 4096;  // a grid-stride loop covers the rest

__global__ void zero_points_kernel(qsim_grid_kind grid, int32_t qmin, int32_t qmax,
                                   const float * __restrict__ min,
                                   const float * __restrict__ scale, float * __restrict__ zp,
                                   int64_t n) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += stride) {
        zp[i] = qsim_zero_point_f32(grid, min[i], scale ? scale[i] : 0.0f, qmin, qmax);
    }
}

}  // namespace

extern "C" int qsim_cuda_zero_points_f32(qsim_grid_kind grid, int32_t qmin, int32_t qmax,
                                         const float * min, const float * scale, float * zp,
                                         int64_t n, void * stream) {
    if (n <= 0) {
        return static_cast<int>(cudaSuccess);
    }
    const int64_t want   = (n + kThreads - 1) / kThreads;
    const int64_t blocks = want < kMaxBlocks ? want : kMaxBlocks;
    zero_points_kernel<<<static_cast<unsigned>(blocks), kThreads, 0,
                         static_cast<cudaStream_t>(stream)>>>(grid, qmin, qmax, min, scale, zp, n);
    return static_cast<int>(cudaGetLastError());
}
