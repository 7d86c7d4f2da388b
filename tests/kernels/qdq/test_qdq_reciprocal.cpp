// GoogleTest: the division-free qdq and straight-through backward of the vector variants (qsim_grid_reciprocal in
// kernels/qdq/qdq_common.h: x * (1 / s) in place of x / s, a lane near a half-integer recomputed
// with the division) against the `ref` kernels, bit for bit, on the inputs where x * (1 / s) and
// x / s can round to different integers: the floats nearest every half-integer (m + 0.5) * s of
// the grid and their neighbours up to 8 ulps away, for scales whose reciprocal rounds up, down or
// is exact, at both ends of the allowed scale range, on grids of 2 to 16 bits with and without a
// zero point; and the 16-bit kernels on every fp16 and bf16 pattern. Each with the division-free
// forms off and on (qsim_set_division_free), whatever this CPU's default. Also the rule itself:
// which grids take the reciprocal.
#include <sstream>

#include "qdq_variant_test_util.h"

extern "C" {
#include "qdq/qdq_common.h"
}

namespace {

TEST(QdqReciprocalRule, TakesShiftableGridsWithNormalReciprocalsUpToTheBound) {
    EXPECT_TRUE(qsim_grid_reciprocal({ 0.02f, 0.0f, -128.0f, 127.0f }, 0x1p12f));
    EXPECT_TRUE(qsim_grid_reciprocal({ 0x1p126f, 3.0f, 0.0f, 255.0f }, 0x1p12f));
    EXPECT_TRUE(qsim_grid_reciprocal({ 0x1p-126f, 3.0f, 0.0f, 255.0f }, 0x1p12f));
    EXPECT_FALSE(qsim_grid_reciprocal({ 0x1p-127f, 0.0f, -128.0f, 127.0f }, 0x1p12f));  // 1/s = inf
    EXPECT_FALSE(qsim_grid_reciprocal({ 0x1p127f, 0.0f, -128.0f, 127.0f }, 0x1p12f));   // subnormal 1/s
    EXPECT_FALSE(qsim_grid_reciprocal({ 0.02f, 0.5f, -128.0f, 127.0f }, 0x1p12f));      // not shiftable
    EXPECT_FALSE(qsim_grid_reciprocal({ 0.02f, 0.0f, -32768.0f, 32767.0f }, 0x1p12f));  // past bound
    EXPECT_TRUE(qsim_grid_reciprocal({ 0.02f, 0.0f, -32768.0f, 32767.0f }, 0x1p16f));
}

TEST(QdqReciprocalRule, DivisionFreeSettingIsWhatWasSetLast) {
    const int before = qsim_division_free();
    EXPECT_TRUE(before == 0 || before == 1);
    qsim_set_division_free(0);
    EXPECT_EQ(qsim_division_free(), 0);
    qsim_set_division_free(7);
    EXPECT_EQ(qsim_division_free(), 1);
    qsim_set_division_free(before);
}

TEST_P(QdqVariant, ReciprocalQdqAndBackwardMatchRefNearEveryHalfInteger) {
    with_division_free_off_and_on([&] {
        std::mt19937 rng(5);
        for (float s : reciprocal_scales()) {
            for (const auto & [zp, qmin, qmax] : kReciprocalGrids) {
                const qsim_grid          g = { s, zp, qmin, qmax };
                const std::vector<float> x = near_half_inputs(g, rng);
                const std::vector<float> want = run_elementwise(x, 0, false, [&](float * a, float * b) {
                    ref().qdq(x.size(), a, b, g);
                });
                std::ostringstream what;
                what << "scale=" << std::hexfloat << s << std::defaultfloat << " zp=" << zp << " ["
                     << qmin << ", " << qmax << "]";
                for (bool in_place : { false, true }) {
                    const std::vector<float> got = run_elementwise(x, 1, in_place, [&](float * a, float * b) {
                        k_->qdq(x.size(), a, b, g);
                    });
                    expect_same_bits(want, got, x, "qdq " + what.str() + (in_place ? " in place" : ""));
                }
                // the straight-through backward (no sums): dy = 1 shows the mask, -0 where clamped
                const std::vector<float> dy(x.size(), 1.0f);
                std::vector<float>       dx_ref(x.size()), dx(x.size());
                ref().qdq_backward(x.size(), x.data(), dy.data(), dx_ref.data(), g, nullptr);
                k_->qdq_backward(x.size(), x.data(), dy.data(), dx.data(), g, nullptr);
                expect_same_bits(dx_ref, dx, x, "qdq_backward " + what.str());
                if (::testing::Test::HasFatalFailure()) {
                    return;
                }
            }
        }
    });
}

// The 16-bit kernels (qdq, its backward, the training form with its bits, ungated and with the ReLU
// gate): every fp16 and bf16 pattern, for the scales above and for scales h / (m + 0.5)
// that put h (exact in both kinds) within ulps of the half-integer m + 0.5, where x * (1 / s) and
// x / s round to different integers for some patterns (without the test of qsim_grid_reciprocal
// this fails on every 16-bit variant).
TEST_P(QdqVariant, ReciprocalHalfKernelsMatchRefOnEveryPattern) {
    with_division_free_off_and_on([&] {
        std::vector<uint16_t> all(65536), dy(65536);
        for (uint32_t i = 0; i < 65536; i++) {
            all[i] = static_cast<uint16_t>(i);
            dy[i]  = 0x3c00;  // 1.0 in fp16; in bf16 a small positive normal: the mask shows
        }
        std::vector<uint16_t> want(all.size()), got(all.size());
        for (const auto & [zp, qmin, qmax] : kReciprocalGrids) {
            std::vector<float> scales = reciprocal_scales();
            for (float h : { 1.125f, 1.25f, 1.75f }) {
                for (float m : { 0.0f, 1.0f, 2.0f, 5.0f, 37.0f }) {
                    scales.push_back(h / (m + 0.5f));
                }
            }
            for (float s : scales) {
                const qsim_grid g = { s, zp, qmin, qmax };
                for (qsim_half_kind kind : { QSIM_HALF_F16, QSIM_HALF_BF16 }) {
                    const auto expect_same = [&](const char * what) {
                        const auto d = std::mismatch(want.begin(), want.end(), got.begin());
                        std::ostringstream msg;
                        if (d.first != want.end()) {
                            msg << what << " kind " << kind << " scale=" << std::hexfloat << s
                                << std::defaultfloat << " zp=" << zp << " [" << qmin << ", " << qmax
                                << "] x bits 0x" << std::hex << d.first - want.begin() << ": want 0x"
                                << *d.first << " got 0x" << *d.second;
                        }
                        EXPECT_TRUE(d.first == want.end()) << msg.str();
                    };
                    ref().qdq_h16(kind, all.size(), all.data(), want.data(), g);
                    k_->qdq_h16(kind, all.size(), all.data(), got.data(), g);
                    expect_same("qdq_h16");
                    ref().qdq_backward_h16(kind, all.size(), all.data(), dy.data(), want.data(), g);
                    k_->qdq_backward_h16(kind, all.size(), all.data(), dy.data(), got.data(), g);
                    expect_same("qdq_backward_h16");
                    for (float gate : { -kInf, 0.0f }) {  // the training form and its ReLU gate
                        std::vector<uint8_t> want_bits(all.size() / 8), got_bits(all.size() / 8);
                        ref().qdq_mask_h16(kind, all.size(), all.data(), want.data(), want_bits.data(), g, gate);
                        k_->qdq_mask_h16(kind, all.size(), all.data(), got.data(), got_bits.data(), g, gate);
                        expect_same("qdq_mask_h16 values");
                        const auto b = std::mismatch(want_bits.begin(), want_bits.end(), got_bits.begin());
                        EXPECT_TRUE(b.first == want_bits.end())
                            << "qdq_mask_h16 bits kind " << kind << " scale=" << std::hexfloat << s
                            << " gate " << gate << " x bits 0x" << std::hex << 8 * (b.first - want_bits.begin())
                            << "..+7: want 0x" << int{ *b.first } << " got 0x" << int{ *b.second };
                    }
                    if (::testing::Test::HasFailure()) {
                        return;
                    }
                }
            }
        }
    });
}

}  // namespace

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(QdqVariant);
INSTANTIATE_TEST_SUITE_P(AllVariants, QdqVariant, ::testing::ValuesIn(variant_names()),
                         [](const auto & info) { return info.param; });
