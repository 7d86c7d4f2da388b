/* The quantsim config reader: the six sections of the schema (qsim/config.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config_read.h"

/* Each schema's keys: a named enum, and the names bound to it by designated initializers (a
 * reader switches on the enum, never on a position in a list). */
/* The six required sections first, then the optional supergroup_pass_list (AIMET 2.42). */
enum section_key { SEC_DEFAULTS, SEC_PARAMS, SEC_OP_TYPE, SEC_SUPERGROUPS, SEC_MODEL_INPUT,
                   SEC_MODEL_OUTPUT, SEC_PASS_LIST, SEC_COUNT };
#define SEC_REQUIRED SEC_PASS_LIST
static const char * const SECTION_KEYS[SEC_COUNT] = {
    [SEC_DEFAULTS] = "defaults",       [SEC_PARAMS] = "params",
    [SEC_OP_TYPE] = "op_type",         [SEC_SUPERGROUPS] = "supergroups",
    [SEC_MODEL_INPUT] = "model_input", [SEC_MODEL_OUTPUT] = "model_output",
    [SEC_PASS_LIST] = "supergroup_pass_list"};

enum defaults_key { DEF_OPS, DEF_PARAMS, DEF_STRICT_SYMMETRIC, DEF_UNSIGNED_SYMMETRIC,
                    DEF_PER_CHANNEL, DEF_SUPPORTED_KERNELS, DEF_HW_VERSION, DEF_COUNT };
static const char * const DEFAULTS_KEYS[DEF_COUNT] = {
    [DEF_OPS] = "ops",
    [DEF_PARAMS] = "params",
    [DEF_STRICT_SYMMETRIC] = "strict_symmetric",
    [DEF_UNSIGNED_SYMMETRIC] = "unsigned_symmetric",
    [DEF_PER_CHANNEL] = "per_channel_quantization",
    [DEF_SUPPORTED_KERNELS] = "supported_kernels",
    [DEF_HW_VERSION] = "hw_version"};
#define DEF_REQUIRED 2 /* ops and params, the first two */

enum ops_key { OPS_INPUT, OPS_OUTPUT, OPS_SYMMETRIC, OPS_COUNT };
static const char * const OPS_KEYS[OPS_COUNT] = {[OPS_INPUT] = "is_input_quantized",
                                                 [OPS_OUTPUT] = "is_output_quantized",
                                                 [OPS_SYMMETRIC] = "is_symmetric"};

enum param_key { PAR_QUANTIZED, PAR_SYMMETRIC, PAR_BLOCK_SIZE, PAR_DECOMPRESSED_BW, PAR_COUNT };
static const char * const PARAM_KEYS[PAR_COUNT] = {[PAR_QUANTIZED] = "is_quantized",
                                                   [PAR_SYMMETRIC] = "is_symmetric",
                                                   [PAR_BLOCK_SIZE] = "block_size",
                                                   [PAR_DECOMPRESSED_BW] = "decompressed_bw"};

enum op_type_key { OT_INPUT, OT_OUTPUT, OT_SYMMETRIC, OT_PER_CHANNEL, OT_PARAMS,
                   OT_SUPPORTED_KERNELS, OT_ENCODING_CONSTRAINTS, OT_COUNT };
static const char * const OP_TYPE_KEYS[OT_COUNT] = {
    [OT_INPUT] = "is_input_quantized",
    [OT_OUTPUT] = "is_output_quantized",
    [OT_SYMMETRIC] = "is_symmetric",
    [OT_PER_CHANNEL] = "per_channel_quantization",
    [OT_PARAMS] = "params",
    [OT_SUPPORTED_KERNELS] = "supported_kernels",
    [OT_ENCODING_CONSTRAINTS] = "encoding_constraints"};

static const char * const SUPERGROUP_KEYS[] = {"op_list"};
static const char * const MODEL_INPUT_KEYS[] = {"is_input_quantized"};
static const char * const MODEL_OUTPUT_KEYS[] = {"is_output_quantized"};

enum constraint_key { CON_MIN, CON_MAX, CON_COUNT };
static const char * const CONSTRAINT_KEYS[CON_COUNT] = {[CON_MIN] = "min", [CON_MAX] = "max"};

/* --- param settings (defaults.params, params.<name>, op_type.<type>.params.<name>) ---------- */

static qsim_status read_int(qsim_config_parser * p, const cJSON * v, int lo, int hi, int * out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi) {
        char expected[64];
        snprintf(expected, sizeof expected, "an integer from %d to %d", lo, hi);
        return qsim_wrong_type(p, v, expected);
    }
    *out = (int)v->valuedouble;
    return QSIM_SUCCESS;
}

static qsim_status param_field(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    qsim_config_param * q = ctx;
    switch ((enum param_key)key) {
        case PAR_QUANTIZED: return qsim_read_bool(p, v, &q->is_quantized);
        case PAR_SYMMETRIC: return qsim_read_bool(p, v, &q->is_symmetric);
        case PAR_BLOCK_SIZE: return read_int(p, v, 1, 1 << 30, &q->block_size);
        case PAR_DECOMPRESSED_BW: return read_int(p, v, 2, 16, &q->decompressed_bw);
        case PAR_COUNT: break;
    }
    return QSIM_INVALID_ARGUMENT; /* unreachable: qsim_read_members passes listed keys only */
}

/* One param settings object into `q` (absent keys: unset). */
static qsim_status read_param_settings(qsim_config_parser * p, const cJSON * v, qsim_config_param * q) {
    q->is_quantized = q->is_symmetric = QSIM_OPT_UNSET;
    q->block_size = q->decompressed_bw = 0;
    QSIM_TRY(qsim_read_members(p, v, PARAM_KEYS, PAR_COUNT, param_field, q));
    if (q->decompressed_bw != 0 && q->block_size == 0) {
        return qsim_json_fail(&p->w, QSIM_JSON_AT_VALUE, NULL,
                              "decompressed_bw (LPBQ) needs block_size in the same entry");
    }
    return QSIM_SUCCESS;
}

/* --- defaults -------------------------------------------------------------------------------- */

static int flag(qsim_opt_bool b) {
    return b == QSIM_OPT_TRUE;
}

static qsim_status read_flag(qsim_config_parser * p, const cJSON * v, int * out) {
    qsim_opt_bool b = QSIM_OPT_UNSET;
    QSIM_TRY(qsim_read_bool(p, v, &b));
    *out = flag(b);
    return QSIM_SUCCESS;
}

static qsim_status defaults_member(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    qsim_config_defaults * d = ctx;
    qsim_opt_bool ops[OPS_COUNT];
    qsim_config_param par;
    switch ((enum defaults_key)key) {
        case DEF_OPS:
            QSIM_TRY(qsim_read_bools(p, v, OPS_KEYS, OPS_COUNT, ops));
            d->ops_is_input_quantized = flag(ops[OPS_INPUT]);
            d->ops_is_output_quantized = flag(ops[OPS_OUTPUT]);
            d->ops_is_symmetric = flag(ops[OPS_SYMMETRIC]);
            return QSIM_SUCCESS;
        case DEF_PARAMS:
            QSIM_TRY(read_param_settings(p, v, &par));
            d->params_is_quantized = flag(par.is_quantized);
            d->params_is_symmetric = flag(par.is_symmetric);
            d->params_block_size = par.block_size;
            d->params_decompressed_bw = par.decompressed_bw;
            return QSIM_SUCCESS;
        case DEF_STRICT_SYMMETRIC: return read_flag(p, v, &d->strict_symmetric);
        case DEF_UNSIGNED_SYMMETRIC: return read_flag(p, v, &d->unsigned_symmetric);
        case DEF_PER_CHANNEL: return read_flag(p, v, &d->per_channel_quantization);
        case DEF_SUPPORTED_KERNELS:
            return qsim_read_kernels(p, v, 1, &d->supported_kernels, &d->n_supported_kernels);
        case DEF_HW_VERSION: return qsim_read_string(p, v, &d->hw_version);
        case DEF_COUNT: break;
    }
    return QSIM_INVALID_ARGUMENT; /* unreachable: qsim_read_members passes listed keys only */
}

static qsim_status read_defaults(qsim_config_parser * p, const cJSON * v, qsim_config_defaults * d) {
    QSIM_TRY(qsim_read_members(p, v, DEFAULTS_KEYS, QSIM_COUNT(DEFAULTS_KEYS), defaults_member, d));
    return qsim_require_keys(p, v, DEFAULTS_KEYS, DEF_REQUIRED);
}

/* --- params (top level and inside an op type) ----------------------------------------------- */

typedef struct param_list {
    qsim_config_param * items;
    size_t              n;
} param_list;

static qsim_status param_member(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    (void)key;
    param_list * l = ctx;
    qsim_config_param * q = &l->items[l->n];
    QSIM_TRY(read_param_settings(p, v, q));
    q->name = qsim_config_strdup(p, v->string);
    l->n++;
    return q->name ? QSIM_SUCCESS : QSIM_OUT_OF_MEMORY;
}

static qsim_status read_params(qsim_config_parser * p, const cJSON * v, const qsim_config_param ** out,
                               size_t * n_out) {
    param_list l = {NULL, 0};
    if (cJSON_IsObject(v)) {
        l.items = qsim_config_alloc(p, (size_t)cJSON_GetArraySize(v), sizeof(*l.items));
        if (l.items == NULL) {
            return QSIM_OUT_OF_MEMORY;
        }
    }
    QSIM_TRY(qsim_read_members(p, v, NULL, 0, param_member, &l));
    *out = l.items;
    *n_out = l.n;
    return QSIM_SUCCESS;
}

/* --- op_type ---------------------------------------------------------------------------------- */

/* ctx: double[CON_COUNT]; members other than min and max are ignored (as by AIMET). */
static qsim_status constraint_member(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    (void)key;
    int which = qsim_json_key_index(v->string, CONSTRAINT_KEYS, CON_COUNT);
    if (which < 0) {
        return QSIM_SUCCESS;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        return qsim_wrong_type(p, v, "a finite number");
    }
    ((double *)ctx)[which] = v->valuedouble;
    return QSIM_SUCCESS;
}

static qsim_status read_constraints(qsim_config_parser * p, const cJSON * v, qsim_config_op_type * o) {
    double range[CON_COUNT] = {0.0, HUGE_VAL};
    QSIM_TRY(qsim_read_members(p, v, NULL, 0, constraint_member, range));
    QSIM_TRY(qsim_require_keys(p, v, CONSTRAINT_KEYS, 1)); /* min; max is optional */
    o->has_encoding_max = qsim_json_get(v, "max", NULL) != NULL;
    if (o->has_encoding_max && !(range[CON_MIN] < range[CON_MAX])) {
        return qsim_json_fail(&p->w, QSIM_JSON_AT_VALUE, ": min must be less than max",
                              "empty encoding range [%.17g, %.17g]", range[CON_MIN], range[CON_MAX]);
    }
    o->has_encoding_constraints = 1;
    o->encoding_min = range[CON_MIN];
    o->encoding_max = range[CON_MAX];
    return QSIM_SUCCESS;
}

static qsim_status op_type_field(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    qsim_config_op_type * o = ctx;
    switch ((enum op_type_key)key) {
        case OT_INPUT: return qsim_read_bool(p, v, &o->is_input_quantized);
        case OT_OUTPUT: return qsim_read_bool(p, v, &o->is_output_quantized);
        case OT_SYMMETRIC: return qsim_read_bool(p, v, &o->is_symmetric);
        case OT_PER_CHANNEL: return qsim_read_bool(p, v, &o->per_channel_quantization);
        case OT_PARAMS: return read_params(p, v, &o->params, &o->n_params);
        case OT_SUPPORTED_KERNELS:
            return qsim_read_kernels(p, v, 0, &o->supported_kernels, &o->n_supported_kernels);
        case OT_ENCODING_CONSTRAINTS: return read_constraints(p, v, o);
        case OT_COUNT: break;
    }
    return QSIM_INVALID_ARGUMENT; /* unreachable: qsim_read_members passes listed keys only */
}

typedef struct op_type_list {
    qsim_config_op_type * items;
    size_t                n;
} op_type_list;

static qsim_status op_type_member(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    (void)key;
    op_type_list * l = ctx;
    qsim_config_op_type * o = &l->items[l->n];
    o->is_input_quantized = o->is_output_quantized = QSIM_OPT_UNSET;
    o->is_symmetric = o->per_channel_quantization = QSIM_OPT_UNSET;
    QSIM_TRY(qsim_read_members(p, v, OP_TYPE_KEYS, OT_COUNT, op_type_field, o));
    o->name = qsim_config_strdup(p, v->string);
    l->n++;
    return o->name ? QSIM_SUCCESS : QSIM_OUT_OF_MEMORY;
}

static qsim_status read_op_types(qsim_config_parser * p, const cJSON * v, qsim_config_view * view) {
    op_type_list l = {NULL, 0};
    if (cJSON_IsObject(v)) {
        l.items = qsim_config_alloc(p, (size_t)cJSON_GetArraySize(v), sizeof(*l.items));
        if (l.items == NULL) {
            return QSIM_OUT_OF_MEMORY;
        }
    }
    QSIM_TRY(qsim_read_members(p, v, NULL, 0, op_type_member, &l));
    view->op_types = l.items;
    view->n_op_types = l.n;
    return QSIM_SUCCESS;
}

/* --- supergroups ---------------------------------------------------------------------------- */

/* The strings of array `v` (op types, pass names) into a parser-owned array: *out, *n_out are set
 * only on success. `what` names an element in the error for one that is not a string. */
static qsim_status read_strings(qsim_config_parser * p, const cJSON * v, const char * what,
                                const char * const ** out, size_t * n_out) {
    size_t n = (size_t)cJSON_GetArraySize(v);
    const char ** items = qsim_config_alloc(p, n, sizeof(*items));
    if (items == NULL) {
        return QSIM_OUT_OF_MEMORY;
    }
    size_t i = 0;
    for (const cJSON * item = v->child; item != NULL; item = item->next, i++) {
        QSIM_TRY(qsim_json_push(&p->w, NULL, i));
        QSIM_TRY(cJSON_IsString(item) ? qsim_read_string(p, item, &items[i])
                                      : qsim_wrong_type(p, item, what));
        qsim_json_pop(&p->w);
    }
    *out = items;
    *n_out = n;
    return QSIM_SUCCESS;
}

static qsim_status op_list_member(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    (void)key;
    qsim_config_supergroup * g = ctx;
    if (!cJSON_IsArray(v)) {
        return qsim_wrong_type(p, v, "an array of op types");
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n < 2) {
        return qsim_json_fail(&p->w, QSIM_JSON_AT_VALUE, ": a supergroup needs at least 2 ops",
                              n == 0 ? "empty op_list" : "op_list with a single op");
    }
    return read_strings(p, v, "an op type (a string)", &g->ops, &g->n_ops);
}

static qsim_status read_supergroups(qsim_config_parser * p, const cJSON * v, qsim_config_view * view) {
    if (!cJSON_IsArray(v)) {
        return qsim_wrong_type(p, v, "an array");
    }
    size_t n = (size_t)cJSON_GetArraySize(v);
    qsim_config_supergroup * groups = qsim_config_alloc(p, n, sizeof(*groups));
    if (groups == NULL) {
        return QSIM_OUT_OF_MEMORY;
    }
    size_t i = 0;
    for (const cJSON * item = v->child; item != NULL; item = item->next, i++) {
        QSIM_TRY(qsim_json_push(&p->w, NULL, i));
        QSIM_TRY(qsim_read_members(p, item, SUPERGROUP_KEYS, QSIM_COUNT(SUPERGROUP_KEYS),
                                   op_list_member, &groups[i]));
        QSIM_TRY(qsim_require_keys(p, item, SUPERGROUP_KEYS, QSIM_COUNT(SUPERGROUP_KEYS)));
        qsim_json_pop(&p->w);
    }
    view->supergroups = groups;
    view->n_supergroups = n;
    return QSIM_SUCCESS;
}

/* supergroup_pass_list: an array of strings (may be empty). */
static qsim_status read_pass_list(qsim_config_parser * p, const cJSON * v, qsim_config_view * view) {
    if (!cJSON_IsArray(v)) {
        return qsim_wrong_type(p, v, "an array of pass names");
    }
    return read_strings(p, v, "a pass name (a string)", &view->supergroup_pass_list,
                        &view->n_supergroup_pass_list);
}

/* --- the document ---------------------------------------------------------------------------- */

static qsim_status section_member(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    qsim_config_view * view = ctx;
    switch ((enum section_key)key) {
        case SEC_DEFAULTS: return read_defaults(p, v, &view->defaults);
        case SEC_PARAMS: return read_params(p, v, &view->params, &view->n_params);
        case SEC_OP_TYPE: return read_op_types(p, v, view);
        case SEC_SUPERGROUPS: return read_supergroups(p, v, view);
        case SEC_MODEL_INPUT:
            return qsim_read_bools(p, v, MODEL_INPUT_KEYS, QSIM_COUNT(MODEL_INPUT_KEYS),
                                   &view->model_input_is_input_quantized);
        case SEC_MODEL_OUTPUT:
            return qsim_read_bools(p, v, MODEL_OUTPUT_KEYS, QSIM_COUNT(MODEL_OUTPUT_KEYS),
                                   &view->model_output_is_output_quantized);
        case SEC_PASS_LIST: return read_pass_list(p, v, view);
        case SEC_COUNT: break;
    }
    return QSIM_INVALID_ARGUMENT; /* unreachable: qsim_read_members passes listed keys only */
}

qsim_status qsim_config_parse(const char * json, size_t len, qsim_config ** out, qsim_error * err) {
    qsim_error_clear(err);
    if (out != NULL) {
        *out = NULL;
    }
    if (json == NULL || out == NULL) {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT, "qsim_config_parse: NULL json or out");
        return QSIM_INVALID_ARGUMENT;
    }
    cJSON * root = NULL;
    QSIM_TRY(qsim_json_parse(json, len, &root, err));
    qsim_config * cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        cJSON_Delete(root);
        qsim_error_set(err, QSIM_OUT_OF_MEMORY, "out of memory reading the quantsim config");
        return QSIM_OUT_OF_MEMORY;
    }
    cfg->view.model_input_is_input_quantized = QSIM_OPT_UNSET;
    cfg->view.model_output_is_output_quantized = QSIM_OPT_UNSET;
    qsim_config_parser p;
    qsim_json_walk_init(&p.w, json, len, err);
    p.cfg = cfg;
    qsim_status st = qsim_read_members(&p, root, SECTION_KEYS, SEC_COUNT, section_member, &cfg->view);
    if (st == QSIM_SUCCESS) {
        st = qsim_require_keys(&p, root, SECTION_KEYS, SEC_REQUIRED);
    }
    cJSON_Delete(root);
    if (st != QSIM_SUCCESS) {
        qsim_config_free(cfg);
        return st;
    }
    if (cfg->view.defaults.hw_version == NULL) {
        cfg->view.defaults.hw_version = "default";
    }
    *out = cfg;
    return QSIM_SUCCESS;
}
