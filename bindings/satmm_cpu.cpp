// CPU implementation of u8s8_pair_saturated_matmul (schema in library.cpp, fake in
// wrappers/_runtime_ops.py): the uint8 x int8 matrix product of MLAS's AVX2 integer kernels,
// whose int16 pair sums saturate (kernels/include/qsim/satmm.h), for the onnxruntime target mode
// (docs/runtime_target.md §2). Rows are split over torch's thread pool; each output element is one
// exact int32 sum, so the result does not depend on the thread count.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>

extern "C" {
#include "qsim/satmm.h"
}

namespace qsim {
namespace {

// a: (R, K) uint8, w: (N, K) int8 -> (R, N) int32.
at::Tensor u8s8_pair_saturated_matmul_cpu(const at::Tensor & a, const at::Tensor & w) {
    TORCH_CHECK(a.dim() == 2 && w.dim() == 2,
                "u8s8_pair_saturated_matmul: a and w must be 2-D, got ", a.dim(), "-D and ",
                w.dim(), "-D");
    TORCH_CHECK(a.scalar_type() == at::kByte, "u8s8_pair_saturated_matmul: a must be uint8, got ",
                a.scalar_type());
    TORCH_CHECK(w.scalar_type() == at::kChar, "u8s8_pair_saturated_matmul: w must be int8, got ",
                w.scalar_type());
    TORCH_CHECK(a.size(1) == w.size(1), "u8s8_pair_saturated_matmul: a has ", a.size(1),
                " columns and w ", w.size(1), "; they must be equal");
    TORCH_CHECK(static_cast<size_t>(a.size(1)) <= QSIM_SATMM_MAX_K,
                "u8s8_pair_saturated_matmul: k = ", a.size(1), " exceeds ", QSIM_SATMM_MAX_K);
    const at::Tensor ac = a.contiguous(), wc = w.contiguous();
    at::Tensor out = at::empty({a.size(0), w.size(0)}, a.options().dtype(at::kInt));
    const auto * ap = ac.data_ptr<uint8_t>();
    const auto * wp = wc.data_ptr<int8_t>();
    auto * op = out.data_ptr<int32_t>();
    const size_t n = static_cast<size_t>(w.size(0)), k = static_cast<size_t>(a.size(1));
    // Rows per task: about 2^16 32-byte steps each.
    const int64_t steps_per_row = std::max<int64_t>(1, w.size(0) * a.size(1) / 32);
    const int64_t grain = std::max<int64_t>(1, (1 << 16) / steps_per_row);
    at::parallel_for(0, a.size(0), grain, [&](int64_t b, int64_t e) {
        qsim_u8s8_satmm(ap, wp, op, n, k, static_cast<size_t>(b), static_cast<size_t>(e));
    });
    return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("u8s8_pair_saturated_matmul", &u8s8_pair_saturated_matmul_cpu);
}

}  // namespace qsim
