/* test_pack.c - tests of pack.c: a format written straight to the wire
 * must give exactly the bytes of json_pack followed by the encoder, fail
 * where json_pack fails, and read (and release) its arguments as
 * json_pack does. Also the map iterator and the version calls. */
#include "test.h"
#include "aemp_int.h"
#include "map.h"

#include <math.h>
#include <stdarg.h>

/* What the old path wrote: json_pack, then the message encoder. */
static int via_jansson(aemp__buf_t *b, const char *id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *v = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    if (!v || !json_is_array(v)) {
        json_decref(v);
        return AEMP_EINVAL;
    }
    int rc = aemp__json_encode_msg(b, id, strlen(id), v);
    json_decref(v);
    return rc;
}

static int via_payload(aemp__buf_t *b, const char *id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aemp__payload_t pl = {NULL, fmt, &ap};
    int rc = aemp__payload_encode(b, id, strlen(id), &pl);
    va_end(ap);
    return rc;
}

#define SAME(fmt, ...) SAME_RC(0, fmt, __VA_ARGS__)
#define FAILS(fmt, ...) SAME_RC(AEMP_EINVAL, fmt, __VA_ARGS__)
/* Both writers, the same arguments: both return want, the same bytes. */
#define SAME_RC(want, fmt, ...)                                                      \
    do {                                                                             \
        aemp__buf_t a_ = {0}, b_ = {0};                                              \
        aemp__buf_append(&b_, "xx", 2); /* a prefix that must stay */                \
        aemp__buf_append(&a_, "xx", 2);                                              \
        int ra_ = via_jansson(&a_, "port.b", fmt, __VA_ARGS__);                      \
        int rb_ = via_payload(&b_, "port.b", fmt, __VA_ARGS__);                      \
        if (ra_ != (want) || ra_ != rb_ || aemp__buf_size(&a_) != aemp__buf_size(&b_) || \
            memcmp(aemp__buf_head(&a_), aemp__buf_head(&b_), aemp__buf_size(&a_)))   \
            t_fail(__FILE__, __LINE__, "%s: jansson %d \"%.*s\", direct %d \"%.*s\"", \
                   fmt, ra_, (int)aemp__buf_size(&a_), aemp__buf_head(&a_), rb_,     \
                   (int)aemp__buf_size(&b_), aemp__buf_head(&b_));                   \
        aemp__buf_free(&a_);                                                         \
        aemp__buf_free(&b_);                                                         \
    } while (0)

TEST(pack_matches_jansson_then_encoder)
{
    SAME("[]", 0);
    SAME("[s]", "tick");
    SAME("[sI]", "tick", (json_int_t)-9223372036854775807LL);
    SAME("[si]", "tick", -42);
    SAME("[s, i, I]", "a", 0, (json_int_t)1 << 40);
    SAME("[sf]", "pi", 3.14159265358979);
    SAME("[ff]", 0.1, 1e21);
    SAME("[f]", -0.0);
    SAME("[nbb]", 1, 0);
    SAME("[s#]", "a\0b", 3);
    SAME("[s%]", "abcdef", (size_t)4);
    SAME("[s?s?]", NULL, "x");
    SAME("[s*s*]", NULL, "kept");
    SAME("[[s[i]][]]", "deep", 7);
    SAME("[s]", "control \x01\t\n and \"quotes\" \\ / \x7f");
    SAME("[s]", "gr\xc3\xbc\xc3\x9f \xf0\x9f\x98\x80");
    SAME("[s]", "a string longer than sixty-four bytes, so the short path does not take it at all");
    json_t *o = json_pack("{s:[i,i]}", "k", 1, 2);
    SAME("[sO]", "obj", o);
    SAME("[O?O*]", NULL, NULL);
    json_t *raw = aemp_json_uint64(18446744073709551615ull);
    SAME("[O]", raw);
    json_decref(raw);
    json_decref(o);
    /* formats the direct writer leaves to jansson */
    SAME("[{s:i}]", "k", 1);
    SAME("[s+]", "con", "cat");
    /* failures: the same verdict, nothing written */
    FAILS("[s]", (const char *)NULL);
    FAILS("[s]", "bad \xff utf-8");
    FAILS("[s]", "surrogate \xed\xa0\x80");
    FAILS("[f]", NAN);
    FAILS("[f]", INFINITY);
    FAILS("[O]", (json_t *)NULL);
    FAILS("{s:i}", "not an array", 1);
    FAILS("[si", "unclosed", 1);
    FAILS("[q]", 1);
    FAILS("[s] junk", "x");
}

TEST(pack_steals_o_arguments_like_json_pack)
{
    /* "o" is released after use, on success and on failure; "O" is not */
    json_t *keep = json_string("kept");
    json_t *o1 = json_string("stolen");
    json_incref(o1);
    aemp__buf_t b = {0};
    CHECK_INT(via_payload(&b, "p", "[oO]", o1, keep), 0);
    CHECK_INT(o1->refcount, 1);
    CHECK_INT(keep->refcount, 1);
    json_t *o2 = json_string("stolen too");
    json_incref(o2);
    size_t before = aemp__buf_size(&b);
    /* the NULL string fails the message first; o2 after it is still released */
    CHECK_INT(via_payload(&b, "p", "[so]", (const char *)NULL, o2), AEMP_EINVAL);
    CHECK_INT(o2->refcount, 1);
    CHECK_INT(aemp__buf_size(&b), before);
    aemp__buf_free(&b);
    json_decref(o1);
    json_decref(o2);
    json_decref(keep);
}

static void drop_payload(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aemp__payload_t pl = {NULL, fmt, &ap};
    aemp__payload_drop(&pl);
    va_end(ap);
}

static json_t *value_of(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    aemp__payload_t pl = {NULL, fmt, &ap};
    json_t *v = aemp__payload_value(&pl);
    va_end(ap);
    return v;
}

TEST(pack_payload_drop_releases_refs_and_value_builds_arrays)
{
    json_t *o = json_string("x");
    json_incref(o);
    drop_payload("[s[o]]", "a", o);
    CHECK_INT(o->refcount, 1);
    json_incref(o);
    drop_payload("[{s:o}]", "k", o); /* through jansson */
    CHECK_INT(o->refcount, 1);
    json_decref(o);

    json_t *v = value_of("[si]", "tick", 5);
    json_t *want = json_pack("[si]", "tick", 5);
    CHECK(json_equal(v, want));
    json_decref(v);
    json_decref(want);
    CHECK(value_of("{s:i}", "not an array", 1) == NULL);
    CHECK(value_of("[s]", (const char *)NULL) == NULL);
}

TEST(map_iterator_visits_all_and_allows_deleting)
{
    aemp__map_t m = {0};
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        REQUIRE(aemp__map_set(&m, key, (void *)(intptr_t)(i + 1)) == 0);
    }
    aemp__map_iter_t it = {0};
    long sum = 0, count = 0;
    for (aemp__map_ent_t *e; (e = aemp__map_next(&m, &it));) {
        sum += (intptr_t)e->value;
        count++;
        /* delete every odd value while walking */
        if ((intptr_t)e->value % 2) aemp__map_del(&m, e->key);
    }
    CHECK_INT(count, 100);
    CHECK_INT(sum, 5050);
    CHECK_INT(m.count, 50);
    it = (aemp__map_iter_t){0};
    count = 0;
    for (aemp__map_ent_t *e; (e = aemp__map_next(&m, &it));) {
        CHECK_INT((intptr_t)e->value % 2, 0);
        count++;
    }
    CHECK_INT(count, 50);
    aemp__map_t empty = {0};
    it = (aemp__map_iter_t){0};
    CHECK(aemp__map_next(&empty, &it) == NULL);
    aemp__map_free(&m);
}

/* A table that held 100 000 keys and lost all but 10 gives its slots
 * back on the next insert, and still answers for every key. */
TEST(map_shrinks_after_a_flood)
{
    aemp__map_t m = {0};
    char key[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        REQUIRE(aemp__map_set(&m, key, (void *)(intptr_t)(i + 1)) == 0);
    }
    size_t big = m.nslots;
    CHECK(big >= 100000);
    for (int i = 10; i < 100000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        aemp__map_del(&m, key);
    }
    CHECK_INT(m.nslots, big); /* deletes never move entries (iterations) */
    REQUIRE(aemp__map_set(&m, "new", (void *)1) == 0);
    CHECK(m.nslots <= 64);
    CHECK_INT(m.count, 11);
    int ok = aemp__map_get(&m, "new") == (void *)1;
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ok &= aemp__map_get(&m, key) == (void *)(intptr_t)(i + 1);
    }
    CHECK(ok);
    aemp__map_free(&m);
}

/* SipHash-2-4 against the reference vectors (key 00..0f, messages
 * 00 01 .. of length 0, 1 and 15), and a map keyed with it: the same
 * answers as unkeyed, other chains (two keys give two orders). */
TEST(map_keyed_hash_is_siphash_and_keeps_answers)
{
    unsigned char k[16], msg[15];
    for (int i = 0; i < 16; i++) k[i] = (unsigned char)i;
    for (int i = 0; i < 15; i++) msg[i] = (unsigned char)i;
    CHECK(aemp__siphash24(k, msg, 0) == 0x726fdb47dd0e0e31ull);
    CHECK(aemp__siphash24(k, msg, 1) == 0x74f839c593dc67fdull);
    CHECK(aemp__siphash24(k, msg, 15) == 0xa129ca6149be45e5ull);

    aemp__map_t a = {0}, b = {0};
    unsigned char kb[16] = {1};
    aemp__map_key(&a, k);
    aemp__map_key(&b, kb);
    char key[32];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "4:join%d", i);
        REQUIRE(aemp__map_set(&a, key, (void *)(intptr_t)(i + 1)) == 0);
        REQUIRE(aemp__map_set(&b, key, (void *)(intptr_t)(i + 1)) == 0);
    }
    int same = 1, differ = 0;
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "4:join%d", i);
        same &= aemp__map_get(&a, key) == (void *)(intptr_t)(i + 1);
        same &= aemp__map_del(&b, key) == (void *)(intptr_t)(i + 1);
    }
    CHECK(same);
    CHECK_INT(b.count, 0);
    aemp__map_iter_t ia = {0};
    aemp__map_t c = {0};
    aemp__map_key(&c, kb);
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "4:join%d", i);
        REQUIRE(aemp__map_set(&c, key, (void *)(intptr_t)(i + 1)) == 0);
    }
    aemp__map_iter_t ic = {0};
    for (aemp__map_ent_t *ea, *ec; (ea = aemp__map_next(&a, &ia)) && (ec = aemp__map_next(&c, &ic));)
        differ |= strcmp(ea->key, ec->key) != 0;
    CHECK(differ); /* the key decides where each name lands */
    aemp__map_free(&a);
    aemp__map_free(&b);
    aemp__map_free(&c);
}

TEST(version_calls_match_the_header)
{
    CHECK_STR(aemp_version(), AEMP_VERSION);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", aemp_version_number() / 10000,
             aemp_version_number() / 100 % 100, aemp_version_number() % 100);
    CHECK_STR(v, AEMP_VERSION);
}

TEST(portid_split_forms)
{
    size_t nl;
    const char *l = aemp__portid_split("127.0.0.1:4040#ab.c", &nl);
    CHECK_INT(nl, 14);
    CHECK_STR(l, "ab.c");
    l = aemp__portid_split("127.0.0.1:4040", &nl);
    CHECK_INT(nl, 14);
    CHECK_STR(l, "");
    l = aemp__portid_split("#x", &nl);
    CHECK_INT(nl, 0);
    CHECK_STR(l, "x");
    l = aemp__portid_split("a#b#c", &nl); /* the first '#' splits */
    CHECK_INT(nl, 1);
    CHECK_STR(l, "b#c");
}
