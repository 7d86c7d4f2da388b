#include "qdq_args.h"

#include <c10/util/Exception.h>

#include <ATen/Dispatch.h>
#include <ATen/EmptyTensor.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/ops/empty_like.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qsim {
namespace {

bool is_float_data(at::ScalarType t) {
    return t == at::kFloat || t == at::kHalf || t == at::kBFloat16;
}

// First flat index where `bad` holds, or -1.
template <typename Pred>
int64_t find_first(const at::Tensor & t, Pred bad) {
    const float * p = t.data_ptr<float>();
    for (int64_t i = 0; i < t.numel(); i++) {
        if (bad(p[i])) {
            return i;
        }
    }
    return -1;
}

// A qparam tensor as contiguous fp32 on its device. A contiguous CPU one is converted here, not
// by .to(): that is a dispatch (~0.4 us), and for an integer zero point an allocation through the
// dispatcher, in every call of a per-tensor op that otherwise costs ~2 us. static_cast is the
// conversion .to() makes (round to nearest).
at::Tensor contiguous_fp32(const at::Tensor & t) {
    if (!t.is_cpu() || !t.is_contiguous()) {
        return t.to(at::kFloat).contiguous();
    }
    switch (t.scalar_type()) {
        case at::kFloat: return t;
        case at::kByte: case at::kChar: case at::kShort: case at::kInt: case at::kLong:
        case at::kDouble: case at::kHalf: case at::kBFloat16: break;
        default: return t.to(at::kFloat).contiguous();  // (float8, the wide unsigned dtypes)
    }
    at::Tensor f = at::detail::empty_cpu(t.sizes(), at::kFloat, false, t.suggest_memory_format());
    float *    d = f.data_ptr<float>();
    AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, t.scalar_type(), "contiguous_fp32", [&] {
        const scalar_t * s = t.const_data_ptr<scalar_t>();
        for (int64_t i = 0; i < t.numel(); i++) {
            d[i] = static_cast<float>(s[i]);
        }
    });
    return f;
}

// x as fp32 (or in its own dtype: `keep`) without copying a dense layout: strides as
// at::empty_like(x) gives them.
at::Tensor dense_data(const at::Tensor & x, bool keep = false) {
    const at::Tensor f = keep || x.scalar_type() == at::kFloat ? x : x.to(at::kFloat);
    return f.is_non_overlapping_and_dense() ? f : at::empty_like(f).copy_(f);
}

void check_grid(const char * op, int64_t qmin, int64_t qmax) {
    TORCH_CHECK_VALUE(qmin < qmax, op, ": qmin (", qmin, ") must be less than qmax (", qmax, ")");
    TORCH_CHECK_VALUE(qmin >= -65536 && qmax <= 65535 && qmax - qmin <= 65535, op,
                      ": the grid [qmin, qmax] = [", qmin, ", ", qmax,
                      "] is wider than 16 bits (at most 65536 levels within [-65536, 65535])");
}

at::Tensor check_scale(const char * op, const at::Tensor & scale) {
    TORCH_CHECK_TYPE(at::isFloatingType(scale.scalar_type()), op,
                     ": scale must be a floating tensor, got ", scale.scalar_type());
    TORCH_CHECK_VALUE(scale.numel() > 0, op, ": scale is empty");
    at::Tensor       s    = contiguous_fp32(scale);
    const at::Tensor host = s.is_cpu() ? s : s.cpu();
    const int64_t bad = find_first(host, [](float v) { return !(std::isfinite(v) && v > 0.0f); });
    TORCH_CHECK_VALUE(bad < 0, op, ": scale must be finite and > 0, but scale.flatten()[", bad,
                      "] = ", bad < 0 ? 0.0f : host.data_ptr<float>()[bad]);
    return s;
}

at::Tensor check_zero_point(const char * op, const at::Tensor & zp, const at::Tensor & scale,
                            int64_t qmin, int64_t qmax, bool check_range) {
    TORCH_CHECK_TYPE(at::isFloatingType(zp.scalar_type()) || at::isIntegralType(zp.scalar_type(), false),
                     op, ": zero_point must be an integer or floating tensor, got ", zp.scalar_type());
    TORCH_CHECK_VALUE(zp.sizes() == scale.sizes(), op, ": zero_point shape ", zp.sizes(),
                      " must equal scale shape ", scale.sizes());
    at::Tensor       z    = contiguous_fp32(zp);
    const at::Tensor host = z.is_cpu() ? z : z.cpu();
    const float lo = static_cast<float>(qmin), hi = static_cast<float>(qmax);
    const int64_t bad = find_first(host, [&](float v) {
        return !(std::isfinite(v) && v == std::nearbyint(v)) || (check_range && (v < lo || v > hi));
    });
    TORCH_CHECK_VALUE(bad < 0, op, ": zero_point must hold integers",
                      check_range ? " within [qmin, qmax]" : "", ", but zero_point.flatten()[", bad,
                      "] = ", bad < 0 ? 0.0f : host.data_ptr<float>()[bad]);
    return z;
}

// x's dims from the outermost in memory: by decreasing stride (x dense, so x.permute(order) is
// contiguous; size-1 dims, whose strides say nothing, may land anywhere).
std::vector<int64_t> memory_order(const at::Tensor & x) {
    std::vector<int64_t> order(x.dim());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return x.stride(a) > x.stride(b); });
    return order;
}

bool is_identity(const std::vector<int64_t> & order) {
    for (size_t i = 0; i < order.size(); i++) {
        if (order[i] != static_cast<int64_t>(i)) {
            return false;
        }
    }
    return true;
}

// The layout of dense x in memory order (`order` from memory_order(x)).
qsim_layout make_layout(const char * op, const at::Tensor & x, const at::Tensor & scale,
                        std::optional<int64_t> axis, std::optional<int64_t> block_size,
                        const std::vector<int64_t> & order) {
    if (!axis.has_value()) {
        TORCH_CHECK_VALUE(!block_size.has_value(), op, ": block_size needs an axis");
        TORCH_CHECK_VALUE(scale.numel() == 1, op, ": per-tensor quantization (axis=None) needs a "
                          "single scale, got scale of shape ", scale.sizes(),
                          "; pass axis= for per-channel");
        return qsim_layout_per_tensor(x.numel());
    }
    const int64_t dim = x.dim();
    const int64_t a   = *axis;
    TORCH_CHECK_INDEX(a >= -dim && a < dim && dim > 0, op, ": axis ", a,
                      " is out of range for x with ", dim, " dimensions");
    const int64_t ax    = a < 0 ? a + dim : a;
    const int64_t chans = x.size(ax);
    const auto    at    = std::find(order.begin(), order.end(), ax);
    int64_t       outer = 1, inner = 1;
    for (auto d = order.begin(); d != at; ++d) {
        outer *= x.size(*d);
    }
    for (auto d = at + 1; d != order.end(); ++d) {
        inner *= x.size(*d);
    }
    if (!block_size.has_value()) {
        TORCH_CHECK_VALUE(scale.dim() == 1 && scale.size(0) == chans, op,
                          ": per-channel scale must be 1-D of length x.shape[", ax, "] = ", chans,
                          ", got scale of shape ", scale.sizes());
        return qsim_layout_per_channel(outer, chans, inner);
    }
    const int64_t b = *block_size;
    TORCH_CHECK_VALUE(b > 0 && chans % b == 0, op, ": block_size ", b,
                      " must be positive and divide x.shape[", ax, "] = ", chans);
    auto expect = x.sizes().vec();
    expect[ax]  = chans / b;
    TORCH_CHECK_VALUE(scale.sizes() == at::IntArrayRef(expect), op,
                      ": blockwise scale must have shape ", at::IntArrayRef(expect),
                      " (x.shape with x.shape[axis] / block_size), got ", scale.sizes());
    return qsim_layout_blockwise(outer, chans, inner, b);
}

}  // namespace

QdqArgs check_qdq_args(const char * op, const char * x_name, const at::Tensor & x,
                       const at::Tensor & scale, const at::Tensor & zero_point, int64_t qmin,
                       int64_t qmax, std::optional<int64_t> axis,
                       std::optional<int64_t> block_size, bool check_zero_point_range,
                       c10::DeviceType device, bool keep_half) {
    TORCH_CHECK_TYPE(is_float_data(x.scalar_type()), op, ": ", x_name,
                     " must be float32, float16 or bfloat16, got ", x.scalar_type());
    const auto on_device = [&](const at::Tensor & t) {
        return t.device().type() == device && t.device().index() == x.device().index();
    };
    TORCH_CHECK_VALUE(on_device(x) && on_device(scale) && on_device(zero_point), op, ": ", x_name,
                      ", scale and zero_point must be on the same device (",
                      c10::DeviceTypeName(device), "), got ", x.device(), ", ", scale.device(),
                      ", ", zero_point.device());
    if (check_zero_point_range) {
        check_grid(op, qmin, qmax);
    }
    QdqArgs a;
    a.scale      = check_scale(op, scale);
    a.zero_point = check_zero_point(op, zero_point, scale, qmin, qmax, check_zero_point_range);
    a.x          = dense_data(x, keep_half);
    const std::vector<int64_t> order = memory_order(a.x);
    a.layout     = make_layout(op, a.x, scale, axis, block_size, order);
    if (block_size.has_value() && !is_identity(order)) {
        // blockwise qparams have x's dims: index them in the same memory order
        a.qparam_perm = order;
        a.scale       = a.scale.permute(order).contiguous();
        a.zero_point  = a.zero_point.permute(order).contiguous();
    }
    a.qmin = static_cast<float>(qmin);
    a.qmax = static_cast<float>(qmax);
    return a;
}

at::Tensor QdqArgs::to_qparam_shape(const at::Tensor & g) const {
    if (qparam_perm.empty()) {
        return g;
    }
    std::vector<int64_t> inverse(qparam_perm.size());
    for (size_t i = 0; i < qparam_perm.size(); i++) {
        inverse[qparam_perm[i]] = static_cast<int64_t>(i);
    }
    return g.permute(inverse).contiguous();
}

at::Tensor check_grad(const char * op, const at::Tensor & grad, const at::Tensor & x,
                      const at::Tensor & data) {
    TORCH_CHECK_TYPE(is_float_data(grad.scalar_type()), op,
                     ": grad must be float32, float16 or bfloat16, got ", grad.scalar_type());
    TORCH_CHECK_VALUE(grad.sizes() == x.sizes(), op, ": grad shape ", grad.sizes(),
                      " must equal the input shape ", x.sizes());
    TORCH_CHECK_VALUE(grad.device() == x.device(), op, ": grad must be on the input's device (",
                      x.device(), "), got ", grad.device());
    if (grad.scalar_type() == data.scalar_type() && grad.strides() == data.strides()) {
        return grad;
    }
    return at::empty_like(data).copy_(grad);
}

at::Tensor out_target(const char * op, const at::Tensor & out, const at::Tensor & x,
                      const QdqArgs & a, const at::Tensor & scale, const at::Tensor & zero_point,
                      const char * out_name) {
    TORCH_CHECK_VALUE(out.sizes() == x.sizes(), op, ": ", out_name, " shape ", out.sizes(),
                      " must equal the input shape ", x.sizes());
    TORCH_CHECK_TYPE(out.scalar_type() == x.scalar_type(), op, ": ", out_name, " dtype ", out.scalar_type(),
                     " must equal the input dtype ", x.scalar_type());
    TORCH_CHECK_VALUE(out.device() == x.device(), op, ": ", out_name, " must be on the input's device (",
                      x.device(), "), got ", out.device());
    TORCH_CHECK_VALUE(at::has_internal_overlap(out) != at::MemOverlap::Yes, op,
                      ": ", out_name, " has elements that share memory (an expanded tensor?); pass a tensor "
                      "with one element per location");
    for (const at::Tensor * t : { &x, &scale, &zero_point }) {
        // as torch's own out= ops: layouts too hard to compare (non-dense views) are not refused
        const at::MemOverlapStatus o = at::get_overlap_status(out, *t);
        TORCH_CHECK_VALUE(o != at::MemOverlapStatus::Partial && (t == &x || o != at::MemOverlapStatus::Full),
                          op, ": ", out_name, " overlaps ", t == &x ? "x" : t == &scale ? "scale" : "zero_point",
                          "; ", out_name, " may only be x itself (in place) or memory of its own");
    }
    if (out.scalar_type() == a.x.scalar_type() && out.strides() == a.x.strides()) {
        return out;
    }
    return at::empty_like(a.x);
}

at::Tensor check_float_cast(const at::Tensor & x, at::ScalarType dtype) {
    TORCH_CHECK_TYPE(is_float_data(x.scalar_type()),
                     "float_quantize_dequantize: x must be float32, float16 or bfloat16, got ",
                     x.scalar_type());
    TORCH_CHECK_VALUE(dtype == at::kHalf || dtype == at::kBFloat16,
                      "float_quantize_dequantize: dtype must be torch.float16 or torch.bfloat16, got ",
                      dtype);
    return dense_data(x);
}

}  // namespace qsim
