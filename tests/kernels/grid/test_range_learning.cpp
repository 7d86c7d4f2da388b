// GoogleTest for qsim_range_qparams_f32, qsim_range_grads_f32 and qsim_held_range_f32
// (qsim/analyzers.h): the held range calibration gives a quantizer, the grid
// parameters of a learned range and the range's gradients from theirs. Oracles: known answers
// worked out by hand on ranges whose arithmetic is exact (torch's autograd is the bit-for-bit
// oracle of tests/python/quantization/test_range_learning_op.py), and qsim_zero_points_f32.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <vector>

#include "qsim_test_util.h"

extern "C" {
#include "qsim/analyzers.h"
}

namespace {

struct Grads {
    float dmin, dmax;
};

Grads grads(qsim_grid_kind grid, int bitwidth, float min, float max, float ds, float dzp) {
    Grads g{ -7.0f, -7.0f };
    EXPECT_EQ(qsim_range_grads_f32(grid, bitwidth, &min, &max, &ds, &dzp, &g.dmin, &g.dmax, 1),
              QSIM_SUCCESS);
    return g;
}

}  // namespace

TEST(RangeLearning, QparamsKnownAnswers) {
    // 2 bits asymmetric on [-1.5, 1.5]: scale 3 / 3 = 1, zero point 0 - rint(-1.5) = 2 (ties to
    // even); 8 bits symmetric on [-1, 1]: scale 2 / 255, zero point 0; unsigned symmetric with
    // min < 0: 128.
    const float min[3] = { -1.5f, -1.0f, -1.0f }, max[3] = { 1.5f, 1.0f, 1.0f };
    float       s[3], z[3];
    ASSERT_EQ(qsim_range_qparams_f32(QSIM_GRID_ASYMMETRIC, 2, min, max, s, z, 1), QSIM_SUCCESS);
    EXPECT_EQ(s[0], 1.0f);
    EXPECT_EQ(z[0], 2.0f);
    ASSERT_EQ(qsim_range_qparams_f32(QSIM_GRID_SYMMETRIC, 8, min + 1, max + 1, s + 1, z + 1, 1),
              QSIM_SUCCESS);
    EXPECT_EQ(qsim_test::bits(s[1]), qsim_test::bits(2.0f / 255.0f));
    EXPECT_EQ(qsim_test::bits(z[1]), qsim_test::bits(0.0f));
    ASSERT_EQ(qsim_range_qparams_f32(QSIM_GRID_UNSIGNED_SYMMETRIC, 8, min + 2, max + 2, s + 2,
                                     z + 2, 1),
              QSIM_SUCCESS);
    EXPECT_EQ(z[2], 128.0f);
}

TEST(RangeLearning, QparamsZeroPointIsTheZeroPointRule) {
    const std::vector<float> min{ -0.3f, -2.0f, 0.25f, -1e-3f }, max{ 0.7f, 5.0f, 3.0f, 1e-3f };
    std::vector<float>       s(4), z(4), want(4);
    ASSERT_EQ(qsim_range_qparams_f32(QSIM_GRID_ASYMMETRIC, 8, min.data(), max.data(), s.data(),
                                     z.data(), 4),
              QSIM_SUCCESS);
    ASSERT_EQ(qsim_zero_points_f32(QSIM_GRID_ASYMMETRIC, 8, min.data(), s.data(), want.data(), 4),
              QSIM_SUCCESS);
    for (size_t i = 0; i < 4; i++) {
        EXPECT_EQ(qsim_test::bits(s[i]), qsim_test::bits((max[i] - min[i]) / 255.0f)) << "i=" << i;
        EXPECT_EQ(qsim_test::bits(z[i]), qsim_test::bits(want[i])) << "i=" << i;
    }
}

TEST(RangeLearning, SymmetricGradientsSplitTheScaleGradient) {
    // scale = (max - min) / 255: dmax = ds / 255, dmin = -ds / 255; the zero point is constant.
    for (qsim_grid_kind g : { QSIM_GRID_SYMMETRIC, QSIM_GRID_STRICT_SYMMETRIC,
                              QSIM_GRID_UNSIGNED_SYMMETRIC }) {
        const int   bits = 8;
        const float n    = g == QSIM_GRID_STRICT_SYMMETRIC ? 254.0f : 255.0f;
        const Grads r    = grads(g, bits, -1.0f, 1.0f, n, 123.0f);
        EXPECT_EQ(r.dmax, 1.0f) << "grid " << g;
        EXPECT_EQ(r.dmin, -1.0f) << "grid " << g;
    }
}

TEST(RangeLearning, AsymmetricGradientsKnownAnswers) {
    // 2 bits on [-1.5, 1.5]: scale 1, u = 0 - rint(-1.5) = 2 inside [0, 3], so with ds = 3 and
    // dzp = 1: g1 = 1, dq = -1, g2 = (1 * (-1.5 / 1 / 1)) / 3 = -0.5;
    // dmin = (-1 / 1 + 0.5) + -1 = -1.5, dmax = -0.5 + 1 = 0.5.
    Grads r = grads(QSIM_GRID_ASYMMETRIC, 2, -1.5f, 1.5f, 3.0f, 1.0f);
    EXPECT_EQ(r.dmin, -1.5f);
    EXPECT_EQ(r.dmax, 0.5f);
    // On [1.5, 4.5] (scale 1), u = -2 is clamped: the zero point passes no gradient, dq = -0 and
    // g2 = +0, so dmin = (-0 + -0) + -1 = -1 and dmax = +0 + 1 = 1.
    r = grads(QSIM_GRID_ASYMMETRIC, 2, 1.5f, 4.5f, 3.0f, 1.0f);
    EXPECT_EQ(r.dmin, -1.0f);
    EXPECT_EQ(r.dmax, 1.0f);
    // Zero gradients in give zeros of IEEE's signs: dq = -0, g1 = +0, g2 = (+0 * -1.5) / 3 = -0,
    // so dmin = (-0 / 1 + +0) + -0 = +0 and dmax = -0 + +0 = +0; with ds = -0, g1 = -0 and both
    // sums give -0 + -0 = -0 for dmax, (-0 + +0) + +0 = +0 for dmin.
    r = grads(QSIM_GRID_ASYMMETRIC, 2, -1.5f, 1.5f, 0.0f, 0.0f);
    EXPECT_EQ(qsim_test::bits(r.dmin), qsim_test::bits(0.0f));
    EXPECT_EQ(qsim_test::bits(r.dmax), qsim_test::bits(0.0f));
    r = grads(QSIM_GRID_ASYMMETRIC, 2, -1.5f, 1.5f, -0.0f, 0.0f);
    EXPECT_EQ(qsim_test::bits(r.dmin), qsim_test::bits(0.0f));
    EXPECT_EQ(qsim_test::bits(r.dmax), qsim_test::bits(-0.0f));
}

TEST(RangeLearning, InvalidArguments) {
    float v = 1.0f, w = 2.0f, out1 = 0.0f, out2 = 0.0f;
    EXPECT_EQ(qsim_range_qparams_f32(QSIM_GRID_ASYMMETRIC, 1, &v, &w, &out1, &out2, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_range_qparams_f32(static_cast<qsim_grid_kind>(9), 8, &v, &w, &out1, &out2, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_range_qparams_f32(QSIM_GRID_ASYMMETRIC, 8, nullptr, &w, &out1, &out2, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_range_qparams_f32(QSIM_GRID_ASYMMETRIC, 8, &v, &w, &out1, &out2, -1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_range_grads_f32(QSIM_GRID_ASYMMETRIC, 17, &v, &w, &v, &v, &out1, &out2, 1),
              QSIM_INVALID_ARGUMENT);
    // dzp is read only on an asymmetric grid.
    EXPECT_EQ(qsim_range_grads_f32(QSIM_GRID_ASYMMETRIC, 8, &v, &w, &v, nullptr, &out1, &out2, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_range_grads_f32(QSIM_GRID_SYMMETRIC, 8, &v, &w, &v, nullptr, &out1, &out2, 1),
              QSIM_SUCCESS);
    EXPECT_EQ(qsim_range_grads_f32(QSIM_GRID_SYMMETRIC, 8, &v, &w, &v, &v, nullptr, &out2, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(out1, -v / 255.0f);
}

TEST(HeldRange, KnownAnswers) {
    // 255 steps. [0.5, 2]: min widened to 0. [-1, -0.5]: max widened to 0. [0, 0]: narrower than
    // 255 steps of FLT_EPSILON, so max grows by 255 * FLT_EPSILON. [-inf, inf]: clamped to
    // +-FLT_MAX. A fixed min replaces the observed one. -0 keeps its sign (clamp keeps an equal
    // value), as torch.clamp does.
    const float min[5] = { 0.5f, -1.0f, 0.0f, -INFINITY, -0.0f }, max[5] = { 2.0f, -0.5f, 0.0f, INFINITY, 1.0f };
    float       lo[5], hi[5];
    int64_t     unseen = 7;
    ASSERT_EQ(qsim_held_range_f32(255, min, max, nullptr, lo, hi, 5, &unseen), QSIM_SUCCESS);
    EXPECT_EQ(unseen, -1);
    const float want_lo[5] = { 0.0f, -1.0f, 0.0f, -FLT_MAX, -0.0f }, want_hi[5] = { 2.0f, 0.0f, 255.0f * FLT_EPSILON, FLT_MAX, 1.0f };
    for (int i = 0; i < 5; i++) {
        EXPECT_EQ(lo[i], want_lo[i]) << "encoding " << i;
        EXPECT_EQ(std::signbit(lo[i]), std::signbit(want_lo[i])) << "encoding " << i;
        EXPECT_EQ(hi[i], want_hi[i]) << "encoding " << i;
    }
    const float fixed = -0.25f;
    ASSERT_EQ(qsim_held_range_f32(255, min, max, &fixed, lo, hi, 2, &unseen), QSIM_SUCCESS);
    EXPECT_EQ(lo[0], -0.25f);
    EXPECT_EQ(lo[1], -0.25f);
    EXPECT_EQ(hi[1], 0.0f);
}

TEST(HeldRange, FirstEncodingWithoutDataAndInvalidArguments) {
    const float min[3] = { 0.0f, INFINITY, NAN }, max[3] = { 1.0f, -INFINITY, 1.0f };
    float       lo[3], hi[3];
    int64_t     unseen = 7;
    ASSERT_EQ(qsim_held_range_f32(15, min, max, nullptr, lo, hi, 3, &unseen), QSIM_SUCCESS);
    EXPECT_EQ(unseen, 1);
    EXPECT_TRUE(std::isnan(lo[2]));
    EXPECT_EQ(qsim_held_range_f32(0, min, max, nullptr, lo, hi, 1, &unseen), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_held_range_f32(15, min, max, nullptr, lo, hi, -1, &unseen), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_held_range_f32(15, nullptr, max, nullptr, lo, hi, 1, &unseen), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_held_range_f32(15, min, max, nullptr, lo, hi, 1, nullptr), QSIM_INVALID_ARGUMENT);
}
