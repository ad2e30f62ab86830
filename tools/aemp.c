/*
 * aemp.c - the aemp command: dispatches to its subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "aemp.h"
#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *usage;
} cmds[] = {
    {"md6sum", cmd_md6sum, "md6sum [-d BITS] [-K KEY] [-L LEVELS] [-r ROUNDS] [FILE...]"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: aemp COMMAND [ARGS...]\n\n"
               "aemp " AEMP_VERSION " - tools for AnyEvent::MP (AEMP protocol 0) nodes.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  aemp %s\n", cmds[i].usage);
    fprintf(f, "  aemp help | --help | --version\n\n"
               "'aemp COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *c = argv[1];
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) {
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
    return 1;
}
