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
 */
#include "fuzz.h"

#include <math.h>

#include "aemp.h"

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

FUZZ_TARGET(json)
{
    char err[AEMP_JSON_ERRMAX];
    json_t *v1 = aemp_json_decode((const char *)data, size, 0, err, sizeof err);
    /* a smaller limit only ever refuses more */
    unsigned small = 1 + (unsigned)(size % 7);
    json_t *vs = aemp_json_decode((const char *)data, size, small, NULL, 0);
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
