/*
 * cmd_cal.c - `aemp cal PORT ARG...`: a remote call. A fresh reply port
 * is appended to the message, as the node services and the echo service
 * expect, and the first message that port receives is printed as one
 * line of compact JSON.
 *
 * The target port is monitored while waiting, so a call to a port that
 * does not exist (or dies instead of answering) fails at once with the
 * reason rather than after the timeout. The node port (a bare noderef)
 * cannot be monitored and is not.
 *
 * Protocol 1: as 2.02's tool, ["","mon1",ID] then [ID, ARG..., REPLY]
 * once joined; no timeout of its own (the link's failure ends it); the
 * reply is printed as 2.02 prints it, its elements as JSON separated by
 * commas without the brackets ("a",{"b":1}). When the port dies first
 * (a missing one too), or the link to its node (a node port's too) goes
 * down after it was up, 2.02's cal answers with no elements: an empty
 * line, exit 0 (-v says why on stderr). A node never reached is an
 * error (2.02 would wait for its own connect timeout).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PROG "aemp cal"
#define DEFAULT_TIMEOUT 10.0

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aemp cal [OPTIONS] PORT [ARG...]\n\n"
            "Sends [ARG..., REPLYPORT] to PORT (NODEREF#ID, or a bare NODEREF for the\n"
            "node port), REPLYPORT being a fresh port of this command, and prints the\n"
            "first reply as one line of JSON. ARGs as for 'aemp snd'. To find a\n"
            "registered port: aemp cal NODEREF lookup NAME.\n\n"
            "  --timeout S            wait S seconds for the reply once connected\n"
            "                         (default 10)\n");
    cli_client_options_usage(f);
}

typedef struct cal {
    cli_client_t *c;
    const char *port;
    json_t *msg;           /* protocol 1: sent once joined */
    aemp_mon_t *mon;
    double timeout;
} cal_t;

/* After the reply, losing the link changes nothing: the call succeeded
 * (protocol 0; 2.02's tool fails then). */
static void late_down_cb(cli_client_t *c, const char *reason, void *ud)
{
    (void)reason;
    (void)ud;
    cli_client_finish(c, 0);
}

static int reply_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    cal_t *k = ud;
    /* protocol 1 prints as 2.02's tool: "a",{"b":1} */
    int bad = cli_client_protocol(k->c) ? cli_print_elements(PROG, msg) : cli_print_json(PROG, msg);
    if (bad) {
        cli_client_finish(k->c, 1);
        return AEMP_DONE;
    }
    /* tell the peer we no longer watch its port (mon0), then go */
    aemp_mon_cancel(k->mon);
    k->mon = NULL;
    cli_client_monitored(k->c, 0);
    if (cli_client_protocol(k->c) == 0) cli_client_on_down(k->c, late_down_cb, k);
    cli_client_finish_flushed(k->c, 0, 1.0);
    return AEMP_DONE;
}

/* Protocol 1: 2.02's cal called back with nothing: an empty line. */
static void empty_answer(cal_t *k, const char *why)
{
    if (cli_client_verbose(k->c)) cli_logf(PROG, "no reply: %s", why);
    json_t *none = json_array();
    if (!none || cli_print_elements(PROG, none)) cli_client_finish(k->c, 1);
    else cli_client_finish_flushed(k->c, 0, 1.0);
    json_decref(none);
}

static void mon_cb(aemp_node_t *node, const char *portid, json_t *reason, void *ud)
{
    cal_t *k = ud;
    k->mon = NULL;
    cli_client_monitored(k->c, 0);
    /* a link that never came up is reported by the client as such */
    if (!cli_client_was_up(k->c)) return;
    if (!cli_client_protocol(k->c)) {
        cli_client_port_died(k->c, portid, reason, " before replying");
        return;
    }
    if (cli_client_unreached(k->c, reason)) return;
    char *text = aemp_json_encode(reason, NULL);
    char why[512];
    snprintf(why, sizeof why, "%.200s died: %.280s", portid, text ? text : "?");
    free(text);
    empty_answer(k, why);
}

/* Protocol 1: the node port's node went down after it was up. */
static void down1_cb(cli_client_t *c, const char *reason, void *ud)
{
    char why[512];
    snprintf(why, sizeof why, "link to %.200s lost: %.280s", cli_client_peer(c), reason);
    empty_answer(ud, why);
}

static void up_cb(cli_client_t *c, void *ud)
{
    cal_t *k = ud;
    char msg[256];
    snprintf(msg, sizeof msg, "no reply from %.180s within %g s", k->port, k->timeout);
    cli_client_deadline(c, k->timeout, msg);
}

int cmd_cal(int argc, char **argv)
{
    cli_client_opts_t o = {0};
    int rc = cli_client_parse(PROG, argc, argv, &o, 1, usage);
    if (rc >= 0) return rc;
    cal_t k = {.timeout = o.timeout > 0 ? o.timeout : DEFAULT_TIMEOUT};
    json_t *msg;
    char *node, *port;
    if ((rc = cli_client_for_port(PROG, argc, argv, &o, &msg, &k.c, &node, &port))) return rc;
    k.port = port;
    aemp_node_t *n = cli_client_node(k.c);
    cli_client_on_up(k.c, up_cb, &k);
    aemp_port_t *reply = aemp_port_new(n, reply_cb, &k);
    if (!reply || json_array_append_new(msg, json_string(aemp_port_id(reply)))) {
        json_decref(msg);
        cli_client_fail(k.c, "out of memory");
    } else {
        if (strcmp(k.port, node) != 0) k.mon = aemp_mon(n, k.port, mon_cb, &k);
        rc = aemp_send(n, k.port, msg);
        if (rc) cli_client_fail(k.c, "cannot send to %s: %s", k.port, aemp_strerror(rc));
    }
    free(node);
    rc = cli_client_run(k.c);
    free(port);
    return rc;
}

/* ------------------------------------------------------------------ */
/* protocol 1                                                          */

/* Joined: 2.02's order. */
static void up1_cb(cli_client_t *c, void *ud)
{
    cal_t *k = ud;
    aemp_node_t *n = cli_client_node(c);
    int rc = 0;
    if (strchr(k->port, '#')) {
        if ((k->mon = aemp_mon(n, k->port, mon_cb, k))) cli_client_monitored(c, 1);
        else rc = AEMP_ENOMEM;
    }
    aemp_port_t *reply = rc ? NULL : aemp_port_new(n, reply_cb, k);
    if (!reply || json_array_append_new(k->msg, json_string(aemp_port_id(reply)))) rc = AEMP_ENOMEM;
    if (!rc) rc = aemp_send(n, k->port, k->msg);
    else json_decref(k->msg);
    k->msg = NULL;
    if (rc) cli_client_fail(c, "cannot send to %s: %s", k->port, aemp_strerror(rc));
}

int cmd_cal_p1(cli_chain_t *s, const char *key)
{
    cal_t k = {0};
    int rc = cli_client_for_port_p1(PROG, s, &k.msg, &k.c, &k.port);
    if (rc) return rc;
    cli_client_on_up(k.c, up1_cb, &k);
    cli_client_on_down(k.c, down1_cb, &k);
    rc = cli_client_run(k.c);
    json_decref(k.msg);
    return rc;
}
