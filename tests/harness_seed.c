/*
 * harness_seed.c - the scripted 2.02 seed (see harness_seed.h).
 */
#include "harness_seed.h"
#include "harness_node.h"
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

typedef struct sconn {
    hseed_t *s;
    struct sconn *next;
    int fd;
    ev_io rio, wio;
    aemp_hs_t *hs;
    int up, dead, dup_checked;
    char id[256];       /* the node id it greeted with */
    char *in, *out;
    size_t inlen, incap, outlen, outcap;
    aemp_framer_t fr;
    json_t *db;         /* its local database {F:{K:V}} (g_slave, g_upd) */
    json_t *mons;       /* families it watches: {F:true} */
} sconn_t;

struct hseed {
    char id[128], addr[64];
    char *secret;
    int lfd;
    ev_io lio;
    sconn_t *conns;
    json_t *own;        /* the seed's own entries {F:{K:V}} */
    json_t *view;       /* the global view {F:{K:V}} */
    json_t *got;        /* node id -> [texts] */
    json_t *ports;      /* our ports: name -> [watcher ids] */
    char last_error[256];
    int quiet;          /* g_find goes unanswered (2: the reads too) */
};

/* ------------------------------------------------------------------ */
/* output                                                              */

static void conn_write(sconn_t *c)
{
    while (c->outlen && !c->dead) {
        ssize_t w = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
        if (w > 0) {
            memmove(c->out, c->out + w, c->outlen - (size_t)w);
            c->outlen -= (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
        c->dead = 1;
    }
    if (c->outlen && !c->dead) ev_io_start(EV_DEFAULT, &c->wio);
    else ev_io_stop(EV_DEFAULT, &c->wio);
}

static void conn_queue(sconn_t *c, const void *p, size_t n)
{
    if (c->outlen + n > c->outcap) {
        c->outcap = (c->outlen + n) * 2;
        c->out = realloc(c->out, c->outcap);
        if (!c->out) abort();
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
    conn_write(c);
}

/* Sends v (stolen) as one message. */
static void conn_send(sconn_t *c, json_t *v)
{
    size_t n;
    char *t = v ? aemp_json_encode(v, &n) : NULL;
    if (t && c->up && !c->dead) conn_queue(c, t, n);
    free(t);
    json_decref(v);
}

static sconn_t *conn_of(const hseed_t *s, const char *id)
{
    for (sconn_t *c = s->conns; c; c = c->next)
        if (c->up && !c->dead && !strcmp(c->id, id)) return c;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* the database                                                        */

static json_t *obj_at(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_object(v)) {
        v = json_object();
        json_object_set_new(o, k, v);
    }
    return v;
}

/* ["","g_chg2",F,SET,DEL] to every monitor of F except `except`. */
static void tell_monitors(hseed_t *s, const char *f, json_t *set, json_t *del, sconn_t *except)
{
    for (sconn_t *c = s->conns; c; c = c->next)
        if (c != except && c->up && json_object_get(c->mons, f))
            conn_send(c, json_pack("[sssOO]", "", "g_chg2", f, set, del));
}

/* Who else holds F/K, newest connection last: its value, or NULL. */
static json_t *other_owner(hseed_t *s, const char *f, const char *k, sconn_t *gone)
{
    json_t *v = json_object_get(json_object_get(s->own, f), k);
    for (sconn_t *c = s->conns; c; c = c->next)
        if (c != gone && c->up) {
            json_t *o = json_object_get(json_object_get(c->db, f), k);
            if (o) v = o;
        }
    return v;
}

/* Entries set by c (or the seed: c NULL) in family f. */
static void db_update(hseed_t *s, sconn_t *c, const char *f, json_t *set, json_t *del)
{
    json_t *mine = obj_at(c ? c->db : s->own, f), *view = obj_at(s->view, f);
    json_t *oset = json_object(), *odel = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) {
        json_object_set(mine, k, v);
        json_object_set(view, k, v);
        json_object_set(oset, k, v);
    }
    for (size_t i = 0; i < json_array_size(del); i++) {
        const char *dk = json_string_value(json_array_get(del, i));
        if (!dk || !json_object_get(mine, dk)) continue;
        json_object_del(mine, dk);
        json_t *other = other_owner(s, f, dk, NULL);
        if (other) { /* another owner's value comes back */
            json_object_set(view, dk, other);
            json_object_set(oset, dk, other);
        } else {
            json_object_del(view, dk);
            json_array_append_new(odel, json_string(dk));
        }
    }
    if (json_object_size(oset) || json_array_size(odel)) tell_monitors(s, f, oset, odel, NULL);
    json_decref(oset);
    json_decref(odel);
}

/* c's link went down: its entries go, its monitors with it. */
static void db_drop(hseed_t *s, sconn_t *c)
{
    const char *f;
    json_t *fam;
    json_object_foreach(c->db, f, fam) {
        json_t *set = json_object(), *del = json_array(), *view = obj_at(s->view, f);
        const char *k;
        json_t *v;
        json_object_foreach(fam, k, v) {
            json_t *other = other_owner(s, f, k, c);
            if (other) {
                json_object_set(view, k, other);
                json_object_set(set, k, other);
            } else {
                json_object_del(view, k);
                json_array_append_new(del, json_string(k));
            }
        }
        tell_monitors(s, f, set, del, c);
        json_decref(set);
        json_decref(del);
    }
    json_object_clear(c->db);
    json_object_clear(c->mons);
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

static void g_reply(sconn_t *c, const char *tag, const char *f, const char *rid)
{
    json_t *fam = json_object_get(c->s->view, f), *r;
    const char *k;
    json_t *v;
    if (!strcmp(tag, "g_db_family")) {
        r = fam ? json_deep_copy(fam) : json_object();
    } else {
        r = json_array();
        json_object_foreach(fam, k, v)
            json_array_append_new(r, !strcmp(tag, "g_db_keys") ? json_string(k) : json_incref(v));
    }
    conn_send(c, json_pack("[ssso]", "", "g_reply", rid, r));
}

/* kil0 for every watcher of our port `name` (reason: an array, borrowed). */
static void port_killed(hseed_t *s, const char *name, json_t *reason)
{
    json_t *w = json_object_get(s->ports, name);
    for (size_t i = 0; i < json_array_size(w); i++) {
        sconn_t *c = conn_of(s, json_string_value(json_array_get(w, i)));
        json_t *m = json_pack("[ss]", "", "kil0");
        json_array_append_new(m, json_string(name));
        json_array_extend(m, reason);
        if (c) conn_send(c, m);
        else json_decref(m);
    }
    json_object_del(s->ports, name);
}

/* A node-port request ["", TAG, ARGS...] (msg borrowed). */
static void request(sconn_t *c, json_t *msg)
{
    hseed_t *s = c->s;
    const char *tag = json_string_value(json_array_get(msg, 1));
    const char *a2 = json_string_value(json_array_get(msg, 2));
    json_t *v3 = json_array_get(msg, 3), *v4 = json_array_get(msg, 4);
    if (!tag) return;
    if (!strcmp(tag, "g_slave") && json_is_object(json_array_get(msg, 2))) {
        const char *f;
        json_t *fam;
        json_object_foreach(json_array_get(msg, 2), f, fam) if (json_is_object(fam))
            db_update(s, c, f, fam, NULL);
    } else if (!strcmp(tag, "g_find") && a2 && !s->quiet) {
        json_t *l = json_object_get(json_object_get(s->view, "'l"), a2);
        conn_send(c, json_pack("[sssO]", "", "g_found", a2, l ? l : json_null()));
    } else if ((!strcmp(tag, "g_db_family") || !strcmp(tag, "g_db_keys") ||
                !strcmp(tag, "g_db_values")) &&
               a2 && json_is_string(v3) && s->quiet < 2) {
        g_reply(c, tag, a2, json_string_value(v3));
    } else if (!strcmp(tag, "g_mon1") && a2) {
        json_object_set_new(c->mons, a2, json_true());
        json_t *fam = json_object_get(s->view, a2);
        conn_send(c, json_pack("[sssO]", "", "g_chg1", a2, fam ? fam : json_null()));
    } else if (!strcmp(tag, "g_mon0") && a2) {
        json_object_del(c->mons, a2);
    } else if (!strcmp(tag, "g_upd") && a2) {
        db_update(s, c, a2, json_is_object(v3) ? v3 : NULL, json_is_array(v4) ? v4 : NULL);
    } else if (!strcmp(tag, "mon1") && a2) {
        json_t *w = json_object_get(s->ports, a2);
        if (w) {
            json_array_append_new(w, json_string(c->id));
        } else {
            char full[512];
            snprintf(full, sizeof full, "%s#%s", s->id, a2);
            conn_send(c, json_pack("[ssssss]", "", "kil0", a2, "no_such_port",
                                   "cannot monitor nonexistent port", full));
        }
    } else if (!strcmp(tag, "mon0") && a2) {
        json_t *w = json_object_get(s->ports, a2);
        for (size_t i = 0; i < json_array_size(w); i++)
            if (!strcmp(json_string_value(json_array_get(w, i)), c->id)) {
                json_array_remove(w, i);
                break;
            }
    } else if (!strcmp(tag, "kil1") && a2) {
        json_t *reason = json_array();
        for (size_t i = 3; i < json_array_size(msg); i++)
            json_array_append(reason, json_array_get(msg, i));
        port_killed(s, a2, reason);
        json_decref(reason);
    }
}

/* ------------------------------------------------------------------ */
/* links                                                               */

static void conn_data(sconn_t *c)
{
    hseed_t *s = c->s;
    size_t start, end;
    int r;
    while (!c->dead && (r = aemp_framer_next(&c->fr, c->in, c->inlen, &start, &end)) != 0) {
        if (r < 0) {
            c->dead = 1;
            break;
        }
        json_t *list = json_object_get(s->got, c->id);
        if (!list) json_object_set_new(s->got, c->id, list = json_array());
        json_array_append_new(list, json_stringn(c->in + start, end - start));
        json_t *msg = aemp_json_decode(c->in + start, end - start, 0, NULL, 0);
        memmove(c->in, c->in + end, c->inlen - end);
        c->inlen -= end;
        if (json_is_array(msg) && json_is_string(json_array_get(msg, 0)) &&
            !*json_string_value(json_array_get(msg, 0)))
            request(c, msg);
        json_decref(msg);
    }
    if (!c->dead && end) {
        memmove(c->in, c->in + end, c->inlen - end);
        c->inlen -= end;
    }
}

/* Runs the handshake on what came; the data phase once it is done. */
static void conn_handshake(sconn_t *c)
{
    hseed_t *s = c->s;
    for (;;) {
        unsigned st = aemp_hs_state(c->hs);
        if ((st & AEMP_HS_GREETED) && !c->dup_checked) {
            c->dup_checked = 1;
            snprintf(c->id, sizeof c->id, "%s", aemp_hs_remote_id(c->hs));
            if (conn_of(s, c->id)) {
                char m[400];
                snprintf(m, sizeof m, AEMP_HS_ALREADY_CONNECTED_FMT, c->id);
                aemp_hs_fail(c->hs, AEMP_EPROTO, m);
            }
        }
        const void *p;
        size_t n;
        while ((p = aemp_hs_out(c->hs, &n)) != NULL && n) {
            conn_queue(c, p, n);
            aemp_hs_out_ack(c->hs, n);
        }
        st = aemp_hs_state(c->hs);
        if (st & AEMP_HS_FAILED) {
            snprintf(s->last_error, sizeof s->last_error, "%s", aemp_hs_error(c->hs));
            c->dead = 1;
            return;
        }
        if (st & AEMP_HS_DONE) {
            c->up = 1;
            if (!json_object_get(s->got, c->id)) json_object_set_new(s->got, c->id, json_array());
            conn_send(c, json_pack("[ss]", "", "g_global"));
            conn_data(c);
            return;
        }
        size_t used = c->inlen ? aemp_hs_feed(c->hs, c->in, c->inlen) : 0;
        if (!used && !(aemp_hs_state(c->hs) & (AEMP_HS_DONE | AEMP_HS_FAILED)) &&
            !((aemp_hs_state(c->hs) & AEMP_HS_GREETED) && !c->dup_checked))
            return;
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
    }
}

static void conn_free(sconn_t *c)
{
    hseed_t *s = c->s;
    if (c->up) {
        c->up = 0;
        db_drop(s, c);
    }
    ev_io_stop(EV_DEFAULT, &c->rio);
    ev_io_stop(EV_DEFAULT, &c->wio);
    close(c->fd);
    aemp_hs_free(c->hs);
    json_decref(c->db);
    json_decref(c->mons);
    free(c->in);
    free(c->out);
    free(c);
}

/* Frees the links that died (not from inside their own processing). */
static void reap(hseed_t *s)
{
    for (sconn_t **pp = &s->conns; *pp;) {
        sconn_t *c = *pp;
        if (c->dead) {
            *pp = c->next;
            conn_free(c);
        } else {
            pp = &c->next;
        }
    }
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    sconn_t *c = w->data;
    hseed_t *s = c->s;
    for (;;) {
        if (c->incap - c->inlen < 65536) {
            c->incap = c->incap * 2 + 65536;
            if (!(c->in = realloc(c->in, c->incap))) abort();
        }
        ssize_t r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
        if (r > 0) {
            c->inlen += (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) c->dead = 1;
        break;
    }
    if (c->up) conn_data(c);
    else if (c->hs) conn_handshake(c);
    reap(s);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    sconn_t *c = w->data;
    conn_write(c);
    reap(c->s);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    hseed_t *s = w->data;
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    int fd = accept(s->lfd, (struct sockaddr *)&peer, &pl);
    if (fd < 0) return;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    sconn_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->s = s;
    c->fd = fd;
    c->db = json_object();
    c->mons = json_object();
    aemp_framer_init(&c->fr, 0, 0);
    /* the pairs as the recorded seed wrote them (T01 conn 2) */
    char kv[160], ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    snprintf(kv, sizeof kv, "gproto=1;mproto=1;peeraddr=%s:%u;provider=AE-2.02", ip,
             ntohs(peer.sin_port));
    unsigned char nonce[AEMP_NONCE1_BYTES];
    aemp_random_bytes(nonce, sizeof nonce);
    aemp_hs_config_t hc = {.protocol = 1, .noderef = s->id, .secret = s->secret,
                           .secret_len = strlen(s->secret), .kv_override = kv, .nonce = nonce};
    c->hs = aemp_hs_new(&hc, NULL);
    ev_io_init(&c->rio, read_cb, fd, EV_READ);
    ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    ev_io_start(EV_DEFAULT, &c->rio);
    c->next = s->conns;
    s->conns = c;
    if (!c->hs) c->dead = 1;
    else conn_handshake(c);
    reap(s);
}

/* ------------------------------------------------------------------ */
/* the interface                                                       */

hseed_t *hseed_new(const char *id, const char *sec)
{
    hseed_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    snprintf(s->id, sizeof s->id, "%s", id);
    s->secret = strdup(sec);
    s->lfd = raw_listen("127.0.0.1", s->addr, sizeof s->addr);
    s->own = json_object();
    s->view = json_object();
    s->got = json_object();
    s->ports = json_object();
    if (s->lfd < 0) {
        hseed_free(s);
        return NULL;
    }
    fcntl(s->lfd, F_SETFL, fcntl(s->lfd, F_GETFL) | O_NONBLOCK);
    ev_io_init(&s->lio, accept_cb, s->lfd, EV_READ);
    s->lio.data = s;
    ev_io_start(EV_DEFAULT, &s->lio);
    /* its own 'l, as every node sets it */
    hseed_db_set(s, "'l", s->id, json_pack("[s]", s->addr));
    return s;
}

void hseed_free(hseed_t *s)
{
    if (!s) return;
    while (s->conns) {
        sconn_t *c = s->conns;
        s->conns = c->next;
        c->up = 0; /* no g_chg2 from a seed that is gone */
        conn_free(c);
    }
    if (s->lfd >= 0) {
        ev_io_stop(EV_DEFAULT, &s->lio);
        close(s->lfd);
    }
    json_decref(s->own);
    json_decref(s->view);
    json_decref(s->got);
    json_decref(s->ports);
    free(s->secret);
    free(s);
}

const char *hseed_addr(const hseed_t *s)
{
    return s->addr;
}

json_t *hseed_got(const hseed_t *s, const char *id)
{
    return json_object_get(s->got, id);
}

int hseed_count(const hseed_t *s, const char *id, const char *text)
{
    json_t *l = hseed_got(s, id);
    int n = 0;
    for (size_t i = 0; i < json_array_size(l); i++)
        n += !strcmp(json_string_value(json_array_get(l, i)), text);
    return n;
}

typedef struct {
    hseed_t *s;
    const char *id, *text;
    int count;
} gotw_t;

static int got_cond(void *ud)
{
    gotw_t *g = ud;
    return hseed_count(g->s, g->id, g->text) >= g->count;
}

int hseed_wait_got(hseed_t *s, const char *id, const char *text, int count, double secs)
{
    gotw_t g = {s, id, text, count};
    return run_until(got_cond, &g, secs);
}

int hseed_is_up(const hseed_t *s, const char *id)
{
    return conn_of(s, id) != NULL;
}

const char *hseed_last_error(const hseed_t *s)
{
    return s->last_error;
}

int hseed_send_raw(hseed_t *s, const char *id, const char *bytes, size_t len)
{
    sconn_t *c = conn_of(s, id);
    if (!c) return -1;
    conn_queue(c, bytes, len);
    reap(s);
    return 0;
}

int hseed_send(hseed_t *s, const char *id, const char *text)
{
    return hseed_send_raw(s, id, text, strlen(text));
}

void hseed_db_set(hseed_t *s, const char *family, const char *key, json_t *value)
{
    json_t *set = json_object();
    json_object_set_new(set, key, value ? value : json_null());
    db_update(s, NULL, family, set, NULL);
    json_decref(set);
}

void hseed_port(hseed_t *s, const char *name)
{
    json_object_set_new(s->ports, name, json_array());
}

void hseed_quiet(hseed_t *s, int quiet)
{
    s->quiet = quiet;
}

int hseed_count_db(const hseed_t *s, const char *id)
{
    json_t *got = hseed_got(s, id);
    int c = 0;
    for (size_t i = 0; i < json_array_size(got); i++)
        c += !strncmp(json_string_value(json_array_get(got, i)), "[\"\",\"g_slave\",{", 15);
    return c;
}

typedef struct {
    hseed_t *s;
    const char *id;
} regw_t;

static int registered(void *ud)
{
    regw_t *w = ud;
    return hseed_count_db(w->s, w->id) > 0;
}

int hseed_wait_registered(hseed_t *s, const char *id, double secs)
{
    regw_t w = {s, id};
    return run_until(registered, &w, secs);
}

void hrec_mon(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    hrec_t *r = ud;
    r->calls++;
    json_array_append(r->log, reason);
}

int hrec_has(void *ud)
{
    return ((hrec_t *)ud)->calls > 0;
}

const char *jtext(const json_t *v)
{
    static char buf[4096];
    char *t = v ? aemp_json_encode(v, NULL) : NULL;
    snprintf(buf, sizeof buf, "%s", t ? t : "(null)");
    free(t);
    return buf;
}
