/*
 * encodings_read.h (private to kernels/): the pieces the encodings reader is built from. The
 * reader keeps a json_util.h walk standing on the value it reads; every helper here reports its
 * errors there (QSIM_PARSE_ERROR with the JSON path and line:column).
 *
 *   encodings_read.c          parse/load, the top level, producer, quantizer_args, excluded_layers
 *   encodings_read_sections.c the root without its sections, and each section entry by entry
 *   encodings_read_v0.c       the entries of 0.6.1 files
 *   encodings_read_named.c    the entries of 1.0.0 and 2.0.0 files
 *   encodings_read_util.c     the helpers below
 *
 * Memory: the sections (activation_encodings, param_encodings, encodings) are not parsed with the
 * rest of the document; each of their entries is parsed on its own, read into the model and
 * freed, so reading holds the text, the model and one entry's tree at a time.
 */
#ifndef QSIM_ENCODINGS_READ_H
#define QSIM_ENCODINGS_READ_H

#include <stdint.h>

#include "io/encodings_model.h"

#define QSIM_ENC_TRY(expr)                        \
    do {                                          \
        const qsim_status qsim_enc_try_ = (expr); \
        if (qsim_enc_try_ != QSIM_SUCCESS) {      \
            return qsim_enc_try_;                 \
        }                                         \
    } while (0)

#define QSIM_ENC_COUNT(array) (sizeof(array) / sizeof((array)[0]))
#define QSIM_ENC_MAX_FIELDS   8

/* Where the unparsed sections of a document lie: the placeholder standing for section i in the
 * root (an empty object or array) and the span of its value in the text. */
typedef struct qsim_enc_sections {
    const cJSON **   items;
    qsim_json_span * spans;
    size_t           n, cap;
} qsim_enc_sections;

typedef struct qsim_enc_reader {
    qsim_json_walk            w;
    qsim_encodings *          enc;
    const qsim_enc_sections * sections;
} qsim_enc_reader;

/* The members of one object, by key: v[k] is the (last) member named keys[k] or NULL, at[k] its
 * position. */
typedef struct qsim_enc_fields {
    const char * const * keys;
    size_t               n;
    const cJSON *        v[QSIM_ENC_MAX_FIELDS];
    size_t               at[QSIM_ENC_MAX_FIELDS];
} qsim_enc_fields;

/* Checks `obj` is an object whose keys are all in `keys` (an unknown key fails, with the nearest
 * known one as a suggestion) and collects its members into *f. The walk stands on obj. */
qsim_status qsim_enc_read_fields(qsim_enc_reader * r, const cJSON * obj, const char * const * keys,
                                 size_t n_keys, qsim_enc_fields * f);

/* Fails on the first of the keys selected by `mask` (bit k: keys[k]) that is absent. */
qsim_status qsim_enc_require(qsim_enc_reader * r, const qsim_enc_fields * f, unsigned mask);

/* Fails at the first present key selected by `mask`: "'<key>' is not allowed <where>". */
qsim_status qsim_enc_forbid(qsim_enc_reader * r, const qsim_enc_fields * f, unsigned mask,
                            const char * where);

/* Steps into member keys[k] (which must be present). */
qsim_status qsim_enc_enter(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k);

/* "wrong type: expected <expected>, got <what v is>" at the walk. */
qsim_status qsim_enc_wrong_type(qsim_enc_reader * r, const cJSON * v, const char * expected);

/* Readers of member keys[k] of f (present): they step in, read, and step back out. */
qsim_status qsim_enc_int_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k, int64_t lo,
                               int64_t hi, int64_t * out);
qsim_status qsim_enc_string_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                  const char ** out);
qsim_status qsim_enc_bool_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k, int * out);
/* AIMET 0.6.1's booleans: the strings "True" and "False" only. */
qsim_status qsim_enc_bool_string_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                       int * out);
/* Fails unless the string member keys[k] is one of the `n` choices; *out gets its index. */
qsim_status qsim_enc_choice_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                  const char * const * choices, size_t n, int * out);

/* What a number must be (encodings_model.h value checks; zero points on a 2.0.0 output_dtype). */
typedef enum qsim_enc_check {
    QSIM_ENC_SCALE,
    QSIM_ENC_BOUND,
    QSIM_ENC_OFFSET,     /* needs bitwidth */
    QSIM_ENC_ZERO_POINT, /* needs bitwidth and is_signed */
} qsim_enc_check;

typedef struct qsim_enc_rule {
    qsim_enc_check check;
    const char *   field;    /* named in messages: "invalid <field>: <why>" */
    int            bitwidth;
    int            is_signed;
} qsim_enc_rule;

/* A number or a rectangular nest of lists of numbers (row-major values). */
typedef struct qsim_enc_numbers {
    double * v; /* n values, malloc'ed: free with free() */
    size_t   n;
    size_t   ndim;  /* 0 for a bare number */
    int64_t  shape[QSIM_ENCODING_MAX_DIMS];
} qsim_enc_numbers;

/* Reads `v` (the walk stands on it) as a number or nested lists up to `max_ndim` deep, each value
 * passing `rule`; empty or ragged lists fail. On failure out->v is NULL. */
qsim_status qsim_enc_read_numbers(qsim_enc_reader * r, const cJSON * v, const qsim_enc_rule * rule,
                                  size_t max_ndim, qsim_enc_numbers * out);

/* Reads member keys[k] (present) as one number passing `rule`. */
qsim_status qsim_enc_number_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                  const qsim_enc_rule * rule, double * out);

/* Reads member keys[k] (present) as a list of numbers (ndim 1) passing `rule`. */
qsim_status qsim_enc_list_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                const qsim_enc_rule * rule, qsim_enc_numbers * out);

/* Adds `e` to the model; a failure the reader did not foresee is reported at the walk. */
qsim_status qsim_enc_add(qsim_enc_reader * r, const qsim_encoding_entry * e);

/* Fails at the walk when `name` is empty or already in the model. */
qsim_status qsim_enc_check_name(qsim_enc_reader * r, const char * name, qsim_json_at at);

/* The arrays of one int entry, malloc'ed together: free(offset) frees them all. */
typedef struct qsim_enc_arrays {
    int64_t * offset;
    float *   scale;
    float *   min; /* NULL without bounds */
    float *   max;
} qsim_enc_arrays;

/* Allocates n of each array (min and max only `with_bounds`). */
qsim_status qsim_enc_arrays_alloc(qsim_enc_reader * r, qsim_enc_arrays * a, size_t n,
                                  int with_bounds);

/* An int entry over the arrays of a (borrowed). */
qsim_encoding_entry qsim_enc_int_entry(const char * name, qsim_encoding_role role, int bitwidth,
                                       int is_symmetric, int is_signed,
                                       qsim_encoding_layout layout, size_t n,
                                       const qsim_enc_arrays * a);

/* Adds a float entry of `bitwidth` to the model. */
qsim_status qsim_enc_add_float(qsim_enc_reader * r, const char * name, qsim_encoding_role role,
                               int bitwidth);

/* Member keys[k]: int 1..32, float 2..32 (1 + exponent + mantissa bits: fp16, fp8, FP6, FP4,
 * any minifloat). */
qsim_status qsim_enc_bitwidth_field(qsim_enc_reader * r, const qsim_enc_fields * f, size_t k,
                                    qsim_encoding_kind kind, int * out);

/* One entry into the model; the walk stands on v. 0.6.1: the list of channels of tensor `name`;
 * 1.0.0: an object with a name (in section `role`); 2.0.0: an object with a name (role unknown). */
qsim_status qsim_enc_read_v0_tensor(qsim_enc_reader * r, const cJSON * v, const char * name,
                                    qsim_encoding_role role);
qsim_status qsim_enc_read_v1_entry(qsim_enc_reader * r, const cJSON * v, qsim_encoding_role role);
qsim_status qsim_enc_read_v2_entry(qsim_enc_reader * r, const cJSON * v, qsim_encoding_role role);

/* Parses the document into *root except the values of its section members, which stay
 * unparsed: each is an empty placeholder of its kind in the root, recorded in *s with its span.
 * Text that is not JSON, or whose root is not an object, is parsed whole (qsim_json_parse) and
 * fails or is rejected as before. The caller frees *root and calls qsim_enc_sections_free. */
qsim_status qsim_enc_parse_root(const char * text, size_t len, cJSON ** root,
                                qsim_enc_sections * s, qsim_error * err);
void        qsim_enc_sections_free(qsim_enc_sections * s);

/* The entries of section v (a member of the root) of a file of `version` (QSIM_ENC_V*), each
 * parsed, read and freed in turn: 0.6.1 {name: [channels]} (duplicated names: the last value, at
 * the first place), 1.0.0 [entry, ...] (with `role`) or 2.0.0 [entry, ...]. The walk stands on
 * the section. */
qsim_status qsim_enc_read_section(qsim_enc_reader * r, const cJSON * v, int version,
                                  qsim_encoding_role role);

#endif /* QSIM_ENCODINGS_READ_H */
