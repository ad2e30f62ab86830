/*
 * link.c - one TCP connection between two nodes, driven by libev: the
 * non-blocking connect, the handshake engine fed from the socket, the
 * framing of the data phase, the timers (handshake silence, peer
 * timeout, keepalive) and batched writes. Who the link belongs to and
 * what happens when it comes up or dies is node.c's business.
 *
 * Framing (PROTOCOL §4, §5): each direction uses what its sender chose
 * from the dialect's list; the link reads and writes through that
 * framing's ops (framing.h) without knowing which it is.
 *
 * TLS (PROTOCOL §3): once the engine says both sides want it, the socket
 * carries TLS records only. Bytes from the socket go into the TLS filter
 * (tls.c); its plaintext lands in `in`, where the engine (auth line) and
 * then the framer read it as on a plain link. `out` stays plaintext, with
 * the same limits; a flush encrypts it into `wire`, which is what goes to
 * the socket.
 */
#include "node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "addr.h"
#include "framing.h"
#include "tls.h"

/* A link: the node's view (node_int.h) and what only this file touches. */
typedef struct link {
    aemp__link_t pub;     /* first: a link_t is an aemp__link_t */
    struct link *flush_next, *flush_prev; /* in node->flush list when queued */
    int fd;
    int in_flush;
    int hold_auth;        /* accepting side: our auth line waits */
    int connecting;       /* outgoing: its TCP connect not known complete
                           * (no byte sent or received yet) */
    int gone;             /* the peer closed while a message waited:
                           * what is left is handled without waiting */
    size_t held_bytes;    /* received while held */
    int for_unasked;      /* an attempt in node->unasked_attempts */
    char *attempt_cause;  /* and in node->cause_attempts under this */
    ev_io rio, wio;
    ev_timer timer;
    ev_tstamp last_read, last_write;
    double read_timeout;  /* peer's timeout, 0 = none */
    double keepalive;     /* our timeout - 3 */
    aemp_hs_t *hs;        /* freed once the link is up */
    char *kvs;            /* then: the peer's greeting keys and values */
    size_t kvs_len;       /* (aemp__hs_remote_kvs) */
    const char *auth;     /* and the auth method it used (static) */
    aemp__buf_t in, out;  /* with TLS: plaintext */
    aemp__tls_t *tls;     /* set when both sides chose TLS */
    aemp__buf_t wire;     /* with TLS: bytes for the socket as they are */
    size_t counted;       /* of out and wire, in node->peer_queued */
    /* the framings of the data phase, each direction its own: reading
     * is bound when the link goes up, writing uses the dialect's first
     * until then */
    aemp__frame_in_t fin;
    aemp__frame_out_t fout;
    /* a message its handler deferred (aemp__defer_current): while the
     * link holds one it reads nothing more (deliver, link_resume) */
    struct deferred *deferred;
} link_t;

/* A deferred message: handed over again at `until`, then what came
 * behind it. Made only while a link waits (an idle link holds none). */
typedef struct deferred {
    ev_tstamp until;
    json_t *elems;
    size_t idlen;
    char id[];
} deferred_t;

#define PRIV(l) ((link_t *)(l))

static void deferred_free(deferred_t *d)
{
    if (!d) return;
    json_decref(d->elems);
    free(d);
}

#define READ_CHUNK (64 * 1024)
/* A plain link reads through a buffer on the stack, READ_STEP bytes per
 * recv() and up to READ_CHUNK per wakeup, and keeps only what it has not
 * processed yet: an idle link holds no read buffer. An emptied `in` is
 * released. */
#define READ_STEP (16 * 1024)
/* Plaintext encrypted per batch: one SSL_write (cut into 16 KiB records),
 * one send(). Bounds the ciphertext held besides `out`, so the send queue
 * limit still sees what waits. */
#define TLS_BATCH (256 * 1024)

static const char devnull_msg[] = "[\"\",\"devnull\"]";

static void link_rearm_timer(link_t *l);
static void link_close(link_t *l, const char *reason, int silent);
static void process_data(link_t *l);
static void process_handshake(link_t *l);
static void tls_pump(link_t *l);

/* Brings node->peer_queued up to date with what l holds now. */
static void link_count(link_t *l)
{
    size_t now = aemp__buf_size(&l->out) + aemp__buf_size(&l->wire);
    l->pub.node->peer_queued += now;
    l->pub.node->peer_queued -= l->counted;
    l->counted = now;
}

/* Frees out and wire (a dead or drained link): a big release asks for
 * malloc_trim (node.c). */
static void link_release(link_t *l)
{
    if (l->out.cap + l->wire.cap > AEMP_TRIM_AFTER) l->pub.node->trim_pending = 1;
    aemp__buf_free(&l->out);
    aemp__buf_free(&l->wire);
    link_count(l);
}

/* An attempt for an unasked peer ends (its link died, or is up: the
 * peer is no longer unasked then). */
static void attempt_done(link_t *l)
{
    aemp_node_t *n = l->pub.node;
    if (!l->for_unasked) return;
    l->for_unasked = 0;
    n->unasked_attempts--;
    if (!l->attempt_cause) return;
    uintptr_t c = (uintptr_t)aemp__map_get(&n->cause_attempts, l->attempt_cause);
    if (c > 1) aemp__map_set(&n->cause_attempts, l->attempt_cause, (void *)(c - 1)); /* replaces */
    else aemp__map_del(&n->cause_attempts, l->attempt_cause);
    free(l->attempt_cause);
    l->attempt_cause = NULL;
}

/* The attempt l for the unasked peer p counts (out of memory: in all,
 * not under its cause). */
static void attempt_count(link_t *l, const aemp__peer_t *p)
{
    aemp_node_t *n = l->pub.node;
    l->for_unasked = 1;
    n->unasked_attempts++;
    if (!p->cause || !(l->attempt_cause = strdup(p->cause))) return;
    uintptr_t c = (uintptr_t)aemp__map_get(&n->cause_attempts, p->cause);
    if (aemp__map_set(&n->cause_attempts, p->cause, (void *)(c + 1))) {
        free(l->attempt_cause);
        l->attempt_cause = NULL;
    }
}

static void link_fail(link_t *l, const char *msg)
{
    link_close(l, msg, 0);
}

/* The node's list of incoming links in their handshake, oldest first:
 * a link joins when accepted and leaves once verified or closed. */
static void hs_list_add(link_t *l)
{
    aemp_node_t *n = l->pub.node;
    l->pub.in_hs = 1;
    l->pub.hs_next = NULL;
    l->pub.hs_prev = n->hs_newest;
    if (n->hs_newest) n->hs_newest->hs_next = &l->pub;
    else n->hs_oldest = &l->pub;
    n->hs_newest = &l->pub;
    n->nhandshakes++;
}

static void hs_list_remove(link_t *l)
{
    aemp_node_t *n = l->pub.node;
    if (!l->pub.in_hs) return;
    l->pub.in_hs = 0;
    if (l->pub.hs_prev) l->pub.hs_prev->hs_next = l->pub.hs_next;
    else n->hs_oldest = l->pub.hs_next;
    if (l->pub.hs_next) l->pub.hs_next->hs_prev = l->pub.hs_prev;
    else n->hs_newest = l->pub.hs_prev;
    l->pub.hs_next = l->pub.hs_prev = NULL;
    n->nhandshakes--;
}

ev_tstamp aemp__link_last_heard(const aemp__link_t *pl)
{
    const link_t *l = (const link_t *)pl;
    int pending = 0;
    if (l->fd >= 0 && ioctl(l->fd, FIONREAD, &pending) == 0 && pending > 0)
        return ev_now(pl->node->loop);
    return l->last_read;
}

ev_tstamp aemp__link_last_read(const aemp__link_t *pl)
{
    return ((const link_t *)pl)->last_read;
}

void aemp__link_free(aemp__link_t *pl)
{
    link_t *l = PRIV(pl);
    l->pub.node->peer_queued -= l->counted;
    aemp_hs_free(l->hs);
    free(l->kvs);
    aemp__tls_free(l->tls);
    aemp__frame_in_free(&l->fin);
    aemp__pack_cache_free(l->fout.pack);
    aemp__buf_free(&l->in);
    aemp__buf_free(&l->out);
    aemp__buf_free(&l->wire);
    free(l->pub.error);
    free(l->pub.greeted_as);
    free(l->attempt_cause); /* (attempt_done freed it at the close) */
    deferred_free(l->deferred);
    free(l);
}

/* The node's flush watcher runs while links have output queued (or a
 * trim is pending, node.c), not on every loop iteration of an idle node. */
static void schedule_flush(link_t *l)
{
    aemp_node_t *n = l->pub.node;
    if (l->in_flush || l->pub.state == LINK_DEAD) return;
    l->in_flush = 1;
    l->flush_prev = NULL;
    l->flush_next = n->flush;
    if (n->flush) n->flush->flush_prev = l;
    n->flush = l;
    ev_prepare_start(n->loop, &n->flush_w);
}

static void flush_unlink(link_t *l)
{
    aemp_node_t *n = l->pub.node;
    if (l->flush_prev) l->flush_prev->flush_next = l->flush_next;
    else n->flush = l->flush_next;
    if (l->flush_next) l->flush_next->flush_prev = l->flush_prev;
    l->flush_next = l->flush_prev = NULL;
    l->in_flush = 0;
}

static int link_write(link_t *l, const void *p, size_t n)
{
    if (l->pub.state == LINK_DEAD) return AEMP_ECLOSED;
    if (aemp__buf_append(&l->out, p, n)) return AEMP_ENOMEM;
    link_count(l);
    schedule_flush(l);
    return 0;
}

int aemp__link_queue_json(aemp__link_t *pl, const char *p, size_t n)
{
    link_t *l = PRIV(pl);
    if (l->pub.state == LINK_DEAD) return AEMP_ECLOSED;
    size_t before = aemp__buf_size(&l->out);
    int rc = l->fout.ops->put_json(&l->fout, &l->out, p, n);
    if (aemp__buf_size(&l->out) != before) schedule_flush(l);
    link_count(l);
    return rc;
}

int aemp__link_queue_msg(aemp__link_t *pl, const char *id, size_t idlen, const aemp__payload_t *pay)
{
    link_t *l = PRIV(pl);
    if (l->pub.state == LINK_DEAD) {
        aemp__payload_drop(pay);
        return AEMP_ECLOSED;
    }
    int rc = l->fout.ops->encode(&l->fout, &l->out, id, idlen, pay);
    if (!rc) schedule_flush(l);
    link_count(l);
    return rc;
}

int aemp__link_queue_shared(aemp__link_t *pl, const char *id, size_t idlen,
                            const aemp__payload_t *pay, aemp__enc_cache_t *c)
{
    link_t *l = PRIV(pl);
    if (l->pub.state == LINK_DEAD || !c || pay->fmt) return aemp__link_queue_msg(pl, id, idlen, pay);
    size_t i = 0;
    while (i < c->n && c->ops[i] != l->fout.ops) i++;
    if (i == AEMP__ENC_CACHE_MAX) return aemp__link_queue_msg(pl, id, idlen, pay);
    if (i == c->n) {
        /* the first link with this framing: encoded once, for all */
        aemp__frame_out_t fo = {l->fout.ops, NULL};
        aemp__payload_t once = {json_incref(pay->elems), NULL, NULL};
        int rc = fo.ops->encode(&fo, &c->bytes[i], id, idlen, &once);
        aemp__pack_cache_free(fo.pack);
        if (rc) return aemp__link_queue_msg(pl, id, idlen, pay);
        c->ops[c->n++] = fo.ops;
    }
    aemp__payload_drop(pay);
    int rc = aemp__buf_append(&l->out, aemp__buf_head(&c->bytes[i]), aemp__buf_size(&c->bytes[i]));
    if (!rc) schedule_flush(l);
    link_count(l);
    return rc;
}

void aemp__enc_cache_free(aemp__enc_cache_t *c)
{
    for (size_t i = 0; i < AEMP__ENC_CACHE_MAX; i++) aemp__buf_free(&c->bytes[i]);
    c->n = 0;
}

size_t aemp__link_queued(const aemp__link_t *pl)
{
    const link_t *l = (const link_t *)pl;
    return aemp__buf_size(&l->out) + aemp__buf_size(&l->wire);
}

size_t aemp__link_out_size(const aemp__link_t *pl)
{
    return aemp__buf_size(&((const link_t *)pl)->out);
}

void aemp__link_out_cut(aemp__link_t *pl, size_t size)
{
    link_t *l = PRIV(pl);
    aemp__buf_cut(&l->out, size);
    link_count(l);
}

void aemp__link_probe(aemp__link_t *pl)
{
    aemp__link_queue_json(pl, devnull_msg, sizeof devnull_msg - 1);
}

void aemp__link_kick(aemp__link_t *pl)
{
    link_t *l = PRIV(pl);
    ev_feed_event(l->pub.node->loop, &l->timer, EV_TIMER);
}

const aemp_hs_t *aemp__link_hs(const aemp__link_t *pl)
{
    return ((const link_t *)pl)->hs;
}

const char *aemp__link_peer_kv(const aemp__link_t *pl, const char *key)
{
    const link_t *l = (const link_t *)pl;
    return l->hs ? aemp_hs_remote_kv(l->hs, key) : aemp__hs_kv_find(l->kvs, l->kvs_len, key);
}


const char *aemp__link_recv_auth(const aemp__link_t *pl)
{
    const link_t *l = (const link_t *)pl;
    return l->hs ? aemp_hs_recv_auth(l->hs) : l->auth;
}

const char *aemp__link_framing(const aemp__link_t *pl, int incoming)
{
    const link_t *l = (const link_t *)pl;
    if (l->pub.state != LINK_UP) return NULL;
    return incoming ? l->fin.ops->name : l->fout.ops->name;
}

const char *aemp__link_tls_info(const aemp__link_t *pl)
{
    const link_t *l = (const link_t *)pl;
    return l->tls ? aemp__tls_info(l->tls) : NULL;
}

/* Moves the next batch of plaintext through TLS and whatever ciphertext
 * TLS has (handshake flights, alerts) into wire. Returns 0 or an error. */
static int tls_encrypt_batch(link_t *l)
{
    size_t n = aemp__buf_size(&l->out);
    if (n && aemp__buf_size(&l->wire) < TLS_BATCH && aemp__tls_established(l->tls)) {
        if (n > TLS_BATCH) n = TLS_BATCH;
        int rc = aemp__tls_write(l->tls, aemp__buf_head(&l->out), n);
        if (rc) return rc;
        aemp__buf_consume(&l->out, n);
    }
    int rc = aemp__tls_take(l->tls, &l->wire);
    link_count(l);
    return rc;
}

/* The connect of l is complete (a byte went out or came in): from now
 * on the handshake's deadline applies, counted from now (a slow connect
 * takes nothing from the handshake's time). */
static void connected(link_t *l)
{
    l->connecting = 0;
    l->last_read = l->pub.hs_since = ev_now(l->pub.node->loop);
    link_rearm_timer(l);
}

/* Hands b to the kernel. Returns 1 when all of it went, 0 when the
 * socket is full (the write watcher then waits for room), -1 when the
 * link died. */
static int send_pending(link_t *l, aemp__buf_t *b)
{
    while (aemp__buf_size(b)) {
        ssize_t w = send(l->fd, aemp__buf_head(b), aemp__buf_size(b), MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!ev_is_active(&l->wio)) ev_io_start(l->pub.node->loop, &l->wio);
                return 0;
            }
            link_fail(l, strerror(errno));
            return -1;
        }
        aemp__buf_consume(b, (size_t)w);
        l->last_write = ev_now(l->pub.node->loop);
        link_count(l);
        if (l->connecting) connected(l);
    }
    return 1;
}

/* The TLS side of link_do_write: batches of TLS records from out, each
 * handed to the kernel with one send(). */
static int tls_do_write(link_t *l)
{
    for (;;) {
        int rc = tls_encrypt_batch(l);
        if (rc) {
            link_fail(l, rc == AEMP_ENOMEM ? "out of memory" : aemp__tls_error(l->tls));
            return -1;
        }
        if (!aemp__buf_size(&l->wire)) break;
        if ((rc = send_pending(l, &l->wire)) <= 0) return rc;
    }
    if (ev_is_active(&l->wio)) ev_io_stop(l->pub.node->loop, &l->wio);
    if (l->out.cap + l->wire.cap > 256 * 1024) link_release(l);
    return 0;
}

/* A last attempt, without waiting, to hand queued output to the kernel
 * before the link closes (so the peer can log the real reason). */
static void link_send_last(link_t *l)
{
    aemp__buf_t *b = &l->out;
    if (l->tls) {
        if (tls_encrypt_batch(l)) return;
        b = &l->wire;
    }
    if (aemp__buf_size(b))
        send(l->fd, aemp__buf_head(b), aemp__buf_size(b), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Writes as much pending output as the kernel takes. Returns 0, or -1
 * when the link died. */
static int link_do_write(link_t *l)
{
    if (l->tls) return tls_do_write(l);
    int rc = send_pending(l, &l->out);
    if (rc <= 0) return rc;
    if (ev_is_active(&l->wio)) ev_io_stop(l->pub.node->loop, &l->wio);
    /* a drained buffer keeps no allocation around: an idle link holds
     * none */
    link_release(l);
    return 0;
}

void aemp__flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    aemp_node_t *n = w->data;
    (void)loop;
    (void)revents;
    aemp__enter(n);
    while (n->flush) {
        link_t *l = n->flush;
        flush_unlink(l);
        if (l->pub.state != LINK_DEAD) link_do_write(l);
    }
    if (aemp__leave(n)) return;
    if (!n->flush && !n->trim_pending) ev_prepare_stop(loop, w);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    link_t *l = w->data;
    (void)loop;
    (void)revents;
    aemp_node_t *n = l->pub.node;
    aemp__enter(n);
    link_do_write(l);
    aemp__leave(n);
}

/* Moves the engine's pending output into our output buffer. The
 * accepting side of a link keeps its auth line back until the peer's has
 * been verified and the node lets the link go up (node.c), or until the
 * peer's auth line failed (a Perl node would have sent ours by then). */
static void drain_hs_output(link_t *l)
{
    if (l->hold_auth) return;
    size_t len;
    const void *p;
    while ((p = aemp_hs_out(l->hs, &len)) != NULL && len) {
        if (link_write(l, p, len)) return;
        aemp_hs_out_ack(l->hs, len);
    }
}

/* A decoded value that is not a message (not an array with a string
 * first) is dropped, as a Perl node drops it; the link stays. null and 0
 * are quiet, and in protocol 1 every scalar (2.02 ignores them). */
static void drop_value(link_t *l, const json_t *v)
{
    aemp_node_t *n = l->pub.node;
    int scalar = !json_is_array(v) && !json_is_object(v);
    if (!json_is_array(v) && !json_is_null(v) && !(json_is_integer(v) && !json_integer_value(v)) &&
        !(scalar && n->dialect->quirks.quiet_scalars))
        aemp__log(n, AEMP_LOG_WARN, "%s: message is not an array, dropped",
                  l->pub.peer ? l->pub.peer->noderef : "?");
}

/* Hands one message of l's peer to the node. A handler may defer it
 * (aemp__defer_current): then l keeps it, stops reading and hands it
 * over again when the time has come (timer_cb, link_resume). again: the
 * deferred message being handed over again (id and elems are its own),
 * which deliver keeps or frees. Returns 1 when it was deferred. */
static int deliver(link_t *l, const char *id, size_t idlen, json_t *elems, deferred_t *again)
{
    aemp_node_t *n = l->pub.node;
    aemp__link_t *was_link = n->dispatch_link;
    int was_again = n->dispatch_again, was_gone = n->dispatch_gone;
    /* (a peer that is gone cannot be made to wait) */
    n->dispatch_link = l->gone ? NULL : &l->pub;
    n->dispatch_again = again != NULL;
    n->dispatch_gone = l->gone;
    n->defer_for = 0;
    aemp__dispatch(n, l->pub.peer ? l->pub.peer->noderef : "?", id, idlen, elems);
    n->dispatch_link = was_link;
    n->dispatch_again = was_again;
    n->dispatch_gone = was_gone;
    double wait = n->defer_for;
    n->defer_for = 0;
    deferred_t *d = again;
    if (wait <= 0 || l->pub.state != LINK_UP || n->destroy_pending) {
        deferred_free(d);
        return 0;
    }
    if (!d) {
        if (!(d = malloc(sizeof *d + idlen + 1))) {
            link_fail(l, "out of memory");
            return 1;
        }
        memcpy(d->id, id, idlen);
        d->id[idlen] = 0;
        d->idlen = idlen;
        d->elems = json_incref(elems);
    }
    d->until = ev_now(n->loop) + wait;
    l->deferred = d;
    /* reading stays on, but only for the peer's end (read_cb): what it
     * sends meanwhile stays in the kernel, and TCP holds it back */
    link_rearm_timer(l);
    return 1;
}

/* Whether l is up and reads on (no message of it waits). */
static int reading(const link_t *l)
{
    return l->pub.state == LINK_UP && !l->pub.node->destroy_pending && !l->deferred;
}

/* After a waiting message was handed over again: what came behind it
 * (buffered, and with TLS decrypted). Whether l then reads on. */
static int link_catch_up(link_t *l)
{
    if (reading(l)) process_data(l);
    if (reading(l) && l->tls) tls_pump(l);
    return reading(l);
}

/* The peer of a paused link closed (err: the errno, 0 for the end of
 * the stream): the message that waited and what came behind it are handled
 * now, without waiting (a read over the budget is then dropped by its
 * handler: nobody is left to answer), and the link ends as it would
 * have at the next read. Before, the end showed only when the link read
 * again, and a node restarted under the same id was refused as already
 * connected until then. */
static void link_peer_gone(link_t *l, int err)
{
    aemp_node_t *n = l->pub.node;
    deferred_t *d = l->deferred;
    l->deferred = NULL;
    l->gone = 1;
    deliver(l, d->id, d->idlen, d->elems, d); /* (gone: it cannot wait again) */
    if (link_catch_up(l)) link_fail(l, err ? strerror(err) : n->dialect->quirks.eof_text);
}

/* The deferred message's time has come: handed over again (it may be
 * deferred once more), then what waits behind it, then reading goes on. */
static void link_resume(link_t *l)
{
    aemp_node_t *n = l->pub.node;
    deferred_t *d = l->deferred;
    l->deferred = NULL;
    l->last_read = ev_now(n->loop); /* (unread while paused) */
    if (deliver(l, d->id, d->idlen, d->elems, d) || !link_catch_up(l)) return;
    if (!aemp__buf_size(&l->in)) aemp__buf_free(&l->in);
    ev_io_start(n->loop, &l->rio);
    link_rearm_timer(l);
}

/* Cuts the data-phase bytes into messages with the framing the peer
 * chose and hands each to the node. What the framing finds broken fails
 * the link; a message it drops is a warning. */
static void process_data(link_t *l)
{
    aemp_node_t *n = l->pub.node;
    aemp__frame_in_t *in = &l->fin;
    while (l->pub.state == LINK_UP && !n->destroy_pending && !l->deferred &&
           aemp__buf_size(&l->in)) {
        size_t start = 0, end = 0;
        char *head = aemp__buf_head(&l->in);
        const char *why = "";
        char err[AEMP_JSON_ERRMAX + 64], m[sizeof err + 16];
        int r = in->ops->next(in, head, aemp__buf_size(&l->in), &start, &end, &why);
        if (r == AEMP__FRAME_ERROR) {
            snprintf(m, sizeof m, "Bad message (%s)", why);
            link_fail(l, m);
            return;
        }
        if (r == AEMP__FRAME_MORE) {
            if (end) aemp__buf_consume(&l->in, end);
            return;
        }
        aemp__msg_t msg = {0};
        int d = in->ops->decode(in, head + start, end - start, &msg, err, sizeof err);
        /* consumed first: the id may point into the bytes, which stay put
         * until the next read */
        aemp__buf_consume(&l->in, end);
        if (d == AEMP__MSG_OK) {
            deliver(l, msg.id, msg.idlen, msg.elems, NULL);
        } else if (d == AEMP__MSG_VALUE) {
            drop_value(l, msg.value);
        } else if (d == AEMP__MSG_DROP) {
            aemp__log(n, AEMP_LOG_WARN, "%s: %s", l->pub.addr, err);
        } else {
            snprintf(m, sizeof m, "Bad message (%s)", err);
            link_fail(l, m);
            return;
        }
        aemp__frame_msg_done(in, &msg);
        if (n->destroy_pending) return;
    }
}

/* Both greetings asked for TLS: what is still queued of our greeting goes
 * out as it is, every byte after the peer's nonce line is TLS. */
static void tls_start(link_t *l, int server)
{
    if (!l->pub.node->tls_ctx) {
        /* the engine offers TLS only when we announced it */
        link_fail(l, "TLS requested, but not configured on this node");
        return;
    }
    l->tls = aemp__tls_new(l->pub.node->tls_ctx, server);
    drain_hs_output(l);
    if (!l->tls || aemp__buf_append(&l->wire, aemp__buf_head(&l->out), aemp__buf_size(&l->out)) ||
        aemp__tls_feed(l->tls, aemp__buf_head(&l->in), aemp__buf_size(&l->in))) {
        link_fail(l, "out of memory");
        return;
    }
    aemp__buf_consume(&l->out, aemp__buf_size(&l->out));
    aemp__buf_consume(&l->in, aemp__buf_size(&l->in));
    /* from here `in` holds plaintext the TLS session writes into: not the
     * stack buffer a plain read lends it (read_cb) */
    if (!l->in.cap) l->in = (aemp__buf_t){0};
    schedule_flush(l);
    tls_pump(l);
}

/* The TLS session failed: the alert goes out, the link fails with
 * OpenSSL's reason. */
static void tls_failed(link_t *l, int rc)
{
    char msg[300];
    if (rc == AEMP_ECLOSED) snprintf(msg, sizeof msg, "Broken pipe"); /* close_notify */
    else if (rc == AEMP_ENOMEM) snprintf(msg, sizeof msg, "out of memory");
    else snprintf(msg, sizeof msg, "%s", aemp__tls_error(l->tls));
    link_send_last(l);
    if (l->pub.state == LINK_HANDSHAKE) {
        aemp_hs_fail(l->hs, rc, msg);
        link_fail(l, aemp_hs_error(l->hs));
    } else {
        link_fail(l, msg);
    }
}

/* Ciphertext arrived: finish the TLS handshake (then the engine queues its
 * `tls` auth line), then hand the plaintext to the engine or the framer,
 * a bounded piece at a time, as on a plain link. */
static void tls_pump(link_t *l)
{
    if (!aemp__tls_established(l->tls)) {
        int rc = aemp__tls_handshake(l->tls);
        if (rc < 0) {
            tls_failed(l, rc);
            return;
        }
        if (aemp__tls_pending(l->tls)) schedule_flush(l);
        if (rc == 0) return;
        aemp__log(l->pub.node, AEMP_LOG_DEBUG, "%s: %s", l->pub.addr, aemp__tls_info(l->tls));
        if (aemp_hs_tls_up(l->hs)) {
            link_fail(l, "out of memory");
            return;
        }
        drain_hs_output(l);
    }
    while ((l->pub.state == LINK_HANDSHAKE || l->pub.state == LINK_UP) && !l->deferred) {
        if (aemp__buf_reserve(&l->in, READ_CHUNK)) {
            link_fail(l, "out of memory");
            return;
        }
        ssize_t r = aemp__tls_read(l->tls, l->in.data + l->in.len, READ_CHUNK);
        if (r < 0) {
            tls_failed(l, (int)r);
            return;
        }
        if (r == 0) break;
        l->in.len += (size_t)r;
        if (l->pub.state == LINK_HANDSHAKE) process_handshake(l);
        else process_data(l);
        if (l->pub.node->destroy_pending) return;
    }
    /* reading may have produced records to answer (e.g. a key update) */
    if (l->pub.state != LINK_DEAD && aemp__tls_pending(l->tls)) schedule_flush(l);
}

/* Our auth line goes out (if still held back) and the data phase
 * begins. */
static void link_go_up(link_t *l)
{
    hs_list_remove(l);
    attempt_done(l);
    l->hold_auth = 0;
    drain_hs_output(l);
    int t = aemp_hs_remote_timeout(l->hs);
    l->read_timeout = t < 0 ? 0 : (t < 4 ? 4 : t);
    /* the engine accepts only framings of the dialect's list */
    const aemp__framing_t *const *fl = l->pub.node->dialect->framings;
    const aemp__framing_t *fin = aemp__framing_find(fl, aemp_hs_recv_framing(l->hs));
    const aemp__framing_t *fout = aemp__framing_find(fl, aemp_hs_send_framing(l->hs));
    l->fout.ops = fout ? fout : fl[0];
    if (aemp__frame_in_init(&l->fin, fin ? fin : fl[0], l->pub.node->cfg.max_message)) {
        link_fail(l, "out of memory");
        return;
    }
    l->pub.state = LINK_UP;
    l->last_read = ev_now(l->pub.node->loop);
    link_rearm_timer(l);
    aemp__link_authenticated(&l->pub);
    /* the engine's work is done: what is read later of it is the peer's
     * greeting keys, kept packed (an up link of an idle node is small) */
    size_t left = 0;
    if (l->pub.state == LINK_UP && (!aemp_hs_out(l->hs, &left) || !left)) {
        l->kvs = aemp__hs_remote_kvs(l->hs, &l->kvs_len);
        l->auth = aemp__hs_recv_method(l->hs);
        aemp_hs_free(l->hs);
        l->hs = NULL;
    }
}

static void process_handshake(link_t *l)
{
    while (l->pub.state == LINK_HANDSHAKE) {
        unsigned before = aemp_hs_state(l->hs);
        size_t used = aemp_hs_feed(l->hs, aemp__buf_head(&l->in), aemp__buf_size(&l->in));
        aemp__buf_consume(&l->in, used);
        unsigned st = aemp_hs_state(l->hs);
        if (st & AEMP_HS_FAILED) {
            /* whole lines the engine queued before failing (our auth line,
             * held back until now on an accepting link) still go out, as
             * from a Perl node, so the peer can log the real reason */
            l->hold_auth = 0;
            drain_hs_output(l);
            link_send_last(l);
            l->pub.reason = aemp__hs_reason(l->hs);
            link_fail(l, aemp_hs_error(l->hs));
            return;
        }
        if ((st & AEMP_HS_GREETED) && !(before & AEMP_HS_GREETED)) {
            const char *remote = aemp_hs_remote_noderef(l->hs);
            int g = aemp__link_greeted(&l->pub, remote);
            if (g == 1) return;
            if (g == 2) {
                char m[AEMP_HS_MAX_LINE + 64];
                snprintf(m, sizeof m, "%s already connected, not connecting again.", remote);
                aemp_hs_fail(l->hs, AEMP_EPROTO, m);
                continue; /* fails below, after what is queued went out */
            }
        }
        if (st & (AEMP_HS_TLS_CLIENT | AEMP_HS_TLS_SERVER)) {
            if (!l->tls) tls_start(l, (st & AEMP_HS_TLS_SERVER) != 0);
            return;
        }
        drain_hs_output(l);
        if (st & AEMP_HS_DONE) {
            hs_list_remove(l); /* verified: no longer counted */
            if (!l->pub.outgoing && aemp__link_verified(&l->pub)) {
                if (l->pub.state == LINK_HELD) link_rearm_timer(l); /* held_until */
                return;
            }
            link_go_up(l);
            if (l->pub.state == LINK_UP) process_data(l);
            return;
        }
        if (!used) return;
    }
}

/* After a plain read: an emptied input buffer goes, and so do the
 * values kept for decoding the next message (an idle link holds none;
 * the next read takes new ones). */
static void shrink_in(link_t *l)
{
    if (aemp__buf_size(&l->in)) return;
    if (l->in.cap) aemp__buf_free(&l->in);
    aemp__recycle_free(&l->fin.recycle);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    link_t *l = w->data;
    aemp_node_t *n = l->pub.node;
    char tmp[READ_STEP];
    (void)revents;
    aemp__enter(n);
    if (l->deferred) {
        /* paused (deliver): only the peer's end is looked for */
        char c;
        ssize_t p = recv(l->fd, &c, 1, MSG_PEEK);
        if (p > 0) ev_io_stop(loop, w); /* data: read once resumed */
        else if (p == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            link_peer_gone(l, p == 0 ? 0 : errno);
        goto out;
    }
    ssize_t r = recv(l->fd, tmp, sizeof tmp, 0);
    if (l->pub.state == LINK_HELD) {
        /* a held link is mostly watched for its end: it goes quietly.
         * Its peer waits for our auth line and has nothing to say, so
         * what it sends meanwhile (with TLS: records such as session
         * tickets) is kept for later, up to two lines' worth. */
        if (r > 0) {
            l->held_bytes += (size_t)r;
            if (l->held_bytes > 2 * AEMP_HS_MAX_LINE) {
                link_close(l, "too much data while held", 1);
                goto out;
            }
            if (!l->tls ? aemp__buf_append(&l->in, tmp, (size_t)r)
                        : aemp__tls_feed(l->tls, tmp, (size_t)r))
                link_fail(l, "out of memory");
        } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            link_close(l, "closed while held", 1);
        }
        goto out;
    }
    if (r < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            link_fail(l, strerror(errno));
        goto out;
    }
    if (r == 0) {
        /* end of stream is reported as the Perl node of the dialect
         * reports it (2.02 tells a handshake from a data phase) */
        link_fail(l, l->pub.state == LINK_UP ? n->dialect->quirks.eof_text : "Broken pipe");
        goto out;
    }
    l->last_read = ev_now(loop);
    if (l->connecting) connected(l);
    if (l->tls) {
        if (aemp__tls_feed(l->tls, tmp, (size_t)r)) link_fail(l, "out of memory");
        else tls_pump(l);
        goto out;
    }
    if (l->in.cap == 0 && r < (ssize_t)sizeof tmp) {
        /* nothing kept from an earlier read, and all there was: the bytes
         * are processed where they are (`in` borrows the stack buffer;
         * nothing may grow or free it meanwhile, see tls_start) and only
         * what they leave incomplete is copied afterwards */
        l->in = (aemp__buf_t){tmp, 0, (size_t)r, 0};
    } else {
        if (aemp__buf_append(&l->in, tmp, (size_t)r)) {
            link_fail(l, "out of memory");
            goto out;
        }
        /* a full step: more is likely waiting, taken now (up to
         * READ_CHUNK); the end of the stream or an error shows at the
         * next wakeup */
        for (size_t got = (size_t)r; r == (ssize_t)sizeof tmp && got < READ_CHUNK; got += (size_t)r) {
            r = recv(l->fd, tmp, sizeof tmp, MSG_DONTWAIT);
            if (r <= 0) break;
            if (aemp__buf_append(&l->in, tmp, (size_t)r)) {
                link_fail(l, "out of memory");
                goto out;
            }
        }
    }
    if (l->pub.state == LINK_HANDSHAKE) process_handshake(l);
    else if (l->pub.state == LINK_UP) process_data(l);
    if (l->in.data == tmp) {
        /* the end of the borrowing: what is left is kept, copied by the
         * buffer itself (a closed link, or nothing left, keeps nothing) */
        if (l->pub.state == LINK_DEAD || !aemp__buf_size(&l->in)) l->in = (aemp__buf_t){0};
        else if (aemp__buf_reserve(&l->in, 0)) {
            l->in = (aemp__buf_t){0};
            link_fail(l, "out of memory");
        }
    }
    /* an incomplete text larger than the limit is refused by the framer;
     * this guards the handshake phase, where the engine buffers lines */
    if (l->pub.state != LINK_DEAD && !l->tls) shrink_in(l);
out:
    aemp__leave(n);
}

static void link_rearm_timer(link_t *l)
{
    struct ev_loop *loop = l->pub.node->loop;
    ev_tstamp now = ev_now(loop), next;
    switch (l->pub.state) {
    case LINK_HANDSHAKE:
    case LINK_HELD:
        if (l->connecting) {
            next = l->last_read + l->pub.node->cfg.connect_timeout;
            break;
        }
        next = l->last_read + l->pub.node->hs_timeout;
        /* a peer that trickles bytes still has a deadline */
        if (l->pub.state == LINK_HANDSHAKE && l->pub.hs_since + l->pub.node->hs_timeout < next)
            next = l->pub.hs_since + l->pub.node->hs_timeout;
        if (l->pub.state == LINK_HELD && l->pub.held_until > 0 && l->pub.held_until < next)
            next = l->pub.held_until;
        break;
    case LINK_UP:
        next = l->last_write + l->keepalive;
        /* paused, the peer is not heard because we do not read */
        if (l->deferred) {
            if (l->deferred->until < next) next = l->deferred->until;
        } else if (l->read_timeout > 0 && l->last_read + l->read_timeout < next) {
            next = l->last_read + l->read_timeout;
        }
        break;
    default:
        return;
    }
    ev_timer_stop(loop, &l->timer);
    ev_timer_set(&l->timer, next > now ? next - now : 0.0, 0.0);
    ev_timer_start(loop, &l->timer);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    link_t *l = w->data;
    aemp_node_t *n = l->pub.node;
    ev_tstamp now = ev_now(loop);
    (void)revents;
    aemp__enter(n);
    if (l->connecting && l->pub.state == LINK_HANDSHAKE) {
        if (now - l->last_read >= n->cfg.connect_timeout) {
            link_fail(l, "Connection timed out");
            goto out;
        }
        link_rearm_timer(l);
        goto out;
    }
    switch (l->pub.state) {
    case LINK_HELD:
        if (aemp__link_may_release(&l->pub)) {
            /* what kept it waiting is gone (node.c kicks this timer) */
            link_go_up(l);
            if (l->pub.state == LINK_UP) process_data(l); /* what came behind its auth line */
            if (l->pub.state == LINK_UP && l->tls && !n->destroy_pending) tls_pump(l);
            goto out;
        }
        /* fall through */
    case LINK_HANDSHAKE:
        if (now - l->last_read >= n->hs_timeout ||
            (l->pub.state == LINK_HANDSHAKE && now - l->pub.hs_since >= n->hs_timeout)) {
            link_close(l, "Connection timed out", l->pub.state == LINK_HELD);
            goto out;
        }
        break;
    case LINK_UP:
        if (l->deferred && now >= l->deferred->until) {
            link_resume(l);
            if (l->pub.state != LINK_UP || n->destroy_pending) goto out;
        }
        if (!l->deferred && l->read_timeout > 0 && now - l->last_read >= l->read_timeout) {
            link_fail(l, "Connection timed out");
            goto out;
        }
        if (now - l->last_write >= l->keepalive && !aemp__buf_size(&l->out)) {
            aemp__link_probe(&l->pub);
            l->last_write = now; /* counted as written once queued */
        }
        break;
    default:
        goto out;
    }
    link_rearm_timer(l);
out:
    aemp__leave(n);
}

/*
 * Handshakes are request/answer exchanges: every line a peer sends is
 * answered by ours within microseconds, and that answer can carry the
 * acknowledgement. Linux acknowledges the first segments of a connection
 * at once ("quick ack"), and on loopback the bare ACK costs the sender's
 * CPU as much as a small segment. Asking for delayed ACKs lets them ride
 * on the next line; the kernel falls back to its own rule by itself once
 * a delayed ACK has had to go alone. Set before connect, it also makes
 * the last ACK of the TCP handshake ride on our greeting. Only timing
 * changes: not a byte on the wire. A listener hands it to the sockets
 * it accepts (node.c).
 */
void aemp__sock_ack_late(int fd)
{
#ifdef TCP_QUICKACK
    int zero = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
#else
    (void)fd;
#endif
}

#define NONCES_BEFORE_RNG 3 /* after the one drawn with the node */

static void link_start_handshake(link_t *l)
{
    aemp_node_t *n = l->pub.node;
    unsigned char nonce[AEMP_HS_NONCE_MAX];
    char framings[128];
    int err = 0;
    /* The first nonce was drawn with the node (node_int.h: drawn). A
     * node's own generator costs about two draws from the system's
     * (OpenSSL's) to set up: a node that makes a few links (a joiner)
     * draws from the system's, one that makes many gets its own. Where
     * it cannot be made, the system's, each time. */
    if (!n->drawn_nonce_used) {
        /* the first, drawn when the node was made */
        memcpy(nonce, n->drawn.nonce, sizeof nonce);
        OPENSSL_cleanse(n->drawn.nonce, sizeof n->drawn.nonce);
        n->drawn_nonce_used = 1;
    } else {
        if (!n->nonce_rng && ++n->nonces_drawn > NONCES_BEFORE_RNG) n->nonce_rng = aemp__rng_new();
        if (aemp__rng_bytes(n->nonce_rng, nonce, sizeof nonce)) {
            link_fail(l, "no randomness for the nonce");
            return;
        }
    }
    /* the framings configured (checked by aemp_node_new), else the
     * dialect's: offered and written in that order */
    size_t fo = 0;
    framings[0] = '\0';
    if (!n->hs_framings) {
        if (n->framings)
            fo = (size_t)snprintf(framings, sizeof framings, "%s", n->framings);
        else
            for (const aemp__framing_t *const *f = n->dialect->framings; *f; f++)
                fo += (size_t)snprintf(framings + fo, fo < sizeof framings ? sizeof framings - fo : 0,
                                       "%s%s", fo ? "," : "", (*f)->name);
        if (fo < sizeof framings) n->hs_framings = strdup(framings);
    }
    if (n->hs_framings) fo = strlen(n->hs_framings);
    const char *fl = n->hs_framings ? n->hs_framings : framings;
    aemp_hs_config_t hc = {
        .framings = fl,
        .framings_send = fl,
        .noderef = n->greet_name,
        .secret = n->secret,
        .secret_len = n->secret_len,
        .secret_md6 = n->secret_md6_ok ? n->secret_md6 : NULL,
        .timeout = n->timeout,
        .provider = n->provider,
        .peeraddr = l->pub.addr,
        .tls = n->tls_ctx != NULL,
        .nonce = nonce,
    };
    if (n->secret && !n->secret_sha3) n->secret_sha3 = aemp__hmac_sha3_new(n->secret, n->secret_len);
    l->hs = fo < sizeof framings ? aemp__hs_new(n->dialect->profile, &hc, &err) : NULL;
    if (!l->hs && !err) err = AEMP_EINVAL;
    aemp__hs_use_hmac_sha3(l->hs, n->secret_sha3);
    l->pub.greeted_as = strdup(n->greet_name);
    if (!l->pub.greeted_as && l->hs) err = AEMP_ENOMEM;
    if (!l->hs || !l->pub.greeted_as) {
        link_fail(l, aemp_strerror(err));
        return;
    }
    l->pub.state = LINK_HANDSHAKE;
    /* the connect left quick-ack mode on (above) */
    if (l->pub.outgoing) aemp__sock_ack_late(l->fd);
    l->last_read = l->last_write = l->pub.hs_since = ev_now(n->loop);
    if (!l->pub.outgoing) hs_list_add(l);
    drain_hs_output(l);
    /* whatever the engine queues next is an auth line */
    l->hold_auth = !l->pub.outgoing;
    ev_io_start(n->loop, &l->rio);
    link_rearm_timer(l);
}

static link_t *link_new(aemp_node_t *n, int fd, int outgoing, const char *addr)
{
    link_t *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->pub.node = n;
    l->fd = fd;
    l->pub.outgoing = outgoing;
    l->pub.state = outgoing ? LINK_CONNECTING : LINK_HANDSHAKE;
    snprintf(l->pub.addr, sizeof l->pub.addr, "%s", addr);
    l->keepalive = n->timeout - 3.0;
    l->fout.ops = n->dialect->framings[0];
    ev_io_init(&l->rio, read_cb, fd, EV_READ);
    ev_io_init(&l->wio, write_cb, fd, EV_WRITE);
    ev_init(&l->timer, timer_cb);
    l->rio.data = l->wio.data = l->timer.data = l;
    l->last_read = l->last_write = ev_now(n->loop);
    int one = 1;
#ifdef __linux__
    /* an accepted socket has it from its listener (node.c) */
    if (outgoing)
#endif
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    l->pub.serial = ++n->link_serial;
    l->pub.next = n->links;
    if (n->links) n->links->prev = &l->pub;
    n->links = &l->pub;
    n->nlinks++;
    if (!outgoing) link_start_handshake(l);
    return l;
}

aemp__link_t *aemp__link_new(aemp_node_t *n, int fd, int outgoing, const char *addr)
{
    link_t *l = link_new(n, fd, outgoing, addr);
    return l ? &l->pub : NULL;
}

static int is_loopback(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    return sa->ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

aemp__link_t *aemp__link_connect(aemp_node_t *n, aemp__peer_t *p, const char *ep)
{
    struct sockaddr_storage sa;
    socklen_t sl;
    if (aemp__ep_parse(ep, &sa, &sl)) return NULL;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return NULL;
    if (is_loopback(&sa)) {
        /* A connect to a port of this host nobody listens on, when that
         * port is in the ephemeral range, may be given the very same port
         * as its own and connect to itself (the handshake then refuses
         * to talk to itself). Closed, that connection sits in TIME_WAIT
         * on the port for a minute, and a node coming back on it (a
         * restarted seed) could not listen there - unless the socket
         * allowed address reuse, as a listener does. */
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    link_t *l = link_new(n, fd, 1, ep);
    if (!l) {
        close(fd);
        return NULL;
    }
    l->pub.peer = p;
    l->pub.peer_next = p->links;
    p->links = &l->pub;
    if (p->unasked_cost) attempt_count(l, p);
    /* (quick-ack mode is set off once connected: a connect turns it on) */
    int r = connect(fd, (struct sockaddr *)&sa, sl);
    if (r == 0 || errno == EINPROGRESS) {
        /* The greeting goes out without waiting for the connect to be
         * reported complete: on loopback and to a near peer it mostly is
         * by now, and the send then saves a wakeup, a getsockopt and an
         * epoll change per link. A connect still in progress makes the
         * send wait for writability as a full buffer would; one that
         * fails shows as the send's or the first read's error (the same
         * errno SO_ERROR holds). Until a byte has gone either way the
         * connect's deadline applies, not the handshake's. */
        l->connecting = r != 0;
        link_start_handshake(l);
    } else {
        link_fail(l, strerror(errno));
    }
    return &l->pub;
}

static void link_close(link_t *l, const char *reason, int silent)
{
    aemp_node_t *n = l->pub.node;
    if (l->pub.state == LINK_DEAD) return;
    int was_up = l->pub.state == LINK_UP;
    if (was_up && !silent) link_send_last(l);
    link_release(l); /* nothing more goes out */
    l->pub.state = LINK_DEAD;
    hs_list_remove(l);
    attempt_done(l);
    /* a dead link is freed once the callbacks unwind: the flush list must
     * not keep it (output queued in the same read that failed it) */
    if (l->in_flush) flush_unlink(l);
    ev_io_stop(n->loop, &l->rio);
    ev_io_stop(n->loop, &l->wio);
    ev_timer_stop(n->loop, &l->timer);
    close(l->fd);
    l->fd = -1;
    free(l->pub.error);
    l->pub.error = strdup(reason ? reason : "closed");
    if (!silent) aemp__log(n, AEMP_LOG_WARN, "%s: %s", l->pub.addr, l->pub.error ? l->pub.error : "closed");
    /* unlink from the node's live list */
    if (l->pub.prev) l->pub.prev->next = l->pub.next;
    else n->links = l->pub.next;
    if (l->pub.next) l->pub.next->prev = l->pub.prev;
    n->nlinks--;
    l->pub.next = n->dead;
    l->pub.prev = NULL;
    n->dead = &l->pub;
    aemp__link_died(&l->pub, silent);
}

void aemp__link_close(aemp__link_t *pl, const char *reason, int silent)
{
    link_close(PRIV(pl), reason, silent);
}
