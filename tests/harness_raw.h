/*
 * harness_raw.h - a raw peer for tests: a non-blocking socket that plays the
 * other side of a link by hand (bytes of its own, or a handshake engine
 * under any name), while the node under test runs on the default loop.
 */
#ifndef AEMP_TRAW_H
#define AEMP_TRAW_H

#include "aemp.h"
#include <stddef.h>

typedef struct raw {
    int fd;
    char addr[64]; /* our end, as the node names it in its warnings */
    char *in;      /* what the node sent, NUL-terminated */
    size_t inlen, incap;
    int closed;
} raw_t;

/* Connects to the "IPV4:PORT" of noderef. Returns 0 or -1. */
int raw_open(raw_t *r, const char *noderef);
/* Takes an accepted or connected socket (made non-blocking here). */
void raw_adopt(raw_t *r, int fd);
void raw_close(raw_t *r);
/* Takes whatever the node sent; notes the end of the stream. */
void raw_pump(raw_t *r);
void raw_consume(raw_t *r, size_t n);
/* Run the loop until the node closed r / sent `lines` LFs in all (and
 * has not closed); return whether that happened within secs. */
int raw_wait_closed(raw_t *r, double secs);
int raw_wait_lines(raw_t *r, int lines, double secs);
/* Runs the loop until the node has sent s on r (within secs). */
int raw_wait_for(raw_t *r, const char *s, double secs);
/* Writes all of p, running the loop while the socket is full, until the
 * node closes. Returns the bytes written. */
size_t raw_send(raw_t *r, const void *p, size_t n);
size_t raw_send_str(raw_t *r, const char *s);

/* A handshake run by an engine greeting as `name`: begin returns it once
 * our auth line is out (NULL when the handshake failed first: error in
 * err); end waits up to secs for the node's auth line and returns 1 when
 * done, 0 when it failed, -1 on a timeout; it frees hs. */
aemp_hs_t *raw_auth_begin(raw_t *r, const char *name, const char *sec, const char *auths_send,
                          char *err, size_t errlen);
int raw_auth_end(raw_t *r, aemp_hs_t *hs, double secs, char *err, size_t errlen);
/* raw_auth_begin with an engine configured from cfg (its nonce is made
 * here): other framings, protocol 1... */
aemp_hs_t *raw_auth_begin_cfg(raw_t *r, const aemp_hs_config_t *cfg, char *err, size_t errlen);
/* Both, greeting as 127.0.0.1:9. */
int raw_auth(raw_t *r, const char *sec, const char *auths_send, char *err, size_t errlen);

/* A listening socket on "IPV4:PORT" (port 0: any; the chosen endpoint is
 * written to ep). Returns the fd or -1. */
int raw_listen(const char *ip, char *ep, size_t eplen);

#endif
