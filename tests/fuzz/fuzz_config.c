/* libFuzzer target: the quantsim config parser (qsim/config.h). Any input either parses into a
 * view whose pointers and counts are usable, or fails with a well-formed error (fuzz_check.h). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_check.h"
#include "qsim/config.h"

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size);

static void check_view(const qsim_config_view * v) {
    FUZZ_REQUIRE(v->defaults.hw_version != NULL, "hw_version defaults to a string");
    for (size_t i = 0; i < v->n_op_types; i++) {
        FUZZ_REQUIRE(v->op_types[i].name != NULL, "op type named");
        FUZZ_REQUIRE(v->op_types[i].n_params == 0 || v->op_types[i].params != NULL, "params");
    }
    for (size_t i = 0; i < v->n_supergroups; i++) {
        FUZZ_REQUIRE(v->supergroups[i].n_ops >= 2, "supergroups have 2 ops or more");
        for (size_t k = 0; k < v->supergroups[i].n_ops; k++) {
            FUZZ_REQUIRE(v->supergroups[i].ops[k] != NULL, "supergroup op named");
        }
    }
    for (size_t i = 0; i < v->n_params; i++) {
        FUZZ_REQUIRE(v->params[i].name != NULL, "param named");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    qsim_config * cfg = NULL;
    qsim_error err;
    qsim_status st = qsim_config_parse((const char *)data, size, &cfg, &err);
    if (st == QSIM_SUCCESS) {
        FUZZ_REQUIRE(cfg != NULL && err.status == QSIM_SUCCESS, "success gives a config");
        check_view(qsim_config_get(cfg));
        for (size_t i = 0; i < qsim_config_get(cfg)->n_op_types; i++) {
            const char * name = qsim_config_get(cfg)->op_types[i].name;
            FUZZ_REQUIRE(qsim_config_find_op_type(cfg, name) != NULL, "op types found by name");
        }
    } else {
        FUZZ_REQUIRE(cfg == NULL, "failure gives no config");
        fuzz_check_error(st, &err);
    }
    qsim_config_free(cfg);
    return 0;
}
