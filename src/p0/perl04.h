/*
 * perl04.h - protocol 0's link policy for Perl 0.4 peers (perl04.c), the
 * hooks aemp__dialect_p0 names (naming0.c).
 */
#ifndef AEMP_PERL04_H
#define AEMP_PERL04_H

#include "node_int.h"

/* The outgoing link l was greeted by a node (named: the peer known by
 * that name, or NULL): 1 when l was closed because another link carries
 * our auth line, else 0. */
int aemp__perl04_link_greeted(aemp__link_t *l, aemp__peer_t *named);
/* The incoming link l verified its peer: 1 when l was closed because our
 * own link carries our auth line, else 0. */
int aemp__perl04_link_verified(aemp__link_t *l);

#endif
