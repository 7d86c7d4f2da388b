// The quantsim config reader (qsim/config.h): AIMET's files and our presets parse to what they
// say; every error class reports its message, JSON path and line:column.
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

namespace {

const std::string kPresetDir = std::string(QSIM_SOURCE_DIR) + "/configs/";

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
std::string doc(const std::string & section = "", const std::string & body = "") {
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
void expect_error(const Parsed & p, const std::string & message, const std::string & path, int line,
                  int column) {
    EXPECT_EQ(p.status, QSIM_PARSE_ERROR) << message;
    EXPECT_EQ(p.cfg, nullptr);
    EXPECT_EQ(p.err.status, QSIM_PARSE_ERROR);
    EXPECT_EQ(std::string(p.err.message), message);
    EXPECT_EQ(std::string(p.err.path), path);
    EXPECT_EQ(p.err.line, line) << p.err.message;
    EXPECT_EQ(p.err.column, column) << p.err.message;
}

bool exists(const std::string & path) {
    return std::ifstream(path).good();
}

const qsim_config_op_type & op(const Parsed & p, const char * name) {
    const qsim_config_op_type * o = qsim_config_find_op_type(p.cfg, name);
    if (o == nullptr) {
        ADD_FAILURE() << "no op_type " << name;
        static const qsim_config_op_type none{};
        return none;
    }
    return *o;
}

std::vector<std::string> ops_of(const qsim_config_supergroup & g) {
    return std::vector<std::string>(g.ops, g.ops + g.n_ops);
}

// --- AIMET's files and our presets ------------------------------------------------------------

// AIMET 2.42's shipped configs are read in place from $QSIM_AIMET_CONFIGS, which scripts/test.sh
// sets to aimet_torch/common/quantsim_config/ of the side venv scripts/aimet_venv.sh builds.
std::string aimet_dir() {
    const char * dir = std::getenv("QSIM_AIMET_CONFIGS");
    return dir != nullptr && *dir != '\0' ? std::string(dir) + "/" : std::string();
}

bool under_ci() {
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

TEST(ConfigFiles, EveryAimetFileParses) {
    AIMET_FILE_OR_SKIP(dir_probe, "default_config.json");
    std::vector<std::string> names;
    for (const auto & entry : std::filesystem::directory_iterator(aimet_dir())) {
        if (entry.path().extension() == ".json") {
            names.push_back(entry.path().filename().string());
        }
    }
    EXPECT_EQ(names.size(), 19u);  // the files aimet-torch 2.42.0 ships
    for (const std::string & name : names) {
        Parsed p = Parsed::load(aimet_dir() + name);
        EXPECT_EQ(p.status, QSIM_SUCCESS) << name << ": " << p.err.message;
    }
}

TEST(ConfigFiles, AimetDefaultConfig) {
    AIMET_FILE_OR_SKIP(path, "default_config.json");
    Parsed p = Parsed::load(path);
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    const qsim_config_view & v = p.view();
    // File content (docs/aimet.md §1.2): booleans are the strings "True"/"False".
    EXPECT_EQ(v.defaults.ops_is_output_quantized, 1);
    EXPECT_EQ(v.defaults.params_is_quantized, 1);
    EXPECT_EQ(v.defaults.params_is_symmetric, 1);
    EXPECT_EQ(v.defaults.ops_is_symmetric, 0);  // absent: AIMET leaves activations asymmetric
    EXPECT_EQ(v.defaults.per_channel_quantization, 0);
    EXPECT_EQ(v.defaults.strict_symmetric, 0);
    EXPECT_EQ(v.defaults.unsigned_symmetric, 0);  // absent
    EXPECT_EQ(std::string(v.defaults.hw_version), "default");
    ASSERT_EQ(v.n_params, 1u);
    EXPECT_EQ(std::string(v.params[0].name), "bias");
    EXPECT_EQ(v.params[0].is_quantized, QSIM_OPT_FALSE);
    EXPECT_EQ(v.params[0].is_symmetric, QSIM_OPT_UNSET);
    ASSERT_EQ(v.n_op_types, 2u);  // BatchNormalization Cast
    EXPECT_EQ(std::string(v.op_types[0].name), "BatchNormalization");
    const qsim_config_op_type & bn = op(p, "BatchNormalization");
    ASSERT_EQ(bn.n_params, 2u);
    EXPECT_EQ(std::string(bn.params[0].name), "running_mean");
    EXPECT_EQ(bn.params[1].is_quantized, QSIM_OPT_FALSE);
    EXPECT_EQ(op(p, "Cast").is_output_quantized, QSIM_OPT_FALSE);
    EXPECT_EQ(op(p, "Cast").per_channel_quantization, QSIM_OPT_UNSET);
    ASSERT_EQ(v.n_supergroups, 5u);
    EXPECT_EQ(ops_of(v.supergroups[0]), (std::vector<std::string>{"Conv", "Relu"}));
    EXPECT_EQ(ops_of(v.supergroups[4]), (std::vector<std::string>{"Gemm", "Relu"}));
    ASSERT_EQ(v.n_supergroup_pass_list, 1u);
    EXPECT_EQ(std::string(v.supergroup_pass_list[0]), "MatmulAdd");
    EXPECT_EQ(v.model_input_is_input_quantized, QSIM_OPT_TRUE);
    EXPECT_EQ(v.model_output_is_output_quantized, QSIM_OPT_UNSET);  // "model_output": {}
}

TEST(ConfigFiles, AimetPerChannelConfig) {
    AIMET_FILE_OR_SKIP(path, "default_config_per_channel.json");
    Parsed p = Parsed::load(path);
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    // 2.42: per-tensor by default, per-channel for the weighted op types.
    EXPECT_EQ(p.view().defaults.per_channel_quantization, 0);
    EXPECT_EQ(p.view().n_op_types, 7u);
    for (const char * name : {"Conv", "ConvTranspose", "Gemm", "MatMul", "PRelu"}) {
        EXPECT_EQ(op(p, name).per_channel_quantization, QSIM_OPT_TRUE) << name;
    }
    EXPECT_EQ(op(p, "Gemm").is_output_quantized, QSIM_OPT_UNSET);
    EXPECT_EQ(op(p, "Cast").is_output_quantized, QSIM_OPT_FALSE);
}

TEST(ConfigFiles, AimetHtpV75Config) {
    AIMET_FILE_OR_SKIP(path, "htp_quantsim_config_v75.json");
    Parsed p = Parsed::load(path);
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    const qsim_config_view & v = p.view();
    EXPECT_EQ(std::string(v.defaults.hw_version), "V75");
    EXPECT_EQ(v.defaults.per_channel_quantization, 0);
    EXPECT_EQ(v.defaults.strict_symmetric, 0);
    EXPECT_EQ(v.defaults.unsigned_symmetric, 0);
    EXPECT_EQ(v.n_op_types, 20u);
    EXPECT_EQ(op(p, "Conv").per_channel_quantization, QSIM_OPT_TRUE);
    const qsim_config_op_type & gn = op(p, "GroupNormalization");
    ASSERT_EQ(gn.n_params, 1u);
    EXPECT_EQ(std::string(gn.params[0].name), "bias");
    EXPECT_EQ(gn.params[0].is_quantized, QSIM_OPT_TRUE);
    EXPECT_EQ(std::string(v.op_types[9].name), "GroupNormalization");
    const qsim_config_op_type & ln = op(p, "LayerNormalization");
    ASSERT_EQ(ln.n_params, 1u);
    EXPECT_EQ(std::string(ln.params[0].name), "weight");
    EXPECT_EQ(ln.params[0].is_symmetric, QSIM_OPT_FALSE);
    EXPECT_EQ(ln.params[0].is_quantized, QSIM_OPT_UNSET);
    EXPECT_EQ(op(p, "BatchNormalization").n_params, 2u);  // running_mean, running_var
    for (const auto & [name, lo] : {std::pair<const char *, double>{"Softmax", 0.0},
                                    {"Sigmoid", 0.0}, {"Sin", -1.0}, {"Cos", -1.0},
                                    {"Tanh", -1.0}}) {
        EXPECT_EQ(op(p, name).has_encoding_constraints, 1) << name;
        EXPECT_EQ(op(p, name).encoding_min, lo) << name;
        EXPECT_EQ(op(p, name).has_encoding_max, 1) << name;
        EXPECT_EQ(op(p, name).encoding_max, 1.0) << name;
    }
    EXPECT_EQ(op(p, "Relu").has_encoding_constraints, 1);  // min only: the max is calibrated
    EXPECT_EQ(op(p, "Relu").encoding_min, 0.0);
    EXPECT_EQ(op(p, "Relu").has_encoding_max, 0);
    EXPECT_EQ(op(p, "Gather").is_output_quantized, QSIM_OPT_FALSE);
    ASSERT_EQ(v.n_supergroups, 14u);
    EXPECT_EQ(ops_of(v.supergroups[4]), (std::vector<std::string>{"Conv", "BatchNormalization", "Relu"}));
    EXPECT_EQ(ops_of(v.supergroups[8]), (std::vector<std::string>{"Conv", "Clip"}));
    ASSERT_EQ(v.n_supergroup_pass_list, 3u);
    EXPECT_EQ(std::string(v.supergroup_pass_list[1]), "RMSNormalization");
}

TEST(ConfigFiles, OurPresets) {
    for (const char * name : {"default", "per_channel", "target"}) {
        Parsed p = Parsed::load(kPresetDir + name + ".json");
        ASSERT_EQ(p.status, QSIM_SUCCESS) << name << ": " << p.err.message;
        EXPECT_EQ(p.view().defaults.params_is_symmetric, 1) << name;
        EXPECT_EQ(p.view().params[0].is_quantized, QSIM_OPT_FALSE) << name;  // bias
    }
    Parsed t = Parsed::load(kPresetDir + "target.json");
    EXPECT_EQ(t.view().defaults.per_channel_quantization, 1);
    ASSERT_EQ(t.view().defaults.n_supported_kernels, 3u);
    EXPECT_EQ(t.view().defaults.supported_kernels[2].activation.dtype, QSIM_DTYPE_FLOAT);
    EXPECT_EQ(t.view().defaults.supported_kernels[1].activation.bitwidth, 16);
    EXPECT_EQ(t.view().defaults.supported_kernels[1].param.bitwidth, 8);
    for (const char * name : {"Softmax", "Sigmoid"}) {
        EXPECT_EQ(op(t, name).has_encoding_constraints, 1) << name;
        EXPECT_EQ(op(t, name).encoding_min, 0.0) << name;
        EXPECT_EQ(op(t, name).encoding_max, 1.0) << name;
    }
    for (const char * name : {"Reshape", "Transpose", "Split", "Slice", "MaxPool", "Gather", "Squeeze",
                              "Unsqueeze", "Flatten", "Pad", "Expand", "Tile"}) {
        EXPECT_EQ(op(t, name).is_output_quantized, QSIM_OPT_FALSE) << name;
    }
    EXPECT_EQ(qsim_config_find_op_type(t.cfg, "Concat"), nullptr);
}

// --- accepted forms ---------------------------------------------------------------------------

TEST(ConfigValues, BooleansAsJsonOrAimetStrings) {
    const std::vector<std::pair<std::string, qsim_opt_bool>> cases = {
        {"true", QSIM_OPT_TRUE}, {"false", QSIM_OPT_FALSE},
        {"\"True\"", QSIM_OPT_TRUE}, {"\"False\"", QSIM_OPT_FALSE}};
    for (const auto & [text, want] : cases) {
        Parsed p(doc("op_type", "{\"Conv\": {\"is_symmetric\": " + text + "}}"));
        ASSERT_EQ(p.status, QSIM_SUCCESS) << text << ": " << p.err.message;
        EXPECT_EQ(op(p, "Conv").is_symmetric, want) << text;
        Parsed d(doc("defaults", "{\"ops\": {}, \"params\": {}, \"strict_symmetric\": " + text + "}"));
        ASSERT_EQ(d.status, QSIM_SUCCESS) << text << ": " << d.err.message;
        EXPECT_EQ(d.view().defaults.strict_symmetric, want == QSIM_OPT_TRUE ? 1 : 0) << text;
    }
}

TEST(ConfigValues, DefaultsResolveAbsentKeys) {
    Parsed p(doc());
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    const qsim_config_defaults & d = p.view().defaults;
    EXPECT_EQ(d.ops_is_input_quantized + d.ops_is_output_quantized + d.ops_is_symmetric, 0);
    EXPECT_EQ(d.params_is_quantized + d.params_is_symmetric, 0);
    EXPECT_EQ(d.strict_symmetric + d.unsigned_symmetric + d.per_channel_quantization, 0);
    EXPECT_EQ(d.n_supported_kernels, 0u);
    EXPECT_EQ(std::string(d.hw_version), "default");
    EXPECT_EQ(p.view().model_input_is_input_quantized, QSIM_OPT_UNSET);
}

TEST(ConfigValues, DuplicateKeysTakeTheLastValueAtTheFirstPlace) {
    // As Python's json.load: {"Conv": A, "Relu": B, "Conv": C} is {"Conv": C, "Relu": B}; the
    // first Conv is dropped unread, so even a bad value there is no error.
    Parsed p(doc("op_type", R"({"Conv": {"bogus": 1}, "Relu": {}, "Conv": {"is_output_quantized": true,)"
                            R"( "is_output_quantized": "False"}})"));
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    ASSERT_EQ(p.view().n_op_types, 2u);
    EXPECT_EQ(std::string(p.view().op_types[0].name), "Conv");
    EXPECT_EQ(std::string(p.view().op_types[1].name), "Relu");
    EXPECT_EQ(p.view().op_types[0].is_output_quantized, QSIM_OPT_FALSE);
    // A whole section repeated: the second counts.
    Parsed s(doc("model_input", R"({"is_input_quantized": true}, "model_input": {"is_input_quantized": false})"));
    ASSERT_EQ(s.status, QSIM_SUCCESS) << s.err.message;
    EXPECT_EQ(s.view().model_input_is_input_quantized, QSIM_OPT_FALSE);
}

TEST(ConfigValues, KernelsAndConstraints) {
    Parsed p(doc("op_type", R"({"Softmax": {"encoding_constraints": {"min": -0.5, "max": 2, "note": "x"},)"
                            R"( "supported_kernels": [{"activation": {"bitwidth": 16, "dtype": "float"}},)"
                            R"( {"activation": {"bitwidth": 4, "dtype": "int"},)"
                            R"( "param": {"dtype": "int", "bitwidth": 8}}]}})"));
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    const qsim_config_op_type & s = op(p, "Softmax");
    EXPECT_EQ(s.encoding_min, -0.5);
    EXPECT_EQ(s.encoding_max, 2.0);
    ASSERT_EQ(s.n_supported_kernels, 2u);
    EXPECT_EQ(s.supported_kernels[0].activation.bitwidth, 16);
    EXPECT_EQ(s.supported_kernels[0].activation.dtype, QSIM_DTYPE_FLOAT);
    EXPECT_EQ(s.supported_kernels[0].param.bitwidth, 0);  // an op_type kernel may omit param
    EXPECT_EQ(s.supported_kernels[1].activation.bitwidth, 4);
    EXPECT_EQ(s.supported_kernels[1].param.bitwidth, 8);
    EXPECT_EQ(s.supported_kernels[1].param.dtype, QSIM_DTYPE_INT);
    for (int bw : {4, 8, 16}) {
        Parsed k(doc("op_type", "{\"Conv\": {\"supported_kernels\": [{\"activation\": {\"bitwidth\": " +
                                    std::to_string(bw) + ", \"dtype\": \"int\"}}]}}"));
        EXPECT_EQ(k.status, QSIM_SUCCESS) << bw << ": " << k.err.message;
    }
}

// --- errors: each class with its message, path and line:column ---------------------------------

TEST(ConfigErrors, UnknownKeySuggestsTheNearestKnownKey) {
    // Line 2: "defaults": {"ops": {"is_output_quantised": true}, ...
    // "defaults": is 12 characters, so '{' is column 13, "ops" 14..18, ':' 19, ' ' 20, '{' 21,
    // the key's '"' column 22.
    expect_error(Parsed(doc("defaults", R"({"ops": {"is_output_quantised": true}, "params": {}})")),
                 "unknown key 'is_output_quantised' at $.defaults.ops (line 2, column 22); "
                 "did you mean 'is_output_quantized'?",
                 "$.defaults.ops", 2, 22);
    // A misspelt section (line 2, after two spaces).
    expect_error(Parsed("{\n  \"default\": {}\n}"),
                 "unknown key 'default' at $ (line 2, column 3); did you mean 'defaults'?", "$", 2, 3);
    // Swapped letters count as one edit: "is_symmetirc".
    expect_error(Parsed(doc("params", R"({"bias": {"is_symmetirc": true}})")),
                 // "params": is 10 characters: '{' 11, "bias" 12..17, ':' 18, ' ' 19, '{' 20, '"' 21
                 "unknown key 'is_symmetirc' at $.params.bias (line 3, column 21); "
                 "did you mean 'is_symmetric'?",
                 "$.params.bias", 3, 21);
}

TEST(ConfigErrors, UnknownKeyWithoutNearMatchListsTheKeys) {
    // "model_input": is 15 characters: '{' 16, '"' 17.
    expect_error(Parsed(doc("model_input", R"({"foo": true})")),
                 "unknown key 'foo' at $.model_input (line 6, column 17); expected one of: "
                 "is_input_quantized",
                 "$.model_input", 6, 17);
}

TEST(ConfigErrors, WrongTypes) {
    // "op_type": is 11 characters: '{' 12, "Conv" 13..18, ':' 19, ' ' 20, '{' 21,
    // "is_output_quantized" 22..42 (21 characters), ':' 43, ' ' 44, value 45.
    expect_error(Parsed(doc("op_type", R"({"Conv": {"is_output_quantized": "yes"}})")),
                 "wrong type at $.op_type.Conv.is_output_quantized (line 4, column 45): expected a "
                 "boolean (true, false, \"True\" or \"False\"), got the string \"yes\"",
                 "$.op_type.Conv.is_output_quantized", 4, 45);
    // Only AIMET's exact spelling of the string booleans.
    expect_error(Parsed(doc("op_type", R"({"Conv": {"is_output_quantized": "true"}})")),
                 "wrong type at $.op_type.Conv.is_output_quantized (line 4, column 45): expected a "
                 "boolean (true, false, \"True\" or \"False\"), got the string \"true\"",
                 "$.op_type.Conv.is_output_quantized", 4, 45);
    // "supergroups": is 15 characters: value at 16.
    expect_error(Parsed(doc("supergroups", "{}")),
                 "wrong type at $.supergroups (line 5, column 16): expected an array, got an object",
                 "$.supergroups", 5, 16);
    // "defaults": 12 characters; '{' 13, "ops" 14..18, ':' 19, ' ' 20, '{' 21, '}' 22, ',' 23,
    // ' ' 24, "params" 25..32, ':' 33, ' ' 34, '{' 35, '}' 36, ',' 37, ' ' 38,
    // "hw_version" 39..50, ':' 51, ' ' 52, value 53.
    expect_error(Parsed(doc("defaults", R"({"ops": {}, "params": {}, "hw_version": 75})")),
                 "wrong type at $.defaults.hw_version (line 2, column 53): expected a string, got "
                 "the number 75",
                 "$.defaults.hw_version", 2, 53);
    // '[' 16, '{' 17, "op_list" 18..26, ':' 27, ' ' 28, '[' 29, "Conv" 30..35, ',' 36, ' ' 37,
    // null at 38.
    expect_error(Parsed(doc("supergroups", R"([{"op_list": ["Conv", null]}])")),
                 "wrong type at $.supergroups[0].op_list[1] (line 5, column 38): expected an op "
                 "type (a string), got a null",
                 "$.supergroups[0].op_list[1]", 5, 38);
}

TEST(ConfigErrors, PathsQuoteNonIdentifierKeysAndColumnsCountCharacters) {
    // "op_type": 11 characters: '{' 12, "Café" 13..18 (6 characters, 7 bytes), ':' 19, ' ' 20,
    // '{' 21, "is_symmetric" 22..35, ':' 36, ' ' 37, value 38.
    expect_error(Parsed(doc("op_type", "{\"Caf\xC3\xA9\": {\"is_symmetric\": 1}}")),
                 "wrong type at $.op_type[\"Caf\xC3\xA9\"].is_symmetric (line 4, column 38): "
                 "expected a boolean (true, false, \"True\" or \"False\"), got the number 1",
                 "$.op_type[\"Caf\xC3\xA9\"].is_symmetric", 4, 38);
    int line = 0;
    int column = 0;
    const std::string text = "{\n\t\"a\xC3\xA9\": x";  // x: line 2, after tab, "aé" (4), ':', ' '
    qsim_json_line_column(text.data(), text.size(), text.size() - 1, &line, &column);
    EXPECT_EQ(line, 2);
    EXPECT_EQ(column, 8);  // 1 + tab + 4 + ':' + ' ' = 8
}

TEST(ConfigErrors, UnsupportedBitwidthsAndDtypes) {
    // "op_type": 11 chars: '{' 12, "Conv" 13..18, ':' 19, ' ' 20, '{' 21,
    // "supported_kernels" 22..40, ':' 41, ' ' 42, '[' 43, '{' 44, "activation" 45..56, ':' 57,
    // ' ' 58, '{' 59, "bitwidth" 60..69, ':' 70, ' ' 71, value 72.
    const auto kernel = [](const std::string & precision) {
        return doc("op_type", "{\"Conv\": {\"supported_kernels\": [{\"activation\": " + precision + "}]}}");
    };
    const std::string path = "$.op_type.Conv.supported_kernels[0].activation.bitwidth";
    const std::string where = " at " + path + " (line 4, column 72)";
    const std::string int_note = ": int kernels are 4, 8 or 16 bits (torchqsim's integer grid ends at 16)";
    expect_error(Parsed(kernel(R"({"bitwidth": 32, "dtype": "int"})")),
                 "unsupported bitwidth 32 for dtype int" + where + int_note, path, 4, 72);
    expect_error(Parsed(kernel(R"({"bitwidth": 12, "dtype": "int"})")),
                 "unsupported bitwidth 12 for dtype int" + where + int_note, path, 4, 72);
    expect_error(Parsed(kernel(R"({"bitwidth": 8, "dtype": "float"})")),
                 "unsupported bitwidth 8 for dtype float" + where + ": float kernels are 16 or 32 bits",
                 path, 4, 72);
    expect_error(Parsed(kernel(R"({"bitwidth": "8", "dtype": "int"})")),
                 "wrong type" + where + ": expected an integer, got the string \"8\"", path, 4, 72);
    expect_error(Parsed(kernel(R"({"bitwidth": 8.5, "dtype": "int"})")),
                 "wrong type" + where + ": expected an integer, got the number 8.5", path, 4, 72);
    // '{' 59, "dtype" 60..66, ':' 67, ' ' 68, value 69.
    expect_error(Parsed(kernel(R"({"dtype": "int8", "bitwidth": 8})")),
                 "unsupported dtype 'int8' at $.op_type.Conv.supported_kernels[0].activation.dtype "
                 "(line 4, column 69): expected \"int\" or \"float\"",
                 "$.op_type.Conv.supported_kernels[0].activation.dtype", 4, 69);
    expect_error(Parsed(kernel(R"({"bitwidth": 8})")),
                 "missing required key 'dtype' at $.op_type.Conv.supported_kernels[0].activation "
                 "(line 4, column 59)",
                 "$.op_type.Conv.supported_kernels[0].activation", 4, 59);
}

TEST(ConfigErrors, ShortOpList) {
    // '[' 16, '{' 17, "op_list" 18..26, ':' 27, ' ' 28, '[' 29, "Conv" 30..35, ',' 36, ' ' 37,
    // "Relu" 38..43, ']' 44, '}' 45, ',' 46, ' ' 47, '{' 48, "op_list" 49..57, ':' 58, ' ' 59,
    // '[' 60.
    expect_error(Parsed(doc("supergroups", R"([{"op_list": ["Conv", "Relu"]}, {"op_list": ["Conv"]}])")),
                 "op_list with a single op at $.supergroups[1].op_list (line 5, column 60): a "
                 "supergroup needs at least 2 ops",
                 "$.supergroups[1].op_list", 5, 60);
    expect_error(Parsed(doc("supergroups", R"([{"op_list": []}])")),
                 "empty op_list at $.supergroups[0].op_list (line 5, column 29): a supergroup needs "
                 "at least 2 ops",
                 "$.supergroups[0].op_list", 5, 29);
    expect_error(Parsed(doc("supergroups", R"([{}])")),
                 "missing required key 'op_list' at $.supergroups[0] (line 5, column 17)",
                 "$.supergroups[0]", 5, 17);
}

TEST(ConfigErrors, MissingRequiredSectionsAndKeys) {
    expect_error(Parsed("{\n  \"defaults\": {\"ops\": {}, \"params\": {}},\n  \"params\": {}, "
                        "\"op_type\": {}, \"supergroups\": [], \"model_input\": {}\n}"),
                 "missing required key 'model_output' at $ (line 1, column 1)", "$", 1, 1);
    expect_error(Parsed(doc("defaults", R"({"ops": {}})")),
                 "missing required key 'params' at $.defaults (line 2, column 13)", "$.defaults", 2, 13);
    // defaults' kernels need both sides. '{' 13, "ops" .. '}' 36 as above, ',' 37, ' ' 38,
    // "supported_kernels" 39..57, ':' 58, ' ' 59, '[' 60, '{' 61.
    expect_error(Parsed(doc("defaults", R"({"ops": {}, "params": {}, "supported_kernels": [{"activation": )"
                                        R"({"bitwidth": 8, "dtype": "int"}}]})")),
                 "missing required key 'param' at $.defaults.supported_kernels[0] (line 2, column 61)",
                 "$.defaults.supported_kernels[0]", 2, 61);
    expect_error(Parsed(doc("defaults", R"({"ops": {}, "params": {}, "supported_kernels": []})")),
                 "empty supported_kernels at $.defaults.supported_kernels (line 2, column 60): list "
                 "at least one kernel",
                 "$.defaults.supported_kernels", 2, 60);
    expect_error(Parsed("[]"), "wrong type at $ (line 1, column 1): expected an object, got an array",
                 "$", 1, 1);
}

TEST(ConfigErrors, EncodingConstraints) {
    // "op_type": 11 chars: '{' 12, "Softmax" 13..21, ':' 22, ' ' 23, '{' 24,
    // "encoding_constraints" 25..46, ':' 47, ' ' 48, '{' 49, "min" 50..54, ':' 55, ' ' 56, value 57.
    const auto softmax = [](const std::string & c) {
        return doc("op_type", "{\"Softmax\": {\"encoding_constraints\": " + c + "}}");
    };
    const std::string path = "$.op_type.Softmax.encoding_constraints";
    expect_error(Parsed(softmax(R"({"min": 1.0, "max": 0.0})")),
                 "empty encoding range [1, 0] at " + path + " (line 4, column 49): min must be less "
                 "than max",
                 path, 4, 49);
    expect_error(Parsed(softmax(R"({"max": 1.0})")),
                 "missing required key 'min' at " + path + " (line 4, column 49)", path, 4, 49);
    expect_error(Parsed(softmax(R"({"min": 1.0, "max": 1.0})")),
                 "empty encoding range [1, 1] at " + path + " (line 4, column 49): min must be less "
                 "than max",
                 path, 4, 49);
    expect_error(Parsed(softmax(R"({"min": "0", "max": 1})")),
                 "wrong type at " + path + ".min (line 4, column 57): expected a finite number, got "
                 "the string \"0\"",
                 path + ".min", 4, 57);
}

// AIMET 2.42's schema: encoding_constraints requires min only (a missing max is calibrated).
TEST(Config, MinOnlyEncodingConstraints) {
    Parsed p(doc("op_type", R"({"Relu": {"encoding_constraints": {"min": 0.0}}})"));
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    const qsim_config_op_type * relu = qsim_config_find_op_type(p.cfg, "Relu");
    ASSERT_NE(relu, nullptr);
    EXPECT_EQ(relu->has_encoding_constraints, 1);
    EXPECT_EQ(relu->encoding_min, 0.0);
    EXPECT_EQ(relu->has_encoding_max, 0);
}

// The optional top-level supergroup_pass_list (AIMET 2.42): names in order, empty allowed.
TEST(Config, SupergroupPassList) {
    std::string text = doc();
    text.insert(text.rfind('}'), ",\"supergroup_pass_list\": [\"LayerNormalization\", \"MatmulAdd\"]\n");
    Parsed p(text);
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    ASSERT_EQ(p.view().n_supergroup_pass_list, 2u);
    EXPECT_STREQ(p.view().supergroup_pass_list[0], "LayerNormalization");
    EXPECT_STREQ(p.view().supergroup_pass_list[1], "MatmulAdd");
    std::string empty = doc();
    empty.insert(empty.rfind('}'), ",\"supergroup_pass_list\": []\n");
    Parsed e(empty);
    ASSERT_EQ(e.status, QSIM_SUCCESS) << e.err.message;
    EXPECT_EQ(e.view().n_supergroup_pass_list, 0u);
    EXPECT_EQ(Parsed(doc()).view().n_supergroup_pass_list, 0u);
}

TEST(ConfigErrors, SyntaxErrors) {
    // "params": 10 chars: '{' 11, "bias" 12..17, ':' 18, ' ' 19, '{' 20, "is_quantized" 21..34,
    // ':' 35, ' ' 36, false 37..41, '}' 42, ',' 43, '}' 44: a trailing comma.
    expect_error(Parsed(doc("params", R"({"bias": {"is_quantized": false},})")),
                 "invalid JSON at line 3, column 44: expected a key in double quotes, found '}'", "", 3,
                 44);
    // Python's True: "model_input": 15 chars, '{' 16, "is_input_quantized" 17..36, ':' 37, ' ' 38, T 39.
    expect_error(Parsed(doc("model_input", R"({"is_input_quantized": True})")),
                 "invalid JSON at line 6, column 39: expected a value, found 'T'", "", 6, 39);
    // '{' 12, "Conv" 13..18, ' ' 19, '{' 20: the ':' is missing.
    expect_error(Parsed(doc("op_type", R"({"Conv" {}})")),
                 "invalid JSON at line 4, column 20: expected ':' after the key, found '{'", "", 4, 20);
    // doc() ends with "}\n" on line 8; "x" follows on line 9.
    expect_error(Parsed(doc() + "x"),
                 "invalid JSON at line 9, column 1: unexpected text after the JSON value, found 'x'",
                 "", 9, 1);
    expect_error(Parsed("{\"defaults"), "invalid JSON at line 1, column 2: unterminated string (no closing quote)", "",
                 1, 2);
    expect_error(Parsed("{\"a\": [1, 2"),
                 "invalid JSON at line 1, column 12: expected ',' or ']', found the end of the input",
                 "", 1, 12);
    expect_error(Parsed(""), "invalid JSON at line 1, column 1: expected a value, found the end of the input",
                 "", 1, 1);
    expect_error(Parsed(std::string("{\"a\":\0 1}", 9)), "invalid JSON at line 1, column 6: NUL byte in the input",
                 "", 1, 6);
}

// Damaged input never crashes or reads out of bounds (run under -DQSIM_SANITIZE=ON): every prefix
// of a preset and every single-byte replacement either parses or fails with a location inside the
// text.
TEST(ConfigErrors, DamagedInputFailsCleanly) {
    std::ifstream in(kPresetDir + "target.json");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_GT(text.size(), 1000u);
    const size_t last_brace = text.rfind('}');
    const int lines = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    const auto check = [&](const std::string & t, bool must_fail, const std::string & what) {
        Parsed p(t);
        ASSERT_TRUE(p.status == QSIM_SUCCESS || p.status == QSIM_PARSE_ERROR) << what;
        if (must_fail) {
            ASSERT_EQ(p.status, QSIM_PARSE_ERROR) << what;
        }
        if (p.status == QSIM_PARSE_ERROR) {
            ASSERT_GE(p.err.line, 1) << what << ": " << p.err.message;
            ASSERT_LE(p.err.line, lines) << what << ": " << p.err.message;
            ASSERT_GE(p.err.column, 1) << what << ": " << p.err.message;
            ASSERT_NE(p.err.message[0], '\0') << what;
        }
    };
    for (size_t n = 0; n <= text.size(); n++) {
        check(text.substr(0, n), n <= last_brace, "prefix of " + std::to_string(n) + " bytes");
    }
    for (size_t i = 0; i < text.size(); i++) {
        for (char c : {'"', '}', ']', ',', ':', '\\', 'x', '1'}) {
            std::string t = text;
            t[i] = c;
            check(t, false, "byte " + std::to_string(i) + " set to " + std::string(1, c));
        }
    }
}

// --- API contract ------------------------------------------------------------------------------

TEST(ConfigApi, LoadReportsTheFile) {
    Parsed missing = Parsed::load("/nonexistent/qsim.json");
    EXPECT_EQ(missing.status, QSIM_IO_ERROR);
    EXPECT_EQ(missing.cfg, nullptr);
    EXPECT_EQ(std::string(missing.err.message),
              "cannot open '/nonexistent/qsim.json': No such file or directory");
    EXPECT_EQ(missing.err.line, 0);
    EXPECT_EQ(std::string(missing.err.path), "");

    const std::string path = testing::TempDir() + "qsim_config_bad.json";
    std::ofstream(path) << doc("model_output", R"({"is_output_quantized": 0})");
    Parsed bad = Parsed::load(path);
    std::remove(path.c_str());
    // "model_output": 16 chars: '{' 17, "is_output_quantized" 18..38, ':' 39, ' ' 40, value 41.
    expect_error(bad,
                 path + ": wrong type at $.model_output.is_output_quantized (line 7, column 41): "
                        "expected a boolean (true, false, \"True\" or \"False\"), got the number 0",
                 "$.model_output.is_output_quantized", 7, 41);
}

TEST(ConfigApi, NullArgumentsAndFreeNull) {
    qsim_config_free(nullptr);
    qsim_config * cfg = nullptr;
    qsim_error err;
    EXPECT_EQ(qsim_config_parse(nullptr, 0, &cfg, &err), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(err.status, QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_config_load(nullptr, &cfg, &err), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(cfg, nullptr);
    const std::string text = doc();
    EXPECT_EQ(qsim_config_parse(text.data(), text.size(), nullptr, &err), QSIM_INVALID_ARGUMENT);
    // A NULL error struct is allowed; the status still tells.
    EXPECT_EQ(qsim_config_parse("{", 1, &cfg, nullptr), QSIM_PARSE_ERROR);
    EXPECT_EQ(qsim_config_parse(text.data(), text.size(), &cfg, nullptr), QSIM_SUCCESS);
    qsim_config_free(cfg);
}

TEST(ConfigApi, NearestKey) {
    const char * keys[] = {"is_input_quantized", "is_output_quantized", "is_symmetric"};
    EXPECT_STREQ(qsim_json_nearest("is_symetric", keys, 3), "is_symmetric");        // 1 deletion
    EXPECT_STREQ(qsim_json_nearest("is_symmetirc", keys, 3), "is_symmetric");       // 1 swap
    EXPECT_STREQ(qsim_json_nearest("Is_Output_Quantized", keys, 3), "is_output_quantized");  // 3 case
    EXPECT_EQ(qsim_json_nearest("quantized", keys, 3), nullptr);  // 9+ edits from any
    const char * minmax[] = {"min", "max"};
    EXPECT_STREQ(qsim_json_nearest("mni", minmax, 2), "min");
    EXPECT_EQ(qsim_json_nearest("xyz", minmax, 2), nullptr);  // 3 edits > max(2, 3 / 3)
}

}  // namespace
