/*
 * test_ports.c - ports, monitors and node-port services, locally and
 * between two nodes over loopback (in one process, and with a forked peer
 * for link loss): ordering, callbacks per tag and pattern, every monitor
 * form, remote monitors with mon1/mon0/kil, lookup/relay/time/eval/spawn.
 */
#include "test.h"
#include "harness_node.h"

#include <ev.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* What callbacks saw. */
typedef struct seen {
    int calls;
    json_t *log; /* array of what arrived */
    int ret;     /* what the callback returns */
    const char *die_with;
} seen_t;

static void seen_init(seen_t *s)
{
    memset(s, 0, sizeof *s);
    s->log = json_array();
}

static int rec_cb(aemp_port_t *p, json_t *msg, void *ud)
{
    seen_t *s = ud;
    s->calls++;
    json_array_append(s->log, msg);
    if (s->die_with) aemp_port_die(p, s->die_with);
    return s->ret;
}

static void mon_cb(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    seen_t *s = ud;
    (void)n;
    (void)portid;
    s->calls++;
    json_array_append(s->log, reason);
}

static int calls_at_least(void *ud)
{
    seen_t *s = ud;
    return s->calls >= s->ret + 1000; /* unused */
}

typedef struct {
    seen_t *s;
    int n;
} wantc_t;
static int have_calls(void *ud)
{
    wantc_t *w = ud;
    return w->s->calls >= w->n;
}

static int wait_calls(seen_t *s, int n, double secs)
{
    wantc_t w = {s, n};
    return run_until(have_calls, &w, secs);
}

/* The JSON text of element i of s->log, for comparisons. */
static char *logtext(seen_t *s, size_t i)
{
    static char buf[4096];
    char *t = aemp_json_encode(json_array_get(s->log, i), NULL);
    snprintf(buf, sizeof buf, "%s", t ? t : "(none)");
    free(t);
    return buf;
}

TEST(ports_local_order_and_elements)
{
    tnode_t a;
    seen_t s;
    start_ticker();
    seen_init(&s);
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    aemp_port_t *p = aemp_port_new(a.node, rec_cb, &s);
    REQUIRE(p);
    const char *id = aemp_port_id(p);
    CHECK(!strncmp(id, aemp_node_noderef(a.node), strlen(aemp_node_noderef(a.node))));
    CHECK(strchr(id, '#') != NULL);
    for (int i = 0; i < 500; i++) CHECK_INT(aemp_sendf(a.node, id, "[si]", "n", i), 0);
    CHECK_INT(s.calls, 0); /* never inside the send */
    CHECK(wait_calls(&s, 500, 5));
    int order_ok = 1;
    for (int i = 0; i < 500; i++)
        order_ok &= json_integer_value(json_array_get(json_array_get(s.log, (size_t)i), 1)) == i;
    CHECK(order_ok);
    CHECK_STR(logtext(&s, 0), "[\"n\",0]");
    /* ids are never reused */
    aemp_port_t *q = aemp_port_new(a.node, rec_cb, &s);
    CHECK(strcmp(aemp_port_id(q), id) != 0);
    json_decref(s.log);
    aemp_node_destroy(a.node);
    (void)calls_at_least;
}

TEST(ports_tag_and_pattern_callbacks)
{
    tnode_t a;
    seen_t tag, pat, mini;
    start_ticker();
    seen_init(&tag);
    seen_init(&pat);
    seen_init(&mini);
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    aemp_port_t *p = aemp_port_new(a.node, rec_cb, &mini);
    CHECK_INT(aemp_port_rcv(p, "ping", rec_cb, &tag), 0);
    CHECK_INT(aemp_port_rcv_match(p, json_pack("[si]", "set", 1), rec_cb, &pat), 0);
    tag.ret = AEMP_DONE; /* removed after the first match */
    const char *id = aemp_port_id(p);
    aemp_sendf(a.node, id, "[si]", "ping", 1);
    aemp_sendf(a.node, id, "[si]", "ping", 2);
    aemp_sendf(a.node, id, "[sis]", "set", 1, "x");
    aemp_sendf(a.node, id, "[sis]", "set", 2, "y");
    aemp_sendf(a.node, id, "[s]", "other");
    CHECK(wait_calls(&mini, 3, 5));
    CHECK_INT(tag.calls, 1);
    CHECK_INT(pat.calls, 1);
    CHECK_STR(logtext(&pat, 0), "[\"set\",1,\"x\"]");
    CHECK_INT(mini.calls, 3); /* ping 2, set 2, other */
    CHECK_STR(logtext(&mini, 0), "[\"ping\",2]");
    CHECK_INT(aemp_port_rcv(p, NULL, rec_cb, &tag), AEMP_EINVAL);
    json_decref(tag.log);
    json_decref(pat.log);
    json_decref(mini.log);
    aemp_node_destroy(a.node);
}

TEST(ports_monitor_forms_local)
{
    tnode_t a;
    seen_t cb, done, died, sink, victim2;
    start_ticker();
    seen_init(&cb);
    seen_init(&done);
    seen_init(&died);
    seen_init(&sink);
    seen_init(&victim2);
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    /* a miniport that is done exits normally: reason [] */
    aemp_port_t *quitter = aemp_port_new(a.node, rec_cb, &done);
    done.ret = AEMP_DONE;
    CHECK(aemp_mon(a.node, aemp_port_id(quitter), mon_cb, &cb) != NULL);
    aemp_sendf(a.node, aemp_port_id(quitter), "[s]", "quit");
    /* a handler error: ("die", MESSAGE) sent as a message */
    aemp_port_t *crasher = aemp_port_new(a.node, rec_cb, &died);
    char crasher_id[256];
    snprintf(crasher_id, sizeof crasher_id, "%s", aemp_port_id(crasher));
    died.die_with = "boom: the handler crashed";
    aemp_port_t *collector = aemp_port_new(a.node, rec_cb, &sink);
    CHECK(aemp_mon_send(a.node, aemp_port_id(crasher), aemp_port_id(collector),
                        json_pack("[s]", "v2_died")) != NULL);
    /* kill-port form: propagates an abnormal reason */
    aemp_port_t *linked = aemp_port_new(a.node, rec_cb, &victim2);
    seen_t linked_mon;
    seen_init(&linked_mon);
    CHECK(aemp_mon_kill(a.node, aemp_port_id(crasher), aemp_port_id(linked)) != NULL);
    aemp_mon(a.node, aemp_port_id(linked), mon_cb, &linked_mon);
    aemp_sendf(a.node, aemp_port_id(crasher), "[s]", "crash");
    CHECK(wait_calls(&linked_mon, 1, 5));
    CHECK(wait_calls(&cb, 1, 5));
    CHECK(wait_calls(&sink, 1, 5));
    CHECK_STR(logtext(&cb, 0), "[]");
    CHECK_STR(logtext(&sink, 0), "[\"v2_died\",\"die\",\"boom: the handler crashed\"]");
    CHECK_STR(logtext(&linked_mon, 0), "[\"die\",\"boom: the handler crashed\"]");
    /* a dead port gets nothing more (its handle is gone: use the id) */
    aemp_sendf(a.node, crasher_id, "[s]", "crash");
    run_for(0.1);
    CHECK_INT(died.calls, 1);
    /* nonexistent local port: fires from the loop, not inside the call */
    seen_t none;
    seen_init(&none);
    char bogus[256];
    snprintf(bogus, sizeof bogus, "%s#does.not.exist", aemp_node_noderef(a.node));
    CHECK(aemp_mon(a.node, bogus, mon_cb, &none) != NULL);
    CHECK_INT(none.calls, 0);
    CHECK(wait_calls(&none, 1, 5));
    CHECK_STR(logtext(&none, 0), "[\"no_such_port\",\"cannot monitor nonexistent port\"]");
    /* normal exit does not propagate through the kill form */
    seen_t v3, v3mon;
    seen_init(&v3);
    seen_init(&v3mon);
    aemp_port_t *p3 = aemp_port_new(a.node, rec_cb, &v3);
    aemp_port_t *p4 = aemp_port_new(a.node, rec_cb, &v3);
    aemp_mon_kill(a.node, aemp_port_id(p3), aemp_port_id(p4));
    aemp_mon(a.node, aemp_port_id(p4), mon_cb, &v3mon);
    aemp_port_kill(p3, NULL);
    run_for(0.2);
    CHECK_INT(v3mon.calls, 0);
    /* cancel: a cancelled monitor never fires */
    seen_t c;
    seen_init(&c);
    aemp_port_t *p5 = aemp_port_new(a.node, rec_cb, &v3);
    aemp_mon_t *m = aemp_mon(a.node, aemp_port_id(p5), mon_cb, &c);
    aemp_mon_cancel(m);
    aemp_mon_cancel(NULL);
    aemp_port_kill(p5, json_pack("[s]", "gone"));
    run_for(0.2);
    CHECK_INT(c.calls, 0);
    CHECK(strstr(a.warnings, "nobody monitors it") != NULL);
    json_decref(cb.log); json_decref(done.log); json_decref(died.log); json_decref(sink.log);
    json_decref(victim2.log); json_decref(linked_mon.log); json_decref(none.log);
    json_decref(v3.log); json_decref(v3mon.log); json_decref(c.log);
    aemp_node_destroy(a.node);
}

/* Two nodes on one loop. */
typedef struct pair {
    tnode_t a, b;
} pair_t;

static int mkpair(pair_t *p)
{
    start_ticker();
    if (!mknode(&p->a, "127.0.0.1:0", secret, 0)) return 0;
    if (!mknode(&p->b, "127.0.0.1:0", secret, 0)) return 0;
    return 1;
}

static void freepair(pair_t *p)
{
    aemp_node_destroy(p->a.node);
    aemp_node_destroy(p->b.node);
}

TEST(ports_remote_services)
{
    pair_t pr;
    seen_t r, target;
    seen_init(&r);
    seen_init(&target);
    REQUIRE(mkpair(&pr));
    aemp_node_t *A = pr.a.node, *B = pr.b.node;
    const char *bn = aemp_node_noderef(B);
    aemp_port_t *rp = aemp_port_new(A, rec_cb, &r);
    aemp_port_t *tp = aemp_port_new(B, rec_cb, &target);
    CHECK_INT(aemp_reg(B, "target", aemp_port_id(tp)), 0);
    CHECK_STR(aemp_lookup(B, "target"), aemp_port_id(tp));
    /* lookup: [REPLY..., PORTID] and null when missing */
    aemp_sendf(A, bn, "[ssss]", "lookup", "target", aemp_port_id(rp), "resolved");
    aemp_sendf(A, bn, "[ssss]", "lookup", "nobody", aemp_port_id(rp), "resolved_missing");
    CHECK(wait_calls(&r, 2, 5));
    char want[512];
    snprintf(want, sizeof want, "[\"resolved\",\"%s\"]", aemp_port_id(tp));
    CHECK_STR(logtext(&r, 0), want);
    CHECK_STR(logtext(&r, 1), "[\"resolved_missing\",null]");
    /* time: a real number near ours */
    aemp_sendf(A, bn, "[sss]", "time", aemp_port_id(rp), "time_reply");
    CHECK(wait_calls(&r, 3, 5));
    json_t *t = json_array_get(json_array_get(r.log, 2), 1);
    CHECK(json_is_real(t) && json_real_value(t) > ev_time() - 5 && json_real_value(t) < ev_time() + 5);
    /* eval: an error string, this node runs no Perl */
    aemp_sendf(A, bn, "[ssss]", "eval", "1 + 1", aemp_port_id(rp), "eval_reply");
    CHECK(wait_calls(&r, 4, 5));
    json_t *ev = json_array_get(r.log, 3);
    CHECK_STR(json_string_value(json_array_get(ev, 0)), "eval_reply");
    CHECK(json_string_length(json_array_get(ev, 1)) > 0);
    /* relay and relay_multiple */
    aemp_sendf(A, bn, "[sssi]", "relay", aemp_port_id(tp), "relayed", 1);
    aemp_sendf(A, bn, "[s[ssi][ssi]]", "relay_multiple", aemp_port_id(tp), "m", 1,
               aemp_port_id(rp), "m", 2);
    CHECK(wait_calls(&target, 2, 5));
    CHECK(wait_calls(&r, 5, 5));
    CHECK_STR(logtext(&target, 0), "[\"relayed\",1]");
    CHECK_STR(logtext(&target, 1), "[\"m\",1]");
    CHECK_STR(logtext(&r, 4), "[\"m\",2]");
    /* devnull is silent; an unknown function is warned about */
    aemp_sendf(A, bn, "[si]", "devnull", 1);
    aemp_sendf(A, bn, "[si]", "No::such::function", 1);
    run_for(0.2);
    CHECK(strstr(pr.b.warnings, "unable to resolve No::such::function") != NULL);
    /* registry replace */
    aemp_port_t *tp2 = aemp_port_new(B, rec_cb, &target);
    aemp_reg(B, "target", aemp_port_id(tp2));
    aemp_sendf(A, bn, "[ssss]", "lookup", "target", aemp_port_id(rp), "again");
    CHECK(wait_calls(&r, 6, 5));
    snprintf(want, sizeof want, "[\"again\",\"%s\"]", aemp_port_id(tp2));
    CHECK_STR(logtext(&r, 5), want);
    CHECK_INT(pr.a.links_down + pr.b.links_down, 0);
    json_decref(r.log);
    json_decref(target.log);
    freepair(&pr);
}

TEST(ports_remote_monitors)
{
    pair_t pr;
    seen_t victim, m1, m2, m3, quiet;
    seen_init(&victim);
    seen_init(&m1);
    seen_init(&m2);
    seen_init(&m3);
    seen_init(&quiet);
    REQUIRE(mkpair(&pr));
    aemp_node_t *A = pr.a.node, *B = pr.b.node;
    aemp_port_t *v = aemp_port_new(B, rec_cb, &victim);
    char vid[256];
    snprintf(vid, sizeof vid, "%s", aemp_port_id(v));
    /* monitor from A; kill on B with a reason; A hears kil */
    CHECK(aemp_mon(A, vid, mon_cb, &m1) != NULL);
    run_for(0.2); /* mon1 arrives before the kill */
    aemp_port_kill(v, json_pack("[ssi]", "killed_by_request", "some detail", 42));
    CHECK(wait_calls(&m1, 1, 5));
    CHECK_STR(logtext(&m1, 0), "[\"killed_by_request\",\"some detail\",42]");
    /* a remote port that does not exist */
    char bogus[256];
    snprintf(bogus, sizeof bogus, "%s#does.not.exist", aemp_node_noderef(B));
    aemp_mon(A, bogus, mon_cb, &m2);
    CHECK(wait_calls(&m2, 1, 5));
    CHECK_STR(logtext(&m2, 0), "[\"no_such_port\",\"cannot monitor nonexistent port\"]");
    /* mon0: after cancel, B no longer tells A */
    aemp_port_t *w = aemp_port_new(B, rec_cb, &victim);
    aemp_mon_t *mm = aemp_mon(A, aemp_port_id(w), mon_cb, &quiet);
    run_for(0.2);
    aemp_mon_cancel(mm);
    run_for(0.2);
    aemp_port_kill(w, json_pack("[s]", "after_cancel"));
    run_for(0.3);
    CHECK_INT(quiet.calls, 0);
    CHECK(strstr(pr.b.warnings, "after_cancel") != NULL); /* nobody watched any more */
    /* a remote kil does not kill the port: it is read as a notice */
    aemp_port_t *survivor = aemp_port_new(B, rec_cb, &victim);
    CHECK_INT(aemp_kil(A, aemp_port_id(survivor), json_pack("[s]", "remote_kill_attempt")), 0);
    run_for(0.2);
    aemp_sendf(A, aemp_port_id(survivor), "[s]", "still alive?");
    CHECK(wait_calls(&victim, 1, 5));
    CHECK_STR(logtext(&victim, 0), "[\"still alive?\"]");
    json_decref(victim.log); json_decref(m1.log); json_decref(m2.log);
    json_decref(m3.log); json_decref(quiet.log);
    freepair(&pr);
}

static void init_echo(aemp_node_t *n, aemp_port_t *p, json_t *args, void *ud)
{
    (void)n;
    (void)ud;
    const char *bad = json_string_value(json_array_get(args, 0));
    if (bad && !strcmp(bad, "fail")) aemp_port_die(p, "init refused");
    else aemp_port_rcv(p, "hi", rec_cb, ud);
}

TEST(ports_spawn_known_and_unknown)
{
    pair_t pr;
    seen_t got, mk, mu, mf;
    seen_init(&got);
    seen_init(&mk);
    seen_init(&mu);
    seen_init(&mf);
    REQUIRE(mkpair(&pr));
    aemp_node_t *A = pr.a.node, *B = pr.b.node;
    CHECK_INT(aemp_func_register(B, "Echo::init", init_echo, &got), 0);
    char *id = aemp_spawn(A, aemp_node_noderef(B), "Echo::init", json_pack("[s]", "ok"));
    REQUIRE(id);
    CHECK(!strncmp(id, aemp_node_noderef(B), strlen(aemp_node_noderef(B))));
    aemp_mon(A, id, mon_cb, &mk);
    aemp_sendf(A, id, "[si]", "hi", 7);
    CHECK(wait_calls(&got, 1, 5));
    CHECK_STR(logtext(&got, 0), "[\"hi\",7]");
    char *bad = aemp_spawn(A, aemp_node_noderef(B), "No::such::init", NULL);
    REQUIRE(bad);
    aemp_mon(A, bad, mon_cb, &mu);
    CHECK(wait_calls(&mu, 1, 5));
    /* the port died before mon1 arrived: no_such_port, or the die reason */
    const char *first = json_string_value(json_array_get(json_array_get(mu.log, 0), 0));
    CHECK(first && (!strcmp(first, "no_such_port") || !strcmp(first, "die")));
    /* locally: the die reason is observable */
    char *lb = aemp_spawn(B, aemp_node_noderef(B), "No::such::init", NULL);
    aemp_mon(B, lb, mon_cb, &mf);
    CHECK(wait_calls(&mf, 1, 5));
    CHECK_STR(logtext(&mf, 0), "[\"die\",\"unable to resolve No::such::init\"]");
    CHECK_INT(mk.calls, 0);
    free(id);
    free(bad);
    free(lb);
    json_decref(got.log); json_decref(mk.log); json_decref(mu.log); json_decref(mf.log);
    freepair(&pr);
}

TEST(ports_no_delivery_to_new_port_of_same_name)
{
    pair_t pr;
    seen_t old, fresh;
    seen_init(&old);
    seen_init(&fresh);
    REQUIRE(mkpair(&pr));
    aemp_node_t *A = pr.a.node, *B = pr.b.node;
    aemp_port_t *o = aemp_port_new(B, rec_cb, &old);
    aemp_reg(B, "svc", aemp_port_id(o));
    char oid[256];
    snprintf(oid, sizeof oid, "%s", aemp_port_id(o));
    aemp_port_kill(o, NULL);
    aemp_port_t *f = aemp_port_new(B, rec_cb, &fresh);
    aemp_reg(B, "svc", aemp_port_id(f));
    aemp_sendf(A, oid, "[s]", "for the old one");
    aemp_sendf(B, oid, "[s]", "for the old one, locally");
    aemp_sendf(A, aemp_port_id(f), "[s]", "for the new one");
    CHECK(wait_calls(&fresh, 1, 5));
    run_for(0.2);
    CHECK_INT(fresh.calls, 1);
    CHECK_INT(old.calls, 0);
    json_decref(old.log);
    json_decref(fresh.log);
    freepair(&pr);
}

TEST(ports_monitor_fires_on_link_loss)
{
    tnode_t a;
    seen_t m, r;
    seen_init(&m);
    seen_init(&r);
    char bn[128];
    start_ticker();
    pid_t pid = spawn_node(bn, sizeof bn, 0);
    REQUIRE(pid > 0);
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    /* the node port of the peer stands for any port there */
    aemp_port_t *rp = aemp_port_new(a.node, rec_cb, &r);
    aemp_sendf(a.node, bn, "[sss]", "time", aemp_port_id(rp), "t");
    CHECK(wait_calls(&r, 1, 5));
    char pid_port[256];
    snprintf(pid_port, sizeof pid_port, "%s#some.port", bn);
    aemp_mon(a.node, pid_port, mon_cb, &m);
    run_for(0.2); /* no_such_port comes back at once for a missing port */
    CHECK_INT(m.calls, 1);
    seen_t m2;
    seen_init(&m2);
    aemp_mon(a.node, bn, mon_cb, &m2); /* the node port always exists */
    run_for(0.2);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK(wait_calls(&m2, 1, 5));
    json_t *reason = json_array_get(m2.log, 0);
    CHECK_STR(json_string_value(json_array_get(reason, 0)), "transport_error");
    CHECK_STR(json_string_value(json_array_get(reason, 1)), bn);
    CHECK(json_string_length(json_array_get(reason, 2)) > 0);
    json_decref(m.log);
    json_decref(m2.log);
    json_decref(r.log);
    aemp_node_destroy(a.node);
}

TEST(ports_monitor_fires_for_unreachable_node)
{
    tnode_t a;
    seen_t m;
    seen_init(&m);
    start_ticker();
    REQUIRE(mknode(&a, "127.0.0.1:0", secret, 0));
    char nr[64];
    snprintf(nr, sizeof nr, "127.0.0.1:%d#x.a", free_port());
    aemp_mon(a.node, nr, mon_cb, &m); /* sends mon1: connects */
    CHECK(wait_calls(&m, 1, 10));
    CHECK_STR(json_string_value(json_array_get(json_array_get(m.log, 0), 0)), "transport_error");
    json_decref(m.log);
    aemp_node_destroy(a.node);
}

/* Node requests are checked against their table entry's argument shape
 * in one place: a malformed one is logged and dropped, the link stays,
 * and the well-formed requests around it are served. */
TEST(ports_service_argument_shapes)
{
    pair_t pr;
    seen_t r;
    seen_init(&r);
    REQUIRE(mkpair(&pr));
    aemp_node_t *A = pr.a.node, *B = pr.b.node;
    const char *bn = aemp_node_noderef(B);
    aemp_port_t *rp = aemp_port_new(A, rec_cb, &r);
    aemp_sendf(A, bn, "[s]", "time");                          /* no reply port */
    aemp_sendf(A, bn, "[sis]", "lookup", 5, aemp_port_id(rp)); /* name not a string */
    aemp_sendf(A, bn, "[s[i]]", "mon1", 1);                    /* port not a string */
    aemp_sendf(A, bn, "[ss]", "AnyEvent::MP::_spawn", "x");    /* no function */
    aemp_sendf(A, bn, "[sn]", "kil", 1);
    aemp_sendf(A, bn, "[sss]", "time", aemp_port_id(rp), "still_served");
    CHECK(wait_calls(&r, 1, 5));
    CHECK_STR(json_string_value(json_array_get(json_array_get(r.log, 0), 0)), "still_served");
    const char *w = pr.b.warnings;
    CHECK(strstr(w, "node request time with bad arguments, dropped") != NULL);
    CHECK(strstr(w, "node request lookup with bad arguments, dropped") != NULL);
    CHECK(strstr(w, "node request mon1 with bad arguments, dropped") != NULL);
    CHECK(strstr(w, "node request AnyEvent::MP::_spawn with bad arguments, dropped") != NULL);
    CHECK(strstr(w, "node request kil with bad arguments, dropped") != NULL);
    CHECK_INT(pr.a.links_down + pr.b.links_down, 0);
    json_decref(r.log);
    freepair(&pr);
}

/* aemp_port_kill_id is the new name; aemp_kil stays as an alias. */
TEST(ports_kill_id_and_old_name)
{
    tnode_t t;
    seen_t m1, m2;
    seen_init(&m1);
    seen_init(&m2);
    aemp_node_t *n = mknode(&t, "127.0.0.1:0", secret, 0);
    REQUIRE(n);
    aemp_port_t *p1 = aemp_port_new(n, rec_cb, &m1), *p2 = aemp_port_new(n, rec_cb, &m2);
    char id1[128];
    snprintf(id1, sizeof id1, "%s", aemp_port_id(p1)); /* p1 is freed once killed */
    aemp_mon(n, aemp_port_id(p1), mon_cb, &m1);
    aemp_mon(n, aemp_port_id(p2), mon_cb, &m2);
    CHECK_INT(aemp_port_kill_id(n, id1, json_pack("[s]", "one")), 0);
    CHECK_INT(aemp_kil(n, aemp_port_id(p2), json_pack("[s]", "two")), 0);
    CHECK(wait_calls(&m1, 1, 2) && wait_calls(&m2, 1, 2));
    CHECK_STR(logtext(&m1, 0), "[\"one\"]");
    CHECK_STR(logtext(&m2, 0), "[\"two\"]");
    CHECK_INT(aemp_port_kill_id(n, id1, NULL), AEMP_ENOENT);
    /* "#ID" without a node part is a port of ours */
    aemp_port_t *p3 = aemp_port_new(n, rec_cb, &m1);
    char local[128];
    snprintf(local, sizeof local, "#%s", strchr(aemp_port_id(p3), '#') + 1);
    CHECK_INT(aemp_port_kill_id(n, local, NULL), 0);
    CHECK_INT(aemp_port_kill_id(n, local, NULL), AEMP_ENOENT);
    json_decref(m1.log);
    json_decref(m2.log);
    aemp_node_destroy(n);
}

unsigned long aemp__ports_visits(const aemp_node_t *n); /* (node_int.h) */

/* A port's death removes the names that point at it, under any of our
 * names (here one endpoint of a node bound to two), and looks at those
 * names only: 2000 ports of a name each, killed one by one, look at 2000
 * names in all (before: every name at each death, 2 million, and a name
 * under one of our other names stayed). A name of another node's port,
 * or of a port that lives, stays. */
TEST(ports_death_removes_its_names_only)
{
    tnode_t t;
    aemp_node_t *n = mknode(&t, "127.0.0.1:0,127.0.0.2:0", secret, 0);
    REQUIRE(n);
    const char *me = aemp_node_noderef(n);
    REQUIRE(strchr(me, ','));
    enum { PORTS = 2000 };
    aemp_port_t **ps = calloc(PORTS, sizeof *ps);
    REQUIRE(ps);
    char name[64], id[256];
    for (int i = 0; i < PORTS; i++) {
        REQUIRE((ps[i] = aemp_port_new(n, rec_cb, NULL)));
        snprintf(name, sizeof name, "svc-%d", i);
        REQUIRE(aemp_reg(n, name, aemp_port_id(ps[i])) == 0);
    }
    /* one more name of port 0 under our first endpoint alone, one of
     * another node's port, and one that moves from port 1 to port 2 */
    snprintf(id, sizeof id, "%.*s#%s", (int)(strchr(me, ',') - me), me, strchr(aemp_port_id(ps[0]), '#') + 1);
    REQUIRE(aemp_reg(n, "alias-0", id) == 0);
    REQUIRE(aemp_reg(n, "elsewhere", "127.0.0.9:1#x") == 0);
    REQUIRE(aemp_reg(n, "moved", aemp_port_id(ps[1])) == 0);
    REQUIRE(aemp_reg(n, "moved", aemp_port_id(ps[2])) == 0);
    unsigned long v0 = aemp__ports_visits(n);
    aemp_port_kill(ps[1], NULL);
    CHECK_STR(aemp_lookup(n, "moved"), aemp_port_id(ps[2]));
    CHECK(aemp_lookup(n, "svc-1") == NULL);
    CHECK(aemp_lookup(n, "alias-0") != NULL);
    aemp_port_kill(ps[0], NULL);
    CHECK(aemp_lookup(n, "alias-0") == NULL);
    CHECK(aemp_lookup(n, "svc-0") == NULL);
    for (int i = 2; i < PORTS; i++) aemp_port_kill(ps[i], NULL);
    unsigned long looked = aemp__ports_visits(n) - v0;
    printf("    %d named ports killed: %lu names looked at\n", PORTS, looked);
    CHECK_INT(looked, PORTS + 2); /* (svc-0, alias-0 and moved too) */
    CHECK(aemp_lookup(n, "moved") == NULL);
    CHECK(aemp_lookup(n, "svc-1999") == NULL);
    CHECK_STR(aemp_lookup(n, "elsewhere"), "127.0.0.9:1#x");
    free(ps);
    aemp_node_destroy(n);
}
