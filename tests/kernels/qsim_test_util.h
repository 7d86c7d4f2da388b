// qsim_test_util.h: small helpers shared by the GoogleTest suites in tests/kernels/.
//
//   - bits / from_bits: the IEEE bit pattern of a float or double, and back;
//   - same_bits: bit-exact equality where any NaN equals any NaN (IEEE leaves NaN payloads open);
//   - describe: "value (0xBITS)" for failure messages;
//   - floats_match: compares two arrays element by element and, on the first mismatch, reports the
//     index, the input there, the expected and the got value, and how many elements differ;
//   - Placed / run_map: a run of floats at a chosen misalignment between guard floats, to call a
//     kernel out of place or in place and check that it wrote nothing outside its run.
//
// Example:
//   EXPECT_TRUE(qsim_test::floats_match(n, x.data(), want.data(), got.data())) << "qdq n=" << n;
#ifndef QSIM_TEST_UTIL_H
#define QSIM_TEST_UTIL_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace qsim_test {

// The one seed of every random generator in the suites (std::mt19937(kSeed + case)).
constexpr uint32_t kSeed = 20240917u;

inline uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

inline uint64_t bits(double d) {
    uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    return u;
}

inline float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// Bit-identical, or both NaN.
inline bool same_bits(float a, float b) {
    return bits(a) == bits(b) || (std::isnan(a) && std::isnan(b));
}

inline bool same_bits(double a, double b) {
    return bits(a) == bits(b) || (std::isnan(a) && std::isnan(b));
}

// "1.5 (0x3fc00000)": the value with full precision and its bit pattern.
inline std::string describe(float f) {
    std::ostringstream s;
    s.precision(9);
    s << f << " (0x" << std::hex << bits(f) << ")";
    return s.str();
}

inline std::string describe(double d) {
    std::ostringstream s;
    s.precision(17);
    s << d << " (0x" << std::hex << bits(d) << ")";
    return s.str();
}

// want[i] and got[i] have the same bits (or are both NaN) for every i < n; x[i] is the input that
// produced them and is printed with the first mismatch.
inline ::testing::AssertionResult floats_match(size_t n, const float * x, const float * want,
                                               const float * got) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        if (!same_bits(want[i], got[i]) && bad++ == 0) {
            first = i;
        }
    }
    if (bad == 0) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << bad << " of " << n << " elements differ; first at index " << first << ": input "
           << describe(x[first]) << ", expected " << describe(want[first]) << ", got "
           << describe(got[first]);
}

constexpr size_t   kGuard      = 16;           // guard floats on each side of a run
constexpr uint32_t kGuardBits  = 0x7fbadbadu;  // a signalling-NaN pattern no kernel produces
constexpr size_t   kAlignBytes = 64;           // the widest vector register

// A copy of `v` starting `offset` floats past a 64-byte boundary, with guard floats around it.
class Placed {
  public:
    Placed(const std::vector<float> & v, size_t offset)
        : mem_(v.size() + 2 * kGuard + kAlignBytes / sizeof(float) + offset, from_bits(kGuardBits)),
          n_(v.size()) {
        const uintptr_t base    = reinterpret_cast<uintptr_t>(mem_.data() + kGuard);
        const size_t    aligned = ((kAlignBytes - base % kAlignBytes) % kAlignBytes) / sizeof(float);
        start_ = kGuard + aligned + offset;
        std::copy(v.begin(), v.end(), mem_.begin() + static_cast<std::ptrdiff_t>(start_));
    }
    float * data() { return mem_.data() + start_; }
    std::vector<float> values() const {
        return { mem_.begin() + static_cast<std::ptrdiff_t>(start_),
                 mem_.begin() + static_cast<std::ptrdiff_t>(start_ + n_) };
    }
    // Every float outside the run still holds the guard pattern.
    bool guards_intact() const {
        for (size_t i = 0; i < mem_.size(); i++) {
            if ((i < start_ || i >= start_ + n_) && bits(mem_[i]) != kGuardBits) {
                return false;
            }
        }
        return true;
    }

  private:
    std::vector<float> mem_;
    size_t             n_, start_ = 0;
};

// 64-byte aligned storage holding v from `shift` floats past the boundary (the streamed runs of
// the ISA variants need a 32-byte aligned output).
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

// "qdq n=5 offset=3 in place": where a run-kernel check happened.
inline std::string run_label(const char * kernel, size_t n, size_t offset, bool in_place) {
    return std::string(kernel) + " n=" + std::to_string(n) + " offset=" + std::to_string(offset) +
           (in_place ? " in place" : "");
}

// call(in, out) on a copy of x placed at `offset` (in place: out == in), checking the guards;
// returns what the call wrote.
template <typename Call>
std::vector<float> run_map(const std::vector<float> & x, size_t offset, bool in_place, Call call) {
    Placed in(x, offset), out(std::vector<float>(x.size(), 0.0f), (offset + 3) % 16);
    Placed & y = in_place ? in : out;
    call(in.data(), y.data());
    EXPECT_TRUE(in.guards_intact() && out.guards_intact()) << "wrote outside the run of " << x.size();
    return y.values();
}

// The entries of an ISA variant table (`variants(&n)`, e.g. qsim_tfe_variants) this CPU runs.
template <typename K>
std::vector<const K *> runnable(const K * (*variants)(size_t *)) {
    size_t                 n = 0;
    const K *              v = variants(&n);
    std::vector<const K *> out;
    for (size_t i = 0; i < n; i++) {
        if (v[i].supported()) {
            out.push_back(&v[i]);
        }
    }
    return out;
}

}  // namespace qsim_test

#endif  // QSIM_TEST_UTIL_H
