/*
 * cmd_gencert.c - `aemp gencert [--force] [FILE]`: writes a secret file
 * that puts nodes into TLS mode: an RSA private key as PKCS#1 PEM
 * ("BEGIN RSA PRIVATE KEY", the form the Perl node looks for), followed
 * by a self-signed CA certificate for it (CN=aemp node, CA:TRUE, valid
 * until the end of 2099). Nodes sharing the file verify each other
 * against that certificate; the whole file is also the shared secret of
 * the HMAC authentication.
 *
 * Protocol 1, a step of the chain as in 2.02: the same key and
 * certificate become the current profile's "cert".
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli.h"

#define PROG "aemp gencert"
#define RSA_BITS 2048
#define COMMON_NAME "aemp node"
#define NOT_AFTER "20991231235959Z"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aemp gencert [--force] [FILE]\n\n"
            "Writes a TLS-mode secret to FILE, default $HOME/.aemp-secret, readable by\n"
            "its owner only: a new %d-bit RSA private key (PKCS#1 PEM) followed by a\n"
            "self-signed CA certificate for it (CN=%s, valid until 2099). Nodes with\n"
            "the same file talk TLS to each other. Copy the file to every node.\n\n"
            "  --force   replace an existing FILE\n"
            "  --help    this text\n",
            RSA_BITS, COMMON_NAME);
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (!ext) return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* The certificate for key: self-signed, a CA (the peers use it as their
 * trust anchor), a random serial. */
static X509 *make_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    int ok = x && serial && X509_set_version(x, 2) &&
             BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) &&
             /* an hour back: a peer whose clock is a bit behind still accepts it */
             X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
             ASN1_TIME_set_string_X509(X509_getm_notAfter(x), NOT_AFTER) &&
             X509_set_pubkey(x, key) &&
             X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                        (const unsigned char *)COMMON_NAME, -1, -1, 0) &&
             X509_set_issuer_name(x, X509_get_subject_name(x)) &&
             !add_ext(x, NID_basic_constraints, "critical,CA:TRUE") &&
             !add_ext(x, NID_subject_key_identifier, "hash") &&
             !add_ext(x, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign") &&
             X509_sign(x, key, EVP_sha256()) > 0;
    BN_free(serial);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

char *cli_gen_key_cert(const char *prog, size_t *len)
{
    char *out = NULL;
    X509 *cert = NULL;
    BIO *bio = NULL;
    EVP_PKEY *key = EVP_RSA_gen(RSA_BITS);
    if (!key || !(cert = make_cert(key))) {
        cli_err(prog, "cannot make the key and certificate");
        goto out;
    }
    bio = BIO_new(BIO_s_mem());
    /* "traditional" = PKCS#1 (BEGIN RSA PRIVATE KEY), not PKCS#8 */
    char *pem;
    long n;
    if (!bio || !PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509(bio, cert) || (n = BIO_get_mem_data(bio, &pem)) <= 0 ||
        !(out = malloc((size_t)n + 1))) {
        cli_err(prog, "cannot encode the key and certificate");
        goto out;
    }
    memcpy(out, pem, (size_t)n);
    out[n] = 0;
    *len = (size_t)n;
    OPENSSL_cleanse(pem, (size_t)n);
out:
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(key);
    return out;
}

int cmd_gencert(int argc, char **argv)
{
    int force = 0, st;
    char path[4096];
    if ((st = cli_force_and_file(PROG, argc, argv, usage, &force, path, sizeof path)) >= 0) return st;

    size_t len;
    char *pem = cli_gen_key_cert(PROG, &len);
    if (!pem) return 1;
    int rc = cli_write_private_file(PROG, path, pem, len, force);
    OPENSSL_cleanse(pem, len);
    free(pem);
    if (rc) return 1;
    printf("wrote a new TLS secret (key and certificate) to %s\n", path);
    return 0;
}

int cmd_gencert_p1(cli_chain_t *s, const char *key)
{
    size_t len;
    char *pem = cli_gen_key_cert("aemp", &len);
    if (!pem) return 1;
    json_t *v = json_stringn(pem, len);
    OPENSSL_cleanse(pem, len);
    free(pem);
    int rc = v ? cli_chain_set(s, key, v) : (cli_err("aemp", "out of memory"), 1);
    json_decref(v);
    return rc;
}
