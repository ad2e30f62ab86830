/*
 * naming0.c - protocol 0's naming model (PROTOCOL.md §1, §4): a node is
 * named by its noderef, the comma list of the endpoints it listens on, so
 * a name is also the way to reach it; a slave listens nowhere, is named
 * "slave/NAME" and renames itself "slave/NAME@VIA" when its first master
 * link comes up, telling every other master with `iam`. A slave that has
 * lost every master link keeps trying its masters (every connect
 * interval) and takes its name from the next master link that comes up. The secret comes
 * from the configuration, a file, $HOME/.aemp-secret or chance; a key and
 * a certificate in it switch TLS on.
 */
#include "p0.h"

#include <stdio.h>

#include "addr.h"
#include "perl04.h"
#include "tls.h"

/* Protocol 0's state (the node's dstate). */
typedef struct p0 {
    char *bind, *slave_name, *secret_file;
    char **masters;
    int slave, renamed;
    char *slave_base;           /* a slave's first name, "slave/NAME" */
    ev_timer master_retry;      /* a slave tries its masters again */
} p0_t;

static p0_t *p0_of(const aemp_node_t *n)
{
    return n->dstate;
}

static char *dupnull(const char *s, int *fail)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *fail = 1;
    return d;
}

static int setup0(aemp_node_t *n, p0_t *s, const aemp_node_config_t *cfg)
{
    int fail = 0, e = 0;
    s->bind = dupnull(cfg->bind ? cfg->bind : "", &fail);
    s->slave_name = dupnull(cfg->slave_name, &fail);
    s->secret_file = dupnull(cfg->secret_file, &fail);
    if (cfg->nmasters) {
        s->masters = calloc(cfg->nmasters + 1, sizeof *s->masters);
        if (!s->masters) fail = 1;
        for (size_t i = 0; !fail && i < cfg->nmasters; i++)
            s->masters[i] = dupnull(cfg->masters[i], &fail);
    }
    if (fail) return AEMP_ENOMEM;
    s->slave = cfg->slave_name != NULL;
    n->timeout = cfg->timeout ? (cfg->timeout < 4 ? 4 : cfg->timeout) : AEMP_DEFAULT_TIMEOUT;
    if (n->cfg.connect_interval <= 0) n->cfg.connect_interval = AEMP_DEFAULT_CONNECT_INTERVAL;
    if (n->cfg.connect_timeout <= 0) n->cfg.connect_timeout = AEMP_DEFAULT_CONNECT_TIMEOUT;

    /* the secret: given, from a file, from $HOME/.aemp-secret, or random */
    if (cfg->secret) {
        n->secret = malloc(cfg->secret_len ? cfg->secret_len : 1);
        if (!n->secret) return AEMP_ENOMEM;
        memcpy(n->secret, cfg->secret, cfg->secret_len);
        n->secret_len = cfg->secret_len;
    } else if (s->secret_file) {
        n->secret = aemp_read_secret(s->secret_file, &n->secret_len, &e);
        if (!n->secret) return e;
    } else {
        const char *home = getenv("HOME");
        char path[4096];
        if (home) {
            snprintf(path, sizeof path, "%s/.aemp-secret", home);
            n->secret = aemp_read_secret(path, &n->secret_len, NULL);
        }
        if (!n->secret) {
            n->secret = malloc(32);
            n->secret_len = 32;
            if (!n->secret || aemp_random_bytes(n->secret, 32)) return AEMP_EIO;
        }
    }
    /* every hmac_md6_64_256 token hashes the secret first: once per node */
    if (!aemp_md6(256, n->secret_len ? (const void *)n->secret : "", n->secret_len,
                  n->secret_md6))
        n->secret_md6_ok = 1;
    /* a key and a certificate in the secret: TLS mode, as a Perl node
     * decides it; material that looks like it but does not load is a
     * configuration error, not a reason to fall back to plain links */
    if (!cfg->no_tls && aemp__tls_secret_is_tls(n->secret, n->secret_len)) {
        char why[300];
        n->tls_ctx = aemp__tls_ctx_new(n->secret, n->secret_len, why, sizeof why);
        if (!n->tls_ctx) {
            aemp__log(n, AEMP_LOG_ERROR, "secret: %s", why);
            return AEMP_ETLS;
        }
    }
    return 0;
}

static void *init0(aemp_node_t *n, const aemp_node_config_t *cfg, int *err)
{
    p0_t *s = calloc(1, sizeof *s);
    *err = s ? setup0(n, s, cfg) : AEMP_ENOMEM;
    return s;
}

/* A slave names itself; any other node listens on its bind noderef and is
 * named by the endpoints it got. */
static int start0(aemp_node_t *n)
{
    p0_t *s = p0_of(n);
    int rc = 0;
    if (s->slave) {
        char name[64];
        if (!*s->slave_name) {
            unsigned char r[8];
            aemp_random_bytes(r, sizeof r);
            char hex[17];
            aemp__hex(r, sizeof r, hex);
            snprintf(name, sizeof name, "slave/%s", hex);
        } else {
            snprintf(name, sizeof name, "slave/%.50s", s->slave_name);
        }
        if (!(s->slave_base = strdup(name))) return AEMP_ENOMEM;
        return aemp__node_set_name(n, name, NULL, 0);
    }
    char *resolved = aemp_resolve(s->bind, &rc);
    if (!resolved) {
        aemp__log(n, AEMP_LOG_ERROR, "%s: cannot resolve", s->bind);
        return rc ? rc : AEMP_ERESOLVE;
    }
    size_t cnt;
    char **eps = aemp__split(resolved, ',', &cnt), **actual = NULL;
    free(resolved);
    if (!eps) return AEMP_ENOMEM;
    rc = aemp__node_listen(n, eps, cnt, &actual);
    if (!rc) {
        char *name = aemp__join(actual, cnt, ',');
        rc = name ? aemp__node_set_name(n, name, actual, cnt) : AEMP_ENOMEM;
        free(name);
    }
    aemp__strv_free(eps);
    aemp__strv_free(actual);
    return rc;
}

/* The master that p is, or NULL. */
static const char *master_of(aemp_node_t *n, const aemp__peer_t *p)
{
    char **masters = p0_of(n)->masters;
    for (size_t i = 0; masters && masters[i]; i++)
        if (aemp__peer_get(n, masters[i], 0) == p) return masters[i];
    return NULL;
}

static int any_master_up(aemp_node_t *n)
{
    char **masters = p0_of(n)->masters;
    for (size_t i = 0; masters && masters[i]; i++) {
        aemp__peer_t *p = aemp__peer_get(n, masters[i], 0);
        if (p && p->link && p->link->state == LINK_UP) return 1;
    }
    return 0;
}

/* Connects to every master without a link or an attempt. */
static void connect_masters(aemp_node_t *n)
{
    char **masters = p0_of(n)->masters;
    for (size_t i = 0; masters && masters[i]; i++) {
        aemp__peer_t *p = aemp__peer_get(n, masters[i], 1);
        if (p && !p->link) aemp__peer_connect(p); /* (connecting: nothing) */
    }
}

static void master_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    aemp_node_t *n = w->data;
    (void)loop;
    (void)revents;
    aemp__enter(n);
    connect_masters(n);
    aemp__leave(n);
}

static void started0(aemp_node_t *n)
{
    p0_t *s = p0_of(n);
    ev_init(&s->master_retry, master_retry_cb);
    s->master_retry.data = n;
    connect_masters(n);
}

/* A noderef carries its endpoints; a slave's name carries none. */
static char **name_endpoints0(const char *name, size_t *count)
{
    *count = 0;
    if (!strncmp(name, "slave/", 6)) return NULL;
    return aemp__split(name, ',', count);
}

/* A noderef carries at most AEMP_P0_NAME_ENDPOINTS_MAX endpoints of
 * AEMP_P0_ENDPOINT_MAX bytes (a peer chooses the names its messages go
 * to; each endpoint becomes a key of the peer table). O(name). */
static int name_check0(const char *name, char *why, size_t len)
{
    if (strlen(name) > AEMP_P0_NAME_MAX) {
        snprintf(why, len, "a name longer than %u bytes", AEMP_P0_NAME_MAX);
        return AEMP_ELIMIT;
    }
    if (!strncmp(name, "slave/", 6)) return 0;
    size_t cnt = 1, ep = 0;
    for (const char *c = name; *c; c++) {
        if (*c != ',') {
            if (++ep <= AEMP_P0_ENDPOINT_MAX) continue;
            snprintf(why, len, "an endpoint longer than %u bytes", AEMP_P0_ENDPOINT_MAX);
            return AEMP_ELIMIT;
        }
        ep = 0;
        if (++cnt <= AEMP_P0_NAME_ENDPOINTS_MAX) continue;
        snprintf(why, len, "more than %u endpoints", AEMP_P0_NAME_ENDPOINTS_MAX);
        return AEMP_ELIMIT;
    }
    return 0;
}

/* The peer greeted with a name of its own: it is known by that too, and
 * a fuller noderef (more endpoints) becomes its name. */
static void peer_named0(aemp_node_t *n, aemp__peer_t *p, const char *remote)
{
    if (!strncmp(remote, "slave/", 6)) return;
    aemp__peer_add_name(p, remote);
    if (strchr(remote, ',') && !strchr(p->noderef, ',')) {
        size_t ne;
        char **eps = aemp__split(remote, ',', &ne);
        if (eps && !aemp__peer_set_name(p, remote)) aemp__peer_set_endpoints(p, eps, ne);
        else aemp__strv_free(eps);
    }
}

static const char *peer_resolve0(aemp_node_t *n, aemp__peer_t *p)
{
    /* a slave cannot be connected to: only its own link reaches it */
    return "cannot connect to a slave node";
}

/* A slave's first master link names it; a link that greeted with an older
 * name of ours (every master link but the one that renamed it) hears the
 * new one. */
/* Tells the node at the other end of l our name, when l greeted with
 * another one. */
static void send_iam(aemp_node_t *n, aemp__link_t *l)
{
    if (!l->greeted_as || !strcmp(n->noderef, l->greeted_as)) return;
    aemp__payload_t iam = {json_pack("[ss]", "iam", n->noderef), NULL, NULL};
    const char *to = l->peer->noderef;
    if (iam.elems && !aemp__send_own(n, to, strlen(to), "", 0, &iam)) {
        free(l->greeted_as);
        l->greeted_as = strdup(n->noderef);
    }
}

static void link_up0(aemp_node_t *n, aemp__peer_t *p, aemp__link_t *l)
{
    p0_t *s = p0_of(n);
    if (s->slave && !s->renamed && master_of(n, p)) {
        /* the first master link since the slave had none names it */
        char *via = strdup(aemp_hs_remote_noderef(aemp__link_hs(l)));
        if (via) {
            for (char *c = via; *c; c++)
                if (*c == ',') *c = '!';
            size_t len = strlen(s->slave_base) + strlen(via) + 2;
            char *nn = malloc(len);
            if (nn) {
                snprintf(nn, len, "%s@%s", s->slave_base, via);
                if (!aemp__node_set_name(n, nn, NULL, 0)) {
                    s->renamed = 1;
                    aemp__log(n, AEMP_LOG_INFO, "named %s", nn);
                }
                free(nn);
            }
            free(via);
        }
        /* every other master link hears the name */
        for (size_t i = 0; s->masters && s->masters[i]; i++) {
            aemp__peer_t *o = aemp__peer_get(n, s->masters[i], 0);
            if (o && o != p && o->link && o->link->state == LINK_UP) send_iam(n, o->link);
        }
    }
    send_iam(n, l);
}

/* A slave that lost a master tries it again after the connect interval
 * (what it sent meanwhile waits in the queue, as for any peer); with no
 * master link left, the next one to come up names it. */
/* Protocol 0 refuses no link at greeting, so no peer is found under a
 * second name that way. */
static void peer_aliased0(aemp_node_t *n, aemp__peer_t *p) {}

static void peer_down0(aemp_node_t *n, aemp__peer_t *p)
{
    p0_t *s = p0_of(n);
    const char *m = s->slave && !n->destroy_pending ? master_of(n, p) : NULL;
    if (!m) return;
    if (!any_master_up(n)) s->renamed = 0;
    aemp__log(n, AEMP_LOG_INFO, "master %s lost, trying again in %.1f s", m,
              n->cfg.connect_interval);
    ev_timer_stop(n->loop, &s->master_retry);
    ev_timer_set(&s->master_retry, n->cfg.connect_interval, 0.0);
    ev_timer_start(n->loop, &s->master_retry);
}

static void free0(aemp_node_t *n)
{
    p0_t *s = p0_of(n);
    if (n->loop) ev_timer_stop(n->loop, &s->master_retry);
    free(s->slave_base);
    aemp__strv_free(s->masters);
    free(s->bind);
    free(s->slave_name);
    free(s->secret_file);
    free(s);
}

static const aemp__framing_t *const framings0[] = {&aemp__framing_json, &aemp__framing_storable,
                                                    NULL};

const aemp__dialect_t aemp__dialect_p0 = {
    .protocol = 0,
    .profile = &aemp__hs_profile0,
    .framings = framings0,
    .services = aemp__services_p0,
    .init = init0,
    .start = start0,
    .started = started0,
    .name_endpoints = name_endpoints0,
    .name_check = name_check0,
    .peer_named = peer_named0,
    .peer_resolve = peer_resolve0,
    .link_up = link_up0,
    .peer_aliased = peer_aliased0,
    .peer_down = peer_down0,
    .free = free0,
    .link_greeted = aemp__perl04_link_greeted,
    .link_verified = aemp__perl04_link_verified,
    .unreachable = "Connection timed out",
    .tags = {
        .port_died = "kil",
        .kill = "kil",
        .watch = "mon1",
        .unwatch = "mon0",
        .spawn = "AnyEvent::MP::_spawn",
        .no_such_port = "no_such_port",
    },
    .quirks = {
        .refuse_second_link = 0,
        .no_such_port_names_port = 0,
        .eof_text = "Broken pipe",
        .quiet_scalars = 0,
        .node_port_watch_silent = 0,
        .unhandled_kills = 0,
    },
};
