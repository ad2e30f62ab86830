/*
 * bench_md6.c - MD6 throughput: MD6-256 and MD6-512 over 16 MiB, with the
 * round loop the library picks and with the portable one, and OpenSSL's
 * SHA-256 in the same run for scale. Each figure is the median of 3 runs.
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aemp.h"

/* Internal: selects the round loop of an initialised context (0 best,
 * 1 portable) and names the one in use. */
int aemp__md6_set_impl(aemp_md6_ctx_t *ctx, int impl);
const char *aemp__md6_impl_name(const aemp_md6_ctx_t *ctx);

#define BENCH_BYTES (16u << 20)
#define RUNS 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double median3(double a, double b, double c)
{
    if (a > b) { double t = a; a = b; b = t; }
    if (b > c) b = c;
    return a > b ? a : b;
}

/* Keeps the compiler from dropping work whose result is unused. */
static unsigned sink;

static double md6_mbps(const unsigned char *buf, int d, int impl, const char **name)
{
    double mbps[RUNS];
    for (int i = 0; i < RUNS; i++) {
        aemp_md6_ctx_t ctx;
        unsigned char out[AEMP_MD6_MAX_BYTES];
        aemp_md6_init(&ctx, d);
        if (aemp__md6_set_impl(&ctx, impl)) return -1;
        *name = aemp__md6_impl_name(&ctx);
        double t0 = now();
        aemp_md6_update(&ctx, buf, BENCH_BYTES);
        aemp_md6_final(&ctx, out);
        mbps[i] = BENCH_BYTES / 1e6 / (now() - t0);
        sink += out[0];
    }
    return median3(mbps[0], mbps[1], mbps[2]);
}

static double sha256_mbps(const unsigned char *buf)
{
    double mbps[RUNS];
    for (int i = 0; i < RUNS; i++) {
        unsigned char out[SHA256_DIGEST_LENGTH];
        double t0 = now();
        SHA256(buf, BENCH_BYTES, out);
        mbps[i] = BENCH_BYTES / 1e6 / (now() - t0);
        sink += out[0];
    }
    return median3(mbps[0], mbps[1], mbps[2]);
}

int main(void)
{
    unsigned char *buf = malloc(BENCH_BYTES);
    if (!buf) {
        fprintf(stderr, "bench_md6: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < BENCH_BYTES; i++) buf[i] = (unsigned char)(i * 131 + (i >> 9));

    printf("bench_md6: %u MiB per run, median of %d runs\n", BENCH_BYTES >> 20, RUNS);
    static const int ds[] = {256, 512};
    for (int impl = 0; impl <= 1; impl++)
        for (size_t i = 0; i < 2; i++) {
            const char *name = "";
            double v = md6_mbps(buf, ds[i], impl, &name);
            printf("  MD6-%d (%s)%*s %8.1f MB/s\n", ds[i], name,
                   (int)(12 - strlen(name)), "", v);
        }
    printf("  SHA-256 (OpenSSL)%*s %8.1f MB/s\n", 5, "", sha256_mbps(buf));
    free(buf);
    return sink == 0xffffffffu; /* never true; uses sink */
}
