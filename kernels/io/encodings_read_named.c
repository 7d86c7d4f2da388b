/* The entries of 1.0.0 and 2.0.0 files: objects with a "name", one per tensor
 * (encodings_read.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/encodings_read.h"

#define BIT(k) (1u << (k))

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
                                  int layout, qsim_enc_arrays * a, size_t * n) {
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
        st = qsim_enc_arrays_alloc(r, a, scale.n, 0);
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
    qsim_enc_arrays a;
    size_t n = 0;
    QSIM_ENC_TRY(read_v1_values(r, f, bitwidth, layout, &a, &n));
    qsim_encoding_entry e = qsim_enc_int_entry(name, role, bitwidth, is_sym, is_sym,
                                      (qsim_encoding_layout)layout, n, &a);
    e.block_size = block_size;
    qsim_status st = qsim_enc_add(r, &e);
    free(a.offset);
    return st;
}

qsim_status qsim_enc_read_v1_entry(qsim_enc_reader * r, const cJSON * v, qsim_encoding_role role) {
    qsim_enc_fields f;
    const char * name = NULL;
    int kind = 0;
    int bitwidth = 0;
    QSIM_ENC_TRY(qsim_enc_read_fields(r, v, V1_KEYS, QSIM_ENC_COUNT(V1_KEYS), &f));
    QSIM_ENC_TRY(qsim_enc_require(r, &f, BIT(E_NAME) | BIT(E_DTYPE) | BIT(E_BW)));
    QSIM_ENC_TRY(read_name(r, &f, E_NAME, &name));
    QSIM_ENC_TRY(qsim_enc_choice_field(r, &f, E_DTYPE, V1_DTYPES, 2, &kind));
    QSIM_ENC_TRY(qsim_enc_bitwidth_field(r, &f, E_BW, (qsim_encoding_kind)kind, &bitwidth));
    if (kind == QSIM_ENCODING_INT) {
        return read_v1_int(r, &f, name, role, bitwidth);
    }
    QSIM_ENC_TRY(qsim_enc_forbid(r, &f, BIT(E_IS_SYM) | BIT(E_SCALE) | BIT(E_OFFSET) | BIT(E_BLOCK_SIZE),
                                 "in a FLOAT encoding"));
    int per_tensor = 0;
    if (f.v[E_ENC_TYPE] != NULL) {
        QSIM_ENC_TRY(read_enc_type(r, &f, 1, &per_tensor)); /* PER_TENSOR only */
    }
    return qsim_enc_add_float(r, name, role, bitwidth);
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
    qsim_enc_arrays a;
    int all_zero = 0;
    QSIM_ENC_TRY(qsim_enc_arrays_alloc(r, &a, scale->n, 0));
    qsim_status st = read_v2_offsets(r, f, scale, bits, is_signed, a.offset, &all_zero);
    for (size_t i = 0; i < scale->n; i++) {
        a.scale[i] = qsim_enc_to_float(scale->v[i]);
    }
    qsim_encoding_entry e = qsim_enc_int_entry(name, QSIM_ENCODING_ROLE_UNKNOWN, bits,
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

qsim_status qsim_enc_read_v2_entry(qsim_enc_reader * r, const cJSON * v, qsim_encoding_role role) {
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

