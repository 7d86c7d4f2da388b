// Argument checks of the float-format ops (float_formats.h) and their CPU implementation: the C
// kernels of qsim/minifloat.h on torch's thread pool.
#include "float_formats.h"

#include <ATen/Parallel.h>
#include <ATen/ops/zeros_like.h>
#include <c10/util/Exception.h>

#include <cmath>

namespace qsim {

MinifloatArgs check_minifloat_args(const at::Tensor & x, const at::Tensor & scale,
                                   int64_t exponent_bits, int64_t mantissa_bits,
                                   const std::string & kind, bool saturate,
                                   std::optional<int64_t> axis, std::optional<int64_t> block_size,
                                   c10::DeviceType device) {
    const char * op = "minifloat_quantize_dequantize";
    const qsim_float_kind k = kind == "ieee" ? QSIM_FLOAT_IEEE
                              : kind == "fn"   ? QSIM_FLOAT_FN
                              : kind == "fnuz" ? QSIM_FLOAT_FNUZ
                                               : QSIM_FLOAT_FINITE;
    TORCH_CHECK_VALUE(kind == "ieee" || kind == "fn" || kind == "fnuz" || kind == "finite", op,
                      ": kind must be 'ieee', 'fn', 'fnuz' or 'finite', got '", kind, "'");
    TORCH_CHECK_VALUE(exponent_bits >= 1 && exponent_bits <= 8, op,
                      ": exponent_bits must be in 1..8, got ", exponent_bits);
    TORCH_CHECK_VALUE(mantissa_bits >= 0 && mantissa_bits <= 23, op,
                      ": mantissa_bits must be in 0..23, got ", mantissa_bits);
    const qsim_float_format f = { static_cast<int>(exponent_bits), static_cast<int>(mantissa_bits),
                                  k, saturate ? 1 : 0 };
    MinifloatArgs a;
    TORCH_CHECK_VALUE(qsim_minifloat_init(&f, &a.m) == QSIM_SUCCESS, op, ": exponent_bits=",
                      exponent_bits, ", mantissa_bits=", mantissa_bits, " with kind '", kind,
                      "' has no normal value, or a largest value beyond float32's");
    a.q = check_qdq_args(op, "x", x, scale, at::zeros_like(scale, scale.options().dtype(at::kInt)),
                         0, 1, axis, block_size, false, device);
    return a;
}

namespace {

// fmt -> block format (the element conventions of OCP MX v1.0 and NVFP4).
qsim_block_format block_format(const std::string & fmt, float tensor_scale) {
    struct Mx {
        const char *      name;
        qsim_block_kind   kind;
        qsim_float_format elem;
    };
    static const Mx mx[] = {
        { "mxfp8_e4m3", QSIM_BLOCK_MX_FLOAT, { 4, 3, QSIM_FLOAT_FN, 1 } },
        { "mxfp8_e5m2", QSIM_BLOCK_MX_FLOAT, { 5, 2, QSIM_FLOAT_IEEE, 1 } },
        { "mxfp6_e3m2", QSIM_BLOCK_MX_FLOAT, { 3, 2, QSIM_FLOAT_FINITE, 1 } },
        { "mxfp6_e2m3", QSIM_BLOCK_MX_FLOAT, { 2, 3, QSIM_FLOAT_FINITE, 1 } },
        { "mxfp4", QSIM_BLOCK_MX_FLOAT, { 2, 1, QSIM_FLOAT_FINITE, 1 } },
        { "mxint8", QSIM_BLOCK_MX_INT8, { 0, 0, QSIM_FLOAT_FINITE, 1 } },
    };
    qsim_block_format b{};
    if (fmt == "nvfp4") {
        qsim_block_format_nvfp4(tensor_scale, &b);
        return b;
    }
    for (const Mx & e : mx) {
        if (fmt == e.name) {
            qsim_block_format_mx(e.kind, &e.elem, &b);
            return b;
        }
    }
    TORCH_CHECK_VALUE(false, "block_float_quantize_dequantize: fmt must be one of mxfp8_e4m3, "
                      "mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, mxint8, nvfp4; got '", fmt, "'");
}

}  // namespace

BlockArgs check_block_args(const at::Tensor & x, const std::string & fmt, int64_t axis,
                           const std::optional<at::Tensor> & tensor_scale, c10::DeviceType device) {
    const char * op = "block_float_quantize_dequantize";
    TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kHalf ||
                     x.scalar_type() == at::kBFloat16,
                     op, ": x must be float32, float16 or bfloat16, got ", x.scalar_type());
    TORCH_CHECK_VALUE(x.device().type() == device, op, ": x must be on ",
                      c10::DeviceTypeName(device), ", got ", x.device());
    TORCH_CHECK_INDEX(x.dim() > 0 && axis >= -x.dim() && axis < x.dim(), op, ": axis ", axis,
                      " is out of range for x with ", x.dim(), " dims");
    float d = 1.0f;
    if (fmt == "nvfp4") {
        TORCH_CHECK_VALUE(tensor_scale.has_value() && tensor_scale->numel() == 1, op,
                          ": nvfp4 needs tensor_scale, one value");
        d = tensor_scale->to(at::kFloat).cpu().item<float>();
        TORCH_CHECK_VALUE(std::isfinite(d) && d > 0.0f, op,
                          ": tensor_scale must be finite and > 0, got ", d);
    } else {
        TORCH_CHECK_VALUE(!tensor_scale.has_value(), op, ": tensor_scale is for nvfp4 only, not '",
                          fmt, "'");
    }
    BlockArgs a;
    a.b       = block_format(fmt, d);
    a.axis    = axis < 0 ? axis + x.dim() : axis;
    a.x       = x.to(at::kFloat).movedim(a.axis, -1).contiguous();
    a.row_len = a.x.size(-1);
    a.rows    = a.row_len ? a.x.numel() / a.row_len : 0;
    return a;
}

namespace {

constexpr int64_t kGrain = 1 << 16;  // elements per task, as for the qdq ops (qdq_cpu.cpp)

struct CpuRunner {
    static constexpr c10::DeviceType kDevice = c10::DeviceType::CPU;

    static void minifloat(const MinifloatArgs & a, float * y) {
        const float * xp = a.q.x.data_ptr<float>();
        const float * sp = a.q.scale.data_ptr<float>();
        at::parallel_for(0, a.q.x.numel(), kGrain, [&](int64_t b, int64_t e) {
            qsim_minifloat_forward_f32(nullptr, &a.m, &a.q.layout, sp, xp, y, b, e);
        });
    }

    static void block(const BlockArgs & a, float * y) {
        const float * xp = a.x.data_ptr<float>();
        at::parallel_for(0, a.rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, a.row_len)),
                         [&](int64_t b, int64_t e) {
                             qsim_block_forward_f32(nullptr, &a.b, a.row_len, xp, y, b, e);
                         });
    }
};

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    register_float_format_ops<CpuRunner>(m);
}

}  // namespace qsim
