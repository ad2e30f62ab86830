/*
 * framing_json.c - the json framing (PROTOCOL §4): JSON texts back to
 * back, whitespace between them skipped. The fast framing, and the one
 * every link of ours writes unless its peer insists on another.
 *
 * The usual message, [ID, ELEMENTS...] with a plain ID, is decoded
 * without making a value of ID (a port callback gets only the elements).
 * While texts arrive whole, next decodes each as it finds its end, so
 * the bytes are scanned once, and decode hands that result over; the
 * framer takes over for a text that is incomplete (it keeps its place
 * across reads), for anything the fast decoder declines, errors included
 * (the general decoder then gives the message), and after a big text (a
 * big text is usually cut by reads, and a decode attempt on its first
 * part would only scan it twice).
 */
#include "framing.h"

#include <assert.h>
#include <stdio.h>

/* Texts at least this long make the next text go to the framer first. */
#define BIG_TEXT (8 * 1024)

typedef struct json_in {
    aemp_framer_t framer;
    int big_text;         /* the last text was big: framer first */
    aemp__frame_ahead_t ahead; /* what next decoded for decode to hand over */
} json_in_t;

static_assert(sizeof(json_in_t) <= AEMP__FRAME_STATE_SIZE, "json_in_t fits the state");

#define ST(in) ((json_in_t *)(void *)(in)->state)

static int json_in_init(aemp__frame_in_t *in)
{
    json_in_t *s = ST(in);
    memset(s, 0, sizeof *s);
    aemp_framer_init(&s->framer, in->max_message, 0);
    return 0;
}

static void json_in_fini(aemp__frame_in_t *in)
{
    aemp__frame_ahead_drop(&ST(in)->ahead);
}

static int json_next(aemp__frame_in_t *in, const char *buf, size_t len, size_t *start,
                     size_t *end, const char **err)
{
    json_in_t *s = ST(in);
    if (!s->big_text && aemp__framer_idle(&s->framer)) {
        size_t used = 0;
        json_t *elems = aemp__json_decode_msg(buf, len, 0, &s->ahead.id, &s->ahead.idlen, &used,
                                              &in->recycle);
        /* the framer's length limit holds here too (counting leading
         * whitespace: at worst the framer then decides) */
        if (aemp__frame_ahead_keep(&s->ahead, in, elems, used, start, end))
            return AEMP__FRAME_FOUND;
    }
    int r = aemp_framer_next(&s->framer, buf, len, start, end);
    if (r < 0) {
        *err = aemp_framer_error(&s->framer);
        return AEMP__FRAME_ERROR;
    }
    if (r == 1) s->big_text = *end - *start >= BIG_TEXT;
    return r;
}

static int json_decode(aemp__frame_in_t *in, char *text, size_t len, aemp__msg_t *m, char *err,
                       size_t errlen)
{
    const char *id;
    size_t idlen;
    json_t *elems = aemp__frame_ahead_take(&ST(in)->ahead, &id, &idlen);
    if (!elems) {
        elems = aemp__json_decode_msg(text, len, 0, &id, &idlen, NULL, &in->recycle);
        if (!elems) {
            json_t *v = aemp_json_decode(text, len, 0, err, errlen);
            return v ? aemp__msg_from_value(v, m) : AEMP__MSG_BAD;
        }
    }
    /* the byte after the id is its closing quote, which nobody reads
     * again: a NUL there makes the id a C string without a copy */
    ((char *)id)[idlen] = '\0';
    return aemp__msg_decoded(m, id, idlen, elems);
}

static int json_encode(aemp__frame_out_t *out, aemp__buf_t *b, const char *id, size_t idlen,
                       const aemp__payload_t *pl)
{
    return aemp__payload_encode_cached(b, id, idlen, pl, &out->pack);
}

static int json_put_json(aemp__frame_out_t *out, aemp__buf_t *b, const char *p, size_t n)
{
    (void)out;
    return aemp__buf_append(b, p, n);
}

const aemp__framing_t aemp__framing_json = {
    .name = "json",
    .in_init = json_in_init,
    .in_fini = json_in_fini,
    .next = json_next,
    .decode = json_decode,
    .encode = json_encode,
    .put_json = json_put_json,
};
