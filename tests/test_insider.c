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

#include <ev.h>
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

/* A global node "seed" on 127.0.0.1:port in a child, until killed. */
static pid_t spawn_seed(int port)
{
    pid_t pid = fork();
    if (pid) return pid;
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
    const char *eps[] = {ep};
    aemp_node_config_t c = {.protocol = 1, .nodeid = "seed", .binds = eps, .nbinds = 1,
                            .seeds = eps, .nseeds = 1, .secret = ins_secret,
                            .secret_len = strlen(ins_secret)};
    c.log = NULL;
    int err = 0;
    aemp_node_t *n = aemp_node_new(EV_DEFAULT, &c, &err);
    if (!n || aemp_node_start(n)) _exit(1);
    ev_run(EV_DEFAULT, 0);
    _exit(0);
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

/* Sends `time` requests on the honest link, nreq of them spaced over the
 * flood, and returns the slowest answer's delay in ms (1e9 when one did
 * not come within 2 s). */
static double honest_latency(int hfd, flood_t *f, int nreq)
{
    double worst = 0;
    char in[65536];
    for (int i = 0; i < nreq; i++) {
        char req[64], want[32];
        snprintf(want, sizeof want, "[\"t%d\",", i);
        snprintf(req, sizeof req, "[\"\",\"time\",\"honest#t%d\"]\n", i);
        /* push more attack before each request */
        double until = ev_time() + 0.05;
        while (ev_time() < until) {
            flood_pump(f);
            drain_fd(f->fd);
            usleep(2000);
        }
        double t0 = ev_time();
        if (write(hfd, req, strlen(req)) != (ssize_t)strlen(req)) return 1e9;
        size_t have = 0;
        int got = 0;
        while (!got && ev_time() - t0 < 2.0) {
            struct pollfd pf = {hfd, POLLIN, 0};
            flood_pump(f);
            drain_fd(f->fd);
            if (poll(&pf, 1, 1) > 0) {
                ssize_t r = read(hfd, in + have, sizeof in - 1 - have);
                if (r <= 0) return 1e9;
                have += (size_t)r;
                in[have] = 0;
                got = strstr(in, want) != NULL;
                if (!got && have > sizeof in / 2) have = 0;
            }
        }
        double ms = got ? (ev_time() - t0) * 1000 : 1e9;
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

/* A fake global node claims 10 000 global nodes at unreachable loopback
 * addresses: the seed dials within its budget and keeps answering. */
TEST(insider_fake_globals_keep_seed_answering)
{
    int dead = free_port(); /* nothing listens there */
    char *buf = NULL, item[128];
    size_t len = 0, cap = 0;
    put(&buf, &len, &cap, "[\"\",\"g_global\"]\n[\"\",\"g_set\",{\"'g\":{");
    for (int i = 0; i < 10000; i++) {
        snprintf(item, sizeof item, "%s\"fake%d\":null", i ? "," : "", i);
        put(&buf, &len, &cap, item);
    }
    put(&buf, &len, &cap, "},\"'l\":{");
    for (int i = 0; i < 10000; i++) {
        snprintf(item, sizeof item, "%s\"fake%d\":[\"127.0.0.1:%d\"]", i ? "," : "", i, dead);
        put(&buf, &len, &cap, item);
    }
    put(&buf, &len, &cap, "}}]\n");
    REQUIRE(buf != NULL);
    run_attack("g_global + g_set of 10000 fake globals", buf, len, "evil-global");
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
