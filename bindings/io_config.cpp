// torchqsim._io: the quantsim config reader (qsim/config.h) as parse_config / load_config, which
// return the config as the frozen dataclasses of torchqsim.quantsim.config_types (wrappers/quantsim/config_types.py),
// built here field by field from the C view, and the ConfigError they raise.
//
// An unset flag (QSIM_OPT_UNSET) becomes None, distinct from False; "defaults" arrives resolved
// (qsim_config_defaults); a duplicated key appears once (at its first place) with its last value.
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "io_common.h"
#include "qsim/config.h"

namespace py = pybind11;

namespace {

PyObject * g_config_error = nullptr;  // torchqsim._io.ConfigError (owned by the module)

using qsim_io::text;
using namespace pybind11::literals;

// The dataclass `name` of torchqsim.quantsim.config_types.
py::object type(const char * name) {
    return py::module_::import("torchqsim.quantsim.config_types").attr(name);
}

py::object opt(qsim_opt_bool v) {
    return v == QSIM_OPT_UNSET ? py::none() : py::object(py::bool_(v == QSIM_OPT_TRUE));
}

// An optional positive integer of the config (0: unset -> None).
py::object positive(int v) {
    return v > 0 ? py::object(py::int_(v)) : py::none();
}

py::object precision(const qsim_config_precision & p) {
    return type("Precision")(p.bitwidth, p.dtype == QSIM_DTYPE_FORMAT  ? p.format
                                         : p.dtype == QSIM_DTYPE_FLOAT ? "float"
                                                                       : "int");
}

py::tuple kernels(const qsim_config_kernel * k, size_t n) {
    py::tuple out(n);
    for (size_t i = 0; i < n; i++) {
        out[i] = type("Kernel")(precision(k[i].activation),
                                k[i].param.bitwidth != 0 ? precision(k[i].param) : py::none());
    }
    return out;
}

py::dict params(const qsim_config_param * p, size_t n) {
    py::dict out;
    for (size_t i = 0; i < n; i++) {
        out[text(p[i].name)] = type("ParamSettings")(opt(p[i].is_quantized), opt(p[i].is_symmetric),
                                                     positive(p[i].block_size),
                                                     positive(p[i].decompressed_bw));
    }
    return out;
}

py::object op_type(const qsim_config_op_type & o) {
    py::object constraints = py::none();
    if (o.has_encoding_constraints) {
        constraints = type("EncodingConstraints")(
            o.encoding_min, o.has_encoding_max ? py::object(py::float_(o.encoding_max)) : py::none());
    }
    return type("OpTypeSettings")(
        "is_input_quantized"_a = opt(o.is_input_quantized),
        "is_output_quantized"_a = opt(o.is_output_quantized), "is_symmetric"_a = opt(o.is_symmetric),
        "per_channel_quantization"_a = opt(o.per_channel_quantization),
        "params"_a = params(o.params, o.n_params),
        "supported_kernels"_a = kernels(o.supported_kernels, o.n_supported_kernels),
        "encoding_constraints"_a = constraints);
}

py::object defaults(const qsim_config_defaults & s) {
    return type("Defaults")(
        "ops_is_input_quantized"_a = py::bool_(s.ops_is_input_quantized),
        "ops_is_output_quantized"_a = py::bool_(s.ops_is_output_quantized),
        "ops_is_symmetric"_a = py::bool_(s.ops_is_symmetric),
        "params"_a = type("ParamSettings")(py::bool_(s.params_is_quantized),
                                           py::bool_(s.params_is_symmetric),
                                           positive(s.params_block_size),
                                           positive(s.params_decompressed_bw)),
        "strict_symmetric"_a = py::bool_(s.strict_symmetric),
        "unsigned_symmetric"_a = py::bool_(s.unsigned_symmetric),
        "per_channel_quantization"_a = py::bool_(s.per_channel_quantization),
        "supported_kernels"_a = kernels(s.supported_kernels, s.n_supported_kernels),
        "hw_version"_a = text(s.hw_version));
}

py::tuple strings(const char * const * names, size_t n) {
    py::tuple out(n);
    for (size_t i = 0; i < n; i++) {
        out[i] = text(names[i]);
    }
    return out;
}

py::object to_config(const qsim_config * cfg) {
    const qsim_config_view & v = *qsim_config_get(cfg);
    py::dict ops;
    for (size_t i = 0; i < v.n_op_types; i++) {
        ops[text(v.op_types[i].name)] = op_type(v.op_types[i]);
    }
    py::tuple groups(v.n_supergroups);
    for (size_t i = 0; i < v.n_supergroups; i++) {
        groups[i] = type("Supergroup")(strings(v.supergroups[i].ops, v.supergroups[i].n_ops));
    }
    return type("QuantsimConfig")(
        "defaults"_a = defaults(v.defaults), "params"_a = params(v.params, v.n_params),
        "op_type"_a = ops, "supergroups"_a = groups,
        "model_input_is_input_quantized"_a = opt(v.model_input_is_input_quantized),
        "model_output_is_output_quantized"_a = opt(v.model_output_is_output_quantized),
        "supergroup_pass_list"_a = strings(v.supergroup_pass_list, v.n_supergroup_pass_list));
}

using config_ptr = std::unique_ptr<qsim_config, decltype(&qsim_config_free)>;

py::object parse_config(const std::string & json) {
    qsim_config * cfg = nullptr;
    qsim_error err;
    if (qsim_config_parse(json.data(), json.size(), &cfg, &err) != QSIM_SUCCESS) {
        qsim_io::raise_error(g_config_error, err);
    }
    config_ptr owned(cfg, qsim_config_free);
    const qsim_io::GcPause pause;
    return to_config(cfg);
}

py::object load_config(const py::object & path) {
    const std::string p = qsim_io::file_path(path, "path");
    qsim_config * cfg = nullptr;
    qsim_error err;
    if (qsim_config_load(p.c_str(), &cfg, &err) != QSIM_SUCCESS) {
        qsim_io::raise_error(g_config_error, err);
    }
    config_ptr owned(cfg, qsim_config_free);
    const qsim_io::GcPause pause;
    return to_config(cfg);
}

}  // namespace

void qsim_register_config(py::module_ & m) {
    g_config_error = qsim_io::located_error_type(
        m, "ConfigError",
        "A quantsim config that is not valid JSON or breaks the schema. The message names the\n"
        "problem, the JSON path and line:column; .path (str, e.g. '$.op_type.Conv'), .line and\n"
        ".column (from 1) hold them (None for a syntax error's path).");
    m.def("parse_config", &parse_config, py::arg("text"),
          "Parses a quantsim config (JSON text) into a torchqsim.quantsim.config_types.QuantsimConfig;\n"
          "raises ConfigError.");
    m.def("load_config", &load_config, py::arg("path"),
          "Reads the quantsim config file at `path` (str or os.PathLike) into a QuantsimConfig;\n"
          "raises ConfigError for invalid content (message prefixed by the path) and OSError when\n"
          "the file cannot be read.");
}
