/*
 * test_transcripts.c - replays the recorded sessions of
 * vectors/transcripts/ through the handshake engine. For each capture an
 * engine plays one side - configured from that side's own greeting (its
 * noderef, lists, KEY=VALUE part, nonce) and secret - and is fed the other
 * side's recorded bytes: whole, byte by byte and in random splits. It must
 * end where the real node ended (authenticated with the same framings, in
 * TLS with the same role, or failed with the message the Perl node logged)
 * and must have written exactly the bytes that side wrote, up to and
 * including its auth line.
 *
 * Every side is configured to write what the Perl node writes (json and
 * storable), so 13-raw-storable, whose client takes only storable, is
 * accepted as the Perl node accepted it.
 */
#include "test.h"
#include "aemp_int.h"

#include <dirent.h>
#include <stdlib.h>

enum expect {
    EX_DONE, /* authenticated */
    EX_FAIL, /* failed with msg */
    EX_TLS,  /* reached the TLS switch */
    EX_WAIT  /* nothing to read: still waiting for the greeting */
};

typedef struct play {
    const char *name;
    char side;          /* 'c': the connecting side, 's': the listening one */
    enum expect expect;
    int other_lines;    /* lines of the other side's bytes the engine takes;
                           -1: AEMP_HS_MAX_LINE bytes (no line end) */
    int own_lines;      /* lines of this side's bytes we must have written */
    int code;
    const char *msg;      /* our error message */
    const char *perl_log; /* what the Perl node playing this side logged;
                             NULL: not comparable */
    const char *auths_send;
} play_t;

#define MISMATCH "authentication failure/shared secret mismatch"

static const play_t plays[] = {
    /* two Perl nodes: both sides */
    {"01-hmac-messages", 'c', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"01-hmac-messages", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"02-monitor-kill", 'c', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"02-monitor-kill", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"03-wrong-secret", 'c', EX_FAIL, 3, 3, AEMP_EAUTH, MISMATCH, MISMATCH, NULL},
    {"03-wrong-secret", 's', EX_FAIL, 3, 3, AEMP_EAUTH, MISMATCH, MISMATCH, NULL},
    {"04-keepalive", 'c', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"04-keepalive", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"05-dead-peer-timeout", 'c', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"05-dead-peer-timeout", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"06-tls", 'c', EX_TLS, 2, 2, 0, NULL, NULL, NULL},
    {"06-tls", 's', EX_TLS, 2, 2, 0, NULL, NULL, NULL},
    {"07-tls-cert-mismatch", 'c', EX_TLS, 2, 2, 0, NULL, NULL, NULL},
    {"07-tls-cert-mismatch", 's', EX_TLS, 2, 2, 0, NULL, NULL, NULL},

    /* the hand-made client against a Perl node: we play the Perl node */
    {"10-raw-cleartext", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"11-raw-crlf", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"12-raw-whitespace", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    /* The raw client takes only storable: we write storable to it, as the
     * Perl node did. */
    {"13-raw-storable", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"14-raw-version", 's', EX_FAIL, 1, 2, AEMP_EPROTO, "version mismatch (we: 0, they: 1)",
     "version mismatch (we: 0, they: 1)", NULL},
    {"15-raw-garbage", 's', EX_FAIL, 1, 2, AEMP_EPROTO, "unparsable greeting",
     "unparsable greeting", NULL},
    {"16-raw-noauth", 's', EX_FAIL, 1, 2, AEMP_EPROTO,
     "md5_hmac,sha1_hmac: no common auth type supported",
     "md5_hmac,sha1_hmac: no common auth type supported", NULL},
    {"17-raw-noframing", 's', EX_FAIL, 1, 2, AEMP_EPROTO,
     "xml,yaml: no common framing method supported",
     "xml,yaml: no common framing method supported", NULL},
    {"18-raw-echo", 's', EX_FAIL, 2, 2, AEMP_EAUTH, "authentication error, echo attack?",
     "authentication error, echo attack?", NULL},
    {"19-raw-badmethod", 's', EX_FAIL, 3, 3, AEMP_EAUTH,
     "bogus: fatal, selected unsupported auth method",
     "bogus: fatal, selected unsupported auth method", NULL},
    {"20-raw-wrongtoken", 's', EX_FAIL, 3, 3, AEMP_EAUTH, MISMATCH, MISMATCH, NULL},
    {"21-raw-tlsnotls", 's', EX_FAIL, 3, 3, AEMP_EAUTH, MISMATCH, MISMATCH, NULL},
    /* Our own text for the Perl node's ENOSPC. */
    {"22-raw-longline", 's', EX_FAIL, -1, 2, AEMP_ELIMIT,
     "handshake line too long (over 4096 bytes)", "No space left on device", NULL},
    {"23-raw-badjson", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"24-raw-badutf8", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"25-raw-deep", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"26-raw-nonarray", 's', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    /* The 30 s handshake timeout is the driver's: the engine just waits. */
    {"27-raw-silent", 's', EX_WAIT, 0, 2, 0, NULL, NULL, NULL},

    /* The hand-made client's side too, where it keeps to the protocol
     * and ends its lines with LF. */
    {"10-raw-cleartext", 'c', EX_DONE, 3, 3, 0, NULL, NULL, "cleartext"},
    {"12-raw-whitespace", 'c', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    /* Announcing "storable" only, we still write json (the Perl node
     * offers it) and accept the Perl node's storable: exactly what the
     * raw client sent. */
    {"13-raw-storable", 'c', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"23-raw-badjson", 'c', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
    {"26-raw-nonarray", 'c', EX_DONE, 3, 3, 0, NULL, NULL, NULL},
};

/* ------------------------------------------------------------------ */
/* the capture */

typedef struct session {
    json_t *root;
    aemp__buf_t c2s, s2c;
} session_t;

static void load_session(session_t *ss, const char *name)
{
    char rel[256];
    json_error_t e;
    memset(ss, 0, sizeof *ss);
    snprintf(rel, sizeof rel, "vectors/transcripts/%s.json", name);
    /* Not t_load_vectors: 01's messages hold integers beyond 64 bits,
     * which jansson refuses unless it reads every integer as a real. */
    ss->root = json_load_file(t_shared_path(rel), JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &e);
    if (!ss->root) {
        fprintf(stderr, "cannot load %s: %s (line %d)\n", rel, e.text, e.line);
        exit(1);
    }
    json_t *evs = json_object_get(ss->root, "events"), *ev;
    size_t i;
    json_array_foreach(evs, i, ev) {
        if (json_number_value(json_object_get(ev, "conn")) != 1) continue;
        const char *dir = json_string_value(json_object_get(ev, "dir"));
        const char *hex = json_string_value(json_object_get(ev, "hex"));
        if (!dir || !hex || !*hex) continue;
        size_t n;
        unsigned char *b = t_unhex(hex, &n);
        aemp__buf_append(strcmp(dir, "c2s") == 0 ? &ss->c2s : &ss->s2c, b, n);
        free(b);
    }
}

static void free_session(session_t *ss)
{
    json_decref(ss->root);
    aemp__buf_free(&ss->c2s);
    aemp__buf_free(&ss->s2c);
}

/* Offset just past the n-th LF of b (n = 0: 0), or -1. */
static long after_lines(const aemp__buf_t *b, int n)
{
    size_t len = aemp__buf_size(b), off = 0;
    const char *p = len ? aemp__buf_head(b) : "";
    for (int i = 0; i < n; i++) {
        const char *lf = off < len ? memchr(p + off, '\n', len - off) : NULL;
        if (!lf) return -1;
        off = (size_t)(lf - p) + 1;
    }
    return (long)off;
}

/* Line idx (from 0) of b without its line end, into out. */
static int line_of(const aemp__buf_t *b, int idx, char *out, size_t cap)
{
    long s = after_lines(b, idx), e = after_lines(b, idx + 1);
    if (s < 0 || e < 0) return -1;
    size_t n = (size_t)(e - s - 1);
    if (n && aemp__buf_head(b)[e - 2] == '\r') n--;
    if (n >= cap) return -1;
    memcpy(out, aemp__buf_head(b) + s, n);
    out[n] = 0;
    return 0;
}

static const char *hs_field(const session_t *ss, const char *key)
{
    return json_string_value(json_object_get(json_object_get(ss->root, "handshake"), key));
}

/* The message the node on `side` logged for this connection, matched
 * against want: "SECONDS WARN HOST:PORT: MESSAGE". */
static int logged(const session_t *ss, char side, const char *want)
{
    json_t *lines = json_object_get(json_object_get(ss->root, "logs"),
                                    side == 'c' ? "client_stderr" : "server_stderr");
    json_t *l;
    size_t i;
    json_array_foreach(lines, i, l) {
        const char *s = json_string_value(l);
        const char *w = s ? strstr(s, " WARN ") : NULL;
        const char *m = w ? strstr(w + 6, ": ") : NULL;
        if (m && strcmp(m + 2, want) == 0) return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* the engine for one side */


typedef struct side {
    char l1[4096], l2[4096];
    char noderef[4096], auths[4096], framings[4096], kv[4096];
    unsigned char nonce[AEMP_NONCE_BYTES];
    unsigned char *secret;
    size_t secret_len;
    aemp_hs_config_t cfg;
} side_t;

/* Rebuilds the configuration that makes an engine send l1/l2. */
static int make_side(side_t *sd, const session_t *ss, const play_t *pl)
{
    const aemp__buf_t *own = pl->side == 'c' ? &ss->c2s : &ss->s2c;
    if (line_of(own, 0, sd->l1, sizeof sd->l1) || line_of(own, 1, sd->l2, sizeof sd->l2))
        return -1;
    /* the greeting fields agree with the capture's own summary */
    const char *g1 = hs_field(ss, pl->side == 'c' ? "client_greeting1" : "server_greeting1");
    const char *g2 = hs_field(ss, pl->side == 'c' ? "client_greeting2" : "server_greeting2");
    if (g1) CHECK_STR(sd->l1, g1);
    if (g2) CHECK_STR(sd->l2, g2);

    if (t_greeting_fields(sd->l1, sd->noderef, sd->auths, sd->framings, sd->kv, sizeof sd->kv))
        return -1;
    if (t_b64dec(sd->l2, sd->nonce, sizeof sd->nonce) != AEMP_NONCE_BYTES) return -1;

    const char *shex = NULL;
    if (pl->side == 's')
        shex = json_string_value(json_object_get(ss->root, "server_secret_hex"));
    if (!shex) shex = json_string_value(json_object_get(ss->root, "secret_hex"));
    if (!shex) return -1;
    sd->secret = t_unhex(shex, &sd->secret_len);

    memset(&sd->cfg, 0, sizeof sd->cfg);
    sd->cfg.noderef = sd->noderef;
    sd->cfg.auths_accept = sd->auths;
    sd->cfg.auths_send = pl->auths_send;
    sd->cfg.framings = sd->framings;
    /* we write both framings, as the Perl node does */
    sd->cfg.framings_send = "json,storable";
    sd->cfg.kv_override = sd->kv;
    sd->cfg.nonce = sd->nonce;
    sd->cfg.secret = sd->secret;
    sd->cfg.secret_len = sd->secret_len;
    sd->cfg.tls = strstr(sd->l1, ";tls=1.0") != NULL;
    return 0;
}

/* The first "plaintext write" the node on `side` made inside TLS (tls:
 * 1; the greeting is logged as one with tls: 0), as
 * bytes; NULL if there is none. */
static unsigned char *first_plaintext(const session_t *ss, char side, size_t *len)
{
    json_t *obs = json_object_get(json_object_get(ss->root, "observations"),
                                  side == 'c' ? "client" : "server");
    json_t *o;
    size_t i;
    json_array_foreach(obs, i, o) {
        const char *ev = json_string_value(json_object_get(o, "event"));
        if (!ev || strcmp(ev, "plaintext write") != 0) continue;
        if (json_number_value(json_object_get(o, "tls")) != 1) continue; /* the greeting */
        const char *hex = json_string_value(json_array_get(json_object_get(o, "data"), 1));
        if (hex) return t_unhex(hex, len);
    }
    return NULL;
}

/* Did the bytes of b after its greeting start with a TLS ClientHello
 * (handshake record, message type 1)? */
static int sent_client_hello(const aemp__buf_t *b)
{
    long off = after_lines(b, 2);
    if (off < 0 || aemp__buf_size(b) < (size_t)off + 6) return 0;
    const unsigned char *p = (const unsigned char *)aemp__buf_head(b) + off;
    return p[0] == 0x16 && p[1] == 0x03 && p[5] == 0x01;
}

/* mode 0: all at once, 1: byte by byte, 2: random chunks from seed. */
static void replay(const play_t *pl, const session_t *ss, int mode, uint64_t seed)
{
    side_t sd;
    const aemp__buf_t *own = pl->side == 'c' ? &ss->c2s : &ss->s2c;
    const aemp__buf_t *other = pl->side == 'c' ? &ss->s2c : &ss->c2s;
    char oside = pl->side == 'c' ? 's' : 'c';
    int before = t_failures;

    memset(&sd, 0, sizeof sd);
    if (make_side(&sd, ss, pl)) {
        t_fail(__FILE__, __LINE__, "%s: cannot rebuild side %c", pl->name, pl->side);
        free(sd.secret);
        return;
    }
    int err = 1;
    aemp_hs_t *hs = aemp_hs_new(&sd.cfg, &err);
    if (!hs) {
        t_fail(__FILE__, __LINE__, "%s: aemp_hs_new: %d", pl->name, err);
        free(sd.secret);
        return;
    }
    CHECK_STR(aemp_hs_local_line(hs, 1), sd.l1);
    CHECK_STR(aemp_hs_local_line(hs, 2), sd.l2);

    aemp__buf_t out = {0};
    size_t total = aemp__buf_size(other), pos = 0;
    const char *in = total ? aemp__buf_head(other) : "";
    uint64_t rng = seed;
    t_hs_drain(hs, &out);
    while (pos < total) {
        size_t left = total - pos;
        size_t k = mode == 0 ? left : mode == 1 ? 1 : 1 + t_rand(&rng) % (left < 300 ? left : 300);
        size_t used = aemp_hs_feed(hs, in + pos, k);
        CHECK(used <= k);
        t_hs_drain(hs, &out);
        pos += used;
        if (used < k) break; /* a phase boundary, or the end */
    }

    /* how far the engine read */
    long want_pos = pl->other_lines < 0 ? AEMP_HS_MAX_LINE : after_lines(other, pl->other_lines);
    CHECK_INT(pos, want_pos);

    /* what it wrote: the real node's bytes */
    long own_len = after_lines(own, pl->own_lines);
    REQUIRE(own_len > 0);
    CHECK_INT(aemp__buf_size(&out), own_len);
    if (aemp__buf_size(&out) == (size_t)own_len)
        CHECK_MEM(aemp__buf_head(&out), aemp__buf_head(own), (size_t)own_len);

    unsigned st = aemp_hs_state(hs);
    char line[4096], field[3][256];
    switch (pl->expect) {
    case EX_DONE: {
        CHECK_INT(st, AEMP_HS_GREETED | AEMP_HS_DONE);
        CHECK_STR(aemp_hs_error(hs), "");
        /* the auth lines are those of the capture */
        const char *mine = hs_field(ss, pl->side == 'c' ? "client_auth_line" : "server_auth_line");
        const char *theirs = hs_field(ss, pl->side == 'c' ? "server_auth_line" : "client_auth_line");
        REQUIRE(mine && theirs);
        REQUIRE(line_of(&out, 2, line, sizeof line) == 0);
        CHECK_STR(line, mine);
        REQUIRE(line_of(other, 2, line, sizeof line) == 0);
        CHECK_STR(line, theirs);
        /* method and framing as the other side announced them */
        for (int i = 0; i < 3; i++) {
            const char *p = theirs;
            for (int j = 0; j < i; j++) p = strchr(p, ';') + 1;
            size_t n = strcspn(p, ";");
            memcpy(field[i], p, n);
            field[i][n] = 0;
        }
        CHECK_STR(aemp_hs_recv_auth(hs), field[0]);
        CHECK_STR(aemp_hs_recv_framing(hs), field[2]);
        /* what this side wrote: the framing its recorded auth line names
         * (json, or storable for 13's client that takes only storable) */
        CHECK_STR(aemp_hs_send_framing(hs), strrchr(mine, ';') + 1);
        CHECK(!strcmp(strrchr(mine, ';') + 1, "json") ||
              !strcmp(pl->name, "13-raw-storable"));
        CHECK_STR(aemp_hs_remote_line(hs, 1),
                  hs_field(ss, pl->side == 'c' ? "server_greeting1" : "client_greeting1"));
        break;
    }
    case EX_FAIL:
        CHECK_INT(st, AEMP_HS_FAILED);
        CHECK_INT(aemp_hs_error_code(hs), pl->code);
        CHECK_STR(aemp_hs_error(hs), pl->msg);
        if (pl->perl_log && !logged(ss, pl->side, pl->perl_log))
            t_fail(__FILE__, __LINE__, "%s: the Perl node did not log \"%s\"", pl->name,
                   pl->perl_log);
        /* the secret never shows in a message */
        {
            char hex[512];
            if (sd.secret_len && sd.secret_len < 200) {
                aemp__hex(sd.secret, sd.secret_len, hex);
                CHECK(!strstr(aemp_hs_error(hs), hex));
            }
        }
        break;
    case EX_TLS: {
        /* the role the real nodes took: whoever sent the ClientHello */
        int client = sent_client_hello(own);
        CHECK(client != sent_client_hello(other));
        CHECK_INT(st, AEMP_HS_GREETED | (client ? AEMP_HS_TLS_CLIENT : AEMP_HS_TLS_SERVER));
        CHECK_INT(aemp_hs_feed(hs, in + pos, total - pos), 0);
        /* inside TLS: the plaintext the nodes wrote, where recorded */
        size_t mlen, tlen;
        unsigned char *mine = first_plaintext(ss, pl->side, &mlen);
        unsigned char *theirs = first_plaintext(ss, oside, &tlen);
        if (mine && theirs) {
            aemp__buf_t inner = {0};
            CHECK_INT(aemp_hs_tls_up(hs), 0);
            t_hs_drain(hs, &inner);
            CHECK_INT(aemp__buf_size(&inner), mlen);
            if (aemp__buf_size(&inner) == mlen) CHECK_MEM(aemp__buf_head(&inner), mine, mlen);
            CHECK_INT(aemp_hs_feed(hs, theirs, tlen), tlen);
            CHECK_INT(aemp_hs_state(hs), AEMP_HS_GREETED | AEMP_HS_DONE);
            CHECK_STR(aemp_hs_recv_auth(hs), "tls");
            CHECK_STR(aemp_hs_recv_framing(hs), "json");
            aemp__buf_free(&inner);
        } else {
            /* TLS itself failed: the driver reports it */
            const char *why = logged(ss, pl->side, "error:0A000086:SSL routines::certificate "
                                                   "verify failed")
                                  ? "error:0A000086:SSL routines::certificate verify failed"
                                  : "Broken pipe";
            aemp_hs_fail(hs, AEMP_ETLS, why);
            CHECK_INT(aemp_hs_state(hs), AEMP_HS_FAILED);
            CHECK_STR(aemp_hs_error(hs), why);
        }
        free(mine);
        free(theirs);
        break;
    }
    case EX_WAIT:
        CHECK_INT(total, 0);
        CHECK_INT(st, 0);
        break;
    }

    if (t_failures != before)
        fprintf(stderr, "    (in %s, side %c, mode %d, seed %llu)\n", pl->name, pl->side,
                mode, (unsigned long long)seed);
    aemp__buf_free(&out);
    aemp_hs_free(hs);
    free(sd.secret);
}

static void run_capture(const char *name)
{
    session_t ss;
    int found = 0;
    load_session(&ss, name);
    for (size_t i = 0; i < sizeof plays / sizeof plays[0]; i++) {
        if (strcmp(plays[i].name, name) != 0) continue;
        found = 1;
        replay(&plays[i], &ss, 0, 0);
        replay(&plays[i], &ss, 1, 0);
        for (uint64_t seed = 1; seed <= 25; seed++)
            replay(&plays[i], &ss, 2, seed * 0x2545F4914F6CDD1Dull);
    }
    if (!found) t_fail(__FILE__, __LINE__, "%s: not in the table", name);
    free_session(&ss);
}

TEST(transcript_01_hmac_messages) { run_capture("01-hmac-messages"); }
TEST(transcript_02_monitor_kill) { run_capture("02-monitor-kill"); }
TEST(transcript_03_wrong_secret) { run_capture("03-wrong-secret"); }
TEST(transcript_04_keepalive) { run_capture("04-keepalive"); }
TEST(transcript_05_dead_peer_timeout) { run_capture("05-dead-peer-timeout"); }
TEST(transcript_06_tls) { run_capture("06-tls"); }
TEST(transcript_07_tls_cert_mismatch) { run_capture("07-tls-cert-mismatch"); }
TEST(transcript_10_raw_cleartext) { run_capture("10-raw-cleartext"); }
TEST(transcript_11_raw_crlf) { run_capture("11-raw-crlf"); }
TEST(transcript_12_raw_whitespace) { run_capture("12-raw-whitespace"); }
TEST(transcript_13_raw_storable) { run_capture("13-raw-storable"); }
TEST(transcript_14_raw_version) { run_capture("14-raw-version"); }
TEST(transcript_15_raw_garbage) { run_capture("15-raw-garbage"); }
TEST(transcript_16_raw_noauth) { run_capture("16-raw-noauth"); }
TEST(transcript_17_raw_noframing) { run_capture("17-raw-noframing"); }
TEST(transcript_18_raw_echo) { run_capture("18-raw-echo"); }
TEST(transcript_19_raw_badmethod) { run_capture("19-raw-badmethod"); }
TEST(transcript_20_raw_wrongtoken) { run_capture("20-raw-wrongtoken"); }
TEST(transcript_21_raw_tlsnotls) { run_capture("21-raw-tlsnotls"); }
TEST(transcript_22_raw_longline) { run_capture("22-raw-longline"); }
TEST(transcript_23_raw_badjson) { run_capture("23-raw-badjson"); }
TEST(transcript_24_raw_badutf8) { run_capture("24-raw-badutf8"); }
TEST(transcript_25_raw_deep) { run_capture("25-raw-deep"); }
TEST(transcript_26_raw_nonarray) { run_capture("26-raw-nonarray"); }
TEST(transcript_27_raw_silent) { run_capture("27-raw-silent"); }

/* Every capture on disk is replayed by one of the tests above. */
TEST(transcript_all_covered)
{
    DIR *d = opendir(t_shared_path("vectors/transcripts"));
    REQUIRE(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0) continue;
        n++;
        int found = 0;
        for (size_t i = 0; i < sizeof plays / sizeof plays[0]; i++)
            if (strlen(plays[i].name) == len - 5 &&
                strncmp(plays[i].name, e->d_name, len - 5) == 0)
                found = 1;
        if (!found) t_fail(__FILE__, __LINE__, "capture %s is not replayed", e->d_name);
    }
    closedir(d);
    CHECK_INT(n, 25);
}
