/*
 * cli_util.c - small helpers every aemp subcommand shares: error lines
 * and timestamped log lines on stderr, option and number checks,
 * resolving the noderefs and port ids users type, loading the secret and
 * printing a JSON value as one line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void cli_err(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_logf(const char *prog, const char *fmt, ...)
{
    struct timeval tv;
    struct tm tm;
    char stamp[32];
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    va_list ap;
    /* one fprintf per piece is fine: stderr is unbuffered, and only this
     * process writes these lines */
    fprintf(stderr, "%s.%03d %s: ", stamp, (int)(tv.tv_usec / 1000), prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_bad_option(const char *prog, char **argv, int ret)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    char shortopt[3] = {'-', (char)optopt, 0};
    /* getopt leaves optind past a short option's cluster only when it was
     * the last letter; optopt names the letter itself */
    const char *what = (optopt && arg[0] == '-' && arg[1] != '-') ? shortopt : arg;
    if (ret == ':')
        cli_err(prog, "option '%s' needs a value (see 'aemp %s --help')", what, argv[0]);
    else
        cli_err(prog, "unknown option '%s' (see 'aemp %s --help')", what, argv[0]);
    return 2;
}

int cli_parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v <= 0) return -1;
    *out = v;
    return 0;
}

/* One numeric endpoint: "1.2.3.4:80" or "[v6]:80", port 0..65535. */
static int ep_is_numeric(const char *ep, size_t len)
{
    char host[64];
    const char *colon;
    size_t hl;
    const char *h = ep;
    if (len && ep[0] == '[') {
        const char *close = memchr(ep, ']', len);
        if (!close || (size_t)(close - ep) + 1 >= len || close[1] != ':') return 0;
        h = ep + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = NULL;
        for (size_t i = 0; i < len; i++)
            if (ep[i] == ':') colon = ep + i;
        if (!colon) return 0;
        hl = (size_t)(colon - ep);
    }
    if (!hl || hl >= sizeof host) return 0;
    memcpy(host, h, hl);
    host[hl] = 0;
    size_t pl = len - (size_t)(colon + 1 - ep);
    if (pl == 0 || pl > 5) return 0;
    long port = 0;
    for (size_t i = 0; i < pl; i++) {
        char c = colon[1 + i];
        if (c < '0' || c > '9') return 0;
        port = port * 10 + (c - '0');
    }
    if (port > 65535) return 0;
    unsigned char buf[16];
    if (ep[0] == '[') return inet_pton(AF_INET6, host, buf) == 1;
    return inet_pton(AF_INET, host, buf) == 1;
}

int cli_noderef_is_numeric(const char *noderef)
{
    if (!strncmp(noderef, "slave/", 6)) return 1;
    if (!*noderef) return 0;
    for (const char *p = noderef;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (!ep_is_numeric(p, len)) return 0;
        if (!comma) return 1;
        p = comma + 1;
    }
}

char *cli_resolve_noderef(const char *prog, const char *spec)
{
    if (cli_noderef_is_numeric(spec)) {
        char *s = strdup(spec);
        if (!s) cli_err(prog, "out of memory");
        return s;
    }
    int err = 0;
    char *r = aemp_resolve(spec, &err);
    if (!r) cli_err(prog, "%s: cannot resolve (%s)", spec, aemp_strerror(err ? err : AEMP_ERESOLVE));
    return r;
}

int cli_resolve_portid(const char *prog, const char *spec, char **noderef, char **portid)
{
    /* a local id never contains '#', so the last one separates */
    const char *hash = strrchr(spec, '#');
    size_t nl = hash ? (size_t)(hash - spec) : strlen(spec);
    const char *local = hash ? hash + 1 : "";
    if (nl == 0) {
        cli_err(prog, "'%s' is not a port id (NODEREF#ID or NODEREF)", spec);
        return -1;
    }
    char *node = strndup(spec, nl);
    if (!node) {
        cli_err(prog, "out of memory");
        return -1;
    }
    char *resolved = cli_resolve_noderef(prog, node);
    free(node);
    if (!resolved) return -1;
    size_t len = strlen(resolved) + strlen(local) + 2;
    char *id = malloc(len);
    if (!id) {
        free(resolved);
        cli_err(prog, "out of memory");
        return -1;
    }
    if (hash) snprintf(id, len, "%s#%s", resolved, local);
    else snprintf(id, len, "%s", resolved);
    *noderef = resolved;
    *portid = id;
    return 0;
}

int cli_secret_load(const char *prog, const char *file, cli_secret_t *s)
{
    char path[4096];
    memset(s, 0, sizeof *s);
    if (!file) {
        const char *home = getenv("HOME");
        if (!home || !*home) return 0;
        snprintf(path, sizeof path, "%s/.aemp-secret", home);
    } else {
        snprintf(path, sizeof path, "%s", file);
    }
    /* open it here first: the library's error code cannot say why */
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (!file && errno == ENOENT) return 0;
        cli_err(prog, "%s: cannot read the secret: %s", path, strerror(errno));
        return -1;
    }
    fclose(f);
    int err = 0;
    s->data = aemp_read_secret(path, &s->len, &err);
    if (!s->data) {
        cli_err(prog, "%s: cannot read the secret: %s", path, aemp_strerror(err));
        return -1;
    }
    s->path = strdup(path);
    return 0;
}

void cli_secret_free(cli_secret_t *s)
{
    if (s->data) {
        aemp_secret_free(s->data, s->len);
    }
    free(s->path);
    memset(s, 0, sizeof *s);
}

int cli_default_secret_path(const char *prog, char *buf, size_t n)
{
    const char *home = getenv("HOME");
    if (!home || !*home) {
        cli_err(prog, "$HOME is not set: name the FILE");
        return -1;
    }
    if ((size_t)snprintf(buf, n, "%s/.aemp-secret", home) >= n) {
        cli_err(prog, "$HOME is too long");
        return -1;
    }
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int cli_write_private_file(const char *prog, const char *path, const void *data, size_t len,
                           int force)
{
    if (!force) {
        /* O_EXCL: never replace what is there, even if it appears now */
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST)
                cli_err(prog, "%s exists; use --force to replace it", path);
            else
                cli_err(prog, "%s: %s", path, strerror(errno));
            return -1;
        }
        if (write_all(fd, data, len) || fsync(fd) || close(fd)) {
            cli_err(prog, "%s: %s", path, strerror(errno));
            unlink(path);
            return -1;
        }
        return 0;
    }
    /* replace atomically: readers see the old secret or the new one */
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 8);
    if (!tmp) {
        cli_err(prog, "out of memory");
        return -1;
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".XXXXXX", 8);
    int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        cli_err(prog, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    if (write_all(fd, data, len) || fsync(fd) || close(fd) || rename(tmp, path)) {
        cli_err(prog, "%s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int cli_print_json(const char *prog, const json_t *v)
{
    size_t len = 0;
    char *text = aemp_json_encode(v, &len);
    if (!text) {
        cli_err(prog, "cannot encode the message as JSON");
        return -1;
    }
    fwrite(text, 1, len, stdout);
    fputc('\n', stdout);
    free(text);
    if (fflush(stdout) != 0) {
        cli_err(prog, "standard output: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes what 2.02's tool prints, then flushes: see cli.h. */
static int print_flushed(const char *prog, const char *text, size_t len, const char *end)
{
    fwrite(text, 1, len, stdout);
    fputs(end, stdout);
    if (fflush(stdout) != 0) {
        cli_err(prog, "standard output: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int cli_print_elements(const char *prog, const json_t *elems)
{
    size_t len = 0;
    char *text = aemp_json_encode(elems, &len);
    if (!text || len < 2) {
        free(text);
        cli_err(prog, "cannot encode the message as JSON");
        return -1;
    }
    int rc = print_flushed(prog, text + 1, len - 2, "\n");
    free(text);
    return rc;
}

int cli_print_words(const char *prog, const json_t *elems)
{
    size_t i;
    json_t *e;
    json_array_foreach(elems, i, e) {
        char *text = json_is_string(e) ? NULL : aemp_json_encode(e, NULL);
        const char *w = text ? text : json_string_value(e) ? json_string_value(e) : "";
        fputs(w, stdout);
        fputc(' ', stdout);
        free(text);
    }
    return print_flushed(prog, "", 0, "\n");
}

int cli_force_and_file(const char *prog, int argc, char **argv, void (*usage)(FILE *), int *force,
                       char *path, size_t n)
{
    static const struct option opts[] = {
        {"force", 0, NULL, 'f'}, {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'f': *force = 1; break;
        case 'h': usage(stdout); return 0;
        default: return cli_bad_option(prog, argv, c);
        }
    }
    if (argc - optind > 1) {
        cli_err(prog, "unexpected argument '%s' (see '%s --help')", argv[optind + 1], prog);
        return 2;
    }
    if (optind < argc) snprintf(path, n, "%s", argv[optind]);
    else if (cli_default_secret_path(prog, path, n)) return 2;
    return -1;
}
