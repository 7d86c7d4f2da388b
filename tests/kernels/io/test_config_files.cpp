// The quantsim config reader (qsim/config.h) on AIMET's files and our presets, and the forms it
// accepts (booleans, defaults, duplicate keys, kernels and constraints).
#include "config_test_util.h"

namespace {

using namespace config_test;

// --- AIMET's files and our presets ------------------------------------------------------------

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

}  // namespace

TEST(ConfigValues, FormatNamesAreKernelPrecisions) {
    Parsed p(doc("op_type", R"({"Gemm": {"supported_kernels": [{"activation": {"dtype": "fp8_e4m3"},)"
                            R"( "param": {"dtype": "mxfp4", "bitwidth": 4}}, {"activation": {"dtype": "nvfp4"},)"
                            R"( "param": {"dtype": "mxfp4", "dtype": "int", "bitwidth": 8}}]}})"));
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    const qsim_config_op_type & s = op(p, "Gemm");
    ASSERT_EQ(s.n_supported_kernels, 2u);
    EXPECT_EQ(s.supported_kernels[0].activation.dtype, QSIM_DTYPE_FORMAT);
    EXPECT_STREQ(s.supported_kernels[0].activation.format, "fp8_e4m3");
    EXPECT_EQ(s.supported_kernels[0].activation.bitwidth, 8);  // the format's bits when left out
    EXPECT_STREQ(s.supported_kernels[0].param.format, "mxfp4");
    EXPECT_EQ(s.supported_kernels[0].param.bitwidth, 4);
    EXPECT_STREQ(s.supported_kernels[1].activation.format, "nvfp4");
    EXPECT_EQ(s.supported_kernels[1].param.dtype, QSIM_DTYPE_INT);  // the last dtype counts
    EXPECT_EQ(s.supported_kernels[1].param.format, nullptr);
    const std::string names = qsim_config_format_names();
    for (const char * name : {"fp8_e5m2", "fp6_e3m2", "fp4_e2m1", "mxfp8_e5m2", "mxint8"}) {
        EXPECT_NE(names.find(name), std::string::npos) << name;
        Parsed k(doc("op_type", std::string(R"({"Conv": {"supported_kernels": [{"activation": {"dtype": ")") +
                                    name + R"("}}]}})"));
        EXPECT_EQ(k.status, QSIM_SUCCESS) << name << ": " << k.err.message;
    }
}
