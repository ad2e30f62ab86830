/*
 * port.c - ports, monitors and the node-port services (PROTOCOL §6, §7).
 *
 * Local ports live in a table by local id. Our own monitors each watch a
 * port id (local or remote) and have an action; they are indexed by the
 * local id they watch and, for another node's ports, by that node's name.
 * Other nodes' watches of our ports (mon1) are kept apart, in three
 * indexes (by watcher and port, by port, by watcher). So what a port's
 * death, a kil notice, a peer's failure, mon0 or departure costs does not
 * grow with the monitors and watches anybody has made.
 * A fired monitor is moved to the "due" list with its reason and run from
 * an idle watcher, so no monitor action ever runs inside the call that
 * killed the port. Remote ports are watched with mon1/mon0 and learn of
 * deaths through kil; a failing link fires every monitor on its node.
 */
#include "node_int.h"

#include "addr.h"

#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>

enum mon_kind { MON_CB, MON_KILL, MON_SEND, MON_REMOTE };

/* The indexes of other nodes' watches (MON_REMOTE): by (watcher, local
 * id), by local id and by watcher; each maps its key to a wlist. A
 * watcher's list (W_PEER) is keyed by its peer's name, and moves with it
 * when that changes (aemp__ports_watcher_renamed); the pair index names
 * the watcher by that list, so a rename does not touch each watch. */
enum { W_PAIR, W_PORT, W_PEER, W_OWN, W_NODE, W_N };
/* W_OWN: our own monitors (not MON_REMOTE) by the local id they watch,
 * on this node or another: a port's death and a kil notice look at the
 * monitors of that id only, never at all of ours. W_NODE: those of
 * them that watch another node's port, by the node's name as given: a
 * peer's failure looks at the lists of its own names (and of the names
 * that lead to a peer by their endpoints only, kept apart in
 * ports->multi), never at all of our monitors. */
struct wlist {
    struct aemp_mon *head;
    size_t count;
    char *key; /* its key in the index */
    /* W_NODE: the key names several endpoints (ports->multi) */
    int multi;
    struct wlist *mnext, *mprev;
};

struct aemp_mon {
    aemp_node_t *node;
    struct aemp_mon *next, *prev; /* in ports->due, once fired */
    struct aemp_mon *wnext[W_N], *wprev[W_N]; /* MON_REMOTE: in wl[] */
    struct wlist *wl[W_N];
    enum mon_kind kind;
    char *portid;      /* what is watched, "NODE#LOCAL" */
    const char *local; /* its local id (points into portid) */
    char *nodename;    /* its node, NUL-terminated */
    size_t nodelen;
    int remote;        /* watched port is on another node */
    aemp_mon_fn cb;
    void *ud;
    char *target;      /* MON_KILL / MON_SEND: port id (MON_REMOTE: wl[W_PEER]) */
    json_t *elements;  /* MON_SEND */
    json_t *reason;    /* set once due */
};

typedef struct rcv {
    struct rcv *next;
    char *tag;         /* or NULL */
    json_t *pattern;   /* or NULL */
    aemp_recv_fn cb;
    void *ud;
    int removed;
} rcv_t;

struct aemp_port {
    aemp_node_t *node;
    char *id;
    const char *local;
    size_t local_len;
    rcv_t *rcvs;
    aemp_recv_fn mini;
    void *mini_ud;
    int dead;
    int busy;          /* inside one of its callbacks */
    int spawning;      /* made by a local spawn; its init runs from the loop */
    struct aemp_port *next_dead;
};

/* A registered name: what it points at, and its place among the names
 * of the same port of ours (NULL links when the port is not ours). */
typedef struct regname {
    struct regname *next, *prev;
    const char *name;  /* its key (in this allocation) */
    const char *local; /* the port's local id, in portid; NULL: not ours */
    char portid[];     /* then the name */
} regname_t;

typedef struct func {
    aemp_func_fn fn;
    void *ud;
} func_t;

struct aemp__ports {
    char uniq[16];
    char counter[16];  /* "a", "b", ... "z", "aa", ... */
    aemp__map_t ports; /* local id -> port */
    aemp__map_t names; /* name -> regname_t */
    /* local id of ours -> the first of the names that point at it (a
     * regname_t list): a port's death finds its names without a look
     * at the others */
    aemp__map_t named;
    unsigned long visits; /* monitors and names looked at (for tests) */
    aemp__map_t funcs; /* name -> func_t */
    aemp__map_t widx[W_N];             /* other nodes' watches, our own by id and node */
    struct wlist *multi;               /* W_NODE lists of names with several endpoints */
    size_t nwatches;                   /* of them, in all */
    struct aemp_mon *due_head, *due_tail;
    aemp_port_t *dead; /* killed ports, freed when callbacks unwind */
    /* the port the last remote message went to: a stream of messages to
     * one port is the common case, and comparing its id costs less than
     * hashing it (cleared when that port dies) */
    aemp_port_t *last;
    ev_idle due_w;
    ev_check reap_w;
};

static void due_cb(struct ev_loop *loop, ev_idle *w, int revents);
static void reap_cb(struct ev_loop *loop, ev_check *w, int revents);

static aemp__ports_t *ports_of(aemp_node_t *n)
{
    if (n->ports) return n->ports;
    aemp__ports_t *ps = calloc(1, sizeof *ps);
    if (!ps) return NULL;
    /* UNIQ: random, from an alphabet without '#' and '.' */
    static const char abc[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const unsigned char *r = n->drawn.uniq; /* drawn when the node was made */
    size_t len = sizeof n->drawn.uniq;
    for (size_t i = 0; i < len; i++) ps->uniq[i] = abc[r[i] % 62];
    ps->uniq[len] = 0;
    ev_idle_init(&ps->due_w, due_cb);
    ps->due_w.data = n;
    ev_set_priority(&ps->due_w, EV_MAXPRI);
    ev_check_init(&ps->reap_w, reap_cb);
    ps->reap_w.data = n;
    n->ports = ps;
    return ps;
}

/* The next local id: UNIQ.ID with ID counting like Perl's magic ++. */
static void next_local(aemp__ports_t *ps, char *out, size_t n)
{
    size_t len = strlen(ps->counter);
    if (!len) {
        strcpy(ps->counter, "a");
    } else {
        int i = (int)len - 1;
        while (i >= 0 && ps->counter[i] == 'z') ps->counter[i--] = 'a';
        if (i >= 0) {
            ps->counter[i]++;
        } else if (len + 1 < sizeof ps->counter) {
            memmove(ps->counter + 1, ps->counter, len + 1);
            ps->counter[0] = 'a';
        }
    }
    snprintf(out, n, "%s.%s", ps->uniq, ps->counter);
}

/* ------------------------------------------------------------------ */
/* sending                                                             */

/* Sends a payload to portid ("NODE#LOCAL" or a bare node for its node
 * port). */
static int send_portid(aemp_node_t *n, const char *portid, const aemp__payload_t *pl)
{
    size_t nodelen;
    const char *local = aemp__portid_split(portid, &nodelen);
    int rc = *local ? 0 : aemp__node_port_for(n, portid, nodelen);
    if (rc) {
        aemp__payload_drop(pl);
        return rc;
    }
    return aemp__send(n, portid, nodelen, local, strlen(local), pl);
}

int aemp_send(aemp_node_t *n, const char *portid, json_t *elements)
{
    if (!n || !portid || !json_is_array(elements)) {
        json_decref(elements);
        return AEMP_EINVAL;
    }
    aemp__payload_t pl = {elements, NULL, NULL};
    return send_portid(n, portid, &pl);
}

int aemp_sendf(aemp_node_t *n, const char *portid, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aemp__payload_t pl = {NULL, fmt, &ap};
    int rc;
    if (n && portid && fmt) {
        rc = send_portid(n, portid, &pl);
    } else {
        if (fmt) aemp__payload_drop(&pl);
        rc = AEMP_EINVAL;
    }
    va_end(ap);
    return rc;
}

/* Sends json_pack(fmt, ...) to the node port of node[0..nodelen). */
static int node_sendf(aemp_node_t *n, const char *node, size_t nodelen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aemp__payload_t pl = {NULL, fmt, &ap};
    int rc = aemp__send(n, node, nodelen, "", 0, &pl);
    va_end(ap);
    return rc;
}

/* ------------------------------------------------------------------ */
/* monitors                                                            */

/* Whether the node name key names several endpoints: such a name leads
 * to the peer of one of them without being a key of the peer table. */
static int names_endpoints(aemp_node_t *n, const char *key)
{
    size_t cnt = 0;
    aemp__strv_free(n->dialect->name_endpoints(key, &cnt));
    return cnt > 1;
}

static int windex_add(aemp__ports_t *ps, struct aemp_mon *m, int i, const char *key)
{
    struct wlist *b = aemp__map_get(&ps->widx[i], key);
    if (!b) {
        if (!(b = calloc(1, sizeof *b)) || !(b->key = strdup(key)) ||
            aemp__map_set(&ps->widx[i], key, b)) {
            if (b) free(b->key);
            free(b);
            return AEMP_ENOMEM;
        }
        if (i == W_NODE && (b->multi = names_endpoints(m->node, key))) {
            b->mnext = ps->multi;
            if (ps->multi) ps->multi->mprev = b;
            ps->multi = b;
        }
    }
    m->wl[i] = b;
    m->wprev[i] = NULL;
    m->wnext[i] = b->head;
    if (b->head) b->head->wprev[i] = m;
    b->head = m;
    b->count++;
    if (i == W_PEER) ps->nwatches++;
    return 0;
}

static void windex_del(aemp__ports_t *ps, struct aemp_mon *m, int i)
{
    struct wlist *b = m->wl[i];
    if (!b) return;
    if (m->wprev[i]) m->wprev[i]->wnext[i] = m->wnext[i];
    else b->head = m->wnext[i];
    if (m->wnext[i]) m->wnext[i]->wprev[i] = m->wprev[i];
    m->wl[i] = NULL;
    m->wnext[i] = m->wprev[i] = NULL;
    if (i == W_PEER) ps->nwatches--;
    if (!--b->count) {
        aemp__map_del(&ps->widx[i], b->key);
        if (b->multi) {
            if (b->mprev) b->mprev->mnext = b->mnext;
            else ps->multi = b->mnext;
            if (b->mnext) b->mnext->mprev = b->mprev;
        }
        free(b->key);
        free(b);
    }
}

/* The first watch in index i under key, or NULL. */
static struct aemp_mon *windex_first(aemp__ports_t *ps, int i, const char *key)
{
    struct wlist *b = aemp__map_get(&ps->widx[i], key);
    return b ? b->head : NULL;
}

static void mon_unlink(aemp__ports_t *ps, struct aemp_mon *m)
{
    if (m->kind == MON_REMOTE) {
        for (int i = 0; i < W_N; i++) windex_del(ps, m, i);
        return;
    }
    windex_del(ps, m, W_OWN);
    windex_del(ps, m, W_NODE);
}

static void mon_free(struct aemp_mon *m)
{
    free(m->portid);
    free(m->nodename);
    free(m->target);
    json_decref(m->elements);
    json_decref(m->reason);
    free(m);
}

/* Moves m from the live list to the due list with reason (increments).
 * A remote node's watch is answered at once: that is only a message, and
 * sending it now keeps it ahead of anything the port's death causes
 * later (as a Perl node orders it). */
static void mon_fire(aemp__ports_t *ps, struct aemp_mon *m, json_t *reason)
{
    /* the watcher by the name its peer has now (its list's key) */
    char *to = m->kind == MON_REMOTE && m->wl[W_PEER] ? strdup(m->wl[W_PEER]->key) : NULL;
    mon_unlink(ps, m);
    if (m->kind == MON_REMOTE) {
        json_t *e = to ? json_pack("[ss]", m->node->dialect->tags.port_died, m->local) : NULL;
        if (e) {
            /* to the watcher's node port: our own word, whoever's
             * message made the port die */
            json_array_extend(e, reason);
            aemp__payload_t pl = {e, NULL, NULL};
            aemp__send_own(m->node, to, strlen(to), "", 0, &pl);
        }
        free(to);
        mon_free(m);
        return;
    }
    m->reason = json_incref(reason);
    m->next = NULL;
    if (ps->due_tail) ps->due_tail->next = m;
    else ps->due_head = m;
    m->prev = ps->due_tail;
    ps->due_tail = m;
    ev_idle_start(m->node->loop, &ps->due_w);
}

/* The first of our own monitors of the local id local (W_OWN), or NULL. */
static struct aemp_mon *own_first(aemp__ports_t *ps, const char *local)
{
    struct wlist *b = aemp__map_get(&ps->widx[W_OWN], local);
    return b ? b->head : NULL;
}

/* Our own monitors of the remote port portid (its local id at local),
 * but except. */
static int remote_watchers(aemp__ports_t *ps, const char *portid, const char *local,
                           struct aemp_mon *except)
{
    int c = 0;
    for (struct aemp_mon *m = own_first(ps, local); m; m = m->wnext[W_OWN], ps->visits++)
        if (m != except && m->remote && !strcmp(m->portid, portid)) c++;
    return c;
}

/* A monitor of portid (a bare node watches its node port), not armed. */
static struct aemp_mon *mon_new(aemp_node_t *n, const char *portid, enum mon_kind kind)
{
    aemp__ports_t *ps = ports_of(n);
    if (!ps || !portid || !*portid) return NULL;
    struct aemp_mon *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->node = n;
    m->kind = kind;
    size_t nodelen, plen = strlen(portid);
    const char *local = aemp__portid_split(portid, &nodelen);
    m->portid = malloc(plen + 2);
    m->nodename = strndup(portid, nodelen);
    if (!m->portid || !m->nodename) {
        mon_free(m);
        return NULL;
    }
    memcpy(m->portid, portid, plen + 1);
    if (!*local && portid[nodelen] != '#') strcpy(m->portid + plen, "#");
    m->local = m->portid + nodelen + 1;
    m->nodelen = nodelen;
    m->remote = !aemp__is_self(n, m->nodename);
    return m;
}

/* Tells the node of m's port that we start (tag watch) or stop (unwatch)
 * watching it, when m is the first or last watch of ours on that port
 * (others: NULL). Protocol 1 watches a node port by its link alone. */
static void watch_msg(aemp_node_t *n, struct aemp_mon *m, struct aemp_mon *others,
                      const char *tag)
{
    if (m->kind != MON_REMOTE && remote_watchers(n->ports, m->portid, m->local, others) == 0 &&
        (*m->local || !n->dialect->quirks.node_port_watch_silent))
        node_sendf(n, m->portid, m->nodelen, "[ss]", tag, m->local);
}

/* Links m in and arms it: a remote port gets mon1 when first watched, a
 * missing local port fires at once (for a remote watcher: its kil goes
 * out at once). */
static aemp_mon_t *mon_start(aemp_node_t *n, struct aemp_mon *m)
{
    aemp__ports_t *ps = n->ports;
    if (m->kind != MON_REMOTE) { /* (a watch is in the indexes already) */
        if (windex_add(ps, m, W_OWN, m->local) ||
            (m->remote && windex_add(ps, m, W_NODE, m->nodename))) {
            windex_del(ps, m, W_OWN);
            mon_free(m);
            return NULL;
        }
    }
    if (m->remote) {
        watch_msg(n, m, m, n->dialect->tags.watch);
    } else if (*m->local && !aemp__map_get(&ps->ports, m->local)) {
        int watcher = m->kind == MON_REMOTE; /* answered and freed at once */
        json_t *r = json_pack("[ss]", n->dialect->tags.no_such_port, "cannot monitor nonexistent port");
        /* protocol 1 names the port too */
        if (r && n->dialect->quirks.no_such_port_names_port)
            json_array_append_new(r, json_string(m->portid));
        mon_fire(ps, m, r);
        json_decref(r);
        if (watcher) return NULL;
    }
    return m;
}

aemp_mon_t *aemp_mon(aemp_node_t *n, const char *portid, aemp_mon_fn cb, void *ud)
{
    if (!n || !cb) return NULL;
    struct aemp_mon *m = mon_new(n, portid, MON_CB);
    if (!m) return NULL;
    m->cb = cb;
    m->ud = ud;
    return mon_start(n, m);
}

aemp_mon_t *aemp_mon_kill(aemp_node_t *n, const char *portid, const char *kill_portid)
{
    if (!n || !kill_portid) return NULL;
    struct aemp_mon *m = mon_new(n, portid, MON_KILL);
    if (!m) return NULL;
    if (!(m->target = strdup(kill_portid))) {
        mon_free(m);
        return NULL;
    }
    return mon_start(n, m);
}

aemp_mon_t *aemp_mon_send(aemp_node_t *n, const char *portid, const char *to, json_t *elements)
{
    struct aemp_mon *m = n && to && json_is_array(elements) ? mon_new(n, portid, MON_SEND) : NULL;
    if (!m) {
        json_decref(elements);
        return NULL;
    }
    m->elements = elements;
    if (!(m->target = strdup(to))) {
        mon_free(m);
        return NULL;
    }
    return mon_start(n, m);
}

void aemp_mon_cancel(aemp_mon_t *m)
{
    if (!m) return;
    aemp_node_t *n = m->node;
    aemp__ports_t *ps = n->ports;
    if (m->reason) {
        /* due but not yet run: drop it from the due list */
        if (m->prev) m->prev->next = m->next;
        else ps->due_head = m->next;
        if (m->next) m->next->prev = m->prev;
        else ps->due_tail = m->prev;
        mon_free(m);
        return;
    }
    mon_unlink(ps, m);
    if (m->remote) watch_msg(n, m, NULL, n->dialect->tags.unwatch);
    mon_free(m);
}

static void kill_local(aemp_node_t *n, aemp_port_t *p, json_t *reason);

/* Runs the due monitors' actions. */
static void due_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    aemp_node_t *n = w->data;
    aemp__ports_t *ps = n->ports;
    (void)revents;
    aemp__enter(n);
    struct aemp_mon *m = ps->due_head, *last = ps->due_tail;
    ps->due_head = ps->due_tail = NULL;
    ev_idle_stop(loop, w);
    while (m && !n->destroy_pending) {
        struct aemp_mon *next = m == last ? NULL : m->next;
        json_t *reason = m->reason;
        switch (m->kind) {
        case MON_CB:
            m->cb(n, m->portid, reason, m->ud);
            break;
        case MON_KILL:
            if (json_array_size(reason)) aemp_port_kill_id(n, m->target, json_incref(reason));
            break;
        case MON_SEND: {
            json_t *e = json_copy(m->elements);
            if (e) {
                json_array_extend(e, reason);
                aemp_send(n, m->target, e);
            }
            break;
        }
        case MON_REMOTE: /* answered in mon_fire */
            break;
        }
        mon_free(m);
        m = next;
    }
    while (m) { /* destroyed meanwhile */
        struct aemp_mon *next = m->next;
        mon_free(m);
        m = next;
    }
    aemp__leave(n);
}

/* Fires those of our own monitors of the local id local that match. */
static void fire_own(aemp__ports_t *ps, const char *local, int (*match)(struct aemp_mon *, void *),
                     void *ud, json_t *reason)
{
    for (struct aemp_mon *m = own_first(ps, local), *next; m; m = next, ps->visits++) {
        next = m->wnext[W_OWN]; /* (firing only queues m: the others stay) */
        if (match(m, ud)) mon_fire(ps, m, reason);
    }
}

struct remote_match {
    aemp__peer_t *peer;
    const char *local; /* NULL: any port of that node */
};

static int match_remote(struct aemp_mon *m, void *ud)
{
    struct remote_match *rm = ud;
    if (!m->remote || m->kind == MON_REMOTE) return 0;
    if (rm->local && strcmp(m->local, rm->local)) return 0;
    return aemp__peer_get(m->node, m->nodename, 0) == rm->peer;
}

/* Fires every monitor of the W_NODE list b (which goes with its last). */
static void fire_node_list(aemp__ports_t *ps, struct wlist *b, json_t *reason)
{
    for (size_t c = b->count; c--; ps->visits++) mon_fire(ps, b->head, reason);
}

/* Our monitors of p's ports fire (transport_error, msg). */
static void peer_lost(aemp_node_t *n, aemp__peer_t *p, const char *msg)
{
    aemp__ports_t *ps = n->ports;
    json_t *reason = ps ? json_pack("[sss]", "transport_error", p->noderef, msg) : NULL;
    if (!reason) return;
    /* our monitors of its ports: those under each of its names, then
     * those under a name that leads to it by an endpoint (O(its names +
     * such names), not O(our monitors)) */
    for (size_t i = 0; i < p->nnames; i++) {
        struct wlist *b = aemp__map_get(&n->peers, p->names[i]) == p
                              ? aemp__map_get(&ps->widx[W_NODE], p->names[i])
                              : NULL;
        if (b) fire_node_list(ps, b, reason);
    }
    for (struct wlist *b = ps->multi, *next; b; b = next) {
        next = b->mnext;
        if (!aemp__map_get(&n->peers, b->key) && aemp__peer_get(n, b->key, 0) == p)
            fire_node_list(ps, b, reason);
    }
    json_decref(reason);
}

void aemp__ports_peer_failed(aemp_node_t *n, const char *noderef, const char *msg)
{
    aemp__ports_t *ps = n->ports;
    aemp__peer_t *p = ps ? aemp__peer_get(n, noderef, 0) : NULL;
    if (!p) return;
    peer_lost(n, p, msg);
    /* the failed node's watches on our ports are gone with it */
    for (struct aemp_mon *m; (m = windex_first(ps, W_PEER, p->noderef));) {
        mon_unlink(ps, m);
        mon_free(m);
    }
}

/* ------------------------------------------------------------------ */
/* ports                                                               */

/* A new port with the local id `local` (NULL: the next one that is
 * free), or NULL when that id is taken or memory ran out. */
static aemp_port_t *port_create(aemp_node_t *n, const char *local)
{
    aemp__ports_t *ps = ports_of(n);
    char next[64];
    if (!ps) return NULL;
    if (!local) {
        /* (an id taken otherwise - a spawn - is skipped, never replaced) */
        do next_local(ps, next, sizeof next);
        while (aemp__map_get(&ps->ports, next));
        local = next;
    } else if (aemp__map_get(&ps->ports, local)) {
        return NULL;
    }
    const char *me = n->noderef ? n->noderef : "";
    size_t l = strlen(me) + strlen(local) + 2;
    aemp_port_t *p = calloc(1, sizeof *p);
    if (!p || !(p->id = malloc(l))) {
        free(p);
        return NULL;
    }
    snprintf(p->id, l, "%s#%s", me, local);
    p->local = p->id + strlen(me) + 1;
    p->local_len = strlen(p->local);
    p->node = n;
    if (aemp__map_set(&ps->ports, p->local, p)) {
        free(p->id);
        free(p);
        return NULL;
    }
    return p;
}

aemp_port_t *aemp_port_new(aemp_node_t *n, aemp_recv_fn cb, void *ud)
{
    aemp_port_t *p = n ? port_create(n, NULL) : NULL;
    if (p) {
        p->mini = cb;
        p->mini_ud = ud;
    }
    return p;
}

const char *aemp_port_id(const aemp_port_t *p) { return p ? p->id : NULL; }
aemp_node_t *aemp_port_node(const aemp_port_t *p) { return p ? p->node : NULL; }

static int add_rcv(aemp_port_t *p, const char *tag, json_t *pattern, aemp_recv_fn cb, void *ud)
{
    if (!p || p->dead || !cb) {
        json_decref(pattern);
        return AEMP_EINVAL;
    }
    rcv_t *r = calloc(1, sizeof *r);
    if (!r || (tag && !(r->tag = strdup(tag)))) {
        free(r);
        json_decref(pattern);
        return AEMP_ENOMEM;
    }
    r->pattern = pattern;
    r->cb = cb;
    r->ud = ud;
    rcv_t **pp = &p->rcvs;
    while (*pp) pp = &(*pp)->next;
    *pp = r;
    return 0;
}

int aemp_port_rcv(aemp_port_t *p, const char *tag, aemp_recv_fn cb, void *ud)
{
    if (!tag) return AEMP_EINVAL;
    return add_rcv(p, tag, NULL, cb, ud);
}

int aemp_port_rcv_match(aemp_port_t *p, json_t *pattern, aemp_recv_fn cb, void *ud)
{
    if (!json_is_array(pattern)) {
        json_decref(pattern);
        return AEMP_EINVAL;
    }
    return add_rcv(p, NULL, pattern, cb, ud);
}

static void prune_rcvs(aemp_port_t *p)
{
    for (rcv_t **pp = &p->rcvs; *pp;) {
        rcv_t *r = *pp;
        if (r->removed) {
            *pp = r->next;
            free(r->tag);
            json_decref(r->pattern);
            free(r);
        } else {
            pp = &r->next;
        }
    }
}

static void port_free(aemp_port_t *p)
{
    for (rcv_t *r = p->rcvs; r; r = r->next) r->removed = 1;
    prune_rcvs(p);
    free(p->id);
    free(p);
}

static int match_local(struct aemp_mon *m, void *ud)
{
    return !m->remote && !strcmp(m->local, (const char *)ud);
}

static void reap_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    aemp_node_t *n = w->data;
    aemp__ports_t *ps = n->ports;
    (void)revents;
    ev_check_stop(loop, w);
    while (ps->dead) {
        aemp_port_t *p = ps->dead;
        ps->dead = p->next_dead;
        port_free(p);
    }
}

static void kill_local(aemp_node_t *n, aemp_port_t *p, json_t *reason)
{
    aemp__ports_t *ps = n->ports;
    if (p->dead) return;
    p->dead = 1;
    aemp__map_del(&ps->ports, p->local);
    if (ps->last == p) ps->last = NULL;
    /* the names that point at it go with it (under any of our names) */
    for (regname_t *rn = aemp__map_del(&ps->named, p->local), *next; rn; rn = next, ps->visits++) {
        next = rn->next;
        aemp__map_del(&ps->names, rn->name);
        free(rn);
    }
    struct wlist *w = aemp__map_get(&ps->widx[W_PORT], p->local);
    int watched = w != NULL;
    for (struct aemp_mon *m = own_first(ps, p->local); m && !watched; m = m->wnext[W_OWN], ps->visits++)
        watched += match_local(m, (void *)p->local);
    if (!watched && json_array_size(reason)) {
        char *r = aemp_json_encode(reason, NULL);
        aemp__log(n, AEMP_LOG_WARN, "%s: port killed with reason %s, and nobody monitors it",
                  p->id, r ? r : "?");
        free(r);
    }
    fire_own(ps, p->local, match_local, (void *)p->local, reason);
    for (struct aemp_mon *m; (m = windex_first(ps, W_PORT, p->local));) mon_fire(ps, m, reason);
    p->next_dead = ps->dead;
    ps->dead = p;
    ev_check_start(n->loop, &ps->reap_w);
}

void aemp_port_kill(aemp_port_t *p, json_t *reason)
{
    if (!p) {
        json_decref(reason);
        return;
    }
    if (!reason) reason = json_array();
    kill_local(p->node, p, reason);
    json_decref(reason);
}

void aemp_port_die(aemp_port_t *p, const char *message)
{
    if (!p) return;
    aemp_port_kill(p, json_pack("[ss]", "die", message ? message : ""));
}

int aemp_port_kill_id(aemp_node_t *n, const char *portid, json_t *reason)
{
    if (!n || !portid || (reason && !json_is_array(reason))) {
        json_decref(reason);
        return AEMP_EINVAL;
    }
    if (!reason) reason = json_array();
    size_t nodelen;
    const char *local = aemp__portid_split(portid, &nodelen);
    char *node = strndup(portid, nodelen);
    int rc = 0;
    if (!node || !reason) {
        rc = AEMP_ENOMEM;
    } else if (aemp__is_self(n, node)) {
        aemp_port_t *p = n->ports ? aemp__map_get(&n->ports->ports, local) : NULL;
        if (p) kill_local(n, p, reason);
        else rc = AEMP_ENOENT;
    } else {
        json_t *e = json_pack("[ss]", n->dialect->tags.kill, local);
        if (e && !json_array_extend(e, reason)) {
            aemp__payload_t pl = {e, NULL, NULL};
            rc = aemp__send(n, portid, nodelen, "", 0, &pl);
        } else {
            json_decref(e);
            rc = AEMP_ENOMEM;
        }
    }
    json_decref(reason);
    free(node);
    return rc;
}

int aemp_kil(aemp_node_t *n, const char *portid, json_t *reason)
{
    return aemp_port_kill_id(n, portid, reason);
}

/* ------------------------------------------------------------------ */
/* registry and functions                                              */

/* rn leaves the names of its port (when it is ours). */
static void named_unlink(aemp__ports_t *ps, regname_t *rn)
{
    if (!rn->local) return;
    if (rn->prev) rn->prev->next = rn->next;
    else if (rn->next) aemp__map_set(&ps->named, rn->local, rn->next); /* replaces: no allocation */
    else aemp__map_del(&ps->named, rn->local);
    if (rn->next) rn->next->prev = rn->prev;
}

int aemp_reg(aemp_node_t *n, const char *name, const char *portid)
{
    aemp__ports_t *ps = n ? ports_of(n) : NULL;
    if (!ps || !name || !portid) return AEMP_EINVAL;
    size_t pl = strlen(portid), nl = strlen(name), nodelen;
    regname_t *rn = malloc(sizeof *rn + pl + nl + 2);
    if (!rn) return AEMP_ENOMEM;
    memcpy(rn->portid, portid, pl + 1);
    rn->name = memcpy(rn->portid + pl + 1, name, nl + 1);
    const char *local = aemp__portid_split(rn->portid, &nodelen);
    rn->local = *local && aemp__is_self_n(n, portid, nodelen) ? local : NULL;
    regname_t *old = aemp__map_get(&ps->names, name);
    rn->prev = NULL;
    rn->next = rn->local ? aemp__map_get(&ps->named, rn->local) : NULL;
    if ((rn->local && aemp__map_set(&ps->named, rn->local, rn)) ||
        aemp__map_set(&ps->names, name, rn)) {
        if (rn->local && aemp__map_get(&ps->named, rn->local) == rn) named_unlink(ps, rn);
        free(rn);
        return AEMP_ENOMEM;
    }
    if (rn->next) rn->next->prev = rn;
    if (old) {
        named_unlink(ps, old);
        free(old);
    }
    return 0;
}

const char *aemp_lookup(const aemp_node_t *n, const char *name)
{
    regname_t *rn = n && n->ports && name ? aemp__map_get(&n->ports->names, name) : NULL;
    return rn ? rn->portid : NULL;
}

int aemp_func_register(aemp_node_t *n, const char *name, aemp_func_fn fn, void *ud)
{
    aemp__ports_t *ps = n ? ports_of(n) : NULL;
    if (!ps || !name || !fn) return AEMP_EINVAL;
    func_t *f = malloc(sizeof *f);
    if (!f) return AEMP_ENOMEM;
    f->fn = fn;
    f->ud = ud;
    func_t *old = aemp__map_get(&ps->funcs, name);
    if (aemp__map_set(&ps->funcs, name, f)) {
        free(f);
        return AEMP_ENOMEM;
    }
    free(old);
    return 0;
}

char *aemp_spawn(aemp_node_t *n, const char *noderef, const char *func, json_t *args)
{
    aemp__ports_t *ps = n ? ports_of(n) : NULL;
    if (!ps || !noderef || !func || (args && !json_is_array(args))) {
        json_decref(args);
        return NULL;
    }
    char local[64];
    next_local(ps, local, sizeof local);
    json_t *e = json_pack("[sss]", n->dialect->tags.spawn, local, func);
    if (!e) {
        json_decref(args);
        return NULL;
    }
    if (args) json_array_extend(e, args);
    json_decref(args);
    size_t l = strlen(noderef) + strlen(local) + 2;
    char *id = malloc(l);
    if (!id) {
        json_decref(e);
        return NULL;
    }
    snprintf(id, l, "%s#%s", noderef, local);
    if (aemp__is_self(n, noderef)) {
        /* the port exists at once, so monitors and messages made before
         * the init function runs find it; the init runs from the loop */
        aemp_port_t *p = port_create(n, local);
        if (p) p->spawning = 1;
    }
    /* ours: the init runs as our own request, whoever's message we handle */
    aemp__payload_t pl = {e, NULL, NULL};
    size_t nodelen;
    const char *to = aemp__portid_split(noderef, &nodelen);
    if (aemp__send_own(n, noderef, nodelen, to, strlen(to), &pl)) {
        free(id);
        return NULL;
    }
    return id;
}

/* ------------------------------------------------------------------ */
/* what the node services do with ports (services.c)                   */

/* The name a watcher's watches are kept under: its peer's, so that any
 * of the peer's names finds them; NULL when src leads to no peer (a
 * name it dropped: what is filed must go with a peer). */
static const char *watcher_name(aemp_node_t *n, const char *src)
{
    aemp__peer_t *p = aemp__peer_get(n, src, 0);
    return p ? p->noderef : NULL;
}

/* "WATCHERLIST\nLOCAL": the watcher's list (W_PEER) by its address,
 * which a rename keeps; malloc'd. */
static char *pair_key(const struct wlist *watcher, const char *local)
{
    size_t b = strlen(local);
    char *k = malloc(2 * sizeof(uintptr_t) + b + 2);
    if (!k) return NULL;
    snprintf(k, 2 * sizeof(uintptr_t) + b + 2, "%0*" PRIxPTR "\n%s", (int)(2 * sizeof(uintptr_t)),
             (uintptr_t)watcher, local);
    return k;
}

void aemp__ports_watch(aemp_node_t *n, const char *src, const char *local)
{
    aemp__ports_t *ps = ports_of(n);
    if (aemp__is_self(n, src) || !ps) return;
    const char *who = watcher_name(n, src);
    if (!who) {
        aemp__log(n, AEMP_LOG_WARN, "%s: mon1: no node of this name now; refused", src);
        return;
    }
    struct wlist *mine = aemp__map_get(&ps->widx[W_PEER], who);
    if (mine && mine->count >= n->cfg.max_peer_monitors) {
        aemp__log(n, AEMP_LOG_WARN, "%s: mon1: over %u monitors from this node; refused", who,
                  n->cfg.max_peer_monitors);
        return;
    }
    size_t l = strlen(n->noderef) + strlen(local) + 2;
    char *portid = malloc(l);
    if (!portid) return;
    snprintf(portid, l, "%s#%s", n->noderef, local);
    struct aemp_mon *m = mon_new(n, portid, MON_REMOTE);
    free(portid);
    if (!m) return;
    char *pk = NULL;
    if (windex_add(ps, m, W_PEER, who) || !(pk = pair_key(m->wl[W_PEER], local)) ||
        windex_add(ps, m, W_PAIR, pk) || windex_add(ps, m, W_PORT, m->local)) {
        free(pk);
        mon_unlink(ps, m);
        mon_free(m);
        return;
    }
    free(pk);
    mon_start(n, m);
    aemp__mem_check(n, NULL);
}

unsigned long aemp__ports_visits(const aemp_node_t *n)
{
    return n->ports ? n->ports->visits : 0;
}

size_t aemp__ports_watches(aemp_node_t *n, const char *peer)
{
    aemp__ports_t *ps = n->ports;
    if (!ps) return 0;
    if (!peer) return ps->nwatches;
    struct wlist *b = aemp__map_get(&ps->widx[W_PEER], peer);
    return b ? b->count : 0;
}

void aemp__ports_watcher_renamed(aemp_node_t *n, const char *old, const char *nn)
{
    aemp__ports_t *ps = n->ports;
    struct wlist *b = ps && strcmp(old, nn) ? aemp__map_get(&ps->widx[W_PEER], old) : NULL;
    if (!b) return;
    char *k = NULL;
    if (!aemp__map_get(&ps->widx[W_PEER], nn) && (k = strdup(nn)) &&
        !aemp__map_set(&ps->widx[W_PEER], nn, b)) {
        /* the list moves whole: O(1), however many watches it holds */
        aemp__map_del(&ps->widx[W_PEER], old);
        free(b->key);
        b->key = k;
        return;
    }
    free(k);
    /* the new name has watches of its own (an earlier holder's), or
     * memory ran out: each watch joins that name (or goes), once */
    while (b->head) {
        struct aemp_mon *m = b->head;
        char *pk = NULL;
        for (int i = 0; i < W_N; i++)
            if (i != W_PORT) windex_del(ps, m, i);
        if (windex_add(ps, m, W_PEER, nn) || !(pk = pair_key(m->wl[W_PEER], m->local)) ||
            windex_add(ps, m, W_PAIR, pk)) {
            mon_unlink(ps, m);
            mon_free(m);
        }
        free(pk);
        if (!aemp__map_get(&ps->widx[W_PEER], old)) break; /* (b went with its last) */
    }
}

void aemp__ports_unwatch(aemp_node_t *n, const char *src, const char *local)
{
    aemp__ports_t *ps = n->ports;
    const char *who = ps ? watcher_name(n, src) : NULL;
    struct wlist *mine = who ? aemp__map_get(&ps->widx[W_PEER], who) : NULL;
    char *pk = mine ? pair_key(mine, local) : NULL;
    struct aemp_mon *m = pk ? windex_first(ps, W_PAIR, pk) : NULL;
    free(pk);
    if (m) {
        mon_unlink(ps, m);
        mon_free(m);
    }
}

void aemp__ports_kill(aemp_node_t *n, const char *local, json_t *reason)
{
    aemp_port_t *p = n->ports ? aemp__map_get(&n->ports->ports, local) : NULL;
    if (p) kill_local(n, p, reason);
}

void aemp__ports_remote_died(aemp_node_t *n, const char *src, const char *local, json_t *reason)
{
    struct remote_match rm = {aemp__peer_get(n, src, 0), local};
    if (rm.peer) fire_own(n->ports, local, match_remote, &rm, reason);
}

void aemp__ports_spawn(aemp_node_t *n, const char *src, const char *local, const char *fname,
                       json_t *args)
{
    aemp__ports_t *ps = ports_of(n);
    if (!ps || !*local || strchr(local, '#')) return;
    size_t ul = strlen(ps->uniq);
    if (!aemp__is_self(n, src) && !strncmp(local, ps->uniq, ul) && local[ul] == '.') {
        /* our own ports' ids: a peer's spawn must not take the one our
         * next port was to get */
        aemp__log(n, AEMP_LOG_WARN, "%s: spawn refused: %s is an id of this node's own ports", src,
                  local);
        return;
    }
    aemp_port_t *p = aemp__map_get(&ps->ports, local);
    if (p && p->spawning && aemp__is_self(n, src)) {
        p->spawning = 0;
    } else if (!(p = port_create(n, local))) {
        aemp__log(n, AEMP_LOG_WARN, "spawn: port %s exists or out of memory", local);
        return;
    }
    func_t *f = aemp__map_get(&ps->funcs, fname);
    if (!f) {
        char m[512];
        snprintf(m, sizeof m, "unable to resolve %s", fname);
        aemp_port_die(p, m);
        return;
    }
    p->busy++;
    f->fn(n, p, args, f->ud);
    p->busy--;
}

int aemp__ports_has_func(aemp_node_t *n, const char *name)
{
    return n->ports && aemp__map_get(&n->ports->funcs, name) != NULL;
}

int aemp__ports_call(aemp_node_t *n, const char *name, json_t *args)
{
    if (aemp__remote_exec_refused(n)) return 0; /* a secure node (toolbox.c) */
    func_t *f = n->ports ? aemp__map_get(&n->ports->funcs, name) : NULL;
    if (!f) return AEMP_ENOENT;
    f->fn(n, NULL, args, f->ud);
    return 0;
}

/* ------------------------------------------------------------------ */
/* dispatch                                                            */

static int rcv_matches(const rcv_t *r, json_t *elems)
{
    if (r->tag) {
        const char *t = json_string_value(json_array_get(elems, 0));
        return t && !strcmp(t, r->tag);
    }
    size_t np = json_array_size(r->pattern);
    if (json_array_size(elems) < np) return 0;
    for (size_t i = 0; i < np; i++)
        if (!json_equal(json_array_get(r->pattern, i), json_array_get(elems, i))) return 0;
    return 1;
}

static void port_dispatch(aemp_port_t *p, json_t *elems)
{
    int matched = 0;
    p->busy++;
    for (rcv_t *r = p->rcvs; r && !p->dead; r = r->next) {
        if (r->removed || !rcv_matches(r, elems)) continue;
        matched = 1;
        if (r->cb(p, elems, r->ud) == AEMP_DONE) r->removed = 1;
    }
    if (!matched && p->mini && !p->dead) {
        if (p->mini(p, elems, p->mini_ud) == AEMP_DONE && !p->dead) aemp_port_kill(p, NULL);
    }
    /* no callback took it: dropped (0.4), or the port dies (2.02) */
    if (!matched && !p->mini && !p->dead && p->node->dialect->quirks.unhandled_kills)
        aemp_port_kill(p, aemp__unhandled_reason(elems));
    p->busy--;
    prune_rcvs(p);
}

static void dispatch(aemp_node_t *n, const char *src, const char *id, size_t idlen, json_t *elems)
{
    aemp__ports_t *ps = ports_of(n);
    if (!ps) return;
    if (!idlen) {
        aemp__services_dispatch(n, src, elems);
        return;
    }
    /* a stream of messages to one port is the common case: comparing its
     * id costs less than hashing it */
    aemp_port_t *p = ps->last;
    if (!p || p->local_len != idlen || !aemp__same_bytes(p->local, id, idlen)) {
        p = aemp__map_get(&ps->ports, id);
        ps->last = p;
    }
    if (p) {
        port_dispatch(p, elems);
        return;
    }
    if (!n->cfg.on_message) {
        aemp__log(n, AEMP_LOG_DEBUG, "message for unknown port %s dropped", id);
        return;
    }
    /* the raw hook sees the whole message, as it came */
    json_t *msg = json_array(), *sid = json_stringn(id, idlen);
    if (msg && sid && !json_array_append_new(msg, sid) && !json_array_extend(msg, elems))
        n->cfg.on_message(n->cfg.message_ud, n, src, id, msg);
    else if (!msg) json_decref(sid);
    json_decref(msg);
}

/* What the handlers of a message send to our own ports is sent for the
 * message's source (unless that is ourselves: the local queue passes our
 * own name for what we said). */
void aemp__dispatch(aemp_node_t *n, const char *src, const char *id, size_t idlen, json_t *elems)
{
    const char *as = n->acting_for;
    n->acting_for = src == n->noderef ? NULL : src;
    n->dispatch_depth++;
    dispatch(n, src, id, idlen, elems);
    n->dispatch_depth--;
    n->acting_for = as;
}

int aemp__defer_current(aemp_node_t *n, double secs)
{
    if (!n->dispatch_link || n->dispatch_depth != 1 || n->dispatch_link->state != LINK_UP ||
        !n->acting_for)
        return 0;
    n->defer_for = secs < AEMP_DEFER_MIN ? AEMP_DEFER_MIN : secs > AEMP_DEFER_MAX ? AEMP_DEFER_MAX : secs;
    return 1;
}

void aemp__ports_free(aemp_node_t *n)
{
    aemp__ports_t *ps = n->ports;
    if (!ps) return;
    ev_idle_stop(n->loop, &ps->due_w);
    ev_check_stop(n->loop, &ps->reap_w);
    aemp__map_iter_t it = {0};
    for (aemp__map_ent_t *e; (e = aemp__map_next(&ps->ports, &it));) port_free(e->value);
    while (ps->dead) {
        aemp_port_t *p = ps->dead;
        ps->dead = p->next_dead;
        port_free(p);
    }
    for (aemp__map_t *m = &ps->names; m; m = m == &ps->names ? &ps->funcs : NULL) {
        it = (aemp__map_iter_t){0};
        for (aemp__map_ent_t *e; (e = aemp__map_next(m, &it));) free(e->value);
    }
    for (int i = 0; i < W_N; i++) {
        it = (aemp__map_iter_t){0};
        for (aemp__map_ent_t *e; (e = aemp__map_next(&ps->widx[i], &it));) {
            struct wlist *b = e->value;
            /* each monitor is freed once: a watch from its watcher's
             * list, one of our own from the list of the id it watches */
            for (struct aemp_mon *m = b->head, *next; (i == W_PEER || i == W_OWN) && m; m = next) {
                next = m->wnext[i];
                mon_free(m);
            }
            free(b->key);
            free(b);
        }
        aemp__map_free(&ps->widx[i]);
    }
    while (ps->due_head) {
        struct aemp_mon *m = ps->due_head;
        ps->due_head = m->next;
        mon_free(m);
    }
    aemp__map_free(&ps->ports);
    aemp__map_free(&ps->names);
    aemp__map_free(&ps->named);
    aemp__map_free(&ps->funcs);
    free(ps);
    n->ports = NULL;
}
