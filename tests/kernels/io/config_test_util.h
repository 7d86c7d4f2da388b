// config_test_util.h: what the GoogleTest files of the quantsim config reader share
// (test_config_*.cpp): the file locations, a parsed-config owner and document builders.
#ifndef QSIM_CONFIG_TEST_UTIL_H
#define QSIM_CONFIG_TEST_UTIL_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" {
#include "io/json_util.h"
#include "qsim/config.h"
}

namespace config_test {

inline const std::string kPresetDir = std::string(QSIM_SOURCE_DIR) + "/configs/";

// AIMET 2.42's shipped configs are read in place from $QSIM_AIMET_CONFIGS, which scripts/test.sh
// sets to aimet_torch/common/quantsim_config/ of the side venv scripts/aimet_venv.sh builds.
inline std::string aimet_dir() {
    const char * dir = std::getenv("QSIM_AIMET_CONFIGS");
    return dir != nullptr && *dir != '\0' ? std::string(dir) + "/" : std::string();
}

inline bool under_ci() {
    const char * ci = std::getenv("CI");
    return ci != nullptr && std::string(ci) == "true";
}

// The path of AIMET's `name` in the body of a test; skips the test (fails it under CI=true)
// when the folder or the file is missing.
#define AIMET_FILE_OR_SKIP(var, name)                                                           \
    const std::string var = aimet_dir() + (name);                                               \
    if (aimet_dir().empty() || !exists(var)) {                                                  \
        const std::string why = "AIMET 2.42 config " + std::string(name) + " not found: set "   \
                                "QSIM_AIMET_CONFIGS (scripts/test.sh does, from scripts/aimet_venv.sh)"; \
        if (under_ci()) {                                                                       \
            FAIL() << why;                                                                      \
        }                                                                                       \
        GTEST_SKIP() << why;                                                                    \
    }

// Owns the result of one parse or load.
struct Parsed {
    qsim_config * cfg = nullptr;  // first: the parse in `status`'s initializer sets it
    qsim_error    err;
    qsim_status   status;

    explicit Parsed(const std::string & text)
        : status(qsim_config_parse(text.data(), text.size(), &cfg, &err)) {}
    static Parsed load(const std::string & path) { return Parsed(path, 0); }
    Parsed(const Parsed &) = delete;
    Parsed & operator=(const Parsed &) = delete;
    Parsed(Parsed && o) noexcept : cfg(o.cfg), err(o.err), status(o.status) { o.cfg = nullptr; }
    ~Parsed() { qsim_config_free(cfg); }
    const qsim_config_view & view() const { return *qsim_config_get(cfg); }

  private:
    Parsed(const std::string & path, int) : status(qsim_config_load(path.c_str(), &cfg, &err)) {}
};

// A valid config with the six sections on lines 2..7, each line starting with `"<name>": ` at
// column 1; `section`'s value is replaced by `body` (so a body's first character is at column
// strlen("\"<name>\": ") + 1).
inline std::string doc(const std::string & section = "", const std::string & body = "") {
    const std::vector<std::pair<std::string, std::string>> sections = {
        {"defaults", R"({"ops": {}, "params": {}})"}, {"params", "{}"},
        {"op_type", "{}"},                             {"supergroups", "[]"},
        {"model_input", "{}"},                         {"model_output", "{}"}};
    std::string out = "{\n";
    for (size_t i = 0; i < sections.size(); i++) {
        const auto & [name, value] = sections[i];
        out += "\"" + name + "\": " + (name == section ? body : value);
        out += i + 1 < sections.size() ? ",\n" : "\n";
    }
    return out + "}\n";
}

// Checks a failed parse against its expected status, message, path and location.
inline void expect_error(const Parsed & p, const std::string & message, const std::string & path, int line,
                  int column) {
    EXPECT_EQ(p.status, QSIM_PARSE_ERROR) << message;
    EXPECT_EQ(p.cfg, nullptr);
    EXPECT_EQ(p.err.status, QSIM_PARSE_ERROR);
    EXPECT_EQ(std::string(p.err.message), message);
    EXPECT_EQ(std::string(p.err.path), path);
    EXPECT_EQ(p.err.line, line) << p.err.message;
    EXPECT_EQ(p.err.column, column) << p.err.message;
}

inline bool exists(const std::string & path) {
    return std::ifstream(path).good();
}

inline const qsim_config_op_type & op(const Parsed & p, const char * name) {
    const qsim_config_op_type * o = qsim_config_find_op_type(p.cfg, name);
    if (o == nullptr) {
        ADD_FAILURE() << "no op_type " << name;
        static const qsim_config_op_type none{};
        return none;
    }
    return *o;
}

inline std::vector<std::string> ops_of(const qsim_config_supergroup & g) {
    return std::vector<std::string>(g.ops, g.ops + g.n_ops);
}

}  // namespace config_test

#endif  // QSIM_CONFIG_TEST_UTIL_H
