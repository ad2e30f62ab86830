/*
 * main.c - the aemp command: dispatches to its subcommands. Each one
 * lives in its own tools/cmd_*.c and returns the exit status: 0 success,
 * 1 failure (unreachable node, authentication, timeout, I/O), 2 a bad
 * command line. A global option --protocol N before the subcommand (or
 * AEMP_PROTOCOL=N in the environment; the option wins) selects the
 * protocol: 0, the default, is AnyEvent::MP 0.4 and the commands below;
 * 1 is AnyEvent::MP 2.x, whose configuration subcommands chain
 * (cmd_p1conf.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aemp.h"
#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *usage;
} cmds[] = {
    {"run", cmd_run,
     "run [--bind NODEREF] [--slave NAME --master NODEREF...] [--secret-file FILE]\n"
     "           [--timeout S] [--service NAME]... [-v]"},
    {"snd", cmd_snd, "snd [OPTIONS] PORT [ARG...]"},
    {"flood", cmd_flood, "flood [OPTIONS] PORT N [ARG...]"},
    {"cal", cmd_cal, "cal [OPTIONS] [--timeout S] PORT [ARG...]"},
    {"mon", cmd_mon, "mon [OPTIONS] PORT"},
    {"ping", cmd_ping, "ping [OPTIONS] [--timeout S] NODEREF"},
    {"gensecret", cmd_gensecret, "gensecret [--force] [FILE]"},
    {"gencert", cmd_gencert, "gencert [--force] [FILE]"},
    {"md6sum", cmd_md6sum, "md6sum [-d BITS] [-K KEY] [-L LEVELS] [-r ROUNDS] [FILE...]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: aemp [--protocol N] COMMAND [ARGS...]\n\n"
               "aemp " AEMP_VERSION " - tools for AnyEvent::MP (AEMP protocol 0) nodes.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  aemp %s\n", cmds[i].usage);
    fprintf(f, "  aemp help | --help | --version\n\n"
               "Client OPTIONS: --secret-file FILE, --bind NODEREF, --connect-timeout S, -v.\n"
               "PORT is a port id (NODEREF#ID) or a bare NODEREF (the node port); an ARG\n"
               "starting with [, { or \" is JSON, any other ARG a string.\n"
               "'aemp COMMAND --help' describes one command; see also aemp(1).\n"
               "--protocol 1 (or AEMP_PROTOCOL=1): AnyEvent::MP 2.x configuration and\n"
               "run/snd/cal/mon subcommands, see 'aemp --protocol 1 help'.\n");
}

/* "0" or "1" into *out; -1 for anything else. */
static int parse_protocol(const char *s, int *out)
{
    if (!s || (strcmp(s, "0") && strcmp(s, "1"))) return -1;
    *out = s[0] - '0';
    return 0;
}

int main(int argc, char **argv)
{
    int protocol = 0;
    const char *env = getenv("AEMP_PROTOCOL");
    if (env && *env && parse_protocol(env, &protocol)) {
        fprintf(stderr, "aemp: AEMP_PROTOCOL='%s': protocol must be 0 or 1\n", env);
        return 2;
    }
    /* the global option, before the subcommand */
    while (argc > 1 && !strncmp(argv[1], "--protocol", 10) &&
           (argv[1][10] == 0 || argv[1][10] == '=')) {
        const char *v = argv[1][10] == '=' ? argv[1] + 11 : argc > 2 ? argv[2] : NULL;
        if (parse_protocol(v, &protocol)) {
            fprintf(stderr, "aemp: --protocol %s: protocol must be 0 or 1\n", v ? v : "needs a value,");
            return 2;
        }
        int used = argv[1][10] == '=' ? 1 : 2;
        argv[used] = argv[0];
        argv += used;
        argc -= used;
    }
    if (protocol == 1 && (argc < 2 || strcmp(argv[1], "--version"))) return cmd_p1(argc - 1, argv + 1);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) {
        /* `aemp help COMMAND` is `aemp COMMAND --help` */
        if (argc > 2) {
            for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
                if (!strcmp(argv[2], cmds[i].name)) {
                    char *args[] = {argv[2], "--help", NULL};
                    return cmds[i].fn(2, args);
                }
            fprintf(stderr, "aemp: unknown command '%s' (see 'aemp help')\n", argv[2]);
            return 2;
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(c, "--version")) {
        printf("aemp %s\n", AEMP_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(c, cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "aemp: unknown command '%s' (see 'aemp help')\n", c);
    return 2;
}
