/*
 * pack.c - message payloads: the elements of an outgoing message, given
 * as a JSON array or as a jansson pack format with its arguments
 * (aemp_sendf). A format is written straight into the output as the JSON
 * text that json_pack followed by the encoder would give, so a formatted
 * message to another node never becomes a value; the same in CBOR for
 * links that write it (aemp__payload_encode_cbor). Formats this writer
 * does not take on (objects, '+' concatenation, anything unusual) go
 * through json_vpack_ex, which also has the last word on every error.
 * Pure code: no I/O, no globals.
 */
#include "aemp_int.h"

/* Nesting this writer follows itself; deeper formats go to jansson. */
#define PACK_MAX_NEST 32

static int skip_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ':';
}

/* What pack_write follows: one step per token of an array format, the
 * token and its modifier. PACK_MAX_OPS bounds a program; longer formats
 * go to jansson. */
#define PACK_MAX_OPS 64
/* Longest format text a cache keeps (NUL included). */
#define PACK_CACHE_TEXT 32

typedef struct pack_op {
    char c, mod;
} pack_op_t;

/* A link's last format, compiled: a program is reused while a message is
 * made with the same format string (same pointer, same text). CBOR
 * writes each array's element count before its elements: those of a
 * program without '*' are kept with it. */
struct aemp__pack_cache {
    const char *fmt;
    char text[PACK_CACHE_TEXT];
    size_t nops;
    int counted;                  /* counts and top hold */
    uint32_t top;                 /* the top array's elements */
    uint32_t counts[PACK_MAX_OPS]; /* each '[' step's elements */
    pack_op_t ops[PACK_MAX_OPS];
};

static int pack_counts(const pack_op_t *ops, size_t nops, uint32_t *counts, uint32_t *top);

/* Compiles fmt when it is an array format made only of what pack_write
 * knows: s s? s* s# s%, n b i I f, o O with ? or *, and nested arrays.
 * Returns the number of steps after the top array's '[' (its ']'
 * included), or 0 for a format left to jansson. */
static size_t compile(const char *fmt, pack_op_t *ops)
{
    const char *p = fmt;
    int depth = 0, seen_top = 0;
    size_t n = 0;
    while (skip_space(*p)) p++;
    if (*p != '[') return 0;
    for (depth = 1, p++; *p; p++) {
        char c = *p, mod = 0;
        if (skip_space(c)) continue;
        if (seen_top) return 0; /* after the top array: jansson says what it is */
        switch (c) {
        case '[':
            if (++depth > PACK_MAX_NEST) return 0;
            break;
        case ']':
            if (--depth == 0) seen_top = 1;
            break;
        case 's':
            if (p[1] == '?' || p[1] == '*' || p[1] == '#' || p[1] == '%') mod = *++p;
            if (p[1] == '+' || p[1] == '#' || p[1] == '%' || p[1] == '?' || p[1] == '*') return 0;
            break;
        case 'o':
        case 'O':
            if (p[1] == '?' || p[1] == '*') mod = *++p;
            break;
        case 'n':
        case 'b':
        case 'i':
        case 'I':
        case 'f':
            break;
        default:
            return 0;
        }
        if (n == PACK_MAX_OPS) return 0;
        ops[n++] = (pack_op_t){c, mod};
    }
    return seen_top ? n : 0;
}

/* The program of fmt, from the cache when it holds this format (compiled
 * and kept there otherwise, when it fits), else compiled into ops; *hit
 * is the cache when the program is its own, else NULL. Returns the
 * number of steps, 0 for a format left to jansson. */
static size_t program(const char *fmt, aemp__pack_cache_t *c, pack_op_t *ops,
                      const pack_op_t **prog, const aemp__pack_cache_t **hit)
{
    *prog = ops;
    *hit = NULL;
    if (c && c->fmt == fmt) {
        /* the same call site, as a rule: the text is compared, as it may
         * have changed since */
        size_t i = 0;
        while (i < sizeof c->text && c->text[i] == fmt[i] && fmt[i]) i++;
        if (i < sizeof c->text && c->text[i] == fmt[i]) {
            *prog = c->ops;
            *hit = c;
            return c->nops;
        }
    }
    size_t n = compile(fmt, ops);
    if (c && n) {
        size_t len = strlen(fmt);
        if (len < sizeof c->text) {
            memcpy(c->text, fmt, len + 1);
            memcpy(c->ops, ops, n * sizeof *ops);
            c->nops = n;
            c->fmt = fmt;
            c->counted = !pack_counts(c->ops, n, c->counts, &c->top);
            *prog = c->ops;
            *hit = c;
        }
    }
    return n;
}

/* A few bytes: reserved and copied in place (this runs for every
 * separator of every formatted message). */
static inline int put_raw(aemp__buf_t *b, const char *s, size_t n)
{
    if (b->cap - b->len < n && aemp__buf_reserve(b, n)) return AEMP_ENOMEM;
    for (size_t i = 0; i < n; i++) b->data[b->len + i] = s[i];
    b->len += n;
    return 0;
}

/* One token's arguments, fetched from the va_list. */
typedef struct pack_arg {
    const char *s; /* 's': the string (NULL for none) */
    size_t slen;
    json_t *v;     /* 'o', 'O' */
    json_int_t iv; /* 'b', 'i', 'I' */
    double dv;     /* 'f' */
    char mod;      /* the step's modifier ('#' with a negative length: none) */
} pack_arg_t;

/* Fetches the arguments of step op into a. Every token's arguments are
 * fetched whatever happens, so that the list stays in step. */
static inline void fetch(pack_op_t op, va_list *ap, pack_arg_t *a)
{
    *a = (pack_arg_t){.mod = op.mod};
    switch (op.c) {
    case 's':
        a->s = va_arg(*ap, const char *);
        if (op.mod == '#') {
            int l = va_arg(*ap, int);
            if (l < 0) a->s = NULL, a->mod = 0;
            a->slen = l < 0 ? 0 : (size_t)l;
        } else if (op.mod == '%') {
            a->slen = va_arg(*ap, size_t);
        } else {
            a->slen = a->s ? strlen(a->s) : 0;
        }
        break;
    case 'o':
    case 'O':
        a->v = va_arg(*ap, json_t *);
        break;
    case 'b':
    case 'i':
        a->iv = va_arg(*ap, int);
        break;
    case 'I':
        a->iv = va_arg(*ap, json_int_t);
        break;
    case 'f':
        a->dv = va_arg(*ap, double);
        break;
    default: /* '[' and 'n' take none */
        break;
    }
}

/* Writes the elements of a compiled array format (n steps) after the
 * message head already in b, then the closing ']'. Every argument is
 * consumed, also after a failure, and "o" references are released, as
 * json_pack does; with discard nothing is written. */
static int pack_write(aemp__buf_t *b, const pack_op_t *ops, size_t nops, va_list *ap,
                      int discard)
{
    unsigned char first[PACK_MAX_NEST + 1];
    int depth = 0, rc = discard;
    first[0] = 0; /* the top array follows the id: a ',' before each element */
    for (size_t k = 0; k < nops; k++) {
        char c = ops[k].c;
        if (c == ']') {
            if (!rc) rc = put_raw(b, "]", 1);
            depth--;
            continue;
        }
        pack_arg_t a;
        fetch(ops[k], ap, &a);
        int omit = a.mod == '*' && ((c == 's' && !a.s) || (c != 's' && !a.v));
        if (!rc && !omit) {
            if (!first[depth]) rc = put_raw(b, ",", 1);
            first[depth] = 0;
            if (!rc) switch (c) {
            case '[':
                rc = put_raw(b, "[", 1);
                break;
            case 's':
                rc = a.s ? aemp__json_put_string(b, a.s, a.slen)
                         : a.mod == '?' ? put_raw(b, "null", 4) : AEMP_EINVAL;
                break;
            case 'o':
            case 'O':
                rc = a.v ? aemp__json_put_value(b, a.v,
                                                (size_t)(AEMP_JSON_MAX_ENCODE_DEPTH - 1 - depth))
                         : a.mod == '?' ? put_raw(b, "null", 4) : AEMP_EINVAL;
                break;
            case 'n':
                rc = put_raw(b, "null", 4);
                break;
            case 'b':
                rc = a.iv ? put_raw(b, "true", 4) : put_raw(b, "false", 5);
                break;
            case 'i':
            case 'I':
                rc = aemp__json_put_integer(b, a.iv);
                break;
            case 'f':
                rc = aemp__json_put_real(b, a.dv);
                break;
            default:
                break;
            }
        }
        if (c == '[') first[++depth] = 1;
        if (c == 'o' && a.v) json_decref(a.v);
    }
    return discard ? 0 : rc;
}

/* The same in CBOR, for a program without '*': counts holds each '['
 * step's number of elements, written in its head (the top array's head
 * and the id are in b already; CBOR closes nothing). */
static int pack_write_cbor(aemp__buf_t *b, const pack_op_t *ops, size_t nops, va_list *ap,
                           int discard, const uint32_t *counts)
{
    static const char nul = (char)0xf6, yes = (char)0xf5, no = (char)0xf4;
    int depth = 0, rc = discard;
    for (size_t k = 0; k < nops; k++) {
        char c = ops[k].c;
        if (c == ']') {
            depth--;
            continue;
        }
        pack_arg_t a;
        fetch(ops[k], ap, &a);
        if (!rc) switch (c) {
        case '[':
            rc = aemp__cbor_put_head(b, 4, counts[k]);
            break;
        case 's':
            rc = a.s ? aemp__cbor_put_string(b, a.s, a.slen)
                     : a.mod == '?' ? put_raw(b, &nul, 1) : AEMP_EINVAL;
            break;
        case 'o':
        case 'O':
            rc = a.v ? aemp__cbor_put_value(b, a.v, (size_t)(AEMP_JSON_MAX_ENCODE_DEPTH - 1 - depth))
                     : a.mod == '?' ? put_raw(b, &nul, 1) : AEMP_EINVAL;
            break;
        case 'n':
            rc = put_raw(b, &nul, 1);
            break;
        case 'b':
            rc = put_raw(b, a.iv ? &yes : &no, 1);
            break;
        case 'i':
        case 'I':
            rc = aemp__cbor_put_integer(b, a.iv);
            break;
        case 'f':
            rc = aemp__cbor_put_real(b, a.dv);
            break;
        default:
            break;
        }
        if (c == '[') depth++;
        if (c == 'o' && a.v) json_decref(a.v);
    }
    return discard ? 0 : rc;
}

/* The element count of each '[' step of a program (n steps, the top
 * array's after its '[') into counts, the top array's in *top. Returns 0,
 * or -1 when a '*' makes a count known only as the arguments come. */
static int pack_counts(const pack_op_t *ops, size_t nops, uint32_t *counts, uint32_t *top)
{
    size_t open[PACK_MAX_NEST + 1];
    size_t depth = 0;
    *top = 0;
    for (size_t k = 0; k < nops; k++) {
        if (ops[k].mod == '*') return -1;
        if (ops[k].c == ']') {
            if (depth) depth--;
            continue;
        }
        if (depth) counts[open[depth - 1]]++;
        else (*top)++;
        if (ops[k].c == '[') {
            counts[k] = 0;
            open[depth++] = k;
        }
    }
    return 0;
}

/* A format's value through jansson: a new array, or NULL. */
static json_t *pack_value(const char *fmt, va_list *ap)
{
    json_t *v = json_vpack_ex(NULL, 0, fmt, *ap);
    if (v && !json_is_array(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

int aemp__payload_encode_cached(aemp__buf_t *b, const char *id, size_t idlen,
                                const aemp__payload_t *pl, aemp__pack_cache_t **cache)
{
    if (pl->elems) {
        int rc = aemp__json_encode_msg(b, id, idlen, pl->elems);
        json_decref(pl->elems);
        return rc;
    }
    if (!pl->fmt) return AEMP_EINVAL;
    /* the cache is made with the first format worth keeping; without
     * memory the format is compiled each time */
    if (cache && !*cache) *cache = calloc(1, sizeof **cache);
    pack_op_t ops[PACK_MAX_OPS];
    const pack_op_t *prog;
    const aemp__pack_cache_t *hit;
    size_t nops = program(pl->fmt, cache ? *cache : NULL, ops, &prog, &hit);
    if (!nops) {
        json_t *v = pack_value(pl->fmt, pl->ap);
        int rc = v ? aemp__json_encode_msg(b, id, idlen, v) : AEMP_EINVAL;
        json_decref(v);
        return rc;
    }
    size_t mark = b->len - b->off;
    int rc = aemp__json_put_head(b, id, idlen);
    if (rc) {
        pack_write(b, prog, nops, pl->ap, 1);
        return rc;
    }
    rc = pack_write(b, prog, nops, pl->ap, 0);
    if (rc) b->len = b->off + mark;
    return rc;
}

int aemp__payload_encode(aemp__buf_t *b, const char *id, size_t idlen, const aemp__payload_t *pl)
{
    return aemp__payload_encode_cached(b, id, idlen, pl, NULL);
}

int aemp__payload_encode_cbor(aemp__buf_t *b, const char *id, size_t idlen,
                              const aemp__payload_t *pl, aemp__pack_cache_t **cache)
{
    if (!pl->elems && pl->fmt) {
        if (cache && !*cache) *cache = calloc(1, sizeof **cache);
        pack_op_t ops[PACK_MAX_OPS];
        const pack_op_t *prog;
        const aemp__pack_cache_t *hit;
        uint32_t own[PACK_MAX_OPS], top = 0;
        const uint32_t *counts = own;
        size_t nops = program(pl->fmt, cache ? *cache : NULL, ops, &prog, &hit);
        int counted = 0;
        if (hit) {
            counted = hit->counted;
            counts = hit->counts;
            top = hit->top;
        } else if (nops) {
            counted = !pack_counts(prog, nops, own, &top);
        }
        if (nops && counted) {
            size_t mark = b->len - b->off;
            int rc = aemp__cbor_put_head(b, 4, (uint64_t)top + 1);
            if (!rc) rc = aemp__cbor_put_id(b, id, idlen);
            int wr = pack_write_cbor(b, prog, nops, pl->ap, rc != 0, counts);
            if (!rc) rc = wr;
            if (rc) b->len = b->off + mark;
            return rc;
        }
    }
    json_t *elems = aemp__payload_value(pl);
    int rc = elems ? aemp__cbor_encode_msg(b, id, idlen, elems) : AEMP_EINVAL;
    json_decref(elems);
    return rc;
}

void aemp__pack_cache_free(aemp__pack_cache_t *c)
{
    free(c);
}

json_t *aemp__payload_value(const aemp__payload_t *pl)
{
    if (pl->elems) {
        if (json_is_array(pl->elems)) return pl->elems;
        json_decref(pl->elems);
        return NULL;
    }
    return pl->fmt ? pack_value(pl->fmt, pl->ap) : NULL;
}

void aemp__payload_drop(const aemp__payload_t *pl)
{
    if (pl->elems) json_decref(pl->elems);
    else if (pl->fmt) {
        pack_op_t ops[PACK_MAX_OPS];
        size_t nops = compile(pl->fmt, ops);
        if (nops) pack_write(NULL, ops, nops, pl->ap, 1);
        else json_decref(pack_value(pl->fmt, pl->ap));
    }
}
