/*
 * test_cbor.c - the CBOR codec and its stream framer against CBOR::XS:
 * every vector of vectors/cbor.json (CBOR::XS 1.86) decoded, refused or
 * encoded as the vector says, the same value whichever framing carries
 * it, hostile input refused within its limits, items split anywhere, and
 * our encodings read back by the local perl's CBOR::XS (skipped without
 * it).
 */
#include "test.h"

#include <math.h>
#include <stdlib.h>

#include "aemp.h"
#include "aemp_int.h"

static json_t *jdec(const char *text)
{
    char err[AEMP_JSON_ERRMAX];
    json_t *v = aemp_json_decode(text, strlen(text), 0, err, sizeof err);
    if (!v) t_fail(__FILE__, __LINE__, "bad JSON in the test: %s: %s", text, err);
    return v;
}

/* The value as JSON framing carries it: our JSON encoding decoded back
 * (reals to 15 digits, as JSON::XS writes them). */
static json_t *over_json(const json_t *v)
{
    size_t n;
    char *t = aemp_json_encode(v, &n);
    json_t *back = t ? aemp_json_decode(t, n, 0, NULL, 0) : NULL;
    free(t);
    return back;
}

static char *show(const json_t *v)
{
    char *s = v ? aemp_json_encode(v, NULL) : NULL;
    return s ? s : strdup("(null)");
}

/* got, carried over JSON, is the value of the JSON text want. */
static void check_value(const char *file, int line, const char *name, const json_t *got,
                        const char *want)
{
    json_t *w = jdec(want), *g = got ? over_json(got) : NULL;
    if (!g || !w || !json_equal(g, w)) {
        char *s = show(got);
        t_fail(file, line, "%s: got %s, want %s", name, s, want);
        free(s);
    }
    json_decref(g);
    json_decref(w);
}
#define CHECK_VALUE(name, got, want) check_value(__FILE__, __LINE__, (name), (got), (want))

static json_t *cdec_hex(const char *hex, int *code, char *msg, size_t msglen)
{
    size_t n;
    unsigned char *b = t_unhex(hex, &n);
    *code = 0;
    json_t *v = aemp_cbor_decode(b, n, 0, code, msg, msglen);
    free(b);
    return v;
}

static char *cenc_hex(const json_t *v)
{
    size_t n;
    unsigned char *b = aemp_cbor_encode(v, &n);
    if (!b) return NULL;
    char *hex = malloc(2 * n + 1);
    t_hex(b, n, hex);
    free(b);
    return hex;
}

/* The framer's verdict on a whole buffer: 1 (one item, all of it), 0
 * (need more), 2 (an item, then more bytes) or the error code. */
static int frame_once(const unsigned char *b, size_t n, unsigned max_depth)
{
    aemp_cbor_framer_t f;
    size_t s, e;
    aemp_cbor_framer_init(&f, 0, max_depth);
    int r = aemp_cbor_framer_next(&f, b, n, &s, &e);
    aemp_cbor_framer_free(&f);
    return r == 1 && e != n ? 2 : r;
}

/* Equal values, but reals may be one unit in the last place apart. */
static int same_within_ulp(const json_t *a, const json_t *b, size_t *ulps)
{
    if (json_is_real(a) && json_is_real(b)) {
        double x = json_real_value(a), y = json_real_value(b);
        if (x == y) return 1;
        if (nextafter(x, y) != y) return 0;
        (*ulps)++;
        return 1;
    }
    if (json_typeof(a) != json_typeof(b)) return 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same_within_ulp(json_array_get(a, i), json_array_get(b, i), ulps)) return 0;
        return 1;
    }
    if (json_is_object(a)) {
        const char *k;
        json_t *x;
        if (json_object_size(a) != json_object_size(b)) return 0;
        json_object_foreach((json_t *)a, k, x) {
            json_t *y = json_object_get(b, k);
            if (!y || !same_within_ulp(x, y, ulps)) return 0;
        }
        return 1;
    }
    return json_equal(a, b);
}

/* Reals that JSON::XS read one unit in the last place off (see the
 * encoder in aemp.h); every other difference fails. */
static size_t ulp_diffs;

/* Two encodings of one value: byte for byte, or (hashes of several keys
 * come in any order; a real JSON::XS read inexactly) the same length and
 * the same value. */
static void check_same_item(const char *name, const char *ours, const char *want)
{
    if (!strcmp(ours, want)) return;
    int c1, c2;
    size_t ulps = 0;
    json_t *a = cdec_hex(ours, &c1, NULL, 0), *b = cdec_hex(want, &c2, NULL, 0);
    if (strlen(ours) != strlen(want) || !a || !b || !same_within_ulp(a, b, &ulps))
        t_fail(__FILE__, __LINE__, "%s: ours %s, want %s", name, ours, want);
    if (ulps) printf("    %s: %zu real(s) one unit in the last place from JSON::XS's reading\n",
                     name, ulps);
    ulp_diffs += ulps;
    json_decref(a);
    json_decref(b);
}

TEST(cbor_vectors_encode)
{
    json_t *vs = t_load_vectors("vectors/cbor.json");
    json_t *list = json_object_get(vs, "encode");
    REQUIRE(json_array_size(list) == 28);
    size_t i, exact = 0;
    json_t *vec;
    json_array_foreach(list, i, vec) {
        const char *name = json_string_value(json_object_get(vec, "name"));
        const char *json = json_string_value(json_object_get(vec, "json"));
        const char *cbor = json_string_value(json_object_get(vec, "cbor"));
        const char *coj = json_string_value(json_object_get(vec, "cbor_of_json"));
        char msg[AEMP_JSON_ERRMAX];
        int code;
        /* what Perl sent, and what it sends for the JSON peer's value, both
         * decode to the value JSON framing delivers */
        json_t *v = cdec_hex(cbor, &code, msg, sizeof msg);
        if (!v) t_fail(__FILE__, __LINE__, "%s: %s", name, msg);
        CHECK_VALUE(name, v, json);
        json_t *v2 = cdec_hex(coj, &code, msg, sizeof msg);
        if (!v2) t_fail(__FILE__, __LINE__, "%s (cbor_of_json): %s", name, msg);
        CHECK_VALUE(name, v2, json);
        /* our encoding of the JSON peer's value is what a 2.x node writes */
        json_t *j = jdec(json);
        char *ours = cenc_hex(j);
        REQUIRE(ours);
        check_same_item(name, ours, coj);
        exact += !strcmp(ours, coj);
        /* and it decodes back to the value */
        json_t *v3 = cdec_hex(ours, &code, msg, sizeof msg);
        CHECK_VALUE(name, v3, json);
        /* re-encoding what we decoded from Perl's cbor_of_json: a fixed point */
        char *again = cenc_hex(v2);
        if (again) check_same_item(name, again, coj);
        free(again);
        free(ours);
        json_decref(j);
        json_decref(v);
        json_decref(v2);
        json_decref(v3);
    }
    /* only the hash of two keys may come in another order, and
     * float-single-exact's 1.17549435082229e-38 is the one real JSON::XS
     * reads a unit off: ours is the nearest double (strtod's) */
    CHECK(exact >= 26);
    CHECK_INT(ulp_diffs, 1);
    json_decref(vs);
}

TEST(cbor_vectors_decode)
{
    json_t *vs = t_load_vectors("vectors/cbor.json");
    json_t *list = json_object_get(vs, "decode");
    REQUIRE(json_array_size(list) == 29);
    size_t i, accepted = 0, dropped = 0, refused = 0;
    json_t *vec;
    json_array_foreach(list, i, vec) {
        const char *name = json_string_value(json_object_get(vec, "name"));
        const char *hex = json_string_value(json_object_get(vec, "cbor"));
        const char *json = json_string_value(json_object_get(vec, "json"));
        int ok = (int)json_integer_value(json_object_get(vec, "ok"));
        char msg[AEMP_JSON_ERRMAX];
        int code;
        size_t n;
        unsigned char *b = t_unhex(hex, &n);
        int fr = frame_once(b, n, 0);
        json_t *v = cdec_hex(hex, &code, msg, sizeof msg);
        if (ok && json) {
            /* inf and -inf: the raw numbers JSON text gives for them;
             * NaN no JSON text gives */
            const char *raw;
            if (!strcmp(json, "nan")) {
                CHECK(!v && code == AEMP_EBADMSG && strstr(msg, "NaN"));
            } else if (!strcmp(json, "inf") || !strcmp(json, "-inf")) {
                CHECK(aemp_json_is_raw_number(v, &raw));
                if (v) CHECK_STR(raw, json[0] == '-' ? "-1e400" : "1e400");
            } else {
                if (!v) t_fail(__FILE__, __LINE__, "%s: %s", name, msg);
                CHECK_VALUE(name, v, json);
            }
            accepted++;
            CHECK_INT(fr, 1);
        } else if (ok) {
            /* well formed, but JSON cannot carry it: that message only */
            if (v || code != AEMP_EBADMSG || !strstr(msg, "cannot be carried"))
                t_fail(__FILE__, __LINE__, "%s: code %d, %s", name, code, msg);
            dropped++;
            CHECK_INT(fr, 1);
        } else {
            /* a broken stream: the link fails */
            if (v || (code != AEMP_EPROTO && code != AEMP_ELIMIT) || !msg[0])
                t_fail(__FILE__, __LINE__, "%s: code %d, %s", name, code, msg);
            printf("    %-20s %s\n", name, msg);
            refused++;
            CHECK(fr != 1);
        }
        json_decref(v);
        free(b);
    }
    CHECK_INT(accepted, 13);
    CHECK_INT(dropped, 6);
    CHECK_INT(refused, 10);
    json_decref(vs);
}

/* Every vector cut short anywhere: "need more" for the framer and the
 * message path, "unexpected end" for the decoder; never a value. */
TEST(cbor_truncated_every_offset)
{
    json_t *vs = t_load_vectors("vectors/cbor.json");
    size_t i, cuts = 0;
    json_t *vec;
    const char *lists[] = {"encode", "decode"};
    for (int l = 0; l < 2; l++) {
        json_array_foreach(json_object_get(vs, lists[l]), i, vec) {
            if (l == 1 && !json_integer_value(json_object_get(vec, "ok"))) continue;
            size_t n;
            unsigned char *b = t_unhex(json_string_value(json_object_get(vec, "cbor")), &n);
            for (size_t k = 0; k < n && k < 600; k++) {
                char msg[AEMP_JSON_ERRMAX];
                int code;
                json_t *v = aemp_cbor_decode(b, k, 0, &code, msg, sizeof msg);
                if (v || code != AEMP_EPROTO || !strstr(msg, "unexpected end"))
                    t_fail(__FILE__, __LINE__, "%s cut at %zu: %d %s",
                           json_string_value(json_object_get(vec, "name")), k, code, msg);
                json_decref(v);
                CHECK_INT(frame_once(b, k, 0), 0);
                const char *id;
                size_t idlen, used;
                CHECK(!aemp__cbor_decode_msg((const char *)b, k, 0, &id, &idlen, &used, 0, NULL));
                cuts++;
            }
            free(b);
        }
    }
    CHECK(cuts > 1000);
    json_decref(vs);
}

/* A stream of items back to back, split at every point into two reads:
 * the framer finds the same items, and keeps what it scanned. */
TEST(cbor_stream_split)
{
    json_t *vs = t_load_vectors("vectors/cbor.json");
    aemp__buf_t s = {0};
    size_t ends[64], nitems = 0, i;
    json_t *vec;
    json_array_foreach(json_object_get(vs, "encode"), i, vec) {
        size_t n;
        unsigned char *b = t_unhex(json_string_value(json_object_get(vec, "cbor")), &n);
        if (n < 400) {
            aemp__buf_append(&s, b, n);
            ends[nitems++] = s.len;
        }
        free(b);
    }
    REQUIRE(nitems > 20);
    for (size_t cut = 0; cut <= s.len; cut++) {
        aemp_cbor_framer_t f;
        aemp_cbor_framer_init(&f, 0, 0);
        size_t region = 0, got = 0, st, en;
        for (int step = 0; step < 2; step++) {
            size_t avail = step ? s.len : cut;
            int r;
            while ((r = aemp_cbor_framer_next(&f, s.data + region, avail - region, &st, &en)) == 1) {
                region += en;
                if (got < nitems && region != ends[got])
                    t_fail(__FILE__, __LINE__, "cut %zu: item %zu ends at %zu, not %zu", cut, got,
                           region, ends[got]);
                got++;
            }
            CHECK_INT(r, 0);
        }
        CHECK_INT(got, nitems);
        aemp_cbor_framer_free(&f);
    }
    /* the message path reads the same stream item by item */
    size_t pos = 0, k = 0;
    while (pos < s.len) {
        const char *id;
        size_t idlen, used = 0;
        json_t *m = aemp__cbor_decode_msg(s.data + pos, s.len - pos, 0, &id, &idlen, &used, 0, NULL);
        if (m) {
            CHECK_INT(pos + used, ends[k]);
        } else {
            /* not on the fast path (an id that is not a string of ASCII) */
            json_t *v = aemp_cbor_decode(s.data + pos, ends[k] - pos, 0, NULL, NULL, 0);
            CHECK(v != NULL);
            json_decref(v);
        }
        json_decref(m);
        pos = ends[k++];
    }
    CHECK_INT(k, nitems);
    aemp__buf_free(&s);
    json_decref(vs);
}

TEST(cbor_decode_hostile)
{
    static const struct {
        const char *hex;
        int code;
        const char *msg;
    } cases[] = {
        {"5bffffffffffffffff00", AEMP_EPROTO, "unexpected end of CBOR data at offset 10"},
        {"9b0000000100000000", AEMP_EPROTO, "unexpected end"},
        {"bb7fffffffffffffff", AEMP_EPROTO, "unexpected end"},
        {"7f61ff", AEMP_EPROTO, "unexpected end"},
        {"5f6161ff", AEMP_EPROTO, "invalid chunk 0x61"},
        {"7f4161006162ff", AEMP_OK, NULL}, /* as CBOR::XS reads it */
        {"7f7f6161ffff", AEMP_EPROTO, "invalid chunk 0x7f"},
        {"9fc1ff", AEMP_EPROTO, "unexpected break at offset 2"},
        {"bf6161ff", AEMP_EPROTO, "unexpected break at offset 3"},
        {"82ff01", AEMP_EPROTO, "unexpected break at offset 1"},
        {"1f", AEMP_EPROTO, "indefinite length not allowed for major type 0"},
        {"df01", AEMP_EPROTO, "indefinite length not allowed for major type 6"},
        {"fc", AEMP_EPROTO, "reserved additional information 28"},
        {"f818", AEMP_EPROTO, "unsupported simple value 0xf8"},
        {"8101", AEMP_OK, NULL},
        {"a1f601", AEMP_EBADMSG, "map key of major type 7 at offset 1 (cannot be carried)"},
        {"a18001", AEMP_EBADMSG, "map key of major type 4"},
        {"d81d00", AEMP_EBADMSG, "CBOR tag 29 (shared reference) at offset 0 (cannot be carried)"},
        {"d9565282", AEMP_EPROTO, "unexpected end"},
        {"d956528100", AEMP_EBADMSG, "tag 22098"},
        {"82f7ff", AEMP_EPROTO, "unexpected break"}, /* broken wins over cannot carry */
        {"8201", AEMP_EPROTO, "unexpected end"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char msg[AEMP_JSON_ERRMAX];
        int code;
        json_t *v = cdec_hex(cases[k].hex, &code, msg, sizeof msg);
        if (cases[k].code == AEMP_OK) {
            CHECK(v != NULL);
        } else if (v || code != cases[k].code || !strstr(msg, cases[k].msg)) {
            t_fail(__FILE__, __LINE__, "%s: code %d, \"%s\"; want %d, \"%s\"", cases[k].hex, code,
                   msg, cases[k].code, cases[k].msg);
        }
        json_decref(v);
    }

    /* a length claim beyond the limit fails at once in the framer, and
     * nothing is allocated for it anywhere */
    static const char *claims[] = {"5bffffffffffffffff", "9b0000000100000000",
                                   "bb0000000100000000", "7a7fffffff"};
    for (size_t k = 0; k < sizeof claims / sizeof claims[0]; k++) {
        size_t n;
        unsigned char *b = t_unhex(claims[k], &n);
        aemp_cbor_framer_t f;
        size_t s, e;
        aemp_cbor_framer_init(&f, 1 << 20, 0);
        int r = aemp_cbor_framer_next(&f, b, n, &s, &e);
        if (r != AEMP_ELIMIT || !strstr(aemp_cbor_framer_error(&f), "longer than 1048576"))
            t_fail(__FILE__, __LINE__, "%s: %d %s", claims[k], r, aemp_cbor_framer_error(&f));
        CHECK_INT(aemp_cbor_framer_next(&f, b, n, &s, &e), AEMP_ELIMIT); /* sticky */
        aemp_cbor_framer_free(&f);
        free(b);
    }
    /* an item that grows past max_len while it arrives */
    unsigned char big[300];
    big[0] = 0x9f;
    memset(big + 1, 0x01, sizeof big - 1);
    aemp_cbor_framer_t f;
    size_t s, e;
    aemp_cbor_framer_init(&f, 100, 0);
    CHECK_INT(aemp_cbor_framer_next(&f, big, 50, &s, &e), 0);
    CHECK_INT(aemp_cbor_framer_next(&f, big, sizeof big, &s, &e), AEMP_ELIMIT);
    aemp_cbor_framer_free(&f);
    /* a shorter region than was scanned is a caller bug, not sticky */
    aemp_cbor_framer_init(&f, 0, 0);
    CHECK_INT(aemp_cbor_framer_next(&f, big, 50, &s, &e), 0);
    CHECK_INT(aemp_cbor_framer_next(&f, big, 10, &s, &e), AEMP_EINVAL);
    CHECK_INT(aemp_cbor_framer_next(&f, big, 50, &s, &e), 0);
    aemp_cbor_framer_free(&f);
}

TEST(cbor_decode_depth)
{
    size_t deep = 100000;
    unsigned char *b = malloc(deep + 1);
    for (unsigned limit = 0; limit <= 3000; limit += 1500) {
        unsigned eff = limit ? limit : AEMP_JSON_MAX_DEPTH;
        for (int indef = 0; indef < 2; indef++) {
            /* eff levels decode, one more does not */
            for (size_t levels = eff; levels <= eff + 1; levels++) {
                size_t n = 0;
                for (size_t k = 0; k < levels; k++) b[n++] = indef ? 0x9f : 0x81;
                b[n++] = 0x01;
                if (indef)
                    for (size_t k = 0; k < levels; k++) b[n++] = 0xff;
                char msg[AEMP_JSON_ERRMAX];
                int code;
                unsigned char *w = malloc(n);
                memcpy(w, b, n);
                json_t *v = aemp_cbor_decode(w, n, limit, &code, msg, sizeof msg);
                int fr = frame_once(w, n, limit);
                if (levels == eff) {
                    CHECK(v != NULL);
                    CHECK_INT(fr, 1);
                } else {
                    CHECK(!v && code == AEMP_ELIMIT && strstr(msg, "nesting deeper than"));
                    CHECK_INT(fr, AEMP_ELIMIT);
                }
                json_decref(v);
                free(w);
                if (indef) break; /* the definite form covers the edge */
            }
        }
    }
    /* far deeper than any limit: refused without recursion */
    memset(b, 0x9f, deep);
    char msg[AEMP_JSON_ERRMAX];
    int code;
    json_t *v = aemp_cbor_decode(b, deep, 100000, &code, msg, sizeof msg);
    CHECK(!v && code == AEMP_ELIMIT);
    CHECK_INT(frame_once(b, deep, 100000), AEMP_ELIMIT);
    free(b);
}

TEST(cbor_decode_max_values)
{
    /* [1, 2, 3, [4]]: six values */
    size_t n;
    unsigned char *b = t_unhex("840102038104", &n);
    char msg[AEMP_JSON_ERRMAX];
    int code;
    json_t *v = aemp_cbor_decode_max(b, n, 0, 6, &code, msg, sizeof msg);
    CHECK(v != NULL);
    json_decref(v);
    v = aemp_cbor_decode_max(b, n, 0, 5, &code, msg, sizeof msg);
    CHECK(!v && code == AEMP_ELIMIT);
    CHECK_STR(msg, "CBOR item has more than 5 values (at offset 5)");
    free(b);
    /* the default: 2^20 values */
    size_t count = AEMP_CBOR_MAX_VALUES;
    unsigned char *big = malloc(count + 16);
    big[0] = 0x9a;
    big[1] = (unsigned char)(count >> 24);
    big[2] = (unsigned char)(count >> 16);
    big[3] = (unsigned char)(count >> 8);
    big[4] = (unsigned char)count;
    memset(big + 5, 0x07, count);
    v = aemp_cbor_decode(big, count + 5, 0, &code, msg, sizeof msg);
    CHECK(!v && code == AEMP_ELIMIT); /* the array itself is a value too */
    big[4] = (unsigned char)(count - 1);
    big[3] = (unsigned char)((count - 1) >> 8);
    big[2] = (unsigned char)((count - 1) >> 16);
    v = aemp_cbor_decode(big, count + 4, 0, &code, msg, sizeof msg);
    CHECK(v && json_array_size(v) == count - 1);
    json_decref(v);
    free(big);
}

/* How values go out: what CBOR::XS writes for what JSON::XS gave it. */
TEST(cbor_encode_forms)
{
    static const struct {
        const char *json, *hex;
    } cases[] = {
        {"[3.0,-2.0,-0.0,0.5,1.5,-1.0]", "8603fac000000000fa3f000000fa3fc00000fabf800000"},
        {"[4294967295.0,4294967296.0,65536.0,0.0]", "841affffffff" "fa4f800000" "1a00010000" "00"},
        {"[1e15,0.1,1e-7]", "83fb430c6bf526340000fb3fb999999999999afb3e7ad7f29abcaf48"},
        {"[-9223372036854775808,-9223372036854775807]",
         "82542d393232333337323033363835343737353830383b7ffffffffffffffe"},
        {"[18446744073709551615,18446744073709551616]",
         "821bffffffffffffffff543138343436373434303733373039353531363136"},
        {"[1e400,-1e400]", "82fa7f800000faff800000"},
        {"[\"\\u00e9\",\"abc\",\"\\u263a\",\"\\u0000\"]", "8462c3a943616263" "63e298ba" "4100"},
        {"{\"\\u00e9\":1}", "a141e901"},
        {"{\"\\u263a\":1}", "a163e298ba01"},
        {"{\"a\\u00ffz\":1}", "a14361ff7a01"},
        {"[true,false,null,[],{}]", "85f5f4f680a0"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        json_t *v = jdec(cases[k].json);
        char *hex = cenc_hex(v);
        if (!hex || strcmp(hex, cases[k].hex))
            t_fail(__FILE__, __LINE__, "%s: %s, want %s", cases[k].json, hex ? hex : "(null)",
                   cases[k].hex);
        free(hex);
        json_decref(v);
    }
    /* what cannot be encoded: the buffer is rewound */
    aemp__buf_t b = {0};
    aemp__buf_append(&b, "xy", 2);
    json_t *bad = json_pack("[s,o]", "ok", json_stringn_nocheck("\xc3", 1));
    CHECK_INT(aemp__cbor_encode_buf(&b, bad), AEMP_EINVAL);
    CHECK_INT(b.len, 2);
    json_t *raw = json_pack("[o]", json_stringn_nocheck("\xff" "abc", 4));
    CHECK_INT(aemp__cbor_encode_buf(&b, raw), AEMP_EINVAL);
    CHECK(aemp_cbor_encode(NULL, NULL) == NULL);
    json_decref(bad);
    json_decref(raw);
    /* a cycle is refused, not followed */
    json_t *cyc = json_array();
    json_t *inner = json_array();
    json_array_append(cyc, inner);
    json_array_append(inner, cyc);
    CHECK_INT(aemp__cbor_encode_buf(&b, cyc), AEMP_EINVAL);
    CHECK_INT(b.len, 2);
    json_array_clear(inner);
    json_decref(inner);
    json_decref(cyc);
    /* the message writer: [id, elements...] without building it */
    json_t *elems = jdec("[\"tick\",42,{\"k\":[1.5]}]");
    json_t *whole = jdec("[\"sink#p1\",\"tick\",42,{\"k\":[1.5]}]");
    aemp__buf_t m = {0}, w = {0};
    CHECK_INT(aemp__cbor_encode_msg(&m, "sink#p1", 7, elems), 0);
    CHECK_INT(aemp__cbor_encode_buf(&w, whole), 0);
    CHECK(m.len == w.len && !memcmp(m.data, w.data, m.len));
    CHECK_INT(aemp__cbor_encode_msg(&m, "a\0b", 3, elems), AEMP_EINVAL);
    CHECK_INT(aemp__cbor_encode_msg(&m, "x", 1, json_true()), AEMP_EINVAL);
    CHECK_INT(m.len, w.len);
    /* and the message reader gives the elements back, the id as bytes */
    const char *id;
    size_t idlen, used;
    json_t *back = aemp__cbor_decode_msg(m.data, m.len, 0, &id, &idlen, &used, 0, NULL);
    CHECK(back && json_equal(back, elems) && used == m.len && idlen == 7 &&
          !memcmp(id, "sink#p1", 7));
    json_decref(back);
    aemp__buf_free(&m);
    aemp__buf_free(&w);
    aemp__buf_free(&b);
    json_decref(elems);
    json_decref(whole);
}

/* The same value whichever framing carries it: byte strings are their
 * bytes as code points, keys too; integers beyond json_int_t as json.c
 * makes them. */
TEST(cbor_decode_mappings)
{
    static const struct {
        const char *hex, *json;
    } cases[] = {
        {"8244636166e962c3a9", "[\"caf\\u00e9\",\"\\u00e9\"]"},
        {"a141e901", "{\"\\u00e9\":1}"},
        {"a13bffffffffffffffff01", "{\"-18446744073709551616\":1}"},
        {"a1200102", "{\"-1\":1}"}, /* ...and 02 after it: see below */
        {"833b7fffffffffffffff3b80000000000000003bffffffffffffffff",
         "[\"-9223372036854775808\",\"-9223372036854775809\",\"-18446744073709551616\"]"},
        {"821b80000000000000001bffffffffffffffff", "[9223372036854775808,18446744073709551615]"},
        {"83d9d9f701d81c02d9565200", "[1,2,false]"},
        {"a26161016161f5", "{\"a\":true}"},
        {"f93c00", "1"},
        {"f9c000", "-2"},
        {"fa47c35000", "100000"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char msg[AEMP_JSON_ERRMAX];
        int code;
        size_t n;
        unsigned char *b = t_unhex(cases[k].hex, &n);
        if (k == 3) n = 3; /* the 02 was not part of it */
        json_t *v = aemp_cbor_decode(b, n, 0, &code, msg, sizeof msg);
        if (!v) t_fail(__FILE__, __LINE__, "%s: %s", cases[k].hex, msg);
        CHECK_VALUE(cases[k].hex, v, cases[k].json);
        json_decref(v);
        free(b);
    }
}

/* ------------------------------------------------------------------ */
/* Against the local perl */

static int have_cbor_xs(void)
{
    return system("perl -MCBOR::XS -MJSON::XS -e 1 >/dev/null 2>&1") == 0;
}

/* Our encoding of every vector's json (and of more values) decoded by
 * CBOR::XS is the value JSON::XS reads from the text; and CBOR::XS's
 * encoding of what JSON::XS read is ours (up to hash key order). */
TEST(cbor_perl_reads_ours)
{
    if (!have_cbor_xs()) {
        printf("    skipped: perl with CBOR::XS and JSON::XS not found\n");
        return;
    }
    static const char script[] =
        "use strict; use CBOR::XS; use JSON::XS;\n"
        "my $j = JSON::XS->new->utf8->canonical->allow_nonref;\n"
        "while (my $l = <STDIN>) { chomp $l; my ($op, $x) = split / /, $l;\n"
        "  if ($op eq 'c') { print $j->encode(decode_cbor(pack 'H*', $x)), \"\\n\" }\n"
        "  else { print unpack('H*', encode_cbor($j->decode(pack 'H*', $x))), \"\\n\" } }\n";
    static const char *extra[] = {
        "[0.333333333333333,-2.5,3.0,1e300,1.5e-07,-0.0,4294967296.0]",
        "[-9223372036854775808,9223372036854775807,18446744073709551615,-1]",
        "[{\"\\u00e9\":\"\\u00e9\",\"\\u263a\":\"x\",\"a\\u00e9\\u263a\":[]}]",
        "[\"a\\u0000b\",\"\\ud83d\\ude00\",\"\\u007f\\u0080\\u00ff\"]",
        "[{\"\":{\"\":[null,true,false]}}]",
        "[\"p#1\",\"x\",[[[[[[[[1]]]]]]]]]",
    };
    json_t *vs = t_load_vectors("vectors/cbor.json");
    json_t *texts = json_array();
    size_t i;
    json_t *vec;
    json_array_foreach(json_object_get(vs, "encode"), i, vec)
        json_array_append(texts, json_object_get(vec, "json"));
    for (size_t k = 0; k < sizeof extra / sizeof *extra; k++)
        json_array_append_new(texts, json_string(extra[k]));
    size_t nt = json_array_size(texts);

    aemp__buf_t in = {0};
    json_t *ours = json_array();
    json_array_foreach(texts, i, vec) {
        json_t *v = jdec(json_string_value(vec));
        char *hex = cenc_hex(v);
        REQUIRE(hex);
        json_array_append_new(ours, json_string(hex));
        aemp__buf_append(&in, "c ", 2);
        aemp__buf_append(&in, hex, strlen(hex));
        aemp__buf_append(&in, "\n", 1);
        free(hex);
        json_decref(v);
    }
    json_array_foreach(texts, i, vec) {
        const char *t = json_string_value(vec);
        char *hex = malloc(2 * strlen(t) + 1);
        t_hex((const unsigned char *)t, strlen(t), hex);
        aemp__buf_append(&in, "j ", 2);
        aemp__buf_append(&in, hex, strlen(hex));
        aemp__buf_append(&in, "\n", 1);
        free(hex);
    }
    aemp__buf_append(&in, "", 1);
    char *out = t_run_perl(script, in.data);
    REQUIRE(out);
    char *line = out, *nl;
    size_t k = 0, read_back = 0, same = 0;
    for (; (nl = strchr(line, '\n')) != NULL; line = nl + 1, k++) {
        *nl = 0;
        if (k < nt) {
            /* what Perl decoded from ours, as JSON::XS writes it */
            const char *want = json_string_value(json_array_get(texts, k));
            /* both as JSON carries them: 3.0 and 3 are one number */
            json_t *g0 = jdec(line), *w0 = jdec(want);
            json_t *got = g0 ? over_json(g0) : NULL, *w = w0 ? over_json(w0) : NULL;
            json_decref(g0);
            json_decref(w0);
            if (!got || !w || !json_equal(got, w))
                t_fail(__FILE__, __LINE__, "perl decodes ours as %s, want %s", line, want);
            else
                read_back++;
            json_decref(got);
            json_decref(w);
        } else {
            const char *o = json_string_value(json_array_get(ours, k - nt));
            check_same_item(json_string_value(json_array_get(texts, k - nt)), o, line);
            same++;
        }
    }
    CHECK_INT(read_back, nt);
    CHECK_INT(same, nt);
    free(out);
    aemp__buf_free(&in);
    json_decref(ours);
    json_decref(texts);
    json_decref(vs);
}
