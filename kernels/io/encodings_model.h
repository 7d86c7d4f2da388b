/*
 * encodings_model.h (private to kernels/): the qsim_encodings model shared by encodings_model.c
 * (storage, lookup), encodings_check.c (the checks), encodings_read*.c (the reader) and
 * encodings_write.c (the writer): the supported versions, the value checks the reader and the
 * writer both apply, and a setter for the version a file was read from.
 */
#ifndef QSIM_ENCODINGS_MODEL_H
#define QSIM_ENCODINGS_MODEL_H

#include <stddef.h>

#include "io/json_util.h"
#include "qsim/encodings.h"

typedef enum qsim_enc_version {
    QSIM_ENC_V0_6_1 = 0,
    QSIM_ENC_V1_0_0 = 1,
    QSIM_ENC_V2_0_0 = 2,
} qsim_enc_version;

/* The index of `version` in qsim_encodings_versions(), or -1 when unsupported. */
int qsim_enc_version_index(const char * version);

/* "0.6.1, 1.0.0, 2.0.0", for messages. */
extern const char QSIM_ENC_VERSIONS_TEXT[];

/* "activation", "param" or "entry" (unknown role), for messages. */
const char * qsim_enc_role_name(qsim_encoding_role role);

/* Value checks, on the value as a double. Each returns 0 when `v` is valid, else 1 with the
 * reason in `why` ("must be > 0, got 0"); the caller names the field and where it is.
 *   scale: finite, representable as float32, > 0 once rounded to float32;
 *   bound (min, max): finite, representable as float32;
 *   offset: an integer in [-(2^bitwidth - 1), 0] (AIMET sign, unsigned grid). */
int qsim_enc_bad_scale(double v, char * why, size_t cap);
int qsim_enc_bad_bound(double v, char * why, size_t cap);
int qsim_enc_bad_offset(double v, int bitwidth, char * why, size_t cap);

/* Why the values of int entry `e` cannot be held (into why: "<field>[i] <reason>"), or 0: each
 * scale, min, max and offset passes the checks above and min < max where both are recorded.
 * The one value validation of an entry: the writer and qsim_encoding_check apply it, the reader
 * applies the same per-value checks where it reads each value. */
int qsim_enc_bad_values(const qsim_encoding_entry * e, char * why, size_t cap);

/* Why `e` breaks the structure of qsim_encoding_entry (besides its name), or NULL. */
const char * qsim_enc_bad_structure(const qsim_encoding_entry * e);

/* `v` rounded to float32; `v` must have passed the scale or bound check (doubles just above
 * FLT_MAX that round to it give FLT_MAX). */
float qsim_enc_to_float(double v);

/* Records the version a file was read from (copied). QSIM_OUT_OF_MEMORY on failure. */
qsim_status qsim_enc_set_version(qsim_encodings * enc, const char * version, qsim_error * err);

#endif /* QSIM_ENCODINGS_MODEL_H */
