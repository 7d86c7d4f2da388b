// Argument checking shared by the CPU and CUDA implementations of the qdq ops: every user error
// becomes a c10::Error (Python: RuntimeError/ValueError/TypeError) whose message names the op and
// the argument. The result is everything a kernel call needs, on the data's device.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/util/Optional.h>

#include "qsim/qdq.h"

namespace qsim {

struct QdqArgs {
    at::Tensor  x;           // contiguous fp32 view of the data argument
    at::Tensor  scale;       // contiguous fp32 qparams, in layout order
    at::Tensor  zero_point;  // contiguous fp32 qparams, in layout order
    qsim_layout layout;
    float       qmin, qmax;
    qsim_qparams qparams() const {
        return { scale.data_ptr<float>(), zero_point.data_ptr<float>(), qmin, qmax };
    }
};

// Checks the data tensor (`x_name` in messages), scale, zero_point, grid and granularity.
// `check_zero_point_range` is false for dequantize, which has no grid. x, scale and zero_point
// must all be on one device of type `device`; the values of scale and zero_point are validated on
// the host (a CUDA caller pays one small device-to-host copy, which synchronises).
QdqArgs check_qdq_args(const char * op, const char * x_name, const at::Tensor & x,
                       const at::Tensor & scale, const at::Tensor & zero_point, int64_t qmin,
                       int64_t qmax, std::optional<int64_t> axis,
                       std::optional<int64_t> block_size, bool check_zero_point_range,
                       c10::DeviceType device = c10::DeviceType::CPU);

// Checks that `grad` matches `x` (shape and device) and returns it as contiguous fp32.
at::Tensor check_grad(const char * op, const at::Tensor & grad, const at::Tensor & x);

// Checks the arguments of float_quantize_dequantize (data dtype, target dtype float16 or
// bfloat16) and returns x as contiguous fp32.
at::Tensor check_float_cast(const at::Tensor & x, at::ScalarType dtype);

}  // namespace qsim
