/*
 * cmd_flood.c - `aemp flood PORT N [ARG...]`: sends the N messages
 * [ARG..., 0] .. [ARG..., N-1] to PORT as fast as the link takes them and
 * exits 0 once every one has been handed to the kernel. With the `count`
 * service of `aemp run` at the other end this is the throughput benchmark
 * from the shell:
 *
 *   aemp run --bind 127.0.0.1:4040 --service count &
 *   aemp flood 127.0.0.1:4040#<count port> 1000000 tick
 *   aemp cal 127.0.0.1:4040#<count port> report     -> [COUNT, SECONDS]
 *
 * Nothing is ever dropped: the sender makes messages only while the
 * node's queue for the peer (aemp_node_queued) is below a high mark and
 * resumes below a low mark, so it never comes near the node's send queue
 * limit (which would fail the link).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"

#define PROG "aemp flood"

/* Encoded bytes the node may hold for the peer before we wait; far below
 * the node's own limit (AEMP_DEFAULT_MAX_OUTQ), large enough that the
 * kernel always has something to take. */
#define HIGH_WATER (1u << 20)
#define LOW_WATER (256u << 10)
/* Messages made per loop iteration; the node writes them with one send()
 * per iteration. */
#define BATCH 1024

typedef struct flood {
    cli_client_t *c;
    aemp_node_t *node;
    struct ev_loop *loop;
    const char *port;
    json_t *base;          /* [ARG...]; each message is a copy plus i */
    unsigned long long n, sent;
    int verbose, failed, done;
    ev_idle gen;
    ev_prepare after;
    ev_timer tick;
} flood_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aemp flood [OPTIONS] PORT N [ARG...]\n\n"
            "Sends the N messages [ARG..., 0] .. [ARG..., N-1] to PORT as fast as the\n"
            "link takes them, in order, holding back whenever the node has more than\n"
            "1 MiB queued for the peer, and exits once all are written to the link.\n"
            "An ARG starting with [, { or \" is JSON, any other ARG a string; a first\n"
            "ARG starting with [ is the whole message, i is appended to it.\n"
            "With -v, prints the sender's rate at the end.\n\n");
    cli_client_options_usage(f);
}

/* Decides once per loop iteration whether to make more messages. It runs
 * at the lowest priority, so after the node has written what it could in
 * this iteration: what it sees queued is what the kernel did not take. */
static void flood_check(flood_t *f)
{
    if (f->done || f->failed) return;
    size_t q = aemp_node_queued(f->node, cli_client_peer(f->c));
    if (f->sent < f->n) {
        if (q < LOW_WATER && !ev_is_active(&f->gen)) ev_idle_start(f->loop, &f->gen);
        return;
    }
    f->done = 1;
    ev_prepare_stop(f->loop, &f->after);
    ev_timer_stop(f->loop, &f->tick);
    /* the client ends the command once the link is up and the queue is
     * empty; a link failure first ends it with the error */
    cli_client_finish_flushed(f->c, 0, 0);
}

static void after_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    flood_check(w->data);
}

/* A safety net: when the node writes everything in the iteration that
 * stopped the generator, no event would wake the loop again. */
static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    flood_check(w->data);
}

static void gen_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    flood_t *f = w->data;
    (void)revents;
    for (int k = 0; k < BATCH && f->sent < f->n; k++) {
        /* a shallow copy: the elements are shared, only i is new */
        json_t *m = json_copy(f->base);
        if (!m || json_array_append_new(m, json_integer((json_int_t)f->sent))) {
            json_decref(m);
            cli_client_fail(f->c, "out of memory");
            f->failed = 1;
            break;
        }
        int rc = aemp_send(f->node, f->port, m);
        if (rc) {
            cli_client_fail(f->c, "cannot send to %s: %s", f->port, aemp_strerror(rc));
            f->failed = 1;
            break;
        }
        f->sent++;
    }
    /* one look at the queue per batch: a batch is far below the marks */
    if (f->failed || f->sent == f->n ||
        aemp_node_queued(f->node, cli_client_peer(f->c)) >= HIGH_WATER)
        ev_idle_stop(loop, w);
}

static int parse_count(const char *s, unsigned long long *out)
{
    char *end;
    if (!*s || *s == '-') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int cmd_flood(int argc, char **argv)
{
    cli_client_opts_t o = {0};
    int rc = cli_client_parse(PROG, argc, argv, &o, 0, usage);
    if (rc >= 0) return rc;
    if (argc - optind < 2) {
        cli_err(PROG, "missing %s (see 'aemp flood --help')", optind >= argc ? "PORT" : "N");
        return 2;
    }
    flood_t f = {0};
    if (parse_count(argv[optind + 1], &f.n)) {
        cli_err(PROG, "N: '%s' is not a count of messages", argv[optind + 1]);
        return 2;
    }
    char err[256];
    f.base = cli_args_to_json(argc - optind - 2, argv + optind + 2, err, sizeof err);
    if (!f.base) {
        cli_err(PROG, "%s", err);
        return 2;
    }
    char *node = NULL, *port = NULL;
    if (cli_resolve_portid(PROG, argv[optind], &node, &port) ||
        !(f.c = cli_client_new(PROG, &o, node))) {
        json_decref(f.base);
        free(node);
        free(port);
        return 1;
    }
    f.node = cli_client_node(f.c);
    f.loop = aemp_node_loop(f.node);
    f.port = port;
    f.verbose = o.verbose;
    ev_idle_init(&f.gen, gen_cb);
    f.gen.data = &f;
    ev_prepare_init(&f.after, after_cb);
    ev_set_priority(&f.after, EV_MINPRI);
    f.after.data = &f;
    ev_timer_init(&f.tick, tick_cb, 0.005, 0.005);
    f.tick.data = &f;
    /* connect now: with N = 0 nothing else would */
    aemp_node_connect(f.node, node);
    ev_idle_start(f.loop, &f.gen);
    ev_prepare_start(f.loop, &f.after);
    ev_timer_start(f.loop, &f.tick);
    double t0 = ev_time();
    rc = cli_client_run(f.c);
    double secs = ev_time() - t0;
    if (!rc && f.verbose)
        cli_logf(PROG, "%llu messages written in %.3f s (%.0f messages/s)", f.sent, secs,
                 secs > 0 ? (double)f.sent / secs : 0.0);
    /* the client's node is gone: our watchers are on its loop */
    ev_idle_stop(f.loop, &f.gen);
    ev_prepare_stop(f.loop, &f.after);
    ev_timer_stop(f.loop, &f.tick);
    json_decref(f.base);
    free(node);
    free(port);
    return rc;
}
