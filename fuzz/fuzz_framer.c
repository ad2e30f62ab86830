/*
 * fuzz_framer.c - fuzz target for the JSON stream framer. The first input
 * byte picks the limits and how the caller behaves, the rest is the data
 * phase of a link. The stream is framed twice: handed over whole, and cut
 * into pieces by a generator seeded from the input (optionally dropping
 * the whitespace the framer says may be dropped, and now and then making
 * the caller-bug call the framer must refuse without sticking). Both runs
 * must yield the same texts and the same final error. The region is kept
 * in a buffer of exactly its length, so any read past it is caught. Each
 * text is checked against the decoder: when the rest of the stream from a
 * text's start is one valid container or string within the limits, the
 * framer must have returned exactly that.
 */
#include "fuzz.h"

#include "aemp.h"

typedef struct frame_run {
    size_t (*texts)[2]; /* absolute [start, end) of each text */
    size_t ntexts;
    int err;
    char msg[64];
} frame_run_t;

static const uint8_t framer_ws[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1};

/* Keeps the region in an allocation of exactly its size (ASan then sees
 * any read past it). */
static char *framer_region_set(char *old, const uint8_t *p, size_t n)
{
    free(old);
    char *r = malloc(n ? n : 1);
    if (!r) abort();
    if (n) memcpy(r, p, n);
    return r;
}

static void framer_run(const uint8_t *s, size_t n, size_t max_len, unsigned max_depth,
                       int split, int drop_ws, uint64_t seed, frame_run_t *out)
{
    aemp_framer_t f;
    aemp_framer_init(&f, max_len, max_depth);
    memset(out, 0, sizeof *out);
    out->texts = malloc((n + 1) * sizeof *out->texts);
    if (!out->texts) abort();

    /* region = s[base .. base + rlen): the bytes not yet dropped */
    size_t base = 0, rlen = 0, fed = 0;
    char *region = framer_region_set(NULL, s, 0);
    while (fed < n) {
        size_t chunk = n - fed;
        if (split) {
            uint64_t r = fuzz_next(&seed);
            size_t c = (r & 3) == 0 ? 1 + (r >> 8) % 512 : 1 + (r >> 8) % 7;
            if (c < chunk) chunk = c;
        }
        fed += chunk;
        rlen += chunk;
        region = framer_region_set(region, s + base, rlen);
        for (;;) {
            size_t st = 7, en = 7;
            if (split && f.scanned_ > 0 && (fuzz_next(&seed) & 15) == 0) {
                /* a caller bug: refused, and nothing is disturbed */
                FUZZ_CHECK(aemp_framer_next(&f, region, f.scanned_ - 1, &st, &en) ==
                           AEMP_EINVAL);
            }
            int r = aemp_framer_next(&f, region, rlen, &st, &en);
            if (r < 0) {
                FUZZ_CHECK(r == AEMP_EBADMSG || r == AEMP_ELIMIT);
                FUZZ_CHECK(aemp_framer_error(&f)[0] != 0);
                /* sticky */
                FUZZ_CHECK(aemp_framer_next(&f, region, rlen, &st, &en) == r);
                out->err = r;
                snprintf(out->msg, sizeof out->msg, "%s", aemp_framer_error(&f));
                free(region);
                return;
            }
            if (r == 0) {
                FUZZ_CHECK(st == en);
                FUZZ_CHECK(en == 0 || en == rlen);
                for (size_t i = 0; i < en; i++) FUZZ_CHECK(framer_ws[(uint8_t)region[i]]);
                if (drop_ws && en) {
                    base += en;
                    rlen -= en;
                    region = framer_region_set(region, s + base, rlen);
                }
                break;
            }
            FUZZ_CHECK(r == 1);
            FUZZ_CHECK(st < en && en <= rlen);
            FUZZ_CHECK(!framer_ws[(uint8_t)region[st]]);
            for (size_t i = 0; i < st; i++) FUZZ_CHECK(framer_ws[(uint8_t)region[i]]);
            FUZZ_CHECK(en - st <= (max_len ? max_len : AEMP_DEFAULT_MAX_MESSAGE));
            out->texts[out->ntexts][0] = base + st;
            out->texts[out->ntexts][1] = base + en;
            out->ntexts++;
            base += en;
            rlen -= en;
            region = framer_region_set(region, s + base, rlen);
        }
    }
    free(region);
}

FUZZ_TARGET(framer)
{
    if (size < 1) return 0;
    uint8_t cfg = data[0];
    const uint8_t *s = data + 1;
    size_t n = size - 1;
    unsigned max_depth = cfg & 7;             /* 0: the default, 512 */
    unsigned lsel = (cfg >> 3) & 7;
    size_t max_len = lsel ? (size_t)1 << (2 * lsel) : 0; /* 4 .. 16384, 0: 64 MiB */
    uint64_t seed = fuzz_seed(data, size);

    frame_run_t whole, cut;
    framer_run(s, n, max_len, max_depth, 0, 0, seed, &whole);
    framer_run(s, n, max_len, max_depth, 1, cfg >> 7, seed, &cut);

    FUZZ_CHECK(whole.ntexts == cut.ntexts);
    for (size_t i = 0; i < whole.ntexts; i++) {
        FUZZ_CHECK(whole.texts[i][0] == cut.texts[i][0]);
        FUZZ_CHECK(whole.texts[i][1] == cut.texts[i][1]);
    }
    FUZZ_CHECK(whole.err == cut.err);
    FUZZ_CHECK(!strcmp(whole.msg, cut.msg));

    /* the decoder's view of where each text ends */
    size_t lim = max_len ? max_len : AEMP_DEFAULT_MAX_MESSAGE;
    size_t tend = n;
    while (tend > 0 && framer_ws[s[tend - 1]]) tend--;
    for (size_t i = 0; i < whole.ntexts; i++) {
        size_t a = whole.texts[i][0], b = whole.texts[i][1];
        if (s[a] != '[' && s[a] != '{' && s[a] != '"') continue;
        if (tend - a > lim) continue;
        json_t *v = aemp_json_decode((const char *)s + a, tend - a, max_depth, NULL, 0);
        if (v) {
            FUZZ_CHECK(b == tend);
            json_decref(v);
        }
    }
    /* and a stream that is one such value, framed as a whole, is never
     * refused */
    size_t lead = 0;
    while (lead < n && framer_ws[s[lead]]) lead++;
    if (lead < tend && (s[lead] == '[' || s[lead] == '{' || s[lead] == '"') &&
        tend - lead <= lim) {
        json_t *v = aemp_json_decode((const char *)s + lead, tend - lead, max_depth, NULL, 0);
        if (v) {
            FUZZ_CHECK(whole.ntexts >= 1 && whole.texts[0][0] == lead &&
                       whole.texts[0][1] == tend);
            json_decref(v);
        }
    }
    free(whole.texts);
    free(cut.texts);
    return 0;
}
