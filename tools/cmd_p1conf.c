/*
 * cmd_p1conf.c - the aemp command with protocol 1 (--protocol 1 or
 * AEMP_PROTOCOL=1): the configuration subcommands of AnyEvent::MP 2.02's
 * aemp tool, working on its rc file (PROTOCOL-1 §2, §9). As there,
 * subcommands chain (`aemp profile seed setbinds 127.0.0.1:4040 gensecret
 * showconfig`): each takes the arguments it needs and the next word is the
 * next subcommand; an argument starting with '[', '{' or '"' is JSON;
 * `setX` also works as `X` (not seteval: eval is a network command).
 * Everything works on the file's JSON in memory; the file is written once,
 * at the end, when something changed, and not at all when a subcommand
 * fails (the Perl tool would write what the earlier ones did).
 * The network subcommands run, snd, cal and mon (cmd_p1net.c) take every
 * remaining word; the file is written before they start, when the chain
 * changed it, and they work on the configuration as the chain left it.
 * The other network subcommands of 2.02 (eval, shell, trace, restart,
 * ping, flood) fail with a clear message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"

#define PROG "aemp"

typedef struct p1 {
    json_t *rc;      /* the whole file */
    json_t *profile; /* where set/del go: rc or one of its profiles */
    json_t **args;   /* the words, as JSON values */
    int nargs, next;
    const char *cmd; /* the running subcommand, for messages */
    int dirty;
} p1_t;

/* The next argument, or NULL after "CMD: WHAT missing". */
static json_t *arg(p1_t *s, const char *what)
{
    if (s->next < s->nargs) return s->args[s->next++];
    cli_err(PROG, "%s: %s missing", s->cmd, what);
    return NULL;
}

/* The next argument as a string (a JSON argument must be a string). */
static const char *str_arg(p1_t *s, const char *what)
{
    json_t *v = arg(s, what);
    if (!v) return NULL;
    if (!json_is_string(v)) {
        cli_err(PROG, "%s: %s must be a string", s->cmd, what);
        return NULL;
    }
    return json_string_value(v);
}

static int set_key(p1_t *s, const char *key, json_t *v)
{
    if (json_object_set(s->profile, key, v)) {
        cli_err(PROG, "out of memory");
        return 1;
    }
    s->dirty = 1;
    return 0;
}

static int del_key(p1_t *s, const char *key)
{
    json_object_del(s->profile, key);
    s->dirty = 1;
    return 0;
}

/* The value of "KEY" in the current profile as an array, created empty
 * when missing (Perl autovivifies it); NULL after an error. */
static json_t *list_of(p1_t *s, const char *key)
{
    json_t *l = json_object_get(s->profile, key);
    if (!l || json_is_null(l)) {
        l = json_array();
        if (!l || json_object_set_new(s->profile, key, l)) {
            cli_err(PROG, "out of memory");
            return NULL;
        }
    }
    if (!json_is_array(l)) {
        cli_err(PROG, "%s: \"%s\" is not a JSON array in the rc file", s->cmd, key);
        return NULL;
    }
    return l;
}

/* setbinds/setseeds/setservices: a JSON value as it is, a string split
 * on commas as Perl's split does (trailing empty fields dropped). */
static int set_list(p1_t *s, const char *key, const char *what)
{
    json_t *v = arg(s, what);
    if (!v) return 2;
    if (!json_is_string(v)) return set_key(s, key, v);
    json_t *l = json_array();
    const char *str = json_string_value(v), *end = str + strlen(str);
    /* Perl's split drops trailing empty fields */
    while (end > str && end[-1] == ',') end--;
    int bad = !l;
    for (const char *p = str; p < end && !bad;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (!c) c = end;
        bad = json_array_append_new(l, json_stringn(p, (size_t)(c - p)));
        p = c + 1;
    }
    if (bad) {
        json_decref(l);
        cli_err(PROG, "out of memory");
        return 1;
    }
    int rc = set_key(s, key, l);
    json_decref(l);
    return rc;
}

/* delbind/delseed (all equal entries) and delservice (the first one). */
static int remove_from(p1_t *s, const char *key, json_t *v, int first_only)
{
    json_t *l = list_of(s, key);
    if (!l) return 1;
    for (size_t i = 0; i < json_array_size(l);) {
        if (json_equal(json_array_get(l, i), v)) {
            json_array_remove(l, i);
            if (first_only) break;
        } else {
            i++;
        }
    }
    s->dirty = 1;
    return 0;
}

/* addbind/addseed (moved to the end when there) and addservice. */
static int add_to(p1_t *s, const char *key, const char *what, int unique)
{
    json_t *v = arg(s, what);
    if (!v) return 2;
    if (unique && remove_from(s, key, v, 0)) return 1;
    json_t *l = list_of(s, key);
    if (!l || json_array_append(l, v)) return 1;
    s->dirty = 1;
    return 0;
}

static int del_from(p1_t *s, const char *key, const char *what, int first_only)
{
    json_t *v = arg(s, what);
    return v ? remove_from(s, key, v, first_only) : 2;
}

/* ---- the subcommands ---- */

/* setnodeid, setsecret, seteval, setparent and the low-level settings:
 * the value goes into the current profile as given */
static int c_set(p1_t *s, const char *key)
{
    json_t *v = arg(s, "value");
    return v ? set_key(s, key, v) : 2;
}

static int c_gensecret(p1_t *s, const char *key)
{
    char secret[AEMP_P1_GENSECRET_LEN + 1];
    if (aemp_random_alnum(secret, AEMP_P1_GENSECRET_LEN, aemp_random_source, NULL)) {
        cli_err(PROG, "gensecret: no random bytes from the system");
        return 1;
    }
    json_t *v = json_string(secret);
    OPENSSL_cleanse(secret, sizeof secret);
    int rc = v ? set_key(s, "secret", v) : (cli_err(PROG, "out of memory"), 1);
    json_decref(v);
    return rc;
}

static int c_setcert(p1_t *s, const char *key)
{
    const char *file = str_arg(s, "key+certificate PEM file name");
    if (!file) return 2;
    int err = 0;
    size_t len = 0;
    char *pem = aemp_read_secret(file, &len, &err);
    if (!pem) {
        cli_err(PROG, "setcert: %s: %s", file,
                err == AEMP_ENOENT ? "No such file or directory" : aemp_strerror(err));
        return 1;
    }
    json_t *v = json_stringn(pem, len);
    aemp_secret_free(pem, len);
    if (!v) {
        cli_err(PROG, "setcert: %s is not UTF-8 text", file);
        return 1;
    }
    int rc = set_key(s, "cert", v);
    json_decref(v);
    return rc;
}

static int c_gencert(p1_t *s, const char *key)
{
    size_t len;
    char *pem = cli_gen_key_cert(PROG, &len);
    if (!pem) return 1;
    json_t *v = json_stringn(pem, len);
    OPENSSL_cleanse(pem, len);
    free(pem);
    int rc = v ? set_key(s, "cert", v) : (cli_err(PROG, "out of memory"), 1);
    json_decref(v);
    return rc;
}

static int c_del(p1_t *s, const char *key)
{
    return del_key(s, key);
}

static int c_setlist(p1_t *s, const char *key)
{
    return set_list(s, key, !strcmp(key, "services") ? "service specifications" : "addresses");
}

static int c_addaddr(p1_t *s, const char *key)
{
    return add_to(s, key, "address", 1);
}

static int c_deladdr(p1_t *s, const char *key)
{
    return del_from(s, key, "address", 0);
}

static int c_addservice(p1_t *s, const char *key)
{
    return add_to(s, key, "service specification", 0);
}

static int c_delservice(p1_t *s, const char *key)
{
    return del_from(s, key, "service specification", 1);
}

/* The "profile" object of the file, created when missing. */
static json_t *profiles(p1_t *s)
{
    json_t *p = json_object_get(s->rc, "profile");
    if (!p || json_is_null(p)) {
        p = json_object();
        if (!p || json_object_set_new(s->rc, "profile", p)) {
            cli_err(PROG, "out of memory");
            return NULL;
        }
    }
    if (!json_is_object(p)) {
        cli_err(PROG, "%s: \"profile\" is not a JSON object in the rc file", s->cmd);
        return NULL;
    }
    return p;
}

static int c_profile(p1_t *s, const char *key)
{
    const char *name = str_arg(s, "profile name");
    json_t *ps = name ? profiles(s) : NULL;
    if (!ps) return name ? 1 : 2;
    json_t *p = json_object_get(ps, name);
    if (p && !json_is_object(p) && !json_is_null(p)) {
        cli_err(PROG, "profile: profile '%s' is not a JSON object in the rc file", name);
        return 1;
    }
    if (!json_is_object(p)) {
        /* Perl: $cfg->{profile}{$name} ||= {} (for a missing or null one) */
        p = json_object();
        if (!p || json_object_set_new(ps, name, p)) {
            cli_err(PROG, "out of memory");
            return 1;
        }
    }
    s->profile = p;
    s->dirty = 1;
    return 0;
}

static int c_delprofile(p1_t *s, const char *key)
{
    const char *name = str_arg(s, "profile name");
    if (!name) return 2;
    json_t *ps = json_object_get(s->rc, "profile");
    json_t *p = json_object_get(ps, name);
    if (p == s->profile) s->profile = s->rc; /* not left pointing at nothing */
    if (json_is_object(ps)) json_object_del(ps, name);
    s->dirty = 1;
    return 0;
}

static int print_pretty(const json_t *v)
{
    char *text = aemp_rc_format(v, NULL);
    if (!text) {
        cli_err(PROG, "cannot write the configuration as JSON");
        return 1;
    }
    fputs(text, stdout);
    fflush(stdout);
    free(text);
    return 0;
}

static int c_showprofile(p1_t *s, const char *key)
{
    const char *name = str_arg(s, "profile name");
    if (!name) return 2;
    json_t *p = json_object_get(json_object_get(s->rc, "profile"), name);
    json_t *empty = json_object();
    int rc = print_pretty(json_is_object(p) ? p : empty);
    json_decref(empty);
    return rc;
}

/* showconfig [NAME [KEY VALUE...]]: the effective configuration of
 * profile NAME (default: the host name) with KEY VALUE as the program's
 * arguments; takes every remaining argument, as in Perl. */
static int c_showconfig(p1_t *s, const char *key)
{
    char host[256], err[AEMP_RC_ERRMAX];
    const char *name = host;
    if (gethostname(host, sizeof host)) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    if (s->next < s->nargs && !(name = str_arg(s, "profile name"))) return 2;
    json_t *args = json_object();
    if (!args) {
        cli_err(PROG, "out of memory");
        return 1;
    }
    while (s->next < s->nargs) {
        json_t *k = s->args[s->next++];
        if (!json_is_string(k) || s->next == s->nargs) {
            cli_err(PROG, "showconfig: %s", json_is_string(k) ? "a KEY without a VALUE"
                                                                : "a KEY must be a string");
            json_decref(args);
            return 2;
        }
        json_object_set(args, json_string_value(k), s->args[s->next++]);
    }
    json_t *m = aemp_rc_profile(s->rc, name, args, 0, err, sizeof err);
    json_decref(args);
    if (!m) {
        cli_err(PROG, "showconfig: %s", err);
        return 1;
    }
    /* as the Perl tool: "make it look nicer" */
    json_object_del(m, "profile");
    json_object_del(m, "parent");
    int rc = print_pretty(m);
    json_decref(m);
    return rc;
}

static int c_network(p1_t *s, const char *key)
{
    cli_err(PROG, "'%s' is not yet supported in protocol 1", s->cmd);
    return 1;
}

/* run, snd, cal, mon: marked by their key; cmd_p1 runs them */
static const char NET[] = "network";

static const struct p1cmd {
    const char *name;
    int (*fn)(p1_t *, const char *);
    const char *key;
} cmds[] = {
    {"setnodeid", c_set, "nodeid"},        {"delnodeid", c_del, "nodeid"},
    {"setsecret", c_set, "secret"},        {"gensecret", c_gensecret, "secret"},
    {"delsecret", c_del, "secret"},        {"setcert", c_setcert, "cert"},
    {"gencert", c_gencert, "cert"},        {"delcert", c_del, "cert"},
    {"setseeds", c_setlist, "seeds"},      {"delseeds", c_del, "seeds"},
    {"addseed", c_addaddr, "seeds"},       {"delseed", c_deladdr, "seeds"},
    {"setbinds", c_setlist, "binds"},      {"delbinds", c_del, "binds"},
    {"addbind", c_addaddr, "binds"},       {"delbind", c_deladdr, "binds"},
    {"setservices", c_setlist, "services"}, {"delservices", c_del, "services"},
    {"addservice", c_addservice, "services"}, {"delservice", c_delservice, "services"},
    {"seteval", c_set, "eval"},            {"deleval", c_del, "eval"},
    {"profile", c_profile, NULL},          {"delprofile", c_delprofile, NULL},
    {"setparent", c_set, "parent"},        {"delparent", c_del, "parent"},
    {"showprofile", c_showprofile, NULL},  {"showconfig", c_showconfig, NULL},
    {"setsecure", c_set, "secure"},        {"delsecure", c_del, "secure"},
    {"setmonitor_timeout", c_set, "monitor_timeout"},
    {"delmonitor_timeout", c_del, "monitor_timeout"},
    {"setconnect_interval", c_set, "connect_interval"},
    {"delconnect_interval", c_del, "connect_interval"},
    {"setframing_format", c_set, "framing_format"},
    {"delframing_format", c_del, "framing_format"},
    {"setauth_offer", c_set, "auth_offer"},  {"delauth_offer", c_del, "auth_offer"},
    {"setauth_accept", c_set, "auth_accept"}, {"delauth_accept", c_del, "auth_accept"},
    {"setautocork", c_set, "autocork"},    {"delautocork", c_del, "autocork"},
    {"setnodelay", c_set, "nodelay"},      {"delnodelay", c_del, "nodelay"},
    /* the network subcommands of 2.02 */
    {"snd", NULL, NET},         {"cal", NULL, NET},           {"mon", NULL, NET},
    {"eval", c_network, NULL},  {"shell", c_network, NULL},   {"trace", c_network, NULL},
    {"run", NULL, NET},         {"restart", c_network, NULL}, {"ping", c_network, NULL},
    {"flood", c_network, NULL},
};

static const struct p1cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmds[i].name, name)) return &cmds[i];
    /* setX also works as X, but eval is not seteval */
    if (strcmp(name, "eval") && strlen(name) < 64) {
        char set[80];
        snprintf(set, sizeof set, "set%s", name);
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
            if (!strcmp(cmds[i].name, set)) return &cmds[i];
    }
    return NULL;
}

static void p1_usage(FILE *f)
{
    fprintf(f,
            "usage: aemp --protocol 1 SUBCOMMAND [ARGS...] [SUBCOMMAND [ARGS...]]...\n\n"
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
            "  cal [-v] PORT ARG...      send [ARG..., REPLYPORT], print the reply as JSON\n"
            "  mon [-v] PORT             print the reason PORT dies with, as JSON\n"
            "PORT is NODEID#ID, or a node id for its node port (aemp cal NODEID time).\n"
            "snd, cal and mon run as node aemp/%%n/%%u of profile aemp and join the\n"
            "network through the configured seeds. eval, shell, trace, restart, ping\n"
            "and flood are not supported in protocol 1.\n");
}

/* The words as JSON values, as the Perl tool decodes them. */
static int decode_args(p1_t *s, int argc, char **argv)
{
    if (!(s->args = calloc((size_t)argc + 1, sizeof *s->args))) return 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char why[AEMP_JSON_ERRMAX];
        if (a[0] == '[' || a[0] == '{' || a[0] == '"') {
            s->args[i] = aemp_json_decode(a, strlen(a), 0, why, sizeof why);
            if (!s->args[i]) {
                cli_err(PROG, "argument %d is not valid JSON: %s", i + 1, why);
                return 2;
            }
        } else if (!(s->args[i] = json_string(a))) {
            cli_err(PROG, "argument %d is not valid UTF-8", i + 1);
            return 2;
        }
        s->nargs = i + 1;
    }
    return 0;
}

int cmd_p1(int argc, char **argv)
{
    p1_t s = {0};
    char path[4096], err[AEMP_RC_ERRMAX];
    int rc;
    if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help")) {
        p1_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if ((rc = decode_args(&s, argc, argv))) goto out;
    if (aemp_rc_path(path, sizeof path)) {
        cli_err(PROG, "no rc file: set PERL_ANYEVENT_MP_RC or HOME");
        rc = 2;
        goto out;
    }
    if (!(s.rc = aemp_rc_load(path, err, sizeof err))) {
        cli_err(PROG, "%s", err);
        rc = 1;
        goto out;
    }
    s.profile = s.rc;
    while (!rc && s.next < s.nargs) {
        json_t *w = s.args[s.next++];
        const struct p1cmd *c = json_is_string(w) ? find_cmd(json_string_value(w)) : NULL;
        if (!c) {
            char *shown = json_is_string(w) ? strdup(json_string_value(w)) : aemp_json_encode(w, NULL);
            cli_err(PROG, "%s: no such subcommand (see 'aemp --protocol 1 help')",
                    shown ? shown : "?");
            free(shown);
            rc = 2;
            break;
        }
        s.cmd = json_string_value(w);
        if (c->key == NET) {
            /* the rest is the network subcommand's; the file first */
            if (s.dirty && aemp_rc_save(path, s.rc, err, sizeof err)) {
                cli_err(PROG, "%s", err);
                rc = 1;
                goto out;
            }
            s.dirty = 0;
            rc = cli_p1_network(s.cmd, s.rc, s.args + s.next, s.nargs - s.next);
            goto out;
        }
        rc = c->fn(&s, c->key);
    }
    if (!rc && s.dirty && aemp_rc_save(path, s.rc, err, sizeof err)) {
        cli_err(PROG, "%s", err);
        rc = 1;
    }
out:
    for (int i = 0; i < s.nargs; i++) json_decref(s.args[i]);
    free(s.args);
    json_decref(s.rc);
    return rc;
}
