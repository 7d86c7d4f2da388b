// torchqsim._io: the encodings reader and writer (qsim/encodings.h) as read_encodings,
// write_encodings and save_encodings over plain dicts, and the EncodingsError they raise.
// The dict layout is documented in wrappers/encodings.py; in short:
//   {"version": str | None, "producer": {"package", "version"} | None,
//    "activation_encodings": {name: entry}, "param_encodings": {name: entry},
//    "encodings": {name: entry} (role not recorded: read from 2.0.0),
//    "excluded_layers": [str], "quantizer_args": {6 keys} | None}
//   entry: {"dtype": "float", "bitwidth"} or {"dtype": "int", "bitwidth", "is_symmetric",
//           "is_signed", "layout", "scale": [float], "offset": [int] (AIMET sign), "min", "max"
//           ([float] or None), "axis", "block_size", "scale_shape" (int / [int] or None)}
#include <pybind11/pybind11.h>

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "io_common.h"
#include "io_encodings_dict.h"
#include "qsim/encodings.h"

namespace py = pybind11;

namespace {

using qsim_enc_dict::enc_ptr;
using qsim_enc_dict::from_dict;
using qsim_enc_dict::g_error;
using qsim_enc_dict::LAYOUTS;
using qsim_enc_dict::SECTIONS;

// --- C -> dict ----------------------------------------------------------------------------------

// The n values at v as a list, or None when v is NULL (not recorded).
template <typename T>
py::object list_of(const T * v, size_t n) {
    if (v == nullptr) {
        return py::none();
    }
    py::list out;
    for (size_t i = 0; i < n; i++) {
        out.append(v[i]);
    }
    return std::move(out);
}

py::object optional(bool present, const py::object & value) {
    return present ? value : py::object(py::none());
}

py::dict entry_dict(const qsim_encoding_entry & e) {
    py::dict d;
    d["dtype"] = e.kind == QSIM_ENCODING_FLOAT ? "float" : "int";
    d["bitwidth"] = e.bitwidth;
    if (e.kind == QSIM_ENCODING_FLOAT) {
        return d;
    }
    d["is_symmetric"] = py::bool_(e.is_symmetric != 0);
    d["is_signed"] = py::bool_(e.is_signed != 0);
    d["layout"] = LAYOUTS[e.layout];
    d["scale"] = list_of(e.scale, e.n);
    d["offset"] = list_of(e.offset, e.n);
    d["min"] = list_of(e.min, e.n);
    d["max"] = list_of(e.max, e.n);
    d["axis"] = optional(e.axis != QSIM_ENCODING_NO_AXIS, py::int_(e.axis));
    d["block_size"] = optional(e.layout == QSIM_ENCODING_PER_BLOCK, py::int_(e.block_size));
    d["scale_shape"] = list_of(e.shape, e.ndim);
    return d;
}

py::dict to_dict(const qsim_encodings * enc) {
    const qsim_encodings_view & v = *qsim_encodings_get(enc);
    py::dict out, sections[3];
    for (size_t i = 0; i < v.n_entries; i++) {
        sections[v.entries[i].role][qsim_io::text(v.entries[i].name)] = entry_dict(v.entries[i]);
    }
    out["version"] = v.version ? py::object(qsim_io::text(v.version)) : py::object(py::none());
    out["producer"] = py::none();
    if (v.producer_package != nullptr) {
        py::dict p;
        p["package"] = qsim_io::text(v.producer_package);
        p["version"] = qsim_io::text(v.producer_version);
        out["producer"] = p;
    }
    for (size_t s = 0; s < 3; s++) {
        out[SECTIONS[s]] = sections[s];
    }
    py::list excluded;
    for (size_t i = 0; i < v.n_excluded_layers; i++) {
        excluded.append(qsim_io::text(v.excluded_layers[i]));
    }
    out["excluded_layers"] = excluded;
    out["quantizer_args"] = py::none();
    if (const qsim_quantizer_args * a = v.quantizer_args) {
        py::dict q;
        q["activation_bitwidth"] = a->activation_bitwidth;
        q["dtype"] = a->dtype == QSIM_ENCODING_FLOAT ? "float" : "int";
        q["is_symmetric"] = py::bool_(a->is_symmetric != 0);
        q["param_bitwidth"] = a->param_bitwidth;
        q["per_channel_quantization"] = py::bool_(a->per_channel_quantization != 0);
        q["quant_scheme"] = qsim_io::text(a->quant_scheme);
        out["quantizer_args"] = q;
    }
    return out;
}

// --- the functions ------------------------------------------------------------------------------

// A str whose first non-blank character (after a byte order mark) is '{' is JSON text.
bool looks_like_json(const std::string & s) {
    size_t i = s.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
        i++;
    }
    return i < s.size() && s[i] == '{';
}

py::dict read_encodings(const py::object & source) {
    qsim_encodings * enc = nullptr;
    qsim_error err;
    qsim_status st;
    if (py::isinstance<py::bytes>(source)) {
        const std::string text = source.cast<std::string>();
        st = qsim_encodings_parse(text.data(), text.size(), &enc, &err);
    } else if (py::isinstance<py::str>(source) && looks_like_json(source.cast<std::string>())) {
        const std::string text = source.cast<std::string>();
        st = qsim_encodings_parse(text.data(), text.size(), &enc, &err);
    } else {
        const std::string path = qsim_io::file_path(source, "source");
        st = qsim_encodings_load(path.c_str(), &enc, &err);
    }
    if (st != QSIM_SUCCESS) {
        qsim_io::raise_error(g_error, err);
    }
    enc_ptr owned(enc, qsim_encodings_free);
    const qsim_io::GcPause pause;
    return to_dict(enc);
}

py::str write_encodings(const py::object & data, const std::string & version) {
    enc_ptr enc = from_dict(data);
    char * text = nullptr;
    size_t len = 0;
    qsim_error err;
    if (qsim_encodings_write(enc.get(), version.c_str(), &text, &len, &err) != QSIM_SUCCESS) {
        qsim_io::raise_error(g_error, err);
    }
    std::unique_ptr<char, decltype(&std::free)> owned(text, std::free);
    return qsim_io::text(text);
}

void save_encodings(const py::object & data, const py::object & path, const std::string & version) {
    enc_ptr enc = from_dict(data);
    const std::string p = qsim_io::file_path(path, "path");
    qsim_error err;
    if (qsim_encodings_save(enc.get(), p.c_str(), version.c_str(), &err) != QSIM_SUCCESS) {
        qsim_io::raise_error(g_error, err);
    }
}

}  // namespace

void qsim_register_encodings(py::module_ & m) {
    g_error = qsim_io::located_error_type(
        m, "EncodingsError",
        "An encodings file that is not valid JSON or breaks its version's layout, or an encodings\n"
        "dict the writer cannot write (NaN/Inf, a layout the version cannot hold). The message\n"
        "names the problem and where; .path (str: '$.param_encodings[0].scale' in a file, or\n"
        "\"param_encodings['w'].scale\" in a dict), .line and .column (from 1) hold it; each is\n"
        "None when it does not apply (syntax errors have no path, dicts have no line).");
    size_t n = 0;
    const char * const * versions = qsim_encodings_versions(&n);
    py::tuple supported(n);
    for (size_t i = 0; i < n; i++) {
        supported[i] = py::str(versions[i]);
    }
    m.attr("ENCODINGS_VERSIONS") = supported;
    m.def("read_encodings", &read_encodings, py::arg("source"),
          "Reads an AIMET encodings file (0.6.1, 1.0.0 or 2.0.0) into a dict (layout in\n"
          "torchqsim.encodings). `source` is a path (str or os.PathLike), or the JSON text itself\n"
          "(bytes, or a str whose first non-blank character is '{'). Raises EncodingsError for\n"
          "invalid content (a file's message starts with its path) and OSError when the file\n"
          "cannot be read.");
    m.def("write_encodings", &write_encodings, py::arg("data"), py::arg("version"),
          "The encodings dict as the text of an encodings file of `version` (deterministic).\n"
          "Raises EncodingsError when the dict is malformed or holds what the version cannot.");
    m.def("check_encoding", &qsim_enc_dict::check_encoding, py::arg("entry"), py::arg("where"),
          "Checks one entry of the encodings dict as the C reader and writer do (structure;\n"
          "scale finite, > 0 and float32; min < max; offsets integers on the grid). Raises\n"
          "EncodingsError with a message starting with `where`.");
    m.def("save_encodings", &save_encodings, py::arg("data"), py::arg("path"), py::arg("version"),
          "write_encodings into the file at `path`, atomically (temporary file in the same\n"
          "directory, fsync, rename; on failure no file is left and `path` is unchanged).\n"
          "Raises EncodingsError as write_encodings, OSError when the file cannot be written.");
}
