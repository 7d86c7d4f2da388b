// CUDA implementation of the zero_point op (built only when the installed torch has CUDA, see
// setup.py): the CPU binding's argument checks (grid_args.h), then the kernel of qsim/grid_cuda.h
// on the current stream of min's device. Results equal the CPU's bit for bit; nothing is copied
// to the host.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda_launch.h"
#include "grid_args.h"
#include "qsim/grid_cuda.h"

namespace qsim {
namespace {

at::Tensor zero_point_cuda(const at::Tensor & min, const at::Tensor & scale, int64_t bitwidth,
                           int64_t grid) {
    const ZeroPointArgs a = check_zero_point_args(min, scale, bitwidth, grid,
                                                  c10::DeviceType::CUDA);
    const c10::cuda::CUDAGuard guard(a.min.device());
    check_launch(qsim_cuda_zero_points_f32(a.grid.kind, a.grid.qmin, a.grid.qmax,
                                           a.min.data_ptr<float>(), a.scale.data_ptr<float>(),
                                           a.zp.data_ptr<float>(), a.min.numel(),
                                           current_stream(a.min)));
    return a.result(min);
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CUDA, m) {
    m.impl("zero_point", &zero_point_cuda);
}

}  // namespace qsim
