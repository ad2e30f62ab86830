/*
 * md6.c - the MD6 hash function (Rivest et al., "The MD6 hash function",
 * SHA-3 submission, 2008): the compression function, with a portable round
 * loop and SIMD ones picked at run time, and the mode of operation (a tree
 * of 4-to-1 nodes for levels 1..L, a sequential chain above level L), fed
 * with bytes in pieces of any size.
 *
 * Streaming works level by level. Each level keeps one pending block; a
 * full block is only compressed once more input for that level arrives,
 * because until then it might be the level's only block, which is the
 * root and needs the final-node flag z. The finished chaining value of a
 * block moves up to the next level's pending block.
 */
#include "aemp_int.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define MD6_X86 1
#include <immintrin.h>
#else
#define MD6_X86 0
#endif

/* Sizes in 64-bit words, as the specification names them. */
enum {
    Q_WORDS = 15, /* constant Q */
    K_WORDS = 8,  /* key */
    N_WORDS = 89, /* compression input: Q, K, U, V, B */
    C_WORDS = 16, /* chaining value (compression output) */
    B_WORDS = 64, /* data block */
    B_OFF = Q_WORDS + K_WORDS + 2, /* where B starts in the input */
    MAX_ROUNDS = 255,
    PAR_BYTES = B_WORDS * 8,             /* tree node payload: 512 bytes */
    SEQ_BYTES = (B_WORDS - C_WORDS) * 8, /* sequential payload: 384 bytes */
    CV_BYTES = C_WORDS * 8,
};

/* Enough levels for any input a 64-bit byte count can describe: 2^55
 * leaves shrink by 4 per level, so level 29 has a single node. One more
 * slot for the sequential level when L is below that. */
#define MD6_LEVELS 30

/* The fractional part of sqrt(6), 960 bits, as the specification
 * defines Q. */
static const uint64_t md6_q[Q_WORDS] = {
    0x7311c2812425cfa0ULL, 0x6432286434aac8e7ULL, 0xb60450e9ef68b7c1ULL,
    0xe8fb23908d9f06f1ULL, 0xdd2e76cba691e5bfULL, 0x0cd0d63b2c30bc41ULL,
    0x1f8ccf6823058f8aULL, 0x54e5ed5b88e3775dULL, 0x4ad12aae0a6d6031ULL,
    0x3e7f16bb88222e0dULL, 0x8af8671d3fb50c2cULL, 0x995ad1178bd25c31ULL,
    0xc878c1dd04c4b633ULL, 0x3b72066c7a1552acULL, 0x0d6f3522631effcbULL,
};

#define MD6_S0 0x0123456789abcdefULL
#define MD6_SMASK 0x7311c2812425cfa0ULL

/* Tap positions t0..t5 (t5 = n). The nearest is 17 words back, so the 16
 * steps of a round never depend on each other: the SIMD loops compute a
 * whole round at once. */
#define T0 17
#define T1 18
#define T2 21
#define T3 31
#define T4 67
#define T5 89

/* Which round loop a context uses (see aemp__md6_set_impl). */
enum { IMPL_BEST = 0, IMPL_PORTABLE = 1, IMPL_AVX2 = 2, IMPL_AVX512 = 3 };

typedef void (*rounds_fn)(const uint64_t *in, int r, uint64_t *out);

/* The context behind aemp_md6_ctx_t. Buffers are not cleared at init:
 * the fill counts say what is live, and padding is written when a block
 * is compressed, so starting a hash stays cheap. */
typedef struct md6_state {
    uint64_t key[K_WORDS];
    /* pending blocks of levels 2..MD6_LEVELS (slot ell-2), as words */
    uint64_t lv[MD6_LEVELS - 1][B_WORDS];
    /* the sequential level's chaining value */
    uint64_t chain[C_WORDS];
    /* nodes already compressed on each level (slot ell-1) */
    uint64_t idx[MD6_LEVELS];
    /* bytes in each level's pending block (slot ell-1) */
    uint32_t fill[MD6_LEVELS];
    /* the pending block of level 1, as the message bytes */
    unsigned char msg[PAR_BYTES];
    uint32_t magic;
    int d, L, r, keylen, impl;
} md6_state_t;

_Static_assert(sizeof(md6_state_t) <= sizeof(aemp_md6_ctx_t),
               "aemp_md6_ctx_t is too small for md6_state_t");
_Static_assert(_Alignof(md6_state_t) <= _Alignof(aemp_md6_ctx_t),
               "aemp_md6_ctx_t is not aligned enough for md6_state_t");

/* magic: a live context, and one that aemp_md6_final has finished */
#define MD6_MAGIC 0x6d643621u
#define MD6_DONE 0x6d643644u

/* Internal entry points for the tests and the benchmark (not in aemp.h:
 * they expose how the library is built, not what it does). */
int aemp__md6_set_impl(aemp_md6_ctx_t *ctx, int impl);
const char *aemp__md6_impl_name(const aemp_md6_ctx_t *ctx);

/* ------------------------------------------------------------------ */
/* Round loops. Each computes the 16r words that follow the 89 input words
 * and writes the last 16 of them (the chaining value) to out. */

static inline uint64_t next_s(uint64_t s)
{
    return (s << 1 | s >> 63) ^ (s & MD6_SMASK);
}

static void rounds_portable(const uint64_t *in, int r, uint64_t *out)
{
    uint64_t A[N_WORDS + 16 * MAX_ROUNDS];
    uint64_t s = MD6_S0;
    uint64_t *a = A + N_WORDS;
    memcpy(A, in, N_WORDS * sizeof *A);
    for (int j = 0; j < r; j++, a += 16) {
#define STEP(k, rs, ls)                                                     \
    do {                                                                    \
        uint64_t x = s ^ a[(k) - T5] ^ a[(k) - T0];                         \
        x ^= (a[(k) - T1] & a[(k) - T2]) ^ (a[(k) - T3] & a[(k) - T4]);     \
        x ^= x >> (rs);                                                     \
        a[k] = x ^ (x << (ls));                                             \
    } while (0)
        STEP(0, 10, 11);
        STEP(1, 5, 24);
        STEP(2, 13, 9);
        STEP(3, 10, 16);
        STEP(4, 11, 15);
        STEP(5, 12, 9);
        STEP(6, 2, 27);
        STEP(7, 7, 15);
        STEP(8, 14, 6);
        STEP(9, 15, 2);
        STEP(10, 7, 29);
        STEP(11, 13, 8);
        STEP(12, 11, 15);
        STEP(13, 7, 5);
        STEP(14, 6, 31);
        STEP(15, 12, 9);
#undef STEP
        s = next_s(s);
    }
    memcpy(out, a - C_WORDS, C_WORDS * sizeof *out);
}

#if MD6_X86
/* A round as four vectors of four steps; the per-step shift amounts
 * become per-lane shift vectors. */
__attribute__((target("avx2"))) static void rounds_avx2(const uint64_t *in, int r,
                                                        uint64_t *out)
{
    const __m256i r0 = _mm256_setr_epi64x(10, 5, 13, 10);
    const __m256i r1 = _mm256_setr_epi64x(11, 12, 2, 7);
    const __m256i r2 = _mm256_setr_epi64x(14, 15, 7, 13);
    const __m256i r3 = _mm256_setr_epi64x(11, 7, 6, 12);
    const __m256i l0 = _mm256_setr_epi64x(11, 24, 9, 16);
    const __m256i l1 = _mm256_setr_epi64x(15, 9, 27, 15);
    const __m256i l2 = _mm256_setr_epi64x(6, 2, 29, 8);
    const __m256i l3 = _mm256_setr_epi64x(15, 5, 31, 9);
    uint64_t A[N_WORDS + 16 * MAX_ROUNDS];
    uint64_t s = MD6_S0;
    uint64_t *a = A + N_WORDS;
    memcpy(A, in, N_WORDS * sizeof *A);
    for (int j = 0; j < r; j++, a += 16) {
        const __m256i sv = _mm256_set1_epi64x((long long)s);
#define LD(k, t) _mm256_loadu_si256((const __m256i *)(a + (k) - (t)))
#define VSTEP(k, rv, lv)                                                    \
    do {                                                                    \
        __m256i x = _mm256_xor_si256(sv, LD(k, T5));                        \
        x = _mm256_xor_si256(x, LD(k, T0));                                 \
        x = _mm256_xor_si256(x, _mm256_and_si256(LD(k, T1), LD(k, T2)));    \
        x = _mm256_xor_si256(x, _mm256_and_si256(LD(k, T3), LD(k, T4)));    \
        x = _mm256_xor_si256(x, _mm256_srlv_epi64(x, rv));                  \
        x = _mm256_xor_si256(x, _mm256_sllv_epi64(x, lv));                  \
        _mm256_storeu_si256((__m256i *)(a + (k)), x);                       \
    } while (0)
        VSTEP(0, r0, l0);
        VSTEP(4, r1, l1);
        VSTEP(8, r2, l2);
        VSTEP(12, r3, l3);
#undef VSTEP
#undef LD
        s = next_s(s);
    }
    memcpy(out, a - C_WORDS, C_WORDS * sizeof *out);
}

/* A round as two vectors of eight steps, with the last 96 words held in
 * twelve registers instead of memory: reading the taps back from memory
 * right after storing them stalls on store forwarding, so each tap is cut
 * out of two neighbouring registers (valignq) instead. w[k] holds words
 * i-96+8k .. i-89+8k for the round that starts at word i. */
__attribute__((target("avx512f"))) static void rounds_avx512(const uint64_t *in,
                                                            int r, uint64_t *out)
{
    const __m512i r0 = _mm512_setr_epi64(10, 5, 13, 10, 11, 12, 2, 7);
    const __m512i r1 = _mm512_setr_epi64(14, 15, 7, 13, 11, 7, 6, 12);
    const __m512i l0 = _mm512_setr_epi64(11, 24, 9, 16, 15, 9, 27, 15);
    const __m512i l1 = _mm512_setr_epi64(6, 2, 29, 8, 15, 5, 31, 9);
    /* the first round starts at word 89: the window begins 7 words before
     * the input, words no tap ever reaches */
    uint64_t first[96] = {0};
    memcpy(first + 7, in, N_WORDS * sizeof *in);
    __m512i w0 = _mm512_loadu_si512(first), w1 = _mm512_loadu_si512(first + 8),
            w2 = _mm512_loadu_si512(first + 16), w3 = _mm512_loadu_si512(first + 24),
            w4 = _mm512_loadu_si512(first + 32), w5 = _mm512_loadu_si512(first + 40),
            w6 = _mm512_loadu_si512(first + 48), w7 = _mm512_loadu_si512(first + 56),
            w8 = _mm512_loadu_si512(first + 64), w9 = _mm512_loadu_si512(first + 72),
            w10 = _mm512_loadu_si512(first + 80), w11 = _mm512_loadu_si512(first + 88);
    uint64_t s = MD6_S0;
    for (int j = 0; j < r; j++) {
        const __m512i sv = _mm512_set1_epi64((long long)s);
        /* Tap t of the vector at offset o sits 96 + o - t words into the
         * window. Ternary logic: 0x96 = a ^ b ^ c, 0x78 = a ^ (b & c).
         * The taps from the last round (17, 18, 21) come in last, since
         * they are on the critical path. */
#define TAP(hi, lo, sh) _mm512_alignr_epi64(hi, lo, sh)
#define VSTEP(n, t89, t67, t31, t21, t18, t17, rv, lv)                      \
    do {                                                                    \
        __m512i u = _mm512_ternarylogic_epi64(                              \
            sv, t89, _mm512_and_si512(t31, t67), 0x96);                     \
        u = _mm512_ternarylogic_epi64(u, t18, t21, 0x78);                   \
        u = _mm512_xor_si512(u, t17);                                       \
        u = _mm512_xor_si512(u, _mm512_srlv_epi64(u, rv));                  \
        n = _mm512_xor_si512(u, _mm512_sllv_epi64(u, lv));                  \
    } while (0)
        __m512i n0, n1;
        /* o = 0: 89 -> 7 (w0/w1, 7), 67 -> 29 (w3/w4, 5), 31 -> 65 (w8/w9, 1),
         * 21 -> 75 (w9/w10, 3), 18 -> 78 (w9/w10, 6), 17 -> 79 (w9/w10, 7) */
        VSTEP(n0, TAP(w1, w0, 7), TAP(w4, w3, 5), TAP(w9, w8, 1),
              TAP(w10, w9, 3), TAP(w10, w9, 6), TAP(w10, w9, 7), r0, l0);
        /* o = 8: every position 8 further on */
        VSTEP(n1, TAP(w2, w1, 7), TAP(w5, w4, 5), TAP(w10, w9, 1),
              TAP(w11, w10, 3), TAP(w11, w10, 6), TAP(w11, w10, 7), r1, l1);
#undef VSTEP
#undef TAP
        w0 = w2; w1 = w3; w2 = w4; w3 = w5; w4 = w6; w5 = w7;
        w6 = w8; w7 = w9; w8 = w10; w9 = w11; w10 = n0; w11 = n1;
        s = next_s(s);
    }
    _mm512_storeu_si512(out, w10);
    _mm512_storeu_si512(out + 8, w11);
}
#endif

static rounds_fn impl_fn(int impl)
{
    switch (impl) {
#if MD6_X86
    case IMPL_AVX2: return rounds_avx2;
    case IMPL_AVX512: return rounds_avx512;
#endif
    default: return rounds_portable;
    }
}

static const char *const impl_names[] = {"best", "portable", "avx2", "avx512"};

/* Whether this CPU (and build) can run impl. A pure function of the CPU
 * feature bits, so there is no global state to set up or race on. */
static int impl_available(int impl)
{
    switch (impl) {
    case IMPL_PORTABLE: return 1;
#if MD6_X86
    case IMPL_AVX2: return __builtin_cpu_supports("avx2");
    case IMPL_AVX512: return __builtin_cpu_supports("avx512f");
#endif
    default: return 0;
    }
}

static int best_impl(void)
{
    if (impl_available(IMPL_AVX512)) return IMPL_AVX512;
    if (impl_available(IMPL_AVX2)) return IMPL_AVX2;
    return IMPL_PORTABLE;
}

/* ------------------------------------------------------------------ */
/* Mode of operation. */

static inline uint64_t load_be64(const unsigned char *p)
{
    return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
           (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
           (uint64_t)p[6] << 8 | (uint64_t)p[7];
}

static inline void store_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}

/* Big-endian words from n bytes, zero-padded to nwords words. */
static void bytes_to_words(uint64_t *w, size_t nwords, const unsigned char *p,
                           size_t n)
{
    size_t full = n / 8, k;
    for (k = 0; k < full; k++) w[k] = load_be64(p + 8 * k);
    if (n % 8) {
        unsigned char tail[8] = {0};
        memcpy(tail, p + 8 * full, n % 8);
        w[k++] = load_be64(tail);
    }
    for (; k < nwords; k++) w[k] = 0;
}

static int is_seq(const md6_state_t *st, int ell)
{
    return ell == st->L + 1;
}

/* Compresses level ell's pending block (or, for level 1, a whole block
 * read straight from the caller's data when direct is not NULL) with
 * final-node flag z, and leaves the chaining value in out. */
static void compress_level(md6_state_t *st, int ell, int z,
                           const unsigned char *direct, uint64_t out[C_WORDS])
{
    uint64_t A[N_WORDS];
    int seq = is_seq(st, ell);
    size_t cap = seq ? SEQ_BYTES : PAR_BYTES;
    size_t fill = direct ? cap : st->fill[ell - 1];
    uint64_t *b = A + B_OFF;

    memcpy(A, md6_q, sizeof md6_q);
    memcpy(A + Q_WORDS, st->key, sizeof st->key);
    if (seq) {
        memcpy(b, st->chain, CV_BYTES);
        b += C_WORDS;
    }
    size_t nwords = cap / 8;
    if (ell == 1) {
        bytes_to_words(b, nwords, direct ? direct : st->msg, fill);
    } else {
        memcpy(b, st->lv[ell - 2], fill);
        memset((char *)b + fill, 0, cap - fill);
    }

    uint64_t p = (uint64_t)(cap - fill) * 8; /* padding bits */
    A[Q_WORDS + K_WORDS] = (uint64_t)ell << 56 | st->idx[ell - 1];
    A[Q_WORDS + K_WORDS + 1] = (uint64_t)st->r << 48 | (uint64_t)st->L << 40 |
                               (uint64_t)z << 36 | p << 20 |
                               (uint64_t)st->keylen << 12 | (uint64_t)st->d;

    impl_fn(st->impl)(A, st->r, out);

    st->idx[ell - 1]++;
    if (!direct) st->fill[ell - 1] = 0;
    if (seq) memcpy(st->chain, out, CV_BYTES);
}

/* Adds a chaining value from level ell-1 to level ell (ell >= 2). A full
 * pending block is compressed first: now it is known not to be last. */
static void push_level(md6_state_t *st, int ell, const uint64_t cv[C_WORDS])
{
    size_t cap = is_seq(st, ell) ? SEQ_BYTES : PAR_BYTES;
    if (st->fill[ell - 1] == cap) {
        uint64_t up[C_WORDS];
        compress_level(st, ell, 0, NULL, up);
        if (!is_seq(st, ell)) push_level(st, ell + 1, up);
    }
    memcpy((char *)st->lv[ell - 2] + st->fill[ell - 1], cv, CV_BYTES);
    st->fill[ell - 1] += CV_BYTES;
}

/* Level 1's block was compressed with more input to come: pass its value
 * on (in sequential mode it stays as the chaining value). */
static void level1_done(md6_state_t *st, const uint64_t cv[C_WORDS])
{
    if (st->L > 0) push_level(st, 2, cv);
}

int aemp_md6_full_init(aemp_md6_ctx_t *ctx, int d, const void *key,
                       size_t keylen, int L, int r)
{
    if (!ctx || d < 1 || d > 512 || keylen > 64 || (!key && keylen) ||
        L < 0 || L > 64 || r < 0 || r > MAX_ROUNDS)
        return AEMP_EINVAL;
    md6_state_t *st = (md6_state_t *)ctx;
    st->d = d;
    st->L = L;
    st->keylen = (int)keylen;
    if (r == 0) {
        r = 40 + d / 4;
        if (keylen > 0 && r < 80) r = 80;
    }
    st->r = r;
    bytes_to_words(st->key, K_WORDS, key, keylen);
    memset(st->idx, 0, sizeof st->idx);
    memset(st->fill, 0, sizeof st->fill);
    memset(st->chain, 0, sizeof st->chain);
    st->impl = best_impl();
    st->magic = MD6_MAGIC;
    return 0;
}

int aemp_md6_init(aemp_md6_ctx_t *ctx, int d)
{
    return aemp_md6_full_init(ctx, d, NULL, 0, AEMP_MD6_DEFAULT_L, 0);
}

int aemp__md6_set_impl(aemp_md6_ctx_t *ctx, int impl)
{
    md6_state_t *st = (md6_state_t *)ctx;
    if (!ctx || st->magic != MD6_MAGIC) return AEMP_EINVAL;
    if (impl == IMPL_BEST) impl = best_impl();
    if (!impl_available(impl)) return AEMP_EINVAL;
    st->impl = impl;
    return 0;
}

const char *aemp__md6_impl_name(const aemp_md6_ctx_t *ctx)
{
    const md6_state_t *st = (const md6_state_t *)ctx;
    if (!ctx || st->magic != MD6_MAGIC) return "none";
    return impl_names[st->impl];
}

void aemp_md6_update(aemp_md6_ctx_t *ctx, const void *data, size_t len)
{
    md6_state_t *st = (md6_state_t *)ctx;
    const unsigned char *p = data;
    if (!ctx || st->magic != MD6_MAGIC || !len) return;
    size_t cap = is_seq(st, 1) ? SEQ_BYTES : PAR_BYTES;
    uint64_t cv[C_WORDS];
    while (len) {
        if (st->fill[0] == cap) {
            compress_level(st, 1, 0, NULL, cv);
            level1_done(st, cv);
        }
        if (st->fill[0] == 0 && len > cap) {
            /* more than a block: compress it where it lies */
            compress_level(st, 1, 0, p, cv);
            level1_done(st, cv);
            p += cap;
            len -= cap;
            continue;
        }
        size_t n = cap - st->fill[0];
        if (n > len) n = len;
        memcpy(st->msg + st->fill[0], p, n);
        st->fill[0] += (uint32_t)n;
        p += n;
        len -= n;
    }
}

void aemp_md6_final(aemp_md6_ctx_t *ctx, unsigned char *out)
{
    md6_state_t *st = (md6_state_t *)ctx;
    if (!ctx || !out) return;
    if (st->magic != MD6_MAGIC) {
        /* already finished: a fixed answer rather than stale bytes */
        if (st->magic == MD6_DONE) memset(out, 0, (size_t)(st->d + 7) / 8);
        return;
    }
    uint64_t cv[C_WORDS];
    /* Finish each level bottom-up. A level that never compressed a block
     * before holds the only node of its level: that is the root. */
    for (int ell = 1;; ell++) {
        if (is_seq(st, ell)) {
            compress_level(st, ell, 1, NULL, cv);
            break;
        }
        int z = st->idx[ell - 1] == 0;
        compress_level(st, ell, z, NULL, cv);
        if (z) break;
        push_level(st, ell + 1, cv);
    }

    /* The digest is the last d bits of the 1024-bit value, left-aligned. */
    unsigned char bytes[CV_BYTES];
    for (int k = 0; k < C_WORDS; k++) store_be64(bytes + 8 * k, cv[k]);
    int d = st->d, nbytes = (d + 7) / 8, shift = (8 - d % 8) % 8;
    const unsigned char *src = bytes + CV_BYTES - nbytes;
    for (int k = 0; k < nbytes; k++) {
        unsigned v = (unsigned)src[k] << shift;
        if (shift && k + 1 < nbytes) v |= src[k + 1] >> (8 - shift);
        out[k] = (unsigned char)v;
    }
    st->magic = MD6_DONE;
}

int aemp_md6_full(int d, const void *key, size_t keylen, int L, int r,
                  const void *data, size_t len, unsigned char *out)
{
    aemp_md6_ctx_t ctx;
    if (!out || (!data && len)) return AEMP_EINVAL;
    int rc = aemp_md6_full_init(&ctx, d, key, keylen, L, r);
    if (rc) return rc;
    aemp_md6_update(&ctx, data, len);
    aemp_md6_final(&ctx, out);
    return 0;
}

int aemp_md6(int d, const void *data, size_t len, unsigned char *out)
{
    return aemp_md6_full(d, NULL, 0, AEMP_MD6_DEFAULT_L, 0, data, len, out);
}
