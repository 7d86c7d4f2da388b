// torchqsim._io: the quantsim config reader (qsim/config.h) as parse_config / load_config, which
// return the config as plain Python dicts and lists, and the ConfigError they raise.
//
// The dict has the JSON's structure with real bools:
//  - "defaults" is complete: every key of the section is present, absent ones with the value AIMET
//    acts on when they are absent (False for every flag, [] for supported_kernels, "default" for
//    hw_version);
//  - every other section keeps only the keys the file sets (absent means "inherit" there); an
//    op type's "params" appears only when it names a parameter; encoding_constraints is
//    {"min": float, "max": float}; a kernel's "param" is absent when the file has none;
//  - a duplicated key appears once (at its first place) with its last value, as with json.load.
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "io_common.h"
#include "qsim/config.h"

namespace py = pybind11;

namespace {

PyObject * g_config_error = nullptr;  // torchqsim._io.ConfigError (owned by the module)

using qsim_io::text;

void put(py::dict & d, const char * key, qsim_opt_bool v) {
    if (v != QSIM_OPT_UNSET) {
        d[key] = py::bool_(v == QSIM_OPT_TRUE);
    }
}

py::dict precision(const qsim_config_precision & p) {
    py::dict d;
    d["bitwidth"] = p.bitwidth;
    d["dtype"] = p.dtype == QSIM_DTYPE_FLOAT ? "float" : "int";
    return d;
}

py::list kernels(const qsim_config_kernel * k, size_t n) {
    py::list out;
    for (size_t i = 0; i < n; i++) {
        py::dict d;
        d["activation"] = precision(k[i].activation);
        if (k[i].param.bitwidth != 0) {
            d["param"] = precision(k[i].param);
        }
        out.append(d);
    }
    return out;
}

py::dict params(const qsim_config_param * p, size_t n) {
    py::dict out;
    for (size_t i = 0; i < n; i++) {
        py::dict d;
        put(d, "is_quantized", p[i].is_quantized);
        put(d, "is_symmetric", p[i].is_symmetric);
        out[text(p[i].name)] = d;
    }
    return out;
}

py::dict op_type(const qsim_config_op_type & o) {
    py::dict d;
    put(d, "is_input_quantized", o.is_input_quantized);
    put(d, "is_output_quantized", o.is_output_quantized);
    put(d, "is_symmetric", o.is_symmetric);
    put(d, "per_channel_quantization", o.per_channel_quantization);
    if (o.n_params != 0) {
        d["params"] = params(o.params, o.n_params);
    }
    if (o.n_supported_kernels != 0) {
        d["supported_kernels"] = kernels(o.supported_kernels, o.n_supported_kernels);
    }
    if (o.has_encoding_constraints) {
        py::dict c;
        c["min"] = o.encoding_min;
        c["max"] = o.encoding_max;
        d["encoding_constraints"] = c;
    }
    return d;
}

py::dict defaults(const qsim_config_defaults & s) {
    py::dict ops, prm, d;
    ops["is_input_quantized"] = py::bool_(s.ops_is_input_quantized);
    ops["is_output_quantized"] = py::bool_(s.ops_is_output_quantized);
    ops["is_symmetric"] = py::bool_(s.ops_is_symmetric);
    prm["is_quantized"] = py::bool_(s.params_is_quantized);
    prm["is_symmetric"] = py::bool_(s.params_is_symmetric);
    d["ops"] = ops;
    d["params"] = prm;
    d["strict_symmetric"] = py::bool_(s.strict_symmetric);
    d["unsigned_symmetric"] = py::bool_(s.unsigned_symmetric);
    d["per_channel_quantization"] = py::bool_(s.per_channel_quantization);
    d["supported_kernels"] = kernels(s.supported_kernels, s.n_supported_kernels);
    d["hw_version"] = text(s.hw_version);
    return d;
}

py::dict to_dict(const qsim_config * cfg) {
    const qsim_config_view & v = *qsim_config_get(cfg);
    py::dict out, ops, in, outp;
    py::list groups;
    for (size_t i = 0; i < v.n_op_types; i++) {
        ops[text(v.op_types[i].name)] = op_type(v.op_types[i]);
    }
    for (size_t i = 0; i < v.n_supergroups; i++) {
        py::list names;
        for (size_t j = 0; j < v.supergroups[i].n_ops; j++) {
            names.append(text(v.supergroups[i].ops[j]));
        }
        py::dict g;
        g["op_list"] = names;
        groups.append(g);
    }
    put(in, "is_input_quantized", v.model_input_is_input_quantized);
    put(outp, "is_output_quantized", v.model_output_is_output_quantized);
    out["defaults"] = defaults(v.defaults);
    out["params"] = params(v.params, v.n_params);
    out["op_type"] = ops;
    out["supergroups"] = groups;
    out["model_input"] = in;
    out["model_output"] = outp;
    return out;
}

using config_ptr = std::unique_ptr<qsim_config, decltype(&qsim_config_free)>;

py::dict parse_config(const std::string & json) {
    qsim_config * cfg = nullptr;
    qsim_error err;
    if (qsim_config_parse(json.data(), json.size(), &cfg, &err) != QSIM_SUCCESS) {
        qsim_io::raise_error(g_config_error, err);
    }
    config_ptr owned(cfg, qsim_config_free);
    return to_dict(cfg);
}

py::dict load_config(const py::object & path) {
    const std::string p = qsim_io::file_path(path, "path");
    qsim_config * cfg = nullptr;
    qsim_error err;
    if (qsim_config_load(p.c_str(), &cfg, &err) != QSIM_SUCCESS) {
        qsim_io::raise_error(g_config_error, err);
    }
    config_ptr owned(cfg, qsim_config_free);
    return to_dict(cfg);
}

}  // namespace

void qsim_register_config(py::module_ & m) {
    g_config_error = qsim_io::located_error_type(
        m, "ConfigError",
        "A quantsim config that is not valid JSON or breaks the schema. The message names the\n"
        "problem, the JSON path and line:column; .path (str, e.g. '$.op_type.Conv'), .line and\n"
        ".column (from 1) hold them (None for a syntax error's path).");
    m.def("parse_config", &parse_config, py::arg("text"),
          "Parses a quantsim config (JSON text) into plain dicts and lists; raises ConfigError.");
    m.def("load_config", &load_config, py::arg("path"),
          "Reads the quantsim config file at `path` (str or os.PathLike) into plain dicts and lists;\n"
          "raises ConfigError for invalid content (message prefixed by the path) and OSError when\n"
          "the file cannot be read.");
}
