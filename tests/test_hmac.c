/*
 * test_hmac.c - tests of hmac_md6.c against ../shared/vectors/hmac_md6.json
 * (values from Perl's Digest::HMAC_MD6), including the intermediate values,
 * and its argument checks.
 */
#include "test.h"
#include "aemp_int.h"

#include <stdlib.h>

static void check_hex(const char *id, const char *what, const unsigned char *got,
                      size_t n, const char *want)
{
    char *hex = malloc(2 * n + 1);
    if (!hex) abort();
    t_hex(got, n, hex);
    if (strcmp(hex, want))
        t_fail(__FILE__, __LINE__, "%s: %s: %s != %s", id, what, hex, want);
    free(hex);
}

TEST(hmac_vectors)
{
    json_t *j = t_load_vectors("vectors/hmac_md6.json");
    json_t *arr = json_object_get(j, "vectors");
    REQUIRE(json_array_size(arr) > 0);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *id = t_jstr(v, "id");
        int block = (int)t_jint(v, "block_size"), bits = (int)t_jint(v, "hash_bits");
        size_t hlen = (size_t)(bits + 7) / 8, keylen, datalen;
        unsigned char *key = t_unhex(t_jstr(v, "key_hex"), &keylen);
        unsigned char *data = t_unhex(t_jstr(v, "data_hex"), &datalen);
        CHECK_INT(keylen, t_jint(v, "key_len"));
        CHECK_INT(datalen, t_jint(v, "data_len"));

        /* the generators, where one is named, make the same bytes */
        unsigned char *g = t_gen_bytes(t_jstr(v, "data_gen"), datalen);
        if (g) {
            CHECK_MEM(g, data, datalen);
            free(g);
        }

        /* the intermediates, computed step by step with plain MD6 */
        unsigned char k[64], inner[64], out[64];
        size_t klen = keylen;
        if (keylen > (size_t)block) {
            CHECK_INT(aemp_md6(bits, key, keylen, k), 0);
            klen = hlen;
        } else {
            memcpy(k, key, keylen);
        }
        check_hex(id, "effective key", k, klen, t_jstr(v, "effective_key_hex"));
        unsigned char pad[64] = {0};
        memcpy(pad, k, klen);
        for (int b = 0; b < block; b++) pad[b] ^= 0x36;
        aemp_md6_ctx_t ctx;
        CHECK_INT(aemp_md6_init(&ctx, bits), 0);
        aemp_md6_update(&ctx, pad, (size_t)block);
        aemp_md6_update(&ctx, data, datalen);
        aemp_md6_final(&ctx, inner);
        check_hex(id, "inner digest", inner, hlen, t_jstr(v, "inner_digest_hex"));

        /* and the call itself */
        memset(out, 0xaa, sizeof out);
        CHECK_INT(aemp_hmac_md6(key, keylen, data, datalen, block, bits, out), 0);
        check_hex(id, "hmac", out, hlen, t_jstr(v, "hmac_hex"));
        free(key);
        free(data);
    }
    json_decref(j);
}

/* Digest::HMAC XORs the pads as Perl strings: when a hashed key is longer
 * than the block, its bytes past the block enter the pads unchanged. */
TEST(hmac_hashed_key_longer_than_block)
{
    unsigned char key[40], k[64], pad[64], inner[64], want[64], got[64];
    for (size_t i = 0; i < sizeof key; i++) key[i] = (unsigned char)(3 * i);
    CHECK_INT(aemp_md6(512, key, sizeof key, k), 0);

    aemp_md6_ctx_t ctx;
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ (i < 16 ? 0x36 : 0);
    aemp_md6_init(&ctx, 512);
    aemp_md6_update(&ctx, pad, 64);
    aemp_md6_update(&ctx, "data", 4);
    aemp_md6_final(&ctx, inner);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ (i < 16 ? 0x5c : 0);
    aemp_md6_init(&ctx, 512);
    aemp_md6_update(&ctx, pad, 64);
    aemp_md6_update(&ctx, inner, 64);
    aemp_md6_final(&ctx, want);

    CHECK_INT(aemp_hmac_md6(key, sizeof key, "data", 4, 16, 512, got), 0);
    CHECK_MEM(got, want, 64);
}

/* Odd sizes work: the inner digest is ceil(bits/8) bytes. */
TEST(hmac_odd_sizes)
{
    unsigned char a[64], b[64];
    CHECK_INT(aemp_hmac_md6("k", 1, "d", 1, 1, 1, a), 0);
    CHECK(a[0] == 0 || a[0] == 0x80);
    CHECK_INT(aemp_hmac_md6("k", 1, "d", 1, 512, 17, a), 0);
    CHECK_INT(a[2] & 0x7f, 0);
    CHECK_INT(aemp_hmac_md6("key", 3, "d", 1, 64, 256, a), 0);
    CHECK_INT(aemp_hmac_md6("key", 3, "e", 1, 64, 256, b), 0);
    CHECK(memcmp(a, b, 32) != 0);
}

TEST(hmac_einval)
{
    unsigned char out[64];
    CHECK_INT(aemp_hmac_md6("k", 1, "d", 1, 0, 256, out), AEMP_EINVAL);
    CHECK_INT(aemp_hmac_md6("k", 1, "d", 1, 513, 256, out), AEMP_EINVAL);
    CHECK_INT(aemp_hmac_md6("k", 1, "d", 1, 64, 0, out), AEMP_EINVAL);
    CHECK_INT(aemp_hmac_md6("k", 1, "d", 1, 64, 513, out), AEMP_EINVAL);
    CHECK_INT(aemp_hmac_md6(NULL, 1, "d", 1, 64, 256, out), AEMP_EINVAL);
    CHECK_INT(aemp_hmac_md6("k", 1, NULL, 1, 64, 256, out), AEMP_EINVAL);
    CHECK_INT(aemp_hmac_md6("k", 1, "d", 1, 64, 256, NULL), AEMP_EINVAL);
    CHECK_INT(aemp_hmac_md6(NULL, 0, NULL, 0, 64, 256, out), 0);
    CHECK_INT(aemp_hmac_md6("k", 1, "d", 1, 512, 512, out), 0);
}
