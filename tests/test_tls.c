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
#include "tnode.h"
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
