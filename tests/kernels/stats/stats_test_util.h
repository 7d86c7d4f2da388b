// Helpers shared by the stats tests (tests/kernels/stats/test_*.cpp): the compiled variants, a
// direct histogram, and running statistics kept as a caller keeps them.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "qsim_test_util.h"

extern "C" {
#include "qsim/stats.h"
}

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

inline std::vector<const qsim_stats_kernels *> variants() {
    return qsim_test::runnable(qsim_stats_variants);
}

inline int64_t total(const std::vector<int64_t> & c) {
    return std::accumulate(c.begin(), c.end(), int64_t{ 0 });
}

// The histogram of `x` binned directly at the edges of `r` with the documented rule.
inline std::vector<int64_t> direct_histogram(const std::vector<float> & x, qsim_hist_range r, int64_t bins) {
    std::vector<int64_t> c(bins, 0);
    float lo = kInf, hi = -kInf;
    qsim_histogram_f32_ref(x.size(), x.data(), qsim_bins_of(r, bins), c.data(), &lo, &hi);
    return c;
}

// Running statistics as a caller keeps them: min/max plus a growing histogram. A batch is binned
// in one pass when the range covers it; otherwise the range grows and the batch is binned again.
struct Running {
    int64_t              bins;
    float                min = kInf, max = -kInf;
    qsim_hist_range      range{ 0.0, 0.0 };
    std::vector<int64_t> counts;
    int                  second_passes = 0;
    explicit Running(int64_t b) : bins(b), counts(b, 0) {}
    void update(const std::vector<float> & x) {
        std::vector<int64_t> batch(bins, 0);
        float lo = min, hi = max;
        if (range.hi > range.lo) {
            qsim_histogram_f32_ref(x.size(), x.data(), qsim_bins_of(range, bins), batch.data(), &lo, &hi);
            if (lo >= range.lo && hi <= range.hi) {
                add(batch, lo, hi);
                return;
            }
            second_passes++;
        } else {
            qsim_minmax_f32_ref(x.size(), x.data(), &lo, &hi);
        }
        qsim_hist_range grown;
        ASSERT_EQ(qsim_histogram_grow(bins, range, lo, hi, &grown), QSIM_SUCCESS);
        std::vector<int64_t> moved(bins);
        qsim_histogram_move(bins, range, counts.data(), grown, moved.data());
        counts = moved;
        range  = grown;
        std::fill(batch.begin(), batch.end(), 0);
        qsim_histogram_f32_ref(x.size(), x.data(), qsim_bins_of(range, bins), batch.data(), &lo, &hi);
        add(batch, lo, hi);
    }
    void add(const std::vector<int64_t> & batch, float lo, float hi) {
        for (int64_t i = 0; i < bins; i++) {
            counts[i] += batch[i];
        }
        min = lo, max = hi;
    }
};

}  // namespace
