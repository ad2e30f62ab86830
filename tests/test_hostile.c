/*
 * test_hostile.c - a live node against hostile peers. The victim node runs
 * on this process's loop next to an honest node that keeps sending it
 * numbered messages; the attacker is a raw socket in this process (for
 * the data-phase attacks, authenticated by a handshake engine). Each
 * attack must close only the offending link, with the precise warning
 * "HOST:PORT: MESSAGE" for that connection, while the honest messages keep
 * arriving in order; repeating the attack must not grow the victim's
 * memory (live heap bytes: mallinfo2, or the sanitizer's allocator count
 * under ASan) or keep file descriptors. Also: no secret in any log line.
 */
#include "test.h"
#include "aemp.h"
#include "harness_node.h"
#include "harness_raw.h"
#include "node_int.h" /* the peer table, to count it */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOSTILE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HOSTILE_ASAN 1
#endif
#ifdef HOSTILE_ASAN
#include <sanitizer/allocator_interface.h>
#endif

/* Live heap bytes. ASan has its own allocator, which mallinfo2 does not
 * see; its own counter is exact. */
static size_t mem_used(void)
{
#ifdef HOSTILE_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

static int fd_count(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------ */
/* the victim and the honest node */

typedef struct victim {
    aemp_node_t *node;
    char noderef[128];
    const char *honest;       /* the honest node's noderef */
    char warnings[32 * 1024]; /* warnings of the current attack */
    size_t nwarn;
    int all_levels;           /* record every level, not only warnings */
    long honest_got, honest_next;
    int honest_order_errors, honest_down;
    long other_got;           /* messages from attackers */
    json_t *other_last;
} victim_t;

static void v_log(void *ud, int level, const char *msg)
{
    victim_t *v = ud;
    if (level > AEMP_LOG_WARN && !v->all_levels) return;
    size_t l = strlen(v->warnings);
    snprintf(v->warnings + l, sizeof v->warnings - l, "%s\n", msg);
    v->nwarn++;
    if (getenv("AEMP_TEST_VERBOSE")) fprintf(stderr, "victim [%d] %s\n", level, msg);
}

static void v_link(void *ud, aemp_node_t *node, const char *noderef, int up, const char *reason)
{
    victim_t *v = ud;
    (void)node;
    if (!up && v->honest && !strcmp(noderef, v->honest)) {
        v->honest_down++;
        fprintf(stderr, "    honest link lost: %s\n", reason);
    }
}

static void v_msg(void *ud, aemp_node_t *node, const char *src, const char *id, json_t *msg)
{
    victim_t *v = ud;
    (void)node;
    (void)id;
    if (v->honest && !strcmp(src, v->honest)) {
        json_int_t seq = json_integer_value(json_array_get(msg, 2));
        if (seq != v->honest_next) v->honest_order_errors++;
        v->honest_next = seq + 1;
        v->honest_got++;
        return;
    }
    v->other_got++;
    json_decref(v->other_last);
    v->other_last = json_incref(msg);
}

typedef struct env {
    victim_t v;
    tnode_t h;
    long sent;
} env_t;

#define MAX_MESSAGE (64 * 1024)

/* max_handshakes of the next victim (0: the default) */
static unsigned victim_max_handshakes;
/* max_peer_memory of the next victim (0: the default) */
static size_t victim_max_peer_memory;

/* The victim's handshake deadline in the two tests that wait for it
 * (victim_hs_timeout; the others keep AEMP_HANDSHAKE_TIMEOUT, and their
 * slack): above AEMP_HANDSHAKE_OLD_EVICT, which the trickle test sees
 * first. */
#define HS_TIMEOUT 8.0
static double victim_hs_timeout; /* 0: the default */

static int env_setup(env_t *e, const char *vsecret)
{
    memset(e, 0, sizeof *e);
    start_ticker();
    aemp_node_config_t c = {0};
    c.bind = "127.0.0.1:0";
    c.secret = vsecret;
    c.secret_len = strlen(vsecret);
    c.max_message = MAX_MESSAGE;
    c.log = v_log;
    c.log_ud = &e->v;
    c.on_link = v_link;
    c.link_ud = &e->v;
    c.on_message = v_msg;
    c.message_ud = &e->v;
    c.max_handshakes = victim_max_handshakes;
    c.max_peer_memory = victim_max_peer_memory;
    e->v.node = aemp_node_new(EV_DEFAULT, &c, NULL);
    if (!e->v.node) return -1;
    /* the handshake's deadline is AEMP_HANDSHAKE_TIMEOUT; the timeout
     * tests make the victim's shorter, to wait HS_TIMEOUT, not 30 s */
    CHECK(e->v.node->hs_timeout == AEMP_HANDSHAKE_TIMEOUT);
    if (victim_hs_timeout > 0) e->v.node->hs_timeout = victim_hs_timeout;
    if (aemp_node_start(e->v.node)) return -1;
    snprintf(e->v.noderef, sizeof e->v.noderef, "%s", aemp_node_noderef(e->v.node));
    if (!mknode(&e->h, "127.0.0.1:0", vsecret, 0)) return -1;
    e->v.honest = aemp_node_noderef(e->h.node);
    return 0;
}

static void env_teardown(env_t *e)
{
    aemp_node_destroy(e->h.node);
    aemp_node_destroy(e->v.node);
    json_decref(e->v.other_last);
}

static void honest_send(env_t *e, int n)
{
    for (int i = 0; i < n; i++)
        aemp_node_send(e->h.node, e->v.noderef,
                       json_pack("[ssI]", "x", "honest", (json_int_t)e->sent++));
}

static int honest_all_in(void *ud)
{
    env_t *e = ud;
    return e->v.honest_got >= e->sent;
}

/* Sends n honest messages and waits until every one sent so far is in. */
static void honest_check(env_t *e, int n)
{
    honest_send(e, n);
    if (!run_until(honest_all_in, e, 10))
        t_fail(__FILE__, __LINE__, "honest messages stuck: %ld of %ld arrived",
               e->v.honest_got, e->sent);
}

/* ------------------------------------------------------------------ */
/* the attacker's socket */

/* A well-formed greeting (two lines) naming noderef. */
static char *greeting(const char *noderef)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "aemp;0;%s;hmac_md6_64_256,cleartext;json;provider=hostile-0;timeout=30\n"
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
             noderef);
    return buf;
}

/* The victim warned "OUR-ADDR: msg" about this connection. */
static void expect_warning(const env_t *e, const raw_t *r, const char *msg, int line)
{
    char want[1024];
    snprintf(want, sizeof want, "%s: %s\n", r->addr, msg);
    if (!strstr(e->v.warnings, want))
        t_fail(__FILE__, line, "no warning \"%.*s\"; the victim said:\n%s", (int)strlen(want) - 1,
               want, e->v.warnings);
}
#define EXPECT_WARNING(e, r, msg) expect_warning((e), (r), (msg), __LINE__)

/* ------------------------------------------------------------------ */
/* the frame every attack runs in */

typedef void (*attack_fn)(env_t *e, int round);

/* Runs the attack `rounds` times against one victim. The first round
 * warms up (one-time allocations of the loop, the peer entry for the
 * attacker's name); from then on the live heap must not grow by more
 * than slack bytes, nor the number of open descriptors change. */
static void run_attack(attack_fn attack, int rounds, size_t slack)
{
    env_t e;
    if (env_setup(&e, secret)) {
        t_fail(__FILE__, __LINE__, "cannot start the nodes");
        return;
    }
    honest_check(&e, 20);
    size_t base = 0;
    int fds = 0;
    /* more rounds find smaller leaks: AEMP_HOSTILE_ROUNDS=N */
    const char *more = getenv("AEMP_HOSTILE_ROUNDS");
    if (more && atoi(more) > rounds && rounds > 1) rounds = atoi(more);
    for (int round = 0; round < rounds; round++) {
        if (round == 1) {
            run_for(0.05);
            base = mem_used();
            fds = fd_count();
        }
        e.v.warnings[0] = 0;
        e.v.nwarn = 0;
        attack(&e, round);
        honest_check(&e, 20);
    }
    run_for(0.05);
    if (rounds > 1) {
        size_t now = mem_used();
        if (getenv("AEMP_TEST_VERBOSE"))
            fprintf(stderr, "    heap: %+ld bytes over %d attacks\n", (long)(now - base), rounds - 1);
        if (now > base + slack)
            t_fail(__FILE__, __LINE__, "heap grew by %zu bytes over %d attacks (allowed %zu)",
                   now - base, rounds - 1, slack);
        CHECK_INT(fd_count(), fds);
    }
    CHECK_INT(e.v.honest_down, 0);
    CHECK_INT(e.v.honest_order_errors, 0);
    CHECK_INT(e.v.honest_got, e.sent);
    env_teardown(&e);
}

/* ASan counts live bytes exactly; malloc's own counter moves a little
 * with its free lists (a few KB that settle, whatever the rounds) */
#ifdef HOSTILE_ASAN
#define SLACK (4 * 1024)
#else
#define SLACK (32 * 1024)
#endif

/* Sends bytes as a fresh connection, lets the honest node talk meanwhile,
 * and expects the victim to close with msg. */
static void bytes_attack(env_t *e, const char *bytes, size_t n, const char *msg)
{
    raw_t r;
    if (raw_open(&r, e->v.noderef)) {
        t_fail(__FILE__, __LINE__, "cannot connect");
        return;
    }
    raw_send(&r, bytes, n);
    honest_send(e, 5);
    CHECK(raw_wait_closed(&r, 5));
    EXPECT_WARNING(e, &r, msg);
    /* the victim greeted first, as every node does */
    CHECK(r.inlen >= 7 && !memcmp(r.in, "aemp;0;", 7));
    raw_close(&r);
}

/* ------------------------------------------------------------------ */
/* before authentication */

static void attack_garbage(env_t *e, int round)
{
    (void)round;
    static const char http[] = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
    bytes_attack(e, http, sizeof http - 1, "unparsable greeting");
}

TEST(hostile_garbage_greeting)
{
    run_attack(attack_garbage, 4, SLACK);
}

static void attack_endless_line(env_t *e, int round)
{
    (void)round;
    size_t n = 1 << 20;
    char *junk = malloc(n);
    memset(junk, 'x', n);
    bytes_attack(e, junk, n, "handshake line too long (over 4096 bytes)");
    free(junk);
}

TEST(hostile_endless_line)
{
    run_attack(attack_endless_line, 3, SLACK);
}

/* Greeting line 1 padded to total bytes, LF included. */
static char *padded_greeting(size_t total)
{
    char *g = malloc(total + 64);
    int head = snprintf(g, total + 64, "aemp;0;127.0.0.1:9;hmac_md6_64_256;json;pad=");
    memset(g + head, 'y', total - 1 - (size_t)head);
    g[total - 1] = '\n';
    g[total] = 0;
    return g;
}

static void attack_greeting_4097(env_t *e, int round)
{
    (void)round;
    char *g = padded_greeting(4097);
    bytes_attack(e, g, 4097, "handshake line too long (over 4096 bytes)");
    free(g);

    /* one byte less is a line the protocol allows: the victim answers */
    raw_t r;
    REQUIRE(raw_open(&r, e->v.noderef) == 0);
    g = padded_greeting(4096);
    raw_send(&r, g, 4096);
    raw_send_str(&r, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    free(g);
    CHECK(raw_wait_lines(&r, 2, 5)); /* its greeting: the line was taken */
    run_for(0.1);
    CHECK(!r.closed);
    /* no token for a peer that has not shown one */
    CHECK(strstr(r.in, "\nhmac_md6_64_256;") == NULL);
    char refused[128];
    snprintf(refused, sizeof refused, "%s: handshake line too long", r.addr);
    CHECK(strstr(e->v.warnings, refused) == NULL);
    raw_close(&r);
    run_for(0.05);
    EXPECT_WARNING(e, &r, "Broken pipe");
}

TEST(hostile_greeting_4097_bytes)
{
    run_attack(attack_greeting_4097, 3, SLACK);
}

static void attack_version(env_t *e, int round)
{
    (void)round;
    static const char g[] = "aemp;1;127.0.0.1:9;hmac_md6_64_256;json\nAAAA\n";
    bytes_attack(e, g, sizeof g - 1, "version mismatch (we: 0, they: 1)");
}

TEST(hostile_wrong_version)
{
    run_attack(attack_version, 3, SLACK);
}

static void attack_no_common(env_t *e, int round)
{
    (void)round;
    static const char a[] = "aemp;0;127.0.0.1:9;md5_hmac,sha1_hmac;json\nAAAA\n";
    bytes_attack(e, a, sizeof a - 1, "md5_hmac,sha1_hmac: no common auth type supported");
    static const char f[] = "aemp;0;127.0.0.1:9;hmac_md6_64_256;xml,yaml\nAAAA\n";
    bytes_attack(e, f, sizeof f - 1, "xml,yaml: no common framing method supported");
    /* control bytes of a peer never reach the log as they are */
    static const char c[] = "aemp;0;127.0.0.1:9;x\r\x1b[2J;json\nAAAA\n";
    bytes_attack(e, c, sizeof c - 1, "x\\x0d\\x1b[2J: no common auth type supported");
}

TEST(hostile_no_common_auth_or_framing)
{
    run_attack(attack_no_common, 3, SLACK);
}

static void attack_echo(env_t *e, int round)
{
    (void)round;
    raw_t r;
    REQUIRE(raw_open(&r, e->v.noderef) == 0);
    REQUIRE(raw_wait_lines(&r, 2, 5));
    /* the victim's own two lines, back to it */
    char *lf = strchr(r.in, '\n');
    size_t n = (size_t)(strchr(lf + 1, '\n') + 1 - r.in);
    raw_send(&r, r.in, n);
    CHECK(raw_wait_closed(&r, 5));
    EXPECT_WARNING(e, &r, "authentication error, echo attack?");
    raw_close(&r);
}

TEST(hostile_echo_of_own_greeting)
{
    run_attack(attack_echo, 3, SLACK);
}

/* Greets, waits until the victim has taken the greeting, then sends
 * line: the failing line arrives in a read of its own (see the disabled
 * test below for all of it in one segment). The victim, the accepting
 * side, holds its auth line until it has read the peer's; when that
 * fails, the victim's line goes out before the close, as from a Perl
 * node, so the peer learns why. */
static void auth_line_attack(env_t *e, const char *line, const char *msg)
{
    raw_t r;
    REQUIRE(raw_open(&r, e->v.noderef) == 0);
    raw_send_str(&r, greeting("127.0.0.1:9"));
    CHECK(raw_wait_lines(&r, 2, 5));
    run_for(0.05);
    raw_send_str(&r, line);
    honest_send(e, 5);
    CHECK(raw_wait_closed(&r, 5));
    EXPECT_WARNING(e, &r, msg);
    CHECK(strstr(r.in, "\nhmac_md6_64_256;") != NULL);
    raw_close(&r);
}

static void attack_wrong_token(env_t *e, int round)
{
    (void)round;
    char buf[1024];
    snprintf(buf, sizeof buf, "hmac_md6_64_256;%064d;json\n", 0);
    auth_line_attack(e, buf, "authentication failure/shared secret mismatch");
    /* a real token, computed with the wrong secret */
    raw_t r;
    REQUIRE(raw_open(&r, e->v.noderef) == 0);
    char err[256];
    CHECK_INT(raw_auth(&r, "not the secret\n", NULL, err, sizeof err), 0);
    CHECK_STR(err, "authentication failure/shared secret mismatch");
    CHECK(raw_wait_closed(&r, 5));
    EXPECT_WARNING(e, &r, "authentication failure/shared secret mismatch");
    raw_close(&r);
}

TEST(hostile_wrong_token)
{
    run_attack(attack_wrong_token, 3, SLACK);
}

static void attack_cleartext(env_t *e, int round)
{
    (void)round;
    raw_t r;
    REQUIRE(raw_open(&r, e->v.noderef) == 0);
    CHECK_INT(raw_auth(&r, "not the secret\n", "cleartext", NULL, 0), 0);
    CHECK(raw_wait_closed(&r, 5));
    EXPECT_WARNING(e, &r, "authentication failure/shared secret mismatch");
    raw_close(&r);
    /* the victim's auth line itself is never cleartext */
    CHECK(strstr(e->v.warnings, "cleartext") == NULL);
}

TEST(hostile_cleartext_wrong_secret)
{
    run_attack(attack_cleartext, 3, SLACK);
}

static void attack_data_before_auth(env_t *e, int round)
{
    (void)round;
    char buf[1024];
    auth_line_attack(e, "[\"\",\"relay\",\"x\",\"y\"]\n",
                     "[\"\",\"relay\",\"x\",\"y\"]: fatal, selected unsupported auth method");
    /* and a text that is not even a line: it just waits, then the peer
     * goes */
    raw_t r;
    REQUIRE(raw_open(&r, e->v.noderef) == 0);
    snprintf(buf, sizeof buf, "%s[\"\",\"relay\"]", greeting("127.0.0.1:9"));
    raw_send_str(&r, buf);
    honest_check(e, 5);
    CHECK_INT(e->v.other_got, 0);
    raw_close(&r);
    run_for(0.05);
    EXPECT_WARNING(e, &r, "Broken pipe");
}

TEST(hostile_data_before_auth)
{
    run_attack(attack_data_before_auth, 3, SLACK);
}

/*
 * A link closed while it is on the node's flush list must leave it: it is
 * freed when the callback that closed it unwinds, and aemp__flush_cb()
 * would then read freed memory (ASan: heap-use-after-free in
 * aemp__flush_cb; the plain build does not notice). Two ways to get
 * there:
 *  - greeting, nonce and a failing auth line in one segment: the engine
 *    queues the victim's auth line (on the nonce line) and fails (on the
 *    next line) in the same feed; process_handshake() hands the queued
 *    line to aemp__link_write(), which schedules a flush, then closes;
 *  - aemp_node_send() past max_outq from inside a callback: the link is
 *    on the flush list since the sends before, and is closed.
 */
static void attack_one_segment(env_t *e, int round)
{
    (void)round;
    char buf[1024];
    snprintf(buf, sizeof buf, "%shmac_md6_64_256;%064d;json\n", greeting("127.0.0.1:9"), 0);
    bytes_attack(e, buf, strlen(buf), "authentication failure/shared secret mismatch");
    snprintf(buf, sizeof buf, "%s[\"\",\"devnull\"]\n", greeting("127.0.0.1:9"));
    bytes_attack(e, buf, strlen(buf),
                 "[\"\",\"devnull\"]: fatal, selected unsupported auth method");
}

TEST(hostile_failed_handshake_in_one_segment)
{
    run_attack(attack_one_segment, 3, SLACK);
}

/* The same dangling flush-list entry, reached through max_outq: a peer
 * that authenticates, sends one message and then never reads, and a
 * handler on the victim that answers it until its queue overflows (to
 * the peer whose message it handles: sent for another peer, the
 * messages would stop at half of max_outq, dropped). */
static const char *stuck_peer;

static void overflow_from_handler(void *ud, aemp_node_t *node, const char *src, const char *id,
                                  json_t *msg)
{
    v_msg(ud, node, src, id, msg);
    if (!stuck_peer || strcmp(src, stuck_peer)) return;
    char pad[4096];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    for (int i = 0; i < 100000; i++)
        if (aemp_node_send(node, stuck_peer, json_pack("[sss]", "x", "fill", pad))) break;
    stuck_peer = NULL;
}

TEST(hostile_queue_overflow_inside_callback)
{
    env_t e;
    REQUIRE(env_setup(&e, secret) == 0);
    aemp_node_destroy(e.v.node);
    aemp_node_config_t c = {0};
    c.bind = "127.0.0.1:0";
    c.secret = secret;
    c.secret_len = strlen(secret);
    c.max_outq = 1 << 20;
    c.log = v_log;
    c.log_ud = &e.v;
    c.on_message = overflow_from_handler;
    c.message_ud = &e.v;
    e.v.node = aemp_node_new(EV_DEFAULT, &c, NULL);
    REQUIRE(e.v.node && aemp_node_start(e.v.node) == 0);
    snprintf(e.v.noderef, sizeof e.v.noderef, "%s", aemp_node_noderef(e.v.node));
    raw_t r;
    REQUIRE(raw_open(&r, e.v.noderef) == 0);
    REQUIRE(raw_auth(&r, secret, NULL, NULL, 0) == 1);
    stuck_peer = "127.0.0.1:9"; /* the name raw_auth greets with; it never reads */
    raw_send_str(&r, "[\"no-such-port\",\"answer me\"]");
    honest_check(&e, 3);
    CHECK(strstr(e.v.warnings, "send queue overflow") != NULL);
    honest_check(&e, 3);
    raw_close(&r);
    env_teardown(&e);
}

static void attack_silence(env_t *e, int round)
{
    raw_t r;
    REQUIRE(raw_open(&r, e->v.noderef) == 0);
    raw_send_str(&r, greeting("127.0.0.1:9"));
    if (round == 0) {
        /* warm-up: the same greeting, then gone */
        REQUIRE(raw_wait_lines(&r, 2, 5));
        raw_close(&r);
        run_for(0.05);
        EXPECT_WARNING(e, &r, "Broken pipe");
        return;
    }
    double t0 = ev_time();
    /* the honest node is served all the while */
    while (!r.closed && ev_time() - t0 < HS_TIMEOUT + 3) {
        honest_check(e, 5);
        run_for(1.0);
        raw_pump(&r);
    }
    double dt = ev_time() - t0;
    CHECK(r.closed);
    CHECK(dt > HS_TIMEOUT - 0.5 && dt < HS_TIMEOUT + 2.5);
    EXPECT_WARNING(e, &r, "Connection timed out");
    raw_close(&r);
}

TEST(hostile_silence_after_greeting)
{
    victim_hs_timeout = HS_TIMEOUT;
#ifdef HOSTILE_ASAN
    /* the wait for the timeout teaches a sanitizer nothing new (the same timer path
     * closes links in the node tests): the plain build runs it, this one
     * only the greeting and the close, then says the wait was skipped */
    run_attack(attack_silence, 1, SLACK);
    SKIP("the wait for the handshake timeout is not run under ASan (the warm-up greeting "
         "and close were checked)");
#else
    run_attack(attack_silence, 2, SLACK);
#endif
}

/* ------------------------------------------------------------------ */
/* after authentication */

/* Authenticates, sends bytes, expects the close with msg (NULL: expects
 * the link to stay; then it is closed here). */
static void data_attack(env_t *e, const char *bytes, size_t n, const char *msg)
{
    raw_t r;
    REQUIRE(raw_open(&r, e->v.noderef) == 0);
    REQUIRE(raw_auth(&r, secret, NULL, NULL, 0) == 1);
    raw_send(&r, bytes, n);
    honest_send(e, 5);
    if (msg) {
        CHECK(raw_wait_closed(&r, 5));
        EXPECT_WARNING(e, &r, msg);
    } else {
        honest_check(e, 5);
        raw_pump(&r);
        CHECK(!r.closed);
    }
    raw_close(&r);
    run_for(0.05);
}

static void attack_endless_json(env_t *e, int round)
{
    (void)round;
    /* a string that never ends, then an array that never ends */
    size_t n = 4 * MAX_MESSAGE;
    char *text = malloc(n);
    memset(text, 'a', n);
    memcpy(text, "[\"x\",\"", 6);
    char want[128];
    snprintf(want, sizeof want, "Bad message (JSON text longer than %d bytes)", MAX_MESSAGE);
    data_attack(e, text, n, want);
    text[0] = '[';
    for (size_t i = 1; i < n; i++) text[i] = i % 2 ? '1' : ',';
    data_attack(e, text, n, want);
    free(text);
}

TEST(hostile_json_never_ends)
{
    run_attack(attack_endless_json, 3, SLACK);
}

static void attack_deep(env_t *e, int round)
{
    (void)round;
    size_t n = 1000000;
    char *deep = malloc(n);
    memset(deep, '[', n);
    data_attack(e, deep, n, "Bad message (nesting deeper than 512)");

    /* 512 levels are allowed and arrive; 513 are not */
    char *ok = malloc(2 * 513 + 16);
    long before = e->v.other_got;
    for (int depth = 512; depth <= 513; depth++) {
        size_t o = 0;
        o += (size_t)sprintf(ok, "[\"x\",");
        for (int i = 1; i < depth; i++) ok[o++] = '[';
        for (int i = 0; i < depth; i++) ok[o++] = ']';
        data_attack(e, ok, o, depth == 512 ? NULL : "Bad message (nesting deeper than 512)");
    }
    CHECK_INT(e->v.other_got, before + 1);
    free(ok);
    free(deep);
}

TEST(hostile_deep_nesting)
{
    run_attack(attack_deep, 3, SLACK);
    /* the decoder alone, without the framer in front: it does not
     * recurse; a caller's limit above AEMP_JSON_DEPTH_LIMIT counts as
     * that limit (jansson frees values recursively) */
    size_t n = 1000000;
    char *deep = malloc(2 * n);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    char err[AEMP_JSON_ERRMAX];
    CHECK(aemp_json_decode(deep, 2 * n, 0, err, sizeof err) == NULL);
    CHECK_STR(err, "nesting deeper than 512 at offset 512");
    CHECK(aemp_json_decode(deep, 2 * n, 200000, err, sizeof err) == NULL);
    char want[64];
    snprintf(want, sizeof want, "nesting deeper than %d at offset %d", AEMP_JSON_DEPTH_LIMIT,
             AEMP_JSON_DEPTH_LIMIT);
    CHECK_STR(err, want);
    size_t levels = AEMP_JSON_DEPTH_LIMIT;
    json_t *v = aemp_json_decode(deep + n - levels, 2 * levels, 200000, err, sizeof err);
    CHECK(v != NULL);
    json_decref(v); /* recursively, at the deepest depth allowed */
    free(deep);
}

static void attack_bad_utf8(env_t *e, int round)
{
    (void)round;
    static const char bad[] = "[\"x\",\"\xff\"]";
    data_attack(e, bad, sizeof bad - 1, "Bad message (invalid UTF-8 at offset 6)");
    static const char surrogate[] = "[\"x\",\"\xed\xa0\x80\"]";
    data_attack(e, surrogate, sizeof surrogate - 1, "Bad message (invalid UTF-8 at offset 6)");
}

TEST(hostile_invalid_utf8)
{
    run_attack(attack_bad_utf8, 3, SLACK);
}

static void attack_numbers(env_t *e, int round)
{
    (void)round;
    static const char big[] =
        "[\"x\",\"n\",1e400,-1e999,123456789012345678901234567890,-9223372036854775808,"
        "18446744073709551615,-0,4.9e-325][\"x\",\"after\"]";
    long before = e->v.other_got;
    data_attack(e, big, sizeof big - 1, NULL);
    CHECK_INT(e->v.other_got, before + 2);
}

TEST(hostile_numbers_out_of_range)
{
    run_attack(attack_numbers, 3, SLACK);
    env_t e;
    REQUIRE(env_setup(&e, secret) == 0);
    raw_t r;
    REQUIRE(raw_open(&r, e.v.noderef) == 0);
    REQUIRE(raw_auth(&r, secret, NULL, NULL, 0) == 1);
    static const char big[] = "[\"x\",1e400,123456789012345678901234567890,"
                              "-9223372036854775808,18446744073709551615]";
    raw_send(&r, big, sizeof big - 1);
    for (int i = 0; i < 100 && !e.v.other_got; i++) run_for(0.02);
    REQUIRE(e.v.other_got == 1);
    json_t *m = e.v.other_last;
    const char *t = NULL;
    CHECK(aemp_json_is_raw_number(json_array_get(m, 1), &t) && !strcmp(t, "1e400"));
    CHECK_STR(json_string_value(json_array_get(m, 2)), "123456789012345678901234567890");
    CHECK_STR(json_string_value(json_array_get(m, 3)), "-9223372036854775808");
    CHECK(aemp_json_is_raw_number(json_array_get(m, 4), &t) &&
          !strcmp(t, "18446744073709551615"));
    raw_close(&r);
    env_teardown(&e);
}

/* Well-formed JSON that makes no sense to the node port or the ports:
 * each is dropped (with a warning or without), the link stays. */
static void attack_odd_messages(env_t *e, int round)
{
    (void)round;
    static const char odd[] =
        "[][null][1][{}][\"\"][\"\",1][\"\",\"\"][\"\",\"relay\"][\"\",\"relay\",1]"
        "[\"\",\"relay\",\"nowhere#x\",1][\"\",\"relay_multiple\",1,[],[1],[null,2]]"
        "[\"\",\"lookup\"][\"\",\"lookup\",{}][\"\",\"lookup\",\"x\",\"127.0.0.1:9#r\"]"
        "[\"\",\"time\"][\"\",\"time\",7][\"\",\"eval\",\"1\"][\"\",\"devnull\",[[[]]]]"
        "[\"\",\"mon1\"][\"\",\"mon1\",{}][\"\",\"mon1\",\"no.such\"][\"\",\"mon0\",\"x\"]"
        "[\"\",\"kil\"][\"\",\"kil\",null,\"x\"][\"\",\"kil\",\"a.b\",\"die\",\"m\"]"
        "[\"\",\"iam\"][\"\",\"iam\",\"\"][\"\",\"iam\",5][\"\",\"AnyEvent::MP::_spawn\"]"
        "[\"\",\"AnyEvent::MP::_spawn\",\"id\",\"no::such\",1]"
        "[\"\",\"AnyEvent::MP::_spawn\",{},{}][\"\",\"no_such_function\",1]"
        "[\"no.such.port\",1][\"x\",\"after\"]";
    long before = e->v.other_got;
    data_attack(e, odd, sizeof odd - 1, NULL);
    CHECK(e->v.other_got > before); /* at least the last one */
    CHECK(strstr(e->v.warnings, "Bad message") == NULL);
}

TEST(hostile_odd_node_port_messages)
{
    run_attack(attack_odd_messages, 3, SLACK);
}

/* ------------------------------------------------------------------ */
/* many connections */

TEST(hostile_10k_abandoned_connections)
{
    env_t e;
    REQUIRE(env_setup(&e, secret) == 0);
    honest_check(&e, 20);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    /* each connection costs two descriptors here: ours and the victim's */
    size_t batch = 500;
    if (rl.rlim_cur != RLIM_INFINITY && (rl.rlim_cur - 64) / 2 < batch)
        batch = (rl.rlim_cur - 64) / 2;
    REQUIRE(batch >= 16);
    size_t total = 10000, done = 0, base = 0;
    int fds = fd_count(), round = 0;
    raw_t *conns = calloc(batch, sizeof *conns);
    const char *g = greeting("127.0.0.1:9");
    while (done < total) {
        size_t n = total - done < batch ? total - done : batch;
        for (size_t i = 0; i < n; i++) REQUIRE(raw_open(&conns[i], e.v.noderef) == 0);
        /* every one is accepted and greeted, then left in some state */
        for (size_t i = 0; i < n; i++) {
            CHECK(raw_wait_lines(&conns[i], 1, 5));
            switch (i % 3) {
            case 0: break;                                 /* silent */
            case 1: raw_send(&conns[i], g, 20); break;     /* half a line */
            default: raw_send(&conns[i], g, strlen(g) - 10); /* line 1, half a nonce */
            }
        }
        honest_send(&e, 5);
        for (size_t i = 0; i < n; i++) raw_close(&conns[i]);
        done += n;
        /* the victim notices each close and keeps nothing */
        double end = ev_time() + 10;
        while (fd_count() != fds && ev_time() < end) run_for(0.01);
        CHECK_INT(fd_count(), fds);
        honest_check(&e, 5);
        e.v.warnings[0] = 0;
        if (round++ == 0) base = mem_used();
    }
    free(conns);
    run_for(0.05);
    size_t now = mem_used();
    if (now > base + SLACK)
        t_fail(__FILE__, __LINE__, "heap grew by %zu bytes over %zu connections", now - base,
               total - batch);
    CHECK_INT(e.v.honest_down, 0);
    CHECK_INT(e.v.honest_order_errors, 0);
    CHECK_INT(e.v.honest_got, e.sent);
    env_teardown(&e);
}

/* ------------------------------------------------------------------ */
/* no secret in any log line or error message */

static int contains_secret(const char *text, const char *sec)
{
    char hex[256];
    size_t n = strlen(sec);
    for (size_t i = 0; i < n; i++) sprintf(hex + 2 * i, "%02x", (unsigned char)sec[i]);
    /* the secret, its hex (the cleartext form) and any 8-byte piece of it */
    if (strstr(text, sec) || strstr(text, hex)) return 1;
    for (size_t i = 0; i + 8 <= n; i++) {
        char piece[9];
        memcpy(piece, sec + i, 8);
        piece[8] = 0;
        if (strstr(text, piece)) return 1;
    }
    return 0;
}

static int o_refused(void *ud)
{
    tnode_t *o = ud;
    return strstr(o->warnings, "shared secret mismatch") != NULL;
}

TEST(hostile_no_secret_in_logs)
{
    static const char canary[] = "CANARY-5ecret-7f3a9\n";
    static const char other[] = "OTHER-5ecret-c41d2\n";
    env_t e;
    REQUIRE(env_setup(&e, canary) == 0);
    e.v.all_levels = 1;
    honest_check(&e, 5);
    /* every failure we can make: wrong secrets both ways, cleartext,
     * garbage, a broken data phase */
    for (int i = 0; i < 2; i++) {
        raw_t r;
        REQUIRE(raw_open(&r, e.v.noderef) == 0);
        char err[256];
        raw_auth(&r, other, i ? "cleartext" : NULL, err, sizeof err);
        CHECK(!contains_secret(err, canary) && !contains_secret(err, other));
        raw_wait_closed(&r, 5);
        raw_close(&r);
    }
    raw_t r;
    REQUIRE(raw_open(&r, e.v.noderef) == 0);
    REQUIRE(raw_auth(&r, canary, "cleartext", NULL, 0) == 1);
    raw_send_str(&r, "[\"x\",\"\xff\"]");
    raw_wait_closed(&r, 5);
    raw_close(&r);
    tnode_t o;
    REQUIRE(mknode(&o, "127.0.0.1:0", other, 0));
    o.warnings[0] = 0;
    aemp_node_send(o.node, e.v.noderef, json_pack("[ss]", "x", "y"));
    CHECK(run_until(o_refused, &o, 5));
    run_for(0.1);
    CHECK(strstr(e.v.warnings, "authentication failure/shared secret mismatch") != NULL);
    CHECK(strstr(e.v.warnings, "Bad message") != NULL);
    CHECK(!contains_secret(e.v.warnings, canary));
    CHECK(!contains_secret(e.v.warnings, other));
    CHECK(!contains_secret(o.warnings, canary));
    CHECK(!contains_secret(o.warnings, other));
    CHECK(!contains_secret(o.last_down, other));
    if (t_failures) fprintf(stderr, "victim log:\n%s\nother log:\n%s\n", e.v.warnings, o.warnings);
    aemp_node_destroy(o.node);
    env_teardown(&e);

    /* the engine's own error texts on every path */
    static const char *const peers[] = {
        "aemp;1;a:1;hmac_md6_64_256;json\nAAAA\n",
        "junk\n",
        "aemp;0;a:1;x;json\nAAAA\n",
        "aemp;0;a:1;hmac_md6_64_256;x\nAAAA\n",
        "aemp;0;a:1;hmac_md6_64_256;json\nAAAA\nhmac_md6_64_256;00;json\n",
        "aemp;0;a:1;hmac_md6_64_256;json\nAAAA\ncleartext;00;json\n",
        "aemp;0;a:1;hmac_md6_64_256;json\nAAAA\nmd5;00;json\n",
        "aemp;0;a:1;hmac_md6_64_256;json\nAAAA\ntls;;json\n",
    };
    unsigned char nonce[AEMP_NONCE_BYTES] = {0};
    for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++) {
        aemp_hs_config_t hc = {.noderef = "b:1", .secret = canary, .secret_len = strlen(canary),
                               .auths_send = "hmac_md6_64_256,cleartext", .nonce = nonce};
        aemp_hs_t *hs = aemp_hs_new(&hc, NULL);
        aemp_hs_feed(hs, peers[i], strlen(peers[i]));
        CHECK(aemp_hs_state(hs) & AEMP_HS_FAILED);
        CHECK(!contains_secret(aemp_hs_error(hs), canary));
        aemp_hs_free(hs);
    }
    /* a cleartext line from a peer that knows the secret, but lost the
     * ';' after the method: the method it names holds the secret */
    char line[256], hex[64];
    for (size_t i = 0; canary[i]; i++) sprintf(hex + 2 * i, "%02X", (unsigned char)canary[i]);
    snprintf(line, sizeof line, "aemp;0;a:1;hmac_md6_64_256;json\nAAAA\ncleartextx%s;json\n", hex);
    aemp_hs_config_t hc = {.noderef = "b:1", .secret = canary, .secret_len = strlen(canary),
                           .nonce = nonce};
    aemp_hs_t *hs = aemp_hs_new(&hc, NULL);
    aemp_hs_feed(hs, line, strlen(line));
    CHECK_STR(aemp_hs_error(hs),
              "(text holding the shared secret, not shown): fatal, selected unsupported auth "
              "method");
    aemp_hs_free(hs);
}

/* ------------------------------------------------------------------ */
/* what an unauthenticated greeting may leave behind
 *
 * Nothing: a greeting's noderef counts for nothing until the peer has
 * authenticated. Once, three defects came from acting on it at once:
 * every new name made a peer entry that was never freed (about 400 bytes
 * a greeting, unbounded); a second greeting with the same name held the
 * first link, which then ignored the peer's close and kept its socket
 * until the handshake timeout; and a greeting with the name of a real
 * peer made an attempt to that peer look in progress, so messages to it
 * waited for the stranger's link to die. The tests below keep them
 * fixed. */

/* Opens n connections that greet with noderef(i) and a nonce, waits for
 * the victim's auth line on each, then closes them all. */
static void greet_and_leave(env_t *e, int n, int distinct)
{
    static int serial;
    raw_t *c = calloc((size_t)n, sizeof *c);
    for (int i = 0; i < n; i++) {
        char nr[64];
        int k = distinct ? ++serial : 1;
        snprintf(nr, sizeof nr, "10.%d.%d.%d:4040", (k >> 16) & 255, (k >> 8) & 255, k & 255);
        if (raw_open(&c[i], e->v.noderef)) break;
        raw_send_str(&c[i], greeting(nr));
    }
    for (int i = 0; i < n; i++) raw_wait_lines(&c[i], 2, 5);
    for (int i = 0; i < n; i++) raw_close(&c[i]);
    free(c);
}

static int count_lines_with(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++) n++;
    return n;
}

/* A victim with max_handshakes 20 and n silent connections to it,
 * accepted in this order. Returns 0 or -1. */
static int silent_flood(env_t *e, raw_t *c, int n)
{
    victim_max_handshakes = 20;
    if (env_setup(e, secret)) return -1;
    honest_check(e, 5);
    for (int i = 0; i < n; i++) {
        if (raw_open(&c[i], e->v.noderef)) return -1;
        run_for(0.01);
    }
    return 0;
}

/* More silent connections than max_handshakes: the oldest go, and a new
 * honest node still gets in. */
TEST(hostile_handshake_flood_evicts_oldest)
{
    env_t e;
    raw_t c[30];
    REQUIRE(silent_flood(&e, c, 30) == 0);
    for (int i = 10; i < 30; i++) CHECK(raw_wait_lines(&c[i], 2, 5));
    for (int i = 0; i < 10; i++) {
        CHECK(raw_wait_closed(&c[i], 5));
        EXPECT_WARNING(&e, &c[i], "too many connections in handshake");
    }
    for (int i = 10; i < 30; i++) CHECK(!c[i].closed);
    /* a new node connects: its link takes the place of the oldest */
    tnode_t h2;
    REQUIRE(mknode(&h2, "127.0.0.1:0", secret, 0));
    long before = e.v.other_got;
    aemp_node_send(h2.node, e.v.noderef, json_pack("[ss]", "x", "newcomer"));
    double end = ev_time() + 5;
    while (e.v.other_got == before && ev_time() < end) run_for(0.02);
    CHECK_INT(e.v.other_got, before + 1);
    CHECK(raw_wait_closed(&c[10], 5));
    honest_check(&e, 5);
    for (int i = 0; i < 30; i++) raw_close(&c[i]);
    aemp_node_destroy(h2.node);
    env_teardown(&e);
}


/* A storm of honest nodes, three times max_handshakes at once, behind
 * silent connections that already fill the cap: every node gets in and
 * none is closed for the count; only silent connections are. */
#define STORM_NODES 60
TEST(hostile_handshake_storm_of_honest_nodes)
{
    env_t e;
    raw_t c[30];
    REQUIRE(silent_flood(&e, c, 30) == 0);
    for (int i = 0; i < 30; i++) CHECK(raw_wait_lines(&c[i], 2, 5));
    tnode_t *h = calloc(STORM_NODES, sizeof *h);
    REQUIRE(h);
    long before = e.v.other_got;
    for (int i = 0; i < STORM_NODES; i++) REQUIRE(mknode(&h[i], "127.0.0.1:0", secret, 0));
    for (int i = 0; i < STORM_NODES; i++)
        aemp_node_send(h[i].node, e.v.noderef, json_pack("[ss]", "x", "storm"));
    double end = ev_time() + 10;
    while (e.v.other_got < before + STORM_NODES && ev_time() < end) run_for(0.02);
    CHECK_INT(e.v.other_got, before + STORM_NODES);
    /* the silent ones over the cap go once they have been silent a while */
    for (int i = 0; i < 10; i++) {
        CHECK(raw_wait_closed(&c[i], 5));
        EXPECT_WARNING(&e, &c[i], "too many connections in handshake");
    }
    run_for(0.2);
    /* every eviction was of a silent connection: none of an honest node */
    int closed = 0;
    for (int i = 0; i < 30; i++) {
        raw_pump(&c[i]);
        closed += c[i].closed;
    }
    int evicted = count_lines_with(e.v.warnings, "too many connections in handshake");
    if (evicted != closed) fprintf(stderr, "    the victim said:\n%s", e.v.warnings);
    CHECK_INT(evicted, closed);
    for (int i = 0; i < STORM_NODES; i++) CHECK_INT(h[i].links_down, 0);
    honest_check(&e, 5);
    for (int i = 0; i < 30; i++) raw_close(&c[i]);
    for (int i = 0; i < STORM_NODES; i++) aemp_node_destroy(h[i].node);
    free(h);
    env_teardown(&e);
}

/* Connections that send one byte of a greeting every half second never
 * look silent: over the cap the oldest still goes once it is
 * AEMP_HANDSHAKE_OLD_EVICT old, and under the cap each ends after
 * the handshake timeout in all (the victim's HS_TIMEOUT). */
TEST(hostile_handshake_trickle_times_out)
{
    victim_max_handshakes = 2;
    victim_hs_timeout = HS_TIMEOUT;
    env_t e;
    REQUIRE(env_setup(&e, secret) == 0);
    honest_check(&e, 5);
    const char *g = greeting("127.0.0.1:9");
    raw_t c[3];
    double t0 = ev_time();
    for (int i = 0; i < 3; i++) {
        REQUIRE(raw_open(&c[i], e.v.noderef) == 0);
        run_for(0.01);
    }
    double closed_at[3] = {0, 0, 0};
#ifdef HOSTILE_ASAN
    double limit = AEMP_HANDSHAKE_OLD_EVICT + 3;
#else
    double limit = HS_TIMEOUT + 3;
#endif
    for (size_t k = 0; ev_time() - t0 < limit; k++) {
        int open = 0;
        for (int i = 0; i < 3; i++) {
            raw_pump(&c[i]);
            if (c[i].closed) {
                if (!closed_at[i]) closed_at[i] = ev_time() - t0;
                continue;
            }
            open++;
            raw_send(&c[i], g + k % 40, 1);
        }
        if (!open) break;
        if (k % 4 == 0) honest_send(&e, 1);
        run_for(0.5);
    }
    /* the oldest over the cap: closed for its age, though it talks */
    CHECK(closed_at[0] > AEMP_HANDSHAKE_OLD_EVICT - 0.5 && closed_at[0] < AEMP_HANDSHAKE_OLD_EVICT + 2);
    EXPECT_WARNING(&e, &c[0], "too many connections in handshake");
#ifdef HOSTILE_ASAN
    for (int i = 0; i < 3; i++) raw_close(&c[i]);
    honest_check(&e, 1);
    env_teardown(&e);
    SKIP("the wait for the handshake timeout is not run under ASan (the eviction of the "
         "oldest trickle was checked)");
#else
    /* the others, under the cap: the handshake timeout in all */
    for (int i = 1; i < 3; i++) {
        CHECK(closed_at[i] > HS_TIMEOUT - 0.5 && closed_at[i] < HS_TIMEOUT + 2.5);
        EXPECT_WARNING(&e, &c[i], "Connection timed out");
    }
    for (int i = 0; i < 3; i++) raw_close(&c[i]);
    honest_check(&e, 1);
    env_teardown(&e);
#endif
}

/* The process runs out of descriptors: the victim's accept fails, and it
 * pauses its listener instead of spinning on it; established links go on,
 * and once descriptors are free the waiting connection is served. */
TEST(hostile_descriptor_exhaustion_pauses_accept)
{
    env_t e;
    REQUIRE(env_setup(&e, secret) == 0);
    honest_check(&e, 5);
    struct rlimit old, rl;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    rl = old;
    rl.rlim_cur = (rlim_t)fd_count() + 40;
    REQUIRE(rl.rlim_cur <= old.rlim_max && setrlimit(RLIMIT_NOFILE, &rl) == 0);
    /* each connection is two descriptors here (ours and the victim's):
     * open until ours cannot be made; the last ones wait in the backlog */
    int reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(reserve >= 0);
    raw_t c[64];
    int n = 0;
    while (n < 63 && raw_open(&c[n], e.v.noderef) == 0) {
        n++;
        run_for(0.01);
    }
    REQUIRE(n >= 2 && n < 63);
    /* no descriptor is left: one more connection, made with the reserve,
     * waits in the backlog for the victim's accept */
    run_for(0.6);
    e.v.warnings[0] = 0;
    close(reserve);
    REQUIRE(raw_open(&c[n++], e.v.noderef) == 0);
    run_for(1.2);
    int pauses = count_lines_with(e.v.warnings, "accept: Too many open files");
    if (pauses < 1 || pauses > 4) fprintf(stderr, "    %d pauses; victim said:\n%s", pauses, e.v.warnings);
    CHECK(pauses >= 1 && pauses <= 4);
    honest_check(&e, 5);
    /* descriptors come back: the connection in the backlog is served */
    for (int i = 0; i < n / 2; i++) raw_close(&c[i]);
    CHECK(raw_wait_lines(&c[n - 1], 2, 3));
    for (int i = n / 2; i < n; i++) raw_close(&c[i]);
    setrlimit(RLIMIT_NOFILE, &old);
    honest_check(&e, 5);
    env_teardown(&e);
}

TEST(hostile_greeted_names_do_not_accumulate)
{
    env_t e;
    REQUIRE(env_setup(&e, secret) == 0);
    honest_check(&e, 5);
    int fds = fd_count();
    /* the warm-up reaches the same concurrency, so tables that grow to
     * fit 400 open connections (libev's fd array, the peer map) have
     * their size before the baseline */
    greet_and_leave(&e, 400, 1);
    run_for(0.2);
    size_t base = mem_used();
    for (int round = 0; round < 5; round++) greet_and_leave(&e, 400, 1);
    run_for(0.2);
    size_t now = mem_used();
    if (now > base + SLACK)
        t_fail(__FILE__, __LINE__, "heap grew by %zu bytes after 2000 greetings with new names",
               now - base);
    CHECK_INT(fd_count(), fds);
    honest_check(&e, 5);
    env_teardown(&e);
}

TEST(hostile_greeted_links_released_on_close)
{
    env_t e;
    REQUIRE(env_setup(&e, secret) == 0);
    honest_check(&e, 5);
    int fds = fd_count();
    greet_and_leave(&e, 100, 0);
    double end = ev_time() + 5;
    while (fd_count() != fds && ev_time() < end) run_for(0.05);
    CHECK_INT(fd_count(), fds);
    honest_check(&e, 5);
    env_teardown(&e);
}

/* Unauthenticated connections that greet with the noderef of a real peer
 * (one of them adding an endpoint of its own), then say nothing more,
 * while this node wants to reach that peer: an unproven name counts for
 * nothing, so the victim connects to the real node at once, keeps its
 * endpoints, and never hands the impostors a token. */
TEST(hostile_spoofed_greeting_does_not_block_peer)
{
    env_t e;
    REQUIRE(env_setup(&e, secret) == 0);
    raw_t r[2];
    char name[300];
    snprintf(name, sizeof name, "%s,127.0.0.1:9", e.v.honest);
    const char *names[2] = {e.v.honest, name};
    for (int i = 0; i < 2; i++) {
        REQUIRE(raw_open(&r[i], e.v.noderef) == 0);
        raw_send_str(&r[i], greeting(names[i]));
        REQUIRE(raw_wait_lines(&r[i], 2, 5));
    }
    run_for(0.1);
    /* the victim now sends to the real node of that name */
    tnode_t *h = &e.h;
    double t0 = ev_time();
    aemp_node_send(e.v.node, e.v.honest, json_pack("[ssI]", "x", "to honest", (json_int_t)0));
    want_t w = {h, 1};
    CHECK(run_until(got_n, &w, 5));
    CHECK(ev_time() - t0 < 2.0);
    if (!h->received) fprintf(stderr, "    victim said:\n%s", e.v.warnings);
    CHECK(!strcmp(h->last_up_peer, e.v.noderef));
    honest_check(&e, 5);
    CHECK_INT(e.v.honest_down, 0);
    for (int i = 0; i < 2; i++) {
        raw_pump(&r[i]);
        CHECK(!r[i].closed);
        CHECK(strstr(r[i].in, "\nhmac_md6_64_256;") == NULL);
        raw_close(&r[i]);
    }
    env_teardown(&e);
}

static int raw_sync(raw_t *r, const char *tag);

/* The victim and the honest node (env_setup), the honest messages
 * flowing, and r authenticated to the victim (greeting as 127.0.0.1:9)
 * and its link up there. 0, or -1 when a step failed. */
static int env_with_insider(env_t *e, raw_t *r)
{
    if (env_setup(e, secret)) return -1;
    honest_check(e, 3);
    if (raw_open(r, e->v.noderef) || raw_auth(r, secret, NULL, NULL, 0) != 1) return -1;
    return raw_sync(r, "up") ? 0 : -1;
}

/* An authenticated peer that claims, with iam, the name of another node
 * this one is connected to does not get that node's messages. */
TEST(hostile_iam_cannot_take_a_connected_name)
{
    env_t e;
    raw_t r;
    REQUIRE(env_with_insider(&e, &r) == 0);
    char iam[300];
    snprintf(iam, sizeof iam, "[\"\",\"iam\",\"%s\"]", e.v.honest);
    raw_send_str(&r, iam);
    run_for(0.1);
    want_t w = {&e.h, e.h.received + 1};
    aemp_node_send(e.v.node, e.v.honest, json_pack("[ssI]", "x", "to honest", (json_int_t)0));
    CHECK(run_until(got_n, &w, 2));
    raw_pump(&r);
    CHECK(!r.in || !strstr(r.in, "to honest"));
    CHECK(strstr(e.v.warnings, "iam refused") != NULL);
    CHECK(!r.closed);
    honest_check(&e, 3);
    raw_close(&r);
    env_teardown(&e);
}

/* ------------------------------------------------------------------ */
/* peers that a peer makes the victim know */

/* Entries in the victim's peer table. */
static size_t peers_of(const env_t *e)
{
    size_t k = 0;
    for (const aemp__peer_t *p = e->v.node->peers_list; p; p = p->next) k++;
    return k;
}

/* fmt (one %d, at most 63 bytes printed) for i = 0..n-1, one after
 * another (malloc'd; *len bytes), or NULL. */
static char *repeat_msgs(const char *fmt, int n, size_t *len)
{
    size_t cap = (size_t)n * 64 + 1;
    char *buf = malloc(cap);
    *len = 0;
    for (int i = 0; buf && i < n; i++) *len += (size_t)snprintf(buf + *len, cap - *len, fmt, i);
    return buf;
}

/* Waits until the victim has handled everything r sent before: it asks
 * for the time with a reply to the port 127.0.0.1:9#TAG (the attacker,
 * by the name it greeted with). */
static int raw_sync(raw_t *r, const char *tag)
{
    char req[128], want[64];
    snprintf(req, sizeof req, "[\"\",\"time\",\"127.0.0.1:9#%s\"]", tag);
    snprintf(want, sizeof want, "[\"%s\",", tag);
    raw_send_str(r, req);
    return raw_wait_for(r, want, 30);
}

/* An authenticated peer sends 100000 relays, each to a node id of its
 * own making (hosts that are no address: the victim tries them for
 * connect_timeout without a socket), then one relay_multiple of 2000
 * more: the victim knows at most what that peer's part of the unasked
 * peers' budget (a sixteenth of max_peer_memory) holds, says why once
 * (rate-limited), counts them as what that peer holds, and its links
 * keep working: the honest node's messages arrive, the attacker's own
 * link stays, a relay to a node it knows still goes out, and the honest
 * node's relay to a node not known yet is taken (its own part). Before
 * the budget every id made a peer (102000). */
TEST(hostile_made_up_node_ids_make_bounded_peers)
{
    env_t e;
    raw_t r;
    victim_max_peer_memory = 8u << 20;
    int rc = env_with_insider(&e, &r);
    victim_max_peer_memory = 0;
    REQUIRE(rc == 0);
    size_t before = peers_of(&e) - 1; /* (without the attacker's) */
    enum { N = 100000, M = 2000 }; /* (M: within the victim's max_message) */
    size_t cap = (size_t)N * 64, len;
    char *buf = repeat_msgs("[\"\",\"relay\",\"made%d:1#p\",\"x\"]", N, &len);
    REQUIRE(buf);
    double t0 = ev_time();
    CHECK(raw_send(&r, buf, len) == len);
    CHECK(raw_sync(&r, "a"));
    double dt = ev_time() - t0;
    size_t after = peers_of(&e);
    /* then one message naming 10000 more */
    len = (size_t)snprintf(buf, cap, "[\"\",\"relay_multiple\"");
    for (int i = 0; i < M; i++)
        len += (size_t)snprintf(buf + len, cap - len, ",[\"more%d:1#p\",\"x\"]", i);
    len += (size_t)snprintf(buf + len, cap - len, "]");
    CHECK(raw_send(&r, buf, len) == len);
    CHECK(raw_sync(&r, "b"));
    size_t after2 = peers_of(&e);
    size_t bound = (8u << 20) / 16 / AEMP_PEER_ENTRY_COST;
    printf("    peers: %zu before, %zu after %d made-up ids (%.2f s), %zu after %d more in one "
           "relay_multiple; bound %zu\n", before, after, N, dt, after2, M, bound);
    CHECK(after <= before + 1 + bound);
    CHECK(after2 <= before + 1 + bound);
    CHECK(after > before + bound / 4); /* (the budget is used, not refused from the start) */
    CHECK(e.v.node->unasked_bytes <= (8u << 20) / 16);
    /* all its doing, counted under its name */
    CHECK((uintptr_t)aemp__map_get(&e.v.node->caused, "127.0.0.1:9") == e.v.node->unasked_bytes);
    int lines = 0;
    for (const char *w = e.v.warnings; (w = strstr(w, "messages to nodes not known yet dropped"));
         w++)
        lines++;
    CHECK(lines >= 1 && lines <= (int)AEMP_LOG_BURST + 1);
    CHECK(strstr(e.v.warnings, "127.0.0.1:9: messages to nodes not known yet dropped: the nodes "
                               "its messages named hold its") != NULL);
    /* reconnecting under the same name gives it no new part: what its
     * messages made is counted by its name */
    raw_close(&r);
    run_for(0.2);
    REQUIRE(raw_open(&r, e.v.noderef) == 0);
    REQUIRE(raw_auth(&r, secret, NULL, NULL, 0) == 1);
    char *more = repeat_msgs("[\"\",\"relay\",\"again%d:1#p\",\"x\"]", 3000, &len);
    REQUIRE(more);
    CHECK(raw_send(&r, more, len) == len);
    CHECK(raw_sync(&r, "c"));
    free(more);
    printf("    after a reconnect and 3000 more: unasked %zu bytes, its part %u\n",
           e.v.node->unasked_bytes, (8u << 20) / 16);
    CHECK(e.v.node->unasked_bytes <= (8u << 20) / 16);
    CHECK(aemp__peer_get(e.v.node, "again2999:1", 0) == NULL);
    /* the links work: the honest node's, the attacker's, and a relay to
     * a node the victim knows */
    honest_check(&e, 20);
    raw_pump(&r);
    CHECK(!r.closed);
    char relay[300];
    snprintf(relay, sizeof relay, "[\"\",\"relay\",\"%s#x\",\"relayed\",\"by\",-1]", e.v.honest);
    want_t w = {&e.h, e.h.received + 1};
    raw_send_str(&r, relay);
    CHECK(run_until(got_n, &w, 5));
    CHECK_INT(e.v.honest_down, 0);
    CHECK_INT(e.v.honest_order_errors, 0);
    /* the honest node's relay to a node the victim does not know yet:
     * taken, counted as the honest node's */
    size_t unasked = e.v.node->unasked_bytes;
    aemp_node_send(e.h.node, e.v.noderef, json_pack("[ssss]", "", "relay", "fresh:1#p", "x"));
    honest_check(&e, 3); /* (after it, in order) */
    aemp__peer_t *fresh = aemp__peer_get(e.v.node, "fresh:1", 0);
    CHECK(fresh != NULL);
    CHECK(e.v.node->unasked_bytes > unasked);
    if (fresh) CHECK(fresh->cause && !strcmp(fresh->cause, e.v.honest));
    /* a message of our own to a new node is not refused */
    CHECK_INT(aemp_node_send(e.v.node, "ours:1", json_pack("[ss]", "p", "x")), 0);
    free(buf);
    raw_close(&r);
    env_teardown(&e);
}

/* Relays from r to n nodes it names, 127.0.X.Y:port for X.Y from
 * `from` on: each an endpoint of its own at one listener. */
static void relay_to_named(raw_t *r, int from, int n, int port)
{
    char msg[128];
    for (int i = from; i < from + n; i++) {
        snprintf(msg, sizeof msg, "[\"\",\"relay\",\"127.0.%d.%d:%d#p\",\"x\"]", 1 + i / 200,
                 1 + i % 200, port);
        raw_send_str(r, msg);
    }
}

/* The peer of the node named by relay_to_named's i. */
static aemp__peer_t *named_peer(env_t *e, int i, int port)
{
    char name[64];
    snprintf(name, sizeof name, "127.0.%d.%d:%d", 1 + i / 200, 1 + i % 200, port);
    return aemp__peer_get(e->v.node, name, 0);
}

/* An authenticated peer relays to 300 nodes it names, each at an address
 * where a listener completes the TCP handshake and says nothing: the
 * victim holds at most AEMP_UNASKED_ATTEMPTS_PER_NODE connection attempts
 * (descriptors) for them (before: 300, one per name, until each
 * handshake timed out) and says why the others wait; the honest node's
 * relay to a new node still gets its attempt at once; four such peers
 * together hold at most AEMP_UNASKED_ATTEMPTS_MAX. The victim's own
 * sends and connects are not held back: a waiting node it sends to or
 * connects to gets an attempt at once, with a deadline of its own. */
TEST(hostile_named_nodes_hold_bounded_attempts)
{
    env_t e;
    raw_t r, more[3];
    REQUIRE(env_with_insider(&e, &r) == 0);
    /* one listener for all the names: on every address, so that each
     * 127.0.X.Y is an endpoint of its own */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    socklen_t sl = sizeof sa;
    REQUIRE(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 1024) == 0 &&
            getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0);
    int port = ntohs(sa.sin_port);
    size_t links0 = e.v.node->nlinks;
    relay_to_named(&r, 0, 300, port);
    CHECK(raw_sync(&r, "a"));
    run_for(0.2);
    printf("    300 nodes named by one peer: %u attempts (%zu links more), bound %u of %u\n",
           e.v.node->unasked_attempts, e.v.node->nlinks - links0, AEMP_UNASKED_ATTEMPTS_PER_NODE,
           AEMP_UNASKED_ATTEMPTS_MAX);
    CHECK_INT(e.v.node->unasked_attempts, AEMP_UNASKED_ATTEMPTS_PER_NODE); /* (used, not refused) */
    CHECK(e.v.node->nlinks - links0 <= AEMP_UNASKED_ATTEMPTS_PER_NODE);
    CHECK(strstr(e.v.warnings, "unasked peers: connection attempts wait: 16 run, 16 for the nodes "
                               "127.0.0.1:9's messages named (at most 64, 16 each); 127.0.") != NULL);
    /* the honest node's relay to a node not known yet: its own part */
    char name[64];
    snprintf(name, sizeof name, "127.0.9.1:%d#p", port);
    aemp_node_send(e.h.node, e.v.noderef, json_pack("[ssss]", "", "relay", name, "x"));
    honest_check(&e, 3); /* (after it, in order) */
    snprintf(name, sizeof name, "127.0.9.1:%d", port);
    aemp__peer_t *fresh = aemp__peer_get(e.v.node, name, 0);
    CHECK(fresh && fresh->unasked_cost && fresh->links != NULL);
    /* three more peers of such names: all together at most the bound */
    for (int k = 0; k < 3; k++) {
        char as[32], err[128] = "";
        snprintf(as, sizeof as, "127.0.0.1:%d", 11 + k);
        REQUIRE(raw_open(&more[k], e.v.noderef) == 0);
        aemp_hs_t *hs = raw_auth_begin(&more[k], as, secret, NULL, err, sizeof err);
        REQUIRE(hs);
        REQUIRE(raw_auth_end(&more[k], hs, 5, err, sizeof err) == 1);
        relay_to_named(&more[k], 300 + 100 * k, 100, port);
    }
    run_for(0.5);
    printf("    and 100 each by three more: %u attempts (%zu links more)\n",
           e.v.node->unasked_attempts, e.v.node->nlinks - links0);
    CHECK_INT(e.v.node->unasked_attempts, AEMP_UNASKED_ATTEMPTS_MAX);
    CHECK(e.v.node->nlinks - links0 <= AEMP_UNASKED_ATTEMPTS_MAX + 3); /* (+ their own links) */
    /* a waiting one: named, connecting, no attempt; our own send to it
     * starts its attempt now, with its own connect_timeout */
    aemp__peer_t *w = named_peer(&e, 299, port);
    REQUIRE(w);
    CHECK(w->connecting && !w->links && w->unasked_cost);
    snprintf(name, sizeof name, "%s", w->noderef);
    CHECK_INT(aemp_node_send(e.v.node, name, json_pack("[ss]", "p", "ours")), 0);
    CHECK(w->links != NULL && !w->unasked_cost);
    CHECK(w->connect_deadline >= ev_now(EV_DEFAULT) + AEMP_DEFAULT_CONNECT_TIMEOUT - 0.5);
    /* so does our own connect to one */
    w = named_peer(&e, 298, port);
    REQUIRE(w);
    CHECK(w->connecting && !w->links && w->unasked_cost);
    snprintf(name, sizeof name, "%s", w->noderef);
    CHECK_INT(aemp_node_connect(e.v.node, name), 0);
    CHECK(w->links != NULL && !w->unasked_cost);
    /* and to a node not named before */
    snprintf(name, sizeof name, "127.0.9.9:%d", port);
    CHECK_INT(aemp_node_connect(e.v.node, name), 0);
    aemp__peer_t *o = aemp__peer_get(e.v.node, name, 0);
    CHECK(o && o->links != NULL);
    CHECK_INT(e.v.node->unasked_attempts, AEMP_UNASKED_ATTEMPTS_MAX);
    for (int k = 0; k < 3; k++) {
        raw_pump(&more[k]);
        CHECK(!more[k].closed);
        raw_close(&more[k]);
    }
    raw_pump(&r);
    CHECK(!r.closed);
    honest_check(&e, 3);
    close(lfd);
    raw_close(&r);
    env_teardown(&e);
}

static int quiet_port_cb(aemp_port_t *p, json_t *m, void *ud)
{
    (void)p;
    (void)m;
    (void)ud;
    return AEMP_KEEP;
}

/* env_with_insider, and a port of the victim's (its local id at *local),
 * or NULL when a step failed. */
static aemp_port_t *insider_and_port(env_t *e, raw_t *r, const char **local)
{
    if (env_with_insider(e, r)) return NULL;
    aemp_port_t *vp = aemp_port_new(e->v.node, quiet_port_cb, NULL);
    if (vp) *local = strchr(aemp_port_id(vp), '#') + 1;
    return vp;
}

/* The end of such a test: r's link is still up, then all goes. */
static void insider_end(env_t *e, raw_t *r)
{
    raw_pump(r);
    CHECK(!r->closed);
    raw_close(r);
    env_teardown(e);
}

static int third_fired;
static char third_reason[256];
static void third_mon_cb(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    (void)n;
    (void)portid;
    (void)ud;
    third_fired++;
    char *t = aemp_json_encode(reason, NULL);
    snprintf(third_reason, sizeof third_reason, "%s", t ? t : "?");
    free(t);
}

/* A peer cannot make the victim send a request to a third node's node
 * port (protocol 0): a relay, a relay in a relay, or a time reply to the
 * honest node's node port would be the victim's own word there - a kil
 * that fires the honest node's monitor of a live port of the victim's
 * with the peer's reason, an iam that renames the honest node at the
 * victim. Each is refused with a warning; the honest node's monitor
 * stays, and so does its name. */
TEST(hostile_requests_to_a_third_nodes_node_port_refused)
{
    env_t e;
    raw_t r;
    const char *vlocal;
    aemp_port_t *vp = insider_and_port(&e, &r, &vlocal);
    REQUIRE(vp);
    third_fired = 0;
    REQUIRE(aemp_mon(e.h.node, aemp_port_id(vp), third_mon_cb, NULL));
    run_for(0.2);
    char msg[600];
    snprintf(msg, sizeof msg, "[\"\",\"relay\",\"%s\",\"kil\",\"%s\",\"die\",\"forged\"]",
             e.v.honest, vlocal);
    raw_send_str(&r, msg);
    snprintf(msg, sizeof msg, "[\"\",\"time\",\"%s\",\"kil\",\"%s\",\"die\"]", e.v.honest, vlocal);
    raw_send_str(&r, msg);
    snprintf(msg, sizeof msg,
             "[\"\",\"relay\",\"%s\",\"relay\",\"%s\",\"iam\",\"renamed.invalid:1\"]", e.v.honest,
             e.v.noderef);
    raw_send_str(&r, msg);
    CHECK(raw_sync(&r, "a"));
    run_for(0.3);
    printf("    the honest node's monitor of the victim's live port fired %d times%s%s\n", third_fired,
           third_fired ? ": " : "", third_reason);
    CHECK_INT(third_fired, 0);
    aemp__peer_t *hp = aemp__peer_get(e.v.node, e.v.honest, 0);
    CHECK(hp && !strcmp(hp->noderef, e.v.honest));
    CHECK(strstr(e.v.warnings, "127.0.0.1:9: a message to another node's node port refused (it "
                               "would be a request in this node's name): to ") != NULL);
    /* the port lives, its monitor fires when it really dies */
    aemp_port_kill(vp, json_pack("[ss]", "die", "really"));
    for (int i = 0; i < 100 && !third_fired; i++) run_for(0.02);
    CHECK_INT(third_fired, 1);
    CHECK(strstr(third_reason, "really") != NULL);
    raw_pump(&r);
    CHECK(!r.closed);
    honest_check(&e, 3);
    raw_close(&r);
    env_teardown(&e);
}

static int spawned_runs;
static void spawned_fn(aemp_node_t *n, aemp_port_t *port, json_t *args, void *ud)
{
    (void)n;
    (void)port;
    (void)args;
    (void)ud;
    spawned_runs++;
}

/* A peer's spawn cannot take the local ids of this node's own ports
 * (UNIQ.COUNTER, which every port id it publishes shows): before, a
 * spawn of UNIQ.b made our next aemp_port_new return the same id as the
 * peer's port (which was replaced in the table and leaked), and our own
 * spawn of the id after found it taken. The spawn is refused with a
 * warning; a spawn of an id of the peer's own choosing still runs. */
TEST(hostile_spawn_cannot_take_our_port_ids)
{
    env_t e;
    raw_t r;
    REQUIRE(env_with_insider(&e, &r) == 0);
    REQUIRE(aemp_func_register(e.v.node, "fn", spawned_fn, NULL) == 0);
    aemp_port_t *first = aemp_port_new(e.v.node, quiet_port_cb, NULL);
    REQUIRE(first);
    char uniq[64];
    snprintf(uniq, sizeof uniq, "%s", strchr(aemp_port_id(first), '#') + 1);
    *strrchr(uniq, '.') = '\0';
    char msg[300];
    spawned_runs = 0;
    for (const char *c = "bcd"; *c; c++) {
        snprintf(msg, sizeof msg, "[\"\",\"AnyEvent::MP::_spawn\",\"%s.%c\",\"fn\"]", uniq, *c);
        raw_send_str(&r, msg);
    }
    raw_send_str(&r, "[\"\",\"AnyEvent::MP::_spawn\",\"theirsX.a\",\"fn\"]");
    CHECK(raw_sync(&r, "a"));
    CHECK_INT(spawned_runs, 1);
    CHECK(strstr(e.v.warnings, "127.0.0.1:9: spawn refused: ") != NULL);
    CHECK(strstr(e.v.warnings, " is an id of this node's own ports") != NULL);
    aemp_port_t *next = aemp_port_new(e.v.node, quiet_port_cb, NULL);
    REQUIRE(next);
    char want[400];
    snprintf(want, sizeof want, "%s#%s.b", e.v.noderef, uniq);
    CHECK_STR(aemp_port_id(next), want);
    aemp_port_kill(next, NULL);
    aemp_port_kill(first, NULL);
    insider_end(&e, &r);
}

/* A peer that watches our ports and then renames itself (iam) keeps its
 * watches under its new name: its max_peer_monitors still bounds them
 * all, its mon0 finds one made under an old name, and they go when it
 * goes. Before, each name had a limit of its own, and the watches made
 * under old names outlived the peer (24000 here, over a limit of 16384,
 * 18000 left behind), pushing honest peers out at the memory cap. */
TEST(hostile_iam_keeps_the_monitor_limit)
{
    env_t e;
    raw_t r;
    const char *local;
    aemp_port_t *vp = insider_and_port(&e, &r, &local);
    REQUIRE(vp);
    enum { ROUNDS = 4, PER = 6000 };
    char line[256];
    size_t cap = (size_t)PER * 96 + 256, len = 0;
    char *buf = malloc(cap);
    REQUIRE(buf);
    for (int k = 0; k < ROUNDS; k++) {
        len = 0;
        for (int i = 0; i < PER; i++)
            len += (size_t)snprintf(buf + len, cap - len, "[\"\",\"mon1\",\"%s\"]", local);
        len += (size_t)snprintf(buf + len, cap - len, "[\"\",\"iam\",\"renamed%d:1\"]", k);
        CHECK(raw_send(&r, buf, len) == len);
        char tag[16];
        snprintf(tag, sizeof tag, "s%d", k);
        CHECK(raw_sync(&r, tag));
    }
    size_t held = aemp__ports_watches(e.v.node, NULL);
    printf("    %d x (%d mon1, iam): %zu watches held, limit %u\n", ROUNDS, PER, held,
           AEMP_DEFAULT_MAX_PEER_MONITORS);
    CHECK_INT(held, AEMP_DEFAULT_MAX_PEER_MONITORS);
    CHECK_INT(aemp__ports_watches(e.v.node, "renamed3:1"), AEMP_DEFAULT_MAX_PEER_MONITORS);
    CHECK(strstr(e.v.warnings, "renamed2:1: mon1: over 16384 monitors from this node; refused") !=
          NULL);
    /* its mon0 (by its new name) ends one made under its first name */
    snprintf(line, sizeof line, "[\"\",\"mon0\",\"%s\"]", local);
    raw_send_str(&r, line);
    CHECK(raw_sync(&r, "z"));
    CHECK_INT(aemp__ports_watches(e.v.node, NULL), AEMP_DEFAULT_MAX_PEER_MONITORS - 1);
    /* and all go with it */
    raw_close(&r);
    for (int i = 0; i < 100 && aemp__ports_watches(e.v.node, NULL); i++) run_for(0.02);
    CHECK_INT(aemp__ports_watches(e.v.node, NULL), 0);
    honest_check(&e, 3);
    free(buf);
    env_teardown(&e);
}

static int cheap_fired;
static void ignore_fire(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    (void)n;
    (void)reason;
    (void)ud;
    cheap_fired += strstr(portid, "#p7") != NULL;
}

/* What a peer's cheap requests cost does not grow with what this node
 * built itself: a spawn of a function it does not have (a port made and
 * killed) and a kil notice for a port nobody here watches look at none
 * of its 2000 monitors and 2000 registered names (counted, not timed;
 * before, each looked at all of them: 20 000 such spawns took 5-7 s
 * with 20 000 names or monitors). A death that concerns them still
 * finds them. */
TEST(hostile_cheap_requests_do_not_walk_our_monitors_and_names)
{
    env_t e;
    raw_t r;
    REQUIRE(env_with_insider(&e, &r) == 0);
    enum { MONS = 2000, NAMES = 2000, REQS = 500 };
    aemp_port_t *named = aemp_port_new(e.v.node, quiet_port_cb, NULL);
    REQUIRE(named);
    char buf[128];
    for (int i = 0; i < NAMES; i++) {
        snprintf(buf, sizeof buf, "service-%d", i);
        REQUIRE(aemp_reg(e.v.node, buf, aemp_port_id(named)) == 0);
    }
    for (int i = 0; i < MONS; i++) {
        snprintf(buf, sizeof buf, "127.0.0.1:9#p%d", i);
        REQUIRE(aemp_mon(e.v.node, buf, ignore_fire, NULL));
    }
    CHECK(raw_sync(&r, "a"));
    unsigned long v0 = aemp__ports_visits(e.v.node);
    size_t len;
    char *spawns = repeat_msgs("[\"\",\"AnyEvent::MP::_spawn\",\"x%d\",\"nofunc\"]", REQS, &len);
    REQUIRE(spawns);
    CHECK(raw_send(&r, spawns, len) == len);
    free(spawns);
    char *kils = repeat_msgs("[\"\",\"kil\",\"q%d\",\"die\",\"x\"]", REQS, &len);
    REQUIRE(kils);
    CHECK(raw_send(&r, kils, len) == len);
    free(kils);
    CHECK(raw_sync(&r, "b"));
    unsigned long looked = aemp__ports_visits(e.v.node) - v0;
    printf("    %d spawns of an unknown function and %d kil notices, with %d monitors and %d "
           "names: %lu looked at\n", REQS, REQS, MONS, NAMES, looked);
    CHECK_INT(looked, 0);
    /* the named port's death removes its names; a kil of a watched port
     * fires its monitor */
    aemp_port_kill(named, NULL);
    CHECK(aemp_lookup(e.v.node, "service-7") == NULL);
    cheap_fired = 0;
    raw_send_str(&r, "[\"\",\"kil\",\"p7\",\"die\",\"really\"]");
    CHECK(raw_sync(&r, "c"));
    for (int i = 0; i < 50 && !cheap_fired; i++) run_for(0.02);
    CHECK_INT(cheap_fired, 1);
    CHECK(aemp__ports_visits(e.v.node) - v0 >= NAMES + 1);
    insider_end(&e, &r);
}

static int failure_fired;
static void count_failure(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    (void)n;
    (void)portid;
    (void)ud;
    failure_fired += !strcmp(json_string_value(json_array_get(reason, 0)), "transport_error");
}

/* A peer's failure looks at our monitors of that peer's ports only: 10
 * peers that authenticate, watch a port and go (each a failure, as a
 * reconnect loop makes them) look at none of our 2000 monitors of the
 * insider's ports (before: all 2000 each, and a peer lookup for each);
 * the insider's own going fires exactly those 2000. */
TEST(hostile_peer_failures_do_not_walk_our_monitors)
{
    env_t e;
    raw_t r;
    const char *local;
    REQUIRE(insider_and_port(&e, &r, &local));
    enum { MONS = 2000, PEERS = 10 };
    char buf[256];
    failure_fired = 0;
    for (int i = 0; i < MONS; i++) {
        snprintf(buf, sizeof buf, "127.0.0.1:9#i%d", i);
        REQUIRE(aemp_mon(e.v.node, buf, count_failure, NULL));
    }
    CHECK(raw_sync(&r, "a"));
    unsigned long v0 = aemp__ports_visits(e.v.node);
    for (int k = 0; k < PEERS; k++) {
        raw_t q;
        char as[32], err[128] = "";
        snprintf(as, sizeof as, "127.0.0.1:%d", 100 + k);
        REQUIRE(raw_open(&q, e.v.noderef) == 0);
        aemp_hs_t *hs = raw_auth_begin(&q, as, secret, NULL, err, sizeof err);
        REQUIRE(hs);
        REQUIRE(raw_auth_end(&q, hs, 5, err, sizeof err) == 1);
        snprintf(buf, sizeof buf, "[\"\",\"mon1\",\"%s\"]", local);
        raw_send_str(&q, buf);
        snprintf(buf, sizeof buf, "[\"\",\"time\",\"%s#w\"]", as);
        raw_send_str(&q, buf);
        CHECK(raw_wait_for(&q, "[\"w\",", 30));
        CHECK_INT(aemp__ports_watches(e.v.node, as), 1);
        raw_close(&q);
        for (int i = 0; i < 100 && aemp__ports_watches(e.v.node, as); i++) run_for(0.02);
        CHECK_INT(aemp__ports_watches(e.v.node, as), 0); /* (its failure was handled) */
    }
    unsigned long looked = aemp__ports_visits(e.v.node) - v0;
    printf("    %d peers failed, with %d monitors of another peer's ports: %lu looked at\n", PEERS,
           MONS, looked);
    CHECK_INT(looked, 0);
    CHECK_INT(failure_fired, 0);
    raw_pump(&r);
    CHECK(!r.closed);
    raw_close(&r);
    for (int i = 0; i < 100 && failure_fired < MONS; i++) run_for(0.02);
    CHECK_INT(failure_fired, MONS);
    CHECK_INT(aemp__ports_visits(e.v.node) - v0, MONS);
    honest_check(&e, 3);
    env_teardown(&e);
}

/* What a peer queues at our own node port under a name it then drops
 * (iam to another) is not sent or filed under that name: the name no
 * longer leads to the peer, and a relay there would reach another node
 * in our name (a new peer of that name), a watch would belong to
 * nobody. Dropped with warnings (no link to that name now); nothing
 * queued to a made-up node, nothing left watched once the peer is
 * gone. */
TEST(hostile_queued_requests_under_a_dropped_alias_refused)
{
    env_t e;
    raw_t r;
    const char *local;
    aemp_port_t *vp = insider_and_port(&e, &r, &local);
    REQUIRE(vp);
    enum { PER = 200 };
    size_t cap = (size_t)PER * 300 + 1024, len = 0;
    char *buf = malloc(cap);
    REQUIRE(buf);
    len += (size_t)snprintf(buf + len, cap - len, "[\"\",\"iam\",\"third.invalid:7\"]");
    for (int i = 0; i < PER; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                "[\"\",\"time\",\"%s#\",\"relay\",\"third.invalid:7#\",\"g_x\"]"
                                "[\"\",\"time\",\"%s#\",\"mon1\",\"%s\"]",
                                e.v.noderef, e.v.noderef, local);
    len += (size_t)snprintf(buf + len, cap - len, "[\"\",\"iam\",\"aliasB:1\"]");
    CHECK(raw_send(&r, buf, len) == len);
    CHECK(raw_sync(&r, "s0"));
    run_for(0.2);
    size_t queued = 0;
    for (aemp__peer_t *p = e.v.node->peers_list; p; p = p->next)
        if (!strcmp(p->noderef, "third.invalid:7")) queued += aemp__buf_size(&p->queue) + 1;
    printf("    queued to third.invalid:7: %zu; watches %zu (under aliasB:1 %zu)\n", queued,
           aemp__ports_watches(e.v.node, NULL), aemp__ports_watches(e.v.node, "aliasB:1"));
    CHECK_INT(queued, 0);
    CHECK_INT(aemp__ports_watches(e.v.node, NULL), aemp__ports_watches(e.v.node, "aliasB:1"));
    CHECK(strstr(e.v.warnings, "third.invalid:7: its request to this node's own node port "
                               "dropped: no link to that node now") != NULL);
    raw_close(&r);
    for (int i = 0; i < 100 && aemp__ports_watches(e.v.node, NULL); i++) run_for(0.02);
    CHECK_INT(aemp__ports_watches(e.v.node, NULL), 0);
    honest_check(&e, 3);
    free(buf);
    env_teardown(&e);
}

/* One authenticated peer says iam 10000 times with a new name each time:
 * it is known by the last one and by the name it greeted with, not by
 * 10000 aliases (an honest node says iam once per link). */
TEST(hostile_repeated_iam_keeps_one_alias)
{
    env_t e;
    raw_t r;
    REQUIRE(env_with_insider(&e, &r) == 0);
    size_t keys = e.v.node->peers.count;
    enum { N = 10000 };
    size_t len;
    char *buf = repeat_msgs("[\"\",\"iam\",\"alias%d\"]", N, &len);
    REQUIRE(buf);
    CHECK(raw_send(&r, buf, len) == len);
    CHECK(raw_sync(&r, "done"));
    printf("    peer table keys: %zu before, %zu after %d iam\n", keys, e.v.node->peers.count, N);
    CHECK_INT(e.v.node->peers.count, keys + 1);
    aemp__peer_t *p = aemp__peer_get(e.v.node, "127.0.0.1:9", 0);
    REQUIRE(p);
    CHECK(aemp__peer_get(e.v.node, "alias9999", 0) == p);
    CHECK(aemp__peer_get(e.v.node, "alias9998", 0) == NULL);
    CHECK_STR(p->noderef, "alias9999");
    CHECK(p->nnames <= 32); /* its list forgets the replaced ones */
    CHECK(!r.closed);
    honest_check(&e, 3);
    free(buf);
    raw_close(&r);
    env_teardown(&e);
}

/* A peer that renames itself (iam) to a long slave name and then names
 * 300 nodes: its name is kept once for all of them (before, a copy per
 * unasked peer: 300 x 10 KB uncounted); a name over AEMP_P0_NAME_MAX is
 * refused. */
TEST(hostile_long_sender_name_kept_once)
{
    env_t e;
    raw_t r;
    REQUIRE(env_with_insider(&e, &r) == 0);
    enum { LONG = 10000, OVER = AEMP_P0_NAME_MAX + 1 };
    char *msg = malloc(OVER + 64);
    REQUIRE(msg);
    int k = sprintf(msg, "[\"\",\"iam\",\"slave/");
    memset(msg + k, 'q', LONG);
    sprintf(msg + k + LONG, "\"]");
    raw_send_str(&r, msg);
    size_t len;
    char *buf = repeat_msgs("[\"\",\"relay\",\"named%d:1#p\",\"x\"]", 300, &len);
    REQUIRE(buf);
    CHECK(raw_send(&r, buf, len) == len);
    CHECK(raw_sync(&r, "a"));
    aemp__peer_t *a = aemp__peer_get(e.v.node, "named0:1", 0),
                 *b = aemp__peer_get(e.v.node, "named299:1", 0);
    REQUIRE(a && b && a->cause);
    CHECK_INT(strlen(a->cause), 6 + LONG);
    CHECK(a->cause == b->cause); /* one copy */
    CHECK_INT(e.v.node->caused.count, 1);
    /* a name over the limit */
    memset(msg + k, 'q', OVER);
    sprintf(msg + k + OVER, "\"]");
    raw_send_str(&r, msg);
    CHECK(raw_sync(&r, "b"));
    /* (the line keeps the reason: the middle of the long name goes) */
    CHECK(strstr(e.v.warnings, "bytes cut)... ") != NULL);
    CHECK(strstr(e.v.warnings, ": iam refused: a name longer than 17408 bytes\n") != NULL);
    aemp__peer_t *evil = aemp__peer_get(e.v.node, "127.0.0.1:9", 0);
    REQUIRE(evil);
    CHECK_INT(strlen(evil->noderef), 6 + LONG);
    CHECK(!r.closed);
    free(msg);
    free(buf);
    raw_close(&r);
    env_teardown(&e);
}

/* Protocol-0 names carry at most AEMP_P0_NAME_ENDPOINTS_MAX endpoints of
 * AEMP_P0_ENDPOINT_MAX bytes: a relay to a name of 1000 endpoints, or to
 * one with an endpoint of 300 bytes, is dropped with a warning naming
 * the limit and leaves the peer table as it was (before the limit the
 * first made 1001 keys); a name of 64 endpoints is taken; our own send to
 * a longer name fails with AEMP_ELIMIT; a peer greeting with one is
 * refused. */
TEST(hostile_name_endpoints_capped)
{
    env_t e;
    raw_t r;
    REQUIRE(env_with_insider(&e, &r) == 0);
    size_t keys = e.v.node->peers.count;
    char *name = malloc(1000 * 24), *msg = malloc(1000 * 24 + 64);
    REQUIRE(name && msg);
    size_t len = 0;
    for (int i = 0; i < 1000; i++)
        len += (size_t)sprintf(name + len, "%s127.9.%d.%d:1", i ? "," : "", i / 256, i % 256);
    sprintf(msg, "[\"\",\"relay\",\"%s#p\",\"x\"]", name);
    raw_send_str(&r, msg);
    CHECK(raw_sync(&r, "a"));
    CHECK_INT(e.v.node->peers.count, keys);
    CHECK(strstr(e.v.warnings, "127.0.0.1:9: message to a node name over the limit dropped: "
                               "more than 64 endpoints") != NULL);
    /* one endpoint of 300 bytes */
    char longep[400];
    memset(longep, '1', 300);
    sprintf(longep + 300, ":1");
    sprintf(msg, "[\"\",\"relay\",\"127.9.0.1:1,%s#p\",\"x\"]", longep);
    raw_send_str(&r, msg);
    CHECK(raw_sync(&r, "b"));
    CHECK_INT(e.v.node->peers.count, keys);
    CHECK(strstr(e.v.warnings, "127.0.0.1:9: message to a node name over the limit dropped: an "
                               "endpoint longer than 256 bytes") != NULL);
    /* 64 endpoints: a name like any other */
    char *c64 = name;
    for (int i = 0, commas = 0; name[i]; i++)
        if (name[i] == ',' && ++commas == 64) {
            name[i] = 0;
            break;
        }
    sprintf(msg, "[\"\",\"relay\",\"%s#p\",\"x\"]", c64);
    raw_send_str(&r, msg);
    CHECK(raw_sync(&r, "c"));
    CHECK_INT(e.v.node->peers.count, keys + 65);
    /* our own send */
    len = 0;
    for (int i = 0; i < 65; i++) len += (size_t)sprintf(name + len, "%s127.8.0.%d:1", i ? "," : "", i);
    CHECK_INT(aemp_node_send(e.v.node, name, json_pack("[ss]", "p", "x")), AEMP_ELIMIT);
    CHECK(!r.closed);
    raw_close(&r);
    /* a greeting with 65 endpoints: closed for that reason (the log
     * from here on, every level) */
    e.v.warnings[0] = '\0';
    e.v.all_levels = 1;
    raw_t g;
    REQUIRE(raw_open(&g, e.v.noderef) == 0);
    char err[256] = "";
    aemp_hs_t *hs = raw_auth_begin(&g, name, secret, NULL, err, sizeof err);
    if (hs) CHECK(raw_auth_end(&g, hs, 5, err, sizeof err) != 1); /* (or closed before) */
    run_for(0.1);
    CHECK(strstr(e.v.warnings, ": more than 64 endpoints\n") != NULL);
    CHECK(strstr(e.v.warnings, "out of memory") == NULL);
    e.v.all_levels = 0;
    raw_close(&g);
    honest_check(&e, 3);
    free(name);
    free(msg);
    env_teardown(&e);
}
