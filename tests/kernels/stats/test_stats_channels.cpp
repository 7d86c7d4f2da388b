// GoogleTest for qsim/stats.h: the per-channel min/max and histogram drivers against naive loops.
#include "stats_test_util.h"

TEST(ChannelDrivers, MinMaxPerChannelMatchesNaiveLoops) {
    // Shapes [outer, C, inner]: an inner axis (contiguous runs) and a last axis (inner = 1, the
    // strided gather path, with more rows than one gather block).
    for (const qsim_channel_view v : { qsim_channel_view{ 3, 5, 7 }, qsim_channel_view{ 600, 3, 1 },
                                       qsim_channel_view{ 1, 4, 9 } }) {
        std::mt19937 gen(7);
        std::uniform_real_distribution<float> ud(-10.0f, 10.0f);
        std::vector<float> x(v.outer * v.channels * v.inner);
        for (auto & e : x) {
            e = ud(gen);
        }
        x[5] = kNaN;
        std::vector<float>   lo(v.channels, kInf), hi(v.channels, -kInf);
        std::vector<int64_t> bad(v.channels, 0);
        qsim_minmax_channels_f32(nullptr, &v, x.data(), lo.data(), hi.data(), bad.data(), 0, v.channels);
        for (int64_t c = 0; c < v.channels; c++) {
            float elo = kInf, ehi = -kInf;
            int64_t ebad = 0;
            for (int64_t o = 0; o < v.outer; o++) {
                for (int64_t i = 0; i < v.inner; i++) {
                    const float e = x[(o * v.channels + c) * v.inner + i];
                    if (std::isnan(e)) {
                        ebad++;
                        continue;
                    }
                    elo = std::min(elo, e);
                    ehi = std::max(ehi, e);
                }
            }
            EXPECT_EQ(lo[c], elo) << "channel " << c << " of outer " << v.outer;
            EXPECT_EQ(hi[c], ehi) << "channel " << c << " of outer " << v.outer;
            EXPECT_EQ(bad[c], ebad) << "channel " << c << " of outer " << v.outer;
        }
    }
}

TEST(ChannelDrivers, HistogramPerChannelMatchesNaiveLoopsAndSkipsUnsetRanges) {
    const qsim_channel_view v{ 300, 3, 1 };
    std::mt19937 gen(11);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    std::vector<float> x(v.outer * v.channels);
    for (auto & e : x) {
        e = nd(gen);
    }
    const int64_t bins = 16;
    const std::vector<qsim_hist_range> ranges = { { -4.0, 4.0 }, { 0.0, 0.0 }, { -1.0, 9.0 } };
    std::vector<int64_t> counts(v.channels * bins, 0), bad(v.channels, 0);
    std::vector<float>   lo(v.channels, kInf), hi(v.channels, -kInf);
    qsim_histogram_channels_f32(nullptr, &v, x.data(), ranges.data(), bins, counts.data(), lo.data(),
                                hi.data(), bad.data(), 0, v.channels);
    for (int64_t c = 0; c < v.channels; c++) {
        std::vector<float> xc;
        for (int64_t o = 0; o < v.outer; o++) {
            xc.push_back(x[o * v.channels + c]);
        }
        EXPECT_EQ(lo[c], *std::min_element(xc.begin(), xc.end())) << "channel " << c;
        EXPECT_EQ(hi[c], *std::max_element(xc.begin(), xc.end())) << "channel " << c;
        const std::vector<int64_t> expect = ranges[c].hi > ranges[c].lo
                                                ? direct_histogram(xc, ranges[c], bins)
                                                : std::vector<int64_t>(bins, 0);
        const std::vector<int64_t> got(counts.begin() + c * bins, counts.begin() + (c + 1) * bins);
        EXPECT_EQ(got, expect) << "channel " << c;
    }
}

TEST(ChannelDrivers, ChannelRangeSplitsGiveTheSameResult) {
    const qsim_channel_view v{ 4, 6, 5 };
    std::vector<float> x(v.outer * v.channels * v.inner);
    std::iota(x.begin(), x.end(), -50.0f);
    std::vector<float>   lo1(6, kInf), hi1(6, -kInf), lo2(6, kInf), hi2(6, -kInf);
    std::vector<int64_t> b1(6, 0), b2(6, 0);
    qsim_minmax_channels_f32(nullptr, &v, x.data(), lo1.data(), hi1.data(), b1.data(), 0, 6);
    qsim_minmax_channels_f32(nullptr, &v, x.data(), lo2.data(), hi2.data(), b2.data(), 0, 2);
    qsim_minmax_channels_f32(nullptr, &v, x.data(), lo2.data(), hi2.data(), b2.data(), 2, 6);
    EXPECT_EQ(lo1, lo2);
    EXPECT_EQ(hi1, hi2);
    // Channel c holds x = -50 + (o * 6 + c) * 5 + i: its min is at o = 0, i = 0 and its max at
    // o = 3, i = 4, so channel 0 spans [-50, -50 + 90 + 4] = [-50, 44].
    EXPECT_EQ(lo1[0], -50.0f);
    EXPECT_EQ(hi1[0], 44.0f);
}
