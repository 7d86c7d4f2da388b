// Range learning in one autograd node: quantize_dequantize_range(x, min, max, bitwidth, grid,
// axis) fake-quantizes x on the grid parameters of the held range [min, max] (range_qparams: the
// C rule qsim_range_qparams_f32) and its backward gives x, min and max their gradients: the qdq
// backward's (dx, dscale, dzero_point), then range_grads (qsim_range_grads_f32), which performs
// the fp32 operations torch's autograd performs through QuantizeDequantize's scale and zero-point
// expressions, in its engine's order, so the gradients are the same bits with one node instead of
// ten (tests/python/quantization/test_range_learning_op.py). min and max are fp32 CPU tensors of
// one shape, numel 1 (per tensor, axis None) or x.size(axis) (per channel). Fake kernels are in
// wrappers/ops.py.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <tuple>

#include "grid_args.h"
#include "owned_gradient.h"

namespace qsim {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptInt = std::optional<int64_t>;
using Pair   = std::tuple<at::Tensor, at::Tensor>;

// min and max checked (fp32 CPU, one shape) as contiguous tensors.
Pair checked_range(const char * op, const at::Tensor & min, const at::Tensor & max) {
    TORCH_CHECK_TYPE(min.scalar_type() == at::kFloat && max.scalar_type() == at::kFloat, op,
                     ": min and max must be float32 tensors, got ", min.scalar_type(), " and ",
                     max.scalar_type());
    TORCH_CHECK_VALUE(min.device().is_cpu() && max.device().is_cpu(), op,
                      ": min and max must be CPU tensors, got ", min.device(), " and ",
                      max.device());
    TORCH_CHECK_VALUE(min.sizes() == max.sizes(), op, ": max shape ", max.sizes(),
                      " must equal min shape ", min.sizes());
    return { min.contiguous(), max.contiguous() };
}

Pair range_qparams_cpu(const at::Tensor & min_, const at::Tensor & max_, int64_t bitwidth,
                       int64_t grid) {
    const char *   op = "range_qparams";
    const GridArgs g  = check_grid_args(op, bitwidth, grid);
    auto [min, max]   = checked_range(op, min_, max_);
    at::Tensor scale = at::empty(min.sizes(), min.options()), zp = at::empty_like(scale);
    TORCH_CHECK(qsim_range_qparams_f32(g.kind, static_cast<int>(bitwidth), min.data_ptr<float>(),
                                       max.data_ptr<float>(), scale.data_ptr<float>(),
                                       zp.data_ptr<float>(), min.numel()) == QSIM_SUCCESS,
                op, ": qsim_range_qparams_f32 failed");
    return { scale, zp };
}

Pair range_grads_cpu(const at::Tensor & min_, const at::Tensor & max_, const at::Tensor & ds_,
                     const at::Tensor & dzp_, int64_t bitwidth, int64_t grid) {
    const char *   op = "range_grads";
    const GridArgs g  = check_grid_args(op, bitwidth, grid);
    auto [min, max]   = checked_range(op, min_, max_);
    auto [ds, dzp]    = checked_range(op, ds_, dzp_);
    TORCH_CHECK_VALUE(ds.sizes() == min.sizes(), op, ": dscale shape ", ds.sizes(),
                      " must equal min shape ", min.sizes());
    at::Tensor dmin = at::empty(min.sizes(), min.options()), dmax = at::empty_like(dmin);
    TORCH_CHECK(qsim_range_grads_f32(g.kind, static_cast<int>(bitwidth), min.data_ptr<float>(),
                                     max.data_ptr<float>(), ds.data_ptr<float>(),
                                     dzp.data_ptr<float>(), dmin.data_ptr<float>(),
                                     dmax.data_ptr<float>(), min.numel()) == QSIM_SUCCESS,
                op, ": qsim_range_grads_f32 failed");
    return { dmin, dmax };
}

template <class Sig> c10::TypedOperatorHandle<Sig> handle(const char * name) {
    return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

// (scale, zero point) of [min, max] shaped as the qdq ops take them: () per tensor, (C,) per
// channel.
Pair qdq_qparams(const at::Tensor & min, const at::Tensor & max, int64_t bitwidth, int64_t grid,
                 OptInt axis) {
    static const auto op = handle<Pair(const at::Tensor &, const at::Tensor &, int64_t, int64_t)>(
        "qsim::range_qparams");
    auto [scale, zp] = op.call(min, max, bitwidth, grid);
    if (!axis.has_value()) {
        TORCH_CHECK_VALUE(min.numel() == 1, "quantize_dequantize_range: per tensor (axis None), "
                          "min must hold one value, got shape ", min.sizes());
        return { scale.reshape({}), zp.reshape({}) };
    }
    return { scale.reshape({ -1 }), zp.reshape({ -1 }) };
}

at::Tensor qdq_call(const at::Tensor & x, const at::Tensor & s, const at::Tensor & z,
                    const GridArgs & g, OptInt axis) {
    static const auto op =
        handle<at::Tensor(const at::Tensor &, const at::Tensor &, const at::Tensor &, int64_t,
                          int64_t, OptInt, OptInt)>("qsim::quantize_dequantize");
    return op.call(x, s, z, g.qmin, g.qmax, axis, std::nullopt);
}

at::Tensor qdq_range_cpu(const at::Tensor & x, const at::Tensor & min, const at::Tensor & max,
                         int64_t bitwidth, int64_t grid, OptInt axis) {
    const GridArgs g = check_grid_args("quantize_dequantize_range", bitwidth, grid);
    auto [s, z]      = qdq_qparams(min, max, bitwidth, grid, axis);
    return qdq_call(x, s, z, g, axis);
}

// (dx, dscale, dzero_point) of the qdq op, dx written into `g` when the backward owns it.
std::tuple<at::Tensor, at::Tensor, at::Tensor> qdq_grads(at::Tensor & g, const at::Tensor & x,
                                                         const at::Tensor & s, const at::Tensor & z,
                                                         const GridArgs & grid, OptInt axis) {
    using Into = Pair(at::Tensor &, const at::Tensor &, const at::Tensor &, const at::Tensor &,
                      int64_t, int64_t, OptInt, OptInt, bool);
    using Full = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
        const at::Tensor &, const at::Tensor &, const at::Tensor &, const at::Tensor &, int64_t,
        int64_t, OptInt, OptInt, bool);
    static const auto into = handle<Into>("qsim::quantize_dequantize_backward_");
    static const auto full = handle<Full>("qsim::quantize_dequantize_backward");
    at::AutoDispatchBelowADInplaceOrView guard;
    if (owned_gradient(g)) {
        at::Tensor dx    = std::move(g);
        auto [ds, dzp]   = into.call(dx, x, s, z, grid.qmin, grid.qmax, axis, std::nullopt, true);
        return { dx, ds, dzp };
    }
    return full.call(g, x, s, z, grid.qmin, grid.qmax, axis, std::nullopt, true);
}

struct RangeQdqFunction : torch::autograd::Function<RangeQdqFunction> {
    static at::Tensor forward(AutogradContext * ctx, const at::Tensor & x, const at::Tensor & min,
                              const at::Tensor & max, int64_t bitwidth, int64_t grid,
                              OptInt axis) {
        at::AutoDispatchBelowADInplaceOrView guard;
        const GridArgs g = check_grid_args("quantize_dequantize_range", bitwidth, grid);
        auto [s, z]      = qdq_qparams(min, max, bitwidth, grid, axis);
        ctx->save_for_backward({ x, min, max, s, z });
        ctx->saved_data["bitwidth"] = bitwidth;
        ctx->saved_data["grid"]     = grid;
        ctx->saved_data["axis"]     = axis;
        return qdq_call(x, s, z, g, axis);
    }

    // `grads` by reference: a gradient nothing else holds can take dx (owned_gradient).
    static variable_list backward(AutogradContext * ctx, variable_list & grads) {
        const auto    saved    = ctx->get_saved_variables();
        const int64_t bitwidth = ctx->saved_data["bitwidth"].toInt();
        const int64_t grid     = ctx->saved_data["grid"].toInt();
        const OptInt  axis     = ctx->saved_data["axis"].toOptional<int64_t>();
        const GridArgs g       = check_grid_args("quantize_dequantize_range", bitwidth, grid);
        const at::Tensor & min = saved[1];
        auto [dx, ds, dzp]     = qdq_grads(grads[0], saved[0], saved[3], saved[4], g, axis);
        static const auto range_grads =
            handle<Pair(const at::Tensor &, const at::Tensor &, const at::Tensor &,
                        const at::Tensor &, int64_t, int64_t)>("qsim::range_grads");
        auto [dmin, dmax] = range_grads.call(min, saved[2], ds.reshape(min.sizes()),
                                             dzp.reshape(min.sizes()), bitwidth, grid);
        return { ctx->needs_input_grad(0) ? dx : at::Tensor(),
                 ctx->needs_input_grad(1) ? dmin : at::Tensor(),
                 ctx->needs_input_grad(2) ? dmax : at::Tensor(), at::Tensor(), at::Tensor(),
                 at::Tensor() };
    }
};

// Through RangeQdqFunction when autograd records the op; otherwise straight to the kernel.
at::Tensor qdq_range_autograd(const at::Tensor & x, const at::Tensor & min,
                              const at::Tensor & max, int64_t bitwidth, int64_t grid,
                              OptInt axis) {
    if (at::GradMode::is_enabled() &&
        (x.requires_grad() || min.requires_grad() || max.requires_grad())) {
        return RangeQdqFunction::apply(x, min, max, bitwidth, grid, axis);
    }
    at::AutoDispatchBelowADInplaceOrView guard;
    static const auto op =
        handle<at::Tensor(const at::Tensor &, const at::Tensor &, const at::Tensor &, int64_t,
                          int64_t, OptInt)>("qsim::quantize_dequantize_range");
    return op.call(x, min, max, bitwidth, grid, axis);
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("range_qparams", &range_qparams_cpu);
    m.impl("range_grads", &range_grads_cpu);
    m.impl("quantize_dequantize_range", &qdq_range_cpu);
}

TORCH_LIBRARY_IMPL(qsim, Autograd, m) {
    m.impl("quantize_dequantize_range", &qdq_range_autograd);
}

}  // namespace qsim
