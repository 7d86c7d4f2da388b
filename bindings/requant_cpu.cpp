// CPU implementation of requantize_dq (schema in library.cpp, fake in wrappers/_runtime_ops.py):
// MLAS's requantization of an fp32 accumulator to the output's dequantized values in one pass
// (kernels/include/qsim/requant.h), for the onnxruntime target mode (docs/runtime_target.md §2).
// Split over torch's thread pool by outer rows; elementwise, so the thread count changes nothing.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>

extern "C" {
#include "qsim/requant.h"
}

namespace qsim {
namespace {

// acc: float32 of any shape; multiplier: float32, 1 value or acc.size(channel_dim) values.
at::Tensor requantize_dq_cpu(const at::Tensor & acc, const at::Tensor & multiplier,
                             int64_t channel_dim, double lo, double hi, double y_scale) {
    TORCH_CHECK(acc.scalar_type() == at::kFloat && multiplier.scalar_type() == at::kFloat,
                "requantize_dq: acc and multiplier must be float32, got ", acc.scalar_type(),
                " and ", multiplier.scalar_type());
    TORCH_CHECK(acc.dim() > 0, "requantize_dq: acc must have a dimension");
    const int64_t dim = c10::maybe_wrap_dim(channel_dim, acc.dim());
    const int64_t channels = multiplier.numel() == 1 ? 1 : acc.size(dim);
    TORCH_CHECK(multiplier.numel() == channels, "requantize_dq: multiplier has ",
                multiplier.numel(), " values; it must have 1 or acc.size(", channel_dim, ") = ",
                acc.size(dim));
    int64_t inner = 1, outer = 1;
    for (int64_t d = dim + 1; d < acc.dim(); d++) inner *= acc.size(d);
    for (int64_t d = 0; d < dim; d++) outer *= acc.size(d);
    if (channels == 1) {  // one multiplier: the whole tensor is one channel
        inner *= acc.size(dim);
    }
    const at::Tensor ac = acc.contiguous(), mc = multiplier.contiguous();
    at::Tensor out = at::empty_like(ac);
    const qsim_requant_params p = {mc.data_ptr<float>(), static_cast<size_t>(outer),
                                   static_cast<size_t>(channels), static_cast<size_t>(inner),
                                   static_cast<float>(lo), static_cast<float>(hi),
                                   static_cast<float>(y_scale)};
    const float * ap = ac.data_ptr<float>();
    float * op = out.data_ptr<float>();
    const int64_t row = std::max<int64_t>(1, channels * inner);
    at::parallel_for(0, outer, std::max<int64_t>(1, (1 << 15) / row), [&](int64_t b, int64_t e) {
        qsim_requantize(ap, op, static_cast<size_t>(b), static_cast<size_t>(e), &p);
    });
    return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("requantize_dq", &requantize_dq_cpu);
}

}  // namespace qsim
