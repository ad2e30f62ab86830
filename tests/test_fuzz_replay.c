/*
 * test_fuzz_replay.c - the fuzz targets inside `make check`. Every target
 * of fuzz/ is compiled into this file (without FUZZ_STANDALONE each one
 * defines fuzz_NAME_one instead of LLVMFuzzerTestOneInput), then each test
 * runs its target over the committed corpus fuzz/corpus/NAME (seeds from
 * the recorded sessions, hand-made corners, crash reproducers), and over
 * ten to twenty thousand deterministic mutations of it, so every build
 * and sanitizer of the suite checks the targets' invariants without
 * libFuzzer. A broken invariant aborts: the runner reports the signal.
 */
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fuzz/fuzz_handshake.c"
#include "../fuzz/fuzz_handshake1.c"
#include "../fuzz/fuzz_framer.c"
#include "../fuzz/fuzz_json.c"
#include "../fuzz/fuzz_noderef.c"
#include "../fuzz/fuzz_rcfile.c"
#include "../fuzz/fuzz_storable.c"
#include "../fuzz/fuzz_cbor.c"
#include "../fuzz/fuzz_global.c"
#include "../fuzz/fuzz_requests.c"
/* args.c belongs to the aemp tool, which is still being written: replay
 * its target only where the file exists */
#if defined(__has_include)
#if __has_include("../tools/args.c")
#include "../fuzz/fuzz_args.c"
#define HAVE_FUZZ_ARGS 1
#endif
#endif

typedef int (*fuzz_fn)(const uint8_t *, size_t);

/* The corpus directory of a target, from the repository root or the
 * build directory's parent. */
static const char *corpus_dir(const char *target)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "fuzz/corpus/%s", target);
    if (access(buf, R_OK) == 0) return buf;
    snprintf(buf, sizeof buf, "%s/../fuzz/corpus/%s", t_build_dir(), target);
    return buf;
}

typedef struct corpus {
    uint8_t **data;
    size_t *size;
    size_t n;
} corpus_t;

static void corpus_load(const char *target, corpus_t *c)
{
    const char *dir = corpus_dir(target);
    memset(c, 0, sizeof *c);
    DIR *d = opendir(dir);
    if (!d) {
        t_fail(__FILE__, __LINE__, "cannot open %s", dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        struct stat st;
        if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
            fclose(f);
            continue;
        }
        size_t n = (size_t)st.st_size;
        uint8_t *p = malloc(n ? n : 1);
        if (!p || fread(p, 1, n, f) != n) abort();
        fclose(f);
        c->data = realloc(c->data, (c->n + 1) * sizeof *c->data);
        c->size = realloc(c->size, (c->n + 1) * sizeof *c->size);
        if (!c->data || !c->size) abort();
        c->data[c->n] = p;
        c->size[c->n] = n;
        c->n++;
    }
    closedir(d);
}

static void corpus_free(corpus_t *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->data[i]);
    free(c->data);
    free(c->size);
}

/* Runs fn on an exact-size copy, as libFuzzer passes its input. */
static void run_one(fuzz_fn fn, const uint8_t *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    if (n) memcpy(copy, p, n);
    fn(copy, n);
    free(copy);
}

/* One mutation of the kinds libFuzzer starts with: flip, set, insert,
 * erase, truncate, splice with another input. */
static size_t mutate(uint8_t *buf, size_t n, size_t cap, const corpus_t *c, uint64_t *rs)
{
    uint64_t r = t_rand(rs);
    switch (r % 6) {
    case 0:
        if (n) buf[(r >> 8) % n] ^= (uint8_t)(1u << ((r >> 40) % 8));
        break;
    case 1:
        if (n) buf[(r >> 8) % n] = (uint8_t)(r >> 40);
        break;
    case 2:
        if (n < cap) {
            size_t at = n ? (r >> 8) % (n + 1) : 0;
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = (uint8_t)(r >> 40);
            n++;
        }
        break;
    case 3:
        if (n) {
            size_t at = (r >> 8) % n;
            memmove(buf + at, buf + at + 1, n - at - 1);
            n--;
        }
        break;
    case 4:
        if (n) n = (r >> 8) % n;
        break;
    default: {
        size_t k = (r >> 8) % c->n, off = c->size[k] ? (r >> 24) % c->size[k] : 0;
        size_t at = n ? (r >> 40) % n : 0, take = c->size[k] - off;
        if (at + take > cap) take = cap - at;
        memcpy(buf + at, c->data[k] + off, take);
        if (at + take > n) n = at + take;
        break;
    }
    }
    return n;
}

static void replay_target(const char *target, fuzz_fn fn, size_t mutations)
{
    corpus_t c;
    corpus_load(target, &c);
    if (c.n == 0) {
        t_fail(__FILE__, __LINE__, "the %s corpus is empty", target);
        return;
    }
    for (size_t i = 0; i < c.n; i++) run_one(fn, c.data[i], c.size[i]);

    /* deterministic, so a failure here replays the same way */
    uint64_t rs = 0x6a09e667f3bcc908ull;
    size_t cap = 9000;
    uint8_t *buf = malloc(cap);
    if (!buf) abort();
    for (size_t m = 0; m < mutations; m++) {
        size_t k = (size_t)(t_rand(&rs) % c.n), n = c.size[k] < cap ? c.size[k] : cap;
        memcpy(buf, c.data[k], n);
        for (int j = 1 + (int)(t_rand(&rs) % 4); j > 0; j--) n = mutate(buf, n, cap, &c, &rs);
        run_one(fn, buf, n);
    }
    free(buf);
    printf("    %s: %zu corpus inputs, %zu mutations\n", target, c.n, mutations);
    corpus_free(&c);
}

TEST(fuzz_replay_handshake)
{
    replay_target("handshake", fuzz_handshake_one, 10000);
}

TEST(fuzz_replay_handshake1)
{
    replay_target("handshake1", fuzz_handshake1_one, 10000);
}

TEST(fuzz_replay_framer)
{
    replay_target("framer", fuzz_framer_one, 10000);
}

TEST(fuzz_replay_json)
{
    replay_target("json", fuzz_json_one, 20000);
}

TEST(fuzz_replay_noderef)
{
    replay_target("noderef", fuzz_noderef_one, 10000);
}

TEST(fuzz_replay_rcfile)
{
    replay_target("rcfile", fuzz_rcfile_one, 10000);
}

TEST(fuzz_replay_storable)
{
    replay_target("storable", fuzz_storable_one, 20000);
}

TEST(fuzz_replay_cbor)
{
    replay_target("cbor", fuzz_cbor_one, 20000);
}

TEST(fuzz_replay_global)
{
    replay_target("global", fuzz_global_one, 10000);
}

TEST(fuzz_replay_requests)
{
    replay_target("requests", fuzz_requests_one, 10000);
}

TEST(fuzz_replay_args)
{
#ifdef HAVE_FUZZ_ARGS
    replay_target("args", fuzz_args_one, 20000);
#else
    SKIP("tools/args.c is not there, so there is no args target to replay");
#endif
}
