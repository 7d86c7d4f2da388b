// GoogleTest for qsim/analyzers.h: grids, the encoding of a range, and the four analyzers on
// hand-computed histograms and on degenerate data (constant, zeros, one element, Inf, NaN).
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
Stats stats_of(const std::vector<float> & x, int64_t bins = 2048) {
    Stats s{ kInf, -kInf, { 0.0, 0.0 }, std::vector<int64_t>(bins, 0) };
    qsim_minmax_f32_ref(x.size(), x.data(), &s.min, &s.max);
    EXPECT_EQ(qsim_histogram_grow(bins, s.range, s.min, s.max, &s.range), QSIM_SUCCESS);
    if (s.range.hi > s.range.lo) {
        float lo = s.min, hi = s.max;
        qsim_histogram_f32_ref(x.size(), x.data(), qsim_bins_of(s.range, bins), s.counts.data(), &lo, &hi);
    }
    return s;
}

qsim_status analyze(const qsim_analyzer & a, const Stats & s, qsim_encoding * out,
                    int64_t * bad = nullptr) {
    std::vector<double> work(qsim_analyzer_workspace(&a, static_cast<int64_t>(s.counts.size())) + 1);
    const qsim_channel_stats v = s.view();
    return qsim_analyze_channels(&a, &v, work.data(), out, 0, 1, bad);
}

qsim_encoding encode(qsim_grid_kind grid, int bw, float lo, float hi) {
    qsim_encoding e{};
    EXPECT_EQ(qsim_encoding_from_range(grid, bw, lo, hi, &e), QSIM_SUCCESS);
    return e;
}

// The invariants every encoding keeps: finite scale >= eps, zero point on the grid, zero inside.
void expect_valid(const qsim_encoding & e, qsim_grid_kind grid, int bw, const char * what) {
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

TEST(Grid, BoundsPerKind) {
    int32_t lo, hi;
    ASSERT_EQ(qsim_grid_bounds(QSIM_GRID_SYMMETRIC, 8, &lo, &hi), QSIM_SUCCESS);
    EXPECT_EQ(lo, -128);
    EXPECT_EQ(hi, 127);
    ASSERT_EQ(qsim_grid_bounds(QSIM_GRID_STRICT_SYMMETRIC, 8, &lo, &hi), QSIM_SUCCESS);
    EXPECT_EQ(lo, -127);
    EXPECT_EQ(hi, 127);
    ASSERT_EQ(qsim_grid_bounds(QSIM_GRID_UNSIGNED_SYMMETRIC, 4, &lo, &hi), QSIM_SUCCESS);
    EXPECT_EQ(lo, 0);
    EXPECT_EQ(hi, 15);
    ASSERT_EQ(qsim_grid_bounds(QSIM_GRID_ASYMMETRIC, 16, &lo, &hi), QSIM_SUCCESS);
    EXPECT_EQ(hi, 65535);
    ASSERT_EQ(qsim_grid_bounds(QSIM_GRID_STRICT_SYMMETRIC, 2, &lo, &hi), QSIM_SUCCESS);
    EXPECT_EQ(lo, -1);
    EXPECT_EQ(hi, 1);
    EXPECT_EQ(qsim_grid_bounds(QSIM_GRID_ASYMMETRIC, 1, &lo, &hi), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_grid_bounds(QSIM_GRID_ASYMMETRIC, 17, &lo, &hi), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_grid_bounds(static_cast<qsim_grid_kind>(9), 8, &lo, &hi), QSIM_INVALID_ARGUMENT);
}

TEST(EncodingFromRange, AsymmetricKnownAnswer) {
    // (-1, 3), 8 bits: scale = 4 / 255; zp = 0 - rint(-1 / (4/255)) = -rint(-63.75) = 64;
    // range [-64 * 4/255, 191 * 4/255] = [-1.00392, 2.99608].
    const qsim_encoding e = encode(QSIM_GRID_ASYMMETRIC, 8, -1.0f, 3.0f);
    EXPECT_FLOAT_EQ(e.scale, 4.0f / 255.0f);
    EXPECT_EQ(e.zero_point, 64);
    EXPECT_FLOAT_EQ(e.min, -64.0f * 4.0f / 255.0f);
    EXPECT_FLOAT_EQ(e.max, 191.0f * 4.0f / 255.0f);
    // (2, 6) has no negative values: min0 = 0, scale = 6 / 255, zp = 0, range [0, 6].
    const qsim_encoding p = encode(QSIM_GRID_ASYMMETRIC, 8, 2.0f, 6.0f);
    EXPECT_FLOAT_EQ(p.scale, 6.0f / 255.0f);
    EXPECT_EQ(p.zero_point, 0);
    EXPECT_EQ(p.min, 0.0f);
    EXPECT_FLOAT_EQ(p.max, 6.0f);
}

TEST(EncodingFromRange, SymmetricKnownAnswers) {
    // Signed (-1, 3): scale = max(3 / 127, 1 / 128) = 3/127, range [-128 s, 127 s] = [-3.0236, 3].
    const qsim_encoding s = encode(QSIM_GRID_SYMMETRIC, 8, -1.0f, 3.0f);
    EXPECT_FLOAT_EQ(s.scale, 3.0f / 127.0f);
    EXPECT_EQ(s.zero_point, 0);
    EXPECT_FLOAT_EQ(s.min, -128.0f * 3.0f / 127.0f);
    EXPECT_FLOAT_EQ(s.max, 3.0f);
    // Signed (-4, 1): scale = max(1 / 127, 4 / 128) = 1/32, range [-4, 127/32].
    const qsim_encoding n = encode(QSIM_GRID_SYMMETRIC, 8, -4.0f, 1.0f);
    EXPECT_EQ(n.scale, 1.0f / 32.0f);
    EXPECT_EQ(n.min, -4.0f);
    EXPECT_EQ(n.max, 127.0f / 32.0f);
    // Strict (-1, 3): scale = 3 / 127, range [-3, 3].
    const qsim_encoding t = encode(QSIM_GRID_STRICT_SYMMETRIC, 8, -1.0f, 3.0f);
    EXPECT_FLOAT_EQ(t.scale, 3.0f / 127.0f);
    EXPECT_EQ(t.zero_point, 0);
    EXPECT_FLOAT_EQ(t.min, -3.0f);
    EXPECT_FLOAT_EQ(t.max, 3.0f);
    // Unsigned symmetric, data >= 0 (0.5, 3): zp 0, scale 3 / 255, range [0, 3].
    const qsim_encoding u = encode(QSIM_GRID_UNSIGNED_SYMMETRIC, 8, 0.5f, 3.0f);
    EXPECT_FLOAT_EQ(u.scale, 3.0f / 255.0f);
    EXPECT_EQ(u.zero_point, 0);
    EXPECT_EQ(u.min, 0.0f);
    EXPECT_FLOAT_EQ(u.max, 3.0f);
    // Unsigned symmetric with negatives (-1, 3): zp 128 (signed grid shifted), 127 steps up and
    // 128 down: scale = max(3 / 127, 1 / 128) = 3/127, range [-128 s, 127 s].
    const qsim_encoding v = encode(QSIM_GRID_UNSIGNED_SYMMETRIC, 8, -1.0f, 3.0f);
    EXPECT_EQ(v.zero_point, 128);
    EXPECT_FLOAT_EQ(v.scale, 3.0f / 127.0f);
    EXPECT_FLOAT_EQ(v.min, -128.0f * 3.0f / 127.0f);
}

TEST(EncodingFromRange, ZeroRangeGetsTheMinimumScale) {
    // All zeros: (max0 - min0) / n = 0 < eps, so the range widens to n * eps (asymmetric) or
    // 127 eps / 128 eps (signed): scale = eps either way.
    for (qsim_grid_kind g : kGrids) {
        const qsim_encoding e = encode(g, 8, 0.0f, 0.0f);
        EXPECT_EQ(e.scale, FLT_EPSILON) << "grid " << g;
        expect_valid(e, g, 8, "zeros");
    }
    const qsim_encoding a = encode(QSIM_GRID_ASYMMETRIC, 8, 0.0f, 0.0f);
    EXPECT_EQ(a.zero_point, 0);
    EXPECT_FLOAT_EQ(a.max, 255.0f * FLT_EPSILON);
}

TEST(EncodingFromRange, SingleValueAndInfinities) {
    // One value -3 (min = max = -3): signed scale = max(0 / 127, 3 / 128) = 3/128, min = -3.
    const qsim_encoding s = encode(QSIM_GRID_SYMMETRIC, 8, -3.0f, -3.0f);
    EXPECT_EQ(s.scale, 3.0f / 128.0f);
    EXPECT_EQ(s.min, -3.0f);
    // +-Inf count as +-FLT_MAX; every result stays finite.
    for (qsim_grid_kind g : kGrids) {
        for (int bw : { 2, 8, 16 }) {
            expect_valid(encode(g, bw, -kInf, kInf), g, bw, "(-inf, inf)");
            expect_valid(encode(g, bw, -FLT_MAX, 1.0f), g, bw, "(-max, 1)");
            expect_valid(encode(g, bw, 0.0f, kInf), g, bw, "(0, inf)");
        }
    }
    // Asymmetric 8-bit (-FLT_MAX, FLT_MAX): scale = 2 FLT_MAX / 255, zp = -rint(-127.5) = 128.
    const qsim_encoding a = encode(QSIM_GRID_ASYMMETRIC, 8, -kInf, kInf);
    EXPECT_FLOAT_EQ(a.scale, static_cast<float>(2.0 * FLT_MAX / 255.0));
    EXPECT_EQ(a.zero_point, 128);
}

TEST(EncodingFromRange, MinMaxGiveBackScaleAndZeroPointInFp32) {
    // A quantizer holding (min, max) derives scale = (max - min) / (qmax - qmin) and
    // zp = qmin - rint(min / scale) in fp32; both must equal the encoding's, for random ranges.
    std::mt19937 gen(5);
    std::uniform_real_distribution<float> mag(-30.0f, 30.0f);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    for (int i = 0; i < 20000; i++) {
        const float a = -std::exp2(mag(gen)) * (unit(gen) < 0.2f ? 0.0f : unit(gen));
        const float b = std::exp2(mag(gen)) * (unit(gen) < 0.2f ? 0.0f : unit(gen));
        const qsim_grid_kind g = kGrids[i % 4];
        const int bw = 2 + i % 15;
        const qsim_encoding e = encode(g, bw, a, b);
        int32_t qmin, qmax;
        ASSERT_EQ(qsim_grid_bounds(g, bw, &qmin, &qmax), QSIM_SUCCESS);
        const float s = (e.max - e.min) / static_cast<float>(qmax - qmin);
        ASSERT_EQ(s, e.scale) << "range (" << a << ", " << b << ") grid " << g << " bw " << bw;
        ASSERT_EQ(static_cast<float>(qmin) - std::rint(e.min / s), static_cast<float>(e.zero_point))
            << "range (" << a << ", " << b << ") grid " << g << " bw " << bw;
        ASSERT_LE(e.min, 0.0f);
        ASSERT_GE(e.max, 0.0f);
    }
}

TEST(EncodingFromRange, RejectsNoDataNaNAndBadGrids) {
    qsim_encoding e;
    EXPECT_EQ(qsim_encoding_from_range(QSIM_GRID_ASYMMETRIC, 8, kInf, -kInf, &e), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_encoding_from_range(QSIM_GRID_ASYMMETRIC, 8, kNaN, 1.0f, &e), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_encoding_from_range(QSIM_GRID_ASYMMETRIC, 8, 0.0f, kNaN, &e), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_encoding_from_range(QSIM_GRID_ASYMMETRIC, 8, 2.0f, 1.0f, &e), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_encoding_from_range(QSIM_GRID_SYMMETRIC, 17, 0.0f, 1.0f, &e), QSIM_INVALID_ARGUMENT);
}

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

// MSE, strict 2-bit, same histogram as the symmetric SQNR case (centres -3, -1, 1, 3; counts
// 1, 10, 10, 1), K = 4 scales d * k / 4 = 1, 2, 3, 4 with gamma 1:
//   s = 1: -3 clips to -1 (4), 3 clips to 1 (4), +-1 exact: 8   <- the least
//   s = 2: 1 + 10 + 10 + 1 = 22;  s = 3: +-3 exact, +-1 -> 0 (10 + 10): 20;  s = 4: 22.
TEST(Mse, SymmetricKnownAnswer) {
    const Stats s{ -4.0f, 4.0f, { -4.0, 4.0 }, { 1, 10, 10, 1 } };
    qsim_analyzer a = qsim_analyzer_defaults(QSIM_ANALYZER_MSE, QSIM_GRID_STRICT_SYMMETRIC, 2);
    a.mse_delta_count = 4;
    qsim_encoding e;
    ASSERT_EQ(analyze(a, s, &e), QSIM_SUCCESS);
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
    const Stats s{ -2.0f, 6.0f, { -2.0, 6.0 }, { 10, 0, 10, 1 } };
    qsim_analyzer a = qsim_analyzer_defaults(QSIM_ANALYZER_MSE, QSIM_GRID_ASYMMETRIC, 2);
    a.mse_delta_count = 2;
    qsim_encoding e;
    ASSERT_EQ(analyze(a, s, &e), QSIM_SUCCESS);
    EXPECT_EQ(e.scale, (8.0f / 3.0f) / 2.0f);
    EXPECT_EQ(e.zero_point, 1);
}

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
