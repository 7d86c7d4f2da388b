/* The entries of each encodings version, read into the model (qsim/encodings.h has the layouts). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/encodings_read.h"

#define BIT(k) (1u << (k))

/* The arrays of one int entry, malloc'ed together. */
typedef struct arrays {
    int64_t * offset;
    float *   scale;
    float *   min; /* NULL without bounds */
    float *   max;
} arrays;

static qsim_status arrays_alloc(qsim_enc_reader * r, arrays * a, size_t n, int with_bounds) {
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

static qsim_encoding_entry int_entry(const char * name, qsim_encoding_role role, int bitwidth,
                                     int is_symmetric, int is_signed, qsim_encoding_layout layout,
                                     size_t n, const arrays * a) {
    qsim_encoding_entry e = {name, role, QSIM_ENCODING_INT, bitwidth, is_symmetric, is_signed,
                             layout, n, a->scale, a->offset, a->min, a->max, QSIM_ENCODING_NO_AXIS,
                             0, 0, NULL};
    return e;
}

static qsim_status add_float(qsim_enc_reader * r, const char * name, qsim_encoding_role role,
                             int bitwidth) {
    qsim_encoding_entry e = {name, role, QSIM_ENCODING_FLOAT, bitwidth, 0, 0,
                             QSIM_ENCODING_PER_TENSOR, 0, NULL, NULL, NULL, NULL,
                             QSIM_ENCODING_NO_AXIS, 0, 0, NULL};
    return qsim_enc_add(r, &e);
}

/* Member keys[k]: int 1..32, float 2..32 (1 + exponent + mantissa bits: fp16, fp8, FP6, FP4,
 * any minifloat). */
static qsim_status read_bitwidth(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                 qsim_encoding_kind kind, int * out) {
    int64_t bw = 0;
    QSIM_ENC_TRY(qsim_enc_int_field(r, f, k, kind == QSIM_ENCODING_INT ? 1 : 2, 32, &bw));
    *out = (int)bw;
    return QSIM_SUCCESS;
}

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
                                const arrays * a) {
    qsim_enc_fields f;
    channel_head h = {0, 0, 0};
    QSIM_ENC_TRY(qsim_enc_read_fields(r, v, CHANNEL_KEYS, QSIM_ENC_COUNT(CHANNEL_KEYS), &f));
    QSIM_ENC_TRY(qsim_enc_require(r, &f, BIT(C_BITWIDTH) | BIT(C_DTYPE)));
    QSIM_ENC_TRY(qsim_enc_choice_field(r, &f, C_DTYPE, V0_DTYPES, 2, &h.kind));
    QSIM_ENC_TRY(read_bitwidth(r, &f, C_BITWIDTH, (qsim_encoding_kind)h.kind, &h.bitwidth));
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
                                 qsim_encoding_role role, const arrays * a) {
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
            return add_float(r, name, role, head.bitwidth);
        }
    }
    qsim_encoding_entry e = int_entry(name, role, head.bitwidth, head.is_symmetric,
                                      head.is_symmetric,
                                      n > 1 ? QSIM_ENCODING_PER_CHANNEL : QSIM_ENCODING_PER_TENSOR,
                                      n, a);
    return qsim_enc_add(r, &e);
}

static qsim_status read_v0_tensor(qsim_enc_reader * r, const cJSON * v, const char * name,
                                  qsim_encoding_role role) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0) {
        return cJSON_IsArray(v) ? qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, NULL,
                                                 "empty list of encodings")
                                : qsim_enc_wrong_type(r, v, "a list of per-channel encodings");
    }
    arrays a;
    QSIM_ENC_TRY(arrays_alloc(r, &a, (size_t)cJSON_GetArraySize(v), 1));
    qsim_status st = read_channels(r, v, name, role, &a);
    free(a.offset);
    return st;
}

static qsim_status read_v0_member(qsim_enc_reader * r, const qsim_json_member * m,
                                  qsim_encoding_role role) {
    QSIM_ENC_TRY(qsim_json_push(&r->w, m->key, m->index));
    QSIM_ENC_TRY(qsim_enc_check_name(r, m->key, QSIM_JSON_AT_KEY));
    QSIM_ENC_TRY(read_v0_tensor(r, m->value, m->key, role));
    qsim_json_pop(&r->w);
    return QSIM_SUCCESS;
}

qsim_status qsim_enc_read_v0_section(qsim_enc_reader * r, const cJSON * v, qsim_encoding_role role) {
    if (!cJSON_IsObject(v)) {
        return qsim_enc_wrong_type(r, v, "an object mapping tensor names to lists of encodings");
    }
    qsim_json_member * members = NULL;
    size_t n = 0;
    qsim_status st = qsim_json_members(v, &members, &n, r->w.err);
    for (size_t i = 0; st == QSIM_SUCCESS && i < n; i++) {
        st = read_v0_member(r, &members[i], role);
    }
    free(members);
    return st;
}

/* --- sections of entries with a "name" (1.0.0, 2.0.0) ---------------------------------------- */

typedef qsim_status (*entry_fn)(qsim_enc_reader * r, const cJSON * v, qsim_encoding_role role);

static qsim_status read_list(qsim_enc_reader * r, const cJSON * v, qsim_encoding_role role,
                             entry_fn fn) {
    if (!cJSON_IsArray(v)) {
        return qsim_enc_wrong_type(r, v, "a list of encodings");
    }
    size_t i = 0;
    for (const cJSON * c = v->child; c != NULL; c = c->next, i++) {
        QSIM_ENC_TRY(qsim_json_push(&r->w, NULL, i));
        QSIM_ENC_TRY(fn(r, c, role));
        qsim_json_pop(&r->w);
    }
    return QSIM_SUCCESS;
}

/* Member keys[k] (present): a string, new and non-empty as a tensor name. */
static qsim_status read_name(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                             const char ** out) {
    QSIM_ENC_TRY(qsim_enc_string_field(r, f, k, out));
    QSIM_ENC_TRY(qsim_enc_enter(r, f, k));
    QSIM_ENC_TRY(qsim_enc_check_name(r, *out, QSIM_JSON_AT_VALUE));
    qsim_json_pop(&r->w);
    return QSIM_SUCCESS;
}

/* --- 1.0.0: {name, dtype, enc_type, bw, is_sym, scale, offset, block_size} -------------------- */

enum { E_NAME, E_DTYPE, E_ENC_TYPE, E_BW, E_IS_SYM, E_SCALE, E_OFFSET, E_BLOCK_SIZE };
static const char * const V1_KEYS[] = {"name", "dtype",  "enc_type", "bw",
                                       "is_sym", "scale", "offset", "block_size"};
static const char * const V1_DTYPES[] = {"INT", "FLOAT"}; /* index = qsim_encoding_kind */
static const char * const ENC_TYPES[] = {"PER_TENSOR", "PER_CHANNEL", "PER_BLOCK"}; /* = layout */

static qsim_status read_enc_type(qsim_enc_reader * r, const qsim_enc_fields * f, size_t n_types,
                                 int * out) {
    const char * s = NULL;
    QSIM_ENC_TRY(qsim_enc_string_field(r, f, E_ENC_TYPE, &s));
    if (strcmp(s, "LPBQ") == 0 || strcmp(s, "VECTOR") == 0) {
        QSIM_ENC_TRY(qsim_enc_enter(r, f, E_ENC_TYPE));
        return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE,
                              ": torchqsim reads PER_TENSOR, PER_CHANNEL and PER_BLOCK",
                              "unsupported enc_type '%s'", s);
    }
    return qsim_enc_choice_field(r, f, E_ENC_TYPE, ENC_TYPES, n_types, out);
}

/* scale and offset, of equal lengths (1 for PER_TENSOR), into *a (caller frees a->offset). */
static qsim_status read_v1_values(qsim_enc_reader * r, const qsim_enc_fields * f, int bitwidth,
                                  int layout, arrays * a, size_t * n) {
    const qsim_enc_rule scale_rule = {QSIM_ENC_SCALE, "scale", 0, 0};
    const qsim_enc_rule offset_rule = {QSIM_ENC_OFFSET, "offset", bitwidth, 0};
    qsim_enc_numbers scale, offset;
    QSIM_ENC_TRY(qsim_enc_list_field(r, f, E_SCALE, &scale_rule, &scale));
    qsim_status st = qsim_enc_list_field(r, f, E_OFFSET, &offset_rule, &offset);
    if (st == QSIM_SUCCESS && offset.n != scale.n) {
        qsim_enc_enter(r, f, E_OFFSET);
        st = qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, NULL,
                            "offset has %zu values, scale has %zu", offset.n, scale.n);
    } else if (st == QSIM_SUCCESS && layout == QSIM_ENCODING_PER_TENSOR && scale.n != 1) {
        qsim_enc_enter(r, f, E_SCALE);
        st = qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, NULL,
                            "a PER_TENSOR encoding has one scale, got %zu", scale.n);
    }
    if (st == QSIM_SUCCESS) {
        st = arrays_alloc(r, a, scale.n, 0);
    }
    for (size_t i = 0; st == QSIM_SUCCESS && i < scale.n; i++) {
        a->scale[i] = qsim_enc_to_float(scale.v[i]);
        a->offset[i] = (int64_t)offset.v[i];
    }
    *n = scale.n;
    free(scale.v);
    free(offset.v);
    return st;
}

static qsim_status read_v1_int(qsim_enc_reader * r, const qsim_enc_fields * f, const char * name,
                               qsim_encoding_role role, int bitwidth) {
    int layout = 0;
    int is_sym = 0;
    int64_t block_size = 0;
    QSIM_ENC_TRY(qsim_enc_require(r, f, BIT(E_ENC_TYPE) | BIT(E_IS_SYM) | BIT(E_SCALE) | BIT(E_OFFSET)));
    QSIM_ENC_TRY(read_enc_type(r, f, QSIM_ENC_COUNT(ENC_TYPES), &layout));
    if (layout == QSIM_ENCODING_PER_BLOCK) {
        QSIM_ENC_TRY(qsim_enc_require(r, f, BIT(E_BLOCK_SIZE)));
        QSIM_ENC_TRY(qsim_enc_int_field(r, f, E_BLOCK_SIZE, 1, INT32_MAX, &block_size));
    }
    QSIM_ENC_TRY(qsim_enc_forbid(r, f, layout == QSIM_ENCODING_PER_BLOCK ? 0 : BIT(E_BLOCK_SIZE),
                                 "unless enc_type is PER_BLOCK"));
    QSIM_ENC_TRY(qsim_enc_bool_field(r, f, E_IS_SYM, &is_sym));
    arrays a;
    size_t n = 0;
    QSIM_ENC_TRY(read_v1_values(r, f, bitwidth, layout, &a, &n));
    qsim_encoding_entry e = int_entry(name, role, bitwidth, is_sym, is_sym,
                                      (qsim_encoding_layout)layout, n, &a);
    e.block_size = block_size;
    qsim_status st = qsim_enc_add(r, &e);
    free(a.offset);
    return st;
}

static qsim_status read_v1_entry(qsim_enc_reader * r, const cJSON * v, qsim_encoding_role role) {
    qsim_enc_fields f;
    const char * name = NULL;
    int kind = 0;
    int bitwidth = 0;
    QSIM_ENC_TRY(qsim_enc_read_fields(r, v, V1_KEYS, QSIM_ENC_COUNT(V1_KEYS), &f));
    QSIM_ENC_TRY(qsim_enc_require(r, &f, BIT(E_NAME) | BIT(E_DTYPE) | BIT(E_BW)));
    QSIM_ENC_TRY(read_name(r, &f, E_NAME, &name));
    QSIM_ENC_TRY(qsim_enc_choice_field(r, &f, E_DTYPE, V1_DTYPES, 2, &kind));
    QSIM_ENC_TRY(read_bitwidth(r, &f, E_BW, (qsim_encoding_kind)kind, &bitwidth));
    if (kind == QSIM_ENCODING_INT) {
        return read_v1_int(r, &f, name, role, bitwidth);
    }
    QSIM_ENC_TRY(qsim_enc_forbid(r, &f, BIT(E_IS_SYM) | BIT(E_SCALE) | BIT(E_OFFSET) | BIT(E_BLOCK_SIZE),
                                 "in a FLOAT encoding"));
    int per_tensor = 0;
    if (f.v[E_ENC_TYPE] != NULL) {
        QSIM_ENC_TRY(read_enc_type(r, &f, 1, &per_tensor)); /* PER_TENSOR only */
    }
    return add_float(r, name, role, bitwidth);
}

qsim_status qsim_enc_read_v1_section(qsim_enc_reader * r, const cJSON * v, qsim_encoding_role role) {
    return read_list(r, v, role, read_v1_entry);
}

/* --- 2.0.0: {name, output_dtype, y_scale, y_zero_point, axis, block_size} -------------------- */

enum { T_NAME, T_DTYPE, T_SCALE, T_ZERO_POINT, T_AXIS, T_BLOCK_SIZE, T_LPBQ_INT, T_LPBQ_FLOAT };
static const char * const V2_KEYS[] = {"name", "output_dtype", "y_scale", "y_zero_point",
                                       "axis", "block_size",   "per_block_int_scale",
                                       "per_channel_float_scale"};

/* "int<N>" or "uint<N>", N in 1..32 without leading zeros. */
static int parse_int_dtype(const char * s, int * bits, int * is_signed) {
    *is_signed = s[0] != 'u';
    s += *is_signed ? 0 : 1;
    if (strncmp(s, "int", 3) != 0 || s[3] < '1' || s[3] > '9') {
        return 0;
    }
    char * end = NULL;
    long n = strtol(s + 3, &end, 10);
    *bits = (int)n;
    return *end == '\0' && n >= 1 && n <= 32;
}

static qsim_status read_output_dtype(qsim_enc_reader * r, const qsim_enc_fields * f, int * bits,
                                     int * is_signed) {
    const char * s = NULL;
    QSIM_ENC_TRY(qsim_enc_string_field(r, f, T_DTYPE, &s));
    if (parse_int_dtype(s, bits, is_signed)) {
        return QSIM_SUCCESS;
    }
    QSIM_ENC_TRY(qsim_enc_enter(r, f, T_DTYPE));
    return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE,
                          ": expected intN or uintN with N in 1..32 (float output dtypes are not "
                          "supported)",
                          "unsupported output_dtype '%.40s'", s);
}

/* The layout y_scale's nesting and axis/block_size imply; the walk stands on the entry. */
static qsim_status v2_layout(qsim_enc_reader * r, const qsim_enc_fields * f,
                             const qsim_enc_numbers * scale, int64_t axis, qsim_encoding_layout * out) {
    if (scale->ndim == 0) {
        *out = QSIM_ENCODING_PER_TENSOR;
        return qsim_enc_forbid(r, f, BIT(T_AXIS) | BIT(T_BLOCK_SIZE), "with a single y_scale");
    }
    if (scale->ndim == 1) {
        QSIM_ENC_TRY(qsim_enc_forbid(r, f, BIT(T_BLOCK_SIZE),
                                     "with a flat y_scale (blockwise y_scale is nested)"));
        *out = f->v[T_AXIS] ? QSIM_ENCODING_PER_CHANNEL : QSIM_ENCODING_PER_TENSOR;
        if (f->v[T_AXIS] == NULL && scale->n != 1) {
            QSIM_ENC_TRY(qsim_enc_enter(r, f, T_SCALE));
            return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, NULL,
                                  "y_scale has %zu values but the entry has no 'axis'", scale->n);
        }
        return QSIM_SUCCESS;
    }
    *out = QSIM_ENCODING_PER_BLOCK;
    QSIM_ENC_TRY(qsim_enc_require(r, f, BIT(T_AXIS) | BIT(T_BLOCK_SIZE)));
    if ((size_t)axis >= scale->ndim) {
        QSIM_ENC_TRY(qsim_enc_enter(r, f, T_AXIS));
        return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, NULL,
                              "axis %lld is not a dimension of the %zu-d y_scale", (long long)axis,
                              scale->ndim);
    }
    return QSIM_SUCCESS;
}

/* y_zero_point (zeros when absent), of y_scale's shape, into AIMET offsets. */
static qsim_status read_v2_offsets(qsim_enc_reader * r, const qsim_enc_fields * f,
                                   const qsim_enc_numbers * scale, int bits, int is_signed,
                                   int64_t * offset, int * all_zero) {
    const qsim_enc_rule rule = {QSIM_ENC_ZERO_POINT, "y_zero_point", bits, is_signed};
    qsim_enc_numbers zp = {NULL, 0, 0, {0}};
    if (f->v[T_ZERO_POINT] != NULL) {
        QSIM_ENC_TRY(qsim_enc_enter(r, f, T_ZERO_POINT));
        QSIM_ENC_TRY(qsim_enc_read_numbers(r, f->v[T_ZERO_POINT], &rule, QSIM_ENCODING_MAX_DIMS, &zp));
        int same = zp.ndim == scale->ndim &&
                   memcmp(zp.shape, scale->shape, zp.ndim * sizeof(zp.shape[0])) == 0;
        if (!same) {
            free(zp.v);
            return qsim_json_fail(&r->w, QSIM_JSON_AT_VALUE, NULL,
                                  "y_zero_point's shape differs from y_scale's");
        }
        qsim_json_pop(&r->w);
    }
    const int64_t shift = is_signed ? (int64_t)1 << (bits - 1) : 0;
    *all_zero = 1;
    for (size_t i = 0; i < scale->n; i++) {
        int64_t z = zp.v ? (int64_t)zp.v[i] : 0;
        *all_zero &= z == 0;
        offset[i] = -z - shift;
    }
    free(zp.v);
    return QSIM_SUCCESS;
}

static qsim_status read_v2_values(qsim_enc_reader * r, const qsim_enc_fields * f, const char * name,
                                  const qsim_enc_numbers * scale) {
    int bits = 0;
    int is_signed = 0;
    int64_t axis = QSIM_ENCODING_NO_AXIS;
    int64_t block_size = 0;
    qsim_encoding_layout layout = QSIM_ENCODING_PER_TENSOR;
    QSIM_ENC_TRY(read_output_dtype(r, f, &bits, &is_signed));
    if (f->v[T_AXIS] != NULL) {
        QSIM_ENC_TRY(qsim_enc_int_field(r, f, T_AXIS, 0, 65535, &axis));
    }
    if (f->v[T_BLOCK_SIZE] != NULL) {
        QSIM_ENC_TRY(qsim_enc_int_field(r, f, T_BLOCK_SIZE, 1, INT32_MAX, &block_size));
    }
    QSIM_ENC_TRY(v2_layout(r, f, scale, axis, &layout));
    arrays a;
    int all_zero = 0;
    QSIM_ENC_TRY(arrays_alloc(r, &a, scale->n, 0));
    qsim_status st = read_v2_offsets(r, f, scale, bits, is_signed, a.offset, &all_zero);
    for (size_t i = 0; i < scale->n; i++) {
        a.scale[i] = qsim_enc_to_float(scale->v[i]);
    }
    qsim_encoding_entry e = int_entry(name, QSIM_ENCODING_ROLE_UNKNOWN, bits,
                                      is_signed && all_zero, is_signed, layout, scale->n, &a);
    e.axis = layout == QSIM_ENCODING_PER_TENSOR ? QSIM_ENCODING_NO_AXIS : (int)axis;
    if (layout == QSIM_ENCODING_PER_BLOCK) {
        e.block_size = block_size;
        e.ndim = scale->ndim;
        e.shape = scale->shape;
    }
    if (st == QSIM_SUCCESS) {
        st = qsim_enc_add(r, &e);
    }
    free(a.offset);
    return st;
}

static qsim_status read_v2_entry(qsim_enc_reader * r, const cJSON * v, qsim_encoding_role role) {
    (void)role;
    qsim_enc_fields f;
    const char * name = NULL;
    QSIM_ENC_TRY(qsim_enc_read_fields(r, v, V2_KEYS, QSIM_ENC_COUNT(V2_KEYS), &f));
    QSIM_ENC_TRY(qsim_enc_forbid(r, &f, BIT(T_LPBQ_INT) | BIT(T_LPBQ_FLOAT),
                                 "(LPBQ encodings are not supported)"));
    QSIM_ENC_TRY(qsim_enc_require(r, &f, BIT(T_NAME) | BIT(T_DTYPE) | BIT(T_SCALE)));
    QSIM_ENC_TRY(read_name(r, &f, T_NAME, &name));
    const qsim_enc_rule rule = {QSIM_ENC_SCALE, "y_scale", 0, 0};
    qsim_enc_numbers scale;
    QSIM_ENC_TRY(qsim_enc_enter(r, &f, T_SCALE));
    QSIM_ENC_TRY(qsim_enc_read_numbers(r, f.v[T_SCALE], &rule, QSIM_ENCODING_MAX_DIMS, &scale));
    qsim_json_pop(&r->w);
    qsim_status st = read_v2_values(r, &f, name, &scale);
    free(scale.v);
    return st;
}

qsim_status qsim_enc_read_v2_section(qsim_enc_reader * r, const cJSON * v) {
    return read_list(r, v, QSIM_ENCODING_ROLE_UNKNOWN, read_v2_entry);
}
