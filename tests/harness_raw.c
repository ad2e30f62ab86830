/*
 * harness_raw.c - the raw test peer (see harness_raw.h).
 */
#include "harness_raw.h"
#include "harness_node.h"

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

static int parse_ep(const char *ep, struct sockaddr_in *sa)
{
    char ip[64];
    const char *colon = strrchr(ep, ':');
    if (!colon || (size_t)(colon - ep) >= sizeof ip) return -1;
    memcpy(ip, ep, (size_t)(colon - ep));
    ip[colon - ep] = 0;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

void raw_adopt(raw_t *r, int fd)
{
    memset(r, 0, sizeof *r);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    char ip[INET_ADDRSTRLEN] = "?";
    if (!getsockname(fd, (struct sockaddr *)&me, &ml)) inet_ntop(AF_INET, &me.sin_addr, ip, sizeof ip);
    snprintf(r->addr, sizeof r->addr, "%s:%u", ip, ntohs(me.sin_port));
    r->fd = fd;
}

int raw_open(raw_t *r, const char *noderef)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    struct sockaddr_in sa;
    if (parse_ep(noderef, &sa)) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    /* on loopback the kernel completes the connect without the node */
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    raw_adopt(r, fd);
    return 0;
}

int raw_listen(const char *ip, char *ep, size_t eplen)
{
    struct sockaddr_in sa;
    char want[80];
    snprintf(want, sizeof want, "%s:0", ip);
    if (parse_ep(want, &sa)) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t sl = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&sa, &sl)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    snprintf(ep, eplen, "%s:%u", ip, ntohs(sa.sin_port));
    return fd;
}

void raw_close(raw_t *r)
{
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    free(r->in);
    r->in = NULL;
    r->inlen = r->incap = 0;
}

void raw_pump(raw_t *r)
{
    while (!r->closed && r->fd >= 0) {
        if (r->incap - r->inlen < 65536) {
            r->incap = r->incap ? r->incap * 2 : 65536;
            r->in = realloc(r->in, r->incap + 1);
            if (!r->in) abort();
        }
        ssize_t n = recv(r->fd, r->in + r->inlen, r->incap - r->inlen, 0);
        if (n > 0) {
            r->inlen += (size_t)n;
            r->in[r->inlen] = 0;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            r->closed = 1;
        break;
    }
}

void raw_consume(raw_t *r, size_t n)
{
    memmove(r->in, r->in + n, r->inlen - n);
    r->inlen -= n;
    if (r->in) r->in[r->inlen] = 0;
}

typedef struct raw_wait {
    raw_t *r;
    int lines; /* wait for this many LFs, or (0) for the close */
} raw_wait_t;

static int raw_cond(void *ud)
{
    raw_wait_t *w = ud;
    raw_pump(w->r);
    if (w->lines == 0) return w->r->closed;
    int n = 0;
    for (size_t i = 0; i < w->r->inlen; i++) n += w->r->in[i] == '\n';
    return n >= w->lines || w->r->closed;
}

int raw_wait_closed(raw_t *r, double secs)
{
    raw_wait_t w = {r, 0};
    return run_until(raw_cond, &w, secs);
}

/* The node's greeting is two lines. */
int raw_wait_lines(raw_t *r, int lines, double secs)
{
    raw_wait_t w = {r, lines};
    return run_until(raw_cond, &w, secs) && !r->closed;
}

typedef struct {
    raw_t *r;
    const char *s;
} raw_has_t;

static int raw_has_cond(void *ud)
{
    raw_has_t *h = ud;
    raw_pump(h->r);
    return h->r->in && strstr(h->r->in, h->s) != NULL;
}

int raw_wait_for(raw_t *r, const char *s, double secs)
{
    raw_has_t h = {r, s};
    return run_until(raw_has_cond, &h, secs);
}

/* See harness_raw.h. */
size_t raw_send(raw_t *r, const void *p, size_t n)
{
    size_t done = 0;
    double end = ev_time() + 20;
    while (done < n && !r->closed && ev_time() < end) {
        ssize_t w = send(r->fd, (const char *)p + done, n - done, MSG_NOSIGNAL);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            r->closed = 1;
            break;
        }
        ev_run(EV_DEFAULT, EVRUN_ONCE);
        raw_pump(r);
    }
    return done;
}

size_t raw_send_str(raw_t *r, const char *s)
{
    return raw_send(r, s, strlen(s));
}


/* One step of the engine against r: out what it has, in what came.
 * Returns its state. */
static unsigned hs_step(raw_t *r, aemp_hs_t *hs)
{
    const void *p;
    size_t n;
    while ((p = aemp_hs_out(hs, &n)) != NULL) {
        ssize_t w = send(r->fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) break;
        aemp_hs_out_ack(hs, (size_t)w);
    }
    raw_pump(r);
    if (r->inlen) raw_consume(r, aemp_hs_feed(hs, r->in, r->inlen));
    return aemp_hs_state(hs);
}

static void hs_error(aemp_hs_t *hs, char *err, size_t errlen)
{
    if (err && errlen) snprintf(err, errlen, "%s", aemp_hs_error(hs));
}

aemp_hs_t *raw_auth_begin(raw_t *r, const char *name, const char *sec, const char *auths_send,
                          char *err, size_t errlen)
{
    aemp_hs_config_t hc = {.noderef = name, .secret = sec, .secret_len = strlen(sec),
                           .auths_send = auths_send, .timeout = 30};
    return raw_auth_begin_cfg(r, &hc, err, errlen);
}

aemp_hs_t *raw_auth_begin_cfg(raw_t *r, const aemp_hs_config_t *cfg, char *err, size_t errlen)
{
    unsigned char nonce[AEMP_HS_NONCE_MAX];
    aemp_random_bytes(nonce, sizeof nonce);
    aemp_hs_config_t hc = *cfg;
    hc.nonce = nonce;
    aemp_hs_t *hs = aemp_hs_new(&hc, NULL);
    if (!hs) return NULL;
    double end = ev_time() + 10;
    while (ev_time() < end) {
        unsigned st = hs_step(r, hs);
        if (st & AEMP_HS_FAILED) break;
        /* the auth line is queued with the greeting's end: once nothing
         * waits to go out, it went */
        if ((st & (AEMP_HS_GREETED | AEMP_HS_DONE)) && !(st & AEMP_HS_SEND)) return hs;
        if (r->closed) break;
        ev_run(EV_DEFAULT, EVRUN_ONCE);
    }
    hs_error(hs, err, errlen);
    aemp_hs_free(hs);
    return NULL;
}

int raw_auth_end(raw_t *r, aemp_hs_t *hs, double secs, char *err, size_t errlen)
{
    int rc = -1;
    double end = ev_time() + secs;
    while (ev_time() < end) {
        unsigned st = hs_step(r, hs);
        if (st & AEMP_HS_DONE) {
            rc = 1;
            break;
        }
        if ((st & AEMP_HS_FAILED) || r->closed) {
            rc = 0;
            break;
        }
        ev_run(EV_DEFAULT, EVRUN_ONCE);
    }
    hs_error(hs, err, errlen);
    aemp_hs_free(hs);
    return rc;
}

int raw_auth(raw_t *r, const char *sec, const char *auths_send, char *err, size_t errlen)
{
    aemp_hs_t *hs = raw_auth_begin(r, "127.0.0.1:9", sec, auths_send, err, errlen);
    if (!hs) return r->closed || (err && *err) ? 0 : -1;
    return raw_auth_end(r, hs, 10, err, errlen);
}
