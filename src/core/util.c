/*
 * util.c - small shared pieces: error names and texts, the byte buffer,
 * constant-time compare, hex, and randomness from the OS CSPRNG.
 */
#include "aemp_int.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

const char *aemp_version(void)
{
    return AEMP_VERSION;
}

int aemp_version_number(void)
{
    return AEMP_VERSION_MAJOR * 10000 + AEMP_VERSION_MINOR * 100 + AEMP_VERSION_PATCH;
}

const char *aemp_strerror(int err)
{
    switch (err) {
    case AEMP_OK: return "success";
#define X(name, code, text) case code: return text;
        AEMP_ERRNO_MAP(X)
#undef X
    }
    return "unknown error";
}

const char *aemp_err_name(int err)
{
    switch (err) {
    case AEMP_OK: return "AEMP_OK";
#define X(name, code, text) case code: return "AEMP_" #name;
        AEMP_ERRNO_MAP(X)
#undef X
    }
    return "AEMP_UNKNOWN";
}

int aemp__buf_reserve(aemp__buf_t *b, size_t n)
{
    if (!b->cap && b->data) {
        /* a borrowed view ({data, off, len, 0}: the bytes are not ours,
         * see link.c's reads): the content is copied before it grows */
        aemp__buf_t lent = *b;
        size_t keep = aemp__buf_size(&lent);
        *b = (aemp__buf_t){0};
        if (keep + n < n || aemp__buf_reserve(b, keep + n)) {
            *b = lent;
            return AEMP_ENOMEM;
        }
        memcpy(b->data, lent.data + lent.off, keep);
        b->len = keep;
        return 0;
    }
    if (b->cap - b->len >= n) return 0;
    /* reuse the consumed prefix when that is enough and worth a move */
    if (b->off && b->cap - (b->len - b->off) >= n && b->off >= (b->len - b->off)) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        return 0;
    }
    size_t need = b->len + n;
    if (need < n) return AEMP_ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) return AEMP_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int aemp__buf_append(aemp__buf_t *b, const void *p, size_t n)
{
    if (aemp__buf_reserve(b, n)) return AEMP_ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void aemp__buf_consume(aemp__buf_t *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len) b->off = b->len = 0;
}

void aemp__buf_free(aemp__buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

int aemp__ct_memcmp(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++) acc |= x[i] ^ y[i];
    return acc != 0;
}

void aemp__hex(const unsigned char *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

/* The ChaCha20 keystream under a key and IV from aemp_random_bytes,
 * taken anew after AEMP__RNG_RESEED bytes. */
#define AEMP__RNG_RESEED (1u << 30)
struct aemp__rng {
    EVP_CIPHER_CTX *ctx;
    size_t left; /* bytes until the next reseed */
};

static int rng_seed(aemp__rng_t *r)
{
    unsigned char kiv[32 + 16];
    int rc = aemp_random_bytes(kiv, sizeof kiv);
    if (!rc && EVP_EncryptInit_ex(r->ctx, EVP_chacha20(), NULL, kiv, kiv + 32) != 1) rc = AEMP_EIO;
    OPENSSL_cleanse(kiv, sizeof kiv);
    r->left = rc ? 0 : AEMP__RNG_RESEED;
    return rc;
}

aemp__rng_t *aemp__rng_new(void)
{
    aemp__rng_t *r = calloc(1, sizeof *r);
    if (r && (!(r->ctx = EVP_CIPHER_CTX_new()) || rng_seed(r))) {
        aemp__rng_free(r);
        return NULL;
    }
    return r;
}

int aemp__rng_bytes(aemp__rng_t *r, void *buf, size_t len)
{
    if (!r) return aemp_random_bytes(buf, len);
    while (len) {
        if (!r->left && rng_seed(r)) return AEMP_EIO;
        size_t n = len < r->left ? len : r->left;
        if (n > (1u << 30)) n = 1u << 30;
        int out = 0;
        memset(buf, 0, n);
        if (EVP_EncryptUpdate(r->ctx, buf, &out, buf, (int)n) != 1 || (size_t)out != n) return AEMP_EIO;
        r->left -= n;
        buf = (char *)buf + n;
        len -= n;
    }
    return 0;
}

void aemp__rng_free(aemp__rng_t *r)
{
    if (!r) return;
    EVP_CIPHER_CTX_free(r->ctx);
    free(r);
}

int aemp_random_bytes(void *buf, size_t len)
{
    while (len) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        if (RAND_bytes(buf, chunk) != 1) return AEMP_EIO;
        buf = (char *)buf + chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

const char *aemp__nodeid_problem(const char *id, size_t n)
{
    if (!n) return "it is empty";
    if (n > AEMP_NODEID_MAX) return "it is over " AEMP__STR(AEMP_NODEID_MAX) " bytes";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c == '#') return "it contains '#', which splits port ids";
        if (c == ';') return "it contains ';', which splits greetings";
        if (!c) return "it contains a NUL byte";
        if (c < 0x20 || c == 0x7f) return "it contains a control character";
    }
    if (!aemp__utf8_valid(id, n)) return "it is not UTF-8";
    return NULL;
}
