/*
 * tls.h - TLS for links as a filter in memory (tls.c): OpenSSL runs on
 * memory BIOs, so the caller moves every byte itself - ciphertext from the
 * socket in, plaintext out, plaintext in, ciphertext to the socket out.
 * Plus the node's SSL_CTX, built once from a TLS-mode secret. Internal.
 */
#ifndef AEMP_TLS_H
#define AEMP_TLS_H

#include "aemp_int.h"

#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

typedef struct aemp__tls aemp__tls_t;

/* 1 when secret holds a private key PEM block followed (somewhere later)
 * by a certificate PEM block - the Perl node's test
 * /-----BEGIN RSA PRIVATE KEY-----.*-----END RSA PRIVATE KEY-----.*
 *  -----BEGIN CERTIFICATE-----.*-----END CERTIFICATE-----/s -
 * or the same with a PKCS#8 "PRIVATE KEY" block (our extension). */
int aemp__tls_secret_is_tls(const void *secret, size_t len);

/* The context for every TLS link of a node: the secret's first private
 * key and its first certificate (later ones are sent as the chain), every
 * certificate of the secret as a trusted CA, peers verified without a
 * host name check, a client certificate required, TLS 1.2 or newer, no
 * session cache, tickets or renegotiation. Returns NULL with a message
 * in err (errlen bytes) when the key or certificate cannot be read, do
 * not match, or OpenSSL fails. secret is borrowed. Free with
 * SSL_CTX_free. */
SSL_CTX *aemp__tls_ctx_new(const void *secret, size_t len, char *err, size_t errlen);

/* A filter for one connection on ctx (which it references), as the TLS
 * server when server is non-zero, else the client. NULL on ENOMEM. */
aemp__tls_t *aemp__tls_new(SSL_CTX *ctx, int server);
/* Accepts NULL. */
void aemp__tls_free(aemp__tls_t *t);

/* Hands n bytes of ciphertext from the peer to the filter (copied; all
 * of them are taken). Returns 0 or AEMP_ENOMEM. */
int aemp__tls_feed(aemp__tls_t *t, const void *p, size_t n);

/* Drives the TLS handshake with what has been fed. Returns 1 once it is
 * complete (then at once on every later call), 0 when more input is
 * needed, or AEMP_ETLS when it failed (see aemp__tls_error). Either way
 * there may be ciphertext to take (a flight, or the alert that tells the
 * peer why). */
int aemp__tls_handshake(aemp__tls_t *t);
int aemp__tls_established(const aemp__tls_t *t);

/* Decrypts into buf (cap bytes) as much plaintext as the fed ciphertext
 * holds. Returns the byte count, 0 when there is none yet, AEMP_ECLOSED
 * when the peer closed the TLS session (close_notify), or AEMP_ETLS.
 * Plaintext that precedes an error is returned first; the error comes
 * with the next call. Errors are sticky. */
ssize_t aemp__tls_read(aemp__tls_t *t, void *buf, size_t cap);

/* Encrypts n bytes of plaintext (borrowed) into records of up to 16 KiB,
 * with as few SSL_write calls as the size allows. Only after the
 * handshake. Returns 0, AEMP_ESTATE (handshake not complete) or
 * AEMP_ETLS. */
int aemp__tls_write(aemp__tls_t *t, const void *p, size_t n);

/* Queues a close_notify alert (the orderly end of the session) as
 * ciphertext to take. Returns 0, or AEMP_ESTATE before the handshake
 * completed or after a failure. */
int aemp__tls_shutdown(aemp__tls_t *t);

/* Bytes of ciphertext waiting to be sent. */
size_t aemp__tls_pending(const aemp__tls_t *t);
/* Appends every waiting byte of ciphertext to dst. Returns 0 or
 * AEMP_ENOMEM (nothing taken). */
int aemp__tls_take(aemp__tls_t *t, aemp__buf_t *dst);

/* Why it failed: OpenSSL's text of the first queued error, e.g.
 * "error:0A000086:SSL routines::certificate verify failed (self-signed
 * certificate)" (the verify result added in parentheses); "" when it has
 * not failed. Valid until aemp__tls_free. */
const char *aemp__tls_error(const aemp__tls_t *t);

/* "VERSION CIPHER" of the established session, e.g. "TLSv1.3
 * TLS_AES_256_GCM_SHA384"; NULL before the handshake completed. */
const char *aemp__tls_info(const aemp__tls_t *t);

#endif
