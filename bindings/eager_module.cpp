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

// (the signature of the op's kernels, which a typed handle must match: stats_cpu.cpp)
using MinmaxFold = void(const at::Tensor &, const at::Tensor &, const at::Tensor &,
                        const at::Tensor &, std::optional<int64_t>);

// torch.ops.qsim.minmax_fold(x, min, max, nonfinite, axis): the statistics updated in place.
void minmax_fold(const at::Tensor & x, const at::Tensor & min, const at::Tensor & max,
                 const at::Tensor & nonfinite, std::optional<int64_t> axis) {
    static const auto op = qsim::handle<MinmaxFold>("qsim::minmax_fold");
    op.call(x, min, max, nonfinite, axis);
}

using Four      = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using TfeBatch  = Four(const at::Tensor &, std::optional<int64_t>, at::Tensor &, at::Tensor &,
                      at::Tensor &, at::Tensor &, at::Tensor &, at::Tensor &, at::Tensor &,
                      at::Tensor &);

// torch.ops.qsim.tfe_batch(x, axis, min, max, nonfinite, counts, edges, ranges, limits, batches)
// -> (done, lows, highs, refused): the statistics updated in place.
Four tfe_batch(const at::Tensor & x, std::optional<int64_t> axis, at::Tensor min, at::Tensor max,
               at::Tensor nonfinite, at::Tensor counts, at::Tensor edges, at::Tensor ranges,
               at::Tensor limits, at::Tensor batches) {
    static const auto op = qsim::handle<TfeBatch>("qsim::tfe_batch");
    return op.call(x, axis, min, max, nonfinite, counts, edges, ranges, limits, batches);
}

}  // namespace

PYBIND11_MODULE(_eager, m) {
    m.doc() = "Direct entries to qsim ops for plain eager calls (bindings/eager_module.cpp).";
    // The ops run without the GIL, as torch.ops runs them (other Python threads go on meanwhile).
    const auto nogil = py::call_guard<py::gil_scoped_release>();
    m.def("quantize_dequantize_", &quantize_dequantize_, py::arg("x"), py::arg("scale"),
          py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"), py::arg("relu") = false, nogil,
          "torch.ops.qsim.quantize_dequantize_ without torch.ops' argument boxing; returns None.");
    m.def("minmax_fold", &minmax_fold, py::arg("x"), py::arg("min"), py::arg("max"),
          py::arg("nonfinite"), py::arg("axis") = py::none(), nogil,
          "torch.ops.qsim.minmax_fold without torch.ops' argument boxing; returns None.");
    m.def("tfe_batch", &tfe_batch, py::arg("x"), py::arg("axis"), py::arg("min"), py::arg("max"),
          py::arg("nonfinite"), py::arg("counts"), py::arg("edges"), py::arg("ranges"),
          py::arg("limits"), py::arg("batches"), nogil,
          "torch.ops.qsim.tfe_batch without torch.ops' argument boxing.");
}
