/*
 * framing.c - what every framing shares (framing.h): binding a reading
 * state, releasing a decoded message, splitting a decoded value into
 * target and elements, and walking JSON texts for framings that convert
 * them.
 */
#include "framing.h"

const aemp__framing_t *aemp__framing_find(const aemp__framing_t *const *list, const char *name)
{
    for (; list && *list; list++)
        if (name && !strcmp((*list)->name, name)) return *list;
    return NULL;
}

int aemp__framing_list_ok(const aemp__framing_t *const *list, const char *names)
{
    char seen[32] = {0}; /* by index in list */
    size_t total = strlen(names);
    if (!total || total > 127) return 0;
    for (const char *p = names;;) {
        size_t n = strcspn(p, ",");
        size_t i = 0;
        while (list[i] && (strlen(list[i]->name) != n || memcmp(list[i]->name, p, n))) i++;
        if (!list[i] || i >= sizeof seen || seen[i]++) return 0;
        if (!p[n]) return 1;
        p += n + 1;
    }
}

int aemp__frame_in_init(aemp__frame_in_t *in, const aemp__framing_t *f, size_t max_message)
{
    in->ops = f;
    in->max_message = max_message;
    return f->in_init(in);
}

void aemp__frame_in_free(aemp__frame_in_t *in)
{
    if (in->ops) in->ops->in_fini(in);
    in->ops = NULL;
    aemp__recycle_free(&in->recycle);
}

void aemp__frame_msg_done(aemp__frame_in_t *in, aemp__msg_t *m)
{
    if (m->recycle_) aemp__recycle_put(&in->recycle, m->elems);
    else json_decref(m->elems);
    json_decref(m->hold_);
    json_decref(m->value);
}

int aemp__msg_from_value(json_t *v, aemp__msg_t *m)
{
    json_t *idv = json_array_get(v, 0);
    memset(m, 0, sizeof *m);
    if (!json_is_string(idv)) {
        m->value = v;
        return AEMP__MSG_VALUE;
    }
    json_incref(idv);
    json_array_remove(v, 0);
    m->hold_ = idv;
    m->id = json_string_value(idv);
    m->idlen = json_string_length(idv);
    m->elems = v;
    return AEMP__MSG_OK;
}

int aemp__framing_each_json(const char *p, size_t n, int (*fn)(void *ctx, const json_t *v),
                            void *ctx)
{
    aemp_framer_t f;
    aemp_framer_init(&f, 0, 0);
    size_t start, end;
    int rc = 0;
    while (!rc && n && aemp_framer_next(&f, p, n, &start, &end) == 1) {
        json_t *v = aemp_json_decode(p + start, end - start, 0, NULL, 0);
        rc = v ? fn(ctx, v) : AEMP_EINVAL;
        json_decref(v);
        p += end;
        n -= end;
    }
    return rc;
}
