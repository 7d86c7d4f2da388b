// Errors of the quantsim config reader (qsim/config.h): every error class reports its message,
// JSON path and line:column; damaged input fails cleanly.
#include "config_test_util.h"

namespace {

using namespace config_test;

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
                 "(line 4, column 69): expected \"int\", \"float\" or a format name (" +
                     std::string(qsim_config_format_names()) + ")",
                 "$.op_type.Conv.supported_kernels[0].activation.dtype", 4, 69);
    expect_error(Parsed(kernel(R"({"bitwidth": 8, "dtype": "mxfp4"})")),
                 "bitwidth 8 does not match format mxfp4 (4 bits)" + where +
                     ": the format's element bits (or leave it out)",
                 path, 4, 72);
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

}  // namespace
