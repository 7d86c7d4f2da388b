// quantize_dequantize_: the qdq op written into x itself, for training forwards that own x (a
// module's fresh output, torchqsim.nn.base). Per tensor, fp32 / fp16 / bf16 (read and written in
// its dtype, computed in fp32 as the out-of-place op does), dense, on the CPU. Its autograd
// formula keeps one bit an element, the clamped bits of qsim_run_mask_fn in x's memory order,
// instead of x: the straight-through gradient is the incoming one with +0 where an element was
// clamped (bit for bit quantize_dequantize_backward_data), written into the incoming gradient
// when nothing else holds it (owned_gradient.h). Scale and zero point get no gradient: range
// learning needs x, and keeps the out-of-place op. Without autograd it is quantize_dequantize_out
// with out = x. relu=True (a grid that starts at 0, where qdq(x) == qdq(relu(x))) also sets the
// bits where x is not above 0 (qsim_run_mask_fn's gate 0): the gradient of a ReLU and then the
// quantizer, whose values the op writes without ReLU's pass or its kept result. Fake kernels in
// wrappers/ops.py. Traced (torch.compile: x a tensor subclass), the node keeps the bits as a
// graph tensor and its backward masks a copy of the gradient in place (TracedInPlaceFunction), so
// that tracing records both as ops.
//
// qdq_bits_autograd (qdq_bits.h) is the same node for quantize_dequantize's eager fp32
// straight-through calls that write a new tensor: y and the bits from one pass, the bits kept
// instead of x.
#include <ATen/Parallel.h>
#include <ATen/TensorSubclassLikeUtils.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/empty_strided.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <tuple>

#include "op_handle.h"
#include "owned_gradient.h"
#include "qdq_args.h"
#include "qdq_bits.h"

namespace qsim {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr char    kName[]     = "quantize_dequantize_";
constexpr char    kBitsName[] = "quantize_dequantize";  // the op QdqBitsFunction serves
constexpr int64_t kGrain      = 1 << 16;                // elements per task, as qdq_cpu.cpp

// The grid of x's per-tensor qparams, once x (a float dtype, dense) and they are checked, errors
// naming op `name`; with relu, that it starts at 0.
qsim_grid checked_grid(const char * name, const at::Tensor & x, const at::Tensor & scale,
                       const at::Tensor & zero_point, int64_t qmin, int64_t qmax, bool relu) {
    TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kHalf ||
                         x.scalar_type() == at::kBFloat16,
                     name, ": x must be float32, float16 or bfloat16, got ", x.scalar_type());
    TORCH_CHECK_VALUE(x.is_non_overlapping_and_dense(), name,
                      ": x must be dense (not a slice or an expanded tensor)");
    TORCH_CHECK_VALUE(scale.numel() == 1 && zero_point.numel() == 1, name,
                      ": per tensor only: scale and zero_point must hold one element each, got ",
                      scale.numel(), " and ", zero_point.numel());
    // keep_half: x is only checked here, never read as fp32 (no widened copy of 16-bit x)
    const QdqArgs a = check_qdq_args(name, "x", x, scale, zero_point, qmin, qmax, std::nullopt,
                                     std::nullopt, true, c10::DeviceType::CPU, true);
    const qsim_qparams p = a.qparams();
    TORCH_CHECK_VALUE(!relu || p.zero_point[0] == p.qmin, name,
                      ": relu=True needs a grid that starts at 0 (zero_point == qmin, where "
                      "qdq(x) == qdq(relu(x))), got zero_point ", p.zero_point[0], " and qmin ",
                      qmin);
    return { p.scale[0], p.zero_point[0], p.qmin, p.qmax };
}

// qsim_run_mask_fn's gate: ReLU's zero gradient, or none.
float gate_of(bool relu) {
    return relu ? 0.0f : -std::numeric_limits<float>::infinity();
}

// Bits of n elements per task: whole bytes, kGrain elements.
template <class F> void for_bytes(int64_t n, F f) {
    at::parallel_for(0, (n + 7) / 8, kGrain / 8, [&](int64_t b, int64_t e) {
        f(b, static_cast<size_t>(std::min(e * 8, n) - b * 8));
    });
}

// qdq of x's memory into y's (x itself, or a tensor of x's layout) and, when `clamped` is not
// null, x's bits in the same order.
void run(const at::Tensor & x, at::Tensor & y, qsim_grid g, uint8_t * clamped, float gate) {
    const qsim_qdq_kernels * k = qsim_qdq_best();
    if (x.scalar_type() != at::kFloat) {
        const qsim_half_kind kind = half_kind(x);
        const uint16_t *     xp   = half_bits<const uint16_t>(x);
        uint16_t *           yp   = half_bits<uint16_t>(y);
        for_bytes(x.numel(), [&](int64_t byte, size_t n) {
            if (clamped) {
                qsim_qdq_mask_h16(k, kind, n, xp + byte * 8, yp + byte * 8, clamped + byte, g,
                                  gate);
            } else {
                k->qdq_h16(kind, n, xp + byte * 8, yp + byte * 8, g);
            }
        });
        return;
    }
    const float * xp = x.data_ptr<float>();
    float *       yp = y.data_ptr<float>();
    for_bytes(x.numel(), [&](int64_t byte, size_t n) {
        if (clamped) {
            k->qdq_mask(n, xp + byte * 8, yp + byte * 8, clamped + byte, g, gate);
        } else {
            k->qdq(n, xp + byte * 8, yp + byte * 8, g);
        }
    });
}

at::Tensor empty_bits(const at::Tensor & x) {
    return at::empty({ (x.numel() + 7) / 8 }, x.options().dtype(at::kByte));
}

// dx = src with +0 where a bit of `clamped` is set, the bits in their (common) memory order; dx
// may be src itself.
void mask_gradient(const at::Tensor & src, at::Tensor & dx, const at::Tensor & clamped) {
    const uint8_t *          cp = clamped.data_ptr<uint8_t>();
    const qsim_qdq_kernels * k  = qsim_qdq_best();
    if (src.scalar_type() != at::kFloat) {
        const uint16_t * sp = half_bits<const uint16_t>(src);
        uint16_t *       dp = half_bits<uint16_t>(dx);
        for_bytes(dx.numel(), [&](int64_t byte, size_t n) {
            k->qdq_mask_backward_h16(n, cp + byte, sp + byte * 8, dp + byte * 8);
        });
        return;
    }
    const float * sp = src.data_ptr<float>();
    float *       dp = dx.data_ptr<float>();
    for_bytes(dx.numel(), [&](int64_t byte, size_t n) {
        k->qdq_mask_backward(n, cp + byte, sp + byte * 8, dp + byte * 8);
    });
}

// dy with +0 where a bit of `clamped` is set, the bits in the memory order of a tensor of `sizes`
// and `strides` (the op's x): into dy itself when autograd handed over a gradient nothing else
// holds and laid out so; other gradients (e.g. of a permuted view) are read in that layout.
// `op` names the forward op in errors.
at::Tensor masked_gradient(at::Tensor & dy, const at::Tensor & clamped, at::IntArrayRef sizes,
                           at::IntArrayRef strides, at::ScalarType dtype, const std::string & op) {
    TORCH_CHECK(dy.sizes() == sizes && dy.scalar_type() == dtype, op,
                ": the gradient must be ", dtype, " of x's shape, got ", dy.scalar_type(), " ",
                dy.sizes());
    const bool laid_out = dy.strides() == strides && dy.is_non_overlapping_and_dense();
    const bool owned    = laid_out && owned_gradient(dy);  // before `src` takes a reference
    at::Tensor src      = laid_out ? dy : at::empty_strided(sizes, strides, dy.options()).copy_(dy);
    at::Tensor dx       = !laid_out || owned ? src : at::empty_like(src);
    mask_gradient(src, dx, clamped);
    return dx;
}

void qdq_inplace_cpu(at::Tensor & x, const at::Tensor & scale, const at::Tensor & zero_point,
                     int64_t qmin, int64_t qmax, bool relu) {
    run(x, x, checked_grid(kName, x, scale, zero_point, qmin, qmax, relu), nullptr,
        gate_of(relu));
}

at::Tensor qdq_clamped_cpu(at::Tensor & x, const at::Tensor & scale,
                           const at::Tensor & zero_point, int64_t qmin, int64_t qmax, bool relu) {
    const qsim_grid g       = checked_grid(kName, x, scale, zero_point, qmin, qmax, relu);
    at::Tensor      clamped = empty_bits(x);
    run(x, x, g, clamped.data_ptr<uint8_t>(), gate_of(relu));
    return clamped;
}

constexpr char kTracedBits[]    = "quantize_dequantize_bits";
constexpr char kTracedBitsBwd[] = "quantize_dequantize_bits_backward";
constexpr char kTracedBitsBwdInPlace[] = "quantize_dequantize_bits_backward_";

std::tuple<at::Tensor, at::Tensor> qdq_bits_cpu(const at::Tensor & x, const at::Tensor & scale,
                                                const at::Tensor & zero_point, int64_t qmin,
                                                int64_t qmax) {
    const qsim_grid g = checked_grid(kTracedBits, x, scale, zero_point, qmin, qmax, false);
    TORCH_CHECK_VALUE(x.is_contiguous(), kTracedBits, ": x must be contiguous (its bits are in "
                      "element order), got strides ", x.strides());
    at::Tensor y = at::empty_like(x), bits = empty_bits(x);
    run(x, y, g, bits.data_ptr<uint8_t>(), gate_of(false));
    return { y, bits };
}

// The checks of the bits backward ops (named `name`): a float gradient, and the bits of x of its
// shape.
void check_bits_backward(const char * name, const at::Tensor & grad, const at::Tensor & bits) {
    TORCH_CHECK_TYPE(grad.scalar_type() == at::kFloat || grad.scalar_type() == at::kHalf ||
                         grad.scalar_type() == at::kBFloat16,
                     name, ": grad must be float32, float16 or bfloat16, got ", grad.scalar_type());
    TORCH_CHECK_VALUE(bits.scalar_type() == at::kByte && bits.dim() == 1 && bits.is_contiguous() &&
                          bits.device().is_cpu() && bits.numel() == (grad.numel() + 7) / 8,
                      name, ": bits must be the contiguous uint8 CPU tensor of ",
                      (grad.numel() + 7) / 8, " bytes quantize_dequantize_bits gave for x of ",
                      "grad's shape ", grad.sizes(), ", got ", bits.scalar_type(), " ",
                      bits.sizes());
}

at::Tensor qdq_bits_backward_cpu(const at::Tensor & grad, const at::Tensor & bits) {
    check_bits_backward(kTracedBitsBwd, grad, bits);
    // contiguous: a second reference to grad (never written) or a copy of its own
    at::Tensor dy = grad.contiguous();
    return masked_gradient(dy, bits, grad.sizes(), dy.strides(), grad.scalar_type(),
                           kTracedBitsBwd);
}

void qdq_bits_backward_inplace_cpu(at::Tensor & grad, const at::Tensor & bits) {
    check_bits_backward(kTracedBitsBwdInPlace, grad, bits);
    TORCH_CHECK_VALUE(grad.is_contiguous(), kTracedBitsBwdInPlace,
                      ": grad must be contiguous (the bits are in element order), got strides ",
                      grad.strides());
    mask_gradient(grad, grad, bits);
}

// masked_gradient as a node when the backward builds a graph (create_graph=True): the first-order
// gradient as usual, and an error naming the op if it is differentiated again.
struct MaskedGradientFunction : torch::autograd::Function<MaskedGradientFunction> {
    static at::Tensor forward(AutogradContext * ctx, at::Tensor dy, const at::Tensor & clamped,
                              std::vector<int64_t> sizes, std::vector<int64_t> strides,
                              at::ScalarType dtype, const std::string & op) {
        at::AutoDispatchBelowADInplaceOrView guard;
        ctx->saved_data["op"] = op;
        return masked_gradient(dy, clamped, sizes, strides, dtype, op);
    }

    static variable_list backward(AutogradContext * ctx, variable_list) {
        TORCH_CHECK(false, "torch.ops.qsim.", ctx->saved_data.at("op").toStringRef(),
                    "'s gradient is not differentiable: double backward through a torchqsim "
                    "quantizer (differentiating its gradient, e.g. after "
                    "torch.autograd.grad(..., create_graph=True)) is not supported");
        return {};
    }
};

// The bits of x, and its sizes, strides and dtype, kept by a node of the op named `op` for
// bits_backward.
void save_bits(AutogradContext * ctx, const at::Tensor & clamped, const at::Tensor & x,
               const char * op) {
    ctx->saved_data["op"]      = std::string(op);
    ctx->saved_data["clamped"] = clamped;
    ctx->saved_data["sizes"]   = x.sizes();
    ctx->saved_data["strides"] = x.strides();
    ctx->saved_data["dtype"]   = x.scalar_type();
}

// The straight-through gradient from what save_bits kept.
at::Tensor bits_backward(AutogradContext * ctx, at::Tensor & dy) {
    const auto &     d       = ctx->saved_data;
    const at::Tensor clamped = d.at("clamped").toTensor();
    const auto sizes = d.at("sizes").toIntVector(), strides = d.at("strides").toIntVector();
    const at::ScalarType dtype = d.at("dtype").toScalarType();
    const std::string &  op    = d.at("op").toStringRef();
    return at::GradMode::is_enabled()
               ? MaskedGradientFunction::apply(dy, clamped, sizes, strides, dtype, op)
               : masked_gradient(dy, clamped, sizes, strides, dtype, op);
}

// quantize_dequantize_clamped_ on x below autograd (the nodes' forward): x's clamped bits.
at::Tensor clamped_call(at::Tensor & x, const at::Tensor & scale, const at::Tensor & zero_point,
                        int64_t qmin, int64_t qmax, bool relu) {
    static const auto op = handle<at::Tensor(at::Tensor &, const at::Tensor &, const at::Tensor &,
                                             int64_t, int64_t, bool)>(
        "qsim::quantize_dequantize_clamped_");
    at::AutoDispatchBelowADInplaceOrView guard;
    return op.call(x, scale, zero_point, qmin, qmax, relu);
}

struct QdqInPlaceFunction : torch::autograd::Function<QdqInPlaceFunction> {
    static at::Tensor forward(AutogradContext * ctx, at::Tensor x, const at::Tensor & scale,
                              const at::Tensor & zero_point, int64_t qmin, int64_t qmax, bool relu) {
        const at::Tensor clamped = clamped_call(x, scale, zero_point, qmin, qmax, relu);
        ctx->mark_dirty({ x });
        save_bits(ctx, clamped, x, kName);
        return x;
    }

    // `grads` by reference: autograd moves the incoming gradient in (see qdq_autograd.cpp).
    static variable_list backward(AutogradContext * ctx, variable_list & grads) {
        return { bits_backward(ctx, grads[0]), at::Tensor(), at::Tensor(), at::Tensor(),
                 at::Tensor(), at::Tensor() };
    }
};

// QdqInPlaceFunction in a traced graph (torch.compile; x a tensor subclass): the bits kept as a
// saved tensor and the backward as the quantize_dequantize_bits_backward ops, so that both trace
// into the graph (the eager node's backward reads data). The bits are in element order: a
// non-contiguous x is computed in a contiguous copy, then written back.
struct TracedInPlaceFunction : torch::autograd::Function<TracedInPlaceFunction> {
    static at::Tensor forward(AutogradContext * ctx, at::Tensor x, const at::Tensor & scale,
                              const at::Tensor & zero_point, int64_t qmin, int64_t qmax, bool relu) {
        at::Tensor       dense   = x.contiguous();
        const at::Tensor clamped = clamped_call(dense, scale, zero_point, qmin, qmax, relu);
        if (!dense.is_same(x)) {
            at::AutoDispatchBelowADInplaceOrView guard;
            x.copy_(dense);
        }
        ctx->mark_dirty({ x });
        ctx->save_for_backward({ clamped });
        return x;
    }

    // Into a contiguous copy of the gradient, a buffer of inductor's plan (the op would allocate
    // its output); with create_graph, the op that refuses double backward.
    static variable_list backward(AutogradContext * ctx, variable_list grads) {
        static const auto op = handle<void(at::Tensor &, const at::Tensor &)>(
            "qsim::quantize_dequantize_bits_backward_");
        const at::Tensor bits = ctx->get_saved_variables()[0];
        at::Tensor       dx;
        if (at::GradMode::is_enabled()) {
            dx = bits_backward_call(grads[0], bits);
        } else {
            dx = grads[0].clone(at::MemoryFormat::Contiguous);
            op.call(dx, bits);
        }
        return { dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor() };
    }
};

// quantize_dequantize's straight-through node when it writes a new tensor (qdq_bits.h).
struct QdqBitsFunction : torch::autograd::Function<QdqBitsFunction> {
    static at::Tensor forward(AutogradContext * ctx, const at::Tensor & x, const at::Tensor & scale,
                              const at::Tensor & zero_point, int64_t qmin, int64_t qmax) {
        at::AutoDispatchBelowADInplaceOrView guard;
        const qsim_grid g = checked_grid(kBitsName, x, scale, zero_point, qmin, qmax, false);
        at::Tensor      y       = at::empty_like(x);
        at::Tensor      clamped = empty_bits(x);
        run(x, y, g, clamped.data_ptr<uint8_t>(), gate_of(false));
        save_bits(ctx, clamped, x, kBitsName);
        return y;
    }

    static variable_list backward(AutogradContext * ctx, variable_list & grads) {
        return { bits_backward(ctx, grads[0]), at::Tensor(), at::Tensor(), at::Tensor(),
                 at::Tensor() };
    }
};

// x's history is rebased onto the node (mark_dirty): the op returns nothing, as torch.library
// asks of a custom op that mutates its input.
void qdq_inplace_autograd(at::Tensor & x, const at::Tensor & scale, const at::Tensor & zero_point,
                          int64_t qmin, int64_t qmax, bool relu) {
    if (!at::GradMode::is_enabled() ||
        !(x.requires_grad() || scale.requires_grad() || zero_point.requires_grad())) {
        static const auto op = handle<void(at::Tensor &, const at::Tensor &, const at::Tensor &,
                                           int64_t, int64_t, bool)>("qsim::quantize_dequantize_");
        {
            at::AutoDispatchBelowADInplaceOrView guard;
            op.call(x, scale, zero_point, qmin, qmax, relu);
        }
        torch::autograd::increment_version(x);
        return;
    }
    TORCH_CHECK_VALUE(!scale.requires_grad() && !zero_point.requires_grad(), kName,
                      ": scale and zero_point must not require grad (their gradients need x, "
                      "which this op overwrites); use quantize_dequantize");
    if (at::isTensorSubclassLike(x)) {
        TracedInPlaceFunction::apply(x, scale, zero_point, qmin, qmax, relu);
        return;
    }
    QdqInPlaceFunction::apply(x, scale, zero_point, qmin, qmax, relu);
}

}  // namespace

bool qdq_bits_applies(const at::Tensor & x, const at::Tensor & scale, const at::Tensor & zero_point,
                      const std::optional<int64_t> & axis, const std::optional<int64_t> & block) {
    return at::GradMode::is_enabled() && x.requires_grad() && !scale.requires_grad() &&
           !zero_point.requires_grad() && !axis && !block && x.scalar_type() == at::kFloat &&
           x.device().is_cpu() && scale.numel() == 1 && zero_point.numel() == 1 &&
           !at::isTensorSubclassLike(x) && !at::isTensorSubclassLike(scale) &&
           !at::isTensorSubclassLike(zero_point) && x.layout() == at::kStrided &&
           x.is_non_overlapping_and_dense();
}

at::Tensor qdq_bits_autograd(const at::Tensor & x, const at::Tensor & scale,
                             const at::Tensor & zero_point, int64_t qmin, int64_t qmax) {
    return QdqBitsFunction::apply(x, scale, zero_point, qmin, qmax);
}

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("quantize_dequantize_", qdq_inplace_cpu);
    m.impl("quantize_dequantize_clamped_", qdq_clamped_cpu);
    m.impl("quantize_dequantize_bits", qdq_bits_cpu);
    m.impl("quantize_dequantize_bits_backward", qdq_bits_backward_cpu);
    m.impl("quantize_dequantize_bits_backward_", qdq_bits_backward_inplace_cpu);
}

TORCH_LIBRARY_IMPL(qsim, AutogradCPU, m) {
    m.impl("quantize_dequantize_", qdq_inplace_autograd);
}

}  // namespace qsim
