// qsim_ort_reduce_mean (qsim/ortfloat.h): onnxruntime's ReduceMean over each row, summed in
// Eigen's order of 4-float packets from the row's first 16-byte boundary. Oracles: hand-computed
// rows where that order and a sequential sum round differently (1e8 + 1 rounds to 1e8 in fp32:
// the spacing there is 8), one per branch of the order (no whole packet; one packet and a tail;
// a head before the boundary; pairs of packets and a last packet), each checked against the
// sequential sum's different value; bad arguments. Bit equality with onnxruntime itself on many
// shapes: tests/python/runtime_target/test_runtime_target_reduce_mean.py.
#include <gtest/gtest.h>

#include <vector>

extern "C" {
#include "qsim/ortfloat.h"
}

namespace {

constexpr float kBig = 1e8f;

// The mean of x[0..n) summed left to right in fp32 (what the kernel must NOT compute here).
float sequential_mean(const float * x, size_t n) {
    float sum = x[0];
    for (size_t j = 1; j < n; j++) sum += x[j];
    return sum / float(n);
}

// out[row] of the kernel on rows x n values.
float mean_of_row(const std::vector<float> & x, size_t n, size_t row) {
    std::vector<float> out(x.size() / n, -1.0f);
    EXPECT_EQ(qsim_ort_reduce_mean(x.data(), out.data(), n, row, row + 1), QSIM_SUCCESS);
    return out[row];
}

TEST(OrtReduceMean, OnePacketThenTheTail) {
    // The header's example: row 0, n = 5: a = {1e8, 1, -1e8, 1} -> (1e8 - 1e8) + (1 + 1) = 2,
    // + 1 = 3, mean 3 / 5; in order 1e8 + 1 = 1e8, ..., 2, mean 2 / 5.
    const std::vector<float> x = { kBig, 1.0f, -kBig, 1.0f, 1.0f };
    EXPECT_EQ(mean_of_row(x, 5, 0), 3.0f / 5.0f);
    EXPECT_EQ(sequential_mean(x.data(), 5), 2.0f / 5.0f);
}

TEST(OrtReduceMean, NoWholePacketSumsInOrder) {
    // Row 1 of n = 5 starts at float 5: 3 floats before its boundary leave 2, no whole packet.
    std::vector<float> x(5, 0.0f);
    x.insert(x.end(), { kBig, 1.0f, -kBig, 1.0f, 1.0f });
    EXPECT_EQ(mean_of_row(x, 5, 1), 2.0f / 5.0f);
}

TEST(OrtReduceMean, TheHeadBeforeTheBoundaryComesAfterThePacket) {
    // Row 1 of n = 7 starts at float 7: x[0] is the head, a = x[1..5) = {1e8, 1, -1e8, 1}
    // -> 2, + head 1 = 3, + tail 1 + 1 = 5; in order 3.
    std::vector<float> x(7, 0.0f);
    x.insert(x.end(), { 1.0f, kBig, 1.0f, -kBig, 1.0f, 1.0f, 1.0f });
    EXPECT_EQ(mean_of_row(x, 7, 1), 5.0f / 7.0f);
    EXPECT_EQ(sequential_mean(x.data() + 7, 7), 3.0f / 7.0f);
}

TEST(OrtReduceMean, PairsOfPacketsThenTheLastPacket) {
    // n = 20, row 0: a = {1e8, 1, -1e8, 1}, b = ones; a += ones, b += ones: a = {1e8, 2, -1e8,
    // 2}, b = 2s; a += b: {1e8, 4, -1e8, 4}; a += {-1e8, 1, 1e8, 1}: {0, 5, 0, 5} -> 10. In
    // order: 1e8, 1e8, 0, 1, ..., 13, then -1e8 + 13 rounds to -99999984, ..., 17.
    std::vector<float> x = { kBig, 1.0f, -kBig, 1.0f };
    x.insert(x.end(), 12, 1.0f);
    x.insert(x.end(), { -kBig, 1.0f, kBig, 1.0f });
    EXPECT_EQ(mean_of_row(x, 20, 0), 10.0f / 20.0f);
    EXPECT_EQ(sequential_mean(x.data(), 20), 17.0f / 20.0f);
}

TEST(OrtReduceMean, TheMeanIsADivision) {
    // sum / fp32(n), not sum * fp32(1 / n): 7 / 3 is 2.3333333f, 7 * fp32(1 / 3) 2.3333335f.
    const std::vector<float> x = { 7.0f, 0.0f, 0.0f };
    EXPECT_EQ(mean_of_row(x, 3, 0), 7.0f / 3.0f);
    EXPECT_NE(mean_of_row(x, 3, 0), 7.0f * (1.0f / 3.0f));
}

TEST(OrtReduceMean, BadArgumentsAreRejected) {
    float v = 0.0f, out = 0.0f;
    EXPECT_EQ(qsim_ort_reduce_mean(&v, &out, 0, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_reduce_mean(nullptr, &out, 1, 0, 1), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_ort_reduce_mean(&v, nullptr, 1, 0, 1), QSIM_INVALID_ARGUMENT);
}

}  // namespace
