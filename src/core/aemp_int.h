/*
 * aemp_int.h - internals shared between the library's source files: the
 * growable byte buffer and small helpers. Nothing here is public; names
 * that cross files start with aemp__.
 */
#ifndef AEMP_INT_H
#define AEMP_INT_H

#include "aemp.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A growable byte buffer: data[off .. len) is the live content. */
typedef struct aemp__buf {
    char *data;
    size_t off; /* consumed prefix */
    size_t len; /* end of content */
    size_t cap;
} aemp__buf_t;

/* Makes room for n more bytes at the end; returns 0 or AEMP_ENOMEM. May
 * move the content to the front to reuse the consumed prefix. A buffer
 * that borrows its bytes ({data, off, len, 0}, cap 0) gets a copy of its
 * content first: never freed, reallocated or written past (it must not
 * be given to aemp__buf_free while it borrows). */
int aemp__buf_reserve(aemp__buf_t *b, size_t n);
int aemp__buf_append(aemp__buf_t *b, const void *p, size_t n);
/* Drops n bytes from the front. */
void aemp__buf_consume(aemp__buf_t *b, size_t n);
void aemp__buf_free(aemp__buf_t *b);
static inline size_t aemp__buf_size(const aemp__buf_t *b) { return b->len - b->off; }
/* Keeps the first size bytes (a tail appended since is dropped). */
static inline void aemp__buf_cut(aemp__buf_t *b, size_t size)
{
    if (size < b->len - b->off) b->len = b->off + size;
}
/* (a buffer freed or never filled has no data: its head is NULL, never
 * NULL plus an offset) */
static inline char *aemp__buf_head(const aemp__buf_t *b) { return b->data ? b->data + b->off : NULL; }

/* memcpy for the short pieces messages are made of (ids, tags), without
 * a library call; the loads and stores stay within [s, s+n) and
 * [d, d+n). */
static inline void aemp__copy_short(char *d, const void *src, size_t n)
{
    const char *s = src;
    if (n >= 8 && n <= 16) {
        uint64_t a, z;
        memcpy(&a, s, 8);
        memcpy(&z, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &z, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, z;
        memcpy(&a, s, 4);
        memcpy(&z, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &z, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++) d[i] = s[i];
    } else {
        memcpy(d, s, n);
    }
}

/* The bytes of s[0..n) ORed together a word at a time (the last word
 * overlapping), with nul set when one of them is 0: what the ASCII
 * tests below look at. */
static inline uint64_t aemp__bytes_or(const unsigned char *s, size_t n, int *nul)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t acc = 0, zero = 0, w;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&w, s + i, 8);
            acc |= w;
            zero |= (w - ones) & ~w;
        }
        memcpy(&w, s + n - 8, 8);
        acc |= w;
        zero |= (w - ones) & ~w;
    } else if (n >= 4) {
        uint32_t a, z;
        memcpy(&a, s, 4);
        memcpy(&z, s + n - 4, 4);
        w = (uint64_t)a << 32 | z;
        acc = w;
        zero = (w - ones) & ~w;
    } else {
        /* padded with 'a' so that only the real bytes can be 0 */
        w = ones * 'a';
        for (size_t i = 0; i < n; i++) w = w << 8 | s[i];
        acc = w;
        zero = (w - ones) & ~w;
    }
    if (nul) *nul = (zero & highs) != 0;
    return acc;
}

/* True when every byte of s[0..n) is ASCII. */
static inline int aemp__all_ascii(const unsigned char *s, size_t n)
{
    return !(aemp__bytes_or(s, n, NULL) & 0x8080808080808080ull);
}

/* Appends the compact JSON encoding of v to b (see json.c).
 * Returns 0, AEMP_ENOMEM, or AEMP_EINVAL for a value that cannot be
 * encoded. On failure b is rewound to its former length. */
int aemp__json_encode_buf(aemp__buf_t *b, const json_t *v);

/* The message [id, ELEMENTS...] appended to b without building it: id is
 * idlen bytes (strict UTF-8, no NUL), elements a JSON array (borrowed).
 * The bytes are those aemp__json_encode_buf writes for that message.
 * Returns 0, AEMP_ENOMEM, or AEMP_EINVAL (bad id, not an array, a value
 * that cannot be encoded); on failure b is rewound. */
int aemp__json_encode_msg(aemp__buf_t *b, const char *id, size_t idlen,
                          const json_t *elements);

/* Pieces of the encoder (json.c) for writers that build a message
 * without a value: each appends to b and returns 0, AEMP_ENOMEM or
 * AEMP_EINVAL (rewinding b on failure).
 *   put_head:   '[' and the target id as a JSON string (id: idlen bytes,
 *               strict UTF-8, no NUL);
 *   put_string: a JSON string of s[0..n) (strict UTF-8, NUL allowed);
 *   put_integer, put_real: a number as JSON::XS writes it (a real must
 *               be finite);
 *   put_value:  any value, at most max_depth containers deep;
 *   put_elem:   ',' and one element of a message (one level down). */
int aemp__json_put_head(aemp__buf_t *b, const char *id, size_t idlen);
int aemp__json_put_string(aemp__buf_t *b, const char *s, size_t n);
int aemp__json_put_integer(aemp__buf_t *b, json_int_t i);
int aemp__json_put_real(aemp__buf_t *b, double d);
int aemp__json_put_value(aemp__buf_t *b, const json_t *v, size_t max_depth);
int aemp__json_put_elem(aemp__buf_t *b, const json_t *v);

/* A message's elements on their way out (pack.c): a JSON array (elems),
 * or a jansson pack format building one with its arguments (fmt, ap;
 * aemp_sendf). A format is written straight to the wire when the message
 * leaves the node, without making a value. A payload is consumed exactly
 * once, by one of the three calls below: elems is stolen, a format's
 * arguments are read and its "o" references released (as json_pack
 * does, also on failure). */
typedef struct aemp__payload {
    json_t *elems;     /* or NULL when fmt is used */
    const char *fmt;
    va_list *ap;
} aemp__payload_t;

/* Appends the message [id, ELEMENTS...] to b: the bytes
 * aemp__json_encode_msg writes for the elements the payload stands for.
 * Returns 0, AEMP_ENOMEM or AEMP_EINVAL (a format json_pack refuses, an
 * argument it refuses, a value that cannot be encoded); b is rewound on
 * failure. */
int aemp__payload_encode(aemp__buf_t *b, const char *id, size_t idlen, const aemp__payload_t *pl);
/* The same, with a cache of the last format's compiled form (a link keeps
 * one): *cache is made when NULL (left NULL without memory), freed with
 * aemp__pack_cache_free (NULL is fine). The bytes do not depend on it. */
typedef struct aemp__pack_cache aemp__pack_cache_t;
int aemp__payload_encode_cached(aemp__buf_t *b, const char *id, size_t idlen,
                                const aemp__payload_t *pl, aemp__pack_cache_t **cache);
void aemp__pack_cache_free(aemp__pack_cache_t *c);
/* The same in CBOR: the bytes aemp__cbor_encode_msg writes for the
 * elements the payload stands for (a format with '*' goes through a
 * value: its array lengths are known only at the end). */
int aemp__payload_encode_cbor(aemp__buf_t *b, const char *id, size_t idlen,
                              const aemp__payload_t *pl, aemp__pack_cache_t **cache);
/* The elements as a value (new reference to an array), or NULL when the
 * payload is not an array or cannot be made. */
json_t *aemp__payload_value(const aemp__payload_t *pl);
/* Consumes the payload without using it. */
void aemp__payload_drop(const aemp__payload_t *pl);

/* Port ids: "NODE#LOCAL", or a bare NODE for its node port. Returns the
 * local id (after the first '#'; "" for a bare node) and the length of
 * the node part in *nodelen. The one splitter. */
static inline const char *aemp__portid_split(const char *portid, size_t *nodelen)
{
    const char *h = strchr(portid, '#');
    if (!h) {
        *nodelen = strlen(portid);
        return portid + *nodelen;
    }
    *nodelen = (size_t)(h - portid);
    return h + 1;
}

/* Values a link hands back after a message was delivered, for the
 * decoder to fill instead of allocating new ones: an array with the
 * integers and short strings it held (refilled in place by a message of
 * the same shape), and more such values; all of them held by nobody else
 * (refcount 1, owned here). What a callback kept is never among them. */
typedef struct aemp__recycle {
    json_t *array;
    json_t *vals[8];
    size_t nvals;
} aemp__recycle_t;

/* Takes back a delivered elements array: kept (with its leading scalar
 * elements) when its only reference is the caller's, else released. */
void aemp__recycle_put(aemp__recycle_t *r, json_t *elems);
void aemp__recycle_free(aemp__recycle_t *r);
/* For decoders filling a recycled message array a, whose first `have`
 * elements are a previous message's: element i becomes the string
 * s[0..n) (UTF-8) or the integer x, refilled in place when the one there
 * has that type, else replaced, or appended past `have` (0, or -1 out of
 * memory); truncate drops the elements from n on, into r's pool where
 * it has room (r may be NULL). */
int aemp__recycle_set_string(json_t *a, size_t i, size_t have, const char *s, size_t n);
int aemp__recycle_set_integer(json_t *a, size_t i, size_t have, json_int_t x);
void aemp__recycle_truncate(aemp__recycle_t *r, json_t *a, size_t n);

/* Decodes a message text [ID, ELEMENTS...] as a link receives it, without
 * making a value of ID: returns the array of the elements after it (new
 * reference) and ID's bytes in *id / *idlen (pointing into buf, not
 * NUL-terminated). The result is what aemp_json_decode would return for
 * the text with the first element removed. NULL means "not on this
 * path": the text is not such an array, ID has escapes or non-ASCII
 * bytes, the text is invalid or incomplete, or memory ran out;
 * aemp_json_decode on the same text then gives the value or the error
 * message. With used NULL, buf is exactly one text (whitespace around it
 * allowed); otherwise buf starts with one (after whitespace) and may go
 * on past it: *used is where it ends, so a stream can be decoded without
 * the framer while each text arrives whole. With rc, the values come
 * from it where it has some (its array is taken over in any case). */
json_t *aemp__json_decode_msg(const char *buf, size_t len, unsigned max_depth,
                              const char **id, size_t *idlen, size_t *used, aemp__recycle_t *rc);

/* True when the framer is between texts (no text partly scanned, no
 * error): a caller may then take a text by other means, e.g.
 * aemp__json_decode_msg with `used`, without the framer noticing. */
int aemp__framer_idle(const aemp_framer_t *f);

/* 1 when a[0..n) equals b[0..n): for the short ids compared on every
 * message, where a library call costs more than the comparison. */
static inline int aemp__same_bytes(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    if (n >= 8) {
        /* whole words, the last one overlapping: no byte loop */
        for (; n > 8; a += 8, b += 8, n -= 8) {
            memcpy(&x, a, 8);
            memcpy(&y, b, 8);
            if (x != y) return 0;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    while (n--)
        if (*a++ != *b++) return 0;
    return 1;
}

/* 1 when s[0..n) is strict UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF), as the JSON decoder requires. */
int aemp__utf8_valid(const void *s, size_t n);
/* ratelim.c: the first `burst` events of each `window` seconds pass; the
 * rest are held back (counted). aemp__ratelim_hit returns 1 when the event
 * at `now` passes, else 0; *held gets, on the first event of a new
 * window, how many the previous window held back (else 0), so the caller
 * can say "... and N more like this". A zeroed struct is a fresh one. */
typedef struct aemp__ratelim {
    double start;   /* of the current window */
    unsigned count; /* events passed in it */
    unsigned held;  /* events held back in it */
} aemp__ratelim_t;
int aemp__ratelim_hit(aemp__ratelim_t *r, double now, double window, unsigned burst,
                      unsigned *held);
/* ratelim.c, too: a token bucket, refilled at `rate` a second up to
 * `burst`. aemp__bucket_take takes cost if the bucket holds it (a cost
 * over the burst: if it is full) and says whether it did; either way the
 * bucket is refilled to now (cost 0 only refills). aemp__bucket_wait:
 * the seconds until a bucket that refused cost just now holds it.
 * aemp__bucket_charge charges cost to own and to all, the latter down to
 * zero at most: what all cannot bear is charged to own once more (one
 * user cannot put a shared bucket into a debt that others wait out).
 * A zeroed struct is an empty bucket filled at its first take. */
typedef struct aemp__bucket {
    double tokens, at;
} aemp__bucket_t;
int aemp__bucket_take(aemp__bucket_t *b, double now, double rate, double burst, double cost);
double aemp__bucket_wait(const aemp__bucket_t *b, double rate, double burst, double cost);
void aemp__bucket_charge(aemp__bucket_t *all, aemp__bucket_t *own, double cost);

/* Why id[0..n) cannot be a protocol-1 node id we route and log (a static
 * sentence, "it contains '#', which splits port ids"), or NULL when it
 * can: see AEMP_NODEID_MAX in aemp.h for the rules. */
const char *aemp__nodeid_problem(const char *id, size_t n);
#define AEMP__STR_(x) #x
#define AEMP__STR(x) AEMP__STR_(x)
/* 1 when the text of a raw number (without its marker) looks like a
 * number, as the JSON encoder requires before writing it. */
int aemp__raw_text_ok(const char *s, size_t n);

/* Appends the Storable image of v (see aemp_storable_encode) to b.
 * Returns 0, AEMP_ENOMEM or AEMP_EINVAL; on failure b is rewound. */
int aemp__storable_encode_buf(aemp__buf_t *b, const json_t *v);

/* Handshake profiles (handshake.c): what a dialect's handshake is, as
 * data: greeting fields, nonce size, auth methods, the peers' error
 * texts. Protocol 0 follows AnyEvent::MP 0.4, protocol 1 2.02. */
typedef struct aemp__hs_profile aemp__hs_profile_t;
extern const aemp__hs_profile_t aemp__hs_profile0, aemp__hs_profile1;
/* The profile of a protocol number (aemp_hs_config_t.protocol), or NULL. */
const aemp__hs_profile_t *aemp__hs_profile_find(int protocol);
/* aemp_hs_new with the profile given (cfg->protocol is not read). */
aemp_hs_t *aemp__hs_new(const aemp__hs_profile_t *pf, const aemp_hs_config_t *cfg, int *err);
/* Why a failed engine failed, where another module must tell one
 * failure from another (the texts are for people): AEMP__HS_SELF, the
 * peer greeted with our own node id (protocol 1's "I refuse to talk to
 * myself"); 0 for any other failure, or none. */
enum { AEMP__HS_SELF = 1 };
int aemp__hs_reason(const aemp_hs_t *hs);
/* The peer's greeting keys and values, packed for keeping after the
 * engine is freed: "KEY\0VALUE\0" each, in the greeting's order, *len
 * bytes (a malloc'd copy the caller frees; NULL with *len 0 when there
 * are none or no memory). aemp__hs_kv_find reads one back as
 * aemp_hs_remote_kv would (a later pair wins), or NULL. */
char *aemp__hs_remote_kvs(const aemp_hs_t *hs, size_t *len);
const char *aemp__hs_kv_find(const char *kvs, size_t len, const char *key);
/* The auth method the peer used (aemp_hs_recv_auth) as the profile
 * names it: a static string, or NULL when there is none yet. */
const char *aemp__hs_recv_method(const aemp_hs_t *hs);

/* cbor.c: the CBOR framing's writers and its fast reader.
 *   cbor_encode_buf: appends the item aemp_cbor_encode writes for v;
 *   cbor_encode_msg: appends the message [id, ELEMENTS...] (id: idlen
 *     bytes, UTF-8, no NUL; elements a JSON array, borrowed) without
 *     building it, byte for byte what cbor_encode_buf writes for it.
 * Both return 0, AEMP_ENOMEM or AEMP_EINVAL (a value that cannot be
 * encoded, see aemp_cbor_encode); on failure b is rewound. */
int aemp__cbor_encode_buf(aemp__buf_t *b, const json_t *v);
int aemp__cbor_encode_msg(aemp__buf_t *b, const char *id, size_t idlen, const json_t *elements);
/* The pieces of those, for writers that make a message without a value
 * (pack.c): a head of major type major with argument n (put_head); a
 * string (UTF-8, else AEMP_EINVAL) as cbor_encode_buf writes it
 * (put_string); a message's target id (put_id: no NUL either); an
 * integer; a real (finite, else AEMP_EINVAL: jansson makes no value of
 * NaN or an infinity); any value nesting at most max_depth containers
 * deep. Each returns 0, AEMP_ENOMEM or AEMP_EINVAL (b is then as it was,
 * or holds a partial item for put_value: the caller rewinds). The
 * common ones are inline below. */
int aemp__cbor_put_real(aemp__buf_t *b, double x);
int aemp__cbor_put_value(aemp__buf_t *b, const json_t *v, size_t max_depth);
/* put_string's general case (cbor.c): any length, UTF-8 checked. */
int aemp__cbor_put_text(aemp__buf_t *b, const char *s, size_t n);

/* Writes a head of major type major with argument v in its smallest
 * width at w (9 bytes of room); returns the end. */
static inline char *aemp__cbor_head_at(char *w, unsigned major, uint64_t v)
{
    unsigned char m = (unsigned char)(major << 5);
    if (v < 24) {
        *w++ = (char)(m | v);
    } else if (v <= 0xff) {
        *w++ = (char)(m | 24);
        *w++ = (char)v;
    } else if (v <= 0xffff) {
        *w++ = (char)(m | 25);
        *w++ = (char)(v >> 8);
        *w++ = (char)v;
    } else if (v <= 0xffffffffu) {
        *w++ = (char)(m | 26);
        for (int s = 24; s >= 0; s -= 8) *w++ = (char)(v >> s);
    } else {
        *w++ = (char)(m | 27);
        for (int s = 56; s >= 0; s -= 8) *w++ = (char)(v >> s);
    }
    return w;
}

/* The writers run for every piece of every message: inline, with the
 * short ASCII strings most messages hold written in place. */
static inline int aemp__cbor_put_head(aemp__buf_t *b, unsigned major, uint64_t n)
{
    if (b->cap - b->len < 9 && aemp__buf_reserve(b, 9)) return AEMP_ENOMEM;
    b->len = (size_t)(aemp__cbor_head_at(b->data + b->len, major, n) - b->data);
    return 0;
}

/* s[0..n) as a byte string, when it is ASCII (room reserved). */
static inline void aemp__cbor_put_ascii(aemp__buf_t *b, const char *s, size_t n)
{
    char *w = aemp__cbor_head_at(b->data + b->len, 2, n);
    aemp__copy_short(w, s, n);
    b->len = (size_t)(w + n - b->data);
}

static inline int aemp__cbor_put_string(aemp__buf_t *b, const char *s, size_t n)
{
    if (n <= 64 && aemp__all_ascii((const unsigned char *)s, n)) {
        if (b->cap - b->len < n + 9 && aemp__buf_reserve(b, n + 9)) return AEMP_ENOMEM;
        aemp__cbor_put_ascii(b, s, n);
        return 0;
    }
    return aemp__cbor_put_text(b, s, n);
}

/* A message's target id: put_string for an id without NUL, else
 * AEMP_EINVAL. */
static inline int aemp__cbor_put_id(aemp__buf_t *b, const char *id, size_t idlen)
{
    int nul;
    if (idlen <= 64 && !(aemp__bytes_or((const unsigned char *)id, idlen, &nul) &
                         0x8080808080808080ull) && !nul) {
        if (b->cap - b->len < idlen + 9 && aemp__buf_reserve(b, idlen + 9)) return AEMP_ENOMEM;
        aemp__cbor_put_ascii(b, id, idlen);
        return 0;
    }
    return memchr(id, 0, idlen) ? AEMP_EINVAL : aemp__cbor_put_text(b, id, idlen);
}

static inline int aemp__cbor_put_integer(aemp__buf_t *b, json_int_t i)
{
    /* JSON::XS reads -9223372036854775808 as a string */
    if (i == INT64_MIN) return aemp__cbor_put_text(b, "-9223372036854775808", 20);
    return aemp__cbor_put_head(b, i < 0, i < 0 ? (uint64_t)(-1 - i) : (uint64_t)i);
}

/* Decodes the CBOR item at buf as a link receives a message: when it is
 * an array whose first element is a definite string of ASCII (every id
 * a node makes), returns the array of the elements after it (new
 * reference) and the id's bytes in *id / *idlen (pointing into buf). The
 * result is what aemp_cbor_decode gives for the item with the first
 * element removed. NULL means "not on this path": another item, an
 * incomplete or failing one, or no memory; the framer and
 * aemp_cbor_decode then say which. With used NULL, buf is exactly the
 * item; otherwise the item starts buf and *used is where it ends.
 * max_values: as for aemp_cbor_decode_max (0: AEMP_CBOR_MAX_VALUES).
 * With rc, the elements array comes from it where it has one (refilled
 * in place, see aemp__json_decode_msg). */
json_t *aemp__cbor_decode_msg(const char *buf, size_t len, unsigned max_depth, const char **id,
                              size_t *idlen, size_t *used, size_t max_values,
                              aemp__recycle_t *rc);
/* 1 when the framer is between items (nothing of one scanned yet) and
 * has not failed: a caller may then decode at the start of its input
 * without it. */
int aemp__cbor_framer_idle(const aemp_cbor_framer_t *f);

/* Constant-time comparison of n bytes: 0 when equal. */
int aemp__ct_memcmp(const void *a, const void *b, size_t n);

/* Lowercase hex of n bytes into out (2n+1 bytes with the NUL). */
void aemp__hex(const unsigned char *p, size_t n, char *out);

/* sha3.c: SHA3-512 and HMAC-SHA3-512 (block 72) of the concatenation of
 * n pieces (each borrowed). Return 0, AEMP_ENOMEM or AEMP_EIO (OpenSSL
 * refused). A NULL key is fine when keylen is 0. */
#define AEMP__SHA3_512_BYTES 64
typedef struct aemp__piece {
    const void *p;
    size_t n;
} aemp__piece_t;
int aemp__sha3_512(const aemp__piece_t *parts, size_t n, unsigned char out[AEMP__SHA3_512_BYTES]);
int aemp__hmac_sha3_512(const void *key, size_t keylen, const aemp__piece_t *parts, size_t n,
                        unsigned char out[AEMP__SHA3_512_BYTES]);
/* The same MAC with the key made ready once (the digest fetched, its
 * pads absorbed), for a node that computes many: new copies the key's
 * effect (NULL when out of memory or OpenSSL refused); mac returns as
 * aemp__hmac_sha3_512 and uses scratch state inside h, so one h serves
 * one thread at a time; free accepts NULL. */
typedef struct aemp__hmac_sha3 aemp__hmac_sha3_t;
aemp__hmac_sha3_t *aemp__hmac_sha3_new(const void *key, size_t keylen);
int aemp__hmac_sha3_mac(aemp__hmac_sha3_t *h, const aemp__piece_t *parts, size_t n,
                        unsigned char out[AEMP__SHA3_512_BYTES]);
void aemp__hmac_sha3_free(aemp__hmac_sha3_t *h);
/* util.c: a generator of unpredictable bytes for nonces, seeded once
 * from aemp_random_bytes (and again every GiB), so that a node does not
 * ask the system's generator for every handshake. One generator serves
 * one thread; a process that forks must not use it in both. new: NULL
 * without memory or randomness. bytes: 0, or AEMP_EIO; a NULL generator
 * takes aemp_random_bytes. free accepts NULL. */
typedef struct aemp__rng aemp__rng_t;
aemp__rng_t *aemp__rng_new(void);
int aemp__rng_bytes(aemp__rng_t *r, void *buf, size_t len);
void aemp__rng_free(aemp__rng_t *r);
/* handshake.c: hmac_sha3_512 tokens of hs use key, which must be made
 * from the same secret as hs's and outlive hs (borrowed). */
void aemp__hs_use_hmac_sha3(aemp_hs_t *hs, aemp__hmac_sha3_t *key);

#endif
