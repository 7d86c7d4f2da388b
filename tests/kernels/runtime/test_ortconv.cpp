// qsim_ort_sgemm_stride_k, qsim_ort_sgemm (qsim/ortconv.h): MLAS's fp32 SGEMM accumulation
// order. Oracles: the header's hand-computed example; MLAS's K block worked out by hand for
// the shapes of the header's rule; hand-computed sums where the order shows (an FMA keeps the
// product's low bits that a separate product rounds away; the blocks add to a Gemm's bias);
// the 64-column tiles and the row range do not change a value (each column and each row alone
// give the same bits); the one-row kernels' sums in the orders of their groups of 4, 2, 1
// outputs (transposed B) and chunks of 4, 2, 1 rows (hand-computed ties); the dispatched variant (AVX-512 where the CPU has it) equals the portable
// one bit for bit; bad arguments. Bit equality with onnxruntime itself:
// tests/python/runtime_target/test_runtime_target_floatconv.py.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "qsim_test_util.h"

extern "C" {
#include "qsim/ortconv.h"
}

namespace {

TEST(OrtConv, HeaderExample) {
    const float a[2] = { 1.0f, 2.0f }, b[2] = { 3.0f, 4.0f };
    float c[1] = { 0.5f };
    ASSERT_EQ(qsim_ort_sgemm_stride_k(1, 2), 1024u);
    ASSERT_EQ(qsim_ort_sgemm(a, b, c, 1, 1, 2, 128, 0, 0, 1), QSIM_SUCCESS);
    EXPECT_EQ(c[0], 11.0f);
    c[0] = 0.5f;
    ASSERT_EQ(qsim_ort_sgemm(a, b, c, 1, 1, 2, 128, 1, 0, 1), QSIM_SUCCESS);
    EXPECT_EQ(c[0], 11.5f);
}

TEST(OrtConv, StrideKFollowsMlasRule) {
    EXPECT_EQ(qsim_ort_sgemm_stride_k(100, 16), 16u);    // n >= k: 128 halved down to 16
    EXPECT_EQ(qsim_ort_sgemm_stride_k(10, 16), 1024u);   // n < k: N stride 16, K stride 1024
    EXPECT_EQ(qsim_ort_sgemm_stride_k(1000, 300), 128u); // n >= k, k above 128: 128
    EXPECT_EQ(qsim_ort_sgemm_stride_k(64, 144), 256u);   // n < k: N stride 64, K stride 256
    EXPECT_EQ(qsim_ort_sgemm_stride_k(1, 5000), 1024u);  // N stride stops at 16
    EXPECT_EQ(qsim_ort_sgemm_stride_k(100, 101), 128u);  // 128 / 2 < 100: unchanged
}

TEST(OrtConv, BlocksSumFromZeroByFmaThenAdd) {
    const float e = 1.0f + std::ldexp(1.0f, -12);  // e * e = 1 + 2^-11 + 2^-24
    const float a[2] = { 1.0f, e }, b[2] = { -1.0f, e };
    float c[1];
    ASSERT_EQ(qsim_ort_sgemm(a, b, c, 1, 1, 2, 2, 0, 0, 1), QSIM_SUCCESS);
    EXPECT_EQ(c[0], std::ldexp(1.0f, -11) + std::ldexp(1.0f, -24));  // fmaf keeps 2^-24
    ASSERT_EQ(qsim_ort_sgemm(a, b, c, 1, 1, 2, 1, 0, 0, 1), QSIM_SUCCESS);
    EXPECT_EQ(c[0], std::ldexp(1.0f, -11));  // block 2 alone: 1 + 2^-11 (tie to even), - 1
    c[0] = 0.5f;
    ASSERT_EQ(qsim_ort_sgemm(a, b, c, 1, 1, 2, 2, 1, 0, 1), QSIM_SUCCESS);
    EXPECT_EQ(c[0], 0.5f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -24));
}

TEST(OrtConv, TilesAndRowRangesDoNotChangeAValue) {
    const size_t m = 3, n = 150, k = 300;
    std::mt19937 gen(qsim_test::kSeed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> a(m * k), b(k * n), full(m * n), rows(m * n);
    for (float & v : a) v = normal(gen);
    for (float & v : b) v = normal(gen);
    const size_t sk = qsim_ort_sgemm_stride_k(n, k);
    ASSERT_EQ(qsim_ort_sgemm(a.data(), b.data(), full.data(), m, n, k, sk, 0, 0, m), QSIM_SUCCESS);
    for (size_t i = 0; i < m; ++i) {
        ASSERT_EQ(qsim_ort_sgemm(a.data(), b.data(), rows.data(), m, n, k, sk, 0, i, i + 1),
                  QSIM_SUCCESS);
    }
    for (size_t j = 0; j < n; ++j) {
        std::vector<float> column(k);
        for (size_t kk = 0; kk < k; ++kk) column[kk] = b[kk * n + j];
        for (size_t i = 0; i < m; ++i) {
            float one = 0.0f;
            ASSERT_EQ(qsim_ort_sgemm(a.data() + i * k, column.data(), &one, 1, 1, k, sk, 0, 0, 1),
                      QSIM_SUCCESS);
            ASSERT_EQ(full[i * n + j], one) << i << "," << j;
            ASSERT_EQ(rows[i * n + j], one) << i << "," << j;
        }
    }
}

TEST(OrtConv, DispatchedVariantEqualsPortable) {
    std::mt19937 gen(qsim_test::kSeed + 1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (size_t n : {1u, 15u, 64u, 129u}) {
        const size_t m = 3, k = 700;
        std::vector<float> a(m * k), b(k * n), bias(m * n), fast(m * n), ref(m * n);
        for (float & v : a) v = normal(gen);
        for (float & v : b) v = normal(gen);
        for (float & v : bias) v = normal(gen);
        const size_t sk = qsim_ort_sgemm_stride_k(n, k);
        for (int accumulate : {0, 1}) {
            fast = bias;
            ref = bias;
            ASSERT_EQ(qsim_ort_sgemm(a.data(), b.data(), fast.data(), m, n, k, sk, accumulate, 0, m),
                      QSIM_SUCCESS);
            ASSERT_EQ(qsim_ort_sgemm_ref(a.data(), b.data(), ref.data(), m, n, k, sk, accumulate,
                                         0, m),
                      QSIM_SUCCESS);
            for (size_t i = 0; i < m * n; ++i) ASSERT_EQ(fast[i], ref[i]) << "n=" << n << " " << i;
        }
    }
}

TEST(OrtConv, OneRowKernelAddsLanesInItsGroupsOrder) {
    // Lanes {1, 2^-24, 2^-24, 2^-24, 0...}: a group of 4 adds them in sequence (each 2^-24 a
    // tie rounded back to 1); groups of 2 and 1 first pair the small ones: 1 + 2^-23.
    const float t = std::ldexp(1.0f, -24), a[4] = { 1.0f, 1.0f, 1.0f, 1.0f };
    std::vector<float> b;
    for (int j = 0; j < 7; ++j) b.insert(b.end(), { 1.0f, t, t, t });
    float c[7];
    ASSERT_EQ(qsim_ort_sgemm_m1_transb(a, b.data(), c, 5, 4, 0), QSIM_SUCCESS);
    for (int j = 0; j < 4; ++j) EXPECT_EQ(c[j], 1.0f) << j;
    EXPECT_EQ(c[4], 1.0f + 2 * t);  // the group of 1
    ASSERT_EQ(qsim_ort_sgemm_m1_transb(a, b.data(), c, 7, 4, 0), QSIM_SUCCESS);
    EXPECT_EQ(c[4], 1.0f + 2 * t);  // the group of 2
    EXPECT_EQ(c[5], 1.0f + 2 * t);
    EXPECT_EQ(c[6], 1.0f + 2 * t);  // then 1
    for (float & v : c) v = 0.5f;
    ASSERT_EQ(qsim_ort_sgemm_m1_transb(a, b.data(), c, 5, 4, 1), QSIM_SUCCESS);
    EXPECT_EQ(c[0], 1.5f);  // + the broadcast bias
    EXPECT_EQ(qsim_ort_sgemm_m1_transb(a, b.data(), c, 5, 0, 0), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_sgemm_m1_transb(a, nullptr, c, 5, 4, 0), QSIM_INVALID_ARGUMENT);
}

TEST(OrtConv, OneRowKernelWithoutTransposeAddsChunksOfFourThenTwo) {
    // One output, k = 6, products {1, t, t, t, t, t}: the chunk of 4 rounds back to 1 (ties),
    // the chunk of 2 adds 2t first: 1 + 2t (in order one at a time: 1). Blocks of 2: each
    // block's chunk of 2 is summed before it is added: 1, then 1 + 2t, then 1 + 4t.
    const float t = std::ldexp(1.0f, -24);
    const float a[6] = { 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f }, b[6] = { 1.0f, t, t, t, t, t };
    float c[1] = { 7.0f };
    ASSERT_EQ(qsim_ort_sgemm_m1(a, b, c, 1, 6, 6, 0), QSIM_SUCCESS);
    EXPECT_EQ(c[0], 1.0f + 2 * t);
    ASSERT_EQ(qsim_ort_sgemm_m1(a, b, c, 1, 6, 2, 0), QSIM_SUCCESS);
    EXPECT_EQ(c[0], 1.0f + 4 * t);
    c[0] = 0.5f;
    ASSERT_EQ(qsim_ort_sgemm_m1(a, b, c, 1, 6, 6, 1), QSIM_SUCCESS);
    EXPECT_EQ(c[0], 1.5f + 2 * t);  // 1 + 0.5, then + 2t (ulp of 1.5 is 2^-23 = 2t)
    EXPECT_EQ(qsim_ort_sgemm_m1(a, b, c, 1, 6, 0, 0), QSIM_INVALID_ARGUMENT);
}

TEST(OrtConv, BadArguments) {
    const float a[1] = { 1.0f }, b[1] = { 1.0f };
    float c[1];
    EXPECT_EQ(qsim_ort_sgemm(nullptr, b, c, 1, 1, 1, 1, 0, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_sgemm(a, b, nullptr, 1, 1, 1, 1, 0, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_sgemm(a, b, c, 1, 1, 0, 1, 0, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_sgemm(a, b, c, 1, 1, 1, 0, 0, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_sgemm(a, b, c, 1, 1, 1, 1, 0, 0, 2), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_sgemm_ref(a, b, c, 1, 1, 1, 1, 0, 0, 2), QSIM_INVALID_ARGUMENT);
}

}  // namespace
