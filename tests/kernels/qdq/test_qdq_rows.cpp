// GoogleTest for the row kernels of qsim/qdq.h (qsim_rows: one grid per column, the kernels of
// per-channel quantization along the last axis), for every compiled variant (reference included):
//   - forward, STE backward and backward with sums, element for element the reference run kernel
//     on a one-element run with that column's grid (the specification), at every column count
//     around the vector widths, with row strides wider than the rows (the gap left untouched),
//     non-finite inputs, and in place;
//   - the sums: each column adds its terms in row order onto what the buffer held;
//   - a block large enough for the non-temporal stores;
//   - the layout driver along the last axis: sums bit for bit the row-order sum of the test-side
//     terms (qdq_oracle.h), starting from zero.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "qdq_oracle.h"
#include "qsim_test_util.h"

namespace {

using namespace qdq_test;
using qsim_test::describe;
using qsim_test::floats_match;
using qsim_test::same_bits;

INSTANTIATE_TEST_SUITE_P(Variants, QdqKernels, ::testing::ValuesIn(all_variants()), variant_name);

using RowsFn    = qsim_rows_fn qsim_qdq_kernels::*;
using RowsBwdFn = qsim_rows_bwd_fn qsim_qdq_kernels::*;

const RowsFn    kRowsForward[]  = { &qsim_qdq_kernels::qdq_rows, &qsim_qdq_kernels::quantize_rows,
                                    &qsim_qdq_kernels::dequantize_rows };
const RowsBwdFn kRowsBackward[] = { &qsim_qdq_kernels::qdq_rows_backward,
                                    &qsim_qdq_kernels::quantize_rows_backward,
                                    &qsim_qdq_kernels::dequantize_rows_backward };

constexpr float kGap = -12345.0f;  // what the kernels must leave between n and ld

// A rows x n block with row stride ld, random per-column grids (8-bit unsigned), inputs drawn
// around each column's grid (non-finite ones unless finite_only), gradients, and a gap value.
struct Block {
    size_t                 rows, n, ld;
    std::vector<float>     scale, zp, x, dy;
    qsim_rows              r;

    Block(size_t rows_, size_t n_, size_t ld_, std::mt19937 & rng, bool finite_only)
        : rows(rows_), n(n_), ld(ld_) {
        std::uniform_real_distribution<float> unit(0.0f, 1.0f);
        std::uniform_int_distribution<int>    z(0, 255);
        std::vector<GridInputs>               draw;
        for (size_t j = 0; j < n; j++) {
            scale.push_back(std::ldexp(1.0f + unit(rng), -1 - static_cast<int>(unit(rng) * 6.0f)));
            zp.push_back(static_cast<float>(z(rng)));
            draw.emplace_back(make_grid(scale[j], zp[j], 0.0f, 255.0f), finite_only);
        }
        x.assign(rows * ld, kGap);
        for (size_t i = 0; i < rows; i++) {
            for (size_t j = 0; j < n; j++) {
                x[i * ld + j] = draw[j](rng);
            }
        }
        dy = gradients(rows * ld, rng);
        r  = { rows, n, ld, scale.data(), zp.data(), 0.0f, 255.0f };
    }
    qsim_grid grid(size_t j) const { return make_grid(scale[j], zp[j], 0.0f, 255.0f); }
    std::string where(const char * what) const {
        return std::string(what) + " rows " + std::to_string(rows) + " n " + std::to_string(n) + " ld " +
               std::to_string(ld);
    }
};

// The shapes: every column count from 1 to 40 (the tails of 8 and 16 lanes), wider rows, gaps.
std::vector<Block> blocks(std::mt19937 & rng, bool finite_only) {
    std::vector<Block> b;
    for (size_t n = 1; n <= 40; n++) {
        b.emplace_back(3, n, n + (n % 3) * 5, rng, finite_only);
    }
    for (size_t n : { 64, 100, 257 }) {
        b.emplace_back(7, n, n, rng, finite_only);
    }
    return b;
}

TEST_P(QdqKernels, RowsForwardMatchOneElementRuns) {
    std::mt19937 rng(qsim_test::kSeed + 21);
    for (const Block & b : blocks(rng, false)) {
        for (int op = 0; op < 3; op++) {
            std::vector<float> want(b.x.size(), kGap), y(b.x.size(), kGap), inplace = b.x;
            for (size_t i = 0; i < b.rows; i++) {
                for (size_t j = 0; j < b.n; j++) {
                    const size_t at = i * b.ld + j;
                    (ref().*kForward[op].fn)(1, &b.x[at], &want[at], b.grid(j));
                }
            }
            (k().*kRowsForward[op])(&b.r, b.x.data(), y.data());
            (k().*kRowsForward[op])(&b.r, inplace.data(), inplace.data());
            EXPECT_TRUE(floats_match(y.size(), b.x.data(), want.data(), y.data())) << b.where(kForward[op].name);
            for (size_t i = 0; i < b.x.size(); i++) {
                if (i % b.ld >= b.n) {
                    want[i] = kGap;  // in place: the gap keeps x's gap value, which is kGap too
                }
            }
            EXPECT_TRUE(floats_match(y.size(), b.x.data(), want.data(), inplace.data()))
                << b.where(kForward[op].name) << " in place";
        }
    }
}

// dx as the one-element runs give it; sums start from arbitrary values and each column adds, row
// after row, the sums of its one-element runs.
TEST_P(QdqKernels, RowsBackwardAndSumsMatchOneElementRuns) {
    std::mt19937 rng(qsim_test::kSeed + 22);
    for (const bool finite : { false, true }) {
        for (const Block & b : blocks(rng, finite)) {
            for (int op = 0; op < 3; op++) {
                const std::string  w = b.where(kBackward[op].name) + (finite ? " finite" : "");
                std::vector<double> want_sums(2 * b.n), sums(2 * b.n);
                for (size_t j = 0; j < 2 * b.n; j++) {
                    want_sums[j] = sums[j] = std::ldexp(static_cast<double>(j) - 7.0, -3);
                }
                std::vector<float> want(b.x.size(), kGap), dx(b.x.size(), kGap), plain(b.x.size(), kGap);
                for (size_t i = 0; i < b.rows; i++) {
                    for (size_t j = 0; j < b.n; j++) {
                        const size_t at = i * b.ld + j;
                        (ref().*kBackward[op].fn)(1, &b.x[at], &b.dy[at], &want[at], b.grid(j), &want_sums[2 * j]);
                    }
                }
                (k().*kRowsBackward[op])(&b.r, b.x.data(), b.dy.data(), plain.data(), nullptr);
                (k().*kRowsBackward[op])(&b.r, b.x.data(), b.dy.data(), dx.data(), sums.data());
                EXPECT_TRUE(floats_match(dx.size(), b.x.data(), want.data(), plain.data())) << w << " no sums";
                EXPECT_TRUE(floats_match(dx.size(), b.x.data(), want.data(), dx.data())) << w;
                for (size_t j = 0; j < 2 * b.n; j++) {
                    EXPECT_TRUE(same_bits(want_sums[j], sums[j]))
                        << w << " sums[" << j << "]: want " << describe(want_sums[j]) << ", got " << describe(sums[j]);
                }
                std::vector<float> alias = b.dy;  // dx may alias dy
                (k().*kRowsBackward[op])(&b.r, b.x.data(), alias.data(), alias.data(), nullptr);
                for (size_t i = 0; i < b.x.size(); i++) {
                    if (i % b.ld >= b.n) {
                        want[i] = b.dy[i];
                    }
                }
                EXPECT_TRUE(floats_match(dx.size(), b.x.data(), want.data(), alias.data())) << w << " in place";
            }
        }
    }
}

// A contiguous, 64-byte aligned block of 2^22 elements and more (QSIM_STREAM_MIN of
// kernels/qdq/qdq_variants.h): the variants write it with non-temporal stores; the values are
// those of the reference.
TEST_P(QdqKernels, RowsLargeAlignedBlocksMatchRef) {
    std::mt19937  rng(qsim_test::kSeed + 23);
    const size_t  n = 64, rows = (size_t{ 1 } << 22) / n + 3;
    Block         b(rows, n, n, rng, false);
    float *       y    = static_cast<float *>(std::aligned_alloc(64, rows * n * sizeof(float)));
    float *       dx   = static_cast<float *>(std::aligned_alloc(64, rows * n * sizeof(float)));
    std::vector<float> want(rows * n), want_dx(rows * n);
    ref().qdq_rows(&b.r, b.x.data(), want.data());
    ref().qdq_rows_backward(&b.r, b.x.data(), b.dy.data(), want_dx.data(), nullptr);
    k().qdq_rows(&b.r, b.x.data(), y);
    k().qdq_rows_backward(&b.r, b.x.data(), b.dy.data(), dx, nullptr);
    EXPECT_TRUE(floats_match(rows * n, b.x.data(), want.data(), y));
    EXPECT_TRUE(floats_match(rows * n, b.x.data(), want_dx.data(), dx)) << "dx";
    std::free(y);
    std::free(dx);
}

// The layout driver on [outer, channels] per-channel along the last axis: every group's sums
// are the row-order double sums of the fp32 terms of qdq_oracle.h (float_terms), from zero.
TEST_P(QdqKernels, LastAxisReductionsAddRowsInOrder) {
    std::mt19937 rng(qsim_test::kSeed + 24);
    for (const size_t ch : { 1, 5, 16, 45, 67 }) {
        const Block       b(33, ch, ch, rng, true);
        const qsim_layout l = qsim_layout_per_channel(33, static_cast<int64_t>(ch), 1);
        const qsim_qparams p = { b.scale.data(), b.zp.data(), 0.0f, 255.0f };
        for (const BackwardKernel & bk : kBackward) {
            std::vector<double> sums(2 * ch, 99.0), want(2 * ch, 0.0);
            std::vector<float>  dx(b.x.size());
            for (size_t i = 0; i < 33; i++) {
                for (size_t j = 0; j < ch; j++) {
                    const Terms t = float_terms(bk.op, b.x[i * ch + j], b.dy[i * ch + j], b.grid(j));
                    want[2 * j] += static_cast<double>(t.ds);
                    want[2 * j + 1] += static_cast<double>(t.dzp);
                }
            }
            ASSERT_EQ(qsim_reduce_groups(&l), static_cast<int64_t>(ch));
            qsim_backward_reduce_f32(&k(), bk.op, &l, &p, b.x.data(), b.dy.data(), dx.data(), sums.data(), 0,
                                     static_cast<int64_t>(ch));
            for (size_t j = 0; j < 2 * ch; j++) {
                EXPECT_TRUE(same_bits(want[j], sums[j])) << bk.name << " channels " << ch << " sums[" << j
                                                         << "]: want " << describe(want[j]) << ", got "
                                                         << describe(sums[j]);
            }
        }
    }
}

}  // namespace
