// The API contract of the quantsim config reader (qsim/config.h): load names the file, NULL
// arguments, the nearest-key helper.
#include "config_test_util.h"

namespace {

using namespace config_test;

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
