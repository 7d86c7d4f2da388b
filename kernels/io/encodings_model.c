/* The qsim_encodings model: storage of entries and their name index (qsim/encodings.h,
 * encodings_model.h); the checks of an entry are in encodings_check.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/encodings_model.h"

static const char * const VERSIONS[] = {"0.6.1", "1.0.0", "2.0.0"};
const char QSIM_ENC_VERSIONS_TEXT[] = "0.6.1, 1.0.0, 2.0.0";

struct qsim_encodings {
    qsim_encodings_view   view;
    qsim_encoding_entry * entries;  /* view.n_entries used, `cap` allocated */
    void **               blocks;   /* blocks[i]: the one allocation entry i points into */
    size_t                cap;
    size_t *              slots;    /* name index: open addressing, entry index + 1, 0 = empty */
    size_t                n_slots;  /* a power of two > 2 * view.n_entries, or 0 */
    char **               excluded; /* view.n_excluded_layers used, `cap_excluded` allocated */
    size_t                cap_excluded;
    qsim_quantizer_args   args;     /* view.quantizer_args points here when set */
    char *                version;
    char *                producer; /* "<package>\0<version>\0" */
};

const char * const * qsim_encodings_versions(size_t * n) {
    *n = sizeof(VERSIONS) / sizeof(VERSIONS[0]);
    return VERSIONS;
}

int qsim_enc_version_index(const char * version) {
    for (int i = 0; i < (int)(sizeof(VERSIONS) / sizeof(VERSIONS[0])); i++) {
        if (version != NULL && strcmp(version, VERSIONS[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char * qsim_enc_role_name(qsim_encoding_role role) {
    return role == QSIM_ENCODING_ACTIVATION ? "activation"
         : role == QSIM_ENCODING_PARAM      ? "param"
                                            : "entry";
}

/* --- create / free -------------------------------------------------------------------------- */

qsim_encodings * qsim_encodings_create(void) {
    return calloc(1, sizeof(qsim_encodings));
}

void qsim_encodings_free(qsim_encodings * enc) {
    if (enc == NULL) {
        return;
    }
    for (size_t i = 0; i < enc->view.n_entries; i++) {
        free(enc->blocks[i]);
    }
    for (size_t i = 0; i < enc->view.n_excluded_layers; i++) {
        free(enc->excluded[i]);
    }
    free(enc->entries);
    free(enc->blocks);
    free(enc->slots);
    free(enc->excluded);
    free((char *)enc->args.quant_scheme);
    free(enc->version);
    free(enc->producer);
    free(enc);
}

const qsim_encodings_view * qsim_encodings_get(const qsim_encodings * enc) {
    return &enc->view;
}

static char * copy_string(const char * s) {
    size_t n = strlen(s) + 1;
    char * c = malloc(n);
    if (c != NULL) {
        memcpy(c, s, n);
    }
    return c;
}

static qsim_status out_of_memory(qsim_error * err) {
    qsim_error_set(err, QSIM_OUT_OF_MEMORY, "out of memory building encodings");
    return QSIM_OUT_OF_MEMORY;
}

/* --- name index ----------------------------------------------------------------------------- */

static size_t hash_name(const char * s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return (size_t)h;
}

/* The slot holding `name`, or the empty slot where it would go. Needs n_slots > 0. */
static size_t find_slot(const qsim_encodings * enc, const char * name) {
    size_t mask = enc->n_slots - 1;
    size_t i = hash_name(name) & mask;
    while (enc->slots[i] != 0 && strcmp(enc->entries[enc->slots[i] - 1].name, name) != 0) {
        i = (i + 1) & mask;
    }
    return i;
}

/* Makes room in the index for one more entry (rebuilding it larger when half full). */
static int reserve_slot(qsim_encodings * enc) {
    if (2 * (enc->view.n_entries + 1) < enc->n_slots) {
        return 1;
    }
    size_t n = enc->n_slots ? 2 * enc->n_slots : 16;
    size_t * slots = calloc(n, sizeof(*slots));
    if (slots == NULL) {
        return 0;
    }
    free(enc->slots);
    enc->slots = slots;
    enc->n_slots = n;
    for (size_t e = 0; e < enc->view.n_entries; e++) {
        enc->slots[find_slot(enc, enc->entries[e].name)] = e + 1;
    }
    return 1;
}

qsim_status qsim_encodings_lookup(const qsim_encodings * enc, const char * name,
                                  const qsim_encoding_entry ** out) {
    if (out != NULL) {
        *out = NULL;
    }
    if (enc == NULL || name == NULL || out == NULL) {
        return QSIM_INVALID_ARGUMENT;
    }
    if (enc->n_slots == 0) {
        return QSIM_NOT_FOUND;
    }
    size_t slot = enc->slots[find_slot(enc, name)];
    *out = slot ? &enc->entries[slot - 1] : NULL;
    return slot ? QSIM_SUCCESS : QSIM_NOT_FOUND;
}

/* --- adding entries ------------------------------------------------------------------------- */

static void * put(char ** p, const void * src, size_t bytes) {
    if (src == NULL) {
        return NULL;
    }
    void * dst = *p;
    memcpy(dst, src, bytes);
    *p += bytes;
    return dst;
}

/* A copy of `e` in *out whose name and arrays live in one new allocation, returned (the int64
 * arrays first, then the floats, then the name, so each is aligned); NULL when out of memory. */
static void * copy_entry(const qsim_encoding_entry * e, qsim_encoding_entry * out) {
    size_t name_len = strlen(e->name) + 1;
    if (e->n > (SIZE_MAX / 2 - name_len) / (sizeof(int64_t) + 3 * sizeof(float))) {
        return NULL;
    }
    size_t bytes = (e->n + e->ndim) * sizeof(int64_t) + 3 * e->n * sizeof(float) + name_len;
    char * block = malloc(bytes);
    if (block == NULL) {
        return NULL;
    }
    char * p = block;
    *out = *e;
    out->offset = put(&p, e->offset, e->n * sizeof(int64_t));
    out->shape = put(&p, e->shape, e->ndim * sizeof(int64_t));
    out->scale = put(&p, e->scale, e->n * sizeof(float));
    out->min = put(&p, e->min, e->n * sizeof(float));
    out->max = put(&p, e->max, e->n * sizeof(float));
    out->name = put(&p, e->name, name_len);
    return block;
}

static int grow(void ** items, size_t * cap, size_t used, size_t size) {
    if (used < *cap) {
        return 1;
    }
    size_t n = *cap ? 2 * *cap : 16;
    void * grown = realloc(*items, n * size);
    if (grown == NULL) {
        return 0;
    }
    *items = grown;
    *cap = n;
    return 1;
}

qsim_status qsim_encodings_add(qsim_encodings * enc, const qsim_encoding_entry * entry,
                               qsim_error * err) {
    if (enc == NULL || entry == NULL || entry->name == NULL || entry->name[0] == '\0') {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT, "cannot add an encoding: %s",
                       enc == NULL || entry == NULL ? "NULL argument" : "the name is empty");
        return QSIM_INVALID_ARGUMENT;
    }
    const char * why = qsim_enc_bad_structure(entry);
    const qsim_encoding_entry * same = NULL;
    if (why == NULL && qsim_encodings_lookup(enc, entry->name, &same) == QSIM_SUCCESS) {
        why = same->role == entry->role ? "the name is already there"
                                        : "the name is already there with another role";
    }
    if (why != NULL) {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT, "cannot add %s '%s': %s",
                       qsim_enc_role_name(entry->role), entry->name, why);
        return QSIM_INVALID_ARGUMENT;
    }
    size_t cap = enc->cap;
    if (!grow((void **)&enc->entries, &cap, enc->view.n_entries, sizeof(*enc->entries)) ||
        !grow((void **)&enc->blocks, &enc->cap, enc->view.n_entries, sizeof(*enc->blocks)) ||
        !reserve_slot(enc)) {
        enc->view.entries = enc->entries; /* entries may have moved; cap tracks blocks */
        return out_of_memory(err);
    }
    enc->view.entries = enc->entries;
    qsim_encoding_entry * e = &enc->entries[enc->view.n_entries];
    void * block = copy_entry(entry, e);
    if (block == NULL) {
        return out_of_memory(err);
    }
    enc->blocks[enc->view.n_entries] = block;
    enc->slots[find_slot(enc, e->name)] = ++enc->view.n_entries;
    return QSIM_SUCCESS;
}

/* --- the other members ---------------------------------------------------------------------- */

qsim_status qsim_encodings_add_excluded_layer(qsim_encodings * enc, const char * name,
                                              qsim_error * err) {
    if (enc == NULL || name == NULL) {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT, "cannot add an excluded layer: NULL argument");
        return QSIM_INVALID_ARGUMENT;
    }
    char * copy = copy_string(name);
    if (copy == NULL || !grow((void **)&enc->excluded, &enc->cap_excluded,
                              enc->view.n_excluded_layers, sizeof(*enc->excluded))) {
        free(copy);
        return out_of_memory(err);
    }
    enc->excluded[enc->view.n_excluded_layers++] = copy;
    enc->view.excluded_layers = (const char * const *)enc->excluded;
    return QSIM_SUCCESS;
}

qsim_status qsim_encodings_set_quantizer_args(qsim_encodings * enc, const qsim_quantizer_args * args,
                                              qsim_error * err) {
    if (enc == NULL || (args != NULL && (args->quant_scheme == NULL ||
                                         args->activation_bitwidth < 1 || args->activation_bitwidth > 32 ||
                                         args->param_bitwidth < 1 || args->param_bitwidth > 32 ||
                                         (args->dtype != QSIM_ENCODING_INT &&
                                          args->dtype != QSIM_ENCODING_FLOAT)))) {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT,
                       "cannot set quantizer_args: NULL argument, NULL quant_scheme, a bitwidth "
                       "outside 1..32 or a dtype that is not a qsim_encoding_kind");
        return QSIM_INVALID_ARGUMENT;
    }
    char * scheme = args ? copy_string(args->quant_scheme) : NULL;
    if (args != NULL && scheme == NULL) {
        return out_of_memory(err);
    }
    free((char *)enc->args.quant_scheme);
    memset(&enc->args, 0, sizeof(enc->args));
    if (args != NULL) {
        enc->args = *args;
        enc->args.quant_scheme = scheme;
    }
    enc->view.quantizer_args = args ? &enc->args : NULL;
    return QSIM_SUCCESS;
}

qsim_status qsim_encodings_set_producer(qsim_encodings * enc, const char * package,
                                        const char * version, qsim_error * err) {
    if (enc == NULL || (package == NULL) != (version == NULL)) {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT,
                       "cannot set the producer: package and version are both given or both NULL");
        return QSIM_INVALID_ARGUMENT;
    }
    char * both = NULL;
    if (package != NULL) {
        size_t np = strlen(package) + 1;
        size_t nv = strlen(version) + 1;
        both = malloc(np + nv);
        if (both == NULL) {
            return out_of_memory(err);
        }
        memcpy(both, package, np);
        memcpy(both + np, version, nv);
    }
    free(enc->producer);
    enc->producer = both;
    enc->view.producer_package = both;
    enc->view.producer_version = both ? both + strlen(both) + 1 : NULL;
    return QSIM_SUCCESS;
}

qsim_status qsim_enc_set_version(qsim_encodings * enc, const char * version, qsim_error * err) {
    char * copy = copy_string(version);
    if (copy == NULL) {
        return out_of_memory(err);
    }
    free(enc->version);
    enc->version = copy;
    enc->view.version = copy;
    return QSIM_SUCCESS;
}
