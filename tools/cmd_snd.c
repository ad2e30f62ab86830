/*
 * cmd_snd.c - `aemp snd PORT ARG...`: sends one message and exits 0 only
 * once it has been handed to the kernel on an authenticated link to the
 * port's node. That is all a sender can know: AEMP has no receipts (use
 * `aemp cal` for an answer).
 */
#include <getopt.h>
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
    if (optind >= argc) {
        cli_err(PROG, "missing PORT (see 'aemp snd --help')");
        return 2;
    }
    char err[256];
    json_t *msg = cli_args_to_json(argc - optind - 1, argv + optind + 1, err, sizeof err);
    if (!msg) {
        cli_err(PROG, "%s", err);
        return 2;
    }
    char *node = NULL, *port = NULL;
    cli_client_t *c = NULL;
    if (cli_resolve_portid(PROG, argv[optind], &node, &port) ||
        !(c = cli_client_new(PROG, &o, node))) {
        json_decref(msg);
        free(node);
        free(port);
        return 1;
    }
    rc = aemp_send(cli_client_node(c), port, msg);
    if (rc) cli_client_fail(c, "cannot send to %s: %s", port, aemp_strerror(rc));
    else cli_client_finish_flushed(c, 0, 0);
    free(node);
    free(port);
    return cli_client_run(c);
}
