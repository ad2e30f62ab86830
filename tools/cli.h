/*
 * cli.h - the aemp command's verbs and the helpers they share. Each
 * cmd_VERB.c serves its verb in both dialects (see "the verbs" below)
 * and returns the process exit status. The helpers cover what every network command
 * needs: option parsing conventions, timestamped logging, turning
 * command-line words into JSON message elements, resolving user-given
 * noderefs and port ids, loading the secret, the node of a network
 * verb (cli_node.c), and a short-lived client node (client.c) that
 * connects, acts and exits, in either dialect.
 */
#ifndef AEMP_CLI_H
#define AEMP_CLI_H

#include <stddef.h>
#include <stdio.h>

#include <ev.h>

#include "aemp.h"

/* ---- the verbs ----
 * One table (main.c) names every verb with what it does in each
 * dialect. In protocol 0 a verb is a command of its own: it gets argv
 * with argv[0] = its name and returns the exit status. In protocol 1
 * verbs chain as in 2.02's tool (cmd_p1conf.c): a step gets the chain
 * (the next words are its arguments) and the rc key of its table row,
 * and returns 0 to go on or the exit status. A network step (run, snd,
 * cal, mon) takes every remaining word (cli_chain_rest). Each cmd_VERB.c
 * serves its verb in both dialects. */
typedef struct cli_chain cli_chain_t;

typedef struct cli_verb {
    const char *name;
    int (*run0)(int argc, char **argv);              /* protocol 0; NULL: none */
    int (*step1)(cli_chain_t *s, const char *key);   /* protocol 1; NULL: none */
    const char *key;                                 /* the rc key step1 works on */
    const char *usage0;                              /* protocol 0's usage line */
} cli_verb_t;
/* The table row named name, or NULL. */
const cli_verb_t *cli_verb_find(const char *name);
/* Protocol 1's help text. */
void cli_usage_p1(FILE *f);

int cmd_md6sum(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_run_p1(cli_chain_t *s, const char *key);
int cmd_snd(int argc, char **argv);
int cmd_snd_p1(cli_chain_t *s, const char *key);
int cmd_flood(int argc, char **argv);
int cmd_cal(int argc, char **argv);
int cmd_cal_p1(cli_chain_t *s, const char *key);
int cmd_mon(int argc, char **argv);
int cmd_mon_p1(cli_chain_t *s, const char *key);
int cmd_ping(int argc, char **argv);
int cmd_gensecret(int argc, char **argv);
int cmd_gensecret_p1(cli_chain_t *s, const char *key);
int cmd_gencert(int argc, char **argv);
int cmd_gencert_p1(cli_chain_t *s, const char *key);
int cmd_eval_p1(cli_chain_t *s, const char *key);
int cmd_shell_p1(cli_chain_t *s, const char *key);
int cmd_restart_p1(cli_chain_t *s, const char *key);
int cmd_trace_p1(cli_chain_t *s, const char *key);

/* ---- cmd_p1conf.c: protocol 1's chain and its configuration steps ---- */
struct cli_chain {
    json_t *rc;      /* the whole rc file */
    json_t *profile; /* where set/del go: rc or one of its profiles */
    json_t **args;   /* the words, as JSON values */
    int nargs, next;
    const char *cmd; /* the running step's word, for messages */
    int dirty;
    const char *path; /* the rc file */
};
/* Runs argv (argv[0] = the first verb) as 2.02's tool runs a chain on
 * the rc file. Returns the exit status. */
int cli_chain_run(int argc, char **argv);
/* Sets key in the current profile to v (borrowed). Returns 0, or 1
 * after printing why. */
int cli_chain_set(cli_chain_t *s, const char *key, json_t *v);
/* For a network step: writes the rc file when the chain changed it and
 * takes every remaining word (*args, borrowed from the chain). Returns
 * their count, or -1 after printing why the file could not be written. */
int cli_chain_rest(cli_chain_t *s, json_t *const **args);
/* The configuration steps (setKEY, delKEY, addseed, profile, ...). */
int cli_conf_set(cli_chain_t *s, const char *key);
int cli_conf_del(cli_chain_t *s, const char *key);
int cli_conf_setcert(cli_chain_t *s, const char *key);
int cli_conf_setlist(cli_chain_t *s, const char *key);
int cli_conf_addaddr(cli_chain_t *s, const char *key);
int cli_conf_deladdr(cli_chain_t *s, const char *key);
int cli_conf_addservice(cli_chain_t *s, const char *key);
int cli_conf_delservice(cli_chain_t *s, const char *key);
int cli_conf_profile(cli_chain_t *s, const char *key);
int cli_conf_delprofile(cli_chain_t *s, const char *key);
int cli_conf_showprofile(cli_chain_t *s, const char *key);
int cli_conf_showconfig(cli_chain_t *s, const char *key);
/* A network verb of 2.02 this tool does not have in protocol 1. */
int cli_conf_unsupported(cli_chain_t *s, const char *key);

/* ---- cli_node.c: the node of every network verb ---- */
/* What a command's node callbacks share. */
typedef struct cli_node {
    const char *prog;
    struct ev_loop *loop;
    aemp_node_t *node;
    int verbose;
    int started;          /* until then the node's warnings are kept */
    char *start_error;    /* the last of them: the one error line */
    int quiet_start;      /* do not echo them with -v */
    int start_error_alone; /* a start failure is the kept warning alone */
    ev_signal sigint, sigterm;
    int signals;          /* they are watched */
} cli_node_t;
/* While the node is starting, keeps a warning or error as b's
 * start_error (echoed with -v). Returns 1 when msg was taken so. */
int cli_node_starting(cli_node_t *b, int level, const char *msg);
/* Creates and starts the node of cfg on the default loop, with SIGPIPE
 * ignored. Returns 0, or 1 after printing why ("cannot create the node:
 * ...", "cannot start the node: ..."). */
int cli_node_start(cli_node_t *b, const aemp_node_config_t *cfg);
/* What -v's "link up" lines say of the link to name: "framing cbor", or
 * "framing json out, cbor in" when its directions differ; in t (len
 * bytes), which is returned. */
const char *cli_framing_text(aemp_node_t *node, const char *name, char *t, size_t len);
/* From now on SIGINT and SIGTERM stop b's loop (said with -v), until
 * cli_node_end. */
void cli_node_signals(cli_node_t *b);
/* Destroys the node (closing every link) and frees b's strings. */
void cli_node_end(cli_node_t *b);

/* Protocol 1: a node's configuration, binds and seeds resolved to
 * "ip:port" endpoints (2.02's rules: "host:*", "*", a bare port). */
typedef struct cli_p1cfg {
    aemp_p1_config_t c;
    char **binds, **seeds; /* NULL-terminated */
    size_t nbinds, nseeds;
} cli_p1cfg_t;
/* The effective configuration of profile (NULL: the host name) with
 * args (an object, borrowed) as the program's arguments, from rc (NULL:
 * no file), flags as aemp_rc_profile's. Returns 0, or 1 after printing
 * why. */
int cli_p1cfg_load(const char *prog, const json_t *rc, const char *profile, const json_t *args,
                   unsigned flags, cli_p1cfg_t *p);
/* Fills cfg's protocol-1 part from p (borrowed while cfg is used). */
void cli_p1cfg_apply(aemp_node_config_t *cfg, const cli_p1cfg_t *p);
void cli_p1cfg_free(cli_p1cfg_t *p);

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

/* Protocol 1, as 2.02's tool prints: the elements of an array as JSON,
 * comma-separated, without the brackets (cal, eval: "a",{"b":1}), or
 * each element followed by a space, strings as they are and other
 * values as JSON (snd, mon: Perl's join " ", @list, "\n"); one line,
 * flushed. Returns 0, or -1 after printing why. */
int cli_print_elements(const char *prog, const json_t *elems);
int cli_print_words(const char *prog, const json_t *elems);

/* ---- client.c ---- */
/* A short-lived node that acts on one target: in protocol 0 it connects
 * to the target's node; in protocol 1 it joins the network through the
 * configured seeds first. Every way of failing is one line on stderr and
 * exit status 1. */
typedef struct cli_client cli_client_t;

typedef struct cli_client_opts {
    const char *secret_file; /* NULL: $HOME/.aemp-secret */
    const char *bind;        /* NULL: 127.0.0.1:0 */
    double connect_timeout;  /* seconds; 0: 10 */
    double timeout;          /* command-specific; 0: 10 */
    int verbose;
} cli_client_opts_t;

/* Protocol 0: parses the options of a client command (the common ones,
 * and --timeout S when takes_timeout). Returns -1 to go on, with optind
 * at the first operand, or an exit status to return at once: 0 after
 * --help (usage printed on stdout), 2 after a bad option (one line on
 * stderr). */
int cli_client_parse(const char *prog, int argc, char **argv, cli_client_opts_t *o,
                     int takes_timeout, void (*usage)(FILE *));
/* Usage lines of the common options. */
void cli_client_options_usage(FILE *f);

/* Protocol 0: creates and starts the node. peer is the resolved noderef
 * of the node the command talks to. Returns NULL after printing why. */
cli_client_t *cli_client_new(const char *prog, const cli_client_opts_t *o, const char *peer);
/* Protocol 0: the start shared by the commands that take PORT [ARG...]
 * (snd, cal; mon takes PORT alone: msg NULL), with optind at PORT:
 * builds the message from the ARGs, resolves PORT and creates the
 * client. Returns 0 with *msg (new reference), *c and the malloc'd *node
 * and *port set, or the exit status (2: usage, 1: anything else) after
 * printing why. */
int cli_client_for_port(const char *prog, int argc, char **argv, const cli_client_opts_t *o,
                        json_t **msg, cli_client_t **c, char **node, char **port);
/* Protocol 1: the start of snd, cal (msg not NULL: the ARGs after PORT
 * as elements) and mon (msg NULL: PORT alone), which take the chain's
 * remaining words [-v]... PORT [ARG...] (cli_chain_rest): checks PORT
 * (NODEID#ID, or a node id for its node port), and creates the command
 * node `aemp/%n/%u` of profile `aemp` of the chain's rc file, which joins
 * through the seeds. Returns 0 with *msg (new reference), *c and *port
 * (borrowed from the chain) set, or the exit status after printing why. */
int cli_client_for_port_p1(const char *prog, cli_chain_t *s, json_t **msg, cli_client_t **c,
                           const char **port);

aemp_node_t *cli_client_node(cli_client_t *c);
/* The target's node: protocol 0 its resolved noderef, protocol 1 its
 * node id. */
const char *cli_client_peer(const cli_client_t *c);
int cli_client_protocol(const cli_client_t *c);
/* Seconds since the client was created. */
double cli_client_elapsed(const cli_client_t *c);
/* Called once, from the loop, when the command may act: protocol 0 once
 * the link to the peer is authenticated, protocol 1 once the first link
 * (to a seed) is. */
void cli_client_on_up(cli_client_t *c, void (*fn)(cli_client_t *, void *), void *ud);
/* What happens when the link to the target's node goes down after it
 * was up: by default the command fails with "link to PEER lost:
 * REASON". A handler replaces that. */
void cli_client_on_down(cli_client_t *c, void (*fn)(cli_client_t *, const char *reason, void *),
                        void *ud);
/* Protocol 1: while on, the target's node going down is left to the
 * command's monitor of the target port, which hears it too. */
void cli_client_monitored(cli_client_t *c, int on);
/* Protocol 1: the link to the target's node is up already (a node port
 * is not monitored, so nothing else would say so). */
void cli_client_target_up(cli_client_t *c);
/* Starts a timer that ends the command with status 1 and message after
 * seconds (replaces an earlier one). */
void cli_client_deadline(cli_client_t *c, double seconds, const char *message);
/* 1 once the command could act (see cli_client_on_up). */
int cli_client_was_up(const cli_client_t *c);
/* Non-zero with -v. */
int cli_client_verbose(const cli_client_t *c);
/* Calls fn once from the loop, after the callbacks of the event being
 * handled (a monitor firing on the same read is heard first), unless
 * the command has ended by then. */
void cli_client_then(cli_client_t *c, void (*fn)(cli_client_t *, void *), void *ud);
/* Ends the command with status. The loop stops once the callback
 * returns; the first outcome wins, later calls do nothing. */
void cli_client_finish(cli_client_t *c, int status);
/* Ends the command with status once everything queued for the target's
 * node has been handed to the kernel on an authenticated link, or after
 * cap seconds when cap > 0 (a link failure first ends it as usual). */
void cli_client_finish_flushed(cli_client_t *c, int status, double cap);
/* Ends the command with status 1 after printing "PROG: MESSAGE". */
void cli_client_fail(cli_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Protocol 1: when a monitor's reason is a transport error and the
 * target's node was never up, ends the command with "cannot reach node
 * NODE: MESSAGE" and returns 1; else returns 0. */
int cli_client_unreached(cli_client_t *c, const json_t *reason);
/* Ends the command after a monitor of portid fired with reason:
 * "PORT exited AFTER" for [] and "PORT died AFTER: REASON" otherwise
 * (AFTER may be ""); in protocol 1 as 2.02's tool says it:
 * ["no_such_port",...] is "PORT: no such port", a transport error before
 * the target's node was up "cannot reach node NODE: MESSAGE". */
void cli_client_port_died(cli_client_t *c, const char *portid, const json_t *reason,
                          const char *after);
/* Runs the loop until the command is finished, destroys the node and
 * frees c. Returns the exit status. */
int cli_client_run(cli_client_t *c);

#endif
