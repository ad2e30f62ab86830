/*
 * p1.h - protocol 1's modules to each other (src/p1 only). The node holds
 * protocol 1's state as its dialect state (dstate): this head, made by
 * naming1.c's init with its own part after it. Each module keeps its part
 * to itself and reaches the others only through the functions below:
 *   naming1.c  the dialect: seeds, the master, our listeners;
 *   db.c       the database client (its requests go to the master);
 *   global.c   a global node (its own master) and the mesh of them;
 *   services1.c the node requests (the table the dialect names).
 * Never through the node port: what a global node's client asks of its
 * own database, and the answers, are handed over from the loop
 * (aemp__node_later), with the node's own authority.
 */
#ifndef AEMP_P1_H
#define AEMP_P1_H

#include "node_int.h"

typedef struct aemp__p1 {
    struct aemp__db *db;         /* db.c: made on first use */
    struct aemp__global *global; /* global.c: made on first use */
} aemp__p1_t;

/* n's protocol-1 state; NULL when n speaks another dialect (or is being
 * destroyed). */
static inline aemp__p1_t *aemp__p1_of(const aemp_node_t *n)
{
    return n && n->dialect == &aemp__dialect_p1 ? n->dstate : NULL;
}

/* ---- naming1.c ---- */
/* Sends ["", ELEMENTS...] to the master (steals elems): on its link, or,
 * on a global node, to our own global database from the loop. Returns 0
 * or an error of aemp__send; AEMP_ESTATE without a master: the caller's
 * request is then sent by whoever keeps it when a master comes up
 * (aemp__db_master_up). */
int aemp__p1_to_master(aemp_node_t *n, json_t *elems);
/* Whether src (a node id) is our current master (ourselves when global). */
int aemp__p1_is_master(const aemp_node_t *n, const char *src);
/* This node became global: it is its own master from now on, which hears
 * our database and every request that waits for a master. */
void aemp__p1_master_is_self(aemp_node_t *n);
/* g_found from the master: where node id listens (addrs: an array, or
 * null). */
void aemp__p1_found(aemp_node_t *n, const char *id, json_t *addrs);
/* Our listeners ("ip:port"), for the 'l entry. */
const char *const *aemp__p1_listeners(const aemp_node_t *n, size_t *count);
/* A wait of base to base * (1 + spread), at random in steps of a
 * thousandth of the spread: spread 1 is 2.02's back-off (the interval
 * to twice it). */
double aemp__p1_jitter(double base, double spread);

/* ---- global.c ---- */
/* Becomes a global node (nothing when it is one). 0 or AEMP_ENOMEM. */
int aemp__global_start(aemp_node_t *n);
int aemp__global_active(const aemp_node_t *n);
/* The endpoints of node id from its address list addrs (JSON, any
 * shape): the first AEMP_P1_ADDRS_MAX numeric "ip:port" ones, a
 * NULL-terminated malloc'd vector (aemp__strv_free), *count of them. */
char **aemp__p1_addrs(aemp_node_t *n, const char *id, json_t *addrs, size_t *count);
/* Whether src (a peer) may have entries entries copied for it now: the
 * reads' budget of a global node (AEMP_GDB_READ_*), which whole-family
 * reads and other answers as big as the network take from. 1: yes (also
 * on a node that is not global, and for our own reads); -1: not yet, the
 * request waits on src's link (aemp__defer_current) and is handled again
 * later: the caller does nothing with it now; 0: no (it cannot wait), a
 * warning names what (a request) and of (its subject). */
int aemp__global_read(aemp_node_t *n, const char *src, size_t entries, const char *what,
                      const char *of);
/* A g_* request ["", TAG, ARGS...] from src (args borrowed): served when
 * global; bare g_slave makes the node global first. */
void aemp__global_request(aemp_node_t *n, const char *src, const char *tag, json_t *args);
/* A request [TAG, ARGS...] of our own client to our own database (run
 * from the loop by aemp__p1_to_master; elems borrowed). */
void aemp__global_own_request(aemp_node_t *n, json_t *elems);
/* A link came up (g_global goes out) / p went down (its entries go). */
void aemp__global_link_up(aemp_node_t *n, aemp__peer_t *p, aemp__link_t *l);
void aemp__global_peer_down(aemp_node_t *n, aemp__peer_t *p);
/* Bytes of node peer's share of the global database (NULL: of all other
 * nodes' shares together); 0 when we are no global node. O(1). */
size_t aemp__global_held(aemp_node_t *n, const char *peer);
/* Sets p's endpoints from the view's 'l (NULL) or says why it cannot. */
const char *aemp__global_resolve(aemp_node_t *n, aemp__peer_t *p);
void aemp__global_free(aemp_node_t *n);

/* ---- db.c ---- */
/* The local database for g_slave, with 'l (our listeners) put in: a new
 * reference, or NULL. */
json_t *aemp__db_local(aemp_node_t *n);
/* A master is up: every read and watch that waits goes to it. */
void aemp__db_master_up(aemp_node_t *n);
/* The master's answers: g_reply, g_chg1, g_chg2. */
void aemp__db_reply(aemp_node_t *n, const char *id, json_t *result);
/* Reads the replies looked at so far (one per reply that matched). */
unsigned long aemp__db_reply_visits(aemp_node_t *n);
/* Reads waiting for their answer; their deadline (tests shorten it). */
size_t aemp__db_reads_waiting(aemp_node_t *n);
void aemp__db_set_read_timeout(aemp_node_t *n, double seconds);
void aemp__db_chg1(aemp_node_t *n, const char *family, json_t *hash);
void aemp__db_chg2(aemp_node_t *n, const char *family, json_t *set, json_t *del);
void aemp__db_free(aemp_node_t *n);

/* ---- services1.c ---- */
/* Protocol 1's node requests (AnyEvent::MP 2.02), ending with a NULL tag. */
extern const aemp__service_t aemp__services_p1[];
/* An answer [TAG, ARGS...] (g_found, g_reply, g_chg1, g_chg2) of our own
 * global database to our own client (run from the loop; elems borrowed). */
void aemp__p1_own_answer(aemp_node_t *n, json_t *elems);

/* ---- toolbox.c (what 2.02's tools ask a node) ---- */
/* Node requests: eval, can, AnyEvent::MP::_spawn (refused when secure). */
void aemp__p1_eval(aemp_node_t *n, const char *src, json_t *args);
void aemp__p1_can(aemp_node_t *n, const char *src, json_t *args);
void aemp__p1_spawn(aemp_node_t *n, const char *src, json_t *args);

#endif
