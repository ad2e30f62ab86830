/*
 * bench_json.c - throughput of the data-phase JSON path: the stream framer
 * (MB/s and texts/s), the decoder and the encoder (messages/s), each next
 * to jansson's own json_loadb / json_dumpb on the same messages in the
 * same run, and the forms a link uses (the target id kept apart from the
 * elements, so it never becomes a value). Three payloads: a small
 * message ["port","tick",12345], an array of short strings, and a message
 * carrying a 1 KiB string. Every figure is the median of 3 runs.
 */
#define BENCH_NAME "bench_json"

#include "aemp.h"
#include "aemp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

/* Defeats dead-code elimination of the measured calls. */
static volatile size_t sink;

typedef struct payload {
    const char *name;
    char *text; /* one message as the encoder writes it */
    size_t len;
    json_t *value;
    char *stream; /* the message repeated back to back */
    size_t stream_len, count;
} payload_t;

static void make_payload(payload_t *p, const char *name, json_t *v, size_t stream_bytes)
{
    p->name = name;
    p->value = v;
    p->text = aemp_json_encode(v, &p->len);
    p->count = stream_bytes / p->len;
    p->stream_len = p->count * p->len;
    p->stream = malloc(p->stream_len);
    if (!p->text || !p->stream) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < p->count; i++) memcpy(p->stream + i * p->len, p->text, p->len);
}

/* Framer over the whole stream, as a reader that has it all buffered:
 * returns seconds. */
static double run_framer(const payload_t *p)
{
    aemp_framer_t f;
    size_t off = 0, s, e, n = 0;
    aemp_framer_init(&f, 0, 0);
    double t0 = now();
    while (aemp_framer_next(&f, p->stream + off, p->stream_len - off, &s, &e) == 1) {
        off += e;
        n++;
    }
    double t = now() - t0;
    if (n != p->count) {
        fprintf(stderr, "framer found %zu of %zu texts\n", n, p->count);
        exit(1);
    }
    return t;
}

/* The same stream split in 64 KiB reads, the way a link sees it. */
static double run_framer_chunked(const payload_t *p)
{
    aemp_framer_t f;
    aemp__buf_t region = {0};
    size_t pos = 0, s, e, n = 0;
    aemp_framer_init(&f, 0, 0);
    double t0 = now();
    while (pos < p->stream_len) {
        size_t k = p->stream_len - pos < 65536 ? p->stream_len - pos : 65536;
        aemp__buf_append(&region, p->stream + pos, k);
        pos += k;
        int rc;
        while ((rc = aemp_framer_next(&f, aemp__buf_head(&region), aemp__buf_size(&region),
                                      &s, &e)) == 1) {
            aemp__buf_consume(&region, e);
            n++;
        }
        if (rc == 0) aemp__buf_consume(&region, e);
    }
    double t = now() - t0;
    aemp__buf_free(&region);
    if (n != p->count) {
        fprintf(stderr, "chunked framer found %zu of %zu texts\n", n, p->count);
        exit(1);
    }
    return t;
}

/* jansson splitting the same stream: json_loadb with
 * JSON_DISABLE_EOF_CHECK reads one text and says where it ended. */
static double run_jansson_split(const payload_t *p, size_t limit)
{
    size_t off = 0, n = 0;
    json_error_t err;
    double t0 = now();
    while (n < limit) {
        json_t *v = json_loadb(p->stream + off, p->stream_len - off, JSON_DISABLE_EOF_CHECK, &err);
        if (!v) break;
        off += (size_t)err.position;
        json_decref(v);
        n++;
    }
    double t = now() - t0;
    if (n != limit) {
        fprintf(stderr, "jansson split found %zu texts\n", n);
        exit(1);
    }
    return t;
}

static double run_decode(const payload_t *p, size_t iters)
{
    char err[AEMP_JSON_ERRMAX];
    double t0 = now();
    for (size_t i = 0; i < iters; i++) {
        json_t *v = aemp_json_decode(p->text, p->len, 0, err, sizeof err);
        sink += json_array_size(v);
        json_decref(v);
    }
    return now() - t0;
}

/* The link's path: the target id stays bytes, the elements become the
 * array a port callback gets. */
static double run_decode_msg(const payload_t *p, size_t iters)
{
    double t0 = now();
    for (size_t i = 0; i < iters; i++) {
        const char *id;
        size_t idlen;
        json_t *v = aemp__json_decode_msg(p->text, p->len, 0, &id, &idlen, NULL, NULL);
        sink += json_array_size(v) + idlen;
        json_decref(v);
    }
    return now() - t0;
}

static double run_jansson_decode(const payload_t *p, size_t iters)
{
    json_error_t err;
    double t0 = now();
    for (size_t i = 0; i < iters; i++) {
        json_t *v = json_loadb(p->text, p->len, 0, &err);
        sink += json_array_size(v);
        json_decref(v);
    }
    return now() - t0;
}

/* Appending to one reused buffer, as a link's output queue does. */
static double run_encode_buf(const payload_t *p, size_t iters)
{
    aemp__buf_t b = {0};
    double t0 = now();
    for (size_t i = 0; i < iters; i++) {
        b.len = b.off = 0;
        aemp__json_encode_buf(&b, p->value);
        sink += b.len;
    }
    double t = now() - t0;
    aemp__buf_free(&b);
    return t;
}

/* The send path: the target id and the elements, never joined. */
static double run_encode_msg(const payload_t *p, size_t iters)
{
    aemp__buf_t b = {0};
    json_t *elems = json_array();
    for (size_t i = 1; i < json_array_size(p->value); i++)
        json_array_append(elems, json_array_get(p->value, i));
    const char *id = json_string_value(json_array_get(p->value, 0));
    size_t idlen = strlen(id);
    double t0 = now();
    for (size_t i = 0; i < iters; i++) {
        b.len = b.off = 0;
        aemp__json_encode_msg(&b, id, idlen, elems);
        sink += b.len;
    }
    double t = now() - t0;
    json_decref(elems);
    aemp__buf_free(&b);
    return t;
}

/* The public call, which mallocs its result. */
static double run_encode_alloc(const payload_t *p, size_t iters)
{
    double t0 = now();
    for (size_t i = 0; i < iters; i++) {
        size_t n;
        char *s = aemp_json_encode(p->value, &n);
        sink += n;
        free(s);
    }
    return now() - t0;
}

static double run_jansson_encode(const payload_t *p, size_t iters, char *out, size_t cap)
{
    double t0 = now();
    for (size_t i = 0; i < iters; i++)
        sink += json_dumpb(p->value, out, cap, JSON_COMPACT);
    return now() - t0;
}

#define MED3(expr) median3((expr), (expr), (expr))

static void bench(payload_t *p)
{
    size_t iters = p->len > 512 ? 60000 : 500000;
    char *out = malloc(p->len * 8 + 64);

    printf("\n%s: %zu bytes per message (%.*s%s)\n", p->name, p->len,
           p->len > 60 ? 40 : (int)p->len, p->text, p->len > 60 ? "..." : "");
    printf("  %-34s %10s %14s\n", "", "MB/s", "messages/s");

    double t = MED3(run_framer(p));
    printf("  %-34s %10.0f %14.0f\n", "framer (whole buffer)", p->stream_len / t / 1e6,
           p->count / t);
    t = MED3(run_framer_chunked(p));
    printf("  %-34s %10.0f %14.0f\n", "framer (64 KiB reads)", p->stream_len / t / 1e6,
           p->count / t);
    size_t js = p->count < iters ? p->count : iters;
    t = MED3(run_jansson_split(p, js));
    printf("  %-34s %10.0f %14.0f\n", "jansson json_loadb split+decode",
           js * p->len / t / 1e6, js / t);

    t = MED3(run_decode(p, iters));
    printf("  %-34s %10.0f %14.0f\n", "aemp_json_decode", iters * p->len / t / 1e6, iters / t);
    t = MED3(run_decode_msg(p, iters));
    printf("  %-34s %10.0f %14.0f\n", "aemp__json_decode_msg (id as bytes)", iters * p->len / t / 1e6,
           iters / t);
    t = MED3(run_jansson_decode(p, iters));
    printf("  %-34s %10.0f %14.0f\n", "jansson json_loadb", iters * p->len / t / 1e6, iters / t);

    t = MED3(run_encode_buf(p, iters));
    printf("  %-34s %10.0f %14.0f\n", "aemp__json_encode_buf (reused)", iters * p->len / t / 1e6,
           iters / t);
    t = MED3(run_encode_msg(p, iters));
    printf("  %-34s %10.0f %14.0f\n", "aemp__json_encode_msg (id apart)", iters * p->len / t / 1e6,
           iters / t);
    t = MED3(run_encode_alloc(p, iters));
    printf("  %-34s %10.0f %14.0f\n", "aemp_json_encode (malloc)", iters * p->len / t / 1e6,
           iters / t);
    t = MED3(run_jansson_encode(p, iters, out, p->len * 8 + 64));
    printf("  %-34s %10.0f %14.0f\n", "jansson json_dumpb", iters * p->len / t / 1e6,
           iters / t);
    free(out);
}

int main(void)
{
    payload_t small, shorts, big;
    char kib[1025];
    for (int i = 0; i < 1024; i++) kib[i] = (char)('a' + i % 26);
    kib[1024] = 0;

    make_payload(&small, "small message", json_pack("[s,s,i]", "port", "tick", 12345),
                 64u << 20);
    make_payload(&big, "1 KiB string payload", json_pack("[s,s,s]", "port", "data", kib),
                 64u << 20);
    make_payload(&shorts, "array of short strings",
                 json_pack("[s,s,s,s,s,s,s,s,s,s,s,s]", "", "lookup", "echo", "a", "bb", "ccc",
                           "dddd", "eeeee", "ffffff", "127.0.0.1:44001#7V1rBdrQ8iI.a",
                           "resolved", "x"),
                 64u << 20);
    printf("libaemp %s JSON benchmark (median of 3 runs)\n", AEMP_VERSION);
    bench(&small);
    bench(&shorts);
    bench(&big);
    return 0;
}
