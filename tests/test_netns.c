/*
 * test_netns.c - faults between hosts. Each test builds two hosts out of
 * network namespaces joined by a veth pair (10.77.0.1 and 10.77.0.2), runs
 * node A in this process inside the first one and node B in a forked
 * process inside the second (setns before the node exists), then breaks
 * things the way networks and machines break: the cable is pulled without
 * a word (the veth goes down), the peer dies and comes back under the same
 * noderef, the receiver stops reading (SIGSTOP). Node B reports what it
 * sees as text lines over a pipe.
 *
 * Needs root and iproute2's `ip`; otherwise each test is skipped, saying
 * why. Namespaces are named after this process's pid and removed at
 * the end, by a janitor process if the test dies first, and at the start
 * of the next run for any whose process is gone.
 */
#include "test.h"
#include "aemp.h"
#include "harness_node.h"

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define A_REF "10.77.0.1:4040"
#define B_REF "10.77.0.2:4040"
#define NODE_TIMEOUT 4 /* seconds: the protocol's minimum, keeps tests short */

typedef struct hosts {
    char ns_a[32], ns_b[32], veth_a[16], veth_b[16];
    int janitor_fd; /* write end: its closing tells the janitor to clean up */
} hosts_t;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command quietly; returns its exit status. */
static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[600];
    snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
    int st = system(full);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Removes namespaces and veths left by runs whose process is gone. */
static void sweep_stale(void)
{
    DIR *d = opendir("/var/run/netns");
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        int pid;
        if (sscanf(e->d_name, "aemp-t%d-", &pid) == 1 && kill(pid, 0) < 0 && errno == ESRCH)
            sh("ip netns del %s", e->d_name);
    }
    if (d) closedir(d);
    d = opendir("/sys/class/net");
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        int pid;
        if (sscanf(e->d_name, "aev%d", &pid) == 1 && kill(pid, 0) < 0 && errno == ESRCH)
            sh("ip link del %s", e->d_name);
    }
    if (d) closedir(d);
}

static void hosts_remove(const hosts_t *h)
{
    sh("ip netns del %s", h->ns_a);
    sh("ip netns del %s", h->ns_b);
    sh("ip link del %s", h->veth_a);
}

/* A process outside the test's process group that waits for the test to
 * go (the pipe closes however it ends) and then removes its hosts. */
static int start_janitor(hosts_t *h)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        setsid();
        close(p[1]);
        /* a second fork: not a child of the test, whose loop reaps them */
        if (fork() != 0) _exit(0);
        char c;
        while (read(p[0], &c, 1) != 0 && errno == EINTR) {}
        hosts_remove(h);
        _exit(0);
    }
    close(p[0]);
    waitpid(pid, NULL, 0);
    h->janitor_fd = p[1];
    return 0;
}

/* Builds the two hosts; where they cannot be built here, the test ends
 * as skipped, saying why. */
static void hosts_make(hosts_t *h)
{
    memset(h, 0, sizeof *h);
    h->janitor_fd = -1;
    if (geteuid() != 0) SKIP("network namespaces need root (euid is %d)", (int)geteuid());
    if (sh("ip -V") != 0) SKIP("iproute2's ip is not installed");
    sweep_stale();
    int pid = (int)getpid();
    snprintf(h->ns_a, sizeof h->ns_a, "aemp-t%d-a", pid);
    snprintf(h->ns_b, sizeof h->ns_b, "aemp-t%d-b", pid);
    snprintf(h->veth_a, sizeof h->veth_a, "aev%da", pid);
    snprintf(h->veth_b, sizeof h->veth_b, "aev%db", pid);
    hosts_remove(h);
    if (start_janitor(h)) SKIP("cannot start the clean-up process");
    if (sh("ip netns add %s", h->ns_a) || sh("ip netns add %s", h->ns_b)) {
        hosts_remove(h);
        SKIP("`ip netns add` is not permitted here");
    }
    int rc = sh("ip link add %s type veth peer name %s", h->veth_a, h->veth_b);
    rc |= sh("ip link set %s netns %s", h->veth_a, h->ns_a);
    rc |= sh("ip link set %s netns %s", h->veth_b, h->ns_b);
    rc |= sh("ip -n %s addr add 10.77.0.1/24 dev %s", h->ns_a, h->veth_a);
    rc |= sh("ip -n %s addr add 10.77.0.2/24 dev %s", h->ns_b, h->veth_b);
    rc |= sh("ip -n %s link set lo up", h->ns_a);
    rc |= sh("ip -n %s link set lo up", h->ns_b);
    rc |= sh("ip -n %s link set %s up", h->ns_a, h->veth_a);
    rc |= sh("ip -n %s link set %s up", h->ns_b, h->veth_b);
    if (rc) {
        hosts_remove(h);
        SKIP("cannot set up the veth pair %s/%s", h->veth_a, h->veth_b);
    }
}

static void hosts_done(hosts_t *h)
{
    hosts_remove(h);
    if (h->janitor_fd >= 0) close(h->janitor_fd);
    h->janitor_fd = -1;
}

static int enter_netns(const char *ns)
{
    char path[128];
    snprintf(path, sizeof path, "/var/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = setns(fd, CLONE_NEWNET);
    close(fd);
    return rc;
}

/* Pulls or plugs B's end of the cable. Nothing is said to either side. */
static void cable(const hosts_t *h, int up)
{
    CHECK_INT(sh("ip -n %s link set %s %s", h->ns_b, h->veth_b, up ? "up" : "down"), 0);
}

/* ------------------------------------------------------------------ */
/* node B, in its own process and namespace */

typedef struct peer_b {
    aemp_node_t *node;
    int out;         /* report pipe */
    long bulk, bulk_next;
    int bulk_order_errors;
} peer_b_t;

static void report(peer_b_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(peer_b_t *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(b->out, line, (size_t)n) < 0) _exit(4);
}

static void b_mon(aemp_node_t *node, const char *portid, json_t *reason, void *ud)
{
    (void)node;
    (void)portid;
    char *r = json_dumps(reason, JSON_COMPACT);
    report(ud, "mon %s", r ? r : "?");
    free(r);
}

static void b_link(void *ud, aemp_node_t *node, const char *noderef, int up, const char *reason)
{
    peer_b_t *b = ud;
    if (up) {
        report(b, "up %s", noderef);
        /* B watches A's node port too, so both sides must notice a cut */
        aemp_mon(node, A_REF, b_mon, b);
    } else {
        report(b, "down %s|bulk=%ld order=%d", reason, b->bulk, b->bulk_order_errors);
    }
}

static void b_msg(void *ud, aemp_node_t *node, const char *src, const char *id, json_t *msg)
{
    peer_b_t *b = ud;
    (void)node;
    (void)src;
    (void)id;
    const char *tag = json_string_value(json_array_get(msg, 1));
    json_int_t seq = json_integer_value(json_array_get(msg, 2));
    if (tag && !strcmp(tag, "bulk")) {
        if (seq != b->bulk_next) b->bulk_order_errors++;
        b->bulk_next = seq + 1;
        b->bulk++;
    } else if (tag) {
        report(b, "got %s %lld", tag, (long long)seq);
    }
}

static void b_log(void *ud, int level, const char *msg)
{
    if (level <= AEMP_LOG_WARN) report(ud, "log %s", msg);
}

/* Forks node B inside ns. Returns its pid and the read end of its
 * reports in *rfd. */
static pid_t start_b(const hosts_t *h, int *rfd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(p[0]);
        if (h->janitor_fd >= 0) close(h->janitor_fd);
        peer_b_t b = {0};
        b.out = p[1];
        if (enter_netns(h->ns_b)) _exit(2);
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        aemp_node_config_t c = {0};
        c.bind = B_REF;
        c.secret = secret;
        c.secret_len = strlen(secret);
        c.timeout = NODE_TIMEOUT;
        c.connect_interval = 0.2;
        c.connect_timeout = 3;
        c.log = b_log;
        c.log_ud = &b;
        c.on_link = b_link;
        c.link_ud = &b;
        c.on_message = b_msg;
        c.message_ud = &b;
        b.node = aemp_node_new(loop, &c, NULL);
        if (!b.node || aemp_node_start(b.node)) _exit(3);
        report(&b, "ready %s", aemp_node_noderef(b.node));
        ev_run(loop, 0);
        _exit(0);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *rfd = p[0];
    return pid;
}

/* ------------------------------------------------------------------ */
/* node A, here, and what B reports */

typedef struct side_a {
    aemp_node_t *node;
    char warnings[8192];
    int ups, downs;
    char last_down[256];
    double down_at;
    int mon_fired;
    char mon_reason[256];
    double mon_at;
    /* B's reports */
    int bfd;
    ev_io bio;
    char blines[1 << 16];
    size_t blen;
} side_a_t;

static void a_log(void *ud, int level, const char *msg)
{
    side_a_t *a = ud;
    if (level > AEMP_LOG_WARN) return;
    size_t l = strlen(a->warnings);
    snprintf(a->warnings + l, sizeof a->warnings - l, "%s\n", msg);
}

static void a_link(void *ud, aemp_node_t *node, const char *noderef, int up, const char *reason)
{
    side_a_t *a = ud;
    (void)node;
    (void)noderef;
    if (up) {
        a->ups++;
    } else {
        a->downs++;
        a->down_at = ev_time();
        snprintf(a->last_down, sizeof a->last_down, "%s", reason);
    }
}

static void a_mon(aemp_node_t *node, const char *portid, json_t *reason, void *ud)
{
    side_a_t *a = ud;
    (void)node;
    (void)portid;
    char *r = json_dumps(reason, JSON_COMPACT);
    snprintf(a->mon_reason, sizeof a->mon_reason, "%s", r ? r : "?");
    free(r);
    a->mon_fired++;
    a->mon_at = ev_time();
}

static void b_reports_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    side_a_t *a = w->data;
    (void)loop;
    (void)revents;
    for (;;) {
        if (a->blen + 1 >= sizeof a->blines) {
            /* keep the newest half: tests look at recent lines */
            memmove(a->blines, a->blines + sizeof a->blines / 2, sizeof a->blines / 2);
            a->blen -= sizeof a->blines / 2;
        }
        ssize_t n = read(a->bfd, a->blines + a->blen, sizeof a->blines - 1 - a->blen);
        if (n <= 0) break;
        a->blen += (size_t)n;
        a->blines[a->blen] = 0;
    }
}

static void watch_b(side_a_t *a, int fd)
{
    if (ev_is_active(&a->bio)) ev_io_stop(EV_DEFAULT, &a->bio);
    a->bfd = fd;
    a->blen = 0;
    a->blines[0] = 0;
    ev_io_init(&a->bio, b_reports_cb, fd, EV_READ);
    a->bio.data = a;
    ev_io_start(EV_DEFAULT, &a->bio);
}

typedef struct bwait {
    side_a_t *a;
    const char *text;
} bwait_t;

static int b_said(void *ud)
{
    bwait_t *w = ud;
    return strstr(w->a->blines, w->text) != NULL;
}

/* Runs the loop until B's reports contain text. */
static int wait_b(side_a_t *a, const char *text, double secs)
{
    bwait_t w = {a, text};
    return run_until(b_said, &w, secs);
}

static int start_a(side_a_t *a, const hosts_t *h, size_t max_outq)
{
    memset(a, 0, sizeof *a);
    a->bfd = -1;
    if (enter_netns(h->ns_a)) return -1;
    start_ticker();
    aemp_node_config_t c = {0};
    c.bind = A_REF;
    c.secret = secret;
    c.secret_len = strlen(secret);
    c.timeout = NODE_TIMEOUT;
    c.connect_interval = 0.2;
    c.connect_timeout = 3;
    c.max_outq = max_outq;
    c.log = a_log;
    c.log_ud = a;
    c.on_link = a_link;
    c.link_ud = a;
    a->node = aemp_node_new(EV_DEFAULT, &c, NULL);
    if (!a->node || aemp_node_start(a->node)) return -1;
    return 0;
}

static void stop_a(side_a_t *a)
{
    if (ev_is_active(&a->bio)) ev_io_stop(EV_DEFAULT, &a->bio);
    if (a->bfd >= 0) close(a->bfd);
    aemp_node_destroy(a->node);
}

static int a_up(void *ud)
{
    side_a_t *a = ud;
    return aemp_node_is_up(a->node, B_REF);
}

static int a_mon_fired(void *ud)
{
    side_a_t *a = ud;
    return a->mon_fired > 0;
}

static void send_seq(side_a_t *a, const char *tag, long from, long to)
{
    for (long i = from; i < to; i++)
        CHECK_INT(aemp_node_send(a->node, B_REF, json_pack("[ssI]", "x", tag, (json_int_t)i)), 0);
}

/* Brings up A and B with a link between them and a monitor each way.
 * Returns 0, or -2 after a failure. */
static int pair_up(hosts_t *h, side_a_t *a, pid_t *b, size_t max_outq)
{
    hosts_make(h);
    int rfd;
    *b = start_b(h, &rfd);
    if (*b < 0 || start_a(a, h, max_outq)) {
        t_fail(__FILE__, __LINE__, "cannot start the nodes");
        return -2;
    }
    watch_b(a, rfd);
    if (!wait_b(a, "ready " B_REF, 5)) {
        t_fail(__FILE__, __LINE__, "node B did not start: %s", a->blines);
        return -2;
    }
    send_seq(a, "hello", 0, 1);
    if (!run_until(a_up, a, 5) || !wait_b(a, "got hello 0", 5)) {
        t_fail(__FILE__, __LINE__, "no link: A says %s; B says %s", a->warnings, a->blines);
        return -2;
    }
    CHECK(aemp_mon(a->node, B_REF, a_mon, a) != NULL);
    run_for(0.3); /* both mon1 messages arrive */
    return 0;
}

static void pair_down(hosts_t *h, side_a_t *a, pid_t b)
{
    if (b > 0) {
        kill(b, SIGCONT);
        kill(b, SIGKILL);
    }
    stop_a(a);
    hosts_done(h);
}

/* ------------------------------------------------------------------ */

TEST(netns_cut_cable_detected_both_sides)
{
    hosts_t h;
    side_a_t a;
    pid_t b = -1;
    int rc = pair_up(&h, &a, &b, 0);
    if (rc == 0) {
        double t0 = ev_time();
        cable(&h, 0);
        /* A hears nothing more: its read timeout is B's announced 4 s */
        CHECK(run_until(a_mon_fired, &a, NODE_TIMEOUT + 3));
        CHECK(wait_b(&a, "mon [\"transport_error\"", NODE_TIMEOUT + 3));
        double dt_a = a.mon_at - t0;
        printf("    A noticed after %.2f s (%s), monitor %s\n", dt_a, a.last_down,
               a.mon_reason);
        CHECK(dt_a > NODE_TIMEOUT - 1.5 && dt_a < NODE_TIMEOUT + 1.5);
        CHECK_STR(a.mon_reason, "[\"transport_error\",\"" B_REF "\",\"Connection timed out\"]");
        CHECK_STR(a.last_down, "Connection timed out");
        CHECK(strstr(a.blines, "down Connection timed out") != NULL);
        CHECK(strstr(a.blines,
                     "mon [\"transport_error\",\"" A_REF "\",\"Connection timed out\"]") != NULL);
        CHECK(ev_time() - t0 < NODE_TIMEOUT + 2.5);
        /* plugged in again, the next message makes a new link */
        cable(&h, 1);
        send_seq(&a, "again", 0, 1);
        CHECK(wait_b(&a, "got again 0", 5));
        CHECK_INT(a.ups, 2);
    }
    pair_down(&h, &a, b);
}

TEST(netns_peer_restarts_with_same_noderef)
{
    hosts_t h;
    side_a_t a;
    pid_t b = -1;
    int rc = pair_up(&h, &a, &b, 0);
    if (rc == 0) {
        send_seq(&a, "old", 0, 50);
        CHECK(wait_b(&a, "got old 49", 5));
        /* B dies while the cable is out, so A hears nothing of it, and
         * comes back under the same noderef */
        cable(&h, 0);
        kill(b, SIGKILL);
        run_for(0.3);
        int rfd;
        b = start_b(&h, &rfd);
        REQUIRE(b > 0);
        watch_b(&a, rfd);
        CHECK(wait_b(&a, "ready " B_REF, 5));
        /* sent on the link A still believes in: lost, and A must say so */
        send_seq(&a, "lost", 0, 20);
        run_for(0.3);
        CHECK_INT(a.mon_fired, 0);
        cable(&h, 1);
        CHECK(run_until(a_mon_fired, &a, NODE_TIMEOUT + 3));
        printf("    old link ended with \"%s\"\n", a.last_down);
        CHECK(strstr(a.mon_reason, "[\"transport_error\",\"" B_REF "\",") == a.mon_reason);
        /* what is sent now waits for the new link and arrives, once */
        send_seq(&a, "new", 0, 50);
        CHECK(wait_b(&a, "got new 49", 5));
        run_for(0.3);
        CHECK(strstr(a.blines, "got old") == NULL);
        CHECK(strstr(a.blines, "got lost") == NULL);
        CHECK(strstr(a.blines, "got hello") == NULL);
        char want[32];
        for (int i = 0; i < 50; i++) {
            snprintf(want, sizeof want, "got new %d\n", i);
            char *at = strstr(a.blines, want);
            CHECK(at != NULL);
            if (at) CHECK(strstr(at + 1, want) == NULL);
        }
        CHECK_INT(a.ups, 2);
    }
    pair_down(&h, &a, b);
}

TEST(netns_slow_receiver_bounded_queue)
{
    hosts_t h;
    side_a_t a;
    pid_t b = -1;
    const size_t max_outq = 1u << 20;
    int rc = pair_up(&h, &a, &b, max_outq);
    if (rc == 0) {
        kill(b, SIGSTOP);
        char *pad = malloc(8192);
        memset(pad, 'p', 8191);
        pad[8191] = 0;
        long i = 0;
        int r = 0;
        size_t peak = 0;
        double t0 = ev_time();
        /* the kernel's buffers fill first, then our queue up to the limit */
        while (i < 20000 && ev_time() - t0 < 20) {
            r = aemp_node_send(a.node, B_REF, json_pack("[ssIs]", "x", "bulk", (json_int_t)i, pad));
            if (r) break;
            i++;
            size_t q = aemp_node_queued(a.node, B_REF);
            if (q > peak) peak = q;
            CHECK(q <= max_outq + 16384);
            ev_run(EV_DEFAULT, EVRUN_NOWAIT);
        }
        free(pad);
        printf("    send %ld failed with %s; %.1f MB handed over; queue peaked at %zu bytes\n",
               i, aemp_err_name(r), i * 8.2 / 1024, peak);
        CHECK_INT(r, AEMP_ELIMIT);
        CHECK(strstr(a.warnings, B_REF ": send queue overflow (") != NULL);
        CHECK_STR(a.last_down, "send queue overflow");
        run_for(0.1);
        CHECK_INT(a.mon_fired, 1);
        CHECK_STR(a.mon_reason, "[\"transport_error\",\"" B_REF "\",\"send queue overflow\"]");
        /* the receiver wakes up: what reached it is a prefix, in order */
        kill(b, SIGCONT);
        CHECK(wait_b(&a, "down ", 10));
        const char *d = strstr(a.blines, "down ");
        long got = -1;
        int order = -1;
        if (d) sscanf(strstr(d, "|bulk="), "|bulk=%ld order=%d", &got, &order);
        printf("    B read %ld of them before the link ended (%.*s)\n", got,
               (int)strcspn(d ? d + 5 : "", "|"), d ? d + 5 : "");
        CHECK(got > 0 && got <= i);
        CHECK_INT(order, 0);
        /* and the next message makes a new link */
        send_seq(&a, "after", 0, 1);
        CHECK(wait_b(&a, "got after 0", 5));
    }
    pair_down(&h, &a, b);
}
