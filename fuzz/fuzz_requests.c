/*
 * fuzz_requests.c - fuzz target for what a protocol-1 node serves to an
 * authenticated peer (services1.c, services.c, toolbox.c, global.c),
 * reflection included (issue 19). A real global node "seed" runs
 * in-process on a loop of its own, with three ports of its own (echo:
 * sends [TO, ELEMS...] to TO, as the aemp tool's echo; keep; victim), a
 * function "echoer" that does the same from a spawned port, and entries
 * of its own in the global database ('g, and the families svc and cfg).
 * The input is one JSON array of messages from the peer "peer", each
 * handed to the node as link.c hands what a link read: [TAG, ARGS...]
 * goes to the node port; ["#LOCAL", ELEMS...] to our port LOCAL. Strings
 * "@echo", "@keep", "@victim" are replaced by our ports' ids, "@echo.l"...
 * by their local ids, "#@echo.l"... by "#" and the local id; a string that
 * parses as an endpoint becomes
 * 127.0.0.1:9 (nothing leaves this host). After every message the loop
 * runs until the local queue is empty, so the answers to "seed" or to our
 * ports (time, can, eval, snd, spawn, LogCatcher connect, echo, g_*)
 * arrive. Then:
 *   - the node still answers a time request to a fresh port;
 *   - no port of ours died unless the input named it (kil1 or so);
 *   - once the peer is gone, what it held is gone and the database is
 *     what the node wrote itself, exactly: nothing the peer sent, by any
 *     path, was taken as this node's own.
 */
#include "fuzz.h"

#include <ev.h>

#include "aemp.h"
#include "addr.h"
#include "node_int.h"
#include "p1.h"

#define RQ_SELF "seed"
#define RQ_PEER "peer"

static const char *const rq_families[] = {"'g", "'l", "svc", "cfg"};
#define RQ_NFAM (sizeof rq_families / sizeof *rq_families)
#define RQ_NPORTS 3
static const char *const rq_names[RQ_NPORTS] = {"echo", "keep", "victim"};

typedef struct {
    aemp_port_t *port[RQ_NPORTS];
    char *id[RQ_NPORTS];
    int dead[RQ_NPORTS];
    int probed;
    int answers;
    json_t *fam;
} rq_state_t;

static rq_state_t *rq_st;

static void rq_log(void *ud, int level, const char *msg)
{
    (void)ud;
    (void)level;
    (void)msg;
}

/* [TO, ELEMS...] -> TO */
static void rq_forward(aemp_node_t *n, json_t *msg)
{
    const char *to = json_string_value(json_array_get(msg, 0));
    json_t *rest = json_array();
    for (size_t i = 1; rest && i < json_array_size(msg); i++) json_array_append(rest, json_array_get(msg, i));
    if (to && rest) aemp_send(n, to, rest);
    else json_decref(rest);
}

static int rq_echo(aemp_port_t *p, json_t *msg, void *ud)
{
    (void)ud;
    rq_forward(aemp_port_node(p), msg);
    return AEMP_KEEP;
}

static int rq_quiet(aemp_port_t *p, json_t *msg, void *ud)
{
    (void)p;
    (void)msg;
    (void)ud;
    return AEMP_KEEP;
}

static void rq_echoer(aemp_node_t *n, aemp_port_t *port, json_t *args, void *ud)
{
    (void)ud;
    rq_forward(n, args);
    if (port) aemp_port_kill(port, NULL);
}

static void rq_died(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    (void)n;
    (void)portid;
    (void)reason;
    rq_st->dead[(intptr_t)ud] = 1;
}

static int rq_probe(aemp_port_t *p, json_t *msg, void *ud)
{
    (void)p;
    (void)msg;
    (void)ud;
    rq_st->probed++;
    return AEMP_KEEP;
}

static void rq_family(aemp_node_t *n, const char *family, json_t *r, void *ud)
{
    (void)n;
    (void)family;
    json_object_set(rq_st->fam, rq_families[(intptr_t)ud], r ? r : json_null());
    rq_st->answers++;
}

/* Runs the loop until nothing waits in the local queue (a bound: a
 * message may make another). */
static void rq_settle(aemp_node_t *n, struct ev_loop *loop)
{
    for (int i = 0; i < 64; i++) {
        ev_run(loop, EVRUN_NOWAIT);
        if (!n->local_head) break;
    }
}

/* Every family of ours as the node's own client sees it now. */
static json_t *rq_view(aemp_node_t *n, struct ev_loop *loop)
{
    rq_st->fam = json_object();
    rq_st->answers = 0;
    for (size_t k = 0; k < RQ_NFAM; k++)
        FUZZ_CHECK(aemp_db_family(n, rq_families[k], rq_family, (void *)(intptr_t)k) == 0);
    rq_settle(n, loop);
    FUZZ_CHECK(rq_st->answers == (int)RQ_NFAM);
    json_t *v = rq_st->fam;
    rq_st->fam = NULL;
    return v;
}

/* "@NAME" is our port NAME's id, "@NAME.l" its local id, "#@NAME.l" the
 * address of a message to it; an endpoint is 127.0.0.1:9. */
static json_t *rq_subst(const json_t *v)
{
    const char *s = json_string_value(v);
    int hash = s && s[0] == '#' && s[1] == '@';
    if (s && (s[0] == '@' || hash)) {
        s += hash;
        for (int i = 0; i < RQ_NPORTS; i++) {
            size_t l = strlen(rq_names[i]);
            const char *local = strchr(rq_st->id[i], '#');
            if (strncmp(s + 1, rq_names[i], l)) continue;
            if (!s[l + 1] && !hash) return json_string(rq_st->id[i]);
            if (!strcmp(s + l + 1, ".l")) return json_string(hash ? local : local + 1);
        }
        s -= hash;
    }
    struct sockaddr_storage sa;
    socklen_t sl;
    if (s && !aemp__ep_parse(s, &sa, &sl)) return json_string("127.0.0.1:9");
    return json_deep_copy(v);
}

/* Whether some string in v holds s. */
static int rq_names_it(const json_t *v, const char *s)
{
    size_t i;
    json_t *e;
    const char *k;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return memmem(json_string_value(v), json_string_length(v), s, strlen(s)) != NULL;
    case JSON_ARRAY:
        json_array_foreach(v, i, e) if (rq_names_it(e, s)) return 1;
        return 0;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, k, e) if (strstr(k, s) || rq_names_it(e, s)) return 1;
        return 0;
    default:
        return 0;
    }
}

/* The peer's message m, as a link hands it to the node. */
static void rq_deliver(aemp_node_t *n, json_t *m)
{
    const char *first = json_string_value(json_array_get(m, 0));
    aemp__enter(n);
    if (first && first[0] == '#') {
        json_t *elems = json_array();
        for (size_t i = 1; elems && i < json_array_size(m); i++) json_array_append(elems, json_array_get(m, i));
        if (elems) aemp__dispatch(n, RQ_PEER, first + 1, strlen(first + 1), elems);
        json_decref(elems);
    } else {
        aemp__dispatch(n, RQ_PEER, "", 0, m);
    }
    aemp__leave(n);
}

FUZZ_TARGET(requests)
{
    json_t *in = aemp_json_decode((const char *)data, size, 0, NULL, 0);
    if (!json_is_array(in)) {
        json_decref(in);
        return 0;
    }
    rq_state_t st = {0};
    rq_st = &st;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    FUZZ_CHECK(loop != NULL);
    static const char secret[] = "fuzz secret";
    aemp_node_config_t c = {.protocol = 1, .nodeid = RQ_SELF, .secret = secret,
                            .secret_len = sizeof secret - 1, .log = rq_log};
    c.connect_timeout = 1;
    c.connect_interval = 0.5;
    aemp_node_t *n = aemp_node_new(loop, &c, NULL);
    FUZZ_CHECK(n != NULL && aemp_node_start(n) == 0); /* no binds: no listener */
    aemp__enter(n);
    FUZZ_CHECK(aemp__global_start(n) == 0);
    aemp__leave(n);
    for (int i = 0; i < RQ_NPORTS; i++) {
        st.port[i] = aemp_port_new(n, i ? rq_quiet : rq_echo, NULL);
        FUZZ_CHECK(st.port[i] != NULL);
        st.id[i] = strdup(aemp_port_id(st.port[i]));
        FUZZ_CHECK(aemp_mon(n, st.id[i], rq_died, (void *)(intptr_t)i) != NULL);
    }
    FUZZ_CHECK(aemp_func_register(n, "echoer", rq_echoer, NULL) == 0);
    FUZZ_CHECK(aemp_db_set(n, "svc", "mine", json_string("ours")) == 0);
    FUZZ_CHECK(aemp_db_reg(n, "svc", st.id[1], NULL) == 0);
    FUZZ_CHECK(aemp_db_set(n, "cfg", "k", json_pack("{si}", "v", 1)) == 0);
    rq_settle(n, loop);
    json_t *before = rq_view(n, loop);

    json_t *msgs = fuzz_json_map(in, rq_subst);
    json_decref(in);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (!json_is_array(m) || !json_array_size(m)) continue;
        rq_deliver(n, m);
        rq_settle(n, loop);
        if (n->destroy_pending) break;
    }
    FUZZ_CHECK(!n->destroy_pending);

    /* the node still answers */
    aemp_port_t *probe = aemp_port_new(n, rq_probe, NULL);
    FUZZ_CHECK(probe != NULL);
    json_t *t = json_pack("[ss]", "time", aemp_port_id(probe));
    rq_deliver(n, t);
    json_decref(t);
    rq_settle(n, loop);
    FUZZ_CHECK(st.probed == 1);
    /* our ports live unless the input named them */
    for (int k = 0; k < RQ_NPORTS; k++)
        if (st.dead[k]) FUZZ_CHECK(rq_names_it(msgs, strchr(st.id[k], '#') + 1));

    /* the peer goes: what stays is exactly ours */
    aemp__enter(n);
    aemp__peer_t *p = aemp__peer_get(n, RQ_PEER, 1);
    FUZZ_CHECK(p != NULL);
    aemp__global_peer_down(n, p);
    aemp__leave(n);
    rq_settle(n, loop);
    FUZZ_CHECK(aemp__global_held(n, NULL) == 0);
    json_t *after = rq_view(n, loop);
    /* a port of ours that died legitimately took its registration along */
    if (st.dead[1]) json_object_del(json_object_get(before, "svc"), st.id[1]);
    if (!fuzz_json_same(before, after)) {
        char *b = aemp_json_encode(before, NULL), *a = aemp_json_encode(after, NULL);
        fprintf(stderr, "our database before: %s\nafter the peer went: %s\n", b, a);
        free(b);
        free(a);
        FUZZ_CHECK(!"the database is what we wrote");
    }
    json_decref(before);
    json_decref(after);
    json_decref(msgs);
    aemp_node_destroy(n);
    ev_run(loop, EVRUN_NOWAIT);
    ev_loop_destroy(loop);
    for (int k = 0; k < RQ_NPORTS; k++) free(st.id[k]);
    rq_st = NULL;
    return 0;
}
