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

/* Constant-time comparison of n bytes: 0 when equal. */
int aemp__ct_memcmp(const void *a, const void *b, size_t n);

/* Lowercase hex of n bytes into out (2n+1 bytes with the NUL). */
void aemp__hex(const unsigned char *p, size_t n, char *out);

#endif
