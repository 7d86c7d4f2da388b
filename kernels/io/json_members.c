/* The effective members of a JSON object in time linear in their number (json_util.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_util.h"

static uint64_t hash_key(const char * s) { /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

/* The slot of `key` in the open-addressing table (mask + 1 slots of member positions + 1). */
static size_t probe(const size_t * table, size_t mask, const qsim_json_member * members,
                    const char * key) {
    size_t i = (size_t)hash_key(key) & mask;
    while (table[i] != 0 && strcmp(members[table[i] - 1].key, key) != 0) {
        i = (i + 1) & mask;
    }
    return i;
}

qsim_status qsim_json_members(const cJSON * obj, qsim_json_member ** out, size_t * n_out,
                              qsim_error * err) {
    size_t n = 0;
    for (const cJSON * c = obj->child; c != NULL; c = c->next) {
        n++;
    }
    *out = NULL;
    *n_out = 0;
    if (n == 0) {
        return QSIM_SUCCESS;
    }
    size_t cap = 2;
    while (cap < 2 * n) {
        cap *= 2;
    }
    qsim_json_member * members = malloc(n * sizeof(*members));
    size_t * table = calloc(cap, sizeof(*table));
    if (members == NULL || table == NULL) {
        free(members);
        free(table);
        qsim_error_set(err, QSIM_OUT_OF_MEMORY, "out of memory indexing a JSON object of %zu members",
                       n);
        return QSIM_OUT_OF_MEMORY;
    }
    size_t count = 0;
    size_t index = 0;
    for (const cJSON * c = obj->child; c != NULL; c = c->next, index++) {
        const char * key = c->string ? c->string : "";
        size_t slot = probe(table, cap - 1, members, key);
        if (table[slot] == 0) {
            members[count].key = key;
            table[slot] = ++count;
        }
        members[table[slot] - 1].value = c; /* a later duplicate replaces the value */
        members[table[slot] - 1].index = index;
    }
    free(table);
    *out = members;
    *n_out = count;
    return QSIM_SUCCESS;
}
