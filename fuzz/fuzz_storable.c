/*
 * fuzz_storable.c - fuzz target for the Storable codec and the BER
 * framer. The input is taken two ways: as one Storable image, and as a
 * stream of storable frames.
 *
 * As an image: a failure has a code of its own kind (EPROTO, EBADMSG)
 * and a whole message; a smaller depth limit only refuses more. What
 * decodes must encode (top value an array, a hash or a boolean), and the
 * encoding decode to the same value in Perl's view: what network-order
 * Storable changes on purpose is that integers beyond 32 bits and
 * non-integral reals travel as strings of their digits, an integral real
 * as an integer. The second encoding is then a fixed point, byte for
 * byte, and its frame is found whole by the framer.
 *
 * As a stream: the frames found when the bytes arrive in two pieces (cut
 * where the input says) or one by one are those found when they arrive
 * at once, and each frame's image goes through the decoder.
 */
#include "fuzz.h"

#include <math.h>

#include "aemp.h"

/* A scalar in Perl's view after a network-order round trip. */
static json_t *integer_view(json_int_t i)
{
    if (i >= INT32_MIN && i <= INT32_MAX) return json_integer(i);
    char txt[32];
    snprintf(txt, sizeof txt, "%lld", (long long)i);
    return json_string(txt);
}

/* A scalar as it comes back from its Storable round trip (new
 * reference). */
static json_t *perl_scalar(const json_t *a)
{
    if (json_is_integer(a)) return integer_view(json_integer_value(a));
    if (!json_is_real(a)) return json_incref((json_t *)a); /* strings, true, false, null */
    double x = json_real_value(a);
    if (x >= -9223372036854775808.0 && x < 9223372036854775808.0 && x == (double)(json_int_t)x)
        return integer_view((json_int_t)x);
    char txt[64];
    snprintf(txt, sizeof txt, "%.15g", x); /* the fuzzers run in the C locale */
    return json_string(txt);
}

static void image(const uint8_t *data, size_t size)
{
    char err[AEMP_JSON_ERRMAX];
    int code = 0;
    json_t *v1 = aemp_storable_decode(data, size, 0, &code, err, sizeof err);
    unsigned small = 1 + (unsigned)(size % 5);
    json_t *vs = aemp_storable_decode(data, size, small, NULL, NULL, 0);
    if (!v1) {
        FUZZ_CHECK(code == AEMP_EPROTO || code == AEMP_EBADMSG);
        FUZZ_CHECK(err[0] != 0);
        FUZZ_CHECK(strlen(err) < sizeof err - 1 || !"message cut off");
        FUZZ_CHECK(!vs);
        return;
    }
    if (vs) {
        FUZZ_CHECK(fuzz_json_same(v1, vs));
        json_decref(vs);
    }
    /* a small value limit: the same value, or the limit's own error */
    size_t limit = 1 + size % 7;
    int lcode = 0;
    json_t *vl = aemp_storable_decode_max(data, size, 0, limit, &lcode, err, sizeof err);
    if (vl) {
        FUZZ_CHECK(fuzz_json_same(v1, vl));
        json_decref(vl);
    } else {
        FUZZ_CHECK(lcode == AEMP_ELIMIT);
        FUZZ_CHECK(strstr(err, "values") != NULL);
    }
    FUZZ_CHECK(json_is_array(v1) || json_is_object(v1) || json_is_boolean(v1));

    size_t n2, n3, nf;
    unsigned char *i2 = aemp_storable_encode(v1, &n2);
    FUZZ_CHECK(i2 != NULL);
    json_t *v2 = aemp_storable_decode(i2, n2, 0, &code, err, sizeof err);
    if (!v2) fprintf(stderr, "re-decode failed: %s\n", err);
    FUZZ_CHECK(v2 != NULL);
    json_t *want = fuzz_json_map(v1, perl_scalar);
    FUZZ_CHECK(want && fuzz_json_same(want, v2));
    json_decref(want);
    unsigned char *i3 = aemp_storable_encode(v2, &n3);
    FUZZ_CHECK(i3 != NULL);
    FUZZ_CHECK(n2 == n3 && !memcmp(i2, i3, n2));

    unsigned char *fr = aemp_storable_encode_frame(v2, &nf);
    FUZZ_CHECK(fr != NULL);
    aemp_ber_framer_t f;
    aemp_ber_framer_init(&f, 0);
    size_t s = 0, e = 0;
    FUZZ_CHECK(aemp_ber_framer_next(&f, fr, nf, &s, &e) == 1);
    FUZZ_CHECK(e == nf && e - s == n2 && !memcmp(fr + s, i2, n2));

    free(i2);
    free(i3);
    free(fr);
    json_decref(v1);
    json_decref(v2);
}

#define MAX_FRAMES 64

typedef struct frames {
    size_t start[MAX_FRAMES], end[MAX_FRAMES]; /* offsets in the input */
    size_t n;
    int err;
} frames_t;

/* Frames the stream, the bytes arriving up to cut, then the rest (or one
 * by one when step is set). */
static void frame_stream(const uint8_t *data, size_t size, size_t max_len, size_t cut,
                         int step, frames_t *out)
{
    aemp_ber_framer_t f;
    aemp_ber_framer_init(&f, max_len);
    size_t region = 0, avail = 0;
    memset(out, 0, sizeof *out);
    while (out->n < MAX_FRAMES) {
        size_t next = step ? avail + 1 : avail < cut ? cut : size;
        avail = next < size ? next : size;
        size_t s, e;
        int r = 0;
        while (out->n < MAX_FRAMES &&
               (r = aemp_ber_framer_next(&f, data + region, avail - region, &s, &e)) == 1) {
            FUZZ_CHECK(s >= 1 && s <= AEMP_BER_MAX_BYTES && e >= s && e - s <= max_len);
            FUZZ_CHECK(region + e <= avail);
            out->start[out->n] = region + s;
            out->end[out->n] = region + e;
            out->n++;
            region += e;
        }
        if (out->n == MAX_FRAMES) break;
        if (r < 0) {
            FUZZ_CHECK(r == AEMP_ELIMIT || r == AEMP_EPROTO);
            FUZZ_CHECK(aemp_ber_framer_error(&f)[0] != 0);
            FUZZ_CHECK(aemp_ber_framer_next(&f, data + region, avail - region, &s, &e) == r);
            out->err = r;
            break;
        }
        if (avail == size) break;
    }
}

static void stream(const uint8_t *data, size_t size)
{
    uint64_t seed = fuzz_seed(data, size);
    size_t max_len = (fuzz_next(&seed) & 1) ? 0 : 1 + fuzz_next(&seed) % 4096;
    size_t cut = size ? fuzz_next(&seed) % (size + 1) : 0;
    frames_t whole, two, bytes;
    frame_stream(data, size, max_len ? max_len : AEMP_DEFAULT_MAX_MESSAGE, size, 0, &whole);
    frame_stream(data, size, max_len ? max_len : AEMP_DEFAULT_MAX_MESSAGE, cut, 0, &two);
    FUZZ_CHECK(whole.n == two.n && whole.err == two.err);
    FUZZ_CHECK(!memcmp(whole.start, two.start, whole.n * sizeof *whole.start));
    FUZZ_CHECK(!memcmp(whole.end, two.end, whole.n * sizeof *whole.end));
    if (size <= 512) {
        frame_stream(data, size, max_len ? max_len : AEMP_DEFAULT_MAX_MESSAGE, 0, 1, &bytes);
        FUZZ_CHECK(whole.n == bytes.n && whole.err == bytes.err);
        FUZZ_CHECK(!memcmp(whole.end, bytes.end, whole.n * sizeof *whole.end));
    }
    for (size_t i = 0; i < whole.n; i++) {
        json_t *v = aemp_storable_decode(data + whole.start[i], whole.end[i] - whole.start[i], 0,
                                         NULL, NULL, 0);
        json_decref(v);
    }
}

FUZZ_TARGET(storable)
{
    image(data, size);
    stream(data, size);
    return 0;
}
