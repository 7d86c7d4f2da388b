// qsim_u8s8_satmm (qsim/satmm.h): the uint8 x int8 product with int16 pair saturation.
// Oracles: hand-computed pairs, and an int64 loop written here for every shape (odd k, k below and
// above the 32-element AVX2 step); the dispatched variant (AVX2 on x86-64) equals the portable one.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

extern "C" {
#include "qsim/satmm.h"
}

namespace {

std::vector<int32_t> oracle(const std::vector<uint8_t> & a, const std::vector<int8_t> & w, size_t rows,
                            size_t n, size_t k) {
    std::vector<int32_t> out(rows * n);
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < n; j++) {
            int64_t acc = 0;
            for (size_t p = 0; p < k; p += 2) {
                int64_t s = int64_t(a[r * k + p]) * w[j * k + p];
                if (p + 1 < k) {
                    s += int64_t(a[r * k + p + 1]) * w[j * k + p + 1];
                }
                acc += s > 32767 ? 32767 : (s < -32768 ? -32768 : s);
            }
            out[r * n + j] = static_cast<int32_t>(acc);
        }
    }
    return out;
}

}  // namespace

TEST(Satmm, PairsSaturateInInt16) {
    const std::vector<uint8_t> a = { 255, 255, 255, 255, 10, 3 };
    const std::vector<int8_t>  w = { 127, 127, -128, -128, 5, -7 };
    int32_t out = 0;
    qsim_u8s8_satmm(a.data(), w.data(), &out, 1, 6, 0, 1);
    EXPECT_EQ(out, 32767 - 32768 + (50 - 21));  // 64770 -> 32767, -65280 -> -32768, 29 exact
}

TEST(Satmm, EqualsTheOracleAndThePortableLoopOnEveryShape) {
    std::mt19937 rng(7);
    for (size_t k : { 1u, 2u, 7u, 31u, 32u, 33u, 64u, 150u }) {
        const size_t rows = 5, n = 3;
        std::vector<uint8_t> a(rows * k);
        std::vector<int8_t>  w(n * k);
        for (auto & v : a) v = static_cast<uint8_t>(rng() % 256);
        for (auto & v : w) v = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
        std::vector<int32_t> got(rows * n), ref(rows * n);
        qsim_u8s8_satmm(a.data(), w.data(), got.data(), n, k, 0, rows);
        qsim_u8s8_satmm_ref(a.data(), w.data(), ref.data(), n, k, 0, rows);
        EXPECT_EQ(got, oracle(a, w, rows, n, k)) << "k = " << k;
        EXPECT_EQ(ref, got) << "k = " << k;
    }
}

TEST(Satmm, WritesOnlyItsRows) {
    const std::vector<uint8_t> a(4 * 2, 200);
    const std::vector<int8_t>  w(2, 100);
    std::vector<int32_t> out(4, -1);
    qsim_u8s8_satmm(a.data(), w.data(), out.data(), 1, 2, 1, 3);
    EXPECT_EQ(out, (std::vector<int32_t>{ -1, 32767, 32767, -1 }));
}
