// GoogleTest for qsim/stats.h: every compiled ISA variant bit for bit against `ref`.
#include "stats_test_util.h"

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
