// qsim_matmulnbits_q8 (qsim/matmulnbits.h): onnxruntime's 8-bit MatMulNBits with int8 compute.
// Oracles: a hand-computed single-block product (each fp32 step written out), and for random
// data the double-precision value of the same int8-compute formula (the activations quantized
// per block, exact integer products, scales applied in double), which the fp32 kernel must meet
// within its rounding; the row range splits the work without changing a value; bad arguments.
// Bit equality with onnxruntime's own kernel: tests/python/runtime_target/
// test_runtime_target_matmulnbits.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

extern "C" {
#include "qsim/matmulnbits.h"
}

namespace {

// sum over blocks of sa * sb * (qa . (b - zp)) in double, qa as MLAS quantizes a; *magnitude:
// the sum of the blocks' sa * sb * sum |qa| * 255, which bounds every fp32 partial sum.
double oracle(const float * a, const uint8_t * b, const float * scale, const uint8_t * zp,
              size_t k, double * magnitude) {
    double total = 0.0;
    *magnitude = 0.0;
    for (size_t begin = 0, blk = 0; begin < k; begin += 32, blk++) {
        const size_t len = std::min<size_t>(32, k - begin);
        float amax = 0.0f;
        for (size_t i = 0; i < len; i++) amax = std::max(amax, std::fabs(a[begin + i]));
        const float sa = amax / 127.0f, inverse = amax != 0.0f ? 127.0f / amax : 0.0f;
        int64_t dot = 0, size = 0;
        for (size_t i = 0; i < len; i++) {
            const int64_t q = static_cast<int64_t>(std::nearbyint(a[begin + i] * inverse));
            dot += q * (static_cast<int64_t>(b[begin + i]) - zp[blk]);
            size += q < 0 ? -q : q;
        }
        total += double(sa) * double(scale[blk]) * double(dot);
        *magnitude += double(sa) * double(scale[blk]) * double(size) * 255.0;
    }
    return total;
}

}  // namespace

TEST(MatMulNBits, OneBlockStepByStep) {
    std::vector<float> a(32, 0.0f);
    std::vector<uint8_t> b(32, 128);
    a[0] = 1.0f;
    b[0] = 129;
    const float scale = 0.5f;
    const uint8_t zp = 128;
    float out = 0.0f;
    ASSERT_EQ(qsim_matmulnbits_q8(a.data(), b.data(), &scale, &zp, nullptr, &out, 1, 32, 0, 1),
              QSIM_SUCCESS);
    const float sa = 1.0f / 127.0f;                                  // amax / 127
    const float lane0 = std::fma(127.0f * 129.0f, sa * scale, 0.0f);  // qa = 127, raw product
    const float correction = std::fma(sa * 127.0f, -scale * 128.0f, 0.0f);  // block sum * zp
    EXPECT_EQ(out, lane0 + correction);
    EXPECT_NEAR(out, 0.5f, 1e-6f);
}

TEST(MatMulNBits, MeetsTheDoubleFormulaAndRowSplitsAgree) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> value(-3.0f, 3.0f), step(0.001f, 0.02f);
    for (size_t k : { 5u, 32u, 48u, 128u, 160u, 300u }) {
        for (size_t n : { 1u, 4u, 7u }) {
            const size_t rows = 5, blocks = (k + 31) / 32;
            std::vector<float> a(rows * k), scale(n * blocks), bias(n), whole(rows * n),
                parts(rows * n);
            std::vector<uint8_t> b(n * k), zp(n * blocks);
            for (auto & v : a) v = value(rng);
            for (auto & v : b) v = static_cast<uint8_t>(rng() % 256);
            for (auto & v : scale) v = step(rng);
            for (auto & v : zp) v = static_cast<uint8_t>(rng() % 256);
            for (auto & v : bias) v = value(rng);
            ASSERT_EQ(qsim_matmulnbits_q8(a.data(), b.data(), scale.data(), zp.data(), bias.data(),
                                          whole.data(), n, k, 0, rows), QSIM_SUCCESS);
            ASSERT_EQ(qsim_matmulnbits_q8(a.data(), b.data(), scale.data(), zp.data(), bias.data(),
                                          parts.data(), n, k, 0, 2), QSIM_SUCCESS);
            ASSERT_EQ(qsim_matmulnbits_q8(a.data(), b.data(), scale.data(), zp.data(), bias.data(),
                                          parts.data(), n, k, 2, rows), QSIM_SUCCESS);
            EXPECT_EQ(whole, parts) << "k = " << k << ", n = " << n;
            for (size_t r = 0; r < rows; r++) {
                for (size_t j = 0; j < n; j++) {
                    double magnitude = 0.0;
                    const double want = oracle(&a[r * k], &b[j * k], &scale[j * blocks],
                                               &zp[j * blocks], k, &magnitude) + bias[j];
                    EXPECT_NEAR(whole[r * n + j], want, 2e-6 * (magnitude + std::fabs(bias[j])))
                        << "k = " << k << ", n = " << n << ", row " << r << ", column " << j;
                }
            }
        }
    }
}

TEST(MatMulNBits, RejectsBadArguments) {
    const float a = 1.0f, scale = 1.0f;
    const uint8_t b = 1, zp = 0;
    float out = 0.0f;
    EXPECT_EQ(qsim_matmulnbits_q8(&a, &b, &scale, &zp, nullptr, &out, 1, 0, 0, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_matmulnbits_q8(nullptr, &b, &scale, &zp, nullptr, &out, 1, 1, 0, 1),
              QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_matmulnbits_q8(&a, &b, &scale, nullptr, nullptr, &out, 1, 1, 0, 1),
              QSIM_INVALID_ARGUMENT);
}
