/*
 * test_toolbox.c - what a protocol-1 node answers to AnyEvent::MP 2.02's
 * tools (issue 23): the unhandled-message rule of each dialect, eval in
 * 2.02's reply shape (up_nodes answered for real), can, the refusals of
 * a secure node, and LogCatcher's connect with aemp_logcatch.
 */
#include "test.h"
#include "harness_node.h"
#include "node_int.h" /* the node's catchers */

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct got {
    int calls;
    json_t *log;
} got_t;

static int rec(aemp_port_t *p, json_t *msg, void *ud)
{
    got_t *g = ud;
    g->calls++;
    json_array_append(g->log, msg);
    return AEMP_KEEP;
}

static void mon_rec(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    got_t *g = ud;
    g->calls++;
    json_array_append(g->log, reason);
}

static int called(void *ud) { return ((got_t *)ud)->calls > 0; }

static const char *text(json_t *v)
{
    static char buf[2048];
    char *t = aemp_json_encode(v, NULL);
    snprintf(buf, sizeof buf, "%s", t ? t : "(null)");
    free(t);
    return buf;
}

/* A started protocol-1 node; with a seed; secure as asked. */
static aemp_node_t *mk(tnode_t *t, const char *id, const char *seed, int secure)
{
    return mknode1_secure(t, id, seed ? &seed : NULL, seed ? 1 : 0, secret, secure);
}

static int both_up(void *ud)
{
    tnode_t *t = ud;
    return t[0].links_up > 0 && t[1].links_up > 0;
}

static void unpair(tnode_t t[2])
{
    aemp_node_destroy(t[1].node);
    aemp_node_destroy(t[0].node);
}

/* alpha (a seed: beta's g_slave makes it global) and beta, linked. */
static int pair(tnode_t t[2], int alpha_secure)
{
    if (!mk(&t[0], "alpha", NULL, alpha_secure)) return 0;
    const char *const *ls = aemp_node_listeners(t[0].node, NULL);
    if (!ls || !mk(&t[1], "beta", ls[0], 0)) return 0;
    return run_until(both_up, t, 5);
}

static int fail_cb(aemp_port_t *p, json_t *msg, void *ud) { return AEMP_KEEP; }

TEST(toolbox_unhandled_message_per_dialect)
{
    /* protocol 0: 0.4 drops it, the port lives */
    tnode_t z;
    memset(&z, 0, sizeof z);
    start_ticker();
    char bind[64];
    snprintf(bind, sizeof bind, "127.0.0.1:%d", free_port());
    REQUIRE(mknode(&z, bind, secret, 0));
    got_t g0 = {0, json_array()}, d0 = {0, json_array()};
    aemp_port_t *p0 = aemp_port_new(z.node, NULL, NULL);
    REQUIRE(p0 && !aemp_port_rcv(p0, "known", rec, &g0));
    CHECK(aemp_mon(z.node, aemp_port_id(p0), mon_rec, &d0) != NULL);
    CHECK_INT(aemp_sendf(z.node, aemp_port_id(p0), "[si]", "other", 1), 0);
    CHECK_INT(aemp_sendf(z.node, aemp_port_id(p0), "[si]", "known", 2), 0);
    CHECK(run_until(called, &g0, 5));
    run_for(0.1);
    CHECK_INT(d0.calls, 0);
    CHECK_STR(text(g0.log), "[[\"known\",2]]");
    aemp_node_destroy(z.node);

    /* protocol 1: 2.02 kills the port; a remote watcher hears the reason
     * (kil0) */
    tnode_t t[2];
    REQUIRE(pair(t, 0));
    got_t g1 = {0, json_array()}, d1 = {0, json_array()};
    aemp_port_t *p1 = aemp_port_new(t[0].node, NULL, NULL);
    REQUIRE(p1 && !aemp_port_rcv(p1, "known", rec, &g1));
    CHECK(aemp_mon(t[1].node, aemp_port_id(p1), mon_rec, &d1) != NULL);
    run_for(0.1);
    CHECK_INT(aemp_sendf(t[1].node, aemp_port_id(p1), "[si]", "known", 1), 0);
    CHECK(run_until(called, &g1, 5));
    CHECK_INT(d1.calls, 0);
    CHECK_INT(aemp_sendf(t[1].node, aemp_port_id(p1), "[si]", "other", 2), 0);
    CHECK(run_until(called, &d1, 5));
    CHECK_STR(text(d1.log), "[[\"unhandled_message\",\"no callback found for message 'other'\"]]");
    /* a catch-all takes everything; a non-string tag is named as JSON */
    got_t d2 = {0, json_array()};
    aemp_port_t *mini = aemp_port_new(t[0].node, fail_cb, NULL);
    aemp_port_t *bare = aemp_port_new(t[0].node, NULL, NULL);
    REQUIRE(mini && bare);
    CHECK(aemp_mon(t[0].node, aemp_port_id(mini), mon_rec, &d2) != NULL);
    CHECK(aemp_mon(t[0].node, aemp_port_id(bare), mon_rec, &d2) != NULL);
    CHECK_INT(aemp_sendf(t[0].node, aemp_port_id(mini), "[s]", "any"), 0);
    CHECK_INT(aemp_sendf(t[0].node, aemp_port_id(bare), "[[i]]", 7), 0);
    CHECK(run_until(called, &d2, 5));
    run_for(0.1);
    CHECK_STR(text(d2.log), "[[\"unhandled_message\",\"no callback found for message '[7]'\"]]");
    /* 2.02 names at most 30 characters of the tag, each outside 0x20..0x7e
     * as '.'; a number as Perl prints it */
    got_t d3 = {0, json_array()}, d4 = {0, json_array()};
    aemp_port_t *b3 = aemp_port_new(t[0].node, NULL, NULL), *b4 = aemp_port_new(t[0].node, NULL, NULL);
    REQUIRE(b3 && b4);
    CHECK(aemp_mon(t[1].node, aemp_port_id(b3), mon_rec, &d3) != NULL);
    CHECK(aemp_mon(t[1].node, aemp_port_id(b4), mon_rec, &d4) != NULL);
    run_for(0.1);
    CHECK_INT(aemp_sendf(t[1].node, aemp_port_id(b3), "[s]", "\xc3\xa9\tabcdefghijklmnopqrstuvwxyz0123456789"), 0);
    CHECK_INT(aemp_sendf(t[1].node, aemp_port_id(b4), "[f]", 2.5), 0);
    CHECK(run_until(called, &d3, 5));
    CHECK(run_until(called, &d4, 5));
    CHECK_STR(text(d3.log),
              "[[\"unhandled_message\",\"no callback found for message '..abcdefghijklmnopqrstuvwxyz01'\"]]");
    CHECK_STR(text(d4.log), "[[\"unhandled_message\",\"no callback found for message '2.5'\"]]");
    json_decref(d3.log);
    json_decref(d4.log);
    json_decref(g0.log);
    json_decref(d0.log);
    json_decref(g1.log);
    json_decref(d1.log);
    json_decref(d2.log);
    unpair(t);
}

TEST(toolbox_eval_and_can_as_2_02)
{
    tnode_t t[2];
    REQUIRE(pair(t, 0));
    got_t g = {0, json_array()};
    aemp_port_t *r = aemp_port_new(t[1].node, rec, &g);
    REQUIRE(r);
    const char *rid = aemp_port_id(r);
    /* what aemp trace sends; REPLY carries an element of its own */
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[ssss]", "eval", "AnyEvent::MP::Kernel::up_nodes", rid, "alpha"), 0);
    CHECK(run_until(called, &g, 5));
    CHECK_STR(text(json_array_get(g.log, 0)), "[\"alpha\",\"\",\"beta\"]");
    /* Perl code: an error at once, in 2.02's shape */
    CHECK_INT(aemp_sendf(t[0].node, "beta", "[sss]", "eval", " AnyEvent::MP::Kernel::up_nodes(); ", rid), 0);
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[sss]", "eval", "1 + 2", rid), 0);
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[sss]", "eval", "AnyEvent::Watchdog::Util::restart", rid), 0);
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[ss]", "eval", "no reply wanted"), 0);
    for (int i = 0; i < 100 && g.calls < 4; i++) run_for(0.05);
    CHECK_INT(g.calls, 4);
    CHECK_STR(text(json_array_get(g.log, 1)), "[\"\",\"alpha\"]");
    CHECK_STR(text(json_array_get(g.log, 2)),
              "[\"alpha runs no Perl (a libaemp C node): it cannot evaluate \\\"1 + 2\\\"\\n\"]");
    CHECK(strstr(text(json_array_get(g.log, 3)), "cannot be restarted remotely\\n\"]") != NULL);

    /* can: 2.02's fixed requests; the global ones on a global node only;
     * no functions */
    json_array_clear(g.log);
    g.calls = 0;
    static const struct {
        int on_alpha;
        const char *tag, *want;
    } cans[] = {
        {1, "time", "1"},      {0, "time", "1"},   {1, "g_find", "1"}, {0, "g_find", ""},
        {1, "AnyEvent::MP::_spawn", ""}, {1, "kil1", "1"}, {1, "lookup", ""}, {0, "eval", "1"},
        /* Kernel.pm serves g_slave on every node (it makes a node global) */
        {0, "g_slave", "1"}, {1, "g_slave", "1"}, {0, "g_db_keys", ""}, {1, "g_db_keys", "1"},
        {0, "info", ""}, {0, "up_nodes", ""},
    };
    int n = (int)(sizeof cans / sizeof cans[0]);
    for (int i = 0; i < n; i++)
        CHECK_INT(aemp_sendf(t[1].node, cans[i].on_alpha ? "alpha" : "beta", "[sssi]", "can",
                             cans[i].tag, rid, i),
                  0);
    for (int i = 0; i < 100 && g.calls < n; i++) run_for(0.05);
    CHECK_INT(g.calls, n);
    for (size_t k = 0; k < json_array_size(g.log); k++) {
        json_t *m = json_array_get(g.log, k);
        int i = (int)json_integer_value(json_array_get(m, 0));
        if (strcmp(json_string_value(json_array_get(m, 1)), cans[i].want))
            t_fail(__FILE__, __LINE__, "can %s on %s: %s", cans[i].tag,
                   cans[i].on_alpha ? "alpha" : "beta", text(m));
    }
    json_decref(g.log);
    unpair(t);
}

static void count_fn(aemp_node_t *node, aemp_port_t *port, json_t *args, void *ud)
{
    (*(int *)ud)++;
}

TEST(toolbox_secure_node_refuses_remote_execution)
{
    tnode_t t[2];
    REQUIRE(pair(t, 1));
    int runs = 0;
    REQUIRE(!aemp_func_register(t[0].node, "count", count_fn, &runs));
    got_t g = {0, json_array()};
    aemp_port_t *r = aemp_port_new(t[1].node, rec, &g);
    const char *rid = aemp_port_id(r);
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[sss]", "eval", "up_nodes", rid), 0);
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[ss]", "count", "x"), 0);
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[ssss]", "AnyEvent::MP::_spawn", "sp1", "count", "y"), 0);
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[sisi]", "AnyEvent::MP::LogCatcher::connect", 0, rid, 9), 0);
    /* what is no execution still works */
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[ss]", "time", rid), 0);
    CHECK(run_until(called, &g, 5));
    run_for(0.3);
    CHECK_INT(g.calls, 1);
    CHECK(json_is_real(json_array_get(json_array_get(g.log, 0), 0)));
    CHECK_INT(runs, 0);
    const char *w = t[0].warnings, *p = w;
    int refusals = 0;
    while ((p = strstr(p, "error processing node message from beta: remote execution not allowed")))
        refusals++, p++;
    CHECK_INT(refusals, 4);
    /* the node's own calls are its own */
    char *id = aemp_spawn(t[0].node, "alpha", "count", json_array());
    run_for(0.2);
    CHECK_INT(runs, 1);
    free(id);
    json_decref(g.log);
    unpair(t);
}

typedef struct lines {
    int n;
    char from[64], ctx[64], last[512];
    int level;
    double time;
} lines_t;

static void line_cb(void *ud, aemp_node_t *node, const char *from, double time, const char *ctx,
                    int level, const char *msg)
{
    lines_t *l = ud;
    if (!strstr(msg, "unable to resolve")) return;
    l->n++;
    snprintf(l->from, sizeof l->from, "%s", from);
    snprintf(l->ctx, sizeof l->ctx, "%s", ctx);
    snprintf(l->last, sizeof l->last, "%s", msg);
    l->level = level;
    l->time = time;
}

static int has_lines(void *ud) { return ((lines_t *)ud)->n > 0; }

static int no_catchers(void *ud)
{
    aemp_node_t *n = ud;
    return aemp__logcatch_count(n) == 0;
}

TEST(toolbox_logcatcher_connect_and_aemp_logcatch)
{
    tnode_t t[2];
    REQUIRE(pair(t, 0));
    lines_t l = {0};
    aemp_port_t *p = aemp_logcatch(t[1].node, "alpha", 5, line_cb, &l);
    REQUIRE(p);
    run_for(0.2);
    CHECK(!no_catchers(t[0].node));
    /* a warning on alpha (level 5) */
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[ss]", "No::Such::function", "x"), 0);
    CHECK(run_until(has_lines, &l, 5));
    CHECK_STR(l.from, "alpha");
    CHECK_STR(l.ctx, "libaemp");
    CHECK_INT(l.level, 5);
    CHECK(strstr(l.last, "No::Such::function") != NULL);
    CHECK(l.time > 1e9 && l.time <= ev_time() + 1);
    /* the raw shape at a port of ours: [TIME, CONTEXT, LEVEL, MESSAGE];
     * a catcher at level 4 (error) does not get warnings (5) */
    got_t g = {0, json_array()}, g4 = {0, json_array()};
    aemp_port_t *raw = aemp_port_new(t[1].node, rec, &g);
    aemp_port_t *raw4 = aemp_port_new(t[1].node, rec, &g4);
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[sisi]", "AnyEvent::MP::LogCatcher::connect", 0,
                         aemp_port_id(raw), 5),
              0);
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[siss]", "AnyEvent::MP::LogCatcher::connect", 0,
                         aemp_port_id(raw4), "error"),
              0);
    run_for(0.2);
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[ss]", "No::Such::function", "y"), 0);
    CHECK(run_until(called, &g, 5));
    run_for(0.1);
    json_t *m = json_array_get(g.log, 0);
    CHECK_INT(json_array_size(m), 4);
    CHECK(json_is_real(json_array_get(m, 0)));
    CHECK_STR(json_string_value(json_array_get(m, 1)), "libaemp");
    CHECK_INT(json_integer_value(json_array_get(m, 2)), 5);
    CHECK(strstr(json_string_value(json_array_get(m, 3)), "unable to resolve No::Such::function") != NULL);
    CHECK_INT(g4.calls, 0);
    /* killing the catching ports ends the lines (the node hears kil0) */
    aemp_port_kill(p, NULL);
    aemp_port_kill(raw, NULL);
    aemp_port_kill(raw4, NULL);
    CHECK(run_until(no_catchers, t[0].node, 5));
    int before = l.n;
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[ss]", "No::Such::function", "z"), 0);
    run_for(0.3);
    CHECK_INT(l.n, before);
    json_decref(g.log);
    json_decref(g4.log);
    unpair(t);
}

typedef struct catch_on_msg {
    lines_t *l;
    aemp_port_t *got; /* what aemp_logcatch returned */
    int calls;
} catch_on_msg_t;

static int catch_on_msg_cb(aemp_port_t *p, json_t *msg, void *ud)
{
    (void)p;
    (void)msg;
    catch_on_msg_t *c = ud;
    if (!c->calls++) c->got = aemp_logcatch(aemp_port_node(p), "alpha", 5, line_cb, c->l);
    return AEMP_KEEP;
}

static int caught_on_msg(void *ud) { return ((catch_on_msg_t *)ud)->calls > 0; }

/* aemp_logcatch called while a peer's message is handled (gamma's, at a
 * port of beta's) sends its fixed connect request to a third node
 * (alpha) in beta's own name, as aemp_mon does: the lines come. */
TEST(toolbox_logcatch_from_a_peers_message)
{
    tnode_t t[3];
    REQUIRE(pair(t, 0));
    const char *const *ls = aemp_node_listeners(t[0].node, NULL);
    REQUIRE(ls && mk(&t[2], "gamma", ls[0], 0));
    lines_t l = {0};
    catch_on_msg_t c = {&l, NULL, 0};
    aemp_port_t *bp = aemp_port_new(t[1].node, catch_on_msg_cb, &c);
    REQUIRE(bp);
    CHECK_INT(aemp_sendf(t[2].node, aemp_port_id(bp), "[s]", "catch"), 0);
    CHECK(run_until(caught_on_msg, &c, 5));
    CHECK(c.got != NULL);
    run_for(0.2);
    CHECK(strstr(t[1].warnings, "node port refused") == NULL);
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[ss]", "No::Such::function", "x"), 0);
    CHECK(run_until(has_lines, &l, 5));
    CHECK_STR(l.from, "alpha");
    aemp_node_destroy(t[2].node);
    unpair(t);
}

TEST(toolbox_logcatcher_gone_with_its_node)
{
    tnode_t t[2];
    REQUIRE(pair(t, 0));
    lines_t l = {0};
    REQUIRE(aemp_logcatch(t[1].node, "alpha", 9, line_cb, &l));
    run_for(0.2);
    CHECK(!no_catchers(t[0].node));
    aemp_node_destroy(t[1].node);
    CHECK(run_until(no_catchers, t[0].node, 5));
    aemp_node_destroy(t[0].node);
}

/* The rc file's "secure" reaches the node configuration. */
TEST(toolbox_rc_secure_reaches_the_node_config)
{
    static const struct {
        const char *rc;
        int secure;
    } cases[] = {{"{\"nodeid\":\"x\"}", 0}, {"{\"nodeid\":\"x\",\"secure\":1}", 1},
                 {"{\"nodeid\":\"x\",\"secure\":\"0\"}", 0}, {"{\"nodeid\":\"x\",\"secure\":\"yes\"}", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *merged = aemp_json_decode(cases[i].rc, strlen(cases[i].rc), 0, NULL, 0);
        REQUIRE(merged);
        aemp_p1_config_t c;
        char err[256];
        CHECK_INT(aemp_p1_config_make(&c, merged, "p", "host", NULL, NULL, err, sizeof err), 0);
        aemp_node_config_t nc = {0};
        CHECK_INT(aemp_p1_node_config(&nc, &c), 0);
        CHECK_INT(nc.secure, cases[i].secure);
        aemp_p1_config_free(&c);
        json_decref(merged);
    }
}

/* A peer cannot make a node keep catchers without bound, nor take every
 * place (a quarter of AEMP_LOGCATCH_MAX is its part); connecting a port
 * again changes its level only. */
TEST(toolbox_logcatcher_bounded)
{
    tnode_t t[2];
    REQUIRE(pair(t, 0));
    got_t g = {0, json_array()};
    aemp_port_t *ports[AEMP_LOGCATCH_MAX + 1];
    for (int i = 0; i <= AEMP_LOGCATCH_MAX; i++) {
        ports[i] = aemp_port_new(t[1].node, rec, &g);
        REQUIRE(ports[i]);
        CHECK_INT(aemp_sendf(t[1].node, "alpha", "[sisi]", "AnyEvent::MP::LogCatcher::connect", 0,
                             aemp_port_id(ports[i]), 1),
                  0);
    }
    CHECK_INT(aemp_sendf(t[1].node, "alpha", "[sisi]", "AnyEvent::MP::LogCatcher::connect", 0,
                         aemp_port_id(ports[0]), 9),
              0);
    for (int i = 0; i < 100 && aemp__logcatch_count(t[0].node) < AEMP_LOGCATCH_MAX / 4; i++)
        run_for(0.02);
    run_for(0.2);
    CHECK_INT(aemp__logcatch_count(t[0].node), AEMP_LOGCATCH_MAX / 4);
    CHECK(strstr(t[0].warnings, "catchers already (8 of this node's; at most 32, 8 each)") != NULL);
    json_decref(g.log);
    unpair(t);
}
