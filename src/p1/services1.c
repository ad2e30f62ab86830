/*
 * services1.c - protocol 1's node requests (PROTOCOL-1.md §7, §8.3): the
 * table of what an AnyEvent::MP 2.02 node serves at its node port, the
 * requests only this dialect has, and the global protocol: g_* requests
 * go to the global node (global.c), the master's answers to the naming
 * model and the database client. The shapes are checked, and the shared
 * handlers live, in src/node/services.c.
 */
#include "p1.h"
#include "services.h"

#define ARG(i) AEMP__ARG(args, i)

/* Kill our port NAME with REASON (its watchers hear kil0). */
static void svc_kil1(aemp_node_t *n, const char *src, json_t *args)
{
    json_t *reason = aemp__svc_slice(args, 1);
    if (reason) aemp__ports_kill(n, ARG(0), reason);
    json_decref(reason);
}

/* TAG REPLY... -> "1" when this node serves TAG, else "". */
static void svc_can(aemp_node_t *n, const char *src, json_t *args)
{
    const char *tag = ARG(0);
    const aemp__service_t *s = n->dialect->services;
    while (s->tag && strcmp(s->tag, tag)) s++;
    int known = s->tag || aemp__ports_has_func(n, tag);
    aemp__svc_reply(n, args, 1, json_pack("[s]", known ? "1" : ""));
}

/* Refused as 2.02 refuses it on a secure node (no Perl runs here):
 * logged, no answer. */
static void svc_no_remote_execution(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__log(n, AEMP_LOG_WARN, "error processing node message from %s: remote execution not allowed",
              src);
}

/* ------------------------------------------------------------------ */
/* the master's answers                                                */

static void ans_g_found(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__p1_found(n, ARG(0), json_array_get(args, 1));
}

static void ans_g_reply(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__db_reply(n, ARG(0), json_array_get(args, 1));
}

static void ans_g_chg1(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__db_chg1(n, ARG(0), json_array_get(args, 1));
}

static void ans_g_chg2(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__db_chg2(n, ARG(0), json_array_get(args, 1), json_array_get(args, 2));
}

/* At the node port they count only from the current master: another
 * node cannot send our messages elsewhere. */
#define FROM_MASTER(tag)                                                    \
    static void svc_##tag(aemp_node_t *n, const char *src, json_t *args)    \
    {                                                                       \
        if (aemp__p1_is_master(n, src)) ans_##tag(n, src, args);            \
    }
FROM_MASTER(g_found)
FROM_MASTER(g_reply)
FROM_MASTER(g_chg1)
FROM_MASTER(g_chg2)

#define SHAPE_G_FOUND "sA"
#define SHAPE_G_REPLY "s?"
#define SHAPE_G_CHG1 "sO"
#define SHAPE_G_CHG2 "soA"

/* Our own global database answers our own client directly. */
static const aemp__service_t own_answers[] = {
    {"g_found", SHAPE_G_FOUND, ans_g_found},
    {"g_reply", SHAPE_G_REPLY, ans_g_reply},
    {"g_chg1", SHAPE_G_CHG1, ans_g_chg1},
    {"g_chg2", SHAPE_G_CHG2, ans_g_chg2},
    {NULL, NULL, NULL},
};

void aemp__p1_own_answer(aemp_node_t *n, json_t *elems)
{
    const char *tag = json_string_value(json_array_get(elems, 0));
    json_t *args = aemp__svc_slice(elems, 1);
    if (tag && args) aemp__services_run(n, own_answers, n->noderef, tag, args);
    json_decref(args);
}

/* ------------------------------------------------------------------ */
/* the global protocol, served by a global node (global.c); a bare
 * g_slave makes this node one                                         */

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

/* Protocol 1 (AnyEvent::MP 2.02), PROTOCOL-1.md §7 and §8.3. */
const aemp__service_t aemp__services_p1[] = {
    {"", "", aemp__svc_ignore}, /* [""]: a keepalive */
    {"devnull", "", aemp__svc_ignore},
    {"time", "s", aemp__svc_time},
    {"can", "ss", svc_can},
    {"eval", "", svc_no_remote_execution},
    {"snd", "s", aemp__svc_relay},
    {"mon1", "s", aemp__svc_mon1},
    {"mon0", "s", aemp__svc_mon0},
    {"kil0", "s", aemp__svc_kil_notice},
    {"kil1", "s", svc_kil1},
    {"AnyEvent::MP::_spawn", "ss", aemp__svc_spawn},
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
    {"g_found", SHAPE_G_FOUND, svc_g_found},
    {"g_reply", SHAPE_G_REPLY, svc_g_reply},
    {"g_chg1", SHAPE_G_CHG1, svc_g_chg1},
    {"g_chg2", SHAPE_G_CHG2, svc_g_chg2},
    {NULL, NULL, NULL},
};
