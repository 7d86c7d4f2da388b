/* Error reporting for the JSON readers: messages, JSON paths and line:column (json_util.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "io/json_util.h"

int qsim_json_format(char * dst, size_t cap, const char * fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    return n;
}

void qsim_error_clear(qsim_error * err) {
    if (err == NULL) {
        return;
    }
    memset(err, 0, sizeof(*err));
    err->status = QSIM_SUCCESS;
}

void qsim_json_line_column(const char * text, size_t len, size_t offset, int * line, int * column) {
    int l = 1;
    int c = 1;
    if (offset > len) {
        offset = len;
    }
    for (size_t i = 0; i < offset; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) { /* not a UTF-8 continuation byte */
            c++;
        }
    }
    *line = l;
    *column = c;
}

void qsim_error_set(qsim_error * err, qsim_status status, const char * fmt, ...) {
    if (err == NULL) {
        return;
    }
    qsim_error_clear(err);
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

void qsim_error_prefix(qsim_error * err, const char * prefix) {
    if (err == NULL || err->status == QSIM_SUCCESS) {
        return;
    }
    char old[QSIM_ERROR_MESSAGE_MAX];
    memcpy(old, err->message, sizeof(old));
    qsim_json_format(err->message, sizeof(err->message), "%s: %s", prefix, old);
}

void qsim_json_walk_init(qsim_json_walk * w, const char * text, size_t len, qsim_error * err) {
    w->text = text;
    w->len = len;
    w->err = err;
    w->depth = 0;
}

qsim_status qsim_json_push(qsim_json_walk * w, const char * key, size_t index) {
    if (w->depth == QSIM_JSON_MAX_DEPTH) {
        return qsim_json_fail(w, QSIM_JSON_AT_VALUE, NULL, "nesting deeper than %d levels",
                              QSIM_JSON_MAX_DEPTH);
    }
    w->frames[w->depth].key = key;
    w->frames[w->depth].index = index;
    w->depth++;
    return QSIM_SUCCESS;
}

void qsim_json_pop(qsim_json_walk * w) {
    if (w->depth > 0) {
        w->depth--;
    }
}

/* --- JSON path text ------------------------------------------------------------------------- */

typedef struct path_buf {
    char * s;
    size_t cap, len;
    int    truncated;
} path_buf;

static void path_put(path_buf * b, const char * piece) {
    size_t n = strlen(piece);
    if (b->truncated || b->len + n >= b->cap) {
        b->truncated = 1;
        return;
    }
    memcpy(b->s + b->len, piece, n + 1);
    b->len += n;
}

static int is_identifier(const char * key) {
    if (!((key[0] >= 'A' && key[0] <= 'Z') || (key[0] >= 'a' && key[0] <= 'z') || key[0] == '_')) {
        return 0;
    }
    for (const char * p = key; *p; p++) {
        char ch = *p;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_')) {
            return 0;
        }
    }
    return 1;
}

/* ["key"], escaping '"' and '\' */
static void path_put_quoted(path_buf * b, const char * key) {
    char one[3] = {0, 0, 0};
    path_put(b, "[\"");
    for (const char * p = key; *p; p++) {
        one[0] = (*p == '"' || *p == '\\') ? '\\' : *p;
        one[1] = (*p == '"' || *p == '\\') ? *p : '\0';
        path_put(b, one);
    }
    path_put(b, "\"]");
}

static void format_path(const qsim_json_walk * w, size_t depth, char * out, size_t cap) {
    path_buf b = {out, cap - 4, 0, 0}; /* room for "..." */
    out[0] = '\0';
    path_put(&b, "$");
    for (size_t i = 0; i < depth; i++) {
        const qsim_json_frame * f = &w->frames[i];
        char piece[32];
        if (f->key == NULL) {
            snprintf(piece, sizeof(piece), "[%zu]", f->index);
            path_put(&b, piece);
        } else if (is_identifier(f->key)) {
            path_put(&b, ".");
            path_put(&b, f->key);
        } else {
            path_put_quoted(&b, f->key);
        }
    }
    if (b.truncated) {
        memcpy(out + b.len, "...", 4);
    }
}

/* --- locating a frame in the text (the text is valid JSON: cJSON accepted it) ---------------- */

static size_t skip_ws(const char * t, size_t n, size_t p) {
    while (p < n && (unsigned char)t[p] <= 32) { /* cJSON's notion of whitespace */
        p++;
    }
    return p;
}

static size_t skip_string(const char * t, size_t n, size_t p) {
    for (p++; p < n && t[p] != '"'; p++) {
        if (t[p] == '\\') {
            p++;
        }
    }
    return p < n ? p + 1 : n;
}

static size_t skip_value(const char * t, size_t n, size_t p) {
    if (p < n && t[p] == '"') {
        return skip_string(t, n, p);
    }
    if (p < n && (t[p] == '{' || t[p] == '[')) {
        int depth = 0;
        while (p < n) {
            if (t[p] == '"') {
                p = skip_string(t, n, p);
                continue;
            }
            depth += (t[p] == '{' || t[p] == '[') - (t[p] == '}' || t[p] == ']');
            p++;
            if (depth == 0) {
                return p;
            }
        }
        return n;
    }
    while (p < n && (unsigned char)t[p] > 32 && t[p] != ',' && t[p] != ']' && t[p] != '}') {
        p++;
    }
    return p;
}

/* Skips "key" : and the whitespace around. */
static size_t skip_key(const char * t, size_t n, size_t p) {
    p = skip_ws(t, n, skip_string(t, n, p));
    return skip_ws(t, n, p < n ? p + 1 : n);
}

/* Byte offset of the value (or key) the first `depth` frames lead to. */
static size_t locate(const qsim_json_walk * w, size_t depth, int at_key) {
    const char * t = w->text;
    size_t n = w->len;
    size_t p = (n >= 3 && memcmp(t, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
    p = skip_ws(t, n, p);
    for (size_t i = 0; i < depth && p < n; i++) {
        int object = t[p] == '{';
        p = skip_ws(t, n, p + 1);
        for (size_t k = 0; k < w->frames[i].index && p < n; k++) {
            if (object) {
                p = skip_key(t, n, p);
            }
            p = skip_ws(t, n, skip_value(t, n, p));
            p = skip_ws(t, n, p < n ? p + 1 : n); /* the ',' */
        }
        if (object && !(at_key && i + 1 == depth)) {
            p = skip_key(t, n, p);
        }
    }
    return p;
}

qsim_status qsim_json_fail(const qsim_json_walk * w, qsim_json_at at, const char * tail,
                           const char * fmt, ...) {
    qsim_error * err = w->err;
    if (err == NULL) {
        return QSIM_PARSE_ERROR;
    }
    int at_key = at == QSIM_JSON_AT_KEY && w->depth > 0;
    qsim_error_clear(err);
    err->status = QSIM_PARSE_ERROR;
    format_path(w, at_key ? w->depth - 1 : w->depth, err->path, sizeof(err->path));
    qsim_json_line_column(w->text, w->len, locate(w, w->depth, at_key), &err->line, &err->column);
    char what[QSIM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    qsim_json_format(err->message, sizeof(err->message), "%s at %s (line %d, column %d)%s", what,
                err->path, err->line, err->column, tail ? tail : "");
    return QSIM_PARSE_ERROR;
}

int qsim_json_key_index(const char * name, const char * const * keys, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, keys[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

qsim_status qsim_json_wrong_type(const qsim_json_walk * w, const cJSON * v, const char * expected) {
    char tail[QSIM_ERROR_MESSAGE_MAX / 2];
    if (cJSON_IsString(v)) {
        qsim_json_format(tail, sizeof(tail), ": expected %s, got the string \"%.40s%s\"", expected,
                         v->valuestring, strlen(v->valuestring) > 40 ? "..." : "");
    } else if (cJSON_IsNumber(v)) {
        qsim_json_format(tail, sizeof(tail), ": expected %s, got the number %.17g", expected,
                         v->valuedouble);
    } else {
        qsim_json_format(tail, sizeof(tail), ": expected %s, got %s %s", expected,
                         cJSON_IsArray(v) || cJSON_IsObject(v) ? "an" : "a", qsim_json_type_name(v));
    }
    return qsim_json_fail(w, QSIM_JSON_AT_VALUE, tail, "wrong type");
}

qsim_status qsim_json_unknown_key(const qsim_json_walk * w, const char * name,
                                  const char * const * keys, size_t n) {
    char tail[QSIM_ERROR_MESSAGE_MAX / 2];
    const char * near = qsim_json_nearest(name, keys, n);
    size_t len = near ? (size_t)qsim_json_format(tail, sizeof(tail), "; did you mean '%s'?", near)
                      : (size_t)qsim_json_format(tail, sizeof(tail), "; expected one of:");
    for (size_t i = 0; near == NULL && i < n && len < sizeof(tail); i++) {
        len += (size_t)qsim_json_format(tail + len, sizeof(tail) - len, "%s %s", i ? "," : "",
                                        keys[i]);
    }
    /* a long name is cut so that the location and the suggestion stay in the message */
    return qsim_json_fail(w, QSIM_JSON_AT_KEY, tail, "unknown key '%.80s%s'", name,
                          strlen(name) > 80 ? "..." : "");
}
