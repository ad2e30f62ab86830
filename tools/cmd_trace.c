/*
 * cmd_trace.c - protocol 1's `aemp trace NODE`: walks the network as
 * 2.02's tool does, asking every node it learns of for the nodes it is
 * connected to with 2.02's eval request
 * ["","eval","AnyEvent::MP::Kernel::up_nodes",REPLY,NODE]; the answer
 * [NODE, ERROR, NODEID...] comes from Perl nodes and C nodes alike (C
 * nodes answer this expression for real, aemp.h). For each node one line:
 *   NODE -> NEIGHBOUR...     its links (this command's own node left out)
 *   NODE (timeout)           no answer within 15 s
 *   NODE (ERROR)             it answered with an error
 * The command ends once every node asked has answered or timed out, exit
 * 0 (1 when it cannot join the network).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PROG "aemp trace"
#define TRACE_TIMEOUT 15.0
#define UP_NODES "AnyEvent::MP::Kernel::up_nodes"

typedef struct trace trace_t;

typedef struct asked {
    struct asked *next;
    trace_t *t;
    char *node;
    ev_timer timeout;
    /* the request goes out from the loop, not from the answer that named
     * the node: a request to another node's node port sent while a
     * peer's message is handled would be refused (aemp.h, "Authority") */
    ev_timer send;
} asked_t;

struct trace {
    cli_client_t *c;
    const char *start;
    aemp_port_t *reply;
    json_t *seen;   /* node id -> true */
    asked_t *asked; /* not answered yet */
};

static void done_with(trace_t *t, asked_t *a)
{
    for (asked_t **pp = &t->asked; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    ev_timer_stop(aemp_node_loop(cli_client_node(t->c)), &a->timeout);
    ev_timer_stop(aemp_node_loop(cli_client_node(t->c)), &a->send);
    free(a->node);
    free(a);
    if (!t->asked) cli_client_finish_flushed(t->c, 0, 1.0);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    asked_t *a = w->data;
    printf("%s (timeout)\n", a->node);
    fflush(stdout);
    done_with(a->t, a);
}

static void send_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    asked_t *a = w->data;
    trace_t *t = a->t;
    aemp_send(cli_client_node(t->c), a->node,
              json_pack("[ssss]", "eval", UP_NODES, aemp_port_id(t->reply), a->node));
}

static void ask(trace_t *t, const char *node)
{
    if (json_object_get(t->seen, node)) return;
    json_object_set_new(t->seen, node, json_true());
    aemp_node_t *n = cli_client_node(t->c);
    asked_t *a = calloc(1, sizeof *a);
    if (!a || !(a->node = strdup(node))) {
        free(a);
        cli_client_fail(t->c, "out of memory");
        return;
    }
    a->t = t;
    a->next = t->asked;
    t->asked = a;
    ev_timer_init(&a->timeout, timeout_cb, TRACE_TIMEOUT, 0);
    a->timeout.data = a;
    ev_timer_start(aemp_node_loop(n), &a->timeout);
    ev_timer_init(&a->send, send_cb, 0.0, 0);
    a->send.data = a;
    ev_timer_start(aemp_node_loop(n), &a->send);
}

/* [NODE, ERROR, NODEID...] */
static int answer_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    trace_t *t = ud;
    const char *node = json_string_value(json_array_get(msg, 0));
    const char *err = json_string_value(json_array_get(msg, 1));
    asked_t *a = t->asked;
    while (a && (!node || strcmp(a->node, node))) a = a->next;
    if (!a) return AEMP_KEEP; /* unasked, or late */
    const char *self = aemp_node_noderef(cli_client_node(t->c));
    if (err && *err) {
        size_t len = strlen(err);
        printf("%s (%.*s)\n", node, (int)(err[len - 1] == '\n' ? len - 1 : len), err);
    } else {
        printf("%s ->", node);
        for (size_t i = 2; i < json_array_size(msg); i++) {
            const char *peer = json_string_value(json_array_get(msg, i));
            if (peer && strcmp(peer, self)) printf(" %s", peer);
        }
        printf("\n");
        for (size_t i = 2; i < json_array_size(msg); i++) {
            const char *peer = json_string_value(json_array_get(msg, i));
            if (peer && strcmp(peer, self)) ask(t, peer);
        }
    }
    fflush(stdout);
    done_with(t, a);
    return AEMP_KEEP;
}

/* A node's link going down is no failure of the walk: its timeout says
 * it, when it has not answered. */
static void down_cb(cli_client_t *c, const char *reason, void *ud) {}

static void up_cb(cli_client_t *c, void *ud)
{
    trace_t *t = ud;
    if (!(t->reply = aemp_port_new(cli_client_node(c), answer_cb, t))) {
        cli_client_fail(c, "out of memory");
        return;
    }
    ask(t, cli_client_peer(c));
}

int cmd_trace_p1(cli_chain_t *s, const char *key)
{
    trace_t t = {.seen = json_object()};
    json_t *extra = NULL;
    int rc = cli_client_for_port_p1(PROG, s, &extra, &t.c, &t.start);
    if (rc) {
        json_decref(t.seen);
        return rc;
    }
    int more = json_array_size(extra) > 0;
    json_decref(extra);
    if (more || !t.seen) {
        cli_client_fail(t.c, more ? "trace takes NODE alone" : "out of memory");
        cli_client_run(t.c);
        json_decref(t.seen);
        return more ? 2 : 1;
    }
    cli_client_on_up(t.c, up_cb, &t);
    cli_client_on_down(t.c, down_cb, &t);
    struct ev_loop *loop = aemp_node_loop(cli_client_node(t.c));
    rc = cli_client_run(t.c);
    while (t.asked) {
        asked_t *a = t.asked;
        t.asked = a->next;
        ev_timer_stop(loop, &a->timeout);
        ev_timer_stop(loop, &a->send);
        free(a->node);
        free(a);
    }
    json_decref(t.seen);
    return rc;
}
