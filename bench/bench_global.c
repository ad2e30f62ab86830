/*
 * bench_global.c - a C seed (a protocol-1 global node) with many slave
 * nodes, all in this process on one loop over loopback (BENCH_SLAVES,
 * default 1000; each slave costs three descriptors, the soft limit is
 * raised to the hard one and the count cut to fit):
 *
 *   register     every slave sets one key in each of 10 families (its
 *                node id -> a number): time until the seed's view holds
 *                them all
 *   db reads     aemp_db_family of a small family, from every slave at
 *                once, one outstanding each, through the seed: replies/s
 *   fan-out      every slave watches a family (aemp_db_mon); one slave
 *                changes a key: time until all watchers saw the value
 *   memory       RSS growth per connected slave (both ends of its link,
 *                its node, its registration), and what one slave's
 *                registration costs in the seed's database (heap)
 *   database     the global database alone (gdb.c, sans I/O): g_find and
 *                g_db_family requests answered per second
 *
 * Baseline, measured in the same run: a raw TCP request/reply on
 * loopback (a forked echo process, 40-byte requests, 1000 outstanding,
 * like the db reads); the fan-out is shown next to the time that
 * baseline takes for as many messages. Rates on a shared machine depend
 * on the CPU the process gets; the CPU time per operation (seed and
 * slaves together, all in this process; the baseline's both processes)
 * is shown too. Run by `make bench`.
 */
#define BENCH_NAME "bench_global"
#include "aemp.h"
#include "bench_util.h"
#include "gdb.h"

#include <arpa/inet.h>
#include <ev.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NFAM 10
#define ROUNDS 5

static const char secret_[] = "bench-global-secret";
static int nslaves = 1000;
static aemp_node_t *seed, **slaves;
static int links_up;

static void on_link(void *ud, aemp_node_t *n, const char *peer, int up, const char *why)
{
    (void)ud;
    (void)n;
    (void)peer;
    (void)why;
    if (up) links_up++;
}

static void on_log(void *ud, int level, const char *msg)
{
    (void)ud;
    if (getenv("BENCH_VERBOSE") || level <= AEMP_LOG_ERROR) fprintf(stderr, "[%d] %s\n", level, msg);
}

static aemp_node_t *mk(const char *id, const char *bind, const char *seed_ep)
{
    const char *binds[] = {bind}, *seeds[] = {seed_ep};
    aemp_node_config_t c = {0};
    c.protocol = 1;
    c.nodeid = id;
    c.binds = binds;
    c.nbinds = 1;
    c.seeds = seeds;
    c.nseeds = 1;
    c.secret = secret_;
    c.secret_len = strlen(secret_);
    c.on_link = on_link;
    c.log = on_log;
    int err = 0;
    aemp_node_t *n = aemp_node_new(EV_DEFAULT, &c, &err);
    if (!n || aemp_node_start(n)) {
        fprintf(stderr, "bench_global: cannot start %s: %s\n", id, aemp_strerror(err));
        exit(1);
    }
    return n;
}

/* Runs the loop until *counter reaches target or seconds pass. */
static int run_until_count(int *counter, int target, double seconds)
{
    double end = now() + seconds;
    while (*counter < target && now() < end) ev_run(EV_DEFAULT, EVRUN_ONCE);
    return *counter >= target;
}

/* ------------------------------------------------------------------ */
/* end to end                                                          */

static int replies;
static size_t last_size;

static void on_reply(aemp_node_t *n, const char *family, json_t *result, void *ud)
{
    (void)n;
    (void)family;
    (void)ud;
    last_size = json_is_array(result) ? json_array_size(result) : json_object_size(result);
    replies++;
}

/* Waits until the seed's view holds want keys in family. */
static double wait_keys(const char *family, size_t want, double seconds)
{
    double t0 = now(), end = t0 + seconds;
    while (now() < end) {
        int before = replies;
        aemp_db_keys(seed, family, on_reply, NULL);
        run_until_count(&replies, before + 1, 5);
        if (last_size >= want) return now() - t0;
        for (int i = 0; i < 20; i++) ev_run(EV_DEFAULT, EVRUN_NOWAIT);
    }
    return -1;
}

static int reads_left;

static void on_read(aemp_node_t *n, const char *family, json_t *result, void *ud)
{
    (void)result;
    (void)ud;
    replies++;
    if (reads_left > 0) {
        reads_left--;
        aemp_db_family(n, family, on_read, NULL);
    }
}

static int fan_seen;
static long fan_value;

static void on_change(aemp_node_t *n, const char *family, json_t *hash, json_t *added,
                      json_t *changed, json_t *deleted, void *ud)
{
    (void)n;
    (void)family;
    (void)added;
    (void)changed;
    (void)deleted;
    long *seen = ud;
    json_t *v = json_object_get(hash, "k");
    if (json_is_integer(v) && json_integer_value(v) == fan_value && *seen != fan_value) {
        *seen = fan_value;
        fan_seen++;
    }
}

/* ------------------------------------------------------------------ */
/* baseline: raw TCP request/reply on loopback                         */

static double raw_cpu; /* CPU seconds per request/reply, both processes */

static double raw_reqrep_rate(int outstanding, int total)
{
    int port, one = 1, ls = listen_any(0, 1, &port);
    pid_t pid = fork();
    if (pid == 0) {
        int c = accept(ls, NULL, NULL);
        char buf[65536];
        ssize_t r;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        while ((r = read(c, buf, sizeof buf)) > 0)
            if (write(c, buf, (size_t)r) != r) break;
        _exit(0);
    }
    close(ls);
    int s = connect_to(port);
    static const char req[] = "[\"\",\"g_db_family\",\"small\",\"b123456\"]\n"; /* 40 bytes */
    size_t rl = sizeof req - 1;
    char *batch = malloc(rl * (size_t)outstanding), buf[65536];
    for (int i = 0; i < outstanding; i++) memcpy(batch + rl * (size_t)i, req, rl);
    double t0 = now(), c0 = cpu_now();
    long got = 0, sent = 0;
    if (write(s, batch, rl * (size_t)outstanding) < 0) return 0;
    sent = outstanding;
    while (got < total) {
        ssize_t r = read(s, buf, sizeof buf);
        if (r <= 0) break;
        long lines = 0;
        for (ssize_t i = 0; i < r; i++) lines += buf[i] == '\n';
        got += lines;
        /* one new request per reply, as the slaves do */
        long more = lines;
        if (sent + more > total) more = total - sent;
        if (more > 0) {
            for (long i = 0; i < more; i++)
                if (write(s, req, rl) < 0) break;
            sent += more;
        }
    }
    double rate = got / (now() - t0), mine = cpu_now() - c0;
    close(s);
    struct rusage ru;
    wait4(pid, NULL, 0, &ru);
    raw_cpu = (mine + ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
               (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6) / (got ? got : 1);
    free(batch);
    return rate;
}

/* ------------------------------------------------------------------ */
/* the database alone                                                  */

static void bench_gdb(double *find_rate, double *read_rate, double *bytes_per_slave)
{
    struct mallinfo2 m0 = mallinfo2();
    aemp__gdb_t *g = aemp__gdb_new("seed");
    json_t *out = json_array();
    char id[32];
    for (int i = 0; i < nslaves; i++) {
        snprintf(id, sizeof id, "slave%d", i);
        json_t *db = json_pack("{s{s[s]}}", "'l", id, "127.0.0.1:40000");
        for (int f = 0; f < NFAM; f++) {
            char fam[16];
            snprintf(fam, sizeof fam, "fam%d", f);
            json_object_set_new(db, fam, json_pack("{si}", id, i));
        }
        json_t *req = json_pack("[so]", "g_slave", db);
        json_array_clear(out);
        aemp__gdb_feed(g, id, req, out, NULL, 0);
        json_decref(req);
    }
    json_array_clear(out);
    struct mallinfo2 m1 = mallinfo2();
    *bytes_per_slave = (double)(m1.uordblks - m0.uordblks) / nslaves;
    json_t *small = json_pack("[s{ss}]", "g_slave", "small", "k", "v");
    aemp__gdb_feed(g, "slave0", small, out, NULL, 0);
    json_decref(small);
    int n = 300000;
    json_t *req = json_pack("[ss]", "g_find", "slave500");
    double t0 = now();
    for (int i = 0; i < n; i++) {
        aemp__gdb_feed(g, "slave1", req, out, NULL, 0);
        if (json_array_size(out) > 64) json_array_clear(out);
    }
    *find_rate = n / (now() - t0);
    json_decref(req);
    req = json_pack("[sss]", "g_db_family", "small", "b1");
    t0 = now();
    for (int i = 0; i < n; i++) {
        aemp__gdb_feed(g, "slave1", req, out, NULL, 0);
        if (json_array_size(out) > 64) json_array_clear(out);
    }
    *read_rate = n / (now() - t0);
    json_decref(req);
    json_decref(out);
    aemp__gdb_free(g);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("BENCH_SLAVES")) nslaves = atoi(getenv("BENCH_SLAVES"));
    long fds = raise_nofile(3L * nslaves + 64);
    if (fds < 3L * nslaves + 64) {
        int fit = (int)((fds - 64) / 3);
        printf("descriptor limit %ld: %d slaves instead of %d\n", fds, fit, nslaves);
        nslaves = fit;
    }
    printf("libaemp %s global-node benchmark: one C seed, %d slave nodes, one process, "
           "loopback (descriptors: %ld)\n\n",
           aemp_version(), nslaves, fds);

    char seed_ep[64];
    snprintf(seed_ep, sizeof seed_ep, "127.0.0.1:%d", free_port());
    long rss0 = rss_kib();
    seed = mk("seed", seed_ep, seed_ep);
    if (!aemp_node_is_global(seed)) {
        fprintf(stderr, "bench_global: the seed is not global\n");
        return 1;
    }
    slaves = calloc((size_t)nslaves, sizeof *slaves);
    double t0 = now();
    for (int i = 0; i < nslaves; i++) {
        char id[32];
        snprintf(id, sizeof id, "slave%d", i);
        slaves[i] = mk(id, "127.0.0.1:0", seed_ep);
        if (i % 50 == 49) run_until_count(&links_up, 2 * (i + 1) - 40, 5);
    }
    if (!run_until_count(&links_up, 2 * nslaves, 60)) {
        fprintf(stderr, "bench_global: only %d of %d link ends up\n", links_up, 2 * nslaves);
        return 1;
    }
    double t_connect = now() - t0;
    wait_keys("'l", (size_t)nslaves + 1, 30);
    long rss1 = rss_kib();

    /* register: 10 families per slave */
    t0 = now();
    for (int i = 0; i < nslaves; i++)
        for (int f = 0; f < NFAM; f++) {
            char fam[16], id[32];
            snprintf(fam, sizeof fam, "fam%d", f);
            snprintf(id, sizeof id, "slave%d", i);
            aemp_db_set(slaves[i], fam, id, json_integer(i));
        }
    double t_reg = -1;
    if (wait_keys("fam9", (size_t)nslaves, 60) >= 0 && wait_keys("fam0", (size_t)nslaves, 10) >= 0)
        t_reg = now() - t0;
    long rss2 = rss_kib();

    /* db reads through the seed, one outstanding per slave */
    aemp_db_set(slaves[0], "small", "k", json_string("v"));
    wait_keys("small", 1, 5);
    int total = 20 * nslaves;
    reads_left = total - nslaves;
    replies = 0;
    t0 = now();
    double c0 = cpu_now();
    for (int i = 0; i < nslaves; i++) aemp_db_family(slaves[i], "small", on_read, NULL);
    run_until_count(&replies, total, 120);
    double read_rate = replies / (now() - t0), read_cpu = (cpu_now() - c0) / replies;

    /* fan-out to every slave watching one family */
    long *seen = calloc((size_t)nslaves, sizeof *seen);
    fan_value = 0;
    aemp_db_set(slaves[0], "hot", "k", json_integer(0));
    fan_seen = 0;
    for (int i = 0; i < nslaves; i++) {
        seen[i] = -1;
        aemp_db_mon(slaves[i], "hot", on_change, &seen[i]);
    }
    run_until_count(&fan_seen, nslaves, 30);
    double fan[ROUNDS], fan_cpu[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        fan_value = r + 1;
        fan_seen = 0;
        t0 = now();
        c0 = cpu_now();
        aemp_db_set(slaves[1 + r % (nslaves - 1)], "hot", "k", json_integer(fan_value));
        run_until_count(&fan_seen, nslaves, 30);
        fan[r] = fan_seen == nslaves ? now() - t0 : -1;
        fan_cpu[r] = cpu_now() - c0;
    }
    qsort(fan, ROUNDS, sizeof *fan, cmp_double);
    qsort(fan_cpu, ROUNDS, sizeof *fan_cpu, cmp_double);

    double find_rate, gread_rate, bytes_per;
    bench_gdb(&find_rate, &gread_rate, &bytes_per);
    double raw = raw_reqrep_rate(nslaves, 20 * nslaves);

    printf("%-44s %-16s %-16s %s\n", "", "aemp", "baseline", "ratio");
    printf("%-44s %-16.2f\n", "connect: all slaves linked, registered (s)", t_connect);
    printf("%-44s %-16.3f\n", "register 10 families per slave: all in view (s)", t_reg);
    printf("%-44s %-16.0f %-16.0f %.2f\n", "db reads/s through the seed (1/slave out)", read_rate,
           raw, read_rate / raw);
    printf("%-44s %-16.1f %-16.1f %.2f\n", "  CPU per db read, seed + slave (us)", read_cpu * 1e6,
           raw_cpu * 1e6, read_cpu / raw_cpu);
    printf("%-44s %-16.2f %-16.2f %.2f\n", "change seen by all watchers (ms, median)",
           fan[ROUNDS / 2] * 1e3, nslaves / raw * 1e3, fan[ROUNDS / 2] / (nslaves / raw));
    printf("%-44s %-16.2f %-16.2f %.2f\n", "  CPU for it, seed + watchers (ms)", fan_cpu[ROUNDS / 2] * 1e3,
           nslaves * raw_cpu * 1e3, fan_cpu[ROUNDS / 2] / (nslaves * raw_cpu));
    printf("%-44s %-16.0f %-16.0f %.2f\n", "g_find/s in the database (sans I/O)", find_rate, raw,
           find_rate / raw);
    printf("%-44s %-16.0f %-16.0f %.2f\n", "g_db_family/s in the database (sans I/O)", gread_rate, raw,
           gread_rate / raw);
    printf("%-44s %-16.0f\n", "seed database heap per slave, 10 families (B)", bytes_per);
    printf("%-44s %-16.1f\n", "RSS per connected slave, whole process (KiB)",
           (double)(rss1 - rss0) / nslaves);
    printf("%-44s %-16.1f\n", "RSS per slave's 10 registrations (KiB)", (double)(rss2 - rss1) / nslaves);
    printf("\nbaseline: raw TCP request/reply on loopback, 40-byte requests, %d outstanding, "
           "echoed by a forked process; for the fan-out: the time it takes for %d such replies\n",
           nslaves, nslaves);
    for (int i = 0; i < nslaves; i++) aemp_node_destroy(slaves[i]);
    aemp_node_destroy(seed);
    free(seen);
    free(slaves);
    return t_reg < 0 || fan[0] < 0;
}
