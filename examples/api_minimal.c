/*
 * api_minimal.c - the smallest complete libaemp program: a node with a
 * port that answers pings, and a second port that sends one ping and
 * prints the answer.
 *
 *   api_minimal                      pings its own server port
 *   api_minimal PORTID [SECRETFILE]  pings PORTID on another node instead,
 *                                    e.g. the echo service of `aemp run`
 *
 * The ping is ["ping", 1, REPLYPORT]; the server answers ["pong", 1].
 * Build: cc api_minimal.c $(pkg-config --cflags --libs aemp) -lev
 */
#include <aemp.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>

/* The server: ["ping", SEQ, REPLYPORT] -> REPLYPORT gets ["pong", SEQ]. */
static int on_ping(aemp_port_t *port, json_t *msg, void *ud)
{
    json_t *seq = json_array_get(msg, 1);
    const char *reply = json_string_value(json_array_get(msg, 2));
    (void)ud;
    if (!seq || !reply) {
        aemp_port_die(port, "ping needs a sequence number and a reply port");
        return AEMP_KEEP;
    }
    /* "O" increments seq: msg is only borrowed */
    aemp_sendf(aemp_port_node(port), reply, "[sO]", "pong", seq);
    return AEMP_KEEP;
}

/* The client: prints the first answer and stops the loop. */
static int on_answer(aemp_port_t *port, json_t *msg, void *ud)
{
    char *text = aemp_json_encode(msg, NULL);
    printf("answer: %s\n", text ? text : "?");
    free(text);
    *(int *)ud = 0;
    ev_break(aemp_node_loop(aemp_port_node(port)), EVBREAK_ALL);
    return AEMP_DONE; /* a done catch-all callback ends its port */
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    fprintf(stderr, "api_minimal: no answer within 10 s\n");
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    struct ev_loop *loop = ev_default_loop(0);
    aemp_node_config_t cfg = {
        .bind = "127.0.0.1:0",                     /* port 0: any free port */
        .secret_file = argc > 2 ? argv[2] : NULL,  /* NULL: ~/.aemp-secret */
    };
    int err = 0, status = 1;
    aemp_node_t *node = aemp_node_new(loop, &cfg, &err);
    if (!node || (err = aemp_node_start(node)) != 0) {
        fprintf(stderr, "api_minimal: cannot start the node: %s\n", aemp_strerror(err));
        aemp_node_destroy(node);
        return 1;
    }
    printf("node %s\n", aemp_node_noderef(node));

    aemp_port_t *server = aemp_port_new(node, NULL, NULL);
    aemp_port_t *client = aemp_port_new(node, on_answer, &status);
    if (!server || !client || aemp_port_rcv(server, "ping", on_ping, NULL) != 0) {
        fprintf(stderr, "api_minimal: out of memory\n");
        aemp_node_destroy(node);
        return 1;
    }
    const char *target = argc > 1 ? argv[1] : aemp_port_id(server);
    err = aemp_sendf(node, target, "[sis]", "ping", 1, aemp_port_id(client));
    if (err != 0) {
        fprintf(stderr, "api_minimal: cannot send to %s: %s\n", target, aemp_strerror(err));
        aemp_node_destroy(node);
        return 1;
    }

    ev_timer timeout;
    ev_timer_init(&timeout, on_timeout, 10.0, 0.0);
    ev_timer_start(loop, &timeout);
    ev_run(loop, 0); /* the library never runs the loop itself */
    ev_timer_stop(loop, &timeout);
    aemp_node_destroy(node);
    return status;
}
