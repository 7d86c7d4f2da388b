// encodings_test_util.h: what the GoogleTest files of the encodings reader and writer share
// (test_encodings_*.cpp): the example files, reading and writing helpers, entries built from
// vectors, a model owner.
#ifndef QSIM_ENCODINGS_TEST_UTIL_H
#define QSIM_ENCODINGS_TEST_UTIL_H

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "qsim_test_util.h"

extern "C" {
#include "qsim/encodings.h"
}

namespace enc_test {

// tests/data/encodings/, found from this file's path (CMake compiles it by absolute path).
inline std::string data_dir() {
    std::string here = __FILE__;
    return here.substr(0, here.rfind("/kernels/")) + "/data/encodings/";
}

inline std::string slurp(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot read " << path;
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline bool exists(const std::string & path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

// Owns the result of one parse or load.
struct Loaded {
    qsim_encodings * enc = nullptr;
    qsim_error       err;
    qsim_status      status;

    explicit Loaded(const std::string & text)
        : status(qsim_encodings_parse(text.data(), text.size(), &enc, &err)) {}
    static Loaded file(const std::string & path) { return Loaded(path, 0); }
    Loaded(const Loaded &) = delete;
    Loaded & operator=(const Loaded &) = delete;
    Loaded(Loaded && o) noexcept : enc(o.enc), err(o.err), status(o.status) { o.enc = nullptr; }
    ~Loaded() { qsim_encodings_free(enc); }

    const qsim_encodings_view & view() const { return *qsim_encodings_get(enc); }
    const qsim_encoding_entry & at(const char * name) const {
        const qsim_encoding_entry * e = nullptr;
        EXPECT_EQ(qsim_encodings_lookup(enc, name, &e), QSIM_SUCCESS) << "no entry " << name;
        static const qsim_encoding_entry none{};
        return e ? *e : none;
    }

  private:
    Loaded(const std::string & path, int) : status(qsim_encodings_load(path.c_str(), &enc, &err)) {}
};

// The model written as `version`; fails the test (and returns "") when the writer refuses.
inline std::string write(const qsim_encodings * enc, const char * version) {
    char * text = nullptr;
    size_t len = 0;
    qsim_error err;
    qsim_status st = qsim_encodings_write(enc, version, &text, &len, &err);
    EXPECT_EQ(st, QSIM_SUCCESS) << err.message;
    std::string out = text ? std::string(text, len) : std::string();
    EXPECT_EQ(out.size(), text ? std::strlen(text) : 0u);
    std::free(text);
    return out;
}

// The writer's refusal message (fails the test when it writes).
inline std::string refusal(const qsim_encodings * enc, const char * version) {
    char * text = nullptr;
    qsim_error err;
    EXPECT_EQ(qsim_encodings_write(enc, version, &text, nullptr, &err), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(text, nullptr);
    std::free(text);
    return err.message;
}

inline std::vector<float> floats(const float * v, size_t n) {
    return v ? std::vector<float>(v, v + n) : std::vector<float>();
}

inline std::vector<int64_t> ints(const int64_t * v, size_t n) {
    return v ? std::vector<int64_t>(v, v + n) : std::vector<int64_t>();
}

// Line and column (from 1) of the first (or last) occurrence of `needle` in `text`, counted here.
inline std::pair<int, int> where(const std::string & text, const std::string & needle, bool last) {
    size_t at = last ? text.rfind(needle) : text.find(needle);
    EXPECT_NE(at, std::string::npos) << "needle " << needle;
    int line = 1, column = 1;
    for (size_t i = 0; i < at; i++) {
        column = text[i] == '\n' ? 1 : column + 1;
        line += text[i] == '\n';
    }
    return {line, column};
}

// A failed parse of `text`: status, message, path, and the location of `needle` in `text` (its
// first occurrence, or its last when `last`), which replaces {L} and {C} in `message`.
inline void expect_error(const std::string & text, std::string message, const std::string & path,
                  const std::string & needle, bool last = false) {
    Loaded p(text);
    auto [line, column] = where(text, needle, last);
    message.replace(message.find("{L}"), 3, std::to_string(line));
    message.replace(message.find("{C}"), 3, std::to_string(column));
    EXPECT_EQ(p.status, QSIM_PARSE_ERROR) << text;
    EXPECT_EQ(p.enc, nullptr);
    EXPECT_EQ(p.err.status, QSIM_PARSE_ERROR);
    EXPECT_EQ(std::string(p.err.message), message) << text;
    EXPECT_EQ(std::string(p.err.path), path) << p.err.message;
    EXPECT_EQ(p.err.line, line) << p.err.message;
    EXPECT_EQ(p.err.column, column) << p.err.message;
}

// An int entry built from vectors (the model copies them).
struct Int {
    std::string          name;
    qsim_encoding_role   role = QSIM_ENCODING_PARAM;
    int                  bitwidth = 8;
    int                  sym = 1;
    int                  is_signed = 1;
    qsim_encoding_layout layout = QSIM_ENCODING_PER_TENSOR;
    std::vector<float>   scale{0.5f};
    std::vector<int64_t> offset{-128};
    std::vector<float>   min, max;
    int                  axis = QSIM_ENCODING_NO_AXIS;
    int64_t              block_size = 0;
    std::vector<int64_t> shape;

    qsim_encoding_entry entry() const {
        return {name.c_str(), role, QSIM_ENCODING_INT, bitwidth, sym, is_signed, layout,
                scale.size(), scale.data(), offset.data(), min.empty() ? nullptr : min.data(),
                max.empty() ? nullptr : max.data(), axis, block_size, shape.size(),
                shape.empty() ? nullptr : shape.data()};
    }
};

inline qsim_encoding_entry float_entry(const char * name, qsim_encoding_role role, int bitwidth) {
    return {name, role, QSIM_ENCODING_FLOAT, bitwidth, 0, 0, QSIM_ENCODING_PER_TENSOR, 0,
            nullptr, nullptr, nullptr, nullptr, QSIM_ENCODING_NO_AXIS, 0, 0, nullptr};
}

struct Model {
    qsim_encodings * enc = qsim_encodings_create();
    Model() = default;
    Model(const Model &) = delete;
    Model & operator=(const Model &) = delete;
    ~Model() { qsim_encodings_free(enc); }
    void add(const qsim_encoding_entry & e) {
        qsim_error err;
        ASSERT_EQ(qsim_encodings_add(enc, &e, &err), QSIM_SUCCESS) << err.message;
    }
};

// The message of a refused qsim_encodings_add (the model must stay unchanged).
inline std::string add_refusal(const qsim_encoding_entry & e) {
    Model m;
    Int ok{"x"};
    m.add(ok.entry());
    qsim_error err;
    EXPECT_EQ(qsim_encodings_add(m.enc, &e, &err), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_encodings_get(m.enc)->n_entries, 1u);
    return err.message;
}

inline const char * const kVersions[] = {"0.6.1", "1.0.0", "2.0.0"};

}  // namespace enc_test

#endif  // QSIM_ENCODINGS_TEST_UTIL_H
