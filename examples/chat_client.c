/*
 * chat_client.c - a chat client on libaemp's public API that speaks the
 * chat of the AnyEvent::MP 0.4 distribution (its eg/chat_client and
 * eg/chat_server), so it works with a Perl chat server as with ours.
 *
 * usage: chat_client SERVER-NODEREF NAME [--secret-file F] [--wait N] [TEXT...]
 *
 * It asks the server node's `lookup` service for "chatter"
 * (["", "lookup", "chatter", MYPORT, "resolved"], answered by
 * ["resolved", CHATTERPORT]), sends ["join", MYPORT], then each TEXT as
 * ["message", "NAME: TEXT"], and prints the TEXT of every ["message", TEXT]
 * it receives (anything else is logged on stderr and ignored). Without
 * --wait it reads lines from standard input and sends them; with --wait N
 * it exits after receiving N messages (for scripts and tests). It exits
 * with status 1 when the server cannot be reached or has no "chatter".
 */
#include <aemp.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static aemp_node_t *node;
static aemp_port_t *me;
static const char *name;
static char *chatter;
static char **texts;
static int ntexts, wait_for = -1, received;
static ev_io stdin_w;
static ev_timer deadline;

static void quit(struct ev_loop *loop) { ev_break(loop, EVBREAK_ALL); }

/* ["message", TEXT] */
static int on_message(aemp_port_t *port, json_t *msg, void *ud)
{
    const char *text = json_string_value(json_array_get(msg, 1));
    (void)port;
    (void)ud;
    if (!text) {
        char *m = aemp_json_encode(msg, NULL);
        fprintf(stderr, "chat_client: ignored %s: message needs a text\n", m ? m : "a message");
        free(m);
        return AEMP_KEEP;
    }
    printf("%s\n", text);
    fflush(stdout);
    if (wait_for >= 0 && ++received >= wait_for) quit(aemp_node_loop(node));
    return AEMP_KEEP;
}

/* Sends one line as ["message", "NAME: TEXT"]. */
static void say(const char *text)
{
    size_t n = strlen(name) + strlen(text) + 3;
    char *line = malloc(n);
    if (!line) return;
    snprintf(line, n, "%s: %s", name, text);
    aemp_sendf(node, chatter, "[ss]", "message", line);
    free(line);
}

static void on_stdin(struct ev_loop *loop, ev_io *w, int revents)
{
    char line[1024];
    (void)revents;
    ssize_t r = read(w->fd, line, sizeof line - 1);
    if (r <= 0) {
        quit(loop);
        return;
    }
    line[r] = 0;
    line[strcspn(line, "\n")] = 0;
    say(line);
}

/* The lookup reply: ["resolved", PORTID-or-null]. */
static int on_resolved(aemp_port_t *port, json_t *msg, void *ud)
{
    json_t *id = json_array_get(msg, 1);
    (void)port;
    (void)ud;
    if (!json_is_string(id)) {
        fprintf(stderr, "chat_client: no chatter on that node\n");
        exit(1);
    }
    chatter = strdup(json_string_value(id));
    aemp_sendf(node, chatter, "[ss]", "join", aemp_port_id(me));
    for (int i = 0; i < ntexts; i++) say(texts[i]);
    if (wait_for < 0) ev_io_start(aemp_node_loop(node), &stdin_w);
    return AEMP_DONE;
}

static void on_server_gone(aemp_node_t *n, const char *portid, json_t *reason, void *ud)
{
    char *r = aemp_json_encode(reason, NULL);
    (void)n;
    (void)portid;
    (void)ud;
    fprintf(stderr, "chat_client: server gone: %s\n", r ? r : "?");
    free(r);
    exit(1);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    fprintf(stderr, "chat_client: timed out\n");
    exit(1);
}

int main(int argc, char **argv)
{
    aemp_node_config_t cfg = {0};
    int err, a = 3;
    if (argc < 3) {
        fprintf(stderr, "usage: chat_client SERVER-NODEREF NAME [--secret-file F] [--wait N] [TEXT...]\n");
        return 2;
    }
    name = argv[2];
    for (; a < argc; a++) {
        if (!strcmp(argv[a], "--secret-file") && a + 1 < argc) cfg.secret_file = argv[++a];
        else if (!strcmp(argv[a], "--wait") && a + 1 < argc) wait_for = atoi(argv[++a]);
        else break;
    }
    texts = argv + a;
    ntexts = argc - a;
    cfg.bind = "127.0.0.1:0";
    cfg.connect_timeout = 5;
    struct ev_loop *loop = EV_DEFAULT;
    node = aemp_node_new(loop, &cfg, &err);
    if (!node || aemp_node_start(node) != 0) {
        fprintf(stderr, "chat_client: cannot start a node\n");
        return 1;
    }
    me = aemp_port_new(node, NULL, NULL);
    aemp_port_rcv(me, "message", on_message, NULL);
    aemp_port_rcv(me, "resolved", on_resolved, NULL);
    aemp_mon(node, argv[1], on_server_gone, NULL);
    aemp_sendf(node, argv[1], "[ssss]", "lookup", "chatter", aemp_port_id(me), "resolved");
    ev_io_init(&stdin_w, on_stdin, 0, EV_READ);
    ev_timer_init(&deadline, on_deadline, 20.0, 0.0);
    if (wait_for >= 0) ev_timer_start(loop, &deadline);
    ev_run(loop, 0);
    aemp_node_destroy(node);
    free(chatter);
    return 0;
}
