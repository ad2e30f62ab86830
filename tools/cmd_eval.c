/*
 * cmd_eval.c - protocol 1's `aemp eval NODE EXPR...`, `aemp restart
 * NODE` and `aemp shell NODE`: each sends 2.02's eval request
 * ["","eval",EXPR,REPLY] to a node port and reads the answer
 * [ERROR, RESULTS...] (PROTOCOL-1.md §7, §9; transcript 11). A Perl node
 * evaluates EXPR; a C node answers the expressions of aemp.h ("What a
 * protocol-1 node answers to 2.02's tools") and says it runs no Perl to
 * any other.
 *
 * eval: EXPR is the remaining words joined with spaces (as 2.02 joins
 *   them). RESULTS are printed as 2.02 prints them, JSON separated by
 *   commas ("3"; no results: an empty line), exit 0. A non-empty ERROR
 *   is what 2.02's tool dies with, "ERROR RESULTS..." on stderr, exit
 *   255; so is the node's link going down first ("transport_error NODE
 *   MESSAGE"). No answer within 5 s: exit 1, nothing printed.
 * restart: eval of 2.02's restart expression (RESTART_EXPR: restart
 *   under AnyEvent::Watchdog once the answer is out), printed as eval
 *   prints it: a Perl node answers no results, an empty line.
 * shell: 2.02's interactive shell: a banner, then each line of standard
 *   input is evaluated on the current node; "=" prints the nodes this
 *   command's node is linked to, "=NODE" makes NODE the current one.
 *   Every line is sent at once (answers may come in any order) and its
 *   answer printed when it comes: "\n  NODE: LINE\n", then "  ERROR
 *   RESULTS..." or "  " and the whole answer as JSON, then "\n  S.SSSs\n"
 *   (seconds taken) and the prompt "NODE> " again. At the end of input
 *   the answers still due are waited for (at most 5 s), exit 0. NODE is
 *   needed: this tool's own node runs no Perl.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define EVAL_TIMEOUT 5.0 /* 2.02's eval gives up after 5 s */
#define RESTART_EXPR                                                                  \
    "my $w; $w = AE::idle sub { undef $w; use AnyEvent::Watchdog::Util ();" \
    "AnyEvent::Watchdog::Util::restart}; ()"
#define UP_NODES "AnyEvent::MP::Kernel::up_nodes"

enum mode { EVAL, RESTART, SHELL };

typedef struct eval1 eval1_t;

/* shell: a line sent, its answer due */
typedef struct line {
    struct line *next;
    eval1_t *k;
    aemp_port_t *reply;
    char *node;  /* NULL: "=", our own node's links */
    char *text;
    double t0;
} line_t;

struct eval1 {
    const char *prog;
    enum mode mode;
    cli_client_t *c;
    char *expr;          /* eval, restart */
    aemp_port_t *reply;
    ev_timer timeout;
    /* shell */
    char *node;          /* the current node */
    line_t *due;
    int eof;
    ev_io in;
    char buf[8192];
    size_t have;
};

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

/* "ERROR RESULTS...", as Perl interpolates "$err @res", to f. */
static void print_error(FILE *f, const char *err, json_t *msg, size_t from)
{
    fputs(err, f);
    fputc(' ', f);
    for (size_t i = from; i < json_array_size(msg); i++) {
        json_t *e = json_array_get(msg, i);
        char *text = json_is_string(e) ? NULL : aemp_json_encode(e, NULL);
        if (i > from) fputc(' ', f);
        fputs(text ? text : json_string_value(e) ? json_string_value(e) : "", f);
        free(text);
    }
}

/* ---- shell ---- */

static void shell_prompt(eval1_t *k)
{
    printf("%s> ", k->node);
    fflush(stdout);
}

static void line_free(line_t *l)
{
    if (l->reply) aemp_port_kill(l->reply, NULL);
    free(l->node);
    free(l->text);
    free(l);
}

static void shell_done_if_idle(eval1_t *k)
{
    if (k->eof && !k->due) cli_client_finish(k->c, 0);
}

static int line_answer_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    line_t *l = ud;
    eval1_t *k = l->k;
    for (line_t **pp = &k->due; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    l->reply = NULL; /* done: the port goes */
    double took = ev_time() - l->t0;
    if (!l->node) {
        /* "=": our node's links, as 2.02 prints up_nodes */
        for (size_t i = 1; i < json_array_size(msg); i++) {
            const char *id = json_string_value(json_array_get(msg, i));
            printf("%s%s", i > 1 ? " " : "", id ? id : "");
        }
        printf("\n");
    } else {
        const char *err = json_string_value(json_array_get(msg, 0));
        printf("\n  %s: %s\n  ", l->node, l->text);
        if (err && *err) {
            print_error(stdout, err, msg, 1);
        } else {
            char *text = aemp_json_encode(msg, NULL);
            fputs(text ? text : "", stdout);
            free(text);
        }
        printf("\n  %0.3fs\n", took);
        shell_prompt(k);
    }
    fflush(stdout);
    line_free(l);
    shell_done_if_idle(k);
    return AEMP_DONE;
}

/* One line of input. */
static void shell_line(eval1_t *k, const char *text)
{
    aemp_node_t *n = cli_client_node(k->c);
    if (text[0] == '=' && text[1]) {
        char *node = strdup(text + 1);
        if (node) {
            free(k->node);
            k->node = node;
        }
        shell_prompt(k);
        return;
    }
    line_t *l = calloc(1, sizeof *l);
    int eq = text[0] == '=';
    if (!l || !(l->text = strdup(text)) || (!eq && !(l->node = strdup(k->node))) ||
        !(l->reply = aemp_port_new(n, line_answer_cb, l))) {
        if (l) line_free(l);
        cli_client_fail(k->c, "out of memory");
        return;
    }
    l->k = k;
    l->t0 = ev_time();
    l->next = k->due;
    k->due = l;
    /* "=": our own node answers up_nodes as any C node does */
    const char *to = eq ? aemp_node_noderef(n) : l->node;
    int rc = aemp_send(n, to, json_pack("[sss]", "eval", eq ? UP_NODES : text, aemp_port_id(l->reply)));
    if (rc) cli_err(k->prog, "cannot send to %s: %s", to, aemp_strerror(rc));
    shell_prompt(k);
}

static void shell_next(eval1_t *k);

static void in_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    eval1_t *k = w->data;
    ssize_t r = read(0, k->buf + k->have, sizeof k->buf - 1 - k->have);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (r <= 0) {
        ev_io_stop(loop, w);
        if (k->have) {
            k->buf[k->have] = '\n'; /* the last line without its newline */
            k->have++;
            shell_next(k);
        }
        k->eof = 1;
        ev_timer_set(&k->timeout, EVAL_TIMEOUT, 0);
        ev_timer_start(loop, &k->timeout);
        shell_done_if_idle(k);
        return;
    }
    k->have += (size_t)r;
    shell_next(k);
}

/* Handles every complete line read. */
static void shell_next(eval1_t *k)
{
    for (;;) {
        char *nl = memchr(k->buf, '\n', k->have);
        if (!nl && k->have < sizeof k->buf - 1) return;
        size_t len = nl ? (size_t)(nl - k->buf) : k->have;
        char line[sizeof k->buf];
        memcpy(line, k->buf, len);
        line[len] = 0;
        size_t used = nl ? len + 1 : len;
        memmove(k->buf, k->buf + used, k->have - used);
        k->have -= used;
        shell_line(k, line);
    }
}

/* ---- eval, restart: the answer ---- */

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    eval1_t *k = w->data;
    /* eval, restart: as 2.02, silently; shell: input ended, done waiting */
    cli_client_finish(k->c, k->mode == SHELL ? 0 : 1);
}

static int answer_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    eval1_t *k = ud;
    ev_timer_stop(aemp_node_loop(cli_client_node(k->c)), &k->timeout);
    const char *err = json_string_value(json_array_get(msg, 0));
    if (err && *err) {
        /* 2.02's tool dies with "$err @res" */
        print_error(stderr, err, msg, 1);
        fputc('\n', stderr);
        fflush(stderr);
        cli_client_finish(k->c, 255);
        return AEMP_DONE;
    }
    json_t *results = json_array();
    for (size_t i = 1; results && i < json_array_size(msg); i++)
        json_array_append(results, json_array_get(msg, i));
    int bad = !results || cli_print_elements(k->prog, results) != 0;
    json_decref(results);
    cli_client_finish(k->c, bad ? 1 : 0);
    return AEMP_DONE;
}

/* The node's link went down first: 2.02's monitor of its node port
 * answers ("transport_error", NODE, MESSAGE), which the tool dies with. */
static void down_cb(cli_client_t *c, const char *reason, void *ud)
{
    fprintf(stderr, "transport_error %s %s\n", cli_client_peer(c), reason);
    fflush(stderr);
    cli_client_finish(c, 255);
}

static void shell_down_cb(cli_client_t *c, const char *reason, void *ud) {}

static void up_cb(cli_client_t *c, void *ud)
{
    eval1_t *k = ud;
    if (k->mode == SHELL) {
        printf("Entering interactive shell - no commandline editing of course (use rlfe etc.).\n\n"
               "=           display a list of nodes\n"
               "=name       switch to another node\n\n");
        shell_prompt(k);
        ev_io_start(aemp_node_loop(cli_client_node(c)), &k->in);
        return;
    }
    if (!(k->reply = aemp_port_new(cli_client_node(c), answer_cb, k))) {
        cli_client_fail(c, "out of memory");
        return;
    }
    int rc = aemp_send(cli_client_node(c), cli_client_peer(c),
                       json_pack("[sss]", "eval", k->expr, aemp_port_id(k->reply)));
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
    if (mode == SHELL && !(k.node = strdup(cli_client_peer(k.c)))) cli_client_fail(k.c, "out of memory");
    ev_timer_init(&k.timeout, timeout_cb, EVAL_TIMEOUT, 0);
    k.timeout.data = &k;
    ev_io_init(&k.in, in_cb, 0, EV_READ);
    k.in.data = &k;
    /* the shell's lines go to any node: one link going down ends nothing */
    cli_client_on_down(k.c, mode == SHELL ? shell_down_cb : down_cb, &k);
    cli_client_on_up(k.c, up_cb, &k);
    struct ev_loop *loop = aemp_node_loop(cli_client_node(k.c));
    /* 2.02's clock starts with the command */
    if (mode != SHELL) ev_timer_start(loop, &k.timeout);
    rc = cli_client_run(k.c); /* the node and its ports go with it */
    ev_timer_stop(loop, &k.timeout);
    ev_io_stop(loop, &k.in);
    while (k.due) {
        line_t *l = k.due;
        k.due = l->next;
        l->reply = NULL;
        line_free(l);
    }
    free(k.node);
    free(k.expr);
    return rc;
}

int cmd_eval_p1(cli_chain_t *s, const char *key) { return run("aemp eval", EVAL, s); }
int cmd_restart_p1(cli_chain_t *s, const char *key) { return run("aemp restart", RESTART, s); }
int cmd_shell_p1(cli_chain_t *s, const char *key) { return run("aemp shell", SHELL, s); }
