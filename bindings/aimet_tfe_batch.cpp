// tfe_batch: one batch of aimet-torch's tf_enhanced analyzer in one op, for
// TfEnhancedEncodingAnalyzer._update (wrappers/quantization/tf_enhanced.py), which made it six
// ops and three reads of a flag per quantizer and batch: the batch's finite min/max per row
// (qsim::minmax), folded into the analyzer's running min / max / non-finite count (the torch ops
// the analyzer folds with), the rows binned into their histograms (qsim::tfe_first on the first
// batch, else qsim::tfe_merge), and the batch counted when no row was refused. Results are those
// ops' bits; the rows the kernels refuse are left to the caller's torch ops, as before. Schema in
// library.cpp, fake in wrappers/_stats_ops.py.
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/minimum.h>
#include <ATen/ops/scalar_tensor.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "stats_args.h"

#include <optional>
#include <tuple>

namespace qsim {
namespace {

using OptInt = std::optional<int64_t>;
using Three  = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using Four   = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
template <typename Limits>  // tfe_first writes limits, tfe_merge reads them
using Update = at::Tensor(const at::Tensor &, const at::Tensor &, const at::Tensor &, at::Tensor &,
                          at::Tensor &, at::Tensor &, Limits);

template <typename Sig> c10::TypedOperatorHandle<Sig> handle(const char * name) {
    return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

// tfe_batch(x, axis, min!, max!, nonfinite!, counts!, edges!, ranges!, limits!, batches!)
// -> (done [R] bool, lows [R], highs [R], refused): R = 1 (axis None) or x.size(axis) rows; lows /
// highs the batch's finite min / max per row, refused (0-dim int64) the rows not done (the batch
// is counted only when there are none).
Four tfe_batch_cpu(const at::Tensor & x, OptInt axis, at::Tensor & min, at::Tensor & max,
                   at::Tensor & nonfinite, at::Tensor & counts, at::Tensor & edges,
                   at::Tensor & ranges, at::Tensor & limits, at::Tensor & batches) {
    const char * op = "tfe_batch";
    TORCH_CHECK_VALUE(batches.device().is_cpu() && batches.scalar_type() == at::kLong &&
                          batches.numel() == 1,
                      op, ": batches must be a one-element int64 CPU tensor, got ",
                      batches.scalar_type(), " of shape ", batches.sizes(), " on ", batches.device());
    static const auto minmax = handle<Three(const at::Tensor &, OptInt)>("qsim::minmax");
    static const auto first  = handle<Update<at::Tensor &>>("qsim::tfe_first");
    static const auto merge  = handle<Update<const at::Tensor &>>("qsim::tfe_merge");
    auto [lows, highs, bad]  = minmax.call(x, axis);
    TORCH_CHECK_VALUE(min.sizes() == lows.sizes() && max.sizes() == lows.sizes() &&
                          nonfinite.sizes() == lows.sizes(),
                      op, ": min, max and nonfinite must have the statistics' shape ", lows.sizes(),
                      ", got ", min.sizes(), ", ", max.sizes(), " and ", nonfinite.sizes());
    at::minimum_out(min, min, lows);
    at::maximum_out(max, max, highs);
    nonfinite.add_(bad);
    const int64_t rows_n = axis.has_value() ? x.size(*axis) : 1;
    // per tensor in memory order: the counts do not depend on the values' order
    const at::Tensor rows = (axis.has_value() ? x.movedim(*axis, 0) : in_memory_order(x))
                                .reshape({ rows_n, -1 })
                                .to(at::kFloat);
    const at::Tensor lo = lows.reshape({ -1 }), hi = highs.reshape({ -1 });
    const at::Tensor done = batches.item<int64_t>() == 0
                                ? first.call(rows, lo, hi, counts, edges, ranges, limits)
                                : merge.call(rows, lo, hi, counts, edges, ranges, limits);
    int64_t      refused = 0;
    const bool * ok      = done.data_ptr<bool>();
    for (int64_t i = 0; i < rows_n; i++) {
        refused += ok[i] ? 0 : 1;
    }
    if (refused == 0) {  // else the caller counts it once its torch ops took the other rows
        batches.add_(1);
    }
    return { done, lo, hi, at::scalar_tensor(refused, at::kLong) };
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("tfe_batch", &tfe_batch_cpu);
}

}  // namespace qsim
