// GoogleTest for qsim/aimet_tfe.h: aimet-torch 2.42's tf_enhanced histogram and search.
//
// Oracles: hand-computed histograms, and a plain scalar transcription of the header's search
// (every candidate, every bin, the lane sums, no pruning or skipping): each compiled ISA variant
// must return its bits. Bit-exactness against torch itself is checked from Python
// (tests/python/quantization/test_tf_enhanced_kernels.py).
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "qsim_test_util.h"

extern "C" {
#include "analyzers/aimet_tfe_variants.h"
}

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int   kBins = QSIM_TFE_BINS;

// The header's term of the bin at centre c with count h for candidate (d, o).
float spec_term(float c, float h, float steps, float d, float o) {
    const float q = std::nearbyint(c / d - o);
    const float g = (q < 0.0f || q > steps) ? 3.0f : 1.0f;
    const float e = (std::min(std::max(q, 0.0f), steps) + o) * d - c;
    return ((e * e) * h) * g;
}

// The header's cost of (d, o), every bin summed in torch's lane order.
float spec_cost(const std::vector<float> & h, float e0, float e1, float steps, float d, float o,
                int lanes) {
    const float        w = e1 - e0, start = e0 + w / 2.0f;
    std::vector<float> acc(4 * lanes, 0.0f);
    for (int i = 0; i < kBins; i++) {
        acc[i % (4 * lanes)] += spec_term(start + w * static_cast<float>(i), h[i], steps, d, o);
    }
    float total = 0.0f;
    for (int l = 0; l < lanes; l++) {
        total += ((acc[l] + acc[lanes + l]) + acc[2 * lanes + l]) + acc[3 * lanes + l];
    }
    return total;
}

struct Range {
    float lo, hi;
};

// The header's search: AIMET's candidates in order, the first cheapest.
Range spec_search(const qsim_tfe_params & p, const std::vector<float> & h, float e0, float e1,
                  float mn, float mx) {
    const double ms_d = std::min(static_cast<double>(FLT_EPSILON), 0.01 / p.steps);
    const float  steps = static_cast<float>(p.steps), ms = static_cast<float>(ms_d);
    float        lo = std::min(mn, 0.0f), hi = std::max(mx, 0.0f);
    hi = std::max(hi, lo + static_cast<float>(ms_d * p.steps));
    std::vector<float> ds, os;
    if (p.symmetric) {
        const float top = 2.0f * std::max(hi, -lo) / steps;
        for (int k = 1; k <= 101; k++) {
            ds.push_back(std::max(top * static_cast<float>(k) / 100.0f, ms));
            os.push_back(static_cast<float>(-((p.steps + 1) / 2)));
        }
    } else {
        const float top = (hi - lo) / steps, seen = std::nearbyint(lo / top);
        const float slo = top * seen, shi = slo + top * steps;
        for (int k = 1; k <= 17; k++) {
            const float dk = top * static_cast<float>(k) / 16.0f;
            for (int j = 0; j <= p.n_offsets; j++) {
                const float oj = j < p.n_offsets ? p.offsets[j] : seen;
                const float a = std::max(slo, dk * oj), b = std::min(shi, dk * oj + dk * steps);
                ds.push_back(std::max((b - a) / steps, ms));
                os.push_back(std::nearbyint(a / ds.back()));
            }
        }
    }
    size_t best = 0;
    float  best_cost = spec_cost(h, e0, e1, steps, ds[0], os[0], p.lanes);
    for (size_t j = 1; j < ds.size(); j++) {
        const float c = spec_cost(h, e0, e1, steps, ds[j], os[j], p.lanes);
        if (c < best_cost) {
            best = j, best_cost = c;
        }
    }
    const float low = os[best] * ds[best];
    return { low, low + steps * ds[best] };
}

std::vector<float> aimet_offsets(int steps) {
    const int          n_off = std::min(steps + 2, 21);
    const double       step  = static_cast<double>(steps) / (n_off - 2);
    std::vector<float> out;
    for (int j = 0; -steps + j * step < step; j++) {
        out.push_back(std::nearbyint(static_cast<float>(-steps + j * step)));
    }
    return out;
}

std::vector<const qsim_tfe_kernels *> runnable_variants() {
    return qsim_test::runnable(qsim_tfe_variants);
}

// Histograms x over [mn, mx] and checks every runnable variant's search against the plain one,
// for each of `steps`, symmetric and not, 8 and 16 lanes.
void expect_searches_match(const std::vector<float> & x, float mn, float mx,
                           std::initializer_list<int> steps_list, int trial) {
    const float        w = (mx - mn) / kBins, edges[2] = { mn, mn + w };
    std::vector<float> h(kBins);
    ASSERT_EQ(qsim_tfe_histogram(x.size(), x.data(), mn, mx, h.data()), QSIM_SUCCESS);
    for (int steps : steps_list) {
        const std::vector<float> offs = aimet_offsets(steps);
        for (int sym : { 0, 1 }) {
            for (int lanes : { 8, 16 }) {
                const qsim_tfe_params p = { steps, sym, lanes, static_cast<int32_t>(offs.size()), offs.data() };
                const Range           want = spec_search(p, h, edges[0], edges[1], mn, mx);
                for (const qsim_tfe_kernels * k : runnable_variants()) {
                    float lo, hi;
                    ASSERT_EQ(qsim_tfe_search_k(k, &p, h.data(), edges, mn, mx, &lo, &hi), QSIM_SUCCESS);
                    EXPECT_EQ(lo, want.lo) << k->name << " trial " << trial << " steps " << steps << " sym " << sym;
                    EXPECT_EQ(hi, want.hi) << k->name << " trial " << trial << " steps " << steps << " sym " << sym;
                }
            }
        }
    }
}

}  // namespace

TEST(AimetTfeHistogram, HandComputed) {
    // [0, 1] in 512 bins: 0 -> bin 0, 0.5 -> 256, 1 (= hi) -> 511; -1 below, 2 and +inf above
    // (end bins), NaN nowhere; 0.25 + 1/1024 -> bin 128 (0.2509765625 * 512 = 128.5).
    const std::vector<float> x = { 0.0f, 0.5f, 1.0f, -1.0f, 2.0f, kInf, kNaN, 0.2509765625f };
    for (const qsim_tfe_kernels * k : runnable_variants()) {
        std::vector<float> c(kBins, -1.0f);
        ASSERT_EQ(qsim_tfe_histogram_k(k, x.size(), x.data(), 0.0f, 1.0f, c.data()), QSIM_SUCCESS);
        std::vector<float> want(kBins, 0.0f);
        want[0] = 2, want[256] = 1, want[511] = 3, want[128] = 1;
        EXPECT_EQ(c, want) << k->name;
    }
}

TEST(AimetTfeHistogram, RejectsRangesTorchHistcWidensOrRejects) {
    float c[kBins], x = 1.0f;
    for (const Range r : { Range{ 1.0f, 1.0f }, Range{ 2.0f, 1.0f }, Range{ -kInf, 1.0f },
                           Range{ 0.0f, kNaN } }) {
        EXPECT_EQ(qsim_tfe_histogram(1, &x, r.lo, r.hi, c), QSIM_INVALID_ARGUMENT) << r.lo << " " << r.hi;
    }
    EXPECT_EQ(qsim_tfe_histogram(1, nullptr, 0.0f, 1.0f, c), QSIM_INVALID_ARGUMENT);
}

TEST(AimetTfeHistogram, VariantsMatchRefHistogramsAndSlots) {
    std::mt19937                          rng(qsim_test::kSeed);
    std::uniform_real_distribution<float> u(-1.2f, 1.2f);
    // specials, then bin edges -1 + k / 256 (exact: the bin index is exactly k) and their neighbours
    std::vector<float> specials = { kInf, -kInf, kNaN, -1.0f, 1.0f, 0.0f, -0.0f, 1e-40f };
    for (int k = 1; k < 512; k += 37) {
        const float edge = -1.0f + static_cast<float>(k) / 256.0f;
        specials.insert(specials.end(), { edge, std::nextafter(edge, -2.0f), std::nextafter(edge, 2.0f) });
    }
    std::vector<float> x(6000);
    for (size_t i = 0; i < x.size(); i++) {
        x[i] = i % 5 == 0 ? specials[(i / 5) % specials.size()] : u(rng);
    }
    // every tail of 8 and 16 lanes, around the 128-value blocks, then long
    std::vector<size_t> lengths = { 127, 128, 129, 255, 256, 257, 4095, 4096, 6000 };
    for (size_t len = 0; len <= 80; len++) {
        lengths.push_back(len);
    }
    size_t                   n   = 0;
    const qsim_tfe_kernels * ref = qsim_tfe_variants(&n);
    for (const qsim_tfe_kernels * k : runnable_variants()) {
        for (size_t len : lengths) {
            std::vector<float> a(kBins), b(kBins);
            ASSERT_EQ(qsim_tfe_histogram_k(ref, len, x.data(), -1.0f, 1.0f, a.data()), QSIM_SUCCESS);
            ASSERT_EQ(qsim_tfe_histogram_k(k, len, x.data(), -1.0f, 1.0f, b.data()), QSIM_SUCCESS);
            EXPECT_EQ(a, b) << k->name << " n=" << len;
            // the slots themselves: below, above and NaN apart from the bins
            std::vector<int64_t> sa(QSIM_TFE_SLOTS, 0), sb(QSIM_TFE_SLOTS, 0);
            ASSERT_EQ(qsim_tfe_count_k(ref, len, x.data(), -1.0f, 1.0f, sa.data()), QSIM_SUCCESS);
            ASSERT_EQ(qsim_tfe_count_k(k, len, x.data(), -1.0f, 1.0f, sb.data()), QSIM_SUCCESS);
            EXPECT_EQ(sa, sb) << k->name << " slots, n=" << len;
        }
    }
}

// Every variant's head bounds are the larger spec term of the two bins, bit for bit, through the
// vector steps' tails: candidates that clip either bin (gamma), round half-way, divide by zero or
// by a tiny scale, and a NaN scale (NaN terms: both NaN).
TEST(AimetTfeHeads, VariantsMatchTheSpecTerms) {
    std::mt19937                          rng(qsim_test::kSeed);
    std::uniform_real_distribution<float> u(0.001f, 0.05f), off(-300.0f, 40.0f);
    std::vector<float>                    d(400), o(400);
    for (size_t j = 0; j < d.size(); j++) {
        d[j] = j % 41 == 3 ? 0.0f : j % 53 == 7 ? 1e-38f : j % 67 == 9 ? kNaN : u(rng);
        o[j] = j % 3 == 0 ? -128.0f : std::nearbyint(off(rng));
    }
    d[10] = 0.25f, o[10] = 0.0f;  /* c0 / d - o = 1.5: half-way, to even */
    for (const qsim_tfe_kernels * k : runnable_variants()) {
        for (int n : { 0, 1, 7, 8, 9, 15, 16, 17, 101, 374, 400 }) {
            std::vector<float> head(n + 1, -7.0f);
            k->heads(n, 0.375f, 3.0f, -1.2f, 40.0f, 255.0f, d.data(), o.data(), head.data());
            for (int j = 0; j < n; j++) {
                const float a = spec_term(0.375f, 3.0f, 255.0f, d[j], o[j]);
                const float b = spec_term(-1.2f, 40.0f, 255.0f, d[j], o[j]);
                const float want = a > b ? a : b;
                ASSERT_TRUE(std::memcmp(&head[j], &want, sizeof want) == 0 ||
                            (std::isnan(head[j]) && std::isnan(want)))
                    << k->name << " n=" << n << " j=" << j << " d=" << d[j] << " o=" << o[j]
                    << ": " << head[j] << " != " << want;
            }
            EXPECT_EQ(head[n], -7.0f) << k->name << " wrote past n=" << n;
        }
    }
}

// A constant first batch {2, 2, 2}: the point range widens to [1.5, 2.5] (bins of 1/512), 2 lands
// in bin 256; the range kept is the data's [2, 2]; limits reach 1.5 widths beyond: [0, 4].
TEST(AimetTfeFirst, HandComputedPointRange) {
    std::vector<float> counts(kBins, -1.0f), edges(kBins + 1);
    float              range[2], limits[2];
    const float        x[3] = { 2.0f, 2.0f, 2.0f };
    const qsim_tfe_hist h    = { counts.data(), edges.data(), range, limits };
    ASSERT_EQ(qsim_tfe_first(&h, limits, 3, x, 2.0f, 2.0f), QSIM_SUCCESS);
    std::vector<float> want(kBins, 0.0f);
    want[256] = 3;
    EXPECT_EQ(counts, want);
    EXPECT_EQ(edges[0], 1.5f);
    EXPECT_EQ(edges[512], 2.5f);
    EXPECT_EQ(edges[1], 1.5f + 1.0f / kBins);
    EXPECT_EQ(range[0], 2.0f);
    EXPECT_EQ(range[1], 2.0f);
    EXPECT_EQ(limits[0], 0.0f);
    EXPECT_EQ(limits[1], 4.0f);
    // no finite value (min +inf, max -inf): refused, nothing written
    EXPECT_EQ(qsim_tfe_first(&h, limits, 3, x, kInf, -kInf), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(counts, want);
    EXPECT_EQ(range[1], 2.0f);
}

// Old histogram over [0, 1]: counts 4, 3, 2 in bins 0, 1, 511; the batch {1.5} grows the range
// to [0, 1.5] (new bins of 1.5 old ones). Bin 0 (start 0) fits new bin 0 whole; bin 1 starts at
// 2/3 of new bin 0: rint(0.5 * 3) = 2 stays there, 1 goes to new bin 1; bin 511 starts at 340.67
// new bins: rint(0.5 * 2) = 1 in 340, 1 in 341; the batch's 1.5 = hi lands in bin 511.
TEST(AimetTfeMerge, HandComputedGrowth) {
    std::vector<float> counts(kBins, 0.0f), edges(kBins + 1);
    counts[0] = 4, counts[1] = 3, counts[511] = 2;
    for (int i = 0; i <= kBins; i++) {
        edges[i] = static_cast<float>(i) / kBins;
    }
    float               range[2] = { 0.0f, 1.0f };
    const float         limits[2] = { -1.5f, 2.5f }, x = 1.5f;
    const qsim_tfe_hist h        = { counts.data(), edges.data(), range, limits };
    ASSERT_EQ(qsim_tfe_merge(&h, 1, &x, 1.5f, 1.5f), QSIM_SUCCESS);
    std::vector<float> want(kBins, 0.0f);
    want[0] = 6, want[1] = 1, want[340] = 1, want[341] = 1, want[511] = 1;
    EXPECT_EQ(counts, want);
    EXPECT_EQ(range[0], 0.0f);
    EXPECT_EQ(range[1], 1.5f);
    EXPECT_EQ(edges[512], 1.5f);
    EXPECT_EQ(edges[3], 3.0f * 1.5f / kBins);
    // a batch inside the range moves nothing: its value is just counted
    const float y = 0.0f;
    ASSERT_EQ(qsim_tfe_merge(&h, 1, &y, 0.0f, 0.0f), QSIM_SUCCESS);
    want[0] = 7;
    EXPECT_EQ(counts, want);
    // a range that cannot be binned (infinite) is refused, the histogram untouched
    const float open[2] = { -1.5f, kInf }, big = kInf;
    const qsim_tfe_hist g = { counts.data(), edges.data(), range, open };
    EXPECT_EQ(qsim_tfe_merge(&g, 1, &big, kInf, kInf), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(counts, want);
    EXPECT_EQ(range[1], 1.5f);
}

TEST(AimetTfeSearch, RejectsBadParams) {
    std::vector<float> h(kBins, 1.0f);
    const float        edges[2] = { 0.0f, 1.0f / kBins }, offs[1] = { 0.0f };
    float              lo, hi;
    for (const qsim_tfe_params p : { qsim_tfe_params{ 0, 1, 16, 0, nullptr },
                                     qsim_tfe_params{ 255, 1, 4, 0, nullptr },
                                     qsim_tfe_params{ 255, 0, 16, 0, offs },
                                     qsim_tfe_params{ 255, 0, 16, 22, offs },
                                     qsim_tfe_params{ 255, 0, 8, 1, nullptr } }) {
        EXPECT_EQ(qsim_tfe_search(&p, h.data(), edges, 0.0f, 1.0f, &lo, &hi), QSIM_INVALID_ARGUMENT);
    }
}

// All counts in the bin whose centre is 0: every symmetric candidate costs exactly 0, and the
// first (the smallest scale, top / 100) wins the tie.
TEST(AimetTfeSearch, TiesGoToTheFirstCandidate) {
    std::vector<float> h(kBins, 0.0f);
    h[256]                 = 5.0f;
    const float   w        = 2.0f / kBins;
    const float   edges[2] = { -1.0f - w / 2.0f, -1.0f + w / 2.0f };
    const float   top      = 2.0f * 1.0f / 255.0f;
    const float   d        = top * 1.0f / 100.0f;
    for (const qsim_tfe_kernels * k : runnable_variants()) {
        for (int lanes : { 8, 16 }) {
            const qsim_tfe_params p = { 255, 1, lanes, 0, nullptr };
            float                 lo, hi;
            ASSERT_EQ(qsim_tfe_search_k(k, &p, h.data(), edges, -1.0f, 1.0f, &lo, &hi), QSIM_SUCCESS);
            EXPECT_EQ(lo, -128.0f * d) << k->name;
            EXPECT_EQ(hi, lo + 255.0f * d) << k->name;
        }
    }
}

// Random histograms (normal, uniform, skewed, sparse, one-sided ranges) on 8-, 4- and 2-bit
// grids: every variant returns the plain search's bits.
TEST(AimetTfeSearch, VariantsMatchThePlainSearch) {
    std::mt19937                          rng(qsim_test::kSeed + 1);
    std::normal_distribution<float>       normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uni(0.0f, 1.0f);
    for (int trial = 0; trial < 60; trial++) {
        const int          vals = trial % 3 == 0 ? 40 : 600;
        std::vector<float> x(vals);
        for (auto & v : x) {
            v = trial % 4 == 0 ? uni(rng) : (trial % 4 == 1 ? normal(rng) : std::exp(normal(rng)));
            v = trial % 5 == 0 ? -v : v;
        }
        const float mn = *std::min_element(x.begin(), x.end()), mx = *std::max_element(x.begin(), x.end());
        ASSERT_NO_FATAL_FAILURE(expect_searches_match(x, mn, mx, { 255, 15, 3 }, trial));
    }
}

// Histograms the search's head bound (the outermost counted bins' terms) prunes most candidates
// of: weight-like rows (256 normal values, one far outlier), and counts inside a grown range
// (later batches widened it to up to 3x the counted span), on 8- and 4-bit grids; every variant
// still returns the plain search's bits.
TEST(AimetTfeSearch, HeadBoundKeepsThePlainSearchsChoice) {
    std::mt19937                    rng(qsim_test::kSeed + 2);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int trial = 0; trial < 24; trial++) {
        std::vector<float> x(256);
        for (auto & v : x) {
            v = normal(rng);
        }
        x[trial % 256] = trial % 2 ? 9.0f : -7.0f;  // one outlier
        const float grow = 1.0f + static_cast<float>(trial % 3);  // the histogram's range / the data's
        const float mn = grow * *std::min_element(x.begin(), x.end()), mx = grow * *std::max_element(x.begin(), x.end());
        ASSERT_NO_FATAL_FAILURE(expect_searches_match(x, mn, mx, { 255, 15 }, trial));
    }
}

