// GoogleTest for the qdq run kernels of qsim/qdq.h (quantize, dequantize, quantize-dequantize and
// their backwards), for every compiled variant (reference included):
//   - vs the fp32 oracle of the docs/design.md §2 formula (qdq_oracle.h) and vs the ref kernels, bit for
//     bit, at every length 0..129 and at 4099 and 2^16 + 3, unaligned and in place;
//   - every bitwidth 2..16 on the signed, strict symmetric and unsigned grids with non-zero zero
//     points, saturation at both ends;
//   - hand-computed known answers: ties, saturation, zero-point shifts, +-Inf, NaN, denormal and
//     huge scales, FLT_MAX, the STE mask and the range-learning sums;
//   - backward sums bit for bit against the lane order documented in qdq.h and within a stated
//     bound of a double-precision oracle.
// The casts are in test_qdq_casts.cpp, the layout drivers in test_qdq_layout.cpp;
// test_qdq_variants.cpp compares each ISA variant with ref on its own random data as well.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "qdq_oracle.h"
#include "qsim_test_util.h"

namespace {

using namespace qdq_test;
using qsim_test::describe;
using qsim_test::floats_match;
using qsim_test::Placed;
using qsim_test::run_label;
using qsim_test::run_map;
using qsim_test::same_bits;

// ---- calling the kernels ----------------------------------------------------------------------

struct BackwardResult {
    std::vector<float> dx;
    double             sums[2];
};

constexpr double kSumsStart[2] = { 0.25, -1.5 };  // the kernels add to sums[]

// dx = fn(x, dy) with the runs at `offset`; in place writes dx over dy.
BackwardResult run_backward(qsim_run_bwd_fn fn, const std::vector<float> & x, const std::vector<float> & dy,
                            const qsim_grid & g, size_t offset, bool in_place, bool with_sums) {
    Placed         px(x, offset), pdy(dy, (offset + 1) % 16), pdx(std::vector<float>(x.size(), 0.0f), (offset + 2) % 16);
    Placed &       out = in_place ? pdy : pdx;
    BackwardResult r{ {}, { kSumsStart[0], kSumsStart[1] } };
    fn(x.size(), px.data(), pdy.data(), out.data(), g, with_sums ? r.sums : nullptr);
    EXPECT_TRUE(px.guards_intact() && pdy.guards_intact() && pdx.guards_intact())
        << "wrote outside the run of " << x.size();
    r.dx = out.values();
    return r;
}

// ---- checks shared by the sweeps ------------------------------------------------------------

// Every forward kernel of `k` on x: equal to the oracle and to ref, bit for bit, at the given
// offsets, out of place and in place.
void check_forward(const qsim_qdq_kernels & k, const std::vector<float> & x, const qsim_grid & g,
                   const std::vector<size_t> & offsets) {
    for (const ForwardKernel & f : kForward) {
        std::vector<float> want(x.size());
        for (size_t i = 0; i < x.size(); i++) {
            want[i] = oracle_forward(f.op, x[i], g);
        }
        const std::vector<float> by_ref = run_map(x, 0, false, [&](float * a, float * b) {
            (ref().*f.fn)(x.size(), a, b, g);
        });
        ASSERT_TRUE(floats_match(x.size(), x.data(), want.data(), by_ref.data()))
            << "ref " << f.name << " vs oracle, n=" << x.size() << " scale=" << g.scale << " zp=" << g.zero_point;
        for (size_t off : offsets) {
            for (bool in_place : { false, true }) {
                const std::vector<float> got = run_map(x, off, in_place, [&](float * a, float * b) {
                    (k.*f.fn)(x.size(), a, b, g);
                });
                ASSERT_TRUE(floats_match(x.size(), x.data(), by_ref.data(), got.data()))
                    << k.name << " vs ref: " << run_label(f.name, x.size(), off, in_place) << " scale=" << g.scale;
            }
        }
    }
}

// Every backward kernel of `k` on (x, dy), with and without sums. The ref kernel first: dx equal
// to the oracle, both sums equal to the lane-order oracle (bit for bit) and, where every fp32 term
// is finite (no NaN input, no overflow), within sum_tolerance of the double oracle. Then `k` at
// every offset, out of place and in place (dx over dy): dx and sums bit for bit those of ref.
void check_backward(const qsim_qdq_kernels & k, const std::vector<float> & x, const std::vector<float> & dy,
                    const qsim_grid & g, const std::vector<size_t> & offsets) {
    for (const BackwardKernel & b : kBackward) {
        std::vector<float> want(x.size()), ds(x.size()), dzp(x.size());
        double             exact[2] = { 0.0, 0.0 }, bound[2] = { 0.0, 0.0 };
        bool               finite[2] = { true, true };
        for (size_t i = 0; i < x.size(); i++) {
            want[i]            = oracle_dx(b.op, x[i], dy[i], g);
            const Terms      t = float_terms(b.op, x[i], dy[i], g);
            const ExactTerms e = exact_terms(b.op, x[i], dy[i], g);
            ds[i]              = t.ds;
            dzp[i]             = t.dzp;
            finite[0]          = finite[0] && std::isfinite(t.ds);
            finite[1]          = finite[1] && std::isfinite(t.dzp);
            exact[0] += e.ds;
            exact[1] += e.dzp;
            bound[0] += e.ds_bound;
            bound[1] += e.dzp_bound;
        }
        const std::string    at    = std::string(b.name) + " n=" + std::to_string(x.size()) + " scale=" + describe(g.scale);
        const BackwardResult by_ref = run_backward(ref().*b.fn, x, dy, g, 0, false, true);
        ASSERT_TRUE(floats_match(x.size(), x.data(), want.data(), by_ref.dx.data())) << "ref " << at << " dx vs oracle";
        const double lanes[2] = { kSumsStart[0] + lane_order_sum(ds), kSumsStart[1] + lane_order_sum(dzp) };
        for (int s = 0; s < 2; s++) {
            const char * which = s == 0 ? " scale sum" : " zero-point sum";
            ASSERT_TRUE(same_bits(lanes[s], by_ref.sums[s]))
                << "ref " << at << which << ": lane-order oracle " << describe(lanes[s]) << ", got "
                << describe(by_ref.sums[s]);
            if (finite[s]) {
                // the kernel adds its sum to the start value: one more rounding
                const double target = kSumsStart[s] + exact[s];
                EXPECT_LE(std::fabs(by_ref.sums[s] - target),
                          sum_tolerance(bound[s]) + std::ldexp(std::fabs(target), -52))
                    << "ref " << at << which << ": double oracle " << describe(target) << ", got "
                    << describe(by_ref.sums[s]);
            }
        }
        for (size_t off : offsets) {
            for (bool in_place : { false, true }) {
                for (bool with_sums : { false, true }) {
                    const std::string    w = std::string(k.name) + " vs ref: " + run_label(b.name, x.size(), off, in_place) +
                                          (with_sums ? " with sums" : "") + " scale=" + describe(g.scale);
                    const BackwardResult r = run_backward(k.*b.fn, x, dy, g, off, in_place, with_sums);
                    ASSERT_TRUE(floats_match(x.size(), x.data(), by_ref.dx.data(), r.dx.data())) << w;
                    for (int s = 0; s < 2 && with_sums; s++) {
                        ASSERT_TRUE(same_bits(by_ref.sums[s], r.sums[s]))
                            << w << (s == 0 ? " scale sum" : " zero-point sum") << ": ref "
                            << describe(by_ref.sums[s]) << ", got " << describe(r.sums[s]);
                    }
                }
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Variants, QdqKernels, ::testing::ValuesIn(all_variants()), variant_name);

const std::vector<size_t> kOffsets     = { 0, 1, 3, 7 };
const std::vector<size_t> kFewOffsets  = { 1 };
const std::vector<size_t> kLargeSizes  = { 4099, (size_t{ 1 } << 16) + 3 };

TEST_P(QdqKernels, ForwardMatchesOracleAndRefAtEveryLengthOffsetAndInPlace) {
    std::mt19937 rng(qsim_test::kSeed + 1);
    for (const qsim_grid & g : sweep_grids()) {
        for (size_t n = 0; n <= 129; n++) {
            ASSERT_NO_FATAL_FAILURE(check_forward(k(), grid_inputs(n, g, rng), g, kOffsets));
        }
    }
}

TEST_P(QdqKernels, BackwardMatchesOracleAndRefAtEveryLengthOffsetAndInPlace) {
    std::mt19937 rng(qsim_test::kSeed + 2);
    for (const qsim_grid & g : sweep_grids()) {
        for (size_t n = 0; n <= 129; n++) {
            // odd lengths take non-finite inputs too; even ones stay finite so that the double
            // oracle bounds their sums
            const std::vector<float> x = grid_inputs(n, g, rng, n % 2 == 0);
            ASSERT_NO_FATAL_FAILURE(check_backward(k(), x, gradients(n, rng), g, kOffsets));
        }
    }
}

TEST_P(QdqKernels, LargeRunsMatchOracleAndRef) {
    std::mt19937 rng(qsim_test::kSeed + 4);
    const qsim_grid g = make_grid(0.02f, -7.0f, -128.0f, 127.0f);
    for (size_t n : kLargeSizes) {
        const std::vector<float> x = grid_inputs(n, g, rng);
        ASSERT_NO_FATAL_FAILURE(check_forward(k(), x, g, kFewOffsets));
        ASSERT_NO_FATAL_FAILURE(check_backward(k(), grid_inputs(n, g, rng, true), gradients(n, rng), g, kFewOffsets));
    }
}

// The lane-order check can fail: on the data of the sweeps a plain left-to-right sum differs.
TEST(QdqOracles, LaneOrderDiffersFromASequentialSumOnTestData) {
    std::mt19937       rng(qsim_test::kSeed + 2);
    const std::vector<float> dy = gradients(1000, rng);
    double sequential = 0.0;
    for (float d : dy) {
        sequential += static_cast<double>(d);
    }
    EXPECT_NE(bits(sequential), bits(lane_order_sum(dy)));
}

// Every bitwidth 2..16 on the three grids, the zero point at both grid ends, near the middle and
// at random; saturation at both ends is checked on its own as well.
TEST_P(QdqKernels, EveryBitwidthAndGridMatchesOracle) {
    std::mt19937 rng(qsim_test::kSeed + 5);
    for (int b = 2; b <= 16; b++) {
        for (GridKind kind : { GridKind::kSigned, GridKind::kStrict, GridKind::kUnsigned }) {
            const auto [qmin, qmax] = grid_bounds(kind, b);
            std::uniform_int_distribution<int> zp_dist(static_cast<int>(qmin), static_cast<int>(qmax));
            for (float zp : { qmin, qmax, std::floor((qmin + qmax) / 2.0f) + 1.0f, static_cast<float>(zp_dist(rng)) }) {
                const float     scale = std::ldexp(1.0f + std::uniform_real_distribution<float>(0.0f, 1.0f)(rng), -b);
                const qsim_grid g     = make_grid(scale, zp, qmin, qmax);
                SCOPED_TRACE("bits=" + std::to_string(b) + " grid=[" + std::to_string(qmin) + ", " +
                             std::to_string(qmax) + "] zp=" + std::to_string(zp) + " scale=" + describe(scale));
                const std::vector<float> x = grid_inputs(300, g, rng);
                ASSERT_NO_FATAL_FAILURE(check_forward(k(), x, g, kFewOffsets));
                const std::vector<float> finite = grid_inputs(300, g, rng, true);
                ASSERT_NO_FATAL_FAILURE(check_backward(k(), finite, gradients(finite.size(), rng), g, kFewOffsets));

                // saturation: +-Inf, +-FLT_MAX and values far past either end land on the ends
                const std::vector<float> high = { kInf, FLT_MAX, (qmax - zp + 10.0f) * scale };
                const std::vector<float> low  = { -kInf, -FLT_MAX, (qmin - zp - 10.0f) * scale };
                std::vector<float>       q(3);
                k().quantize(3, high.data(), q.data(), g);
                for (size_t i = 0; i < 3; i++) {
                    EXPECT_EQ(q[i], qmax) << "input " << describe(high[i]);
                }
                k().quantize(3, low.data(), q.data(), g);
                for (size_t i = 0; i < 3; i++) {
                    EXPECT_EQ(q[i], qmin) << "input " << describe(low[i]);
                }
            }
        }
    }
}

// ---- known answers (hand-computed; the arithmetic is in the comments) -----------------------

struct KnownForward {
    float       x;
    qsim_grid   g;
    float       q, y;  // quantize(x), qdq(x)
    const char *why;
};

void check_known(const qsim_qdq_kernels & k, const KnownForward & c) {
    float q = 0.0f, y = 0.0f, back = 0.0f;
    k.quantize(1, &c.x, &q, c.g);
    k.qdq(1, &c.x, &y, c.g);
    k.dequantize(1, &q, &back, c.g);
    const auto same = [](float want, float got) { return std::isnan(want) ? std::isnan(got) : want == got; };
    EXPECT_TRUE(same(c.q, q)) << c.why << ": quantize(" << describe(c.x) << ") = " << describe(q)
                              << ", expected " << describe(c.q);
    EXPECT_TRUE(same(c.y, y)) << c.why << ": qdq(" << describe(c.x) << ") = " << describe(y)
                              << ", expected " << describe(c.y);
    EXPECT_TRUE(same(c.y, back)) << c.why << ": dequantize(" << describe(q) << ") = " << describe(back)
                                 << ", expected " << describe(c.y);
}

TEST_P(QdqKernels, ForwardKnownAnswers) {
    const qsim_grid i8  = make_grid(1.0f, 0.0f, -128.0f, 127.0f);
    const qsim_grid i4  = make_grid(0.5f, 3.0f, -8.0f, 7.0f);
    const qsim_grid u8  = make_grid(0.25f, 100.0f, 0.0f, 255.0f);
    const qsim_grid s4  = make_grid(1.0f, 0.0f, -7.0f, 7.0f);
    const qsim_grid neg = make_grid(2.0f, -3.0f, -128.0f, 127.0f);
    const qsim_grid u2  = make_grid(1.0f, 1.0f, 0.0f, 3.0f);
    const KnownForward cases[] = {
        // ties go to even: t = x/1
        { 0.5f, i8, 0.0f, 0.0f, "0.5 -> 0" },
        { 1.5f, i8, 2.0f, 2.0f, "1.5 -> 2" },
        { 2.5f, i8, 2.0f, 2.0f, "2.5 -> 2" },
        { -2.5f, i8, -2.0f, -2.0f, "-2.5 -> -2" },
        { 3.5f, i8, 4.0f, 4.0f, "3.5 -> 4" },
        { -0.5f, i8, 0.0f, 0.0f, "-0.5 -> 0" },
        { 127.5f, i8, 127.0f, 127.0f, "127.5 -> 128 clamps to 127" },
        { -128.5f, i8, -128.0f, -128.0f, "-128.5 -> -128 (even) stays" },
        // s = 0.5, zp = 3, [-8, 7]: q = clamp(rint(2x) + 3), y = (q - 3) / 2
        { 10.0f, i4, 7.0f, 2.0f, "20 + 3 = 23 -> 7, y = 4 * 0.5" },
        { -10.0f, i4, -8.0f, -5.5f, "-20 + 3 = -17 -> -8, y = -11 * 0.5" },
        { 2.25f, i4, 7.0f, 2.0f, "4.5 -> 4, + 3 = 7 (top, not clamped)" },
        { 2.75f, i4, 7.0f, 2.0f, "5.5 -> 6, + 3 = 9 -> 7" },
        { -5.75f, i4, -8.0f, -5.5f, "-11.5 -> -12, + 3 = -9 -> -8" },
        { 1.0f, i4, 5.0f, 1.0f, "2 + 3 = 5, y = 2 * 0.5" },
        // s = 0.25, zp = 100, [0, 255]: the zero point shifts the grid to [-25, 38.75]
        { 1.3f, u8, 105.0f, 1.25f, "1.3/0.25 = 5.2 -> 5, + 100 = 105, y = 5 * 0.25" },
        { 0.625f, u8, 102.0f, 0.5f, "2.5 -> 2 (tie before the shift), + 100 = 102" },
        { -25.125f, u8, 0.0f, -25.0f, "-100.5 -> -100, + 100 = 0, y = -100 * 0.25" },
        { -25.25f, u8, 0.0f, -25.0f, "-101 + 100 = -1 -> 0" },
        { 38.875f, u8, 255.0f, 38.75f, "155.5 -> 156, + 100 = 256 -> 255, y = 155 * 0.25" },
        // strict symmetric 4-bit [-7, 7]: -8 is off the grid
        { -8.0f, s4, -7.0f, -7.0f, "-8 -> -7" },
        { -7.5f, s4, -7.0f, -7.0f, "-7.5 -> -8 (even) -> -7" },
        { -6.5f, s4, -6.0f, -6.0f, "-6.5 -> -6 (even)" },
        // s = 2, zp = -3: q = rint(x/2) - 3, y = (q + 3) * 2
        { 5.0f, neg, -1.0f, 4.0f, "2.5 -> 2, - 3 = -1, y = 2 * 2" },
        { -7.0f, neg, -7.0f, -8.0f, "-3.5 -> -4, - 3 = -7, y = -4 * 2" },
        { 300.0f, neg, 127.0f, 260.0f, "150 - 3 = 147 -> 127, y = 130 * 2" },
        // 2-bit unsigned [0, 3], zp = 1
        { -1.5f, u2, 0.0f, -1.0f, "-1.5 -> -2, + 1 = -1 -> 0, y = -1" },
        { 2.5f, u2, 3.0f, 2.0f, "2.5 -> 2, + 1 = 3, y = 2" },
        // fp32 division, not x * (1/s): 1.55f = 1.54999995231628, 0.1f = 0.100000001490116;
        // 1.55f / 0.1f = 15.4999993 rounds to the float 15.499999 -> 15, y = 15 * 0.1f = 1.5000000224
        // -> 1.5f. Multiplying by 1/0.1f (which rounds to 10.0f) would give 15.5 -> 16.
        { 1.55f, make_grid(0.1f, 0.0f, -128.0f, 127.0f), 15.0f, 1.5f, "x / s, never x * (1/s)" },
    };
    for (const KnownForward & c : cases) {
        check_known(k(), c);
    }
}

TEST_P(QdqKernels, NonFiniteDenormalAndExtremeKnownAnswers) {
    const qsim_grid i4     = make_grid(0.5f, 3.0f, -8.0f, 7.0f);
    const float     tiny   = std::ldexp(1.0f, -140);  // denormal scale 2^-140
    const qsim_grid dscale = make_grid(tiny, 0.0f, -128.0f, 127.0f);
    const qsim_grid huge   = make_grid(std::ldexp(1.0f, 100), -1.0f, -8.0f, 7.0f);
    const qsim_grid top    = make_grid(FLT_MAX / 4.0f, 0.0f, 0.0f, 15.0f);
    const KnownForward cases[] = {
        // s = 0.5, zp = 3, [-8, 7]: Inf saturates to the ends, NaN goes to qmin (as onnxruntime)
        { kInf, i4, 7.0f, 2.0f, "+Inf -> qmax 7, y = (7 - 3) * 0.5" },
        { -kInf, i4, -8.0f, -5.5f, "-Inf -> qmin -8, y = (-8 - 3) * 0.5" },
        { kNaN, i4, -8.0f, -5.5f, "NaN -> qmin -8, y = (-8 - 3) * 0.5" },
        { -kNaN, i4, -8.0f, -5.5f, "-NaN -> qmin -8" },
        { FLT_MAX, i4, 7.0f, 2.0f, "FLT_MAX / 0.5 overflows to Inf -> 7" },
        { -FLT_MAX, i4, -8.0f, -5.5f, "-FLT_MAX / 0.5 -> -Inf -> -8" },
        { from_bits(0x00000001u), i4, 3.0f, 0.0f, "2^-149 / 0.5 = 2^-148 -> 0, + 3 = 3, y = 0" },
        { -FLT_MIN, i4, 3.0f, 0.0f, "-2^-126 -> -0, + 3 = 3, y = 0" },
        // denormal scale 2^-140: t = x * 2^140 exactly while x is a multiple of 2^-149
        { 3.0f * tiny, dscale, 3.0f, 3.0f * tiny, "t = 3, y = 3 * 2^-140" },
        { 2.5f * tiny, dscale, 2.0f, 2.0f * tiny, "t = 2.5 -> 2, y = 2^-139" },
        { 1.0f, dscale, 127.0f, 127.0f * tiny, "1 / 2^-140 overflows to Inf -> 127, y = 127 * 2^-140 (denormal)" },
        { -1.0f, dscale, -128.0f, -128.0f * tiny, "-> -128, y = -2^-133" },
        // huge scale 2^100, zp = -1
        { 2.5f * std::ldexp(1.0f, 100), huge, 1.0f, std::ldexp(1.0f, 101), "t = 2.5 -> 2, - 1 = 1, y = 2 * 2^100" },
        { FLT_MAX, huge, 7.0f, std::ldexp(1.0f, 103), "FLT_MAX / 2^100 ~ 2.7e8 -> 7, y = 8 * 2^100" },
        { 1.0f, huge, -1.0f, 0.0f, "2^-100 -> 0, - 1 = -1, y = 0 * 2^100" },
        // y = 15 * FLT_MAX/4 is past FLT_MAX: the fp32 product of the convention overflows to Inf
        { kInf, top, 15.0f, kInf, "15 * (FLT_MAX / 4) overflows" },
    };
    for (const KnownForward & c : cases) {
        check_known(k(), c);
    }
    // NaN goes to qmin out of quantize and qdq at any position of a run (onnxruntime's
    // QuantizeLinear); dequantize, whose input is grid integers, keeps it
    std::vector<float> x(37, 1.0f);
    x[0] = x[17] = x[36] = kNaN;
    for (const ForwardKernel & f : kForward) {
        std::vector<float> y(x.size());
        (k().*f.fn)(x.size(), x.data(), y.data(), i4);
        const float want = f.op == QSIM_OP_QUANTIZE ? -8.0f : f.op == QSIM_OP_QDQ ? -5.5f : kNaN;
        for (size_t i : { 0, 17, 36 }) {
            EXPECT_TRUE(std::isnan(want) ? std::isnan(y[i]) : y[i] == want)
                << f.name << " at index " << i << " gave " << describe(y[i]);
        }
    }
}

// s = 0.5, zp = 3, [-8, 7]; x = {1.1, 10, -10, NaN, +Inf, 2.25, 2.75}, dy = {1, 2, -1, 5, 5, 3, 3}.
// t = 2x: 2.2 -> pos 5 inside; 20 -> 23 and -20 -> -17 clamped; NaN is not inside; Inf clamped;
// 4.5 -> 4 -> 7 inside (top); 5.5 -> 6 -> 9 clamped.
TEST_P(QdqKernels, BackwardKnownAnswers) {
    const qsim_grid          g  = make_grid(0.5f, 3.0f, -8.0f, 7.0f);
    const std::vector<float> x  = { 1.1f, 10.0f, -10.0f, kNaN, kInf, 2.25f, 2.75f };
    const std::vector<float> dy = { 1.0f, 2.0f, -1.0f, 5.0f, 5.0f, 3.0f, 3.0f };
    const size_t             n  = x.size();
    std::vector<float>       dx(n);
    double                   sums[2] = { 0.0, 0.0 };

    // QDQ: dx = dy inside, 0 outside (NaN included)
    k().qdq_backward(n, x.data(), dy.data(), dx.data(), g, nullptr);
    const std::vector<float> qdq_dx = { 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 3.0f, 0.0f };
    EXPECT_TRUE(floats_match(n, x.data(), qdq_dx.data(), dx.data())) << "qdq dx";

    // QUANTIZE: dx = dy / 0.5 inside
    k().quantize_backward(n, x.data(), dy.data(), dx.data(), g, nullptr);
    const std::vector<float> q_dx = { 2.0f, 0.0f, 0.0f, 0.0f, 0.0f, 6.0f, 0.0f };
    EXPECT_TRUE(floats_match(n, x.data(), q_dx.data(), dx.data())) << "quantize dx";

    // Sums over the finite, non-NaN first three elements:
    //   QDQ ds:  1 * (2 - 2.2f) + 2 * (7 - 3) + (-1) * (-8 - 3) = 21 - 2.2f;  dzp: 0 - 2*0.5 + 0.5 = -0.5
    //   QUANTIZE ds: -(1 / 0.5) * 2.2f = -2 * 2.2f (the clamped two add 0);  dzp: 1
    const size_t three = 3;
    k().qdq_backward(three, x.data(), dy.data(), dx.data(), g, sums);
    EXPECT_EQ(sums[0], 21.0 - static_cast<double>(2.2f));
    EXPECT_EQ(sums[1], -0.5);
    sums[0] = sums[1] = 0.0;
    k().quantize_backward(three, x.data(), dy.data(), dx.data(), g, sums);
    EXPECT_EQ(sums[0], -2.0 * static_cast<double>(2.2f));
    EXPECT_EQ(sums[1], 1.0);

    // A NaN input is clamped to qmin (qz = -11, not inside): scale sum 21 - 2.2f + 5 * -11 (NaN)
    // + 5 * 4 (Inf) + 3 * (4 - 4.5) + 3 * 4 = -3.5 - 2.2f; zero-point sum -2*0.5 + 0.5 + -5*0.5
    // (NaN) + -5*0.5 (Inf) + 0 + -3*0.5 = -7
    sums[0] = sums[1] = 0.0;
    k().qdq_backward(n, x.data(), dy.data(), dx.data(), g, sums);
    EXPECT_EQ(sums[0], -3.5 - static_cast<double>(2.2f)) << describe(static_cast<float>(sums[0]));
    EXPECT_EQ(sums[1], -7.0);

    // DEQUANTIZE on grid integers q = {5, 7, -8}: dx = dy * 0.5; ds = 1*2 + 2*4 + (-1)*(-11) = 21;
    // dzp = -(1 + 2 - 1) * 0.5 = -1
    const std::vector<float> q = { 5.0f, 7.0f, -8.0f };
    sums[0] = sums[1] = 0.0;
    k().dequantize_backward(three, q.data(), dy.data(), dx.data(), g, sums);
    const std::vector<float> d_dx = { 0.5f, 1.0f, -0.5f };
    EXPECT_TRUE(floats_match(three, q.data(), d_dx.data(), dx.data())) << "dequantize dx";
    EXPECT_EQ(sums[0], 21.0);
    EXPECT_EQ(sums[1], -1.0);
}

}  // namespace
