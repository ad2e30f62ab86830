/*
 * perl04.c - protocol 0's link policy for Perl 0.4 peers (the dialect's
 * link_greeted and link_verified hooks, node_int.h).
 *
 * A Perl 0.4 node takes every link whose auth line it verifies as its
 * link to us, drops the one it had and connects again at once; after any
 * link error it connects again at once too (vectors/README.md). With the
 * tie-break our own nodes use, a simultaneous connect would make it
 * churn through links for ever. So with such a peer (its greeting says
 * provider=AE-...) only one link at a time carries our auth line: an
 * attempt of ours that finds another link already carrying it closes
 * before authenticating, and so does a link of the peer's. The link the
 * peer verified is the one both sides use; its other attempts end in the
 * handshake, which it does not count as a link.
 */
#include "node_int.h"

#include "perl04.h"

static int is_perl04(const aemp__link_t *l)
{
    const char *pv = aemp_hs_remote_kv(aemp__link_hs(l), "provider");
    return pv && !strncmp(pv, "AE-", 3);
}

/* Another live link of p (or of q) than l carries our auth line. */
static aemp__link_t *auth_carrier(const aemp__peer_t *p, const aemp__peer_t *q,
                                  const aemp__link_t *l)
{
    for (int k = 0; k < 2; k++)
        for (aemp__link_t *o = (k ? q : p) ? (k ? q : p)->links : NULL; o; o = o->peer_next)
            if (o != l && o->auth_out && o->state != LINK_DEAD) return o;
    return NULL;
}

int aemp__perl04_link_greeted(aemp__link_t *l, aemp__peer_t *named)
{
    if (!is_perl04(l)) return 0;
    if (auth_carrier(l->peer, named, l)) {
        aemp__log(l->node, AEMP_LOG_DEBUG, "%s: another link to this Perl node is authenticating",
                  l->addr);
        aemp__link_close(l, "superseded", 1);
        return 1;
    }
    l->auth_out = 1; /* the engine queued our auth line with the greeting */
    return 0;
}

int aemp__perl04_link_verified(aemp__link_t *l)
{
    if (!is_perl04(l)) return 0;
    aemp__link_t *c = auth_carrier(l->peer, NULL, l);
    if (!c) return 0;
    /* our link to it carries our auth line: this one must not. A
     * restarted peer's old link shows itself dead when written to */
    if (c->state == LINK_UP) aemp__link_probe(c);
    aemp__link_close(l, "superseded", 1);
    return 1;
}
