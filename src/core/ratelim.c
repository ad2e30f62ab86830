/*
 * ratelim.c - a rate limiter for log lines, fed with the time: the first
 * `burst` events of a window pass, the rest are counted, and the first
 * event of a later window passes together with the count of the ones the
 * window before it held back. Pure: the caller owns the state and the
 * clock.
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
