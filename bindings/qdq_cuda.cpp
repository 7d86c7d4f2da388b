// CUDA implementations of the qdq ops (built only when the installed torch has CUDA, see
// setup.py): check arguments (qdq_args.h, the CPU checks), take device pointers, and enqueue the
// kernels of qsim/qdq_cuda.h on the current stream of the data's device. fp16/bf16 data is
// computed in fp32 and returned in its dtype, as on the CPU. Checking scale and zero_point values
// copies them to the host, so each call synchronises once.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "qdq_args.h"
#include "qsim/qdq_cuda.h"

namespace qsim {
namespace {

void check_launch(int rc) {
    C10_CUDA_CHECK(static_cast<cudaError_t>(rc));
}

void * current_stream(const at::Tensor & t) {
    return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

// Enqueues the forward of `op` from a.x into y (strides of a.x) on a.x's current stream.
void run_forward(qsim_op op, const QdqArgs & a, float * y) {
    const c10::cuda::CUDAGuard guard(a.x.device());
    const qsim_qparams         p = a.qparams();
    check_launch(qsim_cuda_forward_f32(op, &a.layout, &p, a.x.data_ptr<float>(), y, a.x.numel(),
                                       current_stream(a.x)));
}

at::Tensor forward(qsim_op op, const char * name, const char * x_name, const at::Tensor & x,
                   const at::Tensor & scale, const at::Tensor & zero_point, int64_t qmin,
                   int64_t qmax, std::optional<int64_t> axis, std::optional<int64_t> block_size) {
    const QdqArgs a = check_qdq_args(name, x_name, x, scale, zero_point, qmin, qmax, axis,
                                     block_size, op != QSIM_OP_DEQUANTIZE, c10::DeviceType::CUDA);
    at::Tensor    y = at::empty_like(a.x);  // the strides of a.x: written in its memory order
    run_forward(op, a, y.data_ptr<float>());
    return y.to(x.scalar_type());
}

using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

Grads backward(qsim_op op, const char * name, const char * x_name, const at::Tensor & grad,
               const at::Tensor & x, const at::Tensor & scale, const at::Tensor & zero_point,
               int64_t qmin, int64_t qmax, std::optional<int64_t> axis,
               std::optional<int64_t> block_size, bool qparam_grads) {
    const QdqArgs a = check_qdq_args(name, x_name, x, scale, zero_point, qmin, qmax, axis,
                                     block_size, op != QSIM_OP_DEQUANTIZE, c10::DeviceType::CUDA);
    const at::Tensor           dy = check_grad(name, grad, x, a.x);
    const c10::cuda::CUDAGuard guard(a.x.device());
    at::Tensor                 dx  = at::empty_like(a.x);
    at::Tensor                 ds  = at::zeros_like(a.scale);
    at::Tensor                 dzp = at::zeros_like(a.zero_point);
    const qsim_qparams         p   = a.qparams();
    void * const               s   = current_stream(a.x);
    if (!qparam_grads) {
        check_launch(qsim_cuda_backward_f32(op, &a.layout, &p, a.x.data_ptr<float>(),
                                            dy.data_ptr<float>(), dx.data_ptr<float>(),
                                            a.x.numel(), s));
    } else {
        at::Tensor work = at::empty({ qsim_cuda_reduce_workspace(&a.layout) },
                                    a.x.options().dtype(at::kDouble));
        check_launch(qsim_cuda_backward_reduce_f32(
            op, &a.layout, &p, a.x.data_ptr<float>(), dy.data_ptr<float>(), dx.data_ptr<float>(),
            work.data_ptr<double>(), ds.data_ptr<float>(), dzp.data_ptr<float>(), a.x.numel(), s));
    }
    ds  = a.to_qparam_shape(ds);
    dzp = a.to_qparam_shape(dzp);
    return { dx.to(x.scalar_type()), ds.to(scale.scalar_type()),
             zero_point.is_floating_point() ? dzp.to(zero_point.scalar_type()) : dzp };
}

at::Tensor qdq_cuda(const at::Tensor & x, const at::Tensor & scale, const at::Tensor & zero_point,
                    int64_t qmin, int64_t qmax, std::optional<int64_t> axis,
                    std::optional<int64_t> block_size) {
    return forward(QSIM_OP_QDQ, "quantize_dequantize", "x", x, scale, zero_point, qmin, qmax,
                   axis, block_size);
}

void qdq_out_cuda(const at::Tensor & x, const at::Tensor & scale, const at::Tensor & zero_point,
                  int64_t qmin, int64_t qmax, std::optional<int64_t> axis,
                  std::optional<int64_t> block_size, at::Tensor & out) {
    const char *     name   = "quantize_dequantize_out";
    const QdqArgs    a      = check_qdq_args(name, "x", x, scale, zero_point, qmin, qmax, axis,
                                             block_size, true, c10::DeviceType::CUDA);
    const at::Tensor target = out_target(name, out, x, a, scale, zero_point);
    run_forward(QSIM_OP_QDQ, a, target.data_ptr<float>());
    if (!target.is_same(out)) {
        out.copy_(target);
    }
}

at::Tensor quantize_cuda(const at::Tensor & x, const at::Tensor & scale,
                         const at::Tensor & zero_point, int64_t qmin, int64_t qmax,
                         std::optional<int64_t> axis, std::optional<int64_t> block_size) {
    return forward(QSIM_OP_QUANTIZE, "quantize", "x", x, scale, zero_point, qmin, qmax, axis,
                   block_size);
}

at::Tensor dequantize_cuda(const at::Tensor & q, const at::Tensor & scale,
                           const at::Tensor & zero_point, std::optional<int64_t> axis,
                           std::optional<int64_t> block_size) {
    return forward(QSIM_OP_DEQUANTIZE, "dequantize", "q", q, scale, zero_point, 0, 0, axis,
                   block_size);
}

Grads qdq_backward_cuda(const at::Tensor & grad, const at::Tensor & x, const at::Tensor & scale,
                        const at::Tensor & zero_point, int64_t qmin, int64_t qmax,
                        std::optional<int64_t> axis, std::optional<int64_t> block_size,
                        bool qparam_grads) {
    return backward(QSIM_OP_QDQ, "quantize_dequantize_backward", "x", grad, x, scale, zero_point,
                    qmin, qmax, axis, block_size, qparam_grads);
}

Grads quantize_backward_cuda(const at::Tensor & grad, const at::Tensor & x,
                             const at::Tensor & scale, const at::Tensor & zero_point, int64_t qmin,
                             int64_t qmax, std::optional<int64_t> axis,
                             std::optional<int64_t> block_size, bool qparam_grads) {
    return backward(QSIM_OP_QUANTIZE, "quantize_backward", "x", grad, x, scale, zero_point, qmin,
                    qmax, axis, block_size, qparam_grads);
}

Grads dequantize_backward_cuda(const at::Tensor & grad, const at::Tensor & q,
                               const at::Tensor & scale, const at::Tensor & zero_point,
                               std::optional<int64_t> axis, std::optional<int64_t> block_size,
                               bool qparam_grads) {
    return backward(QSIM_OP_DEQUANTIZE, "dequantize_backward", "q", grad, q, scale, zero_point, 0,
                    0, axis, block_size, qparam_grads);
}

at::Tensor float_qdq_cuda(const at::Tensor & x, at::ScalarType dtype) {
    const at::Tensor           xf = check_float_cast(x, dtype);
    const c10::cuda::CUDAGuard guard(xf.device());
    at::Tensor                 y  = at::empty_like(xf);
    const auto cast = dtype == at::kHalf ? qsim_cuda_cast_f16_f32 : qsim_cuda_cast_bf16_f32;
    check_launch(cast(xf.data_ptr<float>(), y.data_ptr<float>(), xf.numel(), current_stream(xf)));
    return y.to(x.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CUDA, m) {
    m.impl("quantize_dequantize", &qdq_cuda);
    m.impl("quantize_dequantize_out", &qdq_out_cuda);
    m.impl("quantize", &quantize_cuda);
    m.impl("dequantize", &dequantize_cuda);
    m.impl("quantize_dequantize_backward", &qdq_backward_cuda);
    m.impl("quantize_backward", &quantize_backward_cuda);
    m.impl("dequantize_backward", &dequantize_backward_cuda);
    m.impl("float_quantize_dequantize", &float_qdq_cuda);
}

}  // namespace qsim
