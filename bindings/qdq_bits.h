// quantize_dequantize's eager straight-through node that keeps one bit a value instead of x
// (qdq_inplace.cpp defines it; qdq_autograd.cpp takes it). Same values and gradient as the
// node that keeps x, bit for bit.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace qsim {

// Whether a quantize_dequantize call takes qdq_bits_autograd: grad mode, x requiring grad, scale
// and zero point not (straight-through), per tensor, a dense float32 CPU tensor, nothing traced
// (no tensor subclass: torch.compile and export keep the node that traces into ops).
bool qdq_bits_applies(const at::Tensor & x, const at::Tensor & scale, const at::Tensor & zero_point,
                      const std::optional<int64_t> & axis, const std::optional<int64_t> & block);

// y = qdq(x) in x's layout and a node keeping x's clamped bits (qsim_run_mask_fn): its backward
// is dy with +0 where clamped, into dy when nothing else holds it.
at::Tensor qdq_bits_autograd(const at::Tensor & x, const at::Tensor & scale,
                             const at::Tensor & zero_point, int64_t qmin, int64_t qmax);

// quantize_dequantize_bits_backward through the dispatcher (qdq_autograd.cpp): traced nodes'
// backward.
at::Tensor bits_backward_call(const at::Tensor & grad, const at::Tensor & bits);

}  // namespace qsim
