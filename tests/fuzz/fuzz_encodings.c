/* libFuzzer target: the encodings reader and writer (qsim/encodings.h), every version. An input
 * either fails with a well-formed error (fuzz_check.h), or reads into a model that, written in
 * each version, reads back and writes again to the same bytes (read -> write -> read -> write);
 * a version that cannot hold the model refuses it with QSIM_INVALID_ARGUMENT and a message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "qsim/encodings.h"

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size);

static void round_trip(const qsim_encodings * enc, const char * version) {
    char * first = NULL;
    size_t first_len = 0;
    qsim_error err;
    qsim_status st = qsim_encodings_write(enc, version, &first, &first_len, &err);
    if (st != QSIM_SUCCESS) {
        FUZZ_REQUIRE(st == QSIM_INVALID_ARGUMENT && first == NULL, "the writer refuses cleanly");
        FUZZ_REQUIRE(err.status == st && err.message[0] != '\0', "the refusal says why");
        return;
    }
    qsim_encodings * again = NULL;
    st = qsim_encodings_parse(first, first_len, &again, &err);
    if (st != QSIM_SUCCESS) {
        fprintf(stderr, "%s file written does not read back: %s\n%s\n", version, err.message, first);
    }
    FUZZ_REQUIRE(st == QSIM_SUCCESS, "a written file reads back");
    FUZZ_REQUIRE(qsim_encodings_get(again)->n_entries <= qsim_encodings_get(enc)->n_entries,
                 "no entries appear");
    char * second = NULL;
    size_t second_len = 0;
    st = qsim_encodings_write(again, version, &second, &second_len, &err);
    FUZZ_REQUIRE(st == QSIM_SUCCESS, "what was read back writes again");
    FUZZ_REQUIRE(first_len == second_len && memcmp(first, second, first_len) == 0,
                 "read -> write -> read -> write gives the same bytes");
    free(second);
    qsim_encodings_free(again);
    free(first);
}

int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    qsim_encodings * enc = NULL;
    qsim_error err;
    qsim_status st = qsim_encodings_parse((const char *)data, size, &enc, &err);
    if (st != QSIM_SUCCESS) {
        FUZZ_REQUIRE(enc == NULL, "failure gives no model");
        fuzz_check_error(st, &err);
        return 0;
    }
    size_t n = 0;
    const char * const * versions = qsim_encodings_versions(&n);
    for (size_t i = 0; i < n; i++) {
        round_trip(enc, versions[i]);
    }
    qsim_encodings_free(enc);
    return 0;
}
