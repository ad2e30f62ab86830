/*
 * runner.c - runs every test (or those named on the command line) in its
 * own forked process with a deadline, and ends with
 * "N passed, N failed, N skipped". A test that calls SKIP() is counted as
 * skipped, with its reason, never as passed. Exit status is non-zero when
 * any test failed; skips are not failures.
 *
 *   aemp_tests [--list] [NAME...]
 *
 * A NAME selects every test whose name contains it; --list prints the
 * selected names, one a line, and runs nothing.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define X(name) void test_##name(void);
#include "test_list.h"
#undef X

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
#define X(name) {#name, test_##name},
#include "test_list.h"
#undef X
};

/* The exit status of a test process that skipped; it counts as a skip
 * only together with a reason on the skip pipe. */
#define SKIP_STATUS 77

int t_failures;
/* In a test process: the write end of the pipe the reason of a skip goes
 * through, and the process that may skip (not its children). */
static int skip_fd = -1;
static pid_t skip_pid;

void t_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    t_failures++;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void t_skip(const char *file, int line, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fflush(stderr);
    if (skip_fd < 0 || getpid() != skip_pid) {
        t_fail(file, line, "SKIP(%s) outside the test's own process", why);
        exit(1);
    }
    if (t_failures) {
        /* what failed before the skip still fails the test */
        fprintf(stderr, "    %s:%d: skipped after %d failure(s): %s\n", file, line, t_failures,
                why);
        exit(1);
    }
    size_t n = strlen(why);
    if (write(skip_fd, why, n ? n : 1) < 0) exit(1);
    exit(SKIP_STATUS); /* exit, not _exit: LeakSanitizer runs at exit */
}

static int selected(const char *name, int nsel, char **sel)
{
    if (nsel == 0) return 1;
    for (int i = 0; i < nsel; i++)
        if (strstr(name, sel[i])) return 1;
    return 0;
}

/* Reads the reason a skipped test left in the pipe (already written: the
 * test has exited); returns its length, 0 when there is none. */
static size_t read_reason(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r > 0) {
            n += (size_t)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    buf[n] = 0;
    return n;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0, skipped = 0, list = 0, nsel = 0;
    const char *dl = getenv("AEMP_TEST_DEADLINE");
    unsigned deadline = dl ? (unsigned)atoi(dl) : 120;
    size_t n = sizeof tests / sizeof tests[0];
    char **sel = calloc((size_t)argc, sizeof *sel);

    if (!sel) return 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) {
            list = 1;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "usage: %s [--list] [NAME...]\n", argv[0]);
            return 2;
        } else {
            sel[nsel++] = argv[i];
        }
    }
    if (list) {
        for (size_t i = 0; i < n; i++)
            if (selected(tests[i].name, nsel, sel)) printf("%s\n", tests[i].name);
        free(sel);
        return 0;
    }

    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < n; i++) {
        if (!selected(tests[i].name, nsel, sel)) continue;
        struct timespec t0, t1;
        int p[2];
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK)) {
            perror("pipe2");
            return 2;
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            setpgid(0, 0);
            close(p[0]);
            skip_fd = p[1];
            skip_pid = getpid();
            free(sel);
            alarm(deadline);
            tests[i].fn();
            fflush(stdout);
            fflush(stderr);
            exit(t_failures ? 1 : 0); /* exit, not _exit: LeakSanitizer runs at exit */
        }
        close(p[1]);
        int st = 0;
        while (waitpid(pid, &st, 0) < 0) {}
        kill(-pid, SIGKILL); /* leftovers of the test's process group */
        clock_gettime(CLOCK_MONOTONIC, &t1);
        char why[512];
        size_t whylen = read_reason(p[0], why, sizeof why);
        close(p[0]);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            passed++;
            printf("ok   %-40s %8.1f ms\n", tests[i].name, ms);
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == SKIP_STATUS && whylen) {
            skipped++;
            printf("SKIP %s: %s\n", tests[i].name, why);
        } else {
            failed++;
            if (WIFSIGNALED(st))
                printf("FAIL %-40s (signal %d%s)\n", tests[i].name, WTERMSIG(st),
                       WTERMSIG(st) == SIGALRM ? ": deadline passed" : "");
            else
                printf("FAIL %-40s (exit %d)\n", tests[i].name, WEXITSTATUS(st));
        }
    }
    free(sel);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
