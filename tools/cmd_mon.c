/*
 * cmd_mon.c - `aemp mon PORT`: waits until a port dies and prints the
 * reason as one line of JSON ([] for a normal exit). A failing link is a
 * death too, as for any monitor: ["transport_error", NODEREF, MESSAGE].
 * Only a node that cannot be reached at all is an error.
 */
#include <stdlib.h>

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
