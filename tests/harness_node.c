/*
 * harness_node.c - helpers for tests that run real nodes (see harness_node.h).
 */
#include "test.h"
#include "harness_node.h"

#include <arpa/inet.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

const char secret[] = "test secret\n";

void t_log(void *ud, int level, const char *msg)
{
    tnode_t *t = ud;
    if (level <= AEMP_LOG_WARN) {
        size_t l = strlen(t->warnings);
        snprintf(t->warnings + l, sizeof t->warnings - l, "%s\n", msg);
    }
    if (getenv("AEMP_TEST_VERBOSE")) fprintf(stderr, "[%d] %s\n", level, msg);
}

void t_link(void *ud, aemp_node_t *node, const char *noderef, int up, const char *reason)
{
    tnode_t *t = ud;
    (void)node;
    if (up) {
        t->links_up++;
        snprintf(t->last_up_peer, sizeof t->last_up_peer, "%s", noderef);
    } else {
        t->links_down++;
        snprintf(t->last_down, sizeof t->last_down, "%s", reason);
    }
}

void t_msg(void *ud, aemp_node_t *node, const char *src, const char *id, json_t *msg)
{
    tnode_t *t = ud;
    (void)node;
    (void)src;
    (void)id;
    t->received++;
    json_t *seq = json_array_get(msg, 2);
    if (json_is_integer(seq)) {
        if (json_integer_value(seq) != t->expected_next) t->order_errors++;
        t->expected_next = json_integer_value(seq) + 1;
    }
    if (t->kept && json_array_size(t->kept) < 1000) json_array_append(t->kept, msg);
}

void t_hooks(aemp_node_config_t *c, tnode_t *t)
{
    c->log = t_log;
    c->log_ud = t;
    c->on_link = t_link;
    c->link_ud = t;
    c->on_message = t_msg;
    c->message_ud = t;
}

aemp_node_t *t_start(tnode_t *t, aemp_node_config_t *c)
{
    t_hooks(c, t);
    t->node = aemp_node_new(EV_DEFAULT, c, NULL);
    if (t->node && aemp_node_start(t->node)) {
        aemp_node_destroy(t->node);
        t->node = NULL;
    }
    return t->node;
}

aemp_node_t *mknode(tnode_t *t, const char *bind, const char *sec, unsigned timeout)
{
    memset(t, 0, sizeof *t);
    aemp_node_config_t c = {0};
    c.bind = bind;
    c.secret = sec;
    c.secret_len = strlen(sec);
    c.timeout = timeout;
    c.connect_interval = 0.2;
    c.connect_timeout = 3;
    return t_start(t, &c);
}

size_t t_max_peer_memory;

/* A started protocol-1 node (both helpers below). */
static aemp_node_t *start_p1(tnode_t *t, const char *id, const char *bind,
                             const char *const *seeds, size_t nseeds, const char *sec,
                             size_t max_message, int secure, const char *framings)
{
    const char *binds[] = {bind ? bind : "127.0.0.1:0"};
    aemp_node_config_t c = {0};
    c.protocol = 1;
    c.nodeid = id;
    c.binds = binds;
    c.nbinds = 1;
    c.seeds = nseeds ? seeds : NULL;
    c.nseeds = nseeds;
    c.secret = sec;
    c.secret_len = strlen(sec);
    c.max_message = max_message;
    c.secure = secure;
    c.framings = framings;
    c.max_peer_memory = t_max_peer_memory;
    return t_start(t, &c);
}

aemp_node_t *mknode1(tnode_t *t, const char *id, const char *const *seeds, size_t nseeds,
                     const char *sec, size_t max_message)
{
    memset(t, 0, sizeof *t);
    start_ticker();
    return start_p1(t, id, NULL, seeds, nseeds, sec, max_message, 0, NULL);
}

aemp_node_t *mknode1_secure(tnode_t *t, const char *id, const char *const *seeds, size_t nseeds,
                            const char *sec, int secure)
{
    memset(t, 0, sizeof *t);
    start_ticker();
    return start_p1(t, id, NULL, seeds, nseeds, sec, 0, secure, NULL);
}

aemp_node_t *mknode1_framings(tnode_t *t, const char *id, const char *seed, const char *framings)
{
    memset(t, 0, sizeof *t);
    return start_p1(t, id, NULL, &seed, seed ? 1 : 0, secret, 0, 0, framings);
}

/* Runs the loop until cond(ud) or the deadline; returns cond's value. */
int run_until(int (*cond)(void *), void *ud, double seconds)
{
    ev_tstamp end = ev_time() + seconds;
    while (!cond(ud) && ev_time() < end) ev_run(EV_DEFAULT, EVRUN_ONCE);
    return cond(ud);
}

static void tick_cb(struct ev_loop *l, ev_timer *w, int r) { (void)l; (void)w; (void)r; }

/* Keeps ev_run(ONCE) from blocking for long. */
static ev_timer ticker;
void start_ticker(void)
{
    ev_timer_init(&ticker, tick_cb, 0.02, 0.02);
    ev_timer_start(EV_DEFAULT, &ticker);
}


int got_n(void *ud)
{
    want_t *w = ud;
    return w->t->received >= w->n;
}
int down_n(void *ud)
{
    want_t *w = ud;
    return w->t->links_down >= w->n;
}

aemp_node_t *mknode_p1(tnode_t *t, const char *id, const char *bind, const char *const *seeds,
                       size_t nseeds)
{
    return start_p1(t, id, bind, seeds, nseeds, secret, 0, 0, NULL);
}

int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

int free_port_fixed(void)
{
    int lo = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d", &lo) != 1) lo = 32768;
        fclose(f);
    }
    if (lo <= 11000) return free_port();
    for (unsigned tries = 0; tries < 1000; tries++) {
        int port = 10000 + (int)(((unsigned)getpid() * 7919u + tries * 104729u) % (unsigned)(lo - 10000));
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons((uint16_t)port);
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (fd >= 0) close(fd);
        if (ok) return port;
    }
    return free_port();
}

int time_passed(void *ud)
{
    late_t *l = ud;
    return ev_time() >= l->at;
}

/* A child process that runs a node until killed; its noderef comes back
 * through a pipe. */
pid_t spawn_node(char *noderef, size_t n, unsigned timeout)
{
    int pfd[2];
    if (pipe(pfd)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        tnode_t t;
        struct ev_loop *loop = ev_loop_new(0);
        aemp_node_config_t c = {0};
        c.bind = "127.0.0.1:0";
        c.secret = secret;
        c.secret_len = strlen(secret);
        c.timeout = timeout;
        c.log = t_log;
        c.log_ud = &t;
        memset(&t, 0, sizeof t);
        aemp_node_t *node = aemp_node_new(loop, &c, NULL);
        if (!node || aemp_node_start(node)) _exit(2);
        dprintf(pfd[1], "%s\n", aemp_node_noderef(node));
        close(pfd[1]);
        ev_run(loop, 0);
        _exit(0);
    }
    close(pfd[1]);
    ssize_t r = read(pfd[0], noderef, n - 1);
    close(pfd[0]);
    if (r <= 0) return -1;
    noderef[r] = 0;
    char *nl = strchr(noderef, '\n');
    if (nl) *nl = 0;
    return pid;
}

/* A raw client: a handshake engine on a blocking socket. */
int raw_connect_auth(const char *noderef, const char *sec)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    const char *colon = strrchr(noderef, ':');
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) return -1;
    unsigned char nonce[AEMP_NONCE_BYTES];
    aemp_random_bytes(nonce, sizeof nonce);
    aemp_hs_config_t hc = {.noderef = "127.0.0.1:1", .secret = sec, .secret_len = strlen(sec),
                           .timeout = 30, .nonce = nonce};
    aemp_hs_t *hs = aemp_hs_new(&hc, NULL);
    char buf[8192];
    size_t have = 0;
    while (!(aemp_hs_state(hs) & (AEMP_HS_DONE | AEMP_HS_FAILED))) {
        size_t len;
        const void *p;
        while ((p = aemp_hs_out(hs, &len)) && len) {
            if (write(fd, p, len) != (ssize_t)len) break;
            aemp_hs_out_ack(hs, len);
        }
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r <= 0) break;
        have += (size_t)r;
        size_t used = aemp_hs_feed(hs, buf, have);
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    size_t len;
    const void *p;
    while ((p = aemp_hs_out(hs, &len)) && len) {
        if (write(fd, p, len) != (ssize_t)len) break;
        aemp_hs_out_ack(hs, len);
    }
    int ok = (aemp_hs_state(hs) & AEMP_HS_DONE) != 0;
    aemp_hs_free(hs);
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

void run_for(double seconds)
{
    late_t l = {ev_time() + seconds, 0};
    run_until(time_passed, &l, seconds + 1);
}

/* libev's default loop reaps every child on SIGCHLD, so a test cannot
 * learn a child's exit status with waitpid: children report through a
 * pipe instead. */
static int report_fd = -1;

pid_t fork_reporting(child_t *c)
{
    int p[2];
    c->fd = -1;
    c->code = -1;
    if (pipe(p)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        report_fd = p[1];
        return 0;
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    c->fd = p[0];
    c->pid = pid;
    return pid;
}

void child_exit(int code)
{
    unsigned char b = (unsigned char)code;
    if (report_fd >= 0 && write(report_fd, &b, 1) != 1) code = 3;
    _exit(code);
}

int child_reported(void *ud)
{
    child_t *c = ud;
    unsigned char b;
    if (c->code < 0 && c->fd >= 0) {
        ssize_t r = read(c->fd, &b, 1);
        if (r == 1) c->code = b;
        else if (r == 0) c->code = 255; /* exited without a word */
        if (c->code >= 0) {
            close(c->fd);
            c->fd = -1;
        }
    }
    return c->code >= 0;
}
