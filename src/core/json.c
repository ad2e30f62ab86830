/*
 * json.c - the JSON codec of the data phase. The encoder writes jansson
 * values byte for byte as a Perl node (JSON::XS in utf8 mode) writes them,
 * appending straight into a byte buffer. The decoder is strict (RFC 8259,
 * strict UTF-8) and builds jansson values without recursing, so no input
 * can exhaust the C stack. Numbers jansson cannot hold travel as "raw
 * numbers" (see aemp.h). Pure code: no I/O, no global state.
 */
#include "aemp_int.h"

#include <float.h>
#include <langinfo.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

_Static_assert(sizeof(json_int_t) == 8, "json_int_t must be 64 bits");

/* The byte that marks a json string as a raw number's literal text. */
#define RAW_MARK 0xFF

/* ------------------------------------------------------------------ */
/* Word-at-a-time byte tests. On a little-endian machine the lowest flagged
 * byte is always a true match (borrows only create false flags above a
 * true one), which is all the scanners below need. */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    defined(__GNUC__)
#define HAVE_SWAR 1
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* Flags bytes of w that are below n (n <= 128). */
static inline uint64_t bytes_below(uint64_t w, unsigned n)
{
    return (w - ONES * n) & ~w & HIGHS;
}

/* Flags bytes of w equal to c. */
static inline uint64_t bytes_equal(uint64_t w, unsigned c)
{
    uint64_t x = w ^ (ONES * c);
    return (x - ONES) & ~x & HIGHS;
}
/* Flags the bytes of w that are not plain printable ASCII, or are '"'
 * or '\\' (the lowest flag is a true one, and there is one whenever a
 * byte is such). */
static inline uint64_t plain_mask(uint64_t w)
{
    return (w & HIGHS) | bytes_below(w, 0x20) | bytes_equal(w, '"') | bytes_equal(w, '\\');
}
#else
#define HAVE_SWAR 0
#endif

/* ------------------------------------------------------------------ */
/* Encoder */

/* What follows a backslash for each control character; 'u' means \u00xx. */
static const char ctl_escape[32] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
};

static const char hexdig[] = "0123456789abcdef";

static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static inline int need(aemp__buf_t *b, size_t n)
{
    return b->cap - b->len >= n ? 0 : aemp__buf_reserve(b, n);
}

static inline int put(aemp__buf_t *b, const char *s, size_t n)
{
    if (need(b, n)) return AEMP_ENOMEM;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static inline int put1(aemp__buf_t *b, char c)
{
    if (need(b, 1)) return AEMP_ENOMEM;
    b->data[b->len++] = c;
    return 0;
}

/* First byte in [p, e) that JSON::XS escapes: below 0x20, '"', '\'. */
static inline const unsigned char *enc_scan(const unsigned char *p,
                                            const unsigned char *e)
{
#if HAVE_SWAR
    while (e - p >= 8) {
        uint64_t w = load64(p);
        uint64_t m = bytes_below(w, 0x20) | bytes_equal(w, '"') | bytes_equal(w, '\\');
        if (m) return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < e && *p >= 0x20 && *p != '"' && *p != '\\') p++;
    return p;
}

/* Writes s as a JSON string. Bytes other than the escaped ones go out as
 * they are: jansson strings are UTF-8, and a string built with
 * json_stringn_nocheck is the program's own business. */
static int emit_string(aemp__buf_t *b, const unsigned char *s, size_t n)
{
    const unsigned char *p = s, *e = s + n;
    if (need(b, n + 2)) return AEMP_ENOMEM;
    char *w = b->data + b->len;
    *w++ = '"';
    for (;;) {
        const unsigned char *q = enc_scan(p, e);
        aemp__copy_short(w, p, (size_t)(q - p));
        w += q - p;
        p = q;
        if (p == e) break;
        /* an escape takes up to 6 bytes where 1 was reserved */
        if ((size_t)(b->data + b->cap - w) < (size_t)(e - p) + 7) {
            b->len = (size_t)(w - b->data);
            if (aemp__buf_reserve(b, (size_t)(e - p) + 64)) return AEMP_ENOMEM;
            w = b->data + b->len;
        }
        unsigned c = *p++;
        *w++ = '\\';
        if (c == '"' || c == '\\') {
            *w++ = (char)c;
        } else if (ctl_escape[c] != 'u') {
            *w++ = ctl_escape[c];
        } else {
            memcpy(w, "u00", 3);
            w[3] = hexdig[c >> 4];
            w[4] = hexdig[c & 15];
            w += 5;
        }
    }
    *w++ = '"';
    b->len = (size_t)(w - b->data);
    return 0;
}

/* Writes v in decimal, backwards, ending just before end. */
static char *u64_digits(char *end, uint64_t v)
{
    /* 64-bit division only while the number needs 64 bits: dividing a
     * 32-bit number by 100 is a cheaper multiplication */
    while (v > UINT32_MAX) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        end -= 2;
        memcpy(end, digit_pairs + 2 * r, 2);
    }
    uint32_t u = (uint32_t)v;
    while (u >= 100) {
        unsigned r = u % 100;
        u /= 100;
        end -= 2;
        memcpy(end, digit_pairs + 2 * r, 2);
    }
    v = u;
    if (v >= 10) {
        end -= 2;
        memcpy(end, digit_pairs + 2 * v, 2);
    } else {
        *--end = (char)('0' + v);
    }
    return end;
}

static int emit_integer(aemp__buf_t *b, json_int_t i)
{
    char tmp[24], *end = tmp + sizeof tmp;
    uint64_t mag = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    char *s = u64_digits(end, mag);
    if (i < 0) *--s = '-';
    size_t n = (size_t)(end - s);
    if (need(b, n)) return AEMP_ENOMEM;
    aemp__copy_short(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

/* "%.15g" is what JSON::XS uses (NV_DIG digits). printf follows the
 * locale's decimal point, so whatever stands between the digits is put
 * back to '.'. */
static int emit_real(aemp__buf_t *b, double d)
{
    char tmp[48];
    if (!isfinite(d)) return AEMP_EINVAL;
    int n = snprintf(tmp, sizeof tmp, "%.15g", d);
    if (n <= 0 || (size_t)n >= sizeof tmp) return AEMP_EINVAL;
    if (need(b, (size_t)n)) return AEMP_ENOMEM;
    char *w = b->data + b->len;
    int radix_done = 0;
    for (int i = 0; i < n; i++) {
        char c = tmp[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e') {
            *w++ = c;
        } else if (!radix_done) {
            *w++ = '.';
            radix_done = 1;
        }
    }
    b->len = (size_t)(w - b->data);
    return 0;
}

/* A raw number's text must look like a number, so the output stays JSON
 * whatever the program put there. */
static int raw_text_ok(const unsigned char *s, size_t n)
{
    if (n == 0 || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' ||
              c == 'e' || c == 'E'))
            return 0;
    }
    return 1;
}

int aemp__raw_text_ok(const char *s, size_t n)
{
    return raw_text_ok((const unsigned char *)s, n);
}

static int emit_string_value(aemp__buf_t *b, const json_t *v)
{
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t n = json_string_length(v);
    if (n && s[0] == RAW_MARK) {
        if (!raw_text_ok(s + 1, n - 1)) return AEMP_EINVAL;
        return put(b, (const char *)s + 1, n - 1);
    }
    return emit_string(b, s, n);
}

typedef struct eframe {
    const json_t *c; /* the open container */
    size_t i, n;     /* arrays: current index and size */
    void *it;        /* objects: current member */
} eframe_t;

/* Writes one object member's key and ':' and returns its value. */
static int emit_key(aemp__buf_t *b, void *it)
{
    const char *k = json_object_iter_key(it);
    int rc = emit_string(b, (const unsigned char *)k, json_object_iter_key_len(it));
    return rc ? rc : put1(b, ':');
}

/* Appends v, nesting at most max_depth containers deep. */
static int encode_value(aemp__buf_t *b, const json_t *v, size_t max_depth)
{
    /* relative to off: the buffer may move its content while growing */
    size_t mark = b->len - b->off;
    eframe_t inline_stack[32], *st = inline_stack;
    size_t cap = sizeof inline_stack / sizeof inline_stack[0], depth = 0;
    int rc = 0;

    if (!v) return AEMP_EINVAL;
    for (;;) {
        /* write v; a non-empty container is opened and v becomes its
         * first element */
        switch (json_typeof(v)) {
        case JSON_OBJECT:
        case JSON_ARRAY: {
            int is_obj = json_typeof(v) == JSON_OBJECT;
            void *it = NULL;
            size_t n = 0;
            if (is_obj)
                it = json_object_iter((json_t *)v);
            else
                n = json_array_size(v);
            if (depth == max_depth) {
                rc = AEMP_EINVAL;
                goto fail;
            }
            if (!it && !n) {
                rc = put(b, is_obj ? "{}" : "[]", 2);
                break;
            }
            if (depth == cap) {
                size_t ncap = cap * 2;
                eframe_t *ns = malloc(ncap * sizeof *ns);
                if (!ns) {
                    rc = AEMP_ENOMEM;
                    goto fail;
                }
                memcpy(ns, st, depth * sizeof *st);
                if (st != inline_stack) free(st);
                st = ns;
                cap = ncap;
            }
            eframe_t *f = &st[depth++];
            f->c = v;
            f->i = 0;
            f->n = n;
            f->it = it;
            if ((rc = put1(b, is_obj ? '{' : '['))) goto fail;
            if (is_obj) {
                if ((rc = emit_key(b, it))) goto fail;
                v = json_object_iter_value(it);
            } else {
                v = json_array_get(v, 0);
            }
            continue;
        }
        case JSON_STRING:
            rc = emit_string_value(b, v);
            break;
        case JSON_INTEGER:
            rc = emit_integer(b, json_integer_value(v));
            break;
        case JSON_REAL:
            rc = emit_real(b, json_real_value(v));
            break;
        case JSON_TRUE:
            rc = put(b, "true", 4);
            break;
        case JSON_FALSE:
            rc = put(b, "false", 5);
            break;
        case JSON_NULL:
            rc = put(b, "null", 4);
            break;
        default:
            rc = AEMP_EINVAL;
            break;
        }
        if (rc) goto fail;
        /* v is written: close finished containers, move to the next
         * element */
        for (;;) {
            if (depth == 0) goto done;
            eframe_t *f = &st[depth - 1];
            if (json_typeof(f->c) == JSON_ARRAY) {
                if (++f->i < f->n) {
                    if ((rc = put1(b, ','))) goto fail;
                    v = json_array_get(f->c, f->i);
                    break;
                }
                if ((rc = put1(b, ']'))) goto fail;
            } else {
                f->it = json_object_iter_next((json_t *)f->c, f->it);
                if (f->it) {
                    if ((rc = put1(b, ',')) || (rc = emit_key(b, f->it))) goto fail;
                    v = json_object_iter_value(f->it);
                    break;
                }
                if ((rc = put1(b, '}'))) goto fail;
            }
            depth--;
        }
        /* an array whose elements vanished while we wrote is a program
         * bug; jansson returns NULL for it */
        if (!v) {
            rc = AEMP_EINVAL;
            goto fail;
        }
    }
done:
    if (st != inline_stack) free(st);
    return 0;
fail:
    if (st != inline_stack) free(st);
    b->len = b->off + mark;
    return rc;
}

int aemp__json_encode_buf(aemp__buf_t *b, const json_t *v)
{
    return encode_value(b, v, AEMP_JSON_MAX_ENCODE_DEPTH);
}

/* True when s[0..n) is strict UTF-8 (what json_string accepts). */
static int utf8_ok(const unsigned char *s, size_t n);
static inline const unsigned char *plain_scan(const unsigned char *p, const unsigned char *e);

/* True when every byte of s[0..n) is plain printable ASCII other than
 * '"' and '\' (what plain_scan passes): short ids and strings are
 * tested a word or two at a time, without a byte loop. */
static inline int plain_all(const unsigned char *s, size_t n)
{
#if HAVE_SWAR
    uint64_t w, m = 0;
    if (n >= 8) {
        const unsigned char *p = s, *last = s + n - 8;
        for (; p < last; p += 8) m |= plain_mask(load64(p));
        return !(m | plain_mask(load64(last)));
    }
    if (n >= 4) {
        uint32_t a, z;
        memcpy(&a, s, 4);
        memcpy(&z, s + n - 4, 4);
        w = a | (uint64_t)z << 32;
    } else {
        w = ONES * 'a';
        for (size_t i = 0; i < n; i++) w = w << 8 | s[i];
    }
    return !plain_mask(w);
#else
    return plain_scan(s, s + n) == s + n;
#endif
}

/* Writes lead (when not 0) and s[0..n) in quotes as it is: for strings
 * with nothing to escape. One reservation. */
static inline __attribute__((always_inline)) int put_quoted(aemp__buf_t *b, char lead,
                                                            const char *s, size_t n)
{
    size_t k = lead != 0;
    if (need(b, n + 2 + k)) return AEMP_ENOMEM;
    char *w = b->data + b->len;
    w[0] = lead;
    w[k] = '"';
    aemp__copy_short(w + k + 1, s, n);
    w[n + k + 1] = '"';
    b->len += n + 2 + k;
    return 0;
}

int aemp__json_put_head(aemp__buf_t *b, const char *id, size_t idlen)
{
    const unsigned char *u = (const unsigned char *)id;
    if (!id) return AEMP_EINVAL;
    if (plain_all(u, idlen)) {
        /* printable ASCII without '"' or '\' (every port id a node makes):
         * valid, and written as it is */
        return put_quoted(b, '[', id, idlen);
    }
    if (memchr(id, 0, idlen) || !utf8_ok(u, idlen)) return AEMP_EINVAL;
    size_t mark = b->len - b->off;
    int rc = put1(b, '[');
    if (!rc) rc = emit_string(b, u, idlen);
    if (rc) b->len = b->off + mark;
    return rc;
}

int aemp__json_put_string(aemp__buf_t *b, const char *s, size_t n)
{
    const unsigned char *su = (const unsigned char *)s;
    /* plain printable ASCII (most strings): valid, nothing to escape, one
     * reservation, written in place */
    if (n <= 64 && plain_all(su, n)) return put_quoted(b, 0, s, n);
    if (!utf8_ok(su, n)) return AEMP_EINVAL;
    return emit_string(b, su, n);
}

int aemp__json_put_integer(aemp__buf_t *b, json_int_t i)
{
    return emit_integer(b, i);
}

int aemp__json_put_real(aemp__buf_t *b, double d)
{
    return emit_real(b, d);
}

int aemp__json_put_value(aemp__buf_t *b, const json_t *v, size_t max_depth)
{
    return encode_value(b, v, max_depth);
}

int aemp__json_put_elem(aemp__buf_t *b, const json_t *v)
{
    size_t mark = b->len - b->off;
    int rc = 0;
    if (json_is_string(v)) {
        const char *sv = json_string_value(v);
        size_t sl = json_string_length(v);
        const unsigned char *su = (const unsigned char *)sv;
        /* a short string with nothing to escape: one reservation,
         * written in place (a jansson string is valid UTF-8 already) */
        if (sl <= 64 && (!sl || su[0] != RAW_MARK) && enc_scan(su, su + sl) == su + sl)
            return put_quoted(b, ',', sv, sl);
        rc = put1(b, ',');
        if (!rc) rc = emit_string_value(b, v);
    } else if (json_is_integer(v)) {
        rc = put1(b, ',');
        if (!rc) rc = emit_integer(b, json_integer_value(v));
    } else {
        /* the elements sit one level below the message array */
        rc = put1(b, ',');
        if (!rc) rc = encode_value(b, v, AEMP_JSON_MAX_ENCODE_DEPTH - 1);
    }
    if (rc) b->len = b->off + mark;
    return rc;
}

int aemp__json_encode_msg(aemp__buf_t *b, const char *id, size_t idlen,
                          const json_t *elements)
{
    size_t mark = b->len - b->off, n = json_array_size(elements);
    if (!json_is_array(elements)) return AEMP_EINVAL;
    int rc = aemp__json_put_head(b, id, idlen);
    /* strings and integers, most of what messages hold, skip the
     * container machinery */
    for (size_t i = 0; !rc && i < n; i++) rc = aemp__json_put_elem(b, json_array_get(elements, i));
    if (!rc) rc = put1(b, ']');
    if (rc) b->len = b->off + mark;
    return rc;
}

char *aemp_json_encode(const json_t *v, size_t *len)
{
    aemp__buf_t b = {0};
    if (aemp__json_encode_buf(&b, v) || put1(&b, '\0')) {
        aemp__buf_free(&b);
        return NULL;
    }
    if (len) *len = b.len - 1;
    return b.data;
}

/* ------------------------------------------------------------------ */
/* Raw numbers */

static json_t *make_raw(const char *text, size_t n)
{
    char tmp[64];
    char *p = n + 1 <= sizeof tmp ? tmp : malloc(n + 1);
    if (!p) return NULL;
    p[0] = (char)RAW_MARK;
    memcpy(p + 1, text, n);
    json_t *v = json_stringn_nocheck(p, n + 1);
    if (p != tmp) free(p);
    return v;
}

json_t *aemp_json_uint64(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
    char tmp[24], *end = tmp + sizeof tmp;
    char *s = u64_digits(end, v);
    return make_raw(s, (size_t)(end - s));
}

int aemp_json_is_raw_number(const json_t *v, const char **text)
{
    if (!json_is_string(v) || json_string_length(v) < 2) return 0;
    const char *s = json_string_value(v);
    if ((unsigned char)s[0] != RAW_MARK) return 0;
    if (text) *text = s + 1;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Decoder */

typedef struct dframe {
    json_t *c;       /* the open container; owned here until it is complete */
    const char *key; /* an object's pending key: in the input, or NULL when
                        it was unescaped into the arena at koff */
    size_t koff, klen;
} dframe_t;

typedef struct dec {
    const unsigned char *beg, *end;
    char *err;
    size_t errlen;
    /* scratch for unescaped strings and number literals; pending keys are
     * stacked in it too, so offsets (not pointers) are kept */
    aemp__buf_t arena;
    aemp__recycle_t *rc; /* values to fill instead of allocating, or NULL */
} dec_t;

/* A recycled value of type t, taken out of the pool, or NULL. */
static json_t *recycled(dec_t *d, json_type t)
{
    aemp__recycle_t *r = d->rc;
    for (size_t i = r ? r->nvals : 0; i-- > 0;)
        if (json_typeof(r->vals[i]) == t) {
            json_t *v = r->vals[i];
            r->vals[i] = r->vals[--r->nvals];
            return v;
        }
    return NULL;
}

static json_t *new_integer(dec_t *d, json_int_t x)
{
    json_t *v = recycled(d, JSON_INTEGER);
    if (!v) return json_integer(x);
    json_integer_set(v, x);
    return v;
}

/* A recycled string still costs the copy of its text, but not the value
 * around it. */
static json_t *new_string(dec_t *d, const char *s, size_t n)
{
    json_t *v = recycled(d, JSON_STRING);
    if (!v) return json_stringn_nocheck(s, n);
    if (json_string_setn_nocheck(v, s, n)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* True for an element a recycled array may keep for the next message: an
 * integer or a short string nobody else holds. Short strings only: a
 * kept string keeps its text until reused, and an idle link must not sit
 * on a big one. */
static int keepable(const json_t *v)
{
    return v->refcount == 1 &&
           (json_is_integer(v) || (json_is_string(v) && json_string_length(v) <= 64));
}

/* Drops the elements of a from index n on: into the pool while it has
 * room (those it may hold), else released. */
void aemp__recycle_truncate(aemp__recycle_t *r, json_t *a, size_t n)
{
    for (size_t i = json_array_size(a); i-- > n;) {
        json_t *v = json_array_get(a, i);
        if (r && r->nvals < sizeof r->vals / sizeof r->vals[0] && keepable(v))
            r->vals[r->nvals++] = json_incref(v);
        json_array_remove(a, i);
    }
}

void aemp__recycle_put(aemp__recycle_t *r, json_t *elems)
{
    size_t n = json_array_size(elems);
    /* a grown table would stay grown: only small arrays come back */
    if (elems->refcount != 1 || r->array || n > 8) {
        json_decref(elems);
        return;
    }
    /* the elements stay in place, up to the first one that may not: the
     * next message of the same shape refills them where they are */
    size_t k = 0;
    while (k < n && keepable(json_array_get(elems, k))) k++;
    aemp__recycle_truncate(r, elems, k);
    r->array = elems;
}

void aemp__recycle_free(aemp__recycle_t *r)
{
    json_decref(r->array);
    r->array = NULL;
    while (r->nvals) json_decref(r->vals[--r->nvals]);
}

__attribute__((format(printf, 2, 3)))
static void dec_error(dec_t *d, const char *fmt, ...)
{
    if (!d->err || !d->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, d->errlen, fmt, ap);
    va_end(ap);
}

static size_t off(const dec_t *d, const unsigned char *p)
{
    return (size_t)(p - d->beg);
}

/* The error for a byte the grammar does not allow at p (or the end). */
static void unexpected(dec_t *d, const unsigned char *p)
{
    if (p >= d->end)
        dec_error(d, "unexpected end of input at offset %zu", off(d, d->end));
    else
        dec_error(d, "unexpected byte 0x%02x at offset %zu", *p, off(d, p));
}

static inline const unsigned char *skip_ws(const unsigned char *p,
                                           const unsigned char *e)
{
    /* most calls find no whitespace at all: one test for them */
    while (p < e && *p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

static int arena_put(dec_t *d, const void *s, size_t n)
{
    if (aemp__buf_append(&d->arena, s, n)) {
        dec_error(d, "out of memory");
        return -1;
    }
    return 0;
}

/* Length of the strict UTF-8 sequence at p (lead byte >= 0x80), 0 when it
 * is not one: overlongs, surrogates, > U+10FFFF, stray or missing
 * continuation bytes. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *e)
{
    unsigned c = p[0];
    size_t avail = (size_t)(e - p);
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        return avail >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c < 0xF5) {
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        return avail >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 &&
                       (p[3] & 0xC0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

/* First byte in [p, e) that is not plain printable ASCII (or is '"' or
 * '\'): the only bytes a string scan must look at closely. */
static inline const unsigned char *plain_scan(const unsigned char *p,
                                              const unsigned char *e)
{
#if HAVE_SWAR
    while (e - p >= 8) {
        uint64_t w = load64(p);
        uint64_t m = plain_mask(w);
        if (m) return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < e && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
    return p;
}

static int utf8_ok(const unsigned char *s, size_t n)
{
    const unsigned char *p = s, *e = s + n;
    while ((p = plain_scan(p, e)) < e) {
        if (*p < 0x80) { /* a quote, backslash or control: valid UTF-8 */
            p++;
            continue;
        }
        size_t k = utf8_seq(p, e);
        if (!k) return 0;
        p += k;
    }
    return 1;
}

int aemp__utf8_valid(const void *s, size_t n)
{
    return utf8_ok(s, n);
}

/* Reads the 4 hex digits at p (up to e). Returns 0, -1 for a byte that
 * is not a hex digit, -2 when the input ends first. */
static int hex4(const unsigned char *p, const unsigned char *e, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (p + i >= e) return -2;
        unsigned c = p[i], x;
        if (c >= '0' && c <= '9')
            x = c - '0';
        else if (c >= 'a' && c <= 'f')
            x = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            x = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | x;
    }
    *out = v;
    return 0;
}

/* Decodes the escape at p (a backslash) into the arena; returns the byte
 * after it, or NULL on error. */
static const unsigned char *unescape(dec_t *d, const unsigned char *p)
{
    const unsigned char *e = d->end;
    char out[4];
    size_t n = 1;
    if (e - p < 2) {
        unexpected(d, e);
        return NULL;
    }
    switch (p[1]) {
    case '"': out[0] = '"'; break;
    case '\\': out[0] = '\\'; break;
    case '/': out[0] = '/'; break;
    case 'b': out[0] = '\b'; break;
    case 'f': out[0] = '\f'; break;
    case 'n': out[0] = '\n'; break;
    case 'r': out[0] = '\r'; break;
    case 't': out[0] = '\t'; break;
    case 'u': {
        unsigned cp, lo;
        int rc = hex4(p + 2, e, &cp);
        if (rc == -2) {
            unexpected(d, e);
            return NULL;
        }
        if (rc) {
            dec_error(d, "invalid \\u escape at offset %zu", off(d, p));
            return NULL;
        }
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            dec_error(d, "lone surrogate \\u%04x at offset %zu", cp, off(d, p));
            return NULL;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            /* JSON::XS also insists on a pair */
            if (e - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, e, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF) {
                dec_error(d, "lone surrogate \\u%04x at offset %zu", cp, off(d, p));
                return NULL;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        if (cp < 0x80) {
            out[0] = (char)cp;
        } else if (cp < 0x800) {
            out[0] = (char)(0xC0 | cp >> 6);
            out[1] = (char)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            out[0] = (char)(0xE0 | cp >> 12);
            out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
            out[2] = (char)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            out[0] = (char)(0xF0 | cp >> 18);
            out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
            out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
            out[3] = (char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        if (arena_put(d, out, n)) return NULL;
        return p + 6;
    }
    default:
        dec_error(d, "invalid escape at offset %zu", off(d, p));
        return NULL;
    }
    if (arena_put(d, out, 1)) return NULL;
    return p + 2;
}

/* A scanned string: its bytes are in the input at s, or (escapes seen) in
 * the arena at aoff. */
typedef struct sref {
    const char *s;
    size_t aoff, n;
} sref_t;

/* Scans the string whose opening quote is at *pp and moves *pp past the
 * closing quote. Returns 0, or -1 with the error set. */
static int scan_string(dec_t *d, const unsigned char **pp, sref_t *out)
{
    const unsigned char *p = *pp + 1, *s = p, *e = d->end;
    int escaped = 0;
    size_t a0 = d->arena.len;
    for (;;) {
        p = plain_scan(p, e);
        if (p >= e) {
            unexpected(d, e);
            return -1;
        }
        unsigned c = *p;
        if (c == '"') break;
        if (c >= 0x80) {
            size_t n = utf8_seq(p, e);
            if (!n) {
                dec_error(d, "invalid UTF-8 at offset %zu", off(d, p));
                return -1;
            }
            p += n;
            continue;
        }
        if (c == '\\') {
            escaped = 1;
            if (arena_put(d, s, (size_t)(p - s))) return -1;
            if (!(p = unescape(d, p))) return -1;
            s = p;
            continue;
        }
        dec_error(d, "control character 0x%02x in string at offset %zu", c, off(d, p));
        return -1;
    }
    if (escaped) {
        if (arena_put(d, s, (size_t)(p - s))) return -1;
        out->s = NULL;
        out->aoff = a0;
        out->n = d->arena.len - a0;
    } else {
        out->s = (const char *)s;
        out->n = (size_t)(p - s);
    }
    *pp = p + 1;
    return 0;
}

static inline int is_digit(unsigned c)
{
    return c - '0' < 10;
}

/* Exact powers of ten representable in a double. */
static const double pow10_exact[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* strtod on a copy of the literal: the input is not NUL-terminated, and
 * strtod reads the locale's decimal point, not '.'. */
static int slow_strtod(dec_t *d, const unsigned char *s, size_t n, double *out)
{
    const char *radix = nl_langinfo(RADIXCHAR);
    size_t rl = radix && *radix ? strlen(radix) : 0;
    size_t a0 = d->arena.len;
    for (size_t i = 0; i < n; i++) {
        int rc = s[i] == '.' && rl ? arena_put(d, radix, rl) : arena_put(d, s + i, 1);
        if (rc) return -1;
    }
    if (arena_put(d, "", 1)) return -1;
    *out = strtod(d->arena.data + a0, NULL);
    d->arena.len = a0;
    return 0;
}

/* Parses the number at *pp (grammar-checked here, so strtod only ever sees
 * a valid literal). Returns a new value or NULL with the error set. */
static json_t *parse_number(dec_t *d, const unsigned char **pp)
{
    const unsigned char *s = *pp, *p = s, *e = d->end;
    int neg = 0, is_real = 0, overflow = 0;
    uint64_t mag = 0;
    json_t *v;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p >= e || !is_digit(*p)) {
        unexpected(d, p);
        return NULL;
    }
    const unsigned char *ds = p;
    if (*p == '0') {
        p++;
    } else {
        for (; p < e && is_digit(*p); p++) {
            unsigned dg = *p - '0';
            if (mag > (UINT64_MAX - dg) / 10)
                overflow = 1;
            else
                mag = mag * 10 + dg;
        }
    }
    size_t nint = (size_t)(p - ds), nfrac = 0;
    const unsigned char *fs = NULL;
    long exp10 = 0;
    if (p < e && *p == '.') {
        is_real = 1;
        fs = ++p;
        if (p >= e || !is_digit(*p)) {
            unexpected(d, p);
            return NULL;
        }
        while (p < e && is_digit(*p)) p++;
        nfrac = (size_t)(p - fs);
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        is_real = 1;
        p++;
        if (p < e && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p >= e || !is_digit(*p)) {
            unexpected(d, p);
            return NULL;
        }
        for (; p < e && is_digit(*p); p++)
            if (exp10 < 100000) exp10 = exp10 * 10 + (*p - '0');
        if (eneg) exp10 = -exp10;
    }
    *pp = p;

    if (!is_real) {
        if (!overflow && mag <= (uint64_t)INT64_MAX)
            v = new_integer(d, neg ? -(json_int_t)mag : (json_int_t)mag);
        else if (!overflow && !neg)
            v = make_raw((const char *)s, (size_t)(p - s));
        else /* what Perl does with what fits no 64-bit integer */
            v = json_stringn_nocheck((const char *)s, (size_t)(p - s));
        if (!v) dec_error(d, "out of memory");
        return v;
    }

    double x;
    int exact = 0;
#if FLT_EVAL_METHOD == 0
    /* Clinger's fast path: a mantissa below 2^53 scaled by an exact power
     * of ten is one correctly rounded operation. */
    if (nint + nfrac <= 19) {
        uint64_t m = mag;
        for (size_t i = 0; i < nfrac; i++) m = m * 10 + (uint64_t)(fs[i] - '0');
        long e10 = exp10 - (long)nfrac;
        if (m == 0) {
            x = 0.0;
            exact = 1;
        } else if (m <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
            x = e10 < 0 ? (double)m / pow10_exact[-e10] : (double)m * pow10_exact[e10];
            exact = 1;
        }
        if (exact && neg) x = -x;
    }
#endif
    if (!exact && slow_strtod(d, s, (size_t)(p - s), &x)) return NULL;
    if (isinf(x))
        v = make_raw((const char *)s, (size_t)(p - s));
    else
        v = json_real(x);
    if (!v) dec_error(d, "out of memory");
    return v;
}

/* The literal word at p; on a mismatch the error names the first wrong
 * byte. */
static json_t *parse_literal(dec_t *d, const unsigned char **pp)
{
    const unsigned char *p = *pp;
    const char *w;
    json_t *v;
    switch (*p) {
    case 't': w = "true"; v = json_true(); break;
    case 'f': w = "false"; v = json_false(); break;
    default: w = "null"; v = json_null(); break;
    }
    for (size_t i = 0; w[i]; i++) {
        if (p + i >= d->end || p[i] != (unsigned char)w[i]) {
            unexpected(d, p + i);
            return NULL;
        }
    }
    *pp = p + strlen(w);
    return v;
}

/* Parses one JSON text from p to the end of the input (whitespace
 * after it allowed), or with endp only up to the end of the text, which
 * is stored there. With outer, the parse starts inside that array as
 * its first element is due (it then counts as the first level and is
 * owned here: returned complete, or freed on failure). */
static json_t *decode_from(dec_t *d, const unsigned char *p, unsigned max_depth,
                           json_t *outer, const unsigned char **endp)
{
    dframe_t inline_stack[32], *st = inline_stack;
    size_t cap = sizeof inline_stack / sizeof inline_stack[0], depth = 0;
    json_t *v = NULL;
    const unsigned char *e = d->end;
    sref_t sr;

    if (outer) {
        st[0].c = outer;
        st[0].key = NULL;
        st[0].koff = st[0].klen = 0;
        depth = 1;
    }

value:
    if (p >= e) {
        unexpected(d, p);
        goto fail;
    }
    switch (*p) {
    case '[':
    case '{': {
        if (depth >= max_depth) {
            dec_error(d, "nesting deeper than %u at offset %zu", max_depth, off(d, p));
            goto fail;
        }
        if (depth == cap) {
            size_t ncap = cap * 2;
            dframe_t *ns = malloc(ncap * sizeof *ns);
            if (!ns) {
                dec_error(d, "out of memory");
                goto fail;
            }
            memcpy(ns, st, depth * sizeof *st);
            if (st != inline_stack) free(st);
            st = ns;
            cap = ncap;
        }
        int is_obj = *p == '{';
        json_t *c = is_obj ? json_object() : json_array();
        if (!c) {
            dec_error(d, "out of memory");
            goto fail;
        }
        st[depth].c = c;
        st[depth].key = NULL;
        st[depth].koff = st[depth].klen = 0;
        depth++;
        p = skip_ws(p + 1, e);
        if (p < e && *p == (is_obj ? '}' : ']')) {
            p++;
            v = st[--depth].c;
            goto have;
        }
        if (is_obj) goto key;
        goto value;
    }
    case '"':
        if (scan_string(d, &p, &sr)) goto fail;
        v = new_string(d, sr.s ? sr.s : d->arena.data + sr.aoff, sr.n);
        if (!sr.s) d->arena.len = sr.aoff;
        if (!v) {
            dec_error(d, "out of memory");
            goto fail;
        }
        goto have;
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        if (!(v = parse_number(d, &p))) goto fail;
        goto have;
    case 't':
    case 'f':
    case 'n':
        if (!(v = parse_literal(d, &p))) goto fail;
        goto have;
    default:
        unexpected(d, p);
        goto fail;
    }

have:
    /* v is complete: hand it to the open container */
    if (depth == 0) goto done;
    {
        dframe_t *top = &st[depth - 1];
        if (json_typeof(top->c) == JSON_ARRAY) {
            if (json_array_append_new(top->c, v)) { /* v is gone either way */
                dec_error(d, "out of memory");
                goto fail;
            }
            p = skip_ws(p, e);
            if (p < e && *p == ',') {
                p = skip_ws(p + 1, e);
                goto value;
            }
            if (p < e && *p == ']') {
                p++;
                v = top->c;
                depth--;
                goto have;
            }
        } else {
            const char *k = top->key ? top->key : d->arena.data + top->koff;
            if (json_object_setn_new_nocheck(top->c, k, top->klen, v)) {
                dec_error(d, "out of memory");
                goto fail;
            }
            if (!top->key) d->arena.len = top->koff;
            p = skip_ws(p, e);
            if (p < e && *p == ',') {
                p = skip_ws(p + 1, e);
                goto key;
            }
            if (p < e && *p == '}') {
                p++;
                v = top->c;
                depth--;
                goto have;
            }
        }
        v = NULL;
        unexpected(d, p);
        goto fail;
    }

key:
    {
        dframe_t *top = &st[depth - 1];
        if (p >= e || *p != '"') {
            unexpected(d, p);
            goto fail;
        }
        if (scan_string(d, &p, &sr)) goto fail;
        top->key = sr.s;
        top->koff = sr.aoff;
        top->klen = sr.n;
        p = skip_ws(p, e);
        if (p >= e || *p != ':') {
            unexpected(d, p);
            goto fail;
        }
        p = skip_ws(p + 1, e);
        goto value;
    }

done:
    if (endp) {
        *endp = p;
        if (st != inline_stack) free(st);
        return v;
    }
    p = skip_ws(p, e);
    if (p != e) {
        unexpected(d, p);
        json_decref(v);
        v = NULL;
        goto fail;
    }
    if (st != inline_stack) free(st);
    return v;

fail:
    while (depth) json_decref(st[--depth].c);
    if (st != inline_stack) free(st);
    return NULL;
}

/* Element i of the message array a, which has `have` elements from a
 * recycled message: the one there is refilled in place when it is of
 * the same type (a string with the same text is left as it is), else
 * replaced; past them the value is appended. Returns 0 or -1. */
int aemp__recycle_set_string(json_t *a, size_t i, size_t have, const char *s, size_t n)
{
    if (i < have) {
        json_t *old = json_array_get(a, i);
        if (json_is_string(old)) {
            if (json_string_length(old) == n && !memcmp(json_string_value(old), s, n)) return 0;
            return json_string_setn_nocheck(old, s, n);
        }
        return json_array_set_new(a, i, json_stringn_nocheck(s, n));
    }
    return json_array_append_new(a, json_stringn_nocheck(s, n));
}

int aemp__recycle_set_integer(json_t *a, size_t i, size_t have, json_int_t x)
{
    if (i < have) {
        json_t *old = json_array_get(a, i);
        if (json_is_integer(old)) return json_integer_set(old, x);
        return json_array_set_new(a, i, json_integer(x));
    }
    return json_array_append_new(a, json_integer(x));
}

/* The elements of a message while they are strings and integers (what
 * most messages hold), decoded into a straight from the input at *pp
 * (the first element), without the general decoder's machinery. a may
 * hold a recycled message's elements, refilled where they are. Returns
 * 0 with *pp after the closing ']' and a holding exactly the elements;
 * 1 when the element at *pp needs the general decoder (a then holds the
 * ones before it); -1 for a text the general decoder would refuse too,
 * or out of memory. Numbers other than plain integers of up to 18
 * digits are left to the general decoder, which has the last word on
 * them. */
static int flat_elems(dec_t *d, const unsigned char **pp, json_t *a)
{
    const unsigned char *p = *pp, *e = d->end;
    size_t have = json_array_size(a), i = 0;
    int rc = 1;
    for (;; i++) {
        if (p >= e) {
            rc = -1;
            break;
        }
        unsigned c = *p;
        if (c == '"') {
            const unsigned char *s = p + 1, *q = plain_scan(s, e);
            if (q < e && *q == '"') {
                if (aemp__recycle_set_string(a, i, have, (const char *)s, (size_t)(q - s))) goto nomem;
                p = q + 1;
            } else {
                sref_t sr;
                if (scan_string(d, &p, &sr)) {
                    rc = -1;
                    break;
                }
                const char *t = sr.s ? sr.s : d->arena.data + sr.aoff;
                int r = aemp__recycle_set_string(a, i, have, t, sr.n);
                if (!sr.s) d->arena.len = sr.aoff;
                if (r) goto nomem;
            }
        } else if (c == '-' || is_digit(c)) {
            const unsigned char *q = p + (c == '-'), *ds = q;
            uint64_t mag = 0;
            while (q < e && is_digit(*q) && q - ds < 19) mag = mag * 10 + (*q++ - '0');
            size_t nd = (size_t)(q - ds);
            /* a lone '-', a leading zero, a fraction, an exponent or
             * more digits: the general decoder's */
            if (!nd || nd > 18 || (*ds == '0' && nd > 1) ||
                (q < e && (is_digit(*q) || *q == '.' || *q == 'e' || *q == 'E')))
                break;
            json_int_t x = c == '-' ? -(json_int_t)mag : (json_int_t)mag;
            if (aemp__recycle_set_integer(a, i, have, x)) goto nomem;
            p = q;
        } else {
            break;
        }
        p = skip_ws(p, e);
        if (p < e && *p == ',') {
            p = skip_ws(p + 1, e);
            continue;
        }
        if (p < e && *p == ']') {
            p++;
            i++;
            rc = 0;
        } else {
            rc = -1;
        }
        break;
    }
    if (rc >= 0) aemp__recycle_truncate(d->rc, a, i);
    *pp = p;
    return rc;
nomem:
    return -1;
}

/* The depth a decode may reach (see AEMP_JSON_DEPTH_LIMIT). */
static unsigned depth_limit(unsigned max_depth)
{
    if (!max_depth) return AEMP_JSON_MAX_DEPTH;
    return max_depth < AEMP_JSON_DEPTH_LIMIT ? max_depth : AEMP_JSON_DEPTH_LIMIT;
}

json_t *aemp_json_decode(const char *buf, size_t len, unsigned max_depth,
                         char *errbuf, size_t errlen)
{
    dec_t D = {NULL, NULL, errbuf, errlen, {0}, NULL};

    if (errbuf && errlen) errbuf[0] = '\0';
    if (!buf) {
        if (len) {
            dec_error(&D, "invalid argument");
            return NULL;
        }
        buf = "";
    }
    D.beg = (const unsigned char *)buf;
    D.end = D.beg + len;
    json_t *v = decode_from(&D, skip_ws(D.beg, D.end), depth_limit(max_depth), NULL, NULL);
    if (D.arena.data) aemp__buf_free(&D.arena);
    return v;
}

json_t *aemp__json_decode_msg(const char *buf, size_t len, unsigned max_depth,
                              const char **id, size_t *idlen, size_t *used, aemp__recycle_t *rc)
{
    json_t *into = rc ? rc->array : NULL;
    if (rc) rc->array = NULL;
    if (!buf) {
        json_decref(into);
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)buf, *e = b + len, *p, *s;
    p = skip_ws(b, e);
    if (p >= e || *p != '[') goto decline;
    p = skip_ws(p + 1, e);
    if (p >= e || *p != '"') goto decline;
    /* an id with escapes or non-ASCII bytes is left to the full decoder */
    s = ++p;
    p = plain_scan(p, e);
    if (p >= e || *p != '"') goto decline;
    *id = (const char *)s;
    *idlen = (size_t)(p - s);
    p = skip_ws(p + 1, e);
    json_t *elems = into ? into : json_array();
    if (!elems || p >= e) {
        json_decref(elems);
        return NULL;
    }
    if (*p == ']') {
        aemp__recycle_truncate(rc, elems, 0);
        if (used) {
            *used = (size_t)(p + 1 - b);
            return elems;
        }
        if (skip_ws(p + 1, e) == e) return elems;
        json_decref(elems);
        return NULL;
    }
    if (*p != ',') {
        json_decref(elems);
        return NULL;
    }
    dec_t D = {b, e, NULL, 0, {0}, rc};
    const unsigned char *end = NULL;
    p = skip_ws(p + 1, e);
    int flat = flat_elems(&D, &p, elems);
    json_t *v = elems;
    if (flat < 0) {
        json_decref(elems);
        v = NULL;
    } else if (flat > 0) {
        /* the rest (from the element at p on) takes the general way */
        v = decode_from(&D, p, depth_limit(max_depth), elems, used ? &end : NULL);
        if (v && used) *used = (size_t)(end - b);
    } else if (used) {
        *used = (size_t)(p - b);
    } else if (skip_ws(p, e) != e) {
        json_decref(elems);
        v = NULL;
    }
    if (D.arena.data) aemp__buf_free(&D.arena);
    return v;
decline:
    json_decref(into);
    return NULL;
}
