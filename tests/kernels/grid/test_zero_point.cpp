// GoogleTest for qsim_zero_points_f32 (qsim/analyzers.h): the zero point of a quantizer holding
// min/max. Oracles: known answers written out by hand, the rule computed independently in double
// (an fp32 quotient is the double quotient rounded once to fp32), and the encodings of
// qsim_encoding_from_range, whose zero points the rule must give back from their min and scale.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "qsim_test_util.h"

extern "C" {
#include "qsim/analyzers.h"
}

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> zero_points(qsim_grid_kind grid, int bitwidth, const std::vector<float> & min,
                               const std::vector<float> & scale) {
    std::vector<float> zp(min.size(), -7.0f);
    EXPECT_EQ(qsim_zero_points_f32(grid, bitwidth, min.data(), scale.data(), zp.data(),
                                   static_cast<int64_t>(min.size())),
              QSIM_SUCCESS);
    return zp;
}

// The asymmetric rule in double: qmin - rint(fp32(min / scale)), clamped, NaN kept.
float oracle_asymmetric(float min, float scale, int32_t qmin, int32_t qmax) {
    const double exact = static_cast<double>(min) / static_cast<double>(scale);
    const double q     = static_cast<double>(static_cast<float>(exact));
    const double z = qmin - std::nearbyint(q);
    return std::isnan(z) ? static_cast<float>(z)
                         : static_cast<float>(std::fmin(std::fmax(z, qmin), qmax));
}

}  // namespace

TEST(ZeroPoint, AsymmetricKnownAnswers) {
    // 8 bits: -1 / 0.01 = -100 -> 100; 0.5 / 0.01 = 50 -> -50 -> 0; -3 / 0.01 -> 300 -> 255;
    // ties go to even: -2.5 -> 2, -3.5 -> 4.
    const auto zp = zero_points(QSIM_GRID_ASYMMETRIC, 8, { -1.0f, 0.5f, -3.0f, -2.5f, -3.5f },
                                { 0.01f, 0.01f, 0.01f, 1.0f, 1.0f });
    EXPECT_EQ(zp, (std::vector<float>{ 100.0f, 0.0f, 255.0f, 2.0f, 4.0f }));
    // 4 bits: -1 / (4 / 15) = -3.75 -> 4.
    EXPECT_EQ(zero_points(QSIM_GRID_ASYMMETRIC, 4, { -1.0f }, { 4.0f / 15.0f })[0], 4.0f);
}

TEST(ZeroPoint, AsymmetricNonFinite) {
    // scale 0 (no encoding yet): 0 / 0 is NaN and stays NaN; -1 / 0 = -inf -> +inf -> qmax;
    // 1 / 0 = +inf -> -inf -> qmin (0, positive zero).
    const auto zp = zero_points(QSIM_GRID_ASYMMETRIC, 8, { 0.0f, -1.0f, 1.0f, kNaN },
                                { 0.0f, 0.0f, 0.0f, 1.0f });
    EXPECT_TRUE(std::isnan(zp[0]));
    EXPECT_EQ(zp[1], 255.0f);
    EXPECT_EQ(qsim_test::bits(zp[2]), qsim_test::bits(0.0f));
    EXPECT_TRUE(std::isnan(zp[3]));
}

TEST(ZeroPoint, SymmetricKinds) {
    const std::vector<float> min{ -1.0f, 0.0f, 2.0f, -kInf, kNaN };
    const std::vector<float> any(min.size(), 0.25f);
    EXPECT_EQ(zero_points(QSIM_GRID_UNSIGNED_SYMMETRIC, 8, min, any),
              (std::vector<float>{ 128.0f, 0.0f, 0.0f, 128.0f, 0.0f }));
    EXPECT_EQ(zero_points(QSIM_GRID_UNSIGNED_SYMMETRIC, 4, min, any)[0], 8.0f);
    for (qsim_grid_kind g : { QSIM_GRID_SYMMETRIC, QSIM_GRID_STRICT_SYMMETRIC }) {
        for (float z : zero_points(g, 8, min, any)) {
            EXPECT_EQ(qsim_test::bits(z), qsim_test::bits(0.0f));
        }
    }
    // scale is not read by the symmetric kinds: NULL is accepted.
    float zp = -1.0f;
    EXPECT_EQ(qsim_zero_points_f32(QSIM_GRID_UNSIGNED_SYMMETRIC, 8, min.data(), nullptr, &zp, 1),
              QSIM_SUCCESS);
    EXPECT_EQ(zp, 128.0f);
}

TEST(ZeroPoint, AsymmetricMatchesTheOracleOnRandomRanges) {
    std::mt19937                          rng(qsim_test::kSeed);
    std::uniform_real_distribution<float> lo(-40.0f, 5.0f), width(1e-6f, 60.0f);
    for (int bits : { 2, 4, 8, 16 }) {
        int32_t qmin, qmax;
        ASSERT_EQ(qsim_grid_bounds(QSIM_GRID_ASYMMETRIC, bits, &qmin, &qmax), QSIM_SUCCESS);
        std::vector<float> min(4096), scale(min.size());
        for (size_t i = 0; i < min.size(); i++) {
            min[i]   = lo(rng);
            scale[i] = (min[i] + width(rng) - min[i]) / static_cast<float>(qmax - qmin);
        }
        const auto zp = zero_points(QSIM_GRID_ASYMMETRIC, bits, min, scale);
        for (size_t i = 0; i < min.size(); i++) {
            ASSERT_EQ(qsim_test::bits(zp[i]),
                      qsim_test::bits(oracle_asymmetric(min[i], scale[i], qmin, qmax)))
                << "bits " << bits << " min " << min[i] << " scale " << scale[i];
        }
    }
}

TEST(ZeroPoint, GivesBackTheZeroPointOfEveryEncoding) {
    std::mt19937                          rng(qsim_test::kSeed + 1);
    std::uniform_real_distribution<float> v(-10.0f, 10.0f);
    for (qsim_grid_kind g : { QSIM_GRID_SYMMETRIC, QSIM_GRID_STRICT_SYMMETRIC,
                              QSIM_GRID_UNSIGNED_SYMMETRIC, QSIM_GRID_ASYMMETRIC }) {
        for (int bits : { 4, 8, 16 }) {
            int32_t qmin, qmax;
            ASSERT_EQ(qsim_grid_bounds(g, bits, &qmin, &qmax), QSIM_SUCCESS);
            for (int i = 0; i < 500; i++) {
                const float   a = v(rng), b = v(rng) * (i % 3 == 0 ? 1e-3f : 1.0f);
                qsim_encoding e;
                ASSERT_EQ(qsim_encoding_from_range(g, bits, std::fmin(a, b), std::fmax(a, b), &e),
                          QSIM_SUCCESS);
                // the scale a quantizer holding (e.min, e.max) derives
                const float held = (e.max - e.min) / static_cast<float>(qmax - qmin);
                float       zp   = -1.0f;
                ASSERT_EQ(qsim_zero_points_f32(g, bits, &e.min, &held, &zp, 1), QSIM_SUCCESS);
                ASSERT_EQ(zp, static_cast<float>(e.zero_point))
                    << "grid " << g << " bits " << bits << " range " << a << ", " << b;
                ASSERT_EQ(held, e.scale);
            }
        }
    }
}

TEST(ZeroPoint, BadArguments) {
    const float min = 0.0f, scale = 1.0f;
    float       zp  = 0.0f;
    EXPECT_EQ(qsim_zero_points_f32(QSIM_GRID_ASYMMETRIC, 1, &min, &scale, &zp, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_zero_points_f32(static_cast<qsim_grid_kind>(7), 8, &min, &scale, &zp, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_zero_points_f32(QSIM_GRID_ASYMMETRIC, 8, &min, nullptr, &zp, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_zero_points_f32(QSIM_GRID_ASYMMETRIC, 8, nullptr, &scale, &zp, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_zero_points_f32(QSIM_GRID_ASYMMETRIC, 8, &min, &scale, nullptr, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_zero_points_f32(QSIM_GRID_ASYMMETRIC, 8, &min, &scale, &zp, -1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_zero_points_f32(QSIM_GRID_ASYMMETRIC, 8, &min, &scale, &zp, 0), QSIM_SUCCESS);
}
