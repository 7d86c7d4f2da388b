/* Value boundaries in JSON text that qsim_json_syntax_error accepted (json_util.h): what lets the
 * encodings reader parse a large section one entry at a time instead of as one tree. */
#include "io/json_util.h"

/* cJSON's whitespace: every byte up to ' '. */
static size_t skip_ws(const char * t, size_t len, size_t i) {
    while (i < len && (unsigned char)t[i] <= 32) {
        i++;
    }
    return i;
}

/* Past the closing quote of the string whose opening quote is at i. */
static size_t string_end(const char * t, size_t len, size_t i) {
    for (i++; i < len && t[i] != '"'; i++) {
        i += t[i] == '\\'; /* the escaped byte cannot close the string */
    }
    return i < len ? i + 1 : len;
}

size_t qsim_json_value_end(const char * t, size_t len, size_t i) {
    if (i >= len) {
        return len;
    }
    if (t[i] == '"') {
        return string_end(t, len, i);
    }
    if (t[i] != '{' && t[i] != '[') { /* number, true, false, null */
        while (i < len && (unsigned char)t[i] > 32 && t[i] != ',' && t[i] != '}' && t[i] != ']') {
            i++;
        }
        return i;
    }
    size_t depth = 0;
    for (; i < len; i++) {
        if (t[i] == '"') {
            i = string_end(t, len, i) - 1;
        } else if (t[i] == '{' || t[i] == '[') {
            depth++;
        } else if ((t[i] == '}' || t[i] == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return len;
}

qsim_status qsim_json_children(const char * t, size_t len, size_t at, qsim_json_child_fn fn,
                               void * ctx) {
    const int object = t[at] == '{';
    size_t i = skip_ws(t, len, at + 1);
    for (size_t index = 0; i < len && t[i] != '}' && t[i] != ']'; index++) {
        qsim_json_span key = {i, i};
        if (object) {
            key.end = string_end(t, len, i);
            i = skip_ws(t, len, skip_ws(t, len, key.end) + 1); /* past the ':' */
        }
        const qsim_json_span value = {i, qsim_json_value_end(t, len, i)};
        const qsim_status st = fn(ctx, index, key, value);
        if (st != QSIM_SUCCESS) {
            return st;
        }
        i = skip_ws(t, len, value.end);
        i = i < len && t[i] == ',' ? skip_ws(t, len, i + 1) : i;
    }
    return QSIM_SUCCESS;
}
