// CPU implementations of ort_gemm and ort_conv2d (schemas in library.cpp, fakes in
// wrappers/_runtime_ops.py): onnxruntime's CPU float Gemm (transB = 1, bias broadcast into the
// output first; one row: MLAS's M = 1 kernel) and Conv (MLAS's im2col columns, the SGEMM, then the bias) in MLAS's fp32
// accumulation order (kernels/include/qsim/ortconv.h), for the onnxruntime target mode's float
// Conv and Linear between a DequantizeLinear and a QuantizeLinear (docs/runtime_target.md §2).
// Output rows (or images and groups) are split over torch's thread pool; each output's
// arithmetic is fixed, so the result does not depend on the thread count.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/im2col.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>

extern "C" {
#include "qsim/ortconv.h"
}

#include "cpu_float_checks.h"

namespace qsim {
namespace {

void check_bias(const std::optional<at::Tensor> & bias, int64_t n, const char * op) {
    if (bias) {
        check_float(*bias, op, "bias");
        TORCH_CHECK(bias->dim() == 1 && bias->size(0) == n, op, ": bias must have shape (", n,
                    ",), got ", bias->sizes());
    }
}

// One (m x n) product c = a (m x k) times b (k x n), every pointer contiguous.
void sgemm(const float * a, const float * b, float * c, int64_t m, int64_t n, int64_t k,
           int accumulate, const char * op) {
    const size_t stride_k = qsim_ort_sgemm_stride_k(static_cast<size_t>(n), static_cast<size_t>(k));
    const qsim_status st = qsim_ort_sgemm(a, b, c, static_cast<size_t>(m), static_cast<size_t>(n),
                                          static_cast<size_t>(k), stride_k, accumulate, 0,
                                          static_cast<size_t>(m));
    TORCH_CHECK(st == QSIM_SUCCESS, op, ": ", qsim_status_string(st));
}

// x: (M, K), w: (N, K), bias: (N,) or None -> (M, N) float32.
at::Tensor ort_gemm_cpu(const at::Tensor & x, const at::Tensor & w,
                        const std::optional<at::Tensor> & bias) {
    check_float(x, "ort_gemm", "x");
    check_float(w, "ort_gemm", "w");
    TORCH_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1) && x.size(1) > 0,
                "ort_gemm: x (M, K) and w (N, K) must be 2-D with the same K > 0, got ",
                x.sizes(), " and ", w.sizes());
    const int64_t m = x.size(0), n = w.size(0), k = x.size(1);
    check_bias(bias, n, "ort_gemm");
    const at::Tensor xc = x.contiguous();
    at::Tensor out = bias ? bias->reshape({1, n}).expand({m, n}).contiguous()
                          : at::empty({m, n}, x.options());
    if (m == 0 || n == 0) {
        return out;
    }
    if (m == 1) {  // MLAS's M = 1 kernel: w as stored (transB)
        const at::Tensor wc = w.contiguous();
        const qsim_status st = qsim_ort_sgemm_m1_transb(xc.data_ptr<float>(), wc.data_ptr<float>(),
                                                        out.data_ptr<float>(), static_cast<size_t>(n),
                                                        static_cast<size_t>(k), bias ? 1 : 0);
        TORCH_CHECK(st == QSIM_SUCCESS, "ort_gemm: ", qsim_status_string(st));
        return out;
    }
    const at::Tensor bt = w.t().contiguous();
    at::parallel_for(0, m, 1, [&](int64_t begin, int64_t end) {
        sgemm(xc.data_ptr<float>() + begin * k, bt.data_ptr<float>(),
              out.data_ptr<float>() + begin * n, end - begin, n, k, bias ? 1 : 0, "ort_gemm");
    });
    return out;
}

// x: (B, C, H, W), w: (O, C / groups, kh, kw), bias: (O,) or None -> (B, O, OH, OW) float32.
at::Tensor ort_conv2d_cpu(const at::Tensor & x, const at::Tensor & w,
                          const std::optional<at::Tensor> & bias, at::IntArrayRef stride,
                          at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
    check_float(x, "ort_conv2d", "x");
    check_float(w, "ort_conv2d", "w");
    TORCH_CHECK(x.dim() == 4 && w.dim() == 4 && groups > 0 && x.size(1) == w.size(1) * groups &&
                w.size(0) % groups == 0 && w.size(1) > 0,
                "ort_conv2d: x (B, C, H, W) and w (O, C / groups, kh, kw) do not match: ",
                x.sizes(), ", ", w.sizes(), ", groups ", groups);
    TORCH_CHECK(stride.size() == 2 && padding.size() == 2 && dilation.size() == 2,
                "ort_conv2d: stride, padding and dilation must have 2 values each");
    const int64_t o = w.size(0), og = o / groups, k = w[0].numel();
    check_bias(bias, o, "ort_conv2d");
    const at::Tensor cols = at::im2col(x.contiguous(), {w.size(2), w.size(3)}, dilation, padding,
                                       stride);  // (B, C * kh * kw, L): MLAS's K order
    const int64_t b = x.size(0), l = cols.size(2);
    const int64_t oh = (x.size(2) + 2 * padding[0] - dilation[0] * (w.size(2) - 1) - 1) / stride[0] + 1;
    at::Tensor out = at::empty({b, o, l}, x.options());
    const at::Tensor wc = w.contiguous();
    const bool pointwise = w.size(2) == 1 && w.size(3) == 1 && stride[0] == 1 && stride[1] == 1 &&
                           padding[0] == 0 && padding[1] == 0;  // MLAS's direct GEMM
    if (l > 0) {
        at::parallel_for(0, b * groups, 1, [&](int64_t begin, int64_t end) {
            for (int64_t bg = begin; bg < end; ++bg) {
                const int64_t i = bg / groups, g = bg % groups;
                const float * a = wc.data_ptr<float>() + g * og * k;
                const float * cb = cols.data_ptr<float>() + (i * groups + g) * k * l;
                float * c = out.data_ptr<float>() + (i * o + g * og) * l;
                if (og > 1 && l > 1) {
                    sgemm(a, cb, c, og, l, k, 0, "ort_conv2d");
                    continue;
                }
                if (og > 1) {  // one output position: MLAS's N = 1 case, the M = 1 kernel with
                               // the operands exchanged (weight rows as transposed B), whole K
                    TORCH_CHECK(qsim_ort_sgemm_m1_transb(cb, a, c, static_cast<size_t>(og),
                                                         static_cast<size_t>(k), 0) == QSIM_SUCCESS,
                                "ort_conv2d: bad arguments");
                    continue;
                }
                // MLAS's M = 1 kernel: K sliced as the Conv slices it, whole for a pointwise one
                const size_t sk = pointwise ? static_cast<size_t>(k)
                                            : qsim_ort_sgemm_stride_k(static_cast<size_t>(l),
                                                                      static_cast<size_t>(k));
                TORCH_CHECK(qsim_ort_sgemm_m1(a, cb, c, static_cast<size_t>(l),
                                              static_cast<size_t>(k), sk, 0) == QSIM_SUCCESS,
                            "ort_conv2d: bad arguments");
            }
        });
    }
    if (bias) {
        out.add_(bias->reshape({1, o, 1}));  // MlasActivation: one fp32 addition per output
    }
    return out.reshape({b, o, oh, l / std::max<int64_t>(oh, 1)});
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("ort_gemm", &ort_gemm_cpu);
    m.impl("ort_conv2d", &ort_conv2d_cpu);
}

}  // namespace qsim
