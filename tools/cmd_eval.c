/*
 * cmd_eval.c - protocol 1's `aemp eval NODE EXPR...`, `aemp restart
 * NODE` and `aemp shell NODE`: each sends 2.02's eval request
 * ["","eval",EXPR,REPLY] to NODE's node port and reads the answer
 * [ERROR, RESULTS...] (PROTOCOL-1.md §7, §9; transcript 11). A Perl node
 * evaluates EXPR; a C node answers the expressions of aemp.h ("What a
 * protocol-1 node answers to 2.02's tools") and says it runs no Perl to
 * any other.
 *
 * eval: EXPR is the remaining words joined with spaces (as 2.02 joins
 *   them). RESULTS are printed as 2.02 prints them, JSON separated by
 *   commas ("3"); a non-empty ERROR goes to stderr as Perl's die prints
 *   it, exit 255; no answer within 5 s: exit 1, nothing printed.
 * restart: EXPR is "AnyEvent::Watchdog::Util::restart"; an ERROR as for
 *   eval; an answer without one, or the node's link going down (it
 *   restarts), exit 0; no answer within 5 s: exit 1.
 * shell: every line of standard input is an EXPR, answered as eval
 *   prints it (an ERROR on stdout); a prompt "NODE> " when stdin is a
 *   terminal; end of input ends it (exit 0). 5 s per line, then
 *   "timeout". NODE is needed: this tool's own node runs no Perl.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define EVAL_TIMEOUT 5.0 /* 2.02's eval gives up after 5 s */
#define RESTART_EXPR "AnyEvent::Watchdog::Util::restart"

enum mode { EVAL, RESTART, SHELL };

typedef struct eval1 {
    const char *prog;
    enum mode mode;
    cli_client_t *c;
    char *expr;          /* eval, restart */
    aemp_port_t *reply;
    ev_timer timeout;
    /* shell */
    ev_io in;
    int waiting;         /* an answer is due */
    char buf[8192];
    size_t have;
} eval1_t;

/* The words after NODE, joined with spaces (a JSON word as its text). */
static char *join_words(json_t *elems)
{
    size_t len = 1, i;
    json_t *e;
    char **texts = calloc(json_array_size(elems) + 1, sizeof *texts);
    if (!texts) return NULL;
    json_array_foreach(elems, i, e) {
        texts[i] = json_is_string(e) ? strdup(json_string_value(e)) : aemp_json_encode(e, NULL);
        len += (texts[i] ? strlen(texts[i]) : 0) + 1;
    }
    char *out = malloc(len);
    if (out) {
        out[0] = 0;
        json_array_foreach(elems, i, e) {
            if (i) strcat(out, " ");
            if (texts[i]) strcat(out, texts[i]);
        }
    }
    for (i = 0; i < json_array_size(elems); i++) free(texts[i]);
    free(texts);
    return out;
}

static void prompt(eval1_t *k)
{
    if (!isatty(0)) return;
    printf("%s> ", cli_client_peer(k->c));
    fflush(stdout);
}

static int ask(eval1_t *k, const char *expr)
{
    aemp_node_t *n = cli_client_node(k->c);
    if (k->mode == SHELL) {
        /* each line has its 5 s (eval and restart count from the start) */
        ev_timer_set(&k->timeout, EVAL_TIMEOUT, 0);
        ev_timer_start(aemp_node_loop(n), &k->timeout);
    }
    k->waiting = 1;
    return aemp_send(n, cli_client_peer(k->c),
                     json_pack("[sss]", "eval", expr, aemp_port_id(k->reply)));
}

/* ---- shell: the lines of standard input ---- */

static void shell_next(eval1_t *k);

static void in_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    eval1_t *k = w->data;
    ssize_t r = read(0, k->buf + k->have, sizeof k->buf - 1 - k->have);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
    ev_io_stop(loop, w);
    if (r <= 0) {
        if (isatty(0)) printf("\n");
        cli_client_finish(k->c, 0);
        return;
    }
    k->have += (size_t)r;
    shell_next(k);
}

/* Asks the next complete line, or reads more. */
static void shell_next(eval1_t *k)
{
    struct ev_loop *loop = aemp_node_loop(cli_client_node(k->c));
    for (;;) {
        char *nl = memchr(k->buf, '\n', k->have);
        if (!nl && k->have < sizeof k->buf - 1) {
            ev_io_start(loop, &k->in);
            return;
        }
        size_t len = nl ? (size_t)(nl - k->buf) : k->have;
        char line[sizeof k->buf];
        memcpy(line, k->buf, len);
        line[len] = 0;
        size_t used = nl ? len + 1 : len;
        memmove(k->buf, k->buf + used, k->have - used);
        k->have -= used;
        if (!line[strspn(line, " \t\r")]) {
            prompt(k);
            continue;
        }
        int rc = ask(k, line);
        if (rc) cli_client_fail(k->c, "cannot send to %s: %s", cli_client_peer(k->c), aemp_strerror(rc));
        return;
    }
}

/* ---- the answer ---- */

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    eval1_t *k = w->data;
    k->waiting = 0;
    if (k->mode != SHELL) {
        cli_client_finish(k->c, 1); /* as 2.02: silently */
        return;
    }
    printf("timeout\n");
    prompt(k);
    shell_next(k);
}

static int answer_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    eval1_t *k = ud;
    if (!k->waiting) return AEMP_KEEP; /* a shell line's late answer */
    k->waiting = 0;
    ev_timer_stop(aemp_node_loop(cli_client_node(k->c)), &k->timeout);
    const char *err = json_string_value(json_array_get(msg, 0));
    json_t *results = json_array();
    for (size_t i = 1; results && i < json_array_size(msg); i++)
        json_array_append(results, json_array_get(msg, i));
    int failed = err && *err, bad = !results;
    if (failed) {
        size_t len = strlen(err);
        FILE *f = k->mode == SHELL ? stdout : stderr;
        fprintf(f, "%s%s", err, err[len - 1] == '\n' ? "" : "\n");
        fflush(f);
    } else if (k->mode != RESTART && results) {
        bad = cli_print_elements(k->prog, results) != 0;
    }
    json_decref(results);
    if (k->mode == SHELL && !bad) {
        prompt(k);
        shell_next(k);
        return AEMP_KEEP;
    }
    cli_client_finish(k->c, bad ? 1 : failed ? 255 : 0);
    return AEMP_KEEP;
}

/* The restarted node's link went down: what restart asked for. */
static void restarted_cb(cli_client_t *c, const char *reason, void *ud)
{
    cli_client_finish(c, 0);
}

static void up_cb(cli_client_t *c, void *ud)
{
    eval1_t *k = ud;
    if (!(k->reply = aemp_port_new(cli_client_node(c), answer_cb, k))) {
        cli_client_fail(c, "out of memory");
        return;
    }
    if (k->mode == SHELL) {
        prompt(k);
        shell_next(k);
        return;
    }
    int rc = ask(k, k->expr);
    if (rc) cli_client_fail(c, "cannot send to %s: %s", cli_client_peer(c), aemp_strerror(rc));
}

static int run(const char *prog, enum mode mode, cli_chain_t *s)
{
    eval1_t k = {.prog = prog, .mode = mode};
    json_t *words = NULL;
    int rc = cli_client_for_port_p1(prog, s, &words, &k.c, &(const char *){NULL});
    if (rc) return rc;
    if (mode == EVAL) k.expr = join_words(words);
    else if (mode == RESTART) k.expr = strdup(RESTART_EXPR);
    int extra = mode != EVAL && json_array_size(words);
    json_decref(words);
    if (extra) {
        cli_client_fail(k.c, "%s takes NODE alone", mode == SHELL ? "shell" : "restart");
        cli_client_run(k.c);
        return 2;
    }
    if (mode != SHELL && !k.expr) cli_client_fail(k.c, "out of memory");
    ev_timer_init(&k.timeout, timeout_cb, EVAL_TIMEOUT, 0);
    k.timeout.data = &k;
    ev_io_init(&k.in, in_cb, 0, EV_READ);
    k.in.data = &k;
    if (mode == RESTART) cli_client_on_down(k.c, restarted_cb, &k);
    if (mode != SHELL) {
        /* 2.02's clock starts with the command */
        ev_timer_start(aemp_node_loop(cli_client_node(k.c)), &k.timeout);
        k.waiting = 1;
    }
    cli_client_on_up(k.c, up_cb, &k);
    struct ev_loop *loop = aemp_node_loop(cli_client_node(k.c));
    rc = cli_client_run(k.c);
    ev_timer_stop(loop, &k.timeout);
    ev_io_stop(loop, &k.in);
    free(k.expr);
    return rc;
}

int cmd_eval_p1(cli_chain_t *s, const char *key) { return run("aemp eval", EVAL, s); }
int cmd_restart_p1(cli_chain_t *s, const char *key) { return run("aemp restart", RESTART, s); }
int cmd_shell_p1(cli_chain_t *s, const char *key) { return run("aemp shell", SHELL, s); }
