// GoogleTest for qsim/analyzers.h: the four analyzers (min/max, TF-enhanced, percentile, MSE)
// on hand-computed histograms.
#include "analyzer_test_util.h"

TEST(Analyzer, OptionChecks) {
    qsim_analyzer a = qsim_analyzer_defaults(QSIM_ANALYZER_TF_ENHANCED, QSIM_GRID_ASYMMETRIC, 8);
    EXPECT_EQ(a.gamma, 3.0);
    EXPECT_EQ(a.asym_delta_count, 17);
    EXPECT_EQ(a.sym_delta_count, 101);
    EXPECT_EQ(a.offset_count, 21);
    EXPECT_EQ(qsim_analyzer_check(&a), QSIM_SUCCESS);
    a.gamma = -1.0;
    EXPECT_EQ(qsim_analyzer_check(&a), QSIM_INVALID_ARGUMENT);
    a.gamma = 3.0, a.offset_count = 2;
    EXPECT_EQ(qsim_analyzer_check(&a), QSIM_INVALID_ARGUMENT);
    qsim_analyzer p = qsim_analyzer_defaults(QSIM_ANALYZER_PERCENTILE, QSIM_GRID_ASYMMETRIC, 8);
    EXPECT_EQ(p.percentile, 100.0);
    for (double bad : { 49.9, 100.01, std::nan("") }) {
        p.percentile = bad;
        EXPECT_EQ(qsim_analyzer_check(&p), QSIM_INVALID_ARGUMENT) << bad;
    }
    p.percentile = 50.0;
    EXPECT_EQ(qsim_analyzer_check(&p), QSIM_SUCCESS);
    qsim_analyzer m = qsim_analyzer_defaults(QSIM_ANALYZER_MSE, QSIM_GRID_SYMMETRIC, 8);
    m.mse_delta_count = 0;
    EXPECT_EQ(qsim_analyzer_check(&m), QSIM_INVALID_ARGUMENT);
    m = qsim_analyzer_defaults(QSIM_ANALYZER_MIN_MAX, QSIM_GRID_SYMMETRIC, 1);
    EXPECT_EQ(qsim_analyzer_check(&m), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_analyzer_workspace(&m, 2048), 0u);
}

TEST(Analyzer, MinMaxIsTheEncodingOfTheRange) {
    const Stats s{ -1.0f, 3.0f, { 0.0, 0.0 }, {} };
    const qsim_analyzer a = qsim_analyzer_defaults(QSIM_ANALYZER_MIN_MAX, QSIM_GRID_ASYMMETRIC, 8);
    const float lo = -1.0f, hi = 3.0f;
    const qsim_channel_stats v{ &lo, &hi, nullptr, nullptr, 0 };
    qsim_encoding e;
    ASSERT_EQ(qsim_analyze_channels(&a, &v, nullptr, &e, 0, 1, nullptr), QSIM_SUCCESS);
    EXPECT_EQ(e.zero_point, 64);
    EXPECT_EQ(e.scale, encode(QSIM_GRID_ASYMMETRIC, 8, -1.0f, 3.0f).scale);
    (void) s;
}

// Strict symmetric 2-bit grid {-s, 0, s}; 4 bins over [-4, 4): centres -3, -1, 1, 3 with counts
// 1, 10, 10, 1. MIN_MAX: s = 4 / 1 = 4. With S = 3 symmetric candidates: s = 2, 4, 6.
//   s = 4: -3 -> -4, -1 -> 0, 1 -> 0, 3 -> 4: all rounding, 1 + 10 + 10 + 1 = 22.
//   s = 2: -3/2 = -1.5 -> -2 clipped to -1 (value -2, clip 1); -0.5 -> 0 (10); 0.5 -> 0 (10);
//          1.5 -> 2 clipped (clip 1): cost 2 * gamma + 20.
//   s = 6: -0.5 -> 0 (9); +-1/6 -> 0 (10 + 10); 0.5 -> 0 (9): 38.
// gamma 3: 26 > 22 -> s = 4.  gamma 0.5: 21 < 22 -> s = 2.  gamma 1: 22 ties, MIN_MAX (tried
// first) stays.
TEST(TfEnhanced, SymmetricKnownAnswers) {
    const Stats s{ -4.0f, 4.0f, { -4.0, 4.0 }, { 1, 10, 10, 1 } };
    qsim_analyzer a = qsim_analyzer_defaults(QSIM_ANALYZER_TF_ENHANCED, QSIM_GRID_STRICT_SYMMETRIC, 2);
    a.sym_delta_count = 3;
    for (const auto & [gamma, scale] : { std::pair{ 3.0, 4.0f }, std::pair{ 0.5, 2.0f }, std::pair{ 1.0, 4.0f } }) {
        a.gamma = gamma;
        qsim_encoding e;
        ASSERT_EQ(analyze(a, s, &e), QSIM_SUCCESS);
        EXPECT_EQ(e.scale, scale) << "gamma " << gamma;
        EXPECT_EQ(e.zero_point, 0);
        EXPECT_EQ(e.min, -scale);
        EXPECT_EQ(e.max, scale);
    }
}

// Asymmetric 2-bit grid [0, 3] (n = 3); 4 bins over [-2, 6): centres -1, 1, 3, 5, counts
// 1, 0, 1, 10; observed (-2, 6). MIN_MAX: d = 8/3, zp = -rint(-0.75) = 1, grid {-8/3, 0, 8/3, 16/3}.
// A = 2 scales: d, 2d; O = 3: spaced offsets rint(-3 + 3j) = -3, 0 and the observed rint(-2/d) = -1.
// Clamped to [-2, 6] and re-derived:
//   (d, -3) -> [-2, 0]: s = 2/3, zp 3;   (d, 0) -> [0, 6]: s = 2, zp 0;
//   (d, -1) -> [-2, 16/3]: s = 22/9, zp = -rint(-0.818) = 1;   (2d, -3) -> s = 2/3, zp 3;
//   (2d, 0) -> s = 2, zp 0;   (2d, -1) -> [-2, 6]: s = 8/3, zp 1 (= MIN_MAX).
// Costs (gamma 3, count * error^2):
//   MIN_MAX: -1 -> 0 (1), 3 -> 8/3 (1/9), 5 -> 16/3 (10/9): 2.22
//   (2/3, 3): grid {-2, -4/3, -2/3, 0}: -1 -> -4/3 (1/9); 3 and 5 clip to 0: 3 * (9 + 250) = 777
//   (2, 0):   grid {0, 2, 4, 6}: -1 -> 0 (1), 3 -> 4 (1; 1.5 rounds to 2), 5 -> 4 (10; 2.5 -> 2): 12
//   (22/9, 1): -1 -> 0 (1), 3 -> 22/9 (25/81), 5 -> 44/9 (10/81): 1.43   <- the least
TEST(TfEnhanced, AsymmetricKnownAnswer) {
    const Stats s{ -2.0f, 6.0f, { -2.0, 6.0 }, { 1, 0, 1, 10 } };
    qsim_analyzer a = qsim_analyzer_defaults(QSIM_ANALYZER_TF_ENHANCED, QSIM_GRID_ASYMMETRIC, 2);
    a.asym_delta_count = 2;
    a.offset_count     = 3;
    qsim_encoding e;
    ASSERT_EQ(analyze(a, s, &e), QSIM_SUCCESS);
    const double d = static_cast<double>(8.0f / 3.0f);  // the MIN_MAX scale, in fp32
    EXPECT_EQ(e.scale, static_cast<float>((d * 2.0 - -2.0) / 3.0));  // (16/3 + 2) / 3 = 22/9
    EXPECT_EQ(e.zero_point, 1);
    EXPECT_FLOAT_EQ(e.min, -22.0f / 9.0f);
    EXPECT_FLOAT_EQ(e.max, 44.0f / 9.0f);
}

TEST(TfEnhanced, DefaultCandidatesClipARareOutlier) {
    // 101 bins over [-1, 100): 10^7 counts at each of the centres -0.5 and 0.5, one at 99.5.
    // MIN_MAX (8 bits, scale 101/255 = 0.396) rounds +-0.5 to +-0.396: 2e7 * 0.104^2 = 2.2e5.
    // Clipping the outlier at 62 instead costs gamma * 37.5^2 = 4.2e3 and rounds +-0.5 with a
    // step of 63/255 = 0.247 to +-0.494: 2e7 * 0.0059^2 = 700, so the search clips it.
    Stats s{ -1.0f, 100.0f, { -1.0, 100.0 }, std::vector<int64_t>(101, 0) };
    s.counts[0] = s.counts[1] = 10000000;
    s.counts[100] = 1;
    const qsim_analyzer a = qsim_analyzer_defaults(QSIM_ANALYZER_TF_ENHANCED, QSIM_GRID_ASYMMETRIC, 8);
    qsim_encoding e;
    ASSERT_EQ(analyze(a, s, &e), QSIM_SUCCESS);
    expect_valid(e, QSIM_GRID_ASYMMETRIC, 8, "outlier");
    EXPECT_LT(e.max, 99.0f) << "the outlier at 99.5 should be clipped";
    EXPECT_LE(e.min, -0.4f) << "the mass at -0.5 must stay representable";
    // With one count at each centre the outlier dominates and nothing is clipped.
    s.counts[0] = s.counts[1] = 1;
    ASSERT_EQ(analyze(a, s, &e), QSIM_SUCCESS);
    EXPECT_GT(e.max, 99.0f);
}

// Percentile on 10 bins over [-5, 5), one count each (observed -5, 5). p = 90: the targets are
// 10 * 0.1 = 1 (reached at the end of bin 0: -5 + 1 = -4) and 10 * 0.9 = 9 (end of bin 8: 4).
// Signed 8-bit of (-4, 4): scale = max(4/127, 4/128) = 4/127. p = 95: targets 0.5 and 9.5 are
// halfway into bins 0 and 9: -4.5, 4.5 -> scale 4.5 / 127. p = 100: the observed -5, 5 -> 5/127.
// p = 50: both targets are 5 -> 0: the zero range, scale eps.
TEST(Percentile, KnownAnswers) {
    const Stats s{ -5.0f, 5.0f, { -5.0, 5.0 }, std::vector<int64_t>(10, 1) };
    qsim_analyzer a = qsim_analyzer_defaults(QSIM_ANALYZER_PERCENTILE, QSIM_GRID_SYMMETRIC, 8);
    for (const auto & [p, scale] : { std::pair{ 90.0, 4.0f / 127.0f }, std::pair{ 95.0, 4.5f / 127.0f },
                                     std::pair{ 100.0, 5.0f / 127.0f }, std::pair{ 50.0, FLT_EPSILON } }) {
        a.percentile = p;
        qsim_encoding e;
        ASSERT_EQ(analyze(a, s, &e), QSIM_SUCCESS);
        EXPECT_FLOAT_EQ(e.scale, scale) << "p = " << p;
    }
    // Asymmetric p = 90 on [0, 10) one per bin: (1, 9) -> min0 = 0, scale 9/255, zp 0.
    const Stats u{ 0.0f, 10.0f, { 0.0, 10.0 }, std::vector<int64_t>(10, 1) };
    a.grid       = QSIM_GRID_ASYMMETRIC;
    a.percentile = 90.0;
    qsim_encoding e;
    ASSERT_EQ(analyze(a, u, &e), QSIM_SUCCESS);
    EXPECT_FLOAT_EQ(e.scale, 9.0f / 255.0f);
    EXPECT_EQ(e.zero_point, 0);
}

// The 2-bit MSE encoding of `s` on `grid` with `deltas` candidate scales (K).
qsim_encoding mse_2bit(const Stats & s, qsim_grid_kind grid, int deltas) {
    qsim_analyzer a   = qsim_analyzer_defaults(QSIM_ANALYZER_MSE, grid, 2);
    a.mse_delta_count = deltas;
    qsim_encoding e{};
    EXPECT_EQ(analyze(a, s, &e), QSIM_SUCCESS);
    return e;
}

// MSE, strict 2-bit, same histogram as the symmetric SQNR case (centres -3, -1, 1, 3; counts
// 1, 10, 10, 1), K = 4 scales d * k / 4 = 1, 2, 3, 4 with gamma 1:
//   s = 1: -3 clips to -1 (4), 3 clips to 1 (4), +-1 exact: 8   <- the least
//   s = 2: 1 + 10 + 10 + 1 = 22;  s = 3: +-3 exact, +-1 -> 0 (10 + 10): 20;  s = 4: 22.
TEST(Mse, SymmetricKnownAnswer) {
    const qsim_encoding e = mse_2bit({ -4.0f, 4.0f, { -4.0, 4.0 }, { 1, 10, 10, 1 } },
                                     QSIM_GRID_STRICT_SYMMETRIC, 4);
    EXPECT_EQ(e.scale, 1.0f);
    EXPECT_EQ(e.min, -1.0f);
    EXPECT_EQ(e.max, 1.0f);
}

// MSE, asymmetric 2-bit; centres -1, 1, 3, 5 with counts 10, 0, 10, 1 (observed -2, 6).
// MIN_MAX d = 8/3, zp 1: -1 -> 0 (10), 3 -> 8/3 (10/9), 5 -> 16/3 (1/9): 11.2.
// K = 2: s = d/2 = 4/3 puts -1, 3, 5 at positions -1, 2, 4 (noise 1/9 each where unclipped):
//   zp 0 (positions 0..3): -1 clips to 0 (10), 3 -> 8/3 (10/9), 5 clips to 4 (1): 12.1
//   zp 1 (positions -1..2): -1 -> -4/3 (10/9), 3 -> 8/3 (10/9), 5 clips to 8/3 (49/9): 7.67 <- least
//   zp 2: 3 clips to 4/3 (250/9), zp 3: worse still.   s = d: every zp costs at least 11.2.
TEST(Mse, AsymmetricKnownAnswer) {
    const qsim_encoding e = mse_2bit({ -2.0f, 6.0f, { -2.0, 6.0 }, { 10, 0, 10, 1 } },
                                     QSIM_GRID_ASYMMETRIC, 2);
    EXPECT_EQ(e.scale, (8.0f / 3.0f) / 2.0f);
    EXPECT_EQ(e.zero_point, 1);
}
