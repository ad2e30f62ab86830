/*
 * cmd_p1conf.c - the aemp command with protocol 1 (--protocol 1 or
 * AEMP_PROTOCOL=1): the chain of AnyEvent::MP 2.02's aemp tool and its
 * configuration steps, working on its rc file (PROTOCOL-1 §2, §9). As
 * there, verbs chain (`aemp profile seed setbinds 127.0.0.1:4040 gensecret
 * showconfig`): each takes the arguments it needs and the next word is the
 * next verb (found in the one verb table, main.c); an argument starting
 * with '[', '{' or '"' is JSON; `setX` also works as `X` (not seteval:
 * eval is a network verb). Everything works on the file's JSON in memory;
 * the file is written once, at the end, when something changed, and not
 * at all when a step fails (the Perl tool would write what the earlier
 * ones did). The network verbs run, snd, cal and mon (cmd_VERB.c) take
 * every remaining word (cli_chain_rest); the file is written before they
 * start, when the chain changed it, and they work on the configuration as
 * the chain left it. The other network verbs of 2.02 (eval, shell, trace,
 * restart, ping, flood) fail with a clear message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define PROG "aemp"

/* The next argument, or NULL after "CMD: WHAT missing". */
static json_t *arg(cli_chain_t *s, const char *what)
{
    if (s->next < s->nargs) return s->args[s->next++];
    cli_err(PROG, "%s: %s missing", s->cmd, what);
    return NULL;
}

/* The next argument as a string (a JSON argument must be a string). */
static const char *str_arg(cli_chain_t *s, const char *what)
{
    json_t *v = arg(s, what);
    if (!v) return NULL;
    if (!json_is_string(v)) {
        cli_err(PROG, "%s: %s must be a string", s->cmd, what);
        return NULL;
    }
    return json_string_value(v);
}

int cli_chain_set(cli_chain_t *s, const char *key, json_t *v)
{
    if (json_object_set(s->profile, key, v)) {
        cli_err(PROG, "out of memory");
        return 1;
    }
    s->dirty = 1;
    return 0;
}

static int del_key(cli_chain_t *s, const char *key)
{
    json_object_del(s->profile, key);
    s->dirty = 1;
    return 0;
}

/* The value of "KEY" in the current profile as an array, created empty
 * when missing (Perl autovivifies it); NULL after an error. */
static json_t *list_of(cli_chain_t *s, const char *key)
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
static int set_list(cli_chain_t *s, const char *key, const char *what)
{
    json_t *v = arg(s, what);
    if (!v) return 2;
    if (!json_is_string(v)) return cli_chain_set(s, key, v);
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
    int rc = cli_chain_set(s, key, l);
    json_decref(l);
    return rc;
}

/* delbind/delseed (all equal entries) and delservice (the first one). */
static int remove_from(cli_chain_t *s, const char *key, json_t *v, int first_only)
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
static int add_to(cli_chain_t *s, const char *key, const char *what, int unique)
{
    json_t *v = arg(s, what);
    if (!v) return 2;
    if (unique && remove_from(s, key, v, 0)) return 1;
    json_t *l = list_of(s, key);
    if (!l || json_array_append(l, v)) return 1;
    s->dirty = 1;
    return 0;
}

static int del_from(cli_chain_t *s, const char *key, const char *what, int first_only)
{
    json_t *v = arg(s, what);
    return v ? remove_from(s, key, v, first_only) : 2;
}

/* ---- the subcommands ---- */

/* setnodeid, setsecret, seteval, setparent and the low-level settings:
 * the value goes into the current profile as given */
int cli_conf_set(cli_chain_t *s, const char *key)
{
    json_t *v = arg(s, "value");
    return v ? cli_chain_set(s, key, v) : 2;
}

int cli_conf_setcert(cli_chain_t *s, const char *key)
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
    int rc = cli_chain_set(s, "cert", v);
    json_decref(v);
    return rc;
}

int cli_conf_del(cli_chain_t *s, const char *key)
{
    return del_key(s, key);
}

int cli_conf_setlist(cli_chain_t *s, const char *key)
{
    return set_list(s, key, !strcmp(key, "services") ? "service specifications" : "addresses");
}

int cli_conf_addaddr(cli_chain_t *s, const char *key)
{
    return add_to(s, key, "address", 1);
}

int cli_conf_deladdr(cli_chain_t *s, const char *key)
{
    return del_from(s, key, "address", 0);
}

int cli_conf_addservice(cli_chain_t *s, const char *key)
{
    return add_to(s, key, "service specification", 0);
}

int cli_conf_delservice(cli_chain_t *s, const char *key)
{
    return del_from(s, key, "service specification", 1);
}

/* The "profile" object of the file, created when missing. */
static json_t *profiles(cli_chain_t *s)
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

int cli_conf_profile(cli_chain_t *s, const char *key)
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

int cli_conf_delprofile(cli_chain_t *s, const char *key)
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

int cli_conf_showprofile(cli_chain_t *s, const char *key)
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
int cli_conf_showconfig(cli_chain_t *s, const char *key)
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

int cli_conf_unsupported(cli_chain_t *s, const char *key)
{
    cli_err(PROG, "'%s' is not yet supported in protocol 1", s->cmd);
    return 1;
}

/* The verb of a chain's word: its row when it has a protocol-1 step;
 * setX also works as X, but eval is not seteval. */
static const cli_verb_t *find_step(const char *name)
{
    const cli_verb_t *v = cli_verb_find(name);
    if (v && v->step1) return v;
    if (strcmp(name, "eval") && strlen(name) < 64) {
        char set[80];
        snprintf(set, sizeof set, "set%s", name);
        v = cli_verb_find(set);
        if (v && v->step1) return v;
    }
    return NULL;
}

int cli_chain_rest(cli_chain_t *s, json_t *const **args)
{
    char err[AEMP_RC_ERRMAX];
    if (s->dirty && aemp_rc_save(s->path, s->rc, err, sizeof err)) {
        cli_err(PROG, "%s", err);
        return -1;
    }
    s->dirty = 0;
    *args = s->args + s->next;
    int n = s->nargs - s->next;
    s->next = s->nargs;
    return n;
}

/* The words as JSON values, as the Perl tool decodes them. */
static int decode_args(cli_chain_t *s, int argc, char **argv)
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

int cli_chain_run(int argc, char **argv)
{
    cli_chain_t s = {0};
    char path[4096], err[AEMP_RC_ERRMAX];
    int rc;
    if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help")) {
        cli_usage_p1(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if ((rc = decode_args(&s, argc, argv))) goto out;
    if (aemp_rc_path(path, sizeof path)) {
        cli_err(PROG, "no rc file: set PERL_ANYEVENT_MP_RC or HOME");
        rc = 2;
        goto out;
    }
    s.path = path;
    if (!(s.rc = aemp_rc_load(path, err, sizeof err))) {
        cli_err(PROG, "%s", err);
        rc = 1;
        goto out;
    }
    s.profile = s.rc;
    while (!rc && s.next < s.nargs) {
        json_t *w = s.args[s.next++];
        const cli_verb_t *v = json_is_string(w) ? find_step(json_string_value(w)) : NULL;
        if (!v) {
            char *shown = json_is_string(w) ? strdup(json_string_value(w)) : aemp_json_encode(w, NULL);
            cli_err(PROG, "%s: no such subcommand (see 'aemp --protocol 1 help')",
                    shown ? shown : "?");
            free(shown);
            rc = 2;
            break;
        }
        s.cmd = json_string_value(w);
        /* a network verb takes the rest, writing the file first */
        rc = v->step1(&s, v->key);
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
