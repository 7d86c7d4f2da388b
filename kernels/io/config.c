/* The quantsim config reader: the six sections of the schema (qsim/config.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/config_read.h"

/* The six required sections first, then the optional ones. */
static const char * const SECTION_KEYS[] = {"defaults",    "params",      "op_type",
                                            "supergroups", "model_input", "model_output",
                                            "supergroup_pass_list"};
#define SECTIONS_REQUIRED 6
static const char * const DEFAULTS_KEYS[] = {"ops", "params", "strict_symmetric",
                                             "unsigned_symmetric", "per_channel_quantization",
                                             "supported_kernels", "hw_version"};
static const char * const OPS_KEYS[] = {"is_input_quantized", "is_output_quantized", "is_symmetric"};
static const char * const PARAM_KEYS[] = {"is_quantized", "is_symmetric"};
static const char * const OP_TYPE_KEYS[] = {"is_input_quantized", "is_output_quantized",
                                            "is_symmetric", "per_channel_quantization", "params",
                                            "supported_kernels", "encoding_constraints"};
static const char * const SUPERGROUP_KEYS[] = {"op_list"};
static const char * const MODEL_INPUT_KEYS[] = {"is_input_quantized"};
static const char * const MODEL_OUTPUT_KEYS[] = {"is_output_quantized"};
static const char * const CONSTRAINT_KEYS[] = {"min", "max"};

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
    qsim_opt_bool b[QSIM_COUNT(OPS_KEYS)];
    switch (key) { /* index in DEFAULTS_KEYS */
        case 0:
            QSIM_TRY(qsim_read_bools(p, v, OPS_KEYS, QSIM_COUNT(OPS_KEYS), b));
            d->ops_is_input_quantized = flag(b[0]);
            d->ops_is_output_quantized = flag(b[1]);
            d->ops_is_symmetric = flag(b[2]);
            return QSIM_SUCCESS;
        case 1:
            QSIM_TRY(qsim_read_bools(p, v, PARAM_KEYS, QSIM_COUNT(PARAM_KEYS), b));
            d->params_is_quantized = flag(b[0]);
            d->params_is_symmetric = flag(b[1]);
            return QSIM_SUCCESS;
        case 2: return read_flag(p, v, &d->strict_symmetric);
        case 3: return read_flag(p, v, &d->unsigned_symmetric);
        case 4: return read_flag(p, v, &d->per_channel_quantization);
        case 5: return qsim_read_kernels(p, v, 1, &d->supported_kernels, &d->n_supported_kernels);
        default: return qsim_read_string(p, v, &d->hw_version);
    }
}

static qsim_status read_defaults(qsim_config_parser * p, const cJSON * v, qsim_config_defaults * d) {
    QSIM_TRY(qsim_read_members(p, v, DEFAULTS_KEYS, QSIM_COUNT(DEFAULTS_KEYS), defaults_member, d));
    return qsim_require_keys(p, v, DEFAULTS_KEYS, 2); /* ops, params */
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
    qsim_opt_bool b[QSIM_COUNT(PARAM_KEYS)];
    QSIM_TRY(qsim_read_bools(p, v, PARAM_KEYS, QSIM_COUNT(PARAM_KEYS), b));
    q->name = qsim_config_strdup(p, v->string);
    q->is_quantized = b[0];
    q->is_symmetric = b[1];
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

/* ctx: double[2] = {min, max}; members other than min and max are ignored (as by AIMET). */
static qsim_status constraint_member(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    (void)key;
    int which = strcmp(v->string, "min") == 0 ? 0 : strcmp(v->string, "max") == 0 ? 1 : -1;
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
    double range[2] = {0.0, INFINITY};
    QSIM_TRY(qsim_read_members(p, v, NULL, 0, constraint_member, range));
    QSIM_TRY(qsim_require_keys(p, v, CONSTRAINT_KEYS, 1)); /* min; max is optional */
    o->has_encoding_max = qsim_json_get(v, "max", NULL) != NULL;
    if (o->has_encoding_max && !(range[0] < range[1])) {
        return qsim_json_fail(&p->w, QSIM_JSON_AT_VALUE, ": min must be less than max",
                              "empty encoding range [%.17g, %.17g]", range[0], range[1]);
    }
    o->has_encoding_constraints = 1;
    o->encoding_min = range[0];
    o->encoding_max = range[1];
    return QSIM_SUCCESS;
}

static qsim_status op_type_field(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    qsim_config_op_type * o = ctx;
    switch (key) { /* index in OP_TYPE_KEYS */
        case 0: return qsim_read_bool(p, v, &o->is_input_quantized);
        case 1: return qsim_read_bool(p, v, &o->is_output_quantized);
        case 2: return qsim_read_bool(p, v, &o->is_symmetric);
        case 3: return qsim_read_bool(p, v, &o->per_channel_quantization);
        case 4: return read_params(p, v, &o->params, &o->n_params);
        case 5: return qsim_read_kernels(p, v, 0, &o->supported_kernels, &o->n_supported_kernels);
        default: return read_constraints(p, v, o);
    }
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
    QSIM_TRY(qsim_read_members(p, v, OP_TYPE_KEYS, QSIM_COUNT(OP_TYPE_KEYS), op_type_field, o));
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
    const char ** ops = qsim_config_alloc(p, n, sizeof(*ops));
    if (ops == NULL) {
        return QSIM_OUT_OF_MEMORY;
    }
    size_t i = 0;
    for (const cJSON * item = v->child; item != NULL; item = item->next, i++) {
        QSIM_TRY(qsim_json_push(&p->w, NULL, i));
        QSIM_TRY(cJSON_IsString(item) ? qsim_read_string(p, item, &ops[i])
                                      : qsim_wrong_type(p, item, "an op type (a string)"));
        qsim_json_pop(&p->w);
    }
    g->ops = ops;
    g->n_ops = n;
    return QSIM_SUCCESS;
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
    size_t n = (size_t)cJSON_GetArraySize(v);
    const char ** names = qsim_config_alloc(p, n, sizeof(*names));
    if (names == NULL) {
        return QSIM_OUT_OF_MEMORY;
    }
    size_t i = 0;
    for (const cJSON * item = v->child; item != NULL; item = item->next, i++) {
        QSIM_TRY(qsim_json_push(&p->w, NULL, i));
        QSIM_TRY(cJSON_IsString(item) ? qsim_read_string(p, item, &names[i])
                                      : qsim_wrong_type(p, item, "a pass name (a string)"));
        qsim_json_pop(&p->w);
    }
    view->supergroup_pass_list = names;
    view->n_supergroup_pass_list = n;
    return QSIM_SUCCESS;
}

/* --- the document ---------------------------------------------------------------------------- */

static qsim_status section_member(qsim_config_parser * p, int key, const cJSON * v, void * ctx) {
    qsim_config_view * view = ctx;
    switch (key) { /* index in SECTION_KEYS */
        case 0: return read_defaults(p, v, &view->defaults);
        case 1: return read_params(p, v, &view->params, &view->n_params);
        case 2: return read_op_types(p, v, view);
        case 3: return read_supergroups(p, v, view);
        case 4:
            return qsim_read_bools(p, v, MODEL_INPUT_KEYS, QSIM_COUNT(MODEL_INPUT_KEYS),
                                   &view->model_input_is_input_quantized);
        case 5:
            return qsim_read_bools(p, v, MODEL_OUTPUT_KEYS, QSIM_COUNT(MODEL_OUTPUT_KEYS),
                                   &view->model_output_is_output_quantized);
        default: return read_pass_list(p, v, view);
    }
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
    qsim_status st = qsim_read_members(&p, root, SECTION_KEYS, QSIM_COUNT(SECTION_KEYS),
                                       section_member, &cfg->view);
    if (st == QSIM_SUCCESS) {
        st = qsim_require_keys(&p, root, SECTION_KEYS, SECTIONS_REQUIRED);
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

qsim_status qsim_config_load(const char * path, qsim_config ** out, qsim_error * err) {
    if (out != NULL) {
        *out = NULL;
    }
    if (path == NULL || out == NULL) {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT, "qsim_config_load: NULL path or out");
        return QSIM_INVALID_ARGUMENT;
    }
    char * text = NULL;
    size_t len = 0;
    qsim_status st = qsim_json_read_file(path, &text, &len, err);
    if (st == QSIM_SUCCESS) {
        st = qsim_config_parse(text, len, out, err);
        qsim_error_prefix(err, path);
    }
    free(text);
    return st;
}

void qsim_config_free(qsim_config * cfg) {
    if (cfg != NULL) {
        qsim_config_blocks_free(cfg->blocks);
        free(cfg);
    }
}

const qsim_config_view * qsim_config_get(const qsim_config * cfg) {
    return &cfg->view;
}

const qsim_config_op_type * qsim_config_find_op_type(const qsim_config * cfg, const char * name) {
    for (size_t i = 0; i < cfg->view.n_op_types; i++) {
        if (strcmp(cfg->view.op_types[i].name, name) == 0) {
            return &cfg->view.op_types[i];
        }
    }
    return NULL;
}
