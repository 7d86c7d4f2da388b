// Autograd formulas of the qdq ops, registered in C++ (the Autograd dispatch key) so that no
// Python runs when autograd calls them: the forward records (x, scale, zero_point) and the grid,
// and the backward is the `*_backward` op (qdq_entry_points.h), which recomputes what it needs
// from x (no copy of the data is saved: x is the op's own input, kept by reference). Eager
// float32 straight-through calls per tensor keep one bit a value instead (qdq_bits.h), and so do
// traced ones (torch.compile, export) of a contiguous x of up to 3 dims, through the
// quantize_dequantize_bits ops (TracedBitsFunction).
// Gradients reach x (straight-through, zero where clamped), scale and a floating zero_point
// (range learning); the scale/zero-point sums run only when one of them needs a gradient.
// Without them the backward is the `*_backward_data` op (the data gradient alone): element-wise,
// so that torch.compile may run it in any layout (bindings/library.cpp).
// `float_quantize_dequantize` has the identity gradient. The `*_backward` ops refuse to be
// differentiated (no double backward), with an error naming the op. Fake (meta) kernels are in
// wrappers/ops.py.
#include <ATen/TensorSubclassLikeUtils.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <string>
#include <tuple>

#include "op_handle.h"
#include "owned_gradient.h"
#include "qdq_bits.h"

namespace qsim {

bool owned_gradient(const at::Tensor & g) {
    if (!g.defined() || g.use_count() != 1 || g.requires_grad() || !g.device().is_cpu() ||
        at::isTensorSubclassLike(g) || g.layout() != at::kStrided || g.storage_offset() != 0 ||
        !g.is_non_overlapping_and_dense() ||
        g.storage().nbytes() != static_cast<size_t>(g.numel()) * g.element_size()) {
        return false;
    }
    if (!g.is_view()) {
        return g.storage().use_count() == 1;
    }
    return g._base().use_count() == 1 && g.storage().use_count() == 2;
}

at::Tensor gradient_into(at::Tensor & g, const at::Tensor & x) {
    if (g.defined() && !g.requires_grad() && g.device().is_cpu() && !at::isTensorSubclassLike(g) &&
        x.is_non_overlapping_and_dense() && g.strides() != x.strides()) {
        return at::empty_like(x).copy_(g);
    }
    return owned_gradient(g) ? std::move(g) : at::Tensor();
}

at::Tensor bits_backward_call(const at::Tensor & grad, const at::Tensor & bits) {
    static const auto op = handle<at::Tensor(const at::Tensor &, const at::Tensor &)>(
        "qsim::quantize_dequantize_bits_backward");
    return op.call(grad, bits);
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptInt = std::optional<int64_t>;
using Grads  = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

// The ops with a grid (qmin, qmax): quantize_dequantize and quantize.
using GridFwd = at::Tensor(const at::Tensor &, const at::Tensor &, const at::Tensor &, int64_t,
                           int64_t, OptInt, OptInt);
using GridBwd = Grads(const at::Tensor &, const at::Tensor &, const at::Tensor &,
                      const at::Tensor &, int64_t, int64_t, OptInt, OptInt, bool);
using DeqFwd  = at::Tensor(const at::Tensor &, const at::Tensor &, const at::Tensor &, OptInt,
                           OptInt);
using DeqBwd  = Grads(const at::Tensor &, const at::Tensor &, const at::Tensor &,
                      const at::Tensor &, OptInt, OptInt, bool);
using GridBwdData = at::Tensor(const at::Tensor &, const at::Tensor &, const at::Tensor &,
                               const at::Tensor &, int64_t, int64_t, OptInt, OptInt);
using DeqBwdData  = at::Tensor(const at::Tensor &, const at::Tensor &, const at::Tensor &,
                               const at::Tensor &, OptInt, OptInt);

constexpr char kQdq[]         = "qsim::quantize_dequantize";
constexpr char kQdqBwd[]      = "qsim::quantize_dequantize_backward";
constexpr char kQdqBwdData[]  = "qsim::quantize_dequantize_backward_data";
constexpr char kQuantize[]    = "qsim::quantize";
constexpr char kQuantizeBwd[] = "qsim::quantize_backward";
constexpr char kQuantizeBwdData[] = "qsim::quantize_backward_data";

using GridBwdInto = std::tuple<at::Tensor, at::Tensor>(at::Tensor &, const at::Tensor &,
                                                        const at::Tensor &, const at::Tensor &,
                                                        int64_t, int64_t, OptInt, OptInt, bool);

// How an affine op with a grid (quantize_dequantize, quantize) calls its forward and backward
// below the Autograd key; `BwdInto` (or nullptr) names its backward that writes dx into the
// incoming gradient.
template <const char * Fwd, const char * Bwd, const char * BwdData, const char * BwdInto = nullptr>
struct GridCalls {
    static constexpr const char * backward_name      = Bwd;
    static constexpr const char * backward_data_name = BwdData;
    static constexpr bool         kInto              = BwdInto != nullptr;
    static std::tuple<at::Tensor, at::Tensor> bwd_into(at::Tensor & g, const at::Tensor & x,
                                                       const at::Tensor & s, const at::Tensor & z,
                                                       int64_t lo, int64_t hi, OptInt axis,
                                                       OptInt block, bool qparam_grads) {
        static const auto op = handle<GridBwdInto>(BwdInto);
        at::AutoDispatchBelowADInplaceOrView guard;
        return op.call(g, x, s, z, lo, hi, axis, block, qparam_grads);
    }
    static at::Tensor fwd(const at::Tensor & x, const at::Tensor & s, const at::Tensor & z,
                          int64_t lo, int64_t hi, OptInt axis, OptInt block) {
        static const auto op = handle<GridFwd>(Fwd);
        return op.call(x, s, z, lo, hi, axis, block);
    }
    static Grads bwd(const at::Tensor & g, const at::Tensor & x, const at::Tensor & s,
                     const at::Tensor & z, int64_t lo, int64_t hi, OptInt axis, OptInt block,
                     bool qparam_grads) {
        static const auto op = handle<GridBwd>(Bwd);
        return op.call(g, x, s, z, lo, hi, axis, block, qparam_grads);
    }
    static at::Tensor bwd_data(const at::Tensor & g, const at::Tensor & x, const at::Tensor & s,
                               const at::Tensor & z, int64_t lo, int64_t hi, OptInt axis,
                               OptInt block) {
        static const auto op = handle<GridBwdData>(BwdData);
        return op.call(g, x, s, z, lo, hi, axis, block);
    }
};

constexpr char kQdqBwdInto[]  = "qsim::quantize_dequantize_backward_";

using QdqCalls      = GridCalls<kQdq, kQdqBwd, kQdqBwdData, kQdqBwdInto>;
using QuantizeCalls = GridCalls<kQuantize, kQuantizeBwd, kQuantizeBwdData>;

// dequantize has no grid: lo and hi are ignored.
struct DequantizeCalls {
    static constexpr const char * backward_name      = "qsim::dequantize_backward";
    static constexpr const char * backward_data_name = "qsim::dequantize_backward_data";
    static constexpr bool         kInto              = false;
    static at::Tensor fwd(const at::Tensor & q, const at::Tensor & s, const at::Tensor & z,
                          int64_t, int64_t, OptInt axis, OptInt block) {
        static const auto op = handle<DeqFwd>("qsim::dequantize");
        return op.call(q, s, z, axis, block);
    }
    static Grads bwd(const at::Tensor & g, const at::Tensor & q, const at::Tensor & s,
                     const at::Tensor & z, int64_t, int64_t, OptInt axis, OptInt block,
                     bool qparam_grads) {
        static const auto op = handle<DeqBwd>("qsim::dequantize_backward");
        return op.call(g, q, s, z, axis, block, qparam_grads);
    }
    static at::Tensor bwd_data(const at::Tensor & g, const at::Tensor & q, const at::Tensor & s,
                               const at::Tensor & z, int64_t, int64_t, OptInt axis, OptInt block) {
        static const auto op = handle<DeqBwdData>("qsim::dequantize_backward_data");
        return op.call(g, q, s, z, axis, block);
    }
};

template <class Calls> struct AffineFunction : torch::autograd::Function<AffineFunction<Calls>> {
    static at::Tensor forward(AutogradContext * ctx, const at::Tensor & x, const at::Tensor & s,
                              const at::Tensor & z, int64_t lo, int64_t hi, OptInt axis,
                              OptInt block) {
        at::AutoDispatchBelowADInplaceOrView guard;
        ctx->save_for_backward({ x, s, z });
        ctx->saved_data["lo"]    = lo;
        ctx->saved_data["hi"]    = hi;
        ctx->saved_data["axis"]  = axis;
        ctx->saved_data["block"] = block;
        return Calls::fwd(x, s, z, lo, hi, axis, block);
    }

    // `grads` by reference: autograd moves the incoming gradient in, so that a gradient nothing
    // else holds has use count 1 here and can take dx (owned_gradient).
    static variable_list backward(AutogradContext * ctx, variable_list & grads) {
        const auto    saved   = ctx->get_saved_variables();
        const bool    need_s  = ctx->needs_input_grad(1);
        const bool    need_zp = ctx->needs_input_grad(2);
        const int64_t lo = ctx->saved_data["lo"].toInt(), hi = ctx->saved_data["hi"].toInt();
        const OptInt  axis  = ctx->saved_data["axis"].toOptional<int64_t>();
        const OptInt  block = ctx->saved_data["block"].toOptional<int64_t>();
        at::Tensor    dx, ds, dzp;
        if constexpr (Calls::kInto) {
            if (ctx->needs_input_grad(0)) {
                dx = gradient_into(grads[0], saved[0]);
            }
            if (dx.defined()) {
                std::tie(ds, dzp) = Calls::bwd_into(dx, saved[0], saved[1], saved[2], lo, hi,
                                                    axis, block, need_s || need_zp);
            }
        }
        if (!dx.defined() && (need_s || need_zp)) {
            std::tie(dx, ds, dzp) =
                Calls::bwd(grads[0], saved[0], saved[1], saved[2], lo, hi, axis, block, true);
        } else if (!dx.defined()) {
            dx = Calls::bwd_data(grads[0], saved[0], saved[1], saved[2], lo, hi, axis, block);
        }
        return { ctx->needs_input_grad(0) ? dx : at::Tensor(), need_s ? ds : at::Tensor(),
                 need_zp ? dzp : at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
                 at::Tensor() };
    }
};

// The op through AffineFunction when autograd records it; otherwise (no grad mode, or no input
// requiring grad: calibration, evaluation, frozen weights) straight to the kernel below the
// Autograd key, without building a Function node that nothing would use.
template <class Calls>
at::Tensor affine(const at::Tensor & x, const at::Tensor & s, const at::Tensor & z, int64_t lo,
                  int64_t hi, OptInt axis, OptInt block) {
    if (at::GradMode::is_enabled() && (x.requires_grad() || s.requires_grad() || z.requires_grad())) {
        return AffineFunction<Calls>::apply(x, s, z, lo, hi, axis, block);
    }
    at::AutoDispatchBelowADInplaceOrView guard;
    return Calls::fwd(x, s, z, lo, hi, axis, block);
}

// Whether a traced (compiled, exported) quantize_dequantize call takes TracedBitsFunction:
// straight-through (x requires grad, scale and zero point not), per tensor, a contiguous CPU x of
// static shape and at most 3 dims in a float dtype the bits kernels take. Other traced calls keep
// x. The bits are in element order, so the pair needs x in the traced layout: 4-D and 5-D x keep
// x's op, which takes the layout inductor chose (channels-last convolution outputs: fixing their
// layout cost a ResNet's compiled step two copies a quantizer, 1.08 -> 1.30 of the FP32 step).
bool traced_bits_applies(const at::Tensor & x, const at::Tensor & s, const at::Tensor & z,
                         OptInt axis, OptInt block) {
    const at::ScalarType t = x.scalar_type();
    return at::GradMode::is_enabled() && x.requires_grad() && !s.requires_grad() &&
           !z.requires_grad() && !axis && !block && at::isTensorSubclassLike(x) &&
           x.device().is_cpu() && x.layout() == at::kStrided && x.dim() <= 3 &&
           (t == at::kFloat || t == at::kHalf || t == at::kBFloat16) &&
           !x.unsafeGetTensorImpl()->has_symbolic_sizes_strides() && x.is_contiguous() &&
           s.sym_numel() == 1 && z.sym_numel() == 1;
}

using BitsFwd = std::tuple<at::Tensor, at::Tensor>(const at::Tensor &, const at::Tensor &,
                                                    const at::Tensor &, int64_t, int64_t);

// quantize_dequantize's straight-through node in a traced graph: the graph keeps x's bits (an
// eighth of a byte a value) for the backward, not x.
struct TracedBitsFunction : torch::autograd::Function<TracedBitsFunction> {
    static at::Tensor forward(AutogradContext * ctx, const at::Tensor & x, const at::Tensor & s,
                              const at::Tensor & z, int64_t lo, int64_t hi) {
        static const auto op = handle<BitsFwd>("qsim::quantize_dequantize_bits");
        at::AutoDispatchBelowADInplaceOrView guard;
        auto [y, bits] = op.call(x, s, z, lo, hi);
        ctx->save_for_backward({ bits });
        return y;
    }

    static variable_list backward(AutogradContext * ctx, variable_list grads) {
        return { bits_backward_call(grads[0], ctx->get_saved_variables()[0]), at::Tensor(),
                 at::Tensor(), at::Tensor(), at::Tensor() };
    }
};

at::Tensor qdq_autograd(const at::Tensor & x, const at::Tensor & s, const at::Tensor & z,
                        int64_t lo, int64_t hi, OptInt axis, OptInt block) {
    if (qdq_bits_applies(x, s, z, axis, block)) {  // eager straight-through: bits, not x
        return qdq_bits_autograd(x, s, z, lo, hi);
    }
    if (traced_bits_applies(x, s, z, axis, block)) {
        return TracedBitsFunction::apply(x, s, z, lo, hi);
    }
    return affine<QdqCalls>(x, s, z, lo, hi, axis, block);
}

at::Tensor quantize_autograd(const at::Tensor & x, const at::Tensor & s, const at::Tensor & z,
                             int64_t lo, int64_t hi, OptInt axis, OptInt block) {
    return affine<QuantizeCalls>(x, s, z, lo, hi, axis, block);
}

at::Tensor dequantize_autograd(const at::Tensor & q, const at::Tensor & s, const at::Tensor & z,
                               OptInt axis, OptInt block) {
    return affine<DequantizeCalls>(q, s, z, 0, 0, axis, block);
}

struct FloatQdqFunction : torch::autograd::Function<FloatQdqFunction> {
    static at::Tensor forward(AutogradContext *, const at::Tensor & x, at::ScalarType dtype) {
        at::AutoDispatchBelowADInplaceOrView guard;
        static const auto op = handle<at::Tensor(const at::Tensor &, at::ScalarType)>(
            "qsim::float_quantize_dequantize");
        return op.call(x, dtype);
    }

    static variable_list backward(AutogradContext *, variable_list grads) {
        return { grads[0], at::Tensor() };
    }
};

at::Tensor float_qdq_autograd(const at::Tensor & x, at::ScalarType dtype) {
    return FloatQdqFunction::apply(x, dtype);
}

// The error of differentiating backward op `name` (without "qsim::").
void refuse_double_backward(const char * name) {
    TORCH_CHECK(false, "torch.ops.qsim.", name, " is not differentiable: double backward "
                "through a torchqsim quantizer (differentiating its gradient, e.g. after "
                "torch.autograd.grad(..., create_graph=True)) is not supported");
}

// The Autograd kernel of a `*_backward` op (DataOnly: a `*_backward_data` op): runs it (below
// Autograd) and, when its result is put on a graph (create_graph=True), attaches a node that
// refuses to be differentiated.
template <class Calls, bool DataOnly = false>
struct NoDoubleBackward : torch::autograd::Function<NoDoubleBackward<Calls, DataOnly>> {
    template <class... Args>
    static variable_list forward(AutogradContext *, const at::Tensor & grad, const at::Tensor & x,
                                 const at::Tensor & s, const at::Tensor & z, Args... args) {
        at::AutoDispatchBelowADInplaceOrView guard;
        if constexpr (DataOnly) {
            return { Calls::bwd_data(grad, x, s, z, args...) };
        } else {
            auto [dx, ds, dzp] = Calls::bwd(grad, x, s, z, args...);
            return { dx, ds, dzp };
        }
    }

    static variable_list backward(AutogradContext *, variable_list) {
        // without "qsim::"
        refuse_double_backward((DataOnly ? Calls::backward_data_name : Calls::backward_name) + 6);
        return {};
    }
};

Grads as_grads(const variable_list & v) {
    return { v[0], v[1], v[2] };
}

Grads qdq_backward_autograd(const at::Tensor & g, const at::Tensor & x, const at::Tensor & s,
                            const at::Tensor & z, int64_t lo, int64_t hi, OptInt axis,
                            OptInt block, bool qparam_grads) {
    return as_grads(NoDoubleBackward<QdqCalls>::apply(g, x, s, z, lo, hi, axis, block,
                                                             qparam_grads));
}

Grads quantize_backward_autograd(const at::Tensor & g, const at::Tensor & x, const at::Tensor & s,
                                 const at::Tensor & z, int64_t lo, int64_t hi, OptInt axis,
                                 OptInt block, bool qparam_grads) {
    return as_grads(NoDoubleBackward<QuantizeCalls>::apply(g, x, s, z, lo, hi, axis, block,
                                                                  qparam_grads));
}

Grads dequantize_backward_autograd(const at::Tensor & g, const at::Tensor & q,
                                   const at::Tensor & s, const at::Tensor & z, OptInt axis,
                                   OptInt block, bool qparam_grads) {
    return as_grads(NoDoubleBackward<DequantizeCalls>::apply(g, q, s, z, 0, 0, axis, block,
                                                                    qparam_grads));
}

at::Tensor qdq_backward_data_autograd(const at::Tensor & g, const at::Tensor & x,
                                      const at::Tensor & s, const at::Tensor & z, int64_t lo,
                                      int64_t hi, OptInt axis, OptInt block) {
    return NoDoubleBackward<QdqCalls, true>::apply(g, x, s, z, lo, hi, axis, block)[0];
}

at::Tensor quantize_backward_data_autograd(const at::Tensor & g, const at::Tensor & x,
                                           const at::Tensor & s, const at::Tensor & z, int64_t lo,
                                           int64_t hi, OptInt axis, OptInt block) {
    return NoDoubleBackward<QuantizeCalls, true>::apply(g, x, s, z, lo, hi, axis, block)[0];
}

// quantize_dequantize_bits_backward's Autograd kernel: the gradient, and a node refusing to be
// differentiated when it is put on a graph.
struct BitsNoDoubleBackward : torch::autograd::Function<BitsNoDoubleBackward> {
    static at::Tensor forward(AutogradContext *, const at::Tensor & grad, const at::Tensor & bits) {
        at::AutoDispatchBelowADInplaceOrView guard;
        return bits_backward_call(grad, bits);
    }

    static variable_list backward(AutogradContext *, variable_list) {
        refuse_double_backward("quantize_dequantize_bits_backward");
        return {};
    }
};

at::Tensor bits_backward_autograd(const at::Tensor & grad, const at::Tensor & bits) {
    return BitsNoDoubleBackward::apply(grad, bits);
}

at::Tensor dequantize_backward_data_autograd(const at::Tensor & g, const at::Tensor & q,
                                             const at::Tensor & s, const at::Tensor & z,
                                             OptInt axis, OptInt block) {
    return NoDoubleBackward<DequantizeCalls, true>::apply(g, q, s, z, 0, 0, axis, block)[0];
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, Autograd, m) {
    m.impl("quantize_dequantize", &qdq_autograd);
    m.impl("quantize", &quantize_autograd);
    m.impl("dequantize", &dequantize_autograd);
    m.impl("float_quantize_dequantize", &float_qdq_autograd);
    m.impl("quantize_dequantize_backward", &qdq_backward_autograd);
    m.impl("quantize_backward", &quantize_backward_autograd);
    m.impl("dequantize_backward", &dequantize_backward_autograd);
    m.impl("quantize_dequantize_backward_data", &qdq_backward_data_autograd);
    m.impl("quantize_dequantize_bits_backward", &bits_backward_autograd);
    m.impl("quantize_backward_data", &quantize_backward_data_autograd);
    m.impl("dequantize_backward_data", &dequantize_backward_data_autograd);
}

}  // namespace qsim
