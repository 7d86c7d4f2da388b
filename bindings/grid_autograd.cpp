// Autograd formula of the zero_point op, registered in C++ (the Autograd dispatch key) so that no
// Python runs when autograd calls it. Only the asymmetric zero point has a gradient (range
// learning of min/max); the symmetric kinds' zero points are constants of the grid (their output
// is marked non-differentiable, as a detached tensor would be).
//
// The asymmetric rule clamp(qmin - round(min / scale), qmin, qmax) is differentiated with a
// straight-through round, through torch's own formulas for the division, the subtraction and the
// clamp, operation for operation, so that range learning's gradients are bit for bit those
// torch's autograd gives the same expression written with torch ops: the clamp passes the
// gradient where qmin <= u <= qmax (u = qmin - round(min / scale)), the subtraction negates it,
// the round passes it, and the division gives g / scale to min and -g * ((min / scale) / scale)
// to scale. The backward is made of differentiable ATen ops (double backward differentiates
// those, as it would the torch expression).
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

extern "C" {
#include "qsim/analyzers.h"
}

namespace qsim {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct ZeroPointFunction : torch::autograd::Function<ZeroPointFunction> {
    static at::Tensor forward(AutogradContext * ctx, const at::Tensor & min,
                              const at::Tensor & scale, int64_t bitwidth, int64_t grid) {
        at::AutoDispatchBelowADInplaceOrView guard;
        static const auto op =
            c10::Dispatcher::singleton()
                .findSchemaOrThrow("qsim::zero_point", "")
                .typed<at::Tensor(const at::Tensor &, const at::Tensor &, int64_t, int64_t)>();
        at::Tensor zp = op.call(min, scale, bitwidth, grid);
        if (grid != QSIM_GRID_ASYMMETRIC) {
            ctx->mark_non_differentiable({ zp });
            return zp;
        }
        int32_t qmin = 0, qmax = 0;
        qsim_grid_bounds(QSIM_GRID_ASYMMETRIC, static_cast<int>(bitwidth), &qmin, &qmax);
        ctx->save_for_backward({ min, scale });
        ctx->saved_data["qmin"] = static_cast<int64_t>(qmin);
        ctx->saved_data["qmax"] = static_cast<int64_t>(qmax);
        return zp;
    }

    static variable_list backward(AutogradContext * ctx, variable_list grads) {
        const auto         saved = ctx->get_saved_variables();
        const at::Tensor & min = saved[0], & scale = saved[1], & g = grads[0];
        const int64_t      qmin = ctx->saved_data["qmin"].toInt();
        const int64_t      qmax = ctx->saved_data["qmax"].toInt();
        const at::Tensor   u    = at::rsub(at::round(at::div(min, scale)), qmin);
        const at::Tensor   du   = at::where(at::logical_and(at::ge(u, qmin), at::le(u, qmax)), g,
                                            at::scalar_tensor(0., g.options()));
        const at::Tensor   dq   = at::neg(du);
        return { ctx->needs_input_grad(0) ? at::div(dq, scale) : at::Tensor(),
                 ctx->needs_input_grad(1)
                     ? at::mul(at::neg(dq), at::div(at::div(min, scale), scale))
                     : at::Tensor(),
                 at::Tensor(), at::Tensor() };
    }
};

at::Tensor zero_point_autograd(const at::Tensor & min, const at::Tensor & scale, int64_t bitwidth,
                               int64_t grid) {
    return ZeroPointFunction::apply(min, scale, bitwidth, grid);
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, Autograd, m) {
    m.impl("zero_point", &zero_point_autograd);
}

}  // namespace qsim
