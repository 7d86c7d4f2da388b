// Loading a quantsim config file and reading a parsed config (the public accessors of
// qsim/config.h); the parser itself is kernels/io/config.c.
#include <stdlib.h>
#include <string.h>

#include "io/config_read.h"

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
