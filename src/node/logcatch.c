/*
 * logcatch.c - AnyEvent::MP::LogCatcher for C nodes. A catcher (2.02's
 * LogCatcher::catch, or aemp_logcatch here) sends a node
 * ["","AnyEvent::MP::LogCatcher::connect",VERSION,PORT,LEVEL]; from then
 * on every log line of that node at LEVEL or more important goes to PORT
 * as [PORT, TIME, CONTEXT, LEVEL, MESSAGE] (AnyEvent::Log's levels, 1
 * fatal .. 9 trace), until PORT dies. Lines are queued and sent from the
 * loop (a line can be logged anywhere, also where sending is not safe);
 * the queue is bounded, lines beyond it are lost (as the Perl module
 * loses what a lost connection held).
 */
#include "node_int.h"

#include <stdio.h>

#define CONTEXT "libaemp"
#define MAX_QUEUED AEMP_LOGCATCH_LINES_MAX
#define MAX_CATCHERS AEMP_LOGCATCH_MAX

typedef struct catcher {
    struct catcher *next;
    aemp_node_t *node;
    char *port;      /* where the lines go */
    char *src;       /* who asked (its authority); NULL: this node */
    int level;       /* AnyEvent::Log level: lines at it or below go */
    aemp_mon_t *mon; /* of port */
} catcher_t;

typedef struct line {
    struct line *next;
    double time;
    int level;
    char text[];
} line_t;

typedef struct catch catch_t;

struct aemp__logcatch {
    catcher_t *catchers;
    catch_t *catches; /* our aemp_logcatch ports' states */
    line_t *head, *tail;
    size_t queued;
    int sending;    /* a send may log: those lines are not caught */
    ev_timer flush; /* sends the queue from the loop */
};

/* The state of one of our aemp_logcatch ports (below). */
struct catch {
    catch_t *next;
    aemp_log_fn cb;
    void *ud;
    char *from;
};

static void catch_free(catch_t *k)
{
    free(k->from);
    free(k);
}

/* Our log level as AnyEvent::Log's. */
static int perl_level(int level)
{
    switch (level) {
    case AEMP_LOG_ERROR: return 4;
    case AEMP_LOG_WARN: return 5;
    case AEMP_LOG_INFO: return 7;
    default: return 8;
    }
}

/* LEVEL as 2.02 takes it: a number, or one of AnyEvent::Log's names;
 * anything else (undef) catches everything. */
static int parse_level(json_t *v)
{
    static const char *const names[] = {"fatal", "alert", "critical", "error", "warn",
                                        "note",  "info",  "debug",    "trace"};
    /* a number is clamped to 0-9 (beyond them it means the same, and
     * the conversion of a huge one would be undefined) */
    double d = 9;
    const char *s = json_string_value(v);
    if (json_is_number(v)) d = json_number_value(v);
    for (int i = 0; s && i < 9; i++)
        if (!strcmp(s, names[i])) return i + 1;
    if (s && *s >= '0' && *s <= '9') d = strtod(s, NULL);
    return d < 0 ? 0 : d > 9 ? 9 : (int)d;
}

static void catcher_free(catcher_t *c)
{
    free(c->port);
    free(c->src);
    free(c);
}

static void drop_lines(struct aemp__logcatch *lc)
{
    while (lc->head) {
        line_t *l = lc->head;
        lc->head = l->next;
        free(l);
    }
    lc->tail = NULL;
    lc->queued = 0;
}

/* The catcher's port died (or its node went away): no more lines. */
static void port_gone(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    (void)portid;
    (void)reason;
    catcher_t *c = ud;
    struct aemp__logcatch *lc = n->logcatch;
    for (catcher_t **pp = lc ? &lc->catchers : NULL; pp && *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    aemp__log(n, AEMP_LOG_DEBUG, "log catcher %s gone", c->port);
    catcher_free(c);
}

static void flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    aemp_node_t *n = w->data;
    struct aemp__logcatch *lc = n->logcatch;
    aemp__enter(n);
    line_t *l = lc->head;
    lc->head = lc->tail = NULL;
    lc->queued = 0;
    lc->sending = 1;
    const char *as = n->acting_for;
    while (l) {
        for (catcher_t *c = lc->catchers; c; c = c->next) {
            if (l->level > c->level) continue;
            /* what a peer asked for is sent in its name */
            n->acting_for = c->src;
            aemp_send(n, c->port, json_pack("[fsis]", l->time, CONTEXT, l->level, l->text));
        }
        line_t *next = l->next;
        free(l);
        l = next;
    }
    n->acting_for = as;
    lc->sending = 0;
    aemp__leave(n);
}

void aemp__logcatch_feed(aemp_node_t *n, int level, const char *text)
{
    struct aemp__logcatch *lc = n->logcatch;
    if (!lc->catchers || lc->sending || lc->queued >= MAX_QUEUED) return;
    size_t len = strlen(text) + 1;
    line_t *l = malloc(sizeof *l + len);
    if (!l) return;
    l->next = NULL;
    l->time = ev_time();
    l->level = perl_level(level);
    memcpy(l->text, text, len);
    if (lc->tail) lc->tail->next = l;
    else lc->head = l;
    lc->tail = l;
    lc->queued++;
    if (!ev_is_active(&lc->flush)) {
        ev_timer_set(&lc->flush, 0, 0);
        ev_timer_start(n->loop, &lc->flush);
    }
}

/* The node's catching state, made on first use; NULL on ENOMEM. */
static struct aemp__logcatch *state(aemp_node_t *n)
{
    if (!n->logcatch && (n->logcatch = calloc(1, sizeof *n->logcatch))) {
        ev_timer_init(&n->logcatch->flush, flush_cb, 0, 0);
        n->logcatch->flush.data = n;
    }
    return n->logcatch;
}

/* Whether portid is a port of the node `who` (a peer's name). */
static int port_of(aemp_node_t *n, const char *portid, const char *who)
{
    size_t len;
    aemp__portid_split(portid, &len);
    char *node = strndup(portid, len);
    aemp__peer_t *p = node && *node ? aemp__peer_get(n, node, 0) : NULL;
    free(node);
    return p && p == aemp__peer_get(n, who, 0);
}

/* ["","AnyEvent::MP::LogCatcher::connect",VERSION,PORT,LEVEL]. */
void aemp__logcatcher_connect(aemp_node_t *n, const char *src, json_t *args)
{
    if (aemp__remote_exec_refused(n)) return;
    const char *port = json_string_value(json_array_get(args, 1));
    if (!state(n)) return;
    if (n->acting_for && !port_of(n, port, n->acting_for)) {
        /* the lines go to the node that asks, and stop when it goes (its
         * port dies with it): a port elsewhere - our own node port, a
         * third node's - would keep a place taken after it left */
        aemp__log(n, AEMP_LOG_WARN, "%s: log catcher %s refused: not a port of that node", src, port);
        return;
    }
    size_t count = 0, its = 0;
    for (catcher_t *o = n->logcatch->catchers; o; o = o->next, count++) {
        if (!strcmp(o->port, port)) {
            o->level = parse_level(json_array_get(args, 2)); /* again: a new level */
            return;
        }
        its += n->acting_for && o->src && !strcmp(o->src, n->acting_for);
    }
    if (count >= MAX_CATCHERS || its >= MAX_CATCHERS / 4) {
        /* one node cannot take every place: a quarter is its part */
        aemp__log(n, AEMP_LOG_WARN, "%s: log catcher %s refused: %zu catchers already (%zu of this "
                  "node's; at most %d, %d each)", src, port, count, its, MAX_CATCHERS,
                  MAX_CATCHERS / 4);
        return;
    }
    catcher_t *c = calloc(1, sizeof *c);
    if (!c || !(c->port = strdup(port)) || (n->acting_for && !(c->src = strdup(n->acting_for)))) {
        if (c) catcher_free(c);
        return;
    }
    c->node = n;
    c->level = parse_level(json_array_get(args, 2));
    if (!(c->mon = aemp_mon(n, port, port_gone, c))) {
        catcher_free(c);
        return;
    }
    c->next = n->logcatch->catchers;
    n->logcatch->catchers = c;
    aemp__log(n, AEMP_LOG_DEBUG, "starting to propagate log messages to %s", port);
}

size_t aemp__logcatch_count(const aemp_node_t *n)
{
    size_t count = 0;
    for (const catcher_t *c = n->logcatch ? n->logcatch->catchers : NULL; c; c = c->next) count++;
    return count;
}

void aemp__logcatch_free(aemp_node_t *n)
{
    struct aemp__logcatch *lc = n->logcatch;
    if (!lc) return;
    if (n->loop) ev_timer_stop(n->loop, &lc->flush);
    /* the monitors go with the ports (aemp__ports_free), unheard */
    while (lc->catchers) {
        catcher_t *c = lc->catchers;
        lc->catchers = c->next;
        catcher_free(c);
    }
    while (lc->catches) {
        catch_t *k = lc->catches;
        lc->catches = k->next;
        catch_free(k);
    }
    drop_lines(lc);
    free(lc);
    n->logcatch = NULL;
}

/* ------------------------------------------------------------------ */
/* catching: the public side                                           */

/* [TIME, CONTEXT, LEVEL, MESSAGE] from the node caught. */
static int line_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    catch_t *k = ud;
    json_t *t = json_array_get(msg, 0), *lv = json_array_get(msg, 2);
    const char *ctx = json_string_value(json_array_get(msg, 1));
    const char *text = json_string_value(json_array_get(msg, 3));
    if (json_is_number(t) && json_is_number(lv) && text)
        k->cb(k->ud, aemp_port_node(port), k->from, json_number_value(t), ctx ? ctx : "",
              (int)json_number_value(lv), text);
    return AEMP_KEEP;
}

/* Our catching port died: its state goes. */
static void catch_end(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    catch_t *k = ud;
    for (catch_t **pp = &n->logcatch->catches; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    catch_free(k);
}

aemp_port_t *aemp_logcatch(aemp_node_t *node, const char *nodeid, int level, aemp_log_fn cb,
                           void *ud)
{
    if (!node || !nodeid || !*nodeid || strchr(nodeid, '#') || !cb || !state(node)) return NULL;
    catch_t *k = calloc(1, sizeof *k);
    aemp_port_t *p = k && (k->from = strdup(nodeid)) ? aemp_port_new(node, line_cb, k) : NULL;
    if (!p) {
        if (k) free(k->from);
        free(k);
        return NULL;
    }
    k->cb = cb;
    k->ud = ud;
    k->next = node->logcatch->catches;
    node->logcatch->catches = k;
    const char *id = aemp_port_id(p);
    /* k goes with the port; the port goes with the node caught */
    if (!aemp_mon(node, id, catch_end, k)) {
        catch_end(node, id, NULL, k);
        aemp_port_kill(p, NULL);
        return NULL;
    }
    aemp_mon_kill(node, nodeid, id);
    /* the library's own fixed request (as aemp_mon's mon1): sent in
     * our name also from inside a peer's message */
    aemp__payload_t pl = {json_pack("[sisi]", "AnyEvent::MP::LogCatcher::connect", 0, id, level),
                          NULL, NULL};
    aemp__send_own(node, nodeid, strlen(nodeid), "", 0, &pl);
    return p;
}
