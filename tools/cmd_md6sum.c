/*
 * cmd_md6sum.c - `aemp md6sum`: prints the MD6 digest of files (or of
 * standard input) in the layout of sha256sum, with the digest as
 * Digest::MD6's md6_hex writes it (ceil(d/4) lowercase hex digits).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aemp.h"
#include "cli.h"

#define PROG "aemp md6sum"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aemp md6sum [-d BITS] [-K KEY] [-L LEVELS] [-r ROUNDS] [FILE...]\n\n"
            "Prints the MD6 digest of each FILE as 'HEX  NAME'. With no FILE, or\n"
            "when FILE is -, reads standard input.\n\n"
            "  -d BITS    digest size, 1..512 (default 256)\n"
            "  -K KEY     MD6 key, up to 64 bytes (default none)\n"
            "  -L LEVELS  tree levels, 0 (sequential) .. 64 (default 64)\n"
            "  -r ROUNDS  rounds, 1..255; 0, the default, means 40 + BITS/4, at\n"
            "             least 80 with a key\n"
            "  --help     this text\n");
}

/* A whole decimal number within [lo, hi], or -1. */
static int parse_num(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

typedef struct {
    int d, L, r;
    const char *key;
    size_t keylen;
} params_t;

/* Hashes one input and prints its line; on failure prints why to stderr
 * and returns -1. */
static int sum_one(const params_t *p, const char *name, unsigned char *buf,
                   size_t bufsize)
{
    int is_stdin = !strcmp(name, "-");
    FILE *f = is_stdin ? stdin : fopen(name, "rb");
    if (!f) {
        fprintf(stderr, PROG ": %s: %s\n", name, strerror(errno));
        return -1;
    }
    aemp_md6_ctx_t ctx;
    unsigned char dig[AEMP_MD6_MAX_BYTES];
    size_t n;
    aemp_md6_full_init(&ctx, p->d, p->key, p->keylen, p->L, p->r);
    while ((n = fread(buf, 1, bufsize, f)) > 0) aemp_md6_update(&ctx, buf, n);
    int err = ferror(f) ? errno : 0;
    if (!is_stdin) fclose(f);
    if (err) {
        fprintf(stderr, PROG ": %s: %s\n", name, strerror(err));
        return -1;
    }
    aemp_md6_final(&ctx, dig);

    static const char digits[] = "0123456789abcdef";
    char hex[2 * AEMP_MD6_MAX_BYTES + 1];
    int nhex = (p->d + 3) / 4;
    for (int i = 0; i < nhex; i++)
        hex[i] = digits[(i % 2 ? dig[i / 2] : dig[i / 2] >> 4) & 15];
    hex[nhex] = 0;
    printf("%s  %s\n", hex, name);
    return 0;
}

int cmd_md6sum(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    params_t p = {256, AEMP_MD6_DEFAULT_L, 0, NULL, 0};
    long v;
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:K:L:r:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            if (parse_num(optarg, 1, 512, &v)) {
                fprintf(stderr, PROG ": invalid digest size '%s' (1..512 bits)\n", optarg);
                return 1;
            }
            p.d = (int)v;
            break;
        case 'K':
            p.key = optarg;
            p.keylen = strlen(optarg);
            if (p.keylen > 64) {
                fprintf(stderr, PROG ": key too long (%zu bytes; at most 64)\n", p.keylen);
                return 1;
            }
            break;
        case 'L':
            if (parse_num(optarg, 0, 64, &v)) {
                fprintf(stderr, PROG ": invalid number of levels '%s' (0..64)\n", optarg);
                return 1;
            }
            p.L = (int)v;
            break;
        case 'r':
            if (parse_num(optarg, 0, 255, &v)) {
                fprintf(stderr, PROG ": invalid number of rounds '%s' (0..255)\n", optarg);
                return 1;
            }
            p.r = (int)v;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, PROG ": option -%c needs a value (see 'aemp md6sum --help')\n",
                    optopt);
            return 1;
        default:
            if (optopt)
                fprintf(stderr, PROG ": unknown option '-%c' (see 'aemp md6sum --help')\n",
                        optopt);
            else
                fprintf(stderr, PROG ": unknown option '%s' (see 'aemp md6sum --help')\n",
                        argv[optind - 1]);
            return 1;
        }
    }

    size_t bufsize = 1 << 16;
    unsigned char *buf = malloc(bufsize);
    if (!buf) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    int status = 0;
    if (optind >= argc) {
        if (sum_one(&p, "-", buf, bufsize)) status = 1;
    }
    for (int i = optind; i < argc; i++)
        if (sum_one(&p, argv[i], buf, bufsize)) status = 1;
    free(buf);
    if (fflush(stdout) != 0) {
        fprintf(stderr, PROG ": write error: %s\n", strerror(errno));
        status = 1;
    }
    return status;
}
