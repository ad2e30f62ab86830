/*
 * db.c - the global database, client side (PROTOCOL-1.md §8): what this
 * node sets (its local database, which its master merges into the global
 * one), reads of a family through the master, and watches of families,
 * on the wire as 2.02's db_set, db_del, db_reg, db_family, db_keys,
 * db_values and db_mon put them. Without a master nothing is sent: the
 * next master gets the whole local database with g_slave, and every read
 * and watch that still waits.
 */
#include "p1.h"

#include <stdio.h>

typedef struct dbreq {
    struct dbreq *next, *prev; /* in the order asked */
    char id[24];
    const char *tag;   /* g_db_family, g_db_keys, g_db_values */
    char *family;
    aemp_db_reply_fn cb;
    void *ud;
    ev_tstamp deadline; /* then it ends unanswered (expiry_cb) */
} dbreq_t;

struct aemp_db_mon {
    struct aemp_db_mon *next;
    aemp_node_t *node;
    struct famwatch *fw;
    aemp_db_mon_fn cb;
    void *ud;
    int cancelled;
};

/* The watched families: what the master said they hold, and who watches. */
typedef struct famwatch {
    struct famwatch *next;
    char *family;
    json_t *cache;     /* object; NULL until the master answered */
    struct aemp_db_mon *mons;
    int busy;          /* callbacks running: cancellations are deferred */
    int answered;      /* the first g_chg1 came (and was told, even empty) */
} famwatch_t;

typedef struct dbreg {
    struct dbreg *next;
    char *family, *portid;
    aemp_mon_t *mon;
} dbreg_t;

typedef struct aemp__db {
    json_t *local;     /* {FAMILY: {KEY: VALUE}} */
    /* reads waiting for the master's g_reply, in the order asked (sent
     * again to a new master), and by id: a reply - or one for a read
     * never made - finds its read without a look at the others */
    dbreq_t *reqs, *reqs_tail;
    aemp__map_t byid;
    /* fires at the oldest read's deadline (reads are asked in order and
     * all wait as long): ends what is due, then waits for the next */
    ev_timer expiry;
    double read_timeout; /* AEMP_DB_READ_TIMEOUT, shorter in tests */
    unsigned long reply_visits; /* reads looked at by replies (tests) */
    unsigned long next_id;
    famwatch_t *watches;
    dbreg_t *regs;
} db_t;

/* A family name or key must travel as a JSON string (strict UTF-8). */
static int name_ok(const char *s)
{
    return s && aemp__utf8_valid(s, strlen(s));
}

static void expiry_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* The database client of a protocol-1 node (made on first use), or NULL. */
static db_t *db_of(aemp_node_t *n)
{
    aemp__p1_t *p1 = aemp__p1_of(n);
    if (!p1) return NULL;
    if (p1->db) return p1->db;
    db_t *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    if (!(d->local = json_object())) {
        free(d);
        return NULL;
    }
    d->read_timeout = AEMP_DB_READ_TIMEOUT;
    ev_init(&d->expiry, expiry_cb);
    d->expiry.data = n;
    p1->db = d;
    return d;
}

/* The database client when there is one, else NULL. */
static db_t *db_get(const aemp_node_t *n)
{
    aemp__p1_t *p1 = aemp__p1_of(n);
    return p1 ? p1->db : NULL;
}

/* What a call that cannot be made returns: AEMP_EINVAL on a protocol-1
 * node (its arguments), AEMP_ESTATE on any other. */
static int refused(const aemp_node_t *n)
{
    return aemp__p1_of(n) ? AEMP_EINVAL : AEMP_ESTATE;
}

/* The local database for g_slave, with 'l (our listeners) put in: a new
 * reference, or NULL. */
json_t *aemp__db_local(aemp_node_t *n)
{
    db_t *d = db_of(n);
    json_t *db = d ? json_deep_copy(d->local) : NULL;
    size_t cnt;
    const char *const *ls = aemp__p1_listeners(n, &cnt);
    json_t *arr = json_array(), *l = json_object();
    for (size_t i = 0; arr && i < cnt; i++) json_array_append_new(arr, json_string(ls[i]));
    if (!db || !arr || !l || json_object_set_new(l, aemp_node_noderef(n), arr) ||
        json_object_set_new(db, "'l", l)) {
        json_decref(db);
        json_decref(arr);
        json_decref(l);
        return NULL;
    }
    return db;
}

static void send_req(aemp_node_t *n, dbreq_t *r)
{
    aemp__p1_to_master(n, json_pack("[sss]", r->tag, r->family, r->id));
}

void aemp__db_master_up(aemp_node_t *n)
{
    db_t *d = db_get(n);
    if (!d) return;
    for (dbreq_t *r = d->reqs; r; r = r->next) send_req(n, r);
    for (famwatch_t *fw = d->watches; fw; fw = fw->next)
        aemp__p1_to_master(n, json_pack("[ss]", "g_mon1", fw->family));
}

/* ------------------------------------------------------------------ */
/* the local database                                                  */

int aemp_db_set(aemp_node_t *n, const char *family, const char *key, json_t *value)
{
    db_t *d = db_of(n);
    if (!value) value = json_null();
    if (!d || !name_ok(family) || !name_ok(key)) {
        json_decref(value);
        return refused(n);
    }
    json_t *fam = json_object_get(d->local, family);
    if (!fam) {
        fam = json_object();
        if (!fam || json_object_set_new(d->local, family, fam)) {
            json_decref(value);
            return AEMP_ENOMEM;
        }
    }
    json_t *old = json_object_get(fam, key);
    if (old && json_equal(old, value)) {
        json_decref(value); /* only a change goes out, as in 2.02 */
        return 0;
    }
    if (json_object_set(fam, key, value)) {
        json_decref(value);
        return AEMP_ENOMEM;
    }
    json_t *set = json_object();
    if (set && !json_object_set_new(set, key, value)) /* steals value, also on failure */
        aemp__p1_to_master(n, json_pack("[sso]", "g_upd", family, set));
    else if (set)
        json_decref(set);
    else
        json_decref(value);
    return 0;
}

int aemp_db_del(aemp_node_t *n, const char *family, const char *key)
{
    db_t *d = db_of(n);
    if (!d || !name_ok(family) || !name_ok(key)) return refused(n);
    json_t *fam = json_object_get(d->local, family);
    if (!fam || !json_object_get(fam, key)) return AEMP_ENOENT;
    json_object_del(fam, key);
    if (!json_object_size(fam)) json_object_del(d->local, family);
    aemp__p1_to_master(n, json_pack("[ssn[s]]", "g_upd", family, key));
    return 0;
}

static void reg_port_died(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    db_t *d = db_get(n);
    dbreg_t *g = ud;
    for (dbreg_t **pp = &d->regs; *pp; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    aemp_db_del(n, g->family, g->portid);
    free(g->family);
    free(g->portid);
    free(g);
}

int aemp_db_reg(aemp_node_t *n, const char *family, const char *portid, json_t *value)
{
    db_t *d = db_of(n);
    if (!d || !name_ok(family) || !name_ok(portid)) {
        json_decref(value);
        return refused(n);
    }
    dbreg_t *g = calloc(1, sizeof *g);
    if (!g || !(g->family = strdup(family)) || !(g->portid = strdup(portid))) {
        if (g) free(g->family);
        free(g);
        json_decref(value);
        return AEMP_ENOMEM;
    }
    int rc = aemp_db_set(n, family, portid, value);
    if (!rc && !(g->mon = aemp_mon(n, portid, reg_port_died, g))) rc = AEMP_EINVAL;
    if (rc) {
        free(g->family);
        free(g->portid);
        free(g);
        return rc;
    }
    g->next = d->regs;
    d->regs = g;
    return 0;
}

/* ------------------------------------------------------------------ */
/* reads                                                               */

/* Waits for the oldest read's deadline (nothing when none waits). */
static void expiry_arm(aemp_node_t *n, db_t *d)
{
    ev_timer_stop(n->loop, &d->expiry); /* (a callback may have armed it) */
    if (!d->reqs) return;
    ev_tstamp left = d->reqs->deadline - ev_now(n->loop);
    ev_timer_set(&d->expiry, left > 0 ? left : 0, 0);
    ev_timer_start(n->loop, &d->expiry);
}

static void req_free(dbreq_t *r)
{
    free(r->family);
    free(r);
}

/* Takes r out of the reads waiting (the list and the map). */
static void req_take(db_t *d, dbreq_t *r)
{
    aemp__map_del(&d->byid, r->id);
    if (r->prev) r->prev->next = r->next;
    else d->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    else d->reqs_tail = r->prev;
}

/* Reads unanswered for read_timeout end: each callback runs with NULL
 * (a master that never answers cannot make them pile up). */
static void expiry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    aemp_node_t *n = w->data;
    db_t *d = db_get(n);
    ev_tstamp now = ev_now(loop);
    (void)revents;
    aemp__enter(n);
    unsigned long ended = 0;
    while (d->reqs && d->reqs->deadline <= now && !n->destroy_pending) {
        dbreq_t *r = d->reqs;
        req_take(d, r);
        ended++;
        r->cb(n, r->family, NULL, r->ud);
        req_free(r);
    }
    if (ended && !n->destroy_pending)
        aemp__log(n, AEMP_LOG_WARN, "db: %lu read%s had no answer from the master in %g s: ended",
                  ended, ended == 1 ? "" : "s", d->read_timeout);
    if (!n->destroy_pending) expiry_arm(n, d);
    aemp__leave(n);
}

static int db_read(aemp_node_t *n, const char *tag, const char *family, aemp_db_reply_fn cb,
                   void *ud)
{
    db_t *d = db_of(n);
    if (!d || !name_ok(family) || !cb) return refused(n);
    dbreq_t *r = calloc(1, sizeof *r);
    if (!r || !(r->family = strdup(family))) {
        free(r);
        return AEMP_ENOMEM;
    }
    snprintf(r->id, sizeof r->id, "db%lu", ++d->next_id);
    r->tag = tag;
    r->cb = cb;
    r->ud = ud;
    r->deadline = ev_now(n->loop) + d->read_timeout;
    if (aemp__map_set(&d->byid, r->id, r)) {
        req_free(r);
        return AEMP_ENOMEM;
    }
    r->prev = d->reqs_tail;
    if (d->reqs_tail) d->reqs_tail->next = r;
    else d->reqs = r;
    d->reqs_tail = r;
    if (!ev_is_active(&d->expiry)) expiry_arm(n, d);
    send_req(n, r);
    return 0;
}

int aemp_db_family(aemp_node_t *n, const char *family, aemp_db_reply_fn cb, void *ud)
{
    return db_read(n, "g_db_family", family, cb, ud);
}

int aemp_db_keys(aemp_node_t *n, const char *family, aemp_db_reply_fn cb, void *ud)
{
    return db_read(n, "g_db_keys", family, cb, ud);
}

int aemp_db_values(aemp_node_t *n, const char *family, aemp_db_reply_fn cb, void *ud)
{
    return db_read(n, "g_db_values", family, cb, ud);
}

/* ["", "g_reply", ID, RESULT] from the master. */
void aemp__db_reply(aemp_node_t *n, const char *id, json_t *result)
{
    db_t *d = db_get(n);
    dbreq_t *r = d ? aemp__map_get(&d->byid, id) : NULL;
    if (!r) return; /* (no read of ours, or one that ended: ignored) */
    d->reply_visits++;
    req_take(d, r);
    int want_obj = !strcmp(r->tag, "g_db_family");
    if (want_obj ? json_is_object(result) : json_is_array(result)) {
        r->cb(n, r->family, result, r->ud);
    } else {
        json_t *empty = want_obj ? json_object() : json_array();
        if (empty) r->cb(n, r->family, empty, r->ud);
        json_decref(empty);
    }
    req_free(r);
}

unsigned long aemp__db_reply_visits(aemp_node_t *n)
{
    db_t *d = db_get(n);
    return d ? d->reply_visits : 0;
}

size_t aemp__db_reads_waiting(aemp_node_t *n)
{
    db_t *d = db_get(n);
    return d ? d->byid.count : 0;
}

void aemp__db_set_read_timeout(aemp_node_t *n, double seconds)
{
    db_t *d = db_of(n);
    if (d) d->read_timeout = seconds;
}

/* ------------------------------------------------------------------ */
/* watches                                                             */

static famwatch_t *watch_find(db_t *d, const char *family)
{
    for (famwatch_t *fw = d->watches; fw; fw = fw->next)
        if (!strcmp(fw->family, family)) return fw;
    return NULL;
}

aemp_db_mon_t *aemp_db_mon(aemp_node_t *n, const char *family, aemp_db_mon_fn cb, void *ud)
{
    db_t *d = db_of(n);
    if (!d || !name_ok(family) || !cb) return NULL;
    struct aemp_db_mon *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    famwatch_t *fw = watch_find(d, family);
    if (!fw) {
        fw = calloc(1, sizeof *fw);
        if (!fw || !(fw->family = strdup(family))) {
            free(fw);
            free(m);
            return NULL;
        }
        fw->next = d->watches;
        d->watches = fw;
        aemp__p1_to_master(n, json_pack("[ss]", "g_mon1", family));
    }
    m->node = n;
    m->fw = fw;
    m->cb = cb;
    m->ud = ud;
    m->next = fw->mons;
    fw->mons = m;
    return m;
}

static void watch_free(famwatch_t *fw)
{
    while (fw->mons) {
        struct aemp_db_mon *m = fw->mons;
        fw->mons = m->next;
        free(m);
    }
    json_decref(fw->cache);
    free(fw->family);
    free(fw);
}

/* Drops cancelled monitors, and the family's watch when none is left. */
static void watch_prune(aemp_node_t *n, famwatch_t *fw)
{
    db_t *d = db_get(n);
    if (fw->busy) return;
    for (struct aemp_db_mon **pp = &fw->mons; *pp;) {
        if ((*pp)->cancelled) {
            struct aemp_db_mon *m = *pp;
            *pp = m->next;
            free(m);
        } else {
            pp = &(*pp)->next;
        }
    }
    if (fw->mons) return;
    for (famwatch_t **pp = &d->watches; *pp; pp = &(*pp)->next)
        if (*pp == fw) {
            *pp = fw->next;
            break;
        }
    aemp__p1_to_master(n, json_pack("[ss]", "g_mon0", fw->family));
    watch_free(fw);
}

void aemp_db_mon_cancel(aemp_db_mon_t *m)
{
    if (!m) return;
    m->cancelled = 1;
    watch_prune(m->node, m->fw);
}

/* Applies SET (object) and DEL (array of keys) to the watch's cache and
 * tells its monitors which keys were added, changed and deleted. */
static void watch_apply(aemp_node_t *n, famwatch_t *fw, json_t *set, json_t *del, int force)
{
    json_t *added = json_array(), *changed = json_array(), *deleted = json_array();
    if (!fw->cache) fw->cache = json_object();
    if (!added || !changed || !deleted || !fw->cache) goto out;
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) {
        json_t *old = json_object_get(fw->cache, k);
        if (old && json_equal(old, v)) continue;
        json_array_append_new(old ? changed : added, json_string(k));
        json_object_set(fw->cache, k, v);
    }
    for (size_t i = 0; i < json_array_size(del); i++) {
        const char *dk = json_string_value(json_array_get(del, i));
        if (dk && json_object_get(fw->cache, dk)) {
            json_array_append_new(deleted, json_string(dk));
            json_object_del(fw->cache, dk);
        }
    }
    if (!force && !json_array_size(added) && !json_array_size(changed) && !json_array_size(deleted))
        goto out;
    fw->busy++;
    for (struct aemp_db_mon *m = fw->mons; m && !n->destroy_pending; m = m->next)
        if (!m->cancelled) m->cb(n, fw->family, fw->cache, added, changed, deleted, m->ud);
    fw->busy--;
    if (!n->destroy_pending) watch_prune(n, fw);
out:
    json_decref(added);
    json_decref(changed);
    json_decref(deleted);
}

/* ["", "g_chg1", FAMILY, HASH]: the whole family (null: it has nothing). */
void aemp__db_chg1(aemp_node_t *n, const char *family, json_t *hash)
{
    db_t *d = db_get(n);
    famwatch_t *fw = d ? watch_find(d, family) : NULL;
    if (!fw) return;
    /* what the cache holds and the new hash lacks is gone */
    json_t *del = json_array();
    const char *k;
    json_t *v;
    if (fw->cache && del)
        json_object_foreach(fw->cache, k, v) if (!json_object_get(hash, k))
            json_array_append_new(del, json_string(k));
    json_t *set = json_is_object(hash) ? json_incref(hash) : json_object();
    /* the first answer is told even when the family is empty or absent */
    int first = !fw->answered;
    fw->answered = 1;
    if (set && del) watch_apply(n, fw, set, del, first);
    json_decref(set);
    json_decref(del);
}

/* ["", "g_chg2", FAMILY, SET, DEL]. */
void aemp__db_chg2(aemp_node_t *n, const char *family, json_t *set, json_t *del)
{
    db_t *d = db_get(n);
    famwatch_t *fw = d ? watch_find(d, family) : NULL;
    if (fw && json_is_object(set) && (json_is_array(del) || json_is_null(del)))
        watch_apply(n, fw, set, del, 0);
}

void aemp__db_free(aemp_node_t *n)
{
    db_t *d = db_get(n);
    if (!d) return;
    ev_timer_stop(n->loop, &d->expiry);
    while (d->reqs) {
        dbreq_t *r = d->reqs;
        d->reqs = r->next;
        req_free(r);
    }
    aemp__map_free(&d->byid);
    while (d->watches) {
        famwatch_t *fw = d->watches;
        d->watches = fw->next;
        watch_free(fw);
    }
    while (d->regs) {
        dbreg_t *g = d->regs;
        d->regs = g->next;
        free(g->family);
        free(g->portid);
        free(g);
    }
    json_decref(d->local);
    free(d);
    aemp__p1_of(n)->db = NULL;
}
