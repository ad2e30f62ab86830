/*
 * ber.c - the storable stream framer: splits the data phase of a
 * storable-framed link into frames, each a BER-compressed length (Perl's
 * `pack "w"`) and that many bytes of Storable image. The length is read
 * again from the region's first bytes until it is complete (it is at most
 * ten bytes), then only the body's arrival is awaited. Sans-I/O, no
 * allocation.
 */
#include "aemp_int.h"

#include <stdarg.h>
#include <stdio.h>

size_t aemp_ber_write(uint64_t v, unsigned char *out)
{
    unsigned char tmp[AEMP_BER_MAX_BYTES];
    size_t n = 0;
    do {
        tmp[AEMP_BER_MAX_BYTES - 1 - n] = (unsigned char)(v & 0x7F);
        v >>= 7;
        n++;
    } while (v);
    for (size_t i = 0; i < n; i++) {
        unsigned char b = tmp[AEMP_BER_MAX_BYTES - n + i];
        out[i] = (unsigned char)(i + 1 < n ? b | 0x80 : b);
    }
    return n;
}

void aemp_ber_framer_init(aemp_ber_framer_t *f, size_t max_len)
{
    memset(f, 0, sizeof *f);
    f->max_len_ = max_len ? max_len : AEMP_DEFAULT_MAX_MESSAGE;
}

const char *aemp_ber_framer_error(const aemp_ber_framer_t *f)
{
    return f->err_ ? f->msg_ : "";
}

__attribute__((format(printf, 3, 4)))
static int fail(aemp_ber_framer_t *f, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg_, sizeof f->msg_, fmt, ap);
    va_end(ap);
    f->err_ = (int8_t)code;
    return code;
}

/* Reads the length prefix at the front of buf: 1 when complete (f->body_,
 * f->prefix_ set), 0 when more bytes are needed, <0 on error. */
static int read_prefix(aemp_ber_framer_t *f, const unsigned char *b, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (i == AEMP_BER_MAX_BYTES)
            return fail(f, AEMP_EPROTO, "BER length longer than %d bytes",
                        AEMP_BER_MAX_BYTES);
        /* no overflow: v <= max_len >> 7 here (checked below) */
        v = (v << 7) | (b[i] & 0x7Fu);
        if (!(b[i] & 0x80)) {
            if (v > f->max_len_)
                return fail(f, AEMP_ELIMIT,
                            "Storable frame of %llu bytes is longer than the limit of %zu",
                            (unsigned long long)v, f->max_len_);
            f->body_ = v;
            f->prefix_ = (uint8_t)(i + 1);
            return 1;
        }
        /* more groups follow: the length is at least v * 128 */
        if (v > f->max_len_ >> 7)
            return fail(f, AEMP_ELIMIT,
                        "Storable frame length prefix exceeds the limit of %zu", f->max_len_);
    }
    if (len >= AEMP_BER_MAX_BYTES)
        return fail(f, AEMP_EPROTO, "BER length longer than %d bytes", AEMP_BER_MAX_BYTES);
    return 0;
}

int aemp_ber_framer_next(aemp_ber_framer_t *f, const void *buf, size_t len,
                         size_t *start, size_t *end)
{
    *start = *end = 0;
    if (f->err_) return f->err_;
    if (len < f->prefix_ || (!buf && len)) return AEMP_EINVAL;
    const unsigned char *b = buf;
    if (!f->prefix_) {
        int r = read_prefix(f, b, len);
        if (r <= 0) return r;
    }
    if (len - f->prefix_ < f->body_) return 0;
    *start = f->prefix_;
    *end = f->prefix_ + (size_t)f->body_;
    f->prefix_ = 0;
    f->body_ = 0;
    return 1;
}
