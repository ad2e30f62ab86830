/*
 * naming1.c - protocol 1's naming model (PROTOCOL-1.md §1, §3, §6, §8.4):
 * a node is named by its node id, which says nothing about where it
 * listens. It listens on its binds and joins the network through its
 * seeds: it connects to every seed at start and keeps trying them with
 * 2.02's back-off; the first seed whose link comes up is its master, gets
 * ["","g_slave",LOCALDB] and answers ["","g_find",ID] with the listeners
 * of any node, so a message to a node without a link waits while the
 * master is asked where that node listens. The database client (db.c)
 * rides on the master link too.
 */
#include "p1.h"


#include <stdio.h>
#include <unistd.h>

#include "addr.h"
#include "tls.h"

#define SEED_BACKOFF_START 1.2 /* seconds; each retry waits 1-2 times this */

typedef struct seed {
    aemp_node_t *node;
    char *ep;          /* numeric "ip:port" */
    double interval;   /* current back-off */
    int up;            /* its link is up */
    int self;          /* it turned out to be us: not tried again */
    ev_timer retry;
} seed_t;

/* Protocol 1's state: the head the other modules share (p1.h), then the
 * naming model's own part. */
typedef struct naming {
    aemp__p1_t head;
    seed_t *seeds;
    size_t nseeds;
    aemp__peer_t *master;
    char **listeners;  /* what we listen on, "ip:port" ('l) */
    size_t nlisteners;
    char **binds;      /* as configured */
    size_t nbinds;
    aemp__map_t finding; /* node ids asked for with g_find */
} naming_t;

static naming_t *naming_of(const aemp_node_t *n)
{
    return (naming_t *)aemp__p1_of(n);
}

/* ------------------------------------------------------------------ */
/* set-up                                                              */

static char **strv_copy(const char *const *v, size_t n)
{
    char **r = calloc(n + 1, sizeof *r);
    for (size_t i = 0; r && i < n; i++)
        if (!(r[i] = strdup(v[i] ? v[i] : ""))) {
            aemp__strv_free(r);
            return NULL;
        }
    return r;
}

static void seed_retry_cb(struct ev_loop *loop, ev_timer *w, int revents);

static int setup1(aemp_node_t *n, naming_t *s, const aemp_node_config_t *cfg)
{
    const char *id = cfg->nodeid;
    if (!id || aemp__nodeid_problem(id, strlen(id))) return AEMP_EINVAL;
    n->noderef = strdup(id);
    n->greet_name = strdup(id);
    if (!n->noderef || !n->greet_name) return AEMP_ENOMEM;
    if (cfg->binds && !(s->binds = strv_copy(cfg->binds, cfg->nbinds))) return AEMP_ENOMEM;
    s->nbinds = cfg->binds ? cfg->nbinds : 0;
    /* seeds are resolved now: a name that does not resolve is a
     * configuration error the caller should hear of at once */
    char host[256];
    aemp__hostname(host, sizeof host);
    for (size_t i = 0; i < cfg->nseeds; i++) {
        int e = 0;
        /* as 2.02 resolves them: host:port, a bare port is HOSTNAME:port */
        char *eps = aemp_hostport_resolve(cfg->seeds[i], host, &e);
        if (!eps) {
            aemp__log(n, AEMP_LOG_ERROR, "seed %s: cannot resolve", cfg->seeds[i]);
            return e ? e : AEMP_ERESOLVE;
        }
        size_t cnt;
        char **v = aemp__split(eps, ',', &cnt);
        free(eps);
        seed_t *ns = v ? realloc(s->seeds, (s->nseeds + cnt) * sizeof *ns) : NULL;
        if (!ns) {
            aemp__strv_free(v);
            return AEMP_ENOMEM;
        }
        s->seeds = ns;
        for (size_t k = 0; k < cnt; k++) {
            seed_t *sd = &s->seeds[s->nseeds++];
            memset(sd, 0, sizeof *sd);
            sd->node = n;
            sd->ep = v[k];
            v[k] = NULL;
            sd->interval = SEED_BACKOFF_START;
        }
        aemp__strv_free(v);
    }
    for (size_t i = 0; i < s->nseeds; i++) {
        ev_init(&s->seeds[i].retry, seed_retry_cb);
        s->seeds[i].retry.data = &s->seeds[i];
    }
    /* 2.02's defaults: monitor_timeout 30 s, connect_interval 2 s, which
     * is also the deadline of an attempt ("connect timeout") */
    n->timeout = cfg->timeout ? cfg->timeout : AEMP_DEFAULT_TIMEOUT;
    if (n->cfg.connect_interval <= 0) n->cfg.connect_interval = AEMP_P1_CONNECT_INTERVAL;
    if (n->cfg.connect_timeout <= 0) n->cfg.connect_timeout = n->cfg.connect_interval;
    if (cfg->secret) {
        n->secret = malloc(cfg->secret_len ? cfg->secret_len : 1);
        if (!n->secret) return AEMP_ENOMEM;
        memcpy(n->secret, cfg->secret, cfg->secret_len);
        n->secret_len = cfg->secret_len;
        /* every token is an HMAC-SHA3-512 under the secret: its keyed
         * state once per node (link.c makes it on the first link when
         * this could not) */
        n->secret_sha3 = aemp__hmac_sha3_new(n->secret, n->secret_len);
    }
    if (cfg->cert) {
        char why[300];
        n->tls_ctx = aemp__tls_ctx_new(cfg->cert, cfg->cert_len, why, sizeof why);
        if (!n->tls_ctx) {
            aemp__log(n, AEMP_LOG_ERROR, "cert: %s", why);
            return AEMP_ETLS;
        }
    }
    return 0;
}

static void *init1(aemp_node_t *n, const aemp_node_config_t *cfg, int *err)
{
    naming_t *s = calloc(1, sizeof *s);
    /* finding holds the ids of peers being looked for, which any peer
     * may name: a keyed hash */
    if (s) aemp__map_key(&s->finding, n->drawn.map_key);
    *err = s ? setup1(n, s, cfg) : AEMP_ENOMEM;
    return s;
}

static int start1(aemp_node_t *n)
{
    naming_t *s = naming_of(n);
    char **eps = NULL;
    size_t cnt = 0;
    char host[256];
    if (s->nbinds) aemp__hostname(host, sizeof host);
    for (size_t i = 0; i < s->nbinds; i++) {
        int e = 0;
        /* 2.02's rules: "*" is every non-loopback address, port "*" or
         * none a free one */
        char *r = aemp_hostport_resolve(s->binds[i], host, &e);
        size_t k;
        char **v = r ? aemp__split(r, ',', &k) : NULL;
        free(r);
        char **ne = v ? realloc(eps, (cnt + k + 1) * sizeof *ne) : NULL;
        if (!ne) {
            aemp__log(n, AEMP_LOG_ERROR, "%s: cannot resolve", s->binds[i]);
            aemp__strv_free(v);
            aemp__strv_free(eps);
            return e ? e : AEMP_ERESOLVE;
        }
        eps = ne;
        for (size_t j = 0; j < k; j++) eps[cnt++] = v[j];
        eps[cnt] = NULL;
        free(v);
    }
    int rc = 0;
    if (cnt) {
        rc = aemp__node_listen(n, eps, cnt, &s->listeners);
        s->nlisteners = cnt;
    } else if (!(s->listeners = calloc(1, sizeof *s->listeners))) {
        rc = AEMP_ENOMEM;
    }
    aemp__strv_free(eps);
    if (rc) return rc;
    char *id = strdup(n->noderef);
    rc = id ? aemp__node_set_name(n, id, NULL, 0) : AEMP_ENOMEM;
    free(id);
    return rc;
}

static int is_listener(const naming_t *s, const char *ep)
{
    for (size_t i = 0; i < s->nlisteners; i++)
        if (!strcmp(s->listeners[i], ep)) return 1;
    return 0;
}

/* Connects to a seed unless its link is up. */
static void seed_try(seed_t *sd)
{
    aemp_node_t *n = sd->node;
    if (sd->self) return;
    aemp__peer_t *p = aemp__peer_get(n, sd->ep, 1);
    if (p && !p->neps) {
        /* a peer known by the seed's address: that is where it listens */
        char **eps = calloc(2, sizeof *eps);
        if (eps && (eps[0] = strdup(sd->ep))) aemp__peer_set_endpoints(p, eps, 1);
        else free(eps);
    }
    if (p && !p->link) aemp__peer_connect(p);
}

static void started1(aemp_node_t *n)
{
    naming_t *s = naming_of(n);
    for (size_t i = 0; i < s->nseeds; i++) {
        /* our own address: 2.02 connects and both ends refuse; the
         * outcome is the same without the round trip */
        if (is_listener(s, s->seeds[i].ep)) s->seeds[i].self = 1;
        seed_try(&s->seeds[i]);
    }
    /* global.c: a node that is its own seed is global */
    for (size_t i = 0; i < s->nseeds; i++)
        if (s->seeds[i].self) {
            aemp__global_start(n);
            break;
        }
}

static void seed_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    seed_t *sd = w->data;
    aemp_node_t *n = sd->node;
    (void)loop;
    (void)revents;
    aemp__enter(n);
    seed_try(sd);
    aemp__leave(n);
}

static void free1(aemp_node_t *n)
{
    naming_t *s = naming_of(n);
    for (size_t i = 0; i < s->nseeds; i++) {
        ev_timer_stop(n->loop, &s->seeds[i].retry);
        free(s->seeds[i].ep);
    }
    free(s->seeds);
    aemp__strv_free(s->listeners);
    aemp__strv_free(s->binds);
    aemp__map_free(&s->finding);
    aemp__global_free(n); /* global.c */
    aemp__db_free(n);
    free(s);
}

/* ------------------------------------------------------------------ */
/* names and endpoints                                                 */

/* A node id carries no endpoints: where a node listens is asked of the
 * master (g_find), or of our own view on a global node. A seed's address
 * gets its endpoint from seed_try. */
static char **name_endpoints1(const char *name, size_t *count)
{
    (void)name;
    *count = 0;
    return NULL;
}

/* The link proved the node's id: that is its name from now on (a seed
 * known by its address keeps the address as another name). */
static void peer_named1(aemp_node_t *n, aemp__peer_t *p, const char *remote)
{
    if (!aemp__peer_add_name(p, remote)) aemp__peer_set_name(p, remote);
}

/* The seed that is ep, or NULL. */
static seed_t *seed_of_ep(naming_t *s, const char *ep)
{
    for (size_t i = 0; i < s->nseeds; i++)
        if (!strcmp(s->seeds[i].ep, ep)) return &s->seeds[i];
    return NULL;
}

/* The seeds that p is (by their addresses, which name p). */
static int peer_is_seed(aemp_node_t *n, const aemp__peer_t *p, seed_t **first)
{
    naming_t *s = naming_of(n);
    int c = 0;
    for (size_t i = 0; i < s->nseeds; i++)
        if (aemp__peer_get(n, s->seeds[i].ep, 0) == p) {
            if (!c && first) *first = &s->seeds[i];
            c++;
        }
    return c;
}

int aemp__p1_to_master(aemp_node_t *n, json_t *elems)
{
    naming_t *s = naming_of(n);
    if (s && aemp__global_active(n)) return aemp__node_later(n, aemp__global_own_request, elems);
    if (!s || !s->master || !s->master->link) {
        json_decref(elems);
        return AEMP_ESTATE;
    }
    const char *to = s->master->noderef;
    aemp__payload_t pl = {elems, NULL, NULL};
    return aemp__send_own(n, to, strlen(to), "", 0, &pl);
}

static void send_find(aemp_node_t *n, const char *id)
{
    aemp__p1_to_master(n, json_pack("[ss]", "g_find", id));
}

/* The master is p from now on: it hears our database and every request
 * that waits for a master. */
static void master_set(aemp_node_t *n, aemp__peer_t *p)
{
    naming_t *s = naming_of(n);
    s->master = p;
    aemp__log(n, AEMP_LOG_INFO, "new master node: %s", p ? p->noderef : n->noderef);
    json_t *db = aemp__db_local(n);
    if (db) aemp__p1_to_master(n, json_pack("[so]", "g_slave", db)); /* steals db */
    aemp__map_iter_t it = {0};
    for (aemp__map_ent_t *e; (e = aemp__map_next(&s->finding, &it));) send_find(n, e->key);
    aemp__db_master_up(n);
}

void aemp__p1_master_is_self(aemp_node_t *n)
{
    master_set(n, NULL);
}

static const char *peer_resolve1(aemp_node_t *n, aemp__peer_t *p)
{
    naming_t *s = naming_of(n);
    if (aemp__global_active(n)) return aemp__global_resolve(n, p); /* global.c: the view */
    if (aemp__map_set(&s->finding, p->noderef, (void *)1)) return "out of memory";
    p->resolving = 1;
    send_find(n, p->noderef); /* without a master: sent when one is up */
    return NULL;
}

/* If p is one of our seeds (l its link), it is up: it hears g_slave, and
 * the first seed up becomes our master. */
static void seed_up(aemp_node_t *n, aemp__peer_t *p, aemp__link_t *l)
{
    naming_t *s = naming_of(n);
    seed_t *sd = NULL;
    if (!peer_is_seed(n, p, &sd) && l->outgoing) sd = seed_of_ep(s, l->addr);
    if (!sd) return;
    for (size_t i = 0; i < s->nseeds; i++)
        if (aemp__peer_get(n, s->seeds[i].ep, 0) == p) {
            s->seeds[i].up = 1;
            s->seeds[i].interval = SEED_BACKOFF_START;
            ev_timer_stop(n->loop, &s->seeds[i].retry);
        }
    /* every seed whose link comes up hears g_slave; the first becomes the
     * master and gets our database with it */
    aemp__payload_t bare = {json_pack("[s]", "g_slave"), NULL, NULL};
    aemp__send_own(n, p->noderef, strlen(p->noderef), "", 0, &bare);
    if (!s->master && !aemp__global_active(n)) master_set(n, p);
}

static void link_up1(aemp_node_t *n, aemp__peer_t *p, aemp__link_t *l)
{
    aemp__global_link_up(n, p, l); /* global.c: g_global on every link */
    seed_up(n, p, l);
}

/* p, whose link is up, turned out to be known by another name too (a
 * seed's address): maybe it is a seed of ours. */
static void peer_aliased1(aemp_node_t *n, aemp__peer_t *p)
{
    if (p->link && p->link->state == LINK_UP) seed_up(n, p, p->link);
}

/* A seed's link went down or an attempt failed: try again after the
 * back-off (from its start after a link that was up, doubled after a
 * failed attempt, capped at monitor_timeout). A lost master gives way to
 * the next seed that is up. */
static void peer_down1(aemp_node_t *n, aemp__peer_t *p)
{
    naming_t *s = naming_of(n);
    if (!s) return;
    /* a link replaced by a newer one (a simultaneous connect): the node
     * is still up, our seed and master are where they were */
    if (p->link && p->link->state == LINK_UP) return;
    aemp__global_peer_down(n, p); /* global.c: its entries go */
    if (aemp__map_del(&s->finding, p->noderef)) p->resolving = 0;
    for (size_t i = 0; i < s->nseeds; i++) {
        seed_t *sd = &s->seeds[i];
        if (aemp__peer_get(n, sd->ep, 0) != p || sd->self) continue;
        if (p->last_reason == AEMP__HS_SELF) {
            sd->self = 1;
            aemp__global_start(n); /* global.c: our own seed */
            continue;
        }
        if (sd->up) sd->interval = SEED_BACKOFF_START;
        double wait = aemp__p1_jitter(sd->interval, 1.0);
        if (!sd->up) {
            sd->interval *= 2;
            if (sd->interval > n->timeout) sd->interval = n->timeout;
        }
        sd->up = 0;
        ev_timer_stop(n->loop, &sd->retry);
        ev_timer_set(&sd->retry, wait, 0.0);
        ev_timer_start(n->loop, &sd->retry);
    }
    if (s->master == p) {
        s->master = NULL; /* the database's requests and watches wait */
        for (size_t i = 0; i < s->nseeds; i++) {
            aemp__peer_t *o = aemp__peer_get(n, s->seeds[i].ep, 0);
            if (o && o != p && o->link && o->link->state == LINK_UP) {
                master_set(n, o);
                break;
            }
        }
    }
}

/* ["", "g_found", ID, ADDRS]: where a node we asked for listens. */
void aemp__p1_found(aemp_node_t *n, const char *id, json_t *addrs)
{
    naming_t *s = naming_of(n);
    if (!s || !aemp__map_del(&s->finding, id)) return;
    aemp__peer_t *p = aemp__peer_get(n, id, 0);
    if (!p || p->link) return;
    p->resolving = 0;
    size_t k;
    char **eps = aemp__p1_addrs(n, id, addrs, &k);
    if (!k) {
        aemp__strv_free(eps);
        aemp__peer_fail(p, "no known address");
        return;
    }
    aemp__peer_resolved(p, eps, k);
}

char **aemp__p1_addrs(aemp_node_t *n, const char *id, json_t *addrs, size_t *count)
{
    size_t cnt = json_array_size(addrs), k = 0;
    if (cnt > AEMP_P1_ADDRS_MAX)
        aemp__log(n, AEMP_LOG_WARN, "%s: %zu addresses, the first %d are tried", id, cnt,
                  AEMP_P1_ADDRS_MAX);
    char **eps = cnt ? calloc((cnt < AEMP_P1_ADDRS_MAX ? cnt : AEMP_P1_ADDRS_MAX) + 1, sizeof *eps)
                     : NULL;
    for (size_t i = 0; eps && i < cnt && k < AEMP_P1_ADDRS_MAX; i++) {
        /* only numeric "ip:port" endpoints: what a node listens on */
        const char *a = json_string_value(json_array_get(addrs, i));
        struct sockaddr_storage sa;
        socklen_t sl;
        if (a && !aemp__ep_parse(a, &sa, &sl) && (eps[k] = strdup(a))) k++;
    }
    *count = k;
    return eps;
}

const char *const *aemp__p1_listeners(const aemp_node_t *n, size_t *count)
{
    const naming_t *s = naming_of(n);
    *count = s ? s->nlisteners : 0;
    return s ? (const char *const *)s->listeners : NULL;
}

int aemp__p1_is_master(const aemp_node_t *n, const char *src)
{
    const naming_t *s = naming_of(n);
    if (s && aemp__global_active(n)) return aemp__is_self(n, src); /* our own */
    if (!s || !s->master) return 0;
    /* a sender is named by its node id, the master's name: the lookup is
     * for a sender named otherwise */
    return !strcmp(s->master->noderef, src) || aemp__peer_get((aemp_node_t *)n, src, 0) == s->master;
}

double aemp__p1_jitter(double base, double spread)
{
    return base * (1.0 + spread * (double)(rand() % 1000) / 1000.0);
}

/* 2.02's framing_format default, in its order: each side writes the
 * first of the peer's list that it has, so two 2.02-like nodes talk
 * CBOR and a peer offering only json gets json */
static const aemp__framing_t *const framings1[] = {&aemp__framing_cbor, &aemp__framing_json,
                                                    &aemp__framing_storable, NULL};

const aemp__dialect_t aemp__dialect_p1 = {
    .protocol = 1,
    .profile = &aemp__hs_profile1,
    .framings = framings1,
    .services = aemp__services_p1,
    .init = init1,
    .start = start1,
    .started = started1,
    .name_endpoints = name_endpoints1,
    .peer_named = peer_named1,
    .peer_resolve = peer_resolve1,
    .link_up = link_up1,
    .peer_aliased = peer_aliased1,
    .peer_down = peer_down1,
    .free = free1,
    .held = aemp__global_held,
    .unreachable = "connect timeout",
    .tags = {
        .port_died = "kil0",
        .kill = "kil1",
        .watch = "mon1",
        .unwatch = "mon0",
        .spawn = "AnyEvent::MP::_spawn",
        .no_such_port = "no_such_port",
    },
    .quirks = {
        .refuse_second_link = 1,
        .no_such_port_names_port = 1,
        .eof_text = "Unexpected end-of-file",
        .quiet_scalars = 1,
        .node_port_watch_silent = 1,
        .unhandled_kills = 1,
    },
};
