// Helpers of the CUDA op registrations (bindings/*_cuda.cpp): the stream to enqueue on, and the
// check of a launcher's return code (0 or a cudaError_t value).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

namespace qsim {

inline void check_launch(int rc) {
    C10_CUDA_CHECK(static_cast<cudaError_t>(rc));
}

// The current stream of t's device, as the launchers take it.
inline void * current_stream(const at::Tensor & t) {
    return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

}  // namespace qsim
