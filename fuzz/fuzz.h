/*
 * fuzz.h - what the fuzz targets share. Each fuzz/fuzz_NAME.c defines
 * its entry point with FUZZ_TARGET(NAME): built with -DFUZZ_STANDALONE
 * (the libFuzzer binaries and the plain corpus driver fuzz/replay.c) it
 * is LLVMFuzzerTestOneInput; built without it, it is fuzz_NAME_one, so
 * that the test suite can link every target into one binary and replay
 * the committed corpora in `make check`. A broken invariant aborts, which
 * both libFuzzer and the test runner report as a crash.
 */
#ifndef AEMP_FUZZ_H
#define AEMP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_handshake_one(const uint8_t *data, size_t size);
int fuzz_handshake1_one(const uint8_t *data, size_t size);
int fuzz_framer_one(const uint8_t *data, size_t size);
int fuzz_json_one(const uint8_t *data, size_t size);
int fuzz_noderef_one(const uint8_t *data, size_t size);
int fuzz_args_one(const uint8_t *data, size_t size);
int fuzz_rcfile_one(const uint8_t *data, size_t size);
int fuzz_storable_one(const uint8_t *data, size_t size);
int fuzz_cbor_one(const uint8_t *data, size_t size);
int fuzz_global_one(const uint8_t *data, size_t size);
int fuzz_requests_one(const uint8_t *data, size_t size);

#ifdef FUZZ_STANDALONE
#define FUZZ_TARGET(name) int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
#else
#define FUZZ_TARGET(name) int fuzz_##name##_one(const uint8_t *data, size_t size)
#endif

/* Not assert(): it must stay armed whatever NDEBUG says. */
#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__,      \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* A deterministic generator for split points and the like, seeded from
 * the input itself so a reproducer replays exactly. */
static inline uint64_t fuzz_seed(const uint8_t *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3ull;
    return h ? h : 1;
}

static inline uint64_t fuzz_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* A copy of the bytes with a NUL after them (inputs need not end in one). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* Exact equality of two JSON values. json_equal() looks object keys up
 * by strlen, so it misses keys with a NUL byte, which the decoder makes
 * from "\u0000". */
static inline int fuzz_json_same(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b)) return 0;
    switch (json_typeof(a)) {
    case JSON_OBJECT:
        if (json_object_size(a) != json_object_size(b)) return 0;
        for (void *it = json_object_iter((json_t *)a); it;
             it = json_object_iter_next((json_t *)a, it)) {
            json_t *bv = json_object_getn(b, json_object_iter_key(it),
                                          json_object_iter_key_len(it));
            if (!bv || !fuzz_json_same(json_object_iter_value(it), bv)) return 0;
        }
        return 1;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!fuzz_json_same(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    default:
        return json_equal(a, b); /* scalars compare by value and length */
    }
}

/* A deep copy of a with every scalar replaced by what scalar(x) returns
 * (a new reference): the value as some path carries it. */
static inline json_t *fuzz_json_map(const json_t *a, json_t *(*scalar)(const json_t *))
{
    json_t *c;
    switch (json_typeof(a)) {
    case JSON_ARRAY:
        c = json_array();
        for (size_t i = 0; i < json_array_size(a); i++)
            json_array_append_new(c, fuzz_json_map(json_array_get(a, i), scalar));
        return c;
    case JSON_OBJECT:
        c = json_object();
        for (void *it = json_object_iter((json_t *)a); it;
             it = json_object_iter_next((json_t *)a, it))
            json_object_setn_new_nocheck(c, json_object_iter_key(it),
                                         json_object_iter_key_len(it),
                                         fuzz_json_map(json_object_iter_value(it), scalar));
        return c;
    default:
        return scalar(a);
    }
}

#endif
