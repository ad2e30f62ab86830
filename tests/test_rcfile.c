/*
 * test_rcfile.c - protocol-1 configuration (src/rcfile.c, the host:port
 * helpers of src/addr.c): the relaxed JSON reader, the writer, profile
 * resolution and precedence, the effective values (secret bytes per code
 * point, node-id expansion with injected randomness, lists and times),
 * the file layer, and bind/seed entries. Inputs come from the p1 vectors
 * where they exist: the rc file of transcript 11, the node ids the Perl
 * tool made there, the rc-file secret and the gensecret form of auth.json.
 */
#include "test.h"

#include <ev.h>
#include "aemp.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parses text; NULL (and err) on failure. */
static json_t *parse(const char *text, char *err)
{
    return aemp_rc_parse(text, strlen(text), err, AEMP_RC_ERRMAX);
}

static json_t *parse_ok(const char *text)
{
    char err[AEMP_RC_ERRMAX] = "";
    json_t *v = parse(text, err);
    if (!v) t_fail(__FILE__, __LINE__, "parse failed for %s: %s", text, err);
    return v;
}

/* Parses text and compares with strict JSON want. */
static void check_same(const char *text, const char *want)
{
    json_t *v = parse_ok(text);
    json_t *w = aemp_json_decode(want, strlen(want), 0, NULL, 0);
    if (!v || !w || !json_equal(v, w)) t_fail(__FILE__, __LINE__, "%s != %s", text, want);
    json_decref(v);
    json_decref(w);
}

/* Parsing fails with a message containing what. */
static void check_bad(const char *text, const char *what)
{
    char err[AEMP_RC_ERRMAX] = "";
    json_t *v = parse(text, err);
    if (v || !strstr(err, what))
        t_fail(__FILE__, __LINE__, "'%s': want error with '%s', got '%s'", text, what,
               v ? "(parsed)" : err);
    json_decref(v);
}

/* The rc file the Perl tool ran with in transcript 11, from its
 * description ("... rc file ~/.perl-anyevent-mp = {...} (the seed ..."). */
static char *t11_rcfile(void)
{
    json_t *t = t_load_vectors("vectors/p1/transcripts/11-aemp-cli.json");
    const char *d = json_string_value(json_object_get(t, "description"));
    const char *s = d ? strstr(d, ".perl-anyevent-mp = {") : NULL;
    const char *e = s ? strstr(s, "} (the seed") : NULL;
    char *r = NULL;
    if (s && e) {
        s += strlen(".perl-anyevent-mp = ");
        r = strndup(s, (size_t)(e - s + 1));
    }
    json_decref(t);
    return r;
}

TEST(rcfile_parse_relaxed)
{
    char *rc = t11_rcfile();
    REQUIRE(rc != NULL);
    json_t *v = parse_ok(rc);
    REQUIRE(v != NULL);
    CHECK_STR(json_string_value(json_object_get(v, "secret")), "aemp-interop-secret");
    CHECK_STR(json_string_value(json_array_get(json_object_get(v, "binds"), 0)), "127.0.0.1:*");
    CHECK_INT(json_integer_value(json_object_get(v, "version")), 1);
    json_decref(v);
    free(rc);

    /* the relaxed forms JSON::XS accepts */
    check_same("{\"a\":[1,2,],\"b\":{\"c\":1,},}", "{\"a\":[1,2],\"b\":{\"c\":1}}");
    check_same("{\"a\":[1 , ] , }", "{\"a\":[1]}");
    check_same("# leading comment\n{ # after brace\n\"a\" : 1, # trailing comma next\n}\n# end",
               "{\"a\":1}");
    check_same("{\"a\":\"x#y\", \"b\":\"q\\\"#\"}", "{\"a\":\"x#y\",\"b\":\"q\\\"#\"}");
    check_same("{\"a\":\"t\tab\"}", "{\"a\":\"t\\tab\"}");
    check_same("{\"a\":[1,#c\n]}", "{\"a\":[1]}");
    check_same("{\"a\":1#c\r,\"b\":2}", "{\"a\":1,\"b\":2}");
    check_same("{\"gr\\u00fc\\u00df\":\"gr\xc3\xbc\xc3\x9f\"}",
               "{\"gr\xc3\xbc\xc3\x9f\":\"gr\\u00fc\\u00df\"}");

    /* not relaxed enough for JSON::XS either */
    check_bad("{\"a\":[,]}", "line 1, column 7");
    check_bad("{\"a\":[1,,]}", "line 1, column 9");
    check_bad("{\"a\":,}", "line 1, column 6");
    check_bad("{,}", "line 1, column 2");
    check_bad("{\"a\" // c\n:1}", "line 1, column 6");
    check_bad("{'a':1}", "line 1, column 2");
    check_bad("{\"a\":1}{}", "line 1, column 8");
    /* positions count the input, not the rewritten text (tab) */
    check_bad("{\n  \"a\":\"\t\t\",\n  \"b\": x}", "line 3, column 8");
    check_bad("", "line 1, column 1");
    check_bad("{\"a\":\"\xff\"}", "invalid UTF-8");
    check_bad("[1,2]", "holds an array, not a JSON object");
    check_bad("\"x\"", "holds a string");
    check_bad("# only a comment", "unexpected end");
}

TEST(rcfile_format_perl_layout)
{
    json_t *v = parse_ok("{\"version\":1,\"seeds\":[\"a:1\",\"b:2\"],\"binds\":[],\"profile\":"
                         "{\"seed\":{\"secret\":\"gr\\u00fc\\u00df\",\"x\":{}},\"a\":{}},"
                         "\"secure\":\"1\",\"f\":0.5}");
    REQUIRE(v != NULL);
    size_t len = 0;
    char *text = aemp_rc_format(v, &len);
    REQUIRE(text != NULL);
    /* JSON::XS->new->pretty->canonical->utf8: sorted keys, 3-space indent,
     * "key" : value, raw UTF-8, one LF at the end */
    CHECK_STR(text, "{\n"
                    "   \"binds\" : [],\n"
                    "   \"f\" : 0.5,\n"
                    "   \"profile\" : {\n"
                    "      \"a\" : {},\n"
                    "      \"seed\" : {\n"
                    "         \"secret\" : \"gr\xc3\xbc\xc3\x9f\",\n"
                    "         \"x\" : {}\n"
                    "      }\n"
                    "   },\n"
                    "   \"secure\" : \"1\",\n"
                    "   \"seeds\" : [\n"
                    "      \"a:1\",\n"
                    "      \"b:2\"\n"
                    "   ],\n"
                    "   \"version\" : 1\n"
                    "}\n");
    CHECK_INT(len, strlen(text));
    /* and it reads back the same */
    json_t *back = parse_ok(text);
    CHECK(back && json_equal(back, v));
    json_decref(back);
    free(text);
    json_decref(v);
    /* key order is by bytes; a key with a NUL byte is written escaped */
    json_t *o = json_object();
    json_object_set_new(o, "b", json_true());
    json_object_set_new(o, "B", json_null());
    json_object_setn_new(o, "a\0z", 3, json_integer(-3));
    text = aemp_rc_format(o, NULL);
    CHECK_STR(text, "{\n   \"B\" : null,\n   \"a\\u0000z\" : -3,\n   \"b\" : true\n}\n");
    free(text);
    json_decref(o);
}

/* The merged value of key for profile name, as compact JSON. */
static void check_merged(const json_t *rc, const char *name, const json_t *args, unsigned flags,
                         const char *key, const char *want)
{
    char err[AEMP_RC_ERRMAX] = "";
    json_t *m = aemp_rc_profile(rc, name, args, flags, err, sizeof err);
    if (!m) {
        t_fail(__FILE__, __LINE__, "profile %s: %s", name ? name : "(top)", err);
        return;
    }
    json_t *v = json_object_get(m, key);
    char *got = v ? aemp_json_encode(v, NULL) : strdup("(absent)");
    if (strcmp(got, want))
        t_fail(__FILE__, __LINE__, "profile %s key %s: %s != %s", name ? name : "(top)", key, got,
               want);
    free(got);
    json_decref(m);
}

TEST(rcfile_profile_precedence)
{
    json_t *rc = parse_ok("{\"version\":1, \"secret\":\"top\", \"seeds\":[\"top:1\"],"
                          " \"monitor_timeout\":10,"
                          " \"profile\":{"
                          "   \"base\":{\"seeds\":[\"base:1\"], \"binds\":[\"base:2\"]},"
                          "   \"mid\":{\"parent\":\"base\", \"binds\":[\"mid:2\"], \"nodeid\":\"m/\"},"
                          "   \"leaf\":{\"parent\":\"mid\", \"nodeid\":\"leaf\"},"
                          "   \"orphan\":{\"parent\":\"nothere\", \"secret\":\"o\"},"
                          "   \"nullparent\":{\"parent\":null}}}");
    json_t *args = parse_ok("{\"secret\":\"arg\", \"connect_interval\":7, \"nodeid\":\"argid\","
                            " \"monitor_timeout\":99}");
    REQUIRE(rc && args);
    /* built-in defaults */
    check_merged(NULL, "x", NULL, 0, "monitor_timeout", "30");
    check_merged(NULL, "x", NULL, 0, "connect_interval", "2");
    check_merged(NULL, "x", NULL, 0, "framing_format", "[\"cbor\",\"json\",\"storable\"]");
    check_merged(NULL, "x", NULL, 0, "auth_offer", "[\"tls_sha3_512\",\"hmac_sha3_512\"]");
    check_merged(NULL, "x", NULL, 0, "auth_accept",
                 "[\"tls_sha3_512\",\"hmac_sha3_512\",\"tls_anon\",\"cleartext\"]");
    /* defaults < args < top level < parents < profile */
    check_merged(rc, "leaf", args, 0, "connect_interval", "7");
    check_merged(rc, "leaf", args, 0, "monitor_timeout", "10");
    check_merged(rc, "leaf", args, 0, "secret", "\"top\"");
    check_merged(rc, "leaf", args, 0, "seeds", "[\"base:1\"]");
    check_merged(rc, "leaf", args, 0, "binds", "[\"mid:2\"]");
    check_merged(rc, "leaf", args, 0, "nodeid", "\"leaf\"");
    check_merged(rc, "mid", args, 0, "nodeid", "\"m/\"");
    check_merged(rc, "base", args, 0, "nodeid", "\"argid\"");
    /* force: the program's arguments win */
    check_merged(rc, "leaf", args, AEMP_RC_FORCE, "nodeid", "\"argid\"");
    check_merged(rc, "leaf", args, AEMP_RC_FORCE, "secret", "\"arg\"");
    check_merged(rc, "leaf", args, AEMP_RC_FORCE, "monitor_timeout", "99");
    check_merged(rc, "leaf", args, AEMP_RC_FORCE, "seeds", "[\"base:1\"]");
    /* norc: the file is not looked at */
    check_merged(rc, "leaf", args, AEMP_RC_NORC, "secret", "\"arg\"");
    check_merged(rc, "leaf", NULL, AEMP_RC_NORC, "seeds", "(absent)");
    /* missing profiles and parents are empty; null parent is no parent */
    check_merged(rc, "nosuch", NULL, 0, "secret", "\"top\"");
    check_merged(rc, "orphan", NULL, 0, "secret", "\"o\"");
    check_merged(rc, "orphan", NULL, 0, "seeds", "[\"top:1\"]");
    check_merged(rc, "nullparent", NULL, 0, "seeds", "[\"top:1\"]");
    /* name NULL: the top level, as Perl's find_profile(undef) */
    check_merged(rc, NULL, NULL, 0, "secret", "\"top\"");
    check_merged(rc, NULL, NULL, 0, "version", "1");
    json_decref(rc);
    json_decref(args);
}

TEST(rcfile_profile_errors)
{
    char err[AEMP_RC_ERRMAX];
    json_t *rc = parse_ok("{\"profile\":{\"a\":{\"parent\":\"b\"},\"b\":{\"parent\":\"c\"},"
                          "\"c\":{\"parent\":\"a\"},\"self\":{\"parent\":\"self\"},"
                          "\"d\":{\"parent\":\"a\"},\"n\":{\"parent\":5},\"s\":\"str\"}}");
    REQUIRE(rc != NULL);
    CHECK(aemp_rc_profile(rc, "a", NULL, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "profile parent cycle: a -> b -> c -> a");
    CHECK(aemp_rc_profile(rc, "d", NULL, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "profile parent cycle: d -> a -> b -> c -> a");
    CHECK(aemp_rc_profile(rc, "self", NULL, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "profile parent cycle: self -> self");
    CHECK(aemp_rc_profile(rc, "n", NULL, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "the parent of profile 'n' is not a string");
    CHECK(aemp_rc_profile(rc, "s", NULL, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "profile 's' is not a JSON object");
    /* a cycle that is not walked does not matter */
    json_t *m = aemp_rc_profile(rc, "other", NULL, 0, err, sizeof err);
    CHECK(m != NULL);
    json_decref(m);
    json_decref(rc);
    rc = parse_ok("{\"profile\":[1]}");
    CHECK(aemp_rc_profile(rc, "a", NULL, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "\"profile\" is not a JSON object");
    json_decref(rc);
    /* a long chain ends with an error, not a crash */
    json_t *big = json_object(), *profs = json_object();
    json_object_set_new(big, "profile", profs);
    for (int i = 0; i < 150; i++) {
        char n[16], p[16];
        snprintf(n, sizeof n, "p%d", i);
        snprintf(p, sizeof p, "p%d", i + 1);
        json_object_set_new(profs, n, json_pack("{s:s}", "parent", p));
    }
    CHECK(aemp_rc_profile(big, "p0", NULL, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "profile parent chain longer than 100");
    m = aemp_rc_profile(big, "p60", NULL, 0, err, sizeof err);
    CHECK(m != NULL);
    json_decref(m);
    json_decref(big);
}

TEST(rcfile_secret_code_points)
{
    unsigned char out[64];
    size_t n = 0;
    char err[AEMP_RC_ERRMAX];
    /* "grüß" is 67 72 fc df, not its UTF-8 */
    CHECK_INT(aemp_secret_from_utf8("gr\xc3\xbc\xc3\x9f", 6, out, &n, err, sizeof err), 0);
    CHECK_INT(n, 4);
    CHECK_MEM(out, "\x67\x72\xfc\xdf", 4);
    /* auth.json's rc-file vector: the JSON string "gr\u00fc\u00df-secret"
     * keys the HMAC with its secret_hex */
    json_t *vec = t_load_vectors("vectors/p1/auth.json");
    json_t *vs = json_object_get(vec, "vectors"), *rcv = NULL, *gen = NULL;
    for (size_t i = 0; i < json_array_size(vs); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(vs, i), "id"));
        if (id && !strcmp(id, "hmac-rcfile-text")) rcv = json_array_get(vs, i);
        if (id && !strcmp(id, "hmac-gensecret")) gen = json_array_get(vs, i);
    }
    REQUIRE(rcv && gen);
    const char *file = "{\"secret\":\"gr\\u00fc\\u00df-secret\"}";
    json_t *rc = parse_ok(file), *m = aemp_rc_profile(rc, "p", NULL, 0, err, sizeof err);
    aemp_p1_config_t c;
    REQUIRE(m != NULL);
    CHECK_INT(aemp_p1_config_make(&c, m, "p", "h", aemp_random_source, NULL, err, sizeof err), 0);
    size_t wl;
    unsigned char *want = t_unhex(json_string_value(json_object_get(rcv, "secret_hex")), &wl);
    CHECK_INT(c.secret_len, wl);
    if (c.secret_len == wl) CHECK_MEM(c.secret, want, wl);
    free(want);
    aemp_p1_config_free(&c);
    json_decref(m);
    json_decref(rc);
    /* the gensecret vector is 180 characters of what aemp_random_alnum
     * draws from, and ASCII keys the HMAC with the same bytes */
    const char *gs = json_string_value(json_object_get(gen, "secret_text"));
    REQUIRE(gs != NULL);
    CHECK_INT(strlen(gs), AEMP_P1_GENSECRET_LEN);
    static const char alnum[] =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    CHECK_INT(strspn(gs, alnum), AEMP_P1_GENSECRET_LEN);
    unsigned char gb[AEMP_P1_GENSECRET_LEN];
    CHECK_INT(aemp_secret_from_utf8(gs, strlen(gs), gb, &n, err, sizeof err), 0);
    CHECK_INT(n, AEMP_P1_GENSECRET_LEN);
    CHECK_MEM(gb, gs, n);
    json_decref(vec);
    /* above U+00FF: a clear error (2.02 would die in the handshake) */
    CHECK_INT(aemp_secret_from_utf8("ab\xe2\x82\xac", 5, out, &n, err, sizeof err), AEMP_EINVAL);
    CHECK(strstr(err, "character 3 is U+20AC, above U+00FF") != NULL);
    CHECK_INT(aemp_secret_from_utf8("\xf0\x9f\x98\x80", 4, out, &n, err, sizeof err),
              AEMP_EINVAL);
    CHECK(strstr(err, "U+1F600") != NULL);
    CHECK_INT(aemp_secret_from_utf8("a\xc3", 2, out, &n, err, sizeof err), AEMP_EINVAL);
    CHECK_STR(err, "secret: invalid UTF-8 at byte 1");
    CHECK_INT(aemp_secret_from_utf8("", 0, out, &n, err, sizeof err), 0);
    CHECK_INT(n, 0);
    /* through the config: the error names the key */
    rc = parse_ok("{\"secret\":\"\\u20ac\"}");
    m = aemp_rc_profile(rc, "p", NULL, 0, err, sizeof err);
    CHECK_INT(aemp_p1_config_make(&c, m, "p", "h", aemp_random_source, NULL, err, sizeof err),
              AEMP_EINVAL);
    CHECK(strstr(err, "secret: character 1 is U+20AC") != NULL);
    CHECK(c.nodeid == NULL && c.secret == NULL);
    aemp_p1_config_free(&c);
    json_decref(m);
    json_decref(rc);
}

/* Injected randomness: bytes from a fixed list, then 0, 1, 2 ... */
typedef struct fixed_rand {
    const unsigned char *bytes;
    size_t n, pos;
    unsigned calls;
} fixed_rand_t;

static int fixed_source(void *ud, void *buf, size_t len)
{
    fixed_rand_t *f = ud;
    unsigned char *b = buf;
    f->calls++;
    for (size_t i = 0; i < len; i++, f->pos++) b[i] = f->pos < f->n ? f->bytes[f->pos] : (unsigned char)f->pos;
    return 0;
}

static int failing_source(void *ud, void *buf, size_t len)
{
    return -1;
}

/* [0-9A-Za-z]{9}[0-9A-Z] */
static int is_runiq(const char *s)
{
    static const char alnum[] =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    return strlen(s) == 10 && strspn(s, alnum) == 10 && !(s[9] >= 'a' && s[9] <= 'z');
}

static void check_expand(const char *spec, const char *host, const char *want, int want_rand)
{
    /* 61 = 'Z', 62 = '0', 248+ are skipped; then 11, 12 ... */
    static const unsigned char bytes[] = {0, 1, 255, 61, 62, 248, 9, 35, 36, 123, 10};
    fixed_rand_t f = {bytes, sizeof bytes, 0, 0};
    char err[AEMP_RC_ERRMAX] = "";
    int r = -1;
    char *id = aemp_nodeid_expand(spec, strlen(spec), host, fixed_source, &f, &r, err, sizeof err);
    if (!id || strcmp(id, want) || r != want_rand)
        t_fail(__FILE__, __LINE__, "expand '%s': '%s' (%d) != '%s' (%d) %s", spec,
               id ? id : "(null)", r, want, want_rand, err);
    CHECK_INT(f.calls, (unsigned)want_rand);
    free(id);
}

static void check_expand_bad(const char *spec, size_t len, const char *what)
{
    char err[AEMP_RC_ERRMAX] = "";
    char *id = aemp_nodeid_expand(spec, len, "host", aemp_random_source, NULL, NULL, err,
                                  sizeof err);
    if (id || !strstr(err, what))
        t_fail(__FILE__, __LINE__, "expand '%s': want '%s', got '%s'", spec, what,
               id ? id : err);
    free(id);
}

TEST(rcfile_nodeid_expand)
{
    /* bytes 0 1 255 61 62 248 9 35 36 123 10 11 -> 0 1 (skip) Z 0 (skip) 9 z A Z a
     * b (the last one upper-cased) */
    check_expand("aemp/%n/%u", "vm", "aemp/vm/01Z09zAZaB", 1);
    check_expand("client/", "vm", "client/01Z09zAZaB", 1);
    check_expand("x/%u/%u/", "h", "x/01Z09zAZaB/01Z09zAZaB/01Z09zAZaB", 1);
    check_expand("seed1", "vm", "seed1", 0);
    check_expand("%n", "my.host", "my.host", 0);
    check_expand("%n/%n%%n", "h", "h/h%h", 0);
    check_expand("%%u", "h", "%01Z09zAZaB", 1);
    check_expand("100%", "h", "100%", 0);
    check_expand("/", "h", "/01Z09zAZaB", 1);
    /* a "%u" that the host name brings is replaced too (Perl's order) */
    check_expand("%n", "a%u", "a01Z09zAZaB", 1);
    /* the ids the Perl tool made in transcript 11 have our shape */
    json_t *t = t_load_vectors("vectors/p1/transcripts/11-aemp-cli.json");
    json_t *conns = json_object_get(json_object_get(t, "setup"), "connections");
    int seen = 0;
    const char *k;
    json_t *c;
    json_object_foreach(conns, k, c) {
        const char *id = json_string_value(json_object_get(c, "client_node_id"));
        if (id && !strncmp(id, "aemp/vm/", 8)) {
            seen++;
            if (!is_runiq(id + 8)) t_fail(__FILE__, __LINE__, "unexpected id shape %s", id);
        }
    }
    CHECK_INT(seen, 4);
    json_decref(t);
    /* and real randomness gives that shape every time */
    for (int i = 0; i < 200; i++) {
        char *id = aemp_nodeid_expand("aemp/%n/%u", 10, "vm", aemp_random_source, NULL, NULL,
                                      NULL, 0);
        REQUIRE(id && !strncmp(id, "aemp/vm/", 8));
        CHECK(is_runiq(id + 8));
        free(id);
    }
    check_expand_bad("", 0, "empty or \"0\"");
    check_expand_bad("0", 1, "empty or \"0\"");
    check_expand_bad("a#b", 3, "contains '#'");
    check_expand_bad("a;b", 3, "contains ';'");
    check_expand_bad("a\0b", 3, "contains a NUL byte");
    check_expand_bad("a\nb", 3, "contains a line end");
    char err[AEMP_RC_ERRMAX];
    CHECK(aemp_nodeid_expand("x/", 2, "h", failing_source, NULL, NULL, err, sizeof err) == NULL);
    CHECK_STR(err, "no random bytes for the node ID");
    /* nothing random needed: the source is not asked */
    char *id = aemp_nodeid_expand("x", 1, "h", failing_source, NULL, NULL, err, sizeof err);
    CHECK_STR(id, "x");
    free(id);
    char buf[200];
    CHECK_INT(aemp_random_alnum(buf, 180, aemp_random_source, NULL), 0);
    CHECK_INT(strlen(buf), 180);
    CHECK_INT(aemp_random_alnum(buf, 5, failing_source, NULL), AEMP_EIO);
}

/* The effective configuration of profile in rc (text). */
static int make(const char *text, const char *profile, aemp_p1_config_t *c, char *err)
{
    static const unsigned char zero[16] = {0};
    fixed_rand_t f = {zero, sizeof zero, 0, 0};
    json_t *rc = parse_ok(text);
    json_t *m = rc ? aemp_rc_profile(rc, profile, NULL, 0, err, AEMP_RC_ERRMAX) : NULL;
    int r = m ? aemp_p1_config_make(c, m, profile, "vm", fixed_source, &f, err, AEMP_RC_ERRMAX)
              : -100;
    json_decref(m);
    json_decref(rc);
    return r;
}

static void check_make_bad(const char *text, const char *what)
{
    aemp_p1_config_t c;
    char err[AEMP_RC_ERRMAX] = "";
    int r = make(text, "p", &c, err);
    if (r != AEMP_EINVAL || !strstr(err, what))
        t_fail(__FILE__, __LINE__, "%s: want '%s', got %d '%s'", text, what, r, err);
    aemp_p1_config_free(&c);
}

TEST(rcfile_effective_config)
{
    aemp_p1_config_t c;
    char err[AEMP_RC_ERRMAX];
    /* transcript 11's file, profile aemp, node id as the tool sets it */
    char *t11 = t11_rcfile();
    REQUIRE(t11 != NULL);
    json_t *rc = parse_ok(t11), *args = json_pack("{s:s}", "nodeid", "aemp/%n/%u");
    json_t *m = aemp_rc_profile(rc, "aemp", args, 0, err, sizeof err);
    REQUIRE(m != NULL);
    CHECK_INT(aemp_p1_config_make(&c, m, "aemp", "vm", aemp_random_source, NULL, err, sizeof err),
              0);
    CHECK(!strncmp(c.nodeid, "aemp/vm/", 8) && is_runiq(c.nodeid + 8));
    CHECK_INT(c.nodeid_randomised, 1);
    CHECK_INT(c.secret_len, 19);
    CHECK_MEM(c.secret, "aemp-interop-secret", 19);
    CHECK(c.cert == NULL);
    CHECK_INT(c.nbinds, 1);
    CHECK_STR(c.binds[0], "127.0.0.1:*");
    CHECK(c.binds[1] == NULL);
    CHECK_INT(c.nseeds, 1);
    CHECK_INT(c.nframing_format, 1);
    CHECK_STR(c.framing_format[0], "json");
    CHECK_INT(c.nauth_offer, 2);
    CHECK_STR(c.auth_offer[1], "hmac_sha3_512");
    CHECK_INT(c.nauth_accept, 4);
    CHECK_STR(c.auth_accept[3], "cleartext");
    CHECK(c.monitor_timeout == 30 && c.connect_interval == 2);
    CHECK(!c.secure && !c.autocork && c.nodelay);
    CHECK_INT(json_array_size(c.services), 0);
    aemp_p1_config_free(&c);
    aemp_p1_config_free(&c); /* twice is fine: it was zeroed */
    aemp_p1_config_free(NULL);
    json_decref(m);
    json_decref(args);
    json_decref(rc);
    free(t11);

    /* the defaults: id PROFILE/, binds ["*"], no seeds, no secret */
    CHECK_INT(make("{}", "p", &c, err), 0);
    CHECK_STR(c.nodeid, "p/0000000000");
    CHECK_INT(c.nbinds, 1);
    CHECK_STR(c.binds[0], "*");
    CHECK_INT(c.nseeds, 0);
    CHECK(c.seeds && !c.seeds[0]);
    CHECK(c.secret == NULL);
    aemp_p1_config_free(&c);

    /* every key */
    CHECK_INT(make("{\"profile\":{\"p\":{\"nodeid\":\"n%n\",\"secret\":\"\",\"cert\":\"PEM\","
                   "\"binds\":[],\"seeds\":[\"a:1\",\"b:2\"],\"services\":[\"M::\",[\"f\",1]],"
                   "\"secure\":\"0\",\"monitor_timeout\":\" 4.5 \",\"connect_interval\":0,"
                   "\"framing_format\":null,\"auth_offer\":[],\"auth_accept\":[\"cleartext\"],"
                   "\"autocork\":\"yes\",\"nodelay\":\"\",\"eval\":\"1\",\"other\":[]}}}",
                   "p", &c, err),
              0);
    CHECK_STR(c.nodeid, "nvm");
    CHECK_INT(c.nodeid_randomised, 0);
    CHECK(c.secret != NULL);
    CHECK_INT(c.secret_len, 0);
    CHECK_STR(c.cert, "PEM");
    CHECK_INT(c.nbinds, 0);
    CHECK_INT(c.nseeds, 2);
    CHECK_STR(c.seeds[1], "b:2");
    CHECK_INT(json_array_size(c.services), 2);
    CHECK(c.monitor_timeout == 4.5 && c.connect_interval == 0);
    CHECK_INT(c.nframing_format, 0);
    CHECK_INT(c.nauth_offer, 0);
    CHECK_INT(c.nauth_accept, 1);
    CHECK_INT(c.secure, 0);
    CHECK_INT(c.autocork, 1);
    CHECK_INT(c.nodelay, 0);
    aemp_p1_config_free(&c);
    CHECK_INT(make("{\"secure\":1,\"nodelay\":null}", "p", &c, err), 0);
    CHECK_INT(c.secure, 1);
    CHECK_INT(c.nodelay, 0);
    aemp_p1_config_free(&c);

    check_make_bad("{\"nodeid\":null}", "nodeid: not a string");
    check_make_bad("{\"nodeid\":\"a#b\"}", "contains '#'");
    check_make_bad("{\"nodeid\":\"\"}", "illegal node ID");
    check_make_bad("{\"secret\":5}", "secret: not a string");
    check_make_bad("{\"cert\":[]}", "cert: not a string");
    check_make_bad("{\"binds\":\"*:4040\"}", "binds: not a JSON array of strings");
    check_make_bad("{\"seeds\":[\"a\",1]}", "seeds: element 1 is not a string");
    check_make_bad("{\"seeds\":[\"a\\u0000b\"]}", "seeds: element 0");
    check_make_bad("{\"services\":\"M::\"}", "services: not a JSON array");
    /* a failure after a step that went well (found by fuzz_rcfile) */
    check_make_bad("{\"secret\":\"s\",\"services\":\"M::\"}", "services: not a JSON array");
    check_make_bad("{\"secret\":\"s\",\"cert\":1}", "cert: not a string");
    check_make_bad("{\"monitor_timeout\":\"30s\"}", "monitor_timeout: not a number");
    check_make_bad("{\"connect_interval\":-1}", "connect_interval: not a number");
    check_make_bad("{\"monitor_timeout\":true}", "monitor_timeout: not a number");
    check_make_bad("{\"framing_format\":\"json\"}", "framing_format: not a JSON array");
    check_make_bad("{\"auth_accept\":[null]}", "auth_accept: element 0");
}

TEST(rcfile_hostport_parse)
{
    static const struct {
        const char *spec, *host, *port;
    } ok[] = {
        {"127.0.0.1:4040", "127.0.0.1", "4040"},
        {"127.0.0.1:*", "127.0.0.1", "0"},
        {"127.0.0.1", "127.0.0.1", "0"},
        {"*", "*", "0"},
        {"*:*", "*", "0"},
        {"*:4040", "*", "4040"},
        {"4040", "vm", "4040"},
        {"", "vm", "0"},
        {"doomed.example", "doomed.example", "0"},
        {"doomed.example:aemp", "doomed.example", "aemp"},
        {"host 80", "host", "80"},
        {"  host:80  ", "host", "80"},
        {"host#80", "host#80", "0"}, /* as parse_hostport: # is a host character */
        {"[::1]#80", "::1", "80"},
        {"[::1]:4040", "::1", "4040"},
        {"[::1]", "::1", "0"},
        {"::1", "::1", "0"},
        {"fe80::1:4040", "fe80::1:4040", "0"},
        {"::ffff:1.2.3.4", "::ffff:1.2.3.4", "0"},
        {"[host]:1", "host", "1"},
    };
    char host[256], port[32];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        memset(host, 0, sizeof host);
        memset(port, 0, sizeof port);
        int r = aemp_hostport_parse(ok[i].spec, "vm", host, sizeof host, port, sizeof port);
        if (r || strcmp(host, ok[i].host) || strcmp(port, ok[i].port))
            t_fail(__FILE__, __LINE__, "'%s': %d '%s' '%s'", ok[i].spec, r, host, port);
    }
    static const char *const bad[] = {"/tmp/sock", "a:b:c", "host:1:2", "[::1", "[]:1",
                                      "host:", "host: x y", ":80", "[a]b", "[a:b]:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (aemp_hostport_parse(bad[i], "vm", host, sizeof host, port, sizeof port) != AEMP_EINVAL)
            t_fail(__FILE__, __LINE__, "'%s' parsed as '%s' '%s'", bad[i], host, port);
    /* too long for the buffers */
    CHECK_INT(aemp_hostport_parse("abcdef:1", "vm", host, 4, port, sizeof port), AEMP_EINVAL);
    CHECK_INT(aemp_hostport_parse("a:12345", "vm", host, sizeof host, port, 3), AEMP_EINVAL);
}

TEST(rcfile_hostport_resolve)
{
    int err = 1;
    char *r = aemp_hostport_resolve("127.0.0.1:*", "vm", &err);
    CHECK_STR(r, "127.0.0.1:0");
    CHECK_INT(err, 0);
    free(r);
    r = aemp_hostport_resolve("127.0.0.1:5,[::1]:6,127.0.0.1:5,", "vm", &err);
    CHECK_STR(r, "127.0.0.1:5,[::1]:6");
    free(r);
    r = aemp_hostport_resolve("5", "127.0.0.1", &err);
    CHECK_STR(r, "127.0.0.1:5");
    free(r);
    CHECK(aemp_hostport_resolve("a:b:c", "vm", &err) == NULL);
    CHECK_INT(err, AEMP_EINVAL);
    CHECK(aemp_hostport_resolve("127.0.0.1:nosuchservice-xyz", "vm", &err) == NULL);
    CHECK_INT(err, AEMP_ERESOLVE);
    /* "*": every address but loopback (the machine decides how many) */
    r = aemp_hostport_resolve("*:7", "vm", &err);
    if (r) {
        CHECK(strstr(r, "127.") == NULL && strstr(r, "[::1]") == NULL);
        CHECK(strstr(r, ":7") != NULL);
        free(r);
    } else {
        CHECK_INT(err, AEMP_ERESOLVE);
    }
}

TEST(rcfile_file_round_trip)
{
    char dir[] = "/tmp/aemp-rc-XXXXXX", path[128], err[AEMP_RC_ERRMAX];
    REQUIRE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/rc", dir);
    /* a file that does not exist is the Perl tool's starting point */
    json_t *v = aemp_rc_load(path, err, sizeof err);
    REQUIRE(v != NULL);
    char *text = aemp_rc_format(v, NULL);
    CHECK_STR(text, "{\n   \"version\" : 1\n}\n");
    free(text);
    json_object_set_new(v, "profile", json_pack("{s:{s:[s]}}", "seed", "binds", "127.0.0.1:4040"));
    json_object_set_new(v, "secret", json_string("gr\xc3\xbc\xc3\x9f"));
    CHECK_INT(aemp_rc_save(path, v, err, sizeof err), 0);
    struct stat st;
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    json_t *back = aemp_rc_load(path, err, sizeof err);
    CHECK(back && json_equal(back, v));
    json_decref(back);
    /* a file without a version gets one when written */
    json_object_del(v, "version");
    CHECK_INT(aemp_rc_save(path, v, err, sizeof err), 0);
    back = aemp_rc_load(path, err, sizeof err);
    CHECK_INT(json_integer_value(json_object_get(back, "version")), 1);
    json_decref(back);
    json_decref(v);
    /* no temporary file is left behind */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) = 1", dir);
    CHECK_INT(system(cmd), 0);
    /* errors name the file */
    FILE *f = fopen(path, "w");
    fputs("{\"a\":1,\n\"b\":}", f);
    fclose(f);
    CHECK(aemp_rc_load(path, err, sizeof err) == NULL);
    char want[300];
    snprintf(want, sizeof want, "%s: unexpected byte 0x7d at line 2, column 5", path);
    CHECK_STR(err, want);
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/rc", dir);
    v = json_object();
    CHECK_INT(aemp_rc_save(nodir, v, err, sizeof err), AEMP_EIO);
    CHECK(strstr(err, "No such file") != NULL);
    json_decref(v);
    /* the path: PERL_ANYEVENT_MP_RC, else HOME */
    char p[256];
    setenv("PERL_ANYEVENT_MP_RC", path, 1);
    CHECK_INT(aemp_rc_path(p, sizeof p), 0);
    CHECK_STR(p, path);
    CHECK_INT(aemp_rc_path(p, 4), AEMP_ELIMIT);
    unsetenv("PERL_ANYEVENT_MP_RC");
    setenv("HOME", dir, 1);
    CHECK_INT(aemp_rc_path(p, sizeof p), 0);
    snprintf(want, sizeof want, "%s/.perl-anyevent-mp", dir);
    CHECK_STR(p, want);
    unsetenv("HOME");
    CHECK_INT(aemp_rc_path(p, sizeof p), AEMP_ENOENT);
    /* the whole start-up path through the environment */
    f = fopen(path, "w");
    fputs("# written by hand\n{\"profile\":{\"x\":{\"nodeid\":\"x/%n\",\"seeds\":[\"s:1\",],},},"
          "\"secret\":\"s\",}\n",
          f);
    fclose(f);
    setenv("PERL_ANYEVENT_MP_RC", path, 1);
    aemp_p1_config_t c;
    CHECK_INT(aemp_p1_config_load(&c, "x", NULL, 0, err, sizeof err), 0);
    char host[256];
    gethostname(host, sizeof host);
    snprintf(want, sizeof want, "x/%s", host);
    CHECK_STR(c.nodeid, want);
    CHECK_INT(c.nseeds, 1);
    CHECK_INT(c.secret_len, 1);
    aemp_p1_config_free(&c);
    json_t *args = json_pack("{s:s}", "secret", "arg");
    CHECK_INT(aemp_p1_config_load(&c, "x", args, AEMP_RC_NORC, err, sizeof err), 0);
    CHECK_INT(c.nseeds, 0);
    CHECK_INT(c.secret_len, 3);
    aemp_p1_config_free(&c);
    json_decref(args);
    unsetenv("PERL_ANYEVENT_MP_RC");
    unlink(path);
    rmdir(dir);
}

/* aemp_p1_node_config: a node made from the rc file's values runs with
 * them (id, binds, secret, times). */
TEST(rcfile_p1_node_config_runs_a_node)
{
    static const char text[] =
        "{\"secret\":\"rc secret\",\"binds\":[\"127.0.0.1:0\"],\"seeds\":[],"
        "\"monitor_timeout\":12.5,\"connect_interval\":0.5,"
        "\"profile\":{\"w\":{\"nodeid\":\"worker-from-rc\"}}}";
    char err[AEMP_RC_ERRMAX];
    json_t *rc = aemp_rc_parse(text, strlen(text), err, sizeof err);
    REQUIRE(rc);
    json_t *m = aemp_rc_profile(rc, "w", NULL, 0, err, sizeof err);
    REQUIRE(m);
    aemp_p1_config_t pc;
    REQUIRE(aemp_p1_config_make(&pc, m, "w", "h", aemp_random_source, NULL, err, sizeof err) == 0);
    aemp_node_config_t nc = {0};
    CHECK_INT(aemp_p1_node_config(NULL, &pc), AEMP_EINVAL);
    CHECK_INT(aemp_p1_node_config(&nc, &pc), 0);
    CHECK_INT(nc.protocol, 1);
    CHECK_STR(nc.nodeid, "worker-from-rc");
    CHECK_INT(nc.nbinds, 1);
    CHECK_INT(nc.nseeds, 0);
    CHECK_INT(nc.secret_len, 9);
    CHECK(nc.cert == NULL);
    CHECK_INT(nc.timeout, 13);
    CHECK(nc.connect_interval == 0.5);
    int e = 0;
    aemp_node_t *n = aemp_node_new(EV_DEFAULT, &nc, &e);
    REQUIRE(n);
    aemp_p1_config_free(&pc); /* the node copied what it needs */
    CHECK_INT(aemp_node_start(n), 0);
    CHECK_STR(aemp_node_noderef(n), "worker-from-rc");
    size_t nl = 0;
    CHECK(aemp_node_listeners(n, &nl) && nl == 1);
    aemp_node_destroy(n);
    json_decref(m);
    json_decref(rc);
}
