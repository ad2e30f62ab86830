/*
 * cmd_run.c - `aemp run`: a node in the foreground with a few built-in
 * services, until SIGINT or SIGTERM. Its first line on stdout is its
 * noderef (the real port when bound to port 0), so scripts and tests can
 * start it and read where it listens.
 *
 * The services (svc.c) are ports registered under their names: in
 * protocol 0 clients find them with the node port's `lookup`, in
 * protocol 1 in the global database.
 *
 * Protocol 1 (`aemp --protocol 1 run [-v] [KEY VALUE]...`): the node is
 * configured as 2.02's `configure` does it, from the rc file and the KEY
 * VALUE arguments; its second line on stdout lists its listeners.
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
    cli_node_t b;
    int log_level;         /* the node's log lines up to this level are shown */
    int links_up;          /* -v: "link up" lines with the peer's provider */
    cli_svc_t svc;
} run_t;

/* ------------------------------------------------------------------ */
/* the node, in both dialects                                          */

static void log_cb(void *ud, int level, const char *msg)
{
    run_t *r = ud;
    /* while starting, the last error becomes the one error line */
    if (cli_node_starting(&r->b, level, msg)) return;
    if (level <= AEMP_LOG_WARN || level <= r->log_level) cli_logf(r->b.prog, "%s", msg);
}

static void link_cb(void *ud, aemp_node_t *node, const char *name, int up, const char *reason)
{
    run_t *r = ud;
    if (!r->b.verbose) return;
    if (!up) {
        cli_logf(r->b.prog, "link down: %s: %s", name, reason && *reason ? reason : "closed");
    } else if (r->links_up) {
        const char *prov = aemp_node_peer_kv(node, name, "provider");
        char ft[64];
        cli_logf(r->b.prog, "link up: %s (%s, %s)", name, prov ? prov : "provider unknown",
                 cli_framing_text(node, name, ft, sizeof ft));
    }
}

/* Starts the node of cfg and the services of mask, prints what
 * `print_listeners` says (line 1: the noderef; in protocol 1 line 2: the
 * listeners, space-separated) and runs until a signal. Returns the exit
 * status. */
static int run_node(run_t *r, aemp_node_config_t *cfg, unsigned mask, int global,
                    int print_listeners)
{
    cfg->log = log_cb;
    cfg->log_ud = r;
    /* the levels log_cb shows: a quiet node (a seed) formats no others */
    cfg->log_levels = (2u << (r->log_level > AEMP_LOG_WARN ? r->log_level : AEMP_LOG_WARN)) - 1;
    cfg->on_link = link_cb;
    cfg->link_ud = r;
    if (cli_node_start(&r->b, cfg)) return 1;
    r->svc = (cli_svc_t){.node = r->b.node, .prog = r->b.prog, .verbose = r->b.verbose,
                         .global = global};
    int rc = cli_svc_start(&r->svc, mask);
    if (rc) {
        cli_err(r->b.prog, "cannot start the services: %s", aemp_strerror(rc));
        return 1;
    }
    /* before the first line: whoever reads it may signal at once */
    cli_node_signals(&r->b);
    printf("%s\n", aemp_node_noderef(r->b.node));
    if (print_listeners) {
        size_t nl = 0;
        const char *const *ls = aemp_node_listeners(r->b.node, &nl);
        for (size_t i = 0; i < nl; i++) printf("%s%s", i ? " " : "", ls[i]);
        printf("\n");
    }
    if (fflush(stdout) != 0) {
        cli_err(r->b.prog, "cannot write to standard output");
        return 1;
    }
    ev_run(r->b.loop, 0);
    return 0;
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
    run_t r = {.b = {.prog = PROG, .verbose = verbose, .start_error_alone = 1},
               .log_level = verbose > 1 ? AEMP_LOG_DEBUG : AEMP_LOG_WARN,
               .links_up = 1};
    for (; resolved < nmasters; resolved++)
        if (!(masters[resolved] = cli_resolve_noderef(PROG, masters_in[resolved]))) goto out;
    aemp_node_config_t cfg = {
        .bind = bind,
        .slave_name = slave,
        .masters = (const char *const *)masters,
        .nmasters = nmasters,
        .secret = secret.data,
        .secret_len = secret.len,
        .timeout = timeout,
    };
    status = run_node(&r, &cfg, services, 0, 0);
out:
    cli_node_end(&r.b);
    for (size_t i = 0; i < resolved; i++) free(masters[i]);
    cli_secret_free(&secret);
    return status;
}

/* ------------------------------------------------------------------ */
/* protocol 1                                                          */

/* The services of the configuration: each a built-in name, or an array
 * holding one. Returns the mask, or -1 after printing why. */
static long services_mask(const char *prog, const json_t *services)
{
    unsigned mask = 0;
    size_t i;
    json_t *s;
    json_array_foreach(services, i, s) {
        const json_t *name = json_is_array(s) && json_array_size(s) == 1 ? json_array_get(s, 0) : s;
        unsigned bit = cli_svc_bit(json_string_value(name));
        if (!bit) {
            char *text = aemp_json_encode(s, NULL);
            cli_err(prog, "services: %s is not a service of this node (echo, exit, count)",
                    text ? text : "?");
            free(text);
            return -1;
        }
        mask |= bit;
    }
    return mask;
}

/* Perl's truth of a JSON value. */
static int perl_true(const json_t *v)
{
    const char *s = json_string_value(v);
    if (s) return *s && strcmp(s, "0");
    if (json_is_number(v)) return json_number_value(v) != 0;
    return json_is_true(v) || json_is_array(v) || json_is_object(v);
}

/* `run [-v]... [KEY VALUE]...`: KEY VALUE as the arguments of 2.02's
 * configure: profile NAME, force, norc, every other key a setting. The
 * node logs a link coming up (with the peer's id) at level info; with -v
 * a link going down is said here by the node id too. */
int cmd_run_p1(cli_chain_t *s, const char *key)
{
    json_t *const *args;
    int nargs = cli_chain_rest(s, &args);
    if (nargs < 0) return 1;
    run_t r = {.b = {.prog = PROG}};
    const char *profile = NULL;
    unsigned flags = 0;
    json_t *kv = json_object();
    cli_p1cfg_t p = {0};
    int status = 1;
    if (!kv) {
        cli_err(PROG, "out of memory");
        return 1;
    }
    for (int i = 0; i < nargs; i++) {
        const char *k = json_string_value(args[i]);
        if (k && (!strcmp(k, "-v") || !strcmp(k, "--verbose"))) {
            r.b.verbose++;
            continue;
        }
        if (!k || i + 1 == nargs) {
            cli_err(PROG, k ? "%s: a KEY without a VALUE" : "a KEY must be a string%s",
                    k ? k : "");
            status = 2;
            goto out;
        }
        const json_t *v = args[++i];
        if (!strcmp(k, "profile")) {
            if (!(profile = json_string_value(v))) {
                cli_err(PROG, "profile: the profile name must be a string");
                status = 2;
                goto out;
            }
        } else if (!strcmp(k, "force") || !strcmp(k, "norc")) {
            unsigned f = !strcmp(k, "force") ? AEMP_RC_FORCE : AEMP_RC_NORC;
            flags = perl_true(v) ? flags | f : flags & ~f;
        } else if (json_object_set(kv, k, (json_t *)v)) {
            cli_err(PROG, "out of memory");
            goto out;
        }
    }
    r.log_level = AEMP_LOG_WARN + (r.b.verbose > 0) + (r.b.verbose > 1);
    if (cli_p1cfg_load(PROG, (flags & AEMP_RC_NORC) ? NULL : s->rc, profile, kv,
                       flags & AEMP_RC_FORCE, &p))
        goto out;
    long mask = services_mask(PROG, p.c.services);
    if (mask < 0) goto out;
    if (!p.c.secret && !p.c.cert)
        cli_logf(PROG, "no secret and no cert configured: no other node can authenticate this one "
                       "(see 'aemp --protocol 1 gensecret')");
    aemp_node_config_t cfg = {0};
    cli_p1cfg_apply(&cfg, &p);
    status = run_node(&r, &cfg, (unsigned)mask, 1, 1);
out:
    cli_node_end(&r.b);
    cli_p1cfg_free(&p);
    json_decref(kv);
    return status;
}
