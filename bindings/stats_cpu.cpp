// CPU implementations of the calibration ops (statistics and encodings; schemas in library.cpp):
// check arguments (stats_args.h), take pointers, call the C kernels of qsim/stats.h and
// qsim/analyzers.h on torch's thread pool. Results never depend on the thread count: min/max combine in chunk order,
// histogram counts are integers, and per-channel work writes only its own channels.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <tuple>
#include <vector>

extern "C" {
#include "qsim/analyzers.h"
#include "qsim/qdq.h"
}

#include "grid_args.h"
#include "stats_args.h"

namespace qsim {
namespace {

// Elements per task: below this a tensor stays on one thread.
constexpr int64_t kGrain = 1 << 16;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Splits [0, n) into at most one chunk per thread, each at least kGrain long.
int64_t chunk_count(int64_t n) {
    return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n / kGrain));
}

void for_chunks(int64_t n, int64_t chunks, const std::function<void(int64_t, int64_t, int64_t)> & fn) {
    at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; t++) {
            fn(t, n * t / chunks, n * (t + 1) / chunks);
        }
    });
}

// Per-tensor statistics spread over threads: run(t, begin, end, &min, &max) -> nonfinite on each
// chunk t of [0, n) into its own slot, then the slots fold into `m` in chunk order.
template <typename Run>
void over_chunks(int64_t n, int64_t chunks, MinMax & m, const Run & run) {
    std::vector<float>   lo(chunks, kInf), hi(chunks, -kInf);
    std::vector<int64_t> bad(chunks, 0);
    for_chunks(n, chunks, [&](int64_t t, int64_t b, int64_t e) {
        bad[t] = run(t, b, e, &lo[t], &hi[t]);
    });
    float * l = std::get<0>(m).data_ptr<float>(), * h = std::get<1>(m).data_ptr<float>();
    for (int64_t t = 0; t < chunks; t++) {
        *l = lo[t] < *l ? lo[t] : *l;
        *h = hi[t] > *h ? hi[t] : *h;
        *std::get<2>(m).data_ptr<int64_t>() += bad[t];
    }
}

// fp16/bf16 data is widened a stack buffer at a time (qsim_widen_h16), never as a whole fp32
// copy; the kernels fold (min/max, counts), so the pieces add up to the whole tensor exactly.

bool is_half(const at::Tensor & x) {
    return x.scalar_type() != at::kFloat;
}

qsim_half_kind half_kind(const at::Tensor & x) {
    return x.scalar_type() == at::kHalf ? QSIM_HALF_F16 : QSIM_HALF_BF16;
}

const uint16_t * half_bits(const at::Tensor & x) {
    return static_cast<const uint16_t *>(x.data_ptr());
}

// fold(n, buf) on fp32 pieces of flat elements [b, e) of half data xp; returns the sum of the
// folds' results (non-finite counts).
template <typename Fold>
int64_t fold_half_flat(qsim_half_kind kind, const uint16_t * xp, int64_t b, int64_t e,
                       const Fold & fold) {
    float   buf[QSIM_HALF_CHUNK];
    int64_t bad = 0;
    for (int64_t at = b; at < e; at += QSIM_HALF_CHUNK) {
        const int64_t n = std::min<int64_t>(QSIM_HALF_CHUNK, e - at);
        qsim_widen_h16(kind, static_cast<size_t>(n), xp + at, buf);
        bad += fold(static_cast<size_t>(n), static_cast<const float *>(buf));
    }
    return bad;
}

// fold(view, buf, c) on fp32 pieces of channels [b, e) of half data x (viewed as v): whole
// channels at one outer index, view {1, channels of the piece, inner}, starting at channel c;
// a channel longer than the buffer comes in parts, view {1, 1, part}.
template <typename Fold>
void fold_half_channels(const at::Tensor & x, const qsim_channel_view & v, int64_t b, int64_t e,
                        const Fold & fold) {
    const qsim_half_kind   kind = half_kind(x);
    const uint16_t * const xp   = half_bits(x);
    const int64_t          per  = std::max<int64_t>(1, QSIM_HALF_CHUNK / std::max<int64_t>(1, v.inner));
    for (int64_t o = 0; o < v.outer; o++) {
        for (int64_t c = b; c < e;) {
            const int64_t at = (o * v.channels + c) * v.inner;
            const int64_t nc = v.inner > QSIM_HALF_CHUNK ? 1 : std::min(per, e - c);
            fold_half_flat(kind, xp, at, at + nc * v.inner, [&](size_t n, const float * buf) {
                const qsim_channel_view piece = { 1, nc, static_cast<int64_t>(n) / nc };
                fold(piece, buf, c);
                return int64_t{ 0 };
            });
            c += nc;
        }
    }
}

int64_t channel_grain(const qsim_channel_view & v) {
    return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, v.outer * v.inner));
}

// Folds the statistics of x (viewed as v; per channel when `channels`) into m, whose tensors are
// contiguous of the statistics shape: min/max fold, non-finite counts add.
void fold_minmax(const at::Tensor & x, const qsim_channel_view & v, bool channels, MinMax & m) {
    if (channels) {
        float * lo = std::get<0>(m).data_ptr<float>(), * hi = std::get<1>(m).data_ptr<float>();
        int64_t * bad = std::get<2>(m).data_ptr<int64_t>();
        at::parallel_for(0, v.channels, channel_grain(v), [&](int64_t b, int64_t e) {
            if (!is_half(x)) {
                qsim_minmax_channels_f32(nullptr, &v, x.data_ptr<float>(), lo, hi, bad, b, e);
                return;
            }
            fold_half_channels(x, v, b, e, [&](const qsim_channel_view & p, const float * buf, int64_t c) {
                qsim_minmax_channels_f32(nullptr, &p, buf, lo + c, hi + c, bad + c, 0, p.channels);
            });
        });
        return;
    }
    const qsim_minmax_fn mm = qsim_stats_best()->minmax;
    over_chunks(x.numel(), chunk_count(x.numel()), m,
                [&](int64_t, int64_t b, int64_t e, float * lo, float * hi) {
                    if (!is_half(x)) {
                        return mm(static_cast<size_t>(e - b), x.data_ptr<float>() + b, lo, hi);
                    }
                    return fold_half_flat(half_kind(x), half_bits(x), b, e,
                                          [&](size_t n, const float * buf) { return mm(n, buf, lo, hi); });
                });
}

void minmax_fold_cpu(const at::Tensor & x_in, const at::Tensor & min, const at::Tensor & max,
                     const at::Tensor & nonfinite, std::optional<int64_t> axis) {
    const char *            op = "minmax_fold";
    const at::Tensor        x  = check_stats_data(op, x_in, axis, c10::DeviceType::CPU, true);
    const qsim_channel_view v  = channel_view(op, x, axis);
    const auto              sh = stat_shape(v, axis);
    MinMax                  m{ min, max, nonfinite };
    check_stats_into(op, m, sh, c10::DeviceType::CPU);
    fold_minmax(x, v, axis.has_value(), m);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> histogram_cpu(
    const at::Tensor & x_in, const at::Tensor & range_in, int64_t bins, std::optional<int64_t> axis) {
    check_bins("histogram", bins);
    const at::Tensor        x     = check_stats_data("histogram", x_in, axis, c10::DeviceType::CPU, true);
    const qsim_channel_view v     = channel_view("histogram", x, axis);
    auto                    sh    = stat_shape(v, axis);
    const at::Tensor        range = check_range("histogram", range_in, sh);
    const auto              f32   = x.options().dtype(at::kFloat);
    MinMax                  m     = empty_minmax(sh, f32);
    sh.push_back(bins);
    at::Tensor   counts = at::zeros(sh, x.options().dtype(at::kLong));
    const auto * rp     = reinterpret_cast<const qsim_hist_range *>(range.data_ptr<double>());
    int64_t *    cp     = counts.data_ptr<int64_t>();
    float *      lo = std::get<0>(m).data_ptr<float>(), * hi = std::get<1>(m).data_ptr<float>();
    int64_t *    bad = std::get<2>(m).data_ptr<int64_t>();
    if (axis.has_value() || !(rp->hi > rp->lo)) {
        // Per-channel (or a tensor without a range yet: min/max only), channels over threads.
        at::parallel_for(0, v.channels, channel_grain(v), [&](int64_t b, int64_t e) {
            if (!is_half(x)) {
                qsim_histogram_channels_f32(nullptr, &v, x.data_ptr<float>(), rp, bins, cp, lo, hi,
                                            bad, b, e);
                return;
            }
            fold_half_channels(x, v, b, e, [&](const qsim_channel_view & p, const float * buf, int64_t c) {
                qsim_histogram_channels_f32(nullptr, &p, buf, rp + c, bins, cp + c * bins, lo + c,
                                            hi + c, bad + c, 0, p.channels);
            });
        });
        return { counts, std::get<0>(m), std::get<1>(m), std::get<2>(m) };
    }
    // One histogram over threads: private counts per chunk, summed (integers: order-free).
    const int64_t           n = x.numel(), chunks = chunk_count(n);
    std::vector<int64_t>    local((chunks - 1) * bins, 0);
    const qsim_bins         qb   = qsim_bins_of(*rp, bins);
    const qsim_histogram_fn hist = qsim_stats_best()->histogram;
    over_chunks(n, chunks, m, [&](int64_t t, int64_t b, int64_t e, float * l, float * h) {
        int64_t * const into = t == 0 ? cp : local.data() + (t - 1) * bins;
        if (!is_half(x)) {
            return hist(static_cast<size_t>(e - b), x.data_ptr<float>() + b, qb, into, l, h);
        }
        return fold_half_flat(half_kind(x), half_bits(x), b, e,
                              [&](size_t k, const float * buf) { return hist(k, buf, qb, into, l, h); });
    });
    for (int64_t t = 1; t < chunks; t++) {
        for (int64_t i = 0; i < bins; i++) {
            cp[i] += local[(t - 1) * bins + i];
        }
    }
    return { counts, std::get<0>(m), std::get<1>(m), std::get<2>(m) };
}

// min and max as contiguous fp32 of the same shape.
std::pair<at::Tensor, at::Tensor> check_minmax(const char * op, const at::Tensor & min,
                                               const at::Tensor & max) {
    TORCH_CHECK_TYPE(min.scalar_type() == at::kFloat && max.scalar_type() == at::kFloat, op,
                     ": min and max must be float32, got ", min.scalar_type(), " and ",
                     max.scalar_type());
    TORCH_CHECK_VALUE(min.sizes() == max.sizes(), op, ": min shape ", min.sizes(),
                      " must equal max shape ", max.sizes());
    return { min.contiguous(), max.contiguous() };
}

// counts as contiguous int64 [..., bins] over channels of shape `sh`.
at::Tensor check_counts(const char * op, const at::Tensor & counts, at::IntArrayRef sh) {
    TORCH_CHECK_TYPE(counts.scalar_type() == at::kLong, op, ": counts must be int64, got ",
                     counts.scalar_type());
    TORCH_CHECK_VALUE(counts.dim() == static_cast<int64_t>(sh.size()) + 1 &&
                          counts.sizes().slice(0, sh.size()) == sh,
                      op, ": counts must have shape ", sh, " + [bins], got ", counts.sizes());
    check_bins(op, counts.size(-1));
    return counts.contiguous();
}

std::tuple<at::Tensor, at::Tensor> histogram_grow_cpu(const at::Tensor & counts_in,
                                                      const at::Tensor & range_in,
                                                      const at::Tensor & min_in,
                                                      const at::Tensor & max_in) {
    const char * op = "histogram_grow";
    const auto [min, max]  = check_minmax(op, min_in, max_in);
    const at::Tensor counts = check_counts(op, counts_in, min.sizes());
    const at::Tensor range  = check_range(op, range_in, min.sizes());
    const int64_t    bins   = counts.size(-1), channels = min.numel();
    at::Tensor out_counts = at::empty_like(counts), out_range = at::empty_like(range);
    const auto * rp  = reinterpret_cast<const qsim_hist_range *>(range.data_ptr<double>());
    auto *       orp = reinterpret_cast<qsim_hist_range *>(out_range.data_ptr<double>());
    const float * lo = min.data_ptr<float>(), * hi = max.data_ptr<float>();
    at::parallel_for(0, channels, std::max<int64_t>(1, kGrain / bins), [&](int64_t b, int64_t e) {
        for (int64_t c = b; c < e; c++) {
            const qsim_status st = qsim_histogram_grow(bins, rp[c], lo[c], hi[c], &orp[c]);
            TORCH_INTERNAL_ASSERT(st == QSIM_SUCCESS);
            qsim_histogram_move(bins, rp[c], counts.data_ptr<int64_t>() + c * bins, orp[c],
                                out_counts.data_ptr<int64_t>() + c * bins);
        }
    });
    return { out_counts, out_range };
}

using Encodings = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// Runs analyzer `a` over every channel of the statistics; counts/range undefined for MIN_MAX.
Encodings analyze(const char * op, const qsim_analyzer & a, const at::Tensor & min_in,
                  const at::Tensor & max_in, const at::Tensor & counts_in,
                  const at::Tensor & range_in) {
    const auto [min, max] = check_minmax(op, min_in, max_in);
    TORCH_INTERNAL_ASSERT(qsim_analyzer_check(&a) == QSIM_SUCCESS);  // the ops check each option
    const bool hist = counts_in.defined();
    const at::Tensor counts = hist ? check_counts(op, counts_in, min.sizes()) : at::Tensor();
    const at::Tensor range  = hist ? check_range(op, range_in, min.sizes()) : at::Tensor();
    const int64_t bins = hist ? counts.size(-1) : 0, channels = min.numel();
    const int64_t * cp = hist ? counts.data_ptr<int64_t>() : nullptr;
    for (int64_t i = 0; hist && i < counts.numel(); i++) {
        TORCH_CHECK_VALUE(cp[i] >= 0, op, ": counts must be >= 0, but counts.flatten()[", i,
                          "] = ", cp[i]);
    }
    const qsim_channel_stats s{
        min.data_ptr<float>(), max.data_ptr<float>(),
        hist ? reinterpret_cast<const qsim_hist_range *>(range.data_ptr<double>()) : nullptr,
        cp, bins };
    std::vector<qsim_encoding> enc(channels);
    std::atomic<int64_t>       bad{ channels };
    // Each task stops at its first failing channel; the smallest of those is reported.
    const int64_t grain = std::max<int64_t>(1, (1 << 12) / std::max<int64_t>(1, bins));
    at::parallel_for(0, channels, grain, [&](int64_t b, int64_t e) {
        std::vector<double> work(qsim_analyzer_workspace(&a, bins) + 1);
        int64_t             c = -1;
        if (qsim_analyze_channels(&a, &s, work.data(), enc.data(), b, e, &c) == QSIM_SUCCESS) {
            return;
        }
        for (int64_t cur = bad.load(); c < cur && !bad.compare_exchange_weak(cur, c);) {
        }
    });
    const int64_t c = bad.load();
    if (c < channels) {
        const float lo = s.min[c], hi = s.max[c];
        TORCH_CHECK_VALUE(lo <= hi, op, ": channel ", c, " saw no finite value (min = ", lo,
                          ", max = ", hi, "); calibrate with data first");
        TORCH_CHECK_VALUE(false, op, ": the histogram of channel ", c, " is empty");
    }
    const auto f  = min.options();
    at::Tensor scale = at::empty(min.sizes(), f), zp = at::empty(min.sizes(), f.dtype(at::kInt));
    at::Tensor emin = at::empty(min.sizes(), f), emax = at::empty(min.sizes(), f);
    float * sp = scale.data_ptr<float>(), * lp = emin.data_ptr<float>(), * hp = emax.data_ptr<float>();
    int32_t * zpp = zp.data_ptr<int32_t>();
    for (int64_t i = 0; i < channels; i++) {
        sp[i] = enc[i].scale, zpp[i] = enc[i].zero_point, lp[i] = enc[i].min, hp[i] = enc[i].max;
    }
    return { scale, zp, emin, emax };
}

qsim_analyzer make_analyzer(const char * op, qsim_analyzer_kind kind, int64_t bitwidth,
                            int64_t grid) {
    TORCH_CHECK_VALUE(bitwidth >= 2 && bitwidth <= 16, op, ": bitwidth must be from 2 to 16, got ",
                      bitwidth);
    return qsim_analyzer_defaults(kind, check_grid_kind(op, grid), static_cast<int>(bitwidth));
}

Encodings encodings_min_max_cpu(const at::Tensor & min, const at::Tensor & max, int64_t bitwidth,
                                int64_t grid) {
    const char * op = "encodings_min_max";
    return analyze(op, make_analyzer(op, QSIM_ANALYZER_MIN_MAX, bitwidth, grid), min, max,
                   at::Tensor(), at::Tensor());
}

Encodings encodings_tf_enhanced_cpu(const at::Tensor & counts, const at::Tensor & range,
                                    const at::Tensor & min, const at::Tensor & max,
                                    int64_t bitwidth, int64_t grid, double gamma,
                                    int64_t asym_delta_candidates, int64_t sym_delta_candidates,
                                    int64_t offset_candidates) {
    const char *  op = "encodings_tf_enhanced";
    qsim_analyzer a  = make_analyzer(op, QSIM_ANALYZER_TF_ENHANCED, bitwidth, grid);
    TORCH_CHECK_VALUE(std::isfinite(gamma) && gamma >= 0.0, op,
                      ": gamma must be finite and >= 0, got ", gamma);
    TORCH_CHECK_VALUE(asym_delta_candidates >= 2 && asym_delta_candidates <= 4096 &&
                          sym_delta_candidates >= 2 && sym_delta_candidates <= 4096,
                      op, ": delta candidates must be from 2 to 4096, got ",
                      asym_delta_candidates, " and ", sym_delta_candidates);
    TORCH_CHECK_VALUE(offset_candidates >= 3 && offset_candidates <= 4096, op,
                      ": offset_candidates must be from 3 to 4096, got ", offset_candidates);
    a.gamma            = gamma;
    a.asym_delta_count = static_cast<int>(asym_delta_candidates);
    a.sym_delta_count  = static_cast<int>(sym_delta_candidates);
    a.offset_count     = static_cast<int>(offset_candidates);
    return analyze(op, a, min, max, counts, range);
}

Encodings encodings_percentile_cpu(const at::Tensor & counts, const at::Tensor & range,
                                   const at::Tensor & min, const at::Tensor & max,
                                   int64_t bitwidth, int64_t grid, double percentile) {
    const char *  op = "encodings_percentile";
    qsim_analyzer a  = make_analyzer(op, QSIM_ANALYZER_PERCENTILE, bitwidth, grid);
    TORCH_CHECK_VALUE(percentile >= 50.0 && percentile <= 100.0, op,
                      ": percentile must be in [50, 100], got ", percentile);
    a.percentile = percentile;
    return analyze(op, a, min, max, counts, range);
}

Encodings encodings_mse_cpu(const at::Tensor & counts, const at::Tensor & range,
                            const at::Tensor & min, const at::Tensor & max, int64_t bitwidth,
                            int64_t grid, int64_t num_candidates) {
    const char *  op = "encodings_mse";
    qsim_analyzer a  = make_analyzer(op, QSIM_ANALYZER_MSE, bitwidth, grid);
    TORCH_CHECK_VALUE(num_candidates >= 1 && num_candidates <= 65536, op,
                      ": num_candidates must be from 1 to 65536, got ", num_candidates);
    a.mse_delta_count = static_cast<int>(num_candidates);
    return analyze(op, a, min, max, counts, range);
}

}  // namespace

MinMax minmax_cpu(const char * op, const at::Tensor & x_in, std::optional<int64_t> axis) {
    const at::Tensor        x = check_stats_data(op, x_in, axis, c10::DeviceType::CPU, true);
    const qsim_channel_view v = channel_view(op, x, axis);
    MinMax                  m = empty_minmax(stat_shape(v, axis), x.options().dtype(at::kFloat));
    fold_minmax(x, v, axis.has_value(), m);
    return m;
}

namespace {

MinMax minmax_op(const at::Tensor & x, std::optional<int64_t> axis) {
    return minmax_cpu("minmax", x, axis);
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("minmax", &minmax_op);
    m.impl("minmax_fold", &minmax_fold_cpu);
    m.impl("histogram", &histogram_cpu);
    m.impl("histogram_grow", &histogram_grow_cpu);
    m.impl("encodings_min_max", &encodings_min_max_cpu);
    m.impl("encodings_tf_enhanced", &encodings_tf_enhanced_cpu);
    m.impl("encodings_percentile", &encodings_percentile_cpu);
    m.impl("encodings_mse", &encodings_mse_cpu);
}

}  // namespace qsim
