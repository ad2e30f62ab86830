/*
 * harness.c - helpers shared by the tests: finding ../shared, loading the
 * golden vectors and transcripts, hex conversion, a deterministic PRNG,
 * feeding and draining a handshake engine.
 */
#include "test.h"

#include <stdlib.h>
#include <unistd.h>

#include "aemp.h"
#include "aemp_int.h"

void t_fail_mem(const char *file, int line, const char *what, const void *a,
                const void *b, size_t n)
{
    char *ha = malloc(2 * n + 1), *hb = malloc(2 * n + 1);
    if (ha && hb) {
        t_hex(a, n, ha);
        t_hex(b, n, hb);
        t_fail(file, line, "%s: %s != %s", what, ha, hb);
    } else {
        t_fail(file, line, "%s differs", what);
    }
    free(ha);
    free(hb);
}

const char *t_shared_path(const char *rel)
{
    static char buf[4096];
    const char *env = getenv("AEMP_SHARED");
    if (env && *env) {
        snprintf(buf, sizeof buf, "%s/%s", env, rel);
        return buf;
    }
    /* from the repository root, or from tests/ */
    static const char *tries[] = {"../shared", "../../shared", "../../../shared"};
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        snprintf(buf, sizeof buf, "%s/PROTOCOL.md", tries[i]);
        if (access(buf, R_OK) == 0) {
            snprintf(buf, sizeof buf, "%s/%s", tries[i], rel);
            return buf;
        }
    }
    snprintf(buf, sizeof buf, "../shared/%s", rel);
    return buf;
}

json_t *t_load_vectors(const char *rel)
{
    json_error_t e;
    const char *p = t_shared_path(rel);
    json_t *j = json_load_file(p, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!j) {
        fprintf(stderr, "cannot load %s: %s (line %d)\n", p, e.text, e.line);
        exit(1);
    }
    return j;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

unsigned char *t_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    unsigned char *p = malloc(n ? n : 1);
    if (!p) abort();
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    *len = n;
    return p;
}

void t_hex(const unsigned char *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

uint64_t t_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

const char *t_aemp_bin(void)
{
    const char *b = getenv("AEMP_BIN");
    return b && *b ? b : "build/aemp";
}

const char *t_build_dir(void)
{
    const char *b = getenv("AEMP_BUILD");
    return b && *b ? b : "build";
}

/* Loads a JSON file with the library's own decoder (jansson refuses the
 * integers beyond 64 bits that some transcripts hold). */
json_t *t_load_json_aemp(const char *rel)
{
    const char *path = t_shared_path(rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    char err[AEMP_JSON_ERRMAX];
    json_t *v = buf ? aemp_json_decode(buf, n, 0, err, sizeof err) : NULL;
    if (!v) {
        fprintf(stderr, "cannot load %s: %s\n", path, buf ? err : "out of memory");
        exit(1);
    }
    free(buf);
    return v;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes base64 (padding optional) into out; returns the byte count or
 * -1 on a bad character or when more than max bytes would result. */
int t_b64dec(const char *s, unsigned char *out, size_t max)
{
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *s && *s != '='; s++) {
        int v = b64val((unsigned char)*s);
        if (v < 0) return -1;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == max) return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return (int)n;
}

const char *t_jstr(const json_t *v, const char *key)
{
    const char *s = json_string_value(json_object_get(v, key));
    return s ? s : "";
}

long long t_jint(const json_t *v, const char *key)
{
    return json_integer_value(json_object_get(v, key));
}

unsigned char *t_gen_bytes(const char *gen, size_t len)
{
    unsigned char *m = malloc(len ? len : 1);
    if (!m) abort();
    if (!strcmp(gen, "seq251")) {
        for (size_t i = 0; i < len; i++) m[i] = (unsigned char)(i % 251);
    } else if (!strcmp(gen, "p7")) {
        for (size_t i = 0; i < len; i++) m[i] = (unsigned char)(0x11 * (1 + i % 7));
    } else if (!strcmp(gen, "mul31")) {
        for (size_t i = 0; i < len; i++) m[i] = (unsigned char)((31 * i + 7) % 256);
    } else {
        free(m);
        return NULL;
    }
    return m;
}

json_t *t_load_transcript(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "vectors/transcripts/%s.json", name);
    return t_load_json_aemp(path);
}

int t_greeting_fields(const char *l1, char *noderef, char *auths, char *framings, char *kv,
                      size_t cap)
{
    char *dst[5] = {NULL, NULL, noderef, auths, framings};
    const char *p = l1;
    for (int i = 0; i < 5; i++) {
        const char *q = strchr(p, ';');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (dst[i]) snprintf(dst[i], cap, "%.*s", (int)n, p);
        if (!q) {
            if (i < 4) return -1;
            p += n;
            break;
        }
        p = q + 1;
    }
    snprintf(kv, cap, "%s", p);
    return 0;
}

size_t t_hs_feed_str(aemp_hs_t *hs, const char *s)
{
    return aemp_hs_feed(hs, s, strlen(s));
}

void t_hs_drain(aemp_hs_t *hs, aemp__buf_t *sink)
{
    const void *p;
    size_t n;
    while ((p = aemp_hs_out(hs, &n)) != NULL) {
        if (sink) aemp__buf_append(sink, p, n);
        aemp_hs_out_ack(hs, n);
    }
    if (sink) {
        aemp__buf_reserve(sink, 1);
        sink->data[sink->len] = 0;
    }
}

/* Runs the perl script on the lines of input (see test.h). */
char *t_run_perl(const char *script, const char *input)
{
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[600], cmd[2048];
    snprintf(dir, sizeof dir, "%s/aemp-perl-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return NULL;
    const char *names[] = {"s.pl", "in", "out"};
    const char *bodies[] = {script, input};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        FILE *f = fopen(path, "w");
        if (!f) return NULL;
        fputs(bodies[k], f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "perl %s/s.pl < %s/in > %s/out", dir, dir, dir);
    int rc = system(cmd);
    snprintf(path, sizeof path, "%s/out", dir);
    char *out = NULL;
    FILE *f = fopen(path, "r");
    if (f && rc == 0) {
        size_t cap = 1 << 16, n = 0;
        out = malloc(cap);
        size_t k;
        while ((k = fread(out + n, 1, cap - n - 1, f)) > 0) {
            n += k;
            if (n + 1 == cap) out = realloc(out, cap *= 2);
        }
        out[n] = 0;
    }
    if (f) fclose(f);
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        unlink(path);
    }
    rmdir(dir);
    return out;
}
