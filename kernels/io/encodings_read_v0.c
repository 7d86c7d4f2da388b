/* The entries of a 0.6.1 file: {name: [{bitwidth, dtype, is_symmetric, max, min, offset, scale},
 * ...]}, one list of channels per tensor (encodings_read.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/encodings_read.h"

#define BIT(k) (1u << (k))

/* Fails at member keys[k] when `got` differs from the first channel's `want`. */
static qsim_status same_as_first(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                 const char * got, const char * want) {
    if (strcmp(got, want) == 0) {
        return QSIM_SUCCESS;
    }
    QSIM_ENC_TRY(qsim_enc_enter(r, f, k));
    return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, ": the channels of one tensor share it",
                          "%s %s differs from the first channel's %s", f->keys[k], got, want);
}

/* --- 0.6.1: {name: [{bitwidth, dtype, is_symmetric, max, min, offset, scale}, ...]} ---------- */

enum { C_BITWIDTH, C_DTYPE, C_SYM, C_MAX, C_MIN, C_OFFSET, C_SCALE };
static const char * const CHANNEL_KEYS[] = {"bitwidth", "dtype", "is_symmetric", "max",
                                            "min",      "offset", "scale"};
static const char * const V0_DTYPES[] = {"int", "float"}; /* index = qsim_encoding_kind */

typedef struct channel_head {
    int kind, bitwidth, is_symmetric;
} channel_head;

/* Fails unless channel i > 0 has channel 0's dtype, bitwidth and symmetry. */
static qsim_status check_head(qsim_enc_reader * r, const qsim_enc_fields * f, const channel_head * h,
                              const channel_head * first) {
    static const char * const SYM[] = {"\"False\"", "\"True\""};
    char got[16], want[16];
    snprintf(got, sizeof(got), "'%s'", V0_DTYPES[h->kind]);
    snprintf(want, sizeof(want), "'%s'", V0_DTYPES[first->kind]);
    QSIM_ENC_TRY(same_as_first(r, f, C_DTYPE, got, want));
    snprintf(got, sizeof(got), "%d", h->bitwidth);
    snprintf(want, sizeof(want), "%d", first->bitwidth);
    QSIM_ENC_TRY(same_as_first(r, f, C_BITWIDTH, got, want));
    return same_as_first(r, f, C_SYM, SYM[h->is_symmetric], SYM[first->is_symmetric]);
}

/* Channel i of a tensor into a[i]; `head` is set by channel 0 and checked against the others. */
static qsim_status read_channel(qsim_enc_reader * r, const cJSON * v, size_t i, channel_head * head,
                                const qsim_enc_arrays * a) {
    qsim_enc_fields f;
    channel_head h = {0, 0, 0};
    QSIM_ENC_TRY(qsim_enc_read_fields(r, v, CHANNEL_KEYS, QSIM_ENC_COUNT(CHANNEL_KEYS), &f));
    QSIM_ENC_TRY(qsim_enc_require(r, &f, BIT(C_BITWIDTH) | BIT(C_DTYPE)));
    QSIM_ENC_TRY(qsim_enc_choice_field(r, &f, C_DTYPE, V0_DTYPES, 2, &h.kind));
    QSIM_ENC_TRY(qsim_enc_bitwidth_field(r, &f, C_BITWIDTH, (qsim_encoding_kind)h.kind, &h.bitwidth));
    if (h.kind == QSIM_ENCODING_INT) {
        QSIM_ENC_TRY(qsim_enc_require(r, &f, BIT(C_SYM) | BIT(C_MAX) | BIT(C_MIN) | BIT(C_OFFSET) |
                                                 BIT(C_SCALE)));
        QSIM_ENC_TRY(qsim_enc_bool_string_field(r, &f, C_SYM, &h.is_symmetric));
    }
    if (i == 0) {
        *head = h;
    }
    QSIM_ENC_TRY(check_head(r, &f, &h, head));
    if (h.kind == QSIM_ENCODING_FLOAT) {
        return qsim_enc_forbid(r, &f, ~(BIT(C_BITWIDTH) | BIT(C_DTYPE)), "in a float encoding");
    }
    const qsim_enc_rule scale = {QSIM_ENC_SCALE, "scale", 0, 0};
    const qsim_enc_rule min = {QSIM_ENC_BOUND, "min", 0, 0};
    const qsim_enc_rule max = {QSIM_ENC_BOUND, "max", 0, 0};
    const qsim_enc_rule offset = {QSIM_ENC_OFFSET, "offset", h.bitwidth, 0};
    double s, lo, hi, o;
    QSIM_ENC_TRY(qsim_enc_number_field(r, &f, C_SCALE, &scale, &s));
    QSIM_ENC_TRY(qsim_enc_number_field(r, &f, C_MIN, &min, &lo));
    QSIM_ENC_TRY(qsim_enc_number_field(r, &f, C_MAX, &max, &hi));
    QSIM_ENC_TRY(qsim_enc_number_field(r, &f, C_OFFSET, &offset, &o));
    if (!(qsim_enc_to_float(lo) < qsim_enc_to_float(hi))) {
        QSIM_ENC_TRY(qsim_enc_enter(r, &f, C_MAX));
        return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, ": max must be greater than min",
                              "invalid max %.9g (min is %.9g)", hi, lo);
    }
    a->scale[i] = qsim_enc_to_float(s);
    a->min[i] = qsim_enc_to_float(lo);
    a->max[i] = qsim_enc_to_float(hi);
    a->offset[i] = (int64_t)o;
    return QSIM_SUCCESS;
}

static qsim_status read_channels(qsim_enc_reader * r, const cJSON * v, const char * name,
                                 qsim_encoding_role role, const qsim_enc_arrays * a) {
    channel_head head = {0, 0, 0};
    size_t n = (size_t)cJSON_GetArraySize(v);
    size_t i = 0;
    for (const cJSON * c = v->child; c != NULL; c = c->next, i++) {
        QSIM_ENC_TRY(qsim_json_push(&r->w, NULL, i));
        QSIM_ENC_TRY(read_channel(r, c, i, &head, a));
        qsim_json_pop(&r->w);
        if (head.kind == QSIM_ENCODING_FLOAT) {
            if (n != 1) {
                return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, NULL,
                                      "a float encoding is a list of one element, got %zu", n);
            }
            return qsim_enc_add_float(r, name, role, head.bitwidth);
        }
    }
    qsim_encoding_entry e = qsim_enc_int_entry(name, role, head.bitwidth, head.is_symmetric,
                                      head.is_symmetric,
                                      n > 1 ? QSIM_ENCODING_PER_CHANNEL : QSIM_ENCODING_PER_TENSOR,
                                      n, a);
    return qsim_enc_add(r, &e);
}

qsim_status qsim_enc_read_v0_tensor(qsim_enc_reader * r, const cJSON * v, const char * name,
                                  qsim_encoding_role role) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0) {
        return cJSON_IsArray(v) ? qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, NULL,
                                                 "empty list of encodings")
                                : qsim_enc_wrong_type(r, v, "a list of per-channel encodings");
    }
    qsim_enc_arrays a;
    QSIM_ENC_TRY(qsim_enc_arrays_alloc(r, &a, (size_t)cJSON_GetArraySize(v), 1));
    qsim_status st = read_channels(r, v, name, role, &a);
    free(a.offset);
    return st;
}

