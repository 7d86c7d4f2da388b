// torchqsim._io: the encodings dict (layout in bindings/io_encodings.cpp and wrappers/encodings.py)
// into a qsim_encodings model, and one entry checked as the C reader and writer check it
// (io_encodings_dict.h). Errors raise EncodingsError naming the key.
#include <pybind11/pybind11.h>

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "io_common.h"
#include "qsim/encodings.h"

#include "io_encodings_dict.h"

namespace py = pybind11;

namespace qsim_enc_dict {

PyObject * g_error = nullptr;

namespace {

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

}  // namespace

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

}  // namespace qsim_enc_dict
