/*
 * test_node.c - the node runtime over real loopback sockets: message
 * transport in order and without loss, queueing before the peer listens,
 * failure detection (kill, freeze, wrong secret, framing error), the
 * simultaneous-connect rule, slaves and iam. Nodes run in this process on
 * one loop, or in forked processes where a process must die.
 */
#include "test.h"
#include "aemp.h"
#include "harness_node.h"
#include "node_int.h"
#include "addr.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static json_t *mixed_msg(long i)
{
    switch (i % 5) {
    case 0: return json_pack("[ssI]", "x", "int", (json_int_t)i);
    case 1: return json_pack("[ssIs]", "x", "str", (json_int_t)i, "Grüße \"quoted\" \n");
    case 2: return json_pack("[ssIf]", "x", "real", (json_int_t)i, 0.5 + (double)i);
    case 3: return json_pack("[ssI{s:[i,n,b]}]", "x", "obj", (json_int_t)i, "k", 1, 1);
    default: return json_pack("[ssIs#]", "x", "nul", (json_int_t)i, "a\0b", (size_t)3);
    }
}

TEST(node_start_and_noderef)
{
    tnode_t a;
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    const char *nr = aemp_node_noderef(a.node);
    CHECK(!strncmp(nr, "127.0.0.1:", 10));
    CHECK(atoi(nr + 10) > 0);
    aemp_node_destroy(a.node);
}

TEST(node_resolve_expands_dedups_and_defaults_addresses)
{
    int err = 0;
    char *r = aemp_resolve("127.0.0.1:4041", &err);
    CHECK_STR(r, "127.0.0.1:4041");
    free(r);
    r = aemp_resolve("localhost:99,127.0.0.1:99", &err);
    REQUIRE(r);
    CHECK(strstr(r, "127.0.0.1:99") != NULL);
    /* duplicates dropped */
    CHECK(strstr(r, "127.0.0.1:99") == strrchr(r, '1') - 10 || strstr(strstr(r, "127.0.0.1:99") + 1, "127.0.0.1:99") == NULL);
    free(r);
    r = aemp_resolve("[::1]:7", &err);
    CHECK_STR(r, "[::1]:7");
    free(r);
    r = aemp_resolve("4049", &err);
    REQUIRE(r);
    CHECK(strstr(r, ":4049") != NULL);
    free(r);
    r = aemp_resolve("", &err);
    REQUIRE(r);
    CHECK(strstr(r, ":4040") != NULL);
    free(r);
    r = aemp_resolve("no-such-host.invalid:1", &err);
    CHECK(r == NULL);
    CHECK_INT(err, AEMP_ERESOLVE);
}

/* ip:port (an IPv4 or IPv6 address) as aemp__ep_format writes it into n
 * bytes. */
static const char *ep_text(const char *ip, unsigned port, size_t n)
{
    static char out[64];
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
    }
    aemp__ep_format((struct sockaddr *)&ss, out, n);
    return out;
}

/* Endpoints as text, as a peer's address is written for every accepted
 * connection: IPv4 at its extremes, an IPv4-mapped IPv6 address, IPv6
 * in brackets, a buffer too short (cut, terminated). */
TEST(node_endpoints_formatted)
{
    CHECK_STR(ep_text("255.255.255.255", 65535, 64), "255.255.255.255:65535");
    CHECK_STR(ep_text("0.0.0.0", 0, 64), "0.0.0.0:0");
    CHECK_STR(ep_text("127.10.0.1", 4040, 64), "127.10.0.1:4040");
    CHECK_STR(ep_text("127.10.0.1", 4040, 8), "127.10.");
    CHECK_STR(ep_text("::ffff:10.1.2.3", 80, 64), "10.1.2.3:80");
    CHECK_STR(ep_text("fe80::1", 80, 64), "[fe80::1]:80");
    CHECK_STR(ep_text("nonsense", 1, 64), "unknown:0");
}

TEST(node_exchange_100k_in_order)
{
    tnode_t a, b;
    start_ticker();
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    REQUIRE(mknode(&b, "127.0.0.1:0", secret, 0));
    const char *bn = aemp_node_noderef(b.node);
    b.kept = json_array();
    const long N = 100000;
    for (long i = 0; i < N; i++) CHECK_INT(aemp_node_send(a.node, bn, mixed_msg(i)), 0);
    want_t w = {&b, N};
    CHECK(run_until(got_n, &w, 60));
    CHECK_INT(b.received, N);
    CHECK_INT(b.order_errors, 0);
    CHECK_INT(a.links_up, 1);
    CHECK_INT(b.links_up, 1);
    /* the values survive the trip */
    json_t *m1 = mixed_msg(1), *m4 = mixed_msg(4), *m3 = mixed_msg(3);
    CHECK(json_equal(json_array_get(b.kept, 1), m1));
    CHECK(json_equal(json_array_get(b.kept, 3), m3));
    CHECK(json_equal(json_array_get(b.kept, 4), m4));
    json_decref(m1);
    json_decref(m3);
    json_decref(m4);
    json_decref(b.kept);
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
}

TEST(node_local_send_async_in_order)
{
    tnode_t a;
    start_ticker();
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    for (long i = 0; i < 1000; i++)
        CHECK_INT(aemp_node_send(a.node, aemp_node_noderef(a.node), json_pack("[ssI]", "x", "l", (json_int_t)i)), 0);
    CHECK_INT(a.received, 0); /* not delivered from inside send */
    want_t w = {&a, 1000};
    CHECK(run_until(got_n, &w, 10));
    CHECK_INT(a.order_errors, 0);
    CHECK_INT(a.links_up, 0);
    aemp_node_destroy(a.node);
}

TEST(node_queue_until_peer_listens)
{
    tnode_t a, b;
    start_ticker();
    int port = free_port();
    char nr[64];
    snprintf(nr, sizeof nr, "127.0.0.1:%d", port);
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    for (long i = 0; i < 100; i++) aemp_node_send(a.node, nr, json_pack("[ssI]", "x", "q", (json_int_t)i));
    late_t l = {ev_time() + 0.7, 0};
    run_until(time_passed, &l, 2);
    CHECK_INT(a.links_down, 0); /* still trying, nothing reported */
    REQUIRE(mknode(&b, nr, secret, 0));
    want_t w = {&b, 100};
    CHECK(run_until(got_n, &w, 5));
    CHECK_INT(b.order_errors, 0);
    CHECK_INT(b.received, 100);
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
}

TEST(node_unreachable_fails_with_transport_error)
{
    tnode_t a;
    start_ticker();
    char nr[64];
    snprintf(nr, sizeof nr, "127.0.0.1:%d", free_port());
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    aemp_node_send(a.node, nr, json_pack("[ss]", "x", "lost"));
    want_t w = {&a, 1};
    CHECK(run_until(down_n, &w, 10));
    CHECK_STR(a.last_down, "Connection refused");
    CHECK(strstr(a.warnings, "Connection refused") != NULL);
    aemp_node_destroy(a.node);
}

TEST(node_wrong_secret_fails_both)
{
    tnode_t a, b;
    start_ticker();
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    REQUIRE(mknode(&b, "127.0.0.1:0", "another secret", 0));
    aemp_node_send(a.node, aemp_node_noderef(b.node), json_pack("[ss]", "x", "never"));
    want_t w = {&a, 1};
    CHECK(run_until(down_n, &w, 10));
    CHECK(strstr(a.warnings, "authentication failure/shared secret mismatch") != NULL);
    CHECK(strstr(b.warnings, "authentication failure/shared secret mismatch") != NULL);
    CHECK_INT(b.received, 0);
    CHECK_INT(a.links_up + b.links_up, 0);
    CHECK(strstr(a.warnings, secret) == NULL);
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
}

TEST(node_simultaneous_connect_one_link)
{
    for (int round = 0; round < 10; round++) {
        tnode_t a, b;
        start_ticker();
        REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
        REQUIRE(mknode(&b, "127.0.0.1:0", secret, 0));
        char an[64], bn[64];
        snprintf(an, sizeof an, "%s", aemp_node_noderef(a.node));
        snprintf(bn, sizeof bn, "%s", aemp_node_noderef(b.node));
        for (long i = 0; i < 50; i++) {
            aemp_node_send(a.node, bn, json_pack("[ssI]", "x", "a", (json_int_t)i));
            aemp_node_send(b.node, an, json_pack("[ssI]", "x", "b", (json_int_t)i));
        }
        want_t w = {&a, 50}, w2 = {&b, 50};
        CHECK(run_until(got_n, &w, 5));
        CHECK(run_until(got_n, &w2, 5));
        late_t l = {ev_time() + 0.2, 0};
        run_until(time_passed, &l, 1);
        CHECK_INT(a.received, 50);
        CHECK_INT(b.received, 50);
        CHECK_INT(a.order_errors + b.order_errors, 0);
        CHECK_INT(a.links_up, 1);
        CHECK_INT(b.links_up, 1);
        CHECK_INT(a.links_down + b.links_down, 0);
        aemp_node_destroy(a.node);
        aemp_node_destroy(b.node);
    }
}

TEST(node_peer_killed_is_detected)
{
    tnode_t a;
    char bn[128];
    start_ticker();
    pid_t pid = spawn_node(bn, sizeof bn, 0);
    REQUIRE(pid > 0);
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 4));
    aemp_node_send(a.node, bn, json_pack("[ss]", "x", "hello"));
    want_t up = {&a, 0};
    (void)up;
    late_t l = {ev_time() + 0.5, 0};
    run_until(time_passed, &l, 1);
    CHECK_INT(a.links_up, 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    want_t w = {&a, 1};
    CHECK(run_until(down_n, &w, 5));
    CHECK(strlen(a.last_down) > 0);
    aemp_node_destroy(a.node);
}

TEST(node_frozen_peer_times_out)
{
    tnode_t a;
    char bn[128];
    start_ticker();
    /* the peer announces timeout=4: a silent peer is dead after 4 s */
    pid_t pid = spawn_node(bn, sizeof bn, 4);
    REQUIRE(pid > 0);
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 4));
    aemp_node_send(a.node, bn, json_pack("[ss]", "x", "hello"));
    late_t l = {ev_time() + 0.5, 0};
    run_until(time_passed, &l, 1);
    CHECK_INT(a.links_up, 1);
    kill(pid, SIGSTOP);
    double t0 = ev_time();
    want_t w = {&a, 1};
    CHECK(run_until(down_n, &w, 8));
    double dt = ev_time() - t0;
    CHECK(dt > 3.0 && dt < 6.0);
    CHECK_STR(a.last_down, "Connection timed out");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    aemp_node_destroy(a.node);
}

TEST(node_keepalive_keeps_idle_link)
{
    tnode_t a, b;
    start_ticker();
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 4));
    REQUIRE(mknode(&b, "127.0.0.1:0", secret, 4));
    aemp_node_send(a.node, aemp_node_noderef(b.node), json_pack("[ss]", "x", "hi"));
    late_t l = {ev_time() + 6.0, 0};
    run_until(time_passed, &l, 7);
    CHECK_INT(a.links_up, 1);
    CHECK_INT(a.links_down + b.links_down, 0);
    CHECK_INT(b.received, 1); /* devnull is not delivered */
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
}

TEST(node_framing_error_only_kills_that_link)
{
    tnode_t a, b;
    start_ticker();
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    REQUIRE(mknode(&b, "127.0.0.1:0", secret, 0));
    const char *bn = aemp_node_noderef(b.node);
    aemp_node_send(a.node, bn, json_pack("[ssI]", "x", "before", (json_int_t)0));
    want_t w = {&b, 1};
    CHECK(run_until(got_n, &w, 5));
    /* a raw peer authenticates (blocking, while b's loop is not running:
     * the handshake completes because the kernel buffers it) */
    child_t ch;
    pid_t pid = fork_reporting(&ch);
    if (pid == 0) {
        int fd = raw_connect_auth(bn, secret);
        if (fd < 0) child_exit(1);
        const char bad[] = "[\"\",\"devnull\"][\"x\",\"ok\"]}}garbage";
        if (write(fd, bad, sizeof bad - 1) < 0) child_exit(1);
        char c;
        while (read(fd, &c, 1) > 0) {}
        child_exit(0);
    }
    REQUIRE(pid > 0);
    CHECK(run_until(child_reported, &ch, 5));
    CHECK_INT(ch.code, 0);
    CHECK(strstr(b.warnings, "Bad message") != NULL);
    CHECK_INT(b.received, 2); /* the good texts before the garbage arrived */
    aemp_node_send(a.node, bn, json_pack("[ssI]", "x", "after", (json_int_t)1));
    want_t w2 = {&b, 3};
    CHECK(run_until(got_n, &w2, 5));
    CHECK_INT(a.links_down, 0);
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
}

TEST(node_slave_renames_and_sends_iam)
{
    tnode_t m, s;
    start_ticker();
    REQUIRE(mknode(&m, "127.0.0.1:0", secret, 0));
    memset(&s, 0, sizeof s);
    const char *masters[1] = {aemp_node_noderef(m.node)};
    aemp_node_config_t c = {0};
    c.slave_name = "worker";
    c.masters = masters;
    c.nmasters = 1;
    c.secret = secret;
    c.secret_len = strlen(secret);
    c.connect_interval = 0.2;
    t_hooks(&c, &s);
    s.node = aemp_node_new(EV_DEFAULT, &c, NULL);
    REQUIRE(s.node);
    CHECK_INT(aemp_node_start(s.node), 0);
    CHECK_STR(aemp_node_noderef(s.node), "slave/worker");
    want_t w = {&m, 1};
    (void)w;
    late_t l = {ev_time() + 0.5, 0};
    run_until(time_passed, &l, 1);
    char expect[256];
    snprintf(expect, sizeof expect, "slave/worker@%s", aemp_node_noderef(m.node));
    CHECK_STR(aemp_node_noderef(s.node), expect);
    /* the master knows the slave under its new name and can answer it */
    CHECK_INT(aemp_node_send(m.node, expect, json_pack("[ssI]", "x", "to slave", (json_int_t)0)), 0);
    want_t ws = {&s, 1};
    CHECK(run_until(got_n, &ws, 3));
    CHECK_INT(m.links_down + s.links_down, 0);
    aemp_node_destroy(s.node);
    aemp_node_destroy(m.node);
}

TEST(node_destroy_inside_callback)
{
    tnode_t a;
    start_ticker();
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    /* destroying with queued work and live listeners frees everything */
    aemp_node_send(a.node, "127.0.0.1:1", json_pack("[ss]", "x", "y"));
    aemp_node_send(a.node, aemp_node_noderef(a.node), json_pack("[ss]", "x", "y"));
    aemp_node_destroy(a.node);
    aemp_node_destroy(NULL);
    ev_run(EV_DEFAULT, EVRUN_NOWAIT);
}

TEST(node_send_queue_limit_fails_the_link)
{
    tnode_t a;
    char bn[128];
    start_ticker();
    pid_t pid = spawn_node(bn, sizeof bn, 0);
    REQUIRE(pid > 0);
    memset(&a, 0, sizeof a);
    aemp_node_config_t c = {0};
    c.bind = "127.0.0.1:0";
    c.secret = secret;
    c.secret_len = strlen(secret);
    c.max_outq = 1 << 20;
    t_hooks(&c, &a);
    a.node = aemp_node_new(EV_DEFAULT, &c, NULL);
    REQUIRE(a.node && aemp_node_start(a.node) == 0);
    aemp_node_send(a.node, bn, json_pack("[ss]", "x", "hello"));
    run_for(0.3);
    CHECK_INT(a.links_up, 1);
    kill(pid, SIGSTOP); /* a receiver that reads nothing */
    int rc = 0;
    long sent = 0;
    char payload[1000];
    memset(payload, 'p', sizeof payload - 1);
    payload[sizeof payload - 1] = 0;
    while (sent < 200000 && rc == 0) {
        rc = aemp_node_send(a.node, bn, json_pack("[ssI]", "x", payload, (json_int_t)sent));
        sent++;
        if (sent % 100 == 0) ev_run(EV_DEFAULT, EVRUN_NOWAIT);
        if (sent % 1000 == 0) CHECK(aemp_node_queued(a.node, bn) <= (1u << 20) + 2000);
    }
    CHECK_INT(rc, AEMP_ELIMIT);
    run_for(0.1);
    CHECK_INT(a.links_down, 1);
    CHECK_STR(a.last_down, "send queue overflow");
    CHECK(strstr(a.warnings, "send queue overflow") != NULL);
    CHECK_INT(aemp_node_queued(a.node, bn), 0); /* dropped, not kept */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    aemp_node_destroy(a.node);
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++) n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* A Perl peer reconnects at once after any error and may replace its own
 * links thousands of times a second: the node must stay stable and
 * bounded, and an honest peer's traffic must flow meanwhile. */
TEST(node_link_churn_stays_bounded)
{
    tnode_t a, b;
    start_ticker();
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    REQUIRE(mknode(&b, "127.0.0.1:0", secret, 0));
    char bn[128];
    snprintf(bn, sizeof bn, "%s", aemp_node_noderef(b.node));
    aemp_node_send(a.node, bn, json_pack("[ssI]", "x", "m", (json_int_t)0));
    want_t w1 = {&b, 1};
    CHECK(run_until(got_n, &w1, 5));
    int fds0 = count_fds();
    child_t ch;
    pid_t pid = fork_reporting(&ch);
    if (pid == 0) {
        /* 300 authenticated links under one name, each replacing the last */
        int prev = -1;
        for (int i = 0; i < 300; i++) {
            int fd = raw_connect_auth(bn, secret);
            if (fd < 0) child_exit(1);
            if (prev >= 0) close(prev);
            prev = fd;
        }
        close(prev);
        child_exit(0);
    }
    REQUIRE(pid > 0);
    long i = 1;
    ev_tstamp end = ev_time() + 90;
    int done = 0;
    while (!done && ev_time() < end) {
        if (i < 20000) aemp_node_send(a.node, bn, json_pack("[ssI]", "x", "m", (json_int_t)i++));
        ev_run(EV_DEFAULT, EVRUN_ONCE);
        done = child_reported(&ch);
    }
    CHECK(done);
    CHECK_INT(ch.code, 0);
    want_t w = {&b, i};
    CHECK(run_until(got_n, &w, 10));
    CHECK_INT(b.received, i);
    CHECK_INT(b.order_errors, 0);
    CHECK_INT(a.links_down, 0);
    run_for(0.3);
    CHECK_INT(count_fds(), fds0); /* every churned link is gone */
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
}

/* Every short-lived node that talks to a long-lived one must be
 * forgotten once its link is gone. */
TEST(node_forgets_departed_peers)
{
    tnode_t b;
    start_ticker();
    REQUIRE(mknode(&b, "127.0.0.1:0", secret, 0));
    char bn[128];
    snprintf(bn, sizeof bn, "%s", aemp_node_noderef(b.node));
    for (int i = 0; i < 40; i++) {
        tnode_t a;
        REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
        aemp_node_send(a.node, bn, json_pack("[ssI]", "x", "m", (json_int_t)i));
        want_t w = {&b, i + 1};
        CHECK(run_until(got_n, &w, 5));
        aemp_node_destroy(a.node);
        run_for(0.02);
    }
    want_t d = {&b, 40};
    CHECK(run_until(down_n, &d, 5));
    run_for(0.1);
    CHECK_INT(b.node->peers.count, 0);
    CHECK(b.node->peers_list == NULL);
    aemp_node_destroy(b.node);
}

/* A slave with two masters connects to both at once: the link that comes
 * up second greeted with the slave's first name too, so it also tells the
 * new name (iam), and both masters know the slave by it. */
TEST(node_slave_two_masters_both_learn_the_name)
{
    tnode_t m1, m2, s;
    start_ticker();
    REQUIRE(mknode(&m1, "127.0.0.1:0", secret, 0));
    REQUIRE(mknode(&m2, "127.0.0.3:0", secret, 0));
    memset(&s, 0, sizeof s);
    aemp_node_config_t c = {0};
    c.secret = secret;
    c.secret_len = strlen(secret);
    c.slave_name = "x";
    const char *ms[2] = {aemp_node_noderef(m1.node), aemp_node_noderef(m2.node)};
    c.masters = ms;
    c.nmasters = 2;
    t_hooks(&c, &s);
    s.node = aemp_node_new(EV_DEFAULT, &c, NULL);
    REQUIRE(s.node && aemp_node_start(s.node) == 0);
    run_for(1.0);
    const char *sn = aemp_node_noderef(s.node);
    CHECK_INT(s.links_up, 2);
    CHECK(aemp_node_is_up(m1.node, sn));
    CHECK(aemp_node_is_up(m2.node, sn));
    aemp_node_destroy(s.node);
    aemp_node_destroy(m1.node);
    aemp_node_destroy(m2.node);
}

/* A slave whose master goes away keeps trying it: when a master comes
 * back on the same address the slave links again, says its name, and
 * its ports are reachable from the master again; what the slave sent
 * meanwhile is delivered once the link is back. */
TEST(node_slave_reconnects_after_master_restart)
{
    tnode_t m, s, m2;
    start_ticker();
    REQUIRE(mknode(&m, "127.0.0.1:0", secret, 0));
    char mref[256];
    snprintf(mref, sizeof mref, "%s", aemp_node_noderef(m.node));
    memset(&s, 0, sizeof s);
    const char *masters[1] = {mref};
    aemp_node_config_t c = {0};
    c.slave_name = "back";
    c.masters = masters;
    c.nmasters = 1;
    c.secret = secret;
    c.secret_len = strlen(secret);
    c.connect_interval = 0.2;
    c.connect_timeout = 10;
    t_hooks(&c, &s);
    s.node = aemp_node_new(EV_DEFAULT, &c, NULL);
    REQUIRE(s.node && aemp_node_start(s.node) == 0);
    want_t up1 = {&s, 1};
    (void)up1;
    late_t l = {ev_time() + 0.5, 0};
    run_until(time_passed, &l, 1);
    char sname[300];
    snprintf(sname, sizeof sname, "slave/back@%s", mref);
    CHECK_STR(aemp_node_noderef(s.node), sname);
    CHECK_INT(s.links_up, 1);

    /* the master goes away */
    aemp_node_destroy(m.node);
    for (int i = 0; i < 50 && !s.links_down; i++) run_for(0.05);
    CHECK_INT(s.links_down, 1);
    /* sent while the master is away: queued */
    CHECK_INT(aemp_node_send(s.node, mref, json_pack("[ssI]", "x", "while away", (json_int_t)0)), 0);
    run_for(0.5);

    /* a new master on the same address: the slave links again */
    char bind[256];
    snprintf(bind, sizeof bind, "%s", mref);
    REQUIRE(mknode(&m2, bind, secret, 0));
    CHECK_STR(aemp_node_noderef(m2.node), mref);
    want_t got1 = {&m2, 1};
    CHECK(run_until(got_n, &got1, 5));
    CHECK_INT(s.links_up, 2);
    CHECK_STR(aemp_node_noderef(s.node), sname);
    CHECK(aemp_node_is_up(m2.node, sname));
    /* and the master reaches the slave by its name */
    CHECK_INT(aemp_node_send(m2.node, sname, json_pack("[ssI]", "x", "to slave", (json_int_t)0)), 0);
    want_t ws = {&s, 1};
    CHECK(run_until(got_n, &ws, 3));
    aemp_node_destroy(s.node);
    aemp_node_destroy(m2.node);
}

/* ------------------------------------------------------------------ */
/* on_connect_failed: one event per failed attempt                     */

typedef struct attempts {
    int n, want;
    char peer[8][128], address[8][128], reason[8][128];
} attempts_t;

static void t_connect_failed(void *ud, aemp_node_t *node, const char *peer, const char *address,
                             const char *reason)
{
    attempts_t *a = ud;
    if (a->n < 8) {
        snprintf(a->peer[a->n], sizeof a->peer[0], "%s", peer);
        snprintf(a->address[a->n], sizeof a->address[0], "%s", address);
        snprintf(a->reason[a->n], sizeof a->reason[0], "%s", reason);
    }
    a->n++;
}

static int attempts_n(void *ud)
{
    const attempts_t *a = ud;
    return a->n >= a->want;
}

/* A protocol-0 node bound to 127.0.0.1:0 with secret sec, whose failed
 * attempts are counted in a; connect rounds 10 s apart, so one round of
 * attempts is what a test sees. */
static aemp_node_t *mknode_attempts(tnode_t *t, attempts_t *a, const char *sec,
                                    double connect_timeout)
{
    memset(t, 0, sizeof *t);
    memset(a, 0, sizeof *a);
    aemp_node_config_t c = {.bind = "127.0.0.1:0", .secret = sec, .secret_len = strlen(sec),
                            .connect_interval = 10, .connect_timeout = connect_timeout,
                            .on_connect_failed = t_connect_failed, .connect_failed_ud = a};
    return t_start(t, &c);
}

TEST(node_failed_attempt_reports_address_and_reason)
{
    tnode_t t;
    attempts_t a;
    start_ticker();
    REQUIRE(mknode_attempts(&t, &a, secret, 20));
    /* two closed ports: one event per endpoint, in the order tried */
    char ep1[32], ep2[32], peer[80];
    snprintf(ep1, sizeof ep1, "127.0.0.1:%d", free_port());
    snprintf(ep2, sizeof ep2, "127.0.0.1:%d", free_port());
    snprintf(peer, sizeof peer, "%s,%s", ep1, ep2);
    CHECK_INT(aemp_node_connect(t.node, peer), 0);
    a.want = 2;
    CHECK(run_until(attempts_n, &a, 5));
    run_for(0.3);
    CHECK_INT(a.n, 2);
    CHECK_STR(a.peer[0], peer);
    CHECK_STR(a.address[0], ep1);
    CHECK_STR(a.reason[0], "Connection refused");
    CHECK_STR(a.peer[1], peer);
    CHECK_STR(a.address[1], ep2);
    CHECK_STR(a.reason[1], "Connection refused");
    /* the link was never up: on_link has not said anything yet */
    CHECK_INT(t.links_up + t.links_down, 0);
    aemp_node_destroy(t.node);
}

TEST(node_failed_handshake_reports_the_handshake_error)
{
    tnode_t t, b;
    attempts_t a, none;
    start_ticker();
    REQUIRE(mknode_attempts(&t, &a, secret, 20));
    /* the other side refuses our secret; it made no attempt itself */
    REQUIRE(mknode_attempts(&b, &none, "another secret", 20));
    const char *peer = aemp_node_noderef(b.node);
    CHECK_INT(aemp_node_connect(t.node, peer), 0);
    a.want = 1;
    CHECK(run_until(attempts_n, &a, 5));
    run_for(0.3);
    CHECK_INT(a.n, 1);
    CHECK_STR(a.peer[0], peer);
    CHECK_STR(a.address[0], peer);
    CHECK_STR(a.reason[0], "authentication failure/shared secret mismatch");
    CHECK_INT(none.n, 0);
    CHECK_INT(t.links_up + b.links_up, 0);
    aemp_node_destroy(t.node);
    aemp_node_destroy(b.node);
}

TEST(node_failed_attempt_to_a_p1_seed_is_reported)
{
    tnode_t t;
    attempts_t a = {0};
    char seed[32];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", free_port());
    const char *seeds[] = {seed};
    start_ticker();
    aemp_node_config_t c = {.protocol = 1, .nodeid = "lonely", .seeds = seeds, .nseeds = 1,
                            .secret = secret, .secret_len = strlen(secret),
                            .on_connect_failed = t_connect_failed, .connect_failed_ud = &a};
    memset(&t, 0, sizeof t);
    t_hooks(&c, &t);
    int err = 0;
    t.node = aemp_node_new(EV_DEFAULT, &c, &err);
    REQUIRE(t.node);
    REQUIRE(aemp_node_start(t.node) == 0);
    a.want = 1;
    CHECK(run_until(attempts_n, &a, 5));
    CHECK_STR(a.address[0], seed);
    CHECK_STR(a.reason[0], "Connection refused");
    aemp_node_destroy(t.node);
}

/* A listener whose accept queue is full (backlog 0, one connection
 * waiting in it) drops the SYNs that come after: a connect to it stays
 * in progress. Returns the listener; *filler is the connection filling
 * its queue, ep its address. */
static int full_listener(int *filler, char *ep, size_t eplen)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 0) ||
        getsockname(fd, (struct sockaddr *)&sa, &sl))
        return -1;
    snprintf(ep, eplen, "127.0.0.1:%d", ntohs(sa.sin_port));
    *filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*filler < 0 || connect(*filler, (struct sockaddr *)&sa, sizeof sa)) return -1;
    usleep(20000); /* the filler's last ACK has put it in the queue */
    return fd;
}

/* A full listener (full_listener: its fd is returned, the filler's in
 * *filler, its address in ep) and a node counting its failed attempts
 * in a, with connect_timeout, connecting to it; -1 when either cannot
 * be made. */
static int node_to_full_listener(tnode_t *t, attempts_t *a, double connect_timeout, int *filler,
                                 char ep[32])
{
    int lfd = full_listener(filler, ep, 32);
    if (lfd < 0) return -1;
    start_ticker();
    if (!mknode_attempts(t, a, secret, connect_timeout) || aemp_node_connect(t->node, ep)) {
        close(lfd);
        return -1;
    }
    return lfd;
}

/* The greeting goes out without waiting for the connect to be reported
 * complete; a connect that never completes still fails at
 * connect_timeout (not at the longer handshake timeout), as "Connection
 * timed out". */
TEST(node_connect_never_answered_fails_at_connect_timeout)
{
    tnode_t t;
    attempts_t a;
    int filler = -1;
    char ep[32];
    ev_tstamp t0 = ev_time();
    int lfd = node_to_full_listener(&t, &a, 0.6, &filler, ep);
    REQUIRE(lfd >= 0);
    a.want = 1;
    CHECK(run_until(attempts_n, &a, 5));
    double took = ev_time() - t0;
    CHECK_INT(a.n, 1);
    CHECK_STR(a.address[0], ep);
    CHECK_STR(a.reason[0], "Connection timed out");
    CHECK(took >= 0.5 && took < 3.0);
    CHECK_INT(t.links_up, 0);
    aemp_node_destroy(t.node);
    close(filler);
    close(lfd);
}

/* A connect that completes late (its first SYN dropped, the one sent
 * again a second later taken) still sends the greeting once it is
 * connected: the send waited for the socket to be writable. The
 * handshake's time is counted from then: a slow connect takes nothing
 * from it. */
TEST(node_connect_completed_late_sends_its_greeting)
{
    tnode_t t;
    attempts_t a;
    int filler = -1;
    char ep[32];
    ev_tstamp t0 = ev_now(EV_DEFAULT);
    int lfd = node_to_full_listener(&t, &a, 8, &filler, ep);
    REQUIRE(lfd >= 0);
    run_for(0.3);
    /* the queue is freed: the SYN sent again is taken */
    int q = accept(lfd, NULL, NULL);
    REQUIRE(q >= 0);
    close(q);
    close(filler);
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    int fd = -1;
    char got[512];
    size_t n = 0;
    for (int i = 0; i < 100 && !memchr(got, '\n', n); i++) {
        run_for(0.05);
        if (fd < 0) fd = accept(lfd, NULL, NULL);
        if (fd >= 0) {
            fcntl(fd, F_SETFL, O_NONBLOCK);
            ssize_t r = recv(fd, got + n, sizeof got - 1 - n, 0);
            if (r > 0) n += (size_t)r;
        }
    }
    REQUIRE(fd >= 0);
    got[n] = '\0';
    CHECK(n > 5 && strncmp(got, "aemp;", 5) == 0 && memchr(got, '\n', n) != NULL);
    CHECK_INT(a.n, 0);
    aemp__link_t *l = t.node->links;
    REQUIRE(l != NULL);
    printf("    connected after %.2f s, the handshake's time counted from %.2f s\n",
           ev_now(EV_DEFAULT) - t0, l->hs_since - t0);
    CHECK(l->state == LINK_HANDSHAKE && l->hs_since - t0 >= 0.9);
    aemp_node_destroy(t.node);
    close(fd);
    close(lfd);
}

/* log_levels: a level left out of the mask never reaches the callback;
 * the levels in it do. */
static void count_levels(void *ud, int level, const char *msg)
{
    int *by_level = ud;
    (void)msg;
    if (level >= 0 && level <= AEMP_LOG_DEBUG) by_level[level]++;
}

static aemp_node_t *mknode_levels(tnode_t *t, int *by_level, unsigned levels)
{
    memset(t, 0, sizeof *t);
    aemp_node_config_t c = {0};
    c.bind = "127.0.0.1:0";
    c.secret = secret;
    c.secret_len = strlen(secret);
    c.connect_interval = 0.2;
    t_hooks(&c, t);
    c.log = count_levels;
    c.log_ud = by_level;
    c.log_levels = levels;
    int err = 0;
    t->node = aemp_node_new(EV_DEFAULT, &c, &err);
    if (t->node && aemp_node_start(t->node)) {
        aemp_node_destroy(t->node);
        t->node = NULL;
    }
    return t->node;
}

TEST(node_log_levels_mask_what_reaches_the_callback)
{
    tnode_t a, b, c;
    int la[4] = {0}, lb[4] = {0}, lc[4] = {0};
    start_ticker();
    REQUIRE(mknode_levels(&a, la, 1u << AEMP_LOG_ERROR | 1u << AEMP_LOG_WARN));
    REQUIRE(mknode_levels(&b, lb, 0));
    REQUIRE(mknode_levels(&c, lc, 1u << AEMP_LOG_INFO));
    /* a and c each link to b: "link up" is an INFO line on all three */
    CHECK_INT(aemp_node_send(a.node, aemp_node_noderef(b.node), json_pack("[ss]", "x", "hi")), 0);
    CHECK_INT(aemp_node_send(c.node, aemp_node_noderef(b.node), json_pack("[ss]", "x", "hi")), 0);
    want_t w = {&b, 2};
    CHECK(run_until(got_n, &w, 10));
    CHECK_INT(a.links_up, 1);
    CHECK_INT(c.links_up, 1);
    CHECK(lb[AEMP_LOG_INFO] >= 2); /* 0: every level */
    CHECK_INT(la[AEMP_LOG_INFO], 0);
    CHECK(lc[AEMP_LOG_INFO] >= 1);
    /* b goes: a warning on a (link lost), none on c, which only takes INFO */
    aemp_node_destroy(b.node);
    want_t da = {&a, 1}, dc = {&c, 1};
    CHECK(run_until(down_n, &da, 10));
    CHECK(run_until(down_n, &dc, 10));
    CHECK(la[AEMP_LOG_WARN] + la[AEMP_LOG_ERROR] >= 1);
    CHECK_INT(lc[AEMP_LOG_WARN] + lc[AEMP_LOG_ERROR] + lc[AEMP_LOG_DEBUG], 0);
    aemp_node_destroy(a.node);
    aemp_node_destroy(c.node);
}

static int keep_cb(aemp_port_t *p, json_t *m, void *ud)
{
    (void)p;
    (void)m;
    (void)ud;
    return AEMP_KEEP;
}

/* Watches of our ports follow their watcher's name: moved whole to a new
 * name, or joined into the watches a new name already has (two names
 * of one node merged); either way mon0 by the new name finds them and
 * nothing is left under the old one. */
TEST(node_watches_follow_their_watchers_name)
{
    tnode_t t;
    int by_level[4] = {0};
    REQUIRE(mknode_levels(&t, by_level, 0));
    aemp_node_t *n = t.node;
    aemp_port_t *p = aemp_port_new(n, keep_cb, NULL);
    REQUIRE(p);
    const char *local = strchr(aemp_port_id(p), '#') + 1;
    /* (a watch is filed under a peer: these two are known) */
    REQUIRE(aemp__peer_get(n, "a.invalid:1", 1) && aemp__peer_get(n, "b.invalid:1", 1));
    for (int i = 0; i < 3; i++) aemp__ports_watch(n, "a.invalid:1", local);
    for (int i = 0; i < 2; i++) aemp__ports_watch(n, "b.invalid:1", local);
    CHECK_INT(aemp__ports_watches(n, NULL), 5);
    aemp__ports_watcher_renamed(n, "a.invalid:1", "c.invalid:1"); /* moved whole */
    CHECK_INT(aemp__ports_watches(n, "a.invalid:1"), 0);
    CHECK_INT(aemp__ports_watches(n, "c.invalid:1"), 3);
    aemp__ports_watcher_renamed(n, "c.invalid:1", "b.invalid:1"); /* joined */
    CHECK_INT(aemp__ports_watches(n, "c.invalid:1"), 0);
    CHECK_INT(aemp__ports_watches(n, "b.invalid:1"), 5);
    CHECK_INT(aemp__ports_watches(n, NULL), 5);
    for (int i = 0; i < 5; i++) aemp__ports_unwatch(n, "b.invalid:1", local);
    CHECK_INT(aemp__ports_watches(n, NULL), 0);
    aemp__ports_unwatch(n, "b.invalid:1", local); /* (none left: nothing) */
    aemp_node_destroy(n);
}

/* The last line a node logged. */
static void keep_last(void *ud, int level, const char *msg)
{
    (void)level;
    snprintf(ud, 1024, "%s", msg);
}

/* Warnings whose text varies after the subject (a word a peer chose, as
 * in "unable to resolve TAG") are each a kind of their own: however many
 * kinds, at most AEMP_LOG_ALL_BURST lines a window are written (before,
 * once the limiter's slots were taken, every such line: 30000 of 30000
 * in the insider warning flood); lines of one kind from many subjects
 * stop at AEMP_LOG_KIND_BURST. Over the limit on all, each call site
 * still has AEMP_LOG_SITE_RESERVE lines: the flood's site spends its
 * own, and another site's warnings are not hidden by it. */
TEST(node_log_lines_of_many_kinds_bounded)
{
    tnode_t t;
    int by_level[4] = {0};
    REQUIRE(mknode_levels(&t, by_level, 0));
    for (int i = 0; i < 200; i++)
        aemp__log(t.node, AEMP_LOG_WARN, "%s%d: the same reason", "peer", i);
    int one_kind = by_level[AEMP_LOG_WARN];
    for (int i = 0; i < 5000; i++)
        aemp__log(t.node, AEMP_LOG_WARN, "error processing node message: unable to resolve tag%d", i);
    int all = by_level[AEMP_LOG_WARN];
    printf("    200 lines of one kind: %d written; then 5000 of as many kinds: %d written in all\n",
           one_kind, all);
    CHECK_INT(one_kind, AEMP_LOG_KIND_BURST);
    CHECK_INT(all, AEMP_LOG_ALL_BURST + AEMP_LOG_SITE_RESERVE);
    for (int i = 0; i < 10; i++) aemp__log(t.node, AEMP_LOG_WARN, "peer%d: another warning", i);
    CHECK_INT(by_level[AEMP_LOG_WARN] - all, AEMP_LOG_SITE_RESERVE);
    /* INFO and below are not limited */
    aemp__log(t.node, AEMP_LOG_INFO, "still written");
    CHECK_INT(by_level[AEMP_LOG_INFO] >= 1, 1);
    /* the first line of the next window says what the last one held */
    char last[1024] = "";
    t.node->cfg.log = keep_last;
    t.node->cfg.log_ud = last;
    t.node->log_all.start -= AEMP_LOG_WINDOW; /* (the window is over) */
    aemp__log(t.node, AEMP_LOG_WARN, "error processing node message: unable to resolve later");
    CHECK(strstr(last, "unable to resolve later ... and 0 more like this, 4100 lines in all, held "
                       "back in 10 s") != NULL);
    aemp_node_destroy(t.node);
}

/* A socket connected to itself (what a connect to a dead port of the
 * ephemeral range on this host can become) leaves that port in TIME_WAIT
 * once closed. A node's listener still comes back on the port when the
 * socket allowed address reuse, as the node's connects to this host do
 * (link.c); without it the port stays blocked for a minute (shown, not
 * required: that is the kernel's part). */
static int self_connected_then_closed(int port, int reuse)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (fd < 0) return -1;
    if (reuse) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int ok = !bind(fd, (struct sockaddr *)&sa, sizeof sa) &&
             !connect(fd, (struct sockaddr *)&sa, sizeof sa);
    close(fd);
    return ok ? 0 : -1;
}

/* A handshake's lines are each answered at once, and the answer carries
 * the ACK: a node's sockets start with delayed ACKs (link.c,
 * aemp__sock_ack_late). The listener must have it after listen(), which
 * resets it, for the sockets it accepts to inherit it. */
TEST(node_accepted_sockets_start_with_delayed_acks)
{
#ifndef TCP_QUICKACK
    SKIP("no TCP_QUICKACK on this system");
#else
    tnode_t a;
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0) != NULL);
    REQUIRE(a.node->nlisteners == 1);
    int lfd = a.node->listeners[0].fd;
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    REQUIRE(getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0);
    int quick = -1;
    socklen_t ql = sizeof quick;
    CHECK(getsockopt(lfd, IPPROTO_TCP, TCP_QUICKACK, &quick, &ql) == 0);
    CHECK(quick == 0);
    /* the loop does not run: the test accepts the connection itself */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(c >= 0);
    CHECK(connect(c, (struct sockaddr *)&sa, sl) == 0);
    int fl = fcntl(lfd, F_GETFL);
    fcntl(lfd, F_SETFL, fl & ~O_NONBLOCK);
    int s = accept(lfd, NULL, NULL);
    fcntl(lfd, F_SETFL, fl);
    CHECK(s >= 0);
    quick = -1;
    if (s >= 0) CHECK(getsockopt(s, IPPROTO_TCP, TCP_QUICKACK, &quick, &ql) == 0);
    CHECK(quick == 0);
    printf("    listener and accepted socket: TCP_QUICKACK %d (delayed ACKs)\n", quick);
    if (s >= 0) close(s);
    close(c);
    aemp_node_destroy(a.node);
#endif
}

TEST(node_listens_where_a_reusable_self_connection_was)
{
    int port = free_port_fixed();
    REQUIRE(self_connected_then_closed(port, 1) == 0);
    char bind_to[32];
    snprintf(bind_to, sizeof bind_to, "127.0.0.1:%d", port);
    tnode_t a;
    CHECK(mknode(&a, bind_to, secret, 0) != NULL);
    if (a.node) aemp_node_destroy(a.node);

    int other = free_port_fixed();
    tnode_t b;
    if (other != port && self_connected_then_closed(other, 0) == 0) {
        snprintf(bind_to, sizeof bind_to, "127.0.0.1:%d", other);
        if (mknode(&b, bind_to, secret, 0)) {
            aemp_node_destroy(b.node);
            printf("    note: this kernel let a listener bind over a non-reusable TIME_WAIT\n");
        } else {
            printf("    without address reuse the port stays blocked (TIME_WAIT), as expected\n");
        }
    }
}

/* Peers a node meets by name alone (any message may name a node) are
 * forgotten once unused: each takes exactly its own keys out of the peer
 * table (one lookup per key, not a walk of the table), and a key another
 * peer has taken over since stays that peer's. */
TEST(node_forgotten_peers_take_only_their_own_keys)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    REQUIRE(loop);
    aemp_node_config_t c = {.protocol = 1, .nodeid = "me"};
    c.log_levels = 1u << AEMP_LOG_ERROR;
    aemp_node_t *n = aemp_node_new(loop, &c, NULL);
    REQUIRE(n);
    size_t base = n->peers.count;
    enum { K = 3000 };
    aemp__enter(n);
    for (int i = 0; i < K; i++) {
        char name[32];
        snprintf(name, sizeof name, "met%d", i);
        aemp__peer_t *p = aemp__peer_get(n, name, 1);
        CHECK(p != NULL);
        if (p) aemp__peer_fail(p, "gone");
    }
    CHECK_INT(n->peers.count, base + K);
    aemp__leave(n); /* the callbacks unwound: the idle ones go */
    CHECK_INT(n->peers.count, base);
    CHECK(n->peers_list == NULL);

    aemp__enter(n);
    aemp__peer_t *a = aemp__peer_get(n, "a", 1), *b = aemp__peer_get(n, "b", 1);
    REQUIRE(a && b);
    aemp__node_peer_renamed(n, "a", "x"); /* a is also "x" */
    aemp__node_peer_renamed(n, "b", "x"); /* then b is (a has no link) */
    CHECK(aemp__peer_get(n, "x", 0) == b);
    aemp__peer_fail(a, "gone");
    aemp__leave(n);
    CHECK(aemp__peer_get(n, "a", 0) == NULL);
    CHECK(aemp__peer_get(n, "x", 0) == b);
    CHECK(aemp__peer_get(n, "b", 0) == b);

    /* a name that goes back and forth between two peers: each keeps a
     * list of about the keys it has, not of every move */
    aemp__enter(n);
    aemp__peer_t *c2 = aemp__peer_get(n, "c", 1);
    REQUIRE(c2);
    for (int i = 0; i < 1000; i++) aemp__node_peer_renamed(n, i % 2 ? "b" : "c", "y");
    printf("    after 1000 moves of one name: %zu and %zu keys listed\n", b->nnames, c2->nnames);
    CHECK(b->nnames <= 16 && c2->nnames <= 16);
    aemp__leave(n);
    aemp_node_destroy(n);
    ev_loop_destroy(loop);
}

static int lost_fired[3];
static void lost_cb(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    (void)n;
    (void)portid;
    (void)reason;
    lost_fired[(intptr_t)ud]++;
}

/* A peer's failure fires our monitors of its ports under each name that
 * leads to it: its own, and a name of several endpoints that reaches it
 * by one of them (protocol 0), looked up in their indexes; a monitor of
 * another node's port stays. */
TEST(node_peer_failure_fires_monitors_under_each_name)
{
    tnode_t t;
    int by_level[4] = {0};
    REQUIRE(mknode_levels(&t, by_level, 0));
    aemp_node_t *n = t.node;
    aemp__peer_t *p = aemp__peer_get(n, "127.0.0.1:5", 1);
    REQUIRE(p);
    memset(lost_fired, 0, sizeof lost_fired);
    REQUIRE(aemp_mon(n, "127.0.0.1:5#a", lost_cb, (void *)0));
    REQUIRE(aemp_mon(n, "127.0.0.9:5,127.0.0.1:5#b", lost_cb, (void *)1));
    REQUIRE(aemp_mon(n, "127.0.0.8:5#c", lost_cb, (void *)2));
    CHECK(aemp__peer_get(n, "127.0.0.9:5,127.0.0.1:5", 0) == p);
    unsigned long v0 = aemp__ports_visits(n);
    aemp__peer_fail(p, "gone");
    run_for(0.05);
    CHECK_INT(lost_fired[0], 1);
    CHECK_INT(lost_fired[1], 1);
    CHECK_INT(lost_fired[2], 0);
    CHECK_INT(aemp__ports_visits(n) - v0, 2);
    aemp_node_destroy(n);
}
