/*
 * cmd_run.c - `aemp run`: a node in the foreground with a few built-in
 * services, until SIGINT or SIGTERM. Its first line on stdout is its
 * noderef (the real port when bound to port 0), so scripts and tests can
 * start it and read where it listens.
 *
 * The services (svc.c) are ports registered under their names: clients
 * find them with the node port's `lookup`.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PROG "aemp run"
#define MAX_MASTERS 16

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aemp run [--bind NODEREF] [--slave NAME --master NODEREF...]\n"
            "                [--secret-file FILE] [--timeout S] [--service NAME]... [-v]\n\n"
            "Runs a node in the foreground until SIGINT or SIGTERM. Its first line\n"
            "on stdout is its noderef; warnings, and with -v link events, go to\n"
            "stderr with timestamps.\n\n"
            "  --bind NODEREF     where to listen (default: this host, port 4040);\n"
            "                     port 0 picks a free port, e.g. 127.0.0.1:0\n"
            "  --slave NAME       run as the slave node slave/NAME (random NAME when\n"
            "                     empty), connected to the first reachable master\n"
            "  --master NODEREF   a master of the slave (repeatable)\n"
            "  --secret-file FILE the shared secret (default $HOME/.aemp-secret)\n"
            "  --timeout S        seconds of silence before a link counts as dead,\n"
            "                     announced to peers (default 30, at least 4)\n"
            "  --service NAME     run this built-in service (repeatable; default all):\n"
            "                       echo   [ELEMENTS..., PORT] -> PORT gets [ELEMENTS...]\n"
            "                       exit   [REASON...] -> the port dies with REASON...\n"
            "                       count  counts messages; [\"report\", PORT] ->\n"
            "                              PORT gets [COUNT, SECONDS_SINCE_FIRST]\n"
            "  -v, --verbose      log link events (twice: the node's debug log too)\n"
            "  --help             this text\n");
}

typedef struct run {
    struct ev_loop *loop;
    aemp_node_t *node;
    int verbose;
    int started;
    char *start_error;     /* the node's last error while starting */
    cli_svc_t svc;
} run_t;

/* ------------------------------------------------------------------ */
/* the node                                                            */

static void log_cb(void *ud, int level, const char *msg)
{
    run_t *r = ud;
    if (!r->started && level <= AEMP_LOG_WARN) {
        /* while starting, the last error becomes the one error line */
        free(r->start_error);
        r->start_error = strdup(msg);
        if (r->verbose) cli_logf(PROG, "%s", msg);
        return;
    }
    if (level <= AEMP_LOG_WARN || (r->verbose > 1 && level <= AEMP_LOG_DEBUG))
        cli_logf(PROG, "%s", msg);
}

static void link_cb(void *ud, aemp_node_t *node, const char *noderef, int up, const char *reason)
{
    run_t *r = ud;
    if (!r->verbose) return;
    if (up) {
        const char *prov = aemp_node_peer_kv(node, noderef, "provider");
        cli_logf(PROG, "link up: %s (%s)", noderef, prov ? prov : "provider unknown");
    } else {
        cli_logf(PROG, "link down: %s: %s", noderef, reason && *reason ? reason : "closed");
    }
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    run_t *r = w->data;
    (void)revents;
    if (r->verbose)
        cli_logf(PROG, "%s: shutting down", w->signum == SIGINT ? "SIGINT" : "SIGTERM");
    ev_break(loop, EVBREAK_ALL);
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"bind", 1, NULL, 'b'},   {"slave", 1, NULL, 's'},       {"master", 1, NULL, 'm'},
        {"secret-file", 1, NULL, 'f'}, {"timeout", 1, NULL, 't'}, {"service", 1, NULL, 'S'},
        {"verbose", 0, NULL, 'v'}, {"help", 0, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const char *bind = NULL, *slave = NULL, *secret_file = NULL;
    const char *masters_in[MAX_MASTERS];
    size_t nmasters = 0;
    unsigned services = 0, timeout = 0;
    int verbose = 0, c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'b': bind = optarg; break;
        case 's': slave = optarg; break;
        case 'f': secret_file = optarg; break;
        case 'v': verbose++; break;
        case 'h': usage(stdout); return 0;
        case 'm':
            if (nmasters == MAX_MASTERS) {
                cli_err(PROG, "at most %d masters", MAX_MASTERS);
                return 2;
            }
            masters_in[nmasters++] = optarg;
            break;
        case 't': {
            double s;
            if (cli_parse_seconds(optarg, &s) || s > 86400) {
                cli_err(PROG, "--timeout: '%s' is not a number of seconds (up to 86400)", optarg);
                return 2;
            }
            timeout = (unsigned)ceil(s);
            break;
        }
        case 'S':
            if (!cli_svc_bit(optarg)) {
                cli_err(PROG, "unknown service '%s' (echo, exit, count)", optarg);
                return 2;
            }
            services |= cli_svc_bit(optarg);
            break;
        default: return cli_bad_option(PROG, argv, c);
        }
    }
    if (optind < argc) {
        cli_err(PROG, "unexpected argument '%s' (see 'aemp run --help')", argv[optind]);
        return 2;
    }
    if (slave && !nmasters) {
        cli_err(PROG, "--slave needs at least one --master");
        return 2;
    }
    if (!slave && nmasters) {
        cli_err(PROG, "--master is only for a slave (--slave NAME)");
        return 2;
    }
    if (slave && bind) {
        cli_err(PROG, "a slave does not listen: --bind and --slave exclude each other");
        return 2;
    }
    if (!services) services = CLI_SVC_ALL;

    cli_secret_t secret;
    if (cli_secret_load(PROG, secret_file, &secret)) return 1;
    if (!secret.data)
        cli_logf(PROG, "no secret file ($HOME/.aemp-secret): using a random secret, "
                       "no other node can connect (see 'aemp gensecret')");

    char *masters[MAX_MASTERS];
    size_t resolved = 0;
    int status = 1;
    run_t r = {.verbose = verbose};
    for (; resolved < nmasters; resolved++)
        if (!(masters[resolved] = cli_resolve_noderef(PROG, masters_in[resolved]))) goto out;

    signal(SIGPIPE, SIG_IGN);
    r.loop = ev_default_loop(0);
    if (!r.loop) {
        cli_err(PROG, "cannot initialise the event loop");
        goto out;
    }
    aemp_node_config_t cfg = {
        .bind = bind,
        .slave_name = slave,
        .masters = (const char *const *)masters,
        .nmasters = nmasters,
        .secret = secret.data,
        .secret_len = secret.len,
        .timeout = timeout,
        .log = log_cb,
        .log_ud = &r,
        .on_link = link_cb,
        .link_ud = &r,
    };
    int err = 0;
    r.node = aemp_node_new(r.loop, &cfg, &err);
    if (!r.node) {
        cli_err(PROG, "cannot create the node: %s",
                r.start_error ? r.start_error : aemp_strerror(err));
        goto out;
    }
    int rc = aemp_node_start(r.node);
    if (rc) {
        if (r.start_error) cli_err(PROG, "%s", r.start_error);
        else cli_err(PROG, "cannot start the node: %s", aemp_strerror(rc));
        goto out;
    }
    r.started = 1;
    r.svc = (cli_svc_t){.node = r.node, .prog = PROG, .verbose = verbose};
    if ((rc = cli_svc_start(&r.svc, services))) {
        cli_err(PROG, "cannot start the services: %s", aemp_strerror(rc));
        goto out;
    }

    ev_signal sigint, sigterm;
    ev_signal_init(&sigint, signal_cb, SIGINT);
    ev_signal_init(&sigterm, signal_cb, SIGTERM);
    sigint.data = sigterm.data = &r;
    ev_signal_start(r.loop, &sigint);
    ev_signal_start(r.loop, &sigterm);

    printf("%s\n", aemp_node_noderef(r.node));
    if (fflush(stdout) != 0) {
        cli_err(PROG, "cannot write to standard output");
        goto out;
    }
    ev_run(r.loop, 0);
    ev_signal_stop(r.loop, &sigint);
    ev_signal_stop(r.loop, &sigterm);
    status = 0;
out:
    /* closes every link: peers see the connection end, not a timeout */
    aemp_node_destroy(r.node);
    for (size_t i = 0; i < resolved; i++) free(masters[i]);
    cli_secret_free(&secret);
    free(r.start_error);
    return status;
}
