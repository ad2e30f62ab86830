/*
 * fuzz_noderef.c - fuzz target for noderef handling: splitting a noderef
 * into endpoints (aemp__split, aemp__join), parsing numeric endpoints
 * (aemp__ep_parse, which reads noderefs that peers send in greetings)
 * and the resolver (aemp_resolve). The input is a noderef up to its first
 * NUL byte. A parsed endpoint must format back to a form that parses to
 * the same address. The resolver is only called when no part of the input
 * can make it ask a name service: every part must be an explicit numeric
 * address with a port (the empty part and a bare port mean this host's
 * name, which may be looked up), so the fuzzer never touches DNS.
 */
#include "fuzz.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "addr.h"
#include "aemp.h"

/* Formats then parses again: the same address must come back. */
static void nr_check_endpoint(const char *ep)
{
    struct sockaddr_storage sa, sb;
    socklen_t la = 0, lb = 0;
    if (aemp__ep_parse(ep, &sa, &la) != 0) return;
    FUZZ_CHECK(sa.ss_family == AF_INET || sa.ss_family == AF_INET6);
    FUZZ_CHECK(la == (sa.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                              : sizeof(struct sockaddr_in6)));
    char out[80];
    aemp__ep_format((struct sockaddr *)&sa, out, sizeof out);
    FUZZ_CHECK(aemp__ep_parse(out, &sb, &lb) == 0);
    char again[80];
    aemp__ep_format((struct sockaddr *)&sb, again, sizeof again);
    FUZZ_CHECK(!strcmp(out, again));
    if (sa.ss_family == AF_INET && sb.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&sa, *b = (struct sockaddr_in *)&sb;
        FUZZ_CHECK(a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr);
    } else if (sa.ss_family == AF_INET6 && sb.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sa, *b = (struct sockaddr_in6 *)&sb;
        FUZZ_CHECK(a->sin6_port == b->sin6_port &&
                   !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr));
    } else {
        /* a v4-mapped v6 address is written as plain v4 */
        FUZZ_CHECK(sa.ss_family == AF_INET6 && sb.ss_family == AF_INET);
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sa;
        struct sockaddr_in *b = (struct sockaddr_in *)&sb;
        FUZZ_CHECK(IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_port == b->sin_port &&
                   !memcmp(&a->sin6_addr.s6_addr[12], &b->sin_addr, 4));
    }
    /* what the parser accepts is a plain number after the last colon */
    const char *colon = strrchr(ep, ':');
    FUZZ_CHECK(colon && colon[1] >= '0' && colon[1] <= '9');
}

/* Is part an explicit numeric address with a port, the way aemp_resolve
 * splits it ("[v6]:port", "v4:port", or a bare v6 address with the
 * default port)? Only then can resolving it not reach a name service. */
static int nr_numeric_part(const char *part)
{
    char host[64];
    unsigned char buf[16];
    const char *colon = strrchr(part, ':');
    if (!*part || strspn(part, "0123456789") == strlen(part)) return 0; /* this host */
    if (*part == '[') {
        const char *close = strchr(part, ']');
        if (!close || (size_t)(close - part - 1) >= sizeof host) return 0;
        memcpy(host, part + 1, (size_t)(close - part - 1));
        host[close - part - 1] = 0;
        return inet_pton(AF_INET6, host, buf) == 1;
    }
    if (colon && strchr(part, ':') == colon) {
        if ((size_t)(colon - part) >= sizeof host) return 0;
        memcpy(host, part, (size_t)(colon - part));
        host[colon - part] = 0;
        return inet_pton(AF_INET, host, buf) == 1;
    }
    return strlen(part) < sizeof host &&
           (inet_pton(AF_INET6, part, buf) == 1 || inet_pton(AF_INET, part, buf) == 1);
}

FUZZ_TARGET(noderef)
{
    const uint8_t *nul = memchr(data, 0, size);
    char *s = fuzz_strndup(data, nul ? (size_t)(nul - data) : size);

    size_t count = 0, commas = 0;
    for (const char *c = s; *c; c++) commas += *c == ',';
    char **parts = aemp__split(s, ',', &count);
    FUZZ_CHECK(parts != NULL);
    FUZZ_CHECK(count == commas + 1);
    FUZZ_CHECK(parts[count] == NULL);
    char *joined = aemp__join(parts, count, ',');
    FUZZ_CHECK(joined && !strcmp(joined, s));
    free(joined);

    int numeric = 1;
    for (size_t i = 0; i < count; i++) {
        FUZZ_CHECK(!strchr(parts[i], ','));
        nr_check_endpoint(parts[i]);
        if (!nr_numeric_part(parts[i])) numeric = 0;
    }
    nr_check_endpoint(s);

    /* no letters at all is a second guard: a-f of IPv6 addresses are
     * left out too, which costs little */
    for (const char *c = s; *c; c++)
        if ((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') numeric = 0;
    if (numeric) {
        int err = 1;
        char *r = aemp_resolve(s, &err);
        if (r) {
            FUZZ_CHECK(err == 0);
            size_t n = 0;
            char **eps = aemp__split(r, ',', &n);
            FUZZ_CHECK(eps && n >= 1);
            for (size_t i = 0; i < n; i++) {
                struct sockaddr_storage sa;
                socklen_t sl;
                FUZZ_CHECK(aemp__ep_parse(eps[i], &sa, &sl) == 0);
                for (size_t j = 0; j < i; j++) FUZZ_CHECK(strcmp(eps[i], eps[j]) != 0);
            }
            aemp__strv_free(eps);
            free(r);
        } else {
            FUZZ_CHECK(err == AEMP_ERESOLVE || err == AEMP_ENOMEM);
        }
    }
    aemp__strv_free(parts);
    free(s);
    return 0;
}
