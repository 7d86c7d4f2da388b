// GoogleTest for the 16-bit drivers of qsim/qdq.h (qsim_forward_h16, qsim_backward_h16,
// qsim_widen_h16, qsim_narrow_h16), for every compiled variant:
//   - widening every one of the 65536 fp16 and bf16 bit patterns against ldexp arithmetic;
//   - each variant's widen_h16 / narrow_h16 bit for bit the reference's, NaN bits included, at
//     every length through the vector tails, writing nothing past the run;
//   - narrowing against the tested fake casts (qsim_cast_f16_f32_ref / _bf16_): the narrowed
//     value widens back to the fake cast's result, NaN to the documented quiet NaN;
//   - each variant's fused qdq_h16 and qdq_backward_h16 bit for bit the reference's on every bit
//     pattern;
//   - the drivers equal "widen, qsim_forward_f32 / qsim_backward_f32, narrow" bit for bit on
//     tensors of several chunks (per-tensor, per-channel on a middle and the last axis,
//     blockwise), for any split of [begin, end) and in place;
//   - qsim_backward_reduce_h16 equals "widen, qsim_backward_reduce_f32, narrow dx": every group
//     sum bit for bit, on those layouts plus several per-tensor tiles and a gathered blockwise
//     one, for any split of the groups and with dx in place of dy.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "qdq_oracle.h"
#include "qsim_test_util.h"

namespace {

using namespace qdq_test;
using qsim_test::bits;

INSTANTIATE_TEST_SUITE_P(Variants, QdqKernels, ::testing::ValuesIn(all_variants()), variant_name);

const qsim_half_kind kKinds[] = { QSIM_HALF_F16, QSIM_HALF_BF16 };

// The value of fp16 bits h by arithmetic (not bit moves).
float f16_value(uint16_t h) {
    const int   e = (h >> 10) & 0x1f, m = h & 0x3ff;
    const float s = (h & 0x8000) ? -1.0f : 1.0f;
    if (e == 0x1f) {
        return m ? std::numeric_limits<float>::quiet_NaN() : s * INFINITY;
    }
    return s * (e == 0 ? std::ldexp(static_cast<float>(m), -24)
                       : std::ldexp(static_cast<float>(1024 + m), e - 25));
}

TEST(QdqHalf, WidenIsExactForEveryBitPattern) {
    std::vector<uint16_t> all(65536);
    for (uint32_t i = 0; i < 65536; i++) {
        all[i] = static_cast<uint16_t>(i);
    }
    std::vector<float> f16(all.size()), bf16(all.size());
    qsim_widen_h16(QSIM_HALF_F16, all.size(), all.data(), f16.data());
    qsim_widen_h16(QSIM_HALF_BF16, all.size(), all.data(), bf16.data());
    for (uint32_t i = 0; i < 65536; i++) {
        const float want = f16_value(static_cast<uint16_t>(i));
        ASSERT_TRUE(std::isnan(want) ? std::isnan(f16[i]) : bits(want) == bits(f16[i])) << "fp16 " << i;
        ASSERT_EQ(bits(bf16[i]), i << 16) << "bf16 " << i;
    }
}

// Every fp16 value, the midpoints between neighbours (ties), +-1 ulp around them, extremes,
// subnormals of both types, NaN and the infinities, then random floats of every magnitude.
std::vector<float> narrowing_inputs() {
    std::vector<float> v = { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 65504.0f, 65519.99f,
                             65520.0f, 1e-45f, 3e-8f, 2.98e-8f, 6.1e-5f, 3.4e38f, -3.4e38f };
    for (uint32_t h = 0; h < 0x7c00; h++) {
        const float a = f16_value(static_cast<uint16_t>(h)), b = f16_value(static_cast<uint16_t>(h + 1));
        const float mid = a + (b - a) / 2;
        for (float x : { a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY) }) {
            v.push_back(x), v.push_back(-x);
        }
    }
    std::mt19937 rng(qsim_test::kSeed + 31);
    for (int i = 0; i < 200000; i++) {
        v.push_back(qsim_test::from_bits(static_cast<uint32_t>(rng())));
    }
    return v;
}

TEST(QdqHalf, NarrowRoundsAsTheFakeCasts) {
    const std::vector<float> x = narrowing_inputs();
    for (qsim_half_kind kind : kKinds) {
        std::vector<uint16_t> h(x.size());
        std::vector<float>    back(x.size()), want(x.size());
        qsim_narrow_h16(kind, x.size(), x.data(), h.data());
        qsim_widen_h16(kind, h.size(), h.data(), back.data());
        (kind == QSIM_HALF_F16 ? qsim_cast_f16_f32_ref : qsim_cast_bf16_f32_ref)(x.size(), x.data(), want.data());
        for (size_t i = 0; i < x.size(); i++) {
            if (std::isnan(x[i])) {
                const uint16_t nan = kind == QSIM_HALF_BF16 ? 0x7fc0 : ((bits(x[i]) >> 16) & 0x8000) | 0x7e00;
                ASSERT_EQ(h[i], nan) << "kind " << kind << " input " << i;
            } else {
                ASSERT_EQ(bits(back[i]), bits(want[i])) << "kind " << kind << " x " << x[i];
            }
        }
    }
}

template <typename T>
uint32_t raw(T v) {
    if constexpr (std::is_same_v<T, float>) {
        return bits(v);
    } else {
        return v;
    }
}

// Runs `variant` and `reference` (void (kind, n, const In *, Out *)) on x[off, off + len) for every
// len < 40 and off < 4, then on all of x, into guarded outputs; fails with the index and value.
template <typename In, typename Out, typename Fn>
void expect_same_bits(qsim_half_kind kind, const std::vector<In> & x, Fn variant, Fn reference,
                      const char * what) {
    const Out guard = static_cast<Out>(0x5a5a5a5au);
    auto run = [&](Fn fn, size_t off, size_t len) {
        std::vector<Out> y(len + 2, guard);
        fn(kind, len, x.data() + off, y.data() + 1);
        return y;
    };
    std::vector<std::pair<size_t, size_t>> runs = { { 0, x.size() } };
    for (size_t len = 0; len < 40; len++) {
        for (size_t off = 0; off < 4; off++) {
            runs.emplace_back(off, len);
        }
    }
    for (auto [off, len] : runs) {
        const std::vector<Out> got = run(variant, off, len), want = run(reference, off, len);
        ASSERT_EQ(raw(got.front()), raw(guard)) << what << ": wrote before the run";
        ASSERT_EQ(raw(got.back()), raw(guard)) << what << ": wrote past the run of " << len;
        for (size_t i = 1; i <= len; i++) {
            ASSERT_EQ(raw(got[i]), raw(want[i]))
                << what << " kind " << kind << " off " << off << " len " << len << " index "
                << i - 1 << " input bits 0x" << std::hex << raw(x[off + i - 1]);
        }
    }
}

TEST_P(QdqKernels, WidenAndNarrowAreTheReferenceBitForBit) {
    std::vector<uint16_t> all(65536);
    for (uint32_t i = 0; i < 65536; i++) {
        all[i] = static_cast<uint16_t>(i);
    }
    const std::vector<float> x = narrowing_inputs();
    for (qsim_half_kind kind : kKinds) {
        expect_same_bits<uint16_t, float>(kind, all, k().widen_h16, qsim_widen_h16_ref, "widen");
        expect_same_bits<float, uint16_t>(kind, x, k().narrow_h16, qsim_narrow_h16_ref, "narrow");
    }
}

// Each variant's fused qdq_h16 against the reference's (itself checked against widen, the fp32
// qdq and narrow by HalfDriversEqualWidenComputeNarrow below) on all 65536 patterns of both kinds,
// for the sweep grids, one whose results overflow fp16 and one whose results are bf16 denormals.
TEST_P(QdqKernels, FusedHalfQdqIsTheReferenceBitForBit) {
    std::vector<uint16_t> all(65536);
    for (uint32_t i = 0; i < 65536; i++) {
        all[i] = static_cast<uint16_t>(i);
    }
    const auto bind = [](qsim_h16_run_fn f, qsim_grid g) {
        return [f, g](qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y) {
            f(kind, n, x, y, g);
        };
    };
    std::vector<qsim_grid> gs = sweep_grids();
    gs.push_back(make_grid(3.0e4f, -1.0f, -2.0f, 1.0f));
    gs.push_back(make_grid(std::ldexp(1.0f, -130), 1.0f, 0.0f, 3.0f));
    for (const qsim_grid & g : gs) {
        for (qsim_half_kind kind : kKinds) {
            expect_same_bits<uint16_t, uint16_t>(kind, all, bind(k().qdq_h16, g),
                                                 bind(qsim_qdq_h16_ref, g), "qdq_h16");
        }
    }
}

// The same for the fused straight-through backward, with dy running through every pattern too
// (NaN payloads of both signs, infinities, zeros), in a different order than x.
TEST_P(QdqKernels, FusedHalfBackwardIsTheReferenceBitForBit) {
    std::vector<uint16_t> all(65536), dy(65536);
    for (uint32_t i = 0; i < 65536; i++) {
        all[i] = static_cast<uint16_t>(i);
        dy[i]  = static_cast<uint16_t>(i * 40503u + 12345u);  // odd multiplier: a permutation
    }
    const auto bind = [&](qsim_h16_run_bwd_fn f, qsim_grid g) {
        return [f, g, &all, &dy](qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * dx) {
            f(kind, n, x, dy.data() + (x - all.data()), dx, g);
        };
    };
    std::vector<qsim_grid> gs = sweep_grids();
    gs.push_back(make_grid(std::ldexp(1.0f, -130), 1.0f, 0.0f, 3.0f));
    for (const qsim_grid & g : gs) {
        for (qsim_half_kind kind : kKinds) {
            expect_same_bits<uint16_t, uint16_t>(kind, all, bind(k().qdq_backward_h16, g),
                                                 bind(qsim_qdq_backward_h16_ref, g),
                                                 "qdq_backward_h16");
        }
    }
}

struct HalfCase {
    const char * name;
    qsim_layout  layout;
    int64_t      qparams;
};

// Each case spans several QSIM_HALF_CHUNKs, with chunk edges inside rows, runs and blocks.
std::vector<HalfCase> half_cases() {
    return {
        { "per_tensor", qsim_layout_per_tensor(3 * QSIM_HALF_CHUNK + 123), 1 },
        { "channel_middle", qsim_layout_per_channel(3, 7, 1001), 7 },
        { "channel_last", qsim_layout_per_channel(600, 45, 1), 45 },
        { "channel_last_short", qsim_layout_per_channel(2000, 9, 1), 9 },
        { "block_last", qsim_layout_blockwise(300, 64, 1, 16), 300 * 4 },
    };
}

struct HalfData {
    std::vector<uint16_t> x, dy;
    std::vector<float>    scale, zp;
    qsim_qparams          p;
};

HalfData half_data(const HalfCase & c, qsim_half_kind kind, std::mt19937 & rng) {
    HalfData                        d;
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (int64_t q = 0; q < c.qparams; q++) {
        d.scale.push_back(std::ldexp(1.0f + unit(rng), -6 + static_cast<int>(unit(rng) * 6.0f)));
        d.zp.push_back(std::floor(unit(rng) * 256.0f));
    }
    d.p = { d.scale.data(), d.zp.data(), 0.0f, 255.0f };
    const int64_t n = qsim_layout_numel(&c.layout);
    std::vector<float> xf(n), dyf(n);
    for (int64_t i = 0; i < n; i++) {
        xf[i]  = normal(rng);
        dyf[i] = normal(rng);
    }
    xf[5] = NAN, xf[6] = INFINITY, xf[7] = -INFINITY;
    d.x.resize(n), d.dy.resize(n);
    qsim_narrow_h16(kind, n, xf.data(), d.x.data());
    qsim_narrow_h16(kind, n, dyf.data(), d.dy.data());
    return d;
}

TEST_P(QdqKernels, HalfDriversEqualWidenComputeNarrow) {
    std::mt19937 rng(qsim_test::kSeed + 32);
    for (const HalfCase & c : half_cases()) {
        const qsim_layout l = c.layout;
        const int64_t     n = qsim_layout_numel(&l);
        for (qsim_half_kind kind : kKinds) {
            const HalfData d = half_data(c, kind, rng);
            std::vector<float> xf(n), dyf(n), yf(n), dxf(n);
            qsim_widen_h16(kind, n, d.x.data(), xf.data());
            qsim_widen_h16(kind, n, d.dy.data(), dyf.data());
            for (const ForwardKernel & f : kForward) {
                qsim_forward_f32(&k(), f.op, &l, &d.p, xf.data(), yf.data(), 0, n);
                qsim_backward_f32(&k(), f.op, &l, &d.p, xf.data(), dyf.data(), dxf.data(), 0, n);
                std::vector<uint16_t> want_y(n), want_dx(n);
                qsim_narrow_h16(kind, n, yf.data(), want_y.data());
                qsim_narrow_h16(kind, n, dxf.data(), want_dx.data());
                std::uniform_int_distribution<int64_t> cut(0, n);
                const int64_t          s[] = { 0, std::min<int64_t>(cut(rng), n), n };
                std::vector<uint16_t>  y(n, 0xdead), dx(n, 0xdead), inplace = d.x;
                for (int i = 0; i < 2; i++) {
                    const int64_t b = std::min(s[i], s[i + 1]), e = std::max(s[i], s[i + 1]);
                    qsim_forward_h16(&k(), f.op, kind, &l, &d.p, d.x.data(), y.data(), b, e);
                    qsim_forward_h16(&k(), f.op, kind, &l, &d.p, inplace.data(), inplace.data(), b, e);
                    qsim_backward_h16(&k(), f.op, kind, &l, &d.p, d.x.data(), d.dy.data(), dx.data(), b, e);
                }
                EXPECT_EQ(y, want_y) << c.name << " kind " << kind << " op " << f.name;
                EXPECT_EQ(inplace, want_y) << c.name << " kind " << kind << " op " << f.name << " in place";
                EXPECT_EQ(dx, want_dx) << c.name << " kind " << kind << " op " << f.name << " dx";
            }
        }
    }
}

// The first index where two arrays differ in their bits, or -1.
template <class T> int64_t first_difference(const std::vector<T> & a, const std::vector<T> & b) {
    for (size_t i = 0; i < a.size(); i++) {
        if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) {
            return static_cast<int64_t>(i);
        }
    }
    return -1;
}

TEST_P(QdqKernels, HalfReduceEqualsWidenReduceNarrow) {
    std::mt19937          rng(qsim_test::kSeed + 33);
    std::vector<HalfCase> cases = half_cases();
    cases.push_back({ "per_tensor_tiles", qsim_layout_per_tensor(2 * QSIM_REDUCE_TILE + 77), 1 });
    cases.push_back({ "block_middle", qsim_layout_blockwise(3, 64, 5, 16), 3 * 4 * 5 });
    for (const HalfCase & c : cases) {
        const qsim_layout l = c.layout;
        const int64_t     n = qsim_layout_numel(&l), groups = qsim_reduce_groups(&l);
        std::vector<float> scratch(std::max<int64_t>(1, qsim_reduce_h16_scratch(&l)));
        for (qsim_half_kind kind : kKinds) {
            const HalfData d = half_data(c, kind, rng);
            std::vector<float> xf(n), dyf(n), dxf(n);
            qsim_widen_h16(kind, n, d.x.data(), xf.data());
            qsim_widen_h16(kind, n, d.dy.data(), dyf.data());
            for (const ForwardKernel & f : kForward) {
                std::vector<double> want(2 * groups), got(2 * groups, -1.0), inplace_sums = got;
                qsim_backward_reduce_f32(&k(), f.op, &l, &d.p, xf.data(), dyf.data(), dxf.data(),
                                         want.data(), 0, groups);
                std::vector<uint16_t> want_dx(n), dx(n, 0xdead), inplace = d.dy;
                qsim_narrow_h16(kind, n, dxf.data(), want_dx.data());
                const int64_t cut = std::uniform_int_distribution<int64_t>(0, groups)(rng);
                for (const auto & [b, e] : { std::pair{ cut, groups }, std::pair{ int64_t{ 0 }, cut } }) {
                    qsim_backward_reduce_h16(&k(), f.op, kind, &l, &d.p, d.x.data(), d.dy.data(),
                                             dx.data(), got.data(), b, e, scratch.data());
                    qsim_backward_reduce_h16(&k(), f.op, kind, &l, &d.p, d.x.data(), inplace.data(),
                                             inplace.data(), inplace_sums.data(), b, e, scratch.data());
                }
                const std::string what = std::string(c.name) + " kind " + std::to_string(kind) + " op " + f.name;
                const int64_t     i = first_difference(dx, want_dx), j = first_difference(got, want);
                EXPECT_EQ(i, -1) << what << " dx[" << i << "] = " << dx[std::max<int64_t>(i, 0)]
                                 << ", want " << want_dx[std::max<int64_t>(i, 0)];
                EXPECT_EQ(j, -1) << what << " sums[" << j << "] = " << got[std::max<int64_t>(j, 0)]
                                 << ", want " << want[std::max<int64_t>(j, 0)];
                EXPECT_EQ(first_difference(inplace, want_dx), -1) << what << " dx in place";
                EXPECT_EQ(first_difference(inplace_sums, want), -1) << what << " sums in place";
            }
        }
    }
}

}  // namespace
