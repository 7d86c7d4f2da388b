// GoogleTest: every compiled qdq variant against `ref` on long tensors: the layout drivers
// (per-tensor reduction tiles, per-channel groups) and streamed runs of QSIM_STREAM_MIN elements and
// more (non-temporal stores). Variants this CPU lacks are skipped with a message.
#include "qdq_variant_test_util.h"

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
// non-temporal stores when the output is vector-aligned and not in place: every forward kernel,
// cast and backward (with and without sums) gives ref's bits there too, aligned and one float off,
// out of place and in place (ordinary stores).
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
    using qsim_test::Aligned;
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
