/*
 * bench_node.c - end-to-end figures of two nodes in two processes on
 * loopback, each printed next to a baseline measured in the same run:
 *
 *   one-way     node A floods a counting port on node B with
 *               ["<port>","tick",i] (about 31 bytes on the wire): built
 *               from shared constant parts and sent with aemp_send, then
 *               as a user writes it, with aemp_sendf(node, port, "[sI]",
 *               "tick", i) and with aemp_send(json_pack(...)) each time;
 *               then with 1 KiB and 64 KiB string payloads; the rate is taken
 *               at B from the first message to the last. Baseline: a raw
 *               TCP pair moving the same encoded bytes in 64 KiB writes,
 *               the receiver splitting texts by bracket depth. For small
 *               messages the CPU time per message of each side is shown
 *               too: on a shared machine the rate also depends on how
 *               much CPU the two processes get, their cost per message
 *               does not.
 *   round trip  sequential request/replies through an echo port on B,
 *               unpinned and with both processes on one CPU. Baseline:
 *               blocking raw TCP ping-pong of the same bytes.
 *   handshakes  fresh client nodes that connect, authenticate with
 *               hmac_md6_64_256, exchange one request/reply and close,
 *               HS_CONC at a time. Baseline: TCP connect, one
 *               request/reply, close, as many at a time.
 *   memory      RSS growth of B per idle authenticated link (1000 links
 *               from 1000 client nodes), and of A per 1M small messages
 *               queued on a link (baseline: their encoded size).
 *
 * Every figure is the median of RUNS runs, shown with min-max. main() is
 * only the coordinator: it forks the measuring processes and talks to
 * them over pipes, so every figure comes from processes that do nothing
 * else. Nodes use the public API only and bind 127.0.0.1:0.
 * BENCH_SCALE=0.1 (for instance) shortens every measurement; BENCH_ONLY
 * takes a comma list of parts (small sendf pack p1sendf kib big rtt rtt1
 * p1rtt1 hs hs1 idle queue). The p1 parts and hs1 run the same
 * measurement between protocol-1 nodes (the server is the client's seed;
 * hs1's client nodes have no listener of their own).
 */
#define BENCH_NAME "bench_node"
#include "aemp.h"
#include "bench_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <math.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS 3
#define SMALL_N 2000000
#define KIB_N 200000
#define BIG_N 3000
#define RTT_N 20000
#define RTT_WARM 2000
#define HS_N 3000
#define HS_CONC 16
#define RAWCONN_N 10000
#define IDLE_LINKS 1000
#define QUEUE_N 1000000

/* The sender keeps at most this much encoded output queued in the node,
 * resuming below the low mark: aemp_node_queued() is the only brake. */
#define HIGH_WATER (1u << 20)
#define LOW_WATER (256u << 10)
/* Messages made per loop iteration: each iteration ends with one send(). */
#define BATCH 1024

static const char bench_secret[] = "libaemp benchmark secret\n";
static double scale = 1.0;

static long scaled(long n)
{
    long v = (long)(n * scale);
    return v < 10 ? 10 : v;
}

/* coordinator <-> measuring processes (bench_util.h has the pipes;
 * OP_QUIT, 0, ends a process) */
enum op {
    OP_HELLO = 1, OP_EXPECT, OP_READY, OP_DONE, OP_RUN, OP_SENT, OP_RSS,
    OP_PREP, OP_GO, OP_UP
};

/* ------------------------------------------------------------------ */
/* nodes                                                               */

/* Links closing at the end of a measurement are expected: the nodes'
 * log is only shown with BENCH_VERBOSE. */
static void quiet_log(void *ud, int level, const char *msg)
{
    (void)ud;
    if (getenv("BENCH_VERBOSE")) fprintf(stderr, "[%d] %d %s\n", (int)getpid(), level, msg);
}

/* A string of `bytes` letters (NULL for 0). */
static json_t *make_payload(long long bytes)
{
    if (bytes <= 0) return NULL;
    char *p = malloc((size_t)bytes + 1);
    if (!p) die("malloc");
    for (long long i = 0; i < bytes; i++) p[i] = (char)('a' + i % 26);
    p[bytes] = 0;
    json_t *v = json_string(p);
    free(p);
    return v;
}

/* Protocol of the nodes made from now on (forked children inherit it),
 * and, in protocol 1, the seed they join through: the server's listener. */
static int proto;
static char p1_seed[200];
/* protocol 1: the framings of the nodes made next (NULL: the default,
 * cbor,json,storable, so two nodes talk CBOR; "json" forces JSON) */
static const char *p1_framings;
/* protocol 1: the nodes made next have no listener (the handshake
 * clients: binding one is not part of a handshake) */
static int p1_nobind;

static aemp_node_t *mk_node(struct ev_loop *loop)
{
    aemp_node_config_t c = {0};
    static const char *binds[] = {"127.0.0.1:0"};
    const char *seeds[] = {p1_seed};
    char id[64];
    c.bind = "127.0.0.1:0";
    if (proto == 1) {
        /* node ids as 2.02 makes them (HOST/PID), one per node of a
         * process; the server is every client's seed */
        static long seq;
        snprintf(id, sizeof id, "bench/%d/%ld", (int)getpid(), ++seq);
        c.protocol = 1;
        c.nodeid = id;
        c.binds = p1_nobind ? NULL : binds;
        c.nbinds = p1_nobind ? 0 : 1;
        c.seeds = *p1_seed ? seeds : NULL;
        c.nseeds = *p1_seed ? 1 : 0;
        c.framings = p1_framings;
    }
    c.secret = bench_secret;
    c.secret_len = sizeof bench_secret - 1;
    c.log = quiet_log;
    c.connect_timeout = 10;
    int err = 0;
    aemp_node_t *n = aemp_node_new(loop, &c, &err);
    if (!n || aemp_node_start(n)) {
        fprintf(stderr, "bench_node: cannot start a node: %s\n", aemp_strerror(err));
        exit(1);
    }
    return n;
}

/* The noderef part of a port id, into buf. */
static void node_of(const char *portid, char *buf, size_t n)
{
    const char *h = strchr(portid, '#');
    snprintf(buf, n, "%.*s", h ? (int)(h - portid) : (int)strlen(portid), portid);
}

/* ---- node B: a counting sink and an echo port ---- */

typedef struct server {
    struct ev_loop *loop;
    aemp_node_t *node;
    int in, out;
    ev_io cmd;
    long long expect, count;
    double t_first, cpu_first;
} server_t;

static int sink_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    server_t *s = ud;
    (void)port;
    (void)msg;
    if (++s->count == 1) {
        s->t_first = now();
        s->cpu_first = cpu_now();
    }
    if (s->count == s->expect) {
        reply(s->out, OP_DONE, s->count, now() - s->t_first, cpu_now() - s->cpu_first);
        s->expect = 0;
    }
    return AEMP_KEEP;
}

/* [TAG, I, REPLYPORT] -> REPLYPORT gets ["pong", I]. */
static int echo_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    const char *to = json_string_value(json_array_get(msg, 2));
    (void)ud;
    if (to) aemp_send(aemp_port_node(port), to, json_pack("[sO]", "pong", json_array_get(msg, 1)));
    return AEMP_KEEP;
}

static void server_cmd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    server_t *s = w->data;
    cmsg_t m;
    (void)revents;
    get_msg(w->fd, &m);
    switch (m.op) {
    case OP_EXPECT:
        s->expect = m.n;
        s->count = 0;
        reply(s->out, OP_READY, 0, 0, 0);
        break;
    case OP_RSS:
        reply(s->out, OP_RSS, rss_kib(), 0, 0);
        break;
    case OP_QUIT:
        ev_break(loop, EVBREAK_ALL);
        break;
    }
}

static void server_main(int in, int out, void *arg)
{
    server_t s = {0};
    (void)arg;
    s.loop = ev_default_loop(0);
    s.node = mk_node(s.loop);
    s.in = in;
    s.out = out;
    aemp_port_t *sink = aemp_port_new(s.node, sink_cb, &s);
    aemp_port_t *echo = aemp_port_new(s.node, echo_cb, &s);
    cmsg_t m = {0};
    m.op = OP_HELLO;
    m.n = rss_kib();
    snprintf(m.s[0], sizeof m.s[0], "%s", aemp_port_id(sink));
    snprintf(m.s[1], sizeof m.s[1], "%s", aemp_port_id(echo));
    size_t nl = 0;
    const char *const *ls = aemp_node_listeners(s.node, &nl);
    snprintf(m.s[2], sizeof m.s[2], "%s", nl ? ls[0] : "");
    put_msg(out, &m);
    ev_io_init(&s.cmd, server_cmd_cb, in, EV_READ);
    s.cmd.data = &s;
    ev_io_start(s.loop, &s.cmd);
    ev_run(s.loop, 0);
    aemp_node_destroy(s.node);
}

/* ---- node A: the flood sender ---- */

/* Payload sizes below 0 select small messages made through the public
 * API each time, as a user writes it. */
#define API_SENDF (-1)
#define API_PACK (-2)

typedef struct flood {
    struct ev_loop *loop;
    aemp_node_t *node;
    int in, out;
    ev_io cmd;
    ev_idle gen;
    ev_prepare after;
    ev_timer tick;
    char target[200], peer[200];
    json_t *payload;     /* NULL: small messages */
    json_t *tick_tag, *data_tag;
    long long mode;      /* < 0: small messages through the API as users write it */
    long long n, sent;
    double t0, cpu0;
} flood_t;

/* Decides, once per loop iteration, whether to make more messages. It
 * runs at the lowest priority, after the node has handed its output to
 * the kernel in its own prepare watcher, so it sees what is really left.
 * Below the low mark the idle watcher makes more; all written ends the
 * run. */
static void flood_check(flood_t *f)
{
    size_t q = aemp_node_queued(f->node, f->peer);
    if (f->sent < f->n) {
        if (q < LOW_WATER && !ev_is_active(&f->gen)) ev_idle_start(f->loop, &f->gen);
    } else if (q == 0 && aemp_node_is_up(f->node, f->peer)) {
        ev_prepare_stop(f->loop, &f->after);
        ev_timer_stop(f->loop, &f->tick);
        reply(f->out, OP_SENT, f->sent, now() - f->t0, cpu_now() - f->cpu0);
    }
}

static void flood_after_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    flood_check(w->data);
}

/* Only a safety net: should the node write everything in the same
 * iteration that stopped the generator, nothing would wake the loop. */
static void flood_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    flood_check(w->data);
}

static void flood_gen_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    flood_t *f = w->data;
    (void)revents;
    /* the queue is looked at every few small messages, at every large
     * one: it must never come near the node's limit */
    int every = f->payload ? 1 : 64;
    for (int k = 0; k < BATCH && f->sent < f->n; k++) {
        if (k % every == 0 && aemp_node_queued(f->node, f->peer) >= HIGH_WATER) {
            ev_idle_stop(loop, w);
            return;
        }
        int rc;
        if (f->mode == API_SENDF) {
            rc = aemp_sendf(f->node, f->target, "[sI]", "tick", (json_int_t)f->sent);
        } else if (f->mode == API_PACK) {
            rc = aemp_send(f->node, f->target, json_pack("[sI]", "tick", (json_int_t)f->sent));
        } else {
            /* built the way a program that cares about speed builds its
             * messages: the constant parts are shared, not packed anew */
            json_t *m = json_array();
            json_array_append(m, f->payload ? f->data_tag : f->tick_tag);
            json_array_append_new(m, json_integer((json_int_t)f->sent));
            if (f->payload) json_array_append(m, f->payload);
            rc = aemp_send(f->node, f->target, m);
        }
        if (rc) {
            fprintf(stderr, "bench_node: send: %s\n", aemp_strerror(rc));
            exit(1);
        }
        f->sent++;
    }
    if (f->sent == f->n) ev_idle_stop(loop, w);
}

static void flood_cmd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    flood_t *f = w->data;
    cmsg_t m;
    (void)revents;
    get_msg(w->fd, &m);
    if (m.op == OP_QUIT) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    expect_op(&m, OP_RUN);
    json_decref(f->payload);
    f->payload = make_payload(m.m);
    f->mode = m.m;
    f->n = m.n;
    f->sent = 0;
    f->t0 = now();
    f->cpu0 = cpu_now();
    ev_idle_start(loop, &f->gen);
    ev_prepare_start(loop, &f->after);
    ev_timer_again(loop, &f->tick);
}

static void flood_main(int in, int out, void *arg)
{
    flood_t f = {0};
    f.loop = ev_default_loop(0);
    f.node = mk_node(f.loop);
    f.in = in;
    f.out = out;
    snprintf(f.target, sizeof f.target, "%s", (const char *)arg);
    f.tick_tag = json_string("tick");
    f.data_tag = json_string("data");
    node_of(f.target, f.peer, sizeof f.peer);
    ev_idle_init(&f.gen, flood_gen_cb);
    f.gen.data = &f;
    ev_prepare_init(&f.after, flood_after_cb);
    ev_set_priority(&f.after, EV_MINPRI);
    f.after.data = &f;
    ev_init(&f.tick, flood_tick_cb);
    f.tick.repeat = 0.005;
    f.tick.data = &f;
    ev_io_init(&f.cmd, flood_cmd_cb, in, EV_READ);
    f.cmd.data = &f;
    ev_io_start(f.loop, &f.cmd);
    ev_run(f.loop, 0);
    json_decref(f.payload);
    json_decref(f.tick_tag);
    json_decref(f.data_tag);
    aemp_node_destroy(f.node);
}

/* ---- node A: round trips ---- */

typedef struct pinger {
    struct ev_loop *loop;
    aemp_node_t *node;
    aemp_port_t *port;
    int in, out;
    ev_io cmd;
    const char *echo;
    long long i, warm, n;
    double t;
    double *samples;
} pinger_t;

static void ping_next(pinger_t *p)
{
    p->t = now();
    aemp_send(p->node, p->echo, json_pack("[sIs]", "ping", (json_int_t)p->i, aemp_port_id(p->port)));
}

static int pong_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    pinger_t *p = ud;
    double t = now();
    (void)port;
    if (json_integer_value(json_array_get(msg, 1)) != p->i) {
        fprintf(stderr, "bench_node: pong out of order\n");
        exit(1);
    }
    if (p->i >= p->warm) p->samples[p->i - p->warm] = (t - p->t) * 1e6;
    if (++p->i < p->warm + p->n) {
        ping_next(p);
        return AEMP_KEEP;
    }
    qsort(p->samples, (size_t)p->n, sizeof *p->samples, cmp_double);
    reply(p->out, OP_DONE, p->n, p->samples[p->n / 2], p->samples[(size_t)(p->n * 0.99)]);
    return AEMP_KEEP;
}

static void pinger_cmd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    pinger_t *p = w->data;
    cmsg_t m;
    (void)revents;
    get_msg(w->fd, &m);
    if (m.op == OP_QUIT) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    expect_op(&m, OP_RUN);
    p->n = m.n;
    p->warm = m.m;
    p->i = 0;
    free(p->samples);
    if (!(p->samples = malloc((size_t)p->n * sizeof *p->samples))) die("malloc");
    ping_next(p);
}

static void pinger_main(int in, int out, void *arg)
{
    pinger_t p = {0};
    p.loop = ev_default_loop(0);
    p.node = mk_node(p.loop);
    p.port = aemp_port_new(p.node, pong_cb, &p);
    p.in = in;
    p.out = out;
    p.echo = arg;
    ev_io_init(&p.cmd, pinger_cmd_cb, in, EV_READ);
    p.cmd.data = &p;
    ev_io_start(p.loop, &p.cmd);
    ev_run(p.loop, 0);
    free(p.samples);
    aemp_node_destroy(p.node);
}

/* ---- node A: many client nodes (handshake rate, idle links) ---- */

typedef struct clients {
    struct ev_loop *loop;
    int in, out;
    ev_io cmd;
    const char *echo;
    long long total, started, completed;
    int keep;            /* idle-link mode: keep every client node */
    aemp_node_t **kept;
    double t0;
} clients_t;

typedef struct client {
    clients_t *cs;
    aemp_node_t *node;
} client_t;

static void client_start(clients_t *cs, client_t *c);

static int client_pong_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    client_t *c = ud;
    clients_t *cs = c->cs;
    (void)port;
    (void)msg;
    cs->completed++;
    if (cs->keep) {
        cs->kept[cs->completed - 1] = c->node;
        free(c);
    } else {
        /* deferred by the node until this callback returns */
        aemp_node_destroy(c->node);
        if (cs->started < cs->total) client_start(cs, c);
        else free(c);
    }
    if (cs->completed == cs->total) reply(cs->out, cs->keep ? OP_UP : OP_DONE, cs->total,
                                          now() - cs->t0, 0);
    return AEMP_DONE;
}

/* A fresh node whose first message makes it connect and authenticate. */
static void client_start(clients_t *cs, client_t *c)
{
    c->node = mk_node(cs->loop);
    aemp_port_t *p = aemp_port_new(c->node, client_pong_cb, c);
    cs->started++;
    aemp_send(c->node, cs->echo, json_pack("[sIs]", "hello", (json_int_t)cs->started, aemp_port_id(p)));
}

static void clients_cmd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    clients_t *cs = w->data;
    cmsg_t m;
    (void)revents;
    get_msg(w->fd, &m);
    if (m.op == OP_QUIT) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (m.op == OP_RSS) {
        reply(cs->out, OP_RSS, rss_kib(), 0, 0);
        return;
    }
    expect_op(&m, OP_RUN);
    cs->total = m.n;
    cs->keep = m.m == 0;
    cs->started = cs->completed = 0;
    if (cs->keep && !(cs->kept = calloc((size_t)cs->total, sizeof *cs->kept))) die("calloc");
    cs->t0 = now();
    long long conc = cs->keep ? cs->total : m.m;
    for (long long i = 0; i < conc && cs->started < cs->total; i++) {
        client_t *c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->cs = cs;
        client_start(cs, c);
    }
}

static void clients_main(int in, int out, void *arg)
{
    clients_t cs = {0};
    cs.loop = ev_default_loop(0);
    cs.in = in;
    cs.out = out;
    cs.echo = arg;
    ev_io_init(&cs.cmd, clients_cmd_cb, in, EV_READ);
    cs.cmd.data = &cs;
    ev_io_start(cs.loop, &cs.cmd);
    ev_run(cs.loop, 0);
    for (long long i = 0; cs.kept && i < cs.total; i++) aemp_node_destroy(cs.kept[i]);
    free(cs.kept);
}

/* ---- node A: memory of queued messages ---- */

typedef struct queuer {
    aemp_node_t *node;
    int out;
    const char *sink;
    long long n;
} queuer_t;

static int queuer_pong_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    queuer_t *q = ud;
    (void)port;
    (void)msg;
    /* the link is up; everything below is queued in this callback, before
     * the node writes any of it */
    long before = rss_kib();
    for (long long i = 0; i < q->n; i++)
        if (aemp_send(q->node, q->sink, json_pack("[sI]", "tick", (json_int_t)i))) {
            fprintf(stderr, "bench_node: queueing failed\n");
            exit(1);
        }
    long after = rss_kib();
    char peer[200];
    node_of(q->sink, peer, sizeof peer);
    reply(q->out, OP_DONE, q->n, (double)(after - before), (double)aemp_node_queued(q->node, peer));
    /* nothing else to learn here; the peer sees the link drop */
    _exit(0);
}

static void queuer_main(int in, int out, void *arg)
{
    cmsg_t m;
    get_msg(in, &m);
    expect_op(&m, OP_RUN);
    queuer_t q = {0};
    struct ev_loop *loop = ev_default_loop(0);
    q.node = mk_node(loop);
    q.out = out;
    q.sink = m.s[0];
    q.n = m.n;
    aemp_port_t *p = aemp_port_new(q.node, queuer_pong_cb, &q);
    aemp_send(q.node, (const char *)arg, json_pack("[sIs]", "hello", (json_int_t)0, aemp_port_id(p)));
    ev_run(loop, 0);
}

/* ------------------------------------------------------------------ */
/* raw TCP baselines                                                   */

/* The simplest correct splitter of a stream of JSON arrays: bracket
 * depth outside strings, one byte at a time. */
typedef struct splitter {
    int depth, in_str, esc;
} splitter_t;

static long split(splitter_t *s, const unsigned char *p, size_t n)
{
    long texts = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = p[i];
        if (s->in_str) {
            if (s->esc) s->esc = 0;
            else if (c == '\\') s->esc = 1;
            else if (c == '"') s->in_str = 0;
        } else if (c == '"') {
            s->in_str = 1;
        } else if (c == '[' || c == '{') {
            s->depth++;
        } else if ((c == ']' || c == '}') && --s->depth == 0) {
            texts++;
        }
    }
    return texts;
}

/* The message i exactly as a node writes it: [LOCALID,"tick",i] or
 * [LOCALID,"data",i,PAYLOAD]. */
static char *encode_msg(const char *local, long long i, const json_t *payload, size_t *len)
{
    json_t *m = payload ? json_pack("[ssIO]", local, "data", (json_int_t)i, payload)
                        : json_pack("[ssI]", local, "tick", (json_int_t)i);
    char *s = aemp_json_encode(m, len);
    json_decref(m);
    if (!s) die("encode");
    return s;
}

/* Bytes on the wire for messages 0..n-1. */
static double wire_bytes(const char *local, long long n, long long payload)
{
    json_t *pl = make_payload(payload);
    size_t base;
    free(encode_msg(local, 0, pl, &base));
    json_decref(pl);
    double total = 0;
    long long lo = 0, width = 1, hi = 10;
    while (lo < n) { /* base counts one digit for i */
        long long top = hi < n ? hi : n;
        total += (double)(top - lo) * (double)(base + width - 1);
        lo = top;
        width++;
        hi *= 10;
    }
    return total;
}

static void raw_recv_main(int in, int out, void *arg)
{
    (void)arg;
    int port, lfd = listen_any(0, 1024, &port);
    reply(out, OP_HELLO, port, 0, 0);
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) die("accept");
    close(lfd);
    splitter_t sp = {0};
    static unsigned char buf[65536];
    cmsg_t m;
    for (;;) {
        get_msg(in, &m);
        if (m.op == OP_QUIT) break;
        expect_op(&m, OP_EXPECT);
        reply(out, OP_READY, 0, 0, 0);
        long long got = 0;
        double t_first = 0, cpu_first = 0;
        while (got < m.n) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) die("raw read");
            if (t_first == 0) {
                t_first = now();
                cpu_first = cpu_now();
            }
            got += split(&sp, buf, (size_t)r);
        }
        reply(out, OP_DONE, got, now() - t_first, cpu_now() - cpu_first);
    }
    close(fd);
}

static void raw_send_main(int in, int out, void *arg)
{
    int fd = connect_to(*(int *)arg);
    cmsg_t m;
    char *stream = NULL;
    size_t len = 0;
    for (;;) {
        get_msg(in, &m);
        if (m.op == OP_QUIT) break;
        if (m.op == OP_PREP) {
            /* the stream is encoded before the clock starts */
            json_t *pl = make_payload(m.m);
            size_t cap = 1 << 20;
            free(stream);
            stream = malloc(cap);
            len = 0;
            for (long long i = 0; i < m.n; i++) {
                size_t l;
                char *s = encode_msg(m.s[0], i, pl, &l);
                while (len + l > cap) {
                    cap *= 2;
                    if (!(stream = realloc(stream, cap))) die("realloc");
                }
                memcpy(stream + len, s, l);
                len += l;
                free(s);
            }
            json_decref(pl);
            reply(out, OP_READY, (long long)len, 0, 0);
            continue;
        }
        expect_op(&m, OP_GO);
        double t0 = now();
        for (size_t off = 0; off < len; off += 65536)
            write_all(fd, stream + off, len - off < 65536 ? len - off : 65536);
        reply(out, OP_SENT, (long long)len, now() - t0, 0);
    }
    free(stream);
    close(fd);
}

/* Ping-pong over blocking sockets: the server answers every complete
 * text with the pong bytes. */
static void raw_pong_main(int in, int out, void *arg)
{
    (void)arg;
    int port, lfd = listen_any(0, 1024, &port);
    reply(out, OP_HELLO, port, 0, 0);
    int fd = accept(lfd, NULL, NULL), one = 1;
    if (fd < 0) die("accept");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    close(lfd);
    size_t plen;
    char *pong = encode_msg("Xl2RbWj8dGu.b", 12345, NULL, &plen);
    splitter_t sp = {0};
    unsigned char buf[4096];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0) break;
        for (long t = split(&sp, buf, (size_t)r); t > 0; t--) write_all(fd, pong, plen);
    }
    free(pong);
    close(fd);
    (void)in;
}

static void raw_ping_main(int in, int out, void *arg)
{
    int fd = connect_to(*(int *)arg);
    cmsg_t m;
    unsigned char buf[4096];
    char ping[256];
    int plen = snprintf(ping, sizeof ping, "[\"Xl2RbWj8dGu.a\",\"ping\",12345,"
                                           "\"127.0.0.1:40000#Xl2RbWj8dGu.a\"]");
    for (;;) {
        get_msg(in, &m);
        if (m.op == OP_QUIT) break;
        expect_op(&m, OP_RUN);
        double *samples = malloc((size_t)m.n * sizeof *samples);
        if (!samples) die("malloc");
        splitter_t sp = {0};
        for (long long i = 0; i < m.n + m.m; i++) {
            double t0 = now();
            write_all(fd, ping, (size_t)plen);
            long got = 0;
            while (!got) {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r <= 0) die("raw ping read");
                got = split(&sp, buf, (size_t)r);
            }
            if (i >= m.m) samples[i - m.m] = (now() - t0) * 1e6;
        }
        qsort(samples, (size_t)m.n, sizeof *samples, cmp_double);
        reply(out, OP_DONE, m.n, samples[m.n / 2], samples[(size_t)(m.n * 0.99)]);
        free(samples);
    }
    close(fd);
}

/* TCP connect, one request/reply, close: the server side, one connection
 * after the other (each costs it an accept, a read, a write, a close). */
static void raw_accept_main(int in, int out, void *arg)
{
    (void)arg;
    (void)in;
    int port, lfd = listen_any(0, 1024, &port);
    reply(out, OP_HELLO, port, 0, 0);
    char buf[512];
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            die("accept");
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        splitter_t sp = {0};
        long got = 0;
        while (!got) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) break;
            got = split(&sp, (unsigned char *)buf, (size_t)r);
        }
        if (got) write_all(fd, "[\"pong\",1]", 10);
        close(fd);
    }
}

/* The client side: CONCURRENCY non-blocking connections at a time. */
typedef struct rawconn {
    ev_io io;
    struct rawconns *rc;
    int phase; /* 0 connecting, 1 waiting for the reply */
} rawconn_t;

typedef struct rawconns {
    struct ev_loop *loop;
    struct sockaddr_in sa;
    long long total, started, completed;
    int out;
    double t0;
} rawconns_t;

static void rawconn_cb(struct ev_loop *loop, ev_io *w, int revents);

static void rawconn_start(rawconns_t *rc, rawconn_t *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0) die("socket");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&rc->sa, sizeof rc->sa) && errno != EINPROGRESS)
        die("connect");
    rc->started++;
    c->phase = 0;
    ev_io_init(&c->io, rawconn_cb, fd, EV_WRITE);
    ev_io_start(rc->loop, &c->io);
}

static void rawconn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    rawconn_t *c = (rawconn_t *)w;
    rawconns_t *rc = c->rc;
    int fd = w->fd;
    (void)revents;
    if (c->phase == 0) {
        check_connected(fd, "raw connect");
        write_all(fd, "[\"hello\",1]", 11);
        ev_io_stop(loop, w);
        ev_io_set(w, fd, EV_READ);
        ev_io_start(loop, w);
        c->phase = 1;
        return;
    }
    char buf[64];
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r <= 0) die("raw connect read");
    ev_io_stop(loop, w);
    close(fd);
    rc->completed++;
    if (rc->started < rc->total) rawconn_start(rc, c);
    if (rc->completed == rc->total) reply(rc->out, OP_DONE, rc->total, now() - rc->t0, 0);
}

static void rawconns_main(int in, int out, void *arg)
{
    rawconns_t rc = {0};
    rawconn_t *conns = NULL;
    rc.loop = ev_default_loop(0);
    rc.out = out;
    rc.sa.sin_family = AF_INET;
    rc.sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc.sa.sin_port = htons((uint16_t)*(int *)arg);
    cmsg_t m;
    for (;;) {
        get_msg(in, &m);
        if (m.op == OP_QUIT) break;
        expect_op(&m, OP_RUN);
        free(conns);
        if (!(conns = calloc((size_t)m.m, sizeof *conns))) die("calloc");
        rc.total = m.n;
        rc.started = rc.completed = 0;
        rc.t0 = now();
        for (long long i = 0; i < m.m && rc.started < rc.total; i++) {
            conns[i].rc = &rc;
            rawconn_start(&rc, &conns[i]);
        }
        /* the loop ends when no connection is left */
        ev_run(rc.loop, 0);
    }
    free(conns);
}

/* ------------------------------------------------------------------ */
/* the coordinator                                                     */

typedef struct series {
    double v[RUNS];
    int n;
} series_t;

static void add(series_t *s, double v)
{
    if (s->n < RUNS) s->v[s->n++] = v;
}

static double med(const series_t *s)
{
    double t[RUNS];
    memcpy(t, s->v, sizeof t);
    qsort(t, (size_t)s->n, sizeof *t, cmp_double);
    return s->n ? t[s->n / 2] : NAN;
}

static double lo(const series_t *s)
{
    double m = INFINITY;
    for (int i = 0; i < s->n; i++) m = s->v[i] < m ? s->v[i] : m;
    return m;
}

static double hi(const series_t *s)
{
    double m = -INFINITY;
    for (int i = 0; i < s->n; i++) m = s->v[i] > m ? s->v[i] : m;
    return m;
}

static void wait_op(child_t *c, int op, cmsg_t *m)
{
    get_msg(c->from, m);
    expect_op(m, op);
}

static void send_op(child_t *c, int op, long long n, long long mm, const char *s0)
{
    cmsg_t m = {0};
    m.op = op;
    m.n = n;
    m.m = mm;
    if (s0) snprintf(m.s[0], sizeof m.s[0], "%s", s0);
    put_msg(c->to, &m);
}

typedef struct ids {
    char sink[200], echo[200], listen[200];
    long rss;
} ids_t;

static child_t start_server(int cpu, ids_t *ids)
{
    child_t b = spawn(server_main, NULL, cpu);
    cmsg_t m;
    wait_op(&b, OP_HELLO, &m);
    memcpy(ids->sink, m.s[0], sizeof ids->sink);
    memcpy(ids->echo, m.s[1], sizeof ids->echo);
    memcpy(ids->listen, m.s[2], sizeof ids->listen);
    /* protocol 1: the children made next join through the server */
    if (proto == 1) snprintf(p1_seed, sizeof p1_seed, "%s", ids->listen);
    ids->rss = (long)m.n;
    return b;
}

/* One-way: n messages per run with a payload of `payload` bytes (0: the
 * small message). Records msgs/s or MB/s (payload > 0). */
static void run_oneway(long long n, long long payload, series_t *aemp, series_t *raw,
                       series_t *cpu_a, series_t *cpu_r, series_t *cpu_s)
{
    phase("one-way", 90);
    ids_t ids;
    cmsg_t m;
    child_t b = start_server(-1, &ids);
    child_t a = spawn(flood_main, ids.sink, -1);
    const char *local = strchr(ids.sink, '#') + 1;
    long long mode = payload;
    if (payload < 0) payload = 0;
    double bytes = wire_bytes(local, n, payload);
    for (int r = -1; r < RUNS; r++) {
        /* run -1 warms up: it also connects and authenticates */
        long long k = r < 0 ? n / 10 : n;
        send_op(&b, OP_EXPECT, k, 0, NULL);
        wait_op(&b, OP_READY, &m);
        send_op(&a, OP_RUN, k, mode, NULL);
        wait_op(&b, OP_DONE, &m);
        double secs = m.d[0], cpu = m.d[1];
        wait_op(&a, OP_SENT, &m);
        if (r >= 0) add(aemp, payload ? bytes / secs / 1e6 : (double)(n - 1) / secs);
        if (r >= 0 && cpu_a) add(cpu_a, cpu / (double)(n - 1) * 1e9);
        if (r >= 0 && cpu_s) add(cpu_s, m.d[1] / (double)n * 1e9);
    }
    finish(&a);
    finish(&b);

    child_t rr = spawn(raw_recv_main, NULL, -1);
    wait_op(&rr, OP_HELLO, &m);
    int port = (int)m.n;
    child_t rs = spawn(raw_send_main, &port, -1);
    for (int r = -1; r < RUNS; r++) {
        long long k = r < 0 ? n / 10 : n;
        send_op(&rs, OP_PREP, k, payload, local);
        wait_op(&rs, OP_READY, &m);
        send_op(&rr, OP_EXPECT, k, 0, NULL);
        wait_op(&rr, OP_READY, &m);
        send_op(&rs, OP_GO, 0, 0, NULL);
        wait_op(&rr, OP_DONE, &m);
        double secs = m.d[0], cpu = m.d[1];
        wait_op(&rs, OP_SENT, &m);
        if (r >= 0) add(raw, payload ? bytes / secs / 1e6 : (double)(n - 1) / secs);
        if (r >= 0 && cpu_r) add(cpu_r, cpu / (double)(n - 1) * 1e9);
    }
    finish(&rs);
    finish(&rr);
}

static void run_rtt(int cpu, series_t *med_a, series_t *p99_a, series_t *med_r, series_t *p99_r)
{
    phase("round trip", 90);
    ids_t ids;
    cmsg_t m;
    long long n = scaled(RTT_N), warm = scaled(RTT_WARM);
    child_t b = start_server(cpu, &ids);
    child_t a = spawn(pinger_main, ids.echo, cpu);
    for (int r = 0; r < RUNS; r++) {
        send_op(&a, OP_RUN, n, warm, NULL);
        wait_op(&a, OP_DONE, &m);
        add(med_a, m.d[0]);
        add(p99_a, m.d[1]);
    }
    finish(&a);
    finish(&b);

    child_t rp = spawn(raw_pong_main, NULL, cpu);
    wait_op(&rp, OP_HELLO, &m);
    int port = (int)m.n;
    child_t ri = spawn(raw_ping_main, &port, cpu);
    for (int r = 0; r < RUNS; r++) {
        send_op(&ri, OP_RUN, n, warm, NULL);
        wait_op(&ri, OP_DONE, &m);
        add(med_r, m.d[0]);
        add(p99_r, m.d[1]);
    }
    finish(&ri);
    /* the pong server ends when the ping side closes */
    close(rp.to);
    close(rp.from);
    waitpid(rp.pid, NULL, 0);
}

static void run_handshakes(series_t *aemp, series_t *raw)
{
    phase("handshakes", 90);
    ids_t ids;
    cmsg_t m;
    long long n = scaled(HS_N);
    child_t b = start_server(-1, &ids);
    p1_nobind = proto == 1;
    child_t c = spawn(clients_main, ids.echo, -1);
    p1_nobind = 0;
    for (int r = -1; r < RUNS; r++) {
        long long k = r < 0 ? n / 10 : n;
        send_op(&c, OP_RUN, k, HS_CONC, NULL);
        wait_op(&c, OP_DONE, &m);
        if (r >= 0) add(aemp, (double)k / m.d[0]);
    }
    finish(&c);
    finish(&b);

    child_t s = spawn(raw_accept_main, NULL, -1);
    wait_op(&s, OP_HELLO, &m);
    int port = (int)m.n;
    child_t rc = spawn(rawconns_main, &port, -1);
    n = scaled(RAWCONN_N);
    for (int r = -1; r < RUNS; r++) {
        long long k = r < 0 ? n / 10 : n;
        send_op(&rc, OP_RUN, k, HS_CONC, NULL);
        wait_op(&rc, OP_DONE, &m);
        if (r >= 0) add(raw, (double)k / m.d[0]);
    }
    finish(&rc);
    kill(s.pid, SIGKILL);
    close(s.to);
    close(s.from);
    waitpid(s.pid, NULL, 0);
}

/* KiB of B's RSS per idle authenticated link; every run uses fresh
 * processes, so no run reuses memory freed by an earlier one. */
static void run_idle(series_t *per_link)
{
    phase("idle links", 90);
    long long n = scaled(IDLE_LINKS);
    for (int r = 0; r < RUNS; r++) {
        ids_t ids;
        cmsg_t m;
        child_t b = start_server(-1, &ids);
        child_t c = spawn(clients_main, ids.echo, -1);
        send_op(&b, OP_RSS, 0, 0, NULL);
        wait_op(&b, OP_RSS, &m);
        long before = (long)m.n;
        send_op(&c, OP_RUN, n, 0, NULL);
        wait_op(&c, OP_UP, &m);
        send_op(&b, OP_RSS, 0, 0, NULL);
        wait_op(&b, OP_RSS, &m);
        add(per_link, (double)((long)m.n - before) / (double)n);
        finish(&c);
        finish(&b);
    }
}

/* MiB of A's RSS per 1M small messages queued on an up link, and their
 * encoded size (what the queue holds at the least). */
static void run_queue(series_t *mib, double *encoded_mib)
{
    phase("queued messages", 90);
    long long n = scaled(QUEUE_N);
    for (int r = 0; r < RUNS; r++) {
        ids_t ids;
        cmsg_t m;
        child_t b = start_server(-1, &ids);
        child_t q = spawn(queuer_main, ids.echo, -1);
        send_op(&q, OP_RUN, n, 0, ids.sink);
        wait_op(&q, OP_DONE, &m);
        add(mib, m.d[0] / 1024.0 * (1e6 / (double)n));
        *encoded_mib = m.d[1] / 1048576.0 * (1e6 / (double)n);
        waitpid(q.pid, NULL, 0);
        close(q.to);
        close(q.from);
        finish(&b);
    }
}

/* The CPU that was idle the most over a short sample (a shared machine
 * may have one core busy). */
static int idlest_cpu(void)
{
    unsigned long long idle0[256] = {0}, idle1[256] = {0};
    int ncpu = 0;
    for (int pass = 0; pass < 2; pass++) {
        FILE *f = fopen("/proc/stat", "r");
        char line[512];
        if (!f) return 0;
        while (fgets(line, sizeof line, f)) {
            int cpu;
            unsigned long long u, ni, sy, id;
            if (sscanf(line, "cpu%d %llu %llu %llu %llu", &cpu, &u, &ni, &sy, &id) == 5 &&
                cpu >= 0 && cpu < 256) {
                (pass ? idle1 : idle0)[cpu] = id;
                if (cpu + 1 > ncpu) ncpu = cpu + 1;
            }
        }
        fclose(f);
        if (!pass) usleep(300000);
    }
    cpu_set_t allowed;
    int best = 0;
    unsigned long long best_idle = 0;
    if (sched_getaffinity(0, sizeof allowed, &allowed)) CPU_ZERO(&allowed);
    for (int c = 0; c < ncpu; c++) {
        if (!CPU_ISSET(c, &allowed)) continue;
        if (idle1[c] - idle0[c] >= best_idle) {
            best_idle = idle1[c] - idle0[c];
            best = c;
        }
    }
    return best;
}

static void loadavg(char *buf, size_t n)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;
    if (!f || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3) a = b = c = NAN;
    if (f) fclose(f);
    snprintf(buf, n, "%.2f %.2f %.2f", a, b, c);
}

/* A figure with its unit scale: "4.62 [4.55-4.71]". */
static void fmt3(char *buf, size_t n, const series_t *s, double div, int prec)
{
    snprintf(buf, n, "%.*f [%.*f-%.*f]", prec, med(s) / div, prec, lo(s) / div, prec,
             hi(s) / div);
}

/* BENCH_ONLY=small,rtt,... runs only those parts (for profiling). */
static int want(const char *part)
{
    const char *only = getenv("BENCH_ONLY");
    if (!only || !*only) return 1;
    size_t l = strlen(part);
    for (const char *p = only; (p = strstr(p, part)) != NULL; p += l)
        if ((p == only || p[-1] == ',') && (p[l] == ',' || !p[l])) return 1;
    return 0;
}

static void row(const char *name, const series_t *a, const series_t *b, double div, int prec,
                const char *target, int ok)
{
    char x[64], y[64] = "-", r[16] = "-";
    if (!a->n) return;
    fmt3(x, sizeof x, a, div, prec);
    if (b) {
        fmt3(y, sizeof y, b, div, prec);
        snprintf(r, sizeof r, "%.2f", med(a) / med(b));
    }
    printf("%-34s %-24s %-24s %6s  %-20s %s\n", name, x, y, r, target,
           ok < 0 ? "" : ok ? "met" : "MISSED");
}

int main(void)
{
    const char *sc = getenv("BENCH_SCALE");
    if (sc && atof(sc) > 0) scale = atof(sc);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    char load0[64], load1[64];
    loadavg(load0, sizeof load0);
    double t0 = now();
    int cpu = idlest_cpu();

    series_t s_a = {0}, s_r = {0}, k_a = {0}, k_r = {0}, b_a = {0}, b_r = {0};
    series_t c_a = {0}, c_r = {0}, c_s = {0};
    series_t f_a = {0}, f_r = {0}, f_s = {0}, p_a = {0}, p_r = {0}, p_s = {0};
    if (want("small")) run_oneway(scaled(SMALL_N), 0, &s_a, &s_r, &c_a, &c_r, &c_s);
    if (want("sendf")) run_oneway(scaled(SMALL_N), API_SENDF, &f_a, &f_r, NULL, NULL, &f_s);
    if (want("pack")) run_oneway(scaled(SMALL_N), API_PACK, &p_a, &p_r, NULL, NULL, &p_s);
    /* the same through protocol 1 (AnyEvent::MP 2.x) nodes */
    series_t f1_a = {0}, f1_r = {0}, f1_s = {0}, pm1 = {0}, pp1 = {0}, pmr1 = {0}, ppr1 = {0};
    series_t j1_a = {0}, j1_r = {0}, j1_s = {0}, j1_c = {0}, f1_c = {0};
    proto = 1;
    /* CBOR (what two protocol-1 nodes choose), then JSON forced */
    if (want("p1sendf")) run_oneway(scaled(SMALL_N), API_SENDF, &f1_a, &f1_r, &f1_c, NULL, &f1_s);
    p1_framings = "json";
    if (want("p1sendf")) run_oneway(scaled(SMALL_N), API_SENDF, &j1_a, &j1_r, &j1_c, NULL, &j1_s);
    p1_framings = NULL;
    proto = 0;
    if (want("kib")) run_oneway(scaled(KIB_N), 1024, &k_a, &k_r, NULL, NULL, NULL);
    if (want("big")) run_oneway(scaled(BIG_N), 65536, &b_a, &b_r, NULL, NULL, NULL);

    series_t um = {0}, up = {0}, umr = {0}, upr = {0};
    series_t pm = {0}, pp = {0}, pmr = {0}, ppr = {0};
    if (want("rtt")) run_rtt(-1, &um, &up, &umr, &upr);
    if (want("rtt1")) run_rtt(cpu, &pm, &pp, &pmr, &ppr);
    proto = 1;
    if (want("p1rtt1")) run_rtt(cpu, &pm1, &pp1, &pmr1, &ppr1);
    proto = 0;
    p1_seed[0] = 0;

    series_t hs = {0}, hsr = {0}, hs1 = {0}, hsr1 = {0};
    if (want("hs")) run_handshakes(&hs, &hsr);
    proto = 1;
    if (want("hs1")) run_handshakes(&hs1, &hsr1);
    proto = 0;
    p1_seed[0] = 0;

    series_t idle = {0}, queue = {0};
    double enc = 0;
    if (want("idle")) run_idle(&idle);
    if (want("queue")) run_queue(&queue, &enc);
    series_t encs = {{enc, enc, enc}, RUNS};

    alarm(0);
    loadavg(load1, sizeof load1);
    printf("libaemp %s node benchmark: two processes on loopback, %ld CPUs online, median of "
           "%d runs [min-max]\n",
           AEMP_VERSION, sysconf(_SC_NPROCESSORS_ONLN), RUNS);
    printf("load average before %s, after %s; pinned runs on CPU %d (the idlest)%s\n\n", load0,
           load1, cpu, scale != 1.0 ? "; BENCH_SCALE shortened runs" : "");
    printf("%-34s %-24s %-24s %6s  %-20s %s\n", "", "aemp", "baseline", "ratio", "target", "");
    row("one-way small, M msg/s", &s_a, &s_r, 1e6, 2, ">= 4.5, >= 0.25x",
        med(&s_a) >= 4.5e6 && med(&s_a) / med(&s_r) >= 0.25);
    row("  receiver CPU, ns per message", &c_a, &c_r, 1, 0, "", -1);
    row("  sender CPU, ns per message", &c_s, NULL, 1, 0, "", -1);
    row("one-way aemp_sendf, M msg/s", &f_a, &f_r, 1e6, 2, ">= 0.5x",
        med(&f_a) / med(&f_r) >= 0.5);
    row("  sender CPU, ns per message", &f_s, NULL, 1, 0, "", -1);
    row("one-way aemp_send(json_pack), M msg/s", &p_a, &p_r, 1e6, 2, "", -1);
    row("  sender CPU, ns per message", &p_s, NULL, 1, 0, "", -1);
    row("protocol 1: one-way aemp_sendf, CBOR", &f1_a, &f1_r, 1e6, 2, "as protocol 0", -1);
    row("  receiver CPU, ns per message", &f1_c, NULL, 1, 0, "", -1);
    row("  sender CPU, ns per message", &f1_s, NULL, 1, 0, "", -1);
    row("protocol 1: one-way aemp_sendf, JSON", &j1_a, &j1_r, 1e6, 2, "", -1);
    row("  receiver CPU, ns per message", &j1_c, NULL, 1, 0, "", -1);
    row("  sender CPU, ns per message", &j1_s, NULL, 1, 0, "", -1);
    row("protocol 1: CBOR / JSON one-way", &f1_a, &j1_a, 1e6, 2, ">= 1.0x",
        j1_a.n && med(&f1_a) / med(&j1_a) >= 1.0);
    row("one-way 1 KiB string, MB/s", &k_a, &k_r, 1, 0, "", -1);
    row("one-way 64 KiB string, MB/s", &b_a, &b_r, 1, 0, "", -1);
    row("round trip, median us", &um, &umr, 1, 1, "", -1);
    row("round trip, p99 us", &up, &upr, 1, 1, "", -1);
    row("round trip 1 CPU, median us", &pm, &pmr, 1, 1, "<= 1.2x", med(&pm) / med(&pmr) <= 1.2);
    row("round trip 1 CPU, p99 us", &pp, &ppr, 1, 1, "", -1);
    row("protocol 1: round trip 1 CPU, us", &pm1, &pmr1, 1, 1, "as protocol 0", -1);
    row("handshakes/s (16 at a time)", &hs, &hsr, 1, 0, ">= 0.5x", med(&hs) / med(&hsr) >= 0.5);
    row("protocol 1: handshakes/s (16)", &hs1, &hsr1, 1, 0, ">= 0.5x",
        med(&hs1) / med(&hsr1) >= 0.5);
    row("RSS per idle link, KiB", &idle, NULL, 1, 1, "<= 8", med(&idle) <= 8);
    row("RSS per 1M queued small, MiB", &queue, &encs, 1, 1, "", -1);
    printf("\nbaselines: raw TCP, 64 KiB writes, receiver splitting by bracket depth; blocking "
           "raw ping-pong;\nTCP connect + request/reply + close; encoded bytes of the queued "
           "messages. %.0f s in all.\n",
           now() - t0);
    return 0;
}
