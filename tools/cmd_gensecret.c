/*
 * cmd_gensecret.c - `aemp gensecret [--force] [FILE]`: writes a fresh
 * shared secret, 32 bytes from the system's CSPRNG as 64 hex digits and a
 * newline, to FILE (default $HOME/.aemp-secret) with mode 0600. Nodes use
 * the whole file as the secret, newline included; every node of a network
 * needs the same file.
 *
 * Protocol 1, a step of the chain as in 2.02: the current profile's
 * "secret" becomes AEMP_P1_GENSECRET_LEN random letters and digits.
 */
#include <getopt.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

#define PROG "aemp gensecret"
#define SECRET_BYTES 32

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aemp gensecret [--force] [FILE]\n\n"
            "Writes a new random shared secret (32 bytes as 64 hex digits) to FILE,\n"
            "default $HOME/.aemp-secret, readable by its owner only. Copy the file\n"
            "to every node of the network.\n\n"
            "  --force   replace an existing FILE\n"
            "  --help    this text\n");
}

int cmd_gensecret(int argc, char **argv)
{
    int force = 0, st;
    char path[4096];
    if ((st = cli_force_and_file(PROG, argc, argv, usage, &force, path, sizeof path)) >= 0) return st;

    unsigned char raw[SECRET_BYTES];
    char text[2 * SECRET_BYTES + 2];
    static const char hex[] = "0123456789abcdef";
    if (aemp_random_bytes(raw, sizeof raw)) {
        cli_err(PROG, "no random bytes from the system");
        return 1;
    }
    for (size_t i = 0; i < SECRET_BYTES; i++) {
        text[2 * i] = hex[raw[i] >> 4];
        text[2 * i + 1] = hex[raw[i] & 15];
    }
    text[2 * SECRET_BYTES] = '\n';
    text[2 * SECRET_BYTES + 1] = 0;
    int rc = cli_write_private_file(PROG, path, text, 2 * SECRET_BYTES + 1, force);
    explicit_bzero(raw, sizeof raw);
    explicit_bzero(text, sizeof text);
    if (rc) return 1;
    printf("wrote a new secret to %s\n", path);
    return 0;
}

int cmd_gensecret_p1(cli_chain_t *s, const char *key)
{
    char secret[AEMP_P1_GENSECRET_LEN + 1];
    if (aemp_random_alnum(secret, AEMP_P1_GENSECRET_LEN, aemp_random_source, NULL)) {
        cli_err("aemp", "gensecret: no random bytes from the system");
        return 1;
    }
    json_t *v = json_string(secret);
    OPENSSL_cleanse(secret, sizeof secret);
    int rc = v ? cli_chain_set(s, key, v) : (cli_err("aemp", "out of memory"), 1);
    json_decref(v);
    return rc;
}
