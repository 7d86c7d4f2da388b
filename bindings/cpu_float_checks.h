// Argument checks shared by the CPU bindings of onnxruntime's float kernels (ortfloat_cpu.cpp,
// ortconv_cpu.cpp): each names the op and the argument in its error.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace qsim {

// `t` must be a float32 CPU tensor, e.g. check_float(x, "ort_gemm", "x").
inline void check_float(const at::Tensor & t, const char * op, const char * name) {
    TORCH_CHECK(t.scalar_type() == at::kFloat, op, ": ", name, " must be float32, got ",
                t.scalar_type());
    TORCH_CHECK(t.device().is_cpu(), op, ": ", name, " must be on the CPU, got ", t.device());
}

}  // namespace qsim
