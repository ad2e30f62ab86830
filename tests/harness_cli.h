/*
 * harness_cli.h - helpers for tests that drive the aemp command as a user
 * does: children started with their stdout and stderr on pipes (and
 * killed at the end of each test), commands run to their end with a
 * deadline and their output collected, lines read with a deadline,
 * temporary files and directories.
 */
#ifndef AEMP_THARNESS_CLI_H
#define AEMP_THARNESS_CLI_H

#include <stddef.h>
#include <sys/types.h>

#define HC_MAX_ARGS 32
#define HC_MAX_KIDS 16

/* Child environment changes: HOME set to home ("" unsets it); rc and
 * protocol, when not NULL, set PERL_ANYEVENT_MP_RC and AEMP_PROTOCOL. */
typedef struct env {
    const char *home;
    const char *rc;
    const char *protocol;
} env_t;

/* Output collected from a finished command. */
typedef struct res {
    int rc;             /* exit status, -1 when it had to be killed */
    char out[16384];
    char err[16384];
    double ms;          /* how long it ran */
} res_t;

/* Kills every child still running (the end of each test). */
void kill_kids(void);
/* Milliseconds of a monotonic clock. */
double now_ms(void);
/* Waits up to ms for pid; returns the exit status (128+signal when
 * killed), or -1 on timeout (the child is then killed). */
int wait_exit(pid_t pid, int ms);
/* Starts `aemp ARGS...` (or prog when not NULL) with stdout and stderr
 * on pipes (err_fd NULL: stderr to err_file, or inherited when that is
 * NULL too). */
pid_t spawn(const char *prog, char *const args[], const env_t *env, int *out_fd, int *err_fd,
            const char *err_file);
/* Collects the output of the child pid started at t0 (now_ms()) by
 * spawn (out and err its pipes, closed here) until it ends, at most ms
 * after t0 (it is then killed). */
void collect(res_t *r, pid_t pid, int out, int err, double t0, int ms);
/* Runs a command to its end (at most ms) and collects its output. */
void run_full(res_t *r, const char *prog, const env_t *env, int ms, char *const args[]);
/* Runs `aemp ARG...` (NULL-terminated) with a 10 s limit. */
void run(res_t *r, ...);
/* Runs with the environment changed. */
void run_env(res_t *r, const env_t *env, ...);
/* Reads one line from fd within ms; returns its length (without the
 * LF), or -1. Byte by byte: nothing after the line is consumed. */
int read_line(int fd, char *buf, size_t n, int ms);
/* Waits until the file contains needle (ms at most). */
int file_waitfor(const char *path, const char *needle, int ms);
/* Number of lines in s. */
int lines(const char *s);
/* A temporary file holding text; path gets its name. */
void temp_file(char path[64], const char *text);
void temp_dir(char path[64]);
/* A temporary directory (dir) and the path of an rc file in it (rc). */
void temp_rc(char dir[64], char rc[128]);
/* Removes a temporary directory and the files named in it. */
void rm_dir(const char *dir, const char *const *names);
/* The whole file (NUL-terminated) into buf; its length or -1. */
int slurp(const char *path, char *buf, size_t n);

/* A failed command: status rc, nothing on stdout, exactly one line on
 * stderr containing what. */
#define CHECK_FAILS(r, want_rc, what)                                       \
    do {                                                                    \
        CHECK_INT((r)->rc, want_rc);                                        \
        CHECK_STR((r)->out, "");                                            \
        CHECK_INT(lines((r)->err), 1);                                      \
        if (!strstr((r)->err, what))                                        \
            t_fail(__FILE__, __LINE__, "stderr lacks \"%s\": %s", what, (r)->err); \
    } while (0)

#endif
