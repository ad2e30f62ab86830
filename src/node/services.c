/*
 * services.c - the node port: requests ["", TAG, ARGS...] that a node
 * serves itself (PROTOCOL §7). Each dialect is a table of tag -> handler
 * with the shape its arguments must have; the shapes are checked here,
 * in one place, so a handler reads its arguments without checking them.
 * A tag missing from the table calls the registered function of that
 * name (aemp_func_register). A second dialect is a second table that
 * reuses these handlers where the requests mean the same.
 */
#include "node_int.h"

#include <stdio.h>

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static json_t *slice(json_t *a, size_t from)
{
    json_t *r = json_array();
    for (size_t i = from; r && i < json_array_size(a); i++) json_array_append(r, json_array_get(a, i));
    return r;
}

/* Answers a request whose args hold REPLY = [PORTID, ELEMENTS...] from
 * index `from` on: sends [ELEMENTS..., RESULTS...] to PORTID. Steals
 * results (an array; NULL sends none). */
static void reply(aemp_node_t *n, json_t *args, size_t from, json_t *results)
{
    const char *to = json_string_value(json_array_get(args, from));
    json_t *e = slice(args, from + 1);
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

#define ARG(i) json_string_value(json_array_get(args, i))

/* ------------------------------------------------------------------ */
/* handlers                                                            */

static void svc_ignore(aemp_node_t *n, const char *src, json_t *args) {}

static void svc_lookup(aemp_node_t *n, const char *src, json_t *args)
{
    reply(n, args, 1, json_pack("[s?]", aemp_lookup(n, ARG(0))));
}

static void svc_time(aemp_node_t *n, const char *src, json_t *args)
{
    reply(n, args, 0, json_pack("[f]", ev_time()));
}

static void svc_eval(aemp_node_t *n, const char *src, json_t *args)
{
    reply(n, args, 1, json_pack("[s]", "eval is not supported by this node (no Perl here)"));
}

/* Relays elements to the port `to` for src. Not to our own node port:
 * what arrives there from ourselves is trusted (a global node's own
 * database answers), so a peer must not be able to make us say it. */
static void relay(aemp_node_t *n, const char *src, const char *to, json_t *elems)
{
    size_t nodelen;
    const char *local = aemp__portid_split(to, &nodelen);
    char *node = strndup(to, nodelen);
    if (node && !*local && aemp__is_self(n, node)) {
        aemp__log(n, AEMP_LOG_WARN, "%s: relay to this node's own node port refused", src);
        json_decref(elems);
    } else {
        aemp_send(n, to, elems);
    }
    free(node);
}

static void svc_relay(aemp_node_t *n, const char *src, json_t *args)
{
    relay(n, src, ARG(0), slice(args, 1));
}

static void svc_relay_multiple(aemp_node_t *n, const char *src, json_t *args)
{
    for (size_t i = 0; i < json_array_size(args); i++) {
        json_t *one = json_array_get(args, i);
        const char *to = json_string_value(json_array_get(one, 0));
        if (to) relay(n, src, to, slice(one, 1));
    }
}

static void svc_mon1(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__ports_watch(n, src, ARG(0));
}

static void svc_mon0(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__ports_unwatch(n, src, ARG(0));
}

/* The sender's port died: our monitors of it fire with the reason. */
static void svc_kil_notice(aemp_node_t *n, const char *src, json_t *args)
{
    json_t *reason = slice(args, 1);
    if (reason) aemp__ports_remote_died(n, src, ARG(0), reason);
    json_decref(reason);
}

static void svc_spawn(aemp_node_t *n, const char *src, json_t *args)
{
    json_t *fargs = slice(args, 2);
    if (fargs) aemp__ports_spawn(n, src, ARG(0), ARG(1), fargs);
    json_decref(fargs);
}

static void svc_iam(aemp_node_t *n, const char *src, json_t *args)
{
    if (!aemp__is_self(n, src)) aemp__node_peer_renamed(n, src, ARG(0));
}

/* Protocol 1: kill our port NAME with REASON (its watchers hear kil0). */
static void svc_kil1(aemp_node_t *n, const char *src, json_t *args)
{
    json_t *reason = slice(args, 1);
    if (reason) aemp__ports_kill(n, ARG(0), reason);
    json_decref(reason);
}

/* Answers from the global service count only from the current master:
 * another node cannot send our messages elsewhere. */
static void svc_g_found(aemp_node_t *n, const char *src, json_t *args)
{
    if (aemp__p1_is_master(n, src)) aemp__p1_found(n, ARG(0), json_array_get(args, 1));
}

static void svc_g_reply(aemp_node_t *n, const char *src, json_t *args)
{
    if (aemp__p1_is_master(n, src)) aemp__db_reply(n, ARG(0), json_array_get(args, 1));
}

static void svc_g_chg1(aemp_node_t *n, const char *src, json_t *args)
{
    if (aemp__p1_is_master(n, src)) aemp__db_chg1(n, ARG(0), json_array_get(args, 1));
}

static void svc_g_chg2(aemp_node_t *n, const char *src, json_t *args)
{
    if (aemp__p1_is_master(n, src))
        aemp__db_chg2(n, ARG(0), json_array_get(args, 1), json_array_get(args, 2));
}

/* The global protocol, served by a global node (global.c); a bare g_slave
 * makes this node one. */
#define GLOBAL_SVC(tag)                                                     \
    static void svc_##tag(aemp_node_t *n, const char *src, json_t *args)    \
    {                                                                       \
        aemp__global_request(n, src, #tag, args);                           \
    }
GLOBAL_SVC(g_slave)
GLOBAL_SVC(g_global)
GLOBAL_SVC(g_set)
GLOBAL_SVC(g_upd)
GLOBAL_SVC(g_find)
GLOBAL_SVC(g_db_family)
GLOBAL_SVC(g_db_keys)
GLOBAL_SVC(g_db_values)
GLOBAL_SVC(g_mon1)
GLOBAL_SVC(g_mon0)

/* ------------------------------------------------------------------ */
/* the dialects                                                        */

/* Protocol 0 (AnyEvent::MP 0.4). */
const aemp__service_t aemp__services_p0[] = {
    {"devnull", "", svc_ignore},
    {"lookup", "ss", svc_lookup},
    {"time", "s", svc_time},
    {"eval", "?s", svc_eval},
    {"relay", "s", svc_relay},
    {"relay_multiple", "", svc_relay_multiple},
    {"mon1", "s", svc_mon1},
    {"mon0", "s", svc_mon0},
    {"kil", "s", svc_kil_notice},
    {"AnyEvent::MP::_spawn", "ss", svc_spawn},
    {"iam", "s", svc_iam},
    {NULL, NULL, NULL},
};

/* Protocol 1 (AnyEvent::MP 2.02), PROTOCOL-1.md §7 and §8.3. */
const aemp__service_t aemp__services_p1[] = {
    {"", "", svc_ignore}, /* [""]: a keepalive */
    {"devnull", "", svc_ignore},
    {"time", "s", svc_time},
    {"can", "ss", aemp__p1_can},
    {"eval", "s", aemp__p1_eval},
    {"snd", "s", svc_relay},
    {"mon1", "s", svc_mon1},
    {"mon0", "s", svc_mon0},
    {"kil0", "s", svc_kil_notice},
    {"kil1", "s", svc_kil1},
    {"AnyEvent::MP::_spawn", "ss", aemp__p1_spawn},
    {"AnyEvent::MP::LogCatcher::connect", "?s", aemp__logcatcher_connect},
    {"g_global", "", svc_g_global},
    /* served by a global node (global.c) */
    {"g_slave", "", svc_g_slave},
    {"g_set", "?", svc_g_set},
    {"g_upd", "s?", svc_g_upd},
    {"g_find", "s", svc_g_find},
    {"g_db_family", "s?", svc_g_db_family},
    {"g_db_keys", "s?", svc_g_db_keys},
    {"g_db_values", "s?", svc_g_db_values},
    {"g_mon1", "s", svc_g_mon1},
    {"g_mon0", "s", svc_g_mon0},
    {"g_found", "sA", svc_g_found},
    {"g_reply", "s?", svc_g_reply},
    {"g_chg1", "sO", svc_g_chg1},
    {"g_chg2", "soA", svc_g_chg2},
    {NULL, NULL, NULL},
};

void aemp__services_dispatch(aemp_node_t *n, const char *src, json_t *elems)
{
    /* [""] alone is a request with the empty tag */
    const char *tag = json_array_size(elems) ? json_string_value(json_array_get(elems, 0)) : "";
    if (!tag) {
        aemp__log(n, AEMP_LOG_WARN, "error processing node message: unable to resolve %s",
                  json_is_string(json_array_get(elems, 0)) ? "?" : "");
        return;
    }
    json_t *args = slice(elems, 1);
    if (!args) return;
    const aemp__service_t *s = n->dialect->services;
    while (s->tag && strcmp(s->tag, tag)) s++;
    if (s->tag) {
        if (shape_ok(s->shape, args)) s->fn(n, src, args);
        else aemp__log(n, AEMP_LOG_WARN, "%s: node request %s with bad arguments, dropped", src, tag);
    } else if (aemp__ports_call(n, tag, args)) {
        aemp__log(n, AEMP_LOG_WARN, "error processing node message: unable to resolve %s", tag);
    }
    json_decref(args);
}
