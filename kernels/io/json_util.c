/* Parsing, file reading and member lookup for the JSON readers (json_util.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "io/json_util.h"

/* cJSON's allocator, wrapped: a failure is recorded for the parsing thread (cJSON itself reports
 * running out of memory as a parse failure). */
static _Thread_local int  alloc_failed;
static _Thread_local long allocs_left = -1; /* testing: allocations before failing (< 0 never) */
static once_flag          hooks_once = ONCE_FLAG_INIT;
static mtx_t              parse_mutex; /* cJSON's parser writes a global (its last error) */
static atomic_int         parses_inside; /* testing: parses inside cJSON now, and the most seen */
static atomic_int         parses_most;

static void * cjson_malloc(size_t n) {
    void * p = NULL;
    if (allocs_left != 0) {
        allocs_left -= allocs_left > 0;
        p = malloc(n);
    }
    alloc_failed |= p == NULL;
    return p;
}

static void init_cjson(void) {
    cJSON_Hooks hooks = {cjson_malloc, free};
    cJSON_InitHooks(&hooks);
    mtx_init(&parse_mutex, mtx_plain);
}

void qsim_json_test_fail_allocs_after(long n) {
    allocs_left = n;
}

int qsim_json_test_most_concurrent_parses(void) {
    return atomic_exchange(&parses_most, 0);
}

/* Counts the parses inside cJSON (by one while entering, by -1 while leaving). */
static void count_parse(int step) {
    const int inside = atomic_fetch_add(&parses_inside, step) + step;
    int most = atomic_load(&parses_most);
    while (inside > most && !atomic_compare_exchange_weak(&parses_most, &most, inside)) {
    }
}

/* cJSON_ParseWithLengthOpts under the mutex; *end gets where it stopped, *oom whether an
 * allocation failed. */
static cJSON * parse_locked(const char * copy, size_t size, const char ** end, int * oom,
                            int whole) {
    call_once(&hooks_once, init_cjson);
    alloc_failed = 0;
    mtx_lock(&parse_mutex);
    count_parse(1);
    cJSON * root = cJSON_ParseWithLengthOpts(copy, size, end, whole);
    count_parse(-1);
    mtx_unlock(&parse_mutex);
    *oom = alloc_failed;
    return root;
}

static void fail_syntax(const char * text, size_t len, size_t offset, int nul, qsim_error * err) {
    char why[128] = "NUL byte in the input";
    if (!nul) {
        size_t at = qsim_json_syntax_error(text, len, why, sizeof(why));
        if (at != (size_t)-1) {
            offset = at;
        } else { /* valid JSON that cJSON still rejects */
            snprintf(why, sizeof(why), "not accepted by the JSON parser");
        }
    }
    qsim_error_clear(err);
    err->status = QSIM_PARSE_ERROR;
    qsim_json_line_column(text, len, offset, &err->line, &err->column);
    snprintf(err->message, sizeof(err->message), "invalid JSON at line %d, column %d: %s",
             err->line, err->column, why);
}

qsim_status qsim_json_parse(const char * text, size_t len, cJSON ** root, qsim_error * err) {
    *root = NULL;
    const char * nul = memchr(text, '\0', len);
    char * copy = malloc(len + 1); /* cJSON needs the terminating NUL to reject trailing text */
    if (copy == NULL) {
        qsim_error_set(err, QSIM_OUT_OF_MEMORY, "out of memory reading JSON (%zu bytes)", len);
        return QSIM_OUT_OF_MEMORY;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    const char * end = NULL;
    int oom = 0;
    if (nul == NULL) {
        *root = parse_locked(copy, len + 1, &end, &oom, 1);
    }
    size_t offset = nul ? (size_t)(nul - text) : (end ? (size_t)(end - copy) : 0);
    free(copy);
    if (*root != NULL) {
        return QSIM_SUCCESS;
    }
    if (oom) {
        qsim_error_set(err, QSIM_OUT_OF_MEMORY, "out of memory parsing JSON (%zu bytes)", len);
        return QSIM_OUT_OF_MEMORY;
    }
    if (err != NULL) {
        fail_syntax(text, len, offset, nul != NULL, err);
    }
    return QSIM_PARSE_ERROR;
}

qsim_status qsim_json_parse_span(const char * text, size_t len, qsim_json_span span, cJSON ** item,
                                 qsim_error * err) {
    const char * end = NULL;
    int oom = 0;
    *item = parse_locked(text + span.begin, span.end - span.begin, &end, &oom, 0);
    if (*item != NULL) {
        return QSIM_SUCCESS;
    }
    if (oom) {
        qsim_error_set(err, QSIM_OUT_OF_MEMORY, "out of memory parsing JSON (%zu bytes)",
                       span.end - span.begin);
        return QSIM_OUT_OF_MEMORY;
    }
    if (err != NULL) {
        fail_syntax(text, len, end ? (size_t)(end - text) : span.begin, 0, err);
    }
    return QSIM_PARSE_ERROR;
}

qsim_status qsim_json_read_file(const char * path, char ** text, size_t * len, qsim_error * err) {
    *text = NULL;
    *len = 0;
    FILE * f = fopen(path, "rb");
    if (f == NULL) {
        qsim_error_set(err, QSIM_IO_ERROR, "cannot open '%s': %s", path, strerror(errno));
        return QSIM_IO_ERROR;
    }
    size_t cap = 0;
    size_t n = 0;
    char * buf = NULL;
    qsim_status st = QSIM_SUCCESS;
    for (;;) {
        if (n == cap) {
            char * grown = realloc(buf, cap ? 2 * cap : 65536);
            if (grown == NULL) {
                qsim_error_set(err, QSIM_OUT_OF_MEMORY, "out of memory reading '%s'", path);
                st = QSIM_OUT_OF_MEMORY;
                break;
            }
            buf = grown;
            cap = cap ? 2 * cap : 65536;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                qsim_error_set(err, QSIM_IO_ERROR, "cannot read '%s': %s", path, strerror(errno));
                st = QSIM_IO_ERROR;
            }
            break;
        }
    }
    fclose(f);
    if (st != QSIM_SUCCESS) {
        free(buf);
        return st;
    }
    *text = buf;
    *len = n;
    return QSIM_SUCCESS;
}

const cJSON * qsim_json_get(const cJSON * object, const char * key, size_t * index) {
    const cJSON * found = NULL;
    size_t i = 0;
    for (const cJSON * c = object->child; c != NULL; c = c->next, i++) {
        if (c->string != NULL && strcmp(c->string, key) == 0) {
            found = c;
            if (index != NULL) {
                *index = i;
            }
        }
    }
    return found;
}

const char * qsim_json_type_name(const cJSON * item) {
    if (cJSON_IsObject(item)) {
        return "object";
    }
    if (cJSON_IsArray(item)) {
        return "array";
    }
    if (cJSON_IsString(item)) {
        return "string";
    }
    if (cJSON_IsNumber(item)) {
        return "number";
    }
    if (cJSON_IsBool(item)) {
        return "boolean";
    }
    return "null";
}

#define QSIM_NEAREST_MAX_LEN 64

/* Optimal string alignment distance (Levenshtein plus swaps of neighbours); SIZE_MAX when either
 * word is longer than QSIM_NEAREST_MAX_LEN. */
static size_t edit_distance(const char * a, const char * b) {
    size_t m = strlen(a);
    size_t n = strlen(b);
    if (m > QSIM_NEAREST_MAX_LEN || n > QSIM_NEAREST_MAX_LEN) {
        return (size_t)-1;
    }
    size_t rows[3][QSIM_NEAREST_MAX_LEN + 1]; /* rows i-2, i-1, i (mod 3) */
    for (size_t j = 0; j <= n; j++) {
        rows[0][j] = j;
    }
    for (size_t i = 1; i <= m; i++) {
        size_t * cur = rows[i % 3];
        const size_t * up = rows[(i - 1) % 3];
        const size_t * up2 = rows[(i + 1) % 3];
        cur[0] = i;
        for (size_t j = 1; j <= n; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t best = up[j - 1] + cost;
            best = up[j] + 1 < best ? up[j] + 1 : best;
            best = cur[j - 1] + 1 < best ? cur[j - 1] + 1 : best;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && up2[j - 2] + 1 < best) {
                best = up2[j - 2] + 1;
            }
            cur[j] = best;
        }
    }
    return rows[m % 3][n];
}

const char * qsim_json_nearest(const char * word, const char * const * candidates, size_t n) {
    const char * best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, candidates[i]);
        size_t limit = strlen(candidates[i]) / 3;
        if (d <= (limit > 2 ? limit : 2) && d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}
