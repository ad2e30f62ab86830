/* test_util.c - tests of util.c: error texts, buffer, hex, randomness. */
#include "test.h"
#include "aemp_int.h"

TEST(util_strerror)
{
    CHECK_STR(aemp_strerror(AEMP_OK), "success");
    CHECK_STR(aemp_strerror(AEMP_EINVAL), "invalid argument");
    CHECK_STR(aemp_err_name(AEMP_ENOMEM), "AEMP_ENOMEM");
    CHECK_STR(aemp_strerror(12345), "unknown error");
    CHECK_STR(aemp_err_name(-12345), "AEMP_UNKNOWN");
}

TEST(util_buf)
{
    aemp__buf_t b = {0};
    for (int i = 0; i < 1000; i++) CHECK_INT(aemp__buf_append(&b, "abc", 3), 0);
    CHECK_INT(aemp__buf_size(&b), 3000);
    aemp__buf_consume(&b, 2999);
    CHECK_INT(aemp__buf_size(&b), 1);
    CHECK(aemp__buf_head(&b)[0] == 'c');
    aemp__buf_consume(&b, 1);
    CHECK_INT(aemp__buf_size(&b), 0);
    aemp__buf_free(&b);
}

TEST(util_ct_memcmp_and_hex)
{
    CHECK_INT(aemp__ct_memcmp("abcd", "abcd", 4), 0);
    CHECK(aemp__ct_memcmp("abcd", "abce", 4) != 0);
    char out[9];
    aemp__hex((const unsigned char *)"\x01\xab\xff\x00", 4, out);
    CHECK_STR(out, "01abff00");
}

TEST(util_random_bytes)
{
    unsigned char a[33] = {0}, b[33] = {0};
    CHECK_INT(aemp_random_bytes(a, sizeof a), 0);
    CHECK_INT(aemp_random_bytes(b, sizeof b), 0);
    CHECK(memcmp(a, b, sizeof a) != 0);
}
