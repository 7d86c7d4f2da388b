// Reliability of the JSON readers (kernels/io, issue 14): large objects keep Python's duplicate-key
// semantics through the member index, running out of memory inside cJSON reads as
// QSIM_OUT_OF_MEMORY, concurrent parses report their own error positions, lone surrogates and
// very long keys give located messages, and claimed sizes are checked before any allocation.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "io/json_util.h"
#include "qsim/config.h"
#include "qsim/encodings.h"
}

namespace {

std::string config_with_op_types(const std::string & op_types) {
    return "{\"defaults\": {\"ops\": {}, \"params\": {}}, \"params\": {}, \"op_type\": {" + op_types +
           "}, \"supergroups\": [], \"model_input\": {}, \"model_output\": {}}";
}

struct Config {
    qsim_config * cfg = nullptr;
    qsim_error    err;
    qsim_status   status;
    explicit Config(const std::string & t) : status(qsim_config_parse(t.data(), t.size(), &cfg, &err)) {}
    ~Config() { qsim_config_free(cfg); }
};

struct Enc {
    qsim_encodings * enc = nullptr;
    qsim_error       err;
    qsim_status      status;
    explicit Enc(const std::string & t)
        : status(qsim_encodings_parse(t.data(), t.size(), &enc, &err)) {}
    ~Enc() { qsim_encodings_free(enc); }
};

// 40,000 op types, every 1000th listed twice: the index keeps one member per key, in first-seen
// order, with the last value (as Python's json).
TEST(JsonMembers, LargeObjectKeepsDuplicateSemantics) {
    std::string body;
    const int n = 40000;
    for (int i = 0; i < n; i++) {
        body += (i ? "," : "") + std::string("\"Op") + std::to_string(i) +
                "\": {\"is_output_quantized\": \"False\"}";
        if (i % 1000 == 0) {
            body += ",\"Op" + std::to_string(i) + "\": {\"is_output_quantized\": \"True\"}";
        }
    }
    Config c(config_with_op_types(body));
    ASSERT_EQ(c.status, QSIM_SUCCESS) << c.err.message;
    const qsim_config_view * v = qsim_config_get(c.cfg);
    ASSERT_EQ(v->n_op_types, static_cast<size_t>(n));
    for (int i : {0, 1, 999, 1000, 1001, 39999}) {
        EXPECT_EQ(std::string(v->op_types[i].name), "Op" + std::to_string(i));
        EXPECT_EQ(v->op_types[i].is_output_quantized, i % 1000 == 0 ? QSIM_OPT_TRUE : QSIM_OPT_FALSE);
    }
}

// An error inside the duplicate's value is located at the duplicate (the value that counts).
TEST(JsonMembers, ErrorInDuplicatedKeyPointsAtTheLastValue) {
    Config c(config_with_op_types("\"A\": {}, \"B\": {}, \"A\": {\"is_output_quantized\": 3}"));
    ASSERT_EQ(c.status, QSIM_PARSE_ERROR);
    EXPECT_EQ(std::string(c.err.path), "$.op_type.A.is_output_quantized");
    EXPECT_EQ(c.err.column, 114) << c.err.message;  // the 3 in the second "A"
}

// 0.6.1 files with 40,000 entries read (the reader was quadratic in the number of keys).
TEST(JsonMembers, ManyEncodingsEntries) {
    std::string t = "{\"version\": \"0.6.1\", \"activation_encodings\": {";
    for (int i = 0; i < 40000; i++) {
        t += (i ? "," : "") + std::string("\"t") + std::to_string(i) +
             "\": [{\"bitwidth\": 8, \"dtype\": \"int\", \"is_symmetric\": \"False\", \"max\": 1.0, "
             "\"min\": -1.0, \"offset\": -128, \"scale\": 0.5}]";
    }
    t += "}, \"param_encodings\": {}}";
    Enc e(t);
    ASSERT_EQ(e.status, QSIM_SUCCESS) << e.err.message;
    EXPECT_EQ(qsim_encodings_get(e.enc)->n_entries, 40000u);
}

// Every allocation failure inside cJSON's parser is reported as out of memory, never as a
// syntax error at some column (the text is valid JSON).
TEST(JsonParse, OutOfMemoryInParserIsReportedAsSuch) {
    const std::string text = config_with_op_types("\"Conv\": {\"is_output_quantized\": \"True\"}");
    int failures = 0;
    for (long n = 0; n < 40; n++) {
        qsim_json_test_fail_allocs_after(n);
        Config c(text);
        qsim_json_test_fail_allocs_after(-1);
        if (c.status == QSIM_SUCCESS) {
            break;  // enough allocations for the whole document
        }
        failures++;
        EXPECT_EQ(c.status, QSIM_OUT_OF_MEMORY) << "after " << n << ": " << c.err.message;
        EXPECT_EQ(c.err.status, QSIM_OUT_OF_MEMORY);
        EXPECT_NE(std::string(c.err.message).find("out of memory"), std::string::npos);
        EXPECT_EQ(c.err.line, 0);
    }
    EXPECT_GT(failures, 5);
    Config ok(text);
    EXPECT_EQ(ok.status, QSIM_SUCCESS);
}

// Threads parsing different bad documents at once each get their own error (line:column and
// message), and cJSON's parser, which writes a global (its last error) on every failure, never
// runs in two threads at once. Each document has a long valid prefix so that parses last long
// enough to overlap: with the mutex in kernels/io/json_util.c removed, several threads are
// inside cJSON together and the test fails.
TEST(JsonParse, ConcurrentParsesReportTheirOwnErrors) {
    constexpr int kThreads = 8, kRounds = 150;
    qsim_json_test_most_concurrent_parses();  // reset
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([t, &wrong] {
            std::string ops;
            for (int i = 0; i < 300 + 40 * t; i++) {
                ops += "\"Op" + std::to_string(i) + "\": {\"is_output_quantized\": \"False\"}, ";
            }
            // thread t's error: a ']' where a value belongs, on line t + 2
            const std::string bad = config_with_op_types(ops + std::string(static_cast<size_t>(t) + 1, '\n') + "\"X\": ]");
            const int line = t + 2;
            const std::string bad_enc = std::string(static_cast<size_t>(t) + 1, ' ') + "{\"version\": \"2.0.0\", \"encodings\": [}";
            const int enc_column = t + 37;
            for (int i = 0; i < kRounds; i++) {
                qsim_error err;
                qsim_config * cfg = nullptr;
                qsim_config_parse(bad.data(), bad.size(), &cfg, &err);
                qsim_config_free(cfg);
                wrong += err.status != QSIM_PARSE_ERROR || err.line != line || err.column != 6 ||
                         std::string(err.message).find("line " + std::to_string(line) + ", column 6") == std::string::npos;
                Enc e(bad_enc);
                wrong += e.status != QSIM_PARSE_ERROR || e.err.line != 1 || e.err.column != enc_column;
            }
        });
    }
    for (auto & th : threads) {
        th.join();
    }
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(qsim_json_test_most_concurrent_parses(), 1) << "parses ran inside cJSON at the same time";
}

TEST(JsonParse, LoneSurrogatesAreLocated) {
    const std::string high = "{\n  \"version\": \"2.0.0\", \"encodings\": [{\"name\": \"a\\ud800\"}]}";
    Enc e(high);
    ASSERT_EQ(e.status, QSIM_PARSE_ERROR);
    EXPECT_EQ(std::string(e.err.message),
              "invalid JSON at line 2, column 48: lone UTF-16 high surrogate in a \\u escape "
              "(expected a low surrogate \\uDC00..\\uDFFF after it), found '\\'");
    Enc low("{\"version\": \"\\udc00\"}");
    ASSERT_EQ(low.status, QSIM_PARSE_ERROR);
    EXPECT_EQ(low.err.column, 14) << low.err.message;
    Enc pair("{\"version\": \"\\ud83d\\ude00\"}");  // a valid pair: read, then rejected as a version
    EXPECT_NE(std::string(pair.err.message).find("unsupported encodings version"), std::string::npos)
        << pair.err.message;
}

// A 10,000-character unknown key is cut in the message, which keeps its location.
TEST(JsonErrors, LongUnknownKeyKeepsTheLocation) {
    const std::string key(10000, 'k');
    Config c("{\"defaults\": {\"ops\": {}, \"params\": {}, \"" + key + "\": 1}}");
    ASSERT_EQ(c.status, QSIM_PARSE_ERROR);
    const std::string m = c.err.message;
    EXPECT_NE(m.find("unknown key 'kkkk"), std::string::npos) << m;
    EXPECT_NE(m.find("...' at $.defaults (line 1, column 40); expected one of: ops"),
              std::string::npos) << m;
}

// 0.6.1 min > max (and min == max) are refused, naming the channel.
TEST(EncodingsValuesChecked, V061MinNotBelowMax) {
    for (const char * bounds : {"\"max\": -1.0, \"min\": 1.0", "\"max\": 1.0, \"min\": 1.0"}) {
        Enc e(std::string("{\"version\": \"0.6.1\", \"activation_encodings\": {\"x\": [{\"bitwidth\": 8, "
                          "\"dtype\": \"int\", \"is_symmetric\": \"False\", ") +
              bounds + ", \"offset\": -128, \"scale\": 0.5}]}, \"param_encodings\": {}}");
        ASSERT_EQ(e.status, QSIM_PARSE_ERROR) << bounds;
        EXPECT_EQ(std::string(e.err.path), "$.activation_encodings.x[0].max") << e.err.message;
        EXPECT_NE(std::string(e.err.message).find("max must be greater than min"), std::string::npos);
    }
}

// A 6 MB file that claims 10^12 values (a first row of 10^6, then 10^6 - 1 rows of one value) is
// refused as ragged before anything of the claimed size (8 TB) is allocated.
TEST(EncodingsValuesChecked, ClaimedSizeIsCheckedBeforeAllocating) {
    const size_t n = 1000000;
    std::string y = "[[";
    for (size_t i = 0; i < n; i++) {
        y += i ? ",1" : "1";
    }
    y += "]";
    for (size_t i = 1; i < n; i++) {
        y += ",[1]";
    }
    y += "]";
    Enc e("{\"version\": \"2.0.0\", \"encodings\": [{\"name\": \"w\", \"output_dtype\": \"int8\", "
          "\"y_scale\": " + y + ", \"axis\": 0, \"block_size\": 1}]}");
    ASSERT_EQ(e.status, QSIM_PARSE_ERROR) << e.err.message;
    EXPECT_NE(std::string(e.err.message).find("ragged lists"), std::string::npos) << e.err.message;
    EXPECT_EQ(std::string(e.err.path), "$.encodings[0].y_scale[1]") << e.err.message;
}

}  // namespace
