// GoogleTest for qsim/stats.h: histogram ranges (growth, re-binning by move) and merging batches.
#include "stats_test_util.h"

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
