// Argument checks of the statistics ops (stats_args.h).
#include "stats_args.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace qsim {

at::Tensor check_stats_data(const char * op, const at::Tensor & x, std::optional<int64_t> axis,
                            c10::DeviceType device, bool keep_half) {
    TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kHalf ||
                         x.scalar_type() == at::kBFloat16,
                     op, ": x must be float32, float16 or bfloat16, got ", x.scalar_type());
    TORCH_CHECK_VALUE(x.device().type() == device, op, ": x must be a ",
                      c10::DeviceTypeName(device), " tensor, got one on ", x.device());
    const at::Tensor d = keep_half ? x : x.to(at::kFloat);
    return axis.has_value() ? d.contiguous() : in_memory_order(d);
}

at::Tensor in_memory_order(const at::Tensor & x) {
    return x.is_non_overlapping_and_dense() ? x.as_strided({ x.numel() }, { 1 })
                                            : x.contiguous().reshape({ -1 });
}

qsim_channel_view channel_view(const char * op, const at::Tensor & x, std::optional<int64_t> axis) {
    if (!axis.has_value()) {
        return { 1, 1, x.numel() };
    }
    const int64_t dim = x.dim();
    TORCH_CHECK_INDEX(dim > 0 && *axis >= -dim && *axis < dim, op, ": axis ", *axis,
                      " is out of range for x with ", dim, " dimensions");
    const int64_t ax = *axis < 0 ? *axis + dim : *axis;
    return { c10::multiply_integers(x.sizes().begin(), x.sizes().begin() + ax), x.size(ax),
             c10::multiply_integers(x.sizes().begin() + ax + 1, x.sizes().end()) };
}

std::vector<int64_t> stat_shape(const qsim_channel_view & v, std::optional<int64_t> axis) {
    return axis.has_value() ? std::vector<int64_t>{ v.channels } : std::vector<int64_t>{};
}

void check_bins(const char * op, int64_t bins) {
    TORCH_CHECK_VALUE(bins >= 1 && bins <= QSIM_MAX_BINS, op, ": bins must be from 1 to ",
                      QSIM_MAX_BINS, ", got ", bins);
}

at::Tensor check_range(const char * op, const at::Tensor & range, at::IntArrayRef sh) {
    TORCH_CHECK_TYPE(range.scalar_type() == at::kDouble, op, ": range must be float64, got ",
                     range.scalar_type());
    std::vector<int64_t> expect(sh.begin(), sh.end());
    expect.push_back(2);
    TORCH_CHECK_VALUE(range.sizes() == at::IntArrayRef(expect), op, ": range must have shape ",
                      at::IntArrayRef(expect), " ([lo, hi] per channel), got ", range.sizes());
    at::Tensor     r = range.contiguous();
    const double * p = r.data_ptr<double>();
    for (int64_t i = 0; i < r.numel(); i++) {
        TORCH_CHECK_VALUE(std::isfinite(p[i]), op, ": range must hold finite numbers, but range[",
                          i / 2, "] = [", p[i - i % 2], ", ", p[i - i % 2 + 1], "]");
    }
    return r;
}

MinMax empty_minmax(at::IntArrayRef sh, const at::TensorOptions & f) {
    constexpr float inf = std::numeric_limits<float>::infinity();
    if (!f.device().is_cpu()) {
        return { at::full(sh, inf, f), at::full(sh, -inf, f), at::zeros(sh, f.dtype(at::kLong)) };
    }
    // On the CPU filled here: three fill dispatches cost more than a small statistic's pass.
    MinMax m{ at::empty(sh, f.dtype(at::kFloat)), at::empty(sh, f.dtype(at::kFloat)),
              at::empty(sh, f.dtype(at::kLong)) };
    const int64_t n = std::get<0>(m).numel();
    std::fill_n(std::get<0>(m).data_ptr<float>(), n, inf);
    std::fill_n(std::get<1>(m).data_ptr<float>(), n, -inf);
    std::fill_n(std::get<2>(m).data_ptr<int64_t>(), n, int64_t{ 0 });
    return m;
}

void check_stats_into(const char * op, const MinMax & m, at::IntArrayRef sh, c10::DeviceType device) {
    const char * const        names[] = { "min", "max", "nonfinite" };
    const at::Tensor * const  t[]     = { &std::get<0>(m), &std::get<1>(m), &std::get<2>(m) };
    const at::ScalarType      types[] = { at::kFloat, at::kFloat, at::kLong };
    for (int i = 0; i < 3; i++) {
        TORCH_CHECK_TYPE(t[i]->scalar_type() == types[i], op, ": ", names[i], " must be ",
                         types[i], ", got ", t[i]->scalar_type());
        TORCH_CHECK_VALUE(t[i]->sizes() == sh, op, ": ", names[i], " must have shape ", sh,
                          " (the statistics of x), got ", t[i]->sizes());
        TORCH_CHECK_VALUE(t[i]->is_contiguous(), op, ": ", names[i], " must be contiguous");
        TORCH_CHECK_VALUE(t[i]->device().type() == device, op, ": ", names[i], " must be a ",
                          c10::DeviceTypeName(device), " tensor, got one on ", t[i]->device());
    }
}

}  // namespace qsim
