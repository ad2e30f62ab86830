/*
 * node.c - the node: its configuration and secret, the listeners, the
 * peer table (every remote node known by its noderef and each endpoint),
 * connecting with rounds and a deadline, the choice of one link per peer
 * when both sides connect at once, routing of outgoing messages and the
 * local delivery queue. Link I/O is in link.c, ports in port.c.
 *
 * Who is at the other end of a link counts only once it has proven
 * knowledge of the secret: until then a link belongs to no peer (an
 * outgoing one only to the peer it was started for), so a greeting that
 * merely names a node cannot block, beat or rename anything. The
 * accepting side of a link sends its own auth line only after the
 * connecting side's has been verified, and that is where it decides
 * whether the link is used:
 *
 * Simultaneous connects: the link started by the node with the smaller
 * noderef (byte order) wins. The smaller node holds a verified incoming
 * link silent (no auth line) while its own attempt to that peer runs, or
 * while its own link to it is up (the peer either closes the new link as
 * a loser or has restarted; a keepalive then probes the old link, and the
 * held link is released when the old one dies, or after AEMP_HOLD_UP_MAX
 * when the peer keeps both, e.g. having reached us under another name).
 * The larger node never holds: a verified incoming link wins over its own
 * attempts. A link is
 * thus up on one side exactly when it is up on the other, and no message
 * is ever sent on a loser.
 */
#include "node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "addr.h"
#include "tls.h"

#include <openssl/crypto.h>

/* ------------------------------------------------------------------ */
/* logging and callback nesting                                        */

/* FNV-1a of the format's address and text[0..len). */
static uint64_t log_key(const char *fmt, const char *text, size_t len)
{
    uint64_t h = 14695981039346656037u ^ (uint64_t)(uintptr_t)fmt;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)text[i]) * 1099511628211u;
    return h | 1; /* 0 marks a free slot */
}

/* The limiter for key: its slot, or a free one or one whose window is
 * over among the next few (taken over); NULL when they all serve other
 * keys now (the line is then not limited by that key). */
static aemp__ratelim_t *log_limit(aemp_node_t *n, uint64_t key, double now)
{
    struct log_slot *free_slot = NULL;
    for (unsigned i = 0; i < 8; i++) {
        struct log_slot *s = &n->log_slots[(key + i) % AEMP_LOG_SLOTS];
        if (s->key == key) return &s->lim;
        if (!free_slot && (!s->key || now - s->lim.start >= AEMP_LOG_WINDOW)) free_slot = s;
    }
    if (!free_slot) return NULL;
    free_slot->key = key;
    free_slot->lim = (aemp__ratelim_t){0};
    return &free_slot->lim;
}

/* Whether a line of the call site fmt may pass over the limit on all:
 * each site has AEMP_LOG_SITE_RESERVE of them a window (a site whose
 * slots all serve other sites now has none). */
static int log_site_reserve(aemp_node_t *n, const char *fmt, double now)
{
    size_t h = (size_t)((uintptr_t)fmt * 11400714819323198485u >> 40);
    struct log_site *take = NULL;
    for (unsigned i = 0; i < 8; i++) {
        struct log_site *s = &n->log_sites[(h + i) % AEMP_LOG_SITES];
        if (s->fmt == fmt) {
            take = s;
            break;
        }
        if (!take && (!s->fmt || now - s->lim.start >= AEMP_LOG_WINDOW)) take = s;
    }
    if (!take) return 0;
    if (take->fmt != fmt) *take = (struct log_site){.fmt = fmt};
    unsigned unused;
    return aemp__ratelim_hit(&take->lim, now, AEMP_LOG_WINDOW, AEMP_LOG_SITE_RESERVE, &unused);
}

/* Whether the line buf of kind fmt may be written now; *held: how many
 * like it were held back before, *held_all: how many lines of any kind
 * the limit on all held back in the window before this one. */
static int log_passes(aemp_node_t *n, const char *fmt, const char *buf, unsigned *held,
                      unsigned *held_all)
{
    double now = n->loop ? ev_now(n->loop) : 0;
    const char *colon = strstr(buf, ": ");
    const char *rest = colon ? colon + 2 : buf;
    unsigned h1 = 0, h2 = 0;
    aemp__ratelim_t *line = log_limit(n, log_key(fmt, buf, strlen(buf)), now);
    if (line && !aemp__ratelim_hit(line, now, AEMP_LOG_WINDOW, AEMP_LOG_BURST, &h1)) return 0;
    aemp__ratelim_t *kind = log_limit(n, log_key(fmt, rest, strlen(rest)) ^ 2, now);
    if (kind && kind != line && !aemp__ratelim_hit(kind, now, AEMP_LOG_WINDOW, AEMP_LOG_KIND_BURST, &h2)) {
        if (line) line->held += h1 + 1; /* told with that line's next one */
        return 0;
    }
    if (!aemp__ratelim_hit(&n->log_all, now, AEMP_LOG_WINDOW, AEMP_LOG_ALL_BURST, held_all)) {
        if (log_site_reserve(n, fmt, now)) {
            n->log_all.held--; /* it passes after all */
        } else {
            if (line) line->held += h1 + 1;
            return 0;
        }
    }
    *held = h1 + h2;
    return 1;
}

/* Whether the log callback (or stderr, without one) takes a line of
 * level; a line nobody would see is not formatted. */
static int log_to_user(const aemp_node_t *n, int level)
{
    if (!n->cfg.log) return level <= AEMP_LOG_WARN;
    return !n->cfg.log_levels || (level >= 0 && level < 32 && (n->cfg.log_levels >> level & 1));
}

void aemp__log(aemp_node_t *n, int level, const char *fmt, ...)
{
    int user = log_to_user(n, level);
    if (!user && !n->logcatch) return;
    char buf[1024];
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int full = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *whole = full >= (int)sizeof buf ? malloc((size_t)full + 1) : NULL;
    if (whole) {
        /* a line too long keeps its start and its end, where the reason
         * is (a peer's long name comes first): the middle goes */
        vsnprintf(whole, (size_t)full + 1, fmt, again);
        /* room for the marker and the rate limiter's note below; cut
         * between UTF-8 characters (catchers take only valid text) */
        size_t head = 256, tail = sizeof buf - head - 64 - 80;
        while (head && ((unsigned char)whole[head] & 0xC0) == 0x80) head--;
        while (tail && ((unsigned char)whole[(size_t)full - tail] & 0xC0) == 0x80) tail--;
        snprintf(buf, sizeof buf, "%.*s ...(%zu bytes cut)... %s", (int)head, whole,
                 (size_t)full - head - tail, whole + (size_t)full - tail);
        free(whole);
    }
    va_end(again);
    unsigned held = 0, held_all = 0;
    if (level <= AEMP_LOG_WARN && !log_passes(n, fmt, buf, &held, &held_all)) return;
    if (held || held_all) {
        size_t len = strlen(buf);
        char *at = buf + (len < sizeof buf - 80 ? len : sizeof buf - 80);
        if (!held_all)
            snprintf(at, 80, " ... and %u more like this in the last %.0f s", held, AEMP_LOG_WINDOW);
        else
            snprintf(at, 80, " ... and %u more like this, %u lines in all, held back in %.0f s",
                     held, held_all, AEMP_LOG_WINDOW);
    }
    if (user && n->cfg.log) n->cfg.log(n->cfg.log_ud, level, buf);
    else if (user) fprintf(stderr, "aemp: %s\n", buf);
    if (n->logcatch) aemp__logcatch_feed(n, level, buf);
}

static void node_free(aemp_node_t *n);
static void reap_idle_peers(aemp_node_t *n);

void aemp__enter(aemp_node_t *n) { n->depth++; }

int aemp__leave(aemp_node_t *n)
{
    if (--n->depth > 0) return 0;
    while (n->dead) {
        aemp__link_t *l = n->dead;
        n->dead = l->next;
        aemp__link_free(l);
    }
    if (n->destroy_pending) {
        node_free(n);
        return 1;
    }
    if (n->peers_idle) reap_idle_peers(n);
    if (n->trim_pending && ev_now(n->loop) - n->trimmed_at >= AEMP_TRIM_INTERVAL) {
        /* much was freed (a peer cut, a big queue drained): what the
         * allocator keeps of it goes back to the system */
        n->trim_pending = 0;
        n->trimmed_at = ev_now(n->loop);
#ifdef __GLIBC__
        malloc_trim(0);
#endif
    }
    /* a trim still pending waits for a later loop iteration (link.c) */
    if (n->trim_pending) ev_prepare_start(n->loop, &n->flush_w);
    return 0;
}

/* ------------------------------------------------------------------ */
/* peers                                                               */

int aemp__is_self(const aemp_node_t *n, const char *name)
{
    return !*name || aemp__map_get(&n->self_names, name) != NULL;
}

/* name's len bytes as a string: in buf (size bytes) when they fit,
 * else malloc'd (NULL: out of memory; the caller frees what is not buf) */
static char *name_z(const char *name, size_t len, char *buf, size_t size)
{
    char *c = len < size ? buf : malloc(len + 1);
    if (!c) return NULL;
    memcpy(c, name, len);
    c[len] = 0;
    return c;
}

int aemp__is_self_n(const aemp_node_t *n, const char *name, size_t len)
{
    char buf[256], *c = name_z(name, len, buf, sizeof buf);
    int self = c && aemp__is_self(n, c);
    if (c != buf) free(c);
    return self;
}

/* Every change to the peer table or to our own names ends the send
 * path's remembered destination (see route()). */
void aemp__routes_changed(aemp_node_t *n)
{
    n->route_peer = NULL;
}
#define routes_changed aemp__routes_changed

/* What a key of the peer table counts in max_peer_memory. */
static size_t key_cost(const char *key)
{
    return AEMP_PEER_KEY_COST + strlen(key);
}

/* p's keys count keys_counted from now on. */
static void keys_count(aemp__peer_t *p, size_t keys_counted)
{
    p->node->peer_table_bytes += keys_counted;
    p->node->peer_table_bytes -= p->keys_counted;
    p->keys_counted = keys_counted;
}

/* p's entry (its name, its endpoints) counted as it is now: O(its
 * endpoints), which its name bounds (name_check). */
static void entry_count(aemp__peer_t *p)
{
    size_t b = AEMP_PEER_ENTRY_COST + (p->noderef ? strlen(p->noderef) : 0);
    for (size_t i = 0; p->eps && i < p->neps; i++) b += strlen(p->eps[i]) + sizeof *p->eps;
    p->node->peer_table_bytes += b;
    p->node->peer_table_bytes -= p->entry_counted;
    p->entry_counted = b;
}

/* p is known as key from now on (a key that meant another peer moves). */
static int peer_key_add(aemp_node_t *n, aemp__peer_t *p, const char *key)
{
    if (aemp__map_get(&n->peers, key) == p) return 0;
    /* keys that went to another peer since are forgotten whenever the
     * list reaches a power of two: it follows the keys p has, not every
     * move of a key between peers (amortised O(1) per key) */
    if (p->nnames >= 8 && !(p->nnames & (p->nnames - 1))) {
        size_t k = 0, counted = p->keys_counted;
        for (size_t i = 0; i < p->nnames; i++) {
            if (aemp__map_get(&n->peers, p->names[i]) == p) {
                p->names[k++] = p->names[i];
            } else {
                counted -= key_cost(p->names[i]);
                free(p->names[i]);
            }
        }
        p->nnames = k;
        keys_count(p, counted);
    }
    char **v = realloc(p->names, (p->nnames + 1) * sizeof *v);
    if (!v) return AEMP_ENOMEM;
    p->names = v;
    if (!(v[p->nnames] = strdup(key))) return AEMP_ENOMEM;
    int rc = aemp__map_set(&n->peers, key, p);
    if (rc) {
        free(v[p->nnames]);
    } else {
        p->nnames++;
        keys_count(p, p->keys_counted + key_cost(key));
    }
    return rc;
}

/* p's keys forgotten: each one that still means p leaves the table (one
 * lookup per key, whatever the table holds). */
static void peer_keys_drop(aemp_node_t *n, aemp__peer_t *p)
{
    for (size_t i = 0; i < p->nnames; i++) {
        if (aemp__map_get(&n->peers, p->names[i]) == p) aemp__map_del(&n->peers, p->names[i]);
        free(p->names[i]);
    }
    free(p->names);
    p->names = NULL;
    p->nnames = 0;
    keys_count(p, 0);
    routes_changed(n);
}

/* The peer is known by name and by every endpoint the name carries. */
static int peer_register(aemp_node_t *n, aemp__peer_t *p, const char *name)
{
    routes_changed(n);
    int rc = peer_key_add(n, p, name);
    size_t cnt = 0;
    char **eps = n->dialect->name_endpoints(name, &cnt);
    for (size_t i = 0; !rc && i < cnt && cnt > 1; i++) rc = peer_key_add(n, p, eps[i]);
    aemp__strv_free(eps);
    return rc;
}

int aemp__peer_add_name(aemp__peer_t *p, const char *name)
{
    return peer_register(p->node, p, name);
}

int aemp__peer_set_name(aemp__peer_t *p, const char *name)
{
    char *c = strdup(name);
    if (!c) return AEMP_ENOMEM;
    aemp__ports_watcher_renamed(p->node, p->noderef, c);
    free(p->noderef);
    p->noderef = c;
    entry_count(p);
    return 0;
}

void aemp__peer_set_endpoints(aemp__peer_t *p, char **eps, size_t count)
{
    aemp__strv_free(p->eps);
    p->eps = eps;
    p->neps = count;
    entry_count(p);
}

/* Finds the peer known under name or one of the endpoints the name
 * carries (the naming model says which: a protocol-1 id carries none). */
static aemp__peer_t *peer_find(aemp_node_t *n, const char *name)
{
    aemp__peer_t *p = aemp__map_get(&n->peers, name);
    if (p) return p;
    size_t cnt = 0;
    char **eps = n->dialect->name_endpoints(name, &cnt);
    for (size_t i = 0; eps && !p && i < cnt && cnt > 1; i++) p = aemp__map_get(&n->peers, eps[i]);
    aemp__strv_free(eps);
    return p;
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* 0 when name may be a peer's, else AEMP_ELIMIT with why set (the
 * dialect's limits on what a name carries). */
static int name_check(aemp_node_t *n, const char *name, char *why, size_t len)
{
    return n->dialect->name_check ? n->dialect->name_check(name, why, len) : 0;
}

/* A new peer named noderef (not known, and within the dialect's limits:
 * the callers check), or NULL (out of memory). */
static aemp__peer_t *peer_make(aemp_node_t *n, const char *noderef)
{
    aemp__peer_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->node = n;
    p->noderef = strdup(noderef);
    p->eps = n->dialect->name_endpoints(noderef, &p->neps);
    if (!p->noderef || peer_register(n, p, noderef)) {
        peer_keys_drop(n, p);
        free(p->noderef);
        aemp__strv_free(p->eps);
        free(p);
        return NULL;
    }
    entry_count(p);
    ev_init(&p->retry, retry_cb);
    p->retry.data = p;
    p->next = n->peers_list;
    if (n->peers_list) n->peers_list->prev = p;
    n->peers_list = p;
    return p;
}

aemp__peer_t *aemp__peer_get(aemp_node_t *n, const char *noderef, int create)
{
    aemp__peer_t *p = peer_find(n, noderef);
    char why[128];
    if (p || !create || name_check(n, noderef, why, sizeof why)) return p;
    return peer_make(n, noderef);
}

/* Brings node->peer_queued up to date with p's queue. */
static void queue_count(aemp__peer_t *p)
{
    size_t now = aemp__buf_size(&p->queue);
    p->node->peer_queued += now;
    p->node->peer_queued -= p->queue_counted;
    p->queue_counted = now;
}

/* Empties p's queue. */
static void queue_free(aemp__peer_t *p)
{
    if (p->queue.cap > AEMP_TRIM_AFTER) p->node->trim_pending = 1;
    aemp__buf_free(&p->queue);
    queue_count(p);
}

/* The peer lost its last link: looked at when the callbacks unwind. */
static void idle_add(aemp__peer_t *p)
{
    aemp_node_t *n = p->node;
    if (p->idle_queued) return;
    p->idle_queued = 1;
    p->idle_prev = NULL;
    p->idle_next = n->peers_idle;
    if (n->peers_idle) n->peers_idle->idle_prev = p;
    n->peers_idle = p;
}

static void idle_remove(aemp__peer_t *p)
{
    aemp_node_t *n = p->node;
    if (!p->idle_queued) return;
    p->idle_queued = 0;
    if (p->idle_prev) p->idle_prev->idle_next = p->idle_next;
    else n->peers_idle = p->idle_next;
    if (p->idle_next) p->idle_next->idle_prev = p->idle_prev;
}

/* Takes p out of the peer list (not out of the name map). */
static void peer_unlist(aemp__peer_t *p)
{
    aemp_node_t *n = p->node;
    if (p->prev) p->prev->next = p->next;
    else n->peers_list = p->next;
    if (p->next) p->next->prev = p->prev;
}

/* p is no longer unasked: a link to it came up, or we sent it something
 * ourselves (or it goes). */
static void unasked_end(aemp__peer_t *p)
{
    aemp_node_t *n = p->node;
    if (p->cause) {
        /* the entry counts p's cost (and every other peer's under it) */
        uintptr_t c = (uintptr_t)aemp__map_get(&n->caused, p->cause) - p->unasked_cost;
        if (c) aemp__map_set(&n->caused, p->cause, (void *)c); /* replaces: no allocation */
        else aemp__map_del(&n->caused, p->cause); /* (p->cause was its key) */
        p->cause = NULL;
    }
    n->unasked_bytes -= p->unasked_cost;
    p->unasked_cost = 0;
}

static void peer_free(aemp__peer_t *p)
{
    aemp_node_t *n = p->node;
    idle_remove(p);
    peer_keys_drop(n, p); /* (a merged peer's keys moved on before) */
    unasked_end(p);
    n->peer_table_bytes -= p->entry_counted;
    ev_timer_stop(n->loop, &p->retry);
    queue_free(p);
    aemp__strv_free(p->eps);
    free(p->noderef);
    free(p->alias);
    free(p->old_name);
    free(p->last_error);
    free(p);
}

/* A peer with no link, no attempt and nothing queued is forgotten, so a
 * node that meets many short-lived nodes (every `aemp snd` is one) does
 * not grow with them. Runs when the callback stack has unwound, so no
 * caller holds the pointer; looks only at the peers that lost their last
 * link since (not at every peer). */
static void reap_idle_peers(aemp_node_t *n)
{
    while (n->peers_idle) {
        aemp__peer_t *p = n->peers_idle;
        idle_remove(p);
        if (!p->links && !p->link && !p->connecting && !aemp__buf_size(&p->queue)) {
            peer_unlist(p);
            peer_free(p);
        }
    }
}

/* The peer is unreachable or its link failed: drop what waits for it and
 * tell the layers above. */
void aemp__peer_fail(aemp__peer_t *p, const char *msg)
{
    aemp_node_t *n = p->node;
    p->connecting = 0;
    p->resolving = 0;
    ev_timer_stop(n->loop, &p->retry);
    queue_free(p);
    idle_add(p); /* forgotten once the callbacks unwind, unless in use again */
    char *name = strdup(p->noderef);
    char *m = strdup(msg);
    if (!name || !m) {
        free(name);
        free(m);
        return;
    }
    n->dialect->peer_down(n, p);
    aemp__ports_peer_failed(n, name, m);
    if (n->cfg.on_link && !n->destroy_pending) n->cfg.on_link(n->cfg.link_ud, n, name, 0, m);
    free(name);
    free(m);
}

/* One of our own connection attempts (incoming links join a peer only
 * once verified, so they never count). */
static int is_attempt(const aemp__link_t *l)
{
    return l->outgoing && (l->state == LINK_CONNECTING || l->state == LINK_HANDSHAKE);
}

void aemp__peer_forget(aemp__peer_t *p, const char *msg)
{
    if (!p->connecting && !p->resolving) return;
    p->connecting = 0;
    for (aemp__link_t *l = p->links, *next; l; l = next) {
        next = l->peer_next;
        if (is_attempt(l)) aemp__link_close(l, msg, 1);
    }
    aemp__peer_fail(p, msg);
}

static int peer_has_attempt(const aemp__peer_t *p)
{
    for (aemp__link_t *l = p->links; l; l = l->peer_next)
        if (is_attempt(l)) return 1;
    return 0;
}

/* Starts the next connection attempt of the current round, if any. */
void aemp__peer_try(aemp__peer_t *p)
{
    aemp_node_t *n = p->node;
    /* a connect that fails at once fails its link, whose end asks for
     * the next endpoint: that is this loop's next turn, not a call in a
     * call (a g_found of 100 000 unreachable addresses overflowed the
     * stack) */
    if (p->trying) return;
    p->trying = 1;
    while (p->connecting && !p->link && !peer_has_attempt(p) && p->next_ep < p->neps &&
           !n->destroy_pending) {
        uintptr_t by = p->cause ? (uintptr_t)aemp__map_get(&n->cause_attempts, p->cause) : 0;
        if (p->unasked_cost && (n->unasked_attempts >= AEMP_UNASKED_ATTEMPTS_MAX ||
                                by >= AEMP_UNASKED_ATTEMPTS_PER_NODE)) {
            /* a peer's messages cannot make us hold descriptors without
             * bound, nor take the others' attempts: this one waits for
             * its next round (the words before the names keep the log's
             * limit on lines of a kind) */
            if (!p->waited)
                aemp__log(n, AEMP_LOG_WARN, "unasked peers: connection attempts wait: %u run, %u "
                          "for the nodes %s's messages named (at most %u, %u each); %s waits",
                          n->unasked_attempts, (unsigned)by, p->cause ? p->cause : "?",
                          AEMP_UNASKED_ATTEMPTS_MAX, AEMP_UNASKED_ATTEMPTS_PER_NODE, p->noderef);
            p->waited = 1;
            break;
        }
        const char *ep = p->eps[p->next_ep++];
        aemp__log(n, AEMP_LOG_DEBUG, "%s: connecting", ep);
        aemp__link_connect(n, p, ep);
    }
    p->trying = 0;
}

void aemp__peer_resolved(aemp__peer_t *p, char **eps, size_t count)
{
    aemp__peer_set_endpoints(p, eps, count);
    p->next_ep = 0;
    if (p->connecting) aemp__peer_try(p);
    else aemp__peer_connect(p);
}

/* Our own send or connect to p: it is no longer unasked, and when it
 * waited for an attempt (AEMP_UNASKED_ATTEMPTS_MAX) its connecting
 * starts anew now, with a deadline of its own. */
static void peer_asked(aemp__peer_t *p)
{
    if (!p->unasked_cost) return;
    unasked_end(p);
    if (p->connecting && !p->link && !peer_has_attempt(p)) {
        p->connecting = 0;
        ev_timer_stop(p->node->loop, &p->retry);
        aemp__peer_connect(p);
    }
}

void aemp__peer_connect(aemp__peer_t *p)
{
    aemp_node_t *n = p->node;
    if (!n->acting_for) peer_asked(p);
    if (p->link || p->connecting) return;
    /* the caller may have blocked outside the loop: timers start from now */
    ev_now_update(n->loop);
    if (!p->neps) {
        /* endpoints unknown: the naming model finds them (and calls
         * aemp__peer_connect again), or says why it cannot */
        const char *why = peer_has_attempt(p) ? NULL : n->dialect->peer_resolve(n, p);
        if (why) {
            aemp__peer_fail(p, why);
            return;
        }
    }
    p->connecting = 1;
    p->next_ep = 0;
    p->connect_deadline = ev_now(n->loop) + n->cfg.connect_timeout;
    ev_timer_set(&p->retry, n->cfg.connect_interval, 0.0);
    ev_timer_start(n->loop, &p->retry);
    aemp__peer_try(p);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    aemp__peer_t *p = w->data;
    aemp_node_t *n = p->node;
    (void)revents;
    aemp__enter(n);
    if (!p->connecting || p->link) goto out;
    ev_tstamp now = ev_now(loop);
    if (now >= p->connect_deadline) {
        /* give up: close the attempts still running (no new ones start
         * as they go), then report */
        p->connecting = 0;
        int held = 0;
        for (aemp__link_t *l = p->links, *next; l; l = next) {
            next = l->peer_next;
            if (is_attempt(l))
                aemp__link_close(l, "Connection timed out", 1);
            else if (l->state == LINK_HELD)
                held = 1;
        }
        if (held) {
            /* the peer's own link, held for these attempts, goes up next
             * (its timer was kicked): one more look before giving up */
            p->connecting = 1;
            ev_timer_set(&p->retry, 1.0, 0.0);
            ev_timer_start(loop, &p->retry);
            goto out;
        }
        const char *why = p->last_error ? p->last_error : n->dialect->unreachable;
        aemp__log(n, AEMP_LOG_WARN, "%s: %s", p->noderef, why);
        aemp__peer_fail(p, why);
        goto out;
    }
    /* a new round */
    p->next_ep = 0;
    double left = p->connect_deadline - now;
    ev_timer_set(&p->retry, left < n->cfg.connect_interval ? left : n->cfg.connect_interval, 0.0);
    ev_timer_start(loop, &p->retry);
    aemp__peer_try(p);
out:
    aemp__leave(n);
}

/* Removes l from its peer's list. */
static void peer_unlink(aemp__link_t *l)
{
    aemp__peer_t *p = l->peer;
    if (!p) return;
    for (aemp__link_t **pp = &p->links; *pp; pp = &(*pp)->peer_next)
        if (*pp == l) {
            *pp = l->peer_next;
            break;
        }
    l->peer_next = NULL;
}

/* Moves everything of `from` into `to` (the same node seen under two
 * names), then frees `from`. */
static void peer_merge(aemp_node_t *n, aemp__peer_t *from, aemp__peer_t *to)
{
    while (from->links) {
        aemp__link_t *l = from->links;
        from->links = l->peer_next;
        l->peer = to;
        l->peer_next = to->links;
        to->links = l;
    }
    if (from->link && !to->link) to->link = from->link;
    aemp__ports_watcher_renamed(n, from->noderef, to->noderef); /* its watches too */
    /* (what waits for `to`: its queue, or its link's when one is up -
     * where the queue goes next) */
    size_t more = aemp__buf_size(&from->queue),
           had = aemp__buf_size(&to->queue) + (to->link ? aemp__link_queued(to->link) : 0);
    int overflow = more && had + more > n->cfg.max_outq;
    if (overflow) {
        aemp__log(n, AEMP_LOG_WARN, "%s: send queue overflow (%zu bytes) as %s is found to be "
                  "the same node", to->noderef, had + more, from->noderef);
        queue_free(from);
    } else if (more) {
        aemp__buf_append(&to->queue, aemp__buf_head(&from->queue), more);
    }
    queue_count(to);
    if (from->connecting && !to->connecting && !to->link) {
        to->connecting = 1;
        to->connect_deadline = from->connect_deadline;
        ev_timer_set(&to->retry, n->cfg.connect_interval, 0.0);
        ev_timer_start(n->loop, &to->retry);
    }
    /* every name of `from` now means `to` */
    routes_changed(n);
    for (size_t i = 0; i < from->nnames; i++)
        if (aemp__map_get(&n->peers, from->names[i]) == from &&
            peer_key_add(n, to, from->names[i]))
            aemp__map_del(&n->peers, from->names[i]); /* out of memory: not a dangling one */
    peer_unlist(from);
    peer_free(from);
    if (overflow) {
        /* the two queues together pass max_outq: as any overflow, the
         * node's link is cut and it has failed (what waited for it under
         * either name is gone, and our monitors of it hear so) */
        if (to->link) aemp__link_close(to->link, "send queue overflow", 1);
        aemp__peer_fail(to, "send queue overflow");
    }
}

int aemp__link_greeted(aemp__link_t *l, const char *remote)
{
    aemp_node_t *n = l->node;
    /* the name is not proven yet: only a link to ourselves is refused,
     * and a name over the dialect's limits (it could not be a peer's) */
    if (!remote || !*remote || aemp__is_self(n, remote)) {
        aemp__link_close(l, "connected to myself", 1);
        return 1;
    }
    char why[128];
    if (name_check(n, remote, why, sizeof why)) {
        aemp__link_close(l, why, 0);
        return 1;
    }
    /* protocol 1: a node with a link up is not linked to again. When our
     * own attempt finds it so, the address it was made for (a seed's)
     * names that node too from now on, and the naming model hears of the
     * link under that name (a seed that reached us first is our seed) */
    aemp__peer_t *p = n->dialect->quirks.refuse_second_link ? peer_find(n, remote) : NULL;
    if (p && p->link && p->link != l && p->link->state == LINK_UP) {
        if (l->outgoing && l->peer && l->peer != p) {
            peer_merge(n, l->peer, p);
            /* what waited for the address goes out on the node's link */
            if (aemp__buf_size(&p->queue)) {
                aemp__link_queue_json(p->link, aemp__buf_head(&p->queue), aemp__buf_size(&p->queue));
                queue_free(p);
            }
            n->dialect->peer_aliased(n, p);
        }
        return 2;
    }
    if (l->outgoing && n->dialect->link_greeted)
        return n->dialect->link_greeted(l, peer_find(n, remote));
    return 0;
}

/* The link's peer has proven itself: the link joins the peer known by the
 * name it greeted with (merging the peer the link was started for into
 * it when the two differ), and the peer learns its full name. Returns the
 * peer, or NULL when the link was closed. */
static aemp__peer_t *peer_identify(aemp__link_t *l)
{
    aemp_node_t *n = l->node;
    const char *remote = aemp_hs_remote_noderef(aemp__link_hs(l));
    aemp__peer_t *p = peer_find(n, remote);
    if (!p) p = l->peer;
    if (!p) p = aemp__peer_get(n, remote, 1);
    if (!p) {
        aemp__link_close(l, "out of memory", 0);
        return NULL;
    }
    if (l->peer && l->peer != p) peer_merge(n, l->peer, p);
    if (!l->peer) {
        l->peer = p;
        l->peer_next = p->links;
        p->links = l;
    }
    if (p->alias && !strcmp(p->alias, remote)) {
        /* the name an iam gave is the one it greets with now: its own
         * name, which a later iam does not take away */
        free(p->alias);
        p->alias = NULL;
    }
    /* learn the peer's full name (and its endpoints for reconnecting) */
    if (strcmp(p->noderef, remote)) n->dialect->peer_named(n, p, remote);
    return p;
}

/* Whether the verified incoming link l must stay held: only the node
 * with the smaller noderef holds, while its own link to the peer (an
 * attempt, or one that is up) may be the one the peer uses. */
static int incoming_must_wait(const aemp__link_t *l)
{
    const aemp__peer_t *p = l->peer;
    if (strcmp(l->node->greet_name, aemp_hs_remote_noderef(aemp__link_hs(l))) >= 0) return 0;
    if (peer_has_attempt(p)) return 1;
    if (p->link && p->link != l && p->link->outgoing && p->link->state == LINK_UP)
        return !l->held_until || ev_now(l->node->loop) < l->held_until;
    return 0;
}

int aemp__link_verified(aemp__link_t *l)
{
    aemp_node_t *n = l->node;
    aemp__peer_t *p = peer_identify(l);
    if (!p) return 1;
    if (n->dialect->link_verified && n->dialect->link_verified(l)) return 1;
    if (!incoming_must_wait(l)) return 0;
    l->state = LINK_HELD; /* read_cb only watches for its close */
    aemp__log(n, AEMP_LOG_DEBUG, "%s: held (simultaneous connect)", l->addr);
    if (!peer_has_attempt(p)) {
        /* the peer may have restarted: a dead old link shows itself when
         * written to, which releases this one. A peer that merely opened
         * a second link (under another name for us) would wait forever
         * on a healthy old link: after AEMP_HOLD_UP_MAX the new link
         * replaces it, as at the larger node. */
        l->held_until = ev_now(n->loop) + AEMP_HOLD_UP_MAX;
        aemp__link_probe(p->link);
    }
    return 1;
}

int aemp__link_may_release(const aemp__link_t *l)
{
    return l->peer && !incoming_must_wait(l);
}

/* Something that kept p's held links waiting went away: each gets a look
 * from its own timer callback (not from here, where the caller may be
 * walking the peer's links). */
static void peer_kick_held(aemp__peer_t *p)
{
    for (aemp__link_t *o = p->links; o; o = o->peer_next)
        if (o->state == LINK_HELD) aemp__link_kick(o);
}

void aemp__link_authenticated(aemp__link_t *l)
{
    aemp_node_t *n = l->node;
    /* an incoming link was identified when its peer's auth line came */
    aemp__peer_t *p = l->outgoing ? peer_identify(l) : l->peer;
    if (!p) return;
    aemp__link_t *old = p->link;
    p->link = l;
    l->auth_out = 1;
    p->connecting = 0;
    unasked_end(p);
    ev_timer_stop(n->loop, &p->retry);
    free(p->last_error);
    p->last_error = NULL;
    p->last_reason = 0;
    /* the losers of a simultaneous connect are no longer needed */
    for (aemp__link_t *o = p->links; o;) {
        aemp__link_t *next = o->peer_next;
        if (o != l && o != old && o->state != LINK_UP) aemp__link_close(o, "superseded", 1);
        o = next;
    }
    const aemp_hs_t *hs = aemp__link_hs(l);
    const char *provider = aemp_hs_remote_kv(hs, "provider");
    const char *fo = aemp__link_framing(l, 0), *fi = aemp__link_framing(l, 1);
    if (fo && fi && strcmp(fo, fi))
        aemp__log(n, AEMP_LOG_INFO, "%s: link up (%s, %s, framing %s out, %s in)", l->addr,
                  p->noderef, provider ? provider : "?", fo, fi);
    else
        aemp__log(n, AEMP_LOG_INFO, "%s: link up (%s, %s, framing %s)", l->addr, p->noderef,
                  provider ? provider : "?", fo ? fo : "?");
    n->dialect->link_up(n, p, l);
    if (aemp__buf_size(&p->queue)) {
        /* first, so that failing the old link below drops none of it */
        aemp__link_queue_json(l, aemp__buf_head(&p->queue), aemp__buf_size(&p->queue));
        queue_free(p);
    }
    if (old && old != l) {
        /* a new link replaces the old one: what was in flight on it may
         * be lost, so its monitors must hear of it */
        aemp__link_close(old, "replaced by a new link", 1);
        aemp__peer_fail(p, "replaced by a new link");
    }
    if (n->cfg.on_link) n->cfg.on_link(n->cfg.link_ud, n, p->noderef, 1, "");
}

void aemp__link_died(aemp__link_t *l, int silent)
{
    aemp__peer_t *p = l->peer;
    if (!p) return;
    aemp_node_t *n = l->node;
    int was_current = p->link == l;
    peer_unlink(l);
    if (!p->links) idle_add(p);
    /* held links wait for other links of the peer: each end is news */
    peer_kick_held(p);
    if (was_current) {
        p->link = NULL;
        if (!silent) aemp__peer_fail(p, l->error ? l->error : "closed");
        return;
    }
    if (silent) {
        if (p->connecting) aemp__peer_try(p);
        return;
    }
    /* a failed attempt: remember why, try the next endpoint; the round
     * timer starts new rounds and finally gives up */
    free(p->last_error);
    p->last_error = l->error ? strdup(l->error) : NULL;
    p->last_reason = l->reason;
    if (l->outgoing && n->cfg.on_connect_failed && !n->destroy_pending)
        n->cfg.on_connect_failed(n->cfg.connect_failed_ud, n, p->noderef, l->addr,
                                 l->error ? l->error : "closed");
    if (p->connecting) aemp__peer_try(p);
}

/* ------------------------------------------------------------------ */
/* delivery and sending                                                */

/* A message for one of our own ports waits for the loop, its target id
 * kept apart from the elements as on every other path. `as` is the node
 * it was sent for (a peer whose message was being handled: it arrives as
 * that peer's), NULL when we sent it ourselves; `link` the serial of
 * that peer's link then (0: none). */
struct aemp__local_msg {
    struct aemp__local_msg *next;
    json_t *elems;
    const char *as;
    unsigned long link;
    /* aemp__node_later: called with elems instead of a delivery */
    void (*fn)(aemp_node_t *n, json_t *elems);
    size_t idlen;
    char id[];
};

/* The serial of the link that is up to the peer `as`, or 0. */
static unsigned long acting_link(aemp_node_t *n, const char *as)
{
    aemp__peer_t *p = peer_find(n, as);
    return p && p->link && p->link->state == LINK_UP ? p->link->serial : 0;
}

static void local_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    aemp_node_t *n = w->data;
    (void)revents;
    aemp__enter(n);
    /* only what is queued now: messages sent by handlers wait a turn */
    aemp__local_msg_t *m = n->local_head, *last = n->local_tail;
    n->local_head = n->local_tail = NULL;
    ev_idle_stop(loop, w);
    while (m) {
        aemp__local_msg_t *next = m == last ? NULL : m->next;
        if (!n->destroy_pending) {
            if (m->fn) m->fn(n, m->elems);
            else if (!m->idlen && m->as && (!m->link || acting_link(n, m->as) != m->link))
                /* a request at our node port for a node whose link has
                 * gone since (or whose name now leads elsewhere): it
                 * would act for nobody (a database share that no
                 * node-down ever removes) */
                aemp__log(n, AEMP_LOG_WARN, "%s: its request to this node's own node port "
                          "dropped: no link to that node now (it went, or goes by another name)", m->as);
            else aemp__dispatch(n, m->as ? m->as : n->noderef, m->id, m->idlen, m->elems);
        }
        json_decref(m->elems);
        free(m);
        m = next;
    }
    aemp__leave(n);
}

static void local_append(aemp_node_t *n, aemp__local_msg_t *m)
{
    m->next = NULL;
    if (n->local_tail) n->local_tail->next = m;
    else n->local_head = m;
    n->local_tail = m;
    ev_idle_start(n->loop, &n->local_w);
}

static int queue_local(aemp_node_t *n, const char *id, size_t idlen, const aemp__payload_t *pl)
{
    json_t *elems = aemp__payload_value(pl);
    if (!elems) return AEMP_EINVAL;
    size_t aslen = n->acting_for ? strlen(n->acting_for) + 1 : 0;
    aemp__local_msg_t *m = malloc(sizeof *m + idlen + 1 + aslen);
    if (!m) {
        json_decref(elems);
        return AEMP_ENOMEM;
    }
    memcpy(m->id, id, idlen);
    m->id[idlen] = 0;
    m->idlen = idlen;
    m->as = aslen ? memcpy(m->id + idlen + 1, n->acting_for, aslen) : NULL;
    m->link = m->as && !idlen ? acting_link(n, m->as) : 0;
    m->elems = elems;
    m->fn = NULL;
    local_append(n, m);
    return 0;
}

int aemp__node_later(aemp_node_t *n, void (*fn)(aemp_node_t *n, json_t *elems), json_t *elems)
{
    if (!elems) return AEMP_EINVAL;
    aemp__local_msg_t *m = malloc(sizeof *m + 1);
    if (!m) {
        json_decref(elems);
        return AEMP_ENOMEM;
    }
    m->id[0] = 0;
    m->idlen = 0;
    m->as = NULL;
    m->elems = elems;
    m->fn = fn;
    local_append(n, m);
    return 0;
}

/* The peer's new name nn (protocol 0's iam) becomes its name and a key
 * of it, in place of the key its previous iam added: an honest node says
 * iam once per link, so a peer holds one such key however often it says
 * it. */
void aemp__node_peer_renamed(aemp_node_t *n, const char *src, const char *nn)
{
    aemp__peer_t *sp = peer_find(n, src);
    if (!sp || !*nn || aemp__is_self(n, nn)) return;
    aemp__peer_t *holder = peer_find(n, nn);
    if (holder == sp) return;
    char why[128];
    if (name_check(n, nn, why, sizeof why)) {
        aemp__log(n, AEMP_LOG_WARN, "%s: iam refused: %s", sp->noderef, why);
        return;
    }
    if (holder && (holder->link || holder->links)) {
        /* a name in use by another connected node is not taken */
        aemp__log(n, AEMP_LOG_WARN, "%s: iam refused: %s is another connected node",
                  sp->noderef, holder->noderef);
        return;
    }
    char *c = strdup(nn), *a = strdup(nn);
    if (!c || !a || peer_key_add(n, sp, nn)) {
        free(c);
        free(a);
        return;
    }
    routes_changed(n);
    if (sp->alias && aemp__map_get(&n->peers, sp->alias) == sp)
        aemp__map_del(&n->peers, sp->alias); /* (its list forgets it in time) */
    free(sp->alias);
    sp->alias = a;
    /* the message being handled names its source by the old name (src,
     * acting_for): it stays until the next rename or the peer goes */
    free(sp->old_name);
    sp->old_name = sp->noderef;
    sp->noderef = c;
    entry_count(sp);
    aemp__ports_watcher_renamed(n, sp->old_name, c);
}

/* What the node holds for all peers together (max_peer_memory): kept
 * up to date as it changes, so this is O(1). */
static size_t mem_total(aemp_node_t *n)
{
    size_t db = n->dialect->held ? n->dialect->held(n, NULL) : 0;
    return n->peer_queued + db + aemp__ports_watches(n, NULL) * AEMP_PEER_MONITOR_COST +
           n->peer_table_bytes;
}

/* What the node holds for p. */
static size_t mem_of(aemp_node_t *n, const aemp__peer_t *p)
{
    size_t b = aemp__buf_size(&p->queue) + p->entry_counted + p->keys_counted;
    for (const aemp__link_t *l = p->links; l; l = l->peer_next) b += aemp__link_queued(l);
    if (n->dialect->held) b += n->dialect->held(n, p->noderef);
    return b + aemp__ports_watches(n, p->noderef) * AEMP_PEER_MONITOR_COST;
}

int aemp__mem_check(aemp_node_t *n, const aemp__peer_t *p)
{
    int cut_p = 0;
    size_t total;
    while ((total = mem_total(n)) > n->cfg.max_peer_memory) {
        /* Past the cap, which honest use does not reach: only here is
         * every peer visited, to find the one holding the most. Each
         * pass cuts one and releases what it held. */
        aemp__peer_t *worst = NULL;
        size_t most = 0;
        for (aemp__peer_t *q = n->peers_list; q; q = q->next) {
            size_t b = mem_of(n, q);
            if (b > most) {
                most = b;
                worst = q;
            }
        }
        if (!worst) break; /* (not held for a peer we know: a handshake) */
        char why[96];
        snprintf(why, sizeof why, "node memory cap: this peer held the most (%zu bytes)", most);
        aemp__log(n, AEMP_LOG_WARN, "%s: %s", worst->noderef, why);
        for (aemp__link_t *l = worst->links, *next; l; l = next) {
            next = l->peer_next;
            aemp__link_close(l, why, 1);
        }
        worst->connecting = 0;
        aemp__peer_fail(worst, why);
        if (most > AEMP_TRIM_AFTER) n->trim_pending = 1;
        cut_p |= worst == p;
        if (mem_total(n) >= total) break; /* nothing came free: give up */
    }
    return cut_p;
}

/* Appends the message to p's link (or, before the link is up, to its
 * queue) and sends it on its way. cache (or NULL): the message's
 * encodings so far, shared by the peers it goes to (aemp__send_shared). */
static int send_to_peer(aemp_node_t *n, aemp__peer_t *p, const char *id, size_t idlen,
                        const aemp__payload_t *pl, aemp__enc_cache_t *cache)
{
    int rc;
    size_t queued;
    /* sent for another peer (a relay, an answer to a port it named): it
     * may fill half of this peer's max_outq and must not take the node
     * over max_peer_memory - past either, this message is dropped and
     * its sender named, rather than the link of a node that only
     * received cut for what another one sent */
    int for_other = n->acting_for && n->acting_for != p->noderef && /* (the common answer) */
                    peer_find(n, n->acting_for) != p;
    size_t mark = p->link ? aemp__link_out_size(p->link) : aemp__buf_size(&p->queue);
    if (p->link) {
        rc = aemp__link_queue_shared(p->link, id, idlen, pl, cache);
        queued = aemp__link_queued(p->link);
    } else {
        rc = aemp__payload_encode(&p->queue, id, idlen, pl);
        queue_count(p);
        queued = aemp__buf_size(&p->queue);
    }
    size_t total = 0;
    if (!rc && for_other &&
        (queued > n->cfg.max_outq / 2 || (total = mem_total(n)) > n->cfg.max_peer_memory)) {
        if (p->link) {
            aemp__link_out_cut(p->link, mark);
        } else {
            aemp__buf_cut(&p->queue, mark);
            queue_count(p);
        }
        aemp__log(n, AEMP_LOG_WARN, "%s: message to %s dropped: %s", n->acting_for, p->noderef,
                  total ? "the node would hold more than max_peer_memory"
                        : "its send queue would hold more than half of max_outq (what other "
                          "nodes' messages may fill)");
        rc = AEMP_ELIMIT;
    }
    if (rc) {
        /* a peer made for this message and left unused goes (reaped) */
        if (!p->link && !p->links && !p->connecting && !aemp__buf_size(&p->queue)) idle_add(p);
        return rc;
    }
    if (queued > n->cfg.max_outq) {
        aemp__log(n, AEMP_LOG_WARN, "%s: send queue overflow (%zu bytes)", p->noderef, queued);
        if (p->link) aemp__link_close(p->link, "send queue overflow", 1);
        aemp__peer_fail(p, "send queue overflow");
        return AEMP_ELIMIT;
    }
    if (aemp__mem_check(n, p)) return AEMP_ELIMIT;
    if (!p->link) aemp__peer_connect(p);
    return 0;
}

/* A new peer named name, for a message we send (n->acting_for: for that
 * peer), or NULL with *err: AEMP_ELIMIT when the name is over the
 * dialect's limits or, for a peer's message, when the unasked peers
 * that peer's messages made hold its part (a sixteenth of
 * max_peer_memory: one peer cannot take the others' part), or all
 * unasked peers hold theirs (a quarter); AEMP_ENOMEM. The checks are
 * O(1) (and O(name)): the budgets, not a walk, bound them. */
static aemp__peer_t *peer_new_for_send(aemp_node_t *n, const char *name, int *err)
{
    const char *sender = n->acting_for ? n->acting_for : n->noderef;
    char why[128];
    *err = AEMP_ELIMIT;
    if (name_check(n, name, why, sizeof why)) {
        aemp__log(n, AEMP_LOG_WARN, "%s: message to a node name over the limit dropped: %s",
                  sender, why);
        return NULL;
    }
    /* at most what the peer will count (entry_count, key_cost): its
     * name three times (name, key, endpoints), a key per endpoint */
    size_t len = 0, keys = 2, budget = n->cfg.max_peer_memory / 4;
    for (; name[len]; len++) keys += name[len] == ',';
    size_t most = AEMP_PEER_ENTRY_COST + 3 * len + keys * (AEMP_PEER_KEY_COST + sizeof(char *));
    uintptr_t by = n->acting_for ? (uintptr_t)aemp__map_get(&n->caused, n->acting_for) : 0;
    if (n->acting_for && by + most > budget / 4) {
        aemp__log(n, AEMP_LOG_WARN, "%s: messages to nodes not known yet dropped: the nodes its "
                  "messages named hold its %zu bytes (a sixteenth of max_peer_memory)", sender,
                  budget / 4);
        return NULL;
    }
    if (n->acting_for && n->unasked_bytes + most > budget) {
        aemp__log(n, AEMP_LOG_WARN, "%s: messages to nodes not known yet dropped: unasked peers "
                  "hold their %zu bytes (a quarter of max_peer_memory)", sender, budget);
        return NULL;
    }
    *err = AEMP_ENOMEM;
    aemp__peer_t *p = peer_make(n, name); /* (route found none; the name is checked) */
    if (p && n->acting_for) {
        p->unasked_cost = p->entry_counted + p->keys_counted;
        n->unasked_bytes += p->unasked_cost;
        /* counted under the sender's name, kept once in the map however
         * many peers point at it (out of memory: counted only in all) */
        if (!aemp__map_set(&n->caused, n->acting_for, (void *)(by + p->unasked_cost)))
            p->cause = aemp__map_key_of(&n->caused, n->acting_for);
    }
    return p;
}

/* The peer a message to node[0..len) goes to (made when new), or NULL
 * with *self set when that is one of our own names (else *err: see
 * peer_new_for_send). The last destination is remembered, so a stream
 * of messages to one node compares a name instead of hashing it. A
 * message of our own makes its peer one we asked for. */
static aemp__peer_t *route(aemp_node_t *n, const char *node, size_t len, int *self, int *err)
{
    *self = 0;
    *err = AEMP_ENOMEM;
    aemp__peer_t *p = NULL;
    if (n->route_peer && len == n->route_len && aemp__same_bytes(node, n->route_name, len)) {
        p = n->route_peer;
    } else {
        char buf[256], *name = len < sizeof buf ? buf : malloc(len + 1);
        if (!name) return NULL;
        memcpy(name, node, len);
        name[len] = 0;
        if (aemp__is_self(n, name)) {
            *self = 1;
        } else if (((p = peer_find(n, name)) || (p = peer_new_for_send(n, name, err))) &&
                   len < sizeof n->route_name) {
            /* (an empty name is ours, so never remembered: it would
             * match every "#ID") */
            memcpy(n->route_name, node, len);
            n->route_len = len;
            n->route_peer = p;
        }
        if (name != buf) free(name);
    }
    if (p && !n->acting_for) peer_asked(p);
    return p;
}

int aemp__send(aemp_node_t *n, const char *node, size_t nodelen, const char *id, size_t idlen,
               const aemp__payload_t *pl)
{
    int self, err;
    aemp__peer_t *p = route(n, node, nodelen, &self, &err);
    if (self) return queue_local(n, id, idlen, pl);
    if (!p) {
        aemp__payload_drop(pl);
        return err;
    }
    return send_to_peer(n, p, id, idlen, pl, NULL);
}

int aemp__send_own(aemp_node_t *n, const char *node, size_t nodelen, const char *id, size_t idlen,
                   const aemp__payload_t *pl)
{
    const char *as = n->acting_for;
    n->acting_for = NULL;
    int rc = aemp__send(n, node, nodelen, id, idlen, pl);
    n->acting_for = as;
    return rc;
}

int aemp__send_shared(aemp_node_t *n, const char *node, size_t nodelen, const char *id,
                      size_t idlen, const aemp__payload_t *pl, aemp__enc_cache_t *cache)
{
    /* the library's own broadcasts (the database to its watchers and
     * the other global nodes): in our name, whoever's request caused
     * them - never limited or dropped as a message sent for that peer */
    const char *as = n->acting_for;
    n->acting_for = NULL;
    int self, err, rc;
    aemp__peer_t *p = route(n, node, nodelen, &self, &err);
    if (self) {
        rc = aemp__send(n, node, nodelen, id, idlen, pl);
    } else if (!p) {
        aemp__payload_drop(pl);
        rc = err;
    } else {
        rc = send_to_peer(n, p, id, idlen, pl, cache);
    }
    n->acting_for = as;
    return rc;
}

int aemp__node_port_for(aemp_node_t *n, const char *node, size_t len)
{
    if (!n->acting_for) return 0;
    char buf[256], *name = name_z(node, len, buf, sizeof buf);
    if (!name) return AEMP_ENOMEM;
    /* by peer, not by name: a name the peer had may no longer lead to it
     * (its iam dropped the alias) and would make a new peer, another node */
    int self = aemp__is_self(n, name);
    aemp__peer_t *p = self ? NULL : peer_find(n, name);
    int ok = self || (p && p == peer_find(n, n->acting_for));
    if (!ok)
        aemp__log(n, AEMP_LOG_WARN, "%s: a message to another node's node port refused (it would be "
                  "a request in this node's name): to %s", n->acting_for, name);
    if (name != buf) free(name);
    return ok ? 0 : AEMP_ESTATE;
}

int aemp_node_send(aemp_node_t *n, const char *noderef, json_t *msg)
{
    json_t *idv = json_array_get(msg, 0);
    if (!n || !noderef || !json_is_string(idv)) {
        json_decref(msg);
        return AEMP_EINVAL;
    }
    int rc = json_string_length(idv) ? 0 : aemp__node_port_for(n, noderef, strlen(noderef));
    if (rc) {
        json_decref(msg);
        return rc;
    }
    /* the target id leaves the array: what travels is id + elements */
    json_incref(idv);
    json_array_remove(msg, 0);
    aemp__payload_t pl = {msg, NULL, NULL};
    rc = aemp__send(n, noderef, strlen(noderef), json_string_value(idv), json_string_length(idv),
                    &pl);
    json_decref(idv);
    return rc;
}

size_t aemp_node_queued(const aemp_node_t *n, const char *noderef)
{
    aemp__peer_t *p = n && noderef ? aemp__map_get(&n->peers, noderef) : NULL;
    if (!p) return 0;
    return p->link ? aemp__link_queued(p->link) : aemp__buf_size(&p->queue);
}

int aemp_node_connect(aemp_node_t *n, const char *noderef)
{
    if (!n || !noderef || !*noderef || aemp__is_self(n, noderef)) return AEMP_EINVAL;
    char why[128];
    if (name_check(n, noderef, why, sizeof why)) return AEMP_ELIMIT;
    aemp__peer_t *p = peer_find(n, noderef);
    if (!p) p = peer_make(n, noderef);
    if (!p) return AEMP_ENOMEM;
    aemp__peer_connect(p);
    return 0;
}

/* ------------------------------------------------------------------ */
/* listening                                                           */

/* When the oldest incoming handshake may be closed to make room: once
 * silent for AEMP_HANDSHAKE_SILENT_EVICT or in its handshake for
 * AEMP_HANDSHAKE_OLD_EVICT (aemp.h, max_handshakes). A storm of honest
 * peers talks and finishes young; a connection that holds a descriptor
 * without finishing does not. */
static ev_tstamp evictable_at(const aemp__link_t *l, ev_tstamp now)
{
    ev_tstamp silent = aemp__link_last_read(l) + AEMP_HANDSHAKE_SILENT_EVICT;
    ev_tstamp old = l->hs_since + AEMP_HANDSHAKE_OLD_EVICT;
    /* the last read is no later than the last heard: while that bound is
     * ahead, the kernel need not be asked (a storm over max_handshakes
     * comes here on every accept); the evict timer may then come back
     * early, and asks */
    if ((silent < old ? silent : old) <= now)
        silent = aemp__link_last_heard(l) + AEMP_HANDSHAKE_SILENT_EVICT;
    return silent < old ? silent : old;
}

/* Closes the oldest incoming handshake if it qualifies; 1 when it did. */
static int evict_oldest(aemp_node_t *n)
{
    aemp__link_t *l = n->hs_oldest;
    if (!l || evictable_at(l, ev_now(n->loop)) > ev_now(n->loop)) return 0;
    aemp__link_close(l, "too many connections in handshake", 0);
    return 1;
}

/* Over max_handshakes incoming links in their handshake: the oldest go
 * while they qualify. When the oldest does not yet, the count marks it:
 * the evict timer comes back when it would qualify and closes it then if
 * it is still in its handshake, even when others finished meanwhile (a
 * newcomer over the limit takes the place of the oldest). O(1) per
 * accept: the handshakes are their own list, oldest first. */
static void limit_handshakes(aemp_node_t *n)
{
    aemp__link_t *l;
    while ((l = n->hs_oldest) && (n->nhandshakes > n->cfg.max_handshakes || l->hs_marked) &&
           evict_oldest(n)) {}
    if (!l || n->destroy_pending) return;
    if (n->nhandshakes > n->cfg.max_handshakes) l->hs_marked = 1;
    if (!l->hs_marked) return;
    ev_tstamp wait = evictable_at(l, ev_now(n->loop)) - ev_now(n->loop);
    ev_timer_stop(n->loop, &n->hs_evict);
    ev_timer_set(&n->hs_evict, wait > 0.01 ? wait : 0.01, 0.0);
    ev_timer_start(n->loop, &n->hs_evict);
}

static void hs_evict_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    aemp_node_t *n = w->data;
    (void)loop;
    (void)revents;
    aemp__enter(n);
    limit_handshakes(n);
    aemp__leave(n);
}

static void listeners_set(aemp_node_t *n, int on)
{
    for (size_t i = 0; i < n->nlisteners; i++) {
        if (on) ev_io_start(n->loop, &n->listeners[i].io);
        else ev_io_stop(n->loop, &n->listeners[i].io);
    }
}

static void accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    aemp_node_t *n = w->data;
    (void)loop;
    (void)revents;
    listeners_set(n, 1);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    aemp_node_t *n = w->data;
    (void)loop;
    (void)revents;
    aemp__enter(n);
    for (int i = 0; i < 64 && !n->destroy_pending; i++) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(w->fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* the connection stays in the backlog and the socket stays
                 * readable: pause instead of spinning on it, and let the
                 * oldest silent handshakes make room for it meanwhile */
                for (int k = 0; k < 64 && evict_oldest(n); k++) {}
                aemp__log(n, AEMP_LOG_WARN, "accept: %s; new connections wait %.1f s",
                          strerror(errno), AEMP_ACCEPT_PAUSE);
                listeners_set(n, 0);
                ev_timer_set(&n->accept_pause, AEMP_ACCEPT_PAUSE, 0.0);
                ev_timer_start(n->loop, &n->accept_pause);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                aemp__log(n, AEMP_LOG_WARN, "accept: %s", strerror(errno));
            }
            break;
        }
        char addr[80];
        aemp__ep_format((struct sockaddr *)&sa, addr, sizeof addr);
        if (!aemp__link_new(n, fd, 0, addr)) close(fd);
        else limit_handshakes(n);
    }
    aemp__leave(n);
}

static int listen_on(aemp_node_t *n, const char *ep, char *actual, size_t an)
{
    struct sockaddr_storage sa;
    socklen_t sl;
    if (aemp__ep_parse(ep, &sa, &sl)) return AEMP_EINVAL;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return AEMP_EIO;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* what the accepted sockets inherit (link.c) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (sa.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    /* a join storm's connections wait in the kernel until accepted: with
     * room for 1024 only, the rest had their last ACK and greeting dropped
     * and came back 0.2-0.6 s later (TCP's retransmission), so a storm of
     * 10 000 lean handshakes took 0.57 s instead of 0.37 (bench_join).
     * The kernel caps it (net.core.somaxconn) */
    if (bind(fd, (struct sockaddr *)&sa, sl) < 0 || listen(fd, AEMP_LISTEN_BACKLOG) < 0) {
        aemp__log(n, AEMP_LOG_ERROR, "%s: cannot listen: %s", ep, strerror(errno));
        close(fd);
        return AEMP_EIO;
    }
    /* after listen(), which resets it: the accepted sockets inherit it */
    aemp__sock_ack_late(fd);
    sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    aemp__ep_format((struct sockaddr *)&sa, actual, an);
    struct listener *ls = realloc(n->listeners, (n->nlisteners + 1) * sizeof *ls);
    if (!ls) {
        close(fd);
        return AEMP_ENOMEM;
    }
    n->listeners = ls;
    struct listener *L = &ls[n->nlisteners++];
    L->fd = fd;
    ev_io_init(&L->io, accept_cb, fd, EV_READ);
    /* the array may move: watchers are started only once all exist */
    return 0;
}

/* ------------------------------------------------------------------ */
/* life cycle                                                          */

void aemp_secret_free(void *secret, size_t len)
{
    if (!secret) return;
    OPENSSL_cleanse(secret, len);
    free(secret);
}

/* The secret is read with read(2) into one buffer sized from the file
 * (grown, wiping the old copy, only for a file that grows or is not a
 * regular one): no stdio buffer and no realloc leave copies behind. */
void *aemp_read_secret(const char *path, size_t *len, int *err)
{
    enum { LIMIT = 16u << 20 };
    int e = 0;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        e = errno == ENOENT || errno == ENOTDIR ? AEMP_ENOENT : AEMP_EIO;
        goto out;
    }
    struct stat st;
    size_t first = 4096;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size <= LIMIT)
        first = (size_t)st.st_size + 1; /* one more: the end shows at once */
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : first;
            char *nb = ncap <= 2 * (size_t)LIMIT ? malloc(ncap) : NULL;
            if (!nb) {
                e = AEMP_ENOMEM;
                break;
            }
            if (n) memcpy(nb, buf, n);
            aemp_secret_free(buf, cap);
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            e = AEMP_EIO;
            break;
        }
        if (r == 0) break;
        n += (size_t)r;
        if (n > LIMIT) {
            e = AEMP_ELIMIT;
            break;
        }
    }
    close(fd);
out:
    if (e) {
        aemp_secret_free(buf, cap);
        buf = NULL;
    } else {
        *len = n;
    }
    if (err) *err = e;
    return buf;
}

static char *dupnull(const char *s, int *fail)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *fail = 1;
    return d;
}

/* The dialects a node may speak: the one place a protocol number is
 * looked at. */
static const aemp__dialect_t *const dialects[] = {&aemp__dialect_p0, &aemp__dialect_p1};

const aemp__dialect_t *aemp__dialect_find(int protocol)
{
    for (size_t i = 0; i < sizeof dialects / sizeof dialects[0]; i++)
        if (dialects[i]->protocol == protocol) return dialects[i];
    return NULL;
}

aemp_node_t *aemp_node_new(struct ev_loop *loop, const aemp_node_config_t *cfg, int *err)
{
    int e = 0, fail = 0;
    aemp_node_t *n = NULL;
    static const aemp_node_config_t defaults = {0};
    if (!cfg) cfg = &defaults;
    if (!loop) loop = ev_default_loop(0);
    if (!loop) {
        e = AEMP_EIO;
        goto bad;
    }
    n = calloc(1, sizeof *n);
    if (!n) {
        e = AEMP_ENOMEM;
        goto bad;
    }
    n->loop = loop;
    n->cfg = *cfg;
    /* the peer table takes names and endpoints that peers choose (any
     * message may name a node): a keyed hash, so none can make them
     * share one chain */
    if (aemp_random_bytes(&n->drawn, sizeof n->drawn)) {
        e = AEMP_EIO;
        goto bad;
    }
    aemp__map_key(&n->peers, n->drawn.map_key);
    aemp__map_key(&n->caused, n->drawn.map_key);
    aemp__map_key(&n->cause_attempts, n->drawn.map_key);
    n->dialect = aemp__dialect_find(cfg->protocol);
    if (!n->dialect) {
        e = AEMP_EINVAL;
        goto bad;
    }
    n->provider = dupnull(cfg->provider, &fail);
    n->framings = dupnull(cfg->framings, &fail);
    n->cfg.provider = n->cfg.framings = NULL;
    n->cfg.secret = NULL;
    n->cfg.cert = NULL;
    n->cfg.nodeid = n->cfg.bind = n->cfg.slave_name = n->cfg.secret_file = NULL;
    n->cfg.masters = n->cfg.binds = n->cfg.seeds = NULL;
    if (fail) {
        e = AEMP_ENOMEM;
        goto bad;
    }
    if (n->framings && !aemp__framing_list_ok(n->dialect->framings, n->framings)) {
        e = AEMP_EINVAL;
        goto bad;
    }
    if (!n->cfg.max_message) n->cfg.max_message = AEMP_DEFAULT_MAX_MESSAGE;
    if (!n->cfg.max_outq) n->cfg.max_outq = AEMP_DEFAULT_MAX_OUTQ;
    if (!n->cfg.max_handshakes) n->cfg.max_handshakes = AEMP_DEFAULT_MAX_HANDSHAKES;
    if (!n->cfg.max_peer_monitors) n->cfg.max_peer_monitors = AEMP_DEFAULT_MAX_PEER_MONITORS;
    if (!n->cfg.max_peer_memory) n->cfg.max_peer_memory = AEMP_DEFAULT_MAX_PEER_MEMORY;
    n->hs_timeout = AEMP_HANDSHAKE_TIMEOUT;
    /* names, secret, TLS and the dialect's defaults */
    n->dstate = n->dialect->init(n, cfg, &e);
    if (e) goto bad;
    ev_prepare_init(&n->flush_w, aemp__flush_cb);
    n->flush_w.data = n;
    ev_init(&n->accept_pause, accept_resume_cb);
    n->accept_pause.data = n;
    ev_init(&n->hs_evict, hs_evict_cb);
    n->hs_evict.data = n;
    ev_idle_init(&n->local_w, local_cb);
    n->local_w.data = n;
    ev_set_priority(&n->local_w, EV_MAXPRI);
    if (err) *err = 0;
    return n;
bad:
    if (n) node_free(n);
    if (err) *err = e;
    return NULL;
}

int aemp__node_set_name(aemp_node_t *n, const char *name, char **others, size_t nothers)
{
    char *a = strdup(name), *b = strdup(name);
    if (!a || !b) {
        free(a);
        free(b);
        return AEMP_ENOMEM;
    }
    free(n->noderef);
    free(n->greet_name);
    n->noderef = a;
    n->greet_name = b;
    int rc = aemp__map_set(&n->self_names, name, (void *)1);
    for (size_t i = 0; !rc && i < nothers; i++) rc = aemp__map_set(&n->self_names, others[i], (void *)1);
    routes_changed(n);
    return rc;
}

int aemp__node_listen(aemp_node_t *n, char **eps, size_t cnt, char ***actual)
{
    int rc = 0;
    char **out = calloc(cnt + 1, sizeof *out);
    for (size_t i = 0; out && !rc && i < cnt; i++) {
        char a[80];
        rc = listen_on(n, eps[i], a, sizeof a);
        if (!rc && !(out[i] = strdup(a))) rc = AEMP_ENOMEM;
    }
    if (!out) rc = AEMP_ENOMEM;
    if (rc) {
        for (size_t i = 0; i < n->nlisteners; i++) close(n->listeners[i].fd);
        n->nlisteners = 0;
        aemp__strv_free(out);
        return rc;
    }
    /* the node keeps its own copy for aemp_node_listeners */
    char **keep = calloc(cnt + 1, sizeof *keep);
    for (size_t i = 0; keep && i < cnt; i++)
        if (!(keep[i] = strdup(out[i]))) {
            aemp__strv_free(keep);
            keep = NULL;
        }
    aemp__strv_free(n->listening);
    n->listening = keep;
    *actual = out;
    return 0;
}

const char *const *aemp_node_listeners(const aemp_node_t *n, size_t *count)
{
    size_t c = 0;
    while (n && n->listening && n->listening[c]) c++;
    if (count) *count = c;
    return n ? (const char *const *)n->listening : NULL;
}

int aemp_node_start(aemp_node_t *n)
{
    if (!n) return AEMP_EINVAL;
    if (n->started) return AEMP_ESTATE;
    int rc = n->dialect->start(n);
    if (rc) return rc;
    for (size_t i = 0; i < n->nlisteners; i++) {
        n->listeners[i].io.data = n;
        ev_io_start(n->loop, &n->listeners[i].io);
    }
    ev_prepare_start(n->loop, &n->flush_w);
    n->started = 1;
    n->dialect->started(n);
    return 0;
}

static void node_free(aemp_node_t *n)
{
    struct ev_loop *loop = n->loop;
    n->depth++; /* nothing below may free recursively */
    n->destroy_pending = 1;
    for (size_t i = 0; i < n->nlisteners; i++) {
        ev_io_stop(loop, &n->listeners[i].io);
        close(n->listeners[i].fd);
    }
    free(n->listeners);
    while (n->links) aemp__link_close(n->links, "node destroyed", 1);
    while (n->dead) {
        aemp__link_t *l = n->dead;
        n->dead = l->next;
        aemp__link_free(l);
    }
    if (n->dstate) n->dialect->free(n);
    n->dstate = NULL;
    while (n->peers_list) {
        aemp__peer_t *p = n->peers_list;
        n->peers_list = p->next;
        peer_free(p);
    }
    while (n->local_head) {
        aemp__local_msg_t *m = n->local_head;
        n->local_head = m->next;
        json_decref(m->elems);
        free(m);
    }
    if (loop) {
        ev_timer_stop(loop, &n->accept_pause);
        ev_timer_stop(loop, &n->hs_evict);
        ev_prepare_stop(loop, &n->flush_w);
        ev_idle_stop(loop, &n->local_w);
    }
    aemp__logcatch_free(n);
    aemp__ports_free(n);
    aemp__map_free(&n->peers);
    aemp__map_free(&n->caused);
    aemp__map_free(&n->cause_attempts);
    aemp__map_free(&n->self_names);
    aemp__strv_free(n->listening);
    aemp_secret_free(n->secret, n->secret_len);
    OPENSSL_cleanse(n->secret_md6, sizeof n->secret_md6); /* as good as the secret */
    OPENSSL_cleanse(&n->drawn, sizeof n->drawn);
    aemp__hmac_sha3_free(n->secret_sha3);
    aemp__rng_free(n->nonce_rng);
    free(n->hs_framings);
    SSL_CTX_free(n->tls_ctx);
    free(n->provider);
    free(n->framings);
    free(n->noderef);
    free(n->greet_name);
    free(n);
}

void aemp_node_destroy(aemp_node_t *n)
{
    if (!n) return;
    if (n->depth > 0) {
        n->destroy_pending = 1;
        return;
    }
    node_free(n);
}

const char *aemp_node_noderef(const aemp_node_t *n)
{
    return n && n->noderef ? n->noderef : "";
}

struct ev_loop *aemp_node_loop(const aemp_node_t *n)
{
    return n ? n->loop : NULL;
}

int aemp_node_is_up(const aemp_node_t *n, const char *noderef)
{
    aemp__peer_t *p = n && noderef ? aemp__map_get(&n->peers, noderef) : NULL;
    return p && p->link && p->link->state == LINK_UP;
}

const char *aemp_node_peer_kv(const aemp_node_t *n, const char *noderef, const char *key)
{
    aemp__peer_t *p = n && noderef ? aemp__map_get(&n->peers, noderef) : NULL;
    if (!p || !p->link || !key) return NULL;
    return aemp__link_peer_kv(p->link, key);
}

const char *aemp_node_peer_framing(const aemp_node_t *n, const char *noderef, int incoming)
{
    aemp__peer_t *p = n && noderef ? aemp__map_get(&n->peers, noderef) : NULL;
    return p && p->link ? aemp__link_framing(p->link, incoming) : NULL;
}

const char *aemp__node_peer_tls(const aemp_node_t *n, const char *noderef)
{
    aemp__peer_t *p = n && noderef ? aemp__map_get(&n->peers, noderef) : NULL;
    return p && p->link ? aemp__link_tls_info(p->link) : NULL;
}
