// Errors of the encodings reader (qsim/encodings.h): every error class reports its message, JSON
// path and line:column.
#include "encodings_test_util.h"

namespace {

using namespace enc_test;

// --- reader errors: message, JSON path, line:column ---------------------------------------------

// A 1.0.0 file whose param_encodings (line 3) is `params`.
std::string v1(const std::string & params) {
    return "{\n\"version\": \"1.0.0\", \"activation_encodings\": [],\n\"param_encodings\": [" +
           params + "]\n}\n";
}

const std::string kGoodV1 =
    R"({"name": "w", "dtype": "INT", "enc_type": "PER_CHANNEL", "bw": 8, "is_sym": true, )"
    R"("scale": [0.5, 0.25], "offset": [-128, -128]})";

TEST(EncodingsErrors, Version) {
    const std::string wrong = "{\n  \"version\": \"0.5.0\",\n  \"activation_encodings\": {}\n}";
    expect_error(wrong,
                 "unsupported encodings version '0.5.0' at $.version (line {L}, column {C}); "
                 "supported: 0.6.1, 1.0.0, 2.0.0",
                 "$.version", "\"0.5.0\"");
    const std::string missing = "{\"activation_encodings\": {}}";
    expect_error(missing,
                 "missing required key 'version' at $ (line {L}, column {C}); supported: 0.6.1, 1.0.0, "
                 "2.0.0",
                 "$", "{");
    const std::string number = "{\"version\": 1.0}";
    expect_error(number,
                 "wrong type at $.version (line {L}, column {C}): expected a version string, got the "
                 "number 1",
                 "$.version", "1.0");
}

TEST(EncodingsErrors, MissingFields) {
    const std::string no_params = "{\"version\": \"1.0.0\", \"activation_encodings\": []}";
    expect_error(no_params, "missing required key 'param_encodings' at $ (line {L}, column {C})", "$",
                 "{");
    const std::string no_scale = v1(R"({"name": "w", "dtype": "INT", "enc_type": "PER_TENSOR", )"
                                    R"("bw": 8, "is_sym": true, "offset": [-128]})");
    expect_error(no_scale, "missing required key 'scale' at $.param_encodings[0] (line {L}, column {C})",
                 "$.param_encodings[0]", "{\"name\"");
    const std::string no_block = v1(R"({"name": "w", "dtype": "INT", "enc_type": "PER_BLOCK", )"
                                    R"("bw": 4, "is_sym": true, "scale": [1], "offset": [-8]})");
    expect_error(no_block,
                 "missing required key 'block_size' at $.param_encodings[0] (line {L}, column {C})",
                 "$.param_encodings[0]", "{\"name\"");
    const std::string v0_no_offset =
        R"({"version": "0.6.1", "param_encodings": {}, "activation_encodings": {"in": [)"
        R"({"bitwidth": 8, "dtype": "int", "is_symmetric": "False", "min": 0, "max": 1, "scale": 1}]}})";
    expect_error(v0_no_offset,
                 "missing required key 'offset' at $.activation_encodings.in[0] (line {L}, column {C})",
                 "$.activation_encodings.in[0]", "{\"bitwidth\"");
}

TEST(EncodingsErrors, Lengths) {
    const std::string short_offset = v1(R"({"name": "w", "dtype": "INT", "enc_type": "PER_CHANNEL", )"
                                        R"("bw": 8, "is_sym": true, "scale": [0.5, 0.25], "offset": [-128]})");
    expect_error(short_offset,
                 "offset has 1 values, scale has 2 at $.param_encodings[0].offset (line {L}, column {C})",
                 "$.param_encodings[0].offset", "[-128]");
    const std::string per_tensor = v1(R"({"name": "w", "dtype": "INT", "enc_type": "PER_TENSOR", )"
                                      R"("bw": 8, "is_sym": true, "scale": [0.5, 0.25], "offset": [-1, -1]})");
    expect_error(per_tensor,
                 "a PER_TENSOR encoding has one scale, got 2 at $.param_encodings[0].scale (line {L}, "
                 "column {C})",
                 "$.param_encodings[0].scale", "[0.5, 0.25]");
    const std::string empty = v1(R"({"name": "w", "dtype": "INT", "enc_type": "PER_CHANNEL", )"
                                 R"("bw": 8, "is_sym": true, "scale": [], "offset": []})");
    expect_error(empty,
                 "invalid scale at $.param_encodings[0].scale (line {L}, column {C}): empty list",
                 "$.param_encodings[0].scale", "[], \"offset\"");
    const std::string ragged =
        "{\"version\": \"2.0.0\", \"encodings\": [\n{\"name\": \"w\", \"output_dtype\": \"int4\", "
        "\"y_scale\": [[1, 2], [3]], \"axis\": 1, \"block_size\": 8}]}";
    expect_error(ragged,
                 "invalid y_scale at $.encodings[0].y_scale[1] (line {L}, column {C}): ragged lists: "
                 "this one has 1 values, the first at this depth has 2",
                 "$.encodings[0].y_scale[1]", "[3]");
    const std::string zp_shape =
        "{\"version\": \"2.0.0\", \"encodings\": [\n{\"name\": \"w\", \"output_dtype\": \"int8\", "
        "\"y_scale\": [1, 2], \"y_zero_point\": [0], \"axis\": 0}]}";
    expect_error(zp_shape,
                 "y_zero_point's shape differs from y_scale's at $.encodings[0].y_zero_point (line "
                 "{L}, column {C})",
                 "$.encodings[0].y_zero_point", "[0]");
    const std::string no_axis =
        "{\"version\": \"2.0.0\", \"encodings\": [\n{\"name\": \"w\", \"output_dtype\": \"int8\", "
        "\"y_scale\": [1, 2]}]}";
    expect_error(no_axis,
                 "y_scale has 2 values but the entry has no 'axis' at $.encodings[0].y_scale (line "
                 "{L}, column {C})",
                 "$.encodings[0].y_scale", "[1, 2]");
    const std::string channels =
        R"({"version": "0.6.1", "param_encodings": {}, "activation_encodings": {"in": [)"
        R"({"bitwidth": 8, "dtype": "int", "is_symmetric": "True", "min": 0, "max": 1, "offset": -128, "scale": 1},)"
        "\n"
        R"({"bitwidth": 4, "dtype": "int", "is_symmetric": "True", "min": 0, "max": 1, "offset": -8, "scale": 1}]}})";
    expect_error(channels,
                 "bitwidth 4 differs from the first channel's 8 at $.activation_encodings.in[1]."
                 "bitwidth (line {L}, column {C}): the channels of one tensor share it",
                 "$.activation_encodings.in[1].bitwidth", "4,");
}

TEST(EncodingsErrors, NotFinite) {
    // Python's json writes NaN and Infinity, which are not JSON: a syntax error at the token.
    const std::string nan = v1(R"({"name": "w", "dtype": "INT", "enc_type": "PER_TENSOR", )"
                               R"("bw": 8, "is_sym": true, "scale": [NaN], "offset": [-128]})");
    expect_error(nan,
                 "invalid JSON at line {L}, column {C}: expected a value, found 'N'",
                 "", "NaN");
    // A number beyond float32 (or double) cannot be a scale.
    const std::string huge = v1(R"({"name": "w", "dtype": "INT", "enc_type": "PER_TENSOR", )"
                                R"("bw": 8, "is_sym": true, "scale": [1e39], "offset": [-128]})");
    expect_error(huge,
                 "invalid scale at $.param_encodings[0].scale[0] (line {L}, column {C}): must fit in "
                 "float32, got 1e+39",
                 "$.param_encodings[0].scale[0]", "1e39");
    const std::string tiny = v1(R"({"name": "w", "dtype": "INT", "enc_type": "PER_TENSOR", )"
                                R"("bw": 8, "is_sym": true, "scale": [1e-50], "offset": [-128]})");
    expect_error(tiny,
                 "invalid scale at $.param_encodings[0].scale[0] (line {L}, column {C}): must be > 0 "
                 "in float32, got 1e-50",
                 "$.param_encodings[0].scale[0]", "1e-50");
}

TEST(EncodingsErrors, Types) {
    const std::string bw = v1(R"({"name": "w", "dtype": "INT", "enc_type": "PER_TENSOR", )"
                              R"("bw": "8", "is_sym": true, "scale": [1], "offset": [-128]})");
    expect_error(bw,
                 "wrong type at $.param_encodings[0].bw (line {L}, column {C}): expected an integer, "
                 "got the string \"8\"",
                 "$.param_encodings[0].bw", "\"8\"");
    const std::string sym = v1(R"({"name": "w", "dtype": "INT", "enc_type": "PER_TENSOR", )"
                               R"("bw": 8, "is_sym": "True", "scale": [1], "offset": [-128]})");
    expect_error(sym,
                 "wrong type at $.param_encodings[0].is_sym (line {L}, column {C}): expected a boolean "
                 "(true or false), got the string \"True\"",
                 "$.param_encodings[0].is_sym", "\"True\"");
    const std::string v0_sym =
        R"({"version": "0.6.1", "param_encodings": {}, "activation_encodings": {"in": [)"
        R"({"bitwidth": 8, "dtype": "int", "is_symmetric": true, "min": 0, "max": 1, "offset": 0, "scale": 1}]}})";
    expect_error(v0_sym,
                 "wrong type at $.activation_encodings.in[0].is_symmetric (line {L}, column {C}): "
                 "expected the string \"True\" or \"False\" (0.6.1 writes booleans so), got a boolean",
                 "$.activation_encodings.in[0].is_symmetric", "true");
    const std::string v0_list =
        R"({"version": "0.6.1", "param_encodings": {}, "activation_encodings": {"in": [)"
        R"({"bitwidth": 8, "dtype": "int", "is_symmetric": "True", "min": 0, "max": 1, "offset": -128, "scale": [1]}]}})";
    expect_error(v0_list,
                 "wrong type at $.activation_encodings.in[0].scale (line {L}, column {C}): expected "
                 "a number, got an array",
                 "$.activation_encodings.in[0].scale", "[1]");
    const std::string offset = v1(R"({"name": "w", "dtype": "INT", "enc_type": "PER_TENSOR", )"
                                  R"("bw": 8, "is_sym": true, "scale": [1], "offset": [-127.5]})");
    expect_error(offset,
                 "invalid offset at $.param_encodings[0].offset[0] (line {L}, column {C}): must be an "
                 "integer in [-255, 0] (offset = -zero_point on the 8-bit unsigned grid), got -127.5",
                 "$.param_encodings[0].offset[0]", "-127.5");
    const std::string enc_type = v1(R"({"name": "w", "dtype": "INT", "enc_type": "LPBQ", )"
                                    R"("bw": 8, "is_sym": true, "scale": [1], "offset": [-128]})");
    expect_error(enc_type,
                 "unsupported enc_type 'LPBQ' at $.param_encodings[0].enc_type (line {L}, column {C}): "
                 "torchqsim reads PER_TENSOR, PER_CHANNEL and PER_BLOCK",
                 "$.param_encodings[0].enc_type", "\"LPBQ\"");
    const std::string dtype = v1(R"({"name": "w", "dtype": "int", "bw": 8})");
    expect_error(dtype,
                 "invalid dtype at $.param_encodings[0].dtype (line {L}, column {C}): expected \"INT\" "
                 "or \"FLOAT\", got \"int\"",
                 "$.param_encodings[0].dtype", "\"int\"");
    const std::string out_dtype =
        "{\"version\": \"2.0.0\", \"encodings\": [{\"name\": \"h\", \"output_dtype\": \"float16\", "
        "\"y_scale\": 1}]}";
    expect_error(out_dtype,
                 "unsupported output_dtype 'float16' at $.encodings[0].output_dtype (line {L}, column "
                 "{C}): expected intN or uintN with N in 1..32 (float output dtypes are not supported)",
                 "$.encodings[0].output_dtype", "\"float16\"");
    const std::string zp =
        "{\"version\": \"2.0.0\", \"encodings\": [{\"name\": \"x\", \"output_dtype\": \"uint8\", "
        "\"y_scale\": 1, \"y_zero_point\": 256}]}";
    expect_error(zp,
                 "invalid y_zero_point at $.encodings[0].y_zero_point (line {L}, column {C}): must be "
                 "an integer in [0, 255] for uint8, got 256",
                 "$.encodings[0].y_zero_point", "256");
}

TEST(EncodingsErrors, KeysAndNames) {
    const std::string typo = v1(R"({"name": "w", "dtype": "INT", "enc_typ": "PER_TENSOR"})");
    expect_error(typo,
                 "unknown key 'enc_typ' at $.param_encodings[0] (line {L}, column {C}); did you mean "
                 "'enc_type'?",
                 "$.param_encodings[0]", "\"enc_typ\"");
    const std::string twice = v1(kGoodV1 + ",\n" + kGoodV1);
    expect_error(twice,
                 "tensor name 'w' is listed twice (also as param) at $.param_encodings[1].name "
                 "(line {L}, column {C})",
                 "$.param_encodings[1].name", "\"w\"", true);
    const std::string section =
        "{\"version\": \"1.0.0\", \"activation_encodings\": [], \"param_encodings\": [], "
        "\"encodings\": []}";
    expect_error(section,
                 "'encodings' is not allowed before version 2.0.0 at $ (line {L}, column {C})", "$",
                 "\"encodings\"");
    const std::string lpbq =
        "{\"version\": \"2.0.0\", \"encodings\": [{\"name\": \"w\", \"output_dtype\": \"int4\", "
        "\"per_block_int_scale\": [1]}]}";
    expect_error(lpbq,
                 "'per_block_int_scale' is not allowed (LPBQ encodings are not supported) at "
                 "$.encodings[0] (line {L}, column {C})",
                 "$.encodings[0]", "\"per_block_int_scale\"");
    const std::string float_scale = v1(R"({"name": "h", "dtype": "FLOAT", "bw": 16, "scale": [1]})");
    expect_error(float_scale,
                 "'scale' is not allowed in a FLOAT encoding at $.param_encodings[0] (line {L}, column {C})",
                 "$.param_encodings[0]", "\"scale\"");
}

// Sections are parsed one entry at a time (kernels/io/encodings_read_sections.c), with the
// semantics of the whole-tree reader: in a 0.6.1 section a duplicated tensor name counts once, at
// its first place, with its last value (Python's json); a duplicated section takes its last
// value; an error deep in a later entry, after escaped keys and nested strings holding brackets,
// keeps its JSON path and line:column.
TEST(EncodingsErrors, StreamedSectionsKeepTheSemanticsOfOneTree) {
    const auto chan = [](const char * scale) {
        return std::string(R"([{"bitwidth": 8, "dtype": "int", "is_symmetric": "False", "max": 1.0, )"
                           R"("min": -1.0, "offset": -128, "scale": )") + scale + "}]";
    };
    const std::string dup = "{\"version\": \"0.6.1\", \"activation_encodings\": {\"a\": " + chan("0.5") +
                            ", \"b\": " + chan("0.125") + ", \"a\": " + chan("0.25") +
                            "}, \"param_encodings\": {\"x\": " + chan("1.0") + "}, \"param_encodings\": {\"y\": " +
                            chan("2.0") + "}}";
    Loaded d(dup);
    ASSERT_EQ(d.status, QSIM_SUCCESS) << d.err.message;
    ASSERT_EQ(d.view().n_entries, 3u);
    EXPECT_EQ(std::string(d.view().entries[0].name), "a");
    EXPECT_EQ(d.view().entries[0].scale[0], 0.25f);
    EXPECT_EQ(std::string(d.view().entries[1].name), "b");
    EXPECT_EQ(std::string(d.view().entries[2].name), "y");
    EXPECT_EQ(d.view().entries[2].role, QSIM_ENCODING_PARAM);

    const std::string deep = "{\"version\": \"0.6.1\",\n\"activation_encodings\": {\"q\\\"[{\": " + chan("0.5") +
                             ",\n \"r]}\": " + chan("0.5") + ",\n \"s\": " + chan("-2.5") +
                             "},\n\"param_encodings\": {}}";
    expect_error(deep,
                 "invalid scale at $.activation_encodings.s[0].scale (line {L}, column {C}): must be > 0, "
                 "got -2.5",
                 "$.activation_encodings.s[0].scale", "-2.5");
}

}  // namespace
