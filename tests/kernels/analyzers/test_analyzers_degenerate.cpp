// GoogleTest for qsim/analyzers.h: every analyzer on degenerate data (constant, zeros, one
// element, Inf, NaN) and the per-channel driver.
#include "analyzer_test_util.h"

TEST(Degenerate, ConstantTensorEveryAnalyzerAndGrid) {
    // A constant 2.5: every analyzer keeps 2.5 representable (asymmetric: scale 2.5/255, zp 0).
    const Stats s = stats_of(std::vector<float>(100, 2.5f));
    for (qsim_analyzer_kind k : kKinds) {
        for (qsim_grid_kind g : kGrids) {
            const qsim_analyzer a = qsim_analyzer_defaults(k, g, 8);
            qsim_encoding e;
            ASSERT_EQ(analyze(a, s, &e), QSIM_SUCCESS) << "kind " << k << " grid " << g;
            expect_valid(e, g, 8, "constant");
            const float q = std::rint(2.5f / e.scale) * e.scale;
            EXPECT_NEAR(q, 2.5f, e.scale) << "kind " << k << " grid " << g;
        }
    }
    qsim_encoding e;
    ASSERT_EQ(analyze(qsim_analyzer_defaults(QSIM_ANALYZER_TF_ENHANCED, QSIM_GRID_ASYMMETRIC, 8), s, &e),
              QSIM_SUCCESS);
    EXPECT_FLOAT_EQ(e.scale, 2.5f / 255.0f);
    EXPECT_EQ(e.zero_point, 0);
}

TEST(Degenerate, AllZerosGiveTheMinimumScale) {
    const Stats s = stats_of(std::vector<float>(64, 0.0f));
    for (qsim_analyzer_kind k : kKinds) {
        for (qsim_grid_kind g : kGrids) {
            qsim_encoding e;
            ASSERT_EQ(analyze(qsim_analyzer_defaults(k, g, 8), s, &e), QSIM_SUCCESS);
            EXPECT_EQ(e.scale, FLT_EPSILON) << "kind " << k << " grid " << g;
            expect_valid(e, g, 8, "zeros");
        }
    }
}

TEST(Degenerate, SingleElement) {
    // One value -3: signed 8-bit gives scale 3/128 and min exactly -3 for every analyzer.
    const Stats s = stats_of({ -3.0f });
    for (qsim_analyzer_kind k : kKinds) {
        qsim_encoding e;
        ASSERT_EQ(analyze(qsim_analyzer_defaults(k, QSIM_GRID_SYMMETRIC, 8), s, &e), QSIM_SUCCESS);
        EXPECT_FLOAT_EQ(e.scale, 3.0f / 128.0f) << "kind " << k;
        EXPECT_FLOAT_EQ(e.min, -3.0f) << "kind " << k;
    }
}

TEST(Degenerate, InfinitiesAreSkipped) {
    // {1, +Inf, -Inf, 2}: the statistics see 1 and 2 only; asymmetric -> scale 2/255, zp 0.
    const Stats s = stats_of({ 1.0f, kInf, -kInf, 2.0f });
    EXPECT_EQ(s.min, 1.0f);
    EXPECT_EQ(s.max, 2.0f);
    for (qsim_analyzer_kind k : kKinds) {
        qsim_encoding e;
        ASSERT_EQ(analyze(qsim_analyzer_defaults(k, QSIM_GRID_ASYMMETRIC, 8), s, &e), QSIM_SUCCESS);
        expect_valid(e, QSIM_GRID_ASYMMETRIC, 8, "inf");
        EXPECT_LE(e.max, 2.0f * (1.0f + 1e-6f)) << "kind " << k;
    }
}

TEST(Degenerate, AllNaNAndEmptyHistogramsAreErrorsNamingTheChannel) {
    const Stats nan = stats_of(std::vector<float>(8, kNaN));
    for (qsim_analyzer_kind k : kKinds) {
        qsim_encoding e;
        int64_t bad = -7;
        EXPECT_EQ(analyze(qsim_analyzer_defaults(k, QSIM_GRID_ASYMMETRIC, 8), nan, &e, &bad),
                  QSIM_INVALID_ARGUMENT) << "kind " << k;
        EXPECT_EQ(bad, 0);
    }
    // Two channels, the second with a range but no histogram counts (min/max only): the
    // histogram analyzers fail on channel 1.
    const float lo[2] = { -1.0f, -1.0f }, hi[2] = { 1.0f, 1.0f };
    const qsim_hist_range r[2] = { { -1.0, 1.0 }, { -1.0, 1.0 } };
    std::vector<int64_t> counts(8, 0);
    counts[1] = 3;
    const qsim_channel_stats v{ lo, hi, r, counts.data(), 4 };
    const qsim_analyzer a = qsim_analyzer_defaults(QSIM_ANALYZER_TF_ENHANCED, QSIM_GRID_ASYMMETRIC, 8);
    std::vector<double> work(qsim_analyzer_workspace(&a, 4));
    qsim_encoding out[2];
    int64_t bad = -7;
    EXPECT_EQ(qsim_analyze_channels(&a, &v, work.data(), out, 0, 2, &bad), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(bad, 1);
    qsim_analyzer wrong = a;
    wrong.offset_count = 0;
    EXPECT_EQ(qsim_analyze_channels(&wrong, &v, work.data(), out, 0, 2, &bad), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(bad, -1);
}

TEST(PerChannel, EachChannelEqualsItsOwnAnalysis) {
    // Three channels with different spreads: the per-channel call over [0, 3) matches three
    // single-channel calls, for every analyzer.
    std::vector<Stats> ch;
    for (int c = 0; c < 3; c++) {
        std::vector<float> x;
        for (int i = 0; i < 500; i++) {
            x.push_back(std::sin(0.37f * static_cast<float>(i)) * static_cast<float>(c + 1) +
                        (i == 17 ? 10.0f * static_cast<float>(c) : 0.0f));
        }
        ch.push_back(stats_of(x, 128));
    }
    std::vector<float> lo, hi;
    std::vector<qsim_hist_range> r;
    std::vector<int64_t> counts;
    for (const auto & s : ch) {
        lo.push_back(s.min), hi.push_back(s.max), r.push_back(s.range);
        counts.insert(counts.end(), s.counts.begin(), s.counts.end());
    }
    const qsim_channel_stats v{ lo.data(), hi.data(), r.data(), counts.data(), 128 };
    for (qsim_analyzer_kind k : kKinds) {
        const qsim_analyzer a = qsim_analyzer_defaults(k, QSIM_GRID_SYMMETRIC, 4);
        std::vector<double> work(qsim_analyzer_workspace(&a, 128) + 1);
        qsim_encoding out[3];
        ASSERT_EQ(qsim_analyze_channels(&a, &v, work.data(), out, 0, 3, nullptr), QSIM_SUCCESS);
        for (int c = 0; c < 3; c++) {
            qsim_encoding one;
            ASSERT_EQ(analyze(a, ch[c], &one), QSIM_SUCCESS);
            EXPECT_EQ(out[c].scale, one.scale) << "kind " << k << " channel " << c;
            EXPECT_EQ(out[c].zero_point, one.zero_point) << "kind " << k << " channel " << c;
        }
    }
}
