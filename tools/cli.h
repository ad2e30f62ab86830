/*
 * cli.h - the aemp command's subcommands. Each cmd_* gets argv with
 * argv[0] = the subcommand name and returns the process exit status.
 */
#ifndef AEMP_CLI_H
#define AEMP_CLI_H

int cmd_md6sum(int argc, char **argv);

#endif
