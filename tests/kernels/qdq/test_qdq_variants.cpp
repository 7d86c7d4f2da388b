// GoogleTest: every compiled qdq variant (qdq_variants.inc) against the `ref` kernels, which are
// the specification. Outputs must match bit for bit (NaN payloads included) for random and special
// inputs, every length 0..257 (all tail sizes), unaligned pointers and in-place calls; kernels must
// not write past their run; reductions must match bit for bit (any NaN matches any NaN there, since
// IEEE leaves the payload of NaN + NaN open). Variants this CPU lacks are skipped with a message.
#include "qdq_variant_test_util.h"

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
