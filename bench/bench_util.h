/*
 * bench_util.h - what the benchmarks share: clocks, the median of three,
 * memory and descriptor figures, and the coordinator's pipes to the measuring processes it
 * forks (fixed-size messages, a time limit per phase). Each benchmark is
 * one program built from one .c file that defines BENCH_NAME (its name in
 * messages) and includes this header once; every helper is static inline,
 * so a program that does not use one pays nothing for it.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench_util.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* clocks, memory, descriptors                                         */

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The median of three figures (the benchmarks run each part 3 times). */
static inline double median3(double a, double b, double c)
{
    if (a > b) { double t = a; a = b; b = t; }
    if (b > c) { double t = b; b = c; c = t; }
    return a > b ? a : b;
}

/* CPU time of this process (user + system), seconds: unlike the clock
 * it does not count time the process waited for a CPU. */
static inline double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds this process spent in the kernel (getrusage: the kernel's own
 * accounting, in ticks of its clock, so only sums over many events mean
 * anything). */
static inline double sys_cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static inline void die(const char *what)
{
    fprintf(stderr, BENCH_NAME ": %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Resident set size of this process, KiB (-1 when unknown). */
static inline long rss_kib(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
    fclose(f);
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A loopback TCP port that was free a moment ago (for a node that must
 * know its own address before it listens, such as a seed). */
static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) ||
        getsockname(fd, (struct sockaddr *)&sa, &sl))
        die("free port");
    close(fd);
    return ntohs(sa.sin_port);
}

/* A TCP listener on 127.0.0.1, a free port (*port), with the socket
 * type flags (SOCK_NONBLOCK...) and backlog given; dies when it cannot. */
static inline int listen_any(int flags, int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | flags, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (fd < 0) die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, backlog) ||
        getsockname(fd, (struct sockaddr *)&sa, &sl))
        die("listen");
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A blocking TCP connection to 127.0.0.1:port, no delay; dies when it
 * cannot. */
static inline int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Raises the descriptor limit to `want` (past the hard limit only where
 * the process may, as root may) or else as far as the hard limit goes.
 * Returns the soft limit now in force. */
static inline long raise_nofile(long want)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max < want) {
        struct rlimit more = {(rlim_t)want, (rlim_t)want};
        if (!setrlimit(RLIMIT_NOFILE, &more)) return want;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur == RLIM_INFINITY ? want : (long)rl.rlim_cur;
}

/* Writes all n bytes of p to fd (blocking), or dies. */
static inline void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* Dies unless the non-blocking connect on fd (now writable) succeeded. */
static inline void check_connected(int fd, const char *what)
{
    int e = 0;
    socklen_t el = sizeof e;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e) {
        errno = e;
        die(what);
    }
}

/* ------------------------------------------------------------------ */
/* coordination: fixed-size messages over pipes (atomic below PIPE_BUF) */

/* Ops are the benchmark's own; OP_QUIT (0) ends a measuring process. */
#define OP_QUIT 0

typedef struct cmsg {
    int op;
    long long n, m;
    double d[4];
    char s[3][200];
} cmsg_t;

static int in_child;
static const char *phase_name = "start";

static inline void put_msg(int fd, const cmsg_t *m)
{
    write_all(fd, (const char *)m, sizeof *m);
}

/* The coordinator gives every measurement a time limit: a process that
 * hangs must not hang `make bench`. */
static inline void on_alarm(int sig)
{
    static const char msg[] = BENCH_NAME ": timed out\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) _exit(1);
    _exit(1);
}

static inline void phase(const char *name, unsigned secs)
{
    phase_name = name;
    alarm(secs);
}

/* Reads one message. In a measuring process a closed pipe ends it (the
 * coordinator is gone); in the coordinator it is a failure. */
static inline void get_msg(int fd, cmsg_t *m)
{
    char *p = (char *)m;
    size_t left = sizeof *m;
    while (left) {
        ssize_t r = read(fd, p, left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (!in_child) {
                fprintf(stderr, BENCH_NAME ": a measuring process died (%s)\n", phase_name);
                exit(1);
            }
            _exit(r == 0 ? 0 : 1);
        }
        p += r;
        left -= (size_t)r;
    }
}

static inline void reply(int fd, int op, long long n, double d0, double d1)
{
    cmsg_t m = {0};
    m.op = op;
    m.n = n;
    m.d[0] = d0;
    m.d[1] = d1;
    put_msg(fd, &m);
}

typedef struct child {
    pid_t pid;
    int to, from;
} child_t;

typedef void (*child_fn)(int in, int out, void *arg);

static inline void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set)) die("sched_setaffinity");
}

/* Forks a process running fn; cpu >= 0 pins it there. */
static inline child_t spawn(child_fn fn, void *arg, int cpu)
{
    int down[2], up[2];
    if (pipe(down) || pipe(up)) die("pipe");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        /* a coordinator that dies must not leave measuring processes */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        in_child = 1;
        close(down[1]);
        close(up[0]);
        if (cpu >= 0) pin_to(cpu);
        fn(down[0], up[1], arg);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    return (child_t){pid, down[1], up[0]};
}

static inline void finish(child_t *c)
{
    cmsg_t m = {0};
    m.op = OP_QUIT;
    put_msg(c->to, &m);
    close(c->to);
    close(c->from);
    int st;
    waitpid(c->pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, BENCH_NAME ": a measuring process failed (status %d)\n", st);
        exit(1);
    }
}

static inline void expect_op(const cmsg_t *m, int op)
{
    if (m->op != op) {
        fprintf(stderr, BENCH_NAME ": protocol error: op %d, wanted %d\n", m->op, op);
        exit(1);
    }
}

/* The ascending order of doubles, for qsort. */
static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
