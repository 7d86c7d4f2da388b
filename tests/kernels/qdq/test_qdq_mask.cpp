// GoogleTest: the qdq forward with clamped bits (qsim_run_mask_fn, the in-place training forward)
// and the backward from them (qsim_mask_bwd_fn). The references are checked against the kernels
// they stand in for: the forward's y is the `qdq` kernel's and element i's bit is 1 exactly where
// the straight-through backward (dy = 1) gives 0, the last byte's unused bits 0; the backward from
// the bits is `qdq_backward`'s dx bit for bit. Every variant then matches the references bit for
// bit: lengths 0..257 (every tail), four misalignments of the floats, in place and not, the
// special inputs and both clamp ends of every test grid, gradients with -0, +-Inf and NaN, never
// writing outside its run (guard floats and guard bytes), with the gate off (-Inf) and at 0. With
// gate 0 on grids that start at 0 the reference is qdq(relu(x)) and the gradient of ReLU then
// the quantizer, composed as torch composes them. The division-free form matches near every
// half-integer of the grid. The 16-bit drivers match the fp32 kernels on
// the widened values, through every variant, across chunk boundaries.
#include <sstream>

#include "qdq_variant_test_util.h"

namespace {

constexpr uint8_t kGuardByte = 0xa5;
constexpr float   kGates[]   = { -kInf, 0.0f };  // no gate; ReLU's

// Grids whose lowest value is 0 (zero point == qmin), where qdq(x) == qdq(relu(x)).
const std::vector<qsim_grid> & floor_grids() {
    static const std::vector<qsim_grid> g = { { 0.02f, 0.0f, 0.0f, 255.0f },
                                              { 0.1f, -128.0f, -128.0f, 127.0f } };
    return g;
}

struct Masked {
    std::vector<float>   y;
    std::vector<uint8_t> clamped;
};

size_t mask_bytes(size_t n) {
    return (n + 7) / 8;
}

// k's qdq_mask on x at misalignment off (floats), in place or into a second buffer.
Masked run_mask(const qsim_qdq_kernels & k, const std::vector<float> & x, size_t off, bool in_place,
                const qsim_grid & g, float gate = -kInf) {
    const size_t         n = x.size();
    Buffer               in(n, off), out(n, (off + 1) % 4);
    std::vector<uint8_t> bytes(mask_bytes(n) + 2 * kPad, kGuardByte);
    in.fill(x);
    Buffer &  dst = in_place ? in : out;
    uint8_t * f   = bytes.data() + kPad;
    k.qdq_mask(n, in.data(), dst.data(), f, g, gate);
    EXPECT_EQ(dst.touched_guard(), -1) << "y written outside the run, n=" << n;
    for (size_t i = 0; i < kPad; i++) {
        EXPECT_EQ(bytes[i], kGuardByte) << "byte written before the bits, n=" << n;
        EXPECT_EQ(bytes[kPad + mask_bytes(n) + i], kGuardByte) << "byte written after the bits, n=" << n;
    }
    return { dst.run(), std::vector<uint8_t>(f, f + mask_bytes(n)) };
}

void expect_same_mask(const std::vector<uint8_t> & want, const std::vector<uint8_t> & got,
                       const std::vector<float> & x, const std::string & what) {
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 0; i < x.size(); i++) {
        const int w = (want[i / 8] >> (i % 8)) & 1, o = (got[i / 8] >> (i % 8)) & 1;
        ASSERT_EQ(w, o) << what << " n=" << x.size() << " bit of index " << i << ": x="
                        << qsim_test::describe(x[i]);
    }
    for (size_t b = 0; b < want.size(); b++) {  // the last byte's unused bits too
        ASSERT_EQ(want[b], got[b]) << what << " n=" << x.size() << " byte " << b;
    }
}

// The bits of flags f[i] (0 or 1), as qsim_run_mask_fn lays them out.
std::vector<uint8_t> pack_bits(const std::vector<uint8_t> & f) {
    std::vector<uint8_t> b(mask_bytes(f.size()), 0);
    for (size_t i = 0; i < f.size(); i++) {
        b[i / 8] = static_cast<uint8_t>(b[i / 8] | (f[i] << (i % 8)));
    }
    return b;
}

TEST(QdqMaskRef, IsTheQdqKernelAndTheBackwardsZeros) {
    std::mt19937 rng(29);
    for (const qsim_grid & g : grids()) {
        for (size_t n : { size_t{ 0 }, size_t{ 1 }, size_t{ 31 }, size_t{ 1000 } }) {
            const std::vector<float> x = inputs(n, g, rng);
            std::vector<float>       y(n), ones(n, 1.0f), dx(n);
            ref().qdq(n, x.data(), y.data(), g);
            ref().qdq_backward(n, x.data(), ones.data(), dx.data(), g, nullptr);
            std::vector<uint8_t> flag(n);
            for (size_t i = 0; i < n; i++) {
                flag[i] = dx[i] == 0.0f ? 1 : 0;
            }
            const Masked got = run_mask(ref(), x, 0, false, g);
            expect_same_bits(y, got.y, x, "ref qdq_mask y");
            expect_same_mask(pack_bits(flag), got.clamped, x, "ref qdq_mask bits");
        }
    }
}

// dy for n elements: normal values with -0, +-Inf and NaN among them.
std::vector<float> gradients(size_t n, std::mt19937 & rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const float                     special[] = { -0.0f, kInf, -kInf, kNaN };
    std::vector<float>              dy(n);
    for (size_t i = 0; i < n; i++) {
        dy[i] = i % 7 == 3 ? special[(i / 7) % 4] : normal(rng);
    }
    return dy;
}

// k's qdq_mask_backward at misalignment off, into dy itself or a second buffer.
std::vector<float> run_mask_backward(const qsim_qdq_kernels & k, const std::vector<uint8_t> & clamped,
                                     const std::vector<float> & dy, size_t off, bool in_place) {
    Buffer d(dy.size(), off), out(dy.size(), (off + 2) % 4);
    d.fill(dy);
    Buffer & dst = in_place ? d : out;
    k.qdq_mask_backward(dy.size(), clamped.data(), d.data(), dst.data());
    EXPECT_EQ(dst.touched_guard(), -1) << "dx written outside the run, n=" << dy.size();
    return dst.run();
}

TEST(QdqMaskRef, BackwardIsTheStraightThroughBackward) {
    std::mt19937 rng(37);
    for (const qsim_grid & g : grids()) {
        for (size_t n : { size_t{ 0 }, size_t{ 1 }, size_t{ 31 }, size_t{ 1000 } }) {
            const std::vector<float> x = inputs(n, g, rng), dy = gradients(n, rng);
            std::vector<float>       want(n);
            ref().qdq_backward(n, x.data(), dy.data(), want.data(), g, nullptr);
            const Masked fwd = run_mask(ref(), x, 0, false, g);
            expect_same_bits(want, run_mask_backward(ref(), fwd.clamped, dy, 0, false), x,
                             "ref qdq_mask_backward");
        }
    }
}

// With gate 0 on a grid that starts at 0: y is qdq(relu(x)) and the bits are the zeros of the
// gradient of relu then the quantizer, as torch's autograd composes them: the quantizer's
// straight-through gradient at r = relu(x) (NaN stays NaN), then ReLU's, 0 where r <= 0.
TEST(QdqMaskRef, GateZeroIsReluThenTheQuantizer) {
    std::mt19937 rng(53);
    for (const qsim_grid & g : floor_grids()) {
        for (size_t n : { size_t{ 1 }, size_t{ 31 }, size_t{ 1000 } }) {
            const std::vector<float> x = inputs(n, g, rng);
            std::vector<float>       r(n), y(n), ones(n, 1.0f), dr(n);
            for (size_t i = 0; i < n; i++) {
                r[i] = x[i] > 0.0f || std::isnan(x[i]) ? x[i] : 0.0f;
            }
            ref().qdq(n, r.data(), y.data(), g);
            ref().qdq_backward(n, r.data(), ones.data(), dr.data(), g, nullptr);
            std::vector<uint8_t> flag(n);
            for (size_t i = 0; i < n; i++) {
                flag[i] = r[i] <= 0.0f || dr[i] == 0.0f ? 1 : 0;
            }
            const Masked got = run_mask(ref(), x, 0, false, g, 0.0f);
            expect_same_bits(y, got.y, x, "ref qdq_mask gate 0 y");
            expect_same_mask(pack_bits(flag), got.clamped, x, "ref qdq_mask gate 0 bits");
        }
    }
}

// A bit for each kind of input: in the grid, at both ends, beyond them, +-Inf and NaN.
TEST(QdqMaskRef, FlagsTheClampedInputsOnly) {
    const qsim_grid          g = { 0.5f, 1.0f, -8.0f, 7.0f };  // x in [-4.5, 3.0] is in the grid
    const std::vector<float> x = { 0.0f, -4.5f, 3.0f, 3.2f, -4.74f, 3.26f, -4.76f, kInf, -kInf, kNaN };
    const Masked got = run_mask(ref(), x, 0, false, g);
    expect_same_mask({ 0xe0, 0x03 }, got.clamped, x, "hand-made bits");  // indices 5-9
    EXPECT_EQ(got.y[5], 3.0f);
    EXPECT_EQ(got.y[9], -4.5f);  // NaN goes to qmin
    // gate 0 adds 0, -4.5 and -4.74 (indices 0, 1, 4), not the positive 3.0 and 3.2
    expect_same_mask({ 0xf3, 0x03 }, run_mask(ref(), x, 0, false, g, 0.0f).clamped, x,
                     "hand-made bits, gate 0");
}

TEST_P(QdqVariant, MaskForwardMatchesRefForEveryLengthAlignmentAndInPlace) {
    std::mt19937 rng(31);
    std::vector<qsim_grid> all = grids();
    all.insert(all.end(), floor_grids().begin(), floor_grids().end());
    for (const qsim_grid & g : all) {
        for (size_t n = 0; n <= kMaxLen; n++) {
            const std::vector<float> x = inputs(n, g, rng);
            for (float gate : kGates) {
                const Masked want = run_mask(ref(), x, 0, false, g, gate);
                for (size_t off = 0; off < 4; off++) {
                    for (bool in_place : { false, true }) {
                        const Masked      got  = run_mask(*k_, x, off, in_place, g, gate);
                        const std::string what = std::string("qdq_mask gate ") +
                                                 std::to_string(gate) + (in_place ? " in place" : "");
                        expect_same_bits(want.y, got.y, x, what);
                        expect_same_mask(want.clamped, got.clamped, x, what);
                    }
                }
            }
        }
    }
}

// The division-free form (qsim_grid_reciprocal) near every half-integer of the grid and past
// its ends, where the bit changes (near_half_inputs), with the form off and on.
TEST_P(QdqVariant, MaskForwardMatchesRefNearEveryHalfInteger) {
    with_division_free_off_and_on([&] {
        std::mt19937 rng(37);
        for (float s : reciprocal_scales()) {
            for (const auto & [zp, qmin, qmax] : kReciprocalGrids) {
                const qsim_grid          g = { s, zp, qmin, qmax };
                const std::vector<float> x = near_half_inputs(g, rng);
                for (float gate : kGates) {
                    const Masked      want = run_mask(ref(), x, 0, false, g, gate);
                    const Masked      got  = run_mask(*k_, x, 1, true, g, gate);
                    std::ostringstream what;
                    what << "qdq_mask scale=" << std::hexfloat << s << std::defaultfloat << " zp=" << zp
                         << " [" << qmin << ", " << qmax << "] gate " << gate;
                    expect_same_bits(want.y, got.y, x, what.str());
                    expect_same_mask(want.clamped, got.clamped, x, what.str());
                    if (::testing::Test::HasFatalFailure()) {
                        return;
                    }
                }
            }
        }
    });
}

TEST_P(QdqVariant, MaskBackwardMatchesRefForEveryLengthAlignmentAndInPlace) {
    std::mt19937 rng(41);
    for (const qsim_grid & g : grids()) {
        for (size_t n = 0; n <= kMaxLen; n++) {
            const std::vector<float> x = inputs(n, g, rng), dy = gradients(n, rng);
            const Masked             fwd  = run_mask(ref(), x, 0, false, g);
            const std::vector<float> want = run_mask_backward(ref(), fwd.clamped, dy, 0, false);
            for (size_t off = 0; off < 4; off++) {
                for (bool in_place : { false, true }) {
                    expect_same_bits(want, run_mask_backward(*k_, fwd.clamped, dy, off, in_place), x,
                                     std::string("qdq_mask_backward") + (in_place ? " in place" : ""));
                }
            }
        }
    }
}

// 16-bit patterns of n values of grid g (the fp32 inputs narrowed by the reference).
std::vector<uint16_t> half_inputs(qsim_half_kind kind, size_t n, const qsim_grid & g, std::mt19937 & rng) {
    const std::vector<float> x = inputs(n, g, rng);
    std::vector<uint16_t>    h(n);
    qsim_narrow_h16_ref(kind, n, x.data(), h.data());
    return h;
}

std::vector<float> widened(qsim_half_kind kind, const std::vector<uint16_t> & h) {
    std::vector<float> f(h.size());
    qsim_widen_h16_ref(kind, h.size(), h.data(), f.data());
    return f;
}

TEST_P(QdqVariant, HalfMaskDriversMatchTheFp32KernelsOnWidenedValues) {
    std::mt19937 rng(43);
    const qsim_grid g = grids()[0];
    for (qsim_half_kind kind : { QSIM_HALF_F16, QSIM_HALF_BF16 }) {
        for (size_t n : { size_t{ 0 }, size_t{ 5 }, size_t{ 4095 }, size_t{ 4096 }, size_t{ 4103 }, size_t{ 9000 } }) {
            const std::vector<uint16_t> x = half_inputs(kind, n, g, rng);
            const std::vector<float>    xf = widened(kind, x);
            std::vector<uint16_t>       want(n), got(x);
            qsim_qdq_h16_ref(kind, n, x.data(), want.data(), g);
            std::vector<uint8_t> bits(mask_bytes(n)), want_bits = run_mask(ref(), xf, 0, false, g).clamped;
            qsim_qdq_mask_h16(k_, kind, n, got.data(), got.data(), bits.data(), g, -kInf);  // in place
            ASSERT_EQ(want, got) << "qsim_qdq_mask_h16 values, kind " << kind << " n=" << n;
            expect_same_mask(want_bits, bits, xf, "qsim_qdq_mask_h16 bits");
            std::vector<uint8_t>  gated(mask_bytes(n));
            std::vector<uint16_t> scratch(n);
            qsim_qdq_mask_h16(k_, kind, n, x.data(), scratch.data(), gated.data(), g, 0.0f);
            expect_same_mask(run_mask(ref(), xf, 0, false, g, 0.0f).clamped, gated, xf,
                             "qsim_qdq_mask_h16 bits, gate 0");
            // the backward from the bits: qdq_backward_h16's dx, NaN payloads aside
            std::vector<uint16_t> dy = half_inputs(kind, n, grids()[1], rng), dx(n), back(dy);
            qsim_qdq_backward_h16_ref(kind, n, x.data(), dy.data(), dx.data(), g);
            k_->qdq_mask_backward_h16(n, bits.data(), back.data(), back.data());
            expect_same_bits(widened(kind, dx), widened(kind, back), xf, "qdq_mask_backward_h16");
        }
    }
}

// k's qdq_mask_backward_h16 on dy at misalignment off (16-bit values), into dy itself or a
// second buffer, with guard values on both sides that must stay as they were.
std::vector<uint16_t> run_mask_backward_h16(const qsim_qdq_kernels & k, const std::vector<uint8_t> & clamped,
                                            const std::vector<uint16_t> & dy, size_t off, bool in_place) {
    constexpr uint16_t    kGuard = 0x5a5a;
    const size_t          n      = dy.size();
    std::vector<uint16_t> d(n + off + kPad, kGuard), out(n + off + kPad, kGuard);
    std::copy(dy.begin(), dy.end(), d.begin() + off);
    std::vector<uint16_t> & dst = in_place ? d : out;
    k.qdq_mask_backward_h16(n, clamped.data(), d.data() + off, dst.data() + off);
    for (size_t i = 0; i < dst.size(); i++) {
        if (i < off || i >= off + n) {
            EXPECT_EQ(dst[i], kGuard) << "dx written outside the run at " << i << ", n=" << n;
        }
    }
    return std::vector<uint16_t>(dst.begin() + off, dst.begin() + off + n);
}

// Every variant's 16-bit backward from bits is the reference's, bit for bit: every length to
// kMaxLen (the 16-value steps and every tail), four misalignments, in place, any 16-bit pattern
// (NaN payloads, -0, Inf) kept where the bit is clear.
TEST_P(QdqVariant, HalfMaskBackwardMatchesRefForEveryLengthAlignmentAndInPlace) {
    std::mt19937 rng(47);
    std::uniform_int_distribution<int> pattern(0, 0xffff), byte(0, 255);
    for (size_t n = 0; n <= kMaxLen; n++) {
        std::vector<uint16_t> dy(n);
        std::vector<uint8_t>  bits(mask_bytes(n));
        for (uint16_t & v : dy) {
            v = static_cast<uint16_t>(pattern(rng));
        }
        for (uint8_t & b : bits) {
            b = static_cast<uint8_t>(byte(rng));
        }
        std::vector<uint16_t> want(n);
        qsim_qdq_mask_backward_h16_ref(n, bits.data(), dy.data(), want.data());
        for (size_t i = 0; i < n; i++) {
            ASSERT_EQ(want[i], (bits[i / 8] >> (i % 8)) & 1 ? 0 : dy[i]) << "ref, index " << i;
        }
        for (size_t off = 0; off < 4; off++) {
            for (bool in_place : { false, true }) {
                const std::vector<uint16_t> got = run_mask_backward_h16(*k_, bits, dy, off, in_place);
                for (size_t i = 0; i < n; i++) {
                    ASSERT_EQ(want[i], got[i]) << "qdq_mask_backward_h16" << (in_place ? " in place" : "")
                                               << " n=" << n << " off=" << off << " index " << i
                                               << ": dy=0x" << std::hex << dy[i];
                }
            }
        }
    }
}

}  // namespace

// Off x86-64 only ref is compiled and the suite has no instances.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(QdqVariant);
INSTANTIATE_TEST_SUITE_P(AllVariants, QdqVariant, ::testing::ValuesIn(variant_names()),
                         [](const ::testing::TestParamInfo<std::string> & i) { return i.param; });
