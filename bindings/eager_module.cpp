// torchqsim._eager: direct Python entries to registered qsim ops, for the wrappers' plain eager
// calls. Each calls its op through the dispatcher with a typed handle (op_handle.h), so autograd,
// dispatch modes, the profiler and version counters see the same call as torch.ops.qsim.<op>;
// what it skips is torch.ops' boxing of the Python arguments through the op's schema (~1.5 us a
// call in a loop, ~5 us inside a model's forward, where that code runs cold). A traced or
// compiled caller never sees these calls: callers use them only where
// torchqsim.quantization._tracing.plain_eager() holds, and keep torch.ops.qsim elsewhere.
#include <torch/extension.h>

#include "op_handle.h"

namespace {

using QdqInPlace = void(at::Tensor &, const at::Tensor &, const at::Tensor &, int64_t, int64_t,
                        bool);

// torch.ops.qsim.quantize_dequantize_(x, scale, zero_point, qmin, qmax, relu): x written in place.
void quantize_dequantize_(at::Tensor x, const at::Tensor & scale, const at::Tensor & zero_point,
                          int64_t qmin, int64_t qmax, bool relu) {
    static const auto op = qsim::handle<QdqInPlace>("qsim::quantize_dequantize_");
    op.call(x, scale, zero_point, qmin, qmax, relu);
}

}  // namespace

PYBIND11_MODULE(_eager, m) {
    m.doc() = "Direct entries to qsim ops for plain eager calls (bindings/eager_module.cpp).";
    m.def("quantize_dequantize_", &quantize_dequantize_, py::arg("x"), py::arg("scale"),
          py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"), py::arg("relu") = false,
          "torch.ops.qsim.quantize_dequantize_ without torch.ops' argument boxing; returns None.");
}
