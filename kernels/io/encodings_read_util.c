/* Helpers of the encodings reader: objects by key, typed members, lists of numbers
 * (encodings_read.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/encodings_read.h"

#define WHY_MAX (QSIM_ERROR_MESSAGE_MAX / 2)

static qsim_status fail_invalid(qsim_enc_reader * r, const char * field, const char * why) {
    char tail[WHY_MAX];
    qsim_json_format(tail, sizeof(tail), ": %s", why);
    return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, tail, "invalid %s", field);
}

qsim_status qsim_enc_wrong_type(qsim_enc_reader * r, const cJSON * v, const char * expected) {
    return qsim_json_wrong_type(&r->w, v, expected);
}

/* --- objects by key ------------------------------------------------------------------------- */

qsim_status qsim_enc_read_fields(qsim_enc_reader * r, const cJSON * obj, const char * const * keys,
                                 size_t n_keys, qsim_enc_fields * f) {
    memset(f, 0, sizeof(*f));
    f->keys = keys;
    f->n = n_keys;
    if (!cJSON_IsObject(obj)) {
        return qsim_enc_wrong_type(r, obj, "an object");
    }
    qsim_json_member * members = NULL;
    size_t n = 0;
    qsim_status st = qsim_json_members(obj, &members, &n, r->w.err);
    for (size_t i = 0; st == QSIM_SUCCESS && i < n; i++) {
        int k = qsim_json_key_index(members[i].key, keys, n_keys);
        if (k < 0) {
            st = qsim_json_push(&r->w, members[i].key, members[i].index);
            if (st == QSIM_SUCCESS) {
                st = qsim_json_unknown_key(&r->w, members[i].key, keys, n_keys);
            }
            break;
        }
        f->v[k] = members[i].value;
        f->at[k] = members[i].index;
    }
    free(members);
    return st;
}

qsim_status qsim_enc_require(qsim_enc_reader * r, const qsim_enc_fields * f, unsigned mask) {
    for (size_t k = 0; k < f->n; k++) {
        if ((mask >> k & 1u) && f->v[k] == NULL) {
            return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, NULL, "missing required key '%s'",
                                  f->keys[k]);
        }
    }
    return QSIM_SUCCESS;
}

qsim_status qsim_enc_forbid(qsim_enc_reader * r, const qsim_enc_fields * f, unsigned mask,
                            const char * where) {
    for (size_t k = 0; k < f->n; k++) {
        if ((mask >> k & 1u) && f->v[k] != NULL) {
            QSIM_ENC_TRY(qsim_json_push(&r->w, f->keys[k], f->at[k]));
            return qsim_json_fail(&r->w, QSIM_JSON_AT_KEY, NULL, "'%s' is not allowed %s",
                                  f->keys[k], where);
        }
    }
    return QSIM_SUCCESS;
}

qsim_status qsim_enc_enter(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k) {
    return qsim_json_push(&r->w, f->keys[k], f->at[k]);
}

/* --- typed members -------------------------------------------------------------------------- */

qsim_status qsim_enc_int_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k, int64_t lo,
                               int64_t hi, int64_t * out) {
    QSIM_ENC_TRY(qsim_enc_enter(r, f, k));
    const cJSON * v = f->v[k];
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) {
        return qsim_enc_wrong_type(r, v, "an integer");
    }
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi) {
        char why[WHY_MAX];
        snprintf(why, sizeof(why), "must be an integer in [%lld, %lld], got %.17g", (long long)lo,
                 (long long)hi, v->valuedouble);
        return fail_invalid(r, f->keys[k], why);
    }
    *out = (int64_t)v->valuedouble;
    qsim_json_pop(&r->w);
    return QSIM_SUCCESS;
}

qsim_status qsim_enc_string_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                  const char ** out) {
    QSIM_ENC_TRY(qsim_enc_enter(r, f, k));
    if (!cJSON_IsString(f->v[k])) {
        return qsim_enc_wrong_type(r, f->v[k], "a string");
    }
    *out = f->v[k]->valuestring;
    qsim_json_pop(&r->w);
    return QSIM_SUCCESS;
}

qsim_status qsim_enc_bool_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k, int * out) {
    QSIM_ENC_TRY(qsim_enc_enter(r, f, k));
    if (!cJSON_IsBool(f->v[k])) {
        return qsim_enc_wrong_type(r, f->v[k], "a boolean (true or false)");
    }
    *out = cJSON_IsTrue(f->v[k]);
    qsim_json_pop(&r->w);
    return QSIM_SUCCESS;
}

qsim_status qsim_enc_bool_string_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                       int * out) {
    static const char * const BOOLS[] = {"False", "True"};
    QSIM_ENC_TRY(qsim_enc_enter(r, f, k));
    const cJSON * v = f->v[k];
    int i = cJSON_IsString(v) ? qsim_json_key_index(v->valuestring, BOOLS, 2) : -1;
    if (i < 0) {
        return qsim_enc_wrong_type(r, v, "the string \"True\" or \"False\" (0.6.1 writes booleans so)");
    }
    *out = i;
    qsim_json_pop(&r->w);
    return QSIM_SUCCESS;
}

qsim_status qsim_enc_choice_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                  const char * const * choices, size_t n, int * out) {
    const char * s = NULL;
    QSIM_ENC_TRY(qsim_enc_string_field(r, f, k, &s));
    *out = qsim_json_key_index(s, choices, n);
    if (*out >= 0) {
        return QSIM_SUCCESS;
    }
    char why[WHY_MAX];
    size_t len = (size_t)snprintf(why, sizeof(why), "expected");
    for (size_t i = 0; i < n && len < sizeof(why); i++) {
        len += (size_t)snprintf(why + len, sizeof(why) - len, "%s \"%s\"",
                                i == 0 ? "" : i + 1 == n ? " or" : ",", choices[i]);
    }
    if (len < sizeof(why)) {
        snprintf(why + len, sizeof(why) - len, ", got \"%.40s\"", s);
    }
    QSIM_ENC_TRY(qsim_enc_enter(r, f, k));
    return fail_invalid(r, f->keys[k], why);
}

/* --- numbers -------------------------------------------------------------------------------- */

static int bad_zero_point(double v, int bitwidth, int is_signed, char * why, size_t cap) {
    double lo = is_signed ? -ldexp(1.0, bitwidth - 1) : 0.0;
    double hi = is_signed ? ldexp(1.0, bitwidth - 1) - 1.0 : ldexp(1.0, bitwidth) - 1.0;
    if (v != floor(v) || v < lo || v > hi) {
        snprintf(why, cap, "must be an integer in [%.0f, %.0f] for %sint%d, got %.17g", lo, hi,
                 is_signed ? "" : "u", bitwidth, v);
        return 1;
    }
    return 0;
}

static int bad_value(const qsim_enc_rule * rule, double v, char * why, size_t cap) {
    switch (rule->check) {
        case QSIM_ENC_SCALE: return qsim_enc_bad_scale(v, why, cap);
        case QSIM_ENC_BOUND: return qsim_enc_bad_bound(v, why, cap);
        case QSIM_ENC_OFFSET: return qsim_enc_bad_offset(v, rule->bitwidth, why, cap);
        default: return bad_zero_point(v, rule->bitwidth, rule->is_signed, why, cap);
    }
}

/* Fills out->v from the list at depth `d` (the walk stands on it), checking its length; with
 * out->v NULL only checks (shape, types, values). */
static qsim_status fill(qsim_enc_reader * r, const cJSON * v, size_t d, const qsim_enc_rule * rule,
                        qsim_enc_numbers * out, size_t * pos) {
    if (d == out->ndim) {
        if (!cJSON_IsNumber(v)) {
            return qsim_enc_wrong_type(r, v, "a number");
        }
        char why[WHY_MAX];
        if (bad_value(rule, v->valuedouble, why, sizeof(why))) {
            return fail_invalid(r, rule->field, why);
        }
        if (out->v != NULL) { /* NULL: the checking pass */
            out->v[*pos] = v->valuedouble;
        }
        (*pos)++;
        return QSIM_SUCCESS;
    }
    if (!cJSON_IsArray(v)) {
        return qsim_enc_wrong_type(r, v, "a list");
    }
    size_t len = (size_t)cJSON_GetArraySize(v);
    if (len != (size_t)out->shape[d]) {
        char why[WHY_MAX];
        snprintf(why, sizeof(why), "ragged lists: this one has %zu values, the first at this depth "
                 "has %lld", len, (long long)out->shape[d]);
        return fail_invalid(r, rule->field, why);
    }
    size_t i = 0;
    for (const cJSON * c = v->child; c != NULL; c = c->next, i++) {
        QSIM_ENC_TRY(qsim_json_push(&r->w, NULL, i));
        QSIM_ENC_TRY(fill(r, c, d + 1, rule, out, pos));
        qsim_json_pop(&r->w);
    }
    return QSIM_SUCCESS;
}

/* The shape along the first elements; fails on an empty list or nesting deeper than max_ndim. */
static qsim_status discover_shape(qsim_enc_reader * r, const cJSON * v, const qsim_enc_rule * rule,
                                  size_t max_ndim, qsim_enc_numbers * out) {
    size_t n = 1;
    size_t depth = 0;
    for (const cJSON * c = v; cJSON_IsArray(c); c = c->child) {
        size_t len = (size_t)cJSON_GetArraySize(c);
        if (len == 0 || depth == max_ndim || n > ((size_t)1 << 40) / len) {
            for (size_t i = 0; i < depth; i++) { /* point at the offending list */
                QSIM_ENC_TRY(qsim_json_push(&r->w, NULL, 0));
            }
            char why[WHY_MAX] = "empty list";
            if (len != 0 && depth == max_ndim) {
                snprintf(why, sizeof(why), "lists nested deeper than %zu", max_ndim);
            } else if (len != 0) {
                snprintf(why, sizeof(why), "more than 2^40 values");
            }
            return fail_invalid(r, rule->field, why);
        }
        out->shape[depth++] = (int64_t)len;
        n *= len;
    }
    out->ndim = depth;
    out->n = n;
    return QSIM_SUCCESS;
}

qsim_status qsim_enc_read_numbers(qsim_enc_reader * r, const cJSON * v, const qsim_enc_rule * rule,
                                  size_t max_ndim, qsim_enc_numbers * out) {
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsNumber(v) && (max_ndim == 0 || !cJSON_IsArray(v))) {
        return qsim_enc_wrong_type(r, v, max_ndim ? "a number or a list of numbers" : "a number");
    }
    QSIM_ENC_TRY(discover_shape(r, v, rule, max_ndim, out));
    size_t pos = 0;
    /* the shape the first elements claim is checked against the whole nest before allocating:
     * memory stays proportional to the text read */
    QSIM_ENC_TRY(fill(r, v, 0, rule, out, &pos));
    out->v = malloc(out->n * sizeof(double));
    if (out->v == NULL) {
        qsim_error_set(r->w.err, QSIM_OUT_OF_MEMORY, "out of memory reading encodings");
        return QSIM_OUT_OF_MEMORY;
    }
    pos = 0;
    qsim_status st = fill(r, v, 0, rule, out, &pos);
    if (st != QSIM_SUCCESS) {
        free(out->v);
        out->v = NULL;
    }
    return st;
}

qsim_status qsim_enc_number_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                  const qsim_enc_rule * rule, double * out) {
    qsim_enc_numbers one;
    QSIM_ENC_TRY(qsim_enc_enter(r, f, k));
    QSIM_ENC_TRY(qsim_enc_read_numbers(r, f->v[k], rule, 0, &one));
    *out = one.v[0];
    free(one.v);
    qsim_json_pop(&r->w);
    return QSIM_SUCCESS;
}

qsim_status qsim_enc_list_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                const qsim_enc_rule * rule, qsim_enc_numbers * out) {
    memset(out, 0, sizeof(*out));
    QSIM_ENC_TRY(qsim_enc_enter(r, f, k));
    if (!cJSON_IsArray(f->v[k])) {
        return qsim_enc_wrong_type(r, f->v[k], "a list of numbers");
    }
    QSIM_ENC_TRY(qsim_enc_read_numbers(r, f->v[k], rule, 1, out));
    qsim_json_pop(&r->w);
    return QSIM_SUCCESS;
}

/* --- entries -------------------------------------------------------------------------------- */

qsim_status qsim_enc_check_name(qsim_enc_reader * r, const char * name, qsim_json_at at) {
    const qsim_encoding_entry * same = NULL;
    if (name[0] == '\0') {
        return qsim_json_fail(&r->w, at, NULL, "empty tensor name");
    }
    if (qsim_encodings_lookup(r->enc, name, &same) == QSIM_SUCCESS) {
        return qsim_json_fail(&r->w, at, NULL, "tensor name '%.100s' is listed twice (also as %s)",
                              name, qsim_enc_role_name(same->role));
    }
    return QSIM_SUCCESS;
}

qsim_status qsim_enc_add(qsim_enc_reader * r, const qsim_encoding_entry * e) {
    qsim_error add_err;
    qsim_status st = qsim_encodings_add(r->enc, e, &add_err);
    if (st == QSIM_INVALID_ARGUMENT) {
        return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, NULL, "%s", add_err.message);
    }
    if (st != QSIM_SUCCESS && r->w.err != NULL) {
        *r->w.err = add_err;
    }
    return st;
}
qsim_status qsim_enc_arrays_alloc(qsim_enc_reader * r, qsim_enc_arrays * a, size_t n, int with_bounds) {
    memset(a, 0, sizeof(*a));
    a->offset = malloc(n * (sizeof(int64_t) + (with_bounds ? 3 : 1) * sizeof(float)));
    if (a->offset == NULL) {
        qsim_error_set(r->w.err, QSIM_OUT_OF_MEMORY, "out of memory reading encodings");
        return QSIM_OUT_OF_MEMORY;
    }
    a->scale = (float *)(void *)(a->offset + n);
    a->min = with_bounds ? a->scale + n : NULL;
    a->max = with_bounds ? a->scale + 2 * n : NULL;
    return QSIM_SUCCESS;
}

qsim_encoding_entry qsim_enc_int_entry(const char * name, qsim_encoding_role role, int bitwidth,
                                     int is_symmetric, int is_signed, qsim_encoding_layout layout,
                                     size_t n, const qsim_enc_arrays * a) {
    qsim_encoding_entry e = {name, role, QSIM_ENCODING_INT, bitwidth, is_symmetric, is_signed,
                             layout, n, a->scale, a->offset, a->min, a->max, QSIM_ENCODING_NO_AXIS,
                             0, 0, NULL};
    return e;
}

qsim_status qsim_enc_add_float(qsim_enc_reader * r, const char * name, qsim_encoding_role role,
                             int bitwidth) {
    qsim_encoding_entry e = {name, role, QSIM_ENCODING_FLOAT, bitwidth, 0, 0,
                             QSIM_ENCODING_PER_TENSOR, 0, NULL, NULL, NULL, NULL,
                             QSIM_ENCODING_NO_AXIS, 0, 0, NULL};
    return qsim_enc_add(r, &e);
}

qsim_status qsim_enc_bitwidth_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                 qsim_encoding_kind kind, int * out) {
    int64_t bw = 0;
    QSIM_ENC_TRY(qsim_enc_int_field(r, f, k, kind == QSIM_ENCODING_INT ? 1 : 2, 32, &bw));
    *out = (int)bw;
    return QSIM_SUCCESS;
}

