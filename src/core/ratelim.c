/*
 * ratelim.c - rate limiters fed with the time. One for log lines: the
 * first `burst` events of a window pass, the rest are counted, and the
 * first event of a later window passes together with the count of the
 * ones the window before it held back. And a token bucket, for budgets
 * (a global node's reads and changes, its dials). Pure: the caller owns
 * the state and the clock.
 */
#include "aemp_int.h"

#include <limits.h>

int aemp__ratelim_hit(aemp__ratelim_t *r, double now, double window, unsigned burst,
                      unsigned *held)
{
    *held = 0;
    if (r->count == 0 || now - r->start >= window || now < r->start) {
        /* a new window: report what the last one held back */
        *held = r->held;
        r->start = now;
        r->count = 0;
        r->held = 0;
    }
    if (r->count < burst) {
        r->count++;
        return 1;
    }
    if (r->held < UINT_MAX) r->held++;
    return 0;
}

int aemp__bucket_take(aemp__bucket_t *b, double now, double rate, double burst, double cost)
{
    b->tokens += (now - b->at) * rate;
    if (b->tokens > burst || now < b->at) b->tokens = burst;
    b->at = now;
    if (b->tokens < (cost < burst ? cost : burst)) return 0;
    b->tokens -= cost;
    return 1;
}

double aemp__bucket_wait(const aemp__bucket_t *b, double rate, double burst, double cost)
{
    return ((cost < burst ? cost : burst) - b->tokens) / rate;
}

void aemp__bucket_charge(aemp__bucket_t *all, aemp__bucket_t *own, double cost)
{
    double from_all = all->tokens;
    if (from_all < 0) from_all = 0;
    if (from_all > cost) from_all = cost;
    all->tokens -= from_all;
    own->tokens -= cost + (cost - from_all);
}
