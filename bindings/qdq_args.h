// Argument checking shared by the CPU and CUDA implementations of the qdq ops: every user error
// becomes a c10::Error (Python: RuntimeError/ValueError/TypeError) whose message names the op and
// the argument. The result is everything a kernel call needs, on the data's device.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/util/Optional.h>

#include <vector>

#include "qsim/qdq.h"

namespace qsim {

// The data is processed in its memory order, so no layout is copied: a dense tensor (any order of
// dims: contiguous, channels-last, transposed) is used as it is, and the layout describes its
// elements as they lie in memory (`perm`: the dims from the outermost in memory). Outputs like the
// data are made with at::empty_like(x), which has the same strides, so the kernels write them in
// the same order. A non-dense tensor (a slice, an expanded tensor) is copied once, dense, with its
// dims in the same order (as at::empty_like does for it).
struct QdqArgs {
    at::Tensor           x;           // fp32 (or, when kept, fp16/bf16) data, dense; layout gives its memory order
    at::Tensor           scale;       // contiguous fp32 qparams, in layout order
    at::Tensor           zero_point;  // contiguous fp32 qparams, in layout order
    qsim_layout          layout;
    float                qmin, qmax;
    std::vector<int64_t> qparam_perm;  // blockwise qparams permuted to the memory order, else empty
    qsim_qparams qparams() const {
        return { scale.data_ptr<float>(), zero_point.data_ptr<float>(), qmin, qmax };
    }
    // A gradient computed for `scale` or `zero_point` (shaped like them) in the caller's shape.
    at::Tensor to_qparam_shape(const at::Tensor & g) const;
};

// Checks the data tensor (`x_name` in messages), scale, zero_point, grid and granularity.
// `check_zero_point_range` is false for dequantize, which has no grid. x, scale and zero_point
// must all be on one device of type `device`; the values of scale and zero_point are validated on
// the host (a CUDA caller pays one small device-to-host copy, which synchronises).
// `keep_half`: fp16/bf16 data stays in its dtype (the runner reads and writes it directly);
// otherwise it becomes fp32.
QdqArgs check_qdq_args(const char * op, const char * x_name, const at::Tensor & x,
                       const at::Tensor & scale, const at::Tensor & zero_point, int64_t qmin,
                       int64_t qmax, std::optional<int64_t> axis,
                       std::optional<int64_t> block_size, bool check_zero_point_range,
                       c10::DeviceType device = c10::DeviceType::CPU, bool keep_half = false);

// Checks that `grad` matches `x` (shape and device) and returns it in the dtype and with the
// strides of `data` (QdqArgs::x), so that its elements lie in the same memory order (copied only
// when they do not already).
at::Tensor check_grad(const char * op, const at::Tensor & grad, const at::Tensor & x,
                      const at::Tensor & data);

// Checks an `out=` tensor for data x (same shape, dtype and device as x, no internal overlap, no
// partial overlap with x or with the qparams) and returns where the kernel should write: `out`
// itself when it has the dtype and strides of `data`, else a new tensor like `data` that the
// caller copies into `out` afterwards. Errors name the tensor `out_name`.
at::Tensor out_target(const char * op, const at::Tensor & out, const at::Tensor & x,
                      const QdqArgs & a, const at::Tensor & scale, const at::Tensor & zero_point,
                      const char * out_name = "out");

// Checks the arguments of float_quantize_dequantize (data dtype, target dtype float16 or
// bfloat16) and returns x as dense fp32 (strides as at::empty_like(x)).
at::Tensor check_float_cast(const at::Tensor & x, at::ScalarType dtype);

// The 16-bit format of fp16/bf16 data (the caller checked that it is one of them).
inline qsim_half_kind half_kind(const at::Tensor & t) {
    return t.scalar_type() == at::kHalf ? QSIM_HALF_F16 : QSIM_HALF_BF16;
}

// A fp16/bf16 tensor's elements as their bit patterns.
template <class T> T * half_bits(const at::Tensor & t) {
    return static_cast<T *>(t.data_ptr());
}

}  // namespace qsim
