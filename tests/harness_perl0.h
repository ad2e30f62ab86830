/*
 * harness_perl0.h - a scripted peer that keeps the link rules of a Perl
 * AnyEvent::MP 0.4 node (vectors/README.md): it greets as provider
 * AE-0.4 and sends its auth line at once on every link; a link whose
 * auth line it verified becomes its link to that node, the one it had is
 * dropped and it connects again at once; after an error of its link it
 * connects again at once too. It serves `time` on its node port, can send
 * `time` requests, and counts what it saw. It runs on the default loop
 * next to the node under test. One peer node at a time.
 */
#ifndef AEMP_HARNESS_PERL0_H
#define AEMP_HARNESS_PERL0_H

#include "aemp.h"

typedef struct perl0 perl0_t;

/* A peer listening on 127.0.0.1 (a free port), with that secret. NULL on
 * failure. */
perl0_t *perl0_new(const char *secret);
void perl0_free(perl0_t *p);
/* Its noderef, "127.0.0.1:PORT". */
const char *perl0_noderef(const perl0_t *p);
/* Queues n `time` requests to node's node port (replies to its port
 * "pp"), connecting if it has no link. */
void perl0_send_time_requests(perl0_t *p, const char *node, int n);
/* Replies to its requests so far (distinct request numbers). */
int perl0_replies(const perl0_t *p);
/* Links whose auth line it verified (each one its link at that moment),
 * links it dropped because a newer one came, connection attempts made. */
int perl0_links_verified(const perl0_t *p);
int perl0_links_replaced(const perl0_t *p);
int perl0_connects(const perl0_t *p);

#endif
