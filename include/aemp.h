/*
 * aemp.h - the public interface of libaemp, a C implementation of
 * AnyEvent::MP (AEMP) nodes in both of its wire dialects: protocol 1
 * (AnyEvent::MP 2.x: node ids, seeds and global nodes, the global
 * database, SHA3 authentication - what 2.x networks run) and protocol 0
 * (AnyEvent::MP 0.4: noderefs, slaves, HMAC-MD6). A node speaks the one
 * its configuration names (aemp_node_config_t.protocol).
 *
 * This header is the specification of the library. Every declaration says
 * what it does, what it returns, how it fails and who owns what. The
 * vocabulary for ownership:
 *   borrowed  - the pointer is only read during the call (or, for returned
 *               pointers, valid until the event named in the sentence);
 *   copied    - the library keeps its own copy, the caller keeps theirs;
 *   takes     - the library takes ownership (on success / always, as said);
 *   steals    - for json_t: the reference is taken over (always, even on
 *               failure, unless the sentence says otherwise);
 *   increments- for json_t: the library takes its own reference.
 *
 * Layers (the folders of src/):
 *   1. sans-I/O core (src/core): MD6, HMAC-MD6, SHA3, the handshake
 *      engine with each dialect's profile, the framings and codecs (JSON,
 *      Storable). Pure code fed with bytes: no sockets, no clocks, no
 *      global state. Deterministic (nonces are injected).
 *   2. drivers (src/node): the libev node (links, peers, ports, monitors,
 *      the node port), which reach a dialect only through its descriptor.
 *   3. dialects (src/p0, src/p1): how each protocol names and finds
 *      nodes and which node requests it serves; protocol 1's global
 *      database client and global node.
 *
 * Threading: libaemp is single-threaded. Objects created on one loop must
 * only be used from the thread running that loop. Distinct nodes on
 * distinct loops in distinct threads are independent. The core functions
 * are reentrant (they only touch the objects passed to them).
 */
#ifndef AEMP_H
#define AEMP_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version is defined here and nowhere else. */
#define AEMP_VERSION_MAJOR 0
#define AEMP_VERSION_MINOR 1
#define AEMP_VERSION_PATCH 0
#define AEMP_VERSION "0.1.0"
/* The protocol versions a node can speak (greeting field 2; the
 * configuration's `protocol` picks one). */
#define AEMP_PROTOCOL_MIN 0
#define AEMP_PROTOCOL_MAX 1

#if defined(AEMP_BUILDING) && defined(__GNUC__)
#define AEMP_API __attribute__((visibility("default")))
#else
#define AEMP_API
#endif

/* ===================================================================== */
/* == BEGIN errors ==                                                     */
/*
 * Every call that can fail returns 0 (AEMP_OK) or one of these negative
 * codes. Objects that fail with a protocol message (the handshake engine,
 * links) also keep the message text; the code says the class of error.
 */
#define AEMP_ERRNO_MAP(X)                                                   \
    X(EINVAL, -1, "invalid argument")                                       \
    X(ENOMEM, -2, "out of memory")                                          \
    X(EPROTO, -3, "protocol error")                                         \
    X(EAUTH, -4, "authentication failure")                                  \
    X(ELIMIT, -5, "limit exceeded")                                         \
    X(ESTATE, -6, "operation not allowed in this state")                    \
    X(EIO, -7, "input/output error")                                        \
    X(ETIMEDOUT, -8, "timed out")                                           \
    X(ENOENT, -9, "no such port, node or file")                             \
    X(ECLOSED, -10, "link closed")                                          \
    X(ERESOLVE, -11, "cannot resolve address")                              \
    X(ETLS, -12, "TLS error")                                               \
    X(EBADMSG, -13, "malformed message")

typedef enum aemp_err {
    AEMP_OK = 0,
#define AEMP__ERR_ENUM(name, code, text) AEMP_##name = code,
    AEMP_ERRNO_MAP(AEMP__ERR_ENUM)
#undef AEMP__ERR_ENUM
} aemp_err_t;

/* The library's version at run time, "MAJOR.MINOR.PATCH" (static; equal
 * to AEMP_VERSION of the header the library was built with, which may
 * differ from the header a program was compiled with). */
AEMP_API const char *aemp_version(void);
/* The same as MAJOR * 10000 + MINOR * 100 + PATCH. */
AEMP_API int aemp_version_number(void);

/* A static, never-NULL description of an error code ("unknown error" for
 * codes not in the list). */
AEMP_API const char *aemp_strerror(int err);
/* The symbolic name ("AEMP_EINVAL"), or "AEMP_UNKNOWN". */
AEMP_API const char *aemp_err_name(int err);
/* == END errors == */

/* ===================================================================== */
/* == BEGIN md6 ==                                                        */
/*
 * MD6 (Rivest et al., 2008), byte-granular input.
 *   d   digest size in bits, 1..512
 *   key optional, 0..64 bytes
 *   L   mode parameter, 0 (sequential) .. 64 (fully hierarchical, default)
 *   r   rounds; 0 selects the default: 40 + d/4, at least 80 with a key
 * The digest is ceil(d/8) bytes: when d is not a multiple of 8 it is the
 * last d bits of the final chaining value, left-aligned, low bits zero
 * (what the reference code and Perl's Digest::MD6 return).
 */
#define AEMP_MD6_MAX_BYTES 64
#define AEMP_MD6_DEFAULT_L 64

/* The context is a plain struct so it can live on the stack; its content
 * is private. No heap memory is used: nothing to free. */
typedef struct aemp_md6_ctx {
    uint64_t priv_[2200];
} aemp_md6_ctx_t;

/* Starts a standard MD6-d hash (no key, L=64, default rounds).
 * Returns 0, or AEMP_EINVAL for a NULL ctx or d outside 1..512. */
AEMP_API int aemp_md6_init(aemp_md6_ctx_t *ctx, int d);

/* Starts an MD6 hash with every parameter. key is copied (may be NULL when
 * keylen is 0). r == 0 selects the default rounds. Returns 0, or
 * AEMP_EINVAL for d outside 1..512, keylen > 64, L outside 0..64 or
 * r outside 0..255. */
AEMP_API int aemp_md6_full_init(aemp_md6_ctx_t *ctx, int d, const void *key,
                                size_t keylen, int L, int r);

/* Adds len bytes (borrowed). Any split of the input gives the same
 * digest. */
AEMP_API void aemp_md6_update(aemp_md6_ctx_t *ctx, const void *data,
                              size_t len);

/* Writes the ceil(d/8)-byte digest to out. The context must be
 * initialised again before reuse (until then, update ignores its input
 * and final writes zeros). */
AEMP_API void aemp_md6_final(aemp_md6_ctx_t *ctx, unsigned char *out);

/* One-shot standard MD6-d of data. Returns 0 or AEMP_EINVAL. */
AEMP_API int aemp_md6(int d, const void *data, size_t len,
                      unsigned char *out);

/* One-shot MD6 with every parameter (see aemp_md6_full_init). */
AEMP_API int aemp_md6_full(int d, const void *key, size_t keylen, int L,
                           int r, const void *data, size_t len,
                           unsigned char *out);
/* == END md6 == */

/* ===================================================================== */
/* == BEGIN hmac ==                                                       */
/*
 * HMAC over standard MD6 (no MD6 key, L=64, default rounds), with the
 * semantics of Perl's Digest::HMAC_MD6:
 *   K' = key if keylen <= block_size, else MD6-hash_bits(key);
 *   K' zero-padded to block_size (a hashed K' longer than block_size,
 *   possible when block_size < hash_bits/8, is kept whole, as Perl does:
 *   only its first block_size bytes are XORed with the pad bytes);
 *   out = H((K' ^ 0x5c..) || H((K' ^ 0x36..) || data)), H = MD6-hash_bits.
 * NOTE the Perl function is hmac_md6_hex(DATA, KEY, ...): data first. This
 * C call takes the key first, like every other HMAC API.
 * block_size 1..512 bytes (AEMP uses 64), hash_bits 1..512 (AEMP: 256).
 * Writes ceil(hash_bits/8) bytes to out. Returns 0 or AEMP_EINVAL.
 */
AEMP_API int aemp_hmac_md6(const void *key, size_t keylen, const void *data,
                           size_t datalen, int block_size, int hash_bits,
                           unsigned char *out);
/* == END hmac == */

/* ===================================================================== */
/* == BEGIN handshake ==                                                  */
/*
 * The token a side sends in an `hmac_md6_64_256` auth line: the lowercase
 * hex HMAC-MD6 (block 64, 256 bits) that the side whose greeting lines are
 * l1/l2 sends to the side whose greeting lines are r1/r2 (lines without
 * their line end). As the Perl node computes it: the HMAC key is the text
 * "l1\nl2\nr1\nr2\n", the HMAC message the 32-byte MD6-256 of the secret.
 * All arguments are borrowed. Returns 0, or -1 on a NULL argument (secret
 * may be NULL when secret_len is 0).
 */
AEMP_API int aemp_auth_token(const void *secret, size_t secret_len,
                             const char *l1, const char *l2, const char *r1,
                             const char *r2, char out_hex[65]);

/*
 * Protocol 1 (AnyEvent::MP 2.02): the token of an `hmac_sha3_512` auth
 * line, the lowercase hex (128 digits) HMAC-SHA3-512 (RFC 2104, block 72
 * bytes; a key over 72 bytes is replaced by its SHA3-512) keyed with the
 * secret's bytes, over the text "l1\nl2\nr1\nr2\n": the token the side
 * whose greeting lines are l1/l2 sends to the side whose lines are r1/r2
 * (swap the pairs for the token it expects back). Lines without their
 * line end. All arguments are borrowed. Returns 0, AEMP_EINVAL on a NULL
 * argument (secret may be NULL when secret_len is 0), or AEMP_ENOMEM /
 * AEMP_EIO when OpenSSL's SHA3-512 fails.
 */
AEMP_API int aemp_auth_token_sha3(const void *secret, size_t secret_len,
                                  const char *l1, const char *l2,
                                  const char *r1, const char *r2,
                                  char out_hex[129]);

/*
 * Protocol 1: the token of a `tls_sha3_512` auth line (sent inside TLS),
 * the lowercase hex SHA3-512 of "l1\nl2\nr1\nr2\n", no key, the sender's
 * own lines first (as the 2.02 code does it; its documentation says the
 * peer's first). Arguments and returns as aemp_auth_token_sha3.
 */
AEMP_API int aemp_auth_token_tls_sha3(const char *l1, const char *l2,
                                      const char *r1, const char *r2,
                                      char out_hex[129]);

/*
 * The handshake engine: one connection's greeting, optional TLS switch,
 * and authentication, as a state machine fed with bytes. It speaks
 * protocol 0 (AnyEvent::MP 0.4, PROTOCOL.md) or protocol 1 (AnyEvent::MP
 * 2.02, PROTOCOL-1.md section 4), chosen per engine by cfg.protocol; the
 * calls, states and contracts are the same for both, differences are
 * noted where they exist.
 *
 * Use:
 *   hs = aemp_hs_new(&cfg, &err);
 *   loop:
 *     while ((p = aemp_hs_out(hs, &n)) != NULL) { write p[0..n); aemp_hs_out_ack(hs, n); }
 *     st = aemp_hs_state(hs);
 *     if (st & AEMP_HS_FAILED) -> aemp_hs_error(hs), close;
 *     if (st & (AEMP_HS_TLS_CLIENT|AEMP_HS_TLS_SERVER)) -> run TLS, then
 *         aemp_hs_tls_up(hs); from then on feed the TLS plaintext and
 *         send the engine's output inside TLS;
 *     if (st & AEMP_HS_DONE) -> data phase; leftover bytes stay with you;
 *     used = aemp_hs_feed(hs, buf, len);
 * aemp_hs_feed never consumes bytes past a phase boundary: after the
 * peer's nonce line when TLS is to start (the rest are TLS records), and
 * after the peer's auth line (the rest are data-phase bytes). Bytes it
 * did consume are either parsed or held in its line buffer.
 */
typedef struct aemp_hs aemp_hs_t;

/* Size of the injected nonce, in bytes: protocol 0 sends 33 bytes as 44
 * base64 characters, protocol 1 66 bytes as 88 (neither needs padding).
 * AEMP_HS_NONCE_MAX is the larger, for buffers that serve both. */
#define AEMP_NONCE_BYTES 33
#define AEMP_NONCE1_BYTES 66
#define AEMP_HS_NONCE_MAX 66
/* Longest line accepted before the data phase, delimiter included. A
 * longer line fails with AEMP_ELIMIT, "handshake line too long (over 4096
 * bytes)". Protocol 1: 2.02 limits the *buffered* bytes without a line end
 * to 4096 and fails with "No space left on device" (its read buffer
 * limit, ENOSPC) when more arrive; a longer line that happens to arrive
 * whole with its LF in one read passes there, never here. */
#define AEMP_HS_MAX_LINE 4096

/* Protocol 1: the text 2.02 closes a link with when a node greets that
 * already has a link up (PROTOCOL-1.md section 4.3, check 4): the
 * driver's decision, made when GREETED shows (see below) with
 * aemp_hs_fail(hs, AEMP_EPROTO, text); %s is aemp_hs_remote_id(). */
#define AEMP_HS_ALREADY_CONNECTED_FMT "%s already connected, not connecting again."

typedef struct aemp_hs_config {
    /* The dialect: 0 (default) protocol 0, 1 protocol 1. Anything else
     * makes aemp_hs_new fail with AEMP_EINVAL. */
    int protocol;
    /* Our noderef (protocol 0) or node id (protocol 1), copied; required.
     * Protocol 1 refuses a peer that greets with this same id ("I refuse
     * to talk to myself"). */
    const char *noderef;
    /* Shared secret bytes, copied. Protocol 0: NULL with secret_len 0 is
     * the empty secret. Protocol 1: NULL means no secret is configured
     * (a TLS-only node: without TLS the engine fails with "unable to
     * handshake TLS and no shared secret configured", and a peer's
     * hmac_sha3_512 or cleartext line never counts); a non-NULL pointer
     * with secret_len 0 is the empty secret. */
    const void *secret;
    size_t secret_len;
    /* Optional: MD6-256 of the secret (32 bytes, copied), what
     * aemp_md6(256, secret, secret_len, out) gives. Every
     * hmac_md6_64_256 token of a node uses it, so a node computes it
     * once and hands it to each engine. NULL: the engine computes it
     * (once) when it needs it. Protocol 1 does not use it. */
    const unsigned char *secret_md6;
    /* Auth methods we accept, comma-separated, in greeting order.
     * NULL: "hmac_md6_64_256,cleartext" (protocol 1: "tls_sha3_512,
     * hmac_sha3_512,tls_anon,cleartext", what 2.02 announces).
     * Protocol 0: the peer's auth line must use one of them (or "tls",
     * valid only after aemp_hs_tls_up). Protocol 1, as 2.02: the list is
     * only announced; the peer may use any of the four methods (tls_*
     * only inside TLS). */
    const char *auths_accept;
    /* Auth methods we are willing to send (protocol 1: 2.02's auth_offer).
     * NULL: "hmac_md6_64_256" (protocol 1: "tls_sha3_512,hmac_sha3_512").
     * Protocol 0 takes hmac_md6_64_256 and cleartext; add "cleartext"
     * only when you really want the secret on the wire. Protocol 1 takes
     * the four methods above; the first of the PEER's list found here is
     * chosen (tls_* skipped without TLS), and it must then be tls_sha3_512
     * or tls_anon inside TLS, hmac_sha3_512 without, else the engine
     * fails with "METHOD: fatal, selected unsupported snd auth method"
     * (so cleartext, accepted by 2.02 in an offer, only ever fails). */
    const char *auths_send;
    /* Framings we accept, in order of preference. NULL: "json". The
     * peer's auth line must name one of them (protocol 1 failure:
     * "FRAMING: unusable remote framing"). */
    const char *framings;
    /* Framings the caller can write, comma-separated. NULL: "json", the
     * one framing implemented for writing. We send the first of the
     * PEER's list found here ("LIST: no common framing method supported"
     * when there is none); aemp_hs_send_framing() says which. */
    const char *framings_send;
    /* Our timeout in seconds, announced as timeout=N (0: key omitted).
     * Protocol 1 has no such key: ignored. */
    unsigned timeout;
    /* provider= value. NULL: "aemp-C-" AEMP_VERSION. */
    const char *provider;
    /* peeraddr= value ("host:port" of the other end). NULL: key omitted. */
    const char *peeraddr;
    /* Non-zero: TLS is configured on our side; announce tls=1.0. */
    int tls;
    /* The KEY=VALUE part of greeting line 1 exactly as given (without the
     * leading ';'), replacing the one built from provider/peeraddr/
     * timeout/tls. For replaying recorded sessions. NULL: build it:
     * protocol 0 writes provider, peeraddr, timeout, tls; protocol 1
     * provider, peeraddr, mproto=1, gproto=1, tls (2.02 writes the same
     * pairs in random order). */
    const char *kv_override;
    /* The nonce, copied: aemp_hs_nonce_bytes(protocol) bytes
     * (AEMP_NONCE_BYTES or AEMP_NONCE1_BYTES). Required: pass bytes from
     * a CSPRNG (aemp_random_bytes) in production. */
    const unsigned char *nonce;
} aemp_hs_config_t;

/* The nonce size of a protocol (33 for 0, 66 for 1), 0 for an unknown
 * protocol. */
AEMP_API size_t aemp_hs_nonce_bytes(int protocol);

/* State flags, polled with aemp_hs_state(). FAILED excludes the others
 * except SEND: whole lines queued before the failure (e.g. our auth line)
 * may still be written before closing, so the peer can log the real
 * reason, as Perl nodes do; nothing new is queued after a failure.
 * TLS_CLIENT/TLS_SERVER are cleared by aemp_hs_tls_up.
 *
 * GREETED: protocol 0: both greeting lines of the peer were accepted
 * (set in the feed that also queues our auth line). Protocol 1: the
 * peer's line 1 was accepted (checks 1-3 of PROTOCOL-1.md 4.3) and
 * aemp_hs_remote_id() is known; that feed call returns right after line
 * 1, before anything else is read or queued, so the driver can refuse
 * the node there (AEMP_HS_ALREADY_CONNECTED_FMT with aemp_hs_fail) with
 * nothing but our greeting on the wire, as 2.02 does. */
#define AEMP_HS_SEND       0x01u /* output is pending (aemp_hs_out) */
#define AEMP_HS_GREETED    0x02u /* the peer's greeting was accepted */
#define AEMP_HS_TLS_CLIENT 0x04u /* start TLS as client, then tls_up */
#define AEMP_HS_TLS_SERVER 0x08u /* start TLS as server, then tls_up */
#define AEMP_HS_DONE       0x10u /* authenticated: data phase */
#define AEMP_HS_FAILED     0x20u /* failed: see aemp_hs_error */

/* Creates an engine; our greeting is queued as output at once. cfg and
 * everything it points to are copied. Returns NULL and sets *err (when
 * err is not NULL) to AEMP_EINVAL (an unknown protocol, missing noderef
 * or nonce, a field with ';' or a line end, an auths_send without any
 * method or with one the protocol does not know (see auths_send), an
 * empty framings_send, a greeting line 1 longer than
 * AEMP_HS_MAX_LINE - 1) or AEMP_ENOMEM. */
AEMP_API aemp_hs_t *aemp_hs_new(const aemp_hs_config_t *cfg, int *err);
/* Frees the engine. Accepts NULL. */
AEMP_API void aemp_hs_free(aemp_hs_t *hs);

/* The engine's state: an OR of the AEMP_HS_* flags above. Cheap; poll it
 * after every feed and every out_ack. */
AEMP_API unsigned aemp_hs_state(const aemp_hs_t *hs);

/* Feeds received bytes (borrowed). Returns how many were consumed (see
 * above; protocol 1 also stops right after the peer's line 1, when
 * GREETED appears: feed the rest again). After a failure, or while
 * waiting for tls_up, returns 0; the call that fails counts the bytes up
 * to and including the offending one (the bad line's LF, or the byte
 * that made a line too long). Failure codes: AEMP_EPROTO (greeting,
 * framing, protocol 1's "I refuse to talk to myself"), AEMP_EAUTH (echo,
 * auth method, token, protocol 1's "unable to handshake TLS and no
 * shared secret configured"), AEMP_ELIMIT (line too long), AEMP_ENOMEM,
 * AEMP_EIO (OpenSSL could not compute SHA3-512). Protocol 1 texts are
 * 2.02's verbatim: "unparsable greeting, expected 'aemp', got 'X'",
 * "version mismatch (we: 1, they: V)", "I refuse to talk to myself",
 * "authentication error, echo attack?", "AUTHS: no common auth type
 * supported", "FRAMINGS: no common framing method supported", "METHOD:
 * fatal, selected unsupported snd auth method", "unable to handshake TLS
 * and no shared secret configured", "METHOD: fatal, selected unsupported
 * rcv auth method", "authentication failure/shared secret mismatch",
 * "FRAMING: unusable remote framing". */
AEMP_API size_t aemp_hs_feed(aemp_hs_t *hs, const void *buf, size_t len);

/* Peeks at pending output; NULL (and *len = 0) when there is none. The
 * pointer is valid until the next call on hs. */
AEMP_API const void *aemp_hs_out(aemp_hs_t *hs, size_t *len);
/* Marks n bytes of the pending output as written. */
AEMP_API void aemp_hs_out_ack(aemp_hs_t *hs, size_t n);

/* Reports that TLS is established (after TLS_CLIENT/TLS_SERVER): the
 * engine queues its auth line, to be sent inside TLS: `tls;;FRAMING`
 * (protocol 0) or the method chosen with its token, normally
 * `tls_sha3_512;TOKEN;FRAMING` (protocol 1). Returns 0, AEMP_ESTATE when
 * not waiting for TLS, or the code the engine failed with (AEMP_ENOMEM,
 * AEMP_EIO). */
AEMP_API int aemp_hs_tls_up(aemp_hs_t *hs);

/* Fails the engine from outside (e.g. the TLS handshake failed) with the
 * given message (copied; NULL: aemp_strerror(code)); a code >= 0 becomes
 * AEMP_EPROTO. No effect once failed or done. */
AEMP_API void aemp_hs_fail(aemp_hs_t *hs, int code, const char *message);

/* The first error: a code (AEMP_OK if none) and the message (protocol
 * text verbatim, e.g. "authentication failure/shared secret mismatch";
 * "" if none). Text of the peer quoted in a message (e.g. an auth type
 * list) is made safe for a log line: control bytes and DEL appear as
 * \xNN (other bytes as they are), and peer text that holds the secret
 * (or its hex) is never quoted. The string is valid until aemp_hs_free. */
AEMP_API int aemp_hs_error_code(const aemp_hs_t *hs);
AEMP_API const char *aemp_hs_error(const aemp_hs_t *hs);

/* The protocol of the engine (0 or 1); AEMP_EINVAL for NULL. */
AEMP_API int aemp_hs_protocol(const aemp_hs_t *hs);

/* Results; each string is valid until aemp_hs_free, NULL when not yet
 * known. */
AEMP_API const char *aemp_hs_remote_noderef(const aemp_hs_t *hs);
/* The same: field 3 of the peer's line 1, the node id in protocol 1
 * ("" when the field is empty: protocol 0 only, protocol 1 refuses an
 * empty id, see AEMP_NODEID_MAX). Known once GREETED shows. */
AEMP_API const char *aemp_hs_remote_id(const aemp_hs_t *hs);
/* Value of KEY in the peer's greeting (e.g. "timeout", "provider"), NULL
 * when absent. A key without '=' has the value "". */
AEMP_API const char *aemp_hs_remote_kv(const aemp_hs_t *hs, const char *key);
/* The peer's timeout= as a number: -1 when absent or not a number. */
AEMP_API int aemp_hs_remote_timeout(const aemp_hs_t *hs);
/* The framing we send (chosen from the peer's list) and the one the peer
 * said it sends (from its auth line). */
AEMP_API const char *aemp_hs_send_framing(const aemp_hs_t *hs);
AEMP_API const char *aemp_hs_recv_framing(const aemp_hs_t *hs);
/* The auth method the peer used ("hmac_md6_64_256", "cleartext", "tls";
 * protocol 1: "hmac_sha3_512", "tls_sha3_512", "tls_anon", "cleartext")
 * and the one in our auth line, once that is queued. */
AEMP_API const char *aemp_hs_recv_auth(const aemp_hs_t *hs);
AEMP_API const char *aemp_hs_send_auth(const aemp_hs_t *hs);
/* Greeting lines without line ends: which = 1 or 2. */
AEMP_API const char *aemp_hs_local_line(const aemp_hs_t *hs, int which);
AEMP_API const char *aemp_hs_remote_line(const aemp_hs_t *hs, int which);
/* == END handshake == */

/* ===================================================================== */
/* == BEGIN json ==                                                       */
/*
 * Messages are JSON arrays held as jansson json_t values. On the wire they
 * are written exactly as a Perl node (JSON::XS, utf8 mode) writes them:
 * compact, raw UTF-8, control characters escaped (\b \t \n \f \r, the
 * rest as \u00xx), '"' and '\' escaped, '/' and DEL not escaped, integers
 * exact, reals with 15 significant digits ("%.15g": 0.1, 1e+21, 1.5e-07,
 * -0, and 2.0 as "2"), object members in jansson's iteration order.
 *
 * Numbers jansson cannot hold: integers in (INT64_MAX, UINT64_MAX] are
 * held as "raw numbers" (see aemp_json_uint64) and written back as bare
 * numbers, so they round-trip exactly. Integers beyond 64 bits, and
 * -9223372036854775808, become strings of their digits (as Perl does).
 * Reals beyond the double range (1e400) become raw numbers of their
 * literal text (Perl reads them as infinity; we keep the text so that
 * nothing is lost and the output stays JSON). A raw number is a json
 * string whose first byte is 0xFF (never valid UTF-8, so it cannot come
 * from the wire as a string).
 */
/* A value for an unsigned 64-bit integer: a json integer when v <=
 * INT64_MAX (so it compares equal to what the decoder makes of the same
 * text), else a raw number. New reference, NULL on ENOMEM. */
AEMP_API json_t *aemp_json_uint64(uint64_t v);
/* True (1) when v is a raw number, else 0 (also for NULL); its literal
 * text (without the marker byte, NUL-terminated) is stored in *text when
 * text is not NULL (borrowed from v, valid while v is). */
AEMP_API int aemp_json_is_raw_number(const json_t *v, const char **text);

/* Limits used by the decoder and the stream framer. */
#define AEMP_JSON_MAX_DEPTH 512               /* like JSON::XS */
#define AEMP_DEFAULT_MAX_MESSAGE (64u << 20)  /* 64 MiB per JSON text */
/* Deepest value the encoder writes (local values; guards the stack and
 * reference cycles). */
#define AEMP_JSON_MAX_ENCODE_DEPTH 10000
/* The decoder's max_depth is never above this: jansson frees a value
 * recursively, so freeing a deeper one could exhaust the stack (at this
 * depth it takes well under 1 MiB). */
#define AEMP_JSON_DEPTH_LIMIT AEMP_JSON_MAX_ENCODE_DEPTH
/* An error buffer of this size always holds a whole decoder or framer
 * message. */
#define AEMP_JSON_ERRMAX 128

/* Encodes v (borrowed) as compact JSON. Returns a malloc'd,
 * NUL-terminated buffer (caller frees) and its length in *len (len may be
 * NULL), or NULL on ENOMEM or a value that cannot be encoded: NULL v,
 * nesting deeper than AEMP_JSON_MAX_ENCODE_DEPTH (or a cycle), a raw
 * number whose text is not a number. */
AEMP_API char *aemp_json_encode(const json_t *v, size_t *len);

/* Decodes exactly one JSON text (RFC 8259; whitespace before and after
 * allowed) of len bytes (borrowed; need not be NUL-terminated). Strict
 * UTF-8: overlong forms, UTF-8-encoded surrogates, code points above
 * U+10FFFF and stray bytes fail. \u escapes must pair surrogates; a lone
 * surrogate escape fails (as in JSON::XS). \u0000 is allowed (jansson
 * strings carry their length). Duplicate object keys: the last wins.
 * Nesting deeper than max_depth (0: AEMP_JSON_MAX_DEPTH; values above
 * AEMP_JSON_DEPTH_LIMIT count as that limit) fails; the parser does not
 * recurse, so any input is safe.
 * Returns a new reference, or NULL with a message in errbuf (if not NULL;
 * errlen bytes, AEMP_JSON_ERRMAX always suffice), e.g. "unexpected byte
 * 0x7d at offset 20", "invalid UTF-8 at offset 17", "nesting deeper than
 * 512 at offset 512", "unexpected end of input at offset 9", "out of
 * memory". Offsets count from buf. */
AEMP_API json_t *aemp_json_decode(const char *buf, size_t len,
                                  unsigned max_depth, char *errbuf,
                                  size_t errlen);

/*
 * The JSON stream framer: finds where each JSON text of a byte stream
 * ends, without decoding it. Texts may be split anywhere across calls;
 * whitespace (space, TAB, LF, CR) between texts is skipped. The framer
 * keeps its scanning state, so bytes are never scanned twice.
 *
 * It checks only what it needs to find the ends: the first byte of a
 * text, the grammar of top-level numbers and literals, bracket depth and
 * string quotes. Everything else (mismatched brackets, bad escapes, bad
 * UTF-8 ...) is left to aemp_json_decode on the text it returns.
 *
 * The caller keeps the unconsumed bytes contiguous: every call passes the
 * whole pending region starting at the first byte not yet returned as part
 * of a text (the framer remembers how far into it it has scanned).
 *
 * Use:
 *   aemp_framer_init(&f, 0, 0);
 *   on each read, append to region, then:
 *     while ((r = aemp_framer_next(&f, region, n, &s, &e)) == 1) {
 *         v = aemp_json_decode(region + s, e - s, 0, err, sizeof err);
 *         ...; drop e bytes from the front of region;
 *     }
 *     if (r < 0) fail the link with aemp_framer_error(&f);
 *     else drop e bytes (whitespace) from the front of region;
 */
typedef struct aemp_framer {
    /* private */
    size_t scanned_;    /* bytes of the current region already scanned */
    size_t start_;      /* offset of the current text (after whitespace) */
    size_t max_len_;
    uint32_t depth_;
    uint32_t max_depth_;
    uint8_t state_;
    uint8_t sub_;       /* number grammar state / literal position */
    uint8_t lit_;       /* which literal */
    int8_t err_;        /* sticky error code, 0 if none */
    char msg_[64];      /* the error message */
} aemp_framer_t;

/* Initialises the framer. max_len: longest JSON text accepted (0:
 * AEMP_DEFAULT_MAX_MESSAGE); max_depth: 0 for AEMP_JSON_MAX_DEPTH. No
 * memory is allocated: there is nothing to free. */
AEMP_API void aemp_framer_init(aemp_framer_t *f, size_t max_len,
                               unsigned max_depth);

/* Scans buf[0..len) (borrowed). Returns
 *   1  a complete text is buf[*start .. *end) (*start skips leading
 *      whitespace): the caller decodes it and drops the first *end bytes
 *      of its region before the next call;
 *   0  need more bytes. *end is how many leading bytes may be dropped:
 *      len when the region holds only whitespace, else 0 (*start = *end).
 *      Dropping them or not both work;
 *  <0  AEMP_EBADMSG (a byte that cannot start a text, or a malformed
 *      top-level number or literal) or AEMP_ELIMIT (text longer than
 *      max_len, or deeper than max_depth: reported as soon as the scan
 *      passes the limit, before the text is complete); AEMP_EINVAL when
 *      len is shorter than what was already scanned (a caller bug; not
 *      sticky). Errors are sticky: every later call returns the same
 *      code.
 * A top-level number is complete only when a byte after it arrives (as
 * with any streaming JSON parser); a literal (true, false, null) is
 * complete at its last letter. */
AEMP_API int aemp_framer_next(aemp_framer_t *f, const char *buf, size_t len,
                              size_t *start, size_t *end);

/* The message of the sticky error, e.g. "nesting deeper than 512",
 * "JSON text longer than 67108864 bytes", "unexpected byte 0x7d where a
 * JSON text should start"; "" when there is none. Valid until the next
 * call on f. */
AEMP_API const char *aemp_framer_error(const aemp_framer_t *f);
/* == END json == */

/* ===================================================================== */
/* == BEGIN storable ==                                                   */
/*
 * The storable framing (PROTOCOL §5): each message is a BER length (Perl
 * `pack "w"`: 7 bits per byte, most significant group first, the high
 * bit set on every byte but the last) followed by that many bytes of a
 * Perl Storable network-order image, as `Storable::nfreeze(\@message)`
 * writes it: the header 05 0B (format 2.11, network order), then the
 * message array itself.
 *
 * The codec maps images to the same json_t values the JSON path gives for
 * what a Perl node would write with JSON::XS:
 *   arrays, hashes (SX_HASH, SX_FLAG_HASH with UTF-8 keys), undef (null);
 *   byte strings (their bytes taken as Latin-1 characters, so E9 becomes
 *   "é") and UTF-8 strings (strict UTF-8 required);
 *   integers (SX_BYTE, SX_NETINT, SX_INTEGER, the last read as a 64-bit
 *   little-endian IV as a Perl on x86-64 reads it; nfreeze never writes
 *   it). In network order Perl writes integers beyond 32 bits, unsigned
 *   64-bit ones and all non-integral floats as strings of their digits
 *   ("2147483648", "1.5"), and so they decode: as strings;
 *   SX_DOUBLE (native little-endian) as a real;
 *   JSON::XS / JSON::PP booleans (a reference to a scalar blessed into
 *   JSON::PP::Boolean, Types::Serialiser::Boolean or JSON::XS::Boolean:
 *   false when the scalar is false as Perl sees it), Perl's own true and
 *   false (SX_SV_YES/SX_SV_NO, SX_BOOLEAN_TRUE/FALSE) and, as JSON::XS
 *   writes them, references to the scalars 1 and 0 (\1, \0) -> true/false;
 *   back-references (SX_OBJECT) to a value seen before: the value is
 *   copied (a deep copy, so every json_t of the result is its own);
 *   v-string magic (the string without the magic).
 * What thaw() would return is a reference to the image's top value, so
 * the top value decodes as a reference does: an array, a hash or a
 * boolean.
 *
 * Refused, with the distinct code AEMP_EBADMSG ("the image is fine but
 * JSON cannot carry its value": a link drops that one message with a
 * warning; the frames around it are intact): a reference to a scalar
 * other than 0 or 1, a reference to a reference, objects blessed into
 * any other class, tied variables, code references, regexps, objects
 * with STORABLE_freeze hooks, hash keys stored as scalars, objects
 * over 2 GiB (SX_LOBJECT), infinite or NaN doubles, cycles, and
 * back-references that would make the value more than
 * AEMP_STORABLE_MAX_EXPANSION times the size of its image (at least
 * 64 KiB), the guard against a small image that expands exponentially.
 * The decoder stops at the first such value: the rest of the image is
 * not checked.
 * Refused with AEMP_ELIMIT ("Storable image has more than N values (at
 * offset K)"; the image may be fine, the frames around it are intact): an
 * image that makes more than max_values values (AEMP_STORABLE_MAX_VALUES
 * by default). Every value counts (each scalar, array, hash, reference
 * and class name, and each value a back-reference copies), so the memory
 * a decode takes is bounded by the image's size and max_values, whatever
 * the image says: the decoder's bookkeeping is 16 bytes per value, and its
 * tables never grow past what the rest of the image could still fill.
 * The count is checked before anything is made for the value.
 * Every other failure is AEMP_EPROTO (a broken image; a Perl node closes
 * the link with "Bad message" for those): a truncated image, a length
 * or count inside it past its end, an unknown type byte, a native-order
 * image (freeze instead of nfreeze) or a format other than 2.x, a
 * back-reference to a value not yet seen, invalid UTF-8 in a UTF-8
 * string or key, nesting deeper than max_depth, an array or hash stored
 * directly as an element (not through a reference), bytes after the top
 * value.
 */
/* See above: how much larger than its image a decoded value may grow by
 * back-references (and at most by 4 GiB). */
#define AEMP_STORABLE_MAX_EXPANSION 8
/* See above: the most values one image may make by default (a 64 MiB
 * image of 1-byte values would otherwise make 64 Mi of them). */
#define AEMP_STORABLE_MAX_VALUES (1u << 20)
/* The most that max_values may allow: larger values count as this. */
#define AEMP_STORABLE_VALUES_LIMIT (1u << 28)
/* The decoder recurses (a few frames per level of nesting): its max_depth
 * is never above this. */
#define AEMP_STORABLE_DEPTH_LIMIT 2048

/* Decodes one Storable image of len bytes (borrowed; the frame's body,
 * without the BER length). max_depth: containers nested deeper fail (0:
 * AEMP_JSON_MAX_DEPTH; values above AEMP_STORABLE_DEPTH_LIMIT count as
 * that limit). Returns a new reference, or NULL with *err (when err is
 * not NULL) set to AEMP_EBADMSG, AEMP_EPROTO, AEMP_ELIMIT (more than
 * AEMP_STORABLE_MAX_VALUES values; see above) or AEMP_ENOMEM,
 * and the message in errbuf (when not NULL; errlen bytes, AEMP_JSON_ERRMAX
 * always suffice), e.g. "unsupported Storable type 0x0c (tied hash) at
 * offset 7", "string of 300 bytes at offset 11 runs past the end of the
 * image (12 bytes left)", "reference to a scalar (not 0 or 1) at offset
 * 7". Offsets count from buf. */
AEMP_API json_t *aemp_storable_decode(const void *buf, size_t len,
                                      unsigned max_depth, int *err,
                                      char *errbuf, size_t errlen);
/* The same with a limit on the number of values: an image that makes
 * more than max_values fails with AEMP_ELIMIT, "Storable image has more
 * than N values (at offset K)" (0: AEMP_STORABLE_MAX_VALUES; values above
 * AEMP_STORABLE_VALUES_LIMIT count as that limit). */
AEMP_API json_t *aemp_storable_decode_max(const void *buf, size_t len,
                                          unsigned max_depth, size_t max_values,
                                          int *err, char *errbuf, size_t errlen);

/* Encodes v (borrowed: an array, an object, true or false) as an
 * nfreeze image that Perl's thaw reads back as the value JSON::XS would
 * have made of v's JSON text; byte for byte what nfreeze writes where
 * the value model allows. Integers within 32 bits become SX_BYTE or
 * SX_NETINT, larger ones (and raw numbers, e.g. aemp_json_uint64 values)
 * strings of their digits, reals strings of 15 significant digits (an
 * integral real an integer), as Perl does in network order; strings whose
 * characters are all below U+0100 are written as Latin-1 byte strings,
 * others as UTF-8 strings; a hash with a key beyond U+00FF as an
 * SX_FLAG_HASH; true and false as references to JSON::PP::Boolean
 * objects, one object per value shared by back-references, exactly as
 * nfreeze writes JSON::PP's $true and $false. Where Perl's bytes differ,
 * thaw still gives the same value: a container referenced twice (the
 * "shared-ref" vector) is written twice, as the json_t holds two equal
 * copies; a string Perl holds as UTF-8 that has no character above
 * U+00FF is written as Latin-1 bytes (as the "utf8" vector shows for
 * "café"); a hash with only such keys as an SX_HASH of Latin-1 keys.
 * Returns a malloc'd buffer
 * (caller frees) and its length in *len (len may be NULL), or NULL on
 * ENOMEM or a value that cannot be encoded: NULL v, another top-level
 * type, nesting deeper than AEMP_JSON_MAX_ENCODE_DEPTH (or a cycle), a
 * string that is not UTF-8, a raw number whose text is not a number, a
 * string or container over 2^31 - 1 bytes or elements. */
AEMP_API void *aemp_storable_encode(const json_t *v, size_t *len);
/* The same, as a whole frame: the BER length, then the image. */
AEMP_API void *aemp_storable_encode_frame(const json_t *v, size_t *len);

/* The longest BER length (a 64-bit value needs 10 bytes). */
#define AEMP_BER_MAX_BYTES 10
/* Writes v as a BER length into out (AEMP_BER_MAX_BYTES bytes always
 * suffice). Returns the number of bytes written, 1..10. */
AEMP_API size_t aemp_ber_write(uint64_t v, unsigned char *out);

/*
 * The storable stream framer: finds each frame of a byte stream split
 * anywhere. It reads the BER length and rejects a frame longer than
 * max_len as soon as the length is known (a partly read length that can
 * only end above max_len already fails), before any of its body is
 * buffered. Sans-I/O, no allocation: nothing to free. The region
 * contract is that of aemp_framer_next: each call passes the whole
 * pending region, starting at the first byte not yet returned.
 *
 * Use:
 *   aemp_ber_framer_init(&f, 0);
 *   on each read, append to region, then:
 *     while ((r = aemp_ber_framer_next(&f, region, n, &s, &e)) == 1) {
 *         v = aemp_storable_decode(region + s, e - s, 0, &err, msg, sizeof msg);
 *         ...; drop e bytes from the front of region;
 *     }
 *     if (r < 0) fail the link with aemp_ber_framer_error(&f);
 */
typedef struct aemp_ber_framer {
    /* private */
    uint64_t body_;   /* the body length, once the prefix is complete */
    size_t max_len_;
    uint8_t prefix_;  /* length of the complete prefix, 0 while reading */
    int8_t err_;      /* sticky error code, 0 if none */
    char msg_[96];    /* the error message */
} aemp_ber_framer_t;

/* Initialises the framer. max_len: longest image accepted (0:
 * AEMP_DEFAULT_MAX_MESSAGE). */
AEMP_API void aemp_ber_framer_init(aemp_ber_framer_t *f, size_t max_len);

/* Scans buf[0..len) (borrowed). Returns
 *   1  a complete frame: its image is buf[*start .. *end) (*start is the
 *      length of the BER prefix); the caller drops the first *end bytes
 *      of its region before the next call;
 *   0  need more bytes (*start = *end = 0);
 *  <0  AEMP_ELIMIT (a length above max_len, which is below 2^64), or
 *      AEMP_EPROTO (a length prefix longer than AEMP_BER_MAX_BYTES); sticky:
 *      every later call returns the same code. AEMP_EINVAL (not sticky)
 *      when len is shorter than the prefix already read (a caller bug).
 * An empty image (length 0) is a frame like any other; the decoder
 * refuses it. */
AEMP_API int aemp_ber_framer_next(aemp_ber_framer_t *f, const void *buf,
                                  size_t len, size_t *start, size_t *end);

/* The sticky error's message, e.g. "Storable frame of 70000000 bytes is
 * longer than the limit of 67108864", "Storable frame length prefix exceeds
 * the limit of 1000" (a partly read length), "BER length longer than 10
 * bytes";
 * "" when there is none. Valid until the next call on f. */
AEMP_API const char *aemp_ber_framer_error(const aemp_ber_framer_t *f);
/* == END storable == */

/* ===================================================================== */
/* == BEGIN cbor ==                                                      */
/*
 * The cbor framing of protocol 1 (AnyEvent::MP 2.x): each message is one
 * CBOR item (RFC 8949), an array, as CBOR::XS `encode_cbor` writes it,
 * items back to back with nothing between them. The codec is ours (see
 * docs/API.md for why not a packaged library).
 *
 * One message, one meaning: the decoder gives the json_t value JSON
 * framing would have delivered for the same Perl value:
 *   integers exact: beyond INT64_MAX as raw numbers (aemp_json_uint64),
 *   -9223372036854775808 and below (down to -2^64) as strings of their
 *   digits, as json.c makes the same numbers from JSON text;
 *   byte strings as the string of their bytes taken as code points (E9
 *   becomes "é", as JSON::XS writes a Perl byte string); text strings as
 *   they are (strict UTF-8);
 *   half, single and double floats as reals (exact: CBOR carries what
 *   JSON's 15 digits round); infinities as the raw numbers 1e400 and
 *   -1e400 (the JSON text Perl reads as infinity);
 *   false, true, null; arrays; maps with string keys, integer keys as
 *   their decimal text (as Perl makes them), the last of equal keys wins;
 *   indefinite-length strings, arrays and maps;
 *   tag 55799 (self-described CBOR) and 28 (shareable) are skipped, tag
 *   22098 (CBOR::XS's reference) around 1 or 0 (or "1", "0") is true or
 *   false, as JSON::XS writes \1 and \0.
 *
 * Refused with AEMP_EBADMSG ("the item is well formed but JSON cannot
 * carry its value": a link drops that one message, the items around it
 * are intact): undefined, NaN, invalid UTF-8 in a text string, every
 * other tag (date/time, bignums, Perl objects, string and shared
 * references, unknown tags: CBOR::XS gives Perl objects JSON::XS cannot
 * write), tag 22098 around anything else, map keys that are not strings
 * or integers. The decoder stops at the first such value.
 * Refused with AEMP_ELIMIT: nesting deeper than max_depth, more than
 * max_values values (AEMP_CBOR_MAX_VALUES by default; every item
 * counts, keys included, tags not), an item longer than the framer's
 * max_len. A length claim is never allocated: strings are checked
 * against the input first, arrays and maps grow as their items arrive.
 * Every other failure is AEMP_EPROTO (a broken stream; CBOR::XS fails the
 * same items): a truncated item, additional information 28..30, a break
 * outside an indefinite-length item (or between a key and its value, or
 * after a tag), an indefinite length on an integer or a tag, a chunk of
 * an indefinite string that is not definite or is of a higher major type
 * (CBOR::XS takes the head of a lower type as a chunk of its argument's
 * length, bytes into a text string as they are, and so do we), simple
 * values other than false/true/null/undefined (CBOR::XS refuses them),
 * bytes after the item.
 *
 * The encoder writes what a 2.x node writes for the value a JSON peer
 * gave it (JSON::XS decodes, CBOR::XS encodes): minimal heads, definite
 * lengths; strings of ASCII as byte strings, others as text strings;
 * hash keys whose characters are all below U+0100 as byte strings of
 * those Latin-1 bytes, others as text strings; integers as integers, but
 * -9223372036854775808 as the byte string of its digits (JSON::XS reads
 * it as a string); a real as CBOR::XS writes a Perl number: integral and
 * in 0..4294967295 as an integer (-0.0 as 0), else a single float when
 * that holds it exactly, else a double (CBOR::XS writes no half floats);
 * raw numbers as Perl reads their text (1e400 as an infinity); true,
 * false, null as f5, f4, f6. Object members in jansson's iteration order
 * (a Perl node's hash order is random too).
 * A real goes out exactly as the double it is. JSON::XS's number reader
 * is not correctly rounded (it reads "1.17549435082229e-38" one unit in
 * the last place below the nearest double, which strtod and
 * aemp_json_decode give), so for such a text a 2.x node relaying a JSON
 * peer's number writes a double one unit apart from ours.
 */
/* See above: the most values one item may make by default. */
#define AEMP_CBOR_MAX_VALUES (1u << 20)
/* The most that max_values may allow: larger values count as this. */
#define AEMP_CBOR_VALUES_LIMIT (1u << 28)
/* The decoder and the framer never nest deeper than this (see
 * AEMP_JSON_DEPTH_LIMIT: jansson frees values recursively). */
#define AEMP_CBOR_DEPTH_LIMIT AEMP_JSON_DEPTH_LIMIT

/* Decodes exactly one CBOR item of len bytes (borrowed). max_depth:
 * containers nested deeper fail (0: AEMP_JSON_MAX_DEPTH, as CBOR::XS's
 * 512; values above AEMP_CBOR_DEPTH_LIMIT count as that limit). Returns a
 * new reference, or NULL with *err (when err is not NULL) set to
 * AEMP_EBADMSG (cannot be carried), AEMP_ELIMIT, AEMP_EPROTO (see
 * above; a value that cannot be carried in an item that is also broken
 * is AEMP_EPROTO), AEMP_EINVAL (buf NULL with len > 0) or AEMP_ENOMEM,
 * and the message in errbuf (when not NULL; errlen bytes,
 * AEMP_JSON_ERRMAX always suffice), e.g. "unexpected end of CBOR data at
 * offset 3", "CBOR tag 2 (bignum) at offset 0 (cannot be carried)",
 * "nesting deeper than 512 at offset 512". Offsets count from buf. */
AEMP_API json_t *aemp_cbor_decode(const void *buf, size_t len, unsigned max_depth, int *err,
                                  char *errbuf, size_t errlen);
/* The same with a limit on the number of values: an item that makes more
 * than max_values fails with AEMP_ELIMIT, "CBOR item has more than N
 * values (at offset K)" (0: AEMP_CBOR_MAX_VALUES; values above
 * AEMP_CBOR_VALUES_LIMIT count as that limit). */
AEMP_API json_t *aemp_cbor_decode_max(const void *buf, size_t len, unsigned max_depth,
                                      size_t max_values, int *err, char *errbuf, size_t errlen);

/* Encodes v (borrowed; any value) as one CBOR item, as described above.
 * Returns a malloc'd buffer (caller frees) and its length in *len (len
 * may be NULL), or NULL on ENOMEM or a value that cannot be encoded: NULL
 * v, nesting deeper than AEMP_JSON_MAX_ENCODE_DEPTH (or a cycle), a
 * string that is not UTF-8, a raw number whose text is not a number. */
AEMP_API void *aemp_cbor_encode(const json_t *v, size_t *len);

/*
 * The CBOR stream framer: finds where each item of a byte stream ends,
 * without decoding it. Items may be split anywhere across calls; the
 * framer keeps its place (the open containers and how many items each
 * still owes), so bytes are never scanned twice and a string's body is
 * never scanned at all. It checks everything that makes an item well
 * formed (the AEMP_EPROTO cases above), the depth and max_len; what only
 * the value can tell (UTF-8, tags, undefined, NaN, keys) is left to
 * aemp_cbor_decode on the item it returns. The region contract is that
 * of aemp_framer_next. No allocation while items nest at most 16 deep;
 * deeper ones keep their levels on the heap until the item is complete,
 * the framer fails, or aemp_cbor_framer_free.
 *
 * Use:
 *   aemp_cbor_framer_init(&f, 0, 0);
 *   on each read, append to region, then:
 *     while ((r = aemp_cbor_framer_next(&f, region, n, &s, &e)) == 1) {
 *         v = aemp_cbor_decode(region + s, e - s, 0, &err, msg, sizeof msg);
 *         ...; drop e bytes from the front of region;
 *     }
 *     if (r < 0) fail the link with aemp_cbor_framer_error(&f);
 *   when done: aemp_cbor_framer_free(&f);
 */
typedef struct aemp_cbor_framer {
    /* private */
    size_t scanned_;     /* bytes of the current item already scanned */
    size_t max_len_;
    uint64_t *heap_;     /* the levels when deeper than inline_ holds */
    uint64_t inline_[16];/* per open container: items still due, or flags */
    uint32_t depth_, cap_, max_depth_;
    uint8_t istr_;       /* inside an indefinite string: its major type */
    uint8_t tagged_;     /* a tag waits for its item */
    int8_t err_;         /* sticky error code, 0 if none */
    char msg_[96];       /* the error message */
} aemp_cbor_framer_t;

/* Initialises the framer. max_len: longest item accepted (0:
 * AEMP_DEFAULT_MAX_MESSAGE); max_depth: 0 for AEMP_JSON_MAX_DEPTH (values
 * above AEMP_CBOR_DEPTH_LIMIT count as that limit). */
AEMP_API void aemp_cbor_framer_init(aemp_cbor_framer_t *f, size_t max_len, unsigned max_depth);

/* Scans buf[0..len) (borrowed). Returns
 *   1  a complete item is buf[*start .. *end) (*start is always 0): the
 *      caller decodes it and drops the first *end bytes of its region
 *      before the next call;
 *   0  need more bytes (*start = *end = 0);
 *  <0  AEMP_EPROTO (a malformed item), AEMP_ELIMIT (an item longer than
 *      max_len, known as soon as a length says so, or nesting deeper
 *      than max_depth) or AEMP_ENOMEM; sticky: every later call returns
 *      the same code. AEMP_EINVAL (not sticky) when len is shorter than
 *      what was already scanned (a caller bug). */
AEMP_API int aemp_cbor_framer_next(aemp_cbor_framer_t *f, const void *buf, size_t len,
                                   size_t *start, size_t *end);

/* The sticky error's message, e.g. "unexpected break at offset 4", "CBOR
 * item longer than 67108864 bytes"; "" when there is none. Valid until
 * the next call on f. */
AEMP_API const char *aemp_cbor_framer_error(const aemp_cbor_framer_t *f);

/* Releases what the framer holds for a deep item in progress (NULL-free
 * otherwise); it can be used again after aemp_cbor_framer_init. */
AEMP_API void aemp_cbor_framer_free(aemp_cbor_framer_t *f);
/* == END cbor == */

/* ===================================================================== */
/* == BEGIN node ==                                                       */
/*
 * A node: one process's presence in an AEMP network. It runs on a libev
 * loop the caller owns (the library never calls ev_run). The node
 * listens on every endpoint of its noderef, connects to other nodes when
 * there is something to send, authenticates links with the handshake
 * engine and moves JSON messages.
 *
 * Callbacks: every callback runs from the loop, never from inside the
 * call that caused it (a call that returns an error never runs its
 * callback). From inside any callback you may call every function of
 * this header, including aemp_node_destroy (the destruction is then
 * deferred until the callback returns; no callback of that node runs
 * after aemp_node_destroy returns).
 *
 * TLS mode (PROTOCOL §3): a secret that holds an RSA private key PEM block
 * ("-----BEGIN RSA PRIVATE KEY-----" ... "-----END RSA PRIVATE KEY-----")
 * followed somewhere later by a certificate PEM block ("-----BEGIN
 * CERTIFICATE-----" ... "-----END CERTIFICATE-----") puts the node in TLS
 * mode, exactly as a Perl node decides it. As our extension, a PKCS#8
 * "-----BEGIN PRIVATE KEY-----" block in place of the RSA one does too
 * (a Perl node with such a secret stays plain: it authenticates with hmac
 * only). `aemp gencert` writes such a secret. In TLS mode:
 *   - greetings carry tls=1.0;
 *   - with a peer whose greeting has tls=1 too, TLS starts right after the
 *     nonce lines (the side with the lower nonce line is the client). Each
 *     side presents the secret's certificate (later certificates in the
 *     secret go with it as its chain) and verifies the peer's against the
 *     secret's certificates as the only CAs, without a host name check; a
 *     client certificate is required; TLS 1.2 or newer. The auth line
 *     `tls;;json` and all data then flow inside TLS. A failed TLS
 *     handshake fails the link with OpenSSL's reason, e.g. "error:0A000086:
 *     SSL routines::certificate verify failed (self-signed certificate)"
 *     on the side that refused the certificate and "error:0A000418:SSL
 *     routines::tlsv1 alert unknown ca" on the other;
 *   - with a peer without tls=1, the link authenticates with
 *     hmac_md6_64_256 over the whole secret (the PEM text), as any node;
 *   - the limits (max_message, max_outq) apply to the plaintext as on a
 *     plain link.
 */
struct ev_loop;
typedef struct aemp_node aemp_node_t;

enum aemp_log_level {
    AEMP_LOG_ERROR = 0,
    AEMP_LOG_WARN = 1,  /* link errors: "HOST:PORT: MESSAGE" */
    AEMP_LOG_INFO = 2,  /* link up/down */
    AEMP_LOG_DEBUG = 3
};

/* Default limits and times (all settable in the config). */
#define AEMP_DEFAULT_TIMEOUT 30          /* seconds; the minimum is 4 */
#define AEMP_DEFAULT_CONNECT_INTERVAL 5.0
#define AEMP_DEFAULT_CONNECT_TIMEOUT 30.0
#define AEMP_HANDSHAKE_TIMEOUT 30.0      /* silence during the handshake, and its
                                            longest duration */
#define AEMP_DEFAULT_MAX_OUTQ (64u << 20)  /* bytes queued for one peer */
#define AEMP_DEFAULT_MAX_HANDSHAKES 512u    /* incoming, unauthenticated */
/* Over max_handshakes, the oldest handshake is closed once it has been
 * silent this long (seconds, no byte received) ... */
#define AEMP_HANDSHAKE_SILENT_EVICT 1.0
/* ... or once it has been in its handshake this long, talking or not. */
#define AEMP_HANDSHAKE_OLD_EVICT 5.0
#define AEMP_DEFAULT_MAX_PEER_MONITORS 16384u /* mon1 of one node (below) */
#define AEMP_DEFAULT_MAX_PEER_MEMORY (256u << 20) /* held for all peers (below) */
/* What one watch (mon1) of another node counts in max_peer_memory. */
#define AEMP_PEER_MONITOR_COST 256u
/* What one entry of the peer table (a node this node knows of: linked,
 * being connected to, or only named by a message) counts in
 * max_peer_memory, and each key it is known by (its name, each endpoint
 * its name carries, a protocol-0 iam alias). About what they take in
 * memory (the entry with its timer and a first key). */
#define AEMP_PEER_ENTRY_COST 512u
#define AEMP_PEER_KEY_COST 64u
/* Connection attempts (each a descriptor) running at once for unasked
 * peers (see max_peer_memory), and of them for the nodes one peer's
 * messages named (counted under its name, as their memory): an unasked
 * peer over either waits for its next round (connect_interval), the
 * first time with the warning "unasked peers: connection attempts
 * wait: N run, M for the nodes SENDER's messages named (at most 64, 16
 * each); NODE waits", and fails at connect_timeout as any. Our own
 * sends and connects are not counted and never wait: one to a waiting
 * peer starts its attempt at once, with a deadline of its own. A peer
 * that takes other names (see max_peer_memory) gets 16 for each,
 * within the 64. */
#define AEMP_UNASKED_ATTEMPTS_MAX 64u
#define AEMP_UNASKED_ATTEMPTS_PER_NODE 16u
/* Protocol 0: a node name carries at most this many endpoints, each of
 * at most AEMP_P0_ENDPOINT_MAX bytes (as protocol 1 mirrors a node's
 * listeners). A message to a node of a longer name is dropped with the
 * warning "SENDER: message to a node name over the limit dropped: WHY"
 * (WHY "more than 64 endpoints" or "an endpoint longer than 256
 * bytes"), and aemp_node_send of one fails with AEMP_ELIMIT; a link
 * whose peer greets with one is closed with WHY. */
#define AEMP_P0_NAME_ENDPOINTS_MAX 64u
#define AEMP_P0_ENDPOINT_MAX 256u
/* ... and any protocol-0 name (also a slave's, slave/NAME@VIA, which
 * carries its master's) at most this many bytes, WHY "a name longer than
 * 17408 bytes": 64 endpoints of 256 bytes and a slave's prefix. */
#define AEMP_P0_NAME_MAX 17408u
#define AEMP_DEFAULT_PORT 4040
/* Protocol 1: node ids. PROTOCOL-1 §1 lets a node id be any non-empty
 * string without '#' (it splits port ids "NODEID#NAME": a reply to an id
 * holding one would reach another port, or our own node) or ';' (it
 * splits the greeting). We also refuse what no 2.02 node id we can reach
 * or log can hold: bytes that are not UTF-8 (2.02 writes its ids as
 * UTF-8 JSON strings), NUL and other control characters (C0, DEL: a
 * configured id comes from JSON text and the greeting is one line), and
 * more than AEMP_NODEID_MAX bytes (a key of the 'l family, which the
 * global database bounds by AEMP_GDB_NAME_MAX). A greeting naming such
 * an id fails the handshake (AEMP_EPROTO) with "refusing node id 'ID':
 * WHY", ID with unprintable bytes escaped (and cut to 512 bytes then
 * "...", so the line stays whole in a log) and WHY one of "it is empty",
 * "it is over 1024 bytes", "it contains '#', which splits port ids",
 * "it contains ';', which splits greetings", "it contains a NUL byte",
 * "it contains a control character", "it is not UTF-8"; aemp_node_new
 * refuses such a nodeid with AEMP_EINVAL. */
#define AEMP_NODEID_MAX 1024
/* Addresses of one node a protocol-1 node takes from its master's
 * g_found, or a global node from its view's 'l: the first this many
 * usable ones ("ip:port"); a longer list is cut with the warning "NODE:
 * N addresses, the first 64 are tried". A node listens on a few. */
#define AEMP_P1_ADDRS_MAX 64

typedef struct aemp_node_config {
    /* ---- every dialect ---- */
    /* The shared secret: secret/secret_len when secret is not NULL. In
     * protocol 0 else the contents of secret_file, else
     * $HOME/.aemp-secret, else 32 random bytes (the node can then talk to
     * nobody); a key and a certificate in it select TLS mode (see
     * above). Protocol 1: see cert. Copied. */
    const void *secret;
    size_t secret_len;
    /* Our timeout (seconds, 0: 30; values below 4 are raised to 4). */
    unsigned timeout;
    double connect_interval;  /* 0: 5 s between connect rounds */
    double connect_timeout;   /* 0: 30 s until a peer counts unreachable */
    size_t max_message;       /* 0: 64 MiB, longest incoming JSON text */
    /* 0: 64 MiB, bytes queued for one peer; past it the link is cut
     * ("send queue overflow"). What is sent for another peer (while its
     * message is handled: a relay, an answer to a port it named) fills
     * at most half, and never takes the node past max_peer_memory: such
     * a message is dropped instead (AEMP_ELIMIT, the warning "PEER:
     * message to NODE dropped: ..."), and the target's link stays. */
    size_t max_outq;
    /* Log sink; NULL: warnings and errors go to stderr. msg is borrowed.
     * Warnings and errors are rate-limited per 10 s: each line (the same
     * text) 5 times, each kind (the text after "SUBJECT: ") 100 times,
     * all together 1000 times, and over that each place in the code
     * that logs still 5 times (one flood does not hide other warnings);
     * the next line written ends with "... and
     * N more like this in the last 10 s" (or "..., M lines in all, held
     * back in 10 s"). A line over 1023 bytes keeps its start and its
     * end: "...(N bytes cut)..." replaces the middle. */
    void (*log)(void *ud, int level, const char *msg);
    void *log_ud;
    /* The levels that reach log, as a mask of (1u << level); 0: every
     * level. A line of another level is not even formatted (a busy seed
     * logs a line per link up), unless a LogCatcher catches this node's
     * log (aemp_logcatch), which asks for lines of its own levels. */
    unsigned log_levels;
    /* Link events (may be NULL): up = 1 when a link to noderef is
     * authenticated, 0 when it is gone (reason says why). */
    void (*on_link)(void *ud, aemp_node_t *node, const char *noderef,
                    int up, const char *reason);
    void *link_ud;
    /* Raw delivery hook (may be NULL): called for a message to a local id
     * that no port handles. msg is borrowed for the call (increment to
     * keep it); src is the sending node's noderef (borrowed). */
    void (*on_message)(void *ud, aemp_node_t *node, const char *src,
                       const char *localid, json_t *msg);
    void *message_ud;
    /* Failed connection attempts (may be NULL): called once for each
     * attempt of ours to reach a peer that ended before the link was
     * authenticated, one per endpoint tried, e.g. ("127.0.0.1:4040",
     * "127.0.0.1:4040", "Connection refused"), or the handshake's error
     * text ("authentication failure/shared secret mismatch"). peer is
     * the peer's name as the node knows it (a noderef or node id),
     * address the endpoint "host:port" that was tried, reason why it
     * failed; all borrowed for the call. The node goes on trying the
     * peer's other endpoints and rounds; on_link (up = 0) still reports
     * a peer that it gives up on. Not called for attempts the node ends
     * itself (the connect timeout, a link that won a simultaneous
     * connect), nor after aemp_node_destroy. */
    void (*on_connect_failed)(void *ud, aemp_node_t *node, const char *peer,
                              const char *address, const char *reason);
    void *connect_failed_ud;
    /* The provider= string; NULL: "aemp-C-" AEMP_VERSION. */
    const char *provider;
    /* Incoming connections in their handshake (accepted, not yet
     * authenticated) beyond which the node closes the oldest of them (0:
     * AEMP_DEFAULT_MAX_HANDSHAKES). While there are more than this, the
     * oldest is closed ("too many connections in handshake") as soon as
     * it has received nothing for AEMP_HANDSHAKE_SILENT_EVICT seconds or
     * has been in its handshake for AEMP_HANDSHAKE_OLD_EVICT seconds, then
     * the next oldest, until the count is back at the limit; a connection
     * accepted over the limit claims the place of the oldest, which goes
     * once it qualifies even if others finished meanwhile. A younger
     * connection that is talking is never closed for the count: a storm
     * of honest peers, which finish within round trips, all get through,
     * while silent connections over the limit go within
     * AEMP_HANDSHAKE_SILENT_EVICT seconds. When accept runs out of
     * descriptors, the oldest handshakes that qualify are closed whatever
     * the count, then the listeners pause for half a second. Every
     * handshake also ends after AEMP_HANDSHAKE_TIMEOUT seconds of silence
     * or AEMP_HANDSHAKE_TIMEOUT seconds in all ("Connection timed out"). */
    unsigned max_handshakes;
    /* Watches (mon1) one node may hold on our ports at once (0:
     * AEMP_DEFAULT_MAX_PEER_MONITORS). One more is refused: it is
     * dropped with the warning "NODE: mon1: over N monitors from this
     * node; refused" (rate-limited like every warning), and the link
     * stays up; that watcher does not hear of the port's death. An honest
     * node watches each of our ports once, however many monitors its
     * code has on it, so it meets this only when it watches that many
     * ports. */
    unsigned max_peer_monitors;
    /* 2.02's "secure": non-zero refuses, in protocol 1, what a secure
     * 2.02 node refuses from other nodes, eval, AnyEvent::MP::_spawn and
     * calls of functions by name (aemp_func_register), LogCatcher's
     * connect included: each is logged as "error processing node message
     * from NODE: remote execution not allowed" and gets no answer. (0.4
     * has no such key; in protocol 0 it refuses calls by name only.) */
    int secure;
    /* Bytes the node holds for all other nodes together (0:
     * AEMP_DEFAULT_MAX_PEER_MEMORY): output queued for them (on their
     * links, and waiting for a link), their shares of the global database
     * (protocol 1, a global node) and their watches of our ports
     * (AEMP_PEER_MONITOR_COST each), and the peer table itself
     * (AEMP_PEER_ENTRY_COST per node known, AEMP_PEER_KEY_COST per name,
     * endpoint or alias it is known by). The per-peer limits (max_outq,
     * max_peer_monitors, AEMP_GDB_*) apply inside it. When the total
     * passes it, the node that holds the most is cut: its links close,
     * what it held is released (queue, share, watches), the monitors on
     * it fire, and the node logs the warning "NODE: node memory cap: this
     * peer held the most (N bytes)", which is also the reason given to
     * on_link and the monitors. Then the next, until the total is below
     * the cap again. Memory released in bulk is handed back to the
     * system (malloc_trim, where the C library has it), so the node's
     * size returns to where it was once hostile peers are gone.
     * Nodes that a peer's message makes this node know (a snd or relay to
     * a node id it chose, each one of a relay_multiple) are "unasked"
     * peers until a link to them is up or this node sends them something
     * itself. Those one peer's messages made (counted under its name,
     * across its reconnects) may count at most a sixteenth of
     * max_peer_memory (each AEMP_PEER_ENTRY_COST plus its keys); all
     * together at most a quarter (a peer that takes other names, by
     * iam or by greeting as another node, gets a part for each, within
     * the quarter). Past either, a peer's message to a
     * node not known yet is dropped with the warning "SENDER: messages
     * to nodes not known yet dropped: the nodes its messages named hold
     * its N bytes (a sixteenth of max_peer_memory)", or "...: unasked
     * peers hold their N bytes (a quarter of max_peer_memory)"; messages
     * to known nodes, our own sends and the links are not affected. An
     * unasked peer goes once its connection attempts end
     * (connect_timeout), so the count comes down by itself. At most
     * AEMP_UNASKED_ATTEMPTS_MAX of them are being connected to at once
     * (each attempt a descriptor), AEMP_UNASKED_ATTEMPTS_PER_NODE of
     * those one peer's messages named; the others wait their turn. */
    size_t max_peer_memory;
    /* The framings a link offers in its greeting and can write, in order
     * of preference, as a comma list (2.02's framing_format): each name
     * one of the dialect's ("json", "storable"; protocol 1 also "cbor"),
     * each once, else aemp_node_new fails with AEMP_EINVAL. NULL: every
     * framing of the dialect, protocol 0 "json,storable", protocol 1
     * "cbor,json,storable" (2.02's default). A link writes the first
     * name of its PEER's list found here, and reads what the peer chose
     * (see "Framings" in docs/API.md); "json" makes every link of the
     * node JSON (a peer may still write storable or cbor only when it
     * was offered). Copied. */
    const char *framings;

    /* ---- the dialect ----
     * 0 (the default): the node speaks protocol 0 as described above.
     * 1: the node speaks protocol 1: it is named by nodeid, listens on
     * binds, joins the network through seeds (section "protocol 1"
     * below), and authenticates with hmac_sha3_512 over the secret, or
     * with tls_sha3_512 when cert is given. Each dialect reads the fields
     * of every dialect (above the groups) and those of its own group
     * below; a third dialect adds a group of its own. In protocol 1
     * timeout is 2.02's monitor_timeout (handshake silence, seed back-off
     * cap; 0: 30). */
    int protocol;
    /* ---- protocol 0 (AnyEvent::MP 0.4) only ---- */
    struct {
        /* What to bind, as a user writes it (resolved as in PROTOCOL §1):
         * "" (port 4040 on this host's addresses), "4041", "host",
         * "host:port", "[::1]:4040", comma lists. Port 0 picks a free port;
         * the node's noderef then carries the real one. NULL: "". Ignored in
         * slave mode. */
        const char *bind;
        /* Slave mode: non-NULL makes a slave node "slave/NAME" (NAME random
         * when ""), which connects to each of masters[] and renames itself
         * to "slave/NAME@VIA" when the first link comes up (VIA: that
         * master); every master hears the new name. */
        const char *slave_name;
        const char *const *masters; /* noderefs, nmasters of them, copied */
        size_t nmasters;
        /* The secret's file when secret is NULL (see secret). */
        const char *secret_file;
        /* Non-zero: never TLS mode, even with a key and a certificate in the
         * secret (no tls=1.0 in greetings; links use hmac over the secret). */
        int no_tls;
    };
    /* ---- protocol 1 (AnyEvent::MP 2.x, PROTOCOL-1.md) only ---- */
    struct {
        /* Our node id, used as it is (aemp_nodeid_expand makes
         * one from a configured "%n"/"%u" form); it must be an id we route
         * and log (AEMP_NODEID_MAX), else AEMP_EINVAL. Required. */
        const char *nodeid;
        /* What to listen on, nbinds entries as 2.02 takes them
         * ("host:port", "*:port" for every non-loopback address, port 0 or
         * "*" for a free port; see aemp_hostport_resolve). binds NULL: no
         * listener (2.02's default is ["*"]): the node then only connects. */
        const char *const *binds;
        size_t nbinds;
        /* The seeds, nseeds "host:port" entries: the node
         * connects to each at start and keeps trying them with 2.02's
         * back-off; the first one up becomes its master. A node whose own
         * listener is among its seeds is a global node (its own master; see
         * "Global nodes" in the db section). */
        const char *const *seeds;
        size_t nseeds;
        /* The secret is secret/secret_len exactly (NULL: none,
         * then only TLS links authenticate); cert/cert_len a PEM private key
         * and certificate (and CA certificates), which switches TLS on as
         * 2.02's "cert" does. Both copied. */
        const char *cert;
        size_t cert_len;
    };
} aemp_node_config_t;

/* Creates a node on loop (NULL: libev's default loop). cfg is copied.
 * Returns NULL with *err set (AEMP_EINVAL bad config, AEMP_ENOMEM,
 * AEMP_ENOENT unreadable secret_file, AEMP_ETLS a TLS-mode secret whose
 * key or certificate cannot be loaded or do not match: the reason is
 * logged). The node does nothing until aemp_node_start. */
AEMP_API aemp_node_t *aemp_node_new(struct ev_loop *loop,
                                    const aemp_node_config_t *cfg, int *err);

/* Resolves the bind noderef and listens on every endpoint (or, in slave
 * mode, starts connecting to the masters). Blocking name resolution
 * happens here. Returns 0, AEMP_ERESOLVE, AEMP_EIO (bind/listen failed:
 * the message is logged) or AEMP_ESTATE (already started). */
AEMP_API int aemp_node_start(aemp_node_t *node);

/* Closes every link and listener and frees everything. Pending messages
 * are dropped, no callback runs afterwards. Accepts NULL. From inside a
 * callback of this node the work is deferred until the callback returns. */
AEMP_API void aemp_node_destroy(aemp_node_t *node);

/* The node's noderef (after start: resolved, e.g. "127.0.0.1:4040"; a
 * slave's current name). Borrowed: valid until the next loop iteration
 * that may rename it (slaves) or destroy. */
AEMP_API const char *aemp_node_noderef(const aemp_node_t *node);
/* The endpoints the node listens on ("ip:port", count of them in *count,
 * count may be NULL); NULL before start or without listeners. Borrowed:
 * valid until the node is destroyed. */
AEMP_API const char *const *aemp_node_listeners(const aemp_node_t *node, size_t *count);
/* The loop the node runs on (the one given to aemp_node_new, or libev's
 * default loop); NULL for a NULL node. The caller still owns the loop. */
AEMP_API struct ev_loop *aemp_node_loop(const aemp_node_t *node);

/* Sends msg (a JSON array whose first element is the target's local id
 * string) to the node noderef. Steals msg (always). Messages to one node
 * arrive in the order sent, without holes; they wait in a queue while the
 * node is connected. Returns 0, AEMP_EINVAL (not an array, bad noderef),
 * AEMP_ELIMIT (the peer's queue passed max_outq: the link to it fails
 * with "send queue overflow" and the monitors on it fire; a protocol-0
 * name over AEMP_P0_NAME_ENDPOINTS_MAX; sent while a peer's message is
 * handled, see "Authority", to a node not known yet while the unasked
 * peers hold their part of max_peer_memory), AEMP_ENOMEM. */
AEMP_API int aemp_node_send(aemp_node_t *node, const char *noderef,
                            json_t *msg);

/* Bytes queued for noderef and not yet handed to the kernel (0 when
 * unknown). Lets a fast sender hold back before max_outq. */
AEMP_API size_t aemp_node_queued(const aemp_node_t *node, const char *noderef);

/* 1 when an authenticated link to noderef is up, else 0. */
AEMP_API int aemp_node_is_up(const aemp_node_t *node, const char *noderef);
/* A key of the greeting of the node's current link to noderef (e.g.
 * "provider", "timeout"), NULL when not connected or absent. Borrowed
 * until that link goes down. */
AEMP_API const char *aemp_node_peer_kv(const aemp_node_t *node, const char *noderef,
                                       const char *key);

/* The framing of the node's current link to noderef: the one we write
 * (incoming 0) or the one the peer writes (non-zero): "json", "storable"
 * or (protocol 1) "cbor"; see "Framings" in docs/API.md. NULL when not
 * connected. Static strings. */
AEMP_API const char *aemp_node_peer_framing(const aemp_node_t *node, const char *noderef,
                                            int incoming);

/* Connects to noderef now, if not connected (also used by slaves and
 * pings). Returns 0, AEMP_EINVAL (empty, NULL or our own name),
 * AEMP_ELIMIT (a protocol-0 name over AEMP_P0_NAME_ENDPOINTS_MAX) or
 * AEMP_ENOMEM. */
AEMP_API int aemp_node_connect(aemp_node_t *node, const char *noderef);

/* Resolves a user-given noderef as PROTOCOL §1 describes, blocking.
 * Returns a malloc'd resolved noderef (caller frees) or NULL with *err. */
AEMP_API char *aemp_resolve(const char *spec, int *err);

/* Reads a secret file completely (trailing newline included; at most
 * 16 MiB). Returns malloc'd bytes and *len, or NULL with *err
 * (AEMP_ENOENT, AEMP_EIO, AEMP_ELIMIT, AEMP_ENOMEM). No other copy of the
 * bytes is left in memory; free them with aemp_secret_free. */
AEMP_API void *aemp_read_secret(const char *path, size_t *len, int *err);
/* Overwrites len bytes of secret (so no copy stays in freed memory) and
 * frees it. NULL is allowed. */
AEMP_API void aemp_secret_free(void *secret, size_t len);
/* == END node == */

/* ===================================================================== */
/* == BEGIN ports ==                                                      */
/*
 * Ports: message endpoints inside a node. A port id is "NODEREF#LOCALID";
 * the node port is the bare noderef (LOCALID ""). Local ids are
 * "UNIQ.ID" (UNIQ random per node, ID counting a, b, ... z, aa, ...) and
 * are never reused, so a message for a dead port is never delivered to a
 * newer port.
 *
 * Messages are JSON arrays of elements; on the wire the target's local id
 * goes first. A receive callback gets the elements only, e.g.
 * ["tick", 42]. No message is queued at a port. A message that no
 * callback matches (no tag or pattern callback, and no catch-all):
 *   protocol 0: is dropped and the port lives, as 0.4 does
 *     (PROTOCOL.md §7: "with no matching callback it is dropped");
 *   protocol 1: kills the port, as 2.02 does, with the reason
 *     ("unhandled_message", "no callback found for message 'TAG'"), TAG
 *     being the message's first element as Perl prints it (a string as
 *     it is, a number in its shortest form, true "1", false "0", null
 *     and an empty message '', an array or object as compact JSON), cut
 *     to its first 30 characters, each outside 0x20..0x7e made '.'; its
 *     monitors, remote ones too (kil0), hear that reason.
 * Local sends are delivered from the loop, in order, never from inside
 * the sending call.
 *
 * Authority. The node port trusts only what this node says to itself:
 * a global node's database answers to its own client (g_reply, g_found,
 * g_chg1, g_chg2 from its master), its own share of the global database
 * (g_slave, g_set, g_upd), a local spawn's init, and the requests it
 * ignores from itself (mon1, mon0, iam). Everything else is some peer's
 * request and acts in that peer's name. A request that sends to a port
 * its caller names (time, can, lookup, eval, snd/relay, a port or
 * function of yours that answers to a port in the message, such as the
 * aemp tool's echo) cannot borrow our authority: whatever a callback
 * sends while it handles a peer's message (node-port handler, receive
 * callback, named or spawned function, monitor callback, on_message)
 * arrives at our own ports as that peer's message, so at our node port
 * it is the peer's request (a g_slave written so replaces the peer's own
 * share and goes with the peer; handled from the loop, and dropped with
 * the warning "PEER: its request to this node's own node port dropped:
 * no link to that node now" when that peer's link has gone by then) and
 * on_message names the peer as its src; and a node it sends to that this node does not know yet is an
 * unasked peer, within the unasked peers' part of max_peer_memory. A
 * message to another node's node port (a bare node id, "" as the local
 * id) sent meanwhile with aemp_send, aemp_sendf or aemp_node_send -
 * anywhere but to that peer's own node port - would be a request in
 * this node's name there (a seed's g_chg2 is its slaves' database, its
 * g_upd another global node's): it is refused, AEMP_ESTATE, with the
 * warning "PEER: a message to another node's node port refused (it
 * would be a request in this node's name): to NODE". Only the library's
 * own calls act as this node from inside such a callback: aemp_db_*,
 * aemp_spawn on this node, aemp_mon, aemp_logcatch (its fixed connect
 * request) and aemp_port_kill (and the kil a watched port's death
 * sends). A message sent outside any peer's
 * message (from a timer, an I/O watcher or main) is this node's own:
 * a program that means to ask another node something of its own in
 * answer to a peer sends it from there (the aemp tool's trace does).
 */
typedef struct aemp_port aemp_port_t;
typedef struct aemp_mon aemp_mon_t;

/* What a receive callback returns. */
#define AEMP_KEEP 0 /* keep the callback */
#define AEMP_DONE 1 /* remove it; a done catch-all callback kills its port
                       with an empty (normal) reason */

/* A receive callback. msg is borrowed for the call (json_incref to keep
 * it). To fail, call aemp_port_die(port, "message") and return. */
typedef int (*aemp_recv_fn)(aemp_port_t *port, json_t *msg, void *ud);

/* Creates a local port. cb, when not NULL, is its catch-all callback (a
 * "miniport"). Returns NULL on ENOMEM or a NULL node. The port lives
 * until it is killed (or the node destroyed). */
AEMP_API aemp_port_t *aemp_port_new(aemp_node_t *node, aemp_recv_fn cb, void *ud);

/* The port's id, "NODEREF#LOCALID". Borrowed: valid while the port lives
 * (a slave's ports keep the id they were made with). */
AEMP_API const char *aemp_port_id(const aemp_port_t *port);
/* The node the port belongs to (NULL for a NULL port), e.g. to send from
 * inside a receive callback. */
AEMP_API aemp_node_t *aemp_port_node(const aemp_port_t *port);

/* Adds a callback for messages whose first element is the string tag.
 * Callbacks are tried in the order added; tag callbacks before the
 * catch-all. Returns 0, AEMP_EINVAL or AEMP_ENOMEM. */
AEMP_API int aemp_port_rcv(aemp_port_t *port, const char *tag, aemp_recv_fn cb, void *ud);
/* Adds a callback for messages whose leading elements equal those of
 * pattern (a JSON array; steals it, always). */
AEMP_API int aemp_port_rcv_match(aemp_port_t *port, json_t *pattern, aemp_recv_fn cb, void *ud);

/* Kills the port with reason (a JSON array of elements; steals it; NULL
 * or [] is a normal exit). Its monitors fire with the reason; callbacks
 * never run again. Safe from inside the port's own callback. */
AEMP_API void aemp_port_kill(aemp_port_t *port, json_t *reason);
/* Kills the port with ("die", message): an error while handling a
 * message. message is copied. */
AEMP_API void aemp_port_die(aemp_port_t *port, const char *message);

/* Kills the port with the id portid, local or remote, with reason
 * (steals, always; NULL = normal). A remote port's node gets
 * ["","kil",LOCALID,REASON...] (a Perl node reads that as a monitor
 * notice). Returns 0, AEMP_EINVAL, AEMP_ENOENT (no such local port) or
 * the errors of aemp_send. */
AEMP_API int aemp_port_kill_id(aemp_node_t *node, const char *portid, json_t *reason);
/* Deprecated: the old name of aemp_port_kill_id (one letter from
 * aemp_port_kill, which takes a port object). Kept for old programs. */
AEMP_API int aemp_kil(aemp_node_t *node, const char *portid, json_t *reason);

/* Sends the elements (a JSON array; steals it, always) to portid, local
 * or remote. Returns 0, AEMP_EINVAL or the errors of aemp_node_send. */
AEMP_API int aemp_send(aemp_node_t *node, const char *portid, json_t *elements);
/* Sends json_pack(fmt, ...) (fmt must build an array), e.g.
 * aemp_sendf(node, id, "[si]", "tick", 1). The arguments are read as
 * json_pack reads them ("o" values are stolen, also on failure). To
 * another node the message is written straight to the wire, without
 * making a value, for formats of arrays, strings, numbers, booleans, null
 * and json_t arguments; other formats (objects, '+') go through
 * json_pack. Returns 0, AEMP_EINVAL (a format or argument json_pack
 * refuses, e.g. a NULL "s" string or invalid UTF-8) or the errors of
 * aemp_node_send. */
AEMP_API int aemp_sendf(aemp_node_t *node, const char *portid, const char *fmt, ...);

/* Registers a well-known name for portid (copied), replacing any earlier
 * one. The node port's `lookup` answers with it. When portid is a port of
 * this node (under any of its names), the name goes when that port dies
 * (what a death costs: the names of that port, not all names). Returns 0
 * or an error. */
AEMP_API int aemp_reg(aemp_node_t *node, const char *name, const char *portid);
/* The port id registered under name here, or NULL. Borrowed: valid until
 * the name is registered again, the port it names is killed (a killed
 * port's names go with it), or the node is destroyed; copy it to keep
 * it. */
AEMP_API const char *aemp_lookup(const aemp_node_t *node, const char *name);

/* Monitors. A monitor fires once, when the port dies (with its reason)
 * or when the link to its node fails (("transport_error", NODEREF,
 * MESSAGE)). Monitoring a local port that does not exist fires at once
 * (from the loop) with ("no_such_port", "cannot monitor nonexistent
 * port"). The first monitor on a remote port sends mon1 to its node; the
 * last one cancelled sends mon0. After aemp_mon_*, every message sent to
 * the port arrives or the monitor fires.
 * The returned handle is valid until the monitor fires or is cancelled;
 * NULL on error (bad port id, ENOMEM). */
typedef void (*aemp_mon_fn)(aemp_node_t *node, const char *portid, json_t *reason, void *ud);
/* Calls cb with the reason (borrowed) and portid (borrowed). */
AEMP_API aemp_mon_t *aemp_mon(aemp_node_t *node, const char *portid, aemp_mon_fn cb, void *ud);
/* Kills the local port kill_portid with the same reason when the reason
 * is not empty (a normal exit does not propagate). */
AEMP_API aemp_mon_t *aemp_mon_kill(aemp_node_t *node, const char *portid, const char *kill_portid);
/* Sends elements (a JSON array; steals it, always) with the reason's
 * elements appended to to_portid. */
AEMP_API aemp_mon_t *aemp_mon_send(aemp_node_t *node, const char *portid, const char *to_portid,
                                   json_t *elements);
/* Cancels a monitor that has not fired. Accepts NULL. */
AEMP_API void aemp_mon_cancel(aemp_mon_t *mon);

/* Named functions: the node port runs them for ["", NAME, ARGS...] and
 * for spawn requests. port is the spawned port (NULL for a plain call),
 * args the arguments (borrowed). For a spawn, a function that calls
 * aemp_port_die makes the port die; returning leaves it alive with the
 * callbacks the function installed. Registration copies name; a later
 * registration of the same name replaces the earlier one. */
typedef void (*aemp_func_fn)(aemp_node_t *node, aemp_port_t *port, json_t *args, void *ud);
/* Returns 0, AEMP_EINVAL (NULL node, name or fn) or AEMP_ENOMEM (the
 * earlier registration, if any, then stays). */
AEMP_API int aemp_func_register(aemp_node_t *node, const char *name, aemp_func_fn fn, void *ud);

/* Creates a port on node noderef running function func with args (a JSON
 * array; steals it, always): sends ["", "AnyEvent::MP::_spawn", LOCALID,
 * FUNC, ARGS...]. Returns the new port id at once (malloc'd, caller
 * frees), or NULL on error. An unknown function kills that port with
 * ("die", "unable to resolve FUNC"). */
AEMP_API char *aemp_spawn(aemp_node_t *node, const char *noderef, const char *func, json_t *args);

/* What a protocol-1 node answers to AnyEvent::MP 2.02's tools (aemp
 * eval, shell, trace, restart; eval_on; can):
 * - eval EXPR REPLY...: this node runs no Perl. It answers at once in
 *   2.02's shape [REPLY-ELEMENTS..., ERROR, RESULTS...]. The expressions
 *   2.02's aemp itself sends are answered for real (blanks, a trailing
 *   ';' and a trailing "()" aside; names qualified, as 2.02 evaluates in
 *   package main, where a bare up_nodes or $NODE is not the kernel's):
 *     AnyEvent::MP::Kernel::up_nodes
 *       -> ["", NODEID...]: every node with an authenticated link, this
 *          node not among them (what `aemp trace` asks every node); on a
 *          global node it takes as many entries as it has links from the
 *          asker's reads' budget (AEMP_GDB_READ_*): over it the eval
 *          waits (as a read does), or where it cannot wait the ERROR is
 *          "up_nodes: over the reads' budget of this node, try later\n";
 *     $AnyEvent::MP::Kernel::NODE, AnyEvent::MP::Kernel::NODE
 *       -> ["", this node's id].
 *   An expression calling AnyEvent::Watchdog::Util::restart (`aemp
 *   restart`) gets the ERROR "NODEID runs no Perl (a libaemp C node) and
 *   no AnyEvent::Watchdog: it cannot be restarted remotely\n"; any other
 *   the ERROR "NODEID runs no Perl (a libaemp C node): it cannot evaluate
 *   \"EXPR\"\n". Without REPLY nothing is sent.
 * - can TAG REPLY...: "1" for 2.02's fixed node requests (Kernel.pm's
 *   "", devnull, time, eval, snd, can, mon0, mon1, kil0, kil1, g_global,
 *   g_reply, g_chg1, g_chg2, g_found, g_slave; on a global node also
 *   Global.pm's g_set, g_upd, g_find, g_db_family, g_db_keys,
 *   g_db_values, g_mon1, g_mon0), else "": functions (aemp_func_register,
 *   AnyEvent::MP::_spawn) are no requests. (2.02 also answers "1" for a
 *   function name it was once asked to call, as it keeps what it looked
 *   up among its requests; this node does not.)
 * - AnyEvent::MP::LogCatcher::connect VERSION PORT LEVEL: from then on
 *   every log line of this node at LEVEL or more important (AnyEvent::Log
 *   levels: 4 error, 5 warn, 7 info, 8 debug are ours) goes to PORT as
 *   [TIME, "libaemp", LEVEL, MESSAGE], TIME in epoch seconds, until PORT
 *   dies (it is monitored). Lines are sent from the loop, at most
 *   AEMP_LOGCATCH_LINES_MAX waiting (more are lost); a line logged while
 *   sending them is not sent. At most AEMP_LOGCATCH_MAX catchers, and a
 *   quarter of them connected by one node (more are refused with a
 *   warning); a port connecting again only changes its LEVEL. PORT must
 *   be a port of the node that asks (its catchers end when it goes):
 *   another node's, or this node's node port, is refused with the
 *   warning "NODE: log catcher PORT refused: not a port of that node".
 * - with config secure set, eval, AnyEvent::MP::_spawn, LogCatcher's
 *   connect and calls of functions by name from other nodes are refused
 *   as a secure 2.02 node refuses them (see aemp_node_config_t.secure).
 */

#define AEMP_LOGCATCH_MAX 32
#define AEMP_LOGCATCH_LINES_MAX 1000

/* Catching a node's log lines, as 2.02's AnyEvent::MP::LogCatcher::catch
 * does: cb gets each line of node `from` (borrowed strings), its time
 * (epoch seconds on that node), its context ("libaemp" from a C node, a
 * Perl package from a Perl node) and its AnyEvent::Log level (1 fatal ..
 * 9 trace). */
typedef void (*aemp_log_fn)(void *ud, aemp_node_t *node, const char *from, double time,
                            const char *context, int level, const char *message);
/* Protocol 1: asks node nodeid (Perl or C) to send its log lines at
 * level or more important to a new port of ours: sends
 * ["","AnyEvent::MP::LogCatcher::connect",0,PORT,level] to its node
 * port. Returns that port (kill it to stop; it dies by itself when the
 * link to nodeid fails), or NULL (bad arguments, ENOMEM). To catch a
 * network, call it for every node of the "'l" family (aemp_db_mon). */
AEMP_API aemp_port_t *aemp_logcatch(aemp_node_t *node, const char *nodeid, int level,
                                    aemp_log_fn cb, void *ud);
/* == END ports == */

/* ===================================================================== */
/* == BEGIN db ==                                                         */
/*
 * The global database of a protocol-1 network (PROTOCOL-1.md §8), from a
 * node's side: FAMILY -> KEY -> VALUE (any JSON value). What a node sets
 * is its local database; its master (the first seed whose link is up; a
 * global node is its own master) merges every node's into the global
 * view, which reads and watches go to. Entries of a node disappear everywhere when it goes down. On the
 * wire this is exactly 2.02's db_set, db_del, db_reg, db_family, db_keys,
 * db_values and db_mon (g_upd, g_db_*, g_mon1/g_mon0 to the master).
 * Without a master nothing is sent: the next master gets the whole local
 * database, and every read and watch that still waits.
 *
 * Every call below needs a protocol-1 node: on a protocol-0 node it
 * returns AEMP_ESTATE (or NULL) and takes nothing. Callbacks run from the
 * loop, never inside the call.
 */
/* Sets KEY of FAMILY to value (steals, always; NULL is JSON null). Only a
 * change is sent. Returns 0, AEMP_EINVAL, AEMP_ENOMEM or AEMP_ESTATE. */
AEMP_API int aemp_db_set(aemp_node_t *node, const char *family, const char *key, json_t *value);
/* Deletes KEY of FAMILY from the local database. Returns 0, AEMP_ENOENT
 * (not set here), AEMP_EINVAL or AEMP_ESTATE. */
AEMP_API int aemp_db_del(aemp_node_t *node, const char *family, const char *key);
/* Registers portid under FAMILY (key: the port id, value: value, stolen;
 * NULL is null) for as long as the port lives: when it dies the entry is
 * deleted (2.02's db_reg). Returns as aemp_db_set. */
AEMP_API int aemp_db_reg(aemp_node_t *node, const char *family, const char *portid, json_t *value);

/* A read's answer: result is borrowed for the call (an object for
 * aemp_db_family, an array for keys and values; empty for a family that
 * does not exist), or NULL when no answer came within
 * AEMP_DB_READ_TIMEOUT seconds of the call (the master did not answer,
 * or no master was found meanwhile): the read is over, an answer coming
 * later is ignored. family is borrowed too. */
typedef void (*aemp_db_reply_fn)(aemp_node_t *node, const char *family, json_t *result, void *ud);
/* Asks the master for a family's whole content, its keys or its values
 * (sent again to each new master until answered). Returns 0 (cb runs
 * once: with the answer, or with NULL after AEMP_DB_READ_TIMEOUT),
 * AEMP_EINVAL, AEMP_ENOMEM or AEMP_ESTATE. 2.02 lets a read wait for
 * good; here a master that never answers cannot make them pile up. */
#define AEMP_DB_READ_TIMEOUT 60.0
AEMP_API int aemp_db_family(aemp_node_t *node, const char *family, aemp_db_reply_fn cb, void *ud);
AEMP_API int aemp_db_keys(aemp_node_t *node, const char *family, aemp_db_reply_fn cb, void *ud);
AEMP_API int aemp_db_values(aemp_node_t *node, const char *family, aemp_db_reply_fn cb, void *ud);

/* Watches a family: cb runs with the family's content as now known
 * (hash, an object) and arrays of the keys added, changed and deleted
 * since the last call; first when the master's answer arrives (every key
 * added), then at each change. All arguments are borrowed for the call.
 * Returns a handle (valid until cancelled or the node is destroyed) or
 * NULL (AEMP_ESTATE, bad argument, no memory). */
typedef struct aemp_db_mon aemp_db_mon_t;
typedef void (*aemp_db_mon_fn)(aemp_node_t *node, const char *family, json_t *hash,
                               json_t *added, json_t *changed, json_t *deleted, void *ud);
AEMP_API aemp_db_mon_t *aemp_db_mon(aemp_node_t *node, const char *family, aemp_db_mon_fn cb,
                                    void *ud);
/* Cancels a watch (also from inside its callback). Accepts NULL. */
AEMP_API void aemp_db_mon_cancel(aemp_db_mon_t *mon);
/*
 * Global nodes. A protocol-1 node is global when it is its own seed (one
 * of its seeds is its own listener, or a seed link refused as "I refuse
 * to talk to myself") or when another node sends it ["","g_slave"]
 * (2.02's rule: a node receiving it starts the global service). It stays
 * global until destroyed. A global node:
 *   - is its own master: its own aemp_db_* calls are served from its view
 *     (through its own node port, so callbacks still run from the loop);
 *   - serves g_slave DB (a slave's whole local database, 'l included),
 *     g_upd, g_find (-> g_found with the node's 'l entry or null),
 *     g_db_family/keys/values (-> g_reply; {} or [] for an unknown
 *     family), g_mon1 (-> g_chg1, the whole family or null) and g_mon0;
 *     every change goes to the other global nodes (g_upd F SET DEL) and,
 *     as g_chg2 F SET DEL, to every watcher of F, the sender included;
 *   - merges: the newest write of a key wins; when its owner deletes it
 *     while another node still holds it, the view reverts to that value;
 *     a node deletes only keys it holds; in 'l a slave sets only its own
 *     key (where it listens: g_find answers with it, dials follow it) -
 *     another's is refused whole, "node X: g_upd: family 'l: key K is
 *     another node's listeners (a node sets its own); dropped" (a global
 *     peer's share holds its slaves');
 *   - sends ["","g_global"] on every link that comes up; a global peer's
 *     g_global is answered with g_set (its slaves' merged databases) and
 *     recorded in 'g; a g_set is stored and the sender's 'l mirrored;
 *   - keeps links to every node in 'g (a lost one is tried again at once,
 *     then after 0.6-1.2 s, doubling up to the node's timeout);
 *   - resolves a node id it has no link to from its view's 'l, and fails
 *     it at once with "no known address" when 'l has none;
 *   - when a node goes down, deletes all its entries (g_upd F {} [KEYS]
 *     to the globals when they were a slave's, g_chg2 F {} [KEYS] to the
 *     watchers) and ends its watches.
 * Unlike 2.02 it makes no other seed its master (its own requests stay
 * with itself) and does not echo a g_upd back to the global node that
 * sent it. Its slaves move: when a slave's master goes down, the slave
 * registers with the next seed that is up (or the next to come up), sends
 * its waiting requests and watches again, and its watches start from
 * that master's g_chg1.
 *
 * Limits. What one node keeps in the global database, and what the view
 * holds, is bounded by the constants below; a g_* request that would
 * cross one, or that is malformed, is dropped whole (nothing of it
 * applies) with a warning naming the node, the request and the reason,
 * e.g. "node X: g_upd: family F: value of key K is over 65536 bytes;
 * dropped"; the link stays up. A slave registering again replaces its
 * database, so repeating cannot grow memory. Sizes count names and the
 * values' compact JSON. The per-node limits apply to every node except
 * global peers, whose share (their slaves' entries) has limits of its own
 * (AEMP_GDB_GLOBAL_*): any authenticated node may announce itself global
 * (g_global), so that share must be bounded too. A seed's own share is
 * bounded the same way: it also holds what the seed mirrors of the global
 * nodes ('g for each, and the listeners in 'l of one that said g_global:
 * at most 64 addresses of up to 256 bytes, and all such copies together
 * at most a quarter of max_peer_memory or of AEMP_GDB_GLOBAL_BYTES_MAX,
 * whichever is less - a list beyond that is not mirrored, with a
 * warning), so peers cannot fill it up to where the seed's own writes
 * would be refused.
 */
/* Bytes of one family name or key. */
#define AEMP_GDB_NAME_MAX 1024
/* Bytes of one value. */
#define AEMP_GDB_VALUE_MAX 65536
/* Families in one slave's database, and families one node watches. */
#define AEMP_GDB_NODE_FAMILIES_MAX 256
/* Keys in one family of one slave's database. */
#define AEMP_GDB_NODE_KEYS_MAX 4096
/* Bytes of one slave's database. */
#define AEMP_GDB_NODE_BYTES_MAX (4u << 20)
/* Keys of one family in the global view (all owners together). */
#define AEMP_GDB_FAMILY_KEYS_MAX 262144
/* Families in the global view. */
#define AEMP_GDB_FAMILIES_MAX 65536
/* Bytes of the share of one global peer (its slaves' entries together). */
#define AEMP_GDB_GLOBAL_BYTES_MAX (256u << 20)
/* Keys of 'g (the global nodes) in one slave's database. A global node
 * keeps links to the global nodes that its own share and its global
 * peers' shares name in 'g, and of a global peer's share (which merges
 * its slaves' databases, so it may hold more) it takes the first this
 * many: one peer can make it dial at most this many, however many it
 * claims; when one of those goes, the first of the others it holds takes
 * its place. 'g keys that only its own slaves set are in the view (and go
 * to the other global nodes, as in 2.02), but it does not dial them. */
#define AEMP_GDB_NODE_GLOBALS_MAX 256
/* Reads whose answer is a whole family (g_db_family, g_db_keys,
 * g_db_values, and g_mon1, answered with g_chg1) copy as many entries
 * as the family holds, for a request of a few bytes: a global node lets
 * one node's reads copy at most this many entries a second, in bursts
 * of up to AEMP_GDB_READ_BURST (a read of a larger family needs a full
 * budget), and all nodes' together eight times that; a node's budget
 * starts anew with each link. Nodes whose reads wait for all nodes'
 * budget get it in turn, in the order they came: while one waits for
 * enough to gather, readers under other ids cannot take it from under
 * it. A node's first g_mon1 of a family (sent
 * once per link: lost, its watch would never hear a change) is always
 * answered while the node's own account is less than four bursts in
 * debt, and is not counted in all nodes'. A read over the budget waits:
 * the node's link reads nothing more (TCP holds the node back) until the
 * budget holds the read, checked again at most 5 seconds apart,
 * then the read is answered and what came behind it is handled, in
 * order; nothing is dropped and the link stays. The warning then says
 * "node X: g_db_family of F (N entries) waits, and the node's link with
 * it: over the reads' budget of 50000 entries a second (its own, or all
 * nodes')". Only a read that did not come straight from the node's link
 * (one bounced through our own node port) cannot wait: it is dropped,
 * unanswered, and the warning says "dropped". Our own reads are not
 * counted. An eval of up_nodes takes from the same budget (see
 * "eval"). The answer to a global node's g_global (the whole database,
 * once per link) takes from all nodes' budget; over it, it waits once,
 * as long as the budget needs (at most 5 s), and is then answered. */
#define AEMP_GDB_READ_ENTRIES_PER_S 50000u
#define AEMP_GDB_READ_BURST 500000u
/* A change (g_upd), or a node's whole database (g_slave, g_set), makes
 * a global node send each key set or deleted to every watcher of its
 * family, and a slave's to every other global node: a request of a few
 * bytes can make it send thousands of messages. What one node's changes
 * make it send is budgeted as its reads are: this many entry-sends a
 * second, in bursts of up to AEMP_GDB_CHANGE_BURST, all nodes' together
 * eight times that, starting anew with each link. Over its own budget a
 * change waits on the node's link (which reads nothing meanwhile) as
 * long as that budget needs: a node that changes faster is slowed down.
 * Over all nodes' it waits once (at most 5 s) and is then applied, what
 * all nodes' budget cannot bear going on the node's own account (all
 * nodes' never goes into debt: another node's change waits at most what
 * its own cost needs). A change is dropped only when its node is gone
 * while it waits (its entries are deleted right after). A change
 * costs what it makes the node send: nothing for a family nobody watches
 * (unless it is a slave's and there are other global nodes). 2.02 has no
 * such limit. */
#define AEMP_GDB_CHANGE_SENDS_PER_S 50000u
#define AEMP_GDB_CHANGE_BURST 500000u

/* Whether the node is a global node now (0 also for protocol 0 or NULL). */
AEMP_API int aemp_node_is_global(const aemp_node_t *node);
/* == END db == */

/* ===================================================================== */
/* == BEGIN config ==                                                     */
/*
 * Protocol-1 configuration, kept the way AnyEvent::MP 2.02 and its aemp
 * tool keep it (PROTOCOL-1 §1, §2): one rc file, $PERL_ANYEVENT_MP_RC or
 * else $HOME/.perl-anyevent-mp, holding one JSON object. Its top-level
 * keys are the defaults; "profile" maps profile names to objects with the
 * same keys plus "parent" (the profile to inherit from; default parent =
 * the top level).
 *
 * Pure functions work on bytes and json_t (parse, format, profile
 * resolution, effective values, node-id expansion, host:port specs);
 * thin functions read and write the file and resolve addresses.
 *
 * Relaxed JSON, as JSON::XS's relaxed mode reads it, on top of the strict
 * decoder (aemp_json_decode): accepted are
 *   - one trailing comma after the last element of an array or the last
 *     member of an object ([1,2,] {"a":1,}); not [,] nor [1,,];
 *   - shell-style comments: '#' outside a string up to the next CR or LF,
 *     wherever whitespace may stand;
 *   - literal TAB characters inside strings (read as \t).
 * Everything else is strict JSON: UTF-8, no // or C comments, no single
 * quotes, no bare words. Errors say "line L, column C" (bytes, from 1).
 */
#define AEMP_RC_ERRMAX 256               /* always holds a whole message */
#define AEMP_RC_MAX_FILE (16u << 20)     /* longest rc file read */
#define AEMP_RC_MAX_CHAIN 100            /* longest parent chain */
#define AEMP_P1_NODEID_RANDOM_LEN 10     /* what %u becomes */
#define AEMP_P1_GENSECRET_LEN 180        /* aemp gensecret */

/* A source of random bytes: fills buf with len bytes, returns 0 (or
 * nonzero when it cannot). aemp_random_source wraps aemp_random_bytes. */
typedef int (*aemp_random_fn)(void *ud, void *buf, size_t len);
AEMP_API int aemp_random_source(void *ud, void *buf, size_t len);

/* Parses the rc file's bytes (borrowed; len bytes, need not be
 * NUL-terminated) as relaxed JSON holding one object. Returns a new
 * reference, or NULL with a message in err (errlen bytes), e.g. "unexpected
 * byte 0x7d at line 3, column 5", "the rc file holds a JSON array, not an
 * object", "out of memory". */
AEMP_API json_t *aemp_rc_parse(const char *buf, size_t len, char *err, size_t errlen);

/* Writes v (borrowed) as the Perl tool writes its rc file (JSON::XS
 * pretty + canonical + utf8): members sorted by key bytes, three spaces
 * of indent per level, "key" : value, empty containers as {} and [],
 * scalars as aemp_json_encode writes them, one LF at the end. Returns a
 * malloc'd NUL-terminated text (caller frees) and its length in *len (len
 * may be NULL), or NULL on ENOMEM or a value aemp_json_encode cannot
 * write (also nesting deeper than AEMP_JSON_MAX_ENCODE_DEPTH). */
AEMP_API char *aemp_rc_format(const json_t *v, size_t *len);

/* Flags of the program arguments (AnyEvent::MP's configure). */
#define AEMP_RC_FORCE 1  /* the program's arguments win over the file */
#define AEMP_RC_NORC 2   /* ignore the file */

/* The merged key/value object a node of profile name uses, as 2.02's
 * find_profile builds it: built-in defaults (monitor_timeout 30,
 * connect_interval 2, framing_format, auth_offer, auth_accept) < args <
 * the top level of rc < the parent chain < the profile itself; with
 * AEMP_RC_FORCE args come last instead. name NULL: the top level only. A
 * profile that does not exist is empty; a parent that is JSON null is no
 * parent. rc (NULL: no file) and args (NULL: none; else an object) are
 * borrowed. Returns a new object (its values are shared with rc/args, so
 * do not modify them), or NULL with a message in err: rc or a profile not
 * an object, a parent not a string, a cycle ("profile parent cycle: a ->
 * b -> a"), a chain longer than AEMP_RC_MAX_CHAIN, ENOMEM. */
AEMP_API json_t *aemp_rc_profile(const json_t *rc, const char *name, const json_t *args,
                                 unsigned flags, char *err, size_t errlen);

/* The secret bytes of a secret string: 2.02 keys its HMAC with ONE BYTE
 * PER CODE POINT ("grü" = 67 72 fc, not UTF-8). s is UTF-8 of len bytes
 * (borrowed); out (at least len bytes) gets the bytes and *outlen their
 * count. Returns 0, or AEMP_EINVAL with a message in err for invalid
 * UTF-8 or a code point above U+00FF (2.02 dies in the handshake then). */
AEMP_API int aemp_secret_from_utf8(const char *s, size_t len, unsigned char *out,
                                   size_t *outlen, char *err, size_t errlen);

/* n random characters [0-9a-zA-Z] into out (n + 1 bytes, NUL-terminated),
 * unbiased (bytes >= 248 are drawn again). Returns 0, or AEMP_EIO when
 * rnd fails. */
AEMP_API int aemp_random_alnum(char *out, size_t n, aemp_random_fn rnd, void *ud);

/* Expands a configured node id as 2.02 does: every "%n" becomes hostname,
 * then every "%u", and a "/" at the very end, becomes the same 10 random
 * characters [0-9A-Za-z]{9}[0-9A-Z] (drawn from rnd only when needed).
 * The configured id must be a non-empty string other than "0" (Perl's
 * test of it), the result must not contain '#', ';' or NUL (nor LF/CR:
 * it goes into a greeting line). spec is len bytes (borrowed). Returns a
 * malloc'd id (caller frees), *randomised = 1 when random characters were
 * put in (randomised may be NULL), or NULL with a message in err. */
AEMP_API char *aemp_nodeid_expand(const char *spec, size_t len, const char *hostname,
                                  aemp_random_fn rnd, void *ud, int *randomised, char *err,
                                  size_t errlen);

/* Splits one bind or seed entry as 2.02 (AnyEvent::Socket::parse_hostport
 * with default port 0) does: "host:port", "[v6]:port", "host port", a bare
 * IPv6 address, or a bare host (port 0); "" is hostname, a bare number N
 * is hostname:N; port "*" is 0. host "*" means all local addresses (see
 * aemp_hostport_resolve). Pure. host gets hostlen bytes, port portlen
 * bytes (both NUL-terminated); the port may be a service name. Returns 0,
 * or AEMP_EINVAL (unparsable, a unix path, too long). */
AEMP_API int aemp_hostport_parse(const char *spec, const char *hostname, char *host,
                                 size_t hostlen, char *port, size_t portlen);

/* Resolves a bind or seed entry (commas separate several, as in 2.02)
 * into "ip:port" endpoints, in order, without duplicates: names through
 * getaddrinfo (blocking), host "*" as every non-loopback IPv4 and every
 * global (2000::/3) or unique-local (fc00::/7) IPv6 address of this
 * host's interfaces. Returns a malloc'd comma-separated list (caller
 * frees), or NULL with *err (err may be NULL): AEMP_EINVAL (unparsable),
 * AEMP_ERESOLVE (nothing found), AEMP_ENOMEM. */
AEMP_API char *aemp_hostport_resolve(const char *spec, const char *hostname, int *err);

/* The effective protocol-1 configuration of a node. Every pointer is
 * owned by the struct; free it with aemp_p1_config_free. */
typedef struct aemp_p1_config {
    char *profile;            /* the profile it was made for */
    char *nodeid;             /* expanded (aemp_nodeid_expand) */
    int nodeid_randomised;    /* %u or a trailing / was replaced */
    unsigned char *secret;    /* one byte per code point; NULL: none */
    size_t secret_len;
    char *cert;               /* PEM (key, certificate, CAs); NULL: none */
    char **binds;             /* NULL-terminated entries, unresolved */
    size_t nbinds;            /* default ["*"]; [] = no listener */
    char **seeds;             /* NULL-terminated, unresolved; default [] */
    size_t nseeds;
    json_t *services;         /* array ("Mod::", "func", ["func",args...]) */
    int secure;               /* Perl truth of "secure" (default 0) */
    double monitor_timeout;   /* seconds (30) */
    double connect_interval;  /* seconds (2) */
    char **framing_format;    /* NULL-terminated (cbor, json, storable) */
    size_t nframing_format;
    char **auth_offer;        /* (tls_sha3_512, hmac_sha3_512) */
    size_t nauth_offer;
    char **auth_accept;       /* (tls_sha3_512 hmac_sha3_512 tls_anon cleartext) */
    size_t nauth_accept;
    int autocork;             /* default 0 */
    int nodelay;              /* default 1 */
} aemp_p1_config_t;

/* Fills c from a merged object (aemp_rc_profile's result; borrowed) for
 * profile (borrowed, the default node id is "PROFILE/") on host hostname.
 * Values: strings for nodeid/secret/cert; arrays of strings for binds,
 * seeds, framing_format, auth_offer, auth_accept; numbers or numeric
 * strings for the two times (>= 0); any value for the Perl-truth flags;
 * JSON null = not set (binds, seeds, services, secret, cert). "eval" (Perl
 * code) is ignored. Returns 0, or AEMP_EINVAL / AEMP_ENOMEM with a message
 * naming the key in err; c is then empty (safe to free). */
AEMP_API int aemp_p1_config_make(aemp_p1_config_t *c, const json_t *merged, const char *profile,
                                 const char *hostname, aemp_random_fn rnd, void *ud, char *err,
                                 size_t errlen);
/* Frees what c holds (the secret is overwritten first) and zeroes it.
 * NULL is allowed. */
AEMP_API void aemp_p1_config_free(aemp_p1_config_t *c);

/* The rc file's path into buf (n bytes): $PERL_ANYEVENT_MP_RC when set,
 * else $HOME/.perl-anyevent-mp. Returns 0, AEMP_ENOENT (neither set) or
 * AEMP_ELIMIT (does not fit). */
AEMP_API int aemp_rc_path(char *buf, size_t n);
/* Reads and parses the rc file at path (borrowed). A file that does not
 * exist gives {"version":1} (what the Perl tool starts from). Returns a new
 * reference, or NULL with "PATH: why" in err (unreadable, larger than
 * AEMP_RC_MAX_FILE, not relaxed JSON, not an object). */
AEMP_API json_t *aemp_rc_load(const char *path, char *err, size_t errlen);
/* Writes rc (borrowed; "version":1 is added when it has no version) with
 * aemp_rc_format to path atomically: a new file in the same directory,
 * mode 0600, flushed, then renamed over path. Returns 0, or AEMP_EIO /
 * AEMP_ENOMEM / AEMP_EINVAL with "PATH: why" in err; path is then
 * untouched. */
AEMP_API int aemp_rc_save(const char *path, const json_t *rc, char *err, size_t errlen);

/* Everything a protocol-1 node needs to start, as 2.02's configure does
 * it: loads the rc file (aemp_rc_path; not with AEMP_RC_NORC), takes
 * profile (NULL: the host name), merges args (borrowed object or NULL)
 * per flags, expands the node id with the host name and the system's
 * CSPRNG. Returns 0 with c filled, or an error code with a message in err
 * (c is then empty). */
AEMP_API int aemp_p1_config_load(aemp_p1_config_t *c, const char *profile, const json_t *args,
                                 unsigned flags, char *err, size_t errlen);

/* Fills the protocol-1 fields of a node configuration from c: protocol,
 * nodeid, binds, seeds, secret, cert, timeout (monitor_timeout),
 * connect_interval and secure; the other fields of nc are left as they are. The
 * pointers are borrowed from c, so c must live until aemp_node_new, which
 * copies them. So a program runs a node as the Perl user configured it:
 *   aemp_p1_config_load(&pc, "myprofile", NULL, 0, err, sizeof err);
 *   aemp_node_config_t nc = {0};
 *   aemp_p1_node_config(&nc, &pc);
 *   node = aemp_node_new(loop, &nc, &e);
 *   aemp_p1_config_free(&pc);
 * Returns 0, or AEMP_EINVAL for a NULL argument. */
AEMP_API int aemp_p1_node_config(aemp_node_config_t *nc, const aemp_p1_config_t *c);
/* == END config == */

/* ===================================================================== */
/* == BEGIN util ==                                                       */
/* Fills buf with len bytes from the operating system's CSPRNG (through
 * OpenSSL). Returns 0 or AEMP_EIO. */
AEMP_API int aemp_random_bytes(void *buf, size_t len);
/* == END util == */

#ifdef __cplusplus
}
#endif
#endif /* AEMP_H */
