/*
 * test_json.c - tests of json.c: the encoder against what JSON::XS writes,
 * the strict decoder (numbers, strings, UTF-8, grammar, depth), and round
 * trips of every message recorded between real Perl nodes.
 */
#include "test.h"

#include <limits.h>
#include "aemp_int.h"

#include <locale.h>
#include <math.h>
#include <stdlib.h>

/* ---- helpers ---------------------------------------------------------- */

/* Encodes v, compares with want, drops v. */
static void check_enc(const char *file, int line, json_t *v, const char *want,
                      size_t want_len)
{
    size_t n = 0;
    char *s = aemp_json_encode(v, &n);
    if (!s) {
        t_fail(file, line, "encode failed, want %s", want);
    } else if (n != want_len || memcmp(s, want, n) != 0) {
        t_fail(file, line, "encode: got \"%s\" (%zu bytes), want \"%s\" (%zu bytes)", s,
               n, want, want_len);
    }
    free(s);
    json_decref(v);
}
#define CHECK_ENC(v, want) check_enc(__FILE__, __LINE__, (v), (want), sizeof(want) - 1)

static json_t *dec(const char *s)
{
    char err[AEMP_JSON_ERRMAX];
    json_t *v = aemp_json_decode(s, strlen(s), 0, err, sizeof err);
    if (!v) fprintf(stderr, "    decode(%s): %s\n", s, err);
    return v;
}

static json_t *decn(const void *s, size_t n)
{
    char err[AEMP_JSON_ERRMAX];
    json_t *v = aemp_json_decode(s, n, 0, err, sizeof err);
    if (!v) fprintf(stderr, "    decode: %s\n", err);
    return v;
}

/* Decoding s must fail with a message that starts with want. */
static void check_dec_fail(const char *file, int line, const void *s, size_t n,
                           const char *want)
{
    char err[AEMP_JSON_ERRMAX] = "unset";
    json_t *v = aemp_json_decode(s, n, 0, err, sizeof err);
    if (v) {
        char *t = aemp_json_encode(v, NULL);
        t_fail(file, line, "decode succeeded (%s), want error \"%s\"", t ? t : "?", want);
        free(t);
        json_decref(v);
    } else if (strncmp(err, want, strlen(want)) != 0) {
        t_fail(file, line, "error \"%s\", want \"%s\"", err, want);
    }
}
#define CHECK_DEC_FAIL(s, want) check_dec_fail(__FILE__, __LINE__, (s), strlen(s), (want))
#define CHECK_DECN_FAIL(s, want)                                             \
    check_dec_fail(__FILE__, __LINE__, (s), sizeof(s) - 1, (want))

/* decode(s) then encode must give want. */
static void check_reenc(const char *file, int line, const char *s, const char *want)
{
    json_t *v = dec(s);
    if (!v) {
        t_fail(file, line, "decode(%s) failed", s);
        return;
    }
    check_enc(file, line, v, want, strlen(want));
}
#define CHECK_REENC(s, want) check_reenc(__FILE__, __LINE__, (s), (want))

/* ---- encoder ---------------------------------------------------------- */

TEST(json_encode_scalars)
{
    CHECK_ENC(json_null(), "null");
    CHECK_ENC(json_true(), "true");
    CHECK_ENC(json_false(), "false");
    CHECK_ENC(json_integer(0), "0");
    CHECK_ENC(json_integer(-1), "-1");
    CHECK_ENC(json_integer(42), "42");
    CHECK_ENC(json_integer(99), "99");
    CHECK_ENC(json_integer(100), "100");
    CHECK_ENC(json_integer(2147483647), "2147483647");
    CHECK_ENC(json_integer(-2147483648LL), "-2147483648");
    CHECK_ENC(json_integer(4294967296LL), "4294967296");
    CHECK_ENC(json_integer(9007199254740993LL), "9007199254740993");
    CHECK_ENC(json_integer(INT64_MAX), "9223372036854775807");
    CHECK_ENC(json_integer(INT64_MIN), "-9223372036854775808");
    CHECK_ENC(json_string(""), "\"\"");
    CHECK_ENC(json_string("hello"), "\"hello\"");
}

TEST(json_encode_floats)
{
    /* the list from the vectors README: what JSON::XS writes */
    CHECK_ENC(json_real(3.141592653589793), "3.14159265358979");
    CHECK_ENC(json_real(1.0 / 3), "0.333333333333333");
    CHECK_ENC(json_real(1.5e-7), "1.5e-07");
    CHECK_ENC(json_real(1e21), "1e+21");
    CHECK_ENC(json_real(-0.0), "-0");
    CHECK_ENC(json_real(9007199254740993.0), "9.00719925474099e+15");
    CHECK_ENC(json_real(1e100), "1e+100");
    CHECK_ENC(json_real(1.5), "1.5");
    CHECK_ENC(json_real(-0.25), "-0.25");
    CHECK_ENC(json_real(0.1), "0.1");
    CHECK_ENC(json_real(2.0), "2");
    CHECK_ENC(json_real(0.0), "0");
    CHECK_ENC(json_real(1795545808.37924), "1795545808.37924");
    CHECK_ENC(json_real(123456789012345678.0), "1.23456789012346e+17");
    CHECK_ENC(json_real(1e-300), "1e-300");
    CHECK_ENC(json_real(5e-324), "4.94065645841247e-324");
    CHECK_ENC(json_real(1.7976931348623157e308), "1.79769313486232e+308");
}

TEST(json_encode_strings)
{
    /* the echoed strings of transcript 01, as Perl wrote them */
    CHECK_ENC(json_string("with \"quotes\", \\backslash\\ and /slash/"),
              "\"with \\\"quotes\\\", \\\\backslash\\\\ and /slash/\"");
    CHECK_ENC(json_string("tab\tnewline\ncr\r"), "\"tab\\tnewline\\ncr\\r\"");
    CHECK_ENC(json_stringn("ctl\0\001\037\177", 7), "\"ctl\\u0000\\u0001\\u001f\177\"");
    CHECK_ENC(json_string("Gr\xc3\xbc\xc3\x9f" "e"), "\"Gr\xc3\xbc\xc3\x9f" "e\"");
    CHECK_ENC(json_string("\xe4\xb8\x96\xe7\x95\x8c"), "\"\xe4\xb8\x96\xe7\x95\x8c\"");
    CHECK_ENC(json_string("emoji \xf0\x9f\x98\x80"), "\"emoji \xf0\x9f\x98\x80\"");
    CHECK_ENC(json_string("\xe2\x80\xa8\xe2\x80\xa9\xef\xbb\xbf"),
              "\"\xe2\x80\xa8\xe2\x80\xa9\xef\xbb\xbf\"");
    CHECK_ENC(json_string("\xc3\xa9\xc3\xbf"), "\"\xc3\xa9\xc3\xbf\"");
    CHECK_ENC(json_string("\b\f"), "\"\\b\\f\"");
    /* a long plain run with escapes after the word-sized fast path */
    CHECK_ENC(json_string("abcdefghijklmnopqrstuvwxyz0123456789\"x"),
              "\"abcdefghijklmnopqrstuvwxyz0123456789\\\"x\"");
    /* bytes of a _nocheck string go out as they are */
    CHECK_ENC(json_stringn_nocheck("\x80\xfe", 2), "\"\x80\xfe\"");
}

TEST(json_encode_control_chars)
{
    static const char *want[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006",
        "\\u0007", "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",
        "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014",
        "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a", "\\u001b",
        "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    for (int c = 0; c < 32; c++) {
        char in[1] = {(char)c}, exp[16];
        snprintf(exp, sizeof exp, "\"%s\"", want[c]);
        check_enc(__FILE__, __LINE__, json_stringn(in, 1), exp, strlen(exp));
    }
    /* all 128 ASCII bytes in one string, then decoded back */
    char all[128];
    for (int c = 0; c < 128; c++) all[c] = (char)c;
    json_t *v = json_stringn(all, 128);
    size_t n;
    char *s = aemp_json_encode(v, &n);
    REQUIRE(s);
    json_t *back = decn(s, n);
    CHECK(back && json_equal(back, v));
    CHECK(strstr(s, "/") && strstr(s, "\177") && !strstr(s, "\\/"));
    free(s);
    json_decref(v);
    json_decref(back);
}

TEST(json_encode_containers)
{
    CHECK_ENC(json_array(), "[]");
    CHECK_ENC(json_object(), "{}");
    CHECK_ENC(json_pack("[s,s,i]", "port", "tick", 12345), "[\"port\",\"tick\",12345]");
    CHECK_ENC(json_pack("[[],{},[[]],{s:[]}]", "a"), "[[],{},[[]],{\"a\":[]}]");
    CHECK_ENC(json_pack("{s:{s:s}}", "k\xc3\xa9y", "x", "y"),
              "{\"k\xc3\xa9y\":{\"x\":\"y\"}}");
    CHECK_ENC(json_pack("[i,[i,[i,[i,[i]]]]]", 1, 2, 3, 4, 5), "[1,[2,[3,[4,[5]]]]]");
    /* jansson keeps insertion order */
    CHECK_ENC(json_pack("{s:i,s:i,s:i}", "one", 1, "two", 2, "three", 3),
              "{\"one\":1,\"two\":2,\"three\":3}");
    /* a key with escapes and an embedded NUL */
    json_t *o = json_object();
    json_object_setn_new_nocheck(o, "a\"\0b", 4, json_null());
    CHECK_ENC(o, "{\"a\\\"\\u0000b\":null}");
    CHECK_ENC(json_pack("[n,b,b,f]", 1, 0, 0.5), "[null,true,false,0.5]");
}

TEST(json_encode_raw_numbers)
{
    json_t *v = aemp_json_uint64(UINT64_MAX);
    const char *text = NULL;
    CHECK(aemp_json_is_raw_number(v, &text));
    CHECK_STR(text, "18446744073709551615");
    CHECK_ENC(v, "18446744073709551615");
    v = aemp_json_uint64((uint64_t)INT64_MAX + 1);
    CHECK(aemp_json_is_raw_number(v, NULL));
    CHECK_ENC(v, "9223372036854775808");
    /* small values are plain integers */
    v = aemp_json_uint64(5);
    CHECK(json_is_integer(v) && json_integer_value(v) == 5);
    CHECK(!aemp_json_is_raw_number(v, NULL));
    CHECK_ENC(v, "5");
    v = aemp_json_uint64(INT64_MAX);
    CHECK(json_is_integer(v));
    json_decref(v);
    CHECK(!aemp_json_is_raw_number(NULL, NULL));
    v = json_string("18446744073709551615");
    CHECK(!aemp_json_is_raw_number(v, NULL));
    json_decref(v);
    /* a marked string that is not a number cannot be written */
    v = json_stringn_nocheck("\xff" "abc", 4);
    CHECK(aemp_json_encode(v, NULL) == NULL);
    json_decref(v);
    v = json_stringn_nocheck("\xff", 1);
    CHECK(!aemp_json_is_raw_number(v, NULL));
    CHECK(aemp_json_encode(v, NULL) == NULL);
    json_decref(v);
}

/* Builds depth nested arrays: [[[...]]]. */
static json_t *nest(int depth)
{
    json_t *v = json_array();
    for (int i = 1; i < depth; i++) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        v = a;
    }
    return v;
}

TEST(json_encode_deep)
{
    size_t n = 0;
    json_t *v = nest(AEMP_JSON_MAX_ENCODE_DEPTH);
    char *s = aemp_json_encode(v, &n);
    REQUIRE(s);
    CHECK_INT(n, 2 * AEMP_JSON_MAX_ENCODE_DEPTH);
    CHECK(s[0] == '[' && s[n - 1] == ']');
    free(s);
    /* one more level fails cleanly */
    json_t *a = json_array();
    json_array_append_new(a, v);
    CHECK(aemp_json_encode(a, NULL) == NULL);
    json_decref(a);
    /* a reference cycle hits the same limit instead of looping */
    json_t *x = json_array(), *y = json_array();
    json_array_append(x, y);
    json_array_append(y, x);
    CHECK(aemp_json_encode(x, NULL) == NULL);
    json_array_clear(y);
    json_decref(y);
    json_decref(x);
    CHECK(aemp_json_encode(NULL, NULL) == NULL);
}

TEST(json_encode_buf_append_rewind)
{
    aemp__buf_t b = {0};
    REQUIRE(aemp__buf_append(&b, "head", 4) == 0);
    json_t *v = json_pack("[s,i]", "x", 1);
    CHECK_INT(aemp__json_encode_buf(&b, v), 0);
    CHECK_INT(aemp__buf_size(&b), 4 + 7);
    CHECK_MEM(aemp__buf_head(&b), "head[\"x\",1]", 11);
    json_decref(v);
    /* a failure leaves the buffer as it was, also after a consume */
    aemp__buf_consume(&b, 4);
    json_t *bad = json_pack("[s,s,o]", "long string that is written first", "more",
                            json_stringn_nocheck("\xff" "x", 2));
    CHECK_INT(aemp__json_encode_buf(&b, bad), AEMP_EINVAL);
    CHECK_INT(aemp__buf_size(&b), 7);
    CHECK_MEM(aemp__buf_head(&b), "[\"x\",1]", 7);
    json_decref(bad);
    /* many small appends into one buffer */
    v = json_pack("[s,s,i]", "port", "tick", 12345);
    for (int i = 0; i < 1000; i++) CHECK_INT(aemp__json_encode_buf(&b, v), 0);
    CHECK_INT(aemp__buf_size(&b), 7 + 1000 * 21);
    json_decref(v);
    aemp__buf_free(&b);
}

/* ---- decoder ---------------------------------------------------------- */

static void check_int(const char *file, int line, const char *s, json_int_t want)
{
    json_t *v = dec(s);
    if (!json_is_integer(v) || json_integer_value(v) != want)
        t_fail(file, line, "decode(%s) is not the integer %" JSON_INTEGER_FORMAT, s, want);
    json_decref(v);
}
#define CHECK_DEC_INT(s, want) check_int(__FILE__, __LINE__, (s), (want))

static void check_kind(const char *file, int line, const char *s, const char *kind,
                       const char *text)
{
    json_t *v = dec(s);
    const char *t = NULL;
    int ok;
    if (!strcmp(kind, "raw"))
        ok = aemp_json_is_raw_number(v, &t) && !strcmp(t, text);
    else
        ok = json_is_string(v) && !aemp_json_is_raw_number(v, NULL) &&
             !strcmp(json_string_value(v), text);
    if (!ok) t_fail(file, line, "decode(%s) is not the %s \"%s\"", s, kind, text);
    json_decref(v);
}
#define CHECK_DEC_RAW(s, t) check_kind(__FILE__, __LINE__, (s), "raw", (t))
#define CHECK_DEC_STRNUM(s, t) check_kind(__FILE__, __LINE__, (s), "string", (t))

static void check_real(const char *file, int line, const char *s, double want)
{
    json_t *v = dec(s);
    if (!json_is_real(v) || memcmp(&(double){json_real_value(v)}, &want, sizeof want))
        t_fail(file, line, "decode(%s) = %.17g, want the real %.17g", s,
               json_is_real(v) ? json_real_value(v) : NAN, want);
    json_decref(v);
}
#define CHECK_DEC_REAL(s, want) check_real(__FILE__, __LINE__, (s), (want))

TEST(json_decode_numbers)
{
    CHECK_DEC_INT("0", 0);
    CHECK_DEC_INT("-0", 0);
    CHECK_DEC_INT("1", 1);
    CHECK_DEC_INT("-1", -1);
    CHECK_DEC_INT("42", 42);
    CHECK_DEC_INT(" 42 ", 42);
    CHECK_DEC_INT("2147483647", 2147483647);
    CHECK_DEC_INT("-2147483648", -2147483648LL);
    CHECK_DEC_INT("9007199254740993", 9007199254740993LL);
    CHECK_DEC_INT("9223372036854775807", INT64_MAX);
    CHECK_DEC_INT("-9223372036854775807", -INT64_MAX);
    /* beyond int64: raw numbers up to UINT64_MAX, strings after that */
    CHECK_DEC_RAW("9223372036854775808", "9223372036854775808");
    CHECK_DEC_RAW("18446744073709551615", "18446744073709551615");
    CHECK_DEC_STRNUM("18446744073709551616", "18446744073709551616");
    CHECK_DEC_STRNUM("99999999999999999999", "99999999999999999999");
    CHECK_DEC_STRNUM("123456789012345678901234567890", "123456789012345678901234567890");
    CHECK_DEC_STRNUM("-9223372036854775808", "-9223372036854775808");
    CHECK_DEC_STRNUM("-9223372036854775809", "-9223372036854775809");
    CHECK_DEC_STRNUM("-18446744073709551616", "-18446744073709551616");
    /* reals */
    CHECK_DEC_REAL("1.5", 1.5);
    CHECK_DEC_REAL("-0.25", -0.25);
    CHECK_DEC_REAL("0.1", 0.1);
    CHECK_DEC_REAL("3.14159265358979", 3.14159265358979);
    CHECK_DEC_REAL("3.141592653589793", 3.141592653589793);
    CHECK_DEC_REAL("1e+100", 1e100);
    CHECK_DEC_REAL("1.5e-07", 1.5e-7);
    CHECK_DEC_REAL("1E21", 1e21);
    CHECK_DEC_REAL("1e+21", 1e21);
    CHECK_DEC_REAL("-0.0", -0.0);
    CHECK_DEC_REAL("0e0", 0.0);
    CHECK_DEC_REAL("-0e5", -0.0);
    CHECK_DEC_REAL("9.00719925474099e+15", 9.00719925474099e15);
    CHECK_DEC_REAL("0.333333333333333", 0.333333333333333);
    CHECK_DEC_REAL("1795545808.37924", 1795545808.37924);
    CHECK_DEC_REAL("1e-400", 0.0);
    CHECK_DEC_REAL("-1e-400", -0.0);
    CHECK_DEC_REAL("2.2250738585072011e-308", 2.2250738585072011e-308);
    CHECK_DEC_REAL("1.7976931348623157e308", 1.7976931348623157e308);
    CHECK_DEC_REAL("123456789012345678901234567890.5", 123456789012345678901234567890.5);
    CHECK_DEC_REAL("0.000000000000000000000000000001", 1e-30);
    CHECK_DEC_REAL("1e00000000000000000000000000001", 10.0);
    /* reals beyond the double range keep their text */
    CHECK_DEC_RAW("1e400", "1e400");
    CHECK_DEC_RAW("-1e400", "-1e400");
    CHECK_DEC_RAW("1.8e308", "1.8e308");
    CHECK_DEC_RAW("1e99999999999999999999", "1e99999999999999999999");
    /* and write them back as they came */
    CHECK_REENC("[1e400,18446744073709551615,-9223372036854775808,-0,1.0,2e0]",
                "[1e400,18446744073709551615,\"-9223372036854775808\",0,1,2]");
}

TEST(json_decode_number_errors)
{
    CHECK_DEC_FAIL("01", "unexpected byte 0x31 at offset 1");
    CHECK_DEC_FAIL("-01", "unexpected byte 0x31 at offset 2");
    CHECK_DEC_FAIL("1.", "unexpected end of input at offset 2");
    CHECK_DEC_FAIL("1.e5", "unexpected byte 0x65 at offset 2");
    CHECK_DEC_FAIL(".5", "unexpected byte 0x2e at offset 0");
    CHECK_DEC_FAIL("+1", "unexpected byte 0x2b at offset 0");
    CHECK_DEC_FAIL("-", "unexpected end of input at offset 1");
    CHECK_DEC_FAIL("--1", "unexpected byte 0x2d at offset 1");
    CHECK_DEC_FAIL("1e", "unexpected end of input at offset 2");
    CHECK_DEC_FAIL("1e+", "unexpected end of input at offset 3");
    CHECK_DEC_FAIL("1e+x", "unexpected byte 0x78 at offset 3");
    CHECK_DEC_FAIL("0x10", "unexpected byte 0x78 at offset 1");
    CHECK_DEC_FAIL("Infinity", "unexpected byte 0x49 at offset 0");
    CHECK_DEC_FAIL("-Infinity", "unexpected byte 0x49 at offset 1");
    CHECK_DEC_FAIL("NaN", "unexpected byte 0x4e at offset 0");
    CHECK_DEC_FAIL("[1,-]", "unexpected byte 0x5d at offset 4");
    CHECK_DEC_FAIL("1 2", "unexpected byte 0x32 at offset 2");
}

TEST(json_decode_reals_match_strtod)
{
    /* the exact fast path and the strtod path must agree bit for bit */
    uint64_t seed = 12345;
    char lit[64];
    for (int i = 0; i < 200000; i++) {
        uint64_t r = t_rand(&seed);
        int ndig = 1 + (int)(r % 19);
        int point = (int)((r >> 8) % (unsigned)(ndig + 1));
        int ex = (int)((r >> 16) % 90) - 45;
        char *w = lit;
        if (r >> 63) *w++ = '-';
        for (int k = 0; k < ndig; k++) {
            if (k == point && k > 0) *w++ = '.';
            uint64_t dr = t_rand(&seed);
            *w++ = (char)('0' + ((k == 0 && ndig > 1 && point != 1) ? 1 + dr % 9 : dr % 10));
        }
        if ((r >> 40) & 1) w += sprintf(w, "e%d", ex);
        *w = 0;
        /* a digit string without '.' or 'e' is an integer, not this test */
        if (!strpbrk(lit, ".e")) continue;
        double want = strtod(lit, NULL);
        json_t *v = dec(lit);
        if (isinf(want)) {
            CHECK(aemp_json_is_raw_number(v, NULL));
        } else if (!json_is_real(v) || memcmp(&(double){json_real_value(v)}, &want, 8)) {
            t_fail(__FILE__, __LINE__, "%s: got %.17g, strtod %.17g", lit,
                   json_is_real(v) ? json_real_value(v) : NAN, want);
            json_decref(v);
            return;
        }
        json_decref(v);
    }
}

TEST(json_decode_strings)
{
    json_t *v = dec("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"");
    REQUIRE(v);
    CHECK_STR(json_string_value(v), "a\"b\\c/d\be\ff\ng\rh\ti");
    json_decref(v);
    /* \u escapes, upper and lower case hex, NUL inside */
    v = dec("\"\\u0041\\u00e9\\u00C9\\u4e16\\u0000z\"");
    REQUIRE(v);
    CHECK_INT(json_string_length(v), 1 + 2 + 2 + 3 + 1 + 1);
    CHECK_MEM(json_string_value(v), "A\xc3\xa9\xc3\x89\xe4\xb8\x96\0z", 10);
    json_decref(v);
    /* raw UTF-8 as Perl sends it */
    v = dec("\"Gr\xc3\xbc\xc3\x9f" "e \xe4\xb8\x96 \xf0\x9f\x98\x80 \xe2\x80\xa8\"");
    REQUIRE(v);
    CHECK_STR(json_string_value(v), "Gr\xc3\xbc\xc3\x9f" "e \xe4\xb8\x96 \xf0\x9f\x98\x80 \xe2\x80\xa8");
    json_decref(v);
    /* a string full of escapes crosses the scratch buffer's growth */
    char big[6 * 3000 + 3], *w = big;
    *w++ = '"';
    for (int i = 0; i < 3000; i++) w += sprintf(w, "\\u%04x", 0x400 + i % 200);
    *w++ = '"';
    v = decn(big, (size_t)(w - big));
    REQUIRE(v);
    CHECK_INT(json_string_length(v), 6000);
    json_decref(v);
    /* keys with escapes, duplicate keys (the last wins), empty key */
    v = dec("{\"k\\u00e9y\":{\"x\":\"y\"},\"a\":1,\"a\":2,\"\":[]}");
    REQUIRE(v);
    CHECK(json_is_object(json_object_get(v, "k\xc3\xa9y")));
    CHECK_INT(json_integer_value(json_object_get(v, "a")), 2);
    CHECK(json_is_array(json_object_get(v, "")));
    CHECK_INT(json_object_size(v), 3);
    json_decref(v);
    v = dec("{\"a\\u0000b\":1}");
    REQUIRE(v);
    CHECK(json_object_getn(v, "a\0b", 3) != NULL);
    json_decref(v);
    /* escaped keys nested under escaped keys keep their own bytes */
    v = dec("{\"\\u0031\":{\"\\u0032\":{\"\\u0033\":\"\\u0034\"},\"\\u0035\":5},\"\\u0036\":6}");
    REQUIRE(v);
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(v, "1"), "2"), "3")), "4");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(v, "1"), "5")), 5);
    CHECK_INT(json_integer_value(json_object_get(v, "6")), 6);
    json_decref(v);

    CHECK_DEC_FAIL("\"abc", "unexpected end of input at offset 4");
    CHECK_DEC_FAIL("\"abc\\", "unexpected end of input at offset 5");
    CHECK_DEC_FAIL("\"\\x\"", "invalid escape at offset 1");
    CHECK_DEC_FAIL("\"\\u12\"", "invalid \\u escape at offset 1");
    CHECK_DEC_FAIL("\"\\u12", "unexpected end of input");
    CHECK_DEC_FAIL("\"\\u12g4\"", "invalid \\u escape at offset 1");
    CHECK_DEC_FAIL("\"a\tb\"", "control character 0x09 in string at offset 2");
    CHECK_DEC_FAIL("\"a\nb\"", "control character 0x0a in string at offset 2");
    CHECK_DECN_FAIL("\"a\0b\"", "control character 0x00 in string at offset 2");
    CHECK_DEC_FAIL("'a'", "unexpected byte 0x27 at offset 0");
}

TEST(json_decode_surrogates)
{
    json_t *v = dec("\"\\ud83d\\ude00\"");
    REQUIRE(v);
    CHECK_STR(json_string_value(v), "\xf0\x9f\x98\x80");
    json_decref(v);
    v = dec("\"\\uD800\\uDC00\\uDBFF\\uDFFF\"");
    REQUIRE(v);
    CHECK_STR(json_string_value(v), "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
    json_decref(v);
    /* JSON::XS refuses every lone surrogate; so do we */
    CHECK_DEC_FAIL("\"\\ud800\"", "lone surrogate \\ud800 at offset 1");
    CHECK_DEC_FAIL("\"\\ud800x\"", "lone surrogate \\ud800 at offset 1");
    CHECK_DEC_FAIL("\"\\ud800\\u1234\"", "lone surrogate \\ud800 at offset 1");
    CHECK_DEC_FAIL("\"\\ud800\\ud800\"", "lone surrogate \\ud800 at offset 1");
    CHECK_DEC_FAIL("\"\\ud800\\n\"", "lone surrogate \\ud800 at offset 1");
    CHECK_DEC_FAIL("\"\\udc00\"", "lone surrogate \\udc00 at offset 1");
    CHECK_DEC_FAIL("\"x\\u1234\\udfff\"", "lone surrogate \\udfff at offset 8");
    CHECK_DEC_FAIL("\"\\ud800\\udc0", "lone surrogate");
}

TEST(json_decode_utf8_strict)
{
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"\"\xc2\x80\"", 1},             /* U+0080 */
        {"\"\xdf\xbf\"", 1},             /* U+07FF */
        {"\"\xe0\xa0\x80\"", 1},         /* U+0800 */
        {"\"\xed\x9f\xbf\"", 1},         /* U+D7FF */
        {"\"\xee\x80\x80\"", 1},         /* U+E000 */
        {"\"\xef\xbf\xbf\"", 1},         /* U+FFFF */
        {"\"\xef\xbb\xbf\"", 1},         /* U+FEFF */
        {"\"\xf0\x90\x80\x80\"", 1},     /* U+10000 */
        {"\"\xf4\x8f\xbf\xbf\"", 1},     /* U+10FFFF */
        {"\"\xc0\x80\"", 0},             /* overlong NUL */
        {"\"\xc1\xbf\"", 0},             /* overlong */
        {"\"\xe0\x80\x80\"", 0},         /* overlong */
        {"\"\xe0\x9f\xbf\"", 0},         /* overlong */
        {"\"\xf0\x80\x80\x80\"", 0},     /* overlong */
        {"\"\xf0\x8f\xbf\xbf\"", 0},     /* overlong */
        {"\"\xed\xa0\x80\"", 0},         /* U+D800 in UTF-8 */
        {"\"\xed\xbf\xbf\"", 0},         /* U+DFFF in UTF-8 */
        {"\"\xf4\x90\x80\x80\"", 0},     /* U+110000 */
        {"\"\xf5\x80\x80\x80\"", 0},
        {"\"\xf8\x88\x80\x80\x80\"", 0},
        {"\"\xff\"", 0},
        {"\"\xfe\"", 0},
        {"\"\x80\"", 0},                 /* stray continuation */
        {"\"\xbf\"", 0},
        {"\"\xc3\"", 0},                 /* missing continuation */
        {"\"\xc3x\"", 0},
        {"\"\xe4\xb8\"", 0},
        {"\"\xe4\xb8", 0},
        {"\"\xf0\x9f\x98\"", 0},
        {"\"\xf0\x9f\x98\x80\x80\"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[AEMP_JSON_ERRMAX] = "";
        json_t *v = aemp_json_decode(cases[i].s, strlen(cases[i].s), 0, err, sizeof err);
        if (!!v != cases[i].ok)
            t_fail(__FILE__, __LINE__, "case %zu: decode %s (%s)", i,
                   v ? "succeeded" : "failed", err);
        else if (v)
            CHECK_INT(json_string_length(v), strlen(cases[i].s) - 2);
        else
            CHECK(strncmp(err, "invalid UTF-8 at offset ", 24) == 0);
        json_decref(v);
    }
    /* transcript 24: the Perl node closed the link ("Bad message") */
    CHECK_DEC_FAIL("[\"\",\"devnull\",\"\xff\xfe\"]", "invalid UTF-8 at offset 15");
    /* bytes >= 0x80 outside strings */
    CHECK_DEC_FAIL("[\xc3\xa9]", "unexpected byte 0xc3 at offset 1");
    /* a UTF-8 BOM before the text is not whitespace */
    CHECK_DEC_FAIL("\xef\xbb\xbf[]", "unexpected byte 0xef at offset 0");
}

TEST(json_decode_grammar)
{
    json_t *v = dec(" \t\r\n[ 1 , [ ] , { } , { \"a\" : null } , true , false ] \n");
    REQUIRE(v);
    CHECK_INT(json_array_size(v), 6);
    json_decref(v);
    v = dec("\"abc\"");
    CHECK(json_is_string(v));
    json_decref(v);
    v = dec("null");
    CHECK(json_is_null(v));
    json_decref(v);
    v = dec("{\"a\":1}");
    CHECK(json_is_object(v));
    json_decref(v);

    /* transcript 23: the Perl node closed the link */
    CHECK_DEC_FAIL("[\"\",\"lookup\",\"echo\" }", "unexpected byte 0x7d at offset 20");
    CHECK_DEC_FAIL("", "unexpected end of input at offset 0");
    CHECK_DEC_FAIL("   ", "unexpected end of input at offset 3");
    CHECK_DEC_FAIL("[", "unexpected end of input at offset 1");
    CHECK_DEC_FAIL("[1", "unexpected end of input at offset 2");
    CHECK_DEC_FAIL("[1,", "unexpected end of input at offset 3");
    CHECK_DEC_FAIL("[1,]", "unexpected byte 0x5d at offset 3");
    CHECK_DEC_FAIL("[,1]", "unexpected byte 0x2c at offset 1");
    CHECK_DEC_FAIL("[1 2]", "unexpected byte 0x32 at offset 3");
    CHECK_DEC_FAIL("[1}", "unexpected byte 0x7d at offset 2");
    CHECK_DEC_FAIL("{\"a\":1]", "unexpected byte 0x5d at offset 6");
    CHECK_DEC_FAIL("{\"a\":1,}", "unexpected byte 0x7d at offset 7");
    CHECK_DEC_FAIL("{\"a\" 1}", "unexpected byte 0x31 at offset 5");
    CHECK_DEC_FAIL("{a:1}", "unexpected byte 0x61 at offset 1");
    CHECK_DEC_FAIL("{1:1}", "unexpected byte 0x31 at offset 1");
    CHECK_DEC_FAIL("{\"a\":}", "unexpected byte 0x7d at offset 5");
    CHECK_DEC_FAIL("{\"a\"", "unexpected end of input at offset 4");
    CHECK_DEC_FAIL("[] []", "unexpected byte 0x5b at offset 3");
    CHECK_DEC_FAIL("[]x", "unexpected byte 0x78 at offset 2");
    CHECK_DEC_FAIL("tru", "unexpected end of input at offset 3");
    CHECK_DEC_FAIL("trUe", "unexpected byte 0x55 at offset 2");
    CHECK_DEC_FAIL("nul", "unexpected end of input at offset 3");
    CHECK_DEC_FAIL("[nulL]", "unexpected byte 0x4c at offset 4");
    CHECK_DEC_FAIL("falsey", "unexpected byte 0x79 at offset 5");
    CHECK_DEC_FAIL("[1]/*c*/", "unexpected byte 0x2f at offset 3");
    CHECK_DEC_FAIL("\f[]", "unexpected byte 0x0c at offset 0");
    CHECK_DECN_FAIL("[]\0", "unexpected byte 0x00 at offset 2");

    /* NULL input */
    char err[AEMP_JSON_ERRMAX];
    CHECK(aemp_json_decode(NULL, 0, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "unexpected end of input at offset 0");
    CHECK(aemp_json_decode(NULL, 5, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "invalid argument");
    CHECK(aemp_json_decode("x", 1, 0, NULL, 0) == NULL);
    /* a short error buffer gets a truncated, terminated message */
    char tiny[8];
    CHECK(aemp_json_decode("x", 1, 0, tiny, sizeof tiny) == NULL);
    CHECK_STR(tiny, "unexpec");
    /* the input need not be NUL-terminated: nothing past len is read */
    char *heap = malloc(4);
    memcpy(heap, "[12]", 4);
    v = aemp_json_decode(heap, 3, 0, err, sizeof err);
    CHECK(v == NULL);
    CHECK_STR(err, "unexpected end of input at offset 3");
    v = aemp_json_decode(heap + 1, 2, 0, err, sizeof err);
    CHECK(json_integer_value(v) == 12);
    json_decref(v);
    memcpy(heap, "1.25", 4);
    v = aemp_json_decode(heap, 4, 0, err, sizeof err);
    CHECK(json_real_value(v) == 1.25);
    json_decref(v);
    memcpy(heap, "\"ab\"", 4);
    v = aemp_json_decode(heap, 3, 0, err, sizeof err);
    CHECK(v == NULL);
    free(heap);
}

static char *nested_text(size_t depth, const char *open, const char *inner,
                         const char *close, size_t *len)
{
    size_t ol = strlen(open), il = strlen(inner), cl = strlen(close);
    char *s = malloc(depth * (ol + cl) + il + 1), *w = s;
    for (size_t i = 0; i < depth; i++, w += ol) memcpy(w, open, ol);
    memcpy(w, inner, il);
    w += il;
    for (size_t i = 0; i < depth; i++, w += cl) memcpy(w, close, cl);
    *w = 0;
    *len = (size_t)(w - s);
    return s;
}

TEST(json_decode_depth)
{
    size_t n;
    char err[AEMP_JSON_ERRMAX];
    char *s = nested_text(512, "[", "1", "]", &n);
    json_t *v = aemp_json_decode(s, n, 0, err, sizeof err);
    CHECK(json_is_array(v));
    /* and it encodes back to the same text */
    char *e = aemp_json_encode(v, NULL);
    CHECK(e && !strcmp(e, s));
    free(e);
    json_decref(v);
    free(s);

    s = nested_text(513, "[", "1", "]", &n);
    CHECK(aemp_json_decode(s, n, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "nesting deeper than 512 at offset 512");
    free(s);

    s = nested_text(512, "{\"k\":", "{}", "}", &n);
    CHECK(aemp_json_decode(s, n, 0, err, sizeof err) == NULL);
    CHECK(!strncmp(err, "nesting deeper than 512", 23));
    free(s);
    s = nested_text(511, "{\"k\\u00e9\":", "{}", "}", &n);
    v = aemp_json_decode(s, n, 0, err, sizeof err);
    CHECK(json_is_object(v));
    json_decref(v);
    free(s);

    /* a million levels fail fast, without recursion */
    s = nested_text(1000000, "[", "", "]", &n);
    CHECK(aemp_json_decode(s, n, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "nesting deeper than 512 at offset 512");
    /* unclosed too */
    CHECK(aemp_json_decode(s, 1000000, 0, err, sizeof err) == NULL);
    /* a caller-chosen limit */
    v = aemp_json_decode("[[[1]]]", 7, 3, err, sizeof err);
    CHECK(json_is_array(v));
    json_decref(v);
    CHECK(aemp_json_decode("[[[[1]]]]", 9, 3, err, sizeof err) == NULL);
    CHECK_STR(err, "nesting deeper than 3 at offset 3");
    /* a high limit grows the parser's own stack; the decoder never
     * recurses, but jansson frees a value recursively: no limit goes
     * past AEMP_JSON_DEPTH_LIMIT */
    const size_t lim = AEMP_JSON_DEPTH_LIMIT;
    v = aemp_json_decode(s + 1000000 - lim, 2 * lim, 30000, err, sizeof err);
    CHECK(json_is_array(v));
    json_decref(v);
    v = aemp_json_decode(s + 1000000 - lim - 1, 2 * lim + 2, UINT_MAX, err, sizeof err);
    CHECK(v == NULL);
    char want[64];
    snprintf(want, sizeof want, "nesting deeper than %zu at offset %zu", lim, lim);
    CHECK_STR(err, want);
    free(s);

    /* transcript 25: 601 levels, which the Perl node refused */
    json_t *tr = t_load_vectors("vectors/transcripts/25-raw-deep.json");
    const char *msg = json_string_value(json_array_get(json_object_get(json_object_get(tr, "messages"), "c2s"), 0));
    REQUIRE(msg);
    CHECK(aemp_json_decode(msg, strlen(msg), 0, err, sizeof err) == NULL);
    CHECK(!strncmp(err, "nesting deeper than 512", 23));
    json_decref(tr);
}

/* ---- transcripts -------------------------------------------------------- */

/* True when v holds an object with more than one member (its key order on
 * the wire is Perl's hash order, which no encoder can reproduce). */
static int has_multikey_object(const json_t *v)
{
    size_t i;
    const char *k;
    json_t *x;
    if (json_is_object(v)) {
        if (json_object_size(v) > 1) return 1;
        json_object_foreach((json_t *)v, k, x) if (has_multikey_object(x)) return 1;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) if (has_multikey_object(x)) return 1;
    }
    return 0;
}

static const char *const transcripts[] = {
    "01-hmac-messages", "02-monitor-kill", "04-keepalive", "05-dead-peer-timeout",
    "10-raw-cleartext", "11-raw-crlf",     "12-raw-whitespace", "26-raw-nonarray",
};

TEST(json_transcript_roundtrip)
{
    int exact = 0, semantic = 0;
    for (size_t t = 0; t < sizeof transcripts / sizeof transcripts[0]; t++) {
        json_t *tr = t_load_transcript(transcripts[t]);
        json_t *msgs = json_object_get(tr, "messages");
        for (int dir = 0; dir < 2; dir++) {
            json_t *list = json_object_get(msgs, dir ? "s2c" : "c2s");
            size_t i;
            json_t *m;
            json_array_foreach(list, i, m) {
                if (!json_is_string(m)) continue;
                const char *text = json_string_value(m);
                size_t len = json_string_length(m);
                json_t *v = decn(text, len);
                if (!v) {
                    t_fail(__FILE__, __LINE__, "%s %s #%zu does not decode", transcripts[t],
                           dir ? "s2c" : "c2s", i);
                    continue;
                }
                size_t n;
                char *out = aemp_json_encode(v, &n);
                REQUIRE(out);
                if (!has_multikey_object(v) &&
                    /* what the Perl sender wrote and we read differently:
                     * -0 and -9223372036854775808 (see the echo test) */
                    !(dir == 0 && (strstr(text, "\"ints\"") || strstr(text, "\"floats\"")))) {
                    if (n != len || memcmp(out, text, n))
                        t_fail(__FILE__, __LINE__, "%s #%zu:\n      got  %.200s\n      want %.200s",
                               transcripts[t], i, out, text);
                    exact++;
                } else {
                    json_t *back = decn(out, n);
                    CHECK(back && json_equal(back, v));
                    json_decref(back);
                    semantic++;
                }
                free(out);
                json_decref(v);
            }
        }
        json_decref(tr);
    }
    CHECK(exact >= 60);
    CHECK(semantic >= 3);
}

/* The echo port of transcript 01 sent back what Perl read from each of
 * our side's messages: reading a message the way we do and writing it
 * again must give what Perl wrote. */
TEST(json_transcript_echo_matches_perl)
{
    json_t *tr = t_load_transcript("01-hmac-messages");
    json_t *c2s = json_object_get(json_object_get(tr, "messages"), "c2s");
    json_t *s2c = json_object_get(json_object_get(tr, "messages"), "s2c");
    size_t i, j, pairs = 0;
    json_t *m, *r;
    json_array_foreach(c2s, i, m) {
        json_t *q = decn(json_string_value(m), json_string_length(m));
        REQUIRE(q);
        if (strcmp(json_string_value(json_array_get(q, 1)), "echo") != 0) {
            json_decref(q);
            continue;
        }
        const char *tag = json_string_value(json_array_get(q, 3));
        json_array_foreach(s2c, j, r) {
            json_t *a = decn(json_string_value(r), json_string_length(r));
            REQUIRE(a);
            const char *rtag = json_string_value(json_array_get(a, 2));
            if (!strcmp(json_string_value(json_array_get(a, 1)), "echoed") && rtag &&
                !strcmp(rtag, tag)) {
                json_t *ours = json_array(), *perls = json_array();
                for (size_t k = 3; k < json_array_size(q); k++)
                    json_array_append(ours, json_array_get(q, k));
                for (size_t k = 2; k < json_array_size(a); k++)
                    json_array_append(perls, json_array_get(a, k));
                char *x = aemp_json_encode(ours, NULL), *y = aemp_json_encode(perls, NULL);
                if (!has_multikey_object(perls))
                    CHECK_STR(x, y);
                else
                    CHECK(json_equal(ours, perls));
                free(x);
                free(y);
                json_decref(ours);
                json_decref(perls);
                pairs++;
            }
            json_decref(a);
        }
        json_decref(q);
    }
    CHECK_INT(pairs, 9);
    json_decref(tr);
}

/* ---- properties ------------------------------------------------------- */

static void rand_string(uint64_t *seed, char *buf, size_t *len, int nul)
{
    static const char *const pieces[] = {
        "a", "Z", "0", " ", "/", "\"", "\\", "\x7f", "\t", "\n", "\x01", "\x1f",
        "\xc3\xa9", "\xe4\xb8\x96", "\xf0\x9f\x98\x80", "\xe2\x80\xa8", "abcdefgh",
    };
    size_t n = t_rand(seed) % 12, w = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = t_rand(seed);
        if (nul && r % 29 == 0) {
            buf[w++] = '\0';
            continue;
        }
        const char *p = pieces[r % (sizeof pieces / sizeof pieces[0])];
        size_t l = strlen(p);
        memcpy(buf + w, p, l);
        w += l;
    }
    *len = w;
}

/* A random value: no reals that %.15g would round, no INT64_MIN (which
 * travels as a string, like in Perl). */
static json_t *rand_value(uint64_t *seed, int depth)
{
    uint64_t r = t_rand(seed);
    char buf[256];
    size_t n;
    switch (r % (depth > 4 ? 6 : 8)) {
    case 0: return json_null();
    case 1: return json_boolean(r >> 8 & 1);
    case 2: {
        json_int_t i = (json_int_t)t_rand(seed);
        if (i == INT64_MIN) i = 0;
        return json_integer(r >> 9 & 1 ? i : i % 1000);
    }
    case 3: /* never integral: 2.0 would come back as the integer 2 */
        return json_real((double)((json_int_t)(t_rand(seed) % 2000001) - 1000000) / 64 + 1.0 / 128);
    case 4:
    case 5: rand_string(seed, buf, &n, 1); return json_stringn(buf, n);
    case 6: {
        json_t *a = json_array();
        size_t k = t_rand(seed) % 5;
        for (size_t i = 0; i < k; i++) json_array_append_new(a, rand_value(seed, depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        size_t k = t_rand(seed) % 5;
        for (size_t i = 0; i < k; i++) {
            /* no NUL in keys: json_equal cannot compare such keys */
            rand_string(seed, buf, &n, 0);
            json_object_setn_new(o, buf, n, rand_value(seed, depth + 1));
        }
        return o;
    }
    }
}

TEST(json_roundtrip_random_vs_jansson)
{
    uint64_t seed = 777;
    for (int i = 0; i < 3000; i++) {
        json_t *v = rand_value(&seed, 0);
        size_t n;
        char *s = aemp_json_encode(v, &n);
        REQUIRE(s);
        /* ours decodes ours */
        json_t *a = decn(s, n);
        CHECK(a && json_equal(a, v));
        /* jansson reads what we write */
        json_error_t je;
        json_t *b = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        CHECK(b && json_equal(b, v));
        /* we read what jansson writes */
        char *js = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        json_t *c = js ? decn(js, strlen(js)) : NULL;
        CHECK(c && json_equal(c, v));
        if (t_failures) {
            fprintf(stderr, "    value: %s\n", s);
            free(s);
            free(js);
            return;
        }
        free(js);
        free(s);
        json_decref(a);
        json_decref(b);
        json_decref(c);
        json_decref(v);
    }
}

TEST(json_decode_mutations)
{
    /* flipped, dropped and inserted bytes in real messages: the decoder
     * must fail cleanly or give a value whose encoding is a fixed point
     * (reals and integers may trade places once: 1e5 comes back as 100000) */
    json_t *tr = t_load_transcript("01-hmac-messages");
    json_t *list = json_object_get(json_object_get(tr, "messages"), "c2s");
    uint64_t seed = 4242;
    static const char alphabet[] = "[]{},:\"\\u0123456789.eE+-tfnlrsa \xc3\xa9\xff\x80\x00";
    int ok = 0, bad = 0;
    for (int round = 0; round < 20000; round++) {
        json_t *m = json_array_get(list, t_rand(&seed) % json_array_size(list));
        size_t n = json_string_length(m);
        if (n > 2000) continue;
        char *s = malloc(n + 8);
        memcpy(s, json_string_value(m), n);
        int edits = 1 + (int)(t_rand(&seed) % 3);
        for (int k = 0; k < edits; k++) {
            size_t at = t_rand(&seed) % (n + 1);
            char c = alphabet[t_rand(&seed) % (sizeof alphabet - 1)];
            switch (t_rand(&seed) % 3) {
            case 0: if (at < n) s[at] = c; break;
            case 1: if (at < n) { memmove(s + at, s + at + 1, n - at - 1); n--; } break;
            default: memmove(s + at + 1, s + at, n - at); s[at] = c; n++; break;
            }
        }
        char err[AEMP_JSON_ERRMAX];
        json_t *v = aemp_json_decode(s, n, 0, err, sizeof err);
        if (v) {
            size_t en, en2 = 0;
            char *e = aemp_json_encode(v, &en);
            json_t *back = e ? decn(e, en) : NULL;
            char *e2 = back ? aemp_json_encode(back, &en2) : NULL;
            if (!e2 || en != en2 || memcmp(e, e2, en)) {
                t_fail(__FILE__, __LINE__, "not a fixed point: %.200s / %.200s", e ? e : "-",
                       e2 ? e2 : "-");
                round = 1 << 30;
            }
            json_decref(back);
            free(e);
            free(e2);
            json_decref(v);
            ok++;
        } else {
            CHECK(err[0] != '\0');
            bad++;
        }
        free(s);
    }
    CHECK(ok > 100 && bad > 100);
    json_decref(tr);
}

TEST(json_locale_independent)
{
    /* printf and strtod follow LC_NUMERIC; the wire format must not */
    static const char *const locs[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8",
                                       "ru_RU.UTF-8", "de_DE"};
    const char *got = NULL;
    for (size_t i = 0; i < sizeof locs / sizeof locs[0] && !got; i++)
        got = setlocale(LC_NUMERIC, locs[i]);
    CHECK_ENC(json_real(1.5), "1.5");
    CHECK_ENC(json_real(-2.5e-7), "-2.5e-07");
    CHECK_DEC_REAL("1.5", 1.5);
    CHECK_DEC_REAL("1.50000000000000000000000001", 1.5);
    CHECK_DEC_REAL("2.5e-320", 2.5e-320);
    setlocale(LC_NUMERIC, "C");
    if (!got)
        SKIP("no locale with a decimal comma is installed (de_DE, fr_FR, ru_RU): only the C "
             "locale was checked");
}

/* ---- the message fast paths ------------------------------------------- */

/* What aemp__json_decode_msg must agree with: the full decode of the text,
 * first element removed. NULL is allowed only where the full decoder fails
 * or the text is not [PLAIN-ASCII-STRING, ...]. */
static void check_decode_msg(const char *file, int line, const char *s, size_t n,
                             unsigned max_depth)
{
    const char *id = NULL;
    size_t idlen = 0;
    char err[AEMP_JSON_ERRMAX];
    json_t *fast = aemp__json_decode_msg(s, n, max_depth, &id, &idlen, NULL, NULL);
    json_t *full = aemp_json_decode(s, n, max_depth, err, sizeof err);
    if (fast) {
        const char *fid = json_string_value(json_array_get(full, 0));
        if (!json_is_array(full) || !fid || json_string_length(json_array_get(full, 0)) != idlen ||
            memcmp(fid, id, idlen)) {
            t_fail(file, line, "fast path took %.100s, full decode disagrees", s);
        } else {
            json_t *rest = json_array();
            for (size_t i = 1; i < json_array_size(full); i++)
                json_array_append(rest, json_array_get(full, i));
            if (!json_equal(rest, fast)) t_fail(file, line, "elements differ for %.100s", s);
            json_decref(rest);
        }
    } else if (full && json_is_array(full) && json_is_string(json_array_get(full, 0))) {
        /* only an id the fast path leaves alone may make it step aside */
        const unsigned char *q = memchr(s, '"', n), *e = (const unsigned char *)s + n;
        int special = 0;
        for (q = q ? q + 1 : e; q < e && *q != '"'; q++)
            if (*q == '\\' || *q >= 0x80 || *q < 0x20) special = 1;
        if (!special) t_fail(file, line, "fast path refused %.100s", s);
    }
    json_decref(fast);
    json_decref(full);
}
#define CHECK_DECODE_MSG(s, d) check_decode_msg(__FILE__, __LINE__, (s), strlen(s), (d))

TEST(json_decode_msg_cases)
{
    const char *id = NULL;
    size_t idlen = 0;
    json_t *v = aemp__json_decode_msg("[\"AbC.a\",\"tick\",12345]", 22, 0, &id, &idlen, NULL, NULL);
    REQUIRE(v);
    CHECK_INT(idlen, 5);
    CHECK(!memcmp(id, "AbC.a", 5));
    CHECK_INT(json_array_size(v), 2);
    CHECK_STR(json_string_value(json_array_get(v, 0)), "tick");
    CHECK_INT(json_integer_value(json_array_get(v, 1)), 12345);
    json_decref(v);
    /* the node port, whitespace, an id alone */
    v = aemp__json_decode_msg(" [ \"\" , \"devnull\" ] \n", 21, 0, &id, &idlen, NULL, NULL);
    CHECK(v && idlen == 0 && json_array_size(v) == 1);
    json_decref(v);
    v = aemp__json_decode_msg("[\"x\"]", 5, 0, &id, &idlen, NULL, NULL);
    CHECK(v && idlen == 1 && json_array_size(v) == 0);
    json_decref(v);
    /* shapes it leaves to the full decoder */
    static const char *const others[] = {
        "{\"a\":1}", "[]", "[1,\"x\"]", "[\"\\u0041\",1]", "[\"\xc3\xa9\",1]", "\"x\"", "",
        "[\"x\" 1]", "[\"x\",]", "[\"x\",1", "[\"x\"]]", "[\"x\",1]x", "[\"x\",\"\xff\"]",
        "[\"x\",[1}]", "[\"x\",{\"a\" 1}]", "[\"x\"",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        v = aemp__json_decode_msg(others[i], strlen(others[i]), 0, &id, &idlen, NULL, NULL);
        if (v) t_fail(__FILE__, __LINE__, "fast path took %s", others[i]);
        json_decref(v);
        CHECK_DECODE_MSG(others[i], 0);
    }
    CHECK(aemp__json_decode_msg(NULL, 0, 0, &id, &idlen, NULL, NULL) == NULL);
    /* the depth limit counts the message array, as in the full decoder */
    v = aemp__json_decode_msg("[\"x\",[[1]]]", 11, 3, &id, &idlen, NULL, NULL);
    CHECK(v != NULL);
    json_decref(v);
    CHECK(aemp__json_decode_msg("[\"x\",[[1]]]", 11, 2, &id, &idlen, NULL, NULL) == NULL);
    CHECK_DECODE_MSG("[\"x\",[[1]]]", 2);
    CHECK_DECODE_MSG("[\"x\",[[1]]]", 3);
    CHECK_DECODE_MSG("[\"x\",{\"k\\n\":[\"a\\u00e9\",-0.5e3,true,null]},\"\"]", 0);
}

TEST(json_decode_msg_matches_full_decode)
{
    /* every recorded message, then mutated ones */
    int fast = 0;
    for (size_t t = 0; t < sizeof transcripts / sizeof transcripts[0]; t++) {
        json_t *tr = t_load_transcript(transcripts[t]);
        json_t *msgs = json_object_get(tr, "messages");
        for (int dir = 0; dir < 2; dir++) {
            json_t *list = json_object_get(msgs, dir ? "s2c" : "c2s");
            size_t i;
            json_t *m;
            json_array_foreach(list, i, m) {
                if (!json_is_string(m)) continue;
                const char *id;
                size_t idlen;
                json_t *v = aemp__json_decode_msg(json_string_value(m), json_string_length(m), 0,
                                                  &id, &idlen, NULL, NULL);
                fast += v != NULL;
                json_decref(v);
                check_decode_msg(__FILE__, __LINE__, json_string_value(m), json_string_length(m),
                                 0);
            }
        }
        json_decref(tr);
    }
    CHECK(fast >= 60);
    json_t *tr = t_load_transcript("01-hmac-messages");
    json_t *list = json_object_get(json_object_get(tr, "messages"), "c2s");
    uint64_t seed = 99;
    static const char alphabet[] = "[]{},:\"\\u0123456789.eE+-tfnlrsa \xc3\xa9\xff\x80\x00";
    for (int round = 0; round < 20000 && !t_failures; round++) {
        json_t *m = json_array_get(list, t_rand(&seed) % json_array_size(list));
        size_t n = json_string_length(m);
        if (n > 2000) continue;
        char *s = malloc(n + 8);
        memcpy(s, json_string_value(m), n);
        size_t at = t_rand(&seed) % (n + 1);
        char c = alphabet[t_rand(&seed) % (sizeof alphabet - 1)];
        switch (t_rand(&seed) % 3) {
        case 0: if (at < n) s[at] = c; break;
        case 1: if (at < n) { memmove(s + at, s + at + 1, n - at - 1); n--; } break;
        default: memmove(s + at + 1, s + at, n - at); s[at] = c; n++; break;
        }
        check_decode_msg(__FILE__, __LINE__, s, n, (unsigned)(t_rand(&seed) % 4 == 0 ? 3 : 0));
        free(s);
    }
    json_decref(tr);
    /* random elements behind a plain id */
    for (int i = 0; i < 3000 && !t_failures; i++) {
        json_t *e = rand_value(&seed, 1);
        json_t *msg = json_pack("[so]", "Q1w2E3r4T5y.ab", e);
        size_t n;
        char *s = aemp_json_encode(msg, &n);
        REQUIRE(s);
        check_decode_msg(__FILE__, __LINE__, s, n, 0);
        free(s);
        json_decref(msg);
    }
}

/* aemp__json_encode_msg must write exactly what encoding the built
 * message [id, elements...] writes, and fail where that fails. */
TEST(json_encode_msg_matches_built_message)
{
    uint64_t seed = 5150;
    aemp__buf_t a = {0}, b = {0};
    for (int i = 0; i < 3000 && !t_failures; i++) {
        char id[64];
        size_t idlen;
        rand_string(&seed, id, &idlen, 0);
        json_t *elems = json_array();
        for (size_t k = t_rand(&seed) % 5; k > 0; k--)
            json_array_append_new(elems, rand_value(&seed, 1));
        json_t *msg = json_deep_copy(elems);
        json_array_insert_new(msg, 0, json_stringn(id, idlen));
        a.off = a.len = b.off = b.len = 0;
        CHECK_INT(aemp__json_encode_msg(&a, id, idlen, elems), 0);
        CHECK_INT(aemp__json_encode_buf(&b, msg), 0);
        if (aemp__buf_size(&a) != aemp__buf_size(&b) ||
            memcmp(aemp__buf_head(&a), aemp__buf_head(&b), aemp__buf_size(&a)))
            t_fail(__FILE__, __LINE__, "encode_msg: %.*s, built: %.*s", (int)aemp__buf_size(&a),
                   aemp__buf_head(&a), (int)aemp__buf_size(&b), aemp__buf_head(&b));
        json_decref(elems);
        json_decref(msg);
    }
    /* failures rewind: bad ids, not an array, a bad raw number */
    a.off = a.len = 0;
    REQUIRE(aemp__buf_append(&a, "keep", 4) == 0);
    json_t *e = json_pack("[si]", "tick", 1);
    CHECK_INT(aemp__json_encode_msg(&a, "\xff", 1, e), AEMP_EINVAL);
    CHECK_INT(aemp__json_encode_msg(&a, "\xed\xa0\x80", 3, e), AEMP_EINVAL);
    CHECK_INT(aemp__json_encode_msg(&a, "a\0b", 3, e), AEMP_EINVAL);
    CHECK_INT(aemp__json_encode_msg(&a, NULL, 0, e), AEMP_EINVAL);
    CHECK_INT(aemp__json_encode_msg(&a, "x", 1, json_object_get(e, "no")), AEMP_EINVAL);
    json_t *bad = json_pack("[s,o]", "first", json_stringn_nocheck("\xff" "x", 2));
    CHECK_INT(aemp__json_encode_msg(&a, "x", 1, bad), AEMP_EINVAL);
    CHECK_INT(aemp__buf_size(&a), 4);
    CHECK_INT(aemp__json_encode_msg(&a, "", 0, e), 0);
    CHECK_MEM(aemp__buf_head(&a), "keep[\"\",\"tick\",1]", 17);
    json_decref(bad);
    json_decref(e);
    /* the depth limit: a message nested exactly to the limit is written,
     * one level more fails, in both forms */
    for (int extra = 0; extra <= 1; extra++) {
        json_t *deep = json_array(), *inner = deep;
        for (int k = 0; k < AEMP_JSON_MAX_ENCODE_DEPTH - 2 + extra; k++) {
            json_t *x = json_array();
            json_array_append_new(inner, x);
            inner = x;
        }
        json_t *elems = json_pack("[O]", deep);
        json_t *msg = json_pack("[sO]", "x", deep);
        a.off = a.len = b.off = b.len = 0;
        int ra = aemp__json_encode_msg(&a, "x", 1, elems);
        int rb = aemp__json_encode_buf(&b, msg);
        CHECK_INT(ra, rb);
        CHECK_INT(rb, extra ? AEMP_EINVAL : 0);
        json_decref(elems);
        json_decref(msg);
        json_decref(deep);
    }
    aemp__buf_free(&a);
    aemp__buf_free(&b);
}
