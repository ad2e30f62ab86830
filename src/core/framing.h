/*
 * framing.h - a framing of the data phase as an ops table: how the
 * messages of a link are cut from its byte stream, decoded, and written
 * (PROTOCOL §4, §5; PROTOCOL-1.md). The link (src/node/link.c) holds one
 * reading state and one writing state, each bound to the framing its
 * direction chose in the handshake, and calls only through the ops: it
 * does not know which framing it carries.
 *
 * The framings of today: aemp__framing_json (framing_json.c),
 * aemp__framing_storable (framing_storable.c) and aemp__framing_cbor
 * (framing_cbor.c, protocol 1 only). Each is sans-I/O and allocates only
 * what its values need (cbor its framer too, while an item is being
 * framed: an idle link holds none).
 *
 * Adding one: a file src/core/framing_NAME.c defining
 * `const aemp__framing_t aemp__framing_NAME = {"NAME", ...}` with the
 * ops below (its reading state in aemp__frame_in_t.state, or allocated
 * by in_init when bigger; put_json through aemp__framing_each_json), its
 * declaration below, and its address in a dialect's framing list
 * (aemp__dialect_t.framings): the greeting offers the names in that
 * order, and the handshake profile's rule picks one per direction.
 */
#ifndef AEMP_FRAMING_H
#define AEMP_FRAMING_H

#include "aemp_int.h"

#include <stdalign.h>

/* One message as decoded: its target id (idlen bytes, NUL-terminated,
 * valid until aemp__frame_msg_done) and the elements after it (a new
 * reference to an array). Or, when the decoded value is not a message
 * (not an array with a string first), that value alone in `value`. */
typedef struct aemp__msg {
    const char *id;
    size_t idlen;
    json_t *elems;
    json_t *value;   /* AEMP__MSG_VALUE: the whole value (new reference) */
    json_t *hold_;   /* holds id when it is a value's string */
    int recycle_;    /* elems go back to the reading state's recycle */
} aemp__msg_t;

/* The reading state of one direction of a link. The framing keeps what
 * it needs in `state` (checked to fit by each framing file), or in
 * memory in_init allocates and in_fini frees. Every link holds one: the
 * size is what the largest of today's needs (json's, with its framer),
 * not more. */
#define AEMP__FRAME_STATE_SIZE 136
typedef struct aemp__frame_in {
    const struct aemp__framing *ops;
    size_t max_message;      /* longest message accepted (0 before in_init) */
    aemp__recycle_t recycle; /* values for the next message (see aemp_int.h) */
    alignas(max_align_t) unsigned char state[AEMP__FRAME_STATE_SIZE];
} aemp__frame_in_t;

/* The writing state of one direction: a jansson format's compiled form
 * (aemp__payload_encode_cached), for framings that write formats. */
typedef struct aemp__frame_out {
    const struct aemp__framing *ops;
    aemp__pack_cache_t *pack;
} aemp__frame_out_t;

/* What next returns. */
enum { AEMP__FRAME_ERROR = -1, AEMP__FRAME_MORE = 0, AEMP__FRAME_FOUND = 1 };
/* What decode returns. */
enum {
    AEMP__MSG_BAD = -1, /* the stream is broken: the link fails with err */
    AEMP__MSG_DROP = 0, /* this message is dropped: err says why (a warning) */
    AEMP__MSG_OK = 1,   /* id and elems are set */
    AEMP__MSG_VALUE = 2 /* value is set: not a message, the link decides */
};

typedef struct aemp__framing {
    /* the name greetings carry ("json", "storable", "cbor") */
    const char *name;
    /* Prepares in (ops and max_message set by the caller) for the first
     * message; 0 or AEMP_ENOMEM. in_fini releases what in_init took and
     * what a next left for its decode. */
    int (*in_init)(aemp__frame_in_t *in);
    void (*in_fini)(aemp__frame_in_t *in);
    /* Finds the next message in buf[0..len), the caller's unconsumed
     * input (the whole of it on every call, as for aemp_framer_next).
     * AEMP__FRAME_FOUND: buf[*start .. *end) is the message, decode it
     * next and then drop *end bytes; AEMP__FRAME_MORE: need more bytes,
     * *end leading bytes may be dropped (whitespace); AEMP__FRAME_ERROR:
     * *err says why (valid until the next call on in), the link fails.
     * A framing may decode as it scans (the JSON fast path): decode then
     * hands over that result. */
    int (*next)(aemp__frame_in_t *in, const char *buf, size_t len, size_t *start, size_t *end,
                const char **err);
    /* Decodes the message next just found, text[0..len) (writable: an id
     * may be NUL-terminated in place), into *m (see aemp__msg_t and the
     * AEMP__MSG_ codes); err gets the reason of BAD and DROP. Release m
     * with aemp__frame_msg_done after delivering it. */
    int (*decode)(aemp__frame_in_t *in, char *text, size_t len, aemp__msg_t *m, char *err,
                  size_t errlen);
    /* Appends the message [id, ELEMENTS...] (id: idlen bytes; the
     * payload is consumed, see aemp__payload_t) to b. 0, AEMP_ENOMEM or
     * AEMP_EINVAL: then nothing was appended. */
    int (*encode)(aemp__frame_out_t *out, aemp__buf_t *b, const char *id, size_t idlen,
                  const aemp__payload_t *pl);
    /* Appends messages already encoded as JSON texts (p[0..n), what a
     * peer queued before a link was up) in this framing. 0, AEMP_ENOMEM
     * or AEMP_EINVAL (the texts before the bad one stay appended). */
    int (*put_json)(aemp__frame_out_t *out, aemp__buf_t *b, const char *p, size_t n);
} aemp__framing_t;

extern const aemp__framing_t aemp__framing_json, aemp__framing_storable, aemp__framing_cbor;

/* The framing named name (NUL-terminated) in list (NULL-terminated), or
 * NULL. */
const aemp__framing_t *aemp__framing_find(const aemp__framing_t *const *list, const char *name);

/* 1 when names (NUL-terminated) is a comma list of one or more names of
 * framings in list, each once and no longer than a greeting may carry
 * (a link offers at most 127 bytes of them), else 0. */
int aemp__framing_list_ok(const aemp__framing_t *const *list, const char *names);

/* For tests: whether the cbor reading state in holds a framer (it does
 * only while an item is begun and incomplete). */
int aemp__framing_cbor_framer_held(const aemp__frame_in_t *in);

/* Binds in to framing f: 0 or AEMP_ENOMEM. aemp__frame_in_free releases
 * it (and accepts an unbound one). */
int aemp__frame_in_init(aemp__frame_in_t *in, const aemp__framing_t *f, size_t max_message);
void aemp__frame_in_free(aemp__frame_in_t *in);

/* Releases what a decoded message holds; its elems go back to in's
 * recycle when the framing made them for it. */
void aemp__frame_msg_done(aemp__frame_in_t *in, aemp__msg_t *m);

/* For decoders that make a whole value: splits v (taken over) into *m.
 * Returns AEMP__MSG_OK, or AEMP__MSG_VALUE when v is not an array with
 * a string first. */
int aemp__msg_from_value(json_t *v, aemp__msg_t *m);

/* A message a framing's fast decoder made while next looked for its end
 * (json, cbor), kept for decode to hand over: its elements and its id,
 * which points into the caller's bytes. */
typedef struct aemp__frame_ahead {
    json_t *elems;
    const char *id;
    size_t idlen;
} aemp__frame_ahead_t;

/* next's side: elems (NULL: the fast decoder declined) made of the first
 * `used` bytes, with a->id and a->idlen set by it. Kept, with the item at
 * [0, used), when within max_message: 1; else dropped (the framer
 * decides): 0. */
static inline int aemp__frame_ahead_keep(aemp__frame_ahead_t *a, const aemp__frame_in_t *in,
                                         json_t *elems, size_t used, size_t *start, size_t *end)
{
    if (!elems || used > in->max_message) {
        json_decref(elems);
        return 0;
    }
    a->elems = elems;
    *start = 0;
    *end = used;
    return 1;
}

/* decode's side: the elements next kept (taken over; *id and *idlen
 * set), or NULL. */
static inline json_t *aemp__frame_ahead_take(aemp__frame_ahead_t *a, const char **id, size_t *idlen)
{
    json_t *elems = a->elems;
    a->elems = NULL;
    *id = a->id;
    *idlen = a->idlen;
    return elems;
}

/* in_fini's side: what next kept and decode did not take goes. */
static inline void aemp__frame_ahead_drop(aemp__frame_ahead_t *a)
{
    json_decref(a->elems);
    a->elems = NULL;
}

/* A decoded message [ID, ELEMENTS...] into *m: id a C string of idlen
 * bytes, elems (taken over) made for in's recycle. AEMP__MSG_OK. */
static inline int aemp__msg_decoded(aemp__msg_t *m, const char *id, size_t idlen, json_t *elems)
{
    m->id = id;
    m->idlen = idlen;
    m->elems = elems;
    m->recycle_ = 1;
    return AEMP__MSG_OK;
}

/* For put_json of framings other than JSON: calls fn with each JSON
 * text's value (borrowed) in turn, stopping at the first nonzero return
 * (returned) or a text that does not decode (AEMP_EINVAL). */
int aemp__framing_each_json(const char *p, size_t n, int (*fn)(void *ctx, const json_t *v),
                            void *ctx);

#endif
