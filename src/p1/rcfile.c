/*
 * rcfile.c - protocol-1 configuration (PROTOCOL-1 §1, §2): the rc file of
 * AnyEvent::MP 2.02 read as relaxed JSON, written back the way its aemp
 * tool writes it, profiles resolved along their parent chains, and the
 * effective values a node uses (secret bytes, node id, binds, seeds,
 * times, lists). Everything down to aemp_p1_config_make is pure; the file
 * functions at the end are a thin layer over it.
 */
#include "addr.h"
#include "aemp_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int aemp_random_source(void *ud, void *buf, size_t len)
{
    (void)ud;
    return aemp_random_bytes(buf, len);
}

/* ------------------------------------------------------------------ */
/* relaxed JSON                                                        */

/* The relaxed forms rewritten into strict JSON: comments and trailing
 * commas become spaces (offsets stay), a TAB inside a string becomes the
 * two bytes \t; tabs[] records where in the output each such expansion
 * starts, so an error offset can be mapped back to the input. */
typedef struct relaxed {
    char *out;
    size_t len;
    size_t *tabs;
    size_t ntabs, captabs;
} relaxed_t;

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* What follows position i outside strings, after whitespace and comments:
 * the byte, or 0 at the end. */
static char next_significant(const char *in, size_t len, size_t i)
{
    while (i < len) {
        if (is_ws(in[i])) {
            i++;
        } else if (in[i] == '#') {
            while (i < len && in[i] != '\n' && in[i] != '\r') i++;
        } else {
            return in[i];
        }
    }
    return 0;
}

static int relax(const char *in, size_t len, relaxed_t *r)
{
    enum { OUT, STR, ESC, COMMENT } st = OUT;
    size_t ntab = 0;
    for (size_t i = 0; i < len; i++) ntab += in[i] == '\t';
    memset(r, 0, sizeof *r);
    if (!(r->out = malloc(len + ntab + 1))) return AEMP_ENOMEM;
    char prev = 0; /* the last significant byte outside strings and comments */
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        switch (st) {
        case OUT:
            if (c == '"') {
                st = STR;
            } else if (c == '#') {
                st = COMMENT;
                c = ' ';
            } else if (c == ',') {
                char n = next_significant(in, len, i + 1);
                /* a comma after a value, before a closing bracket */
                if ((n == ']' || n == '}') && prev && !strchr("[{,:", prev)) c = ' ';
                prev = ',';
            } else if (!is_ws(c)) {
                prev = c;
            }
            break;
        case STR:
            if (c == '\\') {
                st = ESC;
            } else if (c == '"') {
                st = OUT;
                prev = '"';
            } else if (c == '\t') {
                if (r->ntabs == r->captabs) {
                    size_t cap = r->captabs ? 2 * r->captabs : 8;
                    size_t *t = realloc(r->tabs, cap * sizeof *t);
                    if (!t) return AEMP_ENOMEM;
                    r->tabs = t;
                    r->captabs = cap;
                }
                r->tabs[r->ntabs++] = o;
                r->out[o++] = '\\';
                c = 't';
            }
            break;
        case ESC:
            st = STR;
            break;
        case COMMENT:
            if (c == '\n' || c == '\r') st = OUT;
            else c = ' ';
            break;
        }
        r->out[o++] = c;
    }
    r->out[o] = 0;
    r->len = o;
    return 0;
}

static void relaxed_free(relaxed_t *r)
{
    free(r->out);
    free(r->tabs);
}

/* Rewrites the decoder's "... at offset N" into "... at line L, column C"
 * of the original input. */
static void locate_error(const char *dmsg, const relaxed_t *r, const char *in, size_t len,
                         char *err, size_t errlen)
{
    static const char tag[] = " at offset ";
    const char *at = strstr(dmsg, tag);
    char *end;
    unsigned long long off;
    if (!at || (errno = 0, off = strtoull(at + sizeof tag - 1, &end, 10), errno) || *end) {
        seterr(err, errlen, "%s", dmsg);
        return;
    }
    /* each expansion before the offset added one byte */
    size_t orig = (size_t)off;
    for (size_t k = 0; k < r->ntabs && r->tabs[k] < (size_t)off; k++) orig--;
    if (orig > len) orig = len;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < orig; i++) {
        if (in[i] == '\n') line++, col = 1;
        else col++;
    }
    seterr(err, errlen, "%.*s at line %zu, column %zu", (int)(at - dmsg), dmsg, line, col);
}

json_t *aemp_rc_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    relaxed_t r;
    if (!buf && len) {
        seterr(err, errlen, "no input");
        return NULL;
    }
    if (relax(buf ? buf : "", len, &r)) {
        relaxed_free(&r);
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    char dmsg[AEMP_JSON_ERRMAX];
    json_t *v = aemp_json_decode(r.out, r.len, 0, dmsg, sizeof dmsg);
    if (!v) locate_error(dmsg, &r, buf, len, err, errlen);
    relaxed_free(&r);
    if (v && !json_is_object(v)) {
        static const char *const names[] = {"an object", "an array", "a string", "a number",
                                            "a number", "true", "false", "null"};
        seterr(err, errlen, "the rc file holds %s, not a JSON object", names[json_typeof(v)]);
        json_decref(v);
        return NULL;
    }
    return v;
}

/* ------------------------------------------------------------------ */
/* writing: JSON::XS pretty + canonical                                */

typedef struct key_ref {
    const char *key;
    size_t len;
    json_t *value;
} key_ref_t;

static int key_cmp(const void *a, const void *b)
{
    const key_ref_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int indent(aemp__buf_t *b, unsigned level)
{
    static const char spaces[] = "            ";
    for (size_t n = (size_t)level * 3; n;) {
        size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        if (aemp__buf_append(b, spaces, k)) return AEMP_ENOMEM;
        n -= k;
    }
    return 0;
}

static int pretty(aemp__buf_t *b, const json_t *v, unsigned level)
{
    int rc = 0;
    if (level > AEMP_JSON_MAX_ENCODE_DEPTH) return AEMP_EINVAL;
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (!n) return aemp__buf_append(b, "[]", 2);
        if (aemp__buf_append(b, "[\n", 2)) return AEMP_ENOMEM;
        for (size_t i = 0; i < n && !rc; i++) {
            if ((rc = indent(b, level + 1))) break;
            if ((rc = pretty(b, json_array_get(v, i), level + 1))) break;
            rc = aemp__buf_append(b, i + 1 < n ? ",\n" : "\n", i + 1 < n ? 2 : 1);
        }
        if (!rc) rc = indent(b, level);
        return rc ? rc : aemp__buf_append(b, "]", 1);
    }
    if (!json_is_object(v)) return aemp__json_encode_buf(b, v);
    size_t n = json_object_size(v), i = 0;
    if (!n) return aemp__buf_append(b, "{}", 2);
    key_ref_t *keys = malloc(n * sizeof *keys);
    if (!keys) return AEMP_ENOMEM;
    for (void *it = json_object_iter((json_t *)v); it && i < n;
         it = json_object_iter_next((json_t *)v, it), i++) {
        keys[i].key = json_object_iter_key(it);
        keys[i].len = json_object_iter_key_len(it);
        keys[i].value = json_object_iter_value(it);
    }
    qsort(keys, i, sizeof *keys, key_cmp);
    rc = aemp__buf_append(b, "{\n", 2);
    for (size_t k = 0; k < i && !rc; k++) {
        json_t *key = json_stringn_nocheck(keys[k].key, keys[k].len);
        if (!key) rc = AEMP_ENOMEM;
        if (!rc) rc = indent(b, level + 1);
        if (!rc) rc = aemp__json_encode_buf(b, key);
        json_decref(key);
        if (!rc) rc = aemp__buf_append(b, " : ", 3);
        if (!rc) rc = pretty(b, keys[k].value, level + 1);
        if (!rc) rc = aemp__buf_append(b, k + 1 < i ? ",\n" : "\n", k + 1 < i ? 2 : 1);
    }
    free(keys);
    if (!rc) rc = indent(b, level);
    return rc ? rc : aemp__buf_append(b, "}", 1);
}

char *aemp_rc_format(const json_t *v, size_t *len)
{
    aemp__buf_t b = {0};
    if (!v || pretty(&b, v, 0) || aemp__buf_append(&b, "\n", 2)) {
        aemp__buf_free(&b);
        return NULL;
    }
    /* the NUL went in with the LF */
    if (len) *len = b.len - 1;
    return b.data;
}

/* ------------------------------------------------------------------ */
/* profiles                                                            */

static json_t *defaults(void)
{
    json_t *d = json_pack("{s:i, s:i, s:[sss], s:[ss], s:[ssss]}", "monitor_timeout", 30,
                          "connect_interval", 2, "framing_format", "cbor", "json", "storable",
                          "auth_offer", "tls_sha3_512", "hmac_sha3_512", "auth_accept",
                          "tls_sha3_512", "hmac_sha3_512", "tls_anon", "cleartext");
    return d;
}

/* The profile named name in rc: the object, NULL when there is none
 * (not an error), or (json_t *)-1 after an error. */
static json_t *find_one(const json_t *rc, const char *name, char *err, size_t errlen)
{
    json_t *profiles = json_object_get(rc, "profile");
    if (!profiles || json_is_null(profiles)) return NULL;
    if (!json_is_object(profiles)) {
        seterr(err, errlen, "\"profile\" is not a JSON object");
        return (json_t *)-1;
    }
    json_t *p = json_object_get(profiles, name);
    if (!p || json_is_null(p)) return NULL;
    if (!json_is_object(p)) {
        seterr(err, errlen, "profile '%s' is not a JSON object", name);
        return (json_t *)-1;
    }
    return p;
}

static void cycle_error(const char **names, size_t n, const char *again, char *err, size_t errlen)
{
    aemp__buf_t b = {0};
    static const char arrow[] = " -> ";
    int bad = aemp__buf_append(&b, "profile parent cycle: ", 22);
    for (size_t i = 0; i < n && !bad; i++) {
        bad = aemp__buf_append(&b, names[i], strlen(names[i])) ||
              aemp__buf_append(&b, arrow, sizeof arrow - 1);
    }
    bad = bad || aemp__buf_append(&b, again, strlen(again) + 1);
    seterr(err, errlen, "%s", bad ? "profile parent cycle" : b.data);
    aemp__buf_free(&b);
}

json_t *aemp_rc_profile(const json_t *rc, const char *name, const json_t *args, unsigned flags,
                        char *err, size_t errlen)
{
    if ((args && !json_is_object(args)) || (rc && !json_is_object(rc))) {
        seterr(err, errlen, "%s is not a JSON object", args && !json_is_object(args)
                                                           ? "the program's configuration"
                                                           : "the rc file");
        return NULL;
    }
    json_t *m = defaults();
    if (!m) goto nomem;
    int force = (flags & AEMP_RC_FORCE) != 0;
    if (args && !force && json_object_update(m, (json_t *)args)) goto nomem;
    if (rc && !(flags & AEMP_RC_NORC)) {
        const char *names[AEMP_RC_MAX_CHAIN];
        json_t *chain[AEMP_RC_MAX_CHAIN];
        size_t n = 0;
        for (const char *cur = name; cur;) {
            for (size_t i = 0; i < n; i++)
                if (!strcmp(names[i], cur)) {
                    cycle_error(names, n, cur, err, errlen);
                    goto fail;
                }
            if (n == AEMP_RC_MAX_CHAIN) {
                seterr(err, errlen, "profile parent chain longer than %d", AEMP_RC_MAX_CHAIN);
                goto fail;
            }
            json_t *p = find_one(rc, cur, err, errlen);
            if (p == (json_t *)-1) goto fail;
            names[n] = cur;
            chain[n++] = p;
            json_t *parent = p ? json_object_get(p, "parent") : NULL;
            if (parent && !json_is_null(parent) && !json_is_string(parent)) {
                seterr(err, errlen, "the parent of profile '%s' is not a string", cur);
                goto fail;
            }
            cur = parent ? json_string_value(parent) : NULL;
        }
        if (json_object_update(m, (json_t *)rc)) goto nomem;
        while (n--)
            if (chain[n] && json_object_update(m, chain[n])) goto nomem;
    }
    if (args && force && json_object_update(m, (json_t *)args)) goto nomem;
    return m;
nomem:
    seterr(err, errlen, "out of memory");
fail:
    json_decref(m);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* values                                                              */

/* One code point of strict UTF-8 at s (n bytes left): its length, or 0. */
static size_t utf8_one(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) return *cp = s[0], 1;
    size_t k = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (!k || k > n || s[0] > 0xf4) return 0;
    uint32_t c = s[0] & (0x7f >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min[k] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    *cp = c;
    return k;
}

int aemp_secret_from_utf8(const char *s, size_t len, unsigned char *out, size_t *outlen,
                          char *err, size_t errlen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, chars = 0;
    for (size_t i = 0; i < len; chars++) {
        uint32_t cp;
        size_t k = utf8_one(p + i, len - i, &cp);
        if (!k) {
            seterr(err, errlen, "secret: invalid UTF-8 at byte %zu", i);
            return AEMP_EINVAL;
        }
        if (cp > 0xff) {
            seterr(err, errlen,
                   "secret: character %zu is U+%04X, above U+00FF (AnyEvent::MP 2.02 uses one "
                   "byte per character and cannot use this secret)",
                   chars + 1, (unsigned)cp);
            return AEMP_EINVAL;
        }
        out[o++] = (unsigned char)cp;
        i += k;
    }
    *outlen = o;
    return 0;
}

int aemp_random_alnum(char *out, size_t n, aemp_random_fn rnd, void *ud)
{
    static const char alnum[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    unsigned char pool[64];
    size_t have = 0, used = 0;
    for (size_t i = 0; i < n;) {
        if (used == have) {
            have = sizeof pool;
            used = 0;
            if (!rnd || rnd(ud, pool, have)) {
                explicit_bzero(pool, sizeof pool);
                return AEMP_EIO;
            }
        }
        unsigned char b = pool[used++];
        if (b < 248) out[i++] = alnum[b % 62];
    }
    out[n] = 0;
    explicit_bzero(pool, sizeof pool);
    return 0;
}

char *aemp_nodeid_expand(const char *spec, size_t len, const char *hostname, aemp_random_fn rnd,
                         void *ud, int *randomised, char *err, size_t errlen)
{
    if (randomised) *randomised = 0;
    if (!spec || !len || (len == 1 && spec[0] == '0')) {
        seterr(err, errlen, "illegal node ID '%.*s' (empty or \"0\")", (int)len, spec ? spec : "");
        return NULL;
    }
    if (!hostname) hostname = "";
    size_t hl = strlen(hostname);
    aemp__buf_t a = {0}, b = {0};
    char uniq[AEMP_P1_NODEID_RANDOM_LEN + 1] = {0};
    int bad = 0, need_uniq = 0;
    /* Perl: s/%n/nodename/ge, then s!(?:(?<=/)$|%u)!$RUNIQ!g on the
     * result (so a "%u" in the host name is replaced too) */
    for (size_t i = 0; i < len && !bad; i++) {
        if (spec[i] == '%' && i + 1 < len && spec[i + 1] == 'n') {
            bad = aemp__buf_append(&a, hostname, hl);
            i++;
        } else {
            bad = aemp__buf_append(&a, spec + i, 1);
        }
    }
    for (size_t i = 0; i + 1 < a.len && !bad; i++) need_uniq |= a.data[i] == '%' && a.data[i + 1] == 'u';
    if (!bad && a.len && a.data[a.len - 1] == '/') need_uniq = 1;
    if (!bad && need_uniq) {
        if (aemp_random_alnum(uniq, AEMP_P1_NODEID_RANDOM_LEN, rnd, ud)) {
            seterr(err, errlen, "no random bytes for the node ID");
            goto fail;
        }
        char *last = &uniq[AEMP_P1_NODEID_RANDOM_LEN - 1];
        if (*last >= 'a' && *last <= 'z') *last = (char)(*last - 'a' + 'A');
    }
    for (size_t i = 0; i < a.len && !bad; i++) {
        if (a.data[i] == '%' && i + 1 < a.len && a.data[i + 1] == 'u') {
            bad = aemp__buf_append(&b, uniq, AEMP_P1_NODEID_RANDOM_LEN);
            i++;
        } else {
            bad = aemp__buf_append(&b, a.data + i, 1);
        }
    }
    if (!bad && a.len && a.data[a.len - 1] == '/')
        bad = aemp__buf_append(&b, uniq, AEMP_P1_NODEID_RANDOM_LEN);
    if (!bad) bad = aemp__buf_append(&b, "", 1);
    if (bad) {
        seterr(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i + 1 < b.len; i++) {
        char c = b.data[i];
        if (c == '#' || c == ';' || c == 0 || c == '\n' || c == '\r') {
            static const char *const what[] = {"'#'", "';'", "a NUL byte", "a line end"};
            int w = c == '#' ? 0 : c == ';' ? 1 : c == 0 ? 2 : 3;
            seterr(err, errlen, "illegal node ID '%.*s': it contains %s", (int)strnlen(b.data, b.len),
                   b.data, what[w]);
            goto fail;
        }
    }
    aemp__buf_free(&a);
    if (randomised) *randomised = need_uniq;
    explicit_bzero(uniq, sizeof uniq);
    return b.data;
fail:
    aemp__buf_free(&a);
    aemp__buf_free(&b);
    return NULL;
}

/* Perl's truth of a value: false, null, 0, 0.0, "" and "0" are false. */
static int perl_true(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE: return 0;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0.0;
    case JSON_STRING: {
        size_t n = json_string_length(v);
        return !(n == 0 || (n == 1 && json_string_value(v)[0] == '0'));
    }
    default: return 1;
    }
}

/* A string value without NUL bytes, or NULL. */
static const char *plain_string(const json_t *v)
{
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    return strlen(s) == json_string_length(v) ? s : NULL;
}

/* An array of strings into a NULL-terminated malloc'd vector. */
static int string_list(const json_t *v, const char *key, char ***out, size_t *count, char *err,
                       size_t errlen)
{
    if (!json_is_array(v)) {
        seterr(err, errlen, "%s: not a JSON array of strings", key);
        return AEMP_EINVAL;
    }
    size_t n = json_array_size(v);
    char **l = calloc(n + 1, sizeof *l);
    if (!l) goto nomem;
    for (size_t i = 0; i < n; i++) {
        const char *s = plain_string(json_array_get(v, i));
        if (!s) {
            seterr(err, errlen, "%s: element %zu is not a string (or holds a NUL byte)", key, i);
            aemp__strv_free(l);
            return AEMP_EINVAL;
        }
        if (!(l[i] = strdup(s))) {
            aemp__strv_free(l);
            goto nomem;
        }
    }
    *out = l;
    *count = n;
    return 0;
nomem:
    seterr(err, errlen, "out of memory");
    return AEMP_ENOMEM;
}

/* A time in seconds: a number, or a string holding only one (Perl would
 * take any prefix; a typo is better reported). */
static int seconds(const json_t *v, const char *key, double *out, char *err, size_t errlen)
{
    double d = NAN;
    if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (plain_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        d = strtod(s, &end);
        while (is_ws(*end)) end++;
        if (end == s || *end || errno) d = NAN;
    }
    if (!isfinite(d) || d < 0) {
        seterr(err, errlen, "%s: not a number of seconds >= 0", key);
        return AEMP_EINVAL;
    }
    *out = d;
    return 0;
}

static const json_t *val(const json_t *m, const char *key)
{
    const json_t *v = json_object_get(m, key);
    return v && !json_is_null(v) ? v : NULL;
}

int aemp_p1_config_make(aemp_p1_config_t *c, const json_t *merged, const char *profile,
                        const char *hostname, aemp_random_fn rnd, void *ud, char *err,
                        size_t errlen)
{
    memset(c, 0, sizeof *c);
    int rc = AEMP_EINVAL;
    const json_t *v;
    if (!json_is_object(merged) || !profile) {
        seterr(err, errlen, "no configuration object or profile");
        return AEMP_EINVAL;
    }
    c->monitor_timeout = 30;
    c->connect_interval = 2;
    c->nodelay = 1;
    if (!(c->profile = strdup(profile))) goto nomem;

    /* the node id: "PROFILE/" unless set; a null one is illegal, as in Perl */
    json_t *id = json_object_get(merged, "nodeid");
    if (id && !json_is_string(id)) {
        seterr(err, errlen, "nodeid: not a string");
        goto fail;
    }
    aemp__buf_t dflt = {0};
    if (!id && (aemp__buf_append(&dflt, profile, strlen(profile)) ||
                aemp__buf_append(&dflt, "/", 1))) {
        aemp__buf_free(&dflt);
        goto nomem;
    }
    c->nodeid = aemp_nodeid_expand(id ? json_string_value(id) : dflt.data,
                                   id ? json_string_length(id) : dflt.len, hostname, rnd, ud,
                                   &c->nodeid_randomised, err, errlen);
    aemp__buf_free(&dflt);
    if (!c->nodeid) goto fail;

    if ((v = val(merged, "secret"))) {
        if (!json_is_string(v)) {
            seterr(err, errlen, "secret: not a string");
            goto fail;
        }
        size_t n = json_string_length(v);
        if (!(c->secret = malloc(n ? n : 1))) goto nomem;
        if ((rc = aemp_secret_from_utf8(json_string_value(v), n, c->secret, &c->secret_len, err,
                                        errlen)))
            goto fail;
    }
    if ((v = val(merged, "cert"))) {
        if (!plain_string(v)) {
            seterr(err, errlen, "cert: not a string (PEM text)");
            goto fail;
        }
        if (!(c->cert = strdup(json_string_value(v)))) goto nomem;
    }
    if ((v = val(merged, "binds"))) {
        if ((rc = string_list(v, "binds", &c->binds, &c->nbinds, err, errlen))) goto fail;
    } else {
        if (!(c->binds = calloc(2, sizeof *c->binds)) || !(c->binds[0] = strdup("*"))) goto nomem;
        c->nbinds = 1;
    }
    if ((v = val(merged, "seeds"))) {
        if ((rc = string_list(v, "seeds", &c->seeds, &c->nseeds, err, errlen))) goto fail;
    } else if (!(c->seeds = calloc(1, sizeof *c->seeds))) {
        goto nomem;
    }
    if ((v = val(merged, "services"))) {
        if (!json_is_array(v)) {
            seterr(err, errlen, "services: not a JSON array");
            goto fail;
        }
        c->services = json_incref((json_t *)v);
    } else if (!(c->services = json_array())) {
        goto nomem;
    }
    if ((v = val(merged, "monitor_timeout")) &&
        (rc = seconds(v, "monitor_timeout", &c->monitor_timeout, err, errlen)))
        goto fail;
    if ((v = val(merged, "connect_interval")) &&
        (rc = seconds(v, "connect_interval", &c->connect_interval, err, errlen)))
        goto fail;
    static const char *const lists[] = {"framing_format", "auth_offer", "auth_accept"};
    char ***lv[] = {&c->framing_format, &c->auth_offer, &c->auth_accept};
    size_t *ln[] = {&c->nframing_format, &c->nauth_offer, &c->nauth_accept};
    for (size_t i = 0; i < 3; i++) {
        /* the defaults are in merged; null means an empty list */
        v = val(merged, lists[i]);
        if (!v) {
            if (!(*lv[i] = calloc(1, sizeof(char *)))) goto nomem;
        } else if ((rc = string_list(v, lists[i], lv[i], ln[i], err, errlen))) {
            goto fail;
        }
    }
    if ((v = val(merged, "secure"))) c->secure = perl_true(v);
    if ((v = val(merged, "autocork"))) c->autocork = perl_true(v);
    if ((v = json_object_get(merged, "nodelay"))) c->nodelay = perl_true(v);
    return 0;
nomem:
    seterr(err, errlen, "out of memory");
    rc = AEMP_ENOMEM;
fail:
    /* rc may hold the 0 of a step that went well before the failing one */
    if (!rc) rc = AEMP_EINVAL;
    aemp_p1_config_free(c);
    return rc;
}

int aemp_p1_node_config(aemp_node_config_t *nc, const aemp_p1_config_t *c)
{
    if (!nc || !c) return AEMP_EINVAL;
    double mt = c->monitor_timeout;
    nc->protocol = 1;
    nc->nodeid = c->nodeid;
    nc->binds = (const char *const *)c->binds;
    nc->nbinds = c->nbinds;
    nc->seeds = (const char *const *)c->seeds;
    nc->nseeds = c->nseeds;
    nc->secret = (const char *)c->secret;
    nc->secret_len = c->secret_len;
    nc->cert = c->cert;
    nc->cert_len = c->cert ? strlen(c->cert) : 0;
    nc->timeout = mt >= 1 && mt < 86400 ? (unsigned)(mt + 0.999) : 0;
    nc->connect_interval = c->connect_interval;
    nc->secure = c->secure;
    return 0;
}

void aemp_p1_config_free(aemp_p1_config_t *c)
{
    if (!c) return;
    if (c->secret) explicit_bzero(c->secret, c->secret_len);
    free(c->secret);
    if (c->cert) explicit_bzero(c->cert, strlen(c->cert));
    free(c->cert);
    free(c->profile);
    free(c->nodeid);
    aemp__strv_free(c->binds);
    aemp__strv_free(c->seeds);
    aemp__strv_free(c->framing_format);
    aemp__strv_free(c->auth_offer);
    aemp__strv_free(c->auth_accept);
    json_decref(c->services);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------ */
/* the file                                                            */

int aemp_rc_path(char *buf, size_t n)
{
    const char *rc = getenv("PERL_ANYEVENT_MP_RC"), *home = getenv("HOME");
    int len;
    if (rc) len = snprintf(buf, n, "%s", rc);
    else if (home) len = snprintf(buf, n, "%s/.perl-anyevent-mp", home);
    else return AEMP_ENOENT;
    return len < 0 || (size_t)len >= n ? AEMP_ELIMIT : 0;
}

json_t *aemp_rc_load(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            json_t *v = json_pack("{s:i}", "version", 1);
            if (!v) seterr(err, errlen, "out of memory");
            return v;
        }
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    aemp__buf_t b = {0};
    json_t *v = NULL;
    for (;;) {
        if (b.len > AEMP_RC_MAX_FILE) {
            seterr(err, errlen, "%s: larger than %u bytes", path, AEMP_RC_MAX_FILE);
            goto out;
        }
        if (aemp__buf_reserve(&b, 65536)) {
            seterr(err, errlen, "%s: out of memory", path);
            goto out;
        }
        ssize_t r = read(fd, b.data + b.len, 65536);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            seterr(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0) break;
        b.len += (size_t)r;
    }
    char why[AEMP_RC_ERRMAX];
    v = aemp_rc_parse(b.data, b.len, why, sizeof why);
    if (!v) seterr(err, errlen, "%s: %s", path, why);
out:
    close(fd);
    if (b.data) explicit_bzero(b.data, b.cap);
    aemp__buf_free(&b);
    return v;
}

int aemp_rc_save(const char *path, const json_t *rc, char *err, size_t errlen)
{
    if (!json_is_object(rc)) {
        seterr(err, errlen, "%s: the configuration is not a JSON object", path);
        return AEMP_EINVAL;
    }
    json_t *copy = json_copy((json_t *)rc);
    if (!copy || (!json_object_get(copy, "version") &&
                  json_object_set_new(copy, "version", json_integer(1)))) {
        json_decref(copy);
        seterr(err, errlen, "%s: out of memory", path);
        return AEMP_ENOMEM;
    }
    size_t len;
    char *text = aemp_rc_format(copy, &len);
    json_decref(copy);
    if (!text) {
        seterr(err, errlen, "%s: the configuration cannot be written as JSON", path);
        return AEMP_EINVAL;
    }
    int rc_ = AEMP_EIO;
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    int fd = -1;
    if (!tmp) {
        seterr(err, errlen, "%s: out of memory", path);
        rc_ = AEMP_ENOMEM;
        goto out;
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".new-XXXXXX", 12);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        seterr(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600)) goto io;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto io;
        off += (size_t)w;
    }
    if (fsync(fd)) goto io;
    if (close(fd)) {
        fd = -1;
        goto io;
    }
    fd = -1;
    if (rename(tmp, path)) goto io;
    rc_ = 0;
    goto out;
io:
    seterr(err, errlen, "%s: %s", path, strerror(errno));
    unlink(tmp);
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(tmp);
    explicit_bzero(text, len);
    free(text);
    return rc_;
}

int aemp_p1_config_load(aemp_p1_config_t *c, const char *profile, const json_t *args,
                        unsigned flags, char *err, size_t errlen)
{
    char host[256], path[4096];
    json_t *rc = NULL;
    memset(c, 0, sizeof *c);
    aemp__hostname(host, sizeof host);
    if (!(flags & AEMP_RC_NORC)) {
        int r = aemp_rc_path(path, sizeof path);
        if (r) {
            seterr(err, errlen, "no rc file: neither PERL_ANYEVENT_MP_RC nor HOME is set%s",
                   r == AEMP_ELIMIT ? " (or the path is too long)" : "");
            return r;
        }
        if (!(rc = aemp_rc_load(path, err, errlen))) return AEMP_EINVAL;
    }
    if (!profile) profile = host;
    json_t *m = aemp_rc_profile(rc, profile, args, flags, err, errlen);
    json_decref(rc);
    if (!m) return AEMP_EINVAL;
    int r = aemp_p1_config_make(c, m, profile, host, aemp_random_source, NULL, err, errlen);
    json_decref(m);
    return r;
}
