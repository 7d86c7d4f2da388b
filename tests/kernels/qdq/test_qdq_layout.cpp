// GoogleTest for the layout drivers of qsim/qdq.h (qsim_forward_f32, qsim_backward_f32,
// qsim_backward_reduce_f32, qsim_reduce_finish), for every compiled variant (reference included):
//   - per-tensor, per-channel on the first, middle and last axis of 3-D and 4-D shapes, and
//     blockwise (inner == 1 and inner > 1) against a per-element oracle that finds each element's
//     qparam from its multi-index;
//   - any split of [begin, end) (elements, or reduction groups) gives bit-identical results;
//   - reduction sums within a stated bound of a double oracle, bit for bit the documented lane
//     order where a group is one run, and qsim_reduce_finish on hand-computed sums.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "qdq_oracle.h"
#include "qsim_test_util.h"

namespace {

using namespace qdq_test;
using qsim_test::bits;
using qsim_test::describe;
using qsim_test::floats_match;
using qsim_test::same_bits;

INSTANTIATE_TEST_SUITE_P(Variants, QdqKernels, ::testing::ValuesIn(all_variants()), variant_name);

// A tensor shape with its quantization: axis < 0 is per-tensor, block 0 per-channel, otherwise
// blockwise with `block` consecutive channels of `axis` per qparam.
struct LayoutCase {
    const char *         name;
    std::vector<int64_t> shape;
    int                  axis;
    int64_t              block;

    int64_t numel() const {
        int64_t n = 1;
        for (int64_t d : shape) {
            n *= d;
        }
        return n;
    }
    bool per_tensor() const { return axis < 0; }
    qsim_layout layout() const {
        if (per_tensor()) {
            return qsim_layout_per_tensor(numel());
        }
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) {
            outer *= shape[d];
        }
        for (size_t d = axis + 1; d < shape.size(); d++) {
            inner *= shape[d];
        }
        return block == 0 ? qsim_layout_per_channel(outer, shape[axis], inner)
                          : qsim_layout_blockwise(outer, shape[axis], inner, block);
    }
    int64_t num_qparams() const {
        return per_tensor() ? 1 : block == 0 ? shape[axis] : numel() / block;
    }
    // The qparam of flat element f from its multi-index: per-channel takes the axis coordinate;
    // blockwise divides the axis coordinate by the block and ravels the index in the qparam shape
    // (the shape with its axis divided by the block, ONNX blocked quantization).
    int64_t qparam_of(int64_t f) const {
        if (per_tensor()) {
            return 0;
        }
        std::vector<int64_t> idx(shape.size());
        for (size_t d = shape.size(); d-- > 0;) {
            idx[d] = f % shape[d];
            f /= shape[d];
        }
        if (block == 0) {
            return idx[axis];
        }
        int64_t q = 0;
        for (size_t d = 0; d < shape.size(); d++) {
            const bool    ax  = static_cast<int>(d) == axis;
            q = q * (ax ? shape[d] / block : shape[d]) + (ax ? idx[d] / block : idx[d]);
        }
        return q;
    }
};

const std::vector<LayoutCase> & layout_cases() {
    static const std::vector<LayoutCase> c = {
        { "per_tensor_4d", { 3, 5, 7, 4 }, -1, 0 },
        { "per_tensor_three_tiles", { 2 * QSIM_REDUCE_TILE + 77 }, -1, 0 },
        { "channel_4d_axis0", { 3, 5, 7, 4 }, 0, 0 },
        { "channel_4d_axis1", { 3, 5, 7, 4 }, 1, 0 },
        { "channel_4d_axis2", { 3, 5, 7, 4 }, 2, 0 },
        { "channel_4d_axis3", { 3, 5, 7, 4 }, 3, 0 },
        { "channel_3d_axis0", { 6, 9, 11 }, 0, 0 },
        { "channel_3d_axis1", { 6, 9, 11 }, 1, 0 },
        { "channel_3d_axis2", { 6, 9, 11 }, 2, 0 },
        { "channel_long_runs", { 2, 3, 1000 }, 1, 0 },
        // last axis: the row kernels (qdq_layout.c) on whole rows and partial ones, 45 columns
        { "channel_last_tiles", { 150, 45 }, 1, 0 },
        { "block_inner1", { 20, 8 }, 1, 4 },
        { "block_inner5", { 4, 12, 5 }, 1, 3 },
        { "block_outer1", { 8, 6 }, 0, 2 },
        { "block_4d_middle", { 2, 6, 3, 4 }, 2, 3 },
        { "block_whole_axis", { 5, 16, 2 }, 1, 16 },
    };
    return c;
}

// A tensor, its qparams and an upstream gradient for one layout case. `p` points into the
// vectors, which moving keeps in place and copying would not: moves only.
struct LayoutData {
    std::vector<float> x, dy, scale, zp;
    qsim_qparams       p;

    LayoutData() = default;
    LayoutData(LayoutData &&) = default;
    LayoutData(const LayoutData &) = delete;
    qsim_grid grid(int64_t q) const { return make_grid(scale[q], zp[q], p.qmin, p.qmax); }
};

// Scales 2^[-6, 0) with random mantissas, integer zero points on the grid (8-bit unsigned for
// per-channel and blockwise, 4-bit signed for per-tensor), x spread past both ends of its own
// qparam's grid with special values (non-finite ones unless finite_only) sprinkled in.
LayoutData layout_data(const LayoutCase & c, std::mt19937 & rng, bool finite_only = false) {
    LayoutData d;
    const auto [qmin, qmax] = c.per_tensor() ? grid_bounds(GridKind::kSigned, 4) : grid_bounds(GridKind::kUnsigned, 8);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    std::uniform_int_distribution<int>    zp(static_cast<int>(qmin), static_cast<int>(qmax));
    for (int64_t q = 0; q < c.num_qparams(); q++) {
        d.scale.push_back(std::ldexp(1.0f + unit(rng), -1 - static_cast<int>(unit(rng) * 6.0f)));
        d.zp.push_back(static_cast<float>(zp(rng)));
    }
    d.p = { d.scale.data(), d.zp.data(), qmin, qmax };
    std::vector<GridInputs> draw;
    for (int64_t q = 0; q < c.num_qparams(); q++) {
        draw.emplace_back(d.grid(q), finite_only);
    }
    for (int64_t f = 0; f < c.numel(); f++) {
        d.x.push_back(draw[c.qparam_of(f)](rng));
    }
    d.dy = gradients(d.x.size(), rng);
    return d;
}

// Split points of [0, n): the ends plus up to 6 random cuts, some of them adjacent.
std::vector<int64_t> random_splits(int64_t n, std::mt19937 & rng) {
    std::vector<int64_t>                   s = { 0, n };
    std::uniform_int_distribution<int64_t> at(0, n);
    std::uniform_int_distribution<int>     count(1, 6);
    for (int i = count(rng); i > 0; i--) {
        s.push_back(at(rng));
    }
    std::sort(s.begin(), s.end());
    return s;
}

std::string layout_where(const LayoutCase & c, qsim_op op) {
    return std::string(c.name) + " op " + kForward[op].name;
}

TEST_P(QdqKernels, LayoutDriversMatchPerElementOracle) {
    std::mt19937 rng(qsim_test::kSeed + 7);
    for (const LayoutCase & c : layout_cases()) {
        const LayoutData  d = layout_data(c, rng);
        const qsim_layout l = c.layout();
        const int64_t     n = c.numel();
        ASSERT_EQ(qsim_layout_numel(&l), n) << c.name;
        for (const ForwardKernel & f : kForward) {
            std::vector<float> want_y(d.x.size()), want_dx(d.x.size());
            for (int64_t i = 0; i < n; i++) {
                const qsim_grid g = d.grid(c.qparam_of(i));
                want_y[i]         = oracle_forward(f.op, d.x[i], g);
                want_dx[i]        = oracle_dx(f.op, d.x[i], d.dy[i], g);
            }
            std::vector<float> y(d.x.size()), dx(d.x.size());
            qsim_forward_f32(&k(), f.op, &l, &d.p, d.x.data(), y.data(), 0, n);
            EXPECT_TRUE(floats_match(d.x.size(), d.x.data(), want_y.data(), y.data())) << layout_where(c, f.op);
            qsim_backward_f32(&k(), f.op, &l, &d.p, d.x.data(), d.dy.data(), dx.data(), 0, n);
            EXPECT_TRUE(floats_match(d.x.size(), d.x.data(), want_dx.data(), dx.data())) << layout_where(c, f.op) << " dx";
        }
    }
}

// Threads take arbitrary [begin, end) pieces; pieces cut runs anywhere. The result is the same.
TEST_P(QdqKernels, LayoutDriversGiveTheSameBitsForAnySplit) {
    std::mt19937 rng(qsim_test::kSeed + 8);
    for (const LayoutCase & c : layout_cases()) {
        const LayoutData  d = layout_data(c, rng);
        const qsim_layout l = c.layout();
        const int64_t     n = c.numel();
        for (const ForwardKernel & f : kForward) {
            std::vector<float> y(d.x.size()), dx(d.x.size());
            qsim_forward_f32(&k(), f.op, &l, &d.p, d.x.data(), y.data(), 0, n);
            qsim_backward_f32(&k(), f.op, &l, &d.p, d.x.data(), d.dy.data(), dx.data(), 0, n);
            for (int trial = 0; trial < 4; trial++) {
                const std::vector<int64_t> s = random_splits(n, rng);
                std::vector<float> ys(d.x.size(), -1.0f), dxs(d.x.size(), -1.0f), inplace = d.x;
                for (size_t i = 0; i + 1 < s.size(); i++) {
                    qsim_forward_f32(&k(), f.op, &l, &d.p, d.x.data(), ys.data(), s[i], s[i + 1]);
                    qsim_forward_f32(&k(), f.op, &l, &d.p, inplace.data(), inplace.data(), s[i], s[i + 1]);
                    qsim_backward_f32(&k(), f.op, &l, &d.p, d.x.data(), d.dy.data(), dxs.data(), s[i], s[i + 1]);
                }
                EXPECT_TRUE(floats_match(d.x.size(), d.x.data(), y.data(), ys.data())) << layout_where(c, f.op) << " split";
                EXPECT_TRUE(floats_match(d.x.size(), d.x.data(), y.data(), inplace.data()))
                    << layout_where(c, f.op) << " split, in place";
                EXPECT_TRUE(floats_match(d.x.size(), d.x.data(), dx.data(), dxs.data()))
                    << layout_where(c, f.op) << " split, dx";
            }
            // an empty range writes nothing
            std::vector<float> untouched(d.x.size(), -1.0f);
            qsim_forward_f32(&k(), f.op, &l, &d.p, d.x.data(), untouched.data(), n / 2, n / 2);
            EXPECT_TRUE(std::all_of(untouched.begin(), untouched.end(), [](float v) { return v == -1.0f; }));
        }
    }
}

// The elements of each reduction group: a per-tensor tile, or every element of one qparam.
std::vector<std::vector<int64_t>> reduce_members(const LayoutCase & c) {
    const int64_t n = c.numel();
    std::vector<std::vector<int64_t>> m(c.per_tensor() ? (n + QSIM_REDUCE_TILE - 1) / QSIM_REDUCE_TILE
                                                       : c.num_qparams());
    for (int64_t f = 0; f < n; f++) {
        m[c.per_tensor() ? f / QSIM_REDUCE_TILE : c.qparam_of(f)].push_back(f);
    }
    return m;
}

// Range-learning reductions: dx as the plain backward, each group's sums within the bound of the
// double oracle and, where the group is one run (a per-tensor tile, or a group whose elements are
// adjacent: a per-channel channel on axis 0, a block along the last axis), bit for bit the documented lane order of that run;
// qsim_reduce_finish adds per-tensor tiles in order and converts per-qparam groups to float.
TEST_P(QdqKernels, ReductionsMatchOraclesAndFinish) {
    std::mt19937 rng(qsim_test::kSeed + 9);
    for (const LayoutCase & c : layout_cases()) {
        const LayoutData  d = layout_data(c, rng, true);  // non-finite terms have no error bound
        const qsim_layout l       = c.layout();
        const int64_t     groups  = qsim_reduce_groups(&l);
        const auto        members = reduce_members(c);
        ASSERT_EQ(groups, static_cast<int64_t>(members.size())) << c.name;
        for (const BackwardKernel & b : kBackward) {
            const std::string   w = layout_where(c, b.op);
            std::vector<double> sums(2 * groups, 99.0);
            std::vector<float>  dx(d.x.size()), plain_dx(d.x.size());
            qsim_backward_reduce_f32(&k(), b.op, &l, &d.p, d.x.data(), d.dy.data(), dx.data(), sums.data(), 0, groups);
            qsim_backward_f32(&k(), b.op, &l, &d.p, d.x.data(), d.dy.data(), plain_dx.data(), 0, c.numel());
            EXPECT_TRUE(floats_match(d.x.size(), d.x.data(), plain_dx.data(), dx.data())) << w << " reduce dx";

            double total[2] = { 0.0, 0.0 }, total_exact[2] = { 0.0, 0.0 }, total_bound[2] = { 0.0, 0.0 };
            for (int64_t g = 0; g < groups; g++) {
                std::vector<float> ds, dzp;
                double             exact[2] = { 0.0, 0.0 }, bound[2] = { 0.0, 0.0 };
                for (int64_t f : members[g]) {
                    const qsim_grid  q = d.grid(c.qparam_of(f));
                    const Terms      t = float_terms(b.op, d.x[f], d.dy[f], q);
                    const ExactTerms e = exact_terms(b.op, d.x[f], d.dy[f], q);
                    ds.push_back(t.ds);
                    dzp.push_back(t.dzp);
                    exact[0] += e.ds, exact[1] += e.dzp, bound[0] += e.ds_bound, bound[1] += e.dzp_bound;
                }
                const bool one_run = c.per_tensor() || members[g].back() - members[g].front() + 1 ==
                                                           static_cast<int64_t>(members[g].size());
                const double lanes[2] = { lane_order_sum(ds), lane_order_sum(dzp) };
                for (int s = 0; s < 2; s++) {
                    const double got = sums[2 * g + s];
                    EXPECT_LE(std::fabs(got - exact[s]), sum_tolerance(bound[s]))
                        << w << " group " << g << " sum " << s << ": got " << describe(got) << ", oracle "
                        << describe(exact[s]);
                    if (one_run) {
                        EXPECT_TRUE(same_bits(lanes[s], got)) << w << " group " << g << " sum " << s
                                                              << ": lane order " << describe(lanes[s]) << ", got "
                                                              << describe(got);
                    }
                    total[s] += got;
                    total_exact[s] += exact[s];
                    total_bound[s] += bound[s];
                }
            }

            std::vector<float> dscale(c.num_qparams()), dzp(c.num_qparams());
            qsim_reduce_finish(&l, sums.data(), dscale.data(), dzp.data());
            if (c.per_tensor()) {
                const float finished[2] = { dscale[0], dzp[0] };
                for (int s = 0; s < 2; s++) {
                    EXPECT_EQ(bits(finished[s]), bits(static_cast<float>(total[s]))) << w << " finished sum " << s;
                    // plus half an fp32 ulp for the final conversion
                    EXPECT_LE(std::fabs(static_cast<double>(finished[s]) - total_exact[s]),
                              sum_tolerance(total_bound[s]) + std::ldexp(std::fabs(total_exact[s]), -24))
                        << w << " finished sum " << s << " vs double oracle " << describe(total_exact[s]);
                }
            } else {
                for (int64_t g = 0; g < groups; g++) {
                    EXPECT_EQ(bits(dscale[g]), bits(static_cast<float>(sums[2 * g]))) << w << " dscale " << g;
                    EXPECT_EQ(bits(dzp[g]), bits(static_cast<float>(sums[2 * g + 1]))) << w << " dzero_point " << g;
                }
            }
        }
    }
}

// Any split of the group range gives the same sums and dx (deterministic across thread counts).
TEST_P(QdqKernels, ReductionsGiveTheSameBitsForAnySplitOfGroups) {
    std::mt19937 rng(qsim_test::kSeed + 10);
    for (const LayoutCase & c : layout_cases()) {
        const LayoutData  d      = layout_data(c, rng);
        const qsim_layout l      = c.layout();
        const int64_t     groups = qsim_reduce_groups(&l);
        for (const BackwardKernel & b : kBackward) {
            std::vector<double> whole(2 * groups);
            std::vector<float>  dx(d.x.size());
            qsim_backward_reduce_f32(&k(), b.op, &l, &d.p, d.x.data(), d.dy.data(), dx.data(), whole.data(), 0, groups);
            for (int trial = 0; trial < 4; trial++) {
                const std::vector<int64_t> s = random_splits(groups, rng);
                std::vector<double>        parts(2 * groups, -7.0);
                std::vector<float>         dxs(d.x.size(), -1.0f);
                for (size_t i = 0; i + 1 < s.size(); i++) {
                    qsim_backward_reduce_f32(&k(), b.op, &l, &d.p, d.x.data(), d.dy.data(), dxs.data(), parts.data(),
                                             s[i], s[i + 1]);
                }
                for (int64_t i = 0; i < 2 * groups; i++) {
                    EXPECT_TRUE(same_bits(whole[i], parts[i]))
                        << layout_where(c, b.op) << " sums[" << i << "]: whole " << describe(whole[i]) << ", split "
                        << describe(parts[i]);
                }
                EXPECT_TRUE(floats_match(d.x.size(), d.x.data(), dx.data(), dxs.data())) << layout_where(c, b.op);
            }
        }
    }
}

// k = NULL runs the drivers with qsim_qdq_best(), which is one of the listed, supported variants.
TEST(QdqLayout, NullKernelsUseTheBestVariant) {
    std::mt19937      rng(qsim_test::kSeed + 11);
    const LayoutCase & c = layout_cases()[3];
    const LayoutData  d = layout_data(c, rng);
    const qsim_layout l = c.layout();
    const int64_t     n = c.numel();
    std::vector<float> want(d.x.size()), got(d.x.size());
    for (int64_t i = 0; i < n; i++) {
        want[i] = oracle_forward(QSIM_OP_QDQ, d.x[i], d.grid(c.qparam_of(i)));
    }
    qsim_forward_f32(nullptr, QSIM_OP_QDQ, &l, &d.p, d.x.data(), got.data(), 0, n);
    EXPECT_TRUE(floats_match(d.x.size(), d.x.data(), want.data(), got.data()));
    const std::vector<const qsim_qdq_kernels *> v = all_variants();
    EXPECT_NE(std::find(v.begin(), v.end(), qsim_qdq_best()), v.end());
    EXPECT_TRUE(qsim_qdq_best()->supported());
}

// qsim_reduce_finish on hand-written group sums. Per-tensor adds the tiles in order: tile sums
// 1, -1, 2^-100 give (1 + -1) + 2^-100 = 2^-100, where any other order loses 2^-100 against 1 and
// gives 0; zero-point sums 3 + 0.5 + 0.25 = 3.75. An empty tensor has no tiles and zero
// gradients. Per-channel converts each group's sums to float (1e300 overflows to Inf, 1e-300
// underflows to 0, -0 keeps its sign).
TEST(QdqLayout, ReduceFinishKnownAnswers) {
    const qsim_layout tiles = qsim_layout_per_tensor(2 * QSIM_REDUCE_TILE + 1);
    ASSERT_EQ(qsim_reduce_groups(&tiles), 3);
    const double tile_sums[6] = { 1.0, 3.0, -1.0, 0.5, std::ldexp(1.0, -100), 0.25 };
    float        ds = -1.0f, dzp = -1.0f;
    qsim_reduce_finish(&tiles, tile_sums, &ds, &dzp);
    EXPECT_EQ(ds, std::ldexp(1.0f, -100));
    EXPECT_EQ(dzp, 3.75f);

    const qsim_layout empty = qsim_layout_per_tensor(0);
    ASSERT_EQ(qsim_reduce_groups(&empty), 0);
    qsim_reduce_finish(&empty, nullptr, &ds, &dzp);
    EXPECT_EQ(ds, 0.0f);
    EXPECT_EQ(dzp, 0.0f);

    const qsim_layout channels = qsim_layout_per_channel(2, 3, 4);
    ASSERT_EQ(qsim_reduce_groups(&channels), 3);
    const double       channel_sums[6] = { 0.1, -2.5, 1e300, 1e-300, -0.0, 7.0 };
    std::vector<float> dscale(3), dzero(3);
    qsim_reduce_finish(&channels, channel_sums, dscale.data(), dzero.data());
    const std::vector<float> want_scale = { 0.1f, kInf, -0.0f }, want_zero = { -2.5f, 0.0f, 7.0f };
    EXPECT_TRUE(floats_match(3, want_scale.data(), want_scale.data(), dscale.data())) << "dscale";
    EXPECT_TRUE(floats_match(3, want_zero.data(), want_zero.data(), dzero.data())) << "dzero_point";
}

}  // namespace
