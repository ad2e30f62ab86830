/*
 * test.h - the test harness: TEST(name) declares a test (the runner's list
 * is generated from these lines), CHECK_* macros record failures and print
 * both values, SKIP ends a test that cannot run here, helpers load the
 * golden vectors from ../shared.
 */
#ifndef AEMP_TEST_H
#define AEMP_TEST_H

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#define TEST(name)                                                          \
    void test_##name(void);                                                 \
    void test_##name(void)

/* Failures so far in this test (each test runs in its own process). */
extern int t_failures;
void t_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) t_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);        \
    } while (0)

#define CHECK_INT(a, b)                                                     \
    do {                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                 \
        if (a_ != b_)                                                       \
            t_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b,    \
                   a_, b_);                                                 \
    } while (0)

#define CHECK_STR(a, b)                                                     \
    do {                                                                    \
        const char *a_ = (a), *b_ = (b);                                    \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                              \
            t_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a,    \
                   #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");             \
    } while (0)

#define CHECK_MEM(a, b, n)                                                  \
    do {                                                                    \
        if (memcmp((a), (b), (n)) != 0) t_fail_mem(__FILE__, __LINE__, #a,  \
                                                   (a), (b), (n));          \
    } while (0)

/* Stops the test at once (after a failure that makes the rest moot). */
#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond)) {                                                      \
            t_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);               \
            return;                                                         \
        }                                                                   \
    } while (0)

void t_fail_mem(const char *file, int line, const char *what, const void *a,
                const void *b, size_t n);

/* Ends the test at once as skipped: the runner prints "SKIP name: reason"
 * and counts it as skipped, not passed. Say precisely what is missing
 * here ("perl with Storable and JSON::PP not found"). Callable from
 * helpers, but only in the test's own process, not in a child it forked;
 * a test that failed a check before the skip still fails. */
#define SKIP(...) t_skip(__FILE__, __LINE__, __VA_ARGS__)
void t_skip(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* Path of a file in ../shared (AEMP_SHARED or found from the cwd);
 * returns a static buffer. */
const char *t_shared_path(const char *rel);
/* Loads a JSON file below ../shared/; aborts the test on failure. */
json_t *t_load_vectors(const char *rel);
/* The same with libaemp's decoder (big integers, NUL in strings). */
json_t *t_load_json_aemp(const char *rel);
/* Hex helpers: t_unhex returns malloc'd bytes (caller frees) and length. */
unsigned char *t_unhex(const char *hex, size_t *len);
void t_hex(const unsigned char *p, size_t n, char *out);
/* Decodes base64 (padding optional) into out; returns the byte count or
 * -1 on a bad character or when more than max bytes would result. */
int t_b64dec(const char *s, unsigned char *out, size_t max);
/* A small deterministic PRNG for property tests (xorshift64*). */
uint64_t t_rand(uint64_t *state);
/* Runs a perl script with input on its stdin (each in a file of a fresh
 * temporary directory); returns its output (malloc'd, caller frees), or
 * NULL when it could not run or failed. */
char *t_run_perl(const char *script, const char *input);
/* Path of the aemp binary under test (AEMP_BIN) and the build dir. */
const char *t_aemp_bin(void);
const char *t_build_dir(void);

/* A vector's string member ("" when it is missing or not a string) and
 * integer member (0 when missing). */
const char *t_jstr(const json_t *v, const char *key);
long long t_jint(const json_t *v, const char *key);
/* The message generators of md6.json and the data generators of
 * hmac_md6.json ("seq251", "p7", "mul31"): len bytes, malloc'd (caller
 * frees); NULL for a generator that only says "see the hex". */
unsigned char *t_gen_bytes(const char *gen, size_t len);
/* Transcript NAME of ../shared/vectors/transcripts, read with libaemp's
 * decoder (integers above INT64_MAX); aborts the test on failure. */
json_t *t_load_transcript(const char *name);
/* Splits greeting line 1 ("aemp;VERSION;NODEREF;AUTHS;FRAMINGS;KV...")
 * into the noderef, auths, framings and the rest (the key=value part,
 * "" when there is none), each into cap bytes. Returns 0, or -1 when the
 * line has fewer than five fields. */
int t_greeting_fields(const char *l1, char *noderef, char *auths, char *framings, char *kv,
                      size_t cap);

/* Handshake engines (aemp_hs_t and aemp__buf_t; the tests that use these
 * include aemp.h and aemp_int.h). */
struct aemp_hs;
struct aemp__buf;
/* Feeds the string s; returns the bytes consumed. */
size_t t_hs_feed_str(struct aemp_hs *hs, const char *s);
/* Moves all pending output into sink (NULL: drops it), acknowledging it;
 * the sink is kept NUL-terminated for CHECK_STR. */
void t_hs_drain(struct aemp_hs *hs, struct aemp__buf *sink);

#endif
