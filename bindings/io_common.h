// io_common.h: helpers the torchqsim._io readers share (bindings/io_*.cpp): text from C strings,
// the ValueError subclasses that carry a JSON location, and raising a qsim_error as Python sees it.
#ifndef QSIM_BINDINGS_IO_COMMON_H
#define QSIM_BINDINGS_IO_COMMON_H

#include <pybind11/pybind11.h>

#include <new>
#include <string>

#include "qsim/json_error.h"

namespace qsim_io {

namespace py = pybind11;

// A Python str from UTF-8 bytes read from a file (cJSON does not check UTF-8): undecodable bytes
// become U+FFFD.
inline py::str text(const char * s) {
    PyObject * o = PyUnicode_DecodeUTF8(s, static_cast<Py_ssize_t>(std::char_traits<char>::length(s)),
                                        "replace");
    if (o == nullptr) {
        throw py::error_already_set();
    }
    return py::reinterpret_steal<py::str>(o);
}

// Pauses Python's cyclic garbage collector while a reader builds its result (tens of thousands
// of new containers, none of them garbage): each generation-2 pass would walk every object built
// so far, which made 40,000-key files take twice as long. Restores the collector's prior state.
class GcPause {
public:
    GcPause() : gc_(py::module_::import("gc")), was_enabled_(gc_.attr("isenabled")().cast<bool>()) {
        gc_.attr("disable")();
    }
    ~GcPause() {
        if (was_enabled_) {
            gc_.attr("enable")();
        }
    }
    GcPause(const GcPause &) = delete;
    GcPause & operator=(const GcPause &) = delete;

private:
    py::module_ gc_;
    bool was_enabled_;
};

// `path` (str, bytes or os.PathLike) as a C file name. A NUL character would end the C string
// early and so name another file: it is a ValueError naming the argument `arg`.
inline std::string file_path(const py::object & path, const char * arg) {
    std::string s = py::module_::import("os").attr("fspath")(path).cast<std::string>();
    if (s.find('\0') != std::string::npos) {
        throw py::value_error(std::string(arg) + ": a file name cannot hold a NUL character, got " +
                              py::repr(path).cast<std::string>());
    }
    return s;
}

// Creates `torchqsim._io.<name>`, a ValueError subclass whose instances carry .path (str or None),
// .line and .column (from 1, or None), registers it in `m` and returns it (alive as long as the
// module: `m` holds a reference).
inline PyObject * located_error_type(py::module_ & m, const char * name, const char * doc) {
    const std::string qualified = std::string("torchqsim._io.") + name;
    PyObject * type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, PyExc_ValueError, nullptr);
    if (type == nullptr) {
        throw py::error_already_set();
    }
    py::handle cls(type);
    cls.attr("path") = py::none();
    cls.attr("line") = py::none();
    cls.attr("column") = py::none();
    m.attr(name) = py::reinterpret_steal<py::object>(type);
    return type;
}

// Raises an instance of `type` (from located_error_type) with `message`, `path` ("" for none) and
// line/column (0 for none).
[[noreturn]] inline void raise_located(PyObject * type, const py::str & message, const char * path,
                                       int line, int column) {
    py::object exc = py::reinterpret_borrow<py::object>(type)(message);
    exc.attr("path") = path[0] ? py::object(text(path)) : py::object(py::none());
    exc.attr("line") = line ? py::object(py::int_(line)) : py::object(py::none());
    exc.attr("column") = line ? py::object(py::int_(column)) : py::object(py::none());
    PyErr_SetObject(type, exc.ptr());
    throw py::error_already_set();
}

// Raises what a failed C reader or writer reported: MemoryError when out of memory, OSError for
// I/O (the message names the file and the reason), else an instance of `type`.
[[noreturn]] inline void raise_error(PyObject * type, const qsim_error & e) {
    if (e.status == QSIM_OUT_OF_MEMORY) {
        throw std::bad_alloc();
    }
    if (e.status == QSIM_IO_ERROR) {
        PyErr_SetObject(PyExc_OSError, text(e.message).ptr());
        throw py::error_already_set();
    }
    raise_located(type, text(e.message), e.path, e.line, e.column);
}

}  // namespace qsim_io

#endif  // QSIM_BINDINGS_IO_COMMON_H
