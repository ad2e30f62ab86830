/*
 * bench_cbor.c - the CBOR framing beside the JSON one, on the same
 * messages in the same run: the stream framers over a buffered stream,
 * the decoders (the whole value, and the link's form with the target id
 * kept as bytes) and the encoders (a value, and id + elements), each in
 * MB/s of its own encoding and in messages/s (the fair comparison: a
 * CBOR message is shorter than its JSON text). Payloads as in
 * bench_json.c. Last, the payload encoders a link uses for
 * aemp_sendf(node, port, "[sI]", "tick", i), format cache included. Every
 * figure is the median of 3 runs.
 */
#define BENCH_NAME "bench_cbor"

#include "aemp.h"
#include "aemp_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

static volatile size_t sink;

enum { JSON, CBOR };
static const char *const fname[] = {"json", "cbor"};

typedef struct payload {
    const char *name;
    json_t *value, *elems; /* the message, and its elements after the id */
    const char *id;
    char *bytes[2];        /* one message in each framing */
    size_t len[2];
    char *stream[2];       /* the message repeated back to back */
    size_t stream_len[2], count[2];
} payload_t;

static void make_payload(payload_t *p, const char *name, json_t *v, size_t stream_bytes)
{
    p->name = name;
    p->value = v;
    p->id = json_string_value(json_array_get(v, 0));
    p->elems = json_array();
    for (size_t i = 1; i < json_array_size(v); i++) json_array_append(p->elems, json_array_get(v, i));
    p->bytes[JSON] = aemp_json_encode(v, &p->len[JSON]);
    p->bytes[CBOR] = aemp_cbor_encode(v, &p->len[CBOR]);
    for (int f = 0; f < 2; f++) {
        p->count[f] = stream_bytes / p->len[f];
        p->stream_len[f] = p->count[f] * p->len[f];
        p->stream[f] = malloc(p->stream_len[f]);
        if (!p->bytes[f] || !p->stream[f]) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        for (size_t i = 0; i < p->count[f]; i++)
            memcpy(p->stream[f] + i * p->len[f], p->bytes[f], p->len[f]);
    }
}

static double run_framer(const payload_t *p, int f)
{
    size_t off = 0, s, e, n = 0;
    aemp_framer_t jf;
    aemp_cbor_framer_t cf;
    aemp_framer_init(&jf, 0, 0);
    aemp_cbor_framer_init(&cf, 0, 0);
    const char *b = p->stream[f];
    size_t len = p->stream_len[f];
    double t0 = now();
    if (f == JSON)
        while (aemp_framer_next(&jf, b + off, len - off, &s, &e) == 1) off += e, n++;
    else
        while (aemp_cbor_framer_next(&cf, b + off, len - off, &s, &e) == 1) off += e, n++;
    double t = now() - t0;
    aemp_cbor_framer_free(&cf);
    if (n != p->count[f]) {
        fprintf(stderr, "%s framer found %zu of %zu messages\n", fname[f], n, p->count[f]);
        exit(1);
    }
    return t;
}

static double run_decode(const payload_t *p, int f, size_t iters)
{
    const char *b = p->bytes[f];
    size_t n = p->len[f];
    double t0 = now();
    for (size_t i = 0; i < iters; i++) {
        json_t *v = f == JSON ? aemp_json_decode(b, n, 0, NULL, 0)
                              : aemp_cbor_decode(b, n, 0, NULL, NULL, 0);
        sink += json_array_size(v);
        json_decref(v);
    }
    return now() - t0;
}

static double run_decode_msg(const payload_t *p, int f, size_t iters)
{
    const char *b = p->bytes[f], *id;
    size_t n = p->len[f], idlen;
    double t0 = now();
    for (size_t i = 0; i < iters; i++) {
        json_t *v = f == JSON ? aemp__json_decode_msg(b, n, 0, &id, &idlen, NULL, NULL)
                              : aemp__cbor_decode_msg(b, n, 0, &id, &idlen, NULL, 0, NULL);
        sink += json_array_size(v) + idlen;
        json_decref(v);
    }
    return now() - t0;
}

static double run_encode(const payload_t *p, int f, int msg, size_t iters)
{
    aemp__buf_t b = {0};
    size_t idlen = strlen(p->id);
    double t0 = now();
    for (size_t i = 0; i < iters; i++) {
        b.len = b.off = 0;
        if (msg)
            f == JSON ? aemp__json_encode_msg(&b, p->id, idlen, p->elems)
                      : aemp__cbor_encode_msg(&b, p->id, idlen, p->elems);
        else
            f == JSON ? aemp__json_encode_buf(&b, p->value) : aemp__cbor_encode_buf(&b, p->value);
        sink += b.len;
    }
    double t = now() - t0;
    if (b.len != p->len[f]) {
        fprintf(stderr, "%s encoder wrote %zu bytes, not %zu\n", fname[f], b.len, p->len[f]);
        exit(1);
    }
    aemp__buf_free(&b);
    return t;
}

#define MED3(expr) median3((expr), (expr), (expr))

static void row(const char *what, int f, size_t bytes, size_t msgs, double t)
{
    printf("  %-26s %-5s %10.0f %14.0f\n", what, fname[f], bytes / t / 1e6, msgs / t);
}

/* One aemp_sendf(node, port, "[sI]", "tick", i) as a link writes it:
 * the payload encoder of each framing with the link's format cache. */
static int encode_sendf(aemp__buf_t *b, int f, aemp__pack_cache_t **cache, const char *id,
                        size_t idlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aemp__payload_t pl = {NULL, fmt, &ap};
    int rc = f == JSON ? aemp__payload_encode_cached(b, id, idlen, &pl, cache)
                       : aemp__payload_encode_cbor(b, id, idlen, &pl, cache);
    va_end(ap);
    return rc;
}

static double run_sendf(int f, size_t iters, size_t *bytes)
{
    static const char id[] = "127.0.0.1:44001#7V1rBdrQ8iI.a";
    aemp__buf_t b = {0};
    aemp__pack_cache_t *cache = NULL;
    size_t total = 0;
    double t0 = now();
    for (size_t i = 0; i < iters; i++) {
        b.len = b.off = 0;
        if (encode_sendf(&b, f, &cache, id, sizeof id - 1, "[sI]", "tick", (json_int_t)i * 977)) {
            fprintf(stderr, "%s sendf encoder failed\n", fname[f]);
            exit(1);
        }
        total += b.len;
    }
    double t = now() - t0;
    *bytes = total;
    aemp__pack_cache_free(cache);
    aemp__buf_free(&b);
    return t;
}

static void bench_sendf(void)
{
    size_t iters = 5000000, bytes[2];
    printf("\naemp_sendf \"[sI]\" (payload encoder, format cached)\n");
    printf("  %-26s %-5s %10s %14s\n", "", "", "MB/s", "messages/s");
    for (int f = 0; f < 2; f++) {
        double t = MED3(run_sendf(f, iters, &bytes[f]));
        row("sendf [sI]", f, bytes[f], iters, t);
    }
}

static void bench(payload_t *p)
{
    size_t iters = p->len[JSON] > 512 ? 60000 : 500000;
    printf("\n%s: %zu bytes as JSON, %zu as CBOR\n", p->name, p->len[JSON], p->len[CBOR]);
    printf("  %-26s %-5s %10s %14s\n", "", "", "MB/s", "messages/s");
    for (int f = 0; f < 2; f++)
        row("framer (whole buffer)", f, p->stream_len[f], p->count[f], MED3(run_framer(p, f)));
    for (int f = 0; f < 2; f++)
        row("decode (value)", f, iters * p->len[f], iters, MED3(run_decode(p, f, iters)));
    for (int f = 0; f < 2; f++)
        row("decode_msg (id as bytes)", f, iters * p->len[f], iters,
            MED3(run_decode_msg(p, f, iters)));
    for (int f = 0; f < 2; f++)
        row("encode_buf (reused)", f, iters * p->len[f], iters, MED3(run_encode(p, f, 0, iters)));
    for (int f = 0; f < 2; f++)
        row("encode_msg (id apart)", f, iters * p->len[f], iters, MED3(run_encode(p, f, 1, iters)));
}

int main(void)
{
    payload_t small, shorts, big, mixed;
    char kib[1025];
    for (int i = 0; i < 1024; i++) kib[i] = (char)('a' + i % 26);
    kib[1024] = 0;
    make_payload(&small, "small message", json_pack("[s,s,i]", "port", "tick", 12345), 64u << 20);
    make_payload(&shorts, "array of short strings",
                 json_pack("[s,s,s,s,s,s,s,s,s,s,s,s]", "", "lookup", "echo", "a", "bb", "ccc",
                           "dddd", "eeeee", "ffffff", "127.0.0.1:44001#7V1rBdrQ8iI.a",
                           "resolved", "x"),
                 64u << 20);
    make_payload(&big, "1 KiB string payload", json_pack("[s,s,s]", "port", "data", kib),
                 64u << 20);
    make_payload(&mixed, "mixed message (reals, hash, nesting)",
                 json_pack("[s,s,f,f,{s:i,s:[b,n,s]},[i,i,i]]", "p#3", "msg", 1.25, 0.1, "n", -5,
                           "l", 1, "caf\xc3\xa9", 1, 2, 3),
                 64u << 20);
    printf("libaemp %s CBOR beside JSON (median of 3 runs)\n", AEMP_VERSION);
    bench(&small);
    bench(&shorts);
    bench(&big);
    bench(&mixed);
    bench_sendf();
    return 0;
}
