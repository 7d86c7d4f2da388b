/*
 * fuzz_check.h: what the fuzz targets check beyond crashes (tests/fuzz/README.md). A failed check
 * aborts, which libFuzzer reports as a finding with the input that caused it.
 */
#ifndef QSIM_FUZZ_CHECK_H
#define QSIM_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qsim/json_error.h"

#define FUZZ_REQUIRE(cond, what)                                                       \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", what, __FILE__, __LINE__); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* A failed read: the error says the same status, its strings are terminated within their
 * buffers, the message is not empty, a located error has line and column from 1. */
static inline void fuzz_check_error(qsim_status st, const qsim_error * err) {
    FUZZ_REQUIRE(st != QSIM_SUCCESS, "failure status");
    FUZZ_REQUIRE(err->status == st, "error status equals the returned status");
    FUZZ_REQUIRE(memchr(err->message, '\0', sizeof(err->message)) != NULL, "message terminated");
    FUZZ_REQUIRE(memchr(err->path, '\0', sizeof(err->path)) != NULL, "path terminated");
    FUZZ_REQUIRE(err->message[0] != '\0', "message not empty");
    FUZZ_REQUIRE(err->path[0] == '\0' || err->path[0] == '$', "path starts at $");
    FUZZ_REQUIRE((err->line == 0) == (err->column == 0), "line and column together");
    FUZZ_REQUIRE(err->line >= 0 && err->column >= 0, "line and column from 1");
    FUZZ_REQUIRE(st != QSIM_PARSE_ERROR || err->line >= 1, "parse errors are located");
    FUZZ_REQUIRE(err->path[0] == '\0' || strstr(err->message, " at $") != NULL,
                 "the message names the path");
}

#endif /* QSIM_FUZZ_CHECK_H */
