/*
 * test_md6.c - tests of md6.c and of `aemp md6sum`: the golden vectors of
 * ../shared/vectors/md6.json through every round loop this CPU can run,
 * random splits of streamed input, argument checks, and the command line
 * tool run as a separate process.
 */
#include "test.h"
#include "aemp_int.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Internal: selects the round loop of an initialised context (0 best,
 * 1 portable, 2 AVX2, 3 AVX-512); AEMP_EINVAL when this CPU lacks it. */
int aemp__md6_set_impl(aemp_md6_ctx_t *ctx, int impl);
const char *aemp__md6_impl_name(const aemp_md6_ctx_t *ctx);

#define N_IMPLS 4

/* ------------------------------------------------------------------ */
/* Helpers */

/* The message of a vector: from its generator, or from msg_hex. */
static unsigned char *vector_msg(const json_t *v, size_t *len)
{
    *len = (size_t)t_jint(v, "msg_len");
    unsigned char *m = t_gen_bytes(t_jstr(v, "msg_gen"), *len);
    if (m) return m;
    size_t n;
    m = t_unhex(t_jstr(v, "msg_hex"), &n);
    if (n != *len) {
        t_fail(__FILE__, __LINE__, "%s: msg_hex has %zu bytes, msg_len %zu",
               t_jstr(v, "id"), n, *len);
        *len = n;
    }
    return m;
}

static void sha256_hex(const unsigned char *p, size_t n, char out[65])
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256(p, n, h);
    t_hex(h, sizeof h, out);
}

/* Streams msg through a context on the given round loop, in one piece.
 * Returns 0, or non-zero when the loop is not available here. */
static int md6_with_impl(int impl, int d, const unsigned char *key,
                         size_t keylen, int L, int r, const unsigned char *msg,
                         size_t len, unsigned char *out)
{
    aemp_md6_ctx_t ctx;
    if (aemp_md6_full_init(&ctx, d, key, keylen, L, r)) return -1;
    if (aemp__md6_set_impl(&ctx, impl)) return 1;
    aemp_md6_update(&ctx, msg, len);
    aemp_md6_final(&ctx, out);
    return 0;
}

/* Runs every entry of one array of md6.json through every available
 * round loop and checks digest_hex and hex. */
static void check_vector_set(const char *set, int standard)
{
    json_t *j = t_load_vectors("vectors/md6.json");
    json_t *arr = json_object_get(j, set);
    REQUIRE(json_array_size(arr) > 0);
    size_t i, count = 0;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *id = t_jstr(v, "id");
        int d = (int)t_jint(v, "d"), L = (int)t_jint(v, "L"), r = (int)t_jint(v, "r");
        size_t len, keylen, dlen;
        unsigned char *msg = vector_msg(v, &len);
        unsigned char *key = t_unhex(t_jstr(v, "key_hex"), &keylen);
        unsigned char *want = t_unhex(t_jstr(v, "digest_hex"), &dlen);
        unsigned char got[AEMP_MD6_MAX_BYTES];
        char hex[2 * AEMP_MD6_MAX_BYTES + 1];

        if (dlen != (size_t)(d + 7) / 8)
            t_fail(__FILE__, __LINE__, "%s: digest_hex has %zu bytes", id, dlen);

        /* the one-shot calls with explicit rounds */
        memset(got, 0xaa, sizeof got);
        CHECK_INT(aemp_md6_full(d, key, keylen, L, r, msg, len, got), 0);
        if (memcmp(got, want, dlen)) {
            t_hex(got, dlen, hex);
            t_fail(__FILE__, __LINE__, "%s: got %s want %s", id, hex,
                   t_jstr(v, "digest_hex"));
        }
        /* the vector's r must be what r = 0 selects, except where the
         * vector is about reduced rounds */
        int def = 40 + d / 4;
        if (keylen && def < 80) def = 80;
        if (r == def) {
            CHECK_INT(aemp_md6_full(d, key, keylen, L, 0, msg, len, got), 0);
            if (memcmp(got, want, dlen))
                t_fail(__FILE__, __LINE__, "%s: r = 0 differs", id);
        }
        if (standard) {
            CHECK(keylen == 0 && L == AEMP_MD6_DEFAULT_L && r == def);
            CHECK_INT(aemp_md6(d, msg, len, got), 0);
            if (memcmp(got, want, dlen))
                t_fail(__FILE__, __LINE__, "%s: aemp_md6 differs", id);
        }
        /* hex: ceil(d/4) digits of the digest */
        t_hex(want, dlen, hex);
        hex[(d + 3) / 4] = 0;
        CHECK_STR(hex, t_jstr(v, "hex"));

        /* and every round loop */
        for (int impl = 1; impl < N_IMPLS; impl++) {
            memset(got, 0xaa, sizeof got);
            if (md6_with_impl(impl, d, key, keylen, L, r, msg, len, got)) continue;
            if (memcmp(got, want, dlen)) {
                t_hex(got, dlen, hex);
                t_fail(__FILE__, __LINE__, "%s (impl %d): got %s want %s", id,
                       impl, hex, t_jstr(v, "digest_hex"));
            }
        }
        count++;
        free(msg);
        free(key);
        free(want);
    }
    CHECK_INT(count, json_array_size(arr));
    json_decref(j);
}

/* ------------------------------------------------------------------ */
/* Known answers */

TEST(md6_vectors)
{
    check_vector_set("vectors", 1);
    /* say which loops this machine could check */
    aemp_md6_ctx_t ctx;
    printf("    round loops checked:");
    for (int impl = 1; impl < N_IMPLS; impl++) {
        aemp_md6_init(&ctx, 256);
        if (aemp__md6_set_impl(&ctx, impl) == 0) printf(" %s", aemp__md6_impl_name(&ctx));
    }
    printf("\n");
}

TEST(md6_full_vectors)
{
    check_vector_set("full_vectors", 0);
}

/* The generators must produce the messages the vectors were made from. */
TEST(md6_generators_reproduce_the_vector_messages)
{
    json_t *j = t_load_vectors("vectors/md6.json");
    static const char *const sets[] = {"vectors", "full_vectors", "bit_vectors"};
    int seen_p7 = 0, seen_seq = 0;
    for (size_t s = 0; s < 3; s++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(j, sets[s]), i, v) {
            size_t len;
            unsigned char *msg = vector_msg(v, &len);
            char h[65];
            sha256_hex(msg, len, h);
            if (strcmp(h, t_jstr(v, "msg_sha256")))
                t_fail(__FILE__, __LINE__, "%s: generated message sha256 %s != %s",
                       t_jstr(v, "id"), h, t_jstr(v, "msg_sha256"));
            /* where the hex is given too, the generator must agree */
            const char *mh = t_jstr(v, "msg_hex");
            if (*mh) {
                char *hex = malloc(2 * len + 1);
                t_hex(msg, len, hex);
                CHECK_STR(hex, mh);
                free(hex);
            }
            seen_p7 += !strcmp(t_jstr(v, "msg_gen"), "p7");
            seen_seq += !strcmp(t_jstr(v, "msg_gen"), "seq251");
            free(msg);
        }
    }
    CHECK(seen_p7 > 0);
    CHECK(seen_seq > 0);
    json_decref(j);
}

/* MD6-256("abc") through the simplest call, on its own so that a failure
 * here names the most basic case. */
TEST(md6_known_abc)
{
    unsigned char out[32];
    char hex[65];
    json_t *j = t_load_vectors("vectors/md6.json");
    size_t i;
    json_t *v;
    int found = 0;
    json_array_foreach(json_object_get(j, "vectors"), i, v) {
        if (strcmp(t_jstr(v, "id"), "md6-abc-d256")) continue;
        found = 1;
        CHECK_INT(aemp_md6(256, "abc", 3, out), 0);
        t_hex(out, 32, hex);
        CHECK_STR(hex, t_jstr(v, "digest_hex"));
    }
    CHECK(found);
    json_decref(j);
}

/* ------------------------------------------------------------------ */
/* Properties */

/* Any split of the input gives the one-shot digest, for several d, L,
 * keys and rounds, on every round loop. */
TEST(md6_random_splits)
{
    static const int ds[] = {1, 17, 160, 256, 384, 512};
    static const int Ls[] = {0, 1, 2, 3, 64};
    static const size_t lens[] = {0, 1, 383, 384, 385, 511, 512, 513, 1536,
                                  2047, 2048, 2049, 8191, 8193, 40000};
    uint64_t seed = 0x6d6436;
    size_t maxlen = 40000;
    unsigned char *msg = malloc(maxlen);
    REQUIRE(msg);
    for (size_t i = 0; i < maxlen; i++) msg[i] = (unsigned char)t_rand(&seed);
    unsigned char key[64];
    for (size_t i = 0; i < sizeof key; i++) key[i] = (unsigned char)t_rand(&seed);

    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++)
        for (size_t li = 0; li < sizeof Ls / sizeof Ls[0]; li++)
            for (size_t ni = 0; ni < sizeof lens / sizeof lens[0]; ni++) {
                int d = ds[di], L = Ls[li];
                size_t len = lens[ni];
                size_t keylen = (di + ni) % 3 == 0 ? 0 : t_rand(&seed) % 65;
                int r = (ni % 4 == 0) ? 0 : 1 + (int)(t_rand(&seed) % 40);
                unsigned char want[64], got[64];
                CHECK_INT(aemp_md6_full(d, key, keylen, L, r, msg, len, want), 0);
                for (int impl = 1; impl < N_IMPLS; impl++) {
                    aemp_md6_ctx_t ctx;
                    CHECK_INT(aemp_md6_full_init(&ctx, d, key, keylen, L, r), 0);
                    if (aemp__md6_set_impl(&ctx, impl)) continue;
                    size_t off = 0;
                    while (off < len) {
                        /* short pieces, and now and then a long one */
                        uint64_t x = t_rand(&seed);
                        size_t n = (x & 7) == 0 ? (size_t)(x >> 8) % 3000
                                                : (size_t)(x >> 8) % 70;
                        if (n > len - off) n = len - off;
                        aemp_md6_update(&ctx, msg + off, n);
                        off += n;
                    }
                    aemp_md6_final(&ctx, got);
                    if (memcmp(got, want, (size_t)(d + 7) / 8))
                        t_fail(__FILE__, __LINE__,
                               "d=%d L=%d keylen=%zu r=%d len=%zu impl=%d differs",
                               d, L, keylen, r, len, impl);
                }
            }
    free(msg);
}

/* The SIMD round loops agree with the portable one for every round
 * count, also the largest. */
TEST(md6_impls_agree)
{
    uint64_t seed = 42;
    unsigned char msg[3000];
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (unsigned char)t_rand(&seed);
    for (int r = 1; r <= 255; r += (r < 20 ? 1 : 13)) {
        unsigned char want[64], got[64];
        size_t len = t_rand(&seed) % sizeof msg;
        int d = 1 + (int)(t_rand(&seed) % 512);
        CHECK_INT(md6_with_impl(1, d, NULL, 0, 64, r, msg, len, want), 0);
        for (int impl = 2; impl < N_IMPLS; impl++) {
            if (md6_with_impl(impl, d, NULL, 0, 64, r, msg, len, got)) continue;
            if (memcmp(got, want, (size_t)(d + 7) / 8))
                t_fail(__FILE__, __LINE__, "r=%d d=%d impl=%d differs", r, d, impl);
        }
    }
    CHECK_INT(md6_with_impl(1, 256, NULL, 0, 64, 255, msg, 100, msg + 2900), 0);
}

TEST(md6_impl_selection)
{
    aemp_md6_ctx_t ctx;
    CHECK_INT(aemp_md6_init(&ctx, 256), 0);
    CHECK_INT(aemp__md6_set_impl(&ctx, 1), 0);
    CHECK_STR(aemp__md6_impl_name(&ctx), "portable");
    CHECK_INT(aemp__md6_set_impl(&ctx, 0), 0);
    CHECK(strcmp(aemp__md6_impl_name(&ctx), "best") != 0);
    CHECK_INT(aemp__md6_set_impl(&ctx, 99), AEMP_EINVAL);
    CHECK_INT(aemp__md6_set_impl(&ctx, -1), AEMP_EINVAL);
    printf("    md6 round loop here: %s\n", aemp__md6_impl_name(&ctx));
}

/* The context can live anywhere and be reused after a new init. */
TEST(md6_reuse_and_finished)
{
    aemp_md6_ctx_t *ctx = malloc(sizeof *ctx);
    REQUIRE(ctx);
    unsigned char a[32], b[32], z[32] = {0};
    CHECK_INT(aemp_md6(256, "abc", 3, a), 0);
    CHECK_INT(aemp_md6_init(ctx, 256), 0);
    aemp_md6_update(ctx, "ab", 2);
    aemp_md6_update(ctx, NULL, 0);
    aemp_md6_update(ctx, "c", 1);
    aemp_md6_final(ctx, b);
    CHECK_MEM(b, a, 32);
    /* a finished context ignores input and answers zeros */
    aemp_md6_update(ctx, "x", 1);
    aemp_md6_final(ctx, b);
    CHECK_MEM(b, z, 32);
    CHECK_INT(aemp_md6_init(ctx, 256), 0);
    aemp_md6_update(ctx, "abc", 3);
    aemp_md6_final(ctx, b);
    CHECK_MEM(b, a, 32);
    free(ctx);
}

TEST(md6_einval)
{
    aemp_md6_ctx_t ctx;
    unsigned char out[64], key[65] = {0};
    CHECK_INT(aemp_md6_init(NULL, 256), AEMP_EINVAL);
    CHECK_INT(aemp_md6_init(&ctx, 0), AEMP_EINVAL);
    CHECK_INT(aemp_md6_init(&ctx, 513), AEMP_EINVAL);
    CHECK_INT(aemp_md6_init(&ctx, -5), AEMP_EINVAL);
    CHECK_INT(aemp_md6_init(&ctx, 1), 0);
    CHECK_INT(aemp_md6_init(&ctx, 512), 0);
    CHECK_INT(aemp_md6_full_init(&ctx, 256, key, 65, 64, 0), AEMP_EINVAL);
    CHECK_INT(aemp_md6_full_init(&ctx, 256, key, 64, 64, 0), 0);
    CHECK_INT(aemp_md6_full_init(&ctx, 256, NULL, 1, 64, 0), AEMP_EINVAL);
    CHECK_INT(aemp_md6_full_init(&ctx, 256, NULL, 0, 64, 0), 0);
    CHECK_INT(aemp_md6_full_init(&ctx, 256, NULL, 0, -1, 0), AEMP_EINVAL);
    CHECK_INT(aemp_md6_full_init(&ctx, 256, NULL, 0, 65, 0), AEMP_EINVAL);
    CHECK_INT(aemp_md6_full_init(&ctx, 256, NULL, 0, 0, 0), 0);
    CHECK_INT(aemp_md6_full_init(&ctx, 256, NULL, 0, 64, -1), AEMP_EINVAL);
    CHECK_INT(aemp_md6_full_init(&ctx, 256, NULL, 0, 64, 256), AEMP_EINVAL);
    CHECK_INT(aemp_md6_full_init(&ctx, 256, NULL, 0, 64, 255), 0);
    CHECK_INT(aemp_md6(0, "abc", 3, out), AEMP_EINVAL);
    CHECK_INT(aemp_md6(256, NULL, 3, out), AEMP_EINVAL);
    CHECK_INT(aemp_md6(256, "abc", 3, NULL), AEMP_EINVAL);
    CHECK_INT(aemp_md6(256, NULL, 0, out), 0);
    CHECK_INT(aemp_md6_full(256, key, 65, 64, 0, "abc", 3, out), AEMP_EINVAL);
    CHECK_INT(aemp_md6_full(256, NULL, 0, 64, 300, "abc", 3, out), AEMP_EINVAL);
}

/* ------------------------------------------------------------------ */
/* `aemp md6sum`, run as a process */

typedef struct {
    int status; /* exit status, or -1 when it did not exit normally */
    char out[8192];
    char err[8192];
} run_t;

static void slurp(int fd, char *buf, size_t size)
{
    size_t n = 0;
    ssize_t k;
    lseek(fd, 0, SEEK_SET);
    while (n + 1 < size && (k = read(fd, buf + n, size - 1 - n)) > 0) n += (size_t)k;
    buf[n] = 0;
}

static int temp_file(char *path, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, size, "%s/aemp-md6-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkstemp(path);
}

/* Runs the aemp binary with args (NULL-terminated, without argv[0]),
 * stdin from in_path (or /dev/null), capturing both output streams. */
static void run_aemp(run_t *res, const char *in_path, const char *const *args)
{
    char op[256], ep[256];
    int ofd = temp_file(op, sizeof op), efd = temp_file(ep, sizeof ep);
    const char *argv[32];
    size_t n = 0;
    argv[n++] = t_aemp_bin();
    while (*args && n < 31) argv[n++] = *args++;
    argv[n] = NULL;
    res->status = -1;
    res->out[0] = res->err[0] = 0;
    if (ofd < 0 || efd < 0) {
        t_fail(__FILE__, __LINE__, "mkstemp failed");
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int ifd = open(in_path ? in_path : "/dev/null", O_RDONLY);
        if (ifd < 0) _exit(126);
        dup2(ifd, 0);
        dup2(ofd, 1);
        dup2(efd, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    if (pid > 0)
        while (waitpid(pid, &st, 0) < 0) {}
    if (pid > 0 && WIFEXITED(st)) res->status = WEXITSTATUS(st);
    slurp(ofd, res->out, sizeof res->out);
    slurp(efd, res->err, sizeof res->err);
    close(ofd);
    close(efd);
    unlink(op);
    unlink(ep);
}

/* Writes bytes to a new temporary file; its name goes to path. */
static void write_temp(char *path, size_t size, const void *p, size_t n)
{
    int fd = temp_file(path, size);
    if (fd < 0 || write(fd, p, n) != (ssize_t)n)
        t_fail(__FILE__, __LINE__, "cannot write %s", path);
    if (fd >= 0) close(fd);
}

/* The "hex" of the vector with this id. */
static const char *vector_hex(json_t *j, const char *set, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, set), i, v)
        if (!strcmp(t_jstr(v, "id"), id)) return t_jstr(v, "hex");
    t_fail(__FILE__, __LINE__, "no vector %s", id);
    return "";
}

TEST(md6_cli_files)
{
    json_t *j = t_load_vectors("vectors/md6.json");
    char abc[256], seq[256], want[1024];
    unsigned char s3[3] = {0, 1, 2};
    write_temp(abc, sizeof abc, "abc", 3);
    write_temp(seq, sizeof seq, s3, 3);
    run_t *r = malloc(sizeof *r);
    REQUIRE(r);

    /* default: 256 bits, like sha256sum's layout */
    run_aemp(r, NULL, (const char *[]){"md6sum", abc, seq, NULL});
    CHECK_INT(r->status, 0);
    snprintf(want, sizeof want, "%s  %s\n%s  %s\n",
             vector_hex(j, "vectors", "md6-abc-d256"), abc,
             vector_hex(j, "vectors", "md6-seq251-d256-len3"), seq);
    CHECK_STR(r->out, want);
    CHECK_STR(r->err, "");

    /* odd sizes print ceil(d/4) digits */
    run_aemp(r, NULL, (const char *[]){"md6sum", "-d", "17", abc, NULL});
    snprintf(want, sizeof want, "%s  %s\n", vector_hex(j, "vectors", "md6-abc-d17"), abc);
    CHECK_STR(r->out, want);
    run_aemp(r, NULL, (const char *[]){"md6sum", "-d1", abc, NULL});
    snprintf(want, sizeof want, "%s  %s\n", vector_hex(j, "vectors", "md6-abc-d1"), abc);
    CHECK_STR(r->out, want);

    /* key, mode and rounds */
    run_aemp(r, NULL, (const char *[]){"md6sum", "-d", "224", "-K", "secret key", seq, NULL});
    snprintf(want, sizeof want, "%s  %s\n",
             vector_hex(j, "full_vectors", "md6full-seq251-d224-len3-key10-L64-r96"), seq);
    CHECK_STR(r->out, want);
    run_aemp(r, NULL, (const char *[]){"md6sum", "-L", "0", "-d", "512", seq, NULL});
    snprintf(want, sizeof want, "%s  %s\n",
             vector_hex(j, "full_vectors", "md6full-seq251-d512-len3-key0-L0-r168"), seq);
    CHECK_STR(r->out, want);
    run_aemp(r, NULL, (const char *[]){"md6sum", "-r", "5", seq, NULL});
    snprintf(want, sizeof want, "%s  %s\n",
             vector_hex(j, "full_vectors", "md6full-seq251-d256-len3-key0-L64-r5"), seq);
    CHECK_STR(r->out, want);

    /* stdin, without a name or as "-" */
    run_aemp(r, abc, (const char *[]){"md6sum", NULL});
    snprintf(want, sizeof want, "%s  -\n", vector_hex(j, "vectors", "md6-abc-d256"));
    CHECK_STR(r->out, want);
    run_aemp(r, abc, (const char *[]){"md6sum", "-", NULL});
    CHECK_STR(r->out, want);
    CHECK_INT(r->status, 0);

    unlink(abc);
    unlink(seq);
    free(r);
    json_decref(j);
}

TEST(md6_cli_missing_file)
{
    json_t *j = t_load_vectors("vectors/md6.json");
    char abc[256], missing[300], want[1024];
    write_temp(abc, sizeof abc, "abc", 3);
    snprintf(missing, sizeof missing, "%s.missing", abc);
    run_t *r = malloc(sizeof *r);
    REQUIRE(r);
    run_aemp(r, NULL, (const char *[]){"md6sum", missing, abc, NULL});
    CHECK_INT(r->status, 1);
    /* the other file is still hashed */
    snprintf(want, sizeof want, "%s  %s\n", vector_hex(j, "vectors", "md6-abc-d256"), abc);
    CHECK_STR(r->out, want);
    snprintf(want, sizeof want, "aemp md6sum: %s: No such file or directory\n", missing);
    CHECK_STR(r->err, want);
    unlink(abc);
    free(r);
    json_decref(j);
}

TEST(md6_cli_bad_usage)
{
    run_t *r = malloc(sizeof *r);
    REQUIRE(r);
    static const char *const bad[][4] = {
        {"md6sum", "-x", NULL},
        {"md6sum", "-d", "0", NULL},
        {"md6sum", "-d", "513", NULL},
        {"md6sum", "-d", "12x", NULL},
        {"md6sum", "-L", "65", NULL},
        {"md6sum", "-r", "256", NULL},
        {"md6sum", "-K", "0123456789012345678901234567890123456789012345678901234567890123456789", NULL},
        {"md6sum", "-d", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_aemp(r, NULL, (const char *const *)bad[i]);
        if (r->status != 1) t_fail(__FILE__, __LINE__, "%s %s: status %d", bad[i][1],
                                   bad[i][2] ? bad[i][2] : "", r->status);
        CHECK(strncmp(r->err, "aemp md6sum: ", 13) == 0);
        CHECK_STR(r->out, "");
    }
    run_aemp(r, NULL, (const char *[]){"md6sum", "--help", NULL});
    CHECK_INT(r->status, 0);
    CHECK(strstr(r->out, "usage: aemp md6sum") != NULL);
    CHECK_STR(r->err, "");
    free(r);
}
