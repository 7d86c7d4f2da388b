// The encodings reader and writer (qsim/encodings.h) on files: the hand-written example of each
// version (tests/data/encodings/) reads as it says and writes back byte for byte; values survive
// every conversion bit for bit.
#include "encodings_test_util.h"

namespace {

using namespace enc_test;

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

}  // namespace
