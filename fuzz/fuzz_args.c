/*
 * fuzz_args.c - fuzz target for the aemp tool's message arguments
 * (tools/args.c, cli_args_to_json: the words after a port id in
 * `aemp snd`). The first input byte sets the size of the error buffer
 * (1..256 bytes, allocated exactly, so a write past it shows); the rest
 * is split at NUL bytes into the words. The result must be a JSON array
 * made as documented (a lone first word starting with '[' is the whole
 * message; JSON-looking words are decoded; other words are strings), or
 * NULL with a one-line message that fits the buffer.
 */
#include "fuzz.h"

#include "aemp.h"
#include "../tools/args.c"

#define ARGS_MAX 64

FUZZ_TARGET(args)
{
    if (size < 1) return 0;
    size_t errlen = 1 + data[0];
    char *copy = fuzz_strndup(data + 1, size - 1);
    char *argv[ARGS_MAX + 1];
    int argc = 0;
    /* words end at NUL bytes; a trailing NUL does not start a new word */
    for (size_t i = 0; i < size - 1 && argc < ARGS_MAX;) {
        argv[argc++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    argv[argc] = NULL;

    char *err = malloc(errlen);
    if (!err) abort();
    memset(err, 'x', errlen);
    json_t *v = cli_args_to_json(argc, argv, err, errlen);
    if (!v) {
        FUZZ_CHECK(memchr(err, 0, errlen) != NULL);
        FUZZ_CHECK(errlen == 1 || err[0] != 0);
        /* one line of printable text: args.c shows control bytes of
         * the words it quotes as \xNN */
        for (const char *c = err; *c; c++)
            FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
    } else {
        FUZZ_CHECK(json_is_array(v));
        if (argc > 0 && argv[0][0] == '[') {
            FUZZ_CHECK(argc == 1);
            json_t *w = aemp_json_decode(argv[0], strlen(argv[0]), 0, NULL, 0);
            FUZZ_CHECK(w && fuzz_json_same(v, w));
            json_decref(w);
        } else {
            FUZZ_CHECK(json_array_size(v) == (size_t)argc);
            for (int i = 0; i < argc; i++) {
                json_t *e = json_array_get(v, (size_t)i);
                char c = argv[i][0];
                if (c == '[' || c == '{' || c == '"') {
                    json_t *w = aemp_json_decode(argv[i], strlen(argv[i]), 0, NULL, 0);
                    FUZZ_CHECK(w && fuzz_json_same(e, w));
                    json_decref(w);
                } else {
                    FUZZ_CHECK(json_is_string(e) && !strcmp(json_string_value(e), argv[i]));
                }
            }
        }
        /* what the tool sends must be writable */
        char *enc = aemp_json_encode(v, NULL);
        FUZZ_CHECK(enc != NULL);
        free(enc);
        json_decref(v);
    }
    free(err);
    free(copy);
    return 0;
}
