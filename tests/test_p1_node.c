/*
 * test_p1_node.c - protocol-1 nodes (PROTOCOL-1.md) in one process over
 * loopback: node ids, seeds, the first link and its g_slave messages,
 * messages between ports named NODEID#ID, remote monitors with kil0/kil1,
 * the refusal of a second link, and the database calls' refusal on a
 * protocol-0 node.
 */
#include "test.h"
#include "harness_node.h"
#include "node_int.h" /* aemp__node_peer_tls */

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct p1n {
    tnode_t t;
    aemp_node_t *node;
    char listen[80];
} p1n_t;

/* A started protocol-1 node with id `id`, listening on 127.0.0.1 (a free
 * port), with the given seed (or none). */
static aemp_node_t *mk1(p1n_t *x, const char *id, const char *seed)
{
    memset(x, 0, sizeof *x);
    x->node = mknode1(&x->t, id, &seed, seed ? 1 : 0, secret, 0);
    return x->node;
}

static int links_up(void *ud)
{
    return ((p1n_t *)ud)->t.links_up > 0;
}

typedef struct seen1 {
    int calls;
    json_t *log;
} seen1_t;

static int rec(aemp_port_t *p, json_t *msg, void *ud)
{
    seen1_t *s = ud;
    (void)p;
    s->calls++;
    json_array_append(s->log, msg);
    return AEMP_KEEP;
}

static void mon_rec(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    seen1_t *s = ud;
    (void)n;
    (void)portid;
    s->calls++;
    json_array_append(s->log, reason);
}

static int got_calls(void *ud)
{
    return ((seen1_t *)ud)->calls > 0;
}

static char *text(json_t *v)
{
    static char buf[1024];
    char *t = aemp_json_encode(v, NULL);
    snprintf(buf, sizeof buf, "%s", t ? t : "(null)");
    free(t);
    return buf;
}

TEST(p1_two_nodes_message_monitor_kill)
{
    p1n_t a, b;
    REQUIRE(mk1(&a, "alpha", NULL));
    size_t nl = 0;
    const char *const *ls = aemp_node_listeners(a.node, &nl);
    REQUIRE(nl == 1);
    REQUIRE(mk1(&b, "beta", ls[0]));
    CHECK_STR(aemp_node_noderef(b.node), "beta");
    /* beta connects to its seed at start */
    CHECK(run_until(links_up, &b, 5));
    CHECK(run_until(links_up, &a, 5));
    CHECK_STR(b.t.last_up_peer, "alpha");
    CHECK_STR(a.t.last_up_peer, "beta");
    CHECK(aemp_node_is_up(b.node, "alpha"));

    /* ports are NODEID#ID and messages flow both ways */
    seen1_t sa = {0, json_array()}, sb = {0, json_array()};
    aemp_port_t *pa = aemp_port_new(a.node, rec, &sa);
    aemp_port_t *pb = aemp_port_new(b.node, rec, &sb);
    CHECK(!strncmp(aemp_port_id(pa), "alpha#", 6));
    CHECK_INT(aemp_sendf(b.node, aemp_port_id(pa), "[sis]", "hello", 1, aemp_port_id(pb)), 0);
    CHECK(run_until(got_calls, &sa, 5));
    char want[256];
    snprintf(want, sizeof want, "[\"hello\",1,\"%s\"]", aemp_port_id(pb));
    CHECK_STR(text(json_array_get(sa.log, 0)), want);
    CHECK_INT(aemp_sendf(a.node, aemp_port_id(pb), "[s]", "back"), 0);
    CHECK(run_until(got_calls, &sb, 5));
    CHECK_STR(text(json_array_get(sb.log, 0)), "[\"back\"]");

    /* beta watches alpha's port, then kills it remotely (kil1); the
     * watcher hears kil0 with the reason */
    seen1_t m = {0, json_array()};
    CHECK(aemp_mon(b.node, aemp_port_id(pa), mon_rec, &m) != NULL);
    run_for(0.2);
    CHECK_INT(aemp_port_kill_id(b.node, aemp_port_id(pa), json_pack("[ss]", "bye", "now")), 0);
    CHECK(run_until(got_calls, &m, 5));
    CHECK_STR(text(json_array_get(m.log, 0)), "[\"bye\",\"now\"]");

    /* a monitor of a port alpha does not have: no_such_port, naming it */
    seen1_t m2 = {0, json_array()};
    CHECK(aemp_mon(b.node, "alpha#nope", mon_rec, &m2) != NULL);
    CHECK(run_until(got_calls, &m2, 5));
    CHECK_STR(text(json_array_get(m2.log, 0)),
              "[\"no_such_port\",\"cannot monitor nonexistent port\",\"alpha#nope\"]");

    /* node requests of protocol 1: time, can */
    CHECK_INT(aemp_sendf(b.node, "alpha", "[sss]", "time", aemp_port_id(pb), "t"), 0);
    CHECK_INT(aemp_sendf(b.node, "alpha", "[ssss]", "can", "kil1", aemp_port_id(pb), "c1"), 0);
    CHECK_INT(aemp_sendf(b.node, "alpha", "[ssss]", "can", "lookup", aemp_port_id(pb), "c2"), 0);
    sb.calls = 0;
    json_array_clear(sb.log);
    for (int i = 0; i < 100 && sb.calls < 3; i++) run_for(0.05);
    CHECK_INT(sb.calls, 3);
    CHECK(json_is_real(json_array_get(json_array_get(sb.log, 0), 1)));
    CHECK_STR(text(json_array_get(sb.log, 1)), "[\"c1\",\"1\"]");
    CHECK_STR(text(json_array_get(sb.log, 2)), "[\"c2\",\"\"]");
    /* alpha was no global node: beta's bare g_slave made it one (2.02) */
    CHECK(!aemp_node_is_global(b.node));
    CHECK(aemp_node_is_global(a.node));
    CHECK(strstr(a.t.warnings, "unable to resolve g_slave") == NULL);
    CHECK_INT(a.t.links_down + b.t.links_down, 0);

    json_decref(sa.log);
    json_decref(sb.log);
    json_decref(m.log);
    json_decref(m2.log);
    aemp_node_destroy(b.node);
    aemp_node_destroy(a.node);
}

TEST(p1_second_link_refused_with_2_02_text)
{
    p1n_t a, b;
    REQUIRE(mk1(&a, "alpha", NULL));
    size_t nl = 0;
    const char *const *ls = aemp_node_listeners(a.node, &nl);
    REQUIRE(nl == 1);
    REQUIRE(mk1(&b, "beta", ls[0]));
    CHECK(run_until(links_up, &b, 5));
    /* a third node calling itself beta while beta's link is up */
    p1n_t c;
    REQUIRE(mk1(&c, "beta", ls[0]));
    for (int i = 0; i < 60 && !strstr(a.t.warnings, "already connected"); i++) run_for(0.05);
    CHECK(strstr(a.t.warnings, "beta already connected, not connecting again.") != NULL);
    CHECK(aemp_node_is_up(b.node, "alpha"));
    CHECK_INT(b.t.links_down, 0);
    aemp_node_destroy(c.node);
    aemp_node_destroy(b.node);
    aemp_node_destroy(a.node);
}

TEST(p1_config_errors_and_db_on_protocol_0)
{
    aemp_node_config_t c = {0};
    int err = 0;
    c.protocol = 1;
    CHECK(aemp_node_new(EV_DEFAULT, &c, &err) == NULL); /* no node id */
    CHECK_INT(err, AEMP_EINVAL);
    c.nodeid = "bad#id";
    CHECK(aemp_node_new(EV_DEFAULT, &c, &err) == NULL);
    CHECK_INT(err, AEMP_EINVAL);
    c.protocol = 7;
    c.nodeid = "x";
    CHECK(aemp_node_new(EV_DEFAULT, &c, &err) == NULL);
    CHECK_INT(err, AEMP_EINVAL);
    tnode_t t;
    aemp_node_t *n = mknode(&t, "127.0.0.1:0", secret, 0);
    REQUIRE(n);
    CHECK_INT(aemp_db_set(n, "f", "k", json_string("v")), AEMP_ESTATE);
    CHECK_INT(aemp_db_del(n, "f", "k"), AEMP_ESTATE);
    CHECK(aemp_db_mon(n, "f", NULL, NULL) == NULL);
    aemp_node_destroy(n);
}

/* Two protocol-1 nodes with a certificate in their configuration and no
 * secret: TLS after the nonce lines, tls_sha3_512 inside (PROTOCOL-1
 * §4.4), messages flow; a node without a certificate and without a
 * secret cannot talk to them (2.02's text). */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = malloc(1 << 16);
    *len = b ? fread(b, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    if (b) b[*len] = 0;
    return b;
}

static aemp_node_t *mk1_cert(p1n_t *x, const char *id, const char *seed, const char *cert,
                             size_t cert_len)
{
    memset(x, 0, sizeof *x);
    start_ticker();
    aemp_node_config_t c = {0};
    static const char *binds[] = {"127.0.0.1:0"};
    const char *seeds[] = {seed};
    c.protocol = 1;
    c.nodeid = id;
    c.binds = binds;
    c.nbinds = 1;
    c.seeds = seed ? seeds : NULL;
    c.nseeds = seed ? 1 : 0;
    c.cert = cert;
    c.cert_len = cert_len;
    t_hooks(&c, &x->t);
    x->node = aemp_node_new(EV_DEFAULT, &c, NULL);
    if (x->node && aemp_node_start(x->node)) {
        aemp_node_destroy(x->node);
        x->node = NULL;
    }
    x->t.node = x->node;
    return x->node;
}

TEST(p1_tls_with_cert_and_no_secret)
{
    size_t cl = 0;
    char *cert = read_all(t_shared_path("vectors/tls/aemp-secret.pem"), &cl);
    REQUIRE(cert);
    p1n_t a, b, c;
    REQUIRE(mk1_cert(&a, "tls-a", NULL, cert, cl));
    size_t nl = 0;
    const char *const *ls = aemp_node_listeners(a.node, &nl);
    REQUIRE(nl == 1);
    REQUIRE(mk1_cert(&b, "tls-b", ls[0], cert, cl));
    CHECK(run_until(links_up, &b, 5));
    CHECK(aemp_node_is_up(b.node, "tls-a"));
    const char *info = aemp__node_peer_tls(b.node, "tls-a");
    CHECK(info && strstr(info, "TLS") != NULL);
    CHECK_STR(aemp_node_peer_kv(b.node, "tls-a", "tls"), "1.0");
    seen1_t sa = {0, json_array()};
    aemp_port_t *pa = aemp_port_new(a.node, rec, &sa);
    CHECK_INT(aemp_sendf(b.node, aemp_port_id(pa), "[s]", "over tls"), 0);
    CHECK(run_until(got_calls, &sa, 5));
    /* no certificate, no secret: 2.02's refusal */
    REQUIRE(mk1_cert(&c, "plain-c", ls[0], NULL, 0));
    for (int i = 0; i < 60 && !strstr(c.t.warnings, "unable to handshake TLS"); i++) run_for(0.05);
    CHECK(strstr(c.t.warnings, "unable to handshake TLS and no shared secret configured") != NULL);
    CHECK(!aemp_node_is_up(c.node, "tls-a"));
    json_decref(sa.log);
    aemp_node_destroy(c.node);
    aemp_node_destroy(b.node);
    aemp_node_destroy(a.node);
    free(cert);
}

/* Protocol 1 watches a node port by its link alone: no mon1 "" goes out
 * (2.02 never sends one), and the monitor fires when the link is lost. */
static int downs(void *ud)
{
    return ((p1n_t *)ud)->t.links_down > 0;
}

TEST(p1_node_port_monitor_is_the_link)
{
    p1n_t a, b;
    REQUIRE(mk1(&a, "alpha", NULL));
    size_t nl = 0;
    const char *const *ls = aemp_node_listeners(a.node, &nl);
    REQUIRE(mk1(&b, "beta", ls[0]));
    CHECK(run_until(links_up, &b, 5));
    seen1_t m = {0, json_array()};
    CHECK(aemp_mon(b.node, "alpha", mon_rec, &m) != NULL);
    run_for(0.2);
    /* alpha heard no mon1 (it would warn about a port "" it lacks or
     * answer kil0): the monitor is still quiet */
    CHECK_INT(m.calls, 0);
    aemp_node_destroy(a.node);
    CHECK(run_until(downs, &b, 5));
    CHECK(run_until(got_calls, &m, 5));
    CHECK_STR(json_string_value(json_array_get(json_array_get(m.log, 0), 0)), "transport_error");
    CHECK_STR(json_string_value(json_array_get(json_array_get(m.log, 0), 1)), "alpha");
    CHECK_STR(json_string_value(json_array_get(json_array_get(m.log, 0), 2)), "Unexpected end-of-file");
    json_decref(m.log);
    aemp_node_destroy(b.node);
}

/* A seed that reaches us before we reach it is still our seed: our own
 * attempt is refused ("already connected"), its address then names that
 * node, which becomes our master, and what waited for a master goes out. */
static int db_answered;
static void db_answer(aemp_node_t *n, const char *f, json_t *r, void *ud)
{
    (void)n;
    (void)f;
    (void)r;
    (void)ud;
    db_answered++;
}

static int answered(void *ud)
{
    (void)ud;
    return db_answered > 0;
}

TEST(p1_seed_that_reached_us_first_is_our_master)
{
    tnode_t s, m;
    char ma[64], sa[64];
    start_ticker();
    snprintf(ma, sizeof ma, "127.0.0.1:%d", free_port());
    snprintf(sa, sizeof sa, "127.0.0.1:%d", free_port());
    const char *seeds[] = {ma};
    memset(&s, 0, sizeof s);
    memset(&m, 0, sizeof m);
    REQUIRE(mknode_p1(&s, "s", sa, seeds, 1)); /* its seed is not up yet */
    db_answered = 0;
    CHECK_INT(aemp_db_family(s.node, "'l", db_answer, NULL), 0); /* waits for a master */
    run_for(0.3);
    REQUIRE(mknode_p1(&m, "m", ma, seeds, 1)); /* its own seed: global */
    CHECK(aemp_node_is_global(m.node));
    CHECK_INT(aemp_node_connect(m.node, sa), 0); /* m reaches s first */
    CHECK(run_until(answered, NULL, 8));
    CHECK(aemp_node_is_up(s.node, "m"));
    aemp_node_destroy(s.node);
    aemp_node_destroy(m.node);
}

/* Node ids are free text: a comma is no list of names in protocol 1. */
TEST(p1_node_id_with_a_comma)
{
    tnode_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    start_ticker();
    REQUIRE(mknode_p1(&a, "m", NULL, NULL, 0));
    size_t nl = 0;
    const char *const *ls = aemp_node_listeners(a.node, &nl);
    REQUIRE(nl == 1);
    const char *seeds[] = {ls[0]};
    REQUIRE(mknode_p1(&b, "q,m", NULL, seeds, 1));
    for (int i = 0; i < 100 && !aemp_node_is_up(b.node, "m"); i++) run_for(0.02);
    CHECK(aemp_node_is_up(b.node, "m"));
    CHECK(aemp_node_is_up(a.node, "q,m"));
    aemp_node_destroy(b.node);
    aemp_node_destroy(a.node);
}

/* A peer cannot make a node send its own node port a request (what a
 * node says to itself is trusted: a global node's database answers), and
 * db names that are no JSON strings are refused at once. */
/* alpha, and beta whose seed alpha is, linked. */
static int mk_pair(p1n_t *a, p1n_t *b)
{
    size_t nl = 0;
    if (!mk1(a, "alpha", NULL)) return 0;
    const char *const *ls = aemp_node_listeners(a->node, &nl);
    return nl == 1 && mk1(b, "beta", ls[0]) && run_until(links_up, b, 5);
}

TEST(p1_relay_to_own_node_port_and_bad_db_names)
{
    p1n_t a, b;
    REQUIRE(mk_pair(&a, &b));
    CHECK_INT(aemp_sendf(b.node, "alpha", "[sssss]", "snd", "alpha", "g_chg2", "fam", "x"), 0);
    for (int i = 0; i < 100 && !strstr(a.t.warnings, "own node port"); i++) run_for(0.02);
    CHECK(strstr(a.t.warnings, "beta: relay to this node's own node port refused") != NULL);
    CHECK_INT(a.t.links_down + b.t.links_down, 0);
    CHECK_INT(aemp_db_set(a.node, "bad\xff", "k", NULL), AEMP_EINVAL);
    CHECK_INT(aemp_db_set(a.node, "f", "bad\xff", json_true()), AEMP_EINVAL);
    CHECK_INT(aemp_db_family(a.node, "bad\xff", db_answer, NULL), AEMP_EINVAL);
    CHECK(aemp_db_mon(a.node, "bad\xff", NULL, NULL) == NULL);
    aemp_node_destroy(b.node);
    aemp_node_destroy(a.node);
}

/* A node id that looks like an address is still a name: where that node
 * listens is asked of the seed (g_find), not dialled. */
TEST(p1_address_shaped_node_id_is_found_through_the_seed)
{
    tnode_t m, x, s;
    char ma[64], xid[64];
    start_ticker();
    snprintf(ma, sizeof ma, "127.0.0.1:%d", free_port());
    snprintf(xid, sizeof xid, "127.0.0.1:%d", free_port()); /* nobody listens there */
    const char *seeds[] = {ma};
    memset(&m, 0, sizeof m);
    memset(&x, 0, sizeof x);
    memset(&s, 0, sizeof s);
    REQUIRE(mknode_p1(&m, "m", ma, seeds, 1)); /* the seed, global */
    REQUIRE(mknode_p1(&x, xid, NULL, seeds, 1));
    REQUIRE(mknode_p1(&s, "s", NULL, seeds, 1));
    run_for(0.6);
    CHECK_INT(aemp_node_connect(s.node, xid), 0);
    for (int i = 0; i < 150 && !aemp_node_is_up(s.node, xid); i++) run_for(0.02);
    CHECK(aemp_node_is_up(s.node, xid));
    aemp_node_destroy(s.node);
    aemp_node_destroy(x.node);
    aemp_node_destroy(m.node);
}
