/*
 * test_authority.c - an authenticated peer cannot act with our node's own
 * authority. Every node-port request and service that sends to a port the
 * caller names (time, can, lookup, eval, an echo port, a spawned function)
 * is turned at our own node port: what comes back arrives as the peer's
 * request, so a global node's own database share, its watchers' view and
 * the raw hook's idea of the sender stay as they were.
 */
#include "test.h"
#include "harness_node.h"
#include "harness_raw.h"
#include "p1.h" /* aemp__p1_eval, aemp__global_read */

#include <ev.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

/* [TO, ELEMS...] -> ELEMS sent to TO, as the aemp tool's echo service. */
static void echo_rest(aemp_node_t *n, json_t *msg)
{
    const char *to = json_string_value(json_array_get(msg, 0));
    json_t *rest = json_array();
    for (size_t i = 1; rest && i < json_array_size(msg); i++) json_array_append(rest, json_array_get(msg, i));
    if (to && rest) aemp_send(n, to, rest);
    else json_decref(rest);
}

/* An echo port. */
static int echo_cb(aemp_port_t *p, json_t *msg, void *ud)
{
    (void)ud;
    echo_rest(aemp_port_node(p), msg);
    return 0;
}

/* A named function doing the same from a spawned port. */
static void echo_fn(aemp_node_t *n, aemp_port_t *port, json_t *args, void *ud)
{
    (void)ud;
    echo_rest(n, args);
    if (port) aemp_port_kill(port, NULL);
}

typedef struct {
    int calls;
    json_t *last;
} famview_t;

static void fam_answer(aemp_node_t *n, const char *f, json_t *r, void *ud)
{
    famview_t *v = ud;
    (void)n;
    (void)f;
    json_decref(v->last);
    v->last = json_incref(r);
    v->calls++;
}

static int forged_seen;
static void watch_cb(aemp_node_t *n, const char *family, json_t *hash, json_t *added,
                     json_t *changed, json_t *deleted, void *ud)
{
    (void)n;
    (void)family;
    (void)added;
    (void)changed;
    (void)deleted;
    (void)ud;
    if (json_object_get(hash, "forged")) forged_seen++;
}

/* Asks node for family f and runs the loop until the answer is in. */
static json_t *family_now(aemp_node_t *node, const char *f)
{
    famview_t v = {0, NULL};
    if (aemp_db_family(node, f, fam_answer, &v)) return NULL;
    for (int i = 0; i < 150 && !v.calls; i++) run_for(0.02);
    return v.last; /* the caller's reference */
}

static int has_key(aemp_node_t *node, const char *f, const char *k)
{
    json_t *h = family_now(node, f);
    int r = json_object_get(h, k) != NULL;
    json_decref(h);
    return r;
}

/* Starts a protocol-1 node of each of the n ids in t[], joining through
 * seeds, and waits until each has its link to the seed "alpha" up.
 * 1 when all are, else 0. */
static int slaves_of_alpha(tnode_t *t, const char *const *ids, size_t n, const char *const *seeds)
{
    for (size_t i = 0; i < n; i++)
        if (!mknode_p1(&t[i], ids[i], NULL, seeds, 1)) return 0;
    for (int k = 0; k < 250; k++) {
        size_t up = 0;
        for (size_t i = 0; i < n; i++) up += aemp_node_is_up(t[i].node, "alpha");
        if (up == n) return 1;
        run_for(0.02);
    }
    return 0;
}

/* alpha, a seed on a free port of its own, and n slaves of it named
 * ids in t: whether all are up. */
static char alpha_seed[64]; /* alpha's address (alpha_and_slaves) */
static int alpha_and_slaves(tnode_t *a, tnode_t *t, const char *const *ids, size_t n)
{
    snprintf(alpha_seed, sizeof alpha_seed, "127.0.0.1:%d", free_port());
    const char *seeds[] = {alpha_seed};
    start_ticker();
    return mknode_p1(a, "alpha", alpha_seed, seeds, 1) && slaves_of_alpha(t, ids, n, seeds);
}

/* Every reflection path against a global node (a seed): its own
 * registration stays, what the peer made goes with the peer, a forged
 * database answer never reaches the seed's own watchers. */
TEST(authority_reflections_cannot_write_a_seeds_database)
{
    tnode_t a, b;
    char sa[64];
    snprintf(sa, sizeof sa, "127.0.0.1:%d", free_port());
    const char *seeds[] = {sa};
    start_ticker();
    REQUIRE(mknode_p1(&a, "alpha", sa, seeds, 1));
    REQUIRE(mknode_p1(&b, "beta", NULL, seeds, 1));
    for (int i = 0; i < 150 && !(aemp_node_is_up(b.node, "alpha") && aemp_node_is_global(a.node)); i++)
        run_for(0.02);
    REQUIRE(aemp_node_is_global(a.node));
    REQUIRE(aemp_node_is_up(b.node, "alpha"));

    aemp_port_t *echo = aemp_port_new(a.node, echo_cb, NULL);
    REQUIRE(echo != NULL);
    REQUIRE(aemp_func_register(a.node, "echoer", echo_fn, NULL) == 0);
    CHECK_INT(aemp_db_set(a.node, "svc", "mine", json_true()), 0);
    aemp_db_mon_t *w = aemp_db_mon(a.node, "svc", watch_cb, NULL);
    REQUIRE(w != NULL);
    run_for(0.2);
    REQUIRE(has_key(a.node, "svc", "mine"));

    /* time: the reply is ["g_slave", DB, TIME] to the seed's node port */
    CHECK_INT(aemp_sendf(b.node, "alpha", "[sss{s{si}}]", "time", "alpha", "g_slave", "svc", "t1", 1), 0);
    /* can: the reply ["g_upd", "svc", {...}, [], "1"] */
    CHECK_INT(aemp_sendf(b.node, "alpha", "[sssss{si}[]]", "can", "time", "alpha", "g_upd", "svc", "c1", 1), 0);
    /* an echo port */
    CHECK_INT(aemp_sendf(b.node, aemp_port_id(echo), "[sss{si}[]]", "alpha", "g_upd", "svc", "e1", 1), 0);
    /* a spawned function that sends where it is told */
    char *sp = aemp_spawn(b.node, "alpha", "echoer", json_pack("[sss{si}[]]", "alpha", "g_upd", "svc", "s1", 1));
    CHECK(sp != NULL);
    free(sp);
    /* a forged database answer to the seed's own watcher */
    CHECK_INT(aemp_sendf(b.node, "alpha", "[ssss{si}]", "time", "alpha", "g_chg1", "svc", "forged", 1), 0);
    CHECK_INT(aemp_sendf(b.node, "alpha", "[ssss{si}[]]", "time", "alpha", "g_chg2", "svc", "forged", 1), 0);
    run_for(0.4);

    /* the seed's own entry stays; what was written went into beta's share */
    CHECK(has_key(a.node, "svc", "mine"));
    CHECK(has_key(a.node, "svc", "t1"));
    CHECK(has_key(a.node, "svc", "c1"));
    CHECK(has_key(a.node, "svc", "e1"));
    CHECK(has_key(a.node, "svc", "s1"));
    CHECK(has_key(a.node, "'g", "alpha"));
    CHECK_INT(forged_seen, 0);

    /* beta goes: so does everything it wrote, by whatever path */
    aemp_node_destroy(b.node);
    for (int i = 0; i < 150 && has_key(a.node, "svc", "t1"); i++) run_for(0.02);
    json_t *h = family_now(a.node, "svc");
    CHECK(json_object_get(h, "mine") != NULL);
    CHECK_INT(json_object_size(h), 1);
    json_decref(h);
    CHECK(has_key(a.node, "'g", "alpha"));
    CHECK(has_key(a.node, "'l", "alpha"));
    aemp_db_mon_cancel(w);
    aemp_node_destroy(a.node);
}

static int counted;
static int count_cb(aemp_port_t *p, json_t *msg, void *ud)
{
    (void)p;
    (void)msg;
    (void)ud;
    counted++;
    return AEMP_KEEP;
}

/* A peer cannot make a node send a request to a third node's node port:
 * there it would be that node's own word (a seed's g_chg2 is the
 * database of its slaves, its g_upd another global node's). snd, the
 * replies of time and can, an echo port and a spawned function that
 * send where the peer says are refused with a warning when the place is
 * another node's node port (before: a slave's watcher took a forged
 * family from its master, and a second global node kept a made-up
 * global node and entry in the first one's name). The requester's own
 * node port and ordinary ports stay reachable. */
TEST(authority_requests_to_other_nodes_node_ports_refused)
{
    tnode_t a, a2, s[2];
    tnode_t *const b = &s[0], *const evil = &s[1];
    char sa[64], sa2[64];
    snprintf(sa, sizeof sa, "127.0.0.1:%d", free_port());
    snprintf(sa2, sizeof sa2, "127.0.0.1:%d", free_port());
    const char *seeds[] = {sa, sa2}, *seed1[] = {sa}, *ids[] = {"beta", "evil"};
    start_ticker();
    REQUIRE(mknode_p1(&a, "alpha", sa, seeds, 2));
    REQUIRE(mknode_p1(&a2, "alpha2", sa2, seeds, 2));
    REQUIRE(slaves_of_alpha(s, ids, 2, seed1));
    for (int i = 0; i < 250 && !(aemp_node_is_up(a.node, "alpha2") && aemp_node_is_global(a2.node)); i++)
        run_for(0.02);
    REQUIRE(aemp_node_is_global(a.node) && aemp_node_is_global(a2.node));
    aemp_port_t *echo = aemp_port_new(a.node, echo_cb, NULL);
    REQUIRE(echo != NULL);
    REQUIRE(aemp_func_register(a.node, "echoer", echo_fn, NULL) == 0);
    CHECK_INT(aemp_db_set(a.node, "svc", "real", json_true()), 0);
    forged_seen = 0;
    aemp_db_mon_t *w = aemp_db_mon(b->node, "svc", watch_cb, NULL);
    REQUIRE(w != NULL);
    run_for(0.3);
    REQUIRE(has_key(b->node, "svc", "real"));

    /* to beta's node port, in alpha's name: a forged change of svc */
    CHECK_INT(aemp_sendf(evil->node, "alpha", "[ssss{ss}[s]]", "snd", "beta", "g_chg2", "svc", "forged",
                         "evil#p", "real"), 0);
    CHECK_INT(aemp_sendf(evil->node, "alpha", "[ssss{ss}[s]]", "time", "beta", "g_chg2", "svc", "forged",
                         "evil#p", "real"), 0);
    CHECK_INT(aemp_sendf(evil->node, "alpha", "[sssss{ss}[s]]", "can", "time", "beta", "g_chg2", "svc",
                         "forged", "evil#p", "real"), 0);
    CHECK_INT(aemp_sendf(evil->node, aemp_port_id(echo), "[sss{ss}[s]]", "beta", "g_chg2", "svc",
                         "forged", "evil#p", "real"), 0);
    char *sp = aemp_spawn(evil->node, "alpha", "echoer",
                          json_pack("[sss{ss}[s]]", "beta", "g_chg2", "svc", "forged", "evil#p", "real"));
    CHECK(sp != NULL);
    free(sp);
    /* to alpha2's node port, in alpha's name: a global node and an entry */
    CHECK_INT(aemp_sendf(evil->node, "alpha", "[ssss{sn}]", "snd", "alpha2", "g_upd", "'g", "fakeglobal"), 0);
    CHECK_INT(aemp_sendf(evil->node, "alpha", "[ssss{ss}]", "snd", "alpha2", "g_upd", "svc", "planted",
                         "evil#x"), 0);
    run_for(0.5);
    CHECK_INT(forged_seen, 0);
    CHECK(has_key(b->node, "svc", "real"));
    CHECK(!has_key(b->node, "svc", "forged"));
    CHECK(!has_key(a2.node, "'g", "fakeglobal"));
    CHECK(!has_key(a2.node, "svc", "planted"));
    CHECK(strstr(a.warnings, "evil: a message to another node's node port refused (it would be a "
                             "request in this node's name): to beta") != NULL);
    /* the requester's own node port and ordinary ports are still answered */
    aemp_port_t *mine = aemp_port_new(evil->node, count_cb, NULL);
    REQUIRE(mine != NULL);
    counted = 0;
    CHECK_INT(aemp_sendf(evil->node, "alpha", "[ss]", "time", aemp_port_id(mine)), 0);
    for (int i = 0; i < 100 && !counted; i++) run_for(0.02);
    CHECK_INT(counted, 1);
    aemp_db_mon_cancel(w);
    aemp_node_destroy(evil->node);
    aemp_node_destroy(b->node);
    aemp_node_destroy(a2.node);
    aemp_node_destroy(a.node);
}

static int keys_answers;

/* Writes keys keys k0.. into the family "big", alternately from w0 and
 * w1 (a node holds at most AEMP_GDB_NODE_KEYS_MAX), and waits until
 * reader's view holds them all; whether it does. */
static int fill_big(aemp_node_t *w0, aemp_node_t *w1, aemp_node_t *reader, int keys)
{
    char k[32];
    for (int i = 0; i < keys; i++) {
        snprintf(k, sizeof k, "k%d", i);
        aemp_db_set(i % 2 ? w1 : w0, "big", k, json_integer(i));
    }
    json_t *h = NULL;
    for (int i = 0; i < 100 && json_object_size(h) < (size_t)keys; i++) {
        json_decref(h);
        h = family_now(reader, "big");
    }
    int ok = json_object_size(h) == (size_t)keys;
    json_decref(h);
    return ok;
}

/* eval answers: how many said the reads' budget was spent. */
static int evals_over, evals_ok;
static int eval_cb(aemp_port_t *p, json_t *m, void *ud)
{
    (void)p;
    (void)ud;
    const char *err = json_string_value(json_array_get(m, 0));
    if (err && strstr(err, "over the reads' budget")) evals_over++;
    else if (err && !*err) evals_ok++;
    return AEMP_KEEP;
}

/* A read whose answer is a whole family costs the seed a copy of it for
 * a request of a few bytes: one node's reads copy at most
 * AEMP_GDB_READ_BURST entries at once and AEMP_GDB_READ_ENTRIES_PER_S a
 * second after (before: an insider's 300 reads of a big family held the
 * seed's loop for seconds). 150 reads of a 4000-key family: about 125
 * answered at once; the rest wait, and the reader's link with them (it
 * reads nothing meanwhile), each until the budget holds it: all are
 * answered in the end, in order, none dropped (before: dropped, and a
 * dropped read's callback never ran). Meanwhile another node's read is
 * still answered at once. An eval of up_nodes (an answer as big as the
 * network) takes from the same budget: over it, when it cannot wait,
 * its ERROR says so. */
static int keys_in_order = 1;
static void keys_answer_nth(aemp_node_t *n, const char *f, json_t *r, void *ud)
{
    (void)n;
    (void)f;
    (void)r;
    if ((intptr_t)ud != keys_answers) keys_in_order = 0;
    keys_answers++;
}

TEST(authority_reads_of_whole_families_are_budgeted)
{
    tnode_t a, s[3];
    tnode_t *const b = &s[0], *const evil = &s[1], *const c = &s[2];
    const char *ids[] = {"beta", "evil", "gamma"};
    REQUIRE(alpha_and_slaves(&a, s, ids, 3));
    REQUIRE(aemp_node_is_global(a.node));
    enum { KEYS = 4000, READS = 150 };
    REQUIRE(fill_big(b->node, b->node, c->node, KEYS));
    keys_answers = 0;
    keys_in_order = 1;
    double t0 = ev_time();
    for (int i = 0; i < READS; i++)
        aemp_db_keys(evil->node, "big", keys_answer_nth, (void *)(intptr_t)i);
    run_for(0.5);
    double dt = ev_time() - t0;
    double most = (AEMP_GDB_READ_BURST + dt * AEMP_GDB_READ_ENTRIES_PER_S) / (KEYS + 1) + 1;
    printf("    %d reads of a %d-key family in %.2f s: %d answered (at most %.0f)\n", READS, KEYS, dt,
           keys_answers, most);
    CHECK(keys_answers >= (int)(AEMP_GDB_READ_BURST / (KEYS + 1)) - 1);
    CHECK(keys_answers <= most);
    CHECK(keys_answers < READS);
    CHECK(strstr(a.warnings, "node evil: g_db_keys of big (4000 entries) waits, and the node's link "
                             "with it: over the reads' budget of 50000 entries a second") != NULL);
    CHECK(!strstr(a.warnings, "dropped"));
    /* another node's read is its own budget's, answered meanwhile */
    json_t *g = family_now(c->node, "big");
    CHECK_INT(json_object_size(g), KEYS);
    json_decref(g);
    /* the rest come, each when the budget holds it, in the order asked */
    double need = (double)READS * (KEYS + 1) - AEMP_GDB_READ_BURST;
    for (int i = 0; i < 200 && keys_answers < READS; i++) run_for(0.05);
    dt = ev_time() - t0;
    printf("    all %d answered after %.2f s (the budget: %.2f s)\n", keys_answers, dt,
           need / AEMP_GDB_READ_ENTRIES_PER_S);
    CHECK_INT(keys_answers, READS);
    CHECK(keys_in_order);
    CHECK(dt >= need / AEMP_GDB_READ_ENTRIES_PER_S * 0.9);
    CHECK(aemp_node_is_up(a.node, "evil"));
    /* a first watch of the family is answered even over the budget (sent
     * once, it would be lost for good): the watcher hears a change */
    forged_seen = 0;
    aemp_db_mon_t *w = aemp_db_mon(evil->node, "big", watch_cb, NULL);
    REQUIRE(w);
    run_for(0.3);
    aemp_db_set(b->node, "big", "forged", json_true()); /* (the key watch_cb looks for) */
    for (int i = 0; i < 100 && !forged_seen; i++) run_for(0.02);
    CHECK(forged_seen > 0);
    aemp_db_mon_cancel(w);
    /* an eval of up_nodes (as big as the network) takes from the same
     * budget: answered, then - gamma's whole burst taken meanwhile, at
     * the same loop time (no refill) - told it is spent */
    aemp_port_t *ev = aemp_port_new(c->node, eval_cb, NULL);
    REQUIRE(ev);
    evals_over = evals_ok = 0;
    json_t *args = json_pack("[ss]", "AnyEvent::MP::Kernel::up_nodes", aemp_port_id(ev));
    aemp__p1_eval(a.node, "gamma", args);
    CHECK_INT(aemp__global_read(a.node, "gamma", AEMP_GDB_READ_BURST * 2, "test", "all"), 0);
    int taken = 0;
    while (aemp__global_read(a.node, "gamma", 0, "test", "one") && taken <= (int)AEMP_GDB_READ_BURST)
        taken++;
    CHECK(taken > 0 && taken < (int)AEMP_GDB_READ_BURST);
    aemp__p1_eval(a.node, "gamma", args);
    json_decref(args);
    for (int i = 0; i < 100 && evals_ok + evals_over < 2; i++) run_for(0.02);
    CHECK_INT(evals_ok, 1);
    CHECK_INT(evals_over, 1);
    CHECK(strstr(a.warnings, "node gamma: eval of up_nodes (3 entries) dropped: over the reads' "
                             "budget") != NULL);
    aemp_node_destroy(c->node);
    aemp_node_destroy(evil->node);
    aemp_node_destroy(b->node);
    aemp_node_destroy(a.node);
}

/* The value of "k0" each watcher of "hot" saw last (-1: none yet). */
enum { HOT_WATCHERS = 10 };
static long hot_seen[HOT_WATCHERS];
static void hot_cb(aemp_node_t *n, const char *f, json_t *hash, json_t *added, json_t *changed,
                   json_t *deleted, void *ud)
{
    (void)n;
    (void)f;
    (void)added;
    (void)changed;
    (void)deleted;
    json_t *v = json_object_get(hash, "k0");
    if (json_is_integer(v)) hot_seen[(intptr_t)ud] = (long)json_integer_value(v);
}

/* How many watchers have seen k0 at *want or later. */
static int hot_watchers_at(long want)
{
    int at = 0;
    for (int i = 0; i < HOT_WATCHERS; i++) at += hot_seen[i] >= want;
    return at;
}

/* alpha, watchers w0..w9 of "hot" (in s[0..9], their watches in w),
 * "evil" (s[10]) and "beta" (s[11]): whether all are up. */
enum { HOT_EVIL = HOT_WATCHERS, HOT_BETA, HOT_NODES };
static int hot_network(tnode_t *a, tnode_t *s, aemp_db_mon_t **w)
{
    static char names[HOT_WATCHERS][16];
    const char *ids[HOT_NODES];
    for (int i = 0; i < HOT_WATCHERS; i++) {
        snprintf(names[i], sizeof names[i], "w%d", i);
        ids[i] = names[i];
    }
    ids[HOT_EVIL] = "evil";
    ids[HOT_BETA] = "beta";
    if (!alpha_and_slaves(a, s, ids, HOT_NODES) || !aemp_node_is_global(a->node)) return 0;
    for (int i = 0; i < HOT_WATCHERS; i++) {
        hot_seen[i] = -1;
        if (!(w[i] = aemp_db_mon(s[i].node, "hot", hot_cb, (void *)(intptr_t)i))) return 0;
    }
    run_for(0.3);
    return 1;
}

static void hot_network_down(tnode_t *a, tnode_t *s, aemp_db_mon_t **w)
{
    for (int i = 0; i < HOT_WATCHERS; i++) aemp_db_mon_cancel(w[i]);
    for (int i = 0; i < HOT_NODES; i++)
        if (s[i].node) aemp_node_destroy(s[i].node);
    aemp_node_destroy(a->node);
}

/* from sends the changes first..last-1 of "hot": change c sets its
 * keys k0.. all to c. */
enum { HOT_KEYS = 4000 };
static void hot_changes(aemp_node_t *from, int first, int last)
{
    for (int c = first; c < last; c++) {
        json_t *set = json_object();
        char k[16];
        for (int i = 0; i < HOT_KEYS; i++) {
            snprintf(k, sizeof k, "k%d", i);
            json_object_set_new(set, k, json_integer(c));
        }
        aemp__p1_to_master(from, json_pack("[ssoo]", "g_upd", "hot", set, json_array())); /* (steals) */
    }
}

static const char hot_waits[] = "node evil: g_upd of hot (40000 sends) waits, and the node's link "
                                "with it: over the changes' budget of 50000 sends a second";

/* A change makes the seed send each key to every watcher of its family:
 * a request of a few bytes, thousands of messages. What one node's
 * changes make the seed send is budgeted (AEMP_GDB_CHANGE_*): 15 changes
 * of 4000 keys of a family 10 nodes watch (40 000 sends each): about 12
 * at once, the rest each when the budget holds it (in order, the
 * writer's link waiting meanwhile), none dropped; another node's change
 * is applied at once meanwhile (its own budget). Before, an insider's
 * changes made the seed send as fast as it could write them. */
TEST(authority_changes_are_budgeted_by_what_they_make_the_seed_send)
{
    tnode_t a, s[HOT_NODES];
    aemp_db_mon_t *w[HOT_WATCHERS];
    REQUIRE(hot_network(&a, s, w));
    enum { CHANGES = 15 };
    double each = (double)HOT_KEYS * HOT_WATCHERS;
    double t0 = ev_time();
    hot_changes(s[HOT_EVIL].node, 0, CHANGES);
    /* about 12 go at once (AEMP_GDB_CHANGE_BURST), then one waits */
    for (int i = 0; i < 250 && !strstr(a.warnings, hot_waits); i++) run_for(0.02);
    CHECK(strstr(a.warnings, hot_waits) != NULL);
    long seen_first = hot_seen[0];
    printf("    %d changes of %d keys to %d watchers: one waits after %.2f s, when the watchers "
           "saw change %ld\n", CHANGES, HOT_KEYS, HOT_WATCHERS, ev_time() - t0, seen_first);
    CHECK(seen_first < CHANGES - 1);
    /* another node's change goes at once */
    CHECK_INT(aemp_db_set(s[HOT_BETA].node, "hot", "beta", json_true()), 0);
    json_t *h = NULL;
    for (int i = 0; i < 50; i++) {
        json_decref(h);
        h = family_now(s[1].node, "hot");
        if (json_object_get(h, "beta")) break;
    }
    CHECK(json_object_get(h, "beta") != NULL);
    json_decref(h);
    CHECK(hot_watchers_at(CHANGES - 1) == 0);
    /* the rest come, each when the budget holds it */
    double need = (CHANGES * each - AEMP_GDB_CHANGE_BURST) / AEMP_GDB_CHANGE_SENDS_PER_S;
    for (int i = 0; i < 200 && hot_watchers_at(CHANGES - 1) < HOT_WATCHERS; i++) run_for(0.05);
    double dt = ev_time() - t0;
    printf("    all %d seen by all %d watchers after %.2f s (the budget: %.2f s)\n", CHANGES,
           HOT_WATCHERS, dt, need);
    CHECK_INT(hot_watchers_at(CHANGES - 1), HOT_WATCHERS);
    CHECK(dt >= need * 0.9);
    CHECK(aemp_node_is_up(a.node, "evil"));
    CHECK(!strstr(a.warnings, "dropped"));
    hot_network_down(&a, s, w);
}

/* A writer that goes while its change waits: the change is dropped, not
 * applied (its entries are deleted right after: the watchers would hear
 * of it only to hear of its deletion). Before, what a gone writer left
 * waiting was applied at once, outside the budget. */
TEST(authority_a_gone_writers_waiting_change_is_dropped)
{
    tnode_t a, s[HOT_NODES];
    aemp_db_mon_t *w[HOT_WATCHERS];
    REQUIRE(hot_network(&a, s, w));
    int at_once = (int)(AEMP_GDB_CHANGE_BURST / ((double)HOT_KEYS * HOT_WATCHERS)); /* 12 */
    /* the last waits, alone: the one before it waits or not, as fast
     * as the seed gets through the others (a slow build refills more
     * meanwhile) */
    int last = at_once + 1;
    hot_changes(s[HOT_EVIL].node, 0, last + 1);
    for (int i = 0; i < 250 && !strstr(a.warnings, hot_waits); i++) run_for(0.02);
    CHECK(strstr(a.warnings, hot_waits) != NULL);
    aemp_node_destroy(s[HOT_EVIL].node);
    s[HOT_EVIL].node = NULL;
    for (int i = 0; i < 50 && aemp_node_is_up(a.node, "evil"); i++) run_for(0.02);
    CHECK(!aemp_node_is_up(a.node, "evil"));
    run_for(0.6); /* (past the wait) */
    long most = -1;
    for (int i = 0; i < HOT_WATCHERS; i++) most = hot_seen[i] > most ? hot_seen[i] : most;
    printf("    %d changes, the last waiting when its writer went: the watchers saw up to change "
           "%ld\n", last + 1, most);
    CHECK(most >= at_once - 1 && most < last);
    CHECK(strstr(a.warnings, "node evil: g_upd of hot dropped: the node is gone") != NULL);
    hot_network_down(&a, s, w);
}

/* A reader whose request waits (over the reads' budget) may go while it
 * waits: its link closes, what it waited with goes with it (ASan: no
 * leak), and the seed goes on, answering others at once. */
TEST(authority_a_waiting_reader_may_go)
{
    tnode_t a, s[3];
    tnode_t *const b = &s[0], *const evil = &s[1], *const c = &s[2];
    const char *ids[] = {"beta", "evil", "gamma"};
    REQUIRE(alpha_and_slaves(&a, s, ids, 3));
    enum { KEYS = 8000, READS = 100 };
    REQUIRE(fill_big(b->node, c->node, c->node, KEYS));
    keys_answers = 0;
    keys_in_order = 1;
    for (int i = 0; i < READS; i++)
        aemp_db_keys(evil->node, "big", keys_answer_nth, (void *)(intptr_t)i);
    for (int i = 0; i < 100 && !strstr(a.warnings, "node evil: g_db_keys of big"); i++) run_for(0.02);
    CHECK(strstr(a.warnings, "node evil: g_db_keys of big (8000 entries) waits") != NULL);
    CHECK(keys_answers < READS);
    aemp_node_destroy(evil->node);
    for (int i = 0; i < 100 && aemp_node_is_up(a.node, "evil"); i++) run_for(0.02);
    CHECK(!aemp_node_is_up(a.node, "evil"));
    json_t *g = family_now(c->node, "big");
    CHECK_INT(json_object_size(g), KEYS);
    json_decref(g);
    run_for(0.3);
    aemp_node_destroy(c->node);
    aemp_node_destroy(b->node);
    aemp_node_destroy(a.node);
}

/* Keeps all nodes' reads' budget of a seed spent, right before its loop
 * handles what arrived (an ev_check runs at the same loop time), while
 * drain_on: what the seed then answers finds the budget spent. Spent
 * once, then each time what refilled since (8 nodes' rate, global.c),
 * so that the drain itself is not refused (no warnings of its own). */
static aemp_node_t *drain_node;
static const char *drain_id; /* one node's own budget, or NULL: all nodes' */
static int drain_on;
static double drain_at;
static void drain_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)w;
    (void)revents;
    static int who;
    char src[32];
    double now = ev_now(loop);
    if (!drain_on) return;
    if (drain_at <= 0) {
        for (int i = 0; i < 100000; i++) {
            snprintf(src, sizeof src, "drain%d", who++ % 64);
            if (aemp__global_read(drain_node, drain_id ? drain_id : src, 100, "test", "drain") != 1)
                break;
        }
    } else {
        double rate = (drain_id ? 1.0 : 8.0) * AEMP_GDB_READ_ENTRIES_PER_S;
        double refilled = (now - drain_at) * rate - 2.0;
        snprintf(src, sizeof src, "drain%d", who++ % 64);
        if (refilled >= 1.0)
            aemp__global_read(drain_node, drain_id ? drain_id : src, (size_t)refilled, "test", "drain");
    }
    drain_at = now;
}

/* Keeps node's reads' budget spent from now (drain_cb) until drain_stop:
 * id's own, or with NULL all nodes'. */
static void drain_start(ev_check *w, aemp_node_t *node, const char *id)
{
    ev_check_init(w, drain_cb);
    drain_node = node;
    drain_id = id;
    drain_on = 1;
    drain_at = 0;
    ev_check_start(EV_DEFAULT, w);
}

static void drain_stop(ev_check *w)
{
    drain_on = 0;
    ev_check_stop(EV_DEFAULT, w);
}

/* The answer to a global node's g_global is the whole database, once per
 * link, and node ids cost nothing: it takes from all nodes' reads'
 * budget, and over it waits on the asking node's link (before: answered
 * at once for every new id, so an insider reconnecting under new ids
 * made the seed copy everything each time). It waits once, for as long
 * as the budget needs: then it is answered even with the budget still
 * spent (by readers with other ids, say), and its view is whole. */
TEST(authority_g_global_answers_take_from_the_reads_budget)
{
    tnode_t a, a2, s[2];
    char sa[64], sa2[64];
    snprintf(sa, sizeof sa, "127.0.0.1:%d", free_port());
    snprintf(sa2, sizeof sa2, "127.0.0.1:%d", free_port());
    const char *seeds[] = {sa, sa2}, *seed1[] = {sa}, *ids[] = {"beta", "gamma"};
    start_ticker();
    REQUIRE(mknode_p1(&a, "alpha", sa, seed1, 1));
    REQUIRE(slaves_of_alpha(s, ids, 2, seed1));
    enum { KEYS = 8000 };
    REQUIRE(fill_big(s[0].node, s[1].node, a.node, KEYS));
    ev_check drain;
    drain_start(&drain, a.node, NULL);
    REQUIRE(mknode_p1(&a2, "alpha2", sa2, seeds, 2));
    for (int i = 0; i < 250 && !strstr(a.warnings, "node alpha2: g_global"); i++) run_for(0.02);
    /* (the entries: the slaves' 8000 and the nodes' own 'g and 'l) */
    const char *w = strstr(a.warnings, "node alpha2: g_global (the database, 800");
    CHECK(w != NULL);
    CHECK(strstr(a.warnings, " entries) waits, and the node's link with it: over all nodes' reads' "
                             "budget of 400000 entries a second") != NULL);
    CHECK(aemp_node_is_up(a.node, "alpha2"));
    /* it waits once: then it is answered, though the budget is still
     * spent (kept so by the drain): alpha2 holds the slaves' entries */
    json_t *h = NULL;
    for (int i = 0; i < 100 && json_object_size(h) < KEYS; i++) {
        json_decref(h);
        h = family_now(a2.node, "big");
    }
    CHECK_INT(json_object_size(h), KEYS);
    json_decref(h);
    CHECK(w && !strstr(w + 1, "node alpha2: g_global"));
    drain_stop(&drain);
    aemp_node_destroy(a2.node);
    aemp_node_destroy(s[1].node);
    aemp_node_destroy(s[0].node);
    aemp_node_destroy(a.node);
}

/* A reader that goes while its request waits - here as long as its own
 * reads' budget is kept spent (the drain) - is seen gone at
 * once: a paused link still watches for its peer's end. The node comes
 * back under the same id and is linked again at once (before: the old
 * link noticed nothing until it read again, and the new one was refused
 * as already connected meanwhile). */
TEST(authority_a_reader_gone_while_waiting_is_seen_at_once)
{
    tnode_t a, s[3], again;
    tnode_t *const b = &s[0], *const evil = &s[1], *const c = &s[2];
    const char *ids[] = {"beta", "evil", "gamma"};
    REQUIRE(alpha_and_slaves(&a, s, ids, 3));
    enum { KEYS = 8000 };
    REQUIRE(fill_big(b->node, c->node, c->node, KEYS));
    ev_check drain;
    drain_start(&drain, a.node, "evil");
    keys_answers = 0;
    for (int i = 0; i < 3; i++) aemp_db_keys(evil->node, "big", keys_answer_nth, (void *)(intptr_t)i);
    for (int i = 0; i < 100 && !strstr(a.warnings, "node evil: g_db_keys of big"); i++) run_for(0.02);
    CHECK(strstr(a.warnings, "node evil: g_db_keys of big (8000 entries) waits") != NULL);
    run_for(0.2);
    CHECK_INT(keys_answers, 0);
    aemp_node_destroy(evil->node);
    double t0 = ev_time();
    for (int i = 0; i < 50 && aemp_node_is_up(a.node, "evil"); i++) run_for(0.02);
    CHECK(!aemp_node_is_up(a.node, "evil"));
    /* the same id again: linked as soon as it connects */
    const char *seeds[] = {alpha_seed};
    REQUIRE(mknode_p1(&again, "evil", NULL, seeds, 1));
    for (int i = 0; i < 100 && !aemp_node_is_up(a.node, "evil"); i++) run_for(0.02);
    printf("    the reader gone and back under its id, linked again after %.2f s (its budget "
           "still spent)\n", ev_time() - t0);
    CHECK(aemp_node_is_up(a.node, "evil"));
    CHECK(ev_time() - t0 < 1.5);
    CHECK(strstr(a.warnings, "already connected") == NULL);
    drain_stop(&drain);
    aemp_node_destroy(again.node);
    aemp_node_destroy(c->node);
    aemp_node_destroy(b->node);
    aemp_node_destroy(a.node);
}

/* All nodes' reads' budget goes to the nodes that wait for it in turn:
 * while an honest reader of a big family waits for enough of it to
 * gather, readers under other ids (here the drain, taking every refill
 * before anything else at each loop time) cannot take it from under it.
 * Before, the reader waited for as long as they kept at it. */
TEST(authority_reads_get_all_nodes_budget_in_turn)
{
    tnode_t a, s[3];
    tnode_t *const b = &s[0], *const c = &s[2];
    const char *ids[] = {"beta", "evil", "gamma"};
    REQUIRE(alpha_and_slaves(&a, s, ids, 3));
    enum { KEYS = 8000 };
    REQUIRE(fill_big(b->node, c->node, b->node, KEYS));
    ev_check drain;
    drain_start(&drain, a.node, NULL);
    run_for(0.1);
    keys_answers = 0;
    keys_in_order = 1;
    double t0 = ev_time();
    aemp_db_keys(c->node, "big", keys_answer_nth, (void *)(intptr_t)0);
    for (int i = 0; i < 50 && !keys_answers; i++) run_for(0.02); /* (before: 2.2 s) */
    printf("    a read of %d entries with all nodes' budget kept spent: answered after %.2f s\n",
           KEYS, ev_time() - t0);
    CHECK_INT(keys_answers, 1);
    CHECK(strstr(a.warnings, "node gamma: g_db_keys of big (8000 entries) waits") != NULL);
    CHECK(strstr(a.warnings, ": test of drain (") != NULL); /* (refused meanwhile) */
    drain_stop(&drain);
    for (int i = 0; i < 3; i++) aemp_node_destroy(s[i].node);
    aemp_node_destroy(a.node);
}

/* A node whose read waits for its turn at all nodes' budget, and whose
 * link is then replaced by a new one under its id (a second handshake
 * it had kept back), leaves no turn behind: its waiting read went with
 * the old link, and the next reader is answered at once. Before, the
 * left-over turn held every reader back until it was stale (10 s). */
TEST(authority_a_reader_whose_link_is_replaced_leaves_no_turn_behind)
{
    tnode_t a, s[2], evil;
    tnode_t *const b = &s[0], *const c = &s[1];
    const char *ids[] = {"beta", "gamma"};
    REQUIRE(alpha_and_slaves(&a, s, ids, 2));
    enum { KEYS = 8000, OWN = 200000 };
    REQUIRE(fill_big(b->node, c->node, b->node, KEYS));
    char k[32];
    for (int i = 0; i < OWN; i++) { /* (a read of it waits a while) */
        snprintf(k, sizeof k, "a%d", i);
        aemp_db_set(a.node, "big", k, json_integer(i));
    }
    run_for(0.2);
    /* a second link greets alpha as "evil" and keeps its auth back */
    raw_t r2;
    REQUIRE(raw_open(&r2, alpha_seed) == 0);
    unsigned char nonce[AEMP_HS_NONCE_MAX];
    REQUIRE(aemp_random_bytes(nonce, sizeof nonce) == 0);
    aemp_hs_config_t hc = {.protocol = 1, .noderef = "evil", .secret = secret,
                           .secret_len = strlen(secret), .nonce = nonce, .timeout = 30};
    aemp_hs_t *hs = aemp_hs_new(&hc, NULL);
    REQUIRE(hs != NULL);
    const void *p;
    size_t len;
    while ((p = aemp_hs_out(hs, &len)) && len) {
        ssize_t w = send(r2.fd, p, len, MSG_NOSIGNAL);
        REQUIRE(w > 0);
        aemp_hs_out_ack(hs, (size_t)w);
    }
    run_for(0.1);
    /* the real evil links, and its read of the big family waits in turn */
    const char *seeds[] = {alpha_seed};
    REQUIRE(mknode_p1(&evil, "evil", NULL, seeds, 1));
    for (int i = 0; i < 100 && !aemp_node_is_up(a.node, "evil"); i++) run_for(0.02);
    REQUIRE(aemp_node_is_up(a.node, "evil"));
    run_for(0.3);
    ev_check drain;
    drain_start(&drain, a.node, NULL);
    run_for(0.1);
    keys_answers = 0;
    aemp_db_keys(evil.node, "big", keys_answer_nth, (void *)(intptr_t)0);
    for (int i = 0; i < 2000 && !strstr(a.warnings, "node evil: g_db_keys of big"); i++)
        ev_run(EV_DEFAULT, EVRUN_ONCE);
    REQUIRE(strstr(a.warnings, "node evil: g_db_keys of big") != NULL);
    /* the second link completes: it replaces evil's */
    char err[256];
    CHECK_INT(raw_auth_end(&r2, hs, 2, err, sizeof err), 1); /* (frees hs) */
    run_for(0.05);
    CHECK_INT(keys_answers, 0);
    aemp_node_destroy(evil.node);
    keys_answers = 0;
    double t0 = ev_time();
    aemp_db_keys(c->node, "big", keys_answer_nth, (void *)(intptr_t)0);
    for (int i = 0; i < 150 && !keys_answers; i++) run_for(0.02);
    printf("    the next reader, all nodes' budget kept spent: answered after %.2f s\n",
           ev_time() - t0);
    CHECK_INT(keys_answers, 1);
    drain_stop(&drain);
    raw_close(&r2);
    for (int i = 0; i < 2; i++) aemp_node_destroy(s[i].node);
    aemp_node_destroy(a.node);
}

/* The raw hook names the peer as the sender of what a service sent to an
 * unknown port of ours on that peer's request, in both dialects. */
static void last_src(void *ud, aemp_node_t *node, const char *src, const char *id, json_t *msg)
{
    (void)node;
    (void)id;
    (void)msg;
    snprintf(ud, 256, "%s", src);
}

static aemp_node_t *mk_hooked(int protocol, const char *id, const char *bind, const char *seed, char *src_seen)
{
    aemp_node_config_t c = {0};
    const char *binds[] = {bind}, *seeds[] = {seed};
    c.protocol = protocol;
    c.secret = secret;
    c.secret_len = strlen(secret);
    c.connect_interval = 0.2;
    c.connect_timeout = 3;
    c.on_message = last_src;
    c.message_ud = src_seen;
    if (protocol == 1) {
        c.nodeid = id;
        c.binds = binds;
        c.nbinds = 1;
        c.seeds = seed ? seeds : NULL;
        c.nseeds = seed ? 1 : 0;
    } else {
        c.bind = bind;
    }
    aemp_node_t *n = aemp_node_new(EV_DEFAULT, &c, NULL);
    if (n && aemp_node_start(n)) {
        aemp_node_destroy(n);
        n = NULL;
    }
    return n;
}

TEST(authority_raw_hook_sees_the_requesting_peer)
{
    start_ticker();
    for (int proto = 0; proto <= 1; proto++) {
        char pa[64], pb[64], src_a[256] = "", src_b[256] = "";
        snprintf(pa, sizeof pa, "127.0.0.1:%d", free_port());
        snprintf(pb, sizeof pb, "127.0.0.1:%d", free_port());
        aemp_node_t *a = mk_hooked(proto, "alpha", pa, NULL, src_a);
        aemp_node_t *b = mk_hooked(proto, "beta", pb, pa, src_b);
        REQUIRE(a && b);
        const char *aname = proto ? "alpha" : pa;
        const char *bname = proto ? "beta" : pb;
        char target[128];
        snprintf(target, sizeof target, "%s#nobody", aname);
        /* the node's own send: it is the sender */
        CHECK_INT(aemp_sendf(a, target, "[s]", "own"), 0);
        for (int i = 0; i < 50 && !*src_a; i++) run_for(0.02);
        CHECK_STR(src_a, aname);
        /* a peer's requests answered to an unknown port of ours: time,
         * and lookup and eval (protocol 0) or can (protocol 1) */
        json_t *reqs = proto ? json_pack("[[ss][sss]]", "time", target, "can", "time", target)
                             : json_pack("[[ss][sss][sss]]", "time", target, "lookup", "x", target,
                                         "eval", "1", target);
        REQUIRE(reqs != NULL);
        for (size_t k = 0; k < json_array_size(reqs); k++) {
            src_a[0] = 0;
            CHECK_INT(aemp_send(b, aname, json_incref(json_array_get(reqs, k))), 0);
            for (int i = 0; i < 150 && !*src_a; i++) run_for(0.02);
            CHECK_STR(src_a, bname);
        }
        json_decref(reqs);
        aemp_node_destroy(b);
        aemp_node_destroy(a);
    }
}
