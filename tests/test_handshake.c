/*
 * test_handshake.c - tests of the handshake engine (handshake.c): the auth
 * tokens and auth lines of vectors/auth.json, every error path with its
 * verbatim message, the line limit, CR LF, TLS role selection, and pairs
 * of engines wired together in memory.
 */
#include "test.h"
#include "aemp_int.h"

#include <stdlib.h>

/* ------------------------------------------------------------------ */
/* helpers */


/* Everything needed to rebuild an engine that sends given greeting
 * lines: field 3 is the noderef, 4 the auth list, 5 the framings, the
 * rest goes verbatim through kv_override. */
typedef struct side {
    char noderef[4096], auths[4096], framings[4096], kv[4096];
    unsigned char nonce[AEMP_NONCE_BYTES];
    int tls;
} side_t;

static int side_from_lines(side_t *sd, const char *l1, const char *l2)
{
    memset(sd, 0, sizeof *sd);
    if (t_greeting_fields(l1, sd->noderef, sd->auths, sd->framings, sd->kv, sizeof sd->kv))
        return -1;
    sd->tls = strstr(l1, ";tls=1.0") != NULL;
    return t_b64dec(l2, sd->nonce, sizeof sd->nonce) == AEMP_NONCE_BYTES ? 0 : -1;
}

static aemp_hs_config_t side_cfg(const side_t *sd, const void *secret, size_t len)
{
    aemp_hs_config_t c;
    memset(&c, 0, sizeof c);
    c.noderef = sd->noderef;
    c.auths_accept = sd->auths;
    c.framings = sd->framings;
    c.kv_override = sd->kv;
    c.nonce = sd->nonce;
    c.tls = sd->tls;
    c.secret = secret;
    c.secret_len = len;
    return c;
}

/* A plain configuration; the nonce depends on seed. */
static aemp_hs_config_t basic_cfg(const char *noderef, const char *secret,
                                  unsigned char *nonce, unsigned seed)
{
    aemp_hs_config_t c;
    memset(&c, 0, sizeof c);
    for (unsigned i = 0; i < AEMP_NONCE_BYTES; i++)
        nonce[i] = (unsigned char)(seed * 131u + i * 7u + 1u);
    c.noderef = noderef;
    c.secret = secret;
    c.secret_len = strlen(secret);
    c.nonce = nonce;
    c.timeout = 30;
    c.peeraddr = "127.0.0.1:1";
    return c;
}

static aemp_hs_t *mk_basic(const char *noderef, const char *secret, unsigned seed)
{
    unsigned char nonce[AEMP_NONCE_BYTES];
    aemp_hs_config_t c = basic_cfg(noderef, secret, nonce, seed);
    int err = 1;
    aemp_hs_t *hs = aemp_hs_new(&c, &err);
    if (!hs || err) t_fail(__FILE__, __LINE__, "aemp_hs_new failed: %d", err);
    return hs;
}

static const char *buf_str(aemp__buf_t *b)
{
    aemp__buf_reserve(b, 1);
    b->data[b->len] = 0;
    return aemp__buf_head(b);
}

/* The peer in crafted-input tests: its two greeting lines. */
#define PEER1 "aemp;0;10.9.9.9:4040;hmac_md6_64_256,cleartext;json;provider=test;timeout=5"
#define PEER2 "cGVlcm5vbmNlcGVlcm5vbmNlcGVlcm5vbmNlcGVlcm5v"

/* The token PEER1/PEER2 would send to hs (secret given). */
static void peer_token(aemp_hs_t *hs, const char *secret, char tok[65])
{
    CHECK_INT(aemp_auth_token(secret, strlen(secret), PEER1, PEER2,
                              aemp_hs_local_line(hs, 1), aemp_hs_local_line(hs, 2), tok),
              0);
}

/* An engine that has read PEER1/PEER2 and queued its auth line. */
static aemp_hs_t *greeted(const char *secret)
{
    aemp_hs_t *hs = mk_basic("10.0.0.1:4040", secret, 1);
    if (!hs) return NULL;
    t_hs_drain(hs, NULL);
    const char *g = PEER1 "\n" PEER2 "\n";
    CHECK_INT(t_hs_feed_str(hs, g), strlen(g));
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_SEND | AEMP_HS_GREETED);
    t_hs_drain(hs, NULL);
    return hs;
}

/* Feeds one crafted input to a fresh engine and checks the error, which
 * must come from its first line: that line is all the engine takes. */
static void expect_fail(const char *input, int code, const char *msg)
{
    size_t consumed = strcspn(input, "\n") + 1;
    aemp_hs_t *hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    if (!hs) return;
    aemp__buf_t greeting = {0}, after = {0};
    t_hs_drain(hs, &greeting);
    CHECK_INT(aemp_hs_feed(hs, input, strlen(input)), consumed);
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
    CHECK_INT(aemp_hs_error_code(hs), code);
    CHECK_STR(aemp_hs_error(hs), msg);
    t_hs_drain(hs, &after);
    CHECK_INT(aemp__buf_size(&after), 0);
    CHECK_INT(t_hs_feed_str(hs, "more\n"), 0);
    CHECK_STR(aemp_hs_error(hs), msg);
    aemp__buf_free(&greeting);
    aemp__buf_free(&after);
    aemp_hs_free(hs);
}

/* Feeds an auth line to an engine that has read PEER1/PEER2. */
static void expect_auth_fail(const char *line, int code, const char *msg)
{
    aemp_hs_t *hs = greeted("geheim");
    if (!hs) return;
    CHECK_INT(t_hs_feed_str(hs, line), strlen(line));
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
    CHECK_INT(aemp_hs_error_code(hs), code);
    CHECK_STR(aemp_hs_error(hs), msg);
    CHECK(!strstr(aemp_hs_error(hs), "geheim"));
    CHECK(!strstr(aemp_hs_error(hs), "67656865696d"));
    aemp_hs_free(hs);
}

/* Two engines and what is on the wire between them. */
typedef struct end {
    aemp_hs_t *hs;
    aemp__buf_t in;   /* bytes sent to hs, not yet consumed */
    aemp__buf_t wire; /* everything hs wrote */
    int tls_ups;
} end_t;

/* Runs both engines until neither makes progress. rng NULL feeds all
 * pending bytes at once, else random chunks; auto_tls runs "TLS" (a no-op
 * here) whenever an engine asks for it. crlf turns the LFs that a sends
 * into CR LF. */
static void pump(end_t *a, end_t *b, uint64_t *rng, int auto_tls, int crlf)
{
    for (int round = 0; round < 100000; round++) {
        int progress = 0;
        for (int dir = 0; dir < 2; dir++) {
            end_t *x = dir ? b : a, *y = dir ? a : b;
            const void *p;
            size_t n;
            while ((p = aemp_hs_out(x->hs, &n)) != NULL) {
                aemp__buf_append(&x->wire, p, n);
                for (size_t i = 0; i < n; i++) {
                    char c = ((const char *)p)[i];
                    if (c == '\n' && crlf && x == a) aemp__buf_append(&y->in, "\r", 1);
                    aemp__buf_append(&y->in, &c, 1);
                }
                aemp_hs_out_ack(x->hs, n);
                progress = 1;
            }
            unsigned st = aemp_hs_state(y->hs);
            if (auto_tls && (st & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER))) {
                CHECK_INT(aemp_hs_tls_up(y->hs), 0);
                y->tls_ups++;
                progress = 1;
            }
            size_t have = aemp__buf_size(&y->in);
            if (have) {
                size_t k = rng ? 1 + t_rand(rng) % (have < 40 ? have : 40) : have;
                size_t used = aemp_hs_feed(y->hs, aemp__buf_head(&y->in), k);
                CHECK(used <= k);
                if (used) {
                    aemp__buf_consume(&y->in, used);
                    progress = 1;
                }
            }
        }
        if (!progress) return;
    }
    t_fail(__FILE__, __LINE__, "pump does not settle");
}

static void end_free(end_t *e)
{
    aemp_hs_free(e->hs);
    aemp__buf_free(&e->in);
    aemp__buf_free(&e->wire);
}

/* ------------------------------------------------------------------ */
/* tokens and auth.json */

TEST(hs_auth_token_vectors)
{
    json_t *root = t_load_vectors("vectors/auth.json");
    json_t *vs = json_object_get(root, "vectors"), *v;
    size_t i;
    REQUIRE(json_array_size(vs) >= 17);
    json_array_foreach(vs, i, v) {
        size_t slen;
        unsigned char *secret = t_unhex(json_string_value(json_object_get(v, "secret_hex")), &slen);
        const char *l1 = json_string_value(json_object_get(v, "lgreeting1"));
        const char *l2 = json_string_value(json_object_get(v, "lgreeting2"));
        const char *r1 = json_string_value(json_object_get(v, "rgreeting1"));
        const char *r2 = json_string_value(json_object_get(v, "rgreeting2"));
        char tok[65];
        CHECK_INT(aemp_auth_token(secret, slen, l1, l2, r1, r2, tok), 0);
        CHECK_STR(tok, json_string_value(json_object_get(v, "lauth")));
        CHECK_INT(aemp_auth_token(secret, slen, r1, r2, l1, l2, tok), 0);
        CHECK_STR(tok, json_string_value(json_object_get(v, "rauth")));
        free(secret);
    }
    char tok[65];
    CHECK_INT(aemp_auth_token(NULL, 0, "a", "b", "c", "d", tok), 0);
    CHECK_INT(aemp_auth_token(NULL, 1, "a", "b", "c", "d", tok), -1);
    CHECK_INT(aemp_auth_token("x", 1, NULL, "b", "c", "d", tok), -1);
    CHECK_INT(aemp_auth_token("x", 1, "a", "b", "c", NULL, tok), -1);
    CHECK_INT(aemp_auth_token("x", 1, "a", "b", "c", "d", NULL), -1);
    json_decref(root);
}

/* Field idx (from 0) of a greeting line split on ';', "" if missing. */
static void field_of(const char *line, int idx, char *out, size_t cap)
{
    const char *p = line;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, ';');
        if (p) p++;
    }
    size_t n = p ? strcspn(p, ";") : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(out, p, n);
    out[n] = 0;
}

/* Does the peer's framing list contain json (all we can send)? */
static int offers_json(const char *line1)
{
    char fr[4096];
    field_of(line1, 4, fr, sizeof fr);
    for (char *f = strtok(fr, ","); f; f = strtok(NULL, ","))
        if (strcmp(f, "json") == 0) return 1;
    return 0;
}

/* Each vector replayed through an engine: it must send the vector's
 * lines and auth line, take the peer's token and cleartext line, and
 * take the vector's TLS role when the peer also offers TLS. */
TEST(hs_auth_vectors_engine)
{
    json_t *root = t_load_vectors("vectors/auth.json");
    json_t *vs = json_object_get(root, "vectors"), *v;
    size_t i;
    json_array_foreach(vs, i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        size_t slen;
        unsigned char *secret = t_unhex(json_string_value(json_object_get(v, "secret_hex")), &slen);
        const char *l1 = json_string_value(json_object_get(v, "lgreeting1"));
        const char *l2 = json_string_value(json_object_get(v, "lgreeting2"));
        const char *r1 = json_string_value(json_object_get(v, "rgreeting1"));
        const char *r2 = json_string_value(json_object_get(v, "rgreeting2"));
        const char *lauth = json_string_value(json_object_get(v, "lauth"));
        const char *rauth = json_string_value(json_object_get(v, "rauth"));
        const char *auth_line = json_string_value(json_object_get(v, "auth_line"));
        const char *s_framing = json_string_value(json_object_get(v, "s_framing"));
        const char *role = json_string_value(json_object_get(v, "tls_role_if_both_tls"));
        side_t sd;
        char peer[8192], want[8192], line[1024];
        aemp__buf_t out = {0};
        int failures_before = t_failures;
        REQUIRE(side_from_lines(&sd, l1, l2) == 0);
        aemp_hs_config_t c = side_cfg(&sd, secret, slen);

        /* 1. hmac, as the vector's node did it */
        aemp_hs_t *hs = aemp_hs_new(&c, NULL);
        REQUIRE(hs);
        CHECK_STR(aemp_hs_local_line(hs, 1), l1);
        CHECK_STR(aemp_hs_local_line(hs, 2), l2);
        snprintf(peer, sizeof peer, "%s\n%s\n", r1, r2);
        CHECK_INT(t_hs_feed_str(hs, peer), offers_json(r1) ? strlen(peer) : strlen(r1) + 1);
        t_hs_drain(hs, &out);
        if (!offers_json(r1)) {
            /* The peer takes storable only; we cannot write it. */
            char fr[4096];
            field_of(r1, 4, fr, sizeof fr);
            char msg[4200];
            snprintf(msg, sizeof msg, "%s: no common framing method supported", fr);
            CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
            CHECK_STR(aemp_hs_error(hs), msg);
            snprintf(want, sizeof want, "%s\n%s\n", l1, l2);
            CHECK_STR(buf_str(&out), want);
            aemp_hs_free(hs);
            aemp__buf_free(&out);
            free(secret);
            if (t_failures != failures_before) fprintf(stderr, "    (in vector %s)\n", id);
            continue;
        }
        if (strcmp(s_framing, "json") == 0)
            snprintf(want, sizeof want, "%s\n%s\n%s\n", l1, l2, auth_line);
        else /* the vector's node picked storable; we write json */
            snprintf(want, sizeof want, "%s\n%s\nhmac_md6_64_256;%s;json\n", l1, l2, lauth);
        CHECK_STR(buf_str(&out), want);
        CHECK_INT(aemp_hs_state(hs), AEMP_HS_GREETED);
        CHECK_STR(aemp_hs_send_framing(hs), "json");
        snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\n", rauth);
        CHECK_INT(t_hs_feed_str(hs, line), strlen(line));
        CHECK_INT(aemp_hs_state(hs), AEMP_HS_GREETED | AEMP_HS_DONE);
        CHECK_STR(aemp_hs_recv_auth(hs), "hmac_md6_64_256");
        CHECK_STR(aemp_hs_recv_framing(hs), "json");
        aemp_hs_free(hs);

        /* 2. the peer authenticates with cleartext instead */
        hs = aemp_hs_new(&c, NULL);
        REQUIRE(hs);
        CHECK_INT(t_hs_feed_str(hs, peer), strlen(peer));
        snprintf(line, sizeof line, "%s\n",
                 json_string_value(json_object_get(v, "cleartext_auth_line")));
        CHECK_INT(t_hs_feed_str(hs, line), strlen(line));
        CHECK_INT(aemp_hs_state(hs) & ~AEMP_HS_SEND, AEMP_HS_GREETED | AEMP_HS_DONE);
        CHECK_STR(aemp_hs_recv_auth(hs), "cleartext");
        aemp_hs_free(hs);

        /* 3. both sides want TLS: the role comes from the nonces */
        c.tls = 1;
        hs = aemp_hs_new(&c, NULL);
        REQUIRE(hs);
        t_hs_drain(hs, NULL);
        snprintf(peer, sizeof peer, "%s;tls=1.0\n%s\nTLS RECORDS", r1, r2);
        CHECK_INT(t_hs_feed_str(hs, peer), strlen(peer) - strlen("TLS RECORDS"));
        CHECK_INT(aemp_hs_state(hs),
                  AEMP_HS_GREETED | (strcmp(role, "connect") == 0 ? AEMP_HS_TLS_CLIENT
                                                                  : AEMP_HS_TLS_SERVER));
        CHECK(aemp_hs_out(hs, NULL) == NULL);
        aemp_hs_free(hs);

        aemp__buf_free(&out);
        free(secret);
        if (t_failures != failures_before) fprintf(stderr, "    (in vector %s)\n", id);
    }
    json_decref(root);
}

/* ------------------------------------------------------------------ */
/* our greeting */

TEST(hs_greeting_built)
{
    unsigned char nonce[AEMP_NONCE_BYTES];
    for (int i = 0; i < AEMP_NONCE_BYTES; i++) nonce[i] = (unsigned char)(i * 7 + 1);
    aemp_hs_config_t c;
    memset(&c, 0, sizeof c);
    c.noderef = "127.0.0.1:4040,[::1]:4040";
    c.nonce = nonce;
    c.timeout = 30;
    c.peeraddr = "10.0.0.2:51000";
    c.tls = 1;
    int err = 1;
    aemp_hs_t *hs = aemp_hs_new(&c, &err);
    REQUIRE(hs);
    CHECK_INT(err, 0);
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_SEND);
    aemp__buf_t out = {0};
    t_hs_drain(hs, &out);
    CHECK_STR(buf_str(&out),
              "aemp;0;127.0.0.1:4040,[::1]:4040;hmac_md6_64_256,cleartext;json;"
              "provider=aemp-C-" AEMP_VERSION ";peeraddr=10.0.0.2:51000;timeout=30;tls=1.0\n"
              "AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh\n");
    CHECK_INT(aemp_hs_state(hs), 0);
    CHECK(aemp_hs_remote_noderef(hs) == NULL);
    CHECK(aemp_hs_remote_line(hs, 1) == NULL);
    CHECK(aemp_hs_send_framing(hs) == NULL);
    CHECK(aemp_hs_recv_auth(hs) == NULL);
    CHECK(aemp_hs_local_line(hs, 0) == NULL);
    CHECK(aemp_hs_local_line(hs, 3) == NULL);
    CHECK_STR(aemp_hs_error(hs), "");
    CHECK_INT(aemp_hs_error_code(hs), 0);
    aemp_hs_free(hs);
    aemp__buf_free(&out);

    /* everything optional left out; lists and provider given */
    c.timeout = 0;
    c.peeraddr = NULL;
    c.tls = 0;
    c.provider = "AE-0.4";
    c.auths_accept = "hmac_md6_64_256";
    c.framings = "json,storable";
    hs = aemp_hs_new(&c, NULL);
    REQUIRE(hs);
    CHECK_STR(aemp_hs_local_line(hs, 1),
              "aemp;0;127.0.0.1:4040,[::1]:4040;hmac_md6_64_256;json,storable;provider=AE-0.4");
    aemp_hs_free(hs);

    /* kv_override replaces the KEY=VALUE part verbatim, "" drops it */
    c.kv_override = "timeout=4;provider=AE-0.4;peeraddr=1.2.3.4:5";
    c.tls = 1;
    hs = aemp_hs_new(&c, NULL);
    REQUIRE(hs);
    CHECK_STR(aemp_hs_local_line(hs, 1),
              "aemp;0;127.0.0.1:4040,[::1]:4040;hmac_md6_64_256;json,storable;"
              "timeout=4;provider=AE-0.4;peeraddr=1.2.3.4:5");
    CHECK_STR(aemp_hs_local_line(hs, 2), "AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh");
    aemp_hs_free(hs);
    c.kv_override = "";
    hs = aemp_hs_new(&c, NULL);
    REQUIRE(hs);
    CHECK_STR(aemp_hs_local_line(hs, 1),
              "aemp;0;127.0.0.1:4040,[::1]:4040;hmac_md6_64_256;json,storable");
    aemp_hs_free(hs);
}

TEST(hs_new_invalid)
{
    unsigned char nonce[AEMP_NONCE_BYTES];
    static char big[5000];
    memset(big, 'x', sizeof big - 1);
    aemp_hs_config_t c0 = basic_cfg("10.0.0.1:4040", "s", nonce, 0), c;
    int err;
#define BAD(stmt)                                                           \
    do {                                                                    \
        c = c0;                                                             \
        stmt;                                                               \
        err = 0;                                                            \
        CHECK(aemp_hs_new(&c, &err) == NULL);                               \
        CHECK_INT(err, AEMP_EINVAL);                                        \
    } while (0)
    BAD(c.noderef = NULL);
    BAD(c.noderef = "");
    BAD(c.nonce = NULL);
    BAD(c.secret = NULL);
    BAD(c.noderef = "a;b");
    BAD(c.noderef = "a\nb");
    BAD(c.provider = "x\r");
    BAD(c.peeraddr = "1.2.3.4:5;tls=1.0");
    BAD(c.auths_accept = "hmac_md6_64_256;x");
    BAD(c.framings = "json\n");
    BAD(c.kv_override = "a=b\nc=d");
    BAD(c.auths_send = "tls");
    BAD(c.auths_send = "hmac_md6_64_256,md5");
    BAD(c.auths_send = "");
    BAD(c.provider = big);
#undef BAD
    CHECK(aemp_hs_new(NULL, &err) == NULL);
    CHECK_INT(err, AEMP_EINVAL);
    CHECK(aemp_hs_new(NULL, NULL) == NULL);
    /* a NULL secret of length 0 is an empty secret */
    c = c0;
    c.secret = NULL;
    c.secret_len = 0;
    aemp_hs_t *hs = aemp_hs_new(&c, &err);
    CHECK(hs != NULL);
    aemp_hs_free(hs);
    aemp_hs_free(NULL);
    CHECK_INT(aemp_hs_state(NULL), AEMP_HS_FAILED);
    CHECK_INT(aemp_hs_feed(NULL, "x", 1), 0);
}

/* ------------------------------------------------------------------ */
/* error paths, greeting stage */

TEST(hs_err_unparsable)
{
    expect_fail("HELLO there\n\n", AEMP_EPROTO, "unparsable greeting");
    expect_fail("\n", AEMP_EPROTO, "unparsable greeting");
    expect_fail("\r\n", AEMP_EPROTO, "unparsable greeting");
    expect_fail(";aemp;0;n;hmac_md6_64_256;json\n", AEMP_EPROTO, "unparsable greeting");
    expect_fail("AEMP;0;n;hmac_md6_64_256;json\nxx\n", AEMP_EPROTO, "unparsable greeting");
    expect_fail("aemp ;0;n;hmac_md6_64_256;json\n", AEMP_EPROTO, "unparsable greeting");
}

TEST(hs_err_version)
{
    expect_fail("aemp;1;127.0.0.1:9;hmac_md6_64_256,cleartext;json,storable\nN\n",
                AEMP_EPROTO, "version mismatch (we: 0, they: 1)");
    expect_fail("aemp;2.5;n;hmac_md6_64_256;json\n", AEMP_EPROTO,
                "version mismatch (we: 0, they: 2.5)");
    expect_fail("aemp;-1;n;hmac_md6_64_256;json\n", AEMP_EPROTO,
                "version mismatch (we: 0, they: -1)");
    expect_fail("aemp; 1x;n;hmac_md6_64_256;json\n", AEMP_EPROTO,
                "version mismatch (we: 0, they:  1x)");
    expect_fail("aemp;1e-3;n;hmac_md6_64_256;json\n", AEMP_EPROTO,
                "version mismatch (we: 0, they: 1e-3)");
    expect_fail("aemp;Inf;n;hmac_md6_64_256;json\n", AEMP_EPROTO,
                "version mismatch (we: 0, they: Inf)");
    expect_fail("aemp;nan;n;hmac_md6_64_256;json\n", AEMP_EPROTO,
                "version mismatch (we: 0, they: nan)");
    expect_fail("aemp;.1;n;hmac_md6_64_256;json\n", AEMP_EPROTO,
                "version mismatch (we: 0, they: .1)");

    /* Perl compares numerically: all of these are 0 to it */
    static const char *zero[] = {"0", "00", "0.0", "-0", " 0", "0e7", "0x1", "abc",
                                 "", "0abc", "1e-400", ".0", "+0.", "\t0"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) {
        aemp_hs_t *hs = mk_basic("10.0.0.1:4040", "geheim", 1);
        REQUIRE(hs);
        char line[256];
        snprintf(line, sizeof line, "aemp;%s;n;hmac_md6_64_256;json\n" PEER2 "\n", zero[i]);
        CHECK_INT(t_hs_feed_str(hs, line), strlen(line));
        if (aemp_hs_state(hs) & AEMP_HS_FAILED)
            t_fail(__FILE__, __LINE__, "version \"%s\": %s", zero[i], aemp_hs_error(hs));
        aemp_hs_free(hs);
    }
}

TEST(hs_err_noauth)
{
    expect_fail("aemp;0;127.0.0.1:9;md5_hmac,sha1_hmac;json,storable;provider=raw-0\nN\n",
                AEMP_EPROTO, "md5_hmac,sha1_hmac: no common auth type supported");
    /* cleartext is accepted by default but only sent when configured */
    expect_fail("aemp;0;n;cleartext;json\n", AEMP_EPROTO,
                "cleartext: no common auth type supported");
    /* missing fields read as empty, as Perl's undef does */
    expect_fail("aemp\n", AEMP_EPROTO, ": no common auth type supported");
    expect_fail("aemp;0;n;;json\n", AEMP_EPROTO, ": no common auth type supported");
    expect_fail("aemp;0;n;HMAC_MD6_64_256;json\n", AEMP_EPROTO,
                "HMAC_MD6_64_256: no common auth type supported");
}

TEST(hs_err_noframing)
{
    expect_fail("aemp;0;127.0.0.1:9;hmac_md6_64_256,cleartext;xml,yaml;provider=raw-0\n",
                AEMP_EPROTO, "xml,yaml: no common framing method supported");
    /* storable is a framing we could accept but cannot write */
    expect_fail("aemp;0;n;hmac_md6_64_256;storable\n", AEMP_EPROTO,
                "storable: no common framing method supported");
    expect_fail("aemp;0;n;hmac_md6_64_256\n", AEMP_EPROTO,
                ": no common framing method supported");
    expect_fail("aemp;0;n;hmac_md6_64_256;;x=y\n", AEMP_EPROTO,
                ": no common framing method supported");
}

TEST(hs_err_echo)
{
    /* an engine fed its own output */
    aemp_hs_t *hs = mk_basic("10.0.0.1:4040", "geheim", 3);
    REQUIRE(hs);
    aemp__buf_t out = {0}, after = {0};
    t_hs_drain(hs, &out);
    CHECK_INT(aemp_hs_feed(hs, aemp__buf_head(&out), aemp__buf_size(&out)),
              aemp__buf_size(&out));
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
    CHECK_INT(aemp_hs_error_code(hs), AEMP_EAUTH);
    CHECK_STR(aemp_hs_error(hs), "authentication error, echo attack?");
    t_hs_drain(hs, &after); /* no auth line for the attacker */
    CHECK_INT(aemp__buf_size(&after), 0);
    aemp_hs_free(hs);

    /* the same with CR LF line ends is still an echo */
    hs = mk_basic("10.0.0.1:4040", "geheim", 3);
    REQUIRE(hs);
    char crlf[512];
    snprintf(crlf, sizeof crlf, "%s\r\n%s\r\n", aemp_hs_local_line(hs, 1),
             aemp_hs_local_line(hs, 2));
    CHECK_INT(t_hs_feed_str(hs, crlf), strlen(crlf));
    CHECK_STR(aemp_hs_error(hs), "authentication error, echo attack?");
    aemp_hs_free(hs);

    /* same nonce with another line 1, or the other way round: no echo */
    hs = mk_basic("10.0.0.1:4040", "geheim", 3);
    REQUIRE(hs);
    char other[512];
    snprintf(other, sizeof other, "%s;x=1\n%s\n", aemp_hs_local_line(hs, 1),
             aemp_hs_local_line(hs, 2));
    CHECK_INT(t_hs_feed_str(hs, other), strlen(other));
    CHECK_INT(aemp_hs_state(hs) & AEMP_HS_FAILED, 0);
    aemp_hs_free(hs);
    hs = mk_basic("10.0.0.1:4040", "geheim", 3);
    REQUIRE(hs);
    snprintf(other, sizeof other, "%s\n%sx\n", aemp_hs_local_line(hs, 1),
             aemp_hs_local_line(hs, 2));
    CHECK_INT(t_hs_feed_str(hs, other), strlen(other));
    CHECK_INT(aemp_hs_state(hs) & AEMP_HS_FAILED, 0);
    aemp_hs_free(hs);
    aemp__buf_free(&out);
    aemp__buf_free(&after);
}

/* ------------------------------------------------------------------ */
/* error paths, auth stage */

TEST(hs_err_badmethod)
{
    expect_auth_fail("bogus;abc;json\n", AEMP_EAUTH,
                     "bogus: fatal, selected unsupported auth method");
    expect_auth_fail("\n", AEMP_EAUTH, ": fatal, selected unsupported auth method");
    expect_auth_fail("HMAC_MD6_64_256;x;json\n", AEMP_EAUTH,
                     "HMAC_MD6_64_256: fatal, selected unsupported auth method");
    expect_auth_fail("hex_secret;67656865696d;json\n", AEMP_EAUTH,
                     "hex_secret: fatal, selected unsupported auth method");

    /* a method we did not announce is not accepted either */
    unsigned char nonce[AEMP_NONCE_BYTES];
    aemp_hs_config_t c = basic_cfg("10.0.0.1:4040", "geheim", nonce, 1);
    c.auths_accept = "hmac_md6_64_256";
    aemp_hs_t *hs = aemp_hs_new(&c, NULL);
    REQUIRE(hs);
    const char *in = PEER1 "\n" PEER2 "\ncleartext;67656865696d;json\n";
    CHECK_INT(t_hs_feed_str(hs, in), strlen(in));
    CHECK_STR(aemp_hs_error(hs), "cleartext: fatal, selected unsupported auth method");
    CHECK_INT(aemp_hs_error_code(hs), AEMP_EAUTH);
    aemp_hs_free(hs);
}

TEST(hs_err_mismatch)
{
    const char *mm = "authentication failure/shared secret mismatch";
    char tok[65], line[512];
    aemp_hs_t *probe = greeted("geheim");
    REQUIRE(probe);
    peer_token(probe, "geheim", tok);
    aemp_hs_free(probe);

    expect_auth_fail("hmac_md6_64_256;"
                     "0000000000000000000000000000000000000000000000000000000000000000;json\n",
                     AEMP_EAUTH, mm);
    /* the right token, altered */
    char up[65];
    for (int i = 0; i < 65; i++)
        up[i] = (char)(tok[i] >= 'a' && tok[i] <= 'f' ? tok[i] - 32 : tok[i]);
    snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\n", up);
    expect_auth_fail(line, AEMP_EAUTH, mm);
    snprintf(line, sizeof line, "hmac_md6_64_256;%s0;json\n", tok);
    expect_auth_fail(line, AEMP_EAUTH, mm);
    snprintf(line, sizeof line, "hmac_md6_64_256;%.63s;json\n", tok);
    expect_auth_fail(line, AEMP_EAUTH, mm);
    expect_auth_fail("hmac_md6_64_256;;json\n", AEMP_EAUTH, mm);
    expect_auth_fail("hmac_md6_64_256\n", AEMP_EAUTH, mm);
    /* a token made with another secret */
    aemp_hs_t *h2 = greeted("geheim");
    REQUIRE(h2);
    peer_token(h2, "falsch", up);
    aemp_hs_free(h2);
    snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\n", up);
    expect_auth_fail(line, AEMP_EAUTH, mm);
    /* cleartext of the wrong secret, of a prefix, with upper case hex */
    expect_auth_fail("cleartext;66616c736368;json\n", AEMP_EAUTH, mm);
    expect_auth_fail("cleartext;676568656;json\n", AEMP_EAUTH, mm);
    expect_auth_fail("cleartext;67656865696D;json\n", AEMP_EAUTH, mm);
    expect_auth_fail("cleartext;;json\n", AEMP_EAUTH, mm);
    /* our own token sent back */
    aemp_hs_t *h3 = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(h3);
    aemp__buf_t out = {0};
    t_hs_drain(h3, NULL);
    CHECK_INT(t_hs_feed_str(h3, PEER1 "\n" PEER2 "\n"), strlen(PEER1 PEER2) + 2);
    t_hs_drain(h3, &out);
    CHECK_INT(t_hs_feed_str(h3, buf_str(&out)), aemp__buf_size(&out));
    CHECK_STR(aemp_hs_error(h3), mm);
    aemp_hs_free(h3);
    aemp__buf_free(&out);

    /* the right token: accepted; the framing must be one we offered */
    snprintf(line, sizeof line, "hmac_md6_64_256;%s;storable\n", tok);
    expect_auth_fail(line, AEMP_EPROTO,
                     "storable: peer selected a framing we did not offer (we accept: json)");
    snprintf(line, sizeof line, "hmac_md6_64_256;%s\n", tok);
    expect_auth_fail(line, AEMP_EPROTO,
                     ": peer selected a framing we did not offer (we accept: json)");
    snprintf(line, sizeof line, "hmac_md6_64_256;%s;;\n", tok);
    expect_auth_fail(line, AEMP_EPROTO,
                     ": peer selected a framing we did not offer (we accept: json)");
    /* extra fields are ignored, as by Perl's split */
    aemp_hs_t *h4 = greeted("geheim");
    REQUIRE(h4);
    snprintf(line, sizeof line, "hmac_md6_64_256;%s;json;extra;;\n", tok);
    CHECK_INT(t_hs_feed_str(h4, line), strlen(line));
    CHECK_INT(aemp_hs_state(h4), AEMP_HS_GREETED | AEMP_HS_DONE);
    aemp_hs_free(h4);
}

TEST(hs_err_tls_without_tls)
{
    const char *mm = "authentication failure/shared secret mismatch";
    expect_auth_fail("tls;;json\n", AEMP_EAUTH, mm);
    expect_auth_fail("tls\n", AEMP_EAUTH, mm);
    /* TLS configured here but the peer did not ask for it: still plain */
    unsigned char nonce[AEMP_NONCE_BYTES];
    aemp_hs_config_t c = basic_cfg("10.0.0.1:4040", "geheim", nonce, 1);
    c.tls = 1;
    aemp_hs_t *hs = aemp_hs_new(&c, NULL);
    REQUIRE(hs);
    const char *in = PEER1 "\n" PEER2 "\ntls;;json\n";
    CHECK_INT(t_hs_feed_str(hs, in), strlen(in));
    CHECK_STR(aemp_hs_error(hs), mm);
    CHECK_INT(aemp_hs_tls_up(hs), AEMP_ESTATE);
    aemp_hs_free(hs);
}

/* ------------------------------------------------------------------ */
/* line limit and line ends */

/* A greeting line 1 of exactly total bytes with its line end. */
static char *long_line1(size_t total, const char *eol)
{
    const char *head = "aemp;0;10.9.9.9:4040;hmac_md6_64_256;json;pad=";
    size_t hl = strlen(head), el = strlen(eol);
    char *s = malloc(total + 1);
    memcpy(s, head, hl);
    memset(s + hl, 'x', total - hl - el);
    memcpy(s + total - el, eol, el);
    s[total] = 0;
    return s;
}

TEST(hs_line_limit)
{
    const char *toolong = "handshake line too long (over 4096 bytes)";
    CHECK_INT(AEMP_HS_MAX_LINE, 4096);
    static const char *eols[] = {"\n", "\r\n"};
    for (int e = 0; e < 2; e++) {
        /* exactly 4096 bytes with the line end: accepted, and the token
         * over it checks out */
        char *l1 = long_line1(4096, eols[e]);
        aemp_hs_t *hs = mk_basic("10.0.0.1:4040", "geheim", 1);
        REQUIRE(hs);
        CHECK_INT(t_hs_feed_str(hs, l1), 4096);
        CHECK_INT(aemp_hs_state(hs) & AEMP_HS_FAILED, 0);
        CHECK_INT(t_hs_feed_str(hs, PEER2 "\n"), strlen(PEER2) + 1);
        CHECK_INT(aemp_hs_state(hs), AEMP_HS_SEND | AEMP_HS_GREETED);
        char tok[65], line[128];
        l1[4096 - strlen(eols[e])] = 0;
        CHECK_INT(aemp_auth_token("geheim", 6, l1, PEER2, aemp_hs_local_line(hs, 1),
                                  aemp_hs_local_line(hs, 2), tok), 0);
        CHECK_STR(aemp_hs_remote_line(hs, 1), l1);
        snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\n", tok);
        CHECK_INT(t_hs_feed_str(hs, line), strlen(line));
        CHECK_INT(aemp_hs_state(hs) & AEMP_HS_DONE, AEMP_HS_DONE);
        aemp_hs_free(hs);
        free(l1);

        /* 4097: fails at its 4096th byte before the line end */
        l1 = long_line1(4097, eols[e]);
        hs = mk_basic("10.0.0.1:4040", "geheim", 1);
        REQUIRE(hs);
        t_hs_drain(hs, NULL);
        CHECK_INT(t_hs_feed_str(hs, l1), 4096);
        CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
        CHECK_INT(aemp_hs_error_code(hs), AEMP_ELIMIT);
        CHECK_STR(aemp_hs_error(hs), toolong);
        aemp_hs_free(hs);

        /* the same byte by byte */
        hs = mk_basic("10.0.0.1:4040", "geheim", 1);
        REQUIRE(hs);
        size_t total = 0;
        for (size_t i = 0; i < 4097; i++) {
            size_t u = aemp_hs_feed(hs, l1 + i, 1);
            CHECK_INT(u, i < 4096 ? 1 : 0);
            total += u;
        }
        CHECK_INT(total, 4096);
        CHECK_STR(aemp_hs_error(hs), toolong);
        aemp_hs_free(hs);
        free(l1);
    }

    /* no line end at all: 4095 bytes wait for more, 4096 fail */
    char *junk = malloc(5007);
    memset(junk, 'x', 5007);
    aemp_hs_t *hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(hs);
    CHECK_INT(aemp_hs_feed(hs, junk, 4095), 4095);
    CHECK_INT(aemp_hs_state(hs) & AEMP_HS_FAILED, 0);
    CHECK_INT(aemp_hs_feed(hs, junk, 912), 1);
    CHECK_STR(aemp_hs_error(hs), toolong);
    aemp_hs_free(hs);
    hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(hs);
    CHECK_INT(aemp_hs_feed(hs, junk, 5007), 4096);
    CHECK_INT(aemp_hs_error_code(hs), AEMP_ELIMIT);
    aemp_hs_free(hs);

    /* the limit holds for the nonce and the auth line too */
    hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(hs);
    CHECK_INT(t_hs_feed_str(hs, PEER1 "\n"), strlen(PEER1) + 1);
    CHECK_INT(aemp_hs_feed(hs, junk, 5007), 4096);
    CHECK_STR(aemp_hs_error(hs), toolong);
    aemp_hs_free(hs);
    hs = greeted("geheim");
    REQUIRE(hs);
    CHECK_INT(aemp_hs_feed(hs, junk, 5007), 4096);
    CHECK_STR(aemp_hs_error(hs), toolong);
    aemp_hs_free(hs);
    free(junk);
}

TEST(hs_crlf)
{
    /* the peer ends every line with CR LF; the HMAC input uses bare LF */
    aemp_hs_t *hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(hs);
    char tok[65], line[128];
    CHECK_INT(t_hs_feed_str(hs, PEER1 "\r\n" PEER2 "\r\n"), strlen(PEER1 PEER2) + 4);
    CHECK_STR(aemp_hs_remote_line(hs, 1), PEER1);
    CHECK_STR(aemp_hs_remote_line(hs, 2), PEER2);
    CHECK_STR(aemp_hs_remote_kv(hs, "timeout"), "5");
    peer_token(hs, "geheim", tok);
    snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\r\n", tok);
    CHECK_INT(t_hs_feed_str(hs, line), strlen(line));
    CHECK_INT(aemp_hs_state(hs) & ~AEMP_HS_SEND, AEMP_HS_GREETED | AEMP_HS_DONE);
    CHECK_STR(aemp_hs_recv_framing(hs), "json");
    aemp_hs_free(hs);

    /* only one CR is a line end; a CR elsewhere is part of the line */
    hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(hs);
    CHECK_INT(t_hs_feed_str(hs, PEER1 ";x=\r\r\n" PEER2 "\n"), strlen(PEER1 PEER2) + 7);
    CHECK_STR(aemp_hs_remote_kv(hs, "x"), "\r");
    aemp_hs_free(hs);

    /* an engine pair where one side writes CR LF */
    end_t a = {0}, b = {0};
    a.hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    b.hs = mk_basic("10.0.0.2:4040", "geheim", 2);
    REQUIRE(a.hs && b.hs);
    pump(&a, &b, NULL, 0, 1);
    CHECK_INT(aemp_hs_state(a.hs), AEMP_HS_GREETED | AEMP_HS_DONE);
    CHECK_INT(aemp_hs_state(b.hs), AEMP_HS_GREETED | AEMP_HS_DONE);
    end_free(&a);
    end_free(&b);
}

/* ------------------------------------------------------------------ */
/* engines wired together */

static void check_pair_done(end_t *a, end_t *b)
{
    for (int i = 0; i < 2; i++) {
        end_t *x = i ? b : a, *y = i ? a : b;
        CHECK_INT(aemp_hs_state(x->hs), AEMP_HS_GREETED | AEMP_HS_DONE);
        CHECK_STR(aemp_hs_recv_auth(x->hs), "hmac_md6_64_256");
        CHECK_STR(aemp_hs_send_framing(x->hs), "json");
        CHECK_STR(aemp_hs_recv_framing(x->hs), "json");
        CHECK_STR(aemp_hs_remote_line(x->hs, 1), aemp_hs_local_line(y->hs, 1));
        CHECK_STR(aemp_hs_remote_line(x->hs, 2), aemp_hs_local_line(y->hs, 2));
        /* the wire holds the greeting and the auth line, nothing else */
        char tok[65], want[1024];
        CHECK_INT(aemp_auth_token("geheim", 6, aemp_hs_local_line(x->hs, 1),
                                  aemp_hs_local_line(x->hs, 2), aemp_hs_local_line(y->hs, 1),
                                  aemp_hs_local_line(y->hs, 2), tok), 0);
        snprintf(want, sizeof want, "%s\n%s\nhmac_md6_64_256;%s;json\n",
                 aemp_hs_local_line(x->hs, 1), aemp_hs_local_line(x->hs, 2), tok);
        CHECK_STR(buf_str(&x->wire), want);
        CHECK_INT(aemp__buf_size(&y->in), 0);
    }
}

static void make_pair(end_t *a, end_t *b, const char *sa, const char *sb)
{
    unsigned char n1[AEMP_NONCE_BYTES], n2[AEMP_NONCE_BYTES];
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    aemp_hs_config_t ca = basic_cfg("10.0.0.1:4040", sa, n1, 1);
    aemp_hs_config_t cb = basic_cfg("10.0.0.2:4041", sb, n2, 2);
    ca.framings = "json,storable";
    ca.timeout = 4;
    cb.provider = "AE-0.4";
    a->hs = aemp_hs_new(&ca, NULL);
    b->hs = aemp_hs_new(&cb, NULL);
}

TEST(hs_pair_authenticates)
{
    end_t a, b;
    make_pair(&a, &b, "geheim", "geheim");
    REQUIRE(a.hs && b.hs);
    pump(&a, &b, NULL, 0, 0);
    check_pair_done(&a, &b);
    CHECK_STR(aemp_hs_remote_noderef(a.hs), "10.0.0.2:4041");
    CHECK_STR(aemp_hs_remote_noderef(b.hs), "10.0.0.1:4040");
    CHECK_INT(aemp_hs_remote_timeout(a.hs), 30);
    CHECK_INT(aemp_hs_remote_timeout(b.hs), 4);
    CHECK_STR(aemp_hs_remote_kv(a.hs, "provider"), "AE-0.4");
    CHECK_STR(aemp_hs_remote_kv(b.hs, "provider"), "aemp-C-" AEMP_VERSION);
    CHECK_STR(aemp_hs_remote_kv(b.hs, "peeraddr"), "127.0.0.1:1");
    CHECK(aemp_hs_remote_kv(b.hs, "tls") == NULL);
    /* nothing more happens once done */
    CHECK_INT(t_hs_feed_str(a.hs, "[\"\",\"devnull\"]"), 0);
    aemp_hs_fail(a.hs, AEMP_EIO, "late");
    CHECK_INT(aemp_hs_error_code(a.hs), 0);
    CHECK_STR(aemp_hs_error(a.hs), "");
    end_free(&a);
    end_free(&b);
}

TEST(hs_pair_random_splits)
{
    for (uint64_t seed = 1; seed <= 200; seed++) {
        uint64_t rng = seed * 0x9e3779b97f4a7c15ull;
        end_t a, b;
        make_pair(&a, &b, "geheim", "geheim");
        REQUIRE(a.hs && b.hs);
        pump(&a, &b, &rng, 0, 0);
        check_pair_done(&a, &b);
        end_free(&a);
        end_free(&b);
    }
}

TEST(hs_pair_wrong_secret)
{
    for (int mode = 0; mode < 2; mode++) {
        uint64_t rng = 77;
        end_t a, b;
        make_pair(&a, &b, "geheim", "falsch");
        REQUIRE(a.hs && b.hs);
        pump(&a, &b, mode ? &rng : NULL, 0, 0);
        for (int i = 0; i < 2; i++) {
            end_t *x = i ? &b : &a;
            CHECK_INT(aemp_hs_state(x->hs), AEMP_HS_FAILED);
            CHECK_INT(aemp_hs_error_code(x->hs), AEMP_EAUTH);
            CHECK_STR(aemp_hs_error(x->hs), "authentication failure/shared secret mismatch");
            /* each sent its auth line before failing, as Perl nodes do */
            const char *w = buf_str(&x->wire);
            CHECK(strstr(w, "\nhmac_md6_64_256;") != NULL);
            CHECK(!strstr(aemp_hs_error(x->hs), "geheim"));
            CHECK(!strstr(aemp_hs_error(x->hs), "falsch"));
        }
        end_free(&a);
        end_free(&b);
    }
}

TEST(hs_pair_cleartext)
{
    unsigned char n1[AEMP_NONCE_BYTES], n2[AEMP_NONCE_BYTES];
    end_t a = {0}, b = {0};
    aemp_hs_config_t ca = basic_cfg("10.0.0.1:4040", "geheim", n1, 1);
    aemp_hs_config_t cb = basic_cfg("10.0.0.2:4040", "geheim", n2, 2);
    ca.auths_send = "cleartext";
    a.hs = aemp_hs_new(&ca, NULL);
    b.hs = aemp_hs_new(&cb, NULL);
    REQUIRE(a.hs && b.hs);
    pump(&a, &b, NULL, 0, 0);
    CHECK_INT(aemp_hs_state(a.hs), AEMP_HS_GREETED | AEMP_HS_DONE);
    CHECK_INT(aemp_hs_state(b.hs), AEMP_HS_GREETED | AEMP_HS_DONE);
    CHECK_STR(aemp_hs_recv_auth(b.hs), "cleartext");
    CHECK_STR(aemp_hs_recv_auth(a.hs), "hmac_md6_64_256");
    CHECK(strstr(buf_str(&a.wire), "\ncleartext;67656865696d;json\n") != NULL);
    end_free(&a);
    end_free(&b);

    /* both can be sent: the peer's order decides */
    ca.auths_send = "cleartext,hmac_md6_64_256";
    cb.auths_accept = "cleartext,hmac_md6_64_256";
    a.hs = aemp_hs_new(&ca, NULL);
    b.hs = aemp_hs_new(&cb, NULL);
    REQUIRE(a.hs && b.hs);
    pump(&a, &b, NULL, 0, 0);
    CHECK_STR(aemp_hs_recv_auth(b.hs), "cleartext");
    end_free(&a);
    end_free(&b);
    cb.auths_accept = "hmac_md6_64_256,cleartext";
    a.hs = aemp_hs_new(&ca, NULL);
    b.hs = aemp_hs_new(&cb, NULL);
    REQUIRE(a.hs && b.hs);
    pump(&a, &b, NULL, 0, 0);
    CHECK_STR(aemp_hs_recv_auth(b.hs), "hmac_md6_64_256");
    end_free(&a);
    end_free(&b);

    /* a peer that does not take cleartext, and a wrong cleartext secret */
    ca.auths_send = "cleartext";
    cb.auths_accept = "hmac_md6_64_256";
    a.hs = aemp_hs_new(&ca, NULL);
    b.hs = aemp_hs_new(&cb, NULL);
    REQUIRE(a.hs && b.hs);
    pump(&a, &b, NULL, 0, 0);
    CHECK_STR(aemp_hs_error(a.hs), "hmac_md6_64_256: no common auth type supported");
    end_free(&a);
    end_free(&b);
    cb = basic_cfg("10.0.0.2:4040", "falsch", n2, 2);
    a.hs = aemp_hs_new(&ca, NULL);
    b.hs = aemp_hs_new(&cb, NULL);
    REQUIRE(a.hs && b.hs);
    pump(&a, &b, NULL, 0, 0);
    CHECK_STR(aemp_hs_error(b.hs), "authentication failure/shared secret mismatch");
    CHECK(!strstr(aemp_hs_error(b.hs), "66616c736368"));
    CHECK(!strstr(aemp_hs_error(b.hs), "67656865696d"));
    end_free(&a);
    end_free(&b);
}

/* ------------------------------------------------------------------ */
/* TLS */

TEST(hs_tls_roles)
{
    for (unsigned seed = 1; seed <= 20; seed++) {
        unsigned char n1[AEMP_NONCE_BYTES], n2[AEMP_NONCE_BYTES];
        end_t a = {0}, b = {0};
        aemp_hs_config_t ca = basic_cfg("10.0.0.1:4040", "geheim", n1, seed);
        aemp_hs_config_t cb = basic_cfg("10.0.0.2:4040", "geheim", n2, seed + 1000);
        ca.tls = cb.tls = 1;
        a.hs = aemp_hs_new(&ca, NULL);
        b.hs = aemp_hs_new(&cb, NULL);
        REQUIRE(a.hs && b.hs);
        pump(&a, &b, NULL, 0, 0);
        int a_lower = strcmp(aemp_hs_local_line(a.hs, 2), aemp_hs_local_line(b.hs, 2)) < 0;
        CHECK_INT(aemp_hs_state(a.hs),
                  AEMP_HS_GREETED | (a_lower ? AEMP_HS_TLS_CLIENT : AEMP_HS_TLS_SERVER));
        CHECK_INT(aemp_hs_state(b.hs),
                  AEMP_HS_GREETED | (a_lower ? AEMP_HS_TLS_SERVER : AEMP_HS_TLS_CLIENT));
        /* TLS records wait for the caller; the engine takes none */
        CHECK_INT(t_hs_feed_str(a.hs, "\x16\x03\x01"), 0);
        /* "TLS" is up: each sends tls;;json and accepts the other's */
        pump(&a, &b, NULL, 1, 0);
        for (int i = 0; i < 2; i++) {
            end_t *x = i ? &b : &a;
            CHECK_INT(x->tls_ups, 1);
            CHECK_INT(aemp_hs_state(x->hs), AEMP_HS_GREETED | AEMP_HS_DONE);
            CHECK_STR(aemp_hs_recv_auth(x->hs), "tls");
            CHECK_STR(aemp_hs_recv_framing(x->hs), "json");
            CHECK(strstr(buf_str(&x->wire), "\ntls;;json\n") != NULL);
            CHECK_INT(aemp_hs_tls_up(x->hs), AEMP_ESTATE);
        }
        end_free(&a);
        end_free(&b);
    }
}

TEST(hs_tls_boundaries)
{
    unsigned char n1[AEMP_NONCE_BYTES];
    aemp_hs_config_t c = basic_cfg("10.0.0.1:4040", "geheim", n1, 1);
    c.tls = 1;
    aemp_hs_t *hs = aemp_hs_new(&c, NULL);
    REQUIRE(hs);
    CHECK_INT(aemp_hs_tls_up(hs), AEMP_ESTATE);
    t_hs_drain(hs, NULL);
    /* feed stops right after the nonce line */
    const char *g = PEER1 ";tls=1.0\n" PEER2 "\n";
    char in[1024];
    snprintf(in, sizeof in, "%s\x16\x03\x01\x02", g);
    CHECK_INT(t_hs_feed_str(hs, in), strlen(g));
    unsigned st = aemp_hs_state(hs);
    CHECK(st & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER));
    CHECK(!(st & AEMP_HS_SEND));
    CHECK_INT(t_hs_feed_str(hs, "\x16\x03\x01"), 0);
    CHECK_INT(aemp_hs_tls_up(hs), 0);
    aemp__buf_t out = {0};
    t_hs_drain(hs, &out);
    CHECK_STR(buf_str(&out), "tls;;json\n");
    CHECK_INT(aemp_hs_tls_up(hs), AEMP_ESTATE);
    /* inside TLS an hmac line is checked as usual; a tls line with data
     * is not accepted */
    CHECK_INT(t_hs_feed_str(hs, "tls;x;json\n"), 11);
    CHECK_STR(aemp_hs_error(hs), "authentication failure/shared secret mismatch");
    aemp_hs_free(hs);

    hs = aemp_hs_new(&c, NULL);
    REQUIRE(hs);
    CHECK_INT(t_hs_feed_str(hs, g), strlen(g));
    CHECK_INT(aemp_hs_tls_up(hs), 0);
    char tok[65], line[128];
    /* the peer's line 1 here has ;tls=1.0: compute over what was sent */
    CHECK_INT(aemp_auth_token("geheim", 6, PEER1 ";tls=1.0", PEER2, aemp_hs_local_line(hs, 1),
                              aemp_hs_local_line(hs, 2), tok), 0);
    snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\n", tok);
    CHECK_INT(t_hs_feed_str(hs, line), strlen(line));
    CHECK_INT(aemp_hs_state(hs) & AEMP_HS_DONE, AEMP_HS_DONE);
    CHECK_STR(aemp_hs_recv_auth(hs), "hmac_md6_64_256");
    aemp_hs_free(hs);

    /* TLS failing from outside */
    hs = aemp_hs_new(&c, NULL);
    REQUIRE(hs);
    CHECK_INT(t_hs_feed_str(hs, g), strlen(g));
    t_hs_drain(hs, NULL);
    aemp_hs_fail(hs, AEMP_ETLS, "error:0A000086:SSL routines::certificate verify failed");
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
    CHECK_INT(aemp_hs_error_code(hs), AEMP_ETLS);
    CHECK_STR(aemp_hs_error(hs), "error:0A000086:SSL routines::certificate verify failed");
    CHECK_INT(aemp_hs_tls_up(hs), AEMP_ESTATE);
    aemp_hs_free(hs);
    aemp__buf_free(&out);
}

/* The peer's tls= value counts when its integer part is 1. */
TEST(hs_peer_tls_counts_when_its_integer_part_is_1)
{
    static const struct {
        const char *kv;
        int tls;
    } cases[] = {
        {";tls=1.0", 1},  {";tls=1", 1},   {";tls=1.9", 1},  {";tls= 1.5x", 1},
        {";tls=10e-1", 1}, {";tls=2.0", 0}, {";tls=0.9", 0},  {";tls", 0},
        {";tls=", 0},     {";tls=inf", 0}, {";tls=yes", 0},  {";tls=1.0;tls=0", 0},
        {";tls=0;tls=1.0", 1}, {";TLS=1.0", 0}, {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char n1[AEMP_NONCE_BYTES];
        aemp_hs_config_t c = basic_cfg("10.0.0.1:4040", "geheim", n1, 1);
        c.tls = 1;
        aemp_hs_t *hs = aemp_hs_new(&c, NULL);
        REQUIRE(hs);
        t_hs_drain(hs, NULL);
        char in[512];
        snprintf(in, sizeof in, "%s%s\n%s\n", PEER1, cases[i].kv, PEER2);
        CHECK_INT(t_hs_feed_str(hs, in), strlen(in));
        unsigned st = aemp_hs_state(hs);
        int tls = (st & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER)) != 0;
        if (tls != cases[i].tls)
            t_fail(__FILE__, __LINE__, "\"%s\": TLS %d, expected %d", cases[i].kv, tls,
                   cases[i].tls);
        /* without TLS the hmac line is out at once */
        CHECK_INT((st & AEMP_HS_SEND) != 0, !cases[i].tls);
        aemp_hs_free(hs);
    }
}

/* ------------------------------------------------------------------ */
/* engine interface */

TEST(hs_bytes_after_the_auth_line_are_left_to_the_caller)
{
    aemp_hs_t *hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(hs);
    aemp_hs_t *probe = greeted("geheim");
    REQUIRE(probe);
    char tok[65], in[1024];
    peer_token(probe, "geheim", tok);
    aemp_hs_free(probe);
    const char *data = "[\"\",\"devnull\"][\"x\"]";
    int n = snprintf(in, sizeof in, "%s\n%s\nhmac_md6_64_256;%s;json\n%s", PEER1, PEER2, tok,
                     data);
    CHECK_INT(aemp_hs_feed(hs, in, (size_t)n), (size_t)n - strlen(data));
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_SEND | AEMP_HS_GREETED | AEMP_HS_DONE);
    CHECK_INT(aemp_hs_feed(hs, data, strlen(data)), 0);
    /* out: greeting and auth line; partial acks */
    size_t len;
    const char *p = aemp_hs_out(hs, &len);
    REQUIRE(p);
    size_t total = len;
    aemp_hs_out_ack(hs, 10);
    p = aemp_hs_out(hs, &len);
    CHECK_INT(len, total - 10);
    aemp_hs_out_ack(hs, len + 100);
    CHECK(aemp_hs_out(hs, &len) == NULL);
    CHECK_INT(len, 0);
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_GREETED | AEMP_HS_DONE);
    aemp_hs_free(hs);
}

TEST(hs_fail_api_sticky)
{
    aemp_hs_t *hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(hs);
    aemp_hs_fail(hs, AEMP_ETIMEDOUT, "Connection timed out");
    /* the greeting queued before stays available; nothing new comes */
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED | AEMP_HS_SEND);
    CHECK_INT(aemp_hs_error_code(hs), AEMP_ETIMEDOUT);
    CHECK_STR(aemp_hs_error(hs), "Connection timed out");
    CHECK_INT(t_hs_feed_str(hs, PEER1 "\n" PEER2 "\n"), 0);
    aemp_hs_fail(hs, AEMP_EIO, "second");
    CHECK_STR(aemp_hs_error(hs), "Connection timed out");
    CHECK_INT(aemp_hs_tls_up(hs), AEMP_ESTATE);
    t_hs_drain(hs, NULL);
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
    aemp_hs_free(hs);

    hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(hs);
    aemp_hs_fail(hs, 0, NULL);
    CHECK_INT(aemp_hs_error_code(hs), AEMP_EPROTO);
    CHECK_STR(aemp_hs_error(hs), "protocol error");
    aemp_hs_free(hs);
    aemp_hs_fail(NULL, AEMP_EIO, "x");
    CHECK_INT(aemp_hs_error_code(NULL), AEMP_EINVAL);
    CHECK_STR(aemp_hs_error(NULL), "");
    CHECK(aemp_hs_remote_kv(NULL, "x") == NULL);
}

TEST(hs_kv_and_getters)
{
    aemp_hs_t *hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(hs);
    const char *in = "aemp;0;node,x;,hmac_md6_64_256,;json;a=b=c;flag;=x;;timeout=7;"
                     "timeout=9;provider=P;empty=\n" PEER2 "\n";
    CHECK(aemp_hs_remote_kv(hs, "a") == NULL);
    CHECK(aemp_hs_remote_noderef(hs) == NULL);
    CHECK_INT(aemp_hs_remote_timeout(hs), -1);
    CHECK_INT(t_hs_feed_str(hs, in), strlen(in));
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_SEND | AEMP_HS_GREETED);
    CHECK_STR(aemp_hs_remote_noderef(hs), "node,x");
    CHECK_STR(aemp_hs_remote_kv(hs, "a"), "b=c");
    CHECK_STR(aemp_hs_remote_kv(hs, "flag"), "");
    CHECK_STR(aemp_hs_remote_kv(hs, "empty"), "");
    CHECK(aemp_hs_remote_kv(hs, "") == NULL);
    CHECK(aemp_hs_remote_kv(hs, "x") == NULL);
    CHECK(aemp_hs_remote_kv(hs, "=x") == NULL);
    CHECK(aemp_hs_remote_kv(hs, "missing") == NULL);
    CHECK_STR(aemp_hs_remote_kv(hs, "timeout"), "9");
    CHECK_INT(aemp_hs_remote_timeout(hs), 9);
    CHECK_STR(aemp_hs_remote_kv(hs, "provider"), "P");
    CHECK_STR(aemp_hs_send_framing(hs), "json");
    CHECK(aemp_hs_recv_framing(hs) == NULL);
    CHECK_STR(aemp_hs_remote_line(hs, 2), PEER2);
    aemp_hs_free(hs);

    static const struct {
        const char *kv;
        int t;
    } tt[] = {{";timeout=30", 30}, {";timeout=4.5", 4}, {";timeout=abc", -1},
              {";timeout=", -1},   {";timeout", -1},    {"", -1},
              {";timeout=-3", -1}, {";timeout=99999999999", 1000000000}};
    for (size_t i = 0; i < sizeof tt / sizeof tt[0]; i++) {
        hs = mk_basic("10.0.0.1:4040", "geheim", 1);
        REQUIRE(hs);
        char line[256];
        snprintf(line, sizeof line, "aemp;0;n;hmac_md6_64_256;json%s\n", tt[i].kv);
        CHECK_INT(t_hs_feed_str(hs, line), strlen(line));
        CHECK_INT(aemp_hs_remote_timeout(hs), tt[i].t);
        aemp_hs_free(hs);
    }

    /* trailing empty fields are no fields; an empty noderef is "" */
    hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(hs);
    CHECK_INT(t_hs_feed_str(hs, "aemp;0;;hmac_md6_64_256;json;;;\n"), 32);
    CHECK_INT(aemp_hs_state(hs) & AEMP_HS_FAILED, 0);
    CHECK_STR(aemp_hs_remote_noderef(hs), "");
    aemp_hs_free(hs);
}

/* ------------------------------------------------------------------ */
/* robustness */

/* The token computed another way: the whole greeting text handed to
 * aemp_hmac_md6 as the key (the engine hashes a long key itself). */
static void token_by_hmac(const char *secret, size_t slen, const char *text, size_t tlen,
                          char out[65])
{
    unsigned char key[32], mac[32];
    CHECK_INT(aemp_md6(256, secret, slen, key), 0);
    CHECK_INT(aemp_hmac_md6(text, tlen, key, 32, 64, 256, mac), 0);
    aemp__hex(mac, 32, out);
}

TEST(hs_auth_token_paths)
{
    char a[65], b[65];
    /* a greeting text of at most 64 bytes is used as the key directly */
    CHECK_INT(aemp_auth_token("s", 1, "a", "b", "c", "d", a), 0);
    token_by_hmac("s", 1, "a\nb\nc\nd\n", 8, b);
    CHECK_STR(a, b);
    static char l1[61];
    memset(l1, 'x', 60);
    CHECK_INT(aemp_auth_token("s", 1, l1, "", "", "", a), 0); /* 64 bytes */
    char text[80];
    snprintf(text, sizeof text, "%s\n\n\n\n", l1);
    token_by_hmac("s", 1, text, 64, b);
    CHECK_STR(a, b);
    l1[60] = 0;
    char l1b[62];
    snprintf(l1b, sizeof l1b, "%sy", l1);
    CHECK_INT(aemp_auth_token("s", 1, l1b, "", "", "", a), 0); /* 65: hashed */
    snprintf(text, sizeof text, "%s\n\n\n\n", l1b);
    token_by_hmac("s", 1, text, 65, b);
    CHECK_STR(a, b);
}

/* A NUL byte inside a peer's line is part of the line: the token covers
 * it (the getters, being C strings, stop there). */
TEST(hs_nul_in_peer_line)
{
    aemp_hs_t *hs = mk_basic("10.0.0.1:4040", "geheim", 1);
    REQUIRE(hs);
    static const char l1[] = "aemp;0;n;hmac_md6_64_256;json;x=a\0b";
    size_t l1n = sizeof l1 - 1;
    char in[256];
    memcpy(in, l1, l1n);
    memcpy(in + l1n, "\n" PEER2 "\n", strlen(PEER2) + 2);
    size_t inn = l1n + strlen(PEER2) + 2;
    CHECK_INT(aemp_hs_feed(hs, in, inn), inn);
    CHECK_STR(aemp_hs_remote_kv(hs, "x"), "a");
    /* the peer's token: its lines first, then ours */
    char text[1024], tok[65], line[128];
    size_t n = 0;
    memcpy(text, in, inn);
    n = inn;
    n += (size_t)snprintf(text + n, sizeof text - n, "%s\n%s\n", aemp_hs_local_line(hs, 1),
                          aemp_hs_local_line(hs, 2));
    token_by_hmac("geheim", 6, text, n, tok);
    snprintf(line, sizeof line, "hmac_md6_64_256;%s;json\n", tok);
    CHECK_INT(t_hs_feed_str(hs, line), strlen(line));
    CHECK_INT(aemp_hs_state(hs) & ~AEMP_HS_SEND, AEMP_HS_GREETED | AEMP_HS_DONE);
    aemp_hs_free(hs);
}

/* Random input made of protocol fragments, in random pieces: the engine
 * never takes more than it is given, stops for good once failed, and
 * never crashes (the sanitizer build watches memory). */
TEST(hs_random_input)
{
    static const char *frag[] = {
        "aemp", ";", "0", "1", ",", "=", "\n", "\r", "\r\n", "hmac_md6_64_256",
        "cleartext", "tls", "json", "storable", "tls=1.0", "timeout=", "x",
        PEER2, "\0", "\xff", ";;", "aemp;0;n;hmac_md6_64_256;json;tls=1\n"};
    uint64_t rng = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        unsigned char nonce[AEMP_NONCE_BYTES];
        aemp_hs_config_t c = basic_cfg("10.0.0.1:4040", "geheim", nonce, (unsigned)iter);
        c.tls = iter & 1;
        c.auths_send = iter & 2 ? "cleartext,hmac_md6_64_256" : NULL;
        aemp_hs_t *hs = aemp_hs_new(&c, NULL);
        REQUIRE(hs);
        char buf[1024];
        size_t n = 0;
        int parts = (int)(t_rand(&rng) % 60);
        for (int i = 0; i < parts; i++) {
            const char *f = frag[t_rand(&rng) % (sizeof frag / sizeof frag[0])];
            size_t fl = f[0] ? strlen(f) : 1;
            if (n + fl > sizeof buf) break;
            memcpy(buf + n, f, fl);
            n += fl;
        }
        size_t pos = 0;
        while (pos < n) {
            size_t k = 1 + t_rand(&rng) % (n - pos);
            unsigned before = aemp_hs_state(hs);
            size_t used = aemp_hs_feed(hs, buf + pos, k);
            CHECK(used <= k);
            if (before & (AEMP_HS_FAILED | AEMP_HS_DONE)) CHECK_INT(used, 0);
            unsigned st = aemp_hs_state(hs);
            if (st & AEMP_HS_FAILED) {
                CHECK(aemp_hs_error_code(hs) < 0);
                CHECK(*aemp_hs_error(hs) != 0);
                CHECK(!(st & (AEMP_HS_DONE | AEMP_HS_GREETED | AEMP_HS_TLS_CLIENT |
                              AEMP_HS_TLS_SERVER)));
            }
            int tls = (st & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER)) != 0;
            if (tls) CHECK_INT(aemp_hs_tls_up(hs), 0);
            t_hs_drain(hs, NULL);
            pos += used;
            if (used < k && !tls) break;
        }
        aemp_hs_free(hs);
    }
}
