/*
 * naming0.c - protocol 0's naming model (PROTOCOL.md §1, §4): a node is
 * named by its noderef, the comma list of the endpoints it listens on, so
 * a name is also the way to reach it; a slave listens nowhere, is named
 * "slave/NAME" and renames itself "slave/NAME@VIA" when its first master
 * link comes up, telling every other master with `iam`. The secret comes
 * from the configuration, a file, $HOME/.aemp-secret or chance; a key and
 * a certificate in it switch TLS on.
 */
#include "node_int.h"

#include <stdio.h>

#include "addr.h"
#include "tls.h"

static char *dupnull(const char *s, int *fail)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *fail = 1;
    return d;
}

static int init0(aemp_node_t *n, const aemp_node_config_t *cfg)
{
    int fail = 0, e = 0;
    n->bind = dupnull(cfg->bind ? cfg->bind : "", &fail);
    n->slave_name = dupnull(cfg->slave_name, &fail);
    n->secret_file = dupnull(cfg->secret_file, &fail);
    if (cfg->nmasters) {
        n->masters = calloc(cfg->nmasters + 1, sizeof *n->masters);
        if (!n->masters) fail = 1;
        for (size_t i = 0; !fail && i < cfg->nmasters; i++)
            n->masters[i] = dupnull(cfg->masters[i], &fail);
    }
    if (fail) return AEMP_ENOMEM;
    n->slave = cfg->slave_name != NULL;
    n->timeout = cfg->timeout ? (cfg->timeout < 4 ? 4 : cfg->timeout) : AEMP_DEFAULT_TIMEOUT;
    if (n->cfg.connect_interval <= 0) n->cfg.connect_interval = AEMP_DEFAULT_CONNECT_INTERVAL;
    if (n->cfg.connect_timeout <= 0) n->cfg.connect_timeout = AEMP_DEFAULT_CONNECT_TIMEOUT;

    /* the secret: given, from a file, from $HOME/.aemp-secret, or random */
    if (cfg->secret) {
        n->secret = malloc(cfg->secret_len ? cfg->secret_len : 1);
        if (!n->secret) return AEMP_ENOMEM;
        memcpy(n->secret, cfg->secret, cfg->secret_len);
        n->secret_len = cfg->secret_len;
    } else if (n->secret_file) {
        n->secret = aemp_read_secret(n->secret_file, &n->secret_len, &e);
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

/* A slave names itself; any other node listens on its bind noderef and is
 * named by the endpoints it got. */
static int start0(aemp_node_t *n)
{
    int rc = 0;
    if (n->slave) {
        char name[64];
        if (!*n->slave_name) {
            unsigned char r[8];
            aemp_random_bytes(r, sizeof r);
            char hex[17];
            aemp__hex(r, sizeof r, hex);
            snprintf(name, sizeof name, "slave/%s", hex);
        } else {
            snprintf(name, sizeof name, "slave/%.50s", n->slave_name);
        }
        return aemp__node_set_name(n, name, NULL, 0);
    }
    char *resolved = aemp_resolve(n->bind, &rc);
    if (!resolved) {
        aemp__log(n, AEMP_LOG_ERROR, "%s: cannot resolve", n->bind);
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

static void started0(aemp_node_t *n)
{
    for (size_t i = 0; n->masters && n->masters[i]; i++) aemp_node_connect(n, n->masters[i]);
}

/* A noderef carries its endpoints; a slave's name carries none. */
static char **name_endpoints0(const char *name, size_t *count)
{
    *count = 0;
    if (!strncmp(name, "slave/", 6)) return NULL;
    return aemp__split(name, ',', count);
}

/* The peer greeted with a name of its own: it is known by that too, and
 * a fuller noderef (more endpoints) becomes its name. */
static void peer_named0(aemp_node_t *n, aemp__peer_t *p, const char *remote)
{
    if (!strncmp(remote, "slave/", 6)) return;
    aemp__peer_add_name(p, remote);
    if (strchr(remote, ',') && !strchr(p->noderef, ',')) {
        char *nr = strdup(remote);
        size_t ne;
        char **eps = aemp__split(remote, ',', &ne);
        if (nr && eps) {
            free(p->noderef);
            p->noderef = nr;
            aemp__strv_free(p->eps);
            p->eps = eps;
            p->neps = ne;
            nr = NULL;
            eps = NULL;
        }
        free(nr);
        aemp__strv_free(eps);
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
static void link_up0(aemp_node_t *n, aemp__peer_t *p, aemp__link_t *l)
{
    if (n->slave && !n->renamed) {
        char *via = strdup(aemp_hs_remote_noderef(aemp__link_hs(l)));
        if (via) {
            for (char *c = via; *c; c++)
                if (*c == ',') *c = '!';
            size_t len = strlen(n->greet_name) + strlen(via) + 2;
            char *nn = malloc(len);
            if (nn) {
                snprintf(nn, len, "%s@%s", n->greet_name, via);
                aemp__map_set(&n->self_names, nn, (void *)1);
                aemp__routes_changed(n);
                free(n->noderef);
                n->noderef = nn;
                n->renamed = 1;
            }
            free(via);
        }
    }
    if (l->greeted_as && strcmp(n->noderef, l->greeted_as)) {
        aemp__payload_t iam = {json_pack("[ss]", "iam", n->noderef), NULL, NULL};
        if (iam.elems) aemp__link_queue_msg(l, "", 0, &iam);
        if (n->slave) {
            free(n->greet_name);
            n->greet_name = strdup(n->noderef);
        }
    }
}

static void peer_down0(aemp_node_t *n, aemp__peer_t *p) {}
static void free0(aemp_node_t *n) {}

const aemp__dialect_t aemp__dialect_p0 = {
    .protocol = 0,
    .framings = "json,storable",
    .services = aemp__services_p0,
    .init = init0,
    .start = start0,
    .started = started0,
    .name_endpoints = name_endpoints0,
    .peer_named = peer_named0,
    .peer_resolve = peer_resolve0,
    .link_up = link_up0,
    .peer_down = peer_down0,
    .free = free0,
    .unreachable = "Connection timed out",
    .tag_port_died = "kil",
    .tag_kill = "kil",
    .refuse_second_link = 0,
    .no_such_port_names_port = 0,
    .eof_text = "Broken pipe",
    .quiet_scalars = 0,
};
