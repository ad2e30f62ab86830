/*
 * cbor.c - the CBOR codec of the data phase (RFC 8949), as an AnyEvent::MP
 * 2.x node speaks it: CBOR::XS writes one item per message, back to back.
 * Three parts: a stream framer that finds where each item ends without
 * decoding it (and keeps its place across reads), a decoder that builds
 * the jansson value JSON framing would have delivered for the same Perl
 * value, and an encoder that writes a value as a 2.x node writes the value
 * a JSON peer gave it. Pure code: no I/O, no global state.
 *
 * Why not libcbor (Debian's libcbor 0.8, the packaged C library): its
 * decoder builds its own item tree, which would then be copied into
 * jansson values (two allocations per value, slower than our JSON path);
 * it trusts length claims (a 6-byte item claiming 2^28 array elements made
 * it allocate and touch 2 GiB); it reports invalid UTF-8 and nesting past
 * its fixed stack (2048) as generic syntax / memory errors, where a link
 * must tell "drop this message" from "the stream is broken"; and the
 * mappings that make CBOR and JSON framing give one value (byte strings as
 * Latin-1 code points, CBOR::XS's choice of integer / single / double for
 * a Perl number, Latin-1 hash keys as byte strings) are ours to write in
 * any case. What is left of a CBOR codec around them is small.
 */
#include "aemp_int.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

/* An open indefinite-length container in the framer's stack. */
#define INDEF (1ull << 63)
#define IMAP (1ull << 62)
#define IODD (1ull << 61)
/* Counts above this are refused before they are stored (doubled for a
 * map, they must stay below the flag bits). */
#define MAX_COUNT (1ull << 60)

/* Tags with a meaning here. */
#define TAG_SHAREABLE 28
#define TAG_INDIRECTION 22098
#define TAG_SELF_DESCRIBE 55799

/* ------------------------------------------------------------------ */
/* Heads */

/* Reads the head at p (p < e): its length (1..9), 0 when the input ends
 * inside it, -1 for the reserved additional information 28..30. The
 * argument goes to *arg; additional information 31 (indefinite length or
 * break) gives length 1 and *indef = 1. */
static inline int head(const unsigned char *p, const unsigned char *e, uint64_t *arg,
                       int *indef)
{
    unsigned ai = p[0] & 31;
    *indef = 0;
    if (ai < 24) {
        *arg = ai;
        return 1;
    }
    size_t avail = (size_t)(e - p);
    switch (ai) {
    case 24:
        if (avail < 2) return 0;
        *arg = p[1];
        return 2;
    case 25:
        if (avail < 3) return 0;
        *arg = (uint64_t)p[1] << 8 | p[2];
        return 3;
    case 26:
        if (avail < 5) return 0;
        *arg = (uint64_t)p[1] << 24 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 8 | p[4];
        return 5;
    case 27: {
        if (avail < 9) return 0;
        uint64_t v = 0;
        for (int i = 1; i <= 8; i++) v = v << 8 | p[i];
        *arg = v;
        return 9;
    }
    case 31:
        *indef = 1;
        *arg = 0;
        return 1;
    default:
        return -1;
    }
}

/* True when major type 7 with this additional information and argument is
 * a value CBOR::XS accepts: false, true, null, undefined and the floats.
 * Every other simple value is refused, as CBOR::XS refuses it. */
static inline int simple_ok(unsigned ai)
{
    return (ai >= 20 && ai <= 23) || (ai >= 25 && ai <= 27);
}

/* ------------------------------------------------------------------ */
/* Framer */

void aemp_cbor_framer_init(aemp_cbor_framer_t *f, size_t max_len, unsigned max_depth)
{
    memset(f, 0, sizeof *f);
    f->max_len_ = max_len ? max_len : AEMP_DEFAULT_MAX_MESSAGE;
    if (f->max_len_ > MAX_COUNT) f->max_len_ = MAX_COUNT;
    f->max_depth_ = !max_depth ? AEMP_JSON_MAX_DEPTH
                    : max_depth < AEMP_CBOR_DEPTH_LIMIT ? max_depth
                                                        : AEMP_CBOR_DEPTH_LIMIT;
    f->cap_ = sizeof f->inline_ / sizeof f->inline_[0];
}

void aemp_cbor_framer_free(aemp_cbor_framer_t *f)
{
    free(f->heap_);
    f->heap_ = NULL;
    f->cap_ = sizeof f->inline_ / sizeof f->inline_[0];
    f->depth_ = 0;
}

/* The open levels: in the framer while few, else on the heap (a pointer
 * to the framer's own array would not survive a copy of it). */
static inline uint64_t *levels(aemp_cbor_framer_t *f)
{
    return f->heap_ ? f->heap_ : f->inline_;
}

int aemp__cbor_framer_idle(const aemp_cbor_framer_t *f)
{
    return !f->scanned_ && !f->depth_ && !f->istr_ && !f->tagged_ && !f->err_;
}

const char *aemp_cbor_framer_error(const aemp_cbor_framer_t *f)
{
    return f->err_ ? f->msg_ : "";
}

__attribute__((format(printf, 3, 4)))
static int framer_fail(aemp_cbor_framer_t *f, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg_, sizeof f->msg_, fmt, ap);
    va_end(ap);
    f->err_ = (int8_t)code;
    aemp_cbor_framer_free(f);
    return code;
}

/* Opens a container level holding `left` (flags or a count). */
static int framer_push(aemp_cbor_framer_t *f, uint64_t left, size_t at)
{
    if (f->depth_ >= f->max_depth_)
        return framer_fail(f, AEMP_ELIMIT, "nesting deeper than %u at offset %zu",
                           (unsigned)f->max_depth_, at);
    if (f->depth_ == f->cap_) {
        uint32_t ncap = f->cap_ * 2;
        uint64_t *ns = malloc(ncap * sizeof *ns);
        if (!ns) return framer_fail(f, AEMP_ENOMEM, "out of memory");
        memcpy(ns, levels(f), f->depth_ * sizeof *ns);
        free(f->heap_);
        f->heap_ = ns;
        f->cap_ = ncap;
    }
    levels(f)[f->depth_++] = left;
    return 0;
}

int aemp_cbor_framer_next(aemp_cbor_framer_t *f, const void *buf, size_t len,
                          size_t *start, size_t *end)
{
    const unsigned char *b = buf, *p, *e = b + len;
    *start = *end = 0;
    if (f->err_) return f->err_;
    if (len < f->scanned_) return AEMP_EINVAL;
    p = b + f->scanned_;
    for (;;) {
        size_t at = (size_t)(p - b);
        if (p >= e) break;
        unsigned ib = *p, major = ib >> 5;
        uint64_t arg;
        int indef, hl = head(p, e, &arg, &indef);
        if (hl < 0)
            return framer_fail(f, AEMP_EPROTO,
                               "reserved additional information %u at offset %zu", ib & 31, at);
        if (hl == 0) break;
        if (at + (size_t)hl > f->max_len_) goto too_long;
        uint64_t *top = f->depth_ ? &levels(f)[f->depth_ - 1] : NULL;
        if (f->istr_) {
            /* inside an indefinite string: definite chunks of its type */
            if (ib == 0xff) {
                f->istr_ = 0;
                p++;
                goto item_done;
            }
            if (major > f->istr_ || indef)
                return framer_fail(f, AEMP_EPROTO,
                                   "invalid chunk 0x%02x in an indefinite string at offset %zu",
                                   ib, at);
            if (arg > f->max_len_ - at - (size_t)hl) goto too_long;
            if (arg > (uint64_t)(e - p) - (uint64_t)hl) break;
            p += hl + (size_t)arg;
            continue;
        }
        if (ib == 0xff) {
            if (!top || !(*top & INDEF) || f->tagged_ || (*top & IODD))
                return framer_fail(f, AEMP_EPROTO, "unexpected break at offset %zu", at);
            f->depth_--;
            p++;
            goto item_done;
        }
        int was_tagged = f->tagged_;
        f->tagged_ = 0;
        switch (major) {
        case 0:
        case 1:
            if (indef) goto bad_indef;
            p += hl;
            goto item_done;
        case 2:
        case 3:
            if (indef) {
                f->istr_ = (uint8_t)major;
                p += hl;
                continue;
            }
            if (arg > f->max_len_ - at - (size_t)hl) goto too_long;
            if (arg > (uint64_t)(e - p) - (uint64_t)hl) {
                f->tagged_ = (uint8_t)was_tagged; /* the head is read again */
                goto need;
            }
            p += hl + (size_t)arg;
            goto item_done;
        case 4:
        case 5: {
            uint64_t left;
            if (indef) {
                left = INDEF | (major == 5 ? IMAP : 0);
            } else {
                if (arg > f->max_len_) goto too_long; /* each item takes a byte */
                if (arg == 0) {
                    if (f->depth_ >= f->max_depth_)
                        return framer_fail(f, AEMP_ELIMIT, "nesting deeper than %u at offset %zu",
                                           (unsigned)f->max_depth_, at);
                    p += hl;
                    goto item_done;
                }
                left = major == 5 ? arg * 2 : arg;
            }
            int rc = framer_push(f, left, at);
            if (rc) return rc;
            p += hl;
            continue;
        }
        case 6:
            if (indef) goto bad_indef;
            f->tagged_ = 1;
            p += hl;
            continue;
        default:
            if (!simple_ok(ib & 31))
                return framer_fail(f, AEMP_EPROTO, "unsupported simple value 0x%02x at offset %zu",
                                   ib, at);
            p += hl;
            goto item_done;
        }
    item_done:
        /* an item is complete: count it in the open containers */
        for (;;) {
            if (!f->depth_) {
                size_t n = (size_t)(p - b);
                if (n > f->max_len_) goto too_long;
                f->scanned_ = 0;
                if (f->heap_) aemp_cbor_framer_free(f);
                *start = 0;
                *end = n;
                return 1;
            }
            uint64_t *t = &levels(f)[f->depth_ - 1];
            if (*t & INDEF) {
                if (*t & IMAP) *t ^= IODD;
                break;
            }
            if (--*t) break;
            f->depth_--;
        }
        continue;
    bad_indef:
        return framer_fail(f, AEMP_EPROTO,
                           "indefinite length not allowed for major type %u at offset %zu", major, at);
    too_long:
        return framer_fail(f, AEMP_ELIMIT, "CBOR item longer than %zu bytes", f->max_len_);
    need:
        break;
    }
    f->scanned_ = (size_t)(p - b);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Decoder */

typedef struct dframe {
    json_t *c;
    uint64_t left;   /* items (arrays) or pairs (maps) still due */
    size_t koff;     /* a map's pending key: arena offset... */
    size_t klen;     /* ...and length */
    uint8_t indef, map, odd; /* odd: a key is pending */
} dframe_t;

typedef struct dec {
    const unsigned char *beg, *end;
    int code;        /* the failure: 1 need more, or an AEMP_ code */
    char *err;
    size_t errlen;
    size_t nvals, max_values;
    unsigned max_depth;
    aemp__buf_t arena; /* converted strings, pending keys */
} dec_t;

#define NEED_MORE 1

__attribute__((format(printf, 3, 4)))
static void dec_fail(dec_t *d, int code, const char *fmt, ...)
{
    d->code = code;
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

static void need_more(dec_t *d)
{
    dec_fail(d, NEED_MORE, "unexpected end of CBOR data at offset %zu", off(d, d->end));
}

static void nomem(dec_t *d)
{
    dec_fail(d, AEMP_ENOMEM, "out of memory");
}

/* Appends the UTF-8 of the Latin-1 bytes s[0..n) to the arena. */
static int latin1_to_utf8(dec_t *d, const unsigned char *s, size_t n)
{
    if (!n) return 0;
    if (aemp__buf_reserve(&d->arena, 2 * n)) return -1;
    char *w = d->arena.data + d->arena.len;
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c < 0x80) {
            *w++ = (char)c;
        } else {
            *w++ = (char)(0xC0 | c >> 6);
            *w++ = (char)(0x80 | (c & 0x3F));
        }
    }
    d->arena.len = (size_t)(w - d->arena.data);
    return 0;
}

/* A string scanned: its UTF-8 bytes are in the input at s, or in the
 * arena from aoff (s NULL). */
typedef struct sref {
    const char *s;
    size_t aoff, n;
} sref_t;

static const char *sref_bytes(const dec_t *d, const sref_t *r)
{
    if (!r->n) return ""; /* an empty indefinite string: no arena yet */
    return r->s ? r->s : d->arena.data + r->aoff;
}

/* Reads the string item (major 2 or 3, head of hl bytes, argument arg) at
 * *pp into out and moves *pp past it. Byte strings become the UTF-8 of
 * their bytes taken as code points; text strings must be strict UTF-8.
 * Returns 0, or -1 with the failure set. */
static int read_string(dec_t *d, const unsigned char **pp, unsigned major, int hl, uint64_t arg,
                       int indef, sref_t *out)
{
    const unsigned char *p = *pp, *e = d->end, *at = p;
    out->s = NULL;
    out->aoff = d->arena.len;
    if (!indef) {
        if (arg > (uint64_t)(e - p) - (uint64_t)hl) {
            need_more(d);
            return -1;
        }
        const unsigned char *s = p + hl;
        size_t n = (size_t)arg;
        *pp = s + n;
        if (aemp__all_ascii(s, n)) {
            out->s = (const char *)s;
            out->n = n;
            return 0;
        }
        if (major == 3) {
            if (!aemp__utf8_valid(s, n)) goto bad_utf8;
            out->s = (const char *)s;
            out->n = n;
            return 0;
        }
        if (latin1_to_utf8(d, s, n)) goto oom;
        out->n = d->arena.len - out->aoff;
        return 0;
    }
    /* definite chunks up to a break. CBOR::XS takes the head of any lower
     * major type as a chunk of its argument's length (00 is an empty
     * chunk, a byte string's bytes go into a text string as they are),
     * and so must we: a 2.x node accepts such an item */
    p += hl;
    for (;;) {
        if (p >= e) {
            need_more(d);
            return -1;
        }
        if (*p == 0xff) {
            p++;
            break;
        }
        uint64_t n;
        int ci, chl = head(p, e, &n, &ci);
        if (chl == 0) {
            need_more(d);
            return -1;
        }
        if (chl < 0 || (unsigned)(*p >> 5) > major || ci) {
            dec_fail(d, AEMP_EPROTO, "invalid chunk 0x%02x in an indefinite string at offset %zu",
                     *p, off(d, p));
            return -1;
        }
        if (n > (uint64_t)(e - p) - (uint64_t)chl) {
            need_more(d);
            return -1;
        }
        int rc = major == 2 ? latin1_to_utf8(d, p + chl, (size_t)n)
                            : aemp__buf_append(&d->arena, p + chl, (size_t)n);
        if (rc) goto oom;
        p += chl + (size_t)n;
    }
    *pp = p;
    out->n = d->arena.len - out->aoff;
    if (major == 3 && out->n && !aemp__utf8_valid(d->arena.data + out->aoff, out->n))
        goto bad_utf8;
    return 0;
bad_utf8:
    dec_fail(d, AEMP_EBADMSG, "invalid UTF-8 in the text string at offset %zu (cannot be carried)",
             off(d, at));
    return -1;
oom:
    nomem(d);
    return -1;
}

/* Decimal text of v, with a minus sign when neg, ending at end. */
static char *u64_text(char *end, uint64_t v, int neg)
{
    *--end = 0;
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg) *--end = '-';
    return end;
}

/* The text of -1 - n for n >= INT64_MAX (beyond what json_int_t holds:
 * -9223372036854775808 down to -18446744073709551616), made as json.c
 * makes the same literal: a string of its digits, as Perl does. */
static char *negint_text(char buf[32], uint64_t n)
{
    if (n != UINT64_MAX) return u64_text(buf + 32, n + 1, 1);
    memcpy(buf, "-18446744073709551616", 22);
    return buf;
}

/* The value of integer (major 0 or 1) argument arg. */
static json_t *make_int(unsigned major, uint64_t arg)
{
    if (major == 0) return aemp_json_uint64(arg);
    if (arg < (uint64_t)INT64_MAX) return json_integer(-(json_int_t)arg - 1);
    char buf[32];
    return json_string(negint_text(buf, arg));
}

/* A half float (IEEE 754 binary16) as a double. */
static double half_value(unsigned h)
{
    unsigned ex = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (ex == 0)
        v = ldexp((double)m, -24);
    else if (ex != 31)
        v = ldexp((double)(m + 1024), (int)ex - 25);
    else
        v = m ? NAN : INFINITY;
    return h & 0x8000 ? -v : v;
}

static double float_value(unsigned ai, uint64_t arg)
{
    if (ai == 25) return half_value((unsigned)arg);
    if (ai == 26) {
        uint32_t u = (uint32_t)arg;
        float x;
        memcpy(&x, &u, 4);
        return x;
    }
    double x;
    memcpy(&x, &arg, 8);
    return x;
}

/* A float as a value: infinities become the raw numbers 1e400 and
 * -1e400 (the JSON text Perl reads as infinity, and json.c's value for
 * it); NaN cannot be carried. NULL with the failure set. */
static json_t *make_real(dec_t *d, double x, const unsigned char *at)
{
    json_t *v;
    if (isnan(x)) {
        dec_fail(d, AEMP_EBADMSG, "NaN at offset %zu (cannot be carried)", off(d, at));
        return NULL;
    }
    if (isinf(x)) {
        static const char text[2][8] = {"\xff" "1e400", "\xff" "-1e400"};
        v = json_stringn_nocheck(text[x < 0], x < 0 ? 7 : 6);
    } else {
        v = json_real(x);
    }
    if (!v) nomem(d);
    return v;
}

static const char *tag_name(uint64_t tag)
{
    switch (tag) {
    case 0: return " (date/time string)";
    case 1: return " (epoch time)";
    case 2: return " (bignum)";
    case 3: return " (negative bignum)";
    case 25: return " (string reference)";
    case 26: return " (Perl object)";
    case 27: return " (generic object)";
    case 29: return " (shared reference)";
    case 256: return " (string reference namespace)";
    default: return "";
    }
}

/* Tag 22098 (CBOR::XS's indirection: a Perl reference) around the item at
 * p: a reference to 1 or 0 is what JSON::XS writes as true or false; any
 * other cannot be carried. Returns the value and moves *pp past the
 * item, or NULL with the failure set. */
static json_t *indirection(dec_t *d, const unsigned char **pp, const unsigned char *at)
{
    const unsigned char *p = *pp, *e = d->end;
    if (p >= e) {
        need_more(d);
        return NULL;
    }
    uint64_t arg;
    int indef, hl = head(p, e, &arg, &indef);
    if (hl == 0) {
        need_more(d);
        return NULL;
    }
    unsigned major = *p >> 5;
    int bit = -1;
    if (hl > 0 && !indef && major == 0 && arg <= 1) {
        bit = (int)arg;
        p += hl;
    } else if (hl > 0 && !indef && (major == 2 || major == 3) && arg == 1) {
        if (e - p < hl + 1) {
            need_more(d);
            return NULL;
        }
        if (p[hl] == '0' || p[hl] == '1') bit = p[hl] - '0';
        p += hl + 1;
    }
    if (bit < 0) {
        dec_fail(d, AEMP_EBADMSG,
                 "reference to a value other than 0 or 1 (tag 22098) at offset %zu "
                 "(cannot be carried)", off(d, at));
        return NULL;
    }
    *pp = p;
    return bit ? json_true() : json_false();
}

/* Reads a map key at *pp: a string, or an integer as its decimal text (as
 * Perl makes it). The key's bytes are left in the arena from *koff. */
static int read_key(dec_t *d, const unsigned char **pp, size_t *koff, size_t *klen)
{
    const unsigned char *p = *pp, *e = d->end;
    uint64_t arg;
    int indef, hl = head(p, e, &arg, &indef);
    unsigned major = *p >> 5;
    if (hl == 0) {
        need_more(d);
        return -1;
    }
    if (hl < 0) {
        dec_fail(d, AEMP_EPROTO, "reserved additional information %u at offset %zu", *p & 31u,
                 off(d, p));
        return -1;
    }
    *koff = d->arena.len;
    if (major == 2 || major == 3) {
        sref_t r;
        if (read_string(d, pp, major, hl, arg, indef, &r)) return -1;
        if (r.s && aemp__buf_append(&d->arena, r.s, r.n)) goto oom;
        *klen = d->arena.len - *koff;
        return 0;
    }
    if ((major == 0 || major == 1) && !indef) {
        char buf[32];
        const char *t = major == 0 ? u64_text(buf + 32, arg, 0) : negint_text(buf, arg);
        if (aemp__buf_append(&d->arena, t, strlen(t))) goto oom;
        *klen = d->arena.len - *koff;
        *pp = p + hl;
        return 0;
    }
    dec_fail(d, AEMP_EBADMSG, "map key of major type %u at offset %zu (cannot be carried)", major,
             off(d, p));
    return -1;
oom:
    nomem(d);
    return -1;
}

/* Decodes the item at p (up to d->end) and stores where it ends in
 * *endp. With outer, the decode starts inside that array (counted as the
 * first level, owned here) with `left` elements still due (indef: up to
 * a break). Returns a new reference, or NULL with d->code set. Does not
 * recurse: the stack is its own, bounded by max_depth. */
static json_t *decode_from(dec_t *d, const unsigned char *p, json_t *outer, uint64_t left,
                           int indef_outer, const unsigned char **endp)
{
    dframe_t inline_stack[32], *st = inline_stack;
    size_t cap = sizeof inline_stack / sizeof inline_stack[0], depth = 0;
    const unsigned char *e = d->end;
    json_t *v = NULL;
    int tagged = 0;

    if (outer) {
        st[0] = (dframe_t){outer, left, 0, 0, (uint8_t)indef_outer, 0, 0};
        depth = 1;
        if (!indef_outer && left == 0) {
            v = outer;
            depth = 0;
            goto done;
        }
    }
value:
    if (p >= e) {
        need_more(d);
        goto fail;
    }
    {
        const unsigned char *at = p;
        unsigned ib = *p, major = ib >> 5;
        dframe_t *top = depth ? &st[depth - 1] : NULL;
        if (ib == 0xff) {
            if (!top || !top->indef || tagged || top->odd) {
                dec_fail(d, AEMP_EPROTO, "unexpected break at offset %zu", off(d, p));
                goto fail;
            }
            p++;
            v = top->c;
            depth--;
            goto have;
        }
        if (top && top->map && !top->odd) {
            if (read_key(d, &p, &top->koff, &top->klen)) goto fail;
            top->odd = 1;
            goto value;
        }
        uint64_t arg;
        int indef, hl = head(p, e, &arg, &indef);
        if (hl == 0) {
            need_more(d);
            goto fail;
        }
        if (hl < 0) {
            dec_fail(d, AEMP_EPROTO, "reserved additional information %u at offset %zu", ib & 31,
                     off(d, p));
            goto fail;
        }
        if (indef && (major == 0 || major == 1 || major == 6)) {
            dec_fail(d, AEMP_EPROTO,
                     "indefinite length not allowed for major type %u at offset %zu", major,
                     off(d, p));
            goto fail;
        }
        tagged = 0;
        if (++d->nvals > d->max_values) {
            dec_fail(d, AEMP_ELIMIT, "CBOR item has more than %zu values (at offset %zu)",
                     d->max_values, off(d, p));
            goto fail;
        }
        switch (major) {
        case 0:
        case 1:
            p += hl;
            v = make_int(major, arg);
            if (!v) goto oom;
            goto have;
        case 2:
        case 3: {
            sref_t r;
            if (read_string(d, &p, major, hl, arg, indef, &r)) goto fail;
            v = json_stringn_nocheck(sref_bytes(d, &r), r.n);
            d->arena.len = r.aoff;
            if (!v) goto oom;
            goto have;
        }
        case 4:
        case 5: {
            if (depth >= d->max_depth) {
                dec_fail(d, AEMP_ELIMIT, "nesting deeper than %u at offset %zu", d->max_depth,
                         off(d, p));
                goto fail;
            }
            p += hl;
            json_t *c = major == 5 ? json_object() : json_array();
            if (!c) goto oom;
            if (!indef && arg == 0) {
                v = c;
                goto have;
            }
            if (depth == cap) {
                size_t ncap = cap * 2;
                dframe_t *ns = malloc(ncap * sizeof *ns);
                if (!ns) {
                    json_decref(c);
                    goto oom;
                }
                memcpy(ns, st, depth * sizeof *st);
                if (st != inline_stack) free(st);
                st = ns;
                cap = ncap;
            }
            st[depth++] = (dframe_t){c, arg, 0, 0, (uint8_t)indef, major == 5, 0};
            goto value;
        }
        case 6:
            p += hl;
            d->nvals--; /* the tagged item counts, not the tag */
            if (arg == TAG_SELF_DESCRIBE || arg == TAG_SHAREABLE) {
                tagged = 1;
                goto value;
            }
            if (arg == TAG_INDIRECTION) {
                if (!(v = indirection(d, &p, at))) goto fail;
                goto have;
            }
            dec_fail(d, AEMP_EBADMSG, "CBOR tag %llu%s at offset %zu (cannot be carried)",
                     (unsigned long long)arg, tag_name(arg), off(d, at));
            goto fail;
        default:
            p += hl;
            switch (ib & 31) {
            case 20: v = json_false(); goto have;
            case 21: v = json_true(); goto have;
            case 22: v = json_null(); goto have;
            case 23:
                dec_fail(d, AEMP_EBADMSG, "undefined at offset %zu (cannot be carried)",
                         off(d, at));
                goto fail;
            case 25:
            case 26:
            case 27:
                if (!(v = make_real(d, float_value(ib & 31, arg), at))) goto fail;
                goto have;
            default:
                dec_fail(d, AEMP_EPROTO, "unsupported simple value 0x%02x at offset %zu", ib,
                         off(d, at));
                goto fail;
            }
        }
    }

have:
    /* v is complete: hand it to the open container */
    while (depth) {
        dframe_t *top = &st[depth - 1];
        int rc;
        if (top->map) {
            const char *k = top->klen ? d->arena.data + top->koff : "";
            rc = json_object_setn_new_nocheck(top->c, k, top->klen, v);
            d->arena.len = top->koff;
            top->odd = 0;
        } else {
            rc = json_array_append_new(top->c, v);
        }
        v = NULL;
        if (rc) goto oom;
        if (top->indef || --top->left) goto value;
        v = top->c;
        depth--;
    }
done:
    *endp = p;
    if (st != inline_stack) free(st);
    return v;
oom:
    nomem(d);
fail:
    json_decref(v);
    while (depth) json_decref(st[--depth].c);
    if (st != inline_stack) free(st);
    return NULL;
}

static unsigned depth_limit(unsigned max_depth)
{
    if (!max_depth) return AEMP_JSON_MAX_DEPTH;
    return max_depth < AEMP_CBOR_DEPTH_LIMIT ? max_depth : AEMP_CBOR_DEPTH_LIMIT;
}

static size_t values_limit(size_t max_values)
{
    if (!max_values) return AEMP_CBOR_MAX_VALUES;
    return max_values < AEMP_CBOR_VALUES_LIMIT ? max_values : AEMP_CBOR_VALUES_LIMIT;
}

/* Whether buf[0..len) is exactly one well-formed item (as the framer sees
 * it); on failure its code and message replace the decoder's. */
static int well_formed(dec_t *d, unsigned max_depth)
{
    aemp_cbor_framer_t f;
    size_t s, e, len = (size_t)(d->end - d->beg);
    aemp_cbor_framer_init(&f, SIZE_MAX, max_depth);
    int r = aemp_cbor_framer_next(&f, d->beg, len, &s, &e);
    aemp_cbor_framer_free(&f);
    if (r == 1 && e == len) return 1;
    if (r == 1)
        dec_fail(d, AEMP_EPROTO, "garbage after the CBOR item at offset %zu", e);
    else if (r == 0)
        dec_fail(d, AEMP_EPROTO, "unexpected end of CBOR data at offset %zu", len);
    else
        dec_fail(d, r == AEMP_ELIMIT ? AEMP_ELIMIT : AEMP_EPROTO, "%s", aemp_cbor_framer_error(&f));
    return 0;
}

json_t *aemp_cbor_decode_max(const void *buf, size_t len, unsigned max_depth, size_t max_values,
                             int *err, char *errbuf, size_t errlen)
{
    dec_t D = {0};
    D.err = errbuf;
    D.errlen = errlen;
    D.max_values = values_limit(max_values);
    D.max_depth = depth_limit(max_depth);
    if (errbuf && errlen) errbuf[0] = 0;
    if (err) *err = 0;
    if (!buf && len) {
        dec_fail(&D, AEMP_EINVAL, "invalid argument");
        if (err) *err = AEMP_EINVAL;
        return NULL;
    }
    D.beg = buf ? buf : (const unsigned char *)"";
    D.end = D.beg + len;
    const unsigned char *end = NULL;
    json_t *v = decode_from(&D, D.beg, NULL, 0, 0, &end);
    if (v && end != D.end) {
        json_decref(v);
        v = NULL;
        dec_fail(&D, AEMP_EPROTO, "garbage after the CBOR item at offset %zu", off(&D, end));
    }
    if (!v) {
        if (D.code == NEED_MORE) D.code = AEMP_EPROTO;
        /* a value that cannot be carried, or one value too many, is only
         * the message's fault when the stream around it is whole */
        else if (D.code == AEMP_EBADMSG || D.code == AEMP_ELIMIT) well_formed(&D, D.max_depth);
        if (err) *err = D.code;
    }
    aemp__buf_free(&D.arena);
    return v;
}

json_t *aemp_cbor_decode(const void *buf, size_t len, unsigned max_depth, int *err, char *errbuf,
                         size_t errlen)
{
    return aemp_cbor_decode_max(buf, len, max_depth, 0, err, errbuf, errlen);
}

/* The leading elements of a message that are integers of 64 bits and
 * definite ASCII strings (what most messages hold), decoded straight
 * into a (a recycled message's elements refilled in place) from *pp, at
 * most `left`; returns how many, with *pp after them, or -1 when memory
 * ran out. The rest is the general decoder's. */
static long flat_elems(const unsigned char **pp, const unsigned char *e, uint64_t left, json_t *a)
{
    const unsigned char *p = *pp;
    size_t have = json_array_size(a), i = 0;
    while (i < left && p < e) {
        unsigned major = *p >> 5;
        uint64_t arg;
        int ind, hl = major <= 3 ? head(p, e, &arg, &ind) : 0;
        if (hl <= 0 || ind) break;
        if (major <= 1) {
            if (major == 0 ? arg > (uint64_t)INT64_MAX : arg >= (uint64_t)INT64_MAX) break;
            json_int_t x = major == 0 ? (json_int_t)arg : -(json_int_t)arg - 1;
            if (aemp__recycle_set_integer(a, i, have, x)) return -1;
            p += hl;
        } else {
            if (arg > (uint64_t)(e - p) - (uint64_t)hl || !aemp__all_ascii(p + hl, (size_t)arg)) break;
            if (aemp__recycle_set_string(a, i, have, (const char *)p + hl, (size_t)arg))
                return -1;
            p += hl + (size_t)arg;
        }
        i++;
    }
    *pp = p;
    return (long)i;
}

json_t *aemp__cbor_decode_msg(const char *buf, size_t len, unsigned max_depth, const char **id,
                              size_t *idlen, size_t *used, size_t max_values,
                              aemp__recycle_t *rc)
{
    const unsigned char *b = (const unsigned char *)buf, *e = b + len, *p = b;
    if (!buf || len < 2) return NULL;
    uint64_t n, sl;
    int indef, sind;
    int hl = head(p, e, &n, &indef);
    if (hl <= 0 || (*p >> 5) != 4 || (!indef && n == 0)) return NULL;
    p += hl;
    /* the target id: a definite string of ASCII (every id a node makes) */
    if (p >= e || ((*p >> 5) != 2 && (*p >> 5) != 3)) return NULL;
    int shl = head(p, e, &sl, &sind);
    if (shl <= 0 || sind || sl > (uint64_t)(e - p) - (uint64_t)shl) return NULL;
    if (!aemp__all_ascii(p + shl, (size_t)sl)) return NULL;
    *id = (const char *)p + shl;
    *idlen = (size_t)sl;
    p += shl + (size_t)sl;
    json_t *elems = rc && rc->array ? rc->array : json_array();
    if (rc) rc->array = NULL;
    if (!elems) return NULL;
    uint64_t left = indef ? 0 : n - 1;
    long flat = indef ? 0 : flat_elems(&p, e, left, elems);
    aemp__recycle_truncate(rc, elems, flat < 0 ? 0 : (size_t)flat);
    dec_t D = {0};
    D.beg = b;
    D.end = e;
    D.max_values = values_limit(max_values);
    /* the message array and its id count as in a full decode */
    D.nvals = 2 + (flat < 0 ? 0 : (size_t)flat);
    D.max_depth = depth_limit(max_depth);
    if (flat < 0 || D.nvals > D.max_values) {
        json_decref(elems);
        return NULL;
    }
    const unsigned char *end = NULL;
    json_t *v = decode_from(&D, p, elems, left - (uint64_t)flat, indef, &end);
    aemp__buf_free(&D.arena);
    if (!v) return NULL;
    if (used) {
        *used = (size_t)(end - b);
    } else if (end != e) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* ------------------------------------------------------------------ */
/* Encoder */

static inline int need(aemp__buf_t *b, size_t n)
{
    return b->cap - b->len >= n ? 0 : aemp__buf_reserve(b, n);
}

static int emit_bytes(aemp__buf_t *b, unsigned major, const void *s, size_t n)
{
    if (need(b, n + 9)) return AEMP_ENOMEM;
    char *w = aemp__cbor_head_at(b->data + b->len, major, n);
    memcpy(w, s, n);
    b->len = (size_t)(w + n - b->data);
    return 0;
}

/* A string value as a 2.x node writes what JSON::XS gave it: ASCII as a
 * byte string (JSON::XS leaves it without the UTF-8 flag), anything else
 * as a text string. */
static int emit_string(aemp__buf_t *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (aemp__all_ascii(u, n)) return emit_bytes(b, 2, s, n);
    if (!aemp__utf8_valid(u, n)) return AEMP_EINVAL;
    return emit_bytes(b, 3, s, n);
}

/* A hash key: Perl keeps a key whose characters are all below U+0100 as
 * Latin-1 bytes, and CBOR::XS writes it as a byte string of them; other
 * keys as text strings. */
static int emit_key(aemp__buf_t *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (aemp__all_ascii(u, n)) return emit_bytes(b, 2, s, n);
    if (!aemp__utf8_valid(u, n)) return AEMP_EINVAL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (u[i] >= 0xC4) return emit_bytes(b, 3, s, n);
        k += (u[i] & 0xC0) != 0x80;
    }
    /* code points below U+0100 only: one byte each */
    if (need(b, k + 9)) return AEMP_ENOMEM;
    char *w = aemp__cbor_head_at(b->data + b->len, 2, k);
    for (size_t i = 0; i < n; i++) {
        if (u[i] < 0x80) *w++ = (char)u[i];
        else if (u[i] >= 0xC0) *w++ = (char)((u[i] & 0x03) << 6 | (u[i + 1] & 0x3F));
    }
    b->len = (size_t)(w - b->data);
    return 0;
}

/* A Perl number (NV) as CBOR::XS writes it: integral and within 32 bits
 * unsigned as an integer (-0.0 too), else as a single float when that
 * holds it exactly (infinities too), else as a double. No half floats. */
static int emit_real(aemp__buf_t *b, double x)
{
    if (x >= 0 && x <= 4294967295.0 && x == (double)(uint32_t)x)
        return aemp__cbor_put_head(b, 0, (uint32_t)x);
    if (need(b, 9)) return AEMP_ENOMEM;
    unsigned char *w = (unsigned char *)b->data + b->len;
    if (isinf(x) || (fabs(x) <= FLT_MAX && (double)(float)x == x)) {
        float f = (float)x;
        uint32_t u;
        memcpy(&u, &f, 4);
        w[0] = 0xfa;
        for (int i = 0; i < 4; i++) w[1 + i] = (unsigned char)(u >> (24 - 8 * i));
        b->len += 5;
    } else {
        uint64_t u;
        memcpy(&u, &x, 8);
        w[0] = 0xfb;
        for (int i = 0; i < 8; i++) w[1 + i] = (unsigned char)(u >> (56 - 8 * i));
        b->len += 9;
    }
    return 0;
}

/* A raw number (json.c): what Perl makes of its text, as JSON::XS reads
 * it, written as CBOR::XS writes that. */
static int emit_raw(aemp__buf_t *b, const char *text, size_t n)
{
    if (!aemp__raw_text_ok(text, n)) return AEMP_EINVAL;
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && i < 20 && text[i] >= '0' && text[i] <= '9'; i++) {
        uint64_t dg = (uint64_t)(text[i] - '0');
        if (v > (UINT64_MAX - dg) / 10) break;
        v = v * 10 + dg;
    }
    if (i == n && (text[0] != '0' || n == 1)) return aemp__cbor_put_head(b, 0, v);
    json_t *x = aemp_json_decode(text, n, 1, NULL, 0);
    int rc;
    const char *t;
    if (!x)
        rc = AEMP_EINVAL;
    else if (aemp_json_is_raw_number(x, &t))
        /* still beyond a double: an infinity to Perl */
        rc = emit_real(b, t[0] == '-' ? -INFINITY : INFINITY);
    else if (json_is_integer(x))
        rc = aemp__cbor_put_integer(b, json_integer_value(x));
    else if (json_is_real(x))
        rc = emit_real(b, json_real_value(x));
    else
        rc = emit_string(b, json_string_value(x), json_string_length(x));
    json_decref(x);
    return rc;
}

typedef struct eframe {
    const json_t *c;
    size_t i, n;
    void *it;
} eframe_t;

static int emit_scalar(aemp__buf_t *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (n && (unsigned char)s[0] == 0xFF) return emit_raw(b, s + 1, n - 1);
        return aemp__cbor_put_string(b, s, n);
    }
    case JSON_INTEGER:
        return aemp__cbor_put_integer(b, json_integer_value(v));
    case JSON_REAL:
        return emit_real(b, json_real_value(v));
    case JSON_TRUE:
        return aemp__cbor_put_head(b, 7, 21);
    case JSON_FALSE:
        return aemp__cbor_put_head(b, 7, 20);
    case JSON_NULL:
        return aemp__cbor_put_head(b, 7, 22);
    default:
        return AEMP_EINVAL;
    }
}

/* Appends v, nesting at most max_depth containers deep. */
static int encode_value(aemp__buf_t *b, const json_t *v, size_t max_depth)
{
    size_t mark = b->len - b->off;
    eframe_t inline_stack[32], *st = inline_stack;
    size_t cap = sizeof inline_stack / sizeof inline_stack[0], depth = 0;
    int rc = 0;

    if (!v) return AEMP_EINVAL;
    for (;;) {
        if (json_is_array(v) || json_is_object(v)) {
            int is_obj = json_is_object(v);
            size_t n = is_obj ? json_object_size(v) : json_array_size(v);
            if (depth == max_depth) {
                rc = AEMP_EINVAL;
                goto fail;
            }
            if ((rc = aemp__cbor_put_head(b, is_obj ? 5 : 4, n))) goto fail;
            if (n) {
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
                *f = (eframe_t){v, 0, n, NULL};
                if (is_obj) {
                    f->it = json_object_iter((json_t *)v);
                    if ((rc = emit_key(b, json_object_iter_key(f->it),
                                       json_object_iter_key_len(f->it))))
                        goto fail;
                    v = json_object_iter_value(f->it);
                } else {
                    v = json_array_get(v, 0);
                }
                continue;
            }
        } else if ((rc = emit_scalar(b, v))) {
            goto fail;
        }
        /* v is written: move to the next element of the open containers */
        for (;;) {
            if (depth == 0) goto done;
            eframe_t *f = &st[depth - 1];
            if (++f->i < f->n) {
                if (f->it) {
                    /* a container that shrank while written is a program
                     * bug: the count already went out */
                    f->it = json_object_iter_next((json_t *)f->c, f->it);
                    if (!f->it) {
                        rc = AEMP_EINVAL;
                        goto fail;
                    }
                    if ((rc = emit_key(b, json_object_iter_key(f->it),
                                       json_object_iter_key_len(f->it))))
                        goto fail;
                    v = json_object_iter_value(f->it);
                } else {
                    v = json_array_get(f->c, f->i);
                }
                break;
            }
            depth--;
        }
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

int aemp__cbor_encode_buf(aemp__buf_t *b, const json_t *v)
{
    return encode_value(b, v, AEMP_JSON_MAX_ENCODE_DEPTH);
}

int aemp__cbor_put_text(aemp__buf_t *b, const char *s, size_t n)
{
    return emit_string(b, s, n);
}

int aemp__cbor_put_real(aemp__buf_t *b, double x)
{
    return isfinite(x) ? emit_real(b, x) : AEMP_EINVAL;
}

int aemp__cbor_put_value(aemp__buf_t *b, const json_t *v, size_t max_depth)
{
    return json_is_array(v) || json_is_object(v) ? encode_value(b, v, max_depth) : emit_scalar(b, v);
}

int aemp__cbor_encode_msg(aemp__buf_t *b, const char *id, size_t idlen, const json_t *elements)
{
    size_t mark = b->len - b->off, n = json_array_size(elements);
    if (!id || !json_is_array(elements)) return AEMP_EINVAL;
    int rc = aemp__cbor_put_head(b, 4, (uint64_t)n + 1);
    if (!rc) rc = aemp__cbor_put_id(b, id, idlen);
    for (size_t i = 0; !rc && i < n; i++) {
        const json_t *x = json_array_get(elements, i);
        /* strings and integers, most of what messages hold, first */
        switch (x ? json_typeof(x) : JSON_NULL) {
        case JSON_INTEGER:
            rc = aemp__cbor_put_integer(b, json_integer_value(x));
            break;
        case JSON_ARRAY:
        case JSON_OBJECT:
            rc = encode_value(b, x, AEMP_JSON_MAX_ENCODE_DEPTH - 1);
            break;
        default:
            rc = x ? emit_scalar(b, x) : AEMP_EINVAL;
            break;
        }
    }
    if (rc) b->len = b->off + mark;
    return rc;
}

void *aemp_cbor_encode(const json_t *v, size_t *len)
{
    aemp__buf_t b = {0};
    if (aemp__cbor_encode_buf(&b, v)) {
        aemp__buf_free(&b);
        return NULL;
    }
    if (len) *len = b.len;
    return b.data; /* every value writes at least a byte */
}
