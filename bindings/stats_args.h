// Argument checking shared by the CPU and CUDA implementations of the statistics ops (minmax,
// histogram): every user error becomes a c10::Error whose message names the op and the argument.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>

#include <optional>
#include <tuple>
#include <vector>

extern "C" {
#include "qsim/stats.h"
}

namespace qsim {

// x (float32, float16 or bfloat16, on a device of type `device`) as fp32, or in its own dtype
// when `keep_half` (the caller widens it piece by piece): contiguous per channel (`axis` given),
// per tensor in memory order (in_memory_order).
at::Tensor check_stats_data(const char * op, const at::Tensor & x, std::optional<int64_t> axis,
                            c10::DeviceType device = c10::DeviceType::CPU, bool keep_half = false);

// x's elements as a 1-D tensor in memory order: a view when x is dense (any strides: a
// transposed activation), else a contiguous copy. For statistics that do not depend on the order
// of the values (min/max, counts, the per-tensor ones here), so no transposed tensor is copied.
at::Tensor in_memory_order(const at::Tensor & x);

// x viewed around `axis` (per-channel), or as one channel (axis = None).
qsim_channel_view channel_view(const char * op, const at::Tensor & x, std::optional<int64_t> axis);

// Shape of per-channel statistics: [] per-tensor, [C] per-channel.
std::vector<int64_t> stat_shape(const qsim_channel_view & v, std::optional<int64_t> axis);

// bins in 1..QSIM_MAX_BINS.
void check_bins(const char * op, int64_t bins);

// `range` (on the CPU) as contiguous [C, 2] finite doubles for channel shape `sh` (an infinite
// or NaN edge would bin everything into one end bin, or grow into a NaN range).
at::Tensor check_range(const char * op, const at::Tensor & range, at::IntArrayRef sh);

using MinMax = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

// Fresh (min, max, nonfinite) statistics of shape `sh`: +inf, -inf, 0 (`f`: float options).
MinMax empty_minmax(at::IntArrayRef sh, const at::TensorOptions & f);

// qsim::minmax on the CPU (stats_cpu.cpp): x's finite (min, max) and non-finite count, per
// tensor (axis None) or per channel; for ops that compose it without the dispatcher, whose
// errors then name op `op`.
MinMax minmax_cpu(const char * op, const at::Tensor & x, std::optional<int64_t> axis);

// Running (min, max, nonfinite) statistics a fold writes into: float32, float32, int64,
// contiguous, of shape `sh`, on a device of type `device`.
void check_stats_into(const char * op, const MinMax & m, at::IntArrayRef sh, c10::DeviceType device);

}  // namespace qsim
