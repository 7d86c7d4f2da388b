// CUDA kernels of qsim/minifloat_cuda.h: the per-element arithmetic is minifloat_cuda_math.h.
// Minifloat casts: a grid-stride loop, one element per thread per step, scale index from the
// layout map of qdq_cuda_math.h. Block formats: one thread per block (at most 32 elements: the
// block's maximum, then its elements), blocks numbered row by row.
#include <cuda_runtime.h>

#include "cuda/minifloat_cuda_math.h"
#include "qsim/minifloat_cuda.h"

namespace qsim_cuda {
namespace {

constexpr int     kThreads   = 256;
constexpr int64_t kMaxBlocks = 65535;

unsigned grid_for(int64_t work) {
    const int64_t b = (work + kThreads - 1) / kThreads;
    return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}

template <typename Map>
__global__ void __launch_bounds__(kThreads)
minifloat_kernel(int64_t n, Map map, qsim_minifloat m, const float * scale, const float * x,
                 float * y) {
    for (int64_t f = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; f < n;
         f += static_cast<int64_t>(gridDim.x) * kThreads) {
        y[f] = mf_scaled(x[f], scale[map(f)], m);
    }
}

__global__ void __launch_bounds__(kThreads)
block_kernel(int64_t rows, int64_t row_len, qsim_block_format b, const float * x, float * y) {
    const int64_t per_row = (row_len + static_cast<int64_t>(b.block) - 1) / static_cast<int64_t>(b.block);
    for (int64_t k = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; k < rows * per_row;
         k += static_cast<int64_t>(gridDim.x) * kThreads) {
        const int64_t r     = k / per_row;
        const int64_t first = (k - r * per_row) * static_cast<int64_t>(b.block);
        const int64_t len   = row_len - first < static_cast<int64_t>(b.block) ? row_len - first
                                                                              : static_cast<int64_t>(b.block);
        const float * xb    = x + r * row_len + first;
        float *       yb    = y + r * row_len + first;
        uint32_t      amax  = 0;
        for (int64_t j = 0; j < len; j++) {
            const uint32_t a = f32_bits(xb[j]) & 0x7fffffffu;
            amax             = a > amax ? a : amax;
        }
        const float s = block_scale(amax, b);
        for (int64_t j = 0; j < len; j++) {
            yb[j] = block_element(xb[j], s, b);
        }
    }
}

}  // namespace
}  // namespace qsim_cuda

extern "C" int qsim_cuda_minifloat_f32(const qsim_minifloat * m, const qsim_layout * l,
                                       const float * scale, const float * x, float * y,
                                       int64_t n, void * stream) {
    using namespace qsim_cuda;
    if (n != l->outer * l->channels * l->inner) {
        return static_cast<int>(cudaErrorInvalidValue);
    }
    if (n == 0) {
        return 0;
    }
    const cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (is_per_tensor(*l)) {
        minifloat_kernel<<<grid_for(n), kThreads, 0, st>>>(n, PerTensorIndex<int64_t>{}, *m, scale, x, y);
    } else {
        minifloat_kernel<<<grid_for(n), kThreads, 0, st>>>(n, QparamIndex<int64_t>::make(*l), *m,
                                                           scale, x, y);
    }
    return static_cast<int>(cudaGetLastError());
}

extern "C" int qsim_cuda_block_float_f32(const qsim_block_format * b, int64_t rows,
                                         int64_t row_len, const float * x, float * y,
                                         void * stream) {
    using namespace qsim_cuda;
    if (rows < 0 || row_len < 0) {
        return static_cast<int>(cudaErrorInvalidValue);
    }
    const int64_t blocks = rows * ((row_len + static_cast<int64_t>(b->block) - 1) / static_cast<int64_t>(b->block));
    if (blocks == 0) {
        return 0;
    }
    block_kernel<<<grid_for(blocks), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(rows, row_len, *b, x, y);
    return static_cast<int>(cudaGetLastError());
}
