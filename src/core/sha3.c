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

int aemp__hmac_sha3_512(const void *key, size_t keylen, const aemp__piece_t *parts, size_t n,
                        unsigned char out[AEMP__SHA3_512_BYTES])
{
    unsigned char k[SHA3_512_BLOCK] = {0}, pad[SHA3_512_BLOCK], inner[AEMP__SHA3_512_BYTES];
    int rc = 0;
    /* a key longer than the block is replaced by its digest; a shorter
     * one is zero-padded */
    if (keylen > SHA3_512_BLOCK) {
        aemp__piece_t whole = {key, keylen};
        rc = digest(NULL, 0, &whole, 1, k);
    } else if (keylen) {
        memcpy(k, key, keylen);
    }
    if (rc == 0) {
        for (size_t i = 0; i < SHA3_512_BLOCK; i++) pad[i] = k[i] ^ 0x36;
        rc = digest(pad, sizeof pad, parts, n, inner);
    }
    if (rc == 0) {
        for (size_t i = 0; i < SHA3_512_BLOCK; i++) pad[i] = k[i] ^ 0x5c;
        aemp__piece_t in = {inner, sizeof inner};
        rc = digest(pad, sizeof pad, &in, 1, out);
    }
    wipe(k, sizeof k);
    wipe(pad, sizeof pad);
    wipe(inner, sizeof inner);
    return rc;
}
