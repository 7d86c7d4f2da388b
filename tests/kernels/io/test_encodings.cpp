// The encodings reader and writer (qsim/encodings.h): the hand-written example of each version
// (tests/data/encodings/) reads as it says and writes back byte for byte; values survive every
// conversion bit for bit; every error class reports its message, JSON path and line:column; the
// writer refuses NaN/Inf; saving is atomic.
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

namespace {

// tests/data/encodings/, found from this file's path (CMake compiles it by absolute path).
std::string data_dir() {
    std::string here = __FILE__;
    return here.substr(0, here.rfind("/kernels/")) + "/data/encodings/";
}

std::string slurp(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot read " << path;
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool exists(const std::string & path) {
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
std::string write(const qsim_encodings * enc, const char * version) {
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
std::string refusal(const qsim_encodings * enc, const char * version) {
    char * text = nullptr;
    qsim_error err;
    EXPECT_EQ(qsim_encodings_write(enc, version, &text, nullptr, &err), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(text, nullptr);
    std::free(text);
    return err.message;
}

std::vector<float> floats(const float * v, size_t n) {
    return v ? std::vector<float>(v, v + n) : std::vector<float>();
}

std::vector<int64_t> ints(const int64_t * v, size_t n) {
    return v ? std::vector<int64_t>(v, v + n) : std::vector<int64_t>();
}

// Line and column (from 1) of the first (or last) occurrence of `needle` in `text`, counted here.
std::pair<int, int> where(const std::string & text, const std::string & needle, bool last) {
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
void expect_error(const std::string & text, std::string message, const std::string & path,
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

qsim_encoding_entry float_entry(const char * name, qsim_encoding_role role, int bitwidth) {
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
std::string add_refusal(const qsim_encoding_entry & e) {
    Model m;
    Int ok{"x"};
    m.add(ok.entry());
    qsim_error err;
    EXPECT_EQ(qsim_encodings_add(m.enc, &e, &err), QSIM_INVALID_ARGUMENT);
    EXPECT_EQ(qsim_encodings_get(m.enc)->n_entries, 1u);
    return err.message;
}

const char * const kVersions[] = {"0.6.1", "1.0.0", "2.0.0"};

// --- the hand-written examples ------------------------------------------------------------------

TEST(EncodingsFiles, V061ReadsWhatItSays) {
    Loaded p = Loaded::file(data_dir() + "v0_6_1.encodings");
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    ASSERT_STREQ(p.view().version, "0.6.1");
    ASSERT_EQ(p.view().n_entries, 5u);
    EXPECT_EQ(p.view().producer_package, nullptr);
    // Activations first (file order), then params.
    const char * order[] = {"input", "relu1_out", "fc_out", "conv1.weight", "fc.weight"};
    for (size_t i = 0; i < 5; i++) {
        EXPECT_STREQ(p.view().entries[i].name, order[i]) << "entry " << i;
    }
    const qsim_encoding_entry & in = p.at("input");
    EXPECT_EQ(in.role, QSIM_ENCODING_ACTIVATION);
    EXPECT_EQ(in.kind, QSIM_ENCODING_INT);
    EXPECT_EQ(in.bitwidth, 8);
    EXPECT_EQ(in.is_symmetric, 0);
    EXPECT_EQ(in.is_signed, 0);  // 0.6.1: signed iff symmetric
    EXPECT_EQ(in.layout, QSIM_ENCODING_PER_TENSOR);
    EXPECT_EQ(floats(in.scale, in.n), std::vector<float>{0.0185f});
    EXPECT_EQ(ints(in.offset, in.n), std::vector<int64_t>{-114});
    EXPECT_EQ(floats(in.min, in.n), std::vector<float>{-2.109f});
    EXPECT_EQ(floats(in.max, in.n), std::vector<float>{2.6085f});
    EXPECT_EQ(in.axis, QSIM_ENCODING_NO_AXIS);
    const qsim_encoding_entry & fc_out = p.at("fc_out");
    EXPECT_EQ(fc_out.kind, QSIM_ENCODING_FLOAT);
    EXPECT_EQ(fc_out.bitwidth, 16);
    EXPECT_EQ(fc_out.n, 0u);
    const qsim_encoding_entry & w = p.at("conv1.weight");
    EXPECT_EQ(w.role, QSIM_ENCODING_PARAM);
    EXPECT_EQ(w.layout, QSIM_ENCODING_PER_CHANNEL);  // three elements
    EXPECT_EQ(w.is_symmetric, 1);
    EXPECT_EQ(w.is_signed, 1);
    EXPECT_EQ(floats(w.scale, w.n), (std::vector<float>{0.004f, 0.002f, 0.01f}));
    EXPECT_EQ(ints(w.offset, w.n), (std::vector<int64_t>{-128, -128, -128}));
    EXPECT_EQ(floats(w.min, w.n), (std::vector<float>{-0.512f, -0.256f, -1.28f}));
    EXPECT_EQ(p.at("fc.weight").bitwidth, 4);
    EXPECT_EQ(ints(p.at("fc.weight").offset, 1), std::vector<int64_t>{-8});
    ASSERT_EQ(p.view().n_excluded_layers, 1u);
    EXPECT_STREQ(p.view().excluded_layers[0], "dropout");
    const qsim_quantizer_args * a = p.view().quantizer_args;
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->activation_bitwidth, 8);
    EXPECT_EQ(a->param_bitwidth, 8);
    EXPECT_EQ(a->dtype, QSIM_ENCODING_INT);
    EXPECT_EQ(a->is_symmetric, 1);
    EXPECT_EQ(a->per_channel_quantization, 1);
    EXPECT_STREQ(a->quant_scheme, "post_training_tf_enhanced");
}

TEST(EncodingsFiles, V100ReadsWhatItSays) {
    Loaded p = Loaded::file(data_dir() + "v1_0_0.encodings");
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    ASSERT_EQ(p.view().n_entries, 5u);
    EXPECT_STREQ(p.view().producer_package, "torchqsim");
    EXPECT_STREQ(p.view().producer_version, "0.1.0");
    const qsim_encoding_entry & in = p.at("input");
    EXPECT_EQ(in.role, QSIM_ENCODING_ACTIVATION);
    EXPECT_EQ(in.min, nullptr);  // 1.0.0 records no min/max
    EXPECT_EQ(ints(in.offset, in.n), std::vector<int64_t>{-114});
    const qsim_encoding_entry & fc = p.at("fc.weight");
    EXPECT_EQ(fc.layout, QSIM_ENCODING_PER_BLOCK);
    EXPECT_EQ(fc.block_size, 16);
    EXPECT_EQ(fc.ndim, 0u);  // 1.0.0 flattens the scale tensor
    EXPECT_EQ(fc.axis, QSIM_ENCODING_NO_AXIS);
    EXPECT_EQ(floats(fc.scale, fc.n), (std::vector<float>{0.125f, 0.25f, 0.5f, 0.0625f}));
    const qsim_encoding_entry & bias = p.at("conv1.bias");
    EXPECT_EQ(bias.bitwidth, 32);
    EXPECT_EQ(ints(bias.offset, 1), std::vector<int64_t>{-2147483648LL});  // -2^31
    EXPECT_EQ(p.at("conv1.weight").layout, QSIM_ENCODING_PER_CHANNEL);
    EXPECT_EQ(p.at("fc_out").kind, QSIM_ENCODING_FLOAT);
    EXPECT_EQ(p.view().n_excluded_layers, 0u);
    EXPECT_EQ(p.view().quantizer_args->param_bitwidth, 4);
}

TEST(EncodingsFiles, V200ReadsWhatItSays) {
    Loaded p = Loaded::file(data_dir() + "v2_0_0.encodings");
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    ASSERT_EQ(p.view().n_entries, 5u);
    EXPECT_EQ(p.view().quantizer_args, nullptr);
    // uint8, zero point 114: AIMET offset = -114, asymmetric.
    const qsim_encoding_entry & in = p.at("input");
    EXPECT_EQ(in.role, QSIM_ENCODING_ROLE_UNKNOWN);
    EXPECT_EQ(in.is_signed, 0);
    EXPECT_EQ(in.is_symmetric, 0);
    EXPECT_EQ(ints(in.offset, 1), std::vector<int64_t>{-114});
    // int8 without zero points: offset = -0 - 2^7 = -128 on the unsigned grid; symmetric.
    const qsim_encoding_entry & w = p.at("conv1.weight");
    EXPECT_EQ(w.is_signed, 1);
    EXPECT_EQ(w.is_symmetric, 1);
    EXPECT_EQ(w.layout, QSIM_ENCODING_PER_CHANNEL);
    EXPECT_EQ(w.axis, 0);
    EXPECT_EQ(ints(w.offset, w.n), (std::vector<int64_t>{-128, -128, -128}));
    // int8, zero points [0, -3]: offsets [-128, 3 - 128 = -125]; not all zero, so asymmetric.
    const qsim_encoding_entry & d = p.at("deconv.weight");
    EXPECT_EQ(d.axis, 1);
    EXPECT_EQ(d.is_symmetric, 0);
    EXPECT_EQ(ints(d.offset, d.n), (std::vector<int64_t>{-128, -125}));
    // int4 blocks: scale tensor [2, 2] row-major, block axis 1, offset -0 - 2^3 = -8.
    const qsim_encoding_entry & fc = p.at("fc.weight");
    EXPECT_EQ(fc.layout, QSIM_ENCODING_PER_BLOCK);
    EXPECT_EQ(fc.bitwidth, 4);
    EXPECT_EQ(fc.axis, 1);
    EXPECT_EQ(fc.block_size, 16);
    EXPECT_EQ(ints(fc.shape, fc.ndim), (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(floats(fc.scale, fc.n), (std::vector<float>{0.125f, 0.25f, 0.5f, 0.0625f}));
    EXPECT_EQ(ints(fc.offset, fc.n), (std::vector<int64_t>{-8, -8, -8, -8}));
    EXPECT_EQ(ints(p.at("conv1.bias").offset, 1), std::vector<int64_t>{-2147483648LL});
}

TEST(EncodingsFiles, EachVersionRewritesByteForByte) {
    const std::pair<const char *, const char *> files[] = {
        {"0.6.1", "v0_6_1.encodings"}, {"1.0.0", "v1_0_0.encodings"}, {"2.0.0", "v2_0_0.encodings"}};
    for (const auto & [v, name] : files) {
        const std::string text = slurp(data_dir() + name);
        Loaded p(text);
        ASSERT_EQ(p.status, QSIM_SUCCESS) << name << ": " << p.err.message;
        EXPECT_EQ(write(p.enc, v), text) << name;
        EXPECT_EQ(write(p.enc, v), write(p.enc, v)) << name << ": writing twice differs";
    }
}

// AIMET's own 0.6.1 layout (json.dump(sort_keys=True, indent=4); docs/aimet.md §6.3): the
// doubles it prints are float32 values, read exactly; rewriting gives our canonical text, which
// reads back to the same values.
TEST(EncodingsFiles, AimetWrittenV061) {
    const std::string aimet = R"({
    "activation_encodings": {
        "input": [
            {
                "bitwidth": 8,
                "dtype": "int",
                "is_symmetric": "False",
                "max": 2.6086959838867188,
                "min": -2.109158515930176,
                "offset": -114,
                "scale": 0.018501389771699905
            }
        ]
    },
    "excluded_layers": [],
    "param_encodings": {
        "fc.weight": [
            {
                "bitwidth": 16,
                "dtype": "float"
            }
        ]
    },
    "quantizer_args": {
        "activation_bitwidth": 8,
        "dtype": "int",
        "is_symmetric": true,
        "param_bitwidth": 8,
        "per_channel_quantization": false,
        "quant_scheme": "post_training_tf_enhanced"
    },
    "version": "0.6.1"
})";
    Loaded p(aimet);
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    const qsim_encoding_entry & in = p.at("input");
    EXPECT_EQ(in.scale[0], static_cast<float>(0.018501389771699905));
    EXPECT_EQ(in.max[0], static_cast<float>(2.6086959838867188));
    EXPECT_EQ(in.min[0], static_cast<float>(-2.109158515930176));
    Loaded again(write(p.enc, "0.6.1"));
    ASSERT_EQ(again.status, QSIM_SUCCESS) << again.err.message;
    EXPECT_TRUE(qsim_test::same_bits(again.at("input").scale[0], in.scale[0]));
    EXPECT_TRUE(qsim_test::same_bits(again.at("input").min[0], in.min[0]));
    EXPECT_EQ(again.at("fc.weight").kind, QSIM_ENCODING_FLOAT);
}

// --- values survive writing and conversion ------------------------------------------------------

// Floats whose shortest decimal form is long or unusual: denormals, the extremes, 1/3, -0.
std::vector<float> awkward_floats(size_t n, uint32_t seed) {
    std::vector<float> v = {FLT_MIN, FLT_MAX, std::nextafter(0.0f, 1.0f), 1.0f / 3.0f, 0.1f,
                            16777217.0f, 1e-30f, 3.4028233e38f};
    std::mt19937 gen(seed);
    std::uniform_int_distribution<uint32_t> bits(0x00000001u, 0x7f7fffffu);  // positive finite
    while (v.size() < n) {
        v.push_back(qsim_test::from_bits(bits(gen)));
    }
    return v;
}

TEST(EncodingsValues, FloatsRoundTripBitExactInEveryVersion) {
    const size_t n = 64;
    Int w{"w", QSIM_ENCODING_PARAM, 8, 0, 0, QSIM_ENCODING_PER_CHANNEL};
    w.scale = awkward_floats(n, qsim_test::kSeed);
    w.offset.assign(n, 0);
    std::vector<float> lo = awkward_floats(n, qsim_test::kSeed + 1);
    for (size_t i = 0; i < n; i++) {
        w.offset[i] = -static_cast<int64_t>(i % 256);
        lo[i] = i % 2 ? -lo[i] : lo[i];
    }
    lo[3] = -0.0f;
    std::vector<float> hi = awkward_floats(n, qsim_test::kSeed + 2);
    for (size_t i = 0; i < n; i++) {  // the reader refuses min >= max
        if (!(lo[i] < hi[i])) {
            std::swap(lo[i], hi[i]);
            hi[i] = lo[i] < hi[i] ? hi[i] : std::nextafter(lo[i], INFINITY);
        }
    }
    w.min = lo;
    w.max = hi;
    w.axis = 0;
    Model m;
    m.add(w.entry());
    for (const char * v : kVersions) {
        Loaded p(write(m.enc, v));
        ASSERT_EQ(p.status, QSIM_SUCCESS) << v << ": " << p.err.message;
        const qsim_encoding_entry & e = p.at("w");
        ASSERT_EQ(e.n, n) << v;
        EXPECT_TRUE(qsim_test::floats_match(n, w.scale.data(), w.scale.data(), e.scale)) << v;
        EXPECT_EQ(ints(e.offset, n), w.offset) << v;
        EXPECT_EQ(e.bitwidth, 8) << v;
        if (std::string(v) == "0.6.1") {  // the only version with min/max
            EXPECT_TRUE(qsim_test::floats_match(n, lo.data(), lo.data(), e.min)) << v;
            EXPECT_TRUE(qsim_test::floats_match(n, w.max.data(), w.max.data(), e.max)) << v;
        }
    }
}

// Every layout in every version that can hold it: scale, offset, bitwidth and flags survive.
TEST(EncodingsValues, ConversionKeepsScaleOffsetBitwidth) {
    Model m;
    Int act{"act", QSIM_ENCODING_ACTIVATION, 16, 0, 0};
    act.scale = {0.03125f};
    act.offset = {-40000};
    Int w{"w", QSIM_ENCODING_PARAM, 4, 1, 1, QSIM_ENCODING_PER_CHANNEL, {0.5f, 0.25f, 0.125f},
          {-8, -8, -8}};
    w.axis = 0;
    m.add(act.entry());
    m.add(w.entry());
    m.add(float_entry("half", QSIM_ENCODING_ACTIVATION, 16));
    for (const char * from : kVersions) {
        Loaded first(write(m.enc, from));
        ASSERT_EQ(first.status, QSIM_SUCCESS) << from << ": " << first.err.message;
        for (const char * to : {"0.6.1", "1.0.0"}) {
            if (std::string(from) == "2.0.0") {
                break;  // roles are unknown after 2.0.0 (RoleUnknownAfterV2 checks the refusal)
            }
            Loaded second(write(first.enc, to));
            ASSERT_EQ(second.status, QSIM_SUCCESS) << from << "->" << to;
            for (const Int * want : {&act, &w}) {
                const qsim_encoding_entry & e = second.at(want->name.c_str());
                EXPECT_EQ(floats(e.scale, e.n), want->scale) << from << "->" << to << " " << want->name;
                EXPECT_EQ(ints(e.offset, e.n), want->offset) << from << "->" << to;
                EXPECT_EQ(e.bitwidth, want->bitwidth) << from << "->" << to;
                EXPECT_EQ(e.is_symmetric, want->sym) << from << "->" << to;
                EXPECT_EQ(e.role, want->role) << from << "->" << to;
            }
            EXPECT_EQ(second.at("half").kind, QSIM_ENCODING_FLOAT) << from << "->" << to;
        }
        EXPECT_EQ(first.at("w").layout, QSIM_ENCODING_PER_CHANNEL) << from;
    }
    // 2.0.0 keeps the axis and drops the fp16 entry (AIMET: not a quantized dtype in 2.0.0).
    Loaded v2(write(m.enc, "2.0.0"));
    EXPECT_EQ(v2.at("w").axis, 0);
    const qsim_encoding_entry * half = nullptr;
    EXPECT_EQ(qsim_encodings_lookup(v2.enc, "half", &half), QSIM_NOT_FOUND);
}

// 0.6.1 without recorded min/max: AIMET's min = scale * offset, max = scale * (offset + 2^bw - 1).
TEST(EncodingsValues, V061DerivesMinMax) {
    Model m;
    Int a{"a", QSIM_ENCODING_ACTIVATION, 8, 0, 0};
    a.scale = {0.0185f};
    a.offset = {-114};
    m.add(a.entry());
    Loaded p(write(m.enc, "0.6.1"));
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    // -114 * 0.0185 and (255 - 114) = 141 steps above, rounded once to float32.
    EXPECT_EQ(p.at("a").min[0], static_cast<float>(-114.0 * static_cast<double>(0.0185f)));
    EXPECT_EQ(p.at("a").max[0], static_cast<float>(141.0 * static_cast<double>(0.0185f)));
}

// 2.0.0 zero points: signed grids shift by 2^(bw-1); symmetric means signed with zero points 0.
TEST(EncodingsValues, V200ZeroPoints) {
    Model m;
    Int sym{"sym", QSIM_ENCODING_PARAM, 8, 1, 1};  // offset -128: zero point 0 -> omitted
    Int asym{"asym", QSIM_ENCODING_ACTIVATION, 8, 0, 0};
    asym.offset = {-114};  // uint8 zero point 114
    Int shifted{"shifted", QSIM_ENCODING_ACTIVATION, 8, 0, 1};
    shifted.offset = {-100};  // int8 zero point = -(-100) - 128 = -28
    m.add(sym.entry());
    m.add(asym.entry());
    m.add(shifted.entry());
    const std::string text = write(m.enc, "2.0.0");
    EXPECT_NE(text.find(R"({"name": "sym", "output_dtype": "int8", "y_scale": 0.5})"),
              std::string::npos) << text;
    EXPECT_NE(text.find(R"("output_dtype": "uint8", "y_scale": 0.5, "y_zero_point": 114})"),
              std::string::npos) << text;
    EXPECT_NE(text.find(R"("output_dtype": "int8", "y_scale": 0.5, "y_zero_point": -28})"),
              std::string::npos) << text;
    Loaded p(text);
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    EXPECT_EQ(p.at("sym").is_symmetric, 1);
    EXPECT_EQ(p.at("asym").is_symmetric, 0);
    EXPECT_EQ(p.at("shifted").offset[0], -100);
}

TEST(EncodingsValues, WriterKeepsInsertionOrderAndEscapes) {
    Model m;
    Int b{"b\"quoted\\name\n"};
    Int a{"a", QSIM_ENCODING_ACTIVATION};
    m.add(b.entry());
    m.add(a.entry());
    const std::string text = write(m.enc, "2.0.0");
    EXPECT_LT(text.find("b\\\"quoted\\\\name\\u000a"), text.find("\"a\"")) << text;
    Loaded p(text);
    ASSERT_EQ(p.status, QSIM_SUCCESS) << p.err.message;
    EXPECT_STREQ(p.view().entries[0].name, "b\"quoted\\name\n");
}

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
