/*
 * cli_node.c - the node behind every network verb, in either dialect:
 * creating and starting it (a node that cannot start says why in one
 * line, the last warning it logged while starting), running it until a
 * signal, and, for protocol 1, its configuration from the rc file.
 *
 * Binds and seeds of protocol 1 are resolved here with
 * aemp_hostport_resolve (2.02's rules: "host:*", "*", a bare port) and
 * handed to the node as "ip:port" endpoints, so that an entry that
 * cannot be resolved is named in the error line.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_node_starting(cli_node_t *b, int level, const char *msg)
{
    if (b->started || level > AEMP_LOG_WARN) return 0;
    free(b->start_error);
    b->start_error = strdup(msg);
    if (b->verbose && !b->quiet_start) cli_logf(b->prog, "%s", msg);
    return 1;
}

int cli_node_start(cli_node_t *b, const aemp_node_config_t *cfg)
{
    /* a peer closing on us must be an error return, not a signal */
    signal(SIGPIPE, SIG_IGN);
    b->loop = ev_default_loop(0);
    if (!b->loop) {
        cli_err(b->prog, "cannot initialise the event loop");
        return 1;
    }
    int err = 0;
    b->node = aemp_node_new(b->loop, cfg, &err);
    if (!b->node) {
        cli_err(b->prog, "cannot create the node: %s",
                b->start_error ? b->start_error : aemp_strerror(err));
        return 1;
    }
    if ((err = aemp_node_start(b->node))) {
        if (b->start_error && b->start_error_alone) cli_err(b->prog, "%s", b->start_error);
        else
            cli_err(b->prog, "cannot start the node: %s",
                    b->start_error ? b->start_error : aemp_strerror(err));
        return 1;
    }
    b->started = 1;
    return 0;
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    cli_node_t *b = w->data;
    (void)revents;
    if (b->verbose)
        cli_logf(b->prog, "%s: shutting down", w->signum == SIGINT ? "SIGINT" : "SIGTERM");
    ev_break(loop, EVBREAK_ALL);
}

void cli_node_signals(cli_node_t *b)
{
    ev_signal_init(&b->sigint, signal_cb, SIGINT);
    ev_signal_init(&b->sigterm, signal_cb, SIGTERM);
    b->sigint.data = b->sigterm.data = b;
    ev_signal_start(b->loop, &b->sigint);
    ev_signal_start(b->loop, &b->sigterm);
    b->signals = 1;
}

void cli_node_end(cli_node_t *b)
{
    if (b->signals) {
        ev_signal_stop(b->loop, &b->sigint);
        ev_signal_stop(b->loop, &b->sigterm);
        b->signals = 0;
    }
    /* closes every link: peers see the connection end, not a timeout */
    aemp_node_destroy(b->node);
    b->node = NULL;
    free(b->start_error);
    b->start_error = NULL;
}

/* ------------------------------------------------------------------ */
/* protocol 1's configuration                                          */

void cli_p1cfg_free(cli_p1cfg_t *p)
{
    for (size_t i = 0; p->binds && i < p->nbinds; i++) free(p->binds[i]);
    for (size_t i = 0; p->seeds && i < p->nseeds; i++) free(p->seeds[i]);
    free(p->binds);
    free(p->seeds);
    aemp_p1_config_free(&p->c);
    memset(p, 0, sizeof *p);
}

static void host_name(char *buf, size_t n)
{
    if (gethostname(buf, n)) snprintf(buf, n, "localhost");
    buf[n - 1] = 0;
}

/* Resolves the entries of a bind or seed list into *out (endpoints,
 * without duplicates). Returns 0, or 1 after printing why. */
static int resolve_list(const char *prog, const char *what, char *const *in, size_t nin,
                        char ***out, size_t *nout)
{
    char host[256];
    host_name(host, sizeof host);
    *out = calloc(1, sizeof **out);
    *nout = 0;
    if (!*out) goto nomem;
    for (size_t i = 0; i < nin; i++) {
        int err = 0;
        char *eps = aemp_hostport_resolve(in[i], host, &err);
        if (!eps) {
            if (err == AEMP_ENOMEM) goto nomem;
            char h[256], port[64];
            /* "*" on a host with no address but loopback: nothing, as in 2.02 */
            if (err == AEMP_ERESOLVE && !aemp_hostport_parse(in[i], host, h, sizeof h, port, sizeof port) &&
                !strcmp(h, "*"))
                continue;
            cli_err(prog, "%s '%s': %s", what, in[i],
                    err == AEMP_EINVAL ? "not a host:port" : "cannot resolve");
            return 1;
        }
        for (char *p = eps, *next; p && *p; p = next) {
            next = strchr(p, ',');
            if (next) *next++ = 0;
            int dup = 0;
            for (size_t k = 0; k < *nout; k++) dup |= !strcmp((*out)[k], p);
            char **v = dup ? *out : realloc(*out, (*nout + 2) * sizeof **out);
            if (!v || (!dup && !(v[*nout] = strdup(p)))) {
                if (v) *out = v;
                free(eps);
                goto nomem;
            }
            *out = v;
            if (!dup) v[++*nout] = NULL;
        }
        free(eps);
    }
    return 0;
nomem:
    cli_err(prog, "out of memory");
    return 1;
}

int cli_p1cfg_load(const char *prog, const json_t *rc, const char *profile, const json_t *args,
                   unsigned flags, cli_p1cfg_t *p)
{
    char host[256], err[AEMP_RC_ERRMAX];
    memset(p, 0, sizeof *p);
    host_name(host, sizeof host);
    if (!profile) profile = host;
    json_t *merged = aemp_rc_profile(rc, profile, args, flags, err, sizeof err);
    if (!merged ||
        aemp_p1_config_make(&p->c, merged, profile, host, aemp_random_source, NULL, err, sizeof err)) {
        json_decref(merged);
        cli_err(prog, "%s", err);
        return 1;
    }
    json_decref(merged);
    if (resolve_list(prog, "bind", p->c.binds, p->c.nbinds, &p->binds, &p->nbinds) ||
        resolve_list(prog, "seed", p->c.seeds, p->c.nseeds, &p->seeds, &p->nseeds)) {
        cli_p1cfg_free(p);
        return 1;
    }
    return 0;
}

const char *cli_framing_text(aemp_node_t *node, const char *name, char *t, size_t len)
{
    const char *fo = aemp_node_peer_framing(node, name, 0);
    const char *fi = aemp_node_peer_framing(node, name, 1);
    if (!fo || !fi) snprintf(t, len, "framing unknown");
    else if (!strcmp(fo, fi)) snprintf(t, len, "framing %s", fo);
    else snprintf(t, len, "framing %s out, %s in", fo, fi);
    return t;
}

void cli_p1cfg_apply(aemp_node_config_t *cfg, const cli_p1cfg_t *p)
{
    aemp_p1_node_config(cfg, &p->c);
    /* the binds and seeds as resolved here (errors were told by name) */
    cfg->binds = (const char *const *)p->binds;
    cfg->nbinds = p->nbinds;
    cfg->seeds = (const char *const *)p->seeds;
    cfg->nseeds = p->nseeds;
}
