// qdq_oracle.h: what the qdq GoogleTest suites (test_qdq*.cpp) share: the docs/design.md §2 convention
// written out as test-side oracles, the tables of run kernels, the grids and inputs, and the
// fixture that instantiates a test once per compiled variant of qsim_qdq_variants().
//
// Example:
//   TEST_P(QdqKernels, Something) { k().qdq(n, x, y, make_grid(0.1f, 0.0f, -128.0f, 127.0f)); }
//   INSTANTIATE_TEST_SUITE_P(Variants, QdqKernels, ::testing::ValuesIn(all_variants()), variant_name);
#ifndef QSIM_QDQ_ORACLE_H
#define QSIM_QDQ_ORACLE_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

extern "C" {
#include "qsim/qdq.h"
}

#include "qsim_test_util.h"

namespace qdq_test {

using qsim_test::bits;
using qsim_test::from_bits;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---- oracles: the docs/design.md §2 convention written out directly, in fp32 ------------------------

inline qsim_grid make_grid(float scale, float zero_point, float qmin, float qmax) {
    return { scale, zero_point, qmin, qmax };
}

// rint(x / scale) + zero_point before clamping; std::nearbyint under the default rounding mode
// rounds half to even.
inline float position(float x, const qsim_grid & g) {
    return std::nearbyint(x / g.scale) + g.zero_point;
}

inline bool in_grid(float pos, const qsim_grid & g) {
    return pos >= g.qmin && pos <= g.qmax;  // false for NaN
}

inline float clamp_to_grid(float pos, const qsim_grid & g) {
    return std::isnan(pos) ? g.qmin : std::min(std::max(pos, g.qmin), g.qmax);  // as onnxruntime
}

inline float oracle_quantize(float x, const qsim_grid & g) {
    return clamp_to_grid(position(x, g), g);
}

inline float oracle_dequantize(float q, const qsim_grid & g) {
    return (q - g.zero_point) * g.scale;
}

inline float oracle_forward(qsim_op op, float x, const qsim_grid & g) {
    switch (op) {
        case QSIM_OP_QUANTIZE:   return oracle_quantize(x, g);
        case QSIM_OP_DEQUANTIZE: return oracle_dequantize(x, g);
        case QSIM_OP_QDQ:        break;
    }
    return oracle_dequantize(oracle_quantize(x, g), g);
}

// STE: dx = dy * mask as a select (a clamped element gets +0 whatever dy is, like torch.where).
inline float oracle_dx(qsim_op op, float x, float dy, const qsim_grid & g) {
    const float masked = in_grid(position(x, g), g) ? dy : 0.0f;
    switch (op) {
        case QSIM_OP_QUANTIZE:   return masked / g.scale;
        case QSIM_OP_DEQUANTIZE: return dy * g.scale;
        case QSIM_OP_QDQ:        break;
    }
    return masked;
}

// Per-element terms of the two range-learning sums, each evaluated once in fp32 with the
// grouping of docs/aimet.md §3.2 (t = x/s, qz = clamp(rint(t) + zp) - zp):
//   QDQ         ds = dy*(qz - t) inside, dy*qz outside;   dzp = -dy*s outside, 0 inside
//   QUANTIZE    ds = -(dy/s)*t inside, 0 outside;         dzp = dy inside, 0 outside
//   DEQUANTIZE  ds = dy*(x - zp);                         dzp = -dy*s
struct Terms {
    float ds, dzp;
};

inline Terms float_terms(qsim_op op, float x, float dy, const qsim_grid & g) {
    const float t   = x / g.scale;
    const float pos = std::nearbyint(t) + g.zero_point;
    const bool  m   = in_grid(pos, g);
    switch (op) {
        case QSIM_OP_QUANTIZE:
            return { m ? -(dy / g.scale) * t : 0.0f, m ? dy : 0.0f };
        case QSIM_OP_DEQUANTIZE:
            return { dy * (x - g.zero_point), -dy * g.scale };
        case QSIM_OP_QDQ:
            break;
    }
    const float qz = clamp_to_grid(pos, g) - g.zero_point;
    return { m ? dy * (qz - t) : dy * qz, m ? 0.0f : -dy * g.scale };
}

// The same terms in double from the exact inputs (the mask and qz, which the convention defines
// in fp32, come from the fp32 position), with a bound for each term: see sum_tolerance.
struct ExactTerms {
    double ds, dzp, ds_bound, dzp_bound;
};

// How far a kernel's sum of fp32 terms may lie from the double oracle, given the sum of the
// terms' bounds. Each fp32 term rounds at most 3 times (t, an intermediate, the product), each
// time by at most 2^-24 of a magnitude: |dy|*(|qz| + |t|) (QDQ ds), |dy*t/s| (QUANTIZE ds),
// |dy|*(|x| + |zp|) (DEQUANTIZE ds), |dy*s| or |dy| (dzp), never below the term itself; where a
// result falls into the fp32 subnormals the error is absolute instead, at most 2^-150 scaled by
// what multiplies it, so each bound adds 2^-127 * (1 + |dy| + |t|) (2^-21 of it covers 2^-148 of
// them). The double accumulation of n <= 2^17 terms adds at most n*2^-53 of the sum of
// magnitudes. 2^-21 = 8 * 2^-24 is more than twice the worst case.
inline double sum_tolerance(double bound) {
    return std::ldexp(bound, -21);
}

inline ExactTerms exact_terms(qsim_op op, float x, float dy, const qsim_grid & g) {
    const double s = g.scale, zp = g.zero_point, d = dy, t = static_cast<double>(x) / s;
    const bool   m     = in_grid(position(x, g), g);
    const double small = std::ldexp(1.0 + std::fabs(d) + (std::isfinite(t) ? std::fabs(t) : 0.0), -127);
    switch (op) {
        case QSIM_OP_QUANTIZE:
            return { m ? -d * t / s : 0.0, m ? d : 0.0, m ? std::fabs(d * t / s) + small : 0.0, m ? std::fabs(d) : 0.0 };
        case QSIM_OP_DEQUANTIZE:
            return { d * (x - zp), -d * s, std::fabs(d) * (std::fabs(x) + std::fabs(zp)) + small, std::fabs(d * s) + small };
        case QSIM_OP_QDQ:
            break;
    }
    const double qz = static_cast<double>(clamp_to_grid(position(x, g), g)) - zp;
    return { m ? d * (qz - t) : d * qz, m ? 0.0 : -d * s,
             std::fabs(d) * (std::fabs(qz) + (m ? std::fabs(t) : 0.0)) + small, std::fabs(d * s) + small };
}

// The lane order of qdq.h: term i goes to double lane i % 8, and the lanes combine as
// ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
inline double lane_order_sum(const std::vector<float> & terms) {
    double l[8] = { 0.0 };
    for (size_t i = 0; i < terms.size(); i++) {
        l[i % 8] += static_cast<double>(terms[i]);
    }
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

// ---- the kernels under test -----------------------------------------------------------------

struct ForwardKernel {
    const char *                    name;
    qsim_op                         op;
    qsim_run_fn qsim_qdq_kernels::* fn;
};
inline const ForwardKernel kForward[] = {
    { "qdq", QSIM_OP_QDQ, &qsim_qdq_kernels::qdq },
    { "quantize", QSIM_OP_QUANTIZE, &qsim_qdq_kernels::quantize },
    { "dequantize", QSIM_OP_DEQUANTIZE, &qsim_qdq_kernels::dequantize },
};

struct BackwardKernel {
    const char *                        name;
    qsim_op                             op;
    qsim_run_bwd_fn qsim_qdq_kernels::* fn;
};
inline const BackwardKernel kBackward[] = {
    { "qdq_backward", QSIM_OP_QDQ, &qsim_qdq_kernels::qdq_backward },
    { "quantize_backward", QSIM_OP_QUANTIZE, &qsim_qdq_kernels::quantize_backward },
    { "dequantize_backward", QSIM_OP_DEQUANTIZE, &qsim_qdq_kernels::dequantize_backward },
};

inline std::vector<const qsim_qdq_kernels *> all_variants() {
    size_t n = 0;
    const qsim_qdq_kernels * v = qsim_qdq_variants(&n);
    std::vector<const qsim_qdq_kernels *> out;
    for (size_t i = 0; i < n; i++) {
        out.push_back(&v[i]);
    }
    return out;
}

inline const qsim_qdq_kernels & ref() {
    return *all_variants().front();
}

// ---- grids and inputs -----------------------------------------------------------------------

enum class GridKind { kSigned, kStrict, kUnsigned };

// [qmin, qmax] of a b-bit grid (docs/design.md §2).
inline std::pair<float, float> grid_bounds(GridKind kind, int b) {
    const float h = std::ldexp(1.0f, b - 1), full = std::ldexp(1.0f, b);
    switch (kind) {
        case GridKind::kStrict:   return { -(h - 1.0f), h - 1.0f };
        case GridKind::kUnsigned: return { 0.0f, full - 1.0f };
        case GridKind::kSigned:   break;
    }
    return { -h, h - 1.0f };
}

// A few grids for the length sweeps: ties, both clamp ends, non-zero zero points of both signs.
inline std::vector<qsim_grid> sweep_grids() {
    return {
        make_grid(0.1f, 128.0f, 0.0f, 255.0f),
        make_grid(0.0137f, 0.0f, -127.0f, 127.0f),
        make_grid(1.0f, -3.0f, -8.0f, 7.0f),
        make_grid(0.25f, 5.0f, -32768.0f, 32767.0f),
        make_grid(std::ldexp(1.0f, -140), 1.0f, 0.0f, 3.0f),  // denormal scale
        // not qsim_grid_shiftable (the kernels' general form): a fractional zero point, and an
        // integer one past 2^22
        make_grid(0.05f, 2.5f, -8.0f, 7.0f),
        make_grid(0.5f, 8388608.0f, 8388600.0f, 8388615.0f),
    };
}

// Values that stress a grid: exact ties (k + 0.5) * s, neighbours of both grid ends, the grid
// ends themselves, denormals and, unless finite_only, non-finite values and +-FLT_MAX.
inline std::vector<float> special_values(const qsim_grid & g, bool finite_only) {
    std::vector<float> v = { 0.0f, -0.0f, FLT_MIN, from_bits(0x00000001u), from_bits(0x807fffffu), FLT_EPSILON };
    if (!finite_only) {
        for (float f : { kInf, -kInf, kNaN, -kNaN, FLT_MAX, -FLT_MAX }) {
            v.push_back(f);
        }
    }
    for (int k = -5; k <= 5; k++) {
        const float q = static_cast<float>(k);
        v.push_back((q + 0.5f) * g.scale);
        v.push_back((g.qmin - g.zero_point + 0.5f * q) * g.scale);
        v.push_back((g.qmax - g.zero_point + 0.5f * q) * g.scale);
    }
    return v;
}

// Draws inputs for one grid: uniform over the grid's range widened by 4 steps each side, and a
// special value at about one draw in four.
class GridInputs {
  public:
    GridInputs(const qsim_grid & g, bool finite_only)
        : special_(special_values(g, finite_only)),
          uniform_((g.qmin - g.zero_point - 4.0f) * g.scale, (g.qmax - g.zero_point + 4.0f) * g.scale),
          pick_(0, special_.size() - 1) {}
    float operator()(std::mt19937 & rng) { return coin_(rng) == 0 ? special_[pick_(rng)] : uniform_(rng); }

  private:
    std::vector<float>                    special_;
    std::uniform_real_distribution<float> uniform_;
    std::uniform_int_distribution<size_t> pick_;
    std::uniform_int_distribution<int>    coin_{ 0, 3 };
};

inline std::vector<float> grid_inputs(size_t n, const qsim_grid & g, std::mt19937 & rng, bool finite_only = false) {
    GridInputs         draw(g, finite_only);
    std::vector<float> x(n);
    for (float & v : x) {
        v = draw(rng);
    }
    return x;
}

// Upstream gradients: normal, scaled by 2^k for k in [-20, 20] so that the order in which the
// sums add them changes the result (what the lane-order check relies on).
inline std::vector<float> gradients(size_t n, std::mt19937 & rng) {
    std::normal_distribution<float>    normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> exp2(-20, 20);
    std::vector<float> dy(n);
    for (float & d : dy) {
        d = std::ldexp(normal(rng), exp2(rng));
    }
    return dy;
}

// ---- the fixture: one instance per compiled variant -----------------------------------------

// k() is the variant under test; variants this CPU cannot run are skipped with a message.
class QdqKernels : public ::testing::TestWithParam<const qsim_qdq_kernels *> {
  protected:
    void SetUp() override {
        if (!k().supported()) {
            GTEST_SKIP() << "this CPU cannot run the " << k().name << " variant";
        }
    }
    const qsim_qdq_kernels & k() const { return *GetParam(); }
};

inline std::string variant_name(const ::testing::TestParamInfo<const qsim_qdq_kernels *> & i) {
    return i.param->name;
}

}  // namespace qdq_test

#endif  // QSIM_QDQ_ORACLE_H
