/*
 * cmd_snd.c - `aemp snd PORT ARG...`: sends one message.
 *
 * Protocol 0: exits 0 only once the message has been handed to the
 * kernel on an authenticated link to the port's node. That is all a
 * sender can know: AEMP has no receipts (use `aemp cal` for an answer).
 *
 * Protocol 1: as 2.02's tool (transcript 11): [ID, ARG...], then
 * ["","mon1",ID] (not for a node port), then
 * ["","snd",REPLY,"message sent successfully"] to the port's node, which
 * relays the text back once the message is through; printed as 2.02
 * prints it, each element followed by a space. A port that dies first
 * (a missing one: its no_such_port) is printed the same way and is no
 * error, as in 2.02; no confirmation within 5 s is (exit 1).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PROG "aemp snd"
#define SND_TIMEOUT 5.0 /* 2.02's snd gives up after 5 s */
#define SND_TEXT "message sent successfully"

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

/* ------------------------------------------------------------------ */
/* protocol 1                                                          */

typedef struct snd1 {
    cli_client_t *c;
    const char *port;
    json_t *msg;
    json_t *confirmed; /* the confirmation, once it came */
    aemp_mon_t *mon;
} snd1_t;

/* Prints the confirmation as 2.02 prints it: its elements, each followed
 * by a space; then goes once the rest is written. */
static void print_cb(cli_client_t *c, void *ud)
{
    snd1_t *k = ud;
    aemp_mon_cancel(k->mon);
    k->mon = NULL;
    cli_client_monitored(c, 0);
    if (cli_print_words(PROG, k->confirmed)) cli_client_finish(c, 1);
    else cli_client_finish_flushed(c, 0, 1.0);
}

/* The port died first: 2.02 prints the reason as it prints the
 * confirmation, and that is a success too. */
static void mon1_cb(aemp_node_t *node, const char *portid, json_t *reason, void *ud)
{
    snd1_t *k = ud;
    k->mon = NULL;
    cli_client_monitored(k->c, 0);
    /* on the wire its kil0 came before a confirmation of the same read */
    int pending = k->confirmed != NULL;
    json_decref(k->confirmed);
    k->confirmed = json_incref(reason);
    if (!pending) cli_client_then(k->c, print_cb, k);
}

/* The confirmation came back. The monitor may fire on the same read (the
 * port's kil0 comes first): it is heard before the reply is printed. */
static int reply1_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    snd1_t *k = ud;
    if (!k->confirmed) {
        k->confirmed = json_incref(msg);
        cli_client_then(k->c, print_cb, k);
    }
    return AEMP_DONE;
}

/* Joined: 2.02's order. */
static void up1_cb(cli_client_t *c, void *ud)
{
    snd1_t *k = ud;
    aemp_node_t *n = cli_client_node(c);
    const char *node = cli_client_peer(c);
    aemp_port_t *reply = aemp_port_new(n, reply1_cb, k);
    json_t *confirm = reply ? json_pack("[sss]", "snd", aemp_port_id(reply), SND_TEXT) : NULL;
    int rc = aemp_send(n, k->port, k->msg);
    k->msg = NULL;
    if (!rc && strchr(k->port, '#')) {
        if ((k->mon = aemp_mon(n, k->port, mon1_cb, k))) cli_client_monitored(c, 1);
        else rc = AEMP_ENOMEM;
    }
    if (!rc) rc = confirm ? aemp_send(n, node, confirm) : AEMP_ENOMEM;
    else json_decref(confirm);
    if (rc) cli_client_fail(c, "cannot send to %s: %s", k->port, aemp_strerror(rc));
}

int cmd_snd_p1(cli_chain_t *s, const char *key)
{
    snd1_t k = {0};
    int rc = cli_client_for_port_p1(PROG, s, &k.msg, &k.c, &k.port);
    if (rc) return rc;
    char text[1200];
    snprintf(text, sizeof text, "no confirmation from %s within %g s", cli_client_peer(k.c),
             SND_TIMEOUT);
    cli_client_deadline(k.c, SND_TIMEOUT, text);
    cli_client_on_up(k.c, up1_cb, &k);
    rc = cli_client_run(k.c);
    json_decref(k.msg);
    json_decref(k.confirmed);
    return rc;
}
