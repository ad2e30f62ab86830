/*
 * node_int.h - the node's internal objects, shared by node.c (peers,
 * routing, connecting), link.c (one TCP connection: handshake, framing,
 * timers, writes) and port.c (ports, monitors, node services).
 */
#ifndef AEMP_NODE_INT_H
#define AEMP_NODE_INT_H

#include "aemp_int.h"
#include "framing.h"
#include "map.h"

#include <ev.h>

/* Log lines at AEMP_LOG_WARN and AEMP_LOG_ERROR are rate-limited: each
 * line (its format and text: the same peer, the same thing) is written
 * AEMP_LOG_BURST times per AEMP_LOG_WINDOW seconds, and each kind (its
 * format and the text after the subject, the peer or address before the
 * first ": ") AEMP_LOG_KIND_BURST times from all subjects together; the
 * next line written says how many were held back. Limiters live in
 * AEMP_LOG_SLOTS slots by hash (two keys that meet share one). All
 * lines together pass AEMP_LOG_ALL_BURST times per window: lines whose
 * text after the subject varies (a peer's chosen word in it) are each a
 * kind of their own, and more kinds than slots would pass unlimited.
 * Over that, each call site (its format) still has AEMP_LOG_SITE_RESERVE
 * lines a window, so that one flood of lines cannot hide every other
 * warning (sites share AEMP_LOG_SITES slots by hash, as above). */
#define AEMP_LOG_WINDOW 10.0
#define AEMP_LOG_BURST 5u
#define AEMP_LOG_KIND_BURST 100u
#define AEMP_LOG_ALL_BURST 1000u
#define AEMP_LOG_SLOTS 256u
/* listen()'s backlog for a node's listeners (node.c) */
#define AEMP_LISTEN_BACKLOG 4096
#define AEMP_LOG_SITE_RESERVE 5u
#define AEMP_LOG_SITES 64u

typedef struct aemp__link aemp__link_t;
typedef struct aemp__peer aemp__peer_t;
typedef struct aemp__ports aemp__ports_t;
typedef struct aemp__tls aemp__tls_t; /* tls.h */
/* A node request of a dialect (services.c): the handler gets the
 * arguments after the tag (borrowed), checked against shape: one letter
 * per leading argument, 's' a string, 'a' an array, 'o' an object, 'A'
 * an array or null, 'O' an object or null, '?' any value. More
 * arguments than the shape names are allowed (a Perl node ignores them
 * too); fewer, or another type, drop the request with a warning. */
typedef struct aemp__service {
    const char *tag;
    const char *shape;
    void (*fn)(aemp_node_t *n, const char *src, json_t *args);
} aemp__service_t;

/* A dialect of the protocol, as the drivers see it: everything that
 * makes protocol 0 (AnyEvent::MP 0.4, naming0.c, perl04.c) differ from
 * protocol 1 (2.02, naming1.c) is named here, once. node.c, link.c and
 * port.c call through this and do not know which dialect they carry; a
 * node finds its dialect with aemp__dialect_find, by the one number in
 * its configuration. */
typedef struct aemp__dialect {
    int protocol;                         /* the number that selects it */
    const aemp__hs_profile_t *profile;    /* its handshake (handshake.c) */
    /* the framings, offered in greetings and written in this order
     * (NULL-terminated; framing.h). The profile's rule picks one per
     * direction. The first is what a link would write before its
     * handshake chose (nothing is: the node writes only to links that
     * are up). */
    const aemp__framing_t *const *framings;
    const aemp__service_t *services; /* node requests; ends with a NULL tag */
    /* the naming model: how a node is named and reached */
    /* secret, TLS, defaults: returns the dialect's own state, which the
     * node holds (dstate) and frees with free, and sets *err (0, or why
     * init failed: the state it returns then is freed at once) */
    void *(*init)(aemp_node_t *n, const aemp_node_config_t *cfg, int *err);
    int (*start)(aemp_node_t *n);      /* listen and name the node */
    void (*started)(aemp_node_t *n);   /* first connections */
    /* endpoints a peer's name carries (malloc'd vector, or NULL) */
    char **(*name_endpoints)(const char *name, size_t *count);
    /* 0 when name may be a peer's, else AEMP_ELIMIT with why (a line
     * naming the limit) in why[0..len); NULL hook: every name may */
    int (*name_check)(const char *name, char *why, size_t len);
    /* a verified link greeted with remote, another name than p's */
    void (*peer_named)(aemp_node_t *n, aemp__peer_t *p, const char *remote);
    /* p has no endpoints: NULL when they are being found (the model then
     * sets them and calls aemp__peer_connect again), else why not */
    const char *(*peer_resolve)(aemp_node_t *n, aemp__peer_t *p);
    void (*link_up)(aemp_node_t *n, aemp__peer_t *p, aemp__link_t *l);
    /* p (linked) is known under another name too: an attempt of ours to
     * an address was refused because p is that node and already up */
    void (*peer_aliased)(aemp_node_t *n, aemp__peer_t *p);
    void (*peer_down)(aemp_node_t *n, aemp__peer_t *p);
    void (*free)(aemp_node_t *n); /* frees dstate */
    /* bytes the dialect holds for node peer (NULL: for all other nodes
     * together), O(1); NULL hook: none (max_peer_memory) */
    size_t (*held)(aemp_node_t *n, const char *peer);
    /* the link policy (NULL: none): an outgoing link l greeted by the
     * node `named` (the peer known by that name, or NULL); an incoming
     * link l whose peer's auth line was verified. Each returns 0 to go on
     * or 1 when it closed l. Protocol 0's keeps a Perl 0.4 peer to one
     * link carrying our auth line at a time (perl04.c). */
    int (*link_greeted)(aemp__link_t *l, aemp__peer_t *named);
    int (*link_verified)(aemp__link_t *l);
    const char *unreachable;   /* a peer no attempt reached */
    /* the wire tags the drivers write (port.c) */
    struct {
        const char *port_died;    /* "a port you watch died" */
        const char *kill;         /* "kill this port" */
        const char *watch, *unwatch; /* start / stop watching a port */
        const char *spawn;        /* "run this function in a new port" */
        const char *no_such_port; /* the reason of a watch of no port */
    } tags;
    /* Behaviour of one Perl release that the drivers reproduce, each
     * read in one place:
     * refuse_second_link      2.02: a node greeting while its link is up
     *                         is refused ("already connected") (node.c)
     * no_such_port_names_port 2.02: no_such_port's reason also names the
     *                         port watched (port.c)
     * eof_text                what a link the peer closed in the data
     *                         phase reports: 0.4 "Broken pipe", 2.02
     *                         "Unexpected end-of-file" (link.c)
     * quiet_scalars           2.02 ignores a top-level string or number
     *                         without a warning (link.c)
     * node_port_watch_silent  2.02 watches a node id by its link alone:
     *                         no mon1/mon0 for a node port (port.c)
     * unhandled_kills         2.02: a message that no callback of a port
     *                         matches kills the port with
     *                         ("unhandled_message", "no callback found
     *                         for message 'TAG'"); 0.4 drops it (port.c) */
    struct {
        int refuse_second_link;
        int no_such_port_names_port;
        const char *eof_text;
        int quiet_scalars;
        int node_port_watch_silent;
        int unhandled_kills;
    } quirks;
} aemp__dialect_t;
/* The dialect of a protocol number, or NULL (node.c). */
const aemp__dialect_t *aemp__dialect_find(int protocol);
extern const aemp__dialect_t aemp__dialect_p0, aemp__dialect_p1;
struct ssl_ctx_st;
struct link; /* link.c */

enum link_state {
    LINK_CONNECTING, /* outgoing: made, its connect not yet asked (then
                      * HANDSHAKE, the connect maybe still in progress) */
    LINK_HANDSHAKE,  /* greeting / auth */
    LINK_HELD,       /* incoming, verified, our auth line held back while
                        our own link to that peer may win (node.c) */
    LINK_UP,         /* authenticated, data phase */
    LINK_DEAD        /* closed; freed when the callback stack unwinds */
};

/* The node's view of a link: which peer it serves and how it stands.
 * node.c reads and writes these fields; everything else about a link
 * (socket, buffers, engines, watchers) is private to link.c, which
 * allocates each link with this struct at its start. */
struct aemp__link {
    aemp_node_t *node;
    aemp__peer_t *peer;          /* outgoing: from the start; incoming: once verified */
    aemp__link_t *peer_next;     /* in peer->links */
    aemp__link_t *next, *prev;   /* in node->links (link.c) */
    /* incoming and in its handshake: in node->hs_oldest.., oldest first
     * (link.c adds and removes; node.c closes the oldest) */
    aemp__link_t *hs_next, *hs_prev;
    int in_hs;
    int hs_marked;               /* the oldest, to close once it qualifies */
    ev_tstamp hs_since;          /* the handshake began */
    int outgoing;
    enum link_state state;
    ev_tstamp held_until; /* held for an up link: released then (node.c) */
    int auth_out;         /* our auth line went out on it (node.c) */
    char *greeted_as;     /* our name in this link's greeting */
    char addr[80];        /* the other end, "host:port" */
    char *error;          /* why it died */
    int reason;           /* and that as a code, where one is needed
                           * (AEMP__HS_SELF; 0 otherwise) */
    unsigned long serial; /* this node's links counted from 1: never reused */
};

struct aemp__peer {
    aemp_node_t *node;
    char *noderef;             /* as first known; renamed by iam */
    /* every key of node->peers that was set to this peer (its names,
     * endpoints, aliases): what goes with it, without a walk of the table */
    char **names;
    size_t nnames;
    /* the key its last protocol-0 iam added (one of names), which the
     * next iam replaces, or NULL */
    char *alias;
    char *old_name; /* its name before that iam (still read by its message) */
    /* what it counts in node->peer_table_bytes: the entry (its name and
     * endpoints) and each key in names, kept as they change */
    size_t entry_counted, keys_counted;
    /* an unasked peer (made for a peer's message, no link up since, not
     * sent to by us): what it counts in node->unasked_bytes; 0 otherwise */
    size_t unasked_cost;
    /* the name of the peer whose message made it unasked (node->caused's
     * own copy: that entry lasts while a peer counts under it), or NULL */
    const char *cause;
    int waited; /* it has waited for an attempt (warned once) */
    int trying; /* inside aemp__peer_try (a failure within asks again) */
    char **eps;                /* connectable endpoints (NULL-terminated) */
    size_t neps;
    aemp__link_t *link;        /* the authenticated link in use */
    aemp__link_t *links;       /* every link to this peer */
    aemp__buf_t queue;         /* encoded messages waiting for a link */
    size_t queue_counted;      /* of it, in node->peer_queued */
    aemp__peer_t *next, *prev; /* in node->peers_list */
    /* lost its last link: a candidate for reaping (node->peers_idle) */
    aemp__peer_t *idle_next, *idle_prev;
    int idle_queued;
    int connecting;
    int resolving;             /* the naming model is finding endpoints */
    size_t next_ep;            /* next endpoint to try in this round */
    ev_tstamp connect_deadline;
    ev_timer retry;            /* next connect round / give up */
    char *last_error;
    int last_reason;           /* last_error's code (aemp__link_t.reason) */
};

typedef struct aemp__local_msg aemp__local_msg_t; /* node.c */

struct aemp_node {
    struct ev_loop *loop;
    aemp_node_config_t cfg;     /* strings below are our copies */
    char *provider;
    char *framings;             /* cfg.framings; NULL: the dialect's list */
    unsigned char *secret;
    size_t secret_len;
    /* MD6-256 of the secret, what every protocol-0 auth token uses:
     * computed by link.c for the first handshake */
    unsigned char secret_md6[32];
    int secret_md6_ok;
    /* the secret made ready for hmac_sha3_512 tokens: made by link.c for
     * the first handshake */
    aemp__hmac_sha3_t *secret_sha3;
    /* where the nonces of handshakes come from (made by link.c once a
     * few were drawn from OpenSSL's), and the framings every greeting
     * offers (made for the first handshake) */
    aemp__rng_t *nonce_rng;
    unsigned nonces_drawn;  /* before nonce_rng exists (link.c) */
    char *hs_framings;
    unsigned timeout;
    char *noderef;              /* our name */
    char *greet_name;           /* name used in greetings (slaves rename) */
    int started;
    /* the handshake's deadlines (AEMP_HANDSHAKE_TIMEOUT; tests shorten it
     * to see the timeout without waiting 30 s) */
    double hs_timeout;
    struct listener {
        ev_io io;
        int fd;
    } *listeners;
    size_t nlisteners;
    char **listening;           /* what the listeners are bound to, "ip:port" */
    aemp__map_t peers;          /* noderef and each endpoint -> peer */
    /* randomness drawn in one call when the node is made (a draw from
     * the system's generator costs mostly its call): the key of every
     * hash whose keys peers choose (the peer table, the dialects' maps of
     * node ids: aemp__map_key), the ports' UNIQ (port.c), and the first
     * handshake's nonce (link.c: wiped once used, drawn_nonce_used) */
    struct {
        unsigned char map_key[16];
        unsigned char uniq[11];
        unsigned char nonce[AEMP_HS_NONCE_MAX];
    } drawn;
    int drawn_nonce_used;
    aemp__peer_t *peers_list;
    aemp__map_t self_names;     /* our noderef and endpoints -> (void*)1 */
    aemp__link_t *links;        /* every live link */
    size_t nlinks;
    aemp__link_t *dead;         /* to free once callbacks unwind */
    struct link *flush;         /* links with output to write (link.c) */
    ev_prepare flush_w;
    ev_timer accept_pause;      /* accept ran out of descriptors: wait */
    /* incoming links in their handshake, oldest first, and how many */
    aemp__link_t *hs_oldest, *hs_newest;
    size_t nhandshakes;
    ev_timer hs_evict;          /* over max_handshakes: the oldest qualifies */
    ev_idle local_w;
    aemp__local_msg_t *local_head, *local_tail;
    /* The node whose message is being handled (its name, valid for the
     * dispatch), NULL while we act for ourselves. What is sent to one of
     * our own ports meanwhile is delivered as that node's, never as ours
     * (see aemp__send_own and aemp.h, "Authority"). */
    const char *acting_for;
    /* the link whose message is being handled, straight from the link
     * (link.c: deliver), and how deep aemp__dispatch is nested: a handler
     * at depth 1 may defer that message (aemp__defer_current), which
     * sets defer_for */
    aemp__link_t *dispatch_link;
    int dispatch_again; /* and it has been deferred before */
    int dispatch_gone;  /* from a link whose peer has gone (link.c) */
    int dispatch_depth;
    double defer_for;
    unsigned long link_serial;  /* the last link's serial */
    int depth;                  /* callback nesting; >0: defer frees */
    int destroy_pending;
    aemp__peer_t *peers_idle;   /* peers that lost their last link: reaped on leave */
    /* output queued on every link and in every peer's queue (bytes,
     * updated as it changes: max_peer_memory) */
    size_t peer_queued;
    /* the peer table in max_peer_memory (AEMP_PEER_ENTRY_COST and
     * AEMP_PEER_KEY_COST, with the bytes of the names), and of it what
     * the unasked peers count (at most a quarter of max_peer_memory) */
    size_t peer_table_bytes;
    size_t unasked_bytes;
    /* connection attempts running for unasked peers (link.c counts
     * them, aemp__peer_try stops at AEMP_UNASKED_ATTEMPTS_MAX), and by
     * whose messages made them: a peer's name -> how many (uintptr_t,
     * at most a quarter of them; an entry only while not 0, keyed) */
    unsigned unasked_attempts;
    aemp__map_t cause_attempts;
    /* a peer's name -> what the unasked peers its messages made count
     * (uintptr_t, at most a sixteenth of max_peer_memory): by name, so
     * that it holds across that peer's reconnects. An entry only while
     * it is not 0 (keyed). */
    aemp__map_t caused;
    int trim_pending;           /* much was freed: malloc_trim soon */
    ev_tstamp trimmed_at;
    aemp__ports_t *ports;       /* port layer (port.c) */
    const aemp__dialect_t *dialect;
    void *dstate;               /* the dialect's state (its init made it) */
    struct aemp__logcatch *logcatch; /* LogCatcher connections (logcatch.c) */
    /* the destination of the last remote send, so that a stream of
     * messages to one node compares a name instead of hashing it twice;
     * cleared whenever the peer table or our own names change */
    aemp__peer_t *route_peer;
    size_t route_len;
    char route_name[80];
    struct ssl_ctx_st *tls_ctx; /* TLS mode: from the secret (tls.c) */
    /* warnings and errors held back (node.c, aemp__log): a fixed table,
     * so that lines a peer provokes never make the node grow */
    struct log_slot {
        uint64_t key;
        aemp__ratelim_t lim;
    } log_slots[AEMP_LOG_SLOTS];
    aemp__ratelim_t log_all;
    struct log_site {
        const char *fmt;
        aemp__ratelim_t lim;
    } log_sites[AEMP_LOG_SITES];
};

/* Protocol 1's connect_interval (2.02): spacing of endpoint attempts and
 * the deadline of a connection. */
#define AEMP_P1_CONNECT_INTERVAL 2.0
/* Bytes released at once (a peer cut, a big queue drained) after which
 * the node hands free memory back to the system (malloc_trim), at most
 * once per AEMP_TRIM_INTERVAL seconds (node.c). */
#define AEMP_TRIM_AFTER (1u << 20)
#define AEMP_TRIM_INTERVAL 1.0
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
/* A link told us who is at the other end (its greeting, not proven
 * yet). Returns 0 to go on, 1 when the link was closed, or 2 when the
 * peer must be refused as already connected (the link then fails its
 * engine with the dialect's text). */
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
/* Names the node (name and every other name of ours in others). */
int aemp__node_set_name(aemp_node_t *n, const char *name, char **others, size_t nothers);
/* Listens on each endpoint; *actual gets what was bound (malloc'd
 * vector). On failure nothing stays open. */
int aemp__node_listen(aemp_node_t *n, char **eps, size_t cnt, char ***actual);
/* The send path's remembered destination is void (names changed). */
void aemp__routes_changed(aemp_node_t *n);
/* The peer is known under name too (and the endpoints it carries). */
int aemp__peer_add_name(aemp__peer_t *p, const char *name);
/* The peer's name becomes a copy of name, which already names it
 * (aemp__peer_add_name). 0 or AEMP_ENOMEM (the name stays). */
int aemp__peer_set_name(aemp__peer_t *p, const char *name);
/* The peer's endpoints become eps (count of them, NULL-terminated;
 * stolen); the old ones are freed. A round of attempts goes on where it
 * was. */
void aemp__peer_set_endpoints(aemp__peer_t *p, char **eps, size_t count);
/* The naming model found where p, which it was resolving, listens: eps
 * (stolen, as above) are tried from the first, now. */
void aemp__peer_resolved(aemp__peer_t *p, char **eps, size_t count);
/* Connects to p now if not connected; fails p (monitors fire) when that
 * cannot be. */
void aemp__peer_connect(aemp__peer_t *p);
/* Starts the next attempt when endpoints became known while connecting. */
void aemp__peer_try(aemp__peer_t *p);
/* p is unreachable or its link failed: its queue is dropped and the
 * monitors of its ports fire with ("transport_error", NAME, msg). */
void aemp__peer_fail(aemp__peer_t *p, const char *msg);
/* Stops connecting to p (its attempts are closed) and fails it with msg
 * when it was being connected. */
void aemp__peer_forget(aemp__peer_t *p, const char *msg);
/* max_peer_memory: when what the node holds for peers passed it, cuts
 * the peer that holds the most, then the next, until it is below.
 * Returns 1 when p (may be NULL) was one of them. O(1) below the cap. */
int aemp__mem_check(aemp_node_t *n, const aemp__peer_t *p);
/* "Is this our node": 1 when name (NUL-terminated) is our noderef, one of
 * our endpoints or an earlier name of ours, or "" (a port id without a
 * node part, "#ID", means a port of ours). The one such test. */
int aemp__is_self(const aemp_node_t *n, const char *name);
/* The same of name[0..len) (a port id's node part); 0 out of memory. */
int aemp__is_self_n(const aemp_node_t *n, const char *name, size_t len);
aemp__peer_t *aemp__peer_get(aemp_node_t *n, const char *noderef, int create);
/* The one send: the message [id, ELEMENTS...] (id: idlen bytes) to the
 * node named by node[0..nodelen) ("" or one of our names: this node; the
 * message is then delivered from the loop). Steals the payload's
 * elements (always). Returns 0, AEMP_EINVAL (a payload that cannot be
 * encoded or made), AEMP_ENOMEM, or AEMP_ELIMIT (the peer's queue passed
 * max_outq: its link fails with "send queue overflow"). */
int aemp__send(aemp_node_t *n, const char *node, size_t nodelen, const char *id, size_t idlen,
               const aemp__payload_t *pl);
/* aemp__send with this node's own authority, even while a peer's message
 * is being handled: for what the library itself says (the database
 * client to a global node that is its own master, the global database's
 * answers, a local spawn). Never for a message whose target or content a
 * peer chose. */
/* Whether the program's generic sends (aemp_send, aemp_sendf,
 * aemp_node_send) may send to the node port of node[0..len) now: 0, or
 * AEMP_ESTATE (with a warning) while a peer's message is handled
 * (acting_for) and node is neither this node nor that peer: there it
 * would be a request in this node's name whose words the peer chose (a
 * g_chg2 a slave takes from its master, a g_upd a global node takes
 * from us). The library's own sends (monitors' kil, the database,
 * aemp_mon, aemp_port_kill) do not ask. AEMP_ENOMEM. */
int aemp__node_port_for(aemp_node_t *n, const char *node, size_t len);
int aemp__send_own(aemp_node_t *n, const char *node, size_t nodelen, const char *id, size_t idlen,
                   const aemp__payload_t *pl);
/* One message's bytes in each framing it was written in so far, for
 * sending the same message to many peers: each framing encodes it once
 * (aemp__send_shared, aemp__link_queue_shared). Zeroed to start;
 * aemp__enc_cache_free releases it (and zeroes it again). */
#define AEMP__ENC_CACHE_MAX 4
typedef struct aemp__enc_cache {
    const void *ops[AEMP__ENC_CACHE_MAX]; /* the framing (aemp__framing_t) */
    aemp__buf_t bytes[AEMP__ENC_CACHE_MAX];
    size_t n;
} aemp__enc_cache_t;
void aemp__enc_cache_free(aemp__enc_cache_t *c);
/* aemp__send_own of a message that goes to many peers: cache (for this
 * message only, [id, ELEMENTS...] alike every time) keeps its encodings,
 * so each framing encodes it once; the bytes on the wire are what
 * aemp__send_own writes. Steals pl's elements (always). */
int aemp__send_shared(aemp_node_t *n, const char *node, size_t nodelen, const char *id,
                      size_t idlen, const aemp__payload_t *pl, aemp__enc_cache_t *cache);
/* Calls fn(n, elems) from the loop, in turn with the messages for our
 * own ports (aemp__send to one of our names) and with this node's own
 * authority: how a dialect's modules hand each other what must not run
 * inside the caller. Steals elems (fn borrows them). Returns 0,
 * AEMP_EINVAL (elems NULL) or AEMP_ENOMEM. */
int aemp__node_later(aemp_node_t *n, void (*fn)(aemp_node_t *n, json_t *elems), json_t *elems);
/* The node that sent `src` an iam names itself newname from now on
 * (protocol 0 slaves). Refused, with a warning, when another connected
 * node holds that name. */
void aemp__node_peer_renamed(aemp_node_t *n, const char *src, const char *newname);
/* "VERSION CIPHER" of the TLS session of the current link to noderef;
 * NULL when there is no such link or it does not use TLS. */
const char *aemp__node_peer_tls(const aemp_node_t *n, const char *noderef);

/* ---- link.c ---- */
/* delayed ACKs for a socket's handshake (link.c) */
void aemp__sock_ack_late(int fd);
aemp__link_t *aemp__link_new(aemp_node_t *n, int fd, int outgoing,
                             const char *addr);
/* Starts an outgoing connection to ep (numeric endpoint). */
aemp__link_t *aemp__link_connect(aemp_node_t *n, aemp__peer_t *p, const char *ep);
/* Closes the link: silent = no warning / no failure report. */
void aemp__link_close(aemp__link_t *l, const char *reason, int silent);
/* Appends JSON texts (messages encoded before the link was up) to the
 * link's output in its framing, and schedules a flush. Returns 0,
 * AEMP_ECLOSED, AEMP_ENOMEM or AEMP_EINVAL. */
int aemp__link_queue_json(aemp__link_t *l, const char *p, size_t n);
/* Appends the message [id, ELEMENTS...] (see aemp__payload_encode) and
 * schedules a flush. Returns 0, AEMP_ECLOSED, AEMP_ENOMEM or AEMP_EINVAL
 * (nothing queued then). */
int aemp__link_queue_msg(aemp__link_t *l, const char *id, size_t idlen, const aemp__payload_t *pl);
/* Bytes queued on the link and not yet handed to the kernel. */
size_t aemp__link_queued(const aemp__link_t *l);
/* Bytes of l's output not yet framed for the wire, and a cut back to
 * that many (what was queued since is dropped whole: the framings keep
 * no state across messages). */
size_t aemp__link_out_size(const aemp__link_t *l);
void aemp__link_out_cut(aemp__link_t *l, size_t size);
/* Makes the link look at its state again from its timer callback (not
 * from the caller's stack): a held link then asks aemp__link_may_release. */
void aemp__link_kick(aemp__link_t *l);
/* When the link last received a byte (now, when bytes wait unread). */
ev_tstamp aemp__link_last_heard(const aemp__link_t *l);
/* When the link last read bytes: no later than aemp__link_last_heard,
 * without asking the kernel. */
ev_tstamp aemp__link_last_read(const aemp__link_t *l);
/* Queues a keepalive (["","devnull"]). */
void aemp__link_probe(aemp__link_t *l);
/* The link's handshake engine, to read what it learned (the peer's name,
 * its greeting's keys, the auth method), and its TLS session ("VERSION
 * CIPHER", NULL without TLS). The engine is borrowed until the link is
 * up (aemp__link_authenticated returned; NULL after), the TLS text until
 * the link is freed. */
const aemp_hs_t *aemp__link_hs(const aemp__link_t *l);
/* The value of key in the peer's greeting (aemp_hs_remote_kv), also
 * after the engine is gone; NULL when there is none. Borrowed until the
 * link is freed. */
const char *aemp__link_peer_kv(const aemp__link_t *l, const char *key);
/* The auth method the peer used on the link (aemp_hs_recv_auth), also
 * after the engine is gone; NULL before its auth line. */
const char *aemp__link_recv_auth(const aemp__link_t *l);
/* aemp__link_queue_msg of a message sent to many (see aemp__send_shared):
 * the bytes the link's framing writes come from cache, made there the
 * first time (cache NULL, a format payload or a full cache: encoded as
 * aemp__link_queue_msg does). Same returns; steals pl's elements. */
int aemp__link_queue_shared(aemp__link_t *l, const char *id, size_t idlen,
                            const aemp__payload_t *pl, aemp__enc_cache_t *cache);
const char *aemp__link_tls_info(const aemp__link_t *l);
/* The name of the framing the link reads (incoming non-zero: what the
 * peer writes) or writes, once it is up; NULL before. Static. */
const char *aemp__link_framing(const aemp__link_t *l, int incoming);
void aemp__link_free(aemp__link_t *l);
void aemp__flush_cb(struct ev_loop *loop, ev_prepare *w, int revents);

/* ---- port.c ---- */
/* The one dispatch: a message [id, ELEMENTS...] for this node from src
 * (a noderef; the pointer n->noderef for what we said ourselves: only
 * then do the handlers' local sends carry our own authority). id is idlen bytes, NUL-terminated;
 * "" is the node port (its services, services.c). elems is borrowed for
 * the call: whoever keeps it increments it (a caller that then holds the
 * only reference may reuse the array). */
void aemp__dispatch(aemp_node_t *n, const char *src, const char *id, size_t idlen, json_t *elems);
/* Whether the message being handled now may wait: true only for a
 * message straight from a peer's link, handled at the outer level. Then
 * its link stops reading and hands the same message over again in secs
 * (cut to AEMP_DEFER_MIN..AEMP_DEFER_MAX seconds), then what came behind
 * it: the peer waits as TCP makes it wait, nothing of it is lost. The
 * handler must then do nothing with the message. Else 0: the caller
 * drops or refuses it. */
#define AEMP_DEFER_MIN 0.01
#define AEMP_DEFER_MAX 5.0
int aemp__defer_current(aemp_node_t *n, double secs);
/* Every monitor on noderef's ports fires with transport_error, and the
 * watches that node held on our ports go. O(its names + monitors fired). */
void aemp__ports_peer_failed(aemp_node_t *n, const char *noderef, const char *msg);
void aemp__ports_free(aemp_node_t *n);
/* Watches (mon1) that node peer holds on our ports; peer NULL: that
 * all other nodes hold together. O(1). */
size_t aemp__ports_watches(aemp_node_t *n, const char *peer);
/* Our own monitors and registered names looked at so far (port.c): a
 * port's death and a kil notice look only at the monitors of that port
 * and, when names point at it, the names (for tests). */
unsigned long aemp__ports_visits(const aemp_node_t *n);
/* The peer that watched our ports as `old` is now called nn (an iam, a
 * fuller name, a merge): its watches follow it, so that its limit, its
 * mon0 and its going still find them. */
void aemp__ports_watcher_renamed(aemp_node_t *n, const char *old, const char *nn);
/* For the node services: src watches our port local (mon1), or stops
 * (mon0); src's port local died with reason (kil: our monitors of it
 * fire); a spawn request for port local running function fname with
 * args (borrowed); a plain call of the named function (AEMP_ENOENT when
 * none is registered). */
void aemp__ports_watch(aemp_node_t *n, const char *src, const char *local);
void aemp__ports_unwatch(aemp_node_t *n, const char *src, const char *local);
void aemp__ports_remote_died(aemp_node_t *n, const char *src, const char *local, json_t *reason);
/* Kills our port local (if there is one) with reason (borrowed). */
void aemp__ports_kill(aemp_node_t *n, const char *local, json_t *reason);
void aemp__ports_spawn(aemp_node_t *n, const char *src, const char *local, const char *fname,
                       json_t *args);
int aemp__ports_call(aemp_node_t *n, const char *name, json_t *args);
int aemp__ports_has_func(aemp_node_t *n, const char *name);

/* ---- logcatch.c (a node's log lines for LogCatcher catchers) ---- */
/* ["","AnyEvent::MP::LogCatcher::connect",VERSION,PORT,LEVEL]. */
void aemp__logcatcher_connect(aemp_node_t *n, const char *src, json_t *args);
/* A log line of the node, for the connected catchers. */
void aemp__logcatch_feed(aemp_node_t *n, int level, const char *text);
void aemp__logcatch_free(aemp_node_t *n);
/* How many catchers the node sends its lines to. */
size_t aemp__logcatch_count(const aemp_node_t *n);

/* ---- services.c ---- */
/* 1 (after logging 2.02's refusal) when the node is secure and a peer's
 * message is being handled: remote execution is not allowed. */
int aemp__remote_exec_refused(aemp_node_t *n);
/* The reason a port dies with when no callback matches elems (new
 * reference). */
json_t *aemp__unhandled_reason(json_t *elems);
/* A node-port request ["", TAG, ARGS...] (elems = [TAG, ARGS...],
 * borrowed) from src: looked up in the node's dialect table, its
 * arguments checked against the entry's shape, then handled; a tag not
 * in the table calls the registered function of that name. Anything
 * malformed is logged and dropped. */
void aemp__services_dispatch(aemp_node_t *n, const char *src, json_t *elems);

#endif
