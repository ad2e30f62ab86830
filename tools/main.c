/*
 * main.c - the aemp command: the one table of its verbs and the dispatch
 * to them. A global option --protocol N before the verb (or
 * AEMP_PROTOCOL=N in the environment; the option wins) selects the
 * dialect: 0, the default, is AnyEvent::MP 0.4, where a verb is a command
 * of its own with options; 1 is AnyEvent::MP 2.x (what today's networks
 * run), whose verbs chain as 2.02's tool chains them (cmd_p1conf.c). Each verb's cmd_VERB.c serves
 * both. Exit status: 0 success, 1 failure (unreachable node,
 * authentication, timeout, I/O), 2 a bad command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aemp.h"
#include "cli.h"

/* Every verb, with what it does in each dialect. Protocol 0's help lists
 * the rows with a run0 in this order. */
static const cli_verb_t verbs[] = {
    {"run", cmd_run, cmd_run_p1, NULL,
     "run [--bind NODEREF] [--slave NAME --master NODEREF...] [--secret-file FILE]\n"
     "           [--timeout S] [--service NAME]... [-v]"},
    {"snd", cmd_snd, cmd_snd_p1, NULL, "snd [OPTIONS] PORT [ARG...]"},
    {"flood", cmd_flood, cli_conf_unsupported, NULL, "flood [OPTIONS] PORT N [ARG...]"},
    {"cal", cmd_cal, cmd_cal_p1, NULL, "cal [OPTIONS] [--timeout S] PORT [ARG...]"},
    {"mon", cmd_mon, cmd_mon_p1, NULL, "mon [OPTIONS] PORT"},
    {"ping", cmd_ping, cli_conf_unsupported, NULL, "ping [OPTIONS] [--timeout S] NODEREF"},
    {"gensecret", cmd_gensecret, cmd_gensecret_p1, "secret", "gensecret [--force] [FILE]"},
    {"gencert", cmd_gencert, cmd_gencert_p1, "cert", "gencert [--force] [FILE]"},
    {"md6sum", cmd_md6sum, NULL, NULL, "md6sum [-d BITS] [-K KEY] [-L LEVELS] [-r ROUNDS] [FILE...]"},
    /* 2.02's eval-based verbs, protocol 1 only */
    {"eval", NULL, cmd_eval_p1, NULL, NULL},
    {"shell", NULL, cmd_shell_p1, NULL, NULL},
    {"trace", NULL, cmd_trace_p1, NULL, NULL},
    {"restart", NULL, cmd_restart_p1, NULL, NULL},
    /* protocol 1's configuration steps, on the rc key named */
    {"setnodeid", NULL, cli_conf_set, "nodeid", NULL},
    {"delnodeid", NULL, cli_conf_del, "nodeid", NULL},
    {"setsecret", NULL, cli_conf_set, "secret", NULL},
    {"delsecret", NULL, cli_conf_del, "secret", NULL},
    {"setcert", NULL, cli_conf_setcert, "cert", NULL},
    {"delcert", NULL, cli_conf_del, "cert", NULL},
    {"setseeds", NULL, cli_conf_setlist, "seeds", NULL},
    {"delseeds", NULL, cli_conf_del, "seeds", NULL},
    {"addseed", NULL, cli_conf_addaddr, "seeds", NULL},
    {"delseed", NULL, cli_conf_deladdr, "seeds", NULL},
    {"setbinds", NULL, cli_conf_setlist, "binds", NULL},
    {"delbinds", NULL, cli_conf_del, "binds", NULL},
    {"addbind", NULL, cli_conf_addaddr, "binds", NULL},
    {"delbind", NULL, cli_conf_deladdr, "binds", NULL},
    {"setservices", NULL, cli_conf_setlist, "services", NULL},
    {"delservices", NULL, cli_conf_del, "services", NULL},
    {"addservice", NULL, cli_conf_addservice, "services", NULL},
    {"delservice", NULL, cli_conf_delservice, "services", NULL},
    {"seteval", NULL, cli_conf_set, "eval", NULL},
    {"deleval", NULL, cli_conf_del, "eval", NULL},
    {"profile", NULL, cli_conf_profile, NULL, NULL},
    {"delprofile", NULL, cli_conf_delprofile, NULL, NULL},
    {"setparent", NULL, cli_conf_set, "parent", NULL},
    {"delparent", NULL, cli_conf_del, "parent", NULL},
    {"showprofile", NULL, cli_conf_showprofile, NULL, NULL},
    {"showconfig", NULL, cli_conf_showconfig, NULL, NULL},
    {"setsecure", NULL, cli_conf_set, "secure", NULL},
    {"delsecure", NULL, cli_conf_del, "secure", NULL},
    {"setmonitor_timeout", NULL, cli_conf_set, "monitor_timeout", NULL},
    {"delmonitor_timeout", NULL, cli_conf_del, "monitor_timeout", NULL},
    {"setconnect_interval", NULL, cli_conf_set, "connect_interval", NULL},
    {"delconnect_interval", NULL, cli_conf_del, "connect_interval", NULL},
    {"setframing_format", NULL, cli_conf_set, "framing_format", NULL},
    {"delframing_format", NULL, cli_conf_del, "framing_format", NULL},
    {"setauth_offer", NULL, cli_conf_set, "auth_offer", NULL},
    {"delauth_offer", NULL, cli_conf_del, "auth_offer", NULL},
    {"setauth_accept", NULL, cli_conf_set, "auth_accept", NULL},
    {"delauth_accept", NULL, cli_conf_del, "auth_accept", NULL},
    {"setautocork", NULL, cli_conf_set, "autocork", NULL},
    {"delautocork", NULL, cli_conf_del, "autocork", NULL},
    {"setnodelay", NULL, cli_conf_set, "nodelay", NULL},
    {"delnodelay", NULL, cli_conf_del, "nodelay", NULL},
};

const cli_verb_t *cli_verb_find(const char *name)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(verbs[i].name, name)) return &verbs[i];
    return NULL;
}

/* Protocol 0's verb named name, or NULL. */
static const cli_verb_t *find_run0(const char *name)
{
    const cli_verb_t *v = cli_verb_find(name);
    return v && v->run0 ? v : NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: aemp [--protocol N] COMMAND [ARGS...]\n\n"
               "aemp " AEMP_VERSION " - tools for AnyEvent::MP nodes, in both dialects:\n"
               "  --protocol 1 (or AEMP_PROTOCOL=1): AnyEvent::MP 2.x, the current release;\n"
               "               use it for any 2.x network (see 'aemp --protocol 1 help')\n"
               "  protocol 0 (the default): AnyEvent::MP 0.4, the commands below\n\n"
               "protocol 0 commands:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (verbs[i].run0) fprintf(f, "  aemp %s\n", verbs[i].usage0);
    fprintf(f, "  aemp help | --help | --version\n\n"
               "Client OPTIONS: --secret-file FILE, --bind NODEREF, --connect-timeout S, -v.\n"
               "PORT is a port id (NODEREF#ID) or a bare NODEREF (the node port); an ARG\n"
               "starting with [, { or \" is JSON, any other ARG a string.\n"
               "'aemp COMMAND --help' describes one command; see also aemp(1).\n"
               "--protocol 1: 2.02's aemp (rc-file configuration, run, snd, cal, mon, eval,\n"
               "shell, trace, restart), printing as it prints; 'aemp --protocol 1 help'.\n");
}

void cli_usage_p1(FILE *f)
{
    fprintf(f,
            "usage: aemp --protocol 1 SUBCOMMAND [ARGS...] [SUBCOMMAND [ARGS...]]...\n\n"
            "Protocol 1, AnyEvent::MP 2.x (the current release; protocol 0 without\n"
            "--protocol is 0.4's, see 'aemp help'), as 2.02's aemp does it.\n"
            "Configures AnyEvent::MP 2.x nodes in $PERL_ANYEVENT_MP_RC, else\n"
            "$HOME/.perl-anyevent-mp (also with AEMP_PROTOCOL=1). Subcommands chain:\n"
            "  aemp --protocol 1 profile seed setbinds 127.0.0.1:4040 gensecret showconfig seed\n\n"
            "  setnodeid ID | delnodeid          gensecret | setsecret S | delsecret\n"
            "  gencert | setcert FILE | delcert  setseeds A,B | addseed A | delseed A | delseeds\n"
            "  setbinds A,B | addbind A | delbind A | delbinds\n"
            "  setservices S,T | addservice S | delservice S | delservices | seteval E | deleval\n"
            "  profile NAME | delprofile NAME | setparent NAME | delparent\n"
            "  showprofile NAME | showconfig [NAME [KEY VALUE]...]\n"
            "  setKEY VALUE | delKEY   KEY: secure monitor_timeout connect_interval\n"
            "                          framing_format auth_offer auth_accept autocork nodelay\n"
            "setX also works as X; an argument starting with [, { or \" is JSON.\n\n"
            "Network subcommands (they take every remaining word):\n"
            "  run [-v] [KEY VALUE]...   run a node: profile NAME, nodeid ID, binds [...],\n"
            "                            seeds [...], secret S, services [\"echo\",\"exit\",\"count\"],\n"
            "                            force 1, norc 1 ...; prints its node id and listeners\n"
            "  snd [-v] PORT ARG...      send [ARG...] to PORT, wait for its node's confirmation\n"
            "  cal [-v] PORT ARG...      send [ARG..., REPLYPORT], print the reply's elements\n"
            "                            as JSON, comma-separated (\"a\",{\"b\":1})\n"
            "  mon [-v] PORT             print the reason PORT dies with, words and spaces\n"
            "  eval [-v] NODE EXPR...    evaluate EXPR on NODE, print the results\n"
            "  shell [-v] NODE           evaluate each line of standard input on NODE\n"
            "  trace [-v] NODE           walk the network from NODE (up_nodes of each node)\n"
            "  restart [-v] NODE         restart NODE (a Perl node under AnyEvent::Watchdog)\n"
            "PORT is NODEID#ID, or a node id for its node port (aemp cal NODEID time).\n"
            "They print and exit as 2.02's tool does, run as node aemp/%%n/%%u of\n"
            "profile aemp and join the network through the configured seeds. A C node\n"
            "runs no Perl: it answers eval with an error, except the expressions 2.02's\n"
            "tool sends (trace works across Perl and C nodes). ping and flood are\n"
            "protocol 0 only.\n");
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
    /* the global option, before the verb */
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
    if (protocol == 1 && (argc < 2 || strcmp(argv[1], "--version")))
        return cli_chain_run(argc - 1, argv + 1);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) {
        /* `aemp help COMMAND` is `aemp COMMAND --help` */
        if (argc > 2) {
            const cli_verb_t *v = find_run0(argv[2]);
            if (v) {
                char *args[] = {argv[2], "--help", NULL};
                return v->run0(2, args);
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
    const cli_verb_t *v = find_run0(c);
    if (v) return v->run0(argc - 1, argv + 1);
    fprintf(stderr, "aemp: unknown command '%s' (see 'aemp help')\n", c);
    return 2;
}
