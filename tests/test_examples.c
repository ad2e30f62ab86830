/*
 * test_examples.c - runs the example programs as a user would: the chat
 * server and two chat clients, as separate processes on loopback.
 */
#include "test.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Starts argv with stdout on a pipe; returns the pid, *out the read end. */
static pid_t start(char *const argv[], int *out)
{
    int p[2];
    if (pipe(p)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    *out = p[0];
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

TEST(examples_chat)
{
    char server[512], client[512], secretf[] = "/tmp/aemp-chat-XXXXXX";
    snprintf(server, sizeof server, "%s/examples/chat_server", t_build_dir());
    snprintf(client, sizeof client, "%s/examples/chat_client", t_build_dir());
    int sfd = mkstemp(secretf);
    REQUIRE(sfd >= 0);
    REQUIRE(write(sfd, "chat secret\n", 12) == 12);
    close(sfd);
    int sout, aout, bout;
    char *sargv[] = {server, "127.0.0.1:0", secretf, NULL};
    pid_t sp = start(sargv, &sout);
    REQUIRE(sp > 0);
    char noderef[256], line[512];
    REQUIRE(read_line(sout, noderef, sizeof noderef) > 0);
    char *aargv[] = {client, noderef, "alice", "--secret-file", secretf, "--wait", "3", "hello", NULL};
    pid_t ap = start(aargv, &aout);
    REQUIRE(read_line(sout, line, sizeof line) > 0);
    CHECK(strstr(line, "joined:") && strstr(line, "as alice"));
    char *bargv[] = {client, noderef, "bob", "--secret-file", secretf, "--wait", "2", "hey", NULL};
    pid_t bp = start(bargv, &bout);
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
    /* the server saw both clients leave (their nodes went away) */
    REQUIRE(read_line(sout, line, sizeof line) > 0);
    CHECK(strstr(line, "joined:") && strstr(line, "as bob"));
    int left = 0;
    for (int i = 0; i < 2 && read_line(sout, line, sizeof line) > 0; i++) left += !strncmp(line, "left: ", 6);
    CHECK_INT(left, 2);
    kill(sp, SIGTERM);
    int sst;
    waitpid(sp, &sst, 0);
    CHECK(WIFEXITED(sst) && WEXITSTATUS(sst) == 0);
    unlink(secretf);
    close(sout);
    close(aout);
    close(bout);
}
