/*
 * test_framer.c - tests of framer.c: every recorded data-phase stream
 * splits into the recorded messages however it is cut, whitespace between
 * texts, top-level non-arrays, limits, and sticky errors.
 */
#include "test.h"
#include "aemp_int.h"

#include <stdarg.h>
#include <stdlib.h>

/* From test_json.c: loads a vectors file with the library's decoder. */

/* How a test feeds the stream. */
enum { CUT_WHOLE, CUT_BYTES, CUT_RANDOM };

typedef struct run {
    json_t *texts; /* the texts found, as strings of their bytes */
    int rc;        /* 0, or the framer's error */
    size_t left;   /* bytes left in the region at the end */
} run_t;

/* Plays a reader: appends chunks to a region and takes texts out as the
 * framer finds them. keep_ws: never drop the whitespace the framer says
 * may be dropped (the framer must cope with both). */
static run_t feed(const char *data, size_t n, int cut, uint64_t seed, int keep_ws,
                  size_t max_len, unsigned max_depth)
{
    aemp_framer_t f;
    aemp__buf_t region = {0};
    run_t r = {json_array(), 0, 0};
    size_t pos = 0;
    aemp_framer_init(&f, max_len, max_depth);
    while (pos < n && !r.rc) {
        size_t k = n - pos;
        if (cut == CUT_BYTES)
            k = 1;
        else if (cut == CUT_RANDOM) {
            uint64_t x = t_rand(&seed);
            size_t want = x % 4 == 0 ? 1 + x / 4 % 3000 : 1 + x / 4 % 40;
            if (want < k) k = want;
        }
        aemp__buf_append(&region, data + pos, k);
        pos += k;
        for (;;) {
            size_t s = 99, e = 99;
            int rc = aemp_framer_next(&f, aemp__buf_head(&region), aemp__buf_size(&region), &s, &e);
            if (rc < 0) {
                r.rc = rc;
                break;
            }
            if (rc == 0) {
                if (s != e) t_fail(__FILE__, __LINE__, "start %zu != end %zu", s, e);
                if (e && e != aemp__buf_size(&region))
                    t_fail(__FILE__, __LINE__, "may drop %zu of %zu", e, aemp__buf_size(&region));
                if (!keep_ws) aemp__buf_consume(&region, e);
                break;
            }
            json_array_append_new(r.texts,
                                  json_stringn_nocheck(aemp__buf_head(&region) + s, e - s));
            aemp__buf_consume(&region, e);
        }
    }
    r.left = aemp__buf_size(&region);
    aemp__buf_free(&region);
    return r;
}

/* Checks that every way of cutting data gives exactly the texts in want
 * (a json array of strings) and the final code rc. */
static void check_split(const char *file, int line, const char *what, const char *data,
                        size_t n, const json_t *want, int want_rc)
{
    for (int cut = CUT_WHOLE; cut <= CUT_RANDOM; cut++) {
        for (int keep = 0; keep < 2; keep++) {
            int rounds = cut == CUT_RANDOM ? 8 : 1;
            for (int i = 0; i < rounds; i++) {
                run_t r = feed(data, n, cut, 1000 + (uint64_t)i, keep, 0, 0);
                if (r.rc != want_rc || !json_equal(r.texts, want)) {
                    char *got = json_dumps(r.texts, JSON_COMPACT);
                    t_fail(file, line, "%s (cut %d, keep_ws %d, round %d): rc %d, want %d; got %.300s",
                           what, cut, keep, i, r.rc, want_rc, got ? got : "?");
                    free(got);
                    json_decref(r.texts);
                    return;
                }
                json_decref(r.texts);
            }
        }
    }
}
#define CHECK_SPLIT(what, data, n, want, rc) \
    check_split(__FILE__, __LINE__, (what), (data), (n), (want), (rc))

/* A json array of the given strings. */
static json_t *strs(const char *first, ...)
{
    json_t *a = json_array();
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        json_array_append_new(a, json_string_nocheck(s));
    va_end(ap);
    return a;
}

static void check_texts(const char *file, int line, const char *data, json_t *want, int rc)
{
    check_split(file, line, data, data, strlen(data), want, rc);
    json_decref(want);
}
#define CHECK_TEXTS(data, rc, ...) \
    check_texts(__FILE__, __LINE__, (data), strs(__VA_ARGS__, (const char *)NULL), (rc))

/* The data-phase bytes one side sent on connection 1: everything after the
 * greeting lines and the auth line. */
static char *data_phase(const json_t *tr, const char *dir, size_t *len)
{
    aemp__buf_t b = {0};
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(tr, "events"), i, ev) {
        if (json_integer_value(json_object_get(ev, "conn")) != 1 ||
            strcmp(json_string_value(json_object_get(ev, "dir")), dir))
            continue;
        size_t n;
        unsigned char *p = t_unhex(json_string_value(json_object_get(ev, "hex")), &n);
        aemp__buf_append(&b, p, n);
        free(p);
    }
    size_t at = 0;
    for (int lines = 0; lines < 3; lines++) {
        char *nl = memchr(b.data + at, '\n', b.len - at);
        if (!nl) {
            aemp__buf_free(&b);
            return NULL;
        }
        at = (size_t)(nl - b.data) + 1;
    }
    *len = b.len - at;
    char *out = malloc(*len + 1);
    memcpy(out, b.data + at, *len);
    aemp__buf_free(&b);
    return out;
}

static const struct {
    const char *name;
    int c2s, s2c; /* which directions are plain json texts */
} sessions[] = {
    {"01-hmac-messages", 1, 1}, {"02-monitor-kill", 1, 1},  {"04-keepalive", 1, 1},
    {"05-dead-peer-timeout", 1, 1}, {"10-raw-cleartext", 1, 1}, {"11-raw-crlf", 1, 1},
    {"12-raw-whitespace", 1, 1}, {"13-raw-storable", 1, 0}, {"26-raw-nonarray", 1, 1},
};

TEST(framer_transcripts)
{
    int streams = 0;
    for (size_t t = 0; t < sizeof sessions / sizeof sessions[0]; t++) {
        json_t *tr = t_load_transcript(sessions[t].name);
        for (int d = 0; d < 2; d++) {
            const char *dir = d ? "s2c" : "c2s";
            if (!(d ? sessions[t].s2c : sessions[t].c2s)) continue;
            json_t *want = json_object_get(json_object_get(tr, "messages"), dir);
            char what[128];

            /* the stream as recorded on the wire */
            size_t n;
            char *wire = data_phase(tr, dir, &n);
            REQUIRE(wire);
            snprintf(what, sizeof what, "%s %s (wire)", sessions[t].name, dir);
            CHECK_SPLIT(what, wire, n, want, 0);
            free(wire);

            /* the stream rebuilt from the messages */
            aemp__buf_t b = {0};
            size_t i;
            json_t *m;
            json_array_foreach(want, i, m)
                aemp__buf_append(&b, json_string_value(m), json_string_length(m));
            snprintf(what, sizeof what, "%s %s (joined)", sessions[t].name, dir);
            CHECK_SPLIT(what, b.data, b.len, want, 0);
            aemp__buf_free(&b);
            streams++;
        }
        json_decref(tr);
    }
    CHECK_INT(streams, 17);
}

TEST(framer_whitespace)
{
    json_t *tr = t_load_transcript("12-raw-whitespace");
    size_t n;
    char *wire = data_phase(tr, "c2s", &n);
    REQUIRE(wire);
    /* LF, blank lines, spaces, TAB, CR LF between and after the texts */
    CHECK(memchr(wire, '\t', n) && memchr(wire, '\r', n));
    run_t r = feed(wire, n, CUT_WHOLE, 0, 0, 0, 0);
    CHECK_INT(r.rc, 0);
    CHECK_INT(json_array_size(r.texts), 3);
    CHECK_INT(r.left, 0); /* the trailing spaces were dropped */
    json_decref(r.texts);
    r = feed(wire, n, CUT_WHOLE, 0, 1, 0, 0);
    CHECK_INT(r.left, 3); /* or kept, when the caller prefers */
    json_decref(r.texts);
    free(wire);
    json_decref(tr);

    CHECK_TEXTS(" \t\r\n[1] \n [2]\r\n", 0, "[1]", "[2]");
    CHECK_TEXTS("[ 1 , [ ] ]{ \"a\" : 1 }", 0, "[ 1 , [ ] ]", "{ \"a\" : 1 }");
    /* only these four are whitespace */
    CHECK_TEXTS("[1]\f[2]", AEMP_EBADMSG, "[1]");
    CHECK_TEXTS("[1]\v", AEMP_EBADMSG, "[1]");
    CHECK_TEXTS("\xef\xbb\xbf[1]", AEMP_EBADMSG, NULL);
}

TEST(framer_nonarray)
{
    /* transcript 26: top-level values that are not arrays */
    CHECK_TEXTS("{\"a\":1}\"abc\"042null[\"\",\"lookup\"]", 0, "{\"a\":1}", "\"abc\"", "0",
                "42", "null", "[\"\",\"lookup\"]");
    CHECK_TEXTS("true false null", 0, "true", "false", "null");
    CHECK_TEXTS("truefalse\"x\"null", 0, "true", "false", "\"x\"", "null");
    /* a number is complete only once the byte after it is there */
    CHECK_TEXTS("42", 0, NULL);
    CHECK_TEXTS("42 ", 0, "42");
    CHECK_TEXTS("-0.5e+10[]", 0, "-0.5e+10", "[]");
    CHECK_TEXTS("1E5\"s\"", 0, "1E5", "\"s\"");
    CHECK_TEXTS("0 -1 2.5 3e3 -0 0.0 ", 0, "0", "-1", "2.5", "3e3", "-0", "0.0");
    /* 0 cannot be followed by a digit, so "00" is two numbers */
    CHECK_TEXTS("00 ", 0, "0", "0");
    CHECK_TEXTS("1-2 ", 0, "1", "-2");
    /* malformed numbers and literals */
    CHECK_TEXTS("-x", AEMP_EBADMSG, NULL);
    CHECK_TEXTS("- 1", AEMP_EBADMSG, NULL);
    CHECK_TEXTS("1.]", AEMP_EBADMSG, NULL);
    CHECK_TEXTS("1.5e]", AEMP_EBADMSG, NULL);
    CHECK_TEXTS("1e+ ", AEMP_EBADMSG, NULL);
    CHECK_TEXTS("1+", AEMP_EBADMSG, "1");
    CHECK_TEXTS("1.5.", AEMP_EBADMSG, "1.5");
    CHECK_TEXTS("nul", 0, NULL);
    CHECK_TEXTS("nulL", AEMP_EBADMSG, NULL);
    CHECK_TEXTS("tru ", AEMP_EBADMSG, NULL);
    CHECK_TEXTS("nullx", AEMP_EBADMSG, "null");
    /* strings */
    CHECK_TEXTS("\"a\\\"b\\\\\"\"c\"", 0, "\"a\\\"b\\\\\"", "\"c\"");
    CHECK_TEXTS("\"[{\"[\"]}\\\"\"]", 0, "\"[{\"", "[\"]}\\\"\"]");
    CHECK_TEXTS("\"unterminated", 0, NULL);
}

TEST(framer_bad_start)
{
    for (int c = 0; c < 256; c++) {
        if (strchr(" \t\r\n[{\"-0123456789tfn", c) && c) continue;
        char in[2] = {(char)c, '1'};
        aemp_framer_t f;
        size_t s, e;
        aemp_framer_init(&f, 0, 0);
        int rc = aemp_framer_next(&f, in, 2, &s, &e);
        if (rc != AEMP_EBADMSG) t_fail(__FILE__, __LINE__, "byte 0x%02x: rc %d", c, rc);
        char want[80];
        snprintf(want, sizeof want, "unexpected byte 0x%02x where a JSON text should start", c);
        CHECK_STR(aemp_framer_error(&f), want);
    }
    /* what the framer does not check is left to the decoder */
    CHECK_TEXTS("[}{]", 0, "[}", "{]");
}

TEST(framer_bad_sessions)
{
    char err[AEMP_JSON_ERRMAX];
    size_t n;
    /* 23: bad JSON - the framer finds the end, the decoder refuses it */
    json_t *tr = t_load_transcript("23-raw-badjson");
    char *wire = data_phase(tr, "c2s", &n);
    run_t r = feed(wire, n, CUT_BYTES, 0, 0, 0, 0);
    CHECK_INT(r.rc, 0);
    REQUIRE(json_array_size(r.texts) == 1);
    json_t *t = json_array_get(r.texts, 0);
    CHECK(aemp_json_decode(json_string_value(t), json_string_length(t), 0, err, sizeof err) == NULL);
    CHECK_STR(err, "unexpected byte 0x7d at offset 20");
    json_decref(r.texts);
    free(wire);
    json_decref(tr);

    /* 24: invalid UTF-8 inside a string */
    tr = t_load_transcript("24-raw-badutf8");
    wire = data_phase(tr, "c2s", &n);
    r = feed(wire, n, CUT_RANDOM, 5, 0, 0, 0);
    CHECK_INT(r.rc, 0);
    REQUIRE(json_array_size(r.texts) == 1);
    t = json_array_get(r.texts, 0);
    CHECK(aemp_json_decode(json_string_value(t), json_string_length(t), 0, err, sizeof err) == NULL);
    CHECK_STR(err, "invalid UTF-8 at offset 15");
    json_decref(r.texts);
    free(wire);
    json_decref(tr);

    /* 25: 601 levels - refused before the text is even complete */
    tr = t_load_transcript("25-raw-deep");
    wire = data_phase(tr, "c2s", &n);
    for (int cut = CUT_WHOLE; cut <= CUT_RANDOM; cut++) {
        aemp_framer_t f;
        size_t s, e, fed = 0;
        int rc = 0;
        aemp_framer_init(&f, 0, 0);
        while (rc == 0 && fed < n) {
            fed = cut == CUT_WHOLE ? n : cut == CUT_BYTES ? fed + 1 : (fed + 7 < n ? fed + 7 : n);
            rc = aemp_framer_next(&f, wire, fed, &s, &e);
        }
        CHECK_INT(rc, AEMP_ELIMIT);
        CHECK_STR(aemp_framer_error(&f), "nesting deeper than 512");
        /* refused at the bracket that makes depth 513: the outer array
         * ("[\"\",\"devnull\",", 14 bytes) and 512 inner ones */
        if (cut == CUT_BYTES) CHECK_INT(fed, 14 + 512);
    }
    free(wire);
    json_decref(tr);
}

TEST(framer_max_len)
{
    run_t r;
    /* exactly max_len is fine, one more is not */
    r = feed("[1,2,3,45][1,2,3,456]", 21, CUT_WHOLE, 0, 0, 10, 0);
    CHECK_INT(r.rc, AEMP_ELIMIT);
    CHECK_INT(json_array_size(r.texts), 1);
    json_decref(r.texts);
    r = feed("[1,2,3,45][1,2,3,456]", 21, CUT_BYTES, 0, 0, 10, 0);
    CHECK_INT(r.rc, AEMP_ELIMIT);
    CHECK_INT(json_array_size(r.texts), 1);
    json_decref(r.texts);
    /* an incomplete text is refused as soon as it cannot fit any more */
    aemp_framer_t f;
    size_t s, e;
    aemp_framer_init(&f, 10, 0);
    CHECK_INT(aemp_framer_next(&f, "[\"abcdef", 8, &s, &e), 0);
    CHECK_INT(aemp_framer_next(&f, "[\"abcdefgh", 10, &s, &e), AEMP_ELIMIT);
    CHECK_STR(aemp_framer_error(&f), "JSON text longer than 10 bytes");
    /* leading whitespace does not count */
    r = feed("      [1,2,3,45]", 16, CUT_WHOLE, 0, 1, 10, 0);
    CHECK_INT(r.rc, 0);
    CHECK_INT(json_array_size(r.texts), 1);
    json_decref(r.texts);
    /* strings, numbers and literals too */
    r = feed("\"abc\" \"abcd\"", 12, CUT_RANDOM, 3, 0, 5, 0);
    CHECK_INT(r.rc, AEMP_ELIMIT);
    CHECK_INT(json_array_size(r.texts), 1);
    json_decref(r.texts);
    r = feed("123 1234 ", 9, CUT_BYTES, 0, 0, 3, 0);
    CHECK_INT(r.rc, AEMP_ELIMIT);
    CHECK_INT(json_array_size(r.texts), 1);
    json_decref(r.texts);
    aemp_framer_init(&f, 3, 0);
    CHECK_INT(aemp_framer_next(&f, "123", 3, &s, &e), 0); /* might still end */
    CHECK_INT(aemp_framer_next(&f, "123]", 4, &s, &e), 1);
    CHECK_INT(e, 3);
    r = feed("null true false", 15, CUT_BYTES, 0, 0, 4, 0);
    CHECK_INT(r.rc, AEMP_ELIMIT);
    CHECK_INT(json_array_size(r.texts), 2);
    json_decref(r.texts);
    /* the default is 64 MiB */
    aemp_framer_init(&f, 0, 0);
    CHECK_INT(f.max_len_, AEMP_DEFAULT_MAX_MESSAGE);
}

TEST(framer_max_depth)
{
    const char *ok3 = "[[[1]]]{\"a\":{\"b\":[]}}[\"[[[[[[\"]";
    run_t r = feed(ok3, strlen(ok3), CUT_BYTES, 0, 0, 0, 3);
    CHECK_INT(r.rc, 0);
    CHECK_INT(json_array_size(r.texts), 3);
    json_decref(r.texts);
    aemp_framer_t f;
    size_t s, e;
    aemp_framer_init(&f, 0, 3);
    CHECK_INT(aemp_framer_next(&f, "[[[", 3, &s, &e), 0);
    CHECK_INT(aemp_framer_next(&f, "[[[{", 4, &s, &e), AEMP_ELIMIT);
    CHECK_STR(aemp_framer_error(&f), "nesting deeper than 3");
    /* 512 is fine by default, 513 is not */
    char deep[2 * 513];
    memset(deep, '[', 513);
    memset(deep + 513, ']', 513);
    r = feed(deep + 1, 1024, CUT_WHOLE, 0, 0, 0, 0);
    CHECK_INT(r.rc, 0);
    CHECK_INT(json_array_size(r.texts), 1);
    json_decref(r.texts);
    r = feed(deep, 1026, CUT_WHOLE, 0, 0, 0, 0);
    CHECK_INT(r.rc, AEMP_ELIMIT);
    json_decref(r.texts);
    /* a million brackets in one go stop at the 513th */
    size_t n = 1000000;
    char *big = malloc(n);
    memset(big, '[', n);
    aemp_framer_init(&f, 0, 0);
    CHECK_INT(aemp_framer_next(&f, big, n, &s, &e), AEMP_ELIMIT);
    free(big);
}

TEST(framer_errors_sticky)
{
    aemp_framer_t f;
    size_t s = 7, e = 7;
    aemp_framer_init(&f, 0, 0);
    CHECK_STR(aemp_framer_error(&f), "");
    CHECK_INT(aemp_framer_next(&f, "[1]", 3, &s, &e), 1);
    CHECK_INT(aemp_framer_next(&f, "]", 1, &s, &e), AEMP_EBADMSG);
    CHECK_STR(aemp_framer_error(&f), "unexpected byte 0x5d where a JSON text should start");
    CHECK_INT(aemp_framer_next(&f, "[1]", 3, &s, &e), AEMP_EBADMSG);
    CHECK_INT(aemp_framer_next(&f, "", 0, &s, &e), AEMP_EBADMSG);
    CHECK_STR(aemp_framer_error(&f), "unexpected byte 0x5d where a JSON text should start");
    aemp_framer_init(&f, 0, 2);
    CHECK_INT(aemp_framer_next(&f, "[[[", 3, &s, &e), AEMP_ELIMIT);
    CHECK_INT(aemp_framer_next(&f, "[1]", 3, &s, &e), AEMP_ELIMIT);
    /* init starts afresh */
    aemp_framer_init(&f, 0, 0);
    CHECK_INT(aemp_framer_next(&f, "[1]", 3, &s, &e), 1);
}

TEST(framer_api_edges)
{
    aemp_framer_t f;
    size_t s = 7, e = 7;
    aemp_framer_init(&f, 0, 0);
    /* an empty region */
    CHECK_INT(aemp_framer_next(&f, "", 0, &s, &e), 0);
    CHECK_INT(e, 0);
    CHECK_INT(aemp_framer_next(&f, NULL, 0, &s, &e), 0);
    /* a partial text: nothing may be dropped, not even the whitespace */
    CHECK_INT(aemp_framer_next(&f, "  [1,", 5, &s, &e), 0);
    CHECK_INT(s, 0);
    CHECK_INT(e, 0);
    /* a region shorter than what was scanned is a caller bug, not sticky */
    CHECK_INT(aemp_framer_next(&f, "  [", 3, &s, &e), AEMP_EINVAL);
    CHECK_INT(aemp_framer_next(&f, "  [1,2]  ", 9, &s, &e), 1);
    CHECK_INT(s, 2);
    CHECK_INT(e, 7);
    /* a backslash as the last byte of a region */
    aemp_framer_init(&f, 0, 0);
    CHECK_INT(aemp_framer_next(&f, "[\"\\", 3, &s, &e), 0);
    CHECK_INT(aemp_framer_next(&f, "[\"\\\"", 4, &s, &e), 0);
    CHECK_INT(aemp_framer_next(&f, "[\"\\\"\"]", 6, &s, &e), 1);
    CHECK_INT(e, 6);
}

/* Random values written by the encoder, joined with random whitespace,
 * cut at random places: the framer gives back exactly the texts. */
TEST(framer_random_streams)
{
    uint64_t seed = 99;
    static const char *const ws[] = {"", "", "", " ", "\n", "\r\n", "\t ", "  \n\n  "};
    static const char *const pieces[] = {
        "\"", "\\", "\\\"", "[", "]", "{", "}", "a", "\xc3\xa9", ",", ":", " ", "\n",
    };
    for (int round = 0; round < 300; round++) {
        aemp__buf_t stream = {0};
        json_t *want = json_array();
        int count = 1 + (int)(t_rand(&seed) % 40);
        for (int i = 0; i < count; i++) {
            json_t *v = json_array();
            int k = (int)(t_rand(&seed) % 6);
            for (int j = 0; j < k; j++) {
                uint64_t r = t_rand(&seed);
                if (r % 3 == 0) {
                    char s[64];
                    size_t sl = 0;
                    int parts = (int)(r / 3 % 8);
                    for (int q = 0; q < parts; q++) {
                        const char *p = pieces[t_rand(&seed) % (sizeof pieces / sizeof pieces[0])];
                        memcpy(s + sl, p, strlen(p));
                        sl += strlen(p);
                    }
                    json_array_append_new(v, json_stringn(s, sl));
                } else if (r % 3 == 1) {
                    json_array_append_new(v, json_pack("{s:[i,{}]}", "k]", (int)(r % 1000)));
                } else {
                    json_array_append_new(v, json_integer((json_int_t)(r >> 3)));
                }
            }
            /* sometimes a top-level scalar, followed by a byte that ends it */
            if (t_rand(&seed) % 10 == 0) {
                json_decref(v);
                v = t_rand(&seed) % 2 ? json_integer(-17) : json_string("x\"]");
            }
            size_t n;
            char *s = aemp_json_encode(v, &n);
            aemp__buf_append(&stream, s, n);
            json_array_append_new(want, json_stringn_nocheck(s, n));
            const char *w = ws[t_rand(&seed) % (sizeof ws / sizeof ws[0])];
            if (json_is_integer(v) && !*w) w = " ";
            aemp__buf_append(&stream, w, strlen(w));
            free(s);
            json_decref(v);
        }
        run_t r = feed(stream.data, stream.len, CUT_RANDOM, seed, round & 1, 0, 0);
        if (r.rc || !json_equal(r.texts, want)) {
            t_fail(__FILE__, __LINE__, "round %d: rc %d, %zu texts of %zu", round, r.rc,
                   json_array_size(r.texts), json_array_size(want));
            json_decref(r.texts);
            json_decref(want);
            aemp__buf_free(&stream);
            return;
        }
        json_decref(r.texts);
        json_decref(want);
        aemp__buf_free(&stream);
    }
}

/* Whatever the bytes, the outcome (texts, then the final code) does not
 * depend on how the stream is cut, also near the limits. */
TEST(framer_cut_invariance)
{
    /* mostly pieces that keep a stream going, now and then a byte that
     * breaks it */
    static const char *const pieces[] = {
        "[", "]", "{", "}", "[]", "[1,2]", "{\"a\":[]}", "\"ab\"", "\"\\\"\"", "\"[\"",
        "\"}\\\\\"", ",", ":", " ", "\n", "0", "42", "-0.5e+3", "1E9", "true", "false",
        "null", "nu", "\"\xc3\xa9\"",
    };
    static const char rare[] = "+E-.\xc3\xff}]xe";
    uint64_t seed = 31337;
    size_t texts = 0;
    for (int round = 0; round < 20000; round++) {
        char s[128];
        size_t n = 0, want = 1 + t_rand(&seed) % 100;
        while (n < want) {
            uint64_t r = t_rand(&seed);
            if (r % 40 == 0) {
                s[n++] = rare[r / 40 % (sizeof rare - 1)];
            } else {
                const char *p = pieces[r / 40 % (sizeof pieces / sizeof pieces[0])];
                memcpy(s + n, p, strlen(p));
                n += strlen(p);
            }
        }
        size_t max_len = round % 3 ? 0 : 1 + t_rand(&seed) % 12;
        unsigned max_depth = round % 2 ? 0 : 1 + (unsigned)(t_rand(&seed) % 4);
        run_t whole = feed(s, n, CUT_WHOLE, 0, 0, max_len, max_depth);
        for (int cut = CUT_BYTES; cut <= CUT_RANDOM; cut++) {
            run_t r = feed(s, n, cut, seed, round & 1, max_len, max_depth);
            if (r.rc != whole.rc || !json_equal(r.texts, whole.texts)) {
                t_fail(__FILE__, __LINE__, "round %d (%.*s), cut %d: rc %d vs %d", round,
                       (int)n, s, cut, r.rc, whole.rc);
                round = 1 << 30;
            }
            json_decref(r.texts);
        }
        texts += json_array_size(whole.texts);
        json_decref(whole.texts);
    }
    CHECK(texts > 20000);
}
