// The encodings writer and model (qsim/encodings.h): the writer refuses NaN/Inf, off-grid values
// and what a version cannot hold; qsim_encodings_add checks structure; lookups and setters.
#include "encodings_test_util.h"

namespace {

using namespace enc_test;

// --- the writer refuses what a file cannot hold -------------------------------------------------

TEST(EncodingsWriter, RefusesNonFiniteAndOffGridValues) {
    struct Case {
        const char * what;
        Int          entry;
        const char * message;
    };
    Int nan_scale{"conv.weight", QSIM_ENCODING_PARAM, 8, 1, 1, QSIM_ENCODING_PER_CHANNEL,
                  {0.5f, std::numeric_limits<float>::quiet_NaN()}, {-128, -128}};
    Int inf_max{"x", QSIM_ENCODING_ACTIVATION};
    inf_max.min = {-1.0f};
    inf_max.max = {std::numeric_limits<float>::infinity()};
    Int zero_scale{"x"};
    zero_scale.scale = {0.0f};
    Int positive_offset{"x", QSIM_ENCODING_ACTIVATION, 8, 0, 0};
    positive_offset.offset = {114};  // the ONNX sign by mistake
    Int below_grid{"x", QSIM_ENCODING_ACTIVATION, 4, 0, 0};
    below_grid.offset = {-16};  // 4 bits: offsets in [-15, 0]
    const Case cases[] = {
        {"NaN", nan_scale,
         "cannot write param 'conv.weight' as 1.0.0: scale[1] must be a finite number, got nan"},
        {"Inf", inf_max,
         "cannot write activation 'x' as 1.0.0: max[0] must be a finite number, got inf"},
        {"zero", zero_scale, "cannot write param 'x' as 1.0.0: scale[0] must be > 0, got 0"},
        {"sign", positive_offset,
         "cannot write activation 'x' as 1.0.0: offset[0] must be an integer in [-255, 0] "
         "(offset = -zero_point on the 8-bit unsigned grid), got 114"},
        {"grid", below_grid,
         "cannot write activation 'x' as 1.0.0: offset[0] must be an integer in [-15, 0] "
         "(offset = -zero_point on the 4-bit unsigned grid), got -16"},
    };
    for (const Case & c : cases) {
        Model m;
        m.add(c.entry.entry());
        EXPECT_EQ(refusal(m.enc, "1.0.0"), c.message) << c.what;
    }
}

TEST(EncodingsWriter, RefusesWhatTheVersionCannotSay) {
    Model blocks;
    Int b{"fc.weight", QSIM_ENCODING_PARAM, 4, 1, 1, QSIM_ENCODING_PER_BLOCK, {0.5f, 0.25f}, {-8, -8}};
    b.block_size = 16;
    blocks.add(b.entry());
    EXPECT_EQ(refusal(blocks.enc, "0.6.1"),
              "cannot write param 'fc.weight' as 0.6.1: per-block encodings need version 1.0.0 or "
              "2.0.0");
    EXPECT_EQ(refusal(blocks.enc, "2.0.0"),
              "cannot write param 'fc.weight' as 2.0.0: 2.0.0 needs the block axis and the scale "
              "tensor's shape (2 or more dims, the axis one of them), which 1.0.0 does not record");
    Model channels;
    channels.add(Int{"w", QSIM_ENCODING_PARAM, 8, 1, 1, QSIM_ENCODING_PER_CHANNEL, {0.5f, 0.25f},
                     {-128, -128}}.entry());
    EXPECT_EQ(refusal(channels.enc, "2.0.0"),
              "cannot write param 'w' as 2.0.0: 2.0.0 needs the channel axis, which 0.6.1 and "
              "1.0.0 do not record");
    EXPECT_EQ(refusal(channels.enc, "3.0.0"),
              "cannot write encodings: unsupported version '3.0.0'; supported: 0.6.1, 1.0.0, 2.0.0");
}

// 0.6.1 derives min/max when they are not recorded; one beyond float32 cannot be written.
TEST(EncodingsWriter, RefusesDerivedBoundsBeyondFloat32) {
    Model m;
    Int big{"x", QSIM_ENCODING_ACTIVATION, 8, 0, 0};
    big.scale = {FLT_MAX / 2};
    big.offset = {0};  // max = scale * (0 + 255), about 4.3e40
    m.add(big.entry());
    char want[64];
    std::snprintf(want, sizeof(want), "%.9g", static_cast<double>(FLT_MAX / 2) * 255.0);
    EXPECT_EQ(refusal(m.enc, "0.6.1"),
              std::string("cannot write activation 'x' as 0.6.1: max[0] derived from scale and "
                          "offset must fit in float32, got ") + want);
    EXPECT_NE(write(m.enc, "1.0.0"), "");  // 1.0.0 records no min/max
}

TEST(EncodingsWriter, RoleUnknownAfterV2) {
    Loaded p = Loaded::file(data_dir() + "v2_0_0.encodings");
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    EXPECT_EQ(refusal(p.enc, "1.0.0"),
              "cannot write entry 'input' as 1.0.0: its role (activation or param) is unknown "
              "(2.0.0 does not record it)");
}

// --- building a model ---------------------------------------------------------------------------

TEST(EncodingsModel, AddChecksStructure) {
    Int dup{"x"};
    EXPECT_EQ(add_refusal(dup.entry()), "cannot add param 'x': the name is already there");
    Int empty{""};
    EXPECT_EQ(add_refusal(empty.entry()), "cannot add an encoding: the name is empty");
    Int two{"t"};
    two.scale = {0.5f, 0.5f};
    two.offset = {-1, -1};
    EXPECT_EQ(add_refusal(two.entry()), "cannot add param 't': a per-tensor entry has n == 1 and no axis");
    Int wide{"t"};
    wide.bitwidth = 33;
    EXPECT_EQ(add_refusal(wide.entry()), "cannot add param 't': an int entry's bitwidth must be in 1..32");
    Int half{"t"};
    half.min = {0.0f};
    EXPECT_EQ(add_refusal(half.entry()), "cannot add param 't': min and max are both given or both NULL");
    Int shape{"t", QSIM_ENCODING_PARAM, 4, 1, 1, QSIM_ENCODING_PER_BLOCK, {1, 1, 1}, {-8, -8, -8}};
    shape.block_size = 2;
    shape.shape = {2, 2};
    EXPECT_EQ(add_refusal(shape.entry()), "cannot add param 't': the scale shape's product must equal n");
    qsim_encoding_entry f = float_entry("t", QSIM_ENCODING_PARAM, 1);
    EXPECT_EQ(add_refusal(f), "cannot add param 't': a float entry's bitwidth must be 2..32");
    f = float_entry("t", QSIM_ENCODING_PARAM, 33);
    EXPECT_EQ(add_refusal(f), "cannot add param 't': a float entry's bitwidth must be 2..32");
}

TEST(EncodingsModel, LookupFoundAndNotFound) {
    Model m;
    const size_t n = 1000;  // past several rehashes of the name index
    std::vector<Int> entries;
    for (size_t i = 0; i < n; i++) {
        entries.push_back(Int{"layer" + std::to_string(i) + ".weight"});
        entries.back().scale = {static_cast<float>(i + 1)};
        m.add(entries.back().entry());
    }
    for (size_t i = 0; i < n; i++) {
        const qsim_encoding_entry * e = nullptr;
        ASSERT_EQ(qsim_encodings_lookup(m.enc, entries[i].name.c_str(), &e), QSIM_SUCCESS) << i;
        EXPECT_EQ(e->scale[0], static_cast<float>(i + 1)) << "entry " << i;
    }
    const qsim_encoding_entry * e = reinterpret_cast<const qsim_encoding_entry *>(&m);
    EXPECT_EQ(qsim_encodings_lookup(m.enc, "layer1000.weight", &e), QSIM_NOT_FOUND);
    EXPECT_EQ(e, nullptr);
    EXPECT_EQ(qsim_encodings_lookup(m.enc, nullptr, &e), QSIM_INVALID_ARGUMENT);
    Model empty;
    EXPECT_EQ(qsim_encodings_lookup(empty.enc, "x", &e), QSIM_NOT_FOUND);
    qsim_encodings_free(nullptr);  // a no-op
}

TEST(EncodingsModel, SettersCopyAndClear) {
    Model m;
    qsim_error err;
    std::string scheme = "tf";
    qsim_quantizer_args args = {8, 4, QSIM_ENCODING_INT, 1, 0, scheme.c_str()};
    ASSERT_EQ(qsim_encodings_set_quantizer_args(m.enc, &args, &err), QSIM_SUCCESS);
    scheme[0] = 'X';  // the model holds its own copy
    EXPECT_STREQ(qsim_encodings_get(m.enc)->quantizer_args->quant_scheme, "tf");
    ASSERT_EQ(qsim_encodings_set_quantizer_args(m.enc, nullptr, &err), QSIM_SUCCESS);
    EXPECT_EQ(qsim_encodings_get(m.enc)->quantizer_args, nullptr);
    EXPECT_EQ(qsim_encodings_set_producer(m.enc, "p", nullptr, &err), QSIM_INVALID_ARGUMENT);
    ASSERT_EQ(qsim_encodings_set_producer(m.enc, "p", "1", &err), QSIM_SUCCESS);
    EXPECT_STREQ(qsim_encodings_get(m.enc)->producer_version, "1");
    ASSERT_EQ(qsim_encodings_add_excluded_layer(m.enc, "drop", &err), QSIM_SUCCESS);
    EXPECT_EQ(write(m.enc, "1.0.0"),
              "{\n    \"version\": \"1.0.0\",\n    \"producer\": {\"package\": \"p\", \"version\": "
              "\"1\"},\n    \"activation_encodings\": [],\n    \"param_encodings\": [],\n    "
              "\"excluded_layers\": [\"drop\"]\n}\n");
}

}  // namespace
