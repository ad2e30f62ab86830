/*
 * args.c - turns the words after a port id into message elements, with
 * the convention of the Perl aemp utility so that the same command line
 * means the same message with either tool:
 *   aemp snd PORT '[1, "two", {"x": null}]'   the array is the message
 *   aemp snd PORT tag 42 '"42"' '[1,2]'       ["tag","42","42",[1,2]]
 * A word that looks like JSON ('[', '{' or '"' first) is parsed as JSON;
 * every other word, numbers included, is a string. JSON is decoded with
 * the library's strict decoder, so what is accepted here is exactly what
 * a node accepts on the wire.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* An argument as an error message shows it: control bytes and DEL as
 * \xNN (the message stays one line, and a terminal gets no escape
 * sequence), cut with "..." when it does not fit n (>= 8) bytes. */
static void quote_arg(const char *arg, char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t total = 0;
    for (const unsigned char *p = (const unsigned char *)arg; *p; p++)
        total += *p < 0x20 || *p == 0x7f ? 4 : 1;
    size_t max = total < n ? total : n - 4, o = 0;
    for (const unsigned char *p = (const unsigned char *)arg; *p; p++) {
        int ctl = *p < 0x20 || *p == 0x7f;
        if (o + (ctl ? 4 : 1) > max) break;
        if (ctl) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            out[o++] = (char)*p;
        }
    }
    if (total >= n) memcpy(out + o, "...", 3), o += 3;
    out[o] = 0;
}

static json_t *decode_arg(const char *arg, char *err, size_t errlen)
{
    char why[AEMP_JSON_ERRMAX], shown[40];
    json_t *v = aemp_json_decode(arg, strlen(arg), 0, why, sizeof why);
    if (!v) {
        quote_arg(arg, shown, sizeof shown);
        snprintf(err, errlen, "argument '%s' is not valid JSON: %s", shown, why);
    }
    return v;
}

json_t *cli_args_to_json(int argc, char *const *argv, char *err, size_t errlen)
{
    if (argc > 0 && argv[0][0] == '[') {
        json_t *v = decode_arg(argv[0], err, errlen);
        if (!v) return NULL;
        if (argc > 1) {
            /* ambiguous: inside or after the array? make the user say */
            char shown[40];
            quote_arg(argv[1], shown, sizeof shown);
            snprintf(err, errlen,
                     "a first argument starting with '[' is the whole message; "
                     "put '%s' inside it",
                     shown);
            json_decref(v);
            return NULL;
        }
        return v;
    }
    json_t *msg = json_array();
    if (!msg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        json_t *v;
        if (a[0] == '[' || a[0] == '{' || a[0] == '"') {
            v = decode_arg(a, err, errlen);
        } else {
            v = json_string(a);
            if (!v) {
                char shown[40];
                quote_arg(a, shown, sizeof shown);
                snprintf(err, errlen, "argument '%s' is not valid UTF-8", shown);
            }
        }
        if (!v || json_array_append_new(msg, v)) {
            if (v) snprintf(err, errlen, "out of memory");
            json_decref(msg);
            return NULL;
        }
    }
    return msg;
}
