/*
 * qsim/json_error.h: the error the JSON readers (quantsim config, encodings) fill.
 *
 * A reader that fails returns a negative qsim_status and, when the caller passed a qsim_error,
 * writes into it: the same status, a one-line message meant for the user, the JSON path of the
 * offending element and its line:column in the input. The message already contains the path and
 * the location, e.g.
 *
 *   unknown key 'is_output_quantised' at $.defaults.ops (line 3, column 9);
 *   did you mean 'is_output_quantized'?
 *
 * (one line). Paths start at "$" and name members as ".key" (or ["key"] when the key is not an
 * identifier) and array elements as "[index]". Lines and columns count from 1; a column counts
 * characters (UTF-8 code points; a tab is one) from the start of its line.
 *
 * The struct is plain data the caller owns (typically on the stack); nothing in it is allocated.
 */
#ifndef QSIM_JSON_ERROR_H
#define QSIM_JSON_ERROR_H

#include <stddef.h>

#include "qsim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QSIM_ERROR_MESSAGE_MAX 512
#define QSIM_ERROR_PATH_MAX    256

typedef struct qsim_error {
    qsim_status status;                          /* QSIM_SUCCESS when nothing failed */
    char        message[QSIM_ERROR_MESSAGE_MAX]; /* NUL-terminated, truncated if longer */
    char        path[QSIM_ERROR_PATH_MAX];       /* "" when no element is at fault (syntax,
                                                    I/O, memory); truncated with "..." */
    int         line;                            /* 0 when there is no location (I/O, memory) */
    int         column;
} qsim_error;

/* Resets `err` to "no error": QSIM_SUCCESS, empty strings, line and column 0. NULL is a no-op. */
void qsim_error_clear(qsim_error * err);

/* Line and column (both from 1) of byte `offset` in `text` (`len` bytes; offsets past the end
 * count as the end). Lines end at '\n'; the column counts UTF-8 code points. */
void qsim_json_line_column(const char * text, size_t len, size_t offset, int * line, int * column);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_JSON_ERROR_H */
