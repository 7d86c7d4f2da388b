// GoogleTest for the fp16 and bf16 fake casts of qsim/qdq.h (fp32 -> narrow -> fp32, round to
// nearest even), for every compiled variant (reference included):
//   - hand-computed known answers (largest values, overflow, subnormal ties, NaN kept);
//   - every representable value of each format, the midpoints between neighbours and the floats
//     just beside them;
//   - a generic round-to-format oracle in double on random bit patterns, and the compiler's
//     _Float16 conversion where it has one;
//   - the ref kernels at every length 0..129 and at large lengths, unaligned and in place.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "qdq_oracle.h"
#include "qsim_test_util.h"

namespace {

using namespace qdq_test;
using qsim_test::describe;
using qsim_test::floats_match;
using qsim_test::run_label;
using qsim_test::run_map;
using qsim_test::same_bits;

// ---- oracles ----------------------------------------------------------------------------------

// x rounded to a binary format with `digits` significand bits whose smallest step is 2^min_step
// (the subnormal spacing) and whose largest finite value is max_finite: ties to even through
// std::nearbyint of the scaled value; a result past max_finite overflows to Inf (IEEE 754 RNE).
double round_to_format(double x, int digits, int min_step, double max_finite) {
    if (!std::isfinite(x) || x == 0.0) {
        return x;
    }
    int e = 0;
    std::frexp(x, &e);  // |x| in [2^(e-1), 2^e)
    const int    step = std::max(e - digits, min_step);
    const double r    = std::ldexp(std::nearbyint(std::ldexp(x, -step)), step);
    return std::fabs(r) > max_finite ? std::copysign(static_cast<double>(kInf), x) : r;
}

// fp16: 11 significand bits, subnormal step 2^-24, largest finite 65504.
float oracle_f16(float x) {
    return std::isnan(x) ? x : static_cast<float>(round_to_format(x, 11, -24, 65504.0));
}

// bf16: 8 significand bits, subnormal step 2^-133 (fp32's 2^-149 with 16 fewer bits), largest
// finite (2 - 2^-7) * 2^127.
float oracle_bf16(float x) {
    return std::isnan(x) ? x : static_cast<float>(round_to_format(x, 8, -133, std::ldexp(255.0, 120)));
}

struct CastKernel {
    const char *                     name;
    qsim_cast_fn qsim_qdq_kernels::* fn;
    float                            (*oracle)(float);
};
const CastKernel kCasts[] = {
    { "cast_f16", &qsim_qdq_kernels::cast_f16, oracle_f16 },
    { "cast_bf16", &qsim_qdq_kernels::cast_bf16, oracle_bf16 },
};

// Random bit patterns: every exponent, subnormals, NaN payloads.
std::vector<float> random_bit_patterns(size_t n, std::mt19937 & rng) {
    std::uniform_int_distribution<uint32_t> any;
    std::vector<float> x(n);
    for (float & v : x) {
        v = from_bits(any(rng));
    }
    return x;
}

std::vector<float> map_oracle(const std::vector<float> & x, float (*f)(float)) {
    std::vector<float> y(x.size());
    std::transform(x.begin(), x.end(), y.begin(), f);
    return y;
}

// Every cast kernel of `k` on x: equal to its rounding oracle and to ref, bit for bit.
void check_casts(const qsim_qdq_kernels & k, const std::vector<float> & x, const std::vector<size_t> & offsets) {
    for (const CastKernel & c : kCasts) {
        const std::vector<float> want   = map_oracle(x, c.oracle);
        const std::vector<float> by_ref = run_map(x, 0, false, [&](float * a, float * b) {
            (ref().*c.fn)(x.size(), a, b);
        });
        ASSERT_TRUE(floats_match(x.size(), x.data(), want.data(), by_ref.data())) << "ref " << c.name << " vs oracle";
        for (size_t off : offsets) {
            for (bool in_place : { false, true }) {
                const std::vector<float> got = run_map(x, off, in_place, [&](float * a, float * b) {
                    (k.*c.fn)(x.size(), a, b);
                });
                ASSERT_TRUE(floats_match(x.size(), x.data(), by_ref.data(), got.data()))
                    << k.name << " vs ref: " << run_label(c.name, x.size(), off, in_place);
            }
        }
    }
}

// ---- sweeps: oracle and ref -------------------------------------------------------------------

INSTANTIATE_TEST_SUITE_P(Variants, QdqKernels, ::testing::ValuesIn(all_variants()), variant_name);

TEST_P(QdqKernels, CastsMatchOracleAndRefAtEveryLengthOffsetAndInPlace) {
    std::mt19937 rng(qsim_test::kSeed + 3);
    for (size_t n = 0; n <= 129; n++) {
        ASSERT_NO_FATAL_FAILURE(check_casts(k(), random_bit_patterns(n, rng), { 0, 1, 3, 7 }));
    }
}

TEST_P(QdqKernels, CastsMatchOracleAndRefOnLargeRuns) {
    std::mt19937 rng(qsim_test::kSeed + 4);
    for (size_t n : { size_t{ 4099 }, (size_t{ 1 } << 16) + 3 }) {
        ASSERT_NO_FATAL_FAILURE(check_casts(k(), random_bit_patterns(n, rng), { 1 }));
    }
}

// ---- known answers (hand-computed) ------------------------------------------------------------

struct KnownCast {
    float       x, want;
    const char *why;
};

void check_cast_known(qsim_cast_fn fn, const char * name, const std::vector<KnownCast> & cases) {
    for (const KnownCast & c : cases) {
        for (float sign : { 1.0f, -1.0f }) {
            const float x = sign * c.x, want = sign * c.want;
            float       got = 0.0f;
            fn(1, &x, &got);
            EXPECT_TRUE(same_bits(want, got)) << name << " " << c.why << ": input " << describe(x)
                                              << ", expected " << describe(want) << ", got " << describe(got);
        }
    }
}

TEST_P(QdqKernels, Fp16KnownAnswers) {
    const float e = std::ldexp(1.0f, -24);  // fp16 subnormal step
    check_cast_known(k().cast_f16, "cast_f16", {
        { 65504.0f, 65504.0f, "largest fp16" },
        { 65519.0f, 65504.0f, "below the midpoint 65520 of 65504 and 2^16" },
        { from_bits(0x477fefffu), 65504.0f, "65519.996, just below 65520" },
        { 65520.0f, kInf, "tie: 65504 has an odd mantissa, 2^16 is past the range -> Inf" },
        { FLT_MAX, kInf, "overflow" },
        { kInf, kInf, "Inf stays" },
        { e, e, "2^-24, smallest subnormal" },
        { 0.5f * e, 0.0f, "2^-25 ties between 0 and 2^-24 -> 0 (even)" },
        { 1.5f * e, 2.0f * e, "3*2^-25 ties between 1 and 2 steps -> 2 steps = 2^-23" },
        { 2.5f * e, 2.0f * e, "5*2^-25 ties between 2 and 3 steps -> 2 steps" },
        { 0.5f * e + std::ldexp(1.0f, -40), e, "just above 2^-25 -> 2^-24" },
        { 1e-8f, 0.0f, "1e-8 < 2^-25 -> 0" },
        { std::ldexp(1.0f, -14) - 0.5f * e, std::ldexp(1.0f, -14), "1023.5 steps -> 1024 = 2^-14" },
        { 1.0f + std::ldexp(1.0f, -11), 1.0f, "1 + half an ulp (2^-10) -> 1 (even)" },
        { 1.0f + 3.0f * std::ldexp(1.0f, -11), 1.0f + std::ldexp(1.0f, -9), "1 + 1.5 ulp -> 1 + 2 ulp" },
        { 2049.0f, 2048.0f, "ulp 2 at 2048: tie -> 2048" },
        { 2051.0f, 2052.0f, "tie between 2050 (odd) and 2052" },
        { 0.1f, 0.0999755859375f, "0.1 = 1.6 * 2^-4: mantissa 0.6 * 1024 = 614.4 -> 614" },
        { 1.0f / 3.0f, 0.333251953125f, "1/3 = 1.333 * 2^-2: 0.333 * 1024 = 341.3 -> 341" },
        { 0.0f, 0.0f, "zero keeps its sign" },
    });
    const float nans[] = { kNaN, -kNaN, from_bits(0x7f800001u), from_bits(0x7fc00001u), from_bits(0xffffffffu) };
    for (float x : nans) {
        float y = 0.0f;
        k().cast_f16(1, &x, &y);
        EXPECT_TRUE(std::isnan(y)) << "cast_f16 of NaN " << describe(x) << " gave " << describe(y);
    }
}

TEST_P(QdqKernels, Bf16KnownAnswers) {
    const float u = std::ldexp(1.0f, -7);  // bf16 ulp at 1
    check_cast_known(k().cast_bf16, "cast_bf16", {
        { 1.0f, 1.0f, "exact" },
        { 1.0f + 0.5f * u, 1.0f, "half an ulp -> 1 (even)" },
        { 1.0f + 1.5f * u, 1.0f + 2.0f * u, "1.5 ulp ties up to the even 2 ulp" },
        { 1.0f + 0.5f * u + std::ldexp(1.0f, -20), 1.0f + u, "just past the tie -> up" },
        { from_bits(0x7f7f7fffu), from_bits(0x7f7f0000u), "below the top midpoint -> largest bf16" },
        { from_bits(0x7f7f8000u), kInf, "tie at the top: mantissa 0x7f is odd -> Inf" },
        { FLT_MAX, kInf, "overflow" },
        { kInf, kInf, "Inf stays" },
        { from_bits(0x00008000u), 0.0f, "2^-134 ties between 0 and 2^-133 -> 0" },
        { from_bits(0x00018000u), from_bits(0x00020000u), "3*2^-134 ties between 1 and 2 steps -> 2" },
        { from_bits(0x007fffffu), FLT_MIN, "largest fp32 denormal rounds up to 2^-126" },
        { 0.1f, from_bits(0x3dcd0000u), "0.1f = 0x3dcccccd: dropped 0xcccd > 0x8000 -> up" },
        { 0.0f, 0.0f, "zero keeps its sign" },
    });
    // NaN stays NaN, also when only the dropped low bits carry the payload (truncating would give Inf)
    const float nans[] = { kNaN, -kNaN, from_bits(0x7f800001u), from_bits(0xff80ffffu), from_bits(0x7fffffffu) };
    for (float x : nans) {
        float y = 0.0f;
        k().cast_bf16(1, &x, &y);
        EXPECT_TRUE(std::isnan(y)) << "cast_bf16 of NaN " << describe(x) << " gave " << describe(y);
    }
}

// ---- every value of each format ---------------------------------------------------------------

// A format's representable values v_h in increasing order, from its bit patterns. For every h
// and both signs: v_h maps to itself, the midpoint of v_h and v_{h+1} goes to the one with the
// even pattern, and the floats just below and above the midpoint go to v_h and v_{h+1}. The last
// finite value's upper neighbour is Inf (its midpoint ties to the even, out-of-range next
// value, which overflows). Every probe is also checked against the format's rounding oracle.
void check_every_value_and_midpoint(qsim_cast_fn fn, float (*oracle)(float), const char * name,
                                    const std::vector<float> & values) {
    std::vector<float> x, want;
    for (size_t h = 0; h < values.size(); h++) {
        const float v    = values[h];
        const float next = h + 1 < values.size() ? values[h + 1] : kInf;
        const float mid  = h + 1 < values.size() ? static_cast<float>((static_cast<double>(v) + next) / 2.0)
                                                 : static_cast<float>(static_cast<double>(v) +
                                                                      (static_cast<double>(v) - values[h - 1]) / 2.0);
        const float even = h % 2 == 0 ? v : next;
        for (float sign : { 1.0f, -1.0f }) {
            const float probes[] = { v, std::nextafter(mid, 0.0f), mid, std::nextafter(mid, kInf) };
            const float wants[]  = { v, v, even, next };
            for (int p = 0; p < 4; p++) {
                x.push_back(sign * probes[p]);
                want.push_back(sign * wants[p]);
            }
        }
    }
    std::vector<float> got(x.size());
    fn(x.size(), x.data(), got.data());
    EXPECT_TRUE(floats_match(x.size(), x.data(), want.data(), got.data())) << name << " vs neighbours";
    const std::vector<float> by_oracle = map_oracle(x, oracle);
    EXPECT_TRUE(floats_match(x.size(), x.data(), want.data(), by_oracle.data())) << name << " oracle vs neighbours";
}

// fp16 value of a non-negative finite pattern h (< 0x7c00), decoded by hand:
// subnormal (exponent field 0): m * 2^-24; normal: (1024 + m) * 2^(e - 25).
float decode_f16(uint32_t h) {
    const int e = static_cast<int>(h >> 10), m = static_cast<int>(h & 0x3ffu);
    return e == 0 ? std::ldexp(static_cast<float>(m), -24) : std::ldexp(static_cast<float>(1024 + m), e - 25);
}

TEST_P(QdqKernels, Fp16EveryValueAndMidpoint) {
    std::vector<float> values;
    for (uint32_t h = 0; h < 0x7c00u; h++) {
        values.push_back(decode_f16(h));
    }
    ASSERT_EQ(values.back(), 65504.0f);
    check_every_value_and_midpoint(k().cast_f16, oracle_f16, "cast_f16", values);
}

TEST_P(QdqKernels, Bf16EveryValueAndMidpoint) {
    std::vector<float> values;
    for (uint32_t h = 0; h < 0x7f80u; h++) {
        values.push_back(from_bits(h << 16));  // bf16 is the top half of an fp32
    }
    check_every_value_and_midpoint(k().cast_bf16, oracle_bf16, "cast_bf16", values);
}

// A second fp16 oracle: the compiler's _Float16 conversion (IEEE, round to nearest even), on
// random bit patterns and a dense sweep of the fp16 range.
TEST_P(QdqKernels, Fp16MatchesFloat16Type) {
#ifdef __FLT16_MAX__
    std::mt19937       rng(qsim_test::kSeed + 6);
    std::vector<float> x = random_bit_patterns(1 << 16, rng);
    for (uint32_t u = 0x33000000u; u < 0x47800000u; u += 0x1001u) {  // 2^-25 .. 2^16
        x.push_back(from_bits(u));
    }
    std::vector<float> want(x.size()), got(x.size());
    for (size_t i = 0; i < x.size(); i++) {
        want[i] = static_cast<float>(static_cast<_Float16>(x[i]));
    }
    k().cast_f16(x.size(), x.data(), got.data());
    EXPECT_TRUE(floats_match(x.size(), x.data(), want.data(), got.data()));
#else
    GTEST_SKIP() << "this compiler has no _Float16; the hand-decoded oracle checks cast_f16";
#endif
}

}  // namespace
