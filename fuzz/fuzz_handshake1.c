/*
 * fuzz_handshake1.c - fuzz target for the handshake engine speaking
 * protocol 1 (AnyEvent::MP 2.02). The first input byte chooses the mode
 * and the configuration.
 *
 * Peer mode (bit 0 clear): one engine, the rest of the input is what the
 * peer sends, fed whole or in pieces. Flags: bit 1 TLS configured, bit 2
 * no secret, bit 3 we offer "tls_anon,hmac_sha3_512,cleartext", bit 4 we
 * accept the framings "json,cbor", bit 5 complete TLS when asked (else
 * fail it), bit 6 our side is given as three lines before the peer bytes
 * (greeting line 1, nonce in base64, secret in hex or "-" for none: a
 * recorded session then replays up to the data phase), bit 7 feed in
 * pieces.
 *
 * Pair mode (bit 0 set): two engines talk through queues cut where the
 * input says; bytes 1 and 2 configure each side (bit 0 TLS, bit 1 no
 * secret, bits 2-3 the offer, bits 4-5 the accept list, bit 6 another
 * secret, bit 7 CR LF line ends), the rest is the schedule. Bit 1 of
 * byte 0 corrupts one byte from the first engine to the second, bit 2
 * gives both the same node id. Without corruption the outcome is
 * predicted from PROTOCOL-1.md 4.3 and checked on both sides.
 *
 * Always: feed consumes no more than it was given and stops short only
 * at a phase boundary (right after line 1, TLS, done) or a failure,
 * output is whole lines, our auth line carries the token that
 * aemp_auth_token_sha3 / aemp_auth_token_tls_sha3 give for the lines,
 * the first error sticks, and no error text holds the secret or its hex
 * unless the peer sent it.
 */
#include "fuzz.h"
#include "fuzz_hs.h"

static const char *const h1_methods[] = {"hmac_sha3_512", "tls_sha3_512", "tls_anon",
                                         "cleartext"};

static int h1_is_method(const char *m)
{
    for (size_t i = 0; i < 4; i++)
        if (m && !strcmp(m, h1_methods[i])) return 1;
    return 0;
}

/* Field n (from 0) of a ';' line into out, "" if missing. */
static void h1_field(const char *line, int n, char *out, size_t cap)
{
    for (int i = 0; i < n && line; i++) {
        line = strchr(line, ';');
        if (line) line++;
    }
    size_t k = line ? strcspn(line, ";") : 0;
    if (k >= cap) k = cap - 1;
    if (k) memcpy(out, line, k);
    out[k] = 0;
}

/* Does the secret occur in the engine's own words (a message template
 * or a method name it quotes)? Then seeing it in an error proves nothing. */
static int h1_in_fixed_text(const unsigned char *secret, size_t len)
{
    static const char *const fixed[] = {
        "unparsable greeting, expected 'aemp', got ''", "version mismatch (we: 1, they: )",
        "I refuse to talk to myself", "authentication error, echo attack?",
        ": no common auth type supported", ": no common framing method supported",
        ": fatal, selected unsupported snd auth method",
        "unable to handshake TLS and no shared secret configured",
        ": fatal, selected unsupported rcv auth method",
        "authentication failure/shared secret mismatch", ": unusable remote framing",
        "handshake line too long (over 4096 bytes)", "TLS handshake failed",
        "(text holding the shared secret, not shown)", "hmac_sha3_512", "tls_sha3_512",
        "tls_anon", "cleartext"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (memmem(fixed[i], strlen(fixed[i]), secret, len)) return 1;
    return 0;
}

/* Checks the engine's state; secret NULL: none configured. */
static void h1_check(aemp_hs_t *hs, const unsigned char *secret, size_t secret_len,
                     const uint8_t *input, size_t inlen, int tls_done)
{
    unsigned st = aemp_hs_state(hs);
    const unsigned roles = AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER;
    FUZZ_CHECK((st & roles) != roles);
    FUZZ_CHECK(aemp_hs_protocol(hs) == 1);
    if (st & AEMP_HS_FAILED) {
        FUZZ_CHECK(!(st & (AEMP_HS_GREETED | roles | AEMP_HS_DONE)));
        int code = aemp_hs_error_code(hs);
        FUZZ_CHECK(code == AEMP_EPROTO || code == AEMP_EAUTH || code == AEMP_ELIMIT ||
                   code == AEMP_ENOMEM || code == AEMP_ETLS);
        const char *msg = aemp_hs_error(hs);
        FUZZ_CHECK(msg && *msg && !strpbrk(msg, "\r\n"));
        if (secret && secret_len >= 4 && !h1_in_fixed_text(secret, secret_len)) {
            char hex[2 * 256 + 1];
            hs_hex(secret, secret_len, hex);
            if (memmem(msg, strlen(msg), secret, secret_len))
                FUZZ_CHECK(input && memmem(input, inlen, secret, secret_len));
            if (strstr(msg, hex)) FUZZ_CHECK(input && memmem(input, inlen, hex, strlen(hex)));
        }
        FUZZ_CHECK(aemp_hs_tls_up(hs) == AEMP_ESTATE);
    } else {
        FUZZ_CHECK(aemp_hs_error_code(hs) == AEMP_OK && !*aemp_hs_error(hs));
    }
    if (st & (AEMP_HS_GREETED | roles | AEMP_HS_DONE)) FUZZ_CHECK(aemp_hs_remote_id(hs));
    if (st & roles) FUZZ_CHECK((st & AEMP_HS_GREETED) && aemp_hs_remote_line(hs, 2));
    if (st & AEMP_HS_DONE) {
        FUZZ_CHECK(!(st & roles) && (st & AEMP_HS_GREETED));
        const char *a = aemp_hs_recv_auth(hs);
        FUZZ_CHECK(h1_is_method(a));
        /* tls_* count only inside TLS, the others only with a secret */
        if (!strncmp(a, "tls_", 4)) FUZZ_CHECK(tls_done);
        else FUZZ_CHECK(secret != NULL);
        FUZZ_CHECK(aemp_hs_recv_framing(hs) && aemp_hs_send_framing(hs));
    }
    const char *sa = aemp_hs_send_auth(hs);
    if (sa) {
        FUZZ_CHECK(h1_is_method(sa));
        if (!strncmp(sa, "tls_", 4)) FUZZ_CHECK(tls_done);
        else FUZZ_CHECK(!strcmp(sa, "hmac_sha3_512") && secret);
    }
    FUZZ_CHECK(aemp_hs_local_line(hs, 1) && strlen(aemp_hs_local_line(hs, 2)) == 88);
}

/* Every getter once, at the end (they read what the peer sent). */
static void h1_getters(aemp_hs_t *hs)
{
    static const char *const keys[] = {"tls", "provider", "mproto", "", "=x"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = aemp_hs_remote_kv(hs, keys[i]);
        if (v) (void)strlen(v);
    }
    const char *ss[] = {aemp_hs_remote_id(hs), aemp_hs_remote_line(hs, 1),
                        aemp_hs_remote_line(hs, 2), aemp_hs_recv_auth(hs),
                        aemp_hs_recv_framing(hs), aemp_hs_send_framing(hs)};
    for (size_t i = 0; i < sizeof ss / sizeof ss[0]; i++)
        if (ss[i]) (void)strlen(ss[i]);
    FUZZ_CHECK(aemp_hs_remote_timeout(hs) >= -1);
}

/* Our auth line, if out holds one after the greeting, must carry the
 * token the public functions give for the four lines (which take C
 * strings: callers skip this when the peer's bytes hold a NUL). */
static void h1_check_auth_line(aemp_hs_t *hs, const char *out, size_t outlen,
                               const unsigned char *secret, size_t secret_len)
{
    const char *l1 = aemp_hs_local_line(hs, 1), *l2 = aemp_hs_local_line(hs, 2);
    size_t greet = strlen(l1) + strlen(l2) + 2;
    if (outlen <= greet) return;
    const char *r1 = aemp_hs_remote_line(hs, 1), *r2 = aemp_hs_remote_line(hs, 2);
    FUZZ_CHECK(r1 && r2 && aemp_hs_send_auth(hs));
    char tok[129], want[300];
    const char *m = aemp_hs_send_auth(hs);
    if (!strcmp(m, "hmac_sha3_512"))
        FUZZ_CHECK(aemp_auth_token_sha3(secret, secret_len, l1, l2, r1, r2, tok) == 0);
    else if (!strcmp(m, "tls_sha3_512"))
        FUZZ_CHECK(aemp_auth_token_tls_sha3(l1, l2, r1, r2, tok) == 0);
    else
        tok[0] = 0;
    snprintf(want, sizeof want, "%s;%s;%s\n", m, tok, aemp_hs_send_framing(hs));
    FUZZ_CHECK(outlen == greet + strlen(want) && !memcmp(out + greet, want, strlen(want)));
}

/* ------------------------------------------------------------------ */
/* peer mode */

typedef struct h1_local {
    aemp_hs_config_t cfg;
    char *strs[4];
    unsigned char nonce[AEMP_NONCE1_BYTES];
    unsigned char secret[256];
    size_t secret_len;
    int has_secret;
} h1_local_t;

static int h1_local_from_lines(h1_local_t *l, const uint8_t **p, size_t *n)
{
    char *g = hs_take_line(p, n), *nonce = g ? hs_take_line(p, n) : NULL;
    char *sec = nonce ? hs_take_line(p, n) : NULL;
    int rc = -1;
    if (!sec) goto out;
    char f[4][4096];
    for (int i = 0; i < 3; i++) h1_field(g, i + 2, f[i], sizeof f[i]);
    const char *kv = g;
    for (int i = 0; i < 5 && kv; i++) {
        kv = strchr(kv, ';');
        if (kv) kv++;
    }
    l->strs[0] = strdup(f[0]);
    l->strs[1] = strdup(f[1]);
    l->strs[2] = strdup(f[2]);
    l->strs[3] = strdup(kv ? kv : "");
    for (int i = 0; i < 4; i++)
        if (!l->strs[i]) abort();
    l->cfg.noderef = l->strs[0];
    l->cfg.auths_accept = l->strs[1];
    l->cfg.framings = l->strs[2];
    l->cfg.framings_send = l->strs[2];
    l->cfg.kv_override = l->strs[3];
    hs_unbase64(nonce, strlen(nonce), l->nonce, sizeof l->nonce);
    l->has_secret = strcmp(sec, "-") != 0;
    size_t sl = l->has_secret ? strlen(sec) / 2 : 0;
    if (sl > sizeof l->secret) sl = sizeof l->secret;
    for (size_t i = 0; i < sl; i++)
        l->secret[i] = (unsigned char)(hs_hexval(sec[2 * i]) << 4 | hs_hexval(sec[2 * i + 1]));
    l->secret_len = sl;
    rc = 0;
out:
    free(g);
    free(nonce);
    free(sec);
    return rc;
}

static int h1_peer_mode(uint8_t flags, const uint8_t *p, size_t n)
{
    h1_local_t L;
    memset(&L, 0, sizeof L);
    L.cfg.protocol = 1;
    if (flags & 0x40) {
        if (h1_local_from_lines(&L, &p, &n)) {
            for (int i = 0; i < 4; i++) free(L.strs[i]);
            return 0;
        }
    } else {
        L.cfg.noderef = "fuzz/me";
        memset(L.nonce, 0x5a, sizeof L.nonce);
        memcpy(L.secret, "fuzzing secret\n", 15);
        L.secret_len = 15;
        L.has_secret = !(flags & 0x04);
        L.cfg.peeraddr = "127.0.0.1:1234";
        if (flags & 0x08) L.cfg.auths_send = "tls_anon,hmac_sha3_512,cleartext";
        if (flags & 0x10) L.cfg.framings = "json,cbor";
    }
    L.cfg.secret = L.has_secret ? L.secret : NULL;
    L.cfg.secret_len = L.has_secret ? L.secret_len : 0;
    L.cfg.nonce = L.nonce;
    L.cfg.tls = (flags & 0x02) != 0;
    const unsigned char *sec = L.has_secret ? L.secret : NULL;

    int err = 0;
    aemp_hs_t *hs = aemp_hs_new(&L.cfg, &err);
    if (!hs) {
        FUZZ_CHECK(err == AEMP_EINVAL);
        for (int i = 0; i < 4; i++) free(L.strs[i]);
        return 0;
    }
    uint64_t seed = fuzz_seed(p, n) ^ flags;
    char *out = NULL;
    size_t outlen = 0, pos = 0;
    hs_drain(hs, &seed, &out, &outlen);
    const char *l1 = aemp_hs_local_line(hs, 1);
    FUZZ_CHECK(!strncmp(l1, "aemp;1;", 7) && strlen(l1) < AEMP_HS_MAX_LINE);
    FUZZ_CHECK(outlen == strlen(l1) + 90);

    int tls_done = 0, tls_asked = 0, has_nul = memchr(p, 0, n) != NULL;
    for (int guard = 0; guard < 100000; guard++) {
        unsigned st = aemp_hs_state(hs);
        if (st & (AEMP_HS_FAILED | AEMP_HS_DONE)) break;
        if (st & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER)) {
            FUZZ_CHECK(!tls_asked && L.cfg.tls);
            tls_asked = 1;
            if (flags & 0x20) {
                FUZZ_CHECK(aemp_hs_tls_up(hs) == 0 || (aemp_hs_state(hs) & AEMP_HS_FAILED));
                tls_done = 1;
                FUZZ_CHECK(aemp_hs_tls_up(hs) != 0);
                /* inside TLS: a fresh output stream for the auth line */
                char *in_out = NULL;
                size_t in_len = 0;
                if (aemp_hs_out(hs, NULL) && !has_nul) {
                    hs_drain(hs, &seed, &in_out, &in_len);
                    char *all = malloc(outlen + in_len + 1);
                    if (!all) abort();
                    memcpy(all, out, outlen);
                    memcpy(all + outlen, in_out, in_len);
                    h1_check_auth_line(hs, all, outlen + in_len, sec, L.secret_len);
                    free(all);
                }
                free(in_out);
            } else {
                aemp_hs_fail(hs, AEMP_ETLS, "TLS handshake failed");
                FUZZ_CHECK(aemp_hs_error_code(hs) == AEMP_ETLS);
            }
            h1_check(hs, sec, L.secret_len, p, n, tls_done);
            continue;
        }
        if (pos == n) break;
        size_t chunk = n - pos;
        if (flags & 0x80) {
            uint64_t r = fuzz_next(&seed);
            size_t c = (r & 1) ? 1 + (r >> 8) % 8 : 1 + (r >> 8) % 300;
            if (c < chunk) chunk = c;
        }
        unsigned before = aemp_hs_state(hs);
        size_t used = hs_feed_copy(hs, p + pos, chunk);
        pos += used;
        st = aemp_hs_state(hs);
        int greeted_now = (st & AEMP_HS_GREETED) && !(before & AEMP_HS_GREETED);
        if (used < chunk)
            FUZZ_CHECK(greeted_now || (st & (AEMP_HS_FAILED | AEMP_HS_DONE |
                                             AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER)));
        /* GREETED comes alone: line 1 read, nothing queued after it */
        if (greeted_now) FUZZ_CHECK(!aemp_hs_remote_line(hs, 2) && !aemp_hs_out(hs, NULL));
        if (st & (AEMP_HS_DONE | AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER) || greeted_now)
            FUZZ_CHECK(pos > 0 && p[pos - 1] == '\n');
        h1_check(hs, sec, L.secret_len, p, n, tls_done);
        if (aemp_hs_out(hs, NULL)) {
            hs_drain(hs, &seed, &out, &outlen);
            if (!tls_asked && !has_nul) h1_check_auth_line(hs, out, outlen, sec, L.secret_len);
        }
    }
    h1_check(hs, sec, L.secret_len, p, n, tls_done);
    h1_getters(hs);
    unsigned st = aemp_hs_state(hs);
    if (st & (AEMP_HS_FAILED | AEMP_HS_DONE)) {
        if (pos < n) FUZZ_CHECK(hs_feed_copy(hs, p + pos, n - pos) == 0);
        aemp_hs_fail(hs, AEMP_EIO, "late");
        if (st & AEMP_HS_DONE) FUZZ_CHECK(aemp_hs_state(hs) & AEMP_HS_DONE);
        else FUZZ_CHECK(strcmp(aemp_hs_error(hs), "late") != 0);
    }
    free(out);
    aemp_hs_free(hs);
    for (int i = 0; i < 4; i++) free(L.strs[i]);
    return 0;
}

/* ------------------------------------------------------------------ */
/* pair mode */

static const char *const h1_offers[4] = {NULL, "tls_anon,hmac_sha3_512", "hmac_sha3_512",
                                         "cleartext,tls_sha3_512"};
static const char *const h1_accepts[4] = {NULL, "hmac_sha3_512,tls_sha3_512", "tls_sha3_512",
                                          "cleartext,hmac_sha3_512"};

/* What `from` picks from `to`'s list (PROTOCOL-1.md 4.3 step 7), NULL
 * for nothing in common. */
static const char *h1_pick(uint8_t from, uint8_t to, int tls)
{
    const char *offer = h1_offers[(from >> 2) & 3], *acc = h1_accepts[(to >> 4) & 3];
    if (!offer) offer = "tls_sha3_512,hmac_sha3_512";
    if (!acc) acc = "tls_sha3_512,hmac_sha3_512,tls_anon,cleartext";
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s", acc);
    for (char *save = NULL, *m = strtok_r(tmp, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        if (!tls && !strncmp(m, "tls_", 4)) continue;
        char o[128];
        snprintf(o, sizeof o, ",%s,", offer);
        char needle[64];
        snprintf(needle, sizeof needle, ",%s,", m);
        if (strstr(o, needle)) {
            for (size_t i = 0; i < 4; i++)
                if (!strcmp(m, h1_methods[i])) return h1_methods[i];
        }
    }
    return NULL;
}

/* The error `from` fails with when choosing (steps 7-9), NULL for none;
 * *method gets the method it sends. */
static const char *h1_choice_error(uint8_t from, uint8_t to, int tls, const char **method,
                                   char *buf, size_t cap)
{
    const char *acc = h1_accepts[(to >> 4) & 3];
    const char *m = h1_pick(from, to, tls);
    *method = m;
    if (!m) {
        snprintf(buf, cap, "%s: no common auth type supported",
                 acc ? acc : "tls_sha3_512,hmac_sha3_512,tls_anon,cleartext");
        return buf;
    }
    if (!tls && (from & 2)) return "unable to handshake TLS and no shared secret configured";
    if (tls ? strncmp(m, "tls_", 4) != 0 : strcmp(m, "hmac_sha3_512") != 0) {
        snprintf(buf, cap, "%s: fatal, selected unsupported snd auth method", m);
        return buf;
    }
    return NULL;
}

typedef struct h1_end {
    aemp_hs_t *hs;
    hs_wire_t w;
    int tls;
} h1_end_t;

static void h1_pump_out(h1_end_t *e)
{
    hs_wire_pump(e->hs, &e->w);
    if (aemp_hs_state(e->hs) & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER)) {
        FUZZ_CHECK(!e->tls);
        e->tls = 1;
        FUZZ_CHECK(aemp_hs_tls_up(e->hs) == 0);
        h1_pump_out(e);
    }
}

static size_t h1_move(h1_end_t *dst, hs_queue_t *q, size_t chunk)
{
    if (chunk > q->n) chunk = q->n;
    if (!chunk) return 0;
    size_t used = hs_feed_copy(dst->hs, q->p, chunk);
    memmove(q->p, q->p + used, q->n - used);
    q->n -= used;
    return used;
}

static int h1_pair_mode(uint8_t flags, const uint8_t *p, size_t n)
{
    if (n < 2) return 0;
    uint8_t ca = p[0], cb = p[1];
    int same_id = (flags & 0x04) != 0;
    p += 2;
    n -= 2;
    int corrupt = (flags & 0x02) && n >= 2;
    long corrupt_at = corrupt ? (long)p[0] * 3 : -1;
    uint8_t corrupt_xor = corrupt ? (uint8_t)(p[1] | 1) : 0;

    static const unsigned char sec_a[] = "pair secret A\n", sec_b[] = "pair secret B\n";
    unsigned char na[AEMP_NONCE1_BYTES], nb[AEMP_NONCE1_BYTES];
    memset(na, 0x11, sizeof na);
    memset(nb, 0x22, sizeof nb);
    const unsigned char *sb = (cb & 0x40) ? sec_b : sec_a;
    aemp_hs_config_t A = {.protocol = 1, .noderef = "pair/a", .secret = (ca & 2) ? NULL : sec_a,
                          .secret_len = (ca & 2) ? 0 : sizeof sec_a - 1, .nonce = na,
                          .tls = ca & 1, .auths_send = h1_offers[(ca >> 2) & 3],
                          .auths_accept = h1_accepts[(ca >> 4) & 3]};
    aemp_hs_config_t B = A;
    B.noderef = same_id ? "pair/a" : "pair/b";
    B.secret = (cb & 2) ? NULL : sb;
    B.secret_len = (cb & 2) ? 0 : sizeof sec_a - 1;
    B.nonce = nb;
    B.tls = cb & 1;
    B.auths_send = h1_offers[(cb >> 2) & 3];
    B.auths_accept = h1_accepts[(cb >> 4) & 3];

    hs_queue_t ab = {NULL, 0}, ba = {NULL, 0};
    h1_end_t ea = {aemp_hs_new(&A, NULL), {ca >> 7, &ab, 0, corrupt_at, corrupt_xor}, 0};
    h1_end_t eb = {aemp_hs_new(&B, NULL), {cb >> 7, &ba, 0, -1, 0}, 0};
    FUZZ_CHECK(ea.hs && eb.hs);

    for (size_t step = 0; step < n; step++) {
        uint8_t s = p[step];
        h1_pump_out(&ea);
        h1_pump_out(&eb);
        h1_end_t *dst = (s & 1) ? &ea : &eb;
        if (h1_move(dst, (s & 1) ? &ba : &ab, s >> 1 ? (size_t)(s >> 1) : SIZE_MAX))
            h1_check(dst->hs, dst == &ea ? A.secret : B.secret, A.secret_len, NULL, 0, dst->tls);
    }
    for (int round = 0; round < 8; round++) {
        h1_pump_out(&ea);
        h1_move(&eb, &ab, SIZE_MAX);
        h1_pump_out(&eb);
        h1_move(&ea, &ba, SIZE_MAX);
    }
    h1_check(ea.hs, A.secret, A.secret_len, NULL, 0, ea.tls);
    h1_check(eb.hs, B.secret, B.secret_len, NULL, 0, eb.tls);
    h1_getters(ea.hs);
    h1_getters(eb.hs);

    if (!corrupt) {
        unsigned sa = aemp_hs_state(ea.hs), sbs = aemp_hs_state(eb.hs);
        if (same_id) {
            FUZZ_CHECK(!strcmp(aemp_hs_error(ea.hs), "I refuse to talk to myself"));
            FUZZ_CHECK(!strcmp(aemp_hs_error(eb.hs), "I refuse to talk to myself"));
        } else {
            int tls = (ca & 1) && (cb & 1);
            char ba_buf[200], bb_buf[200];
            const char *ma, *mb;
            const char *fa = h1_choice_error(ca, cb, tls, &ma, ba_buf, sizeof ba_buf);
            const char *fb = h1_choice_error(cb, ca, tls, &mb, bb_buf, sizeof bb_buf);
            /* TLS starts on a side once its own choice is made */
            FUZZ_CHECK(ea.tls == (tls && !fa) && eb.tls == (tls && !fb));
            /* what each side makes of the other's auth line */
            int same = !(cb & 0x40);
            int a_ok = mb && (!strncmp(mb, "tls_", 4) || (!(ca & 2) && !(cb & 2) && same));
            int b_ok = ma && (!strncmp(ma, "tls_", 4) || (!(ca & 2) && !(cb & 2) && same));
            const char *mm = "authentication failure/shared secret mismatch";
            if (fa) FUZZ_CHECK((sa & AEMP_HS_FAILED) && !strcmp(aemp_hs_error(ea.hs), fa));
            else if (fb) FUZZ_CHECK(sa == AEMP_HS_GREETED);
            else if (a_ok) FUZZ_CHECK(sa == (AEMP_HS_GREETED | AEMP_HS_DONE));
            else FUZZ_CHECK(!strcmp(aemp_hs_error(ea.hs), mm));
            if (fb) FUZZ_CHECK((sbs & AEMP_HS_FAILED) && !strcmp(aemp_hs_error(eb.hs), fb));
            else if (fa) FUZZ_CHECK(sbs == AEMP_HS_GREETED);
            else if (b_ok) FUZZ_CHECK(sbs == (AEMP_HS_GREETED | AEMP_HS_DONE));
            else FUZZ_CHECK(!strcmp(aemp_hs_error(eb.hs), mm));
            if ((sa & AEMP_HS_DONE) && (sbs & AEMP_HS_DONE))
                FUZZ_CHECK(ab.n == 0 && ba.n == 0 && !strcmp(aemp_hs_recv_auth(ea.hs), mb) &&
                           !strcmp(aemp_hs_recv_auth(eb.hs), ma));
        }
    }
    aemp_hs_free(ea.hs);
    aemp_hs_free(eb.hs);
    free(ab.p);
    free(ba.p);
    return 0;
}

FUZZ_TARGET(handshake1)
{
    if (size < 1) return 0;
    if (data[0] & 1) return h1_pair_mode(data[0], data + 1, size - 1);
    return h1_peer_mode(data[0], data + 1, size - 1);
}
