// GoogleTest, host only: the arithmetic and index maps of the CUDA kernels (kernels/cuda/
// qdq_cuda_math.h, compiled here by the host compiler) against the C reference kernels and the
// layout definition of qsim/qdq.h. On the device the same functions use IEEE round-to-nearest
// intrinsics, so what passes here is what the GPU computes; no GPU is needed.
//   - Divider<uint32_t> (multiply-high division) equals integer division;
//   - QparamIndex and GroupMap follow the layout definition, on both index widths;
//   - forward, backward (dx and each element's gradient terms), the fp16/bf16 casts and the
//     16-bit load/store (widen_h16 / narrow_h16, NaN bits included) match the
//     _ref kernels bit for bit (any NaN matches any NaN);
//   - a reduction summed per group in GroupMap order stays within the tolerance that
//     qsim/qdq_cuda.h states against qsim_backward_reduce_f32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/qdq_cuda_math.h"
#include "qsim_test_util.h"

namespace {

using qsim_test::describe;
using qsim_test::floats_match;
using qsim_test::kSeed;
using qsim_test::same_bits;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---- division ------------------------------------------------------------------------------

TEST(CudaMath, DividerEqualsIntegerDivision) {
    std::mt19937 rng(kSeed);
    std::uniform_int_distribution<uint32_t> any(0, INT32_MAX);
    std::vector<uint32_t> divisors = { 1, 2, 3, 5, 7, 9, 49, 64, 100, 641, 1000, 4095, 65535,
                                       65536, 65537, (1u << 20) + 1, 1u << 30, (1u << 30) + 3,
                                       INT32_MAX - 1, INT32_MAX };
    for (int i = 0; i < 200; i++) {
        divisors.push_back(std::max<uint32_t>(1, any(rng) >> (i % 31)));
    }
    for (const uint32_t d : divisors) {
        const auto div = qsim_cuda::Divider<uint32_t>::make(d);
        std::vector<uint32_t> nums = { 0, 1, d - 1, d, INT32_MAX, INT32_MAX - 1,
                                       INT32_MAX - INT32_MAX % d, INT32_MAX - INT32_MAX % d - 1 };
        for (uint32_t k = 1; k < 4 && uint64_t{ d } * k <= INT32_MAX; k++) {
            nums.push_back(d * k - 1);
            nums.push_back(d * k);
            nums.push_back(d * k + 1 <= INT32_MAX ? d * k + 1 : d * k);
        }
        for (int i = 0; i < 2000; i++) {
            nums.push_back(any(rng));
        }
        for (const uint32_t n : nums) {
            ASSERT_EQ(div.div(n), n / d) << "n=" << n << " d=" << d;
        }
    }
    for (uint32_t d = 1; d <= 300; d++) {  // every small divisor, every numerator up to 70000
        const auto div = qsim_cuda::Divider<uint32_t>::make(d);
        for (uint32_t n = 0; n <= 70000; n++) {
            ASSERT_EQ(div.div(n), n / d) << "n=" << n << " d=" << d;
        }
    }
}

// ---- layouts -------------------------------------------------------------------------------

struct LayoutCase {
    std::string name;
    qsim_layout layout;
};

std::vector<LayoutCase> layouts() {
    return {
        { "per_tensor_1", qsim_layout_per_tensor(1) },
        { "per_tensor_1000", qsim_layout_per_tensor(1000) },
        { "per_channel_3x5x7", qsim_layout_per_channel(3, 5, 7) },
        { "per_channel_axis0", qsim_layout_per_channel(1, 6, 33) },
        { "per_channel_last_axis", qsim_layout_per_channel(40, 9, 1) },
        { "per_channel_one_channel", qsim_layout_per_channel(4, 1, 5) },
        { "blockwise_2x8x3_b4", qsim_layout_blockwise(2, 8, 3, 4) },
        { "blockwise_last_axis", qsim_layout_blockwise(6, 12, 1, 3) },
        { "blockwise_axis0", qsim_layout_blockwise(1, 10, 7, 5) },
        { "blockwise_whole_axis", qsim_layout_blockwise(3, 4, 2, 4) },
        { "blockwise_block1", qsim_layout_blockwise(2, 3, 4, 1) },
    };
}

// The qparam index of every flat element, straight from the definition in qsim/qdq.h.
std::vector<int64_t> defined_index(const qsim_layout & l) {
    std::vector<int64_t> idx;
    for (int64_t o = 0; o < l.outer; o++) {
        for (int64_t c = 0; c < l.channels; c++) {
            for (int64_t i = 0; i < l.inner; i++) {
                idx.push_back(o * l.stride_outer + (c / l.block) * l.stride_block +
                              i * l.stride_inner);
            }
        }
    }
    return idx;
}

// Number of qparam entries the layout indexes.
int64_t qparam_count(const std::vector<int64_t> & idx) {
    return *std::max_element(idx.begin(), idx.end()) + 1;
}

template <typename Index>
void check_qparam_index(const LayoutCase & lc) {
    const std::vector<int64_t> want = defined_index(lc.layout);
    const auto map = qsim_cuda::QparamIndex<Index>::make(lc.layout);
    for (size_t f = 0; f < want.size(); f++) {
        ASSERT_EQ(static_cast<int64_t>(map(static_cast<Index>(f))), want[f])
            << lc.name << " flat " << f;
    }
}

TEST(CudaMath, QparamIndexFollowsTheLayout) {
    for (const LayoutCase & lc : layouts()) {
        check_qparam_index<uint32_t>(lc);
        check_qparam_index<int64_t>(lc);
    }
}

template <typename Index>
void check_groups(const LayoutCase & lc) {
    const std::vector<int64_t> idx = defined_index(lc.layout);
    int64_t groups = 0, size = 0;
    qsim_cuda::group_shape(lc.layout, &groups, &size);
    ASSERT_EQ(groups, qparam_count(idx)) << lc.name;
    ASSERT_EQ(groups * size, static_cast<int64_t>(idx.size())) << lc.name;
    const auto gm = qsim_cuda::GroupMap<Index>::make(lc.layout);
    std::vector<int> seen(idx.size(), 0);
    for (int64_t g = 0; g < groups; g++) {
        const Index first = gm.start(static_cast<Index>(g));
        int64_t     prev  = -1;
        for (int64_t j = 0; j < size; j++) {
            const int64_t f = static_cast<int64_t>(gm.flat(first, static_cast<Index>(j)));
            ASSERT_TRUE(f > prev && f < static_cast<int64_t>(idx.size()))
                << lc.name << " group " << g << " element " << j << " -> flat " << f
                << " (previous " << prev << ")";
            ASSERT_EQ(idx[f], g) << lc.name << " group " << g << " element " << j << " flat " << f;
            seen[f]++;
            prev = f;
        }
    }
    for (size_t f = 0; f < seen.size(); f++) {
        ASSERT_EQ(seen[f], 1) << lc.name << " flat " << f << " is in " << seen[f] << " groups";
    }
}

TEST(CudaMath, GroupsCoverEachElementOnceInFlatOrder) {
    for (const LayoutCase & lc : layouts()) {
        check_groups<uint32_t>(lc);
        check_groups<int64_t>(lc);
    }
}

// ---- elements ------------------------------------------------------------------------------

struct GridCase {
    float scale, zero_point, qmin, qmax;
};

const GridCase kGrids[] = {
    { 0.5f, 0.0f, -128.0f, 127.0f },      // signed 8-bit
    { 0.1f, 3.0f, 0.0f, 255.0f },         // unsigned 8-bit, scale not a power of two
    { 1e-3f, -5.0f, -8.0f, 7.0f },        // 4-bit
    { 3.0f, 1.0f, -1.0f, 1.0f },          // ternary
    { 7.3e-39f, 0.0f, -32768.0f, 32767.0f },  // subnormal scale, 16-bit
};

// Specials (ties, NaN, +-Inf, +-0, subnormals, huge) and random values around the grid.
std::vector<float> inputs(const GridCase & g, uint32_t seed) {
    std::vector<float> x = { 0.0f, -0.0f, kNaN, -kNaN, kInf, -kInf, 1e-45f, -1e-45f, 3e38f,
                             -3e38f, std::numeric_limits<float>::denorm_min(),
                             std::numeric_limits<float>::min() };
    for (int k = -6; k <= 6; k++) {  // exact ties k + 0.5 steps, and their neighbours
        const float tie = (static_cast<float>(k) + 0.5f) * g.scale;
        x.insert(x.end(), { tie, std::nextafter(tie, kInf), std::nextafter(tie, -kInf) });
    }
    std::mt19937 rng(seed);
    const float span = (g.qmax - g.qmin + 4.0f) * g.scale;
    std::uniform_real_distribution<float> u(-span, span);
    std::uniform_int_distribution<uint32_t> any_bits;
    for (int i = 0; i < 4000; i++) {
        x.push_back(u(rng));
        x.push_back(qsim_test::from_bits(any_bits(rng)));
    }
    return x;
}

using RunFn = void (*)(size_t, const float *, float *, qsim_grid);
using BwdFn = void (*)(size_t, const float *, const float *, float *, qsim_grid, double *);

template <qsim_op Op>
void check_op(RunFn ref_fwd, BwdFn ref_bwd, const char * name) {
    uint32_t seed = kSeed;
    for (const GridCase & gc : kGrids) {
        const qsim_grid g = { gc.scale, gc.zero_point, gc.qmin, gc.qmax };
        const std::string where = std::string(name) + " scale=" + describe(gc.scale);
        const std::vector<float> x = inputs(gc, seed++);
        const size_t n = x.size();
        std::vector<float> dy(n), want(n), got(n), want_dx(n), got_dx(n);
        std::mt19937 rng(seed++);
        std::normal_distribution<float> normal;
        for (float & v : dy) {
            v = normal(rng);
        }
        dy[0] = kNaN;
        ref_fwd(n, x.data(), want.data(), g);
        ref_bwd(n, x.data(), dy.data(), want_dx.data(), g, nullptr);
        for (size_t i = 0; i < n; i++) {
            got[i]    = qsim_cuda::forward<Op>(x[i], g);
            got_dx[i] = qsim_cuda::backward<Op>(x[i], dy[i], g).dx;
        }
        EXPECT_TRUE(floats_match(n, x.data(), want.data(), got.data())) << where << " forward";
        EXPECT_TRUE(floats_match(n, x.data(), want_dx.data(), got_dx.data())) << where << " dx";
        for (size_t i = 0; i < n; i++) {
            // One element: the reference's lane sum is 0.0 + term (which turns -0 into +0).
            double sums[2] = { 0.0, 0.0 };
            float  dx1     = 0.0f;
            ref_bwd(1, &x[i], &dy[i], &dx1, g, sums);
            const qsim_cuda::Grad d = qsim_cuda::backward<Op>(x[i], dy[i], g);
            const double want_s = 0.0 + static_cast<double>(d.ds);
            const double want_z = 0.0 + static_cast<double>(d.dz);
            ASSERT_TRUE(same_bits(sums[0], want_s) && same_bits(sums[1], want_z))
                << where << " index " << i << ": x=" << describe(x[i]) << " dy=" << describe(dy[i])
                << " ref sums " << describe(sums[0]) << ", " << describe(sums[1])
                << " cuda terms " << describe(d.ds) << ", " << describe(d.dz);
        }
    }
}

TEST(CudaMath, QdqMatchesReference) {
    check_op<QSIM_OP_QDQ>(qsim_qdq_f32_ref, qsim_qdq_backward_f32_ref, "qdq");
}

TEST(CudaMath, QuantizeMatchesReference) {
    check_op<QSIM_OP_QUANTIZE>(qsim_quantize_f32_ref, qsim_quantize_backward_f32_ref, "quantize");
}

TEST(CudaMath, DequantizeMatchesReference) {
    check_op<QSIM_OP_DEQUANTIZE>(qsim_dequantize_f32_ref, qsim_dequantize_backward_f32_ref,
                                 "dequantize");
}

// Every exponent with halfway and odd mantissas, the fp16 edges, NaN and the infinities, then
// 2^20 random bit patterns.
std::vector<float> cast_inputs() {
    std::vector<float> x = { 0.0f, -0.0f, kNaN, -kNaN, kInf, -kInf, 65504.0f, 65519.99f,
                             65520.0f, -65520.0f, 5.96e-8f, 2.98e-8f, 2.9802326e-8f, 6.1e-5f,
                             3.3895314e38f, 3.4028235e38f, 1e-45f };
    for (uint32_t e = 0; e < 256; e++) {  // every exponent, with halfway and odd mantissas
        for (uint32_t m : { 0u, 1u, 0x1000u, 0x1001u, 0x2000u, 0x3000u, 0x8000u, 0x18000u,
                            0x7fffffu }) {
            x.push_back(qsim_test::from_bits((e << 23) | m));
            x.push_back(qsim_test::from_bits(0x80000000u | (e << 23) | m));
        }
    }
    std::mt19937 rng(kSeed);
    std::uniform_int_distribution<uint32_t> any_bits;
    for (int i = 0; i < (1 << 20); i++) {
        x.push_back(qsim_test::from_bits(any_bits(rng)));
    }
    return x;
}

TEST(CudaMath, FakeCastsMatchReference) {
    const std::vector<float> x = cast_inputs();
    const size_t n = x.size();
    std::vector<float> want(n), got(n);
    qsim_cast_f16_f32_ref(n, x.data(), want.data());
    std::transform(x.begin(), x.end(), got.begin(), qsim_cuda::round_f16);
    EXPECT_TRUE(floats_match(n, x.data(), want.data(), got.data())) << "fp16";
    qsim_cast_bf16_f32_ref(n, x.data(), want.data());
    std::transform(x.begin(), x.end(), got.begin(), qsim_cuda::round_bf16);
    EXPECT_TRUE(floats_match(n, x.data(), want.data(), got.data())) << "bf16";
}

// The 16-bit load and store of the CUDA map kernels: every bit pattern widened, and the cast
// inputs narrowed, bit for bit as the CPU reference (NaN bits included).
TEST(CudaMath, HalfWidenAndNarrowMatchReference) {
    const std::vector<float> x = cast_inputs();
    for (qsim_half_kind kind : { QSIM_HALF_F16, QSIM_HALF_BF16 }) {
        for (uint32_t h = 0; h < 65536; h++) {
            const uint16_t bits = static_cast<uint16_t>(h);
            float          want = 0.0f;
            qsim_widen_h16_ref(kind, 1, &bits, &want);
            ASSERT_EQ(qsim_test::bits(qsim_cuda::widen_h16(kind, bits)), qsim_test::bits(want))
                << "kind " << kind << " widen 0x" << std::hex << h;
        }
        for (size_t i = 0; i < x.size(); i++) {
            uint16_t want = 0;
            qsim_narrow_h16_ref(kind, 1, &x[i], &want);
            ASSERT_EQ(qsim_cuda::narrow_h16(kind, x[i]), want)
                << "kind " << kind << " index " << i << " narrow " << describe(x[i]);
        }
    }
}

// ---- reduction order -------------------------------------------------------------------------

// Sums each group's terms in GroupMap order (in double, as the kernels do) and compares with
// qsim_backward_reduce_f32 + qsim_reduce_finish within the tolerance of qsim/qdq_cuda.h; dx must
// match bit for bit.
template <qsim_op Op>
void check_reduction(const LayoutCase & lc, const qsim_qdq_kernels * ref) {
    const std::vector<int64_t> idx = defined_index(lc.layout);
    const int64_t n = static_cast<int64_t>(idx.size()), np = qparam_count(idx);
    std::mt19937 rng(kSeed + static_cast<uint32_t>(n));
    std::normal_distribution<float> normal;
    std::uniform_real_distribution<float> pos(0.01f, 0.2f);
    std::vector<float> x(n), dy(n), scale(np), zp(np);
    for (int64_t i = 0; i < n; i++) {
        x[i]  = Op == QSIM_OP_DEQUANTIZE ? std::nearbyint(40.0f * normal(rng)) : 5.0f * normal(rng);
        dy[i] = normal(rng);
    }
    for (int64_t q = 0; q < np; q++) {
        scale[q] = pos(rng);
        zp[q]    = static_cast<float>(static_cast<int>(q % 7) - 3);
    }
    const qsim_qparams p = { scale.data(), zp.data(), -20.0f, 20.0f };
    std::vector<float> want_dx(n), want_ds(np), want_dz(np);
    std::vector<double> sums(2 * qsim_reduce_groups(&lc.layout));
    qsim_backward_reduce_f32(ref, Op, &lc.layout, &p, x.data(), dy.data(), want_dx.data(),
                             sums.data(), 0, qsim_reduce_groups(&lc.layout));
    qsim_reduce_finish(&lc.layout, sums.data(), want_ds.data(), want_dz.data());

    int64_t groups = 0, size = 0;
    qsim_cuda::group_shape(lc.layout, &groups, &size);
    const auto gm = qsim_cuda::GroupMap<int64_t>::make(lc.layout);
    std::vector<float> got_dx(n);
    for (int64_t g = 0; g < groups; g++) {
        const qsim_grid grid = qsim_cuda::grid_at(p, g);
        double s = 0.0, z = 0.0, abs_s = 0.0, abs_z = 0.0;
        for (int64_t j = size - 1; j >= 0; j--) {  // reversed: an order unlike the CPU's
            const int64_t f = gm.flat(gm.start(g), j);
            const qsim_cuda::Grad d = qsim_cuda::backward<Op>(x[f], dy[f], grid);
            got_dx[f] = d.dx;
            s += d.ds;
            z += d.dz;
            abs_s += std::fabs(d.ds);
            abs_z += std::fabs(d.dz);
        }
        const float gs = static_cast<float>(s), gz = static_cast<float>(z);
        const double slack = static_cast<double>(size) * std::ldexp(1.0, -52);
        EXPECT_LE(std::fabs(gs - want_ds[g]),
                  std::ldexp(1.0, -23) * std::max(std::fabs(gs), std::fabs(want_ds[g])) +
                      slack * abs_s)
            << lc.name << " dscale[" << g << "]: cpu " << describe(want_ds[g]) << " reordered "
            << describe(gs);
        EXPECT_LE(std::fabs(gz - want_dz[g]),
                  std::ldexp(1.0, -23) * std::max(std::fabs(gz), std::fabs(want_dz[g])) +
                      slack * abs_z)
            << lc.name << " dzero_point[" << g << "]: cpu " << describe(want_dz[g])
            << " reordered " << describe(gz);
    }
    EXPECT_TRUE(floats_match(n, x.data(), want_dx.data(), got_dx.data())) << lc.name << " dx";
}

TEST(CudaMath, ReductionOrderStaysWithinTolerance) {
    size_t count = 0;
    const qsim_qdq_kernels * ref = &qsim_qdq_variants(&count)[0];
    std::vector<LayoutCase> cases = layouts();
    cases.push_back({ "per_tensor_100000", qsim_layout_per_tensor(100000) });
    for (const LayoutCase & lc : cases) {
        check_reduction<QSIM_OP_QDQ>(lc, ref);
        check_reduction<QSIM_OP_QUANTIZE>(lc, ref);
        check_reduction<QSIM_OP_DEQUANTIZE>(lc, ref);
    }
}

}  // namespace
