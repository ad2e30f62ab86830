/*
 * test_links.c - which link a node uses when there are two to one peer.
 * The peer is a raw socket with a handshake engine, named after an
 * address on 127.0.0.2; the node under test is on 127.0.0.1 (a smaller
 * noderef: it holds) or 127.0.0.3 (a larger one: it never holds). A
 * listener that never accepts keeps the node's own attempt hanging in
 * its handshake; closing it resets that attempt.
 */
#include "test.h"
#include "aemp.h"
#include "harness_node.h"
#include "harness_raw.h"
#include "node_int.h" /* AEMP_HOLD_UP_MAX */

#include <ev.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Lines the node sent on r that the engine has not taken. */
static int lines_in(raw_t *r)
{
    int n = 0;
    raw_pump(r);
    for (size_t i = 0; i < r->inlen; i++) n += r->in[i] == '\n';
    return n;
}

/* Starts the node on node_ip and a listener for the peer's name, which
 * it returns (its endpoint in ep), then queues a message to the peer. */
static int setup(tnode_t *x, const char *node_ip, char *ep, size_t eplen, const char *first)
{
    char bind[32];
    start_ticker();
    snprintf(bind, sizeof bind, "%s:0", node_ip);
    if (!mknode(x, bind, secret, 0)) return -1;
    int ls = raw_listen("127.0.0.2", ep, eplen);
    if (ls >= 0) aemp_node_send(x->node, ep, json_pack("[ss]", "p", first));
    return ls;
}

/* The peer, named ep, connects to the node and sends its auth line. */
static aemp_hs_t *peer_connects(raw_t *y, const tnode_t *x, const char *ep)
{
    char err[256] = "";
    if (raw_open(y, aemp_node_noderef(x->node))) return NULL;
    return raw_auth_begin(y, ep, secret, NULL, err, sizeof err);
}

/* The node (bound to node_ip) has an attempt to the peer hanging when the
 * peer connects to it and proves itself. */
static void attempt_vs_incoming(const char *node_ip, int node_holds)
{
    tnode_t x;
    char ep[64];
    int bh = setup(&x, node_ip, ep, sizeof ep, "queued");
    REQUIRE(bh >= 0);
    run_for(0.2); /* the attempt is connected and waits for a greeting */

    raw_t y;
    char err[256] = "";
    aemp_hs_t *hs = peer_connects(&y, &x, ep);
    REQUIRE(hs != NULL);
    if (node_holds) {
        run_for(0.3);
        CHECK_INT(lines_in(&y), 0); /* no auth line after its greeting */
        CHECK_INT(x.links_up, 0);
        close(bh); /* resets the node's attempt: the held link goes up */
        bh = -1;
    }
    double t0 = ev_time();
    CHECK_INT(raw_auth_end(&y, hs, 5, err, sizeof err), 1);
    CHECK(ev_time() - t0 < 2.0);
    CHECK(raw_wait_for(&y, "[\"p\",\"queued\"]", 5));
    CHECK_INT(x.links_up, 1);
    CHECK(!strcmp(x.last_up_peer, ep));
    if (bh >= 0) {
        /* the node's own attempt was closed as the loser */
        int fd = accept(bh, NULL, NULL);
        CHECK(fd >= 0);
        char buf[4096];
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t r = 1;
        while (r > 0 && poll(&pf, 1, 2000) == 1) r = read(fd, buf, sizeof buf);
        CHECK(r == 0);
        close(fd);
        close(bh);
    }
    CHECK_INT(x.links_down, 0);
    raw_close(&y);
    aemp_node_destroy(x.node);
}

TEST(links_smaller_node_holds_incoming_until_its_attempt_fails)
{
    attempt_vs_incoming("127.0.0.1", 1);
}

TEST(links_larger_node_takes_incoming_at_once)
{
    attempt_vs_incoming("127.0.0.3", 0);
}

/* The node's link to the peer is up when the peer connects again (it
 * restarted, or gave the old link up). */
static void up_vs_incoming(const char *node_ip, int node_holds)
{
    tnode_t x;
    char ep[64];
    int ls = setup(&x, node_ip, ep, sizeof ep, "first");
    REQUIRE(ls >= 0);
    struct pollfd pf = {ls, POLLIN, 0};
    for (int i = 0; i < 50 && poll(&pf, 1, 0) == 0; i++) run_for(0.02);
    int fd = accept(ls, NULL, NULL);
    REQUIRE(fd >= 0);
    raw_t y1, y2;
    raw_adopt(&y1, fd);
    char err[256] = "";
    aemp_hs_t *hs = raw_auth_begin(&y1, ep, secret, NULL, err, sizeof err);
    REQUIRE(hs != NULL);
    CHECK_INT(raw_auth_end(&y1, hs, 5, err, sizeof err), 1);
    CHECK(raw_wait_for(&y1, "[\"p\",\"first\"]", 5));
    CHECK_INT(x.links_up, 1);

    hs = peer_connects(&y2, &x, ep);
    REQUIRE(hs != NULL);
    if (node_holds) {
        /* held; the old link is probed, and its end releases the new */
        CHECK(raw_wait_for(&y1, "[\"\",\"devnull\"]", 2));
        CHECK_INT(lines_in(&y2), 0);
        CHECK_INT(x.links_down, 0);
        raw_close(&y1);
    }
    CHECK_INT(raw_auth_end(&y2, hs, 5, err, sizeof err), 1);
    if (!node_holds) {
        /* the new link replaced the old one */
        CHECK(raw_wait_closed(&y1, 2));
        raw_close(&y1);
    }
    want_t down = {&x, 1};
    CHECK(run_until(down_n, &down, 2)); /* the old link's monitors heard */
    aemp_node_send(x.node, ep, json_pack("[ss]", "p", "second"));
    CHECK(raw_wait_for(&y2, "[\"p\",\"second\"]", 5));
    CHECK_INT(x.links_up, 2);
    raw_close(&y2);
    close(ls);
    aemp_node_destroy(x.node);
}

TEST(links_smaller_node_probes_old_link_before_taking_new)
{
    up_vs_incoming("127.0.0.1", 1);
}

TEST(links_larger_node_replaces_old_link)
{
    up_vs_incoming("127.0.0.3", 0);
}

static int both_up(void *ud)
{
    tnode_t **t = ud;
    return t[0]->links_up >= 1 && t[1]->links_up >= 1;
}

static int got_more(void *ud)
{
    want_t *w = ud;
    return w->t->received > w->n;
}

/* Two nodes have a link up; the second sends to the first under another
 * name for it (alias: an address of the first that it does not announce),
 * so it opens a second link. The first node is the larger (node_ip
 * "[::]") or the smaller (127.0.0.1): either way the message arrives, the
 * smaller one taking the new link once AEMP_HOLD_UP_MAX has passed. */
static void second_link_under_alias(const char *a_bind, const char *b_bind, const char *alias_host,
                                    double within)
{
    tnode_t a, b;
    start_ticker();
    REQUIRE(mknode(&a, a_bind, secret, 0));
    REQUIRE(mknode(&b, b_bind, secret, 0));
    aemp_node_send(a.node, aemp_node_noderef(b.node), json_pack("[ss]", "p", "hi"));
    tnode_t *ab[2] = {&a, &b};
    REQUIRE(run_until(both_up, ab, 3));
    char alias[80];
    snprintf(alias, sizeof alias, "%s%s", alias_host, strrchr(aemp_node_noderef(a.node), ':'));
    want_t w = {&a, a.received};
    aemp_node_send(b.node, alias, json_pack("[ss]", "q", "via alias"));
    CHECK(run_until(got_more, &w, within));
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
}

TEST(links_second_link_under_alias_smaller_node)
{
    second_link_under_alias("127.0.0.1:0", "127.0.0.3:0", "0.0.0.0", AEMP_HOLD_UP_MAX + 3);
}

TEST(links_second_link_under_alias_larger_node)
{
    second_link_under_alias("[::]:0", "127.0.0.1:0", "[::1]", 2);
}

/* The node's own attempt reaches its connect deadline while it holds the
 * peer's verified link: the queue is not dropped, the held link goes up
 * and carries it. */
TEST(links_deadline_with_held_link_keeps_queue)
{
    tnode_t x;
    char ep[64];
    int bh = setup(&x, "127.0.0.1", ep, sizeof ep, "queued");
    REQUIRE(bh >= 0);
    run_for(0.2);
    raw_t y;
    char err[256] = "";
    aemp_hs_t *hs = peer_connects(&y, &x, ep);
    REQUIRE(hs != NULL);
    CHECK_INT(raw_auth_end(&y, hs, 10, err, sizeof err), 1);
    CHECK(raw_wait_for(&y, "[\"p\",\"queued\"]", 2));
    CHECK_INT(x.links_down, 0);
    raw_close(&y);
    close(bh);
    aemp_node_destroy(x.node);
}

static int merged_fired;
static char merged_reason[256];
static void merged_cb(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    (void)n;
    (void)portid;
    (void)ud;
    merged_fired++;
    char *t = aemp_json_encode(reason, NULL);
    snprintf(merged_reason, sizeof merged_reason, "%s", t ? t : "?");
    free(t);
}

/* Two names of one node with messages queued under each: the link made
 * for one greets with the other, and the two queues together may not
 * pass max_outq. Over it, as any overflow, the node has failed: what
 * waited under either name is gone and our monitors of it fire with
 * transport_error "send queue overflow" (before: the two were joined,
 * up to twice max_outq); the new link goes up afresh. */
TEST(links_merged_queues_keep_max_outq)
{
    tnode_t x;
    memset(&x, 0, sizeof x);
    start_ticker();
    aemp_node_config_t c = {.bind = "127.0.0.1:0", .secret = secret, .secret_len = strlen(secret),
                            .max_outq = 1000};
    t_hooks(&c, &x);
    int err = 0;
    x.node = aemp_node_new(EV_DEFAULT, &c, &err);
    REQUIRE(x.node && aemp_node_start(x.node) == 0);
    char ep[64], other[64], id[96], big[601];
    int ls = raw_listen("127.0.0.2", ep, sizeof ep);
    REQUIRE(ls >= 0);
    snprintf(other, sizeof other, "127.0.0.3:%d", free_port()); /* (nobody listens) */
    memset(big, 'b', 600);
    big[600] = 0;
    CHECK_INT(aemp_node_send(x.node, other, json_pack("[ss]", "q", big)), 0);
    snprintf(id, sizeof id, "%s#m", ep);
    merged_fired = 0;
    REQUIRE(aemp_mon(x.node, id, merged_cb, NULL));
    CHECK_INT(aemp_node_send(x.node, ep, json_pack("[ss]", "p", big)), 0);
    struct pollfd pf = {ls, POLLIN, 0};
    for (int i = 0; i < 50 && poll(&pf, 1, 0) == 0; i++) run_for(0.02);
    int fd = accept(ls, NULL, NULL);
    REQUIRE(fd >= 0);
    raw_t y;
    raw_adopt(&y, fd);
    char why[256] = "";
    aemp_hs_t *hs = raw_auth_begin(&y, other, secret, NULL, why, sizeof why);
    REQUIRE(hs);
    CHECK_INT(raw_auth_end(&y, hs, 5, why, sizeof why), 1);
    for (int i = 0; i < 50 && !merged_fired; i++) run_for(0.02);
    CHECK_INT(merged_fired, 1);
    char want[160];
    snprintf(want, sizeof want, "[\"transport_error\",\"%s\",\"send queue overflow\"]", other);
    CHECK_STR(merged_reason, want);
    snprintf(want, sizeof want, "%s: send queue overflow (", other);
    CHECK(strstr(x.warnings, want) != NULL);
    CHECK(strstr(x.warnings, "is found to be the same node") != NULL);
    run_for(0.1);
    raw_pump(&y);
    CHECK(strstr(y.in, "[\"p\",") == NULL);
    CHECK(strstr(y.in, "[\"q\",") == NULL);
    CHECK(x.node->peer_queued == 0);
    CHECK(aemp_node_is_up(x.node, other)); /* (the new link, afresh) */
    raw_close(&y);
    close(ls);
    aemp_node_destroy(x.node);
}
