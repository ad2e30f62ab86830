/*
 * test_framing.c - links in Storable framing (PROTOCOL §4, §5): a node
 * offers json,storable as a Perl node does; a peer that takes only
 * storable gets BER-framed Storable images, and what such a peer sends
 * in storable reaches the ports. A message JSON cannot carry is dropped
 * with a warning, a broken image closes that link with a precise error.
 */
#include "test.h"
#include "harness_node.h"
#include "harness_raw.h"

#include <ev.h>
#include <stdlib.h>

static json_t *got;

static int rec(aemp_port_t *p, json_t *msg, void *ud)
{
    (void)p;
    (void)ud;
    json_array_append(got, msg);
    return AEMP_KEEP;
}

static int have_msgs(void *ud)
{
    return json_array_size(got) >= (size_t)(intptr_t)ud;
}

/* Sends v (a whole message) to the node as one Storable frame. */
static void send_storable(raw_t *r, json_t *v)
{
    size_t len;
    void *f = aemp_storable_encode_frame(v, &len);
    REQUIRE(f);
    raw_send(r, f, len);
    free(f);
    json_decref(v);
}

static void send_hex(raw_t *r, const char *hex)
{
    size_t n;
    unsigned char *b = t_unhex(hex, &n), len = (unsigned char)n;
    raw_send(r, &len, 1); /* images below 128 bytes: a one-byte BER length */
    raw_send(r, b, n);
    free(b);
}

/* The next Storable frame the node sent on r, decoded (NULL: none within
 * secs). */
static json_t *next_frame(raw_t *r, double secs)
{
    double end = ev_time() + secs;
    for (;;) {
        aemp_ber_framer_t f;
        size_t s, e;
        aemp_ber_framer_init(&f, 0);
        raw_pump(r);
        if (aemp_ber_framer_next(&f, r->in, r->inlen, &s, &e) == 1) {
            json_t *v = aemp_storable_decode(r->in + s, e - s, 0, NULL, NULL, 0);
            raw_consume(r, e);
            return v;
        }
        if (ev_time() > end || r->closed) return NULL;
        ev_run(EV_DEFAULT, EVRUN_ONCE);
    }
}

TEST(framing_storable_peer_both_directions)
{
    tnode_t t;
    start_ticker();
    aemp_node_t *n = mknode(&t, "127.0.0.1:0", secret, 0);
    REQUIRE(n);
    got = json_array();
    aemp_port_t *p = aemp_port_new(n, rec, NULL);
    const char *local = strchr(aemp_port_id(p), '#') + 1;

    raw_t r;
    REQUIRE(raw_open(&r, aemp_node_noderef(n)) == 0);
    char err[256] = "";
    aemp_hs_config_t hc = {.noderef = "127.0.0.1:9", .secret = secret,
                           .secret_len = strlen(secret), .timeout = 30,
                           .framings = "storable", .framings_send = "storable"};
    aemp_hs_t *hs = raw_auth_begin_cfg(&r, &hc, err, sizeof err);
    REQUIRE(hs);
    /* the node greets offering json,storable, as the Perl node does */
    CHECK(strstr(aemp_hs_remote_line(hs, 1), ";hmac_md6_64_256,cleartext;json,storable;") != NULL);
    REQUIRE(raw_auth_end(&r, hs, 5, err, sizeof err) == 1);

    /* storable in: the values reach the port (a real travels as its
     * decimal string in a network-order image, as with Perl's nfreeze) */
    send_storable(&r, json_pack("[ssi{s[bnf]}]", local, "hello", -7, "k", 1, 0.5));
    CHECK(run_until(have_msgs, (void *)1, 5));
    char *txt = aemp_json_encode(json_array_get(got, 0), NULL);
    CHECK_STR(txt, "[\"hello\",-7,{\"k\":[true,null,\"0.5\"]}]");
    free(txt);

    /* storable out: the node's messages to this peer are frames */
    CHECK_INT(aemp_sendf(n, "127.0.0.1:9#x.y", "[sis]", "back", 2, "zwei"), 0);
    json_t *v = next_frame(&r, 5);
    txt = v ? aemp_json_encode(v, NULL) : NULL;
    CHECK_STR(txt, "[\"x.y\",\"back\",2,\"zwei\"]");
    free(txt);
    json_decref(v);

    /* a tied hash: not for JSON, dropped with a warning; the link stays */
    send_hex(&r, "050b02000000010c");
    send_storable(&r, json_pack("[ss]", local, "after"));
    CHECK(run_until(have_msgs, (void *)2, 5));
    CHECK(strstr(t.warnings, "Storable message dropped (unsupported Storable type 0x0c (tied hash)") !=
          NULL);
    CHECK_INT(t.links_down, 0);

    /* a broken image closes the link with the reason */
    send_hex(&r, "050b02ffffffff");
    CHECK(raw_wait_closed(&r, 5));
    CHECK(strstr(t.warnings, "Bad message (negative length in an array header at offset 2)") !=
          NULL);
    raw_close(&r);
    json_decref(got);
    aemp_node_destroy(n);
}

/* Two of our nodes both offer json,storable: each writes json (the first
 * of the other's list). */
TEST(framing_json_between_our_nodes)
{
    tnode_t ta, tb;
    start_ticker();
    aemp_node_t *a = mknode(&ta, "127.0.0.1:0", secret, 0);
    aemp_node_t *b = mknode(&tb, "127.0.0.1:0", secret, 0);
    REQUIRE(a && b);
    got = json_array();
    aemp_port_t *p = aemp_port_new(b, rec, NULL);
    CHECK_INT(aemp_sendf(a, aemp_port_id(p), "[s]", "x"), 0);
    CHECK(run_until(have_msgs, (void *)1, 5));
    CHECK(aemp_node_is_up(a, aemp_node_noderef(b)));
    json_decref(got);
    aemp_node_destroy(a);
    aemp_node_destroy(b);
}
