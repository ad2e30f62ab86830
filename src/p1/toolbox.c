/*
 * toolbox.c - what AnyEvent::MP 2.02's own tools ask of a protocol-1
 * node (PROTOCOL-1.md §7, §9): `eval` (this node runs no Perl: every
 * expression gets an error in 2.02's reply shape, except the few that
 * 2.02's aemp itself sends, which are answered for real), `can` (true
 * for 2.02's fixed requests only) and a remote spawn, which a `secure`
 * node refuses.
 */
#include "p1.h"

#include <ctype.h>
#include <stdio.h>

/* Sends [ELEMENTS..., RESULTS...] to the REPLY port args[from] (its
 * elements after it): 2.02's answer to a request with a REPLY. Steals
 * results. Sent in the requesting peer's name (aemp.h, "Authority"). */
static void answer(aemp_node_t *n, json_t *args, size_t from, json_t *results)
{
    const char *to = json_string_value(json_array_get(args, from));
    json_t *msg = json_array();
    for (size_t i = from + 1; msg && i < json_array_size(args); i++)
        json_array_append(msg, json_array_get(args, i));
    if (msg && results) json_array_extend(msg, results);
    json_decref(results);
    if (to && msg) aemp_send(n, to, msg);
    else json_decref(msg);
}


/* ------------------------------------------------------------------ */
/* eval                                                                */

/* expr without surrounding blanks, one trailing ';' and a trailing
 * "()", into buf; NULL when it does not fit. */
static const char *normalise(const char *expr, char *buf, size_t size)
{
    while (isspace((unsigned char)*expr)) expr++;
    size_t len = strlen(expr);
    while (len && (isspace((unsigned char)expr[len - 1]) || expr[len - 1] == ';')) len--;
    if (len >= 2 && expr[len - 2] == '(' && expr[len - 1] == ')') len -= 2;
    if (len >= size) return NULL;
    memcpy(buf, expr, len);
    buf[len] = 0;
    return buf;
}

static int is_one_of(const char *s, const char *const *names)
{
    for (; *names; names++)
        if (!strcmp(s, *names)) return 1;
    return 0;
}

/* The node ids of every node with an authenticated link, as 2.02's
 * up_nodes lists them (this node not among them). */
static json_t *up_nodes(aemp_node_t *n)
{
    json_t *r = json_array();
    for (aemp__peer_t *p = n->peers_list; r && p; p = p->next)
        if (p->link && p->link->state == LINK_UP && !aemp__is_self(n, p->noderef))
            json_array_append_new(r, json_string(p->noderef));
    return r;
}

/* [ERROR, RESULTS...] for expr, asked by src. */
static json_t *evaluate(aemp_node_t *n, const char *src, const char *expr)
{
    /* qualified names only: 2.02 evaluates in package main, where a bare
     * up_nodes or $NODE is not the kernel's */
    static const char *const up[] = {"AnyEvent::MP::Kernel::up_nodes", NULL};
    static const char *const self[] = {"$AnyEvent::MP::Kernel::NODE", "AnyEvent::MP::Kernel::NODE",
                                       NULL};
    char buf[256];
    const char *e = normalise(expr, buf, sizeof buf);
    if (e && is_one_of(e, up)) {
        /* as big as the network, for a request of a few bytes: on a
         * global node it takes from the asker's reads' budget */
        int ok = aemp__global_read(n, src, n->nlinks, "eval", "up_nodes");
        if (ok < 0) return NULL; /* it waits, and is asked again */
        if (!ok)
            return json_pack("[s]", "up_nodes: over the reads' budget of this node, try later\n");
        json_t *nodes = up_nodes(n);
        json_t *r = json_pack("[s]", "");
        if (r && nodes) json_array_extend(r, nodes);
        json_decref(nodes);
        return r;
    }
    if (e && is_one_of(e, self)) return json_pack("[ss]", "", n->noderef ? n->noderef : "");
    char text[512];
    if (strstr(expr, "AnyEvent::Watchdog::Util::restart"))
        snprintf(text, sizeof text,
                 "%s runs no Perl (a libaemp C node) and no AnyEvent::Watchdog: it cannot be "
                 "restarted remotely\n",
                 n->noderef ? n->noderef : "this node");
    else
        snprintf(text, sizeof text,
                 "%s runs no Perl (a libaemp C node): it cannot evaluate \"%.200s\"\n",
                 n->noderef ? n->noderef : "this node", expr);
    return json_pack("[s]", text);
}

/* ["", "eval", EXPR, REPLY...]: [REPLY-ELEMENTS..., ERROR, RESULTS...]
 * at once; without REPLY nothing. */
void aemp__p1_eval(aemp_node_t *n, const char *src, json_t *args)
{
    if (aemp__remote_exec_refused(n)) return;
    const char *expr = json_string_value(json_array_get(args, 0));
    if (json_array_size(args) < 2) return;
    json_t *r = evaluate(n, src, expr ? expr : "");
    if (!r && n->defer_for > 0) return; /* it waits (aemp__defer_current) */
    answer(n, args, 1, r);
}

/* ------------------------------------------------------------------ */
/* can                                                                 */

/* 2.02's %NODE_REQ: the requests every node serves itself (Kernel.pm;
 * g_slave too: on a plain node it makes the node global), and those a
 * global node adds (Global.pm). A function name (AnyEvent::MP::_spawn, a
 * registered function, g_find on a plain node) is no request of its. */
static const char *const plain_requests[] = {
    "",     "devnull", "time",     "eval",    "snd",    "can",    "mon0",    "mon1",
    "kil0", "kil1",    "g_global", "g_reply", "g_chg1", "g_chg2", "g_found", "g_slave", NULL,
};
static const char *const global_requests[] = {
    "g_set", "g_upd", "g_find", "g_db_family", "g_db_keys", "g_db_values", "g_mon1", "g_mon0", NULL,
};

/* ["", "can", TAG, REPLY...]: "1" when TAG is one of them, else "". */
void aemp__p1_can(aemp_node_t *n, const char *src, json_t *args)
{
    (void)src;
    const char *tag = json_string_value(json_array_get(args, 0));
    int known = is_one_of(tag, plain_requests) ||
                (aemp__global_active(n) && is_one_of(tag, global_requests));
    answer(n, args, 1, json_pack("[s]", known ? "1" : ""));
}

/* ------------------------------------------------------------------ */
/* spawn, unhandled messages                                           */

void aemp__p1_spawn(aemp_node_t *n, const char *src, json_t *args)
{
    if (aemp__remote_exec_refused(n)) return;
    json_t *fargs = json_array();
    for (size_t i = 2; fargs && i < json_array_size(args); i++)
        json_array_append(fargs, json_array_get(args, i));
    if (fargs)
        aemp__ports_spawn(n, src, json_string_value(json_array_get(args, 0)),
                          json_string_value(json_array_get(args, 1)), fargs);
    json_decref(fargs);
}
