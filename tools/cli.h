/*
 * cli.h - the aemp command's subcommands and the helpers they share.
 * Each cmd_* gets argv with argv[0] = the subcommand name and returns the
 * process exit status. The helpers cover what every network command
 * needs: option parsing conventions, timestamped logging, turning
 * command-line words into JSON message elements, resolving user-given
 * noderefs and port ids, loading the secret, and a short-lived client
 * node (client.c) that connects, acts and exits.
 */
#ifndef AEMP_CLI_H
#define AEMP_CLI_H

#include <stddef.h>
#include <stdio.h>

#include <ev.h>

#include "aemp.h"

int cmd_md6sum(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_snd(int argc, char **argv);
int cmd_flood(int argc, char **argv);
int cmd_cal(int argc, char **argv);
int cmd_mon(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_gensecret(int argc, char **argv);
int cmd_gencert(int argc, char **argv);
/* Protocol 1 (cmd_p1conf.c): runs argv (argv[0] = the first subcommand)
 * as the Perl tool runs a chain of subcommands on the rc file. */
int cmd_p1(int argc, char **argv);

/* Protocol 1 (cmd_p1net.c): the network subcommand cmd ("run", "snd",
 * "cal" or "mon") with the chain's remaining words args[0..nargs) (JSON
 * values, borrowed), on the configuration rc (borrowed: the rc file as
 * the chain left it). Returns the exit status. */
int cli_p1_network(const char *cmd, const json_t *rc, json_t *const *args, int nargs);

/* ---- svc.c ---- */
/* The built-in services of `aemp run`, as bits of a mask. */
enum { CLI_SVC_ECHO = 1, CLI_SVC_EXIT = 2, CLI_SVC_COUNT = 4, CLI_SVC_ALL = 7 };
/* The bit of a service name ("echo", "exit", "count"), 0 for another. */
unsigned cli_svc_bit(const char *name);
/* The services' state; fill node, prog, verbose and global, zero the
 * rest, and keep it alive as long as the node. */
typedef struct cli_svc {
    aemp_node_t *node;
    const char *prog;
    int verbose;
    int global;              /* 1: aemp_db_reg (protocol 1); 0: aemp_reg */
    unsigned long long count; /* count: messages counted */
    double first;            /* count: when the first one came */
} cli_svc_t;
/* Starts the services of mask, each a port registered under its name
 * (as family, with db_reg, when global). Returns 0 or an error code. */
int cli_svc_start(cli_svc_t *s, unsigned mask);

/* ---- cmd_gencert.c ---- */
/* A new RSA key (PKCS#1 PEM) followed by a self-signed CA certificate for
 * it, as one malloc'd NUL-terminated PEM text (*len bytes; the caller
 * cleanses and frees it), or NULL after printing why. */
char *cli_gen_key_cert(const char *prog, size_t *len);

/* ---- args.c ---- */
/* Turns message arguments into a JSON array of elements, as the Perl
 * utility does: when argv[0] starts with '[' it is a JSON array that is
 * the whole message (further arguments are an error); otherwise every
 * argument starting with '[', '{' or '"' is parsed as one JSON value
 * and every other argument is a string. Returns a new reference, or
 * NULL with a one-line explanation in err (errlen bytes). */
json_t *cli_args_to_json(int argc, char *const *argv, char *err, size_t errlen);

/* ---- cli_util.c ---- */
/* Prints "PROG: MESSAGE" to stderr (one line). */
void cli_err(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "YYYY-MM-DD HH:MM:SS.mmm PROG: MESSAGE" to stderr. */
void cli_logf(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a getopt_long failure (ret '?' or ':') for the option at
 * argv[optind - 1] and returns the exit status 2. */
int cli_bad_option(const char *prog, char **argv, int ret);
/* A number of seconds (> 0, finite) into *out; -1 when s is not one. */
int cli_parse_seconds(const char *s, double *out);
/* 1 when every comma-separated part of noderef is a numeric endpoint
 * ("1.2.3.4:80", "[::1]:80") or noderef is a slave name ("slave/..."). */
int cli_noderef_is_numeric(const char *noderef);
/* A user-given noderef, resolved with aemp_resolve unless it is already
 * numeric. Returns a malloc'd noderef, or NULL after printing why. */
char *cli_resolve_noderef(const char *prog, const char *spec);
/* Splits a port id "NODEREF#LOCALID" (or a bare noderef: the node port)
 * and resolves its node part. On success *noderef and *portid are
 * malloc'd (the resolved node and the port id rebuilt on it); returns 0,
 * or -1 after printing why. */
int cli_resolve_portid(const char *prog, const char *spec, char **noderef, char **portid);

/* The secret a command uses. */
typedef struct cli_secret {
    void *data;          /* malloc'd; NULL: none found */
    size_t len;
    char *path;          /* where it came from (malloc'd) or NULL */
} cli_secret_t;
/* Loads the secret from file, or from $HOME/.aemp-secret when file is
 * NULL. Returns 0 (s->data is NULL when the default file does not
 * exist) or -1 after printing why (an explicit file that cannot be
 * read). */
int cli_secret_load(const char *prog, const char *file, cli_secret_t *s);
void cli_secret_free(cli_secret_t *s);

/* The default secret file, $HOME/.aemp-secret, into buf. Returns 0, or
 * -1 after printing why (no $HOME). */
int cli_default_secret_path(const char *prog, char *buf, size_t n);
/* Parses "[--force] [FILE]" for commands that write a secret file: sets
 * *force and path (FILE or the default secret path). Returns -1 to go
 * on, else the exit status (0 after --help). */
int cli_force_and_file(const char *prog, int argc, char **argv, void (*usage)(FILE *), int *force,
                       char *path, size_t n);
/* Writes a private file (mode 0600) holding len bytes. Without force an
 * existing file is left alone (an error); with force it is replaced
 * atomically. Returns 0, or -1 after printing why. */
int cli_write_private_file(const char *prog, const char *path, const void *data, size_t len,
                           int force);

/* Prints a JSON value as one compact line on stdout and flushes it.
 * Returns 0, or -1 after printing why. */
int cli_print_json(const char *prog, const json_t *v);

/* ---- client.c ---- */
/* A short-lived node that talks to one peer. */
typedef struct cli_client cli_client_t;

typedef struct cli_client_opts {
    const char *secret_file; /* NULL: $HOME/.aemp-secret */
    const char *bind;        /* NULL: 127.0.0.1:0 */
    double connect_timeout;  /* seconds; 0: 10 */
    double timeout;          /* command-specific; 0: 10 */
    int verbose;
} cli_client_opts_t;

/* Parses the options of a client command (the common ones, and
 * --timeout S when takes_timeout). Returns -1 to go on, with optind at
 * the first operand, or an exit status to return at once: 0 after
 * --help (usage printed on stdout), 2 after a bad option (one line on
 * stderr). */
int cli_client_parse(const char *prog, int argc, char **argv, cli_client_opts_t *o,
                     int takes_timeout, void (*usage)(FILE *));
/* Usage lines of the common options. */
void cli_client_options_usage(FILE *f);

/* Creates and starts the node. peer is the resolved noderef of the node
 * the command talks to. Returns NULL after printing why. */
cli_client_t *cli_client_new(const char *prog, const cli_client_opts_t *o, const char *peer);
/* The start shared by the commands that take PORT [ARG...] (snd, cal;
 * mon takes PORT alone: msg NULL), with optind at PORT: builds the
 * message from the ARGs, resolves PORT and creates the client. Returns 0
 * with *msg (new reference), *c and the malloc'd *node and *port set, or
 * the exit status (2: usage, 1: anything else) after printing why. */
int cli_client_for_port(const char *prog, int argc, char **argv, const cli_client_opts_t *o,
                        json_t **msg, cli_client_t **c, char **node, char **port);
aemp_node_t *cli_client_node(cli_client_t *c);
const char *cli_client_peer(const cli_client_t *c);
/* Seconds since the client was created. */
double cli_client_elapsed(const cli_client_t *c);
/* Called once, from the loop, when the link to the peer is
 * authenticated. */
void cli_client_on_up(cli_client_t *c, void (*fn)(cli_client_t *, void *), void *ud);
/* What happens when the link to the peer goes down after it was up:
 * by default the command fails with "link to PEER lost: REASON". A
 * handler replaces that. */
void cli_client_on_down(cli_client_t *c, void (*fn)(cli_client_t *, const char *reason, void *),
                        void *ud);
/* Starts a timer that ends the command with status 1 and message after
 * seconds (replaces an earlier one). */
void cli_client_deadline(cli_client_t *c, double seconds, const char *message);
/* 1 once the link to the peer has been up. */
int cli_client_was_up(const cli_client_t *c);
/* Ends the command with status. The loop stops once the callback
 * returns; the first outcome wins, later calls do nothing. */
void cli_client_finish(cli_client_t *c, int status);
/* Ends the command with status once everything queued for the peer has
 * been handed to the kernel on an authenticated link, or after cap
 * seconds when cap > 0 (a link failure first ends it as usual). */
void cli_client_finish_flushed(cli_client_t *c, int status, double cap);
/* Ends the command with status 1 after printing "PROG: MESSAGE". */
void cli_client_fail(cli_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs the loop until the command is finished, destroys the node and
 * frees c. Returns the exit status. */
int cli_client_run(cli_client_t *c);

#endif
