/* Where and why a text is not JSON (RFC 8259), for syntax error messages (json_util.h). cJSON
 * stays the parser; this only runs on text cJSON rejected, to point at the first bad byte. */
#include <stdio.h>
#include <string.h>

#include "io/json_util.h"

static const char UNTERMINATED[] = "unterminated string (no closing quote)";

typedef struct scan {
    const char * t;
    size_t       n;
    size_t       p;
    const char * why; /* set by the first failure */
} scan;

static int fail(scan * s, const char * why) {
    s->why = why;
    return 0;
}

static int peek(const scan * s, char c) {
    return s->p < s->n && s->t[s->p] == c;
}

static void skip_ws(scan * s) {
    while (s->p < s->n && (unsigned char)s->t[s->p] <= 32) { /* cJSON's whitespace */
        s->p++;
    }
}

static int is_digit(const scan * s) {
    return s->p < s->n && s->t[s->p] >= '0' && s->t[s->p] <= '9';
}

/* The 4 hex digits after "\\u" at s->p (which stands on the 'u'), as a code unit; -1 if invalid.
 * Leaves s->p on the last digit. */
static long scan_hex4(scan * s) {
    static const char hex[] = "0123456789abcdefABCDEF";
    long unit = 0;
    for (int k = 0; k < 4; k++) {
        s->p++;
        const char * d = s->p < s->n && s->t[s->p] != '\0' ? strchr(hex, s->t[s->p]) : NULL;
        if (d == NULL) {
            return -1;
        }
        long digit = (long)(d - hex);
        unit = unit * 16 + (digit < 16 ? digit : digit - 6);
    }
    return unit;
}

/* A \\u escape (s->p on the 'u'): 4 hex digits, and a UTF-16 surrogate only as a high-low pair
 * (cJSON rejects a lone surrogate). */
static int scan_unicode_escape(scan * s) {
    const size_t start = s->p - 1;
    long unit = scan_hex4(s);
    if (unit < 0) {
        return fail(s, "invalid \\u escape (expected 4 hex digits)");
    }
    if (unit >= 0xDC00 && unit <= 0xDFFF) {
        s->p = start;
        return fail(s, "lone UTF-16 low surrogate in a \\u escape (not a character)");
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
        long low = -1;
        if (s->p + 2 < s->n && s->t[s->p + 1] == '\\' && s->t[s->p + 2] == 'u') {
            s->p += 2;
            low = scan_hex4(s);
        }
        if (!(low >= 0xDC00 && low <= 0xDFFF)) {
            s->p = start;
            return fail(s, "lone UTF-16 high surrogate in a \\u escape (expected a low surrogate "
                           "\\uDC00..\\uDFFF after it)");
        }
    }
    return 1;
}

static int scan_string(scan * s) {
    const size_t start = s->p;
    for (s->p++; s->p < s->n && s->t[s->p] != '"'; s->p++) {
        if (s->t[s->p] != '\\') {
            continue;
        }
        s->p++;
        if (s->p < s->n && s->t[s->p] == 'u') {
            if (!scan_unicode_escape(s)) {
                return 0;
            }
        } else if (s->p >= s->n || s->t[s->p] == '\0' || !strchr("\"\\/bfnrt", s->t[s->p])) {
            return fail(s, "invalid escape in string");
        }
    }
    if (s->p >= s->n) {
        s->p = start;
        return fail(s, UNTERMINATED); /* points at the opening quote */
    }
    s->p++;
    return 1;
}

static int scan_digits(scan * s, const char * why) {
    if (!is_digit(s)) {
        return fail(s, why);
    }
    while (is_digit(s)) {
        s->p++;
    }
    return 1;
}

static int scan_number(scan * s) {
    const int minus = peek(s, '-');
    s->p += (size_t)minus;
    if (peek(s, '0')) {
        s->p++;
    } else if (!scan_digits(s, minus ? "expected a digit after '-'" : "expected a value")) {
        return 0;
    }
    if (peek(s, '.')) {
        s->p++;
        if (!scan_digits(s, "expected a digit after '.'")) {
            return 0;
        }
    }
    if (peek(s, 'e') || peek(s, 'E')) {
        s->p++;
        if (peek(s, '+') || peek(s, '-')) {
            s->p++;
        }
        return scan_digits(s, "expected a digit in the exponent");
    }
    return 1;
}

static int scan_value(scan * s, int depth);

/* The members of an object or elements of an array, after the opening bracket. */
static int scan_container(scan * s, int object, int depth) {
    const char close = object ? '}' : ']';
    s->p++;
    skip_ws(s);
    if (peek(s, close)) {
        s->p++;
        return 1;
    }
    for (;;) {
        if (object) {
            if (!peek(s, '"')) {
                return fail(s, "expected a key in double quotes");
            }
            if (!scan_string(s)) {
                return 0;
            }
            skip_ws(s);
            if (!peek(s, ':')) {
                return fail(s, "expected ':' after the key");
            }
            s->p++;
        }
        if (!scan_value(s, depth + 1)) {
            return 0;
        }
        skip_ws(s);
        if (peek(s, close)) {
            s->p++;
            return 1;
        }
        if (!peek(s, ',')) {
            return fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        s->p++;
        skip_ws(s);
    }
}

static int scan_value(scan * s, int depth) {
    skip_ws(s);
    const char c = s->p < s->n ? s->t[s->p] : '\0';
    if (c == '{' || c == '[') {
        if (depth >= CJSON_NESTING_LIMIT) { /* cJSON: at most CJSON_NESTING_LIMIT nested containers */
            return fail(s, "nesting too deep");
        }
        return scan_container(s, c == '{', depth);
    }
    if (c == '"') {
        return scan_string(s);
    }
    static const char * const literals[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t len = strlen(literals[i]);
        if (c == literals[i][0]) {
            if (s->n - s->p < len || memcmp(s->t + s->p, literals[i], len) != 0) {
                return fail(s, "invalid literal (expected true, false or null)");
            }
            s->p += len;
            return 1;
        }
    }
    return scan_number(s);
}

size_t qsim_json_syntax_error(const char * text, size_t len, char * why, size_t cap) {
    scan s = {text, len, 0, NULL};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        s.p = 3; /* cJSON skips a UTF-8 byte order mark */
    }
    if (scan_value(&s, 0)) {
        skip_ws(&s);
        if (s.p == len) {
            return (size_t)-1;
        }
        s.why = "unexpected text after the JSON value";
    }
    if (s.why == UNTERMINATED) {
        snprintf(why, cap, "%s", s.why);
    } else if (s.p >= len) {
        snprintf(why, cap, "%s, found the end of the input", s.why);
    } else {
        unsigned char c = (unsigned char)text[s.p];
        if (c >= 32 && c < 127) {
            snprintf(why, cap, "%s, found '%c'", s.why, c);
        } else {
            snprintf(why, cap, "%s, found byte 0x%02X", s.why, c);
        }
    }
    return s.p;
}
