/*
 * test_handshake_p1.c - the handshake engine speaking protocol 1
 * (AnyEvent::MP 2.02): the tokens of vectors/p1/auth.json through the
 * public token functions and through engines greeting with the vectors'
 * lines, every recorded connection of vectors/p1/transcripts replayed as
 * either Perl side up to the auth line (outcome and error text as the
 * Perl logs show), the verbatim error texts, GREETED as the driver's hook
 * after line 1, and pairs of engines wired together in memory.
 */
#include "test.h"
#include "aemp_int.h"

#include <stdlib.h>

/* ------------------------------------------------------------------ */
/* helpers */

/* An engine that greets with exactly l1/l2: field 3 of l1 is the node id,
 * 4 the auth list, 5 the framings, the rest goes through kv_override, the
 * nonce is l2 decoded. It writes the framings it lists (so a cbor session
 * replays as recorded), has TLS when tls, and no secret when secret is
 * NULL. Returns NULL (after a failed check) when the lines do not fit. */
static aemp_hs_t *engine_for(const char *l1, const char *l2, const void *secret, size_t slen,
                             int tls)
{
    char f[5][4096];
    const char *p = l1;
    for (int i = 0; i < 5; i++) {
        size_t n = strcspn(p, ";");
        if (n >= sizeof f[i] || (!p[n] && i < 4)) {
            t_fail(__FILE__, __LINE__, "greeting without five fields: %s", l1);
            return NULL;
        }
        memcpy(f[i], p, n);
        f[i][n] = 0;
        p += n + (p[n] ? 1 : 0);
    }
    unsigned char nonce[AEMP_NONCE1_BYTES];
    if (t_b64dec(l2, nonce, sizeof nonce) != AEMP_NONCE1_BYTES) {
        t_fail(__FILE__, __LINE__, "nonce line is not 66 bytes: %s", l2);
        return NULL;
    }
    aemp_hs_config_t c;
    memset(&c, 0, sizeof c);
    c.protocol = 1;
    c.noderef = f[2];
    c.auths_accept = f[3];
    c.framings = f[4];
    c.framings_send = f[4];
    c.kv_override = p;
    c.nonce = nonce;
    c.tls = tls;
    c.secret = secret;
    c.secret_len = slen;
    int err = 1;
    aemp_hs_t *hs = aemp_hs_new(&c, &err);
    if (!hs || err) t_fail(__FILE__, __LINE__, "aemp_hs_new: %d", err);
    return hs;
}

/* Feeds s whole, as often as the engine stops at a boundary it may go
 * on from (after line 1); returns the bytes consumed. */
static size_t feed_all(aemp_hs_t *hs, const char *s, size_t n)
{
    size_t done = 0;
    for (;;) {
        size_t used = aemp_hs_feed(hs, s + done, n - done);
        done += used;
        if (!used || done == n) return done;
    }
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

#define SECRET "aemp-interop-secret"
#define LINE1(id, rest) "aemp;1;" id ";tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;json" rest

/* A protocol-1 engine with defaults, id and secret given (NULL: none). */
static aemp_hs_t *mk1(const char *id, const char *secret, int tls, unsigned seed)
{
    unsigned char nonce[AEMP_NONCE1_BYTES];
    for (unsigned i = 0; i < sizeof nonce; i++) nonce[i] = (unsigned char)(seed * 131u + i * 7u);
    aemp_hs_config_t c = {.protocol = 1, .noderef = id, .secret = secret,
                          .secret_len = secret ? strlen(secret) : 0, .nonce = nonce,
                          .peeraddr = "127.0.0.1:4040", .tls = tls};
    int err = 1;
    aemp_hs_t *hs = aemp_hs_new(&c, &err);
    if (!hs || err) t_fail(__FILE__, __LINE__, "aemp_hs_new: %d", err);
    return hs;
}

/* ------------------------------------------------------------------ */
/* auth.json */

TEST(hs1_token_vectors)
{
    json_t *root = t_load_vectors("vectors/p1/auth.json");
    json_t *vs = json_object_get(root, "vectors"), *v;
    size_t i;
    REQUIRE(json_array_size(vs) == 25);
    json_array_foreach(vs, i, v) {
        size_t slen;
        unsigned char *secret = t_unhex(jstr(v, "secret_hex"), &slen);
        const char *l1 = jstr(v, "lgreeting1"), *l2 = jstr(v, "lgreeting2");
        const char *r1 = jstr(v, "rgreeting1"), *r2 = jstr(v, "rgreeting2");
        int tls = strcmp(jstr(v, "method"), "tls_sha3_512") == 0;
        char tok[129];
        if (tls) {
            CHECK_INT(aemp_auth_token_tls_sha3(l1, l2, r1, r2, tok), 0);
            CHECK_STR(tok, jstr(v, "lauth"));
            CHECK_INT(aemp_auth_token_tls_sha3(r1, r2, l1, l2, tok), 0);
            CHECK_STR(tok, jstr(v, "rauth"));
        } else {
            CHECK_INT(aemp_auth_token_sha3(secret, slen, l1, l2, r1, r2, tok), 0);
            CHECK_STR(tok, jstr(v, "lauth"));
            CHECK_INT(aemp_auth_token_sha3(secret, slen, r1, r2, l1, l2, tok), 0);
            CHECK_STR(tok, jstr(v, "rauth"));
        }
        CHECK_INT(strlen(tok), 128);
        free(secret);
    }
    char tok[129];
    CHECK_INT(aemp_auth_token_sha3(NULL, 0, "a", "b", "c", "d", tok), 0);
    CHECK_INT(aemp_auth_token_sha3(NULL, 1, "a", "b", "c", "d", tok), AEMP_EINVAL);
    CHECK_INT(aemp_auth_token_sha3("x", 1, "a", NULL, "c", "d", tok), AEMP_EINVAL);
    CHECK_INT(aemp_auth_token_sha3("x", 1, "a", "b", "c", "d", NULL), AEMP_EINVAL);
    CHECK_INT(aemp_auth_token_tls_sha3("a", "b", NULL, "d", tok), AEMP_EINVAL);
    CHECK_INT(aemp_auth_token_tls_sha3("a", "b", "c", "d", NULL), AEMP_EINVAL);
    json_decref(root);
}

/* Each vector through an engine greeting with the vector's lines: it must
 * write auth_line byte for byte (inside TLS for tls_sha3_512, in the
 * vector's TLS role), accept peer_auth_line and the cleartext line, and
 * fail a wrong token with 2.02's text. */
TEST(hs1_vectors_engine)
{
    json_t *root = t_load_vectors("vectors/p1/auth.json");
    json_t *vs = json_object_get(root, "vectors"), *v;
    size_t i;
    json_array_foreach(vs, i, v) {
        int failures_before = t_failures;
        size_t slen;
        unsigned char *secret = t_unhex(jstr(v, "secret_hex"), &slen);
        const char *l1 = jstr(v, "lgreeting1"), *l2 = jstr(v, "lgreeting2");
        const char *r1 = jstr(v, "rgreeting1"), *r2 = jstr(v, "rgreeting2");
        int tls = strcmp(jstr(v, "method"), "tls_sha3_512") == 0;
        /* a TLS node of the vectors without a secret has none configured */
        const void *sec = tls && slen == 0 ? NULL : secret;
        /* we have a certificate where our greeting says tls=1.0 */
        int cert = strstr(l1, ";tls=1.0") != NULL;
        char peer[8192], line[8192], want[16384];
        snprintf(peer, sizeof peer, "%s\n%s\n", r1, r2);
        size_t auth_len;
        unsigned char *auth_bytes = t_unhex(jstr(v, "auth_line_hex"), &auth_len);

        for (int variant = 0; variant < 3; variant++) {
            aemp_hs_t *hs = engine_for(l1, l2, sec, slen, cert);
            REQUIRE(hs);
            aemp__buf_t out = {0};
            CHECK_STR(aemp_hs_local_line(hs, 1), l1);
            CHECK_STR(aemp_hs_local_line(hs, 2), l2);
            /* line 1 alone: GREETED with the node id, nothing more */
            CHECK_INT(t_hs_feed_str(hs, peer), strlen(r1) + 1);
            CHECK_INT(aemp_hs_state(hs), AEMP_HS_SEND | AEMP_HS_GREETED);
            t_hs_drain(hs, &out);
            snprintf(want, sizeof want, "%s\n%s\n", l1, l2);
            CHECK_STR(aemp__buf_head(&out), want);
            CHECK_INT(t_hs_feed_str(hs, peer + strlen(r1) + 1), strlen(r2) + 1);
            if (tls) {
                CHECK_INT(aemp_hs_state(hs),
                          AEMP_HS_GREETED | (strcmp(jstr(v, "tls_role"), "connect") == 0
                                                 ? AEMP_HS_TLS_CLIENT
                                                 : AEMP_HS_TLS_SERVER));
                CHECK(aemp_hs_out(hs, NULL) == NULL);
                CHECK_INT(aemp_hs_tls_up(hs), 0);
            }
            t_hs_drain(hs, &out);
            CHECK_INT(aemp__buf_size(&out), strlen(want) + auth_len);
            CHECK_MEM(aemp__buf_head(&out) + strlen(want), auth_bytes, auth_len);
            CHECK_STR(aemp_hs_send_auth(hs), jstr(v, "method"));
            CHECK_STR(aemp_hs_send_framing(hs), jstr(v, "s_framing"));
            const char *id = strchr(strchr(r1, ';') + 1, ';') + 1;
            CHECK(aemp_hs_remote_id(hs) && !strncmp(aemp_hs_remote_id(hs), id, strcspn(id, ";")) &&
                  strlen(aemp_hs_remote_id(hs)) == strcspn(id, ";"));

            const char *expect_err = NULL;
            if (variant == 0) {
                snprintf(line, sizeof line, "%s\n", jstr(v, "peer_auth_line"));
            } else if (variant == 1) {
                /* a wrong token: one digit changed (the live vector's peer
                 * sent 128 zeros) */
                snprintf(line, sizeof line, "%s\n", jstr(v, "peer_auth_line"));
                char *d = strchr(line, ';') + 1;
                if (strcmp(jstr(v, "id"), "live-wrong-token") == 0) memset(d, '0', 128);
                else d[5] = d[5] == '0' ? '1' : '0';
                expect_err = "authentication failure/shared secret mismatch";
            } else {
                /* 2.02 also takes the secret in clear (not inside TLS
                 * without a secret configured) */
                if (tls && !sec) {
                    snprintf(line, sizeof line, "cleartext;;json\n");
                    expect_err = "authentication failure/shared secret mismatch";
                } else {
                    snprintf(line, sizeof line, "cleartext;%s;%s\n", jstr(v, "secret_hex"),
                             jstr(v, "s_framing"));
                }
            }
            CHECK_INT(t_hs_feed_str(hs, line), strlen(line));
            if (expect_err) {
                CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
                CHECK_INT(aemp_hs_error_code(hs), AEMP_EAUTH);
                CHECK_STR(aemp_hs_error(hs), expect_err);
            } else {
                CHECK_INT(aemp_hs_state(hs), AEMP_HS_GREETED | AEMP_HS_DONE);
                CHECK_STR(aemp_hs_recv_auth(hs), variant ? "cleartext" : jstr(v, "method"));
            }
            aemp__buf_free(&out);
            aemp_hs_free(hs);
        }
        free(auth_bytes);
        free(secret);
        if (t_failures != failures_before) fprintf(stderr, "    (in vector %s)\n", jstr(v, "id"));
    }
    json_decref(root);
}

/* ------------------------------------------------------------------ */
/* the recorded sessions */

/* The bytes one side sent on a connection, in order (NUL-terminated). */
static void stream(json_t *tr, int conn, const char *dir, aemp__buf_t *out)
{
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(tr, "events"), i, e) {
        const char *hex = jstr(e, "hex");
        if (json_integer_value(json_object_get(e, "conn")) != conn || !hex || !*hex ||
            strcmp(jstr(e, "dir"), dir) != 0)
            continue;
        size_t n;
        unsigned char *b = t_unhex(hex, &n);
        aemp__buf_append(out, b, n);
        free(b);
    }
    aemp__buf_reserve(out, 1);
    out->data[out->len] = 0;
}

/* The setup.nodes entry of the node that greeted with id: by its id, or
 * by the part before '%' of a configured id such as "aemp/%n/%u". */
static json_t *node_by_id(json_t *tr, const char *id, const char **label)
{
    json_t *nodes = json_object_get(json_object_get(tr, "setup"), "nodes"), *n;
    const char *k;
    if (!id) return NULL;
    json_object_foreach(nodes, k, n) {
        const char *nid = jstr(n, "node_id");
        size_t pre = strcspn(nid, "%");
        if (strcmp(nid, id) == 0 || (nid[pre] && pre && strncmp(nid, id, pre) == 0)) {
            *label = k;
            return n;
        }
    }
    return NULL;
}

/*
 * What the Perl log of `label` says about its k-th connection with the
 * peer at addr: "+" for "connected as ...", else the disconnect message
 * (without the logger's final '.'), NULL when the log has nothing.
 * Attempts that never connected ("Connection refused") are no
 * connections; a "connected" line and the disconnect after it are one.
 * Writes into buf.
 */
static const char *log_outcome(json_t *tr, const char *label, const char *addr, int k,
                               char *buf, size_t cap)
{
    json_t *lines = json_object_get(json_object_get(tr, "logs"), label), *l;
    size_t i;
    char pat[300];
    snprintf(pat, sizeof pat, "AnyEvent::MP::Transport: %s ", addr);
    int seen = -1, open = 0;
    json_array_foreach(lines, i, l) {
        const char *s = json_string_value(l), *at = strstr(s, pat);
        if (!at) continue;
        at += strlen(pat);
        int connected = strncmp(at, "connected as ", 13) == 0;
        if (strstr(at, "disconnected - Connection refused.")) continue;
        if (connected || !open) seen++;
        open = connected;
        if (seen != k) continue;
        if (connected) return "+";
        const char *m = strstr(at, "disconnected - ");
        if (!m) return NULL;
        m += strlen("disconnected - ");
        size_t n = strlen(m);
        if (n && m[n - 1] == '.') n--;
        snprintf(buf, cap, "%.*s", (int)n, m);
        return buf;
    }
    return NULL;
}

/* Errors the engine itself reports, as 2.02 words them. */
static int engine_text(const char *m)
{
    static const char *const fixed[] = {
        "I refuse to talk to myself", "authentication error, echo attack?",
        "authentication failure/shared secret mismatch",
        "unable to handshake TLS and no shared secret configured"};
    static const char *const tails[] = {
        ": no common auth type supported", ": no common framing method supported",
        ": fatal, selected unsupported snd auth method",
        ": fatal, selected unsupported rcv auth method", ": unusable remote framing"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(m, fixed[i])) return 1;
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        size_t a = strlen(m), b = strlen(tails[i]);
        if (a > b && !strcmp(m + a - b, tails[i])) return 1;
    }
    return !strncmp(m, "unparsable greeting, expected 'aemp', got '", 43) ||
           !strncmp(m, "version mismatch (we: 1, they: ", 31);
}

/* Where we knowingly differ from 2.02: a 5000-byte greeting line that
 * arrives whole with its LF. 2.02 takes it (its limit is on buffered
 * bytes without a line end), we fail every line over 4096 bytes. */
static int known_deviation(const char *name, int conn, int server)
{
    return !strcmp(name, "12-raw-errors") && conn == 13 && server;
}

/* The first line a node wrote inside TLS on the connection local->remote
 * (08-tls keeps the nodes' plaintext write logs). */
static void tls_auth_line(json_t *tr, const char *label, const char *local,
                          const char *remote, char *out, size_t cap)
{
    json_t *ws = json_object_get(json_object_get(json_object_get(tr, "tls_plaintext"), "writes"),
                                 label), *w;
    size_t i;
    out[0] = 0;
    json_array_foreach(ws, i, w) {
        if (json_integer_value(json_object_get(w, "tls")) != 1 ||
            strcmp(jstr(w, "local"), local) || strcmp(jstr(w, "remote"), remote))
            continue;
        const char *t = jstr(w, "text");
        snprintf(out, cap, "%.*s", (int)(strcspn(t, "\n") + 1), t);
        return;
    }
}

/* Bytes of buf up to and including its n-th LF (its length if fewer). */
static size_t lines_len(const char *p, size_t len, int n)
{
    size_t i = 0;
    for (; i < len && n; i++)
        if (p[i] == '\n') n--;
    return i;
}

/*
 * One side of one recorded connection replayed through an engine set up
 * as that Perl node was (its greeting lines, secret, certificate): fed
 * what the other side sent, the engine must write what the node wrote up
 * to and including its auth line (or as far as it got), and end the way
 * the node's log says. Returns 1 when the side was replayed.
 */
static int replay_side(json_t *tr, const char *name, int conn, int server)
{
    char key[16], logbuf[1024], tlsline[1024];
    snprintf(key, sizeof key, "%d", conn);
    json_t *setup = json_object_get(tr, "setup");
    json_t *c = json_object_get(json_object_get(setup, "connections"), key);
    json_t *h = json_object_get(json_object_get(tr, "handshakes"), key);
    const char *me = server ? "server" : "client", *them = server ? "client" : "server";
    char k1[32], k2[32];
    snprintf(k1, sizeof k1, "%s_greeting1", me);
    snprintf(k2, sizeof k2, "%s_greeting2", me);
    const char *l1 = jstr(h, k1), *l2 = jstr(h, k2);
    const char *label = NULL;
    json_t *node = server ? json_object_get(json_object_get(setup, "nodes"),
                                            label = jstr(c, "listener_of"))
                          : node_by_id(tr, jstr(c, "client_node_id"), &label);
    if (!l1 || !l2 || !node) return 0; /* not a Perl node, or it sent nothing */

    int failures_before = t_failures;
    const char *secret = jstr(node, "secret");
    int cert = json_object_get(node, "cert") != NULL;
    aemp_hs_t *hs = engine_for(l1, l2, secret, secret ? strlen(secret) : 0, cert);
    if (!hs) return 1;

    /* the outcome: this side's log, else (log-less aemp tool runs) the
     * other side's when that one connected */
    const char *peer_addr = jstr(c, server ? "client_addr" : "server_addr");
    int k = 0;
    if (!server) {
        /* earlier connections of this node to the same address */
        for (int j = 1; j < conn; j++) {
            char kj[16];
            const char *lj = NULL;
            snprintf(kj, sizeof kj, "%d", j);
            json_t *cj = json_object_get(json_object_get(setup, "connections"), kj);
            if (cj && !strcmp(jstr(cj, "server_addr"), peer_addr) &&
                node_by_id(tr, jstr(cj, "client_node_id"), &lj) && !strcmp(lj, label))
                k++;
        }
    }
    const char *outcome = log_outcome(tr, label, peer_addr, k, logbuf, sizeof logbuf);
    if (!outcome) {
        const char *other = server ? NULL : jstr(c, "listener_of");
        const char *o = other ? log_outcome(tr, other, jstr(c, "client_addr"), 0, logbuf,
                                            sizeof logbuf)
                              : NULL;
        if (o && !strcmp(o, "+")) outcome = o;
    }
    if (server && !outcome) t_fail(__FILE__, __LINE__, "%s %d: no log line", name, conn);
    if (!outcome) {
        /* a hand-written client that greeted with a Perl node's id */
        aemp_hs_free(hs);
        return 0;
    }

    aemp__buf_t mine = {0}, theirs = {0}, out = {0};
    stream(tr, conn, server ? "s2c" : "c2s", &mine);
    stream(tr, conn, server ? "c2s" : "s2c", &theirs);
    int dup = outcome && strstr(outcome, " already connected, not connecting again.") != NULL;
    size_t pos = 0;
    unsigned st = 0;
    for (;;) {
        unsigned before = aemp_hs_state(hs);
        size_t used = aemp_hs_feed(hs, aemp__buf_head(&theirs) + pos, aemp__buf_size(&theirs) - pos);
        pos += used;
        st = aemp_hs_state(hs);
        if ((st & AEMP_HS_GREETED) && !(before & AEMP_HS_GREETED)) {
            /* the driver's hook: the node id is known, nothing else sent */
            t_hs_drain(hs, &out);
            CHECK_INT(aemp__buf_size(&out), strlen(l1) + strlen(l2) + 2);
            CHECK_STR(aemp_hs_remote_id(hs), jstr(c, server ? "client_node_id" : "server_node_id"));
            if (dup) aemp_hs_fail(hs, AEMP_EPROTO, outcome);
        }
        if (!used || (st & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER))) break;
    }
    t_hs_drain(hs, &out);

    int is_tls = json_is_true(json_object_get(c, "tls")) && (st & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER));
    /* what this side wrote before it stopped, or before TLS */
    char authkey[32];
    snprintf(authkey, sizeof authkey, "%s_auth_line", me);
    int lines = is_tls || !jstr(h, authkey) ? 2 : 3;
    size_t want = lines_len(aemp__buf_head(&mine), aemp__buf_size(&mine), lines);
    if (known_deviation(name, conn, server)) {
        CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
        CHECK_INT(aemp_hs_error_code(hs), AEMP_ELIMIT);
    } else {
        CHECK_INT(aemp__buf_size(&out), want);
        if (aemp__buf_size(&out) == want) CHECK_MEM(aemp__buf_head(&out), aemp__buf_head(&mine), want);
    }

    if (is_tls) {
        /* the TLS client is the side that sent the ClientHello */
        const char *hello = jstr(h, "tls_client_hello_sent_by");
        CHECK_INT(st & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER),
                  !strcmp(hello, me) ? AEMP_HS_TLS_CLIENT : AEMP_HS_TLS_SERVER);
        CHECK_INT(aemp_hs_tls_up(hs), 0);
        aemp__buf_t inner = {0};
        t_hs_drain(hs, &inner);
        const char *local = jstr(c, server ? "server_addr" : "client_addr");
        tls_auth_line(tr, label, local, peer_addr, tlsline, sizeof tlsline);
        CHECK_STR(aemp__buf_head(&inner), tlsline);
        aemp__buf_free(&inner);
        const char *plabel = server ? NULL : jstr(c, "listener_of");
        json_t *pn = server ? node_by_id(tr, jstr(c, "client_node_id"), &plabel) : NULL;
        (void)pn;
        tls_auth_line(tr, plabel, peer_addr, local, tlsline, sizeof tlsline);
        CHECK(*tlsline);
        CHECK_INT(t_hs_feed_str(hs, tlsline), strlen(tlsline));
        st = aemp_hs_state(hs);
    }

    if (known_deviation(name, conn, server)) {
        /* checked above */
    } else if (!strcmp(outcome, "+")) {
        CHECK_INT(st & (AEMP_HS_DONE | AEMP_HS_FAILED), AEMP_HS_DONE);
        /* the data phase is the caller's: the engine stopped at it */
        if (!is_tls) CHECK_INT(pos, lines_len(aemp__buf_head(&theirs), aemp__buf_size(&theirs), 3));
    } else if (dup || engine_text(outcome)) {
        CHECK_INT(st & (AEMP_HS_DONE | AEMP_HS_FAILED), AEMP_HS_FAILED);
        CHECK_STR(aemp_hs_error(hs), outcome);
    } else if (!strcmp(outcome, "No space left on device")) {
        CHECK_INT(st & AEMP_HS_FAILED, AEMP_HS_FAILED);
        CHECK_INT(aemp_hs_error_code(hs), AEMP_ELIMIT);
        CHECK_STR(aemp_hs_error(hs), "handshake line too long (over 4096 bytes)");
    } else {
        /* the peer went away or fell silent (Broken pipe, Connection
         * reset by peer, Connection timed out): still waiting */
        CHECK_INT(st & (AEMP_HS_DONE | AEMP_HS_FAILED), 0);
    }
    if (t_failures != failures_before)
        fprintf(stderr, "    (in %s, connection %d, %s side, log: %s)\n", name, conn, me,
                outcome ? outcome : "-");
    aemp__buf_free(&mine);
    aemp__buf_free(&theirs);
    aemp__buf_free(&out);
    aemp_hs_free(hs);
    (void)them;
    return 1;
}

TEST(hs1_transcripts_replay)
{
    static const char *const names[] = {
        "01-seed-client-json", "02-seed-client-cbor", "03-find-via-seed", "04-remote-monitor",
        "05-wrong-secret", "06-node-down-mesh", "07-db-ops", "08-tls", "09-tls-one-sided",
        "10-raw-simple-handshake", "11-aemp-cli", "12-raw-errors"};
    int sides = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "vectors/p1/transcripts/%s.json", names[i]);
        json_t *tr = t_load_vectors(path);
        const char *key;
        json_t *c;
        json_object_foreach(json_object_get(json_object_get(tr, "setup"), "connections"), key, c) {
            int conn = atoi(key);
            sides += replay_side(tr, names[i], conn, 1);
            sides += replay_side(tr, names[i], conn, 0);
        }
        json_decref(tr);
    }
    printf("    %d connection sides replayed\n", sides);
    CHECK(sides >= 60);
}

/* ------------------------------------------------------------------ */
/* crafted input: every check of PROTOCOL-1.md 4.3 with 2.02's text */

#define OURS "ours/1"
#define NONCE "QUJD"

/* Feeds input to a fresh engine (id OURS, secret, TLS when tls) and
 * checks it fails with code and msg, having written only what `sent`
 * says: 2 = the greeting, 3 = also an auth line. */
static void expect1(const char *secret, int tls, const char *input, int code, const char *msg,
                    int sent)
{
    aemp_hs_t *hs = mk1(OURS, secret, tls, 1);
    if (!hs) return;
    aemp__buf_t out = {0};
    feed_all(hs, input, strlen(input));
    t_hs_drain(hs, &out);
    CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
    CHECK_INT(aemp_hs_error_code(hs), code);
    CHECK_STR(aemp_hs_error(hs), msg);
    CHECK_INT(lines_len(aemp__buf_head(&out), aemp__buf_size(&out), 9) ==
                  aemp__buf_size(&out),
              1);
    int n = 0;
    for (size_t i = 0; i < aemp__buf_size(&out); i++) n += aemp__buf_head(&out)[i] == '\n';
    CHECK_INT(n, sent);
    if (secret && strlen(secret) >= 4) CHECK(!strstr(aemp_hs_error(hs), secret));
    CHECK_INT(t_hs_feed_str(hs, "more\n"), 0);
    aemp__buf_free(&out);
    aemp_hs_free(hs);
}

TEST(hs1_errors_verbatim)
{
    expect1(SECRET, 0, "xaemp;1;x;hmac_sha3_512;json\n", AEMP_EPROTO,
            "unparsable greeting, expected 'aemp', got 'xaemp'", 2);
    expect1(SECRET, 0, "\n", AEMP_EPROTO, "unparsable greeting, expected 'aemp', got ''", 2);
    expect1(SECRET, 0, "aemp;0;x;hmac_sha3_512;json\n", AEMP_EPROTO,
            "version mismatch (we: 1, they: 0)", 2);
    expect1(SECRET, 0, "aemp;2.5;x;hmac_sha3_512;json\n", AEMP_EPROTO,
            "version mismatch (we: 1, they: 2.5)", 2);
    expect1(SECRET, 0, "aemp;1;" OURS ";hmac_sha3_512;json\n", AEMP_EPROTO,
            "I refuse to talk to myself", 2);
    expect1(SECRET, 0, "aemp;1;x;hmac_md6_64_256,cleartext;json\n" NONCE "\n", AEMP_EPROTO,
            "hmac_md6_64_256,cleartext: no common auth type supported", 2);
    /* without TLS, tls_* is never chosen */
    expect1(SECRET, 0, "aemp;1;x;tls_sha3_512,tls_anon;json\n" NONCE "\n", AEMP_EPROTO,
            "tls_sha3_512,tls_anon: no common auth type supported", 2);
    expect1(SECRET, 0, "aemp;1;x;hmac_sha3_512;storable,cbor\n" NONCE "\n", AEMP_EPROTO,
            "storable,cbor: no common framing method supported", 2);
    /* no TLS and no secret: T09's client */
    expect1(NULL, 1, "aemp;1;x;tls_sha3_512,hmac_sha3_512;json\n" NONCE "\n", AEMP_EAUTH,
            "unable to handshake TLS and no shared secret configured", 2);
    /* TLS, but the peer lists hmac first: 2.02 picks it and gives up */
    expect1(SECRET, 1, "aemp;1;x;hmac_sha3_512,tls_sha3_512;json;tls=1.0\n" NONCE "\n",
            AEMP_EAUTH, "hmac_sha3_512: fatal, selected unsupported snd auth method", 2);
    expect1(SECRET, 0, "aemp;1;x;hmac_sha3_512;json\n" NONCE "\nhmac_md6_64_256;abcdef;json\n",
            AEMP_EAUTH, "hmac_md6_64_256: fatal, selected unsupported rcv auth method", 3);
    expect1(SECRET, 0, "aemp;1;x;hmac_sha3_512;json\n" NONCE "\ntls_anon;;json\n", AEMP_EAUTH,
            "authentication failure/shared secret mismatch", 3);
    expect1(SECRET, 0, "aemp;1;x;hmac_sha3_512;json\n" NONCE "\ntls_sha3_512;00;json\n",
            AEMP_EAUTH, "authentication failure/shared secret mismatch", 3);
    expect1(SECRET, 0, "aemp;1;x;hmac_sha3_512;json\n" NONCE "\ncleartext;77726f6e67;json\n",
            AEMP_EAUTH, "authentication failure/shared secret mismatch", 3);
    expect1(SECRET, 0,
            "aemp;1;x;hmac_sha3_512;json\n" NONCE
            "\ncleartext;61656d702d696e7465726f702d736563726574;foo\n",
            AEMP_EPROTO, "foo: unusable remote framing", 3);
    /* the secret itself is never quoted, even when it is the method */
    expect1(SECRET, 0, "aemp;1;x;hmac_sha3_512;json\n" NONCE "\n" SECRET ";x;json\n",
            AEMP_EAUTH,
            "(text holding the shared secret, not shown): fatal, selected unsupported rcv auth "
            "method",
            3);

    /* our own lines echoed back */
    aemp_hs_t *hs = mk1(OURS, SECRET, 0, 1);
    REQUIRE(hs);
    char echo[512];
    snprintf(echo, sizeof echo, "%s\n%s\n", aemp_hs_local_line(hs, 1), aemp_hs_local_line(hs, 2));
    aemp_hs_free(hs);
    /* the id is ours too, so check 3 fires first, as in 2.02 */
    expect1(SECRET, 0, echo, AEMP_EPROTO, "I refuse to talk to myself", 2);

    /* a line over the limit */
    char *big = malloc(5100);
    REQUIRE(big);
    memset(big, 'x', 5099);
    big[5099] = 0;
    memcpy(big, "aemp;1;x;hmac_sha3_512;json;pad=", 32);
    aemp_hs_t *h2 = mk1(OURS, SECRET, 0, 2);
    CHECK_INT(t_hs_feed_str(h2, big), AEMP_HS_MAX_LINE);
    CHECK_INT(aemp_hs_error_code(h2), AEMP_ELIMIT);
    CHECK_STR(aemp_hs_error(h2), "handshake line too long (over 4096 bytes)");
    aemp_hs_free(h2);
    free(big);
}

/* Ids that no 2.02 node can route to or we cannot log are refused at
 * line 1, before any auth line, with the reason (aemp.h, AEMP_NODEID_MAX). */
TEST(hs1_unroutable_ids_refused)
{
    expect1(SECRET, 0, "aemp;1;a#b;hmac_sha3_512;json\n", AEMP_EPROTO,
            "refusing node id 'a#b': it contains '#', which splits port ids", 2);
    expect1(SECRET, 0, "aemp;1;;hmac_sha3_512;json\n", AEMP_EPROTO,
            "refusing node id '': it is empty", 2);
    expect1(SECRET, 0, "aemp;1;a\tb;hmac_sha3_512;json\n", AEMP_EPROTO,
            "refusing node id 'a\\x09b': it contains a control character", 2);
    expect1(SECRET, 0, "aemp;1;a\xff\xfe;hmac_sha3_512;json\n", AEMP_EPROTO,
            "refusing node id 'a\\xff\\xfe': it is not UTF-8", 2);
    expect1(SECRET, 0, "aemp;1;a\xc0\xaf;hmac_sha3_512;json\n", AEMP_EPROTO,
            "refusing node id 'a\\xc0\\xaf': it is not UTF-8", 2);
    /* a NUL cannot pass through expect1's C string: fed by length */
    aemp_hs_t *hs = mk1(OURS, SECRET, 0, 1);
    if (hs) {
        static const char nul[] = "aemp;1;a\0b;hmac_sha3_512;json\n";
        feed_all(hs, nul, sizeof nul - 1);
        CHECK_INT(aemp_hs_state(hs) & AEMP_HS_FAILED, AEMP_HS_FAILED);
        CHECK_STR(aemp_hs_error(hs), "refusing node id 'a\\x00b': it contains a NUL byte");
        aemp_hs_free(hs);
    }
    char line[AEMP_NODEID_MAX + 256], msg[AEMP_NODEID_MAX + 128];
    memset(msg, 'i', AEMP_NODEID_MAX + 1);
    msg[AEMP_NODEID_MAX + 1] = 0;
    snprintf(line, sizeof line, "aemp;1;%s;hmac_sha3_512;json\n", msg);
    /* the id is quoted up to 512 bytes, so the reason fits a log line */
    snprintf(msg, sizeof msg, "refusing node id '%.512s...': it is over 1024 bytes", line + 7);
    expect1(SECRET, 0, line, AEMP_EPROTO, msg, 2);
    /* what 2.02 itself names its nodes still passes: UTF-8, '/', ':', '@' */
    const char *ok[] = {"client/IkLi8M2bCG", "aemp/vm/ltVvS2UG6E", "n\xc3\xbc@h:1", "x"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        hs = mk1(OURS, SECRET, 0, 1);
        if (!hs) return;
        snprintf(line, sizeof line, "aemp;1;%s;hmac_sha3_512;json\n", ok[i]);
        t_hs_feed_str(hs, line);
        CHECK_INT(aemp_hs_state(hs) & AEMP_HS_FAILED, 0);
        CHECK_STR(aemp_hs_remote_id(hs), ok[i]);
        aemp_hs_free(hs);
    }
    memset(line, 'i', AEMP_NODEID_MAX);
    CHECK(aemp__nodeid_problem(line, AEMP_NODEID_MAX) == NULL);
    CHECK(aemp__nodeid_problem("a;b", 3) != NULL);
}

/* GREETED after line 1 is the driver's hook: the feed stops there with
 * only our greeting out, so "NODE already connected" goes out as 2.02
 * sends it (T12 connection 17); going on gives the auth line. */
TEST(hs1_feed_stops_at_greeted_so_the_driver_can_refuse)
{
    const char *in = "aemp;1;rawerr/dup;hmac_sha3_512;json;k=v\r\n" NONCE "\r\n";
    for (int refuse = 0; refuse < 2; refuse++) {
        aemp_hs_t *hs = mk1(OURS, SECRET, 0, 3);
        REQUIRE(hs);
        aemp__buf_t out = {0};
        t_hs_drain(hs, &out);
        size_t greeting = aemp__buf_size(&out);
        CHECK_INT(aemp_hs_state(hs), 0);
        CHECK(aemp_hs_remote_id(hs) == NULL);
        CHECK_INT(t_hs_feed_str(hs, in), strcspn(in, "\n") + 1);
        CHECK_INT(aemp_hs_state(hs), AEMP_HS_GREETED);
        CHECK_STR(aemp_hs_remote_id(hs), "rawerr/dup");
        CHECK_STR(aemp_hs_remote_kv(hs, "k"), "v");
        CHECK(aemp_hs_remote_line(hs, 2) == NULL);
        if (refuse) {
            char msg[256];
            snprintf(msg, sizeof msg, AEMP_HS_ALREADY_CONNECTED_FMT, aemp_hs_remote_id(hs));
            aemp_hs_fail(hs, AEMP_EPROTO, msg);
            CHECK_INT(t_hs_feed_str(hs, in + strcspn(in, "\n") + 1), 0);
            CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
            CHECK_STR(aemp_hs_error(hs), "rawerr/dup already connected, not connecting again.");
            t_hs_drain(hs, &out);
            CHECK_INT(aemp__buf_size(&out), greeting);
        } else {
            CHECK_INT(t_hs_feed_str(hs, in + strcspn(in, "\n") + 1), strlen(NONCE) + 2);
            CHECK_INT(aemp_hs_state(hs), AEMP_HS_SEND | AEMP_HS_GREETED);
            CHECK_STR(aemp_hs_send_auth(hs), "hmac_sha3_512");
            CHECK_STR(aemp_hs_remote_line(hs, 2), NONCE);
        }
        aemp__buf_free(&out);
        aemp_hs_free(hs);
    }
}

TEST(hs1_greeting_built)
{
    unsigned char nonce[AEMP_NONCE1_BYTES];
    for (size_t i = 0; i < sizeof nonce; i++) nonce[i] = (unsigned char)(i * 5 + 3);
    aemp_hs_config_t c = {.protocol = 1, .noderef = "client/IkLi8M2bCG", .secret = "s",
                          .secret_len = 1, .nonce = nonce, .peeraddr = "127.0.0.1:56191",
                          .provider = "AE-2.02", .timeout = 30, .tls = 1};
    aemp_hs_t *hs = aemp_hs_new(&c, NULL);
    REQUIRE(hs);
    CHECK_INT(aemp_hs_protocol(hs), 1);
    CHECK_STR(aemp_hs_local_line(hs, 1),
              LINE1("client/IkLi8M2bCG",
                    ";provider=AE-2.02;peeraddr=127.0.0.1:56191;mproto=1;gproto=1;tls=1.0"));
    const char *l2 = aemp_hs_local_line(hs, 2);
    CHECK_INT(strlen(l2), 88);
    CHECK(!strchr(l2, '='));
    unsigned char back[AEMP_NONCE1_BYTES];
    CHECK_INT(t_b64dec(l2, back, sizeof back), AEMP_NONCE1_BYTES);
    CHECK_MEM(back, nonce, sizeof nonce);
    aemp_hs_free(hs);

    /* the simple handshake of a non-Perl node (PROTOCOL-1.md 4.6) */
    c.auths_accept = "hmac_sha3_512";
    c.auths_send = "hmac_sha3_512";
    c.kv_override = "";
    c.tls = 0;
    hs = aemp_hs_new(&c, NULL);
    REQUIRE(hs);
    CHECK_STR(aemp_hs_local_line(hs, 1), "aemp;1;client/IkLi8M2bCG;hmac_sha3_512;json");
    aemp_hs_free(hs);

    CHECK_INT(aemp_hs_nonce_bytes(0), AEMP_NONCE_BYTES);
    CHECK_INT(aemp_hs_nonce_bytes(1), 66);
    CHECK_INT(aemp_hs_nonce_bytes(2), 0);
    CHECK_INT(aemp_hs_protocol(NULL), AEMP_EINVAL);
}

TEST(hs1_new_invalid)
{
    unsigned char nonce[AEMP_NONCE1_BYTES] = {0};
    aemp_hs_config_t ok = {.protocol = 1, .noderef = "n", .nonce = nonce};
    aemp_hs_config_t c;
    int err;
    aemp_hs_t *hs = aemp_hs_new(&ok, &err);
    CHECK(hs && err == 0);
    aemp_hs_free(hs);
    c = ok;
    c.protocol = 2;
    CHECK(!aemp_hs_new(&c, &err) && err == AEMP_EINVAL);
    c = ok;
    c.protocol = -1;
    CHECK(!aemp_hs_new(&c, &err) && err == AEMP_EINVAL);
    c = ok;
    c.auths_send = "hmac_md6_64_256"; /* a protocol-0 method */
    CHECK(!aemp_hs_new(&c, &err) && err == AEMP_EINVAL);
    c = ok;
    c.auths_send = ",";
    CHECK(!aemp_hs_new(&c, &err) && err == AEMP_EINVAL);
    c = ok;
    c.framings_send = "";
    CHECK(!aemp_hs_new(&c, &err) && err == AEMP_EINVAL);
    c = ok;
    c.framings_send = "json\n";
    CHECK(!aemp_hs_new(&c, &err) && err == AEMP_EINVAL);
    /* and protocol 0 does not take protocol 1's methods */
    c = ok;
    c.protocol = 0;
    c.auths_send = "hmac_sha3_512";
    CHECK(!aemp_hs_new(&c, &err) && err == AEMP_EINVAL);
}

/* ------------------------------------------------------------------ */
/* two engines in memory */

typedef struct end1 {
    aemp_hs_t *hs;
    aemp__buf_t in;
} end1_t;

/* Runs both until neither moves; TLS "comes up" when asked (a no-op
 * here); rng NULL feeds everything at once, else random pieces. */
static void pump1(end1_t *a, end1_t *b, uint64_t *rng)
{
    for (int round = 0; round < 100000; round++) {
        int progress = 0;
        for (int dir = 0; dir < 2; dir++) {
            end1_t *x = dir ? b : a, *y = dir ? a : b;
            const void *p;
            size_t n;
            while ((p = aemp_hs_out(x->hs, &n)) != NULL) {
                aemp__buf_append(&y->in, p, n);
                aemp_hs_out_ack(x->hs, n);
                progress = 1;
            }
            if (aemp_hs_state(y->hs) & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER)) {
                CHECK_INT(aemp_hs_tls_up(y->hs), 0);
                progress = 1;
            }
            size_t have = aemp__buf_size(&y->in);
            if (have) {
                size_t k = rng ? 1 + t_rand(rng) % (have < 40 ? have : 40) : have;
                size_t used = aemp_hs_feed(y->hs, aemp__buf_head(&y->in), k);
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

static void pair1(const char *sa, int ta, const char *sb, int tb, uint64_t *rng,
                  const char *err_a, const char *err_b, const char *method)
{
    end1_t a = {mk1("node/a", sa, ta, 1), {0}}, b = {mk1("node/b", sb, tb, 2), {0}};
    if (!a.hs || !b.hs) return;
    pump1(&a, &b, rng);
    if (!err_a && !err_b) {
        CHECK_INT(aemp_hs_state(a.hs), AEMP_HS_GREETED | AEMP_HS_DONE);
        CHECK_INT(aemp_hs_state(b.hs), AEMP_HS_GREETED | AEMP_HS_DONE);
        CHECK_STR(aemp_hs_recv_auth(a.hs), method);
        CHECK_STR(aemp_hs_recv_auth(b.hs), method);
        CHECK_STR(aemp_hs_remote_id(a.hs), "node/b");
        CHECK_STR(aemp_hs_recv_framing(a.hs), "json");
    }
    if (err_a) CHECK_STR(aemp_hs_error(a.hs), err_a);
    if (err_b) CHECK_STR(aemp_hs_error(b.hs), err_b);
    aemp_hs_free(a.hs);
    aemp_hs_free(b.hs);
    aemp__buf_free(&a.in);
    aemp__buf_free(&b.in);
}

TEST(hs1_pairs_pick_auth_by_secret_and_tls_or_fail_verbatim)
{
    const char *mm = "authentication failure/shared secret mismatch";
    const char *nos = "unable to handshake TLS and no shared secret configured";
    uint64_t rng = 7;
    pair1(SECRET, 0, SECRET, 0, NULL, NULL, NULL, "hmac_sha3_512");
    for (int i = 0; i < 50; i++) pair1(SECRET, 0, SECRET, 0, &rng, NULL, NULL, "hmac_sha3_512");
    pair1("", 0, "", 0, NULL, NULL, NULL, "hmac_sha3_512");
    pair1(SECRET, 0, "wrong-secret", 0, NULL, mm, mm, NULL);
    /* TLS on both: tls_sha3_512 inside, with or without a secret (T08) */
    pair1(NULL, 1, NULL, 1, NULL, NULL, NULL, "tls_sha3_512");
    for (int i = 0; i < 20; i++) pair1(SECRET, 1, "other", 1, &rng, NULL, NULL, "tls_sha3_512");
    /* TLS on one side only: hmac, if both have the secret */
    pair1(SECRET, 1, SECRET, 0, NULL, NULL, NULL, "hmac_sha3_512");
    /* T09: the side with only a certificate cannot authenticate */
    pair1(NULL, 1, SECRET, 0, NULL, nos, NULL, NULL);
    /* the empty secret is a secret; no secret is none */
    pair1("", 0, NULL, 0, NULL, NULL, nos, NULL);
}

/* A quoted peer text is cut at 512 bytes with "..." only when it is
 * longer than the cut and the dots; around that length the quote never
 * writes past its text (ASan would see it) and says the whole of what it
 * keeps. */
TEST(hs1_long_quote_cut_around_the_limit)
{
    for (size_t len = 510; len <= 518; len++) {
        char in[600], want[700];
        memset(in, 'X', len);
        snprintf(in + len, sizeof in - len, ";1;a;b;c\n");
        if (len > 512 + 3)
            snprintf(want, sizeof want, "unparsable greeting, expected 'aemp', got '%.*s...'", 512, in);
        else
            snprintf(want, sizeof want, "unparsable greeting, expected 'aemp', got '%.*s'", (int)len, in);
        expect1(SECRET, 0, in, AEMP_EPROTO, want, 2);
    }
}
