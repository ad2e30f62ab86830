/*
 * chat_server.c - a chat server on libaemp's public API.
 *
 * It registers a port under the name "chatter". Clients look that name up
 * through the node port's `lookup` service, send ["join", CLIENTPORT,
 * NAME], then ["message", NAME, TEXT]; every message goes out to every
 * joined client as ["message", NAME, TEXT]. A client whose port dies (or
 * whose node goes away) is dropped: the server monitors each one.
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

static void drop_client(size_t i)
{
    free(clients[i].port);
    clients[i].port = NULL;
    clients[i].mon = NULL;
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
            drop_client(i);
        }
}

static int on_join(aemp_port_t *port, json_t *msg, void *ud)
{
    aemp_node_t *node = aemp_port_node(port);
    const char *tag, *who = NULL, *name = NULL;
    (void)ud;
    if (json_unpack(msg, "[sss]", &tag, &who, &name) != 0) {
        aemp_port_die(port, "join needs a port and a name");
        return AEMP_KEEP;
    }
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        if (!clients[i].port) {
            clients[i].port = strdup(who);
            clients[i].mon = aemp_mon(node, who, on_client_gone, NULL);
            printf("joined: %s as %s\n", who, name);
            fflush(stdout);
            aemp_sendf(node, who, "[sss]", "message", "server", "welcome");
            return AEMP_KEEP;
        }
    aemp_sendf(node, who, "[sss]", "message", "server", "chat is full");
    return AEMP_KEEP;
}

static int on_message(aemp_port_t *port, json_t *msg, void *ud)
{
    aemp_node_t *node = aemp_port_node(port);
    const char *tag, *name, *text;
    (void)ud;
    if (json_unpack(msg, "[sss]", &tag, &name, &text) != 0) return AEMP_KEEP;
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].port) aemp_sendf(node, clients[i].port, "[sss]", "message", name, text);
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
