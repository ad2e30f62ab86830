/*
 * storable.c - the Storable codec of the storable framing: reads Perl
 * Storable network-order images (what Storable::nfreeze writes) into
 * jansson values, and writes jansson values as such images, mapping
 * values the way JSON::XS maps Perl data (see the storable block of
 * aemp.h for what is covered and what is refused). Pure code: no I/O, no
 * global state. The decoder recurses a few frames per level of nesting,
 * bounded by its max_depth.
 */
#include "aemp_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

/* Storable's type bytes (the SX_* constants of Storable.xs). */
enum {
    SX_OBJECT = 0,        /* back-reference to a value already seen */
    SX_LSCALAR = 1,       /* byte string, 4-byte length */
    SX_ARRAY = 2,
    SX_HASH = 3,
    SX_REF = 4,
    SX_UNDEF = 5,
    SX_INTEGER = 6,       /* native IV */
    SX_DOUBLE = 7,        /* native NV */
    SX_BYTE = 8,          /* integer -128..127, stored + 128 */
    SX_NETINT = 9,        /* 32-bit big-endian integer */
    SX_SCALAR = 10,       /* byte string, 1-byte length */
    SX_TIED_ARRAY = 11,
    SX_TIED_HASH = 12,
    SX_TIED_SCALAR = 13,
    SX_SV_UNDEF = 14,
    SX_SV_YES = 15,
    SX_SV_NO = 16,
    SX_BLESS = 17,
    SX_IX_BLESS = 18,
    SX_HOOK = 19,
    SX_OVERLOAD = 20,
    SX_TIED_KEY = 21,
    SX_TIED_IDX = 22,
    SX_UTF8STR = 23,
    SX_LUTF8STR = 24,
    SX_FLAG_HASH = 25,
    SX_CODE = 26,
    SX_WEAKREF = 27,
    SX_WEAKOVERLOAD = 28,
    SX_VSTRING = 29,
    SX_LVSTRING = 30,
    SX_SVUNDEF_ELEM = 31,
    SX_REGEXP = 32,
    SX_LOBJECT = 33,
    SX_BOOLEAN_TRUE = 34,
    SX_BOOLEAN_FALSE = 35,
    SX_LAST
};

/* Key flags of SX_FLAG_HASH entries. */
#define SHV_K_UTF8 0x01
#define SHV_K_WASUTF8 0x02
#define SHV_K_ISSV 0x08
#define SHV_K_PLACEHOLDER 0x10

/* The header nfreeze writes: format 2.11, network order. */
static const unsigned char nfreeze_header[2] = {0x05, 0x0b};

static const char bool_class[] = "JSON::PP::Boolean";

/* The names used in messages for the types we refuse. */
static const char *type_name(unsigned t)
{
    switch (t) {
    case SX_TIED_ARRAY: return "tied array";
    case SX_TIED_HASH: return "tied hash";
    case SX_TIED_SCALAR: return "tied scalar";
    case SX_HOOK: return "object with a STORABLE_freeze hook";
    case SX_TIED_KEY: return "tied hash element";
    case SX_TIED_IDX: return "tied array element";
    case SX_CODE: return "code reference";
    case SX_REGEXP: return "regexp";
    case SX_LOBJECT: return "object over 2 GiB";
    default: return "unknown";
    }
}

/* ------------------------------------------------------------------ */
/* Decoder */

enum { K_SCALAR, K_REF, K_CONTAINER };

/* What the value being read is to its parent. */
#define C_ELEM 0u  /* an array element or hash value */
#define C_REF 1u   /* the target of a reference (or the top value) */
#define C_BLESS 2u /* the object of a bless */
#define C_VSTR 4u  /* the string under v-string magic */

/* One value the image has stored, by tag (Storable numbers every value
 * in the order it is read; SX_OBJECT refers back by that number). The
 * decoder keeps one for every value of the image, so it is packed into
 * 16 bytes, and their number is bounded by max_values. */
typedef struct item {
    json_t *v;       /* owned reference: the value, for a reference the
                        value it stands for once resolved (NULL until then) */
    uint32_t weight; /* how much a copy of it counts (see MAX_EXPANSION);
                        saturates, as the limit is below UINT32_MAX */
    uint32_t meta;   /* cls << 3 | kind << 1 | done: cls is 1 + the index
                        of its class when blessed, else 0; done: complete,
                        a back-reference may copy it */
} item_t;

_Static_assert(sizeof(item_t) == 16 || sizeof(void *) != 8, "item_t is packed");

#define ITEM_KIND(it) (((it)->meta >> 1) & 3u)
#define ITEM_DONE(it) ((it)->meta & 1u)
#define ITEM_CLS(it) ((it)->meta >> 3)

/* The most values max_values may allow: class numbers must fit in the
 * 29 bits of item_t.meta. */
#define VALUES_CEILING ((size_t)AEMP_STORABLE_VALUES_LIMIT)

typedef struct sdec {
    const unsigned char *beg, *p, *end;
    char *err;
    size_t errlen;
    int code;
    item_t *items;
    size_t nitems, cap;
    struct cls { const unsigned char *name; size_t len; } *cls;
    size_t ncls, clscap;
    size_t extra, limit; /* weight added by back-references, its limit */
    size_t nvalues, max_values; /* values made (items, classes, copies) */
    unsigned max_depth;
} sdec_t;

__attribute__((format(printf, 3, 4)))
static int fail(sdec_t *d, int code, const char *fmt, ...)
{
    if (d->code) return d->code;
    d->code = code;
    if (d->err && d->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, d->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int nomem(sdec_t *d)
{
    return fail(d, AEMP_ENOMEM, "out of memory");
}

static size_t off(const sdec_t *d, const unsigned char *p)
{
    return (size_t)(p - d->beg);
}

static size_t left(const sdec_t *d)
{
    return (size_t)(d->end - d->p);
}

/* n more bytes must be there for what starts at offset at. */
static int need(sdec_t *d, size_t n, const char *what, size_t at)
{
    if (left(d) >= n) return 0;
    return fail(d, AEMP_EPROTO, "image ends inside %s at offset %zu", what, at);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A 4-byte length (Storable's I32: the high bit makes it negative). */
static int read_len32(sdec_t *d, const char *what, size_t at, size_t *out)
{
    if (need(d, 4, what, at)) return d->code;
    uint32_t n = be32(d->p);
    d->p += 4;
    if (n > INT32_MAX)
        return fail(d, AEMP_EPROTO, "negative length in %s at offset %zu", what, at);
    *out = n;
    return 0;
}

/* Counts n more values (of the value at offset at): fails, before
 * anything is made for them, past max_values. */
static int count_values(sdec_t *d, size_t n, size_t at)
{
    if (n <= d->max_values - d->nvalues) {
        d->nvalues += n;
        return 0;
    }
    return fail(d, AEMP_ELIMIT, "Storable image has more than %zu values (at offset %zu)",
                d->max_values, at);
}

/* Makes room for one more entry of size elem in *tab (cap entries, n
 * used): the capacity doubles, but never beyond ceiling, the most
 * entries the image can still need. */
static int grow(sdec_t *d, void **tab, size_t *cap, size_t n, size_t elem, size_t ceiling)
{
    if (n < *cap) return 0;
    size_t want = *cap ? *cap * 2 : 32;
    if (want > ceiling) want = ceiling;
    if (want <= n) want = n + 1; /* ceiling reached: counted, so never far */
    void *t = realloc(*tab, want * elem);
    if (!t) return nomem(d);
    *tab = t;
    *cap = want;
    return 0;
}

/* Appends an item; the table takes v's reference (NULL allowed). The
 * value was counted by count_values. Every later item takes at least a
 * byte of the image, so the table never holds more than max_values
 * items or than the image can still describe. */
static int add_item(sdec_t *d, int kind, json_t *v, size_t *tag)
{
    size_t ceiling = d->max_values;
    if (ceiling - d->nitems > left(d) + 1) ceiling = d->nitems + left(d) + 1;
    if (grow(d, (void **)&d->items, &d->cap, d->nitems, sizeof *d->items, ceiling)) {
        json_decref(v);
        return d->code;
    }
    item_t *it = &d->items[d->nitems];
    it->v = v;
    it->weight = 0;
    it->meta = (uint32_t)kind << 1 | (kind == K_SCALAR);
    *tag = d->nitems++;
    return 0;
}

static uint32_t sat32(size_t n)
{
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* How much of the image has been read, plus what back-references add. */
static size_t expanded(const sdec_t *d)
{
    return off(d, d->p) + d->extra;
}

/* A copy of a complete value (json_deep_copy would lose keys with a NUL
 * byte), each of its values counted against max_values. Depth is bounded
 * by the decoder's max_depth. NULL after fail() (or on ENOMEM). */
static json_t *copy_value(sdec_t *d, const json_t *v, size_t at)
{
    if (count_values(d, 1, at)) return NULL;
    switch (json_typeof(v)) {
    case JSON_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < json_array_size(v); i++)
            if (json_array_append_new(a, copy_value(d, json_array_get(v, i), at))) {
                json_decref(a);
                a = NULL;
            }
        return a;
    }
    case JSON_OBJECT: {
        json_t *o = json_object();
        for (void *it = json_object_iter((json_t *)v); o && it;
             it = json_object_iter_next((json_t *)v, it))
            if (json_object_setn_new_nocheck(o, json_object_iter_key(it),
                                             json_object_iter_key_len(it),
                                             copy_value(d, json_object_iter_value(it), at))) {
                json_decref(o);
                o = NULL;
            }
        return o;
    }
    case JSON_STRING:
        return json_stringn_nocheck(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return json_integer(json_integer_value(v));
    case JSON_REAL:
        return json_real(json_real_value(v));
    default:
        return json_incref((json_t *)v); /* true, false, null: singletons */
    }
}

/* The value of item tag for a parent: its own (incremented) when it was
 * read there, a copy when the parent got it through a back-reference. */
static json_t *take(sdec_t *d, size_t tag, int copied, size_t at)
{
    json_t *v = copied ? copy_value(d, d->items[tag].v, at) : json_incref(d->items[tag].v);
    if (!v) nomem(d);
    return v;
}

/* A json string of n bytes at p: Latin-1 bytes become UTF-8, UTF-8 must
 * be strict. NULL after fail(). */
static json_t *make_string(sdec_t *d, const unsigned char *p, size_t n, int utf8, size_t at)
{
    if (utf8) {
        if (!aemp__utf8_valid(p, n)) {
            fail(d, AEMP_EPROTO, "invalid UTF-8 in a UTF-8 string at offset %zu", at);
            return NULL;
        }
        json_t *v = json_stringn_nocheck((const char *)p, n);
        if (!v) nomem(d);
        return v;
    }
    size_t high = 0;
    for (size_t i = 0; i < n; i++) high += p[i] >> 7;
    if (!high) {
        json_t *v = json_stringn_nocheck((const char *)p, n);
        if (!v) nomem(d);
        return v;
    }
    char *u = malloc(n + high);
    if (!u) {
        nomem(d);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x80) {
            u[k++] = (char)p[i];
        } else {
            u[k++] = (char)(0xC0 | p[i] >> 6);
            u[k++] = (char)(0x80 | (p[i] & 0x3F));
        }
    }
    json_t *v = json_stringn_nocheck(u, k);
    free(u);
    if (!v) nomem(d);
    return v;
}

/* Perl's string form of a scalar is exactly "1" (1), "0" (0), or neither
 * (-1): what JSON::XS asks of a referenced scalar to write it as a
 * boolean. */
static int one_or_zero(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        return json_integer_value(v) == 1 ? 1 : json_integer_value(v) == 0 ? 0 : -1;
    case JSON_REAL:
        return json_real_value(v) == 1.0 ? 1
               : json_real_value(v) == 0.0 && !signbit(json_real_value(v)) ? 0 : -1;
    case JSON_STRING:
        if (json_string_length(v) != 1) return -1;
        return json_string_value(v)[0] == '1' ? 1 : json_string_value(v)[0] == '0' ? 0 : -1;
    case JSON_TRUE:
        return 1; /* PL_sv_yes is "1"; PL_sv_no is "", neither */
    default:
        return -1;
    }
}

/* Perl's truth of a scalar: false for undef, "", "0", 0 and false. */
static int perl_true(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0.0;
    case JSON_STRING:
        return !(json_string_length(v) == 0 ||
                 (json_string_length(v) == 1 && json_string_value(v)[0] == '0'));
    case JSON_TRUE: return 1;
    default: return 0;
    }
}

static int is_bool_class(const struct cls *c)
{
    static const char *const names[] = {"JSON::PP::Boolean", "Types::Serialiser::Boolean",
                                        "JSON::XS::Boolean"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (c->len == strlen(names[i]) && !memcmp(c->name, names[i], c->len)) return 1;
    return 0;
}

/* A class name made safe for a message: at most 40 bytes, printable
 * ASCII (others as '?'). */
static const char *class_text(const struct cls *c, char out[48])
{
    size_t n = c->len < 40 ? c->len : 40, k = 0;
    for (size_t i = 0; i < n; i++)
        out[k++] = c->name[i] >= 0x20 && c->name[i] < 0x7F ? (char)c->name[i] : '?';
    if (c->len > 40) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = 0;
    return out;
}

/* The JSON value a reference to item tag stands for (new reference), or
 * NULL after fail(). */
static json_t *resolve_ref(sdec_t *d, size_t tag, int copied, size_t at)
{
    const item_t *it = &d->items[tag];
    char cname[48];
    if (ITEM_KIND(it) == K_REF)
        return fail(d, AEMP_EBADMSG, "reference to a reference at offset %zu", at), NULL;
    if (ITEM_CLS(it) && !(ITEM_KIND(it) == K_SCALAR && is_bool_class(&d->cls[ITEM_CLS(it) - 1])))
        return fail(d, AEMP_EBADMSG, "reference to an object of class %s at offset %zu",
                    class_text(&d->cls[ITEM_CLS(it) - 1], cname), at),
               NULL;
    if (ITEM_KIND(it) == K_CONTAINER) return take(d, tag, copied, at);
    int b = ITEM_CLS(it) ? perl_true(it->v) : one_or_zero(it->v);
    if (b < 0)
        return fail(d, AEMP_EBADMSG, "reference to a scalar (not 0 or 1) at offset %zu", at),
               NULL;
    return json_boolean(b);
}

static int retrieve(sdec_t *d, unsigned ctx, unsigned depth, size_t *tag, int *copied);

/* An element or hash value: a scalar or a reference (new reference in
 * *out). */
static int element(sdec_t *d, unsigned depth, json_t **out)
{
    size_t at = off(d, d->p), tag;
    int copied;
    if (retrieve(d, C_ELEM, depth, &tag, &copied)) return d->code;
    if (ITEM_KIND(&d->items[tag]) == K_CONTAINER)
        return fail(d, AEMP_EPROTO,
                    "an array or hash stored as an element, not through a reference, at "
                    "offset %zu",
                    at);
    *out = take(d, tag, copied, at);
    return *out ? 0 : d->code;
}

static int read_array(sdec_t *d, size_t at, unsigned depth, size_t tag)
{
    size_t n;
    if (read_len32(d, "an array header", at, &n)) return d->code;
    if (n > left(d))
        return fail(d, AEMP_EPROTO,
                    "array of %zu elements at offset %zu cannot fit in the %zu bytes left", n,
                    at, left(d));
    json_t *a = d->items[tag].v;
    for (size_t i = 0; i < n; i++) {
        json_t *v;
        if (element(d, depth, &v)) return d->code;
        if (json_array_append_new(a, v)) return nomem(d);
    }
    return 0;
}

static int read_hash(sdec_t *d, size_t at, unsigned depth, size_t tag, int flagged)
{
    size_t n;
    if (flagged) {
        if (need(d, 1, "a hash header", at)) return d->code;
        d->p++; /* hash flags (restricted): nothing to keep */
    }
    if (read_len32(d, "a hash header", at, &n)) return d->code;
    size_t per = flagged ? 6 : 5; /* value, [flags,] key length */
    if (n > left(d) / per)
        return fail(d, AEMP_EPROTO,
                    "hash of %zu entries at offset %zu cannot fit in the %zu bytes left", n, at,
                    left(d));
    json_t *h = d->items[tag].v;
    for (size_t i = 0; i < n; i++) {
        json_t *v;
        if (element(d, depth, &v)) return d->code;
        size_t kat = off(d, d->p), klen;
        unsigned kflags = 0;
        if (flagged) {
            if (need(d, 1, "a hash key", kat)) goto bad;
            kflags = *d->p++;
            if (kflags & SHV_K_ISSV) {
                fail(d, AEMP_EBADMSG, "hash key stored as a scalar at offset %zu", kat);
                goto bad;
            }
        }
        if (read_len32(d, "a hash key", kat, &klen)) goto bad;
        if (klen > left(d)) {
            fail(d, AEMP_EPROTO,
                 "hash key of %zu bytes at offset %zu runs past the end of the image (%zu "
                 "bytes left)",
                 klen, kat, left(d));
            goto bad;
        }
        json_t *k = make_string(d, d->p, klen, (kflags & SHV_K_UTF8) != 0, kat);
        d->p += klen;
        if (!k) goto bad;
        int r = 0;
        if (!(kflags & SHV_K_PLACEHOLDER)) /* a restricted hash's deleted key */
            r = json_object_setn_new_nocheck(h, json_string_value(k), json_string_length(k), v);
        else
            json_decref(v);
        json_decref(k);
        if (r) return nomem(d);
        continue;
    bad:
        json_decref(v);
        return d->code;
    }
    return 0;
}

static int is_string_type(unsigned t)
{
    return t == SX_SCALAR || t == SX_LSCALAR || t == SX_UTF8STR || t == SX_LUTF8STR;
}

/* Reads one value at d->p: *tag is its item (for a back-reference the
 * item referred to, with *copied set). */
static int retrieve(sdec_t *d, unsigned ctx, unsigned depth, size_t *tag, int *copied)
{
    size_t at = off(d, d->p), at_exp = expanded(d);
    *copied = 0;
    if (need(d, 1, "a value", at)) return d->code;
    unsigned t = *d->p++;
    if ((ctx & C_VSTR) && !is_string_type(t))
        return fail(d, AEMP_EPROTO, "v-string magic on Storable type 0x%02x at offset %zu", t,
                    at);
    /* a value of its own (not a back-reference, nor the bless or magic
     * around one) is counted before anything is made for it */
    if (t != SX_OBJECT && t != SX_BLESS && t != SX_IX_BLESS && t != SX_VSTRING &&
        t != SX_LVSTRING && count_values(d, 1, at))
        return d->code;
    json_t *v = NULL;
    switch (t) {
    case SX_OBJECT: {
        if (need(d, 4, "a back-reference", at)) return d->code;
        uint32_t ref = be32(d->p);
        d->p += 4;
        if (ctx & C_BLESS)
            return fail(d, AEMP_EPROTO, "back-reference blessed at offset %zu", at);
        if (ref >= d->nitems)
            return fail(d, AEMP_EPROTO,
                        "back-reference to value %u at offset %zu, only %zu seen so far",
                        (unsigned)ref, at, d->nitems);
        if (!ITEM_DONE(&d->items[ref]))
            return fail(d, AEMP_EBADMSG, "cyclic reference (to value %u) at offset %zu",
                        (unsigned)ref, at);
        d->extra += d->items[ref].weight;
        if (expanded(d) > d->limit)
            return fail(d, AEMP_EBADMSG,
                        "back-references expand the value past %zu bytes at offset %zu",
                        d->limit, at);
        *tag = ref;
        *copied = 1;
        return 0;
    }
    case SX_SCALAR:
    case SX_UTF8STR:
    case SX_LSCALAR:
    case SX_LUTF8STR:
    case SX_VSTRING:
    case SX_LVSTRING: {
        size_t n;
        if (t == SX_SCALAR || t == SX_UTF8STR || t == SX_VSTRING) {
            if (need(d, 1, "a string length", at)) return d->code;
            n = *d->p++;
        } else if (read_len32(d, "a string length", at, &n)) {
            return d->code;
        }
        if (n > left(d))
            return fail(d, AEMP_EPROTO,
                        "string of %zu bytes at offset %zu runs past the end of the image (%zu "
                        "bytes left)",
                        n, at, left(d));
        const unsigned char *s = d->p;
        d->p += n;
        if (t == SX_VSTRING || t == SX_LVSTRING) {
            /* the magic (the literal v-string) is dropped: JSON::XS writes
             * the string under it */
            if (ctx & C_VSTR)
                return fail(d, AEMP_EPROTO, "v-string magic on Storable type 0x%02x at offset %zu",
                            t, at);
            size_t magic = expanded(d) - at_exp;
            if (retrieve(d, ctx | C_VSTR, depth, tag, copied)) return d->code;
            d->items[*tag].weight = sat32(d->items[*tag].weight + magic);
            return 0;
        }
        v = make_string(d, s, n, t == SX_UTF8STR || t == SX_LUTF8STR, at);
        if (!v) return d->code;
        break;
    }
    case SX_ARRAY:
    case SX_HASH:
    case SX_FLAG_HASH: {
        if (depth >= d->max_depth)
            return fail(d, AEMP_EPROTO, "nesting deeper than %u at offset %zu", d->max_depth,
                        at);
        json_t *c = t == SX_ARRAY ? json_array() : json_object();
        if (!c) return nomem(d);
        if (add_item(d, K_CONTAINER, c, tag)) return d->code;
        size_t me = *tag;
        int r = t == SX_ARRAY ? read_array(d, at, depth + 1, me)
                              : read_hash(d, at, depth + 1, me, t == SX_FLAG_HASH);
        if (r) return r;
        d->items[me].meta |= 1;
        d->items[me].weight = sat32(expanded(d) - at_exp);
        *tag = me;
        return 0;
    }
    case SX_REF:
    case SX_OVERLOAD:
    case SX_WEAKREF:
    case SX_WEAKOVERLOAD: {
        if (ctx & C_REF)
            return fail(d, AEMP_EBADMSG, "reference to a reference at offset %zu", at);
        size_t me, target;
        int tcopied;
        if (add_item(d, K_REF, NULL, &me)) return d->code;
        if (retrieve(d, C_REF, depth, &target, &tcopied)) return d->code;
        json_t *r = resolve_ref(d, target, tcopied, at);
        if (!r) return d->code;
        d->items[me].v = r;
        d->items[me].meta |= 1;
        d->items[me].weight = sat32(expanded(d) - at_exp);
        *tag = me;
        return 0;
    }
    case SX_BLESS:
    case SX_IX_BLESS: {
        size_t idx;
        if (ctx & C_BLESS) return fail(d, AEMP_EPROTO, "object blessed twice at offset %zu", at);
        if (need(d, 1, "a class name", at)) return d->code;
        unsigned b = *d->p++;
        if (b & 0x80) {
            if (read_len32(d, "a class name", at, &idx)) return d->code;
        } else {
            idx = b;
        }
        if (t == SX_BLESS) {
            if (idx > left(d))
                return fail(d, AEMP_EPROTO,
                            "class name of %zu bytes at offset %zu runs past the end of the "
                            "image (%zu bytes left)",
                            idx, at, left(d));
            /* a class is a value too: each takes at least 3 bytes (the
             * bless, its name length and a value to bless) */
            size_t ceiling = d->max_values;
            if (ceiling - d->ncls > left(d) / 2 + 1) ceiling = d->ncls + left(d) / 2 + 1;
            if (count_values(d, 1, at) ||
                grow(d, (void **)&d->cls, &d->clscap, d->ncls, sizeof *d->cls, ceiling))
                return d->code;
            d->cls[d->ncls].name = d->p;
            d->cls[d->ncls].len = idx;
            d->p += idx;
            idx = d->ncls++;
        } else if (idx >= d->ncls) {
            return fail(d, AEMP_EPROTO, "class number %zu at offset %zu, only %zu seen so far",
                        idx, at, d->ncls);
        }
        size_t header = expanded(d) - at_exp;
        if (retrieve(d, ctx | C_BLESS, depth, tag, copied)) return d->code;
        d->items[*tag].meta |= ((uint32_t)idx + 1) << 3;
        d->items[*tag].weight = sat32(d->items[*tag].weight + header);
        return 0;
    }
    case SX_UNDEF:
    case SX_SV_UNDEF:
    case SX_SVUNDEF_ELEM:
        v = json_null();
        break;
    case SX_SV_YES:
    case SX_BOOLEAN_TRUE:
        v = json_true();
        break;
    case SX_SV_NO:
    case SX_BOOLEAN_FALSE:
        v = json_false();
        break;
    case SX_BYTE:
        if (need(d, 1, "an integer", at)) return d->code;
        v = json_integer((json_int_t)*d->p++ - 128);
        break;
    case SX_NETINT:
        if (need(d, 4, "an integer", at)) return d->code;
        v = json_integer((json_int_t)(int32_t)be32(d->p));
        d->p += 4;
        break;
    case SX_INTEGER:
    case SX_DOUBLE: {
        if (need(d, 8, t == SX_INTEGER ? "an integer" : "a double", at)) return d->code;
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--) u = u << 8 | d->p[i]; /* little-endian */
        d->p += 8;
        if (t == SX_INTEGER) {
            /* as the JSON decoder: the one value Perl reads as a string */
            v = u == (uint64_t)1 << 63 ? json_string("-9223372036854775808")
                                       : json_integer((json_int_t)u);
        } else {
            double x;
            memcpy(&x, &u, 8);
            if (!isfinite(x))
                return fail(d, AEMP_EBADMSG, "infinite or NaN double at offset %zu", at);
            v = json_real(x);
        }
        break;
    }
    case SX_TIED_ARRAY:
    case SX_TIED_HASH:
    case SX_TIED_SCALAR:
    case SX_HOOK:
    case SX_TIED_KEY:
    case SX_TIED_IDX:
    case SX_CODE:
    case SX_REGEXP:
    case SX_LOBJECT:
        return fail(d, AEMP_EBADMSG, "unsupported Storable type 0x%02x (%s) at offset %zu", t,
                    type_name(t), at);
    default:
        return fail(d, AEMP_EPROTO, "unknown Storable type 0x%02x at offset %zu", t, at);
    }
    if (!v) return nomem(d);
    if (add_item(d, K_SCALAR, v, tag)) return d->code;
    d->items[*tag].weight = sat32(expanded(d) - at_exp);
    return 0;
}

json_t *aemp_storable_decode(const void *buf, size_t len, unsigned max_depth, int *err,
                             char *errbuf, size_t errlen)
{
    return aemp_storable_decode_max(buf, len, max_depth, 0, err, errbuf, errlen);
}

json_t *aemp_storable_decode_max(const void *buf, size_t len, unsigned max_depth,
                                 size_t max_values, int *err, char *errbuf, size_t errlen)
{
    sdec_t D;
    memset(&D, 0, sizeof D);
    D.err = errbuf;
    D.errlen = errlen;
    if (errbuf && errlen) errbuf[0] = 0;
    D.max_depth = !max_depth ? AEMP_JSON_MAX_DEPTH
                  : max_depth < AEMP_STORABLE_DEPTH_LIMIT ? max_depth
                                                          : AEMP_STORABLE_DEPTH_LIMIT;
    D.limit = len < (SIZE_MAX / AEMP_STORABLE_MAX_EXPANSION) ? len * AEMP_STORABLE_MAX_EXPANSION
                                                             : SIZE_MAX;
    if (D.limit < 65536) D.limit = 65536;
    if (D.limit > UINT32_MAX - 1) D.limit = UINT32_MAX - 1; /* weights are 32-bit */
    D.max_values = !max_values ? AEMP_STORABLE_MAX_VALUES
                   : max_values < VALUES_CEILING ? max_values
                                                 : VALUES_CEILING;
    json_t *out = NULL;

    if (!buf && len) {
        fail(&D, AEMP_EINVAL, "invalid argument");
        goto done;
    }
    D.beg = D.p = buf ? buf : (const void *)"";
    D.end = D.beg + len;
    if (len < 2) {
        fail(&D, AEMP_EPROTO, "image ends inside the header at offset %zu", len);
        goto done;
    }
    if (!(D.beg[0] & 1)) {
        fail(&D, AEMP_EPROTO, "not a network-order image (header byte 0x%02x): freeze, not nfreeze",
             D.beg[0]);
        goto done;
    }
    if (D.beg[0] >> 1 != 2) {
        fail(&D, AEMP_EPROTO, "Storable format %u.%u, not 2.x", D.beg[0] >> 1, D.beg[1]);
        goto done;
    }
    D.p += 2; /* any minor: a newer one can only add types, refused below */
    size_t tag;
    int copied;
    if (retrieve(&D, C_REF, 0, &tag, &copied)) goto done;
    if (D.p != D.end) {
        fail(&D, AEMP_EPROTO, "%zu bytes after the value at offset %zu", left(&D), off(&D, D.p));
        goto done;
    }
    out = resolve_ref(&D, tag, copied, 2);
done:
    for (size_t i = 0; i < D.nitems; i++) json_decref(D.items[i].v);
    free(D.items);
    free(D.cls);
    if (!out && err) *err = D.code ? D.code : AEMP_ENOMEM;
    return out;
}

/* ------------------------------------------------------------------ */
/* Encoder */

typedef struct senc {
    aemp__buf_t *b;
    uint32_t tag;                /* the next value's tag */
    uint32_t true_tag, false_tag; /* the boolean objects, once written */
    int class_written;           /* JSON::PP::Boolean is class 0 */
} senc_t;

#define NO_TAG UINT32_MAX

static int put(senc_t *e, const void *p, size_t n)
{
    return aemp__buf_append(e->b, p, n);
}

static int put1(senc_t *e, unsigned c)
{
    unsigned char x = (unsigned char)c;
    return put(e, &x, 1);
}

static int put32(senc_t *e, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    return put(e, x, 4);
}

/* A byte string (type small/large by length) of n bytes. */
static int put_str(senc_t *e, unsigned small, unsigned large, const void *p, size_t n)
{
    int r;
    if (n > INT32_MAX) return AEMP_EINVAL;
    e->tag++;
    if (n <= 255)
        r = put1(e, small) || put1(e, (unsigned)n);
    else
        r = put1(e, large) || put32(e, (uint32_t)n);
    return r ? AEMP_ENOMEM : put(e, p, n);
}

static int put_digits(senc_t *e, const char *s)
{
    return put_str(e, SX_SCALAR, SX_LSCALAR, s, strlen(s));
}

static int put_integer(senc_t *e, json_int_t i)
{
    if (i >= -128 && i <= 127) {
        e->tag++;
        return put1(e, SX_BYTE) || put1(e, (unsigned)(i + 128)) ? AEMP_ENOMEM : 0;
    }
    if (i >= INT32_MIN && i <= INT32_MAX) {
        e->tag++;
        return put1(e, SX_NETINT) || put32(e, (uint32_t)(int32_t)i) ? AEMP_ENOMEM : 0;
    }
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%lld", (long long)i);
    return put_digits(e, tmp);
}

/* An NV as Storable writes it in network order: an integer in disguise
 * as that integer, else Perl's string form ("%.15g"). */
static int put_real(senc_t *e, double x)
{
    if (x >= -9223372036854775808.0 && x < 9223372036854775808.0 && x == (double)(json_int_t)x)
        return put_integer(e, (json_int_t)x);
    char tmp[48], out[48];
    if (isnan(x)) return put_digits(e, "NaN");
    if (isinf(x)) return put_digits(e, x < 0 ? "-Inf" : "Inf");
    snprintf(tmp, sizeof tmp, "%.15g", x);
    /* printf's radix character follows the locale; Perl's is '.' */
    size_t k = 0;
    int radix_done = 0;
    for (const char *s = tmp; *s; s++) {
        if ((*s >= '0' && *s <= '9') || *s == '-' || *s == '+' || *s == 'e')
            out[k++] = *s;
        else if (!radix_done)
            out[k++] = '.', radix_done = 1;
    }
    out[k] = 0;
    return put_digits(e, out);
}

/* 1 when the UTF-8 text s has no character above U+00FF; 0 when it has;
 * -1 when it is not UTF-8. */
static int latin1_ok(const unsigned char *s, size_t n)
{
    if (!aemp__utf8_valid(s, n)) return -1;
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0xC4) return 0;
    return 1;
}

/* s (UTF-8, all below U+0100) as Latin-1 bytes into out (n bytes room);
 * returns the length. */
static size_t to_latin1(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) {
            out[k++] = s[i];
        } else {
            out[k++] = (unsigned char)((s[i] & 0x03) << 6 | (s[i + 1] & 0x3F));
            i++;
        }
    }
    return k;
}

/* A string, as bytes (Latin-1) when it can be, like the vectors show. The
 * length field, for hash keys (no type byte), or a whole scalar. */
static int put_text(senc_t *e, const char *str, size_t n, int key)
{
    const unsigned char *s = (const unsigned char *)str;
    int l1 = latin1_ok(s, n);
    if (l1 < 0) return AEMP_EINVAL;
    unsigned char small[256], *buf = small;
    if (l1) {
        if (n > sizeof small && !(buf = malloc(n))) return AEMP_ENOMEM;
        n = to_latin1(s, n, buf);
        s = buf;
    }
    int r;
    if (key)
        r = n > INT32_MAX ? AEMP_EINVAL : put32(e, (uint32_t)n) || put(e, s, n) ? AEMP_ENOMEM : 0;
    else if (l1)
        r = put_str(e, SX_SCALAR, SX_LSCALAR, s, n);
    else
        r = put_str(e, SX_UTF8STR, SX_LUTF8STR, s, n);
    if (buf != small) free(buf);
    return r;
}

/* A JSON::PP::Boolean object (the blessed scalar); the first of each
 * value is written whole, later ones refer back to it. */
static int put_bool_object(senc_t *e, int b)
{
    uint32_t *seen = b ? &e->true_tag : &e->false_tag;
    if (*seen != NO_TAG) return put1(e, SX_OBJECT) || put32(e, *seen) ? AEMP_ENOMEM : 0;
    int r;
    if (e->class_written) {
        r = put1(e, SX_IX_BLESS) || put1(e, 0);
    } else {
        r = put1(e, SX_BLESS) || put1(e, sizeof bool_class - 1) ||
            put(e, bool_class, sizeof bool_class - 1);
        e->class_written = 1;
    }
    if (r) return AEMP_ENOMEM;
    *seen = e->tag;
    return put_integer(e, b);
}

static int put_container(senc_t *e, const json_t *v, size_t depth);

/* An element or hash value. */
static int put_value(senc_t *e, const json_t *v, size_t depth)
{
    const char *raw;
    switch (json_typeof(v)) {
    case JSON_NULL:
        e->tag++;
        return put1(e, SX_UNDEF);
    case JSON_TRUE:
    case JSON_FALSE:
        e->tag++; /* the reference; overloaded, as JSON::PP::Boolean is */
        return put1(e, SX_OVERLOAD) ? AEMP_ENOMEM : put_bool_object(e, json_is_true(v));
    case JSON_INTEGER:
        return put_integer(e, json_integer_value(v));
    case JSON_REAL:
        return put_real(e, json_real_value(v));
    case JSON_STRING:
        if (aemp_json_is_raw_number(v, &raw)) {
            size_t n = json_string_length(v) - 1;
            if (!aemp__raw_text_ok(raw, n)) return AEMP_EINVAL;
            return put_str(e, SX_SCALAR, SX_LSCALAR, raw, n);
        }
        return put_text(e, json_string_value(v), json_string_length(v), 0);
    case JSON_ARRAY:
    case JSON_OBJECT:
        e->tag++;
        return put1(e, SX_REF) ? AEMP_ENOMEM : put_container(e, v, depth);
    default:
        return AEMP_EINVAL;
    }
}

static int put_container(senc_t *e, const json_t *v, size_t depth)
{
    int r;
    if (depth >= AEMP_JSON_MAX_ENCODE_DEPTH) return AEMP_EINVAL;
    e->tag++;
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (n > INT32_MAX) return AEMP_EINVAL;
        if (put1(e, SX_ARRAY) || put32(e, (uint32_t)n)) return AEMP_ENOMEM;
        for (size_t i = 0; i < n; i++)
            if ((r = put_value(e, json_array_get(v, i), depth + 1))) return r;
        return 0;
    }
    size_t n = json_object_size(v);
    int flagged = 0;
    if (n > INT32_MAX) return AEMP_EINVAL;
    for (void *it = json_object_iter((json_t *)v); it; it = json_object_iter_next((json_t *)v, it)) {
        int l1 = latin1_ok((const unsigned char *)json_object_iter_key(it),
                           json_object_iter_key_len(it));
        if (l1 < 0) return AEMP_EINVAL;
        flagged |= !l1;
    }
    r = flagged ? put1(e, SX_FLAG_HASH) || put1(e, 0) : put1(e, SX_HASH);
    if (r || put32(e, (uint32_t)n)) return AEMP_ENOMEM;
    for (void *it = json_object_iter((json_t *)v); it; it = json_object_iter_next((json_t *)v, it)) {
        const char *k = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        if ((r = put_value(e, json_object_iter_value(it), depth + 1))) return r;
        if (flagged && put1(e, latin1_ok((const unsigned char *)k, kl) ? 0 : SHV_K_UTF8))
            return AEMP_ENOMEM;
        if ((r = put_text(e, k, kl, 1))) return r;
    }
    return 0;
}

int aemp__storable_encode_buf(aemp__buf_t *b, const json_t *v)
{
    senc_t E = {b, 0, NO_TAG, NO_TAG, 0};
    size_t was = b->len;
    int r;
    if (!v) return AEMP_EINVAL;
    if ((r = put(&E, nfreeze_header, sizeof nfreeze_header)) == 0) {
        if (json_is_array(v) || json_is_object(v))
            r = put_container(&E, v, 0);
        else if (json_is_boolean(v))
            r = put_bool_object(&E, json_is_true(v));
        else
            r = AEMP_EINVAL;
    }
    if (r) b->len = was;
    return r;
}

/* Encodes into a fresh buffer, leaving AEMP_BER_MAX_BYTES in front for
 * the frame's length when framed. */
static void *encode(const json_t *v, size_t *len, int framed)
{
    aemp__buf_t b = {0};
    size_t head = framed ? AEMP_BER_MAX_BYTES : 0;
    if (aemp__buf_reserve(&b, head + 64)) return NULL;
    b.len = head;
    if (aemp__storable_encode_buf(&b, v)) {
        aemp__buf_free(&b);
        return NULL;
    }
    size_t n = b.len - head;
    if (framed) {
        unsigned char pre[AEMP_BER_MAX_BYTES];
        size_t k = aemp_ber_write(n, pre);
        memcpy(b.data + head - k, pre, k);
        memmove(b.data, b.data + head - k, k + n);
        n += k;
    }
    if (len) *len = n;
    return b.data;
}

void *aemp_storable_encode(const json_t *v, size_t *len)
{
    return encode(v, len, 0);
}

void *aemp_storable_encode_frame(const json_t *v, size_t *len)
{
    return encode(v, len, 1);
}
