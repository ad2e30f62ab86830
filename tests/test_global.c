/*
 * test_global.c - protocol-1 global nodes (PROTOCOL-1.md §8.3). The
 * global database (gdb.c) replays the g_* exchanges 2.02 seeds had in
 * the recorded sessions (07-db-ops, 10-raw-simple-handshake,
 * 06-node-down-mesh): the requests go in, the replies that come out must
 * be the recorded ones (object key order and ports aside). Then its
 * limits and hostile input, and real nodes on loopback: two C seeds
 * meshed, slaves finding each other by node id and by database family, a
 * seed killed and restarted, a slave moving to the other seed.
 */
#include "test.h"
#include "harness_node.h"
#include "gdb.h"

#include <ev.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* transcript replay                                                   */

static char *enc(const json_t *v)
{
    static char buf[8][2048];
    static int k;
    char *t = aemp_json_encode(v, NULL);
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s", t ? t : "(null)");
    free(t);
    return b;
}

static int cmp_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Equal, with the arrays of g_reply compared as multisets (2.02 lists a
 * family's keys and values in Perl's hash order). */
static int same_msg(json_t *want, json_t *got)
{
    if (json_equal(want, got)) return 1;
    if (strcmp(json_string_value(json_array_get(want, 0)), "g_reply") ||
        !json_equal(json_array_get(want, 1), json_array_get(got, 1)))
        return 0;
    json_t *a = json_array_get(want, 2), *b = json_array_get(got, 2);
    size_t n = json_array_size(a);
    if (!json_is_array(a) || !json_is_array(b) || n != json_array_size(b)) return 0;
    char **sa = calloc(n + 1, sizeof *sa), **sb = calloc(n + 1, sizeof *sb);
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        sa[i] = aemp_json_encode(json_array_get(a, i), NULL);
        sb[i] = aemp_json_encode(json_array_get(b, i), NULL);
    }
    qsort(sa, n, sizeof *sa, cmp_text);
    qsort(sb, n, sizeof *sb, cmp_text);
    for (size_t i = 0; i < n; i++) {
        ok &= !strcmp(sa[i], sb[i]);
        free(sa[i]);
        free(sb[i]);
    }
    free(sa);
    free(sb);
    return ok;
}

/* The recorded message text as a value, without the leading "" (node
 * port): [TAG, ARGS...]; NULL for a message to another port. */
static json_t *node_req(json_t *ev)
{
    const char *text = json_string_value(json_object_get(ev, "msg"));
    json_t *m = aemp_json_decode(text, strlen(text), 0, NULL, 0);
    json_t *id = json_array_get(m, 0);
    if (!json_is_string(id) || json_string_length(id) || json_array_size(m) < 2) {
        json_decref(m);
        return NULL;
    }
    json_array_remove(m, 0);
    return m;
}

static int is_g(json_t *req, const char *except)
{
    const char *tag = json_string_value(json_array_get(req, 0));
    return tag && !strncmp(tag, "g_", 2) && strcmp(tag, except);
}

static json_t *bind_of(json_t *tr, const char *label)
{
    json_t *nd = json_object_get(json_object_get(json_object_get(tr, "setup"), "nodes"), label);
    return json_object_get(nd, "binds");
}

/* Replays the session between a recorded 2.02 seed (selfid) and one
 * node (peer, connection conn): the peer's g_* requests go into g,
 * everything g sends the peer is compared, in order, with what the seed
 * sent (g_global aside: that goes out when the link comes up, not from
 * the database). Returns how many replies matched. */
static int replay_one_peer(aemp__gdb_t *g, json_t *tr, int conn, const char *peer)
{
    json_t *want = json_array(), *got = json_array();
    json_t *tl = json_object_get(tr, "timeline");
    for (size_t i = 0; i < json_array_size(tl); i++) {
        json_t *ev = json_array_get(tl, i);
        if (json_integer_value(json_object_get(ev, "conn")) != conn) continue;
        json_t *req = node_req(ev);
        if (!req) continue;
        const char *dir = json_string_value(json_object_get(ev, "dir"));
        if (!strcmp(dir, "s2c")) {
            if (is_g(req, "g_global")) json_array_append(want, req);
        } else if (is_g(req, "")) {
            json_t *out = json_array();
            char why[200];
            CHECK_INT(aemp__gdb_feed(g, peer, req, out, why, sizeof why), 0);
            for (size_t k = 0; k < json_array_size(out); k++) {
                json_t *o = json_array_get(out, k);
                CHECK_STR(json_string_value(json_array_get(o, 0)), peer);
                json_array_append(got, json_array_get(o, 1));
            }
            json_decref(out);
        }
        json_decref(req);
        CHECK_INT(aemp__gdb_check(g), 0);
    }
    CHECK_INT(json_array_size(got), json_array_size(want));
    int matched = 0;
    for (size_t i = 0; i < json_array_size(want) && i < json_array_size(got); i++) {
        if (same_msg(json_array_get(want, i), json_array_get(got, i))) matched++;
        else
            t_fail(__FILE__, __LINE__, "reply %zu: want %s got %s", i, enc(json_array_get(want, i)),
                   enc(json_array_get(got, i)));
    }
    json_decref(want);
    json_decref(got);
    return matched;
}

/* The seed's own database at the time: its listener and what it set. */
static void seed_owns(aemp__gdb_t *g, const char *self, json_t *db)
{
    json_t *out = json_array();
    json_t *req = json_pack("[sO]", "g_slave", db);
    CHECK_INT(aemp__gdb_feed(g, self, req, out, NULL, 0), 0);
    CHECK_INT(json_array_size(out), 0); /* no watchers, no globals yet */
    json_decref(req);
    json_decref(out);
}

TEST(gdb_replays_07_db_ops)
{
    json_t *tr = t_load_vectors("vectors/p1/transcripts/07-db-ops.json");
    aemp__gdb_t *g = aemp__gdb_new("seed1");
    json_t *db = json_pack("{s{sO}s{ss}}", "'l", "seed1", bind_of(tr, "seed"), "dbfam", "shared",
                           "seed value");
    seed_owns(g, "seed1", db);
    /* T07: two owners of "shared" (newest write wins, the client's
     * delete reverts to the seed's value), g_db_*, unknown families */
    CHECK_INT(replay_one_peer(g, tr, 2, "client1"), 16);
    /* the client's link goes: only the seed's entries stay */
    json_t *out = json_array();
    CHECK_INT(aemp__gdb_node_down(g, "client1", out), 0);
    CHECK_INT(json_array_size(out), 0); /* it stopped watching (g_mon0) */
    CHECK_STR(enc(aemp__gdb_family(g, "dbfam")), "{\"shared\":\"seed value\"}");
    CHECK_INT(aemp__gdb_nodes(g), 1);
    CHECK_INT(aemp__gdb_check(g), 0);
    json_decref(out);
    json_decref(db);
    aemp__gdb_free(g);
    json_decref(tr);
}

/* The value the seed sent in reply to the request with this tag and
 * first argument (to learn what the seed itself held). */
static json_t *recorded_reply(json_t *tr, const char *tag, const char *arg)
{
    json_t *tl = json_object_get(tr, "timeline");
    for (size_t i = 0; i < json_array_size(tl); i++) {
        json_t *req = node_req(json_array_get(tl, i));
        json_t *r = NULL;
        if (req && !strcmp(json_string_value(json_array_get(req, 0)), tag) &&
            !strcmp(json_string_value(json_array_get(req, 1)), arg))
            r = json_incref(json_array_get(req, 2));
        json_decref(req);
        if (r) return r;
    }
    return NULL;
}

TEST(gdb_replays_10_raw_simple_handshake)
{
    json_t *tr = t_load_vectors("vectors/p1/transcripts/10-raw-simple-handshake.json");
    aemp__gdb_t *g = aemp__gdb_new("seed1");
    /* the seed's own ports: its echo port in pecho (as g_reply q2 shows
     * it) and five in victims (as g_chg1 shows them) */
    json_t *pecho = recorded_reply(tr, "g_reply", "q2");
    json_t *victims = recorded_reply(tr, "g_chg1", "victims");
    REQUIRE(pecho && victims);
    json_t *db = json_pack("{s{sO}sOsO}", "'l", "seed1", bind_of(tr, "seed"), "pecho", pecho,
                           "victims", victims);
    seed_owns(g, "seed1", db);
    /* g_find (known, unknown, the client itself with []), g_db_* (known
     * and unknown families), g_mon1 of a family that does not exist
     * (null), g_slave with a database, g_upd set and delete */
    CHECK_INT(replay_one_peer(g, tr, 2, "rawnode"), 11);
    CHECK_STR(enc(aemp__gdb_family(g, "rawfam")), "{\"rk2\":[1,2]}");
    json_t *out = json_array();
    CHECK_INT(aemp__gdb_node_down(g, "rawnode", out), 0);
    CHECK(aemp__gdb_family(g, "rawfam") == NULL);
    CHECK_INT(aemp__gdb_check(g), 0);
    json_decref(out);
    json_decref(db);
    json_decref(pecho);
    json_decref(victims);
    aemp__gdb_free(g);
    json_decref(tr);
}

/* Feeds req from src, appending every output [DEST, MSG] to log. */
static void feed_log(aemp__gdb_t *g, const char *src, json_t *req, json_t *log)
{
    json_t *out = json_array();
    char why[200] = "";
    int rc = aemp__gdb_feed(g, src, req, out, why, sizeof why);
    if (rc) t_fail(__FILE__, __LINE__, "%s from %s: %d %s", enc(req), src, rc, why);
    json_array_extend(log, out);
    json_decref(out);
}

/* Whether the messages of want appear in log (to dest) in this order. */
static int subsequence(json_t *want, json_t *log, const char *dest)
{
    size_t j = 0;
    for (size_t i = 0; i < json_array_size(log) && j < json_array_size(want); i++) {
        json_t *o = json_array_get(log, i);
        if (!strcmp(json_string_value(json_array_get(o, 0)), dest) &&
            json_equal(json_array_get(o, 1), json_array_get(want, j)))
            j++;
    }
    if (j < json_array_size(want))
        t_fail(__FILE__, __LINE__, "to %s: %s never sent", dest, enc(json_array_get(want, j)));
    return j == json_array_size(want);
}

TEST(gdb_replays_06_node_down_mesh)
{
    /* seed2's side of T06: seed1 (global) sends g_global, g_set and the
     * g_upds of its slave worker1; watcher1 registers with seed2 and
     * watches; worker1 exits (seed1: g_upd F {} [KEYS]); watcher1 goes */
    json_t *tr = t_load_vectors("vectors/p1/transcripts/06-node-down-mesh.json");
    aemp__gdb_t *g = aemp__gdb_new("seed2");
    json_t *db = json_pack("{s{sO}s{sn}}", "'l", "seed2", bind_of(tr, "seed2"), "'g", "seed2");
    seed_owns(g, "seed2", db);
    json_t *log = json_array(), *want_watcher = json_array(), *want_seed1 = json_array();
    json_t *tl = json_object_get(tr, "timeline");
    for (size_t i = 0; i < json_array_size(tl); i++) {
        json_t *ev = json_array_get(tl, i);
        json_t *req = node_req(ev);
        if (!req) continue;
        const char *from = json_string_value(json_object_get(ev, "from"));
        const char *to = json_string_value(json_object_get(ev, "to"));
        const char *tag = json_string_value(json_array_get(req, 0));
        if (!strcmp(to, "seed2") && is_g(req, "")) {
            feed_log(g, from, req, log);
            /* what global.c does beside: 'g on g_global, 'l mirrored */
            json_t *self = NULL;
            if (!strcmp(tag, "g_global")) self = json_pack("[ss{sn}]", "g_upd", "'g", from);
            if (!strcmp(tag, "g_set"))
                self = json_pack("[ss{sO}]", "g_upd", "'l", from,
                                 json_object_get(json_object_get(json_array_get(req, 1), "'l"), from));
            if (self) feed_log(g, "seed2", self, log);
            json_decref(self);
        } else if (!strcmp(from, "seed2") && !strcmp(to, "watcher1") && is_g(req, "g_global")) {
            json_array_append(want_watcher, req);
        } else if (!strcmp(from, "seed2") && !strcmp(to, "seed1") &&
                   (!strcmp(tag, "g_set") || (!strcmp(tag, "g_upd") && json_array_size(req) == 4))) {
            json_array_append(want_seed1, req); /* the global-to-global messages */
        }
        json_decref(req);
        CHECK_INT(aemp__gdb_check(g), 0);
    }
    CHECK(aemp__gdb_is_global(g, "seed1"));
    CHECK_INT(json_array_size(want_seed1), 3);
    json_t *down = json_array();
    CHECK_INT(aemp__gdb_node_down(g, "watcher1", down), 0);
    json_array_extend(log, down);
    /* every reply to the watcher, in order: g_found, the three g_chg1 of
     * the whole families, the three g_chg2 deleting worker1's entries */
    json_t *got_watcher = json_array();
    for (size_t i = 0; i < json_array_size(log); i++)
        if (!strcmp(json_string_value(json_array_get(json_array_get(log, i), 0)), "watcher1"))
            json_array_append(got_watcher, json_array_get(json_array_get(log, i), 1));
    CHECK_INT(json_array_size(got_watcher), 7);
    CHECK_INT(json_array_size(want_watcher), 7);
    for (size_t i = 0; i < json_array_size(want_watcher); i++)
        if (!json_equal(json_array_get(want_watcher, i), json_array_get(got_watcher, i)))
            t_fail(__FILE__, __LINE__, "to watcher1 %zu: want %s got %s", i,
                   enc(json_array_get(want_watcher, i)), enc(json_array_get(got_watcher, i)));
    /* to seed1: g_set of our slaves' databases, watcher1's 'l forwarded,
     * and deleted when it went */
    CHECK(subsequence(want_seed1, log, "seed1"));
    CHECK(json_object_get(aemp__gdb_family(g, "'l"), "watcher1") == NULL);
    CHECK(json_object_get(aemp__gdb_family(g, "'l"), "worker1") == NULL);
    CHECK(aemp__gdb_family(g, "workers") == NULL);
    CHECK_INT(aemp__gdb_check(g), 0);
    json_decref(got_watcher);
    json_decref(down);
    json_decref(log);
    json_decref(want_watcher);
    json_decref(want_seed1);
    json_decref(db);
    aemp__gdb_free(g);
    json_decref(tr);
}

/* ------------------------------------------------------------------ */
/* limits and hostile input                                            */

static int feed_rc(aemp__gdb_t *g, const char *src, json_t *req, char *why)
{
    json_t *out = json_array();
    int rc = aemp__gdb_feed(g, src, req, out, why, 200);
    json_decref(out);
    json_decref(req);
    return rc;
}

TEST(gdb_limits_and_malformed_requests)
{
    aemp__gdb_t *g = aemp__gdb_new("me");
    char why[200];
    /* malformed: each dropped whole with a precise reason */
    CHECK_INT(feed_rc(g, "s", json_pack("[si]", "g_upd", 1), why), AEMP_EBADMSG);
    CHECK_STR(why, "g_upd without a family name");
    CHECK_INT(feed_rc(g, "s", json_pack("[ss[]]", "g_upd", "f", why), why), AEMP_EBADMSG);
    CHECK_STR(why, "family f: not an object of keys");
    CHECK_INT(feed_rc(g, "s", json_pack("[ss{si}[i]]", "g_upd", "f", "k", 1, 5), why), AEMP_EBADMSG);
    CHECK_STR(why, "family f: deleted key 0 is not a string");
    CHECK(aemp__gdb_family(g, "f") == NULL); /* the set part did not happen either */
    CHECK_INT(feed_rc(g, "s", json_pack("[s[]]", "g_slave"), why), AEMP_EBADMSG);
    CHECK_STR(why, "the database is not an object");
    CHECK_INT(feed_rc(g, "s", json_pack("[s{si}]", "g_slave", "f", 3), why), AEMP_EBADMSG);
    CHECK_STR(why, "family f: not an object of keys");
    CHECK_INT(feed_rc(g, "s", json_pack("[ss]", "g_db_keys", "f"), why), AEMP_EBADMSG);
    CHECK_STR(why, "g_db_keys without a family name and an id");
    CHECK_INT(feed_rc(g, "s", json_pack("[si]", "g_find", 7), why), AEMP_EBADMSG);
    CHECK_INT(feed_rc(g, "s", json_pack("[s]", "g_set"), why), AEMP_EBADMSG);
    CHECK_INT(feed_rc(g, "s", json_pack("[i]", 5), why), AEMP_EBADMSG);
    /* an unknown tag is not ours: nothing happens */
    CHECK_INT(feed_rc(g, "s", json_pack("[s]", "g_unknown"), why), 0);

    /* 'l: a node sets its own listeners, never another's (g_find answers
     * from it, our dials follow it); a global peer's share holds its
     * slaves' */
    CHECK_INT(feed_rc(g, "alice", json_pack("[s{s{s[s]}}]", "g_slave", "'l", "alice", "10.0.0.1:4040"),
                      why), 0);
    CHECK_INT(feed_rc(g, "evil", json_pack("[ss{s[s]}]", "g_upd", "'l", "alice", "6.6.6.6:4040"), why),
              AEMP_ESTATE);
    CHECK_STR(why, "family 'l: key alice is another node's listeners (a node sets its own)");
    CHECK_INT(feed_rc(g, "evil", json_pack("[s{s{s[s]}}]", "g_slave", "'l", "alice", "6.6.6.6:1"), why),
              AEMP_ESTATE);
    CHECK_INT(feed_rc(g, "evil", json_pack("[ss{s[s]}]", "g_upd", "'l", "evil", "6.6.6.6:1"), why), 0);
    CHECK_STR(json_string_value(json_array_get(json_object_get(aemp__gdb_family(g, "'l"), "alice"), 0)),
              "10.0.0.1:4040");
    CHECK_INT(feed_rc(g, "gl", json_pack("[s]", "g_global"), why), 0);
    CHECK_INT(feed_rc(g, "gl", json_pack("[s{s{s[s]}}]", "g_set", "'l", "slave-of-gl", "10.0.0.2:1"), why),
              0);

    /* a value over AEMP_GDB_VALUE_MAX */
    char *big = malloc(AEMP_GDB_VALUE_MAX + 10);
    memset(big, 'x', AEMP_GDB_VALUE_MAX + 9);
    big[AEMP_GDB_VALUE_MAX + 9] = 0;
    CHECK_INT(feed_rc(g, "s", json_pack("[ss{ss}]", "g_upd", "f", "k", big), why), AEMP_ELIMIT);
    CHECK_STR(why, "family f: value of key k is over 65536 bytes");
    free(big);
    /* a key name over AEMP_GDB_NAME_MAX */
    char name[AEMP_GDB_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    CHECK_INT(feed_rc(g, "s", json_pack("[ss{sn}]", "g_upd", "f", name), why), AEMP_ELIMIT);
    CHECK_STR(why, "family f: key of 1025 bytes, limit 1024");
    /* deleting a key that long (no node can hold one; 5000 bytes is more
     * than a shard's entry key holds) deletes nothing, the rest applies */
    char *longkey = malloc(5001);
    memset(longkey, 'A', 5000);
    longkey[5000] = 0;
    CHECK_INT(feed_rc(g, "s", json_pack("[ss{sn}[s]]", "g_upd", "d", "kept", longkey), why), 0);
    CHECK_INT(feed_rc(g, "s", json_pack("[ssn[ss]]", "g_upd", "d", longkey, name), why), 0);
    CHECK(json_object_get(aemp__gdb_family(g, "d"), "kept") != NULL);
    free(longkey);
    /* more keys in one family than AEMP_GDB_NODE_KEYS_MAX, whole */
    json_t *set = json_object();
    for (int i = 0; i <= AEMP_GDB_NODE_KEYS_MAX; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        json_object_set_new(set, k, json_true());
    }
    CHECK_INT(feed_rc(g, "s", json_pack("[ssO]", "g_upd", "f", set), why), AEMP_ELIMIT);
    CHECK_STR(why, "family f would hold 4097 keys of this node, limit 4096");
    CHECK(aemp__gdb_family(g, "f") == NULL);
    json_object_del(set, "k0"); /* exactly the limit is fine */
    CHECK_INT(feed_rc(g, "s", json_pack("[ssO]", "g_upd", "f", set), why), 0);
    CHECK_INT(json_object_size(aemp__gdb_family(g, "f")), AEMP_GDB_NODE_KEYS_MAX);
    CHECK_INT(feed_rc(g, "s", json_pack("[ss{sn}]", "g_upd", "f", "one more"), why), AEMP_ELIMIT);
    /* our own share is bounded as a whole, as a global node's: what we
     * mirror of the global nodes ('g, 'l) goes there, and peers must not
     * be able to fill it up to where our own writes are refused */
    json_object_set_new(set, "k0", json_true());
    CHECK_INT(feed_rc(g, "me", json_pack("[ssO]", "g_upd", "own", set), why), 0);
    CHECK_INT(json_object_size(aemp__gdb_family(g, "own")), AEMP_GDB_NODE_KEYS_MAX + 1);
    CHECK_INT(aemp__gdb_check(g), 0);
    json_decref(set);
    /* more families than AEMP_GDB_NODE_FAMILIES_MAX in a registration */
    json_t *db = json_object();
    for (int i = 0; i <= AEMP_GDB_NODE_FAMILIES_MAX; i++) {
        char f[16];
        snprintf(f, sizeof f, "f%d", i);
        json_object_set_new(db, f, json_pack("{sn}", "k"));
    }
    CHECK_INT(feed_rc(g, "t", json_pack("[sO]", "g_slave", db), why), AEMP_ELIMIT);
    CHECK_STR(why, "the node's database would hold 257 families, limit 256");
    json_decref(db);
    /* a database over AEMP_GDB_NODE_BYTES_MAX: 128 families x 64 values
     * of 60000 bytes */
    char *v = malloc(60001);
    memset(v, 'v', 60000);
    v[60000] = 0;
    int rc = 0;
    for (int f = 0; f < 128 && !rc; f++)
        for (int k = 0; k < 64 && !rc; k++) {
            char fn[16], kn[16];
            snprintf(fn, sizeof fn, "b%d", f);
            snprintf(kn, sizeof kn, "%d", k);
            rc = feed_rc(g, "u", json_pack("[ss{ss}]", "g_upd", fn, kn, v), why);
        }
    CHECK_INT(rc, AEMP_ELIMIT);
    CHECK(strstr(why, "bytes, limit 4194304") != NULL);
    CHECK(aemp__gdb_bytes(g) <= 2 * (size_t)AEMP_GDB_NODE_BYTES_MAX + 200000);
    free(v);
    /* watching more families than the limit */
    for (int i = 0; i < AEMP_GDB_NODE_FAMILIES_MAX; i++) {
        char f[16];
        snprintf(f, sizeof f, "w%d", i);
        CHECK_INT(feed_rc(g, "w", json_pack("[ss]", "g_mon1", f), why), 0);
    }
    CHECK_INT(feed_rc(g, "w", json_pack("[ss]", "g_mon1", "w0"), why), 0); /* again: same */
    CHECK_INT(feed_rc(g, "w", json_pack("[ss]", "g_mon1", "one too many"), why), AEMP_ELIMIT);
    CHECK_STR(why, "the node watches 256 families, the limit");
    CHECK_INT(aemp__gdb_check(g), 0);
    aemp__gdb_free(g);
}

TEST(gdb_reregistering_in_a_loop_stays_bounded)
{
    aemp__gdb_t *g = aemp__gdb_new("me");
    json_t *out = json_array();
    size_t bytes = 0;
    for (int i = 0; i < 2000; i++) {
        /* each round another key: a registration replaces the last */
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        json_t *req = json_pack("[s{s{ss}s{s[s]}}]", "g_slave", "fam", k, "value", "'l", "loop",
                                "127.0.0.1:1");
        json_array_clear(out);
        CHECK_INT(aemp__gdb_feed(g, "loop", req, out, NULL, 0), 0);
        json_decref(req);
        if (i == 1) bytes = aemp__gdb_bytes(g);
    }
    CHECK_INT(json_object_size(aemp__gdb_family(g, "fam")), 1);
    CHECK(aemp__gdb_bytes(g) <= bytes + 8);
    CHECK_INT(aemp__gdb_nodes(g), 1);
    /* up and down in a loop: nothing stays */
    for (int i = 0; i < 1000; i++) {
        json_t *req = json_pack("[s{s{sn}}]", "g_slave", "fam", "k");
        json_array_clear(out);
        aemp__gdb_feed(g, "flap", req, out, NULL, 0);
        aemp__gdb_node_down(g, "flap", out);
        json_decref(req);
    }
    CHECK_INT(aemp__gdb_nodes(g), 1);
    CHECK_INT(aemp__gdb_check(g), 0);
    json_decref(out);
    aemp__gdb_free(g);
}

TEST(gdb_owners_newest_write_wins_and_reverts)
{
    aemp__gdb_t *g = aemp__gdb_new("me");
    json_t *log = json_array();
    json_t *r;
    feed_log(g, "w", r = json_pack("[ss]", "g_mon1", "f"), log), json_decref(r);
    feed_log(g, "a", r = json_pack("[ss{ss}]", "g_upd", "f", "k", "a"), log), json_decref(r);
    feed_log(g, "b", r = json_pack("[ss{ss}]", "g_upd", "f", "k", "b"), log), json_decref(r);
    feed_log(g, "c", r = json_pack("[ss{ss}]", "g_upd", "f", "k", "c"), log), json_decref(r);
    CHECK_STR(enc(aemp__gdb_family(g, "f")), "{\"k\":\"c\"}");
    /* the newest owner goes: the next newest value comes back */
    json_array_clear(log);
    aemp__gdb_node_down(g, "c", log);
    CHECK_STR(enc(aemp__gdb_family(g, "f")), "{\"k\":\"b\"}");
    CHECK_STR(enc(log), "[[\"w\",[\"g_chg2\",\"f\",{\"k\":\"b\"},[]]]]");
    json_array_clear(log);
    feed_log(g, "b", r = json_pack("[ssn[s]]", "g_upd", "f", "k"), log), json_decref(r);
    CHECK_STR(enc(log), "[[\"w\",[\"g_chg2\",\"f\",{\"k\":\"a\"},[]]]]");
    json_array_clear(log);
    /* a node deletes only what it holds */
    feed_log(g, "b", r = json_pack("[ssn[s]]", "g_upd", "f", "k"), log), json_decref(r);
    CHECK_STR(enc(log), "[]");
    feed_log(g, "a", r = json_pack("[ssn[s]]", "g_upd", "f", "k"), log), json_decref(r);
    CHECK_STR(enc(log), "[[\"w\",[\"g_chg2\",\"f\",{},[\"k\"]]]]");
    CHECK(aemp__gdb_family(g, "f") == NULL);
    CHECK_INT(aemp__gdb_check(g), 0);
    json_decref(log);
    aemp__gdb_free(g);
}

/* Many nodes each hold their own key fam/nI; others become further
 * holders of all those keys and delete them again. */
enum { SHARED_N = 3000 };

static void feed_ok(aemp__gdb_t *g, const char *src, json_t *req)
{
    json_t *out = json_array();
    char why[200] = "";
    int rc = aemp__gdb_feed(g, src, req, out, why, sizeof why);
    if (rc) t_fail(__FILE__, __LINE__, "%s from %s: %d %s", enc(req), src, rc, why);
    json_decref(out);
    json_decref(req);
}

/* The set {nI: value} of all the keys; the keys' names. */
static json_t *shared_set(const char *value)
{
    json_t *set = json_object();
    char k[16];
    for (int i = 0; i < SHARED_N; i++) {
        snprintf(k, sizeof k, "n%d", i);
        json_object_set_new(set, k, json_string(value));
    }
    return set;
}

static json_t *shared_keys(void)
{
    json_t *keys = json_array();
    char k[16];
    for (int i = 0; i < SHARED_N; i++) {
        snprintf(k, sizeof k, "n%d", i);
        json_array_append_new(keys, json_string(k));
    }
    return keys;
}

/* How many of the view's keys are not want (NULL: each node's own
 * value "vI"); says which was the first. */
static int shared_wrong(aemp__gdb_t *g, const char *want)
{
    json_t *l = aemp__gdb_family(g, "fam");
    int wrong = 0;
    for (int i = 0; i < SHARED_N; i++) {
        char k[16], own[16];
        snprintf(k, sizeof k, "n%d", i);
        snprintf(own, sizeof own, "v%d", i);
        const char *v = json_string_value(json_object_get(l, k));
        if (!v || strcmp(v, want ? want : own)) {
            if (!wrong++)
                t_fail(__FILE__, __LINE__, "fam/%s is %s, want %s", k, v ? v : "(none)",
                       want ? want : own);
        }
    }
    return wrong;
}

/* src deletes the keys one g_upd at a time: after each the view shows
 * want (NULL: the node's own value) for that key. Checks the whole
 * database every 97 deletes. Returns how many showed another value. */
static int shared_delete_each(aemp__gdb_t *g, const char *src, const char *want)
{
    int wrong = 0;
    for (int i = 0; i < SHARED_N; i++) {
        char k[16], own[16];
        snprintf(k, sizeof k, "n%d", i);
        snprintf(own, sizeof own, "v%d", i);
        feed_ok(g, src, json_pack("[ssn[s]]", "g_upd", "fam", k));
        const char *v = json_string_value(json_object_get(aemp__gdb_family(g, "fam"), k));
        if (!v || strcmp(v, want ? want : own)) {
            if (!wrong++)
                t_fail(__FILE__, __LINE__, "after %s's delete fam/%s is %s, want %s", src, k,
                       v ? v : "(none)", want ? want : own);
        }
        if (!(i % 97)) CHECK_INT(aemp__gdb_check(g), 0);
    }
    CHECK_INT(aemp__gdb_check(g), 0);
    return wrong;
}

TEST(gdb_shared_key_deletes_look_only_at_that_keys_holders)
{
    aemp__gdb_t *g = aemp__gdb_new("me");
    char id[16], v[16];
    for (int i = 0; i < SHARED_N; i++) {
        snprintf(id, sizeof id, "n%d", i);
        snprintf(v, sizeof v, "v%d", i);
        feed_ok(g, id, json_pack("[s{s{ss}}]", "g_slave", "fam", id, v));
    }
    CHECK_INT(aemp__gdb_check(g), 0);
    /* each delete below looks at its key's holders only: 2 when the
     * deleting shard and the node hold it, 3 with one more. A walk of
     * all shards would make it SHARED_N per delete. */
    unsigned long visits = aemp__gdb_holder_visits(g), want = 0;
    for (int round = 0; round < 3; round++) {
        /* x (no slave) holds every key too: its newer value shows, and
         * each delete brings the node's back */
        feed_ok(g, "x", json_pack("[sso]", "g_upd", "fam", shared_set("x")));
        CHECK_INT(shared_wrong(g, "x"), 0);
        CHECK_INT(aemp__gdb_check(g), 0);
        CHECK_INT(shared_delete_each(g, "x", NULL), 0);
        want += 2 * SHARED_N;

        /* the same in one g_upd that sets and deletes them all */
        feed_ok(g, "x", json_pack("[ssoo]", "g_upd", "fam", shared_set("x"), shared_keys()));
        CHECK_INT(shared_wrong(g, NULL), 0);
        CHECK_INT(aemp__gdb_check(g), 0);
        want += 2 * SHARED_N;

        /* a slave before a global peer: y (no slave) wrote after the
         * node, x last; when x goes, the node's value shows, not y's
         * newer one */
        feed_ok(g, "y", json_pack("[sso]", "g_upd", "fam", shared_set("y")));
        feed_ok(g, "x", json_pack("[sso]", "g_upd", "fam", shared_set("x")));
        CHECK_INT(shared_delete_each(g, "x", NULL), 0);
        CHECK_INT(shared_delete_each(g, "y", NULL), 0);
        want += 3 * SHARED_N + 2 * SHARED_N;

        /* then the latest writer: slave z wrote after the node; when x
         * goes, z's value shows, and the node's when z goes down */
        feed_ok(g, "z", json_pack("[s{so}]", "g_slave", "fam", shared_set("z")));
        feed_ok(g, "x", json_pack("[sso]", "g_upd", "fam", shared_set("x")));
        CHECK_INT(shared_delete_each(g, "x", "z"), 0);
        json_t *out = json_array();
        CHECK_INT(aemp__gdb_node_down(g, "z", out), 0);
        json_decref(out);
        CHECK_INT(shared_wrong(g, NULL), 0);
        CHECK_INT(aemp__gdb_check(g), 0);
        want += 3 * SHARED_N + 2 * SHARED_N;

        /* and the node rewriting its key makes it the latest again: it
         * wins over slave z, which wrote before */
        feed_ok(g, "z", json_pack("[s{so}]", "g_slave", "fam", shared_set("z")));
        for (int i = 0; i < SHARED_N; i++) {
            snprintf(id, sizeof id, "n%d", i);
            snprintf(v, sizeof v, "v%d", i);
            feed_ok(g, id, json_pack("[ss{ss}]", "g_upd", "fam", id, v));
        }
        feed_ok(g, "x", json_pack("[sso]", "g_upd", "fam", shared_set("x")));
        CHECK_INT(shared_delete_each(g, "x", NULL), 0);
        CHECK_INT(shared_delete_each(g, "z", NULL), 0);
        want += 3 * SHARED_N + 2 * SHARED_N;
        CHECK_INT(aemp__gdb_holder_visits(g) - visits, want);
    }
    CHECK_INT(aemp__gdb_nodes(g), SHARED_N + 3);
    CHECK_INT(json_object_size(aemp__gdb_family(g, "fam")), SHARED_N);
    aemp__gdb_free(g);
}

/* The nodes a drain reports, sorted and joined: "a,b". */
static void drained_one(void *ctx, const char *node)
{
    json_array_append_new(ctx, json_string(node));
}

static char *drained(aemp__gdb_t *g)
{
    static char buf[4096];
    json_t *a = json_array();
    CHECK_INT(aemp__gdb_g_drain(g, drained_one, a), 0);
    size_t n = json_array_size(a);
    const char **v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = json_string_value(json_array_get(a, i));
    qsort(v, n, sizeof *v, cmp_text);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "," : "", v[i]);
    free(v);
    json_decref(a);
    CHECK(!aemp__gdb_g_pending(g));
    return buf;
}

/* How many names a drained list holds. */
static size_t names(const char *d)
{
    size_t n = *d != '\0';
    for (; *d; d++) n += *d == ',';
    return n;
}

/* {"gK": null, ...} for K in [from, to) */
static json_t *g_keys(int from, int to)
{
    json_t *o = json_object();
    char k[16];
    for (int i = from; i < to; i++) {
        snprintf(k, sizeof k, "g%d", i);
        json_object_set_new(o, k, json_null());
    }
    return o;
}

/* The global nodes a global node keeps links to are those that its own
 * share and its global peers' shares name in 'g: a slave's 'g keys are in
 * the view (2.02's answers do not change) but name nobody to dial; one
 * peer names at most AEMP_GDB_NODE_GLOBALS_MAX (a slave's database holds
 * no more; a global peer's share, which merges its slaves', holds more
 * but vouches for no more, and when one it vouches for goes, the first
 * of the others takes its place); and what changed is reported key by
 * key, so that the mesh never looks at all of them for one change. */
TEST(gdb_global_nodes_to_dial_are_vouched_bounded_and_reported_by_change)
{
    aemp__gdb_t *g = aemp__gdb_new("me");
    char why[200];
    feed_ok(g, "me", json_pack("[ss{sn}]", "g_upd", "'g", "me"));
    CHECK_STR(drained(g), "me");
    CHECK(aemp__gdb_g_vouched(g, "me"));

    /* a slave claims a global node: in the view, not vouched for */
    feed_ok(g, "s1", json_pack("[s{s{sn}}]", "g_slave", "'g", "fake"));
    CHECK(json_object_get(aemp__gdb_family(g, "'g"), "fake") != NULL);
    CHECK(!aemp__gdb_g_vouched(g, "fake"));
    CHECK(!aemp__gdb_g_pending(g));

    /* a global peer names as many as it may: all vouched */
    feed_ok(g, "G", json_pack("[s]", "g_global"));
    feed_ok(g, "G", json_pack("[s{so}]", "g_set", "'g", g_keys(0, AEMP_GDB_NODE_GLOBALS_MAX)));
    CHECK_INT(names(drained(g)), AEMP_GDB_NODE_GLOBALS_MAX);
    CHECK(aemp__gdb_g_vouched(g, "g0") && aemp__gdb_g_vouched(g, "g255"));
    CHECK_INT(aemp__gdb_check(g), 0);

    /* one more is taken (a global peer's share merges its slaves'
     * databases: refusing would drop theirs), but not vouched for; a
     * slave's database over the bound is refused whole */
    feed_ok(g, "G", json_pack("[ss{sn}]", "g_upd", "'g", "g999"));
    CHECK(json_object_get(aemp__gdb_family(g, "'g"), "g999") != NULL);
    CHECK(!aemp__gdb_g_vouched(g, "g999"));
    CHECK(!aemp__gdb_g_pending(g));
    CHECK_INT(feed_rc(g, "s2", json_pack("[s{so}]", "g_slave", "'g", g_keys(0, 300)), why),
              AEMP_ELIMIT);
    CHECK_STR(why, "family 'g would hold 300 keys of this node, limit 256");
    CHECK_INT(aemp__gdb_check(g), 0);

    /* a global peer whose slaves set many: its g_set is taken whole (its
     * slaves' listeners too), and it vouches for the bound's worth */
    aemp__gdb_t *w = aemp__gdb_new("w");
    json_t *gs = g_keys(0, 300);
    json_object_set_new(gs, "X", json_null());
    feed_ok(w, "X", json_pack("[s]", "g_global"));
    feed_ok(w, "X", json_pack("[s{so s{s[s]}}]", "g_set", "'g", gs, "'l", "H", "127.0.0.1:9"));
    CHECK(json_object_get(aemp__gdb_family(w, "'l"), "H") != NULL);
    CHECK_INT(json_object_size(aemp__gdb_family(w, "'g")), 301);
    CHECK_INT(names(drained(w)), AEMP_GDB_NODE_GLOBALS_MAX);
    CHECK(aemp__gdb_g_vouched(w, "g255") && !aemp__gdb_g_vouched(w, "g256"));
    /* one it vouches for goes: the first that waits (in the order the
     * share got them) takes its place, then the next */
    feed_ok(w, "X", json_pack("[ssn[s]]", "g_upd", "'g", "g0"));
    CHECK_STR(drained(w), "g0,g256");
    CHECK(aemp__gdb_g_vouched(w, "g256") && !aemp__gdb_g_vouched(w, "g257"));
    /* one that waits goes: nothing changes for the links, and it is no
     * longer there to take a place */
    feed_ok(w, "X", json_pack("[ssn[s]]", "g_upd", "'g", "g257"));
    CHECK(!aemp__gdb_g_pending(w));
    feed_ok(w, "X", json_pack("[ssn[s]]", "g_upd", "'g", "g1"));
    CHECK_STR(drained(w), "g1,g258");
    CHECK_INT(aemp__gdb_check(w), 0);
    /* the peer goes: what it vouched for goes, and no waiting key takes
     * a place on the way out (each would be reported twice) */
    {
        json_t *gone = json_array();
        CHECK_INT(aemp__gdb_node_down(w, "X", gone), 0);
        json_decref(gone);
        CHECK_INT(names(drained(w)), AEMP_GDB_NODE_GLOBALS_MAX);
        CHECK_INT(aemp__gdb_check(w), 0);
    }
    aemp__gdb_free(w);

    /* a change is reported by itself: one key gone - g999, which waited,
     * takes its place - and back, now waiting in turn */
    feed_ok(g, "G", json_pack("[ssn[s]]", "g_upd", "'g", "g7"));
    CHECK_STR(drained(g), "g7,g999");
    CHECK(!aemp__gdb_g_vouched(g, "g7") && aemp__gdb_g_vouched(g, "g999"));
    feed_ok(g, "G", json_pack("[ss{sn}]", "g_upd", "'g", "g7"));
    CHECK(!aemp__gdb_g_pending(g));
    CHECK(!aemp__gdb_g_vouched(g, "g7"));
    feed_ok(g, "G", json_pack("[ssn[s]]", "g_upd", "'g", "g999"));
    CHECK_STR(drained(g), "g7,g999");
    CHECK(aemp__gdb_g_vouched(g, "g7") && !aemp__gdb_g_vouched(g, "g999"));
    CHECK_INT(aemp__gdb_check(g), 0);
    /* a key another voucher holds too stays vouched when one lets go;
     * a slave holding it does not keep it vouched */
    feed_ok(g, "me", json_pack("[ss{sn}]", "g_upd", "'g", "g1"));
    feed_ok(g, "s1", json_pack("[ss{sn}]", "g_upd", "'g", "g2"));
    CHECK(!aemp__gdb_g_pending(g));
    feed_ok(g, "G", json_pack("[ssn[ss]]", "g_upd", "'g", "g1", "g2"));
    CHECK_STR(drained(g), "g2");
    CHECK(aemp__gdb_g_vouched(g, "g1") && !aemp__gdb_g_vouched(g, "g2"));
    CHECK(json_object_get(aemp__gdb_family(g, "'g"), "g2") != NULL); /* s1's */
    CHECK_INT(aemp__gdb_check(g), 0);

    /* the peer goes: what only it named is reported, once each */
    json_t *out = json_array();
    CHECK_INT(aemp__gdb_node_down(g, "G", out), 0);
    json_decref(out);
    char *d = drained(g);
    CHECK(strstr(d, "g0,") == d && !strstr(d, "g1,") && !strstr(d, "g2,"));
    /* all but g1 (ours too) and g2 (gone before) */
    CHECK_INT(names(d), AEMP_GDB_NODE_GLOBALS_MAX - 2);
    CHECK(!aemp__gdb_g_vouched(g, "g0") && aemp__gdb_g_vouched(g, "g1") &&
          aemp__gdb_g_vouched(g, "me"));
    CHECK_INT(aemp__gdb_check(g), 0);
    aemp__gdb_free(g);
}

/* ------------------------------------------------------------------ */
/* nodes on loopback                                                   */

typedef struct gn {
    tnode_t t;
    aemp_node_t *node;
    char addr[64];
} gn_t;

/* A started protocol-1 node id listening on 127.0.0.1:port (0: any) with
 * the given seeds. */
static aemp_node_t *mkg(gn_t *x, const char *id, int port, const char *s1, const char *s2)
{
    memset(x, 0, sizeof *x);
    start_ticker();
    snprintf(x->addr, sizeof x->addr, "127.0.0.1:%d", port);
    const char *seeds[] = {s1, s2};
    return x->node = mknode_p1(&x->t, id, x->addr, seeds, s2 ? 2 : s1 ? 1 : 0);
}

typedef struct dbwait {
    json_t *result;
    int answers;
} dbwait_t;

static void on_reply(aemp_node_t *n, const char *family, json_t *result, void *ud)
{
    dbwait_t *w = ud;
    json_decref(w->result);
    w->result = json_deep_copy(result);
    w->answers++;
}

/* Asks node for family until its entry key is want (NULL: absent, "":
 * any value), for up to seconds. */
static int family_has(aemp_node_t *n, const char *family, const char *key, const char *want,
                      double seconds)
{
    for (double t = 0; t < seconds; t += 0.05) {
        dbwait_t w = {NULL, 0};
        if (aemp_db_family(n, family, on_reply, &w)) return 0;
        for (int i = 0; i < 40 && !w.answers; i++) run_for(0.005);
        json_t *v = json_object_get(w.result, key);
        int ok = !want ? !v && w.answers
                 : *want ? json_is_string(v) && !strcmp(json_string_value(v), want)
                         : v != NULL;
        json_decref(w.result);
        if (ok) return 1;
        run_for(0.045);
    }
    return 0;
}

typedef struct watch {
    json_t *hash;
    int calls;
} watch_t;

static void on_change(aemp_node_t *n, const char *family, json_t *hash, json_t *added,
                      json_t *changed, json_t *deleted, void *ud)
{
    watch_t *w = ud;
    json_decref(w->hash);
    w->hash = json_deep_copy(hash);
    w->calls++;
}

static int watch_has(watch_t *w, const char *key, const char *want, double seconds)
{
    for (double t = 0; t < seconds; t += 0.02) {
        json_t *v = json_object_get(w->hash, key);
        if (want ? json_is_string(v) && !strcmp(json_string_value(v), want) : w->hash && !v)
            return 1;
        run_for(0.02);
    }
    return 0;
}

typedef struct got {
    int calls;
    char last[512];
} got_t;

static int on_msg(aemp_port_t *p, json_t *msg, void *ud)
{
    got_t *g = ud;
    char *t = aemp_json_encode(msg, NULL);
    snprintf(g->last, sizeof g->last, "%s", t ? t : "");
    free(t);
    g->calls++;
    return AEMP_KEEP;
}

static void on_died(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    got_t *g = ud;
    char *t = aemp_json_encode(reason, NULL);
    snprintf(g->last, sizeof g->last, "%s", t ? t : "");
    free(t);
    g->calls++;
}

static int got_one(void *ud)
{
    return ((got_t *)ud)->calls > 0;
}

typedef struct two {
    aemp_node_t *n;
    const char *a, *b;
} two_t;

static int both_up(void *ud)
{
    two_t *t = ud;
    return aemp_node_is_up(t->n, t->a) && (!t->b || aemp_node_is_up(t->n, t->b));
}

TEST(global_two_c_seeds_mesh_and_slaves_find_each_other)
{
    char a_ep[64], b_ep[64];
    snprintf(a_ep, sizeof a_ep, "127.0.0.1:%d", free_port());
    snprintf(b_ep, sizeof b_ep, "127.0.0.1:%d", free_port());
    gn_t A, B, S1, S2;
    /* both seeds know both addresses: each is its own seed, so global */
    REQUIRE(mkg(&A, "seedA", atoi(strchr(a_ep, ':') + 1), a_ep, b_ep));
    REQUIRE(mkg(&B, "seedB", atoi(strchr(b_ep, ':') + 1), a_ep, b_ep));
    CHECK(aemp_node_is_global(A.node));
    CHECK(aemp_node_is_global(B.node));
    two_t ab = {A.node, "seedB", NULL};
    CHECK(run_until(both_up, &ab, 5));
    /* the mesh: each has both in 'g (its own aemp_db_* calls are served
     * by itself) */
    CHECK(family_has(A.node, "'g", "seedB", "", 5));
    CHECK(family_has(B.node, "'g", "seedA", "", 5));
    CHECK(family_has(B.node, "'l", "seedA", "", 5));
    REQUIRE(mkg(&S1, "s1", 0, a_ep, NULL));
    REQUIRE(mkg(&S2, "s2", 0, b_ep, NULL));
    CHECK(!aemp_node_is_global(S1.node));
    /* by family: s1 registers a port with seedA, s2 watches at seedB */
    got_t g1 = {0};
    aemp_port_t *p1 = aemp_port_new(S1.node, on_msg, &g1);
    char p1id[128];
    snprintf(p1id, sizeof p1id, "%s", aemp_port_id(p1)); /* the port goes */
    CHECK_INT(aemp_db_reg(S1.node, "svc", p1id, json_string("one")), 0);
    watch_t w = {0};
    aemp_db_mon_t *m = aemp_db_mon(S2.node, "svc", on_change, &w);
    CHECK(m != NULL);
    CHECK(watch_has(&w, p1id, "one", 5));
    CHECK(family_has(S2.node, "svc", p1id, "one", 2));
    dbwait_t keys = {0}, vals = {0};
    CHECK_INT(aemp_db_keys(S2.node, "svc", on_reply, &keys), 0);
    CHECK_INT(aemp_db_values(S2.node, "svc", on_reply, &vals), 0);
    for (int i = 0; i < 100 && (!keys.answers || !vals.answers); i++) run_for(0.01);
    CHECK_STR(enc(vals.result), "[\"one\"]");
    CHECK_STR(json_string_value(json_array_get(keys.result, 0)), p1id);
    json_decref(keys.result);
    json_decref(vals.result);
    /* the mesh holds it on both seeds, with both 'g entries */
    CHECK(family_has(A.node, "svc", p1id, "one", 2));
    CHECK(family_has(B.node, "svc", p1id, "one", 2));
    dbwait_t gk = {0};
    CHECK_INT(aemp_db_keys(A.node, "'g", on_reply, &gk), 0);
    for (int i = 0; i < 100 && !gk.answers; i++) run_for(0.01);
    CHECK_INT(json_array_size(gk.result), 2);
    json_decref(gk.result);
    /* by node id: s2 sends to s1's port; g_find through seedB, which
     * knows s1's listeners from seedA, then a direct link */
    CHECK_INT(aemp_sendf(S2.node, p1id, "[ss]", "hello", "from s2"), 0);
    CHECK(run_until(got_one, &g1, 5));
    CHECK_STR(g1.last, "[\"hello\",\"from s2\"]");
    CHECK(aemp_node_is_up(S2.node, "s1"));
    /* a global node resolves from its view: s2 at once, an unknown node
     * fails at once with 2.02's text */
    got_t g2 = {0};
    aemp_port_t *p2 = aemp_port_new(S2.node, on_msg, &g2);
    CHECK_INT(aemp_sendf(A.node, aemp_port_id(p2), "[s]", "from seedA"), 0);
    CHECK(run_until(got_one, &g2, 5));
    got_t dead = {0};
    CHECK(aemp_mon(A.node, "nowhere#1", on_died, &dead) != NULL);
    CHECK_INT(aemp_sendf(A.node, "nowhere#1", "[s]", "x"), 0);
    CHECK(run_until(got_one, &dead, 1));
    CHECK_STR(dead.last, "[\"transport_error\",\"nowhere\",\"no known address\"]");
    /* hostile requests from an authenticated node: dropped whole, with
     * a warning saying what was wrong, and the link stays */
    CHECK_INT(aemp_sendf(S1.node, "seedA", "[ssi]", "g_upd", "svc", 5), 0);
    char *big = malloc(AEMP_GDB_VALUE_MAX + 1);
    memset(big, 'b', AEMP_GDB_VALUE_MAX);
    big[AEMP_GDB_VALUE_MAX] = 0;
    CHECK_INT(aemp_sendf(S1.node, "seedA", "[ss{ss}]", "g_upd", "svc", "big", big), 0);
    free(big);
    for (int i = 0; i < 100 && !strstr(A.t.warnings, "key big"); i++) run_for(0.01);
    CHECK(strstr(A.t.warnings, "node s1: g_upd: family svc: not an object of keys; dropped") != NULL);
    CHECK(strstr(A.t.warnings,
                 "node s1: g_upd: family svc: value of key big is over 65536 bytes; dropped") != NULL);
    CHECK(family_has(S2.node, "svc", "big", NULL, 0.01));
    CHECK(aemp_node_is_up(S1.node, "seedA"));

    /* s1's port dies: its entry goes everywhere */
    aemp_port_kill(p1, NULL);
    CHECK(watch_has(&w, p1id, NULL, 5));
    CHECK(family_has(A.node, "svc", p1id, NULL, 2));
    /* no link went down: seedA's first try of seedB (not listening
     * yet) and the unknown node are all it saw fail */
    CHECK_INT(B.t.links_down, 0);
    CHECK_INT(A.t.links_down, 2);
    aemp_db_mon_cancel(m);
    json_decref(w.hash);
    aemp_node_destroy(S2.node);
    aemp_node_destroy(S1.node);
    aemp_node_destroy(B.node);
    aemp_node_destroy(A.node);
}

TEST(global_seed_killed_and_restarted_slave_moves)
{
    int pa = free_port_fixed(), pb = free_port();
    char a_ep[64], b_ep[64];
    snprintf(a_ep, sizeof a_ep, "127.0.0.1:%d", pa);
    snprintf(b_ep, sizeof b_ep, "127.0.0.1:%d", pb);
    gn_t A, B, S1, S2, S3;
    REQUIRE(mkg(&A, "seedA", pa, a_ep, b_ep));
    /* s1 knows both seeds; seedB is not up yet, so seedA is its master */
    REQUIRE(mkg(&S1, "s1", 0, a_ep, b_ep));
    two_t s1a = {S1.node, "seedA", NULL};
    CHECK(run_until(both_up, &s1a, 5));
    REQUIRE(mkg(&B, "seedB", pb, a_ep, b_ep));
    REQUIRE(mkg(&S2, "s2", 0, b_ep, NULL));
    CHECK_INT(aemp_db_set(S1.node, "cfg", "k1", json_string("v1")), 0);
    watch_t w1 = {0}, w2 = {0};
    aemp_db_mon_t *m1 = aemp_db_mon(S1.node, "cfg", on_change, &w1);
    aemp_db_mon_t *m2 = aemp_db_mon(S2.node, "cfg", on_change, &w2);
    CHECK(watch_has(&w2, "k1", "v1", 5));
    /* s1 reaches seedB too (its seed retry) */
    two_t s1ab = {S1.node, "seedA", "seedB"};
    CHECK(run_until(both_up, &s1ab, 6));

    /* seedA dies: its own entries go from seedB's view, s1 moves to
     * seedB (registers again, its watch resumes) and nothing it owns is
     * lost */
    aemp_node_destroy(A.node);
    CHECK(family_has(B.node, "'l", "seedA", NULL, 5));
    CHECK(family_has(B.node, "'g", "seedA", NULL, 2));
    CHECK(family_has(B.node, "cfg", "k1", "v1", 5));
    CHECK(family_has(S2.node, "cfg", "k1", "v1", 2));
    CHECK_INT(aemp_db_set(S1.node, "cfg", "k1", json_string("v2")), 0);
    CHECK(watch_has(&w2, "k1", "v2", 5));
    CHECK_INT(aemp_db_set(S2.node, "cfg", "k2", json_string("from s2")), 0);
    CHECK(watch_has(&w1, "k2", "from s2", 5)); /* s1's watch, now at seedB */
    CHECK(family_has(S1.node, "cfg", "k1", "v2", 2));

    /* seedA comes back on its address: global again, meshed with seedB,
     * and its view holds everything again (s3 asks it) */
    REQUIRE(mkg(&A, "seedA", pa, a_ep, b_ep));
    CHECK(aemp_node_is_global(A.node));
    REQUIRE(mkg(&S3, "s3", 0, a_ep, NULL));
    CHECK(family_has(S3.node, "cfg", "k1", "v2", 5));
    CHECK(family_has(S3.node, "cfg", "k2", "from s2", 2));
    CHECK(family_has(S3.node, "'l", "s1", "", 2));
    CHECK(family_has(B.node, "'g", "seedA", "", 5));
    CHECK(family_has(B.node, "'l", "s3", "", 5));
    /* s3 finds s2 by node id through seedA */
    got_t g2 = {0};
    aemp_port_t *p2 = aemp_port_new(S2.node, on_msg, &g2);
    CHECK_INT(aemp_sendf(S3.node, aemp_port_id(p2), "[s]", "via the restarted seed"), 0);
    CHECK(run_until(got_one, &g2, 5));

    /* s2 goes: its entries leave both views */
    aemp_db_mon_cancel(m2);
    aemp_node_destroy(S2.node);
    CHECK(watch_has(&w1, "k2", NULL, 5));
    CHECK(family_has(A.node, "cfg", "k2", NULL, 5));
    CHECK(family_has(A.node, "'l", "s2", NULL, 2));
    CHECK(family_has(B.node, "cfg", "k1", "v2", 2));
    aemp_db_mon_cancel(m1);
    json_decref(w1.hash);
    json_decref(w2.hash);
    aemp_node_destroy(S3.node);
    aemp_node_destroy(S1.node);
    aemp_node_destroy(B.node);
    aemp_node_destroy(A.node);
}

/* ------------------------------------------------------------------ */
/* a seed restarted under its nodes                                    */

#define RESTART_NODES 60

/* A forked protocol-1 seed "seedR" listening on ep until killed. It
 * keeps none of the parent's descriptors (the nodes' sockets). */
static pid_t seed_child(const char *ep)
{
    pid_t pid = fork();
    if (pid) return pid;
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++) close(fd);
    struct ev_loop *loop = ev_loop_new(0);
    const char *binds[] = {ep}, *seeds[] = {ep};
    aemp_node_config_t c = {0};
    c.protocol = 1;
    c.nodeid = "seedR";
    c.binds = binds;
    c.nbinds = 1;
    c.seeds = seeds;
    c.nseeds = 1;
    c.secret = secret;
    c.secret_len = strlen(secret);
    aemp_node_t *n = loop ? aemp_node_new(loop, &c, NULL) : NULL;
    /* the old seed's port may need a moment to come free */
    for (int i = 0; n && aemp_node_start(n) && i < 100; i++) usleep(20000);
    if (!n || !aemp_node_is_global(n)) _exit(2);
    ev_run(loop, 0);
    _exit(0);
}

/* Asks node (through its master) for family until it holds want keys. */
static int family_size(aemp_node_t *n, const char *family, size_t want, double seconds)
{
    for (ev_tstamp end = ev_time() + seconds; ev_time() < end;) {
        dbwait_t w = {NULL, 0};
        if (aemp_db_family(n, family, on_reply, &w)) return 0;
        for (int i = 0; i < 100 && !w.answers; i++) run_for(0.01);
        size_t have = json_object_size(w.result);
        json_decref(w.result);
        if (have == want) return 1;
        run_for(0.05);
    }
    return 0;
}

typedef struct all_up {
    gn_t *nodes;
    int n;
} all_up_t;

static int all_up(void *ud)
{
    all_up_t *a = ud;
    for (int i = 0; i < a->n; i++)
        if (!aemp_node_is_up(a->nodes[i].node, "seedR")) return 0;
    return 1;
}

TEST(global_seed_restarted_under_its_nodes_gets_them_and_the_database_back)
{
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", free_port_fixed());
    pid_t seed = seed_child(ep);
    REQUIRE(seed > 0);
    static gn_t nodes[RESTART_NODES];
    gn_t W;
    for (int i = 0; i < RESTART_NODES; i++) {
        char id[32];
        snprintf(id, sizeof id, "n%d", i);
        REQUIRE(mkg(&nodes[i], id, 0, ep, NULL));
        CHECK_INT(aemp_db_set(nodes[i].node, "restart", id, json_string(id)), 0);
    }
    REQUIRE(mkg(&W, "watcher", 0, ep, NULL));
    watch_t w = {0};
    aemp_db_mon_t *m = aemp_db_mon(W.node, "restart", on_change, &w);
    all_up_t a = {nodes, RESTART_NODES};
    CHECK(run_until(all_up, &a, 20));
    CHECK(family_size(W.node, "restart", RESTART_NODES, 20));

    /* the seed dies without a word and comes back on its port: every
     * node finds it again (2.02's back-off) and registers again */
    kill(seed, SIGKILL);
    waitpid(seed, NULL, 0);
    seed = seed_child(ep);
    REQUIRE(seed > 0);
    CHECK(run_until(all_up, &a, 30));
    CHECK(family_size(W.node, "restart", RESTART_NODES, 20));
    CHECK(watch_has(&w, "n0", "n0", 5));
    CHECK(watch_has(&w, "n59", "n59", 5));
    CHECK_INT(json_object_size(w.hash), RESTART_NODES);

    aemp_db_mon_cancel(m);
    json_decref(w.hash);
    for (int i = 0; i < RESTART_NODES; i++) aemp_node_destroy(nodes[i].node);
    aemp_node_destroy(W.node);
    kill(seed, SIGKILL);
    waitpid(seed, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* per-event work                                                      */

/* Allocations the JSON library made while counting (the database's
 * values, messages and their copies are all its). */
static unsigned long json_allocs;
static void *counting_malloc(size_t n)
{
    json_allocs++;
    return malloc(n);
}

/* A database of n slaves, each with its listeners in 'l and one port in
 * "svc"; "tiny" holds one key; watcher "w" watches "svc" and "tiny". */
static aemp__gdb_t *gdb_of(int n)
{
    aemp__gdb_t *g = aemp__gdb_new("me");
    char id[32], port[48];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "node%d", i);
        snprintf(port, sizeof port, "node%d#p", i);
        feed_ok(g, id, json_pack("[s{s{s[s]}s{sn}}]", "g_slave", "'l", id, "127.0.0.1:1", "svc",
                                 port));
    }
    feed_ok(g, "w", json_pack("[s{s{sn}}]", "g_slave", "tiny", "one"));
    feed_ok(g, "w", json_pack("[ss]", "g_mon1", "svc"));
    feed_ok(g, "w", json_pack("[ss]", "g_mon1", "tiny"));
    return g;
}

enum { EV_JOIN, EV_CHANGE, EV_FIND, EV_FIND_UNKNOWN, EV_FAMILY, EV_MON, EV_DOWN, EV_KINDS };
static const char *const ev_name[EV_KINDS] = {
    "a node joins (g_slave with 'l and a port)", "a registered value changes (g_upd)",
    "g_find of a node", "g_find of an unknown node", "g_db_family of a one-key family",
    "g_mon1 and g_mon0 of a one-key family", "a node goes down"};

/* The JSON allocations and the messages out of `rounds` events of kind
 * k in g (the events touch nodes 0..rounds-1 of it), per event. */
static double per_event(aemp__gdb_t *g, int k, int rounds, double *msgs)
{
    json_t *out = json_array();
    char id[32], port[48];
    unsigned long a0 = json_allocs;
    size_t sent = 0;
    json_set_alloc_funcs(counting_malloc, free);
    for (int i = 0; i < rounds; i++) {
        json_t *req = NULL;
        const char *src = id;
        snprintf(id, sizeof id, "node%d", i);
        snprintf(port, sizeof port, "node%d#p", i);
        if (k == EV_JOIN) {
            snprintf(id, sizeof id, "new%d", i);
            snprintf(port, sizeof port, "new%d#p", i);
            req = json_pack("[s{s{s[s]}s{sn}}]", "g_slave", "'l", id, "127.0.0.1:2", "svc", port);
        } else if (k == EV_CHANGE) {
            req = json_pack("[ss{si}]", "g_upd", "svc", port, i + 1);
        } else if (k == EV_FIND) {
            req = json_pack("[ss]", "g_find", id), src = "w";
        } else if (k == EV_FIND_UNKNOWN) {
            req = json_pack("[ss]", "g_find", "nobody"), src = "w";
        } else if (k == EV_FAMILY) {
            req = json_pack("[ssi]", "g_db_family", "tiny", i), src = "w";
        } else if (k == EV_MON) {
            req = json_pack("[ss]", "g_mon1", "tiny"), src = "x";
        }
        json_array_clear(out);
        if (k == EV_DOWN) {
            CHECK_INT(aemp__gdb_node_down(g, id, out), 0);
        } else {
            CHECK_INT(aemp__gdb_feed(g, src, req, out, NULL, 0), 0);
            if (k == EV_MON) {
                sent += json_array_size(out);
                json_array_clear(out);
                json_decref(req);
                req = json_pack("[ss]", "g_mon0", "tiny");
                CHECK_INT(aemp__gdb_feed(g, src, req, out, NULL, 0), 0);
            }
        }
        sent += json_array_size(out);
        json_decref(req);
    }
    json_set_alloc_funcs(malloc, free);
    json_decref(out);
    *msgs = (double)sent / rounds;
    return (double)(json_allocs - a0) / rounds;
}

/* What each event of a global node costs does not grow with the nodes
 * it holds (issue: a seed for ten thousand nodes): the same JSON
 * allocations per event with 16 slaves as with 8000 (a copy of a
 * family, or a walk of the nodes that makes values, would make
 * thousands), and the same messages out - one per watcher of what
 * changed, one answer per request. Counted, not timed. */
TEST(gdb_per_event_work_does_not_grow_with_the_nodes)
{
    enum { SMALL = 16, LARGE = 8000, ROUNDS = 16 };
    for (int k = 0; k < EV_KINDS; k++) {
        aemp__gdb_t *small = gdb_of(SMALL), *large = gdb_of(LARGE);
        double ms, ml;
        double as = per_event(small, k, ROUNDS, &ms), al = per_event(large, k, ROUNDS, &ml);
        printf("    %-44s %5.1f allocations, %.1f messages with %d nodes; %5.1f, %.1f with %d\n",
               ev_name[k], as, ms, SMALL, al, ml, LARGE);
        CHECK(as > 0);
        /* (a table of the JSON library grows now and then: one
         * allocation, amortised) */
        CHECK(al <= as + 1.0);
        CHECK(ml == ms);
        CHECK_INT(aemp__gdb_check(large), 0);
        aemp__gdb_free(small);
        aemp__gdb_free(large);
    }
}
