// GoogleTest for qsim/stats.h: the variant list, running min/max and histogram binning; every
// run-kernel test walks all compiled variants (stats_variants.inc).
#include "stats_test_util.h"

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
