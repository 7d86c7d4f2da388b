// torchqsim._io: the pybind11 module over the plain C library (no torch headers here). It reports
// the kernel variants; the config and encodings readers join it as they are built.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "qsim/qdq.h"
#include "qsim/status.h"

namespace py = pybind11;

void qsim_register_config(py::module_ & m);  // io_config.cpp
void qsim_register_encodings(py::module_ & m);  // io_encodings.cpp

namespace {

// (name, supported) of every compiled kernel variant, reference first.
std::vector<std::pair<std::string, bool>> kernel_variants() {
    size_t n = 0;
    const qsim_qdq_kernels * v = qsim_qdq_variants(&n);
    std::vector<std::pair<std::string, bool>> out;
    for (size_t i = 0; i < n; i++) {
        out.emplace_back(v[i].name, v[i].supported() != 0);
    }
    return out;
}

}  // namespace

PYBIND11_MODULE(_io, m) {
    m.doc() = "torchqsim C library bindings (kernel variants, config and encodings IO)";
    m.def("kernel_variants", &kernel_variants,
          "(name, supported) for every compiled qdq kernel variant, reference first.");
    m.def("active_variant", [] { return std::string(qsim_qdq_best()->name); },
          "Name of the qdq kernel variant the ops dispatch to on this CPU.");
    m.def("status_string", [](int s) { return std::string(qsim_status_string(static_cast<qsim_status>(s))); },
          "Text of a qsim_status code.");
    qsim_register_config(m);
    qsim_register_encodings(m);
}
