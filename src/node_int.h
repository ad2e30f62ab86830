/*
 * node_int.h - the node's internal objects, shared by node.c (peers,
 * routing, connecting), link.c (one TCP connection: handshake, framing,
 * timers, writes) and port.c (ports, monitors, node services).
 */
#ifndef AEMP_NODE_INT_H
#define AEMP_NODE_INT_H

#include "aemp_int.h"
#include "map.h"

#include <ev.h>

typedef struct aemp__link aemp__link_t;
typedef struct aemp__peer aemp__peer_t;
typedef struct aemp__ports aemp__ports_t;
typedef struct aemp__tls aemp__tls_t; /* tls.h */
struct ssl_ctx_st;

enum link_state {
    LINK_CONNECTING, /* outgoing TCP connect in progress */
    LINK_HANDSHAKE,  /* greeting / auth */
    LINK_HELD,       /* incoming, verified, our auth line held back while
                        our own link to that peer may win (node.c) */
    LINK_UP,         /* authenticated, data phase */
    LINK_DEAD        /* closed; freed when the callback stack unwinds */
};

struct aemp__link {
    aemp_node_t *node;
    aemp__peer_t *peer;          /* outgoing: from the start; incoming: once verified */
    aemp__link_t *peer_next;     /* in peer->links */
    aemp__link_t *next, *prev;   /* in node->links */
    aemp__link_t *flush_next;    /* in node->flush list when queued */
    int fd;
    int outgoing;
    int in_flush;
    int hold_auth;        /* accepting side: our auth line waits (link.c) */
    size_t held_bytes;    /* received while held */
    ev_tstamp held_until; /* held for an up link: released then (node.c) */
    char *greeted_as;     /* our name in this link's greeting */
    enum link_state state;
    ev_io rio, wio;
    ev_timer timer;
    ev_tstamp last_read, last_write;
    double read_timeout;  /* peer's timeout, 0 = none */
    double keepalive;     /* our timeout - 3 */
    aemp_hs_t *hs;
    aemp__buf_t in, out;   /* with TLS: plaintext */
    aemp__tls_t *tls;      /* set when both sides chose TLS */
    aemp__buf_t wire;      /* with TLS: bytes for the socket as they are */
    aemp_framer_t framer;
    int big_text;         /* the last text was big: framer first (link.c) */
    aemp__recycle_t recycle; /* values for the next message (link.c) */
    char addr[80];        /* the other end, "host:port" */
    char *error;          /* why it died */
};

struct aemp__peer {
    aemp_node_t *node;
    char *noderef;             /* as first known; renamed by iam */
    char **eps;                /* connectable endpoints (NULL-terminated) */
    size_t neps;
    aemp__link_t *link;        /* the authenticated link in use */
    aemp__link_t *links;       /* every link to this peer */
    aemp__buf_t queue;         /* encoded messages waiting for a link */
    aemp__peer_t *next;        /* in node->peers_list */
    int connecting;
    size_t next_ep;            /* next endpoint to try in this round */
    ev_tstamp connect_deadline;
    ev_timer retry;            /* next connect round / give up */
    char *last_error;
};

typedef struct aemp__local_msg {
    struct aemp__local_msg *next;
    json_t *msg;
} aemp__local_msg_t;

struct aemp_node {
    struct ev_loop *loop;
    aemp_node_config_t cfg;     /* strings below are our copies */
    char *bind, *slave_name, *secret_file, *provider;
    char **masters;
    unsigned char *secret;
    size_t secret_len;
    unsigned timeout;
    char *noderef;              /* our name */
    char *greet_name;           /* name used in greetings (slaves rename) */
    int slave, renamed, started;
    struct listener {
        ev_io io;
        int fd;
    } *listeners;
    size_t nlisteners;
    aemp__map_t peers;          /* noderef and each endpoint -> peer */
    aemp__peer_t *peers_list;
    aemp__map_t self_names;     /* our noderef and endpoints -> (void*)1 */
    aemp__link_t *links;        /* every live link */
    size_t nlinks;
    aemp__link_t *dead;         /* to free once callbacks unwind */
    aemp__link_t *flush;        /* links with output to write */
    ev_prepare flush_w;
    ev_timer accept_pause;      /* accept ran out of descriptors: wait */
    ev_idle local_w;
    aemp__local_msg_t *local_head, *local_tail;
    int depth;                  /* callback nesting; >0: defer frees */
    int destroy_pending;
    int peers_idle;             /* a peer lost its last link: reap on leave */
    aemp__ports_t *ports;       /* port layer (port.c) */
    /* the destination of the last remote send, so that a stream of
     * messages to one node compares a name instead of hashing it twice;
     * cleared whenever the peer table or our own names change */
    aemp__peer_t *route_peer;
    size_t route_len;
    char route_name[80];
    struct ssl_ctx_st *tls_ctx; /* TLS mode: from the secret (tls.c) */
};

/* Seconds the listeners rest when accept runs out of descriptors. */
#define AEMP_ACCEPT_PAUSE 0.5
/* Seconds a verified incoming link is held for an up link of ours to the
 * same peer (a real simultaneous connect ends within a round trip). */
#define AEMP_HOLD_UP_MAX 1.0

/* ---- node.c ---- */
void aemp__log(aemp_node_t *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Enter/leave a callback from the loop; leaving the outermost frees dead
 * links and performs a deferred destroy. Returns 1 from leave when the
 * node is gone. */
void aemp__enter(aemp_node_t *n);
int aemp__leave(aemp_node_t *n);
/* A link told us who is at the other end (greeting line 1, not proven
 * yet). Returns 0 to go on, or 1 when the link was closed. */
int aemp__link_greeted(aemp__link_t *l, const char *remote);
/* An incoming link verified the peer's auth line (ours is not sent yet).
 * Returns 0 when the link is to go up, 1 when it was held or closed. */
int aemp__link_verified(aemp__link_t *l);
/* Whether a held link may now go up (asked from its timer callback). */
int aemp__link_may_release(const aemp__link_t *l);
/* The link finished authentication. */
void aemp__link_authenticated(aemp__link_t *l);
/* The link died (after the link layer closed it). */
void aemp__link_died(aemp__link_t *l, int silent);
/* A decoded message arrived on a link. Steals msg. */
void aemp__deliver(aemp_node_t *n, aemp__peer_t *src, json_t *msg);
/* The same for a message [id, ELEMENTS...] whose id stayed bytes (see
 * aemp__json_decode_msg): id is NUL-terminated and borrowed for the call,
 * and so is elems (whoever keeps it increments it: a caller that then
 * holds the only reference may reuse the array). */
void aemp__deliver_elems(aemp_node_t *n, aemp__peer_t *src, const char *id, size_t idlen,
                         json_t *elems);
/* When portid ("NODEREF#ID") is on the node the last remote send went to,
 * sends elems there as aemp__node_send_elems does and returns its result
 * (0 or an error); else returns 1 and leaves elems alone. */
int aemp__node_send_remembered(aemp_node_t *n, const char *portid, json_t *elems);
/* Sends [id, ELEMENTS...] to noderef (noderef_len bytes, NUL-terminated)
 * without building that array: id is borrowed, elems stolen (always).
 * The result of aemp_node_send. */
int aemp__node_send_elems(aemp_node_t *n, const char *noderef, size_t noderef_len,
                          const char *id, json_t *elems);
int aemp__is_self(const aemp_node_t *n, const char *noderef);
aemp__peer_t *aemp__peer_get(aemp_node_t *n, const char *noderef, int create);
/* "VERSION CIPHER" of the TLS session of the current link to noderef;
 * NULL when there is no such link or it does not use TLS. */
const char *aemp__node_peer_tls(const aemp_node_t *n, const char *noderef);

/* ---- link.c ---- */
aemp__link_t *aemp__link_new(aemp_node_t *n, int fd, int outgoing,
                             const char *addr);
/* Starts an outgoing connection to ep (numeric endpoint). */
aemp__link_t *aemp__link_connect(aemp_node_t *n, aemp__peer_t *p, const char *ep);
/* Closes the link: silent = no warning / no failure report. */
void aemp__link_close(aemp__link_t *l, const char *reason, int silent);
/* Appends bytes to the link's output and schedules a flush. */
int aemp__link_write(aemp__link_t *l, const void *p, size_t n);
int aemp__link_send(aemp__link_t *l, const json_t *msg);
/* Queues a keepalive (["","devnull"]). */
void aemp__link_probe(aemp__link_t *l);
void aemp__link_free(aemp__link_t *l);
void aemp__flush_cb(struct ev_loop *loop, ev_prepare *w, int revents);

/* ---- port.c ---- */
/* Node-port and port dispatch of a message from src (steals msg). */
void aemp__ports_dispatch(aemp_node_t *n, const char *src, json_t *msg);
/* Dispatch to the local port id (not the node port; idlen bytes,
 * NUL-terminated) of the elements of a message whose id was kept apart
 * (borrows elems, as aemp__deliver_elems). */
void aemp__ports_dispatch_elems(aemp_node_t *n, const char *src, const char *id, size_t idlen,
                                json_t *elems);
/* Every monitor on noderef's ports fires with transport_error. */
void aemp__ports_peer_failed(aemp_node_t *n, const char *noderef, const char *msg);
void aemp__ports_free(aemp_node_t *n);

#endif
