/*
 * runner.c - runs every test (or those named on the command line) in its
 * own forked process with a deadline, and ends with "N passed, N failed".
 * Exit status is non-zero when any test failed.
 */
#include "test.h"

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

int t_failures;

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

static int selected(const char *name, int argc, char **argv)
{
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    const char *dl = getenv("AEMP_TEST_DEADLINE");
    unsigned deadline = dl ? (unsigned)atoi(dl) : 120;
    size_t n = sizeof tests / sizeof tests[0];

    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < n; i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        struct timespec t0, t1;
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
            alarm(deadline);
            tests[i].fn();
            fflush(stdout);
            fflush(stderr);
            exit(t_failures ? 1 : 0); /* exit, not _exit: LeakSanitizer runs at exit */
        }
        int st = 0;
        while (waitpid(pid, &st, 0) < 0) {}
        kill(-pid, SIGKILL); /* leftovers of the test's process group */
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            passed++;
            printf("ok   %-40s %8.1f ms\n", tests[i].name, ms);
        } else {
            failed++;
            if (WIFSIGNALED(st))
                printf("FAIL %-40s (signal %d%s)\n", tests[i].name, WTERMSIG(st),
                       WTERMSIG(st) == SIGALRM ? ": deadline passed" : "");
            else
                printf("FAIL %-40s (exit %d)\n", tests[i].name, WEXITSTATUS(st));
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
