// tfe_batch: one batch of aimet-torch's tf_enhanced analyzer in one op, for
// TfEnhancedEncodingAnalyzer._update (wrappers/quantization/tf_enhanced.py), which made it six
// ops and three reads of a flag per quantizer and batch: the batch's finite min/max per row
// (qsim::minmax), folded into the analyzer's running min / max / non-finite count (the torch ops
// the analyzer folds with), the rows binned into their histograms (qsim::tfe_first on the first
// batch, else qsim::tfe_merge), and the batch counted when no row was refused. Results are those
// ops' bits; the rows the kernels refuse are left to the caller's torch ops, as before. The ops
// it is made of are called as functions, not through the dispatcher (a few microseconds each,
// per quantizer and batch of a calibration). Schema in library.cpp, fake in
// wrappers/_stats_ops.py.
#include <ATen/core/Tensor.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/minimum.h>
#include <ATen/ops/scalar_tensor.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <tuple>

#include "aimet_tfe_update.h"
#include "stats_args.h"

namespace qsim {
namespace {

using OptInt = std::optional<int64_t>;
using Four   = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// Whether t is a one-element contiguous CPU tensor of `dtype`, which fold() writes directly.
bool scalar_stat(const at::Tensor & t, at::ScalarType dtype) {
    return t.device().is_cpu() && t.scalar_type() == dtype && t.numel() == 1 && t.is_contiguous();
}

// The batch's (lows, highs, bad) folded into the running min / max / nonfinite as
// torch.minimum(min, lows, out=min), torch.maximum(...) and nonfinite.add_(bad): one-element
// statistics (a per-tensor encoding) directly, others by those ops. torch's CPU kernel computes
// one element as std::min / std::max unless either is NaN (then NaN), and lows / highs are
// never NaN (the finite min / max, or +-inf where no value was finite): std::min / std::max.
void fold(at::Tensor & min, at::Tensor & max, at::Tensor & nonfinite, const at::Tensor & lows,
          const at::Tensor & highs, const at::Tensor & bad) {
    if (scalar_stat(min, at::kFloat) && scalar_stat(max, at::kFloat) &&
        scalar_stat(nonfinite, at::kLong)) {
        float * lo = min.data_ptr<float>(), * hi = max.data_ptr<float>();
        *lo = std::min(*lo, *lows.data_ptr<float>());
        *hi = std::max(*hi, *highs.data_ptr<float>());
        *nonfinite.data_ptr<int64_t>() += *bad.data_ptr<int64_t>();
        return;
    }
    at::minimum_out(min, min, lows);
    at::maximum_out(max, max, highs);
    nonfinite.add_(bad);
}

// tfe_batch(x, axis, min!, max!, nonfinite!, counts!, edges!, ranges!, limits!, batches!)
// -> (done [R] bool, lows [R], highs [R], refused): R = 1 (axis None) or x.size(axis) rows; lows /
// highs the batch's finite min / max per row, refused (0-dim int64) the rows not done (the batch
// is counted only when there are none).
Four tfe_batch_cpu(const at::Tensor & x, OptInt axis, at::Tensor & min, at::Tensor & max,
                   at::Tensor & nonfinite, at::Tensor & counts, at::Tensor & edges,
                   at::Tensor & ranges, at::Tensor & limits, at::Tensor & batches) {
    const char * op = "tfe_batch";
    TORCH_CHECK_VALUE(scalar_stat(batches, at::kLong), op,
                      ": batches must be a one-element int64 CPU tensor, got ",
                      batches.scalar_type(), " of shape ", batches.sizes(), " on ", batches.device());
    auto [lows, highs, bad] = minmax_cpu(op, x, axis);
    TORCH_CHECK_VALUE(min.sizes() == lows.sizes() && max.sizes() == lows.sizes() &&
                          nonfinite.sizes() == lows.sizes(),
                      op, ": min, max and nonfinite must have the statistics' shape ", lows.sizes(),
                      ", got ", min.sizes(), ", ", max.sizes(), " and ", nonfinite.sizes());
    fold(min, max, nonfinite, lows, highs, bad);
    const int64_t rows_n = axis.has_value() ? x.size(*axis) : 1;
    // per tensor in memory order: the counts do not depend on the values' order
    at::Tensor rows = (axis.has_value() ? x.movedim(*axis, 0) : in_memory_order(x))
                          .reshape({ rows_n, -1 });
    if (rows.scalar_type() != at::kFloat) {
        rows = rows.to(at::kFloat);
    }
    const at::Tensor lo = lows.reshape({ -1 }), hi = highs.reshape({ -1 });
    int64_t &        seen = *batches.data_ptr<int64_t>();
    const at::Tensor done = seen == 0
                                ? tfe_update("tfe_first", true, rows, lo, hi, counts, edges, ranges, limits)
                                : tfe_update("tfe_merge", false, rows, lo, hi, counts, edges, ranges, limits);
    int64_t      refused = 0;
    const bool * ok      = done.data_ptr<bool>();
    for (int64_t i = 0; i < rows_n; i++) {
        refused += ok[i] ? 0 : 1;
    }
    if (refused == 0) {  // else the caller counts it once its torch ops took the other rows
        seen += 1;
    }
    return { done, lo, hi, at::scalar_tensor(refused, at::kLong) };
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("tfe_batch", &tfe_batch_cpu);
}

}  // namespace qsim
