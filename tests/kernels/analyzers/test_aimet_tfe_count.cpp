// GoogleTest for qsim/aimet_tfe.h's counting in parts: qsim_tfe_count (slots added, never
// cleared) and the three steps of qsim_tfe_first / qsim_tfe_merge (range, count, apply) that
// bindings/aimet_tfe_cpu.cpp runs to count a long row in chunks over threads.
//
// Oracles: hand-computed slots; the header's slot formula per value (every ISA variant, slot by
// slot); the whole row counted in one call (chunks' slots summed must equal it, for every
// compiled ISA variant); qsim_tfe_first / qsim_tfe_merge on the whole batch (the steps must leave
// the same state, bit for bit); float conversions of the slots.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

// The ends of a histogram's range.
struct Ends {
    float lo, hi;
};

// The slot of v over [lo, hi] as the header states it: torch.histc's bin (float32 operations,
// truncated, at most the last), else below / above / NaN.
int spec_slot(float v, float lo, float hi) {
    if (std::isnan(v)) {
        return kBins + 2;
    }
    if (v < lo || v > hi) {
        return v < lo ? kBins : kBins + 1;
    }
    const float t = (v - lo) * static_cast<float>(kBins) / (hi - lo);
    return !(t >= 0.0f) ? 0 : t < static_cast<float>(kBins - 1) ? static_cast<int>(t) : kBins - 1;
}

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

// Every variant's slots of every prefix length through the vector steps' tails and the long
// runs' counter copies, over values at and just beyond the ends, +-Inf, NaN, -0, denormals,
// a bin edge and huge quotients (a range whose width overflows to inf: quotients 0 or NaN).
TEST(AimetTfeCount, VariantsMatchTheSpecSlotBySlot) {
    std::mt19937                          rng(qsim_test::kSeed);
    std::uniform_real_distribution<float> u(-1.3f, 1.3f);
    for (const Ends r : { Ends{ -1.0f, 1.0f }, Ends{ 0.0f, 1e-30f }, Ends{ -3e38f, 3e38f } }) {
        const std::vector<float> specials = {
            r.lo, r.hi, std::nextafter(r.lo, -kInf), std::nextafter(r.hi, kInf), kInf, -kInf, kNaN,
            0.0f, -0.0f, 1e-40f, -1e-40f, r.lo + (r.hi - r.lo) * 0.5f, r.lo / 2 + r.hi / 2,
            std::nextafter(r.hi, -kInf), 3e38f, -3e38f };
        std::vector<float> x(9000);
        for (size_t i = 0; i < x.size(); i++) {
            x[i] = i % 5 == 0 ? specials[(i / 5) % specials.size()] : u(rng) * (r.hi - r.lo) / 2.0f;
        }
        for (const qsim_tfe_kernels * k : qsim_test::runnable(qsim_tfe_variants)) {
            for (size_t len = 0; len <= 9000; len += len < 80 ? 1 : len < 4200 ? 509 : 1201) {
                std::vector<int64_t> got(QSIM_TFE_SLOTS, 0), want(QSIM_TFE_SLOTS, 0);
                for (size_t i = 0; i < len; i++) {
                    want[spec_slot(x[i], r.lo, r.hi)]++;
                }
                ASSERT_EQ(qsim_tfe_count_k(k, len, x.data(), r.lo, r.hi, got.data()), QSIM_SUCCESS);
                for (int s = 0; s < QSIM_TFE_SLOTS; s++) {
                    ASSERT_EQ(got[s], want[s]) << k->name << " [" << r.lo << ", " << r.hi << "] n=" << len
                                               << " slot " << s;
                }
            }
        }
    }
}

// A first batch's counts are its slots converted to float (the end slots added to the end bins),
// also counts float32 cannot hold exactly (rounded to nearest even), up to 2^62, and slots that
// all fit 36 bits or reach just 2^31 (past int32, which the conversion takes below 2^31).
TEST(AimetTfeFirst, CountsAreTheSlotsAsFloat) {
    std::mt19937_64 rng(qsim_test::kSeed);
    for (int64_t top : { (int64_t{ 1 } << 31) + 1, int64_t{ 1 } << 36, int64_t{ 1 } << 52, int64_t{ 1 } << 62 }) {
        std::vector<int64_t> slots(QSIM_TFE_SLOTS);
        for (size_t s = 0; s < slots.size(); s++) {
            slots[s] = static_cast<int64_t>(rng() % static_cast<uint64_t>(std::max<int64_t>(top >> (s % 40), 1)));
        }
        slots[7] = (int64_t{ 1 } << 24) + 1, slots[8] = (int64_t{ 1 } << 25) + 3, slots[9] = top - 1;
        std::vector<float> counts(kBins), edges(kBins + 1), want(kBins);
        float              range[2], limits[2];
        const qsim_tfe_hist h = { counts.data(), edges.data(), range, limits };
        ASSERT_EQ(qsim_tfe_first_counted(&h, limits, -1.0f, 1.0f, slots.data()), QSIM_SUCCESS);
        for (int b = 0; b < kBins; b++) {
            want[b] = static_cast<float>(slots[b]);
        }
        want[0] += static_cast<float>(slots[kBins]);
        want[kBins - 1] += static_cast<float>(slots[kBins + 1]);
        for (int b = 0; b < kBins; b++) {
            ASSERT_EQ(counts[b], want[b]) << "bin " << b << " slot " << slots[b] << " top " << top;
        }
    }
}

// Every variant's slots of a long row against the spec, over values on every bin edge of ranges
// whose reciprocal is normal, subnormal (width > 2^126) or infinite (width < 2^-128): each edge
// e = lo + i * w / 512 computed three ways and one ulp either side, so that quotients land on,
// just below and just above integers (a variant that multiplies by the reciprocal, or divides by
// w / 512, fails here).
TEST(AimetTfeCount, VariantsMatchTheSpecOnBinEdges) {
    std::mt19937                          rng(qsim_test::kSeed + 5);
    std::uniform_real_distribution<float> u(-4.0f, 4.0f);
    std::vector<Ends>                     ranges;
    for (int i = 0; i < 24; i++) {
        const float lo = u(rng);
        ranges.push_back({ lo, lo + std::exp2(u(rng)) });
    }
    ranges.insert(ranges.end(), { Ends{ -1.0f, 1.0f }, Ends{ 0.0f, 3.0f }, Ends{ -1e38f, 1e38f },
                                  Ends{ 0.0f, 1e-39f }, Ends{ 100.0f, 100.0f + 3e-5f } });
    for (const Ends r : ranges) {
        const float        w = r.hi - r.lo;
        std::vector<float> x;
        for (int i = 0; i <= kBins; i++) {
            const float fi = static_cast<float>(i);
            for (const float e : { r.lo + fi * w / kBins, r.lo + fi * (w / kBins), fi / kBins * w + r.lo }) {
                x.insert(x.end(), { e, std::nextafter(e, -kInf), std::nextafter(e, kInf) });
            }
        }
        for (const qsim_tfe_kernels * k : qsim_test::runnable(qsim_tfe_variants)) {
            std::vector<int64_t> got(QSIM_TFE_SLOTS, 0), want(QSIM_TFE_SLOTS, 0);
            for (const float v : x) {
                want[spec_slot(v, r.lo, r.hi)]++;
            }
            ASSERT_EQ(qsim_tfe_count_k(k, x.size(), x.data(), r.lo, r.hi, got.data()), QSIM_SUCCESS);
            for (int s = 0; s < QSIM_TFE_SLOTS; s++) {
                ASSERT_EQ(got[s], want[s]) << k->name << " [" << r.lo << ", " << r.hi << "] slot " << s;
            }
        }
    }
}
