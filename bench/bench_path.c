/*
 * bench_path.c - a small in-process driver for instruction counts (run it
 * under `valgrind --tool=callgrind`): two nodes in one process and one
 * loop, linked over loopback, and N small messages from A to a catch-all
 * port callback on B, sent the way a program writes them:
 *
 *   sendf    aemp_sendf(a, port, "[sI]", "tick", i)
 *   pack     aemp_send(a, port, json_pack("[sI]", "tick", i))
 *   shared   aemp_send with the constant "tick" string shared
 *   hs       N fresh client nodes that each connect to B, authenticate,
 *            get one reply and are destroyed, one after the other
 *
 * The loop runs with EVRUN_NOWAIT between batches of BATCH messages, so
 * the figure per message is the total divided by N (set-up included:
 * compare runs with two values of N to take it out). Wall-clock time is
 * printed for completeness only: on a shared machine it is noise.
 *
 *   bench_path MODE [N]
 */
#include "aemp.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 256

static const char secret[] = "libaemp benchmark secret\n";
static long received, replied;

static void quiet_log(void *ud, int level, const char *msg)
{
    (void)ud;
    (void)level;
    (void)msg;
}

static aemp_node_t *mk_node(struct ev_loop *loop)
{
    aemp_node_config_t c = {0};
    c.bind = "127.0.0.1:0";
    c.secret = secret;
    c.secret_len = sizeof secret - 1;
    c.log = quiet_log;
    int err = 0;
    aemp_node_t *n = aemp_node_new(loop, &c, &err);
    if (!n || aemp_node_start(n)) {
        fprintf(stderr, "bench_path: cannot start a node: %s\n", aemp_strerror(err));
        exit(1);
    }
    return n;
}

static int sink_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    (void)port;
    (void)msg;
    (void)ud;
    received++;
    return AEMP_KEEP;
}

/* [TAG, REPLYPORT] -> REPLYPORT gets ["pong"]. */
static int echo_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    (void)ud;
    const char *to = json_string_value(json_array_get(msg, 1));
    if (to) aemp_sendf(aemp_port_node(port), to, "[s]", "pong");
    return AEMP_KEEP;
}

static int pong_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    (void)port;
    (void)msg;
    (void)ud;
    replied++;
    return AEMP_DONE;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run_handshakes(struct ev_loop *loop, aemp_node_t *b, long n)
{
    char echo[256];
    snprintf(echo, sizeof echo, "%s", aemp_port_id(aemp_port_new(b, echo_cb, NULL)));
    for (long i = 0; i < n; i++) {
        aemp_node_t *c = mk_node(loop);
        aemp_port_t *p = aemp_port_new(c, pong_cb, NULL);
        aemp_sendf(c, echo, "[ss]", "hello", aemp_port_id(p));
        while (replied <= i) ev_run(loop, EVRUN_ONCE);
        aemp_node_destroy(c);
    }
    /* B notices the closed links */
    for (int k = 0; k < 20; k++) ev_run(loop, EVRUN_NOWAIT);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "sendf";
    long n = argc > 2 ? atol(argv[2]) : 100000;
    struct ev_loop *loop = ev_default_loop(0);
    aemp_node_t *b = mk_node(loop);
    double t0 = now();

    if (!strcmp(mode, "hs")) {
        run_handshakes(loop, b, n);
        printf("%s: %ld handshakes in %.3f s\n", mode, n, now() - t0);
        aemp_node_destroy(b);
        ev_loop_destroy(loop);
        return replied == n ? 0 : 1;
    }

    aemp_node_t *a = mk_node(loop);
    char target[256];
    snprintf(target, sizeof target, "%s", aemp_port_id(aemp_port_new(b, sink_cb, NULL)));
    /* the first message brings the link up */
    aemp_sendf(a, target, "[sI]", "tick", (json_int_t)-1);
    while (received < 1) ev_run(loop, EVRUN_ONCE);
    received = 0;

    json_t *tag = json_string("tick");
    int how = !strcmp(mode, "pack") ? 1 : !strcmp(mode, "shared") ? 2 : 0;
    t0 = now();
    for (long i = 0; i < n;) {
        for (int k = 0; k < BATCH && i < n; k++, i++) {
            int rc;
            if (how == 1) {
                rc = aemp_send(a, target, json_pack("[sI]", "tick", (json_int_t)i));
            } else if (how == 2) {
                json_t *m = json_array();
                json_array_append(m, tag);
                json_array_append_new(m, json_integer((json_int_t)i));
                rc = aemp_send(a, target, m);
            } else {
                rc = aemp_sendf(a, target, "[sI]", "tick", (json_int_t)i);
            }
            if (rc) {
                fprintf(stderr, "bench_path: send: %s\n", aemp_strerror(rc));
                return 1;
            }
        }
        ev_run(loop, EVRUN_NOWAIT);
    }
    while (received < n) ev_run(loop, EVRUN_ONCE);
    printf("%s: %ld messages in %.3f s\n", mode, n, now() - t0);
    json_decref(tag);
    aemp_node_destroy(a);
    aemp_node_destroy(b);
    ev_loop_destroy(loop);
    return 0;
}
