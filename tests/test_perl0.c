/*
 * test_perl0.c - a C node and a peer that keeps the link rules of a Perl
 * 0.4 node (harness_perl0.c: it takes every link it verifies, dropping
 * the one it had and connecting again at once) start talking at the same
 * moment: they must settle on one link at once and lose no message. Two
 * Perl 0.4 nodes churn through thousands of links in that situation
 * (vectors/README.md), as did our node before it sent its auth line on
 * one link at a time to such a peer.
 */
#include "test.h"
#include "harness_node.h"
#include "harness_perl0.h"

#include <ev.h>

static unsigned char seen[64];
static int replies;

static int rec(aemp_port_t *p, json_t *msg, void *ud)
{
    (void)p;
    (void)ud;
    json_int_t i = json_integer_value(json_array_get(msg, 1));
    if (i >= 0 && i < 64 && !seen[i]) {
        seen[i] = 1;
        replies++;
    }
    return AEMP_KEEP;
}

typedef struct {
    perl0_t *pp;
} both_t;

static int all_replies(void *ud)
{
    both_t *b = ud;
    return replies == 50 && perl0_replies(b->pp) == 50;
}

TEST(perl0_simultaneous_start_converges)
{
    start_ticker();
    for (int round = 0; round < 5; round++) {
        tnode_t t;
        aemp_node_t *n = mknode(&t, "127.0.0.1:0", secret, 0);
        REQUIRE(n);
        perl0_t *pp = perl0_new(secret);
        REQUIRE(pp);
        memset(seen, 0, sizeof seen);
        replies = 0;
        aemp_port_t *port = aemp_port_new(n, rec, NULL);
        /* both sides at the same instant: each connects to the other */
        perl0_send_time_requests(pp, aemp_node_noderef(n), 50);
        for (int i = 0; i < 50; i++)
            CHECK_INT(aemp_sendf(n, perl0_noderef(pp), "[sssi]", "time", aemp_port_id(port), "r", i), 0);
        both_t b = {pp};
        CHECK(run_until(all_replies, &b, 3));
        int verified = perl0_links_verified(pp);
        /* settled: nothing changes in the next second */
        run_for(1.0);
        if (replies != 50 || perl0_replies(pp) != 50 || perl0_links_verified(pp) != verified ||
            verified > 2 || perl0_links_replaced(pp))
            t_fail(__FILE__, __LINE__,
                   "round %d: replies %d/%d, links verified %d then %d, replaced %d, connects %d",
                   round, replies, perl0_replies(pp), verified, perl0_links_verified(pp),
                   perl0_links_replaced(pp), perl0_connects(pp));
        CHECK(aemp_node_is_up(n, perl0_noderef(pp)));
        perl0_free(pp);
        aemp_node_destroy(n);
        run_for(0.05);
    }
}
