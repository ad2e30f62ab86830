/*
 * framing_cbor.c - the cbor framing of protocol 1 (PROTOCOL-1.md, as
 * AnyEvent::MP 2.x writes it): CBOR items back to back, one message (an
 * array) per item, nothing between them. The codec is cbor.c.
 *
 * As in the json framing, the usual message [ID, ELEMENTS...] with an
 * ASCII ID is decoded without making a value of ID, and while items
 * arrive whole next decodes each as it finds its end (one scan) and
 * decode hands that result over; the CBOR framer takes over for an item
 * that is incomplete (it keeps its place across reads), for anything
 * the fast decoder declines, and after a big item. The full decoder then
 * gives the message or says why not: a value JSON cannot carry drops
 * that one message with a warning (the items around it are intact); a
 * malformed item, or one over the limits, fails the link.
 *
 * Limits: an item longer than the node's max_message fails the link
 * (the framer knows as soon as a length says so); nesting deeper than
 * AEMP_JSON_MAX_DEPTH too, as for JSON texts; and an item makes at most
 * max_message values (every value takes a byte at least, so this bound
 * refuses nothing the length allows; it only keeps the full decoder's
 * own default from refusing a long array that JSON framing would take).
 */
#include "framing.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

/* Items at least this long make the next item go to the framer first. */
#define BIG_ITEM (8 * 1024)

/* What a link holds between reads. The usual message arrives whole and
 * the fast decoder takes it in one scan: that needs no framer, so an
 * idle link keeps only this small part (in in->state); the framer, a few
 * hundred bytes, is allocated when an item must be framed (incomplete,
 * declined by the fast decoder, or after a big item) and freed as soon
 * as it has found that item's end. */
typedef struct cbor_in {
    aemp_cbor_framer_t *framer; /* NULL: idle, no item begun */
    int big_item;        /* the last item was big: framer first */
    aemp__frame_ahead_t ahead; /* what next decoded for decode to hand over */
    char *idbuf;         /* the id NUL-terminated, for a message of the id alone */
    size_t idcap;
} cbor_in_t;

static_assert(sizeof(cbor_in_t) <= AEMP__FRAME_STATE_SIZE, "cbor_in_t fits the state");

#define ST(in) ((cbor_in_t *)(void *)(in)->state)

static int cbor_in_init(aemp__frame_in_t *in)
{
    memset(ST(in), 0, sizeof(cbor_in_t));
    return 0;
}

static void framer_release(cbor_in_t *s)
{
    if (!s->framer) return;
    aemp_cbor_framer_free(s->framer);
    free(s->framer);
    s->framer = NULL;
}

static void cbor_in_fini(aemp__frame_in_t *in)
{
    cbor_in_t *s = ST(in);
    aemp__frame_ahead_drop(&s->ahead);
    framer_release(s);
    free(s->idbuf);
    s->idbuf = NULL;
    s->idcap = 0;
}

int aemp__framing_cbor_framer_held(const aemp__frame_in_t *in)
{
    return ST(in)->framer != NULL;
}

/* The most values one message may make: see the top. */
static size_t max_values(const aemp__frame_in_t *in)
{
    return in->max_message < AEMP_CBOR_VALUES_LIMIT ? in->max_message : AEMP_CBOR_VALUES_LIMIT;
}

static int cbor_next(aemp__frame_in_t *in, const char *buf, size_t len, size_t *start,
                     size_t *end, const char **err)
{
    cbor_in_t *s = ST(in);
    if (!s->big_item && !s->framer) {
        size_t used = 0;
        json_t *elems = aemp__cbor_decode_msg(buf, len, 0, &s->ahead.id, &s->ahead.idlen, &used,
                                              max_values(in), &in->recycle);
        if (aemp__frame_ahead_keep(&s->ahead, in, elems, used, start, end))
            return AEMP__FRAME_FOUND;
    }
    if (!s->framer) {
        if (!(s->framer = malloc(sizeof *s->framer))) {
            *err = "out of memory";
            return AEMP__FRAME_ERROR;
        }
        aemp_cbor_framer_init(s->framer, in->max_message, 0);
    }
    int r = aemp_cbor_framer_next(s->framer, buf, len, start, end);
    if (r < 0) {
        *err = aemp_cbor_framer_error(s->framer);
        return AEMP__FRAME_ERROR;
    }
    if (r == 1) s->big_item = *end - *start >= BIG_ITEM;
    /* no item begun (this one is whole, or nothing came): the next one
     * starts afresh, and an idle link holds no framer */
    if (r == 1 || aemp__cbor_framer_idle(s->framer)) framer_release(s);
    return r;
}

static int cbor_decode(aemp__frame_in_t *in, char *text, size_t len, aemp__msg_t *m, char *err,
                       size_t errlen)
{
    cbor_in_t *s = ST(in);
    const char *id;
    size_t idlen;
    json_t *elems = aemp__frame_ahead_take(&s->ahead, &id, &idlen);
    if (!elems) {
        elems = aemp__cbor_decode_msg(text, len, 0, &id, &idlen, NULL, max_values(in),
                                      &in->recycle);
        if (!elems) {
            int code = 0;
            char eb[AEMP_JSON_ERRMAX];
            json_t *v = aemp_cbor_decode_max(text, len, 0, max_values(in), &code, eb, sizeof eb);
            if (v) return aemp__msg_from_value(v, m);
            if (code == AEMP_EBADMSG) {
                snprintf(err, errlen, "CBOR message dropped (%s)", eb);
                return AEMP__MSG_DROP;
            }
            snprintf(err, errlen, "%s", eb);
            return AEMP__MSG_BAD;
        }
    }
    if (json_array_size(elems)) {
        /* the byte after the id is the head of the first element, which
         * is decoded already and read by nobody again: a NUL there makes
         * the id a C string without a copy (as the json framing does
         * with the closing quote) */
        ((char *)id)[idlen] = '\0';
    } else {
        /* [ID] alone: the byte after the id may be the next item's */
        if (idlen >= s->idcap) {
            size_t cap = idlen < 56 ? 64 : idlen + 1;
            char *nb = realloc(s->idbuf, cap);
            if (!nb) {
                json_decref(elems);
                snprintf(err, errlen, "out of memory");
                return AEMP__MSG_BAD;
            }
            s->idbuf = nb;
            s->idcap = cap;
        }
        memcpy(s->idbuf, id, idlen);
        s->idbuf[idlen] = '\0';
        id = s->idbuf;
    }
    return aemp__msg_decoded(m, id, idlen, elems);
}

static int cbor_encode(aemp__frame_out_t *out, aemp__buf_t *b, const char *id, size_t idlen,
                       const aemp__payload_t *pl)
{
    return aemp__payload_encode_cbor(b, id, idlen, pl, &out->pack);
}

/* Appends the message v (a whole message value, borrowed) as an item. */
static int put_value(void *b, const json_t *v)
{
    return aemp__cbor_encode_buf(b, v);
}

/* texts encoded before the link chose cbor: each becomes an item */
static int cbor_put_json(aemp__frame_out_t *out, aemp__buf_t *b, const char *p, size_t n)
{
    (void)out;
    return aemp__framing_each_json(p, n, put_value, b);
}

const aemp__framing_t aemp__framing_cbor = {
    .name = "cbor",
    .in_init = cbor_in_init,
    .in_fini = cbor_in_fini,
    .next = cbor_next,
    .decode = cbor_decode,
    .encode = cbor_encode,
    .put_json = cbor_put_json,
};
