// CPU implementations of the qsim ops: check arguments (qdq_args.h), take pointers, and call the
// C kernels on torch's thread pool. fp16/bf16 data is computed in fp32 and returned in its dtype.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include <tuple>

#include "qdq_args.h"

namespace qsim {
namespace {

// Elements per task. Forward moves 8 bytes an element: 64K elements (512 KiB, about 40 us on one
// core) is well above the cost of waking a thread, and anything smaller stays on the caller's
// thread. Results never depend on the split: the forward is element-wise and the reductions have
// fixed groups (qsim_reduce_groups).
constexpr int64_t kGrain = 1 << 16;

void run_forward(qsim_op op, const QdqArgs & a, float * yp) {
    const auto    p  = a.qparams();
    const float * xp = a.x.data_ptr<float>();
    at::parallel_for(0, a.x.numel(), kGrain, [&](int64_t b, int64_t e) {
        qsim_forward_f32(nullptr, op, &a.layout, &p, xp, yp, b, e);
    });
}

at::Tensor forward(qsim_op op, const char * name, const char * x_name, const at::Tensor & x,
                   const at::Tensor & scale, const at::Tensor & zero_point, int64_t qmin,
                   int64_t qmax, std::optional<int64_t> axis, std::optional<int64_t> block_size) {
    const QdqArgs a = check_qdq_args(name, x_name, x, scale, zero_point, qmin, qmax, axis,
                                     block_size, op != QSIM_OP_DEQUANTIZE);
    at::Tensor    y = at::empty_like(a.x);  // the strides of a.x: written in its memory order
    run_forward(op, a, y.data_ptr<float>());
    return y.to(x.scalar_type());
}

using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

Grads backward(qsim_op op, const char * name, const char * x_name, const at::Tensor & grad,
               const at::Tensor & x, const at::Tensor & scale, const at::Tensor & zero_point,
               int64_t qmin, int64_t qmax, std::optional<int64_t> axis,
               std::optional<int64_t> block_size, bool qparam_grads) {
    const bool    grid = op != QSIM_OP_DEQUANTIZE;
    const QdqArgs a    = check_qdq_args(name, x_name, x, scale, zero_point, qmin, qmax, axis,
                                        block_size, grid);
    const at::Tensor dy = check_grad(name, grad, x, a.x);
    at::Tensor   dx    = at::empty_like(a.x);
    const auto   p     = a.qparams();
    const float * xp   = a.x.data_ptr<float>();
    const float * dyp  = dy.data_ptr<float>();
    float *       dxp  = dx.data_ptr<float>();
    at::Tensor   ds    = at::zeros_like(a.scale);
    at::Tensor   dzp   = at::zeros_like(a.zero_point);
    if (!qparam_grads) {
        at::parallel_for(0, a.x.numel(), kGrain, [&](int64_t b, int64_t e) {
            qsim_backward_f32(nullptr, op, &a.layout, &p, xp, dyp, dxp, b, e);
        });
    } else {
        // Each group's sums land in a fixed slot and combine in order: thread-count independent.
        const int64_t groups   = qsim_reduce_groups(&a.layout);
        const int64_t per_group = std::max<int64_t>(1, a.x.numel() / std::max<int64_t>(1, groups));
        at::Tensor    sums     = at::empty({ 2 * groups }, a.x.options().dtype(at::kDouble));
        double *      sp       = sums.data_ptr<double>();
        at::parallel_for(0, groups, std::max<int64_t>(1, kGrain / per_group), [&](int64_t b, int64_t e) {
            qsim_backward_reduce_f32(nullptr, op, &a.layout, &p, xp, dyp, dxp, sp, b, e);
        });
        qsim_reduce_finish(&a.layout, sp, ds.data_ptr<float>(), dzp.data_ptr<float>());
    }
    ds  = a.to_qparam_shape(ds);
    dzp = a.to_qparam_shape(dzp);
    return { dx.to(x.scalar_type()), ds.to(scale.scalar_type()),
             zero_point.is_floating_point() ? dzp.to(zero_point.scalar_type()) : dzp };
}

at::Tensor qdq_cpu(const at::Tensor & x, const at::Tensor & scale, const at::Tensor & zero_point,
                   int64_t qmin, int64_t qmax, std::optional<int64_t> axis,
                   std::optional<int64_t> block_size) {
    return forward(QSIM_OP_QDQ, "quantize_dequantize", "x", x, scale, zero_point, qmin, qmax,
                   axis, block_size);
}

void qdq_out_cpu(const at::Tensor & x, const at::Tensor & scale, const at::Tensor & zero_point,
                 int64_t qmin, int64_t qmax, std::optional<int64_t> axis,
                 std::optional<int64_t> block_size, at::Tensor & out) {
    const char *     name   = "quantize_dequantize_out";
    const QdqArgs    a      = check_qdq_args(name, "x", x, scale, zero_point, qmin, qmax, axis,
                                             block_size, true);
    const at::Tensor target = out_target(name, out, x, a, scale, zero_point);
    run_forward(QSIM_OP_QDQ, a, target.data_ptr<float>());
    if (!target.is_same(out)) {
        out.copy_(target);
    }
}

at::Tensor quantize_cpu(const at::Tensor & x, const at::Tensor & scale,
                        const at::Tensor & zero_point, int64_t qmin, int64_t qmax,
                        std::optional<int64_t> axis, std::optional<int64_t> block_size) {
    return forward(QSIM_OP_QUANTIZE, "quantize", "x", x, scale, zero_point, qmin, qmax, axis,
                   block_size);
}

at::Tensor dequantize_cpu(const at::Tensor & q, const at::Tensor & scale,
                          const at::Tensor & zero_point, std::optional<int64_t> axis,
                          std::optional<int64_t> block_size) {
    return forward(QSIM_OP_DEQUANTIZE, "dequantize", "q", q, scale, zero_point, 0, 0, axis,
                   block_size);
}

Grads qdq_backward_cpu(const at::Tensor & grad, const at::Tensor & x, const at::Tensor & scale,
                       const at::Tensor & zero_point, int64_t qmin, int64_t qmax,
                       std::optional<int64_t> axis, std::optional<int64_t> block_size,
                       bool qparam_grads) {
    return backward(QSIM_OP_QDQ, "quantize_dequantize_backward", "x", grad, x, scale, zero_point,
                    qmin, qmax, axis, block_size, qparam_grads);
}

Grads quantize_backward_cpu(const at::Tensor & grad, const at::Tensor & x,
                            const at::Tensor & scale, const at::Tensor & zero_point, int64_t qmin,
                            int64_t qmax, std::optional<int64_t> axis,
                            std::optional<int64_t> block_size, bool qparam_grads) {
    return backward(QSIM_OP_QUANTIZE, "quantize_backward", "x", grad, x, scale, zero_point, qmin,
                    qmax, axis, block_size, qparam_grads);
}

Grads dequantize_backward_cpu(const at::Tensor & grad, const at::Tensor & q,
                              const at::Tensor & scale, const at::Tensor & zero_point,
                              std::optional<int64_t> axis, std::optional<int64_t> block_size,
                              bool qparam_grads) {
    return backward(QSIM_OP_DEQUANTIZE, "dequantize_backward", "q", grad, q, scale, zero_point, 0,
                    0, axis, block_size, qparam_grads);
}

at::Tensor float_qdq_cpu(const at::Tensor & x, at::ScalarType dtype) {
    const at::Tensor xf = check_float_cast(x, dtype);
    at::Tensor       y  = at::empty_like(xf);
    const qsim_cast_fn cast = dtype == at::kHalf ? qsim_qdq_best()->cast_f16 : qsim_qdq_best()->cast_bf16;
    const float * xp = xf.data_ptr<float>();
    float *       yp = y.data_ptr<float>();
    at::parallel_for(0, xf.numel(), kGrain, [&](int64_t b, int64_t e) {
        cast(static_cast<size_t>(e - b), xp + b, yp + b);
    });
    return y.to(x.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("quantize_dequantize", &qdq_cpu);
    m.impl("quantize_dequantize_out", &qdq_out_cpu);
    m.impl("quantize", &quantize_cpu);
    m.impl("dequantize", &dequantize_cpu);
    m.impl("quantize_dequantize_backward", &qdq_backward_cpu);
    m.impl("quantize_backward", &quantize_backward_cpu);
    m.impl("dequantize_backward", &dequantize_backward_cpu);
    m.impl("float_quantize_dequantize", &float_qdq_cpu);
}

}  // namespace qsim
