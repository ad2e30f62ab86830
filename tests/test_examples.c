/*
 * test_examples.c - runs the example programs as a user would: the chat
 * server and chat clients, as separate processes on loopback. The chat is
 * the one of the AnyEvent::MP 0.4 distribution (eg/chat_server,
 * eg/chat_client): besides our server with our clients, a node of the
 * test speaks that chat exactly as the Perl client does against our
 * server (and sends it malformed messages), and exactly as the Perl
 * server does against our client.
 */
#include "test.h"
#include "harness_node.h"

#include <ev.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Starts argv with stdout (and stderr, when err is not NULL) on pipes;
 * returns the pid, *out (*err) the read ends. */
static pid_t start(char *const argv[], int *out, int *err)
{
    int p[2], e[2] = {-1, -1};
    if (pipe(p)) return -1;
    if (err && pipe(e)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        if (err) dup2(e[1], 2);
        close(p[0]);
        close(p[1]);
        if (err) {
            close(e[0]);
            close(e[1]);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    *out = p[0];
    if (err) {
        close(e[1]);
        *err = e[0];
    }
    return pid;
}

/* Reads one line (blocking; the runner's deadline guards us). */
static int read_line(int fd, char *buf, size_t n)
{
    size_t i = 0;
    while (i + 1 < n) {
        char c;
        if (read(fd, &c, 1) != 1) break;
        if (c == '\n') break;
        buf[i++] = c;
    }
    buf[i] = 0;
    return (int)i;
}

static void read_all(int fd, char *buf, size_t n)
{
    size_t have = 0;
    ssize_t r;
    while (have + 1 < n && (r = read(fd, buf + have, n - 1 - have)) > 0) have += (size_t)r;
    buf[have] = 0;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* The paths of the examples and a secret file holding the harness's
 * secret (so nodes of the test can talk to the examples). */
typedef struct chat {
    char server[512], client[512], secretf[64];
} chat_t;

static int chat_setup(chat_t *c)
{
    snprintf(c->server, sizeof c->server, "%s/examples/chat_server", t_build_dir());
    snprintf(c->client, sizeof c->client, "%s/examples/chat_client", t_build_dir());
    snprintf(c->secretf, sizeof c->secretf, "/tmp/aemp-chat-XXXXXX");
    int fd = mkstemp(c->secretf);
    if (fd < 0) return -1;
    ssize_t n = write(fd, secret, strlen(secret));
    close(fd);
    return n == (ssize_t)strlen(secret) ? 0 : -1;
}

TEST(examples_chat)
{
    chat_t c;
    REQUIRE(chat_setup(&c) == 0);
    int sout, aout, bout;
    char *sargv[] = {c.server, "127.0.0.1:0", c.secretf, NULL};
    pid_t sp = start(sargv, &sout, NULL);
    REQUIRE(sp > 0);
    char noderef[256], line[512];
    REQUIRE(read_line(sout, noderef, sizeof noderef) > 0);
    char *aargv[] = {c.client, noderef, "alice", "--secret-file", c.secretf, "--wait", "3", "hello", NULL};
    pid_t ap = start(aargv, &aout, NULL);
    REQUIRE(read_line(sout, line, sizeof line) > 0);
    CHECK(!strncmp(line, "joined: ", 8) && strchr(line, '#'));
    char *bargv[] = {c.client, noderef, "bob", "--secret-file", c.secretf, "--wait", "2", "hey", NULL};
    pid_t bp = start(bargv, &bout, NULL);
    char a_all[2048], b_all[2048];
    read_all(aout, a_all, sizeof a_all);
    read_all(bout, b_all, sizeof b_all);
    int ast, bst;
    waitpid(ap, &ast, 0);
    waitpid(bp, &bst, 0);
    CHECK(WIFEXITED(ast) && WEXITSTATUS(ast) == 0);
    CHECK(WIFEXITED(bst) && WEXITSTATUS(bst) == 0);
    CHECK_STR(a_all, "server: welcome\nalice: hello\nbob: hey\n");
    CHECK_STR(b_all, "server: welcome\nbob: hey\n");
    /* the server relayed both texts, saw bob join and both clients leave
     * (their nodes went away) */
    char s_all[4096] = "";
    int left = 0;
    for (int i = 0; i < 8 && left < 2 && read_line(sout, line, sizeof line) > 0; i++) {
        left += !strncmp(line, "left: ", 6);
        strncat(s_all, line, sizeof s_all - strlen(s_all) - 2);
        strcat(s_all, "\n");
    }
    CHECK_INT(left, 2);
    CHECK_INT(count_of(s_all, "joined: "), 1);
    CHECK(strstr(s_all, "message: alice: hello\n") != NULL);
    CHECK(strstr(s_all, "message: bob: hey\n") != NULL);
    kill(sp, SIGTERM);
    int sst;
    waitpid(sp, &sst, 0);
    CHECK(WIFEXITED(sst) && WEXITSTATUS(sst) == 0);
    unlink(c.secretf);
    close(sout);
    close(aout);
    close(bout);
}

/* A port of the test that keeps what it receives. */
typedef struct inbox {
    json_t *got;
} inbox_t;

static int keep_msg(aemp_port_t *port, json_t *msg, void *ud)
{
    inbox_t *in = ud;
    (void)port;
    json_array_append(in->got, msg);
    return AEMP_KEEP;
}

typedef struct {
    inbox_t *in;
    size_t n;
} want_msgs_t;

static int has_msgs(void *ud)
{
    want_msgs_t *w = ud;
    return json_array_size(w->in->got) >= w->n;
}

/* A child of the test, watched from the loop (libev reaps children). */
typedef struct kid {
    ev_child w;
    int done, status;
} kid_t;

static void kid_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    kid_t *k = (kid_t *)w;
    (void)revents;
    k->done = 1;
    k->status = w->rstatus;
    ev_child_stop(loop, w);
}

static void kid_watch(kid_t *k, pid_t pid)
{
    memset(k, 0, sizeof *k);
    ev_child_init(&k->w, kid_cb, pid, 0);
    ev_child_start(EV_DEFAULT, &k->w);
}

static int kid_done(void *ud)
{
    return ((kid_t *)ud)->done;
}

static void mon_fired(aemp_node_t *node, const char *portid, json_t *reason, void *ud)
{
    (void)node;
    (void)portid;
    (void)reason;
    ++*(int *)ud;
}

/* 1 when msg is exactly ["message", text]. */
static int is_chat_message(json_t *msg, const char *text)
{
    json_t *want = json_pack("[ss]", "message", text);
    int eq = json_equal(msg, want);
    json_decref(want);
    return eq;
}

/* Our chat_server with a client that speaks the distribution's chat (as
 * eg/chat_client does), malformed messages that must not kill the chatter
 * port, and our chat_client chatting afterwards. */
TEST(examples_chat_perl_client)
{
    chat_t c;
    REQUIRE(chat_setup(&c) == 0);
    int sout, serr;
    char *sargv[] = {c.server, "127.0.0.1:0", c.secretf, NULL};
    pid_t sp = start(sargv, &sout, &serr);
    REQUIRE(sp > 0);
    char noderef[256];
    REQUIRE(read_line(sout, noderef, sizeof noderef) > 0);

    tnode_t t;
    REQUIRE(mknode(&t, "127.0.0.1:0", secret, 0));
    start_ticker();
    inbox_t in = {json_array()};
    aemp_port_t *me = aemp_port_new(t.node, keep_msg, &in);
    REQUIRE(me);
    char myid[300];
    snprintf(myid, sizeof myid, "%s", aemp_port_id(me));

    /* snd $server_node, lookup => "chatter", $client_port, "resolved" */
    REQUIRE(aemp_sendf(t.node, noderef, "[ssss]", "lookup", "chatter", myid, "resolved") == 0);
    want_msgs_t w = {&in, 1};
    REQUIRE(run_until(has_msgs, &w, 10));
    json_t *resolved = json_array_get(in.got, 0);
    const char *chatter = json_string_value(json_array_get(resolved, 1));
    CHECK_INT(json_array_size(resolved), 2);
    CHECK_STR(json_string_value(json_array_get(resolved, 0)), "resolved");
    REQUIRE(chatter && !strncmp(chatter, noderef, strlen(noderef)) &&
            chatter[strlen(noderef)] == '#');
    int chatter_died = 0;
    REQUIRE(aemp_mon(t.node, chatter, mon_fired, &chatter_died));

    /* snd $server_port, join => "$client_port"; snd $server_port, message => $msg */
    REQUIRE(aemp_sendf(t.node, chatter, "[ss]", "join", myid) == 0);
    REQUIRE(aemp_sendf(t.node, chatter, "[ss]", "message", "perl: hi") == 0);
    w.n = 3;
    REQUIRE(run_until(has_msgs, &w, 10));
    CHECK(is_chat_message(json_array_get(in.got, 1), "server: welcome"));
    CHECK(is_chat_message(json_array_get(in.got, 2), "perl: hi"));

    /* one bad client: none of these may kill the port the others use */
    static const char *const bad[] = {
        "[\"join\"]", "[\"join\", 42]", "[\"join\", \"no port id\"]", "[\"join\", [\"x\"]]",
        "[\"message\"]", "[\"message\", {\"a\": 1}]", "[\"message\", null]", "[\"message\", 7]",
        "[\"nick\", \"ignored: no such tag\"]", "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *m = json_loads(bad[i], 0, NULL);
        REQUIRE(m);
        CHECK_INT(aemp_send(t.node, chatter, m), 0);
    }
    REQUIRE(aemp_sendf(t.node, chatter, "[ss]", "message", "perl: still here") == 0);
    w.n = 4;
    CHECK(run_until(has_msgs, &w, 10));
    CHECK(is_chat_message(json_array_get(in.got, 3), "perl: still here"));
    CHECK_INT(json_array_size(in.got), 4); /* nothing was relayed for the bad ones */

    /* a second client still chats, and the first one hears it */
    int dout;
    char *dargv[] = {c.client, noderef, "dave", "--secret-file", c.secretf, "--wait", "2", "hello again", NULL};
    kid_t dave;
    pid_t dp = start(dargv, &dout, NULL);
    REQUIRE(dp > 0);
    kid_watch(&dave, dp);
    w.n = 5;
    CHECK(run_until(has_msgs, &w, 10));
    CHECK(is_chat_message(json_array_get(in.got, 4), "dave: hello again"));
    CHECK(run_until(kid_done, &dave, 10));
    CHECK(WIFEXITED(dave.status) && WEXITSTATUS(dave.status) == 0);
    char d_all[1024];
    read_all(dout, d_all, sizeof d_all);
    CHECK_STR(d_all, "server: welcome\ndave: hello again\n");
    CHECK_INT(chatter_died, 0);

    aemp_node_destroy(t.node);
    kill(sp, SIGTERM);
    char s_all[4096], e_all[4096];
    read_all(sout, s_all, sizeof s_all);
    read_all(serr, e_all, sizeof e_all);
    int sst;
    waitpid(sp, &sst, 0);
    char joined[600];
    snprintf(joined, sizeof joined, "joined: %s\n", myid);
    CHECK(strstr(s_all, joined) != NULL);
    CHECK_INT(count_of(s_all, "joined: "), 2);
    CHECK(strstr(s_all, "message: perl: still here\n") != NULL);
    /* each malformed join and message was logged, and only those */
    CHECK_INT(count_of(e_all, "chat_server: dropped "), 8);
    CHECK_INT(count_of(e_all, "join needs a client port id"), 4);
    CHECK_INT(count_of(e_all, "message needs a text"), 4);
    CHECK(strstr(e_all, "chat_server: dropped [\"join\",42]: join needs a client port id\n"));
    json_decref(in.got);
    unlink(c.secretf);
    close(sout);
    close(serr);
    close(dout);
}

/* What eg/chat_server does, in a node of the test: joined client ports
 * get every ["message", TEXT]. It keeps what it received to check our
 * client's shapes. */
typedef struct perl_server {
    json_t *clients, *got;
} perl_server_t;

static int ps_join(aemp_port_t *port, json_t *msg, void *ud)
{
    perl_server_t *s = ud;
    json_array_append(s->got, msg);
    const char *who = json_string_value(json_array_get(msg, 1));
    if (who) {
        json_array_append_new(s->clients, json_string(who));
        /* something our client must ignore without counting it */
        aemp_sendf(aemp_port_node(port), who, "[si]", "message", 42);
    }
    return AEMP_KEEP;
}

static int ps_message(aemp_port_t *port, json_t *msg, void *ud)
{
    perl_server_t *s = ud;
    json_array_append(s->got, msg);
    for (size_t i = 0; i < json_array_size(s->clients); i++)
        aemp_sendf(aemp_port_node(port), json_string_value(json_array_get(s->clients, i)),
                   "[so]", "message", json_incref(json_array_get(msg, 1)));
    return AEMP_KEEP;
}

/* Our chat_client against a server that speaks the distribution's chat
 * (as eg/chat_server does). */
TEST(examples_chat_perl_server)
{
    chat_t c;
    REQUIRE(chat_setup(&c) == 0);
    tnode_t t;
    REQUIRE(mknode(&t, "127.0.0.1:0", secret, 0));
    start_ticker();
    perl_server_t ps = {json_array(), json_array()};
    aemp_port_t *chatter = aemp_port_new(t.node, NULL, NULL);
    REQUIRE(chatter);
    aemp_port_rcv(chatter, "join", ps_join, &ps);
    aemp_port_rcv(chatter, "message", ps_message, &ps);
    REQUIRE(aemp_reg(t.node, "chatter", aemp_port_id(chatter)) == 0);

    int cout, cerr;
    char noderef[256];
    snprintf(noderef, sizeof noderef, "%s", aemp_node_noderef(t.node));
    char *cargv[] = {c.client, noderef, "carol", "--secret-file", c.secretf, "--wait", "2", "one", "two", NULL};
    kid_t carol;
    pid_t cp = start(cargv, &cout, &cerr);
    REQUIRE(cp > 0);
    kid_watch(&carol, cp);
    CHECK(run_until(kid_done, &carol, 15));
    CHECK(WIFEXITED(carol.status) && WEXITSTATUS(carol.status) == 0);
    char c_all[1024], e_all[1024];
    read_all(cout, c_all, sizeof c_all);
    read_all(cerr, e_all, sizeof e_all);
    CHECK_STR(c_all, "carol: one\ncarol: two\n");
    CHECK(strstr(e_all, "chat_client: ignored [\"message\",42]: message needs a text\n") != NULL);

    /* exactly the distribution's shapes: ["join", PORT], ["message", TEXT] */
    REQUIRE(json_array_size(ps.got) == 3);
    json_t *join = json_array_get(ps.got, 0);
    const char *who = json_string_value(json_array_get(join, 1));
    CHECK_INT(json_array_size(join), 2);
    CHECK_STR(json_string_value(json_array_get(join, 0)), "join");
    CHECK(who && strchr(who, '#') && strncmp(who, noderef, strlen(noderef)) != 0);
    CHECK(is_chat_message(json_array_get(ps.got, 1), "carol: one"));
    CHECK(is_chat_message(json_array_get(ps.got, 2), "carol: two"));

    json_decref(ps.clients);
    json_decref(ps.got);
    aemp_node_destroy(t.node);
    unlink(c.secretf);
    close(cout);
    close(cerr);
}
