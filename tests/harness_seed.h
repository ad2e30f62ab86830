/*
 * harness_seed.h - a scripted AnyEvent::MP 2.02 global seed for tests of
 * protocol-1 nodes. It listens on 127.0.0.1 (a free port), greets as the
 * 2.02 seed of the transcripts (vectors/p1/transcripts 01, 03, 04, 07,
 * 10: provider=AE-2.02, mproto/gproto, hmac_sha3_512, json) with the
 * library's handshake engine, and then does what the recorded seed does:
 * ["","g_global"] first; g_slave (stores the slave's database), g_find ->
 * g_found (the node's 'l or null), g_db_family/keys/values -> g_reply,
 * g_mon1 -> g_chg1, g_upd -> g_chg2 to every monitor of the family (the
 * sender included), g_mon0; a slave going down loses its entries (g_chg2
 * {} [KEYS] to the others). Its own ports answer mon1/mon0/kil1 as in
 * T04. It records every message it received, as the exact JSON text, per
 * node id, so a test can hold a C node's wire output to 2.02's.
 *
 * A test double following the recordings, not a global node: no mesh, no
 * g_set, one seed. Everything runs on the default loop.
 */
#ifndef AEMP_HARNESS_SEED_H
#define AEMP_HARNESS_SEED_H

#include "aemp.h"

typedef struct hseed hseed_t;

/* A seed with node id `id` and secret `sec`, listening; NULL on failure. */
hseed_t *hseed_new(const char *id, const char *sec);
/* Closes the listener and every link (the seed process is killed). */
void hseed_free(hseed_t *s);
/* "127.0.0.1:PORT", what the nodes name as their seed. */
const char *hseed_addr(const hseed_t *s);

/* Every message node `id` sent since its first link: an array of the
 * exact JSON texts (borrowed; NULL when that node never spoke). Kept
 * after the link is gone. */
json_t *hseed_got(const hseed_t *s, const char *id);
/* Runs the loop until node id sent the JSON text `text` (exactly) at
 * least `count` times, or secs pass. Returns whether it did. */
int hseed_wait_got(hseed_t *s, const char *id, const char *text, int count, double secs);
/* How often node id sent exactly text. */
int hseed_count(const hseed_t *s, const char *id, const char *text);
/* Whether node id has an authenticated link now. */
int hseed_is_up(const hseed_t *s, const char *id);
/* The last handshake failure of a link, "" if none. */
const char *hseed_last_error(const hseed_t *s);

/* Writes bytes as they are on node id's link (anything: hostile tests).
 * Returns 0, or -1 when that node has no link. */
int hseed_send_raw(hseed_t *s, const char *id, const char *bytes, size_t len);
int hseed_send(hseed_t *s, const char *id, const char *text);

/* quiet 1: g_find is recorded but not answered (the test answers); 2:
 * g_db_family/keys/values neither. */
void hseed_quiet(hseed_t *s, int quiet);
/* The seed's own database entry (value stolen; monitors hear g_chg2). */
void hseed_db_set(hseed_t *s, const char *family, const char *key, json_t *value);
/* A port of the seed ("NAME", port id "SEEDID#NAME"): mon1 watches it,
 * kil1 kills it (watchers get kil0 with the reason), mon1 of a port the
 * seed does not have gets kil0 no_such_port. */
void hseed_port(hseed_t *s, const char *name);

/* How often node id sent the seed its database (["","g_slave",{...}]),
 * and running the loop until it did (within secs). */
int hseed_count_db(const hseed_t *s, const char *id);
int hseed_wait_registered(hseed_t *s, const char *id, double secs);

/* For the tests of protocol-1 nodes: a recorder of callbacks (calls, and
 * what they got in log), a monitor callback that records the reason,
 * "has been called" for run_until, and a value as JSON text (static
 * buffer). */
typedef struct hrec {
    int calls;
    json_t *log;
} hrec_t;
void hrec_mon(aemp_node_t *n, const char *portid, json_t *reason, void *ud);
int hrec_has(void *ud);
const char *jtext(const json_t *v);

#endif
