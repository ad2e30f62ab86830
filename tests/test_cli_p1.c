/*
 * test_cli_p1.c - the aemp command's network subcommands in protocol 1,
 * driven as a user drives them: child processes with a temporary rc file
 * (PERL_ANYEVENT_MP_RC in a mkdtemp directory).
 *
 * - snd, cal and `cal NODE time` join a seed the test plays with the node
 *   id, ports, secret and replies of transcript 11 (2.02's own aemp
 *   tool): what they send must be what 2.02's tool sent, what they print
 *   what it printed (cal: as one JSON array).
 * - `run` as a node that is its own seed, with its services, reached by
 *   snd, cal and mon over the direct seed link.
 * - the errors: no seeds, an unreachable seed, a wrong secret, an unknown
 *   node, bad port ids, bad run arguments.
 * Every wait has a deadline and every child is reaped.
 */
#include "test.h"
#include "harness_cli.h"
#include "harness_node.h"
#include "harness_raw.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* a seed played by the test                                           */

typedef struct fake {
    int lfd, fd;
    char ep[64];         /* where it listens */
    char in[65536];      /* received, not yet consumed */
    size_t len;
    aemp_framer_t fr;
    char peer_id[256];   /* the command's node id */
} fake_t;

static int fake_listen(fake_t *f)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->lfd = raw_listen("127.0.0.1", f->ep, sizeof f->ep);
    return f->lfd;
}

static void fake_close(fake_t *f)
{
    if (f->fd >= 0) close(f->fd);
    if (f->lfd >= 0) close(f->lfd);
    f->fd = f->lfd = -1;
}

static void fake_consume(fake_t *f, size_t n)
{
    memmove(f->in, f->in + n, f->len - n);
    f->len -= n;
}

/* Reads what comes within ms; returns the bytes read, 0 at the end, -1
 * on a timeout. */
static int fake_read(fake_t *f, int ms)
{
    struct pollfd p = {f->fd, POLLIN, 0};
    if (ms <= 0 || poll(&p, 1, ms) <= 0) return -1;
    ssize_t n = read(f->fd, f->in + f->len, sizeof f->in - 1 - f->len);
    if (n <= 0) return 0;
    f->len += (size_t)n;
    return (int)n;
}

static int fake_write(fake_t *f, const void *p, size_t n)
{
    return send(f->fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* Accepts the command's connection and authenticates it, greeting as
 * node id with secret. Returns 1, or 0 with why in err. */
static int fake_accept(fake_t *f, const char *id, const char *sec, char *err, size_t errlen)
{
    struct pollfd p = {f->lfd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0 || (f->fd = accept(f->lfd, NULL, NULL)) < 0) {
        snprintf(err, errlen, "the command did not connect");
        return 0;
    }
    unsigned char nonce[AEMP_NONCE1_BYTES];
    aemp_random_bytes(nonce, sizeof nonce);
    aemp_hs_config_t hc = {.protocol = 1, .noderef = id, .secret = sec,
                           .secret_len = strlen(sec), .nonce = nonce};
    aemp_hs_t *hs = aemp_hs_new(&hc, NULL);
    double end = now_ms() + 5000;
    int ok = 0;
    snprintf(err, errlen, "handshake timed out");
    while (hs) {
        const void *o;
        size_t n;
        while ((o = aemp_hs_out(hs, &n)) != NULL && !fake_write(f, o, n)) aemp_hs_out_ack(hs, n);
        unsigned st = aemp_hs_state(hs);
        if (st & AEMP_HS_FAILED) {
            snprintf(err, errlen, "%s", aemp_hs_error(hs));
            break;
        }
        if (st & AEMP_HS_DONE) {
            snprintf(f->peer_id, sizeof f->peer_id, "%s", aemp_hs_remote_id(hs));
            ok = 1;
            break;
        }
        size_t used = f->len ? aemp_hs_feed(hs, f->in, f->len) : 0;
        if (used) {
            fake_consume(f, used);
            continue;
        }
        if (fake_read(f, (int)(end - now_ms())) <= 0) break;
    }
    aemp_hs_free(hs);
    aemp_framer_init(&f->fr, 0, 0);
    return ok;
}

/* The next message within ms, or NULL. */
static json_t *fake_msg(fake_t *f, int ms)
{
    double end = now_ms() + ms;
    for (;;) {
        size_t s, e;
        int r = aemp_framer_next(&f->fr, f->in, f->len, &s, &e);
        if (r == 1) {
            json_t *v = aemp_json_decode(f->in + s, e - s, 0, NULL, 0);
            fake_consume(f, e);
            return v;
        }
        if (r < 0) return NULL;
        if (e) fake_consume(f, e);
        if (fake_read(f, (int)(end - now_ms())) <= 0) return NULL;
    }
}

/* Every occurrence of from in s replaced by to, into out. */
static void replace(const char *s, const char *from, const char *to, char *out, size_t n)
{
    size_t fl = strlen(from), o = 0;
    while (*s && o + 1 < n) {
        if (fl && !strncmp(s, from, fl)) {
            o += (size_t)snprintf(out + o, n - o, "%s", to);
            s += fl;
        } else {
            out[o++] = *s++;
        }
    }
    out[o < n ? o : n - 1] = 0;
}

/* ["", "g_...", ...]: the global protocol, which the library speaks. */
static int is_global_request(const json_t *m)
{
    const char *to = json_string_value(json_array_get(m, 0));
    const char *tag = json_string_value(json_array_get(m, 1));
    return to && !*to && tag && !strncmp(tag, "g_", 2);
}

/* What 2.02's tool prints for cal and eval (JSON values separated by
 * commas, one line) as an array. */
static json_t *elements(const char *out)
{
    char text[4096];
    size_t len = strlen(out);
    while (len && out[len - 1] == '\n') len--;
    snprintf(text, sizeof text, "[%.*s]", (int)len, out);
    return aemp_json_decode(text, strlen(text), 0, NULL, 0);
}

/* Writes the rc file of transcript 11 (the seed's address ours). */
static void write_rc(const char *path, const char *sec, const char *seed)
{
    json_t *rc = json_pack("{ss s[s] s[s] s[s] si}", "secret", sec, "binds", "127.0.0.1:*",
                           "seeds", seed, "framing_format", "json", "version", 1);
    if (!rc || json_dump_file(rc, path, 0)) abort();
    json_decref(rc);
}

/* One run of 2.02's aemp in transcript 11 (the process `who`, its TCP
 * connection `conn`), replayed against our command. */
static void replay_aemp_run(json_t *t, const char *who, const char *conn, const char *dir,
                            const char *rcpath)
{
    const char *sec = json_string_value(json_object_get(t, "secret"));
    json_t *node = json_object_get(json_object_get(json_object_get(t, "setup"), "nodes"), who);
    json_t *c = json_object_get(json_object_get(json_object_get(t, "setup"), "connections"), conn);
    json_t *msgs = json_object_get(json_object_get(t, "messages"), conn);
    const char *role = json_string_value(json_object_get(node, "role"));
    const char *their_id = json_string_value(json_object_get(c, "client_node_id"));
    const char *seed_id = json_string_value(json_object_get(c, "server_node_id"));
    REQUIRE(sec && role && their_id && seed_id && !strncmp(role, "bin/aemp ", 9));

    fake_t f;
    REQUIRE(fake_listen(&f) >= 0);
    write_rc(rcpath, sec, f.ep);
    /* the command line of the recording: bin/aemp CMD PORT ARG... */
    char line[256], *args[HC_MAX_ARGS + 1];
    int n = 0;
    args[n++] = "--protocol";
    args[n++] = "1";
    snprintf(line, sizeof line, "%s", role + 9);
    for (char *w = strtok(line, " "); w && n < HC_MAX_ARGS; w = strtok(NULL, " ")) args[n++] = w;
    args[n] = NULL;
    env_t env = {dir, rcpath, NULL};
    int out, err;
    double t0 = now_ms();
    pid_t pid = spawn(NULL, args, &env, &out, &err, NULL);
    REQUIRE(pid > 0);

    char why[256];
    CHECK(fake_accept(&f, seed_id, sec, why, sizeof why));
    if (f.fd < 0 || !f.peer_id[0]) t_fail(__FILE__, __LINE__, "%s: %s", who, why);
    /* its node id: aemp/HOSTNAME/ and 10 random characters */
    char host[256], want[300];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = 0;
    snprintf(want, sizeof want, "aemp/%s/", host);
    CHECK(!strncmp(f.peer_id, want, strlen(want)) && strlen(f.peer_id) == strlen(want) + 10);

    /* what it sends besides the global protocol: as 2.02's aemp did */
    json_t *expect = json_object_get(msgs, "c2s");
    size_t want_n = 0, i;
    json_t *m;
    json_array_foreach(expect, i, m) {
        json_t *v = aemp_json_decode(json_string_value(m), strlen(json_string_value(m)), 0, NULL, 0);
        want_n += v && !is_global_request(v);
        json_decref(v);
    }
    char their_reply[300], our_reply[300] = "", *ours[8] = {0};
    snprintf(their_reply, sizeof their_reply, "%s#b", their_id);
    size_t got = 0;
    int slave_db = 0;
    while (got < want_n && got < 8) {
        json_t *v = fake_msg(&f, 5000);
        if (!v) break;
        if (is_global_request(v)) {
            /* ["","g_slave",{"'l":{ID:[LISTENERS]}}]: its binds, 127.0.0.1:* */
            json_t *l = json_object_get(json_object_get(json_array_get(v, 2), "'l"), f.peer_id);
            slave_db |= json_array_size(l) == 1 &&
                        !strncmp(json_string_value(json_array_get(l, 0)), "127.0.0.1:", 10);
        } else {
            size_t k;
            json_t *e;
            json_array_foreach(v, k, e) {
                const char *s = json_string_value(e);
                if (s && !strncmp(s, f.peer_id, strlen(f.peer_id)) && s[strlen(f.peer_id)] == '#')
                    snprintf(our_reply, sizeof our_reply, "%s", s);
            }
            ours[got++] = aemp_json_encode(v, NULL);
        }
        json_decref(v);
    }
    CHECK_INT(got, want_n);
    CHECK(slave_db);
    REQUIRE(our_reply[0]);
    size_t k = 0;
    json_array_foreach(expect, i, m) {
        const char *text = json_string_value(m);
        json_t *v = aemp_json_decode(text, strlen(text), 0, NULL, 0);
        if (v && !is_global_request(v) && k < got) {
            char mine[1024];
            replace(ours[k++], our_reply, their_reply, mine, sizeof mine);
            CHECK_STR(mine, text);
        }
        json_decref(v);
    }
    for (k = 0; k < got; k++) free(ours[k]);

    /* the seed's answers, to our reply port */
    const char *local = strchr(our_reply, '#') + 1;
    json_array_foreach(json_object_get(msgs, "s2c"), i, m) {
        char mine[1024], to[300];
        snprintf(to, sizeof to, "[\"%s\",", local);
        replace(json_string_value(m), "[\"b\",", to, mine, sizeof mine);
        fake_write(&f, mine, strlen(mine));
    }
    res_t r;
    collect(&r, pid, out, err, t0, 8000);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.err, "");
    /* printed exactly as 2.02 printed it */
    const char *obs = json_string_value(json_array_get(json_object_get(json_object_get(t, "observations"), who), 0));
    REQUIRE(obs);
    snprintf(want, sizeof want, "%s\n", obs);
    CHECK_STR(r.out, want);
    fake_close(&f);
    kill_kids();
}

TEST(cli_p1_snd_cal_as_2_02_aemp)
{
    json_t *t = t_load_json_aemp("vectors/p1/transcripts/11-aemp-cli.json");
    REQUIRE(t);
    char dir[64], rc[128];
    temp_rc(dir, rc);
    replay_aemp_run(t, "aemp1", "2", dir, rc); /* snd seed1#68ed5Ykpjc hello from aemp */
    replay_aemp_run(t, "aemp2", "3", dir, rc); /* cal seed1#68ed5Ykpjb ping 42 */
    replay_aemp_run(t, "aemp3", "4", dir, rc); /* eval seed1 1 + 2 */
    replay_aemp_run(t, "aemp4", "5", dir, rc); /* cal seed1 time */
    const char *names[] = {"rc", NULL};
    rm_dir(dir, names);
    json_decref(t);
}

/* ------------------------------------------------------------------ */
/* aemp run                                                            */

/* The port id after "service NAME: " in the run node's log. */
static int service_port(const char *log, const char *name, char *out, size_t n, int nth)
{
    char key[64];
    snprintf(key, sizeof key, "service %s: ", name);
    const char *p = log;
    for (int i = 0; i < nth && p; i++) {
        p = strstr(p, key);
        if (p && i + 1 < nth) p += strlen(key);
    }
    if (!p) return -1;
    p += strlen(key);
    size_t len = strcspn(p, "\n");
    snprintf(out, n, "%.*s", (int)len, p);
    return 0;
}

TEST(cli_p1_run_services_snd_cal_mon)
{
    char dir[64], rc[128], errfile[128], seed[64], text[8192];
    temp_rc(dir, rc);
    snprintf(errfile, sizeof errfile, "%s/run.err", dir);
    snprintf(seed, sizeof seed, "127.0.0.1:%d", free_port());
    res_t r;
    env_t env = {dir, rc, "1"};
    /* the node: its own seed; the commands: binds and seeds from the top */
    run_env(&r, &env, "setsecret", "run test secret", "setbinds", "127.0.0.1:*", "setseeds", seed,
            "profile", "seed", "nodeid", "seed1", "setbinds", seed, NULL);
    CHECK_INT(r.rc, 0);
    char *args[] = {"run", "-v", "profile", "seed", "services", "[\"echo\",\"exit\",\"count\"]", NULL};
    int out;
    pid_t pid = spawn(NULL, args, &env, &out, NULL, errfile);
    REQUIRE(pid > 0);
    char line[256];
    CHECK(read_line(out, line, sizeof line, 5000) > 0);
    CHECK_STR(line, "seed1");
    CHECK(read_line(out, line, sizeof line, 5000) > 0);
    CHECK_STR(line, seed);
    REQUIRE(file_waitfor(errfile, "service count: ", 5000));
    slurp(errfile, text, sizeof text);
    char echo[128], ex[128], count[128];
    REQUIRE(!service_port(text, "echo", echo, sizeof echo, 1));
    REQUIRE(!service_port(text, "exit", ex, sizeof ex, 1));
    REQUIRE(!service_port(text, "count", count, sizeof count, 1));
    CHECK(!strncmp(echo, "seed1#", 6));

    /* cal NODE time: the node port's answer */
    run_env(&r, &env, "cal", "seed1", "time", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.err, "");
    json_t *v = elements(r.out);
    CHECK(json_array_size(v) == 1 && json_is_real(json_array_get(v, 0)) &&
          json_real_value(json_array_get(v, 0)) > 1e9);
    CHECK_INT(lines(r.out), 1);
    json_decref(v);
    /* the echo service; every ARG one element, JSON when it looks so */
    run_env(&r, &env, "cal", echo, "ping", "42", "{\"a\":[1]}", "\"x y\"", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "\"ping\",\"42\",{\"a\":[1]},\"x y\"\n");
    CHECK_STR(r.err, "");
    /* snd as 2.02 prints it; count counts both */
    run_env(&r, &env, "snd", count, "one", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "message sent successfully \n");
    run_env(&r, &env, "snd", count, "[\"two\"]", NULL);
    CHECK_STR(r.out, "message sent successfully \n");
    run_env(&r, &env, "cal", count, "report", NULL);
    CHECK_INT(r.rc, 0);
    CHECK(!strncmp(r.out, "2,", 2));
    /* a port that is not there: snd and mon print the reason as 2.02 */
    run_env(&r, &env, "snd", "seed1#nope", "hi", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "no_such_port cannot monitor nonexistent port seed1#nope \n");
    /* cal: 2.02's callback gets nothing, an empty line, exit 0 */
    run_env(&r, &env, "cal", "seed1#nope", "hi", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "\n");
    CHECK_STR(r.err, "");
    run_env(&r, &env, "mon", "seed1#nope", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "no_such_port cannot monitor nonexistent port seed1#nope \n");

    /* mon prints the reason the exit service dies with (a cal's message
     * with its reply port); a new exit port comes */
    char *margs[] = {"mon", "-v", ex, NULL};
    int mout, merr;
    double t0 = now_ms();
    pid_t mpid = spawn(NULL, margs, &env, &mout, &merr, NULL);
    REQUIRE(mpid > 0);
    char mline[512];
    int up = 0;
    while (!up && read_line(merr, mline, sizeof mline, 5000) >= 0) up = strstr(mline, "link up: seed1") != NULL;
    CHECK(up);
    usleep(200000); /* its mon1 reaches the node before the snd */
    run_env(&r, &env, "cal", "-v", ex, "bye", "now", NULL);
    char want[256];
    snprintf(want, sizeof want, "aemp cal: no reply: %s died: [\"bye\",\"now\",\"aemp/", ex);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "\n");
    CHECK(strstr(r.err, want) != NULL);
    collect(&r, mpid, mout, merr, t0, 5000);
    CHECK_INT(r.rc, 0);
    static const char died[] = "bye now aemp/";
    CHECK(!strncmp(r.out, died, strlen(died)));
    CHECK_INT(lines(r.out), 1);
    CHECK(file_waitfor(errfile, "exit: ", 5000));
    char ex2[128];
    for (int i = 0; i < 100 && (slurp(errfile, text, sizeof text) < 0 ||
                                service_port(text, "exit", ex2, sizeof ex2, 2));
         i++)
        usleep(20000);
    CHECK(!service_port(text, "exit", ex2, sizeof ex2, 2) && strcmp(ex, ex2));

    /* a wrong secret in the command's profile: the chain is saved first */
    run_env(&r, &env, "profile", "aemp", "secret", "wrong", "cal", "seed1", "time", NULL);
    CHECK_FAILS(&r, 1, "cannot join the network: seed 127.0.0.1:");
    CHECK(strstr(r.err, "authentication failure/shared secret mismatch") != NULL);
    slurp(rc, text, sizeof text);
    CHECK(strstr(text, "\"aemp\" : {\n         \"secret\" : \"wrong\"") != NULL);
    run_env(&r, &env, "delprofile", "aemp", NULL);
    /* a node nobody knows: the seed is no global node, the attempt to
     * find it times out (2.02's connect_interval) */
    run_env(&r, &env, "cal", "other#x", "hi", NULL);
    CHECK_FAILS(&r, 1, "aemp cal: cannot reach node other: ");

    kill(pid, SIGTERM);
    CHECK_INT(wait_exit(pid, 5000), 0);
    close(out);
    kill_kids();
    const char *names[] = {"rc", "run.err", NULL};
    rm_dir(dir, names);
}

/* ------------------------------------------------------------------ */
/* errors                                                              */

TEST(cli_p1_network_errors)
{
    char dir[64], rc[128], text[4096], seed[64];
    temp_rc(dir, rc);
    env_t env = {dir, rc, "1"};
    res_t r;
    run_env(&r, &env, "setsecret", "s", "setbinds", "127.0.0.1:*", NULL);
    CHECK_INT(r.rc, 0);
    run_env(&r, &env, "cal", "seed1", "time", NULL);
    CHECK_FAILS(&r, 1, "aemp cal: no seeds configured");
    /* nobody there: at once, not after a timeout */
    snprintf(seed, sizeof seed, "127.0.0.1:%d", free_port());
    run_env(&r, &env, "setseeds", seed, "snd", "seed1#a", "x", NULL);
    CHECK_FAILS(&r, 1, "cannot join the network: seed ");
    CHECK(strstr(r.err, seed) && strstr(r.err, "Connection refused"));
    CHECK(r.ms < 3000);
    slurp(rc, text, sizeof text);
    CHECK(strstr(text, seed) != NULL);
    /* port ids */
    static const struct {
        const char *port, *why;
    } bad[] = {
        {"#x", "bad port '#x': no node id"},
        {"a#", "no port name after '#'"},
        {"a#b#c", "more than one '#'"},
        {"a;b#c", "cannot contain ';' or control characters"},
        {"", "no node id"},
        {"[1]", "PORT must be a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_env(&r, &env, "cal", bad[i].port, "x", NULL);
        CHECK_FAILS(&r, 2, bad[i].why);
    }
    run_env(&r, &env, "mon", NULL);
    CHECK_FAILS(&r, 2, "aemp mon: PORT missing");
    run_env(&r, &env, "mon", "a#b", "c", NULL);
    CHECK_FAILS(&r, 2, "mon takes PORT alone");
    /* run: its arguments and services */
    run_env(&r, &env, "run", "nodeid", NULL);
    CHECK_FAILS(&r, 2, "nodeid: a KEY without a VALUE");
    run_env(&r, &env, "run", "profile", "[1]", "binds", "[]", NULL);
    CHECK_FAILS(&r, 2, "the profile name must be a string");
    run_env(&r, &env, "run", "binds", "[]", "services", "[\"AnyEvent::MP::Global::\"]", NULL);
    CHECK_FAILS(&r, 1, "services: \"AnyEvent::MP::Global::\" is not a service of this node");
    /* the file's binds win over the arguments, unless force */
    run_env(&r, &env, "run", "force", "1", "binds", "[\"127.0.0.1:x:y\"]", NULL);
    CHECK_FAILS(&r, 1, "aemp run: bind '127.0.0.1:x:y': not a host:port");
    /* the help names them */
    run_env(&r, &env, "help", NULL);
    CHECK(strstr(r.out, "  cal [-v] PORT ARG...") != NULL);
    const char *names[] = {"rc", NULL};
    rm_dir(dir, names);
}

/* A network of C nodes only, run by the aemp command: seed "cseed" (its
 * own address among its seeds: a global node, as 2.02 makes it) and
 * "worker" with the echo service, joined through it. */
typedef struct cnet {
    char dir[64], rc[128], serr[128], werr[128], seed[64];
    env_t env;
    pid_t spid, wpid;
    int sout, wout;
} cnet_t;

/* Starts both; 0 when they are up. */
static int cnet_start(cnet_t *c, const char *sec)
{
    temp_rc(c->dir, c->rc);
    snprintf(c->serr, sizeof c->serr, "%s/seed.err", c->dir);
    snprintf(c->werr, sizeof c->werr, "%s/worker.err", c->dir);
    snprintf(c->seed, sizeof c->seed, "127.0.0.1:%d", free_port());
    c->env = (env_t){c->dir, c->rc, "1"};
    res_t r;
    /* (the file overrides run's arguments, as in 2.02: the seed's own
     * bind goes in its profile) */
    run_env(&r, &c->env, "setsecret", sec, "setseeds", c->seed, "setbinds", "127.0.0.1:*",
            "profile", "cseed", "nodeid", "cseed", "setbinds", c->seed, NULL);
    char *sargs[] = {"run", "-v", "profile", "cseed", NULL};
    char *wargs[] = {"run", "-v", "nodeid", "worker", "services", "[\"echo\"]", NULL};
    if (r.rc || (c->spid = spawn(NULL, sargs, &c->env, &c->sout, NULL, c->serr)) <= 0 ||
        !file_waitfor(c->serr, "starting global service.", 5000) ||
        (c->wpid = spawn(NULL, wargs, &c->env, &c->wout, NULL, c->werr)) <= 0)
        return -1;
    return file_waitfor(c->werr, "service echo: ", 5000) ? 0 : -1;
}

/* Both end on SIGTERM with status 0. */
static void cnet_stop(cnet_t *c)
{
    kill(c->wpid, SIGTERM);
    CHECK_INT(wait_exit(c->wpid, 5000), 0);
    kill(c->spid, SIGTERM);
    CHECK_INT(wait_exit(c->spid, 5000), 0);
    close(c->sout);
    close(c->wout);
    kill_kids();
    const char *names[] = {"rc", "seed.err", "worker.err", NULL};
    rm_dir(c->dir, names);
}

/* A network of C nodes only: `run` with its own address among its seeds
 * is a seed (a global node, as 2.02 makes it); a worker joins through it;
 * `cal WORKER time` and a call of the worker's echo service from a third
 * node find the worker through the C seed (g_find) and reach it
 * directly. */
TEST(cli_p1_c_seed_network)
{
    cnet_t c;
    char text[8192];
    REQUIRE(!cnet_start(&c, "c network secret"));
    res_t r;
    env_t env = c.env;
    slurp(c.werr, text, sizeof text);
    char echo[128];
    REQUIRE(!service_port(text, "echo", echo, sizeof echo, 1));
    CHECK(!strncmp(echo, "worker#", 7));

    run_env(&r, &env, "cal", "worker", "time", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.err, "");
    json_t *v = elements(r.out);
    CHECK(json_array_size(v) == 1 && json_is_real(json_array_get(v, 0)));
    json_decref(v);
    run_env(&r, &env, "cal", echo, "via", "the C seed", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "\"via\",\"the C seed\"\n");
    /* a node the seed does not know: at once, the seed's answer */
    run_env(&r, &env, "cal", "nobody", "time", NULL);
    CHECK_FAILS(&r, 1, "aemp cal: cannot reach node nobody: no known address");
    cnet_stop(&c);
}

/* Two seeds, both closed: the command ends at once, with the last one. */
TEST(cli_p1_every_seed_fails)
{
    char dir[64], rc[128], seeds[80];
    temp_rc(dir, rc);
    env_t env = {dir, rc, "1"};
    int p1 = free_port(), p2 = free_port();
    snprintf(seeds, sizeof seeds, "127.0.0.1:%d,127.0.0.1:%d", p1, p2);
    res_t r;
    run_env(&r, &env, "setsecret", "s", "setseeds", seeds, "cal", "seed1#a", "x", NULL);
    CHECK_FAILS(&r, 1, "aemp cal: cannot join the network: no seed reachable (last: 127.0.0.1:");
    CHECK(strstr(r.err, "Connection refused)") != NULL);
    CHECK(r.ms < 3000);
    const char *names[] = {"rc", NULL};
    rm_dir(dir, names);
}

/* 2.02's eval-based verbs against C nodes (issue 23): a C seed and a C
 * worker answer up_nodes for real, so trace walks them; other
 * expressions get the node's "runs no Perl" error, which eval and
 * restart print on stderr with Perl's die status, and shell on stdout. */
TEST(cli_p1_eval_trace_restart_shell_on_c_nodes)
{
    cnet_t c;
    REQUIRE(!cnet_start(&c, "toolbox secret"));
    res_t r;
    env_t env = c.env;

    /* what 2.02's trace asks, asked by hand */
    run_env(&r, &env, "eval", "worker", "AnyEvent::MP::Kernel::up_nodes", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.err, "");
    CHECK(strstr(r.out, "\"cseed\"") && strstr(r.out, "\"aemp/") && r.out[0] == '"');
    CHECK_INT(lines(r.out), 1);
    /* Perl code: the node's error, as 2.02's tool dies with "$err @res"
     * (Perl adds " at SCRIPT line N." where we end the line) */
    run_env(&r, &env, "eval", "cseed", "1", "+", "2", NULL);
    CHECK_INT(r.rc, 255);
    CHECK_STR(r.out, "");
    CHECK_STR(r.err, "cseed runs no Perl (a libaemp C node): it cannot evaluate \"1 + 2\"\n \n");
    CHECK(r.ms < 3000);
    /* a bare up_nodes is no kernel function in 2.02's package main */
    run_env(&r, &env, "eval", "cseed", "up_nodes", NULL);
    CHECK_INT(r.rc, 255);
    CHECK(strstr(r.err, "cannot evaluate \"up_nodes\"") != NULL);
    run_env(&r, &env, "eval", "worker", "$AnyEvent::MP::Kernel::NODE", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "\"worker\"\n");
    /* restart sends 2.02's expression; a C node refuses it */
    run_env(&r, &env, "restart", "worker", NULL);
    CHECK_INT(r.rc, 255);
    CHECK_STR(r.out, "");
    CHECK(!strncmp(r.err, "worker runs no Perl (a libaemp C node) and no AnyEvent::Watchdog", 64));
    /* the walk: each node once, this command's own node left out */
    run_env(&r, &env, "trace", "cseed", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.err, "");
    CHECK_STR(r.out, "cseed -> worker\nworker -> cseed\n");
    CHECK(r.ms < 5000);
    /* shell: 2.02's banner, prompt and answer blocks; "=NODE" switches */
    const char *bin = getenv("AEMP_BIN");
    REQUIRE(bin);
    char script[512];
    snprintf(script, sizeof script,
             "printf '=cseed\\nAnyEvent::MP::Kernel::NODE\\n1+1\\n' | '%s' shell worker", bin);
    char *shargs[] = {"-c", script, NULL};
    run_full(&r, "/bin/sh", &env, 10000, shargs);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.err, "");
    static const char banner[] =
        "Entering interactive shell - no commandline editing of course (use rlfe etc.).\n\n"
        "=           display a list of nodes\n"
        "=name       switch to another node\n\n"
        "worker> cseed> cseed> cseed> \n  cseed: AnyEvent::MP::Kernel::NODE\n  [\"\",\"cseed\"]\n  0.";
    CHECK(!strncmp(r.out, banner, strlen(banner)));
    CHECK(strstr(r.out, "s\ncseed> \n  cseed: 1+1\n  cseed runs no Perl (a libaemp C node): it cannot "
                        "evaluate \"1+1\"\n \n  0.") != NULL);
    CHECK(lines(r.out) == 14 && !strcmp(r.out + strlen(r.out) - 9, "s\ncseed> "));
    /* "=": the nodes this command's node is linked to */
    snprintf(script, sizeof script, "printf '=\\n' | '%s' shell worker", bin);
    run_full(&r, "/bin/sh", &env, 10000, shargs);
    CHECK_INT(r.rc, 0);
    CHECK(strstr(r.out, "worker> worker> ") && strstr(r.out, "cseed"));
    run_env(&r, &env, "shell", "worker", "extra", NULL);
    CHECK_FAILS(&r, 2, "shell takes NODE alone");
    /* the help names them */
    run_env(&r, &env, "help", NULL);
    CHECK(strstr(r.out, "  trace [-v] NODE") && strstr(r.out, "  eval [-v] NODE EXPR..."));
    cnet_stop(&c);
}

/* trace's request on the wire, against a scripted seed that answers as a
 * Perl 2.02 node would: ["","eval","AnyEvent::MP::Kernel::up_nodes",REPLY,
 * NODE], answered [REPLY,NODE,"",NODEID...]; the command's own node is
 * left out of the line and not asked. */
TEST(cli_p1_trace_request_as_2_02)
{
    char dir[64], rc[128], why[256];
    temp_rc(dir, rc);
    fake_t f;
    REQUIRE(fake_listen(&f) >= 0);
    write_rc(rc, "trace secret", f.ep);
    env_t env = {dir, rc, "1"};
    char *args[] = {"trace", "seed1", NULL};
    int out, err;
    double t0 = now_ms();
    pid_t pid = spawn(NULL, args, &env, &out, &err, NULL);
    REQUIRE(pid > 0);
    CHECK(fake_accept(&f, "seed1", "trace secret", why, sizeof why));
    json_t *v;
    while ((v = fake_msg(&f, 5000)) && is_global_request(v)) json_decref(v);
    REQUIRE(v);
    CHECK_INT(json_array_size(v), 5);
    CHECK_STR(json_string_value(json_array_get(v, 0)), "");
    CHECK_STR(json_string_value(json_array_get(v, 1)), "eval");
    CHECK_STR(json_string_value(json_array_get(v, 2)), "AnyEvent::MP::Kernel::up_nodes");
    CHECK_STR(json_string_value(json_array_get(v, 4)), "seed1");
    const char *reply = json_string_value(json_array_get(v, 3));
    REQUIRE(reply && strchr(reply, '#'));
    CHECK(!strncmp(reply, f.peer_id, strlen(f.peer_id)));
    char answer[512];
    snprintf(answer, sizeof answer, "[\"%s\",\"seed1\",\"\",\"%s\"]", strchr(reply, '#') + 1,
             f.peer_id);
    fake_write(&f, answer, strlen(answer));
    json_decref(v);
    res_t r;
    collect(&r, pid, out, err, t0, 8000);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.err, "");
    CHECK_STR(r.out, "seed1 ->\n");
    fake_close(&f);
    kill_kids();
    const char *names[] = {"rc", NULL};
    rm_dir(dir, names);
}
