/*
 * qsim/encodings.h: AIMET encodings files (versions 0.6.1, 1.0.0 and 2.0.0, docs/aimet.md §6),
 * read into, held in, and written from one in-memory model. Plain C: a runtime can load a file and
 * look encodings up by tensor name without Python.
 *
 * The model is a list of entries in insertion (file) order, one per tensor name (names are unique
 * across activations and params), plus the file's `excluded_layers`, `quantizer_args` and
 * `producer`. Numbers use AIMET's conventions in every version:
 *  - scale and min/max are float32 (the simulation's precision); files hold finite numbers only;
 *  - `offset` has AIMET's sign on the unsigned grid [0, 2^bitwidth - 1]: offset = -zero_point,
 *    an integer in [-(2^bitwidth - 1), 0] (docs/aimet.md §2.1). A signed 8-bit symmetric
 *    encoding has offset -128, a strict symmetric one (grid [-127, 127]) -127, as AIMET's
 *    libpymo writes it. 2.0.0 files store ONNX zero points on the grid of their output_dtype;
 *    the reader and writer convert (signed intN: offset = -zero_point - 2^(N-1); the writer
 *    gives a symmetric entry whose offsets are all -(2^(N-1) - 1) zero point 0).
 *
 * What each version can say, and what the reader and writer do about the rest:
 *   0.6.1  {"version", "activation_encodings": {name: [channel, ...]}, "param_encodings": {...},
 *          "excluded_layers", "quantizer_args"}; a channel is {"bitwidth", "dtype": "int",
 *          "is_symmetric": "True"|"False", "max", "min", "offset", "scale"} (a float entry is one
 *          {"bitwidth", "dtype": "float"}). More than one channel means per-channel. No axis, no
 *          blocks. Read: is_signed = is_symmetric. Written: min/max as recorded, or derived from
 *          scale and offset (min = scale * offset, max = scale * (offset + 2^bitwidth - 1)).
 *   1.0.0  {"version", "activation_encodings": [entry, ...], "param_encodings": [...],
 *          "excluded_layers", "quantizer_args"}; entry {"name", "dtype": "INT"|"FLOAT",
 *          "enc_type": "PER_TENSOR"|"PER_CHANNEL"|"PER_BLOCK", "bw", "is_sym", "scale": [...],
 *          "offset": [...], "block_size" (PER_BLOCK)}. No min/max, no axis. Read: is_signed =
 *          is_sym. LPBQ and VECTOR entries are rejected as unsupported.
 *   2.0.0  {"version", "encodings": [entry, ...]}; entry {"name", "output_dtype": "int8"|"uint8"|
 *          ..., "y_scale", "y_zero_point" (omitted when all zero), "axis", "block_size"}:
 *          y_scale is a number (per-tensor), a flat list with "axis" (per-channel) or the nested
 *          scale tensor with "axis" and "block_size" (blockwise). Activations and params share
 *          one list, so entries read from 2.0.0 have role QSIM_ENCODING_ROLE_UNKNOWN; there is no
 *          symmetric flag, so it reads as "signed and every zero point is 0". Float (fp16/bf16)
 *          entries are not written (as AIMET: 2.0.0 does not treat them as quantized); LPBQ and
 *          float output dtypes are rejected on reading. excluded_layers and quantizer_args are
 *          written when set (AIMET writes neither in 2.0.0) and read when present.
 * Every version may also carry "producer": {"package", "version"}; it is kept and written when set.
 *
 * The reader checks the version first ("0.6.1", "1.0.0" or "2.0.0"; others fail naming these),
 * then every key (unknown keys fail, with the nearest known one as a suggestion), type, integer,
 * length (scale and offset alike; per-channel lists agree on bitwidth, dtype and symmetry;
 * nested y_scale rectangular) and value (scale > 0, offsets on the grid). Errors are
 * QSIM_PARSE_ERROR with the JSON path and line:column (qsim/json_error.h); a duplicated member
 * key keeps its last value (as Python's json), a tensor name listed twice is an error.
 *
 * The writer is deterministic: keys in a fixed order per version (the order in the layouts above,
 * "producer" right after "version"), entries in model order, one entry per line, floats as the
 * first of "%.6g" .. "%.9g" that reads back to the same float32 (0.1f is "0.1"), integers exact. It refuses NaN, Inf,
 * non-positive scales and off-grid offsets naming the entry (cJSON would print NaN as null), and
 * entries the version cannot express (per-block in 0.6.1, unknown role in 0.6.1/1.0.0, missing
 * axis or scale shape in 2.0.0). Reading a written file and writing it again in the same version
 * gives the same bytes.
 */
#ifndef QSIM_ENCODINGS_H
#define QSIM_ENCODINGS_H

#include <stddef.h>
#include <stdint.h>

#include "qsim/json_error.h"
#include "qsim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which section of a 0.6.1 / 1.0.0 file an entry belongs to. */
typedef enum qsim_encoding_role {
    QSIM_ENCODING_ACTIVATION   = 0,
    QSIM_ENCODING_PARAM        = 1,
    QSIM_ENCODING_ROLE_UNKNOWN = 2, /* read from 2.0.0, which lists both together */
} qsim_encoding_role;

typedef enum qsim_encoding_kind {
    QSIM_ENCODING_INT   = 0, /* affine integer grid */
    QSIM_ENCODING_FLOAT = 1, /* float cast (fp16/bf16/...): only the bitwidth is recorded */
} qsim_encoding_kind;

typedef enum qsim_encoding_layout {
    QSIM_ENCODING_PER_TENSOR  = 0, /* n == 1 */
    QSIM_ENCODING_PER_CHANNEL = 1, /* one value per channel along `axis` */
    QSIM_ENCODING_PER_BLOCK   = 2, /* one value per block of `block_size` along `axis` */
} qsim_encoding_layout;

#define QSIM_ENCODING_NO_AXIS  (-1) /* the file does not record the axis (0.6.1, 1.0.0) */
#define QSIM_ENCODING_MAX_DIMS 8

/* One tensor's encoding. As returned by the model, every pointer is owned by the model; as passed
 * to qsim_encodings_add, everything is copied and stays the caller's. */
typedef struct qsim_encoding_entry {
    const char *         name;         /* ONNX tensor or parameter name, non-empty, unique */
    qsim_encoding_role   role;
    qsim_encoding_kind   kind;
    int                  bitwidth;     /* int: 1..32; float: 2..32 */
    /* The rest describes INT entries; a FLOAT entry has n == 0, NULL arrays, PER_TENSOR, axis
     * QSIM_ENCODING_NO_AXIS, block_size 0, ndim 0 and both flags 0. */
    int                  is_symmetric; /* AIMET's is_symmetric / is_sym */
    int                  is_signed;    /* grid stored as intN (1) or uintN (0): 2.0.0's
                                          output_dtype; 0.6.1 and 1.0.0 imply is_symmetric */
    qsim_encoding_layout layout;
    size_t               n;            /* values in scale, offset, min, max (>= 1) */
    const float *        scale;        /* n finite values > 0 */
    const int64_t *      offset;       /* n values in [-(2^bitwidth - 1), 0] (AIMET sign) */
    const float *        min;          /* n values, or NULL together with max: not recorded */
    const float *        max;
    int                  axis;         /* channel axis (PER_CHANNEL) or block axis (PER_BLOCK);
                                          QSIM_ENCODING_NO_AXIS when not recorded or PER_TENSOR */
    int64_t              block_size;   /* >= 1 for PER_BLOCK, else 0 */
    size_t               ndim;         /* PER_BLOCK: dims of the scale tensor, row-major, whose
                                          product is n (2.0.0 writes y_scale nested so); 0 when
                                          not recorded, and always 0 for other layouts */
    const int64_t *      shape;        /* ndim values >= 1, NULL when ndim == 0 */
} qsim_encoding_entry;

/* The global settings AIMET records (its extract_global_quantizer_args); all six are required. */
typedef struct qsim_quantizer_args {
    int                activation_bitwidth;
    int                param_bitwidth;
    qsim_encoding_kind dtype;                    /* "int" or "float" */
    int                is_symmetric;
    int                per_channel_quantization;
    const char *       quant_scheme;             /* e.g. "post_training_tf_enhanced" */
} qsim_quantizer_args;

/* Everything in a model. Owned by the model; valid until the next call that changes it
 * (add, set) or qsim_encodings_free. */
typedef struct qsim_encodings_view {
    const char *                version;          /* of the file read; NULL if built in memory */
    const char *                producer_package; /* NULL when there is no producer */
    const char *                producer_version;
    const qsim_encoding_entry * entries;          /* n_entries, insertion (file) order */
    size_t                      n_entries;
    const char * const *        excluded_layers;  /* n_excluded_layers names, in order */
    size_t                      n_excluded_layers;
    const qsim_quantizer_args * quantizer_args;   /* NULL when absent */
} qsim_encodings_view;

typedef struct qsim_encodings qsim_encodings; /* opaque */

/* The supported versions, oldest first ("0.6.1", "1.0.0", "2.0.0"); *n gets the count. Static. */
const char * const * qsim_encodings_versions(size_t * n);

/* A new, empty model the caller frees with qsim_encodings_free; NULL when out of memory. */
qsim_encodings * qsim_encodings_create(void);

/* Frees the model and everything its view points to. NULL is a no-op. */
void qsim_encodings_free(qsim_encodings * enc);

/* Checks `entry` as qsim_encodings_add checks its structure and as the writer and the reader
 * check its values (scale finite, > 0 and float32; min and max finite and min < max; offsets
 * integers on the grid), without a model: QSIM_SUCCESS, or QSIM_INVALID_ARGUMENT with a message
 * naming the entry, the field and the channel ("invalid encoding of param 'w': scale[3] must be
 * > 0, got 0"). `err` may be NULL. */
qsim_status qsim_encoding_check(const qsim_encoding_entry * entry, qsim_error * err);

/* Appends a copy of `entry`. Fails with QSIM_INVALID_ARGUMENT (message naming the entry) when the
 * entry breaks the structure documented on qsim_encoding_entry (an empty or duplicated name, a
 * bitwidth out of range, lengths or shape that disagree with the layout, one of min/max NULL);
 * the values themselves are checked by the writer. QSIM_OUT_OF_MEMORY when out of memory. On
 * failure the model is unchanged. `err` may be NULL. */
qsim_status qsim_encodings_add(qsim_encodings * enc, const qsim_encoding_entry * entry,
                               qsim_error * err);

/* Appends a copy of `name` (the caller keeps it) to excluded_layers (any string; order kept,
 * repeats allowed). QSIM_INVALID_ARGUMENT for a NULL argument, QSIM_OUT_OF_MEMORY when out of
 * memory; `err` may be NULL. */
qsim_status qsim_encodings_add_excluded_layer(qsim_encodings * enc, const char * name,
                                              qsim_error * err);

/* Sets (copies) quantizer_args, or removes them when `args` is NULL. QSIM_INVALID_ARGUMENT when
 * quant_scheme is NULL or a bitwidth is outside 1..32. */
qsim_status qsim_encodings_set_quantizer_args(qsim_encodings * enc, const qsim_quantizer_args * args,
                                              qsim_error * err);

/* Sets (copies) the producer, or removes it when both are NULL (one NULL alone is invalid). */
qsim_status qsim_encodings_set_producer(qsim_encodings * enc, const char * package,
                                        const char * version, qsim_error * err);

/* The model's content; owned by `enc` (see qsim_encodings_view). */
const qsim_encodings_view * qsim_encodings_get(const qsim_encodings * enc);

/* The entry named `name` (exact match) in *out, owned by `enc` and valid until it changes:
 * QSIM_SUCCESS, or QSIM_NOT_FOUND with *out NULL. QSIM_INVALID_ARGUMENT for NULL arguments. */
qsim_status qsim_encodings_lookup(const qsim_encodings * enc, const char * name,
                                  const qsim_encoding_entry ** out);

/* Parses `len` bytes of JSON at `text` (need not be NUL-terminated; the caller keeps it). On
 * success *out is a new model the caller frees with qsim_encodings_free; on failure *out is NULL,
 * `err` (may be NULL) is filled and the status is QSIM_PARSE_ERROR, QSIM_OUT_OF_MEMORY or
 * QSIM_INVALID_ARGUMENT (text or out NULL). */
qsim_status qsim_encodings_parse(const char * text, size_t len, qsim_encodings ** out,
                                 qsim_error * err);

/* qsim_encodings_parse of the file at `path`. Also QSIM_IO_ERROR; messages start with "<path>: ". */
qsim_status qsim_encodings_load(const char * path, qsim_encodings ** out, qsim_error * err);

/* Writes the model as an encodings file of `version` ("0.6.1", "1.0.0" or "2.0.0") into a new
 * NUL-terminated buffer *out_text (the caller frees it with free()); *out_len (if not NULL) gets
 * its length. On failure *out_text is NULL and the status is QSIM_INVALID_ARGUMENT (unsupported
 * version; a value or entry the file cannot hold, the message naming the entry, the field and the
 * index) or QSIM_OUT_OF_MEMORY. */
qsim_status qsim_encodings_write(const qsim_encodings * enc, const char * version, char ** out_text,
                                 size_t * out_len, qsim_error * err);

/* qsim_encodings_write into the file at `path`, atomically: the text goes to a new temporary file
 * in the same directory, is flushed to disk (fsync) and renamed over `path`. On any failure the
 * temporary is removed and `path` is left as it was (absent, or its old content); the status is
 * that of qsim_encodings_write, or QSIM_IO_ERROR with a message naming the file and the reason. */
qsim_status qsim_encodings_save(const qsim_encodings * enc, const char * path, const char * version,
                                qsim_error * err);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_ENCODINGS_H */
