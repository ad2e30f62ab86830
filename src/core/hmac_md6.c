/*
 * hmac_md6.c - HMAC over standard MD6, computed the way Perl's
 * Digest::HMAC_MD6 (on Digest::HMAC) does it, since AEMP peers written in
 * Perl define what a correct authentication token is.
 */
#include "aemp_int.h"

/* Longest block and longest hashed key; the pads cover both. */
#define HMAC_MAX_BLOCK 512

/* Digest::HMAC builds each pad as the Perl string XOR of the key with
 * block_size copies of the pad byte. Perl's ^ extends the shorter string
 * with zero bytes, so the key is in effect zero-padded to block_size, and
 * a hashed key longer than the block (block_size below hash_bits/8) is
 * kept whole, its bytes past the block left as they are. */
static size_t make_pad(unsigned char *pad, const unsigned char *k,
                       size_t klen, size_t block, unsigned char byte)
{
    size_t n = klen > block ? klen : block;
    for (size_t i = 0; i < n; i++)
        pad[i] = (unsigned char)((i < klen ? k[i] : 0) ^ (i < block ? byte : 0));
    return n;
}

int aemp_hmac_md6(const void *key, size_t keylen, const void *data,
                  size_t datalen, int block_size, int hash_bits,
                  unsigned char *out)
{
    if (block_size < 1 || block_size > HMAC_MAX_BLOCK || hash_bits < 1 ||
        hash_bits > 512 || !out || (!key && keylen) || (!data && datalen))
        return AEMP_EINVAL;

    size_t block = (size_t)block_size, hlen = (size_t)(hash_bits + 7) / 8;
    unsigned char k[HMAC_MAX_BLOCK];
    size_t klen = keylen;
    if (keylen > block) {
        aemp_md6(hash_bits, key, keylen, k);
        klen = hlen;
    } else if (keylen) {
        memcpy(k, key, keylen);
    }

    unsigned char pad[HMAC_MAX_BLOCK], inner[AEMP_MD6_MAX_BYTES];
    aemp_md6_ctx_t ctx;
    size_t n = make_pad(pad, k, klen, block, 0x36);
    aemp_md6_init(&ctx, hash_bits);
    aemp_md6_update(&ctx, pad, n);
    aemp_md6_update(&ctx, data, datalen);
    aemp_md6_final(&ctx, inner);

    n = make_pad(pad, k, klen, block, 0x5c);
    aemp_md6_init(&ctx, hash_bits);
    aemp_md6_update(&ctx, pad, n);
    aemp_md6_update(&ctx, inner, hlen);
    aemp_md6_final(&ctx, out);
    return 0;
}
