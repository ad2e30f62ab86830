/*
 * aemp_int.h - internals shared between the library's source files: the
 * growable byte buffer and small helpers. Nothing here is public; names
 * that cross files start with aemp__.
 */
#ifndef AEMP_INT_H
#define AEMP_INT_H

#include "aemp.h"

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
 * move the content to the front to reuse the consumed prefix. */
int aemp__buf_reserve(aemp__buf_t *b, size_t n);
int aemp__buf_append(aemp__buf_t *b, const void *p, size_t n);
/* Drops n bytes from the front. */
void aemp__buf_consume(aemp__buf_t *b, size_t n);
void aemp__buf_free(aemp__buf_t *b);
static inline size_t aemp__buf_size(const aemp__buf_t *b) { return b->len - b->off; }
static inline char *aemp__buf_head(const aemp__buf_t *b) { return b->data + b->off; }

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

/* Values a link hands back after a message was delivered, for the
 * decoder to fill instead of allocating new ones: an empty array, and
 * integers and strings nobody else holds (refcount 1, owned here). What
 * a callback kept is never among them. */
typedef struct aemp__recycle {
    json_t *array;
    json_t *vals[8];
    size_t nvals;
} aemp__recycle_t;

/* Takes back a delivered elements array: kept (emptied, with its scalar
 * elements) when its only reference is the caller's, else released. */
void aemp__recycle_put(aemp__recycle_t *r, json_t *elems);
void aemp__recycle_free(aemp__recycle_t *r);

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
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return 0;
    }
    while (n--)
        if (*a++ != *b++) return 0;
    return 1;
}

/* 1 when s[0..n) is strict UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF), as the JSON decoder requires. */
int aemp__utf8_valid(const void *s, size_t n);
/* 1 when the text of a raw number (without its marker) looks like a
 * number, as the JSON encoder requires before writing it. */
int aemp__raw_text_ok(const char *s, size_t n);

/* Appends the Storable image of v (see aemp_storable_encode) to b.
 * Returns 0, AEMP_ENOMEM or AEMP_EINVAL; on failure b is rewound. */
int aemp__storable_encode_buf(aemp__buf_t *b, const json_t *v);

/* Constant-time comparison of n bytes: 0 when equal. */
int aemp__ct_memcmp(const void *a, const void *b, size_t n);

/* Lowercase hex of n bytes into out (2n+1 bytes with the NUL). */
void aemp__hex(const unsigned char *p, size_t n, char *out);

#endif
