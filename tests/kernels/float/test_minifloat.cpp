// GoogleTest for qsim/minifloat.h: minifloat fake casts and the MX / NVFP4 block formats.
//   - known answers computed by hand (float8 e4m3fn / e5m2 / fnuz, fp4 e2m1, MX and NVFP4 blocks);
//   - the reference rounding against FormatTable (every code of the format decoded, rounding by
//     search) for every valid (exponent_bits, mantissa_bits, kind, saturate) up to 16 bits, on
//     random bit patterns, values near the grid, ties, +-Inf and NaN; e5m10 and e8m7 against the
//     fp16 / bf16 casts of qsim/qdq.h, and e8m23 as the identity;
//   - the block kernels against block_oracle, the specifications written out with frexp;
//   - every variant of qsim_qdq_variants() against the reference, bit for bit, at every length
//     0..130 (all tail paths), unaligned and in place, with guards around the runs.
// Fixed seed (qsim_test::kSeed); failures print the index, the input and both outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "minifloat_oracle.h"
#include "minifloat_variants.h"
#include "qsim_test_util.h"

extern "C" {
#include "qsim/qdq.h"
}

namespace {

using mf_test::FormatTable;
using qsim_test::bits;
using qsim_test::describe;
using qsim_test::floats_match;
using qsim_test::from_bits;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

qsim_minifloat make(int e, int m, qsim_float_kind kind, int saturate) {
    const qsim_float_format f = { e, m, kind, saturate };
    qsim_minifloat          out{};
    EXPECT_EQ(qsim_minifloat_init(&f, &out), QSIM_SUCCESS) << "e" << e << "m" << m;
    return out;
}

float round_ref(float x, const qsim_minifloat & m) {
    float y = 0;
    qsim_minifloat_f32_ref(1, &x, &y, 1.0f, &m);
    return y;
}

// ---- known answers ---------------------------------------------------------------------------

TEST(Minifloat, KnownAnswersFloat8) {
    const qsim_minifloat e4m3 = make(4, 3, QSIM_FLOAT_FN, 1);
    const qsim_minifloat e4m3_ns = make(4, 3, QSIM_FLOAT_FN, 0);
    const qsim_minifloat e5m2 = make(5, 2, QSIM_FLOAT_IEEE, 0);
    const qsim_minifloat fnuz = make(4, 3, QSIM_FLOAT_FNUZ, 0);
    EXPECT_EQ(qsim_minifloat_max(&e4m3), 448.0f);
    EXPECT_EQ(qsim_minifloat_max(&e5m2), 57344.0f);
    EXPECT_EQ(qsim_minifloat_max(&fnuz), 240.0f);
    EXPECT_EQ(round_ref(0.3f, e4m3), 0.3125f);      // 9.6 steps of 2^-5 -> 10
    EXPECT_EQ(round_ref(464.0f, e4m3), 448.0f);     // tie between 448 (even) and 480
    EXPECT_EQ(round_ref(1e9f, e4m3), 448.0f);       // saturates
    EXPECT_EQ(round_ref(-kInf, e4m3), -448.0f);
    EXPECT_TRUE(std::isnan(round_ref(465.0f, e4m3_ns)));  // rounds past 448: NaN
    EXPECT_EQ(round_ref(0x1p-10f, e4m3), 0.0f);     // tie between 0 and 2^-9 (smallest subnormal)
    EXPECT_EQ(round_ref(0x1.8p-9f, e4m3), 0x1p-8f); // tie between 1 and 2 subnormal steps
    EXPECT_EQ(round_ref(61440.0f, e5m2), kInf);     // tie between 57344 (odd) and 2^16: Inf
    EXPECT_EQ(round_ref(61439.0f, e5m2), 57344.0f);
    EXPECT_EQ(bits(round_ref(-0.0f, fnuz)), 0u);    // no negative zero
    EXPECT_EQ(bits(round_ref(-0x1p-12f, fnuz)), 0u);
    EXPECT_TRUE(std::isnan(round_ref(248.0f, fnuz)));  // tie between 240 (odd) and 256
    EXPECT_TRUE(std::isnan(round_ref(kInf, fnuz)));
}

TEST(Minifloat, KnownAnswersFp4) {
    const qsim_minifloat e2m1 = make(2, 1, QSIM_FLOAT_FINITE, 0);  // always saturates
    const float in[]  = { 0.25f, 0.75f, 1.25f, 2.5f, 3.5f, 5.0f, 7.0f, -kInf, 0.2f, -1.75f };
    const float out[] = { 0.0f, 1.0f, 1.0f, 2.0f, 4.0f, 4.0f, 6.0f, -6.0f, 0.0f, -2.0f };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        EXPECT_EQ(round_ref(in[i], e2m1), out[i]) << "input " << in[i];
    }
}

TEST(Minifloat, RejectsBadFormats) {
    qsim_minifloat m;
    const qsim_float_format bad[] = { { 0, 3, QSIM_FLOAT_IEEE, 1 }, { 9, 3, QSIM_FLOAT_IEEE, 1 },
                                      { 4, 24, QSIM_FLOAT_IEEE, 1 }, { 4, -1, QSIM_FLOAT_IEEE, 1 },
                                      { 1, 3, QSIM_FLOAT_IEEE, 1 }, { 1, 0, QSIM_FLOAT_FN, 1 },
                                      { 8, 3, QSIM_FLOAT_FN, 1 }, { 4, 3, (qsim_float_kind) 7, 1 } };
    for (const auto & f : bad) {
        EXPECT_EQ(qsim_minifloat_init(&f, &m), QSIM_INVALID_ARGUMENT)
            << "e" << f.exponent_bits << "m" << f.mantissa_bits << " kind " << f.kind;
    }
    EXPECT_EQ(qsim_minifloat_init(nullptr, &m), QSIM_INVALID_ARGUMENT);
}

// ---- the reference against the code tables -----------------------------------------------------

// Inputs for a format: random bit patterns, every grid value, midpoints (ties) and their fp32
// neighbours, values past the largest, specials.
std::vector<float> probe_inputs(const FormatTable & t, std::mt19937 & rng) {
    std::vector<float> v = { 0.0f, -0.0f, kInf, -kInf, kNaN, from_bits(0xffc12345u),
                             from_bits(1u), 3.4028235e38f };
    for (size_t i = 0; i + 1 < t.grid.size(); i++) {
        const float lo = static_cast<float>(t.grid[i]);
        const float mid = static_cast<float>((t.grid[i] + t.grid[i + 1]) / 2);
        for (float f : { lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, kInf) }) {
            v.push_back(f);
            v.push_back(-f);
        }
    }
    std::uniform_int_distribution<uint32_t> any;
    for (int i = 0; i < 2000; i++) {
        v.push_back(from_bits(any(rng)));
    }
    return v;
}

TEST(Minifloat, ReferenceMatchesCodeTablesForEveryFormat) {
    std::mt19937 rng(qsim_test::kSeed);
    int checked = 0;
    for (int e = 1; e <= 8; e++) {
        for (int mb = 0; e + mb <= 15; mb++) {
            for (int kind = QSIM_FLOAT_IEEE; kind <= QSIM_FLOAT_FINITE; kind++) {
                for (int sat = 0; sat <= 1; sat++) {
                    const qsim_float_format f = { e, mb, static_cast<qsim_float_kind>(kind), sat };
                    qsim_minifloat m;
                    if (qsim_minifloat_init(&f, &m) != QSIM_SUCCESS) {
                        continue;
                    }
                    const FormatTable t(f);
                    ASSERT_EQ(static_cast<double>(qsim_minifloat_max(&m)), t.max());
                    const std::vector<float> x = probe_inputs(t, rng);
                    std::vector<float> want(x.size()), got(x.size());
                    for (size_t i = 0; i < x.size(); i++) {
                        want[i] = static_cast<float>(t.round(static_cast<double>(x[i])));
                    }
                    qsim_minifloat_f32_ref(x.size(), x.data(), got.data(), 1.0f, &m);
                    ASSERT_TRUE(floats_match(x.size(), x.data(), want.data(), got.data()))
                        << "e" << e << "m" << mb << " kind " << kind << " saturate " << sat;
                    checked++;
                }
            }
        }
    }
    EXPECT_GT(checked, 200);
}

TEST(Minifloat, WideFormatsMatchTheHalfCastsAndIdentity) {
    size_t count = 0;
    const qsim_qdq_kernels & ref = qsim_qdq_variants(&count)[0];
    const qsim_minifloat f16 = make(5, 10, QSIM_FLOAT_IEEE, 0);
    const qsim_minifloat bf16 = make(8, 7, QSIM_FLOAT_IEEE, 0);
    const qsim_minifloat f32 = make(8, 23, QSIM_FLOAT_IEEE, 0);
    std::mt19937 rng(qsim_test::kSeed + 1);
    std::uniform_int_distribution<uint32_t> any;
    std::vector<float> x(1 << 16), want(x.size()), got(x.size());
    for (auto & v : x) {
        v = from_bits(any(rng));
    }
    ref.cast_f16(x.size(), x.data(), want.data());
    qsim_minifloat_f32_ref(x.size(), x.data(), got.data(), 1.0f, &f16);
    EXPECT_TRUE(floats_match(x.size(), x.data(), want.data(), got.data())) << "e5m10";
    ref.cast_bf16(x.size(), x.data(), want.data());
    qsim_minifloat_f32_ref(x.size(), x.data(), got.data(), 1.0f, &bf16);
    EXPECT_TRUE(floats_match(x.size(), x.data(), want.data(), got.data())) << "e8m7";
    qsim_minifloat_f32_ref(x.size(), x.data(), got.data(), 1.0f, &f32);
    EXPECT_TRUE(floats_match(x.size(), x.data(), x.data(), got.data())) << "e8m23";
}

// ---- block formats --------------------------------------------------------------------------

// The block conversion written from the specifications (see qsim/minifloat.h), in double.
std::vector<float> block_oracle(const std::vector<float> & x, const qsim_block_format & b,
                                const qsim_float_format & elem) {
    std::vector<float> y(x.size());
    const FormatTable t(elem);
    for (size_t i = 0; i < x.size(); i += b.block) {
        const size_t len = std::min(b.block, x.size() - i);
        double amax = 0;
        bool nan = false;
        for (size_t j = 0; j < len; j++) {
            nan = nan || std::isnan(x[i + j]);
            amax = std::max(amax, std::fabs(static_cast<double>(x[i + j])));
        }
        double s;
        if (nan || std::isinf(amax)) {
            s = std::numeric_limits<double>::quiet_NaN();
        } else if (b.kind == QSIM_BLOCK_NVFP4) {
            const FormatTable e4m3({ 4, 3, QSIM_FLOAT_FN, 1 });
            const float q = static_cast<float>(e4m3.round(static_cast<float>(static_cast<float>(amax) / 6.0f) / b.tensor_scale));
            s = static_cast<double>(q * b.tensor_scale);
        } else {
            int ex = 0;
            std::frexp(amax, &ex);  // amax in [2^(ex-1), 2^ex): floor(log2) = ex - 1 (0 for amax 0)
            const int emax = b.kind == QSIM_BLOCK_MX_INT8 ? 0 : static_cast<int>(std::floor(std::log2(t.max())));
            const int shared = amax == 0 ? -127 : std::max(ex - 1 - emax, -127);
            s = std::ldexp(1.0, shared);
        }
        for (size_t j = 0; j < len; j++) {
            const double v = static_cast<double>(x[i + j]);
            double r;
            if (std::isnan(s)) {
                r = s;
            } else if (s == 0) {
                r = v * 0.0;
            } else if (b.kind == QSIM_BLOCK_MX_INT8) {
                r = (std::min(127.0, std::max(-128.0, std::nearbyint(v / s * 64))) + 0.0) * s / 64;
            } else {
                r = t.round(static_cast<double>(static_cast<float>(v / s))) * s;
            }
            y[i + j] = static_cast<float>(r);
        }
    }
    return y;
}

struct BlockCase {
    const char *      name;
    qsim_block_kind   kind;
    qsim_float_format elem;
};

const std::vector<BlockCase> & block_cases() {
    static const std::vector<BlockCase> c = {
        { "mxfp8_e4m3", QSIM_BLOCK_MX_FLOAT, { 4, 3, QSIM_FLOAT_FN, 1 } },
        { "mxfp8_e5m2", QSIM_BLOCK_MX_FLOAT, { 5, 2, QSIM_FLOAT_IEEE, 1 } },
        { "mxfp6_e3m2", QSIM_BLOCK_MX_FLOAT, { 3, 2, QSIM_FLOAT_FINITE, 1 } },
        { "mxfp6_e2m3", QSIM_BLOCK_MX_FLOAT, { 2, 3, QSIM_FLOAT_FINITE, 1 } },
        { "mxfp4", QSIM_BLOCK_MX_FLOAT, { 2, 1, QSIM_FLOAT_FINITE, 1 } },
        { "mxint8", QSIM_BLOCK_MX_INT8, { 2, 1, QSIM_FLOAT_FINITE, 1 } },
        { "nvfp4", QSIM_BLOCK_NVFP4, { 2, 1, QSIM_FLOAT_FINITE, 1 } },
    };
    return c;
}

qsim_block_format make_block(const BlockCase & c, float tensor_scale = 0.0123f) {
    qsim_block_format b{};
    const qsim_status st = c.kind == QSIM_BLOCK_NVFP4 ? qsim_block_format_nvfp4(tensor_scale, &b)
                                                      : qsim_block_format_mx(c.kind, &c.elem, &b);
    EXPECT_EQ(st, QSIM_SUCCESS) << c.name;
    return b;
}

// Blocks of random values at random magnitudes, some holding NaN, Inf, zeros or subnormals.
std::vector<float> block_inputs(size_t n, std::mt19937 & rng) {
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::uniform_int_distribution<int> mag(-140, 100), coin(0, 40);
    std::vector<float> x(n);
    int e = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 16 == 0) {
            e = mag(rng);
        }
        const int c = coin(rng);
        x[i] = c == 0 ? kNaN : c == 1 ? -kInf : c == 2 ? 0.0f : std::ldexp(g(rng), e);
    }
    return x;
}

TEST(BlockFormats, KnownAnswers) {
    std::vector<float> x(32);
    for (size_t i = 0; i < 32; i++) {
        x[i] = static_cast<float>(i + 1);  // amax 32: E8M0 scale 2^(5 - 2) = 8 for fp4
    }
    std::vector<float> y(32);
    const qsim_block_format mxfp4 = make_block(block_cases()[4]);
    qsim_block_float_f32_ref(32, x.data(), y.data(), &mxfp4);
    EXPECT_EQ(qsim_block_scale(bits(32.0f), &mxfp4), 8.0f);
    EXPECT_EQ(y[0], 0.0f);    // 1/8 -> 0
    EXPECT_EQ(y[3], 4.0f);    // 4/8 = 0.5 -> 0.5
    EXPECT_EQ(y[19], 16.0f);  // 20/8 = 2.5 -> 2 (tie to even)
    EXPECT_EQ(y[27], 32.0f);  // 28/8 = 3.5 -> 4
    EXPECT_EQ(y[31], 32.0f);
    const qsim_block_format mxint8 = make_block(block_cases()[5]);
    EXPECT_EQ(qsim_block_scale(bits(32.0f), &mxint8), 0.5f);  // 2^5 / 64
    EXPECT_EQ(qsim_block_scale(0u, &mxint8), std::ldexp(1.0f, -133));
    const qsim_block_format nv = make_block(block_cases()[6], 0.5f);
    // amax 32: 32 / 6 / 0.5 = 10.67 -> E4M3 11 (step 1 in [8, 16)), decoded 11 * 0.5
    EXPECT_EQ(qsim_block_scale(bits(32.0f), &nv), 5.5f);
    EXPECT_TRUE(std::isnan(qsim_block_scale(bits(kInf), &mxfp4)));
}

TEST(BlockFormats, ReferenceMatchesTheSpecifications) {
    std::mt19937 rng(qsim_test::kSeed + 2);
    for (const BlockCase & c : block_cases()) {
        for (float d : { 0.0123f, 1.0f, 3e-30f }) {
            const qsim_block_format b = make_block(c, d);
            for (size_t n : { size_t(1), size_t(31), size_t(32), size_t(33), size_t(1000) }) {
                const std::vector<float> x = block_inputs(n, rng);
                const std::vector<float> want = block_oracle(x, b, c.elem);
                std::vector<float> got(n);
                qsim_block_float_f32_ref(n, x.data(), got.data(), &b);
                ASSERT_TRUE(floats_match(n, x.data(), want.data(), got.data()))
                    << c.name << " n=" << n << " tensor scale " << d;
            }
            if (c.kind != QSIM_BLOCK_NVFP4) {
                break;
            }
        }
    }
}

// ---- variants against the reference ---------------------------------------------------------

class MinifloatVariants : public ::testing::TestWithParam<size_t> {
  protected:
    const qsim_qdq_kernels & k() const {
        size_t n = 0;
        return qsim_qdq_variants(&n)[GetParam()];
    }
    void SetUp() override {
        if (!k().supported()) {
            GTEST_SKIP() << k().name << " is not supported by this CPU";
        }
    }
};

TEST_P(MinifloatVariants, CastMatchesReferenceAtEveryLength) {
    size_t count = 0;
    const qsim_qdq_kernels & ref = qsim_qdq_variants(&count)[0];
    std::mt19937 rng(qsim_test::kSeed + 3);
    const qsim_float_format formats[] = { { 4, 3, QSIM_FLOAT_FN, 1 }, { 5, 2, QSIM_FLOAT_IEEE, 0 },
                                          { 4, 3, QSIM_FLOAT_FNUZ, 0 }, { 2, 1, QSIM_FLOAT_FINITE, 1 },
                                          { 3, 0, QSIM_FLOAT_FNUZ, 1 }, { 8, 5, QSIM_FLOAT_IEEE, 1 },
                                          { 1, 6, QSIM_FLOAT_FINITE, 0 }, { 6, 9, QSIM_FLOAT_FN, 0 } };
    for (const auto & f : formats) {
        qsim_minifloat m;
        ASSERT_EQ(qsim_minifloat_init(&f, &m), QSIM_SUCCESS);
        const FormatTable t(f);
        const std::vector<float> pool = probe_inputs(t, rng);
        std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
        for (float s : { 1.0f, 0.037f, 3e-39f }) {
            for (size_t n = 0; n <= 130; n++) {
                std::vector<float> x(n);
                for (auto & v : x) {
                    v = pool[pick(rng)];
                }
                std::vector<float> want(n);
                ref.cast_minifloat(n, x.data(), want.data(), s, &m);
                for (bool in_place : { false, true }) {
                    const auto got = qsim_test::run_map(x, n % 7, in_place, [&](const float * in, float * out) {
                        k().cast_minifloat(n, in, out, s, &m);
                    });
                    ASSERT_TRUE(floats_match(n, x.data(), want.data(), got.data()))
                        << k().name << " e" << f.exponent_bits << "m" << f.mantissa_bits << " kind "
                        << f.kind << " scale " << s << " " << qsim_test::run_label("minifloat", n, n % 7, in_place);
                }
            }
        }
    }
}

TEST_P(MinifloatVariants, BlocksMatchReferenceAtEveryLength) {
    size_t count = 0;
    const qsim_qdq_kernels & ref = qsim_qdq_variants(&count)[0];
    std::mt19937 rng(qsim_test::kSeed + 4);
    for (const BlockCase & c : block_cases()) {
        const qsim_block_format b = make_block(c);
        for (size_t n = 0; n <= 130; n++) {
            const std::vector<float> x = block_inputs(n, rng);
            std::vector<float> want(n);
            ref.block_float(n, x.data(), want.data(), &b);
            for (bool in_place : { false, true }) {
                const auto got = qsim_test::run_map(x, n % 5, in_place, [&](const float * in, float * out) {
                    k().block_float(n, in, out, &b);
                });
                ASSERT_TRUE(floats_match(n, x.data(), want.data(), got.data()))
                    << k().name << " " << c.name << " " << qsim_test::run_label("block", n, n % 5, in_place);
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Variants, MinifloatVariants, ::testing::ValuesIn(mf_test::variant_indices()),
                         mf_test::variant_name);

}  // namespace
