// The float-format ops (minifloat and block-scaled fake casts, qsim/minifloat.h), written once for
// every device: argument checks that name the op and the argument, outputs, and registration with
// register_float_format_ops<Runner>(m) inside a device's TORCH_LIBRARY_IMPL block. A runner is a
// type with
//   static constexpr c10::DeviceType kDevice;
//   static void minifloat(const MinifloatArgs & a, float * y);   // y like a.q.x
//   static void block(const BlockArgs & a, float * y);           // y contiguous like a.x
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <optional>
#include <string>

#include "qdq_args.h"
#include "qsim/minifloat.h"

namespace qsim {

struct MinifloatArgs {
    QdqArgs        q;  // data and scales in memory order (the zero points are unused zeros)
    qsim_minifloat m;
};

// fp32 data with the block axis last, contiguous, seen as [rows, row_len].
struct BlockArgs {
    at::Tensor        x;
    int64_t           rows = 0, row_len = 0, axis = 0;
    qsim_block_format b{};
};

// `kind`: "ieee", "fn", "fnuz" or "finite" (qsim_float_kind).
MinifloatArgs check_minifloat_args(const at::Tensor & x, const at::Tensor & scale,
                                   int64_t exponent_bits, int64_t mantissa_bits,
                                   const std::string & kind, bool saturate,
                                   std::optional<int64_t> axis, std::optional<int64_t> block_size,
                                   c10::DeviceType device);

// `fmt`: mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, mxint8 or nvfp4; `tensor_scale`
// (one finite value > 0) is required for nvfp4 and refused otherwise.
BlockArgs check_block_args(const at::Tensor & x, const std::string & fmt, int64_t axis,
                           const std::optional<at::Tensor> & tensor_scale, c10::DeviceType device);

template <class Runner> struct FloatFormatEntryPoints {
    static at::Tensor minifloat(const at::Tensor & x, const at::Tensor & scale,
                                int64_t exponent_bits, int64_t mantissa_bits,
                                std::string_view kind, bool saturate, std::optional<int64_t> axis,
                                std::optional<int64_t> block_size) {
        const MinifloatArgs a = check_minifloat_args(x, scale, exponent_bits, mantissa_bits,
                                                     std::string(kind), saturate, axis,
                                                     block_size, Runner::kDevice);
        at::Tensor y = at::empty_like(a.q.x);
        Runner::minifloat(a, y.data_ptr<float>());
        return y.to(x.scalar_type());
    }

    static at::Tensor block(const at::Tensor & x, std::string_view fmt, int64_t axis,
                            const std::optional<at::Tensor> & tensor_scale) {
        const BlockArgs a = check_block_args(x, std::string(fmt), axis, tensor_scale, Runner::kDevice);
        at::Tensor y = at::empty_like(a.x);
        Runner::block(a, y.data_ptr<float>());
        const at::Tensor r = y.movedim(-1, a.axis);
        // the strides the fake implementation gives are empty_like(x)'s: x's own when x is dense
        if (x.scalar_type() == at::kFloat && x.is_non_overlapping_and_dense() &&
            r.strides() == x.strides()) {
            return r;
        }
        return at::empty_like(x).copy_(r);
    }
};

template <class Runner> void register_float_format_ops(torch::Library & m) {
    m.impl("minifloat_quantize_dequantize", &FloatFormatEntryPoints<Runner>::minifloat);
    m.impl("block_float_quantize_dequantize", &FloatFormatEntryPoints<Runner>::block);
}

}  // namespace qsim
