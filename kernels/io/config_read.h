/*
 * config_read.h (private to kernels/): the pieces config.c builds the quantsim config reader from:
 * the parser state (a json_util.h walk plus the config being filled), memory owned by the config,
 * and readers of the value kinds the schema uses. Every reader expects the walk to stand on the
 * value it reads and reports errors there.
 */
#ifndef QSIM_CONFIG_READ_H
#define QSIM_CONFIG_READ_H

#include "io/json_util.h"
#include "qsim/config.h"

#define QSIM_TRY(expr)                            \
    do {                                          \
        const qsim_status qsim_try_ = (expr);     \
        if (qsim_try_ != QSIM_SUCCESS) {          \
            return qsim_try_;                     \
        }                                         \
    } while (0)

#define QSIM_COUNT(array) (sizeof(array) / sizeof((array)[0]))

typedef struct qsim_config_block qsim_config_block; /* one allocation owned by the config */

struct qsim_config {
    qsim_config_view    view;
    qsim_config_block * blocks;
};

typedef struct qsim_config_parser {
    qsim_json_walk w;
    qsim_config *  cfg;
} qsim_config_parser;

/* Zeroed memory for `count` items of `size` bytes, freed with the config; NULL (and
 * QSIM_OUT_OF_MEMORY in the error) when out of memory. */
void * qsim_config_alloc(qsim_config_parser * p, size_t count, size_t size);
/* Frees a chain of allocations. */
void qsim_config_blocks_free(qsim_config_block * b);
/* A copy of `s` owned by the config, or NULL when out of memory. */
const char * qsim_config_strdup(qsim_config_parser * p, const char * s);

/* Called for each member of an object: `key` is the index of its name in the reader's key list
 * (-1 for free-form names; the name is value->string), the walk stands on the member. */
typedef qsim_status (*qsim_member_fn)(qsim_config_parser * p, int key, const cJSON * value,
                                      void * ctx);

/* Checks `obj` is an object and visits its members (a duplicated key once, with its last value).
 * With `keys` (n_keys names) a member whose name is not listed fails as an unknown key, with the
 * nearest listed name as a suggestion; with keys NULL any name is visited. */
qsim_status qsim_read_members(qsim_config_parser * p, const cJSON * obj, const char * const * keys,
                              size_t n_keys, qsim_member_fn fn, void * ctx);

/* Fails on the first of `keys` that `obj` lacks ("missing required key"). */
qsim_status qsim_require_keys(qsim_config_parser * p, const cJSON * obj, const char * const * keys,
                              size_t n_keys);

/* "wrong type ...: expected <expected>, got <what v is>". */
qsim_status qsim_wrong_type(qsim_config_parser * p, const cJSON * v, const char * expected);

/* true/false or "True"/"False". */
qsim_status qsim_read_bool(qsim_config_parser * p, const cJSON * v, qsim_opt_bool * out);

/* An object whose members are all booleans named by `keys`; out[i] gets keys[i] (QSIM_OPT_UNSET
 * when absent). */
qsim_status qsim_read_bools(qsim_config_parser * p, const cJSON * v, const char * const * keys,
                            size_t n_keys, qsim_opt_bool * out);

/* A string, copied into the config. */
qsim_status qsim_read_string(qsim_config_parser * p, const cJSON * v, const char ** out);

/* A supported_kernels array (at least one kernel); `param_required`: defaults' kernels need both
 * sides, op_type kernels only the activation. */
qsim_status qsim_read_kernels(qsim_config_parser * p, const cJSON * v, int param_required,
                              const qsim_config_kernel ** out, size_t * n_out);

#endif /* QSIM_CONFIG_READ_H */
