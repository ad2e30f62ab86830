/*
 * test_msgpath.c - the receive and send paths of messages on a live link:
 * the fast decode (target id kept as bytes, texts taken without the
 * framer while they arrive whole), the framer taking over for cut and big
 * texts, the general decoder for every other shape and for errors, the
 * reuse of a delivered array, the remembered port and destination. The
 * peer is a raw authenticated socket in a forked child writing crafted
 * bytes in crafted pieces; the node runs in this process.
 */
#include "test.h"
#include "aemp.h"
#include "aemp_int.h"
#include "harness_node.h"

#include <ev.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

/* What a port and the raw hook saw, each message as compact JSON. */
typedef struct seen {
    json_t *port;   /* [text...] delivered to the port */
    json_t *hook;   /* [[id, text]...] from on_message */
    json_t *kept;   /* messages (or elements) the callback kept */
    int keep;       /* keep every message / every 2nd element */
} seen_t;

static seen_t seen;

static int record_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    (void)port;
    (void)ud;
    char *s = aemp_json_encode(msg, NULL);
    json_array_append_new(seen.port, json_string(s ? s : "?"));
    free(s);
    /* every 3rd message kept whole, of the others the integer or the
     * string (the rest of each message is the library's to reuse) */
    size_t k = json_array_size(seen.port) % 3;
    if (seen.keep && k == 0) json_array_append(seen.kept, msg);
    else if (seen.keep && json_array_size(msg) > 2) json_array_append(seen.kept, json_array_get(msg, k));
    return AEMP_KEEP;
}

static void hook(void *ud, aemp_node_t *node, const char *src, const char *id, json_t *msg)
{
    (void)ud;
    (void)node;
    (void)src;
    char *s = aemp_json_encode(msg, NULL);
    json_array_append_new(seen.hook, json_pack("[ss]", id, s ? s : "?"));
    free(s);
}

static char warnings[8192];

static void log_cb(void *ud, int level, const char *msg)
{
    (void)ud;
    if (level > AEMP_LOG_WARN) return;
    size_t l = strlen(warnings);
    snprintf(warnings + l, sizeof warnings - l, "%s\n", msg);
}

static aemp_node_t *mk(size_t max_message)
{
    aemp_node_config_t c = {0};
    c.bind = "127.0.0.1:0";
    c.secret = secret;
    c.secret_len = strlen(secret);
    c.max_message = max_message;
    c.log = log_cb;
    c.on_message = hook;
    aemp_node_t *n = aemp_node_new(EV_DEFAULT, &c, NULL);
    if (n && aemp_node_start(n)) {
        aemp_node_destroy(n);
        n = NULL;
    }
    memset(&seen, 0, sizeof seen);
    seen.port = json_array();
    seen.hook = json_array();
    seen.kept = json_array();
    warnings[0] = 0;
    return n;
}

static void seen_free(void)
{
    json_decref(seen.port);
    json_decref(seen.hook);
    json_decref(seen.kept);
}

/* Forks a raw peer that authenticates to noderef and writes text in
 * pieces: cuts[] are offsets where a piece ends (each written on its
 * own, with a pause, so the node reads it on its own), then stays until
 * the node closes the link (it reports 0) or the test kills it. */
static pid_t raw_writer(child_t *ch, const char *noderef, const char *text, size_t len,
                        const size_t *cuts, size_t ncuts)
{
    pid_t pid = fork_reporting(ch);
    if (pid != 0) return pid;
    int fd = raw_connect_auth(noderef, secret);
    if (fd < 0) child_exit(1);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        while (at < to) {
            ssize_t w = write(fd, text + at, to - at);
            if (w <= 0) child_exit(2);
            at += (size_t)w;
        }
        usleep(3000);
    }
    char c;
    while (read(fd, &c, 1) > 0) {}
    child_exit(0);
}

static int port_got(void *ud)
{
    return json_array_size(seen.port) >= (size_t)(long)ud;
}

static void check_seen(const char *file, int line, size_t i, const char *want)
{
    const char *got = json_string_value(json_array_get(seen.port, i));
    if (!got || strcmp(got, want)) t_fail(file, line, "message %zu: got %s, want %s", i, got ? got : "(none)", want);
}
#define CHECK_SEEN(i, want) check_seen(__FILE__, __LINE__, (i), (want))

/* Every shape a peer may send, in one stream, written whole and then cut
 * at every text boundary and inside texts: the port sees the same
 * messages, in order, either way. */
TEST(msgpath_shapes_whole_and_cut)
{
    start_ticker();
    for (int mode = 0; mode < 3; mode++) {
        aemp_node_t *n = mk(0);
        REQUIRE(n);
        aemp_port_t *p = aemp_port_new(n, record_cb, NULL);
        const char *local = strchr(aemp_port_id(p), '#') + 1;
        /* the same id with its first letter escaped: the general path */
        char esc[64];
        snprintf(esc, sizeof esc, "\\u%04x%s", (unsigned char)local[0], local + 1);
        size_t big = 20000;
        char *bigs = malloc(big + 1);
        for (size_t i = 0; i < big; i++) bigs[i] = (char)('a' + i % 26);
        bigs[big] = 0;
        size_t cap = big + 4096, len = 0;
        char *text = malloc(cap);
        size_t cuts[64], ncuts = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        size_t before_ = len;                                                                      \
        len += (size_t)snprintf(text + len, cap - len, __VA_ARGS__);                               \
        if (mode == 1) cuts[ncuts++] = len;                  /* at the boundary */                 \
        if (mode == 2) cuts[ncuts++] = before_ + (len - before_) / 2; /* inside */                 \
    } while (0)
        ADD("[\"%s\",\"a\",1]", local);
        ADD(" \n\t[ \"%s\" , \"b\" , [1,{\"k\":\"v\"}] ]\r\n", local);
        ADD("[\"%s\",\"c\",\"%s\"]", local, bigs);
        ADD("[\"%s\",\"d\",2]", local);
        ADD("[\"%s\",\"e\",3]", local);
        ADD("[\"%s\",\"f\",4]", esc);
        ADD("[\"nosuch.port\",\"g\",5]");
        ADD("[\"\",\"devnull\"]");
        ADD("[\"%s\"]", local);
        ADD("[1,2]");
        ADD("[\"%s\",\"h\",\"\\u00e9\\n\",-0.5,true,null]", local);
        ADD("[\"%s\",\"i\",6]", local);
#undef ADD
        child_t ch;
        pid_t pid = raw_writer(&ch, aemp_node_noderef(n), text, len, cuts, ncuts);
        REQUIRE(pid > 0);
        CHECK(run_until(port_got, (void *)9L, 10));
        run_for(0.02);
        CHECK_INT(json_array_size(seen.port), 9);
        char want[64 + 20000];
        CHECK_SEEN(0, "[\"a\",1]");
        CHECK_SEEN(1, "[\"b\",[1,{\"k\":\"v\"}]]");
        snprintf(want, sizeof want, "[\"c\",\"%s\"]", bigs);
        CHECK_SEEN(2, want);
        CHECK_SEEN(3, "[\"d\",2]");
        CHECK_SEEN(4, "[\"e\",3]");
        CHECK_SEEN(5, "[\"f\",4]");
        CHECK_SEEN(6, "[]");
        CHECK_SEEN(7, "[\"h\",\"\xc3\xa9\\n\",-0.5,true,null]");
        CHECK_SEEN(8, "[\"i\",6]");
        /* [1,2] has no target and is dropped; the unknown port goes to the
         * hook whole */
        CHECK_INT(json_array_size(seen.hook), 1);
        CHECK_STR(json_string_value(json_array_get(json_array_get(seen.hook, 0), 0)), "nosuch.port");
        CHECK_STR(json_string_value(json_array_get(json_array_get(seen.hook, 0), 1)),
                  "[\"nosuch.port\",\"g\",5]");
        CHECK_STR(warnings, "");
        kill(pid, SIGKILL);
        run_until(child_reported, &ch, 5);
        aemp_node_destroy(n);
        seen_free();
        free(text);
        free(bigs);
        if (t_failures) {
            fprintf(stderr, "    (mode %d)\n", mode);
            return;
        }
    }
}

/* A callback may keep the message, or an element of it: the array a link
 * reuses for the next message is never one somebody holds. */
TEST(msgpath_kept_messages_are_not_reused)
{
    start_ticker();
    aemp_node_t *n = mk(0);
    REQUIRE(n);
    aemp_port_t *p = aemp_port_new(n, record_cb, NULL);
    seen.keep = 1;
    const char *local = strchr(aemp_port_id(p), '#') + 1;
    size_t cap = 3000 * 64, len = 0;
    char *text = malloc(cap);
    for (int i = 0; i < 3000; i++)
        len += (size_t)snprintf(text + len, cap - len, "[\"%s\",\"k\",%d,\"x%d\"]", local, i, i);
    size_t cuts[] = {len / 3, len / 2};
    child_t ch;
    pid_t pid = raw_writer(&ch, aemp_node_noderef(n), text, len, cuts, 2);
    REQUIRE(pid > 0);
    CHECK(run_until(port_got, (void *)3000L, 10));
    /* message i (from 0) was the (i+1)th seen: kept whole when i % 3 ==
     * 2, its integer when i % 3 == 0, its string when i % 3 == 1; each
     * kept value still holds what that message carried */
    size_t i;
    json_t *k;
    int whole = 0, ints = 0, strs = 0;
    json_array_foreach(seen.kept, i, k) {
        long msgno = (long)i;
        char want[32];
        snprintf(want, sizeof want, "x%ld", msgno);
        if (msgno % 3 == 2) {
            CHECK(json_is_array(k));
            CHECK_INT(json_array_size(k), 3);
            CHECK_STR(json_string_value(json_array_get(k, 0)), "k");
            CHECK_INT(json_integer_value(json_array_get(k, 1)), msgno);
            CHECK_STR(json_string_value(json_array_get(k, 2)), want);
            whole++;
        } else if (msgno % 3 == 0) {
            CHECK(json_is_integer(k) && json_integer_value(k) == msgno);
            ints++;
        } else {
            CHECK_STR(json_string_value(k), want);
            strs++;
        }
        if (t_failures) break;
    }
    CHECK_INT(whole, 1000);
    CHECK_INT(ints, 1000);
    CHECK_INT(strs, 1000);
    kill(pid, SIGKILL);
    run_until(child_reported, &ch, 5);
    aemp_node_destroy(n);
    seen_free();
    free(text);
}

/* The length limit holds on the fast path: a text of exactly the limit
 * passes (also behind whitespace, which the framer does not count), one
 * byte more fails the link with the framer's message. */
TEST(msgpath_length_limit)
{
    start_ticker();
    aemp_node_t *n = mk(64);
    REQUIRE(n);
    aemp_port_t *p = aemp_port_new(n, record_cb, NULL);
    const char *local = strchr(aemp_port_id(p), '#') + 1;
    char pad[80], text[400];
    int head = snprintf(text, sizeof text, "[\"%s\",\"s\",\"\"]", local);
    REQUIRE(head < 64);
    memset(pad, 'p', sizeof pad);
    int fill = 64 - head;
    size_t len = (size_t)snprintf(text, sizeof text, "[\"%s\",\"s\",\"%.*s\"]  [\"%s\",\"t\",\"%.*s\"]"
                                  "[\"%s\",\"u\",\"%.*s\"]", local, fill, pad, local, fill, pad,
                                  local, fill + 1, pad);
    child_t ch;
    pid_t pid = raw_writer(&ch, aemp_node_noderef(n), text, len, NULL, 0);
    REQUIRE(pid > 0);
    CHECK(run_until(port_got, (void *)2L, 5));
    CHECK(run_until(child_reported, &ch, 5));
    CHECK_INT(json_array_size(seen.port), 2);
    CHECK(strstr(warnings, "Bad message (JSON text longer than 64 bytes)") != NULL);
    aemp_node_destroy(n);
    seen_free();
}

/* A text the fast decoder declines because it is invalid fails the link
 * with the general decoder's own message; what came before it arrived. */
TEST(msgpath_bad_text_reports_the_decoder_error)
{
    start_ticker();
    static const char *const bad[] = {
        "[\"%s\",\"x\",tru]", "[\"%s\",\"x\",\"\xff\"]", "[\"%s\",\"x\" 1]", "[\"%s\",\"x\",01]",
        "[\"%s\",{\"a\" 1}]",
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        aemp_node_t *n = mk(0);
        REQUIRE(n);
        aemp_port_t *p = aemp_port_new(n, record_cb, NULL);
        const char *local = strchr(aemp_port_id(p), '#') + 1;
        char badtext[200], text[400], err[AEMP_JSON_ERRMAX], want[300];
        int bl = snprintf(badtext, sizeof badtext, bad[b], local);
        CHECK(aemp_json_decode(badtext, (size_t)bl, 0, err, sizeof err) == NULL);
        snprintf(want, sizeof want, "Bad message (%s)", err);
        size_t len = (size_t)snprintf(text, sizeof text, "[\"%s\",\"ok\"]%s[\"%s\",\"never\"]",
                                      local, badtext, local);
        child_t ch;
        pid_t pid = raw_writer(&ch, aemp_node_noderef(n), text, len, NULL, 0);
        REQUIRE(pid > 0);
        CHECK(run_until(child_reported, &ch, 5));
        run_for(0.05);
        CHECK_INT(json_array_size(seen.port), 1);
        if (!strstr(warnings, want)) t_fail(__FILE__, __LINE__, "warnings %s lack %s", warnings, want);
        aemp_node_destroy(n);
        seen_free();
    }
}

/* Sends that alternate between two peers and the node itself each reach
 * the right place, in order: the remembered destination follows. */
static long got_b, got_c, got_self, order_errors;

static int count_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    long *ctr = ud;
    (void)port;
    if (json_integer_value(json_array_get(msg, 1)) != *ctr) order_errors++;
    (*ctr)++;
    return AEMP_KEEP;
}

static int all_counted(void *ud)
{
    long n = (long)ud;
    return got_b >= n && got_c >= n && got_self >= n;
}

TEST(msgpath_destinations_alternate)
{
    start_ticker();
    tnode_t ta, tb, tc;
    REQUIRE(mknode(&ta, "127.0.0.1:0", secret, 0));
    REQUIRE(mknode(&tb, "127.0.0.1:0", secret, 0));
    REQUIRE(mknode(&tc, "127.0.0.1:0", secret, 0));
    aemp_port_t *pb = aemp_port_new(tb.node, count_cb, &got_b);
    aemp_port_t *pc = aemp_port_new(tc.node, count_cb, &got_c);
    aemp_port_t *ps = aemp_port_new(ta.node, count_cb, &got_self);
    got_b = got_c = got_self = order_errors = 0;
    for (long i = 0; i < 2000; i++) {
        const char *to = i % 3 == 0 ? aemp_port_id(pb) : i % 3 == 1 ? aemp_port_id(pc)
                                                                    : aemp_port_id(ps);
        CHECK_INT(aemp_send(ta.node, to, json_pack("[sI]", "n", (json_int_t)(i / 3))), 0);
        if (i % 100 == 0) ev_run(EV_DEFAULT, EVRUN_NOWAIT);
    }
    CHECK(run_until(all_counted, (void *)666L, 10));
    CHECK_INT(got_b, 667);
    CHECK_INT(got_c, 667);
    CHECK_INT(got_self, 666);
    CHECK_INT(order_errors, 0);
    /* a bare noderef is the node port; an empty node part is this node,
     * also right after a send to the (odd) empty noderef */
    CHECK_INT(aemp_send(ta.node, aemp_node_noderef(tb.node), json_pack("[s]", "devnull")), 0);
    aemp_node_send(ta.node, "", json_pack("[s]", ""));
    char local[128];
    snprintf(local, sizeof local, "#%s", strchr(aemp_port_id(ps), '#') + 1);
    CHECK_INT(aemp_send(ta.node, local, json_pack("[sI]", "n", (json_int_t)666)), 0);
    CHECK(run_until(all_counted, (void *)667L, 5));
    CHECK_INT(order_errors, 0);
    /* a target id that is not UTF-8 cannot be written */
    char badid[160];
    snprintf(badid, sizeof badid, "%s#\xff", aemp_node_noderef(tb.node));
    CHECK_INT(aemp_send(ta.node, badid, json_pack("[s]", "x")), AEMP_EINVAL);
    aemp_node_destroy(ta.node);
    aemp_node_destroy(tb.node);
    aemp_node_destroy(tc.node);
}
