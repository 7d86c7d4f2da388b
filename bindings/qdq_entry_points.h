// The qdq ops' entry points, written once for every device: each checks its arguments
// (qdq_args.h), makes the outputs and hands the kernel work to a device runner, then registers
// with register_qdq_ops<Runner>(m) inside the device's TORCH_LIBRARY_IMPL block. A runner is a
// type with
//   static constexpr c10::DeviceType kDevice;   // the device x, scale and zero_point must be on
//   static constexpr bool kHalfData;            // reads and writes fp16/bf16 data directly
//   static constexpr bool kHalfReduce;          // ... for range-learning gradients too
//   static void forward(qsim_op op, const QdqArgs & a, at::Tensor & y);
//   static void backward(qsim_op op, const QdqArgs & a, const at::Tensor & dy, at::Tensor & dx,
//                        at::Tensor & ds, at::Tensor & dzp, bool qparam_grads);
//   static void float_cast(at::ScalarType dtype, const at::Tensor & x, at::Tensor & y);
// forward writes the op on a.x into y (dtype and strides of a.x); backward writes dx (like a.x)
// and, with qparam_grads, the scale and zero-point gradients into ds and dzp (zeroed, laid out
// like a.scale and a.zero_point); float_cast rounds dense fp32 x to `dtype` and back into y (like
// x). Without kHalfData (or kHalfReduce, for range-learning gradients), fp16/bf16 data is
// computed as fp32 copies; with it, a.x, dy and dx keep the data's dtype.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include <tuple>

#include "qdq_args.h"

namespace qsim {

template <class Runner> struct QdqEntryPoints {
    using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

    static at::Tensor forward(qsim_op op, const char * name, const char * x_name,
                              const at::Tensor & x, const at::Tensor & scale,
                              const at::Tensor & zero_point, int64_t qmin, int64_t qmax,
                              std::optional<int64_t> axis, std::optional<int64_t> block_size) {
        const QdqArgs a = check_qdq_args(name, x_name, x, scale, zero_point, qmin, qmax, axis,
                                         block_size, op != QSIM_OP_DEQUANTIZE, Runner::kDevice,
                                         Runner::kHalfData);
        at::Tensor    y = at::empty_like(a.x);  // the strides of a.x: written in its memory order
        Runner::forward(op, a, y);
        return y.to(x.scalar_type());
    }

    static Grads backward(qsim_op op, const char * name, const char * x_name,
                          const at::Tensor & grad, const at::Tensor & x, const at::Tensor & scale,
                          const at::Tensor & zero_point, int64_t qmin, int64_t qmax,
                          std::optional<int64_t> axis, std::optional<int64_t> block_size,
                          bool qparam_grads) {
        const bool       grid = op != QSIM_OP_DEQUANTIZE;
        const QdqArgs    a    = check_qdq_args(name, x_name, x, scale, zero_point, qmin, qmax,
                                               axis, block_size, grid, Runner::kDevice,
                                               Runner::kHalfData && (Runner::kHalfReduce || !qparam_grads));
        const at::Tensor dy   = check_grad(name, grad, x, a.x);
        at::Tensor       dx   = at::empty_like(a.x);
        auto [ds, dzp]        = run_backward(op, a, dy, dx, scale, zero_point, qparam_grads);
        return { dx.to(x.scalar_type()), ds, dzp };
    }

    // Runner::backward into dx; returns (ds, dzp) in the shapes and dtypes of scale and
    // zero_point (a float32 gradient for an integer zero point).
    static std::tuple<at::Tensor, at::Tensor> run_backward(
        qsim_op op, const QdqArgs & a, const at::Tensor & dy, at::Tensor & dx,
        const at::Tensor & scale, const at::Tensor & zero_point, bool qparam_grads) {
        at::Tensor ds  = at::zeros_like(a.scale);
        at::Tensor dzp = at::zeros_like(a.zero_point);
        Runner::backward(op, a, dy, dx, ds, dzp, qparam_grads);
        ds  = a.to_qparam_shape(ds);
        dzp = a.to_qparam_shape(dzp);
        return { ds.to(scale.scalar_type()),
                 zero_point.is_floating_point() ? dzp.to(zero_point.scalar_type()) : dzp };
    }

    // quantize_dequantize_backward_: dx into grad (the kernels read each element's grad before
    // writing its dx); grad must have x's shape, dtype and device.
    static std::tuple<at::Tensor, at::Tensor> qdq_backward_(
        at::Tensor & grad, const at::Tensor & x, const at::Tensor & scale,
        const at::Tensor & zero_point, int64_t qmin, int64_t qmax, std::optional<int64_t> axis,
        std::optional<int64_t> block_size, bool qparam_grads) {
        const char *     name = "quantize_dequantize_backward_";
        const QdqArgs    a    = check_qdq_args(name, "x", x, scale, zero_point, qmin, qmax, axis,
                                               block_size, true, Runner::kDevice,
                                               Runner::kHalfData && (Runner::kHalfReduce || !qparam_grads));
        const at::Tensor dy   = check_grad(name, grad, x, a.x);
        at::Tensor       dx   = out_target(name, grad, x, a, scale, zero_point, "grad");
        auto grads = run_backward(QSIM_OP_QDQ, a, dy, dx, scale, zero_point, qparam_grads);
        if (!dx.is_same(grad)) {
            grad.copy_(dx);
        }
        return grads;
    }

    static at::Tensor qdq(const at::Tensor & x, const at::Tensor & scale,
                          const at::Tensor & zero_point, int64_t qmin, int64_t qmax,
                          std::optional<int64_t> axis, std::optional<int64_t> block_size) {
        return forward(QSIM_OP_QDQ, "quantize_dequantize", "x", x, scale, zero_point, qmin, qmax,
                       axis, block_size);
    }

    static void qdq_out(const at::Tensor & x, const at::Tensor & scale,
                        const at::Tensor & zero_point, int64_t qmin, int64_t qmax,
                        std::optional<int64_t> axis, std::optional<int64_t> block_size,
                        at::Tensor & out) {
        const char *     name   = "quantize_dequantize_out";
        const QdqArgs    a      = check_qdq_args(name, "x", x, scale, zero_point, qmin, qmax, axis,
                                                 block_size, true, Runner::kDevice,
                                                 Runner::kHalfData);
        at::Tensor       target = out_target(name, out, x, a, scale, zero_point);
        Runner::forward(QSIM_OP_QDQ, a, target);
        if (!target.is_same(out)) {
            out.copy_(target);
        }
    }

    static at::Tensor quantize(const at::Tensor & x, const at::Tensor & scale,
                               const at::Tensor & zero_point, int64_t qmin, int64_t qmax,
                               std::optional<int64_t> axis, std::optional<int64_t> block_size) {
        return forward(QSIM_OP_QUANTIZE, "quantize", "x", x, scale, zero_point, qmin, qmax, axis,
                       block_size);
    }

    static at::Tensor dequantize(const at::Tensor & q, const at::Tensor & scale,
                                 const at::Tensor & zero_point, std::optional<int64_t> axis,
                                 std::optional<int64_t> block_size) {
        return forward(QSIM_OP_DEQUANTIZE, "dequantize", "q", q, scale, zero_point, 0, 0, axis,
                       block_size);
    }

    static Grads qdq_backward(const at::Tensor & grad, const at::Tensor & x,
                              const at::Tensor & scale, const at::Tensor & zero_point,
                              int64_t qmin, int64_t qmax, std::optional<int64_t> axis,
                              std::optional<int64_t> block_size, bool qparam_grads) {
        return backward(QSIM_OP_QDQ, "quantize_dequantize_backward", "x", grad, x, scale,
                        zero_point, qmin, qmax, axis, block_size, qparam_grads);
    }

    // The `*_backward_data` ops: the data gradient of backward() without qparam gradients.
    static at::Tensor qdq_backward_data(const at::Tensor & grad, const at::Tensor & x,
                                        const at::Tensor & scale, const at::Tensor & zero_point,
                                        int64_t qmin, int64_t qmax, std::optional<int64_t> axis,
                                        std::optional<int64_t> block_size) {
        return std::get<0>(backward(QSIM_OP_QDQ, "quantize_dequantize_backward_data", "x", grad,
                                    x, scale, zero_point, qmin, qmax, axis, block_size, false));
    }

    static at::Tensor quantize_backward_data(const at::Tensor & grad, const at::Tensor & x,
                                             const at::Tensor & scale,
                                             const at::Tensor & zero_point, int64_t qmin,
                                             int64_t qmax, std::optional<int64_t> axis,
                                             std::optional<int64_t> block_size) {
        return std::get<0>(backward(QSIM_OP_QUANTIZE, "quantize_backward_data", "x", grad, x,
                                    scale, zero_point, qmin, qmax, axis, block_size, false));
    }

    static at::Tensor dequantize_backward_data(const at::Tensor & grad, const at::Tensor & q,
                                               const at::Tensor & scale,
                                               const at::Tensor & zero_point,
                                               std::optional<int64_t> axis,
                                               std::optional<int64_t> block_size) {
        return std::get<0>(backward(QSIM_OP_DEQUANTIZE, "dequantize_backward_data", "q", grad, q,
                                    scale, zero_point, 0, 0, axis, block_size, false));
    }

    static Grads quantize_backward(const at::Tensor & grad, const at::Tensor & x,
                                   const at::Tensor & scale, const at::Tensor & zero_point,
                                   int64_t qmin, int64_t qmax, std::optional<int64_t> axis,
                                   std::optional<int64_t> block_size, bool qparam_grads) {
        return backward(QSIM_OP_QUANTIZE, "quantize_backward", "x", grad, x, scale, zero_point,
                        qmin, qmax, axis, block_size, qparam_grads);
    }

    static Grads dequantize_backward(const at::Tensor & grad, const at::Tensor & q,
                                     const at::Tensor & scale, const at::Tensor & zero_point,
                                     std::optional<int64_t> axis,
                                     std::optional<int64_t> block_size, bool qparam_grads) {
        return backward(QSIM_OP_DEQUANTIZE, "dequantize_backward", "q", grad, q, scale,
                        zero_point, 0, 0, axis, block_size, qparam_grads);
    }

    static at::Tensor float_qdq(const at::Tensor & x, at::ScalarType dtype) {
        const at::Tensor xf = check_float_cast(x, dtype);
        at::Tensor       y  = at::empty_like(xf);
        Runner::float_cast(dtype, xf, y);
        return y.to(x.scalar_type());
    }
};

// Registers every qdq op with the entry points of Runner; call it inside
// TORCH_LIBRARY_IMPL(qsim, <device>, m).
template <class Runner> void register_qdq_ops(torch::Library & m) {
    using Ops = QdqEntryPoints<Runner>;
    m.impl("quantize_dequantize", &Ops::qdq);
    m.impl("quantize_dequantize_out", &Ops::qdq_out);
    m.impl("quantize", &Ops::quantize);
    m.impl("dequantize", &Ops::dequantize);
    m.impl("quantize_dequantize_backward", &Ops::qdq_backward);
    m.impl("quantize_dequantize_backward_", &Ops::qdq_backward_);
    m.impl("quantize_backward", &Ops::quantize_backward);
    m.impl("dequantize_backward", &Ops::dequantize_backward);
    m.impl("quantize_dequantize_backward_data", &Ops::qdq_backward_data);
    m.impl("quantize_backward_data", &Ops::quantize_backward_data);
    m.impl("dequantize_backward_data", &Ops::dequantize_backward_data);
    m.impl("float_quantize_dequantize", &Ops::float_qdq);
}

}  // namespace qsim
