/*
 * test_p1_seed.c - protocol-1 C nodes against the scripted 2.02 seed
 * (harness_seed.c), held to the recorded sessions of vectors/p1: the
 * first messages a node sends its seed (T01, T03, T07), two C nodes
 * finding each other through the seed (T03), the database calls' wire
 * shapes and the watch callbacks (T07), monitors and kil0/kil1 (T04), and
 * a master that goes away.
 */
#include "test.h"
#include "harness_node.h"
#include "harness_seed.h"

#include <ev.h>
#include <stdlib.h>

#define T(n) "vectors/p1/transcripts/" n

/* ------------------------------------------------------------------ */
/* helpers                                                             */

typedef hrec_t rec_t;

static int rec_port(aemp_port_t *p, json_t *msg, void *ud)
{
    rec_t *r = ud;
    r->calls++;
    json_array_append(r->log, msg);
    return AEMP_KEEP;
}

/* db_mon: recorded as 2.02's observations write it */
static void rec_db(aemp_node_t *n, const char *family, json_t *hash, json_t *added,
                   json_t *changed, json_t *deleted, void *ud)
{
    rec_t *r = ud;
    r->calls++;
    /* hash is borrowed for the call: a copy */
    json_array_append_new(r->log, json_pack("{sOsOsOso}", "added", added, "changed", changed,
                                            "deleted", deleted, "family", json_deep_copy(hash)));
}

static void rec_reply(aemp_node_t *n, const char *family, json_t *result, void *ud)
{
    rec_t *r = ud;
    r->calls++;
    json_array_append(r->log, result);
}

typedef struct {
    rec_t *r;
    int n;
} recn_t;

static int rec_n(void *ud)
{
    recn_t *w = ud;
    return w->r->calls >= w->n;
}

static int wait_calls(rec_t *r, int n)
{
    recn_t w = {r, n};
    return run_until(rec_n, &w, 5);
}

static rec_t rec_new(void)
{
    rec_t r = {0, json_array()};
    return r;
}

/* s with every `from` replaced by `to` (malloc'd). */
static char *subst(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), cnt = 0;
    for (const char *p = s; (p = strstr(p, from)); p += fl) cnt++;
    char *r = malloc(strlen(s) + cnt * (tl > fl ? tl - fl : 0) + 1), *o = r;
    for (const char *p = s, *q; ; p = q + fl) {
        q = strstr(p, from);
        size_t k = q ? (size_t)(q - p) : strlen(p);
        memcpy(o, p, k);
        o += k;
        if (!q) break;
        memcpy(o, to, tl);
        o += tl;
    }
    *o = 0;
    return r;
}

/* The messages of connection conn, direction dir, of a transcript. */
static json_t *tmsgs(json_t *tr, const char *conn, const char *dir)
{
    return json_object_get(json_object_get(json_object_get(tr, "messages"), conn), dir);
}

/* The listener a transcript's node had (its first bind). */
static const char *tbind(json_t *tr, const char *label)
{
    json_t *nodes = json_object_get(json_object_get(tr, "setup"), "nodes");
    return json_string_value(json_array_get(json_object_get(json_object_get(nodes, label), "binds"), 0));
}

static const char *listener(aemp_node_t *n)
{
    size_t cnt = 0;
    const char *const *ls = aemp_node_listeners(n, &cnt);
    return cnt ? ls[0] : "";
}

/* Decodes a recorded text; NULL when it is not JSON. */
static json_t *dec(json_t *textv)
{
    const char *t = json_string_value(textv);
    return t ? aemp_json_decode(t, strlen(t), 0, NULL, 0) : NULL;
}

/* ------------------------------------------------------------------ */
/* start-up                                                            */

/* The start-up block of a recorded slave's messages to its seed (up to
 * its first message that is neither g_slave nor g_find), our listener in
 * place of the recorded one, without what 2.02 repeats for nothing: the
 * bare g_slave after the first (it sends one for the seed's address and
 * one for its node id, the same link) and g_find of the seed's own id
 * (asked while the link to it is already up). */
static json_t *startup_block(json_t *c2s, const char *rec_listener, const char *ours,
                             const char *seed_id)
{
    json_t *r = json_array();
    char find_seed[256];
    snprintf(find_seed, sizeof find_seed, "[\"\",\"g_find\",\"%s\"]", seed_id);
    int bare = 0;
    for (size_t i = 0; i < json_array_size(c2s); i++) {
        const char *t = json_string_value(json_array_get(c2s, i));
        if (strncmp(t, "[\"\",\"g_slave\"", 13) && strncmp(t, "[\"\",\"g_find\"", 12)) break;
        if (!strcmp(t, find_seed)) continue;
        if (!strcmp(t, "[\"\",\"g_slave\"]") && bare++) continue;
        char *s = subst(t, rec_listener, ours);
        json_array_append_new(r, json_string(s));
        free(s);
    }
    return r;
}

/* Node `id` starts with the seed; its messages equal the start-up block
 * of connection conn of transcript file (node label `label`), as JSON
 * values (2.02 writes object keys in Perl's random hash order). */
static void check_startup(const char *file, const char *conn, const char *label, const char *id,
                          const char *fam, const char *key, const char *val)
{
    json_t *tr = t_load_vectors(file);
    hseed_t *s = hseed_new("seed1", secret);
    REQUIRE(s);
    tnode_t t;
    const char *seeds[] = {hseed_addr(s)};
    REQUIRE(mknode1(&t, id, seeds, 1, secret, 0));
    /* set before the master is known: it travels in g_slave, no g_upd */
    if (fam) CHECK_INT(aemp_db_set(t.node, fam, key, json_string(val)), 0);
    CHECK(hseed_wait_registered(s, id, 5));
    run_for(0.2); /* anything else it would send now */
    json_t *want = startup_block(tmsgs(tr, conn, "c2s"), tbind(tr, label), listener(t.node), "seed1");
    json_t *got = hseed_got(s, id);
    CHECK_INT(json_array_size(got), json_array_size(want));
    for (size_t i = 0; i < json_array_size(want); i++) {
        json_t *g = dec(json_array_get(got, i)), *w = dec(json_array_get(want, i));
        if (!g || !w || !json_equal(g, w))
            t_fail(__FILE__, __LINE__, "%s message %zu: sent %s, 2.02 sent %s", file, i,
                   json_string_value(json_array_get(got, i)),
                   json_string_value(json_array_get(want, i)));
        json_decref(g);
        json_decref(w);
    }
    /* the first is the bare g_slave, byte for byte */
    CHECK_STR(json_string_value(json_array_get(got, 0)), "[\"\",\"g_slave\"]");
    CHECK(aemp_node_is_up(t.node, "seed1"));
    /* the seed's g_global was taken quietly */
    CHECK_STR(t.warnings, "");
    json_decref(want);
    aemp_node_destroy(t.node);
    hseed_free(s);
    json_decref(tr);
}

TEST(p1seed_startup_messages_as_t01)
{
    check_startup(T("01-seed-client-json.json"), "2", "client", "client1", NULL, NULL, NULL);
}

TEST(p1seed_startup_messages_as_t07)
{
    check_startup(T("07-db-ops.json"), "2", "client", "client1", NULL, NULL, NULL);
}

TEST(p1seed_startup_with_db_entry_as_t03)
{
    /* nodeA had registered its service before its seed was up */
    check_startup(T("03-find-via-seed.json"), "2", "nodeA", "nodeA", "svcfam", "nodeA#5IR7jFe3nb",
                  "svc on nodeA");
}

/* ------------------------------------------------------------------ */
/* two C nodes through the seed (T03)                                  */

TEST(p1seed_two_nodes_find_each_other_t03)
{
    json_t *tr = t_load_vectors(T("03-find-via-seed.json"));
    json_t *b2s = tmsgs(tr, "3", "c2s");
    hseed_t *s = hseed_new("seed1", secret);
    REQUIRE(s);
    tnode_t a, b;
    const char *seeds[] = {hseed_addr(s)};
    REQUIRE(mknode1(&a, "nodeA", seeds, 1, secret, 0));
    REQUIRE(mknode1(&b, "nodeB", seeds, 1, secret, 0));
    CHECK(hseed_wait_registered(s, "nodeA", 5));
    CHECK(hseed_wait_registered(s, "nodeB", 5));

    /* nodeA registers a service port; nodeB watches the family */
    rec_t pa_got = rec_new(), pb_got = rec_new(), dbw = rec_new();
    aemp_port_t *pa = aemp_port_new(a.node, rec_port, &pa_got);
    aemp_port_t *pb = aemp_port_new(b.node, rec_port, &pb_got);
    char pa_id[128];
    snprintf(pa_id, sizeof pa_id, "%s", aemp_port_id(pa));
    CHECK_INT(aemp_db_reg(a.node, "svcfam", pa_id, json_string("svc on nodeA")), 0);
    char want[512];
    snprintf(want, sizeof want, "[\"\",\"g_upd\",\"svcfam\",{\"%s\":\"svc on nodeA\"}]", pa_id);
    CHECK(hseed_wait_got(s, "nodeA", want, 1, 5));
    aemp_db_mon_t *dm = aemp_db_mon(b.node, "svcfam", rec_db, &dbw);
    CHECK(dm != NULL);
    CHECK(hseed_wait_got(s, "nodeB", "[\"\",\"g_mon1\",\"svcfam\"]", 1, 5));
    CHECK(wait_calls(&dbw, 1));
    snprintf(want, sizeof want,
             "{\"added\":[\"%s\"],\"changed\":[],\"deleted\":[],\"family\":{\"%s\":\"svc on nodeA\"}}",
             pa_id, pa_id);
    CHECK_STR(jtext(json_array_get(dbw.log, 0)), want);

    /* nodeB has no address for nodeA: it asks its master, exactly as the
     * recorded nodeB did, then connects to nodeA itself */
    CHECK_INT(aemp_sendf(b.node, pa_id, "[sis]", "request", 1, aemp_port_id(pb)), 0);
    CHECK(hseed_wait_got(s, "nodeB", "[\"\",\"g_find\",\"nodeA\"]", 1, 5));
    int in_t03 = 0;
    for (size_t i = 0; i < json_array_size(b2s); i++)
        in_t03 |= !strcmp(json_string_value(json_array_get(b2s, i)), "[\"\",\"g_find\",\"nodeA\"]");
    CHECK(in_t03);
    CHECK(run_until(hrec_has, &pa_got, 5));
    snprintf(want, sizeof want, "[\"request\",1,\"%s\"]", aemp_port_id(pb));
    CHECK_STR(jtext(json_array_get(pa_got.log, 0)), want);
    CHECK(aemp_node_is_up(b.node, "nodeA"));
    CHECK(aemp_node_is_up(a.node, "nodeB"));
    /* and back over the same link */
    CHECK_INT(aemp_sendf(a.node, aemp_port_id(pb), "[ss]", "svc_reply", "request"), 0);
    CHECK(run_until(hrec_has, &pb_got, 5));
    CHECK_STR(jtext(json_array_get(pb_got.log, 0)), "[\"svc_reply\",\"request\"]");
    CHECK_INT(hseed_count(s, "nodeB", "[\"\",\"g_find\",\"nodeA\"]"), 1);

    /* monitors across the direct link: nodeB kills nodeA's port (kil1),
     * its monitor hears the reason (kil0); the db_reg entry goes with
     * the port (T03's g_upd shape) and nodeB's watch sees it deleted */
    rec_t m = rec_new();
    CHECK(aemp_mon(b.node, pa_id, hrec_mon, &m) != NULL);
    run_for(0.1);
    CHECK_INT(aemp_port_kill_id(b.node, pa_id, json_pack("[ssi]", "killed_by_client", "some detail", 42)),
              0);
    CHECK(wait_calls(&m, 1));
    CHECK_STR(jtext(json_array_get(m.log, 0)), "[\"killed_by_client\",\"some detail\",42]");
    snprintf(want, sizeof want, "[\"\",\"g_upd\",\"svcfam\",null,[\"%s\"]]", pa_id);
    CHECK(hseed_wait_got(s, "nodeA", want, 1, 5));
    /* the recorded nodeA's guard sent the same shape */
    char *rec_del = subst(json_string_value(json_array_get(tmsgs(tr, "2", "c2s"), 4)),
                          "nodeA#5IR7jFe3nb", pa_id);
    CHECK_STR(want, rec_del);
    free(rec_del);
    CHECK(wait_calls(&dbw, 2));
    snprintf(want, sizeof want, "{\"added\":[],\"changed\":[],\"deleted\":[\"%s\"],\"family\":{}}", pa_id);
    CHECK_STR(jtext(json_array_get(dbw.log, 1)), want);

    /* nodeA goes away: nodeB's monitors of its ports fire with
     * transport_error (T03: both the port's and the node port's). */
    aemp_port_t *pa2 = aemp_port_new(a.node, rec_port, &pa_got);
    rec_t m2 = rec_new(), m3 = rec_new();
    CHECK(aemp_mon(b.node, aemp_port_id(pa2), hrec_mon, &m2) != NULL);
    CHECK(aemp_mon(b.node, "nodeA", hrec_mon, &m3) != NULL);
    run_for(0.1);
    aemp_node_destroy(a.node);
    CHECK(wait_calls(&m2, 1));
    CHECK(wait_calls(&m3, 1));
    json_t *r2 = json_array_get(m2.log, 0);
    CHECK_STR(json_string_value(json_array_get(r2, 0)), "transport_error");
    CHECK_STR(json_string_value(json_array_get(r2, 1)), "nodeA");
    /* a link closed after the handshake: 2.02's text (T03) */
    CHECK_STR(json_string_value(json_array_get(r2, 2)), "Unexpected end-of-file");
    CHECK(json_equal(json_array_get(m3.log, 0), r2));

    aemp_db_mon_cancel(dm);
    aemp_node_destroy(b.node);
    hseed_free(s);
    json_decref(pa_got.log);
    json_decref(pb_got.log);
    json_decref(dbw.log);
    json_decref(m.log);
    json_decref(m2.log);
    json_decref(m3.log);
    json_decref(tr);
}

TEST(p1seed_unknown_node_no_known_address)
{
    hseed_t *s = hseed_new("seed1", secret);
    REQUIRE(s);
    /* a node the network knows without listeners: 'l is [] (T10 rawnode) */
    hseed_db_set(s, "'l", "deaf", json_array());
    tnode_t t;
    const char *seeds[] = {hseed_addr(s)};
    REQUIRE(mknode1(&t, "client1", seeds, 1, secret, 0));
    CHECK(hseed_wait_registered(s, "client1", 5));
    rec_t m = rec_new(), m2 = rec_new();
    CHECK(aemp_mon(t.node, "no-such-node#p", hrec_mon, &m) != NULL);
    CHECK_INT(aemp_sendf(t.node, "no-such-node#q", "[s]", "lost"), 0);
    CHECK(aemp_mon(t.node, "deaf#p", hrec_mon, &m2) != NULL);
    CHECK(wait_calls(&m, 1));
    CHECK(wait_calls(&m2, 1));
    /* one question per node, as T10's g_find; the answer null (or []) is
     * 2.02's "no known address" (PROTOCOL-1.md 6) */
    CHECK_INT(hseed_count(s, "client1", "[\"\",\"g_find\",\"no-such-node\"]"), 1);
    CHECK_INT(hseed_count(s, "client1", "[\"\",\"g_find\",\"deaf\"]"), 1);
    CHECK_STR(jtext(json_array_get(m.log, 0)), "[\"transport_error\",\"no-such-node\",\"no known address\"]");
    CHECK_STR(jtext(json_array_get(m2.log, 0)), "[\"transport_error\",\"deaf\",\"no known address\"]");
    CHECK_INT(m.calls, 1);
    /* asking again asks again */
    rec_t m3 = rec_new();
    CHECK(aemp_mon(t.node, "no-such-node#p", hrec_mon, &m3) != NULL);
    CHECK(wait_calls(&m3, 1));
    CHECK_INT(hseed_count(s, "client1", "[\"\",\"g_find\",\"no-such-node\"]"), 2);
    CHECK(aemp_node_is_up(t.node, "seed1"));
    aemp_node_destroy(t.node);
    hseed_free(s);
    json_decref(m.log);
    json_decref(m2.log);
    json_decref(m3.log);
}

/* ------------------------------------------------------------------ */
/* the database (T07)                                                  */

/* Our request ids in place of 2.02's (b, c, ...): ID. */
static char *norm_id(const char *t)
{
    json_t *v = aemp_json_decode(t, strlen(t), 0, NULL, 0);
    const char *tag = json_string_value(json_array_get(v, 1));
    if (tag && !strncmp(tag, "g_db_", 5)) json_array_set_new(v, 3, json_string("ID"));
    char *r = aemp_json_encode(v, NULL);
    json_decref(v);
    return r;
}

static json_t *sorted(json_t *a)
{
    json_t *r = json_array();
    for (size_t i = 0; i < json_array_size(a); i++) {
        char *t = aemp_json_encode(json_array_get(a, i), NULL);
        json_array_append_new(r, json_string(t));
        free(t);
    }
    /* insertion sort of the texts */
    for (size_t i = 1; i < json_array_size(r); i++)
        for (size_t j = i; j > 0 && strcmp(json_string_value(json_array_get(r, j - 1)),
                                           json_string_value(json_array_get(r, j))) > 0; j--) {
            json_t *x = json_incref(json_array_get(r, j));
            json_array_set(r, j, json_array_get(r, j - 1));
            json_array_set_new(r, j - 1, x);
        }
    return r;
}

TEST(p1seed_db_wire_and_callbacks_as_t07)
{
    json_t *tr = t_load_vectors(T("07-db-ops.json"));
    hseed_t *s = hseed_new("seed1", secret);
    REQUIRE(s);
    hseed_db_set(s, "dbfam", "shared", json_string("seed value"));
    tnode_t t;
    const char *seeds[] = {hseed_addr(s)};
    REQUIRE(mknode1(&t, "client1", seeds, 1, secret, 0));
    aemp_node_t *n = t.node;
    CHECK(hseed_wait_registered(s, "client1", 5));
    size_t first = json_array_size(hseed_got(s, "client1"));

    /* the recorded client's calls, in its order */
    rec_t w = rec_new(), fam = rec_new(), keys = rec_new(), vals = rec_new(), none = rec_new();
    aemp_db_mon_t *dm = aemp_db_mon(n, "dbfam", rec_db, &w);
    REQUIRE(dm);
    CHECK(wait_calls(&w, 1));
    CHECK_INT(aemp_db_set(n, "dbfam", "k1", json_string("v1")), 0);
    CHECK(wait_calls(&w, 2));
    CHECK_INT(aemp_db_set(n, "dbfam", "k2", json_pack("{s[iis]}", "nested", 1, 2, "three")), 0);
    CHECK(wait_calls(&w, 3));
    CHECK_INT(aemp_db_set(n, "dbfam", "shared", json_string("client value")), 0);
    CHECK(wait_calls(&w, 4));
    CHECK_INT(aemp_db_set(n, "dbfam", "k1", json_string("v1")), 0); /* no change: nothing sent */
    CHECK_INT(aemp_db_family(n, "dbfam", rec_reply, &fam), 0);
    CHECK_INT(aemp_db_keys(n, "dbfam", rec_reply, &keys), 0);
    CHECK_INT(aemp_db_values(n, "dbfam", rec_reply, &vals), 0);
    CHECK(wait_calls(&vals, 1));
    CHECK_INT(aemp_db_set(n, "dbfam", "k1", json_string("v1 changed")), 0);
    CHECK(wait_calls(&w, 5));
    CHECK_INT(aemp_db_del(n, "dbfam", "k1"), 0);
    CHECK_INT(aemp_db_del(n, "dbfam", "notset"), AEMP_ENOENT); /* nothing sent */
    CHECK(wait_calls(&w, 6));
    CHECK_INT(aemp_db_del(n, "dbfam", "shared"), 0); /* the seed's value comes back */
    CHECK(wait_calls(&w, 7));
    CHECK_INT(aemp_db_family(n, "dbfam", rec_reply, &fam), 0);
    CHECK(wait_calls(&fam, 2));
    CHECK_INT(aemp_db_set(n, "dbfam", "guarded", NULL), 0); /* a guard: set, then gone */
    CHECK_INT(aemp_db_del(n, "dbfam", "guarded"), 0);
    CHECK(wait_calls(&w, 9));
    CHECK_INT(aemp_db_family(n, "nosuchfam", rec_reply, &none), 0);
    CHECK_INT(aemp_db_keys(n, "nosuchfam", rec_reply, &none), 0);
    CHECK(wait_calls(&none, 2));
    aemp_db_mon_cancel(dm);
    CHECK(hseed_wait_got(s, "client1", "[\"\",\"g_mon0\",\"dbfam\"]", 1, 5));

    /* the wire: 2.02's messages from its g_mon1 on, byte for byte (the
     * request ids are each side's own counter) */
    json_t *rc = tmsgs(tr, "2", "c2s"), *got = hseed_got(s, "client1");
    size_t from = 0;
    while (from < json_array_size(rc) &&
           strcmp(json_string_value(json_array_get(rc, from)), "[\"\",\"g_mon1\",\"dbfam\"]"))
        from++;
    CHECK_INT(json_array_size(got) - first, json_array_size(rc) - from);
    for (size_t i = 0; i + from < json_array_size(rc) && first + i < json_array_size(got); i++) {
        char *g = norm_id(json_string_value(json_array_get(got, first + i)));
        char *r = norm_id(json_string_value(json_array_get(rc, from + i)));
        CHECK_STR(g, r);
        free(g);
        free(r);
    }

    /* the callbacks: the recorded client's, in order */
    json_t *obs = json_object_get(json_object_get(tr, "observations"), "client");
    size_t wi = 0, fi = 0;
    for (size_t i = 0; i < json_array_size(obs); i++) {
        json_t *o = json_object_get(json_array_get(obs, i), "data");
        const char *ev = json_string_value(json_object_get(json_array_get(obs, i), "event"));
        if (!strcmp(ev, "db_mon dbfam callback")) {
            json_t *mine = json_array_get(w.log, wi++);
            if (!mine || !json_equal(mine, json_array_get(o, 0)))
                t_fail(__FILE__, __LINE__, "callback %zu: %s", wi, jtext(mine));
        } else if (!strcmp(ev, "db_family dbfam")) {
            CHECK(json_equal(json_array_get(fam.log, fi++), json_array_get(o, 0)));
        } else if (!strcmp(ev, "db_keys dbfam") || !strcmp(ev, "db_values dbfam")) {
            json_t *mine = sorted(json_array_get(ev[3] == 'k' ? keys.log : vals.log, 0));
            json_t *theirs = sorted(json_array_get(o, 0));
            CHECK(json_equal(mine, theirs)); /* Perl's hash order differs */
            json_decref(mine);
            json_decref(theirs);
        } else if (!strcmp(ev, "db_family nosuchfam")) {
            CHECK_STR(jtext(json_array_get(none.log, 0)), "{}");
        } else if (!strcmp(ev, "db_keys nosuchfam")) {
            CHECK_STR(jtext(json_array_get(none.log, 1)), "[]");
        }
    }
    CHECK_INT(wi, json_array_size(w.log));
    CHECK_INT(wi, 9);

    /* db_reg: the port's entry, deleted when it dies (T03's shapes) */
    rec_t pg = rec_new();
    aemp_port_t *p = aemp_port_new(n, rec_port, &pg);
    char pid[128], want[512];
    snprintf(pid, sizeof pid, "%s", aemp_port_id(p));
    CHECK_INT(aemp_db_reg(n, "svcfam", pid, json_string("svc")), 0);
    snprintf(want, sizeof want, "[\"\",\"g_upd\",\"svcfam\",{\"%s\":\"svc\"}]", pid);
    CHECK(hseed_wait_got(s, "client1", want, 1, 5));
    aemp_port_kill(p, NULL);
    snprintf(want, sizeof want, "[\"\",\"g_upd\",\"svcfam\",null,[\"%s\"]]", pid);
    CHECK(hseed_wait_got(s, "client1", want, 1, 5));
    CHECK_STR(t.warnings, "");

    aemp_node_destroy(n);
    hseed_free(s);
    json_decref(w.log);
    json_decref(fam.log);
    json_decref(keys.log);
    json_decref(vals.log);
    json_decref(none.log);
    json_decref(pg.log);
    json_decref(tr);
}

/* ------------------------------------------------------------------ */
/* monitors (T04)                                                      */

/* Whether node sent the seed text and T04's client sent it too. */
static void check_t04(hseed_t *s, json_t *t04, const char *text_, const char *client_port)
{
    CHECK(hseed_wait_got(s, "client1", text_, 1, 5));
    char *rec = client_port ? subst(text_, client_port, "5QbUuFj8Wb") : strdup(text_);
    int found = 0;
    for (size_t i = 0; i < json_array_size(t04); i++)
        found |= !strcmp(json_string_value(json_array_get(t04, i)), rec);
    if (!found) t_fail(__FILE__, __LINE__, "%s: not what T04's client sent", text_);
    free(rec);
}

TEST(p1seed_monitors_kil0_kil1_as_t04)
{
    json_t *tr = t_load_vectors(T("04-remote-monitor.json"));
    json_t *c2s = tmsgs(tr, "2", "c2s");
    hseed_t *s = hseed_new("seed1", secret);
    REQUIRE(s);
    /* the recorded seed's victims, under their recorded names */
    hseed_port(s, "5Obp9yokPd");
    hseed_port(s, "5Obp9yokPe");
    hseed_port(s, "5Obp9yokPh");
    tnode_t t;
    const char *seeds[] = {hseed_addr(s)};
    REQUIRE(mknode1(&t, "client1", seeds, 1, secret, 0));
    aemp_node_t *n = t.node;
    CHECK(hseed_wait_registered(s, "client1", 5));

    /* v1: mon, then a remote kill with a reason */
    rec_t v1 = rec_new(), v2 = rec_new(), nsp = rec_new(), v5 = rec_new();
    CHECK(aemp_mon(n, "seed1#5Obp9yokPd", hrec_mon, &v1) != NULL);
    check_t04(s, c2s, "[\"\",\"mon1\",\"5Obp9yokPd\"]", NULL);
    CHECK_INT(aemp_port_kill_id(n, "seed1#5Obp9yokPd",
                                json_pack("[ssi]", "killed_by_client", "some detail", 42)),
              0);
    check_t04(s, c2s, "[\"\",\"kil1\",\"5Obp9yokPd\",\"killed_by_client\",\"some detail\",42]", NULL);
    CHECK(wait_calls(&v1, 1));
    CHECK_STR(jtext(json_array_get(v1.log, 0)), "[\"killed_by_client\",\"some detail\",42]");
    /* v2: monitored and unmonitored */
    aemp_mon_t *m2 = aemp_mon(n, "seed1#5Obp9yokPe", hrec_mon, &v2);
    CHECK(m2 != NULL);
    aemp_mon_cancel(m2);
    check_t04(s, c2s, "[\"\",\"mon1\",\"5Obp9yokPe\"]", NULL);
    check_t04(s, c2s, "[\"\",\"mon0\",\"5Obp9yokPe\"]", NULL);
    /* a port the seed does not have */
    CHECK(aemp_mon(n, "seed1#no.such.port", hrec_mon, &nsp) != NULL);
    check_t04(s, c2s, "[\"\",\"mon1\",\"no.such.port\"]", NULL);
    CHECK(wait_calls(&nsp, 1));
    CHECK_STR(jtext(json_array_get(nsp.log, 0)),
              "[\"no_such_port\",\"cannot monitor nonexistent port\",\"seed1#no.such.port\"]");
    /* the seed watches a port of ours, which we kill with a reason */
    rec_t cg = rec_new();
    aemp_port_t *cp = aemp_port_new(n, rec_port, &cg);
    char cname[128], msg[256];
    snprintf(cname, sizeof cname, "%s", strchr(aemp_port_id(cp), '#') + 1);
    snprintf(msg, sizeof msg, "[\"\",\"mon1\",\"%s\"]", cname);
    CHECK_INT(hseed_send(s, "client1", msg), 0);
    run_for(0.1);
    aemp_port_kill(cp, json_pack("[ss]", "client_port_reason", "bye"));
    snprintf(msg, sizeof msg, "[\"\",\"kil0\",\"%s\",\"client_port_reason\",\"bye\"]", cname);
    check_t04(s, c2s, msg, cname);
    /* v5: killed remotely without a reason */
    CHECK(aemp_mon(n, "seed1#5Obp9yokPh", hrec_mon, &v5) != NULL);
    check_t04(s, c2s, "[\"\",\"mon1\",\"5Obp9yokPh\"]", NULL);
    CHECK_INT(aemp_port_kill_id(n, "seed1#5Obp9yokPh", NULL), 0);
    check_t04(s, c2s, "[\"\",\"kil1\",\"5Obp9yokPh\"]", NULL);
    CHECK(wait_calls(&v5, 1));
    CHECK_STR(jtext(json_array_get(v5.log, 0)), "[]");
    CHECK_INT(v2.calls, 0);
    CHECK_STR(t.warnings, "");

    aemp_node_destroy(n);
    hseed_free(s);
    json_decref(v1.log);
    json_decref(v2.log);
    json_decref(nsp.log);
    json_decref(v5.log);
    json_decref(cg.log);
    json_decref(tr);
}

/* ------------------------------------------------------------------ */
/* master failover                                                     */

static int both_up(void *ud)
{
    hseed_t **s = ud;
    return hseed_is_up(s[0], "client1") && hseed_is_up(s[1], "client1") &&
           hseed_count_db(s[0], "client1") + hseed_count_db(s[1], "client1") > 0;
}

TEST(p1seed_master_failover_reregisters)
{
    hseed_t *s[2] = {hseed_new("seedA", secret), hseed_new("seedB", secret)};
    REQUIRE(s[0] && s[1]);
    tnode_t t;
    const char *seeds[] = {hseed_addr(s[0]), hseed_addr(s[1])};
    REQUIRE(mknode1(&t, "client1", seeds, 2, secret, 0));
    aemp_node_t *n = t.node;
    CHECK_INT(aemp_db_set(n, "fam", "k", json_string("v")), 0);
    rec_t w = rec_new(), r = rec_new();
    aemp_db_mon_t *dm = aemp_db_mon(n, "watched", rec_db, &w);
    CHECK(run_until(both_up, s, 5));
    run_for(0.2);
    /* one master: it alone has our database and our watch; the other
     * seed heard the bare g_slave only */
    int mi = hseed_count_db(s[0], "client1") ? 0 : 1;
    hseed_t *master = s[mi], *other = s[1 - mi];
    CHECK_INT(hseed_count_db(master, "client1"), 1);
    CHECK_INT(hseed_count_db(other, "client1"), 0);
    CHECK_INT(hseed_count(other, "client1", "[\"\",\"g_slave\"]"), 1);
    CHECK_INT(hseed_count(master, "client1", "[\"\",\"g_mon1\",\"watched\"]"), 1);
    CHECK_INT(hseed_count(other, "client1", "[\"\",\"g_mon1\",\"watched\"]"), 0);
    CHECK_INT(json_array_size(hseed_got(other, "client1")), 1);

    /* the master dies: the other seed becomes master and hears it all */
    hseed_free(master);
    s[mi] = NULL;
    CHECK(hseed_wait_registered(other, "client1", 5));
    CHECK(hseed_wait_got(other, "client1", "[\"\",\"g_mon1\",\"watched\"]", 1, 5));
    json_t *got = hseed_got(other, "client1");
    json_t *db = dec(json_array_get(got, 1));
    char want[256];
    snprintf(want, sizeof want, "{\"'l\":{\"client1\":[\"%s\"]},\"fam\":{\"k\":\"v\"}}", listener(n));
    json_t *wv = aemp_json_decode(want, strlen(want), 0, NULL, 0);
    CHECK(json_equal(json_array_get(db, 2), wv));
    json_decref(db);
    json_decref(wv);
    /* and what comes later goes there */
    CHECK_INT(aemp_db_keys(n, "fam", rec_reply, &r), 0);
    CHECK(wait_calls(&r, 1));
    CHECK_STR(jtext(json_array_get(r.log, 0)), "[\"k\"]");
    CHECK_INT(aemp_db_set(n, "fam", "k2", json_true()), 0);
    CHECK(hseed_wait_got(other, "client1", "[\"\",\"g_upd\",\"fam\",{\"k2\":true}]", 1, 5));
    CHECK(aemp_node_is_up(n, mi ? "seedA" : "seedB"));

    aemp_db_mon_cancel(dm);
    aemp_node_destroy(n);
    hseed_free(s[0]);
    hseed_free(s[1]);
    json_decref(w.log);
    json_decref(r.log);
}
