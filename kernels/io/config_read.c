/* Readers of the value kinds of the quantsim config schema (config_read.h). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config_read.h"

struct qsim_config_block {
    qsim_config_block * next;
    max_align_t         data[]; /* the allocation, aligned for any type */
};

void * qsim_config_alloc(qsim_config_parser * p, size_t count, size_t size) {
    size_t bytes = count * size;
    qsim_config_block * b = NULL;
    if (size == 0 || bytes / size == count) {
        b = calloc(1, sizeof(*b) + bytes);
    }
    if (b == NULL) {
        qsim_error_set(p->w.err, QSIM_OUT_OF_MEMORY, "out of memory reading the quantsim config");
        return NULL;
    }
    b->next = p->cfg->blocks;
    p->cfg->blocks = b;
    return b->data;
}

const char * qsim_config_strdup(qsim_config_parser * p, const char * s) {
    size_t n = strlen(s) + 1;
    char * copy = qsim_config_alloc(p, n, 1);
    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

void qsim_config_blocks_free(qsim_config_block * b) {
    while (b != NULL) {
        qsim_config_block * next = b->next;
        free(b);
        b = next;
    }
}

static qsim_status visit_member(qsim_config_parser * p, const qsim_json_member * m,
                                const char * const * keys, size_t n_keys, qsim_member_fn fn,
                                void * ctx) {
    QSIM_TRY(qsim_json_push(&p->w, m->key, m->index));
    int key = keys ? qsim_json_key_index(m->key, keys, n_keys) : -1;
    if (keys != NULL && key < 0) {
        return qsim_json_unknown_key(&p->w, m->key, keys, n_keys);
    }
    QSIM_TRY(fn(p, key, m->value, ctx));
    qsim_json_pop(&p->w);
    return QSIM_SUCCESS;
}

qsim_status qsim_read_members(qsim_config_parser * p, const cJSON * obj, const char * const * keys,
                              size_t n_keys, qsim_member_fn fn, void * ctx) {
    if (!cJSON_IsObject(obj)) {
        return qsim_wrong_type(p, obj, "an object");
    }
    qsim_json_member * members = NULL;
    size_t n = 0;
    qsim_status st = qsim_json_members(obj, &members, &n, p->w.err);
    for (size_t i = 0; st == QSIM_SUCCESS && i < n; i++) {
        st = visit_member(p, &members[i], keys, n_keys, fn, ctx);
    }
    free(members);
    return st;
}

qsim_status qsim_require_keys(qsim_config_parser * p, const cJSON * obj, const char * const * keys,
                              size_t n_keys) {
    for (size_t i = 0; i < n_keys; i++) {
        if (qsim_json_get(obj, keys[i], NULL) == NULL) {
            return qsim_json_fail(&p->w, QSIM_JSON_AT_VALUE, NULL, "missing required key '%s'",
                                  keys[i]);
        }
    }
    return QSIM_SUCCESS;
}

qsim_status qsim_wrong_type(qsim_config_parser * p, const cJSON * v, const char * expected) {
    return qsim_json_wrong_type(&p->w, v, expected);
}

qsim_status qsim_read_bool(qsim_config_parser * p, const cJSON * v, qsim_opt_bool * out) {
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v) ? QSIM_OPT_TRUE : QSIM_OPT_FALSE;
        return QSIM_SUCCESS;
    }
    if (cJSON_IsString(v) && (strcmp(v->valuestring, "True") == 0 || strcmp(v->valuestring, "False") == 0)) {
        *out = v->valuestring[0] == 'T' ? QSIM_OPT_TRUE : QSIM_OPT_FALSE;
        return QSIM_SUCCESS;
    }
    return qsim_wrong_type(p, v, "a boolean (true, false, \"True\" or \"False\")");
}

static qsim_status bool_member(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    return qsim_read_bool(p, v, (qsim_opt_bool *)ctx + key);
}

qsim_status qsim_read_bools(qsim_config_parser * p, const cJSON * v, const char * const * keys,
                            size_t n_keys, qsim_opt_bool * out) {
    for (size_t i = 0; i < n_keys; i++) {
        out[i] = QSIM_OPT_UNSET;
    }
    return qsim_read_members(p, v, keys, n_keys, bool_member, out);
}

qsim_status qsim_read_string(qsim_config_parser * p, const cJSON * v, const char ** out) {
    if (!cJSON_IsString(v)) {
        return qsim_wrong_type(p, v, "a string");
    }
    *out = qsim_config_strdup(p, v->valuestring);
    return *out ? QSIM_SUCCESS : QSIM_OUT_OF_MEMORY;
}

/* --- supported_kernels ---------------------------------------------------------------------- */

static const char * const PRECISION_KEYS[] = {"dtype", "bitwidth"};
static const char * const KERNEL_KEYS[] = {"activation", "param"};

/* The narrow float formats by name with their element bits (wrappers/float_formats.py). */
static const struct {
    const char * name;
    int          bits;
} FORMATS[] = {
    {"fp8_e4m3", 8},   {"fp8_e5m2", 8},   {"fp8_e4m3fnuz", 8}, {"fp8_e5m2fnuz", 8},
    {"fp6_e3m2", 6},   {"fp6_e2m3", 6},   {"fp4_e2m1", 4},     {"mxfp8_e4m3", 8},
    {"mxfp8_e5m2", 8}, {"mxfp6_e3m2", 6}, {"mxfp6_e2m3", 6},   {"mxfp4", 4},
    {"mxint8", 8},     {"nvfp4", 4},
};

#define FORMAT_NAMES                                                                      \
    "fp8_e4m3, fp8_e5m2, fp8_e4m3fnuz, fp8_e5m2fnuz, fp6_e3m2, fp6_e2m3, fp4_e2m1, mxfp8_e4m3, " \
    "mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, mxint8, nvfp4"

const char * qsim_config_format_names(void) {
    return FORMAT_NAMES;
}

/* The FORMATS index of `name`, or -1. */
static int format_index(const char * name) {
    for (size_t i = 0; i < QSIM_COUNT(FORMATS); i++) {
        if (strcmp(FORMATS[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static qsim_status precision_member(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    qsim_config_precision * out = ctx;
    if (key == 1) {
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e6) {
            return qsim_wrong_type(p, v, "an integer");
        }
        out->bitwidth = (int)v->valuedouble;
        return QSIM_SUCCESS;
    }
    if (!cJSON_IsString(v)) {
        return qsim_wrong_type(p, v, "a string (\"int\", \"float\" or a format name)");
    }
    const int f = format_index(v->valuestring);
    if (f >= 0) {
        out->dtype  = QSIM_DTYPE_FORMAT;
        out->format = FORMATS[f].name;
        return QSIM_SUCCESS;
    }
    if (strcmp(v->valuestring, "int") != 0 && strcmp(v->valuestring, "float") != 0) {
        return qsim_json_fail(&p->w, QSIM_JSON_AT_VALUE,
                              ": expected \"int\", \"float\" or a format name (" FORMAT_NAMES ")",
                              "unsupported dtype '%.40s'", v->valuestring);
    }
    out->dtype  = v->valuestring[0] == 'f' ? QSIM_DTYPE_FLOAT : QSIM_DTYPE_INT;
    out->format = NULL;
    return QSIM_SUCCESS;
}

/* Whether bitwidth b suits the precision's dtype (a format: its element bits, filled in when the
 * file leaves bitwidth out). */
static int precision_ok(qsim_config_precision * out, int has_bitwidth) {
    const int b = out->bitwidth;
    if (out->dtype == QSIM_DTYPE_FORMAT) {
        const int bits = FORMATS[format_index(out->format)].bits;
        out->bitwidth  = has_bitwidth ? b : bits;
        return out->bitwidth == bits;
    }
    return out->dtype == QSIM_DTYPE_FLOAT ? (b == 16 || b == 32) : (b == 4 || b == 8 || b == 16);
}

/* {"bitwidth": int 4/8/16 or float 16/32, "dtype": "int" | "float"}, or {"dtype": <format>,
 * "bitwidth"?: its bits} */
static qsim_status read_precision(qsim_config_parser * p, const cJSON * v, qsim_config_precision * out) {
    QSIM_TRY(qsim_read_members(p, v, PRECISION_KEYS, QSIM_COUNT(PRECISION_KEYS), precision_member, out));
    QSIM_TRY(qsim_require_keys(p, v, PRECISION_KEYS, out->dtype == QSIM_DTYPE_FORMAT ? 1 : 2));
    size_t index = 0;
    const int has_bitwidth = qsim_json_get(v, "bitwidth", &index) != NULL;
    if (precision_ok(out, has_bitwidth)) {
        return QSIM_SUCCESS;
    }
    QSIM_TRY(qsim_json_push(&p->w, "bitwidth", index));
    if (out->dtype == QSIM_DTYPE_FORMAT) {
        return qsim_json_fail(&p->w, QSIM_JSON_AT_VALUE, ": the format's element bits (or leave it out)",
                              "bitwidth %d does not match format %s (%d bits)", out->bitwidth,
                              out->format, FORMATS[format_index(out->format)].bits);
    }
    return qsim_json_fail(&p->w, QSIM_JSON_AT_VALUE,
                          out->dtype == QSIM_DTYPE_FLOAT
                              ? ": float kernels are 16 or 32 bits"
                              : ": int kernels are 4, 8 or 16 bits (torchqsim's integer grid ends at 16)",
                          "unsupported bitwidth %d for dtype %s", out->bitwidth,
                          out->dtype == QSIM_DTYPE_FLOAT ? "float" : "int");
}

static qsim_status kernel_member(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    qsim_config_kernel * k = ctx;
    return read_precision(p, v, key == 0 ? &k->activation : &k->param);
}

qsim_status qsim_read_kernels(qsim_config_parser * p, const cJSON * v, int param_required,
                              const qsim_config_kernel ** out, size_t * n_out) {
    if (!cJSON_IsArray(v)) {
        return qsim_wrong_type(p, v, "an array");
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n == 0) {
        return qsim_json_fail(&p->w, QSIM_JSON_AT_VALUE, ": list at least one kernel",
                              "empty supported_kernels");
    }
    qsim_config_kernel * kernels = qsim_config_alloc(p, n, sizeof(*kernels));
    if (kernels == NULL) {
        return QSIM_OUT_OF_MEMORY;
    }
    size_t i = 0;
    for (const cJSON * item = v->child; item != NULL; item = item->next, i++) {
        QSIM_TRY(qsim_json_push(&p->w, NULL, i));
        QSIM_TRY(qsim_read_members(p, item, KERNEL_KEYS, QSIM_COUNT(KERNEL_KEYS), kernel_member,
                                   &kernels[i]));
        QSIM_TRY(qsim_require_keys(p, item, KERNEL_KEYS, param_required ? 2 : 1));
        qsim_json_pop(&p->w);
    }
    *out = kernels;
    *n_out = n;
    return QSIM_SUCCESS;
}
