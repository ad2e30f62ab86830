/*
 * test_tls.c - TLS mode: which secrets switch it on, the context built
 * from the secret, the in-memory filter on its own (two filters wired
 * together: handshake, data both ways, records split and fed byte by
 * byte, refusals), and nodes in TLS mode over loopback (exchange, a
 * capture of the wire through a relay, certificate mismatch, fallback to
 * hmac with a plain node, a secret made by `aemp gencert`).
 */
#include "test.h"
#include "aemp.h"
#include "harness_node.h"
#include "node_int.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

/* ------------------------------------------------------------------ */
/* helpers                                                             */

/* Reads a whole file (NUL-terminated for convenience); NULL if absent. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            char *nb = realloc(buf, cap + 65536);
            if (!nb) break;
            buf = nb;
            cap += 65536;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (!r) break;
        n += r;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static char *vector(const char *name, size_t *len)
{
    char rel[128];
    snprintf(rel, sizeof rel, "vectors/tls/%s", name);
    char *s = slurp(t_shared_path(rel), len);
    if (!s) {
        fprintf(stderr, "cannot read %s\n", t_shared_path(rel));
        exit(1);
    }
    return s;
}

static SSL_CTX *ctx_from(const char *name)
{
    size_t len;
    char *s = vector(name, &len);
    char err[256] = "";
    SSL_CTX *ctx = aemp__tls_ctx_new(s, len, err, sizeof err);
    if (!ctx) fprintf(stderr, "    %s: %s\n", name, err);
    free(s);
    return ctx;
}

/* Moves every byte of ciphertext from one filter to the other; 1 if any
 * moved. byte_by_byte feeds the receiver one byte at a time. */
static int pump(aemp__tls_t *from, aemp__tls_t *to, int byte_by_byte)
{
    aemp__buf_t b = {0};
    if (aemp__tls_take(from, &b)) return 0;
    size_t n = aemp__buf_size(&b);
    if (byte_by_byte)
        for (size_t i = 0; i < n; i++) aemp__tls_feed(to, aemp__buf_head(&b) + i, 1);
    else if (n)
        aemp__tls_feed(to, aemp__buf_head(&b), n);
    aemp__buf_free(&b);
    return n > 0;
}

/* Runs both handshakes until neither moves; returns each side's last
 * handshake result in rc[0] (client) and rc[1] (server). */
static void handshake_pair(aemp__tls_t *c, aemp__tls_t *s, int byte_by_byte, int rc[2])
{
    for (int round = 0; round < 50; round++) {
        rc[0] = aemp__tls_handshake(c);
        int moved = pump(c, s, byte_by_byte);
        rc[1] = aemp__tls_handshake(s);
        moved |= pump(s, c, byte_by_byte);
        if (!moved && rc[0] != 0 && rc[1] != 0) break;
        if (!moved && round > 3) break;
    }
}

/* Reads all plaintext the filter has into b; returns the last read's
 * result (>= 0 ok). */
static ssize_t drain_plain(aemp__tls_t *t, aemp__buf_t *b)
{
    ssize_t r;
    do {
        if (aemp__buf_reserve(b, 16384)) return AEMP_ENOMEM;
        r = aemp__tls_read(t, b->data + b->len, b->cap - b->len);
        if (r > 0) b->len += (size_t)r;
    } while (r > 0);
    return r;
}

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n);
    uint64_t st = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)t_rand(&st);
    return p;
}

/* ------------------------------------------------------------------ */
/* the secret                                                          */

TEST(tls_secret_detection)
{
    size_t len;
    char *s = vector("aemp-secret.pem", &len);
    CHECK(aemp__tls_secret_is_tls(s, len));
    char *other = vector("other-secret.pem", &len);
    CHECK(aemp__tls_secret_is_tls(other, len));
    free(other);
    char *key = vector("aemp-test-key.pem", &len);
    char *cert = vector("aemp-test-cert.pem", &len);
    /* one part alone, or the certificate first: not TLS (as in Perl) */
    CHECK(!aemp__tls_secret_is_tls(key, strlen(key)));
    CHECK(!aemp__tls_secret_is_tls(cert, strlen(cert)));
    size_t kl = strlen(key), cl = strlen(cert);
    char *rev = malloc(kl + cl + 1);
    memcpy(rev, cert, cl);
    memcpy(rev + cl, key, kl + 1);
    CHECK(!aemp__tls_secret_is_tls(rev, kl + cl));
    /* anything around and between the blocks is allowed, NUL bytes too */
    char *mixed = malloc(kl + cl + 64);
    size_t m = 0;
    memcpy(mixed + m, "junk\0before\n", 12), m += 12;
    memcpy(mixed + m, key, kl), m += kl;
    memcpy(mixed + m, "\0between\0", 9), m += 9;
    memcpy(mixed + m, cert, cl), m += cl;
    CHECK(aemp__tls_secret_is_tls(mixed, m));
    /* the last marker cut off */
    CHECK(!aemp__tls_secret_is_tls(mixed, m - 10));
    CHECK(!aemp__tls_secret_is_tls("test secret\n", 12));
    CHECK(!aemp__tls_secret_is_tls("", 0));
    CHECK(!aemp__tls_secret_is_tls(NULL, 0));
    /* only the markers count, in order */
    const char *fake = "-----BEGIN RSA PRIVATE KEY-----x-----END RSA PRIVATE KEY-----"
                       "-----BEGIN CERTIFICATE----------END CERTIFICATE-----";
    CHECK(aemp__tls_secret_is_tls(fake, strlen(fake)));
    const char *p8 = "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"
                     "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
    CHECK(aemp__tls_secret_is_tls(p8, strlen(p8)));
    const char *ec = "-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n"
                     "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
    CHECK(!aemp__tls_secret_is_tls(ec, strlen(ec)));
    const char *enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\n-----END ENCRYPTED PRIVATE KEY-----\n"
                      "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
    CHECK(!aemp__tls_secret_is_tls(enc, strlen(enc)));
    free(s);
    free(key);
    free(cert);
    free(rev);
    free(mixed);
}

TEST(tls_ctx_from_secret)
{
    char err[256];
    size_t len, ol;
    char *s = vector("aemp-secret.pem", &len);
    SSL_CTX *ctx = aemp__tls_ctx_new(s, len, err, sizeof err);
    REQUIRE(ctx);
    CHECK(SSL_CTX_get_min_proto_version(ctx) == TLS1_2_VERSION);
    CHECK_INT(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
    SSL_CTX_free(ctx);

    /* a key with another certificate */
    char *other = vector("other-secret.pem", &ol);
    char *key = vector("aemp-test-key.pem", NULL);
    const char *ocert = strstr(other, "-----BEGIN CERTIFICATE-----");
    REQUIRE(ocert);
    size_t ml = strlen(key) + strlen(ocert);
    char *mism = malloc(ml + 1);
    snprintf(mism, ml + 1, "%s%s", key, ocert);
    err[0] = 0;
    CHECK(aemp__tls_ctx_new(mism, ml, err, sizeof err) == NULL);
    CHECK(strstr(err, "does not match") != NULL);

    /* the markers, but nothing PEM can read */
    const char *fake = "-----BEGIN RSA PRIVATE KEY-----\nnot base64\n-----END RSA PRIVATE KEY-----\n"
                       "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    err[0] = 0;
    CHECK(aemp__tls_ctx_new(fake, strlen(fake), err, sizeof err) == NULL);
    CHECK(strstr(err, "private key") != NULL);
    CHECK(strstr(err, "error:") != NULL);

    /* a good key, a broken certificate */
    const char *bcert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    size_t bl = strlen(key) + strlen(bcert);
    char *broken = malloc(bl + 1);
    snprintf(broken, bl + 1, "%s%s", key, bcert);
    err[0] = 0;
    CHECK(aemp__tls_ctx_new(broken, bl, err, sizeof err) == NULL);
    CHECK(strstr(err, "certificate") != NULL);

    /* an encrypted key is refused, never prompted for */
    BIO *kb = BIO_new_mem_buf(key, -1);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    BIO_free(kb);
    REQUIRE(pk);
    BIO *eb = BIO_new(BIO_s_mem());
    CHECK(PEM_write_bio_PrivateKey(eb, pk, EVP_aes_128_cbc(), (unsigned char *)"pw", 2, NULL, NULL));
    const char *cert = strstr(s, "-----BEGIN CERTIFICATE-----");
    BIO_write(eb, cert, (int)strlen(cert));
    char *ed;
    long el = BIO_get_mem_data(eb, &ed);
    err[0] = 0;
    CHECK(aemp__tls_ctx_new(ed, (size_t)el, err, sizeof err) == NULL);
    CHECK(strstr(err, "private key") != NULL);
    BIO_free(eb);

    /* PKCS#8 "BEGIN PRIVATE KEY" works as well (our extension) */
    BIO *pb = BIO_new(BIO_s_mem());
    CHECK(PEM_write_bio_PKCS8PrivateKey(pb, pk, NULL, NULL, 0, NULL, NULL));
    BIO_write(pb, cert, (int)strlen(cert));
    char *pd;
    long pl = BIO_get_mem_data(pb, &pd);
    CHECK(aemp__tls_secret_is_tls(pd, (size_t)pl));
    CHECK(memmem(pd, (size_t)pl, "-----BEGIN PRIVATE KEY-----", 27) == pd);
    SSL_CTX *p8 = aemp__tls_ctx_new(pd, (size_t)pl, err, sizeof err);
    CHECK(p8 != NULL);
    SSL_CTX_free(p8);
    BIO_free(pb);
    EVP_PKEY_free(pk);
    CHECK_INT(ERR_peek_error(), 0); /* nothing left in the shared queue */

    free(s);
    free(other);
    free(key);
    free(mism);
    free(broken);
}

/* ------------------------------------------------------------------ */
/* the filter in memory                                                */

TEST(tls_filter_handshake_and_data)
{
    SSL_CTX *ctx = ctx_from("aemp-secret.pem");
    REQUIRE(ctx);
    aemp__tls_t *c = aemp__tls_new(ctx, 0), *s = aemp__tls_new(ctx, 1);
    REQUIRE(c && s);
    CHECK(aemp__tls_info(c) == NULL);
    CHECK_INT(aemp__tls_write(c, "x", 1), AEMP_ESTATE);
    int rc[2];
    handshake_pair(c, s, 0, rc);
    CHECK_INT(rc[0], 1);
    CHECK_INT(rc[1], 1);
    CHECK(aemp__tls_established(c) && aemp__tls_established(s));
    CHECK_STR(aemp__tls_info(c), "TLSv1.3 TLS_AES_256_GCM_SHA384");
    CHECK_STR(aemp__tls_info(s), "TLSv1.3 TLS_AES_256_GCM_SHA384");
    CHECK_STR(aemp__tls_error(c), "");

    /* both directions, interleaved */
    aemp__buf_t got = {0};
    CHECK_INT(aemp__tls_write(c, "tls;;json\n", 10), 0);
    CHECK_INT(aemp__tls_pending(s), 0);
    CHECK(aemp__tls_pending(c) > 10);
    pump(c, s, 0);
    CHECK(drain_plain(s, &got) >= 0);
    CHECK_INT(aemp__buf_size(&got), 10);
    CHECK_MEM(aemp__buf_head(&got), "tls;;json\n", 10);
    aemp__buf_consume(&got, aemp__buf_size(&got));
    CHECK_INT(aemp__tls_write(s, "tls;;json\n[\"\",\"devnull\"]", 25), 0);
    CHECK_INT(aemp__tls_write(c, "[\"x\",1]", 7), 0);
    pump(s, c, 0);
    pump(c, s, 0);
    CHECK(drain_plain(c, &got) >= 0);
    CHECK_INT(aemp__buf_size(&got), 25);
    CHECK_MEM(aemp__buf_head(&got), "tls;;json\n[\"\",\"devnull\"]", 25);
    aemp__buf_consume(&got, aemp__buf_size(&got));
    CHECK(drain_plain(s, &got) >= 0);
    CHECK_INT(aemp__buf_size(&got), 7);
    /* nothing arrived: read says so without failing */
    aemp__buf_consume(&got, aemp__buf_size(&got));
    CHECK_INT(drain_plain(s, &got), 0);
    CHECK_INT(aemp__buf_size(&got), 0);
    aemp__buf_free(&got);
    aemp__tls_free(c);
    aemp__tls_free(s);
    aemp__tls_free(NULL);
    SSL_CTX_free(ctx);
}

TEST(tls_filter_records_split_and_byte_by_byte)
{
    SSL_CTX *ctx = ctx_from("aemp-secret.pem");
    REQUIRE(ctx);
    aemp__tls_t *c = aemp__tls_new(ctx, 0), *s = aemp__tls_new(ctx, 1);
    REQUIRE(c && s);
    int rc[2];
    /* the handshake itself, one byte at a time */
    handshake_pair(c, s, 1, rc);
    CHECK_INT(rc[0], 1);
    CHECK_INT(rc[1], 1);

    /* 100 KiB in one write: records of at most 16 KiB */
    const size_t N = 100 * 1024;
    unsigned char *big = pattern(N, 7);
    CHECK_INT(aemp__tls_write(c, big, N), 0);
    aemp__buf_t wire = {0};
    CHECK_INT(aemp__tls_take(c, &wire), 0);
    size_t records = 0, off = 0, maxlen = 0;
    while (off + 5 <= aemp__buf_size(&wire)) {
        const unsigned char *h = (const unsigned char *)aemp__buf_head(&wire) + off;
        size_t rl = (size_t)h[3] << 8 | h[4];
        CHECK_INT(h[0], 23); /* application data (TLS 1.3 hides the rest) */
        if (rl > maxlen) maxlen = rl;
        off += 5 + rl;
        records++;
    }
    CHECK_INT(off, aemp__buf_size(&wire));
    CHECK_INT(records, 7); /* ceil(100 KiB / 16 KiB) */
    CHECK(maxlen <= 16384 + 256);
    CHECK_INT(aemp__tls_pending(c), 0);

    /* fed byte by byte: plaintext only when a record is complete */
    aemp__buf_t got = {0};
    size_t first_plain_at = 0;
    for (size_t i = 0; i < aemp__buf_size(&wire); i++) {
        CHECK_INT(aemp__tls_feed(s, aemp__buf_head(&wire) + i, 1), 0);
        size_t before = aemp__buf_size(&got);
        ssize_t r = drain_plain(s, &got);
        if (r < 0) {
            t_fail(__FILE__, __LINE__, "read failed: %s", aemp__tls_error(s));
            break;
        }
        if (!first_plain_at && aemp__buf_size(&got) > before) first_plain_at = i + 1;
    }
    CHECK(first_plain_at > 16384); /* the first record had to be whole */
    CHECK_INT(aemp__buf_size(&got), N);
    if (aemp__buf_size(&got) == N) CHECK_MEM(aemp__buf_head(&got), big, N);

    /* the other way, fed in uneven slices */
    aemp__buf_free(&got);
    aemp__buf_free(&wire);
    memset(&got, 0, sizeof got);
    memset(&wire, 0, sizeof wire);
    for (size_t i = 0; i < N; i += 1000) CHECK_INT(aemp__tls_write(s, big + i, N - i < 1000 ? N - i : 1000), 0);
    CHECK_INT(aemp__tls_take(s, &wire), 0);
    uint64_t st = 99;
    for (size_t i = 0; i < aemp__buf_size(&wire);) {
        size_t k = 1 + t_rand(&st) % 3000;
        if (k > aemp__buf_size(&wire) - i) k = aemp__buf_size(&wire) - i;
        aemp__tls_feed(c, aemp__buf_head(&wire) + i, k);
        i += k;
        CHECK(drain_plain(c, &got) >= 0);
    }
    CHECK_INT(aemp__buf_size(&got), N);
    if (aemp__buf_size(&got) == N) CHECK_MEM(aemp__buf_head(&got), big, N);

    free(big);
    aemp__buf_free(&got);
    aemp__buf_free(&wire);
    aemp__tls_free(c);
    aemp__tls_free(s);
    SSL_CTX_free(ctx);
}

TEST(tls_filter_wrong_certificate)
{
    SSL_CTX *a = ctx_from("aemp-secret.pem"), *b = ctx_from("other-secret.pem");
    REQUIRE(a && b);
    for (int dir = 0; dir < 2; dir++) {
        aemp__tls_t *c = aemp__tls_new(dir ? b : a, 0), *s = aemp__tls_new(dir ? a : b, 1);
        int rc[2];
        handshake_pair(c, s, 0, rc);
        /* the client sees the server's certificate first and refuses it;
         * its alert is what the server learns */
        CHECK_INT(rc[0], AEMP_ETLS);
        CHECK_INT(rc[1], AEMP_ETLS);
        CHECK_STR(aemp__tls_error(c),
                  "error:0A000086:SSL routines::certificate verify failed (self-signed certificate)");
        CHECK_STR(aemp__tls_error(s), "error:0A000418:SSL routines::tlsv1 alert unknown ca");
        CHECK(aemp__tls_info(c) == NULL);
        /* sticky */
        char x[8];
        CHECK_INT(aemp__tls_read(c, x, sizeof x), AEMP_ETLS);
        CHECK_INT(aemp__tls_write(s, "x", 1), AEMP_ETLS);
        aemp__tls_free(c);
        aemp__tls_free(s);
    }
    CHECK_INT(ERR_peek_error(), 0);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
}

TEST(tls_filter_server_requires_client_certificate)
{
    SSL_CTX *a = ctx_from("aemp-secret.pem");
    REQUIRE(a);
    /* a client that trusts our certificate but has none of its own */
    SSL_CTX *bare = SSL_CTX_new(TLS_method());
    char *pem = vector("aemp-test-cert.pem", NULL);
    BIO *cb = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    BIO_free(cb);
    free(pem);
    REQUIRE(x);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(bare), x);
    SSL_CTX_set_verify(bare, SSL_VERIFY_PEER, NULL);
    aemp__tls_t *c = aemp__tls_new(bare, 0), *s = aemp__tls_new(a, 1);
    int rc[2];
    handshake_pair(c, s, 0, rc);
    CHECK_INT(rc[1], AEMP_ETLS);
    CHECK(strstr(aemp__tls_error(s), "peer did not return a certificate") != NULL);
    /* in TLS 1.3 the client is done before the server judged it: it
     * learns of the refusal when it reads */
    aemp__buf_t got = {0};
    if (rc[0] == 1) CHECK_INT(drain_plain(c, &got), AEMP_ETLS);
    CHECK(strstr(aemp__tls_error(c), "alert") != NULL);
    aemp__buf_free(&got);
    aemp__tls_free(c);
    aemp__tls_free(s);
    X509_free(x);
    SSL_CTX_free(bare);
    SSL_CTX_free(a);
}

TEST(tls_filter_refuses_old_versions)
{
    SSL_CTX *a = ctx_from("aemp-secret.pem");
    REQUIRE(a);
    /* the same identity, capped at TLS 1.1 */
    size_t len;
    char *sec = vector("aemp-secret.pem", &len);
    char err[256];
    SSL_CTX *old = aemp__tls_ctx_new(sec, len, err, sizeof err);
    REQUIRE(old);
    SSL_CTX_set_min_proto_version(old, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION);
    SSL_CTX_set_security_level(old, 0);
    aemp__tls_t *c = aemp__tls_new(old, 0), *s = aemp__tls_new(a, 1);
    int rc[2];
    handshake_pair(c, s, 0, rc);
    CHECK_INT(rc[1], AEMP_ETLS);
    CHECK(strstr(aemp__tls_error(s), "unsupported protocol") != NULL);
    CHECK_INT(rc[0], AEMP_ETLS);
    aemp__tls_free(c);
    aemp__tls_free(s);

    /* TLS 1.2 is still fine */
    SSL_CTX_set_min_proto_version(old, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(old, TLS1_2_VERSION);
    c = aemp__tls_new(old, 0);
    s = aemp__tls_new(a, 1);
    handshake_pair(c, s, 0, rc);
    CHECK_INT(rc[0], 1);
    CHECK_INT(rc[1], 1);
    CHECK(aemp__tls_info(s) && !strncmp(aemp__tls_info(s), "TLSv1.2 ", 8));
    CHECK_INT(aemp__tls_write(s, "tls;;json\n", 10), 0);
    pump(s, c, 0);
    aemp__buf_t got = {0};
    CHECK(drain_plain(c, &got) >= 0);
    CHECK_INT(aemp__buf_size(&got), 10);
    aemp__buf_free(&got);
    aemp__tls_free(c);
    aemp__tls_free(s);
    free(sec);
    SSL_CTX_free(old);
    SSL_CTX_free(a);
}

TEST(tls_filter_garbage_and_close)
{
    SSL_CTX *a = ctx_from("aemp-secret.pem");
    REQUIRE(a);
    /* a peer that speaks no TLS */
    aemp__tls_t *s = aemp__tls_new(a, 1);
    const char junk[] = "tls;;json\n[\"\",\"devnull\"]";
    aemp__tls_feed(s, junk, sizeof junk - 1);
    CHECK_INT(aemp__tls_handshake(s), AEMP_ETLS);
    CHECK(strncmp(aemp__tls_error(s), "error:0A", 8) == 0);
    aemp__tls_free(s);

    /* close_notify ends the stream after the data before it */
    aemp__tls_t *c = aemp__tls_new(a, 0);
    s = aemp__tls_new(a, 1);
    int rc[2];
    handshake_pair(c, s, 0, rc);
    CHECK_INT(aemp__tls_write(c, "bye", 3), 0);
    CHECK_INT(aemp__tls_shutdown(c), 0);
    pump(c, s, 0);
    char buf[16];
    CHECK_INT(aemp__tls_read(s, buf, sizeof buf), 3);
    CHECK_INT(aemp__tls_read(s, buf, sizeof buf), AEMP_ECLOSED);
    CHECK_INT(aemp__tls_read(s, buf, sizeof buf), AEMP_ECLOSED);
    aemp__tls_free(c);
    aemp__tls_free(s);
    SSL_CTX_free(a);
}

/* The first TLS record of the Perl node that was TLS client in the
 * 06-tls recording (its ClientHello): our server takes it and answers as
 * the Perl server did - TLS 1.3, TLS_AES_256_GCM_SHA384. */
TEST(tls_perl_client_hello_accepted)
{
    json_t *v = t_load_vectors("vectors/transcripts/06-tls.json");
    json_t *ev = json_object_get(v, "events");
    const char *hello_hex = NULL;
    int lines = 0;
    for (size_t i = 0; i < json_array_size(ev) && !hello_hex; i++) {
        const char *hex = json_string_value(json_object_get(json_array_get(ev, i), "hex"));
        if (hex && !strncmp(hex, "16", 2) && lines == 2) hello_hex = hex;
        if (hex && !strncmp(hex, "61656d70", 8)) lines++; /* "aemp": a greeting */
    }
    REQUIRE(hello_hex);
    size_t hl;
    unsigned char *hello = t_unhex(hello_hex, &hl);
    REQUIRE(hl > 43 && hello[5] == 1); /* a ClientHello */

    SSL_CTX *ctx = ctx_from("aemp-secret.pem");
    REQUIRE(ctx);
    aemp__tls_t *s = aemp__tls_new(ctx, 1);
    CHECK_INT(aemp__tls_feed(s, hello, hl), 0);
    CHECK_INT(aemp__tls_handshake(s), 0); /* waits for the client's Finished */
    aemp__buf_t out = {0};
    CHECK_INT(aemp__tls_take(s, &out), 0);
    const unsigned char *p = (const unsigned char *)aemp__buf_head(&out);
    size_t n = aemp__buf_size(&out);
    REQUIRE(n > 5 + 4 + 2 + 32 + 1);
    CHECK_INT(p[0], 0x16);
    CHECK_INT(p[5], 2); /* ServerHello */
    size_t rl = (size_t)p[3] << 8 | p[4];
    REQUIRE(rl + 5 <= n);
    const unsigned char *h = p + 9, *end = p + 5 + rl;
    h += 2 + 32; /* legacy version, random */
    size_t sid = *h++;
    /* the session id is echoed (TLS 1.3 middlebox compatibility) */
    CHECK_INT(sid, hello[5 + 4 + 2 + 32]);
    h += sid;
    unsigned suite = (unsigned)h[0] << 8 | h[1];
    CHECK_INT(suite, 0x1302); /* TLS_AES_256_GCM_SHA384 */
    h += 3;
    size_t el = (size_t)h[0] << 8 | h[1];
    h += 2;
    unsigned version = 0;
    for (const unsigned char *x = h; x + 4 <= h + el && x + 4 <= end;) {
        unsigned type = (unsigned)x[0] << 8 | x[1];
        size_t len = (size_t)x[2] << 8 | x[3];
        if (type == 0x002b && len == 2) version = (unsigned)x[4] << 8 | x[5];
        x += 4 + len;
    }
    CHECK_INT(version, 0x0304); /* TLS 1.3 */
    /* then the rest of the flight, encrypted */
    CHECK(5 + rl < n && (p[5 + rl] == 0x14 || p[5 + rl] == 0x17));
    aemp__buf_free(&out);
    aemp__tls_free(s);
    SSL_CTX_free(ctx);
    free(hello);
    json_decref(v);
}

/* ------------------------------------------------------------------ */
/* nodes in TLS mode                                                   */

/* A started node on 127.0.0.1:0 with the secret sec (len bytes); no_tls
 * and max_message as given. */
static aemp_node_t *mktls(tnode_t *t, const char *sec, size_t len, int no_tls, size_t max_message)
{
    memset(t, 0, sizeof *t);
    aemp_node_config_t c = {0};
    c.bind = "127.0.0.1:0";
    c.secret = sec;
    c.secret_len = len;
    c.no_tls = no_tls;
    c.max_message = max_message;
    c.connect_interval = 0.2;
    c.connect_timeout = 3;
    t_hooks(&c, t);
    t->node = aemp_node_new(EV_DEFAULT, &c, NULL);
    if (!t->node) return NULL;
    if (aemp_node_start(t->node)) {
        aemp_node_destroy(t->node);
        t->node = NULL;
    }
    return t->node;
}

/* The auth method the peer used on the current link to noderef. */
static const char *peer_auth(aemp_node_t *n, const char *noderef)
{
    aemp__peer_t *p = aemp__peer_get(n, noderef, 0);
    return p && p->link ? aemp__link_recv_auth(p->link) : NULL;
}

static json_t *seq_msg(long i) { return json_pack("[ssI]", "x", "seq", (json_int_t)i); }

/* A 200 KiB string of printable, varied text. */
static char *big_text(size_t n)
{
    char *s = malloc(n + 1);
    uint64_t st = 5;
    for (size_t i = 0; i < n; i++) s[i] = (char)('a' + t_rand(&st) % 26);
    s[n] = 0;
    return s;
}

TEST(tls_nodes_exchange)
{
    size_t len;
    char *sec = vector("aemp-secret.pem", &len);
    tnode_t a, b;
    start_ticker();
    REQUIRE(mktls(&a, sec, len, 0, 0));
    REQUIRE(mktls(&b, sec, len, 0, 0));
    char an[64], bn[64];
    snprintf(an, sizeof an, "%s", aemp_node_noderef(a.node));
    snprintf(bn, sizeof bn, "%s", aemp_node_noderef(b.node));
    a.kept = json_array();
    b.kept = json_array();

    /* many small messages a -> b, queued before the link exists */
    const long N = 20000;
    for (long i = 0; i < N; i++) CHECK_INT(aemp_node_send(a.node, bn, seq_msg(i)), 0);
    want_t wb = {&b, N};
    CHECK(run_until(got_n, &wb, 30));
    CHECK_INT(b.received, N);
    CHECK_INT(b.order_errors, 0);

    /* the link is TLS, seen from both ends */
    CHECK_STR(aemp_node_peer_kv(a.node, bn, "tls"), "1.0");
    CHECK_STR(aemp_node_peer_kv(b.node, an, "tls"), "1.0");
    CHECK_STR(aemp__node_peer_tls(a.node, bn), "TLSv1.3 TLS_AES_256_GCM_SHA384");
    CHECK_STR(aemp__node_peer_tls(b.node, an), "TLSv1.3 TLS_AES_256_GCM_SHA384");
    CHECK_STR(peer_auth(a.node, bn), "tls");
    CHECK_STR(peer_auth(b.node, an), "tls");

    /* the other way over the same link, then a 200 KiB message each way,
     * more than a dozen records, followed by small ones */
    for (long i = 0; i < N; i++) CHECK_INT(aemp_node_send(b.node, an, seq_msg(i)), 0);
    const size_t BIG = 200 * 1024;
    char *text = big_text(BIG);
    CHECK_INT(aemp_node_send(b.node, an, json_pack("[ssIs]", "x", "big", (json_int_t)N, text)), 0);
    CHECK_INT(aemp_node_send(b.node, an, seq_msg(N + 1)), 0);
    CHECK_INT(aemp_node_send(a.node, bn, json_pack("[ssIs]", "x", "big", (json_int_t)N, text)), 0);
    CHECK_INT(aemp_node_send(a.node, bn, seq_msg(N + 1)), 0);
    want_t wa = {&a, N + 2};
    wb.n = N + 2;
    CHECK(run_until(got_n, &wa, 30));
    CHECK(run_until(got_n, &wb, 30));
    CHECK_INT(a.received, N + 2);
    CHECK_INT(b.received, N + 2);
    CHECK_INT(a.order_errors + b.order_errors, 0);
    /* the hook keeps only the first 1000 messages: start afresh to look at
     * one more big one */
    json_decref(a.kept);
    json_decref(b.kept);
    a.kept = json_array();
    b.kept = json_array();
    CHECK_INT(aemp_node_send(a.node, bn, json_pack("[ssIs]", "x", "big", (json_int_t)N + 2, text)), 0);
    wb.n = N + 3;
    CHECK(run_until(got_n, &wb, 10));
    json_t *got = json_array_get(b.kept, 0);
    CHECK_STR(json_string_value(json_array_get(got, 1)), "big");
    CHECK_INT(json_string_length(json_array_get(got, 3)), BIG);
    CHECK(json_string_value(json_array_get(got, 3)) &&
          !strcmp(json_string_value(json_array_get(got, 3)), text));

    CHECK_INT(a.links_up, 1);
    CHECK_INT(b.links_up, 1);
    CHECK_INT(a.links_down + b.links_down, 0);
    CHECK_STR(a.warnings, "");
    CHECK_STR(b.warnings, "");
    run_for(0.1);
    CHECK_INT(aemp_node_queued(a.node, bn), 0);
    CHECK_INT(aemp_node_queued(b.node, an), 0);
    free(text);
    free(sec);
    json_decref(a.kept);
    json_decref(b.kept);
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
}

TEST(tls_nodes_simultaneous_connect)
{
    size_t len;
    char *sec = vector("aemp-secret.pem", &len);
    for (int round = 0; round < 5; round++) {
        tnode_t a, b;
        start_ticker();
        REQUIRE(mktls(&a, sec, len, 0, 0));
        REQUIRE(mktls(&b, sec, len, 0, 0));
        char an[64], bn[64];
        snprintf(an, sizeof an, "%s", aemp_node_noderef(a.node));
        snprintf(bn, sizeof bn, "%s", aemp_node_noderef(b.node));
        for (long i = 0; i < 50; i++) {
            aemp_node_send(a.node, bn, seq_msg(i));
            aemp_node_send(b.node, an, seq_msg(i));
        }
        want_t w = {&a, 50}, w2 = {&b, 50};
        CHECK(run_until(got_n, &w, 5));
        CHECK(run_until(got_n, &w2, 5));
        run_for(0.2);
        CHECK_INT(a.received, 50);
        CHECK_INT(b.received, 50);
        CHECK_INT(a.order_errors + b.order_errors, 0);
        CHECK_INT(a.links_up, 1);
        CHECK_INT(b.links_up, 1);
        CHECK_INT(a.links_down + b.links_down, 0);
        CHECK_STR(aemp__node_peer_tls(a.node, bn), "TLSv1.3 TLS_AES_256_GCM_SHA384");
        aemp_node_destroy(a.node);
        aemp_node_destroy(b.node);
    }
    free(sec);
}

/* A relay on the loop that records what passes through it: listens on
 * 127.0.0.1:0 and forwards each connection to 127.0.0.1:target. */
typedef struct relay relay_t;
typedef struct {
    ev_io w;
    int fd, other;
    int dir; /* 0: from the connecting side, 1: from the target */
    relay_t *r;
} relay_end_t;

struct relay {
    ev_io lw;
    int lfd, port, target;
    int conns;
    relay_end_t ends[8];
    aemp__buf_t seen[2]; /* the first connection, each direction */
};

static void relay_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    relay_end_t *e = (relay_end_t *)w;
    (void)revents;
    char buf[65536];
    ssize_t r = recv(e->fd, buf, sizeof buf, 0);
    if (r <= 0) {
        ev_io_stop(loop, w);
        shutdown(e->other, SHUT_WR);
        return;
    }
    if (e - e->r->ends < 2) aemp__buf_append(&e->r->seen[e->dir], buf, (size_t)r);
    /* test traffic is small: the blocking send never waits for long */
    for (ssize_t off = 0; off < r;) {
        ssize_t s = send(e->other, buf + off, (size_t)(r - off), MSG_NOSIGNAL);
        if (s <= 0) break;
        off += s;
    }
}

static void relay_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    relay_t *r = (relay_t *)w;
    (void)revents;
    int c = accept(r->lfd, NULL, NULL);
    if (c < 0) return;
    if (r->conns >= 4) {
        close(c);
        return;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->target)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(t, (struct sockaddr *)&sa, sizeof sa)) {
        close(c);
        close(t);
        return;
    }
    relay_end_t *e = &r->ends[2 * r->conns++];
    e[0] = (relay_end_t){.fd = c, .other = t, .dir = 0, .r = r};
    e[1] = (relay_end_t){.fd = t, .other = c, .dir = 1, .r = r};
    for (int i = 0; i < 2; i++) {
        ev_io_init(&e[i].w, relay_read_cb, e[i].fd, EV_READ);
        ev_io_start(loop, &e[i].w);
    }
}

static int relay_start(relay_t *r, int target)
{
    memset(r, 0, sizeof *r);
    r->target = target;
    r->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(r->lfd, (struct sockaddr *)&sa, sizeof sa) || listen(r->lfd, 8) ||
        getsockname(r->lfd, (struct sockaddr *)&sa, &sl))
        return -1;
    r->port = ntohs(sa.sin_port);
    ev_io_init(&r->lw, relay_accept_cb, r->lfd, EV_READ);
    ev_io_start(EV_DEFAULT, &r->lw);
    return 0;
}

static void relay_stop(relay_t *r)
{
    ev_io_stop(EV_DEFAULT, &r->lw);
    close(r->lfd);
    for (int i = 0; i < 2 * r->conns; i++) {
        ev_io_stop(EV_DEFAULT, &r->ends[i].w);
        close(r->ends[i].fd);
    }
    aemp__buf_free(&r->seen[0]);
    aemp__buf_free(&r->seen[1]);
}

/* Offset just past the second LF of a captured direction, or 0. */
static size_t after_two_lines(const aemp__buf_t *b)
{
    if (!aemp__buf_size(b)) return 0;
    const char *p = aemp__buf_head(b), *end = p + aemp__buf_size(b);
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf) return 0;
    lf = memchr(lf + 1, '\n', (size_t)(end - lf - 1));
    return lf ? (size_t)(lf + 1 - p) : 0;
}

TEST(tls_wire_is_encrypted)
{
    size_t len;
    char *sec = vector("aemp-secret.pem", &len);
    tnode_t a, b;
    relay_t r;
    start_ticker();
    REQUIRE(mktls(&a, sec, len, 0, 0));
    REQUIRE(mktls(&b, sec, len, 0, 0));
    const char *bn = aemp_node_noderef(b.node);
    REQUIRE(relay_start(&r, atoi(strrchr(bn, ':') + 1)) == 0);
    char via[64];
    snprintf(via, sizeof via, "127.0.0.1:%d", r.port);
    const char *marker = "plaintext-marker-7d1e";
    for (long i = 0; i < 10; i++)
        aemp_node_send(a.node, via, json_pack("[ssIs]", "x", "seq", (json_int_t)i, marker));
    want_t w = {&b, 10};
    CHECK(run_until(got_n, &w, 10));
    /* and back, over the relayed link */
    aemp_node_send(b.node, aemp_node_noderef(a.node), json_pack("[ssIs]", "x", "seq", (json_int_t)0, marker));
    want_t wa = {&a, 1};
    CHECK(run_until(got_n, &wa, 10));
    run_for(0.1);
    CHECK_INT(r.conns, 1);
    for (int d = 0; d < 2; d++) {
        const aemp__buf_t *s = &r.seen[d];
        const char *p = aemp__buf_head(s);
        size_t n = aemp__buf_size(s), body = after_two_lines(s);
        REQUIRE(body > 0 && n > body + 5);
        /* the greeting is in the clear and asks for TLS */
        CHECK(!strncmp(p, "aemp;0;", 7));
        const char *lf = memchr(p, '\n', n);
        CHECK(memmem(p, (size_t)(lf - p), ";tls=1.0", 8) != NULL);
        /* then TLS records only: a handshake record first */
        CHECK_INT((unsigned char)p[body], 0x16);
        CHECK_INT((unsigned char)p[body + 1], 0x03);
        size_t off = body, recs = 0;
        while (off + 5 <= n) {
            unsigned char type = (unsigned char)p[off];
            CHECK(type >= 20 && type <= 23);
            off += 5 + ((size_t)(unsigned char)p[off + 3] << 8 | (unsigned char)p[off + 4]);
            recs++;
        }
        CHECK_INT(off, n);
        CHECK(recs >= 3);
        /* nothing of the plaintext shows */
        CHECK(memmem(p + body, n - body, marker, strlen(marker)) == NULL);
        CHECK(memmem(p + body, n - body, "tls;;json", 9) == NULL);
        CHECK(memmem(p + body, n - body, "seq", 3) == NULL);
    }
    CHECK_STR(peer_auth(b.node, aemp_node_noderef(a.node)), "tls");
    CHECK_STR(a.warnings, "");
    CHECK_STR(b.warnings, "");
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
    relay_stop(&r);
    free(sec);
}

/* A child's verdict, written to a pipe: libev's default loop reaps every
 * child (its SIGCHLD watcher), so exit statuses are not reliable while
 * the loop runs. Reads a number; -1 when the child wrote none. */
static int child_result(int fd, pid_t pid)
{
    char buf[32] = "";
    size_t have = 0;
    ssize_t r;
    while (have < sizeof buf - 1 && (r = read(fd, buf + have, sizeof buf - 1 - have)) > 0) have += (size_t)r;
    close(fd);
    waitpid(pid, NULL, 0); /* may have been reaped already */
    return have ? atoi(buf) : -1;
}

/* Child side of the mismatch test: a node with the other certificate
 * that lives for `seconds`; writes its noderef, then what it saw:
 * 1 (a verify failure) + 2 (an unknown-CA alert) + 4 (a message) + 8 (a
 * link up). */
static void mismatch_child(int wfd, double seconds)
{
    size_t len;
    char *sec = vector("other-secret.pem", &len);
    tnode_t t;
    start_ticker(); /* run_for must not sleep in the loop past its end */
    if (!mktls(&t, sec, len, 0, 0)) _exit(2);
    dprintf(wfd, "%s\n", aemp_node_noderef(t.node));
    run_for(seconds);
    int bits = (strstr(t.warnings, "certificate verify failed") ? 1 : 0) |
               (strstr(t.warnings, "alert unknown ca") ? 2 : 0) | (t.received ? 4 : 0) |
               (t.links_up ? 8 : 0);
    dprintf(wfd, "%d", bits);
    aemp_node_destroy(t.node);
    free(sec);
    _exit(0);
}

static int both_refused(void *ud)
{
    tnode_t *a = ud;
    return a->links_down > 0;
}

TEST(tls_certificate_mismatch_refused)
{
    size_t len;
    char *sec = vector("aemp-secret.pem", &len);
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        mismatch_child(pfd[1], 4.0);
    }
    close(pfd[1]);
    char bn[128] = "";
    for (size_t i = 0; i < sizeof bn - 1 && read(pfd[0], bn + i, 1) == 1 && bn[i] != '\n'; i++) {}
    REQUIRE(strchr(bn, '\n'));
    *strchr(bn, '\n') = 0;

    tnode_t a;
    start_ticker();
    REQUIRE(mktls(&a, sec, len, 0, 0));
    a.kept = json_array();
    aemp_node_send(a.node, bn, json_pack("[ss]", "x", "never"));
    /* a tries again every 0.2 s (the TLS roles change with the nonces)
     * and gives up after 3 s */
    CHECK(run_until(both_refused, &a, 6));
    CHECK_INT(a.links_up, 0);
    CHECK_INT(a.received, 0);
    CHECK(strstr(a.last_down, "error:0A") != NULL);
    CHECK(strstr(a.warnings, ": error:0A000086:SSL routines::certificate verify failed "
                             "(self-signed certificate)") != NULL);
    CHECK(strstr(a.warnings, ": error:0A000418:SSL routines::tlsv1 alert unknown ca") != NULL);
    CHECK(strstr(a.warnings, "Broken pipe") == NULL);

    /* the other process lived through it and refused the same way */
    int bits = child_result(pfd[0], pid);
    ev_now_update(EV_DEFAULT); /* we slept outside the loop */
    CHECK(bits >= 0 && (bits & 1)); /* it refused our certificate */
    CHECK(bits >= 0 && (bits & 2)); /* and learnt it was refused */
    CHECK(bits >= 0 && !(bits & 12)); /* no link, no message */

    /* and this node still talks to one with the right certificate */
    tnode_t c;
    REQUIRE(mktls(&c, sec, len, 0, 0));
    aemp_node_send(a.node, aemp_node_noderef(c.node), seq_msg(0));
    want_t w = {&c, 1};
    CHECK(run_until(got_n, &w, 5));
    json_decref(a.kept);
    aemp_node_destroy(a.node);
    aemp_node_destroy(c.node);
    free(sec);
}

TEST(tls_plain_peer_falls_back_to_hmac)
{
    size_t len;
    char *sec = vector("aemp-secret.pem", &len);
    tnode_t a, b;
    start_ticker();
    REQUIRE(mktls(&a, sec, len, 0, 0));
    REQUIRE(mktls(&b, sec, len, 1, 0)); /* the same bytes, TLS off */
    char an[64], bn[64];
    snprintf(an, sizeof an, "%s", aemp_node_noderef(a.node));
    snprintf(bn, sizeof bn, "%s", aemp_node_noderef(b.node));
    for (long i = 0; i < 1000; i++) aemp_node_send(a.node, bn, seq_msg(i));
    want_t wb = {&b, 1000};
    CHECK(run_until(got_n, &wb, 10));
    for (long i = 0; i < 1000; i++) aemp_node_send(b.node, an, seq_msg(i));
    want_t wa = {&a, 1000};
    CHECK(run_until(got_n, &wa, 10));
    CHECK_INT(a.order_errors + b.order_errors, 0);
    /* a announced TLS, b did not: hmac over the whole PEM text */
    CHECK_STR(aemp_node_peer_kv(b.node, an, "tls"), "1.0");
    CHECK(aemp_node_peer_kv(a.node, bn, "tls") == NULL);
    CHECK(aemp__node_peer_tls(a.node, bn) == NULL);
    CHECK(aemp__node_peer_tls(b.node, an) == NULL);
    CHECK_STR(peer_auth(a.node, bn), "hmac_md6_64_256");
    CHECK_STR(peer_auth(b.node, an), "hmac_md6_64_256");
    CHECK_INT(a.links_up + b.links_up, 2);
    CHECK_STR(a.warnings, "");
    CHECK_STR(b.warnings, "");
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);

    /* with a different secret the fallback fails as hmac does */
    REQUIRE(mktls(&a, sec, len, 0, 0));
    REQUIRE(mktls(&b, "not the pem\n", 12, 0, 0));
    aemp_node_send(a.node, aemp_node_noderef(b.node), seq_msg(0));
    want_t wd = {&a, 1};
    CHECK(run_until(down_n, &wd, 6));
    CHECK(strstr(b.warnings, "authentication failure/shared secret mismatch") != NULL);
    CHECK_INT(b.received, 0);
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
    free(sec);
}

TEST(tls_gencert_secret)
{
    char dir[] = "/tmp/aemp-tls-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/secret", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        execl(t_aemp_bin(), "aemp", "gencert", path, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    size_t len;
    char *sec = slurp(path, &len);
    unlink(path);
    rmdir(dir);
    REQUIRE(sec);
    CHECK(aemp__tls_secret_is_tls(sec, len));

    tnode_t a, b;
    start_ticker();
    REQUIRE(mktls(&a, sec, len, 0, 0));
    REQUIRE(mktls(&b, sec, len, 0, 0));
    char an[64], bn[64];
    snprintf(an, sizeof an, "%s", aemp_node_noderef(a.node));
    snprintf(bn, sizeof bn, "%s", aemp_node_noderef(b.node));
    aemp_node_send(a.node, bn, seq_msg(0));
    want_t wb = {&b, 1};
    CHECK(run_until(got_n, &wb, 5));
    aemp_node_send(b.node, an, seq_msg(0));
    want_t wa = {&a, 1};
    CHECK(run_until(got_n, &wa, 5));
    CHECK_STR(aemp_node_peer_kv(a.node, bn, "tls"), "1.0");
    CHECK_STR(aemp_node_peer_kv(b.node, an, "tls"), "1.0");
    CHECK_STR(aemp__node_peer_tls(a.node, bn), "TLSv1.3 TLS_AES_256_GCM_SHA384");
    CHECK_STR(peer_auth(b.node, an), "tls");
    CHECK_STR(a.warnings, "");
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);

    /* the test vectors' certificate is not this one: refused */
    size_t vl;
    char *vec = vector("aemp-secret.pem", &vl);
    REQUIRE(mktls(&a, sec, len, 0, 0));
    REQUIRE(mktls(&b, vec, vl, 0, 0));
    aemp_node_send(a.node, aemp_node_noderef(b.node), seq_msg(0));
    want_t wd = {&a, 1};
    CHECK(run_until(down_n, &wd, 6));
    CHECK_INT(b.received, 0);
    CHECK(strstr(a.warnings, "certificate verify failed") || strstr(a.warnings, "alert unknown ca"));
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
    free(vec);
    free(sec);
}

TEST(tls_bad_secret_refuses_node)
{
    const char *fake = "-----BEGIN RSA PRIVATE KEY-----\nnot base64\n-----END RSA PRIVATE KEY-----\n"
                       "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    tnode_t t;
    memset(&t, 0, sizeof t);
    aemp_node_config_t c = {0};
    c.bind = "127.0.0.1:0";
    c.secret = fake;
    c.secret_len = strlen(fake);
    c.log = t_log;
    c.log_ud = &t;
    int err = 0;
    CHECK(aemp_node_new(EV_DEFAULT, &c, &err) == NULL);
    CHECK_INT(err, AEMP_ETLS);
    CHECK(strstr(t.warnings, "secret: cannot read the private key of the secret: error:") != NULL);
    /* with TLS off the same bytes are just a secret */
    c.no_tls = 1;
    aemp_node_t *n = aemp_node_new(EV_DEFAULT, &c, &err);
    CHECK(n != NULL);
    aemp_node_destroy(n);
}

TEST(tls_node_message_limit_applies_to_plaintext)
{
    size_t len;
    char *sec = vector("aemp-secret.pem", &len);
    tnode_t a, b;
    start_ticker();
    REQUIRE(mktls(&a, sec, len, 0, 0));
    REQUIRE(mktls(&b, sec, len, 0, 64 * 1024));
    const char *bn = aemp_node_noderef(b.node);
    char *text = big_text(60 * 1024);
    aemp_node_send(a.node, bn, json_pack("[ssIs]", "x", "seq", (json_int_t)0, text));
    want_t w = {&b, 1};
    CHECK(run_until(got_n, &w, 5));
    free(text);
    text = big_text(100 * 1024);
    aemp_node_send(a.node, bn, json_pack("[ssIs]", "x", "seq", (json_int_t)1, text));
    want_t wd = {&b, 1};
    CHECK(run_until(down_n, &wd, 5));
    CHECK(strstr(b.warnings, "Bad message (JSON text longer than 65536 bytes)") != NULL);
    CHECK_INT(b.received, 1);
    free(text);
    free(sec);
    aemp_node_destroy(a.node);
    aemp_node_destroy(b.node);
}

/* A raw peer, forked: connects to noderef, sends `greeting` (two lines)
 * and then `rest`, reads until the node closes; its verdict (see
 * child_result) is 0 when the node's bytes after its two lines begin
 * with `expect` (NULL: anything). Returns the pipe to read it from. */
static int raw_peer(const char *noderef, const char *greeting, const char *rest, const char *expect,
                    pid_t *pidp)
{
    int pfd[2];
    if (pipe(pfd)) return -1;
    pid_t pid = fork();
    if (pid) {
        close(pfd[1]);
        *pidp = pid;
        return pfd[0];
    }
    close(pfd[0]);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_port = htons((uint16_t)atoi(strrchr(noderef, ':') + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) || write(fd, greeting, strlen(greeting)) < 0) {
        dprintf(pfd[1], "3");
        _exit(0);
    }
    /* the node's greeting first, so our next bytes come after its nonce */
    aemp__buf_t got = {0};
    char buf[4096];
    ssize_t r;
    while (!after_two_lines(&got) && (r = read(fd, buf, sizeof buf)) > 0) aemp__buf_append(&got, buf, (size_t)r);
    if (write(fd, rest, strlen(rest)) < 0) {
        dprintf(pfd[1], "3");
        _exit(0);
    }
    while ((r = read(fd, buf, sizeof buf)) > 0) aemp__buf_append(&got, buf, (size_t)r);
    size_t body = after_two_lines(&got);
    int ok = body && (!expect || (aemp__buf_size(&got) - body >= strlen(expect) &&
                                  !memcmp(aemp__buf_head(&got) + body, expect, strlen(expect))));
    dprintf(pfd[1], "%d", ok ? 0 : 4);
    _exit(0);
}

TEST(tls_auth_tls_without_tls_fails)
{
    size_t len;
    char *sec = vector("aemp-secret.pem", &len);
    tnode_t b;
    start_ticker();
    REQUIRE(mktls(&b, sec, len, 0, 0));
    /* a peer that does not announce TLS but claims `tls` auth; the node
     * answers with its hmac line (it falls back), then closes */
    pid_t pid;
    int rfd = raw_peer(aemp_node_noderef(b.node),
                       "aemp;0;127.0.0.1:9;hmac_md6_64_256;json;provider=raw\n"
                       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
                       "tls;;json\n", "hmac_md6_64_256;", &pid);
    REQUIRE(rfd >= 0);
    run_for(0.5);
    CHECK_INT(child_result(rfd, pid), 0);
    CHECK(strstr(b.warnings, "authentication failure/shared secret mismatch") != NULL);
    CHECK_INT(b.links_up, 0);
    aemp_node_destroy(b.node);
    free(sec);
}

TEST(tls_garbage_instead_of_tls)
{
    size_t len;
    char *sec = vector("aemp-secret.pem", &len);
    tnode_t b;
    start_ticker();
    REQUIRE(mktls(&b, sec, len, 0, 0));
    /* announces TLS, then sends an auth line in the clear. Its nonce
     * ("zzz...") is higher than any base64 nonce but "zzz..." itself: the
     * node is the TLS client, so its first bytes are a ClientHello */
    pid_t pid;
    int rfd = raw_peer(aemp_node_noderef(b.node),
                       "aemp;0;127.0.0.1:9;hmac_md6_64_256;json;tls=1.0\n"
                       "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\n",
                       "tls;;json\n[\"\",\"devnull\"]", "\x16\x03", &pid);
    REQUIRE(rfd >= 0);
    run_for(0.5);
    CHECK_INT(child_result(rfd, pid), 0);
    CHECK(strstr(b.warnings, ": error:0A") != NULL);
    CHECK_INT(b.links_up, 0);
    aemp_node_destroy(b.node);
    free(sec);
}
