// Range learning in one autograd node: quantize_dequantize_range(x, min, max, bitwidth, grid, axis,
// planned_output) fake-quantizes x on the grid parameters of the held range [min, max]
// (range_qparams: the C rule qsim_range_qparams_f32) and its backward gives x, min and max their
// gradients: the qdq backward's (dx, dscale, dzero_point), then range_grads (qsim_range_grads_f32),
// which performs the fp32 operations torch's autograd performs through QuantizeDequantize's scale
// and zero-point expressions, in its engine's order, so the gradients are the same bits with one
// node instead of ten (tests/python/quantization/test_range_learning_op.py). min and max are fp32
// CPU tensors of one shape, numel 1 (per tensor, axis None) or x.size(axis) (per channel).
// held_range gives the range calibration hands a range-learning quantizer: aimet-torch's held range
// of min/max statistics (qsim_held_range_f32), in one op instead of nine. Fake kernels are in
// wrappers/ops.py.
//
// Traced (torch.compile: x a tensor subclass) with planned_output, the forward writes y through
// quantize_dequantize_out into an empty tensor of x's traced strides and the backward writes dx
// into a copy of the incoming gradient of x's layout (quantize_dequantize_backward_): buffers of
// inductor's memory plan, where the ops' own outputs would be fresh allocations. Without it the
// ops stay, the forward's output following the layout inductor picks for x (flexible_layout: a
// channels-last convolution output, which the planned buffer's traced strides would copy).
#include <ATen/TensorSubclassLikeUtils.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cfloat>
#include <cmath>
#include <tuple>

#include "grid_args.h"
#include "op_handle.h"
#include "owned_gradient.h"

namespace qsim {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptInt = std::optional<int64_t>;
using Pair   = std::tuple<at::Tensor, at::Tensor>;

// Arguments `a` and `b` (named `na`, `nb`) checked (fp32 CPU, one shape) as contiguous tensors.
Pair checked_pair(const char * op, const char * na, const char * nb, const at::Tensor & a,
                  const at::Tensor & b) {
    TORCH_CHECK_TYPE(a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat, op, ": ", na,
                     " and ", nb, " must be float32 tensors, got ", a.scalar_type(), " and ",
                     b.scalar_type());
    TORCH_CHECK_VALUE(a.device().is_cpu() && b.device().is_cpu(), op, ": ", na, " and ", nb,
                      " must be CPU tensors, got ", a.device(), " and ", b.device());
    TORCH_CHECK_VALUE(a.sizes() == b.sizes(), op, ": ", nb, " shape ", b.sizes(), " must equal ",
                      na, " shape ", a.sizes());
    return { a.contiguous(), b.contiguous() };
}

Pair range_qparams_cpu(const at::Tensor & min_, const at::Tensor & max_, int64_t bitwidth,
                       int64_t grid) {
    const char *   op = "range_qparams";
    const GridArgs g  = check_grid_args(op, bitwidth, grid);
    auto [min, max]   = checked_pair(op, "min", "max", min_, max_);
    at::Tensor scale = at::empty(min.sizes(), min.options()), zp = at::empty_like(scale);
    TORCH_CHECK(qsim_range_qparams_f32(g.kind, static_cast<int>(bitwidth), min.data_ptr<float>(),
                                       max.data_ptr<float>(), scale.data_ptr<float>(),
                                       zp.data_ptr<float>(), min.numel()) == QSIM_SUCCESS,
                op, ": qsim_range_qparams_f32 failed");
    return { scale, zp };
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> held_range_cpu(const at::Tensor & min_,
                                                              const at::Tensor & max_, int64_t steps,
                                                              std::optional<double> fixed_min) {
    const char * op = "held_range";
    TORCH_CHECK_VALUE(steps >= 1 && steps <= 65535, op, ": steps must be from 1 to 65535, got ", steps);
    TORCH_CHECK_VALUE(!fixed_min.has_value() || std::abs(*fixed_min) <= FLT_MAX, op,
                      ": fixed_min must be a finite float32 value, got ", *fixed_min);
    auto [min, max] = checked_pair(op, "min", "max", min_, max_);
    at::Tensor  lo = at::empty(min.sizes(), min.options()), hi = at::empty_like(lo);
    at::Tensor  unseen = at::empty({}, min.options().dtype(at::kLong));
    const float fixed  = fixed_min.has_value() ? static_cast<float>(*fixed_min) : 0.0f;
    TORCH_CHECK(qsim_held_range_f32(static_cast<int32_t>(steps), min.data_ptr<float>(),
                                    max.data_ptr<float>(), fixed_min.has_value() ? &fixed : nullptr,
                                    lo.data_ptr<float>(), hi.data_ptr<float>(), min.numel(),
                                    unseen.data_ptr<int64_t>()) == QSIM_SUCCESS,
                op, ": qsim_held_range_f32 failed");
    return { lo, hi, unseen };
}

Pair range_grads_cpu(const at::Tensor & min_, const at::Tensor & max_, const at::Tensor & ds_,
                     const at::Tensor & dzp_, int64_t bitwidth, int64_t grid) {
    const char *   op = "range_grads";
    const GridArgs g  = check_grid_args(op, bitwidth, grid);
    auto [min, max]   = checked_pair(op, "min", "max", min_, max_);
    auto [ds, dzp]    = checked_pair(op, "dscale", "dzero_point", ds_, dzp_);
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

// qdq_call into a new tensor of x's layout through quantize_dequantize_out (the planned output).
at::Tensor qdq_into_new(const at::Tensor & x, const at::Tensor & s, const at::Tensor & z,
                        const GridArgs & g, OptInt axis) {
    static const auto op =
        handle<void(const at::Tensor &, const at::Tensor &, const at::Tensor &, int64_t, int64_t,
                    OptInt, OptInt, at::Tensor &)>("qsim::quantize_dequantize_out");
    at::Tensor y = at::empty_like(x);
    op.call(x, s, z, g.qmin, g.qmax, axis, std::nullopt, y);
    return y;
}

at::Tensor qdq_range_cpu(const at::Tensor & x, const at::Tensor & min, const at::Tensor & max,
                         int64_t bitwidth, int64_t grid, OptInt axis, bool /*planned_output*/) {
    const GridArgs g = check_grid_args("quantize_dequantize_range", bitwidth, grid);
    auto [s, z]      = qdq_qparams(min, max, bitwidth, grid, axis);
    return qdq_call(x, s, z, g, axis);
}

// (dx, dscale, dzero_point) of the qdq op, dx written in place into what gradient_into gives or,
// `planned` (traced), into a copy of g of x's layout.
std::tuple<at::Tensor, at::Tensor, at::Tensor> qdq_grads(at::Tensor & g, const at::Tensor & x,
                                                         const at::Tensor & s, const at::Tensor & z,
                                                         const GridArgs & grid, OptInt axis,
                                                         bool planned) {
    using Into = Pair(at::Tensor &, const at::Tensor &, const at::Tensor &, const at::Tensor &,
                      int64_t, int64_t, OptInt, OptInt, bool);
    using Full = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
        const at::Tensor &, const at::Tensor &, const at::Tensor &, const at::Tensor &, int64_t,
        int64_t, OptInt, OptInt, bool);
    static const auto into = handle<Into>("qsim::quantize_dequantize_backward_");
    static const auto full = handle<Full>("qsim::quantize_dequantize_backward");
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor dx = planned ? at::empty_like(x).copy_(g) : gradient_into(g, x);
    if (dx.defined()) {
        auto [ds, dzp] = into.call(dx, x, s, z, grid.qmin, grid.qmax, axis, std::nullopt, true);
        return { dx, ds, dzp };
    }
    return full.call(g, x, s, z, grid.qmin, grid.qmax, axis, std::nullopt, true);
}

// (dx, dmin, dmax) from the incoming gradient `g` and the forward's (x, min, max, scale, zero
// point); dx is written into `g` when the caller owns it and x is laid out as `g`, or into a copy
// of `g` laid out like x (see qdq_grads).
variable_list range_backward(at::Tensor & g, const variable_list & saved, int64_t bitwidth,
                             int64_t grid, OptInt axis, bool planned = false) {
    static const auto range_grads =
        handle<Pair(const at::Tensor &, const at::Tensor &, const at::Tensor &, const at::Tensor &,
                    int64_t, int64_t)>("qsim::range_grads");
    const GridArgs     gr  = check_grid_args("quantize_dequantize_range", bitwidth, grid);
    const at::Tensor & min = saved[1];
    auto [dx, ds, dzp]     = qdq_grads(g, saved[0], saved[3], saved[4], gr, axis, planned);
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [dmin, dmax] = range_grads.call(min, saved[2], ds.reshape(min.sizes()),
                                         dzp.reshape(min.sizes()), bitwidth, grid);
    return { dx, dmin, dmax };
}

// The backward when a graph is built on it (create_graph=True): the same gradients, on a node
// that refuses to be differentiated, as the qdq ops' backward does (no double backward).
struct RangeBackwardFunction : torch::autograd::Function<RangeBackwardFunction> {
    static variable_list forward(AutogradContext *, const at::Tensor & g, const at::Tensor & x,
                                 const at::Tensor & min, const at::Tensor & max,
                                 const at::Tensor & s, const at::Tensor & z, int64_t bitwidth,
                                 int64_t grid, OptInt axis) {
        at::Tensor copy = g;  // held twice: never owned, dx is a new tensor
        return range_backward(copy, { x, min, max, s, z }, bitwidth, grid, axis);
    }

    static variable_list backward(AutogradContext *, variable_list) {
        TORCH_CHECK(false, "torch.ops.qsim.quantize_dequantize_range's backward is not "
                    "differentiable: double backward through a torchqsim quantizer that learns "
                    "its range (differentiating its gradient, e.g. after "
                    "torch.autograd.grad(..., create_graph=True)) is not supported");
        return {};
    }
};

struct RangeQdqFunction : torch::autograd::Function<RangeQdqFunction> {
    static at::Tensor forward(AutogradContext * ctx, const at::Tensor & x, const at::Tensor & min,
                              const at::Tensor & max, int64_t bitwidth, int64_t grid,
                              OptInt axis, bool planned_output) {
        at::AutoDispatchBelowADInplaceOrView guard;
        const GridArgs g = check_grid_args("quantize_dequantize_range", bitwidth, grid);
        auto [s, z]      = qdq_qparams(min, max, bitwidth, grid, axis);
        ctx->save_for_backward({ x, min, max, s, z });
        ctx->saved_data["bitwidth"] = bitwidth;
        ctx->saved_data["grid"]     = grid;
        ctx->saved_data["axis"]     = axis;
        const bool planned          = planned_output && at::isTensorSubclassLike(x);
        ctx->saved_data["planned"]  = planned;
        return planned ? qdq_into_new(x, s, z, g, axis) : qdq_call(x, s, z, g, axis);
    }

    // `grads` by reference: a gradient nothing else holds can take dx (owned_gradient).
    static variable_list backward(AutogradContext * ctx, variable_list & grads) {
        const auto    saved    = ctx->get_saved_variables();
        const int64_t bitwidth = ctx->saved_data["bitwidth"].toInt();
        const int64_t grid     = ctx->saved_data["grid"].toInt();
        const OptInt  axis     = ctx->saved_data["axis"].toOptional<int64_t>();
        const bool    planned  = ctx->saved_data["planned"].toBool();
        const variable_list d =
            at::GradMode::is_enabled()
                ? RangeBackwardFunction::apply(grads[0], saved[0], saved[1], saved[2], saved[3],
                                               saved[4], bitwidth, grid, axis)
                : range_backward(grads[0], saved, bitwidth, grid, axis, planned);
        return { ctx->needs_input_grad(0) ? d[0] : at::Tensor(),
                 ctx->needs_input_grad(1) ? d[1] : at::Tensor(),
                 ctx->needs_input_grad(2) ? d[2] : at::Tensor(), at::Tensor(), at::Tensor(),
                 at::Tensor(), at::Tensor() };
    }
};

// Through RangeQdqFunction when autograd records the op; otherwise straight to the kernel.
at::Tensor qdq_range_autograd(const at::Tensor & x, const at::Tensor & min,
                              const at::Tensor & max, int64_t bitwidth, int64_t grid,
                              OptInt axis, bool planned_output) {
    if (at::GradMode::is_enabled() &&
        (x.requires_grad() || min.requires_grad() || max.requires_grad())) {
        return RangeQdqFunction::apply(x, min, max, bitwidth, grid, axis, planned_output);
    }
    at::AutoDispatchBelowADInplaceOrView guard;
    static const auto op =
        handle<at::Tensor(const at::Tensor &, const at::Tensor &, const at::Tensor &, int64_t,
                          int64_t, OptInt, bool)>("qsim::quantize_dequantize_range");
    return op.call(x, min, max, bitwidth, grid, axis, planned_output);
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("range_qparams", &range_qparams_cpu);
    m.impl("range_grads", &range_grads_cpu);
    m.impl("held_range", &held_range_cpu);
    m.impl("quantize_dequantize_range", &qdq_range_cpu);
}

TORCH_LIBRARY_IMPL(qsim, Autograd, m) {
    m.impl("quantize_dequantize_range", &qdq_range_autograd);
}

}  // namespace qsim
