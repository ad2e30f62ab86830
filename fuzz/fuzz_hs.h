/*
 * fuzz_hs.h - helpers the two handshake fuzz targets share (protocol 0
 * in fuzz_handshake.c, protocol 1 in fuzz_handshake1.c): decoding our
 * side's lines, draining output in random pieces, feeding exact-size
 * copies, byte queues between two engines.
 */
#ifndef AEMP_FUZZ_HS_H
#define AEMP_FUZZ_HS_H

#include "fuzz.h"

#include "aemp.h"

static int hs_b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes base64 into at most n bytes (the rest stays as it was). */
static void hs_unbase64(const char *s, size_t len, unsigned char *out, size_t n)
{
    unsigned acc = 0, bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len && o < n; i++) {
        int v = hs_b64val((unsigned char)s[i]);
        if (v < 0) continue;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
}

static int hs_hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
}

/* Splits off the next LF-terminated line of *p; NULL when there is none. */
static char *hs_take_line(const uint8_t **p, size_t *n)
{
    const uint8_t *lf = memchr(*p, '\n', *n);
    if (!lf) return NULL;
    char *line = fuzz_strndup(*p, (size_t)(lf - *p));
    *n -= (size_t)(lf - *p) + 1;
    *p = lf + 1;
    return line;
}

static void hs_hex(const unsigned char *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

/* Takes the pending output (acknowledged in random pieces) and appends
 * it to *out; the output is always whole lines. */
static void hs_drain(aemp_hs_t *hs, uint64_t *seed, char **out, size_t *outlen)
{
    const void *p;
    size_t n;
    while ((p = aemp_hs_out(hs, &n)) != NULL) {
        FUZZ_CHECK(n > 0);
        size_t take = 1 + fuzz_next(seed) % n;
        char *o = realloc(*out, *outlen + take + 1);
        if (!o) abort();
        memcpy(o + *outlen, p, take);
        *outlen += take;
        o[*outlen] = 0;
        *out = o;
        aemp_hs_out_ack(hs, take);
    }
    FUZZ_CHECK(aemp_hs_out(hs, &n) == NULL && n == 0);
    FUZZ_CHECK(!(aemp_hs_state(hs) & AEMP_HS_SEND));
    FUZZ_CHECK(*outlen > 0 && (*out)[*outlen - 1] == '\n');
}

/* Feeds an exact-size copy, so that a read past what was given shows. */
static size_t hs_feed_copy(aemp_hs_t *hs, const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    if (!c) abort();
    if (n) memcpy(c, p, n);
    size_t used = aemp_hs_feed(hs, c, n);
    free(c);
    FUZZ_CHECK(used <= n);
    return used;
}

typedef struct hs_queue {
    uint8_t *p;
    size_t n;
} hs_queue_t;

static void hs_queue_put(hs_queue_t *q, const void *p, size_t n)
{
    uint8_t *np = realloc(q->p, q->n + n + 1);
    if (!np) abort();
    memcpy(np + q->n, p, n);
    q->p = np;
    q->n += n;
}

/* One engine's way to the other in pair mode. */
typedef struct hs_wire {
    int crlf;        /* write CR LF line ends */
    hs_queue_t *to;  /* where its output goes */
    size_t sent;     /* bytes written so far */
    long corrupt_at; /* offset in its output to corrupt, -1: none */
    uint8_t corrupt_xor;
} hs_wire_t;

/* Moves all of hs's output onto its wire (corrupting and CR LF-ing as
 * the wire says). */
static void hs_wire_pump(aemp_hs_t *hs, hs_wire_t *w)
{
    const void *p;
    size_t n;
    while ((p = aemp_hs_out(hs, &n)) != NULL) {
        const uint8_t *b = p;
        for (size_t i = 0; i < n; i++) {
            uint8_t c = b[i];
            if (w->corrupt_at >= 0 && (size_t)w->corrupt_at == w->sent) c ^= w->corrupt_xor;
            if (c == '\n' && w->crlf) hs_queue_put(w->to, "\r", 1);
            hs_queue_put(w->to, &c, 1);
            w->sent++;
        }
        aemp_hs_out_ack(hs, n);
    }
}

#endif
