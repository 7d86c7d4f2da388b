// GoogleTest for qsim/stats.h: running min/max, histograms (binning, growth, re-binning) and the
// channel drivers. Every run-kernel test walks all compiled variants (stats_variants.inc).
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

extern "C" {
#include "qsim/stats.h"
}

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<const qsim_stats_kernels *> variants() {
    size_t n = 0;
    const qsim_stats_kernels * v = qsim_stats_variants(&n);
    std::vector<const qsim_stats_kernels *> out;
    for (size_t i = 0; i < n; i++) {
        if (v[i].supported()) {
            out.push_back(&v[i]);
        }
    }
    return out;
}

int64_t total(const std::vector<int64_t> & c) {
    return std::accumulate(c.begin(), c.end(), int64_t{ 0 });
}

// The histogram of `x` binned directly at the edges of `r` with the documented rule.
std::vector<int64_t> direct_histogram(const std::vector<float> & x, qsim_hist_range r, int64_t bins) {
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

TEST(StatsVariants, ReferenceComesFirstAndIsAlwaysSupported) {
    size_t n = 0;
    const qsim_stats_kernels * v = qsim_stats_variants(&n);
    ASSERT_GE(n, 1u);
    EXPECT_STREQ(v[0].name, "ref");
    EXPECT_TRUE(v[0].supported());
    EXPECT_TRUE(qsim_stats_best()->supported());
}

TEST(MinMax, SkipsAndCountsNonFinite) {
    const std::vector<float> x = { 3.0f, -1.0f, kNaN, 2.0f, kInf, -kInf, 0.5f };
    for (const auto * k : variants()) {
        float lo = kInf, hi = -kInf;
        EXPECT_EQ(k->minmax(x.size(), x.data(), &lo, &hi), 3) << k->name;
        EXPECT_EQ(lo, -1.0f) << k->name;
        EXPECT_EQ(hi, 3.0f) << k->name;
    }
}

TEST(MinMax, FoldsIntoTheRunningValues) {
    const std::vector<float> x = { 1.0f, 2.0f };
    for (const auto * k : variants()) {
        float lo = -5.0f, hi = 1.5f;  // earlier batches
        EXPECT_EQ(k->minmax(x.size(), x.data(), &lo, &hi), 0) << k->name;
        EXPECT_EQ(lo, -5.0f) << k->name;
        EXPECT_EQ(hi, 2.0f) << k->name;
    }
}

TEST(MinMax, EmptyAllNaNAndZeros) {
    for (const auto * k : variants()) {
        float lo = kInf, hi = -kInf;
        EXPECT_EQ(k->minmax(0, nullptr, &lo, &hi), 0) << k->name;
        EXPECT_EQ(lo, kInf) << k->name;
        EXPECT_EQ(hi, -kInf) << k->name;
        const std::vector<float> nans(5, kNaN);
        EXPECT_EQ(k->minmax(nans.size(), nans.data(), &lo, &hi), 5) << k->name;
        EXPECT_GT(lo, hi) << k->name << ": no finite value leaves the fold empty";
        const std::vector<float> zeros = { -0.0f, 0.0f, -0.0f };
        EXPECT_EQ(k->minmax(zeros.size(), zeros.data(), &lo, &hi), 0) << k->name;
        EXPECT_EQ(lo, 0.0f) << k->name;
        EXPECT_FALSE(std::signbit(lo)) << k->name << ": a zero minimum is +0 whatever came first";
        EXPECT_FALSE(std::signbit(hi)) << k->name;
    }
}

TEST(MinMax, SingleElementAndConstant) {
    for (const auto * k : variants()) {
        float lo = kInf, hi = -kInf;
        const float one = -7.25f;
        k->minmax(1, &one, &lo, &hi);
        EXPECT_EQ(lo, -7.25f) << k->name;
        EXPECT_EQ(hi, -7.25f) << k->name;
        const std::vector<float> c(1000, 4.5f);
        lo = kInf, hi = -kInf;
        k->minmax(c.size(), c.data(), &lo, &hi);
        EXPECT_EQ(lo, 4.5f) << k->name;
        EXPECT_EQ(hi, 4.5f) << k->name;
    }
}

TEST(Histogram, KnownAnswerBinsAndEnds) {
    // Range [0, 4) in 4 bins: lo = 0, scale = 4 / 4 = 1, bin = clamp(floor(v), 0, 3).
    //   0, 0.5, -1 (below: first bin) -> bin 0;  1 -> bin 1;  2.9 -> bin 2;
    //   3.99, 4 (the right edge), 5 (above: last bin) -> bin 3;  NaN and Inf skipped.
    const std::vector<float> x = { 0.0f, 0.5f, 1.0f, 2.9f, 3.99f, 4.0f, -1.0f, 5.0f, kNaN, kInf };
    const qsim_bins b = qsim_bins_of({ 0.0, 4.0 }, 4);
    EXPECT_EQ(b.lo, 0.0f);
    EXPECT_EQ(b.scale, 1.0f);
    EXPECT_EQ(b.count, 4);
    for (const auto * k : variants()) {
        std::vector<int64_t> c(4, 0);
        float lo = kInf, hi = -kInf;
        EXPECT_EQ(k->histogram(x.size(), x.data(), b, c.data(), &lo, &hi), 2) << k->name;
        EXPECT_EQ(c, (std::vector<int64_t>{ 3, 1, 1, 3 })) << k->name;
        EXPECT_EQ(lo, -1.0f) << k->name << ": the same pass folds min/max of the finite values";
        EXPECT_EQ(hi, 5.0f) << k->name;
    }
}

TEST(Histogram, AddsToExistingCounts) {
    const std::vector<float> x = { 0.25f, 0.75f };
    // [0, 1) in 2 bins: 0.25 -> bin 0, 0.75 -> bin 1, added to {5, 6}.
    for (const auto * k : variants()) {
        std::vector<int64_t> c = { 5, 6 };
        float lo = 0.5f, hi = 0.6f;  // running values from earlier batches
        k->histogram(x.size(), x.data(), qsim_bins_of({ 0.0, 1.0 }, 2), c.data(), &lo, &hi);
        EXPECT_EQ(c, (std::vector<int64_t>{ 6, 7 })) << k->name;
        EXPECT_EQ(lo, 0.25f) << k->name;
        EXPECT_EQ(hi, 0.75f) << k->name;
    }
}

TEST(HistogramGrow, FreshRangeIsTheDataRange) {
    qsim_hist_range g;
    ASSERT_EQ(qsim_histogram_grow(8, { 0.0, 0.0 }, -1.5f, 2.5f, &g), QSIM_SUCCESS);
    EXPECT_EQ(g.lo, -1.5);
    EXPECT_EQ(g.hi, 2.5);
}

TEST(HistogramGrow, ConstantDataGetsAResolvableWidth) {
    // A constant 3 is widened about 3 to a width of 3 * 2^-20 (half-width 3 * 2^-21).
    qsim_hist_range g;
    ASSERT_EQ(qsim_histogram_grow(2048, { 0.0, 0.0 }, 3.0f, 3.0f, &g), QSIM_SUCCESS);
    EXPECT_DOUBLE_EQ(g.lo, 3.0 - 3.0 * std::ldexp(1.0, -21));
    EXPECT_DOUBLE_EQ(g.hi, 3.0 + 3.0 * std::ldexp(1.0, -21));
    // All zeros: the absolute floor 2^-100.
    ASSERT_EQ(qsim_histogram_grow(2048, { 0.0, 0.0 }, 0.0f, 0.0f, &g), QSIM_SUCCESS);
    EXPECT_EQ(g.lo, -std::ldexp(1.0, -101));
    EXPECT_EQ(g.hi, std::ldexp(1.0, -101));
    const qsim_bins b = qsim_bins_of(g, 2048);
    EXPECT_TRUE(std::isfinite(b.scale) && b.scale > 0.0f) << b.scale;
}

TEST(HistogramGrow, CoveredOrNoDataLeavesTheRange) {
    const qsim_hist_range r{ -1.0, 3.0 };
    qsim_hist_range g;
    ASSERT_EQ(qsim_histogram_grow(4, r, -0.5f, 3.0f, &g), QSIM_SUCCESS);
    EXPECT_EQ(g.lo, r.lo);
    EXPECT_EQ(g.hi, r.hi);
    ASSERT_EQ(qsim_histogram_grow(4, r, kInf, -kInf, &g), QSIM_SUCCESS);  // nothing seen
    EXPECT_EQ(g.lo, r.lo);
    ASSERT_EQ(qsim_histogram_grow(4, r, kNaN, 1.0f, &g), QSIM_SUCCESS);
    EXPECT_EQ(g.hi, r.hi);
}

TEST(HistogramGrow, KnownAnswersByWholeBins) {
    qsim_hist_range g;
    // [0, 4) in 4 bins (w = 1) to cover max 6: 2 bins more on the right, span 6 -> factor 2,
    // slack 2*4 - 6 = 2 all on the right (the left did not grow): [0, 8).
    ASSERT_EQ(qsim_histogram_grow(4, { 0.0, 4.0 }, 0.0f, 6.0f, &g), QSIM_SUCCESS);
    EXPECT_EQ(g.lo, 0.0);
    EXPECT_EQ(g.hi, 8.0);
    // Both sides by 1 bin: span 6, factor 2, slack 2 shared 1:1 -> 1 + 1 bins on the left: [-2, 6).
    ASSERT_EQ(qsim_histogram_grow(4, { 0.0, 4.0 }, -1.0f, 5.0f, &g), QSIM_SUCCESS);
    EXPECT_EQ(g.lo, -2.0);
    EXPECT_EQ(g.hi, 6.0);
    // Left by 0.5 (1 bin), right by 12.5 (13 bins): span 18 -> factor 5, slack 2, left share
    // floor(2 * 1 / 14) = 0 -> [-1, 19).
    ASSERT_EQ(qsim_histogram_grow(4, { 0.0, 4.0 }, -0.5f, 16.5f, &g), QSIM_SUCCESS);
    EXPECT_EQ(g.lo, -1.0);
    EXPECT_EQ(g.hi, 19.0);
}

TEST(HistogramGrow, HugeJumpsFallBackToTheUnion) {
    // From a width of 2^-20 to 1e30: the factor would pass 2^40, so the range is the union.
    qsim_hist_range g;
    ASSERT_EQ(qsim_histogram_grow(16, { 0.0, std::ldexp(1.0, -20) }, 0.0f, 1e30f, &g), QSIM_SUCCESS);
    EXPECT_EQ(g.lo, 0.0);
    EXPECT_EQ(g.hi, static_cast<double>(1e30f));
}

TEST(HistogramGrow, RejectsBadBinCounts) {
    qsim_hist_range g;
    EXPECT_EQ(qsim_histogram_grow(0, { 0.0, 1.0 }, 0.0f, 2.0f, &g), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_histogram_grow(QSIM_MAX_BINS + 1, { 0.0, 1.0 }, 0.0f, 2.0f, &g),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_histogram_grow(4, { 0.0, 1.0 }, 0.0f, 2.0f, nullptr), QSIM_INVALID_ARGUMENT);
}

TEST(HistogramMove, AlignedRangesMoveWholeBins) {
    // [0, 4) -> [-2, 6), 4 bins each: new bins are 2 old bins wide starting 2 old bins to the
    // left, so old bin i goes to new bin floor((i + 2) / 2): 0->1, 1->1, 2->2, 3->2.
    const std::vector<int64_t> c = { 1, 2, 3, 4 };
    std::vector<int64_t>       out(4, -1);
    qsim_histogram_move(4, { 0.0, 4.0 }, c.data(), { -2.0, 6.0 }, out.data());
    EXPECT_EQ(out, (std::vector<int64_t>{ 0, 3, 7, 0 }));
}

TEST(HistogramMove, UnalignedRangesMoveByBinCentre) {
    // [0, 4) -> [-0.5, 5.5), 4 bins: centres 0.5, 1.5, 2.5, 3.5 land at (c + 0.5) / 1.5 =
    // 0.67, 1.33, 2.0, 2.67 -> bins 0, 1, 2, 2.
    const std::vector<int64_t> c = { 1, 2, 3, 4 };
    std::vector<int64_t>       out(4, -1);
    qsim_histogram_move(4, { 0.0, 4.0 }, c.data(), { -0.5, 5.5 }, out.data());
    EXPECT_EQ(out, (std::vector<int64_t>{ 1, 2, 7, 0 }));
}

TEST(HistogramMove, FromNoRangeGivesZeros) {
    const std::vector<int64_t> c(4, 0);
    std::vector<int64_t>       out(4, -1);
    qsim_histogram_move(4, { 0.0, 0.0 }, c.data(), { 0.0, 1.0 }, out.data());
    EXPECT_EQ(out, (std::vector<int64_t>(4, 0)));
}

TEST(HistogramMerge, BatchesEqualTheUnionBinnedDirectly) {
    // Values at x.5 never sit on an edge. A = {0, 0.5, ..., 7.5, 8} gives [0, 8) in 8 bins
    // (w = 1). B reaches -3.5 and 20.5: 4 bins left, 13 right, span 25 -> factor 4, slack 7,
    // left share floor(7 * 4 / 17) = 1 -> lo = 0 - 5 = -5, hi = -5 + 32 = 27 (w = 4).
    std::vector<float> a = { 0.0f, 8.0f };
    for (int i = 0; i < 8; i++) {
        a.push_back(static_cast<float>(i) + 0.5f);
    }
    const std::vector<float> b = { -3.5f, 20.5f, 1.5f, 9.5f, 9.5f };
    Running run(8);
    run.update(a);
    EXPECT_EQ(run.range.lo, 0.0);
    EXPECT_EQ(run.range.hi, 8.0);
    run.update(b);
    EXPECT_EQ(run.range.lo, -5.0);
    EXPECT_EQ(run.range.hi, 27.0);
    std::vector<float> all = a;
    all.insert(all.end(), b.begin(), b.end());
    EXPECT_EQ(run.counts, direct_histogram(all, run.range, 8));
    EXPECT_EQ(total(run.counts), static_cast<int64_t>(all.size()));
    EXPECT_EQ(run.second_passes, 1);  // B left the range once
    run.update({ 0.5f, 26.5f });      // inside [-5, 27): one pass
    EXPECT_EQ(run.second_passes, 1);
    EXPECT_EQ(run.max, 26.5f);
}

TEST(HistogramMerge, RandomBatchesKeepEveryCountAndTheirBins) {
    // Normal batches with growing spread (and Inf/NaN mixed in): after every batch the histogram
    // holds every finite value, and each new-edge cumulative count equals the direct one up to
    // values within fp32 rounding (1e-5 of the range) of that edge.
    std::mt19937 gen(1234);
    const int64_t bins = 64;
    Running run(bins);
    std::vector<float> all;
    for (int batch = 0; batch < 6; batch++) {
        std::normal_distribution<float> nd(0.3f * batch, 1.0f + 2.0f * batch);
        std::vector<float> x(2000);
        for (auto & v : x) {
            v = nd(gen);
        }
        x[7] = kNaN;
        x[11] = -kInf;
        run.update(x);
        for (float v : x) {
            if (std::isfinite(v)) {
                all.push_back(v);
            }
        }
        ASSERT_EQ(total(run.counts), static_cast<int64_t>(all.size())) << "batch " << batch;
        EXPECT_EQ(run.min, *std::min_element(all.begin(), all.end())) << "batch " << batch;
        EXPECT_EQ(run.max, *std::max_element(all.begin(), all.end())) << "batch " << batch;
        const std::vector<int64_t> direct = direct_histogram(all, run.range, bins);
        const double w = (run.range.hi - run.range.lo) / bins;
        int64_t cum_run = 0, cum_direct = 0;
        for (int64_t j = 0; j < bins; j++) {
            cum_run += run.counts[j];
            cum_direct += direct[j];
            const double edge = run.range.lo + (j + 1) * w;
            int64_t near = 0;
            for (float v : all) {
                near += std::fabs(v - edge) < 1e-5 * (run.range.hi - run.range.lo);
            }
            EXPECT_LE(std::llabs(cum_run - cum_direct), near)
                << "batch " << batch << " edge " << j << ": " << cum_run << " vs " << cum_direct;
        }
    }
}

TEST(ChannelDrivers, MinMaxPerChannelMatchesNaiveLoops) {
    // Shapes [outer, C, inner]: an inner axis (contiguous runs) and a last axis (inner = 1, the
    // strided gather path, with more rows than one gather block).
    for (const qsim_channel_view v : { qsim_channel_view{ 3, 5, 7 }, qsim_channel_view{ 600, 3, 1 },
                                       qsim_channel_view{ 1, 4, 9 } }) {
        std::mt19937 gen(7);
        std::uniform_real_distribution<float> ud(-10.0f, 10.0f);
        std::vector<float> x(v.outer * v.channels * v.inner);
        for (auto & e : x) {
            e = ud(gen);
        }
        x[5] = kNaN;
        std::vector<float>   lo(v.channels, kInf), hi(v.channels, -kInf);
        std::vector<int64_t> bad(v.channels, 0);
        qsim_minmax_channels_f32(nullptr, &v, x.data(), lo.data(), hi.data(), bad.data(), 0, v.channels);
        for (int64_t c = 0; c < v.channels; c++) {
            float elo = kInf, ehi = -kInf;
            int64_t ebad = 0;
            for (int64_t o = 0; o < v.outer; o++) {
                for (int64_t i = 0; i < v.inner; i++) {
                    const float e = x[(o * v.channels + c) * v.inner + i];
                    if (std::isnan(e)) {
                        ebad++;
                        continue;
                    }
                    elo = std::min(elo, e);
                    ehi = std::max(ehi, e);
                }
            }
            EXPECT_EQ(lo[c], elo) << "channel " << c << " of outer " << v.outer;
            EXPECT_EQ(hi[c], ehi) << "channel " << c << " of outer " << v.outer;
            EXPECT_EQ(bad[c], ebad) << "channel " << c << " of outer " << v.outer;
        }
    }
}

TEST(ChannelDrivers, HistogramPerChannelMatchesNaiveLoopsAndSkipsUnsetRanges) {
    const qsim_channel_view v{ 300, 3, 1 };
    std::mt19937 gen(11);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    std::vector<float> x(v.outer * v.channels);
    for (auto & e : x) {
        e = nd(gen);
    }
    const int64_t bins = 16;
    const std::vector<qsim_hist_range> ranges = { { -4.0, 4.0 }, { 0.0, 0.0 }, { -1.0, 9.0 } };
    std::vector<int64_t> counts(v.channels * bins, 0), bad(v.channels, 0);
    std::vector<float>   lo(v.channels, kInf), hi(v.channels, -kInf);
    qsim_histogram_channels_f32(nullptr, &v, x.data(), ranges.data(), bins, counts.data(), lo.data(),
                                hi.data(), bad.data(), 0, v.channels);
    for (int64_t c = 0; c < v.channels; c++) {
        std::vector<float> xc;
        for (int64_t o = 0; o < v.outer; o++) {
            xc.push_back(x[o * v.channels + c]);
        }
        EXPECT_EQ(lo[c], *std::min_element(xc.begin(), xc.end())) << "channel " << c;
        EXPECT_EQ(hi[c], *std::max_element(xc.begin(), xc.end())) << "channel " << c;
        const std::vector<int64_t> expect = ranges[c].hi > ranges[c].lo
                                                ? direct_histogram(xc, ranges[c], bins)
                                                : std::vector<int64_t>(bins, 0);
        const std::vector<int64_t> got(counts.begin() + c * bins, counts.begin() + (c + 1) * bins);
        EXPECT_EQ(got, expect) << "channel " << c;
    }
}

TEST(ChannelDrivers, ChannelRangeSplitsGiveTheSameResult) {
    const qsim_channel_view v{ 4, 6, 5 };
    std::vector<float> x(v.outer * v.channels * v.inner);
    std::iota(x.begin(), x.end(), -50.0f);
    std::vector<float>   lo1(6, kInf), hi1(6, -kInf), lo2(6, kInf), hi2(6, -kInf);
    std::vector<int64_t> b1(6, 0), b2(6, 0);
    qsim_minmax_channels_f32(nullptr, &v, x.data(), lo1.data(), hi1.data(), b1.data(), 0, 6);
    qsim_minmax_channels_f32(nullptr, &v, x.data(), lo2.data(), hi2.data(), b2.data(), 0, 2);
    qsim_minmax_channels_f32(nullptr, &v, x.data(), lo2.data(), hi2.data(), b2.data(), 2, 6);
    EXPECT_EQ(lo1, lo2);
    EXPECT_EQ(hi1, hi2);
    // Channel c holds x = -50 + (o * 6 + c) * 5 + i: its min is at o = 0, i = 0 and its max at
    // o = 3, i = 4, so channel 0 spans [-50, -50 + 90 + 4] = [-50, 44].
    EXPECT_EQ(lo1[0], -50.0f);
    EXPECT_EQ(hi1[0], 44.0f);
}

// Every compiled ISA variant against `ref`, the specification: the same non-finite count, counts
// and min/max bits, for every length 0..600 (all vector tails and block boundaries), misaligned
// starts, running values that the data does or does not move, and data with specials (signed
// zeros, +-Inf, NaN, subnormals, values beyond the range ends and exactly on bin edges). Variants
// this CPU lacks are skipped with a message.
class StatsVariant : public ::testing::TestWithParam<std::string> {};

TEST_P(StatsVariant, MatchesRefBitForBit) {
    size_t n_variants = 0;
    const qsim_stats_kernels * v = qsim_stats_variants(&n_variants);
    const qsim_stats_kernels & ref = v[0];
    const qsim_stats_kernels * kp  = nullptr;
    for (size_t i = 0; i < n_variants; i++) {
        if (GetParam() == v[i].name) {
            kp = &v[i];
        }
    }
    ASSERT_NE(kp, nullptr);
    if (!kp->supported()) {
        GTEST_SKIP() << "this CPU cannot run the " << GetParam() << " stats variant";
    }
    const qsim_stats_kernels & k = *kp;
    const std::vector<float>   specials = { 0.0f, -0.0f, kInf, -kInf, kNaN, -kNaN, 1e-45f, -1e-40f,
                                            -3.0f, 3.0f, 1e30f, -1e30f, 0.75f, 1.5f, 2.25f };
    const qsim_bins bins = qsim_bins_of({ -2.25, 2.25 }, 6);  // edges at -2.25 + 0.75 k
    std::mt19937 rng(23);
    std::uniform_real_distribution<float> u(-2.5f, 2.5f);
    std::uniform_int_distribution<size_t> pick(0, specials.size() - 1), coin(0, 4);
    for (size_t n = 0; n <= 600; n++) {
        std::vector<float> mem(n + 3);
        for (auto & x : mem) {
            x = coin(rng) == 0 ? specials[pick(rng)] : u(rng);
        }
        if (n % 7 == 0) {  // every value finite now and then: the fast counting path
            std::replace_if(mem.begin(), mem.end(), [](float x) { return !std::isfinite(x); }, 0.5f);
        }
        const float * x = mem.data() + n % 4;
        for (const auto & start : { std::pair<float, float>{ kInf, -kInf }, { -0.0f, 0.0f }, { -1.0f, 1.0f } }) {
            const std::string what = std::string(k.name) + " n=" + std::to_string(n) +
                                     " start [" + std::to_string(start.first) + ", " +
                                     std::to_string(start.second) + "]";
            float want_lo = start.first, want_hi = start.second, lo = start.first, hi = start.second;
            EXPECT_EQ(k.minmax(n, x, &lo, &hi), ref.minmax(n, x, &want_lo, &want_hi)) << what;
            EXPECT_EQ(std::memcmp(&lo, &want_lo, sizeof lo), 0) << what << " min " << lo << " vs " << want_lo;
            EXPECT_EQ(std::memcmp(&hi, &want_hi, sizeof hi), 0) << what << " max " << hi << " vs " << want_hi;

            std::vector<int64_t> want_c(6, 3), got_c(6, 3);  // counts add to what is there
            want_lo = lo = start.first, want_hi = hi = start.second;
            EXPECT_EQ(k.histogram(n, x, bins, got_c.data(), &lo, &hi),
                      ref.histogram(n, x, bins, want_c.data(), &want_lo, &want_hi)) << what;
            EXPECT_EQ(got_c, want_c) << what;
            EXPECT_EQ(std::memcmp(&lo, &want_lo, sizeof lo), 0) << what << " histogram min";
            EXPECT_EQ(std::memcmp(&hi, &want_hi, sizeof hi), 0) << what << " histogram max";
        }
    }
}

std::vector<std::string> stats_variant_names() {
    size_t n = 0;
    const qsim_stats_kernels * v = qsim_stats_variants(&n);
    std::vector<std::string> out;
    for (size_t i = 1; i < n; i++) {
        out.emplace_back(v[i].name);
    }
    return out;
}

// Off x86-64 only ref is compiled and the suite has no instances.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StatsVariant);
INSTANTIATE_TEST_SUITE_P(AllVariants, StatsVariant, ::testing::ValuesIn(stats_variant_names()),
                         [](const ::testing::TestParamInfo<std::string> & i) { return i.param; });
