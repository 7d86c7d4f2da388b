// CPU implementation of the zero_point op (bindings/library.cpp): the arguments checked
// (grid_args.h), then the C rule qsim_zero_points_f32 (qsim/analyzers.h) over the held min and
// scale. The result has min's shape and dtype (computed in fp32), contiguous.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "grid_args.h"

namespace qsim {
namespace {

at::Tensor zero_point_cpu(const at::Tensor & min, const at::Tensor & scale, int64_t bitwidth,
                          int64_t grid) {
    const ZeroPointArgs a = check_zero_point_args(min, scale, bitwidth, grid, c10::DeviceType::CPU);
    TORCH_CHECK(qsim_zero_points_f32(a.grid.kind, static_cast<int>(bitwidth),
                                     a.min.data_ptr<float>(), a.scale.data_ptr<float>(),
                                     a.zp.data_ptr<float>(), a.min.numel()) == QSIM_SUCCESS,
                "zero_point: qsim_zero_points_f32 failed");
    return a.result(min);
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("zero_point", &zero_point_cpu);
}

}  // namespace qsim
