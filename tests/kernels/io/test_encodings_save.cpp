// Loading and saving encodings files (qsim/encodings.h): saving is atomic and leaves nothing on
// failure; load errors name the file; the supported versions.
#include "encodings_test_util.h"

namespace {

using namespace enc_test;

// --- load and save ------------------------------------------------------------------------------

// A fresh directory under the build tree's working directory, removed with its content after.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "qsim_enc_test_XXXXXX";
        char * made = mkdtemp(tmpl);
        EXPECT_NE(made, nullptr);
        path = made ? made : "";
    }
    ~TempDir() {
        chmod(path.c_str(), 0700);
        for (const std::string & f : files()) {
            std::remove((path + "/" + f).c_str());
        }
        rmdir(path.c_str());
    }
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        DIR * d = opendir(path.c_str());
        for (struct dirent * e = d ? readdir(d) : nullptr; e != nullptr; e = readdir(d)) {
            std::string name = e->d_name;
            if (name != "." && name != "..") {
                out.push_back(name);
            }
        }
        if (d) {
            closedir(d);
        }
        std::sort(out.begin(), out.end());
        return out;
    }
};

TEST(EncodingsSave, WritesAtomicallyAndReplaces) {
    Loaded p = Loaded::file(data_dir() + "v1_0_0.encodings");
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    TempDir dir;
    const std::string path = dir.path + "/model.encodings";
    { std::ofstream(path) << "old content"; }
    qsim_error err;
    ASSERT_EQ(qsim_encodings_save(p.enc, path.c_str(), "1.0.0", &err), QSIM_SUCCESS) << err.message;
    EXPECT_EQ(slurp(path), slurp(data_dir() + "v1_0_0.encodings"));
    EXPECT_EQ(dir.files(), std::vector<std::string>{"model.encodings"});  // no temporary left
    Loaded back = Loaded::file(path);
    EXPECT_EQ(back.status, QSIM_SUCCESS) << back.err.message;
}

TEST(EncodingsSave, FailureLeavesNothing) {
    Loaded p = Loaded::file(data_dir() + "v1_0_0.encodings");
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    TempDir dir;
    qsim_error err;
    // Into a directory that does not exist.
    const std::string missing = dir.path + "/no/such/dir/model.encodings";
    EXPECT_EQ(qsim_encodings_save(p.enc, missing.c_str(), "1.0.0", &err), QSIM_IO_ERROR);
    EXPECT_EQ(std::string(err.message),
              "cannot create a temporary file next to '" + missing + "': No such file or directory");
    EXPECT_FALSE(exists(missing));
    // Onto a directory: the temporary is written, the rename fails, the temporary goes.
    const std::string target = dir.path + "/is_a_dir";
    ASSERT_EQ(mkdir(target.c_str(), 0700), 0);
    EXPECT_EQ(qsim_encodings_save(p.enc, target.c_str(), "1.0.0", &err), QSIM_IO_ERROR);
    EXPECT_EQ(std::string(err.message),
              "cannot rename the temporary file onto '" + target + "': Is a directory");
    EXPECT_EQ(dir.files(), std::vector<std::string>{"is_a_dir"});
    // A value the writer refuses: nothing is created and an existing file keeps its content.
    Model bad;
    Int nan{"w"};
    nan.scale = {std::numeric_limits<float>::quiet_NaN()};
    bad.add(nan.entry());
    const std::string kept = dir.path + "/kept.encodings";
    { std::ofstream(kept) << "old content"; }
    EXPECT_EQ(qsim_encodings_save(bad.enc, kept.c_str(), "1.0.0", &err), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(slurp(kept), "old content");
    EXPECT_EQ(dir.files(), (std::vector<std::string>{"is_a_dir", "kept.encodings"}));
}

TEST(EncodingsSave, ReadOnlyDirectory) {
    if (geteuid() == 0) {
        GTEST_SKIP() << "running as root: directory permissions do not stop root "
                        "(FailureLeavesNothing covers the cleanup)";
    }
    Loaded p = Loaded::file(data_dir() + "v1_0_0.encodings");
    TempDir dir;
    ASSERT_EQ(chmod(dir.path.c_str(), 0500), 0);
    const std::string path = dir.path + "/model.encodings";
    qsim_error err;
    EXPECT_EQ(qsim_encodings_save(p.enc, path.c_str(), "1.0.0", &err), QSIM_IO_ERROR);
    EXPECT_EQ(std::string(err.message),
              "cannot create a temporary file next to '" + path + "': Permission denied");
    EXPECT_EQ(dir.files(), std::vector<std::string>{});
}

TEST(EncodingsLoad, ErrorsNameTheFile) {
    qsim_encodings * enc = nullptr;
    qsim_error err;
    EXPECT_EQ(qsim_encodings_load("/no/such.encodings", &enc, &err), QSIM_IO_ERROR);
    EXPECT_EQ(std::string(err.message), "cannot open '/no/such.encodings': No such file or directory");
    EXPECT_EQ(enc, nullptr);
    TempDir dir;
    const std::string path = dir.path + "/bad.encodings";
    { std::ofstream(path) << "{\"version\": \"9\"}"; }
    EXPECT_EQ(qsim_encodings_load(path.c_str(), &enc, &err), QSIM_PARSE_ERROR);
    EXPECT_EQ(std::string(err.message),
              path + ": unsupported encodings version '9' at $.version (line 1, column 13); "
                     "supported: 0.6.1, 1.0.0, 2.0.0");
    EXPECT_EQ(err.line, 1);
    EXPECT_EQ(err.column, 13);
    EXPECT_EQ(qsim_encodings_parse(nullptr, 0, &enc, &err), QSIM_INVALID_ARGUMENT);
}

TEST(EncodingsVersions, ListsTheThree) {
    size_t n = 0;
    const char * const * v = qsim_encodings_versions(&n);
    ASSERT_EQ(n, 3u);
    EXPECT_STREQ(v[0], "0.6.1");
    EXPECT_STREQ(v[1], "1.0.0");
    EXPECT_STREQ(v[2], "2.0.0");
}

}  // namespace
