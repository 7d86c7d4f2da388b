// GoogleTest, host only: the arithmetic of the CUDA minifloat and block kernels
// (kernels/cuda/minifloat_cuda_math.h, compiled here by the host compiler) against the C reference
// kernels of qsim/minifloat.h, bit for bit, on random bit patterns and block data for every
// standard format. On the device the same functions use IEEE round-to-nearest intrinsics, so what
// passes here is what the GPU computes (NaN payloads aside); no GPU is needed.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cuda/minifloat_cuda_math.h"
#include "qsim_test_util.h"

namespace {

using qsim_test::floats_match;
using qsim_test::from_bits;

TEST(MinifloatCudaMath, CastMatchesReference) {
    std::mt19937 rng(qsim_test::kSeed + 10);
    std::uniform_int_distribution<uint32_t> any;
    const qsim_float_format formats[] = { { 4, 3, QSIM_FLOAT_FN, 1 }, { 5, 2, QSIM_FLOAT_IEEE, 0 },
                                          { 4, 3, QSIM_FLOAT_FNUZ, 0 }, { 2, 1, QSIM_FLOAT_FINITE, 1 },
                                          { 3, 0, QSIM_FLOAT_FNUZ, 1 }, { 8, 7, QSIM_FLOAT_IEEE, 0 } };
    std::vector<float> x(1 << 14), want(x.size()), got(x.size());
    for (const auto & f : formats) {
        qsim_minifloat m;
        ASSERT_EQ(qsim_minifloat_init(&f, &m), QSIM_SUCCESS);
        for (float s : { 1.0f, 0.037f }) {
            for (auto & v : x) {
                v = from_bits(any(rng));
            }
            qsim_minifloat_f32_ref(x.size(), x.data(), want.data(), s, &m);
            for (size_t i = 0; i < x.size(); i++) {
                got[i] = qsim_cuda::mf_scaled(x[i], s, m);
            }
            ASSERT_TRUE(floats_match(x.size(), x.data(), want.data(), got.data()))
                << "e" << f.exponent_bits << "m" << f.mantissa_bits << " scale " << s;
        }
    }
}

TEST(MinifloatCudaMath, BlocksMatchReference) {
    std::mt19937 rng(qsim_test::kSeed + 11);
    std::normal_distribution<float> g;
    std::uniform_int_distribution<int> mag(-140, 100), coin(0, 50);
    std::vector<float> x(4000), want(x.size()), got(x.size());
    for (size_t i = 0; i < x.size(); i++) {
        const int c = coin(rng);
        x[i] = c == 0 ? NAN : c == 1 ? INFINITY : std::ldexp(g(rng), mag(rng) / 8 * 8);
    }
    const qsim_float_format e4m3 = { 4, 3, QSIM_FLOAT_FN, 1 }, e2m1 = { 2, 1, QSIM_FLOAT_FINITE, 1 };
    qsim_block_format b[4];
    ASSERT_EQ(qsim_block_format_mx(QSIM_BLOCK_MX_FLOAT, &e4m3, &b[0]), QSIM_SUCCESS);
    ASSERT_EQ(qsim_block_format_mx(QSIM_BLOCK_MX_FLOAT, &e2m1, &b[1]), QSIM_SUCCESS);
    ASSERT_EQ(qsim_block_format_mx(QSIM_BLOCK_MX_INT8, nullptr, &b[2]), QSIM_SUCCESS);
    ASSERT_EQ(qsim_block_format_nvfp4(0.0123f, &b[3]), QSIM_SUCCESS);
    for (const auto & f : b) {
        qsim_block_float_f32_ref(x.size(), x.data(), want.data(), &f);
        for (size_t i = 0; i < x.size(); i += f.block) {
            uint32_t amax = 0;
            for (size_t j = i; j < i + f.block; j++) {
                amax = std::max(amax, qsim_cuda::f32_bits(x[j]) & 0x7fffffffu);
            }
            const float s = qsim_cuda::block_scale(amax, f);
            for (size_t j = i; j < i + f.block; j++) {
                got[j] = qsim_cuda::block_element(x[j], s, f);
            }
        }
        ASSERT_TRUE(floats_match(x.size(), x.data(), want.data(), got.data())) << "kind " << f.kind;
    }
}

}  // namespace
