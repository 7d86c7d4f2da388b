// torchqsim._io: the pybind11 module over the plain C library (no torch headers here). It reports
// the kernel variants; the config and encodings readers join it as they are built.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "qsim/analyzers.h"
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

// (qmin, qmax) of a grid kind (qsim_grid_kind) at `bitwidth`, from qsim_grid_bounds.
std::pair<int, int> grid_bounds(int kind, int bitwidth) {
    int32_t qmin = 0, qmax = 0;
    if (kind < QSIM_GRID_SYMMETRIC || kind > QSIM_GRID_ASYMMETRIC ||
        qsim_grid_bounds(static_cast<qsim_grid_kind>(kind), bitwidth, &qmin, &qmax) != QSIM_SUCCESS) {
        throw py::value_error("grid_bounds: bitwidth must be an integer from 2 to 16 and kind a "
                              "qsim_grid_kind, got bitwidth " + std::to_string(bitwidth) +
                              ", kind " + std::to_string(kind));
    }
    return {qmin, qmax};
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
    py::dict kinds;  // the C enum qsim_grid_kind, by name
    kinds["symmetric"] = static_cast<int>(QSIM_GRID_SYMMETRIC);
    kinds["strict_symmetric"] = static_cast<int>(QSIM_GRID_STRICT_SYMMETRIC);
    kinds["unsigned_symmetric"] = static_cast<int>(QSIM_GRID_UNSIGNED_SYMMETRIC);
    kinds["asymmetric"] = static_cast<int>(QSIM_GRID_ASYMMETRIC);
    m.attr("GRID_KINDS") = kinds;
    m.def("grid_bounds", &grid_bounds, py::arg("kind"), py::arg("bitwidth"),
          "(qmin, qmax) of grid kind `kind` (a value of GRID_KINDS, the C enum qsim_grid_kind)\n"
          "at `bitwidth` (2..16), from qsim_grid_bounds. ValueError otherwise.");
    qsim_register_config(m);
    qsim_register_encodings(m);
}
