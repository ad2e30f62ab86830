/*
 * harness_node.h - helpers for tests that run real nodes: a node with counters
 * for links and messages, running the loop until a condition holds,
 * forked peer nodes, free ports, and a raw authenticated client socket.
 */
#ifndef AEMP_TNODE_H
#define AEMP_TNODE_H

#include "aemp.h"
#include <sys/types.h>

extern const char secret[];

typedef struct tnode {
    aemp_node_t *node;
    int links_up, links_down;
    char last_down[256];
    char last_up_peer[256];
    long received;
    long expected_next;
    int order_errors;
    json_t *kept; /* messages kept by the test */
    char warnings[4096];
} tnode_t;

typedef struct {
    tnode_t *t;
    long n;
} want_t;

typedef struct {
    double at;
    int done;
} late_t;

void t_log(void *ud, int level, const char *msg);
void t_link(void *ud, aemp_node_t *node, const char *noderef, int up, const char *reason);
void t_msg(void *ud, aemp_node_t *node, const char *src, const char *id, json_t *msg);
/* A started node bound to bind with secret sec and timeout (0: default). */
/* Points the log, link and message callbacks of c at t's counters. */
void t_hooks(aemp_node_config_t *c, tnode_t *t);
/* Starts a node of config c with t's hooks (t_hooks) on the default
 * loop: t->node, or NULL (nothing left) when it cannot be made or start. */
aemp_node_t *t_start(tnode_t *t, aemp_node_config_t *c);
aemp_node_t *mknode(tnode_t *t, const char *bind, const char *sec, unsigned timeout);
/* max_peer_memory of the protocol-1 nodes made next (0: the default) */
extern size_t t_max_peer_memory;
/* A started protocol-1 node with node id `id` and secret sec, listening on
 * 127.0.0.1 (a free port), joining through the given seeds (may be none);
 * max_message 0 is the default. */
aemp_node_t *mknode1(tnode_t *t, const char *id, const char *const *seeds, size_t nseeds,
                     const char *sec, size_t max_message);
/* mknode1 with config secure set as given (2.02's "secure"). */
aemp_node_t *mknode1_secure(tnode_t *t, const char *id, const char *const *seeds, size_t nseeds,
                            const char *sec, int secure);
/* A started protocol-1 node named id with the test secret, the given
 * framings (NULL: the default) and seed (NULL: none); no ticker. */
aemp_node_t *mknode1_framings(tnode_t *t, const char *id, const char *seed, const char *framings);
/* A started protocol-1 node named id, listening on bind (NULL:
 * 127.0.0.1, a free port), with nseeds seeds, the test secret and t's
 * counters; NULL when it cannot start. */
aemp_node_t *mknode_p1(tnode_t *t, const char *id, const char *bind, const char *const *seeds,
                       size_t nseeds);
/* Runs the default loop until cond(ud) or seconds pass; returns cond. */
int run_until(int (*cond)(void *), void *ud, double seconds);
/* Runs the default loop for seconds. */
void run_for(double seconds);
void start_ticker(void);
int got_n(void *ud);
int down_n(void *ud);
int free_port(void);
/* A free port below the kernel's ephemeral range, for a listener that
 * dies and comes back on its port: while it is gone, its peers' connects
 * to a port of the ephemeral range may be given that very port as their
 * own (a connection to itself) and hold it. */
int free_port_fixed(void);
int time_passed(void *ud);
/* Forks a process running a node (bound to 127.0.0.1:0, the test secret)
 * until killed; its noderef is written to noderef. */
pid_t spawn_node(char *noderef, size_t n, unsigned timeout);
/* A blocking socket authenticated to noderef (127.0.0.1 only), or -1. */
int raw_connect_auth(const char *noderef, const char *sec);

/* A forked child that reports its result through a pipe (see harness_node.c). */
typedef struct child {
    pid_t pid;
    int fd;
    int code; /* -1 until reported; 255 when it died without reporting */
} child_t;
/* Forks; returns 0 in the child, the pid (or -1) in the parent. */
pid_t fork_reporting(child_t *c);
/* In the child: reports code and exits with it. */
void child_exit(int code) __attribute__((noreturn));
/* In the parent: 1 once the child reported (c->code holds it). */
int child_reported(void *ud);

#endif
