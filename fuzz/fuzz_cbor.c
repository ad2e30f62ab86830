/*
 * fuzz_cbor.c - fuzz target for the CBOR codec and its stream framer. The
 * input is taken two ways: as one item, and as a stream of items.
 *
 * As an item: a failure has a code of its own kind and a whole message;
 * the decoder says "broken" (EPROTO, or a limit) exactly when the framer
 * does; a smaller depth or value limit only refuses more. What decodes is
 * checked against both framings (the differential part):
 *   - JSON: our JSON encoding of the value decodes back to the value as
 *     JSON carries it (reals to 15 digits, as JSON::XS writes them);
 *   - CBOR: our CBOR encoding decodes back to the value as a Perl node's
 *     CBOR::XS writes it (an integral real within 32 bits becomes an
 *     integer), and the second encoding is a fixed point, byte for byte;
 *   - the message path (id kept as bytes) agrees with the full decoder;
 *   - formats written straight to either framing (aemp_sendf) give the
 *     bytes of the value json_pack makes, or fail as it does, and the
 *     CBOR and JSON texts decode to the same message.
 *
 * As a stream: the items found when the bytes arrive at once, in two
 * pieces (cut where the input says) or one by one are the same, and each
 * item's bytes go through the decoder.
 */
#include "fuzz.h"

#include <math.h>
#include <stdarg.h>

#include "aemp.h"
#include "aemp_int.h"
#include "framing.h"

/* A scalar as a JSON peer receives it: reals as "%.15g" text reads. */
static json_t *cbor_json_scalar(const json_t *a)
{
    if (!json_is_real(a)) return json_incref((json_t *)a);
    char txt[64];
    snprintf(txt, sizeof txt, "%.15g", json_real_value(a)); /* the C locale */
    json_t *v = aemp_json_decode(txt, strlen(txt), 0, NULL, 0);
    FUZZ_CHECK(v != NULL);
    return v;
}

/* A scalar after a CBOR round trip: CBOR::XS writes an integral real
 * within 32 bits unsigned as an integer. */
static json_t *cbor_cbor_scalar(const json_t *a)
{
    if (json_is_real(a)) {
        double x = json_real_value(a);
        if (x >= 0 && x <= 4294967295.0 && x == (double)(uint32_t)x)
            return json_integer((json_int_t)(uint32_t)x);
    }
    return json_incref((json_t *)a);
}

static void cbor_check_json_path(const json_t *v)
{
    size_t n;
    char *text = aemp_json_encode(v, &n);
    FUZZ_CHECK(text != NULL);
    char err[AEMP_JSON_ERRMAX];
    json_t *back = aemp_json_decode(text, n, AEMP_JSON_DEPTH_LIMIT, err, sizeof err);
    if (!back) fprintf(stderr, "JSON re-decode failed: %s\n", err);
    FUZZ_CHECK(back != NULL);
    json_t *want = fuzz_json_map(v, cbor_json_scalar);
    FUZZ_CHECK(fuzz_json_same(want, back));
    json_decref(want);
    json_decref(back);
    free(text);
}

static void cbor_check_cbor_path(const json_t *v)
{
    size_t n2, n3;
    unsigned char *c2 = aemp_cbor_encode(v, &n2);
    FUZZ_CHECK(c2 != NULL);
    int code = 0;
    char err[AEMP_JSON_ERRMAX];
    json_t *v2 = aemp_cbor_decode(c2, n2, AEMP_CBOR_DEPTH_LIMIT, &code, err, sizeof err);
    if (!v2) fprintf(stderr, "CBOR re-decode failed: %s\n", err);
    FUZZ_CHECK(v2 != NULL);
    json_t *want = fuzz_json_map(v, cbor_cbor_scalar);
    FUZZ_CHECK(fuzz_json_same(want, v2));
    json_decref(want);
    unsigned char *c3 = aemp_cbor_encode(v2, &n3);
    FUZZ_CHECK(c3 != NULL);
    FUZZ_CHECK(n2 == n3 && !memcmp(c2, c3, n2));

    /* the message writer gives the same bytes for [id, elements...] */
    if (json_is_array(v2) && json_array_size(v2) && json_is_string(json_array_get(v2, 0))) {
        const json_t *idv = json_array_get(v2, 0);
        const char *id = json_string_value(idv);
        size_t idlen = json_string_length(idv);
        json_t *elems = json_array();
        for (size_t i = 1; i < json_array_size(v2); i++)
            json_array_append(elems, json_array_get(v2, i));
        aemp__buf_t b = {0};
        int rc = aemp__cbor_encode_msg(&b, id, idlen, elems);
        if (!memchr(id, 0, idlen) && (!idlen || (unsigned char)id[0] != 0xFF)) {
            FUZZ_CHECK(rc == 0);
            FUZZ_CHECK(b.len == n3 && !memcmp(b.data, c3, n3));
        }
        aemp__buf_free(&b);
        json_decref(elems);
    }
    free(c2);
    free(c3);
    json_decref(v2);
}

/* The message path: the same elements, or a decline. */
static void cbor_check_msg_path(const uint8_t *data, size_t size, const json_t *v)
{
    const char *id;
    size_t idlen, used = 0;
    json_t *m = aemp__cbor_decode_msg((const char *)data, size, 0, &id, &idlen, NULL, 0, NULL);
    if (m) {
        FUZZ_CHECK(json_is_array(v) && json_array_size(v) == json_array_size(m) + 1);
        const json_t *idv = json_array_get(v, 0);
        FUZZ_CHECK(json_string_length(idv) == idlen && !memcmp(json_string_value(idv), id, idlen));
        for (size_t i = 0; i < json_array_size(m); i++)
            FUZZ_CHECK(fuzz_json_same(json_array_get(m, i), json_array_get(v, i + 1)));
        json_decref(m);
    }
    json_t *m2 = aemp__cbor_decode_msg((const char *)data, size, 0, &id, &idlen, &used, 0, NULL);
    FUZZ_CHECK(!m2 == !m);
    if (m2) FUZZ_CHECK(used == size);
    json_decref(m2);
}

static void cbor_item(const uint8_t *data, size_t size)
{
    char err[AEMP_JSON_ERRMAX];
    int code = 0;
    json_t *v = aemp_cbor_decode(data, size, 0, &code, err, sizeof err);

    /* the framer's verdict on the same bytes */
    aemp_cbor_framer_t f;
    aemp_cbor_framer_init(&f, size ? size : 1, 0);
    size_t s, e;
    int fr = aemp_cbor_framer_next(&f, data, size, &s, &e);
    int whole = fr == 1 && e == size;
    aemp_cbor_framer_free(&f);

    if (!v) {
        if (!(code == AEMP_EPROTO || code == AEMP_EBADMSG || code == AEMP_ELIMIT)) {
            fprintf(stderr, "code %d err %s size %zu:", code, err, size);
            for (size_t i = 0; i < size && i < 64; i++) fprintf(stderr, " %02x", data[i]);
            fprintf(stderr, "\n");
        }
        FUZZ_CHECK(code == AEMP_EPROTO || code == AEMP_EBADMSG || code == AEMP_ELIMIT);
        FUZZ_CHECK(err[0] != 0);
        FUZZ_CHECK(strlen(err) < sizeof err - 1 || !"message cut off");
        /* broken exactly when the framer says so */
        FUZZ_CHECK((code == AEMP_EBADMSG) == whole || code == AEMP_ELIMIT);
        if (code == AEMP_ELIMIT && !whole) FUZZ_CHECK(fr < 0);
        return;
    }
    FUZZ_CHECK(whole);

    unsigned small = 1 + (unsigned)(size % 5);
    json_t *vs = aemp_cbor_decode(data, size, small, &code, NULL, 0);
    if (vs) {
        FUZZ_CHECK(fuzz_json_same(v, vs));
        json_decref(vs);
    } else {
        FUZZ_CHECK(code == AEMP_ELIMIT);
    }
    size_t limit = 1 + size % 7;
    json_t *vl = aemp_cbor_decode_max(data, size, 0, limit, &code, err, sizeof err);
    if (vl) {
        FUZZ_CHECK(fuzz_json_same(v, vl));
        json_decref(vl);
    } else {
        FUZZ_CHECK(code == AEMP_ELIMIT && strstr(err, "values") != NULL);
    }

    cbor_check_msg_path(data, size, v);
    cbor_check_json_path(v);
    cbor_check_cbor_path(v);

    /* a prefix is never a whole item */
    if (size > 1) {
        size_t cut = (size_t)(fuzz_seed(data, size) % (size - 1)) + 1;
        json_t *p = aemp_cbor_decode(data, cut, 0, &code, err, sizeof err);
        FUZZ_CHECK(!p && code == AEMP_EPROTO);
    }
    json_decref(v);
}

#define CBOR_MAX_ITEMS 64

typedef struct cbor_items {
    size_t end[CBOR_MAX_ITEMS];
    size_t n;
    int err;
} cbor_items_t;

/* Frames the stream, the bytes arriving up to cut, then the rest (or one
 * by one when step is set). */
static void cbor_frame_stream(const uint8_t *data, size_t size, size_t max_len, unsigned max_depth,
                         size_t cut, int step, cbor_items_t *out)
{
    aemp_cbor_framer_t f;
    aemp_cbor_framer_init(&f, max_len, max_depth);
    size_t region = 0, avail = 0;
    memset(out, 0, sizeof *out);
    while (out->n < CBOR_MAX_ITEMS) {
        size_t next = step ? avail + 1 : avail < cut ? cut : size;
        avail = next < size ? next : size;
        size_t s, e;
        int r = 0;
        while (out->n < CBOR_MAX_ITEMS &&
               (r = aemp_cbor_framer_next(&f, data + region, avail - region, &s, &e)) == 1) {
            FUZZ_CHECK(s == 0 && e >= 1 && e <= max_len && region + e <= avail);
            region += e;
            out->end[out->n++] = region;
        }
        if (out->n == CBOR_MAX_ITEMS) break;
        if (r < 0) {
            FUZZ_CHECK(r == AEMP_ELIMIT || r == AEMP_EPROTO);
            FUZZ_CHECK(aemp_cbor_framer_error(&f)[0] != 0);
            FUZZ_CHECK(aemp_cbor_framer_next(&f, data + region, avail - region, &s, &e) == r);
            out->err = r;
            break;
        }
        FUZZ_CHECK(r == 0);
        if (avail == size) break;
    }
    aemp_cbor_framer_free(&f);
}

static void cbor_stream(const uint8_t *data, size_t size)
{
    uint64_t seed = fuzz_seed(data, size);
    size_t max_len = (fuzz_next(&seed) & 1) ? AEMP_DEFAULT_MAX_MESSAGE : 1 + fuzz_next(&seed) % 4096;
    unsigned depth = (fuzz_next(&seed) & 1) ? 0 : 1 + (unsigned)(fuzz_next(&seed) % 40);
    size_t cut = size ? fuzz_next(&seed) % (size + 1) : 0;
    cbor_items_t whole, two, bytes;
    cbor_frame_stream(data, size, max_len, depth, size, 0, &whole);
    cbor_frame_stream(data, size, max_len, depth, cut, 0, &two);
    FUZZ_CHECK(whole.n == two.n && whole.err == two.err);
    FUZZ_CHECK(!memcmp(whole.end, two.end, whole.n * sizeof *whole.end));
    if (size <= 128) { /* one call per byte: kept small, it is the costly part */
        cbor_frame_stream(data, size, max_len, depth, 0, 1, &bytes);
        FUZZ_CHECK(whole.n == bytes.n && whole.err == bytes.err);
        FUZZ_CHECK(!memcmp(whole.end, bytes.end, whole.n * sizeof *whole.end));
    }
    size_t from = 0;
    for (size_t i = 0; i < whole.n; i++) {
        int code = 0;
        json_t *v = aemp_cbor_decode(data + from, whole.end[i] - from, depth, &code, NULL, 0);
        /* a framed item is well formed: only its value can fail */
        FUZZ_CHECK(v || code == AEMP_EBADMSG || code == AEMP_ELIMIT);
        /* the fast path finds the same end in the rest of the stream */
        const char *id;
        size_t idlen, used = 0;
        json_t *m = aemp__cbor_decode_msg((const char *)data + from, size - from, depth, &id,
                                          &idlen, &used, 0, NULL);
        if (m) FUZZ_CHECK(v && from + used == whole.end[i]);
        json_decref(m);
        json_decref(v);
        from = whole.end[i];
    }
}

/* The cbor framing's ops as a link drives them (framing_cbor.c): the
 * stream fed up to `cut` first, then whole. Records each message's end
 * and outcome (AEMP__MSG_*, or 9 for a framing error); stops at a
 * failure as the link does. */
typedef struct {
    size_t n, end[CBOR_MAX_ITEMS];
    int what[CBOR_MAX_ITEMS];
} ops_run_t;

static void cbor_ops_run(const uint8_t *data, size_t size, size_t max_len, size_t cut,
                         ops_run_t *out)
{
    aemp__frame_in_t in = {0};
    memset(out, 0, sizeof *out);
    if (aemp__frame_in_init(&in, &aemp__framing_cbor, max_len)) return;
    char *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    size_t region = 0;
    for (int pass = 0; pass < 2 && out->n < CBOR_MAX_ITEMS; pass++) {
        size_t avail = pass ? size : cut;
        for (;;) {
            size_t st = 0, e = 0;
            const char *why = NULL;
            int r = in.ops->next(&in, buf + region, avail - region, &st, &e, &why);
            if (r == AEMP__FRAME_ERROR) {
                FUZZ_CHECK(why && *why);
                out->what[out->n] = 9;
                out->end[out->n++] = region;
                goto done;
            }
            if (r == AEMP__FRAME_MORE) {
                FUZZ_CHECK(e == 0); /* no whitespace in CBOR */
                break;
            }
            FUZZ_CHECK(r == AEMP__FRAME_FOUND && st == 0 && e >= 1 && e <= max_len &&
                       region + e <= avail);
            aemp__msg_t m = {0};
            char err[AEMP_JSON_ERRMAX + 64];
            int d = in.ops->decode(&in, buf + region, e, &m, err, sizeof err);
            if (d == AEMP__MSG_OK) FUZZ_CHECK(m.id && m.id[m.idlen] == 0 && json_is_array(m.elems));
            if (d == AEMP__MSG_DROP || d == AEMP__MSG_BAD) FUZZ_CHECK(err[0] != 0);
            aemp__frame_msg_done(&in, &m);
            region += e;
            out->what[out->n] = d;
            out->end[out->n++] = region;
            if (d == AEMP__MSG_BAD || out->n == CBOR_MAX_ITEMS) goto done;
        }
    }
done:
    aemp__frame_in_free(&in);
    free(buf);
}

/* The framing ops: the same messages and outcomes however the input is
 * cut, and the same ends as the framer alone. */
static void cbor_ops(const uint8_t *data, size_t size)
{
    uint64_t seed = fuzz_seed(data, size) ^ 0x5bd1e995u;
    size_t max_len = (fuzz_next(&seed) & 1) ? AEMP_DEFAULT_MAX_MESSAGE : 1 + fuzz_next(&seed) % 4096;
    size_t cut = size ? fuzz_next(&seed) % (size + 1) : 0;
    static ops_run_t whole, two;
    cbor_ops_run(data, size, max_len, size, &whole);
    cbor_ops_run(data, size, max_len, cut, &two);
    FUZZ_CHECK(whole.n == two.n);
    FUZZ_CHECK(!memcmp(whole.end, two.end, whole.n * sizeof *whole.end));
    FUZZ_CHECK(!memcmp(whole.what, two.what, whole.n * sizeof *whole.what));
    cbor_items_t fr;
    cbor_frame_stream(data, size, max_len, 0, size, 0, &fr);
    for (size_t i = 0; i < whole.n && i < fr.n; i++)
        if (whole.what[i] != 9) FUZZ_CHECK(whole.end[i] == fr.end[i]);
}

/* Formats written straight to the wire (pack.c), both framings, against
 * the value json_pack makes of the same arguments: the CBOR writer gives
 * the message writer's bytes for that value, or fails as it does; the
 * JSON writer fails exactly when the CBOR one does, and for formats
 * without reals both texts decode to the same message. The id, strings
 * and integers are pieces of the input; the format caches live across
 * inputs, as a link's do. */
static aemp__pack_cache_t *fmt_cache[2];

static void cbor_format_one(int cached, const char *id, size_t idlen, int has_real,
                            const char *fmt, ...)
{
    va_list ap, aq, ar;
    va_start(ap, fmt);
    va_copy(aq, ap);
    va_copy(ar, ap);
    aemp__buf_t direct = {0}, via = {0}, text = {0};
    aemp__payload_t pl = {.fmt = fmt, .ap = &ap};
    int rc = aemp__payload_encode_cbor(&direct, id, idlen, &pl, cached ? &fmt_cache[1] : NULL);
    aemp__payload_t pj = {.fmt = fmt, .ap = &aq};
    int rj = aemp__payload_encode_cached(&text, id, idlen, &pj, cached ? &fmt_cache[0] : NULL);
    json_t *v = json_vpack_ex(NULL, 0, fmt, ar);
    int rv = v ? aemp__cbor_encode_msg(&via, id, idlen, v) : AEMP_EINVAL;
    FUZZ_CHECK(rc == rv);
    FUZZ_CHECK(rc == rj);
    if (!rc) {
        FUZZ_CHECK(direct.len == via.len && !memcmp(direct.data, via.data, via.len));
        if (!has_real) {
            json_t *a = aemp_cbor_decode(direct.data, direct.len, 0, NULL, NULL, 0);
            json_t *b = aemp_json_decode(text.data, text.len, 0, NULL, 0);
            FUZZ_CHECK(a && b && fuzz_json_same(a, b));
            json_decref(a);
            json_decref(b);
        }
    } else {
        FUZZ_CHECK(direct.len == 0 && text.len == 0);
    }
    json_decref(v);
    aemp__buf_free(&direct);
    aemp__buf_free(&via);
    aemp__buf_free(&text);
    va_end(ar);
    va_end(aq);
    va_end(ap);
}

/* An integer of the input, now and then one of the edges. */
static json_int_t fuzz_int(uint64_t *seed)
{
    static const json_int_t edge[] = {0, -1, 23, 24, -24, -25, 255, 256, 65535, 65536,
                                      4294967295, 4294967296, INT64_MAX, INT64_MIN};
    uint64_t x = fuzz_next(seed);
    if (x % 3 == 0) return edge[(x >> 8) % (sizeof edge / sizeof edge[0])];
    return (json_int_t)(fuzz_next(seed) >> (x % 64));
}

static void cbor_formats(const uint8_t *data, size_t size)
{
    uint64_t seed = fuzz_seed(data, size) ^ 0x9e3779b97f4a7c15ull;
    /* three pieces of the input: the id and two strings */
    size_t at[4] = {0, 0, 0, size};
    for (int i = 1; i < 3; i++) at[i] = size ? fuzz_next(&seed) % (size + 1) : 0;
    if (at[1] > at[2]) {
        size_t t = at[1];
        at[1] = at[2];
        at[2] = t;
    }
    const char *p = (const char *)data;
    const char *id = size ? p : "";
    size_t idlen = at[1], l1 = at[2] - at[1], l2 = at[3] - at[2];
    const char *s1 = size ? p + at[1] : "", *s2 = size ? p + at[2] : "";
    json_int_t i1 = fuzz_int(&seed), i2 = fuzz_int(&seed);
    int cached = (int)(fuzz_next(&seed) & 1);
    double x = (double)i1 / (double)(i2 ? i2 : 1);
    char *z = fuzz_strndup(data + at[2], l2); /* s2 up to its first NUL */
    json_t *o = aemp_cbor_decode(data, size, 0, NULL, NULL, 0);
    cbor_format_one(cached, id, idlen, 0, "[s%I]", s1, l1, i1);
    cbor_format_one(cached, id, idlen, 0, "[s%[s%Ib]n[]s]", s1, l1, s2, l2, i2, (int)(i1 & 1), z);
    cbor_format_one(cached, id, idlen, 1, "[s#fIs?]", s2, (int)(l2 % 70), x, i1,
                    (i1 & 2) ? z : NULL);
    /* an o reference is taken over by each of the three writers */
    json_incref(o);
    json_incref(o);
    cbor_format_one(cached, id, idlen, 1, "[iO[o?]]", (int)i2, o ? o : json_null(),
                    o ? json_incref(o) : NULL);
    json_decref(o);
    free(z);
}

FUZZ_TARGET(cbor)
{
    cbor_item(data, size);
    cbor_stream(data, size);
    cbor_ops(data, size);
    cbor_formats(data, size);
    return 0;
}
