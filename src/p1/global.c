/*
 * global.c - a protocol-1 global node (PROTOCOL-1.md §3, §7, §8.3): when
 * a node becomes global, how it serves the g_* requests of its slaves and
 * of the other global nodes through its global database (gdb.c, which is
 * pure: it gets the requests and returns the messages, sent from here),
 * and the mesh: links to every other global node, kept up with 2.02's
 * back-off. naming1.c calls in here at its hooks (marked "global.c");
 * node.c, link.c and port.c know nothing of it.
 */
#include "p1.h"
#include "addr.h"
#include "gdb.h"
#include "services.h"

#include <stdio.h>

#define MESH_BACKOFF_START 0.6 /* seconds; a retry waits 1-2 times this */
/* Dials of global nodes started per second, all of them together (a
 * burst of as many): 'g is what peers claim, and any authenticated node
 * may claim thousands of global nodes. A dial over the budget waits. */
#define MESH_DIALS_PER_S 20.0
/* The mesh follows the global nodes named in 'g (aemp__gdb_g_drain) at
 * most this often (s): a storm of changes is taken in one turn. */
#define MESH_SYNC_SPACING 0.25
/* a mirrored listener list: how many addresses, how long each */
#define MIRROR_ADDRS_MAX 64
#define MIRROR_ADDR_MAX 256
/* all mirrored listener lists together: at most this part of
 * max_peer_memory, and of our own share's limit (AEMP_GDB_GLOBAL_BYTES_MAX)
 * when that is less */
#define MIRROR_SHARE 4
/* All nodes' reads of whole families together may copy this many times
 * one node's (AEMP_GDB_READ_*). */
#define READS_ALL 8.0
/* How far a node's first watches of families may take its own budget
 * below zero (in bursts). */
#define READ_DEBT 4.0

/* A budget refilled with time (ratelim.c: aemp__bucket_*). */
typedef aemp__bucket_t budget_t;

/* A node whose read waits for all nodes' reads' budget (read_budget):
 * they get it in turn, in the order they came. A node waits with one
 * read at most (its link reads nothing meanwhile), so there are at most
 * as many as links. */
typedef struct rqent {
    struct rqent *next, *prev;
    double cost; /* what its read copies */
    double seen; /* when it last asked (a head not heard of since
                  * STALE_TURN lets the next go) */
    char id[];
} rqent_t;
#define STALE_TURN (2 * AEMP_DEFER_MAX)

/* Another global node we keep a link to. */
typedef struct meshpeer {
    aemp_node_t *node;
    char *id;
    double interval;
    int failures;      /* since its link was last up */
    ev_timer retry;
} meshpeer_t;

struct aemp__global {
    aemp__gdb_t *gdb;       /* NULL until the node is global */
    aemp__map_t announced;  /* nodes that sent g_global while we were not */
    /* nodes whose g_global was answered on their current link (1), and
     * told once that a repeat is ignored (2): the whole database goes to
     * a node once per link, however often it says g_global */
    aemp__map_t heard;
    /* nodes whose listeners we mirror -> bytes of that copy (uintptr_t),
     * and all of them together, bounded (MIRROR_SHARE): however many
     * nodes claim to be global, they cannot fill our own share */
    aemp__map_t mirrors;
    size_t mirrored;
    aemp__map_t mesh;       /* global node id -> meshpeer_t */
    ev_timer sync_w;        /* the next mesh_sync (mesh_sync_soon) */
    double synced_at;       /* when the last one ran */
    budget_t dials;         /* MESH_DIALS_PER_S a second */
    json_t *said;           /* ["g_global"], made once: said on every link, */
    aemp__enc_cache_t said_enc; /* and encoded once per framing */
    /* what reads of whole families may still copy (AEMP_GDB_READ_*):
     * node id -> budget_t of each node that read (keyed, gone with
     * the node), and all nodes' together */
    aemp__map_t reads;
    budget_t reads_all;
    /* the nodes whose reads wait for reads_all, in turn (rqent_t) */
    rqent_t *rq_head, *rq_tail;
    aemp__map_t rq_by;    /* node id -> its rqent_t */
    double rq_total;      /* what they all copy */
    /* what changes may make us send (AEMP_GDB_CHANGE_*): each node's is
     * in its part of the database (aemp__gdb_change_budget), and all
     * nodes' together */
    budget_t changes_all;
};

static void mesh_sync_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void mesh_sync_soon(aemp_node_t *n);

/* The global node's state (made on first use), or NULL. */
static struct aemp__global *gl_of(aemp_node_t *n)
{
    aemp__p1_t *p1 = aemp__p1_of(n);
    if (!p1 || p1->global) return p1 ? p1->global : NULL;
    struct aemp__global *gl = calloc(1, sizeof *gl);
    if (!gl) return NULL;
    /* every map here is keyed by node ids that peers choose: a keyed
     * hash, so that none can make them share one chain */
    aemp__map_key(&gl->announced, n->drawn.map_key);
    aemp__map_key(&gl->heard, n->drawn.map_key);
    aemp__map_key(&gl->mirrors, n->drawn.map_key);
    aemp__map_key(&gl->mesh, n->drawn.map_key);
    aemp__map_key(&gl->reads, n->drawn.map_key);
    aemp__map_key(&gl->rq_by, n->drawn.map_key);
    gl->reads_all.tokens = READS_ALL * AEMP_GDB_READ_BURST;
    gl->changes_all.tokens = READS_ALL * AEMP_GDB_CHANGE_BURST;
    ev_init(&gl->sync_w, mesh_sync_cb);
    gl->sync_w.data = n;
    gl->dials.tokens = MESH_DIALS_PER_S;
    return p1->global = gl;
}

/* The global node's state when there is one, else NULL. */
static struct aemp__global *gl_get(const aemp_node_t *n)
{
    aemp__p1_t *p1 = aemp__p1_of(n);
    return p1 ? p1->global : NULL;
}

int aemp__global_active(const aemp_node_t *n)
{
    struct aemp__global *gl = gl_get(n);
    return gl && gl->gdb;
}

int aemp_node_is_global(const aemp_node_t *n)
{
    return aemp__global_active(n);
}

/* ------------------------------------------------------------------ */
/* output                                                              */

/* Sends what the database returned: [DEST, [TAG, ARGS...]] each, to
 * DEST's node port; an answer to ourselves goes to our own client, from
 * the loop. A message the database gave to many (the same value: a
 * change for a family's watchers) is encoded once. */
static void send_out(aemp_node_t *n, json_t *out)
{
    aemp__enc_cache_t cache = {0};
    const json_t *encoded = NULL; /* what cache holds */
    for (size_t i = 0; i < json_array_size(out) && !n->destroy_pending; i++) {
        json_t *m = json_array_get(out, i);
        const char *dest = json_string_value(json_array_get(m, 0));
        json_t *msg = json_incref(json_array_get(m, 1));
        json_t *next = json_array_get(json_array_get(out, i + 1), 1);
        aemp__payload_t pl = {msg, NULL, NULL};
        if (aemp__is_self(n, dest)) {
            aemp__node_later(n, aemp__p1_own_answer, msg);
        } else if (msg != encoded && msg != next) {
            aemp__send_own(n, dest, strlen(dest), "", 0, &pl);
        } else {
            if (msg != encoded) aemp__enc_cache_free(&cache);
            encoded = msg;
            aemp__send_shared(n, dest, strlen(dest), "", 0, &pl, &cache);
        }
    }
    aemp__enc_cache_free(&cache);
}

/* Tells p that we are global (said on every link of a global node). */
static void say_global(aemp_node_t *n, const aemp__peer_t *p)
{
    struct aemp__global *gl = gl_get(n);
    if (!gl->said) gl->said = json_pack("[s]", "g_global");
    /* the payload takes a reference: the message is never changed */
    aemp__payload_t pl = {json_incref(gl->said), NULL, NULL};
    if (!pl.elems) return; /* out of memory: the next link says it */
    aemp__send_shared(n, p->noderef, strlen(p->noderef), "", 0, &pl, &gl->said_enc);
}

/* ------------------------------------------------------------------ */
/* the mesh                                                            */

/* Seconds until the dial budget has one dial, after taking it if 0. */
static double dial_wait(struct aemp__global *gl, double now)
{
    if (aemp__bucket_take(&gl->dials, now, MESH_DIALS_PER_S, MESH_DIALS_PER_S, 1.0)) return 0;
    return aemp__bucket_wait(&gl->dials, MESH_DIALS_PER_S, MESH_DIALS_PER_S, 1.0);
}

static void mesh_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    meshpeer_t *m = w->data;
    aemp_node_t *n = m->node;
    (void)revents;
    aemp__enter(n);
    if (!aemp_node_is_up(n, m->id)) {
        double wait = dial_wait(gl_get(n), ev_now(loop));
        if (wait > 0) {
            /* spread the waiting ones over the time the budget needs */
            ev_timer_set(&m->retry, aemp__p1_jitter(wait, 10.0), 0.0);
            ev_timer_start(loop, &m->retry);
        } else {
            aemp_node_connect(n, m->id);
        }
    }
    aemp__leave(n);
}

static void mesh_free(aemp_node_t *n, meshpeer_t *m)
{
    ev_timer_stop(n->loop, &m->retry);
    free(m->id);
    free(m);
}

/* Keeps a link to node id when 'g names it (as the database vouches for
 * its global nodes: aemp__gdb_g_vouched), and none when it does not. */
static void mesh_one(void *ctx, const char *id)
{
    aemp_node_t *n = ctx;
    struct aemp__global *gl = gl_get(n);
    meshpeer_t *m = aemp__map_get(&gl->mesh, id);
    if (!aemp__gdb_g_vouched(gl->gdb, id) || aemp__is_self(n, id)) {
        if (!m) return;
        aemp__map_del(&gl->mesh, id);
        /* a node that left 'g is no longer dialled */
        aemp__peer_t *p = aemp__peer_get(n, m->id, 0);
        if (p && !p->link) aemp__peer_forget(p, "no longer a global node");
        mesh_free(n, m);
        return;
    }
    if (m) return;
    if (!(m = calloc(1, sizeof *m)) || !(m->id = strdup(id)) || aemp__map_set(&gl->mesh, id, m)) {
        if (m) free(m->id);
        free(m);
        aemp__gdb_g_redo(gl->gdb); /* out of memory: tried again with the next look */
        return;
    }
    m->node = n;
    m->interval = MESH_BACKOFF_START;
    ev_init(&m->retry, mesh_retry_cb);
    m->retry.data = m;
    if (!aemp_node_is_up(n, id)) {
        ev_timer_set(&m->retry, 0.0, 0.0);
        ev_timer_start(n->loop, &m->retry);
    }
}

/* Keeps links to every global node 'g names, and to no other: looks at
 * those whose naming changed since the last time (O(changes)), or, once
 * after running out of memory, at all. */
static void mesh_sync(aemp_node_t *n)
{
    struct aemp__global *gl = gl_get(n);
    if (aemp__gdb_g_drain(gl->gdb, mesh_one, n)) {
        aemp__map_iter_t it = {0};
        for (aemp__map_ent_t *e; (e = aemp__map_next(&gl->mesh, &it));) mesh_one(n, e->key);
        aemp__map_iter_t iv = {0};
        for (const char *id; aemp__gdb_g_next(gl->gdb, &iv, &id);) mesh_one(n, id);
    }
    if (aemp__gdb_g_pending(gl->gdb) && !n->destroy_pending) mesh_sync_soon(n);
}

static void mesh_sync_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    aemp_node_t *n = w->data;
    (void)revents;
    aemp__enter(n);
    gl_get(n)->synced_at = ev_now(loop);
    if (aemp__global_active(n)) mesh_sync(n);
    aemp__leave(n);
}

/* 'g may have changed: mesh_sync from the loop, soon, once for a storm. */
static void mesh_sync_soon(aemp_node_t *n)
{
    struct aemp__global *gl = gl_get(n);
    if (ev_is_active(&gl->sync_w)) return;
    double wait = gl->synced_at + MESH_SYNC_SPACING - ev_now(n->loop);
    ev_timer_set(&gl->sync_w, wait > 0 ? wait : 0.0, 0.0);
    ev_timer_start(n->loop, &gl->sync_w);
}

/* A global node's link went down: at once, then after 0.6-1.2 s,
 * doubling up to monitor_timeout. */
static void mesh_down(aemp_node_t *n, const char *id)
{
    meshpeer_t *m = aemp__map_get(&gl_get(n)->mesh, id);
    if (!m) return;
    double wait = 0.0;
    if (m->failures++) {
        wait = aemp__p1_jitter(m->interval, 1.0);
        m->interval *= 2;
        if (m->interval > n->timeout) m->interval = n->timeout;
    }
    ev_timer_stop(n->loop, &m->retry);
    ev_timer_set(&m->retry, wait, 0.0);
    ev_timer_start(n->loop, &m->retry);
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

/* Feeds one request (tag, args borrowed) to the database and sends what
 * it returns. */
static int feed(aemp_node_t *n, const char *src, const char *tag, json_t *args)
{
    json_t *out = json_array();
    char why[256];
    int rc = out ? aemp__gdb_request(gl_get(n)->gdb, src, tag, args, out, why, sizeof why)
                 : AEMP_ENOMEM;
    if (rc == AEMP_ENOMEM)
        aemp__log(n, AEMP_LOG_ERROR, "%s: %s: out of memory", src, tag);
    else if (rc)
        aemp__log(n, AEMP_LOG_WARN, "node %s: %s: %s; dropped", src, tag, why);
    send_out(n, out);
    json_decref(out);
    if (!rc) aemp__mem_check(n, NULL); /* its share grew */
    return rc;
}

/* src's budget in map (made full when it has none), or NULL (no memory). */
static budget_t *node_budget(aemp__map_t *map, const char *src, double full, double now)
{
    budget_t *b = aemp__map_get(map, src);
    if (b) return b;
    if (!(b = calloc(1, sizeof *b)) || aemp__map_set(map, src, b)) {
        free(b);
        return NULL;
    }
    b->tokens = full;
    b->at = now;
    return b;
}

/* src waits for its turn at all nodes' reads' budget with a read of
 * cost entries (appended, or its place kept). 0, or -1 (no memory). */
static int rq_add(struct aemp__global *gl, const char *src, double cost, double now)
{
    rqent_t *e = aemp__map_get(&gl->rq_by, src);
    if (!e) {
        size_t l = strlen(src);
        if (!(e = calloc(1, sizeof *e + l + 1))) return -1;
        memcpy(e->id, src, l + 1);
        if (aemp__map_set(&gl->rq_by, e->id, e)) {
            free(e);
            return -1;
        }
        e->prev = gl->rq_tail;
        if (gl->rq_tail) gl->rq_tail->next = e;
        else gl->rq_head = e;
        gl->rq_tail = e;
    }
    gl->rq_total += cost - e->cost;
    e->cost = cost;
    e->seen = now;
    return 0;
}

/* src no longer waits for its turn (served, or gone). */
static void rq_del(struct aemp__global *gl, const char *src)
{
    rqent_t *e = aemp__map_del(&gl->rq_by, src);
    if (!e) return;
    if (e->prev) e->prev->next = e->next;
    else gl->rq_head = e->next;
    if (e->next) e->next->prev = e->prev;
    else gl->rq_tail = e->prev;
    gl->rq_total -= e->cost;
    if (!gl->rq_head) gl->rq_total = 0; /* (no rounding left behind) */
    free(e);
}

/* Whether src may copy cost entries now (AEMP_GDB_READ_*): its own
 * budget and all nodes' hold them. first: a node's first watch of a
 * family (below). what/of name the read in the warning when it is not.
 * 1: yes, taken. -1: not yet, and the request waits on its link until
 * the budget will hold it (aemp__defer_current; the node's link reads
 * nothing meanwhile: a node that reads faster than its budget is slowed
 * down, not answered less). 0: no, and dropped (a request that did not
 * come straight from the node's link, which cannot wait). */
static int read_budget(aemp_node_t *n, struct aemp__global *gl, const char *src, double cost,
                       int first, const char *what, const char *of)
{
    double now = ev_now(n->loop), wait;
    int queue = 0;
    if (n->dispatch_gone) return 0; /* nobody is left to answer */
    budget_t *b = node_budget(&gl->reads, src, AEMP_GDB_READ_BURST, now);
    if (!b) return 1; /* out of memory: all nodes' budget still holds */
    budget_t was = *b;
    const double rate = AEMP_GDB_READ_ENTRIES_PER_S, burst = AEMP_GDB_READ_BURST;
    if (first) {
        /* a node's first watch of a family is sent once (per master link):
         * lost, its watch would never hear of a change. It is answered,
         * and goes on the node's own account, down to a debt of
         * READ_DEBT bursts; only a node that has read that much more
         * (say, by watching and unwatching in a loop) waits */
        aemp__bucket_take(b, now, rate, burst, 0);
        if (b->tokens - cost >= -READ_DEBT * burst) {
            b->tokens -= cost;
            return 1;
        }
        wait = (cost - READ_DEBT * burst - b->tokens) / rate;
    } else if (aemp__bucket_take(b, now, rate, burst, cost)) {
        /* all nodes' budget goes to the nodes that wait for it in turn:
         * while one waits for enough to gather, others do not take it
         * from under it (readers with ids of their own to spare would
         * otherwise keep an honest reader of a big family waiting) */
        while (gl->rq_head && gl->rq_head->seen + STALE_TURN < now) rq_del(gl, gl->rq_head->id);
        int turn = !gl->rq_head || !strcmp(gl->rq_head->id, src);
        if (turn && aemp__bucket_take(&gl->reads_all, now, READS_ALL * rate, READS_ALL * burst, cost)) {
            rq_del(gl, src);
            return 1;
        }
        *b = was; /* (not taken from its own) */
        /* its turn: until the budget holds it; else until what waits
         * would be served (at most; it asks again then) */
        aemp__bucket_take(&gl->reads_all, now, READS_ALL * rate, READS_ALL * burst, 0);
        double ahead = turn ? cost : gl->rq_total + (aemp__map_get(&gl->rq_by, src) ? 0 : cost);
        wait = (ahead - gl->reads_all.tokens) / (READS_ALL * rate);
        queue = 1;
    } else {
        wait = aemp__bucket_wait(b, rate, burst, cost);
        /* (heard of: a place it holds in the queue is not stale) */
        rqent_t *e = aemp__map_get(&gl->rq_by, src);
        if (e) e->seen = now;
    }
    int deferred = aemp__defer_current(n, wait);
    if (queue && deferred) rq_add(gl, src, cost, now);
    aemp__log(n, AEMP_LOG_WARN, "node %s: %s of %s (%.0f entries) %s: over the reads' budget "
              "of %u entries a second (its own, or all nodes')", src, what, of, cost - 1.0,
              deferred ? "waits, and the node's link with it" : "dropped",
              AEMP_GDB_READ_ENTRIES_PER_S);
    return deferred ? -1 : 0;
}

/* Whether src's read of a whole family (tag, args) may be answered now
 * (read_budget). */
static int read_allowed(aemp_node_t *n, struct aemp__global *gl, const char *src, const char *tag,
                        json_t *args)
{
    if (strcmp(tag, "g_db_family") && strcmp(tag, "g_db_keys") && strcmp(tag, "g_db_values") &&
        strcmp(tag, "g_mon1"))
        return 1;
    const char *fam = json_string_value(json_array_get(args, 0));
    if (!fam || aemp__is_self(n, src)) return 1; /* (malformed: the database says so) */
    double cost = 1.0 + (double)json_object_size(aemp__gdb_family(gl->gdb, fam));
    int first = !strcmp(tag, "g_mon1") && !aemp__gdb_watches(gl->gdb, src, fam);
    return read_budget(n, gl, src, cost, first, tag, fam);
}

int aemp__global_read(aemp_node_t *n, const char *src, size_t entries, const char *what,
                      const char *of)
{
    struct aemp__global *gl = gl_get(n);
    if (!gl || !gl->gdb || !src || aemp__is_self(n, src)) return 1;
    return read_budget(n, gl, src, 1.0 + (double)entries, 0, what, of);
}

/* What src's change (g_upd) or whole database (g_slave, g_set) makes
 * us send, in entries: each key set or deleted, to each node it goes to
 * (aemp__gdb_fanout). Walks the request, never the database. */
static double change_cost(struct aemp__global *gl, const char *src, const char *tag, json_t *args)
{
    json_t *a0 = json_array_get(args, 0);
    if (!strcmp(tag, "g_upd")) {
        const char *fam = json_string_value(a0);
        if (!fam) return 0; /* (malformed: the database says so) */
        double keys = (double)(json_object_size(json_array_get(args, 1)) +
                               json_array_size(json_array_get(args, 2)));
        return keys * (double)aemp__gdb_fanout(gl->gdb, src, fam);
    }
    if (strcmp(tag, "g_slave") && strcmp(tag, "g_set")) return 0;
    double cost = 0;
    const char *fam;
    json_t *h;
    json_object_foreach(a0, fam, h) cost += (double)json_object_size(h) *
                                            (double)aemp__gdb_fanout(gl->gdb, src, fam);
    return cost;
}

/* Whether src's change (tag, args) may be applied now: what it makes us
 * send to watchers and the other global nodes takes from src's own and
 * all nodes' changes' budget (AEMP_GDB_CHANGE_*). Over its own, the
 * change waits on src's link (which reads nothing meanwhile) as long and
 * as often as that budget needs: only src is slowed down. Over all
 * nodes', it waits once, then is applied: what all nodes' budget cannot
 * bear (it never goes below zero) goes on src's own account. A change
 * that cannot wait (not straight from src's link) is applied on the same
 * terms; one from a node that is gone is dropped (its entries are
 * deleted right after: the watchers would hear of it twice). 1: apply;
 * 0: not now. */
static int change_allowed(aemp_node_t *n, struct aemp__global *gl, const char *src,
                          const char *tag, json_t *args)
{
    if (aemp__is_self(n, src)) return 1;
    double cost = change_cost(gl, src, tag, args), now = ev_now(n->loop);
    if (cost <= 0) return 1;
    const char *of = !strcmp(tag, "g_upd") ? json_string_value(json_array_get(args, 0))
                                           : "its database";
    if (n->dispatch_gone) {
        aemp__log(n, AEMP_LOG_WARN, "node %s: %s of %s dropped: the node is gone", src, tag, of);
        return 0;
    }
    const double rate = AEMP_GDB_CHANGE_SENDS_PER_S, burst = AEMP_GDB_CHANGE_BURST;
    const double all_rate = READS_ALL * rate, all_burst = READS_ALL * burst;
    budget_t full = {burst, now}, *b = aemp__gdb_change_budget(gl->gdb, src);
    if (!b) b = &full; /* (out of memory: all nodes' budget still holds) */
    if (b->at <= 0) *b = full; /* (a new part: full) */
    aemp__bucket_take(b, now, rate, burst, 0); /* (both refilled to now) */
    aemp__bucket_take(&gl->changes_all, now, all_rate, all_burst, 0);
    /* (a wait > 0: the bucket does not hold the cost) */
    double wait = aemp__bucket_wait(b, rate, burst, cost);
    if (wait <= 0 && !n->dispatch_again)
        wait = aemp__bucket_wait(&gl->changes_all, all_rate, all_burst, cost);
    if (wait > 0 && aemp__defer_current(n, wait)) {
        aemp__log(n, AEMP_LOG_WARN, "node %s: %s of %s (%.0f sends) waits, and the node's link "
                  "with it: over the changes' budget of %u sends a second (its own, or all "
                  "nodes')", src, tag, of, cost, AEMP_GDB_CHANGE_SENDS_PER_S);
        return 0;
    }
    aemp__bucket_charge(&gl->changes_all, b, cost);
    return 1;
}

/* Whether the answer to node's g_global (the whole database, once per
 * link) may go now. Node ids cost nothing, so a node's own budget would
 * not bound it (each new id has a full one): it takes from all nodes'
 * reads' budget, and over it waits on the node's link (a reconnecting
 * insider is slowed down, an honest global node only delayed). It waits
 * once, for as long as the budget needs (at most AEMP_DEFER_MAX): then
 * it is answered, even into debt, so that readers who keep all nodes'
 * budget spent cannot keep a global node from its database for good.
 * Where it cannot wait (not straight from the link) it is answered. */
static int global_answer_allowed(aemp_node_t *n, struct aemp__global *gl, const char *node)
{
    if (n->dispatch_gone) return 0; /* nobody is left to answer */
    double cost = 1.0 + (double)aemp__gdb_entries(gl->gdb), now = ev_now(n->loop);
    const double rate = READS_ALL * AEMP_GDB_READ_ENTRIES_PER_S;
    const double burst = READS_ALL * AEMP_GDB_READ_BURST;
    if (aemp__bucket_take(&gl->reads_all, now, rate, burst, cost)) return 1;
    double wait = aemp__bucket_wait(&gl->reads_all, rate, burst, cost);
    if (n->dispatch_again || !aemp__defer_current(n, wait)) {
        gl->reads_all.tokens -= cost;
        return 1;
    }
    aemp__log(n, AEMP_LOG_WARN, "node %s: g_global (the database, %.0f entries) waits, and the "
              "node's link with it: over all nodes' reads' budget of %.0f entries a second", node,
              cost - 1.0, rate);
    return 0;
}

/* g_global from node (a global node): 2.02's g_global_connect, once per
 * link. 2.02 runs it for every g_global, forgetting the node's entries
 * and sending it the whole database each time: a 16-byte message that
 * costs the seed a walk of everything, which a peer could repeat at will.
 * A node that is global says it once, when its link comes up. */
static void global_connect(aemp_node_t *n, const char *node)
{
    struct aemp__global *gl = gl_get(n);
    uintptr_t was = (uintptr_t)aemp__map_get(&gl->heard, node);
    if (was) {
        if (was == 1 && !aemp__map_set(&gl->heard, node, (void *)2))
            aemp__log(n, AEMP_LOG_WARN, "%s: g_global again on the same link, ignored", node);
        return;
    }
    if (!global_answer_allowed(n, gl, node)) return;
    aemp__map_set(&gl->heard, node, (void *)1); /* out of memory: answered again */
    json_t *none = json_array();
    if (none && !feed(n, node, "g_global", none)) aemp_db_set(n, "'g", node, NULL);
    json_decref(none);
}

int aemp__global_start(aemp_node_t *n)
{
    struct aemp__global *gl = gl_of(n);
    if (!gl) return AEMP_ENOMEM;
    if (gl->gdb) return 0;
    if (!(gl->gdb = aemp__gdb_new(n->noderef))) return AEMP_ENOMEM;
    aemp__log(n, AEMP_LOG_INFO, "starting global service.");
    /* our own master: the database and every waiting request go to us */
    aemp__p1_master_is_self(n);
    aemp_db_set(n, "'g", n->noderef, NULL);
    /* (our own doing, though it may run inside a peer's g_slave: nothing
     * of it may wait on that peer's link, aemp__defer_current) */
    aemp__link_t *dl = n->dispatch_link;
    n->dispatch_link = NULL;
    for (aemp__peer_t *p = n->peers_list; p && !n->destroy_pending; p = p->next) {
        if (!p->link || p->link->state != LINK_UP) continue;
        say_global(n, p);
        if (aemp__map_get(&gl->announced, p->noderef)) global_connect(n, p->noderef);
    }
    n->dispatch_link = dl;
    aemp__map_free(&gl->announced);
    mesh_sync(n);
    return 0;
}

/* Whether node's listeners l (from its g_set) go into our own database.
 * 2.02 mirrors them for any sender, without a limit; here they count in
 * our own share of the database, whose limits also hold our own
 * writes, so peers must not fill it: only a node that said g_global on
 * its link (g_set is the answer to ours), and only a list of addresses
 * of the size a node has (its entry in its own share is not affected). */
static int mirrorable(aemp_node_t *n, struct aemp__global *gl, const char *node, json_t *l,
                      size_t bytes)
{
    if (!aemp__map_get(&gl->heard, node)) return 0;
    size_t cnt = json_array_size(l);
    int ok = json_is_array(l) && cnt <= MIRROR_ADDRS_MAX;
    for (size_t i = 0; ok && i < cnt; i++) {
        json_t *a = json_array_get(l, i);
        ok = json_is_string(a) && json_string_length(a) <= MIRROR_ADDR_MAX;
    }
    if (!ok) {
        aemp__log(n, AEMP_LOG_WARN, "%s: its listeners are not mirrored: not a list of at most %d "
                  "addresses of up to %d bytes", node, MIRROR_ADDRS_MAX, MIRROR_ADDR_MAX);
        return 0;
    }
    size_t had = (uintptr_t)aemp__map_get(&gl->mirrors, node);
    /* a part of what our own share may hold, whatever max_peer_memory */
    size_t cap = n->cfg.max_peer_memory < AEMP_GDB_GLOBAL_BYTES_MAX ? n->cfg.max_peer_memory
                                                                    : AEMP_GDB_GLOBAL_BYTES_MAX;
    size_t budget = cap / MIRROR_SHARE;
    if (gl->mirrored - had + bytes > budget) {
        aemp__log(n, AEMP_LOG_WARN, "%s: its listeners are not mirrored: all nodes' mirrored "
                  "listeners would come to %zu bytes, over %zu (a quarter of max_peer_memory, at "
                  "most of the own share's limit)", node,
                  gl->mirrored - had + bytes, budget);
        return 0;
    }
    return 1;
}

/* node's listeners as we mirror them: l (a new reference), or none */
static void mirror_set(aemp_node_t *n, struct aemp__global *gl, const char *node, json_t *l,
                       size_t bytes)
{
    size_t had = (uintptr_t)aemp__map_get(&gl->mirrors, node);
    if (l) {
        int rc = aemp__map_set(&gl->mirrors, node, (void *)(uintptr_t)bytes);
        if (rc) json_decref(l);
        else rc = aemp_db_set(n, "'l", node, l); /* steals l */
        if (!rc) {
            gl->mirrored = gl->mirrored - had + bytes;
            return;
        }
        aemp__log(n, AEMP_LOG_WARN, "%s: its listeners are not mirrored: %s", node,
                  aemp_strerror(rc));
    }
    if (!had && !aemp__map_get(&gl->mirrors, node)) return;
    aemp_db_del(n, "'l", node);
    aemp__map_del(&gl->mirrors, node);
    gl->mirrored -= had;
}

void aemp__global_request(aemp_node_t *n, const char *src, const char *tag, json_t *args)
{
    struct aemp__global *gl = gl_of(n);
    if (!gl) return;
    if (!strcmp(tag, "g_slave") && !gl->gdb && aemp__global_start(n)) return;
    if (!gl->gdb) {
        /* a node that is not global only notes who is */
        if (!strcmp(tag, "g_global")) aemp__map_set(&gl->announced, src, (void *)1);
        else aemp__log(n, AEMP_LOG_WARN, "error processing node message: unable to resolve %s", tag);
        return;
    }
    if (!strcmp(tag, "g_global")) {
        if (!aemp__is_self(n, src)) global_connect(n, src);
    } else {
        /* g_set carries the sender's listeners, which we mirror (2.02) */
        json_t *l = NULL;
        if (read_allowed(n, gl, src, tag, args) <= 0) return;
        if (!change_allowed(n, gl, src, tag, args)) return;
        if (!strcmp(tag, "g_set"))
            l = json_incref(json_object_get(json_object_get(json_array_get(args, 0), "'l"), src));
        if (!feed(n, src, tag, args) && l) {
            size_t bytes = aemp__gdb_cost(src, l);
            /* a list refused leaves no older copy of the node's behind */
            mirror_set(n, gl, src, mirrorable(n, gl, src, l, bytes) ? json_incref(l) : NULL, bytes);
        }
        json_decref(l);
    }
    /* the mesh follows the global nodes 'g names, when that changed */
    if (!n->destroy_pending && aemp__global_active(n) && aemp__gdb_g_pending(gl->gdb))
        mesh_sync_soon(n);
}

void aemp__global_own_request(aemp_node_t *n, json_t *elems)
{
    const char *tag = json_string_value(json_array_get(elems, 0));
    json_t *args = aemp__svc_slice(elems, 1);
    if (tag && args) aemp__global_request(n, n->noderef, tag, args);
    json_decref(args);
}

/* ------------------------------------------------------------------ */
/* hooks of the naming model                                           */

void aemp__global_link_up(aemp_node_t *n, aemp__peer_t *p, aemp__link_t *l)
{
    struct aemp__global *gl = gl_get(n);
    if (gl) {
        aemp__map_del(&gl->heard, p->noderef); /* a new link: heard anew */
        /* a read that waited on a link this one replaces went with it */
        rq_del(gl, p->noderef);
    }
    if (!aemp__global_active(n)) return;
    say_global(n, p);
    meshpeer_t *m = aemp__map_get(&gl->mesh, p->noderef);
    if (m) {
        m->failures = 0;
        m->interval = MESH_BACKOFF_START;
        ev_timer_stop(n->loop, &m->retry);
    }
}

size_t aemp__global_held(aemp_node_t *n, const char *peer)
{
    if (!aemp__global_active(n)) return 0;
    aemp__gdb_t *g = gl_get(n)->gdb;
    if (peer) return aemp__is_self(n, peer) ? 0 : aemp__gdb_node_bytes(g, peer);
    size_t all = aemp__gdb_bytes(g), own = aemp__gdb_node_bytes(g, n->noderef);
    return all > own ? all - own : 0;
}

void aemp__global_peer_down(aemp_node_t *n, aemp__peer_t *p)
{
    struct aemp__global *gl = gl_get(n);
    if (!gl || (p->link && p->link->state == LINK_UP)) return; /* replaced, not down */
    aemp__map_del(&gl->heard, p->noderef);
    /* its budgets go with it (the maps hold linked nodes only; all
     * nodes' budgets bound what reconnecting could buy) */
    free(aemp__map_del(&gl->reads, p->noderef));
    rq_del(gl, p->noderef);
    if (!gl->gdb) {
        aemp__map_del(&gl->announced, p->noderef);
        return;
    }
    char *id = strdup(p->noderef);
    json_t *out = json_array();
    if (id && out) {
        if (aemp__gdb_node_down(gl->gdb, id, out))
            aemp__log(n, AEMP_LOG_ERROR, "%s: node down: out of memory", id);
        send_out(n, out);
        aemp_db_del(n, "'g", id);
        mirror_set(n, gl, id, NULL, 0);
        if (!n->destroy_pending) {
            mesh_down(n, id);
            /* a failed dial changes nothing in 'g: no look at the mesh */
            if (aemp__gdb_g_pending(gl->gdb)) mesh_sync_soon(n);
        }
    }
    json_decref(out);
    free(id);
}

/* Where p listens, from the view ('l): set as its endpoints (NULL
 * returned), or why it cannot be reached. */
const char *aemp__global_resolve(aemp_node_t *n, aemp__peer_t *p)
{
    json_t *addrs = json_object_get(aemp__gdb_family(gl_get(n)->gdb, "'l"), p->noderef);
    size_t k;
    char **eps = aemp__p1_addrs(n, p->noderef, addrs, &k);
    if (!k) {
        aemp__strv_free(eps);
        return "no known address";
    }
    aemp__peer_set_endpoints(p, eps, k);
    return NULL;
}

void aemp__global_free(aemp_node_t *n)
{
    struct aemp__global *gl = gl_get(n);
    if (!gl) return;
    ev_timer_stop(n->loop, &gl->sync_w);
    aemp__map_iter_t it = {0};
    for (aemp__map_ent_t *e; (e = aemp__map_next(&gl->mesh, &it));) mesh_free(n, e->value);
    aemp__map_free(&gl->mesh);
    aemp__map_free(&gl->announced);
    aemp__map_free(&gl->heard);
    aemp__map_free(&gl->mirrors);
    it = (aemp__map_iter_t){0};
    for (aemp__map_ent_t *e; (e = aemp__map_next(&gl->reads, &it));) free(e->value);
    aemp__map_free(&gl->reads);
    while (gl->rq_head) rq_del(gl, gl->rq_head->id);
    aemp__map_free(&gl->rq_by);
    aemp__gdb_free(gl->gdb);
    json_decref(gl->said);
    aemp__enc_cache_free(&gl->said_enc);
    free(gl);
    aemp__p1_of(n)->global = NULL;
}
