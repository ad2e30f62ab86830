/*
 * client.c - the short-lived node behind snd, cal, mon and ping: it
 * starts, connects to one peer, lets the command act once the link is
 * authenticated, and turns every way of failing into one clear line on
 * stderr and exit status 1.
 *
 * The client is a public node bound to 127.0.0.1:0 (or --bind): a Perl
 * node accepts a peer only when its greeting names a resolvable address
 * or a slave, and a slave would need a master. Nobody connects back to
 * it: replies travel on the link the client opened.
 *
 * Failing fast: the node itself retries unreachable peers in rounds until
 * its connect timeout; a command line tool should not sit there when
 * every endpoint of the peer has already refused (or failed to
 * authenticate). The node reports each failed attempt as a warning
 * "ENDPOINT: MESSAGE"; once every endpoint of the peer has failed before
 * the link was ever up, the command ends with the last such message.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define DEFAULT_CONNECT_TIMEOUT 10.0

struct cli_client {
    const char *prog;
    struct ev_loop *loop;
    aemp_node_t *node;
    char *peer;           /* resolved noderef of the peer */
    char **eps;           /* its endpoints, to recognise its warnings */
    size_t neps;
    unsigned char *ep_failed; /* per endpoint: failed before the link was up */
    int verbose;
    int no_secret;        /* no secret file: auth will fail, say why */
    int status;           /* exit status; -1 while running */
    int up, was_up;
    int started;          /* the node is started: log normally */
    char *start_error;    /* until then, its last error */
    double t0;
    ev_timer connect_w;
    ev_timer deadline_w;
    ev_timer drain_w;     /* polls until the peer's queue is written */
    int drain_status;
    double drain_end;     /* 0: no cap */
    char *deadline_msg;
    void (*up_fn)(cli_client_t *, void *);
    void *up_ud;
    void (*down_fn)(cli_client_t *, const char *, void *);
    void *down_ud;
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

/* Which endpoint of the peer a warning "X: ..." is about: its index, or
 * neps when X is the peer's whole noderef, or -1 when it is not about
 * the peer. */
static long about_peer(const cli_client_t *c, const char *msg)
{
    for (size_t i = 0; i < c->neps; i++) {
        size_t l = strlen(c->eps[i]);
        if (!strncmp(msg, c->eps[i], l) && msg[l] == ':' && msg[l + 1] == ' ') return (long)i;
    }
    size_t l = strlen(c->peer);
    if (!strncmp(msg, c->peer, l) && msg[l] == ':' && msg[l + 1] == ' ') return (long)c->neps;
    return -1;
}

/* 1 when the node named by an on_link event is the peer: the node may
 * know it by a longer name learned from its greeting. */
static int is_peer(const cli_client_t *c, const char *noderef)
{
    if (!strcmp(noderef, c->peer)) return 1;
    size_t n = 0;
    char **v = split_eps(noderef, &n);
    int hit = 0;
    for (size_t i = 0; v && i < n && !hit; i++)
        for (size_t j = 0; j < c->neps && !hit; j++) hit = !strcmp(v[i], c->eps[j]);
    free_eps(v);
    return hit;
}

void cli_client_finish(cli_client_t *c, int status)
{
    if (c->status >= 0) return; /* the first outcome wins */
    c->status = status;
    ev_break(c->loop, EVBREAK_ALL);
}

static void drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    cli_client_t *c = w->data;
    (void)revents;
    /* queued == 0 alone would also hold before the link exists */
    if ((aemp_node_is_up(c->node, c->peer) && aemp_node_queued(c->node, c->peer) == 0) ||
        (c->drain_end > 0 && ev_now(loop) >= c->drain_end)) {
        ev_timer_stop(loop, w);
        cli_client_finish(c, c->drain_status);
    }
}

void cli_client_finish_flushed(cli_client_t *c, int status, double cap)
{
    c->drain_status = status;
    c->drain_end = cap > 0 ? ev_now(c->loop) + cap : 0;
    /* the node hands bytes to the kernel from its own watchers and says
     * nothing when done, so poll: a few ms cost nothing for a tool */
    ev_timer_stop(c->loop, &c->drain_w);
    ev_timer_set(&c->drain_w, 0.0, 0.005);
    ev_timer_start(c->loop, &c->drain_w);
}

void cli_client_fail(cli_client_t *c, const char *fmt, ...)
{
    if (c->status >= 0) return;
    va_list ap;
    fprintf(stderr, "%s: ", c->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_client_finish(c, 1);
}

static void fail_connect(cli_client_t *c, const char *why)
{
    const char *hint = "";
    if (c->no_secret && strstr(why, "authentication"))
        hint = " (no secret file: create one with 'aemp gensecret' or use --secret-file)";
    cli_client_fail(c, "cannot connect to %s: %s%s", c->peer, why, hint);
}

static void log_cb(void *ud, int level, const char *msg)
{
    cli_client_t *c = ud;
    if (!c->started && level <= AEMP_LOG_WARN) {
        /* a node that cannot start says why once, in our error line */
        free(c->start_error);
        c->start_error = strdup(msg);
        return;
    }
    long ep = level <= AEMP_LOG_WARN ? about_peer(c, msg) : -1;
    if (c->verbose && level <= AEMP_LOG_INFO + (c->verbose > 1))
        cli_logf(c->prog, "%s", msg);
    else if (level <= AEMP_LOG_WARN && ep < 0)
        cli_err(c->prog, "%s", msg);
    /* the peer's failures become the one error line: fail_connect once
     * every endpoint has failed, the on_link handler after the link was
     * up */
    if (ep < 0 || c->was_up || c->status >= 0) return;
    size_t failed = 0;
    for (size_t i = 0; i < c->neps; i++) {
        if ((size_t)ep == i || (size_t)ep == c->neps) c->ep_failed[i] = 1;
        failed += c->ep_failed[i];
    }
    if (failed < c->neps) return;
    /* fail_connect names the peer: drop a lone endpoint's name */
    fail_connect(c, c->neps == 1 && ep == 0 ? msg + strlen(c->eps[0]) + 2 : msg);
}

static void link_cb(void *ud, aemp_node_t *node, const char *noderef, int up, const char *reason)
{
    cli_client_t *c = ud;
    if (c->verbose) {
        if (up) cli_logf(c->prog, "link up: %s", noderef);
        else cli_logf(c->prog, "link down: %s: %s", noderef, reason);
    }
    if (c->status >= 0 || !is_peer(c, noderef)) return;
    if (up) {
        if (c->up || !aemp_node_is_up(node, c->peer)) return;
        c->up = c->was_up = 1;
        ev_timer_stop(c->loop, &c->connect_w);
        if (c->up_fn) c->up_fn(c, c->up_ud);
        return;
    }
    if (aemp_node_is_up(node, c->peer)) return; /* a replaced link */
    if (!c->was_up) {
        fail_connect(c, reason && *reason ? reason : "unreachable");
        return;
    }
    c->up = 0;
    if (c->down_fn) c->down_fn(c, reason, c->down_ud);
    else cli_client_fail(c, "link to %s lost: %s", c->peer, reason);
}

static void connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    cli_client_t *c = w->data;
    (void)loop;
    (void)revents;
    if (!c->was_up) fail_connect(c, "Connection timed out");
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    cli_client_t *c = w->data;
    (void)loop;
    (void)revents;
    cli_client_fail(c, "%s", c->deadline_msg ? c->deadline_msg : "timed out");
}

cli_client_t *cli_client_new(const char *prog, const cli_client_opts_t *o, const char *peer)
{
    cli_secret_t secret;
    if (cli_secret_load(prog, o->secret_file, &secret)) return NULL;
    cli_client_t *c = calloc(1, sizeof *c);
    if (!c || !(c->peer = strdup(peer)) || !(c->eps = split_eps(peer, &c->neps)) ||
        !(c->ep_failed = calloc(c->neps, 1))) {
        cli_err(prog, "out of memory");
        goto bad;
    }
    c->prog = prog;
    c->status = -1;
    c->verbose = o->verbose;
    c->no_secret = secret.data == NULL;
    c->loop = ev_default_loop(0);
    if (!c->loop) {
        cli_err(prog, "cannot initialise the event loop");
        goto bad;
    }
    /* a peer closing on us must be an error return, not a signal */
    signal(SIGPIPE, SIG_IGN);
    c->t0 = ev_time();
    double ct = o->connect_timeout > 0 ? o->connect_timeout : DEFAULT_CONNECT_TIMEOUT;
    aemp_node_config_t cfg = {
        .bind = o->bind ? o->bind : "127.0.0.1:0",
        .connect_timeout = ct,
        .log = log_cb,
        .log_ud = c,
        .on_link = link_cb,
        .link_ud = c,
    };
    if (secret.data) {
        cfg.secret = secret.data;
        cfg.secret_len = secret.len;
    } else {
        /* no secret: the node would pick random bytes; say so now */
        if (c->verbose) cli_logf(prog, "no secret file: using a random secret");
    }
    int err = 0;
    c->node = aemp_node_new(c->loop, &cfg, &err);
    cli_secret_free(&secret);
    if (!c->node) {
        cli_err(prog, "cannot create the node: %s",
                c->start_error ? c->start_error : aemp_strerror(err));
        goto bad;
    }
    int rc = aemp_node_start(c->node);
    if (rc) {
        cli_err(prog, "cannot start the node: %s",
                c->start_error ? c->start_error : aemp_strerror(rc));
        goto bad;
    }
    c->started = 1;
    if (c->verbose > 1) cli_logf(prog, "client node %s", aemp_node_noderef(c->node));
    ev_timer_init(&c->connect_w, connect_timeout_cb, ct + 1.0, 0.0);
    c->connect_w.data = c;
    ev_timer_start(c->loop, &c->connect_w);
    ev_init(&c->deadline_w, deadline_cb);
    c->deadline_w.data = c;
    ev_init(&c->drain_w, drain_cb);
    c->drain_w.data = c;
    return c;
bad:
    cli_secret_free(&secret);
    if (c) {
        aemp_node_destroy(c->node);
        free(c->start_error);
        free(c->ep_failed);
        free(c->peer);
        free_eps(c->eps);
        free(c);
    }
    return NULL;
}

aemp_node_t *cli_client_node(cli_client_t *c) { return c->node; }
const char *cli_client_peer(const cli_client_t *c) { return c->peer; }
double cli_client_elapsed(const cli_client_t *c) { return ev_time() - c->t0; }
int cli_client_was_up(const cli_client_t *c) { return c->was_up; }

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
    ev_timer_stop(c->loop, &c->deadline_w);
    ev_timer_set(&c->deadline_w, seconds, 0.0);
    ev_timer_start(c->loop, &c->deadline_w);
}

int cli_client_run(cli_client_t *c)
{
    /* a failure may already have been reported from inside a call (a
     * refused connect can fail at once); ev_break before ev_run would be
     * forgotten, hence the explicit check */
    while (c->status < 0) ev_run(c->loop, EVRUN_ONCE);
    int status = c->status;
    ev_timer_stop(c->loop, &c->connect_w);
    ev_timer_stop(c->loop, &c->deadline_w);
    ev_timer_stop(c->loop, &c->drain_w);
    aemp_node_destroy(c->node);
    free(c->peer);
    free_eps(c->eps);
    free(c->deadline_msg);
    free(c->start_error);
    free(c->ep_failed);
    free(c);
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
