/*
 * harness_perl0.c - the scripted Perl 0.4 peer (see harness_perl0.h).
 */
#include "harness_perl0.h"
#include "harness_raw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct plink {
    perl0_t *pp;
    struct plink *next;
    int fd;
    int outgoing;
    int verified;
    ev_io rio, wio;
    aemp_hs_t *hs;
    aemp_framer_t fr;
    char *in, *out;
    size_t inlen, incap, outlen, outcap;
} plink_t;

struct perl0 {
    int lfd;
    ev_io accept_w;
    char noderef[64];
    char secret[256];
    plink_t *links;
    plink_t *transport; /* its link to the peer node */
    char peer[128];     /* the peer node's noderef */
    char *queue;        /* messages waiting for a link */
    size_t qlen, qcap;
    unsigned char got[4096];
    int replies, verified, replaced, connects;
};

static void put(char **b, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *b = realloc(*b, *cap);
    }
    memcpy(*b + *len, p, n);
    *len += n;
}

static void link_free(plink_t *l)
{
    perl0_t *pp = l->pp;
    for (plink_t **pl = &pp->links; *pl; pl = &(*pl)->next)
        if (*pl == l) {
            *pl = l->next;
            break;
        }
    if (pp->transport == l) pp->transport = NULL;
    ev_io_stop(EV_DEFAULT, &l->rio);
    ev_io_stop(EV_DEFAULT, &l->wio);
    close(l->fd);
    aemp_hs_free(l->hs);
    free(l->in);
    free(l->out);
    free(l);
}

static void flush(plink_t *l)
{
    while (l->outlen) {
        ssize_t w = send(l->fd, l->out, l->outlen, MSG_NOSIGNAL);
        if (w <= 0) break;
        memmove(l->out, l->out + w, l->outlen - (size_t)w);
        l->outlen -= (size_t)w;
    }
    if (l->outlen) ev_io_start(EV_DEFAULT, &l->wio);
    else ev_io_stop(EV_DEFAULT, &l->wio);
}

static void perl_connect(perl0_t *pp);

/* R3: an error of its link makes it connect again at once; an attempt
 * that failed before it was verified is no link. */
static void link_error(plink_t *l)
{
    perl0_t *pp = l->pp;
    int was_transport = pp->transport == l;
    link_free(l);
    if (was_transport) perl_connect(pp);
}

/* Sends a message text on its link, or queues it and connects. */
static void perl_send(perl0_t *pp, const char *text)
{
    if (pp->transport) {
        put(&pp->transport->out, &pp->transport->outlen, &pp->transport->outcap, text,
            strlen(text));
        flush(pp->transport);
    } else {
        put(&pp->queue, &pp->qlen, &pp->qcap, text, strlen(text));
        perl_connect(pp);
    }
}

static void on_message(perl0_t *pp, json_t *m)
{
    const char *id = json_string_value(json_array_get(m, 0));
    if (!id) return;
    if (!*id) {
        const char *tag = json_string_value(json_array_get(m, 1));
        const char *reply = json_string_value(json_array_get(m, 2));
        if (tag && !strcmp(tag, "time") && reply) {
            /* [REPLY-ELEMENTS..., TIME] to the port REPLY */
            const char *h = strchr(reply, '#');
            json_t *r = json_array();
            json_array_append_new(r, json_string(h ? h + 1 : ""));
            for (size_t i = 3; i < json_array_size(m); i++) json_array_append(r, json_array_get(m, i));
            json_array_append_new(r, json_real(ev_time()));
            char *t = aemp_json_encode(r, NULL);
            if (t) perl_send(pp, t);
            free(t);
            json_decref(r);
        }
        return;
    }
    if (!strcmp(id, "pp")) {
        json_int_t i = json_integer_value(json_array_get(m, 2));
        if (i >= 0 && i < (json_int_t)sizeof pp->got && !pp->got[i]) {
            pp->got[i] = 1;
            pp->replies++;
        }
    }
}

static void became_link(plink_t *l)
{
    perl0_t *pp = l->pp;
    l->verified = 1;
    pp->verified++;
    if (pp->transport && pp->transport != l) {
        /* R2: the old link goes, and it connects again at once, before it
         * takes the new one */
        pp->replaced++;
        link_free(pp->transport);
        perl_connect(pp);
    }
    pp->transport = l;
    snprintf(pp->peer, sizeof pp->peer, "%s", aemp_hs_remote_noderef(l->hs));
    if (pp->qlen) {
        put(&l->out, &l->outlen, &l->outcap, pp->queue, pp->qlen);
        pp->qlen = 0;
        flush(l);
    }
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    plink_t *l = w->data;
    (void)loop;
    (void)revents;
    if (l->inlen + 65536 > l->incap) {
        l->incap = l->inlen + 65536;
        l->in = realloc(l->in, l->incap);
    }
    ssize_t r = recv(l->fd, l->in + l->inlen, l->incap - l->inlen, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r <= 0) {
        link_error(l);
        return;
    }
    l->inlen += (size_t)r;
    if (!l->verified) {
        size_t used = aemp_hs_feed(l->hs, l->in, l->inlen);
        memmove(l->in, l->in + used, l->inlen - used);
        l->inlen -= used;
        const void *p;
        size_t n;
        while ((p = aemp_hs_out(l->hs, &n)) != NULL) {
            put(&l->out, &l->outlen, &l->outcap, p, n);
            aemp_hs_out_ack(l->hs, n);
        }
        flush(l);
        unsigned st = aemp_hs_state(l->hs);
        if (st & AEMP_HS_FAILED) {
            link_error(l);
            return;
        }
        if (!(st & AEMP_HS_DONE)) return;
        became_link(l);
        aemp_framer_init(&l->fr, 0, 0);
    }
    size_t s, e;
    int k;
    while ((k = aemp_framer_next(&l->fr, l->in, l->inlen, &s, &e)) == 1) {
        json_t *m = aemp_json_decode(l->in + s, e - s, 0, NULL, 0);
        memmove(l->in, l->in + e, l->inlen - e);
        l->inlen -= e;
        if (m) on_message(l->pp, m);
        json_decref(m);
    }
    if (k < 0) link_error(l);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    flush(w->data);
}

static plink_t *link_new(perl0_t *pp, int fd, int outgoing)
{
    plink_t *l = calloc(1, sizeof *l);
    l->pp = pp;
    l->fd = fd;
    l->outgoing = outgoing;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    unsigned char nonce[AEMP_NONCE_BYTES];
    aemp_random_bytes(nonce, sizeof nonce);
    aemp_hs_config_t hc = {.noderef = pp->noderef, .secret = pp->secret,
                           .secret_len = strlen(pp->secret), .timeout = 30,
                           .provider = "AE-0.4", .framings = "json,storable", .nonce = nonce};
    l->hs = aemp_hs_new(&hc, NULL);
    const void *p;
    size_t n;
    while ((p = aemp_hs_out(l->hs, &n)) != NULL) {
        put(&l->out, &l->outlen, &l->outcap, p, n);
        aemp_hs_out_ack(l->hs, n);
    }
    ev_io_init(&l->rio, read_cb, fd, EV_READ);
    ev_io_init(&l->wio, write_cb, fd, EV_WRITE);
    l->rio.data = l->wio.data = l;
    ev_io_start(EV_DEFAULT, &l->rio);
    l->next = pp->links;
    pp->links = l;
    flush(l);
    return l;
}

static void perl_connect(perl0_t *pp)
{
    if (!*pp->peer) return;
    pp->connects++;
    raw_t r;
    if (raw_open(&r, pp->peer)) return;
    /* raw_open hands a connected, non-blocking socket */
    int fd = dup(r.fd);
    raw_close(&r);
    link_new(pp, fd, 1);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    perl0_t *pp = w->data;
    (void)loop;
    (void)revents;
    int fd = accept(pp->lfd, NULL, NULL);
    if (fd >= 0) link_new(pp, fd, 0);
}

perl0_t *perl0_new(const char *secret)
{
    perl0_t *pp = calloc(1, sizeof *pp);
    snprintf(pp->secret, sizeof pp->secret, "%s", secret);
    pp->lfd = raw_listen("127.0.0.1", pp->noderef, sizeof pp->noderef);
    if (pp->lfd < 0) {
        free(pp);
        return NULL;
    }
    ev_io_init(&pp->accept_w, accept_cb, pp->lfd, EV_READ);
    pp->accept_w.data = pp;
    ev_io_start(EV_DEFAULT, &pp->accept_w);
    return pp;
}

void perl0_free(perl0_t *pp)
{
    if (!pp) return;
    while (pp->links) link_free(pp->links);
    ev_io_stop(EV_DEFAULT, &pp->accept_w);
    close(pp->lfd);
    free(pp->queue);
    free(pp);
}

const char *perl0_noderef(const perl0_t *pp) { return pp->noderef; }

void perl0_send_time_requests(perl0_t *pp, const char *node, int n)
{
    if (!*pp->peer) snprintf(pp->peer, sizeof pp->peer, "%s", node);
    char t[256];
    for (int i = 0; i < n; i++) {
        snprintf(t, sizeof t, "[\"\",\"time\",\"%s#pp\",\"r\",%d]", pp->noderef, i);
        perl_send(pp, t);
    }
}

int perl0_replies(const perl0_t *pp) { return pp->replies; }
int perl0_links_verified(const perl0_t *pp) { return pp->verified; }
int perl0_links_replaced(const perl0_t *pp) { return pp->replaced; }
int perl0_connects(const perl0_t *pp) { return pp->connects; }
