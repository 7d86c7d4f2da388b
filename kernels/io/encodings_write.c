/* The encodings writer: the model as 0.6.1, 1.0.0 or 2.0.0 JSON text (qsim/encodings.h). */
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/encodings_model.h"
#include "io/json_text.h"

/* --- what a version can hold ---------------------------------------------------------------- */

/* 0.6.1's min and max of channel i: as recorded, else AIMET's scale * offset and
 * scale * (offset + 2^bitwidth - 1), in double (exact for bitwidths up to 29). */
static void bounds(const qsim_encoding_entry * e, size_t i, double * lo, double * hi) {
    const double scale = (double)e->scale[i];
    const double offset = (double)e->offset[i];
    *lo = e->min ? (double)e->min[i] : scale * offset;
    *hi = e->max ? (double)e->max[i] : scale * (offset + ldexp(1.0, e->bitwidth) - 1.0);
}

/* Why the min/max 0.6.1 derives for `e` overflow float32 (into why), or 0. */
static int bad_derived_bounds(const qsim_encoding_entry * e, char * why, size_t cap) {
    char reason[160];
    for (size_t i = 0; e->min == NULL && i < e->n; i++) {
        double lo, hi;
        bounds(e, i, &lo, &hi);
        const int bad_lo = qsim_enc_bad_bound(lo, reason, sizeof(reason));
        if (bad_lo || qsim_enc_bad_bound(hi, reason, sizeof(reason))) {
            snprintf(why, cap, "%s[%zu] derived from scale and offset %s", bad_lo ? "min" : "max",
                     i, reason);
            return 1;
        }
    }
    return 0;
}

/* Why `e` has no form in `version` (into why), or 0. */
static int unwritable(const qsim_encoding_entry * e, int version, char * why, size_t cap) {
    const char * w = NULL;
    if (version != QSIM_ENC_V2_0_0 && e->role == QSIM_ENCODING_ROLE_UNKNOWN) {
        w = "its role (activation or param) is unknown (2.0.0 does not record it)";
    } else if (e->kind == QSIM_ENCODING_FLOAT) {
        return 0;
    } else if (version == QSIM_ENC_V0_6_1 && e->layout == QSIM_ENCODING_PER_BLOCK) {
        w = "per-block encodings need version 1.0.0 or 2.0.0";
    } else if (version == QSIM_ENC_V2_0_0 && e->layout == QSIM_ENCODING_PER_CHANNEL &&
               e->axis == QSIM_ENCODING_NO_AXIS) {
        w = "2.0.0 needs the channel axis, which 0.6.1 and 1.0.0 do not record";
    } else if (version == QSIM_ENC_V2_0_0 && e->layout == QSIM_ENCODING_PER_BLOCK &&
               (e->ndim < 2 || e->axis == QSIM_ENCODING_NO_AXIS || (size_t)e->axis >= e->ndim)) {
        w = "2.0.0 needs the block axis and the scale tensor's shape (2 or more dims, the axis one "
            "of them), which 1.0.0 does not record";
    } else {
        return qsim_enc_bad_values(e, why, cap) ||
               (version == QSIM_ENC_V0_6_1 && bad_derived_bounds(e, why, cap));
    }
    snprintf(why, cap, "%s", w);
    return 1;
}

/* --- 0.6.1 ---------------------------------------------------------------------------------- */

/* One channel (bounds() gives min and max). */
static void put_v0_channel(qsim_text * t, const qsim_encoding_entry * e, size_t i) {
    double lo, hi;
    bounds(e, i, &lo, &hi);
    int first = 1;
    qsim_text_put(t, "{");
    qsim_text_member_int(t, &first, "bitwidth", e->bitwidth);
    qsim_text_member(t, &first, "dtype", "\"int\"");
    qsim_text_member(t, &first, "is_symmetric", e->is_symmetric ? "\"True\"" : "\"False\"");
    qsim_text_key(t, &first, "max");
    qsim_text_float(t, qsim_enc_to_float(hi));
    qsim_text_key(t, &first, "min");
    qsim_text_float(t, qsim_enc_to_float(lo));
    qsim_text_member_int(t, &first, "offset", (long long)e->offset[i]);
    qsim_text_key(t, &first, "scale");
    qsim_text_float(t, e->scale[i]);
    qsim_text_put(t, "}");
}

static void put_v0_entry(qsim_text * t, const qsim_encoding_entry * e) {
    qsim_text_string(t, e->name);
    qsim_text_put(t, ": [");
    if (e->kind == QSIM_ENCODING_FLOAT) {
        qsim_text_put(t, "{\"bitwidth\": ");
        qsim_text_int(t, e->bitwidth);
        qsim_text_put(t, ", \"dtype\": \"float\"}");
    }
    for (size_t i = 0; i < e->n; i++) {
        qsim_text_put(t, i ? ", " : "");
        put_v0_channel(t, e, i);
    }
    qsim_text_put(t, "]");
}

/* --- 1.0.0 ---------------------------------------------------------------------------------- */

static void put_v1_entry(qsim_text * t, const qsim_encoding_entry * e) {
    static const char * const ENC_TYPES[] = {"PER_TENSOR", "PER_CHANNEL", "PER_BLOCK"};
    int first = 1;
    qsim_text_put(t, "{");
    qsim_text_member_string(t, &first, "name", e->name);
    qsim_text_member(t, &first, "dtype", e->kind == QSIM_ENCODING_FLOAT ? "\"FLOAT\"" : "\"INT\"");
    qsim_text_member_string(t, &first, "enc_type", ENC_TYPES[e->layout]);
    qsim_text_member_int(t, &first, "bw", e->bitwidth);
    if (e->kind == QSIM_ENCODING_INT) {
        qsim_text_member_bool(t, &first, "is_sym", e->is_symmetric);
        qsim_text_key(t, &first, "scale");
        qsim_text_floats(t, e->scale, e->n);
        qsim_text_key(t, &first, "offset");
        qsim_text_ints(t, e->offset, e->n, NULL);
    }
    if (e->layout == QSIM_ENCODING_PER_BLOCK) {
        qsim_text_member_int(t, &first, "block_size", (long long)e->block_size);
    }
    qsim_text_put(t, "}");
}

/* --- 2.0.0 ---------------------------------------------------------------------------------- */

/* Values [*pos, ...) nested along shape[d..ndim) (floats, or zero points when zp != NULL). */
static void put_nested(qsim_text * t, const qsim_encoding_entry * e, size_t d, size_t * pos,
                       const int64_t * zp_shift) {
    if (d == e->ndim) {
        if (zp_shift) {
            qsim_text_int(t, (long long)(*zp_shift - e->offset[*pos]));
        } else {
            qsim_text_float(t, e->scale[*pos]);
        }
        (*pos)++;
        return;
    }
    qsim_text_put(t, "[");
    for (int64_t i = 0; i < e->shape[d]; i++) {
        qsim_text_put(t, i ? ", " : "");
        put_nested(t, e, d + 1, pos, zp_shift);
    }
    qsim_text_put(t, "]");
}

/* y_scale or y_zero_point in the entry's layout: a number, a list, or nested lists. */
static void put_v2_values(qsim_text * t, const qsim_encoding_entry * e, const int64_t * zp_shift) {
    size_t pos = 0;
    if (e->layout == QSIM_ENCODING_PER_BLOCK) {
        put_nested(t, e, 0, &pos, zp_shift);
    } else if (e->layout == QSIM_ENCODING_PER_CHANNEL && zp_shift) {
        qsim_text_ints(t, e->offset, e->n, zp_shift);
    } else if (e->layout == QSIM_ENCODING_PER_CHANNEL) {
        qsim_text_floats(t, e->scale, e->n);
    } else if (zp_shift) {
        qsim_text_int(t, (long long)(*zp_shift - e->offset[0]));
    } else {
        qsim_text_float(t, e->scale[0]);
    }
}

/* ONNX zero point = shift - offset: shift is -2^(bitwidth-1) on a signed grid, 0 on unsigned.
 * A symmetric signed entry whose offsets are all AIMET's strict-symmetric -(2^(bitwidth-1) - 1)
 * (the grid [-(2^(b-1)-1), 2^(b-1)-1]) has zero point 0: shift -(2^(bitwidth-1) - 1). */
static int64_t zero_point_shift(const qsim_encoding_entry * e) {
    if (!e->is_signed) {
        return 0;
    }
    const int64_t half = (int64_t)1 << (e->bitwidth - 1);
    int strict = e->is_symmetric && e->bitwidth > 1;
    for (size_t i = 0; strict && i < e->n; i++) {
        strict = e->offset[i] == -(half - 1);
    }
    return strict ? -(half - 1) : -half;
}

static void put_v2_entry(qsim_text * t, const qsim_encoding_entry * e) {
    const int64_t shift = zero_point_shift(e);
    int all_zero = 1;
    for (size_t i = 0; i < e->n; i++) {
        all_zero &= shift - e->offset[i] == 0;
    }
    int first = 1;
    char dtype[16];
    snprintf(dtype, sizeof(dtype), "%sint%d", e->is_signed ? "" : "u", e->bitwidth);
    qsim_text_put(t, "{");
    qsim_text_member_string(t, &first, "name", e->name);
    qsim_text_member_string(t, &first, "output_dtype", dtype);
    qsim_text_key(t, &first, "y_scale");
    put_v2_values(t, e, NULL);
    if (!all_zero) {
        qsim_text_key(t, &first, "y_zero_point");
        put_v2_values(t, e, &shift);
    }
    if (e->layout != QSIM_ENCODING_PER_TENSOR) {
        qsim_text_member_int(t, &first, "axis", e->axis);
    }
    if (e->layout == QSIM_ENCODING_PER_BLOCK) {
        qsim_text_member_int(t, &first, "block_size", (long long)e->block_size);
    }
    qsim_text_put(t, "}");
}

/* --- the file ------------------------------------------------------------------------------- */

typedef void (*entry_fn)(qsim_text * t, const qsim_encoding_entry * e);

/* The entries with `role` (all int ones when role is -1: 2.0.0), one per line. */
static void put_section(qsim_text * t, const qsim_encodings_view * v, int role, entry_fn fn, int object) {
    size_t count = 0;
    qsim_text_put(t, object ? "{" : "[");
    for (size_t i = 0; i < v->n_entries; i++) {
        const qsim_encoding_entry * e = &v->entries[i];
        if (role >= 0 ? (int)e->role != role : e->kind == QSIM_ENCODING_FLOAT) {
            continue;
        }
        qsim_text_put(t, count++ ? ",\n        " : "\n        ");
        fn(t, e);
    }
    qsim_text_put(t, count ? "\n    " : "");
    qsim_text_put(t, object ? "}" : "]");
}

static void put_quantizer_args(qsim_text * t, const qsim_quantizer_args * a) {
    int first = 1;
    qsim_text_put(t, "{");
    qsim_text_member_int(t, &first, "activation_bitwidth", a->activation_bitwidth);
    qsim_text_member(t, &first, "dtype", a->dtype == QSIM_ENCODING_FLOAT ? "\"float\"" : "\"int\"");
    qsim_text_member_bool(t, &first, "is_symmetric", a->is_symmetric);
    qsim_text_member_int(t, &first, "param_bitwidth", a->param_bitwidth);
    qsim_text_member_bool(t, &first, "per_channel_quantization", a->per_channel_quantization);
    qsim_text_member_string(t, &first, "quant_scheme", a->quant_scheme);
    qsim_text_put(t, "}");
}

static void put_file(qsim_text * t, const qsim_encodings_view * v, int version) {
    static const entry_fn FNS[] = {put_v0_entry, put_v1_entry, put_v2_entry};
    size_t n_versions = 0;
    const char * const * versions = qsim_encodings_versions(&n_versions);
    int first = 1;
    qsim_text_put(t, "{");
    qsim_text_top_key(t, &first, "version");
    qsim_text_string(t, versions[version]);
    if (v->producer_package != NULL) {
        int inner = 1;
        qsim_text_top_key(t, &first, "producer");
        qsim_text_put(t, "{");
        qsim_text_key(t, &inner, "package");
        qsim_text_string(t, v->producer_package);
        qsim_text_key(t, &inner, "version");
        qsim_text_string(t, v->producer_version);
        qsim_text_put(t, "}");
    }
    if (version == QSIM_ENC_V2_0_0) {
        qsim_text_top_key(t, &first, "encodings");
        put_section(t, v, -1, FNS[version], 0);
    } else {
        qsim_text_top_key(t, &first, "activation_encodings");
        put_section(t, v, QSIM_ENCODING_ACTIVATION, FNS[version], version == QSIM_ENC_V0_6_1);
        qsim_text_top_key(t, &first, "param_encodings");
        put_section(t, v, QSIM_ENCODING_PARAM, FNS[version], version == QSIM_ENC_V0_6_1);
    }
    if (version != QSIM_ENC_V2_0_0 || v->n_excluded_layers != 0) {
        qsim_text_top_key(t, &first, "excluded_layers");
        qsim_text_put(t, "[");
        for (size_t i = 0; i < v->n_excluded_layers; i++) {
            qsim_text_put(t, i ? ", " : "");
            qsim_text_string(t, v->excluded_layers[i]);
        }
        qsim_text_put(t, "]");
    }
    if (v->quantizer_args != NULL) {
        qsim_text_top_key(t, &first, "quantizer_args");
        put_quantizer_args(t, v->quantizer_args);
    }
    qsim_text_put(t, "\n}\n");
}

qsim_status qsim_encodings_write(const qsim_encodings * enc, const char * version, char ** out_text,
                                 size_t * out_len, qsim_error * err) {
    if (out_text != NULL) {
        *out_text = NULL;
    }
    qsim_error_clear(err);
    const int ver = qsim_enc_version_index(version);
    if (enc == NULL || out_text == NULL) {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT, "cannot write encodings: NULL enc or out_text");
        return QSIM_INVALID_ARGUMENT;
    }
    if (ver < 0) {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT,
                       "cannot write encodings: unsupported version '%.40s'; supported: %s",
                       version ? version : "(null)", QSIM_ENC_VERSIONS_TEXT);
        return QSIM_INVALID_ARGUMENT;
    }
    const qsim_encodings_view * v = qsim_encodings_get(enc);
    for (size_t i = 0; i < v->n_entries; i++) {
        char why[QSIM_ERROR_MESSAGE_MAX / 2];
        if (unwritable(&v->entries[i], ver, why, sizeof(why))) {
            qsim_error_set(err, QSIM_INVALID_ARGUMENT, "cannot write %s '%.100s' as %s: %s",
                           qsim_enc_role_name(v->entries[i].role), v->entries[i].name, version, why);
            return QSIM_INVALID_ARGUMENT;
        }
    }
    qsim_text t = {NULL, 0, 0, 0};
    put_file(&t, v, ver);
    if (t.oom) {
        free(t.s);
        qsim_error_set(err, QSIM_OUT_OF_MEMORY, "out of memory writing encodings");
        return QSIM_OUT_OF_MEMORY;
    }
    *out_text = t.s;
    if (out_len != NULL) {
        *out_len = t.len;
    }
    return QSIM_SUCCESS;
}
