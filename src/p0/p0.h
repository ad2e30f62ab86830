/*
 * p0.h - protocol 0's files to each other (src/p0 only): the table of
 * node requests (services0.c) that the dialect (naming0.c) names.
 */
#ifndef AEMP_P0_H
#define AEMP_P0_H

#include "node_int.h"

/* Protocol 0's node requests (AnyEvent::MP 0.4), ending with a NULL tag. */
extern const aemp__service_t aemp__services_p0[];

#endif
