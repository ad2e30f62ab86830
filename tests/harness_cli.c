/*
 * harness_cli.c - child processes and files for the tests of the aemp
 * command (see harness_cli.h).
 */
#include "harness_cli.h"
#include "test.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


/* ------------------------------------------------------------------ */
/* processes                                                           */

static pid_t kids[HC_MAX_KIDS];

static void kid_add(pid_t pid)
{
    for (int i = 0; i < HC_MAX_KIDS; i++)
        if (!kids[i]) {
            kids[i] = pid;
            return;
        }
}

static void kid_forget(pid_t pid)
{
    for (int i = 0; i < HC_MAX_KIDS; i++)
        if (kids[i] == pid) kids[i] = 0;
}

/* Kills every child still running (the end of each test). */
void kill_kids(void)
{
    for (int i = 0; i < HC_MAX_KIDS; i++)
        if (kids[i]) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
            kids[i] = 0;
        }
}

double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Waits up to ms for pid; returns the exit status (128+signal when
 * killed), or -1 on timeout (the child is then killed). */
int wait_exit(pid_t pid, int ms)
{
    double end = now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            kid_forget(pid);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (r < 0) return -1;
        if (now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            kid_forget(pid);
            return -1;
        }
        usleep(2000);
    }
}


/* Starts `aemp ARGS...` (or prog when not NULL) with stdout and stderr
 * on pipes (err_fd NULL: stderr to err_file, or inherited when that is
 * NULL too). */
pid_t spawn(const char *prog, char *const args[], const env_t *env, int *out_fd,
                   int *err_fd, const char *err_file)
{
    int po[2], pe[2] = {-1, -1};
    if (pipe(po)) return -1;
    if (err_fd && pipe(pe)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(po[1], 1);
        if (err_fd) dup2(pe[1], 2);
        else if (err_file) {
            int fd = open(err_file, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) dup2(fd, 2);
        }
        for (int fd = 3; fd < 64; fd++) close(fd);
        if (env && env->home) {
            if (*env->home) setenv("HOME", env->home, 1);
            else unsetenv("HOME");
        }
        if (env && env->rc) setenv("PERL_ANYEVENT_MP_RC", env->rc, 1);
        if (env && env->protocol) setenv("AEMP_PROTOCOL", env->protocol, 1);
        const char *bin = prog ? prog : t_aemp_bin();
        char *argv[HC_MAX_ARGS + 2];
        int n = 0;
        argv[n++] = (char *)bin;
        for (int i = 0; args[i] && n < HC_MAX_ARGS + 1; i++) argv[n++] = args[i];
        argv[n] = NULL;
        execv(bin, argv);
        _exit(127);
    }
    close(po[1]);
    if (err_fd) close(pe[1]);
    *out_fd = po[0];
    if (err_fd) *err_fd = pe[0];
    kid_add(pid);
    return pid;
}


static void append(char *buf, size_t cap, size_t *len, const char *p, size_t n)
{
    if (n > cap - 1 - *len) n = cap - 1 - *len;
    memcpy(buf + *len, p, n);
    *len += n;
    buf[*len] = 0;
}

void collect(res_t *r, pid_t pid, int out, int err, double t0, int ms)
{
    memset(r, 0, sizeof *r);
    size_t ol = 0, el = 0;
    struct pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
    int open_fds = 2;
    double end = t0 + ms;
    while (open_fds && now_ms() < end) {
        int left = (int)(end - now_ms());
        if (poll(fds, 2, left > 0 ? left : 0) <= 0) continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else if (i == 0) {
                append(r->out, sizeof r->out, &ol, buf, (size_t)n);
            } else {
                append(r->err, sizeof r->err, &el, buf, (size_t)n);
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0) close(fds[i].fd);
    int left = (int)(end - now_ms());
    r->rc = wait_exit(pid, left > 0 ? left : 1);
    r->ms = now_ms() - t0;
}

void run_full(res_t *r, const char *prog, const env_t *env, int ms, char *const args[])
{
    int out, err;
    double t0 = now_ms();
    pid_t pid = spawn(prog, args, env, &out, &err, NULL);
    if (pid < 0) {
        memset(r, 0, sizeof *r);
        r->rc = -1;
        return;
    }
    collect(r, pid, out, err, t0, ms);
}

/* Runs `aemp ARG...` (NULL-terminated) with a 10 s limit. */
void run(res_t *r, ...)
{
    char *args[HC_MAX_ARGS + 1];
    int n = 0;
    va_list ap;
    va_start(ap, r);
    for (char *a; n < HC_MAX_ARGS && (a = va_arg(ap, char *)) != NULL;) args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    run_full(r, NULL, NULL, 10000, args);
}

/* Runs with the environment changed. */
void run_env(res_t *r, const env_t *env, ...)
{
    char *args[HC_MAX_ARGS + 1];
    int n = 0;
    va_list ap;
    va_start(ap, env);
    for (char *a; n < HC_MAX_ARGS && (a = va_arg(ap, char *)) != NULL;) args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    run_full(r, NULL, env, 10000, args);
}

/* Reads one line from fd within ms; returns its length (without the
 * LF), or -1. Byte by byte: nothing after the line is consumed. */
int read_line(int fd, char *buf, size_t n, int ms)
{
    size_t len = 0;
    double end = now_ms() + ms;
    while (len + 1 < n) {
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)(end - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) return -1;
        char c;
        if (read(fd, &c, 1) != 1) return -1;
        if (c == '\n') break;
        buf[len++] = c;
    }
    buf[len] = 0;
    return (int)len;
}

/* Waits until the file contains needle (ms at most). */
int file_waitfor(const char *path, const char *needle, int ms)
{
    double end = now_ms() + ms;
    do {
        FILE *f = fopen(path, "r");
        if (f) {
            char buf[65536];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            if (strstr(buf, needle)) return 1;
        }
        usleep(10000);
    } while (now_ms() < end);
    return 0;
}

/* Number of lines in s. */
int lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}


/* ------------------------------------------------------------------ */
/* files                                                               */

/* A temporary file holding text; path gets its name. */
void temp_file(char path[64], const char *text)
{
    snprintf(path, 64, "/tmp/aemp-cli-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) abort();
    if (text && write(fd, text, strlen(text)) != (ssize_t)strlen(text)) abort();
    close(fd);
}

void temp_dir(char path[64])
{
    snprintf(path, 64, "/tmp/aemp-cli-XXXXXX");
    if (!mkdtemp(path)) abort();
}

void temp_rc(char dir[64], char rc[128])
{
    temp_dir(dir);
    snprintf(rc, 128, "%s/rc", dir);
}

/* Removes a temporary directory and the files named in it. */
void rm_dir(const char *dir, const char *const *names)
{
    char p[256];
    for (; names && *names; names++) {
        snprintf(p, sizeof p, "%s/%s", dir, *names);
        unlink(p);
    }
    rmdir(dir);
}


/* The whole file (NUL-terminated) into buf; its length or -1. */
int slurp(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t len = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[len] = 0;
    return (int)len;
}
