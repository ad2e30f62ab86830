/*
 * test_framing_cbor.c - the cbor framing (framing_cbor.c) as protocol 1
 * links use it: its ops fed a stream cut anywhere, the data phase of
 * vectors/p1/transcripts/02 (two 2.02 nodes talking CBOR) decoded and
 * re-encoded byte for byte, the limits and the drop/fail split, and "one
 * message, one meaning": the same values through a CBOR link and a JSON
 * link reach a port as equal json_t values, between our nodes and from a
 * scripted peer writing CBOR::XS's bytes (vectors/cbor.json).
 */
#include "test.h"
#include "aemp_int.h"
#include "framing.h"
#include "harness_node.h"
#include "harness_raw.h"

#include <ev.h>
#include <stdarg.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ */
/* the ops, sans I/O */

/* What the link does with a stream: each message found and decoded in
 * turn, fed `step` bytes more per round (0: all at once). Appends each
 * result to out as [id, ELEMENTS...] (a value that is no message as
 * {"value": V}, a dropped one as {"drop": WARNING}); returns the error
 * text of a failure (static), or NULL when all of it was taken. */
static const char *run_stream(const unsigned char *s, size_t n, size_t step, size_t max_message,
                              json_t *out)
{
    static char why[AEMP_JSON_ERRMAX + 64];
    aemp__frame_in_t in = {0};
    if (aemp__frame_in_init(&in, &aemp__framing_cbor, max_message)) return "in_init failed";
    aemp__buf_t buf = {0};
    size_t fed = 0;
    const char *ret = NULL;
    while (!ret) {
        size_t more = step ? (n - fed < step ? n - fed : step) : n - fed;
        aemp__buf_append(&buf, s + fed, more);
        fed += more;
        for (;;) {
            size_t start = 0, end = 0;
            const char *e = "";
            char *head = aemp__buf_head(&buf);
            int r = in.ops->next(&in, head, aemp__buf_size(&buf), &start, &end, &e);
            if (r == AEMP__FRAME_ERROR) {
                snprintf(why, sizeof why, "frame: %s", e);
                ret = why;
                break;
            }
            if (r == AEMP__FRAME_MORE) {
                aemp__buf_consume(&buf, end);
                break;
            }
            aemp__msg_t m = {0};
            char err[AEMP_JSON_ERRMAX + 64] = "";
            int d = in.ops->decode(&in, head + start, end - start, &m, err, sizeof err);
            if (d == AEMP__MSG_OK) {
                json_t *msg = json_copy(m.elems);
                json_array_insert_new(msg, 0, json_stringn_nocheck(m.id, m.idlen));
                json_array_append_new(out, msg);
            } else if (d == AEMP__MSG_VALUE) {
                json_array_append_new(out, json_pack("{sO}", "value", m.value));
            } else if (d == AEMP__MSG_DROP) {
                json_array_append_new(out, json_pack("{ss}", "drop", err));
            } else {
                snprintf(why, sizeof why, "decode: %s", err);
                ret = why;
            }
            aemp__buf_consume(&buf, end);
            aemp__frame_msg_done(&in, &m);
            if (ret) break;
        }
        if (fed == n) break;
    }
    if (!ret && aemp__buf_size(&buf)) ret = "bytes left over";
    aemp__buf_free(&buf);
    aemp__frame_in_free(&in);
    return ret;
}

/* 1 when a and b are one value as a C program sees it: equal, or equal
 * once carried over JSON (our encoder, then our decoder): raw numbers,
 * -0.0 and reals to JSON's 15 digits, where CBOR carries a float exactly
 * (and JSON::XS's reading of 15 digits may be one unit off, see aemp.h). */
static int same_value(const json_t *a, const json_t *b)
{
    if (json_equal(a, b)) return 1;
    size_t n, m;
    char *x = aemp_json_encode(a, &n), *y = aemp_json_encode(b, &m);
    json_t *ja = x ? aemp_json_decode(x, n, 0, NULL, 0) : NULL;
    json_t *jb = y ? aemp_json_decode(y, m, 0, NULL, 0) : NULL;
    int same = ja && jb && json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    free(x);
    free(y);
    return same;
}

/* The value a message result of run_stream stands for. */
static json_t *as_value(json_t *r)
{
    json_t *v = json_object_get(r, "value");
    return v ? v : r;
}

/* What a 2.x node sends for each encode vector's value as a JSON peer
 * gave it (cbor_of_json), as one stream with a message JSON cannot carry
 * in the middle: whatever the cuts, each decodes to the value JSON
 * framing gives for it, the bad one is dropped with its reason, and the
 * messages after it are intact. */
TEST(cbor_framing_stream_cut_anywhere)
{
    json_t *vec = t_load_vectors("vectors/cbor.json"), *e;
    json_t *want = json_array();
    aemp__buf_t s = {0};
    size_t i, nenc = json_array_size(json_object_get(vec, "encode"));
    json_array_foreach(json_object_get(vec, "encode"), i, e) {
        size_t n;
        unsigned char *b = t_unhex(json_string_value(json_object_get(e, "cbor_of_json")), &n);
        aemp__buf_append(&s, b, n);
        free(b);
        const char *txt = json_string_value(json_object_get(e, "json"));
        json_array_append_new(want, aemp_json_decode(txt, strlen(txt), 0, NULL, 0));
        if (i == nenc / 2) {
            /* ["p#1", bignum 2^64] */
            static const char bad[] = "8263702331c249010000000000000000";
            b = t_unhex(bad, &n);
            aemp__buf_append(&s, b, n);
            free(b);
            json_array_append_new(want, json_null());
        }
    }
    static const size_t steps[] = {0, 1, 2, 3, 7, 64, 1000};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        json_t *got = json_array();
        const char *why = run_stream((unsigned char *)s.data + s.off, aemp__buf_size(&s), steps[k],
                                     AEMP_DEFAULT_MAX_MESSAGE, got);
        CHECK(why == NULL);
        CHECK_INT(json_array_size(got), json_array_size(want));
        json_t *w;
        size_t j;
        json_array_foreach(want, j, w) {
            json_t *g = json_array_get(got, j);
            if (json_is_null(w)) {
                CHECK_STR(json_string_value(json_object_get(g, "drop")),
                          "CBOR message dropped (CBOR tag 2 (bignum) at offset 5 (cannot be "
                          "carried))");
                continue;
            }
            if (!same_value(as_value(g), w)) {
                char *a = aemp_json_encode(as_value(g), NULL), *b = aemp_json_encode(w, NULL);
                t_fail(__FILE__, __LINE__, "step %zu, message %zu: got %.200s, want %.200s",
                       steps[k], j, a, b);
                free(a);
                free(b);
            }
        }
        json_decref(got);
    }
    aemp__buf_free(&s);
    json_decref(want);
    json_decref(vec);
}

/* A broken item, or one over the limits, fails the stream (the link)
 * with the framer's or decoder's precise reason; what came before it was
 * delivered. */
TEST(cbor_framing_broken_and_limits)
{
    static const struct {
        const char *hex;
        size_t max_message;
        const char *why;
    } cases[] = {
        /* ["a", 1] then the reserved additional information 28 */
        {"826161011c", 0, "frame: reserved additional information 28 at offset 0"},
        {"82616101ff", 0, "frame: unexpected break at offset 0"},
        {"82616101f0", 0, "frame: unsupported simple value 0xf0 at offset 0"},
        /* a byte string claiming 2^64-1 bytes: refused, never allocated */
        {"82616101825bffffffffffffffff", 0, "frame: CBOR item longer than 67108864 bytes"},
        /* a message over max_message */
        {"8261610182617858400000000000000000000000000000000000000000000000000000000000000000"
         "00000000000000000000000000000000000000000000000000000000000000000000",
         40, "frame: CBOR item longer than 40 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        unsigned char *b = t_unhex(cases[i].hex, &n);
        for (size_t step = 0; step < 3; step++) {
            json_t *got = json_array();
            const char *why = run_stream(b, n, step, cases[i].max_message
                                                         ? cases[i].max_message
                                                         : AEMP_DEFAULT_MAX_MESSAGE, got);
            CHECK_STR(why ? why : "(none)", cases[i].why);
            if (json_array_size(got) != 1) {
                char *g = json_dumps(got, 0);
                t_fail(__FILE__, __LINE__, "case %zu step %zu: got %.200s", i, step, g);
                free(g);
            }
            json_decref(got);
        }
        free(b);
    }
    /* nesting: 600 levels inside a message fail at 512 */
    aemp__buf_t s = {0};
    aemp__buf_append(&s, "\x82\x61\x61", 3);
    for (int i = 0; i < 600; i++) aemp__buf_append(&s, "\x81", 1);
    aemp__buf_append(&s, "\x01", 1);
    json_t *got = json_array();
    const char *why = run_stream((unsigned char *)s.data, s.len, 0, AEMP_DEFAULT_MAX_MESSAGE, got);
    CHECK(why && strstr(why, "nesting deeper than 512") != NULL);
    json_decref(got);
    aemp__buf_free(&s);
    /* an array longer than the decoder's default value count is taken as
     * JSON framing would take it (bounded by max_message instead) */
    size_t big = AEMP_CBOR_MAX_VALUES + 10;
    aemp__buf_t m = {0};
    aemp__buf_append(&m, "\x82\x61\x61\x9a", 4);
    unsigned char be[4] = {(unsigned char)(big >> 24), (unsigned char)(big >> 16),
                           (unsigned char)(big >> 8), (unsigned char)big};
    aemp__buf_append(&m, be, 4);
    for (size_t i = 0; i < big; i++) aemp__buf_append(&m, "\x07", 1);
    got = json_array();
    CHECK(run_stream((unsigned char *)m.data, m.len, 0, AEMP_DEFAULT_MAX_MESSAGE, got) == NULL);
    CHECK_INT(json_array_size(json_array_get(json_array_get(got, 0), 1)), big);
    json_decref(got);
    /* ...and the value count is then the bound: max_message 4 MiB */
    got = json_array();
    why = run_stream((unsigned char *)m.data, m.len, 0, 4u << 20, got);
    CHECK(why == NULL);
    CHECK_INT(json_array_size(got), 1);
    json_decref(got);
    aemp__buf_free(&m);
}

/* An idle link holds no framer: one is made for an item that comes in
 * parts (or after a big one) and released once that item is whole. */
TEST(cbor_framing_framer_released_when_idle)
{
    aemp__frame_in_t in = {0};
    CHECK_INT(aemp__frame_in_init(&in, &aemp__framing_cbor, AEMP_DEFAULT_MAX_MESSAGE), 0);
    CHECK_INT(aemp__framing_cbor_framer_held(&in), 0);
    /* ["a", 1, "xyz"], then the same in two parts */
    static const char item[] = "\x83\x61\x61\x01\x63xyz";
    size_t n = sizeof item - 1, start, end;
    const char *err = "";
    char text[16];
    for (size_t cut = 0; cut < n; cut++) {
        memcpy(text, item, n);
        if (cut) {
            CHECK_INT(in.ops->next(&in, text, cut, &start, &end, &err), AEMP__FRAME_MORE);
            CHECK_INT(aemp__framing_cbor_framer_held(&in), 1);
        }
        CHECK_INT(in.ops->next(&in, text, n, &start, &end, &err), AEMP__FRAME_FOUND);
        CHECK_INT(end, n);
        CHECK_INT(aemp__framing_cbor_framer_held(&in), 0);
        aemp__msg_t m = {0};
        char why[64];
        CHECK_INT(in.ops->decode(&in, text + start, end - start, &m, why, sizeof why), AEMP__MSG_OK);
        CHECK_STR(m.id, "a");
        aemp__frame_msg_done(&in, &m);
        CHECK_INT(aemp__framing_cbor_framer_held(&in), 0);
    }
    /* a big item makes the next one go to the framer first: still none
     * is held once each is whole */
    aemp__buf_t big = {0};
    aemp__buf_append(&big, "\x82\x61\x62\x5a\x00\x00\x40\x00", 8);
    for (int i = 0; i < 0x4000; i++) aemp__buf_append(&big, "z", 1);
    aemp__buf_append(&big, item, n);
    for (int k = 0; k < 2; k++) {
        CHECK_INT(in.ops->next(&in, aemp__buf_head(&big), aemp__buf_size(&big), &start, &end, &err),
                  AEMP__FRAME_FOUND);
        CHECK_INT(aemp__framing_cbor_framer_held(&in), 0);
        aemp__msg_t m = {0};
        char why[64];
        CHECK_INT(in.ops->decode(&in, aemp__buf_head(&big) + start, end - start, &m, why, sizeof why),
                  AEMP__MSG_OK);
        CHECK_STR(m.id, k ? "a" : "b");
        aemp__frame_msg_done(&in, &m);
        aemp__buf_consume(&big, end);
    }
    CHECK_INT(aemp__buf_size(&big), 0);
    aemp__buf_free(&big);
    aemp__frame_in_free(&in);
}

/* ------------------------------------------------------------------ */
/* transcript 02: two 2.02 nodes, CBOR both ways */

/* A hex of a CBOR item's bytes in canonical order for comparing "equal
 * up to a hash's key order": the sorted bytes (a map's entries move as
 * wholes, so the multiset of bytes and the length stay). */
static int cmp_byte(const void *a, const void *b)
{
    return *(const unsigned char *)a - *(const unsigned char *)b;
}

TEST(cbor_framing_transcript02_data_phase)
{
    json_t *tr = t_load_vectors("vectors/p1/transcripts/02-seed-client-cbor.json");
    json_t *t01 = t_load_vectors("vectors/p1/transcripts/01-seed-client-json.json");
    json_t *conn = json_object_get(json_object_get(tr, "messages"), "2");
    static const char *const dirs[] = {"c2s", "s2c"};
    int compared01 = 0, exact = 0, total = 0;
    for (int d = 0; d < 2; d++) {
        json_t *msgs = json_object_get(conn, dirs[d]), *m;
        size_t i;
        /* the data phase of this direction as recorded, one stream: the
         * bytes after the third line of the TCP payloads */
        aemp__buf_t s = {0};
        json_t *ev;
        json_array_foreach(json_object_get(tr, "events"), i, ev) {
            if (json_integer_value(json_object_get(ev, "conn")) != 2 ||
                strcmp(json_string_value(json_object_get(ev, "dir")), dirs[d]))
                continue;
            size_t n;
            unsigned char *b = t_unhex(json_string_value(json_object_get(ev, "hex")), &n);
            aemp__buf_append(&s, b, n);
            free(b);
        }
        const char *p = s.data;
        for (int lf = 0; lf < 3; lf++) p = memchr(p, '\n', s.len - (size_t)(p - s.data)) + 1;
        size_t off = (size_t)(p - s.data);
        json_t *got = json_array();
        CHECK(run_stream((unsigned char *)s.data + off, s.len - off, 5, AEMP_DEFAULT_MAX_MESSAGE,
                         got) == NULL);
        CHECK_INT(json_array_size(got), json_array_size(msgs));
        /* the JSON texts of this direction in session 01 */
        json_t *j01 = json_object_get(json_object_get(json_object_get(t01, "messages"), "2"),
                                      dirs[d]);
        json_array_foreach(msgs, i, m) {
            total++;
            json_t *g = json_array_get(got, i);
            /* decoding: the value the transcript's decoding gives */
            CHECK(json_equal(g, json_object_get(m, "decoded")));
            /* the same message over JSON framing in session 01, where it
             * names no node or port (those differ between the runs) */
            json_t *x;
            size_t k;
            json_array_foreach(j01, k, x) {
                const char *txt = json_string_value(x);
                json_t *v = aemp_json_decode(txt, strlen(txt), 0, NULL, 0);
                if (json_equal(v, g)) compared01++;
                json_decref(v);
            }
            /* encoding: what we write for that value is what 2.02 wrote,
             * byte for byte up to a hash's key order */
            size_t rn;
            unsigned char *rec = t_unhex(json_string_value(json_object_get(m, "hex")), &rn);
            aemp__buf_t mine = {0}, viamsg = {0};
            CHECK_INT(aemp__cbor_encode_buf(&mine, g), 0);
            /* the link's writer (id and elements apart) writes the same */
            json_t *elems = json_copy(g);
            json_array_remove(elems, 0);
            CHECK_INT(aemp__cbor_encode_msg(&viamsg, json_string_value(json_array_get(g, 0)),
                                            json_string_length(json_array_get(g, 0)), elems),
                      0);
            CHECK_INT(viamsg.len, mine.len);
            if (viamsg.len == mine.len) CHECK_MEM(viamsg.data, mine.data, mine.len);
            json_decref(elems);
            aemp__buf_free(&viamsg);
            CHECK_INT(mine.len, rn);
            if (mine.len == rn && !memcmp(mine.data, rec, rn)) {
                exact++;
            } else if (mine.len == rn) {
                qsort(mine.data, rn, 1, cmp_byte);
                qsort(rec, rn, 1, cmp_byte);
                CHECK_MEM(mine.data, rec, rn);
            }
            aemp__buf_free(&mine);
            free(rec);
        }
        json_decref(got);
        aemp__buf_free(&s);
    }
    printf("    %d messages, %d byte-exact, %d equal to session 01's JSON\n", total, exact,
           compared01);
    CHECK_INT(total, 11);
    CHECK(exact >= 9);
    CHECK(compared01 >= 5);
    json_decref(t01);
    json_decref(tr);
}

/* ------------------------------------------------------------------ */
/* links: one message, one meaning */

static int keep_msg(aemp_port_t *p, json_t *msg, void *ud)
{
    (void)p;
    json_array_append((json_t *)ud, msg);
    return AEMP_KEEP;
}

typedef struct {
    json_t *a, *b;
    size_t n;
} two_t;

static int both_have(void *ud)
{
    two_t *t = ud;
    return json_array_size(t->a) >= t->n && json_array_size(t->b) >= t->n;
}

static int linked2(void *ud)
{
    aemp_node_t **n = ud;
    return aemp_node_is_up(n[0], "cb-b") && aemp_node_is_up(n[0], "cb-c");
}

/* Node a (default framings) hears from b (default: CBOR both ways) and
 * from c (framings "json": JSON both ways) the same values, every encode
 * vector's: its ports see equal json_t values. The link-up log names
 * the framing, aemp_node_peer_framing too. */
TEST(cbor_link_one_meaning_between_our_nodes)
{
    tnode_t ta, tb, tc;
    start_ticker();
    aemp_node_t *a = mknode1_framings(&ta, "cb-a", NULL, NULL);
    REQUIRE(a);
    const char *seed = aemp_node_listeners(a, &(size_t){0})[0];
    aemp_node_t *b = mknode1_framings(&tb, "cb-b", seed, NULL);
    aemp_node_t *c = mknode1_framings(&tc, "cb-c", seed, "json");
    REQUIRE(b && c);
    CHECK(mknode1_framings(&(tnode_t){0}, "cb-x", NULL, "cbor,xml") == NULL);
    CHECK(mknode1_framings(&(tnode_t){0}, "cb-x", NULL, "json,json") == NULL);
    CHECK(mknode1_framings(&(tnode_t){0}, "cb-x", NULL, "") == NULL);
    aemp_node_t *ns[] = {a, b, c};
    REQUIRE(run_until(linked2, ns, 10));
    CHECK_STR(aemp_node_peer_framing(a, "cb-b", 0), "cbor");
    CHECK_STR(aemp_node_peer_framing(a, "cb-b", 1), "cbor");
    CHECK_STR(aemp_node_peer_framing(a, "cb-c", 0), "json");
    CHECK_STR(aemp_node_peer_framing(a, "cb-c", 1), "json");
    CHECK(aemp_node_peer_framing(a, "nobody", 0) == NULL);

    two_t got = {json_array(), json_array(), 0};
    aemp_port_t *pb = aemp_port_new(a, keep_msg, got.a);
    aemp_port_t *pc = aemp_port_new(a, keep_msg, got.b);
    json_t *vec = t_load_vectors("vectors/cbor.json"), *e, *want = json_array();
    size_t i;
    json_array_foreach(json_object_get(vec, "encode"), i, e) {
        const char *txt = json_string_value(json_object_get(e, "json"));
        json_t *v = aemp_json_decode(txt, strlen(txt), 0, NULL, 0);
        json_array_append(want, v);
        CHECK_INT(aemp_send(b, aemp_port_id(pb), json_copy(v)), 0);
        CHECK_INT(aemp_send(c, aemp_port_id(pc), v), 0);
        got.n++;
    }
    CHECK(run_until(both_have, &got, 10));
    CHECK_INT(json_array_size(got.a), got.n);
    json_array_foreach(want, i, e) {
        json_t *x = json_array_get(got.a, i), *y = json_array_get(got.b, i);
        if (!same_value(x, y) || !same_value(x, e)) {
            char *s1 = aemp_json_encode(x, NULL), *s2 = aemp_json_encode(y, NULL);
            t_fail(__FILE__, __LINE__, "message %zu: cbor %.200s, json %.200s", i, s1, s2);
            free(s1);
            free(s2);
        }
    }
    CHECK(strstr(ta.warnings, "dropped") == NULL);
    json_decref(want);
    json_decref(vec);
    json_decref(got.a);
    json_decref(got.b);
    aemp_node_destroy(c);
    aemp_node_destroy(b);
    aemp_node_destroy(a);
}

/* A scripted 2.x peer writes CBOR::XS's bytes (the decode vectors, each
 * the one element of a message) and a JSON peer the same values as
 * text: the port sees equal values; what JSON cannot carry is dropped
 * with a warning and the link stays; a broken item closes only that
 * link, with the framer's reason. */
TEST(cbor_link_scripted_peer_vectors)
{
    tnode_t t;
    start_ticker();
    aemp_node_t *n = mknode1_framings(&t, "cb-n", NULL, NULL);
    REQUIRE(n);
    const char *ep = aemp_node_listeners(n, &(size_t){0})[0];
    two_t got = {json_array(), json_array(), 0};
    aemp_port_t *pc = aemp_port_new(n, keep_msg, got.a);
    aemp_port_t *pj = aemp_port_new(n, keep_msg, got.b);
    const char *lc = strchr(aemp_port_id(pc), '#') + 1, *lj = strchr(aemp_port_id(pj), '#') + 1;

    raw_t rc, rj;
    char err[256] = "";
    REQUIRE(raw_open(&rc, ep) == 0 && raw_open(&rj, ep) == 0);
    aemp_hs_config_t hc = {.protocol = 1, .noderef = "cb-perl", .secret = secret,
                           .secret_len = strlen(secret), .framings = "cbor,json,storable",
                           .framings_send = "cbor"};
    aemp_hs_t *hs = raw_auth_begin_cfg(&rc, &hc, err, sizeof err);
    REQUIRE(hs);
    /* the node greets as a 2.02 node does */
    CHECK(strstr(aemp_hs_remote_line(hs, 1), ";cbor,json,storable;") != NULL);
    REQUIRE(raw_auth_end(&rc, hs, 5, err, sizeof err) == 1);
    hc.noderef = "cb-json";
    hc.framings = hc.framings_send = "json";
    hs = raw_auth_begin_cfg(&rj, &hc, err, sizeof err);
    REQUIRE(hs);
    REQUIRE(raw_auth_end(&rj, hs, 5, err, sizeof err) == 1);

    json_t *vec = t_load_vectors("vectors/cbor.json"), *e;
    size_t i;
    int dropped = 0;
    json_array_foreach(json_object_get(vec, "decode"), i, e) {
        const char *txt = json_string_value(json_object_get(e, "json"));
        json_t *v = txt ? aemp_json_decode(txt, strlen(txt), 0, NULL, 0) : NULL;
        if (json_integer_value(json_object_get(e, "ok")) != 1 || (txt && !v)) continue; /* nan, inf */
        size_t n1, idn = strlen(lc);
        unsigned char *item = t_unhex(json_string_value(json_object_get(e, "cbor")), &n1);
        unsigned char head[2] = {0x82, (unsigned char)(0x60 | idn)};
        REQUIRE(idn < 24);
        raw_send(&rc, head, 2);
        raw_send(&rc, lc, idn);
        raw_send(&rc, item, n1);
        free(item);
        if (!v) {
            dropped++;
            continue;
        }
        char *jt = aemp_json_encode(v, NULL);
        char line[512];
        snprintf(line, sizeof line, "[\"%s\",%s]", lj, jt);
        raw_send_str(&rj, line);
        free(jt);
        json_decref(v);
        got.n++;
    }
    CHECK(run_until(both_have, &got, 10));
    run_for(0.1);
    CHECK_INT(json_array_size(got.a), got.n);
    CHECK_INT(json_array_size(got.b), got.n);
    for (i = 0; i < got.n; i++) {
        json_t *x = json_array_get(got.a, i), *y = json_array_get(got.b, i);
        if (!same_value(x, y)) {
            char *s1 = aemp_json_encode(x, NULL), *s2 = aemp_json_encode(y, NULL);
            t_fail(__FILE__, __LINE__, "message %zu: cbor %.200s, json %.200s", i, s1, s2);
            free(s1);
            free(s2);
        }
    }
    CHECK(dropped >= 5);
    CHECK(strstr(t.warnings, "CBOR message dropped (CBOR tag 2 (bignum) at offset ") != NULL);
    CHECK(aemp_node_is_up(n, "cb-perl"));
    /* a reserved head: this link closes, the other stays */
    raw_send(&rc, "\x82\x1c", 2);
    CHECK(raw_wait_closed(&rc, 5));
    CHECK(strstr(t.last_down, "Bad message (reserved additional information 28 at offset 1)") !=
          NULL);
    CHECK(aemp_node_is_up(n, "cb-json"));
    raw_close(&rc);
    raw_close(&rj);
    json_decref(vec);
    json_decref(got.a);
    json_decref(got.b);
    aemp_node_destroy(n);
}

/* ------------------------------------------------------------------ */
/* formats written straight to CBOR */

/* The CBOR pack writer's bytes for fmt and its arguments, and those of
 * the value json_pack makes of the same, with its return codes. */
static int both_ways(aemp__buf_t *direct, aemp__buf_t *via, int *rc_via, const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    aemp__pack_cache_t *cache = NULL;
    aemp__payload_t pl = {.fmt = fmt, .ap = &ap};
    int rc = aemp__payload_encode_cbor(direct, "p#1", 3, &pl, &cache);
    json_t *v = json_vpack_ex(NULL, 0, fmt, aq);
    *rc_via = v ? aemp__cbor_encode_msg(via, "p#1", 3, v) : AEMP_EINVAL;
    json_decref(v);
    aemp__pack_cache_free(cache);
    va_end(aq);
    va_end(ap);
    return rc;
}

TEST(cbor_framing_formats_as_values)
{
    aemp__buf_t a = {0}, b = {0};
    int rv = 0;
#define SAME(...)                                                                                  \
    do {                                                                                           \
        a.len = a.off = b.len = b.off = 0;                                                         \
        int rd = both_ways(&a, &b, &rv, __VA_ARGS__);                                             \
        CHECK_INT(rd, rv);                                                                         \
        CHECK_INT(a.len, b.len);                                                                   \
        if (!rd && a.len == b.len) CHECK_MEM(a.data, b.data, a.len);                               \
    } while (0)
    SAME("[sis]", "tick", 42, "x");
    SAME("[s[i[sb]n]f]", "caf\xc3\xa9", -7, "", 1, 0.1);
    json_t *o1 = json_pack("{s[i]}", "k", 1), *o2 = json_pack("[i,i,{s:s}]", 1, 2, "a", "b");
    SAME("[IfffO]", (json_int_t)INT64_MIN, 1.5, 3.0, 1e300, o1);
    SAME("[s?o?s#s%]", NULL, NULL, "abc", 2, "xyz", (size_t)3);
    SAME("[s*o*i]", NULL, NULL, 5); /* '*': through a value */
    SAME("[[[[]]]]");
    SAME("[s]", "bad \xff utf8");
    SAME("[f]", 1.0 / 0.0);
    SAME("[O[O]]", o2, o1);
#undef SAME
    json_decref(o1);
    json_decref(o2);
    aemp__buf_free(&a);
    aemp__buf_free(&b);
}
