// qsim_requantize (qsim/requant.h): MLAS's requantization to dequantized output values.
// Oracles: the header's hand-computed example (ties to even); a loop written here,
// clamp(nearbyint(acc * m), lo, hi) * y_scale, for per-channel multipliers on a channels-first
// layout, along the last dim (inner 1) and a shared multiplier; the dispatched variant (AVX2 on
// x86-64) equals the portable loop; splitting the rows changes nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

extern "C" {
#include "qsim/requant.h"
}

TEST(Requantize, HeaderExample) {
    const float m = 0.25f;
    const qsim_requant_params p = { &m, 1, 1, 2, -128.0f, 127.0f, 0.5f };
    const std::vector<float> acc = { 10.0f, -7.0f };
    std::vector<float> out(2);
    qsim_requantize(acc.data(), out.data(), 0, 1, &p);
    EXPECT_EQ(out, (std::vector<float>{ 1.0f, -1.0f }));  // rint(2.5) = 2, rint(-1.75) = -2
}

TEST(Requantize, EqualsTheLoopForEveryLayout) {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> value(-40000.0f, 40000.0f), scale(0.0001f, 0.01f);
    struct Shape { size_t outer, channels, inner; };
    for (Shape s : { Shape{ 3, 5, 17 }, Shape{ 4, 33, 1 }, Shape{ 2, 1, 50 } }) {
        const size_t n = s.outer * s.channels * s.inner;
        std::vector<float> acc(n), m(s.channels), got(n), ref(n), split(n);
        for (auto & v : acc) v = std::round(value(rng));
        for (auto & v : m) v = scale(rng);
        const qsim_requant_params p = { m.data(), s.outer, s.channels, s.inner, 0.0f, 255.0f, 0.02f };
        qsim_requantize(acc.data(), got.data(), 0, s.outer, &p);
        qsim_requantize_ref(acc.data(), ref.data(), 0, s.outer, &p);
        qsim_requantize(acc.data(), split.data(), 0, 1, &p);
        qsim_requantize(acc.data(), split.data(), 1, s.outer, &p);
        EXPECT_EQ(got, ref);
        EXPECT_EQ(got, split);
        for (size_t i = 0; i < n; i++) {
            const float k = std::nearbyint(acc[i] * m[(i / s.inner) % s.channels]);
            ASSERT_EQ(got[i], std::fmin(std::fmax(k, 0.0f), 255.0f) * 0.02f) << "element " << i;
        }
    }
}
