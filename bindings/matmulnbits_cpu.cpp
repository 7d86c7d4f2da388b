// CPU implementation of matmulnbits_q8 (schema in library.cpp, fake in wrappers/_runtime_ops.py):
// onnxruntime's 8-bit MatMulNBits with int8 compute as MLAS computes it on AVX-512 VNNI
// (kernels/include/qsim/matmulnbits.h), for the onnxruntime target mode's W8A16 Linears
// (docs/runtime_target.md §2). Rows are split over torch's thread pool; each row's arithmetic is
// fixed, so the result does not depend on the thread count.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>

extern "C" {
#include "qsim/matmulnbits.h"
}

namespace qsim {
namespace {

void check_operand(const at::Tensor & t, const char * name, at::ScalarType type,
                   std::vector<int64_t> shape) {
    TORCH_CHECK(t.scalar_type() == type, "matmulnbits_q8: ", name, " must be ", type, ", got ",
                t.scalar_type());
    TORCH_CHECK(t.sizes() == at::IntArrayRef(shape), "matmulnbits_q8: ", name, " must have shape ",
                at::IntArrayRef(shape), ", got ", t.sizes());
}

// a: (R, K) float32, b: (N, K) uint8, scale: (N, blocks) float32, zp: (N, blocks) uint8,
// bias: (N,) float32 or None -> (R, N) float32.
at::Tensor matmulnbits_q8_cpu(const at::Tensor & a, const at::Tensor & b, const at::Tensor & scale,
                              const at::Tensor & zp, const std::optional<at::Tensor> & bias) {
    TORCH_CHECK(a.dim() == 2 && a.size(1) > 0, "matmulnbits_q8: a must be 2-D with columns, got ",
                a.sizes());
    TORCH_CHECK(a.scalar_type() == at::kFloat, "matmulnbits_q8: a must be float32, got ",
                a.scalar_type());
    const int64_t n = b.dim() == 2 ? b.size(0) : -1, k = a.size(1);
    const int64_t blocks = (k + QSIM_MATMULNBITS_BLOCK - 1) / QSIM_MATMULNBITS_BLOCK;
    check_operand(b, "b", at::kByte, {n, k});
    check_operand(scale, "scale", at::kFloat, {n, blocks});
    check_operand(zp, "zp", at::kByte, {n, blocks});
    if (bias) {
        check_operand(*bias, "bias", at::kFloat, {n});
    }
    const at::Tensor ac = a.contiguous(), bc = b.contiguous(), sc = scale.contiguous(),
                     zc = zp.contiguous();
    const at::Tensor biasc = bias ? bias->contiguous() : at::Tensor();
    at::Tensor out = at::empty({a.size(0), n}, a.options());
    const float * bias_ptr = bias ? biasc.data_ptr<float>() : nullptr;
    const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, n * k));
    at::parallel_for(0, a.size(0), grain, [&](int64_t begin, int64_t end) {
        const qsim_status st = qsim_matmulnbits_q8(
            ac.data_ptr<float>(), bc.data_ptr<uint8_t>(), sc.data_ptr<float>(),
            zc.data_ptr<uint8_t>(), bias_ptr, out.data_ptr<float>(), static_cast<size_t>(n),
            static_cast<size_t>(k), static_cast<size_t>(begin), static_cast<size_t>(end));
        TORCH_CHECK(st == QSIM_SUCCESS, "matmulnbits_q8: ", qsim_status_string(st));
    });
    return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("matmulnbits_q8", &matmulnbits_q8_cpu);
}

}  // namespace qsim
