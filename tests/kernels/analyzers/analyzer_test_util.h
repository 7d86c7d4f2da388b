// Helpers shared by the analyzer tests (tests/kernels/analyzers/test_*.cpp): statistics of one
// channel as a caller keeps them, the analysis of one channel, and the encoding invariants.
#pragma once

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

extern "C" {
#include "qsim/analyzers.h"
}

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Statistics of one channel, as a caller would keep them.
struct Stats {
    float                min, max;
    qsim_hist_range      range;
    std::vector<int64_t> counts;
    qsim_channel_stats view() const {
        return { &min, &max, &range, counts.data(), static_cast<int64_t>(counts.size()) };
    }
};

// Statistics of real data through the stats kernels (one batch).
inline Stats stats_of(const std::vector<float> & x, int64_t bins = 2048) {
    Stats s{ kInf, -kInf, { 0.0, 0.0 }, std::vector<int64_t>(bins, 0) };
    qsim_minmax_f32_ref(x.size(), x.data(), &s.min, &s.max);
    EXPECT_EQ(qsim_histogram_grow(bins, s.range, s.min, s.max, &s.range), QSIM_SUCCESS);
    if (s.range.hi > s.range.lo) {
        float lo = s.min, hi = s.max;
        qsim_histogram_f32_ref(x.size(), x.data(), qsim_bins_of(s.range, bins), s.counts.data(), &lo, &hi);
    }
    return s;
}

inline qsim_status analyze(const qsim_analyzer & a, const Stats & s, qsim_encoding * out,
                    int64_t * bad = nullptr) {
    std::vector<double> work(qsim_analyzer_workspace(&a, static_cast<int64_t>(s.counts.size())) + 1);
    const qsim_channel_stats v = s.view();
    return qsim_analyze_channels(&a, &v, work.data(), out, 0, 1, bad);
}

inline qsim_encoding encode(qsim_grid_kind grid, int bw, float lo, float hi) {
    qsim_encoding e{};
    EXPECT_EQ(qsim_encoding_from_range(grid, bw, lo, hi, &e), QSIM_SUCCESS);
    return e;
}

// The invariants every encoding keeps: finite scale >= eps, zero point on the grid, zero inside.
inline void expect_valid(const qsim_encoding & e, qsim_grid_kind grid, int bw, const char * what) {
    int32_t qmin, qmax;
    ASSERT_EQ(qsim_grid_bounds(grid, bw, &qmin, &qmax), QSIM_SUCCESS);
    EXPECT_TRUE(std::isfinite(e.scale) && e.scale >= FLT_EPSILON) << what << ": scale " << e.scale;
    EXPECT_TRUE(e.zero_point >= qmin && e.zero_point <= qmax) << what << ": zp " << e.zero_point;
    EXPECT_TRUE(std::isfinite(e.min) && std::isfinite(e.max)) << what << ": " << e.min << ", " << e.max;
    EXPECT_LE(e.min, 0.0f) << what;
    EXPECT_GE(e.max, 0.0f) << what;
}

constexpr qsim_grid_kind kGrids[] = { QSIM_GRID_SYMMETRIC, QSIM_GRID_STRICT_SYMMETRIC,
                                      QSIM_GRID_UNSIGNED_SYMMETRIC, QSIM_GRID_ASYMMETRIC };
constexpr qsim_analyzer_kind kKinds[] = { QSIM_ANALYZER_MIN_MAX, QSIM_ANALYZER_TF_ENHANCED,
                                          QSIM_ANALYZER_PERCENTILE, QSIM_ANALYZER_MSE };

}  // namespace
