/*
 * cmd_p1net.c - the network subcommands of the aemp command in protocol 1
 * (AnyEvent::MP 2.02's aemp, PROTOCOL-1 §9): `run` runs a node as the
 * configuration and the program's KEY VALUE arguments say; `snd`, `cal`
 * and `mon` are short-lived nodes that join the network through the
 * configured seeds and act on one port.
 *
 * As in 2.02, the command nodes are `aemp/%n/%u` of profile `aemp`, with
 * the binds, seeds, secret and cert of the rc file; they send what 2.02's
 * tool sends (transcript 11):
 *   snd PORT ARG...  [ID, ARG...], ["","mon1",ID], then
 *                    ["","snd",REPLY,"message sent successfully"] to the
 *                    port's node, which relays the text back once the
 *                    message is through; printed as 2.02 prints it.
 *   cal PORT ARG...  ["","mon1",ID] then [ID, ARG..., REPLY]; the reply's
 *                    elements are printed as one JSON array.
 *   mon PORT         ["","mon1",ID]; the reason is printed as JSON.
 * A bare node id is the node port, which is not monitored (2.02 sends
 * nothing for it either). Each ARG is one element: JSON when it starts
 * with [, { or ", else a string.
 *
 * Unlike 2.02's tool, nothing waits forever for the network: a command
 * whose every seed has failed (or none answered within 10 s) ends with
 * the reason, and one failure is one line on stderr and exit status 1.
 *
 * Binds and seeds are resolved here with aemp_hostport_resolve (2.02's
 * rules: "host:*", "*", a bare port) and handed to the node as "ip:port"
 * endpoints.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define JOIN_TIMEOUT 10.0  /* seconds until some seed must be up */
#define SND_TIMEOUT 5.0    /* 2.02's snd gives up after 5 s */
#define CMD_NODEID "aemp/%n/%u"
#define CMD_PROFILE "aemp"
#define SND_TEXT "message sent successfully"

/* ------------------------------------------------------------------ */
/* configuration                                                       */

/* A node's configuration, with binds and seeds resolved to endpoints. */
typedef struct p1cfg {
    aemp_p1_config_t c;
    char **binds, **seeds; /* "ip:port", NULL-terminated */
    size_t nbinds, nseeds;
} p1cfg_t;

static void p1cfg_free(p1cfg_t *p)
{
    for (size_t i = 0; p->binds && i < p->nbinds; i++) free(p->binds[i]);
    for (size_t i = 0; p->seeds && i < p->nseeds; i++) free(p->seeds[i]);
    free(p->binds);
    free(p->seeds);
    aemp_p1_config_free(&p->c);
    memset(p, 0, sizeof *p);
}

static void host_name(char *buf, size_t n)
{
    if (gethostname(buf, n)) snprintf(buf, n, "localhost");
    buf[n - 1] = 0;
}

/* Resolves the entries of a bind or seed list into *out (endpoints,
 * without duplicates). Returns 0, or 1 after printing why. */
static int resolve_list(const char *prog, const char *what, char *const *in, size_t nin,
                        char ***out, size_t *nout)
{
    char host[256];
    host_name(host, sizeof host);
    *out = calloc(1, sizeof **out);
    *nout = 0;
    if (!*out) goto nomem;
    for (size_t i = 0; i < nin; i++) {
        int err = 0;
        char *eps = aemp_hostport_resolve(in[i], host, &err);
        if (!eps) {
            if (err == AEMP_ENOMEM) goto nomem;
            char h[256], port[64];
            /* "*" on a host with no address but loopback: nothing, as in 2.02 */
            if (err == AEMP_ERESOLVE && !aemp_hostport_parse(in[i], host, h, sizeof h, port, sizeof port) &&
                !strcmp(h, "*"))
                continue;
            cli_err(prog, "%s '%s': %s", what, in[i],
                    err == AEMP_EINVAL ? "not a host:port" : "cannot resolve");
            return 1;
        }
        for (char *p = eps, *next; p && *p; p = next) {
            next = strchr(p, ',');
            if (next) *next++ = 0;
            int dup = 0;
            for (size_t k = 0; k < *nout; k++) dup |= !strcmp((*out)[k], p);
            char **v = dup ? *out : realloc(*out, (*nout + 2) * sizeof **out);
            if (!v || (!dup && !(v[*nout] = strdup(p)))) {
                if (v) *out = v;
                free(eps);
                goto nomem;
            }
            *out = v;
            if (!dup) v[++*nout] = NULL;
        }
        free(eps);
    }
    return 0;
nomem:
    cli_err(prog, "out of memory");
    return 1;
}

/* The effective configuration of profile (NULL: the host name) with
 * args (an object, borrowed) as the program's arguments, from rc (NULL:
 * no file). Returns 0, or 1 after printing why. */
static int p1cfg_load(const char *prog, const json_t *rc, const char *profile, const json_t *args,
                      unsigned flags, p1cfg_t *p)
{
    char host[256], err[AEMP_RC_ERRMAX];
    memset(p, 0, sizeof *p);
    host_name(host, sizeof host);
    if (!profile) profile = host;
    json_t *merged = aemp_rc_profile(rc, profile, args, flags, err, sizeof err);
    if (!merged ||
        aemp_p1_config_make(&p->c, merged, profile, host, aemp_random_source, NULL, err, sizeof err)) {
        json_decref(merged);
        cli_err(prog, "%s", err);
        return 1;
    }
    json_decref(merged);
    if (resolve_list(prog, "bind", p->c.binds, p->c.nbinds, &p->binds, &p->nbinds) ||
        resolve_list(prog, "seed", p->c.seeds, p->c.nseeds, &p->seeds, &p->nseeds)) {
        p1cfg_free(p);
        return 1;
    }
    return 0;
}

/* What the node callbacks of run and the commands share. */
typedef struct p1base {
    const char *prog;
    struct ev_loop *loop;
    aemp_node_t *node;
    int verbose;
    int started;
    char *start_error; /* the node's last error while starting */
} p1base_t;

/* Creates and starts the node of p (log and link callbacks get ud, which
 * starts with a p1base_t). Returns 0, or 1 after printing why. */
static int p1_node_start(p1base_t *b, const p1cfg_t *p,
                         void (*log)(void *, int, const char *),
                         void (*link)(void *, aemp_node_t *, const char *, int, const char *))
{
    signal(SIGPIPE, SIG_IGN);
    b->loop = ev_default_loop(0);
    if (!b->loop) {
        cli_err(b->prog, "cannot initialise the event loop");
        return 1;
    }
    aemp_node_config_t cfg = {
        .log = log,
        .log_ud = b,
        .on_link = link,
        .link_ud = b,
    };
    aemp_p1_node_config(&cfg, &p->c);
    /* the binds and seeds as resolved here (errors were told by name) */
    cfg.binds = (const char *const *)p->binds;
    cfg.nbinds = p->nbinds;
    cfg.seeds = (const char *const *)p->seeds;
    cfg.nseeds = p->nseeds;
    int err = 0;
    b->node = aemp_node_new(b->loop, &cfg, &err);
    if (!b->node) {
        cli_err(b->prog, "cannot create the node: %s",
                b->start_error ? b->start_error : aemp_strerror(err));
        return 1;
    }
    if ((err = aemp_node_start(b->node))) {
        cli_err(b->prog, "cannot start the node: %s",
                b->start_error ? b->start_error : aemp_strerror(err));
        return 1;
    }
    b->started = 1;
    return 0;
}

/* While starting, the node's last error becomes the one error line;
 * returns 1 when msg was taken so. */
static int start_log(p1base_t *b, int level, const char *msg)
{
    if (b->started || level > AEMP_LOG_WARN) return 0;
    free(b->start_error);
    b->start_error = strdup(msg);
    if (b->verbose) cli_logf(b->prog, "%s", msg);
    return 1;
}

/* ------------------------------------------------------------------ */
/* run                                                                 */

typedef struct run1 {
    p1base_t b;
    cli_svc_t svc;
} run1_t;

static void run_log_cb(void *ud, int level, const char *msg)
{
    p1base_t *b = ud;
    if (start_log(b, level, msg)) return;
    if (level <= AEMP_LOG_WARN + (b->verbose > 0) + (b->verbose > 1)) cli_logf(b->prog, "%s", msg);
}

/* -v: the node logs a link coming up (with the peer's id) at level
 * info; a link going down is logged by its address, and said here by the
 * node id too. */
static void run_link_cb(void *ud, aemp_node_t *node, const char *id, int up, const char *reason)
{
    p1base_t *b = ud;
    if (b->verbose && !up)
        cli_logf(b->prog, "link down: %s: %s", id, reason && *reason ? reason : "closed");
}

static void run_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    p1base_t *b = w->data;
    if (b->verbose)
        cli_logf(b->prog, "%s: shutting down", w->signum == SIGINT ? "SIGINT" : "SIGTERM");
    ev_break(loop, EVBREAK_ALL);
}

/* The services of the configuration: each a built-in name, or an array
 * holding one. Returns the mask, or -1 after printing why. */
static long services_mask(const char *prog, const json_t *services)
{
    unsigned mask = 0;
    size_t i;
    json_t *s;
    json_array_foreach(services, i, s) {
        const json_t *name = json_is_array(s) && json_array_size(s) == 1 ? json_array_get(s, 0) : s;
        unsigned bit = cli_svc_bit(json_string_value(name));
        if (!bit) {
            char *text = aemp_json_encode(s, NULL);
            cli_err(prog, "services: %s is not a service of this node (echo, exit, count)",
                    text ? text : "?");
            free(text);
            return -1;
        }
        mask |= bit;
    }
    return mask;
}

/* Perl's truth of a JSON value. */
static int perl_true(const json_t *v)
{
    const char *s = json_string_value(v);
    if (s) return *s && strcmp(s, "0");
    if (json_is_number(v)) return json_number_value(v) != 0;
    return json_is_true(v) || json_is_array(v) || json_is_object(v);
}

/* `run [-v]... [KEY VALUE]...`: KEY VALUE as the arguments of 2.02's
 * configure: profile NAME, force, norc, every other key a setting. */
static int p1_run(const json_t *rc, json_t *const *args, int nargs)
{
    const char *prog = "aemp run";
    run1_t r = {.b = {.prog = prog}};
    const char *profile = NULL;
    unsigned flags = 0;
    json_t *kv = json_object();
    p1cfg_t p = {0};
    int status = 1;
    if (!kv) {
        cli_err(prog, "out of memory");
        return 1;
    }
    for (int i = 0; i < nargs; i++) {
        const char *k = json_string_value(args[i]);
        if (k && (!strcmp(k, "-v") || !strcmp(k, "--verbose"))) {
            r.b.verbose++;
            continue;
        }
        if (!k || i + 1 == nargs) {
            cli_err(prog, k ? "%s: a KEY without a VALUE" : "a KEY must be a string%s",
                    k ? k : "");
            status = 2;
            goto out;
        }
        const json_t *v = args[++i];
        if (!strcmp(k, "profile")) {
            if (!(profile = json_string_value(v))) {
                cli_err(prog, "profile: the profile name must be a string");
                status = 2;
                goto out;
            }
        } else if (!strcmp(k, "force") || !strcmp(k, "norc")) {
            unsigned f = !strcmp(k, "force") ? AEMP_RC_FORCE : AEMP_RC_NORC;
            flags = perl_true(v) ? flags | f : flags & ~f;
        } else if (json_object_set(kv, k, (json_t *)v)) {
            cli_err(prog, "out of memory");
            goto out;
        }
    }
    if (p1cfg_load(prog, (flags & AEMP_RC_NORC) ? NULL : rc, profile, kv, flags & AEMP_RC_FORCE, &p))
        goto out;
    long mask = services_mask(prog, p.c.services);
    if (mask < 0) goto out;
    if (!p.c.secret && !p.c.cert)
        cli_logf(prog, "no secret and no cert configured: no other node can authenticate this one "
                       "(see 'aemp --protocol 1 gensecret')");
    if (p1_node_start(&r.b, &p, run_log_cb, run_link_cb)) goto out;
    r.svc = (cli_svc_t){.node = r.b.node, .prog = prog, .verbose = r.b.verbose, .global = 1};
    int rc2 = cli_svc_start(&r.svc, (unsigned)mask);
    if (rc2) {
        cli_err(prog, "cannot start the services: %s", aemp_strerror(rc2));
        goto out;
    }
    ev_signal sigint, sigterm;
    ev_signal_init(&sigint, run_signal_cb, SIGINT);
    ev_signal_init(&sigterm, run_signal_cb, SIGTERM);
    sigint.data = sigterm.data = &r.b;
    ev_signal_start(r.b.loop, &sigint);
    ev_signal_start(r.b.loop, &sigterm);
    /* line 1: the node id; line 2: the listeners, space-separated */
    size_t nl = 0;
    const char *const *ls = aemp_node_listeners(r.b.node, &nl);
    printf("%s\n", aemp_node_noderef(r.b.node));
    for (size_t i = 0; i < nl; i++) printf("%s%s", i ? " " : "", ls[i]);
    printf("\n");
    if (fflush(stdout) != 0) {
        cli_err(prog, "cannot write to standard output");
    } else {
        ev_run(r.b.loop, 0);
        status = 0;
    }
    ev_signal_stop(r.b.loop, &sigint);
    ev_signal_stop(r.b.loop, &sigterm);
out:
    /* closes every link: peers see the connection end, not a timeout */
    aemp_node_destroy(r.b.node);
    p1cfg_free(&p);
    free(r.b.start_error);
    json_decref(kv);
    return status;
}

/* ------------------------------------------------------------------ */
/* the command node of snd, cal and mon                                */

typedef struct cmd1 {
    p1base_t b;
    const char *name;       /* "snd", "cal", "mon" */
    int status;             /* -1 while running */
    char **seeds;           /* the seed endpoints (borrowed from the config) */
    size_t nseeds;
    unsigned char *seed_failed;
    char *seed_error;       /* the last seed failure */
    int joined;             /* a link to a seed is up */
    char *node;             /* the target's node id */
    const char *port;       /* the target: NODEID#ID or NODEID */
    int is_node_port;
    int target_up;          /* the link to the target's node was up */
    json_t *msg;            /* snd, cal: the elements */
    json_t *confirmed;      /* snd: the confirmation, once it came */
    int printed;
    aemp_mon_t *mon;
    aemp_port_t *reply;
    ev_timer join_w, deadline_w, drain_w;
    double drain_end;
} cmd1_t;

static void cmd_finish(cmd1_t *c, int status)
{
    if (c->status < 0) c->status = status;
}

static void cmd_fail(cmd1_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cmd_fail(cmd1_t *c, const char *fmt, ...)
{
    if (c->status >= 0) return;
    va_list ap;
    fprintf(stderr, "%s: ", c->b.prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cmd_finish(c, 1);
}

static void print_confirmation(cmd1_t *c);

/* Ends with status once what is queued for the target is written (at
 * most 1 s). */
static void drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    cmd1_t *c = w->data;
    if (c->status >= 0) {
        ev_timer_stop(loop, w);
        return;
    }
    if (c->confirmed && !c->printed) {
        c->printed = 1;
        aemp_mon_cancel(c->mon);
        c->mon = NULL;
        print_confirmation(c);
    }
    if (!aemp_node_queued(c->b.node, c->node) || ev_now(loop) >= c->drain_end) {
        ev_timer_stop(loop, w);
        cmd_finish(c, 0);
    }
}

static void finish_flushed(cmd1_t *c)
{
    if (ev_is_active(&c->drain_w)) return;
    c->drain_end = ev_now(c->b.loop) + 1.0;
    ev_timer_set(&c->drain_w, 0.005, 0.005);
    ev_timer_start(c->b.loop, &c->drain_w);
}

static long seed_index(const cmd1_t *c, const char *name)
{
    for (size_t i = 0; i < c->nseeds; i++)
        if (!strcmp(c->seeds[i], name)) return (long)i;
    return -1;
}

/* A seed failed before we joined: once every seed has, that is the end. */
static void seed_failed(cmd1_t *c, size_t i, const char *why)
{
    c->seed_failed[i] = 1;
    free(c->seed_error);
    c->seed_error = strdup(why);
    for (size_t k = 0; k < c->nseeds; k++)
        if (!c->seed_failed[k]) return;
    if (c->nseeds == 1)
        cmd_fail(c, "cannot join the network: seed %s: %s", c->seeds[0], why);
    else
        cmd_fail(c, "cannot join the network: no seed reachable (last: %s: %s)", c->seeds[i], why);
}

static void cmd_log_cb(void *ud, int level, const char *msg)
{
    cmd1_t *c = ud;
    if (start_log(&c->b, level, msg)) return;
    if (c->b.verbose && level <= AEMP_LOG_INFO + (c->b.verbose > 1)) cli_logf(c->b.prog, "%s", msg);
    /* a failed attempt is logged as "ENDPOINT: MESSAGE" */
    if (c->joined || level > AEMP_LOG_WARN) return;
    for (size_t i = 0; i < c->nseeds; i++) {
        size_t n = strlen(c->seeds[i]);
        if (!strncmp(msg, c->seeds[i], n) && msg[n] == ':' && msg[n + 1] == ' ')
            seed_failed(c, i, msg + n + 2);
    }
}

static void act(cmd1_t *c);

/* What the monitor of the target port says. */
static void mon_cb(aemp_node_t *node, const char *portid, json_t *reason, void *ud)
{
    cmd1_t *c = ud;
    c->mon = NULL;
    const char *tag = json_string_value(json_array_get(reason, 0));
    if (tag && !strcmp(tag, "transport_error") && !c->target_up) {
        const char *why = json_string_value(json_array_get(reason, 2));
        cmd_fail(c, "cannot reach node %s: %s", c->node, why ? why : "unreachable");
        return;
    }
    if (!strcmp(c->name, "mon")) {
        cmd_finish(c, cli_print_json(c->b.prog, reason) ? 1 : 0);
        return;
    }
    char *text = aemp_json_encode(reason, NULL);
    const char *after = strcmp(c->name, "cal") ? "" : " before replying";
    if (tag && !strcmp(tag, "no_such_port"))
        cmd_fail(c, "%s: no such port", portid);
    else if (json_array_size(reason) == 0)
        cmd_fail(c, "%s exited%s", portid, after);
    else
        cmd_fail(c, "%s died%s: %s", portid, after, text ? text : "?");
    free(text);
}

static void cmd_link_cb(void *ud, aemp_node_t *node, const char *id, int up, const char *reason)
{
    cmd1_t *c = ud;
    if (c->b.verbose) {
        if (up) cli_logf(c->b.prog, "link up: %s", id);
        else cli_logf(c->b.prog, "link down: %s: %s", id, reason && *reason ? reason : "closed");
    }
    if (c->status >= 0) return;
    int target = c->node && !strcmp(id, c->node);
    if (up) {
        if (target) c->target_up = 1;
        if (!c->joined) {
            /* nobody knows our random id: the first link is to a seed */
            c->joined = 1;
            ev_timer_stop(c->b.loop, &c->join_w);
            act(c);
        }
        return;
    }
    long s = seed_index(c, id);
    if (!c->joined && s >= 0) seed_failed(c, (size_t)s, reason && *reason ? reason : "closed");
    if (!target || c->mon) return; /* a monitor reports its port's node */
    if (!c->target_up) {
        cmd_fail(c, "cannot reach node %s: %s", c->node, reason && *reason ? reason : "unreachable");
    } else if (!strcmp(c->name, "mon")) {
        json_t *r = json_pack("[sss]", "transport_error", c->node, reason ? reason : "");
        cmd_finish(c, r && !cli_print_json(c->b.prog, r) ? 0 : 1);
        json_decref(r);
    } else {
        cmd_fail(c, "link to %s lost: %s", c->node, reason && *reason ? reason : "closed");
    }
}

static void join_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    cmd1_t *c = w->data;
    if (c->joined) return;
    if (c->seed_error)
        cmd_fail(c, "cannot join the network within %g s (last seed failure: %s)", JOIN_TIMEOUT,
                 c->seed_error);
    else
        cmd_fail(c, "cannot join the network: no seed answered within %g s", JOIN_TIMEOUT);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    cmd1_t *c = w->data;
    cmd_fail(c, "no confirmation from %s within %g s", c->node, SND_TIMEOUT);
}

/* snd: ["message sent successfully"] came back. The monitor may have
 * fired on the same read (the port's kil0 comes first): it is heard
 * before the drain's first look, which prints the reply. */
static int snd_reply_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    cmd1_t *c = ud;
    if (!c->confirmed) c->confirmed = json_incref(msg);
    finish_flushed(c);
    return AEMP_DONE;
}

/* Prints the confirmation as 2.02 prints it: its elements, each followed
 * by a space. */
static void print_confirmation(cmd1_t *c)
{
    size_t i;
    json_t *e;
    json_array_foreach(c->confirmed, i, e) {
        char *text = json_is_string(e) ? NULL : aemp_json_encode(e, NULL);
        printf("%s ", text ? text : json_string_value(e) ? json_string_value(e) : "");
        free(text);
    }
    printf("\n");
    if (fflush(stdout) != 0) cmd_fail(c, "cannot write to standard output");
}

static int cal_reply_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    cmd1_t *c = ud;
    if (cli_print_json(c->b.prog, msg)) {
        cmd_finish(c, 1);
        return AEMP_DONE;
    }
    /* tell the node we no longer watch its port (mon0), then go */
    aemp_mon_cancel(c->mon);
    c->mon = NULL;
    finish_flushed(c);
    return AEMP_DONE;
}

/* Joined: do what the command does, in 2.02's order. */
static void act(cmd1_t *c)
{
    aemp_node_t *n = c->b.node;
    int rc = 0;
    if (!strcmp(c->name, "snd")) {
        c->reply = aemp_port_new(n, snd_reply_cb, c);
        json_t *confirm = c->reply ? json_pack("[sss]", "snd", aemp_port_id(c->reply), SND_TEXT) : NULL;
        rc = aemp_send(n, c->port, c->msg);
        c->msg = NULL;
        if (!rc && !c->is_node_port && !(c->mon = aemp_mon(n, c->port, mon_cb, c))) rc = AEMP_ENOMEM;
        if (!rc) rc = confirm ? aemp_send(n, c->node, confirm) : AEMP_ENOMEM;
        else json_decref(confirm);
    } else if (!strcmp(c->name, "cal")) {
        if (!c->is_node_port && !(c->mon = aemp_mon(n, c->port, mon_cb, c))) rc = AEMP_ENOMEM;
        c->reply = rc ? NULL : aemp_port_new(n, cal_reply_cb, c);
        if (!c->reply || json_array_append_new(c->msg, json_string(aemp_port_id(c->reply))))
            rc = AEMP_ENOMEM;
        if (!rc) rc = aemp_send(n, c->port, c->msg);
        else json_decref(c->msg);
        c->msg = NULL;
    } else if (!c->is_node_port) {
        if (!(c->mon = aemp_mon(n, c->port, mon_cb, c))) rc = AEMP_ENOMEM;
    } else if (!aemp_node_is_up(n, c->node)) {
        /* a node port has no monitor: watch the link; [""] makes one */
        rc = aemp_send(n, c->node, json_array());
    } else {
        c->target_up = 1;
    }
    if (rc) cmd_fail(c, "cannot send to %s: %s", c->port, aemp_strerror(rc));
}

/* PORT as given: NODEID#ID, or a bare NODEID. Returns 0 with *node set
 * (malloc'd), or 2 after printing why. */
static int split_port(const char *prog, const json_t *arg, char **node)
{
    const char *port = json_string_value(arg);
    if (!port) {
        cli_err(prog, "PORT must be a string (NODEID#ID, or a node id for its node port)");
        return 2;
    }
    for (const char *p = port; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ';') {
            cli_err(prog, "bad port: a port id cannot contain ';' or control characters");
            return 2;
        }
    const char *hash = strchr(port, '#');
    if (!*port || hash == port) {
        cli_err(prog, "bad port '%s': no node id (PORT is NODEID#ID, or a node id)", port);
        return 2;
    }
    if (hash && (!hash[1] || strchr(hash + 1, '#'))) {
        cli_err(prog, "bad port '%s': %s", port,
                hash[1] ? "more than one '#'" : "no port name after '#' (a bare node id is its node port)");
        return 2;
    }
    *node = hash ? strndup(port, (size_t)(hash - port)) : strdup(port);
    if (!*node) {
        cli_err(prog, "out of memory");
        return 1;
    }
    return 0;
}

static int p1_command(const char *name, const json_t *rc, json_t *const *args, int nargs)
{
    char prog[16];
    snprintf(prog, sizeof prog, "aemp %s", name);
    cmd1_t c = {.b = {.prog = prog}, .name = name, .status = -1};
    p1cfg_t p = {0};
    int status = 1;
    int i = 0;
    for (; i < nargs && json_is_string(args[i]); i++) {
        const char *a = json_string_value(args[i]);
        if (strcmp(a, "-v") && strcmp(a, "--verbose")) break;
        c.b.verbose++;
    }
    if (i == nargs) {
        cli_err(prog, "PORT missing (see 'aemp --protocol 1 help')");
        return 2;
    }
    if (!strcmp(name, "mon") && i + 1 < nargs) {
        cli_err(prog, "mon takes PORT alone");
        return 2;
    }
    if ((status = split_port(prog, args[i], &c.node))) return status;
    c.port = json_string_value(args[i]);
    c.is_node_port = !strchr(c.port, '#');
    status = 1;
    int nomem = 0;
    if (strcmp(name, "mon")) {
        nomem |= !(c.msg = json_array());
        for (int k = i + 1; k < nargs && !nomem; k++) nomem |= json_array_append(c.msg, args[k]);
    }
    json_t *cmdargs = nomem ? NULL : json_pack("{ss}", "nodeid", CMD_NODEID);
    if (!cmdargs) {
        cli_err(prog, "out of memory");
        goto out;
    }
    int bad = p1cfg_load(prog, rc, CMD_PROFILE, cmdargs, 0, &p);
    json_decref(cmdargs);
    if (bad) goto out;
    if (!p.nseeds) {
        cli_err(prog, "no seeds configured: the command joins the network through them "
                      "(see 'aemp --protocol 1 setseeds HOST:PORT')");
        goto out;
    }
    c.seeds = p.seeds;
    c.nseeds = p.nseeds;
    if (!(c.seed_failed = calloc(p.nseeds, 1))) {
        cli_err(prog, "out of memory");
        goto out;
    }
    if (p1_node_start(&c.b, &p, cmd_log_cb, cmd_link_cb)) goto out;
    if (c.b.verbose) cli_logf(prog, "node %s", aemp_node_noderef(c.b.node));
    ev_timer_init(&c.join_w, join_timeout_cb, JOIN_TIMEOUT, 0.0);
    ev_timer_init(&c.deadline_w, deadline_cb, SND_TIMEOUT, 0.0);
    ev_init(&c.drain_w, drain_cb);
    c.join_w.data = c.deadline_w.data = c.drain_w.data = &c;
    ev_timer_start(c.b.loop, &c.join_w);
    if (!strcmp(name, "snd")) ev_timer_start(c.b.loop, &c.deadline_w);
    /* a failure may come from inside a call, before the loop runs */
    while (c.status < 0) ev_run(c.b.loop, EVRUN_ONCE);
    status = c.status;
    ev_timer_stop(c.b.loop, &c.join_w);
    ev_timer_stop(c.b.loop, &c.deadline_w);
    ev_timer_stop(c.b.loop, &c.drain_w);
out:
    aemp_node_destroy(c.b.node);
    json_decref(c.msg);
    json_decref(c.confirmed);
    free(c.seed_failed);
    free(c.seed_error);
    free(c.node);
    free(c.b.start_error);
    p1cfg_free(&p);
    return status;
}

int cli_p1_network(const char *cmd, const json_t *rc, json_t *const *args, int nargs)
{
    if (!strcmp(cmd, "run")) return p1_run(rc, args, nargs);
    return p1_command(cmd, rc, args, nargs);
}
