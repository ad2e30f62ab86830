/*
 * bench.h - what the benchmark programs share: a monotonic clock in
 * seconds and the median of three runs.
 */
#ifndef AEMP_BENCH_H
#define AEMP_BENCH_H

#include <time.h>

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double median3(double a, double b, double c)
{
    if (a > b) { double t = a; a = b; b = t; }
    if (b > c) { double t = b; b = c; c = t; }
    return a > b ? a : b;
}

#endif
