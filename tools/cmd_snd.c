/*
 * cmd_snd.c - `aemp snd PORT ARG...`: sends one message and exits 0 only
 * once it has been handed to the kernel on an authenticated link to the
 * port's node. That is all a sender can know: AEMP has no receipts (use
 * `aemp cal` for an answer).
 */
#include <stdlib.h>

#include "cli.h"

#define PROG "aemp snd"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aemp snd [OPTIONS] PORT [ARG...]\n\n"
            "Sends the message [ARG...] to PORT (NODEREF#ID, or a bare NODEREF for\n"
            "the node port) and exits once it is written to an authenticated link.\n"
            "An ARG starting with [, { or \" is JSON, any other ARG a string; a first\n"
            "ARG starting with [ is the whole message.\n\n");
    cli_client_options_usage(f);
}

int cmd_snd(int argc, char **argv)
{
    cli_client_opts_t o = {0};
    int rc = cli_client_parse(PROG, argc, argv, &o, 0, usage);
    if (rc >= 0) return rc;
    json_t *msg;
    cli_client_t *c;
    char *node, *port;
    if ((rc = cli_client_for_port(PROG, argc, argv, &o, &msg, &c, &node, &port))) return rc;
    rc = aemp_send(cli_client_node(c), port, msg);
    if (rc) cli_client_fail(c, "cannot send to %s: %s", port, aemp_strerror(rc));
    else cli_client_finish_flushed(c, 0, 0);
    free(node);
    free(port);
    return cli_client_run(c);
}
