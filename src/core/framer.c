/*
 * framer.c - the JSON stream framer: splits the data phase of a json-framed
 * link into JSON texts without decoding them. A resumable state machine
 * (bracket depth, inside a string, after a backslash, inside a top-level
 * number or literal) that keeps its place between calls, so each byte is
 * looked at once however the stream is cut. Validation is left to the
 * decoder, except what finding the end needs. Sans-I/O, no allocation.
 */
#include "aemp_int.h"

#include <stdarg.h>
#include <stdio.h>

enum {
    ST_IDLE,  /* between texts */
    ST_CONT,  /* inside an array or object, outside strings */
    ST_STR,   /* inside a string (depth 0: a top-level string) */
    ST_ESC,   /* inside a string, after a backslash */
    ST_NUM,   /* a top-level number; sub_ is its grammar state */
    ST_LIT,   /* a top-level literal; lit_ which, sub_ letters matched */
    ST_ERR
};

/* Bytes that matter inside a container, outside strings. */
enum { K_QUOTE = 1, K_OPEN = 2, K_CLOSE = 3 };
static const unsigned char container_class[256] = {
    ['"'] = K_QUOTE, ['['] = K_OPEN, ['{'] = K_OPEN, [']'] = K_CLOSE, ['}'] = K_CLOSE,
};

static const unsigned char is_ws[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
};

/* Top-level number grammar (RFC 8259), so that a number ends exactly where
 * a JSON parser would end it ("042" is the texts 0 and 42). */
enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };
enum { C_OTHER, C_ZERO, C_DIGIT, C_DOT, C_E, C_PLUS, C_MINUS };
#define NX_END 0x10 /* the byte ends the number (it is not part of it) */
#define NX_BAD 0x20 /* the number is malformed */

static const unsigned char num_class[256] = {
    ['0'] = C_ZERO,  ['1'] = C_DIGIT, ['2'] = C_DIGIT, ['3'] = C_DIGIT,
    ['4'] = C_DIGIT, ['5'] = C_DIGIT, ['6'] = C_DIGIT, ['7'] = C_DIGIT,
    ['8'] = C_DIGIT, ['9'] = C_DIGIT, ['.'] = C_DOT,   ['e'] = C_E,
    ['E'] = C_E,     ['+'] = C_PLUS,  ['-'] = C_MINUS,
};

#define E_ NX_END
#define B_ NX_BAD
static const unsigned char num_next[8][7] = {
    /*            other zero    digit   dot    e    plus     minus */
    [N_MINUS] = {B_, N_ZERO, N_INT, B_, B_, B_, B_},
    [N_ZERO] = {E_, E_, E_, N_DOT, N_E, E_, E_},
    [N_INT] = {E_, N_INT, N_INT, N_DOT, N_E, E_, E_},
    [N_DOT] = {B_, N_FRAC, N_FRAC, B_, B_, B_, B_},
    [N_FRAC] = {E_, N_FRAC, N_FRAC, E_, N_E, E_, E_},
    [N_E] = {B_, N_EXP, N_EXP, B_, B_, N_ESIGN, N_ESIGN},
    [N_ESIGN] = {B_, N_EXP, N_EXP, B_, B_, B_, B_},
    [N_EXP] = {E_, N_EXP, N_EXP, E_, E_, E_, E_},
};
#undef E_
#undef B_

static const char *const literals[3] = {"true", "false", "null"};
static const unsigned char literal_len[3] = {4, 5, 4};

void aemp_framer_init(aemp_framer_t *f, size_t max_len, unsigned max_depth)
{
    memset(f, 0, sizeof *f);
    f->max_len_ = max_len ? max_len : AEMP_DEFAULT_MAX_MESSAGE;
    f->max_depth_ = max_depth ? max_depth : AEMP_JSON_MAX_DEPTH;
    f->state_ = ST_IDLE;
}

int aemp__framer_idle(const aemp_framer_t *f)
{
    return f->state_ == ST_IDLE && !f->err_;
}

const char *aemp_framer_error(const aemp_framer_t *f)
{
    return f->err_ ? f->msg_ : "";
}

__attribute__((format(printf, 3, 4)))
static int fail(aemp_framer_t *f, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg_, sizeof f->msg_, fmt, ap);
    va_end(ap);
    f->err_ = (int8_t)code;
    f->state_ = ST_ERR;
    return code;
}

/* First '"' or '\' in [p, e), or e. */
static inline const unsigned char *quote_scan(const unsigned char *p,
                                              const unsigned char *e)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    defined(__GNUC__)
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (e - p >= 8) {
        uint64_t w, q, s;
        memcpy(&w, p, 8);
        q = w ^ (ones * '"');
        s = w ^ (ones * '\\');
        uint64_t m = ((q - ones) & ~q & highs) | ((s - ones) & ~s & highs);
        if (m) return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < e && *p != '"' && *p != '\\') p++;
    return p;
}

int aemp_framer_next(aemp_framer_t *f, const char *buf, size_t len,
                     size_t *start, size_t *end)
{
    if (f->err_) return f->err_;
    if (len < f->scanned_ || (!buf && len)) return AEMP_EINVAL;
    if (!buf) buf = "";

    const unsigned char *b = (const unsigned char *)buf;
    const unsigned char *e = b + len, *p = b + f->scanned_;
    const unsigned char *t, *lim;
    unsigned state = f->state_, sub = f->sub_;
    uint32_t depth = f->depth_;

    if (state == ST_IDLE) {
        /* scanned_ is 0 here: whitespace is rescanned if the caller kept
         * it, which is what makes dropping it optional */
        while (p < e && is_ws[*p]) p++;
        if (p == e) {
            *start = *end = len;
            return 0;
        }
        f->start_ = (size_t)(p - b);
        switch (*p) {
        case '[':
        case '{':
            state = ST_CONT;
            depth = 1;
            break;
        case '"':
            state = ST_STR;
            depth = 0;
            break;
        case '-':
            state = ST_NUM;
            sub = N_MINUS;
            break;
        case '0':
            state = ST_NUM;
            sub = N_ZERO;
            break;
        case '1': case '2': case '3': case '4': case '5':
        case '6': case '7': case '8': case '9':
            state = ST_NUM;
            sub = N_INT;
            break;
        case 't':
        case 'f':
        case 'n':
            state = ST_LIT;
            f->lit_ = *p == 't' ? 0 : *p == 'f' ? 1 : 2;
            sub = 1;
            break;
        default:
            return fail(f, AEMP_EBADMSG,
                        "unexpected byte 0x%02x where a JSON text should start", *p);
        }
        p++;
    }

    t = b + f->start_;
    /* a text may not reach past lim; reaching it incomplete is the error */
    lim = (size_t)(e - t) > f->max_len_ ? t + f->max_len_ : e;

    switch (state) {
    case ST_CONT: goto cont;
    case ST_STR: goto str;
    case ST_ESC: goto esc;
    case ST_NUM: goto num;
    case ST_LIT: goto lit;
    default: return AEMP_EINVAL;
    }

cont:
    while (p < lim) {
        unsigned k = container_class[*p++];
        if (!k) continue;
        if (k == K_QUOTE) goto str;
        if (k == K_OPEN) {
            if (++depth > f->max_depth_)
                return fail(f, AEMP_ELIMIT, "nesting deeper than %u", f->max_depth_);
            continue;
        }
        if (--depth == 0) goto complete;
    }
    state = ST_CONT;
    goto more;

str:
    p = quote_scan(p, lim);
    if (p == lim) {
        state = ST_STR;
        goto more;
    }
    if (*p++ == '"') {
        if (depth == 0) goto complete;
        goto cont;
    }
esc:
    if (p == lim) {
        state = ST_ESC;
        goto more;
    }
    p++;
    goto str;

num:
    /* a number's end shows only in the byte after it, which may lie at
     * lim itself */
    while (p < e) {
        unsigned nx = num_next[sub][num_class[*p]];
        if (nx == NX_END) goto complete;
        if (nx == NX_BAD)
            return fail(f, AEMP_EBADMSG, "malformed number: unexpected byte 0x%02x", *p);
        if ((size_t)(p - t) >= f->max_len_) goto too_long;
        sub = nx;
        p++;
    }
    state = ST_NUM;
    goto save;

lit:
    {
        const char *w = literals[f->lit_];
        unsigned wl = literal_len[f->lit_];
        for (; sub < wl; sub++, p++) {
            if (p == lim) {
                state = ST_LIT;
                goto more;
            }
            if (*p != (unsigned char)w[sub])
                return fail(f, AEMP_EBADMSG, "malformed literal: unexpected byte 0x%02x",
                            *p);
        }
        goto complete;
    }

more:
    if ((size_t)(p - t) >= f->max_len_) goto too_long;
save:
    f->scanned_ = (size_t)(p - b);
    f->state_ = (uint8_t)state;
    f->sub_ = (uint8_t)sub;
    f->depth_ = depth;
    *start = *end = 0;
    return 0;

complete:
    *start = f->start_;
    *end = (size_t)(p - b);
    f->scanned_ = 0;
    f->start_ = 0;
    f->depth_ = 0;
    f->state_ = ST_IDLE;
    return 1;

too_long:
    return fail(f, AEMP_ELIMIT, "JSON text longer than %zu bytes", f->max_len_);
}
