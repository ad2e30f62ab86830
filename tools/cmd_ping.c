/*
 * cmd_ping.c - `aemp ping NODEREF`: connects and authenticates, then asks
 * the node port for the time (["", "time", REPLYPORT]) and prints who
 * answered (the provider= of its greeting) and how long the round trip
 * took. A successful ping proves the address, the shared secret and the
 * peer's message handling.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PROG "aemp ping"
#define DEFAULT_TIMEOUT 10.0

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aemp ping [OPTIONS] NODEREF\n\n"
            "Connects to NODEREF (e.g. 127.0.0.1:4040 or localhost:4040), sends the\n"
            "node port a time request and prints the peer's provider and the round\n"
            "trip time.\n\n"
            "  --timeout S            wait S seconds for the answer once connected\n"
            "                         (default 10)\n");
    cli_client_options_usage(f);
}

typedef struct ping {
    cli_client_t *c;
    double timeout;
    double t_up, t_sent;
} ping_t;

static int reply_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    ping_t *p = ud;
    double rtt = ev_time() - p->t_sent;
    aemp_node_t *n = cli_client_node(p->c);
    const char *peer = cli_client_peer(p->c);
    const char *prov = aemp_node_peer_kv(n, peer, "provider");
    if (!json_is_number(json_array_get(msg, 0)))
        fprintf(stderr, PROG ": %s: odd answer to the time request\n", peer);
    printf("%s: provider %s, round trip %.3f ms (connect and handshake %.3f ms)\n", peer,
           prov ? prov : "(not announced)", rtt * 1e3, p->t_up * 1e3);
    cli_client_finish(p->c, fflush(stdout) ? 1 : 0);
    return AEMP_DONE;
}

static void up_cb(cli_client_t *c, void *ud)
{
    ping_t *p = ud;
    aemp_node_t *n = cli_client_node(c);
    const char *peer = cli_client_peer(c);
    p->t_up = cli_client_elapsed(c);
    aemp_port_t *reply = aemp_port_new(n, reply_cb, p);
    if (!reply) {
        cli_client_fail(c, "out of memory");
        return;
    }
    p->t_sent = ev_time();
    /* the bare noderef addresses the node port */
    int rc = aemp_sendf(n, peer, "[ss]", "time", aemp_port_id(reply));
    if (rc) {
        cli_client_fail(c, "cannot send to %s: %s", peer, aemp_strerror(rc));
        return;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "%.180s: no answer to the time request within %g s", peer,
             p->timeout);
    cli_client_deadline(c, p->timeout, msg);
}

int cmd_ping(int argc, char **argv)
{
    cli_client_opts_t o = {0};
    int rc = cli_client_parse(PROG, argc, argv, &o, 1, usage);
    if (rc >= 0) return rc;
    if (optind >= argc) {
        cli_err(PROG, "missing NODEREF (see 'aemp ping --help')");
        return 2;
    }
    if (optind + 1 < argc) {
        cli_err(PROG, "unexpected argument '%s' (see 'aemp ping --help')", argv[optind + 1]);
        return 2;
    }
    const char *spec = argv[optind];
    if (strchr(spec, '#')) {
        cli_err(PROG, "'%s' is a port id; ping takes a NODEREF", spec);
        return 2;
    }
    ping_t p = {.timeout = o.timeout > 0 ? o.timeout : DEFAULT_TIMEOUT};
    char *node = cli_resolve_noderef(PROG, spec);
    if (!node) return 1;
    if (!(p.c = cli_client_new(PROG, &o, node))) {
        free(node);
        return 1;
    }
    cli_client_on_up(p.c, up_cb, &p);
    rc = aemp_node_connect(cli_client_node(p.c), node);
    if (rc) cli_client_fail(p.c, "cannot connect to %s: %s", node, aemp_strerror(rc));
    free(node);
    return cli_client_run(p.c);
}
