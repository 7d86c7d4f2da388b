// GoogleTest: every compiled qdq variant (qdq_variants.inc) against the `ref` kernels, which are
// the specification. Outputs must match bit for bit (NaN payloads included) for random and special
// inputs, every length 0..257 (all tail sizes), unaligned pointers and in-place calls; kernels must
// not write past their run; reductions must match bit for bit (any NaN matches any NaN there, since
// IEEE leaves the payload of NaN + NaN open). Variants this CPU lacks are skipped with a message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "qsim/qdq.h"
}

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr size_t kMaxLen = 257;
constexpr size_t kPad    = 8;              // guard floats before and after every output run
constexpr uint32_t kGuard = 0x7fbadbadu;   // a signalling-NaN pattern no kernel produces

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

uint64_t bits(double d) {
    uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    return u;
}

const qsim_qdq_kernels & ref() {
    size_t n = 0;
    return qsim_qdq_variants(&n)[0];
}

std::vector<std::string> variant_names() {
    size_t n = 0;
    const qsim_qdq_kernels * v = qsim_qdq_variants(&n);
    std::vector<std::string> out;
    for (size_t i = 1; i < n; i++) {
        out.emplace_back(v[i].name);
    }
    return out;
}

// Grids that exercise ties, both clamp ends, huge t = x/s and a 16-bit range.
const std::vector<qsim_grid> & grids() {
    static const std::vector<qsim_grid> g = {
        { 0.1f, 128.0f, 0.0f, 255.0f },
        { 0.0137f, 0.0f, -127.0f, 127.0f },
        { 1.0f, -3.0f, -8.0f, 7.0f },
        { 0.5f, 0.0f, -32768.0f, 32767.0f },
        { 1e-30f, 2.0f, 0.0f, 3.0f },
        { 3.0e4f, -1.0f, -2.0f, 1.0f },
    };
    return g;
}

// Values around a grid: exact ties (k + 0.5) * s, neighbours of both clamp ends, and specials.
std::vector<float> special_values(const qsim_grid & g) {
    std::vector<float> v = { 0.0f, -0.0f, kInf, -kInf, kNaN, -kNaN,
                             from_bits(0x7fc12345u), from_bits(0xffe00001u), from_bits(0x7f800001u),
                             from_bits(0x00000001u), from_bits(0x807fffffu),
                             std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                             65504.0f, 65519.996f, 65520.0f, -65520.0f, 5.9604645e-8f, 2.9802322e-8f,
                             8.940697e-8f, 6.1035156e-5f, 6.1028e-5f, from_bits(0x3f808000u),
                             from_bits(0x3f818000u), from_bits(0x7f7f8000u), from_bits(0x3f807fffu) };
    for (int k = -6; k <= 6; k++) {
        v.push_back((static_cast<float>(k) + 0.5f) * g.scale);
        v.push_back((g.qmin - g.zero_point + static_cast<float>(k) * 0.25f) * g.scale);
        v.push_back((g.qmax - g.zero_point + static_cast<float>(k) * 0.25f) * g.scale);
    }
    return v;
}

// n inputs for grid g: mostly random values spread over about twice the grid range, with the
// special values at random positions.
std::vector<float> inputs(size_t n, const qsim_grid & g, std::mt19937 & rng) {
    const std::vector<float>           sp = special_values(g);
    const float                        span = (g.qmax - g.qmin) * g.scale;
    std::uniform_real_distribution<float> u(-span, span);
    std::uniform_int_distribution<size_t> pick(0, sp.size() - 1);
    std::uniform_int_distribution<int>    coin(0, 3);
    std::vector<float> x(n);
    for (auto & v : x) {
        v = coin(rng) == 0 ? sp[pick(rng)] : u(rng) + (g.zero_point * g.scale);
    }
    return x;
}

// A run of n floats at misalignment `off` (floats) inside a guarded buffer.
struct Buffer {
    std::vector<float> mem;
    size_t             off, n;
    Buffer(size_t len, size_t offset) : mem(len + 2 * kPad + 4, from_bits(kGuard)), off(offset), n(len) {}
    float * data() { return mem.data() + kPad + off; }
    void fill(const std::vector<float> & v) { std::copy(v.begin(), v.end(), data()); }
    std::vector<float> run() const {
        return { mem.begin() + kPad + off, mem.begin() + kPad + off + n };
    }
    // Index of the first guard float that changed, or -1.
    long touched_guard() const {
        for (size_t i = 0; i < mem.size(); i++) {
            const bool inside = i >= kPad + off && i < kPad + off + n;
            if (!inside && bits(mem[i]) != kGuard) {
                return static_cast<long>(i) - static_cast<long>(kPad + off);
            }
        }
        return -1;
    }
};

void expect_same_bits(const std::vector<float> & want, const std::vector<float> & got,
                      const std::vector<float> & x, const std::string & what) {
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 0; i < want.size(); i++) {
        ASSERT_EQ(bits(want[i]), bits(got[i]))
            << what << " n=" << want.size() << " at index " << i << ": x=" << x[i] << " (0x"
            << std::hex << bits(x[i]) << ") ref=" << want[i] << " (0x" << bits(want[i])
            << ") variant=" << got[i] << " (0x" << bits(got[i]) << ")" << std::dec;
    }
}

void expect_same_sum(double want, double got, const std::string & what) {
    if (std::isnan(want) && std::isnan(got)) {
        return;
    }
    EXPECT_EQ(bits(want), bits(got)) << what << ": ref=" << want << " variant=" << got;
}

using RunFn  = qsim_run_fn qsim_qdq_kernels::*;
using BwdFn  = qsim_run_bwd_fn qsim_qdq_kernels::*;
using CastFn = qsim_cast_fn qsim_qdq_kernels::*;

const std::vector<std::pair<const char *, RunFn>> kForward = {
    { "qdq", &qsim_qdq_kernels::qdq },
    { "quantize", &qsim_qdq_kernels::quantize },
    { "dequantize", &qsim_qdq_kernels::dequantize },
};
const std::vector<std::pair<const char *, BwdFn>> kBackward = {
    { "qdq_backward", &qsim_qdq_kernels::qdq_backward },
    { "quantize_backward", &qsim_qdq_kernels::quantize_backward },
    { "dequantize_backward", &qsim_qdq_kernels::dequantize_backward },
};
const std::vector<std::pair<const char *, CastFn>> kCasts = {
    { "cast_f16", &qsim_qdq_kernels::cast_f16 },
    { "cast_bf16", &qsim_qdq_kernels::cast_bf16 },
};

class QdqVariant : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        size_t n = 0;
        const qsim_qdq_kernels * v = qsim_qdq_variants(&n);
        for (size_t i = 0; i < n; i++) {
            if (GetParam() == v[i].name) {
                k_ = &v[i];
            }
        }
        ASSERT_NE(k_, nullptr);
        if (!k_->supported()) {
            GTEST_SKIP() << "this CPU cannot run the " << GetParam() << " variant";
        }
    }
    const qsim_qdq_kernels * k_ = nullptr;
};

// y = f(x) for a run of n at misalignment off, out of place or in place, checking the guards.
template <typename Call>
std::vector<float> run_elementwise(const std::vector<float> & x, size_t off, bool in_place, Call call) {
    Buffer in(x.size(), off), out(x.size(), (off + 1) % 4);
    in.fill(x);
    Buffer & dst = in_place ? in : out;
    call(in.data(), dst.data());
    EXPECT_EQ(dst.touched_guard(), -1) << "wrote outside the run, n=" << x.size();
    return dst.run();
}

TEST_P(QdqVariant, ForwardMatchesRefForEveryLengthAlignmentAndInPlace) {
    std::mt19937 rng(7);
    for (const qsim_grid & g : grids()) {
        for (size_t n = 0; n <= kMaxLen; n++) {
            const std::vector<float> x = inputs(n, g, rng);
            for (const auto & [name, fn] : kForward) {
                const std::vector<float> want = run_elementwise(x, 0, false, [&](float * a, float * b) {
                    (ref().*fn)(n, a, b, g);
                });
                for (size_t off = 0; off < 4; off++) {
                    for (bool in_place : { false, true }) {
                        const std::vector<float> got = run_elementwise(x, off, in_place, [&](float * a, float * b) {
                            (k_->*fn)(n, a, b, g);
                        });
                        expect_same_bits(want, got, x, std::string(name) + (in_place ? " in place" : ""));
                    }
                }
            }
        }
    }
}

TEST_P(QdqVariant, CastsMatchRefForEveryLengthAlignmentAndInPlace) {
    std::mt19937 rng(11);
    std::uniform_int_distribution<uint32_t> any_bits;
    for (size_t n = 0; n <= kMaxLen; n++) {
        // raw bit patterns cover every exponent, subnormals, NaN payloads and ties of both casts
        std::vector<float> x = inputs(n, grids()[0], rng);
        for (size_t i = 0; i < n; i += 2) {
            x[i] = from_bits(any_bits(rng));
        }
        for (const auto & [name, fn] : kCasts) {
            const std::vector<float> want = run_elementwise(x, 0, false, [&](float * a, float * b) {
                (ref().*fn)(n, a, b);
            });
            for (size_t off = 0; off < 4; off++) {
                for (bool in_place : { false, true }) {
                    const std::vector<float> got = run_elementwise(x, off, in_place, [&](float * a, float * b) {
                        (k_->*fn)(n, a, b);
                    });
                    expect_same_bits(want, got, x, std::string(name) + (in_place ? " in place" : ""));
                }
            }
        }
    }
}

// Every fp32 whose dropped low bits (13 for fp16, 16 for bf16) are zero, a tie or a tie +-1, over
// every sign, exponent and kept mantissa: all rounding cases of both casts.
TEST_P(QdqVariant, CastsMatchRefOnEveryRoundingBoundary) {
    for (const auto & [name, fn] : kCasts) {
        const int    low  = std::string(name) == "cast_f16" ? 13 : 16;
        const uint32_t half = 1u << (low - 1);
        std::vector<float> x;
        for (uint32_t hi = 0; hi < (1u << (32 - low)); hi++) {
            for (uint32_t lo : { 0u, half - 1u, half, half + 1u }) {
                x.push_back(from_bits((hi << low) | lo));
            }
        }
        std::vector<float> want(x.size()), got(x.size());
        (ref().*fn)(x.size(), x.data(), want.data());
        (k_->*fn)(x.size(), x.data(), got.data());
        expect_same_bits(want, got, x, name);
    }
}

TEST_P(QdqVariant, BackwardAndSumsMatchRefForEveryLengthAlignmentAndInPlace) {
    std::mt19937 rng(13);
    std::normal_distribution<float> grad(0.0f, 1.0f);
    for (const qsim_grid & g : grids()) {
        for (size_t n = 0; n <= kMaxLen; n++) {
            const std::vector<float> x = inputs(n, g, rng);
            std::vector<float>       dy(n);
            for (auto & d : dy) {
                d = grad(rng);
            }
            if (n > 3) {
                dy[n / 2] = -0.0f;
                dy[n / 3] = kInf;
            }
            for (const auto & [name, fn] : kBackward) {
                for (bool with_sums : { false, true }) {
                    // sums start non-zero: the kernels add to them
                    double want_sums[2] = { 0.25, -1.5 };
                    Buffer rx(n, 0), rdy(n, 0), rdx(n, 0);
                    rx.fill(x);
                    rdy.fill(dy);
                    (ref().*fn)(n, rx.data(), rdy.data(), rdx.data(), g, with_sums ? want_sums : nullptr);
                    for (size_t off = 0; off < 4; off++) {
                        for (bool in_place : { false, true }) {
                            double got_sums[2] = { 0.25, -1.5 };
                            Buffer bx(n, off), bdy(n, (off + 1) % 4), bdx(n, (off + 2) % 4);
                            bx.fill(x);
                            bdy.fill(dy);
                            Buffer & out = in_place ? bdy : bdx;
                            (k_->*fn)(n, bx.data(), bdy.data(), out.data(), g, with_sums ? got_sums : nullptr);
                            const std::string what = std::string(name) + (with_sums ? " with sums" : "") +
                                                     (in_place ? " in place" : "") + " n=" + std::to_string(n);
                            expect_same_bits(rdx.run(), out.run(), x, what);
                            EXPECT_EQ(out.touched_guard(), -1) << what << " wrote outside the run";
                            expect_same_sum(want_sums[0], got_sums[0], what + " scale sum");
                            expect_same_sum(want_sums[1], got_sums[1], what + " zero-point sum");
                        }
                    }
                }
            }
        }
    }
}

// Long runs through the layout drivers: per-tensor reduction tiles and per-channel groups give
// the same dx and the same gradients as ref.
TEST_P(QdqVariant, LayoutDriversMatchRefOnLongTensors) {
    std::mt19937 rng(17);
    const qsim_grid g = grids()[1];
    const int64_t   outer = 3, channels = 5, inner = 20011;
    const int64_t   n = outer * channels * inner;
    const std::vector<float> x = inputs(static_cast<size_t>(n), g, rng);
    std::vector<float>       dy(x.size());
    std::normal_distribution<float> grad(0.0f, 1.0f);
    for (auto & d : dy) {
        d = grad(rng);
    }
    std::vector<float> scale(channels), zp(channels, 0.0f);
    for (int64_t c = 0; c < channels; c++) {
        scale[c] = g.scale * static_cast<float>(c + 1);
    }
    const qsim_qparams p = { scale.data(), zp.data(), g.qmin, g.qmax };
    for (const qsim_layout & l : { qsim_layout_per_tensor(n), qsim_layout_per_channel(outer, channels, inner) }) {
        for (qsim_op op : { QSIM_OP_QDQ, QSIM_OP_QUANTIZE, QSIM_OP_DEQUANTIZE }) {
            std::vector<float> want_y(x.size()), got_y(x.size());
            qsim_forward_f32(&ref(), op, &l, &p, x.data(), want_y.data(), 0, n);
            qsim_forward_f32(k_, op, &l, &p, x.data(), got_y.data(), 0, n);
            expect_same_bits(want_y, got_y, x, "forward op " + std::to_string(op));

            const int64_t       groups = qsim_reduce_groups(&l);
            std::vector<double> want_s(2 * groups), got_s(2 * groups);
            std::vector<float>  want_dx(x.size()), got_dx(x.size());
            qsim_backward_reduce_f32(&ref(), op, &l, &p, x.data(), dy.data(), want_dx.data(), want_s.data(), 0, groups);
            qsim_backward_reduce_f32(k_, op, &l, &p, x.data(), dy.data(), got_dx.data(), got_s.data(), 0, groups);
            expect_same_bits(want_dx, got_dx, x, "backward op " + std::to_string(op));
            for (int64_t i = 0; i < 2 * groups; i++) {
                expect_same_sum(want_s[i], got_s[i], "group sum " + std::to_string(i) + " op " + std::to_string(op));
            }
        }
    }
}

// Runs of QSIM_STREAM_MIN (2^22) elements and more, written by the ISA variants with
// non-temporal stores when the output is vector-aligned: every forward kernel, cast and backward
// (with and without sums) gives ref's bits there too, aligned and one float off, out of place and
// in place.
TEST_P(QdqVariant, StreamedLongRunsMatchRef) {
    std::mt19937             rng(19);
    const qsim_grid          g = grids()[1];
    const size_t             n = (size_t{ 1 } << 22) + 35;
    const std::vector<float> x = inputs(n, g, rng);
    std::vector<float>       dy(n);
    std::normal_distribution<float> grad(0.0f, 1.0f);
    for (auto & d : dy) {
        d = grad(rng);
    }
    // 64-byte aligned storage with room for a one-float shift
    struct Aligned {
        std::vector<float> mem;
        float *            p;
        Aligned(const std::vector<float> & v, size_t shift) : mem(v.size() + 16 + shift) {
            const uintptr_t a = reinterpret_cast<uintptr_t>(mem.data());
            p = mem.data() + ((64 - a % 64) % 64) / sizeof(float) + shift;
            std::copy(v.begin(), v.end(), p);
        }
        std::vector<float> run(size_t len) const { return { p, p + len }; }
    };
    std::vector<float> want(n);
    for (size_t shift : { 0, 1 }) {
        for (bool in_place : { false, true }) {
            const std::string how = std::string(shift ? " unaligned" : " aligned") + (in_place ? " in place" : "");
            for (const auto & [name, fn] : kForward) {
                (ref().*fn)(n, x.data(), want.data(), g);
                Aligned in(x, shift), out(std::vector<float>(n, 0.0f), shift);
                (k_->*fn)(n, in.p, in_place ? in.p : out.p, g);
                expect_same_bits(want, (in_place ? in : out).run(n), x, std::string(name) + how);
            }
            for (const auto & [name, fn] : kCasts) {
                (ref().*fn)(n, x.data(), want.data());
                Aligned in(x, shift), out(std::vector<float>(n, 0.0f), shift);
                (k_->*fn)(n, in.p, in_place ? in.p : out.p);
                expect_same_bits(want, (in_place ? in : out).run(n), x, std::string(name) + how);
            }
            for (const auto & [name, fn] : kBackward) {
                for (bool with_sums : { false, true }) {
                    double want_sums[2] = { 0.25, -1.5 }, got_sums[2] = { 0.25, -1.5 };
                    (ref().*fn)(n, x.data(), dy.data(), want.data(), g, with_sums ? want_sums : nullptr);
                    Aligned bx(x, shift), bdy(dy, shift), bdx(std::vector<float>(n, 0.0f), shift);
                    Aligned & out = in_place ? bdy : bdx;
                    (k_->*fn)(n, bx.p, bdy.p, out.p, g, with_sums ? got_sums : nullptr);
                    const std::string what = std::string(name) + (with_sums ? " with sums" : "") + how;
                    expect_same_bits(want, out.run(n), x, what);
                    expect_same_sum(want_sums[0], got_sums[0], what + " scale sum");
                    expect_same_sum(want_sums[1], got_sums[1], what + " zero-point sum");
                }
            }
        }
    }
}

// Off x86-64 only ref is compiled and the suite has no instances.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(QdqVariant);
INSTANTIATE_TEST_SUITE_P(AllVariants, QdqVariant, ::testing::ValuesIn(variant_names()),
                         [](const ::testing::TestParamInfo<std::string> & i) { return i.param; });

// qsim_qdq_best picks the last listed variant this CPU supports.
TEST(QdqDispatch, BestIsTheLastSupportedVariant) {
    size_t n = 0;
    const qsim_qdq_kernels * v = qsim_qdq_variants(&n);
    ASSERT_GE(n, 1u);
    EXPECT_STREQ(v[0].name, "ref");
    const qsim_qdq_kernels * want = &v[0];
    for (size_t i = 0; i < n; i++) {
        if (v[i].supported()) {
            want = &v[i];
        }
    }
    EXPECT_EQ(qsim_qdq_best(), want) << "best is " << qsim_qdq_best()->name << ", expected " << want->name;
}

}  // namespace
