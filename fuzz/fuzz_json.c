/*
 * fuzz_json.c - fuzz target for the JSON decoder and encoder. The input
 * is one JSON text as a peer would send it. Whatever decodes must encode,
 * and the encoding must decode again to the same value. "The same" allows
 * exactly what the Perl-compatible writer changes on purpose: a real is
 * written with 15 significant digits, so it comes back as the number
 * those digits denote (an integer when they have no point or exponent,
 * a raw number when they overflow a double). A second encoding must then
 * be a fixed point. A decode with a smaller depth limit must either fail
 * or agree with the default one.
 *
 * The same input also goes through the links' message path
 * (aemp__json_decode_msg): as one text, it must give exactly what the
 * full decoder gives without the first element, never accept what the
 * full decoder refuses, and decline only what its contract lets it
 * decline; as a stream of texts, decoded one after the other the way a
 * link does it (values handed back for reuse, some kept as a callback
 * would keep them), each text must end where the framer ends it and
 * decode as the full decoder decodes it, and no kept value may change.
 */
#include "fuzz.h"

#include <math.h>

#include "aemp.h"
#include "aemp_int.h"

/* The number the 15-digit form of d stands for, and that form. */
static double json15(double d, char *txt, size_t n)
{
    snprintf(txt, n, "%.15g", d);
    return strtod(txt, NULL);
}

static int json_equiv(const json_t *a, const json_t *b)
{
    const char *raw;
    switch (json_typeof(a)) {
    case JSON_REAL: {
        char txt[64];
        double want = json15(json_real_value(a), txt, sizeof txt);
        if (json_is_real(b)) return json_real_value(b) == want;
        if (json_is_integer(b)) return !strpbrk(txt, ".e") && (double)json_integer_value(b) == want;
        if (aemp_json_is_raw_number(b, &raw)) return isinf(want) && !strcmp(raw, txt);
        return 0;
    }
    case JSON_INTEGER:
        return json_is_integer(b) && json_integer_value(a) == json_integer_value(b);
    case JSON_STRING:
        return json_is_string(b) && json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (!json_is_array(b) || json_array_size(b) != n) return 0;
        for (size_t i = 0; i < n; i++)
            if (!json_equiv(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    }
    case JSON_OBJECT: {
        if (!json_is_object(b) || json_object_size(a) != json_object_size(b)) return 0;
        for (void *it = json_object_iter((json_t *)a); it;
             it = json_object_iter_next((json_t *)a, it)) {
            json_t *bv = json_object_getn(b, json_object_iter_key(it),
                                          json_object_iter_key_len(it));
            if (!bv || !json_equiv(json_object_iter_value(it), bv)) return 0;
        }
        return 1;
    }
    default:
        return json_typeof(a) == json_typeof(b);
    }
}

/* Is v the message [id, elements...]? */
static int msg_matches(const json_t *v, const char *id, size_t idlen, const json_t *elems)
{
    if (!json_is_array(v) || json_array_size(v) != json_array_size(elems) + 1) return 0;
    const json_t *first = json_array_get(v, 0);
    if (!json_is_string(first) || json_string_length(first) != idlen ||
        memcmp(json_string_value(first), id, idlen))
        return 0;
    for (size_t i = 0; i < json_array_size(elems); i++)
        if (!fuzz_json_same(json_array_get(v, i + 1), json_array_get(elems, i))) return 0;
    return 1;
}

/* Does the text start like a message whose id the fast path takes: '['
 * then a string of printable ASCII without escapes? */
static int msg_plain_id(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
    if (i >= n || p[i++] != '[') return 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
    if (i >= n || p[i++] != '"') return 0;
    for (; i < n && p[i] != '"'; i++)
        if (p[i] < 0x20 || p[i] >= 0x80 || p[i] == '\\') return 0;
    return i < n;
}

static void msg_whole(const uint8_t *data, size_t size, const json_t *full)
{
    const char *id = NULL;
    size_t idlen = 0;
    json_t *e = aemp__json_decode_msg((const char *)data, size, 0, &id, &idlen, NULL, NULL);
    if (e) {
        FUZZ_CHECK(full != NULL); /* never more than the full decoder */
        FUZZ_CHECK(msg_matches(full, id, idlen, e));
        json_decref(e);
    } else if (full && json_is_array(full) && json_is_string(json_array_get(full, 0))) {
        /* declined: only for an id the contract leaves to the full
         * decoder */
        FUZZ_CHECK(!msg_plain_id(data, size));
    }
}

/* Decodes the input as a stream of messages, as a link does. */
static void msg_stream(const uint8_t *data, size_t size)
{
    aemp__recycle_t rc;
    memset(&rc, 0, sizeof rc);
    json_t *kept = json_array(), *copies = json_array();
    size_t off = 0;
    uint64_t seed = fuzz_seed(data, size);
    while (off < size) {
        const char *id = NULL;
        size_t idlen = 0, used = 0;
        const uint8_t *p = data + off;
        size_t n = size - off;
        json_t *e = aemp__json_decode_msg((const char *)p, n, 0, &id, &idlen, &used, &rc);
        /* where the framer ends the same text */
        aemp_framer_t f;
        aemp_framer_init(&f, 0, 0);
        size_t st = 0, en = 0;
        int fr = aemp_framer_next(&f, (const char *)p, n, &st, &en);
        if (!e) {
            if (fr != 1) break;
            off += en; /* the link hands this one to the framer */
            continue;
        }
        FUZZ_CHECK(used > 0 && used <= n);
        FUZZ_CHECK(fr == 1 && en == used);
        json_t *full = aemp_json_decode((const char *)p, used, 0, NULL, 0);
        FUZZ_CHECK(full && msg_matches(full, id, idlen, e));
        json_decref(full);
        /* a callback keeps some elements, or the whole array */
        uint64_t r = fuzz_next(&seed);
        json_t *keep = NULL;
        if ((r & 3) == 0 && json_array_size(e))
            keep = json_array_get(e, (r >> 8) % json_array_size(e));
        else if ((r & 7) == 1)
            keep = e;
        if (keep) {
            /* its text, not json_deep_copy(): that loses keys with a NUL */
            size_t tl = 0;
            char *text = aemp_json_encode(keep, &tl);
            FUZZ_CHECK(text != NULL);
            json_array_append(kept, keep);
            json_array_append_new(copies, json_stringn_nocheck(text, tl));
            free(text);
        }
        aemp__recycle_put(&rc, e);
        off += used;
    }
    /* what was kept was never reused */
    FUZZ_CHECK(json_array_size(kept) == json_array_size(copies));
    for (size_t i = 0; i < json_array_size(kept); i++) {
        size_t tl = 0;
        char *text = aemp_json_encode(json_array_get(kept, i), &tl);
        const json_t *was = json_array_get(copies, i);
        FUZZ_CHECK(text && tl == json_string_length(was) &&
                   !memcmp(text, json_string_value(was), tl));
        free(text);
    }
    json_decref(kept);
    json_decref(copies);
    aemp__recycle_free(&rc);
}

FUZZ_TARGET(json)
{
    char err[AEMP_JSON_ERRMAX];
    json_t *v1 = aemp_json_decode((const char *)data, size, 0, err, sizeof err);
    /* a smaller limit only ever refuses more */
    unsigned small = 1 + (unsigned)(size % 7);
    json_t *vs = aemp_json_decode((const char *)data, size, small, NULL, 0);
    msg_whole(data, size, v1);
    msg_stream(data, size);
    if (!v1) {
        FUZZ_CHECK(err[0] != 0);
        FUZZ_CHECK(strlen(err) < sizeof err - 1 || !"message cut off");
        FUZZ_CHECK(!vs);
        return 0;
    }
    if (vs) {
        FUZZ_CHECK(fuzz_json_same(v1, vs));
        json_decref(vs);
    }

    size_t n1, n2, n3;
    char *e1 = aemp_json_encode(v1, &n1);
    FUZZ_CHECK(e1 != NULL);
    FUZZ_CHECK(memchr(e1, 0, n1) == NULL); /* NUL travels as \u0000 */
    json_t *v2 = aemp_json_decode(e1, n1, 0, err, sizeof err);
    if (!v2) fprintf(stderr, "re-decode failed: %s\n%.*s\n", err, (int)n1, e1);
    FUZZ_CHECK(v2 != NULL);
    FUZZ_CHECK(json_equiv(v1, v2));

    char *e2 = aemp_json_encode(v2, &n2);
    FUZZ_CHECK(e2 != NULL);
    json_t *v3 = aemp_json_decode(e2, n2, 0, NULL, 0);
    FUZZ_CHECK(v3 != NULL);
    FUZZ_CHECK(fuzz_json_same(v2, v3));
    char *e3 = aemp_json_encode(v3, &n3);
    FUZZ_CHECK(e3 != NULL);
    FUZZ_CHECK(n2 == n3 && !memcmp(e2, e3, n2));

    free(e1);
    free(e2);
    free(e3);
    json_decref(v1);
    json_decref(v2);
    json_decref(v3);
    return 0;
}
