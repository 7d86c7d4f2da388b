/* The root of an encodings document without its sections, and the sections entry by entry
 * (encodings_read.h): the tree of a whole file takes about seven times the file's size, one
 * entry's tree a few hundred bytes. */
#include <stdlib.h>
#include <string.h>

#include "io/encodings_read.h"

static const char * const SECTION_KEYS[] = {"activation_encodings", "param_encodings", "encodings"};

static qsim_status out_of_memory(qsim_error * err) {
    qsim_error_set(err, QSIM_OUT_OF_MEMORY, "out of memory reading encodings");
    return QSIM_OUT_OF_MEMORY;
}

void qsim_enc_sections_free(qsim_enc_sections * s) {
    free(s->items);
    free(s->spans);
    memset(s, 0, sizeof(*s));
}

static qsim_status add_section(qsim_enc_sections * s, const cJSON * item, qsim_json_span span,
                               qsim_error * err) {
    if (s->n == s->cap) {
        const size_t cap = s->cap ? 2 * s->cap : 4;
        const cJSON ** items = realloc(s->items, cap * sizeof(*items));
        s->items = items ? items : s->items;
        qsim_json_span * spans = items ? realloc(s->spans, cap * sizeof(*spans)) : NULL;
        s->spans = spans ? spans : s->spans;
        if (spans == NULL) {
            return out_of_memory(err);
        }
        s->cap = cap;
    }
    s->items[s->n] = item;
    s->spans[s->n++] = span;
    return QSIM_SUCCESS;
}

typedef struct root_ctx {
    const char *        text;
    size_t              len;
    cJSON *             root;
    qsim_enc_sections * s;
    qsim_error *        err;
} root_ctx;

/* One member of the root: parsed, or a placeholder when it is a section holding a container. */
static qsim_status add_root_member(void * ctx, size_t index, qsim_json_span key,
                                   qsim_json_span value) {
    root_ctx * c = ctx;
    cJSON * k = NULL;
    cJSON * v = NULL;
    (void)index;
    QSIM_ENC_TRY(qsim_json_parse_span(c->text, c->len, key, &k, c->err));
    const char first = c->text[value.begin];
    qsim_status st = QSIM_SUCCESS;
    if ((first == '{' || first == '[') &&
        qsim_json_key_index(k->valuestring, SECTION_KEYS, QSIM_ENC_COUNT(SECTION_KEYS)) >= 0) {
        v = first == '{' ? cJSON_CreateObject() : cJSON_CreateArray();
        st = v ? add_section(c->s, v, value, c->err) : out_of_memory(c->err);
    } else {
        st = qsim_json_parse_span(c->text, c->len, value, &v, c->err);
    }
    if (st == QSIM_SUCCESS && !cJSON_AddItemToObject(c->root, k->valuestring, v)) {
        st = out_of_memory(c->err);
    }
    if (st != QSIM_SUCCESS) {
        cJSON_Delete(v);
    }
    cJSON_Delete(k);
    return st;
}

qsim_status qsim_enc_parse_root(const char * text, size_t len, cJSON ** root,
                                qsim_enc_sections * s, qsim_error * err) {
    char why[8];
    size_t at = 0;
    memset(s, 0, sizeof(*s));
    while (at < len && (unsigned char)text[at] <= 32) {
        at++;
    }
    if (at == len || text[at] != '{' || memchr(text, '\0', len) != NULL ||
        qsim_json_syntax_error(text, len, why, sizeof(why)) != (size_t)-1) {
        return qsim_json_parse(text, len, root, err);
    }
    root_ctx c = {text, len, cJSON_CreateObject(), s, err};
    qsim_status st = c.root ? qsim_json_children(text, len, at, add_root_member, &c)
                            : out_of_memory(err);
    if (st != QSIM_SUCCESS) {
        cJSON_Delete(c.root);
        qsim_enc_sections_free(s);
        c.root = NULL;
    }
    *root = c.root;
    return st;
}

/* --- reading a section ------------------------------------------------------------------------ */

typedef struct section_ctx {
    qsim_enc_reader *  r;
    qsim_encoding_role role;
    int                version;
    cJSON *            keys;   /* 0.6.1: one null member per member of the section, by key */
    qsim_json_span *   values; /* 0.6.1: the span of member i's value */
} section_ctx;

/* Element `index` of a 1.0.0 or 2.0.0 section. */
static qsim_status read_element(void * ctx, size_t index, qsim_json_span key, qsim_json_span value) {
    section_ctx * c = ctx;
    qsim_enc_reader * r = c->r;
    cJSON * v = NULL;
    (void)key;
    QSIM_ENC_TRY(qsim_json_parse_span(r->w.text, r->w.len, value, &v, r->w.err));
    qsim_status st = qsim_json_push(&r->w, NULL, index);
    if (st == QSIM_SUCCESS) {
        st = c->version == QSIM_ENC_V1_0_0 ? qsim_enc_read_v1_entry(r, v, c->role)
                                           : qsim_enc_read_v2_entry(r, v, c->role);
    }
    if (st == QSIM_SUCCESS) {
        qsim_json_pop(&r->w);
    }
    cJSON_Delete(v);
    return st;
}

static qsim_status count_member(void * ctx, size_t index, qsim_json_span key, qsim_json_span value) {
    (void)key;
    (void)value;
    *(size_t *)ctx = index + 1;
    return QSIM_SUCCESS;
}

/* Member `index` of a 0.6.1 section: its key into c->keys, its value's span into c->values. */
static qsim_status collect_member(void * ctx, size_t index, qsim_json_span key,
                                  qsim_json_span value) {
    section_ctx * c = ctx;
    cJSON * k = NULL;
    QSIM_ENC_TRY(qsim_json_parse_span(c->r->w.text, c->r->w.len, key, &k, c->r->w.err));
    cJSON * slot = cJSON_CreateNull();
    const int added = slot != NULL && cJSON_AddItemToObject(c->keys, k->valuestring, slot);
    cJSON_Delete(k);
    if (!added) {
        cJSON_Delete(slot);
        return out_of_memory(c->r->w.err);
    }
    c->values[index] = value;
    return QSIM_SUCCESS;
}

/* Tensor m of a 0.6.1 section: its value parsed, read, freed. */
static qsim_status read_tensor(section_ctx * c, const qsim_json_member * m) {
    qsim_enc_reader * r = c->r;
    cJSON * v = NULL;
    QSIM_ENC_TRY(qsim_json_push(&r->w, m->key, m->index));
    QSIM_ENC_TRY(qsim_enc_check_name(r, m->key, QSIM_JSON_AT_KEY));
    QSIM_ENC_TRY(qsim_json_parse_span(r->w.text, r->w.len, c->values[m->index], &v, r->w.err));
    const qsim_status st = qsim_enc_read_v0_tensor(r, v, m->key, c->role);
    cJSON_Delete(v);
    QSIM_ENC_TRY(st);
    qsim_json_pop(&r->w);
    return QSIM_SUCCESS;
}

/* The members of a 0.6.1 section as Python's json sees them (qsim_json_members), each read. */
static qsim_status read_tensors(section_ctx * c, qsim_json_span span) {
    size_t n = 0;
    qsim_json_children(c->r->w.text, c->r->w.len, span.begin, count_member, &n);
    c->keys = cJSON_CreateObject();
    c->values = malloc((n ? n : 1) * sizeof(*c->values));
    qsim_json_member * members = NULL;
    size_t count = 0;
    qsim_status st = c->keys && c->values ? QSIM_SUCCESS : out_of_memory(c->r->w.err);
    if (st == QSIM_SUCCESS) {
        st = qsim_json_children(c->r->w.text, c->r->w.len, span.begin, collect_member, c);
    }
    if (st == QSIM_SUCCESS) {
        st = qsim_json_members(c->keys, &members, &count, c->r->w.err);
    }
    for (size_t i = 0; st == QSIM_SUCCESS && i < count; i++) {
        st = read_tensor(c, &members[i]);
    }
    free(members);
    free(c->values);
    cJSON_Delete(c->keys);
    return st;
}

qsim_status qsim_enc_read_section(qsim_enc_reader * r, const cJSON * v, int version,
                                  qsim_encoding_role role) {
    if (version == QSIM_ENC_V0_6_1 && !cJSON_IsObject(v)) {
        return qsim_enc_wrong_type(r, v, "an object mapping tensor names to lists of encodings");
    }
    if (version != QSIM_ENC_V0_6_1 && !cJSON_IsArray(v)) {
        return qsim_enc_wrong_type(r, v, "a list of encodings");
    }
    size_t i = 0;
    while (i < r->sections->n && r->sections->items[i] != v) {
        i++;
    }
    section_ctx c = {r, role, version, NULL, NULL};
    if (i == r->sections->n) { /* cannot happen: every container section has a placeholder */
        return out_of_memory(r->w.err);
    }
    if (version == QSIM_ENC_V0_6_1) {
        return read_tensors(&c, r->sections->spans[i]);
    }
    return qsim_json_children(r->w.text, r->w.len, r->sections->spans[i].begin, read_element, &c);
}
