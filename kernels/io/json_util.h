/*
 * json_util.h (private to kernels/): helpers for readers that validate a cJSON tree and report
 * errors as qsim/json_error.h describes.
 *
 * cJSON does not record where an item sits in the text, so a reader keeps a walk: the stack of
 * (key, position) frames from the root to the item it is looking at. On an error the walk turns
 * into the JSON path and, by re-scanning the (already validated) text along the same positions,
 * into a line:column.
 *
 * Duplicated keys: cJSON keeps every member; Python's json keeps the last value (at the first
 * key's place). qsim_json_members and qsim_json_get give that behaviour.
 */
#ifndef QSIM_JSON_UTIL_H
#define QSIM_JSON_UTIL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "qsim/json_error.h"

#define QSIM_JSON_MAX_DEPTH 32

typedef struct qsim_json_frame {
    const char * key;   /* member name, NULL for an array element */
    size_t       index; /* position among the parent's children (members or elements) */
} qsim_json_frame;

typedef struct qsim_json_walk {
    const char *    text; /* the document that was parsed (borrowed) */
    size_t          len;
    qsim_error *    err;  /* may be NULL */
    size_t          depth;
    qsim_json_frame frames[QSIM_JSON_MAX_DEPTH];
} qsim_json_walk;

/* Where an error points: at the value the walk stands on (its path is the walk's path), or at the
 * key of the member the walk stands on (the path is its parent object's, as for an unknown key). */
typedef enum qsim_json_at {
    QSIM_JSON_AT_VALUE = 0,
    QSIM_JSON_AT_KEY   = 1,
} qsim_json_at;

/* Parses `len` bytes of `text` (need not be NUL-terminated) into *root (the caller frees it with
 * cJSON_Delete). Syntax errors (including text after the value, NUL bytes and lone UTF-16
 * surrogates in \u escapes) fail with QSIM_PARSE_ERROR, path "" and the line:column of the first
 * error (qsim_json_syntax_error). Running out of memory inside cJSON fails with
 * QSIM_OUT_OF_MEMORY (cJSON's allocator is wrapped to notice it). Thread-safe: cJSON records its
 * last error in a global, so calls into cJSON's parser are serialised by a mutex and the error
 * position is taken from return_parse_end, never from cJSON_GetErrorPtr. */
qsim_status qsim_json_parse(const char * text, size_t len, cJSON ** root, qsim_error * err);

/* ---- text already accepted by qsim_json_syntax_error (json_scan.c) ---- */

/* Bytes [begin, end) of the text. */
typedef struct qsim_json_span {
    size_t begin, end;
} qsim_json_span;

/* Where the value whose first byte is at `i` ends (the offset just past it). */
size_t qsim_json_value_end(const char * text, size_t len, size_t i);

/* Called for child `index` of a container: `key` spans the member's quoted key (empty for an
 * array element), `value` its value. A status other than QSIM_SUCCESS stops the walk. */
typedef qsim_status (*qsim_json_child_fn)(void * ctx, size_t index, qsim_json_span key,
                                          qsim_json_span value);

/* Calls fn for each member of the object, or element of the array, whose '{' or '[' is at `at`,
 * in order; returns the first failing status. Allocates nothing. */
qsim_status qsim_json_children(const char * text, size_t len, size_t at, qsim_json_child_fn fn, void * ctx);

/* Parses the value at `span` of valid JSON text into *item (the caller frees it with
 * cJSON_Delete). Fails as qsim_json_parse does where cJSON rejects valid JSON or runs out of
 * memory, with the line:column in the whole text. */
qsim_status qsim_json_parse_span(const char * text, size_t len, qsim_json_span span, cJSON ** item, qsim_error * err);

/* Testing only: the most parses that were inside cJSON's parser at the same time since the last
 * call (1 while the mutex serialises them), and resets it. */
int qsim_json_test_most_concurrent_parses(void);

/* Testing only: the next `n` allocations cJSON makes on this thread succeed and the following
 * ones fail (n < 0: never fail, the default). */
void qsim_json_test_fail_allocs_after(long n);

/* For text that is not JSON: the byte offset of the first error and, in `why`, what is wrong
 * there ("expected ',' or '}', found '\"'"). (size_t)-1 when the text is valid JSON. */
size_t qsim_json_syntax_error(const char * text, size_t len, char * why, size_t cap);

/* Reads the whole file at `path` into a malloc'ed buffer (caller frees *text). QSIM_IO_ERROR
 * (message names the file and the reason) or QSIM_OUT_OF_MEMORY on failure. */
qsim_status qsim_json_read_file(const char * path, char ** text, size_t * len, qsim_error * err);

/* Sets `err` (if not NULL) to `status` with `message` (formatted), empty path, no location. */
void qsim_error_set(qsim_error * err, qsim_status status, const char * fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* snprintf into dst[cap] that truncates silently (messages longer than the buffer are cut, by
 * design; a function so that -Wformat-truncation does not flag the intended truncation). Returns
 * what snprintf returns. */
int qsim_json_format(char * dst, size_t cap, const char * fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err->message with "<prefix>: " (truncating the end). No-op for NULL or no error. */
void qsim_error_prefix(qsim_error * err, const char * prefix);

/* A walk at the root "$" of `text`. */
void qsim_json_walk_init(qsim_json_walk * w, const char * text, size_t len, qsim_error * err);

/* Steps into the child at `index` (member `key`, or array element when key is NULL). Fails with
 * QSIM_PARSE_ERROR ("nesting too deep") past QSIM_JSON_MAX_DEPTH frames. */
qsim_status qsim_json_push(qsim_json_walk * w, const char * key, size_t index);
void qsim_json_pop(qsim_json_walk * w);

/* Fills w->err with QSIM_PARSE_ERROR and the message
 *   "<what> at <path> (line L, column C)<tail>"
 * where <what> is formatted from fmt and `tail` (may be NULL) is appended verbatim (start it with
 * "; " or ": "). Returns QSIM_PARSE_ERROR. */
qsim_status qsim_json_fail(const qsim_json_walk * w, qsim_json_at at, const char * tail,
                           const char * fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* The index of `name` in keys[0..n), or -1. */
int qsim_json_key_index(const char * name, const char * const * keys, size_t n);

/* Fails at the value `v` with "wrong type at <path> (...): expected <expected>, got <what v is>". */
qsim_status qsim_json_wrong_type(const qsim_json_walk * w, const cJSON * v, const char * expected);

/* Fails at the current key with "unknown key '<name>' at <path> (...); did you mean 'k'?" (the
 * nearest of keys[0..n)) or "; expected one of: a, b, c" when none is near. */
qsim_status qsim_json_unknown_key(const qsim_json_walk * w, const char * name,
                                  const char * const * keys, size_t n);

/* One member of an object as Python's json sees it: a duplicated key counts once, at its first
 * place, with its last value. */
typedef struct qsim_json_member {
    const char *  key;   /* borrowed from the tree */
    const cJSON * value; /* the last member with this key */
    size_t        index; /* that member's position among the object's members */
} qsim_json_member;

/* The members of `obj` (an object), one per distinct key in the order of first appearance, in a
 * malloc'ed array *out of *n items (the caller frees it; NULL for an empty object). Time linear
 * in the number of members (a hash index, built once). QSIM_OUT_OF_MEMORY (err set) on failure. */
qsim_status qsim_json_members(const cJSON * obj, qsim_json_member ** out, size_t * n,
                              qsim_error * err);

/* The last member of `object` named `key` (NULL if none), its position in *index (may be NULL). */
const cJSON * qsim_json_get(const cJSON * object, const char * key, size_t * index);

/* "object", "array", "string", "number", "boolean" or "null". */
const char * qsim_json_type_name(const cJSON * item);

/* The candidate nearest to `word` by edit distance (insertions, deletions, substitutions and
 * swaps of neighbours, all cost 1) if it is close enough to be a likely typo (distance at most
 * max(2, length of the candidate / 3)), else NULL. Ties go to the earlier candidate. */
const char * qsim_json_nearest(const char * word, const char * const * candidates, size_t n);

#endif /* QSIM_JSON_UTIL_H */
