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
 * once joined; no timeout of its own (the link's failure ends it).
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
    char *port;
    aemp_mon_t *mon;
    double timeout;
} cal_t;

/* After the reply, losing the link changes nothing: the call succeeded. */
static void late_down_cb(cli_client_t *c, const char *reason, void *ud)
{
    (void)reason;
    (void)ud;
    cli_client_finish(c, 0);
}

static int reply_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    cal_t *k = ud;
    if (cli_print_json(PROG, msg)) {
        cli_client_finish(k->c, 1);
        return AEMP_DONE;
    }
    /* tell the peer we no longer watch its port (mon0), then go */
    aemp_mon_cancel(k->mon);
    k->mon = NULL;
    cli_client_on_down(k->c, late_down_cb, k);
    cli_client_finish_flushed(k->c, 0, 1.0);
    return AEMP_DONE;
}

static void mon_cb(aemp_node_t *node, const char *portid, json_t *reason, void *ud)
{
    cal_t *k = ud;
    k->mon = NULL;
    /* a link that never came up is reported by the client as such */
    if (!cli_client_was_up(k->c)) return;
    char *text = aemp_json_encode(reason, NULL);
    if (json_array_size(reason) == 0)
        cli_client_fail(k->c, "%s exited before replying", portid);
    else
        cli_client_fail(k->c, "%s died before replying: %s", portid, text ? text : "?");
    free(text);
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
    char *node;
    if ((rc = cli_client_for_port(PROG, argc, argv, &o, &msg, &k.c, &node, &k.port))) return rc;
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
    free(k.port);
    return rc;
}

/* ------------------------------------------------------------------ */
/* protocol 1                                                          */

typedef struct cal1 {
    cli_client_t *c;
    const char *port;
    json_t *msg;
    aemp_mon_t *mon;
} cal1_t;

static void mon1_cb(aemp_node_t *node, const char *portid, json_t *reason, void *ud)
{
    cal1_t *k = ud;
    k->mon = NULL;
    cli_client_monitored(k->c, 0);
    cli_client_port_died(k->c, portid, reason, " before replying");
}

static int reply1_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    cal1_t *k = ud;
    if (cli_print_json(PROG, msg)) {
        cli_client_finish(k->c, 1);
        return AEMP_DONE;
    }
    /* tell the node we no longer watch its port (mon0), then go */
    aemp_mon_cancel(k->mon);
    k->mon = NULL;
    cli_client_monitored(k->c, 0);
    cli_client_finish_flushed(k->c, 0, 1.0);
    return AEMP_DONE;
}

/* Joined: 2.02's order. */
static void up1_cb(cli_client_t *c, void *ud)
{
    cal1_t *k = ud;
    aemp_node_t *n = cli_client_node(c);
    int rc = 0;
    if (strchr(k->port, '#')) {
        if ((k->mon = aemp_mon(n, k->port, mon1_cb, k))) cli_client_monitored(c, 1);
        else rc = AEMP_ENOMEM;
    }
    aemp_port_t *reply = rc ? NULL : aemp_port_new(n, reply1_cb, k);
    if (!reply || json_array_append_new(k->msg, json_string(aemp_port_id(reply)))) rc = AEMP_ENOMEM;
    if (!rc) rc = aemp_send(n, k->port, k->msg);
    else json_decref(k->msg);
    k->msg = NULL;
    if (rc) cli_client_fail(c, "cannot send to %s: %s", k->port, aemp_strerror(rc));
}

int cmd_cal_p1(cli_chain_t *s, const char *key)
{
    json_t *const *args;
    int nargs = cli_chain_rest(s, &args);
    if (nargs < 0) return 1;
    cal1_t k = {0};
    int rc = cli_client_for_port_p1(PROG, s->rc, args, nargs, &k.msg, &k.c, &k.port);
    if (rc) return rc;
    cli_client_on_up(k.c, up1_cb, &k);
    rc = cli_client_run(k.c);
    json_decref(k.msg);
    return rc;
}
