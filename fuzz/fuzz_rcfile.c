/*
 * fuzz_rcfile.c - fuzz target for the protocol-1 rc file: the relaxed
 * JSON reader (aemp_rc_parse), the writer (aemp_rc_format), profile
 * resolution with parent chains and cycles (aemp_rc_profile) and the
 * effective values (aemp_p1_config_make, with injected randomness).
 * Invariants: what parses is an object; its written form parses back to
 * the same value (reals are written with 15 digits, as JSON::XS does, so
 * 3.0 comes back as 3 and long fractions rounded: numbers with a real on
 * either side only need to stay numbers), and from the second writing
 * on the text stays the same; strict JSON that the decoder accepts as an
 * object is accepted unchanged; resolution either fails
 * with a message or yields an object; an effective config always has a
 * node id without '#', ';' or NUL. The profile name comes from the
 * input's last line when it starts with '@'.
 */
#include "fuzz.h"

#include "aemp.h"

static int rc_rand(void *ud, void *buf, size_t len)
{
    uint64_t *s = ud;
    unsigned char *b = buf;
    for (size_t i = 0; i < len; i++) b[i] = (unsigned char)fuzz_next(s);
    return 0;
}

/* fuzz_json_same, but a real may come back as another number. */
static int rc_same(const json_t *a, const json_t *b)
{
    if ((json_is_real(a) || json_is_real(b)) && json_is_number(a) && json_is_number(b)) return 1;
    if (json_typeof(a) != json_typeof(b)) return 0;
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b)) return 0;
        for (void *it = json_object_iter((json_t *)a); it;
             it = json_object_iter_next((json_t *)a, it)) {
            json_t *bv = json_object_getn(b, json_object_iter_key(it), json_object_iter_key_len(it));
            if (!bv || !rc_same(json_object_iter_value(it), bv)) return 0;
        }
        return 1;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!rc_same(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    }
    return fuzz_json_same(a, b);
}

static void rc_check_config(const json_t *rc, const char *name, uint64_t *seed)
{
    char err[AEMP_RC_ERRMAX] = "";
    json_t *args = json_pack("{s:s}", "connect_interval", "1");
    FUZZ_CHECK(args != NULL);
    for (unsigned flags = 0; flags < 2; flags++) {
        json_t *m = aemp_rc_profile(rc, name, args, flags, err, sizeof err);
        if (!m) {
            FUZZ_CHECK(err[0] != 0);
            continue;
        }
        FUZZ_CHECK(json_is_object(m));
        aemp_p1_config_t c;
        err[0] = 0;
        int r = aemp_p1_config_make(&c, m, name ? name : "p", "host", rc_rand, seed, err,
                                    sizeof err);
        if (r == 0) {
            FUZZ_CHECK(c.nodeid && *c.nodeid);
            FUZZ_CHECK(!strpbrk(c.nodeid, "#;\n\r"));
            FUZZ_CHECK(c.binds && c.seeds && c.services && c.framing_format);
            FUZZ_CHECK(c.binds[c.nbinds] == NULL && c.seeds[c.nseeds] == NULL);
            FUZZ_CHECK(c.monitor_timeout >= 0 && c.connect_interval >= 0);
        } else {
            FUZZ_CHECK(r == AEMP_EINVAL && err[0]);
            FUZZ_CHECK(c.nodeid == NULL);
        }
        aemp_p1_config_free(&c);
        json_decref(m);
    }
    json_decref(args);
}

FUZZ_TARGET(rcfile)
{
    uint64_t seed = fuzz_seed(data, size);
    const char *buf = (const char *)data;
    size_t len = size;
    char *name = NULL;
    /* "...\n@NAME": the profile to resolve */
    const uint8_t *nl = size ? memchr(data, '\n', size) : NULL;
    for (const uint8_t *p = nl; p; p = memchr(p + 1, '\n', size - (size_t)(p + 1 - data)))
        nl = p;
    if (nl && (size_t)(nl + 1 - data) < size && nl[1] == '@') {
        name = fuzz_strndup(nl + 2, size - (size_t)(nl + 2 - data));
        len = (size_t)(nl - data);
        if (strlen(name) != size - (size_t)(nl + 2 - data)) {
            free(name);
            name = NULL;
        }
    }
    char err[AEMP_RC_ERRMAX] = "";
    json_t *v = aemp_rc_parse(buf, len, err, sizeof err);
    json_t *strict = aemp_json_decode(buf, len, 0, NULL, 0);
    if (strict && json_is_object(strict)) FUZZ_CHECK(v && fuzz_json_same(v, strict));
    json_decref(strict);
    if (!v) {
        FUZZ_CHECK(err[0] != 0);
        free(name);
        return 0;
    }
    FUZZ_CHECK(json_is_object(v));
    size_t tl = 0;
    char *text = aemp_rc_format(v, &tl);
    if (text) {
        FUZZ_CHECK(tl == strlen(text)); /* NUL bytes are written escaped */
        FUZZ_CHECK(tl >= 3 && text[tl - 1] == '\n');
        json_t *back = aemp_rc_parse(text, tl, err, sizeof err);
        FUZZ_CHECK(back && rc_same(back, v));
        /* -0.0 is written "-0", which reads back as the integer 0 and is
         * then written "0" (as with JSON::XS): stable from the second
         * writing on */
        char *again = aemp_rc_format(back, NULL);
        FUZZ_CHECK(again != NULL);
        json_t *back2 = aemp_rc_parse(again, strlen(again), err, sizeof err);
        char *third = back2 ? aemp_rc_format(back2, NULL) : NULL;
        FUZZ_CHECK(third && !strcmp(again, third));
        free(third);
        json_decref(back2);
        free(again);
        json_decref(back);
        free(text);
    }
    rc_check_config(v, name, &seed);
    rc_check_config(v, NULL, &seed);
    json_decref(v);
    free(name);
    return 0;
}
