/* test_util.c - tests of util.c: error texts, buffer, hex, randomness. */
#include "test.h"
#include "aemp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(util_strerror)
{
    CHECK_STR(aemp_strerror(AEMP_OK), "success");
    CHECK_STR(aemp_strerror(AEMP_EINVAL), "invalid argument");
    CHECK_STR(aemp_err_name(AEMP_ENOMEM), "AEMP_ENOMEM");
    CHECK_STR(aemp_strerror(12345), "unknown error");
    CHECK_STR(aemp_err_name(-12345), "AEMP_UNKNOWN");
}

/* A buffer that borrows bytes (link.c's reads: {data, off, len, 0})
 * copies them before it grows: the borrowed bytes are neither written
 * past nor reallocated. */
TEST(util_buf_borrowed_is_copied_before_it_grows)
{
    char stack[8] = "abcdefg";
    aemp__buf_t b = {stack, 2, 5, 0}; /* "cde" left of the borrowed bytes */
    CHECK_INT(aemp__buf_append(&b, "XYZ", 3), 0);
    CHECK(b.data != stack);
    CHECK(b.cap >= 6);
    CHECK_INT((int)aemp__buf_size(&b), 6);
    CHECK_MEM(aemp__buf_head(&b), "cdeXYZ", 6);
    CHECK_STR(stack, "abcdefg"); /* untouched */
    aemp__buf_free(&b);
    aemp__buf_t e = {stack, 0, 0, 0}; /* borrowing nothing yet */
    CHECK_INT(aemp__buf_reserve(&e, 1), 0);
    CHECK(e.data != stack && e.cap >= 1);
    aemp__buf_free(&e);
}

TEST(util_buf_appends_and_consumes_in_order)
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

/* Writes n pseudo-random bytes to path and returns them (caller frees). */
static unsigned char *write_bytes(const char *path, size_t n)
{
    unsigned char *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(i * 131 + 7);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f)) {
        free(b);
        return NULL;
    }
    return b;
}

TEST(util_read_secret)
{
    char dir[] = "/tmp/aemp-secret-XXXXXX", path[64];
    REQUIRE(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/s", dir);
    /* regular files of several sizes, read whole */
    static const size_t sizes[] = {0, 1, 33, 4095, 4096, 4097, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *want = write_bytes(path, sizes[i]);
        REQUIRE(want);
        size_t len = 12345;
        int err = -1;
        void *got = aemp_read_secret(path, &len, &err);
        CHECK(got != NULL);
        CHECK_INT(err, 0);
        CHECK_INT(len, sizes[i]);
        CHECK(got && !memcmp(got, want, sizes[i]));
        aemp_secret_free(got, len);
        free(want);
    }
    /* not a regular file: a FIFO fed by a child, read as it comes */
    char fifo[64];
    snprintf(fifo, sizeof fifo, "%s/f", dir);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        unsigned char *b = write_bytes(fifo, 50000);
        _exit(b ? 0 : 1);
    }
    size_t len = 0;
    int err = -1;
    void *got = aemp_read_secret(fifo, &len, &err);
    int st = -1;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_INT(len, 50000);
    CHECK(got && ((unsigned char *)got)[49999] == (unsigned char)(49999 * 131 + 7));
    aemp_secret_free(got, len);
    /* errors */
    char missing[80];
    snprintf(missing, sizeof missing, "%s/none", dir);
    CHECK(aemp_read_secret(missing, &len, &err) == NULL);
    CHECK_INT(err, AEMP_ENOENT);
    CHECK(aemp_read_secret(dir, &len, &err) == NULL); /* a directory */
    CHECK_INT(err, AEMP_EIO);
    FILE *f = fopen(path, "wb");
    REQUIRE(f && ftruncate(fileno(f), (16 << 20) + 1) == 0);
    fclose(f);
    CHECK(aemp_read_secret(path, &len, &err) == NULL);
    CHECK_INT(err, AEMP_ELIMIT);
    aemp_secret_free(NULL, 0);
    unlink(path);
    unlink(fifo);
    rmdir(dir);
}

/* The log limiter (ratelim.c), fed with times: a burst per window, the
 * rest held back and counted, the count handed over with the first event
 * of a later window. */
TEST(util_ratelim_burst_and_summary)
{
    aemp__ratelim_t r = {0};
    unsigned held = 99;
    for (int i = 0; i < 3; i++) {
        CHECK_INT(aemp__ratelim_hit(&r, 100.0 + i, 10.0, 3, &held), 1);
        CHECK_INT(held, 0);
    }
    for (int i = 0; i < 7; i++) CHECK_INT(aemp__ratelim_hit(&r, 105.0, 10.0, 3, &held), 0);
    CHECK_INT(held, 0);
    /* the window started at 100: 109.9 is still in it */
    CHECK_INT(aemp__ratelim_hit(&r, 109.9, 10.0, 3, &held), 0);
    CHECK_INT(aemp__ratelim_hit(&r, 110.0, 10.0, 3, &held), 1);
    CHECK_INT(held, 8);
    CHECK_INT(aemp__ratelim_hit(&r, 111.0, 10.0, 3, &held), 1);
    CHECK_INT(held, 0);
    /* a clock that went back starts a new window */
    CHECK_INT(aemp__ratelim_hit(&r, 50.0, 10.0, 3, &held), 1);
    CHECK_INT(held, 0);
}

/* The token bucket (ratelim.c), fed with times: filled at its first
 * take, refilled at the rate up to the burst; a take it cannot hold is
 * refused and the wait says when it could; a cost over the burst goes
 * when the bucket is full, into debt. */
TEST(util_bucket_take_refill_and_wait)
{
    aemp__bucket_t b = {0};
    CHECK_INT(aemp__bucket_take(&b, 100.0, 10.0, 50.0, 30.0), 1); /* (full: 50) */
    CHECK(b.tokens == 20.0);
    CHECK_INT(aemp__bucket_take(&b, 100.0, 10.0, 50.0, 30.0), 0);
    CHECK(b.tokens == 20.0);
    CHECK(aemp__bucket_wait(&b, 10.0, 50.0, 30.0) == 1.0);
    CHECK_INT(aemp__bucket_take(&b, 101.0, 10.0, 50.0, 30.0), 1);
    CHECK(b.tokens == 0.0);
    CHECK_INT(aemp__bucket_take(&b, 200.0, 10.0, 50.0, 0.0), 1); /* (refilled to the burst) */
    CHECK(b.tokens == 50.0);
    CHECK_INT(aemp__bucket_take(&b, 200.0, 10.0, 50.0, 80.0), 1); /* over the burst, full */
    CHECK(b.tokens == -30.0);
    CHECK(aemp__bucket_wait(&b, 10.0, 50.0, 80.0) == 8.0); /* (until full again) */
    CHECK_INT(aemp__bucket_take(&b, 200.0, 10.0, 50.0, 0.0), 0); /* (in debt: only refilled) */
    /* a clock that went back fills it */
    CHECK_INT(aemp__bucket_take(&b, 150.0, 10.0, 50.0, 50.0), 1);
}

/* A charge to a shared bucket never takes it below zero: the rest is
 * charged to the user's own once more, so that one user's debt is its
 * own and others' waits stay as short as their own costs. */
TEST(util_bucket_charge_keeps_the_shared_one_out_of_debt)
{
    aemp__bucket_t all = {100.0, 1.0}, own = {500.0, 1.0};
    aemp__bucket_charge(&all, &own, 40.0);
    CHECK(all.tokens == 60.0 && own.tokens == 460.0);
    aemp__bucket_charge(&all, &own, 100.0); /* 60 from all, 40 more from own */
    CHECK(all.tokens == 0.0 && own.tokens == 460.0 - 100.0 - 40.0);
    aemp__bucket_charge(&all, &own, 10.0);
    CHECK(all.tokens == 0.0 && own.tokens == 320.0 - 20.0);
    all.tokens = -5.0; /* (a debt from elsewhere is left as it is) */
    aemp__bucket_charge(&all, &own, 10.0);
    CHECK(all.tokens == -5.0 && own.tokens == 300.0 - 20.0);
}
