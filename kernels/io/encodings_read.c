/* The encodings reader: parse/load, the version, and the top-level members (qsim/encodings.h). */
#include <stdlib.h>
#include <string.h>

#include "io/encodings_read.h"

#define BIT(k) (1u << (k))

enum { K_VERSION, K_PRODUCER, K_EXCLUDED, K_ARGS, K_ACTIVATIONS, K_PARAMS, K_ENCODINGS };
static const char * const TOP_KEYS[] = {"version",         "producer",
                                        "excluded_layers", "quantizer_args",
                                        "activation_encodings", "param_encodings",
                                        "encodings"};
static const unsigned V01_SECTIONS = BIT(K_ACTIVATIONS) | BIT(K_PARAMS);
static const unsigned V2_SECTIONS = BIT(K_ENCODINGS);

enum { A_ACT_BW, A_DTYPE, A_SYM, A_PARAM_BW, A_PER_CHANNEL, A_SCHEME };
static const char * const ARGS_KEYS[] = {"activation_bitwidth", "dtype", "is_symmetric",
                                         "param_bitwidth", "per_channel_quantization",
                                         "quant_scheme"};
static const char * const ARGS_DTYPES[] = {"int", "float"}; /* index = qsim_encoding_kind */
static const char * const PRODUCER_KEYS[] = {"package", "version"};

static qsim_status read_producer(qsim_enc_reader * r, const cJSON * v) {
    qsim_enc_fields f;
    const char * package = NULL;
    const char * version = NULL;
    QSIM_ENC_TRY(qsim_enc_read_fields(r, v, PRODUCER_KEYS, 2, &f));
    QSIM_ENC_TRY(qsim_enc_require(r, &f, BIT(0) | BIT(1)));
    QSIM_ENC_TRY(qsim_enc_string_field(r, &f, 0, &package));
    QSIM_ENC_TRY(qsim_enc_string_field(r, &f, 1, &version));
    return qsim_encodings_set_producer(r->enc, package, version, r->w.err);
}

static qsim_status read_quantizer_args(qsim_enc_reader * r, const cJSON * v) {
    qsim_enc_fields f;
    qsim_quantizer_args a;
    int64_t act_bw = 0;
    int64_t param_bw = 0;
    int dtype = 0;
    QSIM_ENC_TRY(qsim_enc_read_fields(r, v, ARGS_KEYS, QSIM_ENC_COUNT(ARGS_KEYS), &f));
    QSIM_ENC_TRY(qsim_enc_require(r, &f, BIT(QSIM_ENC_COUNT(ARGS_KEYS)) - 1u));
    QSIM_ENC_TRY(qsim_enc_int_field(r, &f, A_ACT_BW, 1, 32, &act_bw));
    QSIM_ENC_TRY(qsim_enc_int_field(r, &f, A_PARAM_BW, 1, 32, &param_bw));
    QSIM_ENC_TRY(qsim_enc_choice_field(r, &f, A_DTYPE, ARGS_DTYPES, 2, &dtype));
    QSIM_ENC_TRY(qsim_enc_bool_field(r, &f, A_SYM, &a.is_symmetric));
    QSIM_ENC_TRY(qsim_enc_bool_field(r, &f, A_PER_CHANNEL, &a.per_channel_quantization));
    QSIM_ENC_TRY(qsim_enc_string_field(r, &f, A_SCHEME, &a.quant_scheme));
    a.activation_bitwidth = (int)act_bw;
    a.param_bitwidth = (int)param_bw;
    a.dtype = (qsim_encoding_kind)dtype;
    return qsim_encodings_set_quantizer_args(r->enc, &a, r->w.err);
}

static qsim_status read_excluded(qsim_enc_reader * r, const cJSON * v) {
    if (!cJSON_IsArray(v)) {
        return qsim_enc_wrong_type(r, v, "a list of layer names");
    }
    size_t i = 0;
    for (const cJSON * c = v->child; c != NULL; c = c->next, i++) {
        if (!cJSON_IsString(c)) {
            QSIM_ENC_TRY(qsim_json_push(&r->w, NULL, i));
            return qsim_enc_wrong_type(r, c, "a string");
        }
        QSIM_ENC_TRY(qsim_encodings_add_excluded_layer(r->enc, c->valuestring, r->w.err));
    }
    return QSIM_SUCCESS;
}

/* The "version" member: present, a string, supported. */
static qsim_status read_version(qsim_enc_reader * r, const cJSON * root, int * version) {
    static const char SUPPORTED[] = "; supported: 0.6.1, 1.0.0, 2.0.0";
    size_t at = 0;
    const cJSON * v = qsim_json_get(root, "version", &at);
    if (v == NULL) {
        return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, SUPPORTED, "missing required key 'version'");
    }
    QSIM_ENC_TRY(qsim_json_push(&r->w, "version", at));
    if (!cJSON_IsString(v)) {
        return qsim_enc_wrong_type(r, v, "a version string");
    }
    *version = qsim_enc_version_index(v->valuestring);
    if (*version < 0) {
        return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, SUPPORTED,
                              "unsupported encodings version '%.40s'", v->valuestring);
    }
    qsim_json_pop(&r->w);
    return qsim_enc_set_version(r->enc, v->valuestring, r->w.err);
}

/* Member k (if present) read by fn. */
static qsim_status optional(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                            qsim_status (*fn)(qsim_enc_reader *, const cJSON *)) {
    if (f->v[k] == NULL) {
        return QSIM_SUCCESS;
    }
    QSIM_ENC_TRY(qsim_enc_enter(r, f, k));
    QSIM_ENC_TRY(fn(r, f->v[k]));
    qsim_json_pop(&r->w);
    return QSIM_SUCCESS;
}

static qsim_status read_section(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k, int version) {
    QSIM_ENC_TRY(qsim_enc_enter(r, f, k));
    const qsim_encoding_role role = k == K_PARAMS ? QSIM_ENCODING_PARAM : QSIM_ENCODING_ACTIVATION;
    QSIM_ENC_TRY(qsim_enc_read_section(r, f->v[k], version,
                                       version == QSIM_ENC_V2_0_0 ? QSIM_ENCODING_ROLE_UNKNOWN : role));
    qsim_json_pop(&r->w);
    return QSIM_SUCCESS;
}

static qsim_status read_root(qsim_enc_reader * r, const cJSON * root) {
    qsim_enc_fields f;
    int version = 0;
    if (!cJSON_IsObject(root)) {
        return qsim_enc_wrong_type(r, root, "an object");
    }
    QSIM_ENC_TRY(read_version(r, root, &version));
    QSIM_ENC_TRY(qsim_enc_read_fields(r, root, TOP_KEYS, QSIM_ENC_COUNT(TOP_KEYS), &f));
    const unsigned sections = version == QSIM_ENC_V2_0_0 ? V2_SECTIONS : V01_SECTIONS;
    QSIM_ENC_TRY(qsim_enc_forbid(r, &f, (V01_SECTIONS | V2_SECTIONS) & ~sections,
                                 version == QSIM_ENC_V2_0_0 ? "in a 2.0.0 file"
                                                            : "before version 2.0.0"));
    QSIM_ENC_TRY(qsim_enc_require(r, &f, sections));
    for (size_t k = K_ACTIVATIONS; k <= K_ENCODINGS; k++) { /* activations before params */
        if (sections >> k & 1u) {
            QSIM_ENC_TRY(read_section(r, &f, k, version));
        }
    }
    QSIM_ENC_TRY(optional(r, &f, K_PRODUCER, read_producer));
    QSIM_ENC_TRY(optional(r, &f, K_EXCLUDED, read_excluded));
    return optional(r, &f, K_ARGS, read_quantizer_args);
}

qsim_status qsim_encodings_parse(const char * text, size_t len, qsim_encodings ** out,
                                 qsim_error * err) {
    if (out != NULL) {
        *out = NULL;
    }
    qsim_error_clear(err);
    if (text == NULL || out == NULL) {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT, "qsim_encodings_parse: NULL text or out");
        return QSIM_INVALID_ARGUMENT;
    }
    cJSON * root = NULL;
    qsim_enc_sections sections;
    QSIM_ENC_TRY(qsim_enc_parse_root(text, len, &root, &sections, err));
    qsim_encodings * enc = qsim_encodings_create();
    if (enc == NULL) {
        cJSON_Delete(root);
        qsim_enc_sections_free(&sections);
        qsim_error_set(err, QSIM_OUT_OF_MEMORY, "out of memory reading encodings");
        return QSIM_OUT_OF_MEMORY;
    }
    qsim_enc_reader r;
    qsim_json_walk_init(&r.w, text, len, err);
    r.enc = enc;
    r.sections = &sections;
    qsim_status st = read_root(&r, root);
    cJSON_Delete(root);
    qsim_enc_sections_free(&sections);
    if (st != QSIM_SUCCESS) {
        qsim_encodings_free(enc);
        return st;
    }
    *out = enc;
    return QSIM_SUCCESS;
}

qsim_status qsim_encodings_load(const char * path, qsim_encodings ** out, qsim_error * err) {
    if (out != NULL) {
        *out = NULL;
    }
    qsim_error_clear(err);
    if (path == NULL || out == NULL) {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT, "qsim_encodings_load: NULL path or out");
        return QSIM_INVALID_ARGUMENT;
    }
    char * text = NULL;
    size_t len = 0;
    qsim_status st = qsim_json_read_file(path, &text, &len, err);
    if (st == QSIM_SUCCESS) {
        st = qsim_encodings_parse(text, len, out, err);
        qsim_error_prefix(err, path);
    }
    free(text);
    return st;
}
