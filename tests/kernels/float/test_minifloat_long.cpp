// GoogleTest for qsim/minifloat.h on long runs: every variant of qsim_qdq_variants() against the
// reference, bit for bit,
//   - on runs of 2^22 elements and more (QSIM_STREAM_MIN: the ISA variants write them with
//     non-temporal stores when the output is 32-byte aligned), aligned and one float off, out of
//     place and in place, for the fp8 cast and the MX / NVFP4 block formats;
//   - through qsim_block_forward_f32, which hands rows whose length is a multiple of the block to
//     a kernel as one run (and other rows one by one).
// The block inputs are mostly finite blocks (the MX fast path of the ISA variants) at magnitudes
// from fp32 subnormals to the largest floats, with ties of the element grids, and some blocks
// holding NaN or +-Inf. Fixed seed (qsim_test::kSeed).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "minifloat_variants.h"
#include "qsim_test_util.h"

extern "C" {
#include "qsim/qdq.h"
}

namespace {

using qsim_test::Aligned;
using qsim_test::floats_match;

constexpr size_t kLong = (size_t{ 1 } << 22) + 37;

// Blocks of 32 at one random binade each (2^-149 .. 2^127), elements drawn on and between the
// points of a 3-bit-mantissa grid (ties of every MX element format), 1 block in 40 with a NaN
// or an Inf.
std::vector<float> long_inputs(size_t n, std::mt19937 & rng) {
    std::uniform_int_distribution<int> binade(-149, 124), half_steps(-32, 32), coin(0, 39);
    std::vector<float> x(n);
    for (size_t i = 0; i < n; i += 32) {
        const int e = binade(rng), special = coin(rng);
        for (size_t j = i; j < std::min(n, i + 32); j++) {
            x[j] = std::ldexp(static_cast<float>(half_steps(rng)) / 16.0f, e);
        }
        if (special < 2) {
            x[i + 5 < n ? i + 5 : i] = special ? std::numeric_limits<float>::quiet_NaN()
                                               : -std::numeric_limits<float>::infinity();
        }
    }
    return x;
}

qsim_block_format block(const char * name) {
    const qsim_float_format e2m1 = { 2, 1, QSIM_FLOAT_FINITE, 1 }, e4m3 = { 4, 3, QSIM_FLOAT_FN, 1 },
                            e5m2 = { 5, 2, QSIM_FLOAT_IEEE, 1 };
    const std::string n = name;
    qsim_block_format b{};
    const qsim_status st = n == "nvfp4"      ? qsim_block_format_nvfp4(0.0123f, &b)
                           : n == "mxint8"   ? qsim_block_format_mx(QSIM_BLOCK_MX_INT8, nullptr, &b)
                           : n == "mxfp4"    ? qsim_block_format_mx(QSIM_BLOCK_MX_FLOAT, &e2m1, &b)
                           : n == "mxfp8_e4m3" ? qsim_block_format_mx(QSIM_BLOCK_MX_FLOAT, &e4m3, &b)
                                             : qsim_block_format_mx(QSIM_BLOCK_MX_FLOAT, &e5m2, &b);
    EXPECT_EQ(st, QSIM_SUCCESS) << name;
    return b;
}

const char * const kBlockFormats[] = { "mxfp4", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8", "nvfp4" };

class MinifloatLong : public ::testing::TestWithParam<size_t> {
  protected:
    const qsim_qdq_kernels & k() const {
        size_t n = 0;
        return qsim_qdq_variants(&n)[GetParam()];
    }
    const qsim_qdq_kernels & ref() const {
        size_t n = 0;
        return qsim_qdq_variants(&n)[0];
    }
    void SetUp() override {
        if (!k().supported()) {
            GTEST_SKIP() << k().name << " is not supported by this CPU";
        }
    }
};

TEST_P(MinifloatLong, StreamedRunsMatchReference) {
    std::mt19937 rng(qsim_test::kSeed + 7);
    const std::vector<float> x = long_inputs(kLong, rng);
    const qsim_float_format  f = { 4, 3, QSIM_FLOAT_FN, 1 };
    qsim_minifloat           m;
    ASSERT_EQ(qsim_minifloat_init(&f, &m), QSIM_SUCCESS);
    std::vector<float> want(kLong);
    for (size_t shift : { 0, 1 }) {
        for (bool in_place : { false, true }) {
            const std::string how = std::string(shift ? " unaligned" : " aligned") + (in_place ? " in place" : "");
            ref().cast_minifloat(kLong, x.data(), want.data(), 0.037f, &m);
            Aligned in(x, shift), out(std::vector<float>(kLong, 0.0f), shift);
            k().cast_minifloat(kLong, in.p, in_place ? in.p : out.p, 0.037f, &m);
            ASSERT_TRUE(floats_match(kLong, x.data(), want.data(), in_place ? in.p : out.p))
                << k().name << " e4m3" << how;
            for (const char * name : kBlockFormats) {
                const qsim_block_format b = block(name);
                ref().block_float(kLong, x.data(), want.data(), &b);
                Aligned bin(x, shift), bout(std::vector<float>(kLong, 0.0f), shift);
                k().block_float(kLong, bin.p, in_place ? bin.p : bout.p, &b);
                ASSERT_TRUE(floats_match(kLong, x.data(), want.data(), in_place ? bin.p : bout.p))
                    << k().name << " " << name << how;
            }
        }
    }
}

// Rows of 64 (one run per call) and of 40 (row by row: the last block of each row holds 8).
TEST_P(MinifloatLong, BlockDriverMatchesRowByRowReference) {
    std::mt19937 rng(qsim_test::kSeed + 8);
    for (int64_t row_len : { 64, 40 }) {
        const int64_t rows = 301;
        const std::vector<float> x = long_inputs(static_cast<size_t>(rows * row_len), rng);
        for (const char * name : kBlockFormats) {
            const qsim_block_format b = block(name);
            std::vector<float> want(x.size()), got(x.size(), 0.0f);
            for (int64_t r = 0; r < rows; r++) {
                ref().block_float(static_cast<size_t>(row_len), x.data() + r * row_len,
                                  want.data() + r * row_len, &b);
            }
            qsim_block_forward_f32(&k(), &b, row_len, x.data(), got.data(), 0, 150);
            qsim_block_forward_f32(&k(), &b, row_len, x.data(), got.data(), 150, rows);
            ASSERT_TRUE(floats_match(x.size(), x.data(), want.data(), got.data()))
                << k().name << " " << name << " rows of " << row_len;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Variants, MinifloatLong, ::testing::ValuesIn(mf_test::variant_indices()),
                         mf_test::variant_name);

}  // namespace
