// GoogleTest for qsim/aimet_tfe.h's counting in parts: qsim_tfe_count (slots added, never
// cleared) and the three steps of qsim_tfe_first / qsim_tfe_merge (range, count, apply) that
// bindings/aimet_tfe_cpu.cpp runs to count a long row in chunks over threads.
//
// Oracles: hand-computed slots; the whole row counted in one call (chunks' slots summed must
// equal it, for every compiled ISA variant); qsim_tfe_first / qsim_tfe_merge on the whole batch
// (the steps must leave the same state, bit for bit).
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "qsim_test_util.h"

extern "C" {
#include "analyzers/aimet_tfe_variants.h"
}

namespace {

constexpr float kInf  = std::numeric_limits<float>::infinity();
constexpr float kNaN  = std::numeric_limits<float>::quiet_NaN();
constexpr int   kBins = QSIM_TFE_BINS;

// One histogram's state (counts, edges, range, limits) in vectors.
struct State {
    std::vector<float> counts = std::vector<float>(kBins), edges = std::vector<float>(kBins + 1);
    float              range[2] = { 0, 0 }, limits[2] = { 0, 0 };
    qsim_tfe_hist      hist() { return { counts.data(), edges.data(), range, limits }; }
    bool operator==(const State & o) const {
        return counts == o.counts && edges == o.edges && range[0] == o.range[0] && range[1] == o.range[1] &&
               limits[0] == o.limits[0] && limits[1] == o.limits[1];
    }
};

}  // namespace

// The slots of each value over [0, 1]: its bin, or below (-1, -inf), above (2, +inf), NaN.
TEST(AimetTfeCount, HandComputedSlots) {
    const std::vector<float> x = { 0.0f, 0.5f, 1.0f, -1.0f, 2.0f, kInf, -kInf, kNaN };
    for (const qsim_tfe_kernels * k : qsim_test::runnable(qsim_tfe_variants)) {
        std::vector<int64_t> s(QSIM_TFE_SLOTS, 7), want(QSIM_TFE_SLOTS, 7);  // added to, not cleared
        ASSERT_EQ(qsim_tfe_count_k(k, x.size(), x.data(), 0.0f, 1.0f, s.data()), QSIM_SUCCESS);
        want[0] += 1, want[256] += 1, want[511] += 1, want[kBins] += 2, want[kBins + 1] += 2, want[kBins + 2] += 1;
        EXPECT_EQ(s, want) << k->name;
        EXPECT_EQ(qsim_tfe_count_k(k, 1, x.data(), 1.0f, 1.0f, s.data()), QSIM_INVALID_ARGUMENT);
        EXPECT_EQ(s, want) << k->name;  // refused: untouched
    }
}

// A row of 10007 values (inside, on the range's ends and bin edges, beyond it, +-inf, NaN)
// counted in chunks of every size that splits it through the kernel's tails (blocks of 64, the
// 4096 values from which it counts in copies): the chunks' slots summed are the whole row's.
TEST(AimetTfeCount, ChunksSumToTheWholeRow) {
    std::mt19937                          rng(qsim_test::kSeed + 3);
    std::uniform_real_distribution<float> u(-1.3f, 1.3f);
    const std::vector<float> specials = { kInf, -kInf, kNaN, -1.0f, 1.0f, 0.0f, 1.0f / 256, -2.0f, 3.0f };
    std::vector<float>       x(10007);
    for (size_t i = 0; i < x.size(); i++) {
        x[i] = i % 13 == 0 ? specials[i / 13 % specials.size()] : u(rng);
    }
    for (const qsim_tfe_kernels * k : qsim_test::runnable(qsim_tfe_variants)) {
        std::vector<int64_t> whole(QSIM_TFE_SLOTS, 0);
        ASSERT_EQ(qsim_tfe_count_k(k, x.size(), x.data(), -1.0f, 1.0f, whole.data()), QSIM_SUCCESS);
        for (size_t chunk : { 1, 63, 64, 65, 4095, 4096, 4097, 5003, 10006 }) {
            std::vector<int64_t> sum(QSIM_TFE_SLOTS, 0);
            for (size_t at = 0; at < x.size(); at += chunk) {
                std::vector<int64_t> part(QSIM_TFE_SLOTS, 0);
                const size_t         m = std::min(chunk, x.size() - at);
                ASSERT_EQ(qsim_tfe_count_k(k, m, x.data() + at, -1.0f, 1.0f, part.data()), QSIM_SUCCESS);
                for (int s = 0; s < QSIM_TFE_SLOTS; s++) {
                    sum[s] += part[s];
                }
            }
            EXPECT_EQ(sum, whole) << k->name << " chunk " << chunk;
        }
    }
}

// A first batch and two later ones (the second grows the range, with outliers beyond the
// limits), each counted in 3 chunks after qsim_tfe_*_range and applied with qsim_tfe_*_counted:
// the state equals qsim_tfe_first / qsim_tfe_merge's bit for bit; refused ranges change nothing.
TEST(AimetTfeFirstMerge, CountedStepsEqualTheWholeCalls) {
    std::mt19937                    rng(qsim_test::kSeed + 4);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float>              x(9000);
    State                           whole, steps;
    for (int batch = 0; batch < 3; batch++) {
        for (auto & v : x) {
            v = normal(rng) * static_cast<float>(1 + 2 * batch);
        }
        x[17] = kNaN, x[4321] = batch == 2 ? 1e6f : 0.0f, x[8999] = batch == 2 ? -kInf : 1.0f;
        const float lo = *std::min_element(x.begin() + 18, x.end() - 1), hi = batch == 2 ? 1e6f : 4.0f;
        const qsim_tfe_hist hw = whole.hist(), hs = steps.hist();
        float               bin[2];
        std::vector<int64_t> slots(QSIM_TFE_SLOTS, 0);
        ASSERT_EQ(batch ? qsim_tfe_merge(&hw, x.size(), x.data(), lo, hi)
                        : qsim_tfe_first(&hw, whole.limits, x.size(), x.data(), lo, hi), QSIM_SUCCESS);
        ASSERT_EQ(batch ? qsim_tfe_merge_range(&hs, lo, hi, bin) : qsim_tfe_first_range(lo, hi, bin), QSIM_SUCCESS);
        for (size_t at : { 0, 4000, 8000 }) {  // 4000, 4000, 1000 values
            ASSERT_EQ(qsim_tfe_count(std::min<size_t>(4000, x.size() - at), x.data() + at, bin[0], bin[1], slots.data()), QSIM_SUCCESS);
        }
        ASSERT_EQ(batch ? qsim_tfe_merge_counted(&hs, lo, hi, slots.data())
                        : qsim_tfe_first_counted(&hs, steps.limits, lo, hi, slots.data()), QSIM_SUCCESS);
        EXPECT_TRUE(whole == steps) << "batch " << batch;
    }
    const State                before = steps;
    const qsim_tfe_hist        hs     = steps.hist();
    const std::vector<int64_t> slots(QSIM_TFE_SLOTS, 1);
    float                      bin[2];
    EXPECT_EQ(qsim_tfe_first_range(kInf, -kInf, bin), QSIM_INVALID_ARGUMENT);  // no finite value
    EXPECT_EQ(qsim_tfe_first_counted(&hs, steps.limits, kInf, -kInf, slots.data()), QSIM_INVALID_ARGUMENT);
    steps.limits[1] = kInf;  // a range that cannot be binned
    EXPECT_EQ(qsim_tfe_merge_range(&hs, 0.0f, kInf, bin), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_tfe_merge_counted(&hs, 0.0f, kInf, slots.data()), QSIM_INVALID_ARGUMENT);
    steps.limits[1] = before.limits[1];
    EXPECT_TRUE(steps == before);
}
