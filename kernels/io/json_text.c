/* A growing text buffer for writing JSON (json_text.h). */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_text.h"

void qsim_text_put_n(qsim_text * t, const char * s, size_t n) {
    if (t->oom) {
        return;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1) {
            cap *= 2;
        }
        char * grown = realloc(t->s, cap);
        if (grown == NULL) {
            t->oom = 1;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

void qsim_text_put(qsim_text * t, const char * s) {
    qsim_text_put_n(t, s, strlen(s));
}

void qsim_text_int(qsim_text * t, long long v) {
    char buf[24];
    qsim_text_put_n(t, buf, (size_t)snprintf(buf, sizeof(buf), "%lld", v));
}

/* The first of "%.6g" .. "%.9g" that reads back (strtof) to the same float ("%.9g" always does),
 * with '.' as the decimal point whatever the locale. %g drops trailing zeros, so a float that is
 * the nearest to a decimal of 6 or fewer digits prints as that decimal (0.1f as "0.1"). */
void qsim_text_float(qsim_text * t, float v) {
    char buf[32];
    for (int p = 6; p <= 9; p++) {
        snprintf(buf, sizeof(buf), "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) {
            break;
        }
    }
    const char point = localeconv()->decimal_point[0];
    char * at = point != '.' ? strchr(buf, point) : NULL;
    if (at != NULL) {
        *at = '.';
    }
    qsim_text_put(t, buf);
}

/* A JSON string: '"' and '\' escaped, control characters as \u00XX, other bytes as they are. */
void qsim_text_string(qsim_text * t, const char * s) {
    qsim_text_put(t, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            qsim_text_put_n(t, esc, 2);
        } else if (c < 0x20) {
            qsim_text_put_n(t, esc, (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c));
        } else {
            qsim_text_put_n(t, s, 1);
        }
    }
    qsim_text_put(t, "\"");
}

/* `"key": ` preceded by ", " unless it is the first member of its object (*first). */
void qsim_text_key(qsim_text * t, int * first, const char * k) {
    qsim_text_put(t, *first ? "\"" : ", \"");
    qsim_text_put(t, k);
    qsim_text_put(t, "\": ");
    *first = 0;
}

/* A top-level member: on its own line, indented by 4. */
void qsim_text_top_key(qsim_text * t, int * first, const char * k) {
    qsim_text_put(t, *first ? "\n    \"" : ",\n    \"");
    qsim_text_put(t, k);
    qsim_text_put(t, "\": ");
    *first = 0;
}

void qsim_text_floats(qsim_text * t, const float * v, size_t n) {
    qsim_text_put(t, "[");
    for (size_t i = 0; i < n; i++) {
        qsim_text_put(t, i ? ", " : "");
        qsim_text_float(t, v[i]);
    }
    qsim_text_put(t, "]");
}

/* A list of offsets, or of ONNX zero points *zp_shift - offset when zp_shift is not NULL. */
void qsim_text_ints(qsim_text * t, const int64_t * offset, size_t n, const int64_t * zp_shift) {
    qsim_text_put(t, "[");
    for (size_t i = 0; i < n; i++) {
        qsim_text_put(t, i ? ", " : "");
        qsim_text_int(t, (long long)(zp_shift ? *zp_shift - offset[i] : offset[i]));
    }
    qsim_text_put(t, "]");
}

/* `"key": <raw>` as a member (after qsim_text_key). */
void qsim_text_member(qsim_text * t, int * first, const char * k, const char * raw) {
    qsim_text_key(t, first, k);
    qsim_text_put(t, raw);
}

void qsim_text_member_int(qsim_text * t, int * first, const char * k, long long v) {
    qsim_text_key(t, first, k);
    qsim_text_int(t, v);
}

void qsim_text_member_bool(qsim_text * t, int * first, const char * k, int v) {
    qsim_text_member(t, first, k, v ? "true" : "false");
}

void qsim_text_member_string(qsim_text * t, int * first, const char * k, const char * s) {
    qsim_text_key(t, first, k);
    qsim_text_string(t, s);
}
