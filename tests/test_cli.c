/*
 * test_cli.c - the aemp command driven as a user drives it: every
 * subcommand run as a child process (t_aemp_bin()) with its stdout and
 * stderr on pipes, against nodes started with `aemp run --bind
 * 127.0.0.1:0` and temporary secret files. Message argument conversion
 * is checked end to end through the echo service, which returns what it
 * was given. Every wait has a deadline and every child is killed at the
 * end of its test, so no test can hang.
 */
#include "test.h"
#include "aemp.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "harness_cli.h"

typedef struct node {
    pid_t pid;
    int out;
    char noderef[256];
    char errfile[64]; /* its stderr */
} node_t;

/* Starts `aemp run --bind 127.0.0.1:0 --secret-file SECRET EXTRA...`
 * and reads its noderef. Returns 0 or -1. */
static int node_start(node_t *nd, const char *secret, ...)
{
    char *args[HC_MAX_ARGS + 1];
    int n = 0;
    args[n++] = "run";
    args[n++] = "--bind";
    args[n++] = "127.0.0.1:0";
    args[n++] = "--secret-file";
    args[n++] = (char *)secret;
    va_list ap;
    va_start(ap, secret);
    for (char *a; n < HC_MAX_ARGS && (a = va_arg(ap, char *)) != NULL;) args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    memset(nd, 0, sizeof *nd);
    temp_file(nd->errfile, NULL);
    nd->pid = spawn(NULL, args, NULL, &nd->out, NULL, nd->errfile);
    if (nd->pid < 0) return -1;
    if (read_line(nd->out, nd->noderef, sizeof nd->noderef, 5000) <= 0) {
        t_fail(__FILE__, __LINE__, "aemp run printed no noderef");
        return -1;
    }
    return 0;
}

/* SIGTERM (or sig), then the exit status (-1: had to be killed). */
static int node_stop(node_t *nd, int sig)
{
    if (nd->pid <= 0) return -1;
    kill(nd->pid, sig);
    int rc = wait_exit(nd->pid, 5000);
    nd->pid = 0;
    close(nd->out);
    return rc;
}

static void node_cleanup(node_t *nd)
{
    if (nd->pid > 0) node_stop(nd, SIGKILL);
    if (nd->errfile[0]) unlink(nd->errfile);
}

/* The port id registered under name on the node, or "" (buf). */
static const char *lookup(const node_t *nd, const char *secret, const char *name, char *buf,
                          size_t n)
{
    res_t r;
    run(&r, "cal", "--secret-file", secret, nd->noderef, "lookup", name, NULL);
    buf[0] = 0;
    if (r.rc == 0 && !strncmp(r.out, "[\"", 2)) {
        char *end = strchr(r.out + 2, '"');
        if (end) snprintf(buf, n, "%.*s", (int)(end - r.out - 2), r.out + 2);
    } else {
        t_fail(__FILE__, __LINE__, "lookup %s failed: %d %s%s", name, r.rc, r.out, r.err);
    }
    return buf;
}

/* A loopback port where nobody listens. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sl) || getsockname(fd, (struct sockaddr *)&sa, &sl))
        abort();
    close(fd);
    return ntohs(sa.sin_port);
}

static const char secret_a[] = "test secret A\n";
static const char secret_b[] = "test secret B\n";

/* ------------------------------------------------------------------ */
/* command line                                                        */

TEST(cli_help)
{
    res_t r;
    run(&r, "help", NULL);
    CHECK_INT(r.rc, 0);
    const char *cmds[] = {"run", "snd", "cal", "mon", "ping", "gensecret", "gencert", "md6sum"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char want[32];
        snprintf(want, sizeof want, "aemp %s ", cmds[i]);
        if (!strstr(r.out, want)) t_fail(__FILE__, __LINE__, "help lacks '%s'", want);
    }
    const char *own[] = {"run", "snd", "cal", "mon", "ping", "gensecret", "gencert"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        char want[32];
        snprintf(want, sizeof want, "usage: aemp %s ", own[i]);
        run(&r, own[i], "--help", NULL);
        CHECK_INT(r.rc, 0);
        CHECK(!strncmp(r.out, want, strlen(want)));
        CHECK_STR(r.err, "");
    }
    run(&r, "help", "cal", NULL);
    CHECK_INT(r.rc, 0);
    CHECK(strstr(r.out, "usage: aemp cal ") != NULL);
    CHECK(strstr(r.out, "--timeout") != NULL);
    run(&r, "--version", NULL);
    CHECK_INT(r.rc, 0);
    CHECK(!strncmp(r.out, "aemp ", 5));
    run(&r, NULL);
    CHECK(r.rc != 0);
    CHECK(strstr(r.err, "usage: aemp") != NULL);
}

TEST(cli_usage_errors)
{
    res_t r;
    run(&r, "frob", NULL);
    CHECK_FAILS(&r, 2, "unknown command 'frob'");
    run(&r, "help", "frob", NULL);
    CHECK_FAILS(&r, 2, "unknown command 'frob'");
    run(&r, "cal", "--frob", "127.0.0.1:9", NULL);
    CHECK_FAILS(&r, 2, "unknown option '--frob'");
    run(&r, "snd", "-x", "127.0.0.1:9", NULL);
    CHECK_FAILS(&r, 2, "unknown option '-x'");
    run(&r, "cal", "--timeout", NULL);
    CHECK_FAILS(&r, 2, "needs a value");
    run(&r, "cal", "--timeout", "soon", "127.0.0.1:9", NULL);
    CHECK_FAILS(&r, 2, "not a number of seconds");
    run(&r, "ping", "--connect-timeout", "-1", "127.0.0.1:9", NULL);
    CHECK_FAILS(&r, 2, "not a number of seconds");
    run(&r, "snd", NULL);
    CHECK_FAILS(&r, 2, "missing PORT");
    run(&r, "cal", NULL);
    CHECK_FAILS(&r, 2, "missing PORT");
    run(&r, "mon", NULL);
    CHECK_FAILS(&r, 2, "missing PORT");
    run(&r, "mon", "127.0.0.1:9#a", "extra", NULL);
    CHECK_FAILS(&r, 2, "unexpected argument 'extra'");
    run(&r, "ping", NULL);
    CHECK_FAILS(&r, 2, "missing NODEREF");
    run(&r, "ping", "127.0.0.1:9#a", NULL);
    CHECK_FAILS(&r, 2, "port id");
    run(&r, "ping", "127.0.0.1:9", "extra", NULL);
    CHECK_FAILS(&r, 2, "unexpected argument");
    run(&r, "cal", "#a", NULL);
    CHECK_FAILS(&r, 1, "not a port id");
    run(&r, "run", "--service", "nope", NULL);
    CHECK_FAILS(&r, 2, "unknown service 'nope'");
    run(&r, "run", "--timeout", "x", NULL);
    CHECK_FAILS(&r, 2, "not a number of seconds");
    run(&r, "run", "--slave", "s", NULL);
    CHECK_FAILS(&r, 2, "needs at least one --master");
    run(&r, "run", "--master", "127.0.0.1:9", NULL);
    CHECK_FAILS(&r, 2, "only for a slave");
    run(&r, "run", "extra", NULL);
    CHECK_FAILS(&r, 2, "unexpected argument 'extra'");
    run(&r, "run", "--bogus", NULL);
    CHECK_FAILS(&r, 2, "unknown option '--bogus'");
    run(&r, "gensecret", "a", "b", NULL);
    CHECK_FAILS(&r, 2, "unexpected argument 'b'");
    run(&r, "gencert", "--bogus", NULL);
    CHECK_FAILS(&r, 2, "unknown option '--bogus'");
    /* a missing secret file is named with the reason */
    run(&r, "ping", "--secret-file", "/nonexistent/secret", "127.0.0.1:9", NULL);
    CHECK_FAILS(&r, 1, "/nonexistent/secret: cannot read the secret: No such file");
    run(&r, "run", "--secret-file", "/nonexistent/secret", NULL);
    CHECK_FAILS(&r, 1, "/nonexistent/secret: cannot read the secret");
    /* an address that cannot be resolved (no DNS: a port that is not one) */
    run(&r, "ping", "127.0.0.1:notaport", NULL);
    CHECK_FAILS(&r, 1, "cannot resolve");
    run(&r, "snd", "127.0.0.1:notaport#x", NULL);
    CHECK_FAILS(&r, 1, "cannot resolve");
}

/* JSON arguments that do not parse are refused before any connection:
 * the port named here does not exist. */
TEST(cli_args_errors)
{
    res_t r;
    run(&r, "cal", "127.0.0.1:9#x", "[1,", NULL);
    CHECK_FAILS(&r, 2, "argument '[1,' is not valid JSON");
    run(&r, "snd", "127.0.0.1:9#x", "a", "{bad", NULL);
    CHECK_FAILS(&r, 2, "argument '{bad' is not valid JSON");
    run(&r, "snd", "127.0.0.1:9#x", "\"open", NULL);
    CHECK_FAILS(&r, 2, "is not valid JSON");
    run(&r, "snd", "127.0.0.1:9#x", "a", "[1,2", NULL);
    CHECK_FAILS(&r, 2, "is not valid JSON");
    run(&r, "cal", "127.0.0.1:9#x", "[1]", "more", NULL);
    CHECK_FAILS(&r, 2, "put 'more' inside it");
    run(&r, "snd", "127.0.0.1:9#x", "\xff\xfe", NULL);
    CHECK_FAILS(&r, 2, "not valid UTF-8");
    run(&r, "snd", "127.0.0.1:9#x", "[\"\xff\"]", NULL);
    CHECK_FAILS(&r, 2, "is not valid JSON");
    /* a word with control bytes is shown on one line, escaped */
    run(&r, "snd", "127.0.0.1:9#x", "[1,\n\x1b[2J", NULL);
    CHECK_FAILS(&r, 2, "argument '[1,\\x0a\\x1b[2J' is not valid JSON");
    run(&r, "snd", "127.0.0.1:9#x", "[\"0123456789012345678901234567890123456789", NULL);
    CHECK_FAILS(&r, 2, "argument '[\"0123456789012345678901234567890123...' is not valid JSON");
}

/* ------------------------------------------------------------------ */
/* secrets                                                             */

static size_t read_file(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t len = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[len] = 0;
    return len;
}

static int file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (int)(st.st_mode & 07777);
}

TEST(cli_gensecret)
{
    char dir[64], path[128], first[256], again[256];
    temp_dir(dir);
    snprintf(path, sizeof path, "%s/.aemp-secret", dir);
    env_t env = {.home = dir};
    res_t r;
    run_env(&r, &env, "gensecret", NULL);
    CHECK_INT(r.rc, 0);
    CHECK(strstr(r.out, path) != NULL);
    CHECK_INT(read_file(path, first, sizeof first), 65);
    CHECK_INT(file_mode(path), 0600);
    CHECK_INT(strspn(first, "0123456789abcdef"), 64);
    CHECK(first[64] == '\n');
    /* never overwritten by accident */
    run_env(&r, &env, "gensecret", NULL);
    CHECK_FAILS(&r, 1, "exists; use --force");
    read_file(path, again, sizeof again);
    CHECK_STR(again, first);
    run_env(&r, &env, "gensecret", "--force", NULL);
    CHECK_INT(r.rc, 0);
    read_file(path, again, sizeof again);
    CHECK(strcmp(again, first) != 0);
    CHECK_INT(strlen(again), 65);
    CHECK_INT(file_mode(path), 0600);
    /* an explicit file */
    char other[128];
    snprintf(other, sizeof other, "%s/other", dir);
    run(&r, "gensecret", other, NULL);
    CHECK_INT(r.rc, 0);
    CHECK_INT(file_mode(other), 0600);
    CHECK_INT(read_file(other, again, sizeof again), 65);
    /* failures */
    run(&r, "gensecret", "/nonexistent/dir/secret", NULL);
    CHECK_FAILS(&r, 1, "/nonexistent/dir/secret");
    env_t nohome = {.home = ""};
    run_env(&r, &nohome, "gensecret", NULL);
    CHECK_FAILS(&r, 2, "HOME");
    const char *names[] = {".aemp-secret", "other", NULL};
    rm_dir(dir, names);
}

TEST(cli_gencert)
{
    char dir[64], path[128];
    temp_dir(dir);
    snprintf(path, sizeof path, "%s/tls-secret", dir);
    res_t r;
    run(&r, "gencert", path, NULL);
    CHECK_INT(r.rc, 0);
    CHECK_INT(file_mode(path), 0600);
    static char pem[16384];
    size_t len = read_file(path, pem, sizeof pem);
    REQUIRE(len > 0);
    /* the layout of vectors/tls/aemp-secret.pem: PKCS#1 key, then cert */
    const char *k0 = "-----BEGIN RSA PRIVATE KEY-----\n";
    const char *mid = "-----END RSA PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\n";
    const char *c1 = "-----END CERTIFICATE-----\n";
    CHECK(!strncmp(pem, k0, strlen(k0)));
    CHECK(strstr(pem, mid) != NULL);
    CHECK(len > strlen(c1) && !strcmp(pem + len - strlen(c1), c1));

    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    REQUIRE(key && x);
    CHECK_INT(EVP_PKEY_get_base_id(key), EVP_PKEY_RSA);
    CHECK_INT(EVP_PKEY_get_bits(key), 2048);
    CHECK_INT(X509_check_private_key(x, key), 1);
    CHECK_INT(X509_verify(x, key), 1); /* self-signed */
    CHECK_INT(X509_check_ca(x), 1);
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    CHECK_STR(cn, "aemp node");
    CHECK_INT(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    int days = 0, secs = 0;
    CHECK(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)));
    CHECK(days > 365 * 50);
    CHECK(X509_cmp_current_time(X509_get0_notBefore(x)) < 0);
    X509_free(x);
    EVP_PKEY_free(key);
    BIO_free(bio);

    /* nodes sharing the file talk TLS (tls.c); a wrong one is refused */
    node_t nd;
    REQUIRE(node_start(&nd, path, NULL) == 0);
    run(&r, "ping", "--secret-file", path, nd.noderef, NULL);
    CHECK_INT(r.rc, 0);
    CHECK(strstr(r.out, "provider aemp-C-") != NULL);
    run(&r, "ping", "--secret-file", t_shared_path("vectors/tls/aemp-secret.pem"), nd.noderef,
        NULL);
    CHECK_FAILS(&r, 1, "cannot connect to");
    CHECK_INT(node_stop(&nd, SIGTERM), 0);
    node_cleanup(&nd);
    kill_kids();

    /* a key that does not parse: the node cannot start, one line */
    char bad[128];
    snprintf(bad, sizeof bad, "%s/bad-secret", dir);
    FILE *f = fopen(bad, "w");
    REQUIRE(f);
    fputs("-----BEGIN RSA PRIVATE KEY-----\ngarbage\n-----END RSA PRIVATE KEY-----\n"
          "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    run(&r, "run", "--bind", "127.0.0.1:0", "--secret-file", bad, NULL);
    CHECK_FAILS(&r, 1, "cannot create the node: ");
    run(&r, "ping", "--secret-file", bad, "127.0.0.1:9", NULL);
    CHECK_FAILS(&r, 1, "cannot create the node: ");

    run(&r, "gencert", path, NULL);
    CHECK_FAILS(&r, 1, "exists; use --force");
    run(&r, "gencert", "--force", path, NULL);
    CHECK_INT(r.rc, 0);
    static char pem2[16384];
    read_file(path, pem2, sizeof pem2);
    CHECK(strcmp(pem, pem2) != 0);
    const char *names[] = {"tls-secret", "bad-secret", NULL};
    rm_dir(dir, names);
}

/* ------------------------------------------------------------------ */
/* aemp run                                                            */

TEST(cli_run_lifecycle)
{
    char secret[64];
    temp_file(secret, secret_a);
    node_t nd;
    REQUIRE(node_start(&nd, secret, "-v", NULL) == 0);
    /* the real port of --bind 127.0.0.1:0 */
    CHECK(!strncmp(nd.noderef, "127.0.0.1:", 10));
    CHECK(atoi(nd.noderef + 10) > 0);
    CHECK(file_waitfor(nd.errfile, "service echo: ", 2000));
    CHECK(file_waitfor(nd.errfile, "service exit: ", 2000));
    CHECK(file_waitfor(nd.errfile, "service count: ", 2000));
    /* -v: link events with a timestamp, as a client comes and goes */
    res_t r;
    run(&r, "ping", "--secret-file", secret, nd.noderef, NULL);
    CHECK_INT(r.rc, 0);
    CHECK(file_waitfor(nd.errfile, "link up: 127.0.0.1:", 2000));
    CHECK(file_waitfor(nd.errfile, "link down: 127.0.0.1:", 2000));
    static char logtext[65536];
    read_file(nd.errfile, logtext, sizeof logtext);
    /* "YYYY-MM-DD HH:MM:SS.mmm aemp run: " */
    CHECK(strlen(logtext) > 24 && logtext[4] == '-' && logtext[10] == ' ' && logtext[19] == '.');
    CHECK(strstr(logtext, " aemp run: ") != NULL);
    CHECK_INT(node_stop(&nd, SIGTERM), 0);
    node_cleanup(&nd);

    /* SIGINT is a clean shutdown too; only the chosen services run */
    REQUIRE(node_start(&nd, secret, "--service", "echo", NULL) == 0);
    char port[256];
    lookup(&nd, secret, "echo", port, sizeof port);
    CHECK(!strncmp(port, nd.noderef, strlen(nd.noderef)));
    run(&r, "cal", "--secret-file", secret, nd.noderef, "lookup", "count", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "[null]\n");
    CHECK_INT(node_stop(&nd, SIGINT), 0);
    node_cleanup(&nd);

    /* an address in use: one line, status 1 */
    int busy = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    REQUIRE(busy >= 0 && !bind(busy, (struct sockaddr *)&sa, sl) && !listen(busy, 1) &&
            !getsockname(busy, (struct sockaddr *)&sa, &sl));
    char bind_to[64];
    snprintf(bind_to, sizeof bind_to, "127.0.0.1:%d", ntohs(sa.sin_port));
    run(&r, "run", "--bind", bind_to, "--secret-file", secret, NULL);
    CHECK_FAILS(&r, 1, "cannot listen");
    /* a client node that cannot listen where it is told to */
    run(&r, "ping", "--bind", bind_to, "--secret-file", secret, "127.0.0.1:9", NULL);
    CHECK_FAILS(&r, 1, "cannot start the node: ");
    close(busy);
    unlink(secret);
    kill_kids();
}

TEST(cli_run_slave)
{
    char secret[64];
    temp_file(secret, secret_a);
    node_t master, slave;
    REQUIRE(node_start(&master, secret, "-v", NULL) == 0);
    char *args[] = {"run", "--slave", "s1", "--master", master.noderef, "--secret-file", secret,
                    NULL};
    memset(&slave, 0, sizeof slave);
    temp_file(slave.errfile, NULL);
    slave.pid = spawn(NULL, args, NULL, &slave.out, NULL, slave.errfile);
    REQUIRE(slave.pid > 0);
    CHECK(read_line(slave.out, slave.noderef, sizeof slave.noderef, 5000) > 0);
    CHECK_STR(slave.noderef, "slave/s1");
    CHECK(file_waitfor(master.errfile, "link up: slave/s1", 5000));
    CHECK_INT(node_stop(&slave, SIGTERM), 0);
    CHECK(file_waitfor(master.errfile, "link down: slave/s1", 5000));
    CHECK_INT(node_stop(&master, SIGTERM), 0);
    node_cleanup(&slave);
    node_cleanup(&master);
    unlink(secret);
    kill_kids();
}

/* ------------------------------------------------------------------ */
/* client commands                                                     */

TEST(cli_ping)
{
    char secret[64];
    temp_file(secret, secret_a);
    node_t nd;
    REQUIRE(node_start(&nd, secret, NULL) == 0);
    res_t r;
    run(&r, "ping", "--secret-file", secret, nd.noderef, NULL);
    CHECK_INT(r.rc, 0);
    char want[300];
    snprintf(want, sizeof want, "%s: provider aemp-C-" AEMP_VERSION ", round trip ", nd.noderef);
    CHECK(!strncmp(r.out, want, strlen(want)));
    CHECK_INT(lines(r.out), 1);
    CHECK_STR(r.err, "");
    /* a host name is resolved first */
    char byname[64];
    snprintf(byname, sizeof byname, "localhost:%s", strchr(nd.noderef, ':') + 1);
    run(&r, "ping", "--secret-file", secret, byname, NULL);
    CHECK_INT(r.rc, 0);
    CHECK(strstr(r.out, "provider aemp-C-") != NULL);
    /* -v logs the link */
    run(&r, "ping", "-v", "--secret-file", secret, nd.noderef, NULL);
    CHECK_INT(r.rc, 0);
    CHECK(strstr(r.err, "aemp ping: link up: ") != NULL);
    CHECK_INT(node_stop(&nd, SIGTERM), 0);
    node_cleanup(&nd);
    unlink(secret);
    kill_kids();
}

/* Arguments become message elements as in the Perl utility; the echo
 * service sends them back. */
TEST(cli_cal_echo_args)
{
    char secret[64], echo[256];
    temp_file(secret, secret_a);
    node_t nd;
    REQUIRE(node_start(&nd, secret, NULL) == 0);
    lookup(&nd, secret, "echo", echo, sizeof echo);
    REQUIRE(echo[0]);
    res_t r;
    run(&r, "cal", "--secret-file", secret, echo, "a", "1", "\"x\"", "[1,2]", "{\"k\":null}",
        "\xc3\xbc", "-5", "", "true", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "[\"a\",\"1\",\"x\",[1,2],{\"k\":null},\"\xc3\xbc\",\"-5\",\"\",\"true\"]\n");
    CHECK_STR(r.err, "");
    /* a first argument starting with '[' is the whole message */
    run(&r, "cal", "--secret-file", secret, echo, "[1, true, null, 1.5, \"s\", {}]", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "[1,true,null,1.5,\"s\",{}]\n");
    /* numbers beyond int64 and escapes survive the round trip */
    run(&r, "cal", "--secret-file", secret, echo,
        "[18446744073709551615,-9223372036854775807,\"a\\\"b\\n\\u0001\"]", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "[18446744073709551615,-9223372036854775807,\"a\\\"b\\n\\u0001\"]\n");
    /* no arguments: the reply port alone, an empty answer */
    run(&r, "cal", "--secret-file", secret, echo, NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "[]\n");
    /* the node port: a bare noderef */
    run(&r, "cal", "--secret-file", secret, nd.noderef, "lookup", "nosuchname", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "[null]\n");
    run(&r, "cal", "--secret-file", secret, nd.noderef, "time", NULL);
    CHECK_INT(r.rc, 0);
    CHECK(r.out[0] == '[' && atof(r.out + 1) > 1e9);
    /* the node part of a port id is resolved too */
    char byname[300];
    snprintf(byname, sizeof byname, "localhost:%s", strchr(echo, ':') + 1);
    run(&r, "cal", "--secret-file", secret, byname, "hi", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "[\"hi\"]\n");
    CHECK_INT(node_stop(&nd, SIGTERM), 0);
    node_cleanup(&nd);
    unlink(secret);
    kill_kids();
}

TEST(cli_cal_failures)
{
    char secret[64], count[256], exitp[256], port[300];
    temp_file(secret, secret_a);
    node_t nd;
    REQUIRE(node_start(&nd, secret, NULL) == 0);
    lookup(&nd, secret, "count", count, sizeof count);
    lookup(&nd, secret, "exit", exitp, sizeof exitp);
    res_t r;
    /* a port that never answers: the timeout */
    run(&r, "cal", "--timeout", "0.3", "--secret-file", secret, count, "x", NULL);
    CHECK_FAILS(&r, 1, "no reply from");
    CHECK(r.ms < 3000);
    /* a port that does not exist: the monitor says so at once */
    snprintf(port, sizeof port, "%s#nosuchport", nd.noderef);
    run(&r, "cal", "--secret-file", secret, port, "x", NULL);
    CHECK_FAILS(&r, 1, "no_such_port");
    CHECK(r.ms < 3000);
    /* a port that dies instead of answering */
    run(&r, "cal", "--secret-file", secret, exitp, "oops", NULL);
    CHECK_FAILS(&r, 1, "died before replying: [\"oops\",");
    CHECK_INT(node_stop(&nd, SIGTERM), 0);
    node_cleanup(&nd);
    unlink(secret);
    kill_kids();
}

TEST(cli_snd_count)
{
    char secret[64], count[256];
    temp_file(secret, secret_a);
    node_t nd;
    REQUIRE(node_start(&nd, secret, NULL) == 0);
    lookup(&nd, secret, "count", count, sizeof count);
    res_t r;
    for (int i = 0; i < 3; i++) {
        run(&r, "snd", "--secret-file", secret, count, "hello", "[1,2]", NULL);
        CHECK_INT(r.rc, 0);
        CHECK_STR(r.out, "");
        CHECK_STR(r.err, "");
    }
    run(&r, "snd", "--secret-file", secret, count, NULL);
    CHECK_INT(r.rc, 0);
    /* the node port ignores devnull */
    run(&r, "snd", "--secret-file", secret, nd.noderef, "devnull", NULL);
    CHECK_INT(r.rc, 0);
    run(&r, "cal", "--secret-file", secret, count, "report", NULL);
    CHECK_INT(r.rc, 0);
    CHECK(!strncmp(r.out, "[4,", 3));
    double secs = atof(r.out + 3);
    CHECK(secs > 0 && secs < 30);
    CHECK_INT(node_stop(&nd, SIGTERM), 0);
    node_cleanup(&nd);
    unlink(secret);
    kill_kids();
}

TEST(cli_flood_count)
{
    char secret[64], count[256];
    temp_file(secret, secret_a);
    node_t nd;
    REQUIRE(node_start(&nd, secret, NULL) == 0);
    lookup(&nd, secret, "count", count, sizeof count);
    res_t r;
    run(&r, "flood", "--secret-file", secret, count, NULL);
    CHECK_INT(r.rc, 2);
    run(&r, "flood", "--secret-file", secret, count, "-5", "tick", NULL);
    CHECK_INT(r.rc, 2);
    /* more than the flood's high mark, so it has to hold back */
    run(&r, "flood", "--secret-file", secret, count, "100000", "tick", "[1,2]", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "");
    CHECK_STR(r.err, "");
    run(&r, "flood", "--secret-file", secret, count, "0", NULL);
    CHECK_INT(r.rc, 0);
    /* written is not yet counted: ask until all have arrived, and see
     * that each arrived exactly once */
    long got = -1;
    for (int i = 0; i < 50 && got != 100000; i++) {
        run(&r, "cal", "--secret-file", secret, count, "report", NULL);
        CHECK_INT(r.rc, 0);
        got = r.out[0] == '[' ? atol(r.out + 1) : -1;
        if (got != 100000) usleep(100000);
    }
    CHECK_INT(got, 100000);
    CHECK_INT(node_stop(&nd, SIGTERM), 0);
    node_cleanup(&nd);
    unlink(secret);
    kill_kids();
}

/* Starts `aemp mon -v PORT` and waits until its link is up. */
static pid_t start_mon(const char *secret, const char *port, int *out, int *err)
{
    char *args[] = {"mon", "-v", "--secret-file", (char *)secret, (char *)port, NULL};
    pid_t pid = spawn(NULL, args, NULL, out, err, NULL);
    char line[512];
    while (pid > 0 && read_line(*err, line, sizeof line, 5000) >= 0)
        if (strstr(line, "link up: ")) {
            /* mon1 went out with the link; give the node a moment */
            usleep(100000);
            return pid;
        }
    t_fail(__FILE__, __LINE__, "aemp mon did not connect");
    return pid;
}

TEST(cli_mon)
{
    char secret[64], exitp[256], exit2[256], echo[256], line[512];
    temp_file(secret, secret_a);
    node_t nd;
    REQUIRE(node_start(&nd, secret, NULL) == 0);
    lookup(&nd, secret, "exit", exitp, sizeof exitp);
    lookup(&nd, secret, "echo", echo, sizeof echo);
    int out, err, out2, err2;
    /* a port killed with a reason */
    pid_t mon = start_mon(secret, exitp, &out, &err);
    res_t r;
    run(&r, "snd", "--secret-file", secret, exitp, "bye", "[42]", NULL);
    CHECK_INT(r.rc, 0);
    CHECK(read_line(out, line, sizeof line, 5000) >= 0);
    CHECK_STR(line, "[\"bye\",[42]]");
    CHECK_INT(wait_exit(mon, 5000), 0);
    close(out);
    close(err);
    /* the exit service registered a fresh port: a normal exit this time */
    lookup(&nd, secret, "exit", exit2, sizeof exit2);
    CHECK(exit2[0] && strcmp(exit2, exitp) != 0);
    mon = start_mon(secret, exit2, &out, &err);
    run(&r, "snd", "--secret-file", secret, exit2, NULL);
    CHECK_INT(r.rc, 0);
    CHECK(read_line(out, line, sizeof line, 5000) >= 0);
    CHECK_STR(line, "[]");
    CHECK_INT(wait_exit(mon, 5000), 0);
    close(out);
    close(err);
    /* a port that does not exist */
    char nope[300];
    snprintf(nope, sizeof nope, "%s#nosuchport", nd.noderef);
    run(&r, "mon", "--secret-file", secret, nope, NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "[\"no_such_port\",\"cannot monitor nonexistent port\"]\n");
    /* the node goes away: a transport error is a death too */
    mon = start_mon(secret, echo, &out2, &err2);
    CHECK_INT(node_stop(&nd, SIGTERM), 0);
    CHECK(read_line(out2, line, sizeof line, 5000) >= 0);
    char want[300];
    snprintf(want, sizeof want, "[\"transport_error\",\"%s\",", nd.noderef);
    CHECK(!strncmp(line, want, strlen(want)));
    CHECK_INT(wait_exit(mon, 5000), 0);
    close(out2);
    close(err2);
    node_cleanup(&nd);
    unlink(secret);
    kill_kids();
}

/* Nobody listening, a wrong secret, no secret at all: one line each,
 * status 1, and at once (every endpoint has failed: no waiting for the
 * connect timeout). */
TEST(cli_connect_failures)
{
    char secret[64], other[64], dir[64], nobody[64], portid[128];
    temp_file(secret, secret_a);
    temp_file(other, secret_b);
    temp_dir(dir);
    snprintf(nobody, sizeof nobody, "127.0.0.1:%d", free_port());
    snprintf(portid, sizeof portid, "%s#x", nobody);
    res_t r;
    run(&r, "ping", "--secret-file", secret, nobody, NULL);
    CHECK_FAILS(&r, 1, "cannot connect to 127.0.0.1:");
    CHECK(strstr(r.err, "Connection refused") != NULL);
    CHECK(r.ms < 3000);
    run(&r, "snd", "--secret-file", secret, portid, "x", NULL);
    CHECK_FAILS(&r, 1, "Connection refused");
    run(&r, "cal", "--secret-file", secret, portid, "x", NULL);
    CHECK_FAILS(&r, 1, "Connection refused");
    run(&r, "mon", "--secret-file", secret, portid, NULL);
    CHECK_FAILS(&r, 1, "Connection refused");

    node_t nd;
    REQUIRE(node_start(&nd, secret, NULL) == 0);
    char echo[256];
    lookup(&nd, secret, "echo", echo, sizeof echo);
    run(&r, "ping", "--secret-file", other, nd.noderef, NULL);
    CHECK_FAILS(&r, 1, "authentication failure/shared secret mismatch");
    CHECK(r.ms < 3000);
    run(&r, "cal", "--secret-file", other, echo, "x", NULL);
    CHECK_FAILS(&r, 1, "authentication failure");
    run(&r, "snd", "--secret-file", other, echo, "x", NULL);
    CHECK_FAILS(&r, 1, "authentication failure");
    /* no secret file at all: the hint says what to do */
    env_t env = {.home = dir};
    run_env(&r, &env, "ping", nd.noderef, NULL);
    CHECK_FAILS(&r, 1, "aemp gensecret");
    CHECK_INT(node_stop(&nd, SIGTERM), 0);
    node_cleanup(&nd);
    unlink(secret);
    unlink(other);
    rm_dir(dir, NULL);
    kill_kids();
}

/* ------------------------------------------------------------------ */
/* the API guide's example                                             */

/* Reads a file of the source tree: from the cwd (make runs the tests
 * from the top directory) or beside the build directory. Malloc'd. */
static char *read_source(const char *rel)
{
    char path[4096];
    FILE *f = fopen(rel, "rb");
    if (!f) {
        snprintf(path, sizeof path, "%s/../%s", t_build_dir(), rel);
        f = fopen(path, "rb");
    }
    if (!f) return NULL;
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    size_t n = buf ? fread(buf, 1, cap - 1, f) : 0;
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

TEST(cli_api_example)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/api_minimal", t_build_dir());
    res_t r;
    char *none[] = {NULL};
    run_full(&r, path, NULL, 10000, none);
    CHECK_INT(r.rc, 0);
    CHECK(!strncmp(r.out, "node 127.0.0.1:", 15));
    CHECK(strstr(r.out, "\nanswer: [\"pong\",1]\n") != NULL);
    CHECK_STR(r.err, "");

    /* aimed at the echo service of another node */
    char secret[64], echo[256];
    temp_file(secret, secret_a);
    node_t nd;
    REQUIRE(node_start(&nd, secret, NULL) == 0);
    lookup(&nd, secret, "echo", echo, sizeof echo);
    char *args[] = {echo, secret, NULL};
    run_full(&r, path, NULL, 10000, args);
    CHECK_INT(r.rc, 0);
    CHECK(strstr(r.out, "\nanswer: [\"ping\",1]\n") != NULL);
    CHECK_INT(node_stop(&nd, SIGTERM), 0);
    node_cleanup(&nd);
    unlink(secret);
    kill_kids();

    /* the guide shows the program exactly as it is compiled */
    char *src = read_source("examples/api_minimal.c");
    char *guide = read_source("docs/API.md");
    CHECK(src && strlen(src) > 1000);
    CHECK(guide != NULL);
    if (src && guide && !strstr(guide, src))
        t_fail(__FILE__, __LINE__, "docs/API.md does not contain examples/api_minimal.c verbatim");
    free(src);
    free(guide);
}

/* ------------------------------------------------------------------ */
/* protocol 1: the configuration subcommands on the rc file            */


TEST(cli_p1_config_chain)
{
    char dir[64], rc[128], text[8192];
    temp_rc(dir, rc);
    env_t env = {dir, rc, NULL};
    res_t r;
    /* the chain of the brief: the effective config of profile seed */
    run_env(&r, &env, "--protocol", "1", "profile", "seed", "setbinds", "127.0.0.1:4040",
            "setseeds", "127.0.0.1:4040", "gensecret", "showconfig", "seed", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.err, "");
    CHECK_INT(file_mode(rc), 0600);
    REQUIRE(slurp(rc, text, sizeof text) > 0);
    char err[AEMP_RC_ERRMAX];
    json_t *v = aemp_rc_parse(text, strlen(text), err, sizeof err);
    REQUIRE(v != NULL);
    json_t *seed = json_object_get(json_object_get(v, "profile"), "seed");
    const char *secret = json_string_value(json_object_get(seed, "secret"));
    REQUIRE(secret != NULL);
    CHECK_INT(strlen(secret), 180);
    CHECK_INT(strspn(secret, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
              180);
    CHECK_INT(json_integer_value(json_object_get(v, "version")), 1);
    /* the file as the Perl tool writes it (pretty, canonical) */
    char want[8192];
    snprintf(want, sizeof want,
             "{\n   \"profile\" : {\n      \"seed\" : {\n         \"binds\" : [\n"
             "            \"127.0.0.1:4040\"\n         ],\n         \"secret\" : \"%s\",\n"
             "         \"seeds\" : [\n            \"127.0.0.1:4040\"\n         ]\n      }\n"
             "   },\n   \"version\" : 1\n}\n",
             secret);
    CHECK_STR(text, want);
    /* showconfig printed the merged view: defaults, top level, profile */
    snprintf(want, sizeof want,
             "{\n   \"auth_accept\" : [\n      \"tls_sha3_512\",\n      \"hmac_sha3_512\",\n"
             "      \"tls_anon\",\n      \"cleartext\"\n   ],\n   \"auth_offer\" : [\n"
             "      \"tls_sha3_512\",\n      \"hmac_sha3_512\"\n   ],\n   \"binds\" : [\n"
             "      \"127.0.0.1:4040\"\n   ],\n   \"connect_interval\" : 2,\n"
             "   \"framing_format\" : [\n      \"cbor\",\n      \"json\",\n      \"storable\"\n"
             "   ],\n   \"monitor_timeout\" : 30,\n   \"secret\" : \"%s\",\n   \"seeds\" : [\n"
             "      \"127.0.0.1:4040\"\n   ],\n   \"version\" : 1\n}\n",
             secret);
    CHECK_STR(r.out, want);
    json_decref(v);

    /* AEMP_PROTOCOL=1, setX as X, JSON arguments, add/del, top level */
    env_t env1 = {dir, rc, "1"};
    run_env(&r, &env1, "profile", "seed", "addseed", "b:2", "addseed",
            "127.0.0.1:4040", "delbind", "127.0.0.1:4040", "addbind", "x:1", "framing_format",
            "[\"json\"]", "secure", "1", "parent", "base", "services", "A::,f,", "addservice", "f",
            "delservice", "f", "showprofile", "seed", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.err, "");
    snprintf(want, sizeof want,
             "{\n   \"binds\" : [\n      \"x:1\"\n   ],\n   \"framing_format\" : [\n"
             "      \"json\"\n   ],\n   \"parent\" : \"base\",\n   \"secret\" : \"%.180s\",\n"
             "   \"secure\" : \"1\",\n   \"seeds\" : [\n      \"b:2\",\n      \"127.0.0.1:4040\"\n"
             "   ],\n   \"services\" : [\n      \"A::\",\n      \"f\"\n   ]\n}\n",
             strstr(text, "\"secret\" : \"") + 12);
    CHECK_STR(r.out, want);
    /* the parent's values come through; the profile wins */
    run_env(&r, &env1, "profile", "base", "nodeid", "b/%n", "monitor_timeout", "5", "secure",
            "0", "setsecret", "gr\xc3\xbc\xc3\x9f", "delprofile", "nothere", "showconfig", "seed",
            "connect_interval", "9", "monitor_timeout", "7", NULL);
    CHECK_INT(r.rc, 0);
    v = aemp_rc_parse(r.out, strlen(r.out), err, sizeof err);
    REQUIRE(v != NULL);
    CHECK_STR(json_string_value(json_object_get(v, "nodeid")), "b/%n");
    CHECK_STR(json_string_value(json_object_get(v, "monitor_timeout")), "5");
    CHECK_STR(json_string_value(json_object_get(v, "secure")), "1");
    /* KEY VALUE pairs are program arguments: above the defaults, below the file */
    CHECK_STR(json_string_value(json_object_get(v, "connect_interval")), "9");
    CHECK(json_object_get(v, "parent") == NULL && json_object_get(v, "profile") == NULL);
    json_decref(v);
    /* delete everything again; del on the top level leaves profiles */
    run_env(&r, &env1, "delsecret", "profile", "seed", "delseeds", "delbinds", "delparent",
            "delsecure", "delframing_format", "delservices", "delsecret", "delprofile", "base",
            "showprofile", "seed", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "{}\n");
    slurp(rc, text, sizeof text);
    CHECK_STR(text, "{\n   \"profile\" : {\n      \"seed\" : {}\n   },\n   \"version\" : 1\n}\n");
    const char *names[] = {"rc", NULL};
    rm_dir(dir, names);
}

TEST(cli_p1_config_errors)
{
    char dir[64], rc[128], text[4096], again[4096];
    temp_rc(dir, rc);
    env_t env = {dir, rc, "1"};
    res_t r;
    /* a hand-written relaxed file is read, and left alone by show */
    static const char hand[] = "# my nodes\n{\"secret\":\"s\", \"profile\":{\"p\":{\"parent\":\"q\","
                               "},\"q\":{\"parent\":\"p\"},},}\n";
    FILE *f = fopen(rc, "w");
    fputs(hand, f);
    fclose(f);
    run_env(&r, &env, "showprofile", "p", NULL);
    CHECK_INT(r.rc, 0);
    CHECK_STR(r.out, "{\n   \"parent\" : \"q\"\n}\n");
    slurp(rc, text, sizeof text);
    CHECK_STR(text, hand);
    run_env(&r, &env, "showconfig", "p", NULL);
    CHECK_FAILS(&r, 1, "profile parent cycle: p -> q -> p");
    /* a failing subcommand writes nothing, not even what came before */
    run_env(&r, &env, "setsecret", "new", "bogus", NULL);
    CHECK_FAILS(&r, 2, "bogus: no such subcommand");
    run_env(&r, &env, "setsecret", NULL);
    CHECK_FAILS(&r, 2, "setsecret: value missing");
    run_env(&r, &env, "setsecret", "x", "profile", NULL);
    CHECK_FAILS(&r, 2, "profile: profile name missing");
    run_env(&r, &env, "binds", "[1,", NULL);
    CHECK_FAILS(&r, 2, "argument 2 is not valid JSON");
    run_env(&r, &env, "setcert", "/nonexistent/cert.pem", NULL);
    CHECK_FAILS(&r, 1, "/nonexistent/cert.pem");
    run_env(&r, &env, "showconfig", "p", "nodeid", NULL);
    CHECK_FAILS(&r, 2, "a KEY without a VALUE");
    /* the network subcommands not supported in protocol 1 */
    static const char *const net[] = {"ping", "flood"};
    for (size_t i = 0; i < sizeof net / sizeof net[0]; i++) {
        run_env(&r, &env, "setsecret", "new", net[i], "x", NULL);
        CHECK_FAILS(&r, 1, "is not yet supported in protocol 1");
    }
    slurp(rc, again, sizeof again);
    CHECK_STR(again, hand);
    /* bad files and protocols */
    f = fopen(rc, "w");
    fputs("{\n  \"secret\": \"s\"\n  \"binds\": []\n}\n", f);
    fclose(f);
    run_env(&r, &env, "showconfig", NULL);
    CHECK_FAILS(&r, 1, "unexpected byte 0x22 at line 3, column 3");
    CHECK(strstr(r.err, rc) != NULL);
    run(&r, "--protocol", "2", "showconfig", NULL);
    CHECK_FAILS(&r, 2, "protocol must be 0 or 1");
    env_t bad = {dir, rc, "x"};
    run_env(&r, &bad, "showconfig", NULL);
    CHECK_FAILS(&r, 2, "AEMP_PROTOCOL='x'");
    /* a setcert of a PEM file, and the option beats the environment */
    char pem[128];
    snprintf(pem, sizeof pem, "%s/cert.pem", dir);
    f = fopen(pem, "w");
    fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    unlink(rc);
    env_t env0 = {dir, rc, "0"};
    run_env(&r, &env0, "--protocol", "1", "setcert", pem, NULL);
    CHECK_INT(r.rc, 0);
    slurp(rc, text, sizeof text);
    CHECK(strstr(text, "\"cert\" : \"-----BEGIN CERTIFICATE-----\\nAAAA\\n") != NULL);
    /* protocol 0 is unchanged: gensecret writes the hex secret file */
    run_env(&r, &env0, "gensecret", NULL);
    CHECK_INT(r.rc, 0);
    char sf[128];
    snprintf(sf, sizeof sf, "%s/.aemp-secret", dir);
    CHECK_INT(read_file(sf, text, sizeof text), 65);
    const char *names[] = {"rc", "cert.pem", ".aemp-secret", NULL};
    rm_dir(dir, names);
}

/* A peer with two endpoints, both closed: the command ends once both
 * attempts have failed, naming the one that failed last. */
TEST(cli_connect_failures_every_endpoint)
{
    char secret[64], nodes[80];
    temp_file(secret, secret_a);
    int p1 = free_port(), p2 = free_port();
    snprintf(nodes, sizeof nodes, "127.0.0.1:%d,127.0.0.1:%d", p1, p2);
    res_t r;
    run(&r, "ping", "--secret-file", secret, nodes, NULL);
    char want[160];
    snprintf(want, sizeof want, "aemp ping: cannot connect to %s: 127.0.0.1:%d: Connection refused",
             nodes, p2);
    CHECK_FAILS(&r, 1, want);
    CHECK(r.ms < 3000);
    unlink(secret);
}
