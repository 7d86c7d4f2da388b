// Helpers shared by the qdq variant tests (tests/kernels/qdq/test_qdq_variants*.cpp): the variant
// list, grids and inputs that hit every rounding case, guarded buffers and the QdqVariant fixture.
#pragma once

#include <gtest/gtest.h>


#include <algorithm>
#include <array>
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

#include "qsim_test_util.h"

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr size_t kMaxLen = 257;
constexpr size_t kPad    = 8;              // guard floats before and after every output run
constexpr uint32_t kGuard = 0x7fbadbadu;   // a signalling-NaN pattern no kernel produces

using qsim_test::bits;
using qsim_test::from_bits;

inline const qsim_qdq_kernels & ref() {
    size_t n = 0;
    return qsim_qdq_variants(&n)[0];
}

inline std::vector<std::string> variant_names() {
    size_t n = 0;
    const qsim_qdq_kernels * v = qsim_qdq_variants(&n);
    std::vector<std::string> out;
    for (size_t i = 1; i < n; i++) {
        out.emplace_back(v[i].name);
    }
    return out;
}

// Grids that exercise ties, both clamp ends, huge t = x/s and a 16-bit range.
inline const std::vector<qsim_grid> & grids() {
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
inline std::vector<float> special_values(const qsim_grid & g) {
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
inline std::vector<float> inputs(size_t n, const qsim_grid & g, std::mt19937 & rng) {
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

inline void expect_same_bits(const std::vector<float> & want, const std::vector<float> & got,
                      const std::vector<float> & x, const std::string & what) {
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 0; i < want.size(); i++) {
        ASSERT_EQ(bits(want[i]), bits(got[i]))
            << what << " n=" << want.size() << " at index " << i << ": x=" << x[i] << " (0x"
            << std::hex << bits(x[i]) << ") ref=" << want[i] << " (0x" << bits(want[i])
            << ") variant=" << got[i] << " (0x" << bits(got[i]) << ")" << std::dec;
    }
}

inline void expect_same_sum(double want, double got, const std::string & what) {
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

// The cases of the division-free qdq (qsim_grid_reciprocal), where x * (1 / s) and x / s can round
// to different integers. Scales: powers of two (exact reciprocal), 1 / s rounding either way, the largest and smallest
// significands, the ends of the allowed range, and random ones (fixed seed).
inline std::vector<float> reciprocal_scales() {
    std::vector<float> s = { 1.0f, 0.5f, 0x1p-126f, 0x1p126f, 0x1.fffffep-3f, 0x1.000002p-7f,
                             0.1f, 0.0137f, 3.0f, 0x1.5555p-9f, 1e-30f, 7.0e20f };
    std::mt19937 rng(11);
    std::uniform_int_distribution<uint32_t> mant(0, (1u << 23) - 1);
    std::uniform_int_distribution<int>      exp(-30, 10);
    for (int i = 0; i < 24; i++) {
        s.push_back(std::ldexp(1.0f + static_cast<float>(mant(rng)) * 0x1p-23f, exp(rng)));
    }
    return s;
}

// (zero point, qmin, qmax): 2, 4, 8, 12 and 16 bits, signed and unsigned, with zero points.
const std::vector<std::array<float, 3>> kReciprocalGrids = {
    { 0.0f, -2.0f, 1.0f },        { 3.0f, 0.0f, 15.0f },      { 0.0f, -128.0f, 127.0f },
    { 37.0f, 0.0f, 255.0f },      { -5.0f, -128.0f, 127.0f }, { 1000.0f, 0.0f, 4095.0f },
    { 0.0f, -32768.0f, 32767.0f }, { 40000.0f, 0.0f, 65535.0f },
};

// Runs body() with the division-free forms off, then on (qsim_set_division_free), whatever this
// CPU's default, and puts back the setting it found.
template <typename Body>
inline void with_division_free_off_and_on(Body body) {
    const int before = qsim_division_free();
    for (int on : { 0, 1 }) {
        qsim_set_division_free(on);
        SCOPED_TRACE(on ? "division-free forms on" : "division-free forms off");
        body();
        if (::testing::Test::HasFailure()) {
            break;
        }
    }
    qsim_set_division_free(before);
}

// The float nearest (m + 0.5) * s and its neighbours up to 8 ulps either way, for the
// half-integers m + 0.5 of the grid and just past its ends (every one for grids up to 8 bits,
// 600 spread over larger ones), and the same for -(m + 0.5) * s.
inline std::vector<float> near_halves(const qsim_grid & g) {
    const long lo = static_cast<long>(g.qmin - g.zero_point) - 2;
    const long hi = static_cast<long>(g.qmax - g.zero_point) + 2;
    const long step = std::max(1L, (hi - lo) / 600);
    std::vector<float> x;
    for (long m = lo; m <= hi; m += step) {
        const float h = static_cast<float>(static_cast<double>(m) + 0.5);
        for (float centre : { h * g.scale, -(h * g.scale) }) {
            for (int k = -8; k <= 8; k++) {
                const uint32_t b = bits(centre);
                const float v = from_bits(k < 0 ? b - static_cast<uint32_t>(-k) : b + static_cast<uint32_t>(k));
                if (std::isfinite(v)) {
                    x.push_back(v);
                }
            }
        }
    }
    return x;
}

// near_halves(g) shuffled, so that near and far lanes share vectors, then the special values
// and a tail of every variant's width.
inline std::vector<float> near_half_inputs(const qsim_grid & g, std::mt19937 & rng) {
    std::vector<float> x = near_halves(g);
    std::shuffle(x.begin(), x.end(), rng);
    const std::vector<float> specials = special_values(g);
    x.insert(x.end(), specials.begin(), specials.end());
    x.resize(x.size() + 13, 0.25f * g.scale);
    return x;
}

// y = f(x) for a run of n at misalignment off, out of place or in place, checking the guards.
template <typename Call>
inline std::vector<float> run_elementwise(const std::vector<float> & x, size_t off, bool in_place, Call call) {
    Buffer in(x.size(), off), out(x.size(), (off + 1) % 4);
    in.fill(x);
    Buffer & dst = in_place ? in : out;
    call(in.data(), dst.data());
    EXPECT_EQ(dst.touched_guard(), -1) << "wrote outside the run, n=" << x.size();
    return dst.run();
}

}  // namespace
