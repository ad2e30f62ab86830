/*
 * bench_join.c - a join storm at one protocol-1 seed (issue 21): N nodes
 * join a C seed at once, each registering one port in one family, while
 * one more node watches that family until it holds all N. Three
 * processes on loopback, all through the public API as a user's program
 * would do it:
 *
 *   the seed      a global node (its own listener is its seed); it counts
 *                 the links it closed as "too many connections in
 *                 handshake" and reports its CPU time and RSS on request
 *   the joiners   N nodes on one loop, each with a listener (a port of
 *                 its own below the ephemeral range: binding port 0 ten
 *                 thousand times costs the kernel more than the storm) and
 *                 a link to the seed, each registering one port
 *                 (aemp_db_reg) in the family "join"; later 1000 of them
 *                 watch the family "hot"
 *   the coordinator  the watcher node (aemp_db_mon of "join"), and the
 *                 requests whose latency is measured
 *
 * Printed for each N: the wall time from the start (the joiners begin
 * making their nodes) until the watcher holds all N, the seed's CPU per
 * join, its RSS (and heap) per joined node, the handshakes the cap
 * closed, and the joiners' CPU per join (the client side); then, with
 * the N registered, the median latency of g_find (aemp_node_connect to an
 * unknown node id, answered "no known address" through the seed) and of
 * aemp_db_family on a one-key family, next to the same asked in turn of
 * an empty network beside it (a seed of its own, with one more node of
 * the coordinator), the median time until a change is seen by 1000
 * watchers, and, the seed killed under its N nodes and started again on
 * its port, the time until all N are linked to it again (2.02's back-off:
 * each node retries within 1.2-2.4 s) and the watcher's answer for the
 * family is whole again.
 *
 * Baseline, in the same run: N TCP connections opened at once to a plain
 * epoll server in its own process (the same listen backlog as a node's),
 * one small request/reply each, all kept open: wall time until every
 * reply is in, and the server's CPU per connection; and the issue's own
 * baseline, the same with each connection closed after its reply (until
 * the server has closed them all), which the handshake rate's target
 * (>= 0.5) is measured against. This raw storm and
 * the handshake storm each count their fastest of STORM_TRIES runs: a
 * SYN a full backlog dropped costs its connection a 1 s retransmission,
 * which one run catches and the next does not.
 *
 * The handshake storm's clients are C nodes, 10 000 in one process: at
 * 2 CPUs that process runs out of CPU before the seed does. The same
 * handshakes from lean clients (lean_storm: the protocol's lines and the
 * token, nothing else) show the seed's own rate beside it.
 *
 * A join's floor, beside it: the server's CPU for the join's five lines
 * over raw TCP (the protocol's exchange, no crypto, no parsing) plus the
 * two auth tokens a seed must compute per join (HMAC-SHA3-512 over both
 * greetings, of their sizes, the key made ready once as a node holds
 * it), and the seed's CPU per join above that floor: what parsing,
 * links, the database and the fan-out cost.
 *
 * N is 1000 and 10000, times BENCH_SCALE; BENCH_JOIN_N="500,2000" sets
 * the list. The joiners hold two descriptors per node (a listener and a
 * link): the limit is raised as far as allowed; where it is still short,
 * the last joiners have no listener (with a message), and N is cut only
 * below one descriptor per joiner.
 * BENCH_VERBOSE shows the nodes' logs; BENCH_JOIN_PIDS=S prints the
 * seed's process id when it starts and waits S seconds before the storm
 * (for a profiler to attach to the seed), and the same for the process
 * of the handshake clients before their storm;
 * BENCH_JOIN_ROUNDS sets how many changes the fan-out figure is the
 * median of (5; more for a profile, which BENCH_JOIN_PIDS also waits
 * for before the fan-out);
 * BENCH_JOIN_MAX_HANDSHAKES sets the seed's max_handshakes (to see the
 * storm without the cap).
 */
#define BENCH_NAME "bench_join"
#include "aemp.h"
#include "aemp_int.h" /* the tokens' HMAC with its key made ready, as a seed holds it */
#include "node_int.h" /* a node's listen backlog, which the raw servers use too */
#include "bench_util.h"

#include <ev.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <sys/epoll.h>

#define FAMILY "join"
#define WATCHERS 1000
#define ROUNDS 5
#define MAX_ROUNDS 1000
static int rounds = ROUNDS; /* BENCH_JOIN_ROUNDS */
#define LAT_N 200        /* sequential requests per latency figure */
#define DEADLINE 120     /* seconds a storm may take before it counts as failed */
#define MAX_RUNS 8
#define STORM_TRIES 3    /* raw and handshake storms: the fastest of these */
#define EVICTED "too many connections in handshake"

enum op {
    OP_HELLO = 1, OP_STAT, OP_GO, OP_MADE, OP_UP, OP_MON, OP_EXPECT, OP_READY, OP_REUP, OP_SEEN,
    OP_DONE
};

static const char secret_[] = "bench-join-secret";
static char seed_ep[64];
static unsigned seed_max_handshakes; /* BENCH_JOIN_MAX_HANDSHAKES; 0: the default */

static void quiet_log(void *ud, int level, const char *msg)
{
    if (getenv("BENCH_VERBOSE")) fprintf(stderr, "[%d] %d %s\n", (int)getpid(), level, msg);
}

/* A protocol-1 node that joins through seed_ep: made only (start 0), or
 * made and started, or NULL when it cannot start (its bind failed).
 * bind NULL: no listener. */
static aemp_node_t *mk_node(struct ev_loop *loop, const char *id, const char *bind,
                            void (*log)(void *, int, const char *),
                            void (*on_link)(void *, aemp_node_t *, const char *, int, const char *),
                            void *link_ud, int start)
{
    const char *binds[] = {bind}, *seeds[] = {seed_ep};
    aemp_node_config_t c = {0};
    c.protocol = 1;
    c.nodeid = id;
    c.binds = bind ? binds : NULL;
    c.nbinds = bind ? 1 : 0;
    c.seeds = seeds;
    c.nseeds = 1;
    c.secret = secret_;
    c.secret_len = sizeof secret_ - 1;
    c.log = log;
    /* what a quiet seed logs: its warnings and errors (the evictions
     * counted are warnings); other lines are not even formatted */
    if (!getenv("BENCH_VERBOSE")) c.log_levels = 1u << AEMP_LOG_ERROR | 1u << AEMP_LOG_WARN;
    c.on_link = on_link;
    c.link_ud = link_ud;
    if (!strcmp(id, "seed")) c.max_handshakes = seed_max_handshakes;
    int err = 0;
    aemp_node_t *n = aemp_node_new(loop, &c, &err);
    if (!n) {
        fprintf(stderr, BENCH_NAME ": cannot make node %s: %s\n", id, aemp_strerror(err));
        exit(1);
    }
    if (!start) return n;
    if (aemp_node_start(n)) {
        aemp_node_destroy(n);
        return NULL;
    }
    return n;
}

static aemp_node_t *mk(struct ev_loop *loop, const char *id, const char *bind,
                       void (*log)(void *, int, const char *),
                       void (*on_link)(void *, aemp_node_t *, const char *, int, const char *),
                       void *link_ud)
{
    aemp_node_t *n = mk_node(loop, id, bind, log, on_link, link_ud, 1);
    if (!n) {
        fprintf(stderr, BENCH_NAME ": cannot start node %s\n", id);
        exit(1);
    }
    return n;
}

/* The statistics every measuring process answers OP_STAT with: RSS
 * (KiB), a count of its own, CPU seconds, heap bytes in use. */
static void stat_reply(int out, long long extra)
{
    cmsg_t m = {0};
    m.op = OP_STAT;
    m.n = rss_kib();
    m.m = extra;
    m.d[0] = cpu_now();
    m.d[1] = (double)mallinfo2().uordblks;
    m.d[2] = sys_cpu_now();
    put_msg(out, &m);
}

/* ------------------------------------------------------------------ */
/* the seed                                                            */

static long seed_evicted;

static void seed_log(void *ud, int level, const char *msg)
{
    if (strstr(msg, EVICTED)) seed_evicted++;
    quiet_log(ud, level, msg);
}

static void seed_cmd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    cmsg_t m;
    get_msg(w->fd, &m);
    if (m.op == OP_QUIT) _exit(0); /* nothing of the seed's teardown is measured */
    expect_op(&m, OP_STAT);
    stat_reply((int)(intptr_t)w->data, seed_evicted);
}

static void seed_main(int in, int out, void *arg)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    aemp_node_t *seed = mk_node(loop, "seed", seed_ep, seed_log, NULL, NULL, 0);
    /* a seed restarted on its port may wait a moment for it */
    int tries = 0;
    while (aemp_node_start(seed)) {
        if (++tries == 100) die("the seed cannot start");
        usleep(20000);
    }
    if (!aemp_node_is_global(seed)) {
        fprintf(stderr, BENCH_NAME ": the seed is not global\n");
        _exit(1);
    }
    if (getenv("BENCH_JOIN_PIDS"))
        fprintf(stderr, "%s pid %d (N=%ld)\n", *(long *)arg ? "seed" : "empty network's seed",
                (int)getpid(), *(long *)arg);
    ev_io cmd;
    ev_io_init(&cmd, seed_cmd_cb, in, EV_READ);
    cmd.data = (void *)(intptr_t)out;
    ev_io_start(loop, &cmd);
    reply(out, OP_HELLO, 0, 0, 0);
    ev_run(loop, 0);
}

/* ------------------------------------------------------------------ */
/* the joiners                                                         */

static struct joiners {
    struct ev_loop *loop;
    int out;
    aemp_node_t **nodes;
    char *up;           /* per node: its link to the seed came up once */
    long n, nup;
    long *seen;         /* per watcher: the last value of "hot"/"k" it saw */
    long nwatch, watching, expect, nseen;
    long fallbacks;     /* joiners whose own port was taken */
} J;

/* The first of n listening ports for the joiners: just below the
 * ephemeral range, where connects do not take them. With port 0 each
 * bind() makes the kernel search for a free port among all the bound
 * ones, which at 10000 nodes costs the joiners more than the storm. */
static int listen_base(long n)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2) lo = 32768;
        fclose(f);
    }
    long base = lo - n - 100;
    return base < 1024 ? 1024 : (int)base;
}

static void joiner_link(void *ud, aemp_node_t *n, const char *peer, int up, const char *why)
{
    char *flag = ud;
    if (!up || *flag) return;
    *flag = 1;
    if (++J.nup == J.n) reply(J.out, OP_UP, J.nup, now(), 0);
}

static int joiner_port(aemp_port_t *port, json_t *msg, void *ud)
{
    return 0;
}

static void on_hot(aemp_node_t *n, const char *family, json_t *hash, json_t *added, json_t *changed,
                   json_t *deleted, void *ud)
{
    long *seen = ud;
    json_t *v = json_object_get(hash, "k");
    if (!json_is_integer(v) || json_integer_value(v) != J.expect || *seen == J.expect) return;
    if (*seen < 0) J.watching++;
    *seen = J.expect;
    if (++J.nseen == J.nwatch) reply(J.out, J.watching == J.nwatch && J.expect ? OP_SEEN : OP_MON,
                                     J.nseen, now(), 0);
}

/* Makes and starts the N nodes at once: each connects to the seed from
 * aemp_node_start, and its registration goes with its g_slave. */
/* Descriptors the joiners may hold (the limit less a few): a joiner
 * with a listener holds two, one without holds one. */
static long joiner_fds;

/* How many of n joiners get a listener within joiner_fds; the rest only
 * connect (as a 2.02 node with no binds). */
static long with_listener(long n)
{
    long l = joiner_fds - n;
    return l >= n ? n : l < 0 ? 0 : l;
}

static void joiners_go(long n)
{
    double t0 = now(), c0 = cpu_now();
    J.n = n;
    long listeners = with_listener(n);
    J.nodes = calloc((size_t)n, sizeof *J.nodes);
    J.up = calloc((size_t)n, 1);
    if (!J.nodes || !J.up) die("calloc");
    int base = listen_base(n);
    for (long i = 0; i < n; i++) {
        char id[32], bind[32];
        snprintf(id, sizeof id, "joiner%ld", i);
        snprintf(bind, sizeof bind, "127.0.0.1:%ld", base + i);
        J.nodes[i] = mk_node(J.loop, id, i < listeners ? bind : NULL, quiet_log, joiner_link,
                             &J.up[i], 1);
        if (!J.nodes[i]) {
            J.fallbacks++;
            J.nodes[i] = mk(J.loop, id, "127.0.0.1:0", quiet_log, joiner_link, &J.up[i]);
        }
        aemp_port_t *p = aemp_port_new(J.nodes[i], joiner_port, NULL);
        if (!p || aemp_db_reg(J.nodes[i], FAMILY, aemp_port_id(p), NULL)) {
            fprintf(stderr, BENCH_NAME ": cannot register %s\n", id);
            _exit(1);
        }
    }
    if (J.fallbacks)
        fprintf(stderr, BENCH_NAME ": %ld of %ld joiners found their port taken and bound port 0\n",
                J.fallbacks, n);
    reply(J.out, OP_MADE, n, now() - t0, cpu_now() - c0);
}

static void joiners_cmd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    cmsg_t m;
    get_msg(w->fd, &m);
    switch (m.op) {
    case OP_QUIT:
        _exit(0);
    case OP_STAT:
        stat_reply(J.out, J.nup);
        break;
    case OP_GO:
        joiners_go(m.n);
        break;
    case OP_MON:
        /* the first watchers: each starts with the value now set (0) */
        J.nwatch = m.n < J.n ? m.n : J.n;
        J.seen = malloc((size_t)J.nwatch * sizeof *J.seen);
        if (!J.seen) die("malloc");
        J.expect = 0;
        J.nseen = 0;
        for (long i = 0; i < J.nwatch; i++) {
            J.seen[i] = -1;
            if (!aemp_db_mon(J.nodes[i], "hot", on_hot, &J.seen[i])) die("aemp_db_mon");
        }
        break;
    case OP_EXPECT:
        J.expect = m.n;
        J.nseen = 0;
        reply(J.out, OP_READY, 0, 0, 0);
        break;
    case OP_REUP:
        /* the seed goes: OP_UP again once every joiner's link is up again */
        memset(J.up, 0, (size_t)J.n);
        J.nup = 0;
        reply(J.out, OP_READY, 0, 0, 0);
        break;
    default:
        expect_op(&m, OP_GO);
    }
}

static void joiners_main(int in, int out, void *arg)
{
    J.loop = ev_loop_new(EVFLAG_AUTO);
    J.out = out;
    ev_io cmd;
    ev_io_init(&cmd, joiners_cmd_cb, in, EV_READ);
    ev_io_start(J.loop, &cmd);
    ev_run(J.loop, 0);
}

/* ------------------------------------------------------------------ */
/* baselines: N connections at once to a plain epoll server            */

static const char raw_req[] = "[\"\",\"g_find\",\"joiner1\"]\n", raw_rep[] = "[\"\",\"g_found\",\"joiner1\",null]\n";

/* A line exchange over raw TCP, the same on every connection: the server
 * may speak first, the client speaks once connected, and each line a
 * side receives may be answered by one of its own (lengths in bytes, the
 * newline included; 0: no line). A connection is served once the server
 * has the client's last line, done once the client has the server's. */
#define MAX_STEPS 4
typedef struct script {
    size_t srv_first, srv_after[MAX_STEPS]; /* after the client's k-th line */
    size_t cli_first, cli_after[MAX_STEPS]; /* after the server's k-th line */
    int srv_lines, cli_lines;               /* lines each side sends in all */
    int as_node;                            /* socket options as a node's */
    /* the client closes each connection once it has the server's last
     * line, the server at its end of stream: a connection is served, and
     * the storm over, once the server has closed them all */
    int close;
} script_t;

/* The plain baseline: one request and its reply (the sizes of a g_find
 * and its answer), with the usual options of a server (no delay). */
static const script_t raw_script = {
    .cli_first = sizeof raw_req - 1, .srv_after = {sizeof raw_rep - 1},
    .srv_lines = 1, .cli_lines = 1,
};

/* The same, each connection closed after its reply: issue 21's
 * baseline, "raw TCP connect + request/reply + close". */
static const script_t raw_close_script = {
    .cli_first = sizeof raw_req - 1, .srv_after = {sizeof raw_rep - 1},
    .srv_lines = 1, .cli_lines = 1, .close = 1,
};

/* The protocol's own shape (issue 21's floor): the five writes of a
 * protocol-1 join, each sent here as one line of its size on the wire
 * (the greetings - two lines each -, the auth lines, the seed's with its
 * g_global, the joiner's g_slave), in their order - the seed's greeting at accept, its auth line once the joiner's
 * is in, the joiner's auth after the seed's greeting, its g_slave after
 * the seed's auth - with a node's socket options (no delay, late ACKs).
 * No crypto, no parsing: what the kernel alone costs for that exchange. */
static const script_t shape_script = {
    .srv_first = 231, .srv_after = {0, 159, 0},
    .cli_first = 234, .cli_after = {148, 50},
    .srv_lines = 2, .cli_lines = 3, .as_node = 1,
};

static void late_acks(int fd)
{
    int zero = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
}

/* a line of len bytes; the content does not matter to either side */
static void send_line(int fd, size_t len)
{
    static char line[512];
    if (!len) return;
    if (len > sizeof line) die("line too long");
    memset(line, 'x', len - 1);
    line[len - 1] = '\n';
    write_all(fd, line, len);
}

/* lines read on each descriptor (a read may hold more than one), for
 * descriptors below fd_cap (the limit, at most 1M) */
static size_t fd_cap;

/* Sets fd_cap from the descriptor limit. */
static void fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) die("getrlimit");
    fd_cap = rl.rlim_cur < (1u << 20) ? (size_t)rl.rlim_cur : (1u << 20);
}

static unsigned char *fd_lines(void)
{
    fd_limit();
    unsigned char *v = calloc(fd_cap, 1);
    if (!v) die("calloc");
    return v;
}

static int counted_fd(int fd, const char *what)
{
    if (fd < 0 || (size_t)fd >= fd_cap) die(what);
    return fd;
}

static int count_lines(const char *buf, ssize_t r)
{
    int k = 0;
    for (ssize_t i = 0; i < r; i++) k += buf[i] == '\n';
    return k;
}

/* The server: accepts as a node does (64 per wakeup, non-blocking),
 * follows the script on each connection and keeps it. */
static void raw_server_main(int in, int out, void *arg)
{
    const script_t *sc = arg;
    int port, one = 1, ls = listen_any(SOCK_NONBLOCK, AEMP_LISTEN_BACKLOG, &port);
    if (sc->as_node) {
        setsockopt(ls, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        late_acks(ls); /* after listen(), as a node does */
    }
    unsigned char *got = fd_lines();
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    ev.data.fd = in;
    epoll_ctl(ep, EPOLL_CTL_ADD, in, &ev);
    reply(out, OP_HELLO, port, 0, 0);
    long want = 0, served = 0, rss0 = 0;
    double c0 = 0;
    struct epoll_event evs[256];
    for (;;) {
        int k = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == in) {
                cmsg_t m;
                get_msg(in, &m);
                if (m.op == OP_QUIT) _exit(0);
                expect_op(&m, OP_GO);
                want = m.n;
                served = 0;
                rss0 = rss_kib();
                c0 = cpu_now();
                reply(out, OP_READY, 0, 0, 0);
            } else if (fd == ls) {
                for (int a = 0; a < 64; a++) {
                    int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    counted_fd(c, "raw accept");
                    if (!sc->as_node) setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                    got[c] = 0;
                    send_line(c, sc->srv_first);
                }
            } else {
                char buf[1024];
                ssize_t r = read(fd, buf, sizeof buf);
                if (r <= 0) {
                    close(fd);
                    if (sc->close && ++served == want)
                        reply(out, OP_DONE, rss_kib() - rss0, cpu_now() - c0, 0);
                    continue;
                }
                for (int l = count_lines(buf, r); l > 0; l--) {
                    int line = got[fd]++;
                    if (line < MAX_STEPS) send_line(fd, sc->srv_after[line]);
                    if (got[fd] == sc->cli_lines && !sc->close && ++served == want)
                        reply(out, OP_DONE, rss_kib() - rss0, cpu_now() - c0, 0);
                }
            }
        }
    }
}

typedef struct raw_result {
    double wall, server_cpu, rss_per, client_cpu;
} raw_result_t;

/* A client's non-blocking connect to sa, with a node's socket options
 * (as_node) or only no delay, watched for EPOLLOUT on ep. */
static int storm_connect(int ep, const struct sockaddr_in *sa, int as_node, const char *what)
{
    int one = 1, fd = counted_fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), what);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (as_node) late_acks(fd);
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) && errno != EINPROGRESS) die(what);
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return fd;
}

/* The clients: n non-blocking connects at once, each following the
 * script once connected; done when every connection has the server's
 * last line; all stay open until then. */
static raw_result_t raw_storm(long n, const script_t *sc)
{
    raw_result_t res = {-1, 0, 0, 0};
    child_t s = spawn(raw_server_main, (void *)sc, -1);
    cmsg_t m;
    get_msg(s.from, &m);
    expect_op(&m, OP_HELLO);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)m.n);
    cmsg_t go = {0};
    go.op = OP_GO;
    go.n = n;
    put_msg(s.to, &go);
    get_msg(s.from, &m);
    expect_op(&m, OP_READY);

    int ep = epoll_create1(0);
    int *fds = malloc((size_t)n * sizeof *fds);
    unsigned char *got = fd_lines();
    if (ep < 0 || !fds) die("raw clients");
    double t0 = now(), c0 = cpu_now();
    for (long i = 0; i < n; i++) {
        int fd = storm_connect(ep, &sa, sc->as_node, "raw connect");
        fds[i] = fd;
        got[fd] = 0;
    }
    long done = 0;
    struct epoll_event evs[256];
    while (done < n && now() - t0 < DEADLINE) {
        int k = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (evs[i].events & EPOLLOUT) {
                check_connected(fd, "raw connect");
                if (sc->as_node) late_acks(fd);
                send_line(fd, sc->cli_first);
                struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
                continue;
            }
            char buf[1024];
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) die("raw reply");
            for (int l = count_lines(buf, r); l > 0; l--) {
                int line = got[fd]++;
                if (line < MAX_STEPS) send_line(fd, sc->cli_after[line]);
                if (got[fd] == sc->srv_lines) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                    if (sc->close) {
                        close(fd);
                        got[fd] = 0xff; /* (closed) */
                    }
                    done++;
                }
            }
        }
    }
    if (done == n) {
        res.wall = now() - t0;
        res.client_cpu = (cpu_now() - c0) / (double)n;
        get_msg(s.from, &m);
        expect_op(&m, OP_DONE);
        if (sc->close) res.wall = now() - t0; /* (the server closed them all) */
        res.server_cpu = m.d[0] / (double)n;
        res.rss_per = (double)m.n / (double)n;
    }
    finish(&s);
    for (long i = 0; i < n; i++)
        if (got[fds[i]] != 0xff) close(fds[i]);
    close(ep);
    free(fds);
    free(got);
    return res;
}

/* A fan-out over raw TCP, the floor of "a change seen by all watchers":
 * a server process holds w connections from a receiving process; for
 * each round the coordinator tells the server, which writes one line (of
 * the size of the seed's g_chg1 to a watcher) on each connection, and the
 * receiver says when every connection has its line. */
#define FAN_LINE 40

static void fan_server_main(int in, int out, void *arg)
{
    int port, one = 1, ls = listen_any(0, 1024, &port);
    reply(out, OP_HELLO, port, 0, 0);
    cmsg_t m;
    get_msg(in, &m);
    expect_op(&m, OP_GO);
    long w = m.n;
    int *fds = malloc((size_t)w * sizeof *fds);
    if (!fds) die("malloc");
    for (long i = 0; i < w; i++) {
        if ((fds[i] = accept(ls, NULL, NULL)) < 0) die("fan accept");
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    reply(out, OP_READY, w, 0, 0);
    for (;;) {
        get_msg(in, &m);
        if (m.op == OP_QUIT) _exit(0);
        /* its CPU for the writes alone (the seed's figure is its whole
         * process's over the rounds) */
        double c0 = cpu_now();
        for (long i = 0; i < w; i++) send_line(fds[i], FAN_LINE);
        reply(out, OP_DONE, w, cpu_now() - c0, 0);
    }
}

typedef struct fan_arg {
    int port;
    long w;
} fan_arg_t;

static void fan_receiver_main(int in, int out, void *arg)
{
    const fan_arg_t *a = arg;
    int ep = epoll_create1(0);
    for (long i = 0; i < a->w; i++) {
        int fd = connect_to(a->port);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    reply(out, OP_READY, a->w, 0, 0);
    struct epoll_event evs[256];
    for (;;) {
        cmsg_t m;
        get_msg(in, &m);
        if (m.op == OP_QUIT) _exit(0);
        expect_op(&m, OP_EXPECT);
        reply(out, OP_READY, 0, 0, 0);
        long lines = 0;
        while (lines < a->w) {
            int k = epoll_wait(ep, evs, 256, 10000);
            if (k <= 0) die("fan: lines missing");
            for (int i = 0; i < k; i++) {
                char buf[512];
                ssize_t r = read(evs[i].data.fd, buf, sizeof buf);
                if (r <= 0) die("fan read");
                lines += count_lines(buf, r);
            }
        }
        reply(out, OP_SEEN, lines, now(), 0);
    }
}

static double median(double *v, int n);

/* The median latency (ms) of rounds fan-outs to w connections, and the
 * server's CPU per fan-out (ms). */
static void raw_fan(long w, int nrounds, double *lat, double *cpu)
{
    child_t s = spawn(fan_server_main, NULL, -1);
    cmsg_t m;
    get_msg(s.from, &m);
    expect_op(&m, OP_HELLO);
    fan_arg_t a = {(int)m.n, w};
    cmsg_t go = {0};
    go.op = OP_GO;
    go.n = w;
    put_msg(s.to, &go);
    child_t r = spawn(fan_receiver_main, &a, -1);
    get_msg(r.from, &m);
    expect_op(&m, OP_READY);
    get_msg(s.from, &m);
    expect_op(&m, OP_READY);
    double t[MAX_ROUNDS], c = 0;
    for (int i = 0; i < nrounds; i++) {
        cmsg_t x = {0};
        x.op = OP_EXPECT;
        put_msg(r.to, &x);
        get_msg(r.from, &m);
        expect_op(&m, OP_READY);
        double ts = now();
        x.op = OP_GO;
        put_msg(s.to, &x);
        get_msg(r.from, &m);
        expect_op(&m, OP_SEEN);
        t[i] = (m.d[0] - ts) * 1e3;
        get_msg(s.from, &m);
        expect_op(&m, OP_DONE);
        c += m.d[0];
    }
    *lat = median(t, nrounds);
    *cpu = c / nrounds * 1e3;
    finish(&r);
    finish(&s);
}

/* ------------------------------------------------------------------ */
/* the coordinator                                                     */

static struct coord {
    struct ev_loop *loop;
    aemp_node_t *w;          /* the watcher */
    aemp_node_t *w0;         /* a node of the empty network beside it */
    long want;               /* keys of "join" that make the storm complete */
    size_t visible;
    double t_visible;
    long watching;           /* the watcher's first answer came */
    long complete;           /* ... and it held all `want` */
    long find_done;          /* g_find answers (links that failed) */
    long replies;            /* db_family answers */
    size_t reply_size;
    cmsg_t inbox[OP_DONE + 1]; /* the joiners' last message of each op */
    long got[OP_DONE + 1];
} C;

static void on_join(aemp_node_t *n, const char *family, json_t *hash, json_t *added,
                    json_t *changed, json_t *deleted, void *ud)
{
    C.watching = 1;
    C.visible = json_object_size(hash);
    if (C.want && !C.complete && C.visible >= (size_t)C.want) {
        C.t_visible = now();
        C.complete = 1;
    }
}

static void watcher_link(void *ud, aemp_node_t *n, const char *peer, int up, const char *why)
{
    if (!up && !strncmp(peer, "nosuch", 6)) C.find_done++;
}

static void on_reply(aemp_node_t *n, const char *family, json_t *result, void *ud)
{
    C.reply_size = json_object_size(result);
    C.replies++;
}

static void joiners_msg_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    cmsg_t m;
    get_msg(w->fd, &m);
    if (m.op <= 0 || m.op > OP_DONE) expect_op(&m, OP_STAT);
    C.inbox[m.op] = m;
    C.got[m.op] = 1;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

/* A count that never moves: run_until(&never, 1, s) runs the loop s seconds. */
static const long never = 0;

/* Runs the coordinator's loop until *count reaches target (1) or the
 * time is up (0). */
static int run_until(const long *count, long target, double seconds)
{
    double end = now() + seconds;
    while (*count < target && now() < end) ev_run(C.loop, EVRUN_ONCE);
    return *count >= target;
}

/* Waits for the joiners' message op (the loop runs meanwhile): 1 with
 * it in *m, or 0 when the time is up. */
static int try_await(int op, double seconds, cmsg_t *m)
{
    if (!run_until(&C.got[op], 1, seconds)) return 0;
    C.got[op] = 0;
    *m = C.inbox[op];
    return 1;
}

static cmsg_t await(int op, double seconds)
{
    cmsg_t m;
    if (!try_await(op, seconds, &m)) {
        fprintf(stderr, BENCH_NAME ": no answer from the joiners (%s, op %d)\n", phase_name, op);
        exit(1);
    }
    return m;
}

static void send_op(child_t *c, int op, long long n)
{
    cmsg_t m = {0};
    m.op = op;
    m.n = n;
    put_msg(c->to, &m);
}

/* The seed's answer to OP_STAT, asked and read at once. */
static cmsg_t seed_stat(child_t *seed)
{
    cmsg_t m;
    send_op(seed, OP_STAT, 0);
    get_msg(seed->from, &m);
    expect_op(&m, OP_STAT);
    return m;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n ? v[n / 2] : -1;
}

/* Median microseconds of LAT_N requests to the empty network (C.w0, whose
 * seed holds nothing) and as many to the one holding N (C.w), one at a
 * time and taken in turn, so that both see the machine alike (how busy,
 * how soon an idle CPU wakes): g_find for node ids nobody has
 * (aemp_node_connect, answered "no known address") with find, else
 * aemp_db_family of the one-key family "small". -1: no answer. */
static void lat_pair(int find, double *empty, double *full)
{
    static double s[2][LAT_N];
    *empty = *full = -1;
    for (int i = 0; i < LAT_N; i++)
        for (int k = 0; k < 2; k++) {
            aemp_node_t *node = k ? C.w : C.w0;
            double t0 = now();
            if (find) {
                char id[64];
                snprintf(id, sizeof id, "nosuch-%d-%d", k, i);
                aemp_node_connect(node, id);
                if (!run_until(&C.find_done, C.find_done + 1, 5)) return;
            } else {
                aemp_db_family(node, "small", on_reply, NULL);
                if (!run_until(&C.replies, C.replies + 1, 5) || C.reply_size != 1) return;
            }
            s[k][i] = (now() - t0) * 1e6;
        }
    *empty = median(s[0], LAT_N);
    *full = median(s[1], LAT_N);
}

/* the handshake storm: N nodes made first, then started at once */

static struct hsclients {
    struct ev_loop *loop;
    int out;
    long n, nup;
    double t0, c0;
} H;

static void hs_link(void *ud, aemp_node_t *n, const char *peer, int up, const char *why)
{
    char *flag = ud;
    if (!up || *flag) return;
    *flag = 1;
    if (++H.nup == H.n) reply(H.out, OP_UP, H.nup, now() - H.t0, cpu_now() - H.c0);
}

/* N nodes without listeners are made (not timed); on OP_GO all are
 * started at once, each connecting to the seed and authenticating; the
 * answer is the wall time until every link is up. */
static void hs_clients_main(int in, int out, void *arg)
{
    long n = *(long *)arg;
    H.loop = ev_loop_new(EVFLAG_AUTO);
    H.out = out;
    H.n = n;
    aemp_node_t **nodes = calloc((size_t)n, sizeof *nodes);
    char *up = calloc((size_t)n, 1);
    if (!nodes || !up) die("calloc");
    for (long i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "hs%ld", i);
        nodes[i] = mk_node(H.loop, id, NULL, quiet_log, hs_link, &up[i], 0);
    }
    cmsg_t m;
    if (getenv("BENCH_JOIN_PIDS")) fprintf(stderr, "handshake clients pid %d (N=%ld)\n", (int)getpid(), n);
    reply(out, OP_READY, n, 0, 0);
    get_msg(in, &m);
    expect_op(&m, OP_GO);
    H.t0 = now();
    H.c0 = cpu_now();
    for (long i = 0; i < n; i++)
        if (aemp_node_start(nodes[i])) die("aemp_node_start");
    while (H.nup < n && now() - H.t0 < DEADLINE) ev_run(H.loop, EVRUN_ONCE);
    if (H.nup < n) {
        fprintf(stderr, BENCH_NAME ": %ld of %ld handshakes done after %d s\n", H.nup, n, DEADLINE);
        _exit(1);
    }
    get_msg(in, &m); /* OP_QUIT: the process goes, and its links with it */
    _exit(0);
}

typedef struct hs_result {
    double wall, seed_cpu, seed_sys, client_cpu;
} hs_result_t;

/* A fresh seed on a port of its own (seed_ep), so the join storm's
 * figures see nothing of the handshake storms'. */
static child_t fresh_seed(long *n)
{
    snprintf(seed_ep, sizeof seed_ep, "127.0.0.1:%d", free_port());
    child_t seed = spawn(seed_main, n, -1);
    cmsg_t m;
    get_msg(seed.from, &m);
    expect_op(&m, OP_HELLO);
    return seed;
}

/* The seed's CPU per handshake between two of its stats, into res. */
static void seed_per_handshake(hs_result_t *res, const cmsg_t *s0, const cmsg_t *s1, long n)
{
    res->seed_cpu = (s1->d[0] - s0->d[0]) / (double)n;
    res->seed_sys = (s1->d[2] - s0->d[2]) / (double)n;
}

static hs_result_t hs_storm(long n)
{
    hs_result_t res = {-1, -1, -1, -1};
    child_t seed = fresh_seed(&n);
    cmsg_t m;
    child_t cl = spawn(hs_clients_main, &n, -1);
    get_msg(cl.from, &m);
    expect_op(&m, OP_READY);
    if (getenv("BENCH_JOIN_PIDS")) sleep((unsigned)atoi(getenv("BENCH_JOIN_PIDS")));
    cmsg_t s0 = seed_stat(&seed);
    send_op(&cl, OP_GO, n);
    get_msg(cl.from, &m);
    expect_op(&m, OP_UP);
    cmsg_t s1 = seed_stat(&seed);
    res.wall = m.d[0];
    seed_per_handshake(&res, &s0, &s1, n);
    res.client_cpu = m.d[1] / (double)n;
    finish(&seed);
    finish(&cl);
    return res;
}

/* The same handshakes from lean clients: N connections from the
 * coordinator's own epoll loop, each sending a protocol-1 greeting
 * ("aemp;1;leanI;hmac_sha3_512;json" and a nonce line) at once, reading
 * the seed's two greeting lines, sending its hmac_sha3_512 auth line (its
 * token computed with the secret's key made ready once) and counting the
 * handshake done at the seed's auth line. It does not check the seed's
 * token, keeps no node and parses nothing else: a client as cheap as the
 * protocol allows, so that the seed's own rate shows (with C nodes as
 * clients, their process runs out of CPU first). */
/* The pieces a token covers: four lines, each with its LF, the sender's
 * two first (as handshake.c's sha3_token hashes them). */
static void token_pieces(aemp__piece_t p[8], const char *const l[4], const size_t n[4])
{
    for (int i = 0; i < 4; i++) {
        p[2 * i] = (aemp__piece_t){l[i], n[i]};
        p[2 * i + 1] = (aemp__piece_t){"\n", 1};
    }
}

typedef struct lean_conn {
    char in[600];     /* the seed's lines so far */
    size_t len;
    int lines;        /* LFs in in */
    size_t after3;    /* where in in the third line (its auth line) ends */
    char own[2][96];  /* our greeting's two lines, without LF */
} lean_conn_t;

static hs_result_t lean_storm(long n)
{
    hs_result_t res = {-1, -1, -1, -1};
    child_t seed = fresh_seed(&n);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)atoi(strchr(seed_ep, ':') + 1));
    int ep = epoll_create1(0);
    int *fds = malloc((size_t)n * sizeof *fds);
    fd_limit();
    lean_conn_t **conn = calloc(fd_cap, sizeof *conn);
    aemp__hmac_sha3_t *key = aemp__hmac_sha3_new(secret_, sizeof secret_ - 1);
    if (ep < 0 || !fds || !conn || !key) die("lean clients");
    cmsg_t s0 = seed_stat(&seed);
    double t0 = now(), c0 = cpu_now();
    for (long i = 0; i < n; i++) {
        int fd = storm_connect(ep, &sa, 1, "lean connect");
        lean_conn_t *c = conn[fd] = calloc(1, sizeof *c);
        if (!c) die("calloc");
        snprintf(c->own[0], sizeof c->own[0], "aemp;1;lean%ld;hmac_sha3_512;json", i);
        /* 88 characters, as 2.02's base64 of 66 random bytes */
        snprintf(c->own[1], sizeof c->own[1], "%088ld", i * 7919 + 1);
        fds[i] = fd;
    }
    long done = 0, failed = 0;
    struct epoll_event evs[256];
    while (done + failed < n && now() - t0 < DEADLINE) {
        int k = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            lean_conn_t *c = conn[fd];
            if (evs[i].events & EPOLLOUT) {
                check_connected(fd, "lean connect");
                char g[200];
                int gl = snprintf(g, sizeof g, "%s\n%s\n", c->own[0], c->own[1]);
                write_all(fd, g, (size_t)gl);
                struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
                continue;
            }
            ssize_t r = c->len < sizeof c->in ? read(fd, c->in + c->len, sizeof c->in - c->len) : 0;
            if (r <= 0) {
                /* closed before its link was up: a refused token is
                 * answered with the seed's auth line and the close */
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                failed++;
                continue;
            }
            size_t from = c->len;
            c->len += (size_t)r;
            for (size_t b = from; b < c->len && c->lines < 3; b++) {
                if (c->in[b] != '\n') continue;
                if (++c->lines == 3) c->after3 = b + 1;
                if (c->lines != 2) continue;
                /* the token: our lines, then the seed's, each with LF */
                const char *e1 = memchr(c->in, '\n', b);
                const char *l[4] = {c->own[0], c->own[1], c->in, e1 + 1};
                const size_t ln[4] = {strlen(c->own[0]), strlen(c->own[1]), (size_t)(e1 - c->in),
                                      (size_t)(c->in + b - (e1 + 1))};
                aemp__piece_t parts[8];
                token_pieces(parts, l, ln);
                unsigned char d[AEMP__SHA3_512_BYTES];
                char line[200] = "hmac_sha3_512;";
                if (aemp__hmac_sha3_mac(key, parts, 8, d)) die("lean token");
                aemp__hex(d, sizeof d, line + 14);
                strcat(line, ";json\n");
                write_all(fd, line, strlen(line));
            }
            /* done once the link is up: the seed's first message came
             * after its auth line */
            if (c->lines == 3 && c->len > c->after3) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                done++;
            }
        }
    }
    if (done == n) {
        res.wall = now() - t0;
        res.client_cpu = (cpu_now() - c0) / (double)n;
        cmsg_t s1 = seed_stat(&seed);
        seed_per_handshake(&res, &s0, &s1, n);
    } else {
        fprintf(stderr, BENCH_NAME ": lean clients: %ld of %ld handshakes done, %ld closed by the seed\n",
                done, n, failed);
    }
    finish(&seed);
    for (long i = 0; i < n; i++) {
        free(conn[fds[i]]);
        close(fds[i]);
    }
    aemp__hmac_sha3_free(key);
    close(ep);
    free(conn);
    free(fds);
    return res;
}

typedef struct result {
    long n;
    raw_result_t raw, raw_close;
    raw_result_t shape;      /* the join's five lines over raw TCP */
    hs_result_t hs;          /* the handshake storm, a seed of its own */
    hs_result_t lean;        /* the same from lean clients (lean_storm) */
    double made, made_cpu;   /* the joiners making and starting their nodes */
    double up;               /* every joiner's link to the seed up */
    double visible;          /* the watcher holds all N */
    double cpu_join, sys_join, rss_node, heap_node, joiner_cpu;
    long evicted;
    double find0, find1, fam0, fam1; /* latencies, empty network and N registered */
    long nwatch;
    double fan, fan_cpu;
    double fan_raw, fan_raw_cpu; /* the same fan-out over raw TCP */
    double back_up, back_whole; /* the seed restarted: all linked, database whole */
    long back_evicted;
} result_t;

static void storm(result_t *r)
{
    long n = r->n;
    char tag[32];
    snprintf(tag, sizeof tag, "raw %ld", n);
    phase(tag, DEADLINE + 30);
    /* the fastest of STORM_TRIES: a SYN dropped by a full backlog costs
     * its connection a 1 s retransmission, which one run catches and the
     * next does not; the handshake storm is taken the same way */
    for (int t = 0; t < STORM_TRIES; t++) {
        raw_result_t x = raw_storm(n, &raw_script);
        if (x.wall > 0 && (r->raw.wall <= 0 || x.wall < r->raw.wall)) r->raw = x;
        x = raw_storm(n, &shape_script);
        if (x.wall > 0 && (r->shape.wall <= 0 || x.wall < r->shape.wall)) r->shape = x;
        x = raw_storm(n, &raw_close_script);
        if (x.wall > 0 && (r->raw_close.wall <= 0 || x.wall < r->raw_close.wall)) r->raw_close = x;
    }

    snprintf(tag, sizeof tag, "storm %ld", n);
    phase(tag, 3 * DEADLINE);
    /* the empty network, a seed of its own that nobody joins */
    static long zero = 0;
    char empty_ep[64];
    snprintf(seed_ep, sizeof seed_ep, "127.0.0.1:%d", free_port());
    snprintf(empty_ep, sizeof empty_ep, "%s", seed_ep);
    child_t seed0 = spawn(seed_main, &zero, -1);
    cmsg_t m;
    get_msg(seed0.from, &m);
    expect_op(&m, OP_HELLO);
    snprintf(seed_ep, sizeof seed_ep, "127.0.0.1:%d", free_port());
    child_t seed = spawn(seed_main, &n, -1);
    get_msg(seed.from, &m);
    expect_op(&m, OP_HELLO);
    /* time for a profiler to attach to the seed */
    if (getenv("BENCH_JOIN_PIDS")) sleep((unsigned)atoi(getenv("BENCH_JOIN_PIDS")));
    /* forked before the coordinator has sockets of its own */
    child_t jn = spawn(joiners_main, NULL, -1);

    memset(&C, 0, sizeof C);
    C.loop = ev_loop_new(EVFLAG_AUTO);
    ev_io jio;
    ev_io_init(&jio, joiners_msg_cb, jn.from, EV_READ);
    ev_io_start(C.loop, &jio);
    ev_timer tick;
    ev_timer_init(&tick, tick_cb, 0.05, 0.05);
    ev_timer_start(C.loop, &tick);
    C.w = mk(C.loop, "watcher", NULL, quiet_log, watcher_link, NULL);
    if (!aemp_db_mon(C.w, FAMILY, on_join, NULL)) die("aemp_db_mon");
    aemp_db_set(C.w, "small", "k", json_string("v"));
    aemp_db_set(C.w, "hot", "k", json_integer(0));
    char full_ep[64];
    snprintf(full_ep, sizeof full_ep, "%s", seed_ep);
    snprintf(seed_ep, sizeof seed_ep, "%s", empty_ep);
    C.w0 = mk(C.loop, "watcher0", NULL, quiet_log, watcher_link, NULL);
    snprintf(seed_ep, sizeof seed_ep, "%s", full_ep);
    aemp_db_set(C.w0, "small", "k", json_string("v"));
    if (!run_until(&C.watching, 1, 10)) {
        fprintf(stderr, BENCH_NAME ": the watcher did not get the family from the seed\n");
        exit(1);
    }

    cmsg_t s0 = seed_stat(&seed);
    send_op(&jn, OP_STAT, 0);
    cmsg_t j0 = await(OP_STAT, 10);

    /* the storm */
    C.want = n;
    double t0 = now();
    send_op(&jn, OP_GO, n);
    int vis_flag = run_until(&C.complete, 1, DEADLINE);
    cmsg_t made = await(OP_MADE, 10);
    r->made = made.d[0];
    r->made_cpu = made.d[1] / (double)n;
    r->visible = vis_flag ? C.t_visible - t0 : -1;
    if (!vis_flag)
        fprintf(stderr, BENCH_NAME ": N=%ld: the watcher holds %zu of %ld after %d s\n", n,
                C.visible, n, DEADLINE);
    cmsg_t up;
    r->up = try_await(OP_UP, vis_flag ? 10 : 1, &up) ? up.d[0] - t0 : -1;
    cmsg_t s1 = seed_stat(&seed);
    r->cpu_join = (s1.d[0] - s0.d[0]) / (double)n;
    r->sys_join = (s1.d[2] - s0.d[2]) / (double)n;
    r->evicted = s1.m - s0.m;
    send_op(&jn, OP_STAT, 0);
    cmsg_t j1 = await(OP_STAT, 10);
    r->joiner_cpu = (j1.d[0] - j0.d[0]) / (double)n;
    /* idle: what the links and the entries hold once the storm is over */
    run_until(&never, 1, 0.3);
    s1 = seed_stat(&seed);
    r->rss_node = (double)(s1.n - s0.n) / (double)n;
    r->heap_node = (s1.d[1] - s0.d[1]) / (double)n;

    /* N registered, next to the empty network */
    lat_pair(1, &r->find0, &r->find1);
    lat_pair(0, &r->fam0, &r->fam1);

    /* a change seen by the watchers of "hot" */
    r->nwatch = n < WATCHERS ? n : WATCHERS;
    send_op(&jn, OP_MON, r->nwatch);
    await(OP_MON, 30);
    cmsg_t f0 = seed_stat(&seed);
    double fan[MAX_ROUNDS];
    if (getenv("BENCH_JOIN_PIDS")) {
        fprintf(stderr, "fan-out starts (joiners pid %d)\n", (int)jn.pid);
        sleep((unsigned)atoi(getenv("BENCH_JOIN_PIDS")));
    }
    for (int i = 0; i < rounds; i++) {
        send_op(&jn, OP_EXPECT, i + 1);
        await(OP_READY, 10);
        double ts = now();
        aemp_db_set(C.w, "hot", "k", json_integer(i + 1));
        cmsg_t seen = await(OP_SEEN, 30);
        fan[i] = (seen.d[0] - ts) * 1e3;
    }
    cmsg_t f1 = seed_stat(&seed);
    r->fan = median(fan, rounds);
    r->fan_cpu = (f1.d[0] - f0.d[0]) / rounds * 1e3;
    raw_fan(r->nwatch, rounds, &r->fan_raw, &r->fan_raw_cpu);

    /* the seed killed under its N nodes and started again on its port:
     * they come back with 2.02's back-off and register again */
    send_op(&jn, OP_REUP, 0);
    await(OP_READY, 10);
    kill(seed.pid, SIGKILL);
    waitpid(seed.pid, NULL, 0);
    close(seed.to);
    close(seed.from);
    double tr = now();
    seed = spawn(seed_main, &n, -1);
    get_msg(seed.from, &m);
    expect_op(&m, OP_HELLO);
    r->back_up = try_await(OP_UP, DEADLINE, &up) ? up.d[0] - tr : -1;
    r->back_whole = -1;
    for (double end = now() + DEADLINE; r->back_up >= 0 && now() < end;) {
        long before = C.replies;
        C.reply_size = 0;
        if (!aemp_db_family(C.w, FAMILY, on_reply, NULL) && run_until(&C.replies, before + 1, 5) &&
            C.reply_size == (size_t)n) {
            r->back_whole = now() - tr;
            break;
        }
        run_until(&never, 1, 0.02);
    }
    r->back_evicted = seed_stat(&seed).m;

    /* the seed first: its teardown is not measured, nor a storm of leaves */
    finish(&seed);
    finish(&seed0);
    finish(&jn);
    aemp_node_destroy(C.w0);
    aemp_node_destroy(C.w);
    ev_loop_destroy(C.loop);
    C.loop = NULL;
}

/* ------------------------------------------------------------------ */
/* report                                                              */

static void row(const char *name, const result_t *rs, int nr, double (*get)(const result_t *),
                int prec, const char *target, int (*ok)(const result_t *))
{
    printf("%-46s", name);
    int met = 1;
    for (int i = 0; i < nr; i++) {
        double v = get(&rs[i]);
        if (isnan(v)) printf(" %14s", "n/a");
        else if (v < 0) printf(" %14s", "failed");
        else printf(" %14.*f", prec, v);
        if (ok && !ok(&rs[i])) met = 0;
    }
    printf("   %-18s %s\n", target, !ok ? "" : met ? "met" : "MISSED");
}

/* the join's two auth tokens' CPU (tokens_cpu), measured once in main */
static double g_tokens;

#define GET(name, expr) \
    static double name(const result_t *r) { return (expr); }
GET(g_visible, r->visible)
GET(g_made, r->made)
GET(g_up, r->up)
GET(g_cpu_join, r->cpu_join * 1e6)
/* The kernel's split of a process's CPU into user and system time comes
 * from its clock ticks (4 ms at 250 Hz): over less than a quarter second
 * of CPU it says little. */
#define TICKS_ENOUGH(cpu_per, n) ((cpu_per) * (double)(n) >= 0.25)
GET(g_sys_join, TICKS_ENOUGH(r->cpu_join, r->n) ? r->sys_join * 1e6 : NAN)
GET(g_hs_sys, TICKS_ENOUGH(r->hs.seed_cpu, r->n) ? r->hs.seed_sys * 1e6 : NAN)
GET(g_joiner_cpu, r->joiner_cpu * 1e6)
GET(g_rss_node, r->rss_node)
GET(g_heap_node, r->heap_node)
GET(g_evicted, (double)r->evicted)
GET(g_raw_wall, r->raw.wall)
GET(g_raw_cpu, r->raw.server_cpu * 1e6)
GET(g_raw_client, r->raw.client_cpu * 1e6)
GET(g_raw_rss, r->raw.rss_per)
GET(g_rate_ratio, r->visible > 0 && r->raw.wall > 0 ? r->raw.wall / r->visible : -1)
GET(g_hs_wall, r->hs.wall)
GET(g_hs_cpu, r->hs.seed_cpu * 1e6)
GET(g_hs_client, r->hs.client_cpu * 1e6)
GET(g_hs_ratio, r->hs.wall > 0 && r->raw.wall > 0 ? r->raw.wall / r->hs.wall : -1)
GET(g_close_wall, r->raw_close.wall)
GET(g_lean_wall, r->lean.wall > 0 ? r->lean.wall : -1)
GET(g_lean_seed, r->lean.wall > 0 ? r->lean.seed_cpu * 1e6 : -1)
GET(g_lean_client, r->lean.wall > 0 ? r->lean.client_cpu * 1e6 : -1)
GET(g_lean_ratio, r->lean.wall > 0 && r->raw_close.wall > 0 ? r->raw_close.wall / r->lean.wall : -1)
GET(g_close_cpu, r->raw_close.server_cpu * 1e6)
GET(g_hs_close_ratio, r->hs.wall > 0 && r->raw_close.wall > 0 ? r->raw_close.wall / r->hs.wall : -1)
GET(g_shape_wall, r->shape.wall)
GET(g_shape_cpu, r->shape.server_cpu * 1e6)
GET(g_shape_client, r->shape.client_cpu * 1e6)
GET(g_shape_ratio, r->hs.wall > 0 && r->shape.wall > 0 ? r->shape.wall / r->hs.wall : -1)
GET(g_shape_floor, r->raw.wall > 0 && r->shape.wall > 0 ? r->raw.wall / r->shape.wall : -1)
GET(g_shape_above, r->hs.seed_cpu > 0 && r->shape.wall > 0 ? (r->hs.seed_cpu - r->shape.server_cpu) * 1e6 : -1)
GET(g_tokens_us, g_tokens * 1e6)
GET(g_floor, r->shape.wall > 0 && g_tokens > 0 ? (r->shape.server_cpu + g_tokens) * 1e6 : -1)
GET(g_above_floor, r->shape.wall > 0 && g_tokens > 0 && r->cpu_join > 0
                       ? (r->cpu_join - r->shape.server_cpu - g_tokens) * 1e6 : -1)
GET(g_cpu_ratio, r->raw.server_cpu > 0 ? r->cpu_join / r->raw.server_cpu : -1)
GET(g_find0, r->find0)
GET(g_find1, r->find1)
GET(g_find_ratio, r->find0 > 0 && r->find1 > 0 ? r->find1 / r->find0 : -1)
GET(g_fam0, r->fam0)
GET(g_fam1, r->fam1)
GET(g_fam_ratio, r->fam0 > 0 && r->fam1 > 0 ? r->fam1 / r->fam0 : -1)
GET(g_nwatch, (double)r->nwatch)
GET(g_fan, r->fan)
GET(g_fan_cpu, r->fan_cpu)
GET(g_fan_raw, r->fan_raw)
GET(g_fan_raw_cpu, r->fan_raw_cpu)
GET(g_back_up, r->back_up)
GET(g_back_whole, r->back_whole)
GET(g_back_evicted, (double)r->back_evicted)

/* The two auth tokens a seed computes per join (its own, and the one it
 * expects from the joiner: HMAC-SHA3-512 over both greetings, of their
 * sizes on the wire, with the secret's key made ready once, as a node
 * does), CPU per join in seconds: the crypto the protocol itself asks
 * for, which with the five lines' kernel work is a join's floor. */
static double tokens_cpu(void)
{
    char a[256], b[256];
    size_t srv = shape_script.srv_first - 2, cli = shape_script.cli_first - 2;
    if (srv >= sizeof a || cli >= sizeof b) die("greeting sizes");
    memset(a, 'a', srv);
    memset(b, 'b', cli);
    /* each greeting is two lines; ours first in our token, the
     * joiner's first in the one we check */
    const char *ol[4] = {a, a + srv / 2, b, b + cli / 2}, *pl[4] = {b, b + cli / 2, a, a + srv / 2};
    const size_t on[4] = {srv / 2, srv - srv / 2, cli / 2, cli - cli / 2},
                 pn[4] = {cli / 2, cli - cli / 2, srv / 2, srv - srv / 2};
    aemp__piece_t own[8], peer[8];
    token_pieces(own, ol, on);
    token_pieces(peer, pl, pn);
    aemp__hmac_sha3_t *k = aemp__hmac_sha3_new("a bench's secret", 16);
    if (!k) die("aemp__hmac_sha3_new");
    unsigned char d[AEMP__SHA3_512_BYTES];
    volatile unsigned char sink = 0; /* keeps the digests used */
    long rounds_done = 0;
    double c0 = cpu_now();
    while (cpu_now() - c0 < 0.2) {
        for (int i = 0; i < 100; i++) {
            if (aemp__hmac_sha3_mac(k, own, 8, d) || aemp__hmac_sha3_mac(k, peer, 8, d))
                die("aemp__hmac_sha3_mac");
            sink ^= d[0];
        }
        rounds_done += 100;
    }
    double per = (cpu_now() - c0) / (double)rounds_done;
    aemp__hmac_sha3_free(k);
    (void)sink;
    return per;
}

static int ok_cpu(const result_t *r) { return r->cpu_join * 1e6 <= 25; }
static int ok_visible(const result_t *r) { return r->visible >= 0 && r->visible <= 1.5; }
static int ok_evicted(const result_t *r) { return r->evicted == 0; }
static int ok_rss(const result_t *r) { return r->rss_node <= 3; }
static int ok_rate(const result_t *r) { return g_hs_close_ratio(r) >= 0.5; }
static int ok_find(const result_t *r) { return g_find_ratio(r) > 0 && g_find_ratio(r) <= 2; }
static int ok_fam(const result_t *r) { return g_fam_ratio(r) > 0 && g_fam_ratio(r) <= 2; }
static int ok_back(const result_t *r) { return r->back_up >= 0 && r->back_whole >= 0; }
static int ok_fan(const result_t *r) { return r->nwatch < WATCHERS || (r->fan >= 0 && r->fan <= 5); }

static void loadavg(char *buf, size_t n)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a = -1, b = -1, c = -1;
    if (!f || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3) a = b = c = -1;
    if (f) fclose(f);
    snprintf(buf, n, "%.2f %.2f %.2f", a, b, c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    double scale = 1.0;
    if (getenv("BENCH_JOIN_MAX_HANDSHAKES"))
        seed_max_handshakes = (unsigned)atol(getenv("BENCH_JOIN_MAX_HANDSHAKES"));
    if (getenv("BENCH_JOIN_ROUNDS")) rounds = atoi(getenv("BENCH_JOIN_ROUNDS"));
    if (rounds < 1 || rounds > MAX_ROUNDS) rounds = ROUNDS;
    const char *sc = getenv("BENCH_SCALE");
    if (sc && atof(sc) > 0) scale = atof(sc);
    long ns[MAX_RUNS];
    int nr = 0;
    const char *list = getenv("BENCH_JOIN_N");
    if (list && *list) {
        for (const char *p = list; *p && nr < MAX_RUNS; p += strcspn(p, ","), p += *p == ',')
            if (atol(p) > 0) ns[nr++] = atol(p);
    } else {
        ns[nr++] = (long)(1000 * scale);
        ns[nr++] = (long)(10000 * scale);
    }
    long biggest = 0;
    for (int i = 0; i < nr; i++) {
        if (ns[i] < 10) ns[i] = 10;
        if (ns[i] > biggest) biggest = ns[i];
    }
    /* the joiners: a listener and a link per node, and a few more; where
     * the limit does not allow that, the last joiners have no listener */
    long fds = raise_nofile(2 * biggest + 100);
    joiner_fds = fds - 100;
    for (int i = 0; i < nr; i++) {
        if (ns[i] > joiner_fds) {
            printf("descriptor limit %ld: N=%ld cut to %ld (one descriptor per joiner at least)\n",
                   fds, ns[i], joiner_fds);
            ns[i] = joiner_fds;
        }
        if (with_listener(ns[i]) < ns[i])
            printf("descriptor limit %ld: at N=%ld the last %ld joiners have no listener of their "
                   "own (one descriptor each, not two)\n",
                   fds, ns[i], ns[i] - with_listener(ns[i]));
    }
    char load0[64], load1[64];
    loadavg(load0, sizeof load0);
    double t_all = now();
    result_t rs[MAX_RUNS];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < nr; i++) {
        rs[i].n = ns[i];
        storm(&rs[i]);
        char tag[32];
        snprintf(tag, sizeof tag, "handshakes %ld", ns[i]);
        phase(tag, DEADLINE + 30);
        for (int t = 0; t < STORM_TRIES; t++) {
            hs_result_t x = hs_storm(ns[i]);
            if (x.wall > 0 && (rs[i].hs.wall <= 0 || x.wall < rs[i].hs.wall)) rs[i].hs = x;
            x = lean_storm(ns[i]);
            if (x.wall > 0 && (rs[i].lean.wall <= 0 || x.wall < rs[i].lean.wall)) rs[i].lean = x;
        }
    }
    alarm(0);
    g_tokens = tokens_cpu();
    loadavg(load1, sizeof load1);

    printf("libaemp %s join storm: N protocol-1 nodes join one C seed at once, each registering "
           "one port;\nseed, joiners and watcher in three processes on loopback (and an empty seed "
           "beside them), %ld CPUs online, descriptors %ld\nload average before %s, after %s%s\n\n",
           aemp_version(), sysconf(_SC_NPROCESSORS_ONLN), fds, load0, load1,
           scale != 1.0 ? "; BENCH_SCALE shrank N" : "");
    printf("%-46s", "N");
    for (int i = 0; i < nr; i++) printf(" %14ld", rs[i].n);
    printf("   %-18s\n", "target");
    row("all N visible to the watcher (s)", rs, nr, g_visible, 3, "<= 1.5", ok_visible);
    row("  joiners made and started their nodes (s)", rs, nr, g_made, 3, "", NULL);
    row("  every joiner's link to the seed up (s)", rs, nr, g_up, 3, "", NULL);
    row("seed CPU per join (us)", rs, nr, g_cpu_join, 1, "<= 25", ok_cpu);
    row("  of which in the kernel (us)", rs, nr, g_sys_join, 1, "", NULL);
    row("  joiners' CPU per join, client side (us)", rs, nr, g_joiner_cpu, 1, "", NULL);
    row("seed RSS per joined node (KiB)", rs, nr, g_rss_node, 2, "<= 3", ok_rss);
    row("  seed heap per joined node (B)", rs, nr, g_heap_node, 0, "", NULL);
    row("links closed: \"" EVICTED "\"", rs, nr, g_evicted, 0, "0", ok_evicted);
    row("raw TCP: N connected + request/reply (s)", rs, nr, g_raw_wall, 3, "", NULL);
    row("  raw server CPU per connection (us)", rs, nr, g_raw_cpu, 1, "", NULL);
    row("  raw clients' CPU per connection (us)", rs, nr, g_raw_client, 1, "", NULL);
    row("  raw server RSS per connection (KiB)", rs, nr, g_raw_rss, 2, "", NULL);
    row("joins/s vs raw connections/s", rs, nr, g_rate_ratio, 3, "", NULL);
    row("N handshakes at once, nodes made before (s)", rs, nr, g_hs_wall, 3, "", NULL);
    row("  seed CPU per handshake (us)", rs, nr, g_hs_cpu, 1, "", NULL);
    row("    of which in the kernel (us)", rs, nr, g_hs_sys, 1, "", NULL);
    row("  clients' CPU per handshake (us)", rs, nr, g_hs_client, 1, "", NULL);
    row("raw TCP: N connect + request/reply + close (s)", rs, nr, g_close_wall, 3, "", NULL);
    row("  its server's CPU per connection (us)", rs, nr, g_close_cpu, 1, "", NULL);
    row("handshakes/s vs connect + request/reply + close", rs, nr, g_hs_close_ratio, 3, ">= 0.5", ok_rate);
    row("handshakes/s vs connections kept open", rs, nr, g_hs_ratio, 3, "", NULL);
    row("N handshakes from lean clients (s)", rs, nr, g_lean_wall, 3, "", NULL);
    row("  seed CPU per handshake (us)", rs, nr, g_lean_seed, 1, "", NULL);
    row("  lean clients' CPU per handshake (us)", rs, nr, g_lean_client, 1, "", NULL);
    row("  vs connect + request/reply + close", rs, nr, g_lean_ratio, 3, "", NULL);
    row("raw TCP, the join's five lines, no crypto (s)", rs, nr, g_shape_wall, 3, "", NULL);
    row("  its server's CPU per connection (us)", rs, nr, g_shape_cpu, 1, "", NULL);
    row("  its clients' CPU per connection (us)", rs, nr, g_shape_client, 1, "", NULL);
    row("  vs raw connections/s (the protocol's ceiling)", rs, nr, g_shape_floor, 3, "", NULL);
    row("handshakes/s vs the five lines over raw TCP", rs, nr, g_shape_ratio, 3, "", NULL);
    row("seed CPU per handshake above the lines' (us)", rs, nr, g_shape_above, 1, "", NULL);
    row("the join's two auth tokens, HMAC-SHA3-512 (us)", rs, nr, g_tokens_us, 1, "", NULL);
    row("a join's floor: five lines + tokens (us)", rs, nr, g_floor, 1, "", NULL);
    row("seed CPU per join above that floor (us)", rs, nr, g_above_floor, 1, "", NULL);
    row("seed CPU per join vs raw CPU per connection", rs, nr, g_cpu_ratio, 1, "", NULL);
    row("g_find (unknown id), an empty network (us)", rs, nr, g_find0, 0, "", NULL);
    row("g_find (unknown id), N registered (us)", rs, nr, g_find1, 0, "", NULL);
    row("  ratio", rs, nr, g_find_ratio, 2, "<= 2", ok_find);
    row("db_family (one key), an empty network (us)", rs, nr, g_fam0, 0, "", NULL);
    row("db_family (one key), N registered (us)", rs, nr, g_fam1, 0, "", NULL);
    row("  ratio", rs, nr, g_fam_ratio, 2, "<= 2", ok_fam);
    row("watchers of one family (of the N)", rs, nr, g_nwatch, 0, "", NULL);
    row("a change seen by all watchers (ms, median)", rs, nr, g_fan, 2, "<= 5 at 1000", ok_fan);
    row("  seed CPU per change (ms)", rs, nr, g_fan_cpu, 2, "", NULL);
    row("raw TCP: a line to each watcher's socket (ms)", rs, nr, g_fan_raw, 2, "", NULL);
    row("  its server's CPU per fan-out (ms)", rs, nr, g_fan_raw_cpu, 2, "", NULL);
    row("seed restarted: all N linked again (s)", rs, nr, g_back_up, 2, "all back", ok_back);
    row("  the database whole again (s)", rs, nr, g_back_whole, 2, "", NULL);
    row("  links closed by the cap meanwhile", rs, nr, g_back_evicted, 0, "", NULL);
    printf("\nlatencies: medians of %d requests one at a time, to the network of N and to an empty "
           "one beside it in turn; the change: "
           "median of %d, set by the watcher.\nbaseline: N non-blocking connects at once to an "
           "epoll server (backlog %d, as a node's), %zu-byte request, %zu-byte reply, kept "
           "open, or closed after the reply (the issue's baseline: until the server closed all); the raw fan-out: one %d-byte line to each of as many connections (one process "
           "to another), median of as many rounds.\nThe five lines: a protocol-1 join's greetings, auth lines, g_global and g_slave, of "
           "their sizes and in their order (each write one line), with a node's socket options.\nThe raw storms and the handshake storms (C nodes, lean clients): the fastest of %d runs each (a SYN the "
           "full backlog dropped costs 1 s).\nOn a loaded machine wall times grow with the CPU the three processes get; CPU "
           "per join does not. %.0f s in all.\n",
           LAT_N, rounds, AEMP_LISTEN_BACKLOG, sizeof raw_req - 1, sizeof raw_rep - 1, FAN_LINE,
           STORM_TRIES,
           now() - t_all);
    for (int i = 0; i < nr; i++)
        if (rs[i].visible < 0) return 1;
    return 0;
}
