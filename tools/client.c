/*
 * client.c - the short-lived node behind snd, cal, mon, ping and flood,
 * in either dialect: it starts, reaches the network, lets the command act,
 * and turns every way of failing into one clear line on stderr and exit
 * status 1.
 *
 * Protocol 0: the client is a public node bound to 127.0.0.1:0 (or
 * --bind): a Perl node accepts a peer only when its greeting names a
 * resolvable address or a slave, and a slave would need a master. Nobody
 * connects back to it: replies travel on the link the client opened. The
 * command acts once the link to the peer is authenticated.
 *
 * Protocol 1: as in 2.02, the client is `aemp/%n/%u` of profile `aemp`,
 * with the binds, seeds, secret and cert of the rc file. It acts once it
 * has joined the network (its first link, to a seed: nobody knows its
 * random id); the target's node is reached through the network.
 *
 * Failing fast: the node itself retries unreachable peers in rounds until
 * its connect timeout; a command line tool should not sit there when
 * every endpoint it needs (protocol 0: the peer's; protocol 1: the
 * seeds) has already refused or failed to authenticate. The node reports
 * each failed attempt (on_connect_failed); once every such endpoint has
 * failed before the command could act, the command ends with the last
 * reason. The library's warnings about the peer's endpoints are not
 * shown besides (protocol 0; with -v every log line is): the error line
 * says it.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define DEFAULT_CONNECT_TIMEOUT 10.0
#define JOIN_TIMEOUT 10.0  /* protocol 1: seconds until some seed must be up */
#define CMD_NODEID "aemp/%n/%u"
#define CMD_PROFILE "aemp"

struct cli_client {
    cli_node_t b;
    int protocol;
    char *peer;           /* the target's node: noderef (0) or node id (1) */
    char **eps;           /* protocol 0: the peer's endpoints; 1: the seeds */
    size_t neps;
    unsigned char *ep_failed; /* per endpoint: failed before the command could act */
    char *ep_error;       /* the last such failure */
    cli_p1cfg_t p1;       /* protocol 1: the configuration (eps are its seeds) */
    int no_secret;        /* protocol 0: no secret file: auth will fail, say why */
    int status;           /* exit status; -1 while running */
    int up, was_up;       /* the command can act / could act */
    int target_up;        /* the link to the target's node is up */
    int monitored;        /* protocol 1: a monitor reports the target's node */
    double t0;
    double join_timeout;
    ev_timer connect_w;
    ev_timer deadline_w;
    ev_timer drain_w;     /* polls until the peer's queue is written */
    ev_timer then_w;
    int drain_status;
    double drain_end;     /* 0: no cap */
    char *deadline_msg;
    void (*up_fn)(cli_client_t *, void *);
    void *up_ud;
    void (*down_fn)(cli_client_t *, const char *, void *);
    void *down_ud;
    void (*then_fn)(cli_client_t *, void *);
    void *then_ud;
};

int cli_client_parse(const char *prog, int argc, char **argv, cli_client_opts_t *o,
                     int takes_timeout, void (*usage)(FILE *))
{
    static const struct option with_timeout[] = {
        {"secret-file", 1, NULL, 'f'}, {"bind", 1, NULL, 'b'}, {"connect-timeout", 1, NULL, 'c'},
        {"verbose", 0, NULL, 'v'},     {"help", 0, NULL, 'h'}, {"timeout", 1, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    static const struct option without_timeout[] = {
        {"secret-file", 1, NULL, 'f'}, {"bind", 1, NULL, 'b'}, {"connect-timeout", 1, NULL, 'c'},
        {"verbose", 0, NULL, 'v'},     {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:vh", takes_timeout ? with_timeout : without_timeout,
                            NULL)) != -1) {
        switch (c) {
        case 'f': o->secret_file = optarg; break;
        case 'b': o->bind = optarg; break;
        case 'v': o->verbose++; break;
        case 'h': usage(stdout); return 0;
        case 'c':
            if (cli_parse_seconds(optarg, &o->connect_timeout)) {
                cli_err(prog, "--connect-timeout: '%s' is not a number of seconds", optarg);
                return 2;
            }
            break;
        case 't':
            if (cli_parse_seconds(optarg, &o->timeout)) {
                cli_err(prog, "--timeout: '%s' is not a number of seconds", optarg);
                return 2;
            }
            break;
        default: return cli_bad_option(prog, argv, c);
        }
    }
    return -1;
}

void cli_client_options_usage(FILE *f)
{
    fprintf(f,
            "  --secret-file FILE     the shared secret (default $HOME/.aemp-secret)\n"
            "  --bind NODEREF         this client node's address (default 127.0.0.1:0)\n"
            "  --connect-timeout S    give up connecting after S seconds (default 10)\n"
            "  -v, --verbose          log link events to stderr (twice: debug too)\n"
            "  --help                 this text\n");
}

/* Splits a noderef into its endpoints (a NULL-terminated malloc'd
 * vector). */
static char **split_eps(const char *noderef, size_t *n)
{
    size_t cnt = 1;
    for (const char *p = noderef; *p; p++) cnt += *p == ',';
    char **v = calloc(cnt + 1, sizeof *v);
    if (!v) return NULL;
    size_t i = 0;
    for (const char *p = noderef;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (!(v[i++] = strndup(p, len))) {
            for (size_t j = 0; j < i; j++) free(v[j]);
            free(v);
            return NULL;
        }
        if (!comma) break;
        p = comma + 1;
    }
    *n = i;
    return v;
}

static void free_eps(char **v)
{
    for (char **p = v; p && *p; p++) free(*p);
    free(v);
}

/* The index of endpoint ep among c's, or -1. */
static long ep_index(const cli_client_t *c, const char *ep)
{
    for (size_t i = 0; i < c->neps; i++)
        if (!strcmp(c->eps[i], ep)) return (long)i;
    return -1;
}

/* Protocol 0: 1 when a log line is about the peer ("ENDPOINT: ..." or
 * "NODEREF: ..."): its failures are told by the one error line. */
static int about_peer(const cli_client_t *c, const char *msg)
{
    for (size_t i = 0; i <= c->neps; i++) {
        const char *name = i < c->neps ? c->eps[i] : c->peer;
        size_t l = strlen(name);
        if (!strncmp(msg, name, l) && msg[l] == ':' && msg[l + 1] == ' ') return 1;
    }
    return 0;
}

/* 1 when the node named by an on_link event is the target's: in
 * protocol 0 the node may know it by a longer name learned from its
 * greeting. */
static int is_target(const cli_client_t *c, const char *name)
{
    if (!strcmp(name, c->peer)) return 1;
    if (c->protocol) return 0;
    size_t n = 0;
    char **v = split_eps(name, &n);
    int hit = 0;
    for (size_t i = 0; v && i < n && !hit; i++) hit = ep_index(c, v[i]) >= 0;
    free_eps(v);
    return hit;
}

void cli_client_finish(cli_client_t *c, int status)
{
    if (c->status >= 0) return; /* the first outcome wins */
    c->status = status;
    ev_break(c->b.loop, EVBREAK_ALL);
}

static void drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    cli_client_t *c = w->data;
    (void)revents;
    /* queued == 0 alone would also hold before the link exists */
    if ((aemp_node_is_up(c->b.node, c->peer) && aemp_node_queued(c->b.node, c->peer) == 0) ||
        (c->drain_end > 0 && ev_now(loop) >= c->drain_end)) {
        ev_timer_stop(loop, w);
        cli_client_finish(c, c->drain_status);
    }
}

void cli_client_finish_flushed(cli_client_t *c, int status, double cap)
{
    c->drain_status = status;
    c->drain_end = cap > 0 ? ev_now(c->b.loop) + cap : 0;
    /* the node hands bytes to the kernel from its own watchers and says
     * nothing when done, so poll: a few ms cost nothing for a tool */
    ev_timer_stop(c->b.loop, &c->drain_w);
    ev_timer_set(&c->drain_w, 0.0, 0.005);
    ev_timer_start(c->b.loop, &c->drain_w);
}

void cli_client_fail(cli_client_t *c, const char *fmt, ...)
{
    if (c->status >= 0) return;
    va_list ap;
    fprintf(stderr, "%s: ", c->b.prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_client_finish(c, 1);
}

/* Protocol 0: the peer cannot be reached. */
static void fail_connect(cli_client_t *c, const char *why)
{
    const char *hint = "";
    if (c->no_secret && strstr(why, "authentication"))
        hint = " (no secret file: create one with 'aemp gensecret' or use --secret-file)";
    cli_client_fail(c, "cannot connect to %s: %s%s", c->peer, why, hint);
}

/* Endpoint i failed before the command could act: once every one has,
 * that is the end. */
static void endpoint_failed(cli_client_t *c, size_t i, const char *why)
{
    c->ep_failed[i] = 1;
    free(c->ep_error);
    c->ep_error = strdup(why);
    for (size_t k = 0; k < c->neps; k++)
        if (!c->ep_failed[k]) return;
    if (c->protocol == 0 && c->neps == 1) {
        fail_connect(c, why);
    } else if (c->protocol == 0) {
        /* several endpoints: say which one failed last */
        size_t n = strlen(c->eps[i]) + strlen(why) + 3;
        char *text = malloc(n);
        if (text) snprintf(text, n, "%s: %s", c->eps[i], why);
        fail_connect(c, text ? text : why);
        free(text);
    } else if (c->neps == 1)
        cli_client_fail(c, "cannot join the network: seed %s: %s", c->eps[0], why);
    else
        cli_client_fail(c, "cannot join the network: no seed reachable (last: %s: %s)", c->eps[i],
                        why);
}

static void log_cb(void *ud, int level, const char *msg)
{
    cli_client_t *c = ud;
    if (cli_node_starting(&c->b, level, msg)) return;
    if (c->b.verbose && level <= AEMP_LOG_INFO + (c->b.verbose > 1))
        cli_logf(c->b.prog, "%s", msg);
    else if (c->protocol == 0 && level <= AEMP_LOG_WARN && !about_peer(c, msg))
        cli_err(c->b.prog, "%s", msg);
}

static void connect_failed_cb(void *ud, aemp_node_t *node, const char *peer, const char *address,
                              const char *reason)
{
    cli_client_t *c = ud;
    long i = ep_index(c, address);
    if (i < 0 || c->was_up || c->status >= 0) return;
    endpoint_failed(c, (size_t)i, reason);
}

static void link_cb(void *ud, aemp_node_t *node, const char *name, int up, const char *reason)
{
    cli_client_t *c = ud;
    if (c->b.verbose) {
        char ft[64];
        if (up) cli_logf(c->b.prog, "link up: %s (%s)", name, cli_framing_text(node, name, ft, sizeof ft));
        else cli_logf(c->b.prog, "link down: %s: %s", name, reason && *reason ? reason : "closed");
    }
    if (c->status >= 0) return;
    const char *why = reason && *reason ? reason : NULL;
    int target = is_target(c, name);
    if (up) {
        /* protocol 0: the peer's link, once the node calls it up */
        if (target && (c->protocol || aemp_node_is_up(node, c->peer))) c->target_up = 1;
        if (c->up || (c->protocol == 0 && !c->target_up)) return;
        c->up = c->was_up = 1;
        ev_timer_stop(c->b.loop, &c->connect_w);
        if (c->up_fn) c->up_fn(c, c->up_ud);
        return;
    }
    /* protocol 1: a seed named by its address went down before we joined */
    long s = c->protocol ? ep_index(c, name) : -1;
    if (!c->was_up && s >= 0) endpoint_failed(c, (size_t)s, why ? why : "closed");
    if (!target || c->status >= 0) return;
    if (c->protocol == 0 && aemp_node_is_up(node, c->peer)) return; /* a replaced link */
    if (c->monitored) return;
    if (!c->target_up) {
        if (c->protocol == 0) fail_connect(c, why ? why : "unreachable");
        else cli_client_fail(c, "cannot reach node %s: %s", c->peer, why ? why : "unreachable");
        return;
    }
    c->target_up = 0;
    if (c->protocol == 0) c->up = 0;
    if (c->down_fn) c->down_fn(c, reason ? reason : "", c->down_ud);
    else cli_client_fail(c, "link to %s lost: %s", c->peer, why ? why : "closed");
}

static void connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    cli_client_t *c = w->data;
    (void)loop;
    (void)revents;
    if (c->was_up) return;
    if (c->protocol == 0)
        fail_connect(c, "Connection timed out");
    else if (c->ep_error)
        cli_client_fail(c, "cannot join the network within %g s (last seed failure: %s)",
                        c->join_timeout, c->ep_error);
    else
        cli_client_fail(c, "cannot join the network: no seed answered within %g s",
                        c->join_timeout);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    cli_client_t *c = w->data;
    (void)loop;
    (void)revents;
    cli_client_fail(c, "%s", c->deadline_msg ? c->deadline_msg : "timed out");
}

static void then_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    cli_client_t *c = w->data;
    (void)loop;
    (void)revents;
    if (c->status < 0 && c->then_fn) c->then_fn(c, c->then_ud);
}

static void client_free(cli_client_t *c)
{
    if (!c) return;
    if (c->b.loop) {
        ev_timer_stop(c->b.loop, &c->connect_w);
        ev_timer_stop(c->b.loop, &c->deadline_w);
        ev_timer_stop(c->b.loop, &c->drain_w);
        ev_timer_stop(c->b.loop, &c->then_w);
    }
    cli_node_end(&c->b);
    free(c->peer);
    if (!c->protocol) free_eps(c->eps);
    cli_p1cfg_free(&c->p1);
    free(c->deadline_msg);
    free(c->ep_failed);
    free(c->ep_error);
    free(c);
}

/* The part of creating a client both dialects share: c has prog,
 * protocol, peer and eps; cfg the dialect's settings. Starts the node
 * and the timer of the connect (join) timeout. Returns 0, or 1 after
 * printing why. */
static int client_start(cli_client_t *c, aemp_node_config_t *cfg, double join_timeout)
{
    if (!(c->ep_failed = calloc(c->neps ? c->neps : 1, 1))) {
        cli_err(c->b.prog, "out of memory");
        return 1;
    }
    c->status = -1;
    c->t0 = ev_time();
    c->join_timeout = join_timeout;
    cfg->log = log_cb;
    cfg->log_ud = c;
    cfg->on_link = link_cb;
    cfg->link_ud = c;
    cfg->on_connect_failed = connect_failed_cb;
    cfg->connect_failed_ud = c;
    /* timers first: a failed start frees c through client_free */
    ev_init(&c->connect_w, connect_timeout_cb);
    ev_init(&c->deadline_w, deadline_cb);
    ev_init(&c->drain_w, drain_cb);
    ev_init(&c->then_w, then_cb);
    c->connect_w.data = c->deadline_w.data = c->drain_w.data = c->then_w.data = c;
    if (cli_node_start(&c->b, cfg)) return 1;
    ev_timer_set(&c->connect_w, join_timeout, 0.0);
    ev_timer_start(c->b.loop, &c->connect_w);
    return 0;
}

cli_client_t *cli_client_new(const char *prog, const cli_client_opts_t *o, const char *peer)
{
    cli_secret_t secret;
    if (cli_secret_load(prog, o->secret_file, &secret)) return NULL;
    cli_client_t *c = calloc(1, sizeof *c);
    if (!c || !(c->peer = strdup(peer)) || !(c->eps = split_eps(peer, &c->neps))) {
        cli_err(prog, "out of memory");
        goto bad;
    }
    c->b.prog = prog;
    c->b.verbose = o->verbose;
    c->b.quiet_start = 1; /* the error line says it */
    c->no_secret = secret.data == NULL;
    double ct = o->connect_timeout > 0 ? o->connect_timeout : DEFAULT_CONNECT_TIMEOUT;
    aemp_node_config_t cfg = {
        .bind = o->bind ? o->bind : "127.0.0.1:0",
        .connect_timeout = ct,
    };
    if (secret.data) {
        cfg.secret = secret.data;
        cfg.secret_len = secret.len;
    } else {
        /* no secret: the node would pick random bytes; say so now */
        if (c->b.verbose) cli_logf(prog, "no secret file: using a random secret");
    }
    int bad = client_start(c, &cfg, ct + 1.0);
    cli_secret_free(&secret);
    if (bad) goto bad;
    if (c->b.verbose > 1) cli_logf(prog, "client node %s", aemp_node_noderef(c->b.node));
    return c;
bad:
    cli_secret_free(&secret);
    client_free(c);
    return NULL;
}

/* Protocol 1: the client for target (a node id) with the configuration
 * of rc. Returns NULL after printing why. */
static cli_client_t *client_new_p1(const char *prog, int verbose, const json_t *rc,
                                   const char *target)
{
    cli_client_t *c = calloc(1, sizeof *c);
    json_t *cmdargs = c ? json_pack("{ss}", "nodeid", CMD_NODEID) : NULL;
    if (!cmdargs || !(c->peer = strdup(target))) {
        cli_err(prog, "out of memory");
        goto bad;
    }
    c->b.prog = prog;
    c->b.verbose = verbose;
    c->protocol = 1;
    int bad = cli_p1cfg_load(prog, rc, CMD_PROFILE, cmdargs, 0, &c->p1);
    json_decref(cmdargs);
    cmdargs = NULL;
    if (bad) goto bad;
    if (!c->p1.nseeds) {
        cli_err(prog, "no seeds configured: the command joins the network through them "
                      "(see 'aemp --protocol 1 setseeds HOST:PORT')");
        goto bad;
    }
    c->eps = c->p1.seeds;
    c->neps = c->p1.nseeds;
    aemp_node_config_t cfg = {0};
    cli_p1cfg_apply(&cfg, &c->p1);
    if (client_start(c, &cfg, JOIN_TIMEOUT)) goto bad;
    if (verbose) cli_logf(prog, "node %s", aemp_node_noderef(c->b.node));
    return c;
bad:
    json_decref(cmdargs);
    client_free(c);
    return NULL;
}

aemp_node_t *cli_client_node(cli_client_t *c) { return c->b.node; }
const char *cli_client_peer(const cli_client_t *c) { return c->peer; }
int cli_client_protocol(const cli_client_t *c) { return c->protocol; }
double cli_client_elapsed(const cli_client_t *c) { return ev_time() - c->t0; }
int cli_client_was_up(const cli_client_t *c) { return c->was_up; }
int cli_client_verbose(const cli_client_t *c) { return c->b.verbose; }
void cli_client_monitored(cli_client_t *c, int on) { c->monitored = on; }
void cli_client_target_up(cli_client_t *c) { c->target_up = 1; }

void cli_client_on_up(cli_client_t *c, void (*fn)(cli_client_t *, void *), void *ud)
{
    c->up_fn = fn;
    c->up_ud = ud;
}

void cli_client_on_down(cli_client_t *c, void (*fn)(cli_client_t *, const char *, void *),
                        void *ud)
{
    c->down_fn = fn;
    c->down_ud = ud;
}

void cli_client_deadline(cli_client_t *c, double seconds, const char *message)
{
    free(c->deadline_msg);
    c->deadline_msg = message ? strdup(message) : NULL;
    ev_timer_stop(c->b.loop, &c->deadline_w);
    ev_timer_set(&c->deadline_w, seconds, 0.0);
    ev_timer_start(c->b.loop, &c->deadline_w);
}

void cli_client_then(cli_client_t *c, void (*fn)(cli_client_t *, void *), void *ud)
{
    c->then_fn = fn;
    c->then_ud = ud;
    ev_timer_stop(c->b.loop, &c->then_w);
    ev_timer_set(&c->then_w, 0.0, 0.0);
    ev_timer_start(c->b.loop, &c->then_w);
}

int cli_client_unreached(cli_client_t *c, const json_t *reason)
{
    const char *tag = json_string_value(json_array_get(reason, 0));
    if (!c->protocol || !tag || strcmp(tag, "transport_error") || c->target_up) return 0;
    const char *why = json_string_value(json_array_get(reason, 2));
    cli_client_fail(c, "cannot reach node %s: %s", c->peer, why ? why : "unreachable");
    return 1;
}

void cli_client_port_died(cli_client_t *c, const char *portid, const json_t *reason,
                          const char *after)
{
    const char *tag = json_string_value(json_array_get(reason, 0));
    if (cli_client_unreached(c, reason)) return;
    if (c->protocol && tag && !strcmp(tag, "no_such_port")) {
        cli_client_fail(c, "%s: no such port", portid);
        return;
    }
    if (json_array_size(reason) == 0) {
        cli_client_fail(c, "%s exited%s", portid, after);
        return;
    }
    char *text = aemp_json_encode(reason, NULL);
    cli_client_fail(c, "%s died%s: %s", portid, after, text ? text : "?");
    free(text);
}

int cli_client_run(cli_client_t *c)
{
    /* a failure may already have been reported from inside a call (a
     * refused connect can fail at once); ev_break before ev_run would be
     * forgotten, hence the explicit check */
    while (c->status < 0) ev_run(c->b.loop, EVRUN_ONCE);
    int status = c->status;
    client_free(c);
    return status;
}

int cli_client_for_port(const char *prog, int argc, char **argv, const cli_client_opts_t *o,
                        json_t **msg, cli_client_t **c, char **node, char **port)
{
    const char *cmd = strchr(prog, ' ') ? strchr(prog, ' ') + 1 : prog;
    *c = NULL;
    *node = *port = NULL;
    if (optind >= argc) {
        cli_err(prog, "missing PORT (see 'aemp %s --help')", cmd);
        return 2;
    }
    if (msg) {
        char err[256];
        *msg = cli_args_to_json(argc - optind - 1, argv + optind + 1, err, sizeof err);
        if (!*msg) {
            cli_err(prog, "%s", err);
            return 2;
        }
    } else if (optind + 1 < argc) {
        cli_err(prog, "unexpected argument '%s' (see 'aemp %s --help')", argv[optind + 1], cmd);
        return 2;
    }
    if (cli_resolve_portid(prog, argv[optind], node, port) ||
        !(*c = cli_client_new(prog, o, *node))) {
        if (msg) json_decref(*msg);
        free(*node);
        free(*port);
        *node = *port = NULL;
        return 1;
    }
    return 0;
}

/* Protocol 1: PORT as given, NODEID#ID or a bare NODEID. Returns 0 with
 * *node set (malloc'd), or the exit status after printing why. */
static int split_port(const char *prog, const json_t *arg, char **node)
{
    const char *port = json_string_value(arg);
    if (!port) {
        cli_err(prog, "PORT must be a string (NODEID#ID, or a node id for its node port)");
        return 2;
    }
    for (const char *p = port; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ';') {
            cli_err(prog, "bad port: a port id cannot contain ';' or control characters");
            return 2;
        }
    const char *hash = strchr(port, '#');
    if (!*port || hash == port) {
        cli_err(prog, "bad port '%s': no node id (PORT is NODEID#ID, or a node id)", port);
        return 2;
    }
    if (hash && (!hash[1] || strchr(hash + 1, '#'))) {
        cli_err(prog, "bad port '%s': %s", port,
                hash[1] ? "more than one '#'" : "no port name after '#' (a bare node id is its node port)");
        return 2;
    }
    *node = hash ? strndup(port, (size_t)(hash - port)) : strdup(port);
    if (!*node) {
        cli_err(prog, "out of memory");
        return 1;
    }
    return 0;
}

int cli_client_for_port_p1(const char *prog, cli_chain_t *s, json_t **msg, cli_client_t **c,
                           const char **port)
{
    int verbose = 0, i = 0, status;
    *c = NULL;
    json_t *const *args;
    int nargs = cli_chain_rest(s, &args);
    if (nargs < 0) return 1;
    for (; i < nargs && json_is_string(args[i]); i++) {
        const char *a = json_string_value(args[i]);
        if (strcmp(a, "-v") && strcmp(a, "--verbose")) break;
        verbose++;
    }
    if (i == nargs) {
        cli_err(prog, "PORT missing (see 'aemp --protocol 1 help')");
        return 2;
    }
    if (!msg && i + 1 < nargs) {
        cli_err(prog, "mon takes PORT alone");
        return 2;
    }
    char *node;
    if ((status = split_port(prog, args[i], &node))) return status;
    *port = json_string_value(args[i]);
    if (msg) {
        int nomem = !(*msg = json_array());
        for (int k = i + 1; k < nargs && !nomem; k++) nomem |= json_array_append(*msg, args[k]);
        if (nomem) {
            cli_err(prog, "out of memory");
            json_decref(*msg);
            free(node);
            return 1;
        }
    }
    *c = client_new_p1(prog, verbose, s->rc, node);
    free(node);
    if (!*c) {
        if (msg) json_decref(*msg);
        return 1;
    }
    return 0;
}
