/*
 * tls.c - TLS mode (PROTOCOL §3) as a filter in memory. Each connection's
 * SSL object reads from one memory BIO and writes to another; the link
 * layer feeds the first with what the socket delivered and takes the
 * second's content for the socket, so OpenSSL never touches a file
 * descriptor and the link keeps its own batching, limits and timers.
 * Also builds the node's SSL_CTX from a TLS-mode secret: the secret's key
 * and certificate identify us, and that certificate is the only CA we
 * trust, so two nodes verify each other exactly when they share the file.
 *
 * The OpenSSL error queue is per thread and shared by every link: it is
 * cleared before each call that can fail and after its error was read,
 * so one link's failure never shows up as another's.
 */
#include "tls.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

/* A take that moved more than this swaps in a fresh output BIO: a memory
 * BIO keeps its largest size, and an idle link should not. */
#define WBIO_KEEP_MAX (64 * 1024)

struct aemp__tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    int done;         /* handshake complete */
    int failed;
    int closed;       /* the peer sent close_notify */
    char err[256];
    char info[96];
};

/* ------------------------------------------------------------------ */
/* the secret                                                           */

/* Whether the markers occur in s in this order, without overlapping -
 * what a regex of the markers joined by .* (with /s) matches. Taking each
 * marker's earliest occurrence is enough to decide. */
static int markers_in_order(const char *s, size_t n, const char *const *marks, size_t nm)
{
    const char *p = s, *end = s + n;
    for (size_t i = 0; i < nm; i++) {
        size_t ml = strlen(marks[i]);
        const char *hit = memmem(p, (size_t)(end - p), marks[i], ml);
        if (!hit) return 0;
        p = hit + ml;
    }
    return 1;
}

int aemp__tls_secret_is_tls(const void *secret, size_t len)
{
    static const char *const pkcs1[] = {
        "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----",
        "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"};
    static const char *const pkcs8[] = {
        "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----",
        "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"};
    if (!secret) return 0;
    return markers_in_order(secret, len, pkcs1, 4) || markers_in_order(secret, len, pkcs8, 4);
}

/* An encrypted key would make OpenSSL's default callback prompt on the
 * terminal; a node has nobody to ask. */
static int no_password(char *buf, int size, int rwflag, void *ud)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)ud;
    return -1;
}

/* "what: OpenSSL's first queued error" into err; clears the queue. */
static void ctx_error(char *err, size_t errlen, const char *what)
{
    char ossl[200] = "";
    unsigned long e = ERR_get_error();
    if (e) ERR_error_string_n(e, ossl, sizeof ossl);
    ERR_clear_error();
    if (err && errlen) snprintf(err, errlen, "%s%s%s", what, *ossl ? ": " : "", ossl);
}

SSL_CTX *aemp__tls_ctx_new(const void *secret, size_t len, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    const char *what = "out of memory";

    ERR_clear_error();
    if (!secret || len > INT_MAX) {
        what = secret ? "the secret is too large" : "no secret";
        goto bad;
    }
    ctx = SSL_CTX_new(TLS_method());
    if (!ctx) {
        what = "cannot create the TLS context";
        goto bad;
    }
    /* PEM_read_bio skips blocks of other types, so the order of the key
     * and the certificates in the file does not matter here */
    if (!(bio = BIO_new_mem_buf(secret, (int)len))) goto bad;
    key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    BIO_free(bio);
    if (!key) {
        what = "cannot read the private key of the secret";
        goto bad;
    }
    /* decoders tried on the way may have queued errors; only the
     * certificate loop's are of interest below */
    ERR_clear_error();
    if (!(bio = BIO_new_mem_buf(secret, (int)len))) goto bad;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int ncerts = 0;
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, no_password, NULL);
        if (!x) break;
        int ok = X509_STORE_add_cert(store, x);
        if (ok) ok = ncerts == 0 ? SSL_CTX_use_certificate(ctx, x) : SSL_CTX_add0_chain_cert(ctx, x);
        if (ncerts == 0 || !ok) X509_free(x); /* add0 took it on success */
        if (!ok) {
            BIO_free(bio);
            what = "cannot use the certificate of the secret";
            goto bad;
        }
        ncerts++;
    }
    BIO_free(bio);
    /* the loop ends on "no start line" (no more certificates); a broken
     * certificate block ends it with another reason */
    unsigned long last = ERR_peek_last_error();
    if (!ncerts ||
        (last && !(ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE))) {
        what = "cannot read the certificate of the secret";
        goto bad;
    }
    ERR_clear_error();
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        what = "the private key of the secret does not match its certificate";
        goto bad;
    }
    EVP_PKEY_free(key);
    key = NULL;

    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        what = "cannot require TLS 1.2";
        goto bad;
    }
    /* verify against the store only: no host name, the peer is whoever
     * holds a certificate issued by (or equal to) ours */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* every link is a fresh session: no resumption, so nothing to cache
     * or ticket (the cache would grow with every accepted link) */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* a peer has no business renegotiating (TLS 1.2) in the middle of
     * a link: one more way to make us work for nothing */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_num_tickets(ctx, 0);
    /* idle links give their record buffers back */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
bad:
    ctx_error(err, errlen, what);
    EVP_PKEY_free(key);
    SSL_CTX_free(ctx);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* the filter                                                           */

aemp__tls_t *aemp__tls_new(SSL_CTX *ctx, int server)
{
    aemp__tls_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    ERR_clear_error();
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    /* an empty input BIO means "wait for more", never end of stream: the
     * link layer sees the end of the TCP stream itself */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (server) SSL_set_accept_state(t->ssl);
    else SSL_set_connect_state(t->ssl);
    return t;
}

void aemp__tls_free(aemp__tls_t *t)
{
    if (!t) return;
    SSL_free(t->ssl);
    free(t);
}

/* Records why the connection failed (sticky) and returns AEMP_ETLS. */
static int tls_fail(aemp__tls_t *t, int sslerr)
{
    unsigned long e = ERR_get_error();
    if (e) {
        ERR_error_string_n(e, t->err, sizeof t->err);
        long v = SSL_get_verify_result(t->ssl);
        if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
            v != X509_V_OK) {
            size_t l = strlen(t->err);
            snprintf(t->err + l, sizeof t->err - l, " (%s)", X509_verify_cert_error_string(v));
        }
    } else if (sslerr == SSL_ERROR_SYSCALL) {
        /* memory BIOs report no errno; this is the stream ending inside
         * a record */
        snprintf(t->err, sizeof t->err, "TLS stream ended unexpectedly");
    } else {
        snprintf(t->err, sizeof t->err, "TLS error (SSL_get_error %d)", sslerr);
    }
    ERR_clear_error();
    t->failed = 1;
    return AEMP_ETLS;
}

int aemp__tls_feed(aemp__tls_t *t, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        int w = BIO_write(t->rbio, c, chunk);
        if (w <= 0) {
            ERR_clear_error();
            return AEMP_ENOMEM;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void describe(aemp__tls_t *t)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
    snprintf(t->info, sizeof t->info, "%s %s", SSL_get_version(t->ssl),
             c ? SSL_CIPHER_get_name(c) : "?");
}

int aemp__tls_handshake(aemp__tls_t *t)
{
    if (t->failed) return AEMP_ETLS;
    if (t->done) return 1;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->done = 1;
        describe(t);
        return 1;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    return tls_fail(t, e);
}

int aemp__tls_established(const aemp__tls_t *t)
{
    return t->done && !t->failed;
}

ssize_t aemp__tls_read(aemp__tls_t *t, void *buf, size_t cap)
{
    char *out = buf;
    size_t got = 0;
    if (t->failed) return AEMP_ETLS;
    if (t->closed) return AEMP_ECLOSED;
    while (got < cap) {
        int want = cap - got > INT_MAX ? INT_MAX : (int)(cap - got);
        ERR_clear_error();
        int r = SSL_read(t->ssl, out + got, want);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            t->closed = 1;
            if (!got) return AEMP_ECLOSED;
            break;
        }
        tls_fail(t, e);
        if (!got) return AEMP_ETLS;
        break;
    }
    if (!t->done && SSL_is_init_finished(t->ssl)) {
        t->done = 1;
        describe(t);
    }
    return (ssize_t)got;
}

int aemp__tls_write(aemp__tls_t *t, const void *p, size_t n)
{
    const char *c = p;
    if (t->failed) return AEMP_ETLS;
    if (!t->done) return AEMP_ESTATE;
    /* a memory BIO never pushes back, so each call takes its whole
     * (INT_MAX-bounded) piece and cuts it into full-size records */
    while (n) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        ERR_clear_error();
        int w = SSL_write(t->ssl, c, chunk);
        if (w <= 0) return tls_fail(t, SSL_get_error(t->ssl, w));
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int aemp__tls_shutdown(aemp__tls_t *t)
{
    if (t->failed || !t->done) return AEMP_ESTATE;
    ERR_clear_error();
    /* 0 means "sent ours, the peer's has not come": all we want, since
     * the link closes right after */
    int r = SSL_shutdown(t->ssl);
    ERR_clear_error();
    return r < 0 ? AEMP_ESTATE : 0;
}

size_t aemp__tls_pending(const aemp__tls_t *t)
{
    return BIO_ctrl_pending(t->wbio);
}

int aemp__tls_take(aemp__tls_t *t, aemp__buf_t *dst)
{
    size_t n = BIO_ctrl_pending(t->wbio), moved = 0;
    if (!n) return 0;
    if (aemp__buf_reserve(dst, n)) return AEMP_ENOMEM;
    while (moved < n) {
        size_t left = n - moved;
        int r = BIO_read(t->wbio, dst->data + dst->len, left > INT_MAX ? INT_MAX : (int)left);
        if (r <= 0) break;
        dst->len += (size_t)r;
        moved += (size_t)r;
    }
    if (moved > WBIO_KEEP_MAX && !BIO_ctrl_pending(t->wbio)) {
        BIO *fresh = BIO_new(BIO_s_mem());
        if (fresh) {
            SSL_set0_wbio(t->ssl, fresh); /* frees the big one */
            t->wbio = fresh;
        }
    }
    ERR_clear_error();
    return 0;
}

const char *aemp__tls_error(const aemp__tls_t *t)
{
    return t->failed ? t->err : "";
}

const char *aemp__tls_info(const aemp__tls_t *t)
{
    return t->done && !t->failed ? t->info : NULL;
}
