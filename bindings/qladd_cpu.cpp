// CPU implementation of qlinear_add_dq (schema in library.cpp, fake in wrappers/_runtime_ops.py):
// onnxruntime's QLinearAdd of two same-shape dequantized tensors as MLAS's AVX2 + FMA kernel
// computes it, to the output's dequantized values (kernels/include/qsim/qladd.h), for the
// onnxruntime target mode (docs/runtime_target.md §2). Elementwise: split over torch's thread pool.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

extern "C" {
#include "qsim/qladd.h"
}

namespace qsim {
namespace {

// params: a_scale, a_zero, b_scale, b_zero, ra, rb, fixed, lo, hi, c_zero, c_scale (fp32 values).
at::Tensor qlinear_add_dq_cpu(const at::Tensor & a, const at::Tensor & b,
                              at::ArrayRef<double> params) {
    TORCH_CHECK(a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat,
                "qlinear_add_dq: a and b must be float32, got ", a.scalar_type(), " and ",
                b.scalar_type());
    TORCH_CHECK(a.sizes() == b.sizes(), "qlinear_add_dq: a and b must have the same shape, got ",
                a.sizes(), " and ", b.sizes());
    TORCH_CHECK(params.size() == 11, "qlinear_add_dq: params must hold 11 values, got ",
                params.size());
    const qsim_qladd_params p = {
        static_cast<float>(params[0]), static_cast<float>(params[1]), static_cast<float>(params[2]),
        static_cast<float>(params[3]), static_cast<float>(params[4]), static_cast<float>(params[5]),
        static_cast<float>(params[6]), static_cast<float>(params[7]), static_cast<float>(params[8]),
        static_cast<float>(params[9]), static_cast<float>(params[10])};
    const at::Tensor ac = a.contiguous(), bc = b.contiguous();
    at::Tensor out = at::empty_like(ac);
    const float * ap = ac.data_ptr<float>();
    const float * bp = bc.data_ptr<float>();
    float * op = out.data_ptr<float>();
    at::parallel_for(0, ac.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
        qsim_qlinear_add(ap, bp, op, static_cast<size_t>(begin), static_cast<size_t>(end), &p);
    });
    return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("qlinear_add_dq", &qlinear_add_dq_cpu);
}

}  // namespace qsim
