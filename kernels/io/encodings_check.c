/* The checks of one encoding entry, shared by the reader, the writer and qsim_encoding_check:
 * values (scale, bounds, offsets) and structure (encodings_model.h). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "io/encodings_model.h"

/* --- value checks --------------------------------------------------------------------------- */

/* Doubles from here up round to infinity in float32: 2^128 - 2^103, halfway from FLT_MAX. */
#define FLOAT_OVERFLOW 0x1.ffffffp127

float qsim_enc_to_float(double v) {
    if (fabs(v) <= (double)FLT_MAX) {
        return (float)v;
    }
    return v > 0.0 ? FLT_MAX : -FLT_MAX;
}

static int bad_float(double v, char * why, size_t cap) {
    if (!isfinite(v)) {
        snprintf(why, cap, "must be a finite number, got %g", v);
        return 1;
    }
    if (fabs(v) >= FLOAT_OVERFLOW) {
        snprintf(why, cap, "must fit in float32, got %.9g", v);
        return 1;
    }
    return 0;
}

int qsim_enc_bad_scale(double v, char * why, size_t cap) {
    if (bad_float(v, why, cap)) {
        return 1;
    }
    if (!(qsim_enc_to_float(v) > 0.0f)) {
        snprintf(why, cap, "must be > 0%s, got %.9g", v > 0.0 ? " in float32" : "", v);
        return 1;
    }
    return 0;
}

int qsim_enc_bad_bound(double v, char * why, size_t cap) {
    return bad_float(v, why, cap);
}

int qsim_enc_bad_offset(double v, int bitwidth, char * why, size_t cap) {
    const double lowest = -(ldexp(1.0, bitwidth) - 1.0);
    if (v != floor(v) || v < lowest || v > 0.0) {
        snprintf(why, cap, "must be an integer in [%.0f, 0] (offset = -zero_point on the %d-bit "
                 "unsigned grid), got %.17g", lowest, bitwidth, v);
        return 1;
    }
    return 0;
}

/* Why `e` breaks the structure of qsim_encoding_entry (besides its name), or NULL. */
const char * qsim_enc_bad_structure(const qsim_encoding_entry * e) {
    if (e->role < QSIM_ENCODING_ACTIVATION || e->role > QSIM_ENCODING_ROLE_UNKNOWN) {
        return "role is not a qsim_encoding_role";
    }
    if (e->kind == QSIM_ENCODING_FLOAT) {
        if (e->bitwidth < 2 || e->bitwidth > 32) {
            return "a float entry's bitwidth must be 2..32";
        }
        int empty = e->n == 0 && !e->scale && !e->offset && !e->min && !e->max && !e->shape &&
                    e->ndim == 0 && e->layout == QSIM_ENCODING_PER_TENSOR &&
                    e->axis == QSIM_ENCODING_NO_AXIS && e->block_size == 0 && !e->is_symmetric &&
                    !e->is_signed;
        return empty ? NULL : "a float entry has no scale, offset, min, max, axis, blocks or flags";
    }
    if (e->kind != QSIM_ENCODING_INT) {
        return "kind is not a qsim_encoding_kind";
    }
    if (e->bitwidth < 1 || e->bitwidth > 32) {
        return "an int entry's bitwidth must be in 1..32";
    }
    if (e->n == 0 || e->scale == NULL || e->offset == NULL) {
        return "an int entry needs n >= 1 scale and offset values";
    }
    if ((e->min == NULL) != (e->max == NULL)) {
        return "min and max are both given or both NULL";
    }
    if (e->axis < QSIM_ENCODING_NO_AXIS) {
        return "axis must be >= 0 or QSIM_ENCODING_NO_AXIS";
    }
    switch (e->layout) {
        case QSIM_ENCODING_PER_TENSOR:
            if (e->n != 1 || e->axis != QSIM_ENCODING_NO_AXIS) {
                return "a per-tensor entry has n == 1 and no axis";
            }
            break;
        case QSIM_ENCODING_PER_CHANNEL: break;
        case QSIM_ENCODING_PER_BLOCK:
            if (e->block_size < 1) {
                return "a per-block entry needs block_size >= 1";
            }
            break;
        default: return "layout is not a qsim_encoding_layout";
    }
    if (e->layout != QSIM_ENCODING_PER_BLOCK && (e->block_size != 0 || e->ndim != 0)) {
        return "only a per-block entry has block_size and a scale shape";
    }
    if (e->ndim > QSIM_ENCODING_MAX_DIMS || (e->ndim != 0) != (e->shape != NULL)) {
        return "the scale shape needs 1..QSIM_ENCODING_MAX_DIMS dims (ndim 0 with shape NULL: none)";
    }
    size_t count = 1;
    for (size_t d = 0; d < e->ndim; d++) {
        if (e->shape[d] < 1 || (uint64_t)e->shape[d] > SIZE_MAX / count) {
            return "the scale shape's dims must be >= 1";
        }
        count *= (size_t)e->shape[d];
    }
    if (e->ndim != 0 && count != e->n) {
        return "the scale shape's product must equal n";
    }
    return NULL;
}

/* Copies `bytes` from `src` (may be NULL) to *p, advancing *p; the copy's address, or NULL. */
int qsim_enc_bad_values(const qsim_encoding_entry * e, char * why, size_t cap) {
    char reason[160];
    for (size_t i = 0; i < e->n; i++) {
        const char * field = NULL;
        if (qsim_enc_bad_scale((double)e->scale[i], reason, sizeof(reason))) {
            field = "scale";
        } else if (e->min && qsim_enc_bad_bound((double)e->min[i], reason, sizeof(reason))) {
            field = "min";
        } else if (e->max && qsim_enc_bad_bound((double)e->max[i], reason, sizeof(reason))) {
            field = "max";
        } else if (qsim_enc_bad_offset((double)e->offset[i], e->bitwidth, reason, sizeof(reason))) {
            field = "offset";
        } else if (e->min && e->max && !(e->min[i] < e->max[i])) {
            snprintf(reason, sizeof(reason), "must be greater than min (%.9g), got %.9g",
                     (double)e->min[i], (double)e->max[i]);
            field = "max";
        }
        if (field != NULL) {
            snprintf(why, cap, "%s[%zu] %s", field, i, reason);
            return 1;
        }
    }
    return 0;
}

qsim_status qsim_encoding_check(const qsim_encoding_entry * e, qsim_error * err) {
    char why[QSIM_ERROR_MESSAGE_MAX / 2];
    const char * structure = e == NULL || e->name == NULL ? "NULL entry or name" : qsim_enc_bad_structure(e);
    if (structure == NULL && (e->kind == QSIM_ENCODING_FLOAT || !qsim_enc_bad_values(e, why, sizeof(why)))) {
        qsim_error_clear(err);
        return QSIM_SUCCESS;
    }
    qsim_error_set(err, QSIM_INVALID_ARGUMENT, "invalid encoding of %s '%.200s': %s",
                   e ? qsim_enc_role_name(e->role) : "entry", e && e->name ? e->name : "",
                   structure ? structure : why);
    return QSIM_INVALID_ARGUMENT;
}
