/*
 * services.c - the node port: requests ["", TAG, ARGS...] that a node
 * serves itself (PROTOCOL §7). Each dialect is a table of tag -> handler
 * with the shape its arguments must have, in the dialect's own folder
 * (src/p0/services0.c, src/p1/services1.c); the shapes are checked here,
 * in one place, so a handler reads its arguments without checking them.
 * A tag missing from the table calls the registered function of that
 * name (aemp_func_register). The handlers of requests that mean the same
 * in both dialects live here too (services.h).
 */
#include "services.h"

#include <stdio.h>

/* ------------------------------------------------------------------ */
/* helpers                                                             */

json_t *aemp__svc_slice(json_t *a, size_t from)
{
    json_t *r = json_array();
    for (size_t i = from; r && i < json_array_size(a); i++) json_array_append(r, json_array_get(a, i));
    return r;
}

void aemp__svc_reply(aemp_node_t *n, json_t *args, size_t from, json_t *results)
{
    const char *to = json_string_value(json_array_get(args, from));
    json_t *e = aemp__svc_slice(args, from + 1);
    if (e && results) json_array_extend(e, results);
    json_decref(results);
    if (to && e) aemp_send(n, to, e);
    else json_decref(e);
}

static int shape_ok(const char *shape, json_t *args)
{
    for (size_t i = 0; shape[i]; i++) {
        json_t *v = json_array_get(args, i);
        if (!v) return 0;
        if (shape[i] == 's' && !json_is_string(v)) return 0;
        if (shape[i] == 'a' && !json_is_array(v)) return 0;
        if (shape[i] == 'A' && !json_is_array(v) && !json_is_null(v)) return 0;
        if (shape[i] == 'O' && !json_is_object(v) && !json_is_null(v)) return 0;
        if (shape[i] == 'o' && !json_is_object(v)) return 0;
    }
    return 1;
}

#define ARG(i) AEMP__ARG(args, i)

/* ------------------------------------------------------------------ */
/* handlers                                                            */

void aemp__svc_ignore(aemp_node_t *n, const char *src, json_t *args) {}

void aemp__svc_time(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__svc_reply(n, args, 0, json_pack("[f]", ev_time()));
}

/* Relays elements to the port `to` for src. Not to our own node port:
 * what arrives there from ourselves is trusted (a global node's own
 * database answers), so a peer must not be able to make us say it. */
void aemp__svc_relay_to(aemp_node_t *n, const char *src, const char *to, json_t *elems)
{
    size_t nodelen;
    const char *local = aemp__portid_split(to, &nodelen);
    if (!*local && aemp__is_self_n(n, to, nodelen)) {
        aemp__log(n, AEMP_LOG_WARN, "%s: relay to this node's own node port refused", src);
        json_decref(elems);
    } else {
        aemp_send(n, to, elems);
    }
}

void aemp__svc_relay(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__svc_relay_to(n, src, ARG(0), aemp__svc_slice(args, 1));
}

void aemp__svc_mon1(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__ports_watch(n, src, ARG(0));
}

void aemp__svc_mon0(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__ports_unwatch(n, src, ARG(0));
}

/* The sender's port died: our monitors of it fire with the reason. */
void aemp__svc_kil_notice(aemp_node_t *n, const char *src, json_t *args)
{
    json_t *reason = aemp__svc_slice(args, 1);
    if (reason) aemp__ports_remote_died(n, src, ARG(0), reason);
    json_decref(reason);
}

void aemp__svc_spawn(aemp_node_t *n, const char *src, json_t *args)
{
    json_t *fargs = aemp__svc_slice(args, 2);
    if (fargs) aemp__ports_spawn(n, src, ARG(0), ARG(1), fargs);
    json_decref(fargs);
}

/* ------------------------------------------------------------------ */
/* dispatch                                                            */

int aemp__services_run(aemp_node_t *n, const aemp__service_t *table, const char *src,
                       const char *tag, json_t *args)
{
    const aemp__service_t *s = table;
    while (s->tag && strcmp(s->tag, tag)) s++;
    if (!s->tag) return AEMP_ENOENT;
    if (shape_ok(s->shape, args)) s->fn(n, src, args);
    else aemp__log(n, AEMP_LOG_WARN, "%s: node request %s with bad arguments, dropped", src, tag);
    return 0;
}

void aemp__services_dispatch(aemp_node_t *n, const char *src, json_t *elems)
{
    /* [""] alone is a request with the empty tag */
    const char *tag = json_array_size(elems) ? json_string_value(json_array_get(elems, 0)) : "";
    if (!tag) {
        aemp__log(n, AEMP_LOG_WARN, "error processing node message: unable to resolve %s",
                  json_is_string(json_array_get(elems, 0)) ? "?" : "");
        return;
    }
    json_t *args = aemp__svc_slice(elems, 1);
    if (!args) return;
    if (aemp__services_run(n, n->dialect->services, src, tag, args) && aemp__ports_call(n, tag, args))
        aemp__log(n, AEMP_LOG_WARN, "error processing node message: unable to resolve %s", tag);
    json_decref(args);
}

/* ------------------------------------------------------------------ */
/* what every dialect's requests share: secure, unhandled messages     */

int aemp__remote_exec_refused(aemp_node_t *n)
{
    if (!n->cfg.secure || !n->acting_for) return 0;
    aemp__log(n, AEMP_LOG_WARN, "error processing node message from %s: remote execution not allowed",
              n->acting_for);
    return 1;
}

/* The first element as Perl prints it (a string as it is, a number in
 * its shortest form, true "1", false "0", null ""; an array or object,
 * which Perl shows by address, as compact JSON); malloc'd. */
static char *perl_text(json_t *v)
{
    char buf[64];
    if (json_is_string(v)) return strdup(json_string_value(v));
    if (json_is_integer(v)) snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v)) snprintf(buf, sizeof buf, "%.15g", json_real_value(v));
    else if (json_is_true(v)) snprintf(buf, sizeof buf, "1");
    else if (json_is_false(v)) snprintf(buf, sizeof buf, "0");
    else if (!v || json_is_null(v)) buf[0] = 0;
    else return aemp_json_encode(v, NULL);
    return strdup(buf);
}

json_t *aemp__unhandled_reason(json_t *elems)
{
    /* 2.02: the tag's first 30 characters, each outside 0x20..0x7e as '.' */
    char *text = perl_text(json_array_get(elems, 0));
    char tag[31];
    size_t len = 0;
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p && len < 30; len++) {
        size_t step = *p < 0x80 ? 1 : *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 1;
        tag[len] = step == 1 && *p >= 0x20 && *p <= 0x7e ? (char)*p : '.';
        while (step-- && *p) p++;
    }
    tag[len] = 0;
    free(text);
    char why[80];
    snprintf(why, sizeof why, "no callback found for message '%s'", tag);
    return json_pack("[ss]", "unhandled_message", why);
}
