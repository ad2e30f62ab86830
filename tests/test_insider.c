/*
 * test_insider.c - hostile insiders (issue 19): authenticated protocol-1
 * peers that try to stall a global node or make it hold memory. The seed
 * runs in a forked child (its own loop); the attackers and an honest peer
 * are blocking sockets here. While each attack runs, the honest peer asks
 * `time` on a link of its own, and every answer must come within 100 ms
 * (the one timed assertion: the issue demands it). Also: a node id we
 * cannot route is refused on a live link, and our own config refuses one.
 */
#include "test.h"
#include "harness_node.h"
#include "node_int.h" /* AEMP_LOG_BURST, AEMP_LOG_WINDOW */

#include <ev.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char ins_secret[] = "insider secret";

/* A blocking protocol-1 socket authenticated to 127.0.0.1:port as id, or
 * -1; err gets the handshake's error. */
static int p1_connect_auth(int port, const char *id, char *err, size_t errlen)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    unsigned char nonce[AEMP_HS_NONCE_MAX];
    aemp_random_bytes(nonce, sizeof nonce);
    aemp_hs_config_t hc = {.protocol = 1, .noderef = id, .secret = ins_secret,
                           .secret_len = strlen(ins_secret), .nonce = nonce};
    aemp_hs_t *hs = aemp_hs_new(&hc, NULL);
    char buf[8192];
    size_t have = 0, len;
    const void *p;
    while (hs && !(aemp_hs_state(hs) & (AEMP_HS_DONE | AEMP_HS_FAILED))) {
        while ((p = aemp_hs_out(hs, &len)) && len) {
            if (write(fd, p, len) != (ssize_t)len) break;
            aemp_hs_out_ack(hs, len);
        }
        size_t used = have ? aemp_hs_feed(hs, buf, have) : 0;
        memmove(buf, buf + used, have - used);
        have -= used;
        if (used) continue; /* (the engine stops after line 1) */
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r <= 0) break;
        have += (size_t)r;
    }
    while (hs && (p = aemp_hs_out(hs, &len)) && len) {
        if (write(fd, p, len) != (ssize_t)len) break;
        aemp_hs_out_ack(hs, len);
    }
    int ok = hs && (aemp_hs_state(hs) & AEMP_HS_DONE);
    if (err) snprintf(err, errlen, "%s", hs && aemp_hs_error(hs) ? aemp_hs_error(hs) : "");
    aemp_hs_free(hs);
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The seed's log, one line per message, in the file log_fd (-1: none). */
static int log_fd = -1;
static void seed_log(void *ud, int level, const char *msg)
{
    (void)ud;
    if (log_fd >= 0 && level <= AEMP_LOG_WARN) dprintf(log_fd, "%s\n", msg);
}

/* A global node "seed" on 127.0.0.1:port in a child, until killed, with
 * max_peer_memory cap (0: the default), logging to logfd (-1: stderr). */
static pid_t spawn_seed_with(int port, size_t cap, int logfd)
{
    pid_t pid = fork();
    if (pid) return pid;
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
    const char *eps[] = {ep};
    aemp_node_config_t c = {.protocol = 1, .nodeid = "seed", .binds = eps, .nbinds = 1,
                            .seeds = eps, .nseeds = 1, .secret = ins_secret,
                            .secret_len = strlen(ins_secret)};
    c.max_peer_memory = cap;
    if (logfd >= 0) {
        log_fd = logfd;
        c.log = seed_log;
    }
    int err = 0;
    aemp_node_t *n = aemp_node_new(EV_DEFAULT, &c, &err);
    if (!n || aemp_node_start(n)) _exit(1);
    ev_run(EV_DEFAULT, 0);
    _exit(0);
}

static pid_t spawn_seed(int port)
{
    return spawn_seed_with(port, 0, -1);
}

/* Waits up to 5 s for the seed to accept an authenticated link. */
static int seed_link(int port, const char *id)
{
    for (int i = 0; i < 100; i++) {
        int fd = p1_connect_auth(port, id, NULL, 0);
        if (fd >= 0) return fd;
        usleep(50000);
    }
    return -1;
}

/* A seed (max_peer_memory cap, 0: the default) logging to a fresh
 * temporary file (*lfd) on a free port (*port), and an authenticated
 * link of node id to it (*fd, -1 when it failed). */
static pid_t logging_seed(int *lfd, int *port, size_t cap, const char *id, int *fd)
{
    char logpath[] = "/tmp/aemp-insider-log-XXXXXX";
    *fd = -1;
    *lfd = mkstemp(logpath);
    if (*lfd < 0) return -1;
    unlink(logpath);
    *port = free_port();
    pid_t pid = spawn_seed_with(*port, cap, *lfd);
    if (pid > 0) *fd = seed_link(*port, id);
    return pid;
}

/* Stops the seed of logging_seed and closes its log. */
static void seed_stop(pid_t pid, int lfd)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(lfd);
}

/* What an attack writes, and how far it got. */
typedef struct {
    int fd;
    char *buf;
    size_t len, off;
} flood_t;

static void flood_pump(flood_t *f)
{
    while (f->off < f->len) {
        ssize_t w = write(f->fd, f->buf + f->off, f->len - f->off);
        if (w <= 0) return;
        f->off += (size_t)w;
    }
}

/* Drains what the seed sends the attacker (so it never blocks on us). */
static void drain_fd(int fd)
{
    char junk[65536];
    while (read(fd, junk, sizeof junk) > 0) {
    }
}

/* Asks `time` on the honest link for port honest#TAG, calling pump(ctx)
 * while it waits; returns the answer's delay in ms (1e9 when it did not
 * come within 2 s). */
static double time_rtt(int hfd, const char *tag, void (*pump)(void *), void *ctx)
{
    static char in[65536];
    char req[64], want[32];
    snprintf(want, sizeof want, "[\"%s\",", tag);
    snprintf(req, sizeof req, "[\"\",\"time\",\"honest#%s\"]\n", tag);
    double t0 = ev_time();
    if (write(hfd, req, strlen(req)) != (ssize_t)strlen(req)) return 1e9;
    size_t have = 0;
    while (ev_time() - t0 < 2.0) {
        struct pollfd pf = {hfd, POLLIN, 0};
        pump(ctx);
        if (poll(&pf, 1, 1) > 0) {
            ssize_t r = read(hfd, in + have, sizeof in - 1 - have);
            if (r <= 0) return 1e9;
            have += (size_t)r;
            in[have] = 0;
            if (strstr(in, want)) return (ev_time() - t0) * 1000;
            if (have > sizeof in / 2) have = 0;
        }
    }
    return 1e9;
}

/* Calls pump(ctx) every 2 ms for secs. */
static void pump_for(double secs, void (*pump)(void *), void *ctx)
{
    double until = ev_time() + secs;
    while (ev_time() < until) {
        pump(ctx);
        usleep(2000);
    }
}

/* Pushes more of the attack, and takes what the seed sent the attacker
 * (so it never blocks on us). */
static void flood_step(void *ctx)
{
    flood_t *f = ctx;
    flood_pump(f);
    drain_fd(f->fd);
}

/* Sends `time` requests on the honest link, nreq of them spaced over the
 * flood, and returns the slowest answer's delay in ms (1e9 when one did
 * not come within 2 s). */
static double honest_latency(int hfd, flood_t *f, int nreq)
{
    double worst = 0;
    for (int i = 0; i < nreq; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "t%d", i);
        pump_for(0.05, flood_step, f); /* push more attack before each request */
        double ms = time_rtt(hfd, tag, flood_step, f);
        if (ms > worst) worst = ms;
    }
    return worst;
}

static void run_attack(const char *what, char *buf, size_t len, const char *evil_id)
{
    int port = free_port();
    pid_t pid = spawn_seed(port);
    REQUIRE(pid > 0);
    int efd = seed_link(port, evil_id);
    int hfd = seed_link(port, "honest");
    if (efd < 0 || hfd < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        free(buf);
        REQUIRE(efd >= 0 && hfd >= 0);
    }
    fcntl(efd, F_SETFL, fcntl(efd, F_GETFL) | O_NONBLOCK);
    flood_t f = {efd, buf, len, 0};
    double worst = honest_latency(hfd, &f, 20);
    fprintf(stderr, "    %s: %zu of %zu bytes sent, slowest time answer %.1f ms\n", what, f.off,
            f.len, worst);
    if (worst > 100)
        t_fail(__FILE__, __LINE__, "%s: a time answer took %.1f ms (over 100 ms)", what, worst);
    CHECK(f.off > len / 2); /* the attack really ran */
    close(efd);
    close(hfd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    free(buf);
}

/* Appends text to a growing buffer. */
static void put(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* 100 000 mon1 of the node port, then thousands of mon0: the seed holds
 * at most max_peer_monitors of them and a mon0 costs the same however
 * many there are. */
TEST(insider_monitor_flood_keeps_seed_answering)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (int i = 0; i < 100000; i++) put(&buf, &len, &cap, "[\"\",\"mon1\",\"\"]\n");
    for (int i = 0; i < 5000; i++) put(&buf, &len, &cap, "[\"\",\"mon0\",\"\"]\n");
    REQUIRE(buf != NULL);
    run_attack("mon1 x100k + mon0 x5000", buf, len, "evil-mon");
}

/* head (the request's start, "[\"\",\"g_set\","), then a database
 * naming ng global nodes NAME0.. in 'g and listeners at 127.0.0.1:port
 * for the first nl of them in 'l, as a line. */
static char *claims(const char *head, const char *name, int ng, int nl, int port, size_t *len)
{
    char *buf = NULL, item[128];
    size_t cap = 0;
    *len = 0;
    put(&buf, len, &cap, head);
    put(&buf, len, &cap, "{\"'g\":{");
    for (int i = 0; i < ng; i++) {
        snprintf(item, sizeof item, "%s\"%s%d\":null", i ? "," : "", name, i);
        put(&buf, len, &cap, item);
    }
    put(&buf, len, &cap, "},\"'l\":{");
    for (int i = 0; i < nl; i++) {
        snprintf(item, sizeof item, "%s\"%s%d\":[\"127.0.0.1:%d\"]", i ? "," : "", name, i, port);
        put(&buf, len, &cap, item);
    }
    put(&buf, len, &cap, "}}]\n");
    return buf;
}

/* A fake global node claims as many global nodes as one node may
 * (AEMP_GDB_NODE_GLOBALS_MAX), with 10 000 listener lists at unreachable
 * loopback addresses: the seed dials within its budget and keeps
 * answering. */
TEST(insider_fake_globals_keep_seed_answering)
{
    int dead = free_port(); /* nothing listens there */
    size_t len;
    char *buf = claims("[\"\",\"g_global\"]\n[\"\",\"g_set\",", "fake",
                       AEMP_GDB_NODE_GLOBALS_MAX, 10000, dead, &len);
    REQUIRE(buf != NULL);
    run_attack("g_global + g_set of 256 fake globals, 10000 listeners", buf, len, "evil-global");
}

/* A live link greeting with an id holding '#' is refused with the reason;
 * our own config refuses such an id. */
TEST(insider_unroutable_id_refused_live)
{
    int port = free_port();
    pid_t pid = spawn_seed(port);
    REQUIRE(pid > 0);
    int fd = seed_link(port, "honest");
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    char err[256] = "";
    int bad = p1_connect_auth(port, "evil#seed", err, sizeof err);
    CHECK_INT(bad, -1); /* the seed closes before its auth line */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    const char *ids[] = {"a#b", "", "a\nb", "a\x01", "\xff"};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        aemp_node_config_t c = {.protocol = 1, .nodeid = ids[i], .secret = ins_secret,
                                .secret_len = strlen(ins_secret)};
        int e = 0;
        aemp_node_t *n = aemp_node_new(EV_DEFAULT, &c, &e);
        CHECK(n == NULL);
        CHECK_INT(e, AEMP_EINVAL);
        aemp_node_destroy(n);
    }
}

/* Resident bytes of process pid (/proc/PID/statm), 0 when unknown. */
static size_t rss_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long size = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Whether this binary runs under AddressSanitizer. */
extern void __asan_init(void) __attribute__((weak));
static int under_asan(void)
{
    return __asan_init != NULL;
}

/* Whether the file at fd (from its start) holds s. */
static int file_has(int fd, const char *s, int *count)
{
    static char text[1 << 20];
    ssize_t r = pread(fd, text, sizeof text - 1, 0);
    text[r > 0 ? r : 0] = 0;
    int c = 0;
    for (const char *p = text; (p = strstr(p, s)); p++) c++;
    if (count) *count = c;
    return c > 0;
}

/* Four silent watchers of a big family, each asking for its values
 * again and again and reading nothing, against a seed with a 16 MiB
 * max_peer_memory: the seed cuts the one holding the most with the
 * documented message, an honest link still gets its time answers, and
 * once the attackers are gone the seed's RSS is within 20 MiB of its
 * start. */
TEST(insider_memory_cap_cuts_biggest_and_rss_returns)
{
    int lfd, port, hfd;
    pid_t pid = logging_seed(&lfd, &port, 16u << 20, "honest", &hfd);
    REQUIRE(pid > 0);
    int wfd = seed_link(port, "writer");
    int fds[4];
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof id, "watcher%d", i);
        fds[i] = seed_link(port, id);
    }
    int ok = hfd >= 0 && wfd >= 0 && fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0 && fds[3] >= 0;
    flood_t none = {-1, NULL, 0, 0};
    CHECK(ok && honest_latency(hfd, &none, 3) < 1000);
    size_t rss0 = rss_of(pid);

    /* the writer's family "big": 48 values of 60000 bytes (2.9 MB) */
    char *buf = NULL, *val = malloc(60001);
    size_t len = 0, cap = 0;
    REQUIRE(val != NULL);
    memset(val, 'x', 60000);
    val[60000] = 0;
    put(&buf, &len, &cap, "[\"\",\"g_slave\",{\"big\":{");
    for (int i = 0; i < 48; i++) {
        char k[32];
        snprintf(k, sizeof k, "%s\"k%d\":\"", i ? "," : "", i);
        put(&buf, &len, &cap, k);
        put(&buf, &len, &cap, val);
        put(&buf, &len, &cap, "\"");
    }
    put(&buf, &len, &cap, "}}]\n");
    free(val);
    REQUIRE(buf != NULL);
    if (ok) {
        flood_t w = {wfd, buf, len, 0};
        fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK);
        double until = ev_time() + 5;
        while (w.off < w.len && ev_time() < until) {
            flood_pump(&w);
            drain_fd(wfd);
            usleep(1000);
        }
        CHECK(w.off == w.len);
        usleep(300000);
        /* each watcher asks for the values 20 times (58 MB of replies)
         * and reads none */
        for (int i = 0; i < 4; i++)
            for (int r = 0; r < 20; r++) {
                const char req[] = "[\"\",\"g_db_values\",\"big\",1]\n";
                CHECK(write(fds[i], req, sizeof req - 1) == (ssize_t)(sizeof req - 1));
            }
    }
    size_t peak = 0;
    double until = ev_time() + 10;
    int cuts = 0;
    while (ok && ev_time() < until) {
        size_t r = rss_of(pid);
        if (r > peak) peak = r;
        file_has(lfd, "node memory cap: this peer held the most (", &cuts);
        if (cuts >= 3) break;
        usleep(20000);
    }
    CHECK(cuts >= 1);
    CHECK(file_has(lfd, "watcher", NULL)); /* a watcher was cut, not the writer */
    CHECK(honest_latency(hfd, &none, 3) < 1000);
    /* the attackers go */
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0) close(fds[i]);
    if (wfd >= 0) close(wfd);
    /* time requests keep the seed's loop turning while it settles */
    double worst = honest_latency(hfd, &none, 30);
    CHECK(worst < 1000);
    size_t rss1 = rss_of(pid);
    fprintf(stderr, "    seed RSS: start %.1f MiB, peak %.1f MiB, after %.1f MiB; %d cuts\n",
            rss0 / 1048576.0, peak / 1048576.0, rss1 / 1048576.0, cuts);
    /* (ASan's allocator keeps freed memory in its quarantine, and
     * malloc_trim is not its: under ASan RSS says nothing) */
    if (!under_asan() && rss1 > rss0 + (20u << 20))
        t_fail(__FILE__, __LINE__, "seed RSS %.1f MiB after the attack, %.1f MiB at its start",
               rss1 / 1048576.0, rss0 / 1048576.0);
    if (hfd >= 0) close(hfd);
    seed_stop(pid, lfd);
    free(buf);
}

/* Asks `time` on fd for port ID#tag and waits up to 5 s for its answer:
 * everything fd sent before has been handled then. */
static int sync_link(int fd, const char *id, const char *tag)
{
    char req[128], want[64], in[65536];
    snprintf(req, sizeof req, "[\"\",\"time\",\"%s#%s\"]\n", id, tag);
    snprintf(want, sizeof want, "[\"%s\",", tag);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) return 0;
    size_t have = 0;
    double t0 = ev_time();
    while (ev_time() - t0 < 5.0) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0) continue;
        ssize_t r = read(fd, in + have, sizeof in - 1 - have);
        if (r <= 0) return 0;
        have += (size_t)r;
        in[have] = 0;
        if (strstr(in, want)) return 1;
        if (have > sizeof in / 2) {
            size_t keep = 64 < have ? 64 : have;
            memmove(in, in + have - keep, keep);
            have = keep;
        }
    }
    return 0;
}

/* Writes len bytes of buf (blocking) to fd; how many went. */
static size_t write_all(int fd, const char *buf, size_t len)
{
    size_t off = 0;
    while (buf && off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    return off;
}

/* Sends n mon1 of our node port on fd. */
static void send_mon1(int fd, int n)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (int i = 0; i < n; i++) put(&buf, &len, &cap, "[\"\",\"mon1\",\"\"]\n");
    write_all(fd, buf, len);
    free(buf);
}

/* max_peer_monitors: the 16384 watches of one node are held without a
 * word, the next is refused with the documented warning, and the link
 * stays up (its time requests are answered). */
TEST(insider_monitor_limit_refuses_with_message_link_stays)
{
    int lfd, port, fd;
    pid_t pid = logging_seed(&lfd, &port, 0, "watcher", &fd);
    REQUIRE(pid > 0);
    if (fd >= 0) {
        send_mon1(fd, (int)AEMP_DEFAULT_MAX_PEER_MONITORS);
        CHECK(sync_link(fd, "watcher", "below"));
        CHECK(!file_has(lfd, "mon1: over", NULL)); /* below the limit: all taken */
        send_mon1(fd, 1);
        CHECK(sync_link(fd, "watcher", "over")); /* the link stays */
        char want[128];
        snprintf(want, sizeof want, "watcher: mon1: over %u monitors from this node; refused",
                 AEMP_DEFAULT_MAX_PEER_MONITORS);
        int n = 0;
        CHECK(file_has(lfd, want, &n));
        CHECK_INT(n, 1);
        close(fd);
    }
    CHECK(fd >= 0);
    seed_stop(pid, lfd);
}

/* A peer provoking 1000 identical warnings on a live node: at most
 * AEMP_LOG_BURST such lines in the 10 s window, and the first one of the
 * next window tells how many were held back. */
TEST(insider_warnings_rate_limited_live)
{
    int lfd, port, fd;
    pid_t pid = logging_seed(&lfd, &port, 0, "noisy", &fd);
    REQUIRE(pid > 0);
    if (fd >= 0) {
        send_mon1(fd, (int)AEMP_DEFAULT_MAX_PEER_MONITORS + 1000);
        CHECK(sync_link(fd, "noisy", "a"));
        int n = 0;
        file_has(lfd, "noisy: mon1: over", &n);
        CHECK(n >= 1 && n <= (int)AEMP_LOG_BURST);
        CHECK(!file_has(lfd, "more like this", NULL));
        usleep((useconds_t)(AEMP_LOG_WINDOW * 1e6) + 300000);
        send_mon1(fd, 1);
        CHECK(sync_link(fd, "noisy", "b"));
        char want[128];
        snprintf(want, sizeof want, "... and %d more like this in the last 10 s", 1000 - n);
        CHECK(file_has(lfd, want, NULL));
        file_has(lfd, "noisy: mon1: over", &n);
        CHECK(n <= (int)AEMP_LOG_BURST + 1);
        close(fd);
    }
    CHECK(fd >= 0);
    seed_stop(pid, lfd);
}

/* A listener on 127.0.0.1 that takes every connection and never answers:
 * each accept is one dial of the seed (its handshake waits there). */
typedef struct {
    int lfd;
    int port;
    int accepted;
    int refuse;     /* close each connection at once: every dial fails */
    int fds[1024];
    int nfds;
} sink_t;

static int sink_open(sink_t *s)
{
    memset(s, 0, sizeof *s);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) || listen(s->lfd, 1024) ||
        getsockname(s->lfd, (struct sockaddr *)&sa, &sl))
        return -1;
    s->port = ntohs(sa.sin_port);
    return 0;
}

static void sink_pump(sink_t *s)
{
    int fd;
    while ((fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        s->accepted++;
        if (!s->refuse && s->nfds < (int)(sizeof s->fds / sizeof *s->fds)) s->fds[s->nfds++] = fd;
        else close(fd);
    }
}

/* How many of the held connections the seed has closed. */
static int sink_closed(sink_t *s)
{
    int closed = 0;
    for (int i = 0; i < s->nfds; i++) {
        char c[256];
        ssize_t r = read(s->fds[i], c, sizeof c);
        while (r > 0) r = read(s->fds[i], c, sizeof c);
        if (r == 0) closed++;
    }
    return closed;
}

static void sink_close(sink_t *s)
{
    for (int i = 0; i < s->nfds; i++) close(s->fds[i]);
    if (s->lfd >= 0) close(s->lfd);
}

static void sink_step(void *ctx)
{
    sink_pump(ctx);
}

/* For secs: a `time` request on the honest link every ~50 ms, the sink
 * pumped meanwhile; returns the slowest answer in ms (1e9: none in 2 s). */
static double honest_while_sinking(int hfd, sink_t *s, double secs)
{
    static int seq;
    double worst = 0, end = ev_time() + secs;
    while (ev_time() < end) {
        char tag[32];
        snprintf(tag, sizeof tag, "s%d", seq++);
        double ms = time_rtt(hfd, tag, sink_step, s);
        if (ms > worst) worst = ms;
        pump_for(0.05, sink_step, s);
    }
    return worst;
}

/* A seed, a claimant's link (which sent the claims whole) and an honest
 * link beside it. */
typedef struct claimed {
    pid_t pid;
    int efd, hfd;
} claimed_t;

/* Starts them (the claimant greets as id) and sends buf: 1 when both
 * links are up (pid 0 or less: no seed). */
static int claimed_start(claimed_t *c, const char *id, char *buf, size_t len)
{
    int port = free_port();
    c->efd = c->hfd = -1;
    if ((c->pid = spawn_seed(port)) <= 0) return 0;
    c->efd = seed_link(port, id);
    c->hfd = seed_link(port, "honest");
    if (c->efd < 0 || c->hfd < 0) return 0;
    flood_t f = {c->efd, buf, len, 0};
    flood_pump(&f);
    CHECK(f.off == f.len);
    return 1;
}

static void claimed_end(claimed_t *c, sink_t *s, char *buf)
{
    if (c->efd >= 0) close(c->efd);
    if (c->hfd >= 0) close(c->hfd);
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    sink_close(s);
    free(buf);
}

/* A fake global node claims 256 global nodes, all at one loopback
 * address that takes connections and never answers. While it is there
 * the seed dials them within its budget (MESH_DIALS_PER_S, 20 a second
 * after a burst of as many); once it has gone the seed forgets them: it
 * drops the dials in flight and starts no new one. The honest link's
 * time answers come within 100 ms throughout. */
static void mesh_claims(int refuse)
{
    enum { FAKES = AEMP_GDB_NODE_GLOBALS_MAX };
    const double dials_per_s = 20, phase = refuse ? 5.0 : 3.0;
    sink_t s;
    REQUIRE(sink_open(&s) == 0);
    s.refuse = refuse;
    size_t len;
    char *buf = claims("[\"\",\"g_global\"]\n[\"\",\"g_set\",", "claimed", FAKES, FAKES, s.port,
                       &len);
    REQUIRE(buf != NULL);

    claimed_t c;
    int up = claimed_start(&c, "evil-claimant", buf, len);
    REQUIRE(c.pid > 0);
    if (up) {
        double t0 = ev_time();
        double worst = honest_while_sinking(c.hfd, &s, phase);
        double took = ev_time() - t0;
        int during = s.accepted;
        /* the budget: a burst, then the rate (slack: the seed's first
         * dials and the time the g_set took to arrive) */
        double allowed = dials_per_s + dials_per_s * took + 5;
        fprintf(stderr, "    %d dials in %.1f s while the claimant was there (budget %.0f)\n",
                during, took, allowed);
        CHECK(during >= 10); /* the claims were taken: it dialled */
        if (during > allowed)
            t_fail(__FILE__, __LINE__, "%d dials in %.1f s: over the dial budget", during, took);

        close(c.efd);
        c.efd = -1;
        double gone = ev_time();
        double worst2 = honest_while_sinking(c.hfd, &s, 2.0);
        int settled = s.accepted, dropped = sink_closed(&s);
        double worst3 = honest_while_sinking(c.hfd, &s, 2.0);
        int after = s.accepted - settled;
        dropped = sink_closed(&s) > dropped ? sink_closed(&s) : dropped;
        fprintf(stderr,
                "    claimant gone: %d more dials in the first 2 s, %d in the next 2 s; "
                "%d of %d held dials dropped by the seed (%.1f s)\n",
                settled - during, after, dropped, s.nfds, ev_time() - gone);
        CHECK_INT(after, 0);
        CHECK_INT(dropped, s.nfds);
        if (worst2 > worst) worst = worst2;
        if (worst3 > worst) worst = worst3;
        fprintf(stderr, "    slowest time answer %.1f ms\n", worst);
        if (worst > 100)
            t_fail(__FILE__, __LINE__, "a time answer took %.1f ms (over 100 ms)", worst);
    }
    CHECK(c.efd >= 0 || c.hfd >= 0);
    claimed_end(&c, &s, buf);
}

TEST(insider_mesh_forgets_claimed_globals_when_claimant_goes)
{
    mesh_claims(0);
}

/* A slave (it never says g_global) names global nodes in its own
 * database, with listeners at an address we watch: they are in the
 * seed's view (2.02's answers), but the seed dials none of them - only
 * its own share and global peers' name the nodes it keeps links to.
 * Before, every 'g key of the view was dialled. */
TEST(insider_slave_claimed_globals_not_dialled)
{
    sink_t s;
    REQUIRE(sink_open(&s) == 0);
    size_t len;
    char *buf = claims("[\"\",\"g_slave\",", "claimed", 20, 20, s.port, &len);
    REQUIRE(buf != NULL);
    claimed_t c;
    int up = claimed_start(&c, "claiming-slave", buf, len);
    REQUIRE(c.pid > 0);
    if (up) {
        double worst = honest_while_sinking(c.hfd, &s, 2.0);
        fprintf(stderr, "    %d dials in 2 s to 20 global nodes a slave named\n", s.accepted);
        CHECK_INT(s.accepted, 0);
        if (worst > 100) t_fail(__FILE__, __LINE__, "a time answer took %.1f ms", worst);
    }
    CHECK(c.efd >= 0 && c.hfd >= 0);
    claimed_end(&c, &s, buf);
}

/* The same with an address that takes each connection and closes it at
 * once: a failed dial is not tried again by the node's own connect
 * rounds (every connect_interval until connect_timeout), only by the
 * mesh's back-off within the budget. */
TEST(insider_mesh_failed_dials_stay_within_the_budget)
{
    mesh_claims(1);
}

/* Lines of text repeated: fmt (one %d, the line's number modulo mod)
 * n times. */
static char *repeat_lines(const char *fmt, int n, int mod, size_t *len)
{
    char *buf = NULL, line[256];
    size_t cap = 0;
    *len = 0;
    for (int i = 0; i < n; i++) {
        snprintf(line, sizeof line, fmt, i % mod);
        put(&buf, len, &cap, line);
    }
    return buf;
}

/* A slave writing its database as fast as it can, within the per-node
 * limits (2000 keys over and over, 5 MB), and watching the family so each
 * write also sends it a g_chg2. */
TEST(insider_g_upd_flood_keeps_seed_answering)
{
    size_t len;
    char *buf = repeat_lines("[\"\",\"g_upd\",\"flood\",{\"k%d\":[1,2,3]},[]]\n", 120000, 2000, &len);
    REQUIRE(buf != NULL);
    char *all = malloc(len + 64);
    REQUIRE(all != NULL);
    int hl = snprintf(all, 64, "[\"\",\"g_mon1\",\"flood\"]\n");
    memcpy(all + hl, buf, len + 1);
    free(buf);
    run_attack("g_mon1 + g_upd x120000 (2000 keys)", all, (size_t)hl + len, "evil-upd");
}

/* A fake global node replacing its whole share again and again: 150
 * g_set of 1000 keys each (a share within AEMP_GDB_NODE_KEYS_MAX). */
TEST(insider_g_set_flood_keeps_seed_answering)
{
    char *buf = NULL, item[64];
    size_t len = 0, cap = 0;
    put(&buf, &len, &cap, "[\"\",\"g_global\"]\n");
    for (int r = 0; r < 150; r++) {
        put(&buf, &len, &cap, "[\"\",\"g_set\",{\"flood\":{");
        for (int i = 0; i < 1000; i++) {
            snprintf(item, sizeof item, "%s\"k%d\":%d", i ? "," : "", (r * 7 + i) % 3000, r);
            put(&buf, &len, &cap, item);
        }
        put(&buf, &len, &cap, "}}]\n");
    }
    REQUIRE(buf != NULL);
    run_attack("g_global + g_set x150 (1000 keys each)", buf, len, "evil-set");
}

/* Requests whose answers the seed sends to its own node port (time and
 * can naming "seed"): each comes back as the attacker's g_upd. */
TEST(insider_reflection_flood_keeps_seed_answering)
{
    char *buf = NULL;
    size_t len = 0, cap = 0, l1, l2;
    char *t = repeat_lines("[\"\",\"time\",\"seed\",\"g_upd\",\"refl\",{\"t%d\":1},[]]\n", 60000, 1000, &l1);
    char *c = repeat_lines("[\"\",\"can\",\"time\",\"seed\",\"g_upd\",\"refl\",{\"c%d\":1},[]]\n", 60000, 1000, &l2);
    REQUIRE(t && c);
    put(&buf, &len, &cap, t);
    put(&buf, &len, &cap, c);
    free(t);
    free(c);
    run_attack("time x60000 + can x60000 answered to the seed itself", buf, len, "evil-refl");
}

/* Requests the seed must drop with a warning (unknown tags, wrong
 * shapes): the warnings are rate-limited, the seed keeps answering. */
TEST(insider_warning_flood_keeps_seed_answering)
{
    static const char *const bad[] = {
        "[\"\",\"no-such-request%d\"]\n", "[\"\",\"mon1\",%d]\n", "[\"\",\"g_upd\",%d,2,3]\n",
        "[\"\",\"kil1\",{\"x\":%d}]\n", "[\"\",\"time\",%d]\n", "[\"\",\"g_find\",[%d]]\n",
    };
    char *buf = NULL, line[128];
    size_t len = 0, cap = 0;
    for (int i = 0; i < 180000; i++) {
        snprintf(line, sizeof line, bad[i % 6], i);
        put(&buf, &len, &cap, line);
    }
    REQUIRE(buf != NULL);
    run_attack("180000 invalid requests", buf, len, "evil-warn");
}

/* Half-open handshakes: connections that send part of a greeting and
 * then nothing; one the seed closes is opened again at once. */
typedef struct {
    int port, n, reopened;
    int *fds;
    double pumped;
} loris_t;

static int loris_open(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    /* loopback: the connect completes at once (or is in the backlog) */
    connect(fd, (struct sockaddr *)&sa, sizeof sa);
    static const char part[] = "aemp;1;slow";
    if (write(fd, part, sizeof part - 1) < 0) {
    } /* may fail while connecting: silent is fine too */
    return fd;
}

static void loris_step(void *ctx)
{
    loris_t *l = ctx;
    if (ev_time() - l->pumped < 0.02) return;
    l->pumped = ev_time();
    for (int i = 0; i < l->n; i++) {
        char junk[4096];
        ssize_t r = l->fds[i] >= 0 ? read(l->fds[i], junk, sizeof junk) : 0;
        if (r > 0 || (r < 0 && (errno == EAGAIN || errno == ENOTCONN))) continue;
        if (l->fds[i] >= 0) close(l->fds[i]);
        l->fds[i] = loris_open(l->port);
        l->reopened++;
    }
}

/* count half-open handshakes held against the seed (kept so by opening
 * again what it closes) while the honest link asks time; then a new
 * peer must still get in. */
static void run_slowloris(int count)
{
    int port = free_port();
    pid_t pid = spawn_seed(port);
    REQUIRE(pid > 0);
    int hfd = seed_link(port, "honest");
    loris_t l = {port, count, 0, calloc((size_t)count, sizeof(int)), 0};
    REQUIRE(l.fds != NULL);
    for (int i = 0; i < count; i++) l.fds[i] = loris_open(port);
    l.reopened = 0;
    double worst = 1e9, join_s = -1;
    if (hfd >= 0) {
        worst = 0;
        for (int i = 0; i < 40; i++) {
            char tag[32];
            snprintf(tag, sizeof tag, "l%d", i);
            pump_for(0.05, loris_step, &l);
            double ms = time_rtt(hfd, tag, loris_step, &l);
            if (ms > worst) worst = ms;
        }
        /* a newcomer during the attack */
        double t0 = ev_time();
        int nfd = -1;
        for (int i = 0; i < 60 && nfd < 0; i++) {
            loris_step(&l);
            nfd = p1_connect_auth(port, "newcomer", NULL, 0);
            if (nfd < 0) pump_for(0.05, loris_step, &l);
        }
        if (nfd >= 0) {
            join_s = ev_time() - t0;
            close(nfd);
        }
    }
    fprintf(stderr,
            "    %d half-open handshakes (%d closed by the seed and opened again): slowest time "
            "answer %.1f ms, a new peer got in after %.2f s\n",
            count, l.reopened, worst, join_s);
    if (worst > 100)
        t_fail(__FILE__, __LINE__, "a time answer took %.1f ms (over 100 ms)", worst);
    CHECK(join_s >= 0);
    for (int i = 0; i < count; i++)
        if (l.fds[i] >= 0) close(l.fds[i]);
    free(l.fds);
    if (hfd >= 0) close(hfd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Below max_handshakes: all held, nothing closed yet. */
TEST(insider_slowloris_below_handshake_cap)
{
    run_slowloris((int)AEMP_DEFAULT_MAX_HANDSHAKES - 64);
}

/* Over max_handshakes: the oldest silent ones are closed to make room,
 * again and again, and a new peer still gets in. */
TEST(insider_slowloris_over_handshake_cap)
{
    run_slowloris((int)AEMP_DEFAULT_MAX_HANDSHAKES + 300);
}

/* Ids no 2.02 node could route to or we could log, each greeted on a
 * live link of its own: the seed closes it without an auth line and logs
 * the documented reason (aemp.h, AEMP_NODEID_MAX); an honest link stays. */
/* Asks `time` on fd (as sync_link) and returns what arrived until its
 * answer (up to 1 MiB, a static buffer), or NULL when it did not come. */
static const char *read_until_synced(int fd, const char *id)
{
    char req[128];
    static char in[1 << 20];
    snprintf(req, sizeof req, "[\"\",\"time\",\"%s#sync\"]\n", id);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) return NULL;
    size_t have = 0;
    double t0 = ev_time();
    while (ev_time() - t0 < 5.0 && have < sizeof in - 1) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0) continue;
        ssize_t r = read(fd, in + have, sizeof in - 1 - have);
        if (r <= 0) return NULL;
        have += (size_t)r;
        in[have] = 0;
        if (strstr(in, "[\"sync\",")) return in;
    }
    return NULL;
}

/* Writes the line to fd and reads until a `time` answer (as
 * read_until_synced): what came, or NULL. */
static const char *say_synced(int fd, const char *line, const char *id)
{
    write_all(fd, line, strlen(line));
    return read_until_synced(fd, id);
}

/* How many messages tagged tag arrived on fd before a `time` answer; -1
 * when it did not come. */
static int count_until_synced(int fd, const char *id, const char *tag)
{
    const char *in = read_until_synced(fd, id);
    char needle[64];
    snprintf(needle, sizeof needle, "[\"\",\"%s\"", tag);
    int count = 0;
    for (const char *p = in; p && (p = strstr(p, needle)); p += strlen(needle)) count++;
    return in ? count : -1;
}

/* g_global is answered with the whole database once per link: a peer
 * that says it again on the same link gets nothing more (each answer is a
 * walk of the database), and on a new link it is answered again. */
TEST(insider_repeated_g_global_answered_once_per_link)
{
    int lfd, port, fd;
    pid_t pid = logging_seed(&lfd, &port, 0, "again", &fd);
    REQUIRE(pid > 0);
    REQUIRE(fd >= 0);
    size_t len = 0;
    char *buf = repeat_lines("[\"\",\"g_global\"]\n", 300, 1, &len);
    REQUIRE(buf != NULL);
    size_t off = write_all(fd, buf, len);
    free(buf);
    CHECK(off == len);
    int sets = count_until_synced(fd, "again", "g_set");
    printf("    300 g_global on one link: %d g_set in answer\n", sets);
    CHECK(sets == 1);
    int repeats = 0;
    CHECK(file_has(lfd, "again: g_global again on the same link, ignored", &repeats));
    CHECK(repeats == 1);
    close(fd);
    /* a new link of the same node is answered anew */
    fd = seed_link(port, "again");
    CHECK(fd >= 0);
    if (fd >= 0) {
        const char *gg = "[\"\",\"g_global\"]\n";
        CHECK(write(fd, gg, strlen(gg)) == (ssize_t)strlen(gg));
        sets = count_until_synced(fd, "again", "g_set");
        printf("    on a new link: %d g_set\n", sets);
        CHECK(sets == 1);
        close(fd);
    }
    seed_stop(pid, lfd);
}

/* n peers each send a g_set whose 'l names a 65000-byte "listener",
 * after a g_global (say_global) or without one. Returns how many
 * connected; their sockets go to fds. */
static int big_listeners(int port, const char *prefix, int n, int say_global, int *fds)
{
    size_t big = 65000;
    char *msg = malloc(big + 256), id[32];
    int ok = 0;
    for (int i = 0; msg && i < n; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        if ((fds[i] = p1_connect_auth(port, id, NULL, 0)) < 0) continue;
        ok++;
        int k = snprintf(msg, 256, "%s[\"\",\"g_set\",{\"'l\":{\"%s\":[\"",
                         say_global ? "[\"\",\"g_global\"]\n" : "", id);
        memset(msg + k, 'x', big);
        strcpy(msg + k + big, "\"]}}]\n");
        write_all(fds[i], msg, strlen(msg));
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    }
    free(msg);
    return ok;
}

/* A global node "late-global" links (*gfd) and says g_global: whether
 * the seed answered it and recorded it in 'g (asked on the link hfd of
 * "honest") - a write of the seed's own. */
static int late_global_recorded(int port, int hfd, int *gfd)
{
    if ((*gfd = seed_link(port, "late-global")) < 0) return 0;
    const char *gg = "[\"\",\"g_global\"]\n";
    if (write(*gfd, gg, strlen(gg)) != (ssize_t)strlen(gg) ||
        count_until_synced(*gfd, "late-global", "g_set") != 1)
        return 0;
    const char *q = "[\"\",\"g_db_keys\",\"'g\",\"q1\"]\n";
    if (write(hfd, q, strlen(q)) != (ssize_t)strlen(q)) return 0;
    const char *in = read_until_synced(hfd, "honest");
    const char *keys = in ? strstr(in, "\"q1\"") : NULL;
    return keys && strstr(keys, "late-global");
}

/* 2.02 copies the listeners of every g_set's sender into the seed's own
 * database, whose limits also hold the seed's own writes (its 'g entry
 * for each global node): 64 peers with a 64 KB "listener" each would
 * fill it. Mirrored here are only the listeners of a node that said
 * g_global on its link, and only a list of addresses of a node's size:
 * after 2 x 70 such peers the seed still records a global node that
 * arrives. */
TEST(insider_mirrored_listeners_cannot_fill_the_seeds_own_share)
{
    int lfd, port, hfd;
    pid_t pid = logging_seed(&lfd, &port, 0, "honest", &hfd);
    REQUIRE(pid > 0);
    REQUIRE(hfd >= 0);
    enum { N = 70 };
    static int plain[N], claim[N];
    CHECK(big_listeners(port, "p", N, 0, plain) == N);
    CHECK(big_listeners(port, "c", N, 1, claim) == N);
    int gfd = -1, late = late_global_recorded(port, hfd, &gfd);
    printf("    'g keys after %d big listener lists: %s\n", 2 * N,
           late ? "late-global among them" : "late-global missing");
    CHECK(late);
    int warned = 0;
    CHECK(file_has(lfd, "its listeners are not mirrored", &warned));
    printf("    not mirrored, with a warning: %d (of the %d that said g_global)\n", warned, N);
    CHECK(warned > 0 && warned <= N);
    CHECK(!file_has(lfd, "would hold", NULL)); /* no write of the seed refused */
    for (int i = 0; i < N; i++) {
        if (plain[i] >= 0) close(plain[i]);
        if (claim[i] >= 0) close(claim[i]);
    }
    close(gfd);
    close(hfd);
    seed_stop(pid, lfd);
}

/* A node that says g_global and sets the largest listener list that is
 * mirrored (64 addresses of 250 bytes, ~16 KB), then syncs with the
 * seed (which also drains what the seed sent it). fd, or -1. */
static int mirror_peer(int port, const char *id)
{
    int fd = p1_connect_auth(port, id, NULL, 0);
    if (fd < 0) return -1;
    static char msg[64 * 254 + 256];
    size_t k = (size_t)snprintf(msg, 256, "[\"\",\"g_global\"]\n[\"\",\"g_set\",{\"'l\":{\"%s\":[", id);
    for (int i = 0; i < 64; i++) {
        if (i) msg[k++] = ',';
        msg[k++] = '"';
        memset(msg + k, 'a' + i % 26, 250);
        k += 250;
        msg[k++] = '"';
    }
    k += (size_t)snprintf(msg + k, 16, "]}}]\n");
    write_all(fd, msg, k);
    read_until_synced(fd, id);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* The next such node, after the others read what the seed sent them (its
 * updates of 'l): nothing waits queued for them at the seed. */
static int mirror_peer_next(int port, int *fds, int i)
{
    char id[32];
    for (int j = 0; j < i; j++)
        if (fds[j] >= 0) drain_fd(fds[j]);
    snprintf(id, sizeof id, "m%d", i);
    return fds[i] = mirror_peer(port, id);
}

/* The seed's mirrors of global nodes' listeners are bounded all together
 * (a quarter of max_peer_memory): with a 256 KiB cap, 4 such lists are
 * mirrored and the 5th and 6th are not (2.02 mirrors all), and the seed
 * still records a global node that arrives after all of them. */
TEST(insider_mirrored_listeners_bounded_all_together)
{
    int lfd, port, hfd;
    pid_t pid = logging_seed(&lfd, &port, 256u << 10, "honest", &hfd);
    REQUIRE(pid > 0);
    REQUIRE(hfd >= 0);
    enum { N = 6 };
    int fds[N + 1];
    for (int i = 0; i <= N; i++) fds[i] = -1;
    for (int i = 0; i < N; i++) CHECK(mirror_peer_next(port, fds, i) >= 0);
    int over = 0;
    file_has(lfd, "mirrored listeners would come to", &over);
    printf("    of %d lists of ~16 KB, not mirrored for the budget: %d\n", N, over);
    CHECK_INT(over, 2);
    CHECK(!file_has(lfd, "node memory cap", NULL));
    /* a mirrored node that goes takes its copy out of the budget: the
     * next such list is mirrored again */
    close(fds[0]);
    fds[0] = -1;
    int fd6 = mirror_peer_next(port, fds, N);
    file_has(lfd, "mirrored listeners would come to", &over);
    printf("    one mirrored node gone, the next list: %s\n", over == 2 ? "mirrored" : "refused");
    CHECK(fd6 >= 0);
    CHECK_INT(over, 2);
    int gfd = -1;
    CHECK(late_global_recorded(port, hfd, &gfd));
    CHECK(!file_has(lfd, "would hold", NULL)); /* no write of the seed refused */
    for (int i = 0; i <= N; i++)
        if (fds[i] >= 0) close(fds[i]);
    close(gfd);
    close(hfd);
    seed_stop(pid, lfd);
}

TEST(insider_unloggable_ids_refused_live_with_message)
{
    static char over[AEMP_NODEID_MAX + 2];
    memset(over, 'i', AEMP_NODEID_MAX + 1);
    struct {
        const char *id;
        size_t len;
        const char *why;
    } cases[] = {
        {"a\xff\xfe", 3, "refusing node id 'a\\xff\\xfe': it is not UTF-8"},
        {"a\0b", 3, "refusing node id 'a\\x00b': it contains a NUL byte"},
        {"a\x01z", 3, "refusing node id 'a\\x01z': it contains a control character"},
        {"a\x7fz", 3, "refusing node id 'a\\x7fz': it contains a control character"},
        {"evil#seed", 9, "refusing node id 'evil#seed': it contains '#', which splits port ids"},
        {over, AEMP_NODEID_MAX + 1, "': it is over 1024 bytes"},
    };
    int lfd, port, hfd;
    pid_t pid = logging_seed(&lfd, &port, 0, "honest", &hfd);
    REQUIRE(pid > 0);
    CHECK(hfd >= 0);
    for (size_t i = 0; hfd >= 0 && i < sizeof cases / sizeof *cases; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        REQUIRE(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
        char line[AEMP_NODEID_MAX + 64];
        size_t n = 0;
        memcpy(line, "aemp;1;", 7);
        n = 7;
        memcpy(line + n, cases[i].id, cases[i].len);
        n += cases[i].len;
        const char tail[] = ";hmac_sha3_512;json\n";
        memcpy(line + n, tail, sizeof tail - 1);
        n += sizeof tail - 1;
        CHECK(write(fd, line, n) == (ssize_t)n);
        /* the seed's greeting may come; then the end */
        char in[8192];
        size_t have = 0;
        int closed = 0;
        double t0 = ev_time();
        while (!closed && ev_time() - t0 < 3.0) {
            struct pollfd pf = {fd, POLLIN, 0};
            if (poll(&pf, 1, 50) <= 0) continue;
            ssize_t r = read(fd, in + have, sizeof in - 1 - have);
            if (r <= 0) closed = 1;
            else have += (size_t)r;
        }
        in[have] = 0;
        CHECK(closed);
        int lines = 0;
        for (size_t k = 0; k < have; k++) lines += in[k] == '\n';
        CHECK(lines <= 2); /* at most its greeting and nonce: no auth line */
        close(fd);
        CHECK(sync_link(hfd, "honest", "ids"));
        int seen = 0;
        for (int k = 0; k < 40 && !seen; k++) {
            seen = file_has(lfd, cases[i].why, NULL);
            if (!seen) usleep(25000);
        }
        if (!seen) {
            char text[4096];
            ssize_t r = pread(lfd, text, sizeof text - 1, 0);
            text[r > 0 ? r : 0] = 0;
            t_fail(__FILE__, __LINE__, "no log line \"%s\" in:\n%s", cases[i].why, text);
        }
    }
    if (hfd >= 0) close(hfd);
    seed_stop(pid, lfd);
}

/* How often s occurs in text (NULL: -1). */
static int occurrences(const char *text, const char *s)
{
    int c = 0;
    for (const char *p = text; p && (p = strstr(p, s)); p++) c++;
    return text ? c : -1;
}

/* An insider's request bounced into the seed's own node port (a `time`
 * reply to "seed#") waits for the loop; when the insider's link has gone
 * by then (a bad line right behind it), it is dropped with a warning: it
 * would act for a node that is not there - a database share no node-down
 * removes, a 'g entry of our own share, and the mesh dialling the address
 * it named again and again (before: 20 ghosts, 20 entries of each kind
 * and 20 dials in 3 s). */
TEST(insider_requests_of_a_departed_node_dropped)
{
    int lfd, port, hfd;
    pid_t pid = logging_seed(&lfd, &port, 0, "honest", &hfd);
    REQUIRE(pid > 0 && hfd >= 0);
    int lis = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    REQUIRE(lis >= 0 && bind(lis, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lis, 64) == 0 &&
            getsockname(lis, (struct sockaddr *)&sa, &sl) == 0);
    enum { N = 20 };
    for (int i = 0; i < N; i++) {
        char id[32], buf[1024];
        snprintf(id, sizeof id, "ghost%d", i);
        int fd = seed_link(port, id);
        CHECK(fd >= 0);
        if (fd < 0) continue;
        snprintf(buf, sizeof buf,
                 "[\"\",\"time\",\"seed#\",\"g_global\"]\n"
                 "[\"\",\"time\",\"seed#\",\"g_slave\",{\"ghostfam\":{\"%s\":\"stale\"},"
                 "\"'l\":{\"%s\":[\"127.0.0.1:%d\"]}}]\n}}}not json\n",
                 id, id, ntohs(sa.sin_port));
        write_all(fd, buf, strlen(buf));
        usleep(20000);
        close(fd);
    }
    usleep(300000);
    const char *q1 = "[\"\",\"g_db_keys\",\"ghostfam\",\"q1\"]\n", *q2 = "[\"\",\"g_db_keys\",\"'g\",\"q2\"]\n";
    CHECK(write_all(hfd, q1, strlen(q1)) == strlen(q1));
    int stale = occurrences(read_until_synced(hfd, "honest"), "ghost");
    CHECK(write_all(hfd, q2, strlen(q2)) == strlen(q2));
    int gstale = occurrences(read_until_synced(hfd, "honest"), "\"ghost");
    int dials = 0;
    for (double t0 = ev_time(); ev_time() - t0 < 2.0; usleep(5000)) {
        int c = accept(lis, NULL, NULL);
        if (c >= 0) dials++, close(c);
    }
    int dropped = 0;
    file_has(lfd, "its request to this node's own node port dropped: no link to that node now", &dropped);
    printf("    %d ghosts gone: %d entries of theirs in the view, %d in 'g, %d dials in 2 s; "
           "%d requests dropped\n", N, stale, gstale, dials, dropped);
    CHECK_INT(stale, 0);
    CHECK_INT(gstale, 0);
    CHECK_INT(dials, 0);
    CHECK(dropped >= 1);
    close(lis);
    close(hfd);
    seed_stop(pid, lfd);
}

/* A log catcher's port must be on the node that asks for it (the lines
 * go there, and stop when it goes): one at the seed's own node port or
 * at a third node's port is refused - it would keep one of the
 * AEMP_LOGCATCH_MAX places taken after its node left (before: four ids,
 * eight such catchers each - their part - left every place taken for
 * good, and an honest catcher was refused). The eight each of four nodes
 * take on their own ports (all 32 places) go with them: an honest
 * catcher is taken then. */
TEST(insider_log_catchers_go_with_their_node)
{
    int lfd, port, bfd;
    pid_t pid = logging_seed(&lfd, &port, 0, "bystander", &bfd);
    REQUIRE(pid > 0 && bfd >= 0);
    for (int i = 0; i < 4; i++) {
        char id[32], buf[256], where[64];
        snprintf(id, sizeof id, "catch%d", i);
        int fd = seed_link(port, id);
        CHECK(fd >= 0);
        if (fd < 0) continue;
        for (int j = 0; j < 16; j++) {
            if (i == 0 && j == 0) snprintf(where, sizeof where, "seed#");
            else if (i == 0 && j == 1) snprintf(where, sizeof where, "#");
            else if (j < 8) snprintf(where, sizeof where, "bystander#%s_%d", id, j);
            else snprintf(where, sizeof where, "%s#own%d", id, j); /* its own 8: taken */
            snprintf(buf, sizeof buf, "[\"\",\"AnyEvent::MP::LogCatcher::connect\",0,\"%s\",1]\n",
                     where);
            write_all(fd, buf, strlen(buf));
        }
        CHECK(read_until_synced(fd, id) != NULL);
        close(fd);
        usleep(100000);
    }
    usleep(300000);
    int hfd = seed_link(port, "honest");
    REQUIRE(hfd >= 0);
    const char *c = "[\"\",\"AnyEvent::MP::LogCatcher::connect\",0,\"honest#logs\",5]\n";
    CHECK(say_synced(hfd, c, "honest") != NULL);
    int elsewhere = 0;
    file_has(lfd, "refused: not a port of that node", &elsewhere);
    printf("    four catching nodes gone: %d catchers elsewhere refused; honest catcher %s\n",
           elsewhere, file_has(lfd, "honest: log catcher honest#logs refused", NULL) ? "refused" : "taken");
    CHECK(elsewhere >= 4); /* (a few lines of each node's: the log's limiter) */
    CHECK(!file_has(lfd, "honest: log catcher honest#logs refused", NULL));
    close(hfd);
    close(bfd);
    seed_stop(pid, lfd);
}

/* A logging seed and three links to it: "victim", "evil", "honest". */
typedef struct {
    pid_t pid;
    int lfd, port, vfd, efd, hfd;
} trio_t;

static int trio_start(trio_t *t)
{
    t->efd = t->hfd = -1;
    t->pid = logging_seed(&t->lfd, &t->port, 0, "victim", &t->vfd);
    if (t->pid <= 0 || t->vfd < 0) return -1;
    t->efd = seed_link(t->port, "evil");
    t->hfd = seed_link(t->port, "honest");
    return t->efd >= 0 && t->hfd >= 0 ? 0 : -1;
}

static void trio_end(trio_t *t)
{
    close(t->vfd);
    close(t->efd);
    close(t->hfd);
    seed_stop(t->pid, t->lfd);
}

/* head, n bytes of fill, tail: a malloc'd string (a message with a big
 * string in it), or NULL. */
static char *padded(const char *head, char fill, size_t n, const char *tail)
{
    size_t h = strlen(head), t = strlen(tail);
    char *m = malloc(h + n + t + 1);
    if (!m) return NULL;
    memcpy(m, head, h);
    memset(m + h, fill, n);
    memcpy(m + h + n, tail, t + 1);
    return m;
}

/* What an insider relays to a third node may fill half of that node's
 * max_outq: three snd of 30 MiB to a victim that reads nothing for the
 * moment - the first is queued, the others dropped with a warning naming
 * the insider. The victim's link is not cut (before: "victim: send queue
 * overflow", its link and database entry gone, the insider's link up). */
TEST(insider_relays_cannot_cut_a_third_nodes_link)
{
    trio_t t;
    REQUIRE(trio_start(&t) == 0);
    int lfd = t.lfd, vfd = t.vfd, efd = t.efd, hfd = t.hfd;
    const char *reg = "[\"\",\"g_slave\",{\"vfam\":{\"victim\":1}}]\n";
    CHECK(say_synced(vfd, reg, "victim") != NULL);
    char *msg = padded("[\"\",\"snd\",\"victim#x\",\"", 'x', 30u << 20, "\"]\n");
    REQUIRE(msg);
    size_t len = strlen(msg);
    for (int i = 0; i < 3; i++) CHECK(write_all(efd, msg, len) == len);
    free(msg);
    CHECK(read_until_synced(efd, "evil") != NULL); /* (all three handled) */
    int dropped = 0;
    file_has(lfd, "evil: message to victim dropped: its send queue would hold more than half of "
                  "max_outq", &dropped);
    int cut = file_has(lfd, "victim: send queue overflow", NULL);
    const char *q = "[\"\",\"g_db_keys\",\"vfam\",\"q1\"]\n";
    CHECK(write_all(hfd, q, strlen(q)) == strlen(q));
    const char *in = read_until_synced(hfd, "honest");
    int entry = in && strstr(in, "\"victim\"") != NULL;
    printf("    3 x 30 MiB relayed to a slow victim: %d dropped; victim cut: %s, its entry %s\n",
           dropped, cut ? "yes" : "no", entry ? "kept" : "gone");
    CHECK_INT(dropped, 2);
    CHECK(!cut);
    CHECK(entry);
    trio_end(&t);
}

/* The database's own fan-out (g_chg2 to a family's watchers, sent while
 * an honest slave's g_upd is handled) is the seed's own stream, not a
 * message sent for that slave: with a watcher's queue filled by an
 * insider's relays to just under half of max_outq, the change still
 * reaches it (before: dropped as if relayed, the link kept - the
 * watcher's view silently missed it). */
TEST(insider_relays_do_not_hold_back_the_databases_changes)
{
    trio_t t;
    REQUIRE(trio_start(&t) == 0);
    int lfd = t.lfd, vfd = t.vfd, efd = t.efd, hfd = t.hfd;
    const char *mon = "[\"\",\"g_mon1\",\"wfam\"]\n";
    CHECK(say_synced(vfd, mon, "victim") != NULL);
    CHECK(say_synced(hfd, mon, "honest") != NULL);
    /* fill the victim's queue to within 32 KiB of half max_outq */
    size_t steps[] = {1u << 20, 32u << 10};
    int drops = 0;
    for (int s = 0; s < 2; s++) {
        char *msg = padded("[\"\",\"snd\",\"victim#x\",\"", 'x', steps[s], "\"]\n");
        REQUIRE(msg);
        for (int i = 0; i < 200; i++) {
            write_all(efd, msg, strlen(msg));
            read_until_synced(efd, "evil");
            int d = 0;
            file_has(lfd, "evil: message to victim dropped", &d);
            if (d > drops) {
                drops = d;
                break;
            }
        }
        free(msg);
    }
    printf("    filled: %d drops\n", drops);
    /* an honest update of 60 KiB: its g_chg2 goes to both watchers */
    char *upd = padded("[\"\",\"g_upd\",\"wfam\",{\"honest\":\"", 'v', 60u << 10, "\"},[]]\n");
    REQUIRE(upd);
    CHECK(write_all(hfd, upd, strlen(upd)) == strlen(upd));
    free(upd);
    usleep(300000);
    /* the victim now reads all: is the change among it? */
    size_t cap = 40u << 20, have = 0;
    char *in = malloc(cap + 1);
    REQUIRE(in);
    char req[] = "[\"\",\"time\",\"victim#sync\"]\n";
    write_all(vfd, req, strlen(req));
    for (double t0 = ev_time(); ev_time() - t0 < 10.0 && have < cap;) {
        struct pollfd pf = {vfd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0) continue;
        ssize_t r = read(vfd, in + have, cap - have);
        if (r <= 0) break;
        have += (size_t)r;
        in[have] = 0;
        if (have > 64 && strstr(in + have - 64, "[\"sync\",")) break;
    }
    in[have] = 0;
    int got = memmem(in, have, "\"g_chg2\",\"wfam\"", 15) != NULL;
    int dropped = file_has(lfd, "honest: message to victim dropped", NULL);
    printf("    victim read %zu bytes; g_chg2 %s; drop warning %s\n", have, got ? "arrived" : "MISSING",
           dropped ? "yes" : "no");
    CHECK(got);
    free(in);
    trio_end(&t);
}
