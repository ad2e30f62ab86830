/*
 * framing_storable.c - the storable framing (PROTOCOL §5): each message
 * a BER length and a Storable image (storable.c, ber.c). Every message
 * is decoded and encoded as a whole value, which only peers that insist
 * on this framing pay for. A broken image fails the link; a message JSON
 * cannot carry (a reference to a scalar, a blessed object...) is dropped
 * with a warning.
 */
#include "framing.h"

#include <assert.h>
#include <stdio.h>

static_assert(sizeof(aemp_ber_framer_t) <= AEMP__FRAME_STATE_SIZE, "the BER framer fits the state");

#define BER(in) ((aemp_ber_framer_t *)(void *)(in)->state)

static int storable_in_init(aemp__frame_in_t *in)
{
    aemp_ber_framer_init(BER(in), in->max_message);
    return 0;
}

static void storable_in_fini(aemp__frame_in_t *in)
{
    (void)in;
}

static int storable_next(aemp__frame_in_t *in, const char *buf, size_t len, size_t *start,
                         size_t *end, const char **err)
{
    int r = aemp_ber_framer_next(BER(in), buf, len, start, end);
    if (r < 0) {
        *err = aemp_ber_framer_error(BER(in));
        return AEMP__FRAME_ERROR;
    }
    if (r == 0) *end = 0;
    return r;
}

static int storable_decode(aemp__frame_in_t *in, char *text, size_t len, aemp__msg_t *m,
                           char *err, size_t errlen)
{
    int code = 0;
    char eb[128];
    (void)in;
    json_t *v = aemp_storable_decode(text, len, 0, &code, eb, sizeof eb);
    if (v) return aemp__msg_from_value(v, m);
    if (code == AEMP_EBADMSG) {
        snprintf(err, errlen, "Storable message dropped (%s)", eb);
        return AEMP__MSG_DROP;
    }
    snprintf(err, errlen, "%s", eb);
    return AEMP__MSG_BAD;
}

/* Appends the message v (a whole message value, borrowed) as a frame. */
static int put_value(void *b, const json_t *v)
{
    size_t len;
    void *f = aemp_storable_encode_frame(v, &len);
    if (!f) return AEMP_EINVAL;
    int rc = aemp__buf_append(b, f, len);
    free(f);
    return rc;
}

static int storable_encode(aemp__frame_out_t *out, aemp__buf_t *b, const char *id, size_t idlen,
                           const aemp__payload_t *pl)
{
    (void)out;
    json_t *elems = aemp__payload_value(pl), *idv = json_stringn(id, idlen);
    int rc = elems && idv && !json_array_insert_new(elems, 0, idv) ? put_value(b, elems)
                                                                   : AEMP_EINVAL;
    if (!elems) json_decref(idv);
    json_decref(elems);
    return rc;
}

/* texts encoded before the link chose storable: each becomes a frame */
static int storable_put_json(aemp__frame_out_t *out, aemp__buf_t *b, const char *p, size_t n)
{
    (void)out;
    return aemp__framing_each_json(p, n, put_value, b);
}

const aemp__framing_t aemp__framing_storable = {
    .name = "storable",
    .in_init = storable_in_init,
    .in_fini = storable_in_fini,
    .next = storable_next,
    .decode = storable_decode,
    .encode = storable_encode,
    .put_json = storable_put_json,
};
