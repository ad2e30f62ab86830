/*
 * handshake.c - the AEMP handshake engine: builds our greeting, parses the
 * peer's, picks auth method and framing, hands over to TLS when both sides
 * want it, and checks the peer's auth line. A pure state machine: bytes in,
 * bytes out, no sockets, clocks or globals; the nonce is injected.
 *
 * One engine speaks both dialects. What differs between protocol 0
 * (AnyEvent::MP 0.4) and protocol 1 (AnyEvent::MP 2.02) is data: a
 * profile (hs_profile_t below) with the version, nonce size, the auth
 * methods and their token functions, default lists, the greeting pairs,
 * the line after which the choices are made, and the error texts. The
 * code below reads the profile and never asks which protocol it speaks.
 *
 * Peer input is parsed with the semantics of the Perl node (Transport.pm
 * of the release the profile follows), which is what decides
 * interoperability: fields split like Perl's `split /;/` (trailing empty
 * fields dropped), numbers read like Perl numifies strings, KEY=VALUE
 * pairs like /^([^=]+)(?:=(.*))?/. Error texts are the Perl node's,
 * verbatim, so logs of both sides agree.
 */
#include "aemp_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

/* The only framing this library writes unless told otherwise. */
#define FRAMING_JSON "json"

enum phase {
    PH_LINE1,    /* waiting for the peer's greeting line 1 */
    PH_LINE2,    /* waiting for the peer's nonce line */
    PH_TLS_WAIT, /* TLS must run; waiting for aemp_hs_tls_up */
    PH_AUTH,     /* waiting for the peer's auth line */
    PH_DONE,
    PH_FAILED
};

/* A byte range that need not be NUL-terminated. */
typedef struct span {
    const char *p;
    size_t n;
} span_t;

typedef struct kv {
    const char *key;
    const char *val;
} kv_t;


typedef struct hs_method hs_method_t;
typedef aemp__hs_profile_t hs_profile_t;

struct aemp_hs {
    const hs_profile_t *prof;
    enum phase phase;
    int err_code;
    int reason;         /* AEMP__HS_SELF... when another module must tell */
    char *err_msg;      /* NULL when no error, else owned or err_static */
    int err_static;

    unsigned char *secret;
    size_t secret_len;
    int has_secret;     /* a secret is configured (protocol 1 may have none) */
    unsigned char secret_md6[32]; /* MD6-256 of the secret, once known */
    int secret_md6_ok;
    aemp__hmac_sha3_t *hmac_sha3; /* the secret made ready (borrowed), or NULL */
    char *auths_accept; /* comma list, as announced */
    char *auths_send;   /* comma list: methods we may send */
    char *framings;     /* comma list, as announced */
    char *framings_send; /* comma list: framings we can write */
    int tls;            /* TLS configured on our side */

    char *own_id;       /* our node id / noderef, as in our line 1 */
    char *l1, *l2;      /* our greeting lines, without LF */
    size_t l1_len, l2_len;
    /* the secret, the four lists, own_id, l1 and l2 live in one block
     * after the struct (aemp__hs_new): one allocation per handshake */

    char *r1, *r2;      /* the peer's lines, verbatim, NUL-terminated */
    size_t r1_len, r2_len;
    char *r1_split;     /* copy of r1 cut into NUL-terminated fields (in
                         * r1's allocation, as kv is) */
    const char *remote_id;
    kv_t *kv;
    size_t nkv;

    const hs_method_t *send_method; /* chosen from the peer's list */
    const hs_method_t *sent_method; /* in our queued auth line */
    char *send_framing;
    char *recv_auth, *recv_framing; /* one allocation, recv_auth's */

    int tls_role; /* 0 none, AEMP_HS_TLS_CLIENT or AEMP_HS_TLS_SERVER */
    int tls_up;
    int greeted;

    aemp__buf_t out;
    /* the line being received (less than AEMP_HS_MAX_LINE bytes): grown
     * as needed, released once the handshake is over */
    char *line;
    size_t line_len, line_cap;
};

/* ------------------------------------------------------------------ */
/* small helpers */

/* Zeroes memory holding secret-derived bytes; the volatile access keeps
 * the compiler from dropping a store to memory about to be freed. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--) *v++ = 0;
}

static char *dup_span(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* Copies n bytes and a NUL to *area; returns the copy and moves *area
 * past it. */
static char *area_put(char **area, const void *p, size_t n)
{
    char *s = *area;
    if (n) memcpy(s, p, n);
    s[n] = 0;
    *area += n + 1;
    return s;
}

static int span_eq(span_t a, const char *lit)
{
    size_t n = strlen(lit);
    return a.n == n && memcmp(a.p, lit, n) == 0;
}

/*
 * Fields of s split on sep, the way Perl's split does it: every separator
 * cuts, and trailing empty fields are dropped ("" has no fields, "a;;b;;"
 * has three). Fields past the end read as empty, like Perl's undef in
 * string context.
 */
typedef struct fields {
    span_t s;
    char sep;
    size_t pos;  /* where the next field starts */
    size_t left; /* fields still to return */
} fields_t;

static const char *find_sep(span_t s, size_t pos, char sep)
{
    return pos < s.n ? memchr(s.p + pos, sep, s.n - pos) : NULL;
}

static void fields_init(fields_t *it, span_t s, char sep)
{
    size_t fields = 0, pos = 0;
    it->s = s;
    it->sep = sep;
    it->pos = 0;
    it->left = 0;
    for (;;) {
        const char *q = find_sep(s, pos, sep);
        size_t end = q ? (size_t)(q - s.p) : s.n;
        fields++;
        if (end > pos) it->left = fields; /* last non-empty one so far */
        if (!q) break;
        pos = end + 1;
    }
}

static int fields_next(fields_t *it, span_t *f)
{
    if (!it->left) return 0;
    it->left--;
    const char *q = find_sep(it->s, it->pos, it->sep);
    size_t end = q ? (size_t)(q - it->s.p) : it->s.n;
    f->p = it->s.p + it->pos;
    f->n = end - it->pos;
    it->pos = end + 1;
    return 1;
}

/* The first n fields of s into out[], empty where s has fewer. */
static void split_head(span_t s, char sep, span_t *out, size_t n)
{
    fields_t it;
    fields_init(&it, s, sep);
    for (size_t i = 0; i < n; i++)
        if (!fields_next(&it, &out[i])) out[i] = (span_t){"", 0};
}

/* Is item one of the entries of the comma list? */
static int list_has(const char *list, span_t item)
{
    fields_t it;
    span_t e;
    fields_init(&it, (span_t){list, strlen(list)}, ',');
    while (fields_next(&it, &e))
        if (e.n && e.n == item.n && memcmp(e.p, item.p, e.n) == 0) return 1;
    return 0;
}

/*
 * A string as Perl numifies it: leading white space, a sign, "inf"/"nan",
 * or decimal digits with an optional fraction and exponent; anything after
 * that is ignored and no digits at all give 0. The digits are handed to
 * strtod without a decimal point (mantissa digits and an adjusted
 * exponent), which keeps the result independent of the C locale.
 */
static double perl_numify(span_t s)
{
    size_t i = 0;
    while (i < s.n && (s.p[i] == ' ' || (s.p[i] >= '\t' && s.p[i] <= '\r'))) i++;
    int neg = 0;
    if (i < s.n && (s.p[i] == '+' || s.p[i] == '-')) neg = s.p[i++] == '-';
    if (s.n - i >= 3) {
        const char *t = s.p + i;
        char a = (char)(t[0] | 0x20), b = (char)(t[1] | 0x20), c = (char)(t[2] | 0x20);
        if (a == 'i' && b == 'n' && c == 'f') return neg ? -INFINITY : INFINITY;
        if (a == 'n' && b == 'a' && c == 'n') return NAN;
    }
    char buf[AEMP_HS_MAX_LINE + 32];
    size_t nd = 0;
    long exp10 = 0;
    int any = 0;
    for (; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
        any = 1;
        if (nd || s.p[i] != '0') buf[1 + nd++] = s.p[i];
    }
    if (i < s.n && s.p[i] == '.') {
        for (i++; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
            any = 1;
            exp10--;
            if (nd || s.p[i] != '0') buf[1 + nd++] = s.p[i];
        }
    }
    if (!any || !nd) return neg ? -0.0 : 0.0;
    if (i + 1 < s.n && (s.p[i] == 'e' || s.p[i] == 'E')) {
        size_t j = i + 1;
        int eneg = 0;
        if (j < s.n && (s.p[j] == '+' || s.p[j] == '-')) eneg = s.p[j++] == '-';
        if (j < s.n && s.p[j] >= '0' && s.p[j] <= '9') {
            long e = 0;
            for (; j < s.n && s.p[j] >= '0' && s.p[j] <= '9'; j++)
                if (e < 1000000) e = e * 10 + (s.p[j] - '0');
            exp10 += eneg ? -e : e;
        }
    }
    buf[0] = neg ? '-' : '+';
    snprintf(buf + 1 + nd, sizeof buf - 1 - nd, "e%ld", exp10);
    return strtod(buf, NULL);
}

/* Standard base64 with padding (33 and 66 bytes need none). */
static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n) v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = 0;
}

/* Equality of a received token with the expected one. The content is
 * compared in constant time; only the lengths (64 for hmac, twice the
 * secret's length for cleartext) can show in the timing. */
static int token_equal(span_t got, const char *want, size_t want_len)
{
    size_t n = got.n < want_len ? got.n : want_len;
    int diff = aemp__ct_memcmp(got.p, want, n);
    return (got.n == want_len) & (diff == 0);
}

/* ------------------------------------------------------------------ */
/* tokens */

/*
 * The hmac_md6_64_256 token for the greeting lines in `lines` (sender's
 * first). As the Perl node computes it, the line text is the HMAC key and
 * MD6-256(secret) the message. A key over 64 bytes is hashed first; doing
 * that here, by streaming the lines into MD6, saves assembling them.
 */
static int auth_token(const unsigned char msg[32], const span_t lines[4], char out_hex[65])
{
    unsigned char key[64], mac[32];
    size_t keylen = 0;
    int rc;

    for (int i = 0; i < 4; i++) keylen += lines[i].n + 1;
    if (keylen <= sizeof key) {
        size_t o = 0;
        for (int i = 0; i < 4; i++) {
            if (lines[i].n) memcpy(key + o, lines[i].p, lines[i].n);
            o += lines[i].n;
            key[o++] = '\n';
        }
    } else {
        aemp_md6_ctx_t ctx;
        rc = aemp_md6_init(&ctx, 256);
        if (rc) goto out;
        for (int i = 0; i < 4; i++) {
            aemp_md6_update(&ctx, lines[i].p, lines[i].n);
            aemp_md6_update(&ctx, "\n", 1);
        }
        aemp_md6_final(&ctx, key);
        keylen = 32;
    }
    rc = aemp_hmac_md6(key, keylen, msg, 32, 64, 256, mac);
    if (rc == 0) aemp__hex(mac, sizeof mac, out_hex);
out:
    wipe(mac, sizeof mac);
    return rc;
}

int aemp_auth_token(const void *secret, size_t secret_len, const char *l1,
                    const char *l2, const char *r1, const char *r2,
                    char out_hex[65])
{
    if ((!secret && secret_len) || !l1 || !l2 || !r1 || !r2 || !out_hex)
        return AEMP_EINVAL;
    span_t lines[4] = {{l1, strlen(l1)}, {l2, strlen(l2)},
                       {r1, strlen(r1)}, {r2, strlen(r2)}};
    unsigned char msg[32];
    int rc = aemp_md6(256, secret_len ? secret : "", secret_len, msg);
    if (rc == 0) rc = auth_token(msg, lines, out_hex);
    wipe(msg, sizeof msg);
    return rc;
}


/* The protocol-1 digests over "l1 LF l2 LF r1 LF r2 LF" (sender's lines
 * first), as 128 lowercase hex digits: HMAC-SHA3-512 keyed with the secret
 * (keyed != 0) or plain SHA3-512. */
static int sha3_token(const void *key, size_t keylen, int keyed, aemp__hmac_sha3_t *ready,
                      const span_t lines[4], char out_hex[129])
{
    aemp__piece_t parts[8];
    unsigned char d[AEMP__SHA3_512_BYTES];
    for (int i = 0; i < 4; i++) {
        parts[2 * i] = (aemp__piece_t){lines[i].p, lines[i].n};
        parts[2 * i + 1] = (aemp__piece_t){"\n", 1};
    }
    int rc = !keyed ? aemp__sha3_512(parts, 8, d)
             : ready ? aemp__hmac_sha3_mac(ready, parts, 8, d)
                     : aemp__hmac_sha3_512(key, keylen, parts, 8, d);
    if (rc == 0) aemp__hex(d, sizeof d, out_hex);
    wipe(d, sizeof d);
    return rc;
}

int aemp_auth_token_sha3(const void *secret, size_t secret_len, const char *l1, const char *l2,
                         const char *r1, const char *r2, char out_hex[129])
{
    if ((!secret && secret_len) || !l1 || !l2 || !r1 || !r2 || !out_hex) return AEMP_EINVAL;
    span_t lines[4] = {{l1, strlen(l1)}, {l2, strlen(l2)}, {r1, strlen(r1)}, {r2, strlen(r2)}};
    return sha3_token(secret, secret_len, 1, NULL, lines, out_hex);
}

int aemp_auth_token_tls_sha3(const char *l1, const char *l2, const char *r1, const char *r2,
                             char out_hex[129])
{
    if (!l1 || !l2 || !r1 || !r2 || !out_hex) return AEMP_EINVAL;
    span_t lines[4] = {{l1, strlen(l1)}, {l2, strlen(l2)}, {r1, strlen(r1)}, {r2, strlen(r2)}};
    return sha3_token(NULL, 0, 0, NULL, lines, out_hex);
}

/* ------------------------------------------------------------------ */
/* auth methods: the token each one carries, over the greeting lines
 * sender's first (what we send: ours first; what we expect: the peer's
 * first). The token is written to out (token_room bytes, NUL-terminated),
 * its length to *len; the caller wipes it. */

typedef int (*token_fn)(const aemp_hs_t *hs, const span_t lines[4], char *out, size_t *len);

/* Room for any method's token and its NUL: a digest's hex, or the
 * secret's hex (cleartext). */
#define TOKEN_ROOM_FIXED 129
static size_t token_room(const aemp_hs_t *hs)
{
    size_t clear = 2 * hs->secret_len + 1;
    return clear > TOKEN_ROOM_FIXED ? clear : TOKEN_ROOM_FIXED;
}

static int tok_md6(const aemp_hs_t *hs, const span_t lines[4], char *out, size_t *len)
{
    /* the message is the secret's digest: the same for every token */
    aemp_hs_t *mut = (aemp_hs_t *)hs;
    int rc = 0;
    if (!hs->secret_md6_ok) {
        rc = aemp_md6(256, hs->secret_len ? hs->secret : (const void *)"", hs->secret_len,
                      mut->secret_md6);
        mut->secret_md6_ok = rc == 0;
    }
    if (rc == 0) rc = auth_token(hs->secret_md6, lines, out);
    if (rc == 0) *len = 64;
    return rc;
}

static int tok_sha3(const aemp_hs_t *hs, const span_t lines[4], char *out, size_t *len,
                    int keyed)
{
    int rc = sha3_token(hs->secret, hs->secret_len, keyed, hs->hmac_sha3, lines, out);
    if (rc == 0) *len = 128;
    return rc;
}

static int tok_hmac_sha3(const aemp_hs_t *hs, const span_t lines[4], char *out, size_t *len)
{
    return tok_sha3(hs, lines, out, len, 1);
}

static int tok_plain_sha3(const aemp_hs_t *hs, const span_t lines[4], char *out, size_t *len)
{
    return tok_sha3(hs, lines, out, len, 0);
}

/* cleartext: the secret in hex, whatever the lines */
static int tok_clear(const aemp_hs_t *hs, const span_t lines[4], char *out, size_t *len)
{
    aemp__hex(hs->secret, hs->secret_len, out);
    *len = 2 * hs->secret_len;
    return 0;
}

/* the TLS methods without a token: the data field is empty */
static int tok_empty(const aemp_hs_t *hs, const span_t lines[4], char *out, size_t *len)
{
    out[0] = 0;
    *len = 0;
    return 0;
}

/* What a method may do: the dialect's rules, as flags. */
#define MF_OFFER 0x01u        /* may be listed in auths_send */
#define MF_SEND_PLAIN 0x02u   /* may be sent on a connection without TLS */
#define MF_SEND_TLS 0x04u     /* may be sent inside TLS */
#define MF_NEEDS_TLS 0x08u    /* only inside TLS: never picked without it, and a
                               * peer's token counts only after tls_up */
#define MF_NEEDS_SECRET 0x10u /* a peer's token counts only with a secret */
#define MF_IN_ACCEPT 0x20u    /* the peer may use it only if we accept it */

struct hs_method {
    const char *name;
    unsigned flags;
    token_fn token;
};

/* Pairs we write in greeting line 1 (unless kv_override), in this order:
 * provider, peeraddr, timeout, the profile's fixed pairs, tls. */
#define KV_PROVIDER 0x01u
#define KV_PEERADDR 0x02u
#define KV_TIMEOUT 0x04u
#define KV_TLS 0x08u

struct aemp__hs_profile {
    int version;
    size_t nonce_bytes;
    const hs_method_t *methods;
    size_t nmethods;
    const char *accept, *send, *framings; /* defaults of the three lists */
    unsigned kv;                          /* KV_* */
    const char *fixed_kv;                 /* ";k=v..." written as is */
    int choose_at;       /* the peer's line (1 or 2) after which method and
                          * framing are chosen */
    int greeted_at;      /* the peer's line that sets GREETED; 1 also ends
                          * that feed call, so the driver sees the node id
                          * before anything else happens */
    int secret_optional; /* a NULL secret means "none configured" */
    int refuse_self;     /* a peer greeting with our own id is refused */
    int check_id;        /* an id we cannot route or log is refused */
    const hs_method_t *after_tls; /* the method sent once TLS is up; NULL:
                                   * the one chosen */
    struct {
        const char *unparsable; /* %s: the peer's first field */
        const char *version;    /* %s: the peer's version field */
        const char *self;
        const char *bad_id;     /* %s: the peer's id, %s: why */
        const char *echo;
        const char *no_auth;    /* %s: the peer's auth list */
        const char *no_framing; /* %s: the peer's framing list */
        const char *snd_method; /* %s: the method chosen */
        const char *no_secret;  /* no TLS and no secret */
        const char *rcv_method; /* %s: the peer's method */
        const char *mismatch;
        const char *framing;    /* %s: the peer's framing, %s: our list */
    } err;
};

/* Protocol 0, AnyEvent::MP 0.4. */
static const hs_method_t p0_methods[] = {
    {"hmac_md6_64_256", MF_OFFER | MF_SEND_PLAIN | MF_IN_ACCEPT, tok_md6},
    {"cleartext", MF_OFFER | MF_SEND_PLAIN | MF_IN_ACCEPT, tok_clear},
    {"tls", MF_NEEDS_TLS, tok_empty},
};

const hs_profile_t aemp__hs_profile0 = {
    .version = 0,
    .nonce_bytes = AEMP_NONCE_BYTES,
    .methods = p0_methods,
    .nmethods = sizeof p0_methods / sizeof p0_methods[0],
    .accept = "hmac_md6_64_256,cleartext",
    .send = "hmac_md6_64_256",
    .framings = FRAMING_JSON,
    .kv = KV_PROVIDER | KV_PEERADDR | KV_TIMEOUT | KV_TLS,
    .fixed_kv = "",
    .choose_at = 1,
    .greeted_at = 2,
    .after_tls = &p0_methods[2],
    .err = {
        .unparsable = "unparsable greeting",
        .version = "version mismatch (we: 0, they: %s)",
        .echo = "authentication error, echo attack?",
        .no_auth = "%s: no common auth type supported",
        .no_framing = "%s: no common framing method supported",
        .snd_method = "%s: fatal, selected unsupported snd auth method",
        .rcv_method = "%s: fatal, selected unsupported auth method",
        .mismatch = "authentication failure/shared secret mismatch",
        .framing = "%s: peer selected a framing we did not offer (we accept: %s)",
    },
};

/* Protocol 1, AnyEvent::MP 2.02 (PROTOCOL-1.md section 4). */
static const hs_method_t p1_methods[] = {
    {"tls_sha3_512", MF_OFFER | MF_SEND_TLS | MF_NEEDS_TLS, tok_plain_sha3},
    {"hmac_sha3_512", MF_OFFER | MF_SEND_PLAIN | MF_NEEDS_SECRET, tok_hmac_sha3},
    {"tls_anon", MF_OFFER | MF_SEND_TLS | MF_NEEDS_TLS, tok_empty},
    /* accepted, never sent: 2.02 fails if its offer makes it pick this */
    {"cleartext", MF_OFFER | MF_NEEDS_SECRET, tok_clear},
};

const hs_profile_t aemp__hs_profile1 = {
    .version = 1,
    .nonce_bytes = AEMP_NONCE1_BYTES,
    .methods = p1_methods,
    .nmethods = sizeof p1_methods / sizeof p1_methods[0],
    .accept = "tls_sha3_512,hmac_sha3_512,tls_anon,cleartext",
    .send = "tls_sha3_512,hmac_sha3_512",
    .framings = FRAMING_JSON,
    .kv = KV_PROVIDER | KV_PEERADDR | KV_TLS,
    .fixed_kv = ";mproto=1;gproto=1",
    .choose_at = 2,
    .greeted_at = 1,
    .secret_optional = 1,
    .refuse_self = 1,
    .check_id = 1,
    .err = {
        .unparsable = "unparsable greeting, expected 'aemp', got '%s'",
        .version = "version mismatch (we: 1, they: %s)",
        .self = "I refuse to talk to myself",
        .bad_id = "refusing node id '%s': %s",
        .echo = "authentication error, echo attack?",
        .no_auth = "%s: no common auth type supported",
        .no_framing = "%s: no common framing method supported",
        .snd_method = "%s: fatal, selected unsupported snd auth method",
        .no_secret = "unable to handshake TLS and no shared secret configured",
        .rcv_method = "%s: fatal, selected unsupported rcv auth method",
        .mismatch = "authentication failure/shared secret mismatch",
        .framing = "%s: unusable remote framing",
    },
};

/* The one place a protocol number names a profile (the public API's
 * aemp_hs_config_t.protocol); the node's dialects point at theirs. */
const hs_profile_t *aemp__hs_profile_find(int protocol)
{
    return protocol == 0 ? &aemp__hs_profile0 : protocol == 1 ? &aemp__hs_profile1 : NULL;
}

size_t aemp_hs_nonce_bytes(int protocol)
{
    const hs_profile_t *pf = aemp__hs_profile_find(protocol);
    return pf ? pf->nonce_bytes : 0;
}

static const hs_method_t *find_method(const hs_profile_t *pf, span_t name)
{
    for (size_t i = 0; i < pf->nmethods; i++)
        if (span_eq(name, pf->methods[i].name)) return &pf->methods[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* errors and output */

/* Once the outcome is known the secret is of no more use: do not keep it
 * around in memory. */
static void drop_secret(aemp_hs_t *hs)
{
    wipe(hs->secret_md6, sizeof hs->secret_md6);
    hs->secret_md6_ok = 0;
    if (!hs->secret) return;
    wipe(hs->secret, hs->secret_len); /* in hs's own block: not freed */
    hs->secret = NULL;
    hs->secret_len = 0;
}

static void set_error(aemp_hs_t *hs, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error and stops the engine. Lines queued before
 * stay available (whole lines only); nothing is queued afterwards. */
static void set_error(aemp_hs_t *hs, int code, const char *fmt, ...)
{
    if (hs->phase == PH_FAILED) return;
    hs->phase = PH_FAILED;
    hs->err_code = code;
    drop_secret(hs);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *m = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (m) {
        va_start(ap, fmt);
        vsnprintf(m, (size_t)n + 1, fmt, ap);
        va_end(ap);
        hs->err_msg = m;
    } else {
        /* No room for the text: the class of the error has to do. */
        hs->err_msg = (char *)aemp_strerror(code);
        hs->err_static = 1;
    }
}

static void fail_nomem(aemp_hs_t *hs)
{
    set_error(hs, AEMP_ENOMEM, "%s", aemp_strerror(AEMP_ENOMEM));
}

/*
 * The peer's text quoted in an error message ends up in a log line.
 * Control bytes and DEL are shown as \xNN, so a peer cannot end the line,
 * forge another entry or send escape sequences to a terminal; printable
 * text (all a real node ever sends) stays verbatim, as the Perl node
 * prints it. Returns a malloc'd string, or NULL on ENOMEM.
 */
static char *log_safe(span_t s)
{
    /* bytes of a text that is not UTF-8 are escaped too */
    unsigned high = aemp__utf8_valid(s.p, s.n) ? 0x100 : 0x80;
    size_t n = 0;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        n += c < 0x20 || c == 0x7f || c >= high ? 4 : 1;
    }
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c == 0x7f || c >= high) {
            static const char hex[] = "0123456789abcdef";
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    *o = 0;
    return out;
}

/*
 * Does the peer's text carry our secret, as raw bytes or as hex (what a
 * cleartext auth line holds)? A peer that knows the secret and sends a
 * broken cleartext line, e.g. with the ';' after the method lost, would
 * otherwise have it quoted in our log. Secrets under 4 bytes are not
 * looked for: they would match everywhere and protect nothing.
 */
static int holds_secret(const aemp_hs_t *hs, span_t peer, const char *safe)
{
    if (!hs->secret || hs->secret_len < 4) return 0;
    if (memmem(peer.p, peer.n, hs->secret, hs->secret_len)) return 1;
    char *hex = malloc(2 * hs->secret_len + 1);
    if (!hex) return 1; /* when in doubt, do not quote */
    aemp__hex(hs->secret, hs->secret_len, hex);
    int found = strcasestr(safe, hex) != NULL;
    wipe(hex, 2 * hs->secret_len);
    free(hex);
    return found;
}

/* The most of a peer's text an error message quotes (escaped bytes; then
 * "..."): a node's log line holds 1024 bytes. */
#define HS_QUOTE_MAX 512

/* Fails with a message that quotes one piece of peer text: fmt has one
 * %s, for that text made safe, then the optional `extra` string. */
static void set_error_peer(aemp_hs_t *hs, int code, const char *fmt, span_t peer,
                           const char *extra)
{
    char *safe = log_safe(peer);
    if (!safe) {
        fail_nomem(hs);
        return;
    }
    if (holds_secret(hs, peer, safe)) {
        free(safe);
        safe = strdup("(text holding the shared secret, not shown)");
        if (!safe) {
            fail_nomem(hs);
            return;
        }
    }
    /* cut a long text, so that what follows it (why) fits a log line;
     * "..." takes the room of what it replaces, so only a text longer
     * than the cut and the dots is cut */
    if (strlen(safe) > HS_QUOTE_MAX + 3) {
        size_t cut = HS_QUOTE_MAX;
        for (size_t k = cut - 3; k < HS_QUOTE_MAX; k++)
            if (safe[k] == '\\') { /* not inside an escape */
                cut = k;
                break;
            }
        memcpy(safe + cut, "...", 4);
    }
    /* the formats are the literals below, checked by hand */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    set_error(hs, code, fmt, safe, extra);
#pragma GCC diagnostic pop
    free(safe);
}

/* Queues "a;b;c\n" as one piece, so a failure never leaves half a line:
 * the room is made first, then nothing can fail. */
static int queue_auth_line(aemp_hs_t *hs, const char *method,
                           const char *data, size_t data_len)
{
    size_t ml = strlen(method), fl = strlen(hs->send_framing);
    if (aemp__buf_reserve(&hs->out, ml + 1 + data_len + 1 + fl + 1)) {
        fail_nomem(hs);
        return AEMP_ENOMEM;
    }
    aemp__buf_append(&hs->out, method, ml);
    aemp__buf_append(&hs->out, ";", 1);
    aemp__buf_append(&hs->out, data, data_len);
    aemp__buf_append(&hs->out, ";", 1);
    aemp__buf_append(&hs->out, hs->send_framing, fl);
    aemp__buf_append(&hs->out, "\n", 1);
    return 0;
}


/* ------------------------------------------------------------------ */
/* the peer's lines */

static const char *kv_get(const aemp_hs_t *hs, const char *key)
{
    /* Later pairs win: the Perl node builds a hash from them. */
    for (size_t i = hs->nkv; i-- > 0;)
        if (strcmp(hs->kv[i].key, key) == 0) return hs->kv[i].val;
    return NULL;
}

/*
 * The auth method and framing we send, from the peer's lists: the peer's
 * order decides, as in the Perl node. The method is the first of the
 * peer's that we may send (methods that need TLS only when tls); then the
 * profile's rules for the choice (TLS or not, a secret or not) apply.
 * The framing is the first of the peer's that we can write. Returns 0,
 * or -1 after failing the engine.
 */
static int choose(aemp_hs_t *hs, span_t auths, span_t framings, int tls)
{
    const hs_profile_t *pf = hs->prof;
    const hs_method_t *m = NULL;
    fields_t it;
    span_t e, framing = {NULL, 0};

    fields_init(&it, auths, ',');
    while (!m && fields_next(&it, &e)) {
        const hs_method_t *c = e.n && list_has(hs->auths_send, e) ? find_method(pf, e) : NULL;
        if (c && (tls || !(c->flags & MF_NEEDS_TLS))) m = c;
    }
    if (!m) {
        set_error_peer(hs, AEMP_EPROTO, pf->err.no_auth, auths, NULL);
        return -1;
    }
    fields_init(&it, framings, ',');
    while (!framing.p && fields_next(&it, &e))
        if (e.n && list_has(hs->framings_send, e)) framing = e;
    if (!framing.p) {
        set_error_peer(hs, AEMP_EPROTO, pf->err.no_framing, framings, NULL);
        return -1;
    }
    if (!tls && !hs->has_secret) {
        set_error(hs, AEMP_EAUTH, "%s", pf->err.no_secret);
        return -1;
    }
    if (!(m->flags & (tls ? MF_SEND_TLS : MF_SEND_PLAIN))) {
        set_error_peer(hs, AEMP_EAUTH, pf->err.snd_method, (span_t){m->name, strlen(m->name)},
                       NULL);
        return -1;
    }
    hs->send_method = m;
    hs->send_framing = dup_span(framing.p, framing.n);
    if (!hs->send_framing) {
        fail_nomem(hs);
        return -1;
    }
    return 0;
}

static void parse_line1(aemp_hs_t *hs, span_t line)
{
    const hs_profile_t *pf = hs->prof;
    span_t f[5];
    split_head(line, ';', f, 5);
    span_t aemp = f[0], version = f[1], id = f[2], auths = f[3], framings = f[4];
    fields_t it;
    span_t e;

    if (!span_eq(aemp, "aemp")) {
        set_error_peer(hs, AEMP_EPROTO, pf->err.unparsable, aemp, NULL);
        return;
    }
    if (perl_numify(version) != pf->version) {
        set_error_peer(hs, AEMP_EPROTO, pf->err.version, version, NULL);
        return;
    }
    if (pf->refuse_self && span_eq(id, hs->own_id)) {
        set_error(hs, AEMP_EPROTO, "%s", pf->err.self);
        hs->reason = AEMP__HS_SELF;
        return;
    }
    const char *why = pf->check_id ? aemp__nodeid_problem(id.p, id.n) : NULL;
    if (why) {
        set_error_peer(hs, AEMP_EPROTO, pf->err.bad_id, id, why);
        return;
    }
    if (pf->choose_at == 1 && choose(hs, auths, framings, 0)) return;

    /* Keep the line, and a copy cut into NUL-terminated fields that the
     * getters hand out. */
    fields_init(&it, line, ';');
    size_t nkv = it.left > 5 ? it.left - 5 : 0;
    /* one block (freed as r1): the two copies, then the pairs, aligned */
    size_t kv_at = (2 * (line.n + 1) + _Alignof(kv_t) - 1) / _Alignof(kv_t) * _Alignof(kv_t);
    char *a = malloc(kv_at + nkv * sizeof *hs->kv);
    if (!a) {
        fail_nomem(hs);
        return;
    }
    hs->kv = nkv ? (kv_t *)(void *)(a + kv_at) : NULL;
    hs->r1 = area_put(&a, line.p, line.n);
    hs->r1_split = area_put(&a, line.p, line.n);
    hs->r1_len = line.n;
    char *base = hs->r1_split;
    for (size_t i = 0; i < line.n; i++)
        if (base[i] == ';') base[i] = 0;
    hs->remote_id = id.n ? base + (id.p - line.p) : "";
    for (size_t i = 0; fields_next(&it, &e); i++) {
        if (i < 5) continue;
        /* /^([^=]+)(?:=(.*))?/: a field that is empty or starts with '='
         * does not match and is dropped; no '=' means an undef value. */
        if (e.n == 0 || e.p[0] == '=') continue;
        char *k = base + (e.p - line.p);
        char *eq = memchr(k, '=', e.n);
        hs->kv[hs->nkv].key = k;
        if (eq) {
            *eq = 0;
            hs->kv[hs->nkv].val = eq + 1;
        } else {
            hs->kv[hs->nkv].val = "";
        }
        hs->nkv++;
    }
    hs->phase = PH_LINE2;
    if (pf->greeted_at == 1) hs->greeted = 1;
}

/* A token's buffer: on the stack, unless a long secret's cleartext
 * token needs more. */
typedef struct token_buf {
    char stack[TOKEN_ROOM_FIXED];
    char *p;
    size_t n, room;
} token_buf_t;

static void token_buf_done(token_buf_t *t)
{
    if (!t->p) return;
    wipe(t->p, t->room);
    if (t->p != t->stack) free(t->p);
    t->p = NULL;
}

/* The token of method m over the four greeting lines, ours first (the
 * one we send) or the peer's first (the one we expect), into t (released
 * with token_buf_done). Returns 0, or -1 with the engine failed. */
static int method_token(aemp_hs_t *hs, const hs_method_t *m, int ours_first, token_buf_t *t)
{
    span_t l1 = {hs->l1, hs->l1_len}, l2 = {hs->l2, hs->l2_len};
    span_t r1 = {hs->r1, hs->r1_len}, r2 = {hs->r2, hs->r2_len};
    span_t lines[4] = {ours_first ? l1 : r1, ours_first ? l2 : r2, ours_first ? r1 : l1,
                       ours_first ? r2 : l2};
    t->n = 0;
    t->room = token_room(hs);
    t->p = t->room > sizeof t->stack ? malloc(t->room) : t->stack;
    int rc = t->p ? m->token(hs, lines, t->p, &t->n) : AEMP_ENOMEM;
    if (rc == AEMP_ENOMEM) fail_nomem(hs);
    else if (rc) set_error(hs, rc, "cannot compute the auth token: %s", aemp_strerror(rc));
    if (rc) token_buf_done(t);
    return rc ? -1 : 0;
}

/* Queues our auth line for method m: its token over our lines first. */
static void send_token_line(aemp_hs_t *hs, const hs_method_t *m)
{
    token_buf_t t;
    if (method_token(hs, m, 1, &t)) return;
    if (queue_auth_line(hs, m->name, t.p, t.n) == 0) hs->sent_method = m;
    token_buf_done(&t);
}

static void parse_line2(aemp_hs_t *hs, span_t line)
{
    const hs_profile_t *pf = hs->prof;
    hs->r2 = dup_span(line.p, line.n);
    if (!hs->r2) {
        fail_nomem(hs);
        return;
    }
    hs->r2_len = line.n;

    if (hs->l1_len == hs->r1_len && hs->l2_len == hs->r2_len &&
        memcmp(hs->l1, hs->r1, hs->r1_len) == 0 &&
        memcmp(hs->l2, hs->r2, hs->r2_len) == 0) {
        set_error(hs, AEMP_EAUTH, "%s", pf->err.echo);
        return;
    }
    if (pf->greeted_at == 2) hs->greeted = 1;

    const char *tls = kv_get(hs, "tls");
    double v = tls ? perl_numify((span_t){tls, strlen(tls)}) : 0.0;
    int use_tls = hs->tls && isfinite(v) && trunc(v) == 1.0;
    if (pf->choose_at == 2) {
        span_t f[5];
        split_head((span_t){hs->r1, hs->r1_len}, ';', f, 5);
        if (choose(hs, f[3], f[4], use_tls)) return;
    }
    if (use_tls) {
        /* Perl's `lt`: bytewise, a proper prefix is lower. */
        size_t n = hs->l2_len < hs->r2_len ? hs->l2_len : hs->r2_len;
        int c = memcmp(hs->l2, hs->r2, n);
        int lower = c < 0 || (c == 0 && hs->l2_len < hs->r2_len);
        hs->tls_role = lower ? AEMP_HS_TLS_CLIENT : AEMP_HS_TLS_SERVER;
        hs->phase = PH_TLS_WAIT;
        return;
    }
    /* Like the Perl node, answer at once, without waiting for the peer. */
    send_token_line(hs, hs->send_method);
    if (hs->phase != PH_FAILED) hs->phase = PH_AUTH;
}

static void parse_auth(aemp_hs_t *hs, span_t line)
{
    const hs_profile_t *pf = hs->prof;
    span_t f[3];
    split_head(line, ';', f, 3);
    span_t method = f[0], data = f[1], framing = f[2];

    hs->recv_auth = malloc(method.n + 1 + framing.n + 1);
    if (!hs->recv_auth) {
        fail_nomem(hs);
        return;
    }
    char *a = hs->recv_auth;
    area_put(&a, method.p, method.n);
    hs->recv_framing = area_put(&a, framing.p, framing.n);

    const hs_method_t *m = find_method(pf, method);
    if (!m || ((m->flags & MF_IN_ACCEPT) && !list_has(hs->auths_accept, method))) {
        set_error_peer(hs, AEMP_EAUTH, pf->err.rcv_method, method, NULL);
        return;
    }
    int ok = 0;
    if ((hs->tls_up || !(m->flags & MF_NEEDS_TLS)) &&
        (hs->has_secret || !(m->flags & MF_NEEDS_SECRET))) {
        token_buf_t want;
        if (method_token(hs, m, 0, &want)) return;
        ok = token_equal(data, want.p, want.n);
        token_buf_done(&want);
    }
    if (!ok) {
        set_error(hs, AEMP_EAUTH, "%s", pf->err.mismatch);
        return;
    }
    /* Protocol 0 nodes do not check this (they fail later, reading an
     * unknown framing); better to say why here. */
    if (!list_has(hs->framings, framing)) {
        set_error_peer(hs, AEMP_EPROTO, pf->err.framing, framing, hs->framings);
        return;
    }
    drop_secret(hs);
    hs->phase = PH_DONE;
}

/* ------------------------------------------------------------------ */
/* public interface */

static int field_ok(const char *s, int allow_semicolon)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || (*s == ';' && !allow_semicolon)) return 0;
    return 1;
}


/* Our line 1 is assembled in a fixed buffer before the engine is
 * allocated: a peer that keeps to the protocol refuses a line of
 * AEMP_HS_MAX_LINE bytes or more. */
typedef struct line_buf {
    char p[AEMP_HS_MAX_LINE];
    size_t n;
    int over; /* did not fit */
} line_buf_t;

static void put(line_buf_t *b, const char *s, size_t n)
{
    if (b->over || n >= sizeof b->p - b->n) {
        b->over = 1;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_str(line_buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_uint(line_buf_t *b, unsigned v)
{
    char d[16];
    size_t i = sizeof d;
    do d[--i] = (char)('0' + v % 10);
    while (v /= 10);
    put(b, d + i, sizeof d - i);
}

/* Our greeting line 1 into b (see the profile's kv for the pairs). */
static void build_line1(line_buf_t *b, const hs_profile_t *pf, const aemp_hs_config_t *cfg,
                        const char *accept, const char *framings, const char *provider)
{
    put(b, "aemp;", 5);
    put_uint(b, (unsigned)pf->version);
    put(b, ";", 1);
    put_str(b, cfg->noderef);
    put(b, ";", 1);
    put_str(b, accept);
    put(b, ";", 1);
    put_str(b, framings);
    if (cfg->kv_override) {
        if (*cfg->kv_override) {
            put(b, ";", 1);
            put_str(b, cfg->kv_override);
        }
        return;
    }
    if (pf->kv & KV_PROVIDER) {
        put(b, ";provider=", 10);
        put_str(b, provider);
    }
    if ((pf->kv & KV_PEERADDR) && cfg->peeraddr) {
        put(b, ";peeraddr=", 10);
        put_str(b, cfg->peeraddr);
    }
    if ((pf->kv & KV_TIMEOUT) && cfg->timeout) {
        put(b, ";timeout=", 9);
        put_uint(b, cfg->timeout);
    }
    put_str(b, pf->fixed_kv);
    if ((pf->kv & KV_TLS) && cfg->tls) put(b, ";tls=1.0", 8);
}

/* Is every entry of the comma list one of the profile's methods that may
 * be offered, and is there at least one? */
static int offer_ok(const hs_profile_t *pf, const char *list)
{
    fields_t it;
    span_t e;
    int any = 0;
    fields_init(&it, (span_t){list, strlen(list)}, ',');
    while (fields_next(&it, &e)) {
        if (!e.n) continue;
        const hs_method_t *m = find_method(pf, e);
        if (!m || !(m->flags & MF_OFFER)) return 0;
        any = 1;
    }
    return any;
}

/* Has the comma list at least one non-empty entry? */
static int list_nonempty(const char *list)
{
    fields_t it;
    span_t e;
    fields_init(&it, (span_t){list, strlen(list)}, ',');
    return fields_next(&it, &e);
}

aemp_hs_t *aemp_hs_new(const aemp_hs_config_t *cfg, int *err)
{
    return aemp__hs_new(cfg ? aemp__hs_profile_find(cfg->protocol) : NULL, cfg, err);
}

aemp_hs_t *aemp__hs_new(const hs_profile_t *pf, const aemp_hs_config_t *cfg, int *err)
{
    int rc = AEMP_EINVAL;
    aemp_hs_t *hs = NULL;
    if (err) *err = 0;
    if (!pf || !cfg->noderef || !*cfg->noderef || !cfg->nonce ||
        (!cfg->secret && cfg->secret_len))
        goto fail;

    const char *accept = cfg->auths_accept ? cfg->auths_accept : pf->accept;
    const char *send = cfg->auths_send ? cfg->auths_send : pf->send;
    const char *framings = cfg->framings ? cfg->framings : pf->framings;
    const char *fsend = cfg->framings_send ? cfg->framings_send : FRAMING_JSON;
    const char *provider = cfg->provider ? cfg->provider : "aemp-C-" AEMP_VERSION;
    if (!field_ok(cfg->noderef, 0) || !field_ok(accept, 0) || !field_ok(send, 0) ||
        !field_ok(framings, 0) || !field_ok(fsend, 0) || !field_ok(provider, 0) ||
        (cfg->peeraddr && !field_ok(cfg->peeraddr, 0)) ||
        (cfg->kv_override && !field_ok(cfg->kv_override, 1)))
        goto fail;
    if (!offer_ok(pf, send) || !list_nonempty(fsend)) goto fail;

    line_buf_t l1;
    l1.n = 0;
    l1.over = 0;
    build_line1(&l1, pf, cfg, accept, framings, provider);
    if (l1.over) goto fail;
    char l2[4 * ((AEMP_HS_NONCE_MAX + 2) / 3) + 1];
    base64(cfg->nonce, pf->nonce_bytes, l2);
    size_t l2_len = strlen(l2);

    /* the engine and every string it keeps for its whole life in one
     * block (a join storm makes thousands of engines) */
    size_t al = strlen(accept), sl = strlen(send), fl = strlen(framings), fsl = strlen(fsend);
    size_t il = strlen(cfg->noderef);
    size_t area = cfg->secret_len + 1 + al + 1 + sl + 1 + fl + 1 + fsl + 1 + il + 1 + l1.n + 1 +
                  l2_len + 1;
    rc = AEMP_ENOMEM;
    hs = calloc(1, sizeof *hs + area);
    if (!hs) goto fail;
    char *a = (char *)(hs + 1);
    hs->prof = pf;
    hs->phase = PH_LINE1;
    hs->tls = cfg->tls != 0;
    hs->has_secret = !pf->secret_optional || cfg->secret != NULL;
    hs->secret = (unsigned char *)area_put(&a, cfg->secret, cfg->secret_len);
    hs->secret_len = cfg->secret_len;
    hs->auths_accept = area_put(&a, accept, al);
    hs->auths_send = area_put(&a, send, sl);
    hs->framings = area_put(&a, framings, fl);
    hs->framings_send = area_put(&a, fsend, fsl);
    hs->own_id = area_put(&a, cfg->noderef, il);
    hs->l1 = area_put(&a, l1.p, l1.n);
    hs->l1_len = l1.n;
    hs->l2 = area_put(&a, l2, l2_len);
    hs->l2_len = l2_len;
    if (cfg->secret_md6) {
        memcpy(hs->secret_md6, cfg->secret_md6, sizeof hs->secret_md6);
        hs->secret_md6_ok = 1;
    }
    if (aemp__buf_reserve(&hs->out, l1.n + 1 + l2_len + 1)) goto fail;
    aemp__buf_append(&hs->out, hs->l1, hs->l1_len);
    aemp__buf_append(&hs->out, "\n", 1);
    aemp__buf_append(&hs->out, hs->l2, hs->l2_len);
    aemp__buf_append(&hs->out, "\n", 1);
    return hs;

fail:
    aemp_hs_free(hs);
    if (err) *err = rc;
    return NULL;
}

void aemp__hs_use_hmac_sha3(aemp_hs_t *hs, aemp__hmac_sha3_t *key)
{
    if (hs) hs->hmac_sha3 = key;
}

void aemp_hs_free(aemp_hs_t *hs)
{
    if (!hs) return;
    drop_secret(hs);
    /* the out buffer may have held the secret's hex (cleartext auth) */
    if (hs->out.data) wipe(hs->out.data, hs->out.cap);
    free(hs->r1); /* with r1_split and kv */
    free(hs->r2);
    free(hs->send_framing);
    free(hs->recv_auth); /* with recv_framing */
    free(hs->line);
    if (!hs->err_static) free(hs->err_msg);
    aemp__buf_free(&hs->out);
    free(hs);
}

unsigned aemp_hs_state(const aemp_hs_t *hs)
{
    if (!hs) return AEMP_HS_FAILED;
    unsigned st = aemp__buf_size(&hs->out) ? AEMP_HS_SEND : 0;
    if (hs->phase == PH_FAILED) return st | AEMP_HS_FAILED;
    if (hs->greeted) st |= AEMP_HS_GREETED;
    if (hs->phase == PH_TLS_WAIT) st |= (unsigned)hs->tls_role;
    if (hs->phase == PH_DONE) st |= AEMP_HS_DONE;
    return st;
}

size_t aemp_hs_feed(aemp_hs_t *hs, const void *buf, size_t len)
{
    const char *in = buf;
    size_t used = 0;
    if (!hs || !buf) return 0;
    while (used < len &&
           (hs->phase == PH_LINE1 || hs->phase == PH_LINE2 || hs->phase == PH_AUTH)) {
        const char *p = in + used;
        size_t n = len - used;
        const char *lf = memchr(p, '\n', n);
        size_t body = lf ? (size_t)(lf - p) : n;
        /* A line that already has AEMP_HS_MAX_LINE bytes before its LF
         * can only end up too long: fail at that byte. */
        if (hs->line_len + body >= AEMP_HS_MAX_LINE) {
            used += AEMP_HS_MAX_LINE - hs->line_len;
            hs->line_len = 0;
            set_error(hs, AEMP_ELIMIT, "handshake line too long (over %d bytes)",
                      AEMP_HS_MAX_LINE);
            break;
        }
        span_t line;
        if (lf && !hs->line_len) {
            /* the whole line is in the input (the usual case): parsed
             * where it is, since the parsers keep copies of what they
             * need */
            line = (span_t){p, body};
        } else {
            if (hs->line_len + body > hs->line_cap || !hs->line) {
                size_t cap = hs->line_cap ? hs->line_cap : 256;
                while (cap < hs->line_len + body) cap *= 2;
                if (cap > AEMP_HS_MAX_LINE) cap = AEMP_HS_MAX_LINE;
                char *nl = realloc(hs->line, cap);
                if (!nl) {
                    set_error(hs, AEMP_ENOMEM, "%s", aemp_strerror(AEMP_ENOMEM));
                    break;
                }
                hs->line = nl;
                hs->line_cap = cap;
            }
            if (body) memcpy(hs->line + hs->line_len, p, body);
            hs->line_len += body;
            if (!lf) {
                used += n;
                break;
            }
            line = (span_t){hs->line, hs->line_len};
            hs->line_len = 0;
        }
        used += body + 1;
        if (line.n && line.p[line.n - 1] == '\r') line.n--;
        int was_greeted = hs->greeted;
        switch (hs->phase) {
        case PH_LINE1: parse_line1(hs, line); break;
        case PH_LINE2: parse_line2(hs, line); break;
        case PH_AUTH: parse_auth(hs, line); break;
        default: break;
        }
        /* the driver sees GREETED before the engine goes on (see the
         * header): where the profile sets it after line 1, stop there */
        if (hs->greeted && !was_greeted && hs->phase == PH_LINE2) break;
    }
    if (hs->phase == PH_DONE || hs->phase == PH_FAILED) {
        /* no more lines: the buffer goes (the engine may be kept) */
        free(hs->line);
        hs->line = NULL;
        hs->line_len = hs->line_cap = 0;
    }
    return used;
}

const void *aemp_hs_out(aemp_hs_t *hs, size_t *len)
{
    size_t n = hs ? aemp__buf_size(&hs->out) : 0;
    if (len) *len = n;
    return n ? aemp__buf_head(&hs->out) : NULL;
}

void aemp_hs_out_ack(aemp_hs_t *hs, size_t n)
{
    if (!hs) return;
    size_t have = aemp__buf_size(&hs->out);
    aemp__buf_consume(&hs->out, n < have ? n : have);
    /* an engine kept for the rest of a link's life keeps no buffer */
    if (hs->phase == PH_DONE && !aemp__buf_size(&hs->out) && hs->out.data) {
        wipe(hs->out.data, hs->out.cap);
        aemp__buf_free(&hs->out);
    }
}

int aemp_hs_tls_up(aemp_hs_t *hs)
{
    if (!hs || hs->phase != PH_TLS_WAIT) return AEMP_ESTATE;
    hs->tls_up = 1;
    hs->phase = PH_AUTH;
    send_token_line(hs, hs->prof->after_tls ? hs->prof->after_tls : hs->send_method);
    return hs->phase == PH_FAILED ? hs->err_code : 0;
}

void aemp_hs_fail(aemp_hs_t *hs, int code, const char *message)
{
    if (!hs || hs->phase == PH_FAILED || hs->phase == PH_DONE) return;
    if (code >= 0) code = AEMP_EPROTO;
    set_error(hs, code, "%s", message ? message : aemp_strerror(code));
}

int aemp_hs_error_code(const aemp_hs_t *hs)
{
    return hs ? hs->err_code : AEMP_EINVAL;
}

const char *aemp_hs_error(const aemp_hs_t *hs)
{
    return hs && hs->err_msg ? hs->err_msg : "";
}

int aemp__hs_reason(const aemp_hs_t *hs)
{
    return hs ? hs->reason : 0;
}

char *aemp__hs_remote_kvs(const aemp_hs_t *hs, size_t *len)
{
    size_t n = 0;
    *len = 0;
    for (size_t i = 0; hs && i < hs->nkv; i++) n += strlen(hs->kv[i].key) + strlen(hs->kv[i].val) + 2;
    char *p = n ? malloc(n) : NULL;
    if (!p) return NULL;
    for (size_t i = 0, o = 0; i < hs->nkv; i++) {
        size_t kl = strlen(hs->kv[i].key) + 1, vl = strlen(hs->kv[i].val) + 1;
        memcpy(p + o, hs->kv[i].key, kl);
        memcpy(p + o + kl, hs->kv[i].val, vl);
        o += kl + vl;
    }
    *len = n;
    return p;
}

const char *aemp__hs_recv_method(const aemp_hs_t *hs)
{
    if (!hs || !hs->recv_auth) return NULL;
    const hs_method_t *m = find_method(hs->prof, (span_t){hs->recv_auth, strlen(hs->recv_auth)});
    return m ? m->name : NULL;
}

const char *aemp__hs_kv_find(const char *kvs, size_t len, const char *key)
{
    const char *found = NULL;
    for (size_t o = 0; kvs && key && o < len;) {
        const char *k = kvs + o, *v = k + strlen(k) + 1;
        if (!strcmp(k, key)) found = v;
        o = (size_t)(v + strlen(v) + 1 - kvs);
    }
    return found;
}

int aemp_hs_protocol(const aemp_hs_t *hs)
{
    return hs ? hs->prof->version : AEMP_EINVAL;
}

const char *aemp_hs_remote_noderef(const aemp_hs_t *hs)
{
    return hs ? hs->remote_id : NULL;
}

const char *aemp_hs_remote_id(const aemp_hs_t *hs)
{
    return aemp_hs_remote_noderef(hs);
}

const char *aemp_hs_remote_kv(const aemp_hs_t *hs, const char *key)
{
    return hs && key ? kv_get(hs, key) : NULL;
}

int aemp_hs_remote_timeout(const aemp_hs_t *hs)
{
    const char *v = hs ? kv_get(hs, "timeout") : NULL;
    if (!v || *v < '0' || *v > '9') return -1;
    long t = 0;
    for (; *v >= '0' && *v <= '9'; v++)
        if (t <= 1000000000) t = t * 10 + (*v - '0');
    /* A fraction is dropped; anything else makes it no number. */
    if (*v == '.')
        for (v++; *v >= '0' && *v <= '9'; v++) {}
    if (*v) return -1;
    return t > 1000000000 ? 1000000000 : (int)t;
}

const char *aemp_hs_send_framing(const aemp_hs_t *hs)
{
    return hs ? hs->send_framing : NULL;
}

const char *aemp_hs_recv_framing(const aemp_hs_t *hs)
{
    return hs ? hs->recv_framing : NULL;
}

const char *aemp_hs_send_auth(const aemp_hs_t *hs)
{
    return hs && hs->sent_method ? hs->sent_method->name : NULL;
}

const char *aemp_hs_recv_auth(const aemp_hs_t *hs)
{
    return hs ? hs->recv_auth : NULL;
}

const char *aemp_hs_local_line(const aemp_hs_t *hs, int which)
{
    if (!hs) return NULL;
    return which == 1 ? hs->l1 : which == 2 ? hs->l2 : NULL;
}

const char *aemp_hs_remote_line(const aemp_hs_t *hs, int which)
{
    if (!hs) return NULL;
    return which == 1 ? hs->r1 : which == 2 ? hs->r2 : NULL;
}
