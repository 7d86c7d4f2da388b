/*
 * json_text.h (private to kernels/): a growing, NUL-terminated text buffer and the pieces of JSON
 * the writers put into it. Running out of memory sets `oom` and makes every later call a no-op,
 * so a writer checks once at the end. Ownership: `s` is malloc'ed; the caller frees it.
 */
#ifndef QSIM_JSON_TEXT_H
#define QSIM_JSON_TEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct qsim_text {
    char * s;
    size_t len, cap;
    int    oom;
} qsim_text;

void qsim_text_put_n(qsim_text * t, const char * s, size_t n);
void qsim_text_put(qsim_text * t, const char * s);
void qsim_text_int(qsim_text * t, long long v);
/* The shortest of "%.6g" .. "%.9g" that reads back to v, '.' as decimal point in any locale. */
void qsim_text_float(qsim_text * t, float v);
/* A JSON string: '"' and '\' escaped, control characters as \u00XX, other bytes as they are. */
void qsim_text_string(qsim_text * t, const char * s);
/* `"key": ` preceded by ", " unless it is the first member of its object (*first). */
void qsim_text_key(qsim_text * t, int * first, const char * k);
/* A top-level member key: on its own line, indented by 4. */
void qsim_text_top_key(qsim_text * t, int * first, const char * k);
void qsim_text_floats(qsim_text * t, const float * v, size_t n);
/* A list of offsets, or of ONNX zero points *zp_shift - offset when zp_shift is not NULL. */
void qsim_text_ints(qsim_text * t, const int64_t * offset, size_t n, const int64_t * zp_shift);

/* A whole member: key then a raw JSON value, an integer, true/false, or a string. */
void qsim_text_member(qsim_text * t, int * first, const char * k, const char * raw);
void qsim_text_member_int(qsim_text * t, int * first, const char * k, long long v);
void qsim_text_member_bool(qsim_text * t, int * first, const char * k, int v);
void qsim_text_member_string(qsim_text * t, int * first, const char * k, const char * s);

#endif /* QSIM_JSON_TEXT_H */
