/*
 * qsim/config.h: AIMET quantsim config files, parsed and validated (docs/aimet.md §1).
 *
 * A config has six required sections (later ones override earlier ones when applied, 1.6):
 *
 *   defaults      ops {is_input_quantized, is_output_quantized, is_symmetric}   (ops required)
 *                 params {is_quantized, is_symmetric, block_size, decompressed_bw} (required)
 *                 strict_symmetric, unsigned_symmetric, per_channel_quantization,
 *                 supported_kernels [{activation, param}], hw_version "V75"
 *   params        {<param name>: {is_quantized, is_symmetric, block_size, decompressed_bw}}
 *   op_type       {<op type>: {is_input_quantized, is_output_quantized, is_symmetric,
 *                  per_channel_quantization, params {<name>: {...}},
 *                  supported_kernels [{activation, param?}], encoding_constraints {min, max?}}}
 *   supergroups   [{op_list: [<op type>, <op type>, ...]}]
 *   supergroup_pass_list [<pass name>, ...]   (optional; aimet-torch reads and ignores it: it
 *                 names graph passes of aimet-onnx such as "LayerNormalization", "MatmulAdd")
 *   model_input   {is_input_quantized}
 *   model_output  {is_output_quantized}
 *
 * A kernel precision is {"bitwidth": n, "dtype": "int" | "float"}, or a narrow float format by name:
 * {"dtype": <format>} with an optional "bitwidth" that must equal the format's element bits
 * (qsim_config_format_names(): "fp8_e4m3" 8, "fp8_e5m2" 8, "fp8_e4m3fnuz" 8, "fp8_e5m2fnuz" 8,
 * "fp6_e3m2" 6, "fp6_e2m3" 6, "fp4_e2m1" 4, "mxfp8_e4m3" 8, "mxfp8_e5m2" 8, "mxfp6_e3m2" 6,
 * "mxfp6_e2m3" 6, "mxfp4" 4, "mxint8" 8, "nvfp4" 4; docs/formats.md). Accepted input:
 *  - booleans: JSON true/false or AIMET's strings "True"/"False";
 *  - a duplicated key: the last value counts (as Python's json.load);
 *  - bitwidths: int 4, 8 or 16, float 16 or 32 (AIMET's schema allows 4, 8, 16, 32; torchqsim's
 *    integer grid goes to 16 bits, and float kernels are fp16 or fp32);
 *  - op_list: at least two op types; supported_kernels: at least one kernel;
 *  - encoding_constraints: a finite min, and optionally a finite max > min (AIMET's schema
 *    requires min only; a missing max is calibrated, 1.6); other members are ignored, as by AIMET;
 *  - block_size (an integer >= 1) and decompressed_bw (an integer 2..16), torchqsim's extension
 *    of a params entry (AIMET sets them by API, set_grouped_blockwise_quantization_for_weights):
 *    blockwise weights with blocks of block_size input channels, LPBQ when decompressed_bw is set;
 *  - op type and param names are free-form (AIMET only logs unknown op types); every other key
 *    must be one listed above.
 * Anything else fails with QSIM_PARSE_ERROR and a qsim_error (qsim/json_error.h) naming the JSON
 * path and line:column: syntax errors, unknown keys (with the nearest known key as a suggestion),
 * wrong types, unsupported bitwidths or dtypes, short op_list, empty supported_kernels, missing
 * required sections or keys.
 *
 * The JSON itself is read by cJSON, a little laxer than RFC 8259 (it reads 01 and 1.) and stricter
 * than Python's json (no NaN or Infinity).
 *
 * AIMET's semantic restrictions (e.g. is_input_quantized in defaults.ops raises
 * NotImplementedError there) are not enforced here: they concern how a config is applied.
 */
#ifndef QSIM_CONFIG_H
#define QSIM_CONFIG_H

#include <stddef.h>

#include "qsim/json_error.h"
#include "qsim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A boolean that may be absent (absent: the setting is inherited from a less specific section). */
typedef enum qsim_opt_bool {
    QSIM_OPT_UNSET = -1,
    QSIM_OPT_FALSE = 0,
    QSIM_OPT_TRUE  = 1,
} qsim_opt_bool;

typedef enum qsim_config_dtype {
    QSIM_DTYPE_INT    = 0,
    QSIM_DTYPE_FLOAT  = 1,
    QSIM_DTYPE_FORMAT = 2, /* a named narrow float format (`format`) */
} qsim_config_dtype;

/* One side of a supported kernel. bitwidth 0: absent (only an op_type kernel's param may be).
 * format: the format name for QSIM_DTYPE_FORMAT (a static string of qsim_config_format_names(),
 * not owned), else NULL. */
typedef struct qsim_config_precision {
    int               bitwidth;
    qsim_config_dtype dtype;
    const char *      format;
} qsim_config_precision;

/* The format names a precision's "dtype" may hold, comma-separated ("fp8_e4m3, fp8_e5m2, ...");
 * a static string. */
const char * qsim_config_format_names(void);

typedef struct qsim_config_kernel {
    qsim_config_precision activation;
    qsim_config_precision param;
} qsim_config_kernel;

/* Settings of a parameter by name ("weight", "bias", ...). */
typedef struct qsim_config_param {
    const char *  name;
    qsim_opt_bool is_quantized;
    qsim_opt_bool is_symmetric;
    int           block_size;      /* >= 1: blockwise weights; 0: unset */
    int           decompressed_bw; /* 2..16: LPBQ (with block_size); 0: unset */
} qsim_config_param;

/* One op_type entry; `name` is the ONNX (or backend) op type as written in the file. */
typedef struct qsim_config_op_type {
    const char *               name;
    qsim_opt_bool              is_input_quantized;
    qsim_opt_bool              is_output_quantized;
    qsim_opt_bool              is_symmetric;
    qsim_opt_bool              per_channel_quantization;
    const qsim_config_param *  params;             /* n_params entries, file order */
    size_t                     n_params;
    const qsim_config_kernel * supported_kernels;  /* n_supported_kernels entries (0: absent) */
    size_t                     n_supported_kernels;
    int                        has_encoding_constraints; /* 1: the output's min is fixed to */
    double                     encoding_min;             /* encoding_min and, when */
    int                        has_encoding_max;         /* has_encoding_max, its max to */
    double                     encoding_max;             /* encoding_max */
} qsim_config_op_type;

typedef struct qsim_config_supergroup {
    const char * const * ops; /* n_ops >= 2 op types, in order */
    size_t               n_ops;
} qsim_config_supergroup;

/* The defaults section, resolved: an absent key holds the value AIMET acts on when it is absent
 * (every quantizer starts disabled and asymmetric, 1.6), i.e. 0 for every flag and "default" for
 * hw_version. */
typedef struct qsim_config_defaults {
    int                        ops_is_input_quantized;
    int                        ops_is_output_quantized;
    int                        ops_is_symmetric;
    int                        params_is_quantized;
    int                        params_is_symmetric;
    int                        params_block_size;      /* 0: unset (qsim_config_param) */
    int                        params_decompressed_bw; /* 0: unset */
    int                        strict_symmetric;
    int                        unsigned_symmetric;
    int                        per_channel_quantization;
    const qsim_config_kernel * supported_kernels; /* n_supported_kernels entries (0: absent) */
    size_t                     n_supported_kernels;
    const char *               hw_version;
} qsim_config_defaults;

/* A parsed config. Every pointer in it (and in what it points to) is owned by the qsim_config it
 * came from and lives until qsim_config_free. Entries keep file order; a duplicated key appears
 * once, at its first place, with its last value. */
typedef struct qsim_config_view {
    qsim_config_defaults           defaults;
    const qsim_config_param *      params;
    size_t                         n_params;
    const qsim_config_op_type *    op_types;
    size_t                         n_op_types;
    const qsim_config_supergroup * supergroups;
    size_t                         n_supergroups;
    const char * const *           supergroup_pass_list; /* names in file order (0: absent/empty) */
    size_t                         n_supergroup_pass_list;
    qsim_opt_bool                  model_input_is_input_quantized;
    qsim_opt_bool                  model_output_is_output_quantized;
} qsim_config_view;

typedef struct qsim_config qsim_config; /* opaque */

/* Parses `len` bytes of JSON at `json` (need not be NUL-terminated; the caller keeps ownership).
 * On success *out is a new config the caller frees with qsim_config_free. On failure *out is NULL,
 * `err` (may be NULL) is filled and the status is QSIM_PARSE_ERROR, QSIM_OUT_OF_MEMORY or
 * QSIM_INVALID_ARGUMENT (json or out NULL). */
qsim_status qsim_config_parse(const char * json, size_t len, qsim_config ** out, qsim_error * err);

/* qsim_config_parse of the file at `path`. Also QSIM_IO_ERROR; error messages start with
 * "<path>: ". */
qsim_status qsim_config_load(const char * path, qsim_config ** out, qsim_error * err);

/* Frees a config and everything its view points to. NULL is a no-op. */
void qsim_config_free(qsim_config * cfg);

/* The parsed content; owned by `cfg`, valid until qsim_config_free(cfg). */
const qsim_config_view * qsim_config_get(const qsim_config * cfg);

/* The op_type entry named `name` (exact, case-sensitive match), or NULL. */
const qsim_config_op_type * qsim_config_find_op_type(const qsim_config * cfg, const char * name);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_CONFIG_H */
