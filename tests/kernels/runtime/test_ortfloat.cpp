// qsim_ort_layer_norm, qsim_ort_softmax, qsim_ort_gelu, qsim_ort_activation (qsim/ortfloat.h):
// onnxruntime's CPU float LayerNormalization, Softmax, Gelu and Sigmoid / SiLU / Tanh. Oracles:
// the header's hand-computed examples; values exact by construction (a row of equal values: each
// softmax output is fp32(1 / d); a centered row 0..7: mean 3.5 and variance 5.25 exactly;
// sigmoid(0) = 0.5); for random rows of every length 1..70 the double-precision formulas
// (std::exp, std::erf, std::tanh), which the fp32 kernels meet within their rounding; the
// dispatched variant (AVX-512 where the CPU has it) equals the portable one bit for bit; the row
// range splits the work without changing a value; bad arguments. Bit equality with onnxruntime
// itself: tests/python/runtime_target/test_runtime_target_floatops.py.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "qsim_test_util.h"

extern "C" {
#include "qsim/ortfloat.h"
}

namespace {

std::vector<float> random_rows(size_t rows, size_t d, uint32_t seed) {
    std::mt19937 gen(qsim_test::kSeed + seed);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> x(rows * d);
    for (float & v : x) v = normal(gen);
    return x;
}

TEST(OrtFloat, HeaderExamples) {
    const float zeros[2] = { 0.0f, 0.0f };
    float out[2];
    ASSERT_EQ(qsim_ort_softmax(zeros, out, 2, 0, 1), QSIM_SUCCESS);
    EXPECT_EQ(out[0], 0.5f);
    EXPECT_EQ(out[1], 0.5f);
    const float x[2] = { 1.0f, 3.0f }, ones[2] = { 1.0f, 1.0f };
    ASSERT_EQ(qsim_ort_layer_norm(x, ones, nullptr, 0.0f, out, 2, 0, 1), QSIM_SUCCESS);
    EXPECT_EQ(out[0], -1.0f);
    EXPECT_EQ(out[1], 1.0f);
}

TEST(OrtFloat, SigmoidIsOneHalfAtZeroAndSaturates) {
    const float x[3] = { 0.0f, 40.0f, -40.0f };
    float out[3];
    ASSERT_EQ(qsim_ort_activation(x, out, 0, 3, QSIM_ORT_SIGMOID), QSIM_SUCCESS);
    EXPECT_EQ(out[0], 0.5f);  // p = 0 * ... = 0, 0 / q + 0.5
    EXPECT_NEAR(out[1], 1.0f, 1e-7f);  // clamped at 18: 1 - 1.5e-8 rounds to 1 (or just below)
    EXPECT_NEAR(out[2], 0.0f, 1e-7f);
}

TEST(OrtFloat, SoftmaxOfEqualValuesIsTheReciprocal) {
    for (size_t d = 1; d <= 70; d++) {
        const std::vector<float> x(d, 2.5f);
        std::vector<float> out(d);
        ASSERT_EQ(qsim_ort_softmax(x.data(), out.data(), d, 0, 1), QSIM_SUCCESS);
        for (float v : out) ASSERT_EQ(v, 1.0f / float(d)) << "d=" << d;
    }
}

TEST(OrtFloat, CenteredLayerNormRowIsExact) {
    std::vector<float> x(8), ones(8, 1.0f), zeros(8, 0.0f), out(8);
    for (size_t i = 0; i < 8; i++) x[i] = float(i);
    ASSERT_EQ(qsim_ort_layer_norm(x.data(), ones.data(), zeros.data(), 0.0f, out.data(), 8, 0, 1),
              QSIM_SUCCESS);
    const float inv = 1.0f / std::sqrt(5.25f);
    for (size_t i = 0; i < 8; i++) EXPECT_EQ(out[i], (x[i] - 3.5f) * inv) << i;
}

TEST(OrtFloat, KernelsMeetTheDoubleFormulasOnEveryRowLength) {
    for (size_t d = 1; d <= 70; d++) {
        const size_t rows = 5;
        const std::vector<float> x = random_rows(rows, d, uint32_t(d));
        const std::vector<float> gamma = random_rows(1, d, 1000u), beta = random_rows(1, d, 2000u);
        std::vector<float> ln(x.size()), sm(x.size()), ge(x.size()), si(x.size()), th(x.size());
        ASSERT_EQ(qsim_ort_layer_norm(x.data(), gamma.data(), beta.data(), 1e-5f, ln.data(), d, 0,
                                      rows), QSIM_SUCCESS);
        ASSERT_EQ(qsim_ort_softmax(x.data(), sm.data(), d, 0, rows), QSIM_SUCCESS);
        ASSERT_EQ(qsim_ort_gelu(x.data(), ge.data(), 0, x.size()), QSIM_SUCCESS);
        ASSERT_EQ(qsim_ort_activation(x.data(), si.data(), 0, x.size(), QSIM_ORT_SILU),
                  QSIM_SUCCESS);
        ASSERT_EQ(qsim_ort_activation(x.data(), th.data(), 0, x.size(), QSIM_ORT_TANH),
                  QSIM_SUCCESS);
        for (size_t r = 0; r < rows; r++) {
            const float * row = x.data() + r * d;
            double mean = 0.0, var = 0.0, max = -INFINITY, sum = 0.0;
            for (size_t i = 0; i < d; i++) mean += row[i] / double(d);
            for (size_t i = 0; i < d; i++) var += (row[i] - mean) * (row[i] - mean) / double(d);
            for (size_t i = 0; i < d; i++) max = std::max(max, double(row[i]));
            for (size_t i = 0; i < d; i++) sum += std::exp(row[i] - max);
            for (size_t i = 0; i < d; i++) {
                const size_t at = r * d + i;
                const double norm = (row[i] - mean) / std::sqrt(var + 1e-5);
                EXPECT_NEAR(ln[at], norm * gamma[i] + beta[i], 1e-4 * (std::fabs(norm) + 1.0) *
                            (std::fabs(gamma[i]) + std::fabs(beta[i]) + 1.0)) << d << " " << at;
                const double p = std::exp(row[i] - max) / sum;
                // x - max rounds in fp32: a relative error of |x - max| * 2^-24 in the exponential
                EXPECT_NEAR(sm[at], p, (1e-6 + 1.2e-7 * (max - row[i])) * p + 1e-38)
                    << d << " " << at;
                const double g = 0.5 * row[i] * (1.0 + std::erf(row[i] / std::sqrt(2.0)));
                EXPECT_NEAR(ge[at], g, 1e-6 * std::fabs(row[i]) + 1e-7) << d << " " << at;
                const double silu = row[i] / (1.0 + std::exp(-double(row[i])));
                EXPECT_NEAR(si[at], silu, 1e-6 * std::fabs(row[i]) + 1e-7) << d << " " << at;
                EXPECT_NEAR(th[at], std::tanh(double(row[i])), 1e-6) << d << " " << at;
            }
        }
    }
}

TEST(OrtFloat, DispatchedVariantEqualsThePortableOne) {
    for (size_t d = 1; d <= 70; d++) {
        const size_t rows = 7;
        std::vector<float> x = random_rows(rows, d, uint32_t(100 + d));
        x[d / 2] = -INFINITY;
        x[x.size() - 1] = NAN;  // NaN in, NaN out in both (not onnxruntime's lane order)
        const std::vector<float> gamma = random_rows(1, d, 3000u), beta = random_rows(1, d, 4000u);
        std::vector<float> got(x.size()), ref(x.size());
        for (const float * b : { beta.data(), static_cast<const float *>(nullptr) }) {
            ASSERT_EQ(qsim_ort_layer_norm(x.data() + d, gamma.data(), b, 1e-5f, got.data(), d, 0,
                                          rows - 1), QSIM_SUCCESS);
            ASSERT_EQ(qsim_ort_layer_norm_ref(x.data() + d, gamma.data(), b, 1e-5f, ref.data(),
                                              d, 0, rows - 1), QSIM_SUCCESS);
            EXPECT_TRUE(qsim_test::floats_match((rows - 1) * d, x.data() + d, ref.data(),
                                                got.data())) << "layer norm d=" << d;
        }
        ASSERT_EQ(qsim_ort_softmax(x.data(), got.data(), d, 0, rows), QSIM_SUCCESS);
        ASSERT_EQ(qsim_ort_softmax_ref(x.data(), ref.data(), d, 0, rows), QSIM_SUCCESS);
        EXPECT_TRUE(qsim_test::floats_match(x.size(), x.data(), ref.data(), got.data()))
            << "softmax d=" << d;
        ASSERT_EQ(qsim_ort_gelu(x.data(), got.data(), 0, x.size()), QSIM_SUCCESS);
        ASSERT_EQ(qsim_ort_gelu_ref(x.data(), ref.data(), 0, x.size()), QSIM_SUCCESS);
        EXPECT_TRUE(qsim_test::floats_match(x.size(), x.data(), ref.data(), got.data()))
            << "gelu d=" << d;
        for (int kind = QSIM_ORT_SIGMOID; kind <= QSIM_ORT_TANH; kind++) {
            ASSERT_EQ(qsim_ort_activation(x.data(), got.data(), 0, x.size(), kind), QSIM_SUCCESS);
            ASSERT_EQ(qsim_ort_activation_ref(x.data(), ref.data(), 0, x.size(), kind),
                      QSIM_SUCCESS);
            EXPECT_TRUE(qsim_test::floats_match(x.size(), x.data(), ref.data(), got.data()))
                << "activation d=" << d << " kind=" << kind;
        }
    }
}

TEST(OrtFloat, MatMulIsAnFmaChainPerStrideOfK) {
    // n = 2: MLAS's K stride is 128 << 3 = 1024, so k = 3 is one chain: fma(a2, b2, fma(a1, b1,
    // a0 * b0)); with k = 1100 (two strides) the first 1024 products and the rest add at the end.
    const float a[6] = { 1.0f, 2.0f, 3.0f, 0.5f, 0.25f, 0.125f }, b[6] = { 1, 2, 3, 4, 5, 6 };
    float c[4];
    ASSERT_EQ(qsim_ort_matmul(a, b, c, 2, 3, 2, 0, 2), QSIM_SUCCESS);
    EXPECT_EQ(c[0], std::fma(3.0f, 5.0f, std::fma(2.0f, 3.0f, 1.0f * 1.0f)));
    EXPECT_EQ(c[3], std::fma(0.125f, 6.0f, std::fma(0.25f, 4.0f, 0.5f * 2.0f)));
    const size_t k = 1100;
    const std::vector<float> x = random_rows(2, k, 77u), y = random_rows(k, 2, 78u);
    std::vector<float> out(4), ref(4);
    ASSERT_EQ(qsim_ort_matmul(x.data(), y.data(), out.data(), 2, k, 2, 0, 2), QSIM_SUCCESS);
    ASSERT_EQ(qsim_ort_matmul_ref(x.data(), y.data(), ref.data(), 2, k, 2, 0, 2), QSIM_SUCCESS);
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < 2; j++) {
            float first = 0.0f, second = 0.0f;
            for (size_t kk = 0; kk < k; kk++) {
                float & sum = kk < 1024 ? first : second;
                sum         = std::fma(x[i * k + kk], y[kk * 2 + j], sum);
            }
            EXPECT_EQ(out[i * 2 + j], first + second) << i << " " << j;
            EXPECT_EQ(ref[i * 2 + j], first + second) << i << " " << j;
        }
    }
    EXPECT_EQ(qsim_ort_matmul(a, b, c, 1, 3, 2, 0, 1), QSIM_INVALID_ARGUMENT);  // M = 1: GEMV
}

TEST(OrtFloat, RowRangesSplitTheWorkWithoutChangingAValue) {
    const size_t rows = 6, d = 37;
    const std::vector<float> x = random_rows(rows, d, 7u), gamma(d, 1.5f);
    std::vector<float> whole(x.size()), split(x.size());
    ASSERT_EQ(qsim_ort_softmax(x.data(), whole.data(), d, 0, rows), QSIM_SUCCESS);
    ASSERT_EQ(qsim_ort_softmax(x.data(), split.data(), d, 0, 2), QSIM_SUCCESS);
    ASSERT_EQ(qsim_ort_softmax(x.data(), split.data(), d, 2, rows), QSIM_SUCCESS);
    EXPECT_EQ(whole, split);
    ASSERT_EQ(qsim_ort_layer_norm(x.data(), gamma.data(), nullptr, 1e-5f, whole.data(), d, 0,
                                  rows), QSIM_SUCCESS);
    ASSERT_EQ(qsim_ort_layer_norm(x.data(), gamma.data(), nullptr, 1e-5f, split.data(), d, 0, 3),
              QSIM_SUCCESS);
    ASSERT_EQ(qsim_ort_layer_norm(x.data(), gamma.data(), nullptr, 1e-5f, split.data(), d, 3,
                                  rows), QSIM_SUCCESS);
    EXPECT_EQ(whole, split);
}

TEST(OrtFloat, BadArgumentsAreRejected) {
    float v = 0.0f;
    EXPECT_EQ(qsim_ort_softmax(&v, &v, 0, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_softmax(nullptr, &v, 1, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_layer_norm(&v, nullptr, nullptr, 0.0f, &v, 1, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_layer_norm(&v, &v, nullptr, 0.0f, &v, 0, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_gelu(nullptr, &v, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_softmax_ref(&v, nullptr, 1, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_layer_norm_ref(nullptr, &v, nullptr, 0.0f, &v, 1, 0, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_gelu_ref(&v, nullptr, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_activation(nullptr, &v, 0, 1, QSIM_ORT_SIGMOID), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_activation_ref(&v, nullptr, 0, 1, QSIM_ORT_SILU), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_activation(&v, &v, 0, 1, 3), QSIM_INVALID_ARGUMENT);
}

}  // namespace
