/*
 * gdb.c - the global database of a global node (PROTOCOL-1.md §8.3),
 * sans I/O: g_* requests in, messages to send out (see gdb.h). Every
 * request is checked whole (shape, names, limits) before anything
 * changes, so a dropped request leaves no trace.
 */
#include "gdb.h"
#include "aemp_int.h"
#include "map.h"

#include <openssl/crypto.h>
#include <stdio.h>

/* A family a shard holds keys of, and how many. */
typedef struct fam {
    char *name;
    size_t keys;
} fam_t;

/* What a node owns is kept flat, one object for all its families, keyed
 * by entry_key(FAMILY, KEY): a joined node holds a key or two, and an
 * object per family (with its hash table) would cost several times what
 * they hold. The view and the answers are made from the view, which
 * stays {FAMILY: {KEY: VALUE}}. */
typedef struct shard {
    char *node;          /* in the same allocation */
    json_t *db;          /* {entry_key(FAMILY, KEY): VALUE}, what node owns */
    /* the families it holds, for its limits (a global node's share has
     * none, and may hold many families: not counted) */
    fam_t *fams;
    size_t nfams;
    json_t *mons;        /* {FAMILY: null}, what node watches (NULL: none yet) */
    size_t bytes;        /* names and values in db */
    unsigned long seq;   /* when it last wrote */
    int slave;           /* registered with g_slave DB, or watches */
    int global;          /* announced itself with g_global */
    int own;             /* our own node's */
    /* the 'g keys it vouches for (when vouches(s)): all of our own, at
     * most AEMP_GDB_NODE_GLOBALS_MAX of a global peer's share, which
     * merges its slaves' databases and so holds as many as they set.
     * Unkeyed: that bounds it. */
    aemp__map_t vouching;
    /* a global peer's 'g keys over that bound, in the order it got them
     * (waiter_t; the map finds one when it goes): when one it vouches
     * for goes, the first of them takes its place. Keyed: a peer
     * chooses them, in numbers. (Their memory, a small allocation and a
     * map entry each, is not in bytes, the share's limit, no more than
     * the view's and holders' entries for each key are.) */
    aemp__map_t waiting;
    struct waiter *wait_head, *wait_tail;
    aemp__bucket_t changes; /* (global.c: what its changes may send) */
} shard_t;

/* A 'g key a global peer's share holds beyond the bound it vouches for. */
typedef struct waiter {
    struct waiter *prev, *next;
    char key[]; /* NUL-terminated */
} waiter_t;

/* Who holds a key. An entry of g->holders is a shard_t * when one shard
 * holds the key (most keys: a node's own), or a holders_t * with bit 0
 * set when two or more do; both come from malloc, so bit 0 of either is
 * free for the tag. s[] is in no particular order. */
typedef struct holders {
    size_t n, cap;
    shard_t *s[];
} holders_t;

struct aemp__gdb {
    char *self;
    json_t *view;        /* {FAMILY: {KEY: VALUE}}, merged */
    json_t *mons;        /* {FAMILY: {NODE: null}} */
    aemp__map_t shards;  /* node -> shard_t */
    aemp__map_t globals; /* node -> shard_t, the global ones */
    /* owner_key(FAMILY, KEY) -> the shards that hold it, for every key
     * a shard holds (see holders_t): a delete picks the next owner among
     * that key's holders, never by a walk of all shards. Its hash is
     * keyed (aemp__gdb_new). */
    aemp__map_t holders;
    unsigned long holder_visits; /* aemp__gdb_holder_visits */
    /* the global nodes to keep links to: each 'g key that our own share
     * or a global peer's vouches for (shard_t.vouching) -> how many do
     * (uintptr_t); a slave's 'g keys are in the view but vouch for
     * nobody here (its master's share vouches at other global nodes,
     * within its bound). Keys
     * added to it or gone from it since the driver last asked are in
     * g_dirty (aemp__gdb_g_drain), so that keeping the links costs
     * O(what changed). Both hashes are keyed. */
    aemp__map_t vouched, g_dirty;
    int g_all; /* a change could not be noted: the driver looks at all */
    unsigned char waiting_key[16]; /* the hash key of the shards' waiting maps */
    unsigned long seq;
    size_t bytes;
    size_t entries; /* in all shards */
};

/* The list of a g->holders entry h, or NULL when h is a single shard. */
static holders_t *hlist(void *h)
{
    return (uintptr_t)h & 1 ? (holders_t *)((uintptr_t)h - 1) : NULL;
}

static void *htag(holders_t *l)
{
    return (void *)((uintptr_t)l | 1);
}

/* ------------------------------------------------------------------ */
/* sizes                                                               */

/* About the length of v's compact JSON text; stops counting past limit. */
static size_t cost(const json_t *v, size_t limit)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return json_string_length(v) + 2;
    case JSON_INTEGER:
    case JSON_REAL: return 24;
    case JSON_ARRAY: {
        size_t c = 2;
        for (size_t i = 0; i < json_array_size(v) && c <= limit; i++)
            c += 1 + cost(json_array_get(v, i), limit - c);
        return c;
    }
    case JSON_OBJECT: {
        size_t c = 2;
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            if (c > limit) break;
            c += strlen(k) + 4 + cost(x, limit - c);
        }
        return c;
    }
    default: return 5;
    }
}

static size_t entry_cost(const char *key, const json_t *v)
{
    return strlen(key) + cost(v, (size_t)-1 / 2);
}

size_t aemp__gdb_cost(const char *key, const json_t *v)
{
    return entry_cost(key, v);
}

/* ------------------------------------------------------------------ */
/* set-up                                                              */

aemp__gdb_t *aemp__gdb_new(const char *self)
{
    aemp__gdb_t *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->self = strdup(self ? self : "");
    g->view = json_object();
    g->mons = json_object();
    /* the peers choose the families and keys: a keyed hash, so they cannot
     * pick names that all land in one chain (the view's objects are
     * jansson's, seeded the same way) */
    unsigned char key[16];
    if (!g->self || !g->view || !g->mons || aemp_random_bytes(key, sizeof key)) {
        aemp__gdb_free(g);
        return NULL;
    }
    aemp__map_key(&g->holders, key);
    aemp__map_key(&g->vouched, key);
    aemp__map_key(&g->g_dirty, key);
    memcpy(g->waiting_key, key, sizeof g->waiting_key);
    OPENSSL_cleanse(key, sizeof key);
    return g;
}

static void shard_free(shard_t *s)
{
    if (!s) return;
    json_decref(s->db);
    for (size_t i = 0; i < s->nfams; i++) free(s->fams[i].name);
    free(s->fams);
    json_decref(s->mons);
    aemp__map_free(&s->vouching);
    for (waiter_t *w = s->wait_head, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    aemp__map_free(&s->waiting);
    free(s);
}

void aemp__gdb_free(aemp__gdb_t *g)
{
    if (!g) return;
    aemp__map_iter_t it = {0};
    for (aemp__map_ent_t *e; (e = aemp__map_next(&g->shards, &it));) shard_free(e->value);
    aemp__map_free(&g->shards);
    aemp__map_free(&g->globals);
    aemp__map_iter_t ih = {0};
    for (aemp__map_ent_t *e; (e = aemp__map_next(&g->holders, &ih));) free(hlist(e->value));
    aemp__map_free(&g->holders);
    aemp__map_free(&g->vouched);
    aemp__map_free(&g->g_dirty);
    json_decref(g->view);
    json_decref(g->mons);
    free(g->self);
    free(g);
}

static shard_t *shard_get(aemp__gdb_t *g, const char *node, int create)
{
    shard_t *s = aemp__map_get(&g->shards, node);
    if (s || !create) return s;
    size_t len = strlen(node) + 1;
    if ((s = calloc(1, sizeof *s + len))) {
        s->node = memcpy(s + 1, node, len);
        s->own = !strcmp(node, g->self);
        aemp__map_key(&s->waiting, g->waiting_key);
    }
    if (!s || !(s->db = json_object()) ||
        aemp__map_set(&g->shards, node, s)) {
        shard_free(s);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* output                                                              */

/* Appends [dest, msg] to out (steals msg). Built by hand, as the
 * change messages below: every change makes them, and json_pack reads
 * its format each time (about 1 800 instructions a message; a join at
 * the seed 3 700 fewer without it). */
static int emit(json_t *out, const char *dest, json_t *msg)
{
    json_t *pair = msg ? json_array() : NULL;
    if (!pair || json_array_append_new(pair, json_string(dest))) {
        json_decref(pair);
        json_decref(msg);
        return AEMP_ENOMEM;
    }
    if (json_array_append_new(pair, msg)) { /* (msg taken even so) */
        json_decref(pair);
        return AEMP_ENOMEM;
    }
    return json_array_append_new(out, pair) ? AEMP_ENOMEM : 0;
}

/* The message [tag, family, set, del] (set and del borrowed), or NULL. */
static json_t *change_msg(const char *tag, const char *family, json_t *set, json_t *del)
{
    json_t *m = json_array();
    if (m && !json_array_append_new(m, json_string(tag)) &&
        !json_array_append_new(m, json_string(family)) && !json_array_append(m, set) &&
        !json_array_append(m, del))
        return m;
    json_decref(m);
    return NULL;
}

static int emit_globals(aemp__gdb_t *g, const char *except, json_t *out, json_t *msg)
{
    int rc = 0;
    aemp__map_iter_t it = {0};
    for (aemp__map_ent_t *e; !rc && (e = aemp__map_next(&g->globals, &it));) {
        shard_t *s = e->value;
        if (strcmp(s->node, except) && strcmp(s->node, g->self))
            rc = emit(out, s->node, json_incref(msg));
    }
    json_decref(msg);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the merge                                                           */

/* The key of family/key in g->holders and in a shard's db, "LEN:FAMILYKEY"
 * (buf: OWNER_KEY_MAX bytes). Names are at most AEMP_GDB_NAME_MAX bytes,
 * checked before anything is set; a longer one (a key a request only
 * deletes or asks for) gets "", which no entry has. */
#define OWNER_KEY_MAX (2 * AEMP_GDB_NAME_MAX + 24)
static const char *owner_key(char *buf, const char *family, const char *key)
{
    size_t fl = strlen(family), kl = strlen(key);
    if (fl > AEMP_GDB_NAME_MAX || kl > AEMP_GDB_NAME_MAX) return "";
    int n = snprintf(buf, OWNER_KEY_MAX, "%zu:", fl);
    memcpy(buf + n, family, fl);
    memcpy(buf + n + fl, key, kl + 1);
    return buf;
}

/* The family (into fam, AEMP_GDB_NAME_MAX + 1 bytes) and the key (the
 * returned pointer, into ek) of a shard's entry key ek. */
static const char *entry_split(const char *ek, char *fam)
{
    char *end;
    size_t fl = strtoul(ek, &end, 10);
    memcpy(fam, end + 1, fl);
    fam[fl] = '\0';
    return end + 1 + fl;
}

/* ------------------------------------------------------------------ */
/* a shard's entries                                                   */

static fam_t *fam_find(const shard_t *s, const char *family)
{
    for (size_t i = 0; i < s->nfams; i++)
        if (!strcmp(s->fams[i].name, family)) return &s->fams[i];
    return NULL;
}

/* Keys s holds in family (0 for a global node's share: not counted). */
static size_t fam_keys(const shard_t *s, const char *family)
{
    fam_t *f = fam_find(s, family);
    return f ? f->keys : 0;
}

/* Whether s is bounded as a whole, not by the per-node limits: a global
 * node's share (its slaves' entries), and our own, which also holds what
 * we mirror of the global nodes ('g for each, their listeners in 'l):
 * peers must not be able to fill it up to where our own writes are
 * refused. */
static int share_limits(const shard_t *s)
{
    return s->global || s->own;
}

/* family gained (+1) or lost (-1) a key of s. 0 or AEMP_ENOMEM. */
static int fam_count(shard_t *s, const char *family, int d)
{
    if (share_limits(s)) return 0;
    fam_t *f = fam_find(s, family);
    if (f) {
        if (!(f->keys += (size_t)d)) {
            free(f->name);
            *f = s->fams[--s->nfams];
        }
        return 0;
    }
    if (d < 0) return 0;
    fam_t *nf = realloc(s->fams, (s->nfams + 1) * sizeof *nf);
    if (!nf) return AEMP_ENOMEM;
    s->fams = nf;
    if (!(nf[s->nfams].name = strdup(family))) return AEMP_ENOMEM;
    nf[s->nfams++].keys = 1;
    return 0;
}

static int is_g(const char *family)
{
    return family[0] == '\'' && family[1] == 'g' && !family[2];
}

static int is_l(const char *family)
{
    return family[0] == '\'' && family[1] == 'l' && !family[2];
}

/* Whether s's 'g keys name global nodes to keep links to: our own
 * share's (nodes that said g_global to us) and a global peer's. */
static int vouches(const shard_t *s)
{
    return s->own || s->global;
}

/* Notes that whether key is vouched for may have changed. */
static void g_dirty(aemp__gdb_t *g, const char *key)
{
    if (aemp__map_set(&g->g_dirty, key, (void *)1)) g->g_all = 1;
}

/* The 'g key waits, at the end of s's waiters. 0 or AEMP_ENOMEM (nothing
 * changed). */
static int wait_add(shard_t *s, const char *key)
{
    size_t len = strlen(key) + 1;
    waiter_t *w = malloc(sizeof *w + len);
    if (!w || aemp__map_set(&s->waiting, key, w)) {
        free(w);
        return AEMP_ENOMEM;
    }
    memcpy(w->key, key, len);
    w->next = NULL;
    w->prev = s->wait_tail;
    *(s->wait_tail ? &s->wait_tail->next : &s->wait_head) = w;
    s->wait_tail = w;
    return 0;
}

/* The waiter w leaves s's waiters and is freed. */
static void wait_del(shard_t *s, waiter_t *w)
{
    *(w->prev ? &w->prev->next : &s->wait_head) = w->next;
    *(w->next ? &w->next->prev : &s->wait_tail) = w->prev;
    aemp__map_del(&s->waiting, w->key);
    free(w);
}

/* s vouches for the 'g key it holds. 0 or AEMP_ENOMEM (nothing changed). */
static int vouch_now(aemp__gdb_t *g, shard_t *s, const char *key)
{
    uintptr_t c = (uintptr_t)aemp__map_get(&g->vouched, key);
    if (aemp__map_set(&s->vouching, key, (void *)1)) return AEMP_ENOMEM;
    if (aemp__map_set(&g->vouched, key, (void *)(c + 1))) {
        aemp__map_del(&s->vouching, key);
        return AEMP_ENOMEM;
    }
    if (!c) g_dirty(g, key);
    return 0;
}

/* s, which now holds the 'g key (and did not), vouches for it if it
 * vouches at all; a global peer's share at its bound, or with keys
 * waiting before this one (a promotion that ran out of memory), keeps
 * the key waiting instead, in its turn. 0 or AEMP_ENOMEM (nothing
 * changed). */
static int vouch(aemp__gdb_t *g, shard_t *s, const char *key)
{
    if (!vouches(s)) return 0;
    if (!s->own && (s->vouching.count >= AEMP_GDB_NODE_GLOBALS_MAX || s->wait_head))
        return wait_add(s, key);
    return vouch_now(g, s, key);
}

/* s no longer holds the 'g key: it no longer vouches for it (or it no
 * longer waits), and the first of s's waiting keys takes a vouched one's
 * place - O(1), whatever s holds (a shard that goes as a whole drops its
 * waiters first: aemp__gdb_node_down). */
static void unvouch(aemp__gdb_t *g, shard_t *s, const char *key)
{
    if (!aemp__map_del(&s->vouching, key)) {
        waiter_t *w = aemp__map_get(&s->waiting, key);
        if (w) wait_del(s, w);
        return;
    }
    uintptr_t c = (uintptr_t)aemp__map_get(&g->vouched, key);
    if (c > 1) {
        aemp__map_set(&g->vouched, key, (void *)(c - 1)); /* replaces: no allocation */
    } else if (c) {
        aemp__map_del(&g->vouched, key);
        g_dirty(g, key);
    }
    /* the first waiting takes the place (out of memory, it stays first:
     * the next one gone fills both places) */
    while (s->wait_head && s->vouching.count < AEMP_GDB_NODE_GLOBALS_MAX &&
           !vouch_now(g, s, s->wait_head->key))
        wait_del(s, s->wait_head);
}

/* The value s holds for family/key (borrowed), or NULL. */
static json_t *sget(const shard_t *s, const char *family, const char *key)
{
    char buf[OWNER_KEY_MAX];
    return json_object_get(s->db, owner_key(buf, family, key));
}

/* s holds v (a new reference) for the entry ek (owner_key) of family;
 * fresh: s did not hold it. 0 or AEMP_ENOMEM. */
static int sset(shard_t *s, const char *family, const char *ek, int fresh, json_t *v)
{
    if (!*ek) return AEMP_EINVAL; /* names are checked first: not reached */
    if (fresh && fam_count(s, family, 1)) return AEMP_ENOMEM;
    if (!json_object_set(s->db, ek, v)) return 0;
    if (fresh) fam_count(s, family, -1);
    return AEMP_ENOMEM;
}

/* s no longer holds the entry ek (owner_key) of family. */
static void sdel(shard_t *s, const char *family, const char *ek)
{
    if (!json_object_del(s->db, ek)) fam_count(s, family, -1);
}

/* {FAMILY: [KEY, ...]} of what s holds, less what is in db ({FAMILY:
 * {KEY: VALUE}}, or NULL), in the order s got them; NULL: no memory. */
static json_t *keys_by_family(const shard_t *s, json_t *db)
{
    json_t *r = json_object();
    const char *ek;
    json_t *v;
    json_object_foreach(s->db, ek, v) {
        char f[AEMP_GDB_NAME_MAX + 1];
        const char *k = entry_split(ek, f);
        if (!r) break;
        if (json_object_get(json_object_get(db, f), k)) continue;
        json_t *keys = json_object_get(r, f);
        if ((!keys && (!(keys = json_array()) || json_object_set_new(r, f, keys))) ||
            json_array_append_new(keys, json_string(k))) {
            json_decref(r);
            r = NULL;
        }
    }
    return r;
}

/* s now holds the key whose owner_key is ok (and did not before): it
 * joins the key's holders. 0, or AEMP_ENOMEM with nothing changed. */
static int holders_add(aemp__gdb_t *g, const char *ok, shard_t *s)
{
    void *h = aemp__map_get(&g->holders, ok);
    if (!h) return aemp__map_set(&g->holders, ok, s);
    holders_t *l = hlist(h);
    if (!l) {
        if (!(l = malloc(sizeof *l + 2 * sizeof l->s[0]))) return AEMP_ENOMEM;
        l->n = 1;
        l->cap = 2;
        l->s[0] = h;
    } else if (l->n == l->cap) {
        holders_t *nl = realloc(l, sizeof *l + 2 * l->cap * sizeof l->s[0]);
        if (!nl) return AEMP_ENOMEM;
        (l = nl)->cap *= 2;
    }
    l->s[l->n++] = s;
    aemp__map_set(&g->holders, ok, htag(l)); /* the key is there: no allocation */
    return 0;
}

/* Whether a is the better owner to show: a slave before a global peer,
 * then the latest writer. */
static int better(const shard_t *a, const shard_t *b)
{
    return !b || (a->slave && !b->slave) || (a->slave == b->slave && a->seq > b->seq);
}

/* s no longer holds the key whose owner_key is ok: it leaves the key's
 * holders, and the best of those left (see better) is returned, NULL
 * when none is. Looks only at that key's holders - O(its holders), not
 * O(all shards), however many keys peers made shared - and cannot fail
 * (no memory is needed). */
static shard_t *holders_del(aemp__gdb_t *g, const char *ok, const shard_t *s)
{
    void *h = aemp__map_get(&g->holders, ok);
    holders_t *l = hlist(h);
    g->holder_visits += l ? l->n : h != NULL;
    if (!l) {
        if (h == s) aemp__map_del(&g->holders, ok);
        return NULL;
    }
    shard_t *best = NULL;
    size_t at = l->n;
    for (size_t i = 0; i < l->n; i++) {
        if (l->s[i] == s) at = i;
        else if (better(l->s[i], best)) best = l->s[i];
    }
    if (at == l->n) return best; /* not a holder: not reached */
    l->s[at] = l->s[--l->n];
    if (l->n == 1) {
        aemp__map_set(&g->holders, ok, l->s[0]); /* replaces: no allocation */
        free(l);
    } else if (l->cap > 8 && l->n <= l->cap / 4) {
        /* a list many have left gives back memory (if realloc fails, it
         * just stays larger) */
        holders_t *nl = realloc(l, sizeof *l + l->cap / 2 * sizeof l->s[0]);
        if (nl) {
            nl->cap /= 2;
            aemp__map_set(&g->holders, ok, htag(nl));
        }
    }
    return best;
}

/* Sets k to v in o, or nothing when there is no o. 0 or -1. */
static int oset(json_t *o, const char *k, json_t *v)
{
    return o ? json_object_set(o, k, v) : 0;
}

/* Appends the string k to a, or nothing when there is no a. 0 or -1. */
static int aadd(json_t *a, const char *k)
{
    return a ? json_array_append_new(a, json_string(k)) : 0;
}

/* Applies the checked update of s: set (object or NULL), del (array of
 * strings or NULL), as 2.02's g_upd does, and says so to the other
 * globals (when s is a slave) and to the family's watchers. */
static int upd(aemp__gdb_t *g, shard_t *s, const char *family, json_t *set, json_t *del,
               json_t *out)
{
    json_t *gdb = json_object_get(g->view, family);
    json_t *watchers = json_object_get(g->mons, family);
    /* what goes to the other globals (a slave's changes, when there are
     * any) and to the family's watchers (when it has any): made only
     * then */
    int fwd = s->slave && g->globals.count, mon = json_object_size(watchers) > 0;
    json_t *fwd_set = fwd ? json_object() : NULL, *fwd_del = fwd ? json_array() : NULL,
           *mon_set = mon ? json_object() : NULL, *mon_del = mon ? json_array() : NULL;
    int rc = AEMP_ENOMEM;
    if ((fwd && (!fwd_set || !fwd_del)) || (mon && (!mon_set || !mon_del))) goto out;
    if (!gdb && (!(gdb = json_object()) || json_object_set_new(g->view, family, gdb))) goto out;
    s->seq = ++g->seq;
    int gfam = is_g(family);
    const char *k;
    json_t *v;
    char buf[OWNER_KEY_MAX]; /* each key's entry key, made once */
    json_object_foreach(set, k, v) {
        const char *ek = owner_key(buf, family, k);
        json_t *old = json_object_get(s->db, ek);
        size_t was = old ? entry_cost(k, old) : 0, now = entry_cost(k, v);
        /* a key new to s: s joins its holders (undone if s cannot hold it) */
        if (!old && holders_add(g, ek, s)) goto out;
        if (sset(s, family, ek, !old, v)) {
            if (!old) holders_del(g, ek, s);
            goto out;
        }
        if (!old && gfam && vouch(g, s, k)) {
            sdel(s, family, ek);
            holders_del(g, ek, s);
            goto out;
        }
        if (json_object_set(gdb, k, v) || oset(fwd_set, k, v) || oset(mon_set, k, v)) goto out;
        s->bytes += now - was;
        g->bytes += now - was;
        if (!old) g->entries++;
    }
    for (size_t i = 0; i < json_array_size(del); i++) {
        const char *dk = json_string_value(json_array_get(del, i));
        const char *ek = owner_key(buf, family, dk);
        json_t *mine = json_object_get(s->db, ek);
        if (!mine) continue; /* a node deletes only what it holds */
        size_t was = entry_cost(dk, mine);
        s->bytes -= was;
        g->bytes -= was;
        g->entries--;
        sdel(s, family, ek);
        if (gfam) unvouch(g, s, dk);
        shard_t *o = holders_del(g, ek, s);
        if (o) {
            json_t *ov = json_object_get(o->db, ek);
            int same = json_equal(json_object_get(gdb, dk), ov);
            if (o->slave) {
                if (!same && (json_object_set(gdb, dk, ov) || oset(fwd_set, dk, ov) ||
                              oset(mon_set, dk, ov)))
                    goto out;
            } else {
                if (aadd(fwd_del, dk)) goto out;
                if (!same && (json_object_set(gdb, dk, ov) || oset(mon_set, dk, ov)))
                    goto out;
            }
        } else {
            json_object_del(gdb, dk);
            json_object_del(mon_set, dk);
            if (aadd(mon_del, dk)) goto out;
            if (s->slave && aadd(fwd_del, dk)) goto out;
        }
    }
    rc = 0;
    if (s->slave && (json_object_size(fwd_set) || json_array_size(fwd_del)))
        rc = emit_globals(g, s->node, out, change_msg("g_upd", family, fwd_set, fwd_del));
    if (!rc && mon && (json_object_size(mon_set) || json_array_size(mon_del))) {
        /* one message for all of them (the driver encodes it once) */
        json_t *chg = change_msg("g_chg2", family, mon_set, mon_del);
        const char *w;
        json_t *unused;
        json_object_foreach(watchers, w, unused) {
            if ((rc = emit(out, w, json_incref(chg)))) break;
        }
        if (!chg) rc = AEMP_ENOMEM;
        json_decref(chg);
    }
out:
    if (gdb && !json_object_size(gdb)) json_object_del(g->view, family);
    json_decref(fwd_set);
    json_decref(fwd_del);
    json_decref(mon_set);
    json_decref(mon_del);
    return rc;
}

/* ------------------------------------------------------------------ */
/* checks                                                              */

/* Says why in why (whylen bytes) and returns code. */
__attribute__((format(printf, 4, 5))) static int fail(char *why, size_t whylen, int code,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && whylen) vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return code;
}
#define FAIL(code, ...) fail(why, whylen, code, __VA_ARGS__)

typedef struct budget {
    size_t families;  /* families the shard will have */
    size_t bytes;     /* bytes it will hold */
    size_t new_view;  /* families the request adds to the view */
} budget_t;

/* Whether an object key of obj holds a NUL byte (the decoder makes them
 * from \u0000): names here are C strings, so such a key is refused. */
static int nul_key(json_t *obj)
{
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it))
        if (strlen(json_object_iter_key(it)) != json_object_iter_key_len(it)) return 1;
    return 0;
}

static int nul_string(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v);
}

/* Checks an update of family by s (set: object or NULL, del: array or
 * NULL) and counts what s would hold after it into b. replace: s's
 * family is replaced by set, not updated. */
static int check_family(aemp__gdb_t *g, shard_t *s, const char *family, json_t *set, json_t *del,
                        int replace, budget_t *b, char *why, size_t whylen)
{
    if (strlen(family) > AEMP_GDB_NAME_MAX)
        return FAIL(AEMP_ELIMIT, "family name of %zu bytes, limit %d", strlen(family), AEMP_GDB_NAME_MAX);
    if (set && !json_is_object(set))
        return FAIL(AEMP_EBADMSG, "family %.64s: not an object of keys", family);
    if (del && !json_is_array(del))
        return FAIL(AEMP_EBADMSG, "family %.64s: deleted keys are not an array", family);
    for (size_t i = 0; i < json_array_size(del); i++)
        if (!json_is_string(json_array_get(del, i)) || nul_string(json_array_get(del, i)))
            return FAIL(AEMP_EBADMSG, "family %.64s: deleted key %zu is not a string", family, i);
    if (set && nul_key(set))
        return FAIL(AEMP_EBADMSG, "family %.64s: a key holds a NUL byte", family);
    json_t *gdb = json_object_get(g->view, family);
    size_t had = replace ? 0 : fam_keys(s, family), lkeys = had, gkeys = json_object_size(gdb);
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) {
        size_t kl = strlen(k), vc = cost(v, AEMP_GDB_VALUE_MAX);
        if (kl > AEMP_GDB_NAME_MAX)
            return FAIL(AEMP_ELIMIT, "family %.64s: key of %zu bytes, limit %d", family, kl, AEMP_GDB_NAME_MAX);
        if (vc > AEMP_GDB_VALUE_MAX)
            return FAIL(AEMP_ELIMIT, "family %.64s: value of key %.64s is over %d bytes", family, k,
                       AEMP_GDB_VALUE_MAX);
        /* 'l: where a node listens, which g_find answers and our own
         * dials follow - a node sets its own (PROTOCOL-1 §8.1); a
         * global peer's share holds its slaves' */
        if (is_l(family) && !share_limits(s) && strcmp(k, s->node))
            return FAIL(AEMP_ESTATE, "family 'l: key %.64s is another node's listeners (a node "
                        "sets its own)", k);
        json_t *old = replace ? NULL : sget(s, family, k);
        if (!old) lkeys++;
        else b->bytes -= entry_cost(k, old);
        b->bytes += kl + vc;
        if (!json_object_get(gdb, k)) gkeys++;
    }
    if (!replace && !had && json_object_size(set)) b->families++;
    if (!share_limits(s) && lkeys > AEMP_GDB_NODE_KEYS_MAX)
        return FAIL(AEMP_ELIMIT, "family %.64s would hold %zu keys of this node, limit %d", family, lkeys,
                   AEMP_GDB_NODE_KEYS_MAX);
    if (is_g(family) && !share_limits(s) && lkeys > AEMP_GDB_NODE_GLOBALS_MAX)
        return FAIL(AEMP_ELIMIT, "family 'g would hold %zu keys of this node, limit %d", lkeys,
                    AEMP_GDB_NODE_GLOBALS_MAX);
    if (gkeys > AEMP_GDB_FAMILY_KEYS_MAX)
        return FAIL(AEMP_ELIMIT, "family %.64s would hold %zu keys, limit %d", family, gkeys,
                   AEMP_GDB_FAMILY_KEYS_MAX);
    /* counted over the whole request: one g_slave may bring many */
    if (!gdb && json_object_size(set) &&
        json_object_size(g->view) + b->new_view++ >= AEMP_GDB_FAMILIES_MAX)
        return FAIL(AEMP_ELIMIT, "the view holds %d families, the limit", AEMP_GDB_FAMILIES_MAX);
    return 0;
}

static int check_budget(const shard_t *s, const budget_t *b, char *why, size_t whylen)
{
    if (share_limits(s)) {
        /* a global node's share of the view: its slaves' entries, bounded
         * as a whole (anybody may claim to be global); our own likewise */
        if (b->bytes > AEMP_GDB_GLOBAL_BYTES_MAX)
            return FAIL(AEMP_ELIMIT, "the %s share would hold %zu bytes, limit %u",
                        s->own ? "node's own" : "global node's", b->bytes,
                        AEMP_GDB_GLOBAL_BYTES_MAX);
        return 0;
    }
    if (b->families > AEMP_GDB_NODE_FAMILIES_MAX)
        return FAIL(AEMP_ELIMIT, "the node's database would hold %zu families, limit %d", b->families,
                   AEMP_GDB_NODE_FAMILIES_MAX);
    if (b->bytes > AEMP_GDB_NODE_BYTES_MAX)
        return FAIL(AEMP_ELIMIT, "the node's database would hold %zu bytes, limit %u", b->bytes,
                   AEMP_GDB_NODE_BYTES_MAX);
    return 0;
}

/* Checks a whole database {FAMILY: {KEY: VALUE}} for s. */
static int check_db(aemp__gdb_t *g, shard_t *s, json_t *db, int replace, char *why, size_t whylen)
{
    if (!json_is_object(db)) return FAIL(AEMP_EBADMSG, "the database is not an object");
    if (nul_key(db)) return FAIL(AEMP_EBADMSG, "a family name holds a NUL byte");
    budget_t b = {replace ? 0 : s->nfams, replace ? 0 : s->bytes, 0};
    const char *f;
    json_t *fam;
    int rc;
    json_object_foreach(db, f, fam) {
        if (!json_is_object(fam))
            return FAIL(AEMP_EBADMSG, "family %.64s: not an object of keys", f);
        if ((rc = check_family(g, s, f, fam, NULL, replace, &b, why, whylen))) return rc;
        if (replace && json_object_size(fam)) b.families++;
    }
    return check_budget(s, &b, why, whylen);
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

/* A node's whole database: replaces (or, from a global node, updates)
 * its shard. */
static int put_db(aemp__gdb_t *g, shard_t *s, json_t *db, int replace, json_t *out)
{
    int rc = 0;
    const char *f;
    json_t *fam;
    if (replace && json_object_size(s->db)) {
        /* what the new database lacks goes first */
        json_t *gone = keys_by_family(s, db);
        if (!gone) return AEMP_ENOMEM;
        json_object_foreach(gone, f, fam) {
            if (!rc) rc = upd(g, s, f, NULL, fam, out);
        }
        json_decref(gone);
    }
    json_object_foreach(db, f, fam) {
        if (!rc && json_object_size(fam)) rc = upd(g, s, f, fam, NULL, out);
    }
    return rc;
}

/* The merged databases of our slaves (what g_set carries). */
static json_t *slaves_db(aemp__gdb_t *g)
{
    json_t *db = json_object();
    aemp__map_iter_t it = {0};
    for (aemp__map_ent_t *e; db && (e = aemp__map_next(&g->shards, &it));) {
        shard_t *s = e->value;
        if (!s->slave) continue;
        const char *ek;
        json_t *v;
        json_object_foreach(s->db, ek, v) {
            char f[AEMP_GDB_NAME_MAX + 1];
            const char *k = entry_split(ek, f);
            json_t *m = json_object_get(db, f);
            if (!m && (!(m = json_object()) || json_object_set_new(db, f, m))) goto nomem;
            if (json_object_set(m, k, v)) goto nomem;
        }
    }
    return db;
nomem:
    json_decref(db);
    return NULL;
}

static json_t *family_copy(aemp__gdb_t *g, const char *family)
{
    json_t *f = json_object_get(g->view, family);
    return f ? json_copy(f) : json_null();
}

static int watch(aemp__gdb_t *g, shard_t *s, const char *family, int on)
{
    json_t *w = json_object_get(g->mons, family);
    if (!on) {
        json_object_del(w, s->node);
        if (w && !json_object_size(w)) json_object_del(g->mons, family);
        json_object_del(s->mons, family);
        return 0;
    }
    if (!w && (!(w = json_object()) || json_object_set_new(g->mons, family, w))) return AEMP_ENOMEM;
    if (!s->mons && !(s->mons = json_object())) return AEMP_ENOMEM;
    if (json_object_set_new(w, s->node, json_null()) ||
        json_object_set_new(s->mons, family, json_null()))
        return AEMP_ENOMEM;
    return 0;
}

int aemp__gdb_node_down(aemp__gdb_t *g, const char *node, json_t *out)
{
    shard_t *s = aemp__map_get(&g->shards, node);
    if (!s) return 0;
    int rc = 0;
    const char *f;
    json_t *fam;
    void *tmp;
    json_object_foreach_safe(s->mons, tmp, f, fam) watch(g, s, f, 0);
    /* its keys all go: none waits to take another's place */
    while (s->wait_head) wait_del(s, s->wait_head);
    json_t *db = keys_by_family(s, NULL);
    if (!db) rc = AEMP_ENOMEM;
    json_object_foreach(db, f, fam) {
        json_t *empty = json_object();
        if (!rc && empty) rc = upd(g, s, f, empty, fam, out);
        else rc = AEMP_ENOMEM;
        json_decref(empty);
    }
    json_decref(db);
    /* keys left by running out of memory above: s leaves their holders
     * all the same, so that nothing points at it once it is freed */
    const char *ek;
    json_t *v;
    json_object_foreach(s->db, ek, v) {
        char fb[AEMP_GDB_NAME_MAX + 1];
        const char *k = entry_split(ek, fb);
        if (is_g(fb)) unvouch(g, s, k);
        holders_del(g, ek, s);
    }
    aemp__map_del(&g->shards, node);
    aemp__map_del(&g->globals, node);
    g->bytes -= s->bytes;
    g->entries -= json_object_size(s->db);
    shard_free(s);
    return rc;
}

#define ARG(i) json_array_get(args, (i))
#define SARG(i) json_string_value(ARG(i))

int aemp__gdb_feed(aemp__gdb_t *g, const char *src, json_t *req, json_t *out, char *why,
                   size_t whylen)
{
    json_t *args = json_array();
    for (size_t i = 1; args && i < json_array_size(req); i++) {
        if (json_array_append(args, json_array_get(req, i))) {
            json_decref(args);
            args = NULL;
        }
    }
    int rc = args ? aemp__gdb_request(g, src, json_string_value(json_array_get(req, 0)), args, out,
                                      why, whylen)
                  : AEMP_ENOMEM;
    json_decref(args);
    return rc;
}

int aemp__gdb_request(aemp__gdb_t *g, const char *src, const char *tag, json_t *args, json_t *out,
                      char *why, size_t whylen)
{
    if (nul_string(ARG(0))) /* a family name or node id */
        return FAIL(AEMP_EBADMSG, "a name holds a NUL byte");
    size_t nargs = json_array_size(args);
    if (why && whylen) *why = 0;
    if (!tag || !src) return FAIL(AEMP_EBADMSG, "not a request");
    if (!strcmp(src, g->self) && !strcmp(tag, "g_global")) return 0;
    int rc;
    shard_t *s;

    if (!strcmp(tag, "g_slave")) {
        if (!nargs) return 0; /* "run the global service": we do */
        if (!(s = shard_get(g, src, 1))) return AEMP_ENOMEM;
        /* a slave's registration is its whole database; a global node's
         * (2.02 makes another seed its master too) adds to its g_set */
        int was = s->slave, replace = !s->global;
        s->slave = 1;
        if ((rc = check_db(g, s, ARG(0), replace, why, whylen))) {
            s->slave = was;
            return rc;
        }
        return put_db(g, s, ARG(0), replace, out);
    }
    if (!strcmp(tag, "g_set")) {
        if (!nargs) return FAIL(AEMP_EBADMSG, "g_set without a database");
        if (!(s = shard_get(g, src, 1))) return AEMP_ENOMEM;
        if ((rc = check_db(g, s, ARG(0), 0, why, whylen))) return rc;
        return put_db(g, s, ARG(0), 0, out);
    }
    if (!strcmp(tag, "g_upd")) {
        const char *family = SARG(0);
        json_t *set = ARG(1), *del = ARG(2);
        if (!family) return FAIL(AEMP_EBADMSG, "g_upd without a family name");
        if (json_is_null(set)) set = NULL;
        if (json_is_null(del)) del = NULL;
        if (!set && !del) return 0;
        if (!(s = shard_get(g, src, 1))) return AEMP_ENOMEM;
        budget_t b = {s->nfams, s->bytes, 0};
        if ((rc = check_family(g, s, family, set, del, 0, &b, why, whylen)) ||
            (rc = check_budget(s, &b, why, whylen)))
            return rc;
        return upd(g, s, family, set, del, out);
    }
    if (!strcmp(tag, "g_find")) {
        const char *node = SARG(0);
        if (!node) return FAIL(AEMP_EBADMSG, "g_find without a node id");
        json_t *l = json_object_get(json_object_get(g->view, "'l"), node);
        return emit(out, src, json_pack("[ssO]", "g_found", node, l ? l : json_null()));
    }
    if (!strcmp(tag, "g_db_family") || !strcmp(tag, "g_db_keys") || !strcmp(tag, "g_db_values")) {
        const char *family = SARG(0);
        json_t *id = ARG(1);
        if (!family || !id) return FAIL(AEMP_EBADMSG, "%s without a family name and an id", tag);
        json_t *fam = json_object_get(g->view, family), *r;
        if (tag[5] == 'f') {
            r = fam ? json_copy(fam) : json_object();
        } else {
            r = json_array();
            const char *k;
            json_t *v;
            json_object_foreach(fam, k, v) {
                if (r && json_array_append_new(r, tag[5] == 'k' ? json_string(k) : json_incref(v))) {
                    json_decref(r);
                    r = NULL;
                }
            }
        }
        return emit(out, src, r ? json_pack("[sOo]", "g_reply", id, r) : NULL);
    }
    if (!strcmp(tag, "g_mon1") || !strcmp(tag, "g_mon0")) {
        const char *family = SARG(0);
        if (!family) return FAIL(AEMP_EBADMSG, "%s without a family name", tag);
        if (tag[5] == '0') {
            s = shard_get(g, src, 0);
            return s ? watch(g, s, family, 0) : 0;
        }
        if (strlen(family) > AEMP_GDB_NAME_MAX)
            return FAIL(AEMP_ELIMIT, "family name of %zu bytes, limit %d", strlen(family), AEMP_GDB_NAME_MAX);
        if (!(s = shard_get(g, src, 1))) return AEMP_ENOMEM;
        if (!json_object_get(s->mons, family) && json_object_size(s->mons) >= AEMP_GDB_NODE_FAMILIES_MAX)
            return FAIL(AEMP_ELIMIT, "the node watches %d families, the limit", AEMP_GDB_NODE_FAMILIES_MAX);
        s->slave = 1; /* as in 2.02: a watcher counts as a slave */
        if ((rc = watch(g, s, family, 1))) return rc;
        return emit(out, src, json_pack("[sso]", "g_chg1", family, family_copy(g, family)));
    }
    if (!strcmp(tag, "g_global")) {
        /* usually nothing to forget; not so for a node turned global */
        if ((rc = aemp__gdb_node_down(g, src, out))) return rc;
        if (!(s = shard_get(g, src, 1)) || aemp__map_set(&g->globals, src, s)) return AEMP_ENOMEM;
        s->global = 1;
        json_t *db = slaves_db(g);
        return emit(out, src, db ? json_pack("[so]", "g_set", db) : NULL);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* queries                                                             */

json_t *aemp__gdb_family(const aemp__gdb_t *g, const char *family)
{
    return json_object_get(g->view, family);
}

int aemp__gdb_watches(const aemp__gdb_t *g, const char *node, const char *family)
{
    return json_object_get(json_object_get(g->mons, family), node) != NULL;
}

aemp__bucket_t *aemp__gdb_change_budget(aemp__gdb_t *g, const char *node)
{
    shard_t *s = shard_get(g, node, 1);
    return s ? &s->changes : NULL;
}

size_t aemp__gdb_fanout(const aemp__gdb_t *g, const char *node, const char *family)
{
    const shard_t *s = aemp__map_get(&g->shards, node);
    size_t to = json_object_size(json_object_get(g->mons, family));
    /* a slave's changes go to the other global nodes too (upd) */
    if (!s || s->slave) to += g->globals.count;
    return to;
}

int aemp__gdb_is_global(const aemp__gdb_t *g, const char *node)
{
    shard_t *s = aemp__map_get(&g->shards, node);
    return s && s->global;
}

int aemp__gdb_g_vouched(const aemp__gdb_t *g, const char *node)
{
    return aemp__map_get(&g->vouched, node) != NULL;
}

void aemp__gdb_g_redo(aemp__gdb_t *g)
{
    g->g_all = 1;
}

int aemp__gdb_g_pending(const aemp__gdb_t *g)
{
    return g->g_dirty.count || g->g_all;
}

int aemp__gdb_g_drain(aemp__gdb_t *g, void (*fn)(void *ctx, const char *node), void *ctx)
{
    /* taken out first: fn may change the database, noting more */
    aemp__map_t dirty = g->g_dirty;
    int all = g->g_all;
    g->g_dirty.slots = NULL;
    g->g_dirty.nslots = g->g_dirty.count = 0;
    g->g_all = 0;
    aemp__map_iter_t it = {0};
    for (aemp__map_ent_t *e; !all && (e = aemp__map_next(&dirty, &it));) fn(ctx, e->key);
    aemp__map_free(&dirty);
    return all;
}

int aemp__gdb_g_next(const aemp__gdb_t *g, aemp__map_iter_t *it, const char **node)
{
    aemp__map_ent_t *e = aemp__map_next(&g->vouched, it);
    *node = e ? e->key : NULL;
    return e != NULL;
}

size_t aemp__gdb_nodes(const aemp__gdb_t *g)
{
    return g->shards.count;
}

unsigned long aemp__gdb_holder_visits(const aemp__gdb_t *g)
{
    return g->holder_visits;
}

size_t aemp__gdb_bytes(const aemp__gdb_t *g)
{
    return g->bytes;
}

size_t aemp__gdb_entries(const aemp__gdb_t *g)
{
    return g->entries;
}

size_t aemp__gdb_node_bytes(const aemp__gdb_t *g, const char *node)
{
    shard_t *s = aemp__map_get(&g->shards, node);
    return s ? s->bytes : 0;
}

/* Whether s is among the holders g->holders lists for owner key ok. */
static int listed(const aemp__gdb_t *g, const char *ok, const shard_t *s)
{
    void *h = aemp__map_get(&g->holders, ok);
    holders_t *l = hlist(h);
    for (size_t i = 0; l && i < l->n; i++)
        if (l->s[i] == s) return 1;
    return h == s;
}

int aemp__gdb_check(const aemp__gdb_t *g)
{
    size_t total = 0, held = 0, vouched_keys = 0, entries = 0;
    aemp__map_iter_t it = {0};
    for (aemp__map_ent_t *e; (e = aemp__map_next(&g->shards, &it));) {
        shard_t *s = e->value;
        size_t bytes = 0, counted = 0, gk = 0;
        const char *f, *ek;
        json_t *v;
        json_object_foreach(s->db, ek, v) {
            char fb[AEMP_GDB_NAME_MAX + 1];
            const char *k = entry_split(ek, fb);
            if (!json_object_get(json_object_get(g->view, fb), k)) return __LINE__;
            if (!listed(g, ek, s)) return __LINE__;
            held++;
            if (!share_limits(s) && !fam_keys(s, fb)) return __LINE__;
            if (is_g(fb)) gk++;
            bytes += entry_cost(k, v);
        }
        for (size_t i = 0; i < s->nfams; i++) {
            if (!s->fams[i].keys || s->fams[i].keys > AEMP_GDB_NODE_KEYS_MAX) return __LINE__;
            counted += s->fams[i].keys;
        }
        if (share_limits(s) ? s->nfams != 0 : counted != json_object_size(s->db)) return __LINE__;
        if (bytes != s->bytes) return __LINE__;
        if (!share_limits(s) && gk > AEMP_GDB_NODE_GLOBALS_MAX) return __LINE__;
        /* it vouches for 'g keys it holds: when it is ours, for all; when
         * it is a global peer's, for as many as the bound allows, the
         * rest waiting (one it lets go of is replaced by the first that
         * waits); else none */
        size_t bound = s->own ? gk : gk < AEMP_GDB_NODE_GLOBALS_MAX ? gk : AEMP_GDB_NODE_GLOBALS_MAX;
        if (!vouches(s) ? s->vouching.count != 0 || s->waiting.count != 0
                        : s->vouching.count != bound || s->waiting.count != gk - bound)
            return __LINE__;
        aemp__map_iter_t ik = {0};
        for (aemp__map_ent_t *ve; (ve = aemp__map_next(&s->vouching, &ik));) {
            char buf[OWNER_KEY_MAX];
            if (!json_object_get(s->db, owner_key(buf, "'g", ve->key))) return __LINE__;
        }
        size_t waiters = 0;
        if (s->wait_head && s->wait_head->prev) return __LINE__;
        for (const waiter_t *w = s->wait_head; w; w = w->next, waiters++) {
            char buf[OWNER_KEY_MAX];
            if (aemp__map_get(&s->waiting, w->key) != w || aemp__map_get(&s->vouching, w->key) ||
                !json_object_get(s->db, owner_key(buf, "'g", w->key)) ||
                (w->next ? w->next->prev != w : s->wait_tail != w))
                return __LINE__;
        }
        if (waiters != s->waiting.count) return __LINE__;
        vouched_keys += s->vouching.count;
        if (!share_limits(s) && (s->nfams > AEMP_GDB_NODE_FAMILIES_MAX || bytes > AEMP_GDB_NODE_BYTES_MAX))
            return __LINE__;
        json_object_foreach(s->mons, f, v) if (!json_object_get(json_object_get(g->mons, f), s->node))
            return __LINE__;
        total += bytes;
        entries += json_object_size(s->db);
    }
    if (total != g->bytes || entries != g->entries) return __LINE__;
    /* each vouched 'g key counts the vouching shards that hold it */
    size_t vouchings = 0;
    aemp__map_iter_t iv = {0};
    for (aemp__map_ent_t *e; (e = aemp__map_next(&g->vouched, &iv));) {
        char buf[OWNER_KEY_MAX];
        void *h = aemp__map_get(&g->holders, owner_key(buf, "'g", e->key));
        holders_t *l = hlist(h);
        uintptr_t c = 0;
        for (size_t i = 0; i < (l ? l->n : h != NULL); i++)
            c += aemp__map_get(&((shard_t *)(l ? l->s[i] : h))->vouching, e->key) != NULL;
        if (!c || c != (uintptr_t)e->value) return __LINE__;
        vouchings += c;
    }
    if (vouchings != vouched_keys) return __LINE__;
    aemp__map_iter_t ig = {0};
    for (aemp__map_ent_t *e; (e = aemp__map_next(&g->globals, &ig));)
        if (aemp__map_get(&g->shards, e->key) != e->value || !((shard_t *)e->value)->global)
            return __LINE__;
    const char *f, *k;
    json_t *fam, *v;
    size_t keys = 0, holdings = 0;
    json_object_foreach(g->view, f, fam) {
        if (!json_object_size(fam) || json_object_size(fam) > AEMP_GDB_FAMILY_KEYS_MAX)
            return __LINE__;
        json_object_foreach(fam, k, v) {
            /* held by a holder with this value */
            char buf[OWNER_KEY_MAX];
            void *h = aemp__map_get(&g->holders, owner_key(buf, f, k));
            holders_t *l = hlist(h);
            int owned = 0;
            for (size_t i = 0; i < (l ? l->n : h != NULL); i++) {
                json_t *ov = sget(l ? l->s[i] : h, f, k);
                owned = owned || (ov && (ov == v || json_equal(ov, v)));
            }
            if (!owned) return __LINE__;
            keys++;
        }
    }
    /* an entry for each key of the view and no other; each lists shards
     * of g that hold its key, two or more as a list. With every holding
     * listed (above), as many listed as there are holdings means no
     * shard is listed twice. */
    if (g->holders.count != keys) return __LINE__;
    aemp__map_iter_t ih = {0};
    for (aemp__map_ent_t *e; (e = aemp__map_next(&g->holders, &ih));) {
        holders_t *l = hlist(e->value);
        if (l && (l->n < 2 || l->n > l->cap)) return __LINE__;
        for (size_t i = 0; i < (l ? l->n : 1); i++) {
            shard_t *s = l ? l->s[i] : e->value;
            if (!s || aemp__map_get(&g->shards, s->node) != s || !json_object_get(s->db, e->key))
                return __LINE__;
            holdings++;
        }
    }
    if (holdings != held) return __LINE__;
    json_object_foreach(g->mons, f, fam) {
        if (!json_object_size(fam)) return __LINE__;
        json_object_foreach(fam, k, v) {
            shard_t *s = aemp__map_get(&g->shards, k);
            if (!s || !json_object_get(s->mons, f)) return __LINE__;
        }
    }
    return 0;
}
