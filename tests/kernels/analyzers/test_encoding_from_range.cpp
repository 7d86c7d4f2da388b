// GoogleTest for qsim/analyzers.h: grid bounds and the encoding of a range (known answers,
// degenerate ranges, bad arguments).
#include "analyzer_test_util.h"

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
