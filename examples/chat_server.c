/*
 * chat_server.c - a chat server on libaemp's public API that speaks the
 * chat of the AnyEvent::MP 0.4 distribution (its eg/chat_server and
 * eg/chat_client), so Perl chat clients and ours can share it.
 *
 * It registers a port under the name "chatter". A client looks that name
 * up through the server node's `lookup` service
 * (["", "lookup", "chatter", CLIENTPORT, TAG] answers [TAG, CHATTERPORT]),
 * then sends ["join", CLIENTPORT] and ["message", TEXT]; every message goes
 * out to every joined client as ["message", TEXT]. Elements after these
 * are ignored, as the Perl server ignores them. On joining, a client gets
 * ["message", "server: welcome"]. A client whose port dies (or whose node
 * goes away) is dropped: the server monitors each one.
 *
 * Many clients depend on the one "chatter" port, so a message of the
 * wrong shape is logged on stderr and dropped: it never kills the port.
 *
 * usage: chat_server [BIND] [SECRETFILE]   (prints its noderef first)
 */
#include <aemp.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLIENTS 64

static struct client {
    char *port;
    aemp_mon_t *mon;
} clients[MAX_CLIENTS];

/* Logs a message that does not have the shape its tag needs. */
static void warn_malformed(json_t *msg, const char *why)
{
    char *text = aemp_json_encode(msg, NULL);
    fprintf(stderr, "chat_server: dropped %s: %s\n", text ? text : "a message", why);
    free(text);
}

/* A client's port died: forget it (the monitor is gone once it fired). */
static void on_client_gone(aemp_node_t *node, const char *portid, json_t *reason, void *ud)
{
    (void)node;
    (void)reason;
    (void)ud;
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].port && !strcmp(clients[i].port, portid)) {
            printf("left: %s\n", portid);
            fflush(stdout);
            free(clients[i].port);
            clients[i].port = NULL;
            clients[i].mon = NULL;
        }
}

/* ["join", CLIENTPORT] */
static int on_join(aemp_port_t *port, json_t *msg, void *ud)
{
    aemp_node_t *node = aemp_port_node(port);
    const char *who = json_string_value(json_array_get(msg, 1));
    (void)ud;
    /* a port id is NODEREF#LOCALID; the bare noderef is a node port */
    if (!who || !strchr(who, '#') || who[0] == '#') {
        warn_malformed(msg, "join needs a client port id");
        return AEMP_KEEP;
    }
    size_t free_slot = MAX_CLIENTS;
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        if (clients[i].port && !strcmp(clients[i].port, who)) return AEMP_KEEP; /* joined */
        if (!clients[i].port && free_slot == MAX_CLIENTS) free_slot = i;
    }
    if (free_slot == MAX_CLIENTS) {
        aemp_sendf(node, who, "[ss]", "message", "server: chat is full");
        return AEMP_KEEP;
    }
    aemp_mon_t *mon = aemp_mon(node, who, on_client_gone, NULL);
    if (!mon) {
        warn_malformed(msg, "cannot monitor that port");
        return AEMP_KEEP;
    }
    clients[free_slot].port = strdup(who);
    clients[free_slot].mon = mon;
    printf("joined: %s\n", who);
    fflush(stdout);
    aemp_sendf(node, who, "[ss]", "message", "server: welcome");
    return AEMP_KEEP;
}

/* ["message", TEXT] */
static int on_message(aemp_port_t *port, json_t *msg, void *ud)
{
    aemp_node_t *node = aemp_port_node(port);
    const char *text = json_string_value(json_array_get(msg, 1));
    (void)ud;
    if (!text) {
        warn_malformed(msg, "message needs a text");
        return AEMP_KEEP;
    }
    printf("message: %s\n", text);
    fflush(stdout);
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].port) aemp_sendf(node, clients[i].port, "[ss]", "message", text);
    return AEMP_KEEP;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    struct ev_loop *loop = EV_DEFAULT;
    aemp_node_config_t cfg = {0};
    int err;
    cfg.bind = argc > 1 ? argv[1] : "127.0.0.1:0";
    cfg.secret_file = argc > 2 ? argv[2] : NULL;
    aemp_node_t *node = aemp_node_new(loop, &cfg, &err);
    if (!node || aemp_node_start(node) != 0) {
        fprintf(stderr, "chat_server: cannot start: %s\n", aemp_strerror(node ? AEMP_EIO : err));
        return 1;
    }
    aemp_port_t *chatter = aemp_port_new(node, NULL, NULL);
    aemp_port_rcv(chatter, "join", on_join, NULL);
    aemp_port_rcv(chatter, "message", on_message, NULL);
    aemp_reg(node, "chatter", aemp_port_id(chatter));
    printf("%s\n", aemp_node_noderef(node));
    fflush(stdout);

    ev_signal sint, sterm;
    ev_signal_init(&sint, on_signal, SIGINT);
    ev_signal_init(&sterm, on_signal, SIGTERM);
    ev_signal_start(loop, &sint);
    ev_signal_start(loop, &sterm);
    ev_run(loop, 0);

    aemp_node_destroy(node);
    for (size_t i = 0; i < MAX_CLIENTS; i++) free(clients[i].port);
    return 0;
}
