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
#include "qsim/encodings.h"

namespace py = pybind11;

namespace {

PyObject * g_error = nullptr;  // torchqsim._io.EncodingsError (owned by the module)

using enc_ptr = std::unique_ptr<qsim_encodings, decltype(&qsim_encodings_free)>;

const char * const LAYOUTS[] = {"per_tensor", "per_channel", "per_block"};  // = qsim layout
const char * const SECTIONS[] = {"activation_encodings", "param_encodings", "encodings"};  // = role

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

// --- dict -> C ----------------------------------------------------------------------------------

std::string repr_of(const py::handle & o) {
    return py::repr(o).cast<std::string>();
}

[[noreturn]] void bad(const std::string & where, const std::string & why) {
    qsim_io::raise_located(g_error, py::str(where + ": " + why), where.c_str(), 0, 0);
}

bool as_bool(const py::object & o, const std::string & where) {
    if (!py::isinstance<py::bool_>(o)) {
        bad(where, "expected True or False, got " + repr_of(o));
    }
    return o.cast<bool>();
}

// An int (bool excluded; anything with __index__, e.g. numpy integers).
int64_t as_int(const py::object & o, const std::string & where) {
    if (py::isinstance<py::bool_>(o) || !PyIndex_Check(o.ptr())) {
        bad(where, "expected an integer, got " + repr_of(o));
    }
    try {
        return o.cast<int64_t>();
    } catch (const py::cast_error &) {
        bad(where, "integer out of range: " + repr_of(o));
    }
}

// A str for C: NUL characters are refused (a C string would end there).
std::string as_str(const py::object & o, const std::string & where) {
    if (!py::isinstance<py::str>(o)) {
        bad(where, "expected a str, got " + repr_of(o));
    }
    std::string s = o.cast<std::string>();
    if (s.find('\0') != std::string::npos) {
        bad(where, "a NUL character cannot be written: " + repr_of(o));
    }
    return s;
}

// A float32 value from a real number; finite values beyond float32 are refused here (NaN and Inf
// pass, for the writer to refuse naming the entry).
float as_float(const py::object & o, const std::string & where) {
    if (py::isinstance<py::bool_>(o) || !PyNumber_Check(o.ptr()) || PyComplex_Check(o.ptr())) {
        bad(where, "expected a real number, got " + repr_of(o));
    }
    const double v = py::float_(o).cast<double>();
    if (std::isfinite(v) && std::fabs(v) >= 0x1.ffffffp127) {  // rounds to Inf in float32
        bad(where, "does not fit in float32: " + repr_of(o));
    }
    if (std::isfinite(v) && std::fabs(v) > static_cast<double>(FLT_MAX)) {
        return v > 0 ? FLT_MAX : -FLT_MAX;  // rounds to FLT_MAX
    }
    return static_cast<float>(v);
}

template <typename T>
std::vector<T> as_list(const py::object & o, const std::string & where,
                       T (*item)(const py::object &, const std::string &)) {
    if (!py::isinstance<py::sequence>(o) || py::isinstance<py::str>(o)) {
        bad(where, "expected a list, got " + repr_of(py::type::of(o)));
    }
    std::vector<T> out;
    for (auto v : py::reinterpret_borrow<py::sequence>(o)) {
        const std::string at = where + "[" + std::to_string(out.size()) + "]";
        out.push_back(item(py::reinterpret_borrow<py::object>(v), at));
    }
    return out;
}

py::dict as_dict(const py::object & o, const std::string & where) {
    if (!py::isinstance<py::dict>(o)) {
        bad(where, "expected a dict, got " + repr_of(py::type::of(o)));
    }
    return py::reinterpret_borrow<py::dict>(o);
}

// The members of one dict of the layout, read with the path of each in errors.
class Fields {
  public:
    Fields(const py::object & o, std::string where, std::initializer_list<const char *> keys)
        : d_(as_dict(o, where)), where_(std::move(where)) {
        for (auto item : d_) {
            bool known = false;
            for (const char * k : keys) {
                known |= py::isinstance<py::str>(item.first) && item.first.cast<std::string>() == k;
            }
            if (!known) {
                bad(where_, "unknown key " + repr_of(item.first));
            }
        }
    }
    // Present and not None.
    bool has(const char * k) const { return d_.contains(k) && !d_[k].is_none(); }
    py::object get(const char * k) const {
        if (!has(k)) {
            bad(where_, std::string("missing key '") + k + "'");
        }
        return d_[k];
    }
    std::string path(const char * k) const { return where_ + "." + k; }
    bool flag(const char * k) const { return as_bool(get(k), path(k)); }
    int64_t integer(const char * k) const { return as_int(get(k), path(k)); }
    std::string str(const char * k) const { return as_str(get(k), path(k)); }
    std::vector<float> floats(const char * k) const { return as_list(get(k), path(k), as_float); }
    std::vector<int64_t> ints(const char * k) const { return as_list(get(k), path(k), as_int); }
    // The index of the string member k among `n` choices.
    int choice(const char * k, const char * const * choices, size_t n) const {
        const std::string s = str(k);
        for (size_t i = 0; i < n; i++) {
            if (s == choices[i]) {
                return static_cast<int>(i);
            }
        }
        bad(path(k), "unknown value '" + s + "'");
    }
    const py::dict & dict() const { return d_; }
    const std::string & where() const { return where_; }

  private:
    py::dict    d_;
    std::string where_;
};

const char * const KINDS[] = {"int", "float"};  // = qsim_encoding_kind

// An int entry's arrays, owned here while qsim_encodings_add copies them.
struct IntArrays {
    std::vector<float>   scale, min, max;
    std::vector<int64_t> offset, shape;
};

// The int members of `f` into `e`, pointing into `a`.
void read_int_entry(const Fields & f, qsim_encoding_entry & e, IntArrays & a) {
    e.is_symmetric = f.flag("is_symmetric");
    e.is_signed = f.has("is_signed") ? f.flag("is_signed") : e.is_symmetric;
    a.scale = f.floats("scale");
    a.offset = f.ints("offset");
    e.n = a.scale.size();
    if (a.offset.size() != e.n) {
        bad(f.where(), "'offset' has " + std::to_string(a.offset.size()) + " values, 'scale' has " +
                           std::to_string(e.n));
    }
    a.min = f.has("min") ? f.floats("min") : std::vector<float>();
    a.max = f.has("max") ? f.floats("max") : std::vector<float>();
    if ((f.has("min") && a.min.size() != e.n) || (f.has("max") && a.max.size() != e.n)) {
        bad(f.where(), "'min' and 'max' need as many values as 'scale'");
    }
    e.layout = static_cast<qsim_encoding_layout>(f.has("layout") ? f.choice("layout", LAYOUTS, 3)
                                                                 : (e.n > 1 ? 1 : 0));
    e.axis = f.has("axis") ? static_cast<int>(f.integer("axis")) : QSIM_ENCODING_NO_AXIS;
    e.block_size = f.has("block_size") ? f.integer("block_size") : 0;
    a.shape = f.has("scale_shape") ? f.ints("scale_shape") : std::vector<int64_t>();
    e.scale = a.scale.data();
    e.offset = a.offset.data();
    e.min = f.has("min") ? a.min.data() : nullptr;
    e.max = f.has("max") ? a.max.data() : nullptr;
    e.ndim = a.shape.size();
    e.shape = a.shape.empty() ? nullptr : a.shape.data();
}

// The entry `f` describes, pointing into `arrays` and `name`.
void entry_from(qsim_encoding_role role, const std::string & name, const Fields & f,
                qsim_encoding_entry & e, IntArrays & arrays) {
    e.name = name.c_str();
    e.role = role;
    e.kind = static_cast<qsim_encoding_kind>(f.has("dtype") ? f.choice("dtype", KINDS, 2) : 0);
    e.bitwidth = static_cast<int>(f.integer("bitwidth"));
    e.axis = QSIM_ENCODING_NO_AXIS;
    if (e.kind == QSIM_ENCODING_INT) {
        read_int_entry(f, e, arrays);
    }
    for (auto item : f.dict()) {
        const std::string k = item.first.cast<std::string>();
        if (e.kind == QSIM_ENCODING_FLOAT && k != "dtype" && k != "bitwidth" && !item.second.is_none()) {
            bad(f.where(), "'" + k + "' is not allowed in a float entry");
        }
    }
}

const std::initializer_list<const char *> ENTRY_KEYS = {
    "dtype", "bitwidth", "is_symmetric", "is_signed", "layout", "scale",
    "offset", "min", "max", "axis", "block_size", "scale_shape"};

void add_entry(qsim_encodings * enc, qsim_encoding_role role, const std::string & name,
               const Fields & f) {
    qsim_encoding_entry e{};
    IntArrays arrays;
    entry_from(role, name, f, e, arrays);
    qsim_error err;
    if (qsim_encodings_add(enc, &e, &err) != QSIM_SUCCESS) {
        qsim_io::raise_located(g_error, qsim_io::text(err.message), f.where().c_str(), 0, 0);
    }
}

void set_quantizer_args(qsim_encodings * enc, const Fields & f) {
    const std::string scheme = f.str("quant_scheme");
    qsim_quantizer_args a;
    a.activation_bitwidth = static_cast<int>(f.integer("activation_bitwidth"));
    a.param_bitwidth = static_cast<int>(f.integer("param_bitwidth"));
    a.dtype = static_cast<qsim_encoding_kind>(f.choice("dtype", KINDS, 2));
    a.is_symmetric = f.flag("is_symmetric");
    a.per_channel_quantization = f.flag("per_channel_quantization");
    a.quant_scheme = scheme.c_str();
    qsim_error err;
    if (qsim_encodings_set_quantizer_args(enc, &a, &err) != QSIM_SUCCESS) {
        qsim_io::raise_located(g_error, qsim_io::text(err.message), f.where().c_str(), 0, 0);
    }
}

void check(qsim_status st, const qsim_error & err) {
    if (st != QSIM_SUCCESS) {
        qsim_io::raise_error(g_error, err);
    }
}

// A model holding what `data` says (see the layout above); raises EncodingsError naming the key.
enc_ptr from_dict(const py::object & data) {
    enc_ptr enc(qsim_encodings_create(), qsim_encodings_free);
    if (!enc) {
        throw std::bad_alloc();
    }
    const Fields top(data, "encodings dict", {"version", "producer", "activation_encodings",
                                              "param_encodings", "encodings", "excluded_layers",
                                              "quantizer_args"});
    for (int role = 0; role < 3; role++) {
        if (!top.has(SECTIONS[role])) {
            continue;
        }
        for (auto item : as_dict(top.get(SECTIONS[role]), SECTIONS[role])) {
            const std::string where = std::string(SECTIONS[role]) + "[" + repr_of(item.first) + "]";
            const std::string name = as_str(py::reinterpret_borrow<py::object>(item.first), where);
            const Fields entry(py::reinterpret_borrow<py::object>(item.second), where, ENTRY_KEYS);
            add_entry(enc.get(), static_cast<qsim_encoding_role>(role), name, entry);
        }
    }
    qsim_error err;
    if (top.has("producer")) {
        const Fields p(top.get("producer"), "producer", {"package", "version"});
        check(qsim_encodings_set_producer(enc.get(), p.str("package").c_str(), p.str("version").c_str(),
                                          &err),
              err);
    }
    if (top.has("excluded_layers")) {
        for (const std::string & name : as_list(top.get("excluded_layers"), "excluded_layers", as_str)) {
            check(qsim_encodings_add_excluded_layer(enc.get(), name.c_str(), &err), err);
        }
    }
    if (top.has("quantizer_args")) {
        set_quantizer_args(enc.get(), Fields(top.get("quantizer_args"), "quantizer_args",
                                             {"activation_bitwidth", "dtype", "is_symmetric",
                                              "param_bitwidth", "per_channel_quantization",
                                              "quant_scheme"}));
    }
    return enc;
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

// One entry of the dict layout checked as the C reader and writer check it (qsim_encoding_check);
// raises EncodingsError whose message starts with `where`.
void check_encoding(const py::object & entry, const std::string & where) {
    const Fields f(entry, where, ENTRY_KEYS);
    qsim_encoding_entry e{};
    IntArrays arrays;
    const std::string name = where;
    entry_from(QSIM_ENCODING_ROLE_UNKNOWN, name, f, e, arrays);
    qsim_error err;
    if (qsim_encoding_check(&e, &err) != QSIM_SUCCESS) {
        const std::string why = err.message;  // "invalid encoding of entry '<where>': <reason>"
        const std::string prefix = "invalid encoding of entry '" + name + "': ";
        bad(where, why.compare(0, prefix.size(), prefix) == 0 ? why.substr(prefix.size()) : why);
    }
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
    m.def("check_encoding", &check_encoding, py::arg("entry"), py::arg("where"),
          "Checks one entry of the encodings dict as the C reader and writer do (structure;\n"
          "scale finite, > 0 and float32; min < max; offsets integers on the grid). Raises\n"
          "EncodingsError with a message starting with `where`.");
    m.def("save_encodings", &save_encodings, py::arg("data"), py::arg("path"), py::arg("version"),
          "write_encodings into the file at `path`, atomically (temporary file in the same\n"
          "directory, fsync, rename; on failure no file is left and `path` is unchanged).\n"
          "Raises EncodingsError as write_encodings, OSError when the file cannot be written.");
}
