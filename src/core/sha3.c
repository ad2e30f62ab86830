/*
 * sha3.c - SHA3-512 and HMAC-SHA3-512 (RFC 2104 over SHA3-512, block 72
 * bytes), the digests of the protocol-1 handshake tokens. The hash is
 * OpenSSL's; the HMAC construction is written out here so the block size
 * and the long-key rule are visibly the ones AnyEvent::MP 2.02 uses
 * (Digest::HMAC with Digest::SHA3::sha3_512 and block size 72).
 */
#include "aemp_int.h"

#include <openssl/evp.h>

#define SHA3_512_BLOCK 72

/* Zeroes key material; the volatile access keeps the stores. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--) *v++ = 0;
}

/* SHA3-512 of prefix (may be NULL) followed by the pieces. */
static int digest(const unsigned char *prefix, size_t prefix_len, const aemp__piece_t *parts,
                  size_t n, unsigned char out[AEMP__SHA3_512_BYTES])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return AEMP_ENOMEM;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha3_512(), NULL) == 1;
    if (ok && prefix_len) ok = EVP_DigestUpdate(ctx, prefix, prefix_len) == 1;
    for (size_t i = 0; ok && i < n; i++)
        if (parts[i].n) ok = EVP_DigestUpdate(ctx, parts[i].p, parts[i].n) == 1;
    unsigned len = 0;
    if (ok) ok = EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == AEMP__SHA3_512_BYTES;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : AEMP_EIO;
}

int aemp__sha3_512(const aemp__piece_t *parts, size_t n, unsigned char out[AEMP__SHA3_512_BYTES])
{
    return digest(NULL, 0, parts, n, out);
}

/* A key made ready: the digest fetched once and the key's inner and outer
 * pads absorbed once; each MAC starts from copies of those two states. */
struct aemp__hmac_sha3 {
    EVP_MD *md;
    EVP_MD_CTX *inner, *outer, *work;
};

void aemp__hmac_sha3_free(aemp__hmac_sha3_t *k)
{
    if (!k) return;
    EVP_MD_CTX_free(k->inner);
    EVP_MD_CTX_free(k->outer);
    EVP_MD_CTX_free(k->work);
    EVP_MD_free(k->md);
    free(k);
}

aemp__hmac_sha3_t *aemp__hmac_sha3_new(const void *key, size_t keylen)
{
    unsigned char k[SHA3_512_BLOCK] = {0}, pad[SHA3_512_BLOCK];
    aemp__hmac_sha3_t *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->md = EVP_MD_fetch(NULL, "SHA3-512", NULL);
    h->inner = EVP_MD_CTX_new();
    h->outer = EVP_MD_CTX_new();
    h->work = EVP_MD_CTX_new();
    int ok = h->md && h->inner && h->outer && h->work;
    /* a key longer than the block is replaced by its digest; a shorter
     * one is zero-padded */
    if (ok && keylen > SHA3_512_BLOCK) {
        aemp__piece_t whole = {key, keylen};
        ok = digest(NULL, 0, &whole, 1, k) == 0;
    } else if (ok && keylen) {
        memcpy(k, key, keylen);
    }
    for (size_t i = 0; i < SHA3_512_BLOCK; i++) pad[i] = k[i] ^ 0x36;
    ok = ok && EVP_DigestInit_ex(h->inner, h->md, NULL) == 1 &&
         EVP_DigestUpdate(h->inner, pad, sizeof pad) == 1;
    for (size_t i = 0; i < SHA3_512_BLOCK; i++) pad[i] = k[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex(h->outer, h->md, NULL) == 1 &&
         EVP_DigestUpdate(h->outer, pad, sizeof pad) == 1;
    wipe(k, sizeof k);
    wipe(pad, sizeof pad);
    if (!ok) {
        aemp__hmac_sha3_free(h);
        return NULL;
    }
    return h;
}

int aemp__hmac_sha3_mac(aemp__hmac_sha3_t *h, const aemp__piece_t *parts, size_t n,
                        unsigned char out[AEMP__SHA3_512_BYTES])
{
    unsigned char inner[AEMP__SHA3_512_BYTES];
    unsigned len = 0;
    int ok = EVP_MD_CTX_copy_ex(h->work, h->inner) == 1;
    for (size_t i = 0; ok && i < n; i++)
        if (parts[i].n) ok = EVP_DigestUpdate(h->work, parts[i].p, parts[i].n) == 1;
    ok = ok && EVP_DigestFinal_ex(h->work, inner, &len) == 1 && len == AEMP__SHA3_512_BYTES;
    ok = ok && EVP_MD_CTX_copy_ex(h->work, h->outer) == 1 &&
         EVP_DigestUpdate(h->work, inner, sizeof inner) == 1 &&
         EVP_DigestFinal_ex(h->work, out, &len) == 1 && len == AEMP__SHA3_512_BYTES;
    wipe(inner, sizeof inner);
    return ok ? 0 : AEMP_EIO;
}

int aemp__hmac_sha3_512(const void *key, size_t keylen, const aemp__piece_t *parts, size_t n,
                        unsigned char out[AEMP__SHA3_512_BYTES])
{
    aemp__hmac_sha3_t *h = aemp__hmac_sha3_new(key, keylen);
    if (!h) return AEMP_ENOMEM;
    int rc = aemp__hmac_sha3_mac(h, parts, n, out);
    aemp__hmac_sha3_free(h);
    return rc;
}
