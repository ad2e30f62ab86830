/*
 * fuzz_handshake.c - fuzz target for the handshake engine. The first
 * input byte chooses the mode and the configuration.
 *
 * Peer mode (bit 0 clear): one engine, the rest of the input is what the
 * peer sends, fed whole or in pieces. Flags: bit 1 TLS configured, bit 2
 * we may send cleartext, bit 3 we accept only hmac, bit 4 we accept
 * json,storable, bit 5 complete TLS when asked (else fail it), bit 6 our
 * side is given as three lines before the peer bytes (our greeting line
 * 1, our nonce in base64, our secret in hex: a recorded session then
 * replays up to the data phase), bit 7 feed in pieces.
 *
 * Pair mode (bit 0 set): two engines talk to each other through queues
 * cut at points the input chooses; bytes 1 and 2 configure each side,
 * the rest is the schedule. Bit 1 of byte 0 corrupts one byte of the
 * stream from the first to the second engine, bit 2 makes the second an
 * exact echo of the first. Without corruption the outcome is predicted
 * from the configurations and checked: both done, or the failure the
 * protocol prescribes.
 *
 * Always: feed consumes no more than it was given and never a byte past
 * a phase boundary, output is whole lines, the first error sticks with a
 * message, and no error message contains the secret or its hex.
 */
#include "fuzz.h"
#include "fuzz_hs.h"

#define HS_HMAC "hmac_md6_64_256"

typedef struct hs_local {
    aemp_hs_config_t cfg;
    char *strs[4]; /* what cfg points to, owned */
    unsigned char nonce[AEMP_NONCE_BYTES];
    unsigned char secret[256];
    size_t secret_len;
} hs_local_t;

static void hs_local_free(hs_local_t *l)
{
    for (int i = 0; i < 4; i++) free(l->strs[i]);
}

/* Our side from three lines (see the top). Returns 0, or -1 when the
 * lines are missing or the greeting has not the fixed fields. */
static int hs_local_from_lines(hs_local_t *l, const uint8_t **p, size_t *n)
{
    char *g = hs_take_line(p, n), *nonce = g ? hs_take_line(p, n) : NULL;
    char *sec = nonce ? hs_take_line(p, n) : NULL;
    int rc = -1;
    if (!sec) goto out;
    /* aemp;0;NODEREF;AUTHS;FRAMINGS[;KV...] */
    char *f[5] = {g, NULL, NULL, NULL, NULL};
    for (int i = 1; i < 5; i++) {
        char *semi = strchr(f[i - 1], ';');
        if (!semi) goto out;
        *semi = 0;
        f[i] = semi + 1;
    }
    char *kv = strchr(f[4], ';');
    if (kv) *kv++ = 0;
    l->strs[0] = strdup(f[2]);
    l->strs[1] = strdup(f[3]);
    l->strs[2] = strdup(f[4]);
    l->strs[3] = strdup(kv ? kv : "");
    for (int i = 0; i < 4; i++)
        if (!l->strs[i]) abort();
    l->cfg.noderef = l->strs[0];
    l->cfg.auths_accept = l->strs[1];
    l->cfg.framings = l->strs[2];
    l->cfg.kv_override = l->strs[3];
    hs_unbase64(nonce, strlen(nonce), l->nonce, sizeof l->nonce);
    size_t sl = strlen(sec) / 2;
    if (sl > sizeof l->secret) sl = sizeof l->secret;
    for (size_t i = 0; i < sl; i++)
        l->secret[i] = (unsigned char)(hs_hexval(sec[2 * i]) << 4 | hs_hexval(sec[2 * i + 1]));
    l->secret_len = sl;
    l->cfg.secret = l->secret;
    l->cfg.secret_len = sl;
    rc = 0;
out:
    free(g);
    free(nonce);
    free(sec);
    return rc;
}

/* ------------------------------------------------------------------ */
/* checks that hold in every state */

/* input/inlen: what the peer sent (NULL: an honest engine). The secret
 * may show in an error only when the peer itself sent it. */
static void hs_check_state(aemp_hs_t *hs, const unsigned char *secret, size_t secret_len,
                           const uint8_t *input, size_t inlen)
{
    unsigned st = aemp_hs_state(hs);
    const unsigned roles = AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER;
    FUZZ_CHECK((st & roles) != roles);
    if (st & AEMP_HS_FAILED) {
        FUZZ_CHECK(!(st & (AEMP_HS_GREETED | roles | AEMP_HS_DONE)));
        int code = aemp_hs_error_code(hs);
        FUZZ_CHECK(code == AEMP_EPROTO || code == AEMP_EAUTH || code == AEMP_ELIMIT ||
                   code == AEMP_ENOMEM || code == AEMP_ETLS);
        const char *msg = aemp_hs_error(hs);
        FUZZ_CHECK(msg && *msg);
        /* the secret never shows in an error text */
        if (secret_len >= 4) {
            char hex[2 * 256 + 1];
            hs_hex(secret, secret_len, hex);
            if (memmem(msg, strlen(msg), secret, secret_len))
                FUZZ_CHECK(input && memmem(input, inlen, secret, secret_len));
            if (strstr(msg, hex)) FUZZ_CHECK(input && memmem(input, inlen, hex, strlen(hex)));
        }
        /* an error never has a line end in it: it goes into one log line */
        FUZZ_CHECK(!strpbrk(msg, "\r\n"));
        FUZZ_CHECK(aemp_hs_tls_up(hs) == AEMP_ESTATE);
    } else {
        FUZZ_CHECK(aemp_hs_error_code(hs) == AEMP_OK);
        FUZZ_CHECK(!*aemp_hs_error(hs));
    }
    if (st & AEMP_HS_DONE) {
        FUZZ_CHECK(!(st & roles));
        FUZZ_CHECK(st & AEMP_HS_GREETED);
        const char *a = aemp_hs_recv_auth(hs);
        FUZZ_CHECK(a && (!strcmp(a, HS_HMAC) || !strcmp(a, "cleartext") || !strcmp(a, "tls")));
        FUZZ_CHECK(aemp_hs_recv_framing(hs) != NULL);
        FUZZ_CHECK(!strcmp(aemp_hs_send_framing(hs), "json"));
    }
    if (st & roles) FUZZ_CHECK(st & AEMP_HS_GREETED);
    /* every getter in every state */
    static const char *const keys[] = {"timeout", "tls", "provider", "peeraddr", "", "=x"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = aemp_hs_remote_kv(hs, keys[i]);
        if (v) (void)strlen(v);
    }
    int t = aemp_hs_remote_timeout(hs);
    FUZZ_CHECK(t >= -1 && t <= 1000000000);
    const char *ss[] = {aemp_hs_remote_noderef(hs), aemp_hs_send_framing(hs),
                        aemp_hs_recv_framing(hs), aemp_hs_recv_auth(hs),
                        aemp_hs_local_line(hs, 1), aemp_hs_local_line(hs, 2),
                        aemp_hs_remote_line(hs, 1), aemp_hs_remote_line(hs, 2)};
    for (size_t i = 0; i < sizeof ss / sizeof ss[0]; i++)
        if (ss[i]) (void)strlen(ss[i]);
    FUZZ_CHECK(aemp_hs_local_line(hs, 1) && aemp_hs_local_line(hs, 2));
    if (st & AEMP_HS_GREETED) FUZZ_CHECK(aemp_hs_remote_line(hs, 2) != NULL);
}

/* ------------------------------------------------------------------ */
/* peer mode */

static int hs_peer_mode(uint8_t flags, const uint8_t *p, size_t n)
{
    hs_local_t L;
    memset(&L, 0, sizeof L);
    if (flags & 0x40) {
        if (hs_local_from_lines(&L, &p, &n)) {
            hs_local_free(&L);
            return 0;
        }
    } else {
        L.cfg.noderef = "127.0.0.1:4040";
        memset(L.nonce, 0x5a, sizeof L.nonce);
        memcpy(L.secret, "fuzzing secret\n", 15);
        L.secret_len = 15;
        L.cfg.secret = L.secret;
        L.cfg.secret_len = L.secret_len;
        L.cfg.timeout = 30;
        L.cfg.peeraddr = "127.0.0.1:1234";
        if (flags & 0x08) L.cfg.auths_accept = HS_HMAC;
        if (flags & 0x10) L.cfg.framings = "json,storable";
    }
    L.cfg.nonce = L.nonce;
    L.cfg.tls = (flags & 0x02) != 0;
    if (flags & 0x04) L.cfg.auths_send = HS_HMAC ",cleartext";

    int err = 0;
    aemp_hs_t *hs = aemp_hs_new(&L.cfg, &err);
    if (!hs) {
        FUZZ_CHECK(err == AEMP_EINVAL);
        hs_local_free(&L);
        return 0;
    }
    uint64_t seed = fuzz_seed(p, n) ^ flags;
    char *out = NULL;
    size_t outlen = 0, pos = 0;
    hs_drain(hs, &seed, &out, &outlen);
    /* our greeting comes first, as the lines the getters give */
    const char *l1 = aemp_hs_local_line(hs, 1), *l2 = aemp_hs_local_line(hs, 2);
    size_t n1 = strlen(l1), n2 = strlen(l2);
    FUZZ_CHECK(outlen == n1 + n2 + 2 && !memcmp(out, l1, n1) && out[n1] == '\n' &&
               !memcmp(out + n1 + 1, l2, n2));
    FUZZ_CHECK(!strncmp(l1, "aemp;0;", 7) && n1 < AEMP_HS_MAX_LINE);
    FUZZ_CHECK(n2 == 44);

    int tls_handled = 0;
    for (int guard = 0; guard < 100000; guard++) {
        unsigned st = aemp_hs_state(hs);
        if (st & (AEMP_HS_FAILED | AEMP_HS_DONE)) break;
        if (st & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER)) {
            FUZZ_CHECK(!tls_handled);
            FUZZ_CHECK(L.cfg.tls);
            tls_handled = 1;
            if (flags & 0x20) {
                FUZZ_CHECK(aemp_hs_tls_up(hs) == 0);
                FUZZ_CHECK(aemp_hs_tls_up(hs) == AEMP_ESTATE);
            } else {
                aemp_hs_fail(hs, AEMP_ETLS, "TLS handshake failed");
                FUZZ_CHECK(aemp_hs_error_code(hs) == AEMP_ETLS);
            }
            hs_drain(hs, &seed, &out, &outlen);
            hs_check_state(hs, L.secret, L.secret_len, p, n);
            continue;
        }
        if (pos == n) break;
        size_t chunk = n - pos;
        if (flags & 0x80) {
            uint64_t r = fuzz_next(&seed);
            size_t c = (r & 1) ? 1 + (r >> 8) % 8 : 1 + (r >> 8) % 300;
            if (c < chunk) chunk = c;
        }
        size_t used = hs_feed_copy(hs, p + pos, chunk);
        pos += used;
        st = aemp_hs_state(hs);
        /* stopping short happens only at a phase boundary or a failure */
        if (used < chunk)
            FUZZ_CHECK(st & (AEMP_HS_FAILED | AEMP_HS_DONE | AEMP_HS_TLS_CLIENT |
                             AEMP_HS_TLS_SERVER));
        /* a boundary is right after a line end */
        if (st & (AEMP_HS_DONE | AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER))
            FUZZ_CHECK(pos > 0 && p[pos - 1] == '\n');
        hs_check_state(hs, L.secret, L.secret_len, p, n);
        if (aemp_hs_out(hs, NULL)) hs_drain(hs, &seed, &out, &outlen);
    }
    hs_check_state(hs, L.secret, L.secret_len, p, n);
    unsigned st = aemp_hs_state(hs);
    if (st & (AEMP_HS_FAILED | AEMP_HS_DONE)) {
        /* nothing more is taken: the rest is the caller's */
        if (pos < n) FUZZ_CHECK(hs_feed_copy(hs, p + pos, n - pos) == 0);
        aemp_hs_fail(hs, AEMP_EIO, "late");
        if (st & AEMP_HS_DONE) FUZZ_CHECK(aemp_hs_state(hs) & AEMP_HS_DONE);
        else FUZZ_CHECK(strcmp(aemp_hs_error(hs), "late") != 0);
    }
    if (st & AEMP_HS_DONE) {
        /* a TLS auth only after TLS really came up */
        if (!strcmp(aemp_hs_recv_auth(hs), "tls")) FUZZ_CHECK(tls_handled && (flags & 0x20));
    }
    free(out);
    aemp_hs_free(hs);
    hs_local_free(&L);
    return 0;
}

/* ------------------------------------------------------------------ */
/* pair mode */

static const char *const hs_send_choice[4] = {NULL, "cleartext", "cleartext," HS_HMAC,
                                              HS_HMAC ",cleartext"};
static const char *const hs_accept_choice[4] = {NULL, HS_HMAC, "cleartext",
                                                "cleartext," HS_HMAC};

/* The method `from` sends to `to`: the first of to's accepted list that
 * from can send; NULL for none. */
static const char *hs_expected_method(uint8_t from, uint8_t to)
{
    const char *acc = hs_accept_choice[(to >> 3) & 3];
    const char *snd = hs_send_choice[(from >> 1) & 3];
    if (!acc) acc = HS_HMAC ",cleartext";
    if (!snd) snd = HS_HMAC;
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s", acc);
    for (char *save = NULL, *m = strtok_r(tmp, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        const char *found = strstr(snd, m);
        if (found && (found[strlen(m)] == 0 || found[strlen(m)] == ','))
            return !strcmp(m, HS_HMAC) ? HS_HMAC : "cleartext";
    }
    return NULL;
}

typedef struct hs_end {
    aemp_hs_t *hs;
    uint8_t cfg;
    hs_wire_t w;
    unsigned role;
    const unsigned char *secret;
    size_t secret_len;
} hs_end_t;

static void hs_pump_out(hs_end_t *e)
{
    hs_wire_pump(e->hs, &e->w);
}

/* Plays a TLS layer that always comes up, once a side asks for it. */
static void hs_tls_sim(hs_end_t *e)
{
    unsigned r = aemp_hs_state(e->hs) & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER);
    if (!r) return;
    FUZZ_CHECK(!e->role);
    e->role = r;
    FUZZ_CHECK(aemp_hs_tls_up(e->hs) == 0);
    hs_pump_out(e);
}

static int hs_pair_mode(uint8_t flags, const uint8_t *p, size_t n)
{
    if (n < 2) return 0;
    uint8_t ca = p[0], cb = p[1];
    int echo = (flags & 0x04) != 0;
    if (echo) cb = ca;
    p += 2;
    n -= 2;
    int corrupt = (flags & 0x02) && n >= 2;
    long corrupt_at = corrupt ? (long)p[0] * 3 : -1;
    uint8_t corrupt_xor = corrupt ? (uint8_t)(p[1] | 1) : 0;

    static const unsigned char sec_a[] = "pair secret A\n", sec_b[] = "pair secret B\n";
    unsigned char na[AEMP_NONCE_BYTES], nb[AEMP_NONCE_BYTES];
    memset(na, 0x11, sizeof na);
    memset(nb, echo ? 0x11 : 0x22, sizeof nb);
    int same_secret = !(cb & 0x40) || echo;
    const unsigned char *sb = same_secret ? sec_a : sec_b;

    aemp_hs_config_t A = {.noderef = "10.0.0.1:4040", .secret = sec_a,
                          .secret_len = sizeof sec_a - 1, .nonce = na, .timeout = 30,
                          .tls = ca & 1, .auths_send = hs_send_choice[(ca >> 1) & 3],
                          .auths_accept = hs_accept_choice[(ca >> 3) & 3],
                          .framings = (ca & 0x20) ? "json,storable" : NULL};
    aemp_hs_config_t B = A;
    B.noderef = echo ? A.noderef : "10.0.0.2:4040";
    B.secret = sb;
    B.nonce = nb;
    B.tls = cb & 1;
    B.auths_send = hs_send_choice[(cb >> 1) & 3];
    B.auths_accept = hs_accept_choice[(cb >> 3) & 3];
    B.framings = (cb & 0x20) ? "json,storable" : NULL;

    hs_queue_t ab = {NULL, 0}, ba = {NULL, 0};
    hs_end_t ea = {aemp_hs_new(&A, NULL), ca, {ca >> 7, &ab, 0, corrupt_at, corrupt_xor}, 0,
                   sec_a, sizeof sec_a - 1};
    hs_end_t eb = {aemp_hs_new(&B, NULL), cb, {cb >> 7, &ba, 0, -1, 0}, 0, sb,
                   sizeof sec_a - 1};
    FUZZ_CHECK(ea.hs && eb.hs);

    /* each schedule byte moves up to s >> 1 bytes (0: all that wait),
     * to B when s is even, to A when it is odd */
    for (size_t step = 0; step < n; step++) {
        uint8_t s = p[step];
        hs_pump_out(&ea);
        hs_pump_out(&eb);
        hs_tls_sim(&ea);
        hs_tls_sim(&eb);
        hs_end_t *dst = (s & 1) ? &ea : &eb;
        hs_queue_t *q = (s & 1) ? &ba : &ab;
        size_t chunk = s >> 1 ? (size_t)(s >> 1) : q->n;
        if (chunk > q->n) chunk = q->n;
        if (chunk) {
            size_t used = hs_feed_copy(dst->hs, q->p, chunk);
            memmove(q->p, q->p + used, q->n - used);
            q->n -= used;
        }
        hs_check_state(ea.hs, ea.secret, ea.secret_len, NULL, 0);
        hs_check_state(eb.hs, eb.secret, eb.secret_len, NULL, 0);
    }
    /* then deliver everything, whichever way the schedule ended */
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < 2; i++) {
            hs_end_t *e = i ? &eb : &ea, *dst = i ? &ea : &eb;
            hs_queue_t *q = i ? &ba : &ab;
            hs_pump_out(e);
            hs_tls_sim(e);
            size_t used = hs_feed_copy(dst->hs, q->p, q->n);
            memmove(q->p, q->p + used, q->n - used);
            q->n -= used;
        }
    }
    hs_check_state(ea.hs, ea.secret, ea.secret_len, NULL, 0);
    hs_check_state(eb.hs, eb.secret, eb.secret_len, NULL, 0);
    unsigned sa = aemp_hs_state(ea.hs), sbs = aemp_hs_state(eb.hs);
    /* each side picks its role from the nonce lines it saw: the same
     * lines, so opposite roles (a corrupted line may make them agree,
     * and TLS would then fail) */
    if (!corrupt && ea.role && eb.role) FUZZ_CHECK(ea.role != eb.role);

    if (!corrupt) {
        const char *ma = hs_expected_method(ca, cb), *mb = hs_expected_method(cb, ca);
        int both_tls = (ca & 1) && (cb & 1);
        if (echo) {
            FUZZ_CHECK((sa & AEMP_HS_FAILED) && (sbs & AEMP_HS_FAILED));
            if (ma) FUZZ_CHECK(!strcmp(aemp_hs_error(ea.hs), "authentication error, echo attack?"));
        } else if (ma && mb && (both_tls || same_secret)) {
            FUZZ_CHECK((sa & AEMP_HS_DONE) && (sbs & AEMP_HS_DONE));
            FUZZ_CHECK(!strcmp(aemp_hs_recv_auth(eb.hs), both_tls ? "tls" : ma));
            FUZZ_CHECK(!strcmp(aemp_hs_recv_auth(ea.hs), both_tls ? "tls" : mb));
            FUZZ_CHECK(both_tls ? ea.role && eb.role : !ea.role && !eb.role);
            FUZZ_CHECK(ab.n == 0 && ba.n == 0);
        } else if (ma && mb) {
            FUZZ_CHECK((sa & AEMP_HS_FAILED) && (sbs & AEMP_HS_FAILED));
            FUZZ_CHECK(!strcmp(aemp_hs_error(ea.hs),
                               "authentication failure/shared secret mismatch"));
            FUZZ_CHECK(!strcmp(aemp_hs_error(eb.hs),
                               "authentication failure/shared secret mismatch"));
        } else {
            FUZZ_CHECK((sa & AEMP_HS_FAILED) || (sbs & AEMP_HS_FAILED));
            if (!ma) FUZZ_CHECK(strstr(aemp_hs_error(ea.hs), ": no common auth type supported"));
            if (!mb) FUZZ_CHECK(strstr(aemp_hs_error(eb.hs), ": no common auth type supported"));
        }
    }
    aemp_hs_free(ea.hs);
    aemp_hs_free(eb.hs);
    free(ab.p);
    free(ba.p);
    return 0;
}

FUZZ_TARGET(handshake)
{
    if (size < 1) return 0;
    if (data[0] & 1) return hs_pair_mode(data[0], data + 1, size - 1);
    return hs_peer_mode(data[0], data + 1, size - 1);
}
