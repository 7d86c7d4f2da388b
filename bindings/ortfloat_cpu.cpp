// CPU implementations of ort_layer_norm, ort_softmax, ort_gelu, ort_activation, ort_reduce_mean
// and ort_matmul (schemas in library.cpp, fakes in wrappers/_runtime_ops.py): onnxruntime's CPU
// float LayerNormalization, Softmax, Gelu, Sigmoid, SiLU, Tanh, ReduceMean and MatMul bit for bit
// (kernels/include/qsim/ortfloat.h), for the onnxruntime target mode's float ops between a
// DequantizeLinear and a QuantizeLinear (docs/runtime_target.md §2). Rows (elements for Gelu and
// activations) are split over torch's thread pool; each row's arithmetic is fixed, so the result
// does not depend on the thread count.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>

extern "C" {
#include "qsim/ortfloat.h"
}

#include "cpu_float_checks.h"

namespace qsim {
namespace {

void check_rows(const at::Tensor & x, const char * op) {
    check_float(x, op, "x");
    TORCH_CHECK(x.dim() == 2 && x.size(1) > 0, op, ": x must be 2-D with columns, got ",
                x.sizes());
}

int64_t grain(int64_t d) {
    return std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, d));
}

void check_status(qsim_status st, const char * op) {
    TORCH_CHECK(st == QSIM_SUCCESS, op, ": ", qsim_status_string(st));
}

// x: (R, D) float32, gamma: (D,), beta: (D,) or None -> (R, D) float32.
at::Tensor ort_layer_norm_cpu(const at::Tensor & x, const at::Tensor & gamma,
                              const std::optional<at::Tensor> & beta, double eps) {
    check_rows(x, "ort_layer_norm");
    check_float(gamma, "ort_layer_norm", "gamma");
    const int64_t d = x.size(1);
    TORCH_CHECK(gamma.dim() == 1 && gamma.size(0) == d, "ort_layer_norm: gamma must have shape (",
                d, ",), got ", gamma.sizes());
    if (beta) {
        check_float(*beta, "ort_layer_norm", "beta");
        TORCH_CHECK(beta->dim() == 1 && beta->size(0) == d,
                    "ort_layer_norm: beta must have shape (", d, ",), got ", beta->sizes());
    }
    const at::Tensor xc = x.contiguous(), gc = gamma.contiguous();
    const at::Tensor bc = beta ? beta->contiguous() : at::Tensor();
    at::Tensor out = at::empty_like(xc);
    const float * beta_ptr = beta ? bc.data_ptr<float>() : nullptr;
    at::parallel_for(0, x.size(0), grain(d), [&](int64_t begin, int64_t end) {
        check_status(qsim_ort_layer_norm(xc.data_ptr<float>(), gc.data_ptr<float>(), beta_ptr,
                                         static_cast<float>(eps), out.data_ptr<float>(),
                                         static_cast<size_t>(d), static_cast<size_t>(begin),
                                         static_cast<size_t>(end)),
                     "ort_layer_norm");
    });
    return out;
}

// x: (R, D) float32 -> (R, D) float32, the softmax of each row.
at::Tensor ort_softmax_cpu(const at::Tensor & x) {
    check_rows(x, "ort_softmax");
    const at::Tensor xc = x.contiguous();
    at::Tensor out = at::empty_like(xc);
    const int64_t d = x.size(1);
    at::parallel_for(0, x.size(0), grain(d), [&](int64_t begin, int64_t end) {
        check_status(qsim_ort_softmax(xc.data_ptr<float>(), out.data_ptr<float>(),
                                      static_cast<size_t>(d), static_cast<size_t>(begin),
                                      static_cast<size_t>(end)),
                     "ort_softmax");
    });
    return out;
}

// x: any shape, float32 -> the same shape, Gelu of each element.
at::Tensor ort_gelu_cpu(const at::Tensor & x) {
    check_float(x, "ort_gelu", "x");
    const at::Tensor xc = x.contiguous();
    at::Tensor out = at::empty_like(xc);
    at::parallel_for(0, xc.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
        check_status(qsim_ort_gelu(xc.data_ptr<float>(), out.data_ptr<float>(),
                                   static_cast<size_t>(begin), static_cast<size_t>(end)),
                     "ort_gelu");
    });
    return out;
}

// x: any shape, float32 -> the same shape, the activation `kind` (0 sigmoid, 1 silu, 2 tanh;
// qsim_ort_activation_kind) of each element.
at::Tensor ort_activation_cpu(const at::Tensor & x, int64_t kind) {
    check_float(x, "ort_activation", "x");
    TORCH_CHECK(kind >= QSIM_ORT_SIGMOID && kind <= QSIM_ORT_TANH,
                "ort_activation: kind must be 0 (sigmoid), 1 (silu) or 2 (tanh), got ", kind);
    const at::Tensor xc = x.contiguous();
    at::Tensor out = at::empty_like(xc);
    at::parallel_for(0, xc.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
        check_status(qsim_ort_activation(xc.data_ptr<float>(), out.data_ptr<float>(),
                                         static_cast<size_t>(begin), static_cast<size_t>(end),
                                         static_cast<int>(kind)),
                     "ort_activation");
    });
    return out;
}

// x: (R, n) float32 -> (R,) float32, the mean of each row in onnxruntime's ReduceMean order
// (its packets start where row * n is a multiple of 4: x's rows as one 16-byte aligned buffer).
at::Tensor ort_reduce_mean_cpu(const at::Tensor & x) {
    check_rows(x, "ort_reduce_mean");
    const at::Tensor xc = x.contiguous();
    at::Tensor out = at::empty({x.size(0)}, xc.options());
    const int64_t n = x.size(1);
    at::parallel_for(0, x.size(0), grain(n), [&](int64_t begin, int64_t end) {
        check_status(qsim_ort_reduce_mean(xc.data_ptr<float>(), out.data_ptr<float>(),
                                          static_cast<size_t>(n), static_cast<size_t>(begin),
                                          static_cast<size_t>(end)),
                     "ort_reduce_mean");
    });
    return out;
}

// a: (B, M, K), b: (B, K, N) float32 -> (B, M, N): MLAS's SGEMM arithmetic per batch (M, N >= 2).
at::Tensor ort_matmul_cpu(const at::Tensor & a, const at::Tensor & b) {
    check_float(a, "ort_matmul", "a");
    check_float(b, "ort_matmul", "b");
    TORCH_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0) && a.size(2) == b.size(1),
                "ort_matmul: a (B, M, K) and b (B, K, N) must be 3-D with matching B and K, got ",
                a.sizes(), " and ", b.sizes());
    const int64_t m = a.size(1), k = a.size(2), n = b.size(2);
    TORCH_CHECK(m >= 2 && n >= 2 && k >= 1, "ort_matmul: needs M >= 2, N >= 2, K >= 1, got ",
                a.sizes(), " and ", b.sizes());
    const at::Tensor ac = a.contiguous(), bc = b.contiguous();
    at::Tensor out = at::empty({a.size(0), m, n}, a.options());
    at::parallel_for(0, a.size(0) * m, grain(k * n), [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end;) {
            const int64_t batch = row / m, stop = std::min(end, (batch + 1) * m);
            check_status(qsim_ort_matmul(ac.data_ptr<float>() + batch * m * k,
                                         bc.data_ptr<float>() + batch * k * n,
                                         out.data_ptr<float>() + batch * m * n,
                                         static_cast<size_t>(m), static_cast<size_t>(k),
                                         static_cast<size_t>(n),
                                         static_cast<size_t>(row - batch * m),
                                         static_cast<size_t>(stop - batch * m)),
                         "ort_matmul");
            row = stop;
        }
    });
    return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("ort_layer_norm", &ort_layer_norm_cpu);
    m.impl("ort_softmax", &ort_softmax_cpu);
    m.impl("ort_gelu", &ort_gelu_cpu);
    m.impl("ort_activation", &ort_activation_cpu);
    m.impl("ort_reduce_mean", &ort_reduce_mean_cpu);
    m.impl("ort_matmul", &ort_matmul_cpu);
}

}  // namespace qsim
