// qsim_qlinear_add (qsim/qladd.h): onnxruntime's QLinearAdd (MLAS AVX2 + FMA arithmetic) from
// dequantized values. Oracles: the header's hand-computed example; saturation at the type's
// range; and, on every pair of uint8 levels, the dispatched variant (AVX2 on x86-64) equals the
// portable loop and a double-precision evaluation of the same formula (std::fma rounds once
// like fmaf). Bit equality with onnxruntime: tests/python/runtime_target/
// test_runtime_target_elementwise.py.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

extern "C" {
#include "qsim/qladd.h"
}

TEST(QLinearAdd, HeaderExample) {
    const qsim_qladd_params p = { 0.1f, 3.0f, 0.1f, 3.0f, 1.0f, 1.0f, -3.0f, 0.0f, 255.0f, 3.0f, 0.1f };
    const float a = 0.5f, b = 0.2f;
    float out = 0.0f;
    qsim_qlinear_add(&a, &b, &out, 0, 1, &p);
    EXPECT_EQ(out, (10.0f - 3.0f) * 0.1f);
}

TEST(QLinearAdd, SaturatesToTheTypeRange) {
    const qsim_qladd_params p = { 1.0f, 0.0f, 1.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f, 255.0f, 0.0f, 1.0f };
    const std::vector<float> a = { 200.0f, 0.0f }, b = { 100.0f, 0.0f };
    std::vector<float> out(2);
    qsim_qlinear_add(a.data(), b.data(), out.data(), 0, 2, &p);
    EXPECT_EQ(out, (std::vector<float>{ 255.0f, 0.0f }));
}

TEST(QLinearAdd, VariantsAgreeWithTheFormulaOnEveryPairOfLevels) {
    const float sa = 0.04363888f, sb = 0.028599493f, sc = 0.06553676f;
    const float za = 241.0f, zb = 242.0f, zc = 103.0f;
    const float ra = sa / sc, rb = sb / sc;
    const float fixed = zc - std::fma(ra, za, rb * zb);
    const qsim_qladd_params p = { sa, za, sb, zb, ra, rb, fixed, 0.0f, 255.0f, zc, sc };
    std::vector<float> a(65536), b(65536), got(65536), ref(65536);
    for (size_t i = 0; i < a.size(); i++) {
        a[i] = (float(i / 256) - za) * sa;
        b[i] = (float(i % 256) - zb) * sb;
    }
    qsim_qlinear_add(a.data(), b.data(), got.data(), 0, a.size(), &p);
    qsim_qlinear_add_ref(a.data(), b.data(), ref.data(), 0, a.size(), &p);
    EXPECT_EQ(got, ref);
    for (size_t i = 0; i < a.size(); i++) {
        const float qa = float(i / 256), qb = float(i % 256);
        const float k = std::nearbyint(std::fma(qa, ra, std::fma(qb, rb, fixed)));
        ASSERT_EQ(got[i], (std::fmin(std::fmax(k, 0.0f), 255.0f) - zc) * sc) << "pair " << i;
    }
}
