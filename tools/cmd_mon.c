/*
 * cmd_mon.c - `aemp mon PORT`: waits until a port dies and prints the
 * reason as one line of JSON ([] for a normal exit). A failing link is a
 * death too, as for any monitor: ["transport_error", NODEREF, MESSAGE].
 * Only a node that cannot be reached at all is an error.
 *
 * Protocol 1: ["","mon1",ID] once joined, as 2.02's tool, and the
 * reason printed as 2.02 prints it: its elements joined with spaces, each
 * followed by one ("no_such_port cannot monitor nonexistent port N#P "),
 * a transport error too ("transport_error NODEID MESSAGE "); always exit
 * 0. A bare node id is the node port, which is not monitored (2.02 sends
 * nothing for it either): the link to its node is watched, and its end
 * printed so.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PROG "aemp mon"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aemp mon [OPTIONS] PORT\n\n"
            "Monitors PORT (NODEREF#ID) and, when it dies or the link to its node\n"
            "fails, prints the reason as one line of JSON and exits 0.\n\n");
    cli_client_options_usage(f);
}

typedef struct mon {
    cli_client_t *c;
    const char *port;
} mon_t;

static void mon_cb(aemp_node_t *node, const char *portid, json_t *reason, void *ud)
{
    mon_t *m = ud;
    /* a link that never came up is reported by the client as such */
    if (!cli_client_was_up(m->c)) return;
    cli_client_finish(m->c, cli_print_json(PROG, reason) ? 1 : 0);
}

/* The monitor fires for a failed link; this only guards against a
 * monitor that would not. */
static void down_cb(cli_client_t *c, const char *reason, void *ud)
{
    (void)ud;
    cli_client_deadline(c, 5.0, "link lost, but the monitor did not fire");
}

int cmd_mon(int argc, char **argv)
{
    cli_client_opts_t o = {0};
    int rc = cli_client_parse(PROG, argc, argv, &o, 0, usage);
    if (rc >= 0) return rc;
    char *node, *port;
    mon_t m = {0};
    if ((rc = cli_client_for_port(PROG, argc, argv, &o, NULL, &m.c, &node, &port))) return rc;
    m.port = port;
    cli_client_on_down(m.c, down_cb, &m);
    if (!aemp_mon(cli_client_node(m.c), port, mon_cb, &m))
        cli_client_fail(m.c, "cannot monitor %s", port);
    rc = cli_client_run(m.c);
    free(node);
    free(port);
    return rc;
}

/* ------------------------------------------------------------------ */
/* protocol 1                                                          */

static void mon1_cb(aemp_node_t *node, const char *portid, json_t *reason, void *ud)
{
    cli_client_t *c = ud;
    cli_client_monitored(c, 0);
    /* as 2.02's tool: the reason's words, a transport error too */
    cli_client_finish(c, cli_print_words(PROG, reason) ? 1 : 0);
}

/* The node port's node went down after it was up. */
static void down1_cb(cli_client_t *c, const char *reason, void *ud)
{
    json_t *r = json_pack("[sss]", "transport_error", cli_client_peer(c), reason);
    cli_client_finish(c, r && !cli_print_words(PROG, r) ? 0 : 1);
    json_decref(r);
}

static void up1_cb(cli_client_t *c, void *ud)
{
    const char *port = ud;
    aemp_node_t *n = cli_client_node(c);
    int rc = 0;
    if (strchr(port, '#')) {
        if (aemp_mon(n, port, mon1_cb, c)) cli_client_monitored(c, 1);
        else rc = AEMP_ENOMEM;
    } else if (!aemp_node_is_up(n, cli_client_peer(c))) {
        /* a node port has no monitor: watch the link; [""] makes one */
        rc = aemp_send(n, cli_client_peer(c), json_array());
    } else {
        cli_client_target_up(c);
    }
    if (rc) cli_client_fail(c, "cannot send to %s: %s", port, aemp_strerror(rc));
}

int cmd_mon_p1(cli_chain_t *s, const char *key)
{
    cli_client_t *c;
    const char *port;
    int rc = cli_client_for_port_p1(PROG, s, NULL, &c, &port);
    if (rc) return rc;
    cli_client_on_up(c, up1_cb, (void *)port);
    cli_client_on_down(c, down1_cb, NULL);
    return cli_client_run(c);
}
