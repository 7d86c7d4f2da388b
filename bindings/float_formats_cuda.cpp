// CUDA implementation of the float-format ops (float_formats.h): the launchers of
// qsim/minifloat_cuda.h on the current stream of the data's device. Checking the scales (and
// reading NVFP4's tensor scale) copies them to the host, so each call synchronises once.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda_launch.h"
#include "float_formats.h"
#include "qsim/minifloat_cuda.h"

namespace qsim {
namespace {

struct CudaRunner {
    static constexpr c10::DeviceType kDevice = c10::DeviceType::CUDA;

    static void minifloat(const MinifloatArgs & a, float * y) {
        const c10::cuda::CUDAGuard guard(a.q.x.device());
        check_launch(qsim_cuda_minifloat_f32(&a.m, &a.q.layout, a.q.scale.data_ptr<float>(),
                                             a.q.x.data_ptr<float>(), y, a.q.x.numel(),
                                             current_stream(a.q.x)));
    }

    static void block(const BlockArgs & a, float * y) {
        const c10::cuda::CUDAGuard guard(a.x.device());
        check_launch(qsim_cuda_block_float_f32(&a.b, a.rows, a.row_len, a.x.data_ptr<float>(), y,
                                               current_stream(a.x)));
    }
};

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CUDA, m) {
    register_float_format_ops<CudaRunner>(m);
}

}  // namespace qsim
